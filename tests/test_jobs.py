"""core.jobs and core.job_process: a job is a child process that reports through its files; only its
owner stops it (the best epoch is kept); a killed job is interrupted with its best epoch usable; one
job at a time unless allowed more; a queue goes on by itself; failures are recorded, never lost."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pytest
from training_support import wait_for

from core import data, jobs, kaggle_csv, prediction, processes, registry, runs, serving, status
from core.training import TrainConfig

pytestmark = pytest.mark.slow  # each test starts real job processes (TensorFlow, a few epochs)


@pytest.fixture
def small_file(tmp_dirs, sample_train) -> tuple[data.Dataset, Path]:
    path = kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", sample_train.images[:1500],
                                 sample_train.labels[:1500])
    return data.load_csv(path, expect_labels=True, source_kind=data.SOURCE_KAGGLE), path


def _start(small_file, name: str, *, epochs: int, owner: str = "alice", token: str = "alice-secret",
           arch: str = "mlp", **settings) -> str:
    ds, path = small_file
    config = TrainConfig(arch=arch, epochs=epochs, batch_size=32, val_fraction=0.2, name=name, **settings)
    return jobs.start(config, jobs.DataRef.of(ds, path), owner=owner, token=token)


def test_a_job_runs_in_its_own_process_and_reports_through_its_files(small_file, no_stray_jobs):
    name = _start(small_file, "files", epochs=3)
    seen = []
    view = runs.read_run(name)
    while view.active:
        seen.append(view)
        time.sleep(0.05)
        view = runs.read_run(name)
    assert view.status == status.DONE and not view.problems and view.has_model
    writers = [v.meta.get(status.WRITER_KEY) for v in seen if v.status == status.RUNNING]
    assert writers and all(w["pid"] != processes.this_process()["pid"] for w in writers if w)
    mid = [v for v in seen if v.progress.get("batches", {}).get("step") and v.progress.get("progress", 1) < 1]
    assert mid, "no look caught the live view between the first batch and the end"
    for v in mid:
        p = v.progress
        assert p["epochs"] == 3 and p["steps"] == 3 * 38  # 1,200 training digits / 32
        assert len(p["batches"]["step"]) == len(p["batches"]["loss"]) == len(p["batches"]["accuracy"])
        assert p["progress"] == pytest.approx(p["step"] / p["steps"])
    assert [h["epoch"] for h in view.history] == [1, 2, 3]
    assert view.meta["best_epoch"] == max(view.history, key=lambda h: h["val_accuracy"])["epoch"]
    assert view.meta["metrics"]["val_accuracy"] == pytest.approx(view.kept_val_accuracy)
    assert view.meta["owner"] == "alice" and view.meta["owner_key"] == jobs.owner_key("alice-secret")
    assert "alice-secret" not in (registry.model_dir(name) / registry.META_FILE).read_text()
    folder = registry.model_dir(name)
    assert serving.is_current(folder) and (folder / registry.HASHES_FILE).is_file()
    assert (folder / runs.LOG_FILE).is_file()
    assert prediction.load(name).predict_proba(np.zeros((2, 28, 28))).shape == (2, 10)


def test_only_the_owner_stops_a_job_and_its_best_epoch_is_kept(small_file, no_stray_jobs):
    name = _start(small_file, "stoppable", epochs=200)
    wait_for(lambda: len(runs.read_run(name).history) >= 2, 120, "two epochs")
    with pytest.raises(PermissionError, match="only alice, who started stoppable, can stop it"):
        jobs.stop(name, "bob-secret")
    assert runs.read_run(name).status == status.RUNNING
    epochs_then = len(runs.read_run(name).history)
    jobs.stop(name, "alice-secret")
    view = wait_for(lambda: (v := runs.read_run(name)).status == status.STOPPED and v, 120, "the stop")
    # After the current batch (and saving), not the 200 epochs: at most the epoch under way ends
    # (and one that ended while the stop was being asked).
    assert view.has_model and 2 <= epochs_then <= len(view.history) <= epochs_then + 2
    assert view.meta["metrics"]["val_accuracy"] == pytest.approx(max(h["val_accuracy"] for h in view.history))
    assert serving.is_current(registry.model_dir(name))


def test_a_killed_job_is_interrupted_and_its_best_epoch_is_usable(small_file, no_stray_jobs, sample_train):
    name = _start(small_file, "killed", epochs=200)
    wait_for(lambda: len(runs.read_run(name).history) >= 2, 120, "two epochs")
    writer = runs.read_run(name).meta[status.WRITER_KEY]
    assert processes.kill(writer)
    view = wait_for(lambda: (v := runs.read_run(name)).status == status.INTERRUPTED and v, 30, "the death")
    assert view.has_model and view.meta["status"] == status.RUNNING  # the file was left as it was
    model = prediction.load(name)  # its serving copy is made on first use
    probs = model.predict_proba(sample_train.images[:200])
    assert (probs.argmax(1) == sample_train.labels[:200]).mean() > 0.7


def test_one_job_at_a_time_unless_more_are_allowed(small_file, no_stray_jobs, monkeypatch):
    first = _start(small_file, "first-job", epochs=200)
    before = sorted(p.name for p in registry.model_dir(first).parent.iterdir())
    with pytest.raises(jobs.JobBusy, match=r"first-job \(mlp\), started by alice"):
        _start(small_file, "second", epochs=1, owner="bob", token="bob-secret")
    assert sorted(p.name for p in registry.model_dir(first).parent.iterdir()) == before  # nothing recorded
    monkeypatch.setenv(jobs.MAX_JOBS_ENV, "2")
    second = _start(small_file, "second", epochs=1, owner="bob", token="bob-secret")
    wait_for(lambda: runs.read_run(second).status == status.DONE, 120, "the second job")
    jobs.stop(first, "alice-secret")
    wait_for(lambda: runs.read_run(first).status == status.STOPPED, 60, "the first job to stop")


def test_queued_runs_start_one_after_another_by_themselves(small_file, no_stray_jobs):
    ds, path = small_file
    names = [jobs.enqueue(TrainConfig(arch="random-forest", n_estimators=10, name=f"queued-{i}"),
                          jobs.DataRef.of(ds, path), owner="alice") for i in range(3)]
    assert [runs.read_run(n).status for n in names] == [status.QUEUED] * 3
    assert jobs.start_next() == names[:1]  # one job slot: the oldest starts, the others wait
    wait_for(lambda: all(runs.read_run(n).status == status.DONE for n in names), 180, "the queue to finish")
    started = [runs.read_run(n).meta["started_at"] for n in names]
    assert started == sorted(started)  # in order, each started by the one before it
    assert jobs.start_next() == []  # nothing left


def test_a_failed_job_records_its_error_and_the_other_runs_are_untouched(small_file, no_stray_jobs):
    ds, path = small_file
    done = _start(small_file, "good", epochs=1)
    wait_for(lambda: runs.read_run(done).status == status.DONE, 120, "the good run")
    changed = kaggle_csv.write_kaggle_csv(path, ds.images[:100], ds.labels[:100])  # other digits, same file
    name = _start((ds, changed), "doomed", epochs=1)
    view = wait_for(lambda: (v := runs.read_run(name)).status == status.FAILED and v, 120, "the failure")
    assert "train.csv changed since the run was started" in view.meta["error"]
    assert not view.has_model
    assert runs.read_run(done).status == status.DONE and prediction.load(done).name == done


def test_a_process_that_dies_before_it_starts_is_failed_with_its_log(small_file, no_stray_jobs, monkeypatch):
    monkeypatch.setattr(sys, "executable", "/bin/false")  # the job process cannot even start Python
    name = _start(small_file, "stillborn", epochs=1)
    view = wait_for(lambda: (v := runs.read_run(name)).status == status.FAILED and v, 30, "the reaper")
    assert view.meta["error"] == "the job process exited with code 1"
