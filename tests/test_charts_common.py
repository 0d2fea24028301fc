"""core.charts.common: the colours every chart shares, and digits drawn as pictures."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
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


def test_digit_grid_rows_and_captions() -> None:
    images = np.zeros((12, 28, 28), dtype=np.uint8)
    plain = common.digit_grid(images, cols=5)
    assert plain.layout.height == 3 * 60 and not plain.layout.annotations
    captioned = common.digit_grid(images, [str(i) for i in range(12)], cols=5, title="t")
    assert captioned.layout.height == 3 * 70 + 30
    assert captioned.layout.annotations[0].font.color is None  # the chart's own text colour
    light = common.digit_grid(images, ["x"] * 12, cols=6, row_height=90, caption_color="#e5e7eb")
    assert light.layout.height == 2 * 90
    assert {a.font.color for a in light.layout.annotations} == {"#e5e7eb"}
    with pytest.raises(ValueError, match="at least one image"):
        common.digit_grid(images[:0])
