"""Calls with CUDA device arrays: planned like host calls, run by a device backend, kept on the device.

A device array is a Numba device array or any object exposing ``__cuda_array_interface__`` (CuPy
arrays, CUDA torch tensors).  Such inputs never take a host round trip: they go to the backend that
declares ``DEVICE`` (:func:`conv1dbench._registry.device_backends`), which returns device arrays.
Host values among them (a small kernel or a bias) are copied over.
"""

from __future__ import annotations

from types import ModuleType

import numpy as np

from ._kinds import is_device_array
from ._plan import BACKWARD, plan_layer, plan_signal
from ._registry import check_name, device_backends, get_backend, module

#: Why auto runs the device backend for device arrays (what ``fastest(..., explain=True)`` reports).
DEVICE_RULE = "device arrays: the device backend, without a host round trip"


def device_backend(backend) -> str:
    """The device backend that runs a call with device arrays asked to run on ``backend``."""
    names = device_backends()
    check_name(backend)
    if backend == "auto" and names:
        return names[0]
    if backend not in names:
        takes = " or ".join(f"backend={n!r}" for n in names) or "no backend here"
        raise TypeError(f"device arrays take only {takes} (or 'auto'); copy them to the host to use "
                        f"backend={backend!r}")
    return backend


def operands(backend, *named) -> tuple[ModuleType, list]:
    """The device backend for a call, and its operands as its device arrays (checked).

    ``named`` are ``(name, value)`` pairs.  All must share one float dtype the backend takes: there
    is no implicit cast on the device.
    """
    name = device_backend(backend)
    dtypes = {label: np.dtype(_dtype_of(value)) for label, value in named}
    takes = sorted(str(d) for d in module(name).DTYPES)
    for label, dtype in dtypes.items():
        if dtype not in module(name).DTYPES:
            raise TypeError(f"{label} has dtype {dtype}; on the device conv1dbench takes "
                            f"{', '.join(takes[:-1])} and {takes[-1]}")
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{label} {dtype}" for label, dtype in dtypes.items())
        raise TypeError(f"device inputs must share one dtype (no casts on the device); got {listed}")
    runner = get_backend(name, next(iter(dtypes.values())))
    arrays = [runner.as_device(value) for _, value in named]
    for (label, _), array in zip(named, arrays, strict=True):
        if array.size == 0:
            raise ValueError(f"{label} is empty (shape {array.shape})")
        if not array.is_c_contiguous():
            raise ValueError(f"{label} is a non-contiguous device array (shape {array.shape}, strides "
                             f"{array.strides}); make it contiguous on the device first")
    return runner, arrays


def _dtype_of(value):
    if is_device_array(value) and not getattr(value, "__cuda_ndarray__", False):
        return np.dtype(value.__cuda_array_interface__["typestr"])
    dtype = getattr(value, "dtype", None)
    return np.asarray(value).dtype if dtype is None else dtype


def signal(op: str, in1, in2, mode, axis, backend):
    """``convolve``/``correlate`` of device arrays along their last axis; a device array back.

    ``in2`` must be one kernel or one per slice of ``in1`` (or the other way round): no operand is
    repeated on the device.
    """
    module, (x, w) = operands(backend, ("in1", in1), ("in2", in2))
    plan = plan_signal(op, tuple(x.shape), tuple(w.shape), x.dtype, w.dtype, mode, axis)
    if plan.problem is None:
        raise ValueError("in1 and in2 are 0-d device arrays; their product is a scalar: multiply them as they are")
    if plan.moves_axis:
        raise ValueError(f"device arrays are convolved along their last axis; got axis={plan.axis} for "
                         f"in1 with {len(x.shape)} dimensions")
    if plan.layout == "broadcast":
        raise ValueError(f"on the device, in2's kernels must broadcast over in1's slices without "
                         f"repeating in1: leading shapes {tuple(x.shape)[:-1]} and {tuple(w.shape)[:-1]}")
    p = plan.problem
    signal_, kernel = (w, x) if plan.swap else (x, w)
    core_w = kernel.reshape(p.w_shape)
    if plan.flip:
        core_w = core_w[:, :, ::-1]
    y = module.forward(signal_.reshape(p.x_shape), core_w, *p.geometry)
    y = y.reshape(plan.lead + (p.l_out,))
    return y[..., ::-1] if plan.reverse else y


def layer_forward(x, weight, bias, stride, padding, dilation, groups, backend):
    module, (x, w) = operands(backend, ("x", x), ("weight", weight))
    layer = plan_layer(tuple(x.shape), tuple(w.shape), x.dtype, stride, padding, dilation, groups)
    p = layer.problem
    y = module.forward(x.reshape(p.x_shape), w, *p.geometry)
    if bias is not None:
        if tuple(getattr(bias, "shape", np.shape(bias))) != (p.c_out,):
            raise ValueError(f"bias must have shape (C_out,) = ({p.c_out},), got {tuple(np.shape(bias))}")
        kind = np.dtype(getattr(bias, "dtype", None) or np.asarray(bias).dtype)
        if not np.can_cast(kind, layer.dtype, casting="same_kind"):
            raise TypeError(f"bias has dtype {kind}, which a layer computing in {layer.dtype} cannot hold without "
                            "losing its imaginary part")
        module.add_bias(y, bias)
    return y[0] if layer.unbatched else y


def layer_backward(grad_output, x, weight, stride, padding, dilation, groups, bias, backend):
    module, (g, x, w) = operands(backend, ("grad_output", grad_output), ("x", x), ("weight", weight))
    layer = plan_layer(tuple(x.shape), tuple(w.shape), x.dtype, stride, padding, dilation, groups, BACKWARD)
    p = layer.problem
    if tuple(g.shape) != layer.grad_output_shape:
        raise ValueError(f"grad_output must have shape {layer.grad_output_shape} (C_out={p.c_out}, "
                         f"L_out={p.l_out}), got {tuple(g.shape)}")
    g = g.reshape(p.y_shape)
    grad_x = module.backward_input(g, w, p.length, *p.geometry)
    grad_w = module.backward_weight(g, x.reshape(p.x_shape), p.taps, *p.geometry)
    grad_b = module.bias_gradient(g) if bias else None
    return (grad_x[0] if layer.unbatched else grad_x), grad_w, grad_b
