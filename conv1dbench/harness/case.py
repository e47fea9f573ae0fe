"""What a benchmark declares for one implementation on one point: the call timed, and its check."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass
class Case:
    """One implementation on one point: ``call()`` is what is timed; ``error()`` checks its result.

    ``sync`` (if any) waits for the device: the worker calls it before reading the clock on both
    sides of a sample.  ``warmup`` (if any) is what runs before a single-shot timing
    (``"timing": "once"``) instead of a first call of the full size: a tiny call that compiles
    what the timed one runs.  ``device``: the GPU it runs on, by name (None on the CPU).  ``threads``:
    the threads our backend runs the call on (its ``threads(problem)``; None for peers, auto and the
    backends that do not say).
    """

    call: Callable[[], object]
    error: Callable[[], float]
    chose: str | None = None
    sync: Callable[[], object] | None = None
    warmup: Callable[[], object] | None = None
    device: str | None = None
    threads: int | None = None
