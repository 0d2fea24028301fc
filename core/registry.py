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
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from core import paths, processes, status

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
KERAS_FILE = "model.keras"
SKLEARN_FILE = "model.joblib"
META_FILE = "meta.json"
HISTORY_FILE = "history.csv"
HASHES_FILE = "train_hashes.npy"
SIGNATURE_FILE = "model.joblib.sig"
MODEL_FILES = (KERAS_FILE, SKLEARN_FILE)

# What kind of model a folder holds (meta.json "kind").
KERAS = "keras"
SKLEARN = "sklearn"
ENSEMBLE = "ensemble"  # Keras members whose probabilities are averaged, saved as one Keras model


def kind_of(meta: dict) -> str:
    """`KERAS`, `SKLEARN` or `ENSEMBLE` (a meta without a kind is a Keras model, as the first were)."""
    return meta.get("kind") or KERAS


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
        return kind_of(self.meta)

    @property
    def val_accuracy(self) -> float | None:
        return (self.meta.get("metrics") or {}).get("val_accuracy")

    @property
    def status(self) -> str:
        """One of `core.status.STATUSES` ("interrupted": its process died mid-way)."""
        return status.status_of(self.meta)

    @property
    def data_source(self) -> str:
        return (self.meta.get("data") or {}).get("source", "unknown")


# --------------------------------------------------------------------------- writing


def write_meta(name: str, meta: dict) -> None:
    """Write `meta.json` atomically (a reader never sees half a file).

    While a run is running the writing process is recorded too, so that a run killed mid-way
    (nothing left to change its status) can later be told apart from a live one.
    """
    folder = model_dir(name)
    folder.mkdir(parents=True, exist_ok=True)
    meta = {k: v for k, v in meta.items() if k not in (status.WRITER_KEY, "training_process")}
    if meta.get("status") == status.RUNNING:
        meta[status.WRITER_KEY] = processes.this_process()
    paths.write_atomic(folder / META_FILE, json.dumps(meta, indent=2, default=_json_default).encode())


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
    paths.write_atomic(model_dir(name) / HISTORY_FILE, buf.getvalue().encode())


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


def sign(payload: bytes) -> str:
    """This install's signature of `payload` (HMAC-SHA256 with the key kept outside models/)."""
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
    paths.write_atomic(folder / SIGNATURE_FILE, sign(payload).encode())
    paths.write_atomic(folder / SKLEARN_FILE, payload)
    return folder / SKLEARN_FILE


def save_train_hashes(name: str, hashes: np.ndarray) -> None:
    """The row hashes of the training digits: the leakage check compares test sets against them."""
    buf = io.BytesIO()
    np.save(buf, np.asarray(hashes, dtype=np.uint64), allow_pickle=False)
    model_dir(name).mkdir(parents=True, exist_ok=True)
    paths.write_atomic(model_dir(name) / HASHES_FILE, buf.getvalue())


def load_train_hashes(name: str) -> np.ndarray | None:
    path = model_dir(name) / HASHES_FILE
    return np.load(path, allow_pickle=False) if path.is_file() else None


# --------------------------------------------------------------------------- reading


def read_json(path: Path) -> dict:
    """A JSON object from a file of a model folder (`meta.json`, `progress.json`); ValueError naming
    the file, and for bad JSON its line and column."""
    try:
        value = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path.name} is not valid JSON (line {exc.lineno}, column {exc.colno})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path.name} cannot be read ({exc})") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path.name} does not hold a JSON object")
    return value


def read_meta(name: str) -> dict:
    """Model `name`'s `meta.json`; ValueError if there is no such model or the file is damaged."""
    path = model_dir(name) / META_FILE
    if not path.is_file():
        raise ValueError(f"no saved model called {name!r}")
    try:
        return read_json(path)
    except ValueError as exc:
        raise ValueError(f"model {name!r}: {exc}") from None


def read_history(name: str) -> list[dict]:
    """Per-epoch metrics as rows of floats (empty if there is no history); a damaged file raises
    ValueError naming its line and column."""
    path = model_dir(name) / HISTORY_FILE
    if not path.is_file():
        return []
    rows = []
    try:
        with open(path, newline="") as f:
            for line, row in enumerate(csv.DictReader(f), start=2):  # line 1 is the header
                rows.append(_history_row(row, line))
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ValueError(f"{HISTORY_FILE} cannot be read ({exc})") from None
    return rows


def _history_row(row: dict, line: int) -> dict:
    parsed = {}
    for key, value in row.items():
        if key is None or value is None:
            raise ValueError(f"{HISTORY_FILE} line {line} does not have as many cells as its header")
        try:
            parsed[key] = float(value) if value != "" else None
        except ValueError:
            raise ValueError(f"{HISTORY_FILE} line {line}, column {key!r}: {value[:20]!r} is not a "
                             "number") from None
    return parsed


def model_folders() -> list[Path]:
    """Every folder in `models/` whose name is a valid model name (in no particular order)."""
    root = paths.models_dir()
    if not root.is_dir():
        return []
    return [folder for folder in root.iterdir() if folder.is_dir() and NAME_RE.fullmatch(folder.name)]


OFFERED_FIRST_KEY = "offered_first"  # in meta.json: the shipped model the pages and commands pick first


def list_models() -> list[ModelInfo]:
    """Saved models that have a model file and readable metadata: the shipped default first (its
    meta says `offered_first`: measured on 18,000 unseen digits, see the README; validation
    accuracies of runs on other splits cannot rank it), then best validation accuracy first."""
    found = []
    for folder in model_folders():
        if not any((folder / f).is_file() for f in MODEL_FILES):
            continue
        try:
            found.append(ModelInfo(folder.name, read_json(folder / META_FILE)))
        except ValueError:
            continue
    return sorted(found, key=lambda m: (not m.meta.get(OFFERED_FIRST_KEY), -(m.val_accuracy or 0.0), m.name))


def best_model_name() -> str | None:
    """The shipped default, else the saved model with the best validation accuracy."""
    models = list_models()
    # A fine-tuned "-taught" model is scored on its base's split but bent towards a few user
    # digits, and a run still training changes by the epoch: neither is picked for everyone
    # automatically, only when chosen by name.
    settled = [m for m in models if not m.meta.get("finetuned_from") and m.status not in status.ACTIVE]
    pick = settled or models
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


def load_estimator(name: str) -> Any:
    """The scikit-learn estimator of model `name`, unpickled only if this install signed it."""
    import joblib

    folder = model_dir(name)
    path, sig = folder / SKLEARN_FILE, folder / SIGNATURE_FILE
    if not path.is_file():
        raise ValueError(f"model {name!r} has no {SKLEARN_FILE}")
    payload = path.read_bytes()
    if not sig.is_file() or not hmac.compare_digest(sig.read_text().strip(), sign(payload)):
        raise ValueError(
            f"model {name!r}: {SKLEARN_FILE} was not written by this app (bad or missing "
            "signature); it is never unpickled"
        )
    return joblib.load(io.BytesIO(payload))


def load_keras(name: str) -> Any:
    """The Keras model of `name` (imports TensorFlow: job processes and exports only), not compiled:
    whoever trains it further compiles it (a student's saved loss is a closure Keras cannot rebuild)."""
    import keras

    import core.augment  # noqa: F401  (registers the custom layers before loading)
    import core.deskew  # noqa: F401
    import core.fused_batchnorm  # noqa: F401

    path = model_dir(name) / KERAS_FILE
    if not path.is_file():
        raise ValueError(f"model {name!r} has no {KERAS_FILE}")
    return keras.saving.load_model(path, safe_mode=True, compile=False)
