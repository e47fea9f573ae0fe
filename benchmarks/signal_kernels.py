"""The numba backend's signal kernel against the one before it, on every signal point of the default grid.

Issue 14, point 3: the register tiles (the row tile of :mod:`conv1dbench._backends._tiles`) replace the
tap-pass loops (``conv1dbench._backends.numba._forward``, still there for complex and int64, and for
kernels of fewer than ``numba.row_min_pairs`` taps) for float signals.  Both compute the same core
problem (:func:`conv1dbench.harness.grid.problem`), timed sample by sample in turn in this one process
(:func:`conv1dbench.timing.measure_interleaved`; both are Numba's, so neither leaves threads spinning
that the other would meet), with the backend's thread choice.  The
measured GEMM rate is the reference for GFLOP/s.  Run::

    python benchmarks/signal_kernels.py --out results/<machine>/signal_kernels.md
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from conv1dbench import _params
from conv1dbench._backends import _simd
from conv1dbench._backends import numba as backend
from conv1dbench.harness import grid
from conv1dbench.harness.fma import checked_fma_peak
from conv1dbench.machine import machine_info
from conv1dbench.timing import measure_interleaved


def _arrays(p, rng):
    x = rng.standard_normal((p.batch, p.c_in, p.length)).astype(p.dtype)
    w = rng.standard_normal((p.c_out, p.c_in // p.groups, p.taps)).astype(p.dtype)
    return x, w, np.empty((p.batch, p.c_out, p.l_out), dtype=p.dtype)


def _row(point, min_time_s, rng) -> dict:
    p = grid.problem(point)
    x, w, y = _arrays(p, rng)
    threads = backend._threads(x, w)

    def loops():
        backend._forward(x, w, p.pad_left, p.stride, p.dilation, p.groups, threads, y)

    def tiles():  # the backend's kernel now: the row tile where it fits (_tiles.fits), else the loops
        backend._core_forward(x, w, p.pad_left, p.stride, p.dilation, p.groups, threads, y, *backend.knobs())

    old, new = measure_interleaved([loops, tiles], min_time_s=min_time_s)
    flop = p.flops
    return {"dtype": p.dtype.name, "N": point["N"], "K": point["K"], "mode": point["mode"], "batch": p.batch,
            "threads": threads, "loops_s": old.median_s, "tiles_s": new.median_s, "ratio": old.median_s / new.median_s,
            "gflops": flop / new.median_s / 1e9}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="signal_kernels.md", help="the Markdown file (results/<machine>/...)")
    parser.add_argument("--min-time", type=float, default=0.3, help="seconds of alternated samples per point")
    args = parser.parse_args(argv)
    points = [p for p in grid.grid("default") if p["api"] == "signal"]
    peak, _ = checked_fma_peak()
    rng = np.random.default_rng(0)
    rows, started = [], time.perf_counter()
    for i, point in enumerate(points):
        rows.append(_row(point, args.min_time, rng))
        elapsed = time.perf_counter() - started
        print(f"\r{i + 1}/{len(points)} points, about {elapsed / (i + 1) * (len(points) - i - 1):.0f} s left ",
              end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    Path(args.out).write_text(_markdown(rows, peak))
    print(f"wrote {args.out}")
    return 0


def _markdown(rows, peak) -> str:
    info = machine_info()
    isa = _simd.target_isa()
    ratios = np.array([r["ratio"] for r in rows])
    worst = min(rows, key=lambda r: r["ratio"])
    long = [r for r in rows if r["dtype"] == "float32" and r["K"] >= 63 and r["N"] >= 10**5]
    share = np.array([r["gflops"] / peak["float32"] for r in long])
    lines = [
        "# numba signal kernel: the register tiles (where they fit) against the tap-pass loops",
        "",
        f"`python benchmarks/signal_kernels.py`, {time.strftime('%Y-%m-%d %H:%M')}. Machine: "
        f"{info.get('cpu', '?')}, {info.get('cores', '?')} cores; kernels compiled for {isa.name} "
        f"({isa.bits}-bit vectors, {isa.registers} registers), row tile of "
        f"{_params.value('numba.row_vectors')} vectors for kernels of {_params.value('numba.row_min_pairs')} taps "
        "or more (the kernel parameters in force); "
        f"BLAS {info.get('blas', '?')}; "
        f"measured FMA peak {peak['float32']:.0f} GFLOP/s float32, {peak['float64']:.0f} float64 (all threads).",
        "",
        f"Every signal point of the default grid ({len(rows)}), both kernels timed in turn in one process. "
        f"Speed-up of the kernel now (loops' time / its time): median {np.median(ratios):.2f}x, "
        f"worst {worst['ratio']:.2f}x ({worst['dtype']}, N={worst['N']}, K={worst['K']}, {worst['mode']}); "
        f"{int((ratios < 1 / 1.05).sum())} points more than 5% slower. float32, K >= 63, N >= 10^5: "
        f"{share.min():.0%}-{share.max():.0%} of the FMA peak (median {np.median(share):.0%}).",
        "",
        "| dtype | N | K | mode | batch | threads | loops (ms) | now (ms) | speed-up | now GFLOP/s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['dtype']} | {r['N']} | {r['K']} | {r['mode']} | {r['batch']} | {r['threads']} | "
                     f"{r['loops_s'] * 1e3:.4g} | {r['tiles_s'] * 1e3:.4g} | {r['ratio']:.2f} | {r['gflops']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
