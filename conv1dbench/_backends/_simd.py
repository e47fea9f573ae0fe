"""Explicit SIMD vectors for the numba backend's kernels: a register tile Numba keeps in registers.

Numba vectorizes simple loops on its own, but a kernel that keeps a tile of accumulators in
registers across a whole reduction (every input channel and tap of a layer) needs them as values:
this module gives Numba a vector type whose data model is an LLVM vector (``<16 x float>`` and so
on) and the few operations such kernels need, as intrinsics that emit one LLVM instruction each.
Local variables of the type are SSA values after LLVM's mem2reg, so a dozen accumulators stay in a
dozen registers for as long as the loop runs.

The vector width is a *type*: kernels take a :class:`Width` argument (``width = Width(16)``), whose
Numba type carries the lane count (``width.lanes`` in compiled code is a constant).  So the width is
part of every compiled signature, and of the key of Numba's on-disk cache: a kernel compiled for one
width is never loaded for another (a lane count read from a Python global would be frozen into the
cached code, and Numba's cache does not see it).
:func:`target_isa` says which width the CPU Numba compiles for wants (its features, or
``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` where set) and how many vector registers a tile may use.

The operations (``arr`` a 1-D C-contiguous array, ``i`` an index into it, no bounds checks: the
caller keeps ``i .. i + lanes`` inside the array, or uses the partial forms):

``vzero(arr, width)``, ``vbroadcast(value, width)``
    a vector of zeros of ``arr``'s dtype; ``value`` in every lane.
``vload(arr, i, width)``, ``vstore(arr, i, v)``
    ``arr[i:i + lanes]`` as a vector, unaligned; and back.
``vload_partial(arr, i, count, width)``, ``vstore_partial(arr, i, v, count)``
    the first ``count`` lanes only (0 <= count <= lanes; the other lanes load as zero and are not
    stored): LLVM's masked load and store, which never touch memory past ``count``.
``vfma(a, b, c)``, ``vadd(a, b)``
    ``a * b + c`` fused (one rounding), lane by lane; ``a + b``.
``vsum(v)``
    the lanes' sum by halving (``v[:L/2] + v[L/2:]``, then again, down to one lane): a fixed order,
    the same bits on every machine for a given width, in log2(lanes) steps.

A *row* is a tuple of ``count.n`` vectors, ``count`` a :class:`Count` (a compile-time number, like
the width): the lanes ``i .. i + n*lanes`` of an array as one row of a register tile.

``vzeros(arr, width, count)``, ``vloads(arr, i, width, count)``
    a row of zeros; a row loaded from ``arr[i:]``.
``vloads_partial(arr, i, available, width, count)``, ``vstores_partial(arr, i, row, available)``
    only the first ``available`` values of the row (any int: below zero none, past the row all), with
    whole-vector loads and stores where a vector is complete and masked ones where it is not.
``vfmas(v, xs, row)``
    ``v * xs[j] + row[j]`` fused, for each vector of the row.
``vdeal(arr, i, width, count)``, ``vstores_apart(arr, i, apart, row)``
    the ``n * lanes`` values from ``arr[i]`` dealt round-robin into a row of ``n`` vectors (vector ``p``
    holds ``arr[i + p + n*l]`` in lane ``l``: the ``n`` phases of a stride-``n`` run, for one wide load
    and shuffles instead of ``n * lanes`` scalar loads); and a row stored vector ``j`` at ``arr[i + j*apart]``.
``prefetch(arr, i)``
    a hint to bring the cache line of ``arr[i]`` into the L2 cache (``prefetcht1`` on x86): a read that
    comes later, so that memory's latency is spent while the kernel computes.  It never faults.

Floating-point semantics are IEEE (no fast-math flags on any of them), so NaN and Inf propagate as in
scalar code.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numba
import numpy as np
from llvmlite import binding as llvm
from llvmlite import ir
from numba.core import cgutils, types
from numba.core.errors import TypingError
from numba.core.imputils import lower_constant
from numba.extending import NativeValue, intrinsic, models, overload_attribute, register_model, typeof_impl, unbox

from .. import _jitcache

_jitcache.install()  # before any kernel is defined: each one's cache is stamped by what it compiles in

__all__ = ["Count", "Isa", "Width", "fixed_for_target", "prefetch", "target_isa", "vadd", "vbroadcast", "vdeal",
           "vfma", "vfmas", "vload", "vload_partial", "vloads", "vloads_partial", "vstore", "vstore_partial",
           "vstores_apart", "vstores_partial", "vsum", "vzero", "vzeros"]


@dataclass(frozen=True)
class Isa:
    """The vector unit a kernel is compiled for: its name, register width in bits, vector registers."""

    name: str
    bits: int
    registers: int

    def lanes(self, dtype) -> int:
        """Lanes of ``dtype`` (a NumPy dtype or type) in one register."""
        return self.bits // (8 * np.dtype(dtype).itemsize)


#: x86-64 with AVX-512 (32 zmm registers), with AVX2 and FMA (16 ymm), and anything else: 128-bit
#: vectors (SSE2, NEON), which LLVM lowers well everywhere, with 16 registers (NEON has 32; 16 is safe).
AVX512, AVX2, PORTABLE = Isa("AVX-512", 512, 32), Isa("AVX2", 256, 16), Isa("portable 128-bit", 128, 16)


def target_isa() -> Isa:
    """The vector unit of the CPU Numba compiles for (``NUMBA_CPU_NAME``/``NUMBA_CPU_FEATURES`` if set,
    else this machine's, as llvmlite reports it)."""
    return isa_of(_target_features())


def isa_of(features: set[str]) -> Isa:
    """The :class:`Isa` of a CPU with LLVM's feature names ``features`` (e.g. ``{"avx2", "fma"}``)."""
    if "avx512f" in features:
        return AVX512
    if {"avx2", "fma"} <= features:
        return AVX2
    return PORTABLE


def _target_features() -> set[str]:
    configured = numba.config.CPU_FEATURES
    if configured:  # "+avx2,+fma,-avx512f,...", as LLVM takes it
        return {f[1:] for f in configured.split(",") if f.startswith("+")}
    if numba.config.CPU_NAME and numba.config.CPU_NAME != "host":
        raise ValueError("NUMBA_CPU_NAME is set without NUMBA_CPU_FEATURES: conv1dbench cannot tell that CPU's "
                         "vector width; set NUMBA_CPU_FEATURES too (e.g. +avx2,+fma)")
    return _host_features()


@functools.cache
def _host_features() -> frozenset[str]:
    """This machine's CPU features (asked once: the query takes about 50 us, and kernels ask per call)."""
    return frozenset(name for name, on in llvm.get_host_cpu_features().items() if on)


class _Static:
    """A number fixed at compile time, as a kernel argument: its Numba type carries it (``value``)."""

    allowed: tuple | range = ()
    describe = ""

    def __init__(self, value: int):
        if not (isinstance(value, int) and value in self.allowed):
            raise ValueError(f"{type(self).__name__} takes {self.describe}, got {value!r}")
        self.value = value
        # Numba's dispatcher reads this before anything else: 0.3 us per argument, against 3 us through
        # typeof's registry (a tuned tile shape is passed on every call, short ones too)
        self._numba_type_ = _STATIC_TYPES[type(self).__name__](value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.value})"


