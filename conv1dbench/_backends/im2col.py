"""``im2col``: gather every receptive field into a patch matrix and multiply it by the kernel (BLAS).

For group ``g`` the column ("patch") matrix has one row per (input channel, tap) pair and one column
per output position; the output is the ``(C_out/groups, Cg*K)`` weight matrix times it, which lands
in the output's own layout.  The columns come from ``sliding_window_view`` (a view) and are copied
into one reused buffer chunk by chunk (per batch item and range of positions), so the materialised
patch matrix never exceeds ``im2col.patch_bytes`` (a kernel parameter, :mod:`conv1dbench._params`:
a quarter of the last-level cache by default, within 2-32 MiB; or one position's column where that is
larger): ``N = 10**7, K = 10**3`` runs in bounded memory instead of needing 80 GB.  Integer
problems use NumPy's exact (non-BLAS) integer matmul.

Backward: the weight gradient is the output gradient times the patch matrix (GEMM); the input
gradient is col2im: the output gradient times the weights gives every patch entry's gradient (GEMM),
and each is added back to the input sample it was copied from.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .. import _params
from .._core import result_array
from .._plan import CORE_DTYPES, output_length
from .._workspace import scratch

DTYPES = CORE_DTYPES
AUTO = True
DEVICE = False
CONFINES_NON_FINITE = True
CHECKS_FINITE = False
EXACT_INTEGERS = True
RULE = "gemm"
COST_FEATURES = ("call", "macs", "column_bytes")
TAKES_OUT = ("forward", "backward_weight")

#: Bytes of one materialised column-matrix chunk are ``im2col.patch_bytes`` (unless a single position's
#: column is larger): smaller chunks starve the GEMM of columns, larger ones spill the cache
#: (``results/NOTES.md``, "im2col: patch chunk").
#: Output positions from which one batch item's columns alone make an efficient GEMM.
GEMM_COLUMNS = 512


def unavailable_reason() -> str | None:
    return None


def work(problem) -> dict:
    """``column_bytes``: the patch matrix it builds (and, backward, writes back)."""
    p = problem
    return {"column_bytes": float(p.passes * p.batch * p.c_in * p.taps * p.l_out * p.dtype.itemsize)}


class _Columns:
    """The column matrices of one problem, built chunk by chunk in one reused buffer.

    For batch item ``b`` and output positions ``l0:l1``, group ``g``'s column matrix has one row per
    (input channel ``c`` of the group, tap ``k``) and one column per position ``l``, holding
    ``xpad[b, g*Cg + c, l*stride + k*dilation]``: the layout in which ``weights @ columns`` lands
    directly in the output's layout, and each row is a (strided) slice of one input row.
    """

    def __init__(self, x, taps, pad_left, pad_right, stride, dilation, groups, fill=True):
        batch, c_in, length = x.shape
        c_per_group = c_in // groups
        self.groups, self.c_per_group, self.taps = groups, c_per_group, taps
        self.batch = batch
        self.l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
        if fill:  # the padded input and the column chunks are reused per thread (results/NOTES.md, "workspaces")
            xpad = scratch("im2col.padded", (batch, c_in, pad_left + length + pad_right), x.dtype)
            xpad[:, :, :pad_left] = 0
            xpad[:, :, pad_left + length:] = 0
            xpad[:, :, pad_left:pad_left + length] = x
            span = dilation * (taps - 1) + 1
            # (B, G, Cg, L_out, K) view: window l, tap k of channel c is xpad[b, c, l*stride + k*dilation]
            windows = sliding_window_view(xpad, span, axis=-1)[:, :, ::stride, ::dilation][:, :, :self.l_out]
            self.windows = windows.reshape(batch, groups, c_per_group, self.l_out, taps)
        positions = max(1, _params.value("im2col.patch_bytes") // (c_in * taps * x.dtype.itemsize))  # per chunk
        self.l_step = min(self.l_out, positions)
        # Short rows (batched signals): several batch items per chunk, their positions side by side,
        # so that the GEMM gets enough columns; rows of GEMM_COLUMNS or more go one batch item at a
        # time, which lets the GEMM write straight into the output (no transposing copy).
        self.b_step = 1 if self.l_out >= GEMM_COLUMNS else max(1, min(batch, positions // self.l_out))
        self.buffer = scratch("im2col.columns", (groups, c_per_group, taps, self.b_step, self.l_step), x.dtype)

    def chunks(self, fill=True):
        """Yield ``(b0, b1, l0, l1, columns)``: the (G, Cg*K, (b1-b0)*(l1-l0)) column matrices.

        Columns run over batch items ``b0:b1``, then positions ``l0:l1``.  With ``fill=False`` the
        buffer is handed out as it is, for col2im to write into.
        """
        rows = self.c_per_group * self.taps
        for b0 in range(0, self.batch, self.b_step):
            b1 = min(self.batch, b0 + self.b_step)
            for l0 in range(0, self.l_out, self.l_step):
                l1 = min(self.l_out, l0 + self.l_step)
                columns = self.buffer[:, :, :, :b1 - b0, :l1 - l0]
                if fill:  # (b, G, Cg, l, K) -> (G, Cg, K, b, l)
                    np.copyto(columns, self.windows[b0:b1, :, :, l0:l1].transpose(1, 2, 4, 0, 3))
                yield b0, b1, l0, l1, columns.reshape(self.groups, rows, (b1 - b0) * (l1 - l0))


def _group_matrix(w, groups):
    """(C_out, Cg, K) -> (G, Og, Cg*K): each group's weights as a matrix."""
    c_out, c_per_group, taps = w.shape
    return w.reshape(groups, c_out // groups, c_per_group * taps)


def forward(x, w, pad_left, pad_right, stride, dilation, groups, *, out=None):
    c_out = w.shape[0]
    columns = _Columns(x, w.shape[2], pad_left, pad_right, stride, dilation, groups)
    weights = _group_matrix(w, groups)
    result = result_array(out, (x.shape[0], c_out, columns.l_out), x.dtype)
    y = result.reshape(x.shape[0], groups, c_out // groups, columns.l_out)
    for b0, b1, l0, l1, matrix in columns.chunks():
        if b1 - b0 == 1:  # (G, Og, Cg*K) @ (G, Cg*K, l) -> (G, Og, l), straight into the output
            np.matmul(weights, matrix, out=y[b0, :, :, l0:l1])
            continue
        # (G, Og, Cg*K) @ (G, Cg*K, b*l) -> (G, Og, b, l) -> (b, G, Og, l)
        product = np.matmul(weights, matrix).reshape(groups, c_out // groups, b1 - b0, l1 - l0)
        y[b0:b1, :, :, l0:l1] = product.transpose(2, 0, 1, 3)
    return result


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups, *, out=None):
    """``grad_w = g @ columns^T``, summed over batch items and chunks: one GEMM per chunk."""
    batch, c_out, l_out = g.shape
    columns = _Columns(x, taps, pad_left, pad_right, stride, dilation, groups)
    result = result_array(out, (c_out, x.shape[1] // groups, taps), x.dtype, zero=True)
    grad = result.reshape(groups, c_out // groups, (x.shape[1] // groups) * taps)
    g = g.reshape(batch, groups, c_out // groups, l_out)
    for b0, b1, l0, l1, matrix in columns.chunks():
        # (G, Og, b*l) @ (G, b*l, Cg*K) -> (G, Og, Cg*K)
        chunk = g[b0:b1, :, :, l0:l1].transpose(1, 2, 0, 3).reshape(groups, c_out // groups, -1)
        grad += np.matmul(chunk, matrix.transpose(0, 2, 1))
    return result


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups):
    """col2im: ``weights^T @ g`` gives every column entry's gradient (GEMM); each row of it is added
    back to the input samples it was copied from."""
    batch, c_out, l_out = g.shape
    _, c_per_group, taps = w.shape
    c_in = c_per_group * groups
    shape_only = np.broadcast_to(np.zeros((), dtype=g.dtype), (batch, c_in, length))
    columns = _Columns(shape_only, taps, pad_left, pad_right, stride, dilation, groups, fill=False)
    grad_xpad = np.zeros((batch, c_in, pad_left + length + pad_right), dtype=g.dtype)
    weights_t = _group_matrix(w, groups).transpose(0, 2, 1)  # (G, Cg*K, Og)
    g = g.reshape(batch, groups, c_out // groups, l_out)
    for b0, b1, l0, l1, matrix in columns.chunks(fill=False):
        chunk = g[b0:b1, :, :, l0:l1].transpose(1, 2, 0, 3).reshape(groups, c_out // groups, -1)
        np.matmul(weights_t, chunk, out=matrix)  # (G, Cg*K, b*l)
        rows = matrix.reshape(c_in, taps, b1 - b0, l1 - l0)
        for k in range(taps):  # col2im: tap k of position l came from xpad[l*stride + k*dilation]
            start = l0 * stride + k * dilation
            target = grad_xpad[b0:b1, :, start:start + stride * (l1 - l0 - 1) + 1:stride]
            target += rows[:, k].transpose(1, 0, 2)
    return grad_xpad[:, :, pad_left:pad_left + length]
