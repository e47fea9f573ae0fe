"""What this machine can do, measured in the same run as the benchmarks: its FMA peak, GEMM and memory
bandwidth.

The FMA peak is the ceiling: register-only fused multiply-adds on the vector unit the kernels are
compiled for, on all threads (:func:`conv1dbench.harness.fma.fma_gflops`); "% of peak" in reports
means a share of it.  The GEMM rate, a large BLAS matrix product, says what the machine's BLAS
reaches (OpenBLAS may run a kernel for an older ISA than the CPU's), and the memory bandwidth bounds
the streaming calls.
"""

from __future__ import annotations

import numpy as np

from ..timing import measure


def peak_gflops(peak: dict, dtype: str) -> tuple[float, str]:
    """``(GFLOP/s, name)`` of the peak that "% of peak" divides by: the FMA peak, or the GEMM rate in
    a run recorded before the FMA peak was measured; NaN where neither was."""
    for key, name in (("fma_gflops", "FMA peak"), ("gemm_gflops", "GEMM peak")):
        value = (peak or {}).get(key, {}).get(dtype)
        if value is not None and np.isfinite(value):
            return float(value), name
    return float("nan"), "peak"


def gemm_gflops(dtype: str, n: int = 2048, min_time_s: float = 0.5) -> float:
    """GFLOP/s of an ``n x n`` matrix product through NumPy's BLAS, all threads."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(dtype) for _ in range(2))
    out = np.empty((n, n), dtype=dtype)
    t = measure(lambda: np.matmul(a, b, out=out), min_time_s=min_time_s, min_samples=3)
    return 2.0 * n**3 / t.median_s / 1e9


def bandwidth_gbs(megabytes: int = 256, min_time_s: float = 0.5) -> float:
    """GB/s of copying a ``megabytes`` buffer (bytes read plus bytes written), one thread."""
    src = np.ones(megabytes * 2**20 // 8)
    dst = np.empty_like(src)
    t = measure(lambda: np.copyto(dst, src), min_time_s=min_time_s, min_samples=3)
    return 2.0 * src.nbytes / t.median_s / 1e9


def measure_peak(dtypes=("float32", "float64"), quick: bool = False) -> dict:
    """``{"fma_gflops": {dtype: GFLOP/s}, "fma_check": text, "gemm_gflops": {dtype: GFLOP/s},
    "bandwidth_gbs": GB/s}`` (quick: small sizes, for tests).  The FMA peak is always measured for both
    float dtypes: each checks the other (:func:`~conv1dbench.harness.fma.checked_fma_peak`)."""
    from .fma import checked_fma_peak  # import time: Numba, needed only by a run that measures the peak

    n, mb, t = (256, 16, 0.05) if quick else (2048, 256, 0.5)
    fma, check = checked_fma_peak(min(t, 0.3))
    return {"fma_gflops": fma, "fma_check": check,
            "gemm_gflops": {d: round(gemm_gflops(d, n, t), 1) for d in dtypes},
            "bandwidth_gbs": round(bandwidth_gbs(mb, t), 1)}
