"""Implementations, and one point's data, call and error check for each.

An implementation is one of our backends (``"naive"`` ... ``"cuda"``), ``"auto"``, auto on one thread
(``"auto:1-thread"``, set against the single-threaded peers on signals: its worker gets one thread for
Numba, our FFT engines and BLAS, :func:`worker_env`), or a peer a user would otherwise pick: each peer is
a module of :mod:`conv1dbench.harness.peers` with its spec (what it computes, its threads, how it is
called, where it runs), offered where its package is installed.  :func:`skip_reason` says which
implementation runs where.

On the GPU grids (points with ``suite == "gpu"``) the implementations are the backends that declare
``DEVICE = True`` in their module: under their own name with NumPy arrays in and out (the
transfers in the time), and as ``"<backend>:device"`` with device arrays made before the timing
(what a GPU pipeline sees); and the GPU peers, offered only where they are installed with a GPU.
Every GPU call is timed with the device synchronised (:attr:`Case.sync`).  The out-of-core grids
(``suite == "dask"``) time ``conv1dbench.convolve`` on Dask arrays read from a file
(:mod:`conv1dbench.harness.out_of_core`).
"""

from __future__ import annotations

import zlib

import numpy as np

from .. import _api as cb
from .._fastest import fastest
from .._registry import BACKEND_NAMES, backends, get_backend, module
from . import peers
from .case import Case
from .grid import label, layer_output_length, problem
from .out_of_core import make_case as out_of_core_case
from .peers import layer_args

#: The CPU peers, in the order of the report's columns and legends; the GPU peers.
PEERS, GPU_PEERS = peers.CPU, peers.GPU
#: The device-resident variant of a device backend: ``<backend>:device``.
DEVICE_VARIANT = ":device"
#: Ours on one thread: the variant of auto set against the single-threaded peers (numpy, scipy).
ONE_THREAD = ":1-thread"
AUTO_ONE_THREAD = "auto" + ONE_THREAD
#: What a one-thread variant's worker adds to its environment: one thread for Numba (and so for our FFT
#: engines, :func:`conv1dbench._threads.cores`), OpenBLAS, OpenMP and MKL.
ONE_THREAD_ENV = {"NUMBA_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1",
                  "MKL_NUM_THREADS": "1"}
#: A point's ``"memory"`` when it is timed with memory reused: our backends write into an ``out=``
#: made before the timing (the runner gives its worker glibc settings that keep freed memory).
REUSED = "reused"


def implementations(suite: str = "cpu") -> list[str]:
    """Every implementation that can run here on the points of ``suite`` (see :func:`suite`).

    CPU grids: available backends, auto, installed peers.  GPU grids: the available device backends
    with transfers and device-resident, and the GPU peers that see a GPU.  Out-of-core grids: auto
    and the available CPU backends (each runs every chunk); :func:`timed_by_default` picks auto there.
    """
    available = [n for n, info in backends().items() if info["available"]]
    if suite == "gpu":
        ours = [n for n in available if declares_device(n)]
        return ours + [n + DEVICE_VARIANT for n in ours] + [p for p in GPU_PEERS if _peer_sees_gpu(p)]
    if suite == "dask":
        return ["auto"] + [n for n in available if not declares_device(n)]
    return available + ["auto", AUTO_ONE_THREAD] + [p for p in PEERS if peers.REGISTRY[p].installed()]


def peer_threads() -> int:
    """The thread count of the peers given one: our backends' (:func:`conv1dbench.harness.peers.threads`)."""
    return peers.threads()


def worker_env(impl: str) -> dict:
    """What the worker timing ``impl`` adds to its environment: one thread for a one-thread variant."""
    return dict(ONE_THREAD_ENV) if impl.endswith(ONE_THREAD) else {}


def base(impl: str) -> str:
    """The implementation a variant runs (``"auto:1-thread"``: ``"auto"``); others are their own."""
    return impl.removesuffix(ONE_THREAD)


