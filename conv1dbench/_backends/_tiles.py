"""Register-tiled layer forward for the numba backend (issue 14, first step: not wired in yet).

One job is one (batch item, group, tile of output positions).  The job first packs the input block
that its tile reads into a scratch buffer, by *phase*: for stride ``s``, tap ``k`` of output ``l``
reads input ``l*s + k*dilation - pad_left = (l + m_k)*s + p_k - pad_left`` with ``p_k = (k*dilation) % s``
and ``m_k = (k*dilation) // s``, so row ``p`` of the block holds the samples ``(l0 + m)*s + p - pad_left``
for ``m = 0, 1, ...`` and every tap is a contiguous run of one row.  Padding is packed as zeros, so
the hot loop has no edges, and stride and dilation cost nothing in it.  Then, for each block of
:data:`NO` output channels, a tile of ``NO`` x :data:`NV` vectors of accumulators (12 registers) is
kept across every input channel and tap of the group: per (channel, tap) ``NV`` vector loads of the
packed row, ``NO`` broadcasts of the weights (packed as ``(group, block, channel, tap, NO)``), and
``NO * NV`` fused multiply-adds.  Each output is written once, the tile's edges (output channels
past the group's, positions past ``L_out``) by partial stores.

The tile shape: 4 x 3 vectors, for every ISA: 12 accumulators, 3 loaded vectors and a broadcast fit
AVX2's 16 registers and leave AVX-512's 32 half free (a larger AVX-512 tile is the next step); the
vector width is the ISA's (:func:`conv1dbench._backends._simd.target_isa`), passed as a
:class:`~conv1dbench._backends._simd.Width` so that it is part of the compiled signature.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from .._plan import output_length
from ._simd import Width, target_isa, vbroadcast, vfma, vload, vload_partial, vstore, vstore_partial, vsum, vzero

#: Output channels and position vectors per tile: 12 accumulators, 3 loaded vectors and a broadcast fit
#: 16 vector registers (AVX2, 128-bit ISAs); with 32 (AVX-512) the wide tile doubles the vectors:
#: NO x NV_WIDE = 24 accumulators, 6 loads and a broadcast.
NO, NV, NV_WIDE = 4, 3, 6
#: Bytes of packed input one pass over the output-channel blocks reads: the input channels are taken in
#: chunks of about this many bytes of packed rows, so that a chunk stays in L1 (32-48 KiB) while every
#: output-channel block of the tile runs over it (with its weights: NO * chunk * K more values).
CHUNK_BYTES = 16384

_FASTMATH = {"contract"}


def pack_weights(w: np.ndarray, groups: int) -> np.ndarray:
    """``w`` (C_out, Cg, K) as ``(groups, blocks, Cg, K, NO)``, flat, the channels past a group's zero."""
    c_out, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    blocks = -(-out_per_group // NO)
    packed = np.zeros((groups, blocks * NO, c_per_group, taps), dtype=w.dtype)
    packed[:, :out_per_group] = w.reshape(groups, out_per_group, c_per_group, taps)
    packed = packed.reshape(groups, blocks, NO, c_per_group, taps).transpose(0, 1, 3, 4, 2)
    return np.ascontiguousarray(packed).reshape(-1)


def forward(x, w, pad_left, pad_right, stride, dilation, groups, width: Width | None = None,
            wide: bool | None = None):
    """The layer forward ``y[b, o, l] = sum_{c, k} w[o, c, k] * xpad[b, g*Cg + c, l*stride + k*dilation]``.

    ``x`` (B, C_in, L) and ``w`` (C_out, C_in // groups, K), C-contiguous, one float dtype; ``width``
    defaults to the target ISA's for that dtype, ``wide`` (the tile of :data:`NV_WIDE` vectors) to
    whether the ISA has 32 vector registers.
    """
    isa = target_isa()
    if width is None:
        width = Width(isa.lanes(x.dtype))
    if wide is None:
        wide = isa.registers >= 32
    batch, _, length = x.shape
    taps = w.shape[2]
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    y = np.empty((batch, w.shape[0], l_out), dtype=x.dtype)
    _forward(x, pack_weights(w, groups), w.shape[0], taps, pad_left, stride, dilation, groups, y, width, wide)
    return y


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _forward(x, wt, c_out, taps, pad_left, stride, dilation, groups, y, width, wide):
    batch, c_in, length = x.shape
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    blocks = (out_per_group + NO - 1) // NO
    l_out = y.shape[2]
    tile = (NV_WIDE if wide else NV) * width.lanes
    tiles = (l_out + tile - 1) // tile
    span = (dilation * (taps - 1)) // stride + tile  # packed samples per row
    # where tap k's run starts in a channel's packed rows: its phase's row, then its shift (no division
    # left in the hot loop)
    tap_at = np.empty(taps, dtype=np.intp)
    for k in range(taps):
        tap_at[k] = (k * dilation) % stride * span + (k * dilation) // stride
    chunk = max(1, CHUNK_BYTES // (stride * span * x.itemsize))
    xf = x.reshape(-1)
    yf = y.reshape(-1)
    for job in prange(batch * groups * tiles):
        t = job % tiles
        g = (job // tiles) % groups
        b = job // (tiles * groups)
        l0 = t * tile
        block = np.empty(c_per_group * stride * span, dtype=x.dtype)
        _pack(xf, block, (b * c_in + g * c_per_group) * length, length, c_per_group, stride, span, l0, pad_left)
        count = min(tile, l_out - l0)
        for c0 in range(0, c_per_group, chunk):
            c1 = min(c_per_group, c0 + chunk)
            for ob in range(blocks):
                o = g * out_per_group + ob * NO
                w0, y0, rows = ((g * blocks + ob) * c_per_group) * taps * NO, (b * c_out + o) * l_out + l0, min(
                    NO, out_per_group - ob * NO)
                if wide:
                    _tile_wide(block, wt, w0, c0, c1, taps, stride * span, tap_at, yf, y0, l_out, rows, count,
                               width)
                else:
                    _tile(block, wt, w0, c0, c1, taps, stride * span, tap_at, yf, y0, l_out, rows, count, width)


@njit(inline="always")
def _pack(xf, block, x0, length, channels, stride, span, l0, pad_left):
    """``block[(c*stride + p)*span + m] = x[c, (l0 + m)*stride + p - pad_left]``, zero outside ``[0, length)``."""
    for c in range(channels):
        row = x0 + c * length
        for p in range(stride):
            out = (c * stride + p) * span
            first = (l0 * stride + p - pad_left)
            for m in range(span):
                i = first + m * stride
                block[out + m] = xf[row + i] if 0 <= i < length else 0


@njit(inline="always", fastmath=_FASTMATH)
def _tile(block, wt, w0, c0, c1, taps, channel_span, tap_at, yf, y0, l_out, rows, count, width):
    """One tile over input channels ``[c0, c1)``: NO x NV accumulators over each (channel, tap), starting
    from zero for the first chunk and from the tile's stored outputs after it; ``rows`` output rows and
    ``count`` positions of it are stored, from ``yf[y0]`` on (rows ``l_out`` apart).  A channel's packed
    rows take ``channel_span`` samples; tap ``k`` starts at ``tap_at[k]`` in them."""
    lanes = width.lanes
    r0 = _start_row(yf, y0, c0 == 0, count, block, width)
    r1 = _start_row(yf, y0 + l_out, c0 == 0 or rows < 2, count, block, width)
    r2 = _start_row(yf, y0 + 2 * l_out, c0 == 0 or rows < 3, count, block, width)
    r3 = _start_row(yf, y0 + 3 * l_out, c0 == 0 or rows < 4, count, block, width)
    for c in range(c0, c1):
        for k in range(taps):
            start = c * channel_span + tap_at[k]
            xs = (vload(block, start, width), vload(block, start + lanes, width),
                  vload(block, start + 2 * lanes, width))
            wk = w0 + (c * taps + k) * NO
            r0 = _fma_row(vbroadcast(wt[wk], width), xs, r0)
            r1 = _fma_row(vbroadcast(wt[wk + 1], width), xs, r1)
            r2 = _fma_row(vbroadcast(wt[wk + 2], width), xs, r2)
            r3 = _fma_row(vbroadcast(wt[wk + 3], width), xs, r3)
    _store_row(yf, y0, r0, count, width)
    if rows > 1:
        _store_row(yf, y0 + l_out, r1, count, width)
    if rows > 2:
        _store_row(yf, y0 + 2 * l_out, r2, count, width)
    if rows > 3:
        _store_row(yf, y0 + 3 * l_out, r3, count, width)


@njit(inline="always", fastmath=_FASTMATH)
def _fma_row(v, xs, r):
    """A row of NV accumulators, ``r[j] + v * xs[j]`` each, fused."""
    return vfma(v, xs[0], r[0]), vfma(v, xs[1], r[1]), vfma(v, xs[2], r[2])


@njit(inline="always")
def _start_row(yf, y0, fresh, count, block, width):
    """A row's three accumulators: zero (``fresh``), else the ``count`` outputs stored at ``yf[y0]``."""
    lanes = width.lanes
    if fresh:
        return vzero(block, width), vzero(block, width), vzero(block, width)
    return (_load(yf, y0, count, width), _load(yf, y0 + lanes, count - lanes, width),
            _load(yf, y0 + 2 * lanes, count - 2 * lanes, width))


@njit(inline="always")
def _load(yf, at, count, width):
    if count >= width.lanes:
        return vload(yf, at, width)
    return vload_partial(yf, at, max(count, 0), width)


@njit(inline="always")
def _store_row(yf, y0, r, count, width):
    """The first ``count`` of the row's ``NV * lanes`` outputs, at ``yf[y0]``: whole vectors, then a partial one."""
    lanes = width.lanes
    _store(yf, y0, r[0], count, lanes)
    _store(yf, y0 + lanes, r[1], count - lanes, lanes)
    _store(yf, y0 + 2 * lanes, r[2], count - 2 * lanes, lanes)


@njit(inline="always")
def _store(yf, at, v, count, lanes):
    if count >= lanes:
        vstore(yf, at, v)
    elif count > 0:
        vstore_partial(yf, at, v, count)


@njit(inline="always", fastmath=_FASTMATH)
def _tile_wide(block, wt, w0, c0, c1, taps, channel_span, tap_at, yf, y0, l_out, rows, count, width):
    """:func:`_tile` with NV_WIDE vectors per row: each row's accumulators a tuple, the same order of operations."""
    lanes = width.lanes
    r0 = _start_wide(yf, y0, c0 == 0, count, block, width)
    r1 = _start_wide(yf, y0 + l_out, c0 == 0 or rows < 2, count, block, width)
    r2 = _start_wide(yf, y0 + 2 * l_out, c0 == 0 or rows < 3, count, block, width)
    r3 = _start_wide(yf, y0 + 3 * l_out, c0 == 0 or rows < 4, count, block, width)
    for c in range(c0, c1):
        for k in range(taps):
            start = c * channel_span + tap_at[k]
            xs = (vload(block, start, width), vload(block, start + lanes, width),
                  vload(block, start + 2 * lanes, width), vload(block, start + 3 * lanes, width),
                  vload(block, start + 4 * lanes, width), vload(block, start + 5 * lanes, width))
            wk = w0 + (c * taps + k) * NO
            r0 = _fma_wide(vbroadcast(wt[wk], width), xs, r0)
            r1 = _fma_wide(vbroadcast(wt[wk + 1], width), xs, r1)
            r2 = _fma_wide(vbroadcast(wt[wk + 2], width), xs, r2)
            r3 = _fma_wide(vbroadcast(wt[wk + 3], width), xs, r3)
    _store_wide(yf, y0, r0, count, lanes)
    if rows > 1:
        _store_wide(yf, y0 + l_out, r1, count, lanes)
    if rows > 2:
        _store_wide(yf, y0 + 2 * l_out, r2, count, lanes)
    if rows > 3:
        _store_wide(yf, y0 + 3 * l_out, r3, count, lanes)


@njit(inline="always", fastmath=_FASTMATH)
def _fma_wide(v, xs, r):
    return (vfma(v, xs[0], r[0]), vfma(v, xs[1], r[1]), vfma(v, xs[2], r[2]), vfma(v, xs[3], r[3]),
            vfma(v, xs[4], r[4]), vfma(v, xs[5], r[5]))


@njit(inline="always")
def _start_wide(yf, y0, fresh, count, block, width):
    lanes = width.lanes
    if fresh:
        z = vzero(block, width)
        return z, z, z, z, z, z
    return (_load(yf, y0, count, width), _load(yf, y0 + lanes, count - lanes, width),
            _load(yf, y0 + 2 * lanes, count - 2 * lanes, width), _load(yf, y0 + 3 * lanes, count - 3 * lanes, width),
            _load(yf, y0 + 4 * lanes, count - 4 * lanes, width), _load(yf, y0 + 5 * lanes, count - 5 * lanes, width))


@njit(inline="always")
def _store_wide(yf, y0, r, count, lanes):
    for j in range(NV_WIDE):
        _store(yf, y0 + j * lanes, r[j], count - j * lanes, lanes)


def backward_input(g, w, length, pad_left, stride, dilation, groups, width: Width | None = None):
    """``grad_x`` (B, C_in, length) of the layer forward, by phase: no zeros spread into ``g``.

    ``grad_x[b, gi*Cg + c, q]`` collects ``w[o, c, k] * g[b, o, l]`` for ``q + pad_left = l*stride +
    k*dilation``.  Split ``q`` by its phase ``r = (q + pad_left) % stride``: only the taps with
    ``k*dilation % stride == r`` reach it, from ``l = t + e_k`` where ``q = stride*t + q0`` (``q0`` the
    phase's first position) and ``e_k = (q0 + pad_left - k*dilation) // stride``.  So each phase is a
    stride-1 correlation of ``g`` with its own taps, reversed, ``dilation / gcd(dilation, stride)``
    apart: the forward kernel, run once per phase (every tap once in all, as in the forward pass), its
    outputs written into every ``stride``-th position of ``grad_x``.
    """
    if width is None:
        width = Width(target_isa().lanes(g.dtype))
    batch, c_out, l_out = g.shape
    _, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    grad = np.zeros((batch, c_per_group * groups, length), dtype=g.dtype)
    step = dilation // np.gcd(dilation, stride)
    # (G, Og, Cg, K) -> (G*Cg, Og, K): group gi maps its Og gradients to its Cg inputs
    w_t = w.reshape(groups, out_per_group, c_per_group, taps).transpose(0, 2, 1, 3).reshape(
        groups * c_per_group, out_per_group, taps)
    for r in range(stride):
        phase_taps = [k for k in range(taps) if k * dilation % stride == r]
        q0 = (r - pad_left) % stride
        count = len(range(q0, length, stride))
        if not phase_taps or count == 0:
            continue
        offsets = [(q0 + pad_left - k * dilation) // stride for k in phase_taps]  # decreasing in k
        kernel = np.ascontiguousarray(w_t[:, :, phase_taps[::-1]])  # offsets increasing
        left = -offsets[-1]
        right = count - l_out - left + step * (len(phase_taps) - 1)
        grad[:, :, q0::stride] = forward(g, kernel, left, right, 1, step, groups, width)
    return grad


#: Output positions per job of the weight gradient: a job packs its input rows over this range once and
#: runs every tile over it; jobs are (batch item, range), their partial gradients summed in job order.
GRAD_POSITIONS = 4096
#: The weight gradient's tile: NO output channels x GRAD_PAIRS (input channel, tap) pairs of vectors.
GRAD_PAIRS = 3


def backward_weight(g, x, taps, pad_left, stride, dilation, groups, width: Width | None = None):
    """``grad_w[o, c, k] = sum_{b, l} g[b, o, l] * xpad[b, gi*Cg + c, l*stride + k*dilation]``.

    A tile is NO output channels x :data:`GRAD_PAIRS` (channel, tap) pairs of vector accumulators
    along positions, the input packed by phase as in :func:`forward`; each tile's sums are reduced
    once per job, by halving (:func:`~conv1dbench._backends._simd.vsum`), and the jobs' partial
    gradients are summed in job order.  The jobs depend on the shapes only, so the result is the same
    bits for any thread count.
    """
    if width is None:
        width = Width(target_isa().lanes(g.dtype))
    batch, _, l_out = g.shape
    c_per_group = x.shape[1] // groups
    ranges = (l_out + GRAD_POSITIONS - 1) // GRAD_POSITIONS
    partial = np.empty((batch * ranges, g.shape[1], c_per_group, taps), dtype=g.dtype)
    _weight_jobs(g, x, taps, pad_left, stride, dilation, groups, ranges, partial, width)
    return partial.sum(axis=0) if partial.shape[0] > 1 else partial[0]


@njit(parallel=True, fastmath=_FASTMATH, cache=True)
def _weight_jobs(g, x, taps, pad_left, stride, dilation, groups, ranges, partial, width):
    batch, c_out, l_out = g.shape
    c_in, length = x.shape[1], x.shape[2]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    pairs = c_per_group * taps
    reach = (dilation * (taps - 1)) // stride
    xf = x.reshape(-1)
    gf = g.reshape(-1)
    for job in prange(batch * ranges):
        b = job // ranges
        l0 = (job % ranges) * GRAD_POSITIONS
        n = min(GRAD_POSITIONS, l_out - l0)
        span = reach + n  # the last range is shorter: each job its own offsets
        tap_at = np.empty(taps, dtype=np.intp)
        for k in range(taps):
            tap_at[k] = (k * dilation) % stride * span + (k * dilation) // stride
        for gi in range(groups):
            block = np.empty(c_per_group * stride * span, dtype=x.dtype)
            _pack(xf, block, (b * c_in + gi * c_per_group) * length, length, c_per_group, stride, span, l0,
                  pad_left)
            for o0 in range(gi * out_per_group, (gi + 1) * out_per_group, NO):
                for p0 in range(0, pairs, GRAD_PAIRS):
                    _weight_tile(gf, (b * c_out + o0) * l_out + l0, l_out, min(NO, (gi + 1) * out_per_group - o0),
                                 block, stride * span, tap_at, taps, p0, min(GRAD_PAIRS, pairs - p0), n,
                                 partial[job], o0, width)


@njit(inline="always", fastmath=_FASTMATH)
def _weight_tile(gf, g0, l_out, rows, block, channel_span, tap_at, taps, p0, count, n, out, o0, width):
    """``out[o0 + i, c, k]`` for ``rows`` output channels and ``count`` (channel, tap) pairs from ``p0``:
    12 vector accumulators over ``n`` positions.  Rows and pairs past the valid ones repeat the last
    valid one (no branch in the loop) and are not stored."""
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
    for m in range(0, n, lanes):
        left = lanes if m < full else n - m
        us = (_load(block, x0 + m, left, width), _load(block, x1 + m, left, width), _load(block, x2 + m, left, width))
        r0 = _fma_row(_load(gf, g0 + m, left, width), us, r0)
        r1 = _fma_row(_load(gf, g1 + m, left, width), us, r1)
        r2 = _fma_row(_load(gf, g2 + m, left, width), us, r2)
        r3 = _fma_row(_load(gf, g3 + m, left, width), us, r3)
    _put(out, o0, p0, taps, count, r0)
    if rows > 1:
        _put(out, o0 + 1, p0, taps, count, r1)
    if rows > 2:
        _put(out, o0 + 2, p0, taps, count, r2)
    if rows > 3:
        _put(out, o0 + 3, p0, taps, count, r3)


@njit(inline="always")
def _put(out, o, p0, taps, count, r):
    """The lane sums of a row's accumulators into ``out[o]``, at (channel, tap) pairs ``p0`` on."""
    out[o, p0 // taps, p0 % taps] = vsum(r[0])
    if count > 1:
        out[o, (p0 + 1) // taps, (p0 + 1) % taps] = vsum(r[1])
    if count > 2:
        out[o, (p0 + 2) // taps, (p0 + 2) % taps] = vsum(r[2])
