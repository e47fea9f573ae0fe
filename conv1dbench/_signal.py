"""``convolve`` and ``correlate`` on host arrays: the planner's plan carried out, and undone, and a
short path for repeated short calls.

The plan (:func:`conv1dbench._plan.plan_signal`) says everything; this module only moves the axis,
conjugates, swaps, flips, broadcasts and reshapes the operands into the core problem, runs it (on
the named backend, or on auto's choice), and turns the core output back into scipy's result.
"""

from __future__ import annotations

import numpy as np

from . import _auto, _params
from ._plan import SignalPlan, plan_signal
from ._registry import get_backend, module, takes_out
from ._threads import claim


def host_array(value) -> np.ndarray:
    return value if type(value) is np.ndarray else np.asarray(value)


def checked_out(out, shape: tuple, dtype: np.dtype, operands=(), name: str = "out"):
    """``out`` if it can take a result of ``shape`` and ``dtype`` (None: there is none to write into).

    It must be a C-contiguous, writeable NumPy array of exactly that shape and dtype, sharing no
    memory with an operand; otherwise ``TypeError`` or ``ValueError`` says what was expected, and
    ``out`` is left untouched (the check comes before any computing).
    """
    if out is None:
        return None
    expected = f"a C-contiguous, writeable numpy.ndarray of shape {shape} and dtype {dtype}"
    if type(out) is not np.ndarray:
        raise TypeError(f"{name} must be {expected}; got {type(out).__name__}")
    if out.shape != shape or out.dtype != dtype:
        raise ValueError(f"{name} must be {expected}; got shape {out.shape} and dtype {out.dtype}")
    if not out.flags.c_contiguous or not out.flags.writeable:
        raise ValueError(f"{name} must be {expected}; got one that is "
                         f"{'not C-contiguous' if not out.flags.c_contiguous else 'read-only'}")
    for operand in operands:
        if isinstance(operand, np.ndarray) and np.shares_memory(out, operand):
            raise ValueError(f"{name} overlaps an input; it must be {expected} of its own")
    return out


def into(out, result):
    """The result, written into ``out`` where one is given."""
    if out is None:
        return result
    np.copyto(out, result)
    return out


class Direct:
    """A user's ``out`` as the core output a backend writes straight into (see ``TAKES_OUT`` in
    :mod:`conv1dbench._backends`), and whether the last call that returned did so.

    ``core`` is None where there is nothing to write straight into (no ``out``, or a result that is
    not a plain reshape of the core output); a backend that does not take ``out`` computes into a
    new array, which the front end copies into the user's ``out``.
    """

    def __init__(self, core: np.ndarray | None):
        self.core, self.written = core, False

    def options(self, backend, function: str, options: dict) -> dict:
        """``options`` plus ``out`` for ``backend.function`` where it writes into it."""
        self.written = self.core is not None and takes_out(backend, function)
        return {**options, "out": self.core} if self.written else options


