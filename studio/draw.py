"""Draw page helpers: a reading is computed once per (picture, model version), not on every rerun."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from core import data, inference, paths
from studio import models


def digest(source: np.ndarray | bytes) -> str:
    """A short fingerprint of a canvas array or an uploaded file's bytes."""
    h = hashlib.blake2b(digest_size=16)
    if isinstance(source, np.ndarray):
        h.update(str((source.shape, source.dtype.str)).encode())
        h.update(np.ascontiguousarray(source).tobytes())
    else:
        h.update(bytes(source))
    return h.hexdigest()


@st.cache_data(max_entries=512, show_spinner=False)
def _read(key: str, model_name: str, version: float, _source, name: str | None):
    return inference.read_digit(models.load(model_name), _source, name=name)


def read(model_name: str, source: np.ndarray | bytes, *, name: str | None = None):
    """(preprocessing steps, prediction) for a picture, cached by its digest and the model's files.

    Raises what `inference.read_digit` raises (a blank picture, a file that is not an image).
    """
    return _read(digest(source), model_name, models._version(model_name), source, name)


@st.cache_data(max_entries=16, show_spinner=False)
def _count_rows(path: str, size: int, mtime_ns: int) -> int:
    with open(path, "rb") as f:
        return max(0, sum(1 for line in f if line.strip()) - 1)


def taught_count() -> int:
    """How many digits users have taught so far (rows of `data/user_digits.csv`)."""
    path = paths.data_dir() / "user_digits.csv"
    if not path.is_file():
        return 0
    stat = path.stat()
    return _count_rows(str(path), stat.st_size, stat.st_mtime_ns)


def user_digits() -> data.Dataset | None:
    """The taught digits (read fresh: the file changes whenever someone saves one)."""
    return data.load_user_digits()
