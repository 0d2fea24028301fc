"""`python -m core train` as a user runs it: a subprocess, private folders, JSON on stdout."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from core import kaggle_csv

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "corpus"


# What TensorFlow and Keras print on their own when nobody quiets them (TensorFlow 2.21).
TF_NOISE = ["oneDNN custom operations", "absl::InitializeLog", "rebuild TensorFlow", "cpu_feature_guard",
            "DeprecationWarning", "FutureWarning", "WARNING:tensorflow", "WARNING:absl"]


def _run(args: list[str], dirs, timeout: float = 180) -> subprocess.CompletedProcess:
    """`python -m core ...` as a user runs it: stderr a pipe, no TF_* variables set beforehand."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(DRS_MODELS_DIR=str(dirs.models), DRS_DATA_DIR=str(dirs.data), DRS_CACHE_DIR=str(dirs.cache))
    return subprocess.run([sys.executable, "-m", "core", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=timeout)


@pytest.fixture
def small_csv(tmp_path, sample_train) -> Path:
    """400 labelled sample digits as a Kaggle-style train.csv."""
    return kaggle_csv.write_kaggle_csv(tmp_path / "small_train.csv", sample_train.images[:400],
                                 sample_train.labels[:400])


@pytest.mark.slow  # trains a Keras model in a child process
def test_train_prints_a_final_json_line_and_saves_the_model(small_csv, tmp_dirs):
    proc = _run(["train", "--data", str(small_csv), "--arch", "mlp", "--epochs", "2", "--batch-size", "32",
                 "--val-fraction", "0.2", "--seed", "1", "--name", "cli-mlp"], tmp_dirs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    lines = proc.stdout.strip().splitlines()
    assert len(lines) == 1, proc.stdout  # stdout is the result only; progress goes to stderr
    result = json.loads(lines[-1])
    assert result["name"] == "cli-mlp" and result["status"] == "done" and result["epochs_run"] == 2
    assert 0.5 < result["val_accuracy"] <= 1.0 and result["val_loss"] > 0
    assert "training cli-mlp (mlp) on small_train.csv: 400 digits" in proc.stderr
    folder = tmp_dirs.models / "cli-mlp"
    assert {p.name for p in folder.iterdir()} >= {"model.keras", "meta.json", "history.csv"}
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["seed"] == 1 and meta["params"]["batch_size"] == 32 and meta["data"]["split"]["n_val"] == 80
    assert meta["metrics"]["val_accuracy"] == pytest.approx(result["val_accuracy"])

    listed = _run(["models"], tmp_dirs, timeout=60)
    assert listed.returncode == 0
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["name"], r["arch"], r["status"]) for r in rows] == [("cli-mlp", "mlp", "done")]


@pytest.mark.slow  # trains a Keras model in a child process
def test_without_a_terminal_progress_is_one_plain_line_per_epoch_and_no_tensorflow_noise(
    small_csv, tmp_dirs
):
    proc = _run(["train", "--data", str(small_csv), "--arch", "mlp", "--epochs", "3", "--batch-size", "32",
                 "--name", "piped"], tmp_dirs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "\r" not in proc.stderr and "[#" not in proc.stderr and "ETA" not in proc.stderr  # no bar
    assert not [n for n in TF_NOISE if n in proc.stderr], proc.stderr
    lines = proc.stderr.splitlines()
    assert lines[0] == "training piped (mlp) on small_train.csv: 400 digits"
    assert json.loads(proc.stdout)["epochs_run"] == 3
    assert len(lines) == 1 + 3, proc.stderr  # the start, then exactly one line per epoch
    for epoch, line in enumerate(lines[1:], start=1):
        assert re.fullmatch(rf"epoch {epoch}/3: loss \d\.\d{{4}}, accuracy \d\.\d{{4}}, "
                            rf"val_loss \d\.\d{{4}}, val_accuracy \d\.\d{{4}} \(\d+\.\d s\)", line), line
    last = registry_history(tmp_dirs, "piped")[-1]
    assert lines[-1].startswith(f"epoch 3/3: loss {last['loss']:.4f}, accuracy {last['accuracy']:.4f}")


@pytest.mark.slow  # trains a Keras model in a child process
def test_quiet_keras_training_prints_nothing_on_stderr(small_csv, tmp_dirs):
    proc = _run(["train", "--data", str(small_csv), "--arch", "mlp", "--epochs", "1", "--name", "hush",
                 "--quiet"], tmp_dirs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stderr == ""  # no progress, and none of TensorFlow's start-up lines
    assert json.loads(proc.stdout)["name"] == "hush"


def registry_history(dirs, name: str) -> list[dict]:
    with open(dirs.models / name / "history.csv", newline="") as f:
        return [{k: float(v) for k, v in row.items() if v} for row in csv.DictReader(f)]


def test_train_forest_quietly(small_csv, tmp_dirs):
    proc = _run(["train", "--data", str(small_csv), "--arch", "random-forest", "--n-estimators", "15",
                 "--name", "cli-forest", "--quiet"], tmp_dirs)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert json.loads(proc.stdout.splitlines()[-1])["val_accuracy"] > 0.5
    assert "[" not in proc.stderr and proc.stderr == ""  # --quiet: no progress bar, nothing at all
    assert (tmp_dirs.models / "cli-forest" / "model.joblib").is_file()


@pytest.mark.parametrize(
    ("data_file", "expected"),
    [
        ("missing.csv", "missing.csv"),
        ("corpus:binary_garbage.bin", "binary_garbage.bin"),
        ("corpus:label_10.csv", "label_10.csv"),
        ("corpus:test_valid.csv", "test_valid.csv"),  # no labels: cannot train on it
    ],
)
def test_bad_data_exits_2_with_one_line_and_no_traceback(data_file, expected, tmp_dirs, tmp_path):
    path = CORPUS / data_file.split(":", 1)[1] if data_file.startswith("corpus:") else tmp_path / data_file
    proc = _run(["train", "--data", str(path), "--arch", "random-forest", "--quiet"], tmp_dirs, timeout=60)
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    err = proc.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and expected in err[0], proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    assert list(tmp_dirs.models.iterdir()) == []


def test_unsafe_model_name_exits_2_and_writes_nothing(small_csv, tmp_dirs):
    proc = _run(["train", "--data", str(small_csv), "--arch", "random-forest", "--name", "../escape"],
                tmp_dirs, timeout=60)
    assert proc.returncode == 2 and "invalid model name" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_dirs.models.iterdir()) == [] and not (tmp_dirs.models.parent / "escape").exists()


def test_an_impossible_weight_averaging_momentum_exits_2_naming_it(small_csv, tmp_dirs):
    proc = _run(["train", "--data", str(small_csv), "--arch", "mlp", "--ema", "1.5"], tmp_dirs, timeout=60)
    assert proc.returncode == 2 and "ema must be between 0.5 and 0.99999, got 1.5" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and list(tmp_dirs.models.iterdir()) == []
