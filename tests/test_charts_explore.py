"""core.charts.explore: each builder's traces, values and labels."""

from __future__ import annotations

import base64
import io

import numpy as np
import pytest
from PIL import Image

from core.charts import explore as charts
from core.charts.common import DIGIT_COLORS
from core.exploration import INK_LEVEL, MIN_INK_PIXELS, Embedding

COUNTS = np.array([901, 1014, 892, 929, 882, 777, 912, 963, 850, 880])


def _png(trace) -> np.ndarray:
    """The pixels of an image trace drawn with binary_string=True (a base64 PNG)."""
    payload = trace.source.split(",", 1)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload))).convert("L"))


def test_class_balance_is_one_bar_per_digit_in_digit_colours():
    fig = charts.class_balance_figure(COUNTS)
    assert [t.type for t in fig.data] == ["bar"]
    bar = fig.data[0]
    assert list(bar.x) == [str(d) for d in range(10)]
    assert list(bar.y) == COUNTS.tolist()
    assert list(bar.marker.color) == list(DIGIT_COLORS[:10])
    assert bar.text[1] == "1,014"
    assert fig.layout.shapes[0].y0 == pytest.approx(900.0)  # The dashed mean line.
    assert fig.layout.xaxis.type == "category"


def test_class_balance_refuses_the_wrong_number_of_counts():
    with pytest.raises(ValueError, match="10 counts"):
        charts.class_balance_figure(np.ones(9))


def test_class_samples_draws_each_pick_in_its_row_and_leaves_missing_ones_black():
    images = np.zeros((3, 28, 28), np.uint8)
    images[0], images[1], images[2] = 100, 200, 50
    idx = np.full((10, 2), -1)
    idx[0] = [0, 1]
    idx[3] = [2, -1]
    fig = charts.class_samples_figure(images, idx, pad=3)
    assert [t.type for t in fig.data] == ["image"]
    pic = _png(fig.data[0])
    assert pic.shape == (10 * 31 - 3, 2 * 31 - 3)
    assert pic[10, 10] == 100 and pic[10, 31 + 10] == 200  # Row 0: both picks.
    assert pic[3 * 31 + 10, 10] == 50 and pic[3 * 31 + 10, 31 + 10] == 0  # Row 3: one pick, one blank.
    assert pic[28, 10] == 255  # White gap between rows.
    assert list(fig.layout.yaxis.ticktext) == [str(d) for d in range(10)]
    assert fig.layout.yaxis.tickvals[3] == pytest.approx(3 * 31 + 14)


def test_image_row_figure_puts_the_images_side_by_side_in_one_heatmap():
    imgs = np.stack([np.full((28, 28), 10.0), np.full((28, 28), 240.0)])
    fig = charts.image_row_figure(imgs, ["train", "test"], title="Mean image")
    assert [t.type for t in fig.data] == ["heatmap"]
    z = np.asarray(fig.data[0].z, dtype=float)
    assert z.shape == (28, 2 * 31 - 3)
    assert z[5, 5] == 10.0 and z[5, 31 + 5] == 240.0
    assert np.isnan(z[5, 29])  # The gap is empty, not black.
    assert list(fig.layout.xaxis.ticktext) == ["train", "test"]
    assert (fig.data[0].zmin, fig.data[0].zmax) == (0.0, 255.0)


def test_image_row_figure_diverging_scale_is_centred_on_zero():
    fig = charts.image_row_figure(np.zeros((1, 28, 28)), ["train − test"], colorscale="RdBu", zmid=0.0)
    assert fig.data[0].zmid == 0.0 and fig.data[0].zmin is None


def test_image_row_figure_refuses_a_label_count_mismatch():
    with pytest.raises(ValueError, match="2 images but 1 labels"):
        charts.image_row_figure(np.zeros((2, 28, 28)), ["a"])


def test_intensity_histogram_splits_background_edges_and_ink():
    counts = np.zeros(256, np.int64)
    counts[0], counts[30], counts[255] = 800, 100, 100
    fig = charts.intensity_histogram_figure(counts)
    assert [t.type for t in fig.data] == ["bar"] * 3
    background, faint, ink = fig.data
    assert list(background.x) == [0] and list(background.y) == [800]
    assert list(faint.x) == list(range(1, INK_LEVEL + 1)) and sum(faint.y) == 100
    assert list(ink.x) == list(range(INK_LEVEL + 1, 256)) and ink.y[-1] == 100
    assert background.name == "background (0): 80.0%"
    assert ink.name.endswith("10.0%")
    assert fig.layout.yaxis.type == "log"


def test_intensity_comparison_has_one_binned_line_per_set_summing_to_100():
    a = np.ones(256)
    b = np.zeros(256)
    b[0], b[255] = 3, 1
    fig = charts.intensity_comparison_figure({"train": a, "test": b}, bin_size=8)
    assert [t.name for t in fig.data] == ["train", "test"]
    assert list(fig.data[0].x) == list(range(0, 256, 8))
    assert sum(fig.data[0].y) == pytest.approx(100.0)
    assert fig.data[1].y[0] == pytest.approx(75.0) and fig.data[1].y[-1] == pytest.approx(25.0)
    assert fig.data[0].line.color == charts.SET_COLORS["train"]
    assert fig.layout.yaxis.type == "log"


def test_ink_distribution_overlays_percent_histograms_and_marks_the_blank_threshold():
    fig = charts.ink_distribution_figure({"train": np.array([10, 100, 120]), "test": np.array([90])})
    assert [t.type for t in fig.data] == ["histogram", "histogram"]
    assert list(fig.data[0].x) == [10, 100, 120] and list(fig.data[1].x) == [90]
    assert {t.histnorm for t in fig.data} == {"percent"}
    assert fig.layout.barmode == "overlay"
    assert fig.layout.shapes[0].x0 == MIN_INK_PIXELS


def _embedding(method="PCA", explained=(0.1, 0.07)):
    coords = np.array([[0, 0], [1, 1], [2, 2], [3, 3]], np.float32)
    return Embedding(coords, np.array([5, 6, 8, 9]), method, explained)


def test_embedding_figure_one_trace_per_digit_carrying_the_image_index():
    labels = np.zeros(10, np.int64)
    labels[[5, 8]] = 3
    labels[[6, 9]] = 7
    fig = charts.embedding_figure(_embedding(), labels, title="PCA")
    assert [t.type for t in fig.data] == ["scattergl", "scattergl"]  # Only digits present.
    three, seven = fig.data
    assert three.name == "3" and three.marker.color == DIGIT_COLORS[3]
    assert np.asarray(three.customdata).tolist() == [[5, 3, 6], [8, 3, 9]]  # index, label, row
    assert list(three.x) == [0.0, 2.0] and list(seven.y) == [1.0, 3.0]
    assert fig.layout.xaxis.title.text == "PCA 1 (10% of variance)"


def test_embedding_figure_unlabelled_is_one_grey_trace():
    fig = charts.embedding_figure(_embedding("t-SNE", ()), None)
    assert len(fig.data) == 1 and len(fig.data[0].x) == 4
    assert fig.layout.xaxis.title.text == "t-SNE 1"
