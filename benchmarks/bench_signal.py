"""Signal-API benchmark: every backend against numpy.convolve and scipy.signal, mode "full".

    python benchmarks/bench_signal.py            # the grid of the issue, ~5 minutes on 2 cores
    python benchmarks/bench_signal.py --quick    # a smoke run of a few small points

Each implementation (our backends, ``auto``, and the peers) is timed in a process of its own, one after
the other, so that Numba's, OpenBLAS's and pocketfft's thread pools never compete or oversubscribe the
cores.  Every point is timed with :func:`conv1dbench.timing.measure` (first call with JIT compilation
reported apart, then the median of adaptive repeats).  The whole sweep runs ``--rounds`` times, the
order of the implementations rotated each round, and a point's time is the smallest of its per-round
medians: on a shared virtual machine the speed of the same process varies by up to 2x from minute to
minute, and the best round is the one least disturbed.  The table is printed and written, with the
machine it ran on, to ``results/``.
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import common
from common import run_workers

OURS = ["naive", "im2col", "fft", "numba", "auto"]
PEERS = ["numpy.convolve", "scipy.signal.convolve", "scipy.signal.oaconvolve"]
GRID = {"dtype": ["float32", "float64"], "n": [10**4, 10**5, 10**6], "k": [3, 15, 63, 255, 1023]}
QUICK = {"dtype": ["float32", "float64"], "n": [10**4], "k": [3, 255]}
#: naive does K NumPy slice operations of N elements; skip it where that is predicted to take > ~0.5 s
NAIVE_MAX_MACS = 5 * 10**7


def implementation(name: str):
    """A function ``f(x, w)`` computing the full convolution with implementation ``name``."""
    if name in OURS:
        import conv1dbench as cb
        return lambda x, w: cb.convolve(x, w, "full", backend=name)
    if name == "numpy.convolve":
        return lambda x, w: np.convolve(x, w, "full")
    import scipy.signal
    if name == "scipy.signal.convolve":
        return lambda x, w: scipy.signal.convolve(x, w, "full", method="auto")
    return lambda x, w: scipy.signal.oaconvolve(x, w, "full")


def skip_reason(name: str, n: int, k: int) -> str | None:
    if name == "naive" and n * k > NAIVE_MAX_MACS:
        return f"predicted too slow: {n * k:.1e} multiply-adds in Python-driven slices"
    return None


def worker(name: str, grid: dict, min_time_s: float) -> None:
    """Time one implementation over the grid; one JSON line per point on stdout."""
    from conv1dbench.timing import measure

    f = implementation(name)
    rng = np.random.default_rng(0)
    for dtype in grid["dtype"]:
        for n in grid["n"]:
            for k in grid["k"]:
                row = {"impl": name, "dtype": dtype, "n": n, "k": k}
                reason = skip_reason(name, n, k)
                if reason:
                    row["skipped"] = reason
                else:
                    x = rng.standard_normal(n).astype(dtype)
                    w = rng.standard_normal(k).astype(dtype)
                    t = measure(lambda: f(x, w), min_time_s=min_time_s, min_samples=3)
                    row.update(median_s=t.median_s, q25_s=t.q25_s, q75_s=t.q75_s, first_call_s=t.first_call_s)
                print(json.dumps(row), flush=True)
    if name in ("numba", "auto"):
        import numba
        print(json.dumps({"impl": name, "numba_threading_layer": numba.threading_layer()}), flush=True)


def markdown(table, lines: list[str], checks: list[str]) -> str:
    lines = list(lines)
    lines += ["", "## Median time per call (ms), and speed relative to scipy.signal.convolve (auto)", "",
              "`x1.00` = as fast as scipy; higher is faster. `-` = skipped (predicted too slow). "
              "Each cell is the best of the rounds' medians; all rounds are in the CSV.", ""]
    cols = OURS + PEERS
    lines.append("| dtype | N | K | " + " | ".join(cols) + " |")
    lines.append("|---|---:|---:|" + "---:|" * len(cols))
    for (dtype, n, k), r in table.iterrows():
        ref = r[("median_s", "scipy.signal.convolve")]
        cells = []
        for c in cols:
            t = r[("median_s", c)]
            cells.append("-" if not np.isfinite(t) else f"{t * 1e3:.3g} (x{ref / t:.2f})")
        lines.append(f"| {dtype} | {n:.0e} | {k} | " + " | ".join(cells) + " |")
    lines += ["", "## Targets (issue 2)", ""] + ([f"- {c}" for c in checks] or ["- not checked on the quick grid"]) + [""]
    return "\n".join(lines)


def check_targets(t) -> list[str]:
    """The issue's speed targets, each stated with the numbers that decide it."""
    out = []
    numba, scipy_, numpy_ = t["numba"], t["scipy.signal.convolve"], t["numpy.convolve"]
    mid = t.index.get_level_values("k").isin([15, 63, 255]) & (t.index.get_level_values("n") >= 10**5)
    ratio = (scipy_ / numba)[mid]
    out.append(f"numba >= 3x scipy.signal.convolve for K in 15..255, N >= 1e5: worst x{ratio.min():.2f} "
               f"at {ratio.idxmin()} -> {'PASS' if ratio.min() >= 3 else 'FAIL'}")
    ratio = numpy_ / numba
    out.append(f"numba >= 0.9x numpy.convolve at every point: worst x{ratio.min():.2f} at {ratio.idxmin()} "
               f"-> {'PASS' if ratio.min() >= 0.9 else 'FAIL'}")
    big = t.index.get_level_values("k") == 1023
    best = t[["im2col", "fft", "numba"]].min(axis=1)[big]
    ratio = t["scipy.signal.oaconvolve"][big] / best
    out.append(f"best backend >= scipy.signal.oaconvolve at K = 1023: worst x{ratio.min():.2f} at {ratio.idxmin()} "
               f"-> {'PASS' if ratio.min() >= 1 else 'FAIL'}")
    return out


def main(argv=None) -> None:
    parser = common.parser(__doc__.split("\n\n")[0], quick_help="a few small points only (smoke test)", min_time_s=0.2, rounds=3)
    parser.add_argument("--grid", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, json.loads(args.grid), args.min_time)

    import pandas as pd

    grid = QUICK if args.quick else GRID
    rows = run_workers(__file__, OURS + PEERS, ["--grid", json.dumps(grid), "--min-time", str(args.min_time)],
                       1 if args.quick else args.rounds)
    layers = {r["impl"]: r["numba_threading_layer"] for r in rows if "numba_threading_layer" in r}
    frame = pd.DataFrame([r for r in rows if "dtype" in r])
    table = frame.pivot_table(index=["dtype", "n", "k"], columns="impl", values=["median_s"], aggfunc="min",
                              dropna=False)
    table = table.reindex(columns=pd.MultiIndex.from_product([["median_s"], OURS + PEERS]))
    lines = common.header('Signal benchmark: conv1dbench backends vs numpy / scipy (mode "full")',
                          "bench_signal.py", argv, numba_threading_layer_used=layers.get("numba"))
    checks = [] if args.quick else check_targets(table["median_s"])
    common.write(args.out, "signal_quick" if args.quick else "signal", markdown(table, lines, checks), frame)


if __name__ == "__main__":
    main()
