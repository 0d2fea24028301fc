"""The Submit page in a real Chromium: predict the sample test set, download submission.csv, read it."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from core import data

ROOT = Path(__file__).resolve().parents[2]
NOTES_SHOT = Path("/work/notes/submit.png")


# The same helpers as tests/browser/conftest.py (a conftest cannot be imported from a test module).
def wait_for_app(page, timeout: float = 120_000) -> None:
    """Wait until Streamlit has finished running the script (no 'Running...' status widget)."""
    page.wait_for_selector('[data-testid="stApp"]', timeout=timeout)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]')", timeout=timeout
    )
    page.wait_for_timeout(500)


def exceptions_on(page) -> list[str]:
    return [e.inner_text() for e in page.query_selector_all('[data-testid="stException"]')]


def screenshot(page, name: str) -> Path:
    folder = ROOT / "test-artifacts"
    folder.mkdir(exist_ok=True)
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def _ensure_model(models: Path) -> None:
    """The served copy of models/ has the shipped model; without it, save a small forest there."""
    if any((d / "meta.json").is_file() for d in models.iterdir() if d.is_dir()):
        return
    import json

    import joblib
    from sklearn.ensemble import RandomForestClassifier

    train = data.parse_csv(data.paths.sample_dir() / "train.csv.gz", expect_labels=True)
    forest = RandomForestClassifier(n_estimators=30, random_state=0, n_jobs=1)
    forest.fit(train.images[:3000].reshape(3000, -1) / 255.0, train.labels[:3000])
    folder = models / "browser-forest"
    folder.mkdir()
    joblib.dump(forest, folder / "model.joblib")
    (folder / "meta.json").write_text(
        json.dumps(
            {
                "name": "browser-forest",
                "arch": "random-forest",
                "kind": "sklearn",
                "metrics": {"val_accuracy": 0.9},
                "data": {"source": "sample", "fingerprint": train.fingerprint},
            }
        )
    )
    np.save(folder / "train_hashes.npy", data.row_hashes(train.images[:3000]))


def test_submit_predict_and_download(page, app_url, app_env, tmp_path):
    _ensure_model(app_env["models"])
    page.goto(f"{app_url}/Submit")
    wait_for_app(page)
    assert page.url.rstrip("/").endswith("/Submit"), page.url
    page.get_by_role("heading", name="Submit to Kaggle").wait_for(timeout=60_000)

    predict_button = page.get_by_role("button", name="Predict the test set")
    predict_button.wait_for(timeout=60_000)
    predict_button.click()
    download_button = page.get_by_role("button", name="Download submission.csv")
    download_button.wait_for(timeout=180_000)
    wait_for_app(page)
    assert exceptions_on(page) == []
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
    shot = screenshot(page, "submit")
    if NOTES_SHOT.parent.is_dir():
        shutil.copy(shot, NOTES_SHOT)
