"""The block-length model per FFT engine: measured best window length against the model's choice.

For each engine, on problems of the FFT regime (single long signals and batches, float32 and
float64), times the forward call with every candidate window length (powers of two from the kernel
span up, and the whole signal), then fits the model's cache constants (the parameter ``<engine>.cache_points``,
:attr:`Engine.LARGE`) to the measurements: the pair whose choices lose least time against the best
measured, in total.  Prints the table and the fit (``results/NOTES.md``, "FFT engines: block
length").  Run: ``python benchmarks/fft_blocks.py [engine ...]``; a few minutes per engine.
"""

from __future__ import annotations

import itertools
import sys
import time

import numpy as np

from conv1dbench import _registry
from conv1dbench._backends import _fourier

PROBLEMS = [(1, 10**5, 1023), (1, 10**6, 255), (1, 10**6, 1023), (1, 3 * 10**5, 4001), (1, 10**6, 63),
            (64, 10**4, 255), (8, 10**5, 4001), (16, 30_000, 2047), (64, 10**4, 511), (32, 20_000, 127)]
CACHE_SIZES = (4096, 8192, 16384, 32768, 65536)
LARGES = (0.0, 0.5, 1.0, 2.0, 4.0)


def median_ms(run, repeats=5) -> float:
    run()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
    return 1e3 * float(np.median(times))


def candidates(length, span):
    """The block lengths :func:`conv1dbench._backends._fourier.block_length` chooses among."""
    out = [length]
    size = 1 << max(_fourier.MIN_SIZE_BITS, (2 * span - 1).bit_length())
    while size - span + 1 < length:
        out.append(size - span + 1)
        size *= 2
    return out


def measure(name):
    """``{(batch, N, K, dtype): {block: ms}}`` for the engine's backend, 'same' mode."""
    table = {}
    original = _fourier.block_length
    try:
        for (batch, n, k), dtype in itertools.product(PROBLEMS, (np.float32, np.float64)):
            backend = _registry.get_backend(name, np.dtype(dtype))
            rng = np.random.default_rng(0)
            x = rng.standard_normal((batch, 1, n)).astype(dtype)
            w = rng.standard_normal((1, 1, k)).astype(dtype)
            times = {}
            for block in candidates(n, k):
                _fourier.block_length = lambda *args, block=block: block
                _fourier._steps.cache_clear()
                times[block] = median_ms(lambda: backend.forward(x, w, k // 2, (k - 1) // 2, 1, 1, 1))  # noqa: B023
            table[(batch, n, k, np.dtype(dtype).name)] = times
            best = min(times, key=times.get)
            print(f"{name} {np.dtype(dtype).name} {batch}x{n} K={k}: best {best} ({times[best]:.2f} ms); "
                  + " ".join(f"{b}:{t:.2f}" for b, t in times.items()), flush=True)
    finally:
        _fourier.block_length = original
        _fourier._steps.cache_clear()
    return table


def fit(name, table):
    engine = _registry.get_backend(name, np.dtype(np.float64)).ENGINE
    saved = engine.cache_points(), engine.LARGE
    results = []
    try:
        for cache, large in itertools.product(CACHE_SIZES, LARGES):
            engine.LARGE = large
            lost = 0.0
            for (batch, n, k, _), times in table.items():
                counts = _fourier._counts(batch, 1, 1, 1)
                chosen = _fourier.block_length(engine, n, k, True, *counts, cache_points=cache)
                lost += times.get(chosen, min(times.values())) / min(times.values()) - 1
            results.append((lost / len(table), cache, large))
    finally:
        engine.LARGE = saved[1]
    results.sort()
    at_current = next(r for r in results if (r[1], r[2]) == saved)
    print(f"{name}: fitted cache_points={results[0][1]}, LARGE={results[0][2]}: mean loss {100 * results[0][0]:.1f}% "
          f"against the best block; the current ({saved[0]}, {saved[1]}) loses {100 * at_current[0]:.1f}%")


def main(names):
    for name in names or ("fft", "fftw", "ducc"):
        if _registry.is_available(name):
            fit(name, measure(name))


if __name__ == "__main__":
    main(sys.argv[1:])
