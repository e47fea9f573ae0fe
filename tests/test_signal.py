"""convolve / correlate on every backend against scipy.signal's direct method."""

import re

import numpy as np
import pytest
import scipy.signal
from conftest import DIRECT_BACKENDS, skip_if_slow, skip_unless_takes, takes
from reference import SCIPY_OPS, assert_signal_close, random_array, scipy_slices

import conv1dbench as cb

OPS = {"convolve": cb.convolve, "correlate": cb.correlate}
MODES = ["full", "same", "valid"]
FLOAT_DTYPES = [np.float32, np.float64, np.complex64, np.complex128]
# N = 1, K = 1, K > N, even K, K = N, and lengths that cross the numba kernel's 4-tap blocks
LENGTH_PAIRS = [(1, 1), (1, 3), (2, 2), (5, 1), (5, 2), (5, 5), (5, 8), (7, 4), (16, 3), (16, 16),
                (33, 6), (33, 40), (64, 13), (100, 9)]


@pytest.mark.parametrize("dtype", [np.int64, np.float64], ids=lambda d: np.dtype(d).name)
def test_spec_worked_example(backend, dtype):
    skip_unless_takes(backend, dtype)
    x, w = np.array([1, 2, 3, 4], dtype), np.array([5, 6, 7], dtype)
    exact = np.dtype(dtype).kind == "i"  # floats: FFT rounds in the last bits

    def check(y, expected):
        assert y.dtype == np.dtype(dtype)
        np.testing.assert_allclose(y, expected, rtol=0, atol=0 if exact else 1e-12 * 18 * 4)
    check(cb.convolve(x, w, backend=backend), [5, 16, 34, 52, 45, 28])
    check(cb.convolve(x, w, "same", backend=backend), [16, 34, 52, 45])
    check(cb.convolve(x, w, "valid", backend=backend), [34, 52])
    check(cb.correlate(x, w, "valid", backend=backend), [38, 56])


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("op", OPS)
def test_matches_scipy_direct(backend, op, mode, dtype):
    skip_unless_takes(backend, dtype)
    rng = np.random.default_rng(1)
    for n, k in LENGTH_PAIRS:
        in1, in2 = random_array(rng, n, dtype), random_array(rng, k, dtype)
        y = OPS[op](in1, in2, mode, backend=backend)
        assert y.dtype == np.dtype(dtype)
        assert_signal_close(y, scipy_slices(op, in1, in2, mode), in1, in2, dtype, f"N={n} K={k}")


@pytest.mark.parametrize("n, k", [(5000, 3), (5000, 17), (4000, 300), (3000, 2999), (300, 5000)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.complex128], ids=lambda d: np.dtype(d).name)
def test_larger_sizes(backend, n, k, dtype):
    """Sizes that reach the parallel numba kernel, several tiles, and FFT overlap-add."""
    skip_unless_takes(backend, dtype)
    skip_if_slow(backend, n * k)
    rng = np.random.default_rng(n + k)
    in1, in2 = random_array(rng, n, dtype), random_array(rng, k, dtype)
    for op in OPS:
        for mode in MODES:
            y = OPS[op](in1, in2, mode, backend=backend)
            assert_signal_close(y, scipy_slices(op, in1, in2, mode), in1, in2, dtype, f"{op} {mode}")


@pytest.mark.parametrize("dtype1, dtype2", [
    (np.int8, np.int8), (np.uint8, np.uint8), (np.int16, np.int32), (np.int64, np.int64),
    (np.uint64, np.uint64), (np.uint32, np.int8), (np.bool_, np.bool_), (np.bool_, np.int16),
    (np.int8, np.float32), (np.int64, np.complex64), (np.float32, np.float64)])
@pytest.mark.parametrize("mode", MODES)
def test_dtypes_follow_scipy(backend, mode, dtype1, dtype2):
    skip_unless_takes(backend, np.result_type(dtype1, dtype2))
    rng = np.random.default_rng(2)
    for n, k in [(9, 4), (4, 9), (30, 7)]:
        in1 = rng.integers(0, 5, n).astype(dtype1)
        in2 = rng.integers(0, 5, k).astype(dtype2)
        for op in OPS:
            y = OPS[op](in1, in2, mode, backend=backend)
            try:
                expected = scipy_slices(op, in1, in2, mode, exact=True)
            except (ValueError, TypeError):  # scipy refuses some bool cases; the value is still defined
                assert y.dtype == np.bool_
                expected = scipy_slices(op, in1.astype(np.int64), in2.astype(np.int64), mode, exact=True) != 0
            assert y.dtype == expected.dtype, f"{op}: {y.dtype} != {expected.dtype}"
            if expected.dtype.kind in "biu":
                np.testing.assert_array_equal(y, expected)
            else:
                assert_signal_close(y, expected, in1, in2, expected.dtype)


