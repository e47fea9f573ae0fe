"""The signal API: ``convolve`` and ``correlate`` with scipy.signal's semantics, batched.

Everything scipy-specific is settled here, once, and every backend receives the same core problem
(:mod:`conv1dbench._core`):

* ``convolve`` is a cross-correlation with the kernel reversed; ``correlate`` conjugates the kernel.
* The three modes are three paddings of that cross-correlation with a ``K``-tap kernel: ``"full"``
  pads ``K-1`` zeros on both sides (``N+K-1`` outputs); ``"same"`` pads ``K//2`` before and
  ``(K-1)//2`` after (``N`` outputs, the centred slice of full starting at ``(K-1)//2``);
  ``"valid"`` pads nothing (``N-K+1`` outputs), after swapping the operands when the kernel is the
  longer one, as scipy does.
* Leading dimensions broadcast; the slices become the batch, channel or group dimension of the core
  problem, depending on which operand varies across them.
"""

from __future__ import annotations

import math
import operator
from dataclasses import dataclass

import numpy as np

from . import _dask
from ._dask import any_dask
from ._device import any_on_device, cuda_module
from ._registry import check_name, get_backend
from ._select import decide, run as run_checked

MODES = ("full", "same", "valid")
_MODE_SET = frozenset(MODES)
_INT64 = np.dtype(np.int64)
SUPPORTED_DTYPES = "bool, integer, float32, float64, complex64 and complex128"


# dtype.char of every accepted input: bool, the integers, float32/64, complex64/128
_ACCEPTED_CHARS = frozenset("?bBhHiIlLqQpPfdFD")


def _checked_array(value, name: str) -> np.ndarray:
    array = value if type(value) is np.ndarray else np.asarray(value)
    if array.dtype.char not in _ACCEPTED_CHARS:
        raise TypeError(f"{name} has unsupported dtype {array.dtype}; supported dtypes are {SUPPORTED_DTYPES}")
    if array.ndim == 0:
        raise ValueError(f"{name} is 0-d; it needs at least one dimension")
    if array.size == 0:
        raise ValueError(f"{name} is empty (shape {array.shape})")
    return array


def _checked_mode(mode) -> str:
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {', '.join(map(repr, MODES))}; got {mode!r}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known modes are {', '.join(map(repr, MODES))}")
    return mode


def _checked_axis(axis, ndim: int) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for in1 with {ndim} dimension(s)")
    return axis % ndim


def pad_for_mode(mode: str, taps: int) -> tuple[int, int]:
    """Zeros before and after the signal that turn a ``taps``-tap cross-correlation into ``mode``."""
    if mode == "full":
        return taps - 1, taps - 1
    if mode == "same":
        return taps // 2, (taps - 1) // 2
    return 0, 0


@dataclass(slots=True)
class SignalProblem:
    """A public ``convolve``/``correlate`` call turned into the core problem, and how to undo it."""

    x: np.ndarray          # (B, C_in, N) core input
    w: np.ndarray          # (C_out, 1, K) core kernel
    pad_left: int
    pad_right: int
    groups: int
    shortest: int          # the shorter operand's length: what the auto rule looks at
    lead: tuple            # broadcast leading shape of the result
    axis: int
    reverse: bool          # flip the output (valid-mode correlate with swapped operands)
    result_dtype: np.dtype


