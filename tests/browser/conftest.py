"""Real-browser fixtures: a `streamlit run Home.py` server and Debian's Chromium via Playwright.

Browser tests skip (saying why) where Chromium or Playwright is missing, except under CI=true,
where a missing browser is a failure: `.ci/run` installs it first.

Helpers are plain functions here (`wait_for_app`, `exceptions_on`, `screenshot`, `watch_console`,
`crash_messages`) and also reachable from any test through the `ui` fixture, since a test module
cannot import a conftest reliably. Waits are generous: the test machine is small and shared.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
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
def app_env(tmp_path_factory) -> Iterator[dict]:
    """A copy of the shipped models, an empty data folder and a private pickle-signing key, so
    browser tests change nothing real. The key is also this test process's (for the session), so a
    test may load in-process a model the server or a `python -m core` child saved."""
    base = tmp_path_factory.mktemp("app")
    models = base / "models"
    shutil.copytree(ROOT / "models", models, dirs_exist_ok=True)
    (base / "data").mkdir()
    key = base / "model-signing.key"
    env = dict(
        os.environ,
        DRS_MODELS_DIR=str(models),
        DRS_DATA_DIR=str(base / "data"),
        DRS_CACHE_DIR=str(base / "cache"),
        DRS_KEY_FILE=str(key),
        TF_CPP_MIN_LOG_LEVEL="2",
    )
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_KEY_FILE", str(key))
        yield {"env": env, "models": models, "data": base / "data"}


class AppServer:
    """`streamlit run Home.py` on a free port with the given environment; it can be stopped and
    started again on the same port (a server restart), its output appended to `log`."""

    def __init__(self, env: dict, log: Path):
        self.port, self.env, self.log, self.proc = _free_port(), env, log, None
        self.url = f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        # No file watcher: other people edit files while tests run, and watching .venv costs CPU.
        cmd = [sys.executable, "-m", "streamlit", "run", "Home.py", "--server.port", str(self.port),
               "--server.headless", "true", "--browser.gatherUsageStats", "false",
               "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen(cmd, cwd=ROOT, env=self.env, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 120
        while time.time() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"streamlit exited with code {self.proc.returncode}; see {self.log}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.3)
        self.proc.kill()
        pytest.fail(f"streamlit did not start within 120 s; see {self.log}")

    def stop(self) -> None:
        """SIGTERM, as Ctrl-C or a host restarting the app; killed if it does not end."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


@pytest.fixture(scope="session")
def app_url(app_env):
    """Start `streamlit run Home.py` on a free port for the whole session; stop it after."""
    server = AppServer(app_env["env"], ARTIFACTS / "streamlit-server.log")
    server.log.unlink(missing_ok=True)
    server.start()
    yield server.url
    server.stop()


@pytest.fixture
def own_server(app_env, tmp_path):
    """A server of this test's own: a copy of the shipped models and empty data and cache folders,
    so what the test trains, queues or deletes never reaches another test. `.models` is its folder."""
    models = tmp_path / "models"
    shutil.copytree(ROOT / "models", models)
    for sub in ("data", "cache"):
        (tmp_path / sub).mkdir()
    env = {**app_env["env"], "DRS_MODELS_DIR": str(models), "DRS_DATA_DIR": str(tmp_path / "data"),
           "DRS_CACHE_DIR": str(tmp_path / "cache")}
    server = AppServer(env, ARTIFACTS / f"server-{tmp_path.name}.log")
    server.models = models
    server.start()
    yield server
    server.stop()
    _kill_jobs(models)


def _kill_jobs(models: Path) -> None:
    """Job processes a test left running in its models folder (a failed test must not leave training)."""
    from core import processes, status

    for meta_file in models.glob("*/meta.json"):
        try:
            meta = json.loads(meta_file.read_text())
        except ValueError:
            continue
        for record in (meta.get(status.WRITER_KEY), meta.get("launched")):
            if isinstance(record, dict):
                processes.kill(record)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    context.set_default_timeout(120_000)
    pg = context.new_page()
    yield pg
    context.close()


@pytest.fixture
def new_page(browser):
    """Factory of pages, each in its own browser context (its own cookies: its own Streamlit
    session, like a separate visitor). All are closed after the test."""
    contexts = []

    def make():
        context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
        context.set_default_timeout(120_000)
        contexts.append(context)
        return context.new_page()

    yield make
    for context in contexts:
        context.close()


