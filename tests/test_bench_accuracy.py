"""The accuracy benchmark's `--reuse`: an earlier run's model is scored again only when it is the
same recipe; another recipe under the same name is refused rather than reported as this one."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_accuracy  # noqa: E402


def _kept(models: Path, name: str, params: dict | None = None, **changes) -> Path:
    meta = {"status": "done", "data": {"path": "/data/train.csv.gz"}, "training_time_s": 1050.4,
            "params": {"arch": "dr-sep", "seed": 3, "epochs": 20, **(params or {})}}
    for key, value in changes.items():
        if key in meta["params"]:
            meta["params"][key] = value
        else:
            meta[key] = value
    (models / name).mkdir(parents=True)
    (models / name / "meta.json").write_text(json.dumps(meta))
    return models / name


def test_reuse_finds_the_same_recipe_and_nothing_else(tmp_path):
    train = Path("/data/train.csv.gz")
    assert bench_accuracy.kept_run(tmp_path, "acc-dr-sep-s3", train, "dr-sep", 3, 20) is None
    _kept(tmp_path, "acc-dr-sep-s3")
    meta = bench_accuracy.kept_run(tmp_path, "acc-dr-sep-s3", train, "dr-sep", 3, 20)
    assert meta["training_time_s"] == 1050.4
    # A forest has no epochs (None): its finished run with the same seed is the recipe.
    _kept(tmp_path, "acc-random-forest-s0", arch="random-forest", seed=0, epochs=None)
    assert bench_accuracy.kept_run(tmp_path, "acc-random-forest-s0", train, "random-forest", 0, None)


@pytest.mark.parametrize("changes, args", [
    ({"epochs": 30}, ("dr-sep", 3, 20)),
    ({"seed": 4}, ("dr-sep", 3, 20)),
    ({"status": "failed"}, ("dr-sep", 3, 20)),
    ({"data": {"path": "/data/other.csv"}}, ("dr-sep", 3, 20)),
], ids=["epochs", "seed", "unfinished", "other-file"])
def test_reuse_refuses_another_recipe_under_the_same_name(tmp_path, changes, args):
    folder = _kept(tmp_path, "acc-dr-sep-s3", **changes)
    refused = "holds another run.*remove it or choose another --keep folder"
    with pytest.raises(SystemExit, match=refused) as exc:
        bench_accuracy.kept_run(tmp_path, "acc-dr-sep-s3", Path("/data/train.csv.gz"), *args)
    assert str(folder) in str(exc.value)


def test_a_student_is_reused_only_with_the_same_teacher_and_copies(tmp_path):
    train = Path("/data/train.csv.gz")
    _kept(tmp_path, "acc-dr-sep-student-s3", params={"teacher": "ens-a", "distill_copies": 4})
    same = {"teacher": "ens-a", "distill_copies": 4}
    assert bench_accuracy.kept_run(tmp_path, "acc-dr-sep-student-s3", train, "dr-sep", 3, None, same)
    for other in ({"teacher": "ens-b"}, {"teacher": "ens-a", "distill_copies": 12}):
        with pytest.raises(SystemExit, match="holds another run"):
            bench_accuracy.kept_run(tmp_path, "acc-dr-sep-student-s3", train, "dr-sep", 3, None, other)


@pytest.mark.parametrize("key, kept, other", [("val_fraction", 0.02, 0.1), ("label_smoothing", 0.1, 0.0),
                                                 ("ema", 0.999, 0.99), ("checkpoint", "last", "best")])
def test_a_run_is_reused_only_with_the_same_recipe_settings(tmp_path, key, kept, other):
    train = Path("/data/train.csv.gz")
    _kept(tmp_path, "acc-dr-sep-s3", params={key: kept})
    assert bench_accuracy.kept_run(tmp_path, "acc-dr-sep-s3", train, "dr-sep", 3, 20, {key: kept})
    with pytest.raises(SystemExit, match="holds another run"):
        bench_accuracy.kept_run(tmp_path, "acc-dr-sep-s3", train, "dr-sep", 3, 20, {key: other})


def test_lines_name_the_file_they_scored_on():
    ev = {"accuracy": 0.9955, "accuracy_95": (0.9940, 0.9966), "n": 10_000, "errors": 45}
    words = bench_accuracy.line("dr-sep seed 0", ev, "").split()
    assert words[3:6] == ["holdout", "99.55%", "[99.40%-99.66%]"]
    other = bench_accuracy.scored_name(Path("/x/mnist-test-10k.csv.gz"))
    assert other == "mnist-test-10k"
    assert " mnist-test-10k 99.55% [99.40%-99.66%] on 10,000 (45 errors)" in bench_accuracy.line(
        "dr-sep seed 0", ev, "", on=other)
