"""What ``backend="auto"`` runs in this process: the knowledge it decides from, and the walk down the ranking.

:mod:`conv1dbench._select` ranks the candidates for a problem; this module owns everything that
ranking needs and everything around it, in one process-wide :class:`AutoState`:

* the cost models (the defaults shipped with the package, scaled to this machine by what it has timed
  here, or refitted where it has timed enough: :func:`conv1dbench._model.for_machine`) and this
  machine's timings of exact problems (:mod:`conv1dbench._wisdom`), loaded on first use;
* a cache of decisions per problem key, so that a repeated call costs a dictionary lookup;
* timing on first sight (``measure``): by default (``"close"``), the first call of a problem with no
  timings times the candidates whose predictions are within
  :data:`conv1dbench._select.CLOSE_FACTOR` of the fastest, where models cannot be trusted to tell them
  apart on a machine they were not fitted on; ``"all"`` (or ``True``) times every candidate,
  ``"off"`` (or ``False``) none.  The timings are remembered in the wisdom file, and they scale the
  models for every later prediction.  The first time auto times anything on a machine, it says so once
  (an :class:`AutoTimingNotice`).

:func:`configure_auto` changes the settings for the rest of the process; :func:`auto_settings`
overrides models, timings, measuring and the wisdom file within a ``with`` block (tests and tuning
use it), and restores them after.

A call walks the ranking (:func:`run`): a backend that spreads NaN and Inf to every output (it does
not declare ``CONFINES_NON_FINITE``) runs only on finite input.  One that checks as it goes
(``CHECKS_FINITE``) runs with ``finite=True`` and declines on the first NaN or Inf it meets; for
any other the operands are read first.  A backend that declines lets the next one run.
"""

from __future__ import annotations

import contextlib
import json
import os
import warnings

import numpy as np

from . import _model, _params, _wisdom
from ._backends import Declined, NonFiniteInput, keep_wisdom_with
from ._plan import BACKWARD, Problem
from ._registry import auto_candidates, check_name, get_backend, module
from ._select import Ranking, close, eligible, predictions, rank
from .timing import calibrate, measure_interleaved

_CACHE_LIMIT = 4096
#: Seconds of samples per candidate when auto times a problem (at least :data:`MEASURE_MIN_SAMPLES` samples).
MEASURE_MIN_TIME_S, MEASURE_MIN_SAMPLES = 0.02, 5
#: A candidate whose second call (the first compiles) takes this many times the best candidate's time
#: (plus a margin of seconds) is hopeless here: that one call is all that is timed.
HOPELESS_FACTOR, HOPELESS_MARGIN_S = 20, 0.05
NON_FINITE = "input holds NaN or Inf: {} would spread it to every output"
#: The environment variable that sets auto's timing on first sight: ``close`` (default), ``all``, ``off``.
MEASURE_ENV = "CONV1DBENCH_AUTO_MEASURE"
MEASURE_MODES = {"close": "close", "all": "all", "off": "off", True: "all", False: "off", "1": "all", "0": "off"}
#: What auto files in the wisdom file once it has told this machine's user that it times on first sight.
ANNOUNCED = "auto_announced"


class AutoTimingNotice(UserWarning):
    """``backend="auto"`` times the close candidates on the first call of a new problem (said once per machine)."""


def _measure_mode(value) -> str:
    mode = MEASURE_MODES.get(value.lower() if isinstance(value, str) else value)
    if mode is None:
        raise ValueError(f"measure must be one of 'close', 'all', 'off' (or True, False), not {value!r}")
    return mode


