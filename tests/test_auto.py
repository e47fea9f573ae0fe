"""backend="auto": cost models, wisdom, measuring on first sight, and agreement with fastest()."""

import json
import multiprocessing
import warnings

import numpy as np
import pytest

import conv1dbench as cb
from conv1dbench import _auto, _model, _wisdom
from conv1dbench.harness import grid

#: Known costs: numba pays per product that reads a sample, im2col per padded product (faster per
#: product), fft per transform work; naive pays per slice.
FAKE = {"numba": {"call": 2e-6, "valid_macs": 1e-9, "bytes": 1e-11}, "im2col": {"call": 2e-4, "macs": 8e-10},
        "fft": {"call": 3e-5, "fft_work": 4e-9, "spectral_products": 4e-9},
        "naive": {"call": 1e-6, "slices": 1e-4, "valid_macs": 1e-8}}


def fake_models(dtypes=("float64", "float32"), directions=("forward", "backward")):
    return {_model.model_key(b, d, r): {f: c.get(f, 0.0) for f in _model.FEATURES}
            for b, c in FAKE.items() for d in dtypes for r in directions}


@pytest.mark.parametrize("n, k, mode, expected", [
    (100_000, 3, "full", "numba"),
    (100_000, 5_000, "full", "fft"),
    (3, 100_000, "full", "numba"),     # only 3 * 10**5 products read samples: direct
    (1000, 999, "valid", "numba"),     # two outputs: direct, however long the kernel
])
def test_auto_takes_the_cheapest_prediction(n, k, mode, expected, auto_models):
    auto_models(fake_models())
    x, w = np.ones(n), np.ones(k)
    name, details = cb.fastest("convolve", x, w, mode, explain=True)
    assert name == expected
    assert details["rule"] == "predicted by the cost model"
    assert min(details["predicted_s"], key=details["predicted_s"].get) == expected


def test_layers_use_the_models_too(auto_models):
    auto_models(fake_models())
    x, w = np.ones((8, 128, 256)), np.ones((128, 128, 3))
    assert cb.fastest("conv1d", x, w, padding="same") == "im2col"   # cheaper per padded product
    assert cb.fastest("conv1d_backward", np.ones((8, 128, 256)), x, w, padding="same") == "im2col"


def test_no_fft_on_non_finite_input_whatever_the_model_says(auto_models):
    auto_models(fake_models())
    x, w = np.ones(100_000), np.ones(5_000)
    assert cb.fastest("convolve", x, w) == "fft"
    x[5] = np.inf
    name, details = cb.fastest("convolve", x, w, explain=True)
    direct = {n: t for n, t in details["predicted_s"].items() if n != "fft"}
    assert name == min(direct, key=direct.get) and "NaN or Inf" in details["rule"]


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float32, np.complex128], ids=["float32", "complex128"])
def test_fft_finds_non_finite_operands_in_its_own_transforms(value, dtype):
    from conv1dbench._backends import NonFiniteInput, fft

    rng = np.random.default_rng(3)
    x, w, g = (rng.standard_normal(shape).astype(dtype) for shape in [(2, 4, 3000), (6, 2, 9), (2, 6, 2992)])
    geometry = (0, 0, 1, 1, 2)  # pads, stride, dilation, groups
    forward = lambda x, w: fft.forward(x, w, *geometry, finite=True)
    grad_x = lambda g, w: fft.backward_input(g, w, 3000, *geometry, finite=True)
    grad_w = lambda g, x: fft.backward_weight(g, x, 9, *geometry, finite=True)
    assert forward(x, w).shape == (2, 6, 2992) and grad_x(g, w).shape == x.shape and grad_w(g, x).shape == w.shape
    for call, operands in [(forward, (x, w)), (grad_x, (g, w)), (grad_w, (g, x))]:
        for i in range(2):
            bad = [a.copy() for a in operands]
            bad[i][(1,) * bad[i].ndim] = value  # one sample, inside a block: its row's sum shows it
            with pytest.raises(NonFiniteInput, match="NaN or Inf"):
                call(*bad)
    huge = np.full((1, 1, 64), np.finfo(np.float32).max, dtype=np.float32)  # finite, but its sum overflows
    with pytest.raises(NonFiniteInput):
        fft.forward(huge, np.ones((1, 1, 3), np.float32), *geometry[:4], 1, finite=True)
    assert np.isnan(fft.forward(x, np.full_like(w, np.nan), *geometry)).all()  # asked plainly: FFT spreads it


