"""core.callbacks, one at a time, on a tiny Keras model: what each hands to its writer, and when."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # Keras (TensorFlow) fits models here


# Keras and `core.callbacks` (which imports it) come as fixtures: imported when a test runs, not
# when tests are collected, so that `-m "not slow"` never starts TensorFlow.
@pytest.fixture
def keras():
    import keras

    return keras


@pytest.fixture
def callbacks(keras):
    from core import callbacks

    return callbacks


@pytest.fixture
def tiny(keras):
    """A 2-input softmax model and 64 separable points: a fit takes well under a second."""
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.Adam(0.05), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    x = np.random.default_rng(0).normal(size=(64, 2)).astype(np.float32)
    y = (x[:, 0] > 0).astype(int)
    return model, x, y


def _fit(model, x, y, cbs, *, epochs=3, batch_size=8):
    return model.fit(x, y, validation_data=(x, y), epochs=epochs, batch_size=batch_size, verbose=0,
                     callbacks=cbs)


def test_best_checkpoint_saves_on_improvement_ties_go_later_and_restores_the_best(tiny, callbacks):
    model, x, y = tiny
    saved: list[int] = []
    best = callbacks.BestCheckpoint(lambda m, epoch: saved.append(epoch))
    best.set_model(model)
    for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.7]):
        model.layers[0].kernel.assign(np.full((2, 10), float(epoch), np.float32))
        best.on_epoch_end(epoch, {"val_accuracy": acc})
    assert saved == [1, 2, 4] and best.best_epoch == 4 and best.best_value == 0.7  # the tie: the later one
    model.layers[0].kernel.assign(np.zeros((2, 10), np.float32))
    assert best.restore_best()
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((2, 10), 3.0))
    assert not callbacks.BestCheckpoint(lambda m, e: None).restore_best()  # no epoch: nothing to restore


def test_keeping_the_last_epoch_saves_each_one_and_still_names_the_best(tiny, callbacks):
    model, x, y = tiny
    saved: list[int] = []
    last = callbacks.BestCheckpoint(lambda m, epoch: saved.append(epoch), keep="last")
    last.set_model(model)
    for epoch, acc in enumerate([0.5, 0.7, 0.6, 0.65]):
        model.layers[0].kernel.assign(np.full((2, 10), float(epoch), np.float32))
        last.on_epoch_end(epoch, {"val_accuracy": acc})
    assert saved == [1, 2, 3, 4] and last.best_epoch == 4 and last.best_value == 0.65
    assert (last.val_best_epoch, last.val_best_value) == (2, 0.7)
    model.layers[0].kernel.assign(np.zeros((2, 10), np.float32))
    assert last.restore_best()
    np.testing.assert_array_equal(model.layers[0].kernel.numpy(), np.full((2, 10), 3.0))  # the last epoch's


def test_a_continued_run_compares_with_its_earlier_best_validation_epoch(tiny, callbacks):
    model, x, y = tiny
    more = callbacks.BestCheckpoint(lambda m, epoch: None, best_value=0.6, best_epoch=5, keep="last",
                                    val_best=(0.8, 3))
    more.set_model(model)
    more.on_epoch_end(5, {"val_accuracy": 0.7})  # epoch 6: kept (the last), not validation's best
    assert (more.best_epoch, more.val_best_epoch) == (6, 3)
    more.on_epoch_end(6, {"val_accuracy": 0.8})  # a tie goes to the later epoch
    assert (more.best_epoch, more.val_best_epoch) == (7, 7)
    with pytest.raises(ValueError, match="keep must be 'best' or 'last', got 'first'"):
        callbacks.BestCheckpoint(lambda m, epoch: None, keep="first")


def test_epoch_log_writes_every_row_after_each_epoch(tiny, callbacks):
    model, x, y = tiny
    writes: list[list[dict]] = []
    _fit(model, x, y, [callbacks.EpochLog(lambda rows: writes.append([dict(r) for r in rows]), n_train=64)])
    assert [len(w) for w in writes] == [1, 2, 3]
    rows = writes[-1]
    assert [r["epoch"] for r in rows] == [1, 2, 3]
    for row in rows:
        assert set(row) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                            "time_s", "elapsed_s", "images_per_s"}
        assert row["learning_rate"] == pytest.approx(0.05) and row["images_per_s"] > 0
    assert rows[2]["elapsed_s"] >= rows[1]["elapsed_s"] >= rows[0]["elapsed_s"]


def test_live_progress_is_throttled_bounded_and_ends_each_epoch_exactly(callbacks):
    class Clock:
        now = 0.0

        def __call__(self):
            return self.now

    clock, reports = Clock(), []
    live = callbacks.LiveProgress(reports.append, steps_per_epoch=50, epochs=2, batch_size=10, every_s=1.0,
                                  max_points=16, clock=clock)
    for epoch in range(2):
        live.on_epoch_begin(epoch)
        for batch in range(50):
            clock.now += 0.1  # 10 batches a second: 100 images/s
            live.on_train_batch_end(batch, {"loss": 1.0 / (1 + epoch * 50 + batch), "accuracy": 0.5})
        live.on_epoch_end(epoch)
    # About one report a second while training (10 s), plus one at each epoch end.
    assert 10 <= len(reports) <= 13
    last = reports[-1]
    assert last["epoch"] == 2 and last["step"] == 100 and last["progress"] == 1.0 and last["eta_s"] == 0
    assert last["images_per_s"] == pytest.approx(100.0)
    middle = next(r for r in reports if 0.4 < r["progress"] < 0.6)
    assert middle["eta_s"] == pytest.approx((100 - middle["step"]) / 10)
    steps, losses = last["batches"]["step"], last["batches"]["loss"]
    assert len(steps) == len(losses) <= 16 and steps == sorted(steps) and steps[-1] <= 100
    assert losses == sorted(losses, reverse=True)  # merged means keep the curve's shape


def test_stop_on_request_ends_fit_after_the_batch_and_keras_still_validates(tiny, keras, callbacks):
    model, x, y = tiny
    asked = {"stop": False}
    stop = callbacks.StopOnRequest(lambda: asked["stop"])
    seen: list[int] = []

    class AskAtBatch3(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            seen.append(batch)
            asked["stop"] = batch == 3

    history = _fit(model, x, y, [AskAtBatch3(), stop], epochs=5)
    assert stop.stopped and seen == [0, 1, 2, 3]  # 8 batches an epoch: it stopped in the first
    assert len(history.history["val_accuracy"]) == 1  # the partial epoch was validated and recorded
