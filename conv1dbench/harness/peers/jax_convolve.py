"""``jax.numpy.convolve`` on the CPU (direct, XLA), jit-compiled."""

from __future__ import annotations

from . import _jax
from ._spec import Peer


def _apart(point):
    if point["K"] > point["N"] and point["mode"] == "same":
        return "jax.numpy.convolve's 'same' gives max(N, K) outputs, scipy's gives N"
    return None


PEER = Peer(
    name="jax-convolve", library="JAX", needs="jax", licence="Apache-2.0", computes="direct convolution (XLA)",
    threads="its own", call="the same with `jax.numpy.convolve(x, w, mode)`",
    signal=lambda x, w, w2, mode: _jax.signal(lambda jax: jax.numpy.convolve, x, w, mode),
    apart=_apart, gflops=25.0, import_s=0.7, build_s=0.05)
