"""The report: one tidy table (a row per measurement) to CSV, Markdown and PNG plots.

Everything in the Markdown is computed from the saved run (``run.json``: the machine, the measured
peak, the rows), so ``conv1dbench report`` rebuilds exactly the same file from the same data.  A
pytest-benchmark JSON file (``pytest --benchmark-only`` writes one) converts to the same run
(:func:`from_pytest_benchmark`).

Rows of the GPU and out-of-core grids (their ``suite`` column) get sections of their own
(:func:`gpu_sections`, :func:`out_of_core_section`) instead of the CPU tables and plots; the
crossover grid's rows get the CPU tables and a crossover table (:func:`crossover_section`).  The CPU
grids' rows also get how each peer was called (:func:`peers_section`) and, at signal points, our FFT
engines against oaconvolve and its variants (:func:`fft_engines_section`).
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

from .._registry import BACKEND_NAMES, module
from . import peers as peer_specs
from . import stability
from .cases import AUTO_ONE_THREAD, DEVICE_VARIANT, ours_alone
from .grid import PARAMS, in_fft_regime
from .peak import peak_gflops
from .runner import CHECK_ROUNDS, Run

#: Columns of the tidy table, in order.
COLUMNS = ["impl", "kind", "shape"] + PARAMS + ["status", "reason", "median_s", "q25_s", "q75_s", "calls",
                                                "first_call_s", "gflops", "max_error", "chose", "round",
                                                "device", "threads", "msamples_per_s", "rss_before_gib",
                                                "peak_rss_gib"]
#: Suites whose rows have sections of their own instead of the CPU tables.
OWN_SECTIONS = ("gpu", "dask")
#: The GPU targets: (peer, API, least speed of ours relative to the peer, the peer's name, where).
GPU_TARGETS = (("torch-gpu", "layer", 0.5, "cuDNN (torch-gpu)", "every layer shape and pass"),
               ("cupy", "signal", 1.0, "CuPy", "every long signal (N >= 10**6)"))
LONG_SIGNAL = 10**6
OURS = BACKEND_NAMES
PEER_COLUMNS = {"signal": peer_specs.of("signal"), "layer": peer_specs.of("layer")}
#: The peers our FFT engines are set against (:func:`fft_engines_section`): one algorithm, several FFT setups.
FFT_PEERS = peer_specs.of("signal", fft=True)


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
    standard = frame[~suites(frame).isin(OWN_SECTIONS)]  # the plots draw the CPU grids' rows
    if plots and importlib.util.find_spec("matplotlib") is None:
        print("conv1dbench: plots skipped: matplotlib is not installed (pip install 'conv1dbench[plot]')",
              file=sys.stderr)
    elif plots and not standard.empty:
        from . import plots as plotting  # optional dependency: matplotlib
        images = plotting.write_all(standard, run.meta.get("peak", {}), folder,
                                    run.meta.get("machine", {}).get("numba_threads"))
    paths[2].write_text(markdown(run, frame, [p.name for p in images]))
    return paths + images


def suites(frame):
    """Each row's suite (``"cpu"`` where the column is empty), as a Series aligned with ``frame``."""
    return frame["suite"].where(frame["suite"].notna(), "cpu")


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
    of = suites(frame)
    standard = frame[~of.isin(OWN_SECTIONS)]
    lines = _header(meta, frame)
    lines += peers_section(meta, standard)
    if (standard.status == "ok").any():
        lines += _cpu_sections(meta, standard) + fft_engines_section(standard)
    lines += short_calls_section(meta)
    lines += (crossover_section(frame[of == "crossover"]) + gpu_sections(meta, frame[of == "gpu"])
              + out_of_core_section(meta, frame[of == "dask"]) + _skips(frame) + _interference(meta)
              + busy_section(meta) + memory_section(meta) + stability_section(run))
    if images:
        lines += ["", "## Plots", ""] + [f"![{name}]({name})" for name in images]
    return "\n".join(lines) + "\n"