def test_auto_runs_direct_where_fft_meets_nan_in_the_gradient(auto_models):
    auto_models(fake_models())
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((1, 1, 20_000)), rng.standard_normal((1, 1, 4_000))
    g = rng.standard_normal((1, 1, 16_001))
    assert cb.fastest("conv1d_backward", g, x, w) == "fft"  # a long kernel: FFT, while all is finite
    g[0, 0, 8_000] = np.nan
    assert cb.fastest("conv1d_backward", g, x, w) != "fft"
    grad_x, grad_w, _ = cb.conv1d_backward(g, x, w)
    expected = cb.conv1d_backward(g, x, w, backend="numba")
    np.testing.assert_array_equal(np.isnan(grad_x), np.isnan(expected[0]))  # NaN only where the window met it
    assert np.isfinite(grad_x).sum() == 20_000 - 4_000
    np.testing.assert_allclose(grad_x[np.isfinite(grad_x)], expected[0][np.isfinite(expected[0])], rtol=1e-10)
    assert np.isnan(grad_w).all() and np.isnan(expected[1]).all()  # every weight met the NaN


def _synthetic_measurements(points):
    rows = []
    for p in points:
        for backend, coef in FAKE.items():
            feats = _model.features(grid.problem(p), backend)
            t = sum(coef.get(f, 0.0) * v for f, v in feats.items())
            rows.append({"backend": backend, "dtype": p["dtype"], "direction": "forward", "features": feats,
                         "median_s": t * (1 + 0.05 * np.sin(len(rows)))})  # 5% noise
    return rows


def test_fitted_models_extrapolate_to_unseen_shapes():
    from conv1dbench.harness.grid import signal_point
    seen = [signal_point(n, k, "full") for n in (1000, 10_000, 100_000) for k in (3, 31, 301)]
    models = _model.fit(_synthetic_measurements(seen))
    assert set(models) == {_model.model_key(b, "float64", "forward") for b in FAKE}
    for n, k in [(3_000_000, 5), (3_000_000, 3_000), (500, 20_000), (50_000, 50)]:  # never measured
        problem = grid.problem(signal_point(n, k, "full"))
        feats = {b: _model.features(problem, b) for b in FAKE}
        truth = {b: sum(c.get(f, 0.0) * v for f, v in feats[b].items()) for b, c in FAKE.items()}
        predicted = {b: _model.predict(models[_model.model_key(b, "float64", "forward")], feats[b]) for b in FAKE}
        assert min(predicted, key=predicted.get) == min(truth, key=truth.get), (n, k)
        for b in FAKE:
            assert predicted[b] == pytest.approx(truth[b], rel=0.25)


def test_wisdom_round_trips_and_keeps_the_newest(tmp_path):
    path = tmp_path / "w.json"
    _wisdom.record([{"key": "a", "median_s": 1.0}, {"key": "b", "median_s": 2.0}], path)
    _wisdom.record([{"key": "a", "median_s": 0.5}], path)
    assert sorted((m["key"], m["median_s"]) for m in _wisdom.load(path)) == [("a", 0.5), ("b", 2.0)]


def test_wisdom_of_another_machine_is_never_used(tmp_path):
    path = tmp_path / "w.json"
    other = {"format": 1, "machines": {"0123456789abcdef": {"fingerprint": {"cpu": "elsewhere"},
                                                            "measurements": [{"key": "x", "median_s": 1.0}]}}}
    path.write_text(json.dumps(other))
    assert _wisdom.load(path) == []
    _wisdom.record([{"key": "mine", "median_s": 1.0}], path)
    raw = json.loads(path.read_text())
    assert "0123456789abcdef" in raw["machines"]               # kept, not applied
    assert [m["key"] for m in _wisdom.load(path)] == ["mine"]


