"""core.models: every architecture builds with the studio's contract and learns digits.

Contract: raw images `(n, 28, 28)` with values 0..255 in, class probabilities `(n, 10)` out.
The learning tests train on a few hundred committed sample digits; bounds were measured over
several seeds (worst seen in brackets) and set with a wide margin over chance (10%).
"""

from __future__ import annotations

import numpy as np
import pytest
import training_support

from core import data, models, prediction, registry, training

KERAS_ARCHS = [name for name, a in models.ARCHITECTURES.items() if a.kind == models.KERAS]


def test_registry_lists_the_documented_architectures():
    assert list(models.ARCHITECTURES) == [
        "dr-cnn", "dr-v", "dr-sep", "dr-sep-elastic", "dr-sep-deep", "dr-sep-deskew", "kaggle-cnn", "lenet5",
        "mlp", "random-forest",
    ]
    assert models.DEFAULT_ARCH == "dr-sep-elastic"
    assert models.get_architecture("random-forest").kind == models.SKLEARN
    assert set(KERAS_ARCHS) == {"dr-cnn", "dr-v", "dr-sep", "dr-sep-elastic", "dr-sep-deep", "dr-sep-deskew",
                                "kaggle-cnn", "lenet5", "mlp"}
    for arch in models.ARCHITECTURES.values():
        assert arch.description, arch.name


def test_unknown_architecture_error_lists_the_choices():
    with pytest.raises(ValueError, match=r"unknown architecture 'resnet'.*dr-cnn.*random-forest"):
        models.get_architecture("resnet")


@pytest.mark.slow  # builds Keras models (TensorFlow)
@pytest.mark.parametrize("name", KERAS_ARCHS)
def test_keras_model_maps_raw_images_to_probabilities(name: str, sample_train: data.Dataset):
    model = models.build(name)
    assert tuple(model.input_shape) == (None, 28, 28)
    assert tuple(model.output_shape) == (None, 10)
    x = sample_train.images[:5].astype(np.float32)  # raw 0..255: rescaling is inside the model
    probs = np.asarray(model(x, training=False))
    assert probs.shape == (5, 10)
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)


@pytest.mark.slow  # builds Keras models (TensorFlow)
@pytest.mark.parametrize("name", ["dr-cnn", "dr-v", "dr-sep", "kaggle-cnn"])
def test_augmentation_acts_only_while_training(name: str, sample_train: data.Dataset):
    model = models.build(name, augment=True, augment_strength=1.0)
    assert any(layer.name.startswith("aug_") for layer in model.layers)
    x = sample_train.images[:8].astype(np.float32)
    first, second = np.asarray(model(x, training=False)), np.asarray(model(x, training=False))
    np.testing.assert_array_equal(first, second)  # predictions never depend on random augmentation
    plain = models.build(name, augment=False)
    assert not any(layer.name.startswith("aug_") for layer in plain.layers)
    assert plain.count_params() == model.count_params()  # augmentation layers hold no weights


