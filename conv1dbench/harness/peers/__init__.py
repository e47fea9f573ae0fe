"""The peers: what a user would otherwise call, each one module with one :class:`Peer` spec.

A peer module holds ``PEER = Peer(...)``: its name, library and licence, what it computes, its threads,
how it is called (the report's words), signals and/or layers, which passes and dtypes, where its
semantics part from ours, and the estimate's proxies.  :data:`REGISTRY` holds them in the order of the
report's columns and legends.  Adding a peer is a module here and its name in :data:`MODULES`; the
harness (cases, estimate, report, summary, plots, the command line) reads everything else from the spec.
A peer whose package is not installed is not offered, and a point it cannot run says why
(:meth:`Peer.skip_reason`).
"""

from __future__ import annotations

import importlib

from ._spec import THREAD_SETTINGS, Peer, installed, layer_args, threads

#: The peer modules, in the order of the report's columns and legends: scipy (the reference of speedups),
#: the other CPU signal peers, the CPU layer peers, JAX's, then the GPU ones.
MODULES = ("scipy_convolve", "numpy_convolve", "oaconvolve", "oaconvolve_workers", "oaconvolve_fftw",
           "oaconvolve_mkl", "ipp_convolve", "mkl_vsl", "torch_conv", "onnxruntime_conv", "jax_fftconvolve",
           "jax_convolve", "jax_conv", "torch_gpu", "cupy_convolve")
#: Every peer by name.
REGISTRY: dict[str, Peer] = {}
for _module in MODULES:
    _peer = importlib.import_module(f"{__name__}.{_module}").PEER
    REGISTRY[_peer.name] = _peer

#: The peers of the CPU grids, and of the GPU grids (device-resident).
CPU = tuple(name for name, peer in REGISTRY.items() if not peer.gpu)
GPU = tuple(name for name, peer in REGISTRY.items() if peer.gpu)


def get(name: str) -> Peer | None:
    """The peer called ``name``; None for ours (a backend, auto) and unknown names."""
    return REGISTRY.get(name)


def of(api: str, *, gpu: bool = False, fft: bool | None = None) -> tuple[str, ...]:
    """The peers with an ``api`` call (``"signal"``, ``"layer"``), on the CPU or the GPU, FFT ones if ``fft``."""
    return tuple(name for name, peer in REGISTRY.items()
                 if api in peer.apis and peer.gpu == gpu and (fft is None or peer.fft == fft))


__all__ = ["CPU", "GPU", "MODULES", "REGISTRY", "THREAD_SETTINGS", "Peer", "get", "installed", "layer_args", "of",
           "threads"]