@pytest.mark.parametrize("content", ["{not json", '{"format": 99, "machines": {}}', "[1, 2]", ""])
def test_corrupt_wisdom_warns_once_and_auto_still_works(tmp_path, content):
    path = tmp_path / "w.json"
    path.write_text(content)
    before = cb.configure_auto(wisdom=path)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            y = cb.convolve(np.ones(10), np.ones(3))
            cb.convolve(np.ones(20), np.ones(3))
        assert [w.category for w in caught] == [_wisdom.WisdomWarning]
        np.testing.assert_allclose(y, np.convolve(np.ones(10), np.ones(3)))
    finally:
        cb.configure_auto(wisdom=before["wisdom"] or _wisdom.default_path())


def _write_many(path, tag, count):
    for i in range(count):
        _wisdom.record([{"key": f"{tag}{i}", "median_s": float(i)}], path)


def test_two_processes_writing_at_once_lose_nothing(tmp_path):
    path = tmp_path / "w.json"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_write_many, args=(str(path), tag, 40)) for tag in "ab"]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    keys = {m["key"] for m in _wisdom.load(path)}
    assert keys == {f"{t}{i}" for t in "ab" for i in range(40)}


def test_measure_true_times_once_then_remembers(tmp_path, auto_models):
    auto_models(fake_models())
    path = tmp_path / "w.json"
    before = cb.configure_auto(measure=True, wisdom=path)
    try:
        x, w = np.random.default_rng(0).standard_normal(3000), np.ones(40)
        name, details = cb.fastest("convolve", x, w, explain=True)
        assert details["rule"] == "measured on this machine"
        assert set(details["measured_s"]) >= {"numba", "fft", "im2col"}
        assert name == min(details["measured_s"], key=details["measured_s"].get)
        recorded = _wisdom.load(path)
        assert {m["backend"] for m in recorded} == set(details["measured_s"])
        _auto.reset()                                   # a new process: the file remembers
        cb.configure_auto(measure=False)
        assert cb.fastest("convolve", x, w, explain=True)[1]["measured_s"] == details["measured_s"]
        np.testing.assert_allclose(cb.convolve(x, w), np.convolve(x, w), atol=1e-10)
    finally:
        cb.configure_auto(measure=before["measure"], wisdom=before["wisdom"] or _wisdom.default_path())


def test_tune_on_a_workload_feeds_auto(tmp_path):
    path = tmp_path / "w.json"
    x, w = np.ones((4, 8, 300)), np.ones((8, 8, 3))
    result = cb.tune(workload=[("conv1d", (x, w), {"padding": "same"}), ("convolve", (np.ones(500), np.ones(9)), {})],
                     wisdom=path, params=False)
    assert result["measurements"] >= 6 and result["wisdom"] == str(path)
    before = cb.configure_auto(wisdom=path)
    try:
        assert cb.fastest("conv1d", x, w, padding="same", explain=True)[1]["rule"] == "measured on this machine"
    finally:
        cb.configure_auto(wisdom=before["wisdom"] or _wisdom.default_path())


def test_fastest_and_auto_agree_on_models(monkeypatch, auto_models):
    auto_models(fake_models())
    from conv1dbench import _registry
    ran = []
    monkeypatch.setattr("conv1dbench._signal.get_backend", lambda n, d: ran.append(n) or _registry.get_backend(n, d))
    for n, k in [(100_000, 3), (100_000, 5_000), (3, 1000)]:
        x, w = np.ones(n), np.ones(k)
        cb.convolve(x, w)
        assert ran[-1] == cb.fastest("convolve", x, w)


