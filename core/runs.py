"""A training run as its files say it is: what pages and the command line show of every run.

A run lives in its model folder (`models/<name>/`), written by its job process, atomically:
- `meta.json`: settings, data, owner, status (`core.status`), best metrics, error text;
- `history.csv`: one row per finished epoch;
- `progress.json`: the live view, rewritten about once a second while it trains: epoch, share
  done, images/s, time left, learning rate, and a bounded, downsampled series of per-batch points;
- `stop.request`: left by the page when the run's owner asks it to stop;
- `job.log`: what the job process printed.

`read_run` never raises for a damaged file: it says what is wrong in `problems`, so one bad run
never hides the others.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from core import paths, registry, status

PROGRESS_FILE = "progress.json"
STOP_FILE = "stop.request"
LOG_FILE = "job.log"


# --------------------------------------------------------------------------- the job's side


def write_progress(name: str, progress: dict) -> None:
    """Replace the run's live view (atomically: a page never reads half of it)."""
    body = {**progress, "updated_at": time.time()}
    paths.write_atomic(registry.model_dir(name) / PROGRESS_FILE, json.dumps(body).encode())


def stop_requested(name: str) -> bool:
    """Whether the run's owner asked it to stop (checked by the job after every batch)."""
    return (registry.model_dir(name) / STOP_FILE).exists()


def request_stop(name: str) -> None:
    """Ask run `name` to stop after its current batch (it keeps its best epoch)."""
    paths.write_atomic(registry.model_dir(name) / STOP_FILE, b"stop\n")


def clear_stop(name: str) -> None:
    """Forget an old stop request (before the run is given more work)."""
    (registry.model_dir(name) / STOP_FILE).unlink(missing_ok=True)


# --------------------------------------------------------------------------- the reader's side


@dataclass
class RunView:
    """One run for display. `meta` is empty and `problems` says why when `meta.json` is unreadable."""

    name: str
    meta: dict = field(default_factory=dict)
    status: str = status.FAILED
    history: list[dict] = field(default_factory=list)
    progress: dict = field(default_factory=dict)
    has_model: bool = False
    problems: list[str] = field(default_factory=list)

    @property
    def active(self) -> bool:
        return self.status in status.ACTIVE

    @property
    def arch(self) -> str:
        return str(self.meta.get("arch", "?"))

    @property
    def kept_val_accuracy(self) -> float | None:
        """Validation accuracy of the epoch the run keeps (its checkpoint rule: validation's best or
        the last), the model one would use; the best of its history when meta has none yet."""
        kept = (self.meta.get("metrics") or {}).get("val_accuracy")
        if kept is not None:
            return kept
        values = [h["val_accuracy"] for h in self.history if h.get("val_accuracy") is not None]
        return max(values) if values else None


def read_run(name: str) -> RunView:
    """Everything the files of run `name` say, with a message per damaged or missing part."""
    folder = registry.model_dir(name)
    view = RunView(name, has_model=any((folder / f).is_file() for f in registry.MODEL_FILES))
    try:
        view.meta = registry.read_json(folder / registry.META_FILE)
        view.status = status.status_of(view.meta)
    except ValueError as exc:
        view.problems.append(str(exc))
    for what, reader in (("history", lambda: registry.read_history(name)),
                         ("progress", lambda: registry.read_json(folder / PROGRESS_FILE))):
        try:
            value = reader()
        except ValueError as exc:
            if what == "progress" and not (folder / PROGRESS_FILE).exists():
                continue  # a run saved without a live view (a shipped model, an old run)
            view.problems.append(str(exc))
            continue
        setattr(view, what, value)
    if not view.has_model and view.status not in (status.QUEUED, status.RUNNING, status.FAILED):
        view.problems.append("no model file: nothing was saved (or it was deleted)")
    return view


def list_runs() -> list[RunView]:
    """Every run folder in `models/`, newest first (damaged ones too, with their problems)."""
    views = [read_run(folder.name) for folder in registry.model_folders()
             if (folder / registry.META_FILE).exists() or (folder / PROGRESS_FILE).exists()]
    return sorted(views, key=lambda v: (str(v.meta.get("created_at", "")), v.name), reverse=True)


def active_runs() -> list[RunView]:
    """Runs queued or running now, oldest first."""
    return sorted((v for v in list_runs() if v.active),
                  key=lambda v: (str(v.meta.get("created_at", "")), v.name))


def summary(view: RunView) -> dict:
    """One plain row describing a run: the runs table, the leaderboard and `python -m core runs`."""
    meta, params = view.meta, view.meta.get("params") or {}
    data = meta.get("data") or {}
    keys = ("epochs", "batch_size", "learning_rate", "optimizer", "schedule", "augment", "seed",
            "n_estimators")
    return {
        "name": view.name,
        "arch": meta.get("arch"),
        "kind": registry.kind_of(meta) if meta else None,
        "status": view.status,
        "val_accuracy": view.kept_val_accuracy,
        "val_loss": (meta.get("metrics") or {}).get("val_loss"),
        "epochs": len(view.history) or meta.get("epochs_done"),
        "best_epoch": meta.get("best_epoch"),
        "settings": (", ".join(f"{k}={params[k]}" for k in keys if k in params) if registry.kind_of(meta)
                     != registry.ENSEMBLE else "mean of " + ", ".join(m.get("name", "?") for m in meta.get(
                         "members") or [])),
        "param_count": meta.get("param_count"),
        "training_time_s": meta.get("training_time_s"),
        "data_source": data.get("source", "unknown"),
        "data_fingerprint": data.get("fingerprint"),
        "owner": meta.get("owner"),
        "created_at": meta.get("created_at"),
        "note": meta.get("note", ""),
        "has_model": view.has_model,
        "problems": "; ".join(view.problems),
    }
