"""Several visitors at once, in a real Chromium: five browser contexts (five Streamlit sessions)
use Explore and Draw while one of them trains a model on the Train page.

What must hold: every page keeps working (no exception, no console error); each visitor sees the
results of its own actions only (a widget value, an uploaded picture or CSV never shows up in
another session); the one training job is visible to everybody, but only the visitor who started
it gets a Stop button, and a second run does not start beside it: it waits in the queue, and the
visitor who queued it can cancel it.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest
from PIL import Image
from playwright.sync_api import expect

from core import data
from tests.browser.conftest import choose_option

ROOT = Path(__file__).resolve().parents[2]
JOB = "sessions-mlp"
STOP = "⏹ Stop (keeps the best epoch)"
START = "▶ Start training"
QUEUE = "➕ Queue training"
EPOCH_DONE = """() => /Epoch\\s*[1-9][0-9]* \\/ 200/.test(
    document.querySelector('[data-testid="stMain"]').innerText)"""


# --------------------------------------------------------------------------- page helpers


def metric(page, label: str) -> str:
    box = page.get_by_test_id("stMetric").filter(
        has=page.get_by_test_id("stMetricLabel").get_by_text(label, exact=True)
    )
    return box.get_by_test_id("stMetricValue").first.inner_text(timeout=120_000).strip()


def reading(page) -> str:
    """The digit the Draw page says the model reads."""
    return page.locator('[aria-label="predicted digit"]').first.inner_text(timeout=240_000).strip()


def no_reading(page) -> None:
    """The Draw page shows no reading (waits for a rerun in flight to remove an old one)."""
    expect(page.locator('[aria-label="predicted digit"]')).to_have_count(0, timeout=60_000)


def select(page, label: str, option: str) -> None:
    choose_option(page, page.get_by_test_id("stSelectbox").filter(has_text=label).first, option)


def type_into(page, testid: str, label: str, value: str) -> None:
    field = page.get_by_test_id(testid).filter(has_text=label).first.locator("input")
    field.fill(value)
    field.press("Enter")


def owner_label(page) -> str:
    text = page.get_by_test_id("stMain").inner_text()
    found = re.search(r"you are (visitor [0-9a-f]{6})", text)
    assert found, "the Train page does not say who this visitor is"
    return found.group(1)


def go(page, label: str) -> None:
    """Open another page through the sidebar, as a visitor does (the session, and its state, stay)."""
    page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()


def upload_mode(page) -> None:
    page.get_by_test_id("stRadio").get_by_text("Upload a picture").click()


def upload(page, path: Path, nth: int = 0) -> None:
    page.get_by_test_id("stFileUploaderDropzoneInput").nth(nth).set_input_files(str(path))


def assert_healthy(pages: dict, ui, consoles: dict) -> None:
    for name, pg in pages.items():
        assert ui.exceptions_on(pg) == [], f"{name}: Streamlit exception"
        assert ui.crash_messages(consoles[name]) == [], f"{name}: console errors"


@pytest.fixture(scope="module")
def digit_pictures(tmp_path_factory) -> dict[int, Path]:
    """PNGs of sample training digits, one per label, as a phone photo would be uploaded (large)."""
    folder = tmp_path_factory.mktemp("digits")
    train = data.parse_csv(data.paths.sample_dir() / "train.csv.gz", expect_labels=True)
    out = {}
    for label in (3, 7):
        image = train.images[int(next(i for i, y in enumerate(train.labels) if y == label))]
        path = folder / f"digit-{label}.png"
        Image.fromarray(255 - image).resize((140, 140), Image.NEAREST).save(path)  # dark ink on white
        out[label] = path
    return out


# --------------------------------------------------------------------------- the scenario


def test_five_visitors_while_one_trains(new_page, own_server, ui, digit_pictures):
    """On a server of its own: if it fails while its long job runs, the job dies with that server and
    does not queue the next test's training behind it."""
    names = ["trainer", "explore-a", "explore-b", "draw-a", "draw-b"]
    pages = {name: new_page() for name in names}
    try:
        _five_visitors(names, pages, own_server.url, ui, digit_pictures)
    finally:
        for name, pg in pages.items():
            ui.screenshot(pg, f"sessions-{name}")


