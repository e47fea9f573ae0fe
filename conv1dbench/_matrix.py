"""Convolutions as explicit matrices: the tied and zero weights made visible.

Every output of a convolution is a weighted sum of inputs, so the whole operation is a matrix
product ``y = M @ x``.  In ``M`` each kernel tap appears once per output row (tied weights: one
parameter, many copies, shifted along the diagonal), and every input outside an output's window is a
zero.  The gradient of a tied weight is therefore the sum of the gradients of its copies.
"""

from __future__ import annotations


import numpy as np

from ._core import output_length
from ._layer import _at_least_one, _layer_array, resolve_padding
from ._signal import _checked_array, _checked_mode, pad_for_mode


def _core_matrix(taps: np.ndarray, n: int, pad_left: int, pad_right: int, stride: int = 1,
                 dilation: int = 1) -> np.ndarray:
    """``M`` with ``M @ x == y`` for the single-channel core cross-correlation of ``x`` (length n)."""
    l_out = output_length(n, len(taps), pad_left, pad_right, stride, dilation)
    matrix = np.zeros((max(l_out, 0), n), dtype=taps.dtype)
    rows = np.arange(max(l_out, 0))
    for k, tap in enumerate(taps):
        cols = rows * stride + k * dilation - pad_left  # the input that tap k of output l reads
        inside = (cols >= 0) & (cols < n)
        matrix[rows[inside], cols[inside]] = tap
    return matrix


def conv_matrix(in2, n, mode="full", *, kind="convolve"):
    """The matrix ``M`` with ``M @ x == convolve(x, in2, mode)`` (or ``correlate``) for ``len(x) == n``.

    Parameters
    ----------
    in2 : array_like, 1-D
        The kernel.
    n : int
        The signal length.
    mode : {"full", "same", "valid"}
    kind : {"convolve", "correlate"}

    Returns
    -------
    numpy.ndarray, (output length, n)

    Examples
    --------
    >>> import conv1dbench as cb
    >>> M = cb.conv_matrix([5, 6, 7], 4, "valid")
    >>> M                      # the flipped kernel on each row, shifted: tied weights and zeros
    array([[7, 6, 5, 0],
           [0, 7, 6, 5]])
    >>> M @ [1, 2, 3, 4]
    array([34, 52])
    """
    h = _checked_array(in2, "in2")
    if h.ndim != 1:
        raise ValueError(f"in2 must be 1-D, got shape {h.shape}")
    n = _at_least_one(n, "n")
    mode = _checked_mode(mode)
    if kind not in ("convolve", "correlate"):
        raise ValueError(f"unknown kind {kind!r}; use 'convolve' or 'correlate'")
    taps = len(h)
    if mode == "valid" and taps > n:  # scipy swaps the operands: the kernel slides under the signal
        m = np.arange(taps - n + 1)[:, None]
        j = np.arange(n)[None, :]
        if kind == "convolve":
            return h[m + n - 1 - j]
        return np.conj(h[taps - n - m + j])
    taps_used = h[::-1] if kind == "convolve" else np.conj(h)
    return _core_matrix(np.ascontiguousarray(taps_used), n, *pad_for_mode(mode, taps))


def conv1d_matrix(weight, length, stride=1, padding=0, dilation=1, groups=1):
    """The matrix of a layer: ``M @ x.reshape(-1) == conv1d(x, weight, ...).reshape(-1)``.

    For ``x`` of shape ``(C_in, length)``; ``M`` has one row per (output channel, position) and one
    column per (input channel, position).  Block ``(o, c)`` is the single-channel matrix of filter
    ``weight[o, c]`` when input channel ``c`` is in output channel ``o``'s group, and zero otherwise.

    Examples
    --------
    >>> import numpy as np, conv1dbench as cb
    >>> w = np.array([[[1., 2.]], [[3., 4.]]])     # two output channels, one input channel, K = 2
    >>> cb.conv1d_matrix(w, 3)                      # rows: (o=0, l=0..1), (o=1, l=0..1)
    array([[1., 2., 0.],
           [0., 1., 2.],
           [3., 4., 0.],
           [0., 3., 4.]])
    """
    weight = _layer_array(weight, "weight")
    if weight.ndim != 3:
        raise ValueError(f"weight must be (C_out, C_in // groups, K); got shape {weight.shape}")
    length = _at_least_one(length, "length")
    stride = _at_least_one(stride, "stride")
    dilation = _at_least_one(dilation, "dilation")
    groups = _at_least_one(groups, "groups")
    c_out, c_per_group, taps = weight.shape
    if c_out % groups:
        raise ValueError(f"groups={groups} must divide C_out={c_out}")
    pad_left, pad_right = resolve_padding(padding, taps, stride, dilation)
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    if l_out < 1:
        raise ValueError(f"no output positions for length={length}, padding=({pad_left}, {pad_right}), "
                         f"dilated kernel {dilation * (taps - 1) + 1}")
    c_in = c_per_group * groups
    matrix = np.zeros((c_out, l_out, c_in, length), dtype=weight.dtype)
    out_per_group = c_out // groups
    for o in range(c_out):
        for c in range(c_per_group):
            channel = (o // out_per_group) * c_per_group + c
            matrix[o, :, channel, :] = _core_matrix(weight[o, c], length, pad_left, pad_right, stride, dilation)
    return matrix.reshape(c_out * l_out, c_in * length)
