"""``numpy.convolve``: direct, one thread, 1-D only (a loop over the rows of a batch)."""

from __future__ import annotations

import numpy as np

from ._spec import Peer, same_gives_max_outputs


def _signal(x, w, w2, mode):
    if x.ndim == 1:
        return (lambda: np.convolve(x, w, mode)), None
    return (lambda: np.stack([np.convolve(row, w, mode) for row in x])), None


PEER = Peer(
    name="numpy", library="NumPy", package="numpy", licence="BSD-3-Clause", computes="direct convolution, 1-D",
    threads="one",
    call="`numpy.convolve(x, w, mode)`, in a loop over the rows of a batch",
    signal=_signal, apart=same_gives_max_outputs("numpy.convolve"), gflops=10.0)
