"""Implementations, and one point's data, call and error check for each.

An implementation is one of our backends (``"naive"`` ... ``"cuda"``, and ``"auto"``) or a peer a
user would otherwise pick: ``"numpy"`` (``numpy.convolve``, a loop over the batch), ``"scipy"``
(``scipy.signal.convolve``, method ``"auto"``), ``"oaconvolve"`` (``scipy.signal.oaconvolve``) and
``"torch"`` (``torch.nn.functional.conv1d`` on the CPU; forward and autograd backward) when torch is
installed.  Peers without a layer API are not timed on layers.
"""

from __future__ import annotations

import importlib.util
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .. import _api as cb
from .._fastest import fastest
from .._plan import padding_from_text
from .._registry import BACKEND_NAMES, backends, module
from .grid import label, layer_output_length, problem

PEERS = ("numpy", "scipy", "oaconvolve", "torch")
LAYER_PEERS = ("torch",)


def implementations() -> list[str]:
    """Every implementation that can run here: available backends, auto, installed peers."""
    names = [n for n, info in backends().items() if info["available"]] + ["auto"]
    return names + [p for p in PEERS if p != "torch" or importlib.util.find_spec("torch")]


def kind(impl: str) -> str:
    return "backend" if impl in BACKEND_NAMES or impl == "auto" else "peer"


@dataclass
class Case:
    """One implementation on one point: ``call()`` is what is timed; ``error()`` checks its result."""

    call: Callable[[], object]
    error: Callable[[], float]
    chose: str | None = None


def skip_reason(impl: str, point: dict) -> str | None:
    """Why ``impl`` is not timed on ``point`` (predicted minutes, or no such API), or None."""
    if point["api"] == "layer" and kind(impl) == "peer" and impl not in LAYER_PEERS:
        return f"{impl} has no layer API"
    if point["api"] == "signal" and point["K"] > point["N"]:  # peers whose semantics part from scipy's here
        if impl == "numpy" and point["mode"] == "same":
            return "numpy.convolve's 'same' gives max(N, K) outputs, scipy's gives N"
        if impl == "torch" and point["mode"] == "valid":
            return "torch's conv1d refuses a kernel longer than the input"
    declared = module(impl) if impl in BACKEND_NAMES else None
    if declared is not None and hasattr(declared, "too_slow"):
        return declared.too_slow(problem(point))
    return None


