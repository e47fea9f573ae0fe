"""pytest plugin: scipy's own 1-D convolve/correlate tests, run against conv1dbench.

``tests/test_scipy_suite.py`` starts ``pytest --pyargs scipy.signal.tests.test_signaltools`` with this
plugin, once per backend (``CONV1DBENCH_SCIPY_SUITE_BACKEND``).  After collection (scipy's decorators
and fixtures need scipy's own functions at import) the test module's ``convolve`` and ``correlate``
become ours on that backend.  Only the 1-D classes run; a test is deselected only by name, from
:data:`DESELECTED`, each with its reason, so that a case a new scipy release adds runs and, if we
fail it, fails.
"""

import functools
import os

import conv1dbench as cb

BACKEND = os.environ.get("CONV1DBENCH_SCIPY_SUITE_BACKEND", "auto")
CLASSES = ("TestConvolve", "TestCorrelateReal", "TestCorrelate", "TestCorrelateComplex")
_N_D = "N-d operands: conv1dbench convolves along one axis (scipy convolves along all of them)"
_METHOD = "scipy's method= argument: conv1dbench chooses with backend= (tested on every backend instead)"
DESELECTED = {
    "TestConvolve::test_2d_arrays": _N_D,
    "TestConvolve::test_broadcastable": _N_D + "; and it compares scipy's methods",
    "TestConvolve::test_invalid_params": _METHOD + " (an unknown mode alone: tests/test_signal.py)",
    "TestCorrelate::test_invalid_params": _METHOD + " (an unknown mode alone: tests/test_signal.py)",
    "TestConvolve::test_input_swapping": _N_D,
    "TestConvolve::test_invalid_shapes": _N_D,
    "TestConvolve::test_mismatched_dims": ("operands of different ranks: conv1dbench broadcasts a 1-D kernel "
                                           "over the slices of an n-d in1, where scipy refuses"),
    "TestConvolve::test_convolve_method": _METHOD,
    "TestConvolve::test_convolve_method_large_input": _METHOD,
    "TestCorrelateReal::test_method": _METHOD,
    "TestCorrelateReal::test_rank3_valid": _N_D,
    "TestCorrelateReal::test_rank3_same": _N_D,
    "TestCorrelateReal::test_rank3_all": _N_D,
    "TestCorrelate::test_invalid_shapes": _N_D,
    "TestCorrelate::test_mismatched_dims": ("operands of different ranks: conv1dbench broadcasts a 1-D kernel "
                                            "over the slices of an n-d in1, where scipy refuses"),
    "TestCorrelate::test_numpy_fastpath": "checks scipy's own dispatch to numpy.correlate",
    "TestCorrelateComplex::test_rank3": _N_D,
}


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        name = f"{item.cls.__name__}::{item.originalname}" if item.cls is not None else item.name
        wanted = item.cls is not None and item.cls.__name__ in CLASSES and name not in DESELECTED
        (keep if wanted else drop).append(item)
    if drop:
        config.hook.pytest_deselected(items=drop)
    items[:] = keep
    for module in {item.module for item in keep}:
        module.convolve = functools.partial(cb.convolve, backend=BACKEND)
        module.correlate = functools.partial(cb.correlate, backend=BACKEND)
