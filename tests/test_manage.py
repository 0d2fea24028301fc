"""Run management: rename, note, delete (the shipped model protected, a model a job uses refused),
cancel a queued run, continue an ended one (its history goes on), early stopping, model export and
import (a tampered archive refused), and the queue (a failed run does not stop the ones after it)."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest
import training_support
from training_support import wait_for

from core import (
    archive,
    data,
    job_process,
    jobs,
    kaggle_csv,
    manage,
    prediction,
    registry,
    runs,
    status,
    training,
)
from core.training import TrainConfig


@pytest.fixture
def forests(tmp_dirs, sample_train, save_forest):
    """Two small saved forests (no TensorFlow), the second one the shipped (protected) model."""
    save_forest("mine", sample_train.images[:300], sample_train.labels[:300], val_accuracy=0.8)
    save_forest("shipped", sample_train.images[:300], sample_train.labels[:300], val_accuracy=0.7)
    registry.write_meta("shipped", {**registry.read_meta("shipped"), manage.PROTECTED_KEY: True,
                                    "status": "done"})
    return tmp_dirs


@pytest.fixture
def small_file(tmp_dirs, sample_train):
    path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", sample_train.images[:1200],
                                       sample_train.labels[:1200])
    return data.load_csv(path, expect_labels=True, source_kind=data.SOURCE_KAGGLE), path


# --------------------------------------------------------------------------- rename, note, delete


def test_rename_moves_the_run_and_refuses_bad_or_taken_names(forests, sample_train):
    assert manage.rename("mine", "my-forest") == "my-forest"
    assert not (forests.models / "mine").exists()
    assert registry.read_meta("my-forest")["name"] == "my-forest"
    assert prediction.load("my-forest").predict_proba(sample_train.images[:2]).shape == (2, 10)
    for bad, message in (("../out", "invalid model name"), ("a b", "invalid model name"),
                         ("shipped", "already exists"), ("", "invalid model name")):
        with pytest.raises(ValueError, match=message):
            manage.rename("my-forest", bad)
    with pytest.raises(ValueError, match="shipped model: it cannot be renamed"):
        manage.rename("shipped", "mine-now")
    assert sorted(m.name for m in registry.list_models()) == ["my-forest", "shipped"]  # nothing else moved


def test_a_note_is_kept_shown_and_removed(forests):
    manage.set_note("mine", "  trained for the demo  ")
    assert registry.read_meta("mine")["note"] == "trained for the demo"
    assert runs.summary(runs.read_run("mine"))["note"] == "trained for the demo"
    manage.set_note("mine", "")
    assert "note" not in registry.read_meta("mine")
    with pytest.raises(ValueError, match="at most 1000 characters"):
        manage.set_note("mine", "x" * 1001)


def test_delete_refuses_the_shipped_model_and_a_running_or_used_run(forests):
    with pytest.raises(ValueError, match="shipped model: it cannot be deleted"):
        manage.delete("shipped")
    registry.write_meta("busy", {"name": "busy", "status": "queued", "job": {"kind": "finetune",
                                                                              "base": "mine"}})
    with pytest.raises(ValueError, match="busy is queued: it cannot be deleted"):
        manage.delete("busy")
    with pytest.raises(ValueError, match="mine is in use by the job busy"):
        manage.delete("mine")
    registry.write_meta("busy", {"name": "busy", "status": "stopped"})
    assert manage.delete("mine") == []
    assert [m.name for m in registry.list_models()] == ["shipped"]


def test_cancel_a_queued_run_is_for_its_owner_only(small_file, tmp_dirs):
    ds, path = small_file
    name = jobs.enqueue(TrainConfig(arch="random-forest", n_estimators=5, name="later"),
                        jobs.DataRef.of(ds, path), owner="alice", token="alice-key")
    with pytest.raises(PermissionError, match="only alice, who queued later, can cancel it"):
        manage.cancel(name, "bob-key")
    assert manage.cancel(name, "alice-key") is None
    assert name not in [v.name for v in runs.list_runs()]  # never started: nothing to list or keep
    assert jobs.start_next() == []  # nothing left to start



def test_cancelling_more_epochs_leaves_the_run_as_it_had_ended(tmp_dirs):
    registry.write_meta("kept", {"name": "kept", "status": status.DONE, "arch": "mlp"})
    (registry.model_dir("kept") / "model.keras").write_bytes(b"the trained model")
    jobs.requeue("kept", {"kind": jobs.CONTINUE, "epochs": 3}, owner="alice", token="alice-key", start=False)
    assert runs.read_run("kept").status == status.QUEUED
    assert manage.cancel("kept", "alice-key") == status.DONE
    meta = registry.read_meta("kept")
    assert meta["status"] == status.DONE and meta["note"] == "cancelled before it started"
    assert (registry.model_dir("kept") / "model.keras").read_bytes() == b"the trained model"

# --------------------------------------------------------------------------- the queue


@pytest.mark.slow
def test_a_failed_run_does_not_stop_the_ones_after_it(small_file, no_stray_jobs):
    ds, path = small_file
    ref = jobs.DataRef.of(ds, path)
    first = jobs.enqueue(TrainConfig(arch="random-forest", n_estimators=5, name="q1"), ref, owner="a")
    broken = jobs.enqueue(TrainConfig(arch="random-forest", n_estimators=5, name="q2"), ref, owner="a")
    meta = registry.read_meta(broken)
    registry.write_meta(broken, {**meta, "arch": "resnet-9000", "params": {**meta["params"],
                                                                            "arch": "resnet-9000"}})
    last = jobs.enqueue(TrainConfig(arch="random-forest", n_estimators=5, name="q3"), ref, owner="a")
    assert jobs.start_next() == [first]
    wait_for(lambda: runs.read_run(last).status == status.DONE, 180, "the queue to go on past the failure")
    assert runs.read_run(first).status == status.DONE
    failed = runs.read_run(broken)
    assert failed.status == status.FAILED and "unknown architecture 'resnet-9000'" in failed.meta["error"]


# --------------------------------------------------------------------------- continue, early stopping


@pytest.mark.slow
def test_continue_goes_on_counting_epochs_and_keeps_the_best(small_file, tmp_dirs):
    ds, path = small_file
    config = TrainConfig(arch="mlp", epochs=2, batch_size=32, val_fraction=0.2, name="more")
    training_support.train_here(config, ds)
    before = registry.read_history("more")
    jobs.requeue("more", {"kind": jobs.CONTINUE, "epochs": 3}, owner="alice", start=False)
    assert runs.read_run("more").status == status.QUEUED
    result = job_process.run("more")
    history = registry.read_history("more")
    assert [h["epoch"] for h in history] == [1, 2, 3, 4, 5] and history[:2] == before
    meta = registry.read_meta("more")
    assert meta["status"] == "done" and meta["params"]["epochs"] == 5 and meta["epochs_done"] == 5
    assert meta["continued"][0]["from_epoch"] == 2 and meta["continued"][0]["epochs"] == 3
    best = max(history, key=lambda h: h["val_accuracy"])
    assert meta["metrics"]["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert result["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert history[2]["elapsed_s"] > history[1]["elapsed_s"]  # the clock goes on too
    with pytest.raises(ValueError, match="wait until it has ended"):
        registry.write_meta("more", {**meta, "status": "running"})
        jobs.requeue("more", {"kind": jobs.CONTINUE, "epochs": 1}, owner="bob")


@pytest.mark.slow
def test_early_stopping_ends_a_run_that_stopped_improving(tmp_dirs, sample_train):
    """Labels shuffled: nothing can be learned, so validation accuracy soon stops improving."""
    labels = np.random.default_rng(0).permutation(sample_train.labels[:1000])
    ds = data.Dataset(sample_train.images[:1000], labels, "noise.csv", data.SOURCE_KAGGLE, "noise")
    config = TrainConfig(arch="mlp", epochs=30, batch_size=64, patience=2, name="patient")
    training_support.train_here(config, ds)
    history = registry.read_history("patient")
    accuracies = [h["val_accuracy"] for h in history]
    first_best = accuracies.index(max(accuracies)) + 1
    assert len(history) < 30 and len(history) == first_best + 2  # two epochs without a better one
    assert registry.read_meta("patient")["status"] == "done"


@pytest.mark.slow
def test_a_run_that_keeps_its_last_epoch_saves_it_and_names_validations_best(tmp_dirs, sample_train):
    """Labels shuffled: validation accuracy wanders, so its best epoch is not the last one."""
    labels = np.random.default_rng(1).permutation(sample_train.labels[:1000])
    ds = data.Dataset(sample_train.images[:1000], labels, "noise.csv", data.SOURCE_KAGGLE, "noise")
    config = TrainConfig(arch="mlp", epochs=5, batch_size=64, checkpoint="last", name="last")
    result = training_support.train_here(config, ds)
    history = registry.read_history("last")
    val_best = max((h["val_accuracy"], h["epoch"]) for h in history)[1]
    meta = registry.read_meta("last")
    assert val_best != 5 and (meta["best_epoch"], meta["val_best_epoch"]) == (5, val_best)
    assert meta["metrics"]["val_accuracy"] == pytest.approx(history[-1]["val_accuracy"])
    assert result["val_accuracy"] == pytest.approx(history[-1]["val_accuracy"])
    assert (result["checkpoint"], result["best_epoch"], result["val_best_epoch"]) == ("last", 5, val_best)
    # The saved model is the last epoch's: it reads its validation digits as that epoch did.
    split = training.arrays(ds, meta["params"])
    model = registry.load_keras("last")
    read = (model.predict(split.x_val, verbose=0).argmax(axis=1) == split.y_val).mean()
    assert read == pytest.approx(history[-1]["val_accuracy"], abs=1e-6)


# --------------------------------------------------------------------------- export and import


def test_export_imports_back_and_a_tampered_archive_is_refused(forests, sample_train):
    payload = archive.export_bytes("mine")
    back = archive.import_model(payload, source="mine.zip")
    assert back == "mine-2" and registry.read_meta(back)["imported_from"] == "mine.zip"
    expected = prediction.load("mine").predict_proba(sample_train.images[:5])
    np.testing.assert_allclose(prediction.load(back).predict_proba(sample_train.images[:5]), expected)

    tampered = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(payload)) as src, zipfile.ZipFile(tampered, "w") as dst:
        for item in src.namelist():
            content = src.read(item)
            if item == registry.META_FILE:
                content = json.dumps({**json.loads(content), "metrics": {"val_accuracy": 1.0}}).encode()
            dst.writestr(item, content)
    with pytest.raises(ValueError, match="tampered with: meta.json does not match its manifest"):
        archive.import_model(tampered.getvalue(), source="tampered.zip")
    with pytest.raises(ValueError, match="not a readable model export"):
        archive.import_model(b"not a zip", source="junk.zip")
    assert sorted(m.name for m in registry.list_models()) == ["mine", "mine-2", "shipped"]


def test_a_forest_from_another_install_is_never_unpickled(forests, tmp_path, monkeypatch):
    payload = archive.export_bytes("mine")
    other_key = tmp_path / "other.key"
    other_key.write_bytes(b"another install's key" * 2)
    monkeypatch.setenv("DRS_KEY_FILE", str(other_key))
    with pytest.raises(ValueError, match="forest pickled by another install: it is never loaded here"):
        archive.import_model(payload, source="theirs.zip")
    assert not (forests.models / "mine-2").exists()
