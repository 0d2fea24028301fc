"""core.finetune: teaching a model digits it misreads, without breaking it or the shared original."""

from __future__ import annotations

import draw_support
import numpy as np
import pytest

from core import data, finetune, job_process, jobs, prediction, registry
from core.training import TrainConfig

pytestmark = pytest.mark.slow  # every test trains a Keras model to fine-tune (TensorFlow)


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    with draw_support.private_env(tmp_path_factory, "finetune") as dirs:
        yield dirs


@pytest.fixture(scope="module")
def sideways_fours(sample_test, sample_answers):
    """A deliberately confusing kind: 4s written lying on their side (rotated 90 degrees)."""
    return np.rot90(sample_test.images[sample_answers == 4], 1, axes=(1, 2)).copy()


def _reads_as(model: prediction.Predictor, images: np.ndarray, label: int) -> float:
    return float(np.mean(model.predict_proba(images).argmax(1) == label))


def _finetune_job(base: str) -> tuple[str, dict | None]:
    """Run a fine-tune job of `base` in this process (as the Draw page's job process does)."""
    train = data.load_train()
    taught = data.load_user_digits()
    config = TrainConfig(arch=registry.read_meta(base).get("arch", "mlp"), name=finetune.taught_name(base))
    name = jobs.enqueue(config, jobs.DataRef.of(train, data.find_data().train), owner="tests",
                        user_digits=taught.n if taught is not None else 0,
                        job={"kind": jobs.FINETUNE, "base": base})
    return name, job_process.run(name)


@pytest.mark.slow
def test_teaching_sideways_fours(env, sideways_fours):
    base = prediction.load(env.name)
    base_file = (env.models / env.name / registry.KERAS_FILE).read_bytes()
    taught, held_out = sideways_fours[:10], sideways_fours[10:]
    for img in taught:
        data.append_user_digit(img, 4)
    before_taught, before_held = _reads_as(base, taught, 4), _reads_as(base, held_out, 4)
    assert before_taught <= 0.3  # the base model really does misread them

    name, result = _finetune_job(env.name)

    assert name == f"{env.name}-taught" and result is not None
    meta = registry.read_meta(name)
    record = meta["taught"]
    assert meta["finetuned_from"] == env.name and meta["status"] == "done"
    assert record["user_digits"] == 10 and record["replay_digits"] > 0 and record["blend"] in finetune.BLENDS
    new = prediction.load(name)
    after_taught, after_held = _reads_as(new, taught, 4), _reads_as(new, held_out, 4)
    assert after_taught >= 0.9 and after_taught >= before_taught + 0.6
    assert after_held >= before_held + 0.3  # it learned the kind, not only the ten pictures
    assert record["user_accuracy_before"] == pytest.approx(before_taught)
    assert record["user_accuracy_after"] == pytest.approx(after_taught)
    # It still reads ordinary digits: the same validation split as the base, at most 3 points lost.
    assert record["val_accuracy_before"] == pytest.approx(base.meta["metrics"]["val_accuracy"])
    assert record["val_accuracy_after"] >= record["val_accuracy_before"] - 0.03
    assert meta["metrics"]["val_accuracy"] == pytest.approx(record["val_accuracy_after"])
    assert meta["data"]["user_digits"] == 10
    # The original is untouched on disk, and reads as before.
    assert (env.models / env.name / registry.KERAS_FILE).read_bytes() == base_file
    assert _reads_as(prediction.load(env.name), taught, 4) == pytest.approx(before_taught)
    # The new model has seen the taught digits: the leakage check knows it.
    hashes = registry.load_train_hashes(name)
    assert np.isin(data.row_hashes(taught), hashes).all()

    # Teaching again makes `-taught-2`, not `-taught-taught`.
    assert finetune.taught_name(name) == f"{env.name}-taught"
    again, _ = _finetune_job(name)
    assert again == f"{env.name}-taught-2"


def test_random_forest_is_refused_and_the_job_says_so(env):
    name = draw_support.small_model(env.model_cache, env.models, arch="random-forest", name="draw-forest",
                                    n_estimators=20)
    data.append_user_digit(np.zeros((28, 28), np.uint8), 3)
    run, result = _finetune_job(name)
    assert result is None
    meta = registry.read_meta(run)
    assert meta["status"] == "failed" and "only Keras models can be fine-tuned" in meta["error"]


def test_no_user_digits_is_refused(env):
    base, meta = registry.load_keras(env.name), registry.read_meta(env.name)
    train = data.load_train()
    with pytest.raises(ValueError, match="no taught digits"):
        finetune.finetune(base, meta, None, train)
    empty = data.Dataset(np.zeros((0, 28, 28), np.uint8), np.zeros(0, np.int64), "u", "user", "f")
    with pytest.raises(ValueError, match="no taught digits"):
        finetune.finetune(base, meta, empty, train)