def _header(meta, frame) -> list[str]:
    """The title, the command and the date, the machine and the settings, the measured peak."""
    peak = meta.get("peak", {})
    lines = [f"# conv1dbench results: {meta.get('grid') or 'custom'} grid", "",
             f"Command: `{meta.get('command')}`  ", f"Date: {meta.get('date')}"
             + (f"  \nDuration: {meta['duration_s'] / 60:.1f} minutes" if meta.get("duration_s") else ""),
             "", "## Machine", ""]
    lines += [f"- {k}: {', '.join(f'{n}: {v}' for n, v in v.items()) if isinstance(v, dict) else v}"
              for k, v in meta.get("machine", {}).items()]
    devices = sorted(set(frame["device"].dropna()))
    if devices:
        lines.append(f"- GPU: {', '.join(devices)}")
    lines += [f"- isolation: {meta.get('isolation')}"]
    if meta.get("worker_environment"):
        lines.append(f"- worker environment: {' '.join(f'{k}={v}' for k, v in meta['worker_environment'].items())}")
    lines.append(_memory_condition(meta))
    if meta.get("inherited_environment") and meta.get("worker_environment"):
        lines.append(f"- worker environment of the {len(meta['inherited_environment'])} points marked `env: "
                     "inherited` (out of core): the environment as it is, without those allocator settings")
    once = frame["calls"].eq(1) & suites(frame).eq("dask")
    lines += [f"- timing: median of adaptive repeats, at least {meta.get('min_samples')} samples and "
              f"{meta.get('min_time_s')} s per measurement; the first call (JIT compilation, page faults) apart"
              + (f"; the best of {meta['rounds']} rounds (the order of implementations rotated each round)"
                 if meta.get("rounds", 1) > 1 else "")
              + ("; out-of-core points: one call, after a tiny warm-up call" if once.any() else "")]
    if meta.get("auto"):
        auto = meta["auto"]
        learned = ", ".join(auto["models_from_wisdom"]) or "none"
        lines.append(f"- auto decided from: the shipped cost models ({auto['shipped_models']}); "
                     f"{auto['measurements']} timings of this machine in the wisdom file {auto['wisdom']}; "
                     f"models refitted from them: {learned}")
    if meta.get("params"):
        params = meta["params"]
        facts = params.get("facts", {})
        lines.append("- kernel parameters in force (`conv1dbench tune` measures them; defaults from "
                     f"{facts.get('vendor')}, {facts.get('isa')}, L1d {facts.get('l1d', 0) >> 10} KiB, "
                     f"L2 {facts.get('l2', 0) >> 10} KiB, "
                     f"L3 {facts.get('l3', 0) >> 20} MiB): "
                     + "; ".join(f"{name} = {p['value']:g} ({p['source']}"
                                 + (f", default {p['default']:g})" if p["source"] != "default" else ")")
                                 for name, p in params.get("params", {}).items()))
    if peak:
        gemm = ", ".join(f"{d} {v:.0f} GFLOP/s" for d, v in peak.get("gemm_gflops", {}).items())
        lines += ["", "## This machine's measured peak", ""]
        if peak.get("fma_gflops"):
            fma = ", ".join(f"{d} {v:.0f} GFLOP/s" for d, v in peak["fma_gflops"].items())
            lines.append(f"- FMA peak (register-only fused multiply-adds on the vector unit our kernels use, all "
                         f"threads, best sample): {fma}; \"% of peak\" below is a share of it"
                         + (f"; its check: {peak['fma_check']}" if peak.get("fma_check") else ""))
        lines += [f"- GEMM (2048 x 2048 matrix product, NumPy's BLAS, all threads): {gemm}",
                  f"- memory bandwidth (256 MiB copy, read + write): {peak.get('bandwidth_gbs')} GB/s"]
    return lines


def _cpu_sections(meta, frame) -> list[str]:
    """Findings, a table per (API, pass, dtype, mode), first calls and auto's choices, for the CPU grids."""
    peak = meta.get("peak", {})
    times, best_impl, key = _best_table(frame)
    fastest_rows = (frame[frame.status == "ok"].sort_values("median_s").groupby(key + ["impl"]).head(1)
                    .set_index(key + ["impl"]))
    paired = _auto_checks(meta)
    threads = meta.get("machine", {}).get("numba_threads", "T")
    lines = ["", "## Findings", ""] + _findings(frame, times, best_impl, paired, threads)
    for group, sub in times.groupby(level=[0, 1, 2, 3], sort=True):
        api, direction, dtype, mode = group
        title = (f"Signals: {dtype}, mode \"{mode}\"" if api == "signal"
                 else f"Layers: {direction}, {dtype}, padding {mode}")
        peers = [p for p in PEER_COLUMNS[api] if p in sub and sub[p].notna().any()]
        lines += ["", f"## {title}", "",
                  "| point | fastest of ours | ms | GFLOP/s | % of peak | " + " | ".join(f"vs {p}" for p in peers)
                  + " | auto / fastest | max error |", "|---|---|---:|---:|---:|" + "---:|" * (len(peers) + 2)]
        for index, r in sub.iterrows():
            shape = index[4]
            name = best_impl[index]
            row = fastest_rows.loc[index + (name,)]
            pct = 100 * row.gflops / peak_gflops(peak, dtype)[0]
            ratios = [_fmt_ratio(r.get(p, np.nan) / r[name]) for p in peers]
            auto = _fmt_ratio(paired[index]["ratio"] if index in paired else r.get("auto", np.nan) / r[name])
            lines.append(f"| {shape} | {name} | {r[name] * 1e3:.3g} | {row.gflops:.3g} | {pct:.0f}% | "
                         + " | ".join(ratios) + f" | {auto} | {row.max_error:.1e} |")
    lines += ["", "`vs X` = X's time / the fastest of our backends' time (above 1: ours is faster). "
              + ("`auto / fastest`: auto's regret, timed beside the fastest backend (see *Auto's choices*). "
                 if paired else "")
              + "Max error of the fastest, against a float64 reference, on docs/SPEC.md's scale (its tolerance, "
              "1e-5 float32 and 1e-12 float64, fails a measurement): signals `max|y - ref| / (max|x| sum|w|)`, "
              "layers `max|y - ref| / (max|x| max_o sum|w[o]|)` (backward: the gradients' own scales)."]
    lines += _first_calls(frame, "First call (JIT compilation, caches, page faults)")
    return lines + _auto_section(meta, times)


