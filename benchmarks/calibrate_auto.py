"""Where direct (numba) stops beating FFT: the crossover behind ``backend="auto"``'s current rule.

    python benchmarks/calibrate_auto.py

For each dtype and signal length N, times ``numba`` and ``fft`` (each in its own process, as in
``bench_signal.py``) over kernel lengths K and prints the largest K at which numba is still faster.
``conv1dbench._select.DIRECT_MAX_TAPS`` holds, per dtype, a value at or below the smallest of these.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from bench_signal import WORKER_ENV  # the same allocator settings as the benchmark

DTYPES = ["float32", "float64", "complex64", "complex128"]
NS = [10**4, 10**5, 10**6]
KS = [32, 64, 96, 128, 192, 256, 384, 512, 768, 1024]


def worker(name: str) -> None:
    import numpy as np
    import conv1dbench as cb
    from conv1dbench.timing import measure

    rng = np.random.default_rng(0)
    for dtype in DTYPES:
        for n in NS:
            x = rng.standard_normal(n).astype(dtype)
            for k in KS:
                w = rng.standard_normal(k).astype(dtype)
                t = measure(lambda: cb.convolve(x, w, backend=name), min_time_s=0.05, min_samples=3)
                print(json.dumps([dtype, n, k, t.median_s]), flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":
        return worker(sys.argv[2])
    times = {}
    for name in ("numba", "fft"):
        out = subprocess.run([sys.executable, __file__, "--worker", name], capture_output=True, text=True,
                             check=True, env={**os.environ, **WORKER_ENV})
        for line in out.stdout.splitlines():
            dtype, n, k, t = json.loads(line)
            times[name, dtype, n, k] = t
    for dtype in DTYPES:
        for n in NS:
            faster = [k for k in KS if times["numba", dtype, n, k] <= times["fft", dtype, n, k]]
            ratios = " ".join(f"{k}:{times['fft', dtype, n, k] / times['numba', dtype, n, k]:.2f}" for k in KS)
            print(f"{dtype:10s} N={n:<8d} numba faster up to K={max(faster) if faster else None}   fft/numba {ratios}")


if __name__ == "__main__":
    main()
