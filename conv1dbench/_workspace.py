"""Scratch memory the backends reuse across calls: one pool per thread, capped, freeable.

A backend's big internal temporaries (im2col's padded input and column chunks) are the same size
call after call.  Allocated afresh, every call pays a page fault per 4 KiB page on first touch
wherever glibc hands the block back to the kernel on ``free`` (blocks beyond its mmap threshold,
and trimmed heap tops): with the allocator as users have it, that was a measurable share of a
memory-bound call (``results/NOTES.md``, "workspaces: page faults").  :func:`scratch` instead keeps
one buffer per temporary's name in a pool of the calling thread, so that a repeated call touches
pages it already owns.

Rules that keep this safe:

* one pool per thread (``threading.local``): Dask, and any user, calls the backends from several
  threads at once, and a buffer is never shared between two computations in flight;
* a scratch array is valid until the same thread asks for the same name again, so a backend uses it
  within one call and never returns it, or a view of it: results are always arrays of their own;
* a pool holds at most :func:`configure_workspaces`'s ``limit_bytes`` (:data:`DEFAULT_LIMIT_BYTES`);
  a request beyond that gets a fresh array that is not kept;
* :func:`free_workspaces` drops every pool's buffers (the public ``conv1dbench.free_workspaces``).
"""

from __future__ import annotations

import threading
import weakref

import numpy as np

__all__ = ["DEFAULT_LIMIT_BYTES", "configure_workspaces", "free_workspaces", "held_bytes", "scratch"]

#: The most bytes one thread's pool keeps: the temporaries of the default grid's largest layer
#: shapes fit, and a machine with a few threads calling us keeps at most this much per thread.
DEFAULT_LIMIT_BYTES = 256 * 2**20
#: Buffers start at a multiple of this many bytes (a cache line, what BLAS and vector loads like).
ALIGN_BYTES = 64

_settings = {"limit_bytes": DEFAULT_LIMIT_BYTES}
_local = threading.local()
_pools: weakref.WeakSet = weakref.WeakSet()  # every live thread's pool, so that freeing reaches them all
_pools_lock = threading.Lock()


class _Pool:
    """One thread's buffers, by temporary name: flat bytes, aligned, reused while large enough."""

    def __init__(self):
        self.buffers: dict[str, np.ndarray] = {}
        self.lock = threading.Lock()  # free_workspaces may clear it from another thread

    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.buffers.values())


def _pool() -> _Pool:
    pool = getattr(_local, "pool", None)
    if pool is None:
        pool = _local.pool = _Pool()
        with _pools_lock:
            _pools.add(pool)
    return pool


def scratch(name: str, shape: tuple, dtype) -> np.ndarray:
    """An uninitialised C-contiguous array of ``shape`` and ``dtype`` for the temporary ``name``.

    The same thread asking for ``name`` again gets the same memory (grown if too small), so the array
    is valid until then; it must never be returned to a caller, nor a view of it.  A request that
    would take this thread's pool beyond the limit gets a fresh array, not kept.
    """
    dtype = np.dtype(dtype)
    nbytes = dtype.itemsize
    for n in shape:
        nbytes *= int(n)
    pool = _pool()
    with pool.lock:
        held = pool.buffers.get(name)
        if held is None or held.nbytes - ALIGN_BYTES < nbytes:
            others = pool.nbytes() - (held.nbytes if held is not None else 0)
            if others + nbytes + ALIGN_BYTES > _settings["limit_bytes"]:
                return np.empty(shape, dtype)
            pool.buffers.pop(name, None)  # the old buffer goes before the new one is made
            held = pool.buffers[name] = np.empty(nbytes + ALIGN_BYTES, np.uint8)
    start = -held.ctypes.data % ALIGN_BYTES
    return held[start:start + nbytes].view(dtype).reshape(shape)


def held_bytes() -> int:
    """Bytes the calling thread's pool holds now."""
    pool = getattr(_local, "pool", None)
    if pool is None:
        return 0
    with pool.lock:
        return pool.nbytes()


def free_workspaces() -> int:
    """Free the scratch memory the backends keep for reuse; returns the bytes released.

    Frees the pools of every thread, the calling one and the others alike.  A computation running in
    another thread at that moment is not disturbed: the arrays it holds keep their memory until it
    is done, and its next call allocates afresh.

    Examples
    --------
    >>> import numpy as np, conv1dbench as cb
    >>> y = cb.conv1d(np.ones((2, 4, 1000)), np.ones((8, 4, 5)), backend="im2col")
    >>> cb.free_workspaces() >= 0
    True
    """
    with _pools_lock:
        pools = list(_pools)
    freed = 0
    for pool in pools:
        with pool.lock:
            freed += pool.nbytes()
            pool.buffers.clear()
    return freed


def configure_workspaces(*, limit_bytes: int | None = None) -> dict:
    """Settings of the backends' reused scratch memory; returns the settings before the call.

    Parameters
    ----------
    limit_bytes : int, optional
        The most bytes each thread's pool keeps (default :data:`DEFAULT_LIMIT_BYTES`, 256 MiB);
        0 keeps nothing (every temporary allocated afresh, as NumPy would).  Changing it frees
        every pool (:func:`free_workspaces`), so the new limit holds at once.

    Examples
    --------
    >>> import conv1dbench as cb
    >>> before = cb.configure_workspaces(limit_bytes=64 * 2**20)
    >>> before["limit_bytes"] == 256 * 2**20
    True
    >>> _ = cb.configure_workspaces(**before)
    """
    before = dict(_settings)
    if limit_bytes is not None:
        if int(limit_bytes) < 0:
            raise ValueError(f"limit_bytes must be at least 0, got {limit_bytes}")
        _settings["limit_bytes"] = int(limit_bytes)
        free_workspaces()
    return before
