"""The public functions: one dispatch on the kind of array, then the executor for it.

:func:`conv1dbench._kinds.array_kind` decides, once per call, where it runs: host arrays go to
:mod:`conv1dbench._signal` / :mod:`conv1dbench._layer`, CUDA device arrays to
:mod:`conv1dbench._device`, Dask arrays to :mod:`conv1dbench._dask`.  Every executor plans through
:mod:`conv1dbench._plan`, so the semantics are the same whatever the arrays.
"""

from __future__ import annotations

import warnings

import numpy as np

from . import _dask, _device, _layer, _signal
from ._kinds import DASK, DEVICE, HOST, array_kind

_SIGNAL = {DEVICE: _device.signal, DASK: _dask.signal}
_LAYER = {DEVICE: _device.layer_forward, DASK: _dask.layer}
_LAYER_BACKWARD = {DEVICE: _device.layer_backward}


def _kind(out, *operands) -> str:
    """Where a call runs (:func:`conv1dbench._kinds.array_kind`); ``out=`` is for host results only."""
    kind = array_kind(*operands)
    if out is not None and kind != HOST:
        raise TypeError(f"out= takes NumPy results only; with {kind} operands the result is a new {kind} array "
                        f"(leave out= unset)")
    return kind


def convolve(in1, in2, mode="full", *, axis=-1, backend="auto", out=None):
    if type(in1) is np.ndarray and type(in2) is np.ndarray:  # host data for sure: the commonest call, at once
        return _signal.run_arrays("convolve", in1, in2, mode, axis, backend, out)
    kind = _kind(out, in1, in2)
    if kind == HOST:
        return _signal.run("convolve", in1, in2, mode, axis, backend, out)
    return _SIGNAL[kind]("convolve", in1, in2, mode, axis, backend)