_IDLE = """() => {
    const app = document.querySelector('[data-testid="stApp"]');
    return !!app && app.getAttribute('data-test-script-state') === 'notRunning'
        && !document.querySelector('[data-testid="stSkeleton"]');
}"""


def wait_for_app(page, timeout: float = 120_000) -> None:
    """Wait until Streamlit has run the script to the end and drawn what it sent.

    Streamlit keeps the script state on its root element for tests: 'notRunning' (not
    'initial', as before the first run) at two checks half a second apart; widgets whose code is
    still loading show as grey skeletons, so none may be left; then the network must be quiet
    (custom components such as the drawing canvas load their code in the browser)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    deadline = time.time() + timeout / 1000
    while True:
        page.wait_for_function(_IDLE, timeout=max(1_000, (deadline - time.time()) * 1000))
        page.wait_for_timeout(500)
        if page.evaluate(_IDLE) or time.time() > deadline:
            break
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    quiet = max(1_000, min(30_000, (deadline - time.time()) * 1000))
    # A page with live charts may never go quiet: its script has finished all the same.
    with contextlib.suppress(PlaywrightTimeout):
        page.wait_for_load_state("networkidle", timeout=quiet)


def choose_option(page, opener, option: str, *, tries: int = 5) -> None:
    """Open a drop-down list by clicking `opener` (a locator) and click `option` in it. A rerun of the
    page (a speed probe ending, a run ending) can close the list between the two clicks, and a click
    would then wait for an option that is gone: open it again instead. Streamlit's combo box also
    sometimes takes the first click after a page load as focus only."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    choice = page.get_by_role("option", name=option, exact=True)
    for _ in range(tries):
        opener.click()
        try:
            choice.wait_for(timeout=5_000)
            choice.click(timeout=10_000)
            return
        except PlaywrightTimeout:
            page.keyboard.press("Escape")
            wait_for_app(page)
    raise AssertionError(f"could not pick {option!r}: the list never offered it or kept closing")


def exceptions_on(page) -> list[str]:
    """Texts of Streamlit exception boxes shown on the page."""
    return [e.inner_text() for e in page.query_selector_all('[data-testid="stException"]')]


_CONTENT_HEIGHT = """() => {
    const main = document.querySelector('[data-testid="stMain"]');
    return main ? Math.max(main.scrollHeight, window.innerHeight) : document.body.scrollHeight;
}"""


def screenshot(page, name: str, *, max_height: int = 6000) -> Path:
    """A picture of the whole page in test-artifacts/<name>.png. Streamlit scrolls inside its main
    block (the document itself never grows), so the window is made as tall as the content first."""
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    size = page.viewport_size
    height = min(max_height, int(page.evaluate(_CONTENT_HEIGHT)))
    if size and height > size["height"]:
        page.set_viewport_size({"width": size["width"], "height": height})
        page.wait_for_timeout(1500)  # charts re-lay themselves out
    page.screenshot(path=str(path), full_page=True)
    if size and height > size["height"]:
        page.set_viewport_size(size)
    return path


def watch_console(page) -> list[str]:
    """Start recording the page's console errors and uncaught exceptions; returns the live list."""
    seen: list[str] = []
    page.on(
        "console", lambda msg: seen.append(f"console.{msg.type}: {msg.text}") if msg.type == "error" else None
    )
    page.on("pageerror", lambda exc: seen.append(f"pageerror: {exc}"))
    return seen


# Console errors that say nothing about the app: the browser's own fetches and Streamlit's
# optional endpoints (no internet here, no favicon for some pages, no host config).
BENIGN_CONSOLE = (
    "favicon",
    "_stcore/host-config",
    "_stcore/allowed-message-origins",
    "Failed to load resource: the server responded with a status of 404",
    "net::ERR_INTERNET_DISCONNECTED",
    "net::ERR_NAME_NOT_RESOLVED",
    "net::ERR_NETWORK_CHANGED",
)


def crash_messages(messages: list[str]) -> list[str]:
    """The recorded console messages that point to a broken page (uncaught exceptions, errors)."""
    return [m for m in messages if not any(b in m for b in BENIGN_CONSOLE)]


@pytest.fixture
def ui() -> SimpleNamespace:
    """The helpers above, for test modules (which cannot import this conftest)."""
    return SimpleNamespace(
        wait_for_app=wait_for_app,
        exceptions_on=exceptions_on,
        screenshot=screenshot,
        watch_console=watch_console,
        crash_messages=crash_messages,
        artifacts=ARTIFACTS,
    )
