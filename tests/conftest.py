"""Fixtures shared by all tests: the committed sample, loaded once, private data folders and a
private signing key, and the tiny saved models several test modules predict with."""

from __future__ import annotations

import os
import secrets
import shutil
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `pytest` run from anywhere still imports `core` and `studio`
    sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import training_support  # noqa: E402

from core import data, registry  # noqa: E402


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


# --------------------------------------------------------------------------- tiny saved models


def _save_forest(name: str, images: np.ndarray, labels: np.ndarray, *, source: str = "sample",
                 val_accuracy: float = 0.5, hashes: np.ndarray | None = None, n_estimators: int = 10) -> None:
    """A small scikit-learn model saved the way the app saves one (signed; fast: no Keras), into
    the current models folder."""
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=n_estimators, random_state=0, n_jobs=1)
    forest.fit(images.reshape(len(images), -1) / 255.0, labels)
    registry.save_sklearn_model(name, forest)
    registry.write_meta(name, {
        "name": name, "arch": "random-forest", "kind": "sklearn", "metrics": {"val_accuracy": val_accuracy},
        "data": {"source": source, "fingerprint": data.fingerprint(images, labels), "name": "test"},
        "created_at": registry.timestamp(),
    })
    registry.save_train_hashes(name, data.row_hashes(images) if hashes is None else hashes)


@pytest.fixture(scope="session")
def save_forest() -> Callable[..., None]:
    """`save_forest(name, images, labels, *, source="sample", val_accuracy=0.5, hashes=None,
    n_estimators=10)`: a 10-tree forest saved through the registry into the current models folder."""
    return _save_forest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory, sample_train) -> Path:
    """A models folder (shared: copy it, never write into it) with `mlp-a`, a Keras MLP trained
    for 2 epochs on the sample (the best model), and `forest`, 10 trees on its first 2,000 digits.
    Tests that use it are marked slow (see `pytest_collection_modifyitems`)."""
    from core import training

    folder = tmp_path_factory.mktemp("tiny-models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_MODELS_DIR", str(folder))
        mp.setenv("DRS_DATA_DIR", str(tmp_path_factory.mktemp("tiny-data")))
        mp.setenv("DRS_CACHE_DIR", str(tmp_path_factory.mktemp("tiny-cache")))
        result = training_support.train_here(training.TrainConfig(arch="mlp", epochs=2, seed=0, name="mlp-a"))
        assert result is not None and result["name"] == "mlp-a"
        _save_forest("forest", sample_train.images[:2000], sample_train.labels[:2000])
    return folder


@pytest.fixture
def tiny_models_env(tmp_dirs, tiny_models) -> TmpDirs:
    """Private data/cache folders and a private copy of the tiny models."""
    shutil.copytree(tiny_models, tmp_dirs.models, dirs_exist_ok=True)
    return tmp_dirs


KERAS_FIXTURES = {"tiny_models", "tiny_models_env"}  # they train a Keras model: TensorFlow starts


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that needs the tiny Keras models is `slow`, in whichever module it is, so that
    `-m "not slow"` never starts TensorFlow for them."""
    for item in items:
        if KERAS_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)


# --------------------------------------------------------------------------- training jobs and data


@pytest.fixture
def no_stray_jobs():
    """Job processes a test starts are killed after it (a test must never leave training behind)."""
    yield
    from core import processes, runs, status

    for view in runs.active_runs():
        for record in (view.meta.get(status.WRITER_KEY), view.meta.get("launched")):
            if isinstance(record, dict):
                processes.kill(record)


@pytest.fixture(scope="session")
def planted_problems_found() -> dict[tuple[str, str], int]:
    """What the quality checks find in the planted data of the exploration tests (core and page):
    one duplicate pair with two labels, one blank training digit, one test digit copied from train."""
    return {
        ("Exact duplicate images", "train"): 1,
        ("Duplicates with different labels", "train"): 1,
        ("Exact duplicate images", "test"): 0,
        ("Shared between train and test", "train+test"): 1,
        ("Blank or near-blank images", "train"): 1,
        ("Blank or near-blank images", "test"): 0,
        ("Pixel values outside 0..255", "train"): 0,
        ("Pixel values outside 0..255", "test"): 0,
        ("Label distribution skew", "train"): 0,
    }