def peers_section(meta, frame) -> list[str]:
    """How each peer of the CPU grids in ``frame`` was called (its spec, :mod:`conv1dbench.harness.peers`):
    library, licence, threads and call, with the run's thread count, Numba's
    (``meta["machine"]["numba_threads"]``)."""
    named = [p for p in peer_specs.CPU if p in set(frame.impl)]
    if not named:
        return []
    threads = meta.get("machine", {}).get("numba_threads", "T")
    return (["", "## Peers", "", "Each peer's timed call, its data made before the timing; a peer given threads "
             f"gets {threads}, the thread count of our backends in this run (Numba's):", ""]
            + [_peer_line(peer_specs.REGISTRY[p], threads) for p in named])


def peer_threads_text(peer, threads) -> str:
    """A peer's threads in a run whose backends had ``threads``: 1, that count, or "its own pool"."""
    return {"one": "1", "ours": str(threads), "its own": "its own pool"}[peer.threads]


def _peer_line(peer, threads) -> str:
    return (f"- {peer.name} ({peer.library}; {peer.licence}; threads: {peer_threads_text(peer, threads)}): "
            f"{peer.call.format(threads=threads)}")


def fft_engines() -> list[str]:
    """Our FFT engines: the backends whose module declares ``RULE = "fourier"``."""
    return _ruled("fourier")


def direct_cpu_backends() -> list[str]:
    """Our direct CPU kernels: the backends declaring ``RULE = "direct"`` that run on the CPU (the register
    tiles)."""
    return [n for n in _ruled("direct") if not module(n).DEVICE]


def _ruled(rule: str) -> list[str]:
    return [n for n in OURS if (declared := module(n)) is not None and declared.RULE == rule]


def fft_engines_section(frame, engines: list[str] | None = None) -> list[str]:
    """Per signal point where one of our FFT engines (``engines``, default :func:`fft_engines`) ran: what
    ``backend="auto"`` delivered there (its choice, its time, each of :data:`FFT_PEERS` over it), then the
    fastest of the engines, picked after the fact (labelled so), with its threads where the rows say; and the
    median and minimum of each ratio over the points of the FFT regime
    (:func:`conv1dbench.harness.grid.in_fft_regime`), auto's first."""
    import pandas as pd  # import time (see tidy)

    engines = fft_engines() if engines is None else engines
    ok = frame[(frame.status == "ok") & (frame.api == "signal")]
    ran = ok[ok.impl.isin(engines)]
    if ran.empty:
        return []
    key = ["dtype", "mode", "shape"]
    fastest = ran.sort_values("median_s").groupby(key, sort=False).head(1).set_index(key)
    auto = ok[ok.impl == "auto"].sort_values("median_s").groupby(key, sort=False).head(1).set_index(key)
    peers = [p for p in FFT_PEERS if p in set(ok.impl)]
    times = ok[ok.impl.isin(peers)].pivot_table(index=key, columns="impl", values="median_s", aggfunc="min")
    threads = bool(fastest["threads"].notna().any())
    lines = ["", "## FFT engines against oaconvolve", "",
             f"Signal points where our FFT engines ({', '.join(engines)}) ran. First what `backend=\"auto\"` "
             "delivered: the backend it chose, its time, and each oaconvolve variant's time over it (above 1: auto is "
             "faster; *Peers* says how each was called, with the threads of our backends). Then, labelled as such, "
             "the best of our engines picked after the fact at each point. `regime`: the point is in the FFT "
             "regime, where the FFT engines' targets are judged (K >= 511 with N >= 10^4, K >= 255 with "
             "N >= 10^6).", "",
             _row(["point", "dtype", "mode", "regime", "auto chose", "auto ms"] + [f"{p} / auto" for p in peers]
                  + ["best engine (after the fact)"] + (["threads"] if threads else []) + ["ms"]
                  + [f"{p} / best" for p in peers]),
             _row(["---"] * 5 + ["---:"] * (1 + len(peers)) + ["---"] + ["---:"] * (int(threads) + 1 + len(peers)))]
    ratios = {(who, p): [] for who in ("auto", "best") for p in peers}
    for index, r in fastest.sort_values(["dtype", "mode", "batch", "K", "N"]).iterrows():
        dtype, mode, shape = index
        regime = in_fft_regime({name: value for name, value in r.items() if pd.notna(value)})  # NaN: no such key
        cells = [shape, dtype, mode, "yes" if regime else ""]
        mine = auto.loc[index] if index in auto.index else None
        cells += [str(mine.chose) if mine is not None else "-",
                  f"{mine.median_s * 1e3:.3g}" if mine is not None else "-"]
        for who, seconds in (("auto", mine.median_s if mine is not None else np.nan), ("best", r.median_s)):
            if who == "best":
                cells.append(r.impl)
                if threads:
                    cells.append(f"{r.threads:.0f}" if np.isfinite(r.threads) else "-")
                cells.append(f"{r.median_s * 1e3:.3g}")
            for p in peers:
                ratio = times[p].get(index, np.nan) / seconds if p in times else np.nan
                cells.append(_fmt_ratio(ratio))
                if regime and np.isfinite(ratio):
                    ratios[(who, p)].append(ratio)
        lines.append(_row(cells))
    lines.append("")
    label = {"auto": "auto (what users get)", "best": "best of our engines, picked after the fact"}
    summary = [f"- {p} / {label[who]}, over the FFT regime's {len(v)} points: median {_fmt_ratio(np.median(v))}, "
               f"minimum {_fmt_ratio(np.min(v))}" for (who, p), v in ratios.items() if v]
    return lines + (summary or ["- no point of the FFT regime with an oaconvolve variant timed in this run"])


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def short_calls_section(meta) -> list[str]:
    """The short-call check (``meta["short_calls"]``) against its targets, and the fresh processes'
    import and first calls (``meta["fresh_process"]``)."""
    checks, fresh = meta.get("short_calls") or [], meta.get("fresh_process")
    if not checks and not fresh:
        return []
    lines = ["", "## Short calls", ""]
    if checks:
        met = sum(c["met"] for c in checks)
        lines += ["`conv1dbench.convolve(x, w)` as a user calls it (auto, 1-D, one float dtype), timed in one "
                  "process in turn, sample by sample, with `numpy.convolve(x, w)` on the same data, after the "
                  "sweep: medians of warm calls (each sample a loop of about 2 ms of calls). Target: "
                  "`convolve / numpy` at most the number given.", "",
                  f"- targets met at {met} of {len(checks)} points", "",
                  "| point | dtype | mode | auto ran | convolve (µs) | numpy.convolve (µs) | convolve / numpy "
                  "| target | met |", "|---|---|---|---|---:|---:|---:|---:|---|"]
        for c in checks:
            lines.append(f"| {c['shape']} | {c['dtype']} | {c['mode']} | {c['chose']} | {c['convolve_s'] * 1e6:.2f} | "
                         f"{c['numpy_s'] * 1e6:.2f} | {c['ratio']:.2f}x | {c['target']:g}x | "
                         f"{'yes' if c['met'] else 'NO'} |")
    if fresh:
        lines += ["", *_fresh_lines(fresh)]
    return lines


