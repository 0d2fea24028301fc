"""core.training: jobs report batches and epochs, stop fast keeping the best epoch, save as they go,
and only one runs at a time. Tiny data (a few hundred sample digits, MLP) keeps each test short."""

from __future__ import annotations

import json
import math
import os
import time

import numpy as np
import pytest

from core import data, registry, training


def _subset(ds: data.Dataset, n: int, start: int = 0) -> data.Dataset:
    return data.Dataset(ds.images[start:start + n], ds.labels[start:start + n], f"first-{n}", "sample",
                        f"subset-{start}-{n}")


def _wait(predicate, timeout: float, what: str, poll: float = 0.02):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


# --------------------------------------------------------------------------- settings


def test_config_fills_the_architecture_defaults_and_keeps_overrides():
    settings = training.TrainConfig(arch="kaggle-cnn", epochs=2, seed=7).resolved()
    assert settings["epochs"] == 2 and settings["seed"] == 7
    assert settings["optimizer"] == "rmsprop" and settings["schedule"] == "plateau"
    assert settings["batch_size"] == 86 and settings["val_fraction"] == 0.1
    assert training.TrainConfig().resolved()["optimizer"] == "adamw"  # dr-cnn, the default


def test_job_refuses_unlabelled_data_and_unsafe_names(sample_test, sample_train, tmp_dirs):
    with pytest.raises(ValueError, match="labelled"):
        training.TrainingJob(training.TrainConfig(arch="mlp"), sample_test)
    with pytest.raises(ValueError, match="invalid model name"):
        training.TrainingJob(training.TrainConfig(arch="mlp", name="../escape"), sample_train)
    assert list(tmp_dirs.models.iterdir()) == []


def test_describe_settings_is_one_readable_line():
    line = training.describe_settings({"epochs": 3, "optimizer": "adam", "seed": 1, "other": 5})
    assert line == "epochs=3, optimizer=adam, seed=1"


# --------------------------------------------------------------------------- a whole run


@pytest.fixture(scope="module")
def finished_mlp(sample_train, tmp_path_factory):
    """One short MLP run watched from outside: the snapshots seen while it ran, the job, its folder."""
    models_dir = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_MODELS_DIR", str(models_dir))
        config = training.TrainConfig(arch="mlp", epochs=2, batch_size=32, val_fraction=0.1, seed=0,
                                      name="events-mlp")
        job = training.TrainingJob(config, _subset(sample_train, 400), owner="tester").start()
        seen = []
        while job.running:
            seen.append(job.snapshot())
            time.sleep(0.01)
        job.join()
        yield {"job": job, "seen": seen, "final": job.snapshot(), "folder": models_dir / "events-mlp",
               "models_dir": models_dir}


def test_job_emits_batch_and_epoch_events_while_it_runs(finished_mlp):
    seen = finished_mlp["seen"]
    mid = [s for s in seen if s.status == "running" and 0 < s.progress < 1 and s.batches["step"]]
    assert mid, "no snapshot caught the job between its first and last batch"
    assert any(len(s.history) == 1 for s in mid), "no snapshot between the two epochs"
    for s in mid:  # consistent copies: as many losses as steps, progress = steps done / total
        assert len(s.batches["loss"]) == len(s.batches["accuracy"]) == len(s.batches["step"])
        assert s.progress == pytest.approx(s.batches["step"][-1] / 24)
        assert s.owner == "tester" and s.name == "events-mlp" and s.epochs == 2
    eta = [s.eta_s for s in mid if s.eta_s is not None]
    assert eta and all(e >= 0 for e in eta)


def test_finished_job_reports_every_batch_and_epoch(finished_mlp):
    snap = finished_mlp["final"]
    steps_per_epoch = math.ceil((400 - 40) / 32)  # 10% of 400 held out -> 360 train digits
    assert snap.status == "done" and snap.error is None and snap.progress == 1.0 and snap.eta_s is None
    assert snap.batches["step"] == list(range(1, 2 * steps_per_epoch + 1))
    assert all(np.isfinite(snap.batches["loss"])) and all(0 <= a <= 1 for a in snap.batches["accuracy"])
    assert [h["epoch"] for h in snap.history] == [1, 2]
    for row in snap.history:
        assert set(row) == {"epoch", "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate",
                            "time_s", "elapsed_s", "images_per_s"}
        assert 0 <= row["val_accuracy"] <= 1 and row["val_loss"] > 0 and row["images_per_s"] > 0
        assert row["learning_rate"] == pytest.approx(1e-3)  # mlp: adam, constant schedule
    assert snap.history[1]["elapsed_s"] > snap.history[0]["elapsed_s"]
    assert snap.history[1]["loss"] < snap.history[0]["loss"]  # it learns
    best = max(snap.history, key=lambda h: h["val_accuracy"])
    assert snap.result["val_accuracy"] == pytest.approx(best["val_accuracy"])
    assert snap.result["best_epoch"] == best["epoch"] and snap.result["epochs_run"] == 2
    assert snap.result["status"] == "complete" and snap.result["name"] == "events-mlp"
    assert snap.result["val_accuracy"] > 0.5


