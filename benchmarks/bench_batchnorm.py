"""How much faster does a dr-* model train with the fused batch norm? Prints medians; asserts nothing.

The same architecture is built twice per round, once with Keras' own `BatchNormalization` and once
with `core.fused_batchnorm.FusedBatchNorm` (what `models.batch_norm` returns), each compiled as a
training job compiles it (`training.compiled_model`), warmed up for a few batches, then timed over
`--steps` batches of the sample's real digits. The two alternate, first one then the other, round
after round, so a slow spell of the shared machine falls on both; the figures are the medians of
the rounds' images/s and of the paired ratios.

    python benchmarks/bench_batchnorm.py [--arch dr-sep-elastic] [--rounds 7] [--steps 40]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402


def images_per_s(arch: str, fused: bool, images, labels, steps: int, batch: int) -> tuple[float, float]:
    """Training images/s of `arch` over `steps` batches, and the CPU seconds per wall second."""
    import keras

    from core import models, training

    original = models.batch_norm
    if not fused:
        models.batch_norm = lambda: keras.layers.BatchNormalization(momentum=0.9)
    try:
        settings = {**models.get_architecture(arch).defaults, "arch": arch, "seed": 0}
        model = training.compiled_model(settings, steps_per_epoch=steps)
    finally:
        models.batch_norm = original
    x, y = images[: steps * batch], labels[: steps * batch]
    model.fit(training.batches(x[: 5 * batch], y[: 5 * batch], batch), epochs=1, verbose=0,
              shuffle=False)  # trace, warm up
    wall, cpu = time.perf_counter(), time.process_time()
    model.fit(training.batches(x, y, batch, shuffle_seed=0), epochs=1, verbose=0, shuffle=False)
    wall = time.perf_counter() - wall
    return len(x) / wall, (time.process_time() - cpu) / wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", default=None, help="architecture (default: the default one)")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=40, help="timed batches per measurement")
    args = parser.parse_args()

    from core import data, models

    arch = args.arch or models.DEFAULT_ARCH
    batch = int(models.get_architecture(arch).defaults["batch_size"])
    sample = data.load_csv(ROOT / "data" / "sample" / "train.csv.gz", use_cache=False)
    if len(sample.images) < args.steps * batch:
        raise SystemExit(f"--steps {args.steps} x batch {batch} needs more digits than the sample's "
                         f"{len(sample.images)}")
    print(f"{arch}, batch {batch}, {args.steps} batches a measurement; start: {benchkit.machine_line()}")
    speeds: dict[bool, list[float]] = {False: [], True: []}
    ratios = []
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        seen = {}
        for fused in order:
            seen[fused] = images_per_s(arch, fused, sample.images, sample.labels, args.steps, batch)
            speeds[fused].append(seen[fused][0])
        ratios.append(seen[True][0] / seen[False][0])
        print(f"round {r + 1}: Keras BN {seen[False][0]:,.0f} images/s (CPU/wall {seen[False][1]:.2f}), "
              f"fused {seen[True][0]:,.0f} (CPU/wall {seen[True][1]:.2f}): {ratios[-1]:.2f}x")
    print(f"median: Keras BN {statistics.median(speeds[False]):,.0f} images/s, fused "
          f"{statistics.median(speeds[True]):,.0f}; paired ratio median {statistics.median(ratios):.2f}x "
          f"(range {min(ratios):.2f}-{max(ratios):.2f}, {args.rounds} rounds)")
    print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    main()
