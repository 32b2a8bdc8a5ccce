"""One register-blocked multiply-add tile, written as LLVM vector code: the micro-kernel of the direct convolutions.

Why this exists. A fast convolution keeps a small block of outputs (R pixels x V vectors of output channels)
in the CPU's vector registers while it runs over the whole reduction (taps x input channels), loading each
input value once and broadcasting it against a vector of weights. Numba compiles plain loops through LLVM,
but it cannot prove that the output array does not overlap the inputs, so an accumulator written as
``y[j, k] += x * w[k]`` is loaded and stored on every step, and an accumulator held in local variables is
never vectorised (measured: 6-12 GFLOP/s, against 80-140 for this tile on one core). Here the tile is
spelled out in LLVM's own vector type (``<16 x float>`` for float32 with AVX-512, ``<8 x float>`` with
AVX2), with ``llvm.fma`` for each multiply-add; everything around it (which tile, where, the threads) stays
ordinary Numba code in ``numba_direct.py``.

What one call computes (all indices are flat element offsets into C-contiguous arrays)::

    acc[r, v] = init[v*L : (v+1)*L]
              + sum over s < nseg, t < seglen of
                    a[abase + r*astep + sega[s] + t*tstride]            (one number, broadcast)
                  * b[bbase + (segb[s] + t)*ldb + v*L : ... + L]       (L consecutive numbers)
    out[obase + r*ostep + v*L : ... + L] = acc[r, v]      (or += with accumulate=True)
                                                         (then max(out, 0) with relu=True)

for r < R and v < V, L = ``lanes(dtype)``. For a convolution's forward pass, r runs over R output pixels of
one row, v over V x L output channels, s over the kernel rows that fall inside the input and t over
(kernel column, input channel) pairs, which are contiguous in NHWC: sega[s] is where kernel row s starts in
x, segb[s] the matching row of the (KH*KW*C, F) weight matrix. The weight gradient uses the same tile with
the roles of pixels and channels exchanged (see ``numba_direct.py``).

Every sum runs in the same order for a given call, whatever the thread or the tile position; each
multiply-add rounds once (a fused multiply-add), so results differ from the NumPy reference's BLAS products
by float rounding only (``tests/test_kernels_numba.py`` holds them to rtol = atol = 1e-5 in float32 and
1e-12 in float64).
"""
from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils, config
from numba.extending import intrinsic


def vector_bits() -> int:
    """Register width Numba compiles for: 512 with AVX-512, 256 with AVX/AVX2, else 128 (SSE)."""
    import llvmlite.binding as llvm
    features = config.CPU_FEATURES or llvm.get_host_cpu_features().flatten()
    return 512 if "+avx512f" in features else 256 if "+avx" in features else 128


VECTOR_BITS = vector_bits()


def lanes(dtype) -> int:
    """Numbers per vector register for float32 / float64 (16 / 8 with AVX-512, 8 / 4 with AVX2)."""
    return VECTOR_BITS // (8 * np.dtype(dtype).itemsize)


