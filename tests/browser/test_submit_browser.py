"""The Submit page in a real Chromium: predict the sample test set, download submission.csv, read it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from core import data

NOTES_SHOT = Path("/work/notes/submit.png")


def _ensure_model(models: Path, save_forest, sample_train, monkeypatch) -> None:
    """The served copy of models/ has the shipped model; without it, save a small forest there
    through the registry (signed with the served app's key, which this process shares)."""
    if any((d / "meta.json").is_file() for d in models.iterdir() if d.is_dir()):
        return
    monkeypatch.setenv("DRS_MODELS_DIR", str(models))
    save_forest("browser-forest", sample_train.images[:3000], sample_train.labels[:3000], val_accuracy=0.9,
                n_estimators=30)


def test_submit_predict_and_download(page, app_url, app_env, tmp_path, ui, save_forest, sample_train,
                                    monkeypatch):
    _ensure_model(app_env["models"], save_forest, sample_train, monkeypatch)
    page.goto(f"{app_url}/Submit")
    ui.wait_for_app(page)
    assert page.url.rstrip("/").endswith("/Submit"), page.url
    page.get_by_role("heading", name="Submit to Kaggle").wait_for(timeout=60_000)

    predict_button = page.get_by_role("button", name="Predict the test set")
    predict_button.wait_for(timeout=60_000)
    predict_button.click()
    download_button = page.get_by_role("button", name="Download submission.csv")
    download_button.wait_for(timeout=180_000)
    ui.wait_for_app(page)
    assert ui.exceptions_on(page) == []
    page.get_by_text("Valid submission").first.wait_for(state="visible", timeout=60_000)
    page.get_by_text("Score (accuracy vs sample answers)").first.wait_for(state="visible", timeout=60_000)

    with page.expect_download(timeout=30_000) as info:
        download_button.click()
    download = info.value
    assert download.suggested_filename == "submission.csv"
    saved = tmp_path / "submission.csv"
    download.save_as(saved)
    lines = saved.read_text().splitlines()
    assert lines[0] == "ImageId,Label"
    assert len(lines) == 1 + 1000  # the sample's test set: one row per digit
    rows = np.array([[int(v) for v in line.split(",")] for line in lines[1:]])
    assert rows[:, 0].tolist() == list(range(1, 1001))
    accuracy = float((rows[:, 1] == data.sample_answers()).mean())
    assert accuracy > 0.8
    # The file the browser got is the one the page recorded in data/submissions/.
    copies = list((app_env["data"] / "submissions").glob("submission-*.csv"))
    assert saved.read_bytes() in [c.read_bytes() for c in copies]

    # Streamlit scrolls inside its own container: a tall viewport shows the whole page at once.
    page.set_viewport_size({"width": 1400, "height": 2300})
    page.get_by_text("Local leaderboard").wait_for(timeout=30_000)
    page.wait_for_timeout(1500)  # let the charts finish drawing before the picture
    shot = ui.screenshot(page, "submit")
    if NOTES_SHOT.parent.is_dir():
        shutil.copy(shot, NOTES_SHOT)
