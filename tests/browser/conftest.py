"""Real-browser fixtures: a `streamlit run Home.py` server and Debian's Chromium via Playwright.

Browser tests skip (saying why) where Chromium or Playwright is missing, except under CI=true,
where a missing browser is a failure: `.ci/run` installs it first.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"


def _missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"Chromium not found at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "Playwright for Python is not installed (pip install -r requirements-dev.txt)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _missing()
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)
            # Under CI=true a missing browser is not skipped: the tests run and fail loudly.
            if reason and os.environ.get("CI") != "true":
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_env(tmp_path_factory) -> dict:
    """A copy of the shipped models and an empty data folder, so browser tests change nothing real."""
    base = tmp_path_factory.mktemp("app")
    models = base / "models"
    shutil.copytree(ROOT / "models", models, dirs_exist_ok=True)
    (base / "data").mkdir()
    env = dict(os.environ, DRS_MODELS_DIR=str(models), DRS_DATA_DIR=str(base / "data"),
               DRS_CACHE_DIR=str(base / "cache"), TF_CPP_MIN_LOG_LEVEL="2")
    return {"env": env, "models": models, "data": base / "data"}


@pytest.fixture(scope="session")
def app_url(app_env):
    """Start `streamlit run Home.py` on a free port for the whole session; stop it after."""
    port = _free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    ARTIFACTS.mkdir(exist_ok=True)
    tmp_log = ARTIFACTS / "streamlit-server.log"
    log = open(tmp_log, "w")  # noqa: SIM115 - stays open while the server runs
    proc = subprocess.Popen(cmd, cwd=ROOT, env=app_env["env"], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    break
        except OSError:
            time.sleep(0.3)
    else:
        proc.kill()
        pytest.fail(f"streamlit did not start; see {tmp_log}")
    yield url
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    pg = context.new_page()
    yield pg
    context.close()


def wait_for_app(page, timeout: float = 60_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' status widget)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
    page.wait_for_timeout(500)


def exceptions_on(page) -> list[str]:
    """Texts of Streamlit exception boxes shown on the page."""
    return [e.inner_text() for e in page.query_selector_all('[data-testid="stException"]')]


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