def _fresh_lines(fresh: dict) -> list[str]:
    """The fresh processes' table: imports, first, second and warm call (medians)."""
    call = f"`convolve(x, w)`, N = {fresh['N']}, K = {fresh['K']}, {fresh['dtype']}"
    if "failed" in fresh:
        return [f"Fresh processes ({call}): failed, {fresh['failed']}"]
    return [f"In fresh processes (median of {len(fresh['processes'])}, after one that filled Numba's on-disk "
            "cache; the environment as a user's process has it): the imports, numpy first so that the second "
            f"is conv1dbench's own; then {call}: the first call (Numba imported, compiled code loaded from "
            "the cache, auto's models read), the second, and a warm one (median of five loops of 1000).", "",
            "| import numpy (ms) | import conv1dbench (ms) | first call (ms) | second call (µs) | warm call (µs) |",
            "|---:|---:|---:|---:|---:|",
            f"| {fresh['import_numpy_s'] * 1e3:.1f} | {fresh['import_conv1dbench_s'] * 1e3:.1f} | "
            f"{fresh['first_call_s'] * 1e3:.0f} | {fresh['second_call_s'] * 1e6:.1f} | "
            f"{fresh['warm_call_s'] * 1e6:.2f} |"]


def _first_calls(frame, title: str) -> list[str]:
    lines = ["", f"## {title}", "",
             "| implementation | median first call (ms) | slowest first call (ms) |", "|---|---:|---:|"]
    ok = frame[frame.status == "ok"]
    for impl, sub in ok.groupby("impl", sort=True):
        lines.append(f"| {impl} | {sub.first_call_s.median() * 1e3:.3g} | {sub.first_call_s.max() * 1e3:.3g} |")
    return lines


def _fmt_rate(value) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.3g}"


def _in_order(values) -> list:
    """Distinct values in their order of first appearance (the grid's order)."""
    return list(dict.fromkeys(values))


def crossover_section(frame) -> list[str]:
    """Per dtype and N: the backend fastest at the shortest kernel, and up to which K it stays fastest."""
    ok = frame[(frame.status == "ok") & ours_alone(frame)]
    if ok.impl.nunique() < 2:
        return []
    times = ok.pivot_table(index=["dtype", "N", "K"], columns="impl", values="median_s", aggfunc="min")
    ks = sorted(ok.K.unique())
    lines = ["", "## Crossover: the fastest backend per kernel length", "",
             "Per dtype and signal length N: the backend fastest at the shortest kernel, the longest kernel at "
             "which it is still the fastest, and at each K the other backends' best time over its time (above "
             "1: it is faster). Auto's rule where no cost model applies (dtypes without one, such as complex) "
             "goes direct up to a number of taps per dtype, `conv1dbench._select.DIRECT_MAX_TAPS`: at or "
             "below the smallest of these.", "",
             "| dtype | N | fastest at the shortest K | ... up to K | " + " | ".join(f"K={k:.0f}" for k in ks) + " |",
             "|---|---:|---|---:|" + "---:|" * len(ks)]
    smallest = {}
    for (dtype, n), sub in times.groupby(level=[0, 1], sort=True):
        sub = sub.droplevel([0, 1]).dropna(axis=1, how="all")
        lead = sub.iloc[0].idxmin()
        ratio = sub.drop(columns=lead).min(axis=1) / sub[lead]
        faster = [k for k in ratio.index if ratio[k] >= 1]
        up_to = f"{max(faster):.0f}" if faster else "-"
        if faster:
            smallest[dtype] = min(smallest.get(dtype, np.inf), max(faster))
        cells = [_fmt_ratio(ratio.get(k, np.nan)) for k in ks]
        lines.append(f"| {dtype} | {n:.0e} | {lead} | {up_to} | " + " | ".join(cells) + " |")
    if smallest:
        lines += ["", "Smallest per dtype: " + ", ".join(f"{d} K={k:.0f}" for d, k in smallest.items())]
    return lines