def correlate(in1, in2, mode="full", *, axis=-1, backend="auto", out=None):
    if type(in1) is np.ndarray and type(in2) is np.ndarray:  # host data for sure (see convolve)
        return _signal.run_arrays("correlate", in1, in2, mode, axis, backend, out)
    kind = _kind(out, in1, in2)
    if kind == HOST:
        return _signal.run("correlate", in1, in2, mode, axis, backend, out)
    return _SIGNAL[kind]("correlate", in1, in2, mode, axis, backend)


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend="auto", out=None):
    """A 1-D convolutional layer, as ``torch.nn.functional.conv1d`` computes it.

    ``y[b, o, l] = bias[o] + sum_{c, k} weight[o, c, k] * xpad[b, g*Cg + c, l*stride + k*dilation]``
    where ``g`` is output channel ``o``'s group and ``Cg = C_in // groups``: a cross-correlation
    (the kernel is not flipped).

    Parameters
    ----------
    x : array_like, (B, C_in, L) or (C_in, L)
        Also a CUDA device array (runs on ``cuda``, returns a device array) or a Dask array
        (chunked along B and L, returns a Dask array computed chunk by chunk).
    weight : array_like, (C_out, C_in // groups, K)
    bias : array_like, (C_out,), optional
        Cast to the layer's dtype; a bias of another kind (complex on a real layer) is a ``TypeError``,
        as torch raises, rather than a result with its imaginary part dropped.
    stride, dilation : int or (int,)
        As torch takes them: an int, or a 1-tuple.
    groups : int
    padding : int, (int,), (int, int), or {"valid", "same", "full"}
        Zeros added on both sides (an int or a 1-tuple, as torch), or ``(left, right)`` (ours).
        ``"same"`` (stride 1 only) pads ``dilation*(K-1)`` in total, the extra zero on the right, as
        torch does.
    backend : str
        ``"auto"`` or a name from :func:`conv1dbench.backends`.
    out : numpy.ndarray, optional
        A C-contiguous, writeable array of exactly the result's shape and dtype, sharing no memory
        with an input: the result is written into it and it is returned.

    Returns
    -------
    numpy.ndarray
        ``(B, C_out, L_out)`` (``(C_out, L_out)`` for a 2-D `x`), with
        ``L_out = (L + pad_left + pad_right - dilation*(K-1) - 1) // stride + 1``, of dtype
        ``numpy.result_type(x, weight)`` (the bias is cast to it).

    Raises
    ------
    ValueError
        Channel counts that do not match, `groups` not dividing the channels, ``L_out < 1``,
        stride or dilation below 1, ``"same"`` with stride > 1, an unknown padding string, an `x`
        that is not 2-D or 3-D, a wrong `bias` shape.
    TypeError
        A dtype other than float32, float64, complex64, complex128; a bias that the layer's dtype
        cannot hold (complex on a real layer); a stride, padding or dilation that is not an int
        (or a tuple of ints).

    Examples
    --------
    >>> import numpy as np, conv1dbench as cb
    >>> x = np.array([[1., 2., 3., 4.]])                 # one channel, L = 4
    >>> w = np.array([[[5., 6., 7.]]])                   # one filter over it, K = 3
    >>> cb.conv1d(x, w)                                  # 1*5 + 2*6 + 3*7, 2*5 + 3*6 + 4*7
    array([[38., 56.]])
    >>> cb.conv1d(x, w, bias=[1.0], padding="same")
    array([[21., 39., 57., 40.]])
    """
    kind = _kind(out, x, weight, bias)
    if kind == HOST:
        return _layer.forward(x, weight, bias, stride, padding, dilation, groups, backend, out)
    return _LAYER[kind](x, weight, bias, stride, padding, dilation, groups, backend)


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *, has_bias=True,
                    backend="auto", out=None, bias=None):
    """The gradients of :func:`conv1d` with respect to `x`, `weight` and the bias.

    For a loss ``L`` with ``grad_output = dL/dy``::

        grad_x[b, g*Cg + c, l*stride + k*dilation - pad_left] += weight[o, c, k] * grad_output[b, o, l]
        grad_weight[o, c, k] = sum_{b, l} grad_output[b, o, l] * xpad[b, g*Cg + c, l*stride + k*dilation]
        grad_bias[o] = sum_{b, l} grad_output[b, o, l]

    Each weight is used at every output position, so its gradient is the sum of the gradients of all
    those uses; ``grad_x`` is the transpose of the layer's matrix (:func:`conv1d_matrix`) applied to
    ``grad_output``.  For complex input the conjugates of `weight` and `x` are used, as torch's
    autograd does.

    Parameters
    ----------
    grad_output : array_like, (B, C_out, L_out) or (C_out, L_out)
    x, weight, stride, padding, dilation, groups
        As given to :func:`conv1d`.
    has_bias : bool
        Whether the layer has a bias, i.e. whether to return its gradient.
    bias : bool, optional
        The former name of `has_bias`, kept for one release: it warns with a ``DeprecationWarning``.
    backend : str
        ``"auto"`` or a name from :func:`conv1dbench.backends`.
    out : tuple, optional
        ``(grad_x, grad_weight, grad_bias)`` arrays to write the results into, each as `out` of
        :func:`conv1d` requires; ``None`` for one to allocate (and for ``grad_bias`` when
        ``has_bias=False``).

    Returns
    -------
    (grad_x, grad_weight, grad_bias or None)
        Shaped like `x`, `weight` and the bias, of dtype ``numpy.result_type(x, weight)``.

    Examples
    --------
    >>> import numpy as np, conv1dbench as cb
    >>> x = np.array([[1., 2., 3., 4.]]); w = np.array([[[5., 6., 7.]]])
    >>> gx, gw, gb = cb.conv1d_backward(np.ones((1, 2)), x, w)
    >>> gx          # each input summed over the weights it met
    array([[ 5., 11., 13.,  7.]])
    >>> gw          # each weight summed over the inputs it met: x[0]+x[1], x[1]+x[2], x[2]+x[3]
    array([[[3., 5., 7.]]])
    >>> gb
    array([2.])
    """
    if bias is not None:
        warnings.warn("conv1d_backward(bias=...) is now has_bias=...; bias= will be removed in the next release",
                      DeprecationWarning, stacklevel=2)
        has_bias = bias
    if not isinstance(has_bias, (bool, np.bool_)):
        raise TypeError(f"has_bias must be True or False (whether the layer has a bias), got {has_bias!r}")
    kind = _kind(out, grad_output, x, weight)
    if kind == HOST:
        return _layer.backward(grad_output, x, weight, stride, padding, dilation, groups, has_bias, backend, out)
    if kind not in _LAYER_BACKWARD:
        raise TypeError("conv1d_backward takes NumPy or CUDA device arrays, not Dask arrays")
    return _LAYER_BACKWARD[kind](grad_output, x, weight, stride, padding, dilation, groups, has_bias, backend)


