"""``torch.nn.functional.conv1d`` as the torch peers call it, on the CPU or a GPU."""

from __future__ import annotations

import numpy as np

from ._spec import threads


def device(gpu: bool):
    import torch  # optional dependency: a peer only where installed

    if not gpu:
        torch.set_num_threads(threads())  # the threads of ours, not torch's default (the physical cores)
        return "cpu"
    torch.backends.cudnn.allow_tf32 = False  # full float32 products, as ours
    torch.backends.cuda.matmul.allow_tf32 = False
    return torch.cuda.current_device()  # an index: the current GPU


def sync(gpu: bool):
    import torch  # optional dependency: a peer only where installed

    return torch.cuda.synchronize if gpu else None


def signal(x, w, mode, gpu=False):
    """One channel, the kernel reversed (conv1d is a cross-correlation), padded for scipy's ``mode``."""
    import torch  # optional dependency: a peer only where installed

    where = device(gpu)
    tx = torch.from_numpy(x.reshape(-1, 1, x.shape[-1])).to(where)
    tw = torch.from_numpy(np.ascontiguousarray(w[::-1]).reshape(1, 1, -1)).to(where)
    k = w.shape[0]
    # scipy's "same" keeps the middle of the full result, its extra sample on the left for an even kernel;
    # torch's padding="same" puts it on the right, one sample off: so an even kernel is padded explicitly
    left = {"full": k - 1, "same": k - 1 - (k - 1) // 2, "valid": 0}[mode]
    right = {"full": k - 1, "same": (k - 1) // 2, "valid": 0}[mode]
    shape = x.shape[:-1]

    def call():
        with torch.no_grad():
            if left == right:
                y = torch.nn.functional.conv1d(tx, tw, padding=left)
            else:
                y = torch.nn.functional.conv1d(torch.nn.functional.pad(tx, (left, right)), tw)
        return y.reshape(shape + (-1,))
    return call, sync(gpu)


def layer(x, w, g, args, gpu=False):
    """Forward under ``no_grad``; backward (``g`` given): ``torch.autograd.grad`` of a forward made now."""
    import torch  # optional dependency: a peer only where installed

    where = device(gpu)
    tx, tw = torch.from_numpy(x).to(where), torch.from_numpy(w).to(where)
    kwargs = {"stride": args["stride"], "padding": args["padding"], "groups": args["groups"]}
    if g is None:
        def forward():
            with torch.no_grad():
                return torch.nn.functional.conv1d(tx, tw, **kwargs)
        return forward, sync(gpu)
    tx.requires_grad_(True)
    tw.requires_grad_(True)
    ty = torch.nn.functional.conv1d(tx, tw, **kwargs)
    tg = torch.from_numpy(g).to(where)

    def backward():
        return torch.autograd.grad(ty, (tx, tw), tg, retain_graph=True)
    return backward, sync(gpu)


def apart(point):
    if point["api"] == "signal" and point["K"] > point["N"] and point["mode"] == "valid":
        return "torch's conv1d refuses a kernel longer than the input"
    return None
