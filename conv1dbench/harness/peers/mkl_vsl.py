"""oneMKL's VSL convolution (``vslsConvNewTask1D``/``vsldConvNewTask1D``) through ctypes on ``libmkl_rt``:
mode ``VSL_CONV_MODE_AUTO`` (MKL picks direct or FFT), the task made once per case, scipy's output range
asked of MKL itself (``vslConvSetStart`` and the output length), a batch in a loop over its rows.

The task computes on one thread here whatever ``MKL_Set_Num_Threads`` says (CPU time equals wall time
with 1 and 2 threads, N = 10**6, K = 1023).  ``MKL_INT`` is 32-bit under the LP64 interface, the default,
which :func:`library` asks for first (it can no longer change once another MKL user has set it; the layer
in force is read back and the integer width follows it).  ``vslConvSetDecimation`` would give a stride;
``convolve`` has none, so it is left at 1.  On an AMD CPU MKL runs its generic code path (its
conditional-numerical-reproducibility branch reads COMPATIBLE and ``libmkl_def`` is loaded, whatever
``MKL_ENABLE_INSTRUCTIONS`` says); on an Intel CPU it runs its AVX-512 code: as users get it either way.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from ._spec import Peer

#: VSL_CONV_MODE_AUTO (mkl_vsl_defines.h); DIRECT is 1, FFT 2.
MODE_AUTO = 0
#: MKL_INTERFACE_LP64 and MKL_INTERFACE_ILP64 (mkl_service.h).
LP64, ILP64 = 0, 1


def _path() -> Path | None:
    """MKL's single dynamic library, ``libmkl_rt.so.<major>``: in the environment's ``lib``, else where the
    ``mkl`` wheel put it."""
    here = sorted((Path(sys.prefix) / "lib").glob("libmkl_rt.so.*"), key=lambda path: len(path.name))
    if here:
        return here[0]
    try:
        files = metadata.files("mkl") or ()
    except metadata.PackageNotFoundError:
        return None
    found = sorted((Path(f.locate()).resolve() for f in files if f.name.startswith("libmkl_rt.so.")),
                   key=lambda path: len(path.name))
    return found[0] if found else None


@functools.cache
def library():
    """``(libmkl_rt, MKL_INT)``: MKL's single dynamic library with the VSL functions typed."""
    mkl = ctypes.CDLL(str(_path()))
    mkl.MKL_Set_Interface_Layer.argtypes = [ctypes.c_int]
    layer = mkl.MKL_Set_Interface_Layer(LP64)
    integer = ctypes.c_int64 if layer & ILP64 else ctypes.c_int32
    task = ctypes.POINTER(ctypes.c_void_p)
    for prefix in ("s", "d"):
        getattr(mkl, f"vsl{prefix}ConvNewTask1D").argtypes = [task, integer, integer, integer, integer]
        getattr(mkl, f"vsl{prefix}ConvExec1D").argtypes = [ctypes.c_void_p, ctypes.c_void_p, integer,
                                                           ctypes.c_void_p, integer, ctypes.c_void_p, integer]
    mkl.vslConvSetStart.argtypes = [ctypes.c_void_p, ctypes.POINTER(integer)]
    mkl.vslConvDeleteTask.argtypes = [task]
    return mkl, integer


def _check(status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"oneMKL {what}: VSL status {status} (mkl_vsl_defines.h: VSL_CC_ERROR_*)")


class Task:
    """A VSL convolution task of ``n`` and ``k`` samples of ``dtype`` giving scipy's ``mode`` outputs."""

    def __init__(self, n: int, k: int, dtype, mode: str):
        self.mkl, integer = library()
        self.dtype = np.dtype(dtype)
        prefix = "s" if self.dtype == np.float32 else "d"
        start = {"full": 0, "same": (k - 1) // 2, "valid": min(n, k) - 1}[mode]
        self.outputs = {"full": n + k - 1, "same": n, "valid": abs(n - k) + 1}[mode]
        self.task = ctypes.c_void_p()
        _check(getattr(self.mkl, f"vsl{prefix}ConvNewTask1D")(ctypes.byref(self.task), MODE_AUTO, n, k,
                                                               self.outputs), "vslConvNewTask1D")
        _check(self.mkl.vslConvSetStart(self.task, ctypes.byref(integer(start))), "vslConvSetStart")
        self.execute = getattr(self.mkl, f"vsl{prefix}ConvExec1D")

    def __call__(self, x, w):
        y = np.empty(self.outputs, self.dtype)
        _check(self.execute(self.task, x.ctypes.data, 1, w.ctypes.data, 1, y.ctypes.data, 1), "vslConvExec1D")
        return y

    def __del__(self):
        if getattr(self, "task", None):
            self.mkl.vslConvDeleteTask(ctypes.byref(self.task))


def _signal(x, w, w2, mode):
    task = Task(x.shape[-1], w.shape[0], x.dtype, mode)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    if x.ndim == 1:
        return (lambda: task(x, w)), None
    return (lambda: np.stack([task(row, w) for row in x])), None


PEER = Peer(
    name="mkl-vsl", library="oneMKL", package="mkl", present=lambda: _path() is not None,
    licence="Intel Simplified Software License", computes="convolution, direct or FFT (VSL's \"auto\" mode)",
    threads="one",
    call="`vslsConvExec1D`/`vsldConvExec1D` through ctypes on `libmkl_rt` (LP64), a task made before the timing "
         "with `vsl?ConvNewTask1D(VSL_CONV_MODE_AUTO, N, K, outputs)` and `vslConvSetStart` for scipy's mode, "
         "a fresh result per call, a batch in a loop over its rows (the task computes on one thread)",
    signal=_signal, slower=1.5)
