"""The harness: tidy rows, skips and failures recorded, reports rebuilt identically, the command line."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conv1dbench import _model, _registry, cli
from conv1dbench.harness import cases, compare, estimate, grid, pytest_plugin, report, runner, worker

SMOKE = grid.grid("smoke")
SIGNAL = next(p for p in SMOKE if p["api"] == "signal")
LAYER = next(p for p in SMOKE if p["api"] == "layer" and p["pass"] == "backward")


def test_grids_are_named_and_labelled():
    assert grid.GRIDS[:4] == ("smoke", "default", "large", "tune")
    default = grid.grid("default")
    assert {p["api"] for p in default} == {"signal", "layer"}
    assert {p["pass"] for p in default if p["api"] == "layer"} == {"forward", "backward"}
    assert any(p["groups"] == p["C_in"] for p in default if p["api"] == "layer")   # depthwise
    assert any(p["stride"] > 1 for p in default if p["api"] == "layer")           # strided
    assert len(grid.grid("large")) > len(default)
    assert grid.label(SIGNAL) == "N=1e+03 K=3"
    # auto's models are fitted on the tune grid and judged on the default grid: no shape in common
    assert not {grid.label(p) for p in grid.grid("tune")} & {grid.label(p) for p in default}
    with pytest.raises(ValueError, match="unknown grid 'huge'"):
        grid.grid("huge")


def test_flops_count_two_per_multiply_add_of_the_direct_method():
    assert grid.flops(grid.signal_point(1000, 3)) == 2 * 1000 * 3                 # full: every pair
    assert grid.flops(grid.signal_point(1000, 3, "valid")) == 2 * 998 * 3
    assert grid.flops(grid.signal_point(1000, 3, "same")) == 2 * (1000 * 3 - 2)    # an edge tap each side
    assert grid.flops(grid.signal_point(10, 1000, "valid")) == 2 * 991 * 10        # not 2 N K
    forward = grid.layer_point(2, 4, 6, 100, 3)
    assert grid.flops(forward) == 2 * 2 * 6 * 4 * (3 * 100 - 2)
    assert grid.flops({**forward, "pass": "backward"}) == 2 * grid.flops(forward)


@pytest.mark.parametrize("seed", range(5))
def test_direct_multiply_adds_are_the_pairs_that_read_a_sample(seed):
    """Problem.direct_macs against a count of every (output, tap) pair by brute force."""
    import numpy as np

    from conv1dbench._plan import Problem

    rng = np.random.default_rng(seed)
    for _ in range(40):
        length, taps = int(rng.integers(1, 40)), int(rng.integers(1, 12))
        stride, dilation = int(rng.integers(1, 4)), int(rng.integers(1, 4))
        pad_left, pad_right = int(rng.integers(0, 3 * taps)), int(rng.integers(0, 3 * taps))
        if length + pad_left + pad_right < dilation * (taps - 1) + 1:
            continue
        p = Problem(np.float64, 2, 3, 4, length, taps, 1, pad_left, pad_right, stride, dilation)
        pairs = sum(0 <= l * stride + k * dilation - pad_left < length for l in range(p.l_out) for k in range(taps))
        assert p.direct_macs == 2 * 4 * 3 * pairs
        assert p.flops == 2 * p.direct_macs


def test_worker_row_has_the_tidy_columns_and_a_checked_result():
    row = worker.row_for("numba", SIGNAL, min_time_s=0.01, min_samples=2)
    assert row["status"] == "ok" and row["median_s"] > 0 and row["gflops"] > 0
    assert row["max_error"] < 1e-12                       # float64 against the float64 reference
    assert set(report.COLUMNS) >= set(row) - {"flops", "samples_s"}
    assert len(row["samples_s"]) >= 2 and min(row["samples_s"]) <= row["median_s"] <= max(row["samples_s"])
    layer = worker.row_for("im2col", LAYER, min_time_s=0.01, min_samples=2)
    assert layer["status"] == "ok" and layer["max_error"] < 1e-5


@pytest.mark.parametrize("error", [2e-12, float("nan")])
def test_a_result_beyond_the_spec_tolerance_fails_its_row_and_names_the_error(monkeypatch, error):
    from conv1dbench.harness.case import Case

    monkeypatch.setattr(worker, "setup", lambda impl, point: Case(call=lambda: None, error=lambda: error))
    row = worker.row_for("numba", SIGNAL, min_time_s=0.01, min_samples=2)  # float64: tolerance 1e-12
    assert row["status"] == "failed" and "wrong result" in row["reason"] and "1e-12" in row["reason"]
    monkeypatch.setattr(worker, "setup", lambda impl, point: Case(call=lambda: None, error=lambda: 5e-13))
    assert worker.row_for("numba", SIGNAL, min_time_s=0.01, min_samples=2)["status"] == "ok"


def test_run_exits_non_zero_when_a_measurement_failed(monkeypatch, tmp_path, capsys):
    rows = [dict(worker._row("numba", SIGNAL), status="failed", reason="WrongResult: wrong result: error 1e-3")]
    monkeypatch.setattr(runner, "sweep", lambda *a, **k: runner.Run({"grid": "smoke", "machine": {}}, rows))
    monkeypatch.setattr(report, "write", lambda *a, **k: [])
    assert cli.main(["run", "--grid", "smoke", "--no-wisdom", "--out", str(tmp_path)]) == 1
    assert "failed: numba on signal" in capsys.readouterr().err


def test_a_sweep_journals_each_row_and_resumes_where_it_stopped(tmp_path):
    journal = tmp_path / runner.JOURNAL
    settings = {"min_time_s": 0.01, "min_samples": 2, "progress": False, "interference": False, "memory": False,
                "quick_peak": True, "journal": journal}
    first = runner.sweep([SIGNAL], ["numpy", "scipy"], **settings)
    assert [(r["impl"], r["round"]) for r in runner.journal_rows(tmp_path)] == [("numpy", 1), ("scipy", 1)]
    kept = runner.journal_rows(tmp_path)[:1]
    journal.write_text(json.dumps(kept[0]) + "\n" + '{"impl": "sci')     # stopped while writing the second
    assert runner.journal_rows(tmp_path) == kept
    resumed = runner.sweep([SIGNAL], ["numpy", "scipy"], done=kept, **settings)
    assert resumed.meta["resumed_rows"] == 1 and len(resumed.rows) == len(first.rows) == 2
    assert resumed.rows[0] == kept[0]                                    # kept, not measured again
    assert [r["impl"] for r in runner.journal_rows(tmp_path)] == ["numpy", "scipy"]


def test_run_resume_runs_the_saved_command_with_its_rows_and_ctrl_c_leaves_a_report(monkeypatch, tmp_path, capsys):
    seen = {}

    def sweep(points, impls, **kwargs):
        seen.update(kwargs, impls=impls)
        if kwargs.get("done") == []:
            raise KeyboardInterrupt
        return runner.Run({"grid": "smoke", "machine": {}}, list(kwargs["done"]))
    monkeypatch.setattr(runner, "sweep", sweep)
    monkeypatch.setattr(report, "write", lambda run, folder, *a, **k: [folder / "report.json", 0, folder / "report.md"])
    folder = tmp_path / "run"
    argv = ["run", "--grid", "smoke", "--api", "signal", "--backends", "numba", "--peers", "numpy", "--no-wisdom",
            "--out", str(folder)]
    assert cli.main(argv) == 130                                         # Ctrl-C: a partial report, and how to go on
    assert f"conv1dbench run --resume {folder}" in capsys.readouterr().err
    assert json.loads((folder / cli.ARGV_FILE).read_text()) == argv
    (folder / runner.JOURNAL).write_text(json.dumps(dict(worker._row("numba", SIGNAL), status="ok", round=1)) + "\n")
    assert cli.main(["run", "--resume", str(folder)]) == 0
    assert seen["impls"] == ["numba", "numpy"] and len(seen["done"]) == 1 and seen["journal"] == folder / runner.JOURNAL
    with pytest.raises(SystemExit):
        cli.main(["run", "--resume"])
    assert cli.main(["run", "--resume", str(tmp_path)]) == 2             # no run there to resume


def test_the_command_line_has_a_version_exit_codes_and_json(monkeypatch, capsys, tmp_path):
    import conv1dbench

    with pytest.raises(SystemExit) as done:
        cli.main(["--version"])
    assert done.value.code == 0 and capsys.readouterr().out.strip() == f"conv1dbench {conv1dbench.__version__}"
    monkeypatch.setattr(cli, "cmd_info", lambda as_json=False: 1 / 0)   # a bug: one line and status 3
    assert cli.main(["info"]) == 3 and "--debug" in capsys.readouterr().err
    with pytest.raises(ZeroDivisionError):
        cli.main(["info", "--debug"])
    monkeypatch.setenv(cli.DEBUG_ENV, "1")
    with pytest.raises(ZeroDivisionError):
        cli.main(["info"])
    monkeypatch.undo()
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["version"] == conv1dbench.__version__ and "numba" in info["backends"] and info["machine"]["cpu"]
    rows = [dict(worker._row("numba", SIGNAL), status="ok", median_s=1e-3, samples_s=[1e-3] * 5)]
    for name in ("a", "b"):
        runner.Run({"grid": "toy"}, rows).save(tmp_path / f"{name}.json")
    assert cli.main(["compare", str(tmp_path / "a.json"), str(tmp_path / "b.json"), "--json"]) == 0
    compared = json.loads(capsys.readouterr().out)
    assert compared["points"][0]["verdict"] == "same" and compared["min_effect"] == compare.MIN_EFFECT


def test_run_help_describes_every_grid_with_its_predicted_minutes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["run", "--help"])
    text = capsys.readouterr().out
    for name in grid.GRIDS:
        assert f"  {name} " in text
    assert "min)" in text and "(default: 0.1)" in text                 # --min-time's default shown
    assert "its checks included" in text and "Numba's compilation" in text   # the whole run, and the first one's extra


def test_the_help_predicts_what_the_sweep_will_do():
    """``run --help`` and the progress bar share one plan: the sweep and every check after it."""
    points, impls = SMOKE, ["numba", "auto", "scipy"]
    whole = runner.planned(points, impls)
    bare = runner.planned(points, impls, interference=False, memory=False)
    assert whole.checked and whole.chosen and whole.loaded and whole.reread
    assert not bare.chosen and not bare.loaded and not bare.reread
    assert whole.total_s > bare.total_s > whole.round_s > 0


def test_labels_are_exact_and_compare_joins_on_the_parameters():
    assert grid.label(grid.signal_point(65536, 3)) == "N=65536 K=3"
    assert grid.label(grid.signal_point(10**5, 3)) == "N=1e+05 K=3" and grid.label(grid.signal_point(3 * 10**5, 3)) \
        == "N=3e+05 K=3"
    old = [dict(worker._row("numba", grid.signal_point(65536, 3)), status="ok", median_s=1.0, shape="N=7e+04 K=3")]
    new = [dict(worker._row("numba", grid.signal_point(65536, 3)), status="ok", median_s=2.0)]
    (entry,) = compare.compare(old, new)                                 # the old label rounded; joined anyway
    assert entry["ratio"] == 2.0 and entry["shape"] == "N=65536 K=3"
    other = [dict(worker._row("numba", grid.signal_point(70000, 3)), status="ok", median_s=1.0, shape="N=7e+04 K=3")]
    assert compare.compare(other, new) == []                             # same rounded label, another point


def test_workers_import_the_package_the_run_runs_not_the_working_folders(tmp_path, monkeypatch):
    """A snapshot run from a checkout (``PYTHONPATH=snapshot conv1dbench run`` in the checkout) must time
    the snapshot: ``python -m`` puts the working folder first, and its conv1dbench would win."""
    fake = tmp_path / "conv1dbench"
    fake.mkdir()
    (fake / "__init__.py").write_text("raise ImportError('the working folder copy was imported')\n")
    monkeypatch.chdir(tmp_path)
    rows = runner._work(["numba"], [SIGNAL], 0.01, 2)
    assert rows[0]["status"] == "ok", rows[0].get("reason")
    assert runner.fresh_python("import conv1dbench").returncode == 0


def test_skips_and_failures_are_rows_not_crashes():
    skipped = worker.row_for("numpy", LAYER, 0.01, 2)
    assert skipped["status"] == "skipped" and "no layer API" in skipped["reason"]
    big = grid.signal_point(10**7, 1023)
    assert cases.skip_reason("naive", big).startswith("predicted too slow")
    failed = worker.row_for("no-such-impl", SIGNAL, 0.01, 2)
    assert failed["status"] == "failed" and "unknown implementation" in failed["reason"]
    # a worker process that dies: its unfinished points come back failed, with why
    rows = runner._work(["numba"], [SIGNAL, {"api": "signal"}], 0.01, 2)
    assert [r["status"] for r in rows][:1] == ["ok"]
    assert rows[-1]["status"] == "failed" and "worker exited" in rows[-1]["reason"]


@pytest.fixture(scope="module")
def toy_run():
    points = [SIGNAL, LAYER]
    return runner.sweep(points, ["numba", "im2col", "auto", "scipy", "numpy"], min_time_s=0.01, min_samples=2,
                        progress=False, quick_peak=True, command="test", grid="toy")


def test_sweep_tidy_table_and_interference_check(toy_run):
    frame = report.tidy(toy_run)
    assert list(frame.columns) == report.COLUMNS
    assert len(frame) == 2 * 5
    assert set(frame.status) == {"ok", "skipped"}         # numpy and scipy have no layer API
    assert toy_run.meta["peak"]["gemm_gflops"]["float64"] > 0
    assert toy_run.meta["peak"]["fma_gflops"]["float64"] > 0
    assert {c["impl"] for c in toy_run.meta["interference"]} >= {"numba", "im2col"}
    assert "machine" in toy_run.meta and toy_run.meta["machine"]["cores"] >= 1
    assert toy_run.meta["auto"]["shipped_models"].startswith("fitted on the tune grid")
    # what says how far to trust it: the code that ran, the other load, the peak again at the end
    assert len(toy_run.meta["machine"]["commit"]) == 40 and isinstance(toy_run.meta["machine"]["dirty"], bool)
    assert "others_share" in toy_run.meta["other_load"] and toy_run.meta["peak_drift"]["ratios"]
    text = report.markdown(toy_run, frame)
    assert "## Stability" in text and "- commit: " in text


def test_the_busy_process_check_times_each_call_alone_and_between_blas_numpy_and_scipy(toy_run, tmp_path):
    checks = toy_run.meta["busy"]
    assert {c["condition"] for c in checks} == set(runner.BUSY_CONDITIONS)
    assert {c["impl"] for c in checks} == {"numba", "im2col", "auto", "scipy", "numpy"}
    for c in checks:
        assert c["alone_s"] > 0 and c["busy_s"] > 0 and c["product_s"] > 0 and c["rounds"] >= 2
        assert c["ratio"] == pytest.approx(c["busy_s"] / c["alone_s"])
        assert c["product_ratio"] == pytest.approx(c["product_after_s"] / c["product_s"])
    text = report.markdown(toy_run, report.tidy(toy_run))
    assert "## In a busy process" in text and "### OPENBLAS_THREAD_TIMEOUT=4:" in text
    assert report._busy_met({"alone_s": 2e-3, "ratio": 1.29, "product_ratio": 1.0})
    assert not report._busy_met({"alone_s": 2e-3, "ratio": 1.31, "product_ratio": 1.0})
    assert report._busy_met({"alone_s": 2e-4, "ratio": 1.9, "product_ratio": 1.3})
    assert not report._busy_met({"alone_s": 2e-4, "ratio": 1.9, "product_ratio": 1.31})


def test_auto_is_timed_again_beside_the_fastest_backend(toy_run):
    checks = {(c["api"], c["shape"]): c for c in toy_run.meta["auto_check"]}
    assert len(checks) == 2  # both points
    frame = report.tidy(toy_run)
    for (api, shape), c in checks.items():
        ours = frame[(frame.api == api) & (frame["shape"] == shape) & frame.impl.isin(["numba", "im2col"])]
        assert c["fastest"] == ours.loc[ours.median_s.idxmin(), "impl"]
        assert c["chose"] in ("numba", "im2col", "fft", "naive")
        assert c["ratio"] == pytest.approx(c["auto_s"] / c["fastest_s"]) and c["auto_s"] > 0
        assert ("scipy_s" in c) == (api == "signal")  # auto is timed beside scipy on signals only
    beside_scipy = checks[("signal", grid.label(SIGNAL))]
    assert beside_scipy["scipy_s"] > 0 and beside_scipy["auto_beside_scipy_s"] > 0


def test_report_is_rebuilt_identically(toy_run, tmp_path):
    first = report.write(toy_run, tmp_path / "a", "report", plots=False)
    assert [p.name for p in first] == ["report.json", "report.csv", "report.md"]
    assert cli.main(["report", str(tmp_path / "a" / "report.json"), "--out", str(tmp_path / "b"), "--no-plots"]) == 0
    assert (tmp_path / "a" / "report.md").read_text() == (tmp_path / "b" / "report.md").read_text()
    # a run's folder names its report.json, and the report is rebuilt where the run is
    (tmp_path / "a" / "report.md").unlink()
    assert cli.main(["report", str(tmp_path / "a"), "--no-plots"]) == 0
    assert (tmp_path / "a" / "report.md").read_text() == (tmp_path / "b" / "report.md").read_text()
    text = (tmp_path / "a" / "report.md").read_text()
    for fragment in ("## Machine", "measured peak", "## Findings", "vs scipy", "max error", "First call",
                     "Interference check", "Skipped and failed", "auto decided from: the shipped cost models",
                     "## Auto's choices", "chose the fastest backend at", "scipy / auto",
                     "auto vs scipy.signal.convolve, timed in turn"):
        assert fragment in text
    csv = pd.read_csv(tmp_path / "a" / "report.csv")
    assert list(csv.columns) == report.COLUMNS


def test_short_calls_are_timed_beside_numpy_and_fresh_processes_reported(toy_run, tmp_path):
    """The short-call check (cb.convolve against numpy.convolve, in turn in one process) and the fresh
    processes' import and first calls are in the run's meta and the report."""
    (check,) = toy_run.meta["short_calls"]            # the toy grid's one short point: SIGNAL
    assert check["shape"] == grid.label(SIGNAL) and check["target"] == grid.SHORT_TARGETS[SIGNAL["N"]]
    assert check["convolve_s"] > 0 and check["numpy_s"] > 0 and check["chose"] in _registry.BACKEND_NAMES
    assert check["ratio"] == pytest.approx(check["convolve_s"] / check["numpy_s"])
    assert check["met"] == (check["ratio"] <= check["target"])
    fresh = toy_run.meta["fresh_process"]
    assert len(fresh["processes"]) == runner.FRESH_PROCESSES and fresh["N"] == runner.FRESH_CALL["N"]
    for name in ("import_numpy_s", "import_conv1dbench_s", "first_call_s", "second_call_s", "warm_call_s"):
        assert 0 < fresh[name] < 60, name
    assert fresh["warm_call_s"] < fresh["second_call_s"] < fresh["first_call_s"]  # the cache load is the first's
    text = "".join(report.short_calls_section(toy_run.meta))
    for fragment in ("## Short calls", "numpy.convolve (µs)", "targets met at", "import conv1dbench (ms)",
                     "first call (ms)"):
        assert fragment in text
    report.write(toy_run, tmp_path, "report", plots=False)
    assert "## Short calls" in (tmp_path / "report.md").read_text()


def test_short_points_and_their_targets():
    default = grid.short_points(grid.grid("default"))
    assert {(p["N"], p["dtype"], p["mode"]) for p in default} == {
        (n, dtype, mode) for n in grid.SHORT_TARGETS for dtype in ("float32", "float64") for mode in grid.SHORT_MODES}
    assert not grid.short_points(grid.grid("tune")) + grid.short_points(grid.grid("gpu"))
    assert grid.short_points(SMOKE) == [SIGNAL]
    assert not grid.short_points([grid.signal_point(1000, 3, batch=4), grid.signal_point(1000, 3, dtype="complex64"),
                                  grid.signal_point(1000, 3, "valid"), LAYER])
    # where auto and numpy are both timed: the pair; where auto is: the fresh processes
    assert runner._short_phases_of(SMOKE, ["auto", "numpy"]) == ([SIGNAL], runner.FRESH_PROCESSES)
    assert runner._short_phases_of(SMOKE, ["auto", "numba"]) == ([], runner.FRESH_PROCESSES)
    assert runner._short_phases_of(SMOKE, ["numba", "numpy"]) == ([], 0)
    assert runner._short_phases_of([LAYER], ["auto", "numpy"]) == ([], 0)


def test_short_call_rows_medians_and_the_section_from_numbers():
    point = grid.signal_point(100, 3, "same", "float32")
    row = runner.short_call_row(point, {"median_s": 3e-6, "chose": "numba"}, {"median_s": 1e-6})
    assert row["ratio"] == pytest.approx(3.0) and row["target"] == 2.0 and row["met"] is False
    assert runner.short_call_row(point, {"median_s": 1.5e-6}, {"median_s": 1e-6})["met"] is True
    assert runner.fresh_medians([{"a": 3.0}, {"a": 1.0}, {"a": 2.0}]) == {"a": 2.0} and runner.fresh_medians([]) == {}
    fresh = {**runner.FRESH_CALL, "import_numpy_s": 0.04, "import_conv1dbench_s": 0.02, "first_call_s": 0.35,
             "second_call_s": 1.5e-5, "warm_call_s": 1.6e-6, "processes": [{}] * 3}
    text = "\n".join(report.short_calls_section({"short_calls": [row], "fresh_process": fresh}))
    assert "| N=1e+02 K=3 | float32 | same | numba | 3.00 | 1.00 | 3.00x | 2x | NO |" in text
    assert "targets met at 0 of 1 points" in text and "| 40.0 | 20.0 | 350 | 15.0 | 1.60 |" in text
    failed = report.short_calls_section({"fresh_process": {**runner.FRESH_CALL, "failed": "exited with 1: boom"}})
    assert "failed, exited with 1: boom" in "".join(failed)
    assert report.short_calls_section({}) == []


def test_report_from_pytest_benchmark_json(toy_run, tmp_path):
    ok = [r for r in toy_run.rows if r["status"] == "ok"]
    raw = {"benchmarks": [{"extra_info": {k: v for k, v in r.items() if k not in ("median_s", "q25_s", "q75_s")}
                           | {"flops": grid.flops(SIGNAL if r["api"] == "signal" else LAYER)},
                           "stats": {"median": r["median_s"], "q1": r["q25_s"], "q3": r["q75_s"], "rounds": 3,
                                     "iterations": 2}} for r in ok],
           "conv1dbench": {**toy_run.meta, "skipped": [r for r in toy_run.rows if r["status"] == "skipped"]}}
    path = tmp_path / "benchmark.json"
    path.write_text(json.dumps(raw))
    run = report.from_pytest_benchmark(path)
    frame = report.tidy(run)
    assert len(frame) == len(toy_run.rows) and (frame.calls[frame.status == "ok"] == 6).all()
    assert frame.gflops.notna().sum() == len(ok)
    # its folder (benchmark.json, no report.json yet) is read the same way
    assert cli.main(["report", str(tmp_path), "--no-plots"]) == 0
    assert (tmp_path / "report.md").is_file() and (tmp_path / "report.json").is_file()


def test_benchmarks_run_one_implementation_after_another_when_timed():
    from types import SimpleNamespace

    def item(impl, name):
        return SimpleNamespace(name=name, callspec=SimpleNamespace(params={"impl": impl, "point": {}}))

    items = [item("numba", "a"), item("im2col", "a"), SimpleNamespace(name="other"), item("numba", "b"),
             item("im2col", "b")]
    pytest_plugin.pytest_collection_modifyitems(SimpleNamespace(bench_timing=False), items)
    assert [i.name for i in items] == ["a", "a", "other", "b", "b"]  # untimed: as collected
    pytest_plugin.pytest_collection_modifyitems(SimpleNamespace(bench_timing=True), items)
    assert [(getattr(i, "callspec", None) and i.callspec.params["impl"], i.name) for i in items] == [
        (None, "other"), ("numba", "a"), ("numba", "b"), ("im2col", "a"), ("im2col", "b")]


def _with_samples(run, factor, seed=0, spread=0.02, n=30):
    """``run`` with every ok row's samples drawn around ``factor`` times its median (``spread`` relative)."""
    rng = np.random.default_rng(seed)
    rows = []
    for r in run.rows:
        if r["status"] == "ok":
            samples = r["median_s"] * factor * (1 + spread * rng.standard_normal(n))
            r = dict(r, median_s=float(np.median(samples)), samples_s=samples.tolist())
        rows.append(r)
    return runner.Run(run.meta, rows)