def timed_by_default(suite: str, names: list[str]) -> list[str]:
    """Of ``names`` (offered on ``suite``'s points), those timed when none are named: all of them, but on
    the out-of-core grids (minutes a point) auto alone, the choice a user of ``convolve`` on Dask gets."""
    return [n for n in names if n == "auto"] if suite == "dask" else list(names)


def suite(point: dict) -> str:
    """The suite of a point or row: ``"cpu"`` (no ``suite`` key), ``"crossover"``, ``"gpu"`` or ``"dask"``."""
    value = point.get("suite")
    return value if isinstance(value, str) else "cpu"  # NaN in a frame read back from CSV


def backend_of(impl: str) -> str | None:
    """The backend ``impl`` runs: its name, or the name before a variant suffix; None for peers and auto."""
    name = impl.partition(":")[0]
    return name if name in BACKEND_NAMES else None


def declares_device(name: str | None) -> bool:
    """Whether backend ``name``'s module declares ``DEVICE = True`` (it takes and returns device arrays)."""
    if name is None:
        return False
    declared = module(name)
    return declared is not None and declared.DEVICE


def runs_on_gpu(impl: str) -> bool:
    return declares_device(backend_of(impl)) or impl in GPU_PEERS


def kind(impl: str) -> str:
    return "backend" if backend_of(impl) or base(impl) == "auto" else "peer"


def ours_alone(frame):
    """The rows of ``frame`` (the harness's tidy table) of our backends alone: not auto, its variants or a peer."""
    return (frame["kind"] == "backend") & ~frame["impl"].map(lambda impl: base(str(impl)) == "auto").astype(bool)


def _peer_sees_gpu(name: str) -> bool:
    peer = peers.REGISTRY[name]
    return peer.sees_gpu is not None and peer.sees_gpu()


def skip_reason(impl: str, point: dict) -> str | None:
    """Why ``impl`` is not timed on ``point`` (its library missing, no such API, semantics apart from scipy's,
    predicted minutes), or None."""
    peer = peers.get(impl)
    if peer is not None:
        return peer.skip_reason(point)
    if impl.endswith(ONE_THREAD) and point["api"] != "signal":
        return "ours on one thread is set against the single-threaded peers, on signals only"
    declared = module(backend_of(impl)) if backend_of(impl) else None  # device-resident variants too
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


def reference_backend() -> str:
    """The backend that computes the layer references: the first BLAS-based one (exact products,
    float64 sums), itself tested against scipy.signal."""
    return next(n for n in BACKEND_NAMES if (m := module(n)) is not None and m.RULE == "gemm")


def _layer_reference(point, x, w):
    return cb.conv1d(x.astype(np.float64), w.astype(np.float64), backend=reference_backend(), **layer_args(point))


def setup(impl: str, point: dict) -> Case:
    """The case of ``impl`` on ``point`` with its data made (untimed): what a worker times."""
    if point.get("store"):
            return out_of_core_case(impl, point)
    return make_case(impl, point, data(point))


#: docs/SPEC.md section 5: the largest error a result may have, on the scale :func:`make_case`'s errors use.
TOLERANCE = {"float32": 1e-5, "complex64": 1e-5, "float64": 1e-12, "complex128": 1e-12}


def check_error(point: dict, error: float) -> None:
    """Raise :class:`WrongResult`, naming the point, where ``error`` is beyond ``point``'s tolerance (or NaN)."""
    tolerance = TOLERANCE[point["dtype"]]
    if not error <= tolerance:
        raise WrongResult(f"wrong result: error {error:.2e} against a float64 reference, above docs/SPEC.md's "
                          f"tolerance {tolerance:g} for {point['dtype']}")


class WrongResult(AssertionError):
    """A timed call whose result is beyond the SPEC tolerance: its time is not a measurement."""


