"""``cuda``: the core problem as numba.cuda kernels on an NVIDIA GPU.

This is the only module that imports ``numba.cuda`` (from the ``numba-cuda`` package, the ``cuda``
extra), and the registry imports it only when the backend is first asked for.

Kernels
-------
``_forward`` (the cross-correlation; ``backward_input`` runs it on the transposed problem of
:func:`conv1dbench._core.transposed_as_correlation`).  A block of :data:`THREADS` threads owns
``THREADS * R`` consecutive output positions of ``OC`` output channels of one batch item.  For each
input channel of the group, and for as many taps at a time as shared memory holds, it stages the
input window those outputs read (coalesced loads, zeros where the padding is) and the ``OC x taps``
filter slice in shared memory; then every thread accumulates its ``OC x R`` outputs in registers,
reading each staged sample once per tap for all ``OC`` channels.  Thread ``t`` owns positions
``t, t + THREADS, ...`` of the block, so both the staged reads and the final stores are unit-stride
across a warp.  Layers use ``OC = 4`` (four output channels per staged sample); signals and
depthwise problems (one output channel per group) use ``OC = 1`` with more positions per thread.
Strides too large for the staged window to fit read the input from global memory instead.

``_weight_grad``: ``grad_w[o, c, k] = sum_{b, l} g[b, o, l] * xpad[b, c, l*stride + k*dilation]``
is a reduction over all ``B * L_out`` positions.  A block owns ``OC`` output channels, one input
channel and up to :data:`TAPS_PER_BLOCK` taps, and one chunk of the positions; its threads walk the
chunk with unit stride, each holding ``OC x taps`` partial sums in registers, then reduce them in
shared memory and write one partial per chunk.  A second kernel sums the chunks in a fixed order,
so results are reproducible run to run (no atomics).

The grid is sized from the problem: one block per position tile per channel block per batch item,
and enough position chunks for the weight gradient to give every multiprocessor several blocks.

Arrays
------
NumPy inputs are copied to the device and the result back.  Device arrays (Numba's, or any object
with ``__cuda_array_interface__``, such as CuPy arrays and CUDA torch tensors) are used in place and
the result is a Numba device array (``cupy.asarray`` or ``torch.as_tensor`` take it without a copy).
"""

from __future__ import annotations

import functools
import importlib.util
import os
import sys
import threading

import numpy as np

from .._kinds import is_device_array
from .._plan import output_length

#: ``numba.cuda``, imported by :func:`unavailable_reason` (which the registry calls before any other
#: function of this module): an optional dependency, so the registry can read this module's
#: declarations without importing it.  The kernels find it here, as a global, when they compile.
cuda = None

DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))
AUTO = False
DEVICE = True
CONFINES_NON_FINITE = True
CHECKS_FINITE = False
EXACT_INTEGERS = False
RULE = "direct"
COST_FEATURES = ("call", "valid_macs", "bytes")

SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
#: Threads per block.  The simulator runs every thread as a Python thread, so there blocks have 32:
#: launches take a quarter of the time, and the small test sizes cross more tile boundaries.
THREADS = 32 if SIMULATED else 128
#: Shared-memory budget of the staged input window, in bytes (the filter slice comes on top).
STAGE_BYTES = 32 * 1024
#: Taps staged at once at most (the filter slice is ``OC x`` this many values).
TAPS_STAGED = 64
#: Taps one weight-gradient block accumulates in registers.
TAPS_PER_BLOCK = 8
#: Weight-gradient blocks aimed at per multiprocessor.
BLOCKS_PER_SM = 8


def unavailable_reason() -> str | None:
    global cuda
    if importlib.util.find_spec("numba_cuda") is None:  # Numba's old built-in target is not used
        return ("numba-cuda is not installed; pip install 'conv1dbench[cuda]' (add the simulator with "
                "NUMBA_ENABLE_CUDASIM=1 where there is no GPU)")
    try:
        from numba import cuda as numba_cuda  # optional dependency (numba-cuda), see `cuda` above

        cuda = numba_cuda
        if SIMULATED:
            _allocate_simulated_shared_arrays_once()
        if cuda.is_available():
            return None
        cuda.detect()  # raises with the driver's own explanation on most machines
    except Exception as exc:  # noqa: BLE001 - the reason is reported, not raised
        why = f"{type(exc).__name__}: {' '.join(str(exc).split()).strip(' :')}"
    else:
        why = "numba.cuda found no usable GPU"
    return (f"no CUDA GPU here ({why}); set NUMBA_ENABLE_CUDASIM=1 before importing numba to run "
            f"the kernels on Numba's CUDA simulator")


