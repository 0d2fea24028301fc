"""Saved models for pages: loaded once per process and model version, shared by all visitors.

`core.prediction` serves them without TensorFlow; the first use of a model saved before the
serving copy existed makes that copy in a child process (a few seconds, once).
"""

from __future__ import annotations

import streamlit as st

from core import prediction, registry, status


@st.cache_resource(show_spinner="Loading the model (on first use: preparing it for serving)…", max_entries=6)
def _load(name: str, version: int) -> prediction.Predictor:
    return prediction.load(name)


def load(name: str | None = None) -> prediction.Predictor:
    """The model `name` (the best saved one when None), reloaded only when its weights change."""
    name = registry.resolve_name(name)
    return _load(name, prediction.model_version(name))


def show_notice(model: prediction.Predictor) -> None:
    """Say once per visitor what serving the model took (e.g. a copy that did not match its
    model.keras, made again), so nothing is repaired behind the user's back."""
    if model.notice is None:
        return
    shown = st.session_state.setdefault("model_notices_shown", set())
    key = (model.name, model.notice)
    if key not in shown:
        shown.add(key)
        st.info(f"Note: {model.notice}.", icon="🔧")


def label(info: registry.ModelInfo) -> str:
    """How a picker names a saved model: architecture, recorded validation accuracy, training data,
    and its status unless it is done (e.g. interrupted mid-run: its best epoch is what is used)."""
    parts = [str(info.meta.get("arch", "?"))]
    if info.val_accuracy is not None:
        parts.append(f"validation accuracy {info.val_accuracy:.2%}")
    parts.append(f"{info.data_source} data")
    if info.status != status.DONE:
        parts.append(info.status)
    return f"{info.name} ({', '.join(parts)})"
