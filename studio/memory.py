"""Keep the web server's memory close to what it holds (Streamlit Community Cloud gives an app
690 MB-2.7 GB for everything).

glibc keeps memory freed by large numpy arrays for later (its mmap threshold rises after big frees,
and each thread gets its own arena), so the server's RSS would only grow. `tune_allocator` asks
for large blocks to be returned as soon as they are freed and for few arenas; `trim` gives back
what is free after a heavy step. Both do nothing where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
R = TypeVar("R")

M_MMAP_THRESHOLD = -3  # from malloc.h: blocks at least this big are mapped and unmapped on free
M_ARENA_MAX = -8
MMAP_THRESHOLD = 128 * 1024
ARENA_MAX = 2


@functools.lru_cache(maxsize=1)
def _libc():
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name) if name else None
    except OSError:
        return None
    return libc if libc is not None and hasattr(libc, "mallopt") else None


@functools.lru_cache(maxsize=1)
def tune_allocator() -> bool:
    """Once per process: large blocks back to the system when freed, at most two arenas."""
    libc = _libc()
    if libc is None:
        return False
    return bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(libc.mallopt(M_ARENA_MAX, ARENA_MAX))


def trimmed(work: Callable[P, R]) -> Callable[P, R]:
    """`work`, then `trim`: for the heavy steps whose temporaries are gone once they return."""

    @functools.wraps(work)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return work(*args, **kwargs)
        finally:
            trim()

    return run


def trim() -> None:
    """Return the heap's free memory to the system (after a large temporary is gone)."""
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)
