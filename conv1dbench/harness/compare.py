"""Two runs, point by point: a change is called only where it is both large and not noise.

Every measurement of ``conv1dbench run`` keeps its raw samples (``samples_s``: seconds per call of each
sample). For a point timed in both runs, :func:`compare` gives the ratio of the medians (new / old),
a two-sided Mann-Whitney U test of the two sets of samples (are the new ones drawn from slower or
faster times?), and a bootstrap 95% interval of the ratio of medians. It calls the point

- ``slower`` where the ratio is at least ``1 + min_effect``, the test's p-value is below ``alpha``, and
  the whole interval lies above 1; ``faster`` the same way below;
- ``same`` otherwise: a difference too small to matter, or one the samples do not establish;
- ``untested`` where either run kept no samples (pytest-benchmark JSON, runs from before samples were
  kept): its ratio is shown, but it is never called a change.

Samples of one run are taken in a row, in one process, so they share that stretch of the machine's
speed, and run-to-run differences are larger than the test assumes: this is why ``min_effect`` is
there, and why an A/A run (the same code twice, ``results/<machine>/aa/``) measures how often the test
calls a change where there is none.
"""

from __future__ import annotations

import numpy as np

from .grid import PARAMS

#: A change smaller than this (relative) is never called one, however significant. From the A/A run on the
#: AMD EPYC (``results/amd-epyc-avx512/aa/``, the same code twice, 386 points): at 5% the test called 17% of
#: the points changed, at 10% 10%, at 25% 3.9%, and those last were implementations whose time jumps
#: between two modes from one process to the next (im2col's and torch's signals, the FFTW peers). A
#: machine with steadier runs can take a smaller one (``--min-effect``); its own A/A run says which.
MIN_EFFECT = 0.25
#: The p-value below which a difference counts as established.
ALPHA = 0.01
#: Bootstrap resamples for the ratio's interval (a fixed seed: the same runs give the same interval).
RESAMPLES = 2000

#: What a point is shown by (its ``shape`` label is for reading: it may round, e.g. a long N).
KEY = ("impl", "api", "pass", "dtype", "mode", "shape")
#: What two runs are joined on: the implementation and the point's parameters, never the rounded label.
JOIN = ("impl",) + tuple(PARAMS)


def compare(old_rows: list[dict], new_rows: list[dict], *, min_effect: float = MIN_EFFECT,
            alpha: float = ALPHA) -> list[dict]:
    """One dict per point measured (``status`` ok) in both runs: the key fields, ``old_s``, ``new_s``,
    ``ratio``, ``p``, ``low``, ``high`` (NaN where untested) and ``verdict``, slowest ratio first."""
    old, new = _by_key(old_rows), _by_key(new_rows)
    found = []
    for key in sorted(old.keys() & new.keys(), key=str):
        a, b = old[key], new[key]
        entry = dict({k: _cell(b.get(k)) for k in KEY}, old_s=a["median_s"], new_s=b["median_s"],
                     ratio=b["median_s"] / a["median_s"], p=np.nan, low=np.nan, high=np.nan, verdict="untested")
        if a.get("samples_s") and b.get("samples_s"):
            entry.update(significance(a["samples_s"], b["samples_s"]))
            entry["verdict"] = verdict(entry, min_effect, alpha)
        found.append(entry)
    return sorted(found, key=lambda e: -e["ratio"])


def significance(old: list[float], new: list[float]) -> dict:
    """``p`` (Mann-Whitney U, two-sided), ``low``/``high`` (bootstrap 95% of median(new)/median(old))."""
    from scipy.stats import mannwhitneyu  # import time: scipy.stats takes a third of a second, only compare needs it

    a, b = np.asarray(old, float), np.asarray(new, float)
    p = float(mannwhitneyu(b, a, alternative="two-sided").pvalue)
    rng = np.random.default_rng(0)
    ratios = (np.median(rng.choice(b, (RESAMPLES, b.size)), axis=1)
              / np.median(rng.choice(a, (RESAMPLES, a.size)), axis=1))
    low, high = np.percentile(ratios, [2.5, 97.5])
    return {"p": p, "low": float(low), "high": float(high)}


def verdict(entry: dict, min_effect: float, alpha: float) -> str:
    """``slower``, ``faster`` or ``same`` for an entry with its statistics (see the module's rule)."""
    if entry["p"] < alpha:
        if entry["ratio"] >= 1 + min_effect and entry["low"] > 1:
            return "slower"
        if entry["ratio"] <= 1 / (1 + min_effect) and entry["high"] < 1:
            return "faster"
    return "same"


def markdown(entries: list[dict], min_effect: float = MIN_EFFECT, alpha: float = ALPHA) -> str:
    """The comparison as Markdown: a row per point, a count of each verdict, and a row per implementation."""
    lines = ["| implementation | point | old (ms) | new (ms) | new / old | 95% interval | p | verdict |",
             "|---|---|---:|---:|---:|---|---:|---|"]
    for e in entries:
        interval = "" if np.isnan(e["low"]) else f"{e['low']:.3f}-{e['high']:.3f}"
        p = "" if np.isnan(e["p"]) else f"{e['p']:.2g}"
        point = " ".join(str(e[k]) for k in KEY[1:])
        lines.append(f"| {e['impl']} | {point} | {e['old_s'] * 1e3:.3g} | {e['new_s'] * 1e3:.3g} | {e['ratio']:.3f} | "
                     f"{interval} | {p} | {e['verdict']} |")
    counts = {v: sum(e["verdict"] == v for e in entries) for v in ("slower", "faster", "same", "untested")}
    lines += ["", f"{len(entries)} measurements compared: {counts['slower']} slower, {counts['faster']} faster, "
                  f"{counts['same']} the same, {counts['untested']} untested (no samples). A change is called "
                  f"where new / old is beyond {1 + min_effect:.2f}x either way, its Mann-Whitney p-value below "
                  f"{alpha:g}, and its bootstrap interval clear of 1.",
              "", "| implementation | points | median new / old | fastest | slowest |", "|---|---:|---:|---:|---:|"]
    for impl in sorted({e["impl"] for e in entries}):
        ratios = [e["ratio"] for e in entries if e["impl"] == impl]
        lines.append(f"| {impl} | {len(ratios)} | {np.median(ratios):.2f} | {min(ratios):.2f} | {max(ratios):.2f} |")
    return "\n".join(lines)


def _by_key(rows: list[dict]) -> dict[tuple, dict]:
    """The ok rows by point; where a point was measured twice, the faster (a run keeps its best round)."""
    best: dict[tuple, dict] = {}
    for r in rows:
        if r.get("status", "ok") != "ok" or not r.get("median_s"):
            continue
        key = tuple(_cell(r.get(k)) for k in JOIN)
        if key not in best or r["median_s"] < best[key]["median_s"]:
            best[key] = r
    return best


def _cell(value):
    """A key field as it compares: NaN (a field a row lacks) as None, a whole float (read back from CSV) as int."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    return value.item() if isinstance(value, np.generic) else value