@pytest.mark.slow  # builds Keras models (TensorFlow)
def test_parameter_counts_match_the_layer_arithmetic():
    # MLP 784-256-128-10 and LeNet-5 (conv 6x5x5, conv 16x5x5 -> 5x5x16, dense 120/84/10).
    mlp = (784 * 256 + 256) + (256 * 128 + 128) + (128 * 10 + 10)
    lenet = 6 * (25 + 1) + 16 * (6 * 25 + 1) + (400 * 120 + 120) + (120 * 84 + 84) + (84 * 10 + 10)
    assert models.parameter_count("mlp") == mlp == 235_146
    assert models.parameter_count("lenet5") == lenet == 61_706
    dr_cnn, kaggle_cnn = models.parameter_count("dr-cnn"), models.parameter_count("kaggle-cnn")
    assert 100_000 < dr_cnn < 400_000  # 202,538 with the flatten head
    assert kaggle_cnn > 3 * dr_cnn  # 887,530: its dense 256 on a 7x7x64 map dominates
    # dr-v: dr-cnn's convs, one more 128x3x3 conv + batch norm, and a dense head on 5x5x128.
    convs = 32 * 9 + 32 * 32 * 9 + 64 * 32 * 9 + 64 * 64 * 9 + 128 * 64 * 9 + 128 * 128 * 9
    norms = 4 * (32 + 32 + 64 + 64 + 128 + 128)  # scale, offset, moving mean and variance
    assert models.parameter_count("dr-v") == convs + norms + 5 * 5 * 128 * 10 + 10 == 319_786
    # dr-sep: a 32x3x3 conv, then separable convs (a 3x3 filter per input channel + a 1x1 mix).
    mixes = [(32, 64), (64, 128), (128, 128), (128, 256), (256, 256)]
    separable = sum(c * 9 + c * f for c, f in mixes)
    norms = 4 * (32 + 64 + 128 + 128 + 256 + 256)
    assert models.parameter_count("dr-sep") == 32 * 9 + separable + norms + 5 * 5 * 256 * 10 + 10 == 198_154
    assert models.parameter_count("random-forest") is None


def test_random_forest_is_built_with_the_requested_trees_and_seed():
    forest = models.build("random-forest", n_estimators=17, seed=3)
    assert forest.n_estimators == 17 and forest.random_state == 3


# --------------------------------------------------------------------------- behaviour: they learn

# (architecture, digits, epochs, batch size, minimum validation accuracy).
# Measured on a loaded 2-core machine, seeds 0-2, val fraction 0.25: mlp 0.80-0.82 (2 epochs),
# lenet5 0.79-0.84, kaggle-cnn 0.83-0.90, dr-cnn 0.89-0.91 (4 epochs at batch 16: with batch norm
# and a one-cycle schedule its first epoch is near chance), random-forest 0.83-0.85 (50 trees).
LEARNING = [
    pytest.param("mlp", 600, 2, 32, 0.6, id="mlp", marks=pytest.mark.slow),
    pytest.param("random-forest", 600, None, None, 0.6, id="random-forest"),
    pytest.param("lenet5", 600, 3, 32, 0.5, id="lenet5", marks=pytest.mark.slow),
    pytest.param("kaggle-cnn", 600, 3, 32, 0.5, id="kaggle-cnn", marks=pytest.mark.slow),
    pytest.param("dr-cnn", 600, 4, 16, 0.5, id="dr-cnn", marks=pytest.mark.slow),
    pytest.param("dr-v", 600, 4, 16, 0.5, id="dr-v", marks=pytest.mark.slow),
    pytest.param("dr-sep", 600, 4, 16, 0.5, id="dr-sep", marks=pytest.mark.slow),
]


@pytest.mark.parametrize(("name", "n", "epochs", "batch_size", "minimum"), LEARNING)
def test_architecture_learns_a_few_hundred_digits(
    name, n, epochs, batch_size, minimum, sample_train: data.Dataset, tmp_dirs
):
    subset = data.Dataset(sample_train.images[:n], sample_train.labels[:n], "subset", "sample", f"first-{n}")
    config = training.TrainConfig(
        arch=name, epochs=epochs, batch_size=batch_size, augment=False if epochs else None,
        val_fraction=0.25, seed=0, name=f"learn-{name}", n_estimators=50 if epochs is None else None,
    )
    result = training_support.train_here(config, subset)
    assert result is not None, registry.read_meta(f"learn-{name}").get("error")
    assert result["val_accuracy"] > minimum, result
    # The saved model says the same on the same validation digits.
    _, val_idx = data.split_indices(subset.labels, val_fraction=0.25, seed=0)
    probs = prediction.load(f"learn-{name}").predict_proba(subset.images[val_idx])
    assert probs.shape == (len(val_idx), 10)
    saved_acc = float((probs.argmax(1) == subset.labels[val_idx]).mean())
    assert saved_acc == pytest.approx(result["val_accuracy"], abs=1e-6)
