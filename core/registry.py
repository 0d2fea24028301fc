"""Saved models on disk: `models/<name>/` with the model file, `meta.json` and `history.csv`.

Names are checked so that no name can reach outside `models/`. Only files this app wrote are
loaded: Keras files with `safe_mode=True`, and `model.joblib` only from a folder whose
`meta.json` says the app saved it there (uploads never land in `models/`).
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import json
import os
import re
import secrets
import shutil
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import paths

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KERAS_FILE = "model.keras"
SKLEARN_FILE = "model.joblib"
META_FILE = "meta.json"
HISTORY_FILE = "history.csv"
HASHES_FILE = "train_hashes.npy"
SIGNATURE_FILE = "model.joblib.sig"
WRITER_KEY = "training_process"  # in meta.json while status is "training": pid, host, start_time


def validate_name(name: str) -> str:
    """Return `name` if it is a safe model name (letters, digits, `_ . -`; at most 64), else raise."""
    if not isinstance(name, str) or not NAME_RE.fullmatch(name) or ".." in name:
        raise ValueError(
            f"invalid model name {name!r}: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter or digit"
        )
    return name


def model_dir(name: str) -> Path:
    """The folder of model `name`, guaranteed to be directly inside `models/`."""
    root = paths.models_dir().resolve()
    folder = (root / validate_name(name)).resolve()
    if folder.parent != root:
        raise ValueError(f"invalid model name {name!r}: it leaves the models folder")
    return folder


@dataclass(frozen=True)
class ModelInfo:
    """What the registry knows of a saved model without loading it."""

    name: str
    meta: dict

    @property
    def kind(self) -> str:
        return self.meta.get("kind", "keras")

    @property
    def val_accuracy(self) -> float | None:
        return (self.meta.get("metrics") or {}).get("val_accuracy")

    @property
    def status(self) -> str:
        """"complete", "stopped", "training", or "interrupted" (a run whose process died mid-way)."""
        return meta_status(self.meta)

    @property
    def data_source(self) -> str:
        return (self.meta.get("data") or {}).get("source", "unknown")


# --------------------------------------------------------------------------- writing


_atomic_write_bytes = paths.write_atomic


def write_meta(name: str, meta: dict) -> None:
    """Write `meta.json` atomically (a reader never sees half a file).

    While a run is in progress (status "training") the writing process is recorded too, so that a
    run killed mid-way (nothing left to change its status) can later be told apart from a live one.
    """
    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in meta.items() if k != WRITER_KEY}
    if meta.get("status") == "training":
        meta[WRITER_KEY] = _this_process()
    _atomic_write_bytes(folder / META_FILE, json.dumps(meta, indent=2, default=_json_default).encode())


# --------------------------------------------------------------------------- runs that died


def _start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None
    where there is no /proc. Together with the pid it names one process: pids are reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (the command) is in brackets and may hold spaces: count the fields after it.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def _this_process() -> dict:
    pid = os.getpid()
    found = {"pid": pid, "host": socket.gethostname()}
    start = _start_time(pid)
    if start is not None:
        found["start_time"] = start
    return found


def _is_dead(writer: dict) -> bool:
    """True only when the process that wrote a "training" meta is provably gone: same host, and
    the pid no longer exists, is a zombie, or now belongs to a process started at another time."""
    pid, host = writer.get("pid"), writer.get("host")
    if not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return False  # another machine (or an old meta): it cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        state = ""
    if state in ("Z", "X"):  # killed, not yet reaped by its parent
        return True
    recorded = writer.get("start_time")
    if recorded is None:
        return False
    current = _start_time(pid)
    return current is not None and current != recorded


def meta_status(meta: dict) -> str:
    """The status to show for a saved model: its meta's, except that a "training" run whose
    process is provably dead (killed mid-way) is "interrupted". Its last checkpoint is usable."""
    status = meta.get("status", "complete")
    writer = meta.get(WRITER_KEY)
    if status == "training" and isinstance(writer, dict) and _is_dead(writer):
        return "interrupted"
    return status


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def write_history(name: str, history: list[dict]) -> None:
    """Per-epoch metrics as `history.csv` (one row per epoch, columns as the rows' keys)."""
    if not history:
        return
    cols = list(dict.fromkeys(k for row in history for k in row))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=cols)
    writer.writeheader()
    writer.writerows(history)
    model_dir(name).mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(model_dir(name) / HISTORY_FILE, buf.getvalue().encode())


def save_keras_model(name: str, model: Any) -> Path:
    """Save a Keras model as `model.keras` through a temporary file, then rename."""
    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{KERAS_FILE}.tmp.keras"
    model.save(tmp)
    os.replace(tmp, folder / KERAS_FILE)
    return folder / KERAS_FILE


def _signing_key() -> bytes:
    """This install's secret for signing pickles; kept outside `models/`, created on first use."""
    path = paths.signing_key_file()
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return path.read_bytes()  # Another process made it first.
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    return path.read_bytes()


def _signature(payload: bytes) -> str:
    return hmac.new(_signing_key(), payload, hashlib.sha256).hexdigest()


def save_sklearn_model(name: str, estimator: Any) -> Path:
    """Save a scikit-learn estimator as `model.joblib`, signed with this install's key so that
    only pickles the app wrote are ever loaded (temporary file, then rename)."""
    import joblib

    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    joblib.dump(estimator, buf, compress=3)
    payload = buf.getvalue()
    _atomic_write_bytes(folder / SIGNATURE_FILE, _signature(payload).encode())
    _atomic_write_bytes(folder / SKLEARN_FILE, payload)
    return folder / SKLEARN_FILE