#: The simulator runs every GPU thread in Python: beyond this many multiply-adds a call takes minutes.
SIMULATOR_MAX_MACS = 10**5


def _allocate_simulated_shared_arrays_once() -> None:
    """Make the simulator hand every thread of a block the same shared array, as a GPU does.

    numba-cuda's simulator (0.30) creates a block's ``cuda.shared.array`` when the first thread asks
    for it, without a lock: two threads that ask at once get two arrays, each stages only its share of
    the window into its own, and the kernel returns garbage (a CI run of the suite saw it once; a slow
    ``np.empty`` makes it happen every time).  Here the allocation is made atomic, keyed as the
    simulator keys it (the calling line); dynamic shared memory and ``alignment`` keep its own code.
    """
    from numba.cuda.np.numpy_support import as_dtype  # optional dependency (numba-cuda), as below
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.cuda.types import Type

    unlocked = FakeCUDAShared.array
    if getattr(unlocked, "allocates_once", False):
        return
    lock = threading.Lock()

    @functools.wraps(unlocked)
    def array(self, shape, dtype, alignment=None):
        if alignment is not None or shape == 0:
            return unlocked(self, shape, dtype, alignment)
        caller = sys._getframe(1)
        key = (caller.f_code.co_filename, caller.f_lineno)
        with lock:
            if key not in self._allocations:
                self._allocations[key] = np.empty(shape, as_dtype(dtype) if isinstance(dtype, Type) else dtype)
            return self._allocations[key]

    array.allocates_once = True
    FakeCUDAShared.array = array


def too_slow(problem) -> str | None:
    if SIMULATED and problem.macs > SIMULATOR_MAX_MACS:
        return f"CUDA simulator: {problem.macs:.1e} multiply-adds would take minutes"
    return None


def _driver():
    """numba.cuda for the functions the front ends and the harness call first; why not, if it cannot run."""
    if cuda is None:
        reason = unavailable_reason()
        if cuda is None:
            raise RuntimeError(reason)
    return cuda


def synchronize() -> None:
    """Wait for the device's work in flight (timing reads the clock only after it)."""
    _driver().synchronize()


def device_name() -> str:
    """The GPU the kernels run on (for reports)."""
    if SIMULATED:
        return "none (the CUDA simulator)"
    name = _driver().get_current_device().name
    return name.decode() if isinstance(name, bytes) else str(name)


# ---------------------------------------------------------------------------------------------
# Kernels, compiled per dtype and blocking (numba.cuda compiles each on first launch)
# ---------------------------------------------------------------------------------------------