def test_finished_job_saved_model_meta_and_history(finished_mlp):
    folder, result = finished_mlp["folder"], finished_mlp["final"].result
    assert sorted(p.name for p in folder.iterdir()) == [
        "history.csv", "meta.json", "model.keras", "train_hashes.npy"]
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["name"] == "events-mlp" and meta["arch"] == "mlp" and meta["kind"] == "keras"
    assert meta["status"] == "complete" and meta["owner"] == "tester" and meta["seed"] == 0
    assert meta["metrics"]["val_accuracy"] == pytest.approx(result["val_accuracy"])
    assert meta["param_count"] == 235_146 and meta["best_epoch"] == result["best_epoch"]
    assert meta["params"]["epochs"] == 2 and meta["params"]["optimizer"] == "adam"
    assert meta["data"]["fingerprint"] == "subset-0-400" and meta["data"]["n_train"] == 360
    assert meta["data"]["split"]["n_val"] == 40 and meta["data"]["user_digits"] == 0
    assert meta["training_time_s"] > 0 and meta["created_at"][:2] == "20"
    lines = (folder / "history.csv").read_text().splitlines()
    assert lines[0].split(",")[:5] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert len(lines) == 3
    hashes = np.load(folder / "train_hashes.npy")
    assert hashes.dtype == np.uint64 and len(hashes) == 360


# --------------------------------------------------------------------------- stop and checkpoints


def _stop_within_two_seconds(job: training.TrainingJob) -> None:
    t0 = time.monotonic()
    job.stop()
    job.join(10)
    took = time.monotonic() - t0
    assert not job.running and took < 2.0, f"stop took {took:.2f}s"


def test_checkpoint_reloads_while_running_and_stop_ends_within_two_seconds(sample_train, tmp_dirs, no_job):
    ds = _subset(sample_train, 1500)
    config = training.TrainConfig(arch="mlp", epochs=200, batch_size=32, val_fraction=0.2, name="long-mlp")
    job = training.start_job(config, ds, owner="alice")
    # The epoch's row appears in the snapshot a moment before its checkpoint is written.
    _wait(lambda: (tmp_dirs.models / "long-mlp" / "meta.json").is_file(), 90, "the first checkpoint")
    assert job.running

    # The best epoch so far is on disk already: loadable and useful while the job goes on.
    meta = registry.read_meta("long-mlp")
    assert meta["status"] == "training" and meta["epochs_done"] >= 1
    # Its process is this one, alive: listed as training (not "interrupted", as after a kill).
    assert meta[registry.WRITER_KEY]["pid"] == os.getpid()
    assert {m.name: m.status for m in registry.list_models()} == {"long-mlp": "training"}
    _, val_idx = data.split_indices(ds.labels, val_fraction=0.2, seed=0)
    probs = registry.load_model("long-mlp").predict_proba(ds.images[val_idx])
    assert (probs.argmax(1) == ds.labels[val_idx]).mean() > 0.5

    _stop_within_two_seconds(job)
    snap = job.snapshot()
    assert snap.status == "stopped" and snap.error is None
    assert 1 <= snap.result["epochs_run"] < 200 and snap.result["status"] == "stopped"
    listed = {m.name: m for m in registry.list_models()}
    assert listed["long-mlp"].status == "stopped"
    assert listed["long-mlp"].val_accuracy == pytest.approx(snap.result["val_accuracy"])
    best = max(h["val_accuracy"] for h in snap.history)
    assert snap.result["val_accuracy"] == pytest.approx(best)  # the best epoch is what was kept
    assert registry.load_model("long-mlp").predict_proba(ds.images[:3]).shape == (3, 10)


