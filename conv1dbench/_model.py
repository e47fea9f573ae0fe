"""A cost model per backend: predicts a call's time from the problem's size, for shapes never timed.

Every public call reduces to the core problem of :mod:`conv1dbench._core`; its cost on a backend is
modelled as a non-negative combination of the work counts that backend does
(:data:`BACKEND_FEATURES`), out of:

``call``: 1 (the fixed cost of a call);  ``slices``: Python-level loop steps of the slice-based
``naive``;  ``macs``: multiply-adds over the padded input (what im2col's GEMM does);
``valid_macs``: only those that read real samples (what ``numba`` and ``naive`` do: a 3-sample
signal under a 10**5-tap kernel costs 3 * 10**5, not 10**10);  ``tap_passes``: ``numba``'s passes
over its tile of outputs (one per eight, four or remaining taps, per row pair: few taps per pass
cost more per multiply-add);  ``strided_macs``: the valid multiply-adds of a strided problem (a
path that does not vectorize);  ``fft_work``: ``F (log2 F + c)`` over the transforms of the FFT
backend's own plan (its overlap-add blocks);  ``spectral_products``: one product per frequency per
channel pair (what dominates FFT on many-channel layers);  ``bytes``: data in and out;  ``column_bytes``:
im2col's column matrix.

One model per (backend, dtype, direction), fitted by non-negative least squares on *relative*
errors (every measurement counts alike, whether it took a microsecond or a second), so it
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


FEATURES = ("call", "slices", "macs", "valid_macs", "tap_passes", "strided_macs", "fft_work", "spectral_products",
            "bytes", "column_bytes")
MIN_POINTS = 4
#: The work each backend actually does; fitting only these keeps the models physical (a backend
#: cannot get cheaper as an unrelated count grows) and extrapolating the right way.
BACKEND_FEATURES = {"naive": ("call", "slices", "valid_macs"), "im2col": ("call", "macs", "column_bytes"),
                    "fft": ("call", "fft_work", "spectral_products", "bytes"),
                    "numba": ("call", "valid_macs", "tap_passes", "strided_macs", "bytes"),
                    "cuda": ("call", "valid_macs", "bytes")}
DEFAULT_MODEL = Path(__file__).with_name("default_model.json")


def features(dtype: str, batch: int, c_in: int, c_out: int, length: int, taps: int, groups: int, l_out: int,
             direction: str = "forward", pad_left: int = 0, stride: int = 1, dilation: int = 1) -> dict:
    """The work counts of one core problem (``l_out`` outputs per row), forward or backward."""
    itemsize = np.dtype(dtype).itemsize
    c_per_group = c_in // groups
    passes = 2 if direction == "backward" else 1
    rows = batch * c_out * c_per_group
    macs = rows * taps * l_out
    valid_macs = passes * rows * _reads_inside(length, taps, l_out, pad_left, stride, dilation)
    fused_passes = taps // 8 + (taps % 8) // 4 + (taps % 4 > 0)  # numba's 8-, 4- and 1..3-tap passes
    if direction == "forward":  # the fft backend's own plan (imported here: it imports scipy.fft)
        from ._backends import fft as fft_backend

        span = dilation * (taps - 1) + 1
        fft_work, products = fft_backend.forward_work(length, span, np.dtype(dtype).kind != "c", batch, c_in,
                                                      c_out, groups)
    else:  # the gradients: whole-row transforms, one block each
        n = length + taps - 1
        fft_work = passes * batch * (c_in + c_out) * n * math.log2(max(n, 2))
        products = passes * rows * n
    data = batch * c_in * length + c_out * c_per_group * taps + batch * c_out * l_out
    columns = batch * c_in * taps * l_out
    return {"call": 1.0, "slices": float(passes * c_out * c_per_group * taps), "macs": float(passes * macs),
            "valid_macs": float(valid_macs), "tap_passes": float(passes * rows * l_out * fused_passes),
            "strided_macs": float(valid_macs if stride > 1 else 0), "fft_work": float(fft_work),
            "spectral_products": float(products), "bytes": float(passes * data * itemsize),
            "column_bytes": float(passes * columns * itemsize)}


def _reads_inside(length: int, taps: int, l_out: int, pad_left: int, stride: int, dilation: int) -> int:
    """(output, tap) pairs of one row whose input index ``l*stride + k*dilation - pad_left`` is a sample."""
    offset = np.arange(taps, dtype=np.int64) * dilation - pad_left
    lo = np.clip(-(offset // stride), 0, l_out)                   # first l reading index >= 0
    hi = np.clip((length - 1 - offset) // stride + 1, 0, l_out)   # past the last l reading index < length
    return int(np.maximum(hi - lo, 0).sum())


def point_features(point: dict) -> dict:
    """:func:`features` of a harness point (a row of the tidy table)."""
    if point["api"] == "signal":
        n, k = int(point["N"]), int(point["K"])
        if point["mode"] == "valid" and k > n:
            n, k = k, n
        pad_left, pad_right = {"full": (k - 1, k - 1), "same": (k // 2, (k - 1) // 2), "valid": (0, 0)}[point["mode"]]
        rows, signals = int(point["batch"]), 1
        if point["mode"] == "valid" and int(point["K"]) > int(point["N"]) and rows > 1:
            rows, signals = 1, rows  # one short signal, the batch as output channels
        return features(point["dtype"], rows, 1, signals, n, k, 1, n + pad_left + pad_right - k + 1,
                        pad_left=pad_left)
    from ._layer import resolve_padding
    from .harness.grid import layer_output_length

    padding = point["mode"] if point["mode"] in ("same", "valid", "full") else int(point["mode"])
    pad_left = resolve_padding(padding, int(point["K"]), int(point["stride"]), 1)[0]
    return features(point["dtype"], int(point["B"]), int(point["C_in"]), int(point["C_out"]), int(point["L"]),
                    int(point["K"]), int(point["groups"]), layer_output_length(point), point["pass"],
                    pad_left=pad_left, stride=int(point["stride"]))


def model_key(backend: str, dtype: str, direction: str) -> str:
    return f"{backend} {dtype} {direction}"


def fit(rows: list[dict]) -> dict:
    """Models ``{model_key: {feature: coefficient}}`` from measurements with ``features`` and ``median_s``."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        if any(f not in row["features"] for f in FEATURES):
            continue  # recorded by a version with other features: not comparable
        groups.setdefault(model_key(row["backend"], row["dtype"], row["direction"]), []).append(row)
    models = {}
    for key, group in sorted(groups.items()):
        if len(group) < MIN_POINTS:
            continue
        from scipy.optimize import nnls  # here: importing it costs ~0.25 s, only worth it with data

        used = BACKEND_FEATURES.get(group[0]["backend"], FEATURES)
        a = np.array([[r["features"][f] for f in used] for r in group])
        t = np.array([r["median_s"] for r in group])
        scale = a.max(axis=0)
        scale[scale == 0] = 1.0
        coef, _ = nnls(a / scale / t[:, None], np.ones(len(t)))  # relative error: (a c - t) / t
        fitted = dict(zip(used, coef / scale))
        models[key] = {f: float(fitted.get(f, 0.0)) for f in FEATURES}
    return models


