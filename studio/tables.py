"""Table settings the pages share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import streamlit as st


def number_columns(formats: Mapping[str, str]) -> dict[str, Any]:
    """`st.dataframe` column settings showing each named column as a number in its format
    (`"%.4f"`, `"localized"` for thousands separators, ...)."""
    return {name: st.column_config.NumberColumn(format=fmt) for name, fmt in formats.items()}
