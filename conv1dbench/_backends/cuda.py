"""``cuda``: numba.cuda kernels on an NVIDIA GPU.

Registered so that ``backends()`` lists it, but not implemented yet: the kernels are the subject of
the GPU issue.  Until then it reports itself unavailable, and ``backend="cuda"`` raises
``BackendUnavailable``.
"""

from __future__ import annotations

import numpy as np

DTYPES = frozenset((np.dtype(np.float32), np.dtype(np.float64)))


def unavailable_reason() -> str | None:
    return ("the cuda backend is not implemented yet (numba.cuda kernels are planned); "
            "use 'numba' on the CPU meanwhile")
