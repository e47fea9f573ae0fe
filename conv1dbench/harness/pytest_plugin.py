"""pytest plugin for the benchmark suites (``benchmarks/``); ``pytest --benchmark-only`` writes the report.

Loaded by the project's pytest configuration (``-p conv1dbench.harness.pytest_plugin`` in
``pyproject.toml``), so its options exist before pytest-benchmark reads its own.

* ``pytest --benchmark-only`` (at the repository root) times the ``default`` grid (``--bench-grid``
  picks another) and writes ``runs/pytest-benchmark/`` (or beside ``--benchmark-json``):
  pytest-benchmark's raw JSON, and from it the same CSV, Markdown and plots as ``conv1dbench run``.
* Plain ``pytest`` runs the ``smoke`` grid here once per benchmark, untimed
  (``--benchmark-disable``): the suites are tested, no minutes are spent timing.

The timing is pytest-benchmark's, fed with the harness's calibration
(:func:`conv1dbench.timing.calibrate`): the first call (JIT compilation) and a warm-up call happen
before, and each round runs enough calls to last about 2 ms.  All implementations share this one
process; ``conv1dbench run`` times each in a process of its own and reports how much that matters.
So that one implementation's thread pool does not run into the next one's, the benchmarks run one
implementation after another (all of its points, then the next: :func:`pytest_collection_modifyitems`),
as the sweep's workers do; point after point, a numba call right after a BLAS-based one shared its
cores with OpenBLAS's still-spinning threads (``results/NOTES.md``, "numba: threads in a busy process").
"""

from __future__ import annotations

import datetime
import shlex
import sys
from pathlib import Path

import pytest

# The package is imported inside the hooks (import time): pytest loads this plugin for every test run,
# before the tests' conftest sets the wisdom file aside.

#: Where ``pytest --benchmark-only`` writes without ``--benchmark-json``: beside ``conv1dbench run``'s new
#: folders, never into the committed ``results/`` (relative to the repository root).
RESULTS = Path("runs") / "pytest-benchmark"


def pytest_addoption(parser):
    parser.addoption("--bench-grid", default=None,
                     help="conv1dbench grid for the benchmarks: smoke, default, large, tune, crossover "
                          "(default: 'default' with --benchmark-only, else 'smoke'; the gpu and dask grids run "
                          "under `conv1dbench run` only)")


@pytest.hookimpl(tryfirst=True)  # before pytest-benchmark reads its options
def pytest_configure(config):
    timing = config.getoption("benchmark_only") or config.getoption("benchmark_enable")
    if not timing:
        config.option.benchmark_disable = True
    config.bench_grid = config.getoption("bench_grid") or ("default" if timing else "smoke")
    if config.getoption("bench_grid"):
        from conv1dbench.harness import cases, grid  # import time (see above)

        try:
            own = sorted({cases.suite(p) for p in grid.grid(config.bench_grid)} & {"gpu", "dask"})
        except ValueError as exc:  # an unknown grid: pytest's one-line usage error
            raise pytest.UsageError(str(exc)) from None
        if own:  # device synchronisation and single-shot timing are the harness runner's, not pytest-benchmark's
            raise pytest.UsageError(f"--bench-grid {config.bench_grid}: the {own[0]} grids run under "
                                    f"`conv1dbench run --grid {config.bench_grid}` only")
    config.bench_timing = timing
    config.bench_skipped = []  # rows of the measurements skipped from a predicted cost
    if timing and not config.getoption("benchmark_json"):
        folder = Path(config.rootpath) / RESULTS
        folder.mkdir(parents=True, exist_ok=True)
        config.option.benchmark_json = folder / "benchmark.json"


def pytest_generate_tests(metafunc):
    if "point" not in metafunc.fixturenames:
        return
    from conv1dbench.harness import cases, grid  # import time (see above)

    api = metafunc.function.__name__.removeprefix("test_")
    points = [p for p in grid.grid(metafunc.config.bench_grid) if p["api"] == api]
    impls = [i for i in cases.implementations() if not cases.worker_env(i)]  # one process: no one-thread variant
    metafunc.parametrize("impl", impls)
    metafunc.parametrize("point", points, ids=[f"{p['pass']}-{p['dtype']}-{p['mode']}-{grid.label(p)}"
                                               for p in points])


def pytest_collection_modifyitems(config, items):
    """When timing: the benchmarks grouped by implementation, in their order otherwise (a stable sort)."""
    if not getattr(config, "bench_timing", False):
        return
    order = {}
    for item in items:
        impl = _impl_of(item)
        if impl is not None:
            order.setdefault(impl, len(order))
    items.sort(key=lambda item: order.get(_impl_of(item), -1))


def _impl_of(item) -> str | None:
    """The implementation a benchmark item times (None for other tests)."""
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("impl") if callspec is not None and "point" in callspec.params else None


def pytest_benchmark_update_json(config, benchmarks, output_json):
    """Our record of the run beside pytest-benchmark's: machine, measured peak, grid, skips."""
    if not getattr(config, "bench_timing", False):
        return
    from conv1dbench.harness.peak import measure_peak  # import time (see above)
    from conv1dbench.harness.runner import code_version  # import time (see above)
    from conv1dbench.machine import machine_info

    output_json["conv1dbench"] = {
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "command": "pytest " + " ".join(shlex.quote(a) for a in sys.argv[1:]),
        "grid": config.bench_grid, "machine": {**machine_info(), **code_version()},
        "isolation": "one pytest process for every implementation, one implementation after another "
                     "(see `conv1dbench run` for isolated timings)",
        "min_time_s": 0.1, "min_samples": 3, "peak": measure_peak(quick=config.bench_grid == "smoke"),
        "skipped": config.bench_skipped}


def pytest_sessionfinish(session, exitstatus):
    """After pytest-benchmark wrote its JSON (its hook wraps this one): the report beside it."""
    config = session.config
    path = config.getoption("benchmark_json")
    if not getattr(config, "bench_timing", False) or not path or not Path(path).is_file():
        return
    from conv1dbench import _wisdom  # import time (see above)
    from conv1dbench.harness import report
    from conv1dbench.harness.tune import measurements_from_rows

    run = report.from_pytest_benchmark(Path(path))
    written = report.write(run, Path(path).parent, "report")
    wisdom = _wisdom.record(measurements_from_rows(run.rows))
    print(f"\nconv1dbench report: {', '.join(str(p) for p in written)}; timings added to auto's wisdom: {wisdom}",
          file=sys.stderr)
