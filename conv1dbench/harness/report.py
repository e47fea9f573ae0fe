"""The report: one tidy table (a row per measurement) to CSV, Markdown and PNG plots.

Everything in the Markdown is computed from the saved run (``run.json``: the machine, the measured
peak, the rows), so ``conv1dbench report`` rebuilds exactly the same file from the same data.  A
pytest-benchmark JSON file (``pytest --benchmark-only`` writes one) converts to the same run
(:func:`from_pytest_benchmark`).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from .._registry import BACKEND_NAMES
from .grid import PARAMS
from .runner import Run

#: Columns of the tidy table, in order.
COLUMNS = ["impl", "kind", "shape"] + PARAMS + ["status", "reason", "median_s", "q25_s", "q75_s", "calls",
                                                "first_call_s", "gflops", "max_error", "chose", "round"]
OURS = BACKEND_NAMES
PEER_COLUMNS = {"signal": ("scipy", "numpy", "oaconvolve", "torch"), "layer": ("torch",)}


def tidy(run: Run):
    """The rows as a DataFrame with exactly :data:`COLUMNS` (missing values NaN)."""
    import pandas as pd  # import time: pandas takes a third of a second, the harness's workers never need it

    frame = pd.DataFrame(run.rows)
    for column in COLUMNS:
        if column not in frame:
            frame[column] = np.nan
    return frame[COLUMNS]


def write(run: Run, folder: Path, stem: str = "results", plots: bool = True) -> list[Path]:
    """Write ``<stem>.json`` (the run), ``<stem>.csv``, ``<stem>.md`` and the plots into ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frame = tidy(run)
    paths = [folder / f"{stem}.json", folder / f"{stem}.csv", folder / f"{stem}.md"]
    run.save(paths[0])
    frame.to_csv(paths[1], index=False)
    images = []
    if plots and importlib.util.find_spec("matplotlib") is None:
        print("conv1dbench: plots skipped: matplotlib is not installed (pip install 'conv1dbench[plot]')",
              file=sys.stderr)
    elif plots:
        from . import plots as plotting  # optional dependency: matplotlib
        images = plotting.write_all(frame, run.meta.get("peak", {}), folder)
    paths[2].write_text(markdown(run, frame, [p.name for p in images]))
    return paths + images


def _fmt_ratio(value) -> str:
    return "-" if not np.isfinite(value) else f"{value:.2f}x" if value < 10 else f"{value:.0f}x"


def _best_table(frame):
    """Per point: the fastest of our backends (not auto), its time, and every implementation's time."""
    ok = frame[frame.status == "ok"]
    key = ["api", "pass", "dtype", "mode", "shape"]
    times = ok.pivot_table(index=key, columns="impl", values="median_s", aggfunc="min")
    ours = [c for c in OURS if c in times]
    best_impl = times[ours].idxmin(axis=1)
    return times, best_impl, key