def _gpu_columns(ok) -> tuple[list[str], str | None, list[str]]:
    """``(columns, ours, peers)``: device-resident variants, then with transfers, then the peers; ours is the
    first device-resident one (the peers are device-resident too), else the first of ours."""
    kinds = ok.groupby("impl")["kind"].first()
    resident = [i for i in kinds.index if i.endswith(DEVICE_VARIANT) and kinds[i] == "backend"]
    transfers = [i for i in kinds.index if kinds[i] == "backend" and i not in resident]
    peers = [i for i in kinds.index if kinds[i] == "peer"]
    ours = (resident + transfers + [None])[0]
    return resident + transfers + peers, ours, peers


def gpu_sections(meta, frame) -> list[str]:
    """The GPU grid's rows: per point each implementation's time and GFLOP/s, peer / ours, the targets."""
    ok = frame[frame.status == "ok"]
    if ok.empty:
        return []
    columns, ours, peers = _gpu_columns(ok)
    lines = ["", "## GPU", "",
             f"`{ours}`: device arrays in and out, the data already on the GPU (what a GPU pipeline sees); our "
             "backends under their own name: NumPy arrays in and out, the host-device transfers in the time; "
             "the peers device-resident (torch with TF32 off). Every sample synchronises the device; the first "
             "call (kernel compilation) is timed apart. Cells: median ms (effective GFLOP/s). "
             f"`X / {ours}`: X's time over ours (above 1: ours is faster)."]
    for (api, direction, dtype, mode), sub in ok.groupby(["api", "pass", "dtype", "mode"], sort=False):
        title = (f"signals: {dtype}, mode \"{mode}\"" if api == "signal"
                 else f"layers: {direction}, {dtype}, padding {mode}")
        times = sub.pivot_table(index="shape", columns="impl", values="median_s", aggfunc="min")
        times = times.reindex(_in_order(sub["shape"]))
        gflops = sub.pivot_table(index="shape", columns="impl", values="gflops", aggfunc="max")
        errors = sub[sub.impl == ours].groupby("shape")["max_error"].max()
        shown = [c for c in columns if c in times]
        versus = [p for p in peers if p in times and ours in times]
        lines += ["", f"### GPU {title}", "",
                  "| point | " + " | ".join(f"{c} ms (GFLOP/s)" for c in shown) + "".join(f" | {p} / {ours}"
                                                                                  for p in versus)
                  + f" | max error of {ours} |", "|---|" + "---:|" * (len(shown) + len(versus) + 1)]
        for shape, r in times.iterrows():
            cells = [f"{r[c] * 1e3:.3g} ({_fmt_rate(gflops.loc[shape, c])})" if np.isfinite(r[c]) else "-"
                     for c in shown]
            cells += [_fmt_ratio(r[p] / r[ours]) for p in versus]
            lines.append(f"| {shape} | " + " | ".join(cells) + f" | {errors.get(shape, np.nan):.1e} |")
    lines += _first_calls(ok, "First call on the GPU (kernel compilation included)")
    return lines + _gpu_targets(meta, ok, ours)


def _gpu_targets(meta, ok, ours) -> list[str]:
    lines = ["", "## GPU targets (issue 4)", ""]
    if meta.get("grid") != "gpu":
        lines += [f"The targets are set on the gpu grid; this is the {meta.get('grid') or 'custom'} grid.", ""]
    for peer, api, least, name, where in GPU_TARGETS:
        rows = ok[(ok.api == api) & ((ok.api != "signal") | (ok.N >= LONG_SIGNAL))]
        times = rows.pivot_table(index=["pass", "shape"], columns="impl", values="median_s", aggfunc="min")
        ratio = (times[peer] / times[ours]).dropna() if peer in times and ours in times else times.index[:0]
        target = f"{ours} >= {least:g}x {name} on {where}"
        if len(ratio) == 0:
            lines.append(f"- {target}: not checked ({peer} was not timed on such points in this run)")
            continue
        worst = ratio.idxmin()
        lines.append(f"- {target}: worst {_fmt_ratio(ratio[worst])} ({' '.join(worst)}) -> "
                     f"{'PASS' if ratio[worst] >= least else 'FAIL'}")
    return lines