class Width(_Static):
    """A vector width, as a kernel argument: ``Width(16)`` is 16 lanes (``width.lanes`` in compiled code)."""

    allowed, describe = (2, 4, 8, 16, 32), "2, 4, 8, 16 or 32 lanes"

    @property
    def lanes(self) -> int:
        return self.value


class Count(_Static):
    """Vectors in a row of a register tile, as a kernel argument: ``Count(6)`` (``count.n`` in compiled code)."""

    allowed, describe = range(1, 65), "1 to 64 vectors"

    @property
    def n(self) -> int:
        return self.value


class _StaticType(types.Type):
    def __init__(self, kind: str, value: int):
        self.value = value
        super().__init__(name=f"{kind}({value})")


class WidthType(_StaticType):
    def __init__(self, lanes: int):
        self.lanes = lanes
        super().__init__("Width", lanes)


class CountType(_StaticType):
    def __init__(self, n: int):
        self.n = n
        super().__init__("Count", n)


_STATIC_TYPES = {"Width": WidthType, "Count": CountType}


@typeof_impl.register(Width)
def _typeof_width(value, context):
    return WidthType(value.lanes)


@typeof_impl.register(Count)
def _typeof_count(value, context):
    return CountType(value.n)


for _type, _attribute in ((WidthType, "lanes"), (CountType, "n")):
    register_model(_type)(models.OpaqueModel)

    @unbox(_type)
    def _unbox_static(typ, obj, c):
        return NativeValue(c.context.get_dummy_value())  # the type is all there is to it

    @lower_constant(_type)
    def _constant_static(context, builder, typ, value):
        return context.get_dummy_value()  # a global Width or Count in compiled code: its type again

    @overload_attribute(_type, _attribute)
    def _static_value(static):
        value = static.value
        return lambda static: value  # a compile-time constant in the kernel


