"""Kernel parameters: the constants that were chosen by timing, as the values in force on this machine.

A constant fitted on one machine is wrong on another (machines of one name here differ in vector ISA,
caches and BLAS kernel).  So each such constant is a :class:`Param` with a small candidate set and a
default read from a table keyed by what the machine *is* — CPU vendor, vector ISA, cache sizes, read
from the machine (:func:`facts`), never from its name.  ``conv1dbench tune`` measures the parameters
here (:mod:`conv1dbench.harness.tune_params`) and keeps what it chose in the wisdom file under this
machine's fingerprint; from then on those are the values in force.  :func:`in_force` says every
value and where it came from (the report's *Machine* section prints it).

A parameter here changes how work is cut (step sizes, thresholds, tile shapes), never the order of a
sum within an output, except where its own description says so (``numba.chunk_bytes``,
``numba.grad_positions``, ``numba.grad_jobs``, and the tile shapes): the same inputs give the same bits
for a given parameter set and thread count.

Not parameters: what the kernels' structure fixes (the layer tile's 4 output channels, the narrow
weight-gradient tile's 4 x 3 pairs, unrolled in the code) and what was not chosen by timing.
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from dataclasses import dataclass
from typing import Callable

from . import _threads
from ._backends import keep_wisdom, kept_wisdom

__all__ = ["PARAMS", "Facts", "Param", "facts", "in_force", "keep_tuned", "overriding", "reset", "value", "values"]

#: The name the chosen values are filed under in the wisdom file (beside FFTW's plans).
WISDOM_NAME = "params"


@dataclass(frozen=True)
class Facts:
    """What decides a parameter's default: the CPU's vendor, the vector ISA Numba compiles for, the
    data caches of one core (bytes; L3 is the whole cache) and the cores this process may use."""

    vendor: str
    isa: str
    l1d: int
    l2: int
    l3: int
    cores: int


def _cache_sizes(base: str = "/sys/devices/system/cpu/cpu0/cache") -> dict:
    """``{level: bytes}`` of cpu0's data and unified caches, from sysfs (empty where there is none)."""
    def read(entry, name):
        with open(f"{base}/{entry}/{name}") as f:
            return f.read().strip()

    sizes = {}
    try:
        entries = [e for e in sorted(os.listdir(base)) if e.startswith("index")]
    except OSError:
        return sizes
    for entry in entries:
        try:
            if read(entry, "type") != "Instruction":
                text = read(entry, "size")
                scale = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}.get(text[-1:], 1)
                sizes[int(read(entry, "level"))] = int(text.rstrip("KMG")) * scale
        except (OSError, ValueError):  # an entry unreadable or unexpected: the defaults stand in
            continue
    return sizes


@functools.cache
def facts() -> Facts:
    """This machine's :class:`Facts` (read once per process)."""
    from ._backends._simd import target_isa  # import time: Numba

    vendor = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            vendor = next((line.split(":", 1)[1].strip() for line in f if line.startswith("vendor_id")), vendor)
    except OSError:
        pass
    caches = _cache_sizes()
    return Facts(vendor=vendor, isa=target_isa().name, l1d=caches.get(1, 32 << 10), l2=caches.get(2, 1 << 20),
                 l3=caches.get(3, 8 << 20), cores=_threads.cores())


@dataclass(frozen=True)
class Param:
    """A kernel parameter.

    Its name is ``"<owner>.<what>"``: the owner is a backend's name (that backend alone runs it) or a
    rule (every backend of that rule shares it, e.g. ``fourier``, the FFT engines).  ``rule`` is the
    rule of the backends it belongs to (their module's ``RULE``: ``tune`` times it on them); its kind
    is ``"threshold"`` (from how much work something is done, timed both ways) or ``"size"`` (every
    candidate timed); its candidates are what ``tune`` tries, a tuple or ``candidates(facts) ->
    tuple`` where they depend on the machine (a tile's shape on the vector registers); its default on
    a machine is ``default(facts) -> value``, the candidate nearest to it; ``doc`` says what it does."""

    name: str
    rule: str
    kind: str
    candidates: tuple | Callable[[Facts], tuple]
    default: Callable[[Facts], object]
    doc: str

    @property
    def owner(self) -> str:
        return self.name.split(".", 1)[0]

    def candidates_on(self, machine: Facts) -> tuple:
        """The candidates on ``machine``."""
        return self.candidates(machine) if callable(self.candidates) else self.candidates

    def default_for(self, machine: Facts) -> object:
        """The candidate nearest the table's default (so that a default is always something tune tries)."""
        wanted = self.default(machine)
        return min(self.candidates_on(machine), key=lambda c: abs(float(c) - float(wanted)))