def out_of_core_section(meta, frame) -> list[str]:
    """The out-of-core rows: throughput, peak memory against the memory bound, the check."""
    ok = frame[frame.status == "ok"]
    if ok.empty:
        return []
    disk = ok[ok.store == "disk"]
    signal_gib = (4 * disk.N * disk.batch / 2**30).max() if len(disk) else np.nan
    memory = meta.get("machine", {}).get("memory_gib")
    taps = ", ".join(f"{k:.0f}" for k in sorted(ok.K.unique()))
    lines = ["", "## Out of core: Dask", "",
             f"A float32 signal in a raw file ({signal_gib:.3g} GiB; this machine has {memory} GiB of memory), "
             f"a kernel of {taps} taps, mode \"same\". `disk`: Dask reads the file chunk by chunk (np.fromfile, "
             "no memory map), convolves each chunk plus its halo, and writes each output chunk into an output "
             "file, with the threaded scheduler and `workers` threads; `xB` points hold the same samples as B rows. "
             "`memory`: the first samples read into one NumPy array and convolved. Each point ran in a worker "
             "process of its own, timed once after a tiny warm-up call; peak RSS (getrusage) is that process's, "
             "interpreter and libraries included (`before`: after the warm-up, before the call). `bound`: "
             "workers x 3 chunks (per worker an input chunk with its halo, an output chunk, the backend's "
             "temporaries), what the chunked computation needs whatever the signal's length; the peak above "
             "`before` is what it held (Dask may also keep neighbouring chunks for the halos, and read ahead).",
             "", "| point | GiB | seconds | Msamples/s | peak RSS (GiB) | before (GiB) | bound (GiB) | backend | "
             "max error |", "|---|---:|---:|---:|---:|---:|---:|---|---:|"]
    for _, r in ok.iterrows():
        bound = f"{r.workers * 3 * r.chunk_mib / 1024:.3g}" if r.store == "disk" else "- (input and output whole)"
        lines.append(f"| {r.impl} {r['shape']} | {4 * r.N * r.batch / 2**30:.3g} | {r.median_s:.3g} | "
                     f"{r.msamples_per_s:.0f} | {r.peak_rss_gib:.3g} | {r.rss_before_gib:.3g} | {bound} | "
                     f"{r.chose if isinstance(r.chose, str) else r.impl} | {r.max_error:.1e} |")
    lines += ["", "Max error: sampled windows (rows, for `xB`) of the output against a float64 scipy.signal.convolve "
              "of the same input, `max|y - ref| / (max|x| sum|w|)`."]
    return lines


def _findings(frame, times, best_impl, paired, threads) -> list[str]:
    """Per API and dtype: what auto delivers against each peer, with the threads on both sides (against a
    single-threaded peer also auto on one thread, where timed); auto's regret; then the fastest of ours
    per point, picked after the fact, labelled so."""
    import pandas as pd  # import time (see tidy)

    out = []
    for (api, dtype), sub in times.groupby(level=[0, 2], sort=True):
        if "auto" in sub:
            versus = []
            for peer in (p for p in PEER_COLUMNS[api] if p in sub):
                spec = peer_specs.REGISTRY[peer]
                versus.append(_spread(f"{peer} ({peer_threads_text(spec, threads)})", sub[peer] / sub["auto"]))
                if spec.threads == "one" and AUTO_ONE_THREAD in sub:
                    versus.append(_spread(f"{peer} ({peer_threads_text(spec, threads)}) against auto on 1 thread",
                                          sub[peer] / sub[AUTO_ONE_THREAD]))
            out.append(f"- {api}s, {dtype}: auto ({threads} threads) against each peer (peer's time / auto's; "
                       "the peer's threads in brackets)" + ("".join(versus) or "; no peer timed"))
            if api == "signal" and "scipy" in sub:
                beside = pd.Series({i: _scipy_over_auto(paired[i]) for i in sub.index if i in paired},
                                   dtype=float).dropna()
                if len(beside):  # timed in one loop with auto
                    out.append(f"- {api}s, {dtype}: " + _spread("auto vs scipy.signal.convolve, timed in turn after "
                                                                "the sweep", beside)[2:])
        wins = best_impl[sub.index].value_counts()
        text = ", ".join(f"{name} {count}" for name, count in wins.items())
        line = f"- {api}s, {dtype}, the best of ours picked after the fact: fastest per point: {text} (of {len(sub)})"
        best = sub[[c for c in OURS if c in sub]].min(axis=1)
        peer = {"signal": ("scipy", "scipy.signal.convolve"), "layer": ("torch", "torch")}[api]
        if peer[0] in sub:
            line += _spread(f"vs {peer[1]}", sub[peer[0]] / best)
        if "auto" in sub:
            regret = (np.array([paired[index]["ratio"] for index in sub.index if index in paired]) if paired
                      else (sub["auto"] / best).dropna().to_numpy())
            if len(regret):
                line += f"; auto's regret (auto / fastest): median {np.median(regret):.2f}, worst {regret.max():.2f}"
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
             "After the sweep, auto and the backend fastest at each point (best of rounds) were timed again, each in "
             "worker processes of its own (so that one backend's spinning threads never slow the other), in "
             f"{CHECK_ROUNDS} alternating rounds, each keeping its best; `auto / fastest` is auto's regret. At "
             "signal points auto was timed the same way beside scipy.signal.convolve (`scipy / auto`: above 1, "
             "auto is faster). The sweep's own ratio (best of rounds of each, timed at different minutes) is "
             "shown beside it.", "",
             f"- auto chose the fastest backend at {right} of {len(checks)} points",
             f"- regret: median {np.median(ratios):.2f}, worst {ratios.max():.2f}; "
             f"above 1.1 at {int((ratios > 1.1).sum())} of them"]
    if len(speedups):
        lines.append(f"- auto vs scipy.signal.convolve: median {_fmt_ratio(np.median(speedups))}, worst "
                     f"{_fmt_ratio(speedups.min())}; slower than scipy at {int((speedups < 1).sum())} of "
                     f"{len(speedups)} signal points")
    lines += ["", "Points where auto chose another backend, its regret is above 1.1, or scipy was faster:", "",
              "| point | fastest | auto chose | fastest (ms) | auto (ms) | auto / fastest | in the sweep "
              "| scipy / auto |",
              "|---|---|---|---:|---:|---:|---:|---:|"]
    for c in sorted(checks, key=lambda c: -c["ratio"]):
        vs_scipy = _scipy_over_auto(c)
        if c["chose"] == c["fastest"] and c["ratio"] <= 1.1 and not vs_scipy < 1:
            continue
        index = (c["api"], c["pass"], c["dtype"], c["mode"], c["shape"])
        sweep = times.loc[index, "auto"] / times.loc[index, c["fastest"]] if index in times.index else np.nan
        lines.append(f"| {c['api']} {c['shape']} {c['pass']} {c['dtype']} {c['mode']} | {c['fastest']} | "
                     f"{c['chose']} | {c['fastest_s'] * 1e3:.3g} | {c['auto_s'] * 1e3:.3g} | {c['ratio']:.2f} | "
                     f"{sweep:.2f} | {_fmt_ratio(vs_scipy)} |")
    return lines


