"""Convolutions as explicit matrices: the tied and zero weights made visible.

Every output of a convolution is a weighted sum of inputs, so the whole operation is a matrix
product ``y = M @ x``.  In ``M`` each kernel tap appears once per output row (tied weights: one
parameter, many copies, shifted along the diagonal), and every input outside an output's window is a
zero.  The gradient of a tied weight is therefore the sum of the gradients of its copies.
"""

from __future__ import annotations

import numpy as np

from ._plan import at_least_one, check_layer_dtype, output_length, plan_layer, plan_signal


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
    h = np.asarray(in2)
    if h.ndim != 1:
        raise ValueError(f"in2 must be 1-D, got shape {h.shape}")
    n = at_least_one(n, "n")
    if kind not in ("convolve", "correlate"):
        raise ValueError(f"unknown kind {kind!r}; use 'convolve' or 'correlate'")
    plan = plan_signal(kind, (n,), h.shape, np.dtype(np.float64), h.dtype, mode)
    p = plan.problem
    h = np.conj(h) if plan.conjugate_in2 else h
    if not plan.swap:  # the signal is x: each row holds the (flipped) kernel, shifted
        return _core_matrix(np.ascontiguousarray(h[::-1] if plan.flip else h), n, p.pad_left, p.pad_right)
    # in2 is the core signal and x the kernel: row l holds the window of in2 that x's taps meet
    rows = np.arange(p.l_out)[:, None]
    taps = np.arange(n)[None, :]                     # tap k of the core kernel is x[n - 1 - k] if flipped
    matrix = h[rows + (n - 1 - taps if plan.flip else taps)]
    return matrix[::-1] if plan.reverse else matrix


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
    weight = np.asarray(weight)
    check_layer_dtype(weight.dtype, "weight")
    if weight.ndim != 3:
        raise ValueError(f"weight must be (C_out, C_in // groups, K); got shape {weight.shape}")
    length = at_least_one(length, "length")
    c_out, c_per_group, taps = weight.shape
    layer = plan_layer((c_per_group * at_least_one(groups, "groups"), length), weight.shape, weight.dtype, stride,
                       padding, dilation, groups)
    p = layer.problem
    stride, dilation, pad_left, pad_right, l_out = p.stride, p.dilation, p.pad_left, p.pad_right, p.l_out
    c_in = c_per_group * groups
    matrix = np.zeros((c_out, l_out, c_in, length), dtype=weight.dtype)
    out_per_group = c_out // groups
    for o in range(c_out):
        for c in range(c_per_group):
            channel = (o // out_per_group) * c_per_group + c
            matrix[o, :, channel, :] = _core_matrix(weight[o, c], length, pad_left, pad_right, stride, dilation)
    return matrix.reshape(c_out * l_out, c_in * length)
