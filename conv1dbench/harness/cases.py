"""Implementations, and one point's data, call and error check for each.

An implementation is one of our backends (``"naive"`` ... ``"cuda"``, and ``"auto"``) or a peer a
user would otherwise pick: ``"numpy"`` (``numpy.convolve``, a loop over the batch), ``"scipy"``
(``scipy.signal.convolve``, method ``"auto"``), ``"oaconvolve"`` (``scipy.signal.oaconvolve`` as
users call it: pocketfft, one thread), ``"oaconvolve-workers"`` (the same inside
``scipy.fft.set_workers(T)``) and, where pyFFTW is installed, ``"oaconvolve-fftw"`` (the same on
pyFFTW's scipy.fft backend with T workers, FFTW_MEASURE plans kept in pyFFTW's cache, planned when the
case is made), T being our thread count (:func:`peer_threads`); ``"torch"``
(``torch.nn.functional.conv1d`` on the CPU; forward and autograd backward) when torch is installed;
and when JAX is installed, jit-compiled on the CPU (compiled when the case is made, x64 enabled,
every call blocking until its result is ready): ``"jax-fftconvolve"``
(``jax.scipy.signal.fftconvolve``) and ``"jax-convolve"`` (``jax.numpy.convolve``) on signals,
``jax.vmap`` over a batch, and ``"jax"`` (``jax.lax.conv_general_dilated``, forward, and both
gradients through ``jax.vjp``) on layers.  :func:`skip_reason` says which peer runs where.

On the GPU grids (points with ``suite == "gpu"``) the implementations are the backends that declare
``DEVICE = True`` in their module: under their own name with NumPy arrays in and out (the
transfers in the time), and as ``"<backend>:device"`` with device arrays made before the timing
(what a GPU pipeline sees); and the GPU peers, offered only where they are installed with a GPU:
``"torch-gpu"`` (``conv1d`` on the GPU, cuDNN, TF32 off) and ``"cupy"``
(``cupyx.scipy.signal.convolve``).  Every GPU call is timed with the device synchronised
(:attr:`Case.sync`).  The out-of-core grids (``suite == "dask"``) time ``conv1dbench.convolve``
on Dask arrays read from a file (:mod:`conv1dbench.harness.out_of_core`).
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import zlib

import numpy as np

from .. import _api as cb
from .._fastest import fastest
from .._plan import padding_from_text
from .._registry import BACKEND_NAMES, backends, get_backend, module
from .case import Case
from .grid import label, layer_output_length, problem
from .out_of_core import make_case as out_of_core_case

#: The CPU peers, in the order of the report's columns and legends.
PEERS = ("numpy", "scipy", "oaconvolve", "oaconvolve-workers", "oaconvolve-fftw", "torch", "jax-fftconvolve",
         "jax-convolve", "jax")
#: The optional library each peer needs, by its import name: a peer is offered only where its library is
#: installed (:func:`implementations`), and skipped with the reason elsewhere (:func:`skip_reason`).
PEER_NEEDS = {"oaconvolve-fftw": "pyfftw", "torch": "torch", "jax-fftconvolve": "jax", "jax-convolve": "jax",
              "jax": "jax"}
#: Those libraries' names, as a reason says them.
LIBRARY_NAMES = {"pyfftw": "pyFFTW", "torch": "torch", "jax": "JAX"}
#: Peers on the GPU, device-resident; each offered where its library sees a GPU (:func:`implementations`).
GPU_PEERS = ("torch-gpu", "cupy")
LAYER_PEERS = ("torch", "torch-gpu", "jax")
#: Peers timed on layers only: JAX's signal calls are peers of their own (``jax-fftconvolve``, ``jax-convolve``).
LAYER_ONLY_PEERS = ("jax",)
#: FFTW's planner effort for ``oaconvolve-fftw``: plans measured, as a user who keeps them would ask.
FFTW_EFFORT = "FFTW_MEASURE"
#: Seconds pyFFTW's interface cache keeps an unused plan: longer than any gap between two calls of one
#: measurement (a sample is at most a few calls of seconds), short enough that a worker timing a whole
#: grid does not keep every point's plans and buffers (the default, 0.1 s, would replan a slow call's).
FFTW_KEEPALIVE_S = 60.0
#: How each CPU peer is called, as the report says it; ``{threads}`` is our thread count (:func:`peer_threads`).
PEER_CALLS = {
    "numpy": "`numpy.convolve(x, w, mode)`, in a loop over the rows of a batch",
    "scipy": "`scipy.signal.convolve(x, w, mode)` (method \"auto\"; a batch as a 2-D array, the kernel `w[None]`)",
    "oaconvolve": "`scipy.signal.oaconvolve(x, w, mode, axes=-1)` as users call it: scipy.fft's default backend "
                  "(pocketfft) and workers (one thread)",
    "oaconvolve-workers": "the same call inside `with scipy.fft.set_workers({threads}):` (pocketfft on {threads} "
                          "threads)",
    "oaconvolve-fftw": "the same call inside `with scipy.fft.set_backend(pyfftw.interfaces.scipy_fft), "
                       "scipy.fft.set_workers({threads}):` (pyFFTW's backend gives FFTW scipy.fft's workers as "
                       f"its threads), with `pyfftw.config.PLANNER_EFFORT = \"{FFTW_EFFORT}\"` and pyFFTW's "
                       "interface cache on (`pyfftw.interfaces.cache.enable()`, "
                       f"`set_keepalive_time({FFTW_KEEPALIVE_S:g})`); called once when its case is made, so its "
                       "plans are measured before any timed call, the first call included",
    "torch": "`torch.nn.functional.conv1d` on the CPU (signals: one channel, the kernel reversed, padding for "
             "the mode, `torch.nn.functional.pad` first where scipy's \"same\" pads unevenly (an even kernel); "
             "forward under `torch.no_grad()`; backward: `torch.autograd.grad` of a forward made before the timing)",
    "jax-fftconvolve": "`jax.jit(jax.scipy.signal.fftconvolve)(x, w, mode)` on the CPU (`jax.vmap` over the rows "
                       "of a batch), 64-bit types enabled, XLA's own thread pool (its default size), the arrays on "
                       "the device and the program compiled before the timing, each call ending in "
                       "`block_until_ready()`",
    "jax-convolve": "the same with `jax.numpy.convolve(x, w, mode)`",
    "jax": "`jax.jit` of `jax.lax.conv_general_dilated(x, w, (stride,), [(pad_left, pad_right)], "
           "rhs_dilation=(dilation,), feature_group_count=groups)` on the CPU (backward: both gradients "
           "through `jax.vjp`, the forward product dropped by XLA), as jax-fftconvolve is compiled and waited for",
}
#: The device-resident variant of a device backend: ``<backend>:device``.
DEVICE_VARIANT = ":device"
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
    return available + ["auto"] + [p for p in PEERS if p not in PEER_NEEDS or _installed(PEER_NEEDS[p])]


@functools.cache
def _installed(library: str) -> bool:
    """Whether ``library`` can be imported (kept: the cost model asks for every point of a grid)."""
    return importlib.util.find_spec(library) is not None


def peer_threads() -> int:
    """The thread count of the peers given one: our backends' (Numba's pool, ``NUMBA_NUM_THREADS``; our FFT
    backends use as many), so that a peer with threads competes on the cores ours use."""
    import numba  # import time: only the cases of threaded peers need it

    return numba.config.NUMBA_NUM_THREADS


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
    return "backend" if backend_of(impl) or impl == "auto" else "peer"




def _peer_sees_gpu(peer: str) -> bool:
    """Whether a GPU peer is installed with GPU support and sees a GPU (a CPU-only torch does not count)."""
    module = {"torch-gpu": "torch", "cupy": "cupy"}[peer]
    if importlib.util.find_spec(module) is None:
        return False
    try:
        if module == "torch":
            import torch  # optional dependency: a peer only where installed
            return torch.cuda.is_available()
        import cupy  # optional dependency: a peer only where installed
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - a broken peer is left out, as an absent one
        return False


def skip_reason(impl: str, point: dict) -> str | None:
    """Why ``impl`` is not timed on ``point`` (its library missing, no such API, semantics apart from scipy's,
    predicted minutes), or None."""
    if impl in PEER_NEEDS and not _installed(PEER_NEEDS[impl]):
        return f"{LIBRARY_NAMES[PEER_NEEDS[impl]]} is not installed"
    if point["api"] == "layer" and kind(impl) == "peer" and impl not in LAYER_PEERS:
        return f"{impl} has no layer API"
    if point["api"] == "signal" and impl in LAYER_ONLY_PEERS:
        return f"{impl} is timed on layers only (JAX's signal peers are jax-fftconvolve and jax-convolve)"
    if point["api"] == "signal" and point["K"] > point["N"]:  # peers whose semantics part from scipy's here
        if impl in ("numpy", "jax-convolve") and point["mode"] == "same":
            name = "numpy.convolve" if impl == "numpy" else "jax.numpy.convolve"
            return f"{name}'s 'same' gives max(N, K) outputs, scipy's gives N"
        if impl in ("torch", "torch-gpu") and point["mode"] == "valid":
            return "torch's conv1d refuses a kernel longer than the input"
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


def _layer_args(point: dict) -> dict:
    return {"stride": point["stride"], "padding": padding_from_text(point["mode"]), "groups": point["groups"]}


def reference_backend() -> str:
    """The backend that computes the layer references: the first BLAS-based one (exact products,
    float64 sums), itself tested against scipy.signal."""
    return next(n for n in BACKEND_NAMES if (m := module(n)) is not None and m.RULE == "gemm")


def _layer_reference(point, x, w):
    return cb.conv1d(x.astype(np.float64), w.astype(np.float64), backend=reference_backend(), **_layer_args(point))


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
    import scipy.signal  # import time: only signal cases need it

    if impl == "auto":  # as a user calls it: the default backend, the default mode left out
        return ((lambda: cb.convolve(x, w)) if mode == "full" else (lambda: cb.convolve(x, w, mode))), None
    if impl in BACKEND_NAMES:
        return (lambda: cb.convolve(x, w, mode, backend=impl)), _device_sync(impl)
    if impl.endswith(DEVICE_VARIANT) and declares_device(backend_of(impl)):
        name = backend_of(impl)
        device = _device_backend(impl)
        xd, wd = device.as_device(x), device.as_device(w)
        return (lambda: cb.convolve(xd, wd, mode, backend=name)), device.synchronize
    if impl == "numpy":
        return ((lambda: np.convolve(x, w, mode)) if x.ndim == 1 else (
            lambda: np.stack([np.convolve(row, w, mode) for row in x]))), None
    if impl == "scipy":
        return (lambda: scipy.signal.convolve(x, w2, mode)), None
    if impl == "oaconvolve":
        return (lambda: scipy.signal.oaconvolve(x, w2, mode, axes=-1)), None
    if impl == "oaconvolve-workers":
        return _scoped(lambda: scipy.signal.oaconvolve(x, w2, mode, axes=-1), _workers_scope()), None
    if impl == "oaconvolve-fftw":
        return _planned(_scoped(lambda: scipy.signal.oaconvolve(x, w2, mode, axes=-1), _fftw_scope())), None
    if impl in ("jax-fftconvolve", "jax-convolve"):
        return _jax_signal(impl, x, w, mode), None
    if impl in ("torch", "torch-gpu"):
        return _torch_signal(x, w, mode, gpu=impl == "torch-gpu")
    if impl == "cupy":
        return _cupy_signal(x, w2, mode)
    raise ValueError(f"unknown implementation {impl!r}")


def _scoped(call, scope):
    """``call`` run inside a fresh ``scope()`` each time: a setting that holds for the call and ends with it
    (in tests, cases run in the test's process).  Entering and leaving costs about 1 µs for
    ``set_workers``, 2.4 µs for pyFFTW's settings (timed here), against 80 µs for the shortest
    oaconvolve call of the grids."""
    def scoped():
        with scope():
            return call()
    return scoped


def _workers_scope():
    """A ``with`` scope in which scipy.fft runs with :func:`peer_threads` workers (pocketfft's threads)."""
    import scipy.fft  # import time: only the threaded peers' cases need it

    threads = peer_threads()
    return lambda: scipy.fft.set_workers(threads)


def _fftw_scope():
    """A ``with`` scope in which scipy.fft runs on pyFFTW with :func:`peer_threads` threads and new plans are
    made with :data:`FFTW_EFFORT`; its plans stay in pyFFTW's interface cache for :data:`FFTW_KEEPALIVE_S`.

    The threads are scipy.fft's workers: pyFFTW's scipy.fft backend hands FFTW ``scipy.fft.get_workers()``
    threads (``pyfftw.config.NUM_THREADS`` counts only where no thread count is passed, which this backend
    always passes).  The cache, once on, stays on (turning it off drops the plans); it serves pyFFTW's
    interfaces alone, and each implementation has a worker process of its own.
    """
    import pyfftw  # optional dependency: a peer only where installed
    import pyfftw.interfaces.cache  # optional dependency, as above
    import pyfftw.interfaces.scipy_fft  # optional dependency, as above
    import scipy.fft  # import time: only the threaded peers' cases need it

    pyfftw.interfaces.cache.enable()
    pyfftw.interfaces.cache.set_keepalive_time(FFTW_KEEPALIVE_S)
    threads = peer_threads()

    @contextlib.contextmanager
    def scope():
        effort, pyfftw.config.PLANNER_EFFORT = pyfftw.config.PLANNER_EFFORT, FFTW_EFFORT
        try:
            with scipy.fft.set_backend(pyfftw.interfaces.scipy_fft), scipy.fft.set_workers(threads):
                yield
        finally:
            pyfftw.config.PLANNER_EFFORT = effort
    return scope


def _planned(call):
    """``call``, called once now: what it plans or compiles on its first call (FFTW plans, XLA programs) is
    made when the case is, never in a timed sample."""
    call()
    return call


def _jax_x64() -> None:
    """JAX's 64-bit types enabled (else float64 arrays become float32), before any array is made."""
    import jax  # optional dependency: a peer only where installed

    jax.config.update("jax_enable_x64", True)


def _jax_signal(impl, x, w, mode):
    """The jit-compiled JAX signal call on device arrays, compiled now; ``jax.vmap`` over the rows of a batch.

    Each call blocks until its result is ready: JAX dispatches asynchronously, and the sample's ``sync``
    (called between samples of many calls) could not tell when the last one ended.
    """
    _jax_x64()
    import jax  # optional dependency: a peer only where installed
    import jax.numpy as jnp  # optional dependency, as above
    import jax.scipy.signal  # optional dependency, as above

    convolve = jax.scipy.signal.fftconvolve if impl == "jax-fftconvolve" else jnp.convolve

    def one(row, kernel):
        return convolve(row, kernel, mode)
    compiled = jax.jit(one if x.ndim == 1 else jax.vmap(one, in_axes=(0, None)))
    xd, wd = jax.device_put(x), jax.device_put(w)
    return _planned(lambda: compiled(xd, wd).block_until_ready())


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


def _torch_device(gpu: bool):
    import torch  # optional dependency: a peer only where installed

    if not gpu:
        return "cpu"
    torch.backends.cudnn.allow_tf32 = False  # full float32 products, as ours
    torch.backends.cuda.matmul.allow_tf32 = False
    return torch.cuda.current_device()  # an index: the current GPU


def _torch_sync(gpu: bool):
    import torch  # optional dependency: a peer only where installed

    return torch.cuda.synchronize if gpu else None


def _torch_signal(x, w, mode, gpu=False):
    import torch  # optional dependency: a peer only where installed

    device = _torch_device(gpu)
    tx = torch.from_numpy(x.reshape(-1, 1, x.shape[-1])).to(device)
    tw = torch.from_numpy(np.ascontiguousarray(w[::-1]).reshape(1, 1, -1)).to(device)
    k = w.shape[0]
    # scipy's "same" keeps the middle of the full result, its extra sample on the left for an even kernel;
    # torch's padding="same" puts it on the right, one sample off: so an even kernel is padded explicitly
    left = {"full": k - 1, "same": k - 1 - (k - 1) // 2, "valid": 0}[mode]
    right = {"full": k - 1, "same": (k - 1) // 2, "valid": 0}[mode]
    shape = x.shape[:-1]

    def call():
        with torch.no_grad():
            if left == right:
                y = torch.nn.functional.conv1d(tx, tw, padding=left)
            else:
                y = torch.nn.functional.conv1d(torch.nn.functional.pad(tx, (left, right)), tw)
        return y.reshape(shape + (-1,))
    return call, _torch_sync(gpu)


def _cupy_signal(x, w2, mode):
    import cupy  # optional dependency: a peer only where installed
    import cupyx.scipy.signal  # optional dependency: a peer only where installed

    cx, cw = cupy.asarray(x), cupy.asarray(w2)
    return (lambda: cupyx.scipy.signal.convolve(cx, cw, mode)), cupy.cuda.Device().synchronize


def _layer_case(impl, point, arrays) -> Case:
    x, w, args = arrays["x"], arrays["w"], _layer_args(point)
    backward = point["pass"] == "backward"
    call, sync = (_jax_layer(point, arrays, backward), None) if impl == "jax" else _layer_call(
        impl, arrays, args, backward, _reuses_out(impl, point))

    def error() -> float:
        x64, w64 = x.astype(np.float64), w.astype(np.float64)
        if backward:
            refs = cb.conv1d_backward(arrays["g"].astype(np.float64), x64, w64, bias=False,
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
    if impl in ("torch", "torch-gpu"):
        return _torch_layer(arrays["x"], arrays["w"], arrays.get("g"), args, gpu=impl == "torch-gpu")
    name, sync = impl, _device_sync(impl)
    operands = [arrays[key] for key in (("g", "x", "w") if backward else ("x", "w"))]
    if impl.endswith(DEVICE_VARIANT) and declares_device(backend_of(impl)):  # device arrays, made here
        name = backend_of(impl)
        device = _device_backend(impl)
        operands, sync = [device.as_device(a) for a in operands], device.synchronize
    if reuse and backward:
        out = (np.empty_like(arrays["x"]), np.empty_like(arrays["w"]), None)
        return (lambda: cb.conv1d_backward(*operands, bias=False, backend=name, out=out, **args)[:2]), sync
    if reuse:
        out = np.empty_like(cb.conv1d(*operands, backend=name, **args))
        return (lambda: cb.conv1d(*operands, backend=name, out=out, **args)), sync
    if backward:
        return (lambda: cb.conv1d_backward(*operands, bias=False, backend=name, **args)[:2]), sync
    return (lambda: cb.conv1d(*operands, backend=name, **args)), sync


def _torch_layer(x, w, g, args, gpu=False):
    import torch  # optional dependency: a peer only where installed

    device = _torch_device(gpu)
    tx, tw = torch.from_numpy(x).to(device), torch.from_numpy(w).to(device)
    kwargs = {"stride": args["stride"], "padding": args["padding"], "groups": args["groups"]}
    if g is None:
        def forward():
            with torch.no_grad():
                return torch.nn.functional.conv1d(tx, tw, **kwargs)
        return forward, _torch_sync(gpu)
    tx.requires_grad_(True)
    tw.requires_grad_(True)
    ty = torch.nn.functional.conv1d(tx, tw, **kwargs)
    tg = torch.from_numpy(g).to(device)

    def backward():
        return torch.autograd.grad(ty, (tx, tw), tg, retain_graph=True)
    return backward, _torch_sync(gpu)


def _jax_layer(point, arrays, backward):
    """``jax.lax.conv_general_dilated`` (a cross-correlation, as conv1d) with the point's planned padding,
    stride, dilation and groups, jit-compiled now; backward: grad_x and grad_w through ``jax.vjp`` (XLA drops
    the forward product, whose result nothing reads).  Each call blocks until its result is ready."""
    _jax_x64()
    import jax  # optional dependency: a peer only where installed

    core = problem(point)

    def forward(x, w):
        return jax.lax.conv_general_dilated(x, w, (core.stride,), [(core.pad_left, core.pad_right)],
                                            rhs_dilation=(core.dilation,), feature_group_count=core.groups)
    x, w = jax.device_put(arrays["x"]), jax.device_put(arrays["w"])
    if not backward:
        compiled = jax.jit(forward)
        return _planned(lambda: compiled(x, w).block_until_ready())
    g = jax.device_put(arrays["g"])

    def gradients(x, w, g):
        return jax.vjp(forward, x, w)[1](g)
    compiled = jax.jit(gradients)
    return _planned(lambda: jax.block_until_ready(compiled(x, w, g)))