def core_operands(plan: SignalPlan, in1: np.ndarray, in2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The core ``(x, w)`` of a call: C-contiguous, of the core dtype."""
    x = np.moveaxis(in1, plan.axis, -1) if plan.moves_axis else in1
    w = np.moveaxis(in2, plan.axis, -1) if plan.moves_axis and in2.ndim == in1.ndim else in2
    if plan.conjugate_in2:
        w = np.conj(w)
    signal, kernel = (w, x) if plan.swap else (x, w)
    if plan.flip:
        kernel = kernel[..., ::-1]
    if plan.signal_lead is not None:
        signal = np.broadcast_to(signal, plan.signal_lead + signal.shape[-1:])
    if plan.kernel_lead is not None:
        kernel = np.broadcast_to(kernel, plan.kernel_lead + kernel.shape[-1:])
    p = plan.problem
    return (np.ascontiguousarray(signal.reshape(p.x_shape), dtype=p.dtype),
            np.ascontiguousarray(kernel.reshape(p.w_shape), dtype=p.dtype))


def finish(plan: SignalPlan, y: np.ndarray) -> np.ndarray:
    """The core output ``(B, C_out, L_out)`` as the public result: shape, order, dtype, axis."""
    y = y.reshape(plan.lead + y.shape[-1:])
    if plan.reverse:
        y = y[..., ::-1]
    if plan.result_dtype.kind == "b":
        y = y != 0
    elif plan.result_dtype != y.dtype:
        y = y.astype(plan.result_dtype)  # integers: wraps exactly as the result dtype would
    if plan.moves_axis:
        y = np.moveaxis(y, -1, plan.axis)
    return np.ascontiguousarray(y)


#: The dtypes of the short-call path: one float dtype for both operands, in native byte order.
_SHORT_DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def run(op: str, in1, in2, mode, axis, backend, out=None):
    """``op(in1, in2, mode, axis=axis)`` on host arrays, on ``backend`` (or auto's choice), into ``out``."""
    if type(in1) is np.ndarray and type(in2) is np.ndarray:
        return run_arrays(op, in1, in2, mode, axis, backend, out)
    return _run_planned(op, in1, in2, mode, axis, backend, out)


def run_arrays(op: str, in1: np.ndarray, in2: np.ndarray, mode, axis, backend, out=None):
    """:func:`run` for two operands of type ``numpy.ndarray`` exactly (the caller has checked).

    The commonest call (two 1-D C-contiguous arrays of one native float dtype, the last axis, no
    ``out``) that was planned before runs from the shortcut cache (:func:`_remember_shortcut`): one
    dictionary lookup instead of the plan's steps, and one call into the backend's compiled code
    (its ``forward_1d``).  The key holds the shapes themselves, so that only 1-D operands can match
    it, and both dtypes, so that only the one float dtype it was made for can; ``in1.ndim`` is tested
    only so that batched calls, which never match, skip building the key.
    """
    if out is None and axis == -1 and in1.ndim == 1:
        key = (op, in1.shape, in2.shape, in1.dtype, in2.dtype, mode, backend)
        try:
            entry = _auto.shortcuts().get(key)
        except TypeError:  # an unhashable mode or backend: the full path below names the problem
            entry = None
        if entry is not None and in1.flags.c_contiguous and in2.flags.c_contiguous:
            forward_1d, extra, made_under, shortcut_1d, threads_1d, swap, flip, pad_left, pad_right, reverse, \
                threads = entry
            if swap:
                in1, in2 = in2, in1
            values = _params.values()
            if made_under is not values:  # the kernel parameters changed since: asked again, and kept
                forward_1d, extra = shortcut_1d()
                threads = 1 if threads_1d(in1.shape[0], in2.shape[0], pad_left, pad_right) == 1 else 0
                _auto.shortcuts()[key] = (forward_1d, extra, values, shortcut_1d, threads_1d, swap, flip, pad_left,
                                          pad_right, reverse, threads)
            if threads:  # one thread: this shape is too small for more
                y = forward_1d(in1, in2, flip, pad_left, pad_right, threads, *extra)
            else:
                with claim(threads_1d(in1.shape[0], in2.shape[0], pad_left, pad_right)) as granted:
                    y = forward_1d(in1, in2, flip, pad_left, pad_right, granted, *extra)
            return y[::-1].copy() if reverse else y
    return _run_planned(op, in1, in2, mode, axis, backend, out)


def _run_planned(op: str, in1, in2, mode, axis, backend, out):
    """The full path: planned, checked, carried out and undone; a 1-D float call leaves its shortcut."""
    in1, in2 = host_array(in1), host_array(in2)
    plan = plan_signal(op, in1.shape, in2.shape, in1.dtype, in2.dtype, mode, axis)
    out = checked_out(out, plan.out_shape, plan.result_dtype, (in1, in2))
    if plan.problem is None:  # two 0-d operands: their product, a NumPy scalar, as scipy gives it
        return into(out, in1 * (np.conj(in2) if plan.conjugate_in2 else in2))
    x, w = core_operands(plan, in1, in2)
    p = plan.problem
    plain = not plan.reverse and not plan.moves_axis and plan.result_dtype == p.dtype
    direct = Direct(out.reshape(p.y_shape) if out is not None and plain else None)

    def forward(name, **options):
        chosen = get_backend(name, p.dtype)
        return chosen.forward(x, w, *p.geometry, **direct.options(chosen, "forward", options))

    y = _auto.run(p, backend, forward, (x, w))
    y = out if direct.written else into(out, finish(plan, y))
    if (out is None and axis == -1 and plan.layout == "single" and in1.ndim == 1 and in2.ndim == 1
            and in1.dtype == in2.dtype and in1.dtype in _SHORT_DTYPES):
        _remember_shortcut(op, in1, in2, mode, backend, plan)
    return y


def _remember_shortcut(op, in1, in2, mode, backend, plan: SignalPlan) -> None:
    """Keep what this call ran for the next call of the same shapes (see :func:`run_arrays`).

    A shape with no shortcut (the backend that runs it has no ``forward_1d``, or finiteness could
    change it) is remembered as None, so that its calls do not ask again each time; one that has a
    shortcut but met non-contiguous operands keeps it.
    """
    shortcuts = _auto.shortcuts()
    key = (op, in1.shape, in2.shape, in1.dtype, in2.dtype, mode, backend)  # as run_arrays looks it up
    if key in shortcuts:
        return
    name = _auto.runs_first(plan.problem, backend)
    declared = module(name) if name is not None else None
    if declared is None or not hasattr(declared, "shortcut_1d"):
        shortcuts[key] = None
        return
    p, chosen = plan.problem, get_backend(name, plan.problem.dtype)
    threads = chosen.threads_1d(p.length, p.taps, p.pad_left, p.pad_right)  # 1 stays right for this shape
    # Its compiled code loaded now, on one sample (from Numba's cache, once per dtype): else the second
    # call would pay it, and a timing that calibrates on its second call would mistake it for the call's
    # own time (results/NOTES.md, "short calls: the shortcut's code loaded with the first call").
    one = np.zeros(1, dtype=p.dtype)
    values = _params.values()
    forward_1d, extra = chosen.shortcut_1d()  # under the kernel parameters in force (asked again if they change)
    forward_1d(one, one, plan.flip, 0, 0, 1, *extra)
    # a plain tuple, unpacked by position in run_arrays (a NamedTuple's unpacking cost 0.1 us of a 2 us call)
    shortcuts[key] = (forward_1d, extra, values, chosen.shortcut_1d, chosen.threads_1d, plan.swap, plan.flip,
                      p.pad_left, p.pad_right, plan.reverse, 1 if threads == 1 else 0)
