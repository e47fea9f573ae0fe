"""Named grids of benchmark points: what the harness, the pytest-benchmark suites and tuning time.

A point is one problem: a signal-API call (``convolve`` with N, K, mode, dtype, batch) or a layer
pass (``conv1d`` forward or ``conv1d_backward``, with its geometry).  Points are plain dicts (they
travel to worker processes as JSON) whose keys are the parameter columns of the tidy table.

Grids
-----
``smoke``
    A few tiny points: CI, plain ``pytest`` (one untimed call each), ``--grid smoke`` to try things.
``default``
    What ``conv1dbench run`` and ``pytest --benchmark-only`` time: signals N in 10**3..10**6, K in
    {3, 15, 63, 255, 1023}, modes full/same/valid, float32 and float64, plus batches of signals
    and the short calls N = 100, K = 3 (full, same; see :func:`short_points`); the five layer
    shapes of the layer issue and a depthwise and a strided layer, forward and backward, float32;
    and batches of signals with long kernels (:data:`LONG_KERNEL_BATCHES`).
    Its time: :data:`MINUTES`.
``layers``
    The default grid's layer points (the five layer shapes, the depthwise and the strided layer,
    forward and backward) in float32 and float64: the layer benchmark of the register tiles
    (``conv1dbench run --grid layers --api layer``).
``fourier``
    The FFT regime of the default grid (:func:`in_fft_regime`: K = 1023 with N >= 10**4, K = 255 with
    N >= 10**6, the long-kernel batches) and its batch of 64 signals with K = 255: the benchmark of
    the FFT engines against oaconvolve (``conv1dbench run --grid fourier``).
``heldout``
    Shapes neither the ``tune`` grid (which the shipped models are fitted on) nor the default grid
    holds, to judge ``backend="auto"`` at first sight: long kernels (K in {700, 1500}, N in
    {3 * 10**4, 3 * 10**5, 2 * 10**6}) and short ones (K in {5, 40}, N in {2000, 5 * 10**4, 2 * 10**6}),
    "same", float32 and float64; and six layer shapes (:data:`HELDOUT_LAYERS`), forward and backward,
    float32, padding "same".
``large``
    The default grid plus N = 10**7, K = 4095 and batches of 256 signals: long runs.
``tune``
    What ``conv1dbench tune`` times to fit the cost models of ``backend="auto"``: other lengths,
    kernels and layer shapes than the default grid's (layers in float32 and float64), so that the
    default grid measures auto on shapes its models never saw (our backends only; its time:
    :data:`MINUTES`).  Its committed run, ``results/archive/amd-epyc-avx512-blas-haswell/tune``, is what the
    package's default models are fitted on.
``crossover``
    Where direct (Numba) stops beating FFT on signals: N in 10**4..10**6, K from 32 to 1024, four
    dtypes (complex too), mode "full"; the threshold of auto's rule for dtypes without a cost model
    (:data:`conv1dbench._select.DIRECT_MAX_TAPS`).  Meant for two backends
    (``--backends numba,fft --peers none``); the report adds a table of the crossover.
``gpu``, ``gpu-smoke``
    The GPU benchmark: the five layer shapes (float32, padding "same", forward and backward) and
    signals N in 10**6..10**8 x K in {3, 63, 1023} ("same", float32), for the device backends with
    NumPy arrays (transfers included), device-resident (``<backend>:device``), and the GPU peers
    (:func:`conv1dbench.harness.cases.implementations`).  ``gpu-smoke`` is a few tiny points that
    run on Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``), as CI does.
``dask``, ``dask-smoke``
    The out-of-core workload: a seeded float32 signal in a raw file (``folder``, made once and
    reused), read by Dask chunk by chunk, convolved (K = 63, "same") and written chunk by chunk
    into an output file, with 1 and 2 threaded-scheduler workers, as one long signal and as the
    same bytes in rows of 65 536; plus the first 2 GiB in memory as one NumPy array for comparison.
    ``dask`` is a 12 GiB signal by default (``gib``), ``dask-smoke`` 16 MiB.  Each point is timed
    once (after a tiny warm-up call), in a worker process of its own that keeps the allocator as
    it is, so the peak memory it reports is its own (:func:`out_of_core_points`).

Points of the last three carry a ``suite`` ("crossover", "gpu", "dask"; absent on the others),
which the report reads to give their rows a section of their own.  Points may also carry how they
are run, which travels to the worker with them: ``"timing": "once"`` (one timed call after the
case's warm-up, for calls that take a minute), ``"isolate": True`` (a worker process of its own),
``"env": "inherited"`` (the worker gets the environment as it is, never
:data:`conv1dbench.harness.runner.WORKER_ENV`, not even in the runner's memory check).
"""

