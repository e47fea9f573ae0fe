"""The backend contract: what every module in this package declares and defines.

A backend is one module here, holding only its algorithm, and one line in
:data:`conv1dbench._registry.MODULES`.  Nothing else in the package knows a backend by name: the
selector, the cost model, the front ends and the harness read these declarations through the
registry.

Declarations (module constants)
-------------------------------
``DTYPES``
    The core dtypes it computes in (a subset of :data:`conv1dbench._plan.CORE_DTYPES`); the registry
    refuses the others with ``TypeError``, so the functions need not check.
``AUTO``
    Whether ``backend="auto"`` may choose it for host (NumPy) arrays.
``DEVICE``
    Whether its functions take CUDA device arrays (and then return device arrays).  The front ends
    send device arrays to such a backend only; it also defines ``as_device(obj)`` (a device array
    for ``obj``: itself, a view, or a copy of host data), ``add_bias(y, bias)`` and
    ``bias_gradient(g)`` on device arrays, ``synchronize()`` and ``device_name()``.
``CONFINES_NON_FINITE``
    Whether a NaN or Inf in an operand reaches only the outputs whose window touches it (a direct
    method).  Auto never returns the spread result of a backend that does not (docs/SPEC.md section 1).
``CHECKS_FINITE``
    Whether its three functions take ``finite=True`` and then raise :class:`NonFiniteInput` (a
    :class:`Declined`) on NaN or Inf, found at little cost while computing.  Auto reads the
    operands itself before it runs a backend that spreads non-finite values and does not check.
``EXACT_INTEGERS``
    Whether int64 problems give exact results for any magnitude (direct arithmetic wraps exactly).
``RULE``
    What the fallback rule of auto (where no cost model predicts) takes it for: ``"direct"``,
    ``"gemm"``, ``"fourier"`` (the convolution theorem), or ``"reference"`` (never preferred).
``COST_FEATURES``
    The work counts of :data:`conv1dbench._model.FEATURES` its cost model is fitted on: the work it
    actually does, so that the model extrapolates the way its time grows.

Functions
---------
``unavailable_reason() -> str | None``
    ``None`` when the backend can run here, otherwise why not and how to fix it.
``forward(x, w, pad_left, pad_right, stride, dilation, groups) -> y``
    The core problem: a batched, grouped, padded, strided, dilated cross-correlation::

        y[b, o, l] = sum_{c, k} w[o, c, k] * xpad[b, g*Cg + c, l*stride + k*dilation]

    with ``Cg = C_in // groups`` input channels per group, ``g = o // (C_out // groups)`` the group
    of output channel ``o``, and ``xpad`` the input with ``pad_left`` zeros before and
    ``pad_right`` after it (a negative pad is a crop).  ``x`` is ``(B, C_in, L)``, ``w`` is
    ``(C_out, C_in // groups, K)``, both C-contiguous, native byte order and of the same core
    dtype; the result is a new array ``(B, C_out, L_out)`` of that dtype.  Inputs are never written.
``backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups) -> grad_x``
    The transposed problem, ``grad_xpad[b, g*Cg + c, l*stride + k*dilation] += w[o, c, k] *
    g[b, o, l]``: ``(B, C_out, L_out)`` output gradients to ``(B, C_in, length)``.
``backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups) -> grad_w``
    ``grad_w[o, c, k] = sum_{b, l} g[b, o, l] * xpad[b, g*Cg + c, l*stride + k*dilation]``, of shape
    ``(C_out, C_in // groups, taps)``.  Both backward products are plain (unconjugated); the layer
    API conjugates for complex input.

Optional declarations and functions
-----------------------------------
``TAKES_OUT``
    The names of its functions (of the three above) that take ``out=``: a C-contiguous, writeable
    array of exactly the result's shape and core dtype, sharing no memory with an input, into which
    the function writes the whole result and which it returns (no temporary of the result's size,
    no copy).  The front ends pass it where the public result is a plain reshape of the core output
    (``conv1dbench._signal``, ``conv1dbench._layer``); without it (absent: ``()``) the result is a
    new array, copied into the user's ``out`` where there is one.  A call that raises may have
    written part of ``out``; the next backend of auto's walk overwrites all of it.  The registry
    checks that every function named takes ``out``.
``work(problem) -> dict``
    Work counts only this backend can compute (e.g. the transforms of its own FFT plan), merged
    into the generic ones of :func:`conv1dbench._model.features`.
``threads(problem) -> int``
    The threads a call of this problem runs on when the cores are free (reports show it).
``too_slow(problem) -> str | None``
    Why a problem would take this backend minutes (the harness and tests skip it), or None.
``forward_1d(x, w, flip, pad_left, pad_right, threads) -> y``, ``shortcut_1d()`` and
``threads_1d(length, taps, pad_left, pad_right)``
    The core problem for one 1-D, C-contiguous signal and kernel of one float dtype, stride and
    dilation 1, the kernel reversed first if ``flip``: the short-call path of ``convolve`` and
    ``correlate`` (:mod:`conv1dbench._signal`), one call into compiled code.  ``shortcut_1d()``
    gives that compiled function and the arguments it takes after ``threads`` under the kernel
    parameters in force (the front ends keep both, and ask again where :func:`conv1dbench._params.values`
    has changed since);
    ``threads_1d`` gives its ``threads`` (1 where the problem is too small for more, which stays
    true for its shape).

A backend's own wisdom
----------------------
A backend that learns something worth keeping across processes (FFTW's plans) keeps it through
:func:`keep_wisdom` and reads it back with :func:`kept_wisdom`, by a name of its own.  Where it is
kept is decided above this layer: :mod:`conv1dbench._auto` connects these two to the wisdom file,
under this machine's fingerprint, when it is imported (:func:`keep_wisdom_with`); with nothing
connected, nothing is kept and nothing is found.

Integer and bool inputs are computed in int64; integer arithmetic wraps modulo 2**64 on every
direct backend, so the result cast to the requested integer dtype is exact wherever the exact result
fits that dtype (the promise ``numpy.convolve`` keeps).  Heavy imports (numba, scipy.fft,
numba.cuda) happen in the backend modules, which the registry imports on first use.  Big internal
temporaries that are the same size call after call may come from :func:`conv1dbench._workspace.scratch`
(reused per thread); a result, or a view of one, never does.
"""

#: The names every backend module defines (the registry checks them when it loads one).
DECLARATIONS = ("DTYPES", "AUTO", "DEVICE", "CONFINES_NON_FINITE", "CHECKS_FINITE", "EXACT_INTEGERS", "RULE",
                "COST_FEATURES")
FUNCTIONS = ("unavailable_reason", "forward", "backward_input", "backward_weight")
RULES = ("direct", "gemm", "fourier", "reference")


class Declined(Exception):
    """A backend will not finish this call; ``backend="auto"`` runs the next one in its ranking."""


class NonFiniteInput(Declined, ValueError):
    """An operand holds NaN or Inf and the caller asked for finite input only (``finite=True``)."""


_store: dict = {"load": None, "save": None}


def keep_wisdom_with(load, save) -> None:
    """Where backends keep their own wisdom: ``load(name) -> value or None`` and ``save(name, value)``."""
    _store.update(load=load, save=save)


def kept_wisdom(name: str):
    """What a backend kept under ``name`` (:func:`keep_wisdom`), or None."""
    return _store["load"](name) if _store["load"] is not None else None


def keep_wisdom(name: str, value) -> None:
    """Keep ``value`` (anything JSON holds) under ``name``, replacing what was kept there."""
    if _store["save"] is not None:
        _store["save"](name, value)
