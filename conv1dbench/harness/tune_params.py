"""Measure the kernel parameters (:mod:`conv1dbench._params`) on this machine: the first part of ``tune``.

Each parameter is timed on a few problems that it decides, in this process, every candidate of a
problem interleaved sample by sample (:func:`conv1dbench.timing.measure_interleaved`), so that a slow
stretch of a shared machine slows them all alike:

- a *threshold* (a parameter saying from how much work something is done: threads for numba, steps
  spread over the cores for the FFT engines, the row tile against the loops) is timed both ways on
  problems either side of its default; each candidate threshold then costs what its choice on every
  problem measured, and a way that is not at least :data:`MARGIN` faster counts as no gain (a
  parallel call in a busy process pays for waking threads that a call timed alone does not);
- a *size* (bytes per step, per patch chunk; a tile's vectors) is timed at every candidate on each
  problem.

The candidate with the least total time over the problems (the geometric mean, so that every
problem counts alike) is chosen; ties go to the default.  The ``fourier.*`` parameters are shared by
the three FFT engines, so they are timed on each engine installed; a parameter named after a backend
(``fftw.*``, ``numba.*``) on that backend alone.  18 parameters: under a minute on 2 cores with the
kernels compiled; a tile shape not run before compiles its kernels first (a minute or so).
"""

from __future__ import annotations

import math
import time

import numpy as np

from .. import _params
from .._api import conv1d, convolve
from .._plan import plan_layer, plan_signal
from .._registry import BACKEND_NAMES, get_backend, is_available, module
from ..timing import measure_interleaved

#: Seconds of interleaved samples per problem (all its candidates together).
MIN_TIME_S = 0.4
#: What a threshold's "on" side must gain over "off" on a problem to count as faster.
MARGIN = 1.05


def _backends(name: str) -> list[str]:
    """The available CPU backends parameter ``name`` belongs to: its owner, where that is a backend, else
    every backend of its rule (each FFT engine for ``fourier.*``)."""
    param = _params.PARAMS[name]
    owners = [param.owner] if param.owner in BACKEND_NAMES else BACKEND_NAMES
    return [n for n in owners
            if is_available(n) and (m := module(n)).RULE == param.rule and m.AUTO and not m.DEVICE]


def _signal(n, k, dtype, backend):
    rng = np.random.default_rng(n + k)
    x, w = rng.standard_normal(n).astype(dtype), rng.standard_normal(k).astype(dtype)
    return lambda: convolve(x, w, mode="same", backend=backend)


