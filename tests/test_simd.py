"""The numba backend's SIMD layer (conv1dbench/_backends/_simd.py): each operation against NumPy."""

from fractions import Fraction

import numba
import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from conv1dbench._backends import _simd
from conv1dbench._backends._simd import (
    Count,
    Width,
    prefetch,
    vadd,
    vbroadcast,
    vdeal,
    vfma,
    vload,
    vload_partial,
    vstore,
    vstore_partial,
    vstores_apart,
    vsum,
    vzero,
)

DTYPES = [np.float32, np.float64]


def _widths(dtype) -> list[int]:
    """This machine's width for ``dtype`` and the portable 128-bit one (every CPU runs both)."""
    return sorted({_simd.target_isa().lanes(dtype), _simd.PORTABLE.lanes(dtype)})


CASES = [(dtype, lanes) for dtype in DTYPES for lanes in _widths(dtype)]
IDS = [f"{np.dtype(d).name}-{n}lanes" for d, n in CASES]


@njit
def _moves(a, out, i, width):
    """out[i:i+L] = a[i:i+L]; out[0:L] = a[1]; out[L:2L] = 0 (a load, a broadcast and a zero vector stored)."""
    vstore(out, i, vload(a, i, width))
    vstore(out, 0, vbroadcast(a[1], width))
    vstore(out, width.lanes, vzero(a, width))


@njit
def _partial(a, out, i, count, width):
    v = vload_partial(a, i, count, width)
    vstore(out, 0, v)                       # every lane: the ones past count must be zero
    vstore_partial(out, width.lanes + i, v, count)


@njit
def _arithmetic(a, b, c, out, width):
    x, y, z = vload(a, 0, width), vload(b, 0, width), vload(c, 0, width)
    vstore(out, 0, vfma(x, y, z))
    vstore(out, width.lanes, vadd(x, y))
    return vsum(x)


@njit
def _dealt(a, out, i, at, apart, width, phases):
    prefetch(a, i)  # a hint only: nothing to see, nothing may change
    vstores_apart(out, at, apart, vdeal(a, i, width, phases))


@pytest.mark.parametrize("phases", [1, 2, 3, 4])
@pytest.mark.parametrize("dtype, lanes", CASES, ids=IDS)
def test_dealing_gives_each_phase_of_a_strided_run_its_own_vector(dtype, lanes, phases):
    a = np.arange(1, (phases + 1) * lanes + 3, dtype=dtype)
    for i in (0, 1, 3):  # unaligned starts too
        apart = lanes + 2
        out = np.full(phases * apart + 1, -7, dtype=dtype)
        _dealt(a, out, i, 1, apart, Width(lanes), Count(phases))
        run = a[i:i + phases * lanes]
        for p in range(phases):  # vector p holds a[i + p], a[i + p + phases], ...: the stride's phase p
            np.testing.assert_array_equal(out[1 + p * apart:1 + p * apart + lanes], run[p::phases])
        stored = np.zeros(out.size, bool)
        for p in range(phases):
            stored[1 + p * apart:1 + p * apart + lanes] = True
        assert (out[~stored] == -7).all()


@pytest.mark.parametrize("dtype, lanes", CASES, ids=IDS)
def test_loads_stores_broadcasts_and_zeros(dtype, lanes):
    a = np.arange(1, 4 * lanes + 4, dtype=dtype)
    for i in (lanes, lanes + 1, 2 * lanes + 3):  # unaligned starts too
        out = np.full(4 * lanes + 4, -7, dtype=dtype)
        _moves(a, out, i, Width(lanes))
        np.testing.assert_array_equal(out[:lanes], np.full(lanes, a[1]))
        np.testing.assert_array_equal(out[lanes:2 * lanes], np.zeros(lanes))
        np.testing.assert_array_equal(out[max(i, 2 * lanes):i + lanes], a[max(i, 2 * lanes):i + lanes])


@pytest.mark.parametrize("dtype, lanes", CASES, ids=IDS)
def test_partial_loads_and_stores_touch_count_lanes_only(dtype, lanes):
    a = np.arange(1, 3 * lanes + 1, dtype=dtype)
    for count in range(lanes + 1):
        for i in (0, 1, lanes):
            out = np.full(3 * lanes, -7, dtype=dtype)
            _partial(a, out, i, count, Width(lanes))
            loaded = np.where(np.arange(lanes) < count, a[i:i + lanes], 0)
            np.testing.assert_array_equal(out[:lanes], loaded)  # the lanes past count load as zero
            np.testing.assert_array_equal(out[lanes + i:lanes + i + count], a[i:i + count])
            untouched = np.r_[out[lanes:lanes + i], out[lanes + i + count:]]
            assert (untouched == -7).all(), (count, i)


def _fused_case(dtype):
    """``a * b + c`` whose fused result differs from the rounded product plus ``c``: a = b = 1 + 2**-h,
    c = -(1 + 2**(1-h)); the product 1 + 2**(1-h) + 2**-2h loses 2**-2h when rounded, the fma keeps it."""
    h = 12 if dtype == np.float32 else 27
    one = dtype(1)
    a = one + dtype(2.0 ** -h)
    c = -(one + dtype(2.0 ** (1 - h)))
    return a, a, c, dtype(2.0 ** (-2 * h))


