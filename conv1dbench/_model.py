"""A cost model per backend: predicts a call's time from the problem's size, for shapes never timed.

Every public call reduces to the core problem of :mod:`conv1dbench._core`; its cost on a backend is
modelled as a non-negative combination of a few work counts::

    t = c_call + c_slice * slices + c_mac * macs + c_fft * fft_work + c_byte * bytes

``slices``: Python-level loop steps of the slice-based algorithms (``naive``);  ``macs``: the
multiply-adds of the direct method;  ``fft_work``: ``n log2 n`` over the transforms of every row
plus one product per frequency per channel pair;  ``bytes``: data in and out, plus im2col's column
matrix.  One model per (backend, dtype, direction), fitted by non-negative least squares on
*relative* errors (every measurement counts alike, whether it took a microsecond or a second), so it
extrapolates the way the work grows and never predicts a negative time.  A model needs
:data:`MIN_POINTS` measurements; a backend without one is simply not predicted.

The default models ship with the package (``default_model.json``), fitted on the ``tune`` grid
measured on the project's benchmark machine; ``conv1dbench tune`` fits this machine's own.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np

FEATURES = ("call", "slices", "macs", "fft_work", "bytes")
MIN_POINTS = 4
DEFAULT_MODEL = Path(__file__).with_name("default_model.json")


def features(dtype: str, batch: int, c_in: int, c_out: int, length: int, taps: int, groups: int, l_out: int,
             direction: str = "forward") -> dict:
    """The work counts of one core problem (``l_out`` outputs per row), forward or backward."""
    itemsize = np.dtype(dtype).itemsize
    c_per_group = c_in // groups
    passes = 2 if direction == "backward" else 1
    macs = batch * c_out * c_per_group * taps * l_out
    n = length + taps - 1
    fft_rows = batch * (c_in + c_out)
    fft_work = fft_rows * n * math.log2(max(n, 2)) + batch * c_out * c_per_group * n
    data = batch * c_in * length + c_out * c_per_group * taps + batch * c_out * l_out
    columns = batch * c_in * taps * l_out
    return {"call": 1.0, "slices": float(passes * c_out * c_per_group * taps), "macs": float(passes * macs),
            "fft_work": float(passes * fft_work), "bytes": float(passes * (data + columns) * itemsize)}


def point_features(point: dict) -> dict:
    """:func:`features` of a harness point (a row of the tidy table)."""
    if point["api"] == "signal":
        n, k = int(point["N"]), int(point["K"])
        if point["mode"] == "valid" and k > n:
            n, k = k, n
        pads = {"full": 2 * (k - 1), "same": k - 1, "valid": 0}[point["mode"]]
        return features(point["dtype"], int(point["batch"]), 1, 1, n, k, 1, n + pads - k + 1)
    from .harness.grid import layer_output_length

    return features(point["dtype"], int(point["B"]), int(point["C_in"]), int(point["C_out"]), int(point["L"]),
                    int(point["K"]), int(point["groups"]), layer_output_length(point), point["pass"])


def model_key(backend: str, dtype: str, direction: str) -> str:
    return f"{backend} {dtype} {direction}"


def fit(rows: list[dict]) -> dict:
    """Models ``{model_key: {feature: coefficient}}`` from measurements with ``features`` and ``median_s``."""
    from scipy.optimize import nnls

    groups: dict[str, list[dict]] = {}
    for row in rows:
        groups.setdefault(model_key(row["backend"], row["dtype"], row["direction"]), []).append(row)
    models = {}
    for key, group in sorted(groups.items()):
        if len(group) < MIN_POINTS:
            continue
        a = np.array([[r["features"][f] for f in FEATURES] for r in group])
        t = np.array([r["median_s"] for r in group])
        scale = a.max(axis=0)
        scale[scale == 0] = 1.0
        coef, _ = nnls(a / scale / t[:, None], np.ones(len(t)))  # relative error: (a c - t) / t
        models[key] = {f: float(c) for f, c in zip(FEATURES, coef / scale)}
    return models


def predict(model: dict, feats: dict) -> float:
    return sum(model[f] * feats[f] for f in FEATURES)


def load_default() -> dict:
    try:
        return json.loads(DEFAULT_MODEL.read_text())["models"]
    except (OSError, ValueError, KeyError):
        return {}