def test_compare_calls_a_change_only_where_it_is_large_and_significant(toy_run, tmp_path, capsys):
    ok = sum(r["status"] == "ok" for r in toy_run.rows)
    assert all(len(r["samples_s"]) >= 2 for r in toy_run.rows if r["status"] == "ok")  # the run keeps them
    runs = {name: tmp_path / f"{name}.json" for name in ("old", "again", "slower", "slightly", "bare")}
    _with_samples(toy_run, 1.0, seed=1).save(runs["old"])
    _with_samples(toy_run, 1.0, seed=2).save(runs["again"])      # the same code again: noise only
    _with_samples(toy_run, 2.0, seed=3).save(runs["slower"])
    _with_samples(toy_run, 1.02, seed=4, spread=0.001).save(runs["slightly"])  # significant, but 2%
    bare = [dict({k: v for k, v in r.items() if k != "samples_s"}, median_s=r.get("median_s", 0) * 3)
            for r in toy_run.rows]
    runner.Run(toy_run.meta, bare).save(runs["bare"])

    assert cli.main(["compare", str(runs["old"]), str(runs["slower"])]) == 1
    out = capsys.readouterr().out
    assert f"{ok} measurements compared: {ok} slower" in out and "| numba | 2 | " in out
    assert cli.main(["compare", str(runs["old"]), str(runs["again"])]) == 0
    assert f": 0 slower, 0 faster, {ok} the same" in capsys.readouterr().out
    assert cli.main(["compare", str(runs["slower"]), str(runs["old"])]) == 0  # faster is no failure
    assert f": 0 slower, {ok} faster" in capsys.readouterr().out
    assert cli.main(["compare", str(runs["old"]), str(runs["slightly"])]) == 0
    assert f"{ok} the same" in capsys.readouterr().out
    assert cli.main(["compare", str(runs["old"]), str(runs["slightly"]), "--min-effect", "0.01"]) == 1
    capsys.readouterr()
    # no samples on one side (pytest-benchmark JSON, old runs): the ratio is shown, never called a change
    assert cli.main(["compare", str(runs["old"]), str(runs["bare"])]) == 0
    assert f"{ok} untested" in capsys.readouterr().out
    folders = [tmp_path / "a", tmp_path / "b"]  # runs named by their folders
    for folder, name in zip(folders, ("old", "slower"), strict=True):
        folder.mkdir()
        (folder / "report.json").write_text(runs[name].read_text())
    assert cli.main(["compare", *map(str, folders)]) == 1


