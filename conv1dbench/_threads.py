"""The cores the backends' compute threads share: at most one multi-threaded computation at a time.

Numba's kernels and the FFT engines each run on several threads where the work pays for them.  Two
such calls at once (Dask calls from several threads; a user's own thread pool) would put twice as
many threads as cores to work, and each would run slower than alone.  So a backend that wants
several threads :func:`claim`\\ s them: the first call gets them, a call that comes while they are
held runs on one thread, and nobody waits.  Single-threaded calls never take the claim.

OpenBLAS's threads, once awake, spin for about 0.1 s after each product (NumPy's ``@``, our
``im2col``, a user's own BLAS work) and hold a core while they do.  A parallel region started in
that window runs at the pace of its thread that shares a core with a spinner: twice as slow on two
cores.  So a claim for several threads first puts OpenBLAS's threads to rest
(:func:`rest_blas_threads`); OpenBLAS starts them again on its next multi-threaded product, at no
measurable cost (``results/NOTES.md``, "threads: OpenBLAS's spinning threads, put to rest").

A computation made of independent pieces whose own calls release the GIL (the FFT backends' steps of
windows) spreads them over the claimed cores with :func:`fan_out`: this thread and a few helper threads
of this module's, kept for the life of the process, each take the next piece until none is left.
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading

__all__ = ["claim", "cores", "fan_out", "rest_blas_threads"]

_held = threading.Lock()
_shutdowns: list | None = None  # OpenBLAS's blas_thread_shutdown_ of each OpenBLAS loaded (found on first use)


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


def _blas_shutdowns() -> list:
    """``blas_thread_shutdown_`` of every pthreads OpenBLAS in this process (threadpoolctl finds them)."""
    global _shutdowns
    if _shutdowns is None:
        found = []
        try:
            from threadpoolctl import ThreadpoolController  # import time: only a parallel call needs it

            for lib in ThreadpoolController().select(internal_api="openblas").lib_controllers:
                shutdown = getattr(getattr(lib, "dynlib", None), "blas_thread_shutdown_", None)
                if shutdown is not None and lib.threading_layer == "pthreads":
                    found.append(shutdown)
        except Exception:  # noqa: BLE001 - resting BLAS threads is an optimisation, never a failure
            found = []
        _shutdowns = found
    return _shutdowns


def rest_blas_threads() -> bool:
    """Put OpenBLAS's worker threads to rest now, instead of letting them spin; True where that was done.

    Only in a process whose only Python thread is this one (besides :func:`fan_out`'s helpers, which
    run no BLAS work): OpenBLAS's shutdown must not meet a product running on another thread.  The
    fork handler OpenBLAS registers itself calls the same function, and its next multi-threaded
    product starts the threads again.
    """
    others = threading.active_count() - 1 - len(_helpers.idents)  # helpers run no BLAS work: not counted
    if others != 0 or threading.current_thread() is not threading.main_thread():
        return False
    shutdowns = _blas_shutdowns()
    for shutdown in shutdowns:
        shutdown()
    return bool(shutdowns)


@contextlib.contextmanager
def claim(wanted: int):
    """``with claim(n) as threads``: ``threads`` is ``n`` if no other multi-threaded computation runs
    now, else 1; the cores are held until the block ends, and OpenBLAS's spinning threads are put to
    rest before it starts (:func:`rest_blas_threads`)."""
    if wanted <= 1 or not _held.acquire(blocking=False):
        yield 1
        return
    try:
        rest_blas_threads()
        yield wanted
    finally:
        _held.release()


class _Helpers:
    """The helper threads of :func:`fan_out`: daemons that run the tasks put on their queue, started
    as they are first needed and kept (a thread's FFT plans and arrays are its own, so a new thread
    per call would plan again)."""

    def __init__(self):
        self.tasks: queue.SimpleQueue = queue.SimpleQueue()
        self.idents: set[int] = set()
        self._lock = threading.Lock()

    def start(self, count: int) -> None:
        with self._lock:
            while len(self.idents) < count:
                thread = threading.Thread(target=self._serve, name=f"conv1dbench-{len(self.idents) + 1}",
                                          daemon=True)
                thread.start()
                self.idents.add(thread.ident)

    def _serve(self) -> None:
        while True:
            self.tasks.get()()


_helpers = _Helpers()
os.register_at_fork(after_in_child=lambda: globals().update(_helpers=_Helpers()))  # the threads stay behind


def fan_out(run, jobs, threads: int) -> None:
    """``run(job)`` for every job, on ``threads`` threads at most: this one and helper threads, each
    taking the next job until none is left (so a thread slowed by other work takes fewer).  The
    caller holds the cores (:func:`claim`); ``run`` must release the GIL for most of its time.  An
    exception stops the taking of jobs and is raised here once every thread has stopped."""
    jobs = list(jobs)
    count = min(threads, len(jobs))
    if count <= 1:
        for job in jobs:
            run(job)
        return
    pending, lock, errors, finished = iter(jobs), threading.Lock(), [], threading.Semaphore(0)

    def take():
        while not errors:
            with lock:
                job = next(pending, pending)  # the iterator itself marks the end
            if job is pending:
                return
            try:
                run(job)
            except BaseException as error:  # noqa: BLE001 - raised again on the calling thread
                errors.append(error)

    def helper():
        try:
            take()
        finally:
            finished.release()

    _helpers.start(count - 1)
    for _ in range(count - 1):
        _helpers.tasks.put(helper)
    take()
    for _ in range(count - 1):
        finished.acquire()
    if errors:
        raise errors[0]
