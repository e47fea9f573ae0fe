"""Shared fixtures: every test that takes ``backend`` runs once per registered backend.

Two environment variables serve the CUDA simulator run (``tests/test_cuda.py`` starts it in a
process of its own): ``CONV1DBENCH_TEST_BACKENDS`` (comma-separated names) limits the ``backend``
fixture, and then only tests that take ``backend`` or live in ``test_cuda.py`` are collected;
``NUMBA_ENABLE_CUDASIM=1`` makes :func:`skip_if_slow` skip sizes the simulator would take minutes on.
"""

import atexit
import contextlib
import os
import shutil
import tempfile
from pathlib import Path

# Tests never read or write the user's wisdom (auto's timings): a fresh file per session (per process
# with pytest-xdist), set before conv1dbench loads anything, and removed when the session ends.
_WISDOM_FOLDER = tempfile.mkdtemp(prefix="conv1dbench-tests-")
atexit.register(shutil.rmtree, _WISDOM_FOLDER, ignore_errors=True)
os.environ["CONV1DBENCH_WISDOM"] = str(Path(_WISDOM_FOLDER) / "wisdom.json")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

import conv1dbench as cb  # noqa: E402
from conv1dbench import _registry  # noqa: E402

DIRECT_BACKENDS = {"naive", "im2col", "numba", "cuda"}  # compute each output from its own window
ONLY = [name for name in os.environ.get("CONV1DBENCH_TEST_BACKENDS", "").split(",") if name]
SIMULATED = os.environ.get("NUMBA_ENABLE_CUDASIM") == "1"
#: Multiply-adds above which a backend is too slow to test: naive loops in Python, and the CUDA
#: simulator (every GPU thread a Python thread).
SLOW_MACS = {"naive": 2_000_000, "cuda": 20_000 if SIMULATED else None}


def pytest_configure(config):
    """In the tests, auto decides from its models alone unless a test turns its timing on first sight on:
    a choice that depends on this machine's timings would make their expectations depend on the machine.
    The benchmarks (``--benchmark-only``) time auto as users get it."""
    if not config.getoption("benchmark_only", default=False):
        os.environ["CONV1DBENCH_AUTO_MEASURE"] = "off"


def _backend_params():
    report = cb.backends()
    return [
        pytest.param(name, id=name, marks=() if info["available"]
                     else pytest.mark.skip(reason=f"{name}: {info['reason']}"))
        for name, info in report.items() if not ONLY or name in ONLY
    ]


@pytest.fixture(params=_backend_params(), scope="session")
def backend(request):
    """The name of one registered backend; unavailable ones are skipped with their reason."""
    return request.param


def pytest_collection_modifyitems(config, items):
    """With ``CONV1DBENCH_TEST_BACKENDS``, only the tests of those backends (the ``backend`` fixture's, or
    a ``backend`` parameter's among them) and ``test_cuda.py``: the simulator's run repeats nothing."""
    if ONLY:
        items[:] = [item for item in items if _tested_backend(item) in ONLY or item.path.name == "test_cuda.py"]


def _tested_backend(item):
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("backend") if callspec is not None else None


def core_dtype(dtype) -> np.dtype:
    """The dtype a backend computes ``dtype`` in (integers and bool in int64)."""
    dtype = np.dtype(dtype)
    return np.dtype(np.int64) if dtype.kind in "biu" else dtype


def takes(backend: str, *dtypes) -> bool:
    """Whether ``backend`` computes in every one of ``dtypes`` (docs/SPEC.md section 4: others raise TypeError)."""
    module = _registry.module(backend)
    return module is not None and all(core_dtype(d) in module.DTYPES for d in dtypes)


def skip_unless_takes(backend: str, *dtypes) -> None:
    if not takes(backend, *dtypes):
        names = ", ".join(np.dtype(d).name for d in dtypes)
        pytest.skip(f"{backend} does not take {names} (it raises TypeError, tested elsewhere)")


def skip_if_slow(backend: str, macs: int) -> None:
    limit = SLOW_MACS.get(backend)
    if limit is not None and macs > limit:
        pytest.skip(f"{backend}: too slow for {macs} multiply-adds here")


@pytest.fixture
def auto_models():
    """``install(models)``: auto decides with exactly these cost models (``{}``: the rule) and no
    timings, for the rest of the test (:func:`conv1dbench.auto_settings`)."""
    with contextlib.ExitStack() as scopes:
        yield lambda models: scopes.enter_context(cb.auto_settings(models=models, measured={}))