def test_stop_in_the_first_epoch_keeps_that_partial_epoch(sample_train, tmp_dirs, no_job):
    config = training.TrainConfig(arch="mlp", epochs=5, batch_size=16, val_fraction=0.1, name="early-stop")
    job = training.start_job(config, _subset(sample_train, 3000), owner="alice")
    _wait(lambda: job.snapshot().batches["step"], 90, "the first batch")
    _stop_within_two_seconds(job)
    snap = job.snapshot()
    assert snap.status == "stopped" and len(snap.history) == 1
    assert snap.batches["step"][-1] < 169  # 169 steps per epoch: it did not finish the epoch
    assert registry.read_meta("early-stop")["status"] == "stopped"
    assert [m.name for m in registry.list_models()] == ["early-stop"]


def test_second_job_is_refused_naming_the_first_and_its_owner(sample_train, tmp_dirs, no_job):
    long = training.TrainConfig(arch="mlp", epochs=100, batch_size=32, name="first-job")
    first = training.start_job(long, _subset(sample_train, 1000), owner="alice")
    with pytest.raises(training.JobBusy, match=r"first-job \(mlp\), started by alice"):
        training.start_job(training.TrainConfig(arch="mlp", name="second"), sample_train, owner="bob")
    assert training.current_job() is first
    first.stop()
    first.join(30)
    assert not first.running
    second = training.start_job(training.TrainConfig(arch="random-forest", n_estimators=10, name="second"),
                                _subset(sample_train, 300), owner="bob")
    assert training.current_job() is second and second.owner == "bob"
    second.join(60)
    assert second.snapshot().status == "done"


# --------------------------------------------------------------------------- other kinds of run


def test_forest_job_grows_trees_and_saves_a_joblib_model(sample_train, tmp_dirs):
    config = training.TrainConfig(arch="random-forest", n_estimators=20, val_fraction=0.2, name="forest")
    job = training.TrainingJob(config, _subset(sample_train, 500))
    result = job.run()
    snap = job.snapshot()
    assert snap.status == "done" and snap.progress == 1.0 and snap.message == "saved as forest"
    assert result["val_accuracy"] > 0.6 and len(snap.history) == 1
    meta = registry.read_meta("forest")
    assert meta["kind"] == "sklearn" and meta["n_estimators"] == 20 and meta["param_count"] is None
    assert (tmp_dirs.models / "forest" / "model.joblib").is_file()
    probs = registry.load_model("forest").predict_proba(sample_train.images[:4])
    assert probs.shape == (4, 10)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-6)


def test_impossible_settings_are_refused_before_any_work(sample_train, tmp_dirs):
    for bad, message in (
        (dict(optimizer="adagrad"), "unknown optimizer 'adagrad'"),
        (dict(schedule="step"), "unknown schedule 'step'"),
        (dict(epochs=0), "epochs must be between"),
        (dict(val_fraction=0.0), "val_fraction must be between"),
    ):
        with pytest.raises(ValueError, match=message):
            training.TrainingJob(training.TrainConfig(arch="mlp", name="bad", **bad), sample_train)
    assert list(tmp_dirs.models.iterdir()) == []


def test_failed_job_reports_the_error_and_saves_nothing(sample_train, tmp_dirs, monkeypatch):
    def broken_build(name, **options):
        raise RuntimeError("out of memory while building")

    monkeypatch.setattr(training.models, "build", broken_build)
    config = training.TrainConfig(arch="mlp", epochs=1, name="broken")
    job = training.TrainingJob(config, _subset(sample_train, 200))
    assert job.run() is None
    snap = job.snapshot()
    assert snap.status == "failed" and snap.message == "training failed"
    assert snap.error == "RuntimeError: out of memory while building"
    assert registry.list_models() == []


def test_taught_digits_are_added_to_training_only(sample_train, tmp_dirs):
    extra = _subset(sample_train, 30, start=5000)
    config = training.TrainConfig(arch="random-forest", n_estimators=10, val_fraction=0.2, name="taught")
    training.TrainingJob(config, _subset(sample_train, 300), extra=extra).run()
    meta = registry.read_meta("taught")
    assert meta["data"]["user_digits"] == 30
    assert meta["data"]["n_train"] == 240 + 30 and meta["data"]["split"]["n_val"] == 60


def test_sklearn_digits_demo_is_the_classic_result():
    demo = training.train_sklearn_digits(seed=0, n_estimators=50)
    assert demo["n_train"] + demo["n_test"] == 1797 and demo["n_test"] == 360
    confusion = np.asarray(demo["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 360
    assert demo["accuracy"] == pytest.approx(np.trace(confusion) / 360)
    assert demo["accuracy"] > 0.9  # ~0.97 in scikit-learn's own example
