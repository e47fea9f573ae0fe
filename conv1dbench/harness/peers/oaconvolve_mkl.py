"""``scipy.signal.oaconvolve`` on oneMKL's FFT: mkl_fft's scipy.fft backend, its workers pinned to ours.

mkl_fft keeps workers of its own (``mkl_fft.interfaces.scipy_fft.set_workers``), all of MKL's threads by
default; scipy.fft's ``set_workers`` does not reach it.  So the scope sets mkl_fft's.
"""

from __future__ import annotations

import contextlib

from ._scipy_fft import oaconvolve
from ._spec import Peer, planned, threads


def _scope():
    import mkl_fft.interfaces.scipy_fft as mkl_scipy_fft  # optional dependency: a peer only where installed
    import scipy.fft  # import time: only the threaded peers' cases need it

    count = threads()

    @contextlib.contextmanager
    def scope():
        with scipy.fft.set_backend(mkl_scipy_fft), mkl_scipy_fft.set_workers(count):
            yield
    return scope


PEER = Peer(
    name="oaconvolve-mkl", library="mkl_fft", needs="mkl_fft",
    licence="BSD-3-Clause (mkl_fft, mkl-service), Intel Simplified Software License (oneMKL)",
    computes="overlap-add convolution on oneMKL's FFT", threads="ours",
    call="the same call inside `with scipy.fft.set_backend(mkl_fft.interfaces.scipy_fft), "
         "mkl_fft.interfaces.scipy_fft.set_workers({threads}):` (mkl_fft's own workers, all cores by default; "
         "scipy.fft's do not reach it); called once when its case is made",
    signal=lambda x, w, w2, mode: (planned(oaconvolve(x, w2, mode, _scope())), None),
    fft=True, slower=4.0, import_s=0.3)
