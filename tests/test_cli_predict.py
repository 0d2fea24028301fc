"""`python -m core predict` as a user runs it: a subprocess with private models/data folders."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLE_TEST = ROOT / "data" / "sample" / "test.csv.gz"
CORPUS = ROOT / "tests" / "corpus"


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, tiny_models, sample_train, save_forest) -> dict[str, Path]:
    """models/ with the tiny models (`mlp-a`, Keras, the best; `forest`; conftest) and a forest
    trained on "MNIST"."""
    base = tmp_path_factory.mktemp("cli")
    folders = {k: base / k for k in ("models", "data", "cache", "out")}
    for folder in folders.values():
        folder.mkdir()
    shutil.copytree(tiny_models, folders["models"], dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_MODELS_DIR", str(folders["models"]))
        save_forest("mnist-model", sample_train.images[1500:2500], sample_train.labels[1500:2500],
                    source="mnist-download", val_accuracy=0.1)
    return folders


def run_cli(dirs: dict[str, Path], *args: str) -> subprocess.CompletedProcess:
    """`python -m core predict ...` as a user runs it: no TF_* variables set beforehand."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TF_")}
    env.update(DRS_MODELS_DIR=str(dirs["models"]), DRS_DATA_DIR=str(dirs["data"]),
               DRS_CACHE_DIR=str(dirs["cache"]))
    return subprocess.run([sys.executable, "-m", "core", "predict", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_cli_writes_a_valid_submission_and_sidecar(dirs, sample_answers):
    out = dirs["out"] / "submission.csv"
    proc = run_cli(dirs, "--test", str(SAMPLE_TEST), "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    # A Keras model was loaded, yet none of TensorFlow's start-up lines (oneDNN, absl) got through.
    assert proc.stderr == ""
    lines = out.read_text().splitlines()
    assert lines[0] == "ImageId,Label"  # exactly, nothing else on the header line
    assert len(lines) == 1 + 1000
    rows = np.array([[int(v) for v in line.split(",")] for line in lines[1:]])
    assert rows[:, 0].tolist() == list(range(1, 1001))
    assert set(rows[:, 1].tolist()) <= set(range(10))

    summary = json.loads(proc.stdout)
    accuracy = float((rows[:, 1] == sample_answers).mean())
    assert summary["rows"] == 1000 and summary["models"] == ["mlp-a"] and summary["out"] == str(out)
    assert summary["score"] == pytest.approx(accuracy) and summary["answers"] == "sample"
    assert accuracy > 0.8  # two mlp epochs on the sample: 0.935 measured
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["models"][0]["name"] == "mlp-a" and sidecar["settings"]["tta"] is False
    assert sidecar["file"]["rows"] == 1000



def test_predict_imports_neither_tensorflow_nor_pandas(dirs):
    """Their imports would be most of the command's start-up (TensorFlow seconds, pandas ~0.35 s)."""
    out = dirs["out"] / "imports.csv"
    launcher = ("import sys\nfrom core.cli import main\ncode = main(sys.argv[1:])\n"
                "print(sorted({m.split('.')[0] for m in sys.modules} & {'tensorflow', 'keras', 'pandas'}))\n")
    env = {**os.environ, "DRS_MODELS_DIR": str(dirs["models"]), "DRS_DATA_DIR": str(dirs["data"]),
           "DRS_CACHE_DIR": str(dirs["cache"] / "imports")}
    proc = subprocess.run([sys.executable, "-c", launcher, "predict", "--test", str(SAMPLE_TEST), "--out",
                           str(out)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines()[-1] == "[]"
    assert len(out.read_text().splitlines()) == 1 + 1000

def test_cli_ensemble_with_tta(dirs):
    out = dirs["out"] / "ensemble.csv"
    proc = run_cli(dirs, "--test", str(SAMPLE_TEST), "--model", "forest", "--model", "forest",
                   "--tta", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads(proc.stdout)
    assert summary["models"] == ["forest"] and summary["tta"] is True  # repeated name counted once
    assert len(out.read_text().splitlines()) == 1001


@pytest.mark.parametrize(("test_file", "fragment"), [
    (CORPUS / "test_bad_pixel.csv", "test_bad_pixel.csv"),
    (CORPUS / "train_valid.csv", "this is a training file"),
    (CORPUS / "binary_garbage.bin", "binary_garbage.bin"),
    (Path("/nonexistent/test.csv"), "file not found"),
])
def test_cli_bad_test_file_exits_2_with_one_line(dirs, test_file, fragment):
    out = dirs["out"] / "bad.csv"
    proc = run_cli(dirs, "--test", str(test_file), "--out", str(out))
    assert proc.returncode == 2
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and fragment in lines[0], proc.stderr
    assert not out.exists()


def test_cli_refuses_leakage_unless_allowed(dirs):
    out = dirs["out"] / "leaky.csv"
    proc = run_cli(dirs, "--test", str(SAMPLE_TEST), "--model", "mnist-model", "--out", str(out))
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "leakage" in lines[0] and "--allow-leakage" in lines[0]
    assert not out.exists()

    proc = run_cli(dirs, "--test", str(SAMPLE_TEST), "--model", "mnist-model", "--out", str(out),
                   "--allow-leakage")
    assert proc.returncode == 0, proc.stderr
    assert "full MNIST download" in json.loads(proc.stdout)["leakage"][0]
    sidecar = json.loads(out.with_suffix(".json").read_text())
    assert sidecar["leakage"]["allowed"] is True
    assert sidecar["leakage"]["findings"][0]["kind"] == "mnist-download"
