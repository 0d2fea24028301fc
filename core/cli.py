"""`python -m core ...`: the studio's work without a browser (notebooks, servers, CI).

Each command parses its arguments, calls the same `core` functions the pages use, and prints.
Bad input ends with one line on stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

from core import data, models, registry

# TensorFlow's start-up chatter, none of it for a user: C++ log lines ("I0000 00:00:... port.cc:153]
# oneDNN custom operations are on ..."), absl's notice that logging is not set up yet, and the CPU
# feature advice. TensorFlow 2.21 writes the first two even with TF_CPP_MIN_LOG_LEVEL set.
TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|This TensorFlow binary is optimized to use available CPU instructions)"
)


def quiet_tensorflow_env() -> None:
    """Ask TensorFlow, Keras and absl for errors only. Must run before TensorFlow is imported; it
    imports nothing itself (commands that need no model never load TensorFlow)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # C++ logs: warnings and errors only
    for name in ("tensorflow", "absl", "keras", "h5py"):
        logging.getLogger(name).setLevel(logging.ERROR)
    for category in (DeprecationWarning, PendingDeprecationWarning, FutureWarning):
        warnings.filterwarnings("ignore", category=category,
                                module=r"(tensorflow|keras|tf_keras|absl|google\.protobuf|h5py)(\.|$)")


@contextlib.contextmanager
def _filtered_stderr(noise: re.Pattern = TF_NOISE) -> Iterator[None]:
    """Send file descriptor 2 (what C++ code writes to) to a temporary file for the block, then
    pass on every line that is not `noise`. Python's own `sys.stderr` writes are caught as well."""
    sys.stderr.flush()
    try:
        saved = os.dup(2)
    except OSError:  # no stderr at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [ln for ln in tmp.read().decode(errors="replace").splitlines(True) if not noise.match(ln)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()


def load_tensorflow() -> None:
    """Import TensorFlow and Keras now, with their import-time chatter filtered out of stderr.
    Called only by commands about to use a Keras model, before any other code imports them."""
    if "tensorflow" in sys.modules:
        return
    quiet_tensorflow_env()
    with _filtered_stderr():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


def _needs_keras(names: list[str | None]) -> bool:
    """Whether any of these saved models (None: the best one) is a Keras model. Unknown names are
    left for the command itself to refuse, with its own message."""
    for name in names:
        try:
            if registry.read_meta(registry.resolve_name(name)).get("kind", "keras") == "keras":
                return True
        except ValueError:
            continue
    return False


def _dataset(path: str | None, *, labelled: bool) -> data.Dataset:
    if path is None:
        return data.load_train() if labelled else data.load_test()
    p = Path(path)
    if p.suffix == ".zip":
        train, test = data.load_zip(p)
        return train if labelled else test
    return data.load_csv(p, expect_labels=labelled, source_kind=_source_of(p))


def _source_of(path: Path) -> str:
    sample = data.paths.sample_dir().resolve()
    if path.resolve().parent == sample:
        return data.SOURCE_SAMPLE
    if path.name.startswith("mnist-full"):
        return data.SOURCE_MNIST
    if path.name.startswith("user_digits"):
        return data.SOURCE_USER
    return data.SOURCE_KAGGLE


def _progress_bar(snap, width: int = 30) -> str:
    filled = int(snap.progress * width)
    eta = f" ETA {snap.eta_s:5.0f}s" if snap.eta_s is not None else ""
    last = snap.history[-1] if snap.history else {}
    val = f" val_acc {last['val_accuracy']:.4f}" if last.get("val_accuracy") is not None else ""
    ips = f" {snap.images_per_s:6.0f} img/s" if snap.images_per_s else ""
    return f"\r[{'#' * filled}{'.' * (width - filled)}] {snap.progress:6.1%} {snap.message}{val}{ips}{eta}   "


def _epoch_line(row: dict, epochs: int) -> str:
    """One plain line for a finished epoch (logs, CI, a pipe): no carriage returns, no bar."""
    parts = [f"{key} {row[key]:.4f}" for key in ("loss", "accuracy", "val_loss", "val_accuracy")
             if row.get(key) is not None]
    took = f" ({row['time_s']:.1f} s)" if row.get("time_s") is not None else ""
    return f"epoch {int(row['epoch'])}/{epochs}: {', '.join(parts)}{took}"


