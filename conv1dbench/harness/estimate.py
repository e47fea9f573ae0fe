"""How long a sweep takes: each measurement's predicted seconds, from the cost models.

The sweep's progress bar (:func:`conv1dbench.harness.runner.sweep`) advances by these predictions,
not by one per measurement: measurements differ by orders of magnitude (a 4 µs call spends the
``--min-time`` budget, a 1.5 s call of torch on a long kernel six calls), so a count of
them says little about the time left.  The time left is then the predicted seconds left scaled by
how the run so far compares with its predictions (seconds elapsed over predicted seconds done, less
the one-off seconds of compilation, leaning on the predictions early: ``runner._Progress``), which
converges on the truth as the run goes, however far off the predictions are on this machine.

One measurement in a worker (:mod:`conv1dbench.harness.worker`, :mod:`conv1dbench.timing`) is the
point's data made, the first call, a warm-up call, samples until ``min_time_s`` has passed with at
least ``min_samples`` of them, then one more call and a float64 reference for the error check:
``setup + 3 t + max(min_samples s, min(min_time_s, max_samples s))``, where ``t`` is one call and
``s = max(t, sample_s)`` one sample (calls are grouped into samples of about ``sample_s``); the setup
of the peers that plan or compile when their case is made (FFTW, JAX) adds their spec's ``build_s``.  A point
timed once (out of core) is its setup, the call, and its file read and written.  A skipped
measurement costs nothing.

``t`` of one of our backends is its cost model's prediction (:func:`conv1dbench._model.predict`);
without a model for this dtype and pass, its model of the other pass on this problem's work counts
(they count both products of a backward pass), and for a complex dtype four times its model of the
real dtype of the same precision.  For a backend with no model at all (a GPU backend), auto and
the peers, the proxy is the fastest model's prediction on the point (auto runs that backend), times
the peer's ``slower`` (its spec, :mod:`conv1dbench.harness.peers`: the FFT peers, scipy, the oaconvolve
variants, JAX's fftconvolve), and for the direct-only peers on signals (``numpy.convolve``, torch's
``conv1d`` on one channel, JAX's ``convolve``) at least the point's flops at their spec's ``gflops``.
Auto on one thread: :data:`ONE_THREAD_SLOWER` times the fastest prediction.  With no model
predicting at all, the flops at :data:`NOMINAL_GFLOPS`.  The constants come from the committed runs
on the project's 2-core machine, but those of the peers no committed run has timed yet (the
oaconvolve variants, JAX), which are guesses from a few calls timed by hand; another machine's
speed, and a wrong guess, are what the bar's scaling absorbs.
"""

from __future__ import annotations

import inspect

import numpy as np

from .. import _model, timing
from .._registry import BACKEND_NAMES, module
from . import peers
from .busy import SETTLE_S
from .cases import ONE_THREAD, backend_of, skip_reason
from .grid import flops, problem

#: Seconds to start a worker process and import what it times (0.55-0.9 s here); a peer's slower imports
#: are its spec's ``import_s`` (:mod:`conv1dbench.harness.peers`).
PROCESS_S = 0.7
#: Fixed seconds of one call where no model predicts one (Python-side checks and dispatch, ~4 µs).
CALL_S = 5e-6
#: GFLOP/s of a call no model predicts: a deliberately plain rate, that the scaling corrects.
NOMINAL_GFLOPS = 10.0
#: Ours on one thread against the fastest model's prediction (made for our thread count): the work of
#: two threads on one, at most.
ONE_THREAD_SLOWER = 2.0
#: Seconds to make one input element (seeded normal numbers, cast: 13-15 ns here) and a fixed cost of the setup.
DATA_S, SETUP_S = 2e-8, 1e-3
#: Bytes per second an out-of-core point reads and writes, both together (1.5 GB/s:
#: ``results/archive/amd-epyc-avx512-blas-haswell/dask``).
IO_BYTES_S = 1e9
#: The sampling defaults of :func:`conv1dbench.timing.measure_interleaved`, which the worker uses.
_TIMING = {name: p.default for name, p in inspect.signature(timing.measure_interleaved).parameters.items()}


