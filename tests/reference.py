"""Independent references and the docs/SPEC.md section 5 tolerances, written down once."""

import numpy as np
import scipy.signal

#: docs/SPEC.md section 5: max|y - ref| <= TOL[dtype] * max|in1| * sum|in2|
TOL = {
    np.dtype(np.float64): 1e-12,
    np.dtype(np.complex128): 1e-12,
    np.dtype(np.float32): 1e-5,
    np.dtype(np.complex64): 1e-5,
}

def random_array(rng, shape, dtype):
    """Standard normal values (real and imaginary parts for complex dtypes) of ``dtype``."""
    a = rng.standard_normal(shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


SCIPY_OPS = {"convolve": scipy.signal.convolve, "correlate": scipy.signal.correlate}


def scipy_slices(op, in1, in2, mode, axis=-1, exact=False):
    """scipy.signal's direct method applied slice by slice along ``axis``.

    With ``exact=False`` the inputs are promoted to float64 / complex128 first (the reference for
    floating results); with ``exact=True`` they keep their dtypes (integer and bool results).
    """
    in1, in2 = np.asarray(in1), np.asarray(in2)
    if not exact:
        wide = np.complex128 if np.result_type(in1, in2).kind == "c" else np.float64
        in1, in2 = in1.astype(wide), in2.astype(wide)
    x = np.moveaxis(in1, axis, -1)
    w = np.moveaxis(in2, axis, -1) if in2.ndim == in1.ndim else in2
    lead = np.broadcast_shapes(x.shape[:-1], w.shape[:-1])
    xb = np.broadcast_to(x, lead + x.shape[-1:])
    wb = np.broadcast_to(w, lead + w.shape[-1:])
    rows = [SCIPY_OPS[op](xb[i], wb[i], mode, method="direct") for i in np.ndindex(lead)]
    out = np.stack(rows).reshape(lead + rows[0].shape)
    return np.moveaxis(out, -1, axis % in1.ndim)


def assert_signal_close(y, ref, in1, in2, dtype, context=""):
    """Assert the docs/SPEC.md section 5 bound for a signal result of floating ``dtype``."""
    assert y.shape == ref.shape, f"{context}: shape {y.shape} != {ref.shape}"
    # summing all of in2 (not per slice) keeps the bound valid for batched kernels along any axis
    scale = np.abs(np.asarray(in1)).max() * np.abs(np.asarray(in2)).sum()
    err = np.abs(y.astype(ref.dtype) - ref).max()
    assert err <= TOL[np.dtype(dtype)] * scale, f"{context}: error {err:.3g} > {TOL[np.dtype(dtype)]} * {scale:.3g}"


def reference_conv1d(x, w, bias, stride, pad, dilation, groups):
    """torch.nn.functional.conv1d built from scipy.signal.correlate per (batch, out, in) channel pair.

    ``x`` (B, C_in, L), ``w`` (C_out, C_in // groups, K), ``pad`` (left, right); float64 / complex128.
    Layers do not conjugate the weights, so scipy's conjugation is undone.
    """
    wide = np.complex128 if np.result_type(x, w).kind == "c" else np.float64
    x, w = np.asarray(x, wide), np.asarray(w, wide)
    batch, c_in, length = x.shape
    c_out, c_per_group, taps = w.shape
    xpad = np.pad(x, ((0, 0), (0, 0), pad))
    dilated = np.zeros((c_out, c_per_group, dilation * (taps - 1) + 1), dtype=wide)
    dilated[:, :, ::dilation] = w
    l_out = (length + sum(pad) - dilation * (taps - 1) - 1) // stride + 1
    y = np.zeros((batch, c_out, l_out), dtype=wide)
    for b in range(batch):
        for o in range(c_out):
            group = o // (c_out // groups)
            for c in range(c_per_group):
                full = scipy.signal.correlate(xpad[b, group * c_per_group + c], np.conj(dilated[o, c]), "valid",
                                              method="direct")
                y[b, o] += full[::stride][:l_out]
            if bias is not None:
                y[b, o] += bias[o]
    return y


def layer_scale(x, w, bias=None):
    """docs/SPEC.md section 5's scale for layer outputs: max|x| * max_o sum|w[o]| + max|bias|."""
    return (np.abs(x).max() * np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()
            + (np.abs(bias).max() if bias is not None else 0.0))