def test_integers_run_only_on_exact_backends(auto_models):
    auto_models(fake_models(dtypes=("int64",)))
    x, w = np.ones(100_000, np.int64), np.ones(5_000, np.int64)
    name, details = cb.fastest("convolve", x, w, explain=True)
    assert "fft" not in details["predicted_s"]  # FFT rounds: never a candidate for integers
    assert name == min(details["predicted_s"], key=details["predicted_s"].get)
    np.testing.assert_array_equal(cb.convolve(x, w), np.convolve(x, w))
    auto_models({})  # the rule: direct, for any kernel length
    assert cb.fastest("convolve", x, w) == "numba"


def test_a_backend_that_declines_lets_the_next_in_the_ranking_run(monkeypatch, auto_models):
    """Auto's walk is generic: any backend may decline a call (``Declined``), and the next one runs."""
    from conv1dbench import _registry
    from conv1dbench._backends import Declined

    auto_models(fake_models())
    x, w = np.ones(100_000), np.ones(5_000)
    ranking = _auto.ranking(grid.problem(grid.signal_point(100_000, 5_000, "full")))
    first, second = ranking.names[:2]
    declined = []

    def decline(*args, **kwargs):
        declined.append(first)
        raise Declined("not this one")

    monkeypatch.setattr(_registry.module(first), "forward", decline)
    ran = []
    real = _registry.get_backend
    monkeypatch.setattr("conv1dbench._signal.get_backend", lambda n, d: ran.append(n) or real(n, d))
    np.testing.assert_allclose(cb.convolve(x, w), np.convolve(x, w), rtol=1e-9)
    assert declined == [first] and ran[-1] == second


def _problem_rows(seconds_by_backend, problem):
    """Wisdom rows of one problem, timed at the given seconds per backend."""
    return [{"key": f"{problem.key_text()}|{name}", "problem": problem.key_text(), "backend": name,
             "dtype": problem.dtype.name, "direction": problem.direction, "features": _model.features(problem, name),
             "median_s": seconds} for name, seconds in seconds_by_backend.items()]


def test_shipped_models_are_scaled_to_this_machine_by_its_timings():
    shipped = fake_models(dtypes=("float64",))
    problem = grid.problem(grid.signal_point(100_000, 63, "full"))
    predicted = {n: _model.predict(shipped[_model.model_key(n, "float64", "forward")], _model.features(problem, n))
                 for n in ("numba", "fft")}
    # this machine: numba three times and fft half as slow as the shipped models say
    rows = _problem_rows({"numba": 3 * predicted["numba"], "fft": 0.5 * predicted["fft"]}, problem)
    models, scales = _model.for_machine(shipped, rows)
    assert scales[_model.model_key("numba", "float64", "forward")] == pytest.approx(3)
    assert scales[_model.model_key("numba", "float64", "backward")] == pytest.approx(3)  # its backend's factor
    assert scales[_model.model_key("fft", "float64", "forward")] == pytest.approx(0.5)
    assert scales[_model.model_key("im2col", "float64", "forward")] == pytest.approx(np.sqrt(1.5))  # the machine's
    other = grid.problem(grid.signal_point(30_000, 7, "same"))
    numba = _model.model_key("numba", "float64", "forward")
    assert _model.predict(models[numba], _model.features(other, "numba")) == pytest.approx(
        3 * _model.predict(shipped[numba], _model.features(other, "numba")))
    assert _model.for_machine(shipped, [])[1] == {key: 1.0 for key in shipped}


def test_enough_timings_of_one_model_refit_it():
    shipped = fake_models(dtypes=("float64",))
    rows = []
    for n in np.geomspace(1000, 10**6, _model.REFIT_MIN).astype(int):
        problem = grid.problem(grid.signal_point(int(n), 15, "full"))
        rows += _problem_rows({"numba": 1e-5 + 2e-10 * problem.macs}, problem)
    models, scales = _model.for_machine(shipped, rows)
    key = _model.model_key("numba", "float64", "forward")
    assert key not in scales and models[key] != shipped[key]
    problem = grid.problem(grid.signal_point(50_000, 15, "full"))
    assert _model.predict(models[key], _model.features(problem, "numba")) == pytest.approx(
        1e-5 + 2e-10 * problem.macs, rel=0.05)


