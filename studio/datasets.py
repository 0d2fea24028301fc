"""Which data this visitor works with, cached once per file or upload.

Files in `data/` (or the committed sample) are shared by everyone; an upload belongs to the
session that made it, so one visitor's upload never changes what another sees.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import streamlit as st

from core import data, jobs, kaggle_rows
from studio import guards, memory

kaggle_rows.PARSE_THREADS = False  # the web server parses on one thread: a lower memory peak

_TRAIN_KEY = "upload_train"
_TEST_KEY = "upload_test"


@st.cache_resource(show_spinner="Loading data…", max_entries=8)
@memory.trimmed
def _load_file(path: str, size: int, mtime_ns: int, expect_labels: bool, source: str) -> data.Dataset:
    ds = data.load_csv(path, expect_labels=expect_labels, source_kind=source)
    ds.images.flags.writeable = False  # Shared between sessions: nobody may change it in place.
    return ds


@st.cache_resource(show_spinner="Checking the upload…", max_entries=8)
@memory.trimmed
def _parse_upload(digest: str, _payload: bytes, name: str, expect_labels: bool | None) -> data.Dataset:
    ds = data.parse_csv(_payload, name=name, expect_labels=expect_labels, source_kind=data.SOURCE_UPLOAD)
    ds.images.flags.writeable = False
    return ds


def _from_path(path, expect_labels: bool, source: str) -> data.Dataset:
    stat = path.stat()
    return _load_file(str(path), stat.st_size, stat.st_mtime_ns, expect_labels, source)


def files() -> data.DataFiles:
    """Kaggle's files in `data/` if present, else the committed sample (looked up each rerun: cheap)."""
    return data.find_data()


def train_set() -> data.Dataset:
    """This session's training data: its upload if it made one, else `data/` or the sample."""
    upload = st.session_state.get(_TRAIN_KEY)
    if upload is not None:
        return _parse_upload(*upload)
    found = files()
    return _from_path(found.train, True, found.source)


def train_file() -> Path:
    """The file behind this session's training set, where a job process can read it (an upload
    is kept in the cache folder for that)."""
    upload = st.session_state.get(_TRAIN_KEY)
    if upload is not None:
        digest, payload, name, _ = upload
        return jobs.stage_upload(payload, name)
    return files().train


def test_set() -> data.Dataset | None:
    """This session's test data (upload, `data/test.csv`, or the sample's), or None."""
    upload = st.session_state.get(_TEST_KEY)
    if upload is not None:
        return _parse_upload(*upload)
    found = files()
    return _from_path(found.test, False, found.source) if found.test is not None else None


def train_and_test() -> tuple[data.Dataset, data.Dataset | None]:
    """This session's training and test sets, the guard at the top of a page: a file that cannot
    be used shows one line (file, row, column) and stops the page instead of a traceback."""
    with guards.data_guard():
        return train_set(), test_set()


def test_answers():
    """Labels of the test set when they are known (the committed sample), else None."""
    if st.session_state.get(_TEST_KEY) is not None:
        return None
    found = files()
    return data.load_answers(found.answers) if found.answers is not None else None


def accept_upload(kind: str, payload: bytes, name: str) -> tuple[data.Dataset, bool]:
    """Validate an uploaded train/test CSV; only a valid file replaces the session's current one.

    Returns the dataset and whether it is new to this session (the page reruns to show it).
    Raises ValueError (with the file, row and column) for a bad file; nothing changes then.
    """
    expect = {"train": True, "test": False}[kind]
    digest = hashlib.blake2b(payload, digest_size=16).hexdigest()
    ds = _parse_upload(digest, payload, name, expect)
    key = _TRAIN_KEY if kind == "train" else _TEST_KEY
    current = st.session_state.get(key)
    changed = current is None or current[0] != digest
    st.session_state[key] = (digest, payload, name, expect)
    return ds, changed


def forget_uploads() -> None:
    """Go back to the files in `data/` (or the sample)."""
    st.session_state.pop(_TRAIN_KEY, None)
    st.session_state.pop(_TEST_KEY, None)


def describe(ds: data.Dataset | None) -> str:
    """One line for the user: where the data comes from and how big it is."""
    if ds is None:
        return "none"
    labels = f", {int((ds.class_counts() > 0).sum())} classes" if ds.has_labels else ", unlabelled"
    return f"{ds.name} ({ds.source}): {ds.n:,} digits{labels}"
