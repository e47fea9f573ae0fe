"""``scipy.signal.oaconvolve`` with scipy.fft's workers set to our thread count (pocketfft's threads)."""

from __future__ import annotations

from ._scipy_fft import oaconvolve
from ._spec import Peer, threads


def _signal(x, w, w2, mode):
    import scipy.fft  # import time: only the threaded peers' cases need it

    count = threads()
    return oaconvolve(x, w2, mode, lambda: scipy.fft.set_workers(count)), None


PEER = Peer(
    name="oaconvolve-workers", library="SciPy", package="scipy", licence="BSD-3-Clause",
    computes="overlap-add convolution on pocketfft", threads="ours",
    call="the same call inside `with scipy.fft.set_workers({threads}):` (pocketfft on {threads} threads)",
    signal=_signal, fft=True, slower=4.0)
