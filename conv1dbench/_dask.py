"""Dask arrays in, Dask arrays out: convolution chunk by chunk, for data larger than memory.

``convolve``, ``correlate`` and ``conv1d`` hand a Dask array here (Dask is optional and imported
only then).  Every mode is the *valid* cross-correlation of the input padded as the mode says
(:func:`conv1dbench._plan.pad_for_mode`, :func:`conv1dbench._plan.resolve_padding`), so the
plan is the same for all of them:

1. pad the convolved axis with zeros (``dask.array.pad``, lazily);
2. give every chunk along that axis at least the kernel's reach, merging short chunks
   (``map_overlap`` needs the neighbour to hold the whole halo: a kernel longer than a chunk is a
   known pitfall);
3. ``map_overlap`` with a halo on the right only (the reach of the kernel, ``dilation*(K-1)``) and
   no trimming: each chunk computes exactly the outputs whose windows start inside it, with the
   in-memory function (``backend="auto"`` by default, so each chunk gets the backend that is
   fastest for its size).

Other axes keep their chunks (for ``conv1d`` the channel axis becomes one chunk: every output
reads all input channels of its group).  The result is lazy; ``.compute()`` runs it on whatever
scheduler is active, a ``dask.distributed`` cluster included.
"""

from __future__ import annotations

import numpy as np

from . import _layer, _signal
from ._kinds import is_dask_array
from ._plan import pad_for_mode, plan_signal


def _in_memory(value):
    """A small operand (the kernel, the weights, a bias) as a NumPy array, computing it if lazy."""
    if value is None:
        return None
    return np.asarray(value.compute() if is_dask_array(value) else value)


def _chunks_at_least(chunks: tuple, minimum: int, multiple: int = 1) -> tuple:
    """Chunk sizes of one axis, each at least ``minimum`` and (but the last) a multiple of ``multiple``.

    The user's chunks are kept where they already are; otherwise uniform chunks of the largest
    size (rounded up), a short tail joining the chunk before it.
    """
    if all(c >= minimum and c % multiple == 0 for c in chunks[:-1]) and chunks[-1] >= minimum:
        return tuple(chunks)
    total = sum(chunks)
    size = -(-max(max(chunks), minimum) // multiple) * multiple
    sizes = [size] * (total // size)
    rest = total - sum(sizes)
    if rest and rest < minimum and sizes:
        sizes[-1] += rest
    elif rest:
        sizes.append(rest)
    return tuple(sizes)


def _valid_blocks(padded, axis: int, reach: int, stride: int, compute_block, out_dtype, out_shape_of):
    """``compute_block`` on each chunk of ``padded`` plus ``reach`` samples of its right neighbour."""
    import dask.array as da  # optional dependency

    axis_chunks = _chunks_at_least(padded.chunks[axis], reach + 1, stride)
    if axis_chunks != padded.chunks[axis]:
        padded = padded.rechunk({axis: axis_chunks})
    out_axis = [c // stride for c in axis_chunks[:-1]]
    out_axis.append((axis_chunks[-1] - reach - 1) // stride + 1)
    chunks = list(out_shape_of(padded.chunks))
    chunks[axis] = tuple(out_axis)
    if reach == 0:
        return padded.map_blocks(compute_block, dtype=out_dtype, chunks=tuple(chunks))
    return da.map_overlap(compute_block, padded, depth={axis: (0, reach)}, boundary="none", trim=False,
                          dtype=out_dtype, chunks=tuple(chunks), allow_rechunk=False)


def signal(op: str, in1, in2, mode: str, axis: int, backend):
    """``convolve`` / ``correlate`` of a Dask ``in1`` with an in-memory (or small Dask) 1-D ``in2``."""
    import dask.array as da  # optional dependency

    x = in1 if is_dask_array(in1) else da.asarray(in1)
    w = _in_memory(in2)
    if w.ndim != 1 or w.size == 0:
        raise ValueError(f"with a Dask in1, in2 must be one non-empty 1-D kernel; got shape {w.shape}")
    plan = plan_signal(op, x.shape, w.shape, x.dtype, w.dtype, mode, axis)  # checks the rest
    axis, out_dtype = plan.axis, plan.result_dtype
    if plan.swap:  # the kernel is the longer one: the (short) signal fits in memory
        return da.from_array(_signal.run(op, x.compute(), w, mode, axis, backend))
    widths = [(0, 0)] * x.ndim
    widths[axis] = pad_for_mode(mode, w.shape[0])
    padded = da.pad(x, widths, mode="constant") if any(widths[axis]) else x

    def block(chunk):
        return _signal.run(op, chunk, w, "valid", axis, backend).astype(out_dtype, copy=False)

    return _valid_blocks(padded, axis, w.shape[0] - 1, 1, block, out_dtype, lambda chunks: chunks)


def layer(x, weight, bias, stride, padding, dilation, groups, backend):
    """``conv1d`` of a Dask ``x`` (B, C_in, L) or (C_in, L) with in-memory weights."""
    import dask.array as da  # optional dependency

    x = x if is_dask_array(x) else da.asarray(x)
    w = _in_memory(weight)
    plan = _layer.plan(x, w, stride, padding, dilation, groups)  # checks all
    p, dtype = plan.problem, plan.dtype
    w = np.ascontiguousarray(w, dtype=dtype)
    b = _in_memory(bias)
    if b is not None:
        _layer.checked_bias(b, p.c_out, dtype)
    x3 = (x[None] if plan.unbatched else x).rechunk({1: -1})  # every output reads all input channels of its group
    padded = da.pad(x3, [(0, 0), (0, 0), (p.pad_left, p.pad_right)], mode="constant") if p.pad_left or p.pad_right \
        else x3
    reach = p.dilation * (p.taps - 1)

    def block(chunk):
        return _layer.forward(chunk.astype(dtype, copy=False), w, b, p.stride, 0, p.dilation, p.groups, backend)

    def out_chunks(chunks):
        return (chunks[0], (p.c_out,), chunks[2])

    y = _valid_blocks(padded, 2, reach, p.stride, block, dtype, out_chunks)
    return y[0] if plan.unbatched else y
