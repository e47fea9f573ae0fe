"""What every peer declares (:class:`Peer`), and the few helpers their calls share."""

from __future__ import annotations

import functools
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata

from ..._plan import padding_from_text

#: Thread settings a peer can have: ``"one"`` (it computes on one thread, whatever the machine),
#: ``"ours"`` (given our backends' thread count, :func:`threads`), ``"its own"`` (a pool it sizes itself).
THREAD_SETTINGS = ("one", "ours", "its own")


@dataclass(frozen=True)
class Peer:
    """One peer: what a user would otherwise call, and how the harness calls it.

    ``signal(x, w, w2, mode)`` and ``layer(point, arrays, backward)`` give ``(call, sync)``: the timed
    call, made with its data (plans and compilation done, untimed), and how to wait for its device
    (None on the CPU).  ``w2`` is the kernel shaped for a batch (``w[None]`` where ``x`` is 2-D).
    A peer has one or both.  The estimate's proxies (:mod:`conv1dbench.harness.estimate`): ``slower``
    times the fastest model's prediction; ``gflops``, a floor from the point's flops at that rate
    (direct-only peers, on signals); ``import_s`` and ``build_s``, seconds to import its library and to
    make a case beyond its data (plans, compilation).
    """

    name: str
    library: str                    # as a reason and the report name it: "pyFFTW", "Intel IPP"
    licence: str                    # the licence of what it loads, as its package declares it
    computes: str                   # what it computes, in a few words
    threads: str                    # one of THREAD_SETTINGS
    call: str                       # how it is called, as the report says it; {threads}: ours
    needs: str | None = None        # the import name of the optional package it needs (None: ours needs it too)
    package: str | None = None      # the distribution whose version the report names (default: ``needs``)
    present: Callable[[], bool] | None = None  # whether it can run here, where an import name cannot tell
    signal: Callable | None = None
    layer: Callable | None = None
    passes: tuple[str, ...] = ("forward",)
    dtypes: tuple[str, ...] = ("float32", "float64")
    gpu: bool = False               # device-resident, on the GPU grids; offered where ``sees_gpu()``
    sees_gpu: Callable[[], bool] | None = None
    fft: bool = False               # overlap-add on an FFT: set against our FFT engines
    apart: Callable[[dict], str | None] | None = None   # where its semantics part from ours, why; else None
    slower: float = 1.0
    gflops: float | None = None
    import_s: float = 0.0
    build_s: float = 0.0

    def __post_init__(self):
        if self.threads not in THREAD_SETTINGS:
            raise ValueError(f"peer {self.name!r}: threads must be one of {THREAD_SETTINGS}, not {self.threads!r}")
        if self.signal is None and self.layer is None:
            raise ValueError(f"peer {self.name!r} has neither a signal nor a layer call")

    @property
    def apis(self) -> tuple[str, ...]:
        return tuple(api for api, call in (("signal", self.signal), ("layer", self.layer)) if call is not None)

    def installed(self) -> bool:
        if self.present is not None:
            return self.present()
        return self.needs is None or installed(self.needs)

    def version(self) -> str | None:
        """The installed version of its package (None for what ours needs too, or where not installed)."""
        package = self.package or self.needs
        if package is None:
            return None
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    def skip_reason(self, point: dict) -> str | None:
        """Why this peer is not timed on ``point`` (its library missing, no such API, pass or dtype, semantics
        apart from ours), or None."""
        if not self.installed():
            return f"{self.library} is not installed"
        if point["api"] not in self.apis:
            others = {"signal": "signals", "layer": "layers"}
            return f"{self.name} has no {point['api']} API (it is timed on {others[self.apis[0]]} only)"
        if point.get("pass", "forward") not in self.passes:
            return f"{self.name} has no {point['pass']} pass"
        if point["dtype"] not in self.dtypes:
            return f"{self.name} does not compute in {point['dtype']}"
        return self.apart(point) if self.apart else None


@functools.cache
def installed(library: str) -> bool:
    """Whether ``library`` can be imported (kept: the cost model asks for every point of a grid)."""
    return importlib.util.find_spec(library) is not None


def threads() -> int:
    """The thread count of the peers given one: our backends' (Numba's pool, ``NUMBA_NUM_THREADS``; our FFT
    backends use as many), so that a peer with threads competes on the cores ours use."""
    import numba  # import time: only the cases of threaded peers need it

    return numba.config.NUMBA_NUM_THREADS


def planned(call):
    """``call``, called once now: what it plans or compiles on its first call (FFTW plans, XLA programs) is
    made when the case is, never in a timed sample."""
    call()
    return call


def scoped(call, scope):
    """``call`` run inside a fresh ``scope()`` each time: a setting that holds for the call and ends with it
    (in tests, cases run in the test's process).  Entering and leaving costs about 1 µs for
    ``set_workers``, 2.4 µs for pyFFTW's settings (timed here), against 80 µs for the shortest
    oaconvolve call of the grids."""
    def inside():
        with scope():
            return call()
    return inside


def sliced(full, mode: str, n: int, k: int):
    """scipy.signal.convolve's ``mode`` out of a full convolution along the last axis (a view):
    "same" keeps the middle ``n``, its extra sample on the left for an even kernel; "valid" the
    ``|n - k| + 1`` outputs that see no padding."""
    if mode == "full":
        return full
    start = (k - 1) // 2 if mode == "same" else min(n, k) - 1
    stop = start + (n if mode == "same" else abs(n - k) + 1)
    return full[..., start:stop]


def same_gives_max_outputs(function: str):
    """``apart`` of a peer whose "same" gives ``max(N, K)`` outputs (``numpy.convolve``'s rule) where scipy's
    gives N: such points are skipped, saying why."""
    def apart(point):
        if point["K"] > point["N"] and point["mode"] == "same":
            return f"{function}'s 'same' gives max(N, K) outputs, scipy's gives N"
        return None
    return apart


def layer_args(point: dict) -> dict:
    """A layer point's ``stride``, ``padding`` (a pair) and ``groups``, as ``conv1d`` takes them."""
    return {"stride": point["stride"], "padding": padding_from_text(point["mode"]), "groups": point["groups"]}
