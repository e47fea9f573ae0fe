"""The sweep: every implementation over a grid, each in a worker process, with progress.

Thread pools: Numba (OpenMP), OpenBLAS, pocketfft and torch each keep worker threads, and two pools
busy at once on a 2-core machine would halve each other.  So each implementation is timed in a
process of its own, one after another; and the run checks how much that matters (the
*interference check*): one signal and one layer point are timed again with every implementation in
one shared process, and the report gives the ratio shared / isolated per implementation.  Users call
us between NumPy, SciPy and BLAS calls, whose thread pools stay awake after their work: the
*busy-process check* (:func:`busy_check`) times a few points alone and in such a loop, as users
have the environment and with OpenBLAS's spinning cut short.  Where auto is timed, its regret is
timed once more beside the fastest backend (:func:`auto_check`).

Memory, two conditions.  The sweep's workers run with the allocator as users have it (the
environment as it is: glibc's defaults) and every call returns a fresh result, so a call pays the
first-touch page faults its memory costs there (``results/NOTES.md``, "workspaces: page faults").
After the sweep a few memory-bound points are timed again both ways (:func:`memory_check`): as in
the sweep, and with memory reused: :data:`WORKER_ENV` (``MALLOC_MMAP_THRESHOLD_`` and
``MALLOC_TRIM_THRESHOLD_`` raised, so glibc keeps freed memory instead of returning it to the
kernel) and, for our backends, the result written into a preallocated ``out=`` (the point's
``"memory": "reused"``).  The run's ``meta`` says which condition each number comes from.  The
thread counts and these settings are recorded with the results.

Points can ask for more (:mod:`conv1dbench.harness.grid`): ``"isolate": True`` gives each such point
a worker of its own (the out-of-core points, whose peak memory must be their own); ``"env":
"inherited"`` (the environment as it is, now every sweep worker's) is kept for the points that
must never run with other settings.  This module is the only place that starts timing processes.
"""

from __future__ import annotations

import datetime
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .. import _auto, _params
from .._registry import BACKEND_NAMES
from ..machine import machine_info
from . import peers, stability
from .busy import predicted_s as busy_predicted_s
from .cases import REUSED, kind, skip_reason, suite, worker_env
from .estimate import Estimate, fresh_processes_s, process_s
from .grid import PARAMS, SHORT_TARGETS, label, short_points
from .peak import measure_peak

#: Peers timed once more beside auto at signal points (auto's speed target is set against scipy).
AUTO_CHECK_PEERS = ("scipy",)
#: The environment of the reused-memory condition: glibc keeps freed memory (:func:`memory_check`).
WORKER_ENV = {"MALLOC_MMAP_THRESHOLD_": str(2**30), "MALLOC_TRIM_THRESHOLD_": str(2**31)}
#: The busy-process check's conditions: the environment as users have it, and with OpenBLAS's threads
#: told to sleep right after their work instead of spinning (``OPENBLAS_THREAD_TIMEOUT``: 2**4 cycles
#: instead of 2**28), the setting the README recommends.
BUSY_CONDITIONS = {"as users have it": {}, "OPENBLAS_THREAD_TIMEOUT=4": {"OPENBLAS_THREAD_TIMEOUT": "4"}}
#: The busy-process check's signal points: those whose fastest call is predicted nearest these seconds.
BUSY_CALL_S = (3e-5, 3e-4, 3e-3)
#: The memory-bound points the memory check times both ways where the grid has them, by (API, label,
#: pass, mode): a long signal with a short kernel, a batch of signals, the longest layer.
MEMORY_POINTS = {("signal", "N=1e+06 K=3", "forward", "same"), ("signal", "N=1e+04 K=15 x64", "forward", "same"),
                 ("layer", "4x32x32 L=65536 K=15", "forward", "same")}


@dataclass
class Run:
    """A finished sweep: what ran where (``meta``) and one tidy row per measurement."""

    meta: dict
    rows: list[dict] = field(default_factory=list)

    def save(self, path: Path) -> None:
        path.write_text(json.dumps({"meta": self.meta, "rows": self.rows}, indent=1, default=str))

    @classmethod
    def load(cls, path: Path) -> Run:
        raw = json.loads(Path(path).read_text())
        return cls(raw["meta"], raw["rows"])


