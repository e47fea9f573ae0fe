"""The FFT convolution algorithm, written once for every engine that makes the transforms.

The backends ``fft`` (scipy.fft), ``fftw`` (pyFFTW) and ``ducc`` (ducc0) are this algorithm on their
own :class:`Engine`; an engine only makes batched transforms along the last axis of a 2-D array.

Forward: overlap-save
---------------------
Cross-correlating with ``w`` is convolving with ``w`` reversed (and dilated).  Of the full convolution
only the indices the outputs read are computed: ``[m0, m1)``.  They come in windows of ``step = F -
span + 1`` indices, each the circular convolution of ``F`` input samples (the window, starting
``span - 1`` samples before its first index) with the kernel, of which the last ``step`` values are
the linear convolution; one window of the whole range when that is cheaper (:func:`block_length`).
The windows go through the engine in steps of a few windows of a few batch items, about
``fourier.chunk_bytes`` of spectra each (a kernel parameter, :mod:`conv1dbench._params`), so that the
working set stays in the cache however long the input, and every window is written into the engine's own
input array once. A step's transforms have a fixed number of rows, the last step's rounded up to a power
of two, so that a new signal length needs no new transforms (no new FFTW plans) beyond a handful.

Threads.  A call large enough (``fourier.spread_min_work``) shares its steps out among the cores: each
thread takes the next step and runs it whole (filling the windows, both transforms on one thread, the
spectral products, storing the outputs), so that every pass over memory runs in parallel, not only
the transforms, and no engine's own threads are woken twice a step.  Smaller calls run their steps
in turn, each transform on the engine's own threads where they pay (:meth:`Engine.threads`).

Every engine's inverse is unnormalised; the outputs are scaled by ``1/F`` as they are stored, as
pocketfft's own inverse does (small integer-valued problems then come out exact, as scipy's tests
ask).  The kernels' spectra are cached per kernel and transform size (:func:`kernel_spectra`), so
that repeated calls with one kernel do not transform it again.

Backward: whole rows
--------------------
The gradients take one transform of each operand's rows, padded to a fast size beyond the full
correlation, products summed over channels, one inverse transform.

Rounding error is spread over all outputs (docs/SPEC.md section 5 states the bound), and so is a NaN or
Inf.  ``backend="auto"`` never lets that happen, and checks nothing beforehand for it: it calls with
``finite=True``, and every transform of an operand is then checked at its zero-frequency bin, the
sum of its samples, which any NaN or Inf among them makes NaN or Inf (no step of a transform turns a
non-finite value finite).  A hit raises :class:`~conv1dbench._backends.NonFiniteInput`, the partial
result is dropped, and auto runs a direct backend instead.  The check reads a few numbers per
transformed row (``results/NOTES.md``, "fft: the finiteness check").  A finite input whose sums
overflow is caught too, rightly: its FFT result would not be finite either.  Integer problems are
computed in float64 and rounded, which is exact only while ``max|x| * sum|w| < 2**40``; beyond that
these backends raise ``ValueError`` rather than return a wrong integer.
"""

from __future__ import annotations

import collections
import functools
import math
import threading

import numpy as np
from numpy.lib.stride_tricks import as_strided

from .. import _params, _threads
from .._core import result_array, spread, valid_range
from .._plan import CORE_DTYPES, output_length
from ..timing import measure_interleaved
from . import NonFiniteInput

#: What ``from ._fourier import *`` gives a backend module: the declarations every FFT backend shares
#: (see :mod:`conv1dbench._backends`).
__all__ = ["AUTO", "CHECKS_FINITE", "CONFINES_NON_FINITE", "COST_FEATURES", "DEVICE", "DTYPES", "EXACT_INTEGERS",
           "RULE", "TAKES_OUT"]
DTYPES = CORE_DTYPES
AUTO = True
DEVICE = False
CONFINES_NON_FINITE = False
CHECKS_FINITE = True
EXACT_INTEGERS = False
RULE = "fourier"
COST_FEATURES = ("call", "fft_work", "spectral_products", "bytes")
TAKES_OUT = ("forward", "backward_input", "backward_weight")

