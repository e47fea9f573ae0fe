"""Layer benchmark: conv1d forward and backward on every backend, against torch on the CPU.

    python benchmarks/bench_layer.py            # five layer shapes, float32, padding "same"
    python benchmarks/bench_layer.py --quick    # one small shape (smoke test)

Each implementation runs in a process of its own (see ``common.run_workers``); torch is measured
when it is installed (``pip install torch``), forward with ``torch.nn.functional.conv1d`` and backward
with autograd computing the input and weight gradients.  Effective GFLOP/s count
``2*B*C_out*(C_in/groups)*K*L_out`` per pass (the backward pass is two: input and weight).
"""

from __future__ import annotations

import argparse
import importlib.util
import json

import numpy as np
import common
from common import run_workers

SHAPES = [(32, 64, 64, 1024, 3), (16, 128, 128, 2048, 9), (8, 256, 256, 512, 5), (64, 16, 32, 8192, 31),
          (4, 32, 32, 65536, 15)]  # (B, C_in, C_out, L, K)
QUICK_SHAPES = [(2, 8, 8, 256, 3)]
OURS = ["naive", "im2col", "fft", "numba", "auto"]
#: naive runs B*C_out*C_in*K slice operations per pass; skip it above this many
NAIVE_MAX_SLICES = 20_000


def flops(shape) -> float:
    batch, c_in, c_out, length, taps = shape
    return 2.0 * batch * c_out * c_in * taps * length  # padding "same", stride 1: L_out = L


def worker(name: str, shapes: list, min_time_s: float) -> None:
    from conv1dbench.timing import measure

    rng = np.random.default_rng(0)
    if name == "torch":
        import torch
        torch.manual_seed(0)
    for shape in shapes:
        batch, c_in, c_out, length, taps = shape
        x = rng.standard_normal((batch, c_in, length)).astype(np.float32)
        w = (rng.standard_normal((c_out, c_in, taps)) / np.sqrt(c_in * taps)).astype(np.float32)
        g = rng.standard_normal((batch, c_out, length)).astype(np.float32)
        for direction in ("forward", "backward"):
            row = {"impl": name, "B": batch, "C_in": c_in, "C_out": c_out, "L": length, "K": taps,
                   "pass": direction}
            if name == "naive" and batch * c_out * c_in * taps > NAIVE_MAX_SLICES:
                row["skipped"] = f"predicted too slow: {batch * c_out * c_in * taps} slice operations"
                print(json.dumps(row), flush=True)
                continue
            if name == "torch":
                tx, tw, tg = (torch.from_numpy(a) for a in (x, w, g))
                if direction == "forward":
                    fn = lambda: torch.nn.functional.conv1d(tx, tw, padding="same")  # noqa: E731
                else:
                    tx.requires_grad_(True)
                    tw.requires_grad_(True)
                    ty = torch.nn.functional.conv1d(tx, tw, padding="same")
                    fn = lambda: torch.autograd.grad(ty, (tx, tw), tg, retain_graph=True)  # noqa: E731
            else:
                import conv1dbench as cb
                if direction == "forward":
                    fn = lambda: cb.conv1d(x, w, padding="same", backend=name)  # noqa: E731
                else:
                    fn = lambda: cb.conv1d_backward(g, x, w, padding="same", bias=False, backend=name)  # noqa: E731
            t = measure(fn, min_time_s=min_time_s, min_samples=3)
            passes = 1 if direction == "forward" else 2
            row.update(median_s=t.median_s, q25_s=t.q25_s, q75_s=t.q75_s, first_call_s=t.first_call_s,
                       gflops=passes * flops(shape) / t.median_s / 1e9)
            if name == "auto":
                row["chose"] = (cb.fastest("conv1d", x, w, padding="same") if direction == "forward"
                                else cb.fastest("conv1d_backward", g, x, w, padding="same"))
            print(json.dumps(row), flush=True)
    if name == "torch":
        print(json.dumps({"impl": "torch", "torch_threads": torch.get_num_threads()}), flush=True)


