"""auto in a loop of alternating layer calls, against the same calls timed alone.

A training step alternates layers and passes: forward and backward of two layer shapes, one after
another.  Where auto runs one call on a BLAS backend (im2col) and the next on a parallel one (numba,
the FFT engines), OpenBLAS's threads still spin from the first when the second starts, and hold a
core it needs.  Our parallel calls put them to rest first (:func:`conv1dbench._threads.rest_blas_threads`).

Each call is timed alone (its own repeats, after OpenBLAS's threads have gone to sleep) and in the
loop; the table gives both medians and their ratio.  Then the same with the resting turned off,
and with the backends named (im2col for one shape, numba for the other) so that the two threading
families meet whatever auto chooses on this machine.  The wisdom file is a fresh one, so auto meets
these shapes at first sight.  Run: ``python benchmarks/auto_loop.py > results/<machine>/auto_loop.md``.
"""

from __future__ import annotations

import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("CONV1DBENCH_WISDOM", str(Path(tempfile.mkdtemp()) / "wisdom.json"))

import numpy as np  # noqa: E402

import conv1dbench as cb  # noqa: E402
from conv1dbench import _threads  # noqa: E402
from conv1dbench.machine import machine_info  # noqa: E402
from conv1dbench.timing import measure  # noqa: E402

#: (B, C_in, C_out, L, K): two of the held-out layers of the auto issue, float32, padding "same".
SHAPES = [(4, 192, 192, 2000, 9), (8, 64, 32, 6000, 15)]
ROUNDS = 15
SETTLE_S = 0.3


def calls(backends=("auto", "auto")):
    """The loop's calls: ``[(label, function)]``, forward and backward of each shape."""
    rng = np.random.default_rng(0)
    out = []
    for shape, backend in zip(SHAPES, backends, strict=True):
        b, c_in, c_out, length, k = shape
        x = rng.standard_normal((b, c_in, length)).astype(np.float32)
        w = rng.standard_normal((c_out, c_in, k)).astype(np.float32)
        g = rng.standard_normal((b, c_out, length)).astype(np.float32)
        out.append((f"{shape} forward [{backend}]", lambda x=x, w=w, be=backend: cb.conv1d(x, w, padding="same",
                                                                                            backend=be)))
        out.append((f"{shape} backward [{backend}]",
                    lambda g=g, x=x, w=w, be=backend: cb.conv1d_backward(g, x, w, padding="same", backend=be)))
    return out


def choices() -> list[tuple[str, str]]:
    """What auto runs for each shape: (forward, backward)."""
    out = []
    for b, c_in, c_out, length, k in SHAPES:
        x, w = np.ones((b, c_in, length), np.float32), np.ones((c_out, c_in, k), np.float32)
        g = np.ones((b, c_out, length), np.float32)
        out.append((cb.fastest("conv1d", x, w, padding="same"), cb.fastest("conv1d_backward", g, x, w, padding="same")))
    return out


def alone(fn) -> float:
    """Median seconds of ``fn`` called on its own, after OpenBLAS's threads have gone to sleep."""
    time.sleep(SETTLE_S)
    return measure(fn, min_time_s=0.0, min_samples=ROUNDS, sample_s=0.0).median_s


def in_loop(functions) -> list[float]:
    times = [[] for _ in functions]
    for _ in range(ROUNDS):
        for i, fn in enumerate(functions):
            start = time.perf_counter()
            fn()
            times[i].append(time.perf_counter() - start)
    return [float(np.median(t)) for t in times]


def table(title: str, labelled) -> float:
    for _, fn in labelled:  # first sight: auto's timing, compilation
        fn()
    single = [alone(fn) for _, fn in labelled]
    looped = in_loop([fn for _, fn in labelled])
    print(f"\n## {title}\n\n| call | alone (ms) | in the loop (ms) | loop / alone |\n|---|---:|---:|---:|")
    for (label, _), a, b in zip(labelled, single, looped, strict=True):
        print(f"| {label} | {a * 1e3:.2f} | {b * 1e3:.2f} | {b / a:.2f} |")
    ratio = sum(looped) / sum(single)
    print(f"| **the loop** | {sum(single) * 1e3:.2f} | {sum(looped) * 1e3:.2f} | **{ratio:.2f}** |")
    return ratio


def main():
    info = machine_info(gpu=False)
    print("# auto in a loop of alternating layer calls\n")
    print(f"Machine: {info['cpu']}, {info['vector_isa']}, {info['cores']} cores; BLAS {info.get('blas')} on "
          f"{info.get('blas_threads')} threads; Numba on {info.get('numba_threads')} threads. float32, padding "
          f"\"same\", median of {ROUNDS} calls; a fresh wisdom file (auto at first sight).\n")
    labelled = calls()
    for _, fn in labelled:  # first sight: auto's timing, compilation
        fn()
    print("auto's choices: " + "; ".join(f"{shape}: forward {chosen[0]}, backward {chosen[1]}"
                                         for shape, chosen in zip(SHAPES, choices(), strict=True)))
    table("auto, as users call it", labelled)
    table("im2col for the first shape, numba for the second", calls(("im2col", "numba")))
    rest = _threads.rest_blas_threads
    _threads.rest_blas_threads = lambda: False
    try:
        table("the same, OpenBLAS's threads left spinning (before the fix)", calls(("im2col", "numba")))
    finally:
        _threads.rest_blas_threads = rest


if __name__ == "__main__":
    main()
