"""How long from canvas pixels to probabilities? Prints medians and p95; asserts nothing.

Times, over `--runs` varied drawn digits (280x280 RGBA, see `drawn_sets.py`), with the same model:

- `inference.read_digit(predictor, rgba)`: preprocessing + prediction, what the Draw page does on
  every stroke (the predictor is `prediction.load(name)`, served by LiteRT, no TensorFlow);
- its parts: `preprocess.preprocess(rgba)` alone, and the model call alone
  (`predictor.predict_proba` on the 28x28 result, and the bare LiteRT runtime under it);
- with `--keras`, Keras' eager `model(x, training=False)` on the same 28x28 inputs, for
  comparison (this imports TensorFlow, which the web server never does).

Also prints how long `prediction.load` takes (reading and checking `model.tflite`). Target:
read_digit <= 5 ms median. The model is read from a private copy of `models/`; the machine is
shared, so the load average is printed too.

    python benchmarks/bench_inference.py [--model NAME] [--runs 300] [--keras]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import benchkit  # noqa: E402
import drawn_sets  # noqa: E402

TARGET_MS = 5.0


def _time(fn, items) -> list[float]:
    out = []
    for item in items:
        t0 = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t0) * 1000)
    return out


def _line(label: str, ms: list[float]) -> str:
    p95 = float(np.percentile(ms, 95))
    return f"{label:<48} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms   (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="saved model (default: the best one)")
    parser.add_argument("--runs", type=int, default=300, help="drawn digits timed (each a different one)")
    parser.add_argument("--keras", action="store_true",
                        help="also time Keras' eager call (imports TensorFlow)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="bench-inference-") as tmp:
        benchkit.private_env(Path(tmp))
        from core import inference, prediction, preprocess

        t0 = time.perf_counter()
        predictor = prediction.load(args.model)
        load_ms = (time.perf_counter() - t0) * 1000
        canvases, _ = drawn_sets.canvas_set(args.runs, seed=3)
        inputs = [preprocess.preprocess(c).centred for c in canvases]
        batches = [x[None].astype(np.float32) for x in inputs]
        # Warm up every path once (first-call allocations, the interpreter's tensors) before timing.
        inference.read_digit(predictor, canvases[0])
        predictor.runtime.predict_proba(batches[0])

        print(f"model: {predictor.name} ({predictor.meta.get('arch')}), served by "
              f"{type(predictor.runtime).__module__}; prediction.load {load_ms:.0f} ms; "
              f"{benchkit.machine_line()}")
        ours = _time(lambda c: inference.read_digit(predictor, c), canvases)
        print(_line("read_digit: canvas RGBA -> probabilities", ours))
        print(_line("  preprocessing only (preprocess.preprocess)", _time(preprocess.preprocess, canvases)))
        print(_line("  model only (predictor.predict_proba, 1 image)",
                    _time(lambda x: predictor.predict_proba(x[None]), inputs)))
        bare = _time(predictor.runtime.predict_proba, batches)
        print(_line("  LiteRT runtime alone (1 image, float32)", bare))
        median = statistics.median(ours)
        verdict = "met" if median <= TARGET_MS else "MISSED"
        print(f"target: read_digit median {median:.2f} ms <= {TARGET_MS:g} ms: {verdict}")
        if args.keras:
            from core import cli, registry

            cli.load_tensorflow()
            model = registry.load_keras(predictor.name)
            model(batches[0], training=False)
            eager = _time(lambda x: model(x, training=False), batches)
            print(_line("for comparison: Keras eager model(x, training=False)", eager))
        print(f"end: {benchkit.machine_line()}")


if __name__ == "__main__":
    main()