class Estimate:
    """Predicted seconds of a sweep's measurements, for its timing settings and cost models.

    ``models``: ``{model_key: model}`` (default: the shipped ones, :func:`conv1dbench._model.load_default`).
    Predictions are kept per backend and problem, so predicting a grid's points takes a fraction of a second.
    """

    def __init__(self, min_time_s: float, min_samples: int, models: dict | None = None):
        self.min_time_s, self.min_samples = min_time_s, min_samples
        self.models = _model.load_default() if models is None else models
        self._predicted: dict = {}  # (backend, problem) -> seconds, or None without a model

    def measurement_s(self, impls: list[str], point: dict, interleave: bool = False, min_time_s: float | None = None,
                      ) -> float:
        """Predicted seconds a worker spends on ``point`` with ``impls``: each timed alone, one after another,
        or (``interleave``) in turn sample by sample, as auto's check times a pair (for ``min_time_s``,
        if given, instead of the sweep's).  Starting the worker is apart (:func:`process_s`).
        """
        impls = [impl for impl in impls if not skip_reason(impl, point)]
        if not impls:
            return 0.0
        calls = [self.call_s(impl, point) for impl in impls]
        data = SETUP_S + DATA_S * _elements(point)
        builds = [_peer_value(impl, "build_s", 0.0) for impl in impls]
        if point.get("timing") == "once":  # a tiny warm-up call, the call, its signal file read and output written
            return data + sum(builds) + sum(calls) + len(calls) * 2 * _bytes(point) / IO_BYTES_S
        reference = self.fastest_s({**point, "dtype": "float64"})  # the error check's
        min_time_s = self.min_time_s if min_time_s is None else min_time_s
        sample = _TIMING["sample_s"]
        if not interleave:  # one row after another: each its own data, samples and check
            return sum(data + build + reference + 3 * t + self._sampling_s([max(t, sample)], min_time_s)
                       for t, build in zip(calls, builds, strict=True))
        return (data + sum(builds) + len(calls) * reference + 3 * sum(calls)
                + self._sampling_s([max(t, sample) for t in calls], min_time_s))

    def _sampling_s(self, samples: list[float], min_time_s: float) -> float:
        """Rounds of one sample each until ``min_time_s`` has passed and ``min_samples`` are taken (at most
        ``max_samples``)."""
        per_round = sum(samples)
        return max(self.min_samples * per_round, min(min_time_s, _TIMING["max_samples"] * per_round))

    def call_s(self, impl: str, point: dict) -> float:
        """Predicted seconds of one call of ``impl`` on ``point`` (the module's notes give the proxies)."""
        backend = backend_of(impl)
        own = self._model_s(backend, problem(point)) if backend else None
        if own is not None:
            return own
        slower = ONE_THREAD_SLOWER if impl.endswith(ONE_THREAD) else _peer_value(impl, "slower", 1.0)
        fastest = self.fastest_s(point) * slower
        gflops = _peer_value(impl, "gflops", None)
        if point["api"] == "signal" and gflops:
            return max(fastest, CALL_S + flops(point) / (gflops * 1e9))
        return fastest

    def fastest_s(self, point: dict) -> float:
        """The fastest model's prediction for ``point``; without any, its flops at :data:`NOMINAL_GFLOPS`."""
        core = problem(point)
        predicted = [s for s in (self._model_s(name, core) for name in BACKEND_NAMES) if s is not None]
        return min(predicted) if predicted else CALL_S + flops(point) / (NOMINAL_GFLOPS * 1e9)

    def _model_s(self, backend: str, core) -> float | None:
        """``backend``'s prediction for ``core`` (kept), by the fallbacks of the module's notes; None without one."""
        if (backend, core) not in self._predicted:
            self._predicted[backend, core] = _predict(self.models, backend, core)
        return self._predicted[backend, core]


def _predict(models: dict, backend: str, core) -> float | None:
    if module(backend) is None:  # it does not load here (a broken dependency): no work counts, no prediction
        return None
    tries = [(core.dtype.name, 1.0)]
    if core.dtype.kind == "c":  # a complex multiply-add is four real ones
        tries.append((np.dtype(f"float{core.dtype.itemsize * 4}").name, 4.0))
    other = "backward" if core.direction == "forward" else "forward"
    for dtype, factor in tries:
        for direction in (core.direction, other):
            model = models.get(_model.model_key(backend, dtype, direction))
            if model is not None:
                return factor * _model.predict(model, _model.features(core, backend))
    return None


def process_s(impls: list[str]) -> float:
    """Predicted seconds to start one worker process for ``impls``."""
    imports = sum(_peer_value(impl, "import_s", 0.0) for impl in impls)
    return PROCESS_S + SETTLE_S + imports  # SETTLE_S: the worker's rest before timing


def _elements(point: dict) -> int:
    """Input elements a point's data holds (the out-of-core points read theirs from a file made once)."""
    if point.get("store"):
        return 0
    core = problem(point)
    return core.batch * core.c_in * core.length + core.c_out * (core.c_in // core.groups) * core.taps + (
        core.batch * core.c_out * core.l_out if core.direction == "backward" else 0)


def _bytes(point: dict) -> float:
    """Bytes of signal an out-of-core point reads (and as many written)."""
    return float(point["batch"]) * point["N"] * np.dtype(point["dtype"]).itemsize


#: Seconds of one fresh process of the runner's import and first-call check: the interpreter, numpy,
#: conv1dbench and Numba imported, compiled code loaded from Numba's cache, 5000 short calls
#: (``results/NOTES.md``, "harness: the fresh processes").
FRESH_PROCESS_S = 0.8


def fresh_processes_s(processes: int) -> float:
    """Predicted seconds of ``processes`` fresh processes of the import and first-call check."""
    return processes * FRESH_PROCESS_S


def _peer_value(impl: str, field: str, default):
    """A peer's estimate proxy from its spec (:class:`conv1dbench.harness.peers.Peer`); ``default`` for ours."""
    peer = peers.get(impl)
    return default if peer is None else getattr(peer, field)
