"""Algebraic properties of convolution, checked with hypothesis on every backend."""

import numpy as np
from conftest import SIMULATED, skip_unless_takes
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from reference import TOL

import conv1dbench as cb

values = st.floats(-100, 100, allow_nan=False, allow_infinity=False)
signals = st.integers(1, 40).flatmap(lambda n: arrays(np.float64, n, elements=values))
complex_signals = st.integers(1, 30).flatmap(
    lambda n: st.tuples(arrays(np.float64, n, elements=values), arrays(np.float64, n, elements=values))
).map(lambda pair: pair[0] + 1j * pair[1])
modes = st.sampled_from(["full", "same", "valid"])
SETTINGS = settings(max_examples=8 if SIMULATED else 60, deadline=None)  # the simulator: seconds per call


def assert_close(a, b, scale):
    assert a.shape == b.shape
    np.testing.assert_allclose(a, b, rtol=0, atol=TOL[np.dtype(np.float64)] * scale + 1e-300)


@SETTINGS
@given(a=signals, b=signals)
def test_full_convolution_commutes(backend, a, b):
    scale = np.abs(a).max() * np.abs(b).sum() + np.abs(b).max() * np.abs(a).sum()
    assert_close(cb.convolve(a, b, backend=backend), cb.convolve(b, a, backend=backend), scale)


@SETTINGS
@given(a=signals, b=signals, alpha=values, beta=values, mode=modes)
def test_linear_in_the_signal(backend, a, b, alpha, beta, mode):
    c = np.roll(a, 1) - 0.5
    lhs = cb.convolve(alpha * a + beta * c, b, mode, backend=backend)
    rhs = alpha * cb.convolve(a, b, mode, backend=backend) + beta * cb.convolve(c, b, mode, backend=backend)
    scale = (abs(alpha) + abs(beta) + 1) * (np.abs(a).max() + 1) * np.abs(b).sum() * 4
    assert_close(lhs, rhs, scale)


@SETTINGS
@given(a=complex_signals, b=complex_signals, mode=modes)
def test_correlate_is_convolve_with_reversed_conjugate(backend, a, b, mode):
    skip_unless_takes(backend, np.complex128)
    if mode == "valid" and len(b) > len(a):
        # scipy swaps and returns the reversed, conjugated lags (docs/SPEC.md section 1)
        expected = np.conj(cb.correlate(b, a, mode, backend=backend))[::-1]
    else:
        expected = cb.convolve(a, np.conj(b[::-1]), mode, backend=backend)
    scale = np.abs(a).max() * np.abs(b).sum() * 2
    assert_close(cb.correlate(a, b, mode, backend=backend), expected, scale)


@SETTINGS
@given(a=signals, b=signals, mode=modes)
def test_output_length_follows_the_mode(backend, a, b, mode):
    n, k = len(a), len(b)
    expected = {"full": n + k - 1, "same": n, "valid": max(n, k) - min(n, k) + 1}[mode]
    assert cb.convolve(a, b, mode, backend=backend).shape == (expected,)
    assert cb.correlate(a, b, mode, backend=backend).shape == (expected,)
