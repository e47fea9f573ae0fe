"""The register-tiled layer forward (conv1dbench/_backends/_tiles.py) against the float64 naive backend."""

import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import tile_asm

from conv1dbench._backends import _simd, _tiles, naive
from conv1dbench._backends._simd import Count, Width
from conv1dbench._plan import output_length

#: Numba's cache for the processes that compile for another CPU (theirs is never this machine's code).
TMP_CACHE = Path(tempfile.gettempdir()) / "conv1dbench-foreign-cpu-cache"

# (B, C_in, C_out, L, K, stride, dilation, groups, pad_left, pad_right): every tile edge
GEOMETRIES = [
    (2, 3, 5, 37, 3, 1, 1, 1, 1, 1),      # C_out not a multiple of the block, L_out not of the tile
    (1, 4, 8, 100, 5, 2, 1, 1, 2, 2),     # stride 2
    (2, 6, 6, 50, 3, 3, 2, 3, 0, 4),      # stride and dilation together, groups of 2 channels, uneven pads
    (1, 8, 12, 65, 1, 1, 1, 2, 0, 0),     # K = 1
    (3, 2, 4, 20, 7, 1, 3, 1, 9, 9),      # pads wider than the kernel's reach
    (1, 16, 16, 300, 9, 4, 1, 1, 4, 4),   # stride 4, several tiles
    (2, 5, 7, 13, 13, 1, 1, 1, 0, 0),     # K = L: one output
    (1, 4, 4, 5, 2, 1, 1, 4, 3, 0),       # depthwise (1 channel per group), tiny
    (1, 3, 9, 48, 3, 1, 1, 3, 1, 1),      # groups of 1 input channel, 3 outputs each
    (2, 64, 8, 96, 5, 1, 1, 1, 2, 2),     # L_out a multiple of the tile at 8 and 16 lanes
    (1, 300, 6, 40, 3, 1, 1, 1, 1, 1),    # input channels in several chunks (the last one short)
    (1, 200, 4, 30, 4, 2, 2, 2, 3, 2),    # chunks with stride, dilation and groups
    (1, 1, 1, 500, 70, 1, 1, 1, 69, 69),  # a signal, "full": K longer than a tile, edge tiles packed
    (2, 2, 2, 700, 33, 1, 2, 2, 10, 5),   # depthwise, dilated, interior tiles read in place
    (1, 2, 5, 3, 4, 1, 1, 1, 3, 0),       # fewer samples than taps
]


def _widths(dtype) -> list[int]:
    return sorted({_simd.target_isa().lanes(dtype), _simd.PORTABLE.lanes(dtype)})


#: Every tile on every machine: the layer tile 4 x 3 (AVX2, 128-bit) and 4 x 6 (AVX-512), the row tile.
TILES = [("layer", 3), ("layer", 6), ("row", 12), ("row", 1)]


