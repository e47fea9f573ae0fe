"""The one core problem every backend solves, and the arithmetic shared by all of them.

The front ends (:mod:`conv1dbench._signal`, and later the layer API) reduce every public call to a
batched, grouped, padded, strided, dilated cross-correlation::

    y[b, o, l] = sum_{c, k} w[o, c, k] * xpad[b, g*Cg + c, l*stride + k*dilation]

with ``Cg = C_in // groups`` input channels per group, ``g = o // (C_out // groups)`` the group of
output channel ``o``, and ``xpad`` the input with ``pad_left`` zeros before and ``pad_right`` zeros
after it.  A true convolution is this with the kernel reversed; ``scipy.signal.correlate``'s
conjugation is done on the kernel before it gets here; per-slice kernels are ``groups == slices``.

Training needs the two products of the backward pass, for ``g = dL/dy``::

    grad_xpad[b, g*Cg + c, l*stride + k*dilation] += w[o, c, k] * g[b, o, l]     (backward_input)
    grad_w[o, c, k] = sum_{b, l} g[b, o, l] * xpad[b, g*Cg + c, l*stride + k*dilation]  (backward_weight)

The first is the transpose of the forward map (a "transposed convolution"); the second sums, over
every output position, the gradient of each copy of a weight that the forward pass used there.  Both
are plain (unconjugated) products; the layer API conjugates for complex input.

Integer and bool inputs are computed in int64.  Integer arithmetic wraps modulo 2**64 on every
backend, so the result cast to the requested integer dtype is exact wherever the exact result fits
that dtype (the same promise ``numpy.convolve`` keeps).
"""

from __future__ import annotations

import numpy as np

class NonFiniteInput(ValueError):
    """An operand holds NaN or Inf where the caller asked for finite input only (auto's FFT, SPEC section 1)."""


CORE_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128, np.int64))


def output_length(length: int, taps: int, pad_left: int, pad_right: int, stride: int = 1,
                  dilation: int = 1) -> int:
    """Output positions of the core cross-correlation (``L_out`` of SPEC section 2)."""
    return (length + pad_left + pad_right - dilation * (taps - 1) - 1) // stride + 1


def valid_range(length: int, offset: int, stride: int, start: int, stop: int) -> tuple[int, int]:
    """Output positions ``l`` in ``[start, stop)`` whose tap ``l*stride + offset`` lies inside ``[0, length)``.

    ``offset`` is ``k*dilation - pad_left`` for tap ``k``; positions outside the range read padding.
    The range returned always lies within ``[start, stop]`` (empty as ``lo == hi``).

    The ``numba`` backend compiles this function into its cached kernels; Numba's on-disk cache
    only watches the file of the kernel, so after editing this function delete the ``*.nbi`` and
    ``*.nbc`` files under ``conv1dbench/_backends/__pycache__`` (a fresh install does not need to).
    """
    lo = min(max(start, -(offset // stride)), stop)  # ceil(-offset / stride), clamped
    hi = max(min(stop, (length - 1 - offset) // stride + 1), lo)
    return lo, hi


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
