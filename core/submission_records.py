"""What produced each submission file, kept on disk: a sidecar JSON beside the file, and one line
per submission in the local leaderboard (`data/submissions/leaderboard.jsonl`).

Files are written atomically (a temporary file, then a rename): a reader never sees half of one.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Sequence
from pathlib import Path

from core import data, paths, prediction, registry

LEADERBOARD_FILE = "leaderboard.jsonl"

_LEADERBOARD_LOCK = threading.Lock()


def file_fingerprint(payload: bytes) -> str:
    """A short hash of a file's bytes: the same submission gives the same fingerprint."""
    return hashlib.blake2b(payload, digest_size=8).hexdigest()


# --------------------------------------------------------------------------- the sidecar


def model_records(names: Sequence[str]) -> list[dict]:
    """What a sidecar says about each model: architecture, validation accuracy, training data."""
    records = []
    for name in names:
        meta = registry.read_meta(name)
        d = meta.get("data") or {}
        records.append({
            "name": name, "arch": meta.get("arch"), "kind": meta.get("kind", registry.KERAS),
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


def sidecar_path(out: Path) -> Path:
    """Where the JSON record of `out` goes: the same name with `.json`."""
    return Path(out).with_suffix(".json")


def check_csv_path(out: Path) -> Path:
    """`out` as a Path; ValueError if it is a `.json` name (that name is its sidecar's)."""
    out = Path(out)
    if out.suffix.lower() == ".json":
        raise ValueError(f"{out}: the submission must be a .csv file (the .json name is for its sidecar)")
    return out


def write_submission(out: Path, csv_bytes: bytes, sidecar: dict) -> tuple[Path, Path]:
    """Write the CSV, then its sidecar JSON, each atomically (temporary file, then rename)."""
    out = check_csv_path(out)
    side = sidecar_path(out)
    paths.write_atomic(out, csv_bytes)
    paths.write_atomic(side, (json.dumps(sidecar, indent=2) + "\n").encode())
    return out, side


# --------------------------------------------------------------------------- the local leaderboard


def submissions_dir() -> Path:
    """`data/submissions/`: the leaderboard and the page's exported files."""
    return paths.data_dir() / "submissions"


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
        paths.write_atomic(submissions_dir() / LEADERBOARD_FILE, ("\n".join(lines) + "\n").encode())
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
