"""Where the studio keeps its files; tests point these elsewhere through environment variables."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def data_dir() -> Path:
    """The user's data folder (`data/`), or `$DRS_DATA_DIR` so tests never touch the real one."""
    return Path(os.environ.get("DRS_DATA_DIR", ROOT / "data"))


def sample_dir() -> Path:
    """The committed sample (always read from the repository, never from `$DRS_DATA_DIR`)."""
    return ROOT / "data" / "sample"


def models_dir() -> Path:
    """Saved models (`models/`), or `$DRS_MODELS_DIR` so tests never touch the shipped model."""
    return Path(os.environ.get("DRS_MODELS_DIR", ROOT / "models"))


def cache_dir() -> Path:
    """Parsed-CSV cache, beside the data but git-ignored."""
    return Path(os.environ.get("DRS_CACHE_DIR", data_dir() / ".cache"))


def signing_key_file() -> Path:
    """Secret that signs the app's own pickles (`model.joblib`); outside `models/`, git-ignored."""
    default = Path.home() / ".config" / "digit-recognizer-studio" / "model-signing.key"
    return Path(os.environ.get("DRS_KEY_FILE", default))


def write_atomic(path: Path, payload: bytes) -> Path:
    """Write to a temporary file beside `path`, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