class AutoState:
    """Per process: the settings, what auto knows (loaded on first use), and its cached decisions."""

    def __init__(self):
        self.measure_set: str | None = None  # configure_auto's; None: $CONV1DBENCH_AUTO_MEASURE's, read when asked
        self.wisdom_path = None
        self.rows: list | None = None       # this machine's measurements (the wisdom file's, and ours since)
        self.models: dict | None = None     # model key -> model; None: not loaded yet
        self.scales: dict = {}              # model key -> the factor its shipped model was scaled by here
        self.fixed_models = False           # models given by auto_settings: timings do not rescale them
        self.measured: dict | None = None   # problem key text -> {backend: seconds}
        self.decisions: dict = {}           # problem key -> Ranking
        self.shortcuts: dict = {}           # a front end's call key -> what it runs (valid with the decisions)
        self.announced = False

    @property
    def measure(self) -> str:
        return self.measure_set or _measure_mode(os.environ.get(MEASURE_ENV) or "close")

    @measure.setter
    def measure(self, value) -> None:
        self.measure_set = _measure_mode(value)

    def load(self) -> None:
        if self.models is not None and self.measured is not None:
            return
        if self.rows is None:
            self.rows = _wisdom.load(self.wisdom_path)
        if self.models is None:
            self.models, self.scales = _model.for_machine(_model.load_default(), self.rows)
        if self.measured is None:
            self.measured = {}
            for row in self.rows:
                if "problem" in row and row.get("median_s"):  # never a first call (it compiles)
                    self.measured.setdefault(row["problem"], {})[row["backend"]] = row["median_s"]

    def learn(self, entries: list[dict]) -> None:
        """Take new timings of this machine: the models are scaled by them from now on."""
        self.rows = (self.rows or []) + entries
        if not self.fixed_models:
            self.models, self.scales = _model.for_machine(_model.load_default(), self.rows)

    def reset(self) -> None:
        self.models = self.measured = self.rows = None
        self.scales, self.fixed_models = {}, False
        self.decisions, self.shortcuts = {}, {}
        _params.reset()  # the tuned kernel parameters live in the wisdom file too


_state = AutoState()
# Backends keep their own wisdom (FFTW's plans) in the wisdom file auto reads, under this machine's entry.
keep_wisdom_with(lambda name: _wisdom.load_extra(name, _state.wisdom_path),
                 lambda name, value: _wisdom.record_extra(name, value, _state.wisdom_path))


def configure_auto(*, measure: bool | str | None = None, wisdom=None) -> dict:
    """Settings of ``backend="auto"`` for the rest of the process; returns the settings before the call.

    Parameters
    ----------
    measure : {"close", "all", "off"} or bool, optional
        On the first sight of a problem that has no measurement, time the candidate backends whose
        predictions are close to the fastest (``"close"``, the default, also set by
        ``$CONV1DBENCH_AUTO_MEASURE``), every candidate (``"all"`` or ``True``) or none (``"off"`` or
        ``False``); remember the timings (in memory and in the wisdom file) and use them from then on.
    wisdom : path, optional
        The wisdom file to read and write instead of ``$CONV1DBENCH_WISDOM`` or the user cache.

    See Also
    --------
    auto_settings : the same, and more, for a ``with`` block only.
    """
    before = {"measure": _state.measure, "wisdom": _state.wisdom_path}
    if measure is not None:
        _state.measure = measure
    if wisdom is not None:
        _state.wisdom_path = wisdom
        _state.reset()
    return before


@contextlib.contextmanager
def auto_settings(*, models: dict | None = None, measured: dict | None = None, measure: bool | str | None = None,
                  wisdom=None):
    """Override what ``backend="auto"`` decides from, within a ``with`` block; all is restored after.

    Parameters
    ----------
    models : dict, optional
        The cost models to use, ``{"<backend> <dtype> <direction>": {feature: seconds per unit}}``;
        ``{}``: none, so that auto falls back on its rule.
    measured : dict, optional
        Timings of exact problems, ``{problem key text: {backend: seconds}}``; ``{}``: none (and
        ``measure=True`` then times every problem afresh).
    measure : bool, optional
        As in :func:`configure_auto`.
    wisdom : path, optional
        The wisdom file to read (for whatever is not given here) and to write.

    Examples
    --------
    >>> import numpy as np, conv1dbench as cb
    >>> with cb.auto_settings(models={}, measured={}):      # auto's rule alone
    ...     cb.fastest("convolve", np.ones(10_000), np.ones(2_000))
    'fft'
    """
    names = ("measure_set", "wisdom_path", "rows", "models", "scales", "fixed_models", "measured", "decisions",
             "shortcuts")
    saved = {name: getattr(_state, name) for name in names}
    try:
        if wisdom is not None:
            _state.wisdom_path, _state.rows, _state.models, _state.measured = wisdom, None, None, None
            _params.reset()
        if models is not None:
            _state.models, _state.scales, _state.fixed_models = dict(models), {}, True
        if measured is not None:
            _state.measured = {key: dict(times) for key, times in measured.items()}
        if measure is not None:
            _state.measure = measure
        _state.decisions, _state.shortcuts = {}, {}
        yield
    finally:
        for name, value in saved.items():
            setattr(_state, name, value)
        if wisdom is not None:
            _params.reset()


