"""``naive``: the definition of the core cross-correlation written out as loops.

This is the backend the others are read against.  It loops over batch, output channel, input channel
and tap; for one tap, the contributions to every output position form a strided slice of the padded
input, so the innermost loop over output positions is that one NumPy slice operation::

    y[b, o, :] += w[o, c, k] * xpad[b, g*Cg + c, k*dilation : k*dilation + stride*L_out : stride]

Cost: ``B * C_out * Cg * K`` slice operations, so it is meant for small problems and tests.
"""

from __future__ import annotations

import numpy as np

from .._core import CORE_DTYPES, output_length, require_dtype

DTYPES = CORE_DTYPES


def unavailable_reason() -> str | None:
    return None


def forward(x, w, pad_left, pad_right, stride, dilation, groups):
    require_dtype("naive", DTYPES, x.dtype)
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)

    xpad = np.zeros((batch, c_in, pad_left + length + pad_right), dtype=x.dtype)
    xpad[:, :, pad_left:pad_left + length] = x
    y = np.zeros((batch, c_out, l_out), dtype=x.dtype)
    for b in range(batch):
        for o in range(c_out):
            g = o // out_per_group
            for c in range(c_per_group):
                row = xpad[b, g * c_per_group + c]
                for k in range(taps):
                    start = k * dilation
                    y[b, o] += w[o, c, k] * row[start:start + stride * (l_out - 1) + 1:stride]
    return y
