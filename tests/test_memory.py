"""Memory you can reuse (issue 13, point 3): ``out=`` written straight into, and the backends' workspaces."""

import concurrent.futures
import threading

import numpy as np
import pytest
from conftest import skip_unless_takes

import conv1dbench as cb
from conv1dbench import _registry, _workspace

CPU = [name for name in cb.BACKEND_NAMES if not _registry.module(name).DEVICE] + ["auto"]


@pytest.fixture(params=CPU)
def cpu_backend(request):
    return request.param


def _operands(kind, rng):
    """``(in1, in2, kwargs, direct)``: a signal call, and whether its result is a plain reshape of the core output."""
    if kind == "plain":
        return rng.standard_normal((3, 40)), rng.standard_normal(5), {}, True
    if kind == "integers":   # computed in int64, returned as int32: a temporary
        return rng.integers(-9, 9, (3, 40)).astype(np.int32), rng.integers(-9, 9, 5).astype(np.int32), {}, False
    if kind == "int64":      # computed in int64: straight into out (fft: rounded into it)
        return rng.integers(-9, 9, (3, 40)), rng.integers(-9, 9, 5), {}, True
    if kind == "axis 0":     # the signal runs along another axis: a temporary
        return rng.standard_normal((40, 3)), rng.standard_normal(5), {"axis": 0}, False
    if kind == "complex":
        return (rng.standard_normal(40) + 1j * rng.standard_normal(40), rng.standard_normal(5) + 1j, {}, True)
    if kind == "float16":    # computed in float32: a temporary
        return rng.standard_normal(40).astype(np.float16), rng.standard_normal(5).astype(np.float16), {}, False
    if kind == "swapped":    # kernel longer than the signal: correlate reverses the core output ("valid")
        return rng.standard_normal(5), rng.standard_normal(40), {}, False
    raise AssertionError(kind)


KINDS = ["plain", "integers", "int64", "axis 0", "complex", "float16", "swapped"]


@pytest.mark.parametrize("op", ["convolve", "correlate"])
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
def test_out_is_returned_with_the_result_on_every_cpu_backend(op, kind, mode, cpu_backend):
    rng = np.random.default_rng(13)
    in1, in2, kwargs, _ = _operands(kind, rng)
    if cpu_backend != "auto":  # float16 is computed in float32
        skip_unless_takes(cpu_backend, *(np.float32 if d == np.float16 else d for d in (in1.dtype, in2.dtype)))
    want = getattr(cb, op)(in1, in2, mode, backend=cpu_backend, **kwargs)
    out = np.full(want.shape, 7, want.dtype)
    got = getattr(cb, op)(in1, in2, mode, backend=cpu_backend, out=out, **kwargs)
    assert got is out
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize("kind", KINDS)
def test_the_backend_writes_straight_into_out_where_the_result_is_the_core_output(kind, monkeypatch):
    """A plain reshape of the core output: the backend gets ``out`` itself (no temporary, no copy)."""
    module = _registry.get_backend("numba", np.dtype(np.float64))
    real, seen = module.forward, []

    def spy(*args, out=None, **options):
        seen.append(out)
        return real(*args, out=out, **options)

    monkeypatch.setattr(module, "forward", spy)
    in1, in2, kwargs, direct = _operands(kind, np.random.default_rng(3))
    mode = "valid" if kind == "swapped" else "full"
    want = cb.correlate(in1, in2, mode, backend="numba", **kwargs)
    out = np.empty_like(want)
    copies = []
    real_copyto = np.copyto
    monkeypatch.setattr(np, "copyto", lambda *a, **k: copies.append(a) or real_copyto(*a, **k))
    assert cb.correlate(in1, in2, mode, backend="numba", out=out, **kwargs) is out
    np.testing.assert_array_equal(out, want)
    if direct:
        assert seen[-1] is not None and np.shares_memory(seen[-1], out) and not copies
    else:
        assert seen[-1] is None and copies