def fixed_for_target(choose):
    """``choose(dtype, isa)`` (a NumPy dtype and an :class:`Isa`, returning a :class:`Width` or
    :class:`Count`) as an intrinsic ``f(arr)`` of compiled code, whose value is decided when its caller
    compiles, for the CPU Numba compiles for: the entry points that Python calls use it, so that their
    calls carry no width argument (typing one costs Numba's dispatcher 2.4 us per call).  Numba's disk
    cache keys compiled code by that CPU's name and features, which decide the ISA, so a cached
    caller always holds the value its CPU would choose; the kernels it calls take it as an argument."""

    @intrinsic
    def fixed(typingctx, arr):
        if not (isinstance(arr, types.Array) and arr.dtype in _FLOATS):
            raise TypingError(f"{choose.__name__} takes a float32 or float64 array, got {arr}")
        value = choose(np.dtype(str(arr.dtype)), target_isa())
        return typeof_impl(value, None)(arr), lambda context, builder, sig, args: context.get_dummy_value()

    fixed.__name__ = choose.__name__
    return fixed


class Vec(types.Type):
    """``lanes`` values of ``dtype`` (float32 or float64) in one LLVM vector."""

    def __init__(self, dtype, lanes: int):
        self.dtype, self.lanes = dtype, lanes
        super().__init__(name=f"Vec({dtype} x {lanes})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        element = dmm.lookup(fe_type.dtype).get_value_type()
        super().__init__(dmm, fe_type, ir.VectorType(element, fe_type.lanes))


_FLOATS = (types.float32, types.float64)


def _check_array(arr, what: str) -> None:
    if not (isinstance(arr, types.Array) and arr.ndim == 1 and arr.layout == "C" and arr.dtype in _FLOATS):
        raise TypingError(f"{what} takes a 1-D C-contiguous float32 or float64 array, got {arr}")


def _check_width(width, what: str) -> None:
    if not isinstance(width, WidthType):
        raise TypingError(f"{what} takes a Width as its last argument, got {width}")


def _check_count(count, what: str) -> None:
    if not isinstance(count, CountType):
        raise TypingError(f"{what} takes a Count as its last argument, got {count}")


def _check_row(row, what: str) -> None:
    if not (isinstance(row, types.UniTuple) and isinstance(row.dtype, Vec)):
        raise TypingError(f"{what} takes a row (a tuple of vectors), got {row}")


def _check_row_of(arr, width, count, what: str) -> None:
    """A row made from ``arr``: an array, a Width and a Count."""
    _check_array(arr, what)
    _check_width(width, what)
    _check_count(count, what)


def _check_row_into(arr, row, what: str) -> None:
    """A row stored into ``arr``: an array and a row of its dtype."""
    _check_array(arr, what)
    _check_row(row, what)
    if row.dtype.dtype != arr.dtype:
        raise TypingError(f"{what}: a row of {row.dtype.dtype} into an array of {arr.dtype}")


def _check_vecs(what: str, *vecs) -> None:
    if not all(isinstance(v, Vec) for v in vecs) or len({(v.dtype, v.lanes) for v in vecs}) != 1:
        raise TypingError(f"{what} takes vectors of one dtype and width, got {', '.join(map(str, vecs))}")


def _pointer(context, builder, arrty, arr, index, vecty):
    """The address of ``arr[index]``, as a pointer to ``vecty``."""
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [index]), vecty.as_pointer())


