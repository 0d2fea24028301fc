"""What the `python -m core` commands share: TensorFlow kept quiet, the data a command names, and
a queued run run here in the foreground."""

from __future__ import annotations

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
from pathlib import Path

from core import data, registry

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
def filtered_stderr(noise: re.Pattern = TF_NOISE) -> Iterator[None]:
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
    with filtered_stderr():
        import keras  # noqa: F401
        import tensorflow  # noqa: F401


# --------------------------------------------------------------------------- the data a command names


def dataset(path: str | None, *, labelled: bool) -> data.Dataset:
    """The labelled (or test) set of a CSV, csv.gz or Kaggle zip; the studio's own when None."""
    if path is None:
        return data.load_train() if labelled else data.load_test()
    p = Path(path)
    if p.suffix == ".zip":
        train, test = data.load_zip(p)
        return train if labelled else test
    return data.load_csv(p, expect_labels=labelled, source_kind=source_of(p))


def source_of(path: Path) -> str:
    """Where a file's digits come from (`data.SOURCE_*`), recorded with a model trained on it."""
    sample = data.paths.sample_dir().resolve()
    if path.resolve().parent == sample:
        return data.SOURCE_SAMPLE
    if path.name.startswith("mnist-full"):
        return data.SOURCE_MNIST
    if path.name.startswith("user_digits"):
        return data.SOURCE_USER
    return data.SOURCE_KAGGLE


def data_path(arg: str | None) -> Path:
    """The file `--data` names, or the one `data.load_train()` reads (data/ or the sample)."""
    if arg is not None:
        return Path(arg)
    found = data.find_data()
    if found.train is None:
        raise ValueError("no training data: put train.csv in data/ or pass --data")
    return found.train


# --------------------------------------------------------------------------- a run, here


def run_in_foreground(name: str, *, quiet: bool, tracebacks: bool = False) -> int:
    """Run a queued run here, one line per epoch on stderr, the result as JSON on stdout. The
    first Ctrl-C asks the run to stop after this batch (its best epoch is kept). A run the web app
    started (`tracebacks`) writes a failure's whole traceback to its log; a person gets one line."""
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

