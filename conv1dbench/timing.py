"""One timing function for the benchmarks and the harness: warm-up, adaptive repeats, median, spread.

The first call is timed on its own and reported as ``first_call_s``: it includes JIT compilation
(Numba) and first-touch page faults, and is never part of the median.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Timing:
    """Seconds per call of a timed function."""

    median_s: float
    q25_s: float
    q75_s: float
    calls: int           # calls timed (samples * calls per sample)
    first_call_s: float  # the untimed-for-the-median first call: compilation, page faults
    samples_s: tuple[float, ...] = ()  # each sample's seconds per call, in the order taken

    @property
    def spread(self) -> float:
        """Interquartile range relative to the median."""
        return (self.q75_s - self.q25_s) / self.median_s if self.median_s > 0 else 0.0


def calibrate(fn: Callable[[], object], *, sample_s: float = 2e-3,
              sync: Callable[[], object] | None = None) -> tuple[float, float, int]:
    """The first call and one warm-up call of ``fn``: ``(first_call_s, estimate_s, calls_per_sample)``.

    The first call includes JIT compilation and first-touch page faults and is never a sample;
    ``calls_per_sample`` makes one sample last about ``sample_s``.  :func:`measure` and the
    pytest-benchmark suites (which hand the counts to ``benchmark.pedantic``) both start here.
    """
    sync = sync or (lambda: None)
    sync()
    start = time.perf_counter()
    fn()
    sync()
    first = time.perf_counter() - start
    start = time.perf_counter()
    fn()  # warm-up: caches, branch predictors, thread pools awake
    sync()
    estimate = max(time.perf_counter() - start, 1e-9)
    return first, estimate, max(1, int(sample_s / estimate))


def measure(fn: Callable[[], object], *, min_time_s: float = 0.2, min_samples: int = 5,
            max_samples: int = 200, sample_s: float = 2e-3,
            sync: Callable[[], object] | None = None) -> Timing:
    """Time ``fn()``: one first call, one warm-up call, then samples until ``min_time_s`` has passed.

    Each sample runs ``fn`` enough times to last about ``sample_s`` (so microsecond calls are not
    swamped by the clock's resolution); the result is per call.  ``sync`` is called before the clock
    is read on both sides of a sample (for asynchronous devices such as a GPU).

    Examples
    --------
    >>> from conv1dbench.timing import measure
    >>> t = measure(lambda: sum(range(1000)), min_time_s=0.01)
    >>> t.median_s > 0 and t.q25_s <= t.median_s <= t.q75_s
    True
    """
    return measure_interleaved([fn], min_time_s=min_time_s, min_samples=min_samples,
                               max_samples=max_samples, sample_s=sample_s, sync=sync)[0]


def measure_interleaved(fns: list[Callable[[], object]], *, min_time_s: float = 0.2, min_samples: int = 5,
                        max_samples: int = 200, sample_s: float = 2e-3,
                        sync: Callable[[], object] | None = None) -> list[Timing]:
    """Time several functions sample by sample in turn (a sample of each, then again), one Timing each.

    For the ratio of two timings on a machine whose speed drifts (a shared virtual machine can run
    2x slower for seconds at a time): every function sees the same slow and fast stretches, so the
    ratio keeps still where two separate measurements would not.  ``min_time_s`` is for all of
    them together; with one function this is :func:`measure`.
    """
    sync = sync or (lambda: None)
    firsts, counts = [], []
    for fn in fns:
        first, _, calls_per_sample = calibrate(fn, sample_s=sample_s, sync=sync)
        firsts.append(first)
        counts.append(calls_per_sample)

    samples = [[] for _ in fns]
    deadline = time.perf_counter() + min_time_s
    while len(samples[0]) < min_samples or (time.perf_counter() < deadline and len(samples[0]) < max_samples):
        for fn, calls_per_sample, own in zip(fns, counts, samples, strict=True):
            sync()
            start = time.perf_counter()
            for _ in range(calls_per_sample):
                fn()
            sync()
            own.append((time.perf_counter() - start) / calls_per_sample)
    timings = []
    for own, calls_per_sample, first in zip(samples, counts, firsts, strict=True):
        q25, median, q75 = np.percentile(own, [25, 50, 75])
        timings.append(Timing(float(median), float(q25), float(q75), len(own) * calls_per_sample, first,
                              tuple(map(float, own))))
    return timings
