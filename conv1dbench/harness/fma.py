"""The machine's FMA peak: register-only fused multiply-adds on the vector unit our kernels are compiled for.

:func:`fma_gflops` is what "% of peak" divides by (:mod:`conv1dbench.harness.peak`): nothing our
kernels do can run faster than independent FMAs that never touch memory, on every thread.
"""

from __future__ import annotations

import math
import time

import numba
import numpy as np
from numba import njit, prange

from .. import _jitcache, _threads
from .._backends._simd import Count, Width, target_isa, vbroadcast, vfmas, vloads, vstores_partial

_jitcache.install()  # before any kernel is defined: each one's cache is stamped by what it compiles in

#: Fused multiply-adds per accumulator per timed call of :func:`fma_gflops` (a few milliseconds).
FMA_ROUNDS = 1 << 20


@njit(cache=True)
def _fma_chains(start, rounds, width, count):
    """``count`` independent chains of ``rounds`` vector FMAs, ``row = -2 * row + row`` (the row changes
    sign each round: no overflow, no subnormals, and nothing LLVM may fold away, the factor being read
    from memory); returns the row's sum so that the chains are not dead code."""
    factor = vbroadcast(-(start[0] + start[0]), width)  # -2, in the row's dtype
    row = vloads(start, 0, width, count)
    for _ in range(rounds):
        row = vfmas(factor, row, row)
    out = np.empty(count.n * width.lanes, start.dtype)
    vstores_partial(out, 0, row, out.size)
    return out.sum()


@njit(parallel=True, cache=True)
def _fma_threads(start, rounds, width, count, sums):
    for thread in prange(sums.size):
        sums[thread] = _fma_chains(start, rounds, width, count)


def _probe(dtype: str, threads: int | None):
    """What :func:`fma_gflops` times: the arguments of :func:`_fma_threads` and the FLOPs of one call
    (2 per fused multiply-add, every lane of every chain on every thread)."""
    isa = target_isa()
    width, count = isa.lanes(dtype), Count(isa.registers - 4)
    threads = numba.get_num_threads() if threads is None else threads
    args = (np.ones(count.n * width, dtype), FMA_ROUNDS, Width(width), count, np.empty(threads, dtype))
    return args, 2.0 * FMA_ROUNDS * count.n * width * threads


def fma_gflops(dtype: str, min_time_s: float = 0.3, threads: int | None = None) -> float:
    """GFLOP/s of register-only fused multiply-adds (2 FLOPs each) on the SIMD layer, one chain set per
    thread on ``threads`` threads (Numba's, all of them, by default): the machine's real peak for our
    kernels.  The chains fill the vector registers the ISA has, bar a few: enough independent FMAs in
    flight for every FMA unit's latency."""
    args, flops = _probe(dtype, threads)
    start, _, lanes, count, sums = args
    _fma_threads(start, 1, lanes, count, sums)  # compiled (or loaded from the cache) before the clock
    best, deadline, samples = math.inf, time.perf_counter() + min_time_s, 0
    with _threads.claim(sums.size):  # OpenBLAS's threads, still spinning after a product, put to rest
        while samples < 3 or time.perf_counter() < deadline:
            t0 = time.perf_counter()
            _fma_threads(*args)
            best, samples = min(best, time.perf_counter() - t0), samples + 1
    return flops / best / 1e9  # a peak: the best sample


#: How far the checked peak's two ratios may stray: float32 against float64 from their lane ratio, and
#: all threads against one thread times the thread count, before a sample counts as disturbed.
PEAK_TOLERANCE = 0.2


def checked_fma_peak(min_time_s: float = 0.3, tries: int = 3, rate=fma_gflops) -> tuple[dict, str]:
    """The FMA peak of float32 and float64 on all threads, checked against itself.

    Both dtypes run on the same FMA units, float32 with twice the lanes, so their rates stand in the
    ratio of their lanes; and all threads together do about one thread's rate times their count.  A
    sample taken while something else held a core (another process, or spinning threads of OpenBLAS,
    torch or OpenMP) breaks one of the two: it is measured again, up to ``tries`` times, keeping each
    dtype's best.  Returns ``({"float32": GFLOP/s, "float64": GFLOP/s}, check)``: the check says what
    was still wrong after the last try, for the report (two cores that are one core's hyper-threads keep
    the second ratio low however often one measures).
    """
    isa, threads = target_isa(), numba.get_num_threads()
    lanes = isa.lanes("float32") / isa.lanes("float64")
    best = {"float32": 0.0, "float64": 0.0, "one thread": 0.0}
    for attempt in range(1, tries + 1):
        best["float32"] = max(best["float32"], rate("float32", min_time_s))
        best["float64"] = max(best["float64"], rate("float64", min_time_s))
        alone = rate("float32", min_time_s, 1) if threads > 1 else best["float32"]
        best["one thread"] = max(best["one thread"], alone)
        peak = {d: round(best[d], 1) for d in ("float32", "float64")}
        dtypes = best["float32"] / best["float64"] / lanes
        scaling = best["float32"] / best["one thread"] / threads
        problems = [text for ok, text in (
            (abs(dtypes - 1) <= PEAK_TOLERANCE,
             f"float32 ran at {dtypes * lanes:.2f}x float64, where its lanes make {lanes:.0f}x"),
            (scaling >= 1 - PEAK_TOLERANCE,
             f"{threads} threads ran at {scaling * threads:.2f}x one thread"))
            if not ok]
        if not problems:
            return peak, f"consistent (try {attempt})"
    return peak, "; ".join(problems) + " (cores shared?)"