def test_a_backend_without_out_goes_through_a_temporary(monkeypatch):
    module = _registry.get_backend("naive", np.dtype(np.float64))
    monkeypatch.setattr(module, "TAKES_OUT", ())
    x, w = np.arange(20.0), np.ones(3)
    out = np.empty(22)
    assert cb.convolve(x, w, backend="naive", out=out) is out
    np.testing.assert_array_equal(out, np.convolve(x, w))


def test_the_registry_checks_takes_out(monkeypatch):
    module = _registry.get_backend("naive", np.dtype(np.float64))
    monkeypatch.setattr(module, "TAKES_OUT", ("backward_input",))   # naive's backward_input takes no out=
    assert "TAKES_OUT names 'backward_input'" in _registry._breach(module)
    monkeypatch.setattr(module, "TAKES_OUT", ("forward",))
    assert _registry._breach(module) is None


def test_auto_past_a_declining_backend_leaves_the_right_values_in_out():
    """fft writes part of out, meets the NaN and declines; the direct backend after it overwrites all of out."""
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal(5000), rng.standard_normal(900)
    x[1234] = np.nan
    with cb.auto_settings(models={}, measured={}):      # the rule: fft first for a kernel this long
        assert cb.fastest("convolve", np.ones(5000), w) == "fft"
        out = np.zeros(5000 + 900 - 1)
        assert cb.convolve(x, w, out=out) is out
    want = cb.convolve(x, w, backend="numba")
    np.testing.assert_allclose(out, want, rtol=1e-9, atol=1e-9)
    assert np.isnan(out).sum() == 900


@pytest.mark.parametrize("unbatched", [False, True])
def test_layer_out_on_every_cpu_backend(cpu_backend, unbatched):
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((2, 4, 30)), rng.standard_normal((6, 2, 3)), rng.standard_normal(6)
    if unbatched:
        x = x[0]
    args = {"stride": 2, "padding": 1, "groups": 2}
    want = cb.conv1d(x, w, b, backend=cpu_backend, **args)
    out = np.full_like(want, np.nan)
    assert cb.conv1d(x, w, b, backend=cpu_backend, out=out, **args) is out
    np.testing.assert_allclose(out, want, rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(want.shape)
    grads = cb.conv1d_backward(g, x, w, backend=cpu_backend, **args)
    outs = tuple(np.full_like(a, np.nan) for a in grads)
    got = cb.conv1d_backward(g, x, w, backend=cpu_backend, out=outs, **args)
    assert all(a is o for a, o in zip(got, outs, strict=True))
    for a, o in zip(grads, outs, strict=True):
        np.testing.assert_allclose(o, a, rtol=1e-12, atol=1e-12)
    only_w = cb.conv1d_backward(g, x, w, has_bias=False, backend=cpu_backend, out=(None, outs[1], None), **args)
    assert only_w[1] is outs[1] and only_w[2] is None
    np.testing.assert_allclose(only_w[0], grads[0], rtol=1e-12, atol=1e-12)


def test_layer_out_with_complex_and_integer_weights():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 3, 50)) + 1j * rng.standard_normal((2, 3, 50))
    w = rng.standard_normal((4, 3, 5)).astype(np.complex128)
    want = cb.conv1d(x, w, [1, 2, 3, 4], padding="same")
    out = np.empty_like(want)
    assert cb.conv1d(x, w, [1, 2, 3, 4], padding="same", out=out) is out
    np.testing.assert_allclose(out, want, rtol=1e-12)


# --------------------------------------------------------------------------------------------
# Workspaces
# --------------------------------------------------------------------------------------------

@pytest.fixture
def fresh_pools():
    before = cb.configure_workspaces()
    cb.free_workspaces()
    yield
    cb.configure_workspaces(**before)


