"""The benchmark grid as pytest-benchmark tests: every implementation on every point.

Parametrized in ``conftest.py`` over the registry's available backends, ``auto`` and the installed
peers (``impl``) and over the grid's points (``point``), one test per API.  Data is made before the
timing with a seeded generator; one operation is timed per benchmark; its parameters, effective
GFLOP/s and error against a float64 reference go into ``extra_info``, and an error beyond
docs/SPEC.md's tolerance fails the benchmark.
"""

from __future__ import annotations

import pytest

from conv1dbench.harness import cases, grid
from conv1dbench.timing import calibrate

MIN_TIME_S = 0.1
MIN_ROUNDS = 3


def _run(benchmark, request, point: dict, impl: str) -> None:
    row = {key: point.get(key) for key in grid.PARAMS}
    row.update(impl=impl, kind=cases.kind(impl), shape=grid.label(point))
    reason = cases.skip_reason(impl, point)
    if reason:
        request.config.bench_skipped.append({**row, "status": "skipped", "reason": reason})
        pytest.skip(reason)
    case = cases.make_case(impl, point, cases.data(point))
    first, estimate, per_round = calibrate(case.call)
    rounds = max(MIN_ROUNDS, int(MIN_TIME_S / (estimate * per_round)))
    row.update(first_call_s=first, flops=grid.flops(point), max_error=case.error(), chose=case.chose)
    cases.check_error(point, row["max_error"])  # a wrong result fails this benchmark, its point in the test id
    benchmark.group = f"{point['api']} {point['pass']} {point['dtype']} {point['mode']} {grid.label(point)}"
    benchmark.extra_info.update(row)
    benchmark.pedantic(case.call, rounds=rounds, iterations=per_round, warmup_rounds=0)
    if benchmark.stats is not None:  # None when benchmarks are disabled (plain pytest: one untimed call)
        benchmark.extra_info["gflops"] = row["flops"] / benchmark.stats.stats.median / 1e9


def test_signal(benchmark, request, point, impl):
    _run(benchmark, request, point, impl)


def test_layer(benchmark, request, point, impl):
    _run(benchmark, request, point, impl)
