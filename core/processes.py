"""Which process wrote a run, and whether it still lives: the pid alone is not enough, pids are reused.

A job process records `this_process()` in its run's files; anyone may later ask `is_dead(record)`
to tell a run killed mid-way from a live one. Linux's /proc gives the start time that, with the pid
and the host, names one process; elsewhere a run is only called dead when its pid is gone.
"""

from __future__ import annotations

import os
import signal
import socket
from pathlib import Path


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), or None
    where there is no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (the command) is in brackets and may hold spaces: count the fields after it.
    fields = stat.rsplit(")", 1)[-1].split()
    try:
        return int(fields[19])
    except (IndexError, ValueError):
        return None


def this_process() -> dict:
    """`{"pid", "host", "start_time"}` of the calling process (no start time where /proc is missing)."""
    pid = os.getpid()
    found = {"pid": pid, "host": socket.gethostname()}
    start = start_time(pid)
    if start is not None:
        found["start_time"] = start
    return found


def is_dead(record: dict) -> bool:
    """True only when the recorded process is provably gone: same host, and the pid no longer
    exists, is a zombie, or now belongs to a process started at another time."""
    pid, host = record.get("pid"), record.get("host")
    if not isinstance(pid, int) or pid <= 0 or host != socket.gethostname():
        return False  # another machine (or an old record): it cannot be checked from here
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, owned by someone else
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()[0]
    except (OSError, IndexError):
        state = ""
    if state in ("Z", "X"):  # killed, not yet reaped by its parent
        return True
    recorded = record.get("start_time")
    if recorded is None:
        return False
    current = start_time(pid)
    return current is not None and current != recorded


def kill(record: dict, sig: int = signal.SIGKILL) -> bool:
    """Send `sig` to the recorded process if it is still that process; whether it was sent."""
    if is_dead(record) or record.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(record["pid"]), sig)
    except (ProcessLookupError, PermissionError, KeyError, ValueError):
        return False
    return True