def prepare(op: str, in1, in2, mode, axis) -> SignalProblem:
    """Validate a signal call and express it as the core problem.

    Steps that do nothing for the common case (1-D operands, last axis) are skipped: for short
    signals this function is most of the cost of a call.
    """
    if type(mode) is not str or mode not in _MODE_SET:
        _checked_mode(mode)  # raises the error that names the problem
    in1 = _checked_array(in1, "in1")
    in2 = _checked_array(in2, "in2")
    ndim = in1.ndim
    axis = ndim - 1 if axis == -1 and type(axis) is int else _checked_axis(axis, ndim)
    if in2.ndim > ndim:
        raise ValueError(f"in2 has {in2.ndim} dimensions, more than in1's {ndim}")
    last = axis == ndim - 1
    x = in1 if last else np.moveaxis(in1, axis, -1)
    w = in2 if last or in2.ndim < ndim else np.moveaxis(in2, axis, -1)
    if ndim == 1:
        lead = ()
    else:
        try:
            lead = np.broadcast_shapes(x.shape[:-1], w.shape[:-1])
        except ValueError:
            raise ValueError(f"the leading shapes of in1 {x.shape[:-1]} and in2 {w.shape[:-1]} (the "
                             f"axis moved last) do not broadcast") from None

    result_dtype = in1.dtype if in1.dtype == in2.dtype else np.result_type(in1.dtype, in2.dtype)
    if not result_dtype.isnative:
        result_dtype = result_dtype.newbyteorder("=")
    core_dtype = _INT64 if result_dtype.kind in "biu" else result_dtype

    swap = mode == "valid" and w.shape[-1] > x.shape[-1]
    if op == "convolve":  # commutative, so a swap just exchanges the roles
        signal, kernel = (w, x) if swap else (x, w)
        kernel = kernel[..., ::-1]
    elif swap:  # correlate(in1, in2) = reversed correlate(conj(in2), conj(conj(in1)))
        signal, kernel = (np.conj(w) if w.dtype.kind == "c" else w), x
    else:
        signal, kernel = x, (np.conj(w) if w.dtype.kind == "c" else w)

    n, taps = signal.shape[-1], kernel.shape[-1]
    if ndim == 1:
        core_x, core_w, groups = signal[None, None], kernel[None, None], 1
    else:
        slices = math.prod(lead)
        if math.prod(kernel.shape[:-1]) == 1:    # one kernel: the slices are the batch
            core_x = _broadcast(signal, lead).reshape(slices, 1, n)
            core_w, groups = kernel.reshape(1, 1, taps), 1
        elif math.prod(signal.shape[:-1]) == 1:  # one signal: the slices are output channels
            core_x = signal.reshape(1, 1, n)
            core_w, groups = _broadcast(kernel, lead).reshape(slices, 1, taps), 1
        else:                                    # both vary: a depthwise (grouped) problem
            core_x = _broadcast(signal, lead).reshape(1, slices, n)
            core_w = _broadcast(kernel, lead).reshape(slices, 1, taps)
            groups = slices
    pad_left, pad_right = pad_for_mode(mode, taps)
    return SignalProblem(
        np.ascontiguousarray(core_x, dtype=core_dtype), np.ascontiguousarray(core_w, dtype=core_dtype),
        pad_left, pad_right, groups, min(n, taps), lead, axis, swap and op == "correlate", result_dtype)


def _broadcast(a: np.ndarray, lead: tuple) -> np.ndarray:
    return a if a.shape[:-1] == lead else np.broadcast_to(a, lead + a.shape[-1:])


def backend_for(problem: SignalProblem, backend, finite=None) -> tuple[str, str, dict]:
    """The backend to run, why (``"requested"`` unless auto chose it), and auto's numbers.

    ``finite``: what is known of the operands' finiteness (:func:`conv1dbench._select.decide`)."""
    if backend != "auto":
        return check_name(backend), "requested", {}
    p = problem
    l_out = p.x.shape[2] + p.pad_left + p.pad_right - p.w.shape[2] + 1
    return decide(p.x, p.w, p.shortest, p.groups, l_out=l_out, pads=(p.pad_left, p.pad_right), finite=finite)


def run(problem: SignalProblem, backend) -> np.ndarray:
    p = problem

    def forward(name, **finite):
        return get_backend(name, p.x.dtype).forward(p.x, p.w, p.pad_left, p.pad_right, 1, 1, p.groups, **finite)

    y = run_checked(lambda finite: backend_for(p, backend, finite)[0], forward, backend == "auto")
    y = y.reshape(p.lead + y.shape[-1:])
    if p.reverse:
        y = y[..., ::-1]
    if p.result_dtype.kind == "b":
        y = y != 0
    elif p.result_dtype != y.dtype:
        y = y.astype(p.result_dtype)  # integers: wraps exactly as the result dtype would
    if p.axis != y.ndim - 1:
        y = np.moveaxis(y, -1, p.axis)
    return np.ascontiguousarray(y)


_DOC_COMMON = """
    Parameters
    ----------
    in1 : array_like, CUDA device array, or dask.array.Array
        The signal; any number of dimensions, the signal running along `axis`.  A CUDA device
        array runs on ``cuda`` and gives a device array; a Dask array (with a 1-D `in2`) is
        convolved chunk by chunk and gives a Dask array (see the README).
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

    Returns
    -------
    numpy.ndarray
        Same dtype as scipy.signal.{name} gives: ``numpy.result_type(in1, in2)`` in native byte
        order; integer and bool inputs give exact integer (bool) results.

    Raises
    ------
    ValueError
        Empty or 0-d input, unknown mode, `axis` out of range, leading shapes that do not broadcast,
        an `in2` with more dimensions than `in1`, unknown backend.
    TypeError
        Unsupported dtype (float16, longdouble, object, strings, datetimes), or a dtype the chosen
        backend does not take; a non-string mode.
    conv1dbench.BackendUnavailable
        The named backend cannot run on this machine.
"""


