"""The peers: each called as its section of the report says, checked against the reference, its settings
left behind it; the optional ones offered only where their library is installed."""

import inspect

import numpy as np
import pytest
import scipy.fft

from conv1dbench.harness import cases, estimate, grid, peers, plots, report
from conv1dbench.harness.peers import oaconvolve_fftw

#: docs/SPEC.md's tolerances, which the harness checks every timed result against, for the float dtypes.
TOLERANCE = {dtype: cases.TOLERANCE[dtype] for dtype in ("float32", "float64")}
#: Tiny signal points: every mode and float dtype, a batch, a kernel longer than the signal, and an even
#: kernel (scipy's "same" pads it unevenly).
SIGNALS = ([grid.signal_point(60, 7, mode, dtype, batch) for mode in ("full", "same", "valid")
            for dtype in TOLERANCE for batch in (1, 3)]
           + [grid.signal_point(5, 9, mode) for mode in ("full", "same", "valid")]
           + [grid.signal_point(60, 8, "same", dtype) for dtype in TOLERANCE])
#: Tiny layer points: plain, depthwise, strided with an even kernel; forward and backward; both dtypes.
LAYERS = [grid.layer_point(2, 4, 6, 40, 3, direction=d, dtype=t) for d in ("forward", "backward") for t in TOLERANCE]
LAYERS += [grid.layer_point(2, 4, 4, 40, 3, groups=4, direction="backward"),
           grid.layer_point(2, 4, 6, 40, 8, stride=4, direction="backward")]


def _label(point) -> str:
    return f"{point['api']} {grid.label(point)} {point['pass']} {point['dtype']} {point['mode']}"


def _check(impl, point):
    """The case of ``impl`` on ``point``: its result within tolerance (or the point skipped, with a reason)."""
    reason = cases.skip_reason(impl, point)
    if reason:
        return reason
    case = cases.make_case(impl, point, cases.data(point))
    assert case.error() < TOLERANCE[point["dtype"]], (impl, _label(point))
    return case


def test_every_peer_is_one_module_with_a_whole_spec():
    assert len(peers.REGISTRY) == len(peers.MODULES)  # one peer per module, no name twice
    for name, peer in peers.REGISTRY.items():
        assert peer.name == name and peer.library and peer.licence and peer.computes and peer.call, name
        assert peer.threads in peers.THREAD_SETTINGS and set(peer.passes) <= {"forward", "backward"}, name
        assert peer.apis and (peer.gpu == (peer.sees_gpu is not None)), name
        assert peer.call.format(threads=2)  # the report fills in the thread count
    assert set(report.PEER_COLUMNS["signal"]) | set(report.PEER_COLUMNS["layer"]) <= set(cases.PEERS)
    assert set(report.FFT_PEERS) <= set(report.PEER_COLUMNS["signal"])
    assert {"oaconvolve", "oaconvolve-workers", "oaconvolve-fftw", "oaconvolve-mkl"} == set(report.FFT_PEERS)
    assert {"ipp", "mkl-vsl"} <= set(report.PEER_COLUMNS["signal"])
    assert {"torch", "onnxruntime", "jax"} == set(report.PEER_COLUMNS["layer"])
    offered = cases.implementations()
    assert {"oaconvolve", "oaconvolve-workers", "auto", cases.AUTO_ONE_THREAD} <= set(offered)
    assert all(cases.kind(p) == "peer" for p in offered if p in cases.PEERS)
    assert cases.kind(cases.AUTO_ONE_THREAD) == "backend" and cases.base(cases.AUTO_ONE_THREAD) == "auto"
    import numba

    assert cases.peer_threads() == numba.config.NUMBA_NUM_THREADS


def test_the_report_names_each_peers_library_licence_and_threads():
    import pandas as pd

    frame = pd.DataFrame({"impl": ["scipy", "oaconvolve-workers", "numba"]})
    lines = report.peers_section({"machine": {"numba_threads": 2}}, frame)
    assert any(line.startswith("- scipy (SciPy; BSD-3-Clause; threads: 1)") for line in lines), lines
    assert any(line.startswith("- oaconvolve-workers (SciPy; BSD-3-Clause; threads: 2)") and "set_workers(2)" in line
               for line in lines), lines
    assert not any("numba" in line for line in lines)


def test_peers_of_missing_libraries_are_not_offered_and_skip_with_why(monkeypatch):
    monkeypatch.setattr(peers._spec, "installed", lambda library: library not in ("jax", "pyfftw"))
    offered = cases.implementations()
    assert not {"jax", "jax-fftconvolve", "jax-convolve", "oaconvolve-fftw"} & set(offered)
    assert "oaconvolve-workers" in offered
    assert cases.skip_reason("jax", LAYERS[0]) == "JAX is not installed"
    assert cases.skip_reason("jax-convolve", SIGNALS[0]) == "JAX is not installed"
    assert cases.skip_reason("oaconvolve-fftw", SIGNALS[0]) == "pyFFTW is not installed"