def test_integers_are_exact_for_large_values(backend):
    """Exact integer arithmetic, not float64: values near 2**62 survive on direct backends."""
    skip_unless_takes(backend, np.int64)
    in1 = np.array([2**61, 3, -(2**60)], dtype=np.int64)
    in2 = np.array([1, 1], dtype=np.int64)
    expected = scipy.signal.convolve(in1, in2, method="direct")
    if not cb._registry.module(backend).EXACT_INTEGERS:  # the FFT backends round: they refuse
        with pytest.raises(ValueError, match="exact"):
            cb.convolve(in1, in2, backend=backend)
    else:
        np.testing.assert_array_equal(cb.convolve(in1, in2, backend=backend), expected)


def test_integer_results_wrap_like_scipy(backend):
    skip_unless_takes(backend, np.int8)
    in1 = np.array([100, 100, 100], dtype=np.int8)
    in2 = np.array([2, 2], dtype=np.int8)
    np.testing.assert_array_equal(cb.convolve(in1, in2, backend=backend),
                                  scipy.signal.convolve(in1, in2, method="direct"))


BATCH_CASES = [  # in1 shape, in2 shape, axis
    ((3, 20), (5,), -1),
    ((2, 3, 20), (4,), -1),
    ((20, 3), (4,), 0),
    ((2, 20, 3), (2, 6, 3), 1),       # kernels along the same axis, one per slice
    ((2, 3, 20), (1, 3, 7), -1),      # kernels broadcast over the first dimension
    ((1, 20), (4, 6), -1),            # one signal, many kernels
    ((2, 3, 20), (3, 5), -1),         # fewer dimensions: broadcast with the axis last
    ((3, 4), (3, 9), -1),             # valid mode swaps every slice
]


@pytest.mark.parametrize("shape1, shape2, axis", BATCH_CASES, ids=str)
@pytest.mark.parametrize("op", OPS)
def test_batched_and_broadcast(backend, op, shape1, shape2, axis):
    dtype = np.complex128 if takes(backend, np.complex128) else np.float64
    rng = np.random.default_rng(3)
    in1, in2 = random_array(rng, shape1, dtype), random_array(rng, shape2, dtype)
    for mode in MODES:
        y = OPS[op](in1, in2, mode, axis=axis, backend=backend)
        ref = scipy_slices(op, in1, in2, mode, axis=axis)
        assert_signal_close(y, ref, in1, in2, dtype, f"{mode}")


@pytest.mark.parametrize("mode", MODES)
def test_nd_operands_of_equal_rank_are_fftconvolve_along_the_axis_not_an_nd_convolution(mode):
    """docs/SPEC.md section 1: ``convolve`` of N-d operands is ``scipy.signal.fftconvolve(..., axes=axis)``,
    whereas ``scipy.signal.convolve`` convolves in N dimensions: the two differ, and we are the former."""
    rng = np.random.default_rng(31)
    x, w = rng.standard_normal((3, 40)), rng.standard_normal((3, 7))
    ours = cb.convolve(x, w, mode)
    np.testing.assert_allclose(ours, scipy.signal.fftconvolve(x, w, mode, axes=-1), rtol=0, atol=1e-12 * 40)
    in_2d = scipy.signal.convolve(x, w, mode)
    assert in_2d.shape != ours.shape or not np.allclose(in_2d, ours)
    x0, w0 = np.moveaxis(x, 1, 0), np.moveaxis(w, 1, 0)
    np.testing.assert_allclose(cb.convolve(x0, w0, mode, axis=0), scipy.signal.fftconvolve(x0, w0, mode, axes=0),
                               rtol=0, atol=1e-12 * 40)


