"""The one-op affine augmentation: identity when predicting, a real warp when training, saved and
loaded like any Keras layer, and invisible in the serving copy."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # builds Keras models (TensorFlow)


def _digit_batch() -> np.ndarray:
    x = np.zeros((16, 28, 28, 1), np.float32)
    x[:, 6:22, 12:16] = 1.0  # a vertical bar, centred
    return x


def test_identity_unless_training_and_a_warp_that_keeps_the_ink_when_training():
    from core.augment import RandomAffine

    layer = RandomAffine(rotation=15, zoom=0.15, shift=0.1, zoom_aspect=True, seed=1)
    x = _digit_batch()
    np.testing.assert_array_equal(np.asarray(layer(x, training=False)), x)
    warped = np.asarray(layer(x, training=True))
    assert warped.shape == x.shape
    moved = np.abs(warped - x).reshape(16, -1).sum(axis=1)
    assert (moved > 1.0).sum() >= 14  # nearly every image changed...
    ink = warped.reshape(16, -1).sum(axis=1) / x.reshape(16, -1).sum(axis=1)
    assert ink.min() > 0.6 and ink.max() < 1.5  # ...by a small move: the bar is still there
    assert np.abs(warped[0] - warped[1]).sum() > 1.0  # each image its own draw


@pytest.mark.parametrize("arch", ["dr-v", "dr-sep", "dr-sep-elastic", "dr-sep-deep", "dr-sep-deskew"])
def test_a_model_with_it_saves_loads_safely_and_exports_without_it(tmp_path, arch):
    import keras

    from core import models, serving

    model = models.build(arch)
    path = tmp_path / serving.KERAS_FILE
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)  # as registry.load_keras does
    assert [layer.name for layer in loaded.layers if layer.name.startswith("aug_")] == ["aug_affine"]
    x = np.random.default_rng(0).uniform(0, 255, (4, 28, 28)).astype(np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x, training=False)), np.asarray(model(x, training=False)),
                               atol=1e-6)
    serving.export(loaded, tmp_path)  # refuses a copy that differs from Keras on the probe batch
    np.testing.assert_allclose(serving.load(tmp_path).predict_proba(x), np.asarray(model(x, training=False)),
                               atol=1e-4)


def test_elastic_field_is_the_affine_warp_plus_a_small_smooth_move():
    from core.augment import RandomAffine

    x = _digit_batch()
    x[:, 6:9, 8:20] = 1.0  # a T: asymmetric, so a swapped x/y would show
    plain = np.asarray(RandomAffine(15, 0.15, 0.1, zoom_aspect=True, seed=3)(x, training=True))
    # The same seed draws the same affine warp; a vanishing field must give the same pixels by the
    # gather path as by Keras' affine_transform.
    tiny = np.asarray(RandomAffine(15, 0.15, 0.1, zoom_aspect=True, seed=3, elastic=1e-6)(x, training=True))
    np.testing.assert_allclose(tiny, plain, atol=1e-4)
    bent = np.asarray(RandomAffine(0, 0, 0, seed=3, elastic=2.0)(x, training=True))
    moved = np.abs(bent - x).reshape(16, -1).sum(axis=1)
    assert moved.min() > 1.0  # every image bent...
    ink = bent.reshape(16, -1).sum(axis=1) / x.reshape(16, -1).sum(axis=1)
    assert ink.min() > 0.6 and ink.max() < 1.5  # ...locally stretched or squeezed: the strokes stay
    np.testing.assert_array_equal(np.asarray(RandomAffine(elastic=2.0)(x, training=False)), x)


def test_elastic_trains_on_batches_of_unknown_size_and_round_trips(tmp_path):
    import keras

    from core.augment import RandomAffine

    inp = keras.Input((28, 28, 1))
    h = RandomAffine(10, 0.1, 0.1, elastic=1.5, elastic_grid=3, name="aug_affine")(inp)
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(h))
    model = keras.Model(inp, out)
    model.compile("adam", "sparse_categorical_crossentropy")
    x = _digit_batch()
    model.fit(x, np.arange(16) % 10, batch_size=5, epochs=1, verbose=0)  # last batch of 1: shape None
    model.save(tmp_path / "m.keras")
    layer = keras.saving.load_model(tmp_path / "m.keras", safe_mode=True).get_layer("aug_affine")
    assert (layer.elastic, layer.elastic_grid) == (1.5, 3)
