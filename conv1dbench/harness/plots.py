"""PNG figures of the harness's tidy table of measurements (one row per measurement).

The figures: what ``backend="auto"`` delivers against ``scipy.signal.convolve`` (:func:`speedup_heatmap`,
the first: what a user gets), signal time against N (:func:`time_vs_n`), the fastest of our backends per
signal point, picked after the fact and titled so (:func:`fastest_map`), and layer throughput against the
measured FMA peak (:func:`layer_bars`); :func:`write_all` draws them all.
Each returns the paths it wrote, ``[]`` when its data is absent.

Conventions shared by every figure: only ``status == "ok"`` rows are drawn; when several rows describe
one point (repeated rounds) the fastest, the minimum ``median_s``, stands for it; a signal point measured
at several batch sizes is drawn at its smallest; an implementation has one colour everywhere
(:func:`impl_colours`).  matplotlib is imported inside the functions, so importing this module does not.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .._registry import BACKEND_NAMES
from .cases import AUTO_ONE_THREAD, PEERS, ours_alone
from .peak import peak_gflops

#: Implementations in legend order, ours then peers; each gets the palette's colour at its position.
KNOWN_IMPLS = BACKEND_NAMES + ("auto", AUTO_ONE_THREAD) + PEERS  # a fixed colour each, in the registries' order
#: Thirty distinct colours: tab10's, tab20's light shades, then tab20b's dark and middle ones.  The known
#: implementations (more than ten with every backend and peer) take the first; other names the rest.
_PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
            "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
            "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5",
            "#c49c94", "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
            "#393b79", "#637939", "#8c6d31", "#843c39", "#7b4173",
            "#6b6ecf", "#b5cf6b", "#e7ba52", "#d6616b", "#ce6dbd")
REFERENCE = "scipy"                      # the peer speedups are measured against
MODE_ORDER = ("full", "same", "valid")
PASS_ORDER = ("forward", "backward")
CELL = ["dtype", "mode", "N", "K"]       # one cell of the signal maps
EMPTY_CELL = "#ebebeb"


def impl_colours(names) -> dict[str, str]:
    """Colour of each implementation: the known ones fixed, unknown ``names`` (sorted) the colours left over
    (all of them, in turn, once more names are known than the palette holds)."""
    colours = {name: _PALETTE[i % len(_PALETTE)] for i, name in enumerate(KNOWN_IMPLS)}
    spare = _PALETTE[len(KNOWN_IMPLS):] or _PALETTE
    unknown = sorted({str(name) for name in names} - set(colours))
    colours.update({name: spare[i % len(spare)] for i, name in enumerate(unknown)})
    return colours


def fastest_backends(frame: pd.DataFrame) -> pd.DataFrame:
    """The fastest of our backends (auto and its one-thread variant excluded) at each signal point.

    Returns a frame indexed by (dtype, mode, N, K) with columns ``impl``, ``median_s`` and
    ``speedup_vs_scipy`` (scipy's median over the backend's at the same point; NaN without scipy).
    """
    rows = _signal_rows(frame)
    ours = rows[ours_alone(rows)]
    best = _fastest_rows(ours, CELL).set_index(CELL)[["impl", "median_s"]]
    scipy = _fastest_rows(rows[rows["impl"] == REFERENCE], CELL).set_index(CELL)["median_s"]
    best["speedup_vs_scipy"] = scipy.reindex(best.index) / best["median_s"]
    return best.sort_index()


def auto_speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """What ``backend="auto"`` delivered against scipy at each signal point: a frame indexed by
    (dtype, mode, N, K) with ``median_s`` (auto's) and ``speedup_vs_scipy`` (scipy's median over auto's)."""
    rows = _signal_rows(frame)
    auto = _fastest_rows(rows[rows["impl"] == "auto"], CELL).set_index(CELL)[["median_s"]]
    scipy = _fastest_rows(rows[rows["impl"] == REFERENCE], CELL).set_index(CELL)["median_s"]
    auto["speedup_vs_scipy"] = scipy.reindex(auto.index) / auto["median_s"]
    return auto.sort_index()


def time_vs_n(frame: pd.DataFrame, folder) -> list[Path]:
    """``signal_time_{dtype}.png``: median time against N, log-log; rows are modes, columns kernel lengths."""
    plt = _pyplot()
    rows = _signal_rows(frame)
    colours = impl_colours(frame["impl"].dropna())
    written = []
    for dtype in sorted(rows["dtype"].unique()):
        of_dtype = rows[rows["dtype"] == dtype]
        modes, ks = _modes(of_dtype["mode"]), sorted(of_dtype["K"].unique())
        fig, axes = _grid(plt, len(modes), len(ks), (3.4, 2.6), sharex=True)
        lines = {}
        for (i, mode), (j, k) in _pairs(modes, ks):
            ax = axes[i, j]
            panel = of_dtype[(of_dtype["mode"] == mode) & (of_dtype["K"] == k)]
            for impl in _impl_order(panel["impl"]):
                points = _fastest_rows(panel[panel["impl"] == impl], ["N"]).sort_values("N")
                lines[impl] = _draw_timing(ax, points, colours[impl])
            ax.set(xscale="log", yscale="log", title=f"mode={mode}, K={int(k)}")
            ax.grid(True, which="major", alpha=0.3)
            if i == len(modes) - 1:
                ax.set_xlabel("N (samples)")
            if j == 0:
                ax.set_ylabel("time per call (ms)")
        order = _impl_order(lines)
        fig.legend([lines[name] for name in order], order, loc="outside right center", title="implementation")
        fig.suptitle(f"Signal convolution, {dtype}: median time (band: 25th-75th percentile)")
        written.append(_save(plt, fig, Path(folder) / f"signal_time_{dtype}.png"))
    return written


def fastest_map(frame: pd.DataFrame, folder) -> list[Path]:
    """``signal_fastest.png``: per (N, K) cell, the fastest of our backends and its speedup over scipy."""
    plt = _pyplot()
    from matplotlib.colors import to_rgb  # optional dependency, as in _pyplot
    from matplotlib.patches import Patch

    table = fastest_backends(frame)
    if table.empty:
        return []
    colours = impl_colours(frame["impl"].dropna())

    def draw(ax, cells, ns, ks):
        image = np.tile(to_rgb(EMPTY_CELL), (len(ks), len(ns), 1))
        for (n, k), row in cells.iterrows():
            y, x = ks.index(k), ns.index(n)
            image[y, x] = to_rgb(colours[row["impl"]])
            text = row["impl"] + ("" if np.isnan(row["speedup_vs_scipy"])
                                  else "\n" + _format_ratio(row["speedup_vs_scipy"]))
            _annotate(ax, x, y, text, image[y, x], len(ns))
        ax.imshow(image, origin="lower", aspect="auto")

    fig = _draw_cell_maps(plt, table, draw)
    shown = _impl_order(table["impl"])
    fig.legend([Patch(color=colours[name]) for name in shown], shown, loc="outside right center",
               title="fastest backend")
    fig.suptitle(f"The fastest of our backends, picked after the fact (auto excluded); cell text: its speedup "
                 f"over {REFERENCE}")
    return [_save(plt, fig, Path(folder) / "signal_fastest.png")]


def speedup_heatmap(frame: pd.DataFrame, folder, threads=None) -> list[Path]:
    """``signal_speedup.png``: scipy's time over ``backend="auto"``'s per (N, K) cell, on a log2 scale: what a
    user gets (``threads``: our thread count in the run, for the title; scipy runs on one)."""
    plt = _pyplot()
    from matplotlib.colors import Normalize  # optional dependency, as in _pyplot
    from matplotlib.ticker import FuncFormatter

    table = auto_speedups(frame).dropna(subset=["speedup_vs_scipy"])
    if table.empty:
        return []
    log2 = np.log2(table["speedup_vs_scipy"].to_numpy(dtype=float))
    limit = max(1.0, float(np.abs(log2).max()))
    norm, cmap = Normalize(-limit, limit), plt.get_cmap("RdBu").with_extremes(bad=EMPTY_CELL)
    images = []

    def draw(ax, cells, ns, ks):
        values = np.full((len(ks), len(ns)), np.nan)
        for (n, k), row in cells.iterrows():
            values[ks.index(k), ns.index(n)] = math.log2(row["speedup_vs_scipy"])
        images.append(ax.imshow(np.ma.masked_invalid(values), origin="lower", aspect="auto",
                                cmap=cmap, norm=norm))
        for y, x in zip(*np.nonzero(np.isfinite(values)), strict=True):
            _annotate(ax, x, y, _format_ratio(2.0 ** values[y, x]), cmap(norm(values[y, x]))[:3], len(ns))

    fig = _draw_cell_maps(plt, table, draw)
    colourbar = fig.colorbar(images[0], ax=fig.axes, shrink=0.8, ticks=_log2_ticks(limit))
    colourbar.ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _: _format_power_of_two(value)))
    colourbar.set_label(f"{REFERENCE}'s time / auto's time")
    ours = f"auto on {threads} threads" if threads else "auto"
    fig.suptitle(f"backend=\"auto\" against {REFERENCE}.signal.convolve ({ours}, {REFERENCE} on 1; "
                 "blue: auto is faster)")
    return [_save(plt, fig, Path(folder) / "signal_speedup.png")]


