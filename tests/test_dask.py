"""Dask arrays: the same results as the NumPy path, chunk by chunk, locally and on a real cluster."""

import numpy as np
import pytest

import conv1dbench as cb

da = pytest.importorskip("dask.array")

MODES = ["full", "same", "valid"]


def _check(op, x_np, chunks, w, mode, axis=-1, dtype_tol=1e-12):
    x = da.from_array(x_np, chunks=chunks)
    y = getattr(cb, op)(x, w, mode, axis=axis)
    assert isinstance(y, da.Array)
    expected = getattr(cb, op)(x_np, w, mode, axis=axis)
    got = y.compute(scheduler="sync")
    assert got.dtype == expected.dtype and got.shape == expected.shape == y.shape
    if expected.dtype.kind in "biu":
        np.testing.assert_array_equal(got, expected)
    else:
        scale = np.abs(x_np).max() * np.abs(w).sum()
        np.testing.assert_allclose(got, expected, rtol=0, atol=dtype_tol * scale)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize("taps", [1, 4, 7, 50, 130])   # even and odd, and longer than the chunks
def test_signals_match_numpy_for_every_mode(op, mode, taps):
    rng = np.random.default_rng(taps)
    x = rng.standard_normal(1000)
    w = rng.standard_normal(taps)
    _check(op, x, (100, 37, 400, 63, 400), w, mode)      # uneven chunks, some shorter than the kernel


@pytest.mark.parametrize("dtype, tol", [(np.float32, 1e-5), (np.complex128, 1e-12), (np.int16, 0)],
                         ids=["float32", "complex128", "int16"])
def test_dtypes_follow_the_numpy_path(dtype, tol):
    rng = np.random.default_rng(1)
    if np.dtype(dtype).kind == "i":
        x, w = rng.integers(-50, 50, 500).astype(dtype), rng.integers(-5, 5, 9).astype(dtype)
    else:
        x = (rng.standard_normal(500) + (1j * rng.standard_normal(500) if np.dtype(dtype).kind == "c" else 0))
        x, w = x.astype(dtype), (x[:9] * 0.5).astype(dtype)
    for mode in MODES:
        _check("correlate", x, 120, w, mode, dtype_tol=tol)


def test_other_axes_are_chunked_freely():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((6, 300, 5))
    w = rng.standard_normal(11)
    for mode in MODES:
        _check("convolve", x, (2, 70, 3), w, mode, axis=1)


def test_kernel_longer_than_the_signal_in_valid_mode():
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(40), rng.standard_normal(90)
    _check("correlate", x, 15, w, "valid")


@pytest.mark.parametrize("cfg", [
    dict(stride=1, padding="same", dilation=1, groups=1),
    dict(stride=3, padding=(4, 1), dilation=2, groups=2),
    dict(stride=2, padding="valid", dilation=1, groups=4),
    dict(stride=1, padding="full", dilation=3, groups=1),
])
def test_layers_match_numpy(cfg):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4, 301)).astype(np.float32)
    w = rng.standard_normal((8, 4 // cfg["groups"], 5)).astype(np.float32)
    b = rng.standard_normal(8).astype(np.float32)
    expected = cb.conv1d(x, w, b, **cfg)
    y = cb.conv1d(da.from_array(x, chunks=(2, 2, 53)), w, b, **cfg)
    assert isinstance(y, da.Array) and y.shape == expected.shape
    np.testing.assert_allclose(y.compute(scheduler="threads"), expected, atol=1e-4)
    unbatched = cb.conv1d(da.from_array(x[0], chunks=(4, 64)), w, **cfg).compute()
    np.testing.assert_allclose(unbatched, cb.conv1d(x[0], w, **cfg), atol=1e-4)


def test_bad_dask_input_raises_clear_errors():
    x = da.ones(100, chunks=10)
    with pytest.raises(ValueError, match="one non-empty 1-D kernel"):
        cb.convolve(x, np.ones((2, 3)))
    with pytest.raises(ValueError, match="unknown mode"):
        cb.convolve(x, np.ones(3), "middle")
    with pytest.raises(ValueError, match="C_in=4"):
        cb.conv1d(da.ones((1, 4, 50), chunks=10), np.ones((2, 3, 3)))


def test_runs_on_a_local_cluster_of_processes():
    distributed = pytest.importorskip("distributed")
    rng = np.random.default_rng(5)
    x_np, w = rng.standard_normal(20_000), rng.standard_normal(31)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        x = da.from_array(x_np, chunks=3000)
        for mode in MODES:
            got = client.compute(cb.convolve(x, w, mode)).result()
            np.testing.assert_allclose(got, cb.convolve(x_np, w, mode), atol=1e-12 * np.abs(w).sum() * 5)
        xl = rng.standard_normal((4, 3, 2000)).astype(np.float32)
        wl = rng.standard_normal((6, 3, 7)).astype(np.float32)
        got = client.compute(cb.conv1d(da.from_array(xl, chunks=(2, 3, 500)), wl, padding="same")).result()
        np.testing.assert_allclose(got, cb.conv1d(xl, wl, padding="same"), atol=1e-4)


def test_out_is_refused_with_dask_operands():
    x = da.from_array(np.ones(100), chunks=30)
    with pytest.raises(TypeError, match="out= takes NumPy results only"):
        cb.convolve(x, np.ones(3), out=np.empty(102))
