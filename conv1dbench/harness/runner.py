"""The sweep: every implementation over a grid, each in a worker process, with progress.

Thread pools: Numba (OpenMP), OpenBLAS, pocketfft and torch each keep worker threads, and two pools
busy at once on a 2-core machine would halve each other.  So each implementation is timed in a
process of its own, one after another; and the run checks how much that matters (the
*interference check*): one signal and one layer point are timed again with every implementation in
one shared process, and the report gives the ratio shared / isolated per implementation.

Every worker runs with ``MALLOC_MMAP_THRESHOLD_`` and ``MALLOC_TRIM_THRESHOLD_`` raised, so glibc
keeps freed memory instead of returning it to the OS: otherwise a call can pay first-touch page
faults for its temporaries depending on what ran before it (measured: the same FFT convolution took
0.6 or 1.9 ms).  The thread counts and these settings are recorded with the results.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**31)}


@dataclass
class Run:
    """A finished sweep: what ran where (``meta``) and one tidy row per measurement."""

    meta: dict
    rows: list[dict] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"meta": self.meta, "rows": self.rows}, indent=1, default=str))

    @classmethod
    def load(cls, path: Path) -> Run:
        raw = json.loads(Path(path).read_text())
        return cls(raw["meta"], raw["rows"])


def _work(impls: list[str], points: list[dict], min_time_s: float, min_samples: int, on_row=None) -> list[dict]:
    """Run one worker process; rows as they arrive; points it could not finish come back as failed."""
    job = json.dumps({"impls": impls, "points": points, "min_time_s": min_time_s, "min_samples": min_samples})
    proc = subprocess.Popen([sys.executable, "-m", "conv1dbench.harness.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **WORKER_ENV})
    proc.stdin.write(job)
    proc.stdin.close()
    rows = []
    for line in proc.stdout:
        if line.strip():
            rows.append(json.loads(line))
            if on_row:
                on_row(rows[-1])
    stderr = proc.stderr.read()
    if proc.wait() != 0:  # a crash: every point it did not report is recorded as failed, with why
        why = f"worker exited with {proc.returncode}: {stderr.strip()[-300:]}"
        done = {_key(r) for r in rows}
        for point in points:
            for impl in impls:
                row = _failed_row(impl, point, why)
                if _key(row) not in done:
                    rows.append(row)
                    if on_row:
                        on_row(row)
    return rows


def _key(row: dict) -> tuple:
    return row["impl"], row["api"], row["shape"], row["pass"], row["dtype"], row["mode"]


def _failed_row(impl: str, point: dict, reason: str) -> dict:
    from .cases import kind
    from .grid import PARAMS, label

    row = {key: point.get(key) for key in PARAMS}
    try:
        shape = label(point)
    except (KeyError, TypeError, ValueError):  # a malformed point: say what it was
        shape = json.dumps(point)
    row.update(impl=impl, kind=kind(impl), shape=shape, status="failed", reason=reason)
    return row


def sweep(points: list[dict], impls: list[str], *, min_time_s: float = 0.1, min_samples: int = 3,
          progress: bool = True, interference: bool = True, quick_peak: bool = False, rounds: int = 1,
          command: str | None = None, grid: str | None = None) -> Run:
    """Time every implementation on every point, ``rounds`` times; measure the peak and the interference.

    On a shared virtual machine the same process can run up to 2x slower for minutes at a time;
    with several rounds the report keeps each measurement's best round (all rounds are in the rows).
    """
    from ..machine import machine_info
    from .peak import measure_peak

    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "command": command, "grid": grid,
            "machine": machine_info(), "worker_environment": WORKER_ENV,
            "isolation": "each implementation timed in a worker process of its own, one after another",
            "min_time_s": min_time_s, "min_samples": min_samples, "rounds": rounds, "implementations": impls,
            "peak": measure_peak(sorted({p["dtype"] for p in points}), quick=quick_peak)}
    if "auto" in impls:  # what auto's workers decide from (each loads the same wisdom file and models)
        from .. import _select

        meta["auto"] = _select.knowledge()
    bar = _progress(len(points) * len(impls) * rounds, progress)
    run = Run(meta)
    for r in range(rounds):  # the order rotates, so no implementation always runs at the same time
        for impl in impls[r % len(impls):] + impls[:r % len(impls)]:
            bar.set_postfix_str(f"round {r + 1}/{rounds}: {impl}")
            rows = _work([impl], points, min_time_s, min_samples, on_row=lambda row: bar.update(1))
            run.rows += [{**row, "round": r + 1} for row in rows]
    bar.close()
    if interference:
        meta["interference"] = interference_check(points, impls, run.rows, min_time_s, min_samples)
    return run


def interference_check(points, impls, rows, min_time_s, min_samples) -> list[dict]:
    """Time one point per API with every implementation in one shared process; compare with the sweep."""
    chosen = []
    for api in ("signal", "layer"):
        candidates = [p for p in points if p["api"] == api]
        if candidates:
            chosen.append(candidates[len(candidates) // 2])
    shared = _work(impls, chosen, min_time_s, min_samples)
    isolated = {}
    for r in sorted((r for r in rows if r["status"] == "ok"), key=lambda r: -r["median_s"]):
        isolated[_key(r)] = r  # the best round last, so it stays
    report = []
    for r in shared:
        alone = isolated.get(_key(r))
        if r["status"] == "ok" and alone:
            report.append({"impl": r["impl"], "point": f"{r['api']} {r['shape']} {r['pass']} {r['dtype']} {r['mode']}",
                           "isolated_s": alone["median_s"], "shared_s": r["median_s"],
                           "ratio": r["median_s"] / alone["median_s"]})
    return report


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    return tqdm(total=total, disable=not enabled, unit="meas", dynamic_ncols=True, file=sys.stderr,
                bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}] {postfix}")