def layer_bars(frame: pd.DataFrame, peak: dict, folder) -> list[Path]:
    """``layer_gflops.png``: GFLOP/s per layer shape and implementation, one subplot per pass."""
    plt = _pyplot()
    rows = _ok_rows(frame, "layer").dropna(subset=["gflops"])
    if rows.empty:
        return []
    colours = impl_colours(frame["impl"].dropna())
    dtypes = sorted(rows["dtype"].unique())
    rows["point"] = rows["shape"].astype(str) + (" " + rows["dtype"] if len(dtypes) > 1 else "")
    points = list(dict.fromkeys(rows["point"]))
    passes = [p for p in PASS_ORDER if p in set(rows["pass"])] + sorted(set(rows["pass"]) - set(PASS_ORDER))
    impls = _impl_order(rows["impl"])
    best = _fastest_rows(rows, ["pass", "point", "impl"]).set_index(["pass", "point", "impl"])["gflops"]
    peaks = {d: peak_gflops(peak, d) for d in dtypes}
    peaks = {d: value for d, value in peaks.items() if np.isfinite(value[0])}
    width = 0.8 / len(impls)
    fig, axes = _grid(plt, len(passes), 1, (max(6.0, 0.25 * len(points) * len(impls) + 2), 3.2), sharex=True)
    for ax, direction in zip(axes[:, 0], passes, strict=False):
        for i, impl in enumerate(impls):
            heights = [best.get((direction, point, impl), np.nan) for point in points]
            ax.bar(np.arange(len(points)) + (i - (len(impls) - 1) / 2) * width, heights, width,
                   color=colours[impl], label=impl)
        for style, (dtype, (value, name)) in zip(("--", "-.", (0, (8, 3))), peaks.items(), strict=False):
            label = f"{name} (measured)" + (f", {dtype}" if len(dtypes) > 1 else "") + f": {value:.0f} GFLOP/s"
            ax.axhline(value, color="0.2", linestyle=style, linewidth=1.2, label=label)
        ax.set(title=f"{direction} pass", ylabel="throughput (GFLOP/s)")
        ax.set_ylim(0, 1.1 * max([*(value for value, _ in peaks.values()), rows["gflops"].max()]))
        ax.grid(True, axis="y", alpha=0.3)
    long = max(map(len, points)) > 12 or len(points) > 6
    axes[-1, 0].set_xticks(range(len(points)), points, rotation=30 if long else 0, ha="right" if long else "center",
                           rotation_mode="anchor")
    axes[-1, 0].set_xlabel("layer shape (B x C_in x C_out, length L, taps K; s: stride, g: groups)")
    handles, labels = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside right center", title="implementation")
    fig.suptitle(f"Conv1d layer throughput ({', '.join(dtypes)}), best of rounds")
    return [_save(plt, fig, Path(folder) / "layer_gflops.png")]