def test_each_peer_runs_where_its_api_pass_and_dtype_do(monkeypatch):
    monkeypatch.setattr(peers._spec, "installed", lambda library: True)  # their APIs, whether installed or not
    signal, layer = SIGNALS[0], LAYERS[0]
    assert "layers only" in cases.skip_reason("jax", signal)
    for peer in ("oaconvolve-workers", "oaconvolve-fftw", "jax-fftconvolve", "jax-convolve"):
        assert cases.skip_reason(peer, layer).startswith(f"{peer} has no layer API")
    longer_kernel = grid.signal_point(5, 9, "same")
    assert "max(N, K) outputs" in cases.skip_reason("jax-convolve", longer_kernel)
    assert cases.skip_reason("jax-fftconvolve", longer_kernel) is None
    assert cases.skip_reason("jax-convolve", grid.signal_point(5, 9, "valid")) is None
    backward64 = grid.layer_point(2, 4, 6, 40, 3, direction="backward", dtype="float64")
    assert cases.skip_reason("onnxruntime", backward64) == "onnxruntime has no backward pass"
    forward64 = grid.layer_point(2, 4, 6, 40, 3, dtype="float64")
    assert cases.skip_reason("onnxruntime", forward64) == "onnxruntime does not compute in float64"
    assert cases.skip_reason(cases.AUTO_ONE_THREAD, layer).endswith("on signals only")
    assert cases.skip_reason(cases.AUTO_ONE_THREAD, signal) is None


def test_auto_on_one_thread_runs_auto_in_a_worker_of_one_thread():
    env = cases.worker_env(cases.AUTO_ONE_THREAD)
    assert env["NUMBA_NUM_THREADS"] == env["OPENBLAS_NUM_THREADS"] == env["OMP_NUM_THREADS"] == "1"
    assert cases.worker_env("auto") == {} and cases.worker_env("numba") == {}
    case = _check(cases.AUTO_ONE_THREAD, SIGNALS[0])
    assert case.chose  # auto's choice, as the auto row says it
    est = estimate.Estimate(min_time_s=0.05, min_samples=3)
    point = grid.signal_point(10**5, 1023)
    assert est.call_s(cases.AUTO_ONE_THREAD, point) == pytest.approx(estimate.ONE_THREAD_SLOWER
                                                                     * est.call_s("auto", point))


@pytest.mark.parametrize("signal", SIGNALS, ids=_label)  # (a test taking "point" is a benchmark: pytest_plugin)
def test_oaconvolve_with_workers_runs_on_our_threads_and_leaves_scipy_fft_as_it_was(signal, monkeypatch):
    import scipy.signal

    seen = []
    oaconvolve = scipy.signal.oaconvolve

    def spy(*args, **kwargs):
        seen.append(scipy.fft.get_workers())
        return oaconvolve(*args, **kwargs)
    monkeypatch.setattr(scipy.signal, "oaconvolve", spy)
    _check("oaconvolve-workers", signal).call()
    assert seen and set(seen) == {cases.peer_threads()}
    assert scipy.fft.get_workers() == 1


@pytest.mark.parametrize("signal", SIGNALS, ids=_label)
def test_oaconvolve_on_fftw_plans_when_made_with_our_threads_and_leaves_scipy_fft_as_it_was(signal, monkeypatch):
    pytest.importorskip("pyfftw")
    import pyfftw.builders
    import pyfftw.interfaces.cache

    pyfftw.interfaces.cache.disable()  # its plans of earlier tests dropped: this case must make its own
    plans = []
    for name in ("rfftn", "irfftn"):
        build = getattr(pyfftw.builders, name)

        def spy(*args, build=build, **kwargs):
            plans.append(inspect.signature(build).bind(*args, **kwargs).arguments)
            return build(*args, **kwargs)
        monkeypatch.setattr(pyfftw.builders, name, spy)
    effort = pyfftw.config.PLANNER_EFFORT
    case = _check("oaconvolve-fftw", signal)
    assert plans, "no FFTW plan made when the case was"
    assert {(p["planner_effort"], p["threads"]) for p in plans} == {(oaconvolve_fftw.EFFORT, cases.peer_threads())}
    assert pyfftw.interfaces.cache.is_enabled()
    assert pyfftw.interfaces.cache._fftw_cache.keepalive_time == oaconvolve_fftw.KEEPALIVE_S
    case.call()
    assert pyfftw.config.PLANNER_EFFORT == effort and scipy.fft.get_workers() == 1
    made = len(plans)
    x = np.arange(19.0)
    np.testing.assert_allclose(scipy.fft.irfft(scipy.fft.rfft(x), 19), x, atol=1e-12)  # not on pyFFTW
    assert len(plans) == made


