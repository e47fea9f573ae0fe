"""``fft``: the FFT convolution algorithm (:mod:`conv1dbench._backends._fourier`) on scipy.fft (pocketfft).

scipy.fft ships with SciPy, so this backend is always there; ``fftw`` and ``ducc`` run the same
algorithm on faster engines that install as extras.  Transforms run on one thread: pocketfft's
``workers`` gave no steady gain on these batched transforms on 2 cores (``results/NOTES.md``, "FFT
engines: threads").
"""

from __future__ import annotations

import numpy as np
import scipy.fft

from . import _fourier
from ._fourier import *  # noqa: F403 - the declarations every FFT backend shares (its __all__)


class _Transform(_fourier.Transform):
    """A scipy.fft call on an input array of this thread's; the result is a new array."""

    def __init__(self, kind, rows, size, dtype, threads):
        super().__init__(kind, rows, size, dtype, threads)
        self.input = np.empty(self.in_shape, self.in_dtype)

    def run(self):
        a, n, workers = self.input, self.size, self.threads
        if self.kind == "r2c":
            return scipy.fft.rfft(a, axis=-1, workers=workers)
        if self.kind == "c2r":
            return scipy.fft.irfft(a, n, axis=-1, norm="forward", overwrite_x=True, workers=workers)
        if self.kind == "c2c":
            return scipy.fft.fft(a, axis=-1, workers=workers)
        return scipy.fft.ifft(a, axis=-1, norm="forward", overwrite_x=True, workers=workers)


class Engine(_fourier.Engine):
    name = "fft"
    CACHE_PARAM, LARGE = "fft.cache_points", 0.5  # fitted: benchmarks/fft_blocks.py, results/archive

    def make(self, kind, rows, size, dtype, threads):
        return _Transform(kind, rows, size, dtype, threads)

    def next_fast_len(self, n, real):
        return scipy.fft.next_fast_len(n, real=real)


ENGINE = Engine()
forward, backward_input, backward_weight, work, threads = _fourier.functions(ENGINE)


def unavailable_reason() -> str | None:
    return None
