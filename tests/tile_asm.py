"""The assembly of one register tile's hot loop, for the tests (in this process, or in one compiled for
another CPU: ``python -c "import tile_asm; ..."`` with ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` set).

:func:`hot_loop` compiles a tile of :mod:`conv1dbench._backends._tiles` (inlined: the layer tile, the
row tile or the weight-gradient tile) for ``lanes`` float32 lanes without running it, so that code for a
CPU this machine lacks can be read here too.
"""

import re

import numpy as np
from numba import njit, typeof, types

from conv1dbench._backends import _tiles
from conv1dbench._backends._simd import Count, Width


@njit(fastmath={"contract"})
def _layer(source, wt, taps, channel_span, tap_at, yf, width, vectors):
    _tiles._tile(source, 0, wt, 0, 0, 8, taps, channel_span, tap_at, yf, 0, 4096, 4, 4096, width, vectors)


@njit(fastmath={"contract"})
def _row(source, wt, taps, channel_span, tap_at, yf, width, vectors):
    _tiles._row_tile(source, channel_span, tap_at, 1, taps, 0, taps, wt, 0, yf, 0, 4096, width, vectors)


@njit(fastmath={"contract"})
def _weight(source, wt, taps, channel_span, tap_at, yf, width, vectors):
    _tiles._weight_tile(yf, 0, 64, 4, source, channel_span, tap_at, taps, 0, 3, 256, wt.reshape((4, 1, 3)), 0,
                        width)


@njit(fastmath={"contract"})
def _outputs(source, wt, taps, channel_span, tap_at, yf, width, vectors):
    _tiles._outputs_tile(source, channel_span, tap_at, taps, 0, 4, wt, vectors.n * width.lanes, 0, 0, 256, yf, 0,
                         width, vectors)


# Each stores every output it computes (4096 of them): the compiler drops accumulators whose outputs are never stored.
TILES = {"layer": _layer, "row": _row, "weight": _weight, "outputs": _outputs}


def loop_lines(kind: str, lanes: int, isa: str) -> list[str]:
    """The assembly of tile ``kind``'s hot loop (``layer``, ``row``, ``weight``, ``outputs``), compiled
    for ``lanes`` float32 lanes with ``isa``'s tile shape (:data:`conv1dbench._backends._tiles.TILE_SHAPES`):
    from the label of the loop around the first multiply-add to the jump back to it (what ``llvm-mca``
    reads)."""
    f32 = typeof(np.ones(4, np.float32))
    shape = _tiles.TILE_SHAPES[isa]
    vectors = Count(shape.layer if kind in ("layer", "outputs") else shape.row)
    signature = (f32, f32, types.intp, types.intp, typeof(np.ones(4, np.intp)), f32, typeof(Width(lanes)),
                 typeof(vectors))
    kernel = TILES[kind]
    kernel.compile(signature)
    asm = kernel.inspect_asm(signature).splitlines()
    fmas = [i for i, line in enumerate(asm) if "vfmadd" in line]
    start = max(i for i in range(fmas[0]) if re.match(r"\.LBB\w+:", asm[i]))  # the loop's label...
    label = asm[start].rstrip(":")
    end = next(i for i in range(fmas[0], len(asm))  # ... to the jump back to it
               if re.match(rf"\s+j\w+\s+{re.escape(label)}$", asm[i]))
    return asm[start:end + 1]


def hot_loop(kind: str, lanes: int, isa: str) -> dict:
    """What :func:`loop_lines` of tile ``kind`` holds: its fused multiply-adds, the vector registers
    they name (``zmm``/``ymm``/``xmm``), their accumulators, and its lines of stack traffic."""
    loop = loop_lines(kind, lanes, isa)
    in_loop = [line for line in loop if "vfmadd" in line]
    return {"fmas": len(in_loop),
            "registers": sorted({kind for line in in_loop for kind in re.findall(r"%([xyz]mm)\d+", line)}),
            "accumulators": len({line.split(",")[-1].strip() for line in in_loop}),
            "stack": [line.strip() for line in loop if re.search(r"\(%r[sb]p\)", line)]}
