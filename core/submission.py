"""Predict a test set and turn it into a Kaggle `submission.csv` that is valid the first time.

The pieces, in the order a submission is made:
- `check_leakage`: refuse models that saw the test digits (Kaggle's test digits are MNIST digits);
- `predict`: one model or several (probabilities averaged), optionally with test-time
  augmentation (`core.prediction` does the work), reporting progress as (done, total);
- `build_submission` / `to_csv_bytes` / `validate_submission`: the `ImageId,Label` file and every
  way such a file can be wrong;
- `known_answers` / `accuracy_score`: a score when the answers are known (the committed sample,
  or test digits found in a labelled MNIST download);
- `write_submission` + sidecar JSON + `record_leaderboard`: what produced each file, kept on disk.
`predict_to_file` strings them together for `python -m core predict`; the Submit page calls the
same functions. Nothing here imports Streamlit or TensorFlow.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core import checks, data, paths, prediction, registry

COLUMNS = ["ImageId", "Label"]
CHUNK = 4096  # test rows hashed at a time: bounded memory
LEADERBOARD_FILE = "leaderboard.jsonl"
MAX_PROBLEMS_PER_KIND = 1  # each kind of problem is reported once, with its first row and a count

Progress = Callable[[int, int], None]


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
    progress: Progress | None = None,
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


def build_submission(labels: np.ndarray) -> pd.DataFrame:
    """Kaggle's submission frame: `ImageId` 1..n in test order and `Label` int 0..9 per test image."""
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"expected one label per test image, shape (n,), got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9:
        raise ValueError("every label must be an integer digit 0..9")
    return pd.DataFrame({"ImageId": np.arange(1, len(labels) + 1, dtype=np.int64),
                         "Label": labels.astype(np.int64)})


def to_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The frame as Kaggle expects it: header `ImageId,Label`, `\\n` line ends, no index."""
    return frame.to_csv(index=False, lineterminator="\n").encode()


def file_fingerprint(payload: bytes) -> str:
    """A short hash of a file's bytes: the same submission gives the same fingerprint."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


def _first_rows(rows: list[int]) -> str:
    head = ", ".join(str(r) for r in rows[:3])
    return f"row {head}" if len(rows) == 1 else f"rows {head}{', …' if len(rows) > 3 else ''}"


def _problems_in_header(header: list[str]) -> list[str]:
    """What is wrong with the header row (empty if it is exactly `ImageId,Label`)."""
    if header == COLUMNS:
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
    for want in COLUMNS:
        if want in header:
            continue
        near = lowered.get(want.lower())
        if near is not None:
            problems.append(f"column {near!r} must be spelled exactly {want!r} (header ImageId,Label)")
        else:
            problems.append(f"missing column {want!r}; expected the header ImageId,Label")
    for col in header:
        if col not in COLUMNS and col.strip().lower() not in ("imageid", "label"):
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


def validate_submission(submission: pd.DataFrame | bytes | str, n_test: int) -> list[str]:
    """Everything that would make Kaggle reject (or mis-score) a submission, as clear messages;
    an empty list means the file is valid for a test set of `n_test` images.

    `submission` is a frame (checked as `to_csv_bytes` would write it) or the CSV file's bytes/text.
    Checks: UTF-8 text, header exactly `ImageId,Label`, one row per test image, ImageId 1..n in
    order without duplicates, Label an integer 0..9 with no empty/NaN cell.
    """
    if isinstance(submission, pd.DataFrame):
        payload = to_csv_bytes(submission)
    elif isinstance(submission, str):
        payload = submission.encode()
    else:
        payload = bytes(submission)
    if not payload.strip():
        return ["the file is empty; expected the header ImageId,Label and one row per test image"]
    if payload[:3] == b"\xef\xbb\xbf":
        return ["the file starts with a byte-order mark (BOM); save it as UTF-8 without BOM"]
    if payload[:2] == b"\x1f\x8b" or payload[:4] == b"PK\x03\x04":
        return ["the file is compressed (gzip/zip); submit the plain submission.csv"]
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        return ["the file is not UTF-8 text; expected a CSV with the header ImageId,Label"]
    reader = csv.reader(io.StringIO(text))
    try:
        rows = [row for row in reader if row]  # a blank line (e.g. the last newline) is no row
    except csv.Error as exc:
        return [f"the file is not a readable CSV ({exc})"]
    header, body = rows[0], rows[1:]
    problems = _problems_in_header(header)
    if len(body) != n_test:
        problems.append(
            f"the file has {len(body):,} rows, expected {n_test:,} (one per test image)"
        )
    if problems and header != COLUMNS:
        return problems  # The values cannot be read reliably under a wrong header.

    bad_width: list[int] = []
    bad: dict[tuple[str, str], list[int]] = {}
    ids: list[int | None] = []
    labels: list[int | None] = []
    for i, row in enumerate(body, start=1):
        if len(row) != 2:
            bad_width.append(i)
            ids.append(None)
            labels.append(None)
            continue
        image_id, why = _parse_int(row[0])
        if why:
            bad.setdefault(("ImageId", why), []).append(i)
        label, why_label = _parse_int(row[1])
        if why_label:
            bad.setdefault(("Label", why_label), []).append(i)
        ids.append(image_id)
        labels.append(label)
    if bad_width:
        problems.append(f"{_first_rows(bad_width)}: expected 2 values (ImageId,Label); "
                        f"{len(bad_width):,} such row(s)")
    for (column, why), where in bad.items():
        what = "an integer 1..n" if column == "ImageId" else "an integer digit 0..9"
        problems.append(f"{column} is {why} in {_first_rows(where)}: expected {what}; "
                        f"{len(where):,} such row(s)")

    out_of_range = [i for i, v in enumerate(labels, start=1) if v is not None and not 0 <= v <= 9]
    if out_of_range:
        first = labels[out_of_range[0] - 1]
        problems.append(f"Label {first} in {_first_rows(out_of_range)} is out of range: expected a digit "
                        f"0..9; {len(out_of_range):,} such row(s)")

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


