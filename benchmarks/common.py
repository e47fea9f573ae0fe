"""What the stand-alone benchmark scripts (``bench_gpu.py``, ``calibrate_auto.py``) share: one process
per implementation, rounds, the report header.  The main harness is :mod:`conv1dbench.harness`."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
from pathlib import Path

from conv1dbench.harness.runner import WORKER_ENV  # the allocator settings every timing process gets


def run_workers(script: str, names: list[str], worker_args: list[str], rounds: int = 1) -> list[dict]:
    """Run ``script --worker NAME *worker_args`` for each name, one process at a time, ``rounds`` times.

    Each implementation gets a process of its own so that thread pools (Numba's, OpenBLAS's,
    pocketfft's, torch's) never compete; the order rotates each round.  A worker prints one JSON
    object per line; each comes back with its ``round``.
    """
    rows = []
    for r in range(rounds):
        order = names[r % len(names):] + names[:r % len(names)]
        for i, name in enumerate(order, 1):
            print(f"round {r + 1}/{rounds} [{i}/{len(order)}] timing {name} in its own process ...",
                  file=sys.stderr, flush=True)
            proc = subprocess.run([sys.executable, script, "--worker", name, *worker_args],
                                  capture_output=True, text=True, check=False, env={**os.environ, **WORKER_ENV})
            if proc.returncode != 0:
                raise SystemExit(f"worker {name} failed:\n{proc.stderr}")
            rows += [{**json.loads(line), "round": r + 1} for line in proc.stdout.splitlines() if line.strip()]
    return rows


def parser(description: str, *, quick_help: str, min_time_s: float, rounds: int) -> argparse.ArgumentParser:
    """The options every benchmark script takes, plus the hidden ``--worker`` protocol."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--min-time", type=float, default=min_time_s, help="seconds of timing per point")
    p.add_argument("--rounds", type=int, default=rounds, help="sweeps; a point keeps its best round")
    p.add_argument("--out", default=str(Path(__file__).resolve().parent.parent / "results"),
                   help="folder for the Markdown and CSV results")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    return p


def header(title: str, script: str, argv, **extra) -> list[str]:
    """The opening lines of every report: the command, the date, the machine and settings."""
    from conv1dbench.machine import machine_info

    command = "python " + " ".join([f"benchmarks/{script}"] + list(argv if argv is not None else sys.argv[1:]))
    info = {**machine_info(), "isolation": "each implementation timed in a separate process, one after the other",
            "worker_environment": " ".join(f"{k}={v}" for k, v in WORKER_ENV.items()), **extra}
    lines = [f"# {title}", "", f"Command: `{command}`  ",
             f"Date: {datetime.datetime.now().isoformat(timespec='seconds')}", "", "## Machine", ""]
    return lines + [f"- {key}: {value}" for key, value in info.items()]


def write(out: str, stem: str, text: str, frame) -> None:
    """Print the Markdown report and write it, with the tidy table as CSV, to ``out``."""
    print(text)
    folder = Path(out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{stem}.md").write_text(text)
    frame.to_csv(folder / f"{stem}.csv", index=False)
    print(f"wrote {folder / (stem + '.md')} and {folder / (stem + '.csv')}", file=sys.stderr)
