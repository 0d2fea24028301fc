"""Every page in a real Chromium: it opens at its URL, finishes running, shows its title, shows no
Streamlit exception and logs no error in the browser console. A full-page screenshot of each is
saved in test-artifacts/ for people to look at.

The page list is read from pages/ (a new page is tested without editing this file). With
DRS_UPDATE_DOCS=1 the Home and Explore pictures are also written to docs/ for the README.
"""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = {"Home": "home.png", "Explore": "explore.png"}
DOCS_MAX_BYTES = 300 * 1024


def url_path(script: Path) -> str:
    """The URL path Streamlit serves `pages/<n>_<icon>_<Name>.py` at: "<Name>" ("" for Home).

    Streamlit drops the sort number and a leading emoji (`page_icon_and_name`);
    `test_page_list_matches_the_sidebar` checks the result against the app's own navigation links."""
    if script.name == "Home.py":
        return ""
    from streamlit.source_util import page_icon_and_name

    return page_icon_and_name(script)[1]


def title_of(script: Path) -> str:
    """The text of the page's `st.title(...)` call, read from its source."""
    for node in ast.walk(ast.parse(script.read_text())):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "title"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            return node.args[0].value
    raise AssertionError(f"{script.name} has no st.title('...') with a literal text")


SCRIPTS = [ROOT / "Home.py", *sorted((ROOT / "pages").glob("*.py"))]
SCRIPTS = [s for s in SCRIPTS if not s.name.startswith("_")]


def test_page_list_matches_the_sidebar(page, app_url, ui):
    """The URL paths derived from the file names are the ones Streamlit's navigation links to."""
    page.goto(app_url)
    ui.wait_for_app(page)
    links = page.locator('[data-testid="stSidebarNav"] a')
    links.first.wait_for()
    hrefs = {
        href.rstrip("/").rsplit("/", 1)[-1]
        for href in (links.nth(i).get_attribute("href") for i in range(links.count()))
    }
    expected = {url_path(s) for s in SCRIPTS[1:]}
    assert len(SCRIPTS) >= 2
    assert expected <= hrefs, (expected, hrefs)


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda s: url_path(s) or "Home")
def test_page_opens_cleanly(script, page, app_url, ui):
    console = ui.watch_console(page)
    path = url_path(script)
    page.goto(f"{app_url}/{path}")
    ui.wait_for_app(page)
    assert page.url.split("?")[0].rstrip("/") == f"{app_url}/{path}".rstrip("/"), page.url
    title = title_of(script)
    heading = page.get_by_role("heading", name=title)
    heading.first.wait_for()
    heading.first.wait_for(state="visible", timeout=60_000)
    name = path or "Home"
    shot = ui.screenshot(page, f"page-{name}")
    assert ui.exceptions_on(page) == [], f"{name}: Streamlit exception shown"
    errors = page.locator('[data-testid="stAlertContentError"]')
    error_texts = [errors.nth(i).inner_text() for i in range(errors.count())]
    assert error_texts == [], f"{name}: st.error shown on a fresh visit"
    assert ui.crash_messages(console) == [], f"{name}: browser console errors"
    assert shot.stat().st_size > 20_000  # a rendered page, not a blank one
    if name in DOCS and os.environ.get("DRS_UPDATE_DOCS") == "1":
        _write_doc_image(shot, ROOT / "docs" / DOCS[name])


def _write_doc_image(shot: Path, target: Path) -> None:
    """A README copy of a screenshot, at most ~300 KB: scaled to 1200 px wide, 256 colours."""
    from PIL import Image

    target.parent.mkdir(exist_ok=True)
    img = Image.open(shot).convert("RGB")
    width = 1200
    img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    for colours in (256, 128, 64):
        img.quantize(colours, method=Image.Quantize.MEDIANCUT).save(target, optimize=True)
        if target.stat().st_size <= DOCS_MAX_BYTES:
            return
    raise AssertionError(f"{target} is {target.stat().st_size:,} bytes even with 64 colours")
