"""Serve a saved Keras model without TensorFlow: a LiteRT copy (`model.tflite`) beside `model.keras`.

The job process, which has TensorFlow, exports the copy when it saves a model (`export`); the web
server and the command line's predict commands load it with `ai_edge_litert` (`load`), a runtime
made for serving, a small fraction of TensorFlow's memory and start-up. `model.keras` stays the master
copy: the sidecar `model.tflite.json` records the digest of the `.keras` file the copy was made from
and the Keras probabilities of a fixed probe batch, so a stale or swapped copy is caught
(`StaleExport`) before it answers anyone.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from core import paths

KERAS_FILE = "model.keras"
TFLITE_FILE = "model.tflite"
EXPORT_FILE = "model.tflite.json"
TOLERANCE = 1e-4  # largest probability difference accepted between the copy and Keras
BATCH = 32  # images per interpreter call: activations of a few MB (256 held ~40 MB), same throughput


class StaleExport(ValueError):
    """The serving copy is missing, unreadable or was not made from this `model.keras`."""


def probe_images() -> np.ndarray:
    """A fixed batch `(8, 28, 28) float32` in 0..255: a blank image and seeded noise."""
    rng = np.random.default_rng(0)
    return np.concatenate([np.zeros((1, 28, 28)), rng.uniform(0, 255, (7, 28, 28))]).astype(np.float32)


def file_digest(path: Path) -> str:
    """blake2b of a file's bytes: names one exact `model.keras`."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


# --------------------------------------------------------------------------- export (TensorFlow side)


@contextlib.contextmanager
def _native_stderr_silenced() -> Iterator[None]:
    """Keep the runtime's start-up notice ("Created TensorFlow Lite XNNPACK delegate") out of a job's
    or command's stderr; only used in single-purpose processes, never in the web server."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as null:
        os.dup2(null.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def convert(model: Any) -> bytes:
    """LiteRT flatbuffer of a Keras model, inference only (training-only layers drop out, batch
    norms fold into the convolutions), for any batch size."""
    import tensorflow as tf

    with contextlib.redirect_stdout(io.StringIO()):  # the converter prints its temporary SavedModel
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


def export(model: Any, folder: Path) -> Path:
    """Write `model.tflite` and its sidecar for the Keras `model` saved as `folder/model.keras`.

    Refuses (ValueError) a copy whose probabilities differ from Keras' on the probe batch.
    """
    folder = Path(folder)
    flatbuffer = convert(model)
    probe = probe_images()
    expected = np.asarray(model(probe, training=False), dtype=np.float32)
    with _native_stderr_silenced():
        got = _Runtime(flatbuffer).predict_proba(probe)
    if not _close(got, expected):
        raise ValueError("the LiteRT copy does not give the Keras model's probabilities on the probe batch")
    paths.write_atomic(folder / TFLITE_FILE, flatbuffer)
    sidecar = {
        "keras_digest": file_digest(folder / KERAS_FILE),
        "tflite_digest": hashlib.blake2b(flatbuffer, digest_size=16).hexdigest(),
        "probe_probs": expected.round(7).tolist(),
    }
    paths.write_atomic(folder / EXPORT_FILE, json.dumps(sidecar).encode())
    return folder / TFLITE_FILE


# --------------------------------------------------------------------------- serving (no TensorFlow)


class _Runtime:
    """A LiteRT interpreter behind a lock (an interpreter is not thread-safe; Streamlit serves each
    session in its own thread), resized to the batch at hand."""

    def __init__(self, flatbuffer: bytes):
        from ai_edge_litert.interpreter import Interpreter

        self._flatbuffer = flatbuffer  # the interpreter reads the model from this buffer: keep it alive
        self._interpreter = Interpreter(model_content=flatbuffer, num_threads=os.cpu_count() or 1)
        self._input = self._interpreter.get_input_details()[0]["index"]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self._shape: tuple[int, ...] | None = None
        self._lock = threading.Lock()

    def _call(self, x: np.ndarray) -> np.ndarray:
        if x.shape != self._shape:
            self._interpreter.resize_tensor_input(self._input, list(x.shape))
            self._interpreter.allocate_tensors()
            self._shape = x.shape
        self._interpreter.set_tensor(self._input, x)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()

    def predict_proba(self, images: np.ndarray) -> np.ndarray:
        """Probabilities `(n, 10) float32` for images `(n, 28, 28)` 0..255, `BATCH` at a time."""
        x = np.ascontiguousarray(images, dtype=np.float32)
        with self._lock:
            parts = [self._call(x[i:i + BATCH]) for i in range(0, len(x), BATCH)]
        return np.concatenate(parts) if parts else np.zeros((0, 10), dtype=np.float32)


def _close(got: np.ndarray, expected: np.ndarray) -> bool:
    """Same shape, finite, and within `TOLERANCE` everywhere (NaN never passes)."""
    return (got.shape == expected.shape and bool(np.isfinite(got).all())
            and bool(np.all(np.abs(got - expected) <= TOLERANCE)))


def is_current(folder: Path) -> bool:
    """Whether `folder` has a serving copy made from its present `model.keras` (cheap: no interpreter)."""
    try:
        _sidecar(Path(folder))
    except StaleExport:
        return False
    return True


def _sidecar(folder: Path) -> dict:
    tflite, side = folder / TFLITE_FILE, folder / EXPORT_FILE
    if not tflite.is_file() or not side.is_file():
        raise StaleExport(f"{folder.name} has no serving copy ({TFLITE_FILE}) yet")
    try:
        sidecar = json.loads(side.read_text())
        recorded = str(sidecar["keras_digest"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise StaleExport(f"{folder.name}: {EXPORT_FILE} is unreadable ({exc})") from None
    if recorded != file_digest(folder / KERAS_FILE):
        raise StaleExport(f"{folder.name}: {TFLITE_FILE} was made from another {KERAS_FILE}")
    return sidecar


def load(folder: Path) -> _Runtime:
    """The serving copy of `folder/model.keras`, checked against its sidecar and the probe batch.

    Raises `StaleExport` when it is missing, unreadable, or not made from this `model.keras`.
    """
    folder = Path(folder)
    sidecar = _sidecar(folder)
    flatbuffer = (folder / TFLITE_FILE).read_bytes()
    if hashlib.blake2b(flatbuffer, digest_size=16).hexdigest() != sidecar.get("tflite_digest"):
        raise StaleExport(f"{folder.name}: {TFLITE_FILE} is not the file its sidecar describes")
    try:
        runtime = _Runtime(flatbuffer)
        got = runtime.predict_proba(probe_images())
    except (ValueError, RuntimeError) as exc:
        raise StaleExport(f"{folder.name}: {TFLITE_FILE} cannot be run ({exc})") from None
    if not _close(got, np.asarray(sidecar.get("probe_probs"), dtype=np.float32)):
        raise StaleExport(f"{folder.name}: {TFLITE_FILE} does not give its model's probabilities")
    return runtime
