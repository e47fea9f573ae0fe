"""How far a run's numbers can be trusted (conv1dbench/harness/stability.py) and the report's section on it."""

import sys
import time

import numpy as np
import pytest

from conv1dbench.harness import report, runner, stability


def _row(samples, calls_per_sample=1, **extra):
    samples = np.asarray(samples, float)
    q25, median, q75 = np.percentile(samples, [25, 50, 75])
    return {"impl": "numba", "api": "signal", "pass": "forward", "dtype": "float32", "mode": "full", "shape": "N=1e3",
            "status": "ok", "median_s": median, "q25_s": q25, "q75_s": q75, "calls": calls_per_sample * samples.size,
            "samples_s": samples.tolist(), **extra}


def test_a_steady_measurement_is_not_flagged_and_each_unsteady_kind_is_named():
    steady = _row(1e-3 * (1 + 0.01 * np.sin(np.arange(20))))
    assert stability.unstable(steady) == []
    spread = _row(1e-3 * np.linspace(0.7, 1.3, 20))
    assert any(w.startswith("spread") for w in stability.unstable(spread))
    outlier = _row([1e-3] * 19 + [3e-3])
    assert stability.unstable(outlier) == ["slowest sample 3.0x the median"]
    few = _row([1e-3] * 3)
    assert stability.unstable(few) == ["3 samples"]
    short = _row([1e-6] * 10, calls_per_sample=10)  # 10 us a sample: the clock's overhead is a share of it
    assert stability.unstable(short) == ["samples of 10 us"]
    assert stability.unstable({**spread, "samples_s": None}) == []  # no samples kept: nothing to say
    assert stability.unstable({**spread, "status": "failed"}) == []


def test_the_peak_measured_twice_names_what_drifted():
    before = {"fma_gflops": {"float32": 200.0, "float64": 100.0}, "gemm_gflops": {"float32": 150.0},
              "bandwidth_gbs": 20.0}
    after = {"fma_gflops": {"float32": 198.0, "float64": 80.0}, "gemm_gflops": {"float32": 151.0},
             "bandwidth_gbs": 25.0}
    drift = stability.peak_drift(before, after)
    assert drift["ratios"]["fma_gflops float64"] == 0.8 and drift["ratios"]["fma_gflops float32"] == 0.99
    assert drift["drifted"] == ["bandwidth_gbs", "fma_gflops float64"]
    assert stability.peak_drift(before, before)["drifted"] == []


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/stat")
def test_other_load_counts_cpu_time_of_other_processes_and_not_our_own():
    load = stability.OtherLoad()
    end = time.perf_counter() + 0.3
    while time.perf_counter() < end:  # our own busy time: not "other load"
        pass
    found = load.result()
    assert set(found) == {"run_s", "others_cpu_s", "others_share", "steal_s", "steal_share"}
    assert 0 <= found["others_share"] <= 1 and 0 <= found["steal_share"] <= 1
    assert found["others_cpu_s"] < 0.3 + 0.5 * found["run_s"] * 2  # not our 0.3 s counted again as others'


def test_the_report_says_how_stable_the_run_was():
    rows = [_row(1e-3 * (1 + 0.01 * np.sin(np.arange(20)))), _row([1e-3] * 19 + [3e-3], impl="im2col")]
    run = runner.Run({"other_load": {"run_s": 100.0, "others_cpu_s": 30.0, "others_share": 0.15, "steal_s": 1.0,
                                     "steal_share": 0.005},
                      "peak_drift": {"ratios": {"fma_gflops float32": 0.8}, "drifted": ["fma_gflops float32"]}}, rows)
    text = "\n".join(report.stability_section(run))
    assert "1 of 2 measurements unstable" in text and "| im2col |" in text and "slowest sample 3.0x" in text
    assert "15.0% of the machine" in text and "Other work ran beside this run" in text
    assert "fma_gflops float32 0.80" in text and "the machine's speed changed during the run" in text
    assert report.stability_section(runner.Run({}, [])) == []
