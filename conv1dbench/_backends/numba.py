"""``numba``: direct cross-correlation compiled by Numba for this CPU.

Work is cut into jobs of one (batch item, output channel, tile of :data:`TILE` output positions).
Within a job the tile of outputs stays in L1 cache while the taps stream over it: four taps at a time
(``y[l] += w0*x[l+o0] + w1*x[l+o1] + w2*x[l+o2] + w3*x[l+o3]``), which loads and stores each output
once per four taps instead of once per tap, and whose loop over ``l`` reads contiguous slices and so
vectorizes.  The padding is never materialised: for every tap the range of outputs that reads real
samples is computed up front (:func:`conv1dbench._core.valid_range`), so the hot loop has no
branches and no negative indices.

Jobs run in parallel (``prange``) when the problem has at least :data:`PARALLEL_MIN_MACS`
multiply-adds, serially below that, where waking threads costs more than it saves.  float32 is
computed in float32.  Fast-math is limited to ``contract`` (fused multiply-add), which keeps NaN and
Inf semantics, so a non-finite input only affects the outputs whose window touches it.  Compiled code
is cached on disk (``cache=True``): the first call per dtype compiles, later processes load it.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._core import CORE_DTYPES, output_length, require_dtype, valid_range

DTYPES = CORE_DTYPES

#: Output positions per job; a float64 tile plus the samples it reads fits in L1.
TILE = 1024
#: Below this many multiply-adds the serial kernel runs (measured: thread wake-up dominates).
PARALLEL_MIN_MACS = 1 << 17

_FASTMATH = {"contract"}

_in_range = njit(inline="always")(valid_range)


def unavailable_reason() -> str | None:
    return None  # importing this module imported numba; failing that, the registry says why


@njit(inline="always", fastmath=_FASTMATH)
def _add_tap(yrow, xrow, wk, lo, hi, stride, offset):
    if stride == 1:
        ys = yrow[lo:hi]
        xs = xrow[lo + offset:hi + offset]
        for i in range(hi - lo):
            ys[i] += wk * xs[i]
    else:
        for l in range(lo, hi):
            yrow[l] += wk * xrow[l * stride + offset]


@njit(fastmath=_FASTMATH, cache=True)
def _run_job(job, n_tiles, x, w, pad_left, stride, dilation, groups, y):
    length = x.shape[2]
    c_out, c_per_group, taps = w.shape
    l_out = y.shape[2]
    tile = job % n_tiles
    o = (job // n_tiles) % c_out
    b = job // (n_tiles * c_out)
    first_channel = (o // (c_out // groups)) * c_per_group
    l0 = tile * TILE
    l1 = min(l0 + TILE, l_out)
    yrow = y[b, o]
    for c in range(c_per_group):
        xrow = x[b, first_channel + c]
        wrow = w[o, c]
        k = 0
        while k + 4 <= taps:
            o0 = k * dilation - pad_left
            o1 = o0 + dilation
            o2 = o1 + dilation
            o3 = o2 + dilation
            # A larger offset moves a tap's range of valid outputs left, so the outputs where all
            # four taps read samples start where tap 0's start and end where tap 3's end.
            lo = _in_range(length, o0, stride, l0, l1)[0]
            hi = _in_range(length, o3, stride, l0, l1)[1]
            if lo < hi:
                w0, w1, w2, w3 = wrow[k], wrow[k + 1], wrow[k + 2], wrow[k + 3]
                if stride == 1:
                    ys = yrow[lo:hi]
                    x0 = xrow[lo + o0:hi + o0]
                    x1 = xrow[lo + o1:hi + o1]
                    x2 = xrow[lo + o2:hi + o2]
                    x3 = xrow[lo + o3:hi + o3]
                    for i in range(hi - lo):
                        ys[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
                else:
                    for l in range(lo, hi):
                        s = l * stride
                        yrow[l] += (w0 * xrow[s + o0] + w1 * xrow[s + o1]
                                    + w2 * xrow[s + o2] + w3 * xrow[s + o3])
                for j in range(4):  # the edges, where only some of the four taps read samples
                    off = o0 + j * dilation
                    lo_j, hi_j = _in_range(length, off, stride, l0, l1)
                    _add_tap(yrow, xrow, wrow[k + j], lo_j, min(hi_j, lo), stride, off)
                    _add_tap(yrow, xrow, wrow[k + j], max(lo_j, hi), hi_j, stride, off)
            else:
                for j in range(4):
                    off = o0 + j * dilation
                    lo_j, hi_j = _in_range(length, off, stride, l0, l1)
                    _add_tap(yrow, xrow, wrow[k + j], lo_j, hi_j, stride, off)
            k += 4
        while k < taps:
            off = k * dilation - pad_left
            lo_k, hi_k = _in_range(length, off, stride, l0, l1)
            _add_tap(yrow, xrow, wrow[k], lo_k, hi_k, stride, off)
            k += 1


@njit(parallel=True, cache=True)
def _forward_parallel(n_tiles, x, w, pad_left, stride, dilation, groups, y):
    for job in prange(x.shape[0] * w.shape[0] * n_tiles):
        _run_job(job, n_tiles, x, w, pad_left, stride, dilation, groups, y)


@njit(cache=True)
def _forward_serial(n_tiles, x, w, pad_left, stride, dilation, groups, y):
    for job in range(x.shape[0] * w.shape[0] * n_tiles):
        _run_job(job, n_tiles, x, w, pad_left, stride, dilation, groups, y)


def forward(x, w, pad_left, pad_right, stride, dilation, groups):
    require_dtype("numba", DTYPES, x.dtype)
    batch, _, length = x.shape
    c_out, c_per_group, taps = w.shape
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    y = np.zeros((batch, c_out, l_out), dtype=x.dtype)
    n_tiles = -(-l_out // TILE)
    macs = batch * c_out * l_out * c_per_group * taps
    kernel = _forward_parallel if macs >= PARALLEL_MIN_MACS and batch * c_out * n_tiles > 1 else _forward_serial
    kernel(n_tiles, x, w, pad_left, stride, dilation, groups, y)
    return y