#: Largest ``max|x| * sum|w|`` for which float64 FFT results round to the exact integers.
EXACT_INTEGER_BOUND = 2.0**40
# The bytes of spectra one step of :func:`forward` transforms at once are the kernel parameter
# ``fourier.chunk_bytes`` (:mod:`conv1dbench._params`): a working set that small stays in the cache and,
# as much, in memory the allocator reuses (``results/NOTES.md``, "fft: step size").
#: The block-length model (``results/NOTES.md``, "fft: block length"): a transform of size ``F`` costs
#: ``F (log2 F + TRANSFORM_EXTRA) + ROW_COST``, and beyond the engine's ``cache_points()`` points another
#: ``F * LARGE * octaves**2`` (:class:`Engine`, fitted per engine by ``benchmarks/fft_blocks.py``);
#: cutting into windows adds a pass over the transformed samples, ``OVERLAP`` per sample; a spectral
#: product costs ``PRODUCT``.
TRANSFORM_EXTRA, ROW_COST, OVERLAP, PRODUCT = 3.0, 256.0, 1.0, 2.0
#: The smallest window transform: 2**MIN_SIZE_BITS points (shorter ones are all overhead).
MIN_SIZE_BITS = 4
#: Up to this many samples of full convolution, one window is the plain FFT convolution as
#: ``scipy.signal.fftconvolve`` computes it (no index wraps around): its transform sizes, powers of two
#: at the smallest, give small integer-valued problems exactly, as scipy's own tests ask of it.
PLAIN_MAX = 64
#: Transform sizes, in points, among which :meth:`Engine.fast_size` times its candidates: smaller ones
#: cost too little to matter (and keep scipy's exact small problems), larger ones too much to time in a call.
TIMED_SIZES = (256, 1 << 16)
#: Bytes of kernel spectra kept (:func:`kernel_spectra`), least recently used dropped first; spectra of
#: more than a quarter of it are not kept (a layer's weights at a long transform size would be gigabytes).
KERNEL_CACHE_BYTES = 64 << 20
#: Bytes of transforms (their arrays, and FFTW's plans) one thread keeps for reuse (:meth:`Engine.transform`).
TRANSFORM_CACHE_BYTES = 128 << 20
# The least transform work (``rows * windows * F log2 F``) of a forward call whose steps are spread over
# the cores, each step whole on one thread, is the kernel parameter ``fourier.spread_min_work``
# (``results/NOTES.md``, "FFT engines: steps on every core").


class Transform:
    """A batched transform along the last axis: write :attr:`input`, :meth:`run`, read the result.

    ``kind`` is ``"r2c"`` (real input of ``size`` samples to ``size // 2 + 1`` bins), ``"c2r"`` (its
    inverse), ``"c2c"`` or ``"c2c_inverse"``; inverses are unnormalised.  The result stays valid
    until this transform runs again.
    """

    def __init__(self, kind: str, rows: int, size: int, dtype: np.dtype, threads: int):
        self.kind, self.rows, self.size, self.threads = kind, rows, size, threads
        self.real_dtype = np.dtype(dtype).type(0).real.dtype
        self.complex_dtype = np.result_type(self.real_dtype, np.complex64)
        bins = size // 2 + 1 if kind in ("r2c", "c2r") else size
        self.in_shape = (rows, bins if kind == "c2r" else size)
        self.out_shape = (rows, size if kind == "c2r" else bins)
        self.in_dtype = self.real_dtype if kind == "r2c" else self.complex_dtype
        self.out_dtype = self.real_dtype if kind == "c2r" else self.complex_dtype

    @property
    def nbytes(self) -> int:
        return (math.prod(self.in_shape) * self.in_dtype.itemsize
                + math.prod(self.out_shape) * self.out_dtype.itemsize)

    def run(self) -> np.ndarray:
        raise NotImplementedError


