"""The training commands of `python -m core`: train (several seeds, an ensemble of them, or more
epochs for an ended run), finetune, ensemble, and probe (the Train page's time estimate).

Each run is queued like the web app's, then run here in the foreground (`cli_common`).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from core import cli_common as common
from core import data, models, registry


def _config(args: argparse.Namespace):
    """The run's settings from `train`'s arguments, checked (ValueError names a bad one)."""
    from core.training import TrainConfig

    return TrainConfig(
        arch=args.arch, epochs=args.epochs, batch_size=args.batch_size, learning_rate=args.lr,
        optimizer=args.optimizer, schedule=args.schedule,
        augment=None if args.augment is None else args.augment == "on",
        augment_strength=args.augment_strength, val_fraction=args.val_fraction, seed=args.seed,
        name=args.name, n_estimators=args.n_estimators, label_smoothing=args.label_smoothing,
        ema=args.ema, patience=args.patience, checkpoint=args.checkpoint, teacher=args.teacher,
        distill_copies=args.distill_copies,
        distill_alpha=args.distill_alpha, distill_temperature=args.distill_temperature,
    ).validate()


def cmd_train(args: argparse.Namespace) -> int:
    """Queue and run a training run (one per seed, then their ensemble if asked) here."""
    from core import jobs

    if args.run:  # a run the web app queued: its process, with its output in the run's job.log
        return common.run_in_foreground(registry.validate_name(args.run), quiet=False, tracebacks=True)
    if args.continue_run:
        return _continue(args)
    config = _config(args)
    path = common.data_path(args.data)
    train = common.dataset(str(path), labelled=True)  # a bad file stops here, before any folder is made
    config, note = config.with_teacher_split(train.fingerprint, train.name)
    if note and not args.quiet:
        print(f"note: {note}", file=sys.stderr)
    taught = data.load_user_digits() if args.user_digits else None
    ref, n_taught = jobs.DataRef.of(train, path), taught.n if taught is not None else 0
    seeds = _seeds(args.seeds) if args.seeds else [args.seed]
    names, code = [], 0
    for seed in seeds:  # one run per seed, one after another, all on the same validation split
        named = config.name if len(seeds) == 1 or not config.name else f"{config.name}-s{seed}"
        shared = config.split_seed if config.split_seed is not None else seeds[0] if len(seeds) > 1 else None
        one = replace(config, seed=seed, name=named, split_seed=shared)
        name = jobs.enqueue(one, ref, owner="cli", user_digits=n_taught)
        if not args.quiet:
            print(f"training {name} ({args.arch}) on {train.name}: {train.n} digits", file=sys.stderr,
                  flush=True)
        code = max(code, common.run_in_foreground(name, quiet=args.quiet))
        names.append(name)
    if args.ensemble and code == 0:
        combined = jobs.enqueue(replace(config, name=config.name or f"{names[0]}-ensemble"), ref, owner="cli",
                                job={"kind": jobs.ENSEMBLE, "members": names})
        code = common.run_in_foreground(combined, quiet=args.quiet)
    return code


def _seeds(text: str) -> list[int]:
    """`--seeds 0,1,2` as different whole numbers."""
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
    return common.run_in_foreground(name, quiet=args.quiet)


def cmd_finetune(args: argparse.Namespace) -> int:
    """Teach a saved Keras model the digits taught on the Draw page; saved as a new model."""
    from core import finetune, jobs
    from core.training import TrainConfig

    base = registry.resolve_name(args.base)
    meta = registry.read_meta(base)
    taught = data.load_user_digits()
    if taught is None or taught.n == 0:
        raise ValueError("no taught digits yet: save a few corrected drawings on the Draw page first")
    path = common.data_path(None)
    train = common.dataset(str(path), labelled=True)
    config = TrainConfig(arch=meta.get("arch", models.DEFAULT_ARCH),
                         name=args.name or finetune.taught_name(base))
    name = jobs.enqueue(config, jobs.DataRef.of(train, path), owner="cli", user_digits=taught.n,
                        job={"kind": jobs.FINETUNE, "base": base})
    return common.run_in_foreground(name, quiet=args.quiet)


def cmd_ensemble(args: argparse.Namespace) -> int:
    """Combine saved runs into one ensemble model (their probabilities averaged)."""
    from core import ensembles, jobs
    from core.training import TrainConfig

    members = [registry.validate_name(m.strip()) for m in args.members.split(",") if m.strip()]
    metas = ensembles.check_members(members)
    path = Path((metas[0].get("data") or {}).get("path") or common.data_path(None))
    train = common.dataset(str(path), labelled=True)
    config = TrainConfig(arch=metas[0].get("arch", models.DEFAULT_ARCH),
                         name=args.name or f"{members[0]}-ensemble")
    name = jobs.enqueue(config, jobs.DataRef.of(train, path), owner="cli",
                        job={"kind": jobs.ENSEMBLE, "members": members})
    return common.run_in_foreground(name, quiet=args.quiet)


def cmd_probe(args: argparse.Namespace) -> int:
    """Time a few training steps of an architecture here; remembered for the Train page's estimate."""
    from core import speed
    from core.training import TrainConfig

    config = TrainConfig(arch=args.arch, batch_size=args.batch_size,
                         augment=None if args.augment is None else args.augment == "on").validate()
    settings = config.resolved()
    if models.get_architecture(args.arch).kind != models.KERAS:
        raise ValueError(f"{args.arch} is not a Keras model: there are no training steps to time")
    common.load_tensorflow()
    result = speed.probe(settings)
    speed.remember(settings, result)
    print(json.dumps({"arch": args.arch, "batch_size": settings["batch_size"], **result}))
    return 0


