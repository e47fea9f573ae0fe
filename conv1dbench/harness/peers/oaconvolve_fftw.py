"""``scipy.signal.oaconvolve`` on pyFFTW's scipy.fft backend: FFTW with our thread count, measured plans."""

from __future__ import annotations

import contextlib

from ._scipy_fft import oaconvolve
from ._spec import Peer, planned, threads

#: FFTW's planner effort: plans measured, as a user who keeps them would ask.
EFFORT = "FFTW_MEASURE"
#: Seconds pyFFTW's interface cache keeps an unused plan: longer than any gap between two calls of one
#: measurement (a sample is at most a few calls of seconds), short enough that a worker timing a whole
#: grid does not keep every point's plans and buffers (the default, 0.1 s, would replan a slow call's).
KEEPALIVE_S = 60.0


def _scope():
    """A ``with`` scope in which scipy.fft runs on pyFFTW with :func:`threads` threads and new plans are
    made with :data:`EFFORT`; its plans stay in pyFFTW's interface cache for :data:`KEEPALIVE_S`.

    The threads are scipy.fft's workers: pyFFTW's scipy.fft backend hands FFTW ``scipy.fft.get_workers()``
    threads (``pyfftw.config.NUM_THREADS`` counts only where no thread count is passed, which this backend
    always passes).  The cache, once on, stays on (turning it off drops the plans); it serves pyFFTW's
    interfaces alone, and each implementation has a worker process of its own.
    """
    import pyfftw  # optional dependency: a peer only where installed
    import pyfftw.interfaces.cache  # optional dependency, as above
    import pyfftw.interfaces.scipy_fft  # optional dependency, as above
    import scipy.fft  # import time: only the threaded peers' cases need it

    pyfftw.interfaces.cache.enable()
    pyfftw.interfaces.cache.set_keepalive_time(KEEPALIVE_S)
    count = threads()

    @contextlib.contextmanager
    def scope():
        effort, pyfftw.config.PLANNER_EFFORT = pyfftw.config.PLANNER_EFFORT, EFFORT
        try:
            with scipy.fft.set_backend(pyfftw.interfaces.scipy_fft), scipy.fft.set_workers(count):
                yield
        finally:
            pyfftw.config.PLANNER_EFFORT = effort
    return scope


PEER = Peer(
    name="oaconvolve-fftw", library="pyFFTW", needs="pyfftw", package="pyFFTW",
    licence="BSD-3-Clause (pyFFTW), GPL-2.0-or-later (FFTW)",
    computes="overlap-add convolution on FFTW", threads="ours",
    call="the same call inside `with scipy.fft.set_backend(pyfftw.interfaces.scipy_fft), "
         "scipy.fft.set_workers({threads}):` (pyFFTW's backend gives FFTW scipy.fft's workers as its threads), "
         f"with `pyfftw.config.PLANNER_EFFORT = \"{EFFORT}\"` and pyFFTW's interface cache on "
         f"(`pyfftw.interfaces.cache.enable()`, `set_keepalive_time({KEEPALIVE_S:g})`); called once when its case "
         "is made, so its plans are measured before any timed call, the first call included",
    signal=lambda x, w, w2, mode: (planned(oaconvolve(x, w2, mode, _scope())), None),
    fft=True, slower=4.0, import_s=0.3, build_s=0.5)