def test_accepts_lists_views_readonly_and_big_endian(backend):
    rng = np.random.default_rng(4)
    base = rng.standard_normal(41)
    kernel = rng.standard_normal(6)
    ref = scipy.signal.correlate(base[::2], kernel, "same", method="direct")
    readonly = base[::2].copy()
    readonly.flags.writeable = False
    variants = {
        "list": list(base[::2]),
        "tuple": tuple(base[::2]),
        "strided": base[::2],
        "negative stride": base[::-2][::-1],
        "read-only": readonly,
        "big-endian": base[::2].astype(">f8"),
    }
    for name, in1 in variants.items():
        y = cb.correlate(in1, kernel.astype(">f8") if name == "big-endian" else kernel, "same", backend=backend)
        assert y.dtype == np.float64 and y.dtype.isnative, name
        assert_signal_close(y, ref, base, kernel, np.float64, name)


def test_inputs_are_not_modified(backend):
    rng = np.random.default_rng(5)
    for dtype in [np.float32, np.float64, np.complex128, np.int64]:
        if not takes(backend, dtype):
            continue
        in1 = (rng.standard_normal((3, 50)) * 10).astype(dtype)
        in2 = (rng.standard_normal((3, 9)) * 10).astype(dtype)
        copies = in1.copy(), in2.copy()
        for op in OPS.values():
            for mode in MODES:
                op(in1, in2, mode, backend=backend)
                op(in1, in2[0], mode, backend=backend)
        np.testing.assert_array_equal(in1, copies[0])
        np.testing.assert_array_equal(in2, copies[1])


BAD_INPUTS = [  # args, kwargs, exception, message fragment
    (([], [1.0]), {}, ValueError, "in1 is empty"),
    (([1.0], np.zeros((2, 0))), {}, ValueError, "in2 is empty"),
    ((np.float64(3.0), [1.0]), {}, ValueError, "0-d"),
    (([1.0, 2.0], np.float64(3.0)), {}, ValueError, "0-d"),
    (([1.0, 2.0], [1.0]), {"mode": "middle"}, ValueError, "unknown mode 'middle'"),
    (([1.0, 2.0], [1.0]), {"mode": 3}, TypeError, "mode must be a string"),
    (([1.0, 2.0], [1.0]), {"mode": ["full"]}, TypeError, "mode must be a string"),
    (([1.0, 2.0], [1.0]), {"axis": 1}, ValueError, "axis 1 is out of range"),
    ((np.ones((2, 5)), [1.0]), {"axis": -3}, ValueError, "axis -3 is out of range"),
    ((np.ones((2, 5)), np.ones((3, 2))), {}, ValueError, "do not broadcast"),
    ((np.ones(5), np.ones((2, 2))), {}, ValueError, "more than in1"),
    (([1.0, 2.0], [1.0]), {"backend": "fastest"}, ValueError, "known backends are 'auto', 'naive'"),
    ((np.ones(3, np.longdouble), [1.0]), {}, TypeError, "supported dtypes"),
    ((np.array([1, "a"], dtype=object), [1.0]), {}, TypeError, "object"),
    ((["a", "b"], [1.0]), {}, TypeError, "supported dtypes"),
    ((np.array([b"a"]), [1.0]), {}, TypeError, "supported dtypes"),
    ((np.array(["2020-01-01"], dtype="datetime64[D]"), [1.0]), {}, TypeError, "datetime64"),
]


@pytest.mark.parametrize("args, kwargs, exc, fragment", BAD_INPUTS, ids=lambda v: str(v)[:30])
@pytest.mark.parametrize("op", OPS)
def test_bad_input_raises_clear_error(op, args, kwargs, exc, fragment):
    with pytest.raises(exc, match=fragment):
        OPS[op](*args, **kwargs)


def test_unavailable_backend_raises_backend_unavailable():
    unavailable = [n for n, info in cb.backends().items() if not info["available"]]
    assert unavailable, "expected at least one unavailable backend on this machine (cuda without a GPU)"
    for name in unavailable:
        with pytest.raises(cb.BackendUnavailable, match=name) as info:
            cb.convolve([1.0, 2.0], [1.0], backend=name)
        assert isinstance(info.value, RuntimeError)