def _layer(b, c_in, c_out, length, k, backend, backward=False):
    rng = np.random.default_rng(length)
    x = rng.standard_normal((b, c_in, length)).astype(np.float32)
    w = rng.standard_normal((c_out, c_in, k)).astype(np.float32)
    if backward:  # the weight gradient alone: what the parameter decides
        g = rng.standard_normal((b, c_out, length)).astype(np.float32)
        weight_gradient = module(backend).backward_weight
        return lambda: weight_gradient(g, x, k, (k - 1) // 2, k // 2, 1, 1, 1)
    return lambda: conv1d(x, w, padding="same", backend=backend)


def _unspread(call):
    """``call`` with the FFT calls' steps taken in turn: where an engine's own threads decide."""
    def run():
        with _params.overriding(fourier__spread_min_work=math.inf):
            call()
    return run


#: The layers (B, C_in, C_out, L, K) the layer tile's parameters are timed on, and the weight gradient's.
LAYERS = ((8, 128, 128, 1024, 5), (16, 64, 64, 2048, 3), (4, 64, 128, 4096, 9))
GRADIENTS = ((8, 64, 64, 4096, 7), (8, 256, 256, 512, 5), (16, 128, 128, 2048, 3))


def _signals(backend, shapes, dtype=np.float32, work=None) -> list:
    return [(f"{backend} N={n:g} K={k} {np.dtype(dtype).name}", None if work is None else work(n, k),
             _signal(n, k, dtype, backend)) for n, k in shapes]


def _layers(backend, shapes, backward=False) -> list:
    return [(f"{backend} {shape}{' weight gradient' if backward else ''}", None, _layer(*shape, backend, backward))
            for shape in shapes]


def _spread_problems(backend) -> list:
    return [(f"{backend} N={n:g} K={k} {np.dtype(dtype).name}", _fft_work(backend, n, k, dtype),
             _signal(n, k, dtype, backend))
            for n, k, dtype in ((10**5, 1023, np.float32), (2 * 10**5, 1023, np.float32), (2 * 10**5, 255, np.float64),
                                (3 * 10**5, 1500, np.float64), (10**6, 255, np.float32))]


def _engine_threads_problems(backend) -> list:
    """An FFT engine's own threads: layers of one channel, their steps taken in turn."""
    return [(f"{backend} {shape}", _step_work(backend, shape), _unspread(_layer(*shape, backend)))
            for shape in ((1, 1, 1, 20_000, 255), (4, 1, 1, 10_000, 127), (1, 1, 1, 10**5, 511),
                          (8, 1, 1, 20_000, 255), (32, 1, 1, 8192, 255), (64, 1, 1, 16384, 511))]


def _cache_points_problems(backend) -> list:
    """Where the block-length model's choice of window moves."""
    return (_signals(backend, ((10**6, 255), (2 * 10**5, 4095)))
            + _signals(backend, ((10**6, 1023),), np.float64))


#: ``{parameter: problems(backend)}``: what each parameter is timed on (:func:`_problems`).
PROBLEMS = {
    "fourier.spread_min_work": _spread_problems,
    "fourier.chunk_bytes": lambda b: _signals(b, ((10**6, 255),)) + _signals(b, ((10**6, 1023),), np.float64),
    "fftw.parallel_min_work": _engine_threads_problems,
    "ducc.parallel_min_work": _engine_threads_problems,
    "fftw.cache_points": _cache_points_problems,
    "ducc.cache_points": _cache_points_problems,
    "fft.cache_points": _cache_points_problems,
    "numba.parallel_min_macs": lambda b: _signals(b, [(1 << e, 16) for e in range(13, 18)], work=lambda n, k: n * k),
    "numba.layer_vectors": lambda b: _layers(b, LAYERS),
    "numba.chunk_bytes": lambda b: _layers(b, LAYERS),
    "numba.row_vectors": lambda b: _signals(b, ((10**4, 31), (10**5, 127), (10**6, 63))),
    # a single signal has a (channel, tap) pair per tap, and in "same" mode an output per sample
    "numba.row_min_pairs": lambda b: _signals(b, [(10**5, k) for k in (3, 5, 7, 9, 15)], work=lambda n, k: k),
    "numba.row_min_outputs": lambda b: _signals(b, [(n, 15) for n in (48, 96, 192, 384)], work=lambda n, k: n),
    "numba.row_job_positions": lambda b: _signals(b, ((10**6, 31), (3 * 10**5, 127))),
    "numba.grad_panel_bytes": lambda b: _layers(b, GRADIENTS, backward=True),
    "numba.grad_positions": lambda b: _layers(b, GRADIENTS, backward=True),
    "numba.grad_jobs": lambda b: _layers(b, GRADIENTS, backward=True),
    "im2col.patch_bytes": lambda b: _layers(b, ((8, 64, 64, 4096, 7), (4, 128, 128, 2048, 5), (2, 8, 8, 100_000, 63))),
}


def _problems(name: str) -> list:
    """``[(label, work, call)]``: the problems parameter ``name`` is timed on, on each backend it belongs to
    (work: what a threshold compares, in the parameter's unit; None for a size)."""
    return [problem for backend in _backends(name) for problem in PROBLEMS[name](backend)]


def _fft_work(backend, n, k, dtype) -> float:
    """Where a signal's forward call ("same") on ``backend`` stands against ``fourier.spread_min_work``."""
    from .._backends import _fourier  # import time: only tune needs the FFT plan

    problem = plan_signal("convolve", (n,), (k,), np.dtype(dtype).name, np.dtype(dtype).name, "same").problem
    return _fourier.spread_work(get_backend(backend, np.dtype(dtype)).ENGINE, problem)


def _step_work(backend, shape) -> float:
    """Where a float32 layer's forward call ("same") on ``backend`` stands against the engine's threshold."""
    from .._backends import _fourier  # import time: only tune needs the FFT plan

    b, c_in, c_out, length, k = shape
    problem = plan_layer((b, c_in, length), (c_out, c_in, k), np.float32, padding="same").problem
    return _fourier.step_work(get_backend(backend, np.dtype(np.float32)).ENGINE, problem)


def _timed(call, settings: list[dict], min_time_s: float) -> list[float]:
    """Seconds per call of ``call`` under each of ``settings`` (parameter overrides), interleaved."""
    def under(setting):
        def run():
            with _params.overriding(**{k.replace(".", "__"): v for k, v in setting.items()}):
                call()
        return run
    return [t.median_s for t in measure_interleaved([under(s) for s in settings], min_time_s=min_time_s)]


def _choose_threshold(param, problems, min_time_s) -> tuple[object, list]:
    """A threshold: each problem timed on (as if its work reached the threshold) and off; every candidate
    costed from those.  "On" that is not :data:`MARGIN` faster than "off" is costed as the slower of the two."""
    timed = []
    for label, work, call in problems:
        on, off = _timed(call, [{param.name: 0}, {param.name: math.inf}], min_time_s)
        timed.append((label, work, on if on * MARGIN < off else max(on, off), off, on))

    def cost(candidate):
        return sum(math.log(on if work >= candidate else off) for _, work, on, off, _ in timed)
    rows = [{"problem": label, "work": work, "off_ms": off * 1e3, "on_ms": on * 1e3}
            for label, work, _, off, on in timed]
    return _best(param, cost), rows


def _choose_size(param, problems, min_time_s) -> tuple[object, list]:
    """A size: every candidate timed on each problem."""
    candidates = param.candidates_on(_params.facts())
    settings = [{param.name: c} for c in candidates]
    timed = [(label, _timed(call, settings, min_time_s)) for label, _, call in problems]

    def cost(candidate):
        i = candidates.index(candidate)
        return sum(math.log(times[i]) for _, times in timed)
    rows = [{"problem": label, **{f"{c:g}": t * 1e3 for c, t in zip(candidates, times, strict=True)}}
            for label, times in timed]
    return _best(param, cost), rows


def _best(param, cost):
    default = param.default_for(_params.facts())
    costs = {c: cost(c) for c in param.candidates_on(_params.facts())}
    best = min(costs.values())
    return default if costs[default] <= best + 1e-9 else min(costs, key=costs.get)


def tune_params(names=None, *, min_time_s: float = MIN_TIME_S, keep: bool = True, report=print) -> dict:
    """Measure the kernel parameters ``names`` (default: all) here and, with ``keep``, keep the choices in the
    wisdom file as this machine's values in force.

    Returns ``{"chosen": {name: value}, "default": {name: value}, "measured": {name: rows}, "seconds": s}``;
    ``report`` gets a line per parameter as it is decided.
    """
    started = time.perf_counter()
    names = list(_params.PARAMS) if names is None else list(names)
    chosen, defaults, measured = {}, {}, {}
    for name in names:
        param = _params.PARAMS[name]
        problems = _problems(name)
        choose = _choose_threshold if param.kind == "threshold" else _choose_size
        chosen[name], measured[name] = choose(param, problems, min_time_s)
        defaults[name] = param.default_for(_params.facts())
        if report:
            report(f"{name}: {chosen[name]:g} (default here {defaults[name]:g})")
    if keep:
        _params.keep_tuned(chosen)
    return {"chosen": chosen, "default": defaults, "measured": measured, "seconds": time.perf_counter() - started}