def known_answers(test: data.Dataset) -> Answers | None:
    """The true labels of `test` when they can be known: the committed sample's test (kept
    answers), or a test set whose every digit is in a labelled MNIST download (`data/mnist-full.csv`,
    as Kaggle's test digits are). None otherwise."""
    sample = _sample_test()
    if test.n == sample.n and test.fingerprint == sample.fingerprint:
        return Answers(data.sample_answers(), data.SOURCE_SAMPLE)
    for name in ("mnist-full.csv", "mnist-full.csv.gz"):
        path = paths.data_dir() / name
        if path.is_file():
            mnist = data.load_csv(path, expect_labels=True, source_kind=data.SOURCE_MNIST)
            hashes = data.row_hashes(mnist.images)
            order = np.argsort(hashes, kind="stable")
            wanted = data.row_hashes(test.images)
            pos = np.clip(np.searchsorted(hashes[order], wanted), 0, len(order) - 1)
            found = hashes[order][pos] == wanted
            if found.all():
                return Answers(mnist.labels[order][pos].astype(np.int64), data.SOURCE_MNIST)
            return None
    return None


# --------------------------------------------------------------------------- leakage


def test_row_hashes(images: np.ndarray, *, chunk: int = CHUNK) -> np.ndarray:
    """`data.row_hashes` of a test set, a chunk at a time (the same values, a fraction of the memory)."""
    return np.concatenate([data.row_hashes(images[i : i + chunk]) for i in range(0, len(images), chunk)]
                          or [np.zeros(0, dtype=np.uint64)])


def check_leakage(
    model_names: Sequence[str], test_images: np.ndarray, *, test_hashes: np.ndarray | None = None
) -> list[dict]:
    """Findings for models that saw the test digits: trained on the MNIST download (Kaggle's test
    digits are MNIST digits), or trained on rows identical to test rows. Empty list = no leak.

    Each finding: `{"model", "kind": "mnist-download" | "overlap", "overlap", "message"}`.
    """
    findings = []
    for name in model_names:
        meta = registry.read_meta(name)
        source = (meta.get("data") or {}).get("source", "unknown")
        if source == data.SOURCE_MNIST:
            findings.append({
                "model": name, "kind": "mnist-download", "overlap": None,
                "message": f"model {name!r} was trained on the full MNIST download, which contains "
                           "Kaggle's test digits: its score would be inflated by leakage",
            })
        train_hashes = registry.load_train_hashes(name)
        if train_hashes is not None and test_hashes is None:
            test_hashes = test_row_hashes(test_images)
        if train_hashes is not None and len(test_hashes):
            overlap = int(np.isin(test_hashes, train_hashes).sum())
            if overlap:
                findings.append({
                    "model": name, "kind": "overlap", "overlap": overlap,
                    "message": f"model {name!r} was trained on {overlap:,} of the {len(test_hashes):,} "
                               f"test digits ({overlap / len(test_hashes):.1%}): it has seen the answers",
                })
    return findings


def leakage_error(findings: list[dict]) -> str:
    """One line for the user: which models leak and how to proceed anyway."""
    return ("leakage: " + "; ".join(f["message"] for f in findings)
            + " (choose another model, or pass --allow-leakage to write it anyway, recorded in the sidecar)")


