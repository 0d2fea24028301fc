"""Draw page helpers: a reading is computed once per (picture, model version), not on every rerun."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from core import data, inference, jobs, models, paths, prediction, runs, status
from studio import datasets, model_cache, visitor


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
def _read(key: str, model_name: str, version: int, _source, name: str | None):
    return inference.read_digit(model_cache.load(model_name), _source, name=name)


def read(model_name: str, source: np.ndarray | bytes, *, name: str | None = None):
    """(preprocessing steps, prediction) for a picture, cached by its digest and the model's files.

    Raises what `inference.read_digit` raises (a blank picture, a file that is not an image).
    """
    return _read(digest(source), model_name, prediction.model_version(model_name), source, name)


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


FINETUNE_KEY = "draw_finetune_run"


def start_finetune(model: prediction.Predictor, n_taught: int) -> str:
    """Start a fine-tune job of `model` on the `n_taught` digits taught so far; the run's name."""
    from core import finetune
    from core.training import TrainConfig

    train = datasets.train_set()
    config = TrainConfig(arch=model.meta.get("arch", models.DEFAULT_ARCH),
                         name=finetune.taught_name(model.name))
    return jobs.start(config, jobs.DataRef.of(train, datasets.train_file()), owner=visitor.label(),
                      token=visitor.token(), user_digits=n_taught,
                      job={"kind": jobs.FINETUNE, "base": model.name})


@st.fragment(run_every=1.0)
def finetune_progress() -> None:
    """The fine-tune job this visitor started: its progress, then the new model, chosen for them.

    Call it only while such a job exists: it reruns every second, and a Draw page that always called
    it kept the server busy for nothing for as long as a digit was shown."""
    name = st.session_state.get(FINETUNE_KEY)
    if not name:
        return
    view = runs.read_run(name)
    if view.active:
        st.progress(0.5 if view.status == status.RUNNING else 0.05,
                    text=f"Fine-tuning in its own process: {view.progress.get('message', 'starting')}…")
        return
    st.session_state.pop(FINETUNE_KEY)
    if view.status == status.DONE and view.has_model:
        st.session_state["draw_finetuned"] = view.meta.get("taught") | {"name": name, "base": view.meta.get(
            "finetuned_from"), "seconds": view.meta.get("training_time_s")}
        st.session_state["draw_switch_to"] = name
    else:
        st.session_state["draw_finetune_error"] = view.meta.get("error") or f"the job ended {view.status}"
    st.rerun()