def _work(impls: list[str], points: list[dict], min_time_s: float, min_samples: int, on_row=None,
          interleave: bool = False, busy: bool = False, env: dict | None = None) -> list[dict]:
    """Run one worker process; rows as they arrive; points it could not finish come back as failed.

    The points of one worker share its environment (:func:`_jobs` groups them so); ``env`` adds to it.
    ``interleave`` and ``busy`` say how the worker times (:mod:`conv1dbench.harness.worker`).
    """
    job = json.dumps({"impls": impls, "points": points, "min_time_s": min_time_s, "min_samples": min_samples,
                      "interleave": interleave, "busy": busy})
    reused = bool(points) and _reuses(points[0])
    proc = subprocess.Popen([sys.executable, "-m", "conv1dbench.harness.worker"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **this_package(), **(WORKER_ENV if reused else {}), **(env or {})})
    proc.stdin.write(job)
    proc.stdin.close()
    rows = []
    for line in proc.stdout:
        if line.strip():
            rows.append(json.loads(line))
            if on_row:
                on_row(rows[-1])
    stderr = proc.stderr.read()
    if proc.wait() != 0:  # a crash: every point it did not report is recorded as failed, with why
        why = f"worker exited with {proc.returncode}: {stderr.strip()[-300:]}"
        done = {_key(r) for r in rows}
        for point in points:
            for impl in impls:
                row = _failed_row(impl, point, why)
                if _key(row) not in done:
                    rows.append(row)
                    if on_row:
                        on_row(row)
    return rows


def _reuses(point: dict) -> bool:
    """Whether ``point`` is timed with memory reused (its worker gets :data:`WORKER_ENV`)."""
    return point.get("memory") == REUSED and point.get("env") != "inherited"


def _jobs(points: list[dict]) -> list[list[dict]]:
    """The points of one implementation as worker jobs: one per environment, and one per isolated point."""
    shared: dict[bool, list[dict]] = {}
    alone = []
    for point in points:
        if point.get("isolate"):
            alone.append([point])
        else:
            shared.setdefault(_reuses(point), []).append(point)
    return list(shared.values()) + alone


def peer_versions(impls: list[str]) -> dict:
    """The library and version of each peer among ``impls``, as its spec names them."""
    found = {}
    for impl in impls:
        peer = peers.get(impl)
        if peer is not None:
            found[impl] = f"{peer.library} {peer.version() or '(with ours)'}"
    return found


def _repeatable(points: list[dict]) -> list[dict]:
    """The points timed by repeats (not ``"timing": "once"``): those the checks after the sweep time again."""
    return [p for p in points if p.get("timing") != "once" and not p.get("isolate")]


def _key(row: dict) -> tuple:
    return row["impl"], row["api"], row["shape"], row["pass"], row["dtype"], row["mode"]


def _point_key(point: dict) -> tuple:
    """A point's part of :func:`_key`."""
    return point["api"], label(point), point.get("pass"), point.get("dtype"), point.get("mode")


def _failed_row(impl: str, point: dict, reason: str) -> dict:
    row = {key: point.get(key) for key in PARAMS}
    try:
        shape = label(point)
    except (KeyError, TypeError, ValueError):  # a malformed point: say what it was
        shape = json.dumps(point)
    row.update(impl=impl, kind=kind(impl), shape=shape, status="failed", reason=reason)
    return row


#: The file in a run's folder that holds each row of the sweep as it is measured (JSON lines), so that an
#: interrupted run keeps what it measured and ``conv1dbench run --resume`` finishes it.
JOURNAL = "rows.jsonl"


def journal_rows(folder: Path) -> list[dict]:
    """The rows an earlier sweep into ``folder`` measured (its :data:`JOURNAL`; a torn last line is dropped)."""
    path = Path(folder) / JOURNAL
    rows = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:  # the line being written when the run stopped
                break
    return rows


def planned(points: list[dict], impls: list[str], *, min_time_s: float = 0.1, min_samples: int = 3, rounds: int = 1,
            interference: bool = True, memory: bool = True) -> "_Plan":
    """What :func:`sweep` will do with these arguments, and its predicted seconds (``total_s``): the sweep
    and every check after it, each phase's points in it (:class:`_Plan`)."""
    repeatable = _repeatable(points)
    check_auto = "auto" in impls and any(impl in BACKEND_NAMES for impl in impls) and bool(repeatable)
    beside = [peer for peer in AUTO_CHECK_PEERS if peer in impls] if check_auto else []
    estimate = Estimate(min_time_s, min_samples)
    short, fresh = _short_phases_of(points, impls)
    return _Plan(points, impls, estimate, rounds, repeatable if check_auto else [], beside,
                 _interference_points(points) if interference else [],
                 _busy_points(points, estimate) if interference else [],
                 short=short, fresh=fresh, reread=_memory_points(points) if memory else [])


