"""The folded inference graph gives the original model's probabilities, and falls back when it can't."""

from __future__ import annotations

import numpy as np
import pytest

from core import fast_predict, models, registry

keras = pytest.importorskip("keras")


def _with_batchnorm_statistics(model, seed: int = 0):
    """Give every batch norm non-trivial statistics, as training would (fresh ones are 0/1)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, var = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape), rng.normal(0, 0.3, beta.shape),
                rng.normal(0, 0.5, mean.shape), rng.uniform(0.2, 2.0, var.shape),
            ])
    return model


@pytest.fixture(scope="module")
def dr_cnn():
    keras.utils.set_random_seed(1)
    return _with_batchnorm_statistics(models.build("dr-cnn", augment=True))


def test_fold_removes_batchnorm_and_training_only_layers(dr_cnn):
    folded = fast_predict.fold(dr_cnn)
    kinds = {type(layer).__name__ for layer in folded.layers}
    assert "BatchNormalization" in {type(layer).__name__ for layer in dr_cnn.layers}
    assert not kinds & {"BatchNormalization", "Dropout", "RandomRotation", "RandomZoom", "RandomTranslation"}
    assert sum(isinstance(layer, keras.layers.Conv2D) for layer in folded.layers) == 5
    assert all(layer.use_bias for layer in folded.layers if isinstance(layer, keras.layers.Conv2D))


def test_folded_probabilities_match_the_original(dr_cnn, sample_train):
    x = sample_train.images[:300].astype(np.float32)
    expected = np.asarray(dr_cnn(x, training=False))
    got = fast_predict.predict(dr_cnn, x, batch_size=128)  # three batches, the last one short
    assert got.shape == (300, 10) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, atol=1e-5)
    assert fast_predict.inference_function(dr_cnn) is fast_predict.inference_function(dr_cnn)  # built once


def test_a_model_that_is_not_a_chain_runs_unfolded():
    inp = keras.Input((28, 28))
    h = keras.layers.Reshape((28, 28, 1))(inp)
    a = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(h)
    a = keras.layers.BatchNormalization()(a)
    h = keras.layers.Add()([a, keras.layers.Conv2D(4, 1)(h)])  # a skip connection
    out = keras.layers.Dense(10, activation="softmax")(keras.layers.Flatten()(h))
    model = _with_batchnorm_statistics(keras.Model(inp, out), seed=2)
    x = np.random.default_rng(3).uniform(0, 255, (5, 28, 28)).astype(np.float32)
    expected = np.asarray(model(x, training=False))
    np.testing.assert_allclose(fast_predict.predict(model, x), expected, atol=1e-5)


def test_shipped_model_predictions_are_unchanged_by_folding(sample_train):
    default_model = registry.load_model("default-cnn")  # read only
    x = sample_train.images[:64].astype(np.float32)
    expected = np.asarray(default_model.model(x, training=False))
    np.testing.assert_allclose(default_model.predict_proba(x), expected, atol=1e-5)