def make_case(impl: str, point: dict, arrays: dict) -> Case:
    """The timed call of ``impl`` on ``point`` and a check of its result against a float64 reference.

    Errors are on the scale of docs/SPEC.md section 5's tolerance (:data:`TOLERANCE`): signals
    ``max|y - ref| / (max|x| * sum|w|)``; layers ``max|y - ref| / (max|x| * max_o sum|w[o]|)``, and for
    backward the worst of ``grad_x``'s (scale ``max|g| * max_c sum_{o,k}|w[o,c,k]|``) and ``grad_w``'s
    (``max|x| * max_o sum_{b,l}|g[b,o,l]|``).  The float64 references: scipy.signal.convolve (direct
    where N*K <= 10**7, else FFT) for signals; the BLAS-based backend in float64
    (:func:`reference_backend`) for layers.
    """
    impl = base(impl)  # a one-thread variant: its worker has one thread (worker_env)
    case = (_signal_case(impl, point, arrays["x"], arrays["w"]) if point["api"] == "signal"
            else _layer_case(impl, point, arrays))
    if runs_on_gpu(impl):
        case.device = gpu_name(impl)
    declared = module(impl) if impl in BACKEND_NAMES else None
    if declared is not None and hasattr(declared, "threads"):
        case.threads = declared.threads(problem(point))
    return case


def gpu_name(impl: str) -> str:
    """The name of the GPU ``impl`` runs on, as its library reports it."""
    if impl == "torch-gpu":
        import torch  # optional dependency: a peer only where installed

        return torch.cuda.get_device_name()
    if impl == "cupy":
        import cupy  # optional dependency: a peer only where installed

        name = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)["name"]
    else:
        return _device_backend(impl).device_name()
    return name.decode() if isinstance(name, bytes) else str(name)


def _reuses_out(impl: str, point: dict) -> bool:
    """Whether ``impl``'s timed call on ``point`` writes into a preallocated ``out=`` (our host backends, auto)."""
    return point.get("memory") == REUSED and (impl in BACKEND_NAMES or impl == "auto") and not runs_on_gpu(impl)


def _signal_case(impl, point, x, w) -> Case:
    import scipy.signal  # import time: only signal cases need it

    mode = point["mode"]
    w2 = w if x.ndim == 1 else w[None]
    call, sync = _signal_call(impl, x, w, w2, mode)
    if _reuses_out(impl, point):
        out = np.empty_like(call())

        def call():
            return cb.convolve(x, w, mode, backend=impl, out=out)

    def error() -> float:
        x64, w64 = x.astype(np.float64), w2.astype(np.float64)
        method = "direct" if x.size * w.size <= 10**7 else "auto"  # (auto: FFT, at these sizes)
        ref = scipy.signal.convolve(x64, w64, mode, method=method)
        y = np.asarray(to_host(call()), dtype=np.float64)
        return float(np.max(np.abs(y - ref)) / (np.max(np.abs(x64)) * np.sum(np.abs(w64))))

    chose = fastest("convolve", x, w, mode) if impl == "auto" else None
    return Case(call, error, chose, sync)


def _signal_call(impl, x, w, w2, mode):
    """``(call, sync)``: the timed call of ``impl`` and how to wait for its device (None on the CPU)."""
    if impl == "auto":  # as a user calls it: the default backend, the default mode left out
        return ((lambda: cb.convolve(x, w)) if mode == "full" else (lambda: cb.convolve(x, w, mode))), None
    if impl in BACKEND_NAMES:
        return (lambda: cb.convolve(x, w, mode, backend=impl)), _device_sync(impl)
    if impl.endswith(DEVICE_VARIANT) and declares_device(backend_of(impl)):
        name = backend_of(impl)
        device = _device_backend(impl)
        xd, wd = device.as_device(x), device.as_device(w)
        return (lambda: cb.convolve(xd, wd, mode, backend=name)), device.synchronize
    peer = peers.get(impl)
    if peer is not None and peer.signal is not None:
        return peer.signal(x, w, w2, mode)
    raise ValueError(f"unknown implementation {impl!r}")


