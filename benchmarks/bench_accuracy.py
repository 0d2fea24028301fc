"""How accurate a training recipe is on digits no model here has seen, and what it costs.

For each architecture and seed: `python -m core train --data TRAIN --arch A --seed S` in a child
process (the recipe's own settings: epochs, schedule, augmentation, the epoch kept: the best on the
run's validation split or, with `--checkpoint last`, the last), then `python -m core evaluate` of
that model on the whole holdout. One line per run: holdout accuracy with its Wilson 95% interval, the
epoch kept, wall and CPU seconds, training images/s (mean over epochs, from the run's history) and
the job's peak RSS.
Then per architecture the mean and spread over seeds; with two architectures, the ratio of their
times and the difference of their accuracies (as the recipe issue asks: ours vs `kaggle-cnn`);
with `--ensemble`, the ensemble of each architecture's seeds (`python -m core ensemble`) scored
on the same holdout. `--tta` scores every model and ensemble a second time with test-time
augmentation (`python -m core evaluate --tta`). `--reuse` (with `--keep`) scores a model already in
that folder, trained earlier by the same command (same file, architecture, seed and epochs),
instead of training it again: its line gives the training time its run recorded. `--teacher NAME`
(with `--keep`: a model in that folder, often an ensemble the benchmark made there) trains students
instead (`python -m core train --teacher`: distillation), named `acc-ARCH-student-sSEED`.

    python benchmarks/bench_accuracy.py              # default recipe, seeds 0,1,2: 42k file -> 18k holdout
    python benchmarks/bench_accuracy.py --arch dr-v --arch kaggle-cnn --seeds 0
    python benchmarks/bench_accuracy.py --data data/sample/train.csv.gz --arch dr-v --seeds 0,1,2 --ensemble
    python benchmarks/bench_accuracy.py --quick                       # smoke run: 2 epochs, small slices
    python benchmarks/bench_accuracy.py --arch dr-sep --seeds 0,1,2,3,4 --epochs 20 --keep DIR --reuse \
        --ensemble --tta
    python benchmarks/bench_accuracy.py --keep DIR --teacher acc-dr-sep-elastic-ensemble-3 \
        --distill-copies 4 --tta                                    # students of that ensemble

Defaults: training file `../shared/data/mnist-train-42k.csv.gz`, holdout
`../shared/data/mnist-holdout-18k.csv.gz` (in neither training file; never used to choose
anything). Models go to a temporary folder (or `--keep DIR`), never the repository's `models/`.
Another labelled file as `--holdout` (e.g. MNIST's own test set, made by `mnist_idx_csv.py`) is
named in each line instead of "holdout": with `--reuse`, kept models scored on other digits.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import gzip
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402


def run(cmd: list[str], env: dict, log: Path) -> tuple[int, float, float, float]:
    """Run `python -m core ...` here; (exit code, wall s, CPU s, peak RSS MB) of that child alone."""
    with open(log, "ab") as out:
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "core", *cmd], cwd=ROOT, env=env,
                                stdout=out, stderr=out)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
    return (os.waitstatus_to_exitcode(status), wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024)


def evaluate(name: str, holdout: Path, env: dict, log: Path, *, tta: bool = False) -> dict:
    cmd = [sys.executable, "-m", "core", "evaluate", "--data", str(holdout), "--model", name]
    out = subprocess.run(cmd + (["--tta"] if tta else []), cwd=ROOT, env=env, capture_output=True, text=True)
    with open(log, "a") as f:
        f.write(out.stderr)
    if out.returncode != 0:
        raise SystemExit(f"evaluating {name} failed: {out.stderr.strip().splitlines()[-1:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def history_speed(models_dir: Path, name: str) -> tuple[float | None, str]:
    """Mean training images/s over the run's epochs and which epoch it kept, from its own files."""
    from core import training

    folder = models_dir / name
    with open(folder / "history.csv") as f:
        rows = list(csv.DictReader(f))
    speeds = [float(r["images_per_s"]) for r in rows if r.get("images_per_s")]
    meta = json.loads((folder / "meta.json").read_text())
    kept, val_best = meta.get("best_epoch"), meta.get("val_best_epoch")
    said = f"{training.kept_rule(meta)} epoch {kept}"
    if val_best is not None and val_best != kept:
        said += f" (validation's best: {val_best})"
    return (statistics.mean(speeds) if speeds else None), said


