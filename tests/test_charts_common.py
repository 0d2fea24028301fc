"""core.charts.common: the colours every chart shares, and digits drawn as pictures."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from core.charts import common

ROOT = Path(__file__).resolve().parent.parent


def test_primary_colour_is_the_theme_colour() -> None:
    theme = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())["theme"]
    assert common.PRIMARY.lower() == theme["primaryColor"].lower()
    assert common.CONTRAST.lower() != common.PRIMARY.lower()


@pytest.mark.parametrize(
    ("colour", "alpha", "rgba"),
    [("#4f46e5", 0.45, "rgba(79, 70, 229, 0.45)"), ("#000000", 1, "rgba(0, 0, 0, 1)")],
)
def test_faded(colour: str, alpha: float, rgba: str) -> None:
    assert common.faded(colour, alpha) == rgba
