"""The first call in a fresh process, with and without FFTW's wisdom kept in conv1dbench's wisdom file.

Each line is a new Python process calling ``conv1dbench.convolve(x, w, backend="fftw")`` once and then
again (after a tiny call that imports what it needs): the first call plans its transforms, the second
reuses them.  Planning "measure" without
wisdom times FFTW's candidate algorithms; with the wisdom the first process left, the second process
takes the plans from it.  Prints a Markdown table (``results/<machine>/fft_engines/wisdom.md``; the
first: ``results/archive/amd-epyc-avx512-blas-haswell/fft_engines/wisdom.md``).
Run: ``python benchmarks/fftw_wisdom.py``.
"""

from __future__ import annotations

import json
import os
import tempfile

from conv1dbench.harness.runner import fresh_python

PROBE = """
import json, time, numpy as np, conv1dbench as cb
cb.convolve(np.ones(8), np.ones(3), backend="fftw")  # imports and a tiny plan, outside the times
x = np.random.default_rng(0).standard_normal({shape}).astype("{dtype}")
w = np.random.default_rng(1).standard_normal({taps}).astype("{dtype}")
t0 = time.perf_counter(); cb.convolve(x, w, backend="fftw"); t1 = time.perf_counter()
cb.convolve(x, w, backend="fftw"); t2 = time.perf_counter()
print(json.dumps([t1 - t0, t2 - t1]))
"""
CASES = [((10**6,), 1023, "float32"), ((10**6,), 255, "float64"), ((64, 10**4), 511, "float32")]


def first_calls(case, planning, wisdom):
    shape, taps, dtype = case
    done = fresh_python(PROBE.format(shape=shape, taps=taps, dtype=dtype),
                        {"CONV1DBENCH_FFT_PLANNING": planning, "CONV1DBENCH_WISDOM": wisdom})
    if done.returncode != 0:
        raise RuntimeError(f"the probe failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def main():
    print("| signal | planning | wisdom file | first call (ms) | second call (ms) |")
    print("|---|---|---|---:|---:|")
    for case in CASES:
        with tempfile.TemporaryDirectory() as folder:
            wisdom = os.path.join(folder, "wisdom.json")
            runs = [("estimate", "none", first_calls(case, "estimate", os.path.join(folder, "none.json"))),
                    ("measure", "none", first_calls(case, "measure", wisdom)),
                    ("measure", "from the run above", first_calls(case, "measure", wisdom)),
                    ("estimate", "from the run above", first_calls(case, "estimate", wisdom))]
        shape, taps, dtype = case
        for planning, kept, (first, second) in runs:
            print(f"| {'x'.join(map(str, shape))} {dtype}, K={taps} | {planning} | {kept} | {1e3 * first:.1f} | "
                  f"{1e3 * second:.2f} |")


if __name__ == "__main__":
    main()
