"""How long `python -m core predict` takes on a Kaggle-sized test set, start-up included, and its memory.

Builds a 28,000-row test CSV (Kaggle's test.csv size) from digits no shipped model trained on (the
shared 18,000-digit MNIST holdout and the sample's 1,000 test digits, tiled; see `benchkit`), then
runs the command line as a subprocess, each run with an empty parse cache, and prints per run: wall
time, CPU time, peak RSS and the command's own time split (parsing + leakage check + writing vs
predicting); then the median over the runs, and whether the command imports TensorFlow (one more,
untimed run through a launcher that looks at `sys.modules`; it must not: prediction is LiteRT's).
Target: <= 5 s median wall.

    python benchmarks/bench_submission.py [--model NAME]... [--tta] [--runs 5]

Models come from a private copy of `models/` (default: the best saved one); every file the
command writes (submission, sidecar, leaderboard, parse cache) goes to a temporary folder.
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

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402

TARGET_S = 5.0
# Run the command as `python -m core` does (core/__main__.py), then say whether TensorFlow got
# imported on the way (before the same hard exit that file ends with).
LAUNCHER = (
    "import os, sys\n"
    "os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')\n"
    "from core.cli import main\n"
    "code = main(sys.argv[1:])\n"
    "print('tensorflow imported:', 'tensorflow' in sys.modules, file=sys.stderr)\n"
    "sys.stdout.flush(); sys.stderr.flush(); os._exit(code)\n"
)


def command(test: Path, out: Path, args: argparse.Namespace) -> list[str]:
    cmd = ["predict", "--test", str(test), "--out", str(out)]
    for name in args.model or []:
        cmd += ["--model", name]
    if args.tta:
        cmd.append("--tta")
    return cmd


def imports_tensorflow(test: Path, work: Path, env: dict, args: argparse.Namespace) -> str:
    env = dict(env, DRS_CACHE_DIR=str(work / "cache-check"))
    cmd = [sys.executable, "-c", LAUNCHER, *command(test, work / "check.csv", args)]
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    said = [ln for ln in done.stderr.splitlines() if ln.startswith("tensorflow imported:")]
    return said[-1].split(":", 1)[1].strip() if said else f"unknown (exit {done.returncode})"


def run_once(test: Path, out: Path, work: Path, env: dict, args: argparse.Namespace, i: int) -> dict | None:
    """One `python -m core predict` in a child process: its wall seconds, CPU seconds, peak RSS
    (MB, that child's own) and summary; None (with what went wrong printed) if it failed."""
    env = dict(env, DRS_CACHE_DIR=str(work / f"cache{i}"))  # an empty parse cache each run
    cmd = [sys.executable, "-m", "core", *command(test, out, args)]
    log_out, log_err = work / f"stdout{i}", work / f"stderr{i}"
    with open(log_out, "wb") as fo, open(log_err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fo, stderr=fe)
        # wait4 reaps this child and gives its own rusage (RUSAGE_CHILDREN would be the maximum
        # over every run so far).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = log_out.read_text(), log_err.read_text()
    if proc.returncode != 0:
        tail = " | ".join(stderr.strip().splitlines()[-3:])
        print(f"  run {i + 1}: FAILED, exit {proc.returncode} after {wall:.1f} s: {tail[:400]}")
        return None
    summary = json.loads(stdout.strip().splitlines()[-1])
    run = {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime, "rss": usage.ru_maxrss / 1024, **summary}
    print(f"  run {i + 1}: wall {wall:5.2f} s (CPU {run['cpu']:5.2f} s), peak RSS {run['rss']:5.0f} MB; "
          f"in the command {summary['seconds']:.2f} s, "
          f"of which predicting {summary['predict_seconds']:.2f} s; "
          f"start-up (interpreter, imports) {wall - summary['seconds']:.2f} s")
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name (repeat for an ensemble)")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    benchkit.cleanup_on_exit()
    with tempfile.TemporaryDirectory(prefix="bench-submission-") as tmp:
        work = Path(tmp)
        env = benchkit.private_env(work)
        test, what = benchkit.kaggle_test_csv(work / "test.csv")
        print(f"test file: {benchkit.KAGGLE_TEST:,} rows ({what}), {test.stat().st_size / 2**20:.1f} MB; "
              f"models: {args.model or 'best saved'}; TTA: {args.tta}")
        print(f"start: {benchkit.machine_line()}")
        runs = []
        for i in range(args.runs):
            run = run_once(test, work / f"submission{i}.csv", work, env, args, i)
            if run is not None:
                runs.append(run)
        if not runs:
            raise SystemExit("every run failed")
        walls = [r["wall"] for r in runs]
        median = statistics.median(walls)
        cpu, rss = statistics.median(r["cpu"] for r in runs), [r["rss"] for r in runs]
        print(f"median of {len(runs)} successful of {args.runs}: wall {median:.2f} s "
              f"(min {min(walls):.2f}, max {max(walls):.2f}); CPU {cpu:.2f} s; "
              f"peak RSS {statistics.median(rss):.0f} MB (max {max(rss):.0f})")
        print(f"TensorFlow imported by the command: {imports_tensorflow(test, work, env, args)}")
        verdict = "met" if median <= TARGET_S else "MISSED"
        print(f"target: median wall {median:.2f} s <= {TARGET_S:g} s: {verdict}")
        print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    main()