def run_on_device(op: str, in1, in2, mode, axis, backend):
    """A call with CUDA device arrays: checked like the host path, run by ``cuda``, kept on the device.

    The signals must lie along the last axis, and ``in2`` must be one kernel or one per slice of
    ``in1`` (its leading shape, or the other way round); real float32/float64 only.
    """
    _checked_mode(mode)
    module, (x, w) = cuda_module(backend, ("in1", in1), ("in2", in2))
    if x.ndim == 0 or w.ndim == 0:
        raise ValueError(f"{'in1' if x.ndim == 0 else 'in2'} is 0-d; it needs at least one dimension")
    axis = _checked_axis(axis, x.ndim)
    if axis != x.ndim - 1:
        raise ValueError(f"device arrays are convolved along their last axis; got axis={axis} for "
                         f"in1 with {x.ndim} dimensions")
    if w.ndim > x.ndim:
        raise ValueError(f"in2 has {w.ndim} dimensions, more than in1's {x.ndim}")
    x_shape, w_shape = tuple(x.shape), tuple(w.shape)  # (the simulator's shapes take no negative index)
    swap = mode == "valid" and w_shape[-1] > x_shape[-1]
    (signal, s_shape), (kernel, k_shape) = ((w, w_shape), (x, x_shape)) if swap else ((x, x_shape), (w, w_shape))
    n, taps = s_shape[-1], k_shape[-1]
    try:
        lead = np.broadcast_shapes(x_shape[:-1], w_shape[:-1])
    except ValueError:
        raise ValueError(f"the leading shapes of in1 {x_shape[:-1]} and in2 {w_shape[:-1]} do not "
                         f"broadcast") from None
    rows_s, rows_k = math.prod(s_shape[:-1]), math.prod(k_shape[:-1])
    if rows_k == 1:      # one kernel: the slices are the batch
        core_x, core_w, groups = signal.reshape(rows_s, 1, n), kernel.reshape(1, 1, taps), 1
    elif rows_s == 1:    # one signal: the kernels are output channels
        core_x, core_w, groups = signal.reshape(1, 1, n), kernel.reshape(rows_k, 1, taps), 1
    elif s_shape[:-1] == lead and _without_leading_ones(k_shape[:-1]) == lead[len(lead) - _kernel_dims(k_shape):]:
        # one kernel per slice of the last leading dimensions: a depthwise problem, batched
        core_x = signal.reshape(rows_s // rows_k, rows_k, n)
        core_w, groups = kernel.reshape(rows_k, 1, taps), rows_k
    else:
        raise ValueError(f"on the device, in2's kernels must broadcast over in1's slices without "
                         f"repeating in1: leading shapes {x_shape[:-1]} and {w_shape[:-1]}")
    if op == "convolve":
        core_w = core_w[:, :, ::-1]
    pad_left, pad_right = pad_for_mode(mode, taps)
    y = module.forward(core_x, core_w, pad_left, pad_right, 1, 1, groups)
    y = y.reshape(lead + (y.shape[2],))
    return y[..., ::-1] if swap and op == "correlate" else y


def _without_leading_ones(shape: tuple) -> tuple:
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


def _kernel_dims(k_shape: tuple) -> int:
    return len(_without_leading_ones(k_shape[:-1]))


def convolve(in1, in2, mode="full", *, axis=-1, backend="auto"):
    if any_dask(in1, in2):
        return _dask.signal("convolve", in1, in2, mode, axis, backend)
    if any_on_device(in1, in2):
        return run_on_device("convolve", in1, in2, mode, axis, backend)
    return run(prepare("convolve", in1, in2, mode, axis), backend)


def correlate(in1, in2, mode="full", *, axis=-1, backend="auto"):
    if any_dask(in1, in2):
        return _dask.signal("correlate", in1, in2, mode, axis, backend)
    if any_on_device(in1, in2):
        return run_on_device("correlate", in1, in2, mode, axis, backend)
    return run(prepare("correlate", in1, in2, mode, axis), backend)


convolve.__doc__ = """Convolve `in1` with `in2` along one axis, as ``scipy.signal.convolve`` does.

    ``out[n] = sum_k in1[n - k] * in2[k]``: the kernel slides over the signal *flipped*.
""" + _DOC_COMMON.format(name="convolve") + """
    Notes
    -----
    A convolution is the cross-correlation with the kernel reversed; every backend computes the
    latter, so the two functions share all code.

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

correlate.__doc__ = """Cross-correlate `in1` with `in2` along one axis, as ``scipy.signal.correlate`` does.

    ``out[n] = sum_k in1[n + k] * conj(in2[k])`` (shifted by the mode's padding): the kernel slides
    over the signal *unflipped*, and is conjugated for complex input.
""" + _DOC_COMMON.format(name="correlate") + """
    Notes
    -----
    This is what deep-learning libraries call convolution.  In ``"valid"`` mode with `in2` longer
    than `in1`, scipy swaps the operands; the result is then the reversed (and, for complex input,
    conjugated) lags, which this function reproduces.

    Examples
    --------
    >>> import conv1dbench as cb
    >>> cb.correlate([1, 2, 3, 4], [5, 6, 7], mode="valid")
    array([38, 56])
"""
