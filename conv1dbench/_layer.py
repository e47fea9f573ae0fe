"""``conv1d`` and ``conv1d_backward`` on host arrays: the planner's plan carried out.

A layer is the core problem as it is (:func:`conv1dbench._plan.plan_layer` checks the geometry and
settles the padding); this module makes the operands contiguous in the result dtype, runs the
backend (named, or auto's choice), and adds the bias or computes its gradient.
"""

from __future__ import annotations

import numpy as np

from . import _auto
from ._plan import BACKWARD, LayerPlan, check_layer_dtype, layer_dtype, plan_layer
from ._registry import get_backend
from ._signal import Direct, checked_out, host_array, into


def plan(x, weight, stride, padding, dilation, groups, direction="forward") -> LayerPlan:
    """The plan of a layer call on host (or Dask) arrays ``x`` and ``weight`` (anything with shape and dtype)."""
    return plan_layer(x.shape, weight.shape, layer_dtype(x.dtype, weight.dtype), stride, padding, dilation, groups,
                      direction)


def checked_bias(bias, c_out: int, dtype) -> np.ndarray:
    """``bias`` as an array of shape ``(c_out,)`` that the layer's ``dtype`` can hold: integers and floats of
    either precision on a real layer (rounded to it, as the layer computes), anything numeric on a complex
    one; a complex bias on a real layer is a TypeError (its imaginary part would be dropped), as in torch."""
    bias = np.asarray(bias)
    if bias.dtype.kind not in "biu":  # integers (e.g. a list of ints) are fine for a bias
        check_layer_dtype(bias.dtype, "bias")
    if not np.can_cast(bias.dtype, dtype, casting="same_kind"):
        raise TypeError(f"bias has dtype {bias.dtype}, which a layer computing in {np.dtype(dtype)} cannot hold "
                        "without losing its imaginary part; pass a real bias, or complex x and weight")
    if bias.shape != (c_out,):
        raise ValueError(f"bias must have shape (C_out,) = ({c_out},), got {bias.shape}")
    return bias


def forward(x, weight, bias, stride, padding, dilation, groups, backend, out=None):
    x, weight = host_array(x), host_array(weight)
    layer = plan(x, weight, stride, padding, dilation, groups)
    p = layer.problem
    if bias is not None:
        bias = checked_bias(bias, p.c_out, layer.dtype)
    out = checked_out(out, layer.grad_output_shape, layer.dtype, (x, weight, bias))
    xs = np.ascontiguousarray(x.reshape(p.x_shape), dtype=layer.dtype)
    w = np.ascontiguousarray(weight, dtype=layer.dtype)
    direct = Direct(None if out is None else out.reshape(p.y_shape))  # the layer's result is the core output

    def call(name, **options):
        chosen = get_backend(name, p.dtype)
        return chosen.forward(xs, w, *p.geometry, **direct.options(chosen, "forward", options))

    y = _auto.run(p, backend, call, (xs, w))
    if out is not None:
        y = y if direct.written else into(direct.core, y)
    if bias is not None:  # in place, into out where there is one
        y += bias.astype(layer.dtype)[None, :, None]
    return out if out is not None else y[0] if layer.unbatched else y


def backward(grad_output, x, weight, stride, padding, dilation, groups, bias, backend, out=None):
    x, weight = host_array(x), host_array(weight)
    layer = plan(x, weight, stride, padding, dilation, groups, BACKWARD)
    p = layer.problem
    g = host_array(grad_output)
    check_layer_dtype(g.dtype, "grad_output")
    if g.shape != layer.grad_output_shape:
        raise ValueError(f"grad_output must have shape {layer.grad_output_shape} (C_out={p.c_out}, "
                         f"L_out={p.l_out}), got {g.shape}")
    outs = checked_outs(out, layer, bias, (g, x, weight))
    g = np.ascontiguousarray(g.reshape(p.y_shape), dtype=layer.dtype)
    xs = np.ascontiguousarray(x.reshape(p.x_shape), dtype=layer.dtype)
    w = np.ascontiguousarray(weight, dtype=layer.dtype)
    if layer.dtype.kind == "c":  # torch's autograd: the gradients use the conjugates
        w, xs = np.conj(w), np.conj(xs)

    direct_x = Direct(None if outs[0] is None else outs[0].reshape(p.x_shape))
    direct_w = Direct(outs[1])

    def call(name, **options):
        module = get_backend(name, p.dtype)
        into_x = direct_x.options(module, "backward_input", options)
        into_w = direct_w.options(module, "backward_weight", options)
        return (module.backward_input(g, w, p.length, *p.geometry, **into_x),
                module.backward_weight(g, xs, p.taps, *p.geometry, **into_w))

    grad_x, grad_w = _auto.run(p, backend, call, (g, xs, w))
    grad_b = g.sum(axis=(0, 2), out=outs[2]) if bias else None
    grad_x = outs[0] if direct_x.written else into(outs[0], grad_x[0] if layer.unbatched else grad_x)
    grad_w = outs[1] if direct_w.written else into(outs[1], grad_w)
    return grad_x, grad_w, grad_b


def checked_outs(out, layer: LayerPlan, bias: bool, operands) -> tuple:
    """``conv1d_backward``'s ``out``: None, or ``(grad_x, grad_weight, grad_bias)`` with None where a
    gradient is not computed (or is to be allocated), each checked as :func:`checked_out` does."""
    if out is None:
        return None, None, None
    if not isinstance(out, tuple) or len(out) != 3:
        raise TypeError(f"out must be a tuple (grad_x, grad_weight, grad_bias), None for any not wanted; got {out!r}"
                        if not isinstance(out, tuple) else f"out must have 3 entries, got {len(out)}")
    if not bias and out[2] is not None:
        raise ValueError("out[2] must be None: with has_bias=False no bias gradient is computed")
    p = layer.problem
    shapes = (layer.grad_x_shape, p.w_shape, (p.c_out,))
    names = ("out[0] (grad_x)", "out[1] (grad_weight)", "out[2] (grad_bias)")
    checked = tuple(checked_out(o, s, layer.dtype, operands, n) for o, s, n in zip(out, shapes, names, strict=True))
    if len({id(o) for o in checked if o is not None}) < sum(o is not None for o in checked):
        raise ValueError("the arrays of out must be three different arrays")
    return checked
