"""``im2col``: gather every receptive field into a patch matrix and multiply it by the kernel (BLAS).

For group ``g`` the patch matrix has one row per output position and one column per (input channel,
tap) pair; the output is that matrix times the ``(Cg*K, C_out/groups)`` weight matrix.  The patches
come from ``sliding_window_view`` (a view) and are copied into a contiguous buffer chunk by chunk, so
the materialised patch matrix never exceeds :data:`PATCH_BYTES` (64 MiB): ``N = 10**7, K = 10**3``
runs in bounded memory instead of needing 80 GB.  Integer problems use NumPy's exact (non-BLAS)
integer matmul.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .._core import CORE_DTYPES, output_length, require_dtype

DTYPES = CORE_DTYPES

#: Upper bound on the bytes of one materialised patch-matrix chunk.
PATCH_BYTES = 64 * 2**20


def unavailable_reason() -> str | None:
    return None


def forward(x, w, pad_left, pad_right, stride, dilation, groups):
    require_dtype("im2col", DTYPES, x.dtype)
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    span = dilation * (taps - 1) + 1

    xpad = np.zeros((batch, c_in, pad_left + length + pad_right), dtype=x.dtype)
    xpad[:, :, pad_left:pad_left + length] = x
    # (B, G, Cg, L_out, K) view: window l of channel c, tap k is xpad[b, c, l*stride + k*dilation]
    windows = sliding_window_view(xpad, span, axis=-1)[:, :, ::stride, ::dilation][:, :, :l_out]
    windows = windows.reshape(batch, groups, c_per_group, l_out, taps)
    # (G, Cg*K, Og): the weights of one group as the right-hand matrix
    weights = w.reshape(groups, out_per_group, c_per_group * taps).transpose(0, 2, 1)

    y = np.empty((batch, groups, out_per_group, l_out), dtype=x.dtype)
    row_bytes = groups * c_per_group * taps * x.itemsize  # one output position of one batch item
    positions = max(1, PATCH_BYTES // row_bytes)          # positions per chunk, over all batch items
    batch_step = max(1, min(batch, positions // l_out))
    l_step = min(l_out, positions)
    # One buffer for the patch matrix, reused by every chunk: bounded memory, no page faults per chunk.
    buffer = np.empty((batch_step, groups, l_step, c_per_group, taps), dtype=x.dtype)
    for b0 in range(0, batch, batch_step):
        b1 = min(batch, b0 + batch_step)
        for l0 in range(0, l_out, l_step):
            l1 = min(l_out, l0 + l_step)
            patches = buffer[:b1 - b0, :, :l1 - l0]
            np.copyto(patches, windows[b0:b1, :, :, l0:l1].transpose(0, 1, 3, 2, 4))
            # (b, G, l, Cg*K) @ (G, Cg*K, Og) -> (b, G, l, Og) -> (b, G, Og, l)
            matrix = patches.reshape(b1 - b0, groups, l1 - l0, c_per_group * taps)
            y[b0:b1, :, :, l0:l1] = np.matmul(matrix, weights).transpose(0, 1, 3, 2)
    return y.reshape(batch, c_out, l_out)