def kept_run(
    models_dir: Path, name: str, train: Path, arch: str, seed: int, epochs: int | None,
    recipe: dict | None = None,
) -> dict | None:
    """The meta of model `name` if an earlier run of this command finished it on the same file with
    the same architecture, seed and epochs (and the same `recipe` settings: a student's teacher and
    copies, a validation fraction, label smoothing, weight averaging, a checkpoint rule); None when there
    is none.
    Another recipe under the same name is refused: scoring it would print the wrong recipe's figure."""
    path = models_dir / name / "meta.json"
    if not path.is_file():
        return None
    meta = json.loads(path.read_text())
    params = meta.get("params") or {}
    same = (meta.get("status") == "done" and (meta.get("data") or {}).get("path") == str(train)
            and params.get("arch") == arch and params.get("seed") == seed
            and (epochs is None or params.get("epochs") == epochs)
            and all(params.get(key) == value for key, value in (recipe or {}).items()))
    if not same:
        data_path = (meta.get("data") or {}).get("path")
        raise SystemExit(f"{path.parent} holds another run (arch {params.get('arch')}, "
                         f"seed {params.get('seed')}, epochs {params.get('epochs')}, data {data_path}): "
                         "remove it or choose another --keep folder")
    return meta


def slice_csv(src: Path, dst: Path, rows: int) -> Path:
    """The header and first `rows` rows of a (gzipped) Kaggle CSV: for --quick."""
    opener = gzip.open if src.suffix == ".gz" else open
    with opener(src, "rt") as f, open(dst, "w") as out:
        for i, line in enumerate(f):
            if i > rows:
                break
            out.write(line)
    return dst


def score_ensemble(combined: str, members: list[str], label: str, holdout: Path, env: dict, log: Path, *,
                   tta: bool, on: str = "holdout") -> None:
    """Save `members` as one averaging model called `combined` and print its holdout line(s)."""
    shutil.rmtree(Path(env["DRS_MODELS_DIR"]) / combined, ignore_errors=True)  # this run's own, made again
    code, *_ = run(["ensemble", "--members", ",".join(members), "--name", combined, "--quiet"], env, log)
    if code != 0:
        raise SystemExit(f"making the ensemble {combined} failed (exit {code})")
    print(line(label, evaluate(combined, holdout, env, log), "", on=on), flush=True)
    if tta:
        print(line("  with TTA", evaluate(combined, holdout, env, log, tta=True), "", on=on), flush=True)


def scored_name(path: Path) -> str:
    """A file's name without its .csv(.gz): what the lines say they scored on."""
    return path.name.removesuffix(".gz").removesuffix(".csv")


