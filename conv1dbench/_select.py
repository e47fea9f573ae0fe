"""What ``backend="auto"`` runs: measured where measured, predicted elsewhere, never FFT on NaN/Inf.

For a core problem (:mod:`conv1dbench._core`) auto decides, in this order:

1. **Integer input** runs direct (``numba``): exact for any magnitude, where FFT is not.
2. **Measured**: this machine's wisdom (:mod:`conv1dbench._wisdom`) holds timings of several
   backends on exactly this problem (from ``conv1dbench tune``, a harness run, or ``measure=True``):
   the fastest of them.
3. **Predicted**: each backend's cost model (:mod:`conv1dbench._model`) predicts the time, and the
   fastest prediction wins.  The models are this machine's, fitted from its wisdom, where it has
   enough measurements, else the defaults shipped with the package (fitted on the project's
   benchmark machine).
4. **Rule** (no model for this dtype and direction): direct (``numba``, or ``im2col`` for
   GEMM-sized layers) when the shorter operand has at most :data:`DIRECT_MAX_TAPS` samples, else FFT.

Whatever wins, an input holding NaN or Inf never runs to the end on ``fft``: FFT spreads a
non-finite value to every output, where a direct method keeps it in the windows that touch it (SPEC
section 1).  A call (:func:`run`) lets the fft backend find it, at no cost, in the transforms it
makes anyway, and runs the best direct backend when it does; :func:`conv1dbench.fastest`, which
runs nothing, reads the operands.

A decision is cached per problem (shapes, dtype, geometry, direction), so a repeated call costs a
dictionary lookup.  ``configure_auto(measure=True)`` makes auto time the candidates on the first
sight of a problem with no measurement, and remember the winner in the wisdom file.
"""

from __future__ import annotations

import json
import time

import numpy as np

from . import _model, _wisdom
from ._core import NonFiniteInput
from ._registry import BACKEND_NAMES, get_backend, is_available

#: Longest kernel (shorter operand) for which the rule runs direct, per core dtype; None: always.
DIRECT_MAX_TAPS = {np.dtype(np.float32): 320, np.dtype(np.float64): 256, np.dtype(np.complex64): 160,
                   np.dtype(np.complex128): 128, np.dtype(np.int64): None}
#: The rule's GEMM-sized weight matrix per group: (output channels, input channels * taps).
GEMM_MIN = {"forward": (32, 128), "backward": (16, 64)}
#: Backends auto considers (cuda runs for device arrays; host arrays stay on the CPU).
CANDIDATES = tuple(name for name in BACKEND_NAMES if name != "cuda")
_CACHE_LIMIT = 4096


class _State:
    """Per-process: settings, the loaded models and measured decisions, and the decision cache."""

    def __init__(self):
        self.measure = False
        self.wisdom_path = None
        self.loaded = False
        self.models: dict = {}
        self.measured: dict = {}   # problem key -> {backend: seconds}
        self.decisions: dict = {}  # problem key -> (ranking, source, details)

    def load(self):
        if self.loaded:
            return
        self.models = dict(_model.load_default())
        rows = _wisdom.load(self.wisdom_path)
        self.models.update(_model.fit([r for r in rows if "features" in r]))  # this machine's, where fitted
        for row in rows:
            if "problem" in row:
                self.measured.setdefault(row["problem"], {})[row["backend"]] = row["median_s"]
        self.loaded = True


_state = _State()


def configure_auto(*, measure: bool | None = None, wisdom=None) -> dict:
    """Settings of ``backend="auto"``; returns the settings in force before the call.

    Parameters
    ----------
    measure : bool, optional
        Time the candidate backends on the first sight of a problem that has no measurement,
        remember the winner (in memory and in the wisdom file), and use it from then on.
    wisdom : path, optional
        The wisdom file to read and write instead of ``$CONV1DBENCH_WISDOM`` or the user cache.
    """
    before = {"measure": _state.measure, "wisdom": _state.wisdom_path}
    if measure is not None:
        _state.measure = bool(measure)
    if wisdom is not None:
        _state.wisdom_path = wisdom
        reset()
    return before


def reset() -> None:
    """Forget loaded models, measurements and cached decisions (they reload on the next auto call)."""
    _state.loaded = False
    _state.models, _state.measured, _state.decisions = {}, {}, {}


def knowledge() -> dict:
    """What auto decides from in this process: the shipped models, the wisdom file and its timings."""
    rows = _wisdom.load(_state.wisdom_path)
    try:
        fitted_on = json.loads(_model.DEFAULT_MODEL.read_text()).get("fitted_on", {})
    except (OSError, ValueError):
        fitted_on = {}
    return {"wisdom": str(_wisdom.resolve(_state.wisdom_path)), "measurements": len(rows),
            "shipped_models": f"fitted on the {fitted_on.get('grid')} grid, {fitted_on.get('date')}",
            "models_from_wisdom": sorted(_model.fit([r for r in rows if "features" in r])) if rows else []}


def problem_key(dtype, x_shape, w_shape, groups, l_out, stride, dilation, direction) -> str:
    return (f"{np.dtype(dtype).name} x{tuple(x_shape)} w{tuple(w_shape)} g{groups} l{l_out} s{stride} "
            f"d{dilation} {direction}")


def choose(x: np.ndarray, w: np.ndarray, shortest: int, groups: int = 1, direction: str = "forward", *,
           l_out: int, stride: int = 1, dilation: int = 1, pads: tuple[int, int] = (0, 0)) -> tuple[str, str]:
    """The backend auto runs for core arrays ``x``, ``w`` and why (a short constant text)."""
    name, source, _ = decide(x, w, shortest, groups, direction, l_out=l_out, stride=stride, dilation=dilation,
                             pads=pads)
    return name, source


