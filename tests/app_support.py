"""What the page tests share: a page as an AppTest by its name, its Plotly charts by their keys,
and the arrays of a figure as the browser gets them."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
from streamlit.testing.v1 import AppTest

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT = 120  # seconds one run of a page may take on a busy machine before AppTest gives up


def page_file(name: str) -> Path:
    """`Home.py` for "Home", else the page whose file is `pages/<n>_<icon>_<name>.py`."""
    if name == "Home":
        return ROOT / "Home.py"
    found = list((ROOT / "pages").glob(f"*_{name}.py"))
    assert len(found) == 1, f"no single page called {name!r}: {found}"
    return found[0]


def app(name: str, **state) -> AppTest:
    """Page `name` as an AppTest, not run yet, with these session-state values set."""
    at = AppTest.from_file(str(page_file(name)), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def in_app(name: str) -> AppTest:
    """Page `name` inside the multipage app (so `st.page_link`s to other pages resolve), not run yet."""
    at = app("Home")
    at.switch_page(str(page_file(name).relative_to(ROOT)))
    return at


def chart_key(element) -> str:
    """The key an element was given (its id is "$$ID-<hash>-<key>"; a key may hold "-" itself)."""
    return element.proto.id.split("-", 2)[-1]


def chart_keys(at: AppTest) -> list[str]:
    """The keys of the Plotly charts shown, in page order."""
    return [chart_key(chart) for chart in at.get("plotly_chart")]


def chart_spec(at: AppTest, key: str) -> dict:
    """The Plotly figure (as JSON) of the chart with this key."""
    for chart in at.get("plotly_chart"):
        if chart_key(chart) == key:
            return json.loads(chart.proto.spec)
    raise AssertionError(f"no chart with key {key!r} on the page (there are {chart_keys(at)})")


def figure_array(value) -> np.ndarray:
    """An array of a figure's JSON: a plain list, or Plotly's typed array `{dtype, bdata, shape}`."""
    if isinstance(value, dict) and "bdata" in value:
        array = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
        shape = value.get("shape")
        if shape is not None:
            array = array.reshape([int(n) for n in str(shape).strip("[]").split(",")])
        return array
    return np.asarray(value)
