"""How far a run's numbers can be trusted: unstable measurements, the machine's other load, the peak twice.

Like pyperf's checks, a measurement is flagged where its samples say it is not one steady number
(:func:`unstable`). Beside that, a run records what else the machine did while it ran
(:class:`OtherLoad`: CPU time used by processes other than the run's own) and measures its peak at
the start and again at the end (:func:`peak_drift`): a machine that slowed down in between shows there.
"""

from __future__ import annotations

import os
import time

import numpy as np

#: A measurement is unstable where its interquartile range exceeds this share of its median ...
MAX_SPREAD = 0.10
#: ... or its slowest sample is this many times its median, or its fastest this share of it ...
MAX_OVER_MEDIAN = 1.5
MIN_UNDER_MEDIAN = 0.67
#: ... or it has fewer samples than this, or its samples last less than this (the clock's and the
#: interpreter's overheads are then a share of each sample).
MIN_SAMPLES = 5
MIN_SAMPLE_S = 1e-4
#: Two measurements of the peak that differ by more than this share: the machine changed speed.
MAX_PEAK_DRIFT = 0.10


def unstable(row: dict) -> list[str]:
    """Why ``row``'s measurement is unstable (empty where it is steady, or kept no samples)."""
    samples = row.get("samples_s") or []
    median = row.get("median_s") or 0.0
    if row.get("status") != "ok" or not samples or median <= 0:
        return []
    found = []
    spread = (row["q75_s"] - row["q25_s"]) / median
    if spread > MAX_SPREAD:
        found.append(f"spread {spread:.0%}")
    if max(samples) > MAX_OVER_MEDIAN * median:
        found.append(f"slowest sample {max(samples) / median:.1f}x the median")
    if min(samples) < MIN_UNDER_MEDIAN * median:
        found.append(f"fastest sample {min(samples) / median:.2f}x the median")
    if len(samples) < MIN_SAMPLES:
        found.append(f"{len(samples)} samples")
    sample_s = median * row.get("calls", len(samples)) / len(samples)
    if sample_s < MIN_SAMPLE_S:
        found.append(f"samples of {sample_s * 1e6:.0f} us")
    return found


def peak_drift(before: dict, after: dict) -> dict:
    """``{what: after / before}`` for every rate measured both times, and ``drifted``: those beyond
    :data:`MAX_PEAK_DRIFT` (the FMA peak, the GEMM rate per dtype, the memory bandwidth)."""
    ratios = {}
    for key in ("fma_gflops", "gemm_gflops"):
        for dtype, value in (before.get(key) or {}).items():
            again = (after.get(key) or {}).get(dtype)
            if value and again:
                ratios[f"{key} {dtype}"] = round(again / value, 3)
    if before.get("bandwidth_gbs") and after.get("bandwidth_gbs"):
        ratios["bandwidth_gbs"] = round(after["bandwidth_gbs"] / before["bandwidth_gbs"], 3)
    return {"ratios": ratios, "drifted": sorted(k for k, r in ratios.items() if abs(r - 1) > MAX_PEAK_DRIFT)}


class OtherLoad:
    """CPU time the machine spent on processes other than this one and its children, from when it is
    made to :meth:`result`, and the time the hypervisor gave this machine's CPUs to others (steal);
    from Linux's ``/proc/stat`` (elsewhere nothing is measured)."""

    def __init__(self):
        cpu = _cpu_s()
        self._start = (time.perf_counter(), cpu, _own_s() if cpu is not None else 0.0)

    def result(self) -> dict:
        """``{"run_s", "others_cpu_s", "others_share", "steal_s", "steal_share"}``: shares of all cores over
        the run (0.05: 5% of the machine); empty where ``/proc/stat`` cannot be read."""
        wall0, cpu0, own0 = self._start
        cpu = _cpu_s()
        if cpu is None or cpu0 is None:
            return {}
        own = _own_s()
        wall = max(time.perf_counter() - wall0, 1e-9)
        others = max(0.0, (cpu[0] - cpu0[0]) - (own - own0))
        steal = cpu[1] - cpu0[1]
        capacity = wall * (os.cpu_count() or 1)
        return {"run_s": round(wall, 1), "others_cpu_s": round(others, 1), "others_share": round(others / capacity, 3),
                "steal_s": round(steal, 1), "steal_share": round(steal / capacity, 3)}


def _cpu_s() -> tuple[float, float] | None:
    """``(busy, steal)``: seconds all CPUs have run anything (user, nice, system, interrupts) since boot,
    and seconds the hypervisor ran something else on them."""
    try:
        with open("/proc/stat") as f:
            fields = [int(v) for v in f.readline().split()[1:]] + [0] * 8
    except (OSError, ValueError):
        return None
    tick = os.sysconf("SC_CLK_TCK")
    user, nice, system, _, _, irq, softirq, steal = fields[:8]
    return (user + nice + system + irq + softirq) / tick, steal / tick


def _own_s() -> float:
    """CPU seconds of this process and its waited-for children (the run's workers)."""
    import resource  # optional: Unix only, and called only where /proc/stat was read

    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def summary(rows: list[dict]) -> tuple[int, int, list[tuple[dict, list[str]]]]:
    """``(measured, flagged, [(row, reasons)])`` over the ok rows that kept samples."""
    measured = [r for r in rows if r.get("status") == "ok" and r.get("samples_s")]
    flagged = [(r, why) for r in measured if (why := unstable(r))]
    return len(measured), len(flagged), flagged


def median_spread(rows: list[dict]) -> float:
    """The median of the measurements' relative interquartile ranges (NaN where none kept samples)."""
    spreads = [(r["q75_s"] - r["q25_s"]) / r["median_s"] for r in rows
               if r.get("status") == "ok" and r.get("samples_s") and r.get("median_s")]
    return float(np.median(spreads)) if spreads else float("nan")
