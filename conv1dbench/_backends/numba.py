"""``numba``: direct cross-correlation compiled by Numba for this CPU.

float32 and float64 run on register tiles (:mod:`conv1dbench._backends._tiles`, over the explicit
SIMD vectors of :mod:`conv1dbench._backends._simd`): a tile of output channels x vectors of
positions keeps its accumulators in registers across every input channel and tap of the group, so
that each output is written once and each loaded input vector feeds several fused multiply-adds.
The input gradient runs the same kernel once per phase of the stride; the weight gradient has tiles
of its own.  Groups of fewer than four output channels (depthwise layers, single signals) run on a
row tile of one output channel, except kernels of few (channel, tap) pairs per output and short rows,
where the loops below were faster (:func:`conv1dbench._backends._tiles.fits`; the kernel parameters
``numba.row_min_pairs`` and ``numba.row_min_outputs``, :mod:`conv1dbench._params`, as are the tiles'
shapes and the other constants that were chosen by timing).

complex64, complex128 and int64 (exact integers) run the loops below.  Work is cut into jobs of one
(batch item, output channel, tile of up to :data:`TILE_MAX` output
positions).  Within a job the tile of outputs stays in cache while the taps stream over it, eight
taps per pass (``y[l] += w0*x[l+o0] + ... + w7*x[l+o7]``, then four, then the last one to three),
which loads and stores each output once per pass instead of once per tap, and whose loop over ``l``
reads contiguous slices and so vectorizes.  The padding is never materialised: for every tap the
range of outputs that reads real samples is computed up front (:func:`conv1dbench._core.valid_range`),
so the hot loop has no branches and no negative indices.  The hot loops index views (``ys = yrow[lo:hi]``) with the loop
counter of ``range(n)``, which LLVM knows is non-negative, so Numba's negative-index wraparound check
folds away and the loop vectorizes; indexing ``x[i + offset]`` with a signed offset kept the check
and no vector instructions (the measurement: ``results/NOTES.md``, "numba: index types").

Both run their jobs in parallel (``prange``) when the problem has at least ``numba.parallel_min_macs``
multiply-adds (:mod:`conv1dbench._params`), serially below that, where waking threads costs more than it
saves. float32 is computed in float32. Fast-math is limited to ``contract`` (fused multiply-add), which
keeps NaN and Inf semantics, so a non-finite input only affects the outputs whose window touches it.
Compiled code is cached on disk (``cache=True``): the first call per dtype compiles, later processes
load it.
"""

from __future__ import annotations

import functools
import os

import numba
import numpy as np
from numba import njit, prange, types
from numba.extending import overload

from .. import _jitcache, _params
from .._core import result_array, transposed_as_correlation, valid_range
from .._plan import CORE_DTYPES, output_length
from .._threads import claim
from . import _tiles
from ._simd import Count, target_isa

_jitcache.install()  # before any kernel is defined: each one's cache is stamped by what it compiles in

DTYPES = CORE_DTYPES
AUTO = True
DEVICE = False
CONFINES_NON_FINITE = True
CHECKS_FINITE = False
EXACT_INTEGERS = True
RULE = "direct"
COST_FEATURES = ("call", "valid_macs", "tap_passes", "strided_macs", "bytes")
TAKES_OUT = ("forward", "backward_input")

#: Output positions per job at most: long tiles run as fast as short ones for long kernels, and fewer
#: jobs cost less bookkeeping on short signals (``results/NOTES.md``, "numba: tile length").
TILE_MAX = 16384
#: Parallel runs cut rows into tiles of at least this many outputs, aiming at this many jobs per thread.
TILE_MIN = 1024
JOBS_PER_THREAD = 4
#: Below ``numba.parallel_min_macs`` multiply-adds (a kernel parameter, :mod:`conv1dbench._params`; 2**19
#: by default) the serial kernel runs: alone, parallel runs lost or won little below it, and in a busy
#: process waking a sleeping worker (12-15 us here) would more than double a shorter call
#: (``results/NOTES.md``, "numba: parallel threshold").