_DOC_COMMON = """
    Parameters
    ----------
    in1 : array_like, CUDA device array, or dask.array.Array
        The signal; any number of dimensions, the signal running along `axis`: N-d operands are
        batches of 1-D signals, never an N-d {name} (``scipy.signal.{name}`` of N-d operands works in N
        dimensions; see the Notes).  A CUDA device array runs on ``cuda`` and gives a device array; a
        Dask array (with a 1-D `in2`) is computed chunk by chunk and gives a Dask array (see the user
        guide).
    in2 : array_like
        The kernel: 1-D (one kernel for every slice), or with kernels along `axis` and the other
        dimensions broadcast against `in1`'s.
    mode : {{"full", "valid", "same"}}
        ``"full"``: every overlap, ``N + K - 1`` values.  ``"valid"``: only complete overlaps,
        ``max(N, K) - min(N, K) + 1`` values (the operands are swapped when `in2` is longer, as in
        scipy).  ``"same"``: ``N`` values, the slice of full starting at ``(K - 1) // 2``.
    axis : int
        The axis of `in1` (and of an `in2` with as many dimensions) that holds the signals.
    backend : str
        ``"auto"`` (default) or one of :func:`conv1dbench.backends`.
    out : numpy.ndarray, optional
        A C-contiguous, writeable array of exactly the result's shape and dtype, sharing no memory
        with an input: the result is written into it and it is returned.  NumPy operands only.

    Returns
    -------
    numpy.ndarray
        Same dtype as scipy.signal.{name} gives: ``numpy.result_type(in1, in2)`` in native byte
        order; integer and bool inputs give exact integer (bool) results; float16 is computed in
        float32 and returned as float16.  Two 0-d operands give their product (``in1 * in2``, for
        ``correlate`` with `in2` conjugated), a NumPy scalar, as scipy does.

    Raises
    ------
    ValueError
        Empty input, one 0-d operand with an n-d other, unknown mode, `axis` out of range, leading
        shapes that do not broadcast, an `in2` with more dimensions than `in1`, unknown backend.
    TypeError
        Unsupported dtype (longdouble, object, strings, datetimes), or a dtype the chosen backend
        does not take; a non-string mode.
    conv1dbench.BackendUnavailable
        The named backend cannot run on this machine.
"""


convolve.__doc__ = """Convolve `in1` with `in2` along one axis: ``scipy.signal.convolve`` for 1-D operands.

    ``out[n] = sum_k in1[n - k] * in2[k]``: the kernel slides over the signal *flipped*.
""" + _DOC_COMMON.format(name="convolve") + """
    Notes
    -----
    A convolution is the cross-correlation with the kernel reversed; every backend computes the
    latter, so the two functions share all code.  For N-d operands of equal rank the result equals
    ``scipy.signal.fftconvolve(in1, in2, mode, axes=axis)`` (up to rounding), and a 1-D `in2` is the
    kernel of every slice; it is not ``scipy.signal.convolve(in1, in2)``, a convolution in N dimensions.

    Examples
    --------
    >>> import conv1dbench as cb
    >>> cb.convolve([1, 2, 3, 4], [5, 6, 7])
    array([ 5, 16, 34, 52, 45, 28])
    >>> cb.convolve([1, 2, 3, 4], [5, 6, 7], mode="same")
    array([16, 34, 52, 45])
    >>> cb.convolve([1., 2., 3., 4.], [5., 6., 7.], mode="valid", backend="numba")
    array([34., 52.])
"""

correlate.__doc__ = """Cross-correlate `in1` with `in2` along one axis: ``scipy.signal.correlate`` for 1-D operands.

    ``out[n] = sum_k in1[n + k] * conj(in2[k])`` (shifted by the mode's padding): the kernel slides
    over the signal *unflipped*, and is conjugated for complex input.
""" + _DOC_COMMON.format(name="correlate") + """
    Notes
    -----
    This is what deep-learning libraries call convolution.  In ``"valid"`` mode with `in2` longer
    than `in1`, scipy swaps the operands; the result is then the reversed (and, for complex input,
    conjugated) lags, which this function reproduces.  For N-d operands each slice along `axis` is
    correlated in 1-D (``scipy.signal.correlate`` of N-d operands correlates in N dimensions).

    Examples
    --------
    >>> import conv1dbench as cb
    >>> cb.correlate([1, 2, 3, 4], [5, 6, 7], mode="valid")
    array([38, 56])
"""