def test_the_significance_of_a_ratio_from_two_sets_of_samples():
    rng = np.random.default_rng(5)
    base = 1e-3 * (1 + 0.05 * rng.standard_normal(40))
    same = compare.significance(base, 1e-3 * (1 + 0.05 * rng.standard_normal(40)))
    assert same["p"] > 0.01 and same["low"] < 1 < same["high"]
    shifted = compare.significance(base, base * 1.1)
    assert shifted["p"] < 1e-6 and 1.05 < shifted["low"] < 1.1 < shifted["high"] < 1.15
    assert compare.significance(base, base * 1.1) == shifted  # a fixed seed: the same interval every time


def test_tune_fits_the_default_models_from_a_saved_run(toy_run, tmp_path):
    """How the shipped models are made: ``conv1dbench tune --from-run
    results/archive/amd-epyc-avx512-blas-haswell/tune/report.json``."""
    saved = tmp_path / "report.json"
    rows = [dict(r, median_s=r["median_s"] * f) for r in toy_run.rows if r["status"] == "ok" for f in (1, 2)]
    points = [dict(r, N=int(r["N"]) * f) for r in rows if r["api"] == "signal" for f in (2, 3, 4)]  # 4+ per model
    runner.Run(toy_run.meta, rows + points).save(saved)
    wisdom, default = tmp_path / "wisdom.json", tmp_path / "model.json"
    assert cli.main(["tune", "--from-run", str(saved), "--wisdom", str(wisdom), "--write-default", str(default)]) == 0
    written = json.loads(default.read_text())
    assert written["fitted_on"]["grid"] == "toy" and written["fitted_on"]["measurements"] > 0
    assert "numba float64 forward" in written["models"]
    assert written["models"]["numba float64 forward"].keys() == set(_model.FEATURES)


