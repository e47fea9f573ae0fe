"""The cuda backend: on the CUDA simulator (in a process of its own) or on a GPU, and its errors.

Without a GPU, :func:`test_registry_suite_on_the_simulator` runs every registry-parametrized test
for ``cuda`` in a child process with ``NUMBA_ENABLE_CUDASIM=1`` (Numba reads it at import, so it
cannot be switched on here).  The device-array tests below run in that child, or here on a GPU.
"""

import importlib.util
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.signal
from conftest import ONLY, SIMULATED

import conv1dbench as cb

CUDA = cb.backends()["cuda"]
needs_cuda = pytest.mark.skipif(not CUDA["available"], reason=f"cuda: {CUDA['reason']}")


def _why_no_simulator_run():
    if SIMULATED or ONLY:
        return "this process is the simulator run"
    if CUDA["available"]:
        return "a GPU is present: the registry tests ran on it"
    if importlib.util.find_spec("numba_cuda") is None:
        return "numba-cuda is not installed (pip install -e '.[test]' installs it)"
    return None


@pytest.mark.skipif(_why_no_simulator_run() is not None, reason=str(_why_no_simulator_run()))
def test_registry_suite_on_the_simulator():
    env = dict(os.environ, NUMBA_ENABLE_CUDASIM="1", CONV1DBENCH_TEST_BACKENDS="cuda")
    tests = Path(__file__).parent
    done = subprocess.run([sys.executable, "-m", "pytest", str(tests), "-q", "-p", "no:cacheprovider"],
                          check=False, env=env, cwd=tests.parent, capture_output=True, text=True, timeout=1200)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= 50, f"too few tests ran on the simulator: {summary}"


@pytest.mark.skipif(CUDA["available"], reason="cuda is available here")
def test_unavailable_cuda_says_what_is_missing():
    with pytest.raises(cb.BackendUnavailable) as info:
        cb.convolve(np.ones(5), np.ones(2), backend="cuda")
    message = str(info.value)
    assert "cuda" in message and "NUMBA_ENABLE_CUDASIM=1" in message


# --------------------------------------------------------------------------------------------
# On the simulator or a GPU
# --------------------------------------------------------------------------------------------

class CudaInterfaceArray:
    """A foreign device array (as CuPy or torch would hand over): only ``__cuda_array_interface__``."""

    def __init__(self, device_array):
        self.owner = device_array
        if SIMULATED:  # simulated device memory is host memory
            host = device_array._ary
            self.__cuda_array_interface__ = {"shape": host.shape, "typestr": host.dtype.str, "version": 3,
                                             "data": (host.ctypes.data, False), "strides": None}
        else:
            self.__cuda_array_interface__ = device_array.__cuda_array_interface__


def _to_device(a):
    from numba import cuda
    return cuda.to_device(np.ascontiguousarray(a))


def _pointer(device_array) -> int:
    if SIMULATED:
        return device_array._ary.ctypes.data
    return device_array.__cuda_array_interface__["data"][0]


def _host(device_array):
    assert hasattr(device_array, "copy_to_host"), f"expected a device array, got {type(device_array)}"
    return device_array.copy_to_host()


@needs_cuda
@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("op", ["convolve", "correlate"])
def test_device_signals_stay_on_the_device(op, dtype):
    rng = np.random.default_rng(20)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    cases = [((40,), (5,)), ((6,), (9,)), ((3, 30), (4,)), ((3, 30), (3, 6)), ((1, 25), (2, 3))]
    for shape1, shape2 in cases:
        in1, in2 = rng.standard_normal(shape1).astype(dtype), rng.standard_normal(shape2).astype(dtype)
        for mode in ["full", "same", "valid"]:
            y = getattr(cb, op)(_to_device(in1), _to_device(in2), mode)
            expected = getattr(cb, op)(in1, in2, mode, backend="numba")
            got = _host(y)
            assert got.dtype == np.dtype(dtype) and got.shape == expected.shape, (shape1, shape2, mode)
            np.testing.assert_allclose(got, expected, rtol=0, atol=tol * np.abs(in2).sum() * np.abs(in1).max())