def _pow2_at_most(n: int) -> int:
    return 1 << max(0, int(n).bit_length() - 1)


def _tile_shape(machine: Facts):
    """The register tiles' shapes for ``machine``'s vector ISA (``_tiles.TILE_SHAPES``, which says why)."""
    from ._backends._tiles import TILE_SHAPES  # import time: Numba

    return TILE_SHAPES[machine.isa]


def _wide(machine: Facts) -> bool:
    """32 vector registers (AVX-512), against 16."""
    return machine.isa == "AVX-512"


INF = float("inf")

PARAMS = {p.name: p for p in (
    Param("fourier.spread_min_work", "fourier", "threshold", (1e6, 2e6, 3e6, 5e6, 1e7, INF), lambda f: 3e6,
          "least transform work (rows x windows x F log2 F) of a forward FFT call whose steps are spread over "
          "the cores, each step whole on one thread (inf: never)"),
    Param("fourier.chunk_bytes", "fourier", "size", (1 << 18, 1 << 19, 1 << 20, 1 << 21, 1 << 22),
          lambda f: _pow2_at_most(f.l2),
          "bytes of spectra per step of a forward FFT call: the step's working set, sized to the core's L2"),
    Param("fftw.parallel_min_work", "fourier", "threshold", (2e5, 6e5, 2e6, 6e6, INF), lambda f: 6e5,
          "least work (rows x F log2 F) of one FFTW transform that runs on FFTW's threads (inf: never)"),
    Param("ducc.parallel_min_work", "fourier", "threshold", (2e5, 7e5, 2e6, 7e6, INF), lambda f: 7e5,
          "least work (rows x F log2 F) of one ducc0 transform of at least 32 rows that runs its rows on "
          "several threads (inf: never)"),
    Param("fftw.cache_points", "fourier", "size", (2048, 4096, 8192, 16384, 32768), lambda f: f.l1d // 8,
          "the block-length model's transform size (points) beyond which FFTW's transforms cost more per "
          "point: about where a complex transform of float32 leaves L1"),
    Param("ducc.cache_points", "fourier", "size", (4096, 8192, 16384, 32768, 65536), lambda f: f.l1d // 2,
          "the block-length model's transform size (points) beyond which ducc0's transforms cost more per point"),
    Param("fft.cache_points", "fourier", "size", (2048, 4096, 8192, 16384, 32768), lambda f: f.l1d // 4,
          "the block-length model's transform size (points) beyond which pocketfft's transforms cost more "
          "per point"),
    Param("numba.parallel_min_macs", "direct", "threshold", (1 << 17, 1 << 18, 1 << 19, 1 << 20, 1 << 21),
          lambda f: 1 << 19,
          "least multiply-adds of a numba call that runs on several threads (below it, one)"),
    Param("numba.layer_vectors", "direct", "size", lambda f: (4, 5, 6) if _wide(f) else (2, 3),
          lambda f: _tile_shape(f).layer,
          "vectors per row of the layer tile (4 output channels x this many vectors of positions, and the "
          "weight gradient's 4 pairs x this many vectors of output channels at most): its accumulators "
          "must fit the vector registers"),
    Param("numba.row_vectors", "direct", "size", lambda f: (12, 16, 24) if _wide(f) else (6, 8, 12),
          lambda f: _tile_shape(f).row,
          "vectors of the row tile (one output channel: depthwise layers and single signals)"),
    Param("numba.row_min_pairs", "direct", "threshold", (2, 4, 6, 8, 12, 16), lambda f: 6,
          "least (input channel, tap) pairs per output of a layer with fewer than 4 output channels per "
          "group that runs on the row tile (below it, the loops)"),
    Param("numba.row_min_outputs", "direct", "threshold", (32, 64, 128, 256, 512), lambda f: 128,
          "least output positions per row of such a layer that runs on the row tile (below it, the loops)"),
    Param("numba.row_job_positions", "direct", "size", (4096, 8192, 16384, 32768, 65536), lambda f: 16384,
          "output positions per job of the row tile, at most (fewer where rows are too few for the threads)"),
    Param("numba.chunk_bytes", "direct", "size", (1 << 14, 1 << 16, 1 << 17, 1 << 18, 1 << 20),
          lambda f: _pow2_at_most(f.l2 // 8),
          "bytes of input channels the layer tile's blocks of output channels run over before the tile's "
          "sums go back to memory and the next chunk starts: a share of L2 (the order of each output's "
          "sum follows it)"),
    Param("numba.grad_panel_bytes", "direct", "size", (1 << 14, 1 << 16, 1 << 18, 1 << 20, 1 << 22),
          lambda f: _pow2_at_most(f.l2 // 4),
          "bytes of the output gradient's transpose that the weight gradient's tiles run over before their "
          "sums go back to memory (the panel every block of (channel, tap) pairs reads; the result's bits "
          "do not depend on it)"),
    Param("numba.grad_positions", "direct", "size", (1024, 2048, 4096, 8192, 16384), lambda f: 4096,
          "output positions per piece of the weight gradient: a piece's input is packed once and every tile "
          "runs over it (the order of the sums follows it)"),
    Param("numba.grad_jobs", "direct", "size", (4, 8, 16), lambda f: max(8, 2 * f.cores),
          "the weight gradient's jobs at most, each summing its pieces into a gradient of its own, added "
          "up at the end (the order of the sums follows it, not the threads)"),
    Param("im2col.patch_bytes", "gemm", "size", (2 << 20, 4 << 20, 8 << 20, 16 << 20, 32 << 20),
          lambda f: min(32 << 20, max(2 << 20, _pow2_at_most(f.l3 // 4))),
          "bytes of the patch matrix im2col builds per GEMM, a share of the last-level cache"),
)}

_lock = threading.Lock()
_state: dict = {"values": None, "sources": None}


def _load() -> None:
    tuned = kept_wisdom(WISDOM_NAME)
    tuned = tuned if isinstance(tuned, dict) else {}
    machine = facts()
    values, sources = {}, {}
    for name, param in PARAMS.items():
        kept = tuned.get(name)
        if kept is not None and kept in param.candidates_on(machine):
            values[name], sources[name] = kept, "tuned"
        else:
            values[name], sources[name] = param.default_for(machine), "default"
    _state.update(values=values, sources=sources)


def value(name: str):
    """The value in force of parameter ``name`` (tuned on this machine, else the default for it)."""
    values = _state["values"]
    if values is None:
        with _lock:
            if _state["values"] is None:
                _load()
        values = _state["values"]
    return values[name]


def values() -> dict:
    """``{name: value}`` of every parameter in force: the same dict until the values in force change (a
    tune, another wisdom file, :func:`overriding`), so that a caller may keep what it made of it."""
    found = _state["values"]
    while found is None:
        value(next(iter(PARAMS)))
        found = _state["values"]
    return found


def in_force() -> dict:
    """``{name: {"value": v, "source": "tuned" | "default", "default": d}}`` for every parameter, with
    the machine facts the defaults came from under ``"facts"``."""
    value(next(iter(PARAMS)))
    machine = facts()
    table = {name: {"value": _state["values"][name], "source": _state["sources"][name],
                    "default": PARAMS[name].default_for(machine)} for name in PARAMS}
    return {"facts": machine.__dict__, "params": table}


def keep_tuned(chosen: dict) -> None:
    """Keep ``{name: value}`` in the wisdom file as this machine's tuned values (merged with those kept)."""
    unknown = [name for name in chosen if name not in PARAMS]
    if unknown:
        raise KeyError(f"no such parameters: {', '.join(unknown)}")
    tuned = kept_wisdom(WISDOM_NAME)
    tuned = dict(tuned) if isinstance(tuned, dict) else {}
    tuned.update(chosen)
    keep_wisdom(WISDOM_NAME, tuned)
    reset()


def reset() -> None:
    """Read the values in force afresh on next use (after a tune, or another wisdom file)."""
    with _lock:
        _state.update(values=None, sources=None)


@contextlib.contextmanager
def overriding(**values):
    """Within a ``with`` block, these values are in force (names with ``__`` for ``.``:
    ``overriding(fourier__spread_min_work=0)``), whatever the candidates; for tests and for ``tune``'s
    measurements.  What was in force before is restored after."""
    chosen = {name.replace("__", "."): v for name, v in values.items()}
    unknown = [name for name in chosen if name not in PARAMS]
    if unknown:
        raise KeyError(f"no such parameters: {', '.join(unknown)}")
    value(next(iter(PARAMS)))
    saved = dict(_state["values"]), dict(_state["sources"])
    _state["values"] = {**saved[0], **chosen}
    _state["sources"] = {**saved[1], **{name: "set" for name in chosen}}
    try:
        yield
    finally:
        _state["values"], _state["sources"] = saved