def _run_tile(kind, vectors, x, w, pad_left, pad_right, stride, dilation, groups, lanes, threads=1):
    l_out = output_length(x.shape[2], w.shape[2], pad_left, pad_right, stride, dilation)
    y = np.full((x.shape[0], w.shape[0], l_out), np.nan, dtype=x.dtype)  # every output must be written
    run = _tiles.layer_forward if kind == "layer" else _tiles.row_forward
    run(x, w, pad_left, stride, dilation, groups, y, threads, Width(lanes), Count(vectors))
    return y


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("geometry", GEOMETRIES, ids=lambda g: "x".join(map(str, g)))
def test_the_tiled_forward_matches_the_reference(geometry, dtype):
    b, c_in, c_out, length, taps, stride, dilation, groups, pad_left, pad_right = geometry
    rng = np.random.default_rng(sum(geometry))
    x = rng.standard_normal((b, c_in, length)).astype(dtype)
    w = rng.standard_normal((c_out, c_in // groups, taps)).astype(dtype)
    ref = naive.forward(x.astype(np.float64), w.astype(np.float64), pad_left, pad_right, stride, dilation, groups)
    tolerance = 1e-5 if dtype == np.float32 else 1e-12
    for lanes in _widths(dtype):
        for kind, vectors in TILES:
            for threads in (1, 2):
                y = _run_tile(kind, vectors, x, w, pad_left, pad_right, stride, dilation, groups, lanes, threads)
                assert y.shape == ref.shape and y.dtype == dtype
                assert np.abs(y - ref).max() <= tolerance * np.abs(ref).max(), (lanes, kind, vectors, threads)


def test_the_entry_point_picks_the_row_tile_for_groups_of_fewer_than_four_outputs():
    rng = np.random.default_rng(3)
    lanes = _simd.target_isa().lanes(np.float32)
    shape = _tiles.TILE_SHAPES[_simd.target_isa().name]
    for c_out, groups, kind, vectors in ((8, 1, "layer", shape.layer), (6, 2, "row", shape.row),
                                         (4, 4, "row", shape.row)):
        x = rng.standard_normal((2, 4, 300)).astype(np.float32)
        w = rng.standard_normal((c_out, 4 // groups, 5)).astype(np.float32)
        y = np.empty((2, c_out, 300), np.float32)
        _tiles.forward(x, w, 2, 1, 1, groups, y, 1, *_tiles.counts())
        assert (c_out // groups < _tiles.NO) == (kind == "row")
        np.testing.assert_array_equal(y, _run_tile(kind, vectors, x, w, 2, 2, 1, 1, groups, lanes))


@pytest.mark.parametrize("kind, vectors", TILES[::2])
def test_non_finite_inputs_stay_in_the_outputs_whose_window_reads_them(kind, vectors):
    x = np.ones((1, 2, 400), np.float32)
    x[0, 1, 200] = np.nan
    x[0, 0, 300] = np.inf
    y = _run_tile(kind, vectors, x, np.ones((4, 2, 3), np.float32), 1, 1, 1, 1, 1,
                  _simd.target_isa().lanes(np.float32))
    assert np.isnan(y[:, :, 199:202]).all() and np.isinf(y[:, :, 299:302]).all()
    assert np.isfinite(np.delete(y, [199, 200, 201, 299, 300, 301], axis=2)).all()


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("stride", [1, 2, 3, 4, 5])
def test_packing_by_phase_reads_each_sample_once_and_zero_outside_the_row(stride, dtype):
    """The input block a strided tile reads: row ``(c, p)`` holds ``x[c, first + p + m*stride]``, zero where
    that is padding; dealt in whole vectors (strides 2 to 4) or value by value, the same block."""
    channels, length = 3, 211
    x = np.random.default_rng(stride).standard_normal((channels, length)).astype(dtype)
    padded = np.zeros((channels, length + 2000), dtype)
    padded[:, 1000:1000 + length] = x
    for lanes in _widths(dtype):
        for span in (1, lanes - 1, 3 * lanes + 5):
            for first in (-40, -3, 0, 7, length - 2 * stride * span, length - 5, length + 3):
                block = np.full(channels * stride * span, np.nan, dtype)
                _tiles._pack(x.reshape(-1), block, 0, length, channels, stride, span, first, Width(lanes))
                m = np.arange(span)
                expect = np.stack([padded[:, 1000 + first + p + m * stride] for p in range(stride)], axis=1)
                np.testing.assert_array_equal(block.reshape(channels, stride, span), expect,
                                              err_msg=f"lanes {lanes}, span {span}, first {first}")


def test_packed_weights_put_a_block_of_output_channels_last_and_zero_the_missing_ones():
    w = np.arange(5 * 2 * 3, dtype=np.float32).reshape(5, 2, 3)
    packed = _tiles._pack_weights(w, 1).reshape(1, 2, 2, 3, _tiles.NO)
    assert packed[0, 0, 1, 2, 3] == w[3, 1, 2] and packed[0, 1, 0, 0, 0] == w[4, 0, 0]
    assert not packed[0, 1, :, :, 1:].any()


BACKWARD_GEOMETRIES = GEOMETRIES + [
    (1, 4, 8, 41, 3, 5, 1, 1, 1, 1),      # stride beyond the kernel: phases with no tap
    (1, 4, 8, 60, 4, 2, 2, 1, 0, 0),      # dilation a multiple of the stride: every tap in one phase
    (2, 6, 4, 33, 5, 3, 3, 2, 2, 1),      # dilation = stride, groups
]


GRADIENTS = [("input", g) for g in BACKWARD_GEOMETRIES] + [("weight", g) for g in GEOMETRIES]
GRADIENTS.append(("weight", (1, 2, 4, 9000, 3, 1, 1, 1, 1, 1)))  # positions in several jobs' ranges


@pytest.mark.parametrize("dtype", [np.float32, np.float64], ids=["float32", "float64"])
@pytest.mark.parametrize("which, geometry", GRADIENTS,
                         ids=lambda v: "x".join(map(str, v)) if isinstance(v, tuple) else v)
def test_the_tiled_gradients_match_the_reference(which, geometry, dtype):
    """The input gradient by phase and the weight gradient on tiles, against the float64 naive backend."""
    b, c_in, c_out, length, taps, stride, dilation, groups, pad_left, pad_right = geometry
    rng = np.random.default_rng(sum(geometry) + 1)
    x, w = rng.standard_normal((b, c_in, length)), rng.standard_normal((c_out, c_in // groups, taps))
    l_out = (length + pad_left + pad_right - dilation * (taps - 1) - 1) // stride + 1
    g = rng.standard_normal((b, c_out, l_out))
    geometry_args = (stride, dilation, groups)
    if which == "input":
        ref = naive.backward_input(g, w, length, pad_left, pad_right, *geometry_args)
        got = [_tiles.backward_input(g.astype(dtype), w.astype(dtype), length, pad_left, *geometry_args, threads)
               for threads in (1, 2)]
    else:
        ref = naive.backward_weight(g, x, taps, pad_left, pad_right, *geometry_args)
        got = [_tiles.weight_gradient(g.astype(dtype), x.astype(dtype), taps, pad_left, *geometry_args, threads,
                                      Width(lanes)) for threads in (1, 2) for lanes in _widths(dtype)]
        # as a matrix product, output channels along the vectors: tiles of 1-3 vectors, 7 positions a
        # pass (some passes short) or all of them in one
        got += [_tiles.weight_by_outputs(g.astype(dtype), x.astype(dtype), taps, pad_left, *geometry_args, threads,
                                         Width(lanes), Count(vectors), steps)
                for threads, vectors, steps in ((1, 1, 7), (2, 3, 7), (2, 2, 10**6)) for lanes in _widths(dtype)]
    tolerance = 3e-5 if dtype == np.float32 else 1e-12
    for result in got:
        assert result.shape == ref.shape and result.dtype == dtype
        assert np.abs(result - ref).max() <= tolerance * np.abs(ref).max()


def test_every_kernel_is_the_same_bits_for_any_thread_count():
    """And the weight gradient's for any panel (``numba.grad_panel_bytes``): each sum runs position by
    position whatever the panel; the same for both of its kernels (8 output channels: by pairs where
    a vector has 16 lanes, as a matrix product otherwise; 40: a matrix product)."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((3, 8, 9000)).astype(np.float32)
    g = rng.standard_normal((3, 8, 9000)).astype(np.float32)
    w = rng.standard_normal((8, 8, 5)).astype(np.float32)
    wide = rng.standard_normal((3, 40, 9000)).astype(np.float32)
    depthwise = w[:, :1].copy()
    for threads in (2, 3):
        # one batch item of 300 positions is one job: its pair blocks shared among the threads
        for grad, signal in ((g, x), (wide, x), (wide[:1, :, :300].copy(), x[:1, :, :300].copy())):
            one = _tiles.backward_weight(grad, signal, 5, 2, 1, 1, 1, 1)
            for panel in (1 << 10, 1 << 16, 1 << 24):
                np.testing.assert_array_equal(_tiles.backward_weight(grad, signal, 5, 2, 1, 1, 1, threads, panel), one)
        np.testing.assert_array_equal(_tiles.backward_input(g, w, 9000, 2, 1, 1, 1, threads),
                                      _tiles.backward_input(g, w, 9000, 2, 1, 1, 1, 1))
        for kernel, groups in ((w, 1), (depthwise, 8)):
            y1, y = np.empty_like(g), np.empty_like(g)
            _tiles.forward(x, kernel, 2, 1, 1, groups, y1, 1, *_tiles.counts())
            _tiles.forward(x, kernel, 2, 1, 1, groups, y, threads, *_tiles.counts())
            np.testing.assert_array_equal(y, y1)


X86 = platform.machine() in ("x86_64", "AMD64")
#: CPUs to compile the tile for in a process of its own (Numba's NUMBA_CPU_NAME / NUMBA_CPU_FEATURES): the
#: wide path and the narrow one, whichever this machine has, checked for their registers and spills.
_BASE = "+64bit,+cmov,+cx16,+sse,+sse2,+sse3,+ssse3,+sse4.1,+sse4.2,+popcnt,+avx,+f16c,+fma,+avx2,+bmi,+bmi2"
FOREIGN = {"AVX-512": ("skylake-avx512", _BASE + ",+avx512f,+avx512cd,+avx512bw,+avx512dq,+avx512vl", 16, "zmm"),
           "AVX2": ("haswell", _BASE, 8, "ymm")}


@pytest.mark.skipif(not X86, reason="reads x86-64 assembly")
def test_every_tile_keeps_its_accumulators_in_registers():
    """The hot loop of each tile at this machine's width: its fused multiply-adds on the ISA's registers
    (zmm with AVX-512, ymm with AVX2, xmm otherwise) and no stack traffic in it (no spills)."""
    isa = _simd.target_isa()
    for kind, accumulators in _accumulators(isa.name).items():
        loop = tile_asm.hot_loop(kind, isa.lanes(np.float32), isa.name)
        assert loop["registers"] == [{512: "zmm", 256: "ymm", 128: "xmm"}[isa.bits]], (kind, loop)
        assert loop["fmas"] >= accumulators and loop["accumulators"] >= accumulators, (kind, loop)
        assert not loop["stack"], ("stack traffic in the hot loop", kind, loop["stack"])


def _accumulators(isa: str) -> dict:
    """The vector accumulators each tile keeps on ``isa`` (:data:`conv1dbench._backends._tiles.TILE_SHAPES`)."""
    shape = _tiles.TILE_SHAPES[isa]
    return {"layer": _tiles.NO * shape.layer, "row": shape.row, "weight": _tiles.NO * _tiles.GRAD_PAIRS,
            "outputs": _tiles.NO * shape.layer}


@pytest.mark.skipif(not X86, reason="compiles for x86-64 CPUs")
@pytest.mark.parametrize("isa", sorted(FOREIGN))
def test_the_tile_compiled_for_each_x86_isa_uses_its_registers_without_spills(isa):
    """Compiled (not run) for an AVX-512 and an AVX2 CPU in processes of their own: the wide path's
    hot loop on zmm registers, the narrow one's on ymm, neither spilling its accumulators."""
    cpu, features, lanes, register = FOREIGN[isa]
    code = ("import json, tile_asm; print(json.dumps({kind: tile_asm.hot_loop(kind, %d, %r) for kind in "
            "('layer', 'row', 'weight', 'outputs')}))" % (lanes, isa))
    env = {**os.environ, "NUMBA_CPU_NAME": cpu, "NUMBA_CPU_FEATURES": features, "NUMBA_CACHE_DIR": str(TMP_CACHE),
           "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    loops = json.loads(done.stdout.strip().splitlines()[-1])
    for kind, accumulators in _accumulators(isa).items():
        loop = loops[kind]
        assert loop["registers"] == [register], (kind, loop)
        assert loop["fmas"] >= accumulators and loop["accumulators"] >= accumulators, (kind, loop)
        assert not loop["stack"], (kind, loop["stack"])


def test_the_numba_backend_runs_the_tiles_for_floats_and_the_loops_elsewhere(monkeypatch):
    """float32/float64 layers and long enough kernels on the tiles (the same bits as calling them), short
    signal kernels and complex on the loops; the input gradient by phase, never on a spread gradient."""
    from conv1dbench._backends import numba as backend

    rng = np.random.default_rng(9)
    cases = [((2, 8, 300), (8, 8, 5), 1, True),      # the layer tile
             ((2, 4, 300), (4, 1, 9), 4, True),      # depthwise, 9 taps: the row tile
             ((1, 1, 300), (1, 1, 3), 1, False),     # a signal with K = 3: the loops
             ((1, 1, 300), (1, 1, 7), 1, True)]      # K = 7: the row tile
    for x_shape, w_shape, groups, tiled in cases:
        x = rng.standard_normal(x_shape).astype(np.float32)
        w = rng.standard_normal(w_shape).astype(np.float32)
        y = backend.forward(x, w, 2, 2, 1, 1, groups)
        expected = np.empty_like(y)
        if tiled:
            _tiles.forward(x, w, 2, 1, 1, groups, expected, 1, *_tiles.counts())
        else:
            backend._forward(x, w, 2, 1, 1, groups, 1, expected)
        np.testing.assert_array_equal(y, expected)
    z = (rng.standard_normal((1, 2, 50)) + 1j).astype(np.complex64)
    kernel = np.ones((4, 2, 7), np.complex64)
    loops = np.empty((1, 4, 44), np.complex64)
    backend._forward(z, kernel, 0, 1, 1, 1, 1, loops)
    np.testing.assert_array_equal(backend.forward(z, kernel, 0, 0, 1, 1, 1), loops)

    def spread(*args):
        raise AssertionError("the float input gradient spread zeros into g")
    monkeypatch.setattr(backend, "transposed_as_correlation", spread)
    g = rng.standard_normal((2, 8, 75)).astype(np.float32)
    grad = backend.backward_input(g, rng.standard_normal((8, 8, 5)).astype(np.float32), 300, 2, 2, 4, 1, 1)
    assert grad.shape == (2, 8, 300)


def test_a_layer_runs_on_the_tile_that_leaves_fewest_positions_past_its_rows():
    """The layer tile narrows (fewer vectors, among the candidates below the value in force) only where
    that computes at least 5% fewer positions past the row's end, on calls large enough to pay for a
    kernel of their own."""
    from conv1dbench._backends import numba as backend

    count = backend._layer_count
    assert count(512, 16, 6, (4, 5, 6)).n == 4      # 8 tiles of 64, against 6 of 96 (576 positions)
    assert count(400, 16, 6, (4, 5, 6)).n == 5      # 5 tiles of 80
    assert count(1024, 16, 6, (4, 5, 6)).n == 6     # 1056 against 1024: 3%, not worth a kernel of its own
    assert count(512, 16, 4, (4, 5, 6)).n == 4      # never wider than the value in force
    assert count(512, 8, 3, (2, 3)).n == 3          # AVX2 float32: 528 against 512
    assert count(32, 8, 3, (2, 3)).n == 2           # 32 against 48
    assert count(40, 8, 3, (2, 3)).n == 3           # 48 either way: ties go to the wider tile
    six = _simd.Count(6)
    assert backend.layer_count(512, np.float32, six, backend.NARROWER_MIN_MACS - 1) is six  # small: no new kernel
