"""The guards at the top of a page, one wording each: what is missing is said, and the page stops
there (`st.info`/`st.error` + `st.stop()`) instead of failing further down."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import streamlit as st

from core import registry

NO_MODEL = "No saved model yet: train one on the **Train** page or with `python -m core train`."
DATA_ERROR = "The data could not be loaded: {}"


def require_models() -> dict[str, registry.ModelInfo]:
    """The saved models by name, best validation accuracy first; with none, says so and stops the
    page (cheap: reads meta.json files only)."""
    infos = {info.name: info for info in registry.list_models()}
    if not infos:
        st.info(NO_MODEL)
        st.stop()
    return infos


@contextlib.contextmanager
def data_guard() -> Iterator[None]:
    """Around loading data: a file that cannot be used shows one line (file, row, column) and
    stops the page instead of a traceback."""
    try:
        yield
    except ValueError as exc:
        st.error(DATA_ERROR.format(exc))
        st.stop()