def markdown(run: Run, frame, images: list[str] = ()) -> str:
    meta = run.meta
    peak = meta.get("peak", {})
    lines = [f"# conv1dbench results: {meta.get('grid') or 'custom'} grid", "",
             f"Command: `{meta.get('command')}`  ", f"Date: {meta.get('date')}", "", "## Machine", ""]
    lines += [f"- {k}: {v}" for k, v in meta.get("machine", {}).items()]
    lines += [f"- isolation: {meta.get('isolation')}"]
    if meta.get("worker_environment"):
        lines.append(f"- worker environment: {' '.join(f'{k}={v}' for k, v in meta['worker_environment'].items())}")
    lines += [f"- timing: median of adaptive repeats, at least {meta.get('min_samples')} samples and "
              f"{meta.get('min_time_s')} s per measurement; the first call (JIT compilation, page faults) apart"
              + (f"; the best of {meta['rounds']} rounds (the order of implementations rotated each round)"
                 if meta.get("rounds", 1) > 1 else "")]
    if meta.get("auto"):
        auto = meta["auto"]
        learned = ", ".join(auto["models_from_wisdom"]) or "none"
        lines.append(f"- auto decided from: the shipped cost models ({auto['shipped_models']}); "
                     f"{auto['measurements']} timings of this machine in the wisdom file {auto['wisdom']}; "
                     f"models refitted from them: {learned}")
    if peak:
        gemm = ", ".join(f"{d} {v:.0f} GFLOP/s" for d, v in peak.get("gemm_gflops", {}).items())
        lines += ["", "## This machine's measured peak", "",
                  f"- GEMM (2048 x 2048 matrix product, NumPy's BLAS, all threads): {gemm}",
                  f"- memory bandwidth (256 MiB copy, read + write): {peak.get('bandwidth_gbs')} GB/s"]
    times, best_impl, key = _best_table(frame)
    fastest_rows = (frame[frame.status == "ok"].sort_values("median_s").groupby(key + ["impl"]).head(1)
                    .set_index(key + ["impl"]))
    paired = _auto_checks(meta)
    lines += ["", "## Findings", ""] + _findings(frame, times, best_impl, paired)
    for group, sub in times.groupby(level=[0, 1, 2, 3], sort=True):
        api, direction, dtype, mode = group
        title = (f"Signals: {dtype}, mode \"{mode}\"" if api == "signal"
                 else f"Layers: {direction}, {dtype}, padding {mode}")
        peers = [p for p in PEER_COLUMNS[api] if p in sub and sub[p].notna().any()]
        lines += ["", f"## {title}", "",
                  "| point | fastest of ours | ms | GFLOP/s | % GEMM peak | " + " | ".join(f"vs {p}" for p in peers)
                  + " | auto / fastest | max error |", "|---|---|---:|---:|---:|" + "---:|" * (len(peers) + 2)]
        for index, r in sub.iterrows():
            shape = index[4]
            name = best_impl[index]
            row = fastest_rows.loc[index + (name,)]
            pct = 100 * row.gflops / peak.get("gemm_gflops", {}).get(dtype, np.nan)
            ratios = [_fmt_ratio(r.get(p, np.nan) / r[name]) for p in peers]
            auto = _fmt_ratio(paired[index]["ratio"] if index in paired else r.get("auto", np.nan) / r[name])
            lines.append(f"| {shape} | {name} | {r[name] * 1e3:.3g} | {row.gflops:.3g} | {pct:.0f}% | "
                         + " | ".join(ratios) + f" | {auto} | {row.max_error:.1e} |")
    lines += ["", "`vs X` = X's time / the fastest of our backends' time (above 1: ours is faster). "
              + ("`auto / fastest`: auto's regret, timed beside the fastest backend (see *Auto's choices*). "
                 if paired else "")
              + 
              "Max error of the fastest, against a float64 reference: signals `max|y - ref| / (max|x| sum|w|)`, "
              "layers `max|y - ref| / max|ref|`."]
    lines += ["", "## First call (JIT compilation, caches, page faults)", "",
              "| implementation | median first call (ms) | slowest first call (ms) |", "|---|---:|---:|"]
    ok = frame[frame.status == "ok"]
    for impl, sub in ok.groupby("impl", sort=True):
        lines.append(f"| {impl} | {sub.first_call_s.median() * 1e3:.3g} | {sub.first_call_s.max() * 1e3:.3g} |")
    lines += _auto_section(meta, times) + _skips(frame) + _interference(meta)
    if images:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def _findings(frame, times, best_impl, paired) -> list[str]:
    import pandas as pd  # import time (see tidy)

    out = []
    for (api, dtype), sub in times.groupby(level=[0, 2], sort=True):
        wins = best_impl[sub.index].value_counts()
        text = ", ".join(f"{name} {count}" for name, count in wins.items())
        line = f"- {api}s, {dtype}: fastest of ours per point: {text} (of {len(sub)})"
        best = sub[[c for c in OURS if c in sub]].min(axis=1)
        peer = {"signal": ("scipy", "scipy.signal.convolve"), "layer": ("torch", "torch")}[api]
        if peer[0] in sub:
            line += _spread(f"vs {peer[1]}", sub[peer[0]] / best)
        if "auto" in sub:
            regret = (np.array([paired[index]["ratio"] for index in sub.index if index in paired]) if paired
                      else (sub["auto"] / best).dropna().to_numpy())
            if len(regret):
                line += f"; auto / fastest: median {np.median(regret):.2f}, worst {regret.max():.2f}"
            if api == "signal" and "scipy" in sub:
                sweep = sub["scipy"] / sub["auto"]
                beside = pd.Series({i: _scipy_over_auto(paired[i]) for i in sub.index if i in paired},
                                   dtype=float).dropna()
                if len(beside):  # timed in one loop with auto; the sweep's ratio beside it
                    line += (_spread("auto vs scipy.signal.convolve, timed in turn", beside)
                             + _spread("in the sweep's best rounds", sweep))
                else:
                    line += _spread("auto vs scipy.signal.convolve", sweep)
        out.append(line)
    return out


def _auto_checks(meta) -> dict:
    """The runner's side-by-side check of auto (its regret, and scipy beside it), keyed like the report's tables."""
    return {(c["api"], c["pass"], c["dtype"], c["mode"], c["shape"]): c for c in meta.get("auto_check", [])}


def _scipy_over_auto(check: dict) -> float:
    """scipy's time over auto's, timed as a pair in the auto check (NaN where scipy was not)."""
    return check["scipy_s"] / check["auto_beside_scipy_s"] if "scipy_s" in check else np.nan


