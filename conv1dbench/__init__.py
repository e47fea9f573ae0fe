"""conv1dbench: 1-D convolution, what exactly it computes, and which implementation is fastest here.

>>> import conv1dbench as cb
>>> cb.convolve([1, 2, 3, 4], [5, 6, 7], mode="same")
array([16, 34, 52, 45])

Public names (the contract is ``SPEC.md``): :func:`convolve`, :func:`correlate`, :func:`backends`,
:func:`fastest`, :class:`BackendUnavailable`.  Backends are imported on first use, so importing this
package compiles nothing and imports neither numba nor scipy.
"""

from ._registry import BACKEND_NAMES, BackendUnavailable, backends
from ._signal import convolve, correlate, fastest

__all__ = ["BACKEND_NAMES", "BackendUnavailable", "backends", "convolve", "correlate", "fastest"]
__version__ = "0.1.0"
