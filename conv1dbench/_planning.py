"""How hard FFT engines plan their transforms: ``conv1dbench.configure_fft``.

FFTW can make a plan by estimate (about a millisecond) or by timing candidate algorithms
(``"measure"``: a tenth of a second to seconds per transform size, for plans up to twice as fast on
single long rows and about 5-10% on the batched windows the FFT backends mostly run; ``results/NOTES.md``,
"fftw: planning").  A cheap plan is right on first sight; ``conv1dbench.tune`` plans with
``"measure"`` and keeps FFTW's wisdom in the wisdom file, so that later processes get the measured
plans at no cost.  The setting is ``$CONV1DBENCH_FFT_PLANNING`` if set, else ``"estimate"``.
"""

from __future__ import annotations

import os

__all__ = ["EFFORTS", "configure_fft", "effort"]

#: The planning efforts, cheapest first (FFTW's FFTW_ESTIMATE ... FFTW_EXHAUSTIVE).
EFFORTS = ("estimate", "measure", "patient", "exhaustive")
ENV_VAR = "CONV1DBENCH_FFT_PLANNING"
_settings: dict = {}


def _check(effort, where: str) -> str:
    if effort not in EFFORTS:
        raise ValueError(f"{where} must be one of {', '.join(map(repr, EFFORTS))}; got {effort!r}")
    return effort


def effort() -> str:
    """The planning effort in force."""
    if "planning" not in _settings:
        _settings["planning"] = _check(os.environ.get(ENV_VAR, "estimate"), f"${ENV_VAR}")
    return _settings["planning"]


def configure_fft(planning: str | None = None) -> dict:
    """Set how hard the FFT engines plan (``"estimate"``, ``"measure"``, ``"patient"``, ``"exhaustive"``);
    returns the settings in force, ``{"planning": effort}``.

    Plans made before keep their effort; a transform met afresh is planned with the new one (with
    FFTW, wisdom of that effort or a harder one is used where there is some).

    Examples
    --------
    >>> import conv1dbench as cb
    >>> cb.configure_fft()["planning"] in ("estimate", "measure", "patient", "exhaustive")
    True
    """
    if planning is not None:
        _settings["planning"] = _check(planning, "planning")
    return {"planning": effort()}
