"""Out-of-core benchmark: a signal on disk, larger than memory can hold twice, convolved with Dask.

    python benchmarks/bench_dask.py               # a 12 GiB float32 signal (the machine has 23.5 GiB)
    python benchmarks/bench_dask.py --gib 0.25    # a quick try

The signal lives in a raw float32 file (made once, from a seeded generator, in ``--dir``).  Dask
reads it chunk by chunk with plain file reads (no memory map, so the process's resident memory is
what the computation really holds), ``conv1dbench.convolve(x, w, "same")`` (K = 63) runs on each
chunk plus its halo, and every output chunk is written straight into the output file.  Two
workloads: the long signal, and the same bytes as a batch of signals of 65 536 samples each.
Each runs with the threaded scheduler and 1 and 2 workers, each in a process of its own, which
reports its wall time and its peak resident memory (``getrusage``).  For comparison the first
``--memory-gib`` GiB are also convolved in memory with NumPy arrays.  A sample of output windows is
checked against the in-memory result.  Writes ``results/dask.md`` and ``results/dask.csv``.

The memory bound: at most ``workers x (input chunk + halo + output chunk + the backend's
temporaries)`` is held at once, about ``workers x 3 x chunk`` (64 MiB chunks: ~0.4 GiB per worker),
independent of the signal's length.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

TAPS = 63
ROW = 65_536
PIECE = 2**26  # samples written per step when making the file (256 MiB)


def make_signal(path: Path, samples: int) -> None:
    if path.exists() and path.stat().st_size == 4 * samples:
        return
    rng = np.random.default_rng(0)
    with open(path, "wb") as f:
        for start in range(0, samples, PIECE):
            rng.standard_normal(min(PIECE, samples - start), dtype=np.float32).tofile(f)


def _reader(path: str, shape: tuple, chunk_rows: int, chunk_len: int):
    """A Dask array over the raw file, each chunk one ``np.fromfile`` (no memory map)."""
    import dask
    import dask.array as da

    def read(offset, count):
        return np.fromfile(path, dtype=np.float32, count=count, offset=4 * offset)

    if len(shape) == 1:
        blocks = [da.from_delayed(dask.delayed(read)(s, min(chunk_len, shape[0] - s)),
                                  (min(chunk_len, shape[0] - s),), np.float32)
                  for s in range(0, shape[0], chunk_len)]
        return da.concatenate(blocks)
    rows, length = shape
    blocks = [da.from_delayed(dask.delayed(lambda s, n: read(s * length, n * length).reshape(n, length))(
        s, min(chunk_rows, rows - s)), (min(chunk_rows, rows - s), length), np.float32)
        for s in range(0, rows, chunk_rows)]
    return da.concatenate(blocks)


class _FileTarget:
    """``da.store`` target writing each block into a raw float32 file at its place."""

    def __init__(self, path: str, shape: tuple):
        self.fd = os.open(path, os.O_RDWR | os.O_CREAT)
        os.ftruncate(self.fd, 4 * int(np.prod(shape)))
        self.shape = shape

    def __setitem__(self, index, block):
        block = np.ascontiguousarray(block, dtype=np.float32)
        if len(self.shape) == 1:
            os.pwrite(self.fd, block.tobytes(), 4 * index[0].start)
        else:
            os.pwrite(self.fd, block.tobytes(), 4 * index[0].start * self.shape[1])


def worker(kind: str, workers: int, path: str, samples: int, chunk_mib: int, out: str) -> dict:
    import dask.array as da

    import conv1dbench as cb

    w = np.random.default_rng(1).standard_normal(TAPS).astype(np.float32)
    chunk = chunk_mib * 2**20 // 4
    start = time.perf_counter()
    if kind == "memory":
        x = np.fromfile(path, dtype=np.float32, count=samples)
        y = cb.convolve(x, w, "same")
        np.save(out, y[:2**20])  # a sample to check against
    else:
        shape = (samples,) if kind == "signal" else (samples // ROW, ROW)
        x = _reader(path, shape, max(1, chunk // ROW), chunk)
        y = cb.convolve(x, w, "same")
        target = _FileTarget(out, shape)
        da.store(y, target, lock=False, scheduler="threads", num_workers=workers)
        os.close(target.fd)
    seconds = time.perf_counter() - start
    peak_gib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 2**30
    return {"workload": kind, "workers": workers, "samples": samples, "GiB": 4 * samples / 2**30,
            "seconds": seconds, "Msamples_per_s": samples / seconds / 1e6, "peak_rss_gib": peak_gib,
            "chunk_mib": chunk_mib}


def check(path: Path, out_signal: Path, out_memory: Path, samples: int) -> float:
    """Largest difference between the out-of-core and in-memory results on sampled windows."""
    import conv1dbench as cb

    w = np.random.default_rng(1).standard_normal(TAPS).astype(np.float32)
    worst = 0.0
    memory = np.load(out_memory)
    got = np.fromfile(out_signal, dtype=np.float32, count=memory.size)
    worst = float(np.abs(got - memory).max())
    rng = np.random.default_rng(2)
    for start in rng.integers(TAPS, samples - 2 * 2**16, 8):
        x = np.fromfile(path, dtype=np.float32, count=2**16 + 2 * TAPS, offset=4 * int(start - TAPS))
        ref = cb.convolve(x, w, "same")[TAPS:-TAPS]
        y = np.fromfile(out_signal, dtype=np.float32, count=2**16, offset=4 * int(start))
        worst = max(worst, float(np.abs(y - ref).max()))
    return worst / float(np.abs(w).sum())


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--gib", type=float, default=12.0, help="size of the signal on disk (GiB of float32)")
    p.add_argument("--memory-gib", type=float, default=2.0, help="size of the in-memory comparison")
    p.add_argument("--chunk-mib", type=int, default=64, help="Dask chunk size")
    p.add_argument("--dir", default="/tmp/conv1dbench-dask", help="folder for the data and output files")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "results"))
    p.add_argument("--worker", nargs=5, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.worker:
        kind, workers, path, samples, out = args.worker
        print(json.dumps(worker(kind, int(workers), path, int(samples), args.chunk_mib, out)))
        return

    import pandas as pd

    folder = Path(args.dir)
    folder.mkdir(parents=True, exist_ok=True)
    samples = int(args.gib * 2**30 / 4) // ROW * ROW
    memory_samples = min(samples, int(args.memory_gib * 2**30 / 4) // ROW * ROW)
    data = folder / "signal.f32"
    print(f"making {data} ({4 * samples / 2**30:.2f} GiB) ...", file=sys.stderr, flush=True)
    make_signal(data, samples)
    rows = []
    runs = [("memory", 1, memory_samples, folder / "memory.npy")]
    runs += [(kind, w, samples, folder / f"out-{kind}-{w}.f32") for kind in ("signal", "batch") for w in (1, 2)]
    for i, (kind, workers, count, out) in enumerate(runs, 1):
        print(f"[{i}/{len(runs)}] {kind}, {workers} worker(s), {4 * count / 2**30:.2f} GiB ...", file=sys.stderr,
              flush=True)
        done = subprocess.run([sys.executable, __file__, "--chunk-mib", str(args.chunk_mib), "--worker", kind,
                               str(workers), str(data), str(count), str(out)], capture_output=True, text=True,
                              check=False)
        if done.returncode != 0:
            raise SystemExit(f"{kind} run failed:\n{done.stderr[-3000:]}")
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    error = check(data, folder / "out-signal-1.f32", folder / "memory.npy", samples)
    frame = pd.DataFrame(rows)

    sys.path.insert(0, str(Path(__file__).parent))
    import common

    lines = common.header("Out-of-core convolution with Dask (float32, K = 63, mode \"same\")", "bench_dask.py", argv,
                          total_memory_gib=round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
                          isolation="each run in a process of its own (so its peak memory is its own)",
                          worker_environment="inherited (no allocator settings)")
    lines += ["", "## Throughput and peak memory", "",
              f"Signal on disk: {4 * samples / 2**30:.2f} GiB; chunks of {args.chunk_mib} MiB; threaded scheduler. "
              f"`batch` = the same samples as {samples // ROW} signals of {ROW}. `memory` = the first "
              f"{4 * memory_samples / 2**30:.2f} GiB as one NumPy array.", "",
              "| workload | workers | GiB | seconds | Msamples/s | peak RSS (GiB) |", "|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['workload']} | {r['workers']} | {r['GiB']:.2f} | {r['seconds']:.1f} | "
                     f"{r['Msamples_per_s']:.0f} | {r['peak_rss_gib']:.2f} |")
    lines += ["", f"Largest difference from the in-memory result on checked windows, relative to sum|w|: {error:.1e}"]
    (Path(args.out)).mkdir(parents=True, exist_ok=True)
    (Path(args.out) / "dask.md").write_text("\n".join(lines) + "\n")
    frame.to_csv(Path(args.out) / "dask.csv", index=False)
    print("\n".join(lines))
    if error > 1e-5:
        raise SystemExit(f"out-of-core result differs from the in-memory one: {error:.1e}")


if __name__ == "__main__":
    main()