def sweep(points: list[dict], impls: list[str], *, min_time_s: float = 0.1, min_samples: int = 3,
          progress: bool = True, interference: bool = True, memory: bool = True, quick_peak: bool = False,
          rounds: int = 1, command: str | None = None, grid: str | None = None, journal: Path | None = None,
          done: list[dict] = ()) -> Run:
    """Time every implementation on every point, ``rounds`` times; measure the peak, the interference
    and (``memory``) a few points with memory reused.

    On a shared virtual machine the same process can run slower for minutes at a time; with several
    rounds the report keeps each measurement's best round (all rounds are in the rows).  ``journal``: a
    file each row of the sweep is appended to as it is measured; ``done``: rows of an interrupted sweep
    of the same points (its journal), which are kept and not measured again.
    """
    if not impls or not points:
        raise ValueError("nothing to time: " + ("no implementations" if not impls else "no points"))
    started = time.perf_counter()
    load = stability.OtherLoad()
    isolation = "each implementation timed in a worker process of its own, one after another"
    if any(p.get("isolate") for p in points):
        isolation += "; points marked isolate (out of core) each in a worker of its own"
    meta = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "command": command, "grid": grid,
            "machine": {**machine_info(), **code_version(), "peers": peer_versions(impls)},
            "memory_condition": "allocator as is",
            "reused_environment": WORKER_ENV,
            "inherited_environment": [label(p) for p in points if p.get("env") == "inherited"],
            "isolation": isolation,
            "min_time_s": min_time_s, "min_samples": min_samples, "rounds": rounds, "implementations": impls,
            "peak": measure_peak(sorted({p["dtype"] for p in points}), quick=quick_peak),
            "params": _params.in_force()}
    if "auto" in impls:  # what auto's workers decide from (each loads the same wisdom file and models)
        meta["auto"] = _auto.knowledge()
    plan = planned(points, impls, min_time_s=min_time_s, min_samples=min_samples, rounds=rounds,
                   interference=interference, memory=memory)
    meta["predicted_s"] = round(plan.total_s, 1)  # the progress bar's prediction, to set against duration_s
    bar = _Progress(plan.total_s, plan.count, progress)
    run = Run(meta, list(done))
    measured = {(_key(row), row.get("round")) for row in done}
    if done:
        meta["resumed_rows"] = len(done)
    if journal is not None:  # what it holds from before, whole lines only (a torn last line dropped)
        Path(journal).write_text("".join(json.dumps(row, default=str) + "\n" for row in done))
    for r in range(rounds):  # the order rotates, so no implementation always runs at the same time
        for impl in impls[r % len(impls):] + impls[:r % len(impls)]:
            bar.phase(f"round {r + 1}/{rounds}: {impl}")
            for job in _jobs(points):
                job = [p for p in job if ((impl,) + _point_key(p), r + 1) not in measured]
                if not job:
                    continue
                rows = _work([impl], job, min_time_s, min_samples, env=worker_env(impl),
                             on_row=_journaled(bar.worker(process_s([impl]), plan.seconds), journal, r + 1))
                run.rows += [{**row, "round": r + 1} for row in rows]
        bar.through(plan.round_s * (r + 1))
    if plan.checked:
        bar.phase("auto beside the fastest backend")
        meta["auto_check"] = auto_check(plan.checked, run.rows, min_time_s, min_samples, peers=plan.beside,
                                        on_row=lambda row: bar.tick(plan.seconds(row, check=True)))
        bar.through(plan.round_s * rounds + plan.check_s)
    if plan.short or plan.fresh:
        _short_phases(meta, plan.short, plan.fresh, min_time_s, min_samples, plan, bar)
    if plan.chosen:
        bar.phase("interference check")
        meta["interference"] = interference_check(points, impls, run.rows, min_time_s, min_samples,
                                                  on_row=bar.worker(process_s(impls), plan.seconds))
    if plan.loaded:
        bar.phase("busy-process check")
        meta["busy"] = busy_check(plan.loaded, impls, min_time_s, min_samples,
                                  on_row=lambda row: bar.tick(plan.busy_row_s.get(_key(row), 0.0)))
    if plan.reread:
        bar.phase("memory: allocator as is and reused")
        meta["memory"] = memory_check(plan.reread, impls, min_time_s, min_samples,
                                      on_row=lambda impl: bar.worker(process_s([impl]), plan.seconds))
    bar.close()
    meta["other_load"] = load.result()
    meta["duration_s"] = round(time.perf_counter() - started, 1)  # where the grids' time estimates come from
    # the peak again: a machine whose speed changed during the run shows it (seconds, after the progress bar)
    meta["peak_drift"] = stability.peak_drift(meta["peak"], measure_peak(sorted({p["dtype"] for p in points}),
                                                                         quick=quick_peak))
    return run


def _journaled(on_row, journal: Path | None, round_: int):
    """``on_row`` that first appends the row (with its round) to ``journal``, flushed, where there is one."""
    if journal is None:
        return on_row

    def record(row):
        with open(journal, "a") as file:
            file.write(json.dumps({**row, "round": round_}, default=str) + "\n")
        if on_row:
            on_row(row)
    return record


def _fastest_ours(rows) -> dict:
    """``{point key: (seconds, backend)}``: the fastest of our backends at each point."""
    fastest = {}
    for r in rows:
        if r["status"] == "ok" and r["impl"] in BACKEND_NAMES:
            key = _key(r)[1:]
            if key not in fastest or r["median_s"] < fastest[key][0]:
                fastest[key] = (r["median_s"], r["impl"])
    return fastest


