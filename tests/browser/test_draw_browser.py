"""The Draw page in a real Chromium: draw with the mouse on the real canvas, read the answer.

Needs a saved model in the app's models folder (the shipped `models/default-cnn`). Before it is
committed, `DRS_DRAW_TEST_MODEL=/path/to/models/<name>` copies one in for the session.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

import pytest
from conftest import exceptions_on, screenshot, wait_for_app

NOTES_SHOT = Path("/work/notes/draw.png")

# Strokes in canvas pixels (280x280), as a person would draw them.
SEVEN = [[(75, 65), (205, 65)], [(205, 65), (170, 130), (135, 225)]]
ONE = [[(140, 45), (140, 235)]]


@pytest.fixture(scope="module")
def draw_url(app_url, app_env):
    extra = os.environ.get("DRS_DRAW_TEST_MODEL")
    if extra:
        shutil.copytree(extra, app_env["models"] / Path(extra).name, dirs_exist_ok=True)
    if not any((d / "meta.json").is_file() for d in app_env["models"].iterdir()):
        pytest.skip("no saved model in models/ (the shipped models/default-cnn) to draw against")
    return app_url + "/Draw"


def _open(page, url: str):
    page.goto(url)
    wait_for_app(page)
    canvas = page.locator("canvas.upper-canvas").first  # fabric's event layer, on top
    canvas.wait_for(timeout=60_000)
    return canvas


def _draw(page, canvas, strokes) -> None:
    box = canvas.bounding_box()
    assert box and box["width"] == 280, box
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x, box["y"] + y)
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x, box["y"] + y, steps=12)
        page.mouse.up()
        page.wait_for_timeout(300)


def _shown_digit(page, timeout: float = 60_000) -> str:
    el = page.locator('[aria-label="predicted digit"]')
    el.wait_for(timeout=timeout)
    return el.inner_text().strip()


def _wait_for_reading(page, expected: str, timeout: float = 60_000) -> str:
    """Wait until the page shows `expected` (the app reruns after each stroke), return what it shows."""
    with contextlib.suppress(Exception):  # on a timeout, report what is shown instead
        page.wait_for_function(
            """(d) => { const e = document.querySelector('[aria-label="predicted digit"]');
                        return e && e.innerText.trim() === d; }""",
            arg=expected,
            timeout=timeout,
        )
    wait_for_app(page)
    return _shown_digit(page, timeout=30_000)


def test_drawn_seven_is_read_as_seven(page, draw_url):
    canvas = _open(page, draw_url)
    page.get_by_text("Draw a digit", exact=True).first.wait_for(state="visible", timeout=60_000)
    _draw(page, canvas, SEVEN)
    shown = _wait_for_reading(page, "7")
    page.wait_for_timeout(1000)  # charts finish drawing before the picture is taken
    path = screenshot(page, "draw-seven")
    NOTES_SHOT.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(path, NOTES_SHOT)
    assert shown == "7"
    assert not exceptions_on(page)
    page.get_by_text("What the model saw").first.wait_for(state="visible", timeout=60_000)


def test_undo_and_reset_from_the_canvas_toolbar(page, draw_url):
    canvas = _open(page, draw_url)
    _draw(page, canvas, ONE)
    assert _wait_for_reading(page, "1") == "1"
    canvas.hover()
    page.get_by_role("button", name="Undo").click()  # the only stroke goes: nothing to read
    page.get_by_text("Draw a digit", exact=True).wait_for(timeout=30_000)
    assert page.locator('[aria-label="predicted digit"]').count() == 0

    _draw(page, canvas, SEVEN)
    assert _wait_for_reading(page, "7") == "7"
    canvas.hover()
    page.get_by_role("button", name="Reset canvas & history").click()
    page.get_by_text("Draw a digit", exact=True).wait_for(timeout=30_000)
    assert not exceptions_on(page)


def test_clear_button_empties_the_canvas(page, draw_url):
    canvas = _open(page, draw_url)
    _draw(page, canvas, ONE)
    assert _wait_for_reading(page, "1") == "1"
    page.get_by_role("button", name="Clear").click()
    page.get_by_text("Draw a digit", exact=True).wait_for(timeout=30_000)
    wait_for_app(page)
    assert page.locator('[aria-label="predicted digit"]').count() == 0
    assert not exceptions_on(page)
