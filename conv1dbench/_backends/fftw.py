"""``fftw``: the FFT convolution algorithm (:mod:`conv1dbench._backends._fourier`) on FFTW, through pyFFTW.

Plans.  Every transform the algorithm asks for (its kind, rows, size, dtype and threads) is an FFTW
plan over arrays of its own, made once per thread and kept (:meth:`conv1dbench._backends._fourier.Engine.transform`);
a call writes the plan's input array and executes it.  Plans are made with the effort of
``conv1dbench.configure_fft`` (``"estimate"`` unless set), but first from wisdom alone: where FFTW
already knows a plan of that effort or a harder one, it takes it at no cost.  FFTW's wisdom is kept
(:func:`conv1dbench._backends.keep_wisdom`: in conv1dbench's wisdom file, under this machine's
fingerprint) with the pyFFTW version: imported on the first plan of a process, and written back after
every plan made by measurement, so that a later process does not measure again.  Planning takes a
lock (FFTW's planner is not thread-safe).

Threads: where one transform's work reaches the kernel parameter ``fftw.parallel_min_work`` (measured,
``results/NOTES.md``, "FFT engines: threads"), FFTW's own threads run it.

pyFFTW is an optional extra (``pip install conv1dbench[fftw]``); it links FFTW, which is GPL.
"""

from __future__ import annotations

import base64
import os
import threading

from .. import _planning
from . import _fourier, keep_wisdom, kept_wisdom
from ._fourier import *  # noqa: F403 - the declarations every FFT backend shares (its __all__)

#: How the OpenMP threads of pyFFTW's own libgomp wait for work: asleep.  With libgomp's default (spin a
#: while, then sleep) a two-thread float32 transform took 8 ms instead of 0.15 ms whenever another
#: process held the second core; with a short spin two threads lost to one (``results/NOTES.md``, "fftw:
#: threads").  libgomp reads this once, when pyFFTW loads it; a user's own setting is left as it is.
WAIT_POLICY = "passive"
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _import_pyfftw():
    chosen = any(name in os.environ for name in _WAIT_SETTINGS)
    if not chosen:
        os.environ["OMP_WAIT_POLICY"] = WAIT_POLICY
    try:
        import pyfftw  # optional dependency: the backend is unavailable without it
    except ImportError:  # pragma: no cover - depends on the installation
        return None
    finally:
        if not chosen:
            del os.environ["OMP_WAIT_POLICY"]
    return pyfftw


pyfftw = _import_pyfftw()

#: The name FFTW's wisdom is filed under in conv1dbench's wisdom file.
WISDOM_NAME = "fftw"
_planner = threading.Lock()
_state = {"imported": False}


def unavailable_reason() -> str | None:
    if pyfftw is None:
        return "pyFFTW is not installed; pip install 'conv1dbench[fftw]' (pyFFTW links FFTW, which is GPL)"
    return None


def import_wisdom() -> bool:
    """Give FFTW the wisdom kept in conv1dbench's wisdom file for this machine and pyFFTW version;
    whether there was any.  Done once per process, on the first plan."""
    _state["imported"] = True
    kept = kept_wisdom(WISDOM_NAME)
    if not isinstance(kept, dict) or kept.get("pyfftw") != pyfftw.__version__:
        return False
    try:
        pyfftw.import_wisdom(tuple(base64.b64decode(text) for text in kept["wisdom"]))
    except (KeyError, TypeError, ValueError):  # a damaged entry is no reason to fail: plan afresh
        return False
    return True


def export_wisdom() -> None:
    """Keep FFTW's wisdom, all it knows in this process, in conv1dbench's wisdom file."""
    texts = [base64.b64encode(data).decode("ascii") for data in pyfftw.export_wisdom()]
    keep_wisdom(WISDOM_NAME, {"pyfftw": pyfftw.__version__, "wisdom": texts})


def _flag(effort: str) -> str:
    return "FFTW_" + effort.upper()


class _Plan(_fourier.Transform):
    """An FFTW plan over aligned arrays of its own; :meth:`run` executes it on them."""

    def __init__(self, kind, rows, size, dtype, threads):
        super().__init__(kind, rows, size, dtype, threads)
        self.input = pyfftw.empty_aligned(self.in_shape, self.in_dtype)
        self.output = pyfftw.empty_aligned(self.out_shape, self.out_dtype)
        direction = "FFTW_BACKWARD" if kind in ("c2r", "c2c_inverse") else "FFTW_FORWARD"
        effort = _planning.effort()
        with _planner:
            if not _state["imported"]:
                import_wisdom()
            self.measured = False
            try:
                self.plan = self._plan(direction, (_flag(effort), "FFTW_WISDOM_ONLY"))
                self.from_wisdom = True
            except RuntimeError:  # no wisdom for it: plan with the effort asked for
                self.plan = self._plan(direction, (_flag(effort),))
                self.from_wisdom, self.measured = False, effort != "estimate"
                if self.measured:
                    export_wisdom()

    def _plan(self, direction, flags):
        return pyfftw.FFTW(self.input, self.output, axes=(1,), direction=direction,
                           flags=flags + ("FFTW_DESTROY_INPUT",), threads=self.threads)

    def run(self):
        self.plan.execute()
        return self.output


class Engine(_fourier.Engine):
    name = "fftw"
    # the default 6e5: 128 x 512 points paid, 2 x 8192 (2e5) did not; one row of 131072 did
    PARALLEL_PARAM = "fftw.parallel_min_work"
    CACHE_PARAM, LARGE = "fftw.cache_points", 1.0  # fitted: benchmarks/fft_blocks.py, results/archive

    def make(self, kind, rows, size, dtype, threads):
        return _Plan(kind, rows, size, dtype, threads)

    def next_fast_len(self, n, real):
        return pyfftw.next_fast_len(n)


ENGINE = Engine()
forward, backward_input, backward_weight, work, threads = _fourier.functions(ENGINE)