class Engine:
    """What makes transforms: a backend's one difference from the others.

    Subclasses define :meth:`make` (a new :class:`Transform`), :meth:`fast_size`, and name their kernel
    parameters (:mod:`conv1dbench._params`); transforms are kept per thread (:meth:`transform`).
    """

    name = "fft"
    #: The kernel parameter that holds the least ``rows * size * log2(size)`` of one transform for which
    #: the engine's own threads ran it faster (``benchmarks/fft_threads.py``; ``results/NOTES.md``, "FFT
    #: engines: threads"); None: never.  And the least rows (fewer ran no faster at any size).
    PARALLEL_PARAM, PARALLEL_MIN_ROWS = None, 1
    #: The block-length model's cache constants (:data:`TRANSFORM_EXTRA` and the notes there): beyond
    #: the kernel parameter ``CACHE_PARAM``'s points a transform costs ``LARGE * octaves**2`` more per point.
    CACHE_PARAM, LARGE = None, 2.0

    def __init__(self):
        self._local = threading.local()
        self._sizes: dict = {}
        self._sizes_lock = threading.Lock()

    def make(self, kind: str, rows: int, size: int, dtype: np.dtype, threads: int) -> Transform:
        raise NotImplementedError

    def next_fast_len(self, n: int, real: bool) -> int:
        """The least size of at least ``n`` points that the engine calls fast."""
        raise NotImplementedError

    def fast_size(self, n: int, real: bool, dtype=np.float64, timed: bool = True) -> int:
        """The transform size of at least ``n`` points that runs fastest here, of three candidates: the
        engine's :meth:`next_fast_len`, and the least power of two and three times a power of two up to
        the next power of two.  A size an engine calls fast can take several times longer than a slightly
        larger power of two (FFTW: 2025 points 8.3 us, 2048 points 2.4 us; ``results/NOTES.md``, "FFT
        engines: transform sizes"), and which size wins differs by engine, dtype and machine, so each set of
        candidates is timed once per process (sizes within :data:`TIMED_SIZES`; outside, the engine's own).
        ``timed=False``: the engine's own size (for the cost models, which never time anything and plan
        alike whatever ran before).
        """
        own = self.next_fast_len(n, real)
        if not timed or not TIMED_SIZES[0] <= own <= TIMED_SIZES[1]:
            return own
        power = 1 << (n - 1).bit_length()
        candidates = tuple(sorted({own, power} | {3 << b for b in range(power.bit_length()) if n <= 3 << b < power}))
        if len(candidates) == 1:
            return own
        key = (candidates, real, np.dtype(dtype).char)
        with self._sizes_lock:
            if key not in self._sizes:
                self._sizes[key] = self._fastest(candidates, real, dtype)
            return self._sizes[key]

    def _fastest(self, sizes, real, dtype) -> int:
        """Of ``sizes``, the one whose forward transform of one row ran fastest, timed in turn."""
        transforms = [self.make(_kinds(real)[0], 1, size, np.dtype(dtype), 1) for size in sizes]
        for t in transforms:
            t.input[...] = 0
        timings = measure_interleaved([t.run for t in transforms], min_time_s=0.002, min_samples=3, sample_s=2e-4)
        return sizes[int(np.argmin([t.median_s for t in timings]))]

    def threads(self, rows: int, size: int) -> int:
        """Threads that pay for themselves on one transform of ``rows`` rows of ``size`` samples."""
        if self.PARALLEL_PARAM is None or rows < self.PARALLEL_MIN_ROWS:
            return 1
        least = _params.value(self.PARALLEL_PARAM)
        return _threads.cores() if rows * size * math.log2(max(size, 2)) >= least else 1

    def cache_points(self) -> int:
        """The block-length model's transform size beyond which a point costs more (its parameter's value)."""
        return _params.value(self.CACHE_PARAM) if self.CACHE_PARAM else 8192

    def transform(self, slot: str, kind: str, rows: int, size: int, dtype: np.dtype, threads: int) -> Transform:
        """This thread's transform for these arguments, made on first use and kept (least recently used
        dropped beyond :data:`TRANSFORM_CACHE_BYTES`; one larger than that is not kept at all).  ``slot``
        names the operand, so that two operands of one call never share a transform's arrays."""
        cache = getattr(self._local, "cache", None)
        if cache is None:
            cache = self._local.cache = collections.OrderedDict()
        key = (slot, kind, rows, size, np.dtype(dtype).char, threads)
        found = cache.get(key)
        if found is not None:
            cache.move_to_end(key)
            return found
        made = self.make(kind, rows, size, np.dtype(dtype), threads)
        if made.nbytes > TRANSFORM_CACHE_BYTES:  # too large to keep: this call's alone
            return made
        cache[key] = made
        held = sum(t.nbytes for t in cache.values())
        while held > TRANSFORM_CACHE_BYTES:
            held -= cache.popitem(last=False)[1].nbytes
        return made

    def forget(self) -> None:
        """Drop this thread's transforms (tests; a user who wants the memory back)."""
        self._local.cache = collections.OrderedDict()


def _kinds(real: bool) -> tuple[str, str]:
    return ("r2c", "c2r") if real else ("c2c", "c2c_inverse")


def _bins(size: int, real: bool) -> int:
    return size // 2 + 1 if real else size


# -- the plan of a forward call -----------------------------------------------------------------

