"""``im2col``: gather every receptive field into a patch matrix and multiply it by the kernel (BLAS).

For group ``g`` the patch matrix has one row per output position and one column per (input channel,
tap) pair; the output is that matrix times the ``(Cg*K, C_out/groups)`` weight matrix.  The patches
come from ``sliding_window_view`` (a view) and are copied into a contiguous buffer chunk by chunk, so
the materialised patch matrix never exceeds :data:`PATCH_BYTES` (64 MiB): ``N = 10**7, K = 10**3``
runs in bounded memory instead of needing 80 GB.  Integer problems use NumPy's exact (non-BLAS)
integer matmul.

Backward: the weight gradient is the output gradient times the patch matrix (GEMM); the input
gradient is col2im: the output gradient times the weights gives every patch entry's gradient (GEMM),
and each is added back to the input sample it was copied from.
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


class _Patches:
    """The patch matrix of one problem, served chunk by chunk from one reused buffer.

    Row ``(b, g, l)`` of group ``g``'s matrix holds, for every input channel ``c`` of the group and
    tap ``k``, ``xpad[b, g*Cg + c, l*stride + k*dilation]``.
    """

    def __init__(self, x, taps, pad_left, pad_right, stride, dilation, groups):
        batch, c_in, length = x.shape
        self.shape = (batch, groups, c_in // groups, taps)
        self.l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
        xpad = np.zeros((batch, c_in, pad_left + length + pad_right), dtype=x.dtype)
        xpad[:, :, pad_left:pad_left + length] = x
        self.xpad = xpad
        span = dilation * (taps - 1) + 1
        # (B, G, Cg, L_out, K) view: window l of channel c, tap k is xpad[b, c, l*stride + k*dilation]
        windows = sliding_window_view(xpad, span, axis=-1)[:, :, ::stride, ::dilation][:, :, :self.l_out]
        self.windows = windows.reshape(batch, groups, c_in // groups, self.l_out, taps)
        row_bytes = c_in * taps * x.itemsize              # one output position of one batch item
        positions = max(1, PATCH_BYTES // row_bytes)      # positions per chunk, over all batch items
        self.batch_step = max(1, min(batch, positions // self.l_out))
        self.l_step = min(self.l_out, positions)
        self.buffer = np.empty((self.batch_step, groups, self.l_step, c_in // groups, taps), dtype=x.dtype)

    def chunks(self, fill=True):
        """Yield ``(b0, b1, l0, l1, matrix)``, ``matrix`` the (b, G, l, Cg*K) patches of that chunk.

        With ``fill=False`` the matrix is left for the caller to fill (col2im writes into it).
        """
        batch, groups, c_per_group, taps = self.shape
        for b0 in range(0, batch, self.batch_step):
            b1 = min(batch, b0 + self.batch_step)
            for l0 in range(0, self.l_out, self.l_step):
                l1 = min(self.l_out, l0 + self.l_step)
                patches = self.buffer[:b1 - b0, :, :l1 - l0]
                if fill:
                    np.copyto(patches, self.windows[b0:b1, :, :, l0:l1].transpose(0, 1, 3, 2, 4))
                yield b0, b1, l0, l1, patches.reshape(b1 - b0, groups, l1 - l0, c_per_group * taps)


def _group_matrix(w, groups):
    """(C_out, Cg, K) -> (G, Og, Cg*K): each group's weights as a matrix."""
    c_out, c_per_group, taps = w.shape
    return w.reshape(groups, c_out // groups, c_per_group * taps)


def forward(x, w, pad_left, pad_right, stride, dilation, groups):
    require_dtype("im2col", DTYPES, x.dtype)
    batch = x.shape[0]
    c_out = w.shape[0]
    patches = _Patches(x, w.shape[2], pad_left, pad_right, stride, dilation, groups)
    weights = _group_matrix(w, groups).transpose(0, 2, 1)  # (G, Cg*K, Og)
    y = np.empty((batch, groups, c_out // groups, patches.l_out), dtype=x.dtype)
    for b0, b1, l0, l1, matrix in patches.chunks():
        # (b, G, l, Cg*K) @ (G, Cg*K, Og) -> (b, G, l, Og) -> (b, G, Og, l)
        y[b0:b1, :, :, l0:l1] = np.matmul(matrix, weights).transpose(0, 1, 3, 2)
    return y.reshape(batch, c_out, patches.l_out)


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups):
    """``grad_w = g @ patches``, summed over batch items: one GEMM per chunk."""
    require_dtype("im2col", DTYPES, x.dtype)
    batch, c_out, l_out = g.shape
    patches = _Patches(x, taps, pad_left, pad_right, stride, dilation, groups)
    grad = np.zeros((groups, c_out // groups, (x.shape[1] // groups) * taps), dtype=x.dtype)
    g = g.reshape(batch, groups, c_out // groups, l_out)
    for b0, b1, l0, l1, matrix in patches.chunks():
        # (b, G, Og, l) @ (b, G, l, Cg*K) -> (b, G, Og, Cg*K), summed over b
        grad += np.matmul(g[b0:b1, :, :, l0:l1], matrix).sum(axis=0)
    return grad.reshape(c_out, x.shape[1] // groups, taps)


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups):
    """col2im: ``cols = g^T @ W`` per chunk (GEMM), then each tap's column added back to its inputs."""
    require_dtype("im2col", DTYPES, g.dtype)
    batch, c_out, l_out = g.shape
    _, c_per_group, taps = w.shape
    c_in = c_per_group * groups
    # The patch geometry of an input of this length; its values are never read (fill=False).
    shape_only = np.broadcast_to(np.zeros((), dtype=g.dtype), (batch, c_in, length))
    patches = _Patches(shape_only, taps, pad_left, pad_right, stride, dilation, groups)
    grad_xpad = np.zeros(patches.xpad.shape, dtype=g.dtype)
    weights = _group_matrix(w, groups)  # (G, Og, Cg*K)
    g = g.reshape(batch, groups, c_out // groups, l_out)
    for b0, b1, l0, l1, matrix in patches.chunks(fill=False):
        # (b, G, l, Og) @ (G, Og, Cg*K) -> (b, G, l, Cg*K): every patch entry's gradient
        np.matmul(g[b0:b1, :, :, l0:l1].transpose(0, 1, 3, 2), weights, out=matrix)
        cols = matrix.reshape(b1 - b0, groups, l1 - l0, c_per_group, taps)
        for k in range(taps):  # col2im: tap k of position l came from xpad[l*stride + k*dilation]
            start = l0 * stride + k * dilation
            target = grad_xpad[b0:b1, :, start:start + stride * (l1 - l0 - 1) + 1:stride]
            target += cols[..., k].transpose(0, 1, 3, 2).reshape(b1 - b0, c_in, l1 - l0)
    return grad_xpad[:, :, pad_left:pad_left + length]
