"""The command line: ``conv1dbench run | report | compare | tune | info`` (also ``python -m conv1dbench``).

Exit statuses (:data:`EXIT_CODES`): 0 all measured; 1 some measurement failed, or ``compare`` found a
significant slowdown; 2 a usage error (argparse's for an unknown option, ours for a value or file we
cannot take: one line, ``conv1dbench: error: ...``); 3 an internal error (one line; its traceback
with ``--debug`` or ``CONV1DBENCH_DEBUG=1``); 130 interrupted.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import shlex
import sys
from pathlib import Path

from . import __version__, _model, _params, _wisdom
from ._auto import knowledge
from ._registry import backends
from .harness import cases, compare, grid, report, runner
from .harness import tune as _tune
from .harness.report import from_pytest_benchmark
from .harness.runner import Run
from .harness.tune import measurements_from_rows
from .machine import machine_info

#: The exit statuses, as ``--help`` says them.
EXIT_CODES = """exit status:
  0  every measurement made (compare: no significant slowdown)
  1  some measurements failed (a wrong result, a crash), or compare found a significant slowdown
  2  a usage error: an unknown option or value, a file that is not a run
  3  an internal error (a bug): run again with --debug to see its traceback
  130 interrupted (run: a partial report is written; finish it with run --resume DIR)"""
#: The environment variable that turns --debug on.
DEBUG_ENV = "CONV1DBENCH_DEBUG"
#: Where a run without ``--out`` goes: a new folder per run, so that no run overwrites another (or the
#: committed results) unless named to.
RUNS_FOLDER = "runs"
#: Minutes of Numba compiling the kernels in a fresh clone's first default run (the numba worker's first
#: calls beyond their later ones: 170 s on the 2-core AMD EPYC with AVX-512, ``results/NOTES.md``).
COMPILE_MINUTES = 3


def _names(text: str | None) -> list[str] | None:
    return None if text is None else [n.strip() for n in text.split(",") if n.strip()]


class _DefaultsAndText(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Defaults shown, and the epilog (the grids) as written."""


