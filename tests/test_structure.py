"""The package's structure, checked: imports flow one way, backends are known only to the registry,
the harness and auto agree on problem keys.

The layers are docs/contributing.md's (section "Architecture"); a new module must be placed in one here.
"""

import ast
import pathlib

import numpy as np
import pytest

from conv1dbench import _auto
from conv1dbench._registry import BACKEND_NAMES
from conv1dbench.harness import cases, grid
from conv1dbench.harness.tune import measurements_from_rows

PACKAGE = pathlib.Path(__file__).resolve().parent.parent / "conv1dbench"

#: Lowest first; a module may import modules of its own layer or below, never above.
LAYERS = [
    ("planner", ["_plan", "_kinds", "timing"]),
    ("backends", ["_backends", "_core", "_jitcache", "_workspace", "_threads", "_planning", "_params", "_backends.*"]),
    ("registry", ["_registry"]),
    ("cost model and wisdom", ["machine", "_model", "_wisdom"]),
    ("selector", ["_select"]),
    ("auto", ["_auto"]),
    ("front ends", ["_signal", "_layer", "_device", "_matrix"]),
    ("Dask", ["_dask"]),
    ("public functions", ["_api", "_fastest"]),
    ("harness", ["harness", "harness.*"]),
    ("package and command line", ["", "cli", "__main__"]),
]


def _modules() -> dict[str, pathlib.Path]:
    """Every module of the package by dotted name relative to it ('' for the package itself)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


MODULES = _modules()


def _layer_of(name: str) -> int:
    for index, (_, patterns) in enumerate(LAYERS):
        for pattern in patterns:
            if name == pattern or (pattern.endswith(".*") and name.startswith(pattern[:-1])):
                return index
    raise AssertionError(f"module conv1dbench.{name} is in no layer of tests/test_structure.py (and "
                         "docs/contributing.md)")


def _imports(name: str) -> list[tuple[str, int, bool]]:
    """``(imported module, line, deferred)`` for every import of a package module in module ``name``."""
    path = MODULES[name]
    tree = ast.parse(path.read_text())
    top = {id(node) for node in tree.body}
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[:len(package) - node.level + 1] if node.level > 1 else package
                base = ["conv1dbench"] + base + ([node.module] if node.module else [])
            else:
                base = [node.module]
            base = ".".join(base)
            targets = [f"{base}.{alias.name}" for alias in node.names]
            targets = [t if t.removeprefix("conv1dbench.") in MODULES else base for t in targets]
        else:
            continue
        for target in targets:
            if target == "conv1dbench" or target.startswith("conv1dbench."):
                found.append((target.removeprefix("conv1dbench").removeprefix("."), node.lineno, id(node) not in top))
    return found


def test_every_module_has_a_layer_and_imports_flow_down():
    wrong = []
    for name in MODULES:
        for target, line, _ in _imports(name):
            if target in MODULES and _layer_of(target) > _layer_of(name):
                wrong.append(f"conv1dbench.{name}:{line} imports conv1dbench.{target}, a higher layer "
                             f"({LAYERS[_layer_of(target)][0]} above {LAYERS[_layer_of(name)][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_import_cycle_deferred_imports_included():
    graph = {name: {t for t, _, _ in _imports(name) if t in MODULES and t != name} for name in MODULES}
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for nxt in sorted(graph[node]):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join(stack[stack.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_the_library_below_the_harness_never_imports_it():
    harness = _layer_of("harness")
    wrong = [f"conv1dbench.{name}:{line} imports conv1dbench.{target}" for name in MODULES
             if _layer_of(name) < harness for target, line, _ in _imports(name) if target.startswith("harness")]
    assert not wrong, "\n".join(wrong)


def test_deferred_imports_say_why():
    """A deferred import is for import time or an optional dependency, and its comment says which."""
    silent = []
    for name, path in MODULES.items():
        lines = path.read_text().splitlines()
        tree = ast.parse(path.read_text())
        top = {id(node) for node in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)) and id(node) not in top:
                said = " ".join(lines[max(0, node.lineno - 3):node.end_lineno]).lower()
                if "import time" not in said and "optional" not in said:
                    silent.append(f"conv1dbench.{name}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, "deferred imports without a comment saying why (import time / optional):\n" + "\n".join(silent)


#: Constants that name a library, not a backend (the Numba package's version in machine facts).
LIBRARY_NAMES = {("machine", "numba"), ("_wisdom", "numba")}


def test_only_the_backends_and_the_registry_know_backends_by_name():
    """No string constant outside conv1dbench/_backends and the registry equals a backend's name."""
    named = []
    for name, path in MODULES.items():
        if name.startswith("_backends") or name == "_registry":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if (isinstance(node, ast.Constant) and node.value in BACKEND_NAMES
                    and (name, node.value) not in LIBRARY_NAMES):
                named.append(f"conv1dbench.{name}:{node.lineno}: {node.value!r}")
    assert not named, "backends named outside their module and the registry:\n" + "\n".join(named)


@pytest.mark.parametrize("harness_point", grid.grid("smoke"), ids=grid.label)
def test_the_key_the_harness_records_is_the_key_auto_looks_up(harness_point, monkeypatch):
    point = harness_point
    looked_up = []
    real = _auto.ranking
    monkeypatch.setattr(_auto, "ranking", lambda problem: looked_up.append(problem.key) or real(problem))
    case = cases.make_case("auto", point, cases.data(point))
    case.call()
    row = {**point, "impl": next(n for n in BACKEND_NAMES if n in cases.implementations()), "status": "ok",
           "median_s": 1e-3}
    recorded = measurements_from_rows([row])
    assert looked_up and set(looked_up) == {grid.problem(point).key}
    assert [m["problem"] for m in recorded] == [grid.problem(point).key_text()]


def test_plans_come_from_a_cache():
    from conv1dbench._plan import plan_layer, plan_signal

    first = plan_signal("convolve", (1000,), (3,), np.dtype(np.float64), np.dtype(np.float64), "same", -1)
    assert plan_signal("convolve", (1000,), (3,), np.dtype(np.float64), np.dtype(np.float64), "same", -1) is first
    layer = plan_layer((2, 4, 100), (8, 4, 3), np.float32, 1, [1, 1], 1, 1)
    assert plan_layer((2, 4, 100), (8, 4, 3), np.float32, 1, (1, 1), 1, 1) is layer


def test_only_the_harness_runner_starts_processes():
    """One runner owns isolation: no other module of the package, nor a benchmark script, starts one."""
    sources = {f"conv1dbench.{name}": path for name, path in MODULES.items()}
    sources.update({f"benchmarks/{p.name}": p for p in (PACKAGE.parent / "benchmarks").glob("*.py")})
    starting = []
    for name, path in sources.items():
        for node in ast.walk(ast.parse(path.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            if any(n.split(".")[0] in ("subprocess", "multiprocessing") for n in names):
                starting.append(f"{name}:{node.lineno}")
    assert set(starting) <= {f"conv1dbench.harness.runner:{n}" for n in range(1, 10_000)}, starting
    assert any(s.startswith("conv1dbench.harness.runner:") for s in starting)
