"""Predict a test set and turn it into a Kaggle `submission.csv` that is valid the first time.

A test file goes through one pass (`predict_to_file`, what `python -m core predict` runs):
load -> leakage check (`core.leakage`) -> predict (one model or several, probabilities averaged,
optionally with test-time augmentation) -> build and validate the `ImageId,Label` file -> score
it when the answers are known -> write it with its sidecar and leaderboard line
(`core.submission_records`). The Submit page calls the same steps. Nothing here imports
Streamlit or TensorFlow.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from core import checks, data, paths, prediction, registry
from core import submission_records as records
from core.leakage import check_leakage, refuse_leakage

if TYPE_CHECKING:  # pandas only where a frame is asked for: `python -m core predict` never pays its import
    import pandas as pd

HEADER = ["ImageId", "Label"]


# --------------------------------------------------------------------------- prediction


@dataclass(frozen=True)
class Prediction:
    """Averaged class probabilities `(n, 10)` float32 of a test set, and how they were made."""

    probs: np.ndarray
    models: tuple[str, ...]
    tta: bool
    seconds: float

    @property
    def labels(self) -> np.ndarray:
        """Predicted digit per test image, `(n,) int64`."""
        return self.probs.argmax(axis=1).astype(np.int64)

    @property
    def confidence(self) -> np.ndarray:
        """Probability of the predicted digit, `(n,) float32`."""
        return self.probs.max(axis=1)


def predict(
    models: Sequence[Any],
    images: np.ndarray,
    *,
    tta: bool = False,
    progress: prediction.Progress | None = None,
) -> Prediction:
    """Class probabilities of test `images (n, 28, 28)` (0..255) averaged over `models` (anything with
    `predict_proba(images) -> (n, 10)` and a `name`) and, with `tta`, over `prediction.TTA_VIEWS`.

    Every model and view weighs the same. `progress(done, total)` is called after each chunk.
    """
    images = np.asarray(images)
    if images.ndim == 3 and len(images) == 0:
        raise ValueError("the test set has no images")
    t0 = time.perf_counter()
    probs = prediction.predict_proba(list(models), images, tta=tta, progress=progress)
    return Prediction(probs, tuple(m.name for m in models), tta, time.perf_counter() - t0)


# --------------------------------------------------------------------------- the file


def _checked_labels(labels: np.ndarray) -> np.ndarray:
    """`labels` as int64, one digit 0..9 per test image; ValueError otherwise."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"expected one label per test image, shape (n,), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
        raise ValueError("every label must be an integer digit 0..9")
    return labels.astype(np.int64)


def build_submission(labels: np.ndarray) -> pd.DataFrame:
    """Kaggle's submission frame: `ImageId` 1..n in test order and `Label` int 0..9 per test image."""
    import pandas as pd

    labels = _checked_labels(labels)
    return pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1, dtype=np.int64), "Label": labels})


def labels_csv(labels: np.ndarray) -> bytes:
    """The file `submission_bytes(build_submission(labels))` writes, without pandas (whose import
    is a tenth of `python -m core predict`'s time)."""
    rows = "".join(f"{i},{label}\n" for i, label in enumerate(_checked_labels(labels).tolist(), start=1))
    return ("ImageId,Label\n" + rows).encode()


