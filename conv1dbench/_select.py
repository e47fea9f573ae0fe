"""What ``backend="auto"`` runs: for now a simple, documented rule on the core problem.

The rule (to be replaced by measured timings):

1. Integer problems run direct, on ``numba``: exact for any magnitude.
2. When the shorter of signal and kernel has at most :data:`DIRECT_MAX_TAPS` samples for the dtype,
   direct convolution does fewer operations than FFT: ``im2col`` (a BLAS GEMM) runs when each
   group's weight matrix is large (:data:`GEMM_MIN`: many-channel layers), ``numba`` otherwise.
3. Otherwise ``fft`` (with overlap-add for long signals) runs, unless an input holds a NaN or Inf:
   FFT would spread it over every output, so non-finite problems always run direct.

Where ``numba`` is unavailable, ``im2col`` takes its place.  The crossover lengths come from
``benchmarks/calibrate_auto.py`` on a 2-core AMD EPYC (Zen 4), N from 10**4 to 10**6.
"""

from __future__ import annotations

import numpy as np

from ._registry import is_available

#: Longest kernel (shorter operand) for which direct convolution beats FFT, per core dtype;
#: ``None``: always direct.
DIRECT_MAX_TAPS = {np.dtype(np.float32): 320, np.dtype(np.float64): 256, np.dtype(np.complex64): 160,
                   np.dtype(np.complex128): 128, np.dtype(np.int64): None}
_direct_name = None


def _direct() -> str:
    global _direct_name
    if _direct_name is None:  # availability does not change within a process
        _direct_name = "numba" if is_available("numba") else "im2col"
    return _direct_name


#: GEMM shapes (im2col) beat the direct kernel when each group's weight matrix is at least this
#: large: (output channels, input channels * taps), forward and backward (benchmarks/bench_layer.py).
GEMM_MIN = {"forward": (32, 128), "backward": (16, 64)}


def choose(x: np.ndarray, w: np.ndarray, shortest: int, groups: int = 1,
           direction: str = "forward") -> tuple[str, str]:
    """The backend auto runs for core arrays ``x``, ``w``, and the rule that picked it, in words.

    ``shortest`` is the length of the shorter operand along the convolved axis; ``direction`` is
    ``"forward"`` or ``"backward"`` (the layer's gradients).  The rule texts are constants: this
    runs on every auto call, so it formats nothing.
    """
    limit = DIRECT_MAX_TAPS[x.dtype]
    if limit is None:
        return _direct(), "integer input: direct is exact for any magnitude"
    if shortest <= limit:
        if _gemm_sized(w, groups, direction):
            return "im2col", "short kernel, GEMM-sized weight matrix per group: im2col + BLAS"
        return _direct(), "short kernel (at most DIRECT_MAX_TAPS samples): direct is cheaper than FFT"
    if not (np.isfinite(x).all() and np.isfinite(w).all()):
        return _direct(), "input holds NaN or Inf: FFT would spread it to every output"
    return "fft", "long kernel (more than DIRECT_MAX_TAPS samples): FFT is cheaper"


def _gemm_sized(w: np.ndarray, groups: int, direction: str) -> bool:
    min_out, min_depth = GEMM_MIN[direction]
    return w.shape[0] // groups >= min_out and w.shape[1] * w.shape[2] >= min_depth