def _five_visitors(names, pages, app_url, ui, digit_pictures):
    t0 = time.time()

    def phase(text: str) -> None:
        print(f"{time.time() - t0:6.1f} s  {text}")

    consoles = {name: ui.watch_console(pg) for name, pg in pages.items()}
    trainer = pages["trainer"]

    # Everyone arrives at once.
    for name, pg in pages.items():
        pg.goto(f"{app_url}/{'Train' if name == 'trainer' else name.split('-')[0].capitalize()}")
    for pg in pages.values():
        ui.wait_for_app(pg)
    assert_healthy(pages, ui, consoles)

    phase("arrived")
    # The trainer starts a long MLP job through the page's widgets (its own process).
    owner = owner_label(trainer)
    select(trainer, "Architecture", "mlp")
    ui.wait_for_app(trainer)
    type_into(trainer, "stNumberInput", "Epochs", "200")  # long (the most the page allows): it is stopped
    ui.wait_for_app(trainer)
    select(trainer, "Batch size", "16")  # longer still: at 128 the 200 epochs took only two minutes
    ui.wait_for_app(trainer)
    type_into(trainer, "stTextInput", "Model name", JOB)
    ui.wait_for_app(trainer)
    trainer.get_by_role("button", name=START).click()
    trainer.get_by_text(f"{JOB}").first.wait_for(timeout=120_000)
    stop = trainer.get_by_role("button", name=STOP)
    stop.wait_for(timeout=120_000)
    assert stop.is_enabled()
    assert "started by you" in trainer.get_by_test_id("stMain").inner_text()

    phase("training started")
    # Meanwhile the others explore and draw, each with their own settings and pictures.
    explore_a, explore_b = pages["explore-a"], pages["explore-b"]
    draw_a, draw_b = pages["draw-a"], pages["draw-b"]
    explore_a.get_by_role("tab", name="Samples").click()
    type_into(explore_a, "stNumberInput", "Digits per class", "5")
    box = draw_a.locator("canvas").last.bounding_box(timeout=120_000)
    x, y = box["x"] + box["width"] / 2, box["y"] + 50
    draw_a.mouse.move(x, y)
    draw_a.mouse.down()
    for step in range(1, 21):
        draw_a.mouse.move(x, y + step * 9)
    draw_a.mouse.up()
    upload_mode(draw_b)
    for pg in (explore_a, draw_a, draw_b):
        ui.wait_for_app(pg)

    assert reading(draw_a) == "1"  # a vertical stroke
    # draw-b has not uploaded anything yet: it sees an invitation, not draw-a's result.
    draw_b.get_by_text("Upload a picture of a digit").first.wait_for(state="visible", timeout=60_000)
    no_reading(draw_b)
    upload(draw_b, digit_pictures[7])
    # The answer appearing is the wait (five pages and a training job share two cores: a script
    # that has finished may not look idle for a while, and that is not what is tested here).
    assert reading(draw_b) == "7"
    # draw-a switches to uploading too: its own picture, its own answer; draw-b's is not there.
    upload_mode(draw_a)
    ui.wait_for_app(draw_a)
    no_reading(draw_a)
    upload(draw_a, digit_pictures[3])
    assert reading(draw_a) == "3"
    assert reading(draw_b) == "7"

    phase("drawn and uploaded")
    # A widget value in one session is not another's.
    explore_b.get_by_role("tab", name="Samples").click()
    field_a = explore_a.get_by_test_id("stNumberInput").filter(has_text="Digits per class").locator("input")
    field_b = explore_b.get_by_test_id("stNumberInput").filter(has_text="Digits per class").locator("input")
    assert field_a.input_value() == "5"
    assert field_b.input_value() == "10"
    assert_healthy(pages, ui, consoles)

    phase("explore checked")
    # Everybody sees the one job; only its owner may stop it; nobody can start a second one.
    # (One visitor at a time, each leaving again: every open Train page polls the job each second.)
    others = [pages[n] for n in names[1:]]
    for i, pg in enumerate(others):
        go(pg, "Train")
        pg.get_by_text(f"started by {owner}").first.wait_for(timeout=120_000)
        only_owner = pg.get_by_text(f"Only {owner}, who started this run, can stop it.")
        expect(only_owner).to_be_visible(timeout=60_000)
        assert JOB in pg.get_by_test_id("stMain").inner_text()
        assert owner_label(pg) != owner
        assert pg.get_by_role("button", name=STOP).count() == 0
        if i == 0:
            # A second run waits for the first (one job at a time), and its visitor may withdraw it.
            start = pg.get_by_role("button", name=QUEUE, exact=True)
            expect(start).to_be_visible(timeout=60_000)
            start.click()
            queued = pg.get_by_text(re.compile(r"is queued: it starts by itself")).first
            queued.wait_for(timeout=120_000)
            second = queued.inner_text().split(" is queued")[0].strip()
            assert second != JOB
            # The queue's heading is drawn further down the same page: wait for it, do not race it.
            expect(pg.get_by_test_id("stMain")).to_contain_text("Queue — 1 waiting", timeout=60_000)
            pg.locator(f".st-key-cancel_{second} button").click()
            expect(pg.locator(f".st-key-cancel_{second}")).to_have_count(0, timeout=60_000)
            expect(pg.get_by_test_id("stMain")).not_to_contain_text("Queue —", timeout=60_000)
        go(pg, "Home")
    phase("others saw the job")

    # The owner lets one epoch finish, then stops the job; a visitor arriving now sees it stopped.
    trainer.wait_for_function(EPOCH_DONE, timeout=180_000)
    trainer.get_by_role("button", name=STOP).click()
    trainer.get_by_text("Stopped on request").first.wait_for(timeout=180_000)
    late = others[1]
    go(late, "Train")
    late.get_by_text(re.compile(r"status \S* ?stopped")).first.wait_for(timeout=120_000)
    assert late.get_by_role("button", name=STOP).count() == 0
    assert f"started by {owner}" in late.get_by_test_id("stMain").inner_text()
    for pg in others:
        ui.wait_for_app(pg)
    phase("stopped")
    assert_healthy(pages, ui, consoles)