def decide(x, w, shortest, groups=1, direction="forward", *, l_out, stride=1, dilation=1, pads=(0, 0),
           finite=None, also=()):
    """:func:`choose`, plus the timings or predictions behind the choice: ``(name, source, details)``.

    ``finite``: whether the operands (``x``, ``w`` and the arrays in ``also``) are all finite; None:
    read them to find out, where FFT wins.  :func:`run` passes True (the fft backend checks them as
    it goes), then False if it found otherwise.
    """
    dtype = x.dtype
    if dtype.kind == "i":
        return _direct(), "integer input: direct is exact for any magnitude", {}
    cached = (dtype, x.shape, w.shape, groups, l_out, stride, dilation, direction)  # cheap to build and hash
    decision = _state.decisions.get(cached)
    if decision is None:
        key = problem_key(dtype, x.shape, w.shape, groups, l_out, stride, dilation, direction)
        decision = _rank(key, x, w, shortest, groups, direction, l_out, stride, dilation, pads)
        if len(_state.decisions) >= _CACHE_LIMIT:
            _state.decisions.clear()
        _state.decisions[cached] = decision
    ranking, source, details = decision
    name = ranking[0]
    if name == "fft" and finite is None:
        finite = all(np.isfinite(a).all() for a in (x, w, *also))
    if name == "fft" and not finite:
        name = next((n for n in ranking if n != "fft"), _direct())
        source = "input holds NaN or Inf: FFT would spread it to every output"
    return name, source, details


def run(choose, call, auto: bool):
    """``call(name, **finite)`` on the backend ``choose(finite)`` names (a front end's ``backend_for``).

    Under auto an FFT choice runs with ``finite=True`` and no check beforehand: the fft backend
    raises NonFiniteInput on the first transform that shows a NaN or Inf (its partial result is
    dropped), and the call runs again on the best direct backend.
    """
    name = choose(True if auto else None)
    if not (auto and name == "fft"):
        return call(name)
    try:
        return call(name, finite=True)
    except NonFiniteInput:
        return call(choose(False))


def _rank(key, x, w, shortest, groups, direction, l_out, stride, dilation, pads):
    """Candidates fastest first, the source of the ranking, and the numbers behind it."""
    _state.load()
    candidates = [n for n in CANDIDATES if is_available(n) and x.dtype in get_backend(n, x.dtype).DTYPES]
    measured = {n: t for n, t in _state.measured.get(key, {}).items() if n in candidates}
    if len(measured) < 2 and _state.measure:
        measured = _measure(key, candidates, x, w, groups, direction, l_out, stride, dilation, pads)
    if len(measured) >= 2:
        ranking = sorted(measured, key=measured.get)
        return ranking + [n for n in candidates if n not in ranking], "measured on this machine", \
            {"measured_s": measured}
    feats = _model.features(x.dtype.name, x.shape[0], x.shape[1], w.shape[0], x.shape[2], w.shape[2],
                            groups, l_out, direction, pads[0], stride, dilation)
    predicted = {n: _model.predict(_state.models[m], feats) for n in candidates
                 if (m := _model.model_key(n, x.dtype.name, direction)) in _state.models}
    if predicted:
        ranking = sorted(predicted, key=predicted.get)
        return ranking + [n for n in candidates if n not in ranking], "predicted by the cost model", \
            {"predicted_s": predicted}
    ranking, reason = _rule(x, w, shortest, groups, direction)
    return ranking, reason, {}


def _rule(x, w, shortest, groups, direction) -> tuple[list[str], str]:
    """The fallback where no model predicts (constant texts: nothing is formatted per call)."""
    limit = DIRECT_MAX_TAPS[x.dtype]
    min_out, min_depth = GEMM_MIN[direction]
    gemm = w.shape[0] // groups >= min_out and w.shape[1] * w.shape[2] >= min_depth
    if shortest <= limit:
        if gemm:
            return ["im2col", _direct(), "fft"], "rule (no cost model): short kernel, GEMM-sized layer: im2col"
        return [_direct(), "im2col", "fft"], "rule (no cost model): short kernel: direct"
    return ["fft", _direct(), "im2col"], "rule (no cost model): long kernel: FFT"


def _direct() -> str:
    return "numba" if is_available("numba") else "im2col"


def _measure(key, candidates, x, w, groups, direction, l_out, stride, dilation, pads) -> dict:
    """Time every candidate on this problem (after a first, compiling call); record them as wisdom."""
    feats = _model.features(x.dtype.name, x.shape[0], x.shape[1], w.shape[0], x.shape[2], w.shape[2],
                            groups, l_out, direction, pads[0], stride, dilation)
    args = (pads[0], pads[1], stride, dilation, groups)
    g = np.ones((x.shape[0], w.shape[0], l_out), dtype=x.dtype) if direction == "backward" else None

    def call(module):
        if g is None:
            return module.forward(x, w, *args)
        return module.backward_input(g, w, x.shape[2], *args), module.backward_weight(g, x, w.shape[2], *args)

    times, best = {}, float("inf")
    for name in candidates:
        module = get_backend(name, x.dtype)
        start = time.perf_counter()
        call(module)  # compiles (numba) and warms up
        first = time.perf_counter() - start
        if first > 20 * best + 0.05:  # hopeless (naive at a large size): one call is its measurement
            times[name] = first
            continue
        samples = []
        for _ in range(3):
            start = time.perf_counter()
            call(module)
            samples.append(time.perf_counter() - start)
        times[name] = min(samples)
        best = min(best, times[name])
    _wisdom.record([{"key": f"{key}|{n}", "problem": key, "backend": n, "dtype": x.dtype.name,
                     "direction": direction, "features": feats, "median_s": t} for n, t in times.items()],
                   _state.wisdom_path)
    _state.measured[key] = times
    return times