@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("op", OPS)
def test_non_finite_stays_in_its_windows(backend, op, value):
    if backend not in DIRECT_BACKENDS:
        pytest.skip(f"{backend} is not a direct backend: it spreads non-finite values by design")
    rng = np.random.default_rng(6)
    n, k, where = 200, 7, 90
    in1, in2 = rng.standard_normal(n), rng.standard_normal(k) + 3.0  # no zero taps
    in1[where] = value
    clean = in1.copy()
    clean[where] = 0.0
    for mode in MODES:
        y = OPS[op](in1, in2, mode, backend=backend)
        ref = scipy_slices(op, clean, in2, mode)
        touched = ~np.isfinite(scipy_slices(op, in1, in2, mode))
        assert touched.sum() == k  # scipy's own direct method: exactly the k windows over `where`
        np.testing.assert_array_equal(~np.isfinite(y), touched)
        assert_signal_close(y[~touched], ref[~touched], in1[np.isfinite(in1)], in2, np.float64, mode)


def test_auto_never_spreads_non_finite_values(auto_models):
    auto_models({})  # the rule: FFT for a long kernel
    rng = np.random.default_rng(7)
    in1, in2 = rng.standard_normal(20_000), rng.standard_normal(4_000)
    assert cb.fastest("convolve", in1, in2) == "fft"  # long kernel, finite: FFT is the choice
    in1[10_000] = np.nan
    assert cb.fastest("convolve", in1, in2) != "fft"
    y = cb.convolve(in1, in2, "valid")
    assert np.isfinite(y).sum() > 0 and (~np.isfinite(y)).sum() == 4_000


@pytest.mark.parametrize("dtype", FLOAT_DTYPES, ids=lambda d: np.dtype(d).name)
def test_auto_matches_scipy(dtype):
    rng = np.random.default_rng(8)
    for n, k in [(1000, 3), (1000, 900), (50, 20_000)]:
        in1, in2 = random_array(rng, n, dtype), random_array(rng, k, dtype)
        for op in OPS:
            for mode in MODES:
                y = OPS[op](in1, in2, mode)
                assert_signal_close(y, scipy_slices(op, in1, in2, mode), in1, in2, dtype, f"{op} {mode}")


@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize("a, b", [(np.float64(3.0), np.float64(2.0)), (np.int8(100), np.int8(3)), (True, False),
                                  (np.complex64(1 + 2j), np.complex64(3 - 1j)), (np.float16(1.5), np.float32(2.0))])
def test_two_0d_operands_give_their_product_as_scipy_does(op, a, b):
    """scipy returns ``in1 * in2`` (correlate: ``in1 * conj(in2)``), a NumPy scalar, whatever the mode."""
    for mode in ("full", "valid", "same"):
        got = getattr(cb, op)(np.asarray(a), np.asarray(b), mode)
        want = SCIPY_OPS[op](np.asarray(a), np.asarray(b), mode)
        assert type(got) is type(want) and got.dtype == want.dtype and got == want, (got, want)


@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_float16_is_computed_in_float32_and_returned_as_float16(op, mode, backend):
    skip_unless_takes(backend, np.float32)
    rng = np.random.default_rng(16)
    x, w = rng.standard_normal(200).astype(np.float16), rng.standard_normal(9).astype(np.float16)
    y = getattr(cb, op)(x, w, mode, backend=backend)
    want = SCIPY_OPS[op](x, w, mode, method="direct")
    assert y.dtype == want.dtype == np.float16 and y.shape == want.shape
    exact = SCIPY_OPS[op](x.astype(np.float64), w.astype(np.float64), mode, method="direct")
    # float16's own rounding of the float32 result: half an ulp of float16 at each value, plus float32's bound
    ulp = np.spacing(np.abs(exact).astype(np.float16)).astype(np.float64)
    assert np.all(np.abs(y.astype(np.float64) - exact) <= ulp / 2 + 1e-5 * np.abs(x).max() * np.abs(w).sum())


