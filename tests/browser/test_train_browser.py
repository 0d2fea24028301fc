"""Train page in a real Chromium: a short job's live chart moves while it runs, Stop keeps the model."""

from __future__ import annotations

import contextlib
import re
import time

from tests.browser.conftest import choose_option, exceptions_on, screenshot, wait_for_app

# A fragment rerun can leave the previous copy of the chart in the DOM for a moment, marked stale.
CHART = '.st-key-train_live_curves:not([data-stale="true"])'


def _chart_state(page) -> dict:
    """What the live chart shows now: the progress line and how far the batch line reaches (its
    last x, in epochs, read from the figure's data).

    The number of drawn points is no measure of progress: the job merges neighbouring points as the
    run grows and Plotly simplifies straight stretches, so a later drawing can have fewer points.
    """
    return page.evaluate(
        """(sel) => {
            const chart = document.querySelector(sel);
            const progress = document.querySelector('[data-testid="stProgress"]');
            const plot = chart ? chart.querySelector('.js-plotly-plot') : null;
            // _fullData: the figure's traces as drawn, with Plotly's base64 arrays decoded.
            const traces = plot && plot._fullData ? plot._fullData : [];
            const xs = traces.flatMap((t) => Array.from(t.x || []).map(Number));
            return {
                progress: progress ? progress.innerText : "",
                last_x: xs.length ? Math.max(...xs) : 0,
            };
        }""",
        CHART,
    )


def _poll(page, wanted, timeout_s: float = 60) -> dict:
    """The chart's state once `wanted(state)` holds, or its last state after `timeout_s`."""
    deadline = time.monotonic() + timeout_s
    state = _chart_state(page)
    while not wanted(state) and time.monotonic() < deadline:
        page.wait_for_timeout(250)
        state = _chart_state(page)
    return state


def _choose(page, key: str, option: str) -> None:
    choose_option(page, page.locator(f".st-key-{key}"), option)
    wait_for_app(page)


def _type(page, key: str, text: str) -> None:
    page.fill(f".st-key-{key} input", text)
    page.keyboard.press("Enter")
    wait_for_app(page)


def test_live_chart_moves_while_a_job_runs_and_stop_keeps_the_model(app_url, app_env, page):
    page.goto(f"{app_url}/Train")
    wait_for_app(page)
    page.get_by_role("heading", name=re.compile("Train a model")).first.wait_for(
        state="visible", timeout=60_000
    )
    _choose(page, "train_arch", "mlp")
    _type(page, "train_epochs", "150")  # long enough that Stop comes before the end
    _type(page, "train_name", "browser-mlp")
    page.click(".st-key-train_start button")

    page.wait_for_selector(f"{CHART} .scatterlayer path.js-line", timeout=180_000)
    # The chart is redrawn every second and may be detached mid-scroll; scrolling is only for
    # the screenshot, so a detached element is not a failure.
    with contextlib.suppress(Exception):
        page.locator(CHART).first.scroll_into_view_if_needed(timeout=5_000)
    # The curves are redrawn every few seconds (the progress bar more often), and a redraw can be
    # caught half done (no data yet): take the first drawing with data, then look until a later
    # drawing reaches further into the run.
    first = _poll(page, lambda state: state["last_x"] > 0)
    second = _poll(page, lambda s: s["last_x"] > first["last_x"] and s["progress"] != first["progress"])
    screenshot(page, "train-live")
    assert second["progress"] != first["progress"], (first, second)
    assert second["last_x"] > first["last_x"] > 0, (first, second)
    assert "started by you" in page.inner_text('[data-testid="stMain"]')

    page.click(".st-key-train_stop button")
    page.wait_for_selector('[data-testid="stAlertContentSuccess"]', timeout=60_000)
    text = page.inner_text('[data-testid="stMain"]')
    assert "Stopped on request" in text and "Saved model browser-mlp" in text
    assert (app_env["models"] / "browser-mlp" / "model.keras").is_file()
    assert exceptions_on(page) == []
    screenshot(page, "train-stopped")
