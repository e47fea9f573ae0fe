"""What a measurement ran on: machine, library versions, BLAS and thread settings."""

from __future__ import annotations

import os
import platform
import sys

from . import _planning
from ._registry import device_backends, is_available, module


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _vector_isa() -> str | None:
    """The widest SIMD the CPU reports (machines of one name here differ: AVX-512 on some, AVX2 on others)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = next((line.split(":", 1)[1].split() for line in f if line.startswith(("flags", "Features"))), [])
    except OSError:
        return None
    for names, isa in ((("avx512f",), "AVX-512"), (("avx2", "fma"), "AVX2+FMA"), (("avx",), "AVX"),
                       (("sse4_2",), "SSE4.2"), (("asimd",), "NEON (ASIMD)")):
        if all(n in flags for n in names):
            return isa
    return None


def _memory_gib() -> float | None:
    try:
        return round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)
    except (ValueError, OSError, AttributeError):
        return None


def _version(package: str) -> str | None:
    from importlib import metadata  # import time: it pulls in the email package; only reports need it

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _gpu() -> str | None:
    """The GPU a device backend would use, if one can run here (it names the simulator as such)."""
    for name in device_backends():
        if is_available(name):
            try:
                return module(name).device_name()
            except Exception:  # noqa: BLE001 - a report never fails for want of a GPU name
                return None
    return None


def machine_info(gpu: bool = True) -> dict:
    """A flat dict describing this machine and software, for every report and results file (the code's
    commit is the harness's to add: :func:`conv1dbench.harness.runner.code_version`).

    ``gpu=False`` skips looking for a GPU (which imports numba.cuda: import time).
    """
    info = {
        "cpu": _cpu_model(),
        "vector_isa": _vector_isa(),
        "cores": os.cpu_count(),
        "memory_gib": _memory_gib(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
    }
    for package in ("conv1dbench", "numpy", "scipy", "numba", "llvmlite", "pandas", "torch", "pyFFTW", "ducc0", "jax"):
        info[package] = _version(package)
    try:
        import numpy  # noqa: F401 - its BLAS must be loaded to be found (import time: numpy is loaded by now)
        from threadpoolctl import threadpool_info  # import time: only reports need it
        blas = [p for p in threadpool_info() if p.get("user_api") == "blas"]
        # NumPy's own BLAS, not one another library (torch) happens to have loaded first
        blas.sort(key=lambda p: "numpy" not in str(p.get("filepath", "")))
        if blas:
            info["blas"] = f"{blas[0].get('internal_api')} {blas[0].get('version')} ({blas[0].get('architecture')})"
            info["blas_threads"] = blas[0].get("num_threads")
    except Exception:  # threadpoolctl is a convenience here, never a reason to fail a report
        pass
    try:
        import numba  # import time: only reports need it, never a convolution

        info["numba_threads"] = numba.config.NUMBA_NUM_THREADS
        info["numba_threading_layer"] = numba.config.THREADING_LAYER
        # import time: only reports need what the numba backend's register tiles are compiled for
        from ._backends._simd import target_isa
        from ._backends._tiles import TILE_SHAPES

        isa = target_isa()
        shape = TILE_SHAPES[isa.name]
        info["numba_kernel_isa"] = (f"{isa.name} ({isa.bits}-bit vectors, {isa.registers} registers; "
                                    f"layer tile 4 x {shape.layer}, row tile {shape.row})")
    except Exception:
        pass
    name = _gpu() if gpu else None
    if name:
        info["gpu"] = name
    if info.get("pyFFTW"):  # the FFTW plans a run's workers make (they inherit the setting)
        info["fft_planning"] = _planning.effort()
    for var in sorted(os.environ):
        if var.startswith(SPEED_VARIABLES):
            info[var] = os.environ[var]
    return info


#: Environment variables that change how fast things run: BLAS and OpenMP threads and kernels, Numba's
#: threads and CPU, the allocator, and our own settings. A report lists every one that is set.
SPEED_VARIABLES = ("OPENBLAS_", "OMP_", "GOMP_", "KMP_", "MKL_", "NUMBA_", "MALLOC_", "CONV1DBENCH_")

