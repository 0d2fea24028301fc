"""The Explore page, run headless with AppTest: on the committed sample and on planted data."""

from __future__ import annotations

import base64
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from app_support import app, chart_keys, chart_spec, figure_array, page_file
from PIL import Image
from streamlit.testing.v1 import AppTest

from core import data, kaggle_csv
from studio import guards

ROOT = Path(__file__).resolve().parent.parent
PAGE = page_file("Explore")
SMALL_TSNE = 500  # The smallest size on the slider, to keep the tests quick.


@pytest.fixture(autouse=True)
def _isolated(tmp_dirs):
    """Empty temporary data/models/cache folders (conftest): the page then uses the committed sample."""
    return tmp_dirs


def _run(**state) -> AppTest:
    at = app("Explore", explore_tsne_n=SMALL_TSNE, **state).run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _n_points(fig: dict) -> int:
    return sum(len(figure_array(t["x"])) for t in fig["data"])


def _png_shape(fig: dict) -> tuple[int, int]:
    payload = fig["data"][0]["source"].split(",", 1)[1]
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(payload)))).shape[:2]


def test_page_on_the_sample_shows_its_figures_and_checks():
    at = _run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Training digits"] == "9,000"
    assert metrics["Test digits"] == "1,000"
    assert metrics["Classes"] == "10"
    assert at.caption[0].value == (
        "Training set: train.csv.gz (sample): 9,000 digits, 10 classes · "
        "Test set: test.csv.gz (sample): 1,000 digits, unlabelled"
    )
    assert at.title[0].value == "🔍 Explore the data"
    assert [t.label for t in at.tabs] == [
        "Classes",
        "Samples",
        "Mean & spread",
        "Pixels",
        "Train vs test",
        "2-D map",
        "Quality",
    ]

    balance = chart_spec(at, "explore_balance")
    counts = [901, 1014, 892, 929, 882, 777, 912, 963, 850, 880]
    assert figure_array(balance["data"][0]["y"]).tolist() == counts

    samples = chart_spec(at, "explore_samples")
    assert _png_shape(samples) == (10 * 31 - 3, 10 * 31 - 3)  # 10 digits per class by default.

    # Train vs test: the stat table and both sets on each comparison chart.
    summary = at.dataframe[0].value
    assert summary["set"].tolist() == ["train", "test"]
    assert summary["digits"].tolist() == [9000, 1000]
    assert summary["duplicate images"].tolist() == [0, 0]
    assert [t["name"] for t in chart_spec(at, "explore_tt_ink")["data"]] == ["train", "test"]

    # 2-D maps: PCA on all 9,000 digits, t-SNE on the chosen 500, ten digit-coloured traces each.
    pca, tsne = chart_spec(at, "explore_pca_map"), chart_spec(at, "explore_tsne_map")
    assert _n_points(pca) == 9000
    assert _n_points(tsne) == SMALL_TSNE
    first_tsne = tsne["data"][0]
    assert (figure_array(first_tsne["customdata"]).reshape(-1, 3)[:, 1] == 0).all()  # The "0" trace: all 0s.
    assert [t["name"] for t in tsne["data"]] == [str(d) for d in range(10)]
    assert pca["layout"]["title"]["text"] == "PCA of 9,000 digits"

    # Quality: nine checks, nothing found on the clean sample.
    quality = at.dataframe[1].value
    assert len(quality) == 9
    assert quality["found"].tolist() == [0] * 9
    assert set(quality["status"]) == {"✅ ok"}
    skew = quality[quality["check"] == "Label distribution skew"]["detail"].item()
    assert skew == "fewest: 5 (777), most: 1 (1,014), ratio 1.31x"
    assert "loader refuses" in quality[quality["check"] == "Pixel values outside 0..255"]["detail"].iloc[0]
    assert at.success[0].value.startswith("No problems found")
    assert not any(k.startswith("explore_hits_") for k in chart_keys(at))


def test_reshuffle_and_digits_per_class_change_the_sample_grid():
    at = _run()
    before = chart_spec(at, "explore_samples")["data"][0]["source"]
    at.button(key="explore_reshuffle").click().run()
    assert any(c.value.startswith("Random pick #1 ") for c in at.caption)
    assert chart_spec(at, "explore_samples")["data"][0]["source"] != before
    at.number_input(key="explore_per_class").set_value(5).run()
    assert not at.exception
    assert _png_shape(chart_spec(at, "explore_samples")) == (10 * 31 - 3, 5 * 31 - 3)