def submission_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Kaggle expects it: header `ImageId,Label`, `\\n` line ends, no index."""
    return frame.to_csv(index=False, lineterminator="\n").encode()


def validate_submission(submission: pd.DataFrame | bytes | str, n_test: int) -> list[str]:
    """Everything that would make Kaggle reject (or mis-score) a submission, as clear messages;
    an empty list means the file is valid for a test set of `n_test` images.

    `submission` is a frame (checked as `submission_bytes` would write it) or the CSV file's
    bytes/text. Checks: UTF-8 text, header exactly `ImageId,Label`, one row per test image,
    ImageId 1..n in order without duplicates, Label an integer 0..9 with no empty/NaN cell.
    Each kind of problem is reported once, with its first rows and a count.
    """
    rows, unreadable = _csv_rows(submission)
    if unreadable:
        return [unreadable]
    header, body = rows[0], rows[1:]
    problems = _problems_in_header(header)
    if len(body) != n_test:
        problems.append(f"the file has {len(body):,} rows, expected {n_test:,} (one per test image)")
    if problems and header != HEADER:
        return problems  # The values cannot be read reliably under a wrong header.
    ids, labels, bad_cells = _read_cells(body)
    return problems + bad_cells + _problems_in_labels(labels) + _problems_in_ids(ids, n_test)


def _csv_rows(submission: pd.DataFrame | bytes | str) -> tuple[list[list[str]], str | None]:
    """The non-blank rows of the file, or why it cannot be read as a CSV at all."""
    if isinstance(submission, str):
        payload = submission.encode()
    elif isinstance(submission, bytes | bytearray | memoryview):
        payload = bytes(submission)
    else:  # a frame
        payload = submission_bytes(submission)
    if not payload.strip():
        return [], "the file is empty; expected the header ImageId,Label and one row per test image"
    if payload[:3] == b"\xef\xbb\xbf":
        return [], "the file starts with a byte-order mark (BOM); save it as UTF-8 without BOM"
    if payload[:2] == b"\x1f\x8b" or payload[:4] == b"PK\x03\x04":
        return [], "the file is compressed (gzip/zip); submit the plain submission.csv"
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return [], "the file is not UTF-8 text; expected a CSV with the header ImageId,Label"
    try:
        return [row for row in csv.reader(io.StringIO(text)) if row], None  # a blank line is no row
    except csv.Error as exc:
        return [], f"the file is not a readable CSV ({exc})"


def _first_rows(rows: list[int]) -> str:
    head = ", ".join(str(r) for r in rows[:3])
    return f"row {head}" if len(rows) == 1 else f"rows {head}{', …' if len(rows) > 3 else ''}"


def _problems_in_header(header: list[str]) -> list[str]:
    """What is wrong with the header row (empty if it is exactly `ImageId,Label`)."""
    if header == HEADER:
        return []
    joined = ",".join(header)
    if (word := checks.separator_name(header)) is not None:
        return [f"values are separated by {word}; expected commas (header ImageId,Label)"]
    if header and all(h.strip().lstrip("-").isdigit() for h in header):
        return [f"no header row: the first line is {joined[:40]!r}; expected the header ImageId,Label"]
    problems = []
    seen = set()
    for col in header:
        if col in seen:
            problems.append(f"column {col!r} appears twice in the header; expected ImageId,Label")
        seen.add(col)
    lowered = {c.strip().lower(): c for c in header}
    for want in HEADER:
        if want in header:
            continue
        near = lowered.get(want.lower())
        if near is not None:
            problems.append(f"column {near!r} must be spelled exactly {want!r} (header ImageId,Label)")
        else:
            problems.append(f"missing column {want!r}; expected the header ImageId,Label")
    for col in header:
        if col not in HEADER and col.strip().lower() not in ("imageid", "label"):
            problems.append(f"unexpected extra column {col[:40]!r}; expected only ImageId,Label")
    if not problems:
        problems.append(f"columns are in the wrong order ({joined[:40]}); expected ImageId,Label")
    return problems


def _parse_int(cell: str) -> tuple[int | None, str | None]:
    """An integer cell's value, or why it is not one ('empty', 'not a number', 'not whole', …)."""
    text = cell.strip()
    if text == "" or text.lower() in ("nan", "na", "null", "none"):
        return None, "empty or NaN"
    try:
        return int(text), None
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        return None, "not a number"
    if not np.isfinite(value):
        return None, "empty or NaN"
    return None, "a float, not an integer" if value == int(value) else "not a whole number"


