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


@pytest.mark.parametrize("arch", ["dr-v", "dr-sep"])
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
