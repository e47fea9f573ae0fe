"""One implementation timed in a busy process: between a BLAS product, ``numpy.convolve`` and
``scipy.signal.fftconvolve``, as users call it inside their own programs.

The sweep times each implementation alone; a user's process runs NumPy, SciPy and BLAS work between
our calls, and those libraries' thread pools stay awake after their work (OpenBLAS's threads spin
for a while; so do OpenMP's), holding the cores that the next call's threads need.  So a *busy row*
times the call twice in one worker: alone (repeated calls, nothing in between), and in a loop whose
every round runs the neighbours (:func:`neighbours`), then the call, then the BLAS product once
more; the product right after our call, against the product right after the neighbours alone, says
whether our threads slow the user's next BLAS call in turn.  The runner runs these rows
(:func:`conv1dbench.harness.runner.busy_check`).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.signal

from ..timing import measure
from .cases import setup

#: The neighbours' sizes: a product that OpenBLAS runs on all its threads, a short direct
#: convolution and a mid-sized FFT one.
PRODUCT_N = 300
SHORT = (1000, 3)
FFT = (10_000, 255)
#: Rounds of the busy loop at most (and at least the worker's ``min_samples``).
MAX_ROUNDS = 200
#: Seconds to wait before timing a call alone: OpenBLAS's threads spin for about 0.1 s after their last
#: work, and after they start (with the process), and a spinning thread holds a core that the call's own
#: threads need (``results/NOTES.md``, "numba: threads in a busy process").
SETTLE_S = 0.3
#: Seconds of one round's neighbours, about (two products, the two convolutions): for the run's time estimate.
NEIGHBOURS_S = 2e-3


def neighbours(rng: np.random.Generator):
    """The calls a busy round makes before ours: ``(product, others)``, each a function of no arguments."""
    a = rng.standard_normal((PRODUCT_N, PRODUCT_N))
    xs, ws = rng.standard_normal(SHORT[0]), rng.standard_normal(SHORT[1])
    xf, wf = rng.standard_normal(FFT[0]), rng.standard_normal(FFT[1])

    def product():
        return a @ a

    def others():
        np.convolve(xs, ws)
        scipy.signal.fftconvolve(xf, wf)
    return product, others


def predicted_s(call_s: float, min_time_s: float, min_samples: int) -> float:
    """Seconds :func:`busy_timing` spends beyond timing the call alone: the wait before it, and the loop."""
    return SETTLE_S + max(2 * min_time_s, min_samples * (call_s + 2 * NEIGHBOURS_S))


def busy_timing(impl: str, point: dict, min_time_s: float, min_samples: int) -> dict:
    """``impl`` on ``point``, alone and in the busy loop, and the BLAS product after it and after the neighbours.

    Seconds per call, medians: ``alone_s`` (:func:`conv1dbench.timing.measure`, after
    :data:`SETTLE_S` of rest) and ``busy_s`` (one call per round, right after the
    neighbours).  Rounds alternate: one ends with our call and then the product (``product_after_s``),
    the next with the product right after the neighbours (``product_s``, the product as it runs in
    this loop without us), so that both see the same stretches of the machine.  The loop runs for
    ``2 * min_time_s`` and at least ``min_samples`` rounds of each kind.
    """
    case = setup(impl, point)
    sync = case.sync or (lambda: None)
    time.sleep(SETTLE_S)  # the previous point's loop ran products: let OpenBLAS's threads go to sleep
    alone = measure(case.call, min_time_s=min_time_s, min_samples=min_samples, sync=case.sync)
    product, others = neighbours(np.random.default_rng(0))
    product()
    busy, after, control = [], [], []
    deadline = time.perf_counter() + 2 * min_time_s
    while len(busy) < min_samples or (time.perf_counter() < deadline and len(busy) < MAX_ROUNDS):
        for ours in (True, False):
            product()
            others()
            if ours:
                sync()
                start = time.perf_counter()
                case.call()
                sync()
                busy.append(time.perf_counter() - start)
            start = time.perf_counter()
            product()
            (after if ours else control).append(time.perf_counter() - start)
    return {"alone_s": alone.median_s, "busy_s": float(np.median(busy)), "product_s": float(np.median(control)),
            "product_after_s": float(np.median(after)), "rounds": len(busy), "chose": case.chose}
