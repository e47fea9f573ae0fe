"""Register-tiled kernels of the numba backend: the layer forward (and the input gradient, through it)
and the weight gradient, in float32 and float64.

**Forward.**  ``y[b, o, l] = sum_{c, k} w[o, c, k] * xpad[b, gi*Cg + c, l*stride + k*dilation]``.
One job is one (batch item, group, tile of output positions).  A tile is :data:`NO` output channels
x ``n`` vectors of positions, its ``NO * n`` accumulators kept in registers across every input
channel and tap of the group: per (channel, tap) ``n`` vector loads of the input, ``NO`` broadcasts
of the weights (packed as ``(group, block, channel, tap, NO)``) and ``NO * n`` fused multiply-adds.
Each output is written once, the tile's edges (output channels past the group's, positions past
``L_out``) by partial stores.  The input a tile reads is the input itself where that is one
contiguous run per tap (stride 1, the tile inside the signal), else a block the job packs first, by
*phase*: for stride ``s``, tap ``k`` of output ``l`` reads input ``l*s + k*dilation - pad_left =
(l + m_k)*s + p_k - pad_left`` with ``p_k = (k*dilation) % s`` and ``m_k = (k*dilation) // s``, so
row ``p`` of the block holds the samples ``(l0 + m)*s + p - pad_left`` for ``m = 0, 1, ...`` and
every tap is a contiguous run of one row.  Padding is packed as zeros, so the hot loop has no edges,
and stride and dilation cost nothing in it.  Input channels are taken in chunks of about
``chunk_bytes`` (the parameter ``numba.chunk_bytes``, :mod:`conv1dbench._params`, a share of L2;
:data:`CHUNK_BYTES` where a caller gives none), which every block of output channels runs over before
the next chunk.

Groups of fewer than :data:`NO` output channels (depthwise layers, single signals) would leave most
of that tile idle: they run on the *row tile*, one output channel x ``n`` vectors, whose loads feed
one multiply-add each (from L1, where the loads keep up with the multiply-adds).

**Input gradient** (:func:`backward_input`): by phase, the forward kernel once per phase (no zeros
spread into the gradient).  **Weight gradient** (:func:`backward_weight`): where a group has a
vector of output channels or more, the matrix product it is, ``grad_w^T = X . g^T`` with output
channels along the vectors (:func:`weight_by_outputs`: ``NO`` (input channel, tap) pairs x the layer
tile's vectors of output channels, aligned loads, no sums across lanes); else (depthwise, narrow
groups) tiles of ``NO`` output channels x :data:`GRAD_PAIRS` pairs of vector accumulators along
positions (:func:`weight_gradient`).

The vector width and the tiles' vector counts are compile-time :class:`~conv1dbench._backends._simd.Width`
and :class:`~conv1dbench._backends._simd.Count` arguments of every kernel: the width is the CPU's
Numba compiles for, the counts are given by the caller (the numba backend passes the kernel
parameters ``numba.layer_vectors`` and ``numba.row_vectors``, :mod:`conv1dbench._params`, whose
defaults per ISA are :data:`TILE_SHAPES`; :func:`counts`); each count compiles a kernel of its own.
Every sum runs in an order fixed by the shapes, the width, the tile and the parameters, so the same
inputs give the same bits for any thread count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from .. import _jitcache
from ._simd import (
    Count,
    Width,
    fixed_for_target,
    prefetch,
    target_isa,
    vbroadcast,
    vdeal,
    vfma,
    vfmas,
    vload,
    vload_partial,
    vloads,
    vloads_partial,
    vstores_apart,
    vstores_partial,
    vsum,
    vzero,
    vzeros,
)

_jitcache.install()  # before any kernel is defined: each one's cache is stamped by what it compiles in

#: Output channels per layer tile (and per weight-gradient tile).
NO = 4


@dataclass(frozen=True)
class TileShape:
    """Vectors per row of the layer tile (``NO`` rows) and of the row tile (one row)."""

    layer: int
    row: int


#: The tile shape per ISA (:class:`~conv1dbench._backends._simd.Isa` names).  The layer tile: 4 x 3
#: (12 accumulators, 3 loaded vectors and a broadcast) fits 16 vector registers; with AVX-512's 32
#: the 4 x 6 tile (24 accumulators) ran 1-12% faster than 4 x 3 on every layer shape.  The row tile:
#: 12 accumulators and a broadcast, its loads folded into the multiply-adds; with 32 registers 24
#: (signals with K = 63-1023, N = 1e5-1e6: 1.13-1.16x the loops against 1.05-1.08x with 12; N = 1000,
#: K = 15: 1.06x against 1.10x) (``results/NOTES.md``, "numba: register tiles").
TILE_SHAPES = {"AVX-512": TileShape(layer=6, row=24), "AVX2": TileShape(layer=3, row=12),
               "portable 128-bit": TileShape(layer=3, row=12)}

#: Bytes of input one pass over the output-channel blocks reads: the input channels are taken in
#: chunks of about this many bytes, so that a chunk stays in L1 (32-48 KiB) while every block of
#: output channels runs over it (with its weights: NO * chunk * K more values).  What the numba
#: backend passes is the parameter ``numba.chunk_bytes``, whose default is a share of L2: on a Zen 4
#: core, 64 KiB to 1 MiB ran the layer forward 4-15% faster than this, as each chunk reloads the
#: tiles' sums (``results/NOTES.md``).  This value is for callers of the kernels that give none.
CHUNK_BYTES = 16384
#: Output positions per piece of the weight gradient: a job packs its input rows over this range once
#: and runs every tile over it; pieces are (batch item, range), their partial gradients summed in job
#: order.  The numba backend passes the parameter ``numba.grad_positions`` (this is its default).
GRAD_POSITIONS = 4096
#: The weight gradient's tile: NO output channels x GRAD_PAIRS (input channel, tap) pairs of vectors.
GRAD_PAIRS = 3
#: The weight gradient's jobs at most (a number fixed by the shapes, not the threads: so the sums'
#: order is too), each with gradients of its own that are added up at the end.  One job per batch item
#: had left (8, 256, 256, 512, 5) 8 partial gradients of 1.3 MB to add serially, about a quarter of its
#: time.  The numba backend passes the parameter ``numba.grad_jobs``.
GRAD_JOBS = 8
#: The row tile's jobs: up to this many output positions each, finer where rows are few (below); the
#: numba backend passes the parameter ``numba.row_job_positions``.
ROW_JOB_POSITIONS = 16384
#: Parallel runs aim at this many jobs per thread, with at least ROW_JOB_MIN positions each.
JOBS_PER_THREAD, ROW_JOB_MIN = 4, 1024

_FASTMATH = {"contract"}


@fixed_for_target
def native_width(dtype, isa):
    return Width(isa.lanes(dtype))


@fixed_for_target
def layer_vectors(dtype, isa):
    """The layer tile's default vectors, fixed when the caller compiles: for callers whose problems never
    reach the layer tile (one output channel), so that their calls carry no argument for it."""
    return Count(TILE_SHAPES[isa.name].layer)


@fixed_for_target
def row_vectors(dtype, isa):
    """The row tile's default vectors, fixed when the caller compiles (the short-call path's)."""
    return Count(TILE_SHAPES[isa.name].row)


@functools.cache
def counts(layer: int | None = None, row: int | None = None) -> tuple[Count, Count]:
    """The layer and row tiles' vector counts as kernel arguments: those given, else :data:`TILE_SHAPES`'
    for the CPU Numba compiles for (what the numba backend passes are the parameters
    ``numba.layer_vectors`` and ``numba.row_vectors``, :mod:`conv1dbench._params`)."""
    shape = TILE_SHAPES[target_isa().name]
    return Count(shape.layer if layer is None else layer), Count(shape.row if row is None else row)


#: The row tile's (input channel, tap) pairs per output at least: below it the numba backend's tap-pass
#: loops ran faster (a signal with K = 3: 33 against 45 GFLOP/s; with K = 7 the tile 55 against 47).
#: The numba backend passes the parameter ``numba.row_min_pairs`` (this is its default).
ROW_MIN_PAIRS = 6


#: The row tile's output positions per row at least: its tile is 96-384 positions long, all computed,
#: and on shorter rows the loops ran faster (24 outputs of a 1000-tap kernel: 8.9 against 5.9 us).
#: The numba backend passes the parameter ``numba.row_min_outputs``.
ROW_MIN_OUTPUTS = 128


@njit(inline="always")
def fits(c_out, groups, c_per_group, taps, l_out, min_pairs=ROW_MIN_PAIRS, min_outputs=ROW_MIN_OUTPUTS):
    """Whether the tiles run this layer: groups of at least :data:`NO` output channels (the layer tile), or
    rows of at least ``min_outputs`` outputs of at least ``min_pairs`` (channel, tap) pairs each (the row
    tile)."""
    return c_out // groups >= NO or (c_per_group * taps >= min_pairs and l_out >= min_outputs)


# --- forward ---------------------------------------------------------------------------------------


@njit(cache=True)
def forward(x, w, pad_left, stride, dilation, groups, y, threads, layer, row, chunk_bytes=CHUNK_BYTES,
            job_positions=ROW_JOB_POSITIONS):
    """The layer forward into ``y`` (B, C_out, L_out), which it fills, for the CPU Numba compiles for.

    ``x`` (B, C_in, L) and ``w`` (C_out, C_in // groups, K), C-contiguous, float32 or float64; any
    ``pad_left`` (negative crops); ``threads``: Numba's thread count to run the jobs on (1: serially, in this thread);
    ``layer``, ``row``: the layer and row tiles' vectors (:class:`~conv1dbench._backends._simd.Count`,
    :func:`counts`); ``chunk_bytes``: the input channels' chunk (the order of each output's sum depends
    on it); ``job_positions``: the row tile's positions per job at most.
    """
    if w.shape[0] // groups < NO:
        row_forward(x, w, pad_left, stride, dilation, groups, y, threads, native_width(x), row, job_positions)
    else:
        layer_forward(x, w, pad_left, stride, dilation, groups, y, threads, native_width(x), layer, chunk_bytes)


@njit(cache=True)
def layer_forward(x, w, pad_left, stride, dilation, groups, y, threads, width, vectors, chunk_bytes=CHUNK_BYTES):
    """:func:`forward` on the layer tile of ``NO`` x ``vectors`` vectors of ``width``."""
    taps = w.shape[2]
    tile = vectors.n * width.lanes
    span = (dilation * (taps - 1)) // stride + tile  # input samples per phase row a tile reads
    wt = _pack_weights(w, groups)
    tap_direct, tap_packed = _tap_offsets(taps, stride, dilation, span)
    jobs = x.shape[0] * groups * ((y.shape[2] + tile - 1) // tile)
    args = (x, wt, w.shape[0], taps, pad_left, stride, dilation, groups, y, span, tap_direct, tap_packed, width,
            vectors, chunk_bytes)
    if threads > 1:
        _layer_parallel(jobs, args)
    else:
        for job in range(jobs):
            _layer_job(job, *args)


@njit(parallel=True, cache=True)
def _layer_parallel(jobs, args):
    for job in prange(jobs):
        _layer_job(job, *args)


@njit(inline="always")
def _tap_offsets(taps, stride, dilation, span):
    """Where tap ``k``'s run starts in a channel's input: read directly (``k * dilation``), and packed by
    phase (its phase's row, then its shift), so that no division is left in the hot loop."""
    direct = np.empty(taps, dtype=np.intp)
    packed = np.empty(taps, dtype=np.intp)
    for k in range(taps):
        direct[k] = k * dilation
        packed[k] = (k * dilation) % stride * span + (k * dilation) // stride
    return direct, packed


@njit(inline="always")
def _pack_weights(w, groups):
    """``w`` (C_out, Cg, K) as ``(groups, blocks, Cg, K, NO)``, flat, the channels past a group's zero."""
    c_out, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    blocks = (out_per_group + NO - 1) // NO
    packed = np.zeros(groups * blocks * c_per_group * taps * NO, dtype=w.dtype)
    for o in range(c_out):
        g, i = o // out_per_group, o % out_per_group
        at = (g * blocks + i // NO) * c_per_group * taps * NO + i % NO
        for c in range(c_per_group):
            for k in range(taps):
                packed[at + (c * taps + k) * NO] = w[o, c, k]
    return packed


@njit(fastmath=_FASTMATH)
def _layer_job(job, x, wt, c_out, taps, pad_left, stride, dilation, groups, y, span, tap_direct, tap_packed,
               width, vectors, chunk_bytes):
    batch, c_in, length = x.shape
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    blocks = (out_per_group + NO - 1) // NO
    l_out = y.shape[2]
    tile = vectors.n * width.lanes
    tiles = (l_out + tile - 1) // tile
    t = job % tiles
    g = (job // tiles) % groups
    b = job // (tiles * groups)
    l0 = t * tile
    count = min(tile, l_out - l0)
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    x0 = (b * c_in + g * c_per_group) * length
    first = l0 * stride - pad_left
    if stride == 1 and first >= 0 and first + span <= length:
        source, base, channel_span, tap_at = xf, x0 + first, length, tap_direct
    else:
        block = np.empty(c_per_group * stride * span, dtype=x.dtype)
        _pack(xf, block, x0, length, c_per_group, stride, span, first, width)
        source, base, channel_span, tap_at = block, 0, stride * span, tap_packed
    chunk = max(1, chunk_bytes // (stride * span * x.itemsize))
    chunks = (c_per_group + chunk - 1) // chunk
    # the next job's input, into L2 a few channels per tile while this job computes (it is the next job of
    # this thread: prange gives each thread a contiguous range), so that its packing waits less on memory
    t_next = (job + 1) % tiles
    g_next = ((job + 1) // tiles) % groups
    x0_next = (((job + 1) // (tiles * groups)) * c_in + g_next * c_per_group) * length
    first_next = t_next * tile * stride - pad_left
    ahead = job + 1 < batch * groups * tiles
    for c0 in range(0, c_per_group, chunk):
        c1 = min(c_per_group, c0 + chunk)
        for ob in range(blocks):
            if ahead:
                step = (c0 // chunk) * blocks + ob
                _prefetch_rows(xf, x0_next, length, step * c_per_group // (chunks * blocks),
                               (step + 1) * c_per_group // (chunks * blocks), first_next, stride * span)
            o = g * out_per_group + ob * NO
            _tile(source, base, wt, (g * blocks + ob) * c_per_group * taps * NO, c0, c1, taps, channel_span, tap_at,
                  yf, (b * c_out + o) * l_out + l0, l_out, min(NO, out_per_group - ob * NO), count, width, vectors)


@njit(inline="always")
def _prefetch_rows(xf, x0, length, c0, c1, first, count):
    """:func:`prefetch` the cache lines of channels ``[c0, c1)``'s samples ``[first, first + count)``
    (clipped to the row; the channels' rows from ``xf[x0]``, ``length`` apart)."""
    line = max(1, 64 // xf.itemsize)
    lo = max(0, first)
    hi = min(length, first + count)
    for c in range(c0, c1):
        row = x0 + c * length
        for i in range(lo, hi, line):
            prefetch(xf, row + i)
        if hi > lo:
            prefetch(xf, row + hi - 1)


#: The strides whose packing deals whole vectors (one wide load, then shuffles: ``vdeal``), 4x faster than a
#: load per value; other strides pack value by value.
_DEAL_2, _DEAL_3, _DEAL_4 = Count(2), Count(3), Count(4)


@njit(inline="always")
def _pack(xf, block, x0, length, channels, stride, span, first, width):
    """``block[(c*stride + p)*span + m] = x[c, first + p + m*stride]`` (the channels' rows from ``xf[x0]``,
    ``length`` apart), zero outside ``[0, length)``."""
    # [a, b): the m at which every phase's sample is real, dealt in whole vectors up to e where the
    # stride has a dealer; the rest value by value
    a = min(span, max(0, (-first + stride - 1) // stride))
    b = max(a, min(span, (length - first) // stride))
    for c in range(channels):
        row = x0 + c * length
        e = a
        if stride == 2:
            e = _deal(xf, block, row + first, c * stride * span, span, a, b, width, _DEAL_2)
        elif stride == 3:
            e = _deal(xf, block, row + first, c * stride * span, span, a, b, width, _DEAL_3)
        elif stride == 4:
            e = _deal(xf, block, row + first, c * stride * span, span, a, b, width, _DEAL_4)
        for p in range(stride):
            out = (c * stride + p) * span
            start = first + p  # sample m is start + m * stride: real for m in [m0, m1)
            m0 = min(span, max(0, (-start + stride - 1) // stride))
            m1 = max(m0, min(span, (length - start + stride - 1) // stride))
            block[out:out + m0] = 0
            if stride == 1:
                block[out + m0:out + m1] = xf[row + start + m0:row + start + m1]
            else:
                for m in range(m0, min(a, m1)):
                    block[out + m] = xf[row + start + m * stride]
                for m in range(max(e, m0), m1):
                    block[out + m] = xf[row + start + m * stride]
            block[out + m1:out + span] = 0


@njit(inline="always")
def _deal(xf, block, at, out, span, a, b, width, phases):
    """``_pack``'s ``m`` in ``[a, b)`` for one channel, ``phases.n`` at a time: each ``phases.n * lanes``
    samples from ``xf[at + m * phases.n]`` dealt to the phases' rows from ``block[out + m]``, ``span``
    apart.  Returns where it stopped (the rest is less than a vector)."""
    m = a
    while m + width.lanes <= b:
        vstores_apart(block, out + m, span, vdeal(xf, at + m * phases.n, width, phases))
        m += width.lanes
    return m


@njit(inline="always", fastmath=_FASTMATH)
def _tile(source, base, wt, w0, c0, c1, taps, channel_span, tap_at, yf, y0, l_out, rows, count, width, vectors):
    """One tile over input channels ``[c0, c1)``: NO x ``vectors`` accumulators over each (channel, tap),
    starting from zero for the first chunk and from the tile's stored outputs after it; ``rows`` output
    rows and ``count`` positions of it are stored, from ``yf[y0]`` on (rows ``l_out`` apart).  Channel
    ``c``'s input starts at ``source[base + c * channel_span]``, tap ``k``'s run ``tap_at[k]`` later."""
    r0 = _start(yf, y0, c0 == 0, count, source, width, vectors)
    r1 = _start(yf, y0 + l_out, c0 == 0 or rows < 2, count, source, width, vectors)
    r2 = _start(yf, y0 + 2 * l_out, c0 == 0 or rows < 3, count, source, width, vectors)
    r3 = _start(yf, y0 + 3 * l_out, c0 == 0 or rows < 4, count, source, width, vectors)
    for c in range(c0, c1):
        for k in range(taps):
            xs = vloads(source, base + c * channel_span + tap_at[k], width, vectors)
            wk = w0 + (c * taps + k) * NO
            r0 = vfmas(vbroadcast(wt[wk], width), xs, r0)
            r1 = vfmas(vbroadcast(wt[wk + 1], width), xs, r1)
            r2 = vfmas(vbroadcast(wt[wk + 2], width), xs, r2)
            r3 = vfmas(vbroadcast(wt[wk + 3], width), xs, r3)
    vstores_partial(yf, y0, r0, count)
    if rows > 1:
        vstores_partial(yf, y0 + l_out, r1, count)
    if rows > 2:
        vstores_partial(yf, y0 + 2 * l_out, r2, count)
    if rows > 3:
        vstores_partial(yf, y0 + 3 * l_out, r3, count)


@njit(inline="always")
def _start(yf, y0, fresh, count, like, width, vectors):
    """A row's accumulators: zero (``fresh``), else the ``count`` outputs stored at ``yf[y0]``."""
    if fresh:
        return vzeros(like, width, vectors)
    return vloads_partial(yf, y0, count, width, vectors)


# --- the row tile: groups of fewer than NO output channels, and single signals ---------------------


@njit(cache=True)
def row_forward(x, w, pad_left, stride, dilation, groups, y, threads, width, vectors, job_positions=ROW_JOB_POSITIONS):
    """:func:`forward` on the row tile: each output row on its own, ``vectors`` vectors of ``width`` a tile,
    jobs of up to ``job_positions`` positions of a row."""
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    l_out = y.shape[2]
    tile = vectors.n * width.lanes
    span = (dilation * (taps - 1)) // stride + tile
    pair_direct = np.empty(c_per_group * taps, dtype=np.intp)  # pair (c, k): channel c's row, then tap k
    pair_packed = np.empty(c_per_group * taps, dtype=np.intp)
    for c in range(c_per_group):
        for k in range(taps):
            pair_direct[c * taps + k] = c * length + k * dilation
            pair_packed[c * taps + k] = (c * stride + (k * dilation) % stride) * span + (k * dilation) // stride
    rows = batch * c_out
    positions = job_positions
    if threads > 1 and rows < JOBS_PER_THREAD * threads:
        # few rows: cut them finer, so that every thread gets work (but no finer than ROW_JOB_MIN)
        positions = min(positions, max(ROW_JOB_MIN, -(-l_out * rows // (JOBS_PER_THREAD * threads))))
    tiles = (l_out + tile - 1) // tile
    jobs_per_row = max(1, -(-tiles // -(-positions // tile)))
    args = (x, w.reshape(-1), taps, pad_left, stride, dilation, groups, y, span, jobs_per_row, pair_direct,
            pair_packed, width, vectors)
    if threads > 1 and rows * jobs_per_row > 1:
        _row_parallel(rows * jobs_per_row, args)
    else:
        for job in range(rows * jobs_per_row):
            _row_job(job, *args)


@njit(parallel=True, cache=True)
def _row_parallel(jobs, args):
    for job in prange(jobs):
        _row_job(job, *args)


@njit(fastmath=_FASTMATH)
def _row_job(job, x, wf, taps, pad_left, stride, dilation, groups, y, span, jobs_per_row, pair_direct,
             pair_packed, width, vectors):
    batch, c_in, length = x.shape
    c_out, l_out = y.shape[1], y.shape[2]
    c_per_group = c_in // groups
    pairs = c_per_group * taps
    tile = vectors.n * width.lanes
    tiles = (l_out + tile - 1) // tile
    part = job % jobs_per_row  # its tiles: the row's tiles spread evenly over its jobs
    o = (job // jobs_per_row) % c_out
    b = job // (jobs_per_row * c_out)
    x0 = (b * c_in + (o // (c_out // groups)) * c_per_group) * length
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    block = np.empty(0, dtype=x.dtype)  # made where a tile needs it
    for t in range(part * tiles // jobs_per_row, (part + 1) * tiles // jobs_per_row):
        l0 = t * tile
        y0 = (b * c_out + o) * l_out + l0
        first = l0 * stride - pad_left
        if stride == 1 and first >= 0 and first + span <= length:
            _row_tile(xf, x0 + first, pair_direct, c_per_group, taps, 0, taps, wf, o * pairs, yf, y0,
                      min(tile, l_out - l0), width, vectors)
        else:
            if block.shape[0] == 0:
                block = np.empty(c_per_group * stride * span, dtype=x.dtype)
            _pack(xf, block, x0, length, c_per_group, stride, span, first, width)
            # the taps whose reads all fall in the padding add nothing: only [k0, k1) run (a signal as long
            # as its kernel, "full", would do twice its work otherwise)
            k0 = min(taps, max(0, -(-(-first - (tile - 1) * stride) // dilation)))
            k1 = max(k0, min(taps, (length - 1 - first) // dilation + 1))
            _row_tile(block, 0, pair_packed, c_per_group, taps, k0, k1, wf, o * pairs, yf, y0,
                      min(tile, l_out - l0), width, vectors)


@njit(inline="always", fastmath=_FASTMATH)
def _row_tile(source, base, pair_at, channels, taps, k0, k1, wf, w0, yf, y0, count, width, vectors):
    """``count`` outputs from ``yf[y0]``: ``vectors`` accumulators over the (channel, tap) pairs ``p = c *
    taps + k`` for taps ``k`` in ``[k0, k1)``, pair ``p`` reading ``source[base + pair_at[p]:]`` with weight
    ``wf[w0 + p]``."""
    r = vzeros(source, width, vectors)
    for c in range(channels):
        for p in range(c * taps + k0, c * taps + k1):
            r = vfmas(vbroadcast(wf[w0 + p], width), vloads(source, base + pair_at[p], width, vectors), r)
    vstores_partial(yf, y0, r, count)


# --- gradients -------------------------------------------------------------------------------------


def backward_input(g, w, length, pad_left, stride, dilation, groups, threads, out=None, run=None):
    """``grad_x`` (B, C_in, length) of the layer forward, by phase: no zeros spread into ``g``.

    ``grad_x[b, gi*Cg + c, q]`` collects ``w[o, c, k] * g[b, o, l]`` for ``q + pad_left = l*stride +
    k*dilation``.  Split ``q`` by its phase ``r = (q + pad_left) % stride``: only the taps with
    ``k*dilation % stride == r`` reach it, from ``l = t + e_k`` where ``q = stride*t + q0`` (``q0`` the
    phase's first position) and ``e_k = (q0 + pad_left - k*dilation) // stride``.  So each phase is a
    stride-1 correlation of ``g`` with its own taps, reversed, ``dilation / gcd(dilation, stride)``
    apart: the forward kernel, run once per phase (every tap once in all, as in the forward pass), its
    outputs written into every ``stride``-th position of ``grad_x``.  ``run(x, w, pad_left, dilation,
    groups, y)`` is the forward kernel (default: :func:`forward` on ``threads`` threads).
    """
    if run is None:
        def run(x, kernel, left, step, groups, y):
            forward(x, kernel, left, 1, step, groups, y, threads, *counts())
    batch, c_out, l_out = g.shape
    _, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    grad = np.empty((batch, c_per_group * groups, length), dtype=g.dtype) if out is None else out
    step = dilation // np.gcd(dilation, stride)
    # (G, Og, Cg, K) -> (G*Cg, Og, K): group gi maps its Og gradients to its Cg inputs
    w_t = w.reshape(groups, out_per_group, c_per_group, taps).transpose(0, 2, 1, 3).reshape(
        groups * c_per_group, out_per_group, taps)
    for r in range(stride):
        q0 = (r - pad_left) % stride
        count = len(range(q0, length, stride))
        if count == 0:
            continue
        phase_taps = [k for k in range(taps) if k * dilation % stride == r]
        if not phase_taps:  # no tap reaches these positions
            grad[:, :, q0::stride] = 0
            continue
        offsets = [(q0 + pad_left - k * dilation) // stride for k in phase_taps]  # decreasing in k
        kernel = np.ascontiguousarray(w_t[:, :, phase_taps[::-1]])  # offsets increasing
        if stride == 1:
            run(g, kernel, -offsets[-1], step, groups, grad)
        else:
            phase = np.empty((batch, grad.shape[1], count), dtype=g.dtype)
            run(g, kernel, -offsets[-1], step, groups, phase)
            grad[:, :, q0::stride] = phase
    return grad


def backward_weight(g, x, taps, pad_left, stride, dilation, groups, threads, panel_bytes=16384,
                    positions=GRAD_POSITIONS, jobs=GRAD_JOBS, most=None):
    """The weight gradient for the CPU Numba compiles for: as a matrix product with output channels
    along the vectors (:func:`weight_by_outputs`) where a group has at least a vector of them, else
    with positions along the vectors (:func:`weight_gradient`: depthwise and narrow groups).
    ``panel_bytes``: the bytes of ``g``'s transpose one pass of :func:`weight_by_outputs`'s tiles runs
    over (its ``steps``); ``positions``, ``jobs``: the pieces' positions and the jobs at most; ``most``:
    the product tile's vectors at most (default: the layer tile's, :data:`TILE_SHAPES`).  The numba
    backend passes the parameters ``numba.grad_panel_bytes``, ``numba.grad_positions``,
    ``numba.grad_jobs`` and ``numba.layer_vectors``."""
    isa = target_isa()
    lanes = isa.lanes(x.dtype)
    out_per_group = g.shape[1] // groups
    if out_per_group < lanes:
        return _weight_by_pairs(g, x, taps, pad_left, stride, dilation, groups, threads, positions, jobs)
    vectors = outputs_tile(out_per_group, lanes, TILE_SHAPES[isa.name].layer if most is None else most)
    steps = max(16, panel_bytes // (vectors * lanes * x.itemsize))
    return weight_by_outputs(g, x, taps, pad_left, stride, dilation, groups, threads, Width(lanes), Count(vectors),
                             steps, positions, jobs)


@njit(cache=True)
def _weight_by_pairs(g, x, taps, pad_left, stride, dilation, groups, threads, positions, most_jobs):
    """:func:`weight_gradient` for the CPU Numba compiles for."""
    return weight_gradient(g, x, taps, pad_left, stride, dilation, groups, threads, native_width(x), positions,
                           most_jobs)


@njit(cache=True)
def weight_gradient(g, x, taps, pad_left, stride, dilation, groups, threads, width, positions=GRAD_POSITIONS,
                    most_jobs=GRAD_JOBS):
    """``grad_w[o, c, k] = sum_{b, l} g[b, o, l] * xpad[b, gi*Cg + c, l*stride + k*dilation]``.

    A tile is NO output channels x :data:`GRAD_PAIRS` (channel, tap) pairs of vector accumulators
    along positions, the input packed by phase as in :func:`forward`.  The (batch item, range of
    ``positions`` positions) pieces are split into at most ``most_jobs`` jobs, by the
    shapes alone; a job packs each piece's input once, runs every tile over it, and adds each tile's
    sums, reduced by halving (:func:`~conv1dbench._backends._simd.vsum`), to gradients of its own.  The
    jobs' gradients are then added in job order, in parallel over output channels.  So every sum runs
    in an order fixed by the shapes: the same bits for any thread count.
    """
    batch, c_out, l_out = g.shape
    c_per_group = x.shape[1] // groups
    pieces = batch * ((l_out + positions - 1) // positions)
    jobs = min(pieces, most_jobs)
    partial = np.zeros((jobs, c_out, c_per_group, taps), dtype=g.dtype)
    args = (g, x, taps, pad_left, stride, dilation, groups, jobs, partial, width, positions)
    if threads > 1 and jobs > 1:
        _weight_parallel(jobs, args)
        return _sum_jobs_parallel(partial)
    for job in range(jobs):
        _weight_job(job, *args)
    return _sum_jobs(partial)


@njit(parallel=True, cache=True)
def _weight_parallel(jobs, args):
    for job in prange(jobs):
        _weight_job(job, *args)


@njit(inline="always")
def _sum_job_row(partial, grad, o):
    grad[o] = partial[0, o]
    for j in range(1, partial.shape[0]):
        grad[o] += partial[j, o]


@njit(cache=True)
def _sum_jobs(partial):
    """The jobs' gradients added in job order."""
    grad = np.empty(partial.shape[1:], dtype=partial.dtype)
    for o in range(partial.shape[1]):
        _sum_job_row(partial, grad, o)
    return grad


@njit(parallel=True, cache=True)
def _sum_jobs_parallel(partial):
    """:func:`_sum_jobs`, output channels on Numba's threads (the same order for each)."""
    grad = np.empty(partial.shape[1:], dtype=partial.dtype)
    for o in prange(partial.shape[1]):
        _sum_job_row(partial, grad, o)
    return grad


@njit(fastmath=_FASTMATH)
def _weight_job(job, g, x, taps, pad_left, stride, dilation, groups, jobs, partial, width, positions):
    batch, c_out, l_out = g.shape
    c_in, length = x.shape[1], x.shape[2]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    pairs = c_per_group * taps
    reach = (dilation * (taps - 1)) // stride
    ranges = (l_out + positions - 1) // positions
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    block = np.empty(c_per_group * stride * (reach + min(positions, l_out)), dtype=x.dtype)
    for piece in range(job * batch * ranges // jobs, (job + 1) * batch * ranges // jobs):
        b = piece // ranges
        l0 = (piece % ranges) * positions
        n = min(positions, l_out - l0)
        span = reach + n  # the last range is shorter: its own offsets
        tap_at = _tap_offsets(taps, stride, dilation, span)[1]
        for gi in range(groups):
            _pack(xf, block, (b * c_in + gi * c_per_group) * length, length, c_per_group, stride, span,
                  l0 * stride - pad_left, width)
            for o0 in range(gi * out_per_group, (gi + 1) * out_per_group, NO):
                for p0 in range(0, pairs, GRAD_PAIRS):
                    _weight_tile(gf, (b * c_out + o0) * l_out + l0, l_out, min(NO, (gi + 1) * out_per_group - o0),
                                 block, stride * span, tap_at, taps, p0, min(GRAD_PAIRS, pairs - p0), n,
                                 partial[job], o0, width)


@njit(inline="always", fastmath=_FASTMATH)
def _weight_tile(gf, g0, l_out, rows, block, channel_span, tap_at, taps, p0, count, n, out, o0, width):
    """``out[o0 + i, c, k] +=`` the sums over ``n`` positions, for ``rows`` output channels and ``count``
    (channel, tap) pairs from ``p0``: 12 vector accumulators.  Rows and pairs past the valid ones repeat
    the last valid one (no branch in the loop) and are not stored."""
    lanes = width.lanes
    g1 = g0 + min(1, rows - 1) * l_out
    g2 = g0 + min(2, rows - 1) * l_out
    g3 = g0 + min(3, rows - 1) * l_out
    q0, q1, q2 = p0, p0 + min(1, count - 1), p0 + min(2, count - 1)
    x0 = (q0 // taps) * channel_span + tap_at[q0 % taps]
    x1 = (q1 // taps) * channel_span + tap_at[q1 % taps]
    x2 = (q2 // taps) * channel_span + tap_at[q2 % taps]
    z = vzero(block, width)
    r0 = r1 = r2 = r3 = (z, z, z)
    full = n - n % lanes
    for m in range(0, full, lanes):
        us = (vload(block, x0 + m, width), vload(block, x1 + m, width), vload(block, x2 + m, width))
        r0 = _fma3(vload(gf, g0 + m, width), us, r0)
        r1 = _fma3(vload(gf, g1 + m, width), us, r1)
        r2 = _fma3(vload(gf, g2 + m, width), us, r2)
        r3 = _fma3(vload(gf, g3 + m, width), us, r3)
    if full < n:  # the last positions: partial loads (zeros past n)
        left = n - full
        us = (vload_partial(block, x0 + full, left, width), vload_partial(block, x1 + full, left, width),
              vload_partial(block, x2 + full, left, width))
        r0 = _fma3(vload_partial(gf, g0 + full, left, width), us, r0)
        r1 = _fma3(vload_partial(gf, g1 + full, left, width), us, r1)
        r2 = _fma3(vload_partial(gf, g2 + full, left, width), us, r2)
        r3 = _fma3(vload_partial(gf, g3 + full, left, width), us, r3)
    _put(out, o0, p0, taps, count, r0)
    if rows > 1:
        _put(out, o0 + 1, p0, taps, count, r1)
    if rows > 2:
        _put(out, o0 + 2, p0, taps, count, r2)
    if rows > 3:
        _put(out, o0 + 3, p0, taps, count, r3)


# --- the weight gradient as a matrix product: output channels along the vectors ---------------------


def outputs_tile(out_per_group: int, lanes: int, most: int) -> int:
    """Vectors of output channels per tile of :func:`weight_by_outputs`: at most ``most``, as few blocks
    of the group's channels as that allows, and no more vectors than those blocks need (128 channels of
    16 lanes with at most 6 vectors: two blocks of 4, not 6 and 2)."""
    blocks = -(-out_per_group // (most * lanes))
    return -(-out_per_group // (blocks * lanes))


@njit(cache=True)
def weight_by_outputs(g, x, taps, pad_left, stride, dilation, groups, threads, width, vectors, steps,
                      positions=GRAD_POSITIONS, most_jobs=GRAD_JOBS):
    """:func:`weight_gradient` as the matrix product it is: ``grad_w^T (pairs x C_out) = X (pairs x
    positions) . g^T (positions x C_out)`` per group, where pair ``(c, k)``'s row of ``X`` is channel
    ``c``'s input ``k * dilation`` on, packed by phase as in :func:`forward`.

    A tile is :data:`NO` pairs x ``vectors`` vectors of output channels: per position, ``vectors``
    loads of ``g``'s transpose (made per job, its rows padded to whole tiles and 64-byte aligned, so
    no load crosses a cache line), ``NO`` broadcasts of input samples and ``NO * vectors`` fused
    multiply-adds, each lane an output channel of its own: no sums across lanes.  The tile runs over
    ``steps`` positions at a time (the panel of the transpose that every pair block runs over), its
    accumulators kept in the job's partial gradient between.  Jobs and their
    order are :func:`weight_gradient`'s, and each output's sum runs position by position whatever
    ``steps`` is: the same bits for any thread count and any ``steps``.
    """
    batch, c_out, l_out = g.shape
    groups_cols = groups * (-(-(c_out // groups) // (vectors.n * width.lanes)) * vectors.n * width.lanes)
    pairs = (x.shape[1] // groups) * taps
    pieces = batch * ((l_out + positions - 1) // positions)
    jobs = min(pieces, most_jobs)
    partial = _aligned_zeros(jobs * pairs * groups_cols, g)
    # fewer jobs than threads (one batch item, few positions): each job's pair blocks are cut into parts
    # that threads share; a part writes its own rows of the job's gradient, in the same order, so the
    # bits stay those of one part
    parts = 1 if threads <= jobs else min(-(-threads // jobs), -(-pairs // NO))
    args = (g, x, taps, pad_left, stride, dilation, groups, jobs, parts, partial, width, vectors, steps, positions)
    partial4 = partial.reshape((jobs, groups, pairs, groups_cols // groups))
    if threads > 1 and jobs * parts > 1:
        _outputs_parallel(jobs * parts, args)
        return _outputs_sum_parallel(partial4, c_out, taps)
    for job in range(jobs):
        _outputs_job(job, *args)
    return _outputs_sum(partial4, c_out, taps)


@njit(inline="always")
def _aligned_zeros(size, like):
    """``size`` zeros of ``like``'s dtype, the first at the start of a 64-byte cache line."""
    room = np.zeros(size + 64 // like.itemsize, dtype=like.dtype)
    skip = (-room.ctypes.data) % 64 // room.itemsize
    return room[skip:skip + size]


@njit(parallel=True, cache=True)
def _outputs_parallel(items, args):
    for item in prange(items):
        _outputs_job(item, *args)


#: The pieces the jobs' gradients are added up in: (group, pair) rows, so many a piece.
SUM_PIECES = 64


@njit(inline="always")
def _outputs_rows(partial, grad, piece, pieces):
    """``grad[o, c, k]`` for the (group, pair) rows of ``piece``: the jobs' ``partial[job, group, c * taps
    + k, o]`` added in job order, along the rows (where they are contiguous), then put in place."""
    jobs, groups, pairs, _ = partial.shape
    out_per_group, taps = grad.shape[0] // groups, grad.shape[2]
    total = np.empty(out_per_group, dtype=partial.dtype)
    for row in range(piece * groups * pairs // pieces, (piece + 1) * groups * pairs // pieces):
        gi, p = row // pairs, row % pairs
        total[:] = partial[0, gi, p, :out_per_group]
        for j in range(1, jobs):
            total += partial[j, gi, p, :out_per_group]
        grad[gi * out_per_group:(gi + 1) * out_per_group, p // taps, p % taps] = total


@njit(cache=True)
def _outputs_sum(partial, c_out, taps):
    grad = np.empty((c_out, partial.shape[2] // taps, taps), dtype=partial.dtype)
    _outputs_rows(partial, grad, 0, 1)
    return grad


@njit(parallel=True, cache=True)
def _outputs_sum_parallel(partial, c_out, taps):
    """:func:`_outputs_sum` in :data:`SUM_PIECES` pieces on Numba's threads (the same order for each)."""
    grad = np.empty((c_out, partial.shape[2] // taps, taps), dtype=partial.dtype)
    pieces = min(SUM_PIECES, partial.shape[1] * partial.shape[2])
    for piece in prange(pieces):
        _outputs_rows(partial, grad, piece, pieces)
    return grad


@njit(fastmath=_FASTMATH)
def _outputs_job(item, g, x, taps, pad_left, stride, dilation, groups, jobs, parts, partial, width, vectors, steps,
                 positions):
    """Part ``item % parts`` of job ``item // parts``: its share of the pair blocks, over the job's pieces."""
    job, part = item // parts, item % parts
    batch, c_out, l_out = g.shape
    c_in, length = x.shape[1], x.shape[2]
    c_per_group, out_per_group = c_in // groups, c_out // groups
    pairs = c_per_group * taps
    tile = vectors.n * width.lanes
    cols = partial.size // (jobs * groups * pairs)  # a group's output channels, padded to whole tiles
    reach = (dilation * (taps - 1)) // stride
    ranges = (l_out + positions - 1) // positions
    most = min(positions, l_out)
    xf, gf = x.reshape(-1), g.reshape(-1)
    block = np.empty(c_per_group * stride * (reach + most), dtype=x.dtype)
    gt = _aligned_zeros(most * cols, g)  # g's transpose: positions x a group's channels (the pad stays 0)
    own = job * groups * pairs * cols
    blocks = -(-pairs // NO)
    for piece in range(job * batch * ranges // jobs, (job + 1) * batch * ranges // jobs):
        b = piece // ranges
        l0 = (piece % ranges) * positions
        n = min(positions, l_out - l0)
        span = reach + n
        tap_at = _tap_offsets(taps, stride, dilation, span)[1]
        for gi in range(groups):
            _pack(xf, block, (b * c_in + gi * c_per_group) * length, length, c_per_group, stride, span,
                  l0 * stride - pad_left, width)
            for o in range(out_per_group):
                row = (b * c_out + gi * out_per_group + o) * l_out + l0
                for m in range(n):
                    gt[m * cols + o] = gf[row + m]
            for s0 in range(0, n, steps):
                for o0 in range(0, cols, tile):
                    for p0 in range(part * blocks // parts * NO, (part + 1) * blocks // parts * NO, NO):
                        _outputs_tile(block, stride * span, tap_at, taps, p0, min(NO, pairs - p0), gt, cols, o0,
                                      s0, min(n, s0 + steps), partial, own + gi * pairs * cols, width, vectors)


@njit(inline="always", fastmath=_FASTMATH)
def _outputs_tile(block, channel_span, tap_at, taps, p0, rows, gt, cols, o0, s0, s1, partial, at, width, vectors):
    """Pairs ``p0 ..`` (``rows`` of them) x the output channels ``o0 .. o0 + vectors * lanes``, over
    positions ``[s0, s1)``: the accumulators start from ``partial[at + p * cols + o0]`` and go back
    there.  Rows past the valid ones repeat the last valid one (no branch in the loop) and are not
    stored."""
    q1, q2, q3 = p0 + min(1, rows - 1), p0 + min(2, rows - 1), p0 + min(3, rows - 1)
    x0 = (p0 // taps) * channel_span + tap_at[p0 % taps]
    x1 = (q1 // taps) * channel_span + tap_at[q1 % taps]
    x2 = (q2 // taps) * channel_span + tap_at[q2 % taps]
    x3 = (q3 // taps) * channel_span + tap_at[q3 % taps]
    a0, a1, a2, a3 = at + p0 * cols + o0, at + q1 * cols + o0, at + q2 * cols + o0, at + q3 * cols + o0
    r0 = vloads(partial, a0, width, vectors)
    r1 = vloads(partial, a1, width, vectors)
    r2 = vloads(partial, a2, width, vectors)
    r3 = vloads(partial, a3, width, vectors)
    for m in range(s0, s1):  # (unsigned indices: no wraparound of negative ones, 4 instructions each)
        gs = vloads(gt, m * cols + o0, width, vectors)
        r0 = vfmas(vbroadcast(block[np.uintp(x0 + m)], width), gs, r0)
        r1 = vfmas(vbroadcast(block[np.uintp(x1 + m)], width), gs, r1)
        r2 = vfmas(vbroadcast(block[np.uintp(x2 + m)], width), gs, r2)
        r3 = vfmas(vbroadcast(block[np.uintp(x3 + m)], width), gs, r3)
    everything = vectors.n * width.lanes
    vstores_partial(partial, a0, r0, everything)
    if rows > 1:
        vstores_partial(partial, a1, r1, everything)
    if rows > 2:
        vstores_partial(partial, a2, r2, everything)
    if rows > 3:
        vstores_partial(partial, a3, r3, everything)


@njit(inline="always", fastmath=_FASTMATH)
def _fma3(v, us, r):
    """Three accumulators (one per (channel, tap) pair), each ``r[j] + v * us[j]``, fused."""
    return vfma(v, us[0], r[0]), vfma(v, us[1], r[1]), vfma(v, us[2], r[2])


@njit(inline="always")
def _put(out, o, p0, taps, count, r):
    """The lane sums of a row's accumulators added to ``out[o]``, at (channel, tap) pairs ``p0`` on."""
    out[o, p0 // taps, p0 % taps] += vsum(r[0])
    if count > 1:
        out[o, (p0 + 1) // taps, (p0 + 1) % taps] += vsum(r[1])
    if count > 2:
        out[o, (p0 + 2) // taps, (p0 + 2) % taps] += vsum(r[2])
