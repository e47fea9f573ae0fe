"""Wisdom: measured timings, kept across runs in one JSON file per user, per machine fingerprint.

Like FFTW's wisdom, but keyed so that it is never applied where it does not hold: every entry sits
under the fingerprint of the machine and library versions that measured it (CPU, vector ISA, BLAS
and its kernel, cores, NumPy, SciPy, Numba, the FFT engines pyFFTW and ducc0, conv1dbench, the version
of the problem key it is filed under, and a hash of the package's computing source: a kernel edited
or pulled never reuses the timings of the one before).  Timings from another machine, or from before
an upgrade, are kept in the file but never used.

The file is ``$CONV1DBENCH_WISDOM`` if set, else ``<user cache>/conv1dbench/wisdom.json``
(``$XDG_CACHE_HOME`` or ``~/.cache``); every function also takes an explicit path.  Writes take an
exclusive lock on ``<file>.lock`` around read-merge-write, and replace the file atomically
(``os.replace`` of a temporary in the same folder), so concurrent processes never lose each
other's timings or leave a torn file.  A file that cannot be read or parsed gives one
:class:`WisdomWarning` and is treated as empty: wisdom is an optimisation, never a reason for a
convolution to fail.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import tempfile
import warnings
from pathlib import Path

from ._plan import KEY_VERSION
from .machine import machine_info

FORMAT = 1
ENV_VAR = "CONV1DBENCH_WISDOM"


class WisdomWarning(UserWarning):
    """The wisdom file could not be used (corrupt, unreadable, or of another format)."""


def default_path() -> Path:
    if os.environ.get(ENV_VAR):
        return Path(os.environ[ENV_VAR])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "conv1dbench" / "wisdom.json"


def resolve(path=None) -> Path:
    return Path(path) if path is not None else default_path()


_fingerprint: dict | None = None


def fingerprint() -> dict:
    """What timings depend on: the machine and the libraries doing the arithmetic."""
    global _fingerprint
    if _fingerprint is None:
        info = machine_info(gpu=False)
        # static facts only: what is loaded or how threads are set must not change the key
        keys = ("cpu", "vector_isa", "cores", "numpy", "scipy", "numba", "llvmlite", "conv1dbench", "blas", "pyFFTW",
                "ducc0")
        _fingerprint = {"machine": platform.machine(), **{k: info.get(k) for k in keys},
                        "problem_key": KEY_VERSION, "source": source_hash()}
    return dict(_fingerprint)


def source_hash() -> str:
    """A hash of every module that computes or decides (the package, less the harness and the command line)."""
    package = Path(__file__).parent
    digest = hashlib.sha256()
    for path in sorted(package.rglob("*.py")):
        relative = path.relative_to(package).as_posix()
        if not relative.startswith(("harness/", "cli.py")):
            digest.update(relative.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()[:16]


def fingerprint_key(fp: dict | None = None) -> str:
    fp = fingerprint() if fp is None else fp
    return hashlib.sha256(json.dumps(fp, sort_keys=True).encode()).hexdigest()[:16]


def _read(path: Path) -> dict:
    """The whole file, or an empty one (with a warning) when it is missing, torn or foreign."""
    empty = {"format": FORMAT, "machines": {}}
    try:
        raw = json.loads(path.read_text())
    except FileNotFoundError:
        return empty
    except (OSError, ValueError) as exc:
        _warn_once(f"ignoring the wisdom file {path}: {type(exc).__name__}: {exc}")
        return empty
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("machines"), dict):
        _warn_once(f"ignoring the wisdom file {path}: not conv1dbench wisdom of format {FORMAT}")
        return empty
    return raw


_warned: set = set()


def _warn_once(message: str) -> None:
    """A WisdomWarning, once per process for one file and one fault (auto, FFTW's plans and the kernel
    parameters each read the file)."""
    if message not in _warned:
        _warned.add(message)
        warnings.warn(message, WisdomWarning, stacklevel=4)


def load(path=None) -> list[dict]:
    """This machine's measurements from the wisdom file (``[]`` if none, or if the file is unusable)."""
    entry = _read(resolve(path))["machines"].get(fingerprint_key(), {})
    rows = entry.get("measurements", [])
    return [r for r in rows if isinstance(r, dict)] if isinstance(rows, list) else []


@contextlib.contextmanager
def _locked(path: Path):
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as lock:
        try:
            import fcntl  # optional: POSIX only
        except ImportError:  # Windows: os.replace still keeps the file whole
            yield
            return
        fcntl.flock(lock.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock.fileno(), fcntl.LOCK_UN)


def record(measurements: list[dict], path=None) -> Path:
    """Add this machine's ``measurements`` to the wisdom file; a newer timing of the same key wins.

    Each measurement is a dict with a ``"key"`` (the problem and backend it timed) and its fields.
    """
    def merge(entry):
        merged = {m["key"]: m for m in entry.get("measurements", []) if isinstance(m, dict) and "key" in m}
        merged.update({m["key"]: m for m in measurements})
        entry["measurements"] = list(merged.values())
    return _write(resolve(path), merge)


def _write(path: Path, change) -> Path:
    """Read the file, ``change`` this machine's entry in place, write it back: locked, atomically."""
    with _locked(path):
        raw = _read(path)
        change(raw["machines"].setdefault(fingerprint_key(), {"fingerprint": fingerprint(), "measurements": []}))
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        try:
            with os.fdopen(fd, "w") as f:
                json.dump(raw, f, indent=1, sort_keys=True)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
    return path


def load_extra(name: str, path=None):
    """What a backend filed under ``name`` for this machine (:func:`record_extra`), or None."""
    entry = _read(resolve(path))["machines"].get(fingerprint_key(), {})
    extras = entry.get("extras", {})
    return extras.get(name) if isinstance(extras, dict) else None


def record_extra(name: str, value, path=None) -> Path:
    """File ``value`` (anything JSON holds) under ``name`` for this machine, replacing what was there:
    a backend's own wisdom, such as FFTW's plans (:mod:`conv1dbench._backends.fftw`)."""
    return _write(resolve(path), lambda entry: entry.setdefault("extras", {}).__setitem__(name, value))