def _parser(grid_help: str | None = None) -> argparse.ArgumentParser:
    """The command line; ``grid_help``: the grids described with their predicted minutes (made only for
    ``run --help``, since predicting them takes a moment)."""
    p = argparse.ArgumentParser(prog="conv1dbench", description="1-D convolution backends: benchmark and compare.",
                                epilog=EXIT_CODES, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--version", action="version", version=f"conv1dbench {__version__}")
    p.add_argument("--debug", action="store_true", help=f"show the traceback of an internal error (or {DEBUG_ENV}=1)")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,report,compare,tune,info}")
    common = argparse.ArgumentParser(add_help=False)  # --debug after the command too (SUPPRESS: no default there)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help=f"show the traceback of an internal error (or {DEBUG_ENV}=1)")
    sub_kwargs = {"formatter_class": argparse.ArgumentDefaultsHelpFormatter, "parents": [common]}

    run = sub.add_parser("run", help="time backends and peers over a grid and write the report",
                         description="Time backends and peers over a grid and write the report.", epilog=grid_help,
                         formatter_class=_DefaultsAndText, parents=[common])
    run.add_argument("--grid", default="default", choices=grid.GRIDS, metavar="GRID",
                     help="the points to time: one of " + ", ".join(grid.GRIDS) + " (described below)")
    run.add_argument("--api", choices=["signal", "layer", "all"], default="all", help="which points of the grid")
    run.add_argument("--backends", help="comma-separated backends and auto (none named: every available one, auto, "
                                        "and auto:1-thread on signals)")
    run.add_argument("--peers", help=f"comma-separated peers: {', '.join(cases.PEERS)} (where installed); 'none' "
                                     "for none (none named: every installed one)")
    run.add_argument("--dtypes", help="comma-separated dtypes to keep (float32, float64; the crossover grid also has "
                                      "complex64, complex128)")
    run.add_argument("--modes", help="comma-separated signal modes to keep (full, same, valid)")
    run.add_argument("--min-time", type=float, default=0.1, help="seconds of repeats per measurement")
    run.add_argument("--min-samples", type=int, default=3, help="repeats per measurement at least")
    run.add_argument("--rounds", type=int, default=1, help="sweeps; each measurement keeps its best round")
    run.add_argument("--out", help=f"folder for report.{{json,csv,md}} and the plots (default: a new folder, "
                                   f"{RUNS_FOLDER}/<grid>-<date>-<time>); a folder that holds a run already is "
                                   "refused, unless --overwrite")
    run.add_argument("--overwrite", action="store_true", help="replace the run in --out's folder")
    run.add_argument("--resume", metavar="DIR", help="finish the interrupted run in DIR: the same command, the rows "
                                                     "it measured kept (its rows.jsonl), the rest measured")
    run.add_argument("--no-plots", action="store_true", help="skip the PNG plots")
    run.add_argument("--no-progress", action="store_true", help="no progress bar")
    run.add_argument("--no-interference", action="store_true", help="skip the shared-process and busy-process checks")
    run.add_argument("--no-memory-check", action="store_true",
                     help="skip timing a few points again with memory reused (glibc settings and out=)")
    run.add_argument("--no-wisdom", action="store_true", help="do not add the timings to auto's wisdom file")
    run.add_argument("--gib", type=float, help="out-of-core grids: GiB of float32 signal on disk (dask: 12)")
    run.add_argument("--dir", help="out-of-core grids: folder for the signal file (made once, reused) and the "
                                   "outputs (default: conv1dbench-dask in the temporary folder)")

    report = sub.add_parser("report", help="rebuild the report from a saved run or pytest-benchmark JSON", **sub_kwargs)
    report.add_argument("path", help="report.json of `conv1dbench run`, a pytest-benchmark JSON file, or the folder "
                                     "holding either (its report.json, else its benchmark.json)")
    report.add_argument("--out", help="folder to write into (none named: the run's folder)")
    report.add_argument("--no-plots", action="store_true")

    compare_ = sub.add_parser("compare", help="two runs side by side: significant changes called, exit 1 on a "
                                              "significant slowdown", **sub_kwargs)
    compare_.add_argument("old", help="the baseline run (report.json or pytest-benchmark JSON, or its folder)")
    compare_.add_argument("new", help="the run to check (the same)")
    compare_.add_argument("--min-effect", type=float, default=compare.MIN_EFFECT,
                          help="the smallest relative change called one (0.25: 25%%, from an A/A run: see "
                               "results/<machine>/aa/)")
    compare_.add_argument("--alpha", type=float, default=compare.ALPHA,
                          help="the Mann-Whitney p-value below which a difference counts")
    compare_.add_argument("--json", action="store_true", help="print each point's comparison as JSON")

    tune = sub.add_parser("tune", help="measure the kernel parameters here (a minute or two) and, with --grid, time "
                                       "the backends for backend='auto'; keep both as wisdom", **sub_kwargs)
    tune.add_argument("--grid", choices=grid.GRIDS, metavar="GRID",
                      help="also time this grid for auto's models: one of " + ", ".join(grid.GRIDS)
                           + f" (tune: about {grid.MINUTES['tune']} min a round)")
    tune.add_argument("--no-params", action="store_true", help="do not measure the kernel parameters")
    tune.add_argument("--backends", help="comma-separated backends (none named: every available CPU backend)")
    tune.add_argument("--wisdom", help="the wisdom file (none named: $CONV1DBENCH_WISDOM or the user cache)")
    tune.add_argument("--min-time", type=float, default=0.05, help="seconds of repeats per measurement")
    tune.add_argument("--from-run", metavar="REPORT_JSON",
                      help="take the timings of a saved run (report.json of `conv1dbench run`) instead of timing")
    tune.add_argument("--record", metavar="PATH",
                      help="also write what the kernel parameters' measurement chose, measured and took, with the "
                           "machine, as JSON (results/<machine>/tune-params.json: the README's summary shows it)")
    tune.add_argument("--write-default", metavar="PATH",
                      help="also write the models fitted on this run alone to PATH (the package's default models)")

    info = sub.add_parser("info", help="backends with availability and why, machine, threads", **sub_kwargs)
    info.add_argument("--json", action="store_true", help="print it as JSON")
    return p