# --------------------------------------------------------------------------- their arguments


def add_train(sub: argparse._SubParsersAction) -> None:
    """`train`: a new run (or several seeds, or more epochs for an ended one)."""
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
    p.add_argument("--ema", type=float, metavar="MOMENTUM",
                   help="weight averaging: keep a moving average of the weights (e.g. 0.999 a step) and "
                        "end each epoch on it, so the checkpoint is the averaged model")
    p.add_argument("--val-fraction", type=float, default=0.1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", help="model name (letters, digits, _ . -)")
    p.add_argument("--n-estimators", type=int, help="trees (random-forest)")
    p.add_argument("--user-digits", action="store_true", help="add data/user_digits.csv to training")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--patience", type=int, help="stop after N epochs without a better validation accuracy")
    p.add_argument("--checkpoint", choices=["best", "last"],
                   help="the epoch kept: the best on validation, or the last (a schedule that anneals to "
                        "its end); the architecture's own rule by default")
    p.add_argument("--seeds", help="one run per seed, e.g. 0,1,2 (same validation split)")
    p.add_argument("--ensemble", action="store_true", help="with --seeds: combine the runs into one model")
    p.add_argument("--teacher", metavar="NAME",
                   help="learn from this saved model's probabilities too (distillation; e.g. an ensemble): "
                        "each digit and warped copies of it, labelled once by the teacher; 8 epochs unless "
                        "--epochs says")
    p.add_argument("--distill-copies", type=int, help="with --teacher: warped copies of each digit (12)")
    p.add_argument("--distill-alpha", type=float, help="with --teacher: its share of the loss (0.9)")
    p.add_argument("--distill-temperature", type=float, help="with --teacher: softening temperature (2)")
    p.add_argument("--continue", dest="continue_run", metavar="NAME",
                   help="N more epochs (--epochs N) for an ended run, its history going on")
    p.add_argument("--run", help=argparse.SUPPRESS)  # run a run the web app queued (its job process)
    p.set_defaults(func=cmd_train)


def add_finetune(sub: argparse._SubParsersAction) -> None:
    """`finetune`: teach a saved model the digits taught on the Draw page."""
    p = sub.add_parser("finetune", help="teach a saved Keras model the digits taught on the Draw page")
    p.add_argument("base", nargs="?", help="the model to teach (default: the best saved model)")
    p.add_argument("--name", help="name of the new model (default: BASE-taught)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_finetune)


def add_ensemble(sub: argparse._SubParsersAction) -> None:
    """`ensemble`: saved runs combined into one model."""
    p = sub.add_parser("ensemble", help="combine saved runs into one model (probabilities averaged)")
    p.add_argument("--members", required=True, help="comma-separated model names (2 or more)")
    p.add_argument("--name", help="the ensemble's name (default: FIRST-ensemble)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_ensemble)


def add_probe(sub: argparse._SubParsersAction) -> None:
    """`probe`: a few timed training steps of an architecture."""
    p = sub.add_parser("probe", help="time a few training steps here (the Train page's time estimate)")
    p.add_argument("--arch", default=models.DEFAULT_ARCH, choices=list(models.ARCHITECTURES))
    p.add_argument("--batch-size", type=int)
    p.add_argument("--augment", choices=["on", "off"])
    p.set_defaults(func=cmd_probe)
