"""``scipy.signal.convolve``: method "auto" (direct or FFT by scipy's own estimate), one thread."""

from __future__ import annotations

from ._spec import Peer


def _signal(x, w, w2, mode):
    import scipy.signal  # import time: only signal cases need it

    return (lambda: scipy.signal.convolve(x, w2, mode)), None


PEER = Peer(
    name="scipy", library="SciPy", package="scipy", licence="BSD-3-Clause",
    computes="convolution, direct or FFT (method \"auto\")",
    threads="one",
    call="`scipy.signal.convolve(x, w, mode)` (method \"auto\"; a batch as a 2-D array, the kernel `w[None]`)",
    signal=_signal, slower=4.0)