def cmd_train(args: argparse.Namespace) -> int:
    from core import training

    train = _dataset(args.data, labelled=True)
    extra = data.load_user_digits() if args.user_digits else None
    config = training.TrainConfig(
        arch=args.arch,
        epochs=args.epochs,
        batch_size=args.batch_size,
        learning_rate=args.lr,
        optimizer=args.optimizer,
        schedule=args.schedule,
        augment=None if args.augment is None else args.augment == "on",
        augment_strength=args.augment_strength,
        val_fraction=args.val_fraction,
        seed=args.seed,
        name=args.name,
        n_estimators=args.n_estimators,
        label_smoothing=args.label_smoothing,
    )
    job = training.TrainingJob(config, train, owner="cli", extra=extra)
    if models.get_architecture(args.arch).kind == "keras":
        load_tensorflow()
    # A redrawn bar only on a terminal; in a log or a pipe, one plain line per finished epoch.
    bar = sys.stderr.isatty() and not args.quiet
    if not args.quiet:
        print(f"training {job.name} ({args.arch}) on {train.name}: {train.n} digits", file=sys.stderr)
    job.start()
    shown = 0  # epochs reported so far

    def report(snap) -> None:
        nonlocal shown
        if args.quiet:
            return
        if bar:
            print(_progress_bar(snap), end="", file=sys.stderr, flush=True)
            if snap.epoch > shown:
                print(file=sys.stderr)
        else:
            for row in snap.history[shown:snap.epoch]:
                print(_epoch_line(row, snap.epochs), file=sys.stderr, flush=True)
        shown = max(shown, snap.epoch)

    try:
        while job.running:
            time.sleep(0.5)
            report(job.snapshot())
    except KeyboardInterrupt:
        print("\nstopping: keeping the best epoch so far…", file=sys.stderr)
        job.stop()
    job.join()
    report(job.snapshot())  # epochs that ended after the last look
    if bar:
        print(file=sys.stderr)
    if job.error:
        print(f"error: {job.error}", file=sys.stderr)
        return 1
    if job.result is None:
        print(job.message, file=sys.stderr)
        return 1
    print(json.dumps(job.result))
    return 0


def cmd_models(args: argparse.Namespace) -> int:
    for info in registry.list_models():
        m = info.meta
        print(
            json.dumps(
                {
                    "name": info.name,
                    "arch": m.get("arch"),
                    "kind": info.kind,
                    "status": info.status,
                    "val_accuracy": info.val_accuracy,
                    "val_loss": (m.get("metrics") or {}).get("val_loss"),
                    "param_count": m.get("param_count"),
                    "data_source": info.data_source,
                    "data_fingerprint": (m.get("data") or {}).get("fingerprint"),
                    "training_time_s": m.get("training_time_s"),
                    "created_at": m.get("created_at"),
                }
            )
        )
    return 0


def cmd_architectures(args: argparse.Namespace) -> int:
    for arch in models.ARCHITECTURES.values():
        print(
            json.dumps(
                {
                    "name": arch.name,
                    "kind": arch.kind,
                    "description": arch.description,
                    "defaults": arch.defaults,
                }
            )
        )
    return 0


def cmd_predict(args: argparse.Namespace) -> int:
    from core import submission

    if _needs_keras(args.model or [None]):
        load_tensorflow()
    result = submission.predict_to_file(
        Path(args.test),
        model_names=args.model or None,
        out=Path(args.out),
        tta=args.tta,
        allow_leakage=args.allow_leakage,
    )
    print(json.dumps(result))
    return 0


def cmd_predict_image(args: argparse.Namespace) -> int:
    from core import inference

    if _needs_keras([args.model]):
        load_tensorflow()
    model = registry.load_model(args.model)
    failed = 0
    for file in args.images:
        try:
            record = inference.predict_image_file(model, Path(file))
        except ValueError as exc:
            # The JSON line keeps the output one record per file; stderr says what went wrong.
            print(json.dumps({"file": file, "error": str(exc)}), flush=True)
            print(f"error: {exc}", file=sys.stderr, flush=True)
            failed += 1
            continue
        print(json.dumps(record))
    return 2 if failed else 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    from core import evaluation

    ds = _dataset(args.data, labelled=True)
    if _needs_keras([args.model]):
        load_tensorflow()
    model = registry.load_model(args.model)
    print(json.dumps(evaluation.evaluate_model(model, ds)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m core", description="Digit Recognizer Studio")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a model and save it under models/")
    p.add_argument("--data", help="labelled CSV/zip (default: data/train.csv, else the sample)")
    p.add_argument("--arch", default=models.DEFAULT_ARCH, choices=list(models.ARCHITECTURES))
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float, help="peak learning rate")
    p.add_argument("--optimizer", choices=["adamw", "adam", "rmsprop", "sgd"])
    p.add_argument("--schedule", choices=["one-cycle", "cosine", "plateau", "constant"])
    p.add_argument("--augment", choices=["on", "off"])
    p.add_argument("--augment-strength", type=float)
    p.add_argument("--label-smoothing", type=float, default=0.0)
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="model name (letters, digits, _ . -)")
    p.add_argument("--n-estimators", type=int, help="trees (random-forest)")
    p.add_argument("--user-digits", action="store_true", help="add data/user_digits.csv to training")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("predict", help="predict a test CSV and write a Kaggle submission.csv")
    p.add_argument("--test", required=True)
    p.add_argument("--model", action="append", help="model name; repeat for an ensemble")
    p.add_argument("--out", default="submission.csv")
    p.add_argument("--tta", action="store_true", help="test-time augmentation")
    p.add_argument(
        "--allow-leakage",
        action="store_true",
        help="write even if a model saw test digits (recorded in the sidecar JSON)",
    )
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser("predict-image", help="read digits from image files; one JSON line each")
    p.add_argument("images", nargs="+")
    p.add_argument("--model")
    p.set_defaults(func=cmd_predict_image)

    p = sub.add_parser("evaluate", help="metrics of a model on a labelled CSV, as JSON")
    p.add_argument("--data", required=True)
    p.add_argument("--model")
    p.set_defaults(func=cmd_evaluate)

    sub.add_parser("models", help="saved models, one JSON object per line").set_defaults(func=cmd_models)
    sub.add_parser("architectures", help="available architectures").set_defaults(func=cmd_architectures)
    return parser


def main(argv: list[str] | None = None) -> int:
    quiet_tensorflow_env()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