#: The files a run's folder holds, the first found read: `conv1dbench run`'s, then pytest-benchmark's.
RUN_FILES = ("report.json", "benchmark.json")


def _run_file(path: str) -> Path:
    """The saved run ``path`` names: the file itself, or in a folder the first of :data:`RUN_FILES` there."""
    given = Path(path)
    if given.is_dir():
        found = [given / name for name in RUN_FILES if (given / name).is_file()]
        if not found:
            raise ValueError(f"{path} holds no saved run: looked for {' and '.join(RUN_FILES)} in it")
        return found[0]
    if not given.is_file():
        raise ValueError(f"no such file or folder: {path}")
    return given


def _load(path: str):
    file = _run_file(path)
    path = str(file)
    try:
        raw = json.loads(file.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON ({exc.msg} at line {exc.lineno})") from None
    if "benchmarks" in raw:
        return from_pytest_benchmark(file)
    if "rows" in raw and "meta" in raw:
        return Run.load(file)
    raise ValueError(f"{path} is neither a conv1dbench run (report.json) nor pytest-benchmark JSON")


#: The file in a run's folder that keeps the command line it was started with (for ``--resume``).
ARGV_FILE = "argv.json"


def cmd_run(args, argv) -> int:
    if args.resume:
        return _resume(args.resume)
    out_of_core = {key: value for key, value in (("gib", args.gib), ("folder", args.dir)) if value is not None}
    if out_of_core and args.grid not in grid.OUT_OF_CORE:
        raise ValueError(f"--gib and --dir apply to the out-of-core grids ({', '.join(grid.OUT_OF_CORE)}), "
                         f"not {args.grid!r}")
    points = grid.grid(args.grid, **out_of_core)
    if args.api != "all":
        points = [p for p in points if p["api"] == args.api]
    for key, wanted in (("dtype", _names(args.dtypes)), ("mode", _names(args.modes))):
        if wanted:
            points = [p for p in points if p[key] in wanted or (key == "mode" and p["api"] == "layer")]
    if not points:
        raise ValueError("no points left in the grid after --api/--dtypes/--modes")
    suites = list(dict.fromkeys(cases.suite(p) for p in points))
    available = list(dict.fromkeys(name for suite in suites for name in cases.implementations(suite)))
    default = {n for suite in suites for n in cases.timed_by_default(suite, cases.implementations(suite))}
    backends = [n for n in available if cases.kind(n) == "backend"]
    peers = [n for n in available if cases.kind(n) == "peer"]
    impls = (_choose(_names(args.backends), backends, "backend", [n for n in backends if n in default])
             + _choose(_names(args.peers), peers, "peer", [n for n in peers if n in default]))
    if not impls:
        raise ValueError(f"no implementation of the {args.grid} grid to time here" + _unavailable())
    command = "conv1dbench " + " ".join(shlex.quote(a) for a in argv)
    done = getattr(args, "done", [])
    if not done:
        args.out = _out_folder(args)
    folder = Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    journal = folder / runner.JOURNAL
    if not done:
        journal.unlink(missing_ok=True)
        (folder / ARGV_FILE).write_text(json.dumps(argv))
    print(f"timing {len(impls)} implementations on {len(points)} points ({args.grid} grid) into {args.out}/"
          + (f" ({len(done)} measurements kept from before)" if done else ""), file=sys.stderr)
    started = datetime.datetime.now().isoformat(timespec="seconds")
    try:
        run = runner.sweep(points, impls, min_time_s=args.min_time, min_samples=args.min_samples,
                           progress=not args.no_progress, interference=not args.no_interference,
                           memory=not args.no_memory_check, quick_peak=args.grid.endswith("smoke"),
                           rounds=args.rounds, command=command, grid=args.grid, journal=journal, done=done)
    except KeyboardInterrupt:
        partial = Run({"date": started, "command": command, "grid": args.grid, "interrupted": True,
                       "machine": machine_info()}, runner.journal_rows(folder))
        paths = report.write(partial, folder, "report", plots=False)
        print(f"\nconv1dbench: interrupted: {len(partial.rows)} measurements kept in {paths[2]}; finish the run "
              f"with: conv1dbench run --resume {shlex.quote(str(folder))}", file=sys.stderr)
        return 130
    paths = report.write(run, folder, "report", plots=not args.no_plots)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    if not args.no_wisdom:
        wisdom = _wisdom.record(measurements_from_rows(run.rows))
        print(f"added the timings to auto's wisdom: {wisdom}", file=sys.stderr)
    failed = [r for r in run.rows if r.get("status") == "failed"]
    for r in failed:
        print(f"failed: {r['impl']} on {r['api']} {r.get('pass')} {r.get('dtype')} {r.get('mode')} {r['shape']}: "
              f"{r.get('reason')}", file=sys.stderr)
    return 1 if failed else 0


def _resume(folder: str) -> int:
    """``run --resume DIR``: the command DIR's run was started with, its measured rows kept."""
    saved = Path(folder) / ARGV_FILE
    if not saved.is_file():
        raise ValueError(f"{folder} holds no run to resume (no {ARGV_FILE}: it was not started by conv1dbench run)")
    argv = json.loads(saved.read_text())
    args = _parser().parse_args(argv)
    args.out, args.done, args.overwrite = folder, runner.journal_rows(Path(folder)), True
    return cmd_run(args, argv)


def _out_folder(args) -> str:
    """``--out``, or a new folder under :data:`RUNS_FOLDER`; a folder holding a run already is refused unless
    ``--overwrite``."""
    if args.out is None:
        stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
        return str(Path(RUNS_FOLDER) / f"{args.grid}-{stamp}")
    if (Path(args.out) / "report.json").exists() and not args.overwrite:
        raise ValueError(f"{args.out} holds a run already (report.json); name another --out, or add --overwrite "
                         "to replace it")
    return args.out


def _unavailable() -> str:
    """``; unavailable backends: name (why), ...`` or nothing."""
    missing = [f"{name} ({info['reason']})" for name, info in backends().items() if not info["available"]]
    return "; unavailable backends: " + ", ".join(missing) if missing else ""


def cmd_tune(args) -> int:
    if args.from_run and not Path(args.from_run).is_file():
        raise ValueError(f"no such file: {args.from_run}")
    result = _tune.tune(args.grid, backends=_names(args.backends), wisdom=args.wisdom, min_time_s=args.min_time,
                        from_run=args.from_run, params=not args.no_params)
    if "params" in result:
        tuned = result["params"]
        print(f"kernel parameters, measured in {tuned['seconds']:.0f} s, kept in {result['wisdom']}:")
        for name, value in tuned["chosen"].items():
            print(f"  {name} = {value:g}" + ("" if value == tuned["default"][name]
                                           else f" (default here {tuned['default'][name]:g})"))
        if args.record:
            record = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
                      "machine": machine_info(gpu=False), "facts": _params.facts().__dict__, **tuned}
            Path(args.record).parent.mkdir(parents=True, exist_ok=True)
            Path(args.record).write_text(json.dumps(record, indent=1, default=str) + "\n")
            print(f"wrote {args.record}", file=sys.stderr)
    if "measurements" in result:
        print(f"{result['measurements']} timings in {result['wisdom']}; cost models fitted: "
              f"{', '.join(result['models']) or 'none (too few measurements)'}", file=sys.stderr)
    if args.write_default:
        Path(args.write_default).write_text(json.dumps(result["this_run"], indent=1, sort_keys=True) + "\n")
        print(f"wrote {args.write_default}", file=sys.stderr)
    return 0


