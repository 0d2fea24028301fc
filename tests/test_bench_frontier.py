"""The accuracy-vs-time benchmark: what a recipe is called, what its time includes, which runs are
the same run, and which recipes are on the frontier."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import bench_frontier  # noqa: E402
from bench_frontier import Scored  # noqa: E402


def _run(arch: str, seed: int, seconds: float, **params) -> dict:
    return {"kind": "keras", "arch": arch, "seed": seed, "training_time_s": seconds,
            "params": {"epochs": 20, "val_fraction": 0.1, **params}}


METAS = {
    "a-s0": _run("dr-sep-elastic", 0, 500.0),
    "a-s1": _run("dr-sep-elastic", 1, 520.0),
    "copy-of-a-s0": _run("dr-sep-elastic", 0, 500.0),
    "v-s0": _run("dr-sep-elastic", 0, 540.0, val_fraction=0.02),
    "ls-s0": _run("dr-sep-elastic", 0, 500.0, label_smoothing=0.1),
    "ema-s0": _run("dr-sep-elastic", 0, 510.0, ema=0.999),
    "ens": {"kind": "ensemble", "arch": "ensemble", "seed": 0, "job": {"members": ["a-s0", "a-s1"]}},
    "stu": _run("dr-sep-elastic", 0, 900.0, epochs=8, teacher="ens", distill_copies=4),
}


def test_labels_and_times_count_what_a_model_cost():
    assert bench_frontier.recipe_of(METAS["a-s1"], METAS) == ("dr-sep-elastic, 20 epochs", 520.0)
    assert bench_frontier.recipe_of(METAS["v-s0"], METAS) == (
        "dr-sep-elastic, 20 epochs, validation 0.02", 540.0)
    assert bench_frontier.recipe_of(METAS["ls-s0"], METAS) == (
        "dr-sep-elastic, 20 epochs, label smoothing 0.1", 500.0)
    assert bench_frontier.recipe_of(METAS["ema-s0"], METAS) == (
        "dr-sep-elastic, 20 epochs, weight averaging 0.999", 510.0)
    assert bench_frontier.recipe_of(METAS["ens"], METAS) == (
        "ensemble of 2: dr-sep-elastic, 20 epochs", 1020.0)
    assert bench_frontier.recipe_of(METAS["stu"], METAS) == (
        "dr-sep-elastic, 8 epochs, student (4 copies) of [ensemble of 2: dr-sep-elastic, 20 epochs]", 1920.0)


def test_a_copy_is_the_same_run_and_another_seed_or_recipe_is_not():
    key = bench_frontier.run_key
    assert key(METAS["copy-of-a-s0"], METAS) == key(METAS["a-s0"], METAS)
    assert len({key(METAS[n], METAS) for n in ("a-s0", "a-s1", "v-s0", "ls-s0", "ens", "stu")}) == 6


def test_seeds_are_averaged_and_the_frontier_keeps_only_unbeaten_recipes():
    rows = bench_frontier.by_recipe([
        Scored("slow and worse", 2000.0, 0.9950, 90),
        Scored("fast", 500.0, 0.9956, 79),
        Scored("fast", 520.0, 0.9952, 86),
        Scored("slow and better", 1500.0, 0.9963, 66),
        Scored("as fast, worse", 510.0, 0.9940, 108),
    ])
    assert [(r.recipe, n) for r, n in rows] == [
        ("fast", 2), ("as fast, worse", 1), ("slow and better", 1), ("slow and worse", 1)]
    fast = rows[0][0]
    assert (fast.seconds, round(fast.accuracy, 6), fast.errors) == (510.0, 0.9954, 82)
    assert bench_frontier.frontier([r for r, _ in rows]) == {"fast", "slow and better"}
    # 0.09 points more in three times the time is within a 0.1-point margin: not worth it.
    assert bench_frontier.frontier([r for r, _ in rows], margin=0.001) == {"fast"}
    twins = [Scored("a", 500.0, 0.9956, 79), Scored("b", 500.0, 0.9956, 79)]
    assert bench_frontier.frontier(twins) == {"a", "b"}  # a tie beats neither


def test_a_folder_scores_each_run_on_the_file_once_and_skips_the_rest(tmp_path, monkeypatch):
    import json

    train = "/data/train-42k.csv.gz"
    folder_metas = {
        "default-cnn": {**_run("dr-sep", 0, 60.0, teacher="not-in-this-folder"), "status": "done",
                        "data": {"path": "/repo/data/sample/train.csv.gz"}},
        "unfinished": {**_run("dr-sep-elastic", 5, 10.0), "status": "stopped", "data": {"path": train}},
        "a-s0": {**METAS["a-s0"], "status": "done", "data": {"path": train}},
        "copy-of-a-s0": {**METAS["copy-of-a-s0"], "status": "done", "data": {"path": train}},
    }
    for name, meta in folder_metas.items():
        (tmp_path / "models" / name).mkdir(parents=True)
        (tmp_path / "models" / name / "meta.json").write_text(json.dumps(meta))
    scored_names = []
    monkeypatch.setattr(bench_frontier.benchkit, "private_env", lambda base, models: {})
    monkeypatch.setattr(bench_frontier, "evaluate", lambda name, *args: scored_names.append(name) or {
        "accuracy": 0.9956, "errors": 79})
    rows = bench_frontier.score_folder(tmp_path, Path(train), Path("/data/holdout.csv.gz"), set())
    assert scored_names == ["a-s0"]  # sorted by name: the copy comes after and is the same run
    assert rows == [Scored("dr-sep-elastic, 20 epochs", 500.0, 0.9956, 79)]
