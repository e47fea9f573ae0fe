"""The planner: every public call turned into the one core problem, from shapes and dtypes alone.

Every backend solves one problem (:mod:`conv1dbench._backends`): a batched, grouped, padded, strided,
dilated cross-correlation and its two backward products.  This module is the only place that knows
how a public call becomes that problem, so that every path plans alike: host arrays, device arrays,
Dask, the explicit matrices, :func:`conv1dbench.fastest`, tuning, the cost model and every point of
the benchmark harness.  It takes shapes and dtypes, never arrays (like scipy.signal's
``_inputs_swap_needed``), imports nothing but NumPy, and caches its plans: a repeated call shape is
a dictionary lookup, not a new plan.

Signals (scipy.signal semantics)
--------------------------------
* ``convolve`` is a cross-correlation with the kernel reversed (``flip``); ``correlate`` conjugates
  ``in2`` for complex input (``conjugate_in2``).
* The three modes are three paddings of that cross-correlation with a ``K``-tap kernel
  (:func:`pad_for_mode`): ``"full"`` pads ``K-1`` zeros on both sides, ``"same"`` ``K//2`` before
  and ``(K-1)//2`` after (the centred slice of full starting at ``(K-1)//2``), ``"valid"`` nothing,
  after swapping the operands when ``in2`` is the longer one, as scipy does (``swap``; ``correlate``
  then returns the reversed lags: ``reverse``).
* Leading dimensions broadcast (numpy rules, after moving ``axis`` last); the slices become the
  batch (one kernel), the output channels (one signal), or the groups of a depthwise problem (a
  kernel per slice) of the core problem: the plan's ``layout``.

Layers (torch.nn.functional.conv1d semantics)
---------------------------------------------
The core problem as it is; the planner checks the geometry and settles the padding
(:func:`resolve_padding`).
"""

from __future__ import annotations

import functools
import math
import operator
from dataclasses import dataclass, field

import numpy as np

FORWARD, BACKWARD = "forward", "backward"
MODES = ("full", "same", "valid")
PADDING_STRINGS = ("valid", "same", "full")
#: The dtypes backends compute in: integer and bool inputs are computed in int64.
CORE_DTYPES = frozenset(np.dtype(t) for t in (np.float32, np.float64, np.complex64, np.complex128, np.int64))
SIGNAL_DTYPES = "bool, integer, float16 (computed in float32), float32, float64, complex64 and complex128"
LAYER_DTYPES = "float32, float64, complex64 and complex128"
_INT64, _FLOAT16, _FLOAT32 = np.dtype(np.int64), np.dtype(np.float16), np.dtype(np.float32)
#: dtype.char of every accepted signal input: bool, the integers, float16/32/64, complex64/128.
#: (longdouble is refused: no backend computes in it, and scipy's FFT path does not either.)
_SIGNAL_CHARS = frozenset("?bBhHiIlLqQpPefdFD")
_LAYER_CHARS = frozenset("fdFD")
_PLANS_CACHED = 4096
#: The version of :attr:`Problem.key`; part of the wisdom file's machine fingerprint, so that timings
#: stored under an older key are never misread.
KEY_VERSION = 2


def output_length(length: int, taps: int, pad_left: int, pad_right: int, stride: int = 1,
                  dilation: int = 1) -> int:
    """Output positions of the core cross-correlation (``L_out`` of the layer API)."""
    return (length + pad_left + pad_right - dilation * (taps - 1) - 1) // stride + 1


