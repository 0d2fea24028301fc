"""Cached Evaluate-page work: which digits a model may be scored on, its predictions, its metrics.

Keyed by (model name, model file version, dataset fingerprint, TTA): a model predicts a given set
of digits once per way of predicting, whoever asks; the predictions are also kept in the cache
folder, so a restarted server does not predict them again. The dataset and model travel as
unhashed `_` arguments, so Streamlit never hashes megabytes of pixels.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path

import numpy as np
import streamlit as st

from core import data, eval_rows, evaluation, paths, prediction, registry
from studio import model_cache

MAX_PREDICTIONS = 24  # sets of predictions kept in memory (42,000 digits: 1.7 MB each)


model_version = prediction.model_version  # the one cache key of a model's predictions


@st.cache_data(show_spinner=False, max_entries=8)
def data_hashes(fingerprint: str, _ds: data.Dataset) -> np.ndarray:
    """`data.row_hashes` of a dataset, to find a model's training digits in other data."""
    return data.row_hashes(_ds.images)


@st.cache_data(show_spinner=False, max_entries=64)
def unseen_rows(name: str, version: int, fingerprint: str, _ds: data.Dataset) -> eval_rows.EvalRows:
    """The rows of the data that model `name` never trained on (see `eval_rows.unseen_rows`)."""
    meta = registry.read_meta(name)
    if (meta.get("data") or {}).get("fingerprint") == fingerprint:
        return eval_rows.unseen_rows(meta, _ds)
    return eval_rows.unseen_rows(
        meta, _ds, train_hashes=registry.load_train_hashes(name), data_hashes=data_hashes(fingerprint, _ds)
    )


def _saved_predictions_path(name: str, version: int, fingerprint: str, tta: bool = False) -> Path:
    # '@' cannot occur in a model name, so one model's files never match another's pattern.
    views = f"{fingerprint}-tta" if tta else fingerprint
    return paths.cache_dir() / "predictions" / f"{registry.validate_name(name)}@{version}@{views}.npy"


def _read_saved(path: Path, n: int) -> np.ndarray | None:
    try:
        proba = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return proba if proba.shape == (n, 10) and proba.dtype == np.float32 else None


def _save(path: Path, proba: np.ndarray) -> None:
    """Keep predictions on disk too, so a restarted server does not predict again; best effort."""
    buf = io.BytesIO()
    np.save(buf, proba, allow_pickle=False)
    try:
        paths.write_atomic(path, buf.getvalue())
        name, _, views = path.stem.split("@")
        for old in path.parent.glob(f"{name}@*@{views}.npy"):  # older versions of this model
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass


class _Store:
    """Predictions shared by every session: the latest few, each computed once even when two
    visitors ask at the same time (the second waits for the first)."""

    def __init__(self, size: int = MAX_PREDICTIONS):
        self.size = size
        self.items: OrderedDict[tuple, np.ndarray] = OrderedDict()
        self.lock = threading.Lock()
        self.key_locks: dict[tuple, threading.Lock] = {}

    def get(self, key: tuple) -> np.ndarray | None:
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        return None

    def put(self, key: tuple, proba: np.ndarray) -> None:
        proba.flags.writeable = False  # shared between sessions
        with self.lock:
            self.items[key] = proba
            self.items.move_to_end(key)
            while len(self.items) > self.size:
                self.items.popitem(last=False)

    def key_lock(self, key: tuple) -> threading.Lock:
        with self.lock:
            return self.key_locks.setdefault(key, threading.Lock())


@st.cache_resource
def _store() -> _Store:
    return _Store()


def has_predictions(name: str, version: int, fingerprint: str, tta: bool = False) -> bool:
    """Whether `predictions` will answer at once (in memory or on disk)."""
    key = (name, version, fingerprint, tta)
    return _store().get(key) is not None or _saved_predictions_path(*key).is_file()


def predictions(
    name: str, version: int, fingerprint: str, ds: data.Dataset,
    *, tta: bool = False, progress: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """Probabilities `(m, 10) float32` (read-only) of model `name` for its unseen rows of the data
    (with `tta`, averaged over `prediction.TTA_VIEWS`, as Submit's toggle does): from memory, else
    from the disk cache, else predicted a chunk at a time, calling `progress(done, total)` after
    each (then kept in both)."""
    key = (name, version, fingerprint, tta)
    store = _store()
    proba = store.get(key)
    if proba is not None:
        return proba
    with store.key_lock(key):
        proba = store.get(key)  # another session may have just finished it
        if proba is not None:
            return proba
        rows = unseen_rows(name, version, fingerprint, ds)
        path = _saved_predictions_path(*key)
        proba = _read_saved(path, rows.n)
        if proba is None:
            model = model_cache.load(name)
            proba = prediction.predict_proba(model, ds.images, rows=rows.indices, tta=tta, progress=progress)
            _save(path, proba)
        store.put(key, proba)
        return proba


def predict_with_progress(
    name: str, version: int, fingerprint: str, ds: data.Dataset, *, tta: bool = False
) -> np.ndarray:
    """`predictions`, with a progress bar and time left on the page while it has to predict."""
    if has_predictions(name, version, fingerprint, tta):
        return predictions(name, version, fingerprint, ds, tta=tta)
    bar = st.progress(0.0, text=f"Loading {name} to predict the evaluation digits…")
    first: list[tuple[float, int]] = []  # the time and count at the first report: loading left out

    def report(done: int, total: int) -> None:
        now = time.perf_counter()
        if not first:
            first.append((now, done))
        t1, d1 = first[0]
        left = (now - t1) / (done - d1) * (total - done) if done > d1 else None
        eta = f" — about {left:.0f} s left" if left is not None else ""
        views = f" × {len(prediction.TTA_VIEWS)} views" if tta else ""
        bar.progress(done / total, text=f"{name}: predicting {done:,} of {total:,} digits{views} "
                                        f"(once per model and data){eta}")

    try:
        proba = predictions(name, version, fingerprint, ds, tta=tta, progress=report)
    finally:
        bar.empty()
    model_cache.show_notice(model_cache.load(name))  # loaded (and cached) to predict just now
    return proba


@st.cache_data(show_spinner="Computing the metrics…", max_entries=16)
def evaluate(
    name: str, version: int, fingerprint: str, _ds: data.Dataset, tta: bool = False
) -> evaluation.Evaluation:
    """Every metric of model `name` on its unseen rows of the data (call `predict_with_progress`
    first so that the predicting, if any, shows a progress bar: nothing is drawn in here)."""
    rows = unseen_rows(name, version, fingerprint, _ds)
    proba = predictions(name, version, fingerprint, _ds, tta=tta)
    return evaluation.evaluate(_ds.labels[rows.indices], proba)
