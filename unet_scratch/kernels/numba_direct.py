"""Direct convolutions on the CPU: no im2col buffer, the multiply-adds in registers, rows split across cores.

The im2col route (``numba_conv.py``) copies every input pixel KH*KW times into a cols matrix and hands BLAS a
product whose width is the number of filters. With the course's 16-128 channels that copy, and BLAS on
matrices 16 or 32 columns wide, cost more than the arithmetic: 26-60 GFLOP/s per core on the 128 x 128 layers.
Here each output row is computed straight from the zero-padded input by ``numba_simd.fma_tile``, which
keeps a block of R pixels x V vectors of filters in registers while it runs over the kernel rows and the
(kernel column, channel) pairs, which NHWC stores next to each other:

    y[n, i, j, f] = b[f] + sum over a < KH of  sum over u < KW*C of
                    x_pad[n, i*sh + a, j*sw + u // C, u % C] * W[a*KW*C + u, f]

    conv_direct(x, wmat, kernel_hw, strides, pads, out_hw, b)      y; the input gradient of a stride-1 conv
                                                                   is this conv of dy with the flipped kernel
    weight_gradient_direct(x, dy, kernel_hw, strides, pads)        dW[a, q, c, f] = sum over pixels of
                 x_pad[n, i*sh + a, j*sw + q, c] * dy[n, i, j, f]: the same tile with channels c in the
                 register block and the pixels as the reduction, over blocks of rows that stay in cache

x_pad is never built whole: ``fill_rows`` pads one block of rows (about CACHE_BYTES / 2) into a buffer that
stays in cache. The 2x2/2 transposed conv uses the same tile (``numba_upconv.py``); convs with fewer filters
or channels than a vector holds have small compiled loops (``numba_narrow.py``).

When it applies (``use_direct``): the filters are a multiple of the vector width (16 float32 numbers with
AVX-512, 8 with AVX2), the kernel is larger than 1x1 and the weights stay in cache (C*F <= 8192, or <= 16384
on images of at most 64 x 64 pixels): every layer of the course's U-Net, the seed model's first and
outermost ones. Measured against the other routes in ``benchmarks/README.md``.

Cores (``numba_threads.py``). Output rows are independent, so the forward pass and the input gradient split
them into one block per core; a block's numbers do not depend on how many blocks there are. The weight
gradient is a sum over all rows: it is always split into ``WGRAD_PARTS`` blocks (whatever the machine), each
summed into its own buffer and the buffers added in a fixed order, so the result is the same on every
machine and on every run. No BLAS runs here, so nothing competes with OpenBLAS's own threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .numba_simd import VECTOR_BITS, fma_tile, lanes
from .numba_threads import run_parts, split, threads

_jit = dict(cache=True, nogil=True)       # always serial (no prange), so always cached
WIDE_REGISTERS = VECTOR_BITS >= 512    # AVX-512: 32 vector registers (AVX2: 16), so larger tiles fit

WGRAD_PARTS = 2                 # the weight gradient's fixed split (see the module docstring)
CACHE_BYTES = 512 << 10         # rows of x and dy per weight-gradient block: about half a core's L2
SUM_PIXELS = 256                # ... and at most about this many pixels summed in registers before they are
                                # added to dW (shorter float32 sums: rounding like a blocked BLAS product)
MIN_PARALLEL_MACS = 1 << 20     # below this, one thread (handing work to a thread costs ~20-50 us)
MAX_WEIGHTS = 8192              # C*F of the convs the direct kernels take (see use_direct) ...
MAX_WEIGHTS_SMALL_IMAGE = 16384  # ... and on images of at most SMALL_IMAGE pixels
SMALL_IMAGE = 64 * 64


def use_direct(kernel_hw, c, f, out_hw, dtype) -> bool:
    """True when the direct kernels should run a conv with C inputs, F filters and an OH x OW output: F a
    multiple of the vector width, a kernel larger than 1x1 (that is a plain matrix product), and weights
    small enough to stay in cache: C*F <= MAX_WEIGHTS, or <= MAX_WEIGHTS_SMALL_IMAGE on images of at most
    SMALL_IMAGE pixels. Wider layers (the seed model's 128-1024 channels) go to Winograd or im2col + BLAS,
    which measured faster there (benchmarks/README.md)."""
    if tuple(kernel_hw) == (1, 1) or f % lanes(dtype) or np.dtype(dtype) not in (np.float32, np.float64):
        return False
    return c * f <= MAX_WEIGHTS or (c * f <= MAX_WEIGHTS_SMALL_IMAGE and out_hw[0] * out_hw[1] <= SMALL_IMAGE)


def use_direct_upconv(c, f, dtype) -> bool:
    """True when a transposed conv with kernel == stride should use the direct kernels: F a multiple of the
    vector width and C*F <= MAX_WEIGHTS (its weights are read for every tile of pixels)."""
    return f % lanes(dtype) == 0 and c * f <= MAX_WEIGHTS and np.dtype(dtype) in (np.float32, np.float64)


def check_width(f, dtype):
    """The tiles write whole vectors of filters: refuse F that is not a multiple of the vector width."""
    if f % lanes(dtype):
        raise ValueError(f"the direct kernels need a number of filters that is a multiple of {lanes(dtype)} "
                         f"({np.dtype(dtype).name} numbers per vector register here), got {f}; call "
                         f"numba_ops.conv2d / conv2d_transpose, which pick another kernel for it")


# ----------------------------------------------------------------------------- forward


@njit(**_jit)
def lanes_of(a):
    """Numbers per vector register for a's dtype (numba_simd.lanes, inside compiled code)."""
    return _LANE_BYTES // a.itemsize


_LANE_BYTES = lanes(np.int8)       # the register width in bytes


@njit(**_jit)
def fill_rows(x, n, hi0, left, buf):
    """buf[rr, jp, :] = x[n, hi0 + rr, jp - left, :], zero where that lies outside x: a block of input rows
    with its padding, small enough to stay in cache. x: (N, H, W, C), buf: (rows, WP, C)."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for rr in range(buf.shape[0]):
        hi = hi0 + rr
        for jp in range(buf.shape[1]):
            wi = jp - left
            if 0 <= hi < h and 0 <= wi < w:
                for ch in range(c):
                    buf[rr, jp, ch] = x[n, hi, wi, ch]
            else:
                for ch in range(c):
                    buf[rr, jp, ch] = 0.0


@njit(**_jit)
def pixel_tiles(buf, rowbase, step, sega, segb, nseg, seglen, wmat, f0, f, v2, y, out, ow, init, relu):
    """One output row's pixels j < OW for the filters f0 ... f0 + (2 if v2 else 1)*L: tiles of 8 pixels (6
    with AVX2 when two vectors wide), then single pixels. Pixel j reads buf from rowbase + j*step; relu:
    store max(y, 0)."""
    j = 0
    if v2:
        if WIDE_REGISTERS:
            while j + 8 <= ow:
                fma_tile(8, 2, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                         y, out + j * f + f0, f, init, False, relu)
                j += 8
        else:
            while j + 6 <= ow:
                fma_tile(6, 2, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                         y, out + j * f + f0, f, init, False, relu)
                j += 6
        while j < ow:
            fma_tile(1, 2, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                     y, out + j * f + f0, f, init, False, relu)
            j += 1
    else:
        while j + 8 <= ow:
            fma_tile(8, 1, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                     y, out + j * f + f0, f, init, False, relu)
            j += 8
        while j < ow:
            fma_tile(1, 1, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                     y, out + j * f + f0, f, init, False, relu)
            j += 1


@njit(**_jit)
def conv_rows(x, wmat, bias, kh, kw, sh, sw, top, left, rows_per_block, relu, y, r0, r1):
    """Output rows t = n*OH + i in [r0, r1) of y = conv(x_pad, W) + bias, x_pad = x zero-padded by
    (top, left, ...), built only a block of rows at a time (``fill_rows``, kept in cache).

    x: (N, H, W, C), wmat: (KH*KW*C, F) rows ordered (a, q, c), bias: (F,), y: (N, OH, OW, F) with F a
    multiple of the vector width L; relu: store max(y, 0) (a ReLU fused into the conv). For output row i,
    kernel row a reads padded row i*sh + a, whose (column, channel) pairs j*sw + q, c for q < KW are KW*C
    consecutive numbers: one segment of the tile.
    """
    c = x.shape[3]
    oh, ow, f = y.shape[1], y.shape[2], y.shape[3]
    width = lanes_of(y)
    wp = (ow - 1) * sw + kw                                  # padded columns the windows span
    buf = np.empty(((rows_per_block - 1) * sh + kh) * wp * c, dtype=x.dtype)
    sega = np.arange(kh) * wp * c
    segb = np.arange(kh) * kw * c
    t = r0
    while t < r1:
        n, i0 = t // oh, t % oh
        i1 = min(oh, i0 + rows_per_block, i0 + r1 - t)
        rows_in = (i1 - i0 - 1) * sh + kh
        fill_rows(x, n, i0 * sh - top, left, buf[:rows_in * wp * c].reshape(rows_in, wp, c))
        for i in range(i0, i1):
            f0 = 0
            while f0 < f:
                v2 = f - f0 >= 2 * width
                pixel_tiles(buf, (i - i0) * sh * wp * c, sw * c, sega, segb, kh, kw * c, wmat, f0, f, v2,
                            y, (n * oh + i) * ow * f, ow, bias[f0:], relu)
                f0 += 2 * width if v2 else width
        t += i1 - i0


def block_rows(in_row_bytes, sh, kh, budget=None):
    """Output rows per block so that the block's padded input rows take about ``budget`` bytes."""
    budget = CACHE_BYTES // 2 if budget is None else budget
    return max(1, (budget // max(1, in_row_bytes) - kh) // max(1, sh) + 1)


def conv_direct(x, wmat, kernel_hw, strides, pads, out_hw, b=None, relu=False):
    """y = conv(x_pad, w) (+ b) by the direct kernels; x_pad exists only a cached block at a time.
    x: (N, H, W, C) contiguous, wmat: (KH*KW*C, F) rows (a, q, c), pads: ((top, bottom), (left, right))
    (only top and left matter: the output size says the rest), out_hw: (OH, OW), b: (F,) or None;
    relu=True returns max(y, 0) instead (the same numbers as a separate ReLU pass, without the pass).
    Returns y: (N, OH, OW, F)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel_hw, strides, out_hw
    (top, _), (left, _) = pads
    n, _, _, c = x.shape
    f = wmat.shape[1]
    check_width(f, x.dtype)
    y = np.empty((n, oh, ow, f), dtype=x.dtype)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    rows = block_rows(((ow - 1) * sw + kw) * c * x.itemsize, sh, kh)
    macs = n * oh * ow * kh * kw * c * f
    parts = threads() if macs >= MIN_PARALLEL_MACS else 1
    run_parts(conv_rows, [(x, wmat, bias, kh, kw, sh, sw, top, left, rows, bool(relu), y, r0, r1)
                          for r0, r1 in split(n * oh, parts)])
    return y


# ----------------------------------------------------------------------------- weight gradient


@njit(**_jit)
def weight_rows(x, dy, kh, kw, sh, sw, top, left, rows_per_block, r0, r1, dw):
    """dw (KH*KW*C, F), zeroed by the caller, += the weight gradient of the output rows t = n*OH + i in
    [r0, r1): dw[(a*KW + q)*C + c, f] = sum over pixels of x_pad[n, i*sh + a, j*sw + q, c] * dy[n, i, j, f],
    ``rows_per_block`` rows at a time: their padded input rows are built in a buffer (``fill_rows``) and
    every tap and channel is summed while they are in cache. Channels c in the register block (8, then
    single), filters f in the vectors (F a multiple of the width), pixels as the reduction."""
    c = x.shape[3]
    oh, ow, f = dy.shape[1], dy.shape[2], dy.shape[3]
    width = lanes_of(dy)
    zero = np.zeros(2 * width, dtype=dy.dtype)              # the tiles add to dw: no initial value
    wp = (ow - 1) * sw + kw
    buf = np.empty(((rows_per_block - 1) * sh + kh) * wp * c, dtype=x.dtype)
    sega = np.empty(rows_per_block, dtype=np.int64)
    segb = np.empty(rows_per_block, dtype=np.int64)
    step = sw * c
    t = r0
    while t < r1:
        n, i0 = t // oh, t % oh
        i1 = min(oh, i0 + rows_per_block, i0 + r1 - t)
        rows_in = (i1 - i0 - 1) * sh + kh
        fill_rows(x, n, i0 * sh - top, left, buf[:rows_in * wp * c].reshape(rows_in, wp, c))
        nseg = i1 - i0
        for a in range(kh):
            for s in range(nseg):
                sega[s] = (s * sh + a) * wp * c
                segb[s] = (t + s) * ow
            for q in range(kw):
                out = (a * kw + q) * c * f
                f0 = 0
                while f0 < f:
                    v2 = f - f0 >= 2 * width
                    c0 = 0
                    while c0 < c:
                        if c0 + 8 <= c and v2:
                            fma_tile(8, 2, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True, False)
                            c0 += 8
                        elif c0 + 8 <= c:
                            fma_tile(8, 1, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True, False)
                            c0 += 8
                        elif v2:
                            fma_tile(1, 2, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True, False)
                            c0 += 1
                        else:
                            fma_tile(1, 1, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True, False)
                            c0 += 1
                    f0 += 2 * width if v2 else width
        t += nseg


def weight_gradient_direct(x, dy, kernel_hw, strides, pads):
    """dW: (KH, KW, C, F) of a conv of x: (N, H, W, C) padded by pads = ((top, _), (left, _)), given
    dy: (N, OH, OW, F), both contiguous. Summed in WGRAD_PARTS fixed blocks of rows (see the module)."""
    (kh, kw), (sh, sw), ((top, _), (left, _)) = kernel_hw, strides, pads
    c = x.shape[3]
    n, oh, ow, f = dy.shape
    check_width(f, dy.dtype)
    in_row = ((ow - 1) * sw + kw) * c * x.itemsize
    rows = max(1, min(block_rows(in_row + ow * f * dy.itemsize, sh, kh), -(-SUM_PIXELS // ow)))
    blocks = split(n * oh, WGRAD_PARTS)
    partial = [np.zeros((kh * kw * c, f), dtype=dy.dtype) for _ in blocks]
    run_parts(weight_rows, [(x, dy, kh, kw, sh, sw, top, left, rows, r0, r1, dw)
                            for (r0, r1), dw in zip(blocks, partial)])
    dw = partial[0]
    for other in partial[1:]:
        dw += other
    return dw.reshape(kh, kw, c, f)
