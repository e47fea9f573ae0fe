"""``fastest``: the backend ``backend="auto"`` would run for a call, without running it."""

from __future__ import annotations

import inspect

import numpy as np

from . import _layer, _signal
from ._device import DEVICE_RULE, any_on_device, cuda_module
from ._select import DIRECT_MAX_TAPS


def fastest(op, *args, explain: bool = False, **kwargs):
    """The backend ``backend="auto"`` would use for ``op(*args, **kwargs)``, without running it.

    Parameters
    ----------
    op : {"convolve", "correlate", "conv1d", "conv1d_backward"} or the function itself
    *args, **kwargs
        The arguments that call would take (a ``backend`` argument is accepted and ignored).
    explain : bool
        Also return the reason behind the choice.

    Returns
    -------
    str or (str, dict)
        The backend name; with ``explain=True`` also ``{"rule": ..., "shortest": ...,
        "direct_max_taps": ...}`` plus ``"predicted_s"`` (the cost models' predictions per
        backend) or ``"measured_s"`` (this machine's timings of exactly this problem): how the
        choice was made and the numbers behind it.

    Notes
    -----
    Nothing is computed, except with ``configure_auto(measure=True)`` on the first sight of a
    problem: then the candidates are timed here, exactly as the call itself would time them, so
    that ``fastest`` and ``backend="auto"`` always agree.

    Examples
    --------
    >>> import numpy as np, conv1dbench as cb
    >>> cb.fastest("convolve", np.ones(100_000), np.ones(3))
    'numba'
    >>> cb.fastest(cb.correlate, np.ones(100_000), np.ones(5000))
    'fft'
    """
    functions = {"convolve": _signal.convolve, "correlate": _signal.correlate,
                 "conv1d": _layer.conv1d, "conv1d_backward": _layer.conv1d_backward}
    name = op if isinstance(op, str) else getattr(op, "__name__", None)
    if name not in functions:
        raise ValueError(f"unknown op {op!r}; fastest knows {', '.join(map(repr, functions))}")
    call = inspect.signature(functions[name]).bind(*args, **kwargs)  # TypeError names a bad argument
    call.apply_defaults()
    a = call.arguments
    if name in ("convolve", "correlate") and any_on_device(a["in1"], a["in2"]):
        _, (x, w) = cuda_module("auto", ("in1", a["in1"]), ("in2", a["in2"]))  # checks, as the call would
        choice, reason, details = "cuda", DEVICE_RULE, {}
        shortest, dtype = min(tuple(x.shape)[-1], tuple(w.shape)[-1]), np.dtype(x.dtype)
    elif name in ("convolve", "correlate"):
        problem = _signal.prepare(name, a["in1"], a["in2"], a["mode"], a["axis"])
        choice, reason, details = _signal.backend_for(problem, "auto")
        shortest, dtype = problem.shortest, problem.x.dtype
    else:
        problem = _layer.prepare(a["x"], a["weight"], a["stride"], a["padding"], a["dilation"], a["groups"])
        direction = "backward" if name == "conv1d_backward" else "forward"
        also = (a["grad_output"],) if direction == "backward" else ()  # FFT must not spread its NaN either
        choice, reason, details = _layer.backend_for(problem, "auto", direction, also=also)
        shortest, dtype = min(problem.x.shape[2], problem.w.shape[2]), problem.dtype
    if not explain:
        return choice
    return choice, {"rule": reason, "shortest": shortest, "direct_max_taps": DIRECT_MAX_TAPS[dtype], **details}
