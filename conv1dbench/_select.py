"""Auto's policy: a pure ranking of the candidate backends for one core problem.

:func:`rank` takes a problem, the candidates and what is known (cost models, timings of exactly
this problem) and returns the candidates fastest first, with the source of the ranking and the
numbers behind it.  It holds no state and runs nothing; :mod:`conv1dbench._auto` owns the process's
knowledge, the cache of decisions and the walk down the ranking.  In order:

1. **Measured**: timings of at least two candidates on exactly this problem (from ``conv1dbench
   tune``, a harness run, or auto's own timing of the close candidates on first sight): the
   fastest of them; the candidates not timed follow, in the order of their predictions.
2. **Predicted**: each candidate's cost model (:mod:`conv1dbench._model`) predicts the time, and the
   fastest prediction wins.
3. **Rule** (no model for this dtype and direction): a direct method while the shorter operand has
   at most :data:`DIRECT_MAX_TAPS` samples (a GEMM for GEMM-sized layers), else FFT; each backend's
   declared ``RULE`` says which it is.

Integer problems rank only the backends that declare ``EXACT_INTEGERS``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ._model import features, model_key, predict
from ._plan import Problem
from ._registry import module

#: Longest kernel (shorter operand) for which the rule runs direct, per core dtype; None: always.
#: The crossover of direct and FFT methods, measured with the harness's ``crossover`` grid.
DIRECT_MAX_TAPS = {np.dtype(np.float32): 320, np.dtype(np.float64): 256, np.dtype(np.complex64): 160,
                   np.dtype(np.complex128): 128, np.dtype(np.int64): None}
#: The rule's GEMM-sized weight matrix per group: (output channels, input channels * taps).
GEMM_MIN = {"forward": (32, 128), "backward": (16, 64)}
#: Candidates predicted within this factor of the fastest prediction are *close*: auto times them on the
#: first sight of a problem (:func:`close`) rather than trust the models.  The shipped models, scaled to
#: a machine, still err by up to about 2x between backends that do similar work (the three FFT engines,
#: numba against im2col on layers: ``results/NOTES.md``, "auto: first sight on a new machine").
CLOSE_FACTOR = 2.5
MEASURED = "measured on this machine"
PREDICTED = "predicted by the cost model"


@dataclass(frozen=True)
class Ranking:
    """Candidates fastest first, where the order comes from, and the numbers behind it."""

    names: tuple
    source: str
    details: dict = field(default_factory=dict)


def rank(problem: Problem, candidates: list[str], models: dict, measured: dict) -> Ranking:
    """The candidates for ``problem`` fastest first.

    ``models``: ``{model_key: model}``; ``measured``: ``{backend: seconds}`` on this very problem.
    """
    candidates = eligible(problem, candidates)
    timed = {n: t for n, t in measured.items() if n in candidates}
    predicted = predictions(problem, candidates, models)
    if len(timed) >= 2:
        rest = {n: t for n, t in predicted.items() if n not in timed}
        return Ranking(tuple(_ordered(timed) + _ordered(rest) + [n for n in candidates if n not in timed | rest]),
                       MEASURED, {"measured_s": timed})
    if predicted:
        return Ranking(tuple(_ordered(predicted) + [n for n in candidates if n not in predicted]), PREDICTED,
                       {"predicted_s": predicted})
    return rule(problem, candidates)


def eligible(problem: Problem, candidates: list[str]) -> list[str]:
    """The candidates that may run ``problem`` at all: for integers, only those exact for any magnitude."""
    if problem.dtype.kind == "i":
        return [n for n in candidates if module(n).EXACT_INTEGERS]
    return candidates


def predictions(problem: Problem, candidates: list[str], models: dict) -> dict:
    """``{backend: seconds}`` predicted for ``problem``, for each candidate with a model."""
    predicted = {}
    for name in candidates:
        model = models.get(model_key(name, problem.dtype.name, problem.direction))
        if model is not None:
            predicted[name] = predict(model, features(problem, name))
    return predicted


def close(predicted: dict, factor: float = CLOSE_FACTOR) -> list[str]:
    """The candidates predicted within ``factor`` of the fastest prediction, fastest first."""
    if not predicted:
        return []
    best = min(predicted.values())
    return [n for n in _ordered(predicted) if predicted[n] <= factor * best]


def _ordered(seconds: dict) -> list[str]:
    return sorted(seconds, key=seconds.get)


def rule(problem: Problem, candidates: list[str]) -> Ranking:
    """The fallback where no model predicts (constant texts: nothing is formatted per call)."""
    limit = DIRECT_MAX_TAPS[problem.dtype]
    min_out, min_depth = GEMM_MIN[problem.direction]
    per_group_out, per_group_depth = problem.c_out // problem.groups, (problem.c_in // problem.groups) * problem.taps
    gemm = problem.dtype.kind in "fc" and per_group_out >= min_out and per_group_depth >= min_depth  # BLAS: floats
    if limit is not None and problem.shortest > limit:
        order, reason = ("fourier", "direct", "gemm"), "rule (no cost model): long kernel: FFT"
    elif gemm:
        order, reason = ("gemm", "direct", "fourier"), "rule (no cost model): short kernel, GEMM-sized layer: a GEMM"
    else:
        order, reason = ("direct", "gemm", "fourier"), "rule (no cost model): short kernel: direct"
    order += ("reference",)
    return Ranking(tuple(sorted(candidates, key=lambda n: order.index(module(n).RULE))), reason)
