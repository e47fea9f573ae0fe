"""``jax.numpy.convolve`` on the CPU (direct, XLA), jit-compiled."""

from __future__ import annotations

from . import _jax
from ._spec import Peer, same_gives_max_outputs

PEER = Peer(
    name="jax-convolve", library="JAX", needs="jax", licence="Apache-2.0", computes="direct convolution (XLA)",
    threads="its own", call="the same with `jax.numpy.convolve(x, w, mode)`",
    signal=lambda x, w, w2, mode: _jax.signal(lambda jax: jax.numpy.convolve, x, w, mode),
    apart=same_gives_max_outputs("jax.numpy.convolve"), gflops=25.0, import_s=0.7, build_s=0.05)
