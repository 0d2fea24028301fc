"""`python -m core ...`: the studio's work without a browser (notebooks, servers, CI).

Each command parses its arguments, calls the same `core` functions the pages use, and prints. The
commands live with their kin: `cli_train` (train, finetune, ensemble, probe), `cli_models`
(models, runs, architectures, delete, export, import, convert) and `cli_predict` (predict,
predict-image, evaluate); `cli_common` holds what they share. Bad input ends with one line on
stderr and exit code 2; no traceback.
"""

from __future__ import annotations

import argparse
import sys

from core import cli_models, cli_predict, cli_train
from core.cli_common import load_tensorflow as load_tensorflow  # benchmarks/ call it from here
from core.cli_common import quiet_tensorflow_env

# Each command adds its own parser; this order is the order of `python -m core --help`.
COMMANDS = (
    cli_train.add_train,
    cli_train.add_finetune,
    cli_models.add_convert,
    cli_models.add_runs,
    cli_models.add_delete,
    cli_models.add_export,
    cli_models.add_import,
    cli_train.add_ensemble,
    cli_predict.add_predict,
    cli_predict.add_predict_image,
    cli_predict.add_evaluate,
    cli_train.add_probe,
    cli_models.add_models,
    cli_models.add_architectures,
)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every command (each `args.func` is the command to run)."""
    parser = argparse.ArgumentParser(prog="python -m core", description="Digit Recognizer Studio")
    sub = parser.add_subparsers(dest="command", required=True)
    for add in COMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one command; its exit code (2, with one line on stderr, for bad input)."""
    quiet_tensorflow_env()
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
