"""The cores the backends' compute threads share: at most one multi-threaded computation at a time.

Numba's kernels and the FFT engines each run on several threads where the work pays for them.  Two
such calls at once (Dask calls from several threads; a user's own thread pool) would put twice as
many threads as cores to work, and each would run slower than alone.  So a backend that wants
several threads :func:`claim`\\ s them: the first call gets them, a call that comes while they are
held runs on one thread, and nobody waits.  Single-threaded calls never take the claim.
"""

from __future__ import annotations

import contextlib
import os
import threading

__all__ = ["claim", "cores"]

_held = threading.Lock()


def cores() -> int:
    """The threads a backend may use: ``$NUMBA_NUM_THREADS`` if set (Numba's own count), else the cores
    this process may run on."""
    configured = os.environ.get("NUMBA_NUM_THREADS")
    if configured and configured.isdigit() and int(configured) > 0:
        return int(configured)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def claim(wanted: int):
    """``with claim(n) as threads``: ``threads`` is ``n`` if no other multi-threaded computation runs
    now, else 1; the cores are held until the block ends."""
    if wanted <= 1 or not _held.acquire(blocking=False):
        yield 1
        return
    try:
        yield wanted
    finally:
        _held.release()