def _read_cells(body: list[list[str]]) -> tuple[list[int | None], list[int | None], list[str]]:
    """ImageId and Label per row (None where a cell is not an integer), and what was wrong."""
    bad_width: list[int] = []
    bad: dict[tuple[str, str], list[int]] = {}  # (column, why) -> rows, in the order first seen
    ids: list[int | None] = []
    labels: list[int | None] = []
    for i, row in enumerate(body, start=1):
        if len(row) != 2:
            bad_width.append(i)
            ids.append(None)
            labels.append(None)
            continue
        for column, cell, values in (("ImageId", row[0], ids), ("Label", row[1], labels)):
            value, why = _parse_int(cell)
            if why:
                bad.setdefault((column, why), []).append(i)
            values.append(value)
    problems = []
    if bad_width:
        problems.append(f"{_first_rows(bad_width)}: expected 2 values (ImageId,Label); "
                        f"{len(bad_width):,} such row(s)")
    for (column, why), where in bad.items():
        what = "an integer 1..n" if column == "ImageId" else "an integer digit 0..9"
        problems.append(f"{column} is {why} in {_first_rows(where)}: expected {what}; "
                        f"{len(where):,} such row(s)")
    return ids, labels, problems


def _problems_in_labels(labels: list[int | None]) -> list[str]:
    out_of_range = [i for i, v in enumerate(labels, start=1) if v is not None and not 0 <= v <= 9]
    if not out_of_range:
        return []
    first = labels[out_of_range[0] - 1]
    return [f"Label {first} in {_first_rows(out_of_range)} is out of range: expected a digit "
            f"0..9; {len(out_of_range):,} such row(s)"]


def _problems_in_ids(ids: list[int | None], n_test: int) -> list[str]:
    problems = []
    known = [(i, v) for i, v in enumerate(ids, start=1) if v is not None]
    counts: dict[int, int] = {}
    for _, v in known:
        counts[v] = counts.get(v, 0) + 1
    dupes = sorted(v for v, c in counts.items() if c > 1)
    if dupes:
        problems.append(f"ImageId {dupes[0]} appears {counts[dupes[0]]} times: each ImageId must appear "
                        f"once; {len(dupes):,} duplicated ImageId(s)")
    misplaced = [i for i, v in known if v != i]
    if misplaced:
        i = misplaced[0]
        problems.append(f"ImageId must run 1..{n_test} in test order: row {i} has ImageId {ids[i - 1]}, "
                        f"expected {i}; {len(misplaced):,} row(s) out of place")
    return problems


def valid_submission_bytes(labels: np.ndarray, n_test: int) -> bytes:
    """The submission file of `labels`, checked as Kaggle would; ValueError rather than a bad file."""
    csv_bytes = labels_csv(labels)
    problems = validate_submission(csv_bytes, n_test)
    if problems:  # Cannot happen for the file written above; never write a bad file if it does.
        raise ValueError("the submission would be invalid: " + "; ".join(problems))
    return csv_bytes


# --------------------------------------------------------------------------- scoring


@dataclass(frozen=True)
class Answers:
    """True labels `(n,) int64` of a test set and where they come from."""

    labels: np.ndarray
    source: str


def accuracy_score(labels: np.ndarray, answers: np.ndarray) -> float:
    """Fraction of test images labelled correctly (Kaggle's metric for this competition)."""
    labels, answers = np.asarray(labels), np.asarray(answers)
    if labels.shape != answers.shape:
        raise ValueError(f"{len(labels)} predictions but {len(answers)} answers")
    return float((labels == answers).mean())


def _sample_test() -> data.Dataset:
    return data.load_csv(paths.sample_dir() / "test.csv.gz", expect_labels=False,
                         source_kind=data.SOURCE_SAMPLE)


def known_answers(test: data.Dataset, *, test_hashes: np.ndarray | None = None) -> Answers | None:
    """The true labels of `test` when they can be known: the committed sample's test (kept
    answers), or a test set whose every digit is in a labelled MNIST download (`data/mnist-full.csv`,
    as Kaggle's test digits are). None otherwise.

    `test_hashes` are `data.row_hashes(test.images)` when the caller has them already."""
    sample = _sample_test()
    if test.n == sample.n and test.fingerprint == sample.fingerprint:
        return Answers(data.sample_answers(), data.SOURCE_SAMPLE)
    path = data.mnist_download_file()
    if path is None:
        return None
    mnist = data.load_csv(path, expect_labels=True, source_kind=data.SOURCE_MNIST)
    hashes = data.row_hashes(mnist.images)
    order = np.argsort(hashes, kind="stable")
    wanted = data.row_hashes(test.images) if test_hashes is None else np.asarray(test_hashes)
    pos = np.clip(np.searchsorted(hashes[order], wanted), 0, len(order) - 1)
    if not (hashes[order][pos] == wanted).all():
        return None
    return Answers(mnist.labels[order][pos].astype(np.int64), data.SOURCE_MNIST)


