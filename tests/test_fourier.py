"""The FFT engines (``fft``, ``fftw``, ``ducc``): what the registry tests do not see.

The registry's tests run every backend through the whole contract; these pin what is particular to
the engines: FFTW's wisdom kept across processes, transforms never reused for another length,
dtype or layout, kernel spectra cached by content, threads claimed and given back.
"""

import json
import threading
import time

import numpy as np
import pytest
import scipy.fft
import scipy.signal

import conv1dbench as cb
from conv1dbench import _planning, _threads
from conv1dbench._backends import NonFiniteInput, _fourier
from conv1dbench._registry import get_backend
from conv1dbench.harness.runner import fresh_python

ENGINES = ("fft", "fftw", "ducc")


def engine_backend(name):
    if not cb.backends()[name]["available"]:
        pytest.skip(cb.backends()[name]["reason"])
    return get_backend(name, np.dtype(np.float64))


def run_python(code: str, env: dict) -> str:
    result = fresh_python(code, env)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_missing_engines_are_unavailable_with_the_install_command():
    out = run_python("import sys\nsys.modules['pyfftw'] = sys.modules['ducc0'] = None\n"
                     "import json, conv1dbench as cb\nprint(json.dumps(cb.backends()))", {})
    report = json.loads(out)
    assert not report["fftw"]["available"] and "pip install 'conv1dbench[fftw]'" in report["fftw"]["reason"]
    assert not report["ducc"]["available"] and "pip install 'conv1dbench[ducc]'" in report["ducc"]["reason"]
    assert report["fft"]["available"]


WISDOM_PROBE = """
import json, numpy as np, conv1dbench as cb
from conv1dbench._backends import fftw
x, w = np.random.default_rng(0).standard_normal(3000), np.ones(40)
y = cb.convolve(x, w, backend="fftw")
plans = [t for t in fftw.ENGINE._local.cache.values()]
print(json.dumps({"from_wisdom": [p.from_wisdom for p in plans], "measured": [p.measured for p in plans],
                  "error": float(np.abs(y - np.convolve(x, w)).max())}))
"""


def test_fftw_wisdom_round_trip(tmp_path):
    """A measured plan's wisdom lands in conv1dbench's wisdom file; a second process plans from it and
    measures nothing; another machine's fingerprint, or no file, gets none of it."""
    pytest.importorskip("pyfftw")
    env = {"CONV1DBENCH_WISDOM": str(tmp_path / "wisdom.json"), "CONV1DBENCH_FFT_PLANNING": "measure"}
    first = json.loads(run_python(WISDOM_PROBE, env))
    assert first["error"] < 1e-9 and any(first["measured"])  # (a later plan may reuse an earlier one's wisdom)
    raw = json.loads((tmp_path / "wisdom.json").read_text())
    (entry,) = raw["machines"].values()
    kept = entry["extras"]["fftw"]
    assert kept["pyfftw"] and len(kept["wisdom"]) == 3
    second = json.loads(run_python(WISDOM_PROBE, env))
    assert second["error"] < 1e-9 and all(second["from_wisdom"]) and not any(second["measured"])

    # Filed under another machine's fingerprint, the same wisdom is never read.
    raw["machines"] = {"0" * 16: entry}
    (tmp_path / "wisdom.json").write_text(json.dumps(raw))
    third = json.loads(run_python(WISDOM_PROBE, env))
    assert any(third["measured"])


def test_cheap_planning_writes_no_wisdom(tmp_path):
    pytest.importorskip("pyfftw")
    env = {"CONV1DBENCH_WISDOM": str(tmp_path / "wisdom.json"), "CONV1DBENCH_FFT_PLANNING": "estimate"}
    probe = json.loads(run_python(WISDOM_PROBE, env))
    assert probe["error"] < 1e-9 and not any(probe["measured"])
    assert not (tmp_path / "wisdom.json").exists()


@pytest.mark.parametrize("name", ENGINES)
def test_transforms_are_never_reused_for_another_length_dtype_or_layout(name):
    """Interleaved calls of other lengths, dtypes and layouts: each gets transforms of its own, and
    every result stays right (a transform reused across them would give wrong numbers, or fail)."""
    backend = engine_backend(name)
    backend.ENGINE.forget()
    rng = np.random.default_rng(3)
    calls = [((1, 1, 700), (1, 1, 31), np.float64), ((1, 1, 900), (1, 1, 31), np.float64),
             ((1, 1, 700), (1, 1, 31), np.float32), ((1, 1, 700), (1, 1, 31), np.complex128),
             ((4, 1, 700), (1, 1, 31), np.float64), ((1, 2, 700), (3, 2, 31), np.float64),
             ((2, 4, 700), (4, 1, 31), np.float64)]
    cases = []
    for x_shape, w_shape, dtype in calls:
        x = rng.standard_normal(x_shape).astype(dtype)
        w = rng.standard_normal(w_shape).astype(dtype)
        groups = x_shape[1] // w_shape[1]
        cases.append((x, w, groups, cb.conv1d(x, w, padding=30, groups=groups, backend="naive")))
    for x, w, groups, ref in cases + cases[::-1]:
        y = backend.forward(x, w, 30, 30, 1, 1, groups)
        tol = 1e-5 if y.dtype == np.float32 else 1e-12
        assert y.dtype == x.dtype and np.abs(y - ref).max() <= tol * np.abs(x).max() * np.abs(w).sum(-1).sum(-1).max()
    keys = list(backend.ENGINE._local.cache)
    assert len(keys) == len(set(keys)) >= len(calls)


