"""Submit page caches: predictions per (models, model versions, test set, TTA), shared by visitors,
so a rerun or a second download never predicts again; test-row hashes and answers per test set."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import streamlit as st

from core import data, prediction, submission
from core.leakage import check_leakage
from studio import model_cache

MAX_RESULTS = 8  # ~1 MB of probabilities each for Kaggle's 28,000 test digits


@dataclass(frozen=True)
class Result:
    """A prediction and the submission written from it (files in data/submissions/)."""

    prediction: submission.Prediction
    done: submission.Submission


def prediction_key(names: list[str], test: data.Dataset, tta: bool) -> tuple:
    """Changes whenever a model is re-saved, the test set changes, or TTA is switched."""
    return (
        tuple(names),
        tuple(prediction.model_version(n) for n in names),
        test.fingerprint,
        test.n,
        bool(tta),
    )


@st.cache_resource
def _store() -> tuple[threading.Lock, OrderedDict]:
    return threading.Lock(), OrderedDict()


def cached(key: tuple) -> Result | None:
    """The result for `key` if it was computed already (in any session of this server)."""
    lock, results = _store()
    with lock:
        if key in results:
            results.move_to_end(key)
            return results[key]
    return None


def predict(
    names: list[str],
    test: data.Dataset,
    *,
    tta: bool,
    leakage: list[dict],
    allow_leakage: bool,
    progress: Callable[[int, int], None],
) -> Result:
    """Predict `test` with the models, write the submission with its sidecar and leaderboard line,
    and keep the result for every later rerun with the same key."""
    key = prediction_key(names, test, tta)
    loaded = [model_cache.load(n) for n in names]
    prediction = submission.predict(loaded, test.images, tta=tta, progress=progress)
    done = submission.finish_submission(
        prediction, test, leakage=leakage, allow_leakage=allow_leakage, origin="page",
        answers=answers(test),
    )
    result = Result(prediction, done)
    lock, results = _store()
    with lock:
        results[key] = result
        while len(results) > MAX_RESULTS:
            results.popitem(last=False)
    return result


@st.cache_resource(max_entries=4, show_spinner=False)
def _test_hashes(fingerprint: str, n: int, _images: np.ndarray) -> np.ndarray:
    return data.row_hashes(_images)  # for the leakage check and the answers alike


@st.cache_data(max_entries=32, show_spinner="Checking the models for leakage…")
def _leakage(names: tuple, versions: tuple, fingerprint: str, n: int, _images: np.ndarray) -> list[dict]:
    return check_leakage(list(names), _images, test_hashes=_test_hashes(fingerprint, n, _images))


def leakage(names: list[str], test: data.Dataset) -> list[dict]:
    """Leakage findings for these models on this test set (see `core.leakage.check_leakage`)."""
    versions = tuple(prediction.model_version(n) for n in names)
    return _leakage(tuple(names), versions, test.fingerprint, test.n, test.images)


def _mnist_version() -> int:
    path = data.mnist_download_file()
    return path.stat().st_mtime_ns if path is not None else 0


@st.cache_resource(max_entries=4, show_spinner="Looking for the answers…")
def _answers(fingerprint: str, n: int, mnist_version: int, _test: data.Dataset) -> submission.Answers | None:
    return submission.known_answers(_test, test_hashes=_test_hashes(fingerprint, n, _test.images))


def answers(test: data.Dataset) -> submission.Answers | None:
    """The test set's true labels when known (the committed sample, or the MNIST download)."""
    return _answers(test.fingerprint, test.n, _mnist_version(), test)
