"""Named grids of benchmark points: what the harness, the pytest-benchmark suites and tuning time.

A point is one problem: a signal-API call (``convolve`` with N, K, mode, dtype, batch) or a layer
pass (``conv1d`` forward or ``conv1d_backward``, with its geometry).  Points are plain dicts (they
travel to worker processes as JSON) whose keys are the parameter columns of the tidy table.

Grids
-----
``smoke``
    A few tiny points: CI, plain ``pytest`` (one untimed call each), ``--grid smoke`` to try things.
``default``
    What ``conv1dbench run`` and ``pytest --benchmark-only`` time: signals N in 10**3..10**6, K in
    {3, 15, 63, 255, 1023}, modes full/same/valid, float32 and float64, plus batches of signals;
    the five layer shapes of the layer issue and a depthwise and a strided layer, forward and
    backward, float32.  About 10 minutes on 2 cores.
``large``
    The default grid plus N = 10**7, K = 4095 and batches of 256 signals: long runs.
``tune``
    What ``conv1dbench tune`` times to fit the cost models of ``backend="auto"``: other lengths,
    kernels and layer shapes than the default grid's (layers in float32 and float64), so that the
    default grid measures auto on shapes its models never saw.  About 8 minutes on 2 cores (our
    backends only).  Its committed run, ``results/tune``, is what the package's default models
    are fitted on.
"""

from __future__ import annotations

import itertools

from .._plan import Problem, padding_from_text, plan_layer, plan_signal

#: Parameter columns of the tidy table, in order (NaN where they do not apply).
PARAMS = ["api", "pass", "dtype", "mode", "N", "K", "batch", "B", "C_in", "C_out", "L", "stride", "groups"]

LAYER_SHAPES = [(32, 64, 64, 1024, 3), (16, 128, 128, 2048, 9), (8, 256, 256, 512, 5),
                (64, 16, 32, 8192, 31), (4, 32, 32, 65536, 15)]  # (B, C_in, C_out, L, K)


def signal_point(n: int, k: int, mode: str = "full", dtype: str = "float64", batch: int = 1) -> dict:
    return {"api": "signal", "pass": "forward", "dtype": dtype, "mode": mode, "N": n, "K": k, "batch": batch}


