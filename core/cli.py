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
import signal
import sys
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from core import data, models, registry

# TensorFlow's start-up chatter, none of it for a user: C++ log lines ("I0000 00:00:... port.cc:153]
# oneDNN custom operations are on ..."), absl's notice that logging is not set up yet, and the CPU
# feature advice. TensorFlow 2.21 writes the first two even with TF_CPP_MIN_LOG_LEVEL set.
TF_NOISE = re.compile(
    r"^(WARNING: All log messages before absl::InitializeLog\(\) is called"
    r"|[IW]\d{4} [\d:.]+\s+\d+ \S+:\d+\] "
    r"|To enable the following instructions: .* rebuild TensorFlow"
    r"|This TensorFlow binary is optimized to use available CPU instructions"
    r"|INFO: Created TensorFlow Lite XNNPACK delegate for CPU)"
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


def _data_path(arg: str | None) -> Path:
    """The file `--data` names, or the one `data.load_train()` reads (data/ or the sample)."""
    if arg is not None:
        return Path(arg)
    found = data.find_data()
    if found.train is None:
        raise ValueError("no training data: put train.csv in data/ or pass --data")
    return found.train


def _config(args: argparse.Namespace):
    from core.training import TrainConfig

    return TrainConfig(
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        optimizer=args.optimizer, schedule=args.schedule,
        augment=None if args.augment is None else args.augment == "on",
        augment_strength=args.augment_strength, val_fraction=args.val_fraction, seed=args.seed,
        name=args.name, n_estimators=args.n_estimators, label_smoothing=args.label_smoothing,
        patience=args.patience,
    ).validate()


def _run_in_foreground(name: str, *, quiet: bool, tracebacks: bool = False) -> int:
    """Run a queued run here, one line per epoch on stderr, the result as JSON on stdout. The
    first Ctrl-C asks the run to stop after this batch (its best epoch is kept)."""
    from core import job_process, runs

    def ask_to_stop(signum, frame) -> None:
        print("\nstopping after this batch: keeping the best epoch so far…", file=sys.stderr, flush=True)
        runs.request_stop(name)
        signal.signal(signal.SIGINT, signal.default_int_handler)  # a second Ctrl-C ends it at once

    if registry.kind_of(registry.read_meta(name)) != registry.SKLEARN:
        load_tensorflow()
    def echo(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    previous = signal.signal(signal.SIGINT, ask_to_stop)
    try:
        result = job_process.run(name, tracebacks=tracebacks, echo=None if quiet else echo)
    finally:
        signal.signal(signal.SIGINT, previous)
    meta = registry.read_meta(name)
    if result is None:
        print(f"error: {meta.get('error') or meta.get('note') or 'nothing was saved'}", file=sys.stderr)
        return 1
    print(json.dumps(result))
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from core import jobs

    if args.run:  # a run the web app queued: its process, with its output in the run's job.log
        return _run_in_foreground(registry.validate_name(args.run), quiet=False, tracebacks=True)
    if args.continue_run:
        return _continue(args)
    config = _config(args)
    path = _data_path(args.data)
    train = _dataset(str(path), labelled=True)  # a bad file stops here, before any folder is made
    taught = data.load_user_digits() if args.user_digits else None
    ref, n_taught = jobs.DataRef.of(train, path), taught.n if taught is not None else 0
    seeds = _seeds(args.seeds) if args.seeds else [args.seed]
    names, code = [], 0
    for seed in seeds:  # one run per seed, one after another, all on the same validation split
        named = config.name if len(seeds) == 1 or not config.name else f"{config.name}-s{seed}"
        one = replace(config, seed=seed, name=named, split_seed=seeds[0] if len(seeds) > 1 else None)
        name = jobs.enqueue(one, ref, owner="cli", user_digits=n_taught)
        if not args.quiet:
            print(f"training {name} ({args.arch}) on {train.name}: {train.n} digits", file=sys.stderr,
                  flush=True)
        code = max(code, _run_in_foreground(name, quiet=args.quiet))
        names.append(name)
    if args.ensemble and code == 0:
        combined = jobs.enqueue(replace(config, name=config.name or f"{names[0]}-ensemble"), ref, owner="cli",
                                job={"kind": jobs.ENSEMBLE, "members": names})
        code = _run_in_foreground(combined, quiet=args.quiet)
    return code


def _seeds(text: str) -> list[int]:
    try:
        seeds = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise ValueError(f"--seeds wants whole numbers separated by commas, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"--seeds wants different seeds, got {text!r}")
    return seeds


def _continue(args: argparse.Namespace) -> int:
    """`train --continue NAME --epochs N`: N more epochs for an ended run, its history going on."""
    from core import jobs

    name = registry.validate_name(args.continue_run)
    meta = registry.read_meta(name)
    if registry.kind_of(meta) != registry.KERAS or meta.get("finetuned_from"):
        raise ValueError(f"{name} is not a Keras training run: only those can be continued")
    if not args.epochs:
        raise ValueError("say how many more epochs: --epochs N")
    jobs.requeue(name, {"kind": jobs.CONTINUE, "epochs": int(args.epochs)}, owner="cli", start=False)
    return _run_in_foreground(name, quiet=args.quiet)


def cmd_finetune(args: argparse.Namespace) -> int:
    from core import finetune, jobs
    from core.training import TrainConfig

    base = registry.resolve_name(args.base)
    meta = registry.read_meta(base)
    taught = data.load_user_digits()
    if taught is None or taught.n == 0:
        raise ValueError("no taught digits yet: save a few corrected drawings on the Draw page first")
    path = _data_path(None)
    train = _dataset(str(path), labelled=True)
    config = TrainConfig(arch=meta.get("arch", "dr-cnn"), name=args.name or finetune.taught_name(base))
    name = jobs.enqueue(config, jobs.DataRef.of(train, path), owner="cli", user_digits=taught.n,
                        job={"kind": jobs.FINETUNE, "base": base})
    return _run_in_foreground(name, quiet=args.quiet)


def cmd_convert(args: argparse.Namespace) -> int:
    """Make (or check) the LiteRT serving copy of saved Keras models."""
    from core import serving

    served = [m.name for m in registry.list_models() if m.kind != registry.SKLEARN]
    names = [args.name] if args.name else served
    for name in names:
        folder = registry.model_dir(registry.resolve_name(name))
        with _export_lock(name):
            if serving.is_current(folder) and not args.force:
                print(json.dumps({"name": name, "exported": False, "reason": "already current"}))
                continue
            load_tensorflow()
            digest = serving.file_digest(folder / registry.KERAS_FILE)
            model = registry.load_keras(name)
            if serving.file_digest(folder / registry.KERAS_FILE) != digest:
                raise ValueError(f"{name}: model.keras changed while it was read (a run saving?): try again")
            serving.export(model, folder)
            print(json.dumps({"name": name, "exported": True}))
    return 0


def cmd_probe(args: argparse.Namespace) -> int:
    """Time a few training steps of an architecture here; remembered for the Train page's estimate."""
    from core import speed
    from core.training import TrainConfig

    config = TrainConfig(arch=args.arch, batch_size=args.batch_size,
                         augment=None if args.augment is None else args.augment == "on").validate()
    settings = config.resolved()
    if models.get_architecture(args.arch).kind != models.KERAS:
        raise ValueError(f"{args.arch} is not a Keras model: there are no training steps to time")
    load_tensorflow()
    result = speed.probe(settings)
    speed.remember(settings, result)
    print(json.dumps({"arch": args.arch, "batch_size": settings["batch_size"], **result}))
    return 0


@contextlib.contextmanager
def _export_lock(name: str) -> Iterator[None]:
    """One export of a model at a time, across processes (a second waits, then finds it current)."""
    import fcntl

    folder = data.paths.cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.export.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def cmd_models(args: argparse.Namespace) -> int:
    from core import runs

    for info in registry.list_models():
        print(json.dumps(runs.summary(runs.read_run(info.name))))
    return 0


def cmd_runs(args: argparse.Namespace) -> int:
    """Every run, newest first, damaged ones included (with their problems)."""
    from core import runs

    for view in runs.list_runs():
        print(json.dumps(runs.summary(view)))
    return 0


def cmd_delete(args: argparse.Namespace) -> int:
    from core import manage

    for line in manage.delete(registry.validate_name(args.name)):
        print(line, file=sys.stderr)
    print(json.dumps({"deleted": args.name}))
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    """A saved model as one file (model, meta.json, history.csv) to take away."""
    from core import archive

    out = Path(args.out or f"{args.name}.zip")
    data.paths.write_atomic(out, archive.export_bytes(registry.validate_name(args.name)))
    print(json.dumps({"name": args.name, "out": str(out)}))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from core import archive

    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = archive.import_model(path.read_bytes(), source=path.name, name=args.name)
    print(json.dumps({"name": name}))
    return 0


def cmd_ensemble(args: argparse.Namespace) -> int:
    """Combine saved runs into one ensemble model (their probabilities averaged)."""
    from core import ensembles, jobs
    from core.training import TrainConfig

    members = [registry.validate_name(m.strip()) for m in args.members.split(",") if m.strip()]
    metas = ensembles.check_members(members)
    path = Path((metas[0].get("data") or {}).get("path") or _data_path(None))
    train = _dataset(str(path), labelled=True)
    config = TrainConfig(arch=metas[0].get("arch", models.DEFAULT_ARCH),
                         name=args.name or f"{members[0]}-ensemble")
    name = jobs.enqueue(config, jobs.DataRef.of(train, path), owner="cli",
                        job={"kind": jobs.ENSEMBLE, "members": members})
    return _run_in_foreground(name, quiet=args.quiet)


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

    with _filtered_stderr():  # nothing streams here: LiteRT's start-up notice is filtered out
        result = submission.predict_to_file(Path(args.test), model_names=args.model or None,
                                            out=Path(args.out), tta=args.tta,
                                            allow_leakage=args.allow_leakage)
    print(json.dumps(result))
    return 0


def cmd_predict_image(args: argparse.Namespace) -> int:
    from core import inference, prediction

    with _filtered_stderr():
        model = prediction.load(args.model)
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
    from core import evaluation, prediction

    ds = _dataset(args.data, labelled=True)
    with _filtered_stderr():
        model = prediction.load(args.model)
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
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--patience", type=int, help="stop after N epochs without a better validation accuracy")
    p.add_argument("--seeds", help="one run per seed, e.g. 0,1,2 (same validation split)")
    p.add_argument("--ensemble", action="store_true", help="with --seeds: combine the runs into one model")
    p.add_argument("--continue", dest="continue_run", metavar="NAME",
                   help="N more epochs (--epochs N) for an ended run, its history going on")
    p.add_argument("--run", help=argparse.SUPPRESS)  # run a run the web app queued (its job process)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("finetune", help="teach a saved Keras model the digits taught on the Draw page")
    p.add_argument("base", nargs="?", help="the model to teach (default: the best saved model)")
    p.add_argument("--name", help="name of the new model (default: BASE-taught)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_finetune)

    p = sub.add_parser("convert", help="make the serving copy (model.tflite) of saved Keras models")
    p.add_argument("name", nargs="?", help="one model (default: every saved Keras model)")
    p.add_argument("--force", action="store_true", help="make it again even if it is current")
    p.set_defaults(func=cmd_convert)

    p = sub.add_parser("runs", help="every run (any status), one JSON object per line")
    p.set_defaults(func=cmd_runs)

    p = sub.add_parser("delete", help="delete a saved run (the shipped model is protected)")
    p.add_argument("name")
    p.set_defaults(func=cmd_delete)

    p = sub.add_parser("export", help="a saved model as one .zip file (model, meta.json, history.csv)")
    p.add_argument("name")
    p.add_argument("--out", help="the file to write (default: NAME.zip)")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("import", help="bring back a model exported as a .zip (checked against its manifest)")
    p.add_argument("file")
    p.add_argument("--name", help="save it under this name (default: its own, or NAME-2…)")
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("ensemble", help="combine saved runs into one model (probabilities averaged)")
    p.add_argument("--members", required=True, help="comma-separated model names (2 or more)")
    p.add_argument("--name", help="the ensemble's name (default: FIRST-ensemble)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_ensemble)

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

    p = sub.add_parser("probe", help="time a few training steps here (the Train page's time estimate)")
    p.add_argument("--arch", default=models.DEFAULT_ARCH, choices=list(models.ARCHITECTURES))
    p.add_argument("--batch-size", type=int)
    p.add_argument("--augment", choices=["on", "off"])
    p.set_defaults(func=cmd_probe)

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