# --------------------------------------------------------------------------- records on disk


def model_records(names: Sequence[str]) -> list[dict]:
    """What a sidecar says about each model: architecture, validation accuracy, training data."""
    records = []
    for name in names:
        meta = registry.read_meta(name)
        d = meta.get("data") or {}
        records.append({
            "name": name, "arch": meta.get("arch"), "kind": meta.get("kind", "keras"),
            "val_accuracy": (meta.get("metrics") or {}).get("val_accuracy"),
            "created_at": meta.get("created_at"), "version": prediction.model_version(name),
            "data": {"source": d.get("source", "unknown"), "fingerprint": d.get("fingerprint"),
                     "name": d.get("name"), "n_rows": d.get("n_rows")},
        })
    return records


def settings(*, tta: bool) -> dict:
    """The prediction settings recorded with a submission."""
    views = list(prediction.TTA_VIEWS) if tta else ["original"]
    return {"tta": tta, "tta_views": views, "ensemble": "mean probability"}


def make_sidecar(
    *,
    models: Sequence[str],
    test: data.Dataset,
    tta: bool,
    csv_bytes: bytes,
    leakage: list[dict],
    allow_leakage: bool,
    score: float | None,
    answers_source: str | None,
    origin: str,
) -> dict:
    """What produced a submission file, written beside it as JSON."""
    return {
        "file": {"fingerprint": file_fingerprint(csv_bytes), "rows": csv_bytes.count(b"\n") - 1,
                 "bytes": len(csv_bytes)},
        "models": model_records(models),
        "test": {"name": test.name, "source": test.source, "fingerprint": test.fingerprint, "rows": test.n},
        "settings": settings(tta=tta),
        "leakage": {"findings": leakage, "allowed": bool(allow_leakage and leakage)},
        "score": score,
        "answers_source": answers_source,
        "origin": origin,
        "created_at": registry.timestamp(),
    }


_write_atomic = paths.write_atomic


def sidecar_path(out: Path) -> Path:
    """Where the JSON record of `out` goes: the same name with `.json`."""
    return Path(out).with_suffix(".json")


def write_submission(out: Path, csv_bytes: bytes, sidecar: dict) -> tuple[Path, Path]:
    """Write the CSV, then its sidecar JSON, each atomically (temporary file, then rename)."""
    out = Path(out)
    if out.suffix.lower() == ".json":
        raise ValueError(f"{out}: the submission must be a .csv file (the .json name is for its sidecar)")
    side = sidecar_path(out)
    _write_atomic(out, csv_bytes)
    _write_atomic(side, (json.dumps(sidecar, indent=2) + "\n").encode())
    return out, side


def submissions_dir() -> Path:
    """`data/submissions/`: the leaderboard and the page's exported files."""
    return paths.data_dir() / "submissions"


_LEADERBOARD_LOCK = threading.Lock()


def read_leaderboard() -> list[dict]:
    """Every recorded submission, oldest first (unreadable lines skipped)."""
    path = submissions_dir() / LEADERBOARD_FILE
    if not path.is_file():
        return []
    entries = []
    for line in path.read_text().splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue
    return entries


def leaderboard_entry(sidecar: dict, *, file: str | None) -> dict:
    """The leaderboard's line for a submission (a summary of its sidecar)."""
    return {
        "created_at": sidecar["created_at"],
        "models": [m["name"] for m in sidecar["models"]],
        "settings": sidecar["settings"],
        "test_fingerprint": sidecar["test"]["fingerprint"],
        "test_rows": sidecar["test"]["rows"],
        "score": sidecar["score"],
        "answers_source": sidecar["answers_source"],
        "file_fingerprint": sidecar["file"]["fingerprint"],
        "file": file,
        "leakage": bool(sidecar["leakage"]["findings"]),
        "origin": sidecar["origin"],
    }


def record_leaderboard(entry: dict) -> bool:
    """Add a submission to `data/submissions/leaderboard.jsonl` (rewritten atomically); the same
    file from the same models and settings is recorded once. True if it was added."""
    with _LEADERBOARD_LOCK:
        entries = read_leaderboard()
        same = ("file_fingerprint", "models", "settings", "test_fingerprint")
        if any(all(e.get(k) == entry.get(k) for k in same) for e in entries):
            return False
        lines = [json.dumps(e) for e in [*entries, entry]]
        _write_atomic(submissions_dir() / LEADERBOARD_FILE, ("\n".join(lines) + "\n").encode())
        return True


