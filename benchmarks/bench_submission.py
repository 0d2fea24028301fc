"""How long `python -m core predict` takes on a Kaggle-sized test set, and how much memory it needs.

Builds a 28,000-row test CSV by tiling the committed sample's 1,000 test digits, then runs the
command line as a subprocess (TensorFlow start-up and CSV parsing included: each run gets an empty
parse cache) and prints wall time and peak RSS, median of 3. Target: <= 60 s and <= 2 GB.

    .venv/bin/python benchmarks/bench_submission.py [--model NAME] [--tta] [--runs 3]
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

import numpy as np  # noqa: E402

from core import data, kaggle_csv, paths  # noqa: E402

KAGGLE_TEST_ROWS = 28_000


def build_test_csv(folder: Path) -> tuple[Path, np.ndarray]:
    """A Kaggle-sized test CSV (the sample's test digits tiled) and its answers, tiled the same way."""
    sample = data.parse_csv(paths.sample_dir() / "test.csv.gz", expect_labels=False)
    reps = -(-KAGGLE_TEST_ROWS // sample.n)
    images = np.tile(sample.images, (reps, 1, 1))[:KAGGLE_TEST_ROWS]
    answers = np.tile(data.sample_answers(), reps)[:KAGGLE_TEST_ROWS]
    return kaggle_csv.write_kaggle_csv(folder / "test.csv", images), answers


def run_once(
    test: Path, out: Path, work: Path, args: argparse.Namespace, i: int
) -> tuple[float, float] | None:
    """One CLI run in a child process: (wall seconds, peak RSS in MB) of that child alone; None
    (with what went wrong printed) if it failed."""
    env = dict(os.environ, DRS_DATA_DIR=str(work / f"data{i}"), DRS_CACHE_DIR=str(work / f"cache{i}"),
               TF_CPP_MIN_LOG_LEVEL="2")
    cmd = [sys.executable, "-m", "core", "predict", "--test", str(test), "--out", str(out)]
    for name in args.model or []:
        cmd += ["--model", name]
    if args.tta:
        cmd.append("--tta")
    log_out, log_err = work / f"stdout{i}", work / f"stderr{i}"
    with open(log_out, "wb") as fo, open(log_err, "wb") as fe:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=fo, stderr=fe)
        # wait4 reaps this child and gives its own rusage (RUSAGE_CHILDREN would be the maximum
        # over every run so far).
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
    stdout, stderr = log_out.read_bytes(), log_err.read_bytes()
    if proc.returncode != 0:
        tail = " | ".join(stderr.decode(errors="replace").strip().splitlines()[-2:])
        print(f"  run {i + 1}: FAILED, exit {proc.returncode} after {wall:.1f} s; output written: "
              f"{out.is_file()}; stdout: {stdout.decode()[:120]!r}; stderr ends: {tail[:300]}")
        return None
    rss_kb = usage.ru_maxrss  # kilobytes on Linux
    cpu = usage.ru_utime + usage.ru_stime
    summary = json.loads(stdout)
    print(f"  run {i + 1}: wall {wall:5.1f} s (CPU {cpu:5.1f} s), peak RSS {rss_kb / 1024:5.0f} MB; "
          f"predict_to_file {summary['seconds']:.1f} s (predicting {summary['predict_seconds']:.1f} s); "
          f"start-up (imports) {wall - summary['seconds']:.1f} s; models {summary['models']}")
    return wall, rss_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", action="append", help="model name (repeat for an ensemble)")
    parser.add_argument("--tta", action="store_true")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-submission-") as tmp:
        work = Path(tmp)
        test, answers = build_test_csv(work)
        print(f"test file: {KAGGLE_TEST_ROWS:,} rows, {test.stat().st_size / 2**20:.1f} MB; "
              f"models: {args.model or 'best saved'}; TTA: {args.tta}; cpus: {os.cpu_count()}; "
              f"load average: {os.getloadavg()[0]:.1f}")
        walls, rss = [], []
        for i in range(args.runs):
            out = work / f"submission{i}.csv"
            measured = run_once(test, out, work, args, i)
            if measured is None:
                continue
            wall, peak = measured
            walls.append(wall)
            rss.append(peak)
            labels = np.loadtxt(out, delimiter=",", skiprows=1, dtype=np.int64)[:, 1]
            print(f"         accuracy vs tiled answers: {(labels == answers).mean():.4f}")
        if not walls:
            raise SystemExit("every run failed")
        print(f"median of {len(walls)} successful of {args.runs}: wall {statistics.median(walls):.1f} s "
              f"(min {min(walls):.1f}, max {max(walls):.1f}); "
              f"peak RSS {statistics.median(rss):.0f} MB (max {max(rss):.0f})")


if __name__ == "__main__":
    main()
