"""Ensembles: built from the queue after their members, listed once as one model, scored on the
members' shared validation split, used by Evaluate, Draw, Submit and the command line like any
model, refusing what cannot be averaged, and unchanged when a member is deleted."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
from app_support import app

from core import (
    cli,
    data,
    ensembles,
    eval_rows,
    jobs,
    kaggle_csv,
    manage,
    prediction,
    registry,
    runs,
    status,
    submission,
)
from core.training import TrainConfig

pytestmark = pytest.mark.slow  # three real (tiny) trainings and an ensemble, in job processes

SEEDS = [0, 1, 2]
FOLDERS = (("DRS_MODELS_DIR", "models"), ("DRS_DATA_DIR", "data"), ("DRS_CACHE_DIR", "cache"))


@pytest.fixture(scope="module")
def built(tmp_path_factory, sample_train):
    """An ensemble of three 2-epoch MLPs queued in one action, as the Train page does."""
    base = tmp_path_factory.mktemp("ensemble")
    dirs = {k: base / k for k in ("models", "data", "cache")}
    for folder in dirs.values():
        folder.mkdir()
    with pytest.MonkeyPatch.context() as mp:
        for key, folder in FOLDERS:
            mp.setenv(key, str(dirs[folder]))
        path = kaggle_csv.write_kaggle_csv(dirs["data"] / "train.csv", sample_train.images[:3000],
                                           sample_train.labels[:3000])
        ds = data.load_csv(path, expect_labels=True, source_kind=data.SOURCE_KAGGLE)
        config = TrainConfig(arch="mlp", epochs=2, batch_size=64, name="trio")
        names = jobs.submit_ensemble(config, jobs.DataRef.of(ds, path), SEEDS, owner="alice", token="k")
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and runs.read_run("trio").status in status.ACTIVE:
            time.sleep(0.5)
        yield {"names": names, "ds": ds, **dirs}


@pytest.fixture
def env(built, monkeypatch):
    for key, folder in FOLDERS:
        monkeypatch.setenv(key, str(built[folder]))
    return built


def test_one_action_queues_the_seeds_then_their_ensemble(env):
    assert env["names"] == ["trio-s0", "trio-s1", "trio-s2", "trio"]
    views = {v.name: v for v in runs.list_runs()}
    assert {n: views[n].status for n in env["names"]} == {n: status.DONE for n in env["names"]}
    started = [views[n].meta["started_at"] for n in env["names"]]
    assert started == sorted(started)  # one after another, the ensemble last
    splits = {json.dumps(views[n].meta["data"]["split"], sort_keys=True) for n in env["names"][:3]}
    assert len(splits) == 1  # the same validation digits for every member
    assert [views[n].meta["seed"] for n in env["names"][:3]] == SEEDS  # different initial weights


def test_the_ensemble_is_one_model_listed_once_with_its_members(env):
    listed = [m.name for m in registry.list_models()]
    assert listed.count("trio") == 1
    meta = registry.read_meta("trio")
    assert meta["kind"] == "ensemble" and meta["arch"] == "ensemble" and meta["combine"] == ensembles.COMBINE
    assert [m["name"] for m in meta["members"]] == ["trio-s0", "trio-s1", "trio-s2"]
    hashes = registry.load_train_hashes("trio")
    assert set(hashes.tolist()) == set(ensembles.union_hashes(env["names"][:3]).tolist())


def test_it_averages_its_members_and_scores_on_their_shared_split(env):
    ds = env["ds"]
    rows = eval_rows.unseen_rows(registry.read_meta("trio"), ds)
    members = [prediction.load(n) for n in env["names"][:3]]
    averaged = prediction.predict_proba(members, ds.images[rows.indices])
    mine = prediction.load("trio").predict_proba(ds.images[rows.indices])
    np.testing.assert_allclose(mine, averaged, atol=1e-5)
    accuracy = float(np.mean(mine.argmax(1) == ds.labels[rows.indices]))
    assert registry.read_meta("trio")["metrics"]["val_accuracy"] == pytest.approx(accuracy, abs=1e-6)
    solo = [float(np.mean(m.predict_proba(ds.images[rows.indices]).argmax(1) == ds.labels[rows.indices]))
            for m in members]
    assert accuracy >= min(solo)  # averaging three never does worse than the worst of them here


def test_the_command_line_and_the_pages_use_it_like_any_model(env, capsys, sample_test, sample_answers):
    import streamlit as st

    assert cli.main(["evaluate", "--data", str(env["data"] / "train.csv"), "--model", "trio"]) == 0
    assert json.loads(capsys.readouterr().out)["evaluated_on"] == "validation"
    pred = submission.predict([prediction.load("trio")], sample_test.images)
    assert submission.accuracy_score(pred.labels, sample_answers) > 0.85

    st.cache_data.clear()
    st.cache_resource.clear()
    evaluate = app("Evaluate", eval_model="trio").run()
    assert not evaluate.exception and any(m.label == "Accuracy" for m in evaluate.metric)
    draw = app("Draw").run()
    assert "trio" in draw.selectbox(key="draw_model").options
    draw.selectbox(key="draw_model").set_value("trio").run()
    draw.radio(key="draw_input").set_value("🖼️ Upload a picture").run()
    picture = (registry.paths.ROOT / "tests" / "corpus" / "images" / "0-canvas.png").read_bytes()
    draw.file_uploader(key="draw_upload").upload("zero.png", picture, "image/png")
    draw.run()
    assert not draw.exception
    assert any('aria-label="predicted digit"' in m.value for m in draw.markdown)  # read by the ensemble
    assert any("an ensemble: fine-tuning works for single Keras models only" in i.value for i in draw.info)


def test_check_members_refuses_what_cannot_be_averaged(env, sample_train, save_forest):
    with pytest.raises(ValueError, match="at least two members"):
        ensembles.check_members(["trio-s0"])
    with pytest.raises(ValueError, match="must be different models"):
        ensembles.check_members(["trio-s0", "trio-s0"])
    save_forest("a-forest", sample_train.images[:200], sample_train.labels[:200])
    with pytest.raises(ValueError, match="random forest: ensembles average Keras models only"):
        ensembles.check_members(["trio-s0", "a-forest"])
    registry.delete_model("a-forest")


def test_deleting_a_member_says_the_ensemble_keeps_its_copy(env, sample_test):
    before = prediction.load("trio").predict_proba(sample_test.images[:20])
    said = manage.delete("trio-s2")
    assert said == ["the ensemble trio keeps its own copy of trio-s2: it is unchanged"]
    from core import serving

    assert serving.is_current(registry.model_dir("trio"))
    after = prediction.load("trio").predict_proba(sample_test.images[:20])
    np.testing.assert_allclose(after, before, atol=1e-6)