@pytest.mark.parametrize("impl", [p for p in cases.PEERS if "signal" in peers.REGISTRY[p].apis])
def test_the_signal_peers_compute_scipys_array_in_every_mode(impl):
    """An even kernel in "same" included: torch's own padding="same" is one sample off scipy's there; a kernel
    longer than the signal too (IPP's and MKL's outputs are scipy's ranges of the full convolution)."""
    if not peers.REGISTRY[impl].installed():
        pytest.skip(f"{peers.REGISTRY[impl].library} is not installed")
    checked = [case for point in SIGNALS if not isinstance(case := _check(impl, point), str)]
    assert checked, impl


@pytest.mark.parametrize("signal", SIGNALS[:6], ids=_label)
def test_oaconvolve_on_mkl_runs_mkl_fft_on_our_threads_and_leaves_scipy_fft_as_it_was(signal, monkeypatch):
    pytest.importorskip("mkl_fft")
    import mkl_fft.interfaces.scipy_fft as mkl_scipy_fft
    import scipy.signal

    seen = []
    rfftn = mkl_scipy_fft.rfftn

    def spy(*args, **kwargs):
        seen.append(mkl_scipy_fft.get_workers())
        return rfftn(*args, **kwargs)
    monkeypatch.setattr(mkl_scipy_fft, "rfftn", spy)
    before = mkl_scipy_fft.get_workers()
    _check("oaconvolve-mkl", signal).call()
    assert seen and set(seen) == {cases.peer_threads()}  # mkl_fft's own workers, pinned to ours
    assert mkl_scipy_fft.get_workers() == before and scipy.fft.get_workers() == 1
    x = np.arange(19.0)
    seen.clear()
    np.testing.assert_allclose(scipy.fft.irfft(scipy.fft.rfft(x), 19), x, atol=1e-12)
    assert not seen and scipy.signal.oaconvolve is not None  # scipy.fft's backend is pocketfft again


@pytest.mark.parametrize("layer", [p for p in LAYERS if p["dtype"] == "float32"], ids=_label)
def test_onnxruntime_computes_the_forward_layer_on_our_threads(layer):
    pytest.importorskip("onnxruntime")
    reason = cases.skip_reason("onnxruntime", layer)
    if layer["pass"] == "backward":
        assert reason == "onnxruntime has no backward pass"
        return
    case = _check("onnxruntime", layer)
    assert case.call().dtype == np.float32


@pytest.mark.parametrize("impl", ["jax-fftconvolve", "jax-convolve"])
def test_jax_signal_peers_match_scipy_and_block_for_their_result(impl):
    pytest.importorskip("jax")
    for point in SIGNALS:
        case = _check(impl, point)
        if isinstance(case, str):
            continue
        result = case.call()
        assert result.is_ready() and result.dtype == np.dtype(point["dtype"]), _label(point)
        assert result.shape[:-1] == (() if point["batch"] == 1 else (point["batch"],))


@pytest.mark.parametrize("layer", LAYERS, ids=_label)
def test_jax_layers_match_the_reference_forward_and_backward(layer):
    pytest.importorskip("jax")
    result = _check("jax", layer).call()
    results = result if layer["pass"] == "backward" else (result,)
    assert len(results) == (2 if layer["pass"] == "backward" else 1)  # grad_x and grad_w
    assert all(r.is_ready() and r.dtype == np.dtype(layer["dtype"]) for r in results)


def test_the_new_peers_have_time_proxies_and_colours():
    est = estimate.Estimate(min_time_s=0.05, min_samples=3)
    point = grid.signal_point(10**5, 1023)
    plain = est.measurement_s(["oaconvolve"], point)
    build_s = peers.REGISTRY["oaconvolve-fftw"].build_s
    assert est.measurement_s(["oaconvolve-fftw"], point) == pytest.approx(plain + build_s)
    for peer in ("oaconvolve-workers", "jax-fftconvolve", "jax-convolve", "oaconvolve-mkl", "ipp", "mkl-vsl"):
        assert 0 < est.call_s(peer, point) < 60
    assert 0 < est.call_s("jax", LAYERS[1]) < 60 and estimate.process_s(["jax"]) > estimate.process_s(["numpy"])
    assert 0 < est.call_s("onnxruntime", LAYERS[0]) < 60
    colours = plots.impl_colours(["someone-else"])
    assert set(plots.KNOWN_IMPLS) >= set(cases.PEERS) and len(set(colours.values())) == len(colours)


@pytest.mark.parametrize("impl", ["fft", "fftw", "ducc", "numba"])
def test_our_backends_cases_say_their_threads(impl):
    """Each row of ours carries the threads the backend ran on (its ``threads(problem)``), which the FFT
    engines' report section shows; peers and auto carry none."""
    from conv1dbench import _registry, _threads

    if not _registry.is_available(impl):
        pytest.skip(_registry.unavailable_reason(impl))
    small, large = grid.signal_point(2000, 63), grid.signal_point(10**6, 1023)
    assert cases.setup(impl, small).threads == 1
    many = cases.setup(impl, large).threads
    assert 1 <= many <= _threads.cores()
    assert cases.setup("oaconvolve", small).threads is None and cases.setup("auto", small).threads is None
