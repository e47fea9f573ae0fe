"""GPU benchmark: the cuda backend against cuDNN (torch) and CuPy, device-resident and with transfers.

    python benchmarks/bench_gpu.py            # the five layer shapes and signals of 1e6..1e8 samples
    python benchmarks/bench_gpu.py --quick    # tiny sizes: a smoke test (runs on the CUDA simulator)

Needs a CUDA GPU and ``pip install -e '.[cuda]'``; torch (with CUDA) and CuPy are measured when they
are installed.  Every timing synchronises the device before reading the clock on both sides
(``conv1dbench.timing.measure(sync=...)``), and the first call (kernel compilation) is reported
apart, never in the median.  Two ways of calling ours are timed:

* ``cuda``: device arrays in and out, the data already on the GPU (what a GPU pipeline sees);
* ``cuda+copy``: NumPy arrays in and out, so the host-device transfers are in the time.

Layers run float32, padding "same", stride 1, forward and backward, against
``torch.nn.functional.conv1d`` on the GPU with TF32 off (``allow_tf32=False``: full float32 products,
as ours).  Signals run float32 single-channel ``convolve(x, w, "same")`` against
``cupyx.scipy.signal.convolve`` (its "auto" method).  Each implementation runs in a process of its
own; results go to ``results/gpu.md`` and ``results/gpu.csv`` with the GPU's name.
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import common
import numpy as np
from common import run_workers

from conv1dbench.harness.grid import LAYER_SHAPES as SHAPES


def flops(shape) -> float:
    """Multiply-adds times two of one forward pass, padding "same", stride 1."""
    batch, c_in, c_out, length, taps = shape
    return 2.0 * batch * c_out * c_in * taps * length

SIGNALS = [(n, k) for n in (10**6, 10**7, 10**8) for k in (3, 63, 1023)]
QUICK_SHAPES = [(2, 4, 4, 64, 3)]
QUICK_SIGNALS = [(2000, 3), (2000, 63)]
OURS = ["cuda", "cuda+copy"]


def _ours(name, op, host_args, **kwargs):
    """A call of ours: on device arrays (made once, outside the timing) or on the host arrays."""
    import conv1dbench as cb
    from numba import cuda

    args = host_args if name == "cuda+copy" else [cuda.to_device(a) for a in host_args]
    if op == "conv1d_backward":
        kwargs["bias"] = False
    return lambda: getattr(cb, op)(*args, backend="cuda", **kwargs), cuda.synchronize


def _torch(op, host_args):
    import torch

    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cuda.matmul.allow_tf32 = False
    x, w, *rest = (torch.from_numpy(a).cuda() for a in host_args)
    if op == "conv1d":
        return lambda: torch.nn.functional.conv1d(x, w, padding="same"), torch.cuda.synchronize
    x.requires_grad_(True)
    w.requires_grad_(True)
    y = torch.nn.functional.conv1d(x, w, padding="same")
    return lambda: torch.autograd.grad(y, (x, w), rest[0], retain_graph=True), torch.cuda.synchronize


def _cupy(host_args):
    import cupy
    import cupyx.scipy.signal

    x, w = (cupy.asarray(a) for a in host_args)
    return lambda: cupyx.scipy.signal.convolve(x, w, "same"), cupy.cuda.Device().synchronize


def worker(name: str, shapes: list, signals: list, min_time_s: float) -> None:
    from conv1dbench.timing import measure

    rng = np.random.default_rng(0)
    for shape in shapes if name != "cupy" else []:
        batch, c_in, c_out, length, taps = shape
        x = rng.standard_normal((batch, c_in, length)).astype(np.float32)
        w = (rng.standard_normal((c_out, c_in, taps)) / np.sqrt(c_in * taps)).astype(np.float32)
        g = rng.standard_normal((batch, c_out, length)).astype(np.float32)
        for op, args in (("conv1d", [x, w]), ("conv1d_backward", [g, x, w])):
            if name == "torch":
                fn, sync = _torch(op, [x, w, g] if op == "conv1d_backward" else args)
            else:
                fn, sync = _ours(name, op, args, padding="same")
            t = measure(fn, min_time_s=min_time_s, min_samples=5, sync=sync)
            passes = 1 if op == "conv1d" else 2
            print(json.dumps({"impl": name, "kind": "layer", "pass": "forward" if op == "conv1d" else "backward",
                              "shape": ", ".join(map(str, shape)), "median_s": t.median_s, "q25_s": t.q25_s,
                              "q75_s": t.q75_s, "first_call_s": t.first_call_s,
                              "gflops": passes * flops(shape) / t.median_s / 1e9}), flush=True)
    for n, taps in signals if name != "torch" else []:
        x = rng.standard_normal(n).astype(np.float32)
        w = rng.standard_normal(taps).astype(np.float32)
        fn, sync = _cupy([x, w]) if name == "cupy" else _ours(name, "convolve", [x, w], mode="same")
        t = measure(fn, min_time_s=min_time_s, min_samples=5, sync=sync)
        print(json.dumps({"impl": name, "kind": "signal", "pass": "forward", "shape": f"N={n:.0e}, K={taps}",
                          "median_s": t.median_s, "q25_s": t.q25_s, "q75_s": t.q75_s,
                          "first_call_s": t.first_call_s, "gflops": 2.0 * n * taps / t.median_s / 1e9}),
              flush=True)


def _peer_has_gpu(name: str) -> bool:
    """Whether a peer is installed with CUDA support and sees a GPU (a CPU-only torch does not count)."""
    if importlib.util.find_spec(name) is None:
        return False
    try:
        if name == "torch":
            import torch
            return torch.cuda.is_available()
        import cupy
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # noqa: BLE001 - a broken peer is left out, as an absent one
        return False


def targets(table) -> list[str]:
    lines = []
    if "torch" in table:
        layer = table.xs("layer", level="kind")
        ratio = (layer["torch"] / layer["cuda"]).min()
        lines.append(f"cuda >= 0.5x cuDNN on every layer shape and pass: worst x{ratio:.2f} -> "
                     f"{'PASS' if ratio >= 0.5 else 'FAIL'}")
    if "cupy" in table:
        signal = table.xs("signal", level="kind")
        ratio = (signal["cupy"] / signal["cuda"]).min()
        lines.append(f"cuda >= 1x CuPy on every long signal: worst x{ratio:.2f} -> {'PASS' if ratio >= 1 else 'FAIL'}")
    return lines or ["not checked: neither torch nor CuPy is installed"]


def main(argv=None) -> None:
    parser = common.parser(__doc__.split("\n\n")[0], quick_help="tiny sizes (smoke test)", min_time_s=0.3, rounds=1)
    parser.add_argument("--shapes", help=argparse.SUPPRESS)
    parser.add_argument("--signals", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, json.loads(args.shapes), json.loads(args.signals), args.min_time)

    import conv1dbench as cb
    import pandas as pd

    if not cb.backends()["cuda"]["available"]:
        raise SystemExit(f"the cuda backend is unavailable: {cb.backends()['cuda']['reason']}")
    from numba import cuda

    shapes, signals = (QUICK_SHAPES, QUICK_SIGNALS) if args.quick else (SHAPES, SIGNALS)
    peers = [name for name in ("torch", "cupy") if _peer_has_gpu(name)]
    rows = run_workers(__file__, OURS + peers, ["--shapes", json.dumps(shapes), "--signals", json.dumps(signals),
                                                "--min-time", str(args.min_time)], args.rounds)
    frame = pd.DataFrame(rows)
    key = ["kind", "shape", "pass"]
    table = frame.pivot_table(index=key, columns="impl", values="median_s", aggfunc="min")
    gflops = frame.pivot_table(index=key, columns="impl", values="gflops", aggfunc="max")
    compile_s = frame.groupby("impl")["first_call_s"].max()

    gpu = getattr(cuda.get_current_device(), "name", "the CUDA simulator (no GPU)")
    lines = common.header("GPU benchmark: cuda backend vs cuDNN and CuPy (float32)", "bench_gpu.py", argv,
                          gpu=gpu.decode() if isinstance(gpu, bytes) else gpu, peers=", ".join(peers) or "none")
    cols = [c for c in OURS + ["torch", "cupy"] if c in table]
    lines += ["", "## Median time per call (ms) and effective GFLOP/s", "",
              "`cuda`: device arrays in and out; `cuda+copy`: NumPy in and out (transfers included). "
              "Layer shapes are (B, C_in, C_out, L, K), padding \"same\".", "",
              "| kind | shape | pass | " + " | ".join(cols) + " | peer / cuda |", "|---|---|---|" + "---:|" * (len(cols) + 1)]
    for index, r in table.iterrows():
        cells = [f"{r[c] * 1e3:.3g} ({gflops.loc[index, c]:.0f} GF/s)" if np.isfinite(r.get(c, np.nan)) else "-"
                 for c in cols]
        peer = r.get("torch" if index[0] == "layer" else "cupy", np.nan)
        ratio = f"x{peer / r['cuda']:.2f}" if np.isfinite(peer) else "n/a"
        lines.append(f"| {index[0]} | {index[1]} | {index[2]} | " + " | ".join(cells) + f" | {ratio} |")
    lines += ["", "First call (compilation included), slowest per implementation: "
              + ", ".join(f"{k} {v:.2f} s" for k, v in compile_s.items()), "", "## Targets (issue 4)", ""]
    lines += [f"- {t}" for t in (targets(table) if not args.quick else ["not checked on the quick grid"])]
    common.write(args.out, "gpu", "\n".join(lines) + "\n", frame)


if __name__ == "__main__":
    main()
