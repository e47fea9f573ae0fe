"""``fastest``: the backend ``backend="auto"`` would run for a call, without running it."""

from __future__ import annotations

import inspect

import numpy as np

from . import _api, _auto, _device, _layer
from ._kinds import DEVICE, array_kind
from ._plan import BACKWARD, FORWARD, plan_signal
from ._select import DIRECT_MAX_TAPS

_OPS = {"convolve": _api.convolve, "correlate": _api.correlate, "conv1d": _api.conv1d,
        "conv1d_backward": _api.conv1d_backward}


def bind(op, args, kwargs) -> tuple[str, dict]:
    """``(name, arguments)`` of a call ``op(*args, **kwargs)``, defaults applied (TypeError names a bad one)."""
    name = op if isinstance(op, str) else getattr(op, "__name__", None)
    if name not in _OPS:
        raise ValueError(f"unknown op {op!r}; use one of {', '.join(map(repr, _OPS))}")
    call = inspect.signature(_OPS[name]).bind(*args, **kwargs)
    call.apply_defaults()
    return name, call.arguments


def plan_call(name: str, a: dict):
    """The core problem of a bound call and the operands whose finiteness matters, without running it."""
    if name in ("convolve", "correlate"):
        in1, in2 = (v if hasattr(v, "shape") and hasattr(v, "dtype") else np.asarray(v) for v in (a["in1"], a["in2"]))
        plan = plan_signal(name, tuple(in1.shape), tuple(in2.shape), in1.dtype, in2.dtype, a["mode"], a["axis"])
        if plan.problem is None:
            raise ValueError(f"no backend runs {name} of two 0-d operands: the result is their product")
        return plan.problem, (in1, in2)
    x, w = (v if hasattr(v, "shape") and hasattr(v, "dtype") else np.asarray(v) for v in (a["x"], a["weight"]))
    direction = BACKWARD if name == "conv1d_backward" else FORWARD
    operands = (x, w, a["grad_output"]) if direction == BACKWARD else (x, w)  # FFT must not spread its NaN either
    return _layer.plan(x, w, a["stride"], a["padding"], a["dilation"], a["groups"], direction).problem, operands


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
    Nothing is computed, except on the first sight of a problem whose candidates auto times (by
    default the close ones: :func:`conv1dbench.configure_auto`): then they are timed here, exactly
    as the call itself would time them, so that ``fastest`` and ``backend="auto"`` always agree.

    Examples
    --------
    Which backend wins depends on the machine; the name is always one of :func:`conv1dbench.backends`:

    >>> import numpy as np, conv1dbench as cb
    >>> cb.fastest("convolve", np.ones(100_000), np.ones(3)) in cb.backends()
    True

    Without cost models or timings auto falls back on its rule, the same everywhere: direct for short
    kernels, FFT for long ones.

    >>> with cb.auto_settings(models={}, measured={}):
    ...     cb.fastest("convolve", np.ones(100_000), np.ones(3)), cb.fastest(cb.correlate, np.ones(100_000),
    ...                                                                    np.ones(5000))
    ('numba', 'fft')
    """
    name, a = bind(op, args, kwargs)
    named = (("in1", a["in1"]), ("in2", a["in2"])) if name in ("convolve", "correlate") else (("x", a["x"]),
                                                                                            ("weight", a["weight"]))
    device = array_kind(*(value for _, value in named)) == DEVICE
    if device:  # checked as the call would check them
        named = tuple(zip((label for label, _ in named), _device.operands("auto", *named)[1], strict=True))
        a = {**a, **dict(named)}
    problem, arrays = plan_call(name, a)
    if device:
        choice, reason, details = _device.device_backend("auto"), _device.DEVICE_RULE, {}
    else:
        choice, reason, details = _auto.choose(problem, arrays)
    if not explain:
        return choice
    return choice, {"rule": reason, "shortest": problem.shortest, "direct_max_taps": DIRECT_MAX_TAPS[problem.dtype],
                    **details}