def predict(model: dict, feats: dict) -> float:
    return sum(model.get(f, 0.0) * feats[f] for f in FEATURES)


def load_default() -> dict:
    try:
        return json.loads(DEFAULT_MODEL.read_text())["models"]
    except (OSError, ValueError, KeyError):
        return {}


def point_problem(point: dict) -> str:
    """The problem key (:func:`conv1dbench._select.problem_key`) of the core problem a harness point runs."""
    from ._select import problem_key

    k_, n_ = int(point["K"]), int(point["N"])
    if point["api"] == "layer":
        from .harness.grid import layer_output_length

        x_shape = (int(point["B"]), int(point["C_in"]), int(point["L"]))
        w_shape = (int(point["C_out"]), int(point["C_in"]) // int(point["groups"]), k_)
        return problem_key(point["dtype"], x_shape, w_shape, int(point["groups"]), layer_output_length(point),
                           int(point["stride"]), 1, point["pass"])
    batch, swap = int(point["batch"]), point["mode"] == "valid" and k_ > n_
    n, k = (k_, n_) if swap else (n_, k_)
    if batch == 1:
        x_shape, w_shape = (1, 1, n), (1, 1, k)
    elif swap:  # one short signal, many long kernels: the kernels are output channels
        x_shape, w_shape = (1, 1, n), (batch, 1, k)
    else:
        x_shape, w_shape = (batch, 1, n), (1, 1, k)
    l_out = {"full": n + k - 1, "same": n, "valid": n - k + 1}[point["mode"]]
    return problem_key(point["dtype"], x_shape, w_shape, 1, l_out, 1, 1, "forward")


def measurements_from_rows(rows) -> list[dict]:
    """Wisdom entries from the harness's tidy rows: our backends' successful timings (best round)."""
    from ._registry import BACKEND_NAMES

    best: dict[str, dict] = {}
    for row in rows:
        if row.get("status") != "ok" or row.get("impl") not in BACKEND_NAMES or row.get("impl") == "cuda":
            continue
        problem = point_problem(row)
        key = f"{problem}|{row['impl']}"
        if key not in best or row["median_s"] < best[key]["median_s"]:
            best[key] = {"key": key, "problem": problem, "backend": row["impl"], "dtype": row["dtype"],
                         "direction": row["pass"], "features": point_features(row), "median_s": row["median_s"]}
    return list(best.values())
