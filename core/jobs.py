"""Starting training jobs: each one its own process, so the web server never trains or imports TensorFlow.

`start` records a run in its model folder (status queued, settings, data, owner) and starts
`python -m core train --run NAME` for it: the same code as a training started from the command
line. The job reports through its files (`core.runs`); pages poll them. At most `max_jobs()` run
at once (one by default; `DRS_MAX_JOBS` allows more); when a job ends it starts the next queued
run itself, so a queue goes on with no server at all.

Only the visitor who started a run may stop it: the run keeps a hash of a secret the visitor's
session holds (`owner_key`), never the secret itself.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from core import data as data_mod
from core import models, paths, processes, registry, runs, status
from core.training import TrainConfig

MAX_JOBS_ENV = "DRS_MAX_JOBS"
LAUNCH_KEY = "launched"  # in meta.json once a process was started for a queued run
# What a run's process does (meta.json "job"): train a new model, teach one the taught digits,
# continue a finished run for more epochs, or combine ended runs into an ensemble.
TRAIN, FINETUNE, CONTINUE, ENSEMBLE = "train", "finetune", "continue", "ensemble"


class JobBusy(RuntimeError):
    """Raised when a job is asked to start while `max_jobs()` are running already."""


def max_jobs() -> int:
    """How many jobs may run at once: `$DRS_MAX_JOBS`, else 1 (training uses every core)."""
    try:
        return max(1, int(os.environ.get(MAX_JOBS_ENV, "1")))
    except ValueError:
        return 1


def owner_key(token: str) -> str:
    """What a run keeps of its owner's secret: a hash, enough to check, useless to steal."""
    return hashlib.sha256(token.encode()).hexdigest()


def owns(meta: dict, token: str | None) -> bool:
    """Whether the holder of `token` started the run described by `meta`."""
    recorded = meta.get("owner_key")
    return bool(token and recorded) and hmac.compare_digest(owner_key(token), str(recorded))


@dataclass(frozen=True)
class DataRef:
    """The labelled file a job trains on, as the job process will find it and check it."""

    path: str
    source: str
    name: str
    fingerprint: str
    n_rows: int

    @classmethod
    def of(cls, ds: data_mod.Dataset, path: Path) -> DataRef:
        return cls(str(Path(path).resolve()), ds.source, ds.name, ds.fingerprint, ds.n)


def stage_upload(payload: bytes, name: str) -> Path:
    """Keep an uploaded file where a job process can read it (the cache folder, by content)."""
    digest = hashlib.blake2b(payload, digest_size=16).hexdigest()
    suffix = ".csv.gz" if payload[:2] == b"\x1f\x8b" else ".csv"
    path = paths.cache_dir() / "uploads" / f"{digest}{suffix}"
    if not path.is_file():
        paths.write_atomic(path, payload)
    return path


# --------------------------------------------------------------------------- queue and limit


@contextlib.contextmanager
def queue_lock() -> Iterator[None]:
    """One process at a time decides what starts (server threads, other servers, job processes)."""
    root = paths.models_dir()
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".jobs.lock", "a+b") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def occupying(view: runs.RunView) -> bool:
    """Running, or queued with a process already started for it (it is about to run)."""
    launched = view.meta.get(LAUNCH_KEY)
    if view.status == status.RUNNING:
        return True
    return view.status == status.QUEUED and isinstance(launched, dict) and not processes.is_dead(launched)


def running() -> list[runs.RunView]:
    """The runs that hold a job slot now."""
    return [v for v in runs.active_runs() if occupying(v)]


def _reserve(base: str) -> str:
    """Create a fresh model folder named `base` (or `base-2`, …) and return its name."""
    registry.validate_name(base)
    paths.models_dir().mkdir(parents=True, exist_ok=True)
    for i in range(1, 10_000):
        name = base if i == 1 else f"{base}-{i}"
        if len(name) > 64:
            name = f"{base[: 64 - len(str(i)) - 1]}-{i}"
        try:
            registry.model_dir(name).mkdir()
        except FileExistsError:
            continue
        return name
    raise ValueError(f"no free model name starting with {base!r}")


def enqueue(
    config: TrainConfig,
    ref: DataRef,
    *,
    owner: str,
    token: str | None = None,
    user_digits: int = 0,
    job: dict | None = None,
) -> str:
    """Record a queued run (its folder and `meta.json`) and return its name; nothing starts yet."""
    config.validate()
    arch = models.get_architecture(config.arch)
    name = _reserve(config.name or f"{config.arch}-{time.strftime('%Y%m%d-%H%M%S')}")
    registry.write_meta(name, {
        "name": name,
        "arch": config.arch,
        "kind": arch.kind,
        "description": arch.description,
        "params": config.resolved(),
        "seed": int(config.seed),
        "data": {"path": ref.path, "name": ref.name, "source": ref.source, "fingerprint": ref.fingerprint,
                 "n_rows": ref.n_rows, "user_digits": int(user_digits)},
        "job": job or {"kind": TRAIN},
        "owner": owner,
        **({"owner_key": owner_key(token)} if token else {}),
        "status": status.QUEUED,
        "created_at": registry.timestamp(),
        "input": "28x28 grey values 0..255, ink bright on dark (MNIST)",
    })
    return name


