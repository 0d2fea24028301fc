"""The prediction commands of `python -m core`: predict (a test file to a Kaggle submission),
predict-image (digits in picture files) and evaluate (metrics on labelled data)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from core import cli_common as common


def cmd_predict(args: argparse.Namespace) -> int:
    """Predict a test file and write a Kaggle submission with its sidecar; a summary as JSON."""
    from core import submission

    with common.filtered_stderr():  # nothing streams here: LiteRT's start-up notice is filtered out
        result = submission.predict_to_file(Path(args.test), model_names=args.model or None,
                                            out=Path(args.out), tta=args.tta,
                                            allow_leakage=args.allow_leakage)
    print(json.dumps(result))
    return 0


def cmd_predict_image(args: argparse.Namespace) -> int:
    """Read the digit in each picture: one JSON line per file (exit 2 if any could not be read)."""
    from core import inference, prediction

    with common.filtered_stderr():
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
    """Metrics of a model on the labelled digits it never trained on, as JSON."""
    from core import evaluation, prediction

    ds = common.dataset(args.data, labelled=True)
    with common.filtered_stderr():
        model = prediction.load(args.model)
    print(json.dumps(evaluation.evaluate_model(model, ds, tta=args.tta)))
    return 0


# --------------------------------------------------------------------------- their arguments


def add_predict(sub: argparse._SubParsersAction) -> None:
    """`predict`: a test file to submission.csv and its sidecar."""
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


def add_predict_image(sub: argparse._SubParsersAction) -> None:
    """`predict-image`: one JSON line per picture."""
    p = sub.add_parser("predict-image", help="read digits from image files; one JSON line each")
    p.add_argument("images", nargs="+")
    p.add_argument("--model")
    p.set_defaults(func=cmd_predict_image)


def add_evaluate(sub: argparse._SubParsersAction) -> None:
    """`evaluate`: JSON metrics of a model on labelled data."""
    p = sub.add_parser("evaluate", help="metrics of a model on a labelled CSV, as JSON")
    p.add_argument("--data", required=True)
    p.add_argument("--model")
    p.add_argument("--tta", action="store_true",
                   help="test-time augmentation: average each digit over a few rotated views, as Submit can")
    p.set_defaults(func=cmd_evaluate)