def leaderboard_rows(test_fingerprint: str | None = None) -> list[dict]:
    """Leaderboard rows for a table (of one test set if given), best score first, then newest."""
    rows = [
        {
            "score": e.get("score"),
            "models": " + ".join(e.get("models", [])),
            "TTA": bool((e.get("settings") or {}).get("tta")),
            "test rows": e.get("test_rows"),
            "leakage": e.get("leakage", False),
            "from": e.get("origin"),
            "created": (e.get("created_at") or "")[:19],
            "file": e.get("file_fingerprint"),
        }
        for e in read_leaderboard()
        if test_fingerprint is None or e.get("test_fingerprint") == test_fingerprint
    ]
    rows.sort(key=lambda r: r["created"], reverse=True)
    rows.sort(key=lambda r: -1.0 if r["score"] is None else r["score"], reverse=True)
    return rows


# --------------------------------------------------------------------------- one call


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
    answers: Answers | None = None,
) -> Submission:
    """Build and validate the file of `predicted`, score it if the answers are known, write it with
    its sidecar (to `out`, else `data/submissions/submission-<fingerprint>.csv`) and record it on
    the leaderboard. Raises ValueError rather than write an invalid file or hide a leak."""
    if leakage and not allow_leakage:
        raise ValueError(leakage_error(leakage))
    frame = build_submission(predicted.labels)
    csv_bytes = to_csv_bytes(frame)
    problems = validate_submission(csv_bytes, test.n)
    if problems:  # Cannot happen for a frame built above; never write a bad file if it does.
        raise ValueError("the submission would be invalid: " + "; ".join(problems))
    answers = answers if answers is not None else known_answers(test)
    score = accuracy_score(predicted.labels, answers.labels) if answers is not None else None
    sidecar = make_sidecar(
        models=predicted.models, test=test, tta=predicted.tta, csv_bytes=csv_bytes, leakage=leakage,
        allow_leakage=allow_leakage, score=score, answers_source=answers.source if answers else None,
        origin=origin,
    )
    if out is None:
        out = submissions_dir() / f"submission-{sidecar['file']['fingerprint']}.csv"
    csv_path, side = write_submission(Path(out), csv_bytes, sidecar)
    record_leaderboard(leaderboard_entry(sidecar, file=str(csv_path.resolve())))
    return Submission(csv_bytes, csv_path, side, sidecar, answers, score)


def load_test_file(path: Path) -> data.Dataset:
    """An unlabelled test set from a CSV, csv.gz or Kaggle's zip (its test.csv)."""
    path = Path(path)
    if path.suffix.lower() == ".zip":
        return data.load_zip(path)[1]
    in_sample = path.resolve().parent == paths.sample_dir().resolve()
    return data.load_csv(path, expect_labels=False,
                         source_kind=data.SOURCE_SAMPLE if in_sample else data.SOURCE_KAGGLE)


def predict_to_file(
    test_path: Path,
    *,
    model_names: list[str] | None,
    out: Path,
    tta: bool,
    allow_leakage: bool,
    progress: Progress | None = None,
) -> dict:
    """Predict `test_path` with the named models (the best saved one if None), write `out` and its
    sidecar `out.json`, record it on the local leaderboard and return a summary.

    Raises ValueError for a bad test file, an unknown model, or leakage (unless `allow_leakage`).
    """
    t0 = time.perf_counter()
    test = load_test_file(Path(test_path))
    names = list(dict.fromkeys(model_names)) if model_names else [registry.resolve_name(None)]
    for name in names:
        registry.resolve_name(name)
    if Path(out).suffix.lower() == ".json":
        raise ValueError(f"{out}: the submission must be a .csv file (the .json name is for its sidecar)")
    leakage = check_leakage(names, test.images)
    if leakage and not allow_leakage:
        raise ValueError(leakage_error(leakage))
    models = [prediction.load(name) for name in names]
    predicted = predict(models, test.images, tta=tta, progress=progress)
    done = finish_submission(predicted, test, out=Path(out), leakage=leakage,
                             allow_leakage=allow_leakage, origin="cli")
    sidecar, answers, score = done.sidecar, done.answers, done.score
    csv_path, side = done.path, done.sidecar_path
    return {
        "rows": test.n,
        "models": names,
        "tta": tta,
        "out": str(csv_path),
        "sidecar": str(side),
        "score": score,
        "answers": answers.source if answers else None,
        "leakage": [f["message"] for f in leakage],
        "file_fingerprint": sidecar["file"]["fingerprint"],
        "predict_seconds": round(predicted.seconds, 2),
        "seconds": round(time.perf_counter() - t0, 2),
    }
