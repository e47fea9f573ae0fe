"""Where several threads pay for one transform, per FFT engine: the measurement behind the defaults of the
kernel parameters ``fftw.parallel_min_work`` and ``ducc.parallel_min_work`` (``results/NOTES.md``, "FFT
engines: threads"; ``conv1dbench tune`` measures them on the machine it runs on).

For rows x size real forward transforms (what the FFT backends' windows are), the median time on one
thread and on all of this process's cores, each engine in this process in turn.  Prints a Markdown
table and the least ``rows * size * log2(size)`` from which the threaded transform was at least 10%
faster at every larger work measured.  Run: ``python benchmarks/fft_threads.py``.
"""

from __future__ import annotations

import math
import time

import numpy as np

from conv1dbench import _registry, _threads

SHAPES = [(rows, size) for size in (512, 2048, 8192, 32768, 131072, 1 << 20) for rows in (1, 2, 8, 32, 128)
          if rows * size <= 1 << 22]


def median_time(run, budget_s=0.05) -> float:
    run()
    times = []
    deadline = time.perf_counter() + budget_s
    while len(times) < 5 or (time.perf_counter() < deadline and len(times) < 200):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main():
    cores = _threads.cores()
    print(f"cores: {cores}\n")
    print("| engine | dtype | rows x size | work | 1 thread (us) | %d threads (us) | speedup |" % cores)
    print("|---|---|---|---:|---:|---:|---:|")
    for name in ("fft", "fftw", "ducc"):
        if not _registry.is_available(name):
            continue
        engine = _registry.get_backend(name, np.dtype(np.float64)).ENGINE
        for dtype in (np.float32, np.float64):
            gains = []
            for rows, size in SHAPES:
                times = []
                for threads in (1, cores):
                    t = engine.make("r2c", rows, size, np.dtype(dtype), threads)
                    t.input[:] = np.random.default_rng(0).standard_normal(t.input.shape)
                    times.append(median_time(t.run))
                work = rows * size * math.log2(size)
                gains.append((work, times[0] / times[1]))
                print(f"| {name} | {np.dtype(dtype).name} | {rows} x {size} | {work:.3g} | {times[0] * 1e6:.1f} | "
                      f"{times[1] * 1e6:.1f} | {times[0] / times[1]:.2f} |")
            gains.sort()
            least = next((w for i, (w, _) in enumerate(gains) if all(g >= 1.1 for _, g in gains[i:])), None)
            print(f"| {name} | {np.dtype(dtype).name} | threads pay from work | {least} | | | |")


if __name__ == "__main__":
    main()