# The kernels stay whole functions (noqa: C901): a GPU kernel's stages share registers and shared
# memory that device-function calls would have to pass around, and no GPU was at hand to measure a split.
@functools.cache
def _forward_kernel(dtype: np.dtype, oc: int, per_thread: int, staged: bool):  # noqa: C901
    """The forward kernel for ``dtype`` computing ``oc`` channels x ``per_thread`` positions per thread."""
    nb_type = _numba_type(dtype)
    tile = THREADS * per_thread
    stage_len = STAGE_BYTES // dtype.itemsize
    OC, R = oc, per_thread

    @cuda.jit
    def kernel(x, w, y, pad_left, stride, dilation, channel_blocks, taps_at_once):  # noqa: C901
        t = cuda.threadIdx.x
        l0 = cuda.blockIdx.x * tile
        group = cuda.blockIdx.y // channel_blocks
        b = cuda.blockIdx.z
        length = x.shape[2]
        c_out, c_per_group, taps = w.shape
        out_per_group = c_out // (x.shape[1] // c_per_group)
        o0 = group * out_per_group + (cuda.blockIdx.y % channel_blocks) * OC
        o_end = min(o0 + OC, (group + 1) * out_per_group)
        l_out = y.shape[2]

        xs = cuda.shared.array(stage_len, nb_type)
        ws = cuda.shared.array((OC, TAPS_STAGED), nb_type)
        acc = cuda.local.array((OC, R), nb_type)
        zero = nb_type(0)
        for i in range(OC):
            for j in range(R):
                acc[i, j] = zero
        base = l0 * stride - pad_left
        for c in range(c_per_group):
            channel = group * c_per_group + c
            for k0 in range(0, taps, taps_at_once):
                kc = min(taps_at_once, taps - k0)
                start = base + k0 * dilation
                cuda.syncthreads()  # everyone is done with the previous stage
                for i in range(t, OC * kc, THREADS):
                    o = o0 + i // kc
                    ws[i // kc, i % kc] = w[o, c, k0 + i % kc] if o < o_end else zero
                if staged:
                    span = (tile - 1) * stride + (kc - 1) * dilation + 1
                    for i in range(t, span, THREADS):
                        q = start + i
                        xs[i] = x[b, channel, q] if 0 <= q < length else zero
                cuda.syncthreads()
                for k in range(kc):
                    for j in range(R):
                        q = (t + j * THREADS) * stride + k * dilation
                        if staged:
                            v = xs[q]
                        else:
                            q += start
                            v = x[b, channel, q] if 0 <= q < length else zero
                        for i in range(OC):
                            acc[i, j] += ws[i, k] * v
        for j in range(R):
            l = l0 + t + j * THREADS
            if l < l_out:
                for i in range(OC):
                    if o0 + i < o_end:
                        y[b, o0 + i, l] = acc[i, j]

    return kernel


@functools.cache
def _weight_grad_kernels(dtype: np.dtype, oc: int):  # noqa: C901 - see _forward_kernel
    nb_type = _numba_type(dtype)
    OC, KT = oc, TAPS_PER_BLOCK
    ACCUMULATORS = oc * TAPS_PER_BLOCK  # shapes of local and shared arrays must be constants

    @cuda.jit
    def partials_kernel(g, x, part, pad_left, stride, dilation, channel_blocks, chunk):
        # grid: (position chunks, groups * channel_blocks, C_in/groups * tap blocks)
        t = cuda.threadIdx.x
        batch, c_in, length = x.shape
        c_out, l_out = g.shape[1], g.shape[2]
        c_per_group, taps = part.shape[2], part.shape[3]
        groups = c_in // c_per_group
        out_per_group = c_out // groups
        group = cuda.blockIdx.y // channel_blocks
        o0 = group * out_per_group + (cuda.blockIdx.y % channel_blocks) * OC
        o_end = min(o0 + OC, (group + 1) * out_per_group)
        c = cuda.blockIdx.z % c_per_group
        k0 = (cuda.blockIdx.z // c_per_group) * KT
        channel = group * c_per_group + c
        acc = cuda.local.array((OC, KT), nb_type)
        gv = cuda.local.array(OC, nb_type)
        zero = nb_type(0)
        for i in range(OC):
            for k in range(KT):
                acc[i, k] = zero
        p_end = min((cuda.blockIdx.x + 1) * chunk, batch * l_out)
        for p in range(cuda.blockIdx.x * chunk + t, p_end, THREADS):
            b = p // l_out
            l = p - b * l_out
            for i in range(OC):
                gv[i] = g[b, o0 + i, l] if o0 + i < o_end else zero
            q0 = l * stride + k0 * dilation - pad_left
            for k in range(KT):
                q = q0 + k * dilation
                if 0 <= q < length and k0 + k < taps:
                    v = x[b, channel, q]
                    for i in range(OC):
                        acc[i, k] += gv[i] * v
        # Reduce the threads' partial sums in shared memory, one tree per accumulator.
        red = cuda.shared.array((ACCUMULATORS, THREADS), nb_type)
        for i in range(OC):
            for k in range(KT):
                red[i * KT + k, t] = acc[i, k]
        half = THREADS // 2
        while half > 0:
            cuda.syncthreads()
            if t < half:
                for a in range(OC * KT):
                    red[a, t] += red[a, t + half]
            half //= 2
        cuda.syncthreads()
        for a in range(t, OC * KT, THREADS):
            i, k = a // KT, a % KT
            if o0 + i < o_end and k0 + k < taps:
                part[cuda.blockIdx.x, o0 + i, c, k0 + k] = red[a, 0]

    @cuda.jit
    def sum_chunks(part, grad):
        idx = cuda.grid(1)
        c_out, c_per_group, taps = grad.shape
        if idx < c_out * c_per_group * taps:
            o = idx // (c_per_group * taps)
            c = (idx // taps) % c_per_group
            k = idx % taps
            total = part[0, o, c, k]
            for chunk in range(1, part.shape[0]):
                total += part[chunk, o, c, k]
            grad[o, c, k] = total

    return partials_kernel, sum_chunks


@functools.cache
def _helper_kernels(dtype: np.dtype):
    """Small element-wise kernels that keep device arrays on the device."""
    nb_type = _numba_type(dtype)

    @cuda.jit
    def transpose_filters(w, w_t, groups):
        # w_t[g*Cg + c, o, k] = w[g*Og + o, c, K-1-k]
        idx = cuda.grid(1)
        c_out, c_per_group, taps = w.shape
        if idx < w.size:
            o_all = idx // (c_per_group * taps)
            c = (idx // taps) % c_per_group
            k = idx % taps
            out_per_group = c_out // groups
            g, o = o_all // out_per_group, o_all % out_per_group
            w_t[g * c_per_group + c, o, taps - 1 - k] = w[o_all, c, k]

    @cuda.jit
    def spread(g, out, stride):
        idx = cuda.grid(1)
        batch, channels, n = out.shape
        if idx < batch * channels * n:
            row, q = idx // n, idx % n
            b, o = row // channels, row % channels
            out[b, o, q] = g[b, o, q // stride] if q % stride == 0 else nb_type(0)

    @cuda.jit
    def add_bias(y, bias):
        idx = cuda.grid(1)
        _, c_out, l_out = y.shape
        if idx < y.size:
            o = (idx // l_out) % c_out
            b = idx // (c_out * l_out)
            y[b, o, idx % l_out] += bias[o]

    @cuda.jit
    def bias_grad(g, out):
        # one block per output channel; threads stride over (b, l), then a tree in shared memory
        o = cuda.blockIdx.x
        t = cuda.threadIdx.x
        batch, _, l_out = g.shape
        total = nb_type(0)
        for p in range(t, batch * l_out, THREADS):
            total += g[p // l_out, o, p % l_out]
        red = cuda.shared.array(THREADS, nb_type)
        red[t] = total
        half = THREADS // 2
        while half > 0:
            cuda.syncthreads()
            if t < half:
                red[t] += red[t + half]
            half //= 2
        if t == 0:
            out[o] = red[0]

    return transpose_filters, spread, add_bias, bias_grad


def _numba_type(dtype: np.dtype):
    from numba import float32, float64  # import time: the registry reads this module without loading numba
    return float32 if dtype == np.float32 else float64


def _blocks(n: int) -> int:
    return max(1, -(-n // THREADS))


# ---------------------------------------------------------------------------------------------
# Arrays: host or device in, the same kind out
# ---------------------------------------------------------------------------------------------

def as_device(obj):
    """A Numba device array for ``obj``: itself, a zero-copy view of a CUDA array, or a copy of host data."""
    if getattr(obj, "__cuda_ndarray__", False):
        return obj
    if hasattr(obj, "__cuda_array_interface__"):
        return _simulated_view(obj) if SIMULATED else _driver().as_cuda_array(obj)
    return _driver().to_device(np.ascontiguousarray(obj))


def _simulated_view(obj):
    """The simulator lacks ``__cuda_array_interface__`` support; its device memory is host memory,
    so the interface's pointer is wrapped as it is (no copy), as ``cuda.as_cuda_array`` does on a GPU."""
    from numba.cuda.simulator.cudadrv.devicearray import FakeCUDAArray  # optional dependency (numba-cuda)

    holder = type("ArrayInterface", (), {})()
    holder.__array_interface__ = {key: value for key, value in obj.__cuda_array_interface__.items()
                                  if key in ("shape", "typestr", "data", "strides", "version")}
    return FakeCUDAArray(np.asarray(holder))


def _on_device(*arrays):
    """The device arrays for ``arrays`` and whether the caller gave host arrays (so wants one back)."""
    host = not any(is_device_array(a) for a in arrays)
    return [as_device(a) for a in arrays], host


def _result(y, host: bool):
    if host:
        out = y.copy_to_host()
        cuda.synchronize()
        return out
    return y


# ---------------------------------------------------------------------------------------------
# The backend contract
# ---------------------------------------------------------------------------------------------

def _run_forward(x, w, pad_left, pad_right, stride, dilation, groups):
    """The forward kernel on device arrays; returns a new device array."""
    batch, _, length = x.shape
    c_out, _, taps = w.shape
    dtype = np.dtype(x.dtype)
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    y = cuda.device_array((batch, c_out, l_out), dtype=dtype)
    out_per_group = c_out // groups
    oc, per_thread = (1, 8) if out_per_group == 1 else (4, 4)
    tile = THREADS * per_thread
    stage_len = STAGE_BYTES // dtype.itemsize
    first_span = (tile - 1) * stride + 1
    staged = first_span <= stage_len
    taps_at_once = TAPS_STAGED
    if staged:
        taps_at_once = min(TAPS_STAGED, (stage_len - first_span) // dilation + 1)
    channel_blocks = -(-out_per_group // oc)
    grid = (-(-l_out // tile), groups * channel_blocks, batch)
    kernel = _forward_kernel(dtype, oc, per_thread, staged)
    kernel[grid, THREADS](x, w, y, pad_left, stride, dilation, channel_blocks, taps_at_once)
    return y


def forward(x, w, pad_left, pad_right, stride, dilation, groups):
    (x, w), host = _on_device(x, w)
    return _result(_run_forward(x, w, pad_left, pad_right, stride, dilation, groups), host)


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups):
    """The transposed convolution: the forward kernel on spread gradients and transposed filters."""
    (g, w), host = _on_device(g, w)
    dtype = np.dtype(g.dtype)
    transpose_filters, spread, _, _ = _helper_kernels(dtype)
    c_out, c_per_group, taps = w.shape
    w_t = cuda.device_array((groups * c_per_group, c_out // groups, taps), dtype=dtype)
    transpose_filters[_blocks(w.size), THREADS](w, w_t, groups)
    if stride > 1:
        batch, _, l_out = g.shape
        spread_g = cuda.device_array((batch, c_out, (l_out - 1) * stride + 1), dtype=dtype)
        spread[_blocks(spread_g.size), THREADS](g, spread_g, stride)
        g = spread_g
    span = dilation * (taps - 1)
    pad_left_t = span - pad_left
    pad_right_t = length - g.shape[2] - pad_left_t + span
    # Padding wider than the kernel's reach makes these negative: a crop, which the forward
    # kernel handles (its window starts further in, and output_length() gives `length` outputs).
    return _result(_run_forward(g, w_t, pad_left_t, pad_right_t, 1, dilation, groups), host)


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups):
    """Partial sums per chunk of positions, then a fixed-order sum of the chunks."""
    (g, x), host = _on_device(g, x)
    dtype = np.dtype(x.dtype)
    batch, c_in, _ = x.shape
    c_out, l_out = g.shape[1], g.shape[2]
    c_per_group = c_in // groups
    out_per_group = c_out // groups
    oc = 1 if out_per_group == 1 else 4
    channel_blocks = -(-out_per_group // oc)
    other_blocks = groups * channel_blocks * c_per_group * -(-taps // TAPS_PER_BLOCK)
    positions = batch * l_out
    sms = 1 if SIMULATED else cuda.get_current_device().MULTIPROCESSOR_COUNT
    chunks = max(1, min(-(-positions // (4 * THREADS)), -(-BLOCKS_PER_SM * sms // other_blocks)))
    chunk = -(-positions // chunks)
    chunks = -(-positions // chunk)
    part = cuda.device_array((chunks, c_out, c_per_group, taps), dtype=dtype)
    grad = cuda.device_array((c_out, c_per_group, taps), dtype=dtype)
    partials_kernel, sum_chunks = _weight_grad_kernels(dtype, oc)
    grid = (chunks, groups * channel_blocks, c_per_group * -(-taps // TAPS_PER_BLOCK))
    partials_kernel[grid, THREADS](g, x, part, pad_left, stride, dilation, channel_blocks, chunk)
    sum_chunks[_blocks(grad.size), THREADS](part, grad)
    return _result(grad, host)


def add_bias(y, bias):
    """``y += bias[None, :, None]`` on the device (``y`` a device array of the layer's dtype)."""
    bias = as_device(np.asarray(bias, dtype=y.dtype) if not is_device_array(bias) else bias)
    _helper_kernels(np.dtype(y.dtype))[2][_blocks(y.size), THREADS](y, bias)
    return y


def bias_gradient(g):
    """``g.sum(axis=(0, 2))`` on the device."""
    out = cuda.device_array(g.shape[1], dtype=g.dtype)
    _helper_kernels(np.dtype(g.dtype))[3][g.shape[1], THREADS](g, out)
    return out
