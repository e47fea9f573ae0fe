"""What ``backend="auto"`` delivers on one machine, from its committed runs: the README's tables.

A machine's folder, ``results/<machine>/``, holds one run per grid (``default``, ``fourier``,
``heldout``, ``layers`` and ``heldout-layers``, the held-out grid's layers against torch:
``<run>/report.json``).  :func:`summary` reads them and gives, in Markdown, the machine,
auto's regret (timed in processes of their own: :func:`conv1dbench.harness.runner.auto_check`) and
auto against each peer, with the threads on both sides; the best of our backends picked after the fact
appears only labelled so.  ``python -m conv1dbench.harness.summary results/<machine>`` writes it to
``results/<machine>/summary.md``, and :func:`headline`, the README's table of auto against each peer per
regime, to ``results/<machine>/headline.md``; a test checks that the README shows the headline exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from . import peers as peer_specs
from .cases import AUTO_ONE_THREAD
from .grid import in_fft_regime
from .report import FFT_PEERS, _auto_checks, _fmt_ratio, direct_cpu_backends, fft_engines, peer_threads_text, tidy
from .runner import Run

#: The runs of a machine's folder, in the order shown (``layers``: the layers grid with torch;
#: ``heldout-layers``: the held-out grid's layer shapes with torch).
RUNS = ("default", "fourier", "heldout", "layers", "heldout-layers")
#: What ``conv1dbench tune --record`` wrote in a machine's folder: the kernel parameters it measured there.
TUNE_RECORD = "tune-params.json"


def load(folder: Path) -> dict[str, Run]:
    return {name: Run.load(folder / name / "report.json") for name in RUNS if (folder / name / "report.json").exists()}


def _runs(folder: Path) -> tuple[dict[str, Run], dict, int | None]:
    """``(runs, machine, threads)`` of a machine's folder: its runs, the machine they name, our thread count."""
    runs = load(Path(folder))
    if not runs:
        raise ValueError(f"no run in {folder}: expected {', '.join(f'{r}/report.json' for r in RUNS)}")
    machine = next(iter(runs.values())).meta["machine"]
    return runs, machine, machine.get("numba_threads")


def summary(folder: Path) -> list[str]:
    runs, machine, threads = _runs(folder)
    lines = [f"Machine: {machine.get('cpu')}, {machine.get('vector_isa')}, {machine.get('cores')} cores; "
             f"BLAS {machine.get('blas')}; our backends on {threads} threads. Runs: "
             + ", ".join(f"`{name}` ({run.meta.get('date', '?')[:10]})" for name, run in runs.items()) + ".", "",
             "| run | points | auto chose the fastest | regret: median | worst | worst in the FFT regime |",
             "|---|---:|---:|---:|---:|---:|"]
    for name, run in runs.items():
        lines.append(_regret_row(name, run))
    lines += ["", "| run | where | peer (threads) | ours (threads) | points | peer / ours: median | minimum "
              "| ours slower at |", "|---|---|---|---|---:|---:|---:|---:|"]
    for name, run in runs.items():
        lines += _peer_rows(name, run, threads)
    record = Path(folder) / TUNE_RECORD
    if record.exists():
        lines += ["", _tune_line(json.loads(record.read_text()))]
    return lines


def _tune_line(record: dict) -> str:
    """The kernel parameters' measurement: how many, how long, and what it chose that the defaults do not."""
    def number(v):
        return f"{v:,.0f}" if v != float("inf") else "inf"
    changed = [f"`{name}` {number(value)} (default {number(record['default'][name])})"
               for name, value in record["chosen"].items() if value != record["default"][name]]
    return (f"Kernel parameters (`conv1dbench tune`, {record['date'][:10]}): {len(record['chosen'])} measured in "
            f"{record['seconds']:.0f} s on {record['facts']['cores']} cores; "
            + (f"chosen other than this machine's defaults: {', '.join(changed)}." if changed
               else "every default kept."))


def _points(frame):
    """``{(api, pass, dtype, mode, shape): point dict}`` from the rows' parameters."""
    key = ["api", "pass", "dtype", "mode", "shape"]
    first = frame.drop_duplicates(key).set_index(key)
    return {index: {**dict(zip(key, index, strict=True)), **{k: v for k, v in row.items() if v == v}}  # v == v: not NaN
            for index, row in first.iterrows()}


def _regret_row(name: str, run: Run) -> str:
    checks = _auto_checks(run.meta)
    if not checks:
        return f"| {name} | 0 | - | - | - | - |"
    points = _points(tidy(run))
    ratios = np.array([c["ratio"] for c in checks.values()])
    fft = [c["ratio"] for index, c in checks.items() if index in points and in_fft_regime(points[index])]
    right = sum(c["chose"] == c["fastest"] for c in checks.values())
    worst_fft = f"{max(fft):.2f}" if fft else "-"
    return f"| {name} | {len(ratios)} | {right} | {np.median(ratios):.2f} | {ratios.max():.2f} | {worst_fft} |"