@intrinsic
def fma_tile(typingctx, R, V, a, abase, astep, sega, segb, nseg, seglen, tstride, b, bbase, ldb,
             out, obase, ostep, init, accumulate, relu):
    """See the module docstring. R and V must be integer literals (the tile's shape is compiled in);
    a, b, out, init: float arrays of one dtype (any shape, C-contiguous); sega, segb: int64 arrays."""
    if not (isinstance(R, types.IntegerLiteral) and isinstance(V, types.IntegerLiteral)):
        return None
    nr, nv = R.literal_value, V.literal_value
    sig = types.void(R, V, a, abase, astep, sega, segb, nseg, seglen, tstride, b, bbase, ldb, out, obase,
                     ostep, init, accumulate, relu)

    def codegen(context, builder, signature, args):
        tys = signature.args
        i64 = ir.IntType(64)

        def data(k):
            return context.make_array(tys[k])(context, builder, args[k]).data

        def int64(k):
            return context.cast(builder, args[k], tys[k], types.int64)

        def const(value):
            return ir.Constant(i64, value)

        ftype = context.get_value_type(tys[2].dtype)
        size = context.get_abi_sizeof(ftype)
        width = VECTOR_BITS // (8 * size)
        vtype = ir.VectorType(ftype, width)
        a_p, b_p, out_p, init_p = data(2), data(10), data(13), data(16)
        sega_p, segb_p = data(5), data(6)
        abase_, astep_, nseg_, seglen_, tstride_ = int64(3), int64(4), int64(7), int64(8), int64(9)
        bbase_, ldb_, obase_, ostep_ = int64(11), int64(12), int64(14), int64(15)
        add, mul = builder.add, builder.mul
        fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vtype, [vtype] * 3),
                                             f"llvm.fma.v{width}f{8 * size}")

        def vector_at(ptr, index):
            return builder.bitcast(builder.gep(ptr, [index]), vtype.as_pointer())

        undef = ir.Constant(vtype, ir.Undefined)
        splat = ir.Constant(ir.VectorType(ir.IntType(32), width), [0] * width)
        inits = [builder.load(vector_at(init_p, const(v * width)), align=size) for v in range(nv)]
        rows = [add(abase_, mul(const(r), astep_)) for r in range(nr)]

        # for s in range(nseg): for t in range(seglen): acc += a (broadcast) * b (vector); both loops may be empty
        entry = builder.basic_block
        outer = builder.append_basic_block("tile.segment")
        inner = builder.append_basic_block("tile.inner")
        latch = builder.append_basic_block("tile.next_segment")
        done = builder.append_basic_block("tile.done")
        nonempty = builder.and_(builder.icmp_signed(">", nseg_, const(0)),
                                builder.icmp_signed(">", seglen_, const(0)))
        builder.cbranch(nonempty, outer, done)

        builder.position_at_end(outer)
        s = builder.phi(i64)
        acc_outer = [[builder.phi(vtype) for _ in range(nv)] for _ in range(nr)]
        a_seg = builder.load(builder.gep(sega_p, [s]))
        b_seg = builder.load(builder.gep(segb_p, [s]))
        builder.branch(inner)

        builder.position_at_end(inner)
        t = builder.phi(i64)
        acc = [[builder.phi(vtype) for _ in range(nv)] for _ in range(nr)]
        brow = add(bbase_, mul(add(b_seg, t), ldb_))
        w = [builder.load(vector_at(b_p, add(brow, const(v * width))), align=size) for v in range(nv)]
        a_off = add(a_seg, mul(t, tstride_))
        new = []
        for r in range(nr):
            x = builder.load(builder.gep(a_p, [add(rows[r], a_off)]))
            xs = builder.shuffle_vector(builder.insert_element(undef, x, ir.Constant(ir.IntType(32), 0)),
                                        undef, splat)
            new.append([builder.call(fma, [xs, w[v], acc[r][v]]) for v in range(nv)])
        t_next = add(t, const(1))
        builder.cbranch(builder.icmp_signed("<", t_next, seglen_), inner, latch)
        t.add_incoming(const(0), outer)
        t.add_incoming(t_next, inner)
        for r in range(nr):
            for v in range(nv):
                acc[r][v].add_incoming(acc_outer[r][v], outer)
                acc[r][v].add_incoming(new[r][v], inner)

        builder.position_at_end(latch)
        s_next = add(s, const(1))
        builder.cbranch(builder.icmp_signed("<", s_next, nseg_), outer, done)
        s.add_incoming(const(0), entry)
        s.add_incoming(s_next, latch)
        for r in range(nr):
            for v in range(nv):
                acc_outer[r][v].add_incoming(inits[v], entry)
                acc_outer[r][v].add_incoming(new[r][v], latch)

        builder.position_at_end(done)
        final = []
        for r in range(nr):
            final.append([])
            for v in range(nv):
                phi = builder.phi(vtype)
                phi.add_incoming(inits[v], entry)
                phi.add_incoming(new[r][v], latch)
                final[r].append(phi)
        keep = context.cast(builder, args[17], tys[17], types.boolean)
        rectify = context.cast(builder, args[18], tys[18], types.boolean)
        zeros = ir.Constant(vtype, [ir.Constant(ftype, 0.0)] * width)
        for r in range(nr):
            for v in range(nv):
                ptr = vector_at(out_p, add(add(obase_, mul(const(r), ostep_)), const(v * width)))
                old = builder.load(ptr, align=size)
                value = builder.select(keep, builder.fadd(old, final[r][v]), final[r][v])
                positive = builder.fcmp_ordered(">", value, zeros)     # NaN -> 0, as numba_loops.relu_forward
                value = builder.select(rectify, builder.select(positive, value, zeros), value)
                builder.store(value, ptr, align=size)
        return context.get_dummy_value()

    return sig, codegen