def test_a_scratch_buffer_is_reused_within_a_thread_and_aligned(fresh_pools):
    first = _workspace.scratch("test.a", (100, 10), np.float32)
    again = _workspace.scratch("test.a", (50, 10), np.float64)
    assert np.shares_memory(first, again) and first.ctypes.data == again.ctypes.data
    assert first.ctypes.data % _workspace.ALIGN_BYTES == 0 and again.flags.c_contiguous
    other = _workspace.scratch("test.b", (10,), np.float64)
    assert not np.shares_memory(first, other)
    grown = _workspace.scratch("test.a", (1000, 10), np.float64)   # too small: replaced by a larger one
    assert grown.shape == (1000, 10) and _workspace.held_bytes() >= grown.nbytes


def test_each_thread_has_its_own_pool(fresh_pools):
    mine = _workspace.scratch("test.a", (1000,), np.float64)
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        theirs, their_bytes = pool.submit(lambda: (_workspace.scratch("test.a", (1000,), np.float64),
                                                   _workspace.held_bytes())).result()
    assert not np.shares_memory(mine, theirs) and their_bytes >= 8000


def test_the_cap_is_respected_and_free_workspaces_empties_every_pool(fresh_pools):
    cb.configure_workspaces(limit_bytes=10_000)
    kept = _workspace.scratch("test.a", (500,), np.float64)            # 4000 bytes: kept
    held = _workspace.held_bytes()
    over = _workspace.scratch("test.b", (1000,), np.float64)           # would pass the cap: fresh, not kept
    assert _workspace.held_bytes() == held <= 10_000
    assert not np.shares_memory(over, _workspace.scratch("test.b", (1000,), np.float64))
    assert np.shares_memory(kept, _workspace.scratch("test.a", (500,), np.float64))
    done = threading.Event()
    other = threading.Thread(target=lambda: (_workspace.scratch("test.c", (100,), np.float64), done.wait(5)))
    other.start()
    try:
        assert cb.free_workspaces() >= held + 800
        assert _workspace.held_bytes() == 0
    finally:
        done.set()
        other.join()
    with pytest.raises(ValueError, match="limit_bytes"):
        cb.configure_workspaces(limit_bytes=-1)


def test_results_never_alias_a_workspace(fresh_pools):
    rng = np.random.default_rng(1)
    x1, x2 = rng.standard_normal((2, 8, 3000)), rng.standard_normal((2, 8, 3000))
    w = rng.standard_normal((8, 8, 7))
    first = cb.conv1d(x1, w, padding=3, backend="im2col")
    kept = first.copy()
    assert _workspace.held_bytes() > 0     # im2col used the pool
    second = cb.conv1d(x2, w, padding=3, backend="im2col")
    np.testing.assert_array_equal(first, kept)
    grads = cb.conv1d_backward(second, x1, w, padding=3, backend="im2col")
    grads_kept = [a.copy() for a in grads]
    cb.conv1d_backward(first, x2, w, padding=3, backend="im2col")
    for a, b in zip(grads, grads_kept, strict=True):
        np.testing.assert_array_equal(a, b)


def test_calls_from_two_threads_at_once_agree_with_serial_calls(fresh_pools):
    rng = np.random.default_rng(4)
    jobs = [(rng.standard_normal((4, 16, 2000)).astype(np.float32), rng.standard_normal((16, 16, 9)).astype(np.float32))
            for _ in range(8)]
    signals = [(rng.standard_normal(20_000), rng.standard_normal(301)) for _ in range(8)]

    def layer(job, backend):
        return cb.conv1d(*job, padding="same", backend=backend)

    def signal(job, backend):
        return cb.convolve(*job, "same", backend=backend)

    for backend in ("im2col", "fft", "numba", "auto"):
        serial = [layer(j, backend) for j in jobs] + [signal(j, backend) for j in signals]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            futures = ([pool.submit(layer, j, backend) for j in jobs]
                       + [pool.submit(signal, j, backend) for j in signals])
            threaded = [f.result() for f in futures]
        for a, b in zip(serial, threaded, strict=True):
            np.testing.assert_array_equal(a, b)
