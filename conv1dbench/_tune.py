"""``conv1dbench.tune``: measure the backends here, so that ``backend="auto"`` knows this machine."""

from __future__ import annotations

import inspect
from pathlib import Path

from . import _layer, _model, _select, _signal, _wisdom


def tune(grid: str = "tune", *, workload=None, backends=None, wisdom=None, min_time_s: float = 0.05,
         progress: bool = True, from_run=None) -> dict:
    """Time the backends and keep the timings as wisdom; auto uses them from then on.

    Parameters
    ----------
    grid : str
        A harness grid (``"tune"``, the default, or ``"smoke"``, ``"default"``, ``"large"``), timed
        with each backend in a process of its own.  Ignored when `workload` is given.
    workload : list of (op, args, kwargs), optional
        Your own calls, e.g. ``[("convolve", (x, w), {"mode": "same"})]`` or
        ``[("conv1d", (x, weight), {"padding": "same"})]``: each problem is timed on every
        candidate backend in this process, exactly as auto will later meet it.
    backends : list of str, optional
        The backends to time on the grid (default: every available CPU backend).
    wisdom : path, optional
        The wisdom file (default ``$CONV1DBENCH_WISDOM`` or ``<user cache>/conv1dbench/wisdom.json``).
    min_time_s : float
        Seconds of repeats per grid measurement.
    from_run : path, optional
        A saved harness run (``report.json`` of ``conv1dbench run``) whose timings to take instead
        of timing anything: how the package's default models are fitted from ``results/tune``.

    Returns
    -------
    dict
        ``{"wisdom": path, "measurements": count, "models": [fitted model keys]}``, and for a grid
        ``"this_run"``: the models fitted on this run's timings alone (what ``conv1dbench tune
        --write-default`` writes).
    """
    path = _wisdom.resolve(wisdom if wisdom is not None else _select._state.wisdom_path)
    if workload is not None:
        count = sum(_measure_call(op, args, kwargs, path) for op, args, kwargs in workload)
    else:
        from .harness import grid as grids
        from .harness.runner import Run, sweep

        if from_run is not None:
            run = Run.load(Path(from_run))
            grid = run.meta.get("grid", grid)
        else:
            names = backends or [n for n in _select.CANDIDATES if _select.is_available(n)]
            run = sweep(grids.grid(grid), list(names), min_time_s=min_time_s, progress=progress, interference=False,
                        quick_peak=True, grid=grid, command=f"conv1dbench.tune(grid={grid!r})")
        measurements = _model.measurements_from_rows(run.rows)
        _wisdom.record(measurements, path)
        count = len(measurements)
        this_run = {"fitted_on": {"grid": grid, "date": run.meta["date"], "machine": run.meta["machine"],
                                  "measurements": count}, "models": _model.fit(measurements)}
    _select.reset()
    models = sorted(_model.fit([r for r in _wisdom.load(path) if "features" in r]))
    result = {"wisdom": str(path), "measurements": count, "models": models}
    if workload is None:
        result["this_run"] = this_run  # the models of this run alone: what ships as the default
    return result


def _measure_call(op, args, kwargs, path) -> int:
    """Time every candidate on the core problem of one call, as ``measure=True`` auto does."""
    functions = {"convolve": _signal.convolve, "correlate": _signal.correlate, "conv1d": _layer.conv1d,
                 "conv1d_backward": _layer.conv1d_backward}
    if op not in functions:
        raise ValueError(f"unknown op {op!r} in the workload; use one of {', '.join(map(repr, functions))}")
    a = inspect.signature(functions[op]).bind(*args, **kwargs)
    a.apply_defaults()
    a = a.arguments
    before = _select.configure_auto(measure=True, wisdom=path)
    try:
        _select._state.load()
        _select._state.measured.clear()   # tuning asks for fresh timings, not remembered ones
        _select._state.decisions.clear()
        if op in ("convolve", "correlate"):
            details = _signal.backend_for(_signal.prepare(op, a["in1"], a["in2"], a["mode"], a["axis"]), "auto")[2]
        else:
            problem = _layer.prepare(a["x"], a["weight"], a["stride"], a["padding"], a["dilation"], a["groups"])
            details = _layer.backend_for(problem, "auto", "backward" if op == "conv1d_backward" else "forward")[2]
        return len(details.get("measured_s", {}))
    finally:
        _select.configure_auto(measure=before["measure"], wisdom=before["wisdom"] or path)