def _choose(wanted: list[str] | None, available: list[str], what: str, default: list[str]) -> list[str]:
    """The implementations named (``none``: none), checked against ``available``; ``default`` if none named."""
    if wanted is None:
        return default
    if wanted == ["none"]:
        return []
    missing = [n for n in wanted if n not in available]
    if missing:
        raise ValueError(f"{what}(s) {', '.join(missing)} not available here; available: {', '.join(available)}")
    return wanted


def cmd_report(args) -> int:
    run = _load(args.path)
    out = Path(args.out) if args.out else _run_file(args.path).parent
    paths = report.write(run, out, "report", plots=not args.no_plots)
    print("wrote " + ", ".join(str(p) for p in paths), file=sys.stderr)
    return 0


def cmd_compare(args) -> int:
    old, new = (_load(p) for p in (args.old, args.new))
    entries = compare.compare(old.rows, new.rows, min_effect=args.min_effect, alpha=args.alpha)
    if not entries:
        raise ValueError("the two runs have no measurement in common")
    if args.json:
        print(json.dumps({"min_effect": args.min_effect, "alpha": args.alpha, "points": entries}, indent=1,
                         default=str))
    else:
        print(compare.markdown(entries, args.min_effect, args.alpha))
    return 1 if any(e["verdict"] == "slower" for e in entries) else 0


