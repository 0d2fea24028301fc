"""The one-pass augmentation: the identity at inference, a plausible distortion in training, and
saved models containing it load in safe mode."""

from __future__ import annotations

import numpy as np
import pytest

keras = pytest.importorskip("keras")

from core import models, registry  # noqa: E402
from core.augment import RandomAffine  # noqa: E402


@pytest.fixture(scope="module")
def batch(sample_train) -> np.ndarray:
    return sample_train.images[:64, :, :, None].astype(np.float32) / 255


def test_identity_outside_training(batch):
    layer = RandomAffine(seed=1)
    np.testing.assert_array_equal(np.asarray(layer(batch, training=False)), batch)
    np.testing.assert_array_equal(np.asarray(layer(batch)), batch)


def test_training_distorts_each_digit_within_the_limits(batch):
    out = np.asarray(RandomAffine(seed=1)(batch, training=True))
    assert out.shape == batch.shape
    changed = np.abs(out - batch).reshape(len(batch), -1).max(axis=1) > 0.1
    assert changed.mean() > 0.9  # nearly every digit is moved
    ink_ratio = out.reshape(len(batch), -1).sum(1) / batch.reshape(len(batch), -1).sum(1)
    assert ink_ratio.min() > 0.7 and ink_ratio.max() < 1.35  # zoom <= 10%: area within ~(1 +- 0.1)^2
    # The centre of mass moves by at most shift (10% = 2.8 px) plus what rotation/zoom add.
    assert np.abs(_centre(out) - _centre(batch)).max() < 6


def _centre(imgs: np.ndarray) -> np.ndarray:
    """Centre of mass (row, column) of each image's ink."""
    ink = imgs[..., 0]
    mass = ink.sum(axis=(1, 2))
    grid = np.arange(ink.shape[1])
    return np.stack([(ink.sum(2) * grid).sum(1) / mass, (ink.sum(1) * grid).sum(1) / mass], 1)


def test_no_distortion_at_zero_strength(batch):
    out = np.asarray(RandomAffine(rotation=0, zoom=0, shift=0, seed=1)(batch, training=True))
    np.testing.assert_allclose(out, batch, atol=1e-5)


def test_two_calls_draw_different_distortions(batch):
    layer = RandomAffine(seed=3)
    a, b = np.asarray(layer(batch, training=True)), np.asarray(layer(batch, training=True))
    assert np.abs(a - b).max() > 0.1


def test_a_saved_model_with_it_loads_in_safe_mode(tmp_dirs, sample_train):
    model = models.build("dr-cnn", augment=True, augment_strength=1.5)
    registry.save_keras_model("with-aug", model)
    registry.write_meta("with-aug", {"arch": "dr-cnn", "kind": "keras", "status": "complete"})
    loaded = registry.load_model("with-aug")
    layer = loaded.model.get_layer("aug_affine")
    assert isinstance(layer, RandomAffine)
    assert (layer.rotation, layer.zoom, layer.shift) == pytest.approx((15.0, 0.15, 0.15))
    x = sample_train.images[:8].astype(np.float32)
    np.testing.assert_allclose(loaded.predict_proba(x), np.asarray(model(x, training=False)), atol=1e-5)