def save_train_hashes(name: str, hashes: np.ndarray) -> None:
    """The row hashes of the training digits: the leakage check compares test sets against them."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(hashes, dtype=np.uint64), allow_pickle=False)
    model_dir(name).mkdir(parents=True, exist_ok=True)
    _atomic_write_bytes(model_dir(name) / HASHES_FILE, buf.getvalue())


def load_train_hashes(name: str) -> np.ndarray | None:
    path = model_dir(name) / HASHES_FILE
    return np.load(path, allow_pickle=False) if path.is_file() else None


# --------------------------------------------------------------------------- reading


def read_meta(name: str) -> dict:
    path = model_dir(name) / META_FILE
    if not path.is_file():
        raise ValueError(f"no saved model called {name!r}")
    return json.loads(path.read_text())


def read_history(name: str) -> list[dict]:
    """Per-epoch metrics as a list of dicts with float values (empty if there is no history)."""
    path = model_dir(name) / HISTORY_FILE
    if not path.is_file():
        return []
    with open(path, newline="") as f:
        return [
            {k: (float(v) if v not in ("", None) else None) for k, v in row.items()}
            for row in csv.DictReader(f)
        ]


def list_models() -> list[ModelInfo]:
    """Saved models that have a model file and readable metadata, best validation accuracy first."""
    root = paths.models_dir()
    if not root.is_dir():
        return []
    found = []
    for folder in root.iterdir():
        if not folder.is_dir() or not NAME_RE.fullmatch(folder.name):
            continue
        if not ((folder / KERAS_FILE).is_file() or (folder / SKLEARN_FILE).is_file()):
            continue
        try:
            meta = json.loads((folder / META_FILE).read_text())
        except (OSError, ValueError):
            continue
        found.append(ModelInfo(folder.name, meta))
    return sorted(found, key=lambda m: (-(m.val_accuracy or 0.0), m.name))


def best_model_name() -> str | None:
    """The saved model with the best validation accuracy (the shipped one on a fresh clone)."""
    models = list_models()
    # A fine-tuned "-taught" model is scored on its base's split but bent towards a few user
    # digits: it is never picked for everyone automatically, only when chosen by name.
    trained = [m for m in models if not m.meta.get("finetuned_from")]
    pick = trained or models
    return pick[0].name if pick else None


def resolve_name(name: str | None) -> str:
    """`name` if given, else the best saved model; a clear error when there is none."""
    if name:
        read_meta(name)  # Raises a clear error if it does not exist.
        return name
    best = best_model_name()
    if best is None:
        raise ValueError("no saved model yet: train one first (python -m core train)")
    return best


def delete_model(name: str) -> None:
    """Remove a saved model folder (only ever inside `models/`)."""
    folder = model_dir(name)
    if not folder.is_dir():
        raise ValueError(f"no saved model called {name!r}")
    shutil.rmtree(folder)


def unique_name(base: str) -> str:
    """`base` if free, else `base-2`, `base-3`, …"""
    validate_name(base)
    candidate, i = base, 2
    while model_dir(candidate).exists():
        candidate, i = f"{base}-{i}", i + 1
    return candidate


def timestamp() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


# --------------------------------------------------------------------------- loading


class LoadedModel:
    """A saved model ready to predict: `predict_proba(images (n, 28, 28)) -> (n, 10)` for both kinds."""

    def __init__(self, name: str, meta: dict, model: Any):
        self.name = name
        self.meta = meta
        self.model = model
        self.kind = meta.get("kind", "keras")

    def predict_proba(self, images: np.ndarray, *, batch_size: int = 1024) -> np.ndarray:
        """Class probabilities `(n, 10)` float32 for images `(n, 28, 28)` with values 0..255."""
        x = np.asarray(images, dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.shape[1:] != (28, 28):
            raise ValueError(f"expected images of shape (n, 28, 28), got {x.shape}")
        if self.kind == "sklearn":
            return self.model.predict_proba(x.reshape(len(x), -1) / 255.0).astype(np.float32)
        from core import fast_predict

        return fast_predict.predict(self.model, x, batch_size=batch_size)


def load_model(name: str | None = None) -> LoadedModel:
    """Load a saved model (the best one when `name` is None)."""
    name = resolve_name(name)
    folder = model_dir(name)
    meta = read_meta(name)
    if meta.get("kind") == "sklearn":
        import joblib

        path, sig = folder / SKLEARN_FILE, folder / SIGNATURE_FILE
        if not path.is_file():
            raise ValueError(f"model {name!r} has no {SKLEARN_FILE}")
        payload = path.read_bytes()
        if not sig.is_file() or not hmac.compare_digest(sig.read_text().strip(), _signature(payload)):
            raise ValueError(
                f"model {name!r}: {SKLEARN_FILE} was not written by this app (bad or missing "
                "signature); it is never unpickled"
            )
        return LoadedModel(name, meta, joblib.load(io.BytesIO(payload)))
    import keras

    path = folder / KERAS_FILE
    if not path.is_file():
        raise ValueError(f"model {name!r} has no {KERAS_FILE}")
    return LoadedModel(name, meta, keras.saving.load_model(path, safe_mode=True))
