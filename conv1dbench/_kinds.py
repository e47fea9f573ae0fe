"""What kind of array an operand is: host (NumPy and array-likes), CUDA device, or Dask.

Recognised without importing numba.cuda or Dask, so that a call with NumPy arrays never pays for
them.  :func:`array_kind` is the one place the public functions decide where a call runs.
"""

from __future__ import annotations

import numpy as np

HOST, DEVICE, DASK = "host", "device", "dask"
#: Types that are host data for sure: checked first, so that the common call costs one set lookup.
_HOST_TYPES = frozenset((np.ndarray, list, tuple, int, float, complex, bool))


def is_device_array(obj) -> bool:
    """True for Numba device arrays (and the simulator's) and for ``__cuda_array_interface__`` objects."""
    return bool(getattr(obj, "__cuda_ndarray__", False)) or hasattr(obj, "__cuda_array_interface__")


def is_dask_array(obj) -> bool:
    """True for ``dask.array.Array``."""
    cls = type(obj)
    return cls.__name__ == "Array" and cls.__module__.startswith("dask.array")


def array_kind(*operands) -> str:
    """Where a call with these operands runs: on Dask if any is a Dask array, else on the device if
    any is a device array, else on the host (``None`` operands, an absent bias, are ignored)."""
    kind = HOST
    for a in operands:
        if a is None or type(a) in _HOST_TYPES:
            continue
        if is_dask_array(a):
            return DASK
        if is_device_array(a):
            kind = DEVICE
    return kind