def _mask(builder, count, lanes: int):
    """``<lanes x i1>``: lane j is on where j < count."""
    index = ir.Constant(ir.VectorType(ir.IntType(64), lanes), list(range(lanes)))
    limit = builder.insert_element(ir.Constant(ir.VectorType(ir.IntType(64), lanes), ir.Undefined), count,
                                   ir.Constant(ir.IntType(32), 0))
    limit = builder.shuffle_vector(limit, limit, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
    return builder.icmp_signed("<", index, limit)


def _masked_load(builder, module, pointer, mask, vecty):
    fn = cgutils.get_or_insert_function(
        module, ir.FunctionType(vecty, [vecty.as_pointer(), ir.IntType(32), mask.type, vecty]),
        f"llvm.masked.load.{_suffix(vecty)}.p0{_suffix(vecty)}")
    zeros = ir.Constant(vecty, [0.0] * vecty.count)
    return builder.call(fn, [pointer, ir.Constant(ir.IntType(32), _element_bytes(vecty)), mask, zeros])


def _masked_store(builder, module, value, pointer, mask):
    vecty = value.type
    fn = cgutils.get_or_insert_function(
        module, ir.FunctionType(ir.VoidType(), [vecty, vecty.as_pointer(), ir.IntType(32), mask.type]),
        f"llvm.masked.store.{_suffix(vecty)}.p0{_suffix(vecty)}")
    builder.call(fn, [value, pointer, ir.Constant(ir.IntType(32), _element_bytes(vecty)), mask])


def _suffix(vecty) -> str:
    return f"v{vecty.count}f{64 if isinstance(vecty.element, ir.DoubleType) else 32}"


def _element_bytes(vecty) -> int:
    return 8 if isinstance(vecty.element, ir.DoubleType) else 4


@intrinsic
def vzero(typingctx, arr, width):
    _check_array(arr, "vzero")
    _check_width(width, "vzero")
    sig = Vec(arr.dtype, width.lanes)(arr, width)

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(sig.return_type), [0.0] * sig.return_type.lanes)
    return sig, codegen


@intrinsic
def vbroadcast(typingctx, value, width):
    if value not in _FLOATS:
        raise TypingError(f"vbroadcast takes a float32 or float64 value, got {value}")
    _check_width(width, "vbroadcast")
    sig = Vec(value, width.lanes)(value, width)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type)
        lanes = sig.return_type.lanes
        one = builder.insert_element(ir.Constant(vecty, ir.Undefined), args[0], ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, one, ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
    return sig, codegen


@intrinsic
def vload(typingctx, arr, index, width):
    _check_array(arr, "vload")
    _check_width(width, "vload")
    sig = Vec(arr.dtype, width.lanes)(arr, types.intp, width)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type)
        pointer = _pointer(context, builder, sig.args[0], args[0], args[1], vecty)
        return builder.load(pointer, align=_element_bytes(vecty))
    return sig, codegen


@intrinsic
def vstore(typingctx, arr, index, v):
    _check_array(arr, "vstore")
    _check_vecs("vstore", v)
    if v.dtype != arr.dtype:
        raise TypingError(f"vstore: a vector of {v.dtype} into an array of {arr.dtype}")
    sig = types.void(arr, types.intp, v)

    def codegen(context, builder, sig, args):
        pointer = _pointer(context, builder, sig.args[0], args[0], args[1], args[2].type)
        builder.store(args[2], pointer, align=_element_bytes(args[2].type))
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def vload_partial(typingctx, arr, index, count, width):
    _check_array(arr, "vload_partial")
    _check_width(width, "vload_partial")
    sig = Vec(arr.dtype, width.lanes)(arr, types.intp, types.intp, width)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type)
        pointer = _pointer(context, builder, sig.args[0], args[0], args[1], vecty)
        return _masked_load(builder, builder.module, pointer, _mask(builder, args[2], vecty.count), vecty)
    return sig, codegen


