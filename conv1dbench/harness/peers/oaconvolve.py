"""``scipy.signal.oaconvolve`` as users call it: scipy.fft's default backend (pocketfft), one thread."""

from __future__ import annotations

from ._scipy_fft import oaconvolve
from ._spec import Peer

PEER = Peer(
    name="oaconvolve", library="SciPy", package="scipy", licence="BSD-3-Clause",
    computes="overlap-add convolution on pocketfft",
    threads="one",
    call="`scipy.signal.oaconvolve(x, w, mode, axes=-1)` as users call it: scipy.fft's default backend "
         "(pocketfft) and workers (one thread)",
    signal=lambda x, w, w2, mode: (oaconvolve(x, w2, mode), None), fft=True, slower=4.0)
