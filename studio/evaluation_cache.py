"""Cached Evaluate-page work: which digits a model may be scored on, its predictions, its metrics.

Keyed by (model name, model file version, dataset fingerprint): a model predicts a given set of
digits once, whoever asks; the predictions are also kept in the cache folder, so a restarted
server does not predict them again. The dataset and model travel as unhashed `_` arguments,
so Streamlit never hashes megabytes of pixels.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np
import streamlit as st

from core import data, evaluation, paths, registry
from studio import models


def model_version(name: str) -> int:
    """Changes whenever the model's files are rewritten (a retrain under the same name)."""
    folder = registry.model_dir(name)
    files = [folder / f for f in (registry.KERAS_FILE, registry.SKLEARN_FILE, registry.META_FILE,
                                  registry.HASHES_FILE)]
    return max((f.stat().st_mtime_ns for f in files if f.is_file()), default=0)


@st.cache_data(show_spinner=False, max_entries=8)
def data_hashes(fingerprint: str, _ds: data.Dataset) -> np.ndarray:
    """`data.row_hashes` of a dataset, to find a model's training digits in other data."""
    return data.row_hashes(_ds.images)


@st.cache_data(show_spinner=False, max_entries=64)
def unseen_rows(name: str, version: int, fingerprint: str, _ds: data.Dataset) -> evaluation.EvalRows:
    """The rows of the data that model `name` never trained on (see `evaluation.unseen_rows`)."""
    meta = registry.read_meta(name)
    if (meta.get("data") or {}).get("fingerprint") == fingerprint:
        return evaluation.unseen_rows(meta, _ds)
    return evaluation.unseen_rows(
        meta, _ds, train_hashes=registry.load_train_hashes(name), data_hashes=data_hashes(fingerprint, _ds)
    )


def _saved_predictions_path(name: str, version: int, fingerprint: str) -> Path:
    # '@' cannot occur in a model name, so one model's files never match another's pattern.
    return paths.cache_dir() / "predictions" / f"{registry.validate_name(name)}@{version}@{fingerprint}.npy"


def _read_saved(path: Path, n: int) -> np.ndarray | None:
    try:
        proba = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return proba if proba.shape == (n, 10) and proba.dtype == np.float32 else None


def _save(path: Path, proba: np.ndarray) -> None:
    """Keep predictions on disk too, so a restarted server does not predict again; best effort."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        with os.fdopen(fd, "wb") as f:
            np.save(f, proba, allow_pickle=False)
        os.replace(tmp, path)
        name, _, fingerprint = path.stem.split("@")
        for old in path.parent.glob(f"{name}@*@{fingerprint}.npy"):  # older versions of this model
            if old != path:
                old.unlink(missing_ok=True)
    except OSError:
        pass


@st.cache_data(show_spinner="Predicting the evaluation digits (once per model and data)…", max_entries=16)
def predictions(name: str, version: int, fingerprint: str, _ds: data.Dataset) -> np.ndarray:
    """Probabilities `(m, 10) float32` of model `name` for its unseen rows of the data: from
    memory, else from the disk cache, else predicted (then kept in both)."""
    rows = unseen_rows(name, version, fingerprint, _ds)
    path = _saved_predictions_path(name, version, fingerprint)
    proba = _read_saved(path, rows.n)
    if proba is None:
        proba = models.load(name).predict_proba(_ds.images[rows.indices], batch_size=evaluation.PREDICT_BATCH)
        _save(path, np.asarray(proba, dtype=np.float32))
    return proba


@st.cache_data(show_spinner="Computing the metrics…", max_entries=16)
def evaluate(name: str, version: int, fingerprint: str, _ds: data.Dataset) -> evaluation.Evaluation:
    """Every metric of model `name` on its unseen rows of the data."""
    rows = unseen_rows(name, version, fingerprint, _ds)
    return evaluation.evaluate(_ds.labels[rows.indices], predictions(name, version, fingerprint, _ds))