def data(point: dict) -> dict:
    """The point's input arrays, the same for every implementation (seeded by the point's label)."""
    rng = np.random.default_rng(zlib.crc32(f"{point['api']} {point['pass']} {point['dtype']} {point['mode']} "
                                           f"{label(point)}".encode()))
    dtype = np.dtype(point["dtype"])
    if point["api"] == "signal":
        shape = (point["N"],) if point["batch"] == 1 else (point["batch"], point["N"])
        return {"x": rng.standard_normal(shape).astype(dtype), "w": rng.standard_normal(point["K"]).astype(dtype)}
    b, c_in, c_out, k = point["B"], point["C_in"], point["C_out"], point["K"]
    x = rng.standard_normal((b, c_in, point["L"])).astype(dtype)
    w = (rng.standard_normal((c_out, c_in // point["groups"], k)) / np.sqrt(c_in // point["groups"] * k)).astype(dtype)
    out = {"x": x, "w": w}
    if point["pass"] == "backward":
        l_out = layer_output_length(point)
        out["g"] = rng.standard_normal((b, c_out, l_out)).astype(dtype)
    return out


def _layer_args(point: dict) -> dict:
    return {"stride": point["stride"], "padding": padding_from_text(point["mode"]), "groups": point["groups"]}


def reference_backend() -> str:
    """The backend that computes the layer references: the first BLAS-based one (exact products,
    float64 sums), itself tested against scipy.signal."""
    return next(n for n in BACKEND_NAMES if (m := module(n)) is not None and m.RULE == "gemm")


def _layer_reference(point, x, w):
    return cb.conv1d(x.astype(np.float64), w.astype(np.float64), backend=reference_backend(), **_layer_args(point))


def make_case(impl: str, point: dict, arrays: dict) -> Case:
    """The timed call of ``impl`` on ``point`` and a check of its result against a float64 reference.

    Signal errors are ``max|y - ref| / (max|x| * sum|w|)`` (the scale of docs/SPEC.md section 5's
    tolerance); layer errors ``max|y - ref| / max|ref|``, the worst of the gradients for backward.
    The float64 references: scipy.signal.convolve (direct where N*K <= 10**7, else FFT) for signals;
    the BLAS-based backend in float64 (:func:`reference_backend`) for layers.
    """
    if point["api"] == "signal":
        return _signal_case(impl, point, arrays["x"], arrays["w"])
    return _layer_case(impl, point, arrays)


def _signal_case(impl, point, x, w) -> Case:
    import scipy.signal  # import time: only signal cases need it

    mode = point["mode"]
    w2 = w if x.ndim == 1 else w[None]
    if impl in BACKEND_NAMES or impl == "auto":
        call = lambda: cb.convolve(x, w, mode, backend=impl)
    elif impl == "numpy":
        call = (lambda: np.convolve(x, w, mode)) if x.ndim == 1 else (
            lambda: np.stack([np.convolve(row, w, mode) for row in x]))
    elif impl == "scipy":
        call = lambda: scipy.signal.convolve(x, w2, mode)
    elif impl == "oaconvolve":
        call = lambda: scipy.signal.oaconvolve(x, w2, mode, axes=-1)
    elif impl == "torch":
        call = _torch_signal(x, w, mode)
    else:
        raise ValueError(f"unknown implementation {impl!r}")

    def error() -> float:
        x64, w64 = x.astype(np.float64), w2.astype(np.float64)
        method = "direct" if x.size * w.size <= 10**7 else "auto"  # (auto: FFT, at these sizes)
        ref = scipy.signal.convolve(x64, w64, mode, method=method)
        y = np.asarray(call(), dtype=np.float64)
        return float(np.max(np.abs(y - ref)) / (np.max(np.abs(x64)) * np.sum(np.abs(w64))))

    chose = fastest("convolve", x, w, mode) if impl == "auto" else None
    return Case(call, error, chose)


def _torch_signal(x, w, mode):
    import torch  # optional dependency: a peer only where installed

    tx = torch.from_numpy(x.reshape(-1, 1, x.shape[-1]))
    tw = torch.from_numpy(np.ascontiguousarray(w[::-1]).reshape(1, 1, -1))
    k = w.shape[0]
    pad = {"full": k - 1, "same": "same", "valid": 0}[mode]
    shape = x.shape[:-1]

    def call():
        with torch.no_grad():
            y = torch.nn.functional.conv1d(tx, tw, padding=pad)
        return y.numpy().reshape(shape + (-1,))
    return call


def _layer_case(impl, point, arrays) -> Case:
    x, w, args = arrays["x"], arrays["w"], _layer_args(point)
    backward = point["pass"] == "backward"
    if impl == "torch":
        call = _torch_layer(x, w, arrays.get("g"), args)
    elif backward:
        g = arrays["g"]
        call = lambda: cb.conv1d_backward(g, x, w, bias=False, backend=impl, **args)[:2]
    else:
        call = lambda: cb.conv1d(x, w, backend=impl, **args)

    def error() -> float:
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        if backward:
            refs = cb.conv1d_backward(arrays["g"].astype(np.float64), x64, w64, bias=False,
                                      backend=reference_backend(), **args)[:2]
            got = call()
        else:
            refs, got = (_layer_reference(point, x, w),), (call(),)
        return max(float(np.max(np.abs(np.asarray(y, np.float64) - r)) / np.max(np.abs(r))) for y, r in zip(got, refs))

    chose = None
    if impl == "auto":
        chose = (fastest("conv1d_backward", arrays["g"], x, w, **args) if backward
                 else fastest("conv1d", x, w, **args))
    return Case(call, error, chose)


def _torch_layer(x, w, g, args):
    import torch  # optional dependency: a peer only where installed

    tx, tw = torch.from_numpy(x), torch.from_numpy(w)
    kwargs = {"stride": args["stride"], "padding": args["padding"], "groups": args["groups"]}
    if g is None:
        def forward():
            with torch.no_grad():
                return torch.nn.functional.conv1d(tx, tw, **kwargs).numpy()
        return forward
    tx.requires_grad_(True)
    tw.requires_grad_(True)
    ty = torch.nn.functional.conv1d(tx, tw, **kwargs)
    tg = torch.from_numpy(g)

    def backward():
        gx, gw = torch.autograd.grad(ty, (tx, tw), tg, retain_graph=True)
        return gx.numpy(), gw.numpy()
    return backward
