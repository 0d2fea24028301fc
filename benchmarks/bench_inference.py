"""How long from canvas pixels to probabilities? Prints medians and p95; asserts nothing.

Times, over `--runs` varied drawn digits (280x280 RGBA, see `drawn_sets.py`), with the same model:

- ours: `inference.read_digit(model, rgba)`: preprocessing + `core.fast_predict`'s folded,
  traced graph (what the Draw page does on every stroke), and its two parts separately;
- Keras' eager call `model(x, training=False)` on the same 28x28 input;
- Keras' `model.predict(x)` on the same 28x28 input, the usual way people call a model.

Target: ours <= 30 ms median with the default model. The machine is shared: the load average
is printed too.

    python benchmarks/bench_inference.py [--model NAME] [--runs 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import drawn_sets  # noqa: E402

from core import inference, preprocess, registry  # noqa: E402


def _time(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _line(label: str, ms: list[float]) -> str:
    p95 = float(np.percentile(ms, 95))
    return f"{label:<44} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="saved model (default: the best one)")
    parser.add_argument("--runs", type=int, default=200)
    args = parser.parse_args()

    model = registry.load_model(args.model)
    canvases, _ = drawn_sets.canvas_set(args.runs, seed=3)
    inputs = [preprocess.preprocess(c).centred for c in canvases]
    # Warm up every path once (tracing, first-call allocations) before timing.
    inference.read_digit(model, canvases[0])
    model.model(inputs[0][None].astype(np.float32), training=False)
    model.model.predict(inputs[0][None].astype(np.float32), verbose=0)

    print(f"model: {model.name} ({model.meta.get('arch')}), load average {os.getloadavg()[0]:.2f}")
    ours = _time(lambda c: inference.read_digit(model, c), canvases)
    print(_line("ours: canvas RGBA -> probabilities", ours))
    print(_line("  preprocessing only", _time(preprocess.preprocess, canvases)))
    fast = _time(lambda x: inference.predict_digit(model, x), inputs)
    print(_line("  model only (folded, traced graph)", fast))
    eager = _time(lambda x: model.model(x[None].astype(np.float32), training=False), inputs)
    print(_line("Keras eager model(x, training=False)", eager))
    runs = inputs[: max(20, len(inputs) // 4)]  # predict() is slow; fewer runs say enough
    x32 = [x[None].astype(np.float32) for x in runs]
    print(_line("model.model.predict(x)", _time(lambda x: model.model.predict(x, verbose=0), x32)))


if __name__ == "__main__":
    main()
