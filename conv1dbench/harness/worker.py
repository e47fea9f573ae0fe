"""Implementations timed over a list of points, in a process of their own.

``python -m conv1dbench.harness.worker`` reads ``{"impls", "points", "min_time_s", "min_samples"}``
as JSON on stdin (and optionally ``"interleave": true``: the implementations timed in turn, sample by
sample; or ``"busy": true``: each timed alone and in a busy loop, :mod:`conv1dbench.harness.busy`)
and prints one JSON row per (point, implementation) on stdout as soon as it is measured (the
parent shows progress from them).  A point that raises is recorded as ``failed`` with the error; the
next point still runs.  The runner gives each implementation a worker of its own, so that thread
pools (Numba's OpenMP, OpenBLAS, pocketfft, torch) never compete; only its interference check and
its check of auto put several in one (:mod:`conv1dbench.harness.runner`).  Before its first timing
a worker rests :data:`conv1dbench.harness.busy.SETTLE_S`: OpenBLAS's threads spin for a while after
they start, holding a core that a parallel call would need.

How a point is timed travels with it (:mod:`conv1dbench.harness.grid`): by default
:func:`conv1dbench.timing.measure` (the first call apart, adaptive repeats), with the case's device
synchronisation; with ``"timing": "once"``, the case's tiny warm-up call and then one timed call
(``calls`` is 1, ``first_call_s`` is the warm-up's time).  A point run in a worker of its own
(``"isolate": True``) also records the process's peak resident memory (``getrusage``) before and
after the timed call, ``rss_before_gib`` and ``peak_rss_gib``: then they are the row's own.
Out-of-core points (``store``) record their throughput, ``msamples_per_s``.
"""

from __future__ import annotations

import json
import resource
import sys
import time

from ..timing import Timing, measure, measure_interleaved
from .busy import SETTLE_S, busy_timing
from .cases import check_error, data, kind, make_case, setup, skip_reason
from .grid import PARAMS, flops, label


def row_for(impl: str, point: dict, min_time_s: float, min_samples: int) -> dict:
    """Measure ``impl`` on ``point``: the tidy row (parameters, status, timing, GFLOP/s, error)."""
    def fill(row: dict) -> None:
        case = setup(impl, point)
        before = _peak_rss_gib()
        if point.get("timing") == "once":
            timing, before = _once(case)
        else:
            timing = measure(case.call, min_time_s=min_time_s, min_samples=min_samples, sync=case.sync)
        if point.get("isolate"):  # the process is this row's alone: so is its peak memory
            row.update(rss_before_gib=before, peak_rss_gib=_peak_rss_gib())
        _record(row, point, case, timing)
    return _guarded(impl, point, fill)


def _guarded(impl: str, point: dict, fill) -> dict:
    """The row of ``impl`` on ``point``: skipped with the reason, else as ``fill(row)`` completes it, or
    failed with the error (recorded in the table: the sweep goes on)."""
    row = _row(impl, point)
    reason = skip_reason(impl, point)
    if reason:
        row.update(status="skipped", reason=reason)
        return row
    try:
        fill(row)
    except Exception as exc:  # noqa: BLE001 - recorded in the table, the sweep goes on
        row.update(status="failed", reason=_why(exc))
    return row


def rows_interleaved(impls: list[str], point: dict, min_time_s: float, min_samples: int) -> list[dict]:
    """Measure all of ``impls`` on ``point`` in turn, sample by sample (for their ratios); one row each.

    If one of them is skipped or its call fails, all their rows say so (a ratio needs both); a result
    beyond the SPEC tolerance fails its own row.
    """
    rows = [_row(impl, point) for impl in impls]
    try:
        reasons = [reason for reason in map(lambda impl: skip_reason(impl, point), impls) if reason]
        if reasons:
            raise ValueError(reasons[0])
        arrays = data(point)
        cases = [make_case(impl, point, arrays) for impl in impls]
        syncs = [case.sync for case in cases if case.sync]
        timings = measure_interleaved([case.call for case in cases], min_time_s=min_time_s, min_samples=min_samples,
                                      sync=(lambda: [sync() for sync in syncs]) if syncs else None)
    except Exception as exc:  # noqa: BLE001 - recorded, the check goes on
        for row in rows:
            row.update(status="failed", reason=_why(exc))
        return rows
    for row, case, timing in zip(rows, cases, timings, strict=True):
        try:
            _record(row, point, case, timing)
        except Exception as exc:  # noqa: BLE001 - a wrong result is this row's alone
            row.update(status="failed", reason=_why(exc))
    return rows


def busy_row(impl: str, point: dict, min_time_s: float, min_samples: int) -> dict:
    """``impl`` on ``point`` timed alone and in a busy process (:func:`conv1dbench.harness.busy.busy_timing`)."""
    return _guarded(impl, point, lambda row: row.update(busy_timing(impl, point, min_time_s, min_samples)))


def _row(impl: str, point: dict) -> dict:
    row = {key: point.get(key) for key in PARAMS}
    row.update(impl=impl, kind=kind(impl), shape=label(point), status="ok", reason=None)
    return row


def _record(row: dict, point: dict, case, t) -> None:
    """Fill ``row`` from timing ``t``; a result beyond the SPEC tolerance raises (the row is then failed)."""
    row["max_error"] = case.error()
    check_error(point, row["max_error"])
    row.update(median_s=t.median_s, q25_s=t.q25_s, q75_s=t.q75_s, calls=t.calls,
               first_call_s=t.first_call_s, gflops=flops(point) / t.median_s / 1e9, chose=case.chose)
    if t.samples_s:  # the raw samples, for compare's statistics (4 digits: far below their noise)
        row["samples_s"] = [float(f"{s:.4g}") for s in t.samples_s]
    if case.device:
        row["device"] = case.device
    if case.threads:
        row["threads"] = case.threads
    if point.get("store"):
        row["msamples_per_s"] = point["batch"] * point["N"] / t.median_s / 1e6


def _once(case) -> tuple[Timing, float]:
    """One timed call after the case's warm-up (for calls of a minute, where repeats would cost hours),
    and the peak resident memory after the warm-up, before the call."""
    sync = case.sync or (lambda: None)
    start = time.perf_counter()
    if case.warmup:
        case.warmup()
    sync()
    warm = time.perf_counter() - start
    before = _peak_rss_gib()
    start = time.perf_counter()
    case.call()
    sync()
    seconds = time.perf_counter() - start
    return Timing(seconds, seconds, seconds, 1, warm), before


def _peak_rss_gib() -> float:
    """This process's peak resident memory so far (Linux reports KiB, macOS bytes)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**30 if sys.platform == "darwin" else peak * 1024 / 2**30


def _why(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"[:300]


def main() -> None:
    job = json.load(sys.stdin)
    time.sleep(SETTLE_S)  # OpenBLAS's threads spin for a while after they start: no timing among them
    for point in job["points"]:
        if job.get("interleave"):
            rows = rows_interleaved(job["impls"], point, job["min_time_s"], job["min_samples"])
        elif job.get("busy"):
            rows = [busy_row(impl, point, job["min_time_s"], job["min_samples"]) for impl in job["impls"]]
        else:
            rows = [row_for(impl, point, job["min_time_s"], job["min_samples"]) for impl in job["impls"]]
        for row in rows:
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