#: How long a thread of Numba's OpenMP pool (GNU libgomp) spins after a parallel region before it
#: sleeps: libgomp's ``GOMP_SPINCOUNT``, in its spin iterations (its default is 300,000, about a few
#: milliseconds).  A long spin holds a core that the next NumPy/BLAS call needs, and a spinning
#: OpenBLAS thread holds the core ours need: in a loop of BLAS, numpy and scipy calls the default
#: made a 0.02 ms call take 4.7 ms and the matrix product after it 7.8x as long; 1,000 removed both
#: stalls and left calls alone as fast (``results/NOTES.md``, "numba: threads in a busy process").
SPIN_COUNT = 1000
#: The variables by which a user sets libgomp's waiting; where either is set, it is left as it is.
_WAIT_SETTINGS = ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")


def _start_threads() -> None:
    """Start Numba's thread pool now, its libgomp with :data:`SPIN_COUNT` unless the user chose.

    libgomp reads its settings once, when it is loaded, which Numba does when it first starts its
    threads: so the setting is in the environment for that moment only (processes started later,
    and other libraries' OpenMP, see the environment as it was).  No effect where the pool runs
    already, on another threading layer (TBB, workqueue), or where another library loaded the
    same libgomp before.
    """
    if any(name in os.environ for name in _WAIT_SETTINGS):
        numba.get_num_threads()
        return
    os.environ["GOMP_SPINCOUNT"] = str(SPIN_COUNT)
    try:
        numba.get_num_threads()
    finally:
        del os.environ["GOMP_SPINCOUNT"]


_start_threads()

_FASTMATH = {"contract"}
#: The weight gradient is a sum of dot products; reassociation lets LLVM vectorize the reduction.
#: Both flags keep NaN and Inf semantics.
_FASTMATH_REDUCE = {"contract", "reassoc"}

_in_range = njit(inline="always")(valid_range)


def unavailable_reason() -> str | None:
    return None  # importing this module imported numba; failing that, the registry says why