@pytest.mark.parametrize("argv, fragment", [
    (["run", "--backends", "gpu9"], "gpu9 not available"),
    (["report", "/no/such/file.json"], "no such file"),
    (["report", "{empty}"], "holds no saved run: looked for report.json and benchmark.json in it"),
    (["compare", "{empty}", "/no/such/file.json"], "holds no saved run"),
])
def test_cli_errors_are_one_line(argv, fragment, capsys, tmp_path):
    assert cli.main([a.format(empty=tmp_path) for a in argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("conv1dbench: error:") and fragment in err


@pytest.mark.parametrize("command", ["run", "tune"])
def test_grid_choices_are_argparse_choices(command, capsys):
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--help"])
    assert exit_.value.code == 0
    usage = " ".join(capsys.readouterr().out.split())
    assert "--grid GRID" in usage and all(name in usage for name in grid.GRIDS)
    if command == "tune":
        assert f"about {grid.MINUTES['tune']} min a round" in usage
    with pytest.raises(SystemExit) as exit_:
        cli.main([command, "--grid", "huge"])
    assert exit_.value.code == 2
    assert "argument --grid: invalid choice: 'huge'" in capsys.readouterr().err


def test_cli_run_end_to_end_on_the_smoke_grid(tmp_path):
    """The console script's module, in a process of its own, as a user runs it."""
    done = subprocess.run([sys.executable, "-m", "conv1dbench", "run", "--grid", "smoke", "--api", "signal",
                           "--backends", "numba,auto", "--peers", "numpy", "--min-time", "0.01",
                           "--no-interference", "--no-progress", "--out", str(tmp_path)],
                          capture_output=True, text=True, check=False, timeout=600)
    assert done.returncode == 0, done.stderr
    frame = pd.read_csv(tmp_path / "report.csv")
    assert set(frame.impl) == {"numba", "auto", "numpy"} and (frame.status == "ok").all()
    assert (tmp_path / "signal_fastest.png").stat().st_size > 0
    # the memory check: the smoke grid's points again, the allocator as is and memory reused
    meta = json.loads((tmp_path / "report.json").read_text())["meta"]
    assert meta["memory_condition"] == "allocator as is" and meta["reused_environment"] == runner.WORKER_ENV
    assert {c["impl"] for c in meta["memory"]} == {"numba", "auto", "numpy"}
    assert all(c["as_is_s"] > 0 and c["reused_s"] > 0 and c["ratio"] == pytest.approx(c["reused_s"] / c["as_is_s"])
               for c in meta["memory"])
    text = (tmp_path / "report.md").read_text()
    assert "## Memory: the allocator as is and reused" in text and "| reused / as is |" in text
    assert "every table but *Memory* comes from workers with the allocator as users have it" in text
    info = subprocess.run([sys.executable, "-m", "conv1dbench", "info"], capture_output=True, text=True, check=False)
    assert info.returncode == 0 and "numba" in info.stdout and "cores" in info.stdout


# --------------------------------------------------------------------------------------------
# The progress bar: predicted seconds, not counts of measurements
# --------------------------------------------------------------------------------------------

def test_measurements_are_predicted_from_the_cost_models():
    est = estimate.Estimate(min_time_s=0.1, min_samples=3)
    impls = cases.implementations()
    total = sum(est.measurement_s(impls, p) for p in SMOKE)
    assert 0 < total < float("inf")
    light, heavy = grid.signal_point(1000, 3), grid.signal_point(10**6, 1023)
    for impl in impls:
        assert 0.1 <= est.measurement_s([impl], light) < est.measurement_s([impl], heavy) or cases.skip_reason(
            impl, heavy), impl
    # a call of 2 s spends the min_samples, not the min_time: five calls and more
    assert est.measurement_s(["numpy"], heavy) > 5 * est.call_s("numpy", heavy) > 5 * est.call_s("auto", heavy)
    small, big = grid.layer_point(2, 8, 8, 128, 3), grid.layer_point(16, 128, 128, 2048, 9, direction="backward")
    assert est.measurement_s(["auto"], small) < est.measurement_s(["auto"], big)
    assert est.measurement_s(["numpy"], LAYER) == 0           # skipped: no layer API
    pair = est.measurement_s(["auto", "scipy"], light, interleave=True, min_time_s=0.2)
    assert 0.2 <= pair < est.measurement_s(["auto", "scipy"], light) + 0.2


def test_predictions_without_a_model_have_proxies(monkeypatch):
    est = estimate.Estimate(min_time_s=0.05, min_samples=3)
    device = next((name for name in cases.BACKEND_NAMES if cases.declares_device(name)), None)
    points = [grid.signal_point(10**5, 64, "full", dtype) for dtype in ("complex64", "complex128")]
    points += [{**p, "suite": "gpu"} for p in grid.grid("gpu-smoke")] + grid.grid("dask-smoke")
    for point in points:
        for impl in ["auto", "numba"] + ([device, device + cases.DEVICE_VARIANT] if device else []):
            seconds = est.call_s(impl, point)
            assert 0 < seconds < 60, (impl, point)
    nothing = estimate.Estimate(0.05, 3, models={})           # no model at all: the flops at a nominal rate
    light, heavy = grid.signal_point(1000, 3), grid.signal_point(10**6, 63)
    assert 0 < nothing.call_s("numba", light) < nothing.call_s("numba", heavy)
    monkeypatch.setitem(_registry._modules, "numba", None)  # a backend with a shipped model that does not load here
    assert 0 < estimate.Estimate(0.05, 3).measurement_s(["auto", "numba"], heavy) < float("inf")


def test_predicting_a_grid_is_cheap():
    import time

    est = estimate.Estimate(0.1, 3)
    points, impls = grid.grid("default"), cases.implementations()
    start = time.perf_counter()
    checked, chosen = runner._repeatable(points), runner._interference_points(points)
    plan = runner._Plan(points, impls, est, 2, checked, ["scipy"], chosen)
    assert time.perf_counter() - start < 1.0
    assert plan.total_s > 2 * plan.round_s > 0 and plan.check_s > 0
    pairs = len(points) + len([p for p in points if p["api"] == "signal"])  # auto with the fastest, with scipy
    assert plan.count == 2 * len(points) * len(impls) + 2 * len(impls) + 2 * runner.CHECK_ROUNDS * pairs
    short = grid.short_points(points)
    with_short = runner._Plan(points, impls, est, 2, checked, ["scipy"], chosen, short=short, fresh=3)
    assert with_short.count == plan.count + 2 * len(short) + 1
    assert with_short.total_s == pytest.approx(plan.total_s + with_short.short_s + with_short.fresh_s)
    assert 0 < with_short.short_s < 30 and with_short.fresh_s == estimate.fresh_processes_s(4)


def test_the_bar_advances_by_predicted_seconds_to_its_total(monkeypatch):
    """Every measurement moves the bar by its prediction; the phases end where the prediction says."""
    ticks = []

    class Recording(runner._Progress):
        def tick(self, seconds, measurements=1):
            ticks.append((seconds, measurements))
            super().tick(seconds, measurements)

    def work(impls, points, min_time_s, min_samples, on_row=None, interleave=False, busy=False, env=None):
        timed = dict(alone_s=1e-3, busy_s=2e-3, product_s=1e-3, product_after_s=1e-3, rounds=3) if busy else {}
        rows = [dict(worker._row(impl, p), median_s=1e-3, chose=None, **timed) for p in points for impl in impls]
        for row in rows:
            on_row and on_row(row)
        return rows

    monkeypatch.setattr(runner, "_Progress", Recording)
    monkeypatch.setattr(runner, "_work", work)
    monkeypatch.setattr(runner, "measure_peak", lambda *args, **kwargs: {})
    monkeypatch.setattr(runner, "fresh_process_check", lambda processes: {"processes": [{}] * processes})
    run = runner.sweep(SMOKE, ["numba", "im2col", "auto", "scipy", "numpy"], min_time_s=0.01, min_samples=2,
                       progress=False, rounds=2)
    assert sum(s for s, _ in ticks) == pytest.approx(run.meta["predicted_s"], abs=0.1)
    signals = len([p for p in SMOKE if p["api"] == "signal"])
    # the sweep's rows, auto's pairs (beside the fastest at every point, beside scipy at signals), the
    # short-call pairs, the fresh processes (one measurement), interference, the busy check (under each
    # condition, each implementation on its points), the memory check (each of its points both ways)
    short = len(grid.short_points(SMOKE))
    assert short == 1 and len(run.meta["short_calls"]) == short and run.meta["fresh_process"]
    busy = len(run.meta["busy"])  # every fake row is "ok", so every one is in the check
    assert busy == len(runner.BUSY_CONDITIONS) * 5 * len(runner._busy_points(SMOKE, estimate.Estimate(0.01, 2)))
    memory = 2 * 2 * 5  # two points, both ways, five implementations
    assert len(run.meta["memory"]) == memory // 2
    assert sum(n for _, n in ticks) == (len(run.rows) + 2 * runner.CHECK_ROUNDS * (len(SMOKE) + signals) + 2 * short + 1
                                        + 2 * 5 + busy
                                        + memory)
    assert all(s >= 0 for s, _ in ticks)


def _time_left(bar) -> str:
    text = str(bar.bar)
    return text[text.index("<") + 1:text.index("]")]


def test_the_time_left_scales_the_predicted_seconds_left_by_the_run_so_far():
    """Twice as slow as predicted so far: the time left leans on that, less while little is done (the
    prior, a fifth of the run as predicted), and not on seconds that were paid once."""
    bar = runner._Progress(total_s=100.0, count=4, enabled=True)
    bar.phase("round 1/1: numba")
    bar.tick(25.0)                  # a quarter of the predicted seconds done...
    bar.bar.start_t -= 50           # ... in 50 s: 75 s left at (50 + 20) / (25 + 20) s a predicted second
    assert "25%" in str(bar.bar) and "1/4 measurements" in str(bar.bar)
    assert _time_left(bar) == "01:56"
    bar.tick(55.0)
    bar.bar.start_t -= 110          # 80 done in 160 s: the prior counts less, 20 s left at 180 / 100
    assert _time_left(bar) == "00:36"
    bar.close()

    compiling = runner._Progress(total_s=100.0, count=4, enabled=True)
    on_row = compiling.worker(0.0, lambda row: 25.0)
    on_row({"first_call_s": 30.001, "median_s": 0.001})  # a first call 30 s beyond the others: Numba compiling
    compiling.bar.start_t -= 50
    assert compiling.one_off_s == pytest.approx(30.0)
    assert _time_left(compiling) == "01:06"  # 75 s left at (20 + 20) / (25 + 20)
    compiling.close()


# --------------------------------------------------------------------------------------------
# The GPU, out-of-core and crossover grids (the GPU smoke grid runs in tests/test_cuda.py)
# --------------------------------------------------------------------------------------------

def test_gpu_dask_and_crossover_grids_are_declared(tmp_path):
    gpu = grid.grid("gpu")
    assert {cases.suite(p) for p in gpu} == {"gpu"} and {p["dtype"] for p in gpu} == {"float32"}
    assert len([p for p in gpu if p["api"] == "layer"]) == 2 * len(grid.LAYER_SHAPES)
    assert {(p["N"], p["K"]) for p in gpu if p["api"] == "signal"} == {
        (n, k) for n in (10**6, 10**7, 10**8) for k in (3, 63, 1023)}
    assert all(p["mode"] == "same" for p in gpu)
    dask = grid.grid("dask")
    assert [(p["store"], p["batch"] > 1, p.get("workers")) for p in dask] == [
        ("memory", False, None), ("disk", False, 1), ("disk", False, 2), ("disk", True, 1), ("disk", True, 2)]
    assert 4 * dask[1]["N"] / 2**30 == pytest.approx(12, rel=1e-3) and dask[3]["N"] == grid.DASK_ROW
    assert all(p["timing"] == "once" and p["isolate"] and p["env"] == "inherited" for p in dask)
    assert len({grid.label(p) for p in dask}) == len(dask)  # the rows' keys stay apart
    small = grid.grid("dask", gib=0.25, folder=str(tmp_path))
    assert small[1]["N"] * 4 == 2**28 and {p["folder"] for p in small} == {str(tmp_path)}
    with pytest.raises(ValueError, match="out-of-core grids"):
        grid.grid("default", gib=1)
    crossover = grid.grid("crossover")
    assert len(crossover) == 4 * 3 * 10 and {p["dtype"] for p in crossover} >= {"complex64", "complex128"}


def test_device_variants_come_from_the_registry(monkeypatch):
    from conv1dbench import _registry
    from conv1dbench.harness import peers

    device = [name for name in _registry.BACKEND_NAMES if cases.declares_device(name)]
    variants = [name + cases.DEVICE_VARIANT for name in device]
    assert all(cases.kind(v) == "backend" and cases.backend_of(v) in device for v in variants)
    offered = cases.implementations("gpu")
    assert all(cases.runs_on_gpu(impl) for impl in offered)
    assert [i for i in offered if i.endswith(cases.DEVICE_VARIANT)] == [
        v for v in variants if cases.backend_of(v) in offered]
    monkeypatch.setattr(peers._spec, "installed", lambda library: True)  # CuPy's API, whether installed or not
    assert cases.kind("cupy") == "peer" and "no layer API" in cases.skip_reason("cupy", LAYER)
    assert cases.implementations("dask")[0] == "auto" and "numba" in cases.implementations("dask")
    assert cases.timed_by_default("dask", cases.implementations("dask")) == ["auto"]


def test_jobs_give_isolated_points_a_worker_each():
    isolated = [dict(SIGNAL, isolate=True, env="inherited"), dict(SIGNAL, isolate=True)]
    jobs = runner._jobs([SIGNAL, isolated[0], LAYER, isolated[1]])
    assert jobs == [[SIGNAL, LAYER], [isolated[0]], [isolated[1]]]
    assert runner._repeatable([SIGNAL, isolated[0], dict(SIGNAL, timing="once")]) == [SIGNAL]


@pytest.fixture(scope="module")
def dask_run(tmp_path_factory):
    """Three of the dask-smoke grid's points: in memory, a long signal with 2 workers, rows with 1."""
    folder = tmp_path_factory.mktemp("dask-data")
    points = grid.grid("dask-smoke", folder=str(folder))
    chosen = [p for p in points if p["store"] == "memory" or (p["batch"] == 1) == (p["workers"] == 2)]
    return runner.sweep(chosen, ["auto"], min_time_s=0.01, min_samples=2, progress=False, quick_peak=True,
                        command="test", grid="dask-smoke"), folder


def test_dask_smoke_grid_runs_end_to_end_in_workers(dask_run, tmp_path):
    run, folder = dask_run
    frame = report.tidy(run)
    assert len(frame) == 3 and (frame.status == "ok").all(), frame.reason.tolist()
    assert (frame.calls == 1).all() and (frame.median_s > 0).all() and (frame.msamples_per_s > 0).all()
    assert (frame.max_error < 1e-6).all()                       # float32 against the float64 reference
    assert ((frame.peak_rss_gib >= frame.rss_before_gib) & (frame.rss_before_gib > 0)).all()
    assert set(frame.store) == {"memory", "disk"} and set(frame.chose.dropna()) <= set(cases.implementations())
    assert [p.name for p in folder.iterdir()] == [f"signal-{grid.grid('dask-smoke')[0]['file_samples']}.f32"]
    assert len(run.meta["inherited_environment"]) == 3 and "interference" not in run.meta or not run.meta[
        "interference"]
    text = report.markdown(run, frame)
    for fragment in ("## Out of core: Dask", "peak RSS (GiB)", "bound (GiB)", "disk workers=2",
                     "the environment as it is", "one call, after a tiny warm-up call"):
        assert fragment in text
    assert "## Findings" not in text                           # no CPU tables for out-of-core rows
    written = report.write(run, tmp_path, "report")            # no plots for these rows either
    assert [p.name for p in written] == ["report.json", "report.csv", "report.md"]


def test_crossover_section_finds_where_direct_stops_winning():
    rows = []
    for dtype in ("float32", "complex64"):
        for k, direct, fft in ((32, 1.0, 3.0), (64, 2.0, 3.0), (128, 4.0, 3.0)):
            point = {**grid.signal_point(10**4, k, "full", dtype), "suite": "crossover"}
            rows += [dict(point, impl=name, kind="backend", shape=grid.label(point), status="ok", median_s=t * 1e-3,
                          first_call_s=0.1, gflops=1.0, max_error=1e-7) for name, t in (("direct", direct),
                                                                                       ("spectral", fft))]
    run = runner.Run({"grid": "crossover", "peak": {}}, rows)
    section = report.crossover_section(report.tidy(run))
    assert "## Crossover: the fastest backend per kernel length" in section
    assert any(line.startswith("| float32 | 1e+04 | direct | 64 | 3.00x | 1.50x | 0.75x |") for line in section)
    assert section[-1] == "Smallest per dtype: complex64 K=64, float32 K=64"


def _fft_rows(threads=None):
    """Our FFT engines and the oaconvolve variants at five signal points (milliseconds), three in the FFT regime."""
    times = [(grid.signal_point(10**4, 1023), {"fft": 2.0, "fftw": 1.0, "ducc": 1.5, "oaconvolve": 3.0,
                                               "oaconvolve-workers": 2.0, "oaconvolve-fftw": 4.0, "auto": 1.2}),
             (grid.signal_point(10**6, 255, "same", "float32"), {"fft": 1.0, "oaconvolve": 1.5,
                                                                 "oaconvolve-workers": 0.5, "auto": 1.25}),
             (grid.signal_point(1000, 255), {"fft": 1.0, "oaconvolve": 10.0}),              # not in the regime
             (grid.signal_point(10**4, 511, "same", batch=16), {"ducc": 2.0, "oaconvolve": 1.0}),
             (grid.signal_point(10**4, 15), {"numba": 0.1, "oaconvolve": 1.0})]             # no engine ran
    rows = [dict(point, impl=impl, kind="peer" if impl in cases.PEERS else "backend", shape=grid.label(point),
                 status="ok", median_s=t * 1e-3, first_call_s=0.1, gflops=1.0, max_error=1e-9,
                 chose=min((n for n in by_impl if n in ("fft", "fftw", "ducc")), key=by_impl.get) if impl == "auto"
                 else None, **({"threads": threads} if threads and impl in ("fft", "fftw", "ducc") else {}))
            for point, by_impl in times for impl, t in by_impl.items()]
    rows.append(dict(rows[0], impl="oaconvolve", kind="peer", median_s=1.0))  # a slower round: the fastest counts
    return report.tidy(runner.Run({"grid": "toy", "peak": {}}, rows))


def test_fft_engines_section_leads_with_auto_then_our_fastest_engine_labelled():
    section = report.fft_engines_section(_fft_rows(), engines=["fft", "fftw", "ducc"])
    assert section[1] == "## FFT engines against oaconvolve"
    peers = ("oaconvolve", "oaconvolve-workers", "oaconvolve-fftw")
    assert ("| point | dtype | mode | regime | auto chose | auto ms | " + " | ".join(f"{p} / auto" for p in peers)
            + " | best engine (after the fact) | ms | " + " | ".join(f"{p} / best" for p in peers) + " |") in section
    assert "| N=1e+04 K=1023 | float64 | full | yes | fftw | 1.2 | 2.50x | 1.67x | 3.33x | fftw | 1 | 3.00x | " \
           "2.00x | 4.00x |" in section
    assert "| N=1e+06 K=255 | float32 | same | yes | fft | 1.25 | 1.20x | 0.40x | - | fft | 1 | 1.50x | 0.50x | - |" \
           in section
    assert "| N=1e+03 K=255 | float64 | full |  | - | - | - | - | - | fft | 1 | 10x | - | - |" in section
    assert "| N=1e+04 K=511 x16 | float64 | same | yes | - | - | - | - | - | ducc | 2 | 0.50x | - | - |" in section
    assert not any("K=15" in line for line in section)
    auto, best = "auto (what users get)", "best of our engines, picked after the fact"
    assert section[-6:] == [
        f"- oaconvolve / {auto}, over the FFT regime's 2 points: median 1.85x, minimum 1.20x",
        f"- oaconvolve-workers / {auto}, over the FFT regime's 2 points: median 1.03x, minimum 0.40x",
        f"- oaconvolve-fftw / {auto}, over the FFT regime's 1 points: median 3.33x, minimum 3.33x",
        f"- oaconvolve / {best}, over the FFT regime's 3 points: median 1.50x, minimum 0.50x",
        f"- oaconvolve-workers / {best}, over the FFT regime's 2 points: median 1.25x, minimum 0.50x",
        f"- oaconvolve-fftw / {best}, over the FFT regime's 1 points: median 4.00x, minimum 4.00x"]
    threaded = report.fft_engines_section(_fft_rows(threads=2), engines=["fft", "fftw", "ducc"])
    assert "| N=1e+04 K=1023 | float64 | full | yes | fftw | 1.2 | 2.50x | 1.67x | 3.33x | fftw | 2 | 1 | 3.00x | " \
           "2.00x | 4.00x |" in threaded
    assert report.fft_engines_section(_fft_rows(), engines=["naive"]) == []
    assert "fft" in report.fft_engines()                     # the registry's: modules declaring RULE "fourier"


def test_the_report_says_how_each_peer_was_called():
    frame = _fft_rows()
    text = report.markdown(runner.Run({"grid": "toy", "peak": {}, "machine": {"numba_threads": 2}},
                                      frame.to_dict("records")), frame)
    assert "## Peers" in text and "## FFT engines against oaconvolve" in text
    assert "- oaconvolve-workers (SciPy; BSD-3-Clause; threads: 2): the same call inside " \
           "`with scipy.fft.set_workers(2):`" in text
    assert "- oaconvolve-fftw (pyFFTW; BSD-3-Clause (pyFFTW), GPL-2.0-or-later (FFTW); threads: 2): the same call " \
           "inside `with scipy.fft.set_backend(pyfftw.interfaces.scipy_fft), " \
           "scipy.fft.set_workers(2):`" in text and 'PLANNER_EFFORT = "FFTW_MEASURE"' in text
    assert "- numpy:" not in text                            # not in this run
    assert report.peers_section({}, frame[frame.kind == "backend"]) == []


def test_gpu_section_shows_ratios_first_calls_and_targets():
    rows = []
    times = {"gpu:device": 1.0, "gpu": 3.0, "torch-gpu": 1.5, "cupy": 0.8}
    points = grid.grid("gpu")
    for point in (points[0], points[1], next(p for p in points if p["api"] == "signal")):
        for impl, t in times.items():
            if impl != "cupy" or point["api"] == "signal":  # cupy has no layer API
                rows.append(dict(point, impl=impl, kind="peer" if impl in cases.GPU_PEERS else "backend",
                                 shape=grid.label(point), status="ok", median_s=t * 1e-3, first_call_s=0.5,
                                 gflops=grid.flops(point) / (t * 1e-3) / 1e9, max_error=1e-7, device="a GPU"))
    run = runner.Run({"grid": "gpu", "peak": {}}, rows)  # "gpu": a stand-in for a device backend
    frame = report.tidy(run)
    lines = report.gpu_sections(run.meta, frame)
    text = "\n".join(lines)
    assert "### GPU layers: forward, float32, padding same" in text and "| 32x64x64 L=1024 K=3 |" in text
    assert "- GPU: a GPU" in report.markdown(run, frame)
    assert "First call on the GPU" in text and "## GPU targets (issue 4)" in text
    assert "gpu:device >= 0.5x cuDNN (torch-gpu) on every layer shape and pass: worst 1.50x" in text
    assert "-> PASS" in text and "gpu:device >= 1x CuPy on every long signal (N >= 10**6): worst 0.80x" in text
    assert "-> FAIL" in text


def test_a_run_without_out_goes_to_a_new_folder_and_never_replaces_a_run_unasked(tmp_path, monkeypatch):
    import argparse

    monkeypatch.chdir(tmp_path)
    made = cli._out_folder(argparse.Namespace(out=None, grid="smoke", overwrite=False))
    assert Path(made).parent == Path(cli.RUNS_FOLDER) and Path(made).name.startswith("smoke-")
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text("{}")
    with pytest.raises(ValueError, match="holds a run already.*--overwrite"):
        cli._out_folder(argparse.Namespace(out="old", grid="smoke", overwrite=False))
    assert cli._out_folder(argparse.Namespace(out="old", grid="smoke", overwrite=True)) == "old"


def test_the_readme_cites_the_grids_times_from_one_place():
    """The time estimates live in ``grid.MINUTES`` (from the committed runs' durations); the README and the
    user guide agree."""
    root = Path(__file__).resolve().parent.parent
    readme, guide = ((root / name).read_text() for name in ("README.md", "docs/guide.md"))
    default, tune = grid.MINUTES["default"], grid.MINUTES["tune"]
    assert f"about {default} minutes on 2 cores" in " ".join(readme.split())
    assert f"each backend in its own process (about {tune} minutes)" in guide


def test_the_reused_memory_condition_writes_into_one_out_for_our_backends():
    for point in (SIGNAL, LAYER, {**LAYER, "pass": "forward"}):
        reused = {**point, "memory": cases.REUSED}
        for impl in ("numba", "auto"):
            case = cases.make_case(impl, reused, cases.data(point))
            first, second = case.call(), case.call()
            pairs = zip(first, second, strict=True) if isinstance(first, tuple) else [(first, second)]
            assert all(a is b for a, b in pairs) and case.error() < 1e-5, (impl, point)
        fresh = cases.make_case("numba", point, cases.data(point))
        assert fresh.call() is not fresh.call()
    assert not runner._reuses(SIGNAL) and runner._reuses({**SIGNAL, "memory": cases.REUSED})
    assert len(runner._jobs([SIGNAL, {**SIGNAL, "memory": cases.REUSED}])) == 2   # a worker per condition


def test_the_layers_grid_is_the_default_grids_layer_points_in_both_float_dtypes():
    layers = grid.grid("layers")
    default = [p for p in grid.grid("default") if p["api"] == "layer"]
    assert len(layers) == 2 * len(default) and {p["dtype"] for p in layers} == {"float32", "float64"}
    assert {grid.label(p) for p in layers} == {grid.label(p) for p in default}


def test_the_readme_shows_each_machines_headline_as_its_runs_give_it():
    """No figure of what auto delivers is typed by hand: each machine's summary and headline are made from its
    runs, committed beside them, and the headline is shown in the README line for line."""
    from conv1dbench.harness import summary

    root = Path(__file__).resolve().parent.parent
    readme = set((root / "README.md").read_text().splitlines())
    folders = [f for f in sorted((root / "results").iterdir()) if f.is_dir() and summary.load(f)]
    assert folders, "no machine's runs in results/<machine>/"
    for folder in folders:
        rerun = f"rerun: python -m conv1dbench.harness.summary {folder.relative_to(root)}"
        assert (folder / "summary.md").read_text().splitlines() == summary.summary(folder), rerun
        lines = summary.headline(folder)
        assert (folder / "headline.md").read_text().splitlines() == lines, rerun
        assert [line for line in lines if line and line not in readme] == []


def test_the_summary_line_of_a_tune_record_names_what_differs_from_the_defaults():
    from conv1dbench.harness.summary import _tune_line

    record = {"date": "2026-12-05T15:00:00+00:00", "facts": {"cores": 2}, "seconds": 38.2,
              "chosen": {"a.size": 1 << 20, "b.threshold": float("inf"), "c.same": 6},
              "default": {"a.size": 1 << 17, "b.threshold": 6e5, "c.same": 6}}
    line = _tune_line(record)
    assert line.startswith("Kernel parameters (`conv1dbench tune`, 2026-12-05): 3 measured in 38 s on 2 cores")
    assert "`a.size` 1,048,576 (default 131,072)" in line and "`b.threshold` inf (default 600,000)" in line
    assert "c.same" not in line
    record["chosen"] = record["default"]
    assert _tune_line(record).endswith("every default kept.")