def _home_with_upload(new_page, app_url, ui):
    mine, theirs = new_page(), new_page()
    consoles = {"mine": ui.watch_console(mine), "theirs": ui.watch_console(theirs)}
    for pg in (mine, theirs):
        pg.goto(app_url)
    for pg in (mine, theirs):
        ui.wait_for_app(pg)
    mine.get_by_text("Bring your own data").click()
    upload(mine, ROOT / "tests" / "corpus" / "train_valid.csv", nth=0)
    mine.get_by_text("train: train_valid.csv").first.wait_for(timeout=120_000)
    ui.wait_for_app(mine)
    return mine, theirs, consoles


def test_uploaded_data_stays_in_its_session(new_page, app_url, ui):
    """A CSV uploaded on Home replaces the data for that visitor only, on every page."""
    mine, theirs, consoles = _home_with_upload(new_page, app_url, ui)
    for pg in (mine, theirs):
        go(pg, "Explore")
    for pg in (mine, theirs):
        ui.wait_for_app(pg)
    assert metric(mine, "Training digits") == "3"
    assert metric(theirs, "Training digits") == "9,000"
    ui.screenshot(mine, "sessions-upload-explore")
    for pg in (mine, theirs):
        go(pg, "Home")
    for pg in (mine, theirs):
        ui.wait_for_app(pg)
    assert (metric(mine, "Training digits"), metric(mine, "Source")) == ("3", "upload")
    assert (metric(theirs, "Training digits"), metric(theirs, "Source")) == ("9,000", "sample")
    assert_healthy({"mine": mine, "theirs": theirs}, ui, consoles)


def test_home_metrics_follow_the_upload_at_once(new_page, app_url, ui):
    mine, _, _ = _home_with_upload(new_page, app_url, ui)
    assert metric(mine, "Training digits") == "3"
