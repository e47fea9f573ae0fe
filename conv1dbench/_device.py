"""Device arrays in the front ends: recognised without importing numba.cuda, run only on ``cuda``.

A device array is a Numba device array or any object exposing ``__cuda_array_interface__`` (CuPy
arrays, CUDA torch tensors).  Such inputs never take a host round trip: the front ends check them
here and hand them to the ``cuda`` backend, which returns a Numba device array.
"""

from __future__ import annotations

import numpy as np

from ._registry import check_name, get_backend

DEVICE_DTYPES = "float32 and float64"
#: Why auto runs ``cuda`` for device arrays (what ``fastest(..., explain=True)`` reports).
DEVICE_RULE = "device arrays: the cuda backend, without a host round trip"


def is_device_array(obj) -> bool:
    """True for Numba device arrays (and the simulator's) and for ``__cuda_array_interface__`` objects."""
    return bool(getattr(obj, "__cuda_ndarray__", False)) or hasattr(obj, "__cuda_array_interface__")


def any_on_device(*objs) -> bool:
    return any(is_device_array(o) for o in objs)


def cuda_module(backend, *named):
    """The ``cuda`` backend for a call with device arrays, and those arrays as Numba device arrays.

    ``named`` are ``(name, value)`` pairs; host values (a small kernel or bias as a NumPy array) are
    copied over.  All must be float32 or float64 of one dtype: there is no implicit cast on the device.
    """
    if check_name(backend) not in ("auto", "cuda"):
        first = next(name for name, value in named if is_device_array(value))
        raise TypeError(f"{first} is a CUDA device array, which only backend='cuda' (or 'auto') takes; "
                        f"copy it to the host to use backend={backend!r}")
    dtypes = {name: np.dtype(_dtype_of(value)) for name, value in named}
    for name, dtype in dtypes.items():
        if dtype not in (np.float32, np.float64):
            raise TypeError(f"{name} has dtype {dtype}; on the device conv1dbench takes {DEVICE_DTYPES}")
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{name} {dtype}" for name, dtype in dtypes.items())
        raise TypeError(f"device inputs must share one dtype (no casts on the device); got {listed}")
    dtype = next(iter(dtypes.values()))
    module = get_backend("cuda", dtype)
    arrays = [module.as_device(value) for _, value in named]
    for (name, _), array in zip(named, arrays):
        if array.size == 0:
            raise ValueError(f"{name} is empty (shape {array.shape})")
        if not array.is_c_contiguous():
            raise ValueError(f"{name} is a non-contiguous device array (shape {array.shape}, strides "
                             f"{array.strides}); make it contiguous on the device first")
    return module, arrays


def _dtype_of(value):
    if is_device_array(value) and not getattr(value, "__cuda_ndarray__", False):
        typestr = value.__cuda_array_interface__["typestr"]
        return np.dtype(typestr)
    dtype = getattr(value, "dtype", None)
    return np.asarray(value).dtype if dtype is None else dtype
