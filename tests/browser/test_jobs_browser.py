"""A training job outlives the page and the server, in a real Chromium: it is its own process.

One visitor starts a long job; a reload of the page shows it still running with its live curves
(and still theirs to stop: the key rides in the address); a second visitor sees it, started by
someone else, without a Stop button; the server is restarted while the job runs, and the job is
still running afterwards, its curves still moving; then its owner stops it and the model is kept.
"""

from __future__ import annotations

import os
import re

import pytest

from tests.browser.conftest import choose_option, exceptions_on, screenshot, wait_for_app

JOB = "outlives-mlp"
CHART = '.st-key-train_live_curves:not([data-stale="true"]) .scatterlayer path.js-line'
OWN_RUN_LIVE = """([job]) => {
    const main = document.querySelector('[data-testid="stMain"]');
    return main.innerText.includes(`${job} · mlp · started by you`) && main.innerText.includes('running')
        && !!document.querySelector('.st-key-train_live_curves .scatterlayer path.js-line');
}"""
EPOCH_AFTER = """([before]) => {
    const text = document.querySelector('[data-testid="stMain"]').innerText;
    const m = text.match(/Epoch\\s*(\\d+)\\s*\\/\\s*200/);
    return m && Number(m[1]) > before;
}"""


@pytest.fixture
def server(own_server):
    return own_server


def _main_text(page) -> str:
    return page.get_by_test_id("stMain").inner_text()


def _epochs_shown(page) -> int:
    found = re.search(r"Epoch\s*(\d+)\s*/\s*200", _main_text(page))
    return int(found.group(1)) if found else -1


def _start_long_job(page, url: str) -> None:
    page.goto(f"{url}/Train")
    wait_for_app(page)
    choose_option(page, page.locator(".st-key-train_arch"), "mlp")
    wait_for_app(page)
    for key, value in (("train_epochs", "200"), ("train_name", JOB)):
        page.fill(f".st-key-{key} input", value)
        page.keyboard.press("Enter")
        wait_for_app(page)
    page.click(".st-key-train_start button")
    page.wait_for_function(OWN_RUN_LIVE, arg=[JOB], timeout=180_000)


def _job_meta(server) -> dict:
    import json

    return json.loads((server.models / JOB / "meta.json").read_text())


def test_a_job_outlives_a_reload_a_server_restart_and_is_seen_by_everyone(server, new_page):
    owner = new_page()
    _start_long_job(owner, server.url)
    assert re.search(r"run_key=[\w-]+", owner.url), owner.url  # the owner's key is in the address
    pid = _job_meta(server)["process"]["pid"]
    assert pid != server.proc.pid

    # A reload: a new session, the same address. Still running, with its curves; still the owner's.
    owner.reload()
    wait_for_app(owner)
    owner.wait_for_selector(CHART, timeout=60_000)
    text = _main_text(owner)
    assert f"{JOB} · mlp · started by you" in text and "running" in text
    assert owner.locator(".st-key-train_stop button").count() == 1
    screenshot(owner, "jobs-after-reload")

    # Another visitor sees the same run, started by someone else, and cannot stop it.
    other = new_page()
    other.goto(f"{server.url}/Train")
    wait_for_app(other)
    other.wait_for_selector(CHART, timeout=60_000)
    text = _main_text(other)
    assert re.search(rf"{JOB} · mlp · started by visitor [0-9a-f]{{6}}", text), text
    assert other.locator(".st-key-train_stop button").count() == 0
    assert "who started this run, can stop it" in text

    # The server restarts while the job runs: the job goes on (its own process) and is shown running.
    before = _epochs_shown(owner)
    server.stop()
    assert os.path.exists(f"/proc/{pid}"), "the job died with the server"
    server.start()
    owner.reload()
    wait_for_app(owner)
    owner.wait_for_selector(CHART, timeout=60_000)
    owner.wait_for_function(EPOCH_AFTER, arg=[before], timeout=120_000)
    assert "running" in _main_text(owner) and _job_meta(server)["process"]["pid"] == pid
    screenshot(owner, "jobs-after-restart")

    # Its owner stops it: the best epoch is kept.
    owner.click(".st-key-train_stop button")
    owner.wait_for_selector('[data-testid="stAlertContentSuccess"]', timeout=60_000)
    text = _main_text(owner)
    assert "Stopped on request" in text and f"Saved model {JOB}" in text
    assert _job_meta(server)["status"] == "stopped"
    assert exceptions_on(owner) == [] and exceptions_on(other) == []
