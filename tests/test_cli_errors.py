"""Bad input on the command line: one clear line on stderr, exit code 2, never a traceback.

Every bad file of `tests/corpus/` goes through `train --data`, `evaluate --data` and
`predict --test` in-process (`core.cli.main`, fast); one case per command also runs as a real
`python -m core` child process, to prove the exit code and the absence of a traceback end to end.
A small scikit-learn forest saved through the registry stands in for a model, so no case fails
for want of one and no TensorFlow is needed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from core import cli, data, jobs

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "tests" / "corpus"
GOOD_TRAIN = {"kaggle.zip", "train_bom.csv", "train_crlf.csv", "train_spaces_floats.csv", "train_valid.csv"}
GOOD_TEST = {"kaggle.zip", "test_valid.csv"}
MODEL = "forest"


def _corpus(exclude: set[str]) -> list[str]:
    return sorted(p.name for p in CORPUS.iterdir() if p.suffix != ".py" and p.name not in exclude)


BAD_TRAIN = _corpus(GOOD_TRAIN)
BAD_TEST = _corpus(GOOD_TEST)


@pytest.fixture(scope="module")
def dirs(tmp_path_factory, sample_train, save_forest) -> dict[str, Path]:
    """Private data/models/cache folders holding one app-saved scikit-learn model."""
    base = tmp_path_factory.mktemp("cli")
    out = {k: base / k for k in ("data", "models", "cache", "work")}
    for folder in out.values():
        folder.mkdir()
    out["key"] = base / "model-signing.key"  # never the install's own key (~/.config/...)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRS_MODELS_DIR", str(out["models"]))
        mp.setenv("DRS_KEY_FILE", str(out["key"]))
        save_forest(MODEL, sample_train.images[:400], sample_train.labels[:400], val_accuracy=0.8,
                    n_estimators=5)
    from PIL import Image

    Image.fromarray(np.asarray(sample_train.images[0])).save(out["work"] / "digit.png")
    (out["work"] / "text.png").write_text("this is not a picture\n")
    (out["work"] / "truncated.png").write_bytes((out["work"] / "digit.png").read_bytes()[:60])
    (out["work"] / "empty.png").write_bytes(b"")
    # 10,000 x 10,000 pixels of one grey: ~100 kB on disk, 100 megapixels once decoded.
    Image.new("L", (10_000, 10_000), 0).save(out["work"] / "huge.png")
    return out


@pytest.fixture
def env(dirs, monkeypatch) -> dict[str, Path]:
    for var, key in (("DRS_DATA_DIR", "data"), ("DRS_MODELS_DIR", "models"), ("DRS_CACHE_DIR", "cache"),
                     ("DRS_KEY_FILE", "key")):
        monkeypatch.setenv(var, str(dirs[key]))
    monkeypatch.chdir(dirs["work"])
    return dirs


def _snapshot(dirs: dict[str, Path]) -> set[tuple[str, int]]:
    """Every file outside the parse cache, with its size: a refused command must change none."""
    return {(str(p), p.stat().st_size) for key in ("data", "models", "work")
            for p in dirs[key].rglob("*") if p.is_file()}


def _main(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own refusals
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def _assert_one_line_error(code: int, err: str, *, mentions: str) -> str:
    assert code == 2, err
    assert "Traceback" not in err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and mentions in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def no_training(monkeypatch):
    """Fail the test if a refused command ever got as far as starting a training job."""

    def refuse(*args, **kwargs):
        raise AssertionError("a training run was recorded despite the bad input")

    monkeypatch.setattr(jobs, "enqueue", refuse)


# --------------------------------------------------------------------------- bad files


@pytest.mark.parametrize("name", BAD_TRAIN)
def test_train_refuses_bad_file(name, env, capsys, no_training):
    before = _snapshot(env)
    code, out, err = _main(["train", "--data", str(CORPUS / name), "--arch", "mlp", "--epochs", "1"], capsys)
    _assert_one_line_error(code, err, mentions=name)
    assert out == "" and _snapshot(env) == before


@pytest.mark.parametrize("name", BAD_TRAIN)
def test_evaluate_refuses_bad_file(name, env, capsys):
    before = _snapshot(env)
    code, out, err = _main(["evaluate", "--data", str(CORPUS / name), "--model", MODEL], capsys)
    _assert_one_line_error(code, err, mentions=name)
    assert out == "" and _snapshot(env) == before


@pytest.mark.parametrize("name", BAD_TEST)
def test_predict_refuses_bad_file(name, env, capsys):
    before = _snapshot(env)
    code, out, err = _main(["predict", "--test", str(CORPUS / name), "--model", MODEL,
                            "--out", "submission.csv"], capsys)
    _assert_one_line_error(code, err, mentions=name)
    assert out == "" and _snapshot(env) == before
    assert not (env["work"] / "submission.csv").exists()


@pytest.mark.parametrize("command", [["train", "--data"], ["evaluate", "--data"], ["predict", "--test"]])
@pytest.mark.parametrize("path", ["missing.csv", "nowhere/train.csv", "."])
def test_missing_file_or_folder_refused(command, path, env, capsys, no_training):
    code, out, err = _main([*command, path], capsys)
    _assert_one_line_error(code, err, mentions=Path(path).name or ".")
    assert out == ""


def test_good_files_are_accepted_as_the_control(env, capsys):
    """Without this, a CLI refusing everything would pass the tests above."""
    code, out, err = _main(["evaluate", "--data", str(CORPUS / "train_crlf.csv"), "--model", MODEL], capsys)
    assert code == 0, err
    metrics = json.loads(out)
    assert metrics["model"] == MODEL and metrics["n_total"] == 3 and 0.0 <= metrics["accuracy"] <= 1.0
    code, out, err = _main(["predict", "--test", str(CORPUS / "test_valid.csv"), "--model", MODEL,
                            "--out", "ok.csv"], capsys)
    assert code == 0, err
    assert (env["work"] / "ok.csv").read_text().splitlines()[0] == "ImageId,Label"
    assert len((env["work"] / "ok.csv").read_text().splitlines()) == 4


# --------------------------------------------------------------------------- images


@pytest.mark.parametrize("name", ["text.png", "truncated.png", "empty.png", "missing.png", "huge.png",
                                  str(CORPUS / "binary_garbage.bin"), str(CORPUS / "train_valid.csv")])
def test_predict_image_refuses_non_images(name, env, capsys):
    """Each file gets one JSON line (an `error` for a bad one) and each bad one a line on stderr;
    any bad file makes the exit code 2."""
    code, out, err = _main(["predict-image", name, "digit.png", "--model", MODEL], capsys)
    assert code == 2
    assert "Traceback" not in err
    records = [json.loads(line) for line in out.splitlines()]
    assert [r["file"] for r in records] == [name, "digit.png"]
    assert set(records[0]) == {"file", "error"} and Path(name).name in records[0]["error"]
    assert "\n" not in records[0]["error"]
    assert err.splitlines() == [f"error: {records[0]['error']}"]
    good = records[1]
    assert 0 <= good["label"] <= 9 and len(good["probs"]) == 10 and "error" not in good


# --------------------------------------------------------------------------- models and names


@pytest.mark.parametrize(
    "argv",
    [
        ["predict", "--test", str(CORPUS / "test_valid.csv"), "--model", "nope"],
        ["predict", "--test", str(CORPUS / "test_valid.csv"), "--model", MODEL, "--model", "nope"],
        ["evaluate", "--data", str(CORPUS / "train_valid.csv"), "--model", "nope"],
        ["predict-image", "digit.png", "--model", "nope"],
    ],
    ids=["predict", "predict-ensemble", "evaluate", "predict-image"],
)
def test_unknown_model_refused(argv, env, capsys):
    before = _snapshot(env)
    code, out, err = _main(argv, capsys)
    _assert_one_line_error(code, err, mentions="no saved model called 'nope'")
    assert out == "" and _snapshot(env) == before


@pytest.mark.parametrize("model", ["../forest", "/etc/passwd", "a/b", "x" * 300])
def test_model_name_that_is_a_path_refused(model, env, capsys):
    code, out, err = _main(["evaluate", "--data", str(CORPUS / "train_valid.csv"), "--model", model], capsys)
    _assert_one_line_error(code, err, mentions="invalid model name")


@pytest.mark.parametrize("name", ["../x", "../../etc", "/tmp/x", "a b", "x" * 65, ".hidden", "a\\b", "ünï"])
def test_train_refuses_bad_name(name, env, capsys, no_training):
    before = _snapshot(env)
    code, out, err = _main(["train", "--data", str(CORPUS / "train_valid.csv"), "--arch", "mlp",
                            "--name", name], capsys)
    _assert_one_line_error(code, err, mentions="invalid model name")
    assert out == "" and _snapshot(env) == before


def test_no_model_at_all(env, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DRS_MODELS_DIR", str(tmp_path))
    code, out, err = _main(["predict-image", "digit.png"], capsys)
    _assert_one_line_error(code, err, mentions="no saved model yet")


@pytest.mark.parametrize("argv", [["train", "--arch", "nope"], ["train", "--epochs", "ten"],
                                  ["predict"], ["frobnicate"]])
def test_argparse_refusals(argv, env, capsys, no_training):
    code, out, err = _main(argv, capsys)
    assert code == 2 and "Traceback" not in err
    assert err.strip().splitlines()[-1].startswith("python -m core")  # usage, then one "error:" line


@pytest.mark.parametrize("argv", [["--epochs", "0"], ["--epochs", "-3"], ["--batch-size", "0"],
                                  ["--val-fraction", "2"], ["--lr", "-1"]], ids=" ".join)
def test_train_refuses_bad_numbers_before_starting(argv, env, capsys, no_training):
    code, out, err = _main(["train", "--data", str(CORPUS / "train_valid.csv"), "--arch", "mlp", *argv],
                           capsys)
    assert code == 2 and "Traceback" not in err


# --------------------------------------------------------------------------- real processes


SUBPROCESS_CASES = {
    "train-bad-data": (["train", "--data", str(CORPUS / "label_10.csv"), "--arch", "mlp"], "label_10.csv"),
    "predict-bad-test": (["predict", "--test", str(CORPUS / "corrupt.csv.gz"), "--model", MODEL],
                         "corrupt.csv.gz"),
    "evaluate-bad-data": (["evaluate", "--data", str(CORPUS / "semicolons.csv"), "--model", MODEL],
                          "semicolons.csv"),
    "unknown-model": (["evaluate", "--data", str(CORPUS / "train_valid.csv"), "--model", "nope"], "nope"),
    "bad-name": (["train", "--data", str(CORPUS / "train_valid.csv"), "--name", "../../etc"],
                 "invalid model name"),
    "predict-image-not-image": (["predict-image", "text.png", "--model", MODEL],
                                "text.png: not an image Pillow can read"),
    "predict-image-huge": (["predict-image", "huge.png", "--model", MODEL],
                           "huge.png: the image is too large (over 80 megapixels; at most 40)"),
}


@pytest.fixture(scope="module")
def subprocess_results(dirs) -> dict[str, subprocess.CompletedProcess]:
    """All the child processes at once (each spends most of its time starting Python)."""
    env = dict(os.environ, DRS_DATA_DIR=str(dirs["data"]), DRS_MODELS_DIR=str(dirs["models"]),
               DRS_KEY_FILE=str(dirs["key"]),
               DRS_CACHE_DIR=str(dirs["cache"]), PYTHONPATH=str(ROOT))
    procs = {
        case: subprocess.Popen([sys.executable, "-m", "core", *argv], cwd=dirs["work"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for case, (argv, _) in SUBPROCESS_CASES.items()
    }
    results = {}
    for case, proc in procs.items():
        out, err = proc.communicate(timeout=180)
        results[case] = subprocess.CompletedProcess(proc.args, proc.returncode, out, err)
    return results


@pytest.mark.parametrize("case", list(SUBPROCESS_CASES))
def test_real_process_exit_code_and_message(case, subprocess_results, dirs):
    proc = subprocess_results[case]
    mentions = SUBPROCESS_CASES[case][1]
    assert "Traceback" not in proc.stderr and "Traceback" not in proc.stdout
    assert proc.returncode == 2, proc.stderr
    _assert_one_line_error(proc.returncode, proc.stderr, mentions=mentions)
    if case.startswith("predict-image"):  # the same error is also the file's JSON line
        record = json.loads(proc.stdout)
        assert record == {"file": SUBPROCESS_CASES[case][0][1], "error": proc.stderr.strip()[len("error: "):]}
    else:
        assert proc.stdout == ""
    assert [p.name for p in dirs["models"].iterdir()] == [MODEL]


def test_dataset_loader_is_what_refuses(env):
    """The CLI's messages are core.data's own: the same text a page shows for the same file."""
    with pytest.raises(ValueError) as info:
        data.load_csv(CORPUS / "label_10.csv", expect_labels=True)
    assert "label_10.csv: row 2, column label: 10 is out of range" in str(info.value)
