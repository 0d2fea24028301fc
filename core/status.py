"""The one vocabulary of run statuses, on disk (`meta.json`) and on screen.

queued -> running -> done | stopped | failed; a run whose process died while it was running is
shown as interrupted (its best epoch, if any, is kept and usable like any other model).
"""

from __future__ import annotations

from core import processes

QUEUED = "queued"
RUNNING = "running"
DONE = "done"
STOPPED = "stopped"
FAILED = "failed"
INTERRUPTED = "interrupted"
STATUSES = (QUEUED, RUNNING, DONE, STOPPED, FAILED, INTERRUPTED)
ACTIVE = (QUEUED, RUNNING)
FINISHED = (DONE, STOPPED, FAILED, INTERRUPTED)

LABELS = {
    QUEUED: "⏳ queued",
    RUNNING: "🏃 running",
    DONE: "✅ done",
    STOPPED: "⏹ stopped",
    FAILED: "❌ failed",
    INTERRUPTED: "⚠️ interrupted",
}

WRITER_KEY = "process"  # in meta.json while a run is active: the job process's pid, host, start time
_EARLIER_WORDS = {"complete": DONE, "training": RUNNING, "pending": QUEUED}  # models saved before


def status_of(meta: dict) -> str:
    """A run's status from its `meta.json`: the recorded one, except that an active run whose
    process is provably dead is `interrupted`. Models saved before this vocabulary are mapped."""
    recorded = meta.get("status", DONE)
    status = _EARLIER_WORDS.get(recorded, recorded)
    if status not in STATUSES:
        return FAILED
    writer = meta.get(WRITER_KEY) or meta.get("training_process")
    if status == RUNNING and isinstance(writer, dict) and processes.is_dead(writer):
        return INTERRUPTED
    return status
