"""Fixtures shared by all tests: the committed sample, loaded once, private data folders and a
private signing key."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Iterator
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


@pytest.fixture(scope="session", autouse=True)
def session_signing_key(tmp_path_factory) -> Iterator[Path]:
    """A private pickle-signing key for the whole session, module fixtures and child processes
    included: no test ever reads or creates the install's own key (~/.config/...)."""
    key = tmp_path_factory.mktemp("signing") / "model-signing.key"
    key.write_bytes(secrets.token_bytes(32))
    key.chmod(0o600)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_KEY_FILE", str(key))
        yield key


@dataclass(frozen=True)
class TmpDirs:
    data: Path
    models: Path
    cache: Path
    key: Path


@pytest.fixture
def tmp_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> TmpDirs:
    """Point data/, models/, the parse cache and the signing key at temporary paths for one test, so
    nothing a test does touches the real ones (the committed sample is still read from the repo).

    The key is a copy of the current (session's) key: models that module fixtures signed stay
    loadable, and whatever the test does to its key stays in the test."""
    dirs = TmpDirs(tmp_path / "data", tmp_path / "models", tmp_path / "cache",
                   tmp_path / "config" / "model-signing.key")
    for folder in (dirs.data, dirs.models, dirs.cache, dirs.key.parent):
        folder.mkdir()
    current = os.environ.get("DRS_KEY_FILE")
    if current and Path(current).is_file():
        shutil.copy2(current, dirs.key)
    monkeypatch.setenv("DRS_DATA_DIR", str(dirs.data))
    monkeypatch.setenv("DRS_MODELS_DIR", str(dirs.models))
    monkeypatch.setenv("DRS_CACHE_DIR", str(dirs.cache))
    monkeypatch.setenv("DRS_KEY_FILE", str(dirs.key))
    return dirs
