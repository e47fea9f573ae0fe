"""JAX on the CPU as its peers call it: 64-bit types enabled, jit-compiled when the case is made, every call
blocking until its result is ready (JAX dispatches asynchronously, and a sample's ``sync``, called between
samples of many calls, could not tell when the last one ended)."""

from __future__ import annotations

from ._spec import planned


def x64() -> None:
    """JAX's 64-bit types enabled (else float64 arrays become float32), before any array is made."""
    import jax  # optional dependency: a peer only where installed

    jax.config.update("jax_enable_x64", True)


def signal(convolve_of, x, w, mode):
    """``convolve_of(jax)(row, kernel, mode)`` jit-compiled on device arrays, ``jax.vmap`` over a batch's rows."""
    x64()
    import jax  # optional dependency: a peer only where installed

    convolve = convolve_of(jax)

    def one(row, kernel):
        return convolve(row, kernel, mode)
    compiled = jax.jit(one if x.ndim == 1 else jax.vmap(one, in_axes=(0, None)))
    xd, wd = jax.device_put(x), jax.device_put(w)
    return planned(lambda: compiled(xd, wd).block_until_ready()), None
