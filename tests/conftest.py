"""Fixtures shared by all tests: the committed sample, loaded once, and private data folders."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` run from anywhere still imports `core` and `studio`
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from core import data  # noqa: E402


def _read_only(ds: data.Dataset) -> data.Dataset:
    """Session fixtures are shared: make accidental in-place edits fail loudly."""
    ds.images.flags.writeable = False
    if ds.labels is not None:
        ds.labels.flags.writeable = False
    return ds


@pytest.fixture(scope="session")
def sample_train() -> data.Dataset:
    """The committed sample's 9,000 labelled digits (parsed once per session, read-only)."""
    return _read_only(
        data.parse_csv(data.paths.sample_dir() / "train.csv.gz", expect_labels=True, source_kind="sample")
    )


@pytest.fixture(scope="session")
def sample_test() -> data.Dataset:
    """The committed sample's 1,000 unlabelled test digits (parsed once per session, read-only)."""
    return _read_only(
        data.parse_csv(data.paths.sample_dir() / "test.csv.gz", expect_labels=False, source_kind="sample")
    )


@pytest.fixture(scope="session")
def sample_answers() -> np.ndarray:
    """Labels 0..9 of the sample's test digits, in test order."""
    answers = data.sample_answers()
    answers.flags.writeable = False
    return answers


@dataclass(frozen=True)
class TmpDirs:
    data: Path
    models: Path
    cache: Path


@pytest.fixture
def tmp_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TmpDirs:
    """Point data/, models/ and the parse cache at empty temporary folders for one test, so
    nothing a test does touches the real ones (the committed sample is still read from the repo)."""
    dirs = TmpDirs(tmp_path / "data", tmp_path / "models", tmp_path / "cache")
    for folder in (dirs.data, dirs.models, dirs.cache):
        folder.mkdir()
    monkeypatch.setenv("DRS_DATA_DIR", str(dirs.data))
    monkeypatch.setenv("DRS_MODELS_DIR", str(dirs.models))
    monkeypatch.setenv("DRS_CACHE_DIR", str(dirs.cache))
    return dirs
