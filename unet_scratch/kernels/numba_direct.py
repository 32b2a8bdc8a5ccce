"""Direct convolutions on the CPU: no im2col buffer, the multiply-adds in registers, rows split across cores.

The im2col route (``numba_conv.py``) copies every input pixel KH*KW times into a cols matrix and hands BLAS a
product whose width is the number of filters. With the course's 16-128 channels that copy, and BLAS on
matrices 16 or 32 columns wide, cost more than the arithmetic: 20-60 GFLOP/s per core on the 128 x 128 layers.
Here each output row is computed straight from the (zero-padded) input by ``numba_simd.fma_tile``, which
keeps a block of R pixels x V vectors of filters in registers while it runs over the kernel rows and the
(kernel column, channel) pairs, which NHWC stores next to each other:

    y[n, i, j, f] = b[f] + sum over a < KH of  sum over u < KW*C of
                    x_pad[n, i*sh + a, j*sw + u // C, u % C] * W[a*KW*C + u, f]

    forward      conv_direct(x, w, b, strides, pads)          y
    input grad.  the forward conv of dy (padded by KH-1-top ...) with the flipped kernel (stride 1)
    weight grad. weight_gradient_direct(x_pad, dy, ...)      dW[a, q, c, f] = sum over pixels of
                 x_pad[n, i*sh + a, j*sw + q, c] * dy[n, i, j, f]: the same tile with channels c in the
                 register block and the pixels as the reduction, over blocks of rows that stay in cache

When it applies (``use_direct``): the filters are a multiple of the vector width (16 float32 numbers with
AVX-512, 8 with AVX2) and the kernel is larger than 1x1 (a 1x1 conv is a plain matrix product).

Cores. Output rows are independent, so the forward pass and the input gradient split them into one block per
core and run the blocks in Python threads (the kernels release the GIL); a block's numbers do not depend on
how many blocks there are. The weight gradient is a sum over all rows: it is always split into
``WGRAD_PARTS`` blocks (whatever the machine), each summed into its own buffer in a fixed order and the
buffers added in a fixed order, so the result is the same on every machine and on every run. No BLAS runs
here, so nothing competes with OpenBLAS's own threads. ``UNET_SCRATCH_THREADS=1`` runs everything in the
calling thread.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .numba_loops import PARALLEL
from .numba_simd import VECTOR_BITS, fma_tile, lanes
from .numba_threads import parts_for, run_parts, split, threads

_jit = dict(cache=not PARALLEL, nogil=True)
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


def _check_width(f, dtype):
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
def pixel_tiles(buf, rowbase, step, sega, segb, nseg, seglen, wmat, f0, f, v2, y, out, ow, init):
    """One output row's pixels j < OW for the filters f0 ... f0 + (2 if v2 else 1)*L: tiles of 8 pixels (6
    with AVX2 when two vectors wide), then single pixels. Pixel j reads buf from rowbase + j*step."""
    j = 0
    if v2:
        if WIDE_REGISTERS:
            while j + 8 <= ow:
                fma_tile(8, 2, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                         y, out + j * f + f0, f, init, False)
                j += 8
        else:
            while j + 6 <= ow:
                fma_tile(6, 2, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                         y, out + j * f + f0, f, init, False)
                j += 6
        while j < ow:
            fma_tile(1, 2, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                     y, out + j * f + f0, f, init, False)
            j += 1
    else:
        while j + 8 <= ow:
            fma_tile(8, 1, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                     y, out + j * f + f0, f, init, False)
            j += 8
        while j < ow:
            fma_tile(1, 1, buf, rowbase + j * step, step, sega, segb, nseg, seglen, 1, wmat, f0, f,
                     y, out + j * f + f0, f, init, False)
            j += 1


@njit(**_jit)
def conv_rows(x, wmat, bias, kh, kw, sh, sw, top, left, rows_per_block, y, r0, r1):
    """Output rows t = n*OH + i in [r0, r1) of y = conv(x_pad, W) + bias, x_pad = x zero-padded by
    (top, left, ...), built only a block of rows at a time (``fill_rows``, kept in cache).

    x: (N, H, W, C), wmat: (KH*KW*C, F) rows ordered (a, q, c), bias: (F,), y: (N, OH, OW, F) with F a
    multiple of the vector width L. For output row i, kernel row a reads padded row i*sh + a, whose
    (column, channel) pairs j*sw + q, c for q < KW are KW*C consecutive numbers: one segment of the tile.
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
                            y, (n * oh + i) * ow * f, ow, bias[f0:])
                f0 += 2 * width if v2 else width
        t += i1 - i0


