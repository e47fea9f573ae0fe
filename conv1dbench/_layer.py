"""The layer API: ``conv1d`` and ``conv1d_backward`` with torch.nn.functional.conv1d's semantics.

A 1-D convolutional layer is the core problem of :mod:`conv1dbench._core` as it is: every output
channel has its own filter over the input channels of its group, and the filters slide (as a
cross-correlation, unflipped) with a stride, a dilation and zero padding.  This module only checks
arguments, settles the padding, and adds the bias; the backends do the arithmetic, forward and
backward, with the same functions that serve ``convolve`` and ``correlate``.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from types import ModuleType

import numpy as np

from ._core import output_length
from ._dask import is_dask_array
from ._device import DEVICE_RULE, any_on_device, cuda_module, is_device_array
from ._registry import check_name, get_backend
from ._select import decide, run as run_checked

LAYER_DTYPES = "float32, float64, complex64 and complex128"
PADDING_STRINGS = ("valid", "same", "full")


def _layer_array(value, name: str) -> np.ndarray:
    array = value if type(value) is np.ndarray else np.asarray(value)
    dtype = array.dtype
    if not ((dtype.kind == "f" and dtype.itemsize in (4, 8)) or (dtype.kind == "c" and dtype.itemsize in (8, 16))):
        raise TypeError(f"{name} has unsupported dtype {dtype}; layers take {LAYER_DTYPES}")
    return array


def _at_least_one(value, name: str) -> int:
    number = operator.index(value)
    if number < 1:
        raise ValueError(f"{name} must be at least 1, got {number}")
    return number


def resolve_padding(padding, taps: int, stride: int, dilation: int) -> tuple[int, int]:
    """Zeros ``(left, right)`` for a padding argument: an int, a pair, or a padding string.

    ``"same"`` pads ``dilation*(K-1)`` in total, ``total // 2`` on the left (as torch does), and needs
    stride 1; ``"full"`` pads ``dilation*(K-1)`` on both sides; ``"valid"`` pads nothing.
    """
    span = dilation * (taps - 1)
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "full":
            return span, span
        if padding == "same":
            if stride != 1:
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            return span // 2, span - span // 2
        raise ValueError(f"unknown padding {padding!r}; use an int, a (left, right) pair, or one of "
                         f"{', '.join(map(repr, PADDING_STRINGS))}")
    if isinstance(padding, (tuple, list)):
        if len(padding) != 2:
            raise ValueError(f"padding pair must be (left, right), got {padding!r}")
        left, right = (operator.index(p) for p in padding)
    else:
        left = right = operator.index(padding)
    if left < 0 or right < 0:
        raise ValueError(f"padding must not be negative, got ({left}, {right})")
    return left, right


@dataclass(slots=True)
class LayerProblem:
    """A checked layer call: core arrays and geometry."""

    x: np.ndarray       # (B, C_in, L), core dtype, C-contiguous
    w: np.ndarray       # (C_out, C_in // groups, K)
    pad_left: int
    pad_right: int
    stride: int
    dilation: int
    groups: int
    l_out: int
    unbatched: bool     # x was (C_in, L): results lose the batch dimension, as in torch
    dtype: np.dtype
    device: ModuleType | None = None  # the cuda backend when the arrays are CUDA device arrays


def prepare(x, weight, stride, padding, dilation, groups, backend="auto") -> LayerProblem:
    """Check a layer call's arguments (SPEC section 2) and express it as the core problem.

    Device arrays stay device arrays (``x`` and ``weight`` then share a float dtype), and the
    problem remembers the ``cuda`` backend that must run it.
    """
    device, lazy = None, is_dask_array(x)
    if any_on_device(x, weight):
        device, (x, weight) = cuda_module(backend, ("x", x), ("weight", weight))
    else:
        x = x if lazy else _layer_array(x, "x")
        _layer_array(np.empty(0, x.dtype), "x")
        weight = _layer_array(weight, "weight")
    if x.ndim not in (2, 3):
        raise ValueError(f"x must be (B, C_in, L) or (C_in, L); got {x.ndim} dimensions, shape {x.shape}")
    if weight.ndim != 3:
        raise ValueError(f"weight must be (C_out, C_in // groups, K); got shape {weight.shape}")
    stride = _at_least_one(stride, "stride")
    dilation = _at_least_one(dilation, "dilation")
    groups = _at_least_one(groups, "groups")
    unbatched = x.ndim == 2
    x3 = x.reshape((1,) + x.shape) if unbatched else x
    batch, c_in, length = x3.shape
    c_out, c_per_group, taps = weight.shape
    if min(batch, c_in, length, c_out, c_per_group, taps) == 0:
        raise ValueError(f"empty input: x has shape {x.shape}, weight has shape {weight.shape}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide both C_in={c_in} and C_out={c_out}")
    if c_per_group * groups != c_in:
        raise ValueError(f"weight has {c_per_group} input channels per group, but x has C_in={c_in} "
                         f"and groups={groups}, which needs {c_in // groups}")
    pad_left, pad_right = resolve_padding(padding, taps, stride, dilation)
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    if l_out < 1:
        raise ValueError(f"no output positions: L={length} padded by ({pad_left}, {pad_right}) is shorter "
                         f"than the dilated kernel dilation*(K-1)+1={dilation * (taps - 1) + 1}")
    if device is not None:
        return LayerProblem(x3, weight, pad_left, pad_right, stride, dilation, groups, l_out, unbatched,
                            np.dtype(x.dtype), device)
    dtype = np.result_type(x.dtype, weight.dtype).newbyteorder("=")
    if lazy:  # a Dask array: checked here, computed chunk by chunk (conv1dbench._dask)
        return LayerProblem(x3, np.ascontiguousarray(weight, dtype=dtype), pad_left, pad_right, stride, dilation,
                            groups, l_out, unbatched, dtype)
    return LayerProblem(np.ascontiguousarray(x3, dtype=dtype), np.ascontiguousarray(weight, dtype=dtype),
                        pad_left, pad_right, stride, dilation, groups, l_out, unbatched, dtype)


def backend_for(p: LayerProblem, backend, direction: str = "forward", finite=None, also=()) -> tuple[str, str, dict]:
    """The backend to run, why, and auto's numbers (as :func:`conv1dbench._signal.backend_for`);
    ``also``: the operands beyond ``x`` and ``weight`` (the backward pass's ``grad_output``)."""
    if p.device is not None:
        return "cuda", DEVICE_RULE, {}
    if backend != "auto":
        return check_name(backend), "requested", {}
    return decide(p.x, p.w, min(p.x.shape[2], p.w.shape[2]), p.groups, direction, l_out=p.l_out,
                  stride=p.stride, dilation=p.dilation, pads=(p.pad_left, p.pad_right), finite=finite, also=also)


def _checked_bias(bias, c_out: int):
    if is_device_array(bias):
        if tuple(bias.shape) != (c_out,):
            raise ValueError(f"bias must have shape (C_out,) = ({c_out},), got {tuple(bias.shape)}")
        return bias
    bias = np.asarray(bias)
    if bias.dtype.kind not in "biu":  # integers (e.g. a list of ints) are fine for a bias
        bias = _layer_array(bias, "bias")
    if bias.shape != (c_out,):
        raise ValueError(f"bias must have shape (C_out,) = ({c_out},), got {bias.shape}")
    return bias


def conv1d(x, weight, bias=None, stride=1, padding=0, dilation=1, groups=1, *, backend="auto"):
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
    stride, dilation, groups : int
    padding : int, (int, int), or {"valid", "same", "full"}
        Zeros added on both sides, or ``(left, right)``.  ``"same"`` (stride 1 only) pads
        ``dilation*(K-1)`` in total, the extra zero on the right, as torch does.
    backend : str
        ``"auto"`` or a name from :func:`conv1dbench.backends`.

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
        A dtype other than float32, float64, complex64, complex128.

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
    if is_dask_array(x):
        from . import _dask
        return _dask.layer(x, weight, bias, stride, padding, dilation, groups, backend)
    p = prepare(x, weight, stride, padding, dilation, groups, backend)
    if bias is not None:
        bias = _checked_bias(bias, p.w.shape[0])

    def forward(name, **finite):
        return get_backend(name, p.dtype).forward(p.x, p.w, p.pad_left, p.pad_right, p.stride, p.dilation,
                                                  p.groups, **finite)

    y = run_checked(lambda finite: backend_for(p, backend, finite=finite)[0], forward, backend == "auto")
    if bias is not None:
        if p.device is not None:
            p.device.add_bias(y, bias)
        else:
            y += bias.astype(p.dtype)[None, :, None]
    return y[0] if p.unbatched else y


def conv1d_backward(grad_output, x, weight, stride=1, padding=0, dilation=1, groups=1, *, bias=True,
                    backend="auto"):
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
    bias : bool
        Whether the layer has a bias, i.e. whether to return its gradient.
    backend : str
        ``"auto"`` or a name from :func:`conv1dbench.backends`.

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
    p = prepare(x, weight, stride, padding, dilation, groups, backend)
    if p.device is not None:
        g = cuda_module(backend, ("grad_output", grad_output), ("x", p.x))[1][0]
    else:
        g = _layer_array(grad_output, "grad_output")
    batch, c_in, length = p.x.shape
    c_out, _, taps = p.w.shape
    expected = (c_out, p.l_out) if p.unbatched else (batch, c_out, p.l_out)
    if tuple(g.shape) != expected:
        raise ValueError(f"grad_output must have shape {expected} (C_out={c_out}, L_out={p.l_out}), "
                         f"got {tuple(g.shape)}")
    if p.device is not None:
        g = g.reshape((1,) + g.shape) if p.unbatched else g
    else:
        g = np.ascontiguousarray(g[None] if p.unbatched else g, dtype=p.dtype)
    w, xs = (np.conj(p.w), np.conj(p.x)) if p.dtype.kind == "c" else (p.w, p.x)
    geometry = (p.pad_left, p.pad_right, p.stride, p.dilation, p.groups)

    def gradients(name, **finite):
        module = get_backend(name, p.dtype)
        return (module.backward_input(g, w, length, *geometry, **finite),
                module.backward_weight(g, xs, taps, *geometry, **finite))

    grad_x, grad_w = run_checked(lambda finite: backend_for(p, backend, "backward", finite, also=(g,))[0],
                                 gradients, backend == "auto")
    if not bias:
        grad_b = None
    elif p.device is not None:
        grad_b = p.device.bias_gradient(g)
    else:
        grad_b = g.sum(axis=(0, 2))
    return (grad_x[0] if p.unbatched else grad_x), grad_w, grad_b