@needs_cuda
def test_device_layer_forward_and_backward_stay_on_the_device():
    rng = np.random.default_rng(21)
    x, w, b = rng.standard_normal((2, 4, 30)), rng.standard_normal((6, 2, 3)), rng.standard_normal(6)
    args = {"stride": 2, "padding": (2, 1), "dilation": 2, "groups": 2}
    expected = cb.conv1d(x, w, b, backend="numba", **args)
    y = cb.conv1d(_to_device(x), _to_device(w), _to_device(b), **args)
    np.testing.assert_allclose(_host(y), expected, atol=1e-12)
    y = cb.conv1d(_to_device(x[0]), _to_device(w), b, **args)  # unbatched; a host bias is fine
    np.testing.assert_allclose(_host(y), expected[0], atol=1e-12)
    g = rng.standard_normal(expected.shape)
    grads = cb.conv1d_backward(_to_device(g), _to_device(x), _to_device(w), **args)
    for got, want in zip(grads, cb.conv1d_backward(g, x, w, backend="numba", **args), strict=True):
        np.testing.assert_allclose(_host(got), want, atol=1e-12)


@needs_cuda
def test_cuda_array_interface_objects_are_used_in_place():
    from conv1dbench._backends import cuda as backend

    x = _to_device(np.arange(12.0).reshape(1, 2, 6))
    foreign = CudaInterfaceArray(x)
    assert _pointer(backend.as_device(foreign)) == _pointer(x)  # no copy
    w = CudaInterfaceArray(_to_device(np.ones((1, 2, 2))))
    np.testing.assert_allclose(_host(cb.conv1d(foreign, w)), cb.conv1d(_host(x), np.ones((1, 2, 2))))
    assert cb.fastest("conv1d", foreign, w) == "cuda"


@pytest.mark.skipif(not SIMULATED, reason="the simulator's own race")
def test_simulated_threads_of_a_block_share_one_shared_array(monkeypatch):
    # The simulator creates a block's shared array on the first thread's request; a slow allocation lets
    # every thread race for it, and without the backend's lock each stages its share into an array of its own.
    empty = np.empty
    monkeypatch.setattr(np, "empty", lambda *args, **kwargs: (time.sleep(0.001), empty(*args, **kwargs))[1])
    rng = np.random.default_rng(13)
    x, w = rng.standard_normal((2, 4, 13)), rng.standard_normal((6, 2, 3))
    y = cb.conv1d(x, w, groups=2, padding=1, backend="cuda")
    monkeypatch.undo()
    np.testing.assert_allclose(y, cb.conv1d(x, w, groups=2, padding=1, backend="numba"), atol=1e-12)


@needs_cuda
def test_host_arrays_on_cuda_come_back_as_numpy():
    y = cb.correlate(np.arange(5.0), np.ones(2), "valid", backend="cuda")
    assert isinstance(y, np.ndarray)
    np.testing.assert_allclose(y, scipy.signal.correlate(np.arange(5.0), np.ones(2), "valid"))


@needs_cuda
def test_device_inputs_are_not_modified():
    rng = np.random.default_rng(22)
    x, w = rng.standard_normal((2, 3, 20)), rng.standard_normal((4, 3, 5))
    dx, dw = _to_device(x), _to_device(w)
    cb.conv1d(dx, dw, padding="same")
    cb.conv1d_backward(_to_device(np.ones((2, 4, 20))), dx, dw, padding="same")
    cb.convolve(dx, _to_device(w[0]))
    np.testing.assert_array_equal(_host(dx), x)
    np.testing.assert_array_equal(_host(dw), w)


@needs_cuda
@pytest.mark.parametrize("call, exc, fragment", [
    (lambda d: cb.convolve(d(np.ones(5)), np.ones(2), backend="numba"), TypeError, "only backend='cuda'"),
    (lambda d: cb.convolve(d(np.ones(5)), np.ones(2, np.float32)), TypeError, "share one dtype"),
    (lambda d: cb.convolve(d(np.ones(5, np.int64)), np.ones(2, np.int64)), TypeError, "float32 and float64"),
    (lambda d: cb.convolve(d(np.ones((2, 5))), np.ones(2), axis=0), ValueError, "last axis"),
    (lambda d: cb.convolve(d(np.ones((2, 5))), d(np.ones((3, 2)))), ValueError, "leading shapes"),
    (lambda d: cb.convolve(d(np.ones(5)), np.ones(2), mode="middle"), ValueError, "unknown mode"),
    (lambda d: cb.conv1d(d(np.ones((1, 3, 8))), d(np.ones((2, 2, 3)))), ValueError, "C_in=3"),
    (lambda d: cb.conv1d(d(np.ones((1, 2, 8))), d(np.ones((2, 2, 3))), bias=np.ones(3)), ValueError, "bias"),
    (lambda d: cb.conv1d_backward(d(np.ones((1, 2, 5))), d(np.ones((1, 2, 8))), d(np.ones((2, 2, 3)))),
     ValueError, "grad_output must have shape"),
])
def test_bad_device_input_raises_clear_error(call, exc, fragment):
    with pytest.raises(exc, match=re.escape(fragment)):
        call(_to_device)


