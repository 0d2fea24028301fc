"""The Submit page through Streamlit's AppTest: predict the sample, the score shown, the leakage
guard, ensembles and the leaderboard. Models are trained into a temporary models folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core import data, registry, submission, training

PAGE = str(Path(__file__).resolve().parent.parent / "pages" / "5_📤_Submit.py")


@pytest.fixture(scope="module")
def trained(tmp_path_factory, sample_train) -> Path:
    """A models folder with a tiny Keras mlp (1 epoch on the sample) and a 10-tree forest."""
    folder = tmp_path_factory.mktemp("models")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_MODELS_DIR", str(folder))
        mp.setenv("DRS_DATA_DIR", str(tmp_path_factory.mktemp("data")))
        mp.setenv("DRS_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        config = training.TrainConfig(arch="mlp", epochs=1, seed=0, name="mlp-page")
        assert training.TrainingJob(config, sample_train).run() is not None
        _save_forest("forest", sample_train.images[:1500], sample_train.labels[:1500], val_accuracy=0.5)
    return folder


def _save_forest(name, images, labels, *, source="sample", val_accuracy=0.5):
    from sklearn.ensemble import RandomForestClassifier

    forest = RandomForestClassifier(n_estimators=10, random_state=0, n_jobs=1)
    forest.fit(images.reshape(len(images), -1) / 255.0, labels)
    registry.save_sklearn_model(name, forest)
    registry.write_meta(name, {"name": name, "arch": "random-forest", "kind": "sklearn",
                               "metrics": {"val_accuracy": val_accuracy},
                               "data": {"source": source, "fingerprint": "f"},
                               "created_at": registry.timestamp()})
    registry.save_train_hashes(name, data.row_hashes(images))


@pytest.fixture
def env(tmp_dirs, trained):
    shutil.copytree(trained, tmp_dirs.models, dirs_exist_ok=True)
    st.cache_data.clear()  # caches outlive one AppTest: start each test from nothing
    st.cache_resource.clear()
    return tmp_dirs


def _app() -> AppTest:
    return AppTest.from_file(PAGE, default_timeout=120).run()


def _metric(at: AppTest, prefix: str) -> str:
    found = [m.value for m in at.metric if m.label.startswith(prefix)]
    assert found, [m.label for m in at.metric]
    return found[0]


def test_without_models_the_page_says_what_to_do(tmp_dirs):
    st.cache_resource.clear()
    at = _app()
    assert not at.exception
    assert any("No saved model yet" in i.value for i in at.info)
    assert not at.button


def test_predict_sample_shows_the_score_and_a_valid_file(env, sample_test, sample_answers):
    at = _app()
    assert not at.exception
    assert at.multiselect(key="submit_models").value == ["mlp-page"]  # the best saved model
    assert not at.metric  # nothing predicted before the click
    at.button(key="submit_predict").click().run()
    assert not at.exception and not at.error

    model = registry.load_model("mlp-page")
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
    assert board["models"].tolist() == ["mlp-page"]

    at.run()  # a rerun (e.g. after a download) shows the cached result without another click
    assert not at.exception
    assert _metric(at, "Score") == f"{expected:.5f}"
    assert len(submission.read_leaderboard()) == 1


def test_ensemble_and_tta_make_new_predictions(env, sample_test, sample_answers):
    at = _app()
    at.multiselect(key="submit_models").set_value(["mlp-page", "forest"]).run()
    at.toggle(key="submit_tta").set_value(True).run()
    at.button(key="submit_predict").click().run()
    assert not at.exception
    assert _metric(at, "Models") == "2"
    mlp, forest = registry.load_model("mlp-page"), registry.load_model("forest")
    pred = submission.predict([mlp, forest], sample_test.images, tta=True)
    assert _metric(at, "Score") == f"{submission.accuracy_score(pred.labels, sample_answers):.5f}"
    entry = submission.read_leaderboard()[-1]
    assert entry["models"] == ["mlp-page", "forest"] and entry["settings"]["tta"] is True


def test_leakage_needs_explicit_consent(env, sample_train):
    _save_forest("mnist-model", sample_train.images[:1000], sample_train.labels[:1000],
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
    entry = submission.read_leaderboard()[-1]
    assert entry["models"] == ["mnist-model"] and entry["leakage"] is True

    at.multiselect(key="submit_models").set_value(["mlp-page"]).run()  # a clean model: no warning
    assert not at.exception and not at.error
