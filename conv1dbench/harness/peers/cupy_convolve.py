"""``cupyx.scipy.signal.convolve`` on a GPU, device-resident."""

from __future__ import annotations

import importlib.util

from ._spec import Peer


def _sees_gpu() -> bool:
    if importlib.util.find_spec("cupy") is None:
        return False
    try:
        import cupy  # optional dependency: a peer only where installed

        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - a broken peer is left out, as an absent one
        return False


def _signal(x, w, w2, mode):
    import cupy  # optional dependency: a peer only where installed
    import cupyx.scipy.signal  # optional dependency: a peer only where installed

    cx, cw = cupy.asarray(x), cupy.asarray(w2)
    return (lambda: cupyx.scipy.signal.convolve(cx, cw, mode)), cupy.cuda.Device().synchronize


PEER = Peer(
    name="cupy", library="CuPy", needs="cupy", licence="MIT", computes="convolution on the GPU (scipy's semantics)",
    threads="its own", call="`cupyx.scipy.signal.convolve(x, w, mode)` on the GPU", signal=_signal, gpu=True,
    sees_gpu=_sees_gpu)