def _spread(what: str, ratios) -> str:
    """``; <what>: median Ax, range Bx to Cx`` (speedups), or nothing where there is no data."""
    ratios = ratios.dropna()
    if not len(ratios):
        return ""
    return (f"; {what}: median {_fmt_ratio(ratios.median())}, range {_fmt_ratio(ratios.min())} "
            f"to {_fmt_ratio(ratios.max())}")


def stability_section(run: Run) -> list[str]:
    """How far this run's numbers can be trusted (:mod:`conv1dbench.harness.stability`): the measurements
    whose samples are unsteady, the machine's other load, and the peak at the start against the end."""
    meta = run.meta
    measured, flagged, found = stability.summary(run.rows)
    load, drift = meta.get("other_load") or {}, meta.get("peak_drift") or {}
    if not (measured or load or drift):
        return []
    lines = ["", "## Stability", ""]
    if measured:
        lines.append(f"- {flagged} of {measured} measurements unstable (an interquartile range over "
                     f"{stability.MAX_SPREAD:.0%} of the median, a sample beyond {stability.MAX_OVER_MEDIAN}x or "
                     f"under {stability.MIN_UNDER_MEDIAN}x the median, under {stability.MIN_SAMPLES} samples, or "
                     f"samples under {stability.MIN_SAMPLE_S * 1e6:.0f} us); the median spread is "
                     f"{stability.median_spread(run.rows):.1%}. Treat a ratio at an unstable point as rough.")
    if load:
        warn = " **Other work ran beside this run: its times may be slow.**" if (
            load["others_share"] > 0.05 or load["steal_share"] > 0.05) else ""
        lines.append(f"- other load while it ran: processes besides the run's used {load['others_cpu_s']} CPU-s "
                     f"({load['others_share']:.1%} of the machine over {load['run_s']} s), and the hypervisor "
                     f"took {load['steal_s']} s ({load['steal_share']:.1%}, steal).{warn}")
    if drift.get("ratios"):
        said = ", ".join(f"{k} {v:.2f}" for k, v in drift["ratios"].items())
        warn = (f" **Beyond {stability.MAX_PEAK_DRIFT:.0%}: {', '.join(drift['drifted'])}; the machine's speed "
                "changed during the run.**" if drift["drifted"] else "")
        lines.append(f"- the peak measured again at the end, end / start: {said}.{warn}")
    if found:
        lines += ["", "| implementation | point | ms | why |", "|---|---|---:|---|"]
        worst = sorted(found, key=lambda f: -(f[0]["q75_s"] - f[0]["q25_s"]) / f[0]["median_s"])
        for row, why in worst[:STABILITY_ROWS]:
            point = " ".join(str(row.get(k)) for k in ("api", "pass", "dtype", "mode")) + f" {row['shape']}"
            lines.append(f"| {row['impl']} | {point} | {row['median_s'] * 1e3:.3g} | {'; '.join(why)} |")
        if len(found) > STABILITY_ROWS:
            lines += ["", f"({len(found) - STABILITY_ROWS} more in report.json: `samples_s` of each row.)"]
    return lines


#: The unstable measurements listed at most (the most spread first).
STABILITY_ROWS = 20


def _skips(frame) -> list[str]:
    rest = frame[frame.status != "ok"]
    if rest.empty:
        return []
    lines = ["", "## Skipped and failed", "", "| implementation | status | measurements | reason |",
             "|---|---|---:|---|"]
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


