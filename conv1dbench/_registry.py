"""The backend registry: one dict, lazily imported modules, clear errors.

Every backend is a module in :mod:`conv1dbench._backends` holding only its algorithm.  Each module
defines the same names (the backend contract):

``DTYPES``
    The core dtypes it computes in (a subset of :data:`conv1dbench._core.CORE_DTYPES`);
    :func:`get_backend` refuses the others with ``TypeError``, so the functions need not check.
``unavailable_reason() -> str | None``
    ``None`` when the backend can run here, otherwise why not and how to fix it.
``forward(x, w, pad_left, pad_right, stride, dilation, groups) -> y``
    The core problem of :mod:`conv1dbench._core`: a batched, grouped, padded, strided, dilated
    cross-correlation.  ``x`` is ``(B, C_in, L)``, ``w`` is ``(C_out, C_in // groups, K)``, both
    C-contiguous, native byte order and of the same core dtype; the result is a new array
    ``(B, C_out, L_out)`` of that dtype.  Inputs are never written to.
``backward_input(g, w, length, pad_left, pad_right, stride, dilation, groups) -> grad_x``
    The transposed problem: ``(B, C_out, L_out)`` output gradients to ``(B, C_in, length)``.
``backward_weight(g, x, taps, pad_left, pad_right, stride, dilation, groups) -> grad_w``
    The weight gradient ``(C_out, C_in // groups, taps)``.

``cuda`` also takes Numba device arrays (of any strides) in these three functions and then returns
device arrays; the front ends send device arrays nowhere else (:mod:`conv1dbench._device`).

Heavy imports (numba, scipy.fft) happen inside the backend modules, which are imported on first use,
so ``import conv1dbench`` stays fast and a broken optional dependency only makes its backend
unavailable.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import numpy as np

__all__ = ["BackendUnavailable", "BACKEND_NAMES", "backends", "get_backend"]


class BackendUnavailable(RuntimeError):
    """A known backend cannot run on this machine; the message says why and how to fix it."""


# name -> module; the one place a backend is registered.
_MODULES = {
    "naive": "conv1dbench._backends.naive",
    "im2col": "conv1dbench._backends.im2col",
    "fft": "conv1dbench._backends.fft",
    "numba": "conv1dbench._backends.numba",
    "cuda": "conv1dbench._backends.cuda",
}
BACKEND_NAMES = tuple(_MODULES)
_loaded: dict[str, ModuleType] = {}
_reasons: dict[str, str | None] = {}


def _load(name: str) -> tuple[ModuleType | None, str | None]:
    if name not in _reasons:
        try:
            module = importlib.import_module(_MODULES[name])
        except Exception as exc:  # a broken dependency disables the backend, never the package
            _reasons[name] = f"importing {_MODULES[name]} failed: {type(exc).__name__}: {exc}"
        else:
            _loaded[name] = module
            _reasons[name] = module.unavailable_reason()
    return _loaded.get(name), _reasons[name]


def check_name(name: object) -> str:
    """Return ``name`` if it names a backend or ``"auto"``; raise ``ValueError`` listing them otherwise."""
    if not isinstance(name, str) or (name != "auto" and name not in _MODULES):
        known = ", ".join(repr(n) for n in ("auto",) + BACKEND_NAMES)
        raise ValueError(f"unknown backend {name!r}; known backends are {known}")
    return name


def get_backend(name: str, dtype: np.dtype) -> ModuleType:
    """The module of an available backend that computes in ``dtype``.

    Raises ``ValueError`` for an unknown name, ``BackendUnavailable`` if the backend cannot run
    here, ``TypeError`` if it does not take ``dtype``.
    """
    module = _loaded.get(name)
    if module is None or _reasons[name] is not None:
        check_name(name)
        module, reason = _load(name)
        if reason is not None:
            raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
    if dtype not in module.DTYPES:
        names = ", ".join(sorted(str(d) for d in module.DTYPES))
        raise TypeError(f"backend {name!r} does not take dtype {dtype}; it takes {names}")
    return module


def is_available(name: str) -> bool:
    return _load(name)[1] is None


def backends() -> dict[str, dict[str, object]]:
    """Every backend with whether it can run here and, if not, why.

    Returns
    -------
    dict
        ``{name: {"available": bool, "reason": str | None}}`` for each of ``"naive"``,
        ``"im2col"``, ``"fft"``, ``"numba"`` and ``"cuda"``.

    Examples
    --------
    >>> import conv1dbench as cb
    >>> cb.backends()["naive"]
    {'available': True, 'reason': None}
    """
    report = {}
    for name in BACKEND_NAMES:
        reason = _load(name)[1]
        report[name] = {"available": reason is None, "reason": reason}
    return report
