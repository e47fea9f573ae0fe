"""``scipy.signal.oaconvolve``, the call its peers share, each on another scipy.fft setup."""

from __future__ import annotations

from ._spec import scoped


def oaconvolve(x, w2, mode, scope=None):
    """The timed call: ``scipy.signal.oaconvolve`` along the last axis, inside ``scope()`` if given."""
    import scipy.signal  # import time: only signal cases need it

    def call():
        return scipy.signal.oaconvolve(x, w2, mode, axes=-1)
    return call if scope is None else scoped(call, scope)