def reset() -> None:
    """Forget loaded models, timings and cached decisions (they reload on the next auto call)."""
    _state.reset()


def knowledge() -> dict:
    """What auto decides from in this process: the shipped models, the wisdom file and its timings."""
    rows = _wisdom.load(_state.wisdom_path)
    try:
        fitted_on = json.loads(_model.DEFAULT_MODEL.read_text()).get("fitted_on", {})
    except (OSError, ValueError):
        fitted_on = {}
    scales = _model.for_machine(_model.load_default(), rows)[1]
    return {"wisdom": str(_wisdom.resolve(_state.wisdom_path)), "measurements": len(rows),
            "shipped_models": f"fitted on the {fitted_on.get('grid')} grid, {fitted_on.get('date')}",
            "models_from_wisdom": sorted(_model.fit(rows, _model.REFIT_MIN)) if rows else [],
            "scales": {key: round(value, 3) for key, value in scales.items() if value != 1.0},
            "measure": _state.measure}


def ranking(problem: Problem) -> Ranking:
    """The candidates for ``problem``, fastest first (cached per problem)."""
    decision = _state.decisions.get(problem.key)
    if decision is None:
        _state.load()
        candidates = auto_candidates(problem.dtype)
        measured = _state.measured.get(problem.key_text(), {})
        if _state.measure != "off" and sum(n in measured for n in candidates) < 2:
            timed = _to_time(problem, candidates)
            if len(timed) >= 2:
                measured = _measure(problem, timed)
        decision = rank(problem, candidates, _state.models, measured)
        if len(_state.decisions) >= _CACHE_LIMIT:
            _state.decisions.clear()
            _state.shortcuts.clear()
        _state.decisions[problem.key] = decision
    return decision


def shortcuts() -> dict:
    """The front ends' cache of what a repeated call runs, ``{call key: entry}``: it lives as long as
    the decisions it was made from (a reset or an :func:`auto_settings` block starts it afresh)."""
    return _state.shortcuts


def runs_first(problem: Problem, backend: str) -> str | None:
    """The backend a call of ``problem`` runs without reading its operands: ``backend`` itself, or
    auto's first choice where that confines NaN and Inf (None where finiteness could change it)."""
    if backend != "auto":
        return backend
    first = ranking(problem).names[0]
    return first if module(first).CONFINES_NON_FINITE else None


def choose(problem: Problem, operands=()) -> tuple[str, str, dict]:
    """``(name, source, details)``: the backend a call would run, without running it.

    ``operands``: the arrays whose finiteness decides whether a backend that spreads NaN may run
    (read only where such a backend ranks first).
    """
    decision = ranking(problem)
    finite = None
    for name in decision.names:
        if not module(name).CONFINES_NON_FINITE:
            finite = _all_finite(operands) if finite is None else finite
            if not finite:
                continue
        source = decision.source if name == decision.names[0] else NON_FINITE.format(decision.names[0])
        return name, source, decision.details
    raise RuntimeError(f"no backend here can compute {problem}")