@pytest.mark.parametrize("name", ENGINES)
def test_kernel_spectra_are_cached_by_content(name):
    backend = engine_backend(name)
    _fourier.forget_kernels()
    w = np.arange(1.0, 6.0).reshape(1, 1, 5)
    first = _fourier.kernel_spectra(backend.ENGINE, w, 1, 64, np.dtype(np.float64))
    assert _fourier.kernel_spectra(backend.ENGINE, w.copy(), 1, 64, np.dtype(np.float64)) is first
    assert not first.flags.writeable
    changed = w.copy()
    changed[0, 0, 2] = 0
    other = _fourier.kernel_spectra(backend.ENGINE, changed, 1, 64, np.dtype(np.float64))
    assert other is not first and not np.array_equal(other, first)
    x = np.random.default_rng(1).standard_normal(300)
    np.testing.assert_allclose(cb.convolve(x, changed.ravel(), backend=name), np.convolve(x, changed.ravel()),
                               atol=1e-12 * 20 * np.abs(x).max())


@pytest.mark.parametrize("name", ENGINES)
def test_thread_settings_are_restored(name):
    """After calls that run on several threads, and after one that raises midway, the libraries'
    own thread settings are as they were and the cores are free."""
    backend = engine_backend(name)
    workers = scipy.fft.get_workers()
    fftw_threads = None
    if cb.backends()["fftw"]["available"]:
        import pyfftw

        fftw_threads = pyfftw.config.NUM_THREADS
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((8, 1, 1 << 16)), rng.standard_normal((1, 1, 1023))
    backend.forward(x, w, 1022, 1022, 1, 1, 1)
    x[3, 0, 100] = np.nan
    with pytest.raises(NonFiniteInput):
        backend.forward(x, w, 1022, 1022, 1, 1, 1, finite=True)
    assert not _threads._held.locked()
    assert scipy.fft.get_workers() == workers
    if fftw_threads is not None:
        assert pyfftw.config.NUM_THREADS == fftw_threads


def test_claim_gives_one_thread_while_the_cores_are_held():
    with _threads.claim(4) as first:
        assert first == 4
        with _threads.claim(4) as second:
            assert second == 1
        seen = []
        worker = threading.Thread(target=lambda: seen.append(_threads.claim(4).__enter__()))
        worker.start()
        worker.join()
        assert seen == [1]
    with _threads.claim(4) as again:
        assert again == 4
    with _threads.claim(1) as one:
        assert one == 1 and not _threads._held.locked()


@pytest.mark.parametrize("name", ENGINES)
def test_threads_calling_at_once_get_right_results(name):
    """Dask calls from several threads: each thread's transforms are its own."""
    engine_backend(name)
    rng = np.random.default_rng(5)
    jobs = [(rng.standard_normal(n), rng.standard_normal(k)) for n, k in
            [(20_000, 300), (30_000, 511), (5000, 77), (20_000, 300)] * 2]
    errors = [None] * len(jobs)

    def work(i):
        x, w = jobs[i]
        for _ in range(3):
            y = cb.convolve(x, w, backend=name)
            errors[i] = np.abs(y - scipy.signal.convolve(x, w, method="direct")).max() / (np.abs(x).max()
                                                                                         * np.abs(w).sum())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert max(errors) < 1e-12


def test_planning_effort_is_checked():
    before = cb.configure_fft()
    with pytest.raises(ValueError, match="planning must be one of"):
        cb.configure_fft("quick")
    assert cb.configure_fft("measure") == {"planning": "measure"}
    cb.configure_fft(before["planning"])
    assert _planning.effort() == before["planning"]


def test_kernel_spectra_cache_keeps_to_its_bytes(monkeypatch):
    """Spectra beyond a quarter of the budget are computed, never kept; the cache holds at most its budget."""
    backend = engine_backend("fft")
    _fourier.forget_kernels()
    monkeypatch.setattr(_fourier, "KERNEL_CACHE_BYTES", 4 * 65 * 16)  # four spectra of 65 complex128 bins
    rng = np.random.default_rng(9)
    for _ in range(10):
        _fourier.kernel_spectra(backend.ENGINE, rng.standard_normal((1, 1, 5)), 1, 128, np.dtype(np.float64))
    assert sum(s.nbytes for entries in _fourier._kernels.values() for _, s, _ in entries) <= 4 * 65 * 16
    big = rng.standard_normal((2, 1, 5))  # 2 x 65 bins: more than a quarter of the budget
    first = _fourier.kernel_spectra(backend.ENGINE, big, 1, 128, np.dtype(np.float64))
    assert _fourier.kernel_spectra(backend.ENGINE, big, 1, 128, np.dtype(np.float64)) is not first
    _fourier.forget_kernels()