def _auto_section(meta, times) -> list[str]:
    checks = meta.get("auto_check")
    if not checks:
        return []
    right = sum(c["chose"] == c["fastest"] for c in checks)
    ratios = np.array([c["ratio"] for c in checks])
    speedups = np.array([_scipy_over_auto(c) for c in checks])
    speedups = speedups[np.isfinite(speedups)]
    lines = ["", "## Auto's choices", "",
             "After the sweep, auto and the backend fastest at each point (best of rounds) were timed again in one "
             "process, in turn sample by sample, so that a slow stretch of this shared machine hits both alike; "
             "`auto / fastest` is auto's regret. At signal points auto was timed the same way beside "
             "scipy.signal.convolve (`scipy / auto`: above 1, auto is faster). The sweep's own ratio (best of rounds of each, timed "
             "in separate processes at different minutes) is shown beside it.", "",
             f"- auto chose the fastest backend at {right} of {len(checks)} points",
             f"- regret: median {np.median(ratios):.2f}, worst {ratios.max():.2f}; "
             f"above 1.1 at {int((ratios > 1.1).sum())} of them"]
    if len(speedups):
        lines.append(f"- auto vs scipy.signal.convolve: median {_fmt_ratio(np.median(speedups))}, worst "
                     f"{_fmt_ratio(speedups.min())}; slower than scipy at {int((speedups < 1).sum())} of "
                     f"{len(speedups)} signal points")
    lines += ["", "Points where auto chose another backend, its regret is above 1.1, or scipy was faster:", "",
              "| point | fastest | auto chose | fastest (ms) | auto (ms) | auto / fastest | in the sweep | scipy / auto |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for c in sorted(checks, key=lambda c: -c["ratio"]):
        vs_scipy = _scipy_over_auto(c)
        if c["chose"] == c["fastest"] and c["ratio"] <= 1.1 and not vs_scipy < 1:
            continue
        index = (c["api"], c["pass"], c["dtype"], c["mode"], c["shape"])
        sweep = times.loc[index, "auto"] / times.loc[index, c["fastest"]] if index in times.index else np.nan
        lines.append(f"| {c['api']} {c['shape']} {c['pass']} {c['dtype']} {c['mode']} | {c['fastest']} | {c['chose']} | "
                     f"{c['fastest_s'] * 1e3:.3g} | {c['auto_s'] * 1e3:.3g} | {c['ratio']:.2f} | {sweep:.2f} | "
                     f"{_fmt_ratio(vs_scipy)} |")
    return lines


def _spread(what: str, ratios) -> str:
    """``; <what>: median Ax, range Bx to Cx`` (speedups), or nothing where there is no data."""
    ratios = ratios.dropna()
    if not len(ratios):
        return ""
    return (f"; {what}: median {_fmt_ratio(ratios.median())}, range {_fmt_ratio(ratios.min())} "
            f"to {_fmt_ratio(ratios.max())}")


def _skips(frame) -> list[str]:
    rest = frame[frame.status != "ok"]
    if rest.empty:
        return []
    lines = ["", "## Skipped and failed", "", "| implementation | status | measurements | reason |", "|---|---|---:|---|"]
    for (impl, status, reason), sub in rest.groupby(["impl", "status", "reason"], sort=True, dropna=False):
        shown = str(reason).split(": ")[0] if str(reason).startswith("predicted too slow") else reason
        lines.append(f"| {impl} | {status} | {len(sub)} | {shown} |")
    return lines


def _interference(meta) -> list[str]:
    checks = meta.get("interference")
    if not checks:
        return []
    lines = ["", "## Interference check", "",
             "The same point timed again with every implementation in one shared process, after the sweep "
             "(ratio above 1: slower when the others' thread pools are present).", "",
             "| implementation | point | isolated (ms) | shared (ms) | shared / isolated |", "|---|---|---:|---:|---:|"]
    for c in checks:
        lines.append(f"| {c['impl']} | {c['point']} | {c['isolated_s'] * 1e3:.3g} | {c['shared_s'] * 1e3:.3g} | "
                     f"{c['ratio']:.2f} |")
    return lines


def from_pytest_benchmark(path: Path) -> Run:
    """A run from pytest-benchmark's JSON: the tidy row is in ``extra_info``, the timing in ``stats``."""
    raw = json.loads(Path(path).read_text())
    rows = []
    for bench in raw.get("benchmarks", []):
        row = dict(bench.get("extra_info", {}))
        stats = bench.get("stats") or {}
        if row.get("status", "ok") == "ok" and stats:
            row.update(status="ok", median_s=stats["median"], q25_s=stats["q1"], q75_s=stats["q3"],
                       calls=stats["rounds"] * stats.get("iterations", 1))
            if row.get("flops"):
                row["gflops"] = row["flops"] / stats["median"] / 1e9
        rows.append(row)
    meta = dict(raw.get("conv1dbench") or {"machine": raw.get("machine_info", {}), "grid": None})
    meta.setdefault("command", "pytest --benchmark-only")
    rows += meta.pop("skipped", [])  # skipped from a predicted cost: no benchmark entry, but a row
    return Run(meta, rows)
