"""Shared fixtures: every test that takes ``backend`` runs once per registered backend."""

import pytest

import conv1dbench as cb

DIRECT_BACKENDS = {"naive", "im2col", "numba", "cuda"}  # compute each output from its own window


def _backend_params():
    report = cb.backends()
    return [
        pytest.param(name, id=name, marks=() if info["available"]
                     else pytest.mark.skip(reason=f"{name}: {info['reason']}"))
        for name, info in report.items()
    ]


@pytest.fixture(params=_backend_params(), scope="session")
def backend(request):
    """The name of one registered backend; unavailable ones are skipped with their reason."""
    return request.param