@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_out_receives_the_result_and_is_returned(op, mode, backend):
    skip_unless_takes(backend, np.float64)
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal((3, 40)), rng.standard_normal(5)
    want = getattr(cb, op)(x, w, mode, backend=backend)
    out = np.full(want.shape, np.nan)
    got = getattr(cb, op)(x, w, mode, backend=backend, out=out)
    assert got is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("make, exc, fragment", [
    (lambda x: np.empty(41), ValueError, "shape (42,)"),
    (lambda x: np.empty(42, np.float32), ValueError, "dtype float64"),
    (lambda x: np.empty(84)[::2], ValueError, "not C-contiguous"),
    (lambda x: _read_only(np.empty(42)), ValueError, "read-only"),
    (lambda x: [0.0] * 42, TypeError, "numpy.ndarray"),
])
def test_a_wrong_out_is_refused_and_left_untouched(make, exc, fragment):
    x, w = np.arange(40.0), np.ones(3)
    out = make(x)
    before = np.array(out, copy=True)
    with pytest.raises(exc, match=re.escape(fragment)):
        cb.convolve(x, w, out=out)
    np.testing.assert_array_equal(np.asarray(out), before)


def test_out_may_not_overlap_an_input():
    buffer = np.arange(60.0)
    with pytest.raises(ValueError, match="overlaps an input"):
        cb.convolve(buffer[:40], np.ones(3), out=buffer[18:60])


def _read_only(a):
    a.flags.writeable = False
    return a


@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("n, k", [(50, 7), (7, 50), (1000, 3), (1, 1)])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_repeated_short_calls_take_the_short_path_and_agree(op, mode, n, k, dtype):
    """The second call of a shape runs the remembered short path; it gives what the first gave."""
    from conv1dbench import _auto

    rng = np.random.default_rng(n * k)
    x, w = rng.standard_normal(n).astype(dtype), rng.standard_normal(k).astype(dtype)
    with cb.auto_settings(models={}, measured={}):  # the rule: direct (a backend with a short path)
        first = getattr(cb, op)(x, w, mode)
        assert len(_auto.shortcuts()) == 1 and None not in _auto.shortcuts().values()
        again = getattr(cb, op)(x, w, mode)
        strided = getattr(cb, op)(np.repeat(x, 2)[::2], w, mode)  # not contiguous: the full path
    want = SCIPY_OPS[op](x.astype(np.float64), w.astype(np.float64), mode, method="direct")
    for y in (first, again, strided):
        assert y.dtype == dtype and y.shape == want.shape and y.flags.c_contiguous
        assert_signal_close(y, want, x, w, dtype, f"{op} {mode} {n} {k}")
    np.testing.assert_array_equal(again, first)


def test_the_short_path_follows_auto_when_its_knowledge_changes():
    from conv1dbench import _auto

    x, w = np.ones(100_000), np.ones(5_000)
    x[7] = np.nan
    with cb.auto_settings(models={}, measured={}):   # the rule: FFT for this long kernel, so no shortcut
        y = cb.convolve(x, w)
        assert list(_auto.shortcuts().values()) == [None]  # remembered as having none, not asked again
        assert np.isnan(y).sum() == w.size and np.isfinite(cb.convolve(x, w)).sum() == y.size - w.size
    with cb.auto_settings(models={}, measured={}):
        assert not _auto.shortcuts()  # every scope starts afresh


def test_the_short_path_key_holds_the_shapes_so_other_ranks_miss_it():
    """A shortcut of 1-D shapes is no shortcut for the same lengths in 2-D or 0-d (the key holds the shapes)."""
    from conv1dbench import _auto

    x, w = np.arange(10.0), np.array([1.0, 2.0, 3.0])
    with cb.auto_settings(models={}, measured={}):
        flat = cb.convolve(x, w)
        assert len(_auto.shortcuts()) == 1
        rows = cb.convolve(x[None], w[None])
        assert rows.shape == (1, flat.size)
        np.testing.assert_array_equal(rows[0], flat)
        assert cb.convolve(np.array(2.0), np.array(3.0)) == 6.0
        np.testing.assert_array_equal(cb.convolve(x, w), flat)


def test_the_first_call_loads_the_short_paths_compiled_code():
    """The call that leaves a shortcut also loads its compiled code, so the second call runs warm (a timing
    that calibrates on its second call would otherwise take a cache load for the call's time)."""
    from conv1dbench import _auto
    from conv1dbench._backends import numba as numba_backend

    x, w = np.arange(30.0, dtype=np.float32), np.ones(4, dtype=np.float32)
    with cb.auto_settings(models={}, measured={}):
        cb.correlate(x, w, "same")
        (entry,) = _auto.shortcuts().values()
        assert entry[0] is numba_backend.shortcut_1d()[0]
        assert any(str(sig[0].dtype) == "float32" for sig in entry[0].signatures)  # Numba types
