"""The runs section of the Train page in a real Chromium: queue two runs and watch the second start
when the first ends, overlay two runs' curves, download a model as one file, delete one after its
confirmation."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

from tests.browser.conftest import choose_option, exceptions_on, screenshot, wait_for_app

MAIN = '[data-testid="stMain"]'


def _main(page) -> str:
    return page.locator(MAIN).inner_text()


def _start(page, name: str, epochs: str) -> None:
    for key, value in (("train_epochs", epochs), ("train_name", name)):
        page.fill(f".st-key-{key} input", value)
        page.keyboard.press("Enter")
        wait_for_app(page)
    page.click(".st-key-train_start button")
    wait_for_app(page)


def _status_of(server, name: str) -> str:
    path = server.models / name / "meta.json"
    return json.loads(path.read_text()).get("status", "") if path.is_file() else ""


def _settled(page) -> None:
    """Wait until the page is done measuring this machine's speed: when the probe ends the whole page
    runs again, which can close an open drop-down list. Waits for the probe's result itself (its
    "Measure again" button or its failure), not for the "Measuring" line to be gone: right after a
    reload that line is not drawn yet."""
    wait_for_app(page)
    page.wait_for_function("""() => document.querySelector('.st-key-train_probe_again') !== null
        || (document.querySelector('[data-testid="stMain"]')?.innerText ?? '')
            .includes('could not be measured here')""", timeout=180_000)
    wait_for_app(page)


def _choose(page, testid: str, label: str, option: str) -> None:
    box = page.get_by_test_id(testid).filter(has_text=label).first
    choose_option(page, box.locator("input").first if box.locator("input").count() else box, option)


def _pick(page, label: str, option: str) -> None:
    _choose(page, "stMultiSelect", label, option)
    page.keyboard.press("Escape")
    wait_for_app(page)


def test_queue_overlay_download_and_delete(own_server, page):
    page.goto(f"{own_server.url}/Train")
    wait_for_app(page)
    choose_option(page, page.locator(".st-key-train_arch"), "mlp")
    wait_for_app(page)

    # Two runs: the first starts, the second waits in the queue and starts by itself after it.
    _start(page, "q-first", "6")
    page.wait_for_function("""() => [...document.querySelectorAll('.st-key-train_start button')]
        .some(b => b.innerText.includes('Queue training'))""", timeout=60_000)  # a job runs: it queues
    _start(page, "q-second", "2")
    page.get_by_text("q-second is queued: it starts by itself").first.wait_for(timeout=60_000)
    assert "Queue — 1 waiting" in _main(page) and page.locator(".st-key-cancel_q-second").count() == 1
    assert _status_of(own_server, "q-second") == "queued"
    screenshot(page, "runs-queue")
    page.wait_for_function("""() => document.querySelector('[data-testid="stMain"]').innerText
        .includes('Saved model q-second')""", timeout=300_000)  # the page follows its own runs
    assert _status_of(own_server, "q-first") == "done" and _status_of(own_server, "q-second") == "done"
    first = json.loads((own_server.models / "q-first" / "meta.json").read_text())
    second = json.loads((own_server.models / "q-second" / "meta.json").read_text())
    assert second["started_at"] >= first["ended_at"]  # it waited for the first to end

    # Their curves, overlaid, best epochs starred.
    page.reload()
    _settled(page)  # the jobs are over: the page measures its time estimate now
    _pick(page, "Compare the curves of", "q-first")
    _pick(page, "Compare the curves of", "q-second")
    chart = page.locator(".st-key-train_runs_overlay_chart")
    chart.locator(".scatterlayer path.js-line").first.wait_for(timeout=60_000)
    legend = chart.locator(".legend").first.text_content()
    assert "q-first" in legend and "q-second" in legend
    assert chart.locator(".scatterlayer path.point").count() >= 4  # a star per run, in each panel
    screenshot(page, "runs-overlay")

    # One run as one file.
    page.get_by_text("Manage a run").click()
    _choose(page, "stSelectbox", "Run", "q-first")
    wait_for_app(page)
    page.get_by_role("tab", name="Download").click()
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name="📦 Download q-first.zip").click()
    payload = Path(download.value.path()).read_bytes()
    with zipfile.ZipFile(io.BytesIO(payload)) as zf:
        names = set(zf.namelist())
        manifest = json.loads(zf.read("manifest.json"))
    assert {"manifest.json", "model.keras", "meta.json", "history.csv", "model.tflite"} <= names
    assert manifest["name"] == "q-first"
    assert set(manifest["files"]) == names - {"manifest.json", "manifest.sig"}

    # Delete, after a confirmation.
    page.get_by_role("tab", name="Delete").click()
    page.get_by_role("button", name="🗑 Delete q-first…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("q-first and its files will be removed").wait_for(timeout=30_000)
    assert (own_server.models / "q-first").is_dir()  # nothing happens before the confirmation
    dialog.get_by_role("button", name="Delete it").click()
    page.get_by_text("Deleted q-first.").first.wait_for(timeout=60_000)
    assert not (own_server.models / "q-first").exists() and (own_server.models / "q-second").is_dir()
    page.get_by_test_id("stSelectbox").filter(has_text="Run").first.click()
    options = page.get_by_role("option").all_inner_texts()
    page.keyboard.press("Escape")
    assert "q-second" in options and "q-first" not in options
    assert exceptions_on(page) == []
    screenshot(page, "runs-deleted")