def test_a_kernel_is_checked_for_nan_once_and_refused_from_the_cache_too():
    """Whether a kernel's spectra are finite is found when they are made, kept with them, and a call
    that asks (auto's, ``finite=True``) is refused even where an earlier call that did not ask cached them."""
    from conv1dbench._backends import NonFiniteInput

    backend = engine_backend("fft")
    _fourier.forget_kernels()
    w = np.ones((1, 1, 5))
    w[0, 0, 2] = np.nan
    _fourier.kernel_spectra(backend.ENGINE, w, 1, 128, np.dtype(np.float64))   # made and kept, unchecked
    with pytest.raises(NonFiniteInput, match="kernel holds NaN"):
        _fourier.kernel_spectra(backend.ENGINE, w, 1, 128, np.dtype(np.float64), finite=True)
    assert _fourier.kernel_spectra(backend.ENGINE, np.ones((1, 1, 5)), 1, 128, np.dtype(np.float64),
                                   finite=True).shape == (1, 1, 65)
    _fourier.forget_kernels()


@pytest.mark.parametrize("name", ENGINES)
def test_transforms_beyond_the_cache_budget_are_not_kept(name, monkeypatch):
    backend = engine_backend(name)
    backend.ENGINE.forget()
    monkeypatch.setattr(_fourier, "TRANSFORM_CACHE_BYTES", 1 << 16)
    x, w = np.random.default_rng(4).standard_normal((1, 1, 5000)), np.ones((1, 1, 9))
    np.testing.assert_allclose(backend.forward(x, w, 8, 8, 1, 1, 1)[0, 0], np.convolve(x[0, 0], w[0, 0]), atol=1e-10)
    kept = backend.ENGINE._local.cache.values()
    assert sum(t.nbytes for t in kept) <= 1 << 16
    backend.ENGINE.forget()


class _TimedEngine(_fourier.Engine):
    """An engine whose transforms take the seconds given per size (busy waits), and that counts them."""

    name = "timed"

    def __init__(self, own, seconds):
        super().__init__()
        self.own, self.seconds, self.made = own, seconds, []

    def next_fast_len(self, n, real):
        return self.own

    def make(self, kind, rows, size, dtype, threads):
        self.made.append(size)
        transform = _fourier.Transform(kind, rows, size, dtype, threads)
        transform.input = np.empty(transform.in_shape, transform.in_dtype)

        def run(seconds=self.seconds[size]):
            stop = time.perf_counter() + seconds
            while time.perf_counter() < stop:
                pass
        transform.run = run
        return transform


@pytest.mark.parametrize("fast", [2025, 2048])
def test_the_transform_size_is_the_candidate_that_ran_fastest(fast):
    engine = _TimedEngine(2025, {2025: 4e-4, 2048: 4e-4, fast: 4e-5})
    assert engine.fast_size(2022, True, timed=False) == 2025  # the cost models' size: nothing timed yet
    assert engine.made == []
    assert engine.fast_size(2022, True) == fast
    assert sorted(engine.made) == [2025, 2048]  # the engine's own size and the next power of two
    assert engine.fast_size(2023, True) == fast and len(engine.made) == 2  # the same candidates: timed once
    assert engine.fast_size(2022, True, timed=False) == 2025  # the models' plans never follow what ran
    assert engine.fast_size(2022, True, np.float32) == fast and len(engine.made) == 4  # each dtype its own


def test_transform_sizes_are_timed_only_where_they_can_differ():
    engine = _TimedEngine(1100, {1100: 4e-4, 1536: 4e-5, 2048: 4e-4})
    assert engine.fast_size(1100, True) == 1536 and sorted(engine.made) == [1100, 1536, 2048]
    engine = _TimedEngine(4096, {})
    assert engine.fast_size(4096, True) == 4096 and engine.made == []  # a power of two: nothing else to try
    engine = _TimedEngine(200, {})
    assert engine.fast_size(130, True) == 200 and engine.made == []  # below TIMED_SIZES: too cheap to matter
    huge = _fourier.TIMED_SIZES[1] + 1
    engine = _TimedEngine(huge + 7, {})
    assert engine.fast_size(huge, True) == huge + 7 and engine.made == []  # beyond: too long to time in a call


@pytest.mark.parametrize("start", [-7, -3, 0, 2, 5, 9])
def test_one_window_is_filled_as_the_padded_signal_reads(start):
    x = np.arange(1.0, 9.0).reshape(1, 1, 8)
    padded = np.concatenate([np.zeros(20), x.ravel(), np.zeros(20)])
    for size in (4, 8, 12, 16):  # wholly before or after the signal, over its start or end, within it
        blocks = np.full((1, 1, 1, size), np.nan)
        _fourier._fill_windows(blocks, x, start, 1)
        np.testing.assert_array_equal(blocks.ravel(), padded[20 + start:20 + start + size])
