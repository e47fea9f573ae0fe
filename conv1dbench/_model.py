"""A cost model per backend: predicts a call's time from the problem's size, for shapes never timed.

Every call is one core problem (:class:`conv1dbench._plan.Problem`); its cost on a backend is modelled
as a non-negative combination of the work counts that backend does (its declared ``COST_FEATURES``),
out of :data:`FEATURES`:

``call``: 1 (the fixed cost of a call);  ``macs``: multiply-adds over the padded input (what a GEMM
of the patches does);  ``valid_macs``: only those that read real samples (what a direct method
does: a 3-sample signal under a 10**5-tap kernel costs 3 * 10**5, not 10**10);  ``strided_macs``:
the valid multiply-adds of a strided problem (a path that may not vectorize);  ``bytes``: data in
and out.  A backend may add counts only it can compute (its ``work(problem)``), such as the
transforms of its own FFT plan.

One model per (backend, dtype, direction), fitted by non-negative least squares on *relative*
errors (every measurement counts alike, whether it took a microsecond or a second), so it
extrapolates the way the work grows and never predicts a negative time.  A model needs
:data:`MIN_POINTS` measurements; a backend without one is simply not predicted.

The default models ship with the package (``default_model.json``), fitted on the ``tune`` grid
measured on the project's benchmark machine.  On any other machine they are scaled by what auto
has timed here (:func:`for_machine`); ``conv1dbench tune`` times enough to refit this machine's own.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._plan import Problem
from ._registry import module

FEATURES = ("call", "slices", "macs", "valid_macs", "tap_passes", "strided_macs", "fft_work", "spectral_products",
            "bytes", "column_bytes")
MIN_POINTS = 4
#: Measurements of one model key from which :func:`for_machine` refits it on this machine alone.
REFIT_MIN = 24
DEFAULT_MODEL = Path(__file__).with_name("default_model.json")


def features(problem: Problem, backend: str) -> dict:
    """The work counts ``backend``'s model is fitted on (its ``COST_FEATURES``), for one problem."""
    declared = module(backend)
    counts = generic_work(problem)
    if hasattr(declared, "work"):
        counts.update(declared.work(problem))
    return {f: counts[f] for f in declared.COST_FEATURES}


def generic_work(p: Problem) -> dict:
    """The counts every backend's work is made of (see the module's notes), for both passes."""
    c_per_group = p.c_in // p.groups
    valid_macs = p.passes * p.batch * p.c_out * c_per_group * _reads_inside(p)
    data = p.batch * p.c_in * p.length + p.c_out * c_per_group * p.taps + p.batch * p.c_out * p.l_out
    return {"call": 1.0, "macs": float(p.passes * p.macs), "valid_macs": float(valid_macs),
            "strided_macs": float(valid_macs if p.stride > 1 else 0),
            "bytes": float(p.passes * data * p.dtype.itemsize)}


def _reads_inside(p: Problem) -> int:
    """(output, tap) pairs of one row whose input index ``l*stride + k*dilation - pad_left`` is a sample."""
    offset = np.arange(p.taps, dtype=np.int64) * p.dilation - p.pad_left
    lo = np.clip(-(offset // p.stride), 0, p.l_out)                   # first l reading index >= 0
    hi = np.clip((p.length - 1 - offset) // p.stride + 1, 0, p.l_out)   # past the last l reading index < length
    return int(np.maximum(hi - lo, 0).sum())


def model_key(backend: str, dtype: str, direction: str) -> str:
    return f"{backend} {dtype} {direction}"


def _groups(rows: list[dict]) -> dict[str, list[dict]]:
    """Usable measurements by model key: its backend is registered and it holds every count that backend's
    model takes (one recorded with other features, by another version, is not comparable)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        declared = module(row.get("backend", ""))
        if declared is None or not row.get("median_s") or not isinstance(row.get("features"), dict):
            continue
        if any(f not in row["features"] for f in declared.COST_FEATURES):
            continue
        groups.setdefault(model_key(row["backend"], row["dtype"], row["direction"]), []).append(row)
    return groups


def fit(rows: list[dict], min_points: int = MIN_POINTS) -> dict:
    """Models ``{model_key: {feature: coefficient}}`` from measurements with ``features`` and ``median_s``,
    for every model key with at least ``min_points`` of them."""
    models = {}
    for key, group in sorted(_groups(rows).items()):
        if len(group) < min_points:
            continue
        from scipy.optimize import nnls  # import time: ~0.25 s, only worth paying with data to fit

        used = module(group[0]["backend"]).COST_FEATURES
        a = np.array([[r["features"][f] for f in used] for r in group])
        t = np.array([r["median_s"] for r in group])
        scale = a.max(axis=0)
        scale[scale == 0] = 1.0
        coef, _ = nnls(a / scale / t[:, None], np.ones(len(t)))  # relative error: (a c - t) / t
        fitted = dict(zip(used, coef / scale, strict=True))
        models[key] = {f: float(fitted.get(f, 0.0)) for f in FEATURES}
    return models


def for_machine(shipped: dict, rows: list[dict]) -> tuple[dict, dict]:
    """The models auto predicts with here, and the scale applied to each shipped one.

    A model key with :data:`REFIT_MIN` measurements of this machine (``conv1dbench tune`` gives about
    40) is refitted on them alone.  Every other shipped model keeps its shape and is scaled to this
    machine: by the median ratio of its measured to its predicted times, where this machine has timed
    that key; else by its backend's median ratio over all its keys; else by the machine's over every
    backend; else 1.  Machines of one name differ by a factor per backend (SIMD width, the BLAS
    kernel, the FFT engines' codelets), far more than by the shape of the work.
    """
    groups = _groups(rows)
    fitted = fit(rows, REFIT_MIN)
    logs: dict[str, list[float]] = {}
    for key, group in groups.items():
        model = shipped.get(key)
        if model is None or key in fitted:
            continue
        for row in group:
            predicted = predict(model, row["features"])
            if predicted > 0:
                logs.setdefault(key, []).append(float(np.log(row["median_s"] / predicted)))

    def median_of(keys) -> float | None:
        values = [v for k in keys for v in logs.get(k, ())]
        return float(np.exp(np.median(values))) if values else None

    everyone = median_of(logs)
    scales = {}
    for key in shipped:
        if key in fitted:
            continue
        backend = key.split(" ", 1)[0]
        scale = median_of([key]) or median_of([k for k in logs if k.split(" ", 1)[0] == backend]) or everyone
        scales[key] = scale or 1.0
    models = {key: {f: c * scales[key] for f, c in model.items()} for key, model in shipped.items() if key in scales}
    models.update(fitted)
    return models, scales


def predict(model: dict, feats: dict) -> float:
    """Seconds predicted for work counts ``feats`` (a count the model weighs must be among them)."""
    return sum(c * feats[f] for f, c in model.items() if c)


def load_default() -> dict:
    try:
        return json.loads(DEFAULT_MODEL.read_text())["models"]
    except (OSError, ValueError, KeyError):
        return {}
