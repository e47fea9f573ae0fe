"""scipy's own tests of ``convolve`` and ``correlate``, run against ours on auto and every CPU backend.

The installed scipy's ``scipy/signal/tests/test_signaltools.py`` runs in a pytest process of its own
(``--pyargs``, so that scipy's own conftest provides its ``xp`` fixture), with
``tests/scipy_suite_plugin.py`` putting our functions in place of scipy's after collection and
deselecting only the tests its list names, each with a reason.
"""

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import conv1dbench as cb
from conv1dbench._registry import BACKEND_NAMES, module

HERE = Path(__file__).resolve().parent
CPU_BACKENDS = [n for n in BACKEND_NAMES if cb.backends()[n]["available"] and not module(n).DEVICE]
#: The 1-D tests of scipy 1.17 that are not deselected (a release may add more; never fewer here).
AT_LEAST = 50


def _scipy_tests_missing() -> str | None:
    try:
        found = importlib.util.find_spec("scipy.signal.tests.test_signaltools")
    except ModuleNotFoundError:
        found = None
    return None if found else "scipy's test suite is not installed with this scipy"


@pytest.mark.skipif(_scipy_tests_missing() is not None, reason=str(_scipy_tests_missing()))
@pytest.mark.parametrize("backend", ["auto"] + CPU_BACKENDS)
def test_scipy_signal_tests_pass_on_our_functions(backend, tmp_path):
    env = {**os.environ, "CONV1DBENCH_SCIPY_SUITE_BACKEND": backend,
           "PYTHONPATH": os.pathsep.join([str(HERE), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-m", "pytest", "--pyargs", "scipy.signal.tests.test_signaltools", "-q",
                           "-p", "no:cacheprovider", "-p", "scipy_suite_plugin", "-W", "ignore::DeprecationWarning"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    summary = done.stdout.strip().splitlines()[-1] if done.stdout.strip() else done.stderr[-2000:]
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    passed = int(re.search(r"(\d+) passed", summary).group(1))
    assert passed >= AT_LEAST, summary