def line(label: str, ev: dict, extra: str, *, on: str = "holdout") -> str:
    lo, hi = ev["accuracy_95"]
    return (f"{label:<22} {on} {ev['accuracy']:.2%} [{lo:.2%}-{hi:.2%}] on {ev['n']:,} "
            f"({ev['errors']} errors)  {extra}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--arch", action="append", help="architecture (repeatable; default: the default one)")
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--data", type=Path, default=benchkit.TRAIN_42K)
    p.add_argument("--holdout", type=Path, default=benchkit.HOLDOUT_18K)
    p.add_argument("--epochs", type=int, help="override the recipe's epochs")
    p.add_argument("--val-fraction", type=float,
                   help="the share of the training file each run keeps for its validation split "
                        "(the checkpoint is chosen there; default: the app's 0.1)")
    p.add_argument("--label-smoothing", type=float,
                   help="train on labels softened by this much (default: the app's 0, none)")
    p.add_argument("--ema", type=float, metavar="MOMENTUM",
                   help="weight averaging: end each epoch on the weights' moving average (e.g. 0.999 a "
                        "step; default: none)")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="the epoch each run keeps: best on its validation split, or the last (default: "
                        "the recipe's own)")
    p.add_argument("--ensemble", action="store_true",
                   help="also score the ensemble of each architecture's seeds")
    p.add_argument("--mixed", action="store_true",
                   help="also score the ensemble of every model this run trained, all architectures "
                        "together (members that make different mistakes)")
    p.add_argument("--keep", type=Path,
                   help="work in this folder and keep it (models, their signing key, the log) instead of "
                        "a temporary one: to reuse the models, e.g. as ensemble members")
    p.add_argument("--tta", action="store_true",
                   help="also score every model and ensemble with test-time augmentation")
    p.add_argument("--reuse", action="store_true",
                   help="with --keep: score models an earlier run of this command left there instead of "
                        "training them again")
    p.add_argument("--teacher", metavar="NAME",
                   help="with --keep: train students of this model of that folder (distillation) instead")
    p.add_argument("--distill-copies", type=int,
                   help="with --teacher: warped copies of each training digit (the app's default: 12)")
    p.add_argument("--quick", action="store_true",
                   help="smoke run: 2 epochs on 2,000 rows, 2,000 holdout digits")
    args = p.parse_args()
    from core import models

    archs = args.arch or [models.DEFAULT_ARCH]
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    for path in (args.data, args.holdout):
        if not path.is_file():
            raise SystemExit(f"{path} is missing (the shared data sits beside the repository)")
    if args.reuse and not args.keep:
        raise SystemExit("--reuse needs --keep DIR: the folder whose models to score again")
    if args.teacher and not args.keep:
        raise SystemExit("--teacher needs --keep DIR: the folder that holds the teacher")
    if args.distill_copies is not None and not args.teacher:
        raise SystemExit("--distill-copies needs --teacher")
    distill = {"teacher": args.teacher} if args.teacher else {}
    if args.distill_copies is not None:
        distill["distill_copies"] = args.distill_copies
    recipe = dict(distill)  # settings a kept run must share to be scored again
    for key in ("val_fraction", "label_smoothing", "ema", "checkpoint"):
        if getattr(args, key) is not None:
            recipe[key] = getattr(args, key)
    benchkit.cleanup_on_exit()
    if args.keep:
        args.keep.mkdir(parents=True, exist_ok=True)
    with (contextlib.nullcontext(str(args.keep)) if args.keep
          else tempfile.TemporaryDirectory(prefix="drs-bench-acc-")) as tmp:
        work = Path(tmp)
        env = benchkit.private_env(work)
        models_dir = Path(env["DRS_MODELS_DIR"])
        train, holdout, epochs = args.data, args.holdout, args.epochs
        if args.quick:
            train = slice_csv(args.data, work / "train.csv", 2000)
            holdout = slice_csv(args.holdout, work / "holdout.csv", 2000)
            epochs = epochs or 2
        log = work / "runs.log"
        on = "holdout" if args.holdout.resolve() == benchkit.HOLDOUT_18K.resolve() else scored_name(
            args.holdout)
        print(f"train: {train.name}, holdout: {holdout.name}; archs {archs}, seeds {seeds}"
              f"{f', {epochs} epochs' if epochs else ''}")
        print(f"start: {benchkit.machine_line()}", flush=True)
        summary: dict[str, dict] = {}
        everyone: list[str] = []
        for arch in archs:
            names, accs, walls, tta_accs = [], [], [], []
            for seed in seeds:
                name = f"acc-{arch}-{'student-' if distill else ''}s{seed}"
                wanted = epochs or (None if distill else models.get_architecture(arch).defaults.get("epochs"))
                kept = kept_run(models_dir, name, train, arch, seed, wanted, recipe) if args.reuse else None
                if kept is None:
                    cmd = ["train", "--data", str(train), "--arch", arch, "--seed", str(seed), "--name", name,
                           "--quiet"]
                    if epochs:
                        cmd += ["--epochs", str(epochs)]
                    for key, value in recipe.items():
                        cmd += [f"--{key.replace('_', '-')}", str(value)]
                    code, wall, cpu, rss = run(cmd, env, log)
                    if code != 0:
                        raise SystemExit(f"training {name} failed (exit {code}); see the log lines above:\n"
                                         + "\n".join(log.read_text().splitlines()[-5:]))
                    cost = f"wall {wall:,.0f} s, CPU {cpu:,.0f} s, peak RSS {rss:,.0f} MB"
                else:
                    wall = float(kept.get("training_time_s") or 0.0)
                    cost = f"trained earlier ({kept.get('ended_at')}): {wall:,.0f} s by its own clock"
                ev = evaluate(name, holdout, env, log)
                speed, kept_epoch = history_speed(models_dir, name)
                label = f"{arch} {'student ' if distill else ''}seed {seed}"
                print(line(label, ev, f"{kept_epoch}; {cost}, {speed:,.0f} images/s", on=on), flush=True)
                if args.tta:
                    tta = evaluate(name, holdout, env, log, tta=True)
                    tta_accs.append(tta["accuracy"])
                    print(line("  with TTA", tta, "", on=on), flush=True)
                names.append(name)
                accs.append(ev["accuracy"])
                walls.append(wall)
            for label, values in (("", accs), (" with TTA", tta_accs)):
                if values:
                    spread = statistics.stdev(values) if len(values) > 1 else 0.0
                    print(f"{arch}{label}: mean {on} accuracy {statistics.mean(values):.2%} "
                          f"(sd {spread:.2%}, min {min(values):.2%}, max {max(values):.2%}) "
                          f"over {len(values)} seed(s); "
                          f"mean time {statistics.mean(walls):,.0f} s", flush=True)
            summary[arch] = {"mean": statistics.mean(accs), "wall": statistics.mean(walls)}
            everyone += names
            if args.ensemble and len(names) > 1:
                kind = "student-ensemble" if distill else "ensemble"  # never over the teacher
                score_ensemble(f"acc-{arch}-{kind}-{len(names)}", names, f"{arch} ensemble of {len(names)}",
                               holdout, env, log, tta=args.tta, on=on)
        if args.mixed and len(archs) > 1:
            score_ensemble(f"acc-mixed-ensemble-{len(everyone)}", everyone,
                           f"mixed ensemble of {len(everyone)}", holdout, env, log, tta=args.tta, on=on)
        reference = "kaggle-cnn" if "kaggle-cnn" in summary else archs[-1]  # the one to beat
        for a, sa in summary.items():
            if a != reference:
                sb = summary[reference]
                print(f"{a} vs {reference}: accuracy {100 * (sa['mean'] - sb['mean']):+.2f} points, "
                      f"time {sa['wall'] / sb['wall']:.2f}x")
        print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    main()
