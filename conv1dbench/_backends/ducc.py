"""``ducc``: the FFT convolution algorithm (:mod:`conv1dbench._backends._fourier`) on ducc0's FFT.

ducc0 plans nothing a caller sees (it caches its own twiddle tables), so a transform here is an
input and an output array of this thread's, and one ``ducc0.fft`` call between them.  Threads: where
one transform's work reaches the kernel parameter ``ducc.parallel_min_work`` over at least
:attr:`Engine.PARALLEL_MIN_ROWS` rows (measured, ``results/NOTES.md``, "FFT engines: threads"), ducc0
runs its rows on several threads; it does not split one row's transform.

ducc0 is an optional extra (``pip install conv1dbench[ducc]``); it is GPL.
"""

from __future__ import annotations

import numpy as np

from . import _fourier
from ._fourier import *  # noqa: F403 - the declarations every FFT backend shares (its __all__)

try:
    import ducc0  # optional dependency: the backend is unavailable without it
except ImportError:  # pragma: no cover - depends on the installation
    ducc0 = None


def unavailable_reason() -> str | None:
    if ducc0 is None:
        return "ducc0 is not installed; pip install 'conv1dbench[ducc]' (ducc0 is GPL)"
    return None


class _Transform(_fourier.Transform):
    """One ``ducc0.fft`` call from this transform's input array into its output array."""

    def __init__(self, kind, rows, size, dtype, threads):
        super().__init__(kind, rows, size, dtype, threads)
        self.input = np.empty(self.in_shape, self.in_dtype)
        self.output = np.empty(self.out_shape, self.out_dtype)

    def run(self):
        a, out, threads = self.input, self.output, self.threads
        if self.kind == "r2c":
            return ducc0.fft.r2c(a, axes=(1,), out=out, nthreads=threads)
        if self.kind == "c2r":
            return ducc0.fft.c2r(a, axes=(1,), lastsize=self.size, forward=False, out=out, nthreads=threads,
                                 allow_overwriting_input=True)
        return ducc0.fft.c2c(a, axes=(1,), forward=self.kind == "c2c", out=out, nthreads=threads)


class Engine(_fourier.Engine):
    name = "ducc"
    # ducc0 gives threads whole rows, in bundles: 8 rows ran no faster on 2 threads at any size,
    # 32 rows of 2048 points (7e5, the default) did
    PARALLEL_PARAM, PARALLEL_MIN_ROWS = "ducc.parallel_min_work", 32
    CACHE_PARAM, LARGE = "ducc.cache_points", 2.0  # fitted: benchmarks/fft_blocks.py, results/archive

    def make(self, kind, rows, size, dtype, threads):
        return _Transform(kind, rows, size, dtype, threads)

    def next_fast_len(self, n, real):
        return ducc0.fft.good_size(n, real)


ENGINE = Engine()
forward, backward_input, backward_weight, work, threads = _fourier.functions(ENGINE)