from __future__ import annotations

import itertools
import os
import tempfile

from .._plan import Problem, padding_from_text, plan_layer, plan_signal

#: Parameter columns of the tidy table, in order (NaN where they do not apply).
PARAMS = ["api", "pass", "dtype", "mode", "N", "K", "batch", "B", "C_in", "C_out", "L", "stride", "groups",
          "suite", "store", "workers", "chunk_mib"]

LAYER_SHAPES = [(32, 64, 64, 1024, 3), (16, 128, 128, 2048, 9), (8, 256, 256, 512, 5),
                (64, 16, 32, 8192, 31), (4, 32, 32, 65536, 15)]  # (B, C_in, C_out, L, K)


def signal_point(n: int, k: int, mode: str = "full", dtype: str = "float64", batch: int = 1) -> dict:
    return {"api": "signal", "pass": "forward", "dtype": dtype, "mode": mode, "N": n, "K": k, "batch": batch}


def layer_point(b: int, c_in: int, c_out: int, length: int, k: int, *, stride: int = 1, groups: int = 1,
                direction: str = "forward", dtype: str = "float32") -> dict:
    padding = "same" if stride == 1 else str((k - 1) // 2)
    return {"api": "layer", "pass": direction, "dtype": dtype, "mode": padding, "N": length, "K": k,
            "batch": b, "B": b, "C_in": c_in, "C_out": c_out, "L": length, "stride": stride, "groups": groups}


def _signals(ns, ks, modes, dtypes, batches=(1,)) -> list[dict]:
    return [signal_point(n, k, mode, dtype, batch)
            for dtype, mode, batch, n, k in itertools.product(dtypes, modes, batches, ns, ks)]


def _layers(shapes, directions=("forward", "backward"), **kwargs) -> list[dict]:
    return [layer_point(*shape, direction=d, **kwargs) for shape in shapes for d in directions]


#: The out-of-core workload: kernel length, row length of the batch layout, chunk size, in-memory part.
DASK_TAPS = 63
DASK_ROW = 65_536
DASK_FOLDER = os.path.join(tempfile.gettempdir(), "conv1dbench-dask")
OUT_OF_CORE = {"dask": {"gib": 12.0, "chunk_mib": 64, "memory_gib": 2.0},
               "dask-smoke": {"gib": 1 / 64, "chunk_mib": 1, "memory_gib": 1 / 64}}


def out_of_core_points(gib: float, chunk_mib: int, memory_gib: float, folder: str) -> list[dict]:
    """The out-of-core points over one seeded signal file of ``gib`` GiB of float32 in ``folder``.

    ``store="disk"``: Dask reads the file chunk by chunk (``chunk_mib`` MiB), convolves and writes
    each output chunk into an output file, with ``workers`` threads of the threaded scheduler; as
    one long signal, and as the same samples in rows of :data:`DASK_ROW`.  ``store="memory"``: the
    first ``memory_gib`` GiB read into one NumPy array and convolved, for comparison.
    """
    samples = int(gib * 2**30 / 4) // DASK_ROW * DASK_ROW
    if samples == 0:
        raise ValueError(f"the out-of-core signal must hold at least one row of {DASK_ROW} float32 samples "
                         f"({4 * DASK_ROW / 2**20:.2f} MiB); got {gib} GiB")
    in_memory = min(samples, int(memory_gib * 2**30 / 4) // DASK_ROW * DASK_ROW)
    how = {"suite": "dask", "folder": str(folder), "file_samples": samples, "timing": "once", "isolate": True,
           "env": "inherited"}
    points = [{**signal_point(in_memory, DASK_TAPS, "same", "float32"), **how, "store": "memory"}]
    for n, batch in ((samples, 1), (DASK_ROW, samples // DASK_ROW)):
        points += [{**signal_point(n, DASK_TAPS, "same", "float32", batch), **how, "store": "disk",
                    "workers": workers, "chunk_mib": chunk_mib} for workers in (1, 2)]
    return points


#: The short calls of issue 13: one 1-D float signal of N samples, K = 3, and the most that
#: ``conv1dbench.convolve(x, w)`` may take over ``numpy.convolve(x, w)`` there, timed in turn in one
#: process (the runner's short-call check).  Where a call costs a microsecond, Python's own work
#: (the checks, the dispatch) is most of it; the target is looser at N = 100, where numpy's whole
#: call is about as long as the dispatch into compiled code.
SHORT_TARGETS = {100: 2.0, 1000: 1.3}
SHORT_TAPS = 3
SHORT_MODES = ("full", "same")


def short_points(points: list[dict]) -> list[dict]:
    """The points of ``points`` that are short calls (:data:`SHORT_TARGETS`): a single float signal of a
    target's length, ``K = SHORT_TAPS``, a mode of :data:`SHORT_MODES`, on the CPU grids."""
    return [p for p in points if p["api"] == "signal" and p.get("batch") == 1 and p.get("K") == SHORT_TAPS
            and p.get("N") in SHORT_TARGETS and p.get("mode") in SHORT_MODES
            and p.get("dtype") in ("float32", "float64") and not p.get("suite")]


#: Batches of signals with long kernels, ``(batch, N, K)``, "same", float32 and float64: where a batch of
#: transforms shares one kernel spectrum (the FFT regime's batched half).
LONG_KERNEL_BATCHES = ((8, 10**5, 4001), (16, 30_000, 2047), (64, 10**4, 511))


#: Layer shapes ``(B, C_in, C_out, L, K)`` in no other grid: those a new user tried on another machine.
HELDOUT_LAYERS = [(16, 48, 96, 3000, 7), (24, 96, 96, 1500, 5), (8, 64, 32, 6000, 15), (2, 8, 8, 100_000, 63),
                  (32, 128, 128, 1024, 3), (4, 192, 192, 2000, 9)]


def in_fft_regime(point: dict) -> bool:
    """Whether a signal point is in the FFT regime the FFT engines' targets are judged on: K >= 511 with
    N >= 10**4 (the default grid's K = 1023 and its long-kernel batches), and K >= 255 with N >= 10**6."""
    if point["api"] != "signal" or point.get("suite") or point.get("store"):
        return False
    n, k = int(point["N"]), int(point["K"])
    return (k >= 511 and n >= 10**4) or (k >= 255 and n >= 10**6)


def _suite(name: str, points: list[dict]) -> list[dict]:
    return [{**p, "suite": name} for p in points]


def _gpu(smoke: bool) -> list[dict]:
    if smoke:  # the simulator runs every GPU thread in Python: a few thousand multiply-adds each
        return _suite("gpu", _layers([(2, 4, 4, 64, 3)]) + _signals([2000], [3], ["same"], ["float32"])
                      + _signals([1000], [63], ["same"], ["float32"]))
    return _suite("gpu", _layers(LAYER_SHAPES) + _signals([10**6, 10**7, 10**8], [3, 63, 1023], ["same"], ["float32"]))


def _grid(name: str) -> list[dict]:
    if name in ("gpu", "gpu-smoke"):
        return _gpu(name == "gpu-smoke")
    if name == "crossover":
        return _suite("crossover", _signals([10**4, 10**5, 10**6], [32, 64, 96, 128, 192, 256, 384, 512, 768, 1024],
                                            ["full"], ["float32", "float64", "complex64", "complex128"]))
    if name == "smoke":
        return (_signals([1000], [3, 63], ["full"], ["float64"]) + _signals([500], [5], ["same"], ["float32"], [4])
                + _layers([(2, 8, 8, 128, 3)]) + _layers([(2, 8, 8, 128, 3)], groups=8))
    if name == "layers":
        return [{**p, "dtype": dtype} for dtype in ("float32", "float64") for p in _grid("default")
                if p["api"] == "layer"]
    ns, ks = [10**3, 10**4, 10**5, 10**6], [3, 15, 63, 255, 1023]
    points = (_signals(ns, ks, ["full", "same", "valid"], ["float32", "float64"])
              + _signals([100], [SHORT_TAPS], SHORT_MODES, ["float32", "float64"])  # short calls (short_points)
              + _signals([10**4], [15, 255], ["same"], ["float32", "float64"], [64])
              + [signal_point(n, k, "same", dtype, batch) for dtype in ("float32", "float64")
                 for batch, n, k in LONG_KERNEL_BATCHES]
              + _layers(LAYER_SHAPES)
              + _layers([(8, 256, 256, 2048, 9)], groups=256)      # depthwise
              + _layers([(16, 64, 128, 4096, 8)], stride=4))       # strided (a downsampling layer)
    if name == "fourier":
        return [p for p in points if in_fft_regime(p) or (p["api"] == "signal" and p["batch"] == 64 and p["K"] == 255)]
    if name == "tune":
        return (_signals([2000, 30_000, 400_000, 3_000_000], [2, 7, 31, 127, 511, 2047], ["full", "same", "valid"],
                         ["float32", "float64"])
                + _signals([20_000], [7, 127], ["full"], ["float32", "float64"], [16])
                + _signals([8000], [31, 400], ["same"], ["float32", "float64"], [32])
                + _layers([(16, 32, 32, 2048, 5), (8, 64, 128, 1024, 7), (4, 128, 64, 4096, 3), (32, 8, 16, 4096, 21),
                           (2, 16, 16, 32768, 11), (4, 192, 192, 1024, 3)])
                + _layers([(16, 32, 32, 16384, 19), (48, 24, 48, 4096, 11), (8, 96, 96, 4096, 7)])  # beyond the caches
                + _layers([(8, 128, 128, 1024, 9)], groups=128) + _layers([(8, 32, 64, 4096, 6)], stride=2)
                + _layers([(16, 32, 32, 2048, 5), (8, 64, 128, 1024, 7), (4, 128, 64, 4096, 3), (32, 8, 16, 4096, 21)],
                          dtype="float64")
                + _layers([(8, 128, 128, 1024, 9)], groups=128, dtype="float64")
                + _layers([(8, 32, 64, 4096, 6)], stride=2, dtype="float64"))
    if name == "heldout":
        return (_signals([30_000, 300_000, 2_000_000], [700, 1500], ["same"], ["float32", "float64"])
                + _signals([2000, 50_000, 2_000_000], [5, 40], ["same"], ["float32", "float64"])
                + _layers(HELDOUT_LAYERS))
    if name == "large":
        points += (_signals([10**7], ks + [4095], ["full"], ["float32", "float64"])
                   + _signals([10**5], [15, 255], ["same"], ["float32"], [256]))
    return points


GRIDS = ("smoke", "default", "large", "tune", "layers", "fourier", "heldout", "crossover", "gpu-smoke", "gpu",
         "dask-smoke", "dask")
#: Minutes one round of a grid takes on the project's 2-core benchmark machine, every available
#: backend and installed peer (``tune``: our backends only).  ``default`` is the README's main command
#: as a fresh clone runs it (the extras it names, no torch; Numba's cache cold): 26.7 minutes, 35 s of
#: them the install, on the AMD EPYC with AVX-512, 2026-12-05.  The committed run
#: (``results/amd-epyc-avx512/default``, torch installed too, the cache warm) records 32.0 in its
#: ``duration_s``; ``results/archive/amd-epyc-avx512-blas-haswell/tune``: 12.1 minutes for two rounds.  Machines
#: of that name differ: the AVX2 ones take up to half as long again.  The README cites these;
#: ``conv1dbench run --help`` predicts each grid for the machine it runs on, and the progress bar gives the
#: time left of a run as it goes.
MINUTES = {"default": 27, "tune": 6}
#: One line per grid, for ``conv1dbench run --help`` (the module's notes say more).
DESCRIPTIONS = {
    "smoke": "a few tiny points: to try things",
    "default": "signals N 1e3..1e6 x K 3..1023 x three modes x float32/64, batches, short calls; seven layer "
               "shapes forward and backward",
    "large": "the default grid plus N = 1e7, K = 4095 and batches of 256 signals",
    "tune": "what auto's cost models are fitted on: other shapes than the default grid's (our backends only)",
    "layers": "the default grid's layer points in float32 and float64",
    "fourier": "the FFT regime (long kernels) of the default grid: our FFT engines against oaconvolve",
    "heldout": "shapes no grid above holds: auto judged at first sight",
    "crossover": "where direct stops beating FFT, four dtypes (meant for --backends numba,fft --peers none)",
    "gpu-smoke": "tiny GPU points, on Numba's CUDA simulator where there is no GPU",
    "gpu": "the GPU benchmark: layers and long signals, with and without transfers",
    "dask-smoke": "out of core: a 16 MiB signal through Dask, chunk by chunk",
    "dask": "out of core: a 12 GiB signal on disk through Dask (--gib, --dir)",
}


def grid(name: str, *, gib: float | None = None, folder: str | None = None) -> list[dict]:
    """The points of grid ``name`` (one of :data:`GRIDS`).

    ``gib`` (the signal's size on disk) and ``folder`` (where its file and the outputs go, default
    :data:`DASK_FOLDER`) apply to the out-of-core grids only.
    """
    if name not in GRIDS:
        raise ValueError(f"unknown grid {name!r}; known grids are {', '.join(map(repr, GRIDS))}")
    if name in OUT_OF_CORE:
        sizes = dict(OUT_OF_CORE[name])
        if gib is not None:
            sizes.update(gib=gib, memory_gib=min(gib, sizes["memory_gib"]))
        return out_of_core_points(folder=folder or DASK_FOLDER, **sizes)
    if gib is not None or folder is not None:
        raise ValueError(f"gib and folder apply to the out-of-core grids ({', '.join(OUT_OF_CORE)}), not {name!r}")
    return _grid(name)


def label(point: dict) -> str:
    """A short, exact human label: ``N=1e+05 K=63`` or ``32x64x64 L=1024 K=3`` (plus batch, stride, groups)."""
    if point["api"] == "signal":
        text = f"N={_length(point['N'])} K={point['K']}" + (f" x{point['batch']}" if point["batch"] > 1 else "")
        if point.get("store"):  # out of core: where the data is, and how many threads work on it
            text += f" {point['store']}" + (f" workers={point['workers']}" if point.get("workers") else "")
        return text
    text = f"{point['B']}x{point['C_in']}x{point['C_out']} L={point['L']} K={point['K']}"
    if point["stride"] > 1:
        text += f" s={point['stride']}"
    if point["groups"] > 1:
        text += f" g={point['groups']}"
    return text


def _length(n: int) -> str:
    """``n`` in a label: ``1e+05`` where that is exactly ``n`` (a power of ten, or 3e+05), else its digits
    (65536, not 7e+04)."""
    short = f"{n:.0e}"
    return short if float(short) == n else str(n)


def flops(point: dict) -> float:
    """Floating-point operations of one call, by the one convention (:attr:`conv1dbench._plan.Problem.flops`):
    two per multiply-add of the direct method, for each product of the pass."""
    return problem(point).flops


def layer_output_length(point: dict) -> int:
    return problem(point).l_out


def problem(point: dict) -> Problem:
    """The core problem a point's call runs, planned as the call itself plans it (:mod:`conv1dbench._plan`).

    A tidy row of the point (it holds the point's parameters) gives the same problem.
    """
    if point["api"] == "signal":
        shape = (int(point["N"]),) if int(point["batch"]) == 1 else (int(point["batch"]), int(point["N"]))
        return plan_signal("convolve", shape, (int(point["K"]),), point["dtype"], point["dtype"], point["mode"]).problem
    b, c_in, groups = int(point["B"]), int(point["C_in"]), int(point["groups"])
    return plan_layer((b, c_in, int(point["L"])), (int(point["C_out"]), c_in // groups, int(point["K"])),
                      point["dtype"], int(point["stride"]), padding_from_text(point["mode"]), 1, groups,
                      point["pass"]).problem