@needs_cuda
@pytest.mark.parametrize("shape1, shape2", [((2, 3, 20), (3, 5)), ((2, 3, 20), (1, 3, 4)), ((2, 3, 20), (2, 3, 6)),
                                            ((4, 7), (1, 30))], ids=str)
def test_device_kernels_broadcast_over_slices(shape1, shape2):
    rng = np.random.default_rng(23)
    in1, in2 = rng.standard_normal(shape1), rng.standard_normal(shape2)
    for mode in ["full", "same", "valid"]:
        for op in ["convolve", "correlate"]:
            got = _host(getattr(cb, op)(_to_device(in1), _to_device(in2), mode))
            np.testing.assert_allclose(got, getattr(cb, op)(in1, in2, mode, backend="numba"), atol=1e-12)


def _nvvm_missing():
    """Why kernels cannot be compiled to PTX here (the toolkit comes with ``pip install '.[cuda]'``), or None."""
    if SIMULATED or importlib.util.find_spec("numba_cuda") is None:
        return "needs numba-cuda outside the simulator"
    try:  # compiling a trivial kernel needs NVVM and NVRTC, which come with the toolkit
        from numba import cuda, float32

        def probe(a):
            a[0] = 1

        cuda.compile_ptx(probe, (float32[:],), cc=(9, 0))
    except Exception as exc:  # noqa: BLE001 - the reason becomes the skip message
        return f"the CUDA compiler is not installed ({type(exc).__name__}); pip install -e '.[cuda]' brings it"
    return None


@pytest.mark.skipif(_nvvm_missing() is not None, reason=str(_nvvm_missing()))
def test_kernels_compile_for_an_h100_in_their_dtype_without_spills():
    """What the simulator cannot see: every kernel compiles for sm_90 (no GPU needed), float32
    kernels do no float64 arithmetic (a stray ``0`` literal would promote them), and the register
    blocks of accumulators stay in registers (no local memory)."""
    from numba import cuda, float32, float64, int64

    from conv1dbench._backends import cuda as backend

    for dtype, nb in ((np.float32, float32), (np.float64, float64)):
        a3, a4, i = nb[:, :, :], nb[:, :, :, :], int64
        kernels = {f"forward oc={oc} r={r} staged={staged}": (backend._forward_kernel(np.dtype(dtype), oc, r, staged),
                                                             (a3, a3, a3, i, i, i, i, i))
                   for oc, r in ((4, 4), (1, 8)) for staged in (True, False)}
        partials, sums = backend._weight_grad_kernels(np.dtype(dtype), 4)
        transpose, spread, add_bias, bias_grad = backend._helper_kernels(np.dtype(dtype))
        kernels.update({"weight partials": (partials, (a3, a3, a4, i, i, i, i, i)), "chunk sums": (sums, (a4, a3)),
                        "transpose": (transpose, (a3, a3, i)), "spread": (spread, (a3, a3, i)),
                        "add bias": (add_bias, (a3, nb[:])), "bias gradient": (bias_grad, (a3, nb[:]))})
        for name, (kernel, signature) in kernels.items():
            ptx, _ = cuda.compile_ptx(kernel.py_func, signature, cc=(9, 0))
            assert ".local" not in ptx, f"{name} ({dtype.__name__}) spills to local memory"
            if dtype == np.float32:
                assert ".f64" not in ptx, f"{name} (float32) does float64 arithmetic"


@needs_cuda
def test_gpu_smoke_grid_runs_in_the_harness(tmp_path):
    """The harness's GPU grid, in worker processes (on the simulator there: Numba reads the variable at import)."""
    from conv1dbench.harness import cases, grid, report, runner

    points = [p for p in grid.grid("gpu-smoke") if p["pass"] == "forward" and p["K"] == 3]  # a layer, a signal
    impls = cases.implementations("gpu")
    assert any(i.endswith(cases.DEVICE_VARIANT) for i in impls) and any(i in cb.backends() for i in impls)
    run = runner.sweep(points, impls, min_time_s=0.001, min_samples=1, progress=False, interference=False,
                       quick_peak=True, command="test", grid="gpu-smoke")
    frame = report.tidy(run)
    assert (frame.status == "ok").all(), frame.reason.tolist()
    assert (frame.max_error < 1e-5).all() and (frame.median_s > 0).all() and frame.device.notna().all()
    text = report.markdown(run, frame)
    assert "## GPU" in text and "### GPU layers: forward" in text and "## GPU targets (issue 4)" in text
    assert "## Findings" not in text  # GPU rows have their section instead of the CPU tables
