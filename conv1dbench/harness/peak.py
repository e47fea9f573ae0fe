"""What this machine can do, measured in the same run as the benchmarks: GEMM and memory bandwidth.

The report gives every result as a percentage of these: a convolution's multiply-adds cannot run
faster than a large BLAS matrix product, and a streaming one not faster than memory copies.
"""

from __future__ import annotations

import numpy as np

from ..timing import measure


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
    """``{"gemm_gflops": {dtype: GFLOP/s}, "bandwidth_gbs": GB/s}`` (quick: small sizes, for tests)."""
    n, mb, t = (256, 16, 0.05) if quick else (2048, 256, 0.5)
    return {"gemm_gflops": {d: round(gemm_gflops(d, n, t), 1) for d in dtypes},
            "bandwidth_gbs": round(bandwidth_gbs(mb, t), 1)}
