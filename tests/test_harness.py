"""The harness: tidy rows, skips and failures recorded, reports rebuilt identically, the command line."""

import json
import subprocess
import sys

import pandas as pd
import pytest

from conv1dbench import _model, cli
from conv1dbench.harness import cases, grid, report, runner, worker

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


def test_flops_count_two_per_multiply_add():
    assert grid.flops(grid.signal_point(1000, 3)) == 6000
    forward = grid.layer_point(2, 4, 6, 100, 3)
    assert grid.flops(forward) == 2 * 2 * 6 * 4 * 3 * 100
    assert grid.flops({**forward, "pass": "backward"}) == 2 * grid.flops(forward)


def test_worker_row_has_the_tidy_columns_and_a_checked_result():
    row = worker.row_for("numba", SIGNAL, min_time_s=0.01, min_samples=2)
    assert row["status"] == "ok" and row["median_s"] > 0 and row["gflops"] > 0
    assert row["max_error"] < 1e-12                       # float64 against the float64 reference
    assert set(report.COLUMNS) >= set(row) - {"flops"}
    layer = worker.row_for("im2col", LAYER, min_time_s=0.01, min_samples=2)
    assert layer["status"] == "ok" and layer["max_error"] < 1e-5


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
    assert {c["impl"] for c in toy_run.meta["interference"]} >= {"numba", "im2col"}
    assert "machine" in toy_run.meta and toy_run.meta["machine"]["cores"] >= 1
    assert toy_run.meta["auto"]["shipped_models"].startswith("fitted on the tune grid")


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
    text = (tmp_path / "a" / "report.md").read_text()
    for fragment in ("## Machine", "measured peak", "## Findings", "vs scipy", "max error", "First call",
                     "Interference check", "Skipped and failed", "auto decided from: the shipped cost models",
                     "## Auto's choices", "chose the fastest backend at", "scipy / auto",
                     "auto vs scipy.signal.convolve, timed in turn"):
        assert fragment in text
    csv = pd.read_csv(tmp_path / "a" / "report.csv")
    assert list(csv.columns) == report.COLUMNS


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


def test_compare_flags_regressions(toy_run, tmp_path, capsys):
    old = tmp_path / "old.json"
    toy_run.save(old)
    slower = runner.Run(toy_run.meta, [dict(r, median_s=r.get("median_s", 0) * 2) for r in toy_run.rows])
    new = tmp_path / "new.json"
    slower.save(new)
    assert cli.main(["compare", str(old), str(new)]) == 1
    out = capsys.readouterr().out
    assert "REGRESSION" in out and "regressions" in out
    assert cli.main(["compare", str(old), str(old)]) == 0


def test_tune_fits_the_default_models_from_a_saved_run(toy_run, tmp_path):
    """How the shipped models are made: ``conv1dbench tune --from-run results/tune/report.json``."""
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
    (["run", "--grid", "huge"], "unknown grid 'huge'"),
    (["run", "--backends", "gpu9"], "gpu9 not available"),
    (["report", "/no/such/file.json"], "no such file"),
])
def test_cli_errors_are_one_line(argv, fragment, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith("conv1dbench: error:") and fragment in err


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
    info = subprocess.run([sys.executable, "-m", "conv1dbench", "info"], capture_output=True, text=True, check=False)
    assert info.returncode == 0 and "numba" in info.stdout and "cores" in info.stdout
