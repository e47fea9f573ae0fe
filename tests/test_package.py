"""The registry, fastest/auto, the import contract, documentation examples, and backend limits."""

import doctest
import importlib
import json
import os
import pathlib
import re
import subprocess
import sys
import tracemalloc
import warnings

import numpy as np
import pytest
import scipy.signal

import conv1dbench as cb
from conv1dbench import _params, _registry

ROOT = pathlib.Path(__file__).resolve().parent.parent


def test_backends_lists_every_name_with_availability_and_reason():
    report = cb.backends()
    assert list(report) == ["naive", "im2col", "fft", "fftw", "ducc", "numba", "cuda"]
    for name, info in report.items():
        assert set(info) == {"available", "reason"}
        assert isinstance(info["available"], bool)
        assert (info["reason"] is None) == info["available"], name
    if not report["cuda"]["available"]:  # says what is missing, and how to run the simulator instead
        assert "NUMBA_ENABLE_CUDASIM=1" in report["cuda"]["reason"], report["cuda"]["reason"]


def test_unknown_backend_error_lists_the_known_ones():
    with pytest.raises(ValueError) as info:
        cb.correlate([1.0], [1.0], backend="gpu")
    for name in ("'auto'", "'naive'", "'im2col'", "'fft'", "'numba'", "'cuda'"):
        assert name in str(info.value)


def test_import_is_fast_and_lazy():
    code = ("import sys, time, json; import numpy; t = time.perf_counter(); import conv1dbench; "
            "print(json.dumps([time.perf_counter() - t, [m for m in ('numba', 'scipy', 'matplotlib', "
            "'pandas', 'numba.cuda') if m in sys.modules]]))")
    elapsed, heavy = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True,
                                               text=True, check=True).stdout)
    assert heavy == []
    assert elapsed < 0.5


