"""A crash mid-training loses nothing saved: kill -9 the trainer, then read what it left behind.

The CLI trains a small MLP in a child process with private data/models/cache folders; once two
epochs are on disk the child is SIGKILLed (no clean-up code runs). The last checkpoint must then
be listed (as "interrupted"), loadable and exactly the model its meta.json describes; leftovers of interrupted
writes (temporary files, a torn meta.json) must never pass for a model.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from core import data, prediction, registry, runs, serving, status

pytestmark = pytest.mark.slow  # a Keras run is trained, then killed, in a child process

ROOT = Path(__file__).resolve().parents[1]
NAME = "crashme"


def _history_rows(path: Path) -> list[dict]:
    try:
        with open(path, newline="") as f:
            return list(csv.DictReader(f))
    except OSError:
        return []


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> Path:
    """Models folder left by a `python -m core train` that was SIGKILLed after >= 2 epochs."""
    base = tmp_path_factory.mktemp("crash")
    models = base / "models"
    for sub in ("models", "data", "cache"):
        (base / sub).mkdir()
    env = dict(os.environ, DRS_MODELS_DIR=str(models), DRS_DATA_DIR=str(base / "data"),
               DRS_CACHE_DIR=str(base / "cache"), PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2")
    log = open(base / "train.log", "w")  # noqa: SIM115 - closed below
    proc = subprocess.Popen(
        [sys.executable, "-m", "core", "train", "--arch", "mlp", "--epochs", "30", "--name", NAME,
         "--quiet"],
        cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    folder = models / NAME
    deadline = time.time() + 180
    try:
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"training ended by itself (exit {proc.returncode}) before it could be killed; "
                            f"log: {(base / 'train.log').read_text()[-2000:]}")
            if (folder / registry.KERAS_FILE).is_file() and len(_history_rows(folder / "history.csv")) >= 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail("no checkpoint with two epochs of history within 180 s")
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)
        log.close()
    assert proc.returncode == -signal.SIGKILL
    (base / "pid").write_text(str(proc.pid))
    return models


def killed_run_pid(models: Path) -> int:
    return int((models.parent / "pid").read_text())


@pytest.fixture
def models_env(killed_run, monkeypatch):
    monkeypatch.setenv("DRS_MODELS_DIR", str(killed_run))
    return killed_run


def test_killed_run_is_listed_with_its_checkpoint(models_env):
    infos = {i.name: i for i in registry.list_models()}
    assert list(infos) == [NAME]
    info = infos[NAME]
    # meta.json still says "running" (nothing was left to change it), but its process is dead.
    assert info.meta["status"] == "running"
    assert info.meta[status.WRITER_KEY]["pid"] == killed_run_pid(models_env)
    assert info.status == "interrupted"
    assert prediction.load(NAME).predict_proba(np.zeros((2, 28, 28), np.uint8)).shape == (2, 10)
    history = registry.read_history(NAME)
    meta = info.meta
    assert len(history) >= 2 and meta["epochs_done"] >= 1
    # meta.json is written before history.csv at each epoch end, so history may be one row behind.
    assert meta["epochs_done"] in (len(history), len(history) + 1)
    best = meta["best_epoch"]
    assert 1 <= best <= meta["epochs_done"]
    best_row = history[best - 1]
    assert info.val_accuracy == pytest.approx(best_row["val_accuracy"], abs=1e-9)
    assert best_row["val_accuracy"] == pytest.approx(
        max(h["val_accuracy"] for h in history[: meta["epochs_done"]]), abs=1e-9
    )


def test_killed_run_checkpoint_is_the_model_its_meta_describes(models_env, sample_train):
    """The loaded weights score on the recorded validation split what meta.json says they scored."""
    model = prediction.load(NAME)
    assert prediction.load(None).name == NAME  # the best (only) model is the default
    meta = model.meta
    split = meta["data"]["split"]
    assert meta["data"]["fingerprint"] == sample_train.fingerprint  # trained on the sample
    _, val_idx = data.split_indices(sample_train.labels, val_fraction=split["val_fraction"],
                                    seed=split["seed"])
    assert split == data.describe_split(sample_train.labels, val_idx, val_fraction=split["val_fraction"],
                                        seed=split["seed"])
    probs = model.predict_proba(sample_train.images[val_idx])
    assert probs.shape == (len(val_idx), 10)
    accuracy = float((probs.argmax(1) == sample_train.labels[val_idx]).mean())
    assert accuracy > 0.8  # a real, trained MLP (10 % would be chance)
    assert accuracy == pytest.approx(meta["metrics"]["val_accuracy"], abs=1.5 / len(val_idx))


def test_killed_run_leaves_no_visible_half_files(models_env):
    """Temporary files of an interrupted write may remain, but only under hidden `.…tmp` names."""
    folder = models_env / NAME
    visible = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
    assert set(visible) <= {registry.KERAS_FILE, registry.META_FILE, registry.HISTORY_FILE,
                            registry.HASHES_FILE, runs.PROGRESS_FILE,
                            serving.TFLITE_FILE, serving.EXPORT_FILE}  # the copy made on first use
    assert {registry.KERAS_FILE, registry.META_FILE, registry.HISTORY_FILE} <= set(visible)
    json.loads((folder / registry.META_FILE).read_text())  # complete JSON, not a torn write
    for hidden in folder.iterdir():
        if hidden.name.startswith("."):
            assert ".tmp" in hidden.name, hidden.name


def test_temporary_and_torn_files_are_never_models(models_env, tmp_dirs):
    """Folders holding only what an interrupted save leaves are ignored by list/load."""
    real = models_env / NAME
    models = tmp_dirs.models
    shutil.copytree(real, models / NAME)
    # Killed during the very first save: only the temporary Keras file and no meta yet.
    first = models / "first-save"
    first.mkdir()
    shutil.copy(real / registry.KERAS_FILE, first / f".{registry.KERAS_FILE}.tmp.keras")
    # Temporary model file beside a complete meta.json.
    tmp_only = models / "tmp-only"
    tmp_only.mkdir()
    shutil.copy(real / registry.KERAS_FILE, tmp_only / f".{registry.KERAS_FILE}.tmp.keras")
    shutil.copy(real / registry.META_FILE, tmp_only / registry.META_FILE)
    (tmp_only / f".{registry.META_FILE}.abc.tmp").write_text("{")
    # A model file with a torn (half-written) meta.json.
    torn = models / "torn"
    torn.mkdir()
    shutil.copy(real / registry.KERAS_FILE, torn / registry.KERAS_FILE)
    (torn / registry.META_FILE).write_text(real.joinpath(registry.META_FILE).read_text()[:40])
    # A hidden temporary folder and a stray temporary file at the top level.
    shutil.copytree(real, models / ".crashme.tmp")
    (models / ".model.keras.tmp.keras").write_bytes(b"partial")

    assert [i.name for i in registry.list_models()] == [NAME]
    assert registry.best_model_name() == NAME
    for name in ("first-save", "tmp-only"):
        with pytest.raises(ValueError):
            prediction.load(name)
    with pytest.raises(ValueError):
        prediction.load("torn")
    assert prediction.load(None).name == NAME


def test_pages_offer_the_killed_run_as_an_interrupted_but_usable_model(models_env, tmp_dirs):
    """Home lists it as interrupted; Evaluate and Submit name it so in their pickers and use it."""
    import streamlit as st
    from app_support import app

    shutil.copytree(models_env / NAME, tmp_dirs.models / NAME)
    st.cache_data.clear()
    st.cache_resource.clear()

    home = app("Home").run()
    assert not home.exception
    assert home.dataframe[0].value["status"].tolist() == ["⚠️ interrupted"]

    evaluate = app("Evaluate").run()
    assert not evaluate.exception and not evaluate.error
    picker = evaluate.selectbox(key="eval_model")
    assert picker.value == NAME and len(picker.options) == 1
    label = picker.options[0]  # the one label of a saved model, on Evaluate and Submit alike
    assert label.startswith(f"{NAME} (mlp, validation accuracy ")
    assert label.endswith(", sample data, interrupted)")
    assert any(m.label == "Accuracy" for m in evaluate.metric)  # it was evaluated

    submit = app("Submit").run()
    assert not submit.exception
    chosen = submit.multiselect(key="submit_models")
    assert chosen.value == [NAME] and chosen.options == [label]
    submit.button(key="submit_predict").click().run()
    assert not submit.exception and not submit.error
    assert any(s.value.startswith("Valid submission") for s in submit.success)
