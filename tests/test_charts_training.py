"""core.charts.training: the Train page's figures carry exactly the numbers they are given."""

from __future__ import annotations

import numpy as np
import pytest

from core.charts import training as charts

HISTORY = [
    {"epoch": 1, "loss": 0.9, "accuracy": 0.70, "val_loss": 0.5, "val_accuracy": 0.85,
     "learning_rate": 1e-3, "images_per_s": 900.0},
    {"epoch": 2, "loss": 0.4, "accuracy": 0.88, "val_loss": 0.3, "val_accuracy": 0.91,
     "learning_rate": 5e-4, "images_per_s": 1500.0},
    {"epoch": 3, "loss": 0.3, "accuracy": 0.92, "val_loss": None, "val_accuracy": None,
     "learning_rate": None, "images_per_s": None},
]
BATCHES = {"step": [1, 2, 3, 4, 5, 6], "loss": [2.3, 1.5, 1.0, 0.6, 0.5, 0.4],
           "accuracy": [0.1, 0.4, 0.6, 0.8, 0.85, 0.9]}


def _trace(fig, name: str, xaxis: str):
    found = [t for t in fig.data if t.name == name and t.xaxis == xaxis]
    assert len(found) == 1, f"expected one {name!r} on {xaxis}: {[(t.name, t.xaxis) for t in fig.data]}"
    return found[0]


def test_live_curves_put_batches_on_the_epoch_axis_and_epochs_at_their_number():
    fig = charts.live_curves(BATCHES, HISTORY, steps_per_epoch=2)
    assert len(fig.data) == 6  # batch, train, validation x (loss, accuracy)
    loss_batch = _trace(fig, "train, per batch", "x")
    np.testing.assert_allclose(loss_batch.x, [0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    np.testing.assert_allclose(loss_batch.y, BATCHES["loss"])
    acc_batch = _trace(fig, "train, per batch", "x2")
    np.testing.assert_allclose(acc_batch.y, BATCHES["accuracy"])
    np.testing.assert_allclose(_trace(fig, "train, per epoch", "x").y, [0.9, 0.4, 0.3])
    np.testing.assert_allclose(_trace(fig, "train, per epoch", "x2").y, [0.70, 0.88, 0.92])
    val_acc = _trace(fig, "validation, per epoch", "x2")  # epoch 3 has no validation yet: left out
    np.testing.assert_allclose(val_acc.x, [1, 2])
    np.testing.assert_allclose(val_acc.y, [0.85, 0.91])
    np.testing.assert_allclose(_trace(fig, "validation, per epoch", "x").y, [0.5, 0.3])
    # One legend entry per series, not one per panel.
    assert sorted(t.name for t in fig.data if t.showlegend) == [
        "train, per batch", "train, per epoch", "validation, per epoch"]


def test_live_curves_without_steps_per_epoch_leave_the_batch_curve_out():
    fig = charts.live_curves(BATCHES, HISTORY)
    assert "train, per batch" not in {t.name for t in fig.data}
    assert len(fig.data) == 4


def test_live_curves_before_any_data_are_empty_but_valid():
    fig = charts.live_curves({"step": [], "loss": [], "accuracy": []}, [], steps_per_epoch=10)
    assert len(fig.data) == 0
    fig.to_json()  # serialisable for the browser


def test_live_curves_skip_nan_batches_instead_of_drawing_zeros():
    batches = {"step": [1, 2, 3], "loss": [1.0, float("nan"), 0.5], "accuracy": [0.1, 0.2, 0.3]}
    fig = charts.live_curves(batches, [], steps_per_epoch=1)
    np.testing.assert_allclose(_trace(fig, "train, per batch", "x").y, [1.0, 0.5])
    np.testing.assert_allclose(_trace(fig, "train, per batch", "x").x, [1, 3])


def test_long_batch_curves_are_thinned_but_keep_both_ends():
    n = 20_000
    batches = {"step": list(range(1, n + 1)), "loss": list(np.linspace(2, 0, n)),
               "accuracy": list(np.linspace(0, 1, n))}
    fig = charts.live_curves(batches, [], steps_per_epoch=100, max_points=500)
    trace = _trace(fig, "train, per batch", "x")
    assert len(trace.x) <= 500
    assert trace.x[0] == pytest.approx(0.01) and trace.x[-1] == pytest.approx(200.0)
    assert trace.y[-1] == pytest.approx(0.0)
    assert np.all(np.diff(trace.x) > 0)


def test_thin_leaves_short_curves_alone():
    x, y = charts.thin(np.arange(10), np.arange(10) * 2.0, max_points=10)
    np.testing.assert_array_equal(x, np.arange(10))
    np.testing.assert_array_equal(y, np.arange(10) * 2.0)


def test_lr_curve_plots_the_rate_per_epoch_on_a_log_axis():
    fig = charts.lr_curve(HISTORY)
    (trace,) = fig.data
    np.testing.assert_allclose(trace.x, [1, 2])
    np.testing.assert_allclose(trace.y, [1e-3, 5e-4])
    assert fig.layout.yaxis.type == "log"


def test_throughput_curve_has_one_bar_per_measured_epoch():
    (trace,) = charts.throughput_curve(HISTORY).data
    np.testing.assert_allclose(trace.x, [1, 2])
    np.testing.assert_allclose(trace.y, [900.0, 1500.0])


def test_confusion_heatmap_shows_the_matrix_with_true_digits_as_rows():
    matrix = np.diag(np.arange(10, 20))
    matrix[3, 5] = 7
    fig = charts.confusion_heatmap(matrix.tolist(), title="demo")
    (trace,) = fig.data
    np.testing.assert_array_equal(np.asarray(trace.z), matrix)
    assert list(trace.x) == [str(d) for d in range(10)]
    assert fig.layout.yaxis.title.text == "true" and fig.layout.xaxis.title.text == "predicted"


def test_confusion_heatmap_refuses_a_wrong_shape():
    with pytest.raises(ValueError, match="10x10"):
        charts.confusion_heatmap([[1, 2], [3, 4]])


def test_accuracy_comparison_has_one_bar_per_model_with_its_percentage():
    rows = [{"label": "forest 8x8", "accuracy": 0.975, "dataset": "sklearn 8x8"},
            {"label": "dr-cnn", "accuracy": 0.9921, "dataset": "MNIST"},
            {"label": "mlp", "accuracy": 0.97, "dataset": "MNIST"}]
    (trace,) = charts.accuracy_comparison(rows).data
    assert list(trace.y) == ["forest 8x8", "dr-cnn", "mlp"]
    np.testing.assert_allclose(trace.x, [0.975, 0.9921, 0.97])
    assert list(trace.text) == ["97.5%", "99.2%", "97.0%"]
    colors = list(trace.marker.color)
    assert colors[1] == colors[2] != colors[0]  # colour by dataset