def _work(engine, length, span, real, rows, kernels, products, block, cache_points, dtype=np.float64, timed=False):
    """``(transforms, products)``: modelled work of covering ``length`` outputs in windows of ``block``."""
    size = engine.fast_size(block + span - 1, real, dtype, timed)
    step = size - span + 1
    n_blocks = -(-length // step)
    return _transforms(engine, size, n_blocks, rows, kernels, cache_points), n_blocks * _bins(size, real) * products


def _transforms(engine, size, n_windows, rows, kernels, cache_points) -> float:
    """Modelled cost of ``rows`` rows in ``n_windows`` windows and ``kernels`` kernels at transform size
    ``size``, on an engine whose transforms cost more per point beyond ``cache_points``."""
    octaves = max(0.0, math.log2(size / cache_points))
    per_row = size * (math.log2(max(size, 2)) + TRANSFORM_EXTRA + engine.LARGE * octaves * octaves) + ROW_COST
    overlap = rows * n_windows * size * OVERLAP if n_windows > 1 else 0.0
    return (rows * n_windows + kernels) * per_row + overlap


def block_length(engine, length, span, real, rows=2, kernels=1, products=1, cache_points=None, dtype=np.float64,
                 timed=False) -> int:
    """Outputs per window: the choice with the least modelled work (:func:`_work`) for the call.

    Candidates: one window of all ``length`` outputs (the plain FFT convolution) and the windows whose
    transform size is a power of two, from twice the kernel span up: every engine is at its best
    there, where the engines' other fast sizes ran up to 40% slower or faster from one size to the
    next (``results/NOTES.md``, "FFT engines: block length").  Short windows waste transform work on
    the kernel's overlap; long ones pay ``log F`` more, and the kernel's own transform.
    ``cache_points``: the engine's (default: its parameter's value in force); ``dtype`` and ``timed``: as
    :meth:`Engine.fast_size` takes them.
    """
    if cache_points is None:
        cache_points = engine.cache_points()

    def cost(n):
        transforms, product_count = _work(engine, length, span, real, rows, kernels, products, n, cache_points,
                                          dtype, timed)
        return transforms + PRODUCT * product_count

    best, best_cost = length, cost(length)
    size = 1 << max(MIN_SIZE_BITS, (2 * span - 1).bit_length())
    while size - span + 1 < length:
        c = cost(size - span + 1)
        if c < best_cost:
            best, best_cost = size - span + 1, c
        size *= 2
    return best


def _counts(batch, c_in, c_out, groups):
    """Rows transformed per window, kernels transformed, and spectral products per frequency."""
    return batch * (c_in + c_out), c_out * (c_in // groups), batch * c_out * (c_in // groups)


def _plan(engine, m0, m1, length, span, batch, c_in, c_out, groups, real, itemsize, timed):
    """:func:`_steps` for this process's cores (:func:`conv1dbench._threads.cores`) and the kernel
    parameters in force."""
    return _steps(engine, m0, m1, length, span, batch, c_in, c_out, groups, real, itemsize, _threads.cores(),
                  _params.value("fourier.chunk_bytes"), _params.value("fourier.spread_min_work"),
                  engine.cache_points(), timed)


@functools.lru_cache(maxsize=1024)
def _steps(engine, m0, m1, length, span, batch, c_in, c_out, groups, real, itemsize, cores, chunk_bytes,
           spread_min_work, cache_points, timed=True):
    """``(size, skip, hop, n_windows, items, windows, spread)`` for full-convolution indices ``[m0, m1)``
    of a signal of ``length`` samples: the transform size; where a window's outputs start in its
    circular convolution, and how many there are (``hop``); the windows; the batch items and windows
    of one step (within ``chunk_bytes`` of spectra); whether the steps are spread over the
    ``cores``.  Window ``j`` starts at sample ``m0 - skip + j*hop``.  ``timed``: transform sizes as
    :meth:`Engine.fast_size` takes them (a call's plan times them; the cost models' does not).

    One window of the whole signal, zero-padded to ``length + span - 1`` samples (the plain FFT
    convolution: no index wraps around), is taken where it is no larger than one overlap-save window
    of all the outputs (``m1 - m0 + span - 1`` samples), in "full" mode say, and on tiny problems
    (:data:`PLAIN_MAX`).

    Spread: where the transforms' work reaches ``spread_min_work``, the steps are shared out
    among the cores, each step whole on one thread (:func:`conv1dbench._threads.fan_out`); a problem
    of fewer steps than cores is cut into that many.
    """
    n_full = m1 - m0
    rows, kernels, products = _counts(batch, c_in, c_out, groups)
    dtype = np.dtype(f"f{itemsize}")
    block = block_length(engine, n_full, span, real, rows, kernels, products, cache_points, dtype, timed)
    size = engine.fast_size(block + span - 1, real, dtype, timed)
    skip, hop = span - 1, size - span + 1
    if block >= n_full:
        plain = engine.fast_size(length + span - 1, real, dtype, timed)
        if plain <= size or length + span - 1 <= PLAIN_MAX:
            size, skip, hop = plain, m0, n_full
    n_windows = -(-n_full // hop)
    window_bytes = max(c_in, c_out) * _bins(size, real) * 2 * itemsize
    per_step = max(1, chunk_bytes // window_bytes)
    if per_step >= n_windows:
        items, windows = min(batch, max(1, per_step // n_windows)), n_windows
    else:
        items, windows = 1, per_step
    work = _spread_work(batch, c_in, c_out, n_windows, size)
    spread = cores > 1 and work >= spread_min_work
    if spread and -(-batch // items) * -(-n_windows // windows) < cores:  # too few steps: cut them
        if batch >= cores:
            items = -(-batch // cores)
        else:
            items, windows = 1, -(-n_windows // -(-cores // batch))
    spread = spread and -(-batch // items) * -(-n_windows // windows) > 1
    return size, skip, hop, n_windows, items, windows, spread


def _spread_work(batch, c_in, c_out, n_windows, size) -> float:
    """The transform work that ``fourier.spread_min_work`` is compared with: ``rows * windows * F log2 F``."""
    return batch * max(c_in, c_out) * n_windows * size * math.log2(max(size, 2))


def spread_work(engine, problem) -> float:
    """:func:`_spread_work` of the forward call of ``problem`` on ``engine`` (0 where it reads only padding):
    what ``tune`` and ``benchmarks/fft_spread.py`` place each problem by against the threshold."""
    plan = _forward_plan(engine, problem)
    return 0.0 if plan is None else _spread_work(problem.batch, problem.c_in, problem.c_out, plan[3], plan[0])


def step_work(engine, problem) -> float:
    """``rows * F log2 F`` of one step's transform in the forward call of ``problem`` on ``engine``, its
    steps taken in turn (0 where it reads only padding): what ``tune`` places each problem by against the
    engine's threads threshold (:meth:`Engine.threads`)."""
    plan = _forward_plan(engine, problem)
    if plan is None:
        return 0.0
    size, _, _, _, items, windows, _ = plan
    return items * max(problem.c_in, problem.c_out) * windows * size * math.log2(max(size, 2))


def _rounded(count: int, most: int) -> int:
    """``count`` rounded up to a power of two, at most ``most``: the rows of a step's transforms."""
    return min(most, 1 << (count - 1).bit_length())


# -- kernels ------------------------------------------------------------------------------------

_kernels: collections.OrderedDict = collections.OrderedDict()
_kernels_lock = threading.Lock()


def kernel_spectra(engine, w, dilation, size, dtype, flip=True, finite=False, what="kernel"):
    """Spectra ``(C_out, C_in // groups, bins)`` of the dilated kernels (reversed if ``flip``) over
    ``size`` samples; cached (read-only) per kernel, engine and size, with whether they are finite
    (checked once, when they are made).  ``finite=True``: NonFiniteInput where they are not."""
    key = (engine.name, w.shape, w.dtype.char, np.dtype(dtype).char, dilation, size, flip)
    c_out, c_per_group, taps = w.shape
    real = np.dtype(dtype).kind == "f"
    spectra_bytes = c_out * c_per_group * _bins(size, real) * 2 * np.dtype(dtype).type(0).real.itemsize
    cacheable = spectra_bytes <= KERNEL_CACHE_BYTES // 4
    found = None
    if cacheable:
        with _kernels_lock:
            for stored, spectra, all_finite in _kernels.get(key, ()):
                if _same_kernel(stored, w):
                    _kernels.move_to_end(key)
                    found = spectra, all_finite
                    break
    if found is None:
        found = _transform_kernel(engine, w, dilation, size, dtype, flip)
        if cacheable:
            _keep_kernel(key, w, *found)
    spectra, all_finite = found
    if finite and not all_finite:
        raise NonFiniteInput(f"{what} holds NaN or Inf (or sums beyond the dtype's range)")
    return spectra


def _same_kernel(stored, w) -> bool:
    """Whether ``w`` holds the kernel ``stored`` holds: up to 64 KiB bit for bit (copying the bytes takes a
    tenth of comparing the values, which took 2 us of a 1023-tap call), beyond by value."""
    if w.nbytes <= 1 << 16:
        return stored.tobytes() == w.tobytes()
    return np.array_equal(stored, w)


def _transform_kernel(engine, w, dilation, size, dtype, flip):
    """``(spectra, finite)`` of :func:`kernel_spectra`, made now."""
    c_out, c_per_group, taps = w.shape
    threads = engine.threads(c_out * c_per_group, size)
    with _threads.claim(threads) as threads:
        t = engine.transform("kernel", _kinds(np.dtype(dtype).kind == "f")[0], c_out * c_per_group, size, dtype,
                             threads)
        rows = t.input.reshape(c_out, c_per_group, size)
        rows.fill(0)
        span = dilation * (taps - 1) + 1
        rows[:, :, :span:dilation] = w[:, :, ::-1] if flip else w
        spectra = t.run().reshape(c_out, c_per_group, -1).copy()
    spectra.flags.writeable = False
    return spectra, bool(np.isfinite(spectra[..., 0]).all())


def _keep_kernel(key, w, spectra, all_finite) -> None:
    with _kernels_lock:
        entries = _kernels.setdefault(key, [])
        entries.append((w.copy(), spectra, all_finite))
        _kernels.move_to_end(key)
        while sum(entry[1].nbytes for entries in _kernels.values() for entry in entries) > KERNEL_CACHE_BYTES:
            oldest = next(iter(_kernels))
            _kernels[oldest].pop(0)
            if not _kernels[oldest]:
                del _kernels[oldest]


def forget_kernels() -> None:
    with _kernels_lock:
        _kernels.clear()


def _witness(**spectra: np.ndarray) -> None:
    """Check the zero-frequency bins (the rows' sums) of each operand's spectra for NaN and Inf."""
    for what, values in spectra.items():
        if not np.isfinite(values[..., 0]).all():
            raise NonFiniteInput(f"{what} holds NaN or Inf (or sums beyond the dtype's range)")


# -- forward ------------------------------------------------------------------------------------

def _integer_dtype(name, x, w):
    """The dtype an integer problem is computed in (float64), or ValueError where it would not be exact."""
    bound = float(np.abs(x, dtype=np.float64).max()) * float(np.abs(w, dtype=np.float64).sum(-1).sum(-1).max())
    if bound >= EXACT_INTEGER_BOUND:
        raise ValueError(
            f"backend {name!r} cannot give exact integers here: max|in1| * sum|in2| = {bound:.3g} "
            f"is not below 2**40; use a direct backend ('numba', 'im2col' or 'naive')")
    return np.dtype(np.float64)


def forward(engine, x, w, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
    """The core cross-correlation on ``engine``; ``finite=True``: NonFiniteInput on NaN/Inf in ``x`` or ``w``."""
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    span = dilation * (taps - 1) + 1
    integer = x.dtype.kind == "i"
    dtype = _integer_dtype(engine.name, x, w) if integer else x.dtype
    if integer:
        x, w = x.astype(dtype), w.astype(dtype)
    y = np.empty((batch, c_out, l_out), dtype) if integer else result_array(out, (batch, c_out, l_out), dtype)

    first, lo, hi, plan = _geometry(engine, length, span, pad_left, stride, l_out, batch, c_in, c_out, groups, dtype)
    y[:, :, :lo] = 0
    y[:, :, hi:] = 0
    if plan is not None:
        _overlap_save(engine, x, w, y, plan, first, lo, hi, stride, span, dilation, groups, finite)
    if integer:
        if out is None:
            return np.rint(y).astype(np.int64)
        np.copyto(out, np.rint(y, out=y), casting="unsafe")
        return out
    return y


def _geometry(engine, length, span, pad_left, stride, l_out, batch, c_in, c_out, groups, dtype, timed=True):
    """``(first, lo, hi, plan)`` of a forward call: output ``l`` is index ``first + l*stride`` of the full
    convolution (``x[i] * kernel[k]`` lands at ``i + k``); outputs ``[lo, hi)`` read a sample, the others
    only padding; ``plan`` is :func:`_plan` of their indices (None where there are none)."""
    first = span - 1 - pad_left
    lo, hi = valid_range(length + span - 1, first, stride, 0, l_out)
    if hi <= lo:
        return first, lo, hi, None
    real = dtype.kind != "c"
    itemsize = dtype.itemsize if real else dtype.itemsize // 2
    return first, lo, hi, _plan(engine, first + lo * stride, first + (hi - 1) * stride + 1, length, span, batch,
                                c_in, c_out, groups, real, itemsize, timed)


def _overlap_save(engine, x, w, y, plan, first, lo, hi, stride, span, dilation, groups, finite):
    """Outputs ``[lo, hi)``, full-convolution indices from ``m0``, in steps of windows (module notes)."""
    batch, c_in, _ = x.shape
    c_out, c_per_group, _ = w.shape
    real = x.dtype.kind == "f"
    m0 = first + lo * stride
    size, skip, hop, n_windows, items, windows, spread = plan
    spectra_w = kernel_spectra(engine, w, dilation, size, x.dtype, finite=finite)
    spectra_w = spectra_w.reshape(groups, c_out // groups, c_per_group, 1, -1)
    forward_kind, inverse_kind = _kinds(real)
    steps = [(b0, j0) for b0 in range(0, batch, items) for j0 in range(0, n_windows, windows)]

    def run(job, threads=1):
        b0, j0 = job
        nb, nw = min(items, batch - b0), min(windows, n_windows - j0)
        rows_b, rows_w = _rounded(nb, items), _rounded(nw, windows)
        t = engine.transform("signal", forward_kind, rows_b * c_in * rows_w, size, x.dtype, threads)
        blocks = t.input.reshape(rows_b, c_in, rows_w, size)[:nb, :, :nw]
        start = m0 - skip + j0 * hop   # the first window's first sample
        _fill_windows(blocks, x[b0:b0 + nb], start, hop)
        spectra = t.run().reshape(rows_b, groups, c_per_group, rows_w, -1)[:nb, :, :, :nw]
        if finite:
            _witness(signal=spectra)
        inverse = engine.transform("products", inverse_kind, rows_b * c_out * rows_w, size, x.dtype, threads)
        products = inverse.input.reshape(rows_b, groups, c_out // groups, rows_w, -1)[:nb, :, :, :nw]
        if c_per_group == 1:  # depthwise or single channel: no channel sum
            np.multiply(spectra, spectra_w.reshape(1, groups, -1, 1, spectra_w.shape[-1]), out=products)
        else:
            np.einsum("bgcnf,gocnf->bgonf", spectra, spectra_w, out=products)
        full = inverse.run().reshape(rows_b, c_out, rows_w, size)[:nb, :, :nw, skip:skip + hop]
        _store(y[b0:b0 + nb], full, 1.0 / size, m0 + j0 * hop, first, stride, lo, hi)

    wanted = _threads.cores() if spread else engine.threads(items * max(c_in, c_out) * windows, size)
    with _threads.claim(wanted) as threads:
        if spread and threads > 1:
            _threads.fan_out(run, steps, threads)
        else:
            for job in steps:
                run(job, threads)


def _fill_windows(blocks, x, start, step):
    """``blocks[b, c, j] = xpad[b, c, start + j*step:][:size]``, ``xpad`` the signal with zeros around it."""
    nb, c_in, nw, size = blocks.shape
    length = x.shape[2]
    stop = start + (nw - 1) * step + size
    if nw == 1:  # one window: the signal and the zeros around it written in place (no view, no segment)
        lo, hi = (min(max(n, 0), size) for n in (-start, length - start))  # the signal's part of it: [lo, hi)
        window = blocks[:, :, 0]
        window[:, :, :lo] = 0
        window[:, :, lo:hi] = x[:, :, start + lo:start + hi]
        window[:, :, hi:] = 0
        return
    if start >= 0 and stop <= length:
        np.copyto(blocks, _windows(x[:, :, start:stop], nw, size, step))
        return
    segment = np.zeros((nb, c_in, stop - start), blocks.dtype)
    a, b = max(start, 0), min(stop, length)
    if b > a:
        segment[:, :, a - start:b - start] = x[:, :, a:b]
    np.copyto(blocks, _windows(segment, nw, size, step))


def _windows(a, count, size, step):
    """The read-only view ``[b, c, j, t] = a[b, c, j*step + t]``: ``count`` windows of ``size`` samples
    (``sliding_window_view(a, size, axis=-1)[:, :, ::step]`` without its checks, which took a tenth of
    a short call)."""
    s0, s1, s2 = a.strides
    return as_strided(a, (a.shape[0], a.shape[1], count, size), (s0, s1, s2 * step, s2), writeable=False)


def _store(y, full, scale, origin, first, stride, lo, hi):
    """Write the outputs among full-convolution indices ``[origin, origin + windows*step)``, whose values
    are ``full[b, o, j, :step] * scale`` (index ``origin + j*step + t``), into ``y``."""
    nb, c_out, nw, step = full.shape  # the window's last `step` values are its outputs
    la = max(lo, -((first - origin) // stride))             # first output at or after `origin`
    lb = min(hi, -((first - origin - nw * step) // stride))
    if lb <= la:
        return
    if stride == 1 and first + la == origin and lb - la == nw * step:  # whole windows: no copy between
        target = y[:, :, la:lb]
        windows = target.reshape(nb, c_out, nw, step)  # splitting an axis: a view (NumPy's as_strided took 2.6 us)
        if not np.may_share_memory(windows, target):  # never seen; NumPy < 2.1 cannot promise it in advance
            s0, s1, s2 = target.strides
            windows = as_strided(target, (nb, c_out, nw, step), (s0, s1, step * s2, s2))
        np.multiply(full, scale, out=windows)
        return
    flat = full.reshape(nb, c_out, nw * step)
    offset = first + la * stride - origin
    np.multiply(flat[:, :, offset:offset + (lb - la - 1) * stride + 1:stride], scale, out=y[:, :, la:lb])


# -- backward -----------------------------------------------------------------------------------

def _float_only(name, dtype) -> None:
    if dtype.kind not in "fc":
        raise TypeError(f"backend {name!r} computes gradients in floating point only, not {dtype}")


def _spectra(engine, slot, a, size, threads):
    """Spectra of the rows of ``a`` (``(rows, n)``, ``n <= size``) zero-padded to ``size``: the
    transform's own array (valid until its next run)."""
    rows, n = a.shape
    t = engine.transform(slot, _kinds(a.dtype.kind == "f")[0], rows, size, a.dtype, threads)
    t.input[:, :n] = a
    t.input[:, n:] = 0
    return t.run()


def backward_input(engine, g, w, length, pad_left, pad_right, stride, dilation, groups, *, finite=False,
                   out=None):
    """``grad_xpad = sum_o g_spread[o] (*) w_dilated[o, c]``: one batched transform of the gradient.

    ``finite=True``: raise NonFiniteInput on NaN/Inf in ``g`` or ``w`` (see the module's notes)."""
    _float_only(engine.name, g.dtype)
    batch, c_out, _ = g.shape
    _, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    span = dilation * (taps - 1) + 1
    g = spread(g, stride)
    real = g.dtype.kind == "f"
    size = engine.fast_size(g.shape[2] + span - 1, real, g.dtype)
    n_full = g.shape[2] + span - 1
    spectra_w = kernel_spectra(engine, w, dilation, size, g.dtype, flip=False, finite=finite, what="weight")
    with _threads.claim(engine.threads(batch * max(c_out, groups * c_per_group), size)) as threads:
        spectra = _spectra(engine, "grad", g.reshape(batch * c_out, -1), size, threads)
        if finite:
            _witness(grad_output=spectra)
        inverse = engine.transform("products", _kinds(real)[1], batch * groups * c_per_group, size, g.dtype, threads)
        np.einsum("bgof,gocf->bgcf", spectra.reshape(batch, groups, out_per_group, -1),
                  spectra_w.reshape(groups, out_per_group, c_per_group, -1),
                  out=inverse.input.reshape(batch, groups, c_per_group, -1))
        full = inverse.run().reshape(batch, groups * c_per_group, size)[..., :n_full]  # grad_xpad, zero beyond
        grad = result_array(out, (batch, groups * c_per_group, length), full.dtype)
        stop = min(length, full.shape[2] - pad_left)
        np.multiply(full[:, :, pad_left:pad_left + stop], 1.0 / size, out=grad[:, :, :stop])
    grad[:, :, stop:] = 0
    return grad


def backward_weight(engine, g, x, taps, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
    """``grad_w[o, c, k]``: lag ``k*dilation`` of the correlation of ``x`` with the spread gradient,
    summed over the batch in the frequency domain; ``finite=True`` as in :func:`backward_input`."""
    _float_only(engine.name, x.dtype)
    batch, c_in, length = x.shape
    c_out = g.shape[1]
    c_per_group, out_per_group = c_in // groups, c_out // groups
    g = spread(g, stride)
    spread_len = g.shape[2]
    real = x.dtype.kind == "f"
    size = engine.fast_size(length + spread_len - 1, real, x.dtype)
    with _threads.claim(engine.threads(batch * max(c_in, c_out), size)) as threads:
        spectra = _spectra(engine, "signal", x.reshape(batch * c_in, -1), size, threads)
        reversed_spectra = _spectra(engine, "grad", g[..., ::-1].reshape(batch * c_out, -1), size, threads)
        if finite:
            _witness(x=spectra, grad_output=reversed_spectra)
        inverse = engine.transform("products", _kinds(real)[1], c_out * c_per_group, size, x.dtype, threads)
        np.einsum("bgcf,bgof->gocf", spectra.reshape(batch, groups, c_per_group, -1),
                  reversed_spectra.reshape(batch, groups, out_per_group, -1),
                  out=inverse.input.reshape(groups, out_per_group, c_per_group, -1))
        full = inverse.run().reshape(c_out, c_per_group, size)  # index m: sum_t x[m - spread_len + 1 + t] * g[t]
        # grad_w[k] needs x[t + k*dilation - pad_left]: index k*dilation - pad_left + spread_len - 1
        index = np.arange(taps) * dilation - pad_left + spread_len - 1
        inside = (index >= 0) & (index < length + spread_len - 1)
        grad = result_array(out, (c_out, c_per_group, taps), full.dtype, zero=True)
        grad[:, :, inside] = full[:, :, index[inside]] * (1.0 / size)
    return grad


def _forward_plan(engine, p):
    """:func:`_plan` of the forward call of problem ``p``, or None where every output reads only padding."""
    return _geometry(engine, p.length, p.dilation * (p.taps - 1) + 1, p.pad_left, p.stride, p.l_out, p.batch,
                     p.c_in, p.c_out, p.groups, p.dtype, timed=False)[3]


def threads(engine, problem) -> int:
    """The threads the call of ``problem`` runs its (main) transforms on, when the cores are free."""
    p = problem
    if p.direction == "forward":
        plan = _forward_plan(engine, p)
        if plan is None:
            return 1
        size, _, _, _, items, windows, spread = plan
        return _threads.cores() if spread else engine.threads(items * max(p.c_in, p.c_out) * windows, size)
    size = engine.fast_size(p.length + p.stride * (p.l_out - 1), p.dtype.kind != "c", timed=False)  # backward_weight's
    return engine.threads(p.batch * max(p.c_in, p.c_out), size)


def work(engine, problem) -> dict:
    """``fft_work`` (``F (log2 F + c)`` over the transforms of the engine's own plan, its windows
    included) and ``spectral_products`` (one per frequency per channel pair)."""
    p = problem
    if p.direction == "forward":
        rows, kernels, products = _counts(p.batch, p.c_in, p.c_out, p.groups)
        plan = _forward_plan(engine, p)
        size, n_windows = (plan[0], plan[3]) if plan is not None else (1, 0)
        transforms = _transforms(engine, size, n_windows, rows, kernels, engine.cache_points())
        spectral = n_windows * _bins(size, p.dtype.kind != "c") * products
    else:  # the gradients: whole-row transforms, one each
        n = p.length + p.taps - 1
        transforms = p.passes * p.batch * (p.c_in + p.c_out) * n * math.log2(max(n, 2))
        spectral = p.passes * p.batch * p.c_out * (p.c_in // p.groups) * n
    return {"fft_work": float(transforms), "spectral_products": float(spectral)}


def functions(engine: Engine) -> tuple:
    """``(forward, backward_input, backward_weight, work, threads)``: the contract's functions for a
    backend on ``engine``, what each backend module binds."""
    def forward_(x, w, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
        return forward(engine, x, w, pad_left, pad_right, stride, dilation, groups, finite=finite, out=out)

    def backward_input_(g, w, length, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
        return backward_input(engine, g, w, length, pad_left, pad_right, stride, dilation, groups, finite=finite,
                              out=out)

    def backward_weight_(g, x, taps, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
        return backward_weight(engine, g, x, taps, pad_left, pad_right, stride, dilation, groups, finite=finite,
                               out=out)

    for function, model in ((forward_, forward), (backward_input_, backward_input),
                            (backward_weight_, backward_weight)):
        function.__name__ = function.__qualname__ = model.__name__
        function.__doc__ = model.__doc__
    return (forward_, backward_input_, backward_weight_, functools.partial(work, engine),
            functools.partial(threads, engine))