@intrinsic
def vstore_partial(typingctx, arr, index, v, count):
    _check_array(arr, "vstore_partial")
    _check_vecs("vstore_partial", v)
    if v.dtype != arr.dtype:
        raise TypingError(f"vstore_partial: a vector of {v.dtype} into an array of {arr.dtype}")
    sig = types.void(arr, types.intp, v, types.intp)

    def codegen(context, builder, sig, args):
        vecty = args[2].type
        pointer = _pointer(context, builder, sig.args[0], args[0], args[1], vecty)
        _masked_store(builder, builder.module, args[2], pointer, _mask(builder, args[3], vecty.count))
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def vfma(typingctx, a, b, c):
    _check_vecs("vfma", a, b, c)
    sig = a(a, b, c)

    def codegen(context, builder, sig, args):
        vecty = args[0].type
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vecty, [vecty] * 3),
                                            f"llvm.fma.{_suffix(vecty)}")
        return builder.call(fn, args)
    return sig, codegen


@intrinsic
def vadd(typingctx, a, b):
    _check_vecs("vadd", a, b)
    sig = a(a, b)

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])
    return sig, codegen


@intrinsic
def vsum(typingctx, v):
    _check_vecs("vsum", v)
    sig = v.dtype(v)

    def codegen(context, builder, sig, args):
        # by halving: the upper half added to the lower, until one lane is left (log2(lanes) shuffles and
        # adds: an in-order sum of 16 lanes is 16 dependent adds); the same order on every machine
        value = args[0]
        lanes = value.type.count
        while lanes > 1:
            lanes //= 2
            low = builder.shuffle_vector(value, value, ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                                    list(range(lanes))))
            high = builder.shuffle_vector(value, value, ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                                     list(range(lanes, 2 * lanes))))
            value = builder.fadd(low, high)
        return builder.extract_element(value, ir.Constant(ir.IntType(32), 0))
    return sig, codegen


def _row_type(arr, width, count):
    return types.UniTuple(Vec(arr.dtype, width.lanes), count.n)


def _offset(builder, index, j: int, lanes: int):
    return builder.add(index, ir.Constant(index.type, j * lanes))


@intrinsic
def vzeros(typingctx, arr, width, count):
    _check_row_of(arr, width, count, "vzeros")
    sig = _row_type(arr, width, count)(arr, width, count)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type.dtype)
        zero = ir.Constant(vecty, [0.0] * vecty.count)
        return context.make_tuple(builder, sig.return_type, [zero] * sig.return_type.count)
    return sig, codegen


@intrinsic
def vloads(typingctx, arr, index, width, count):
    _check_row_of(arr, width, count, "vloads")
    sig = _row_type(arr, width, count)(arr, types.intp, width, count)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type.dtype)
        vectors = [builder.load(_pointer(context, builder, sig.args[0], args[0],
                                         _offset(builder, args[1], j, vecty.count), vecty),
                                align=_element_bytes(vecty))
                   for j in range(sig.return_type.count)]
        return context.make_tuple(builder, sig.return_type, vectors)
    return sig, codegen


@intrinsic
def vloads_partial(typingctx, arr, index, available, width, count):
    _check_row_of(arr, width, count, "vloads_partial")
    sig = _row_type(arr, width, count)(arr, types.intp, types.intp, width, count)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type.dtype)
        lanes = vecty.count
        vectors = []
        for j in range(sig.return_type.count):
            pointer = _pointer(context, builder, sig.args[0], args[0], _offset(builder, args[1], j, lanes), vecty)
            left = builder.sub(args[2], ir.Constant(args[2].type, j * lanes))
            vectors.append(_masked_load(builder, builder.module, pointer, _mask(builder, left, lanes), vecty))
        return context.make_tuple(builder, sig.return_type, vectors)
    return sig, codegen


