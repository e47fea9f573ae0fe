"""conv1d / conv1d_backward on every backend: against scipy-built references, finite differences,
and the explicit matrix of the layer."""

import math

import numpy as np
import pytest
from conftest import SIMULATED, skip_unless_takes
from reference import TOL, layer_scale, random_array, reference_conv1d

import conv1dbench as cb
from conv1dbench import _params, _threads
from conv1dbench._registry import get_backend

LAYER_DTYPES = [np.float32, np.float64, np.complex128]


def random_config(rng, batched_only=False):
    """A random layer: sizes, stride, dilation, groups, one of the padding forms, bias, 2-D or 3-D x."""
    while True:
        groups = int(rng.integers(1, 4))
        cfg = dict(batch=int(rng.integers(1, 4)), c_per_group=int(rng.integers(1, 4)),
                   out_per_group=int(rng.integers(1, 4)), groups=groups, length=int(rng.integers(1, 40)),
                   taps=int(rng.integers(1, 7)), stride=int(rng.integers(1, 4)),
                   dilation=int(rng.integers(1, 4)), bias=bool(rng.integers(0, 2)),
                   unbatched=not batched_only and bool(rng.integers(0, 4) == 0))
        form = ["int", "pair", "valid", "same", "full"][int(rng.integers(0, 5))]
        span = cfg["dilation"] * (cfg["taps"] - 1)
        if form == "same" and cfg["stride"] != 1:
            form = "valid"
        cfg["padding"] = {"int": int(rng.integers(0, 4)), "pair": (int(rng.integers(0, 4)), int(rng.integers(0, 4))),
                          "valid": "valid", "same": "same", "full": "full"}[form]
        cfg["pad"] = {"int": (cfg["padding"],) * 2 if form == "int" else None, "pair": cfg["padding"],
                      "valid": (0, 0), "same": (span // 2, span - span // 2), "full": (span, span)}[form]
        if cfg["unbatched"]:
            cfg["batch"] = 1
        if sum(cfg["pad"]) + cfg["length"] - span >= 1:
            return cfg


def make_layer(rng, cfg, dtype):
    c_in = cfg["c_per_group"] * cfg["groups"]
    c_out = cfg["out_per_group"] * cfg["groups"]
    x = random_array(rng, (cfg["batch"], c_in, cfg["length"]), dtype)
    w = random_array(rng, (c_out, cfg["c_per_group"], cfg["taps"]), dtype)
    bias = random_array(rng, c_out, dtype) if cfg["bias"] else None
    return x, w, bias


def layer_args(cfg):
    return dict(stride=cfg["stride"], padding=cfg["padding"], dilation=cfg["dilation"], groups=cfg["groups"])


CONFIGS = list(range(12 if SIMULATED else 40))  # the simulator runs every GPU thread in Python


@pytest.mark.parametrize("dtype", LAYER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_conv1d_matches_reference(backend, dtype):
    skip_unless_takes(backend, dtype)
    rng = np.random.default_rng(10)
    for i in CONFIGS:
        cfg = random_config(rng)
        x, w, bias = make_layer(rng, cfg, dtype)
        ref = reference_conv1d(x, w, bias, cfg["stride"], cfg["pad"], cfg["dilation"], cfg["groups"])
        xin = x[0] if cfg["unbatched"] else x
        y = cb.conv1d(xin, w, bias, backend=backend, **layer_args(cfg))
        assert y.dtype == np.dtype(dtype)
        y = y[None] if cfg["unbatched"] else y
        assert y.shape == ref.shape, (i, cfg)
        err = np.abs(y - ref).max()
        assert err <= TOL[np.dtype(dtype)] * layer_scale(x, w, bias), (i, cfg, err)


def explicit_gradients(cfg, x, w, g):
    """grad_x = M^H g and grad_w as the sum over the copies of each weight in M (docs/SPEC.md section 3)."""
    c_out, c_per_group, taps = w.shape
    args = layer_args(cfg)
    grad_x = np.zeros_like(x)
    grad_w = np.zeros_like(w)
    for b in range(x.shape[0]):
        matrix = cb.conv1d_matrix(w, x.shape[2], **args)
        grad_x[b] = (matrix.conj().T @ g[b].reshape(-1)).reshape(x.shape[1:])
        per_copy = np.outer(g[b].reshape(-1), x[b].reshape(-1).conj())  # d loss / d M[i, j]
        for o in range(c_out):
            for c in range(c_per_group):
                for k in range(taps):
                    one_hot = np.zeros(w.shape)
                    one_hot[o, c, k] = 1.0
                    copies = cb.conv1d_matrix(one_hot, x.shape[2], **args)  # where w[o, c, k] sits in M
                    grad_w[o, c, k] += per_copy[copies == 1].sum()
    return grad_x, grad_w


@pytest.mark.parametrize("dtype", LAYER_DTYPES, ids=lambda d: np.dtype(d).name)
def test_backward_matches_the_explicit_matrix(backend, dtype):
    skip_unless_takes(backend, dtype)
    rng = np.random.default_rng(11)
    for i in range(4 if SIMULATED else 12):
        cfg = random_config(rng)
        x, w, bias = make_layer(rng, cfg, dtype)
        y = reference_conv1d(x, w, None, cfg["stride"], cfg["pad"], cfg["dilation"], cfg["groups"])
        g = random_array(rng, y.shape, dtype)
        if cfg["unbatched"]:
            gx, gw, gb = cb.conv1d_backward(g[0], x[0], w, has_bias=cfg["bias"], backend=backend, **layer_args(cfg))
            gx = gx[None]
        else:
            gx, gw, gb = cb.conv1d_backward(g, x, w, has_bias=cfg["bias"], backend=backend, **layer_args(cfg))
        ref_x, ref_w = explicit_gradients(cfg, *(a.astype(np.complex128) for a in (x, w, g)))
        tol = TOL[np.dtype(dtype)]
        g_sum = np.abs(g).sum(axis=(0, 2)).max()
        assert gx.shape == x.shape and gw.shape == w.shape and gx.dtype == np.dtype(dtype)
        assert np.abs(gx - ref_x).max() <= tol * np.abs(g).max() * np.abs(w).sum(axis=(0, 2)).max(), (i, cfg)
        assert np.abs(gw - ref_w).max() <= tol * np.abs(x).max() * g_sum, (i, cfg)
        if cfg["bias"]:
            assert np.abs(gb - g.sum(axis=(0, 2))).max() <= tol * g_sum
        else:
            assert gb is None


def test_backward_matches_finite_differences(backend):
    """The loss sum(g * conv1d(x, w)) is linear in x and in w: central differences are exact."""
    rng = np.random.default_rng(12)
    for _ in range(4):
        cfg = random_config(rng, batched_only=True)
        x, w, _ = make_layer(rng, cfg, np.float64)
        args = layer_args(cfg)
        g = random_array(rng, cb.conv1d(x, w, backend="naive", **args).shape, np.float64)

        def loss(x_, w_, g=g, cfg=cfg):
            return np.sum(g * reference_conv1d(x_, w_, None, cfg["stride"], cfg["pad"], cfg["dilation"], cfg["groups"]))

        gx, gw, _ = cb.conv1d_backward(g, x, w, backend=backend, **args)
        for array, grad in ((x, gx), (w, gw)):
            for index in np.ndindex(array.shape):
                plus, minus = array.copy(), array.copy()
                plus[index] += 1.0
                minus[index] -= 1.0
                if array is x:
                    numeric = (loss(plus, w) - loss(minus, w)) / 2
                else:
                    numeric = (loss(x, plus) - loss(x, minus)) / 2
                assert abs(grad[index] - numeric) <= 1e-9 * (1 + abs(numeric)), (cfg, index)


@pytest.mark.parametrize("n, k", [(1, 1), (4, 3), (3, 4), (5, 5), (6, 2), (2, 7)])
@pytest.mark.parametrize("mode", ["full", "same", "valid"])
@pytest.mark.parametrize("kind", ["convolve", "correlate"])
def test_conv_matrix_reproduces_the_signal_api(n, k, mode, kind):
    rng = np.random.default_rng(n * 10 + k)
    x, h = random_array(rng, n, np.complex128), random_array(rng, k, np.complex128)
    matrix = cb.conv_matrix(h, n, mode, kind=kind)
    expected = getattr(cb, kind)(x, h, mode, backend="naive")
    np.testing.assert_allclose(matrix @ x, expected, rtol=0, atol=1e-12 * np.abs(h).sum())


def test_conv1d_matrix_reproduces_the_layer(backend):
    rng = np.random.default_rng(13)
    for _ in range(15):
        cfg = random_config(rng)
        x, w, _ = make_layer(rng, cfg, np.float64)
        matrix = cb.conv1d_matrix(w, cfg["length"], **layer_args(cfg))
        y = cb.conv1d(x, w, backend=backend, **layer_args(cfg))
        for b in range(x.shape[0]):
            np.testing.assert_allclose(matrix @ x[b].reshape(-1), y[b].reshape(-1), rtol=0,
                                       atol=1e-12 * layer_scale(x, w))


def test_conv1d_matrix_shows_tied_and_zero_weights():
    w = np.array([[[1.0, 2.0]]])
    np.testing.assert_array_equal(cb.conv1d_matrix(w, 4), [[1, 2, 0, 0], [0, 1, 2, 0], [0, 0, 1, 2]])
    # grouped: output channel 1 never sees input channel 0
    w2 = np.ones((2, 1, 1))
    np.testing.assert_array_equal(cb.conv1d_matrix(w2, 2, groups=2), np.eye(4))


BAD_LAYER_ARGS = [  # x shape, w shape, kwargs, message fragment
    ((2, 3, 10), (4, 2, 3), {}, "input channels per group"),
    ((2, 4, 10), (4, 2, 3), {"groups": 3}, "groups=3 must divide"),
    ((2, 3, 10), (4, 3, 3), {"groups": 0}, "groups must be at least 1"),
    ((2, 3, 4), (4, 3, 5), {}, "no output positions"),
    ((2, 3, 10), (4, 3, 3), {"stride": 0}, "stride must be at least 1"),
    ((2, 3, 10), (4, 3, 3), {"dilation": 0}, "dilation must be at least 1"),
    ((2, 3, 10), (4, 3, 3), {"padding": "same", "stride": 2}, "needs stride 1"),
    ((2, 3, 10), (4, 3, 3), {"padding": "middle"}, "unknown padding 'middle'"),
    ((2, 3, 10), (4, 3, 3), {"padding": -1}, "must not be negative"),
    ((2, 3, 10), (4, 3, 3), {"padding": (1, 2, 3)}, "padding must be an int, a 1-tuple"),
    ((2, 3, 10), (4, 3, 3), {"stride": (1, 2)}, "stride must be an int or a 1-tuple, got 2 values"),
    ((2, 3, 10), (4, 3, 3), {"dilation": ()}, "dilation must be an int or a 1-tuple, got 0 values"),
    ((2, 3, 10), (4, 3, 3), {"stride": (0,)}, "stride must be at least 1"),
    ((10,), (4, 3, 3), {}, "got 1 dimensions"),
    ((1, 2, 3, 10), (4, 3, 3), {}, "got 4 dimensions"),
    ((2, 3, 10), (4, 3), {}, "weight must be"),
]


@pytest.mark.parametrize("x_shape, w_shape, kwargs, fragment", BAD_LAYER_ARGS, ids=lambda v: str(v)[:25])
def test_bad_layer_arguments(x_shape, w_shape, kwargs, fragment):
    with pytest.raises(ValueError, match=fragment):
        cb.conv1d(np.ones(x_shape), np.ones(w_shape), **kwargs)


def test_stride_padding_and_dilation_take_what_torchs_conv1d_takes(backend):
    """torch's conv1d takes 1-tuples for stride, padding and dilation; (left, right) padding is ours."""
    rng = np.random.default_rng(15)
    x, w = rng.standard_normal((2, 3, 20)), rng.standard_normal((4, 3, 3))
    plain = cb.conv1d(x, w, stride=2, padding=1, dilation=2, backend=backend)
    np.testing.assert_array_equal(cb.conv1d(x, w, stride=(2,), padding=(1,), dilation=(2,), backend=backend), plain)
    np.testing.assert_array_equal(cb.conv1d(x, w, stride=[2], padding=[1, 1], dilation=[2], backend=backend), plain)
    g = rng.standard_normal(plain.shape)
    for a, b in zip(cb.conv1d_backward(g, x, w, stride=(2,), padding=(1,), dilation=(2,), backend=backend),
                    cb.conv1d_backward(g, x, w, stride=2, padding=1, dilation=2, backend=backend), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(cb.conv1d_matrix(w, 20, stride=(2,), padding=(1,)),
                                  cb.conv1d_matrix(w, 20, stride=2, padding=1))


@pytest.mark.parametrize("argument", ["stride", "padding", "dilation", "groups"])
def test_a_value_that_is_no_int_is_a_type_error_that_names_its_argument(argument):
    x, w = np.ones((2, 3, 10)), np.ones((3, 1, 3))
    for value in (1.5, "2" if argument != "padding" else None, (1.0,)):
        if argument == "groups" and isinstance(value, tuple):
            continue  # groups takes no tuple: a ValueError-free TypeError below covers it
        with pytest.raises(TypeError, match=f"{argument} must be an int"):
            cb.conv1d(x, w, **{argument: value, **({} if argument == "groups" else {"groups": 3})})
    if argument == "groups":
        with pytest.raises(TypeError, match="groups must be an int"):
            cb.conv1d(x, w, groups=(3,))


def test_a_bias_the_layer_cannot_hold_is_a_type_error_as_in_torch():
    x, w = np.ones((2, 3, 10)), np.ones((4, 3, 3))
    with pytest.raises(TypeError, match="bias has dtype complex128.*cannot hold"):
        cb.conv1d(x, w, np.ones(4) + 1j)
    with pytest.raises(TypeError, match="bias has dtype complex64"):
        cb.conv1d(x.astype(np.float32), w.astype(np.float32), np.ones(4, np.complex64))
    y = cb.conv1d(x.astype(np.float32), w.astype(np.float32), np.full(4, 0.5))   # float64 onto float32: rounded
    assert y.dtype == np.float32 and y[0, 0, 0] == 9.5
    assert cb.conv1d(x + 0j, w, np.ones(4)).dtype == np.complex128                 # real onto complex: exact


def test_conv1d_backwards_bias_switch_is_has_bias_and_the_old_name_warns():
    x, w, g = np.ones((2, 3, 10)), np.ones((4, 3, 3)), np.ones((2, 4, 8))
    assert cb.conv1d_backward(g, x, w, has_bias=False)[2] is None
    with pytest.warns(DeprecationWarning, match="has_bias"):
        old = cb.conv1d_backward(g, x, w, bias=False)
    assert old[2] is None
    with pytest.warns(DeprecationWarning):
        np.testing.assert_array_equal(cb.conv1d_backward(g, x, w, bias=True)[2], np.full(4, 16.0))
    with pytest.raises(TypeError, match="has_bias must be True or False"):
        cb.conv1d_backward(g, x, w, has_bias=np.ones(4))


def test_bad_bias_grad_output_and_dtype():
    x, w = np.ones((2, 3, 10)), np.ones((4, 3, 3))
    with pytest.raises(ValueError, match=r"bias must have shape \(C_out,\) = \(4,\)"):
        cb.conv1d(x, w, np.ones(3))
    with pytest.raises(ValueError, match=r"grad_output must have shape \(2, 4, 8\)"):
        cb.conv1d_backward(np.ones((2, 4, 9)), x, w)
    with pytest.raises(TypeError, match="float16"):
        cb.conv1d(x.astype(np.float16), w)


def test_layer_inputs_are_not_modified(backend):
    rng = np.random.default_rng(14)
    x, w, b = rng.standard_normal((2, 4, 30)), rng.standard_normal((6, 2, 5)), rng.standard_normal(6)
    g = rng.standard_normal((2, 6, 15))
    copies = [a.copy() for a in (x, w, b, g)]
    cb.conv1d(x, w, b, stride=2, padding=2, groups=2, backend=backend)
    cb.conv1d_backward(g, x, w, stride=2, padding=2, groups=2, backend=backend)
    for a, c in zip((x, w, b, g), copies, strict=True):
        np.testing.assert_array_equal(a, c)


def test_fastest_knows_the_layer_ops(monkeypatch, auto_models):
    auto_models({})  # the rule's GEMM-sized layers
    x, w = np.ones((8, 128, 256)), np.ones((128, 128, 3))
    assert cb.fastest("conv1d", x, w, padding="same") == "im2col"          # a GEMM-sized layer
    assert cb.fastest("conv1d", x[:, :4], w[:, :4], padding="same") == "numba"  # a thin one
    name, details = cb.fastest(cb.conv1d_backward, np.ones((8, 128, 256)), x, w, padding="same", explain=True)
    assert name == "im2col" and "GEMM" in details["rule"]
    ran = []
    real = cb._layer.get_backend
    monkeypatch.setattr("conv1dbench._layer.get_backend", lambda n, dtype: ran.append(n) or real(n, dtype))
    cb.conv1d(x[:1, :4], w[:, :4], padding="same")
    cb.conv1d_backward(np.ones((1, 128, 256)), x[:1], w, padding="same")
    assert ran == ["numba", "im2col"]


def test_matches_torch_when_installed():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(15)
    for _ in range(10):
        cfg = random_config(rng, batched_only=True)
        x, w, bias = make_layer(rng, cfg, np.float64)
        args = layer_args(cfg)
        tx = torch.tensor(x, requires_grad=True)
        tw = torch.tensor(w, requires_grad=True)
        tb = torch.tensor(bias, requires_grad=True) if bias is not None else None
        padding = args.pop("padding")
        pad = cfg["pad"]
        ty = torch.nn.functional.conv1d(torch.nn.functional.pad(tx, pad), tw, tb, padding=0, **args)
        g = rng.standard_normal(ty.shape)
        ty.backward(torch.tensor(g))
        y = cb.conv1d(x, w, bias, padding=padding, **args)
        gx, gw, gb = cb.conv1d_backward(g, x, w, padding=padding, has_bias=bias is not None, **args)
        np.testing.assert_allclose(y, ty.detach().numpy(), atol=1e-10)
        np.testing.assert_allclose(gx, tx.grad.numpy(), atol=1e-10)
        np.testing.assert_allclose(gw, tw.grad.numpy(), atol=1e-10)
        if bias is not None:
            np.testing.assert_allclose(gb, tb.grad.numpy(), atol=1e-10)


FFT_BACKENDS = ("fft", "fftw", "ducc")


@pytest.mark.parametrize("spread_min_work", [0, math.inf], ids=["spread", "in-turn"])
@pytest.mark.parametrize("chunk_bytes", [1, 3 << 12, 1 << 20], ids=["window-per-step", "partial-steps", "one-step"])
@pytest.mark.parametrize("dtype", [np.float64, np.complex128, np.int64], ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("name", FFT_BACKENDS)
def test_fft_overlap_save_on_short_windows(monkeypatch, request, name, dtype, chunk_bytes, spread_min_work):
    """The FFT backends' overlap-save on the shortest windows they may use (one output each, before the
    engine rounds the size up): within one step, from step to step with one window per step, and
    with steps whose transforms have more rows than the step fills (rounded up to a power of two);
    the steps taken in turn on this thread, and spread over helper threads (cut to as many steps as
    cores where there are fewer)."""
    from conv1dbench._backends import _fourier

    backend = get_backend(name, np.dtype(np.float64)) if cb.backends()[name]["available"] else None
    if backend is None:
        pytest.skip(cb.backends()[name]["reason"])
    monkeypatch.setattr(_fourier, "block_length", lambda engine, length, span, real, *_: min(length, 1 + span % 3))
    monkeypatch.setattr(_threads, "cores", lambda: 2)
    _fourier._steps.cache_clear()
    request.addfinalizer(_fourier._steps.cache_clear)
    with _params.overriding(fourier__chunk_bytes=chunk_bytes, fourier__spread_min_work=spread_min_work):
        rng = np.random.default_rng(14)
        for i in range(40):
            cfg = random_config(rng, batched_only=True)
            x, w, _ = make_layer(rng, cfg, np.float64 if dtype == np.int64 else dtype)
            if dtype == np.int64:
                x, w = np.rint(4 * x).astype(np.int64), np.rint(4 * w).astype(np.int64)
            ref = reference_conv1d(x, w, None, cfg["stride"], cfg["pad"], cfg["dilation"], cfg["groups"])
            y = backend.forward(x, w, *cfg["pad"], cfg["stride"], cfg["dilation"], cfg["groups"])
            assert y.dtype == np.dtype(dtype) and y.shape == ref.shape, (i, cfg)
            if dtype == np.int64:
                np.testing.assert_array_equal(y, np.rint(ref).astype(np.int64), err_msg=str((i, cfg)))
            else:
                assert np.abs(y - ref).max() <= TOL[np.dtype(dtype)] * layer_scale(x, w), (i, cfg)


def test_fft_block_length_model():
    """Where the FFT block model must land (the measured optimum in each case, with pocketfft)."""
    from conv1dbench._backends._fourier import block_length
    from conv1dbench._backends.fft import ENGINE

    assert block_length(ENGINE, 1000, 1023, True) == 1000                      # kernel longer than the signal
    assert block_length(ENGINE, 10_000, 255, True, rows=128, products=64) == 10_000  # 64 signals, one kernel
    assert 4 * 2047 <= block_length(ENGINE, 3_000_000, 2047, True) <= 8 * 2047  # a few kernel spans, not more
    assert block_length(ENGINE, 3_000_000, 2, True) >= 64                       # not transforms of ten points


def test_out_receives_the_layer_results(backend):
    skip_unless_takes(backend, np.float64)
    rng = np.random.default_rng(8)
    x, w, b = rng.standard_normal((2, 4, 30)), rng.standard_normal((6, 2, 3)), rng.standard_normal(6)
    args = {"stride": 2, "padding": 1, "groups": 2}
    y = cb.conv1d(x, w, b, backend=backend, **args)
    out = np.empty_like(y)
    assert cb.conv1d(x, w, b, backend=backend, out=out, **args) is out
    np.testing.assert_array_equal(out, y)
    g = rng.standard_normal(y.shape)
    want = cb.conv1d_backward(g, x, w, backend=backend, **args)
    outs = (np.empty_like(x), np.empty_like(w), np.empty(6))
    got = cb.conv1d_backward(g, x, w, backend=backend, out=outs, **args)
    assert all(a is o for a, o in zip(got, outs, strict=True))
    for a, o in zip(want, outs, strict=True):
        np.testing.assert_array_equal(a, o)
    got = cb.conv1d_backward(g, x, w, has_bias=False, backend=backend, out=(None, outs[1], None), **args)
    assert got[0] is not None and got[1] is outs[1] and got[2] is None


def test_a_wrong_layer_out_is_refused():
    x, w = np.ones((1, 2, 10)), np.ones((3, 2, 3))
    g = np.ones((1, 3, 8))
    with pytest.raises(ValueError, match=r"shape \(1, 3, 8\)"):
        cb.conv1d(x, w, out=np.empty((1, 3, 9)))
    with pytest.raises(ValueError, match="has_bias=False"):
        cb.conv1d_backward(g, x, w, has_bias=False, out=(None, None, np.empty(3)))
    with pytest.raises(TypeError, match="tuple"):
        cb.conv1d_backward(g, x, w, out=np.empty_like(x))
    with pytest.raises(ValueError, match="grad_weight"):
        cb.conv1d_backward(g, x, w, out=(None, np.empty((3, 2, 4)), None))
