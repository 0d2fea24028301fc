"""The saved-model commands of `python -m core`: list them (models, runs, architectures), delete,
export and import one, and make their LiteRT serving copies (convert)."""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from core import cli_common as common
from core import data, models, registry


def cmd_models(args: argparse.Namespace) -> int:
    """The saved models (best first), one JSON object per line."""
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
    """Delete a saved run (what was removed on stderr, the name as JSON on stdout)."""
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
    """Bring back a model exported as a .zip, checked against its manifest."""
    from core import archive

    path = Path(args.file)
    if not path.is_file():
        raise ValueError(f"{path}: no such file")
    name = archive.import_model(path.read_bytes(), source=path.name, name=args.name)
    print(json.dumps({"name": name}))
    return 0


def cmd_architectures(args: argparse.Namespace) -> int:
    """Every architecture `train --arch` accepts, with its default settings, as JSON lines."""
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
            common.load_tensorflow()
            digest = serving.file_digest(folder / registry.KERAS_FILE)
            model = registry.load_keras(name)
            if serving.file_digest(folder / registry.KERAS_FILE) != digest:
                raise ValueError(f"{name}: model.keras changed while it was read (a run saving?): try again")
            serving.export(model, folder)
            print(json.dumps({"name": name, "exported": True}))
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


# --------------------------------------------------------------------------- their arguments


def add_convert(sub: argparse._SubParsersAction) -> None:
    """`convert`: the serving copy (model.tflite) of saved Keras models."""
    p = sub.add_parser("convert", help="make the serving copy (model.tflite) of saved Keras models")
    p.add_argument("name", nargs="?", help="one model (default: every saved Keras model)")
    p.add_argument("--force", action="store_true", help="make it again even if it is current")
    p.set_defaults(func=cmd_convert)


def add_runs(sub: argparse._SubParsersAction) -> None:
    """`runs`: every run, one JSON object per line."""
    p = sub.add_parser("runs", help="every run (any status), one JSON object per line")
    p.set_defaults(func=cmd_runs)


def add_delete(sub: argparse._SubParsersAction) -> None:
    """`delete`: a saved run, by name."""
    p = sub.add_parser("delete", help="delete a saved run (the shipped model is protected)")
    p.add_argument("name")
    p.set_defaults(func=cmd_delete)


def add_export(sub: argparse._SubParsersAction) -> None:
    """`export`: a saved model as one .zip file."""
    p = sub.add_parser("export", help="a saved model as one .zip file (model, meta.json, history.csv)")
    p.add_argument("name")
    p.add_argument("--out", help="the file to write (default: NAME.zip)")
    p.set_defaults(func=cmd_export)


def add_import(sub: argparse._SubParsersAction) -> None:
    """`import`: a model exported as a .zip."""
    p = sub.add_parser("import", help="bring back a model exported as a .zip (checked against its manifest)")
    p.add_argument("file")
    p.add_argument("--name", help="save it under this name (default: its own, or NAME-2…)")
    p.set_defaults(func=cmd_import)


def add_models(sub: argparse._SubParsersAction) -> None:
    """`models`: the saved models, one JSON object per line."""
    sub.add_parser("models", help="saved models, one JSON object per line").set_defaults(func=cmd_models)


def add_architectures(sub: argparse._SubParsersAction) -> None:
    """`architectures`: what `train --arch` accepts."""
    sub.add_parser("architectures", help="available architectures").set_defaults(func=cmd_architectures)
