"""Intel IPP's ``ippsConvolve_32f``/``_64f`` through ctypes: the full convolution, algorithm "auto" (IPP picks
direct or FFT), one thread, its work buffer made once per case.

The ``ipp`` wheel puts its libraries in the environment's ``lib`` folder.  Its dispatcher library
(``libipps.so.12``) looks for CPU-specific files under names the wheel does not ship
(``libipps<code>.so.12.1``) and then ends the process, so this module never loads it.  It loads
``libippcore`` (which the others need, found by soname once loaded), asks it for the CPU's features,
and loads the CPU-specific ``libipps<code>`` itself (k0: AVX-512, l9: AVX2, y8: SSE4.2), which exports
the same functions.  These libraries link no threading runtime: IPP computes on one thread.  scipy's
"same" and "valid" are slices of the full result.

IPP 2026.1.0's ``ippAlgAuto`` computes wrong float64 results for short kernels from N = 8192 on (on
the AVX-512 library; errors of 0.08-0.27 of docs/SPEC.md's scale, at multiples of 4096 samples, the
same every call), where its explicit ``ippAlgDirect`` and ``ippAlgFFT`` are right.  The peer calls
``ippAlgAuto`` as users would, so the harness's check fails those rows, with the error named.
"""

from __future__ import annotations

import ctypes
import functools
import sys
from importlib import metadata
from pathlib import Path

import numpy as np

from ._spec import Peer, sliced

#: IppDataType (ipptypes.h): ipp32f, ipp64f; IppAlgType: ippAlgAuto (0), ippAlgDirect (1), ippAlgFFT (2).
DATA_TYPES = {np.dtype(np.float32): 13, np.dtype(np.float64): 19}
ALGORITHM_AUTO = 0
#: The CPU-specific libraries, best first, with the ippCPUID_* feature bits each needs (AVX-512 F, CD, BW,
#: DQ and VL; AVX2; SSE4.2).
CODES = (("k0", 0x100000 | 0x200000 | 0x1000000 | 0x2000000 | 0x4000000), ("l9", 0x8000), ("y8", 0x80))


def _folder() -> Path | None:
    """The folder of the wheel's libraries: the environment's ``lib``, else where the ``ipp`` wheel's files are."""
    here = Path(sys.prefix) / "lib"
    if _file(here, "libippcore"):
        return here
    try:
        files = metadata.files("ipp") or ()
    except metadata.PackageNotFoundError:
        return None
    found = [Path(f.locate()).resolve().parent for f in files if f.name.startswith("libippcore.so.")]
    return found[0] if found else None


def _file(folder: Path, stem: str) -> Path | None:
    """``<stem>.so.<major>`` in ``folder`` (the shortest such name: the soname, not a longer alias), or None."""
    found = sorted(folder.glob(f"{stem}.so.*"), key=lambda path: len(path.name))
    return found[0] if found else None


def _present() -> bool:
    folder = _folder()
    return folder is not None and any(_file(folder, f"libipps{code}") for code, _ in CODES)


@functools.cache
def library() -> tuple[ctypes.CDLL, str]:
    """``(libipps<code>, code)``: the CPU-specific signal-processing library for this CPU, its functions typed."""
    folder = _folder()
    core = ctypes.CDLL(str(_file(folder, "libippcore")))
    features = ctypes.c_uint64()
    core.ippGetCpuFeatures.argtypes = [ctypes.POINTER(ctypes.c_uint64), ctypes.c_void_p]
    if core.ippGetCpuFeatures(ctypes.byref(features), None) != 0:
        raise OSError("Intel IPP: ippGetCpuFeatures failed")
    code = next(code for code, bits in CODES + (("y8", 0),) if features.value & bits == bits
                and _file(folder, f"libipps{code}"))
    ipps = ctypes.CDLL(str(_file(folder, f"libipps{code}")))
    ipps.ippsConvolveGetBufferSize.argtypes = [ctypes.c_int] * 4 + [ctypes.POINTER(ctypes.c_int)]
    for name in ("ippsConvolve_32f", "ippsConvolve_64f"):
        function = getattr(ipps, name)
        function.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p,
                             ctypes.c_int, ctypes.c_void_p]
    core.ippGetStatusString.restype = ctypes.c_char_p
    core.ippGetStatusString.argtypes = [ctypes.c_int]
    ipps.status_text = core.ippGetStatusString
    return ipps, code


def _check(ipps, status: int, what: str) -> None:
    if status != 0:
        raise RuntimeError(f"Intel IPP {what}: status {status}: {ipps.status_text(status).decode()}")


def convolver(n: int, k: int, dtype):
    """The full convolution of ``n`` and ``k`` samples of ``dtype``, its buffer made now: ``f(x, w) -> y``."""
    ipps, _ = library()
    dtype = np.dtype(dtype)
    size = ctypes.c_int()
    _check(ipps, ipps.ippsConvolveGetBufferSize(n, k, DATA_TYPES[dtype], ALGORITHM_AUTO, ctypes.byref(size)),
           "ippsConvolveGetBufferSize")
    buffer = np.empty(max(size.value, 1), np.uint8)
    function = ipps.ippsConvolve_32f if dtype == np.float32 else ipps.ippsConvolve_64f

    def full(x, w):
        y = np.empty(n + k - 1, dtype)
        _check(ipps, function(x.ctypes.data, n, w.ctypes.data, k, y.ctypes.data, ALGORITHM_AUTO,
                              buffer.ctypes.data), "ippsConvolve")
        return y
    return full


def _signal(x, w, w2, mode):
    n, k = x.shape[-1], w.shape[0]
    full = convolver(n, k, x.dtype)
    x, w = np.ascontiguousarray(x), np.ascontiguousarray(w)
    if x.ndim == 1:
        return (lambda: sliced(full(x, w), mode, n, k)), None
    return (lambda: np.stack([sliced(full(row, w), mode, n, k) for row in x])), None


PEER = Peer(
    name="ipp", library="Intel IPP", package="ipp", present=_present,
    licence="Intel Simplified Software License", computes="convolution, direct or FFT (IPP's \"auto\")",
    threads="one",
    call="`ippsConvolve_32f`/`ippsConvolve_64f(x, N, w, K, y, ippAlgAuto, buffer)` through ctypes on the "
         "CPU-specific library for this CPU (`libippsk0`: AVX-512, `l9`: AVX2), the buffer "
         "(`ippsConvolveGetBufferSize`) made before the timing, a fresh result per call; \"same\" and \"valid\" "
         "are slices of the full result; a batch in a loop over its rows",
    signal=_signal, slower=1.5)
