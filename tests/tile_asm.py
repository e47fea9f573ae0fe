"""The assembly of one register tile's hot loop, for the tests (in this process, or in one compiled for
another CPU: ``python -c "import tile_asm; ..."`` with ``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` set).

:func:`hot_loop` compiles a tile (:func:`conv1dbench._backends._tiles._tile`, inlined) for ``lanes``
float32 lanes without running it, so that code for a CPU this machine lacks can be read here too.
"""

import re

import numpy as np
from numba import njit, typeof, types

from conv1dbench._backends import _tiles
from conv1dbench._backends._simd import Width


@njit(fastmath={"contract"})
def _one_tile(block, wt, taps, channel_span, tap_at, yf, width):
    _tiles._tile(block, wt, 0, 0, 8, taps, channel_span, tap_at, yf, 0, 48, 4, 48, width)


def hot_loop(lanes: int) -> dict:
    """What the loop around the tile's first multiply-add holds: its fused multiply-adds, the vector
    registers they name (``zmm``/``ymm``/``xmm``), their accumulators, and its lines of stack traffic."""
    f32 = typeof(np.ones(4, np.float32))
    signature = (f32, f32, types.intp, types.intp, typeof(np.ones(4, np.intp)), f32, typeof(Width(lanes)))
    _one_tile.compile(signature)
    asm = _one_tile.inspect_asm(signature).splitlines()
    fmas = [i for i, line in enumerate(asm) if "vfmadd" in line]
    start = max(i for i in range(fmas[0]) if re.match(r"\.LBB\w+:", asm[i]))  # the loop's label...
    label = asm[start].rstrip(":")
    end = next(i for i in range(fmas[0], len(asm))  # ... to the jump back to it
               if re.match(rf"\s+j\w+\s+{re.escape(label)}$", asm[i]))
    loop = asm[start:end + 1]
    in_loop = [line for line in loop if "vfmadd" in line]
    return {"fmas": len(in_loop),
            "registers": sorted({kind for line in in_loop for kind in re.findall(r"%([xyz]mm)\d+", line)}),
            "accumulators": len({line.split(",")[-1].strip() for line in in_loop}),
            "stack": [line.strip() for line in loop if re.search(r"\(%r[sb]p\)", line)]}