def _peer_rows(name: str, run: Run, threads) -> list[str]:
    """Each peer over auto (best of rounds each), with the threads on both sides: on signals (all, and the FFT
    regime; against a single-threaded peer also auto on one thread, where the run timed it) and layers (by
    pass and dtype; beside it, over the numba backend alone, labelled so); then the best of our FFT engines,
    picked after the fact, over the FFT peers in the FFT regime, labelled so."""
    times, points = _times(run)
    if times is None:
        return []
    regime = np.array([in_fft_regime(points[i]) for i in times.index])
    api = times.index.get_level_values("api")
    engines = [e for e in fft_engines() if e in times]
    best = times[engines].min(axis=1) if engines else None
    rows = []
    passes, dtypes = times.index.get_level_values("pass"), times.index.get_level_values("dtype")
    layers = [(f"layers, {p}, {d}", (api == "layer") & (passes == p) & (dtypes == d))
              for p in ("forward", "backward") for d in ("float32", "float64")]
    for where, mask in [("signals", api == "signal"), ("FFT regime", regime)] + layers:
        for peer in (p for p in peer_specs.CPU if p in times):
            if where == "FFT regime" and peer not in FFT_PEERS:
                continue
            spec = peer_specs.REGISTRY[peer]
            versus = f"{peer} ({peer_threads_text(spec, threads)})"
            ratios = (times[peer] / times["auto"])[mask].dropna()
            if not len(ratios):
                continue
            rows.append(_ratio_row(name, where, versus, f"auto ({threads})", ratios))
            if spec.threads == "one" and AUTO_ONE_THREAD in times:
                rows.append(_ratio_row(name, where, versus, "auto (1)",
                                       (times[peer] / times[AUTO_ONE_THREAD])[mask]))
            for kernel in direct_cpu_backends() if where.startswith("layers") else ():
                if kernel in times:  # the kernels' own standing, labelled so
                    rows.append(_ratio_row(name, where, versus, f"the {kernel} backend alone ({threads})",
                                           (times[peer] / times[kernel])[mask]))
    if best is not None:
        for peer in (p for p in FFT_PEERS if p in times):
            versus = f"{peer} ({peer_threads_text(peer_specs.REGISTRY[peer], threads)})"
            rows.append(_ratio_row(name, "FFT regime", versus,
                                   f"the best of our engines, picked after the fact ({threads})",
                                   (times[peer] / best)[regime]))
    return [row for row in rows if row is not None]


def _ratio_row(name: str, where: str, peer: str, ours: str, ratios) -> str | None:
    """One row of the peers' table; None where no point has both times."""
    ratios = ratios.dropna().to_numpy()
    if not len(ratios):
        return None
    return (f"| {name} | {where} | {peer} | {ours} | {len(ratios)} | {_fmt_ratio(np.median(ratios))} | "
            f"{_fmt_ratio(ratios.min())} | {int((ratios < 1).sum())} |")


#: The headline's regimes: (label, run, api, pass or None, FFT regime or None).
HEADLINE = (("signals, direct regime", "default", "signal", None, False),
            ("signals, FFT regime", "default", "signal", None, True),
            ("layers, forward", "layers", "layer", "forward", None),
            ("layers, backward", "layers", "layer", "backward", None))


def headline(folder: Path) -> list[str]:
    """The README's table for one machine: what ``backend="auto"`` delivers against each peer, per regime
    (signals of the default grid outside and inside the FFT regime, every dtype; the layers grid by pass),
    the threads on both sides, and against a single-threaded peer auto on one thread too."""
    runs, machine, threads = _runs(folder)
    lines = [f"{machine.get('cpu')}, {machine.get('vector_isa')}, {machine.get('cores')} cores, BLAS "
             f"{machine.get('blas')} (`results/{Path(folder).name}/`):", "",
             f"| where | peer (its threads) | peer / auto, auto on {threads} threads: median | minimum "
             "| peer / auto on 1 thread: median |", "|---|---|---:|---:|---:|"]
    for where, name, api, direction, fft in HEADLINE:
        if name not in runs:
            continue
        times, points = _times(runs[name])
        if times is None:
            continue
        index = times.index
        mask = (index.get_level_values("api") == api) & (
            True if direction is None else index.get_level_values("pass") == direction)
        if fft is not None:
            mask &= np.array([in_fft_regime(points[i]) == fft for i in index])
        for peer in (p for p in peer_specs.CPU if p in times):
            ratios = (times[peer] / times["auto"])[mask].dropna()
            if not len(ratios):
                continue
            spec = peer_specs.REGISTRY[peer]
            alone = ((times[peer] / times[AUTO_ONE_THREAD])[mask].dropna()
                     if spec.threads == "one" and AUTO_ONE_THREAD in times else ratios[:0])
            lines.append(f"| {where} | {peer} ({peer_threads_text(spec, threads)}) | "
                         f"{_fmt_ratio(np.median(ratios))} | {_fmt_ratio(ratios.min())} | "
                         f"{_fmt_ratio(np.median(alone)) if len(alone) else '-'} |")
    return lines


def _times(run: Run):
    """``(times, points)``: the best-of-rounds time per point and implementation, and each point's parameters;
    ``(None, None)`` without auto."""
    frame = tidy(run)
    ok = frame[frame.status == "ok"]
    times = ok.pivot_table(index=["api", "pass", "dtype", "mode", "shape"], columns="impl", values="median_s",
                           aggfunc="min")
    return (times, _points(frame)) if "auto" in times else (None, None)


def main(argv=None) -> None:
    """Write ``summary.md`` and ``headline.md`` (the README's table) into the machine's folder."""
    folder = Path((argv or sys.argv[1:])[0])
    text = "\n".join(summary(folder)) + "\n"
    (folder / "summary.md").write_text(text)
    (folder / "headline.md").write_text("\n".join(headline(folder)) + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