def block_rows(in_row_bytes, sh, kh, budget=None):
    """Output rows per block so that the block's padded input rows take about ``budget`` bytes."""
    budget = CACHE_BYTES // 2 if budget is None else budget
    return max(1, (budget // max(1, in_row_bytes) - kh) // max(1, sh) + 1)


def conv_direct(x, wmat, kernel_hw, strides, pads, out_hw, b=None):
    """y = conv(x_pad, w) (+ b) by the direct kernels; x_pad exists only a cached block at a time.
    x: (N, H, W, C) contiguous, wmat: (KH*KW*C, F) rows (a, q, c), pads: ((top, bottom), (left, right))
    (only top and left matter: the output size says the rest), out_hw: (OH, OW), b: (F,) or None.
    Returns y: (N, OH, OW, F)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel_hw, strides, out_hw
    (top, _), (left, _) = pads
    n, _, _, c = x.shape
    f = wmat.shape[1]
    _check_width(f, x.dtype)
    y = np.empty((n, oh, ow, f), dtype=x.dtype)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    rows = block_rows(((ow - 1) * sw + kw) * c * x.itemsize, sh, kh)
    macs = n * oh * ow * kh * kw * c * f
    parts = threads() if macs >= MIN_PARALLEL_MACS else 1
    run_parts(conv_rows, [(x, wmat, bias, kh, kw, sh, sw, top, left, rows, y, r0, r1)
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
                                     dw, out + c0 * f + f0, f, zero, True)
                            c0 += 8
                        elif c0 + 8 <= c:
                            fma_tile(8, 1, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True)
                            c0 += 8
                        elif v2:
                            fma_tile(1, 2, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True)
                            c0 += 1
                        else:
                            fma_tile(1, 1, buf, q * c + c0, 1, sega, segb, nseg, ow, step, dy, f0, f,
                                     dw, out + c0 * f + f0, f, zero, True)
                            c0 += 1
                    f0 += 2 * width if v2 else width
        t += nseg


def weight_gradient_direct(x, dy, kernel_hw, strides, pads):
    """dW: (KH, KW, C, F) of a conv of x: (N, H, W, C) padded by pads = ((top, _), (left, _)), given
    dy: (N, OH, OW, F), both contiguous. Summed in WGRAD_PARTS fixed blocks of rows (see the module)."""
    (kh, kw), (sh, sw), ((top, _), (left, _)) = kernel_hw, strides, pads
    c = x.shape[3]
    n, oh, ow, f = dy.shape
    _check_width(f, dy.dtype)
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


# ----------------------------------------------------------------------------- transposed conv, kernel = stride


@njit(**_jit)
def upconv_rows(x, wmat, bias, kh, kw, y, r0, r1):
    """Rows t = n*H + i in [r0, r1) of a transposed convolution whose kernel equals its stride:
    y[n, i*KH + a, j*KW + q, f] = b[f] + sum over c of x[n, i, j, c] * w[a, q, f, c].

    x: (N, H, W, C), wmat: (C, KH*KW*F) columns ordered (a, q, f), bias: (F,), y: (N, H*KH, W*KW, F) with F a
    multiple of the vector width. The stamps do not overlap: each (a, q) is a 1x1 conv written straight to
    its pixels of y (stride KW*F between them), no pixel shuffle.
    """
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    oh, ow, f = y.shape[1], y.shape[2], y.shape[3]
    width = lanes_of(y)
    seg = np.zeros(1, dtype=np.int64)
    ld = kh * kw * f
    for t in range(r0, r1):
        n, i = t // h, t % h
        xrow = t * w * c
        for a in range(kh):
            for q in range(kw):
                out = ((n * oh + i * kh + a) * ow + q) * f
                col = (a * kw + q) * f
                for f0 in range(0, f, width):
                    init = bias[f0:]
                    j = 0
                    while j + 8 <= w:
                        fma_tile(8, 1, x, xrow + j * c, c, seg, seg, 1, c, 1, wmat, col + f0, ld,
                                 y, out + j * kw * f + f0, kw * f, init, False)
                        j += 8
                    while j < w:
                        fma_tile(1, 1, x, xrow + j * c, c, seg, seg, 1, c, 1, wmat, col + f0, ld,
                                 y, out + j * kw * f + f0, kw * f, init, False)
                        j += 1


def upconv_direct(x, w, b=None):
    """Transposed conv with kernel == stride by direct kernels. x: (N, H, W, C), w: (KH, KW, F, C) (Keras's
    layout), b: (F,) or None. Returns y: (N, H*KH, W*KW, F)."""
    kh, kw, f, c = w.shape
    n, h, wd, _ = x.shape
    _check_width(f, x.dtype)
    y = np.empty((n, h * kh, wd * kw, f), dtype=x.dtype)
    wmat = np.ascontiguousarray(w.reshape(kh * kw * f, c).T)              # (C, KH*KW*F)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    parts = threads() if x.size * kh * kw * f >= MIN_PARALLEL_MACS else 1
    run_parts(upconv_rows, [(x, wmat, bias, kh, kw, y, r0, r1) for r0, r1 in split(n * h, parts)])
    return y


@njit(**_jit)
def upconv_input_rows(dy, wmat, kh, kw, dx, r0, r1):
    """Rows t = n*H + i in [r0, r1) of the input gradient of :func:`upconv_rows`:
    dx[n, i, j, c] = sum over a, q, f of dy[n, i*KH + a, j*KW + q, f] * w[a, q, f, c].

    dy: (N, H*KH, W*KW, F), wmat: (KH*KW*F, C) rows (a, q, f), dx: (N, H, W, C), C a multiple of the width.
    For each kernel row a the (q, f) pairs are contiguous in dy (KW*F numbers) and in wmat.
    """
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    oh, ow, f = dy.shape[1], dy.shape[2], dy.shape[3]
    width = lanes_of(dx)
    sega = np.arange(kh) * ow * f
    segb = np.arange(kh) * kw * f
    zero = np.zeros(width, dtype=dx.dtype)
    step = kw * f
    for t in range(r0, r1):
        n, i = t // h, t % h
        base = (n * oh + i * kh) * ow * f
        out = t * w * c
        for c0 in range(0, c, width):
            j = 0
            while j + 8 <= w:
                fma_tile(8, 1, dy, base + j * step, step, sega, segb, kh, step, 1, wmat, c0, c,
                         dx, out + j * c + c0, c, zero, False)
                j += 8
            while j < w:
                fma_tile(1, 1, dy, base + j * step, step, sega, segb, kh, step, 1, wmat, c0, c,
                         dx, out + j * c + c0, c, zero, False)
                j += 1


@njit(**_jit)
def upconv_weight_rows(x, dy, kh, kw, rows_per_block, r0, r1, dw):
    """dw: (KH*KW*C, F), zeroed by the caller, += sum over the input rows t = n*H + i in [r0, r1) of
    x[n, i, j, c] * dy[n, i*KH + a, j*KW + q, f] at row (a*KW + q)*C + c, a block of rows at a time
    (channels c in the register block, filters f in the vectors; F a multiple of the vector width)."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    f = dy.shape[3]
    width = lanes_of(dw)
    zero = np.zeros(width, dtype=dw.dtype)
    sega = np.empty(rows_per_block, dtype=np.int64)
    segb = np.empty(rows_per_block, dtype=np.int64)
    for s0 in range(r0, r1, rows_per_block):
        nseg = min(r1, s0 + rows_per_block) - s0
        for k in range(nseg):
            n, i = (s0 + k) // h, (s0 + k) % h
            sega[k] = (s0 + k) * w * c
            segb[k] = (n * h * kh + i * kh) * w            # dy's row i*KH + a, in units of KW*F numbers
        for a in range(kh):
            for q in range(kw):
                tap = (a * w * kw + q) * f                  # dy[n, i*KH + a, q, 0] from dy[n, i*KH, 0, 0]
                out = (a * kw + q) * c
                for f0 in range(0, f, width):
                    c0 = 0
                    while c0 + 8 <= c:
                        fma_tile(8, 1, x, c0, 1, sega, segb, nseg, w, c, dy, tap + f0, kw * f,
                                 dw, (out + c0) * f + f0, f, zero, True)
                        c0 += 8
                    while c0 < c:
                        fma_tile(1, 1, x, c0, 1, sega, segb, nseg, w, c, dy, tap + f0, kw * f,
                                 dw, (out + c0) * f + f0, f, zero, True)
                        c0 += 1


def upconv_backward_direct(dy, x, w):
    """(dx, dw) of :func:`upconv_direct`. dy: (N, H*KH, W*KW, F) contiguous, x: (N, H, W, C), w: (KH, KW, F, C).
    dw needs F, dx needs C a multiple of the vector width (dx is None otherwise: the caller computes it
    another way)."""
    kh, kw, f, c = w.shape
    n, h, wd, _ = x.shape
    _check_width(f, x.dtype)
    dx = None
    if c % lanes(x.dtype) == 0:
        dx = np.empty(x.shape, dtype=x.dtype)
        parts = threads() if x.size * kh * kw * f >= MIN_PARALLEL_MACS else 1
        run_parts(upconv_input_rows, [(dy, np.ascontiguousarray(w.reshape(kh * kw * f, c)), kh, kw, dx, r0, r1)
                                      for r0, r1 in split(n * h, parts)])
    row_bytes = (wd * c + kh * wd * kw * f) * x.itemsize
    rows = max(1, min(CACHE_BYTES // max(1, row_bytes), SUM_PIXELS // wd))
    blocks = split(n * h, WGRAD_PARTS)
    partial = [np.zeros((kh * kw * c, f), dtype=x.dtype) for _ in blocks]
    run_parts(upconv_weight_rows, [(x, dy, kh, kw, rows, r0, r1, dw) for (r0, r1), dw in zip(blocks, partial)])
    dw = partial[0]
    for other in partial[1:]:
        dw += other
    return dx, np.ascontiguousarray(dw.reshape(kh, kw, c, f).transpose(0, 1, 3, 2))


# ----------------------------------------------------------------------------- narrow convs (fewer numbers than a vector)


@njit(**_jit)
def pointwise_rows(x, w, bias, y, p0, p1):
    """y[p, f] = bias[f] + sum over c of x[p, c] * w[c, f] for the pixels p0 <= p < p1: a 1x1 conv with
    fewer filters than a vector holds (U-Net's 1-filter head). x: (P, C), w: (C, F), y: (P, F)."""
    c, f = w.shape
    for p in range(p0, p1):
        for k in range(f):
            acc = bias[k]
            for ch in range(c):
                acc += x[p, ch] * w[ch, k]
            y[p, k] = acc


@njit(**_jit)
def pointwise_input_rows(dy, w, dx, p0, p1):
    """dx[p, c] = sum over f of dy[p, f] * w[c, f] for p0 <= p < p1 (the input gradient of pointwise_rows)."""
    c, f = w.shape
    for p in range(p0, p1):
        for ch in range(c):
            dx[p, ch] = 0.0
        for k in range(f):
            d = dy[p, k]
            for ch in range(c):
                dx[p, ch] += d * w[ch, k]


@njit(**_jit)
def pointwise_weight_rows(x, dy, block, p0, p1, dwt):
    """dwt[f, c] += sum over p0 <= p < p1 of dy[p, f] * x[p, c], in sums of ``block`` pixels added to dwt
    (the weight gradient of pointwise_rows, transposed). dwt zeroed by the caller."""
    c = x.shape[1]
    f = dy.shape[1]
    part = np.empty((f, c), dtype=dwt.dtype)
    for s in range(p0, p1, block):
        part[:] = 0.0
        for p in range(s, min(p1, s + block)):
            for k in range(f):
                d = dy[p, k]
                for ch in range(c):
                    part[k, ch] += d * x[p, ch]
        dwt += part


def pointwise_small(x, w, b=None):
    """1x1 stride-1 conv without BLAS: x: (N, H, W, C), w: (1, 1, C, F), b: (F,) or None -> y: (N, H, W, F)."""
    c, f = w.shape[2:]
    xm = x.reshape(-1, c)
    y = np.empty((xm.shape[0], f), dtype=x.dtype)
    bias = np.zeros(f, dtype=x.dtype) if b is None else np.ascontiguousarray(b, dtype=x.dtype)
    wm = np.ascontiguousarray(w.reshape(c, f))
    run_parts(pointwise_rows, [(xm, wm, bias, y, a, b_) for a, b_ in split(xm.shape[0], parts_for(xm.size))])
    return y.reshape(*x.shape[:3], f)


def pointwise_small_backward(x, dy, w):
    """(dx, dw) of :func:`pointwise_small`; dw summed in WGRAD_PARTS fixed blocks of pixels."""
    c, f = w.shape[2:]
    xm, dym = x.reshape(-1, c), dy.reshape(-1, f)
    wm = np.ascontiguousarray(w.reshape(c, f))
    dx = np.empty_like(xm)
    run_parts(pointwise_input_rows, [(dym, wm, dx, a, b) for a, b in split(xm.shape[0], parts_for(xm.size))])
    blocks = split(xm.shape[0], WGRAD_PARTS)
    partial = [np.zeros((f, c), dtype=x.dtype) for _ in blocks]
    run_parts(pointwise_weight_rows, [(xm, dym, SUM_PIXELS, a, b, part) for (a, b), part in zip(blocks, partial)])
    dwt = partial[0]
    for other in partial[1:]:
        dwt += other
    return dx.reshape(x.shape), np.ascontiguousarray(dwt.T).reshape(1, 1, c, f)


@njit(cache=not PARALLEL, nogil=True, fastmath={"reassoc", "contract"})
def input_gradient_rows(dy, w, top, left, dx, r0, r1):
    """dx[n, h, x, c] = sum over a, q, f of dy[n, h + top - a, x + left - q, f] * w[a, q, c, f] (inside dy)
    for the rows t = n*H + h in [r0, r1): the input gradient of a stride-1 conv with fewer input channels
    than a vector (the first layer, C = 1), gathered (no scatter), each sum over f vectorised (its order
    is fixed at compile time: ``reassoc``). dy: (N, OH, OW, F), w: (KH, KW, C, F), dx: (N, H, W, C)."""
    kh, kw, c, f = w.shape
    oh, ow = dy.shape[1], dy.shape[2]
    h, wd = dx.shape[1], dx.shape[2]
    for t in range(r0, r1):
        n, i = t // h, t % h
        for j in range(wd):
            for ch in range(c):
                dx[n, i, j, ch] = 0.0
                for a in range(kh):
                    yi = i + top - a
                    if 0 <= yi < oh:
                        for q in range(kw):
                            yj = j + left - q
                            if 0 <= yj < ow:
                                s = dy[n, yi, yj, 0] * w[a, q, ch, 0]      # (in dy's dtype, not float64)
                                for k in range(1, f):
                                    s += dy[n, yi, yj, k] * w[a, q, ch, k]
                                dx[n, i, j, ch] += s


def input_gradient_small_c(dy, w, x_shape, pads):
    """dx: x_shape of a stride-1 conv with kernel w: (KH, KW, C, F) and pads ((top, _), (left, _)), given
    dy: (N, OH, OW, F) contiguous, by :func:`input_gradient_rows` split across cores."""
    (top, _), (left, _) = pads
    dx = np.empty(x_shape, dtype=dy.dtype)
    rows = x_shape[0] * x_shape[1]
    run_parts(input_gradient_rows, [(dy, w, top, left, dx, a, b)
                                    for a, b in split(rows, parts_for(dy.size * w.shape[0] * w.shape[1]))])
    return dx


# ----------------------------------------------------------------------------- bias gradient


@njit(**_jit)
def column_sum_rows(d, block, p0, p1, out):
    """out[f] += sum over p0 <= p < p1 of d[p, f], in partial sums of ``block`` rows (out zeroed)."""
    f = d.shape[1]
    part = np.empty(f, dtype=out.dtype)
    for s in range(p0, p1, block):
        part[:] = 0.0
        for p in range(s, min(p1, s + block)):
            for k in range(f):
                part[k] += d[p, k]
        out += part


def bias_gradient(dy):
    """db = dy summed over every axis but the last, dy: (..., F) contiguous; WGRAD_PARTS fixed blocks of rows
    (the same bits on every machine), split across cores."""
    d = dy.reshape(-1, dy.shape[-1])
    blocks = split(d.shape[0], WGRAD_PARTS if d.size >= MIN_PARALLEL_MACS // 4 else 1)
    partial = [np.zeros(d.shape[1], dtype=dy.dtype) for _ in blocks]
    run_parts(column_sum_rows, [(d, SUM_PIXELS, a, b, out) for (a, b), out in zip(blocks, partial)])
    db = partial[0]
    for other in partial[1:]:
        db += other
    return db
