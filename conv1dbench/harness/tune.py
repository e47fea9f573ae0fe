"""``conv1dbench.tune``: measure this machine, so that the kernels and ``backend="auto"`` fit it.

First the kernel parameters (:mod:`conv1dbench.harness.tune_params`: a minute or two), kept in the
wisdom file as this machine's values in force; then, where asked, the backends' timings on a grid or a
workload, for auto's models.

Also how the harness's timings become wisdom (:func:`measurements_from_rows`): each row's point is
planned by the planner, exactly as the call it times is (:func:`conv1dbench.harness.grid.problem`),
so that the key it is filed under is the key auto looks up.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import numpy as np

from .. import _auto, _model, _planning, _wisdom
from .._fastest import bind, plan_call
from .._registry import BACKEND_NAMES, auto_candidates, module
from . import grid as grids
from .cases import suite
from .runner import Run, sweep
from .tune_params import tune_params


def tune(grid: str | None = None, *, workload=None, backends=None, wisdom=None, min_time_s: float = 0.05,
         progress: bool = True, from_run=None, params: bool = True) -> dict:
    """Measure the kernel parameters here, and time the backends where asked; keep both as wisdom, which
    the kernels and auto use from then on.

    Parameters
    ----------
    grid : str, optional
        A harness grid (``"tune"``, ``"smoke"``, ``"default"``, ``"large"``...) whose timings, each backend
        in a process of its own, auto's models are fitted to.  Ignored when `workload` is given.
    workload : list of (op, args, kwargs), optional
        Your own calls, e.g. ``[("convolve", (x, w), {"mode": "same"})]`` or
        ``[("conv1d", (x, weight), {"padding": "same"})]``: each problem is timed on every
        candidate backend in this process, exactly as auto will later meet it.
    backends : list of str, optional
        The backends to time on the grid (default: every backend auto may choose here).
    wisdom : path, optional
        The wisdom file (default ``$CONV1DBENCH_WISDOM`` or ``<user cache>/conv1dbench/wisdom.json``).
    min_time_s : float
        Seconds of repeats per grid measurement.
    progress : bool
        Show a progress bar while timing a grid.
    from_run : path, optional
        A saved harness run (``report.json`` of ``conv1dbench run``) whose timings to take instead
        of timing anything: how the package's default models are fitted from
        ``results/archive/amd-epyc-avx512-blas-haswell/tune``.
    params : bool
        Measure the kernel parameters first (:func:`conv1dbench.harness.tune_params.tune_params`).

    Returns
    -------
    dict
        ``{"wisdom": path, "params": {...}}`` (``tune_params``'s result, where measured), and where
        timings were taken ``"measurements": count, "models": [fitted model keys]``; for a grid
        ``"this_run"``: the models fitted on this run's timings alone (what ``conv1dbench tune
        --write-default`` writes).
    """
    path = _wisdom.resolve(wisdom if wisdom is not None else _auto.configure_auto()["wisdom"])
    result = {"wisdom": str(path)}
    if params and from_run is None:
        previous = _auto.configure_auto(wisdom=path)["wisdom"]
        try:
            result["params"] = tune_params(report=None)
        finally:
            _auto.configure_auto(wisdom=previous)
    if grid is None and workload is None and from_run is None:
        return result
    with _measured_planning(path):
        return {**result, **_tune(grid or "tune", workload, backends, path, min_time_s, progress, from_run)}


@contextlib.contextmanager
def _measured_planning(path):
    """FFT engines plan by measurement, FFTW's wisdom filed in ``path``: in this process and in the workers
    it starts (their environment), so that later processes get the measured plans at no cost."""
    names = (_planning.ENV_VAR, _wisdom.ENV_VAR)
    saved = {name: os.environ.get(name) for name in names}
    before = _planning.configure_fft()["planning"]
    os.environ.update({_planning.ENV_VAR: "measure", _wisdom.ENV_VAR: str(path)})
    _planning.configure_fft("measure")
    try:
        yield
    finally:
        _planning.configure_fft(before)
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _tune(grid, workload, backends, path, min_time_s, progress, from_run) -> dict:
    if workload is not None:
        count = sum(_measure_call(op, args, kwargs, path) for op, args, kwargs in workload)
    else:
        if from_run is not None:
            run = Run.load(Path(from_run))
            grid = run.meta.get("grid", grid)
        else:
            names = backends or _tunable()
            run = sweep(grids.grid(grid), list(names), min_time_s=min_time_s, progress=progress, interference=False,
                        memory=False, quick_peak=True, grid=grid, command=f"conv1dbench.tune(grid={grid!r})")
        measurements = measurements_from_rows(run.rows)
        _wisdom.record(measurements, path)
        count = len(measurements)
        this_run = {"fitted_on": {"grid": grid, "date": run.meta["date"], "machine": run.meta["machine"],
                                  "measurements": count}, "models": _model.fit(measurements)}
    _auto.reset()
    models = sorted(_model.fit(_wisdom.load(path)))
    result = {"wisdom": str(path), "measurements": count, "models": models}
    if workload is None:
        result["this_run"] = this_run  # the models of this run alone: what ships as the default
    return result


def _tunable() -> list[str]:
    """Every backend auto may choose here, for some dtype."""
    names = {n for dtype in ("float32", "float64", "complex128", "int64") for n in auto_candidates(np.dtype(dtype))}
    return [n for n in BACKEND_NAMES if n in names]


def _measure_call(op, args, kwargs, path) -> int:
    """Time every candidate on the core problem of one call, as ``measure=True`` auto does."""
    name, arguments = bind(op, args, kwargs)
    problem = plan_call(name, arguments)[0]
    with _auto.auto_settings(measure=True, wisdom=path, measured={}):  # fresh timings, not remembered ones
        details = _auto.ranking(problem).details
    return len(details.get("measured_s", {}))


def measurements_from_rows(rows) -> list[dict]:
    """Wisdom entries from the harness's tidy rows: auto's candidates' successful timings (best round).

    Only in-memory calls on the CPU are auto's wisdom: not the GPU or out-of-core rows (files, Dask
    and its threads in the time).
    """
    best: dict[str, dict] = {}
    for row in rows:
        declared = module(row.get("impl", "")) if row.get("impl") in BACKEND_NAMES else None
        if row.get("status") != "ok" or declared is None or not declared.AUTO or suite(row) in ("gpu", "dask"):
            continue
        problem = grids.problem(row)
        key = f"{problem.key_text()}|{row['impl']}"
        if key not in best or row["median_s"] < best[key]["median_s"]:
            best[key] = {"key": key, "problem": problem.key_text(), "backend": row["impl"], "dtype": problem.dtype.name,
                         "direction": problem.direction, "features": _model.features(problem, row["impl"]),
                         "median_s": row["median_s"]}
    return list(best.values())