def layer_point(b: int, c_in: int, c_out: int, length: int, k: int, *, stride: int = 1, groups: int = 1,
                direction: str = "forward", dtype: str = "float32") -> dict:
    padding = "same" if stride == 1 else str((k - 1) // 2)
    return {"api": "layer", "pass": direction, "dtype": dtype, "mode": padding, "N": length, "K": k,
            "batch": b, "B": b, "C_in": c_in, "C_out": c_out, "L": length, "stride": stride, "groups": groups}


def _signals(ns, ks, modes, dtypes, batches=(1,)) -> list[dict]:
    return [signal_point(n, k, mode, dtype, batch)
            for dtype, mode, batch, n, k in itertools.product(dtypes, modes, batches, ns, ks)]


def _layers(shapes, directions=("forward", "backward"), **kwargs) -> list[dict]:
    return [layer_point(*shape, direction=d, **kwargs) for shape in shapes for d in directions]


def _grid(name: str) -> list[dict]:
    if name == "smoke":
        return (_signals([1000], [3, 63], ["full"], ["float64"]) + _signals([500], [5], ["same"], ["float32"], [4])
                + _layers([(2, 8, 8, 128, 3)]) + _layers([(2, 8, 8, 128, 3)], groups=8))
    ns, ks = [10**3, 10**4, 10**5, 10**6], [3, 15, 63, 255, 1023]
    points = (_signals(ns, ks, ["full", "same", "valid"], ["float32", "float64"])
              + _signals([10**4], [15, 255], ["same"], ["float32", "float64"], [64])
              + _layers(LAYER_SHAPES)
              + _layers([(8, 256, 256, 2048, 9)], groups=256)      # depthwise
              + _layers([(16, 64, 128, 4096, 8)], stride=4))       # strided (a downsampling layer)
    if name == "tune":
        return (_signals([2000, 30_000, 400_000, 3_000_000], [2, 7, 31, 127, 511, 2047], ["full", "same", "valid"],
                         ["float32", "float64"])
                + _signals([20_000], [7, 127], ["full"], ["float32", "float64"], [16])
                + _signals([8000], [31, 400], ["same"], ["float32", "float64"], [32])
                + _layers([(16, 32, 32, 2048, 5), (8, 64, 128, 1024, 7), (4, 128, 64, 4096, 3), (32, 8, 16, 4096, 21),
                           (2, 16, 16, 32768, 11), (4, 192, 192, 1024, 3)])
                + _layers([(16, 32, 32, 16384, 19), (48, 24, 48, 4096, 11), (8, 96, 96, 4096, 7)])  # beyond the caches
                + _layers([(8, 128, 128, 1024, 9)], groups=128) + _layers([(8, 32, 64, 4096, 6)], stride=2)
                + _layers([(16, 32, 32, 2048, 5), (8, 64, 128, 1024, 7), (4, 128, 64, 4096, 3), (32, 8, 16, 4096, 21)],
                          dtype="float64")
                + _layers([(8, 128, 128, 1024, 9)], groups=128, dtype="float64")
                + _layers([(8, 32, 64, 4096, 6)], stride=2, dtype="float64"))
    if name == "large":
        points += (_signals([10**7], ks + [4095], ["full"], ["float32", "float64"])
                   + _signals([10**5], [15, 255], ["same"], ["float32"], [256]))
    return points


GRIDS = ("smoke", "default", "large", "tune")


def grid(name: str) -> list[dict]:
    """The points of grid ``name`` (one of :data:`GRIDS`)."""
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known grids are {', '.join(map(repr, GRIDS))}")
    return _grid(name)


def label(point: dict) -> str:
    """A short human label: ``N=1e+05 K=63`` or ``32x64x64 L=1024 K=3`` (plus batch, stride, groups)."""
    if point["api"] == "signal":
        text = f"N={point['N']:.0e} K={point['K']}"
        return text + (f" x{point['batch']}" if point["batch"] > 1 else "")
    text = f"{point['B']}x{point['C_in']}x{point['C_out']} L={point['L']} K={point['K']}"
    if point["stride"] > 1:
        text += f" s={point['stride']}"
    if point["groups"] > 1:
        text += f" g={point['groups']}"
    return text


def flops(point: dict) -> float:
    """Effective floating-point operations of one call: 2 per multiply-add of the direct method.

    Signals: ``2 * batch * N * K`` in every mode (the products that touch real samples differ by
    mode only at the edges; one convention keeps modes comparable).  Layers: ``2*B*C_out*(C_in/groups)*K*L_out`` per pass,
    twice that for backward (grad_x and grad_w).
    """
    if point["api"] == "signal":
        return 2.0 * point["batch"] * point["N"] * point["K"]
    per_pass = (2.0 * point["B"] * point["C_out"] * (point["C_in"] // point["groups"]) * point["K"]
                * layer_output_length(point))
    return per_pass * (2 if point["pass"] == "backward" else 1)


def layer_output_length(point: dict) -> int:
    return problem(point).l_out


def problem(point: dict) -> Problem:
    """The core problem a point's call runs, planned as the call itself plans it (:mod:`conv1dbench._plan`).

    A tidy row of the point (it holds the point's parameters) gives the same problem.
    """
    if point["api"] == "signal":
        shape = (int(point["N"]),) if int(point["batch"]) == 1 else (int(point["batch"]), int(point["N"]))
        return plan_signal("convolve", shape, (int(point["K"]),), point["dtype"], point["dtype"], point["mode"]).problem
    b, c_in, groups = int(point["B"]), int(point["C_in"]), int(point["groups"])
    return plan_layer((b, c_in, int(point["L"])), (int(point["C_out"]), c_in // groups, int(point["K"])),
                      point["dtype"], int(point["stride"]), padding_from_text(point["mode"]), 1, groups,
                      point["pass"]).problem