#: The busy-process targets: a call of at least BUSY_LONG_S alone may take BUSY_LONG_RATIO as long in the
#: busy loop, a shorter one BUSY_SHORT_RATIO; the BLAS product right after our call BUSY_PRODUCT_RATIO.
BUSY_LONG_S, BUSY_LONG_RATIO, BUSY_SHORT_RATIO, BUSY_PRODUCT_RATIO = 1e-3, 1.3, 2.0, 1.3


def busy_section(meta) -> list[str]:
    """The busy-process check (:func:`conv1dbench.harness.runner.busy_check`): per condition, each call
    alone and in the loop, the BLAS product right after it, and whether the targets hold."""
    checks = meta.get("busy")
    if not checks:
        return []
    lines = ["", "## In a busy process", "",
             "Each implementation in a worker of its own, timed alone and then in a loop whose every round runs a "
             "300 x 300 BLAS matrix product, a numpy.convolve (N=1000, K=3) and a scipy.signal.fftconvolve "
             "(N=10^4, K=255) before the call and the product again right after it; every other round leaves our call "
             "out, which times the product as it runs in the loop without us (medians). Targets: a call of "
             f"{BUSY_LONG_S * 1e3:g} ms or more alone at most {BUSY_LONG_RATIO}x in the loop, a shorter one at most "
             f"{BUSY_SHORT_RATIO}x; the product after our call at most {BUSY_PRODUCT_RATIO}x the product without us."]
    for condition in dict.fromkeys(c["condition"] for c in checks):
        rows = [c for c in checks if c["condition"] == condition]
        missed = sum(not _busy_met(c) for c in rows)
        lines += ["", f"### {condition}: {len(rows) - missed} of {len(rows)} meet the targets", "",
                  "| implementation | point | alone (ms) | in the loop (ms) | loop / alone | product after (ms) | "
                  "product after / without us | met |", "|---|---|---:|---:|---:|---:|---:|---|"]
        for c in rows:
            lines.append(f"| {c['impl']} | {c['point']} | {c['alone_s'] * 1e3:.3g} | {c['busy_s'] * 1e3:.3g} | "
                         f"{c['ratio']:.2f} | {c['product_after_s'] * 1e3:.3g} | {c['product_ratio']:.2f} | "
                         f"{'yes' if _busy_met(c) else 'no'} |")
    return lines


def _busy_met(check: dict) -> bool:
    limit = BUSY_LONG_RATIO if check["alone_s"] >= BUSY_LONG_S else BUSY_SHORT_RATIO
    return check["ratio"] <= limit and check["product_ratio"] <= BUSY_PRODUCT_RATIO


def _memory_condition(meta) -> str:
    """The header's line saying which memory condition the main tables come from."""
    if meta.get("memory_condition") == "allocator as is":
        reused = " ".join(f"{k}={v}" for k, v in meta.get("reused_environment", {}).items())
        return ("- memory: every table but *Memory* comes from workers with the allocator as users have it "
                "(the environment as it is: glibc's defaults) and a fresh result array per call"
                + (f"; *Memory* times a few points again with memory reused ({reused}, and `out=` for our "
                   "backends)" if meta.get("memory") else ""))
    return ("- memory: the tables come from workers with memory reused (the allocator settings above); "
            "this run has no timings with the allocator as users have it")


def memory_section(meta) -> list[str]:
    """The memory check (:func:`conv1dbench.harness.runner.memory_check`): each point both ways, per implementation."""
    checks = meta.get("memory")
    if not checks:
        return []
    reused = " ".join(f"{k}={v}" for k, v in meta.get("reused_environment", {}).items())
    lines = ["", "## Memory: the allocator as is and reused", "",
             "A few memory-bound points timed again after the sweep, for each implementation in two workers one "
             "after the other: *as is*, the sweep's condition (glibc's defaults, a fresh result array per call, so "
             "blocks beyond glibc's mmap threshold are faulted in afresh each call), and *reused*: the worker with "
             f"{reused} (glibc keeps freed memory) and our backends writing into a preallocated `out=` (the peers "
             "take none). Ratio below 1: faster with memory reused.", "",
             "| point | implementation | allocator as is (ms) | reused memory (ms) | reused / as is |",
             "|---|---|---:|---:|---:|"]
    for c in sorted(checks, key=lambda c: (c["point"], c["impl"])):
        lines.append(f"| {c['point']} | {c['impl']} | {c['as_is_s'] * 1e3:.3g} | {c['reused_s'] * 1e3:.3g} | "
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
            if stats.get("data"):  # its rounds' times per call (--benchmark-save-data): compare's samples
                row["samples_s"] = list(stats["data"])
            if row.get("flops"):
                row["gflops"] = row["flops"] / stats["median"] / 1e9
        rows.append(row)
    meta = dict(raw.get("conv1dbench") or {"machine": raw.get("machine_info", {}), "grid": None})
    meta.setdefault("command", "pytest --benchmark-only")
    rows += meta.pop("skipped", [])  # skipped from a predicted cost: no benchmark entry, but a row
    return Run(meta, rows)
