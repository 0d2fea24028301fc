"""core.training: settings refused before any work, the recorded split, one short `fit`, the forest,
and the classic 8x8 demo. Tiny data (a few hundred sample digits, an MLP) keeps each test short."""

from __future__ import annotations

import numpy as np
import pytest

from core import data, training


def _subset(ds: data.Dataset, n: int, start: int = 0) -> data.Dataset:
    return data.Dataset(ds.images[start:start + n], ds.labels[start:start + n], f"first-{n}", "sample",
                        f"subset-{start}-{n}")


# --------------------------------------------------------------------------- settings


def test_config_fills_the_architecture_defaults_and_keeps_overrides():
    settings = training.TrainConfig(arch="kaggle-cnn", epochs=2, seed=7).resolved()
    assert settings["epochs"] == 2 and settings["seed"] == 7
    assert settings["optimizer"] == "rmsprop" and settings["schedule"] == "plateau"
    assert settings["batch_size"] == 86 and settings["val_fraction"] == 0.1
    assert training.TrainConfig().resolved()["optimizer"] == "adamw"  # dr-sep-elastic, the default
    # The one-cycle family keeps its last epoch; the notebook's plateau recipe its best; a user may choose.
    assert settings["checkpoint"] == "best" and training.TrainConfig().resolved()["checkpoint"] == "last"
    assert training.TrainConfig(checkpoint="best").resolved()["checkpoint"] == "best"
    again = training.TrainConfig.from_settings({**settings, "unknown": 1})
    assert again.resolved() == settings


@pytest.mark.parametrize(("bad", "message"), [
    (dict(optimizer="adagrad"), "unknown optimizer 'adagrad'"),
    (dict(schedule="step"), "unknown schedule 'step'"),
    (dict(epochs=0), "epochs must be between"),
    (dict(val_fraction=0.0), "val_fraction must be between"),
    (dict(label_smoothing=0.9), "label_smoothing must be between"),
    (dict(ema=1.0), "ema must be between"),
    (dict(checkpoint="first"), "unknown checkpoint rule 'first'; choose one of: best, last"),
    (dict(name="../escape"), "invalid model name"),
    (dict(arch="resnet-9000"), "unknown architecture 'resnet-9000'"),
])
def test_impossible_settings_are_refused(bad, message):
    with pytest.raises(ValueError, match=message):
        training.TrainConfig(**{"arch": "mlp", **bad}).validate()


def test_describe_settings_is_one_readable_line():
    line = training.describe_settings({"epochs": 3, "optimizer": "adam", "seed": 1, "other": 5})
    assert line == "epochs=3, optimizer=adam, seed=1"


# --------------------------------------------------------------------------- data


def test_arrays_follow_the_recorded_split_and_add_taught_digits_to_training_only(sample_train, sample_test):
    ds, extra = _subset(sample_train, 300), _subset(sample_train, 30, start=5000)
    settings = training.TrainConfig(arch="mlp", val_fraction=0.2, seed=3).resolved()
    arrays = training.arrays(ds, settings, extra)
    train_idx, val_idx = data.split_indices(ds.labels, val_fraction=0.2, seed=3)
    assert len(arrays.x_train) == 240 + 30 and len(arrays.x_val) == 60
    np.testing.assert_array_equal(arrays.x_val, ds.images[val_idx])
    np.testing.assert_array_equal(arrays.x_train[-30:], extra.images)
    assert arrays.x_train.dtype == np.uint8  # the model rescales: a quarter of float32's memory
    assert arrays.split == data.describe_split(ds.labels, val_idx, val_fraction=0.2, seed=3)
    with pytest.raises(ValueError, match="labelled"):
        training.arrays(sample_test, settings)


def test_label_smoothing_wants_one_hot_targets():
    labels = np.array([3, 0])
    assert training.targets(labels, {"label_smoothing": 0.0}) is labels
    np.testing.assert_array_equal(training.targets(labels, {"label_smoothing": 0.1})[0], np.eye(10)[3])


# --------------------------------------------------------------------------- fit