#: Rounds of auto's check: auto and its partner each timed this many times, alternating, in workers of their own.
CHECK_ROUNDS = 3


def auto_check(points, rows, min_time_s, min_samples, peers=(), on_row=None) -> list[dict]:
    """Auto's regret per point, timed again beside the fastest of our backends: ``auto_s / fastest_s``.

    The sweep's best-of-rounds times of auto and of the fastest backend come from different
    minutes; on a shared machine one can land in a slow stretch and the other not, whatever auto
    chose.  So after the sweep, auto and the backend that was fastest at the point are timed again,
    each in a worker process of its own (one backend's spinning threads must not slow the other, as
    they would in one process), in :data:`CHECK_ROUNDS` alternating rounds, and each keeps its best
    round.  At signal points auto is timed the same way beside each of the ``peers`` (scipy: auto's
    speed target is set against it), giving ``<peer>_s`` and ``auto_beside_<peer>_s``.
    """
    fastest = _fastest_ours(rows)
    partners = {}  # the other half of each pair -> its points
    for point in points:
        key = _point_key(point)
        if key in fastest:
            partners.setdefault(fastest[key][1], []).append(point)
            for peer in _peers_at(point, peers):
                partners.setdefault(peer, []).append(point)
    timed = {}  # (partner, impl, point key) -> the best round's row
    for partner, group in partners.items():
        for _ in range(CHECK_ROUNDS):
            for impl in ("auto", partner):
                for r in _work([impl], group, min_time_s, min_samples, on_row=on_row):
                    best = timed.get((partner,) + _key(r))
                    if r["status"] == "ok" and (best is None or r["median_s"] < best["median_s"]):
                        timed[(partner,) + _key(r)] = r
    checks = []
    for point in points:
        key = _point_key(point)
        impl = fastest.get(key, (None, None))[1]
        auto, best = timed.get((impl, "auto") + key), timed.get((impl, impl) + key)
        if auto and best:
            check = {**dict(zip(("api", "shape", "pass", "dtype", "mode"), key, strict=True)), "fastest": impl,
                     "chose": auto["chose"], "auto_s": auto["median_s"], "fastest_s": best["median_s"],
                     "ratio": auto["median_s"] / best["median_s"]}
            for peer in peers:
                beside, other = timed.get((peer, "auto") + key), timed.get((peer, peer) + key)
                if beside and other:
                    check.update({f"{peer}_s": other["median_s"], f"auto_beside_{peer}_s": beside["median_s"]})
            checks.append(check)
    return checks


#: The pair of the short-call check: ``conv1dbench.convolve`` as a user calls it, and ``numpy.convolve``.
SHORT_PAIR = ("auto", "numpy")
#: Fresh processes timed for the import and the first call (after one that fills Numba's cache), and
#: the call they time: ``conv1dbench.convolve(x, w)`` on N = 1000 float64 samples, K = 3.
FRESH_PROCESSES = 3
FRESH_CALL = {"N": 1000, "K": 3, "dtype": "float64"}
#: What a fresh process runs (``python -c``): the imports timed, with numpy first so that the second
#: is conv1dbench's own; the first and second call; then warm calls (the median of five loops).
FRESH_CODE = """\
import time
t0 = time.perf_counter()
import numpy as np
t1 = time.perf_counter()
import conv1dbench as cb
t2 = time.perf_counter()
rng = np.random.default_rng(0)
x, w = rng.standard_normal({N}).astype("{dtype}"), rng.standard_normal({K}).astype("{dtype}")
t3 = time.perf_counter()
cb.convolve(x, w)
t4 = time.perf_counter()
cb.convolve(x, w)
t5 = time.perf_counter()
loops = []
for _ in range(5):
    start = time.perf_counter()
    for _ in range(1000):
        cb.convolve(x, w)
    loops.append((time.perf_counter() - start) / 1000)
import json
print(json.dumps({{"import_numpy_s": t1 - t0, "import_conv1dbench_s": t2 - t1, "first_call_s": t4 - t3,
                  "second_call_s": t5 - t4, "warm_call_s": sorted(loops)[2]}}))
"""


def _short_phases_of(points, impls) -> tuple[list[dict], int]:
    """The short-call check's points (where auto and numpy are both timed) and the number of fresh
    processes (where auto is timed on a grid with short calls)."""
    short = short_points(points) if "auto" in impls else []
    return (short if all(impl in impls for impl in SHORT_PAIR) else []), (FRESH_PROCESSES if short else 0)


