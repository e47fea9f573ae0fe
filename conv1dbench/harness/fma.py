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

from .. import _threads
from .._backends._simd import Count, Width, target_isa, vbroadcast, vfmas, vloads, vstores_partial

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


def fma_gflops(dtype: str, min_time_s: float = 0.3, threads: int | None = None) -> float:
    """GFLOP/s of register-only fused multiply-adds (2 FLOPs each) on the SIMD layer, one chain set per
    thread on ``threads`` threads (Numba's, all of them, by default): the machine's real peak for our
    kernels.  The chains fill the vector registers the ISA has, bar a few: enough independent FMAs in
    flight for every FMA unit's latency."""
    isa = target_isa()
    width = isa.lanes(dtype)
    count = Count(isa.registers - 4)
    threads = numba.get_num_threads() if threads is None else threads
    start = np.ones(count.n * width, dtype)
    sums = np.empty(threads, dtype)
    lanes = Width(width)
    _fma_threads(start, 1, lanes, count, sums)  # compiled (or loaded from the cache) before the clock
    best, deadline, samples = math.inf, time.perf_counter() + min_time_s, 0
    with _threads.claim(threads):  # OpenBLAS's threads, still spinning after a product, put to rest
        while samples < 3 or time.perf_counter() < deadline:
            t0 = time.perf_counter()
            _fma_threads(start, FMA_ROUNDS, lanes, count, sums)
            best, samples = min(best, time.perf_counter() - t0), samples + 1
    return 2.0 * FMA_ROUNDS * count.n * width * threads / best / 1e9  # a peak: the best sample