# --------------------------------------------------------------------------- one pass


@dataclass(frozen=True)
class Submission:
    """A finished submission: the file's bytes, where it was written, its record and score."""

    csv_bytes: bytes
    path: Path
    sidecar_path: Path
    sidecar: dict
    answers: Answers | None
    score: float | None


def finish_submission(
    predicted: Prediction,
    test: data.Dataset,
    *,
    out: Path | None = None,
    leakage: list[dict],
    allow_leakage: bool,
    origin: str,
    answers: Answers | None,
) -> Submission:
    """Build and validate the file of `predicted`, score it against `answers` (None: unknown, no
    score), write it with its sidecar (to `out`, else `data/submissions/submission-<fingerprint>.csv`)
    and record it on the leaderboard. Raises ValueError rather than write an invalid file or hide
    a leak."""
    refuse_leakage(leakage, allowed=allow_leakage)
    csv_bytes = valid_submission_bytes(predicted.labels, test.n)
    score = accuracy_score(predicted.labels, answers.labels) if answers is not None else None
    sidecar = records.make_sidecar(
        models=predicted.models, test=test, tta=predicted.tta, csv_bytes=csv_bytes, leakage=leakage,
        allow_leakage=allow_leakage, score=score, answers_source=answers.source if answers else None,
        origin=origin,
    )
    if out is None:
        out = records.submissions_dir() / f"submission-{sidecar['file']['fingerprint']}.csv"
    csv_path, side = records.write_submission(Path(out), csv_bytes, sidecar)
    records.record_leaderboard(records.leaderboard_entry(sidecar, file=str(csv_path.resolve())))
    return Submission(csv_bytes, csv_path, side, sidecar, answers, score)


def load_test_file(path: Path) -> data.Dataset:
    """An unlabelled test set from a CSV, csv.gz or Kaggle's zip (its test.csv)."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        return data.load_zip(path)[1]
    in_sample = path.resolve().parent == paths.sample_dir().resolve()
    return data.load_csv(path, expect_labels=False,
                         source_kind=data.SOURCE_SAMPLE if in_sample else data.SOURCE_KAGGLE)


def _model_names(model_names: list[str] | None) -> list[str]:
    """The named saved models, each once (the best saved one if None); ValueError for an unknown one."""
    names = list(dict.fromkeys(model_names)) if model_names else [registry.resolve_name(None)]
    for name in names:
        registry.resolve_name(name)
    return names


def predict_to_file(
    test_path: Path,
    *,
    model_names: list[str] | None,
    out: Path,
    tta: bool,
    allow_leakage: bool,
    progress: prediction.Progress | None = None,
) -> dict:
    """Predict `test_path` with the named models (the best saved one if None), write `out` and its
    sidecar `out.json`, record it on the local leaderboard and return a summary.

    Raises ValueError for a bad test file, an unknown model, or leakage (unless `allow_leakage`).
    """
    t0 = time.perf_counter()
    test = load_test_file(Path(test_path))
    names = _model_names(model_names)
    out = records.check_csv_path(out)
    hashes = data.row_hashes(test.images)  # once, for both the leakage check and the answers
    findings = check_leakage(names, test.images, test_hashes=hashes)
    refuse_leakage(findings, allowed=allow_leakage)  # before the work of predicting
    predicted = predict([prediction.load(name) for name in names], test.images, tta=tta, progress=progress)
    done = finish_submission(predicted, test, out=out, leakage=findings, allow_leakage=allow_leakage,
                             origin="cli", answers=known_answers(test, test_hashes=hashes))
    return {
        "rows": test.n,
        "models": names,
        "tta": tta,
        "out": str(done.path),
        "sidecar": str(done.sidecar_path),
        "score": done.score,
        "answers": done.answers.source if done.answers else None,
        "leakage": [f["message"] for f in findings],
        "file_fingerprint": done.sidecar["file"]["fingerprint"],
        "predict_seconds": round(predicted.seconds, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }
