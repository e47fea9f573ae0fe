"""Kernel parameters (conv1dbench._params): defaults from what the machine is, values measured by tune,
kept in the wisdom file and in force from then on."""

import dataclasses
import json
import math

import numpy as np
import pytest

import conv1dbench as cb
from conv1dbench import _params
from conv1dbench.harness import tune_params


@pytest.fixture
def wisdom(tmp_path):
    """A wisdom file of this test's own, in force while it runs."""
    path = tmp_path / "wisdom.json"
    before = cb.configure_auto(wisdom=path)
    yield path
    cb.configure_auto(wisdom=before["wisdom"])


def test_defaults_come_from_the_machine_and_are_candidates():
    machine = _params.facts()
    assert machine.vendor and machine.isa and machine.l1d > 0 and machine.l2 > 0 and machine.cores >= 1
    for param in _params.PARAMS.values():
        assert param.default_for(machine) in param.candidates_on(machine), param.name
    small = dataclasses.replace(machine, l2=256 << 10, l3=4 << 20)
    large = dataclasses.replace(machine, l2=2 << 20, l3=256 << 20)
    chunk, patch = _params.PARAMS["fourier.chunk_bytes"], _params.PARAMS["im2col.patch_bytes"]
    assert chunk.default_for(small) == 256 << 10 and chunk.default_for(large) == 2 << 20   # the core's L2
    assert patch.default_for(small) == 2 << 20 and patch.default_for(large) == 32 << 20    # a share of L3
    # the tiles' shapes follow the vector registers: 32 with AVX-512, 16 with AVX2
    wide, narrow = dataclasses.replace(machine, isa="AVX-512"), dataclasses.replace(machine, isa="AVX2")
    layer, row = _params.PARAMS["numba.layer_vectors"], _params.PARAMS["numba.row_vectors"]
    assert (layer.default_for(wide), row.default_for(wide)) == (6, 24)
    assert (layer.default_for(narrow), row.default_for(narrow)) == (3, 12)
    assert max(layer.candidates_on(narrow)) * 4 <= 12 and max(row.candidates_on(narrow)) <= 12  # no spills


def test_tuned_values_are_in_force_and_say_where_they_came_from(wisdom):
    table = _params.in_force()["params"]
    assert all(entry["source"] == "default" for entry in table.values())
    _params.keep_tuned({"fourier.chunk_bytes": 1 << 19})
    assert _params.value("fourier.chunk_bytes") == 1 << 19
    assert _params.in_force()["params"]["fourier.chunk_bytes"] == {
        "value": 1 << 19, "source": "tuned", "default": table["fourier.chunk_bytes"]["default"]}
    assert json.loads(wisdom.read_text())  # kept in the file, under this machine
    with pytest.raises(KeyError, match="no such parameters: fft.nonsense"):
        _params.keep_tuned({"fft.nonsense": 1})


def test_a_kept_value_that_is_no_candidate_is_not_taken(wisdom):
    from conv1dbench._backends import keep_wisdom

    keep_wisdom(_params.WISDOM_NAME, {"fourier.chunk_bytes": 12345})
    _params.reset()
    assert _params.in_force()["params"]["fourier.chunk_bytes"]["source"] == "default"


def test_overriding_sets_values_for_a_block_only():
    before = _params.value("fourier.spread_min_work")
    with _params.overriding(fourier__spread_min_work=math.inf):
        assert _params.value("fourier.spread_min_work") == math.inf
        assert _params.in_force()["params"]["fourier.spread_min_work"]["source"] == "set"
    assert _params.value("fourier.spread_min_work") == before
    with pytest.raises(KeyError):
        with _params.overriding(no__such=1):
            pass


def test_results_do_not_depend_on_the_parameters():
    """A parameter cuts the work differently; the outputs stay those of the reference."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal(200_000), rng.standard_normal(700)
    ref = cb.convolve(x, w, mode="same", backend="fft")
    for chunk in (1 << 18, 1 << 22):
        for spread in (0, math.inf):
            with _params.overriding(fourier__chunk_bytes=chunk, fourier__spread_min_work=spread):
                np.testing.assert_allclose(cb.convolve(x, w, mode="same", backend="fft"), ref, atol=1e-9)


def test_the_layer_tiles_chunk_changes_the_order_of_sums_not_the_result():
    """numba.chunk_bytes decides how many input channels a tile runs over before its outputs go back to
    memory: within rounding, the same layer for every candidate; the same bits for a given one."""
    rng = np.random.default_rng(6)
    x, w = rng.standard_normal((2, 96, 300)).astype(np.float32), rng.standard_normal((8, 96, 5)).astype(np.float32)
    ref = cb.conv1d(x.astype(np.float64), w.astype(np.float64), padding="same", backend="naive")
    for chunk in _params.PARAMS["numba.chunk_bytes"].candidates:
        with _params.overriding(numba__chunk_bytes=chunk):
            got = cb.conv1d(x, w, padding="same", backend="numba")
            np.testing.assert_allclose(got, ref, rtol=1e-4, atol=1e-4)
            assert np.array_equal(cb.conv1d(x, w, padding="same", backend="numba"), got)


def test_every_numba_parameter_keeps_the_result():
    """Each numba parameter at a candidate other than its default (a tile shape compiles kernels of its
    own: the smallest only, in float32 only, to keep the suite short): the layer, its two gradients and a
    signal stay those of the reference within rounding, and a repeated call gives the same bits."""
    rng = np.random.default_rng(8)
    x, w = rng.standard_normal((2, 24, 700)), rng.standard_normal((8, 24, 5))
    g = rng.standard_normal((2, 8, 700))
    s, k = rng.standard_normal(3000), rng.standard_normal(9)
    ref = (cb.conv1d(x, w, padding="same", backend="naive"),
           cb.conv1d_backward(g, x, w, padding="same", backend="naive"), np.correlate(s, k, "same"))
    machine = _params.facts()
    settings = [{"numba.layer_vectors": min(_params.PARAMS["numba.layer_vectors"].candidates_on(machine)),
                 "numba.row_vectors": min(_params.PARAMS["numba.row_vectors"].candidates_on(machine))},
                {"numba.row_min_pairs": 16, "numba.row_min_outputs": 32},  # signals on the loops; short rows tiled
                {"numba.row_job_positions": 4096, "numba.grad_positions": 1024, "numba.grad_jobs": 16,
                 "numba.parallel_min_macs": 1 << 17}]
    for setting in settings:
        with _params.overriding(**{name.replace(".", "__"): v for name, v in setting.items()}):
            shapes = "numba.layer_vectors" in setting  # kernels of their own: float32 only, to keep the suite short
            for dtype, tol in ((np.float32, 1e-3),) + (() if shapes else ((np.float64, 1e-10),)):
                xs, ws, gs, ss, ks = (a.astype(dtype) for a in (x, w, g, s, k))
                got = (cb.conv1d(xs, ws, padding="same", backend="numba"),
                       cb.conv1d_backward(gs, xs, ws, padding="same", backend="numba"),
                       cb.correlate(ss, ks, mode="same", backend="numba"))
                for a, b in zip(got[:1] + got[1] + got[2:], ref[:1] + ref[1] + ref[2:], strict=True):
                    if a is not None:
                        np.testing.assert_allclose(a, b, rtol=tol, atol=tol * 10, err_msg=str(setting))
                again = cb.conv1d_backward(gs, xs, ws, padding="same", backend="numba")
                assert all(np.array_equal(a, b) for a, b in zip(again, got[1], strict=True) if a is not None)


def test_the_fft_engines_parameters_keep_the_result():
    """Block model and threads thresholds at their extreme candidates: the same convolution."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((4, 60_000)), rng.standard_normal(511)
    ref = cb.convolve(x, w[None], mode="same", backend="fft")
    machine = _params.facts()
    for backend in ("fft", "fftw", "ducc"):
        if not cb.backends()[backend]["available"]:
            continue
        for pick in (min, max):
            setting = {name.replace(".", "__"): pick(p.candidates_on(machine)) for name, p in _params.PARAMS.items()
                       if p.owner == backend}
            with _params.overriding(fourier__spread_min_work=math.inf, **setting):
                got = cb.convolve(x, w[None], mode="same", backend=backend)
            np.testing.assert_allclose(got, ref, atol=1e-9, err_msg=f"{backend} {setting}")


