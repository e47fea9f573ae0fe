"""Numba's disk cache for our kernels, made stale by any file a kernel compiles in.

Numba keys a cached function by its own source file only (a hash of it, in the cache's index). A kernel
compiles in more than its file: the jitted functions it calls from other modules (their machine code is
linked into the caller's), and the globals it reads, which Numba freezes as constants. So after an edit
to ``_tiles.py``, ``numba.py``'s cached kernels would still run the old tiles, and ``git pull`` on an
editable install could run stale code with no sign of it.

:func:`install` puts a cache locator in front of Numba's own ones. For a file of this package it stores
the index where Numba would, and stamps it with a hash of the file *and of every module of the
package that the file imports*, followed through the imports of those that hold compiled code. An edit
to any of them makes the index stale, and Numba compiles afresh. Everything else is Numba's.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os

from numba.core import caching

#: The package root whose files the locator stamps; tests point other roots at it (:func:`install`).
_ROOTS: set[str] = set()

#: Words that mark a module as holding compiled code (its imports are followed further).
_COMPILED = ("njit", "@jit", "intrinsic", "overload", "cuda.jit", "vectorize")


def install(root: str | None = None) -> None:
    """Stamp the cached kernels of the package at ``root`` (default: this package) by their imports.

    Call it before the package's jitted functions are defined (Numba picks a function's locator when
    it is decorated); calling it again does nothing."""
    _ROOTS.add(os.path.realpath(root or os.path.dirname(__file__)))
    chain = caching.CacheImpl._locator_classes
    if not any(issubclass(cls, _Stamped) for cls in chain):
        chain[:0] = [_UserProvided, _InTree, _UserWide]


def sources(py_file: str) -> tuple[str, ...]:
    """The files whose contents decide a kernel of ``py_file``: the file, the package modules it
    imports, and so on through those that hold compiled code; sorted paths."""
    root = _root_of(py_file)
    if root is None:
        return (os.path.realpath(py_file),)
    found: set[str] = set()
    _collect(os.path.realpath(py_file), root, found)
    return tuple(sorted(found))


@functools.cache
def stamp(py_file: str) -> str:
    """The hash of :func:`sources`' contents, names and all: the cache's index holds it."""
    digest = hashlib.sha256()
    for path in sources(py_file):
        digest.update(path.encode())
        with open(path, "rb") as f:
            digest.update(hashlib.sha256(f.read()).digest())
    return digest.hexdigest()


def _root_of(py_file: str) -> str | None:
    path = os.path.realpath(py_file)
    return next((root for root in _ROOTS if path.startswith(root + os.sep)), None)


def _collect(path: str, root: str, found: set[str], follow: bool = True) -> None:
    if path in found:
        return
    found.add(path)
    text, imported = _imports(path, root)
    if follow or any(word in text for word in _COMPILED):
        for module in imported:
            _collect(module, root, found, follow=False)


@functools.cache
def _imports(path: str, root: str) -> tuple[str, tuple[str, ...]]:
    """``path``'s text and the package files its relative imports name (``from . import x`` names the
    module ``x``, or else the package's ``__init__``)."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    files = []
    for node in ast.walk(ast.parse(text, path)):
        if not (isinstance(node, ast.ImportFrom) and node.level > 0):
            continue
        base = os.path.dirname(path)
        for _ in range(node.level - 1):
            base = os.path.dirname(base)
        if node.module:
            base = os.path.join(base, *node.module.split("."))
            names = [base + ".py", os.path.join(base, "__init__.py")]
        else:
            names = [next((c for c in (os.path.join(base, a.name + ".py"), os.path.join(base, a.name, "__init__.py"))
                           if os.path.isfile(c)), os.path.join(base, "__init__.py")) for a in node.names]
        files += [os.path.realpath(n) for n in names if os.path.isfile(n)]
    return text, tuple(f for f in dict.fromkeys(files) if f.startswith(root + os.sep))


class _Stamped:
    """A locator of Numba's, for this package's files only, whose stamp is :func:`stamp`."""

    @classmethod
    def from_function(cls, py_func, py_file):
        if _root_of(py_file) is None:
            return None
        return super().from_function(py_func, py_file)

    def get_source_stamp(self):
        return stamp(self._py_file)


class _UserProvided(_Stamped, caching.UserProvidedCacheLocator):
    pass


class _InTree(_Stamped, caching.InTreeCacheLocator):
    pass


class _UserWide(_Stamped, caching.UserWideCacheLocator):
    pass
