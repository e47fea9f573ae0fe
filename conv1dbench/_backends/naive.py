"""``naive``: the definition of the core cross-correlation written out as loops.

This is the backend the others are read against.  It loops over batch, output channel, input channel
and tap; for one tap, the contributions to every output position form a strided slice of the padded
input, so the innermost loop over output positions is that one NumPy slice operation::

    y[b, o, :] += w[o, c, k] * xpad[b, g*Cg + c, k*dilation : k*dilation + stride*L_out : stride]

The backward pass is the same loops with the products turned around: each tap sends its gradient
back to the input slice it read (``backward_input``), and collects the dot product of that slice with
the output gradient (``backward_weight``).

Cost: ``B * C_out * Cg * K`` slice operations, so it is meant for small problems and tests.
"""

from __future__ import annotations

import numpy as np

from .._core import result_array
from .._plan import CORE_DTYPES, output_length

DTYPES = CORE_DTYPES
AUTO = True
DEVICE = False
CONFINES_NON_FINITE = True
CHECKS_FINITE = False
EXACT_INTEGERS = True
RULE = "reference"
COST_FEATURES = ("call", "slices", "valid_macs")
TAKES_OUT = ("forward", "backward_weight")


def unavailable_reason() -> str | None:
    return None


#: Python-level slice operations, and multiply-adds, beyond which a call takes too long to time or test.
MAX_SLICES = 20_000
MAX_MACS = 5 * 10**7


def work(problem) -> dict:
    """``slices``: the NumPy slice operations it runs, one per (batch, output, input channel, tap)."""
    p = problem
    return {"slices": float(p.passes * p.c_out * (p.c_in // p.groups) * p.taps)}


def too_slow(problem) -> str | None:
    p = problem
    slices = p.batch * p.c_out * (p.c_in // p.groups) * p.taps
    if slices > MAX_SLICES:
        return f"predicted too slow: {slices} slice operations per pass"
    if p.macs > MAX_MACS:
        return f"predicted too slow: {p.macs:.1e} multiply-adds in Python-driven slices"
    return None


def _taps(batch, c_out, c_per_group, taps, groups):
    """Every (b, o, input channel, c, k) of the definition, in loop order."""
    out_per_group = c_out // groups
    for b in range(batch):
        for o in range(c_out):
            for c in range(c_per_group):
                for k in range(taps):
                    yield b, o, (o // out_per_group) * c_per_group + c, c, k


def _padded(x, pad_left, pad_right):
    xpad = np.zeros(x.shape[:2] + (pad_left + x.shape[2] + pad_right,), dtype=x.dtype)
    xpad[:, :, pad_left:pad_left + x.shape[2]] = x
    return xpad


def forward(x, w, pad_left, pad_right, stride, dilation, groups, *, out=None):
    batch, _, length = x.shape
    c_out, c_per_group, taps = w.shape
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    xpad = _padded(x, pad_left, pad_right)
    y = result_array(out, (batch, c_out, l_out), x.dtype, zero=True)
    for b, o, channel, c, k in _taps(batch, c_out, c_per_group, taps, groups):
        window = slice(k * dilation, k * dilation + stride * (l_out - 1) + 1, stride)
        y[b, o] += w[o, c, k] * xpad[b, channel, window]
    return y


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups):
    batch, c_out, l_out = g.shape
    _, c_per_group, taps = w.shape
    grad_xpad = np.zeros((batch, c_per_group * groups, pad_left + length + pad_right), dtype=g.dtype)
    for b, o, channel, c, k in _taps(batch, c_out, c_per_group, taps, groups):
        window = slice(k * dilation, k * dilation + stride * (l_out - 1) + 1, stride)
        grad_xpad[b, channel, window] += w[o, c, k] * g[b, o]
    return grad_xpad[:, :, pad_left:pad_left + length]


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups, *, out=None):
    batch, c_out, l_out = g.shape
    c_per_group = x.shape[1] // groups
    xpad = _padded(x, pad_left, pad_right)
    grad = result_array(out, (c_out, c_per_group, taps), x.dtype, zero=True)
    for b, o, channel, c, k in _taps(batch, c_out, c_per_group, taps, groups):
        window = slice(k * dilation, k * dilation + stride * (l_out - 1) + 1, stride)
        grad[o, c, k] += np.dot(g[b, o], xpad[b, channel, window])
    return grad