def run(problem: Problem, backend: str, call, operands=()):
    """``call(name, **options)`` on ``backend``, or on the best of auto's ranking that accepts the call.

    ``operands`` are the core arrays (read for NaN and Inf only where that decides).
    """
    if backend != "auto":
        return call(check_name(backend))
    finite = None
    for name in ranking(problem).names:
        declared = module(name)
        if not declared.CONFINES_NON_FINITE:
            if declared.CHECKS_FINITE and finite is None:
                try:
                    return call(name, finite=True)
                except NonFiniteInput:  # its partial result is dropped
                    finite = False
                    continue
                except Declined:
                    continue
            finite = _all_finite(operands) if finite is None else finite
            if not finite:
                continue
        return call(name)
    raise RuntimeError(f"no backend here can compute {problem}")


def _all_finite(arrays) -> bool:
    return all(np.isfinite(a).all() for a in arrays)


def _to_time(problem: Problem, candidates: list[str]) -> list[str]:
    """The candidates auto times on the first sight of ``problem``: the close ones (or all), never a
    backend that would take minutes (its ``too_slow``), and none where no model predicts (the rule)."""
    candidates = [n for n in eligible(problem, candidates)
                  if not (hasattr(module(n), "too_slow") and module(n).too_slow(problem))]
    predicted = predictions(problem, candidates, _state.models)
    if not predicted:
        return []
    return candidates if _state.measure == "all" else close(predicted)


def _announce() -> None:
    """Say once per machine (and once per process) that auto times on first sight, and where it keeps that."""
    if _state.announced:
        return
    _state.announced = True
    if _wisdom.load_extra(ANNOUNCED, _state.wisdom_path):
        return
    path = _wisdom.resolve(_state.wisdom_path)
    warnings.warn(f"conv1dbench: backend='auto' times the close candidates on the first call of each new problem "
                  f"on this machine (a few calls each) and keeps the timings in {path}; "
                  f"configure_auto(measure='off') or {MEASURE_ENV}=off turns that off. Said once per machine.",
                  AutoTimingNotice, stacklevel=6)
    _wisdom.record_extra(ANNOUNCED, True, _state.wisdom_path)


def _measure(problem: Problem, candidates: list[str]) -> dict:
    """Time the candidates on ``problem`` and record them as wisdom.

    The first call compiles and plans, so it is never the time: the second call says whether the
    candidate is hopeless next to the best so far (then that one call is its time; candidates come
    fastest predicted first).  The others are timed in turn, sample by sample
    (:func:`conv1dbench.timing.measure_interleaved`), so that a slow stretch of a shared machine hits
    them alike and cannot decide between two close ones.
    """
    _announce()
    p = problem
    x, w = np.ones(p.x_shape, p.dtype), np.ones(p.w_shape, p.dtype)
    g = np.ones(p.y_shape, p.dtype) if p.direction == BACKWARD else None
    calls, entries, best = {}, {}, float("inf")
    for name in candidates:
        backend = get_backend(name, p.dtype)
        if g is None:
            def call(backend=backend):
                return backend.forward(x, w, *p.geometry)
        else:
            def call(backend=backend):
                return backend.backward_input(g, w, p.length, *p.geometry), backend.backward_weight(g, x, p.taps,
                                                                                                    *p.geometry)
        first, second, _ = calibrate(call)
        entries[name] = {"key": f"{p.key_text()}|{name}", "problem": p.key_text(), "backend": name,
                         "dtype": p.dtype.name, "direction": p.direction, "features": _model.features(p, name),
                         "first_call_s": first}
        if second > HOPELESS_FACTOR * best + HOPELESS_MARGIN_S:
            entries[name].update(median_s=second, samples=1)
        else:
            calls[name] = call
            best = min(best, second)
    timings = measure_interleaved(list(calls.values()), min_time_s=MEASURE_MIN_TIME_S * len(calls),
                                  min_samples=MEASURE_MIN_SAMPLES) if calls else []
    for name, timing in zip(calls, timings, strict=True):
        entries[name].update(median_s=timing.median_s, samples=timing.calls)
    times = {name: entry["median_s"] for name, entry in entries.items()}
    _wisdom.record(list(entries.values()), _state.wisdom_path)
    _state.measured[p.key_text()] = times
    _state.learn(list(entries.values()))
    return times