def _short_phases(meta, short, fresh, min_time_s, min_samples, plan, bar) -> None:
    """The short-call check and the fresh processes, into ``meta`` (``short_calls``, ``fresh_process``)."""
    start = bar.done_s
    if short:
        bar.phase("short calls beside numpy.convolve")
        meta["short_calls"] = short_call_check(short, min_time_s, min_samples,
                                               on_row=bar.worker(process_s(list(SHORT_PAIR)), plan.short_seconds))
        bar.through(start + plan.short_s)
    if fresh:
        bar.phase("fresh processes: import and first call")
        meta["fresh_process"] = fresh_process_check(fresh)
        bar.tick(plan.fresh_s)
        bar.through(start + plan.short_s + plan.fresh_s)


def short_call_check(points, min_time_s, min_samples, on_row=None) -> list[dict]:
    """``conv1dbench.convolve(x, w)`` (auto, as a user calls it) against ``numpy.convolve(x, w)`` at the
    short-call points, timed in one worker, in turn sample by sample (as auto's check is), so that a
    slow stretch of the machine hits both alike; the ratio against the target of :data:`SHORT_TARGETS`.
    """
    timed = {}
    for r in _work(list(SHORT_PAIR), points, 2 * min_time_s, min_samples, on_row=on_row, interleave=True):
        if r["status"] == "ok":
            timed[_key(r)] = r
    checks = []
    for point in points:
        ours, numpy = (timed.get((impl,) + _point_key(point)) for impl in SHORT_PAIR)
        if ours and numpy:
            checks.append(short_call_row(point, ours, numpy))
    return checks


def short_call_row(point: dict, ours: dict, numpy: dict) -> dict:
    """One point of the short-call check from the rows of its pair: the times, their ratio, the target."""
    ratio = ours["median_s"] / numpy["median_s"]
    target = SHORT_TARGETS[point["N"]]
    return {"shape": label(point), "N": point["N"], "K": point["K"], "dtype": point["dtype"], "mode": point["mode"],
            "chose": ours.get("chose"), "convolve_s": ours["median_s"], "numpy_s": numpy["median_s"],
            "ratio": ratio, "target": target, "met": bool(ratio <= target)}


def fresh_process_check(processes: int = FRESH_PROCESSES) -> dict:
    """``import conv1dbench`` and the first calls in fresh processes, as a user's script meets them.

    One process first fills Numba's on-disk cache where it is empty (its numbers are not kept); then
    ``processes`` more each time the imports (numpy first, so the second number is conv1dbench's
    own), the first call (its backend's compiled code loaded from the cache), the second (the
    shortcut's, loaded too) and warm calls.  Medians over the processes, and each process's numbers.
    They run with the environment as it is (not :data:`WORKER_ENV`): a user's process has no such settings.
    """
    code = FRESH_CODE.format(**FRESH_CALL)
    samples = []
    for index in range(processes + 1):
        done = fresh_python(code)
        if done.returncode != 0:
            return {**FRESH_CALL, "failed": f"exited with {done.returncode}: {done.stderr.strip()[-300:]}"}
        if index:  # the first one only warmed the cache
            samples.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {**FRESH_CALL, **fresh_medians(samples), "processes": samples}