@intrinsic
def vstores_partial(typingctx, arr, index, row, available):
    _check_row_into(arr, row, "vstores_partial")
    sig = types.void(arr, types.intp, row, types.intp)

    def codegen(context, builder, sig, args):
        vectors = cgutils.unpack_tuple(builder, args[2])
        vecty = vectors[0].type
        lanes = vecty.count
        for j, value in enumerate(vectors):
            pointer = _pointer(context, builder, sig.args[0], args[0], _offset(builder, args[1], j, lanes), vecty)
            left = builder.sub(args[3], ir.Constant(args[3].type, j * lanes))
            whole = builder.icmp_signed(">=", left, ir.Constant(left.type, lanes))
            with builder.if_else(whole) as (then, otherwise):
                with then:
                    builder.store(value, pointer, align=_element_bytes(vecty))
                with otherwise:
                    some = builder.icmp_signed(">", left, ir.Constant(left.type, 0))
                    with builder.if_then(some):
                        _masked_store(builder, builder.module, value, pointer, _mask(builder, left, lanes))
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def vfmas(typingctx, v, xs, row):
    _check_vecs("vfmas", v)
    _check_row(xs, "vfmas")
    _check_row(row, "vfmas")
    if xs != row or row.dtype != v:
        raise TypingError(f"vfmas takes a vector and two rows of its type, of one length, got {v}, {xs}, {row}")
    sig = row(v, xs, row)

    def codegen(context, builder, sig, args):
        vecty = args[0].type
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vecty, [vecty] * 3),
                                            f"llvm.fma.{_suffix(vecty)}")
        xs, row = cgutils.unpack_tuple(builder, args[1]), cgutils.unpack_tuple(builder, args[2])
        fused = [builder.call(fn, [args[0], x, r]) for x, r in zip(xs, row, strict=True)]
        return context.make_tuple(builder, sig.return_type, fused)
    return sig, codegen


@intrinsic
def vdeal(typingctx, arr, index, width, count):
    _check_row_of(arr, width, count, "vdeal")
    sig = _row_type(arr, width, count)(arr, types.intp, width, count)

    def codegen(context, builder, sig, args):
        vecty = context.get_value_type(sig.return_type.dtype)
        lanes, n = vecty.count, sig.return_type.count
        # one load of n vectors' worth, then a shuffle per phase: LLVM's backend turns the pattern into
        # permutes across the n registers (its interleaved-access lowering where the target has one)
        wide = ir.VectorType(vecty.element, n * lanes)
        run = builder.load(_pointer(context, builder, sig.args[0], args[0], args[1], wide), align=_element_bytes(vecty))
        phases = [builder.shuffle_vector(run, ir.Constant(wide, ir.Undefined),
                                         ir.Constant(ir.VectorType(ir.IntType(32), lanes),
                                                     [p + n * lane for lane in range(lanes)]))
                  for p in range(n)]
        return context.make_tuple(builder, sig.return_type, phases)
    return sig, codegen


@intrinsic
def vstores_apart(typingctx, arr, index, apart, row):
    _check_row_into(arr, row, "vstores_apart")
    sig = types.void(arr, types.intp, types.intp, row)

    def codegen(context, builder, sig, args):
        at = args[1]
        for value in cgutils.unpack_tuple(builder, args[3]):
            builder.store(value, _pointer(context, builder, sig.args[0], args[0], at, value.type),
                          align=_element_bytes(value.type))
            at = builder.add(at, args[2])
        return context.get_dummy_value()
    return sig, codegen


@intrinsic
def prefetch(typingctx, arr, index):
    _check_array(arr, "prefetch")
    sig = types.void(arr, types.intp)

    def codegen(context, builder, sig, args):
        byte = ir.IntType(8).as_pointer()
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        fn = cgutils.get_or_insert_function(
            builder.module, ir.FunctionType(ir.VoidType(), [byte] + [ir.IntType(32)] * 3), "llvm.prefetch.p0i8")
        # a read (0), kept in the outer caches (locality 2: L2 on x86), of data (1)
        builder.call(fn, [builder.bitcast(builder.gep(data, [args[1]]), byte), ir.Constant(ir.IntType(32), 0),
                          ir.Constant(ir.IntType(32), 2), ir.Constant(ir.IntType(32), 1)])
        return context.get_dummy_value()
    return sig, codegen
