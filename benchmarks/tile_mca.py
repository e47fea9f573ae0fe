"""What ``llvm-mca`` predicts for the register tiles' hot loops on CPUs this machine may not be.

Each tile of :mod:`conv1dbench._backends._tiles` (the layer tile, the row tile, the weight gradient's
two tiles) is compiled, not run, for each target CPU in a process of its own (``NUMBA_CPU_NAME`` and
``NUMBA_CPU_FEATURES``), its hot loop cut out of Numba's assembly (``tests/tile_asm.py``) and handed
to ``llvm-mca -mcpu=<cpu>``, which simulates the loop on that CPU's scheduling model: cycles per
iteration, and the share of the FMA units' throughput that makes.  The model assumes every load hits
L1 and knows nothing of cache-line splits, so it says where a loop is bound by its instructions, not
by memory.  Needs LLVM's ``llvm-mca`` (Debian's ``llvm-19`` knows znver4; LLVM 14's does not)::

    python benchmarks/tile_mca.py --out results/tile_mca.md
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sys
import tempfile
import time
from pathlib import Path

from conv1dbench.harness.runner import fresh_python, tool_output

TESTS = Path(__file__).resolve().parent.parent / "tests"
_BASE = "+64bit,+cmov,+cx16,+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+f16c,+fma,+avx2,+bmi,+bmi2"
_AVX512 = _BASE + ",+avx512f,+avx512cd,+avx512bw,+avx512dq,+avx512vl"
#: (LLVM CPU name, features, float32 lanes, our ISA name, FMA lanes per cycle of the core: the FMA peak
#: in float32 multiply-adds per cycle, from the vendors' optimization manuals)
TARGETS = [("haswell", _BASE, 8, "AVX2", 16), ("znver3", _BASE, 8, "AVX2", 16),
           ("skylake-avx512", _AVX512, 16, "AVX-512", 32), ("sapphirerapids", _AVX512, 16, "AVX-512", 32),
           ("znver4", _AVX512, 16, "AVX-512", 16)]
KINDS = ("layer", "row", "weight", "outputs")
NAMES = {"layer": "layer tile (forward, input gradient)", "row": "row tile (depthwise, signals)",
         "weight": "weight gradient by pairs (narrow groups)", "outputs": "weight gradient as a product"}


def _loops(cpu: str, features: str, lanes: int, isa: str, folder: Path) -> dict:
    code = ("import json, tile_asm; print(json.dumps({kind: tile_asm.loop_lines(kind, %d, %r) for kind in %r}))"
            % (lanes, isa, KINDS))
    env = {"NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": features, "NUMBA_CACHE_DIR": str(folder / "numba"),
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS.parent)])}
    done = fresh_python(code, env, timeout=600)
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def _mca(mca: str, cpu: str, lines: list[str], folder: Path) -> dict:
    source = folder / "loop.s"
    source.write_text("\n".join(lines) + "\n")
    text = tool_output([mca, f"-mcpu={cpu}", "-iterations=200", "-bottleneck-analysis", str(source)])
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", text).group(1)) / 200
    pressure = dict(re.findall(r"- (\w+)\s+\[\s*([\d.]+)%", text))
    top = max(pressure, key=lambda k: float(pressure[k])) if pressure else "-"
    return {"cycles": cycles, "bottleneck": top}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="results/tile_mca.md")
    parser.add_argument("--mca", default=shutil.which("llvm-mca-19") or shutil.which("llvm-mca"))
    args = parser.parse_args(argv)
    if not args.mca:
        parser.error("llvm-mca not found: install LLVM's tools (Debian: apt install llvm-19) or give --mca")
    version = tool_output([args.mca, "--version"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for cpu, features, lanes, isa, peak in TARGETS:
            loops = _loops(cpu, features, lanes, isa, folder)
            for kind in KINDS:
                fmas = sum("vfmadd" in line for line in loops[kind])
                mca = _mca(args.mca, cpu, loops[kind], folder)
                share = fmas * lanes / mca["cycles"] / peak
                rows.append((kind, cpu, isa, fmas, mca["cycles"], share, mca["bottleneck"]))
                print(f"{kind:8s} {cpu:15s} {fmas:3d} FMAs {mca['cycles']:6.1f} cycles  {share:4.0%}  "
                      f"{mca['bottleneck']}", flush=True)
    llvm = re.search(r"LLVM version ([\d.]+)", version)
    lines = [
        "# The register tiles' hot loops under llvm-mca", "",
        f"`python benchmarks/tile_mca.py`, {time.strftime('%Y-%m-%d %H:%M')}; llvm-mca "
        f"{llvm.group(1) if llvm else '?'}. Each tile compiled (not run) by Numba for the CPU named, float32, "
        "the tile shape of its ISA; the loop simulated 200 times on that CPU's scheduling model. "
        "*Share of FMA peak*: the loop's multiply-adds per cycle against the core's float32 FMA "
        "throughput (Haswell, Zen 3: 2 x 8 lanes; Skylake-X, Sapphire Rapids: 2 x 16; Zen 4: 2 x 8 (its "
        "512-bit FMAs take both 256-bit pipes)). The model assumes every load hits L1 and ignores "
        "cache-line splits: a loop it puts near 100% is bound by its FMAs, and whatever it loses when run "
        "comes from memory. LLVM's Sapphire Rapids model issues one 512-bit FMA per cycle, where the "
        "Xeons with two FMA units issue two, so its share there is halved against a 2-unit peak.", "",
        "| tile | CPU | ISA | FMAs per iteration | cycles per iteration | share of FMA peak | busiest resource |",
        "|---|---|---|---:|---:|---:|---|"]
    lines += [f"| {NAMES[k]} | {cpu} | {isa} | {f} | {c:.1f} | {s:.0%} | {b} |" for k, cpu, isa, f, c, s, b in rows]
    Path(args.out).write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
