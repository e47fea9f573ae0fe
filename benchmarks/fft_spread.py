"""Steps on every core against steps in turn, per FFT engine: the measurement behind the default of the
kernel parameter ``fourier.spread_min_work`` (``results/NOTES.md``, "FFT engines: steps on every core").

For single signals and small batches across the FFT regime, each engine's forward call ("same") with
its steps spread over the cores (``fourier.spread_min_work = 0``) and taken in turn on this thread, each
transform on the engine's own threads where they pay (``= inf``).  The two are timed
interleaved, in a new random order every round, so that a slow stretch of the machine slows both.
Prints a Markdown table (with ``scipy.signal.oaconvolve`` timed in the same rounds) and the least
work from which spreading was at least 5% faster at every larger work measured.
Run: ``python benchmarks/fft_spread.py``.
"""

from __future__ import annotations

import math
import random
import time

import numpy as np
import scipy.signal

import conv1dbench as cb
from conv1dbench import _params, _registry, _threads
from conv1dbench._backends import _fourier
from conv1dbench._plan import plan_signal

#: (signal length, kernel length, batch).
PROBLEMS = [(10**4, 1023, 1), (3 * 10**4, 1500, 1), (10**5, 1023, 1), (2 * 10**5, 1023, 1), (2 * 10**5, 255, 1),
            (3 * 10**5, 1500, 1), (10**6, 255, 1), (10**6, 1023, 1), (10**4, 1023, 8), (10**4, 255, 16),
            (5 * 10**4, 1023, 4), (10**5, 4001, 8)]
ROUNDS = 25


def interleaved(calls: dict, rounds: int = ROUNDS) -> dict:
    """Median seconds of each call, timed once per round in a new random order (two calls first, untimed)."""
    for call in calls.values():
        call()
        call()
    times = {name: [] for name in calls}
    names = list(calls)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            t0 = time.perf_counter()
            calls[name]()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def with_threshold(threshold, run):
    def call():
        with _params.overriding(fourier__spread_min_work=threshold):
            run()
    return call


def work(engine, n, k, batch, dtype) -> float:
    shape = (n,) if batch == 1 else (batch, n)
    name = np.dtype(dtype).name
    return _fourier.spread_work(engine, plan_signal("convolve", shape, (k,), name, name, "same").problem)


def main():
    kept = _params.value("fourier.spread_min_work")
    rng = np.random.default_rng(0)
    names = [name for name in ("fft", "fftw", "ducc") if _registry.is_available(name)]
    print(f"cores: {_threads.cores()}; fourier.spread_min_work in force: {kept:g}\n")
    print("| dtype | N | K | batch | engine | work | in turn (ms) | spread (ms) | in turn / spread | "
          "oaconvolve (ms) |")
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|---:|")
    gains = {name: [] for name in names}
    for dtype in (np.float32, np.float64):
        for n, k, batch in PROBLEMS:
            x = rng.standard_normal((batch, n) if batch > 1 else n).astype(dtype)
            w = rng.standard_normal(k).astype(dtype)
            kernel = w if batch == 1 else w[None]
            calls = {"oaconvolve": lambda x=x, kernel=kernel: scipy.signal.oaconvolve(x, kernel, "same", axes=-1)}
            for name in names:
                def run(name=name, x=x, w=w):
                    cb.convolve(x, w, mode="same", backend=name)
                calls[name, "turn"] = with_threshold(math.inf, run)
                calls[name, "spread"] = with_threshold(0, run)
            times = interleaved(calls)
            for name in names:
                engine = _registry.get_backend(name, np.dtype(dtype)).ENGINE
                amount = work(engine, n, k, batch, dtype)
                turn, spread = times[name, "turn"], times[name, "spread"]
                gains[name].append((amount, turn / spread))
                print(f"| {np.dtype(dtype).name} | {n:g} | {k} | {batch} | {name} | {amount:.2g} | "
                      f"{turn * 1e3:.3f} | {spread * 1e3:.3f} | {turn / spread:.2f} | "
                      f"{times['oaconvolve'] * 1e3:.3f} |", flush=True)
    print()
    for name, found in gains.items():
        found.sort()
        least = next((w for i, (w, _) in enumerate(found) if all(g >= 1.05 for _, g in found[i:])), None)
        print(f"{name}: spreading at least 5% faster from work {least if least is None else f'{least:.2g}'}")


if __name__ == "__main__":
    main()
