"""Accuracy against training time of every recipe tried: which one to pick for a time budget.

Reads the folders `bench_accuracy.py --keep DIR` left (each with its own models and signing key),
scores every model trained on the 42k file on the whole holdout (`python -m core evaluate`), and
prints one line per recipe: its seeds' mean holdout accuracy and errors, and its mean training
time by the runs' own clocks (a student's includes its teacher's; an ensemble's is the sum of its
members'). Recipes on the frontier are marked `*`: no other recipe is as fast and as accurate, up to
`--margin` points (a slower recipe must gain more than its seeds' spread to count). The recipe
issue asks for this curve when accuracy and time pull apart.

    python benchmarks/bench_frontier.py --keep DIR --keep DIR2 ...

Nothing is trained here and nothing is chosen on the holdout: the recipes are the ones the folders
hold, each scored as it is. Timings compare only between runs of the same code on the same machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402
from bench_accuracy import evaluate  # noqa: E402


@dataclass
class Scored:
    recipe: str
    seconds: float  # training time by the runs' own clocks (teacher and members included)
    accuracy: float
    errors: int


def recipe_of(meta: dict, metas: dict[str, dict]) -> tuple[str, float]:
    """(A recipe's label, the training seconds behind this model) from its `meta.json` and the
    folder's other metas (an ensemble's members, a student's teacher). Seeds share a label."""
    if meta.get("kind") == "ensemble":
        members = [recipe_of(metas[m], metas) for m in meta["job"]["members"]]
        labels = sorted({label for label, _ in members})
        return f"ensemble of {len(members)}: {' + '.join(labels)}", sum(seconds for _, seconds in members)
    params = meta.get("params") or {}
    label = f"{meta['arch']}, {params.get('epochs')} epochs"
    seconds = float(meta.get("training_time_s") or 0.0)
    if params.get("val_fraction", 0.1) != 0.1:
        label += f", validation {params['val_fraction']:g}"
    if params.get("label_smoothing"):
        label += f", label smoothing {params['label_smoothing']:g}"
    if params.get("ema"):
        label += f", weight averaging {params['ema']:g}"
    if params.get("teacher"):
        teacher_label, teacher_seconds = recipe_of(metas[params["teacher"]], metas)
        label += f", student ({params.get('distill_copies')} copies) of [{teacher_label}]"
        seconds += teacher_seconds
    return label, seconds


def run_key(meta: dict, metas: dict[str, dict]) -> tuple:
    """What makes two saved models the same run (a recipe and seed give the same model here, so a
    copy kept in another folder under another name is counted once): label and seed, or for an
    ensemble its members' keys."""
    label = recipe_of(meta, metas)[0]
    if meta.get("kind") == "ensemble":
        return label, tuple(sorted(run_key(metas[m], metas) for m in meta["job"]["members"]))
    return label, meta.get("seed")


def frontier(rows: list[Scored], margin: float = 0.0) -> set[str]:
    """Recipes no other recipe beats: one beats another when it is at most as slow and at most
    `margin` less accurate (a gain within the seeds' spread buys nothing), and better on one count."""

    def beats(o: Scored, r: Scored) -> bool:
        return (o.seconds <= r.seconds and o.accuracy >= r.accuracy - margin
                and (o.seconds < r.seconds or o.accuracy > r.accuracy))

    return {r.recipe for r in rows if not any(beats(o, r) for o in rows)}


def by_recipe(scored: list[Scored]) -> list[tuple[Scored, int]]:
    """Seeds of one recipe averaged: (mean row, how many seeds), fastest first."""
    groups: dict[str, list[Scored]] = {}
    for s in scored:
        groups.setdefault(s.recipe, []).append(s)
    rows = [(Scored(name, statistics.mean(g.seconds for g in runs), statistics.mean(g.accuracy for g in runs),
                    round(statistics.mean(g.errors for g in runs))), len(runs))
            for name, runs in groups.items()]
    return sorted(rows, key=lambda row: row[0].seconds)


def score_folder(folder: Path, train: Path, holdout: Path, seen: set[tuple]) -> list[Scored]:
    """Every model of `folder` trained on `train` and not `seen` yet, scored on `holdout` with that
    folder's key."""
    models_dir = folder / "models"
    metas = {p.parent.name: json.loads(p.read_text()) for p in sorted(models_dir.glob("*/meta.json"))}
    env = benchkit.private_env(folder, models=False)
    log = folder / "frontier.log"
    out = []
    for name, meta in metas.items():
        if meta.get("status") != "done" or (meta.get("data") or {}).get("path") != str(train):
            continue  # e.g. the shipped models, trained on the sample
        key = run_key(meta, metas)
        if key in seen:
            continue
        seen.add(key)
        label, seconds = recipe_of(meta, metas)
        ev = evaluate(name, holdout, env, log)
        print(f"  {folder.name}/{name}: {ev['accuracy']:.2%} ({ev['errors']} errors), {seconds:,.0f} s",
              flush=True)
        out.append(Scored(label, seconds, ev["accuracy"], ev["errors"]))
    return out


def kept_folders_parser(description: str) -> argparse.ArgumentParser:
    """The options of a script that reads the folders `bench_accuracy.py --keep` left: the folders,
    the file their models learned and the holdout."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--keep", type=Path, action="append", required=True,
                   help="a folder bench_accuracy.py --keep left (repeatable)")
    p.add_argument("--data", type=Path, default=benchkit.TRAIN_42K, help="the file the models learned")
    p.add_argument("--holdout", type=Path, default=benchkit.HOLDOUT_18K)
    return p


def main() -> None:
    p = kept_folders_parser(__doc__.split("\n\n")[0])
    p.add_argument("--margin", type=float, default=0.05,
                   help="points of accuracy a slower recipe must gain to count (default 0.05: about the "
                        "spread of one recipe's seeds on the holdout)")
    args = p.parse_args()
    benchkit.cleanup_on_exit()
    seen: set[tuple] = set()
    scored = [s for folder in args.keep
              for s in score_folder(folder.resolve(), args.data, args.holdout, seen)]
    rows = by_recipe(scored)
    best = frontier([row for row, _ in rows], args.margin / 100)
    print(f"\n{'':2}{'training time':>14}  {'holdout':>8}  {'errors':>6}  runs  recipe")
    for row, n in rows:
        mark = "*" if row.recipe in best else ""
        print(f"{mark:2}{row.seconds / 60:>10.1f} min  {row.accuracy:>8.2%}  {row.errors:>6}  {n:>4}  "
              f"{row.recipe}")
    print(f"* on the frontier: no recipe listed is as fast and less than {args.margin:g} points less "
          "accurate")


if __name__ == "__main__":
    main()