def _write_planted(folder: Path, sample: data.Dataset, sample_test: data.Dataset) -> np.ndarray:
    """30 real digits (3 per class) with problems planted; 10 test digits, one copied from train."""
    idx = np.concatenate([np.flatnonzero(sample.labels == d)[:3] for d in range(10)])
    images, labels = sample.images[idx].copy(), sample.labels[idx].copy()  # labels 0,0,0,1,1,1,...
    images[4] = images[1]  # The same image labelled 0 (row 2) and 1 (row 5).
    images[7] = 0  # A blank "2" at row 8.
    test = sample_test.images[:10].copy()
    test[1] = images[10]  # Test row 2 is training row 11.
    kaggle_csv.write_kaggle_csv(folder / "train.csv", images, labels)
    kaggle_csv.write_kaggle_csv(folder / "test.csv", test)
    return images


def test_page_reports_every_planted_problem_with_example_images(tmp_dirs, sample_train, sample_test,
                                                                planted_problems_found):
    images = _write_planted(tmp_dirs.data, sample_train, sample_test)
    at = _run()
    assert {m.label: m.value for m in at.metric}["Training digits"] == "30"
    assert at.caption[0].value.startswith("Training set: train.csv (kaggle): 30 digits, 10 classes")
    quality = at.dataframe[1].value
    found = {(r.check, r.set): r.found for r in quality.itertuples()}
    assert found == planted_problems_found
    assert quality["status"].tolist().count("⚠️ look") == 4
    assert not at.success
    headings = [m.value for m in at.markdown if m.value.startswith("**")]
    assert headings == [
        "**Exact duplicate images** (train): 1 extra copy in 1 group",
        "**Duplicates with different labels** (train): "
        "the same image carries two labels: one of them is wrong",
        "**Shared between train and test** (train+test): 1 test image also in train: "
        "scores on them are inflated",
        "**Blank or near-blank images** (train): fewer than 15 pixels brighter than 64",
    ]
    shared = chart_spec(at, "explore_hits_Shared between train and test_train+test")
    assert [a["text"] for a in shared["layout"]["annotations"]] == ["train #11", "test #2"]
    blank = chart_spec(at, "explore_hits_Blank or near-blank images_train")
    assert [a["text"] for a in blank["layout"]["annotations"]] == ["#8 (2) ink 0"]
    assert images[7].max() == 0
    # The small set still gets both maps (t-SNE on all 30, since 30 < the chosen size).
    assert _n_points(chart_spec(at, "explore_tsne_map")) == 30


def test_page_without_a_test_set_says_so_and_still_checks_train(tmp_dirs, sample_train):
    kaggle_csv.write_kaggle_csv(
        tmp_dirs.data / "train.csv", sample_train.images[:200], sample_train.labels[:200]
    )
    at = _run()
    assert {m.label: m.value for m in at.metric}["Test digits"] == "none"
    assert any("no test set" in i.value for i in at.info)
    assert {r.set for r in at.dataframe[0].value.itertuples()} == {"train"}  # Only the quality table.


def test_page_shows_a_clear_error_for_a_bad_training_file(tmp_dirs):
    (tmp_dirs.data / "train.csv").write_text("label,pixel0\n1,2\n")
    at = _run()
    assert len(at.error) == 1
    assert at.error[0].value.startswith(guards.DATA_ERROR.format("train.csv: header has 2 columns"))
    assert not at.tabs


def test_page_does_not_import_tensorflow(tmp_dirs, sample_train):
    """In a fresh interpreter, so imports made by other tests cannot hide or fake the result.

    On 300 sample digits (every tab still runs) to keep the fresh start quick.
    """
    kaggle_csv.write_kaggle_csv(
        tmp_dirs.data / "train.csv", sample_train.images[:300], sample_train.labels[:300]
    )
    code = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        f"at = AppTest.from_file({str(PAGE)!r}, default_timeout=90)\n"
        f"at.session_state['explore_tsne_n'] = {SMALL_TSNE}\n"
        "at.run()\n"
        "assert not at.exception, [e.message for e in at.exception]\n"
        "assert at.metric[0].value == '300', at.metric[0].value\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "[]"
