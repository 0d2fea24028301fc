"""How well does the whole path read digits as people draw them? Prints accuracy; asserts nothing.

Re-draws held-out digits (the committed sample's test file, which no model trains on) in two
ways (see `drawn_sets.py`) and reads each one exactly as the product does:

- canvas: 280x280 RGBA arrays through `inference.read_digit` (the Draw page's path);
- paper:  JPEG/PNG files written to a temporary folder, through `inference.predict_image_file`
          (the `python -m core predict-image` path);
- strokes: 50 template drawings of each digit (mouse-like shapes, not MNIST handwriting),
          through `inference.read_digit`.

Also prints the accuracy on the same digits as given (28x28, no preprocessing), as the ceiling
the redrawn sets are measured against. Goals: canvas >= 98%, paper >= 97%. The model is
`prediction.load(name)` (served by LiteRT, as the pages and the command line use it), read from
a private copy of `models/`.

    python benchmarks/bench_drawn.py [--model NAME] [--n 1000] [--no-strokes] [--show-errors]
"""

from __future__ import annotations

import argparse
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

from core import inference, prediction, preprocess  # noqa: E402


def _read_all(read, items) -> tuple[np.ndarray, int]:
    preds, blank = [], 0
    for item in items:
        try:
            preds.append(read(item))
        except preprocess.BlankImageError:
            preds.append(-1)
            blank += 1
    return np.array(preds), blank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="saved model (default: the best one)")
    parser.add_argument("--n", type=int, default=1000, help="digits per set (at most 1000)")
    parser.add_argument("--no-strokes", action="store_true", help="turn stroke-width normalisation off")
    parser.add_argument("--show-errors", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-drawn-") as tmp:
        benchkit.private_env(Path(tmp))
        run(args)


def run(args: argparse.Namespace) -> None:
    model = prediction.load(args.model)
    if args.no_strokes:
        original = preprocess.preprocess
        preprocess.preprocess = lambda src, **kw: original(src, **{**kw, "normalise_strokes": False})
    val = (model.meta.get("metrics") or {}).get("val_accuracy")
    print(f"model: {model.name} ({model.meta.get('arch')}, val_accuracy {val}); {benchkit.machine_line()}")

    digits, labels = drawn_sets.heldout_digits(args.n, seed=1)
    plain = model.predict_proba(digits)
    print(f"as given (28x28, no preprocessing): {np.mean(plain.argmax(1) == labels):.2%} of {len(labels)}")

    t0 = time.perf_counter()
    canvases, labels_c = drawn_sets.canvas_set(args.n)
    papers, labels_p = drawn_sets.paper_set(args.n)
    print(f"(built the sets in {time.perf_counter() - t0:.1f} s)")

    t0 = time.perf_counter()
    pred_c, blank_c = _read_all(lambda a: inference.read_digit(model, a)[1].label, canvases)
    t_c = time.perf_counter() - t0
    acc_c = float(np.mean(pred_c == labels_c))
    each = t_c / len(labels_c) * 1000
    print(f"canvas: {acc_c:.2%} of {len(labels_c)} ({blank_c} refused as blank; {each:.1f} ms each)")

    with tempfile.TemporaryDirectory() as tmp:
        files = []
        for i, payload in enumerate(papers):
            ext = "png" if payload.startswith(b"\x89PNG") else "jpg"
            f = Path(tmp) / f"paper-{i:04d}.{ext}"
            f.write_bytes(payload)
            files.append(f)
        t0 = time.perf_counter()
        pred_p, blank_p = _read_all(lambda f: inference.predict_image_file(model, f)["label"], files)
        t_p = time.perf_counter() - t0
    acc_p = float(np.mean(pred_p == labels_p))
    each = t_p / len(labels_p) * 1000
    print(f"paper:  {acc_p:.2%} of {len(labels_p)} ({blank_p} refused as blank; {each:.1f} ms each)")
    strokes, labels_s = drawn_sets.stroke_set()
    pred_s, blank_s = _read_all(lambda a: inference.read_digit(model, a)[1].label, strokes)
    acc_s = float(np.mean(pred_s == labels_s))
    print(f"strokes: {acc_s:.2%} of {len(labels_s)} ({blank_s} refused as blank)")
    if args.show_errors:
        for name, pred, lab in (("canvas", pred_c, labels_c), ("paper", pred_p, labels_p)):
            wrong = np.flatnonzero(pred != lab)
            shown = ", ".join(f"{i}:{lab[i]}->{pred[i]}" for i in wrong[:40])
            print(name, "errors (index: true->pred):", shown)


if __name__ == "__main__":
    main()