def test_close_times_only_the_candidates_near_the_best_prediction(tmp_path, auto_models, monkeypatch):
    models = fake_models()
    auto_models(models)
    x, w = np.ones(100_000), np.ones(5_000)
    predicted = _auto.ranking(grid.problem(grid.signal_point(100_000, 5_000, "full"))).details["predicted_s"]
    best = min(predicted.values())
    near = sorted(n for n, t in predicted.items() if t <= 2.5 * best)
    timed = []
    real = _auto._measure
    monkeypatch.setattr(_auto, "_measure", lambda p, names: timed.append(sorted(names)) or real(p, names))
    with cb.auto_settings(models=models, measured={}, measure="close", wisdom=tmp_path / "w.json"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            name, details = cb.fastest("convolve", x, w, explain=True)
        if len(near) >= 2:
            assert timed == [near] and details["rule"] == "measured on this machine"
            assert name == min(details["measured_s"], key=details["measured_s"].get)
            assert [c.category for c in caught] == [_auto.AutoTimingNotice]
        else:
            assert timed == [] and details["rule"] == "predicted by the cost model"
    with cb.auto_settings(models=models, measured={}, measure="off", wisdom=tmp_path / "w2.json"):
        assert cb.fastest("convolve", np.ones(90_000), w, explain=True)[1]["rule"] == "predicted by the cost model"


def test_timing_on_first_sight_is_announced_once_per_machine(tmp_path, auto_models):
    path = tmp_path / "w.json"
    for attempt in range(2):
        with cb.auto_settings(models=fake_models(), measured={}, measure="all", wisdom=path):
            _auto._state.announced = False  # a new process
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                cb.fastest("convolve", np.ones(2000 + attempt), np.ones(40))
        notices = [c for c in caught if c.category is _auto.AutoTimingNotice]
        assert len(notices) == (1 if attempt == 0 else 0)


def test_a_first_call_is_never_stored_as_a_speed(tmp_path, monkeypatch):
    """The first call compiles: only later calls are timings, the hopeless candidate's included."""
    calls = {}
    slow_first = {"numba": 5.0}  # seconds the first call of each backend pretends to take

    def fake_calibrate(call, **_):
        name = next(n for n in ("numba", "fft", "im2col", "naive", "fftw", "ducc") if n in calls.get("now", ""))
        return slow_first.get(name, 1e-3), 1e-3, 1
    monkeypatch.setattr(_auto, "calibrate", fake_calibrate)
    real_get = _auto.get_backend
    monkeypatch.setattr(_auto, "get_backend", lambda n, d: calls.__setitem__("now", n) or real_get(n, d))
    with cb.auto_settings(models=fake_models(), measured={}, measure="all", wisdom=tmp_path / "w.json"):
        cb.fastest("convolve", np.ones(3000), np.ones(40))
    rows = {r["backend"]: r for r in _wisdom.load(tmp_path / "w.json")}
    assert rows["numba"]["first_call_s"] == 5.0 and rows["numba"]["median_s"] < 1
    assert all(r["median_s"] < 1 for r in rows.values())


def test_measure_settings_are_checked():
    with pytest.raises(ValueError, match="measure must be one of"):
        cb.configure_auto(measure="sometimes")


def test_a_change_of_source_or_isa_never_reuses_timings(monkeypatch):
    """The fingerprint holds the vector ISA and a hash of the computing source: another of either is
    another machine entry, whose timings are never applied here."""
    fp = _wisdom.fingerprint()
    assert "vector_isa" in fp and len(fp["source"]) == 16
    before = _wisdom.fingerprint_key()
    monkeypatch.setattr(_wisdom, "_fingerprint", None)
    monkeypatch.setattr(_wisdom, "source_hash", lambda: "0" * 16)  # a kernel edited since
    assert _wisdom.fingerprint_key() != before
    monkeypatch.setattr(_wisdom, "_fingerprint", {**fp, "vector_isa": "AVX2+FMA"})  # another CPU
    assert _wisdom.fingerprint_key() not in (before, _wisdom.fingerprint_key(fp))
