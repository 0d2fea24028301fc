"""Training figures: our default CNN against the popular Kaggle notebook's CNN, and a job's peak memory.

    python benchmarks/bench_train.py                 # both CNNs on the sample, same split
    python benchmarks/bench_train.py --seeds 0,1,2   # one pair per seed (split and init), and the median
    python benchmarks/bench_train.py --quick         # 2 epochs each: a smoke run of the comparison
    python benchmarks/bench_train.py --memory        # peak RSS of a job training dr-cnn on 42,000 rows

Comparison: prints validation accuracy against wall time for both models, the time ours takes to
reach the notebook's final accuracy, and the ratio to the notebook's total time (target: at most
0.6). Each model trains in its own `python -m core train` process (the same code as a job the
Train page starts), so neither inherits the other's warm caches or memory.

Memory: one `python -m core train` on the shared 42,000-digit MNIST file (Kaggle's train.csv
size; the committed sample tiled when it is missing), one epoch by default, and prints that
process's peak RSS (from its own rusage, and its VmHWM from /proc) and the peak during each phase
the job reports in `progress.json` (start-up, training, saving, exporting). Target <= 1,100 MB.

Every run works in a private temporary folder (models, data, cache, signing key); the load
average is printed with the figures. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402

TARGET_RATIO = 0.60
TARGET_JOB_MB = 1100


def train(arch: str, epochs: int | None, env: dict, data: str, extra: list[str], seed: int = 0) -> dict:
    """Run `python -m core train` and return its final JSON plus the per-epoch history, its CPU
    seconds and its peak RSS (this child's own, from wait4)."""
    name = f"bench-{arch}-{seed}"
    cmd = [sys.executable, "-m", "core", "train", "--arch", arch, "--data", data, "--name", name,
           "--seed", str(seed), "--quiet", *extra]
    if epochs:
        cmd += ["--epochs", str(epochs)]
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)  # this child's own rusage
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(), err.read().decode()
    if proc.returncode != 0:
        raise SystemExit(f"{arch}: python -m core train failed ({proc.returncode}): {stderr.strip()[-500:]}")
    from core import registry

    result = json.loads(stdout.strip().splitlines()[-1])
    result["history"] = registry.read_history(result["name"])
    result["cpu_s"] = usage.ru_utime + usage.ru_stime
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def compare(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        env = benchkit.private_env(Path(tmp), models=False)
        ratios = [compare_once(args, int(seed), env) for seed in args.seeds.split(",")]
    if len(ratios) > 1:
        shown = ", ".join("never" if r is None else f"{r:.2f}x" for r in ratios)
        median = statistics.median(r if r is not None else float("inf") for r in ratios)
        print(f"\nseeds {args.seeds}: ours reached the notebook's final accuracy at {shown} of its time; "
              f"median {'never' if median == float('inf') else f'{median:.2f}x'} (target <= {TARGET_RATIO})")
    print(f"end: {benchkit.machine_line()}")


def compare_once(args: argparse.Namespace, seed: int, env: dict) -> float | None:
    """One pair of runs on the split drawn with `seed`; returns our time ratio (None: never reached)."""
    data = args.data or str(ROOT / "data" / "sample" / "train.csv.gz")
    print(f"\n=== seed {seed} (validation split and initial weights); {benchkit.machine_line()} ===")
    split = ["--val-fraction", str(args.val_fraction)]
    ref = train("kaggle-cnn", args.ref_epochs, env, data, split, seed)
    ours = train("dr-cnn", args.epochs, env, data, split, seed)
    for label, r in (("kaggle-cnn (notebook)", ref), ("dr-cnn (ours)", ours)):
        print(f"\n{label}: best val_accuracy {r['val_accuracy']:.4f}, {r['training_time_s']:.0f} s wall, "
              f"{r['cpu_s']:.0f} s CPU, peak RSS {r['peak_rss_mb']:.0f} MB")
        print("  epoch  elapsed_s  val_accuracy  images/s")
        for h in r["history"]:
            print(f"  {int(h['epoch']):5d}  {h['elapsed_s']:9.1f}  {h['val_accuracy']:12.4f}  "
                  f"{h.get('images_per_s') or 0:8.0f}")
    target = ref["history"][-1]["val_accuracy"]
    ref_time = ref["history"][-1]["elapsed_s"]
    reached = next((h for h in ours["history"] if h["val_accuracy"] >= target), None)
    print(f"\nnotebook final val_accuracy {target:.4f} after {ref_time:.0f} s")
    if reached is None:
        print(f"ours never reached it (best {ours['val_accuracy']:.4f})")
        return None
    ratio = reached["elapsed_s"] / ref_time
    print(f"ours reached {reached['val_accuracy']:.4f} at epoch {int(reached['epoch'])}, "
          f"{reached['elapsed_s']:.0f} s: {ratio:.2f}x the notebook's time (target <= {TARGET_RATIO})")
    return ratio


def memory(args: argparse.Namespace) -> None:
    """Peak RSS of `python -m core train` (dr-cnn) on 42,000 rows, overall and per reported phase."""
    with tempfile.TemporaryDirectory(prefix="bench-train-mem-") as tmp:
        env = benchkit.private_env(Path(tmp), models=False)
        if args.data:
            data, what = Path(args.data), args.data
        elif benchkit.TRAIN_42K.is_file():
            data, what = benchkit.TRAIN_42K, str(benchkit.TRAIN_42K)
        else:
            data, what = benchkit.kaggle_train_csv(Path(tmp) / "data" / "train.csv")
        epochs = str(args.epochs or 1)
        print(f"data: {what}; dr-cnn, {epochs} epoch(s); start: {benchkit.machine_line()}")
        cmd = [sys.executable, "-m", "core", "train", "--data", str(data), "--arch", "dr-cnn", "--epochs",
               epochs, "--quiet", "--name", "mem"]
        progress = Path(tmp) / "models" / "mem" / "progress.json"
        t0 = time.perf_counter()
        out_file, err_file = Path(tmp) / "stdout", Path(tmp) / "stderr"
        with open(out_file, "wb") as fo, open(err_file, "wb") as fe:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fo, stderr=fe)
        phases: dict[str, float] = {}  # phase -> highest VmRSS seen during it
        phase, hwm = "start-up (Python, TensorFlow, data)", 0.0
        while True:  # no poll(): it would reap the child before wait4 reads its rusage
            try:
                rss, hwm = benchkit.memory_mb(proc.pid)
            except (OSError, KeyError):
                break
            try:
                message = json.loads(progress.read_text()).get("message") or phase
                phase = "training" if message.startswith("training") else message
            except (OSError, ValueError):
                pass
            phases[phase] = max(phases.get(phase, 0.0), rss)
            time.sleep(0.2)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        out, err = out_file.read_text(), err_file.read_text()
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"the job failed: {err.strip()[-800:]}")
        result = json.loads(out.strip().splitlines()[-1])
        from core import registry

        history = registry.read_history("mem")
    peak = usage.ru_maxrss / 1024
    speeds = ", ".join(f"{h.get('images_per_s') or 0:.0f}" for h in history)
    print(f"{wall:.0f} s wall, {usage.ru_utime + usage.ru_stime:.0f} s CPU; val_accuracy "
          f"{result.get('val_accuracy', float('nan')):.4f}; images/s per epoch: {speeds}")
    print("highest resident memory seen in each phase (sampled every 0.2 s):")
    for name, mb in phases.items():
        print(f"  {name:<40s} {mb:7.0f} MB")
    print(f"job process peak RSS (rusage ru_maxrss): {peak:.0f} MB; last VmHWM read: {hwm:.0f} MB "
          f"(target <= {TARGET_JOB_MB} MB: {'met' if peak <= TARGET_JOB_MB else 'MISSED'})")
    print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="labelled CSV (default: the sample; with --memory: 42k rows)")
    parser.add_argument("--epochs", type=int, help="epochs for our dr-cnn (default 20; with --memory 1)")
    parser.add_argument("--ref-epochs", type=int, default=20, help="epochs for the notebook CNN")
    parser.add_argument("--val-fraction", type=float, default=0.2, help="held-out share (both models)")
    parser.add_argument("--seeds", default="0", help="comma-separated seeds: one pair of runs each")
    parser.add_argument("--quick", action="store_true", help="2 epochs per model: a smoke run")
    parser.add_argument("--memory", action="store_true",
                        help="measure a job's peak RSS on 42,000 rows instead")
    a = parser.parse_args()
    benchkit.cleanup_on_exit()
    if a.quick:
        a.ref_epochs, a.epochs = 2, 2
    if a.memory:
        memory(a)
    else:
        a.epochs = a.epochs or 20
        compare(a)