def check_targets(best, torch_t) -> list[str]:
    out = []
    fwd = (torch_t.xs("forward", level="pass") / best.xs("forward", level="pass"))
    bwd = (torch_t.xs("backward", level="pass") / best.xs("backward", level="pass"))
    out.append(f"best forward >= 0.8x torch on every shape: worst x{fwd.min():.2f} -> "
               f"{'PASS' if fwd.min() >= 0.8 else 'FAIL'}")
    out.append(f"best forward >= 1x torch in median over shapes: median x{fwd.median():.2f} -> "
               f"{'PASS' if fwd.median() >= 1 else 'FAIL'}")
    out.append(f"best backward >= 1x torch on every shape: worst x{bwd.min():.2f} -> "
               f"{'PASS' if bwd.min() >= 1 else 'FAIL'}")
    return out


def main(argv=None) -> None:
    parser = common.parser(__doc__.split("\n\n")[0], quick_help="one small shape (smoke test)", min_time_s=0.3, rounds=2)
    parser.add_argument("--shapes", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args.worker, json.loads(args.shapes), args.min_time)

    import pandas as pd

    shapes = QUICK_SHAPES if args.quick else SHAPES
    names = OURS + (["torch"] if importlib.util.find_spec("torch") else [])
    rows = run_workers(__file__, names, ["--shapes", json.dumps(shapes), "--min-time", str(args.min_time)],
                       1 if args.quick else args.rounds)
    threads = next((r["torch_threads"] for r in rows if "torch_threads" in r), None)
    frame = pd.DataFrame([r for r in rows if "pass" in r])
    key = ["B", "C_in", "C_out", "L", "K", "pass"]
    best_round = frame.dropna(subset=["median_s"]).sort_values("median_s").groupby(key + ["impl"]).head(1)
    table = best_round.pivot_table(index=key, columns="impl", values="median_s", aggfunc="min")
    gflops = best_round.pivot_table(index=key, columns="impl", values="gflops", aggfunc="max")
    ours = [c for c in ["im2col", "fft", "numba", "naive"] if c in table]
    best = table[ours].min(axis=1)

    lines = common.header('Layer benchmark: conv1d forward and backward (float32, padding "same", stride 1)',
                          "bench_layer.py", argv, torch_threads=threads)
    cols = [c for c in OURS + ["torch"] if c in table]
    lines += ["", "## Median time per call (ms) and effective GFLOP/s", "",
              "Best round's median; `-` = skipped (predicted too slow). Backward computes grad_x and grad_w "
              "(two passes of FLOPs).", "",
              "| B, C_in, C_out, L, K | pass | " + " | ".join(cols) + " | best / torch |",
              "|---|---|" + "---:|" * (len(cols) + 1)]
    chose = best_round[best_round.impl == "auto"].set_index(key)["chose"] if "chose" in best_round else None
    for index, r in table.iterrows():
        cells = []
        for c in cols:
            t = r.get(c, np.nan)
            cells.append("-" if not np.isfinite(t) else f"{t * 1e3:.3g} ({gflops.loc[index, c]:.0f} GF/s)")
        ratio = f"x{r['torch'] / best[index]:.2f}" if "torch" in r and np.isfinite(r["torch"]) else "n/a"
        shape = ", ".join(str(v) for v in index[:5])
        lines.append(f"| {shape} | {index[5]} | " + " | ".join(cells) + f" | {ratio} |")
    if chose is not None:
        lines += ["", "auto chose: " + "; ".join(f"{', '.join(map(str, k[:5]))} {k[5]}: {v}"
                                                  for k, v in chose.items())]
    lines += ["", "## Targets (issue 3)", ""]
    if "torch" in table and not args.quick:
        lines += [f"- {c}" for c in check_targets(best, table["torch"])]
    else:
        lines.append("- not checked (torch not installed, or the quick grid)")
    common.write(args.out, "layer_quick" if args.quick else "layer", "\n".join(lines) + "\n", frame)


if __name__ == "__main__":
    main()