def start(config: TrainConfig, ref: DataRef, *, owner: str, token: str | None = None,
          user_digits: int = 0, job: dict | None = None) -> str:
    """Start a job now, in its own process, unless `max_jobs()` are running (`JobBusy` names
    them and their owners; nothing is recorded then). Returns the run's name."""
    with queue_lock():
        busy = running()
        if len(busy) >= max_jobs():
            names = ", ".join(f"{v.name} ({v.arch}), started by {v.meta.get('owner', '?')}" for v in busy)
            raise JobBusy(f"a training job is already running: {names}; wait for it or ask its owner "
                          "to stop it")
        name = enqueue(config, ref, owner=owner, token=token, user_digits=user_digits, job=job)
        launch(name)
    return name


def submit(config: TrainConfig, ref: DataRef, *, owner: str, token: str | None = None,
           user_digits: int = 0, job: dict | None = None) -> tuple[str, bool]:
    """Record a run and start it now if a job slot is free, else leave it queued: it starts by
    itself when the runs before it have ended. (name, started now)."""
    name = enqueue(config, ref, owner=owner, token=token, user_digits=user_digits, job=job)
    return name, name in start_next()


def requeue(name: str, job: dict, *, owner: str, token: str | None = None, start: bool = True) -> bool:
    """Queue more work on an ended run (continue it); whether it started now (with `start`; the
    command line runs it itself). Refused while the run is queued or running; the owner is whoever
    asks (their key may stop it)."""
    with queue_lock():
        meta = registry.read_meta(name)
        state = status.status_of(meta)
        if state in status.ACTIVE:
            raise ValueError(f"{name} is {state}: wait until it has ended")
        meta.pop(LAUNCH_KEY, None)
        meta.update(status=status.QUEUED, job=job, owner=owner, ended_as=state)
        meta.pop("owner_key", None)
        if token:
            meta["owner_key"] = owner_key(token)
        runs.clear_stop(name)
        registry.write_meta(name, meta)
    return start and name in start_next()


def start_next() -> list[str]:
    """Start the oldest ready queued runs while job slots are free (called when a job ends, and
    when a run is queued); the names started."""
    started: list[str] = []
    with queue_lock():
        views = runs.active_runs()
        free = max_jobs() - sum(occupying(v) for v in views)
        active = {v.name for v in views}
        for view in views:
            if free <= 0:
                break
            if view.status == status.QUEUED and not occupying(view) and _ready(view, active):
                launch(view.name)
                started.append(view.name)
                free -= 1
    return started


def _ready(view: runs.RunView, active: set[str]) -> bool:
    """An ensemble waits until none of its members is queued or running; other runs are ready."""
    job = view.meta.get("job") or {}
    return job.get("kind") != ENSEMBLE or not active & set(job.get("members") or [])


def submit_ensemble(config: TrainConfig, ref: DataRef, seeds: list[int], *, owner: str,
                    token: str | None = None) -> list[str]:
    """Queue one run per seed (same settings, same validation split) and, after them, the run that
    combines them into one ensemble model; start what can start. The names, ensemble last."""
    if not 2 <= len(seeds) <= 10 or len(set(seeds)) != len(seeds):
        raise ValueError(f"an ensemble needs 2 to 10 different seeds, got {seeds}")
    config.validate()
    base = config.name or f"{config.arch}-ensemble-{time.strftime('%Y%m%d-%H%M%S')}"
    registry.validate_name(f"{base}-s{max(seeds)}")
    members = [enqueue(replace(config, seed=s, split_seed=seeds[0], name=f"{base}-s{s}"), ref, owner=owner,
                       token=token) for s in seeds]
    combined = enqueue(replace(config, name=base), ref, owner=owner, token=token,
                       job={"kind": ENSEMBLE, "members": members})
    start_next()
    return [*members, combined]


# --------------------------------------------------------------------------- processes


def launch(name: str) -> subprocess.Popen:
    """Start the job process of queued run `name` (detached: it outlives a server restart)."""
    folder = registry.model_dir(name)
    with open(folder / runs.LOG_FILE, "ab") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "core", "train", "--run", name],
            cwd=paths.ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    meta = registry.read_meta(name)
    meta[LAUNCH_KEY] = {"pid": proc.pid, "host": processes.this_process()["host"],
                        **({"start_time": t} if (t := processes.start_time(proc.pid)) else {})}
    registry.write_meta(name, meta)
    threading.Thread(target=_reap, args=(proc, name), name=f"reap-{name}", daemon=True).start()
    return proc


def _reap(proc: subprocess.Popen, name: str) -> None:
    """Wait for a job process (no zombies); one that died before it could say so is marked failed."""
    code = proc.wait()
    try:
        meta = registry.read_meta(name)
    except ValueError:
        return
    if meta.get("status") == status.QUEUED:
        meta.update(status=status.FAILED, error=_log_tail(name) or f"the job process exited with code {code}")
        registry.write_meta(name, meta)


def _log_tail(name: str, lines: int = 3) -> str:
    try:
        text = (registry.model_dir(name) / runs.LOG_FILE).read_text(errors="replace")
    except OSError:
        return ""
    return " ".join(ln.strip() for ln in text.strip().splitlines()[-lines:])


def stop(name: str, token: str | None) -> None:
    """Ask run `name` to stop after its current batch; only its owner may (PermissionError)."""
    meta = registry.read_meta(name)
    if not owns(meta, token):
        raise PermissionError(f"only {meta.get('owner', 'its owner')}, who started {name}, can stop it")
    runs.request_stop(name)