@pytest.mark.slow  # TensorFlow
def test_fit_learns_and_returns_keras_history(sample_train):
    settings = training.TrainConfig(arch="mlp", epochs=2, batch_size=32, seed=0).resolved()
    arrays = training.arrays(_subset(sample_train, 600), settings)
    steps = training.steps_per_epoch(len(arrays.x_train), 32)
    model = training.compiled_model(settings, steps_per_epoch=steps)
    history = training.fit(model, arrays, settings, callbacks=[])
    assert set(history) >= {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(history["loss"]) == 2 and history["loss"][1] < history["loss"][0]
    assert history["val_accuracy"][-1] > 0.7  # chance is 0.1


@pytest.mark.slow  # TensorFlow
def test_the_feed_gives_every_digit_once_an_epoch_in_a_new_order_each_epoch():
    x = np.arange(10 * 28 * 28, dtype=np.uint8).reshape(10, 28, 28) % 251
    y = np.arange(10) * 3
    feed = training.batches(x, y, 4, shuffle_seed=5)
    epochs = [[(np.asarray(bx), np.asarray(by)) for bx, by in feed] for _ in range(2)]
    for epoch in epochs:
        assert [len(by) for _, by in epoch] == [4, 4, 2]  # the last, partial batch is kept
        seen = np.concatenate([by for _, by in epoch])
        assert sorted(seen) == list(y)  # each digit once...
        for bx, by in epoch:  # ...with its own label
            np.testing.assert_array_equal(bx, x[by // 3])
    orders = [np.concatenate([by for _, by in epoch]) for epoch in epochs]
    assert list(orders[0]) != list(orders[1]) and list(orders[0]) != list(y)  # reshuffled each epoch
    again = np.concatenate([np.asarray(by) for _, by in training.batches(x, y, 4, shuffle_seed=5)])
    np.testing.assert_array_equal(again, orders[0])  # a seed gives the same order: runs repeat
    plain = np.concatenate([np.asarray(by) for _, by in training.batches(x, y, 4)])
    np.testing.assert_array_equal(plain, y)  # validation: in order


@pytest.mark.slow  # TensorFlow
def test_one_cycle_warms_up_then_anneals():
    optimizer = training.make_optimizer("adamw", 3e-3, "one-cycle", total_steps=100)
    rate = optimizer._learning_rate  # the schedule itself (`learning_rate` is its value now)
    at = [float(rate(step)) for step in (0, 20, 60, 100)]
    assert at[0] == pytest.approx(3e-3 / 25, rel=1e-3) and at[1] == pytest.approx(3e-3, rel=1e-3)
    assert at[1] > at[2] > at[3]
    with pytest.raises(ValueError, match="unknown optimizer"):
        training.make_optimizer("adagrad", 1e-3, "constant", 10)


@pytest.mark.slow  # TensorFlow
def test_weight_averaging_validates_each_epoch_on_the_average(sample_train):
    import keras

    settings = training.TrainConfig(arch="mlp", epochs=2, batch_size=32, seed=0, ema=0.9).resolved()
    arrays = training.arrays(_subset(sample_train, 600), settings)
    steps = training.steps_per_epoch(len(arrays.x_train), 32)
    model = training.compiled_model(settings, steps_per_epoch=steps)
    assert model.optimizer.use_ema
    gaps: dict[str, list[float]] = {"mid": [], "checkpoint": [], "after": []}

    def gap() -> float:  # the largest difference between a weight and its moving average
        pairs = zip(model.trainable_variables, model.optimizer._model_variables_moving_average,
                    strict=True)
        return max(float(np.abs(np.asarray(w) - np.asarray(a)).max()) for w, a in pairs)

    class Watch(keras.callbacks.Callback):  # what a checkpoint before the swap sees
        def on_train_batch_end(self, batch, logs=None):
            if batch == 3:
                gaps["mid"].append(gap())

        def on_epoch_end(self, epoch, logs=None):
            gaps["checkpoint"].append(gap())
            np.testing.assert_allclose(logs["val_accuracy"], model.evaluate(
                training.batches(arrays.x_val, arrays.y_val, 32), verbose=0)[1], atol=1e-6)

    class Next(keras.callbacks.Callback):  # whom training hands on to
        def on_epoch_begin(self, epoch, logs=None):
            if epoch:
                gaps["after"].append(gap())

    history = training.fit(model, arrays, settings, callbacks=[Watch(), Next()])
    assert min(gaps["mid"]) > 1e-4  # during an epoch the weights move ahead of their average
    assert gaps["checkpoint"] == [0.0, 0.0]  # the epoch is validated and checkpointed on the average...
    assert gaps["after"][0] > 1e-4  # ...and training goes on from its own weights
    assert gap() == 0.0  # the run ends on the average
    assert history["val_accuracy"][-1] > 0.7


def test_forest_grows_in_steps_can_stop_and_scores_its_validation_digits(sample_train):
    settings = training.TrainConfig(arch="random-forest", n_estimators=20, val_fraction=0.2).resolved()
    arrays = training.arrays(_subset(sample_train, 500), settings)
    grown: list[tuple[int, int]] = []
    forest, metrics = training.fit_forest(arrays, settings, on_trees=lambda g, t: grown.append((g, t)))
    assert grown[-1] == (20, 20) and len(grown) == 10 and len(forest.estimators_) == 20
    assert metrics["val_accuracy"] > 0.6 and metrics["val_loss"] > 0
    stopped, nothing = training.fit_forest(arrays, settings, stop=lambda: True)
    assert stopped is None and nothing == {}


def test_sklearn_digits_demo_is_the_classic_result():
    demo = training.train_sklearn_digits(seed=0, n_estimators=50)
    assert demo["n_train"] + demo["n_test"] == 1797 and demo["n_test"] == 360
    confusion = np.asarray(demo["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 360
    assert demo["accuracy"] == pytest.approx(np.trace(confusion) / 360)
    assert demo["accuracy"] > 0.9  # ~0.97 in scikit-learn's own example
