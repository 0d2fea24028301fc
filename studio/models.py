"""Saved models for pages: loaded once per process and file version, shared by all visitors."""

from __future__ import annotations

import streamlit as st

from core import registry


def _version(name: str) -> float:
    folder = registry.model_dir(name)
    files = [folder / registry.KERAS_FILE, folder / registry.SKLEARN_FILE, folder / registry.META_FILE]
    return max((f.stat().st_mtime_ns for f in files if f.is_file()), default=0)


@st.cache_resource(show_spinner="Loading the model…", max_entries=6)
def _load(name: str, version: float) -> registry.LoadedModel:
    return registry.load_model(name)


def load(name: str | None = None) -> registry.LoadedModel:
    """The model `name` (the best saved one when None), reloaded only when its files change."""
    name = registry.resolve_name(name)
    return _load(name, _version(name))


def choices() -> list[str]:
    """Names of the saved models, best first (cheap: reads meta.json files only)."""
    return [m.name for m in registry.list_models()]