def test_tune_has_problems_for_every_parameter():
    """A parameter tune cannot time would only fail when a user runs tune."""
    assert set(tune_params.PROBLEMS) == set(_params.PARAMS)


def test_tune_measures_chooses_a_candidate_and_keeps_it(wisdom):
    lines = []
    result = tune_params.tune_params(["numba.parallel_min_macs", "fourier.chunk_bytes"], min_time_s=0.02,
                                     report=lines.append)
    for name in ("numba.parallel_min_macs", "fourier.chunk_bytes"):
        param = _params.PARAMS[name]
        assert result["chosen"][name] in param.candidates
        assert _params.in_force()["params"][name] == {"value": result["chosen"][name], "source": "tuned",
                                                      "default": param.default_for(_params.facts())}
    assert len(lines) == 2 and lines[0].startswith("numba.parallel_min_macs: ")
    rows = result["measured"]["numba.parallel_min_macs"]
    assert all(r["on_ms"] > 0 and r["off_ms"] > 0 for r in rows)
    chunk = _params.PARAMS["fourier.chunk_bytes"]
    assert len(result["measured"]["fourier.chunk_bytes"][0]) == 1 + len(chunk.candidates)


def test_one_parameter_set_gives_the_same_bits_every_call():
    """Steps spread over threads: whichever thread takes a step, it computes it the same way."""
    rng = np.random.default_rng(4)
    x, w = rng.standard_normal((4, 100_000)).astype(np.float32), rng.standard_normal(1023).astype(np.float32)
    for backend in ("fft", "numba"):
        with _params.overriding(fourier__spread_min_work=0, numba__parallel_min_macs=1):
            first = cb.convolve(x, w[None], mode="same", backend=backend)
            for _ in range(3):
                assert np.array_equal(cb.convolve(x, w[None], mode="same", backend=backend), first), backend


def test_cache_sizes_are_read_from_sysfs(tmp_path):
    """Data and unified caches by level, instruction caches left out, K and M suffixes; nothing where
    sysfs has nothing."""
    for index, (level, kind, size) in enumerate([(1, "Data", "48K"), (1, "Instruction", "32K"),
                                                 (2, "Unified", "2048K"), (3, "Unified", "105M")]):
        folder = tmp_path / f"index{index}"
        folder.mkdir()
        for name, text in (("level", str(level)), ("type", kind), ("size", size)):
            (folder / name).write_text(text + "\n")
    assert _params._cache_sizes(str(tmp_path)) == {1: 48 << 10, 2: 2 << 20, 3: 105 << 20}
    assert _params._cache_sizes(str(tmp_path / "none")) == {}


def test_new_values_renew_the_short_calls_cache():
    """The front ends keep a repeated 1-D call's compiled function with the parameters it was made under;
    where the values in force have changed since, the call asks for the function anew and keeps it."""
    from conv1dbench import _auto
    from conv1dbench._backends import numba as numba_backend

    rng = np.random.default_rng(10)
    x, w = rng.standard_normal(5000).astype(np.float32), rng.standard_normal(33).astype(np.float32)
    ref = np.correlate(x.astype(np.float64), w.astype(np.float64), "same")

    def entry():  # this call's shortcut (other tests in this process may have left theirs)
        (found,) = (e for key, e in _auto.shortcuts().items()
                    if e and key[1:3] == (x.shape, w.shape) and key[-2:] == ("same", "numba"))
        return found

    first = cb.correlate(x, w, "same", backend="numba")
    assert entry()[0] is numba_backend.shortcut_1d()[0] and entry()[2] is _params.values()
    smallest = min(_params.PARAMS["numba.row_vectors"].candidates_on(_params.facts()))
    with _params.overriding(numba__row_vectors=smallest):
        shaped = cb.correlate(x, w, "same", backend="numba")
        assert entry()[0] is numba_backend.shortcut_1d()[0] and entry()[1][-1].n == smallest
        assert entry()[2] is _params.values()
    np.testing.assert_allclose(shaped, ref, rtol=1e-4, atol=1e-4)
    assert np.array_equal(cb.correlate(x, w, "same", backend="numba"), first)
    assert entry()[0] is numba_backend.shortcut_1d()[0] and entry()[2] is _params.values()
