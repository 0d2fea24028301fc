"""core.finetune: teaching a model digits it misreads, without breaking it or the shared original."""

from __future__ import annotations

import draw_support
import numpy as np
import pytest

from core import data, finetune, registry


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with draw_support.private_env(tmp_path_factory, "finetune") as dirs:
        yield dirs


@pytest.fixture(scope="module")
def sideways_fours(sample_test, sample_answers):
    """A deliberately confusing kind: 4s written lying on their side (rotated 90 degrees)."""
    return np.rot90(sample_test.images[sample_answers == 4], 1, axes=(1, 2)).copy()


def _reads_as(model: registry.LoadedModel, images: np.ndarray, label: int) -> float:
    return float(np.mean(model.predict_proba(images).argmax(1) == label))


@pytest.mark.slow
def test_teaching_sideways_fours(env, sideways_fours):
    base = registry.load_model(env.name)
    weights_before = [w.copy() for w in base.model.get_weights()]
    taught, held_out = sideways_fours[:10], sideways_fours[10:]
    for img in taught:
        data.append_user_digit(img, 4)
    before_taught, before_held = _reads_as(base, taught, 4), _reads_as(base, held_out, 4)
    assert before_taught <= 0.3  # the base model really does misread them

    result = finetune.finetune(base, data.load_user_digits())

    assert result.name == f"{env.name}-taught" and result.base == env.name
    assert result.n_user == 10 and result.n_replay > 0 and result.blend in finetune.BLENDS
    new = registry.load_model(result.name)
    after_taught, after_held = _reads_as(new, taught, 4), _reads_as(new, held_out, 4)
    assert after_taught >= 0.9 and after_taught >= before_taught + 0.6
    assert after_held >= before_held + 0.3  # it learned the kind, not only the ten pictures
    assert result.user_accuracy_before == pytest.approx(before_taught)
    assert result.user_accuracy_after == pytest.approx(after_taught)
    # It still reads ordinary digits: the same validation split as the base, at most 3 points lost.
    assert result.val_accuracy_before == pytest.approx(base.meta["metrics"]["val_accuracy"])
    assert result.val_accuracy_after is not None
    assert result.val_accuracy_after >= result.val_accuracy_before - 0.03
    # The original (shared with other visitors) is untouched, in memory and on disk.
    for w0, w1 in zip(weights_before, base.model.get_weights(), strict=True):
        np.testing.assert_array_equal(w0, w1)
    on_disk = registry.load_model(env.name)
    assert _reads_as(on_disk, taught, 4) == pytest.approx(before_taught)
    meta = registry.read_meta(result.name)
    assert meta["finetuned_from"] == env.name and meta["taught"]["user_digits"] == 10
    assert meta["metrics"]["val_accuracy"] == pytest.approx(result.val_accuracy_after)
    assert meta["data"]["user_digits"] == 10

    # Teaching the taught model again gives `-taught-2`, not `-taught-taught`.
    assert finetune.taught_name(result.name) == f"{env.name}-taught-2"


def test_random_forest_is_refused(env, tmp_path_factory):
    name = draw_support.small_model(
        env.model_cache, env.models, arch="random-forest",
        name="draw-forest", n_estimators=20,
    )
    forest = registry.load_model(name)
    user = data.Dataset(np.zeros((1, 28, 28), np.uint8), np.array([3]), "u", "user", "f")
    with pytest.raises(ValueError, match="only Keras models can be fine-tuned"):
        finetune.finetune(forest, user)


def test_no_user_digits_is_refused(env):
    base = registry.load_model(env.name)
    with pytest.raises(ValueError, match="no taught digits"):
        finetune.finetune(base, None)
    empty = data.Dataset(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), "u", "user", "f")
    with pytest.raises(ValueError, match="no taught digits"):
        finetune.finetune(base, empty)
