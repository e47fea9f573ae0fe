"""conv1dbench: 1-D convolution, what exactly it computes, and which implementation is fastest here.

>>> import conv1dbench as cb
>>> cb.convolve([1, 2, 3, 4], [5, 6, 7], mode="same")
array([16, 34, 52, 45])

Public names (the contract is ``docs/SPEC.md``): the signal API :func:`convolve`, :func:`correlate`;
the layer API :func:`conv1d`, :func:`conv1d_backward`; the matrices :func:`conv_matrix`,
:func:`conv1d_matrix`; :func:`backends`, :func:`fastest`, :class:`BackendUnavailable`; auto's
settings and tuning: :func:`configure_auto`, :func:`auto_settings`, :func:`tune`; how hard FFT
engines plan: :func:`configure_fft`; the backends' reused scratch memory: :func:`free_workspaces`,
:func:`configure_workspaces`.  Backends are imported on first use, so importing this package
compiles nothing and imports neither numba nor scipy.
"""

from ._api import conv1d, conv1d_backward, convolve, correlate
from ._auto import auto_settings, configure_auto
from ._fastest import fastest
from ._matrix import conv1d_matrix, conv_matrix
from ._planning import configure_fft
from ._registry import BACKEND_NAMES, BackendUnavailable, backends
from ._workspace import configure_workspaces, free_workspaces

__all__ = ["BACKEND_NAMES", "BackendUnavailable", "auto_settings", "backends", "configure_auto", "configure_fft",
           "configure_workspaces", "conv1d", "conv1d_backward", "conv1d_matrix", "conv_matrix", "convolve", "correlate",
           "fastest", "free_workspaces", "tune"]
__version__ = "0.2.0"


def __getattr__(name):
    if name == "tune":  # import time: tuning lives in the harness, which a convolution never needs
        from .harness.tune import tune

        return tune
    raise AttributeError(f"module 'conv1dbench' has no attribute {name!r}")
