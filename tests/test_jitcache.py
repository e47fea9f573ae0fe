"""Numba's disk cache goes stale with any file a kernel compiles in (:mod:`conv1dbench._jitcache`)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from conv1dbench import _jitcache
from conv1dbench._backends import _tiles
from conv1dbench._backends import numba as nb

PACKAGE = Path(_jitcache.__file__).resolve().parent


def test_a_kernels_sources_are_the_files_it_compiles_in():
    names = {str(Path(p).relative_to(PACKAGE)) for p in _jitcache.sources(nb.__file__)}
    # numba.py's kernels call the tiles, which call the SIMD intrinsics; valid_range comes from _core
    assert {"_backends/numba.py", "_backends/_tiles.py", "_backends/_simd.py", "_core.py"} <= names
    assert "cli.py" not in names  # nothing the kernels do not import
    tiles = {str(Path(p).relative_to(PACKAGE)) for p in _jitcache.sources(_tiles.__file__)}
    assert tiles >= {"_backends/_tiles.py", "_backends/_simd.py"} and "_backends/numba.py" not in tiles


def test_every_cached_kernel_is_stamped_by_its_sources():
    for module in (nb, _tiles):
        dispatchers = [f for f in vars(module).values() if getattr(f, "_cache", None) is not None
                       and type(f._cache).__name__ == "FunctionCache"]
        assert dispatchers, module.__name__
        for f in dispatchers:
            locator = f._cache._impl.locator
            assert isinstance(locator, _jitcache._Stamped), f
            assert locator.get_source_stamp() == _jitcache.stamp(module.__file__)


def test_an_edited_helper_recompiles_the_kernel_that_calls_it(tmp_path):
    """The case Numba's own cache gets wrong: a cached kernel in one file, a jitted helper it calls in
    another; the helper changes and the kernel must see it, in a new process, with no cache deleted."""
    package = tmp_path / "kernels"
    package.mkdir()
    (package / "__init__.py").write_text("")
    helper = package / "helper.py"
    helper.write_text("from numba import njit\n\n@njit\ndef value():\n    return 1\n")
    (package / "kernel.py").write_text(textwrap.dedent("""
        import os
        from conv1dbench import _jitcache
        _jitcache.install(os.path.dirname(__file__))
        from numba import njit
        from .helper import value

        @njit(cache=True)
        def kernel():
            return value() * 10
    """))
    run = [sys.executable, "-c",
           "from kernels.kernel import kernel; print(kernel(), sum(kernel.stats.cache_hits.values()))"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(PACKAGE.parent)])}
    env.pop("NUMBA_CACHE_DIR", None)

    def result():
        return subprocess.run(run, env=env, capture_output=True, text=True, check=True).stdout.split()

    assert result() == ["10", "0"]  # compiled, and cached
    assert list((package / "__pycache__").glob("kernel.kernel-*.nbi"))
    assert result() == ["10", "1"]  # loaded from the cache: the stamp is stable
    helper.write_text("from numba import njit\n\n@njit\ndef value():\n    return 2\n")
    assert result() == ["20", "0"]  # the helper's file changed: compiled afresh, not the stale 10
