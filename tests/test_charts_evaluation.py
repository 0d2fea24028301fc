"""core.charts.evaluation: each builder's traces carry the numbers it was given."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core import evaluation
from core.charts import evaluation as charts


@pytest.fixture
def cm() -> np.ndarray:
    cm = np.diag(np.arange(10, 110, 10)).astype(np.int64)
    cm[4, 9] = 7
    cm[9, 4] = 3
    return cm


def test_confusion_figure_counts(cm):
    fig = charts.confusion_figure(cm)
    right, wrong, cells = fig.data
    assert right.type == wrong.type == "heatmap" and cells.type == "scatter"
    z_right, z_wrong = np.asarray(right.z, dtype=float), np.asarray(wrong.z, dtype=float)
    assert z_right[3, 3] == 40 and np.isnan(z_right[4, 9])  # diagonal only
    assert z_wrong[4, 9] == 7 and z_wrong[9, 4] == 3 and np.isnan(z_wrong[3, 3])
    assert np.isnan(z_wrong[0, 1])  # an empty cell stays blank, not the palest colour
    assert wrong.zmax == 7
    text = np.asarray(right.text)
    assert text[4, 9] == "7" and text[9, 9] == "100" and text[0, 1] == ""
    custom = np.asarray(cells.customdata)
    assert custom.shape == (100, 4)
    row = custom[4 * 10 + 9]  # true 4, predicted 9
    assert row[:3].tolist() == [4, 9, 7] and row[3] == pytest.approx(7 / 57)
    assert (cells.x[49], cells.y[49]) == ("9", "4")
    assert fig.layout.yaxis.autorange == "reversed" and not fig.layout.shapes


def test_confusion_figure_row_normalised_and_selected(cm):
    fig = charts.confusion_figure(cm, normalised=True, selected=(4, 9))
    z = np.asarray(fig.data[1].z, dtype=float)
    assert z[4, 9] == pytest.approx(7 / 57)
    assert np.asarray(fig.data[0].text)[4, 9] == "12.3%"
    shape = fig.layout.shapes[0]
    assert (shape.x0, shape.x1, shape.y0, shape.y1) == (8.5, 9.5, 3.5, 4.5)
    with pytest.raises(ValueError, match="10x10"):
        charts.confusion_figure(np.zeros((3, 3)))


@pytest.mark.parametrize(
    ("points", "cell"),
    [
        ([{"customdata": [4, 9, 7, 0.1]}], (4, 9)),
        ([{"customdata": {"0": 2, "1": 3, "2": 1}}], (2, 3)),
        ([{"x": "1"}, {"customdata": [0, 0, 5, 1.0]}], (0, 0)),
        ([], None),
        ([{"customdata": 5}], None),
    ],
)
def test_selected_cell(points, cell):
    assert charts.selected_cell(points) == cell


def test_per_class_figure():
    labels = np.array([0, 0, 1, 1, 2, 2])
    table = evaluation.per_class(labels, np.array([0, 1, 1, 1, 0, 2]))
    fig = charts.per_class_figure(table)
    assert [t.name for t in fig.data] == ["precision", "recall", "F1"]
    np.testing.assert_allclose(fig.data[0].y[:3], [0.5, 2 / 3, 1.0])
    np.testing.assert_allclose(fig.data[2].y[:3], [0.5, 0.8, 2 / 3])
    assert list(fig.data[0].x) == [str(d) for d in range(10)]
    with pytest.raises(ValueError, match="lacks columns"):
        charts.per_class_figure(pd.DataFrame({"digit": [0]}))


def test_reliability_figure():
    labels = np.array([0, 0, 1, 1, 2, 2])
    proba = np.hstack([np.array([[0.70, 0.20, 0.10], [0.30, 0.60, 0.10], [0.10, 0.80, 0.10],
                                 [0.05, 0.90, 0.05], [0.45, 0.15, 0.40], [0.15, 0.05, 0.80]]),
                       np.zeros((6, 7))])
    bins = evaluation.calibration_bins(labels, proba, n_bins=4)
    fig = charts.reliability_figure(bins, ece=0.2083)
    acc, conf, diagonal, counts = fig.data
    np.testing.assert_allclose(acc.x, [0.375, 0.625, 0.875])  # only the three bins with digits
    np.testing.assert_allclose(acc.y, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(conf.y, [0.45, 0.65, 2.5 / 3])
    assert list(diagonal.x) == [0, 1] and list(diagonal.y) == [0, 1]
    assert list(counts.y) == [0, 1, 2, 3]
    assert "ECE 0.2083" in fig.layout.title.text


def test_history_figure():
    history = evaluation.history_frame([
        {"epoch": 1, "loss": 0.9, "accuracy": 0.7, "val_loss": 0.6, "val_accuracy": 0.8},
        {"epoch": 2, "loss": 0.4, "accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.85},
    ])
    fig = charts.history_figure(history)
    assert [(t.name, t.xaxis) for t in fig.data] == [
        ("training", "x"), ("validation", "x"), ("training", "x2"), ("validation", "x2")]
    assert list(fig.data[1].y) == [0.6, 0.5] and list(fig.data[3].y) == [0.8, 0.85]
    forest = evaluation.history_frame([{"epoch": 1, "val_loss": 0.3, "val_accuracy": 0.9}])
    assert [t.name for t in charts.history_figure(forest).data] == ["validation", "validation"]
    with pytest.raises(ValueError, match="no training history"):
        charts.history_figure(pd.DataFrame())


def test_comparison_and_disagreement_figures():
    table = pd.DataFrame({"model": ["a", "b"], "accuracy": [0.99, 0.95], "log loss": [0.03, 0.2],
                          "errors": [1, 5]})
    fig = charts.comparison_figure(table)
    assert list(fig.data[0].x) == ["a", "b"] and list(fig.data[0].y) == [0.99, 0.95]
    assert list(fig.data[1].y) == [0.03, 0.2] and list(fig.data[0].text) == ["99.00%", "95.00%"]
    pairs = evaluation.pairwise_disagreement({"a": np.array([1, 2, 3]), "b": np.array([1, 2, 4])})
    heat = charts.disagreement_figure(pairs).data[0]
    assert np.asarray(heat.z).tolist() == [[0, 1], [1, 0]] and list(heat.x) == ["a", "b"]


def test_gallery_figure():
    images = np.zeros((12, 28, 28), dtype=np.uint8)
    images[3, 10:18, 10:18] = 255
    fig = charts.gallery_figure(images, [f"#{i}" for i in range(12)], cols=5)
    assert len(fig.data) == 1 and fig.data[0].type == "image"
    assert [a.text for a in fig.layout.annotations] == [f"#{i}" for i in range(12)]
    third_row = fig.layout.annotations[10]
    assert third_row.x == 14 and third_row.y == 2 * 38 + 28 + 4  # row 2, column 0: under the digit
    assert fig.layout.height == 3 * 70
    assert {a.font.color for a in fig.layout.annotations} == {"#e5e7eb"}  # light on the dark band
    with pytest.raises(ValueError, match="12 captions"):
        charts.gallery_figure(images, ["x"])
    with pytest.raises(ValueError, match="at least one"):
        charts.gallery_figure(images[:0], [])
