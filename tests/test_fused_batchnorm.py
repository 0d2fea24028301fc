"""The fused batch norm does what Keras' own does (outputs, gradients, moving statistics), only
faster; frozen or predicting it is Keras' code; the dr-* models use it and save, load and export."""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.slow  # TensorFlow


def _pair(channels: int = 8):
    """A Keras layer and a fused one with the same (non-trivial) weights."""
    from keras import layers

    from core.fused_batchnorm import FusedBatchNorm

    pair = layers.BatchNormalization(momentum=0.9), FusedBatchNorm(momentum=0.9)
    for layer in pair:
        layer.build((None, 14, 14, channels))
        layer.gamma.assign(np.linspace(0.5, 2.0, channels))
        layer.beta.assign(np.linspace(-1.0, 1.0, channels))
        layer.moving_mean.assign(np.full(channels, 0.2))
        layer.moving_variance.assign(np.full(channels, 3.0))
    return pair


def _batch() -> np.ndarray:
    rng = np.random.default_rng(0)
    return (rng.normal(size=(32, 14, 14, 8)) * np.linspace(0.5, 4, 8) + np.arange(8)).astype(np.float32)


def _train_step(layer, x):
    import tensorflow as tf

    x = tf.convert_to_tensor(x)
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = layer(x, training=True)
        loss = tf.reduce_sum(tf.sin(y) * tf.range(8, dtype=tf.float32))
    grads = tape.gradient(loss, [x, layer.gamma.value, layer.beta.value])
    return np.asarray(y), [np.asarray(g) for g in grads]


def test_a_training_step_matches_keras_batch_norm():
    keras_bn, fused = _pair()
    x = _batch()
    y_keras, g_keras = _train_step(keras_bn, x)
    y_fused, g_fused = _train_step(fused, x)
    np.testing.assert_allclose(y_fused, y_keras, atol=1e-4)
    for mine, theirs in zip(g_fused, g_keras, strict=True):  # input, gamma, beta
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-3 * np.abs(theirs).max())
    # Moving statistics: 0.9 old + 0.1 batch. TensorFlow's kernel averages the unbiased batch
    # variance (n/(n-1), n = 32*14*14 here), Keras the biased one: equal to 1e-3.
    np.testing.assert_allclose(fused.moving_mean.numpy(), keras_bn.moving_mean.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(fused.moving_variance.numpy(), keras_bn.moving_variance.numpy(), rtol=1e-3)
    batch_mean = x.mean(axis=(0, 1, 2))
    np.testing.assert_allclose(fused.moving_mean.numpy(), 0.9 * 0.2 + 0.1 * batch_mean, rtol=1e-5)


def test_predicting_or_frozen_it_uses_the_moving_statistics_and_leaves_them():
    keras_bn, fused = _pair()
    x = _batch()
    np.testing.assert_allclose(np.asarray(fused(x, training=False)), np.asarray(keras_bn(x, training=False)),
                               atol=1e-5)
    fused.trainable = False  # as fine-tuning freezes it: training=True must not move the statistics
    out = np.asarray(fused(x, training=True))
    np.testing.assert_allclose(out, np.asarray(keras_bn(x, training=False)), atol=1e-5)
    np.testing.assert_array_equal(fused.moving_mean.numpy(), np.full(8, 0.2, np.float32))
    np.testing.assert_array_equal(fused.moving_variance.numpy(), np.full(8, 3.0, np.float32))


@pytest.mark.parametrize("arch", ["dr-cnn", "dr-v", "dr-sep", "dr-sep-elastic"])
def test_dr_models_use_it_and_still_learn_then_save_load_and_export(tmp_path, arch, sample_train):
    import keras

    from core import models, serving
    from core.fused_batchnorm import FusedBatchNorm

    model = models.build(arch, augment=False)
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert norms and all(isinstance(layer, FusedBatchNorm) for layer in norms)
    x, y = sample_train.images[:512], sample_train.labels[:512]
    model.compile(optimizer=keras.optimizers.Adam(3e-3), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)
    before = norms[0].moving_mean.numpy().copy()
    history = model.fit(x, y, batch_size=64, epochs=3, verbose=0)
    assert history.history["accuracy"][-1] > 0.8  # 512 digits, 3 epochs: it learns
    assert np.abs(norms[0].moving_mean.numpy() - before).max() > 1e-3  # statistics were updated
    path = tmp_path / serving.KERAS_FILE
    model.save(path)
    loaded = keras.saving.load_model(path, safe_mode=True)  # as registry.load_keras does
    assert type(loaded.get_layer(norms[0].name)) is FusedBatchNorm
    probe = sample_train.images[512:520]
    expected = np.asarray(model(probe, training=False))
    np.testing.assert_allclose(np.asarray(loaded(probe, training=False)), expected, atol=1e-6)
    serving.export(loaded, tmp_path)  # refuses a copy that differs from Keras on the probe batch
    np.testing.assert_allclose(serving.load(tmp_path).predict_proba(probe), expected, atol=1e-4)
