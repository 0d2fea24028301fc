"""The Evaluate page in a real Chromium: open it, click a confusion-matrix cell, see its digits."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from core import evaluation
from tests.browser.conftest import ROOT, exceptions_on, screenshot, wait_for_app

MODEL = "browser-rf"
NOTES_SHOT = ROOT.parent / "notes" / "evaluate.png"


@pytest.fixture(scope="module")
def forest(app_env) -> str:
    """A 10-tree forest trained on the sample (no TensorFlow: seconds) into the app's models folder."""
    cmd = [
        sys.executable,
        "-m",
        "core",
        "train",
        "--arch",
        "random-forest",
        "--n-estimators",
        "10",
        "--name",
        MODEL,
        "--quiet",
    ]
    done = subprocess.run(cmd, cwd=ROOT, env=app_env["env"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return MODEL


def expected(app_env, monkeypatch):
    from core import data, prediction

    monkeypatch.setenv("DRS_MODELS_DIR", str(app_env["models"]))
    monkeypatch.setenv("DRS_DATA_DIR", str(app_env["data"]))
    model = prediction.load(MODEL)
    images, labels = evaluation.validation_set(model.meta, data.load_train())
    return evaluation.evaluate(labels, model.predict_proba(images))


CELL_XY = """([t, p]) => {
    const gd = document.querySelector('.st-key-eval_confusion .js-plotly-plot');
    const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis, box = gd.getBoundingClientRect();
    return [box.left + xa._offset + xa.l2p(p), box.top + ya._offset + ya.l2p(t)];
}"""


def test_click_a_confusion_cell_shows_its_digits(app_url, page, forest, app_env, monkeypatch):
    want = expected(app_env, monkeypatch)
    page.goto(f"{app_url}/Evaluate?model={MODEL}")
    wait_for_app(page)
    assert page.url.startswith(f"{app_url}/Evaluate")
    assert not exceptions_on(page)
    accuracy = page.locator('[data-testid="stMetric"]').filter(has_text="Accuracy")
    assert f"{want.accuracy:.2%}" in accuracy.inner_text()

    t, p, count = evaluation.confusion_pairs(want.confusion)[0]
    page.wait_for_selector(".st-key-eval_confusion .js-plotly-plot", timeout=30_000)
    page.locator(".st-key-eval_confusion").scroll_into_view_if_needed()
    x, y = page.evaluate(CELL_XY, [t, p])
    page.mouse.move(x, y)
    page.wait_for_timeout(300)
    page.mouse.click(x, y)
    heading = page.get_by_text(f"True {t}, predicted {p}: {count:,} digits")
    heading.wait_for(timeout=30_000)
    wait_for_app(page)
    gallery = page.locator(".st-key-eval_pair_digits .js-plotly-plot")
    gallery.wait_for(timeout=30_000)
    assert gallery.bounding_box()["height"] > 50
    captions = page.evaluate(
        "() => document.querySelector('.st-key-eval_pair_digits .js-plotly-plot')"
        ".layout.annotations.map(a => a.text)"
    )
    assert len(captions) == min(count, 40) and captions[0].startswith(f"{p}: ")
    # The picker follows the click, so the two ways of choosing agree.
    assert page.locator(".st-key-eval_pair input").input_value().startswith(f"true {t} → predicted {p} (")
    assert not exceptions_on(page)
    shot = screenshot(page, "evaluate")
    NOTES_SHOT.parent.mkdir(exist_ok=True)
    shutil.copy(shot, NOTES_SHOT)
