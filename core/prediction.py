"""Every prediction the studio makes, for every caller (Draw, Evaluate, Submit, the command line).

- `load(name)`: a saved model ready to predict, without TensorFlow. Keras models (ensembles too)
  are served from their LiteRT copy (`core.serving`); a missing or stale copy is made again by
  `python -m core convert NAME` in a child process, which has TensorFlow while this one never does.
  Forests are the app's own signed pickles.
- `predict_proba(models, images)`: probabilities averaged over one or several models and, with
  `tta`, over a few rotated views of each digit, a chunk at a time with `progress(done, total)`.
- `model_version(name)`: changes whenever a model's weights are rewritten: the cache key of every
  stored prediction.
"""

from __future__ import annotations

import functools
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from core import paths, registry, serving

CHUNK = 2048  # images per progress report
EXPORT_TIMEOUT_S = 600

Progress = Callable[[int, int], None]


class Runtime(Protocol):
    def predict_proba(self, images: np.ndarray) -> np.ndarray: ...


@dataclass(frozen=True)
class Predictor:
    """A saved model ready to predict: `predict_proba(images (n, 28, 28) 0..255) -> (n, 10)`."""

    name: str
    meta: dict
    runtime: Runtime = field(repr=False)
    notice: str | None = None  # what had to be done to serve it (a stale copy made again), for people

    @property
    def kind(self) -> str:
        return registry.kind_of(self.meta)

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Class probabilities `(n, 10) float32` of images `(n, 28, 28)` (or one `(28, 28)`), 0..255."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[1:] != (28, 28):
            raise ValueError(f"expected images of shape (n, 28, 28), got {x.shape}")
        return np.asarray(self.runtime.predict_proba(x), dtype=np.float32)


class _Forest:
    """A scikit-learn estimator on flattened pixels scaled to 0..1, as it was trained."""

    def __init__(self, estimator: Any):
        self.estimator = estimator

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        return self.estimator.predict_proba(images.reshape(len(images), -1) / 255.0).astype(np.float32)


# --------------------------------------------------------------------------- loading


_export_locks: dict[str, threading.Lock] = {}
_export_guard = threading.Lock()


