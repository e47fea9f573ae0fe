"""``torch.nn.functional.conv1d`` on a GPU (cuDNN, TF32 off), device-resident."""

from __future__ import annotations

import importlib.util

from . import _torch
from ._spec import Peer, layer_args


def _sees_gpu() -> bool:
    """Whether torch is installed with GPU support and sees a GPU (a CPU-only torch does not count)."""
    if importlib.util.find_spec("torch") is None:
        return False
    try:
        import torch  # optional dependency: a peer only where installed

        return torch.cuda.is_available()
    except Exception:  # noqa: BLE001 - a broken peer is left out, as an absent one
        return False


PEER = Peer(
    name="torch-gpu", library="torch", needs="torch", licence="BSD-3-Clause", computes="cross-correlation layer "
    "(conv1d) on the GPU", threads="its own", call="`torch.nn.functional.conv1d` on the GPU (cuDNN, TF32 off)",
    signal=lambda x, w, w2, mode: _torch.signal(x, w, mode, gpu=True),
    layer=lambda point, arrays, backward: _torch.layer(arrays["x"], arrays["w"], arrays["g"] if backward else None,
                                                      layer_args(point), gpu=True),
    passes=("forward", "backward"), gpu=True, sees_gpu=_sees_gpu, apart=_torch.apart, import_s=1.0)
