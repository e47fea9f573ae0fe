"""Arithmetic shared by the backends (the problem they solve is :mod:`conv1dbench._backends`'s contract)."""

from __future__ import annotations

import numpy as np


def valid_range(length: int, offset: int, stride: int, start: int, stop: int) -> tuple[int, int]:
    """Output positions ``l`` in ``[start, stop)`` whose tap ``l*stride + offset`` lies inside ``[0, length)``.

    ``offset`` is ``k*dilation - pad_left`` for tap ``k``; positions outside the range read padding.
    The range returned always lies within ``[start, stop]`` (empty as ``lo == hi``).

    The ``numba`` backend compiles this function into its cached kernels, whose cache is stamped by
    this file too (:mod:`conv1dbench._jitcache`): an edit here recompiles them.
    """
    lo = min(max(start, -(offset // stride)), stop)  # ceil(-offset / stride), clamped
    hi = max(min(stop, (length - 1 - offset) // stride + 1), lo)
    return lo, hi


def result_array(out: np.ndarray | None, shape: tuple, dtype, zero: bool = False) -> np.ndarray:
    """The array a backend function writes its result into: the caller's ``out`` (see ``TAKES_OUT``
    in :mod:`conv1dbench._backends`; its shape and dtype are checked before) or a new one; zeroed if
    ``zero``."""
    if out is None:
        return np.zeros(shape, dtype) if zero else np.empty(shape, dtype)
    if zero:
        out.fill(0)
    return out


def spread(g: np.ndarray, stride: int) -> np.ndarray:
    """Output gradients ``(B, C_out, L_out)`` with ``stride - 1`` zeros between samples.

    Sample ``l`` lands at position ``l*stride``: where the forward pass read the window it came from.
    """
    if stride == 1:
        return g
    out = np.zeros(g.shape[:2] + ((g.shape[2] - 1) * stride + 1,), dtype=g.dtype)
    out[:, :, ::stride] = g
    return out


def transposed_as_correlation(g: np.ndarray, w: np.ndarray, length: int, pad_left: int, stride: int,
                              dilation: int, groups: int):
    """``backward_input`` restated as a forward problem: ``(g', w', pad_left', pad_right')``.

    ``grad_x[b, c, q]`` collects ``w[o, c, k] * g[b, o, l]`` for every ``q + pad_left == l*stride +
    k*dilation``.  Spreading ``g`` out with ``stride - 1`` zeros between samples and flipping each
    kernel turns that into a cross-correlation with dilation ``dilation`` and stride 1, whose kernels
    map output channels back to input channels.  The pads returned may be negative (a crop), which a
    backend that skips padding arithmetically, like ``numba``, handles as is.
    """
    c_out = g.shape[1]
    _, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    g = spread(g, stride)
    # (G, Og, Cg, K) -> (G, Cg, Og, K), flipped: group g maps its Og gradients to its Cg inputs
    w_t = w.reshape(groups, out_per_group, c_per_group, taps).transpose(0, 2, 1, 3)[..., ::-1]
    w_t = np.ascontiguousarray(w_t).reshape(groups * c_per_group, out_per_group, taps)
    span = dilation * (taps - 1)
    pad_left_t = span - pad_left
    pad_right_t = length - g.shape[2] - pad_left_t + span
    return g, w_t, pad_left_t, pad_right_t
