"""Training figures: our default CNN against the popular Kaggle notebook's CNN, and peak memory.

    python benchmarks/bench_train.py                 # both CNNs on the sample, same split
    python benchmarks/bench_train.py --seeds 0,1,2   # one pair per seed (split and init), and the median
    python benchmarks/bench_train.py --memory        # peak RSS training on a Kaggle-sized set

Prints validation accuracy against wall time for both models, the time ours takes to reach the
notebook's final accuracy, and the ratio to the notebook's total time (target: at most 0.6).
Each model trains in its own subprocess so neither inherits the other's warm caches or memory.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def train(arch: str, epochs: int | None, models_dir: str, data: str, extra: list[str], seed: int = 0) -> dict:
    """Run `python -m core train` and return its final JSON plus the per-epoch history."""
    name = f"bench-{arch}-{seed}"
    cmd = [
        sys.executable,
        "-m",
        "core",
        "train",
        "--arch",
        arch,
        "--data",
        data,
        "--name",
        name,
        "--seed",
        str(seed),
        "--quiet",
        *extra,
    ]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    env = dict(os.environ, DRS_MODELS_DIR=models_dir, TF_CPP_MIN_LOG_LEVEL="2")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    sys.path.insert(0, str(ROOT))
    os.environ["DRS_MODELS_DIR"] = models_dir
    from core import registry

    result["history"] = registry.read_history(result["name"])
    result["cpu_s"] = cpu_s
    result["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return result


def compare(args: argparse.Namespace) -> None:
    ratios = [compare_once(args, int(seed)) for seed in args.seeds.split(",")]
    if len(ratios) > 1:
        shown = ", ".join("never" if r is None else f"{r:.2f}x" for r in ratios)
        median = sorted(r if r is not None else float("inf") for r in ratios)[len(ratios) // 2]
        print(f"\nseeds {args.seeds}: ours reached the notebook's final accuracy at {shown} of its time; "
              f"median {'never' if median == float('inf') else f'{median:.2f}x'} (target <= 0.60)")


def compare_once(args: argparse.Namespace, seed: int) -> float | None:
    """One pair of runs on the split drawn with `seed`; returns our time ratio (None: never reached)."""
    data = args.data or str(ROOT / "data" / "sample" / "train.csv.gz")
    print(f"\n=== seed {seed} (validation split and initial weights) ===")
    with tempfile.TemporaryDirectory() as tmp:
        split = ["--val-fraction", str(args.val_fraction)]
        ref = train("kaggle-cnn", args.ref_epochs, tmp, data, split, seed)
        ours = train("dr-cnn", args.epochs, tmp, data, split, seed)
    for label, r in (("kaggle-cnn (notebook)", ref), ("dr-cnn (ours)", ours)):
        print(
            f"\n{label}: best val_accuracy {r['val_accuracy']:.4f}, {r['training_time_s']:.0f} s wall, "
            f"{r['cpu_s']:.0f} s CPU"
        )
        print("  epoch  elapsed_s  val_accuracy")
        for h in r["history"]:
            print(f"  {int(h['epoch']):5d}  {h['elapsed_s']:9.1f}  {h['val_accuracy']:.4f}")
    target = ref["history"][-1]["val_accuracy"]
    ref_time = ref["history"][-1]["elapsed_s"]
    reached = next((h for h in ours["history"] if h["val_accuracy"] >= target), None)
    print(f"\nnotebook final val_accuracy {target:.4f} after {ref_time:.0f} s")
    if reached is None:
        print(f"ours never reached it (best {ours['val_accuracy']:.4f})")
        return None
    ratio = reached["elapsed_s"] / ref_time
    print(
        f"ours reached {reached['val_accuracy']:.4f} at epoch {int(reached['epoch'])}, "
        f"{reached['elapsed_s']:.0f} s: {ratio:.2f}x the notebook's time (target <= 0.60)"
    )
    return ratio


def memory(args: argparse.Namespace) -> None:
    """Peak RSS of `python -m core train` on 42,000 rows (the sample tiled), one epoch."""
    sys.path.insert(0, str(ROOT))
    import numpy as np

    from core import data, kaggle_csv

    base = data.load_csv(ROOT / "data" / "sample" / "train.csv.gz", use_cache=False)
    reps = -(-42_000 // base.n)
    images = np.concatenate([base.images] * reps)[:42_000]
    labels = np.concatenate([base.labels] * reps)[:42_000]
    with tempfile.TemporaryDirectory() as tmp:
        path = kaggle_csv.write_kaggle_csv(Path(tmp) / "train.csv", images, labels)
        env = dict(os.environ, DRS_MODELS_DIR=tmp, DRS_CACHE_DIR=tmp, TF_CPP_MIN_LOG_LEVEL="2")
        cmd = [
            sys.executable,
            "-m",
            "core",
            "train",
            "--data",
            str(path),
            "--epochs",
            str(args.epochs or 1),
            "--quiet",
            "--name",
            "mem",
        ]
        subprocess.run(cmd, cwd=ROOT, env=env, check=True, capture_output=True)
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"peak RSS training dr-cnn on 42,000 rows: {peak:.0f} MB (target <= 1536 MB)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", help="labelled CSV (default: the committed sample)")
    parser.add_argument("--epochs", type=int, default=20, help="epochs for our dr-cnn")
    parser.add_argument("--ref-epochs", type=int, default=20, help="epochs for the notebook CNN")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="held-out share (both models)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: one pair of runs each")
    parser.add_argument("--memory", action="store_true", help="measure peak RSS on 42,000 rows instead")
    a = parser.parse_args()
    memory(a) if a.memory else compare(a)