def cmd_info(as_json: bool = False) -> int:
    if as_json:
        known = knowledge()
        print(json.dumps({"version": __version__, "backends": backends(), "machine": machine_info(),
                          "auto": {key: known[key] for key in ("wisdom", "measurements", "measure", "shipped_models",
                                                               "scales")}}, indent=1, default=str))
        return 0
    print("backends:")
    for name, info in backends().items():
        print(f"  {name:8s} {'available' if info['available'] else 'unavailable: ' + info['reason']}")
    print("machine:")
    for key, value in machine_info().items():
        print(f"  {key}: {value}")
    known = knowledge()
    print("auto:")
    print(f"  wisdom: {known['wisdom']} ({known['measurements']} timings from this machine)")
    print(f"  timing on first sight: {known['measure']}")
    print(f"  cost models: {len(known['models_from_wisdom'])} refitted here, {len(_model.load_default())} shipped "
          f"({known['shipped_models']})")
    scales = known["scales"]
    print("  shipped models scaled to this machine: "
          + (", ".join(f"{key} x{value:.2f}" for key, value in sorted(scales.items())) or "none yet"))
    return 0


def _grid_help() -> str:
    """Each grid, what it holds and its predicted minutes for a run here with the defaults: every
    implementation offered on it, the checks after the sweep included (the cost models, scaled by this
    machine's timings, predict each measurement, as for the progress bar)."""
    from .harness.runner import planned  # import time: only run --help predicts

    lines = ["grids (predicted minutes of a run on this machine with the defaults, its checks included;",
             f"  a first run after an install or an update adds Numba's compilation, {COMPILE_MINUTES} minutes "
             "on the project's machine):"]
    for name in grid.GRIDS:
        try:
            points = grid.grid(name)
            suite = cases.suite(points[0])
            impls = cases.timed_by_default(suite, cases.implementations(suite))
            minutes = (f"about {max(1, round(planned(points, impls).total_s / 60))} min" if impls
                       else "nothing to time here")
        except Exception as exc:  # noqa: BLE001 - a grid that cannot be predicted here says why, the rest stay
            minutes = f"not predicted here: {exc}"
        lines.append(f"  {name:11s} {grid.DESCRIPTIONS[name]} ({len(points)} points; {minutes})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """The command line; returns its exit status (:data:`EXIT_CODES`)."""
    argv = sys.argv[1:] if argv is None else argv
    wants_grids = bool(argv) and argv[0] == "run" and ("-h" in argv or "--help" in argv)
    args = _parser(_grid_help() if wants_grids else None).parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    try:
        if args.command == "run":
            return cmd_run(args, argv)
        if args.command == "report":
            return cmd_report(args)
        if args.command == "compare":
            return cmd_compare(args)
        if args.command == "tune":
            return cmd_tune(args)
        return cmd_info(args.json)
    except KeyboardInterrupt:
        print("conv1dbench: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError) as exc:  # what the user gave: a value, a file
        if debug:
            raise
        print(f"conv1dbench: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - an internal error: one line, its traceback with --debug
        if debug:
            raise
        print(f"conv1dbench: internal error: {type(exc).__name__}: {exc} (run again with --debug, or "
              f"{DEBUG_ENV}=1, for the traceback)", file=sys.stderr)
        return 3
