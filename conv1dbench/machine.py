"""What a measurement ran on: machine, library versions, BLAS and thread settings."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _version(package: str) -> str | None:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _gpu() -> str | None:
    """The CUDA GPU the ``cuda`` backend would use, if there is one (numba-cuda installed, driver found)."""
    if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
        return "none (the CUDA simulator)"
    try:
        from ._registry import is_available
        if not is_available("cuda"):
            return None
        from numba import cuda
        name = cuda.get_current_device().name
        return name.decode() if isinstance(name, bytes) else str(name)
    except Exception:  # noqa: BLE001 - a report never fails for want of a GPU name
        return None


def machine_info(gpu: bool = True) -> dict:
    """A flat dict describing this machine and software, for every report and results file.

    ``gpu=False`` skips looking for a GPU (which imports numba.cuda: most of a second).
    """
    info = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    for package in ("conv1dbench", "numpy", "scipy", "numba", "llvmlite", "pandas", "torch"):
        info[package] = _version(package)
    try:
        from threadpoolctl import threadpool_info
        import numpy  # noqa: F401 - its BLAS must be loaded to be found
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        # NumPy's own BLAS, not one another library (torch) happens to have loaded first
        blas.sort(key=lambda p: "numpy" not in str(p.get("filepath", "")))
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')} ({blas[0].get('architecture')})"
            info["blas_threads"] = blas[0].get("num_threads")
    except Exception:  # threadpoolctl is a convenience here, never a reason to fail a report
        pass
    try:
        import numba
        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
        info["numba_threading_layer"] = numba.config.THREADING_LAYER
    except Exception:
        pass
    name = _gpu() if gpu else None
    if name:
        info["gpu"] = name
    for var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS", "OPENBLAS_CORETYPE"):
        if os.environ.get(var):
            info[var] = os.environ[var]
    return info