def test_library_use_imports_nothing_of_the_harness(tmp_path):
    """``pip install conv1dbench`` for the library: its calls (auto timing on first sight included) load none
    of what only the harness needs (tqdm, pandas, matplotlib, the harness itself)."""
    code = ("import sys, json, numpy as np, conv1dbench as cb; cb.convolve(np.ones(5000), np.ones(300)); "
            "cb.conv1d(np.ones((2, 4, 50)), np.ones((8, 4, 3)), padding='same'); "
            "cb.conv1d_backward(np.ones((2, 8, 50)), np.ones((2, 4, 50)), np.ones((8, 4, 3)), padding='same'); "
            "print(json.dumps([m for m in sys.modules if m.split('.')[0] in ('tqdm', 'pandas', 'matplotlib') "
            "or m.startswith('conv1dbench.harness')]))")
    env = {**os.environ, "CONV1DBENCH_WISDOM": str(tmp_path / "wisdom.json")}
    done = subprocess.run([sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.splitlines()[-1]) == []


def test_a_broken_backend_is_unavailable_not_fatal(monkeypatch):
    monkeypatch.setitem(_registry.MODULES, "naive", "conv1dbench._backends.does_not_exist")
    monkeypatch.delitem(_registry._reasons, "naive", raising=False)
    monkeypatch.delitem(_registry._modules, "naive", raising=False)
    assert cb.backends()["naive"]["available"] is False
    with pytest.raises(cb.BackendUnavailable, match="does_not_exist"):
        cb.convolve([1.0], [1.0], backend="naive")
    monkeypatch.delitem(_registry._reasons, "naive")  # forget the broken state for later tests
    monkeypatch.delitem(_registry._modules, "naive")


@pytest.mark.parametrize("n, k, dtype, expected", [
    (100_000, 3, np.float64, "numba"),
    (100_000, 15, np.float32, "numba"),
    (100_000, 5_000, np.float64, "fft"),
    (3, 100_000, np.float64, "numba"),        # the shorter operand decides
    (100_000, 5_000, np.int64, "numba"),      # integers: exact direct arithmetic
])
def test_fastest_rule(n, k, dtype, expected, auto_models):
    auto_models({})  # no cost model: the rule decides
    x, w = np.ones(n, dtype), np.ones(k, dtype)
    assert cb.fastest("convolve", x, w) == expected
    name, details = cb.fastest(cb.correlate, x, w, mode="same", explain=True)
    assert name == expected and isinstance(details["rule"], str)


def test_auto_runs_what_fastest_names(monkeypatch):
    ran = []
    real = _registry.get_backend

    def spy(name, dtype):
        ran.append(name)
        return real(name, dtype)

    monkeypatch.setattr("conv1dbench._signal.get_backend", spy)
    for k in (3, 5_000):
        x, w = np.ones(50_000), np.ones(k)
        cb.convolve(x, w)
        assert ran[-1] == cb.fastest("convolve", x, w)


def test_fastest_rejects_unknown_ops_and_arguments():
    with pytest.raises(ValueError, match="unknown op"):
        cb.fastest("fold", [1.0], [1.0])
    with pytest.raises(TypeError):
        cb.fastest("convolve", [1.0], [1.0], bogus=1)


def test_fft_refuses_integers_it_cannot_round_exactly():
    in1 = np.array([2**45, 1], dtype=np.int64)
    with pytest.raises(ValueError, match="2\\*\\*40"):
        cb.convolve(in1, [1, 1], backend="fft")
    np.testing.assert_array_equal(cb.convolve(in1 // 2**10, [1, 1], backend="fft"),
                                  scipy.signal.convolve(in1 // 2**10, [1, 1], method="direct"))


def test_im2col_patch_matrix_stays_within_its_bound():
    rng = np.random.default_rng(0)
    x = rng.standard_normal(300_000).astype(np.float32)
    w = rng.standard_normal(512).astype(np.float32)  # the whole patch matrix would be 614 MB
    tracemalloc.start()
    y = cb.correlate(x, w, "valid", backend="im2col")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < _params.value("im2col.patch_bytes") + 12 * x.nbytes  # the bound plus a few signal-sized buffers
    ref = scipy.signal.correlate(x.astype(np.float64), w.astype(np.float64), "valid", method="fft")
    assert np.abs(y - ref).max() <= 1e-5 * np.abs(x).max() * np.abs(w).sum()


def test_timing_reports_median_spread_and_first_call():
    from conv1dbench.timing import measure
    calls = []
    t = measure(lambda: calls.append(1), min_time_s=0.01, sync=lambda: None)
    assert len(calls) == t.calls + 2  # first call and warm-up are not in the samples
    assert 0 < t.q25_s <= t.median_s <= t.q75_s and t.first_call_s > 0


def test_interleaved_timing_alternates_samples_and_keeps_each_functions_time():
    import time

    from conv1dbench.timing import measure_interleaved
    order = []

    def fast():
        order.append("fast")

    def slow():
        order.append("slow")
        time.sleep(1e-3)

    t_fast, t_slow = measure_interleaved([fast, slow], min_time_s=0.02, min_samples=3, sample_s=1e-3)
    assert t_slow.median_s >= 1e-3 > t_fast.median_s
    assert t_slow.calls == order.count("slow") - 2 and t_fast.calls == order.count("fast") - 2
    samples = order[4:]  # after each one's first call and warm-up
    switches = sum(a != b for a, b in zip(samples, samples[1:], strict=False))
    assert switches == 2 * t_slow.calls - 1  # a sample of each in turn, not all of one then the other


def test_machine_info_names_the_machine_and_versions():
    from conv1dbench.machine import machine_info
    info = machine_info()
    for key in ("cpu", "cores", "python", "numpy", "scipy", "numba"):
        assert info[key], key


@pytest.mark.parametrize("module", ["conv1dbench", "conv1dbench._api", "conv1dbench._auto", "conv1dbench._registry",
                                    "conv1dbench.timing", "conv1dbench._fastest", "conv1dbench._planning",
                                    "conv1dbench._workspace", "conv1dbench._matrix"])
def test_docstring_examples_run(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize("page", [p.name for p in sorted((ROOT / "docs").glob("*.md"))
                                  if "\n>>> " in p.read_text()])
def test_the_documentations_examples_run(page):
    """Every ``>>>`` example of the documentation's pages runs as a doctest (the pages that hold any; the
    README has none: its code is a sketch, run by the test below)."""
    result = doctest.testfile(str(ROOT / "docs" / page), module_relative=False,
                              optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


def test_the_readmes_code_runs(tmp_path, monkeypatch):
    """The README's library use (its ``python`` blocks) runs as written."""
    monkeypatch.setenv("CONV1DBENCH_WISDOM", str(tmp_path / "wisdom.json"))
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)
    assert blocks
    for block in blocks:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # auto's notice that it times on first sight
            exec(compile(block, "README.md", "exec"), {})


def test_the_readme_is_for_users_and_short():
    text = (ROOT / "README.md").read_text()
    assert len(text.encode()) <= 12 * 1024, len(text.encode())
    assert not re.search(r"\bissue \d+", text, re.IGNORECASE)   # the README names no internal issue
    for page in re.findall(r"\]\((docs/[^)#]+)", text):        # every page it links to exists
        assert (ROOT / page).is_file(), page


def test_a_dtype_the_backend_does_not_take_is_a_type_error(monkeypatch):
    naive = importlib.import_module("conv1dbench._backends.naive")
    cb.convolve([1.0], [1.0], backend="naive")  # loaded and available
    monkeypatch.setattr(naive, "DTYPES", frozenset({np.dtype(np.float64)}))
    with pytest.raises(TypeError, match="backend 'naive' does not take dtype complex128; it takes float64"):
        cb.convolve([1j], [1.0], backend="naive")
    with pytest.raises(TypeError, match="does not take dtype float32"):
        cb.conv1d(np.ones((1, 1, 4), np.float32), np.ones((1, 1, 2), np.float32), backend="naive")


def test_the_contract_in_docs_is_the_shared_one():
    """docs/SPEC.md is the repository's copy of the contract; where the shared original sits beside the
    checkout (as in CI), the two are the same."""
    ours = ROOT / "docs" / "SPEC.md"
    assert ours.is_file()
    shared = ROOT.parent / "shared" / "SPEC.md"
    if not shared.is_file():
        pytest.skip("no ../shared/SPEC.md beside this checkout")
    assert ours.read_text() == shared.read_text(), "docs/SPEC.md differs from ../shared/SPEC.md: copy it over"


def test_numba_starts_its_threads_with_a_short_spin_and_leaves_the_environment_as_it_was(monkeypatch):
    """libgomp reads GOMP_SPINCOUNT when Numba loads it: the backend sets it for that moment only, and never
    over the user's own OMP_WAIT_POLICY or GOMP_SPINCOUNT."""
    backend = _registry.module("numba")
    seen = []
    monkeypatch.setattr(backend.numba, "get_num_threads", lambda: seen.append(os.environ.get("GOMP_SPINCOUNT")) or 2)
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    backend._start_threads()
    assert seen == [str(backend.SPIN_COUNT)] and "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    backend._start_threads()
    assert seen[-1] is None and "GOMP_SPINCOUNT" not in os.environ
    monkeypatch.delenv("OMP_WAIT_POLICY")
    monkeypatch.setenv("GOMP_SPINCOUNT", "5")
    backend._start_threads()
    assert seen[-1] == "5" and os.environ["GOMP_SPINCOUNT"] == "5"
