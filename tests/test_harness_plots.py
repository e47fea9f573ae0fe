"""The harness's figures: every PNG is written from a small synthetic tidy table, and none without data."""

import math

import numpy as np
import pandas as pd
import pytest

pytest.importorskip("matplotlib")

from conv1dbench.harness import plots

PEAK = {"gemm_gflops": {"float32": 203.0, "float64": 101.0}, "bandwidth_gbs": 18.5}
KIND = {"numba": "backend", "fft": "backend", "auto": "backend", "naive": "backend",
        "scipy": "peer", "numpy": "peer", "torch": "peer"}
SIGNAL_FIGURES = {"signal_time_float32.png", "signal_time_float64.png", "signal_fastest.png", "signal_speedup.png"}


def signal_row(impl, median_s, *, dtype="float64", mode="full", n=1000, k=3, batch=1, status="ok"):
    timed = status == "ok"
    return {"api": "signal", "pass": "forward", "impl": impl, "kind": KIND[impl], "dtype": dtype, "mode": mode,
            "N": n, "K": k, "batch": batch, "B": np.nan, "C_in": np.nan, "C_out": np.nan, "L": np.nan,
            "stride": np.nan, "groups": np.nan, "shape": f"N={n:.0e} K={k}", "status": status,
            "median_s": median_s if timed else np.nan, "q25_s": 0.9 * median_s if timed else np.nan,
            "q75_s": 1.2 * median_s if timed else np.nan,
            "gflops": 2e-9 * batch * n * k / median_s if timed else np.nan}


def layer_row(impl, direction, gflops, *, b=32, c=64, length=1024, k=3):
    flop = 2.0 * b * c * c * k * length * (2 if direction == "backward" else 1)
    return {"api": "layer", "pass": direction, "impl": impl, "kind": KIND[impl], "dtype": "float32",
            "mode": "same", "N": length, "K": k, "batch": b, "B": b, "C_in": c, "C_out": c, "L": length,
            "stride": 1, "groups": 1, "shape": f"{b}x{c}x{c} L={length} K={k}", "status": "ok",
            "median_s": flop / gflops / 1e9, "q25_s": np.nan, "q75_s": np.nan, "gflops": gflops}


def synthetic_signals() -> list[dict]:
    """Direct methods cost ~N*K, the FFT ~N*log N: numba wins at K=3, fft at K=255."""
    cost = {"numba": lambda n, k: 1e-9 * n * k, "auto": lambda n, k: 1.05e-9 * n * min(k, 40),
            "fft": lambda n, k: 5e-9 * n * math.log2(n), "scipy": lambda n, k: 1e-8 * n * math.log2(n),
            "numpy": lambda n, k: 2e-9 * n * k}
    rows = [signal_row(impl, f(n, k), dtype=dtype, mode=mode, n=n, k=k)
            for dtype in ("float32", "float64") for mode in ("full", "same")
            for n in (1000, 10_000, 100_000) for k in (3, 255) for impl, f in cost.items()]
    rows.append(signal_row("numba", 1.0, n=10_000, k=3))  # a slow repeated round: the minimum counts
    rows.append(signal_row("naive", np.nan, status="skipped"))
    return rows


@pytest.fixture
def frame() -> pd.DataFrame:
    layers = [layer_row(impl, direction, gflops)
              for direction in ("forward", "backward")
              for impl, gflops in (("numba", 40.0), ("auto", 150.0), ("torch", 180.0))]
    layers.append(layer_row("auto", "forward", 90.0, b=4, c=32, length=65536, k=15))
    return pd.DataFrame(synthetic_signals() + layers)


def is_png(path) -> bool:
    return path.stat().st_size > 0 and path.read_bytes()[:4] == b"\x89PNG"


def test_write_all_writes_every_figure(frame, tmp_path):
    written = plots.write_all(frame, PEAK, tmp_path / "figures")
    assert {path.name for path in written} == SIGNAL_FIGURES | {"layer_gflops.png"}
    assert all(path.parent == tmp_path / "figures" and is_png(path) for path in written)


def test_no_layer_rows_no_layer_figure(frame, tmp_path):
    signals = frame[frame["api"] == "signal"]
    assert plots.layer_bars(signals, PEAK, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_no_signal_rows_no_signal_figures(frame, tmp_path):
    layers = frame[frame["api"] == "layer"]
    assert plots.time_vs_n(layers, tmp_path) == []
    assert plots.fastest_map(layers, tmp_path) == []
    assert plots.speedup_heatmap(layers, tmp_path) == []
    assert list(tmp_path.iterdir()) == []


def test_no_scipy_no_speedup_heatmap(frame, tmp_path):
    assert plots.speedup_heatmap(frame[frame["impl"] != "scipy"], tmp_path) == []


def test_fastest_backends_hand_made():
    rows = [signal_row("numba", 1.0), signal_row("numba", 0.5),  # two rounds: 0.5 counts
            signal_row("fft", 0.8),
            signal_row("auto", 0.1),                               # auto is not a backend of its own
            signal_row("numpy", 0.05), signal_row("scipy", 2.0),   # peers never win
            signal_row("naive", 0.01, status="failed"),            # failed rows never count
            signal_row("numba", 0.02, batch=64),                   # larger batch than the point's smallest
            signal_row("numba", 3.0, k=63), signal_row("fft", 0.3, k=63)]  # no scipy at this point
    table = plots.fastest_backends(pd.DataFrame(rows))
    assert list(table.index.names) == ["dtype", "mode", "N", "K"]
    assert table.loc[("float64", "full", 1000, 3), "impl"] == "numba"
    assert table.loc[("float64", "full", 1000, 3), "speedup_vs_scipy"] == pytest.approx(4.0)
    assert table.loc[("float64", "full", 1000, 63), "impl"] == "fft"
    assert np.isnan(table.loc[("float64", "full", 1000, 63), "speedup_vs_scipy"])


def test_the_speedup_map_is_what_auto_delivered_against_scipy():
    rows = [signal_row("numba", 0.5), signal_row("auto", 1.0), signal_row("auto", 0.8),  # auto's best round
            signal_row("scipy", 4.0), signal_row("auto", 2.0, k=63)]                     # no scipy at K = 63
    table = plots.auto_speedups(pd.DataFrame(rows))
    assert table.loc[("float64", "full", 1000, 3), "speedup_vs_scipy"] == pytest.approx(5.0)  # not numba's 8x
    assert np.isnan(table.loc[("float64", "full", 1000, 63), "speedup_vs_scipy"])


def test_fastest_backends_of_the_fixture(frame):
    table = plots.fastest_backends(frame)
    assert len(table) == 2 * 2 * 3 * 2
    assert set(table.xs(3, level="K")["impl"]) == {"numba"}
    assert set(table.xs(255, level="K")["impl"]) == {"fft"}


def test_colours_are_fixed_and_distinct():
    colours = plots.impl_colours(["zeta", "numba", "alpha"])
    assert colours["numba"] == plots.impl_colours([])["numba"]
    assert len(set(colours.values())) == len(colours)
    assert colours["alpha"] != colours["zeta"]
