"""The out-of-core case: a signal in a raw float32 file, convolved with Dask chunk by chunk into another.

The points come from :func:`conv1dbench.harness.grid.out_of_core_points`.  Setup (untimed) makes the
seeded signal file in the point's ``folder`` once (a file of the right size is reused).  The timed
call then, for ``store == "disk"``: builds a Dask array over the file whose every chunk is one
``np.fromfile`` (no memory map, so the process's resident memory is what the computation really
holds), runs ``conv1dbench.convolve(x, w, mode)`` on it (each chunk plus its halo on the backend
``auto`` picks for a chunk) and stores every output chunk straight into an output file, with the
threaded scheduler and ``workers`` threads; for ``store == "memory"``: reads the first samples into
one NumPy array and convolves it.  The call takes a minute at full size, so it is timed once, after
a tiny warm-up call that compiles what it runs (:attr:`conv1dbench.harness.case.Case.warmup`).

The check reads sampled windows of the output (rows, for the batch layout) and compares them with a
float64 ``scipy.signal.convolve`` of the same input windows: the signal error of
:func:`conv1dbench.harness.cases.make_case`.  The output file is deleted after the check.

The memory bound: at most ``workers x (input chunk + halo + output chunk + the backend's
temporaries)`` is held at once, about ``workers x 3 x chunk``, independent of the signal's length;
the interpreter and libraries come on top (``rss_before_gib`` in the row).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .. import _api as cb
from .._fastest import fastest
from .case import Case

#: Samples generated and written per step when making the file: small, so that making it in the
#: worker does not raise the peak memory the row reports.
PIECE = 2**22
#: Samples per checked window of the long signal; rows of the batch layout are checked whole.
WINDOW = 2**16
CHECKED = 8


def signal_file(point: dict) -> Path:
    """The seeded float32 signal of ``point["file_samples"]`` samples in ``point["folder"]``, made if absent."""
    folder = Path(point["folder"])
    folder.mkdir(parents=True, exist_ok=True)
    samples = int(point["file_samples"])
    path = folder / f"signal-{samples}.f32"
    if path.is_file() and path.stat().st_size == 4 * samples:
        return path
    partial = folder / f"signal-{samples}.f32.{os.getpid()}.partial"
    rng = np.random.default_rng(0)
    with open(partial, "wb") as f:
        for start in range(0, samples, PIECE):
            rng.standard_normal(min(PIECE, samples - start), dtype=np.float32).tofile(f)
    os.replace(partial, path)  # never a half-written file under the name that is reused
    return path


def kernel(taps: int) -> np.ndarray:
    return np.random.default_rng(1).standard_normal(taps).astype(np.float32)


def _shape(point: dict) -> tuple:
    return (point["N"],) if point["batch"] == 1 else (point["batch"], point["N"])


def _chunking(point: dict) -> tuple[int, int]:
    """``(rows per chunk, samples per chunk)`` of ``chunk_mib`` MiB of float32."""
    chunk = point["chunk_mib"] * 2**20 // 4
    return max(1, chunk // point["N"]), chunk


def reader(path: str, shape: tuple, chunk_rows: int, chunk_len: int):
    """A Dask array over the raw file, each chunk one ``np.fromfile`` (no memory map)."""
    import dask  # optional dependency (the dask extra)
    import dask.array as da  # optional dependency (the dask extra)

    def read(offset, count):
        return np.fromfile(path, dtype=np.float32, count=count, offset=4 * offset)

    def read_rows(first, rows, length):
        return read(first * length, rows * length).reshape(rows, length)

    if len(shape) == 1:
        blocks = [da.from_delayed(dask.delayed(read)(s, min(chunk_len, shape[0] - s)),
                                  (min(chunk_len, shape[0] - s),), np.float32)
                  for s in range(0, shape[0], chunk_len)]
    else:
        rows, length = shape
        blocks = [da.from_delayed(dask.delayed(read_rows)(s, min(chunk_rows, rows - s), length),
                                  (min(chunk_rows, rows - s), length), np.float32)
                  for s in range(0, rows, chunk_rows)]
    return da.concatenate(blocks)


class FileTarget:
    """``da.store`` target writing each block into a raw float32 file at its place."""

    def __init__(self, path: str, shape: tuple):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT)
        os.ftruncate(self.fd, 4 * int(np.prod(shape)))
        self.shape = shape

    def __setitem__(self, index, block):
        block = np.ascontiguousarray(block, dtype=np.float32)
        row = 1 if len(self.shape) == 1 else self.shape[1]
        os.pwrite(self.fd, block.tobytes(), 4 * index[0].start * row)

    def close(self) -> None:
        os.close(self.fd)


def make_case(impl: str, point: dict) -> Case:
    """The out-of-core case of ``impl`` (``"auto"`` or a backend, run on every chunk) on ``point``."""
    path, shape, w, mode = signal_file(point), _shape(point), kernel(point["K"]), point["mode"]
    samples = int(np.prod(shape))
    state = {}  # the in-memory result, from the timed call to the check
    out = Path(point["folder"]) / f"out-{os.getpid()}.f32"
    if point["store"] == "memory":
        def call():
            x = np.fromfile(path, dtype=np.float32, count=samples).reshape(shape)
            state["y"] = cb.convolve(x, w, mode, backend=impl)

        def output(start: int, count: int) -> np.ndarray:
            return state["y"].reshape(-1)[start:start + count]
        probe = (np.empty(shape, np.float32), mode)  # never touched: no memory is used for it
    else:
        chunk_rows, chunk_len = _chunking(point)

        def call():
            import dask.array as da  # optional dependency (the dask extra)

            y = cb.convolve(reader(str(path), shape, chunk_rows, chunk_len), w, mode, backend=impl)
            target = FileTarget(str(out), shape)
            try:
                da.store(y, target, lock=False, scheduler="threads", num_workers=point["workers"])
            finally:
                target.close()

        def output(start: int, count: int) -> np.ndarray:
            return np.fromfile(out, dtype=np.float32, count=count, offset=4 * start)
        # what one chunk's call is: the chunk plus the kernel's reach, "valid" (conv1dbench._dask)
        block = (chunk_len + w.size - 1,) if len(shape) == 1 else (min(chunk_rows, shape[0]), shape[1] + w.size - 1)
        probe = (np.empty(block, np.float32), "valid")
    chose = fastest("convolve", probe[0], w, probe[1]) if impl == "auto" else None

    def warmup():
        _warm_up(chose or impl, impl, point, shape, w)

    def error() -> float:
        try:
            return _check(path, shape, w, mode, output)
        finally:
            state.clear()
            out.unlink(missing_ok=True)

    return Case(call, error, chose, warmup=warmup)


def _warm_up(backend: str, impl: str, point: dict, shape: tuple, w: np.ndarray) -> None:
    """Tiny calls that compile what the timed one runs: the chunks' backend (large enough to run its
    parallel path), and for Dask the same graph on a small array with the same scheduler."""
    rng = np.random.default_rng(3)
    small = rng.standard_normal((4096,) if len(shape) == 1 else (4, 4096)).astype(np.float32)
    cb.convolve(small, w, "valid", backend=backend)
    cb.convolve(small, w, point["mode"], backend=backend)
    if point["store"] == "disk":
        import dask.array as da  # optional dependency (the dask extra)

        chunks = 1024 if len(shape) == 1 else (2, 4096)
        cb.convolve(da.from_array(small, chunks=chunks), w, point["mode"], backend=impl).compute(
            scheduler="threads", num_workers=point["workers"])


def _check(path: Path, shape: tuple, w: np.ndarray, mode: str, output) -> float:
    """Worst ``max|y - ref| / (max|x| sum|w|)`` over sampled windows (or rows), against float64 scipy."""
    import scipy.signal  # import time: only the check needs it

    rng = np.random.default_rng(2)
    w64 = w.astype(np.float64)
    halo = w.size  # "same" reads (K - 1) / 2 samples either side: a window this much wider is exact inside
    worst = 0.0
    if len(shape) == 2:
        rows, length = shape
        picks = sorted({0, rows - 1, *rng.integers(0, rows, CHECKED - 2).tolist()})
        windows = [(r * length, length, r * length, length) for r in picks]  # whole rows: no halo
    else:
        n = shape[0]
        count = min(WINDOW, n)
        starts = sorted({0, n - count, *rng.integers(0, n - count + 1, CHECKED - 2).tolist()})
        windows = []
        for s in starts:
            lo, hi = max(0, s - halo), min(n, s + count + halo)
            windows.append((lo, hi - lo, s, count))
    for lo, span, start, count in windows:
        x = np.fromfile(path, dtype=np.float32, count=span, offset=4 * lo).astype(np.float64)
        ref = scipy.signal.convolve(x, w64, mode, method="direct")[start - lo:start - lo + count]
        got = output(start, count).astype(np.float64)
        worst = max(worst, float(np.max(np.abs(got - ref)) / (np.max(np.abs(x)) * np.sum(np.abs(w64)))))
    return worst
