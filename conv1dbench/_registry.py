"""The backend registry: one dict, lazily imported modules, clear errors.

Every backend is one module in :mod:`conv1dbench._backends`, which holds its algorithm and declares
what the rest of the package needs to know of it (the contract, written out in that package's
docstring); :data:`MODULES` is the one place a backend is registered.  Everything else (auto, the
cost model, the front ends, the harness, the reports) learns the backends from here, never by name.

Backend modules are imported on first use, so ``import conv1dbench`` stays fast, and a broken
optional dependency only makes its backend unavailable.
"""

from __future__ import annotations

import importlib
import inspect
from types import ModuleType

import numpy as np

from ._backends import DECLARATIONS, FUNCTIONS, RULES

__all__ = ["BACKEND_NAMES", "BackendUnavailable", "auto_candidates", "backends", "device_backends",
           "get_backend", "module"]


class BackendUnavailable(RuntimeError):
    """A known backend cannot run on this machine; the message says why and how to fix it."""


#: name -> module: the one place a backend is registered (in the order reports list them).
MODULES = {
    "naive": "conv1dbench._backends.naive",
    "im2col": "conv1dbench._backends.im2col",
    "fft": "conv1dbench._backends.fft",
    "fftw": "conv1dbench._backends.fftw",
    "ducc": "conv1dbench._backends.ducc",
    "numba": "conv1dbench._backends.numba",
    "cuda": "conv1dbench._backends.cuda",
}
BACKEND_NAMES = tuple(MODULES)
_modules: dict[str, ModuleType | None] = {}   # imported (None: the import failed)
_reasons: dict[str, str | None] = {}          # unavailable_reason(), asked once


def _import(name: str) -> tuple[ModuleType | None, str | None]:
    """The backend's module, or None and why it cannot be used (a failed import, a broken contract)."""
    if name not in _modules:
        try:
            loaded = importlib.import_module(MODULES[name])
        except Exception as exc:  # a broken dependency disables the backend, never the package
            _modules[name] = None
            _reasons[name] = f"importing {MODULES[name]} failed: {type(exc).__name__}: {exc}"
        else:
            broken = _breach(loaded)
            if broken:
                _modules[name] = None
                _reasons[name] = f"{MODULES[name]} breaks the backend contract: {broken}"
            else:
                _modules[name] = loaded
    return _modules[name], _reasons.get(name)


def _breach(loaded: ModuleType) -> str | None:
    """How a backend module breaks the contract (:mod:`conv1dbench._backends`), or None."""
    missing = [n for n in DECLARATIONS + FUNCTIONS if not hasattr(loaded, n)]
    if missing:
        return f"it lacks {', '.join(missing)}"
    if loaded.RULE not in RULES:
        return f"it declares an unknown RULE {loaded.RULE!r}"
    for function in getattr(loaded, "TAKES_OUT", ()):
        if function not in FUNCTIONS or "out" not in inspect.signature(getattr(loaded, function)).parameters:
            return f"TAKES_OUT names {function!r}, which is not one of {', '.join(FUNCTIONS)} taking out="
    return None


def takes_out(loaded: ModuleType, function: str) -> bool:
    """Whether the backend module's ``function`` writes its result into an ``out=`` it is given."""
    return function in getattr(loaded, "TAKES_OUT", ())


def module(name: str) -> ModuleType | None:
    """A backend's module, to read its declarations (None if it cannot be imported); runs nothing."""
    return _import(name)[0]


def unavailable_reason(name: str) -> str | None:
    """Why backend ``name`` cannot run here, or None (asked once per process)."""
    loaded, reason = _import(name)
    if loaded is not None and name not in _reasons:
        _reasons[name] = loaded.unavailable_reason()
    return _reasons[name]


def is_available(name: str) -> bool:
    return unavailable_reason(name) is None


def check_name(name: object) -> str:
    """Return ``name`` if it names a backend or ``"auto"``; raise ``ValueError`` listing them otherwise."""
    if not isinstance(name, str) or (name != "auto" and name not in MODULES):
        known = ", ".join(repr(n) for n in ("auto",) + BACKEND_NAMES)
        raise ValueError(f"unknown backend {name!r}; known backends are {known}")
    return name


def get_backend(name: str, dtype: np.dtype) -> ModuleType:
    """The module of an available backend that computes in ``dtype``.

    Raises ``ValueError`` for an unknown name, ``BackendUnavailable`` if the backend cannot run
    here, ``TypeError`` if it does not take ``dtype``.
    """
    loaded = _modules.get(name)
    if loaded is None or _reasons.get(name, "") is not None:
        check_name(name)
        reason = unavailable_reason(name)
        if reason is not None:
            raise BackendUnavailable(f"backend {name!r} is unavailable: {reason}")
        loaded = _modules[name]
    if dtype not in loaded.DTYPES:
        names = ", ".join(sorted(str(d) for d in loaded.DTYPES))
        raise TypeError(f"backend {name!r} does not take dtype {dtype}; it takes {names}")
    return loaded


def auto_candidates(dtype: np.dtype) -> list[str]:
    """The backends auto may choose for host arrays of core ``dtype``, available here, in registry order."""
    return [name for name in BACKEND_NAMES
            if (m := module(name)) is not None and m.AUTO and dtype in m.DTYPES and is_available(name)]


def device_backends() -> list[str]:
    """The backends that take device arrays (whether or not they can run here), in registry order."""
    return [name for name in BACKEND_NAMES if (m := module(name)) is not None and m.DEVICE]


def backends() -> dict[str, dict[str, object]]:
    """Every backend with whether it can run here and, if not, why.

    Returns
    -------
    dict
        ``{name: {"available": bool, "reason": str | None}}`` for each registered backend.

    Examples
    --------
    >>> import conv1dbench as cb
    >>> cb.backends()["naive"]
    {'available': True, 'reason': None}
    """
    report = {}
    for name in BACKEND_NAMES:
        reason = unavailable_reason(name)
        report[name] = {"available": reason is None, "reason": reason}
    return report
