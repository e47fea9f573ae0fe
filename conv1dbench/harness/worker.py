"""Implementations timed over a list of points, in a process of their own.

``python -m conv1dbench.harness.worker`` reads ``{"impls", "points", "min_time_s", "min_samples"}``
as JSON on stdin and prints one JSON row per (point, implementation) on stdout as soon as it is
measured (the parent shows progress from them).  The runner gives each implementation a worker of
its own; only its interference check puts several in one.  A point that raises is recorded as ``failed`` with the error; the next
point still runs.  Each implementation gets a process so that thread pools (Numba's OpenMP,
OpenBLAS, pocketfft, torch) never compete (:mod:`conv1dbench.harness.runner` measures how much that
matters).
"""

from __future__ import annotations

import json
import sys

from ..timing import measure
from .cases import data, kind, make_case, skip_reason
from .grid import PARAMS, flops, label


def row_for(impl: str, point: dict, min_time_s: float, min_samples: int) -> dict:
    """Measure ``impl`` on ``point``: the tidy row (parameters, status, timing, GFLOP/s, error)."""
    row = {key: point.get(key) for key in PARAMS}
    row.update(impl=impl, kind=kind(impl), shape=label(point), status="ok", reason=None)
    reason = skip_reason(impl, point)
    if reason:
        row.update(status="skipped", reason=reason)
        return row
    try:
        case = make_case(impl, point, data(point))
        t = measure(case.call, min_time_s=min_time_s, min_samples=min_samples)
        row.update(median_s=t.median_s, q25_s=t.q25_s, q75_s=t.q75_s, calls=t.calls,
                   first_call_s=t.first_call_s, gflops=flops(point) / t.median_s / 1e9,
                   max_error=case.error(), chose=case.chose)
    except Exception as exc:  # noqa: BLE001 - recorded in the table, the sweep goes on
        row.update(status="failed", reason=f"{type(exc).__name__}: {exc}"[:300])
    return row


def main() -> None:
    job = json.load(sys.stdin)
    for point in job["points"]:
        for impl in job["impls"]:
            row = row_for(impl, point, job["min_time_s"], job["min_samples"])
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()
