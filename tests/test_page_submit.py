"""The Submit page through Streamlit's AppTest: predict the sample, the score shown, the leakage
guard, ensembles and the leaderboard, with a private copy of the tiny models (conftest)."""

from __future__ import annotations

import numpy as np
import pytest
import streamlit as st
from app_support import app
from streamlit.testing.v1 import AppTest

from core import prediction, submission, submission_records
from studio import guards


@pytest.fixture
def env(tiny_models_env):
    """A private copy of the tiny models (`mlp-a`, Keras, the best; `forest`, 10 trees; conftest)."""
    st.cache_data.clear()  # caches outlive one AppTest: start each test from nothing
    st.cache_resource.clear()
    return tiny_models_env


def _app() -> AppTest:
    return app("Submit").run()


def _metric(at: AppTest, prefix: str) -> str:
    found = [m.value for m in at.metric if m.label.startswith(prefix)]
    assert found, [m.label for m in at.metric]
    return found[0]


def test_without_models_the_page_says_what_to_do(tmp_dirs):
    st.cache_resource.clear()
    at = _app()
    assert not at.exception
    assert [i.value for i in at.info] == [guards.NO_MODEL]
    assert not at.button


def test_a_bad_test_file_is_one_error_line_and_the_page_stops(tmp_dirs):
    (tmp_dirs.data / "train.csv").write_text("label,pixel0\n1,2\n")  # never read by this page
    (tmp_dirs.data / "test.csv").write_text("pixel0,pixel1\n1,2\n")
    at = _app()
    assert not at.exception and not at.button and not at.info
    assert len(at.error) == 1 and at.error[0].value.startswith(guards.DATA_ERROR.format("test.csv: "))


def test_predict_sample_shows_the_score_and_a_valid_file(env, sample_test, sample_answers):
    at = _app()
    assert not at.exception
    assert at.multiselect(key="submit_models").value == ["mlp-a"]  # the best saved model
    assert not at.metric  # nothing predicted before the click
    at.button(key="submit_predict").click().run()
    assert not at.exception and not at.error

    model = prediction.load("mlp-a")
    expected = submission.accuracy_score(model.predict_proba(sample_test.images).argmax(1), sample_answers)
    assert _metric(at, "Score (accuracy vs sample answers)") == f"{expected:.5f}"
    assert _metric(at, "Rows") == "1,000"
    assert any(s.value.startswith("Valid submission") for s in at.success)
    download = at.get("download_button")
    assert len(download) == 1 and download[0].proto.label == "Download submission.csv"

    written = sorted((env.data / "submissions").glob("submission-*.csv"))
    assert len(written) == 1
    body = written[0].read_text().splitlines()
    assert body[0] == "ImageId,Label" and len(body) == 1001
    labels = np.array([int(line.split(",")[1]) for line in body[1:]])
    assert submission.accuracy_score(labels, sample_answers) == pytest.approx(expected)

    assert len(at.dataframe) == 1
    board = at.dataframe[0].value
    assert board["score"].tolist() == [pytest.approx(expected)]
    assert board["models"].tolist() == ["mlp-a"]

    at.run()  # a rerun (e.g. after a download) shows the cached result without another click
    assert not at.exception
    assert _metric(at, "Score") == f"{expected:.5f}"
    assert len(submission_records.read_leaderboard()) == 1


def test_ensemble_and_tta_make_new_predictions(env, sample_test, sample_answers):
    at = _app()
    at.multiselect(key="submit_models").set_value(["mlp-a", "forest"]).run()
    at.toggle(key="submit_tta").set_value(True).run()
    at.button(key="submit_predict").click().run()
    assert not at.exception
    assert _metric(at, "Models") == "2"
    mlp, forest = prediction.load("mlp-a"), prediction.load("forest")
    pred = submission.predict([mlp, forest], sample_test.images, tta=True)
    assert _metric(at, "Score") == f"{submission.accuracy_score(pred.labels, sample_answers):.5f}"
    entry = submission_records.read_leaderboard()[-1]
    assert entry["models"] == ["mlp-a", "forest"] and entry["settings"]["tta"] is True


def test_leakage_needs_explicit_consent(env, sample_train, save_forest):
    save_forest("mnist-model", sample_train.images[:1000], sample_train.labels[:1000],
                 source="mnist-download", val_accuracy=0.999)
    at = _app()
    assert not at.exception
    assert at.multiselect(key="submit_models").value == ["mnist-model"]
    assert any("full MNIST download" in e.value for e in at.error)
    assert not at.button  # no way to predict without ticking the box
    at.checkbox(key="submit_allow_leakage").check().run()
    at.button(key="submit_predict").click().run()
    assert not at.exception
    assert any(s.value.startswith("Valid submission") for s in at.success)
    entry = submission_records.read_leaderboard()[-1]
    assert entry["models"] == ["mnist-model"] and entry["leakage"] is True

    at.multiselect(key="submit_models").set_value(["mlp-a"]).run()  # a clean model: no warning
    assert not at.exception and not at.error