@dataclass(frozen=True, slots=True)
class Problem:
    """The core problem of one call, by shape only: what every backend computes and auto decides on.

    ``x`` is ``(batch, c_in, length)``, ``w`` is ``(c_out, c_in // groups, taps)``, the output
    ``(batch, c_out, l_out)``; ``direction`` is ``"forward"`` or ``"backward"`` (both gradient
    products).  ``key`` identifies the problem in auto's decisions and in the wisdom file.
    """

    dtype: np.dtype
    batch: int
    c_in: int
    c_out: int
    length: int
    taps: int
    groups: int = 1
    pad_left: int = 0
    pad_right: int = 0
    stride: int = 1
    dilation: int = 1
    direction: str = FORWARD
    l_out: int = field(init=False)
    key: tuple = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        object.__setattr__(self, "dtype", np.dtype(self.dtype))
        l_out = output_length(self.length, self.taps, self.pad_left, self.pad_right, self.stride, self.dilation)
        object.__setattr__(self, "l_out", l_out)
        object.__setattr__(self, "key", (self.dtype.name, self.batch, self.c_in, self.c_out, self.length,
                                         self.taps, self.groups, self.pad_left, self.pad_right, self.stride,
                                         self.dilation, self.direction))

    @property
    def x_shape(self) -> tuple:
        return self.batch, self.c_in, self.length

    @property
    def w_shape(self) -> tuple:
        return self.c_out, self.c_in // self.groups, self.taps

    @property
    def y_shape(self) -> tuple:
        return self.batch, self.c_out, self.l_out

    @property
    def passes(self) -> int:
        """Products per call: the forward one, or the two of the backward pass (grad_x and grad_w)."""
        return 2 if self.direction == BACKWARD else 1

    @property
    def macs(self) -> int:
        """Multiply-adds of one pass over the padded input (what a GEMM of the patches does)."""
        return self.batch * self.c_out * (self.c_in // self.groups) * self.taps * self.l_out

    @property
    def direct_macs(self) -> int:
        """Multiply-adds of the direct method for one pass: the (output, tap) pairs whose input sample is
        a real one, not padding (``"valid"`` with the kernel longer than the signal counts its few
        outputs, not ``N * K``)."""
        offsets = np.arange(self.taps, dtype=np.int64) * self.dilation - self.pad_left  # output 0's sample per tap
        first = np.maximum(0, (self.stride - 1 - offsets) // self.stride)  # first output reading a real sample
        stop = np.minimum(self.l_out, (self.length - 1 - offsets) // self.stride + 1)
        pairs = int(np.clip(stop - first, 0, None).sum())
        return self.batch * self.c_out * (self.c_in // self.groups) * pairs

    @property
    def flops(self) -> float:
        """The one FLOP count of every report, plot and benchmark: two per multiply-add of the direct
        method (:attr:`direct_macs`), for each product of the call (:attr:`passes`)."""
        return 2.0 * self.passes * self.direct_macs

    @property
    def shortest(self) -> int:
        """The shorter of signal and kernel: what decides between direct and FFT methods."""
        return min(self.length, self.taps)

    @property
    def geometry(self) -> tuple:
        """The arguments after the arrays of every backend function but ``taps``/``length``."""
        return self.pad_left, self.pad_right, self.stride, self.dilation, self.groups

    def key_text(self) -> str:
        """:attr:`key` as the text the wisdom file stores (its version: :data:`KEY_VERSION`)."""
        return " ".join(map(str, self.key))


# -- signals ------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class SignalPlan:
    """A ``convolve``/``correlate`` call as the core problem, and how to get there and back.

    The executor moves ``axis`` last, takes ``in2`` as the core signal if ``swap`` (else ``in1``),
    conjugates ``in2`` if ``conjugate_in2``, reverses the kernel if ``flip``, broadcasts the signal
    (kernel) to ``signal_lead`` (``kernel_lead``) when not None, reshapes both to the problem's
    ``x_shape``/``w_shape``, runs, and reshapes the output to ``lead + (l_out,)``, reversed if
    ``reverse``, cast to ``result_dtype``, ``axis`` moved back.
    """

    problem: Problem | None        # None: two 0-d operands, whose product is the result (as in scipy)
    swap: bool
    flip: bool
    conjugate_in2: bool
    reverse: bool
    result_dtype: np.dtype
    lead: tuple
    axis: int
    layout: str                    # "single", "batch", "channels", "depthwise" or "broadcast"
    signal_lead: tuple | None      # broadcast the signal's leading dims to this first (None: as is)
    kernel_lead: tuple | None

    @property
    def moves_axis(self) -> bool:
        return self.axis != len(self.lead)

    @property
    def out_shape(self) -> tuple:
        """The result's shape, ``axis`` in its place (``()`` for two 0-d operands)."""
        if self.problem is None:
            return ()
        shape = self.lead + (self.problem.l_out,)
        return shape[:self.axis] + shape[-1:] + shape[self.axis:-1] if self.moves_axis else shape



def signal_dtypes(dtype1, dtype2) -> tuple[np.dtype, np.dtype]:
    """``(result dtype, core dtype)`` of a signal call; TypeError naming an unsupported operand.

    Integers and bool compute in int64, float16 in float32 (scipy's result dtype, float16, keeps).
    """
    for name, dtype in (("in1", dtype1), ("in2", dtype2)):
        if dtype.char not in _SIGNAL_CHARS:
            raise TypeError(f"{name} has unsupported dtype {dtype}; supported dtypes are {SIGNAL_DTYPES}")
    result = dtype1 if dtype1 == dtype2 else np.result_type(dtype1, dtype2)
    if not result.isnative:
        result = result.newbyteorder("=")
    return result, (_INT64 if result.kind in "biu" else _FLOAT32 if result == _FLOAT16 else result)


def check_mode(mode) -> str:
    if not isinstance(mode, str):
        raise TypeError(f"mode must be a string, one of {', '.join(map(repr, MODES))}; got {mode!r}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; known modes are {', '.join(map(repr, MODES))}")
    return mode


def check_axis(axis, ndim: int) -> int:
    axis = operator.index(axis)
    if not -ndim <= axis < ndim:
        raise ValueError(f"axis {axis} is out of range for in1 with {ndim} dimension(s)")
    return axis % ndim


def pad_for_mode(mode: str, taps: int) -> tuple[int, int]:
    """Zeros before and after the signal that turn a ``taps``-tap cross-correlation into ``mode``."""
    if mode == "full":
        return taps - 1, taps - 1
    if mode == "same":
        return taps // 2, (taps - 1) // 2
    return 0, 0


def swaps(mode: str, n: int, taps: int) -> bool:
    """Whether scipy swaps the operands: ``"valid"`` mode with the kernel the longer one."""
    return mode == "valid" and taps > n


def plan_signal(op: str, shape1: tuple, shape2: tuple, dtype1, dtype2, mode="full", axis=-1) -> SignalPlan:
    """The plan of ``op(in1, in2, mode, axis=axis)`` for operands of these shapes and dtypes.

    Raises the errors the public functions document (empty or 0-d operands, unknown mode, axis out
    of range, leading shapes that do not broadcast, unsupported dtypes).  Plans are cached.
    """
    if type(mode) is not str:
        check_mode(mode)  # raises the TypeError that names the problem (and keeps lists out of the cache)
    return _plan_signal(op, tuple(shape1), tuple(shape2), np.dtype(dtype1), np.dtype(dtype2), mode, axis)


@functools.lru_cache(maxsize=_PLANS_CACHED)
def _plan_signal(op, shape1, shape2, dtype1, dtype2, mode, axis) -> SignalPlan:
    check_mode(mode)
    if op not in ("convolve", "correlate"):
        raise ValueError(f"unknown signal operation {op!r}; use 'convolve' or 'correlate'")
    result_dtype, core_dtype = signal_dtypes(dtype1, dtype2)
    conjugate = op == "correlate" and dtype2.kind == "c"
    if not shape1 and not shape2:  # scipy: the product (correlate: with in2 conjugated), whatever the mode
        return SignalPlan(None, False, False, conjugate, False, result_dtype, (), 0, "scalar", None, None)
    for name, shape in (("in1", shape1), ("in2", shape2)):
        if not shape:
            raise ValueError(f"{name} is 0-d and the other operand is not; two 0-d operands give their product, "
                             f"otherwise both need at least one dimension")
        if math.prod(shape) == 0:
            raise ValueError(f"{name} is empty (shape {shape})")
    ndim = len(shape1)
    axis = check_axis(axis, ndim)
    if len(shape2) > ndim:
        raise ValueError(f"in2 has {len(shape2)} dimensions, more than in1's {ndim}")
    x_shape = _moved_last(shape1, axis)
    w_shape = _moved_last(shape2, axis) if len(shape2) == ndim else shape2
    try:
        lead = np.broadcast_shapes(x_shape[:-1], w_shape[:-1])
    except ValueError:
        raise ValueError(f"the leading shapes of in1 {x_shape[:-1]} and in2 {w_shape[:-1]} (the axis moved "
                         f"last) do not broadcast") from None
    swap = swaps(mode, x_shape[-1], w_shape[-1])
    s_shape, k_shape = (w_shape, x_shape) if swap else (x_shape, w_shape)
    n, taps = s_shape[-1], k_shape[-1]
    layout, batch, channels, c_out, groups, signal_lead, kernel_lead = _layout(s_shape[:-1], k_shape[:-1], lead)
    pad_left, pad_right = pad_for_mode(mode, taps)
    problem = Problem(core_dtype, batch, channels, c_out, n, taps, groups, pad_left, pad_right)
    return SignalPlan(problem, swap, op == "convolve", conjugate, swap and op == "correlate", result_dtype, lead,
                      axis, layout, signal_lead, kernel_lead)


def _moved_last(shape: tuple, axis: int) -> tuple:
    return shape if axis == len(shape) - 1 else shape[:axis] + shape[axis + 1:] + shape[axis:axis + 1]


def _layout(s_lead: tuple, k_lead: tuple, lead: tuple):
    """How the slices map onto the core problem: ``(layout, batch, c_in, c_out, groups, s_to, k_to)``.

    ``s_to``/``k_to``: the leading shape the signal/kernel must be broadcast to first (None: none).
    """
    slices, rows_s, rows_k = math.prod(lead), math.prod(s_lead), math.prod(k_lead)
    if not lead or slices == 1:
        return "single", 1, 1, 1, 1, None, None
    if rows_k == 1:                      # one kernel: the slices are the batch
        return "batch", slices, 1, 1, 1, (None if s_lead == lead else lead), None
    if rows_s == 1:                      # one signal: the slices are output channels
        return "channels", 1, 1, slices, 1, None, (None if k_lead == lead else lead)
    trailing = _without_leading_ones(k_lead)
    if s_lead == lead and trailing == lead[len(lead) - len(trailing):]:
        # a kernel per slice of the last leading dimensions, the signals as they are: a batched
        # depthwise problem, neither operand repeated
        return "depthwise", rows_s // rows_k, rows_k, rows_k, rows_k, None, None
    # both vary, and one must be repeated: a depthwise problem over all slices
    return ("broadcast", 1, slices, slices, slices, (None if s_lead == lead else lead),
            (None if k_lead == lead else lead))


def _without_leading_ones(shape: tuple) -> tuple:
    while shape and shape[0] == 1:
        shape = shape[1:]
    return shape


# -- layers -------------------------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class LayerPlan:
    """A ``conv1d``/``conv1d_backward`` call as the core problem."""

    problem: Problem
    unbatched: bool        # x was (C_in, L): results lose the batch dimension, as in torch
    dtype: np.dtype        # of the result (and of the core problem)

    @property
    def grad_output_shape(self) -> tuple:
        """The shape of the layer's output (and of ``grad_output``)."""
        p = self.problem
        return p.y_shape[1:] if self.unbatched else p.y_shape

    @property
    def grad_x_shape(self) -> tuple:
        p = self.problem
        return p.x_shape[1:] if self.unbatched else p.x_shape


def layer_dtype(x_dtype, w_dtype) -> np.dtype:
    """The result dtype of a layer; TypeError naming an operand that is not float or complex."""
    for name, dtype in (("x", x_dtype), ("weight", w_dtype)):
        check_layer_dtype(dtype, name)
    return np.result_type(x_dtype, w_dtype).newbyteorder("=")


def check_layer_dtype(dtype, name: str) -> None:
    if np.dtype(dtype).char not in _LAYER_CHARS:
        raise TypeError(f"{name} has unsupported dtype {dtype}; layers take {LAYER_DTYPES}")


def at_least_one(value, name: str, one_tuple: bool = False) -> int:
    """``value`` as an int of at least 1: an int, or where ``one_tuple`` (stride and dilation, as torch takes
    them) a 1-tuple too; ValueError or TypeError naming ``name`` otherwise."""
    if one_tuple and isinstance(value, (tuple, list)):
        if len(value) != 1:
            raise ValueError(f"{name} must be an int or a 1-tuple, got {len(value)} values {tuple(value)!r}")
        value = value[0]
    number = _integer(value, name)
    if number < 1:
        raise ValueError(f"{name} must be at least 1, got {number}")
    return number


def _integer(value, name: str) -> int:
    """``value`` as an int (anything with ``__index__``: no floats), or TypeError naming ``name``."""
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {value!r} of type {type(value).__name__}") from None


def resolve_padding(padding, taps: int, stride: int = 1, dilation: int = 1) -> tuple[int, int]:
    """Zeros ``(left, right)`` for a padding argument: an int, a 1-tuple (as torch), a pair, or a padding
    string.

    ``"same"`` pads ``dilation*(K-1)`` in total, ``total // 2`` on the left (as torch does), and needs
    stride 1; ``"full"`` pads ``dilation*(K-1)`` on both sides; ``"valid"`` pads nothing.
    """
    span = dilation * (taps - 1)
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0
        if padding == "full":
            return span, span
        if padding == "same":
            if stride != 1:
                raise ValueError(f"padding='same' needs stride 1, got stride={stride}")
            return span // 2, span - span // 2
        raise ValueError(f"unknown padding {padding!r}; use an int, a (left, right) pair, or one of "
                         f"{', '.join(map(repr, PADDING_STRINGS))}")
    if isinstance(padding, (tuple, list)):
        if len(padding) not in (1, 2):
            raise ValueError(f"padding must be an int, a 1-tuple (p,) as torch takes it, or a (left, right) pair; "
                             f"got {len(padding)} values {tuple(padding)!r}")
        left, right = (_integer(p, "padding") for p in (padding * 2)[:2])
    else:
        left = right = _integer(padding, "padding")
    if left < 0 or right < 0:
        raise ValueError(f"padding must not be negative, got ({left}, {right})")
    return left, right


def padding_from_text(text: str):
    """A padding argument from its text form (the harness's ``mode`` column): ``"same"`` or ``"3"``."""
    return text if text in PADDING_STRINGS else int(text)


def plan_layer(x_shape: tuple, w_shape: tuple, dtype, stride=1, padding=0, dilation=1, groups=1,
               direction: str = FORWARD) -> LayerPlan:
    """The plan of a layer call with ``x`` and ``weight`` of these shapes, computing in ``dtype``.

    Raises ``ValueError`` with the offending numbers for every bad shape or argument (the layer
    API's documented errors).  Plans are cached.
    """
    padding, stride, dilation = (tuple(a) if isinstance(a, list) else a for a in (padding, stride, dilation))
    return _plan_layer(tuple(x_shape), tuple(w_shape), np.dtype(dtype), stride, padding, dilation, groups, direction)


@functools.lru_cache(maxsize=_PLANS_CACHED)
def _plan_layer(x_shape, w_shape, dtype, stride, padding, dilation, groups, direction) -> LayerPlan:
    if len(x_shape) not in (2, 3):
        raise ValueError(f"x must be (B, C_in, L) or (C_in, L); got {len(x_shape)} dimensions, shape {x_shape}")
    if len(w_shape) != 3:
        raise ValueError(f"weight must be (C_out, C_in // groups, K); got shape {w_shape}")
    stride = at_least_one(stride, "stride", one_tuple=True)
    dilation = at_least_one(dilation, "dilation", one_tuple=True)
    groups = at_least_one(groups, "groups")
    unbatched = len(x_shape) == 2
    batch, c_in, length = (1,) + x_shape if unbatched else x_shape
    c_out, c_per_group, taps = w_shape
    if min(batch, c_in, length, c_out, c_per_group, taps) == 0:
        raise ValueError(f"empty input: x has shape {x_shape}, weight has shape {w_shape}")
    if c_in % groups or c_out % groups:
        raise ValueError(f"groups={groups} must divide both C_in={c_in} and C_out={c_out}")
    if c_per_group * groups != c_in:
        raise ValueError(f"weight has {c_per_group} input channels per group, but x has C_in={c_in} "
                         f"and groups={groups}, which needs {c_in // groups}")
    pad_left, pad_right = resolve_padding(padding, taps, stride, dilation)
    problem = Problem(dtype, batch, c_in, c_out, length, taps, groups, pad_left, pad_right, stride, dilation,
                      direction)
    if problem.l_out < 1:
        raise ValueError(f"no output positions: L={length} padded by ({pad_left}, {pad_right}) is shorter "
                         f"than the dilated kernel dilation*(K-1)+1={dilation * (taps - 1) + 1}")
    return LayerPlan(problem, unbatched, dtype)