def fresh_python(code: str, env: dict | None = None, timeout: float = 300) -> subprocess.CompletedProcess:
    """``code`` run by a fresh Python process, with the environment as it is plus ``env``; its output
    captured.  With :func:`tool_output`, the one way besides the workers that the package and its benchmark
    scripts start a process."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          timeout=timeout, env={**os.environ, **this_package(), **(env or {})})


def this_package() -> dict:
    """The environment that makes a child process import the conv1dbench this process runs: its folder
    first on ``PYTHONPATH``, and not the working folder before it (``PYTHONSAFEPATH``; ``-m`` and ``-c``
    would put it first). A run of a snapshot started from a checkout times the snapshot in every worker."""
    root = str(Path(__file__).resolve().parents[2])
    rest = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p and p != root]
    return {"PYTHONPATH": os.pathsep.join([root, *rest]), "PYTHONSAFEPATH": "1"}


def code_version() -> dict:
    """The code that ran: ``commit`` (git's HEAD where the package is a checkout, else nothing) and ``dirty``
    (whether its tracked files differ from it: a run of uncommitted code says so)."""
    here = str(Path(__file__).resolve().parent)
    try:
        commit = tool_output(["git", "-C", here, "rev-parse", "HEAD"], timeout=10).strip()
        status = tool_output(["git", "-C", here, "status", "--porcelain", "--untracked-files=no"], timeout=10)
    except (OSError, RuntimeError, subprocess.SubprocessError):
        return {}
    return {"commit": commit, "dirty": bool(status.strip())}


def tool_output(argv: list[str], timeout: float = 300) -> str:
    """What a command-line tool (``argv``: ``llvm-mca`` for ``benchmarks/tile_mca.py``) prints; an error
    naming it and what it said where it fails."""
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=timeout)
    if done.returncode:
        raise RuntimeError(f"{argv[0]} exited with {done.returncode}: {done.stderr[-2000:]}")
    return done.stdout


def fresh_medians(samples: list[dict]) -> dict:
    """The median of each number over the fresh processes' ``samples``."""
    return {name: sorted(s[name] for s in samples)[len(samples) // 2] for name in samples[0]} if samples else {}


def _peers_at(point: dict, peers) -> list[str]:
    """The peers timed beside auto at ``point``: at signal points, those that run there."""
    return [peer for peer in peers if point["api"] == "signal" and not skip_reason(peer, point)]


def interference_check(points, impls, rows, min_time_s, min_samples, on_row=None) -> list[dict]:
    """Time one point per API with every implementation in one shared process; compare with the sweep.

    Points timed once or in a worker of their own (out of core) are left out: they take minutes each
    and share a process with nothing by design.
    """
    chosen = _interference_points(points)
    if not chosen:
        return []
    shared = _work(impls, chosen, min_time_s, min_samples, on_row=on_row)
    isolated = {}
    for r in sorted((r for r in rows if r["status"] == "ok"), key=lambda r: -r["median_s"]):
        isolated[_key(r)] = r  # the best round last, so it stays
    report = []
    for r in shared:
        alone = isolated.get(_key(r))
        if r["status"] == "ok" and alone:
            report.append({"impl": r["impl"], "point": f"{r['api']} {r['shape']} {r['pass']} {r['dtype']} {r['mode']}",
                           "isolated_s": alone["median_s"], "shared_s": r["median_s"],
                           "ratio": r["median_s"] / alone["median_s"]})
    return report


def memory_check(points, impls, min_time_s, min_samples, on_row=None) -> list[dict]:
    """Time ``points`` with the allocator as is and with memory reused, per implementation; the ratio.

    For each implementation, two workers one after the other: the environment as it is and a fresh
    result per call (the sweep's condition), then :data:`WORKER_ENV` and, for our backends, ``out=``
    (the peers take none).  ``on_row(impl)`` gives the progress callback of one worker.
    """
    checks = []
    for impl in impls:
        timed = {}
        for condition, job in (("as_is", points), ("reused", [{**p, "memory": REUSED} for p in points])):
            for r in _work([impl], job, min_time_s, min_samples, on_row=on_row(impl) if on_row else None):
                if r["status"] == "ok":
                    timed.setdefault(_key(r), {})[condition] = r["median_s"]
        for key, times in timed.items():
            if len(times) == 2:
                checks.append({"impl": impl, "point": " ".join(str(k) for k in key[1:]), "as_is_s": times["as_is"],
                               "reused_s": times["reused"], "ratio": times["reused"] / times["as_is"]})
    return checks


def _memory_points(points: list[dict]) -> list[dict]:
    """The points of the memory check: the grid's :data:`MEMORY_POINTS`, else the interference check's."""
    chosen = [p for p in _repeatable(points) if suite(p) == "cpu"
              and (p["api"], label(p), p["pass"], p["mode"]) in MEMORY_POINTS]
    return chosen or [p for p in _interference_points(points) if suite(p) == "cpu"]


def _interference_points(points: list[dict]) -> list[dict]:
    """The points of the interference check: the middle repeatable point of each API."""
    chosen = []
    for api in ("signal", "layer"):
        candidates = [p for p in _repeatable(points) if p["api"] == api]
        if candidates:
            chosen.append(candidates[len(candidates) // 2])
    return chosen


def busy_check(points, impls, min_time_s, min_samples, on_row=None) -> list[dict]:
    """Time ``points`` with each implementation alone and in a busy process, under each of :data:`BUSY_CONDITIONS`.

    Each implementation gets a worker of its own, as in the sweep, so that the only thread pools
    beside it are those of the busy loop's NumPy, SciPy and BLAS calls (:mod:`conv1dbench.harness.busy`).
    One entry per (condition, implementation, point): the call alone and in the loop, and the BLAS
    product alone and right after the call, in seconds, and their ratios.
    """
    checks = []
    for condition, env in BUSY_CONDITIONS.items():
        for impl in impls:
            for r in _work([impl], points, min_time_s, min_samples, on_row=on_row, busy=True, env=env):
                if r["status"] != "ok":
                    continue
                checks.append({"condition": condition, "impl": impl, "chose": r.get("chose"),
                               "point": f"{r['api']} {r['shape']} {r['pass']} {r['dtype']} {r['mode']}",
                               **{k: r[k] for k in ("alone_s", "busy_s", "product_s", "product_after_s", "rounds")},
                               "ratio": r["busy_s"] / r["alone_s"],
                               "product_ratio": r["product_after_s"] / r["product_s"]})
    return checks


def _busy_points(points: list[dict], estimate: Estimate) -> list[dict]:
    """The busy-process check's points: single signals whose fastest call is predicted nearest each of
    :data:`BUSY_CALL_S` (distinct), and the interference check's layer point."""
    signals = [p for p in _repeatable(points) if p["api"] == "signal" and p.get("batch", 1) == 1]
    chosen = []
    for target in BUSY_CALL_S if signals else ():
        best = min(signals, key=lambda p: abs(math.log(estimate.fastest_s(p) / target)))
        if best not in chosen:
            chosen.append(best)
    return chosen + [p for p in _interference_points(points) if p["api"] == "layer"]


class _Plan:
    """A sweep's predicted seconds (:mod:`conv1dbench.harness.estimate`), per row and per phase.

    ``row_s``: each sweep row's (by :func:`_key`; the interference check's rows are the same
    measurements); ``round_s``: a round, its workers' start-up included; ``check_row_s``: each row of
    auto's check, by point (a pair's prediction, shared by its two rows; the partner is the backend
    predicted fastest, as the sweep has not said yet); ``check_s``: the check; ``memory_s``: the
    memory check (two workers per implementation over ``reread``, rows predicted as the sweep's);
    ``total_s``: the whole run after the peak.  ``count``: the measurements, for the bar's postfix.

    It keeps each phase's points as given: ``checked`` (auto's check, none where auto is not checked),
    ``beside`` (the peers auto is checked beside), ``chosen`` (the interference check), ``loaded`` (the
    busy-process check), ``short`` and ``fresh`` (the short-call check, the fresh processes), ``reread``.
    """

    def __init__(self, points, impls, estimate: Estimate, rounds: int, checked: list[dict], beside: list[str],
                 chosen: list[dict], loaded: list[dict] = (), short: list[dict] = (), fresh: int = 0,
                 reread: list[dict] = ()):
        self.checked, self.beside, self.chosen, self.loaded = checked, beside, chosen, loaded
        self.short, self.fresh, self.reread = short, fresh, reread
        self.row_s = {(impl,) + _point_key(p): estimate.measurement_s([impl], p) for impl in impls for p in points}
        self.round_s = sum(self.row_s.values()) + len(_jobs(points)) * sum(process_s([impl]) for impl in impls)
        ours = [impl for impl in impls if impl in BACKEND_NAMES]
        pairs = {}  # point key -> seconds of its pairs, and their rows (two a pair)
        partners = set(beside)
        for p in checked:  # auto and each partner, CHECK_ROUNDS times each (auto_check)
            best = min(ours, key=lambda impl: estimate.call_s(impl, p))
            partners.add(best)
            with_auto = [best] + _peers_at(p, beside)
            pairs[_point_key(p)] = (CHECK_ROUNDS * sum(estimate.measurement_s(["auto"], p)
                                                       + estimate.measurement_s([partner], p)
                                                       for partner in with_auto), 2 * CHECK_ROUNDS * len(with_auto))
        rows = sum(n for _, n in pairs.values())
        start_s = (CHECK_ROUNDS * sum(process_s(["auto"]) + process_s([partner]) for partner in partners)
                   if pairs else 0.0)
        self.check_s = sum(s for s, _ in pairs.values()) + start_s
        # the workers' start-up spread over the rows: which worker times which point is known after the sweep only
        self.check_row_s = {key: (s + n * start_s / rows) / n for key, (s, n) in pairs.items()}
        interference_s = (process_s(impls) + sum(self.row_s[(impl,) + _point_key(p)] for impl in impls for p in chosen)
                          if chosen else 0.0)
        # the busy check: each row its sweep measurement, the product alone and the loop; each worker's start
        self.busy_row_s = {(impl,) + _point_key(p): self.row_s[(impl,) + _point_key(p)]
                           + busy_predicted_s(estimate.call_s(impl, p), estimate.min_time_s, estimate.min_samples)
                           + process_s([impl]) / len(loaded) for impl in impls for p in loaded}
        busy_s = len(BUSY_CONDITIONS) * sum(self.busy_row_s.values())
        self._short(estimate, short, fresh)
        self.memory_s = sum(2 * (process_s([impl]) + sum(self.row_s[(impl,) + _point_key(p)] for p in reread))
                            for impl in impls) if reread else 0.0
        self.total_s = (rounds * self.round_s + self.check_s + interference_s + busy_s + self.short_s + self.fresh_s
                        + self.memory_s)
        self.count = (rounds * len(points) * len(impls) + rows + len(chosen) * len(impls)
                      + len(BUSY_CONDITIONS) * len(loaded) * len(impls) + 2 * len(short) + bool(fresh)
                      + 2 * len(reread) * len(impls))

    def _short(self, estimate: Estimate, short: list[dict], fresh: int) -> None:
        """``short_row_s`` (each row of the short-call check, by point: half its pair's), ``short_s`` (the
        check, its worker's start-up included) and ``fresh_s`` (the fresh processes)."""
        pair = list(SHORT_PAIR)
        self.short_row_s = {_point_key(p): estimate.measurement_s(pair, p, interleave=True,
                                                                  min_time_s=2 * estimate.min_time_s) / 2
                            for p in short}
        self.short_s = 2 * sum(self.short_row_s.values()) + (process_s(pair) if short else 0.0)
        self.fresh_s = fresh_processes_s(fresh + 1) if fresh else 0.0  # the one that warms the cache too

    def short_seconds(self, row: dict) -> float:
        """The predicted seconds of a row of the short-call check."""
        return self.short_row_s.get(tuple(row.get(k) for k in ("api", "shape", "pass", "dtype", "mode")), 0.0)

    def seconds(self, row: dict, check: bool = False) -> float:
        """The predicted seconds of the measurement ``row`` reports (of auto's check, if ``check``)."""
        key = tuple(row.get(k) for k in ("impl", "api", "shape", "pass", "dtype", "mode"))  # _key, failed rows too
        return self.check_row_s.get(key[1:], 0.0) if check else self.row_s.get(key, 0.0)


class _Progress:
    """The run's progress bar, over predicted seconds: it advances by each measurement's prediction, and
    its time left is the predicted seconds left times how the run so far compares with its predictions.

    That comparison is the seconds elapsed over the predicted seconds done, with two corrections that
    a fresh clone's first run needs (tested in ``tests/test_harness.py``):

    - **One-off seconds are not a rate.** A measurement's first call beyond its later calls (Numba
      compiling the kernels on a cold cache: 170 s of a 26-minute run) is left out of the elapsed
      seconds that are scaled up, since the rest of the run will not pay it again.
    - **The predictions count until the run has said much.** Each implementation's predictions are off
      by a factor of its own (that run: im2col's by 3.6x, the FFT engines' by 1.4x, ipp's by 1.1x), and the
      run takes one implementation at a time, so the first one's factor alone is a poor guess of the
      rest's. The comparison starts from the predictions as if :data:`PRIOR_SHARE` of the run had gone
      exactly as predicted: a fresh clone's default run, its log replayed, then read 21-30 minutes
      in all from its second minute on, for 25.7, where the plain ratio read up to 55.
    """

    #: The share of the predicted run that counts as having gone as predicted (see the class).
    PRIOR_SHARE = 0.2

    def __init__(self, total_s: float, count: int, enabled: bool):
        from tqdm import tqdm  # import time: only a sweep with its bar needs it

        progress = self

        class Bar(tqdm):
            @property
            def format_dict(self):
                found = super().format_dict
                found["rate"] = progress.rate(found["n"], found["elapsed"])
                return found

        self.prior_s = self.PRIOR_SHARE * total_s
        self.one_off_s = 0.0
        self.bar = Bar(total=total_s, disable=not enabled, unit="s", dynamic_ncols=True, file=sys.stderr,
                       smoothing=0, miniters=0, bar_format="{l_bar}{bar}| [{elapsed}<{remaining}]{postfix}")
        self.done_s, self.count, self.measured, self.text = 0.0, count, 0, ""

    def rate(self, done_s: float, elapsed_s: float) -> float:
        """Predicted seconds done per second elapsed, as the time left is reckoned (see the class)."""
        steady_s = max(0.0, elapsed_s - self.one_off_s)  # the elapsed seconds that may be scaled up
        return (done_s + self.prior_s) / ((steady_s + self.prior_s) or 1.0)

    def phase(self, text: str) -> None:
        self.text = text
        self._postfix(refresh=True)

    def tick(self, seconds: float, measurements: int = 1) -> None:
        self.measured += measurements
        self.done_s += seconds
        if measurements:
            self._postfix()
        # the sum of the predictions is the total; rounding must not carry the bar past it
        self.bar.update(min(seconds, max(0.0, self.bar.total - self.bar.n)))

    def worker(self, start_s: float, seconds) -> Callable[[dict], None]:
        """The ``on_row`` of one worker: its start-up ``start_s`` done with its first row, then each
        row's ``seconds(row)``."""
        pending = [start_s]

        def on_row(row: dict) -> None:
            if pending:
                self.tick(pending.pop(), measurements=0)
            first, call = row.get("first_call_s"), row.get("median_s")
            if first is not None and call is not None:
                self.one_off_s += max(0.0, first - call)
            self.tick(seconds(row))
        return on_row

    def through(self, mark_s: float) -> None:
        """A phase is done: the bar at its predicted end (a measurement the phase did not run, too)."""
        if mark_s > self.done_s:
            self.tick(mark_s - self.done_s, measurements=0)

    def _postfix(self, refresh: bool = False) -> None:
        self.bar.set_postfix_str(f"{self.text}; {self.measured}/{self.count} measurements", refresh=refresh)

    def close(self) -> None:
        self.bar.close()
