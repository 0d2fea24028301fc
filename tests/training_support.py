"""Train a run in the test process, as `python -m core train` does in its own: record it, then run it."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from core import data, job_process, jobs, kaggle_csv
from core.training import TrainConfig


def as_file(ds: data.Dataset, folder: Path | None = None) -> tuple[data.Dataset, Path]:
    """A labelled dataset written as a Kaggle train.csv (the job process reads files), loaded back."""
    folder = Path(folder or tempfile.mkdtemp(prefix="train-"))
    name = f"{ds.name.split('.')[0] or 'train'}.csv"
    path = kaggle_csv.write_kaggle_csv(folder / name, ds.images, ds.labels)
    return data.load_csv(path, expect_labels=True, source_kind=ds.source), path


def train_here(config: TrainConfig, ds: data.Dataset | None = None, *, owner: str = "test",
               **enqueue) -> dict | None:
    """Train `config` on `ds` (default: the committed sample) in this process; the run's result, or
    None when nothing was saved (see `core.job_process.run`)."""
    if ds is None:
        path = data.paths.sample_dir() / "train.csv.gz"
        ds = data.load_csv(path, expect_labels=True, source_kind="sample")
    else:
        ds, path = as_file(ds)
    name = jobs.enqueue(config, jobs.DataRef.of(ds, path), owner=owner, **enqueue)
    return job_process.run(name)


def wait_for(predicate: Callable[[], object], timeout: float, what: str, poll: float = 0.1):
    """`predicate()`'s first true value, asked every `poll` seconds (a job runs in another process);
    the test fails after `timeout` seconds, a bound that only keeps a broken run from hanging it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")