@pytest.mark.parametrize("dtype, lanes", CASES, ids=IDS)
def test_fma_is_fused_add_is_exact_and_the_sum_is_by_halving(dtype, lanes):
    rng = np.random.default_rng(lanes)
    a, b, c = (rng.standard_normal(lanes).astype(dtype) for _ in range(3))
    fa, fb, fc, fused = _fused_case(dtype)
    a[0], b[0], c[0] = fa, fb, fc
    a[1] = np.nan
    out = np.zeros(2 * lanes, dtype=dtype)
    total = _arithmetic(a, b, c, out, Width(lanes))
    assert out[0] == fused and (fa * fb) + fc == 0  # fused: one rounding; NumPy's two roundings lose it
    exact = [float(Fraction(float(x)) * Fraction(float(y)) + Fraction(float(z)))
             for x, y, z in zip(a[2:], b[2:], c[2:], strict=True)]
    np.testing.assert_allclose(out[2:lanes], exact, rtol=np.finfo(dtype).eps)  # one rounding
    assert np.isnan(out[1]) and np.isnan(out[lanes + 1])  # NaN stays in its lane
    assert not np.isnan(np.r_[out[:1], out[2:lanes + 1], out[lanes + 2:]]).any()
    np.testing.assert_array_equal(out[lanes:], a + b)
    assert np.isnan(total)
    a[1] = 0.5
    total = _arithmetic(a, b, c, out, Width(lanes))
    halving = a.copy()
    while len(halving) > 1:  # the upper half onto the lower, down to one lane
        halving = halving[:len(halving) // 2] + halving[len(halving) // 2:]
    assert total == halving[0] and type(total) in (float, dtype)


def test_the_width_is_part_of_each_signature():
    a, out = np.arange(64, dtype=np.float32), np.zeros(64 + 4, dtype=np.float32)
    _moves(a, out, 16, Width(4))
    _moves(a, out, 16, Width(8))
    widths = {sig[-1] for sig in _moves.signatures}
    assert {str(w) for w in widths} >= {"Width(4)", "Width(8)"}


def test_the_target_isa_follows_the_cpu_numba_compiles_for(monkeypatch):
    assert _simd.isa_of({"avx512f", "avx2", "fma"}) == _simd.AVX512
    assert _simd.isa_of({"avx2", "fma"}) == _simd.AVX2
    assert _simd.isa_of({"sse2", "avx"}) == _simd.PORTABLE and _simd.isa_of({"neon"}) == _simd.PORTABLE
    assert (_simd.AVX512.lanes(np.float32), _simd.AVX512.lanes(np.float64), _simd.AVX2.lanes(np.float32)) == (16, 8, 8)
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "+avx2,+fma,-avx512f")
    assert _simd.target_isa() == _simd.AVX2
    monkeypatch.setattr(numba.config, "CPU_FEATURES", "")
    monkeypatch.setattr(numba.config, "CPU_NAME", "skylake-avx512")
    with pytest.raises(ValueError, match="NUMBA_CPU_FEATURES"):
        _simd.target_isa()


def test_wrong_operands_are_typing_errors_that_say_what_was_expected():
    with pytest.raises(ValueError, match="2, 4, 8, 16 or 32 lanes"):
        Width(3)

    @njit
    def two_d(a, width):
        return vload(a, 0, width)

    with pytest.raises(TypingError, match="1-D C-contiguous float32 or float64"):
        two_d(np.zeros((2, 8)), Width(4))

    @njit
    def mixed(a, b, width):
        return vadd(vload(a, 0, width), vload(b, 0, width))

    with pytest.raises(TypingError, match="one dtype and width"):
        mixed(np.zeros(8, np.float32), np.zeros(8), Width(4))


def test_the_fma_peak_counts_every_lane_on_every_thread():
    """The FMA probe (what "% of peak" divides by): its chains keep their value (the row changes sign each
    round), and its FLOPs count every lane of every chain on every thread, float32 with twice the lanes."""
    from conv1dbench.harness import fma

    start = np.ones(4 * 8, np.float64)
    sums = np.empty(2)
    fma._fma_threads(start, 3, _simd.Width(8), _simd.Count(4), sums)
    assert sums.tolist() == [-32.0, -32.0]   # three rounds of row = -2 row + row: -1 in every lane
    isa = _simd.target_isa()
    (start, rounds, width, count, sums), flops = fma._probe("float64", 3)
    assert (width.lanes, count.n, sums.size, rounds) == (isa.lanes("float64"), isa.registers - 4, 3, fma.FMA_ROUNDS)
    assert flops == 2 * rounds * count.n * width.lanes * 3 == fma._probe("float32", 3)[1] / 2
    assert 0 < fma.fma_gflops("float64", 0.01, 1) < np.inf


def test_the_fma_peak_measures_again_when_a_sample_was_disturbed(monkeypatch):
    """float32 at half its lanes' share of float64, or two threads at one thread's rate: a core was held
    by something else, so the peak is measured again, keeping each dtype's best; what stays wrong is said."""
    from conv1dbench.harness import fma

    monkeypatch.setattr(fma.numba, "get_num_threads", lambda: 2)
    ratio = fma.target_isa().lanes("float32") / fma.target_isa().lanes("float64")
    calls = []

    def scripted(dtype, min_time_s, threads=None):
        calls.append((dtype, threads))
        disturbed = len(calls) == 1   # the first float32 sample ran beside a spinning thread
        rate = {"float64": 100.0, "float32": 100.0 * ratio}[dtype] / (2 if disturbed else 1)
        return rate / 2 if threads == 1 else rate

    peak, check = fma.checked_fma_peak(0.01, rate=scripted)
    assert peak == {"float32": 100.0 * ratio, "float64": 100.0} and check == "consistent (try 2)"
    assert len(calls) == 6

    peak, check = fma.checked_fma_peak(0.01, tries=2, rate=lambda d, t, n=None: {"float32": 2.0, "float64": 1.0}[d])
    assert "2 threads ran at 1.00x one thread" in check and "cores shared" in check   # hyper-threads, say