def _device_backend(impl):
    """The (available) device backend ``impl`` runs, loaded and checked as a call would load it."""
    name = backend_of(impl)
    return get_backend(name, next(iter(module(name).DTYPES)))


def _device_sync(impl):
    """The device's synchronisation for a backend that declares ``DEVICE`` (its host results are copies
    already, but a sample must not end with work in flight), else None."""
    return _device_backend(impl).synchronize if declares_device(backend_of(impl)) else None


def to_host(result):
    """A call's result as NumPy: device arrays (Numba, torch, CuPy) copied back; tuples element-wise."""
    if isinstance(result, (tuple, list)):
        return tuple(to_host(r) for r in result)
    if hasattr(result, "copy_to_host"):        # Numba device array
        return result.copy_to_host()
    if hasattr(result, "detach"):              # torch tensor, on the CPU or a GPU
        return result.detach().cpu().numpy()
    if hasattr(result, "get") and hasattr(result, "__cuda_array_interface__"):  # CuPy
        return result.get()
    return np.asarray(result)


def _layer_case(impl, point, arrays) -> Case:
    x, w, args = arrays["x"], arrays["w"], layer_args(point)
    backward = point["pass"] == "backward"
    peer = peers.get(impl)
    call, sync = (peer.layer(point, arrays, backward) if peer is not None
                  else _layer_call(impl, arrays, args, backward, _reuses_out(impl, point)))

    def error() -> float:
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        if backward:
            refs = cb.conv1d_backward(arrays["g"].astype(np.float64), x64, w64, has_bias=False,
                                      backend=reference_backend(), **args)[:2]
            got = to_host(call())
        else:
            refs, got = (_layer_reference(point, x, w),), (to_host(call()),)
        scales = _layer_scales(x64, w64, arrays["g"].astype(np.float64) if backward else None)
        return max(float(np.max(np.abs(np.asarray(y, np.float64) - r))) / scale
                   for y, r, scale in zip(got, refs, scales, strict=True))

    chose = None
    if impl == "auto":
        chose = (fastest("conv1d_backward", arrays["g"], x, w, **args) if backward
                 else fastest("conv1d", x, w, **args))
    return Case(call, error, chose, sync)


def _layer_scales(x, w, g=None) -> tuple[float, ...]:
    """docs/SPEC.md section 5's scales: the forward's, or ``grad_x``'s and ``grad_w``'s where ``g`` is given."""
    if g is None:
        return (np.max(np.abs(x)) * np.max(np.sum(np.abs(w), axis=(1, 2))),)
    return (np.max(np.abs(g)) * np.max(np.sum(np.abs(w), axis=(0, 2))),
            np.max(np.abs(x)) * np.max(np.sum(np.abs(g), axis=(0, 2))))


def _layer_call(impl, arrays, args, backward, reuse=False):
    """``(call, sync)`` of one layer pass: forward, or backward (grad_x and grad_w); into ``out=`` if ``reuse``."""
    name, sync = impl, _device_sync(impl)
    operands = [arrays[key] for key in (("g", "x", "w") if backward else ("x", "w"))]
    if impl.endswith(DEVICE_VARIANT) and declares_device(backend_of(impl)):  # device arrays, made here
        name = backend_of(impl)
        device = _device_backend(impl)
        operands, sync = [device.as_device(a) for a in operands], device.synchronize
    if reuse and backward:
        out = (np.empty_like(arrays["x"]), np.empty_like(arrays["w"]), None)
        return (lambda: cb.conv1d_backward(*operands, has_bias=False, backend=name, out=out, **args)[:2]), sync
    if reuse:
        out = np.empty_like(cb.conv1d(*operands, backend=name, **args))
        return (lambda: cb.conv1d(*operands, backend=name, out=out, **args)), sync
    if backward:
        return (lambda: cb.conv1d_backward(*operands, has_bias=False, backend=name, **args)[:2]), sync
    return (lambda: cb.conv1d(*operands, backend=name, **args)), sync
