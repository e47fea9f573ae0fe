"""``fft``: the convolution theorem through scipy.fft, with overlap-add for long signals.

Cross-correlating with ``w`` is convolving with ``w`` reversed.  The input is cut into blocks of
``block`` samples (one block when that is cheaper, see :func:`block_length`); blocks go through
batched real transforms (``rfft``; ``fft`` for complex input) of a ``next_fast_len`` size, are
multiplied by the kernel spectra, summed over the input channels of each group, transformed back,
and overlap-added.  The work goes in steps of a few blocks of a few batch items (about
``CHUNK_BYTES`` of spectra each), the tails of one step carried into the next, so that the working
set stays small however long or large the input.  Transforms run on one thread: pocketfft's
``workers`` gave no steady gain on these batched transforms on 2 cores.

Rounding error is spread over all outputs (docs/SPEC.md section 5 states the bound), and so is a NaN or
Inf.  ``backend="auto"`` never lets that happen, and checks nothing beforehand for it: it calls with
``finite=True``, and every transform of an operand is then checked at its zero-frequency bin, the
sum of its samples, which any NaN or Inf among them makes NaN or Inf (no step of a transform turns a
non-finite value finite).  A hit raises :class:`~conv1dbench._core.NonFiniteInput`, the partial
result is dropped, and auto runs a direct backend instead.  The check reads a few numbers per
transformed row; checking the input itself would read it once more (``results/NOTES.md``, "fft:
the finiteness check").  A finite
input whose sums overflow is caught too, rightly: its FFT result would not be finite either.
Integer problems are
computed in float64 and rounded, which is exact only while ``max|x| * sum|w| < 2**40``; beyond that
this backend raises ``ValueError`` rather than return a wrong integer.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.fft

from .._core import result_array, spread, valid_range
from .._plan import CORE_DTYPES, output_length
from . import NonFiniteInput

DTYPES = CORE_DTYPES
AUTO = True
DEVICE = False
CONFINES_NON_FINITE = False
CHECKS_FINITE = True
EXACT_INTEGERS = False
RULE = "fourier"
COST_FEATURES = ("call", "fft_work", "spectral_products", "bytes")
TAKES_OUT = ("forward", "backward_input", "backward_weight")

#: Largest ``max|x| * sum|w|`` for which float64 FFT results round to the exact integers.
EXACT_INTEGER_BOUND = 2.0**40


def unavailable_reason() -> str | None:
    return None


#: Bytes of the spectra one step of :func:`forward` transforms at once.  A working set this small
#: stays in the cache and, as much, in memory the allocator reuses: glibc returns larger freed
#: blocks to the kernel, and every fresh page then costs a page fault on first touch
#: (``results/NOTES.md``, "fft: step size").
CHUNK_BYTES = 1 << 20
#: The block-length model, fitted to the best block lengths measured with pocketfft
#: (``results/NOTES.md``, "fft: block length"): a transform of size
#: ``F`` costs ``F (log2 F + TRANSFORM_EXTRA) + ROW_COST``, and beyond ``CACHE_SIZE`` points
#: (pocketfft transforms several rows at once, and their working set outgrows the cache) another
#: ``F * LARGE * octaves**2``; splitting into blocks adds the padding and overlap-add passes,
#: ``OVERLAP_ADD`` per transformed sample; a spectral product costs ``PRODUCT``.
TRANSFORM_EXTRA, ROW_COST, OVERLAP_ADD, PRODUCT = 3.0, 256.0, 1.0, 2.0
CACHE_SIZE, LARGE = 8192, 2.0


def _work(length: int, span: int, real: bool, rows: int, kernels: int, products: int, block: int):
    """``(transforms, products)``: modelled work of one call cut into blocks of ``block`` samples.

    Each of ``ceil(length / block)`` blocks is transformed (size ``F = next_fast_len(block + span -
    1)``) on ``rows`` rows (the input rows forward and the output rows back), and so are the
    ``kernels`` kernels, once; ``products`` spectral products are made per frequency of a block.
    """
    size = scipy.fft.next_fast_len(block + span - 1, real=real)
    n_blocks = -(-length // block)
    octaves = max(0.0, math.log2(size / CACHE_SIZE))
    per_row = size * (math.log2(size) + TRANSFORM_EXTRA + LARGE * octaves * octaves) + ROW_COST
    transforms = (rows * n_blocks + kernels) * per_row
    if n_blocks > 1:
        transforms += rows * n_blocks * size * OVERLAP_ADD
    return transforms, n_blocks * size * products


def block_length(length: int, span: int, real: bool, rows: int = 2, kernels: int = 1, products: int = 1) -> int:
    """Samples per overlap-add block: the one with the least modelled work (:func:`_work`) for the call.

    Candidates: one block of the whole signal (the plain FFT convolution) and powers of two from
    the kernel span up.  Per output sample, short blocks waste transform work on the kernel's
    overlap; long blocks pay ``log F`` more, and the kernel's own transform.
    """
    def cost(n):
        transforms, product_count = _work(length, span, real, rows, kernels, products, n)
        return transforms + PRODUCT * product_count

    best = length
    best_cost = cost(length)
    n = 1 << max(3, (span - 1).bit_length())  # at least the kernel span
    while n < length:
        c = cost(n)
        if c < best_cost:
            best, best_cost = n, c
        n *= 2
    return best


def work(problem) -> dict:
    """``fft_work`` (``F (log2 F + c)`` over the transforms of this backend's own plan, its
    overlap-add blocks included) and ``spectral_products`` (one per frequency per channel pair)."""
    p = problem
    if p.direction == "forward":
        span = p.dilation * (p.taps - 1) + 1
        rows, kernels, products = _counts(p.batch, p.c_in, p.c_out, p.groups)
        real = p.dtype.kind != "c"
        block = block_length(p.length, span, real, rows, kernels, products)
        transforms, spectral = _work(p.length, span, real, rows, kernels, products, block)
    else:  # the gradients: whole-row transforms, one block each
        n = p.length + p.taps - 1
        transforms = p.passes * p.batch * (p.c_in + p.c_out) * n * math.log2(max(n, 2))
        spectral = p.passes * p.batch * p.c_out * (p.c_in // p.groups) * n
    return {"fft_work": float(transforms), "spectral_products": float(spectral)}


def _witness(**spectra: np.ndarray) -> None:
    """Check the zero-frequency bins (the rows' sums) of each operand's spectra for NaN and Inf."""
    for what, values in spectra.items():
        if not np.isfinite(values[..., 0]).all():
            raise NonFiniteInput(f"{what} holds NaN or Inf (or sums beyond the dtype's range)")


def _counts(batch, c_in, c_out, groups):
    """Rows transformed per block, kernels transformed, and spectral products per frequency."""
    products = batch * c_out * (c_in // groups)
    return batch * (c_in + c_out), c_out * (c_in // groups), products


def forward(x, w, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
    """The core cross-correlation; ``finite=True``: raise NonFiniteInput on NaN/Inf in ``x`` or ``w``."""
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    l_out = output_length(length, taps, pad_left, pad_right, stride, dilation)
    span = dilation * (taps - 1) + 1

    integer = x.dtype.kind == "i"
    if integer:
        bound = float(np.abs(x, dtype=np.float64).max()) * float(np.abs(w, dtype=np.float64).sum(-1).sum(-1).max())
        if bound >= EXACT_INTEGER_BOUND:
            raise ValueError(
                f"backend 'fft' cannot give exact integers here: max|in1| * sum|in2| = {bound:.3g} "
                f"is not below 2**40; use a direct backend ('numba', 'im2col' or 'naive')")
    dtype = np.dtype(np.float64) if integer else x.dtype
    plan = _Plan(length, span, batch, c_in, c_out, groups, dtype, finite)

    # The dilated kernel, reversed: correlation with w is convolution with this.
    kernel = np.zeros((c_out, c_per_group, span), dtype=dtype)
    kernel[:, :, ::dilation] = w[:, :, ::-1]
    kernel_spectra = plan.transform(kernel, n=plan.size, axis=-1)
    if finite:
        _witness(kernel=kernel_spectra)
    kernel_spectra = kernel_spectra.reshape(groups, c_out // groups, c_per_group, 1, -1)

    # Output l is index first + l*stride of the full convolution (x[i] * kernel[k] lands at i + k);
    # outputs [lo, hi) read a sample, the others only padding.
    first = span - 1 - pad_left
    lo, hi = valid_range(length + span - 1, first, stride, 0, l_out)
    y = np.empty((batch, c_out, l_out), dtype=dtype) if integer else result_array(out, (batch, c_out, l_out), dtype)
    y[:, :, :lo] = 0
    y[:, :, hi:] = 0

    # Steps of a few blocks of a few batch items; the last span - 1 outputs of a step's blocks
    # overlap the next step's first block and are carried over to it.
    items, blocks = plan.step(batch)
    for b0 in range(0, batch, items):
        xs, ys = x[b0:b0 + items], y[b0:b0 + items]
        carry = None
        for n0 in range(0, plan.n_blocks, blocks):
            n1 = min(n0 + blocks, plan.n_blocks)
            full = plan.full_convolution(xs, kernel_spectra, n0, n1)
            if carry is not None:
                full[:, :, :span - 1] += carry
            start = n0 * plan.block
            stop = n1 * plan.block if n1 < plan.n_blocks else length + span - 1
            carry = full[:, :, stop - start:stop - start + span - 1]
            la = max(lo, -((first - start) // stride))  # first output at or after `start`
            lb = min(hi, -((first - stop) // stride))
            if lb > la:
                ys[:, :, la:lb] = full[:, :, first + la * stride - start:first + (lb - 1) * stride - start + 1:stride]
    if integer:
        if out is None:
            return np.rint(y).astype(np.int64)
        np.copyto(out, np.rint(y, out=y), casting="unsafe")
        return out
    return y


class _Plan:
    """The block length, transform size and step size of one :func:`forward` call."""

    def __init__(self, length, span, batch, c_in, c_out, groups, dtype, finite=False):
        real = dtype.kind == "f"
        self.transform, self.inverse = (scipy.fft.rfft, scipy.fft.irfft) if real else (scipy.fft.fft, scipy.fft.ifft)
        self.length, self.span, self.groups, self.dtype, self.finite = length, span, groups, dtype, finite
        self.c_per_group, self.out_per_group = c_in // groups, c_out // groups
        self.block = block_length(length, span, real, *_counts(batch, c_in, c_out, groups))
        self.size = scipy.fft.next_fast_len(self.block + span - 1, real=real)
        self.n_blocks = -(-length // self.block)
        bins = self.size // 2 + 1 if real else self.size
        self.block_bytes = max(c_in, c_out) * bins * 2 * (dtype.itemsize if real else dtype.itemsize // 2)

    def step(self, batch):
        """``(items, blocks)``: batch items and blocks transformed at once, within ``CHUNK_BYTES``."""
        per_step = max(1, CHUNK_BYTES // self.block_bytes)
        if per_step >= self.n_blocks:
            return max(1, per_step // self.n_blocks), self.n_blocks
        return 1, per_step

    def full_convolution(self, xs, kernel_spectra, n0, n1):
        """Full convolution of blocks ``[n0, n1)`` of ``xs``: ``(b, C_out, >= (n1-n0)*block + span - 1)``."""
        b, c_in, _ = xs.shape
        block, nb = self.block, n1 - n0
        part = xs[:, :, n0 * block:min(n1 * block, self.length)]
        if part.dtype != self.dtype:
            part = part.astype(self.dtype)
        if nb > 1 and part.shape[2] < nb * block:  # the last block, short: pad it
            padded = np.zeros((b, c_in, nb * block), dtype=self.dtype)
            padded[:, :, :part.shape[2]] = part
            part = padded
        # one block: the transform pads it to `size` itself
        blocks = part.reshape(b, self.groups, self.c_per_group, nb, -1)
        spectra = self.transform(blocks, n=self.size, axis=-1)                  # (b, G, Cg, nb, F)
        if self.finite:
            _witness(signal=spectra)
        if self.c_per_group == 1 and self.out_per_group == 1:  # depthwise / single channel: no channel sum
            spectra *= kernel_spectra.reshape(1, self.groups, 1, 1, -1)
            products = spectra
        else:
            products = np.einsum("bgcnf,gocnf->bgonf", spectra, kernel_spectra)   # (b, G, Og, nb, F)
        pieces = self.inverse(products, n=self.size, axis=-1, overwrite_x=True)
        pieces = pieces.reshape(b, -1, nb, self.size)[..., :block + self.span - 1]
        if nb == 1:
            return pieces[:, :, 0]
        # Overlap-add: block i's full convolution starts at i*block; its tail (span - 1 <= block
        # samples) reaches into block i + 1 only.
        full = np.empty((b, pieces.shape[1], (nb + 1) * block), dtype=pieces.dtype)
        heads = full.reshape(b, -1, nb + 1, block)
        heads[:, :, :nb] = pieces[..., :block]
        heads[:, :, nb] = 0
        heads[:, :, 1:, :self.span - 1] += pieces[..., block:]
        return full


def _float_only(dtype) -> None:
    if dtype.kind not in "fc":
        raise TypeError(f"backend 'fft' computes gradients in floating point only, not {dtype}")


def backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
    """``grad_xpad = sum_o g_spread[o] (*) w_dilated[o, c]``: one batched transform of the gradient.

    ``finite=True``: raise NonFiniteInput on NaN/Inf in ``g`` or ``w`` (see the module's notes)."""
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
    if finite:
        _witness(grad_output=spectra, weight=kernel_spectra)
    products = np.einsum("bgof,gocf->bgcf", spectra, kernel_spectra).reshape(batch, groups * c_per_group, -1)
    full = inverse(products, n=size, axis=-1)[..., :g.shape[2] + span - 1]  # grad_xpad, zero beyond
    grad = result_array(out, (batch, groups * c_per_group, length), full.dtype)
    stop = min(length, full.shape[2] - pad_left)
    grad[:, :, :stop] = full[:, :, pad_left:pad_left + stop]
    grad[:, :, stop:] = 0
    return grad


def backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups, *, finite=False, out=None):
    """``grad_w[o, c, k]``: lag ``k*dilation`` of the correlation of ``x`` with the spread gradient,
    summed over the batch in the frequency domain; ``finite=True`` as in :func:`backward_input`."""
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
    if finite:
        _witness(x=spectra, grad_output=reversed_spectra)
    products = np.einsum("bgcf,bgof->gocf", spectra, reversed_spectra).reshape(c_out, c_per_group, -1)
    full = inverse(products, n=size, axis=-1)  # index m: sum_t x[m - spread_len + 1 + t] * g[t]
    # grad_w[k] needs x[t + k*dilation - pad_left]: index k*dilation - pad_left + spread_len - 1
    index = np.arange(taps) * dilation - pad_left + spread_len - 1
    inside = (index >= 0) & (index < length + spread_len - 1)
    grad = result_array(out, (c_out, c_per_group, taps), full.dtype, zero=True)
    grad[:, :, inside] = full[:, :, index[inside]]
    return grad