def export_in_child(name: str, *, timeout: float = EXPORT_TIMEOUT_S) -> None:
    """Make model `name`'s serving copy in a child process (`python -m core convert NAME`), so this
    process never imports TensorFlow. Raises ValueError with the child's last error line."""
    cmd = [sys.executable, "-m", "core", "convert", registry.validate_name(name)]
    try:
        done = subprocess.run(cmd, cwd=paths.ROOT, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise ValueError(f"preparing model {name!r} for serving took over {timeout:.0f} s") from None
    if done.returncode != 0:
        lines = [ln for ln in done.stderr.splitlines() if ln.strip()]
        why = lines[-1].removeprefix("error: ") if lines else f"exit code {done.returncode}"
        raise ValueError(f"model {name!r} could not be prepared for serving: {why} "
                         f"(run `python -m core convert {name}` to see more)")


def _served(name: str) -> tuple[serving._Runtime, str | None]:
    """The serving copy of `name`, made again first if it is missing or stale; and what was done."""
    folder = registry.model_dir(name)
    with _export_guard:
        lock = _export_locks.setdefault(name, threading.Lock())
    with lock:  # two sessions asking at once: one export, the other waits and loads it
        try:
            return serving.load(folder), None
        except serving.StaleExport as exc:
            why = str(exc)
        export_in_child(name)
        try:
            return serving.load(folder), f"{why}: it was made again from model.keras"
        except serving.StaleExport as exc:
            raise ValueError(f"model {name!r}: {exc}") from None


def load(name: str | None = None) -> Predictor:
    """The saved model `name` (the best one when None), ready to predict. Raises ValueError with
    a message for people when it does not exist or cannot be served."""
    name = registry.resolve_name(name)
    meta = registry.read_meta(name)
    if registry.kind_of(meta) == registry.SKLEARN:
        return Predictor(name, meta, _Forest(registry.load_estimator(name)))
    if not (registry.model_dir(name) / registry.KERAS_FILE).is_file():
        raise ValueError(f"model {name!r} has no {registry.KERAS_FILE}: nothing to predict with")
    runtime, notice = _served(name)
    return Predictor(name, meta, runtime, notice)


def model_version(name: str) -> int:
    """Latest modification time (ns) of the files that hold a model's weights and training rows:
    it changes whenever the model is re-saved, and not when only its notes or status change."""
    folder = registry.model_dir(name)
    files = (registry.KERAS_FILE, registry.SKLEARN_FILE, registry.HASHES_FILE)
    return max(((folder / f).stat().st_mtime_ns for f in files if (folder / f).is_file()), default=0)


# --------------------------------------------------------------------------- test-time augmentation


@functools.lru_cache(maxsize=8)
def _rotation_matrix(degrees: float):
    """Rotation about the centre with bilinear interpolation as a sparse (784, 784) matrix: the
    same result as `scipy.ndimage.rotate(order=1)`, much faster on a stack (rows = output pixels)."""
    from scipy import ndimage, sparse

    basis = np.eye(784, dtype=np.float32).reshape(784, 28, 28)
    moved = ndimage.rotate(basis, degrees, axes=(2, 1), reshape=False, order=1, mode="constant", cval=0.0)
    weights = moved.reshape(784, 784)  # [input pixel, output pixel]
    weights[np.abs(weights) < 1e-6] = 0.0
    return sparse.csr_matrix(weights.T)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Images `(n, 28, 28)` rotated by `degrees` about their centre, float32 0..255."""
    flat = np.asarray(images, dtype=np.float32).reshape(len(images), 784)
    out = (_rotation_matrix(float(degrees)) @ flat.T).T
    return np.clip(out, 0.0, 255.0).reshape(len(images), 28, 28).astype(np.float32)


# Small moves a handwritten digit survives: each test digit is seen a few ways and the
# probabilities are averaged, at one more pass per view.
TTA_VIEWS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "original": lambda x: x,
    "rotate -8°": lambda x: rotate(x, -8.0),
    "rotate +8°": lambda x: rotate(x, 8.0),
}


def views(images: np.ndarray, *, tta: bool) -> list[np.ndarray]:
    """The views of images `(n, 28, 28)` a model predicts: the originals, or every TTA view."""
    x = np.asarray(images, dtype=np.float32)
    chosen = TTA_VIEWS if tta else {"original": TTA_VIEWS["original"]}
    return [fn(x) for fn in chosen.values()]


# --------------------------------------------------------------------------- predicting


def predict_proba(
    models: Runtime | Sequence[Runtime],
    images: np.ndarray,
    *,
    rows: np.ndarray | None = None,
    tta: bool = False,
    chunk: int = CHUNK,
    progress: Progress | None = None,
) -> np.ndarray:
    """Probabilities `(n, 10) float32` of images `(n, 28, 28)` 0..255, averaged over `models` (one
    or several, anything with `predict_proba`) and, with `tta`, over `TTA_VIEWS`; every model and
    view weighs the same. `progress(done, total)` counts images times models, after each chunk.

    `rows` (indices into `images`) predicts only those, in that order, gathered a chunk at a time:
    `images[rows]` would copy them all first (33 MB for 42,000 digits, in the web server)."""
    group = list(models) if isinstance(models, Sequence) else [models]
    if not group:
        raise ValueError("choose at least one model to predict with")
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (n, 28, 28), got {images.shape}")
    index = None if rows is None else np.asarray(rows, dtype=np.int64)
    n = len(images) if index is None else len(index)
    total = np.zeros((n, 10), dtype=np.float64)
    done, work = 0, n * len(group)
    for model in group:
        for start in range(0, n, chunk):
            block = images[start:start + chunk] if index is None else images[index[start:start + chunk]]
            for view in views(block, tta=tta):
                probs = np.asarray(model.predict_proba(view), dtype=np.float64)
                if probs.shape != (len(block), 10):
                    raise ValueError(f"model {getattr(model, 'name', '?')!r} returned probabilities "
                                     f"of shape {probs.shape}, expected {(len(block), 10)}")
                total[start:start + len(block)] += probs
            done += len(block)
            if progress is not None:
                progress(done, work)
    n_views = len(TTA_VIEWS) if tta else 1
    return (total / (len(group) * n_views)).astype(np.float32)
