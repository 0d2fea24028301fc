"""What does a 5-member ensemble cost at prediction time, against one of its members? Draw (canvas to
probabilities) and Submit (28,000 digits); prints medians, p95 and ratios, asserts nothing.

    python benchmarks/bench_ensemble.py            # members on 2,000 rows, 200 drawings, 28,000 x 3
    python benchmarks/bench_ensemble.py --quick    # members on 600 rows, 20 drawings, 2,000 x 1: a smoke run

The ensemble is made the way the app makes one, in a private models folder: `python -m core train
--arch dr-cnn --epochs 1 --seeds 0,1,2,3,4 --ensemble` on the first `--train-rows` rows of the
shared 42k MNIST file (`benchkit.kaggle_train_csv`), i.e. five dr-cnn runs of ONE epoch on a small
slice, then the ensemble job (`core.ensembles.combine`: one Keras graph averaging the five), each
saved with its LiteRT serving copy by its job. The weights are barely trained: prediction latency
does not depend on them (same graph, same operations), so the timings are those of a well-trained
ensemble of five dr-cnn models; the accuracies are not, and are not printed. Both models are then
loaded with `core.prediction.load`, which serves them from `model.tflite` (and would make a stale
copy again with `python -m core convert`; no TensorFlow in this process). The member timed is the
first seed's run.

(a) Draw: `core.inference.read_digit(predictor, rgba)`, what the Draw page calls on every stroke
(as `bench_inference.py`), on `--draw-runs` different 280x280 RGBA canvases (`drawn_sets`), the
ensemble and the member alternating on each canvas (which one first alternates too); also the model
call alone (`predictor.predict_proba` on the 28x28 result). Target: the ensemble's read_digit
median <= 15 ms.

(b) Submit: `core.submission.predict([predictor], images, progress=...)`, what the Submit page runs
(through `core.prediction.predict_proba`, in chunks with progress), on a `--rows`-row test set built
as `bench_submission.py` builds it (the shared 18k holdout and the sample's test digits, tiled;
parsed once with `core.submission.load_test_file`), `--submit-runs` times each, alternating.
Prints every run, the medians and the ratio ensemble / member. Target: ratio <= 5x.
The machine is shared: the load average is printed at the start and the end.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402
import drawn_sets  # noqa: E402

TARGET_DRAW_MS = 15.0
TARGET_SUBMIT_RATIO = 5.0
MEMBERS = 5
NAME = "bench-ens"


def build(base: Path, env: dict, train_rows: int) -> tuple[str, str]:
    """Five 1-epoch dr-cnn runs and their ensemble, through `python -m core train`; their names."""
    path, what = benchkit.kaggle_train_csv(base / "train-slice.csv", train_rows)
    seeds = ",".join(str(s) for s in range(MEMBERS))
    cmd = [sys.executable, "-m", "core", "train", "--arch", "dr-cnn", "--epochs", "1", "--seeds", seeds,
           "--ensemble", "--name", NAME, "--data", str(path), "--quiet"]
    t0 = time.perf_counter()
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    took = time.perf_counter() - t0
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-5:])
        raise SystemExit(f"building the ensemble failed (exit {done.returncode}): {tail[:800]}")
    results = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    names = [r["name"] for r in results]
    ensemble, member = names[-1], names[0]
    print(f"built in {took:.0f} s: {MEMBERS} dr-cnn runs of 1 epoch on {train_rows:,} rows ({what}), "
          f"then their ensemble {ensemble!r} (python -m core train --seeds {seeds} --ensemble); "
          f"weights barely trained: latency does not depend on them", flush=True)
    return ensemble, member


def _ms(fn, item) -> float:
    t0 = time.perf_counter()
    fn(item)
    return (time.perf_counter() - t0) * 1000


def _line(label: str, ms: list[float]) -> str:
    p95 = float(np.percentile(ms, 95))
    return f"{label:<58} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def draw(models: dict, runs: int) -> None:
    """(a): read_digit and the model call alone, both models alternating on each canvas."""
    from core import inference, preprocess

    canvases, _ = drawn_sets.canvas_set(runs, seed=3)
    inputs = [preprocess.preprocess(c).centred for c in canvases]
    for predictor in models.values():  # first-call allocations, the interpreter's tensors
        inference.read_digit(predictor, canvases[0])
    reads = {label: [] for label in models}
    calls = {label: [] for label in models}
    labels = list(models)
    for i, (canvas, x) in enumerate(zip(canvases, inputs, strict=True)):
        for label in labels if i % 2 == 0 else labels[::-1]:
            predictor = models[label]
            reads[label].append(_ms(lambda c, p=predictor: inference.read_digit(p, c), canvas))
            calls[label].append(_ms(lambda a, p=predictor: p.predict_proba(a[None]), x))
    for label in labels:
        print(_line(f"Draw, read_digit (canvas -> probabilities), {label}", reads[label]))
        print(_line(f"  model call alone (1 image), {label}", calls[label]))
    ens, one = (statistics.median(reads[label]) for label in labels)
    verdict = "met" if ens <= TARGET_DRAW_MS else "MISSED"
    print(f"Draw: ensemble / member read_digit median = {ens / one:.2f}x; "
          f"target: ensemble median {ens:.2f} ms <= {TARGET_DRAW_MS:g} ms: {verdict}", flush=True)


def submit(models: dict, test: Path, what: str, runs: int) -> None:
    """(b): submission.predict on the whole test set, the two models alternating."""
    from core import submission

    t0 = time.perf_counter()
    images = submission.load_test_file(test).images
    print(f"Submit: {len(images):,} test digits ({what}), parsed in {time.perf_counter() - t0:.1f} s",
          flush=True)
    for predictor in models.values():
        submission.predict([predictor], images[:256])  # warm up, untimed
    seconds = {label: [] for label in models}
    labels = list(models)
    for r in range(runs):
        for label in labels if r % 2 == 0 else labels[::-1]:
            t0 = time.perf_counter()
            submission.predict([models[label]], images, progress=lambda done, total: None)
            seconds[label].append(time.perf_counter() - t0)
            rate = len(images) / seconds[label][-1]
            print(f"  run {r + 1}/{runs}, {label}: {seconds[label][-1]:6.2f} s ({rate:,.0f} digits/s; "
                  f"load {benchkit.loadavg().split()[0]})", flush=True)
    medians = {label: statistics.median(seconds[label]) for label in labels}
    for label in labels:
        print(f"Submit, {len(images):,} digits, {label}: median {medians[label]:.2f} s "
              f"(min {min(seconds[label]):.2f}, max {max(seconds[label]):.2f}, n={runs})")
    ratio = medians[labels[0]] / medians[labels[1]]
    verdict = "met" if ratio <= TARGET_SUBMIT_RATIO else "MISSED"
    print(f"Submit: ensemble / member = {ratio:.2f}x (target <= {TARGET_SUBMIT_RATIO:g}x: {verdict})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="members on 600 rows, 20 drawings, 2,000 test digits predicted once each")
    parser.add_argument("--train-rows", type=int, help="rows each member trains on (default 2,000)")
    parser.add_argument("--draw-runs", type=int, help="drawn digits timed, each model (default 200)")
    parser.add_argument("--rows", type=int, help="test digits predicted (default 28,000, Kaggle's test.csv)")
    parser.add_argument("--submit-runs", type=int, help="predictions of the test set, each model (default 3)")
    args = parser.parse_args()
    train_rows = args.train_rows or (600 if args.quick else 2_000)
    draw_runs = args.draw_runs or (20 if args.quick else 200)
    rows = args.rows or (2_000 if args.quick else benchkit.KAGGLE_TEST)
    submit_runs = args.submit_runs or (1 if args.quick else 3)
    benchkit.cleanup_on_exit()
    print(f"start: {benchkit.machine_line()}", flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-ensemble-") as tmp:
        base = Path(tmp)
        env = benchkit.private_env(base, models=False)
        ensemble, member = build(base, env, train_rows)
        from core import prediction, registry

        models = {}
        for label, name in ((f"ensemble of {MEMBERS}", ensemble), ("one member", member)):
            t0 = time.perf_counter()
            predictor = prediction.load(name)
            took = time.perf_counter() - t0
            how = predictor.notice or "its serving copy, made by its job, is current"
            print(f"{label}: {name} ({predictor.meta.get('arch')}, {predictor.meta.get('param_count'):,} "
                  f"parameters), prediction.load {took * 1000:.0f} ms, served by "
                  f"{type(predictor.runtime).__module__} ({how})")
            models[label] = predictor
        members = registry.read_meta(ensemble).get("members") or []
        if len(members) != MEMBERS:
            raise SystemExit(f"{ensemble} has {len(members)} members, expected {MEMBERS}")
        draw(models, draw_runs)
        test, what = benchkit.kaggle_test_csv(base / "test.csv", rows)
        submit(models, test, what, submit_runs)
    print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    main()
