"""``torch.nn.functional.conv1d`` on the CPU (oneDNN or torch's own kernels), forward and autograd backward."""

from __future__ import annotations

from . import _torch
from ._spec import Peer, layer_args

PEER = Peer(
    name="torch", library="torch", needs="torch", licence="BSD-3-Clause", computes="cross-correlation layer (conv1d)",
    threads="ours",
    call="`torch.nn.functional.conv1d` on the CPU, `torch.set_num_threads({threads})` (signals: one channel, the "
         "kernel reversed, padding for the mode, `torch.nn.functional.pad` first where scipy's \"same\" pads "
         "unevenly (an even kernel); forward under `torch.no_grad()`; backward: `torch.autograd.grad` of a "
         "forward made before the timing)",
    signal=lambda x, w, w2, mode: _torch.signal(x, w, mode),
    layer=lambda point, arrays, backward: _torch.layer(arrays["x"], arrays["w"], arrays["g"] if backward else None,
                                                      layer_args(point)),
    passes=("forward", "backward"), apart=_torch.apart, gflops=1.5, import_s=1.0)