def work(problem) -> dict:
    """``tap_passes``: passes over the output tile, one per eight, four or remaining one to three taps
    of every (batch, output, input channel) row: few taps per pass cost more per multiply-add."""
    p = problem
    fused = p.taps // 8 + (p.taps % 8) // 4 + (p.taps % 4 > 0)
    return {"tap_passes": float(p.passes * p.batch * p.c_out * (p.c_in // p.groups) * p.l_out * fused)}


# Kept apart from _fused_taps(count=1) and inlined: boundary tiles call it for every tap, and as a
# call it slowed the many-channel layer shapes, where every row is a boundary tile (results/NOTES.md,
# "numba: inlined edge taps").
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


@njit(fastmath=_FASTMATH)
def _strided_taps(yrow, xrow, wrow, k, count, lo, hi, stride, o0, dilation, accumulate):
    """:func:`_fused_taps` for ``stride > 1``: one output at a time (its reads are not contiguous)."""
    for l in range(lo, hi):
        start = l * stride + o0
        acc = wrow[k] * xrow[start]
        for j in range(1, count):
            acc += wrow[k + j] * xrow[start + j * dilation]
        if accumulate:
            yrow[l] += acc
        else:
            yrow[l] = acc


@njit(fastmath=_FASTMATH)
def _fused_taps(yrow, xrow, wrow, k, count, lo, hi, stride, o0, dilation, accumulate):
    """``y[l] (+)= sum_{j < count} w[k+j] * x[l*stride + o0 + j*dilation]`` for ``l`` in ``[lo, hi)``.

    ``count`` is 1 to 4: one pass over the outputs serves all of them.  With ``accumulate`` false the
    outputs are assigned, which spares zeroing them first.  Each case is its own loop with no branch
    inside: one loop with branches on ``count`` ran slower (``results/NOTES.md``, "numba: fused taps").
    """
    if stride != 1:
        _strided_taps(yrow, xrow, wrow, k, count, lo, hi, stride, o0, dilation, accumulate)
        return
    n = hi - lo
    ys = yrow[lo:hi]
    x0 = xrow[lo + o0:hi + o0]
    if count == 1:
        _one_tap(ys, x0, wrow[k], n, accumulate)
        return
    x1 = xrow[lo + o0 + dilation:hi + o0 + dilation]
    if count == 2:
        _two_taps(ys, x0, x1, wrow[k], wrow[k + 1], n, accumulate)
        return
    x2 = xrow[lo + o0 + 2 * dilation:hi + o0 + 2 * dilation]
    if count == 3:
        _three_taps(ys, x0, x1, x2, wrow[k], wrow[k + 1], wrow[k + 2], n, accumulate)
        return
    x3 = xrow[lo + o0 + 3 * dilation:hi + o0 + 3 * dilation]
    _four_taps(ys, x0, x1, x2, x3, wrow[k], wrow[k + 1], wrow[k + 2], wrow[k + 3], n, accumulate)


# The loops of _fused_taps, one per tap count, each inlined into it (Numba's IR inlining: the same
# code as written in place, one loop per case with no branch inside).
@njit(inline="always", fastmath=_FASTMATH)
def _one_tap(ys, x0, w0, n, accumulate):
    if accumulate:
        for i in range(n):
            ys[i] += w0 * x0[i]
    else:
        for i in range(n):
            ys[i] = w0 * x0[i]


@njit(inline="always", fastmath=_FASTMATH)
def _two_taps(ys, x0, x1, w0, w1, n, accumulate):
    if accumulate:
        for i in range(n):
            ys[i] += w0 * x0[i] + w1 * x1[i]
    else:
        for i in range(n):
            ys[i] = w0 * x0[i] + w1 * x1[i]


@njit(inline="always", fastmath=_FASTMATH)
def _three_taps(ys, x0, x1, x2, w0, w1, w2, n, accumulate):
    if accumulate:
        for i in range(n):
            ys[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i]
    else:
        for i in range(n):
            ys[i] = w0 * x0[i] + w1 * x1[i] + w2 * x2[i]


@njit(inline="always", fastmath=_FASTMATH)
def _four_taps(ys, x0, x1, x2, x3, w0, w1, w2, w3, n, accumulate):
    if accumulate:
        for i in range(n):
            ys[i] += w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
    else:
        for i in range(n):
            ys[i] = w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]


@njit(fastmath=_FASTMATH)
def _eight_taps(ys, xrow, wrow, k, start, dilation, accumulate):
    """``ys[i] (+)= sum_{j < 8} w[k+j] * x[start + i + j*dilation]``: the bulk of long kernels.

    Eight taps per pass load and store each output once per eight taps, which beat four on long
    kernels (``results/NOTES.md``, "numba: fused taps").
    """
    n = ys.shape[0]
    d = dilation
    x0, x1 = xrow[start:start + n], xrow[start + d:start + d + n]
    x2, x3 = xrow[start + 2 * d:start + 2 * d + n], xrow[start + 3 * d:start + 3 * d + n]
    x4, x5 = xrow[start + 4 * d:start + 4 * d + n], xrow[start + 5 * d:start + 5 * d + n]
    x6, x7 = xrow[start + 6 * d:start + 6 * d + n], xrow[start + 7 * d:start + 7 * d + n]
    w0, w1, w2, w3 = wrow[k], wrow[k + 1], wrow[k + 2], wrow[k + 3]
    w4, w5, w6, w7 = wrow[k + 4], wrow[k + 5], wrow[k + 6], wrow[k + 7]
    if accumulate:
        for i in range(n):
            ys[i] += (w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
                      + w4 * x4[i] + w5 * x5[i] + w6 * x6[i] + w7 * x7[i])
    else:
        for i in range(n):
            ys[i] = (w0 * x0[i] + w1 * x1[i] + w2 * x2[i] + w3 * x3[i]
                     + w4 * x4[i] + w5 * x5[i] + w6 * x6[i] + w7 * x7[i])


@njit(fastmath=_FASTMATH, cache=True)
def _run_job(job, n_tiles, tile_len, x, w, pad_left, stride, dilation, groups, y):
    length = x.shape[2]
    c_out, c_per_group, taps = w.shape
    l_out = y.shape[2]
    tile = job % n_tiles
    o = (job // n_tiles) % c_out
    b = job // (n_tiles * c_out)
    first_channel = (o // (c_out // groups)) * c_per_group
    l0 = tile * tile_len
    l1 = min(l0 + tile_len, l_out)
    yrow = y[b, o]
    # Interior tiles (every tap reads samples for every output) skip the edge bookkeeping.  The
    # first block of taps assigns the outputs it covers fully instead of adding to zeros; only
    # the outputs outside that range are zeroed.
    interior = (_in_range(length, -pad_left, stride, l0, l1)[0] == l0
                and _in_range(length, (taps - 1) * dilation - pad_left, stride, l0, l1)[1] == l1)
    for c in range(c_per_group):
        xrow = x[b, first_channel + c]
        wrow = w[o, c]
        k = 0
        if interior and stride == 1:
            while k + 8 <= taps:
                _eight_taps(yrow[l0:l1], xrow, wrow, k, l0 + k * dilation - pad_left, dilation, c > 0 or k > 0)
                k += 8
        while k < taps:
            count = min(4, taps - k)
            o0 = k * dilation - pad_left
            k += count
            if interior:
                _fused_taps(yrow, xrow, wrow, k - count, count, l0, l1, stride, o0, dilation, c > 0 or k > count)
                continue
            # A larger offset moves a tap's range of valid outputs left, so the outputs where all
            # taps of the block read samples start where the first tap's start and end where the
            # last tap's end.
            lo = _in_range(length, o0, stride, l0, l1)[0]
            hi = max(lo, _in_range(length, o0 + (count - 1) * dilation, stride, l0, l1)[1])
            first = c == 0 and k == count
            if first:
                yrow[l0:lo] = 0
                yrow[hi:l1] = 0
            if hi > lo:
                _fused_taps(yrow, xrow, wrow, k - count, count, lo, hi, stride, o0, dilation, not first)
            for j in range(count):  # the edges, where only some taps of the block read samples
                off = o0 + j * dilation
                lo_j, hi_j = _in_range(length, off, stride, l0, l1)
                _add_tap(yrow, xrow, wrow[k - count + j], lo_j, min(hi_j, lo), stride, off)
                _add_tap(yrow, xrow, wrow[k - count + j], max(lo_j, hi), hi_j, stride, off)


@njit(parallel=True, cache=True)
def _jobs_parallel(n_tiles, tile_len, x, w, pad_left, stride, dilation, groups, y):
    for job in prange(x.shape[0] * w.shape[0] * n_tiles):
        _run_job(job, n_tiles, tile_len, x, w, pad_left, stride, dilation, groups, y)


@njit(cache=True)
def _forward(x, w, pad_left, stride, dilation, groups, threads, y):
    """The core cross-correlation into ``y`` (B, C_out, L_out), which it fills: each job writes all of its tile."""
    batch = x.shape[0]
    c_out, c_per_group, taps = w.shape
    l_out = y.shape[2]
    parallel = threads > 1  # the caller asked for threads where the work pays for them (_threads_for)
    tile_len = TILE_MAX
    if parallel and batch * c_out < JOBS_PER_THREAD * threads:
        # few rows: cut them finer, so that every thread gets work (but no finer than TILE_MIN)
        tile_len = min(TILE_MAX, max(TILE_MIN, -(-l_out * batch * c_out // (JOBS_PER_THREAD * threads))))
    n_tiles = (l_out + tile_len - 1) // tile_len
    n_jobs = batch * c_out * n_tiles
    if parallel and n_jobs > 1:
        _jobs_parallel(n_tiles, tile_len, x, w, pad_left, stride, dilation, groups, y)
    else:
        for job in range(n_jobs):
            _run_job(job, n_tiles, tile_len, x, w, pad_left, stride, dilation, groups, y)
    return y


def _threads(x, w, outputs: int | None = None) -> int:
    """Numba's thread count, or 1 where the problem is too small to run in parallel anyway.

    (Asking Numba has a cost of its own that a small convolution notices.)  The work is bounded by the
    input length and by ``outputs`` where given: only its order of magnitude matters here.
    """
    length = x.shape[2] if outputs is None else min(outputs, x.shape[2])
    return _threads_for(x.shape[0] * length * w.shape[0] * w.shape[1] * w.shape[2])


def _threads_for(macs: int) -> int:
    return 1 if macs < _params.value("numba.parallel_min_macs") else numba.get_num_threads()


#: The dtypes the register tiles (:mod:`conv1dbench._backends._tiles`) compute; the others (complex,
#: and int64 for exact integers) run the loops above.
TILED_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


#: The kernel parameters (:mod:`conv1dbench._params`) the tiles' forward takes, in the order of the
#: ``knobs`` tuple :func:`_core_forward` takes (thresholds of "never" as a large int).
KNOBS = ("numba.chunk_bytes", "numba.row_min_pairs", "numba.row_min_outputs", "numba.row_job_positions")
_NEVER = 1 << 62
_knobs_cache: list = [None, None, None]


def knobs() -> tuple:
    """``(knobs, layer, row)``: the forward kernel's parameters in force (:data:`KNOBS`, as ints) and the
    tiles' vector counts, made once per set of values in force (a short call pays a lookup)."""
    return _knobs()[0]


def _knobs() -> tuple:
    """``((knobs, layer, row), row_is_default)``: :func:`knobs`, and whether the row tile's shape is this
    CPU's default (which :func:`forward_1d` has compiled in)."""
    values = _params.values()
    if _knobs_cache[0] is not values:
        numbers = tuple(int(min(values[name], _NEVER)) for name in KNOBS)
        layer, row = _tiles.counts(values["numba.layer_vectors"], values["numba.row_vectors"])
        _knobs_cache[:] = [values, (numbers, layer, row), row.n == _tiles.counts()[1].n]
    return _knobs_cache[1], _knobs_cache[2]


#: A layer runs on a layer tile of fewer vectors (a candidate of ``numba.layer_vectors`` below the value in
#: force) where that leaves at least this share fewer positions computed past the row's end: 512
#: outputs are 8 tiles of 4 vectors (16 lanes) but 6 of 6, 576 positions (float32 (8, 256, 256, 512, 5):
#: 13.2 ms on 4 vectors, 14.7 on 6); 1024 and 2048 outputs, 3% past the end on 6, ran alike on both.
NARROWER_GAIN = 0.05
#: ... and where the call has at least this many multiply-adds: a tile shape compiles kernels of its own
#: (tens of seconds, once per machine), which 5% of a smaller call would take long to pay back.
NARROWER_MIN_MACS = 1 << 24


@functools.lru_cache(maxsize=1024)
def _layer_count(l_out: int, lanes: int, most: int, candidates: tuple) -> Count:
    """The layer tile's vectors for rows of ``l_out`` outputs (:data:`NARROWER_GAIN`): ``most``, or the
    candidate below it that computes fewest positions (ties to the larger)."""
    def computed(v):
        return -(-l_out // (v * lanes)) * v * lanes
    fewest = min((v for v in candidates if v <= most), key=lambda v: (computed(v), -v), default=most)
    chosen = fewest if computed(fewest) <= computed(most) * (1 - NARROWER_GAIN) else most
    return _tiles.counts(chosen)[0]


def layer_count(l_out: int, dtype, layer: Count, macs: int) -> Count:
    """:func:`_layer_count` for a call's rows, ``layer`` the layer tile's vectors in force, ``macs`` the
    call's multiply-adds (:data:`NARROWER_MIN_MACS`)."""
    if macs < NARROWER_MIN_MACS:
        return layer
    return _layer_count(l_out, target_isa().lanes(dtype), layer.n,
                        _params.PARAMS["numba.layer_vectors"].candidates_on(_params.facts()))


def _kernel_for(x, w, pad_left, stride, dilation, groups, threads, y, knobs, layer, row):
    """The forward kernel for ``x``'s dtype, into ``y`` (compiled code only: :func:`_core_forward`)."""
    raise NotImplementedError("compiled code only")


@overload(_kernel_for)
def _kernel_for_dtype(x, w, pad_left, stride, dilation, groups, threads, y, knobs, layer, row):
    if x.dtype not in (types.float32, types.float64):
        return lambda x, w, pad_left, stride, dilation, groups, threads, y, knobs, layer, row: _forward(
            x, w, pad_left, stride, dilation, groups, threads, y)

    def tiles(x, w, pad_left, stride, dilation, groups, threads, y, knobs, layer, row):
        chunk_bytes, min_pairs, min_outputs, job_positions = knobs
        if _tiles.fits(w.shape[0], groups, w.shape[1], w.shape[2], y.shape[2], min_pairs, min_outputs):
            _tiles.forward(x, w, pad_left, stride, dilation, groups, y, threads, layer, row, chunk_bytes,
                           job_positions)
        else:
            _forward(x, w, pad_left, stride, dilation, groups, threads, y)
    return tiles


@njit(cache=True)
def _core_forward(x, w, pad_left, stride, dilation, groups, threads, y, knobs, layer, row):
    """The forward kernel into ``y``: float32 and float64 on the register tiles where they fit
    (:func:`conv1dbench._backends._tiles.fits`), the rest on the loops above.  ``knobs``, ``layer``,
    ``row``: the kernel parameters in force (:func:`knobs`)."""
    _kernel_for(x, w, pad_left, stride, dilation, groups, threads, y, knobs, layer, row)


def forward(x, w, pad_left, pad_right, stride, dilation, groups, *, out=None):
    l_out = output_length(x.shape[2], w.shape[2], pad_left, pad_right, stride, dilation)
    y = result_array(out, (x.shape[0], w.shape[0], l_out), x.dtype)
    numbers, layer, row = knobs()
    with claim(_threads(x, w, l_out)) as threads:
        macs = x.shape[0] * w.shape[0] * w.shape[1] * w.shape[2] * l_out
        _core_forward(x, w, pad_left, stride, dilation, groups, threads, y, numbers,
                      layer_count(l_out, x.dtype, layer, macs), row)
    return y


def threads(problem) -> int:
    """The threads a call of ``problem`` runs on when the cores are free."""
    p = problem
    return _threads_for(p.batch * min(p.l_out, p.length) * p.c_out * (p.c_in // p.groups) * p.taps)


def threads_1d(length: int, taps: int, pad_left: int = 0, pad_right: int = 0) -> int:
    """The ``threads`` of :func:`forward_1d`: 1 where the problem is too small to run in parallel.

    The work is bounded by the outputs times the taps, and by the samples times the taps ("valid" with
    a kernel nearly as long as the signal has few outputs: N = 1000, K = 1023 is 24 of them, 24 K
    multiply-adds, not 1 M; two threads would take longer to start than the call)."""
    outputs = length + pad_left + pad_right - taps + 1
    return _threads_for(max(0, min(outputs, length)) * taps)


def forward_1d(x, w, flip, pad_left, pad_right, threads):
    """One signal and one kernel, 1-D and C-contiguous, as one compiled call (the front ends' short-call
    path): Numba's dispatch, the reshapes and the kernel's reversal happen once, inside compiled code.
    """
    function, extra = shortcut_1d()
    return function(x, w, flip, pad_left, pad_right, threads, *extra)


def shortcut_1d() -> tuple:
    """``(function, extra)``: the compiled :func:`forward_1d` for the kernel parameters in force, and the
    arguments it takes after ``threads``.  One output channel never reaches the layer tile, and the row
    tile's shape, where it is this CPU's default, is compiled in: a shape passed costs Numba's
    dispatcher 0.3-0.5 us of a 1.2 us call."""
    (numbers, _, row), row_is_default = _knobs()
    if row_is_default:
        return _forward_1d, (numbers,)
    return _forward_1d_shaped, (numbers, row)


@njit(cache=True)
def _forward_1d(x, w, flip, pad_left, pad_right, threads, knobs):
    """:func:`_forward_1d_shaped` on the row tile's default shape."""
    return _forward_1d_shaped(x, w, flip, pad_left, pad_right, threads, knobs, _tiles.row_vectors(x))


@njit(cache=True)
def _forward_1d_shaped(x, w, flip, pad_left, pad_right, threads, knobs, row):
    taps = w.shape[0]
    if flip:
        kernel = np.empty((1, 1, taps), dtype=w.dtype)
        for k in range(taps):
            kernel[0, 0, k] = w[taps - 1 - k]
    else:
        kernel = w.reshape((1, 1, taps))
    y = np.empty(x.shape[0] + pad_left + pad_right - taps + 1, dtype=x.dtype)
    _core_forward(x.reshape((1, 1, x.shape[0])), kernel, pad_left, 1, 1, 1, threads, y.reshape((1, 1, y.shape[0])),
                  knobs, _tiles.layer_vectors(x), row)
    return y


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups, *, out=None):
    """The transposed convolution, run by the forward kernel: by phase of the stride on the register
    tiles (:func:`conv1dbench._backends._tiles.backward_input`), else as a correlation over ``g``
    spread out with zeros (:func:`transposed_as_correlation`)."""
    if g.dtype in TILED_DTYPES:
        grad = result_array(out, (g.shape[0], w.shape[1] * groups, length), g.dtype)
        numbers, layer, row = knobs()
        with claim(_threads(g, w)) as threads:
            def run(x, kernel, left, step, groups, y):
                macs = x.shape[0] * kernel.shape[0] * kernel.shape[1] * kernel.shape[2] * y.shape[2]
                _core_forward(x, kernel, left, 1, step, groups, threads, y, numbers,
                              layer_count(y.shape[2], y.dtype, layer, macs), row)
            return _tiles.backward_input(g, w, length, pad_left, stride, dilation, groups, threads, out=grad, run=run)
    g_t, w_t, pad_left_t, _ = transposed_as_correlation(g, w, length, pad_left, stride, dilation, groups)
    grad = result_array(out, (g.shape[0], w_t.shape[0], length), g.dtype)
    with claim(_threads(g_t, w_t)) as threads:
        _forward(g_t, w_t, pad_left_t, 1, dilation, groups, threads, grad)
    return grad


@njit(parallel=True, fastmath=_FASTMATH_REDUCE, cache=True)
def _weight_gradient(g, x, taps, pad_left, stride, dilation, groups):
    batch, c_in, length = x.shape
    c_out, l_out = g.shape[1], g.shape[2]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    grad = np.zeros((c_out, c_per_group, taps), dtype=x.dtype)
    for job in prange(c_out * c_per_group):  # one (output, input) channel pair: all its taps
        o = job // c_per_group
        c = job % c_per_group
        channel = (o // out_per_group) * c_per_group + c
        for k in range(taps):
            offset = k * dilation - pad_left
            lo, hi = _in_range(length, offset, stride, 0, l_out)
            acc = grad[o, c, k]  # zero, typed as the data (float32 sums stay float32)
            for b in range(batch):
                gs = g[b, o, lo:hi]
                if stride == 1:
                    xs = x[b, channel, lo + offset:hi + offset]
                    for i in range(hi - lo):
                        acc += gs[i] * xs[i]
                else:
                    xrow = x[b, channel]
                    for i in range(hi - lo):
                        acc += gs[i] * xrow[(lo + i) * stride + offset]
            grad[o, c, k] = acc
    return grad


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups):
    """The register tiles' weight gradient (:func:`conv1dbench._backends._tiles.backward_weight`); for
    the other dtypes each (output, input) channel pair's taps as dot products over batch and positions."""
    if x.dtype in TILED_DTYPES:
        with claim(_threads_for(g.size * (x.shape[1] // groups) * taps)) as threads:
            value = _params.value
            return _tiles.backward_weight(g, x, taps, pad_left, stride, dilation, groups, threads,
                                          value("numba.grad_panel_bytes"), value("numba.grad_positions"),
                                          value("numba.grad_jobs"), value("numba.layer_vectors"))
    return _weight_gradient(g, x, taps, pad_left, stride, dilation, groups)
