"""``fft``: the convolution theorem through scipy.fft, with overlap-add for long signals.

Cross-correlating with ``w`` is convolving with ``w`` reversed.  The input is cut into blocks of
``block`` samples (one block when the signal is short compared with the kernel); all blocks of all
batch items and channels go through *one* batched real transform (``rfft``; ``fft`` for complex
input) of a ``next_fast_len`` size, are multiplied by the kernel spectra, summed over the input
channels of each group, transformed back in one call, and the block results are overlap-added.
The block length minimises the modelled transform work per output sample, which is what makes
overlap-add pay for long signals with short kernels.  Transforms run on one thread: pocketfft's
``workers`` made these batched transforms slower on 2 cores (float32 by 2-4x), not faster.

Rounding error is spread over all outputs (SPEC section 5 states the bound), and so is a NaN or
Inf: ``backend="auto"`` never picks this backend for non-finite input.  Integer problems are
computed in float64 and rounded, which is exact only while ``max|x| * sum|w| < 2**40``; beyond that
this backend raises ``ValueError`` rather than return a wrong integer.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from .._core import CORE_DTYPES, output_length, spread, valid_range

DTYPES = CORE_DTYPES

#: Largest ``max|x| * sum|w|`` for which float64 FFT results round to the exact integers.
EXACT_INTEGER_BOUND = 2.0**40


def unavailable_reason() -> str | None:
    return None


def block_length(length: int, span: int, real: bool) -> int:
    """Samples per overlap-add block: the one with the least modelled work per output sample.

    A block of ``n`` samples costs about ``F log2 F`` for ``F = next_fast_len(n + span - 1)`` and
    yields ``n`` outputs; a single block of the whole signal is the plain FFT convolution.
    """
    def cost(n):
        size = scipy.fft.next_fast_len(n + span - 1, real=real)
        return size * math.log2(size) / n

    best = length
    best_cost = cost(length)
    n = 1 << max(3, (span - 1).bit_length())  # at least the kernel length
    while n < length:
        c = cost(n)
        if c < best_cost:
            best, best_cost = n, c
        n *= 2
    return best


def forward(x, w, pad_left, pad_right, stride, dilation, groups):
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    span = dilation * (taps - 1) + 1

    integer = x.dtype.kind == "i"
    if integer:
        bound = float(np.abs(x, dtype=np.float64).max()) * float(np.abs(w, dtype=np.float64).sum(-1).sum(-1).max())
        if bound >= EXACT_INTEGER_BOUND:
            raise ValueError(
                f"backend 'fft' cannot give exact integers here: max|in1| * sum|in2| = {bound:.3g} "
                f"is not below 2**40; use a direct backend ('numba', 'im2col' or 'naive')")
        x, w = x.astype(np.float64), w.astype(np.float64)
    real = x.dtype.kind == "f"
    transform, inverse = (scipy.fft.rfft, scipy.fft.irfft) if real else (scipy.fft.fft, scipy.fft.ifft)

    # The dilated kernel, reversed: correlation with w is convolution with this.
    kernel = np.zeros((c_out, c_per_group, span), dtype=x.dtype)
    kernel[:, :, ::dilation] = w[:, :, ::-1]

    block = block_length(length, span, real)
    size = scipy.fft.next_fast_len(block + span - 1, real=real)
    n_blocks = -(-length // block)
    blocks = np.zeros((batch, c_in, n_blocks * block), dtype=x.dtype)
    blocks[:, :, :length] = x
    blocks = blocks.reshape(batch, groups, c_per_group, n_blocks, block)

    spectra = transform(blocks, n=size, axis=-1)           # (B, G, Cg, nb, F)
    kernel_spectra = transform(kernel, n=size, axis=-1)    # (C_out, Cg, F)
    kernel_spectra = kernel_spectra.reshape(groups, out_per_group, c_per_group, 1, -1)
    if c_per_group == 1 and out_per_group == 1:  # depthwise / single channel: no channel sum
        products = spectra * kernel_spectra.reshape(1, groups, 1, 1, -1)
    else:
        products = np.einsum("bgcnf,gocnf->bgonf", spectra, kernel_spectra)
    pieces = inverse(products, n=size, axis=-1)[..., :block + span - 1]
    pieces = pieces.reshape(batch, c_out, n_blocks, block + span - 1)

    # Overlap-add: block i's full convolution starts at i*block; with span - 1 <= block (or a
    # single block) each tail only reaches into the next block.
    full = np.zeros((batch, c_out, n_blocks + 1 + (span - 1) // block, block), dtype=pieces.dtype)
    full[:, :, :n_blocks] += pieces[..., :block]
    tail = pieces[..., block:]
    for j in range(0, span - 1, block):  # one step unless the single block is shorter than the kernel
        part = tail[..., j:j + block]
        full[:, :, 1 + j // block:1 + j // block + n_blocks, :part.shape[-1]] += part
    full = full.reshape(batch, c_out, -1)  # full convolution: index m = l + k for x[l] * kernel[k]

    # Output l reads xpad[l*stride + j] = x[l*stride + j - pad_left]; in the full convolution
    # that is index l*stride - pad_left + span - 1.  Indices outside it read only padding: zero.
    y = np.zeros((batch, c_out, l_out), dtype=full.dtype)
    first = span - 1 - pad_left
    lo, hi = valid_range(length + span - 1, first, stride, 0, l_out)
    if hi > lo:
        y[:, :, lo:hi] = full[:, :, first + lo * stride:first + (hi - 1) * stride + 1:stride]
    if integer:
        return np.rint(y).astype(np.int64)
    return y


def _float_only(dtype) -> None:
    if dtype.kind not in "fc":
        raise TypeError(f"backend 'fft' computes gradients in floating point only, not {dtype}")


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups):
    """``grad_xpad = sum_o g_spread[o] (*) w_dilated[o, c]``: one batched transform of the gradient."""
    _float_only(g.dtype)
    batch, c_out, _ = g.shape
    _, c_per_group, taps = w.shape
    out_per_group = c_out // groups
    span = dilation * (taps - 1) + 1
    g = spread(g, stride)
    real = g.dtype.kind == "f"
    transform, inverse = (scipy.fft.rfft, scipy.fft.irfft) if real else (scipy.fft.fft, scipy.fft.ifft)
    size = scipy.fft.next_fast_len(g.shape[2] + span - 1, real=real)
    kernel = np.zeros((c_out, c_per_group, span), dtype=w.dtype)
    kernel[:, :, ::dilation] = w
    spectra = transform(g, n=size, axis=-1).reshape(batch, groups, out_per_group, -1)
    kernel_spectra = transform(kernel, n=size, axis=-1).reshape(groups, out_per_group, c_per_group, -1)
    products = np.einsum("bgof,gocf->bgcf", spectra, kernel_spectra).reshape(batch, groups * c_per_group, -1)
    full = inverse(products, n=size, axis=-1)[..., :g.shape[2] + span - 1]  # grad_xpad, zero beyond
    grad = np.zeros((batch, groups * c_per_group, length), dtype=full.dtype)
    stop = min(length, full.shape[2] - pad_left)
    grad[:, :, :stop] = full[:, :, pad_left:pad_left + stop]
    return grad


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups):
    """``grad_w[o, c, k]``: lag ``k*dilation`` of the correlation of ``x`` with the spread gradient,
    summed over the batch in the frequency domain."""
    _float_only(x.dtype)
    batch, c_in, length = x.shape
    c_out = g.shape[1]
    c_per_group, out_per_group = c_in // groups, c_out // groups
    g = spread(g, stride)
    spread_len = g.shape[2]
    real = x.dtype.kind == "f"
    transform, inverse = (scipy.fft.rfft, scipy.fft.irfft) if real else (scipy.fft.fft, scipy.fft.ifft)
    size = scipy.fft.next_fast_len(length + spread_len - 1, real=real)
    spectra = transform(x, n=size, axis=-1).reshape(batch, groups, c_per_group, -1)
    reversed_spectra = transform(g[..., ::-1], n=size, axis=-1).reshape(batch, groups, out_per_group, -1)
    products = np.einsum("bgcf,bgof->gocf", spectra, reversed_spectra).reshape(c_out, c_per_group, -1)
    full = inverse(products, n=size, axis=-1)  # index m: sum_t x[m - spread_len + 1 + t] * g[t]
    # grad_w[k] needs x[t + k*dilation - pad_left]: index k*dilation - pad_left + spread_len - 1
    index = np.arange(taps) * dilation - pad_left + spread_len - 1
    inside = (index >= 0) & (index < length + spread_len - 1)
    grad = np.zeros((c_out, c_per_group, taps), dtype=full.dtype)
    grad[:, :, inside] = full[:, :, index[inside]]
    return grad
