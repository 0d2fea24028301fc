"""Looking after saved runs: rename, note, delete, cancel a queued one, continue one for more epochs.

Every change is refused, with the reason, when it would break something: the shipped model is
protected, a run still queued or training cannot be renamed or deleted, nor can a model a queued or
running job reads (a fine-tune's base, an ensemble's member, a run being continued). Deleting a
model that an ensemble was built from is allowed: the ensemble keeps its own copy, and says so.
"""

from __future__ import annotations

import os

from core import jobs, registry, runs, status

PROTECTED_KEY = "protected"  # in meta.json: the shipped model (never renamed or deleted)
MAX_NOTE = 1000


def _active_users(name: str) -> list[str]:
    """Queued or running runs that read model `name` (besides itself)."""
    users = []
    for view in runs.active_runs():
        job = view.meta.get("job") or {}
        if view.name != name and name in (job.get("base"), *(job.get("members") or [])):
            users.append(view.name)
    return users


def _check_changeable(name: str, action: str) -> dict:
    meta = registry.read_meta(name)
    if meta.get(PROTECTED_KEY):
        raise ValueError(f"{name} is the shipped model: it cannot be {action}")
    state = status.status_of(meta)
    if state in status.ACTIVE:
        raise ValueError(f"{name} is {state}: it cannot be {action} until it has ended (stop it first)")
    users = _active_users(name)
    if users:
        raise ValueError(f"{name} is in use by the job {', '.join(users)}: it cannot be {action} now")
    return meta


def rename(name: str, new_name: str) -> str:
    """Give run `name` a new (valid, free) name; its folder moves with it."""
    new_name = registry.validate_name(new_name.strip())
    if new_name == name:
        return name
    meta = _check_changeable(name, "renamed")
    target = registry.model_dir(new_name)
    if target.exists():
        raise ValueError(f"a model called {new_name!r} already exists: choose another name")
    os.rename(registry.model_dir(name), target)
    registry.write_meta(new_name, {**meta, "name": new_name, "renamed_from": name})
    return new_name


def set_note(name: str, note: str) -> None:
    """Keep a note with the run (shown in the runs table); an empty note removes it."""
    note = note.strip()
    if len(note) > MAX_NOTE:
        raise ValueError(f"a note has at most {MAX_NOTE} characters, this one has {len(note)}")
    meta = registry.read_meta(name)
    if note:
        meta["note"] = note
    else:
        meta.pop("note", None)
    registry.write_meta(name, meta)


def ensembles_using(name: str) -> list[str]:
    """Saved ensembles that were built from model `name`."""
    return [m.name for m in registry.list_models() if m.kind == registry.ENSEMBLE
            and name in [member.get("name") for member in m.meta.get("members") or []]]


def delete(name: str) -> list[str]:
    """Delete run `name`; what the user should know about it (ensembles built from it keep theirs)."""
    _check_changeable(name, "deleted")
    kept = ensembles_using(name)
    registry.delete_model(name)
    return [f"the ensemble {e} keeps its own copy of {name}: it is unchanged" for e in kept]


def cancel(name: str, token: str | None) -> str | None:
    """The owner withdraws a queued run (or stops it if it has just started); the status it ends in,
    or None when nothing is left of it: a new run that never started is removed, not listed as a
    stopped run without a model."""
    meta = registry.read_meta(name)
    if not jobs.owns(meta, token):
        raise PermissionError(f"only {meta.get('owner', 'its owner')}, who queued {name}, can cancel it")
    with jobs.queue_lock():
        view = runs.read_run(name)
        if view.status == status.QUEUED and not jobs.occupying(view):
            ended = view.meta.get("ended_as")  # a run queued for more epochs goes back to how it ended
            if ended is None:
                registry.delete_model(name)
                return None
            registry.write_meta(name, {**view.meta, "status": ended, "note": "cancelled before it started"})
            return ended
    runs.request_stop(name)  # it is starting or running: it stops after its current batch
    return status.RUNNING
