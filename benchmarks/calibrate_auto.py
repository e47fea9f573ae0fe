"""Where direct (numba) stops beating FFT: the crossover behind ``backend="auto"``'s current rule.

    python benchmarks/calibrate_auto.py

For each dtype and signal length N, times ``numba`` and ``fft`` (each in its own process, as in
``bench_signal.py``) over kernel lengths K and prints the largest K at which numba is still faster.
``conv1dbench._select.DIRECT_MAX_TAPS`` holds, per dtype, a value at or below the smallest of these.
"""

from __future__ import annotations

import json
import sys

from common import run_workers

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
                print(json.dumps({"impl": name, "dtype": dtype, "n": n, "k": k, "median_s": t.median_s}), flush=True)


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "--worker":  # run_workers' protocol
        return worker(sys.argv[2])
    times = {}
    for row in run_workers(__file__, ["numba", "fft"], []):
        times[row["impl"], row["dtype"], row["n"], row["k"]] = row["median_s"]
    for dtype in DTYPES:
        for n in NS:
            faster = [k for k in KS if times["numba", dtype, n, k] <= times["fft", dtype, n, k]]
            ratios = " ".join(f"{k}:{times['fft', dtype, n, k] / times['numba', dtype, n, k]:.2f}" for k in KS)
            print(f"{dtype:10s} N={n:<8d} numba faster up to K={max(faster) if faster else None}   fft/numba {ratios}")


if __name__ == "__main__":
    main()