def write_all(frame: pd.DataFrame, peak: dict, folder, threads=None) -> list[Path]:
    """Draw every figure into ``folder`` (created if missing); the paths written.  ``threads``: our thread
    count in the run, which the titles say."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    return (speedup_heatmap(frame, folder, threads) + time_vs_n(frame, folder) + fastest_map(frame, folder)
            + layer_bars(frame, peak, folder))


# --- helpers ------------------------------------------------------------------------------------

def _pyplot():
    """matplotlib.pyplot on the Agg (file-only) backend, imported on first use."""
    import matplotlib  # optional dependency (the plot extra)

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # optional dependency, after choosing the backend

    return plt


def _save(plt, fig, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _grid(plt, nrows: int, ncols: int, panel: tuple[float, float], **kwargs):
    """A figure of ``nrows x ncols`` panels of size ``panel`` (inches); axes always a 2-D array."""
    size = (panel[0] * ncols + 1.6, panel[1] * nrows + 0.6)
    return plt.subplots(nrows, ncols, figsize=size, squeeze=False, layout="constrained", **kwargs)


def _ok_rows(frame: pd.DataFrame, api: str) -> pd.DataFrame:
    keep = (frame["api"] == api) & (frame["status"] == "ok") & frame["median_s"].notna()
    return frame[keep].copy()


def _signal_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The ok signal rows; of a point measured at several batch sizes, the smallest batch only."""
    rows = _ok_rows(frame, "signal")
    smallest = rows.groupby(CELL)["batch"].transform("min")
    return rows[rows["batch"].isna() | (rows["batch"] == smallest)]


