"""``jax.scipy.signal.fftconvolve`` on the CPU (XLA's FFT), jit-compiled."""

from __future__ import annotations

from . import _jax
from ._spec import Peer


def _fftconvolve(jax):
    import jax.scipy.signal  # optional dependency: a peer only where installed

    return jax.scipy.signal.fftconvolve


PEER = Peer(
    name="jax-fftconvolve", library="JAX", needs="jax", licence="Apache-2.0", computes="FFT convolution (XLA)",
    threads="its own",
    call="`jax.jit(jax.scipy.signal.fftconvolve)(x, w, mode)` on the CPU (`jax.vmap` over the rows of a batch), "
         "64-bit types enabled, XLA's own thread pool (its default size), the arrays on the device and the "
         "program compiled before the timing, each call ending in `block_until_ready()`",
    signal=lambda x, w, w2, mode: _jax.signal(_fftconvolve, x, w, mode), slower=10.0, import_s=0.7, build_s=0.05)
