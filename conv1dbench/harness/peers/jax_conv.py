"""``jax.lax.conv_general_dilated`` on the CPU (XLA), forward and both gradients through ``jax.vjp``."""

from __future__ import annotations

from ..grid import problem
from . import _jax
from ._spec import Peer, planned


def _layer(point, arrays, backward):
    """The point's planned padding, stride, dilation and groups, jit-compiled now; backward: grad_x and grad_w
    through ``jax.vjp`` (XLA drops the forward product, whose result nothing reads)."""
    _jax.x64()
    import jax  # optional dependency: a peer only where installed

    core = problem(point)

    def forward(x, w):
        return jax.lax.conv_general_dilated(x, w, (core.stride,), [(core.pad_left, core.pad_right)],
                                            rhs_dilation=(core.dilation,), feature_group_count=core.groups)
    x, w = jax.device_put(arrays["x"]), jax.device_put(arrays["w"])
    if not backward:
        compiled = jax.jit(forward)
        return planned(lambda: compiled(x, w).block_until_ready()), None
    g = jax.device_put(arrays["g"])

    def gradients(x, w, g):
        return jax.vjp(forward, x, w)[1](g)
    compiled = jax.jit(gradients)
    return planned(lambda: jax.block_until_ready(compiled(x, w, g))), None


PEER = Peer(
    name="jax", library="JAX", needs="jax", licence="Apache-2.0", computes="cross-correlation layer (XLA)",
    threads="its own",
    call="`jax.jit` of `jax.lax.conv_general_dilated(x, w, (stride,), [(pad_left, pad_right)], "
         "rhs_dilation=(dilation,), feature_group_count=groups)` on the CPU (backward: both gradients "
         "through `jax.vjp`, the forward product dropped by XLA), as jax-fftconvolve is compiled and waited for",
    layer=_layer, passes=("forward", "backward"), import_s=0.7, build_s=0.1)