def _fastest_rows(rows: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """One row per group of ``keys``: the one with the smallest ``median_s``."""
    if rows.empty:
        return rows.copy()
    return rows.loc[rows.groupby(keys, sort=True)["median_s"].idxmin()].reset_index(drop=True)


def _impl_order(names) -> list[str]:
    names = {str(name) for name in names}
    return [n for n in KNOWN_IMPLS if n in names] + sorted(names - set(KNOWN_IMPLS))


def _modes(values) -> list[str]:
    present = {str(v) for v in values}
    return [m for m in MODE_ORDER if m in present] + sorted(present - set(MODE_ORDER))


def _pairs(modes, ks):
    return [((i, mode), (j, k)) for i, mode in enumerate(modes) for j, k in enumerate(ks)]


def _draw_timing(ax, points: pd.DataFrame, colour: str):
    """One implementation's median (ms) against N, with its interquartile band; the line drawn."""
    n, scale = points["N"].to_numpy(dtype=float), 1e3
    (line,) = ax.plot(n, points["median_s"] * scale, marker="o", markersize=3.5, linewidth=1.3, color=colour)
    ax.fill_between(n, points["q25_s"] * scale, points["q75_s"] * scale, color=colour, alpha=0.2, linewidth=0)
    return line


def _draw_cell_maps(plt, table: pd.DataFrame, draw):
    """A dtype x mode grid of (N, K) cell maps; ``draw(ax, cells, ns, ks)`` fills each panel."""
    dtypes = sorted(table.index.unique("dtype"))
    modes = _modes(table.index.unique("mode"))
    ns, ks = sorted(table.index.unique("N")), sorted(table.index.unique("K"))
    fig, axes = _grid(plt, len(dtypes), len(modes), (0.75 * len(ns) + 1.2, 0.5 * len(ks) + 1.0))
    for i, dtype in enumerate(dtypes):
        for j, mode in enumerate(modes):
            ax = axes[i, j]
            here = (table.index.get_level_values("dtype") == dtype) & (table.index.get_level_values("mode") == mode)
            cells = table[here].droplevel(["dtype", "mode"])
            draw(ax, cells, ns, ks)
            ax.set_xticks(range(len(ns)), [_format_count(n) for n in ns])
            ax.set_yticks(range(len(ks)), [str(int(k)) for k in ks])
            ax.set(title=f"{dtype}, mode={mode}", xlabel="N (samples)", ylabel="K (taps)")
    return fig


def _annotate(ax, x: int, y: int, text: str, background, columns: int) -> None:
    luminance = 0.299 * background[0] + 0.587 * background[1] + 0.114 * background[2]
    ax.text(x, y, text, ha="center", va="center", fontsize=8 if columns <= 6 else 6.5,
            color="black" if luminance > 0.5 else "white")


def _format_ratio(ratio: float) -> str:
    """``12x``, ``3.2x``, ``0.45x``: two significant digits, whole numbers from 10 up."""
    return f"{ratio:.0f}x" if ratio >= 9.95 else f"{ratio:.2g}x"


def _format_count(n) -> str:
    """``1000``, ``1e5``, ``2.5e4`` or, for numbers without a short mantissa, ``65.5k`` / ``1.05M``."""
    n = int(n)
    if n < 10_000:
        return str(n)
    exponent = int(math.log10(n))
    mantissa = n / 10**exponent
    if round(mantissa, 1) == mantissa:
        return f"{mantissa:g}e{exponent}"
    return f"{n / 1e3:.3g}k" if n < 1_000_000 else f"{n / 1e6:.3g}M"


def _format_power_of_two(exponent: float) -> str:
    """Colourbar tick at ``2**exponent``: ``4x``, ``1x``, ``1/8x``."""
    return f"{2.0 ** exponent:g}x" if exponent >= 0 else f"1/{2.0 ** -exponent:g}x"


def _log2_ticks(limit: float) -> np.ndarray:
    top = math.floor(limit)
    step = max(1, math.ceil((2 * top + 1) / 9))
    return np.arange(-(top // step) * step, top + 1, step)
