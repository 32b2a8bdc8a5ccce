"""The transposed convolution whose kernel equals its stride (U-Net's 2x2/2 up-convolution), by the register
tile of ``numba_simd.py``: no GEMM, no pixel shuffle, rows split across cores.

The stamps do not overlap, so each kernel position (a, q) is a 1x1 conv of x written straight to its pixels
of y, and both gradients are 1x1 convs too:

    y[n, i*KH + a, j*KW + q, f]   = b[f] + sum over c of x[n, i, j, c] * w[a, q, f, c]
    dx[n, i, j, c]                = sum over a, q, f of dy[n, i*KH + a, j*KW + q, f] * w[a, q, f, c]
    dw[a, q, f, c]                = sum over pixels of dy[n, i*KH + a, j*KW + q, f] * x[n, i, j, c]

The weights are read for every tile of 8 pixels, so this pays for small banks only
(``numba_direct.use_direct_upconv``: C*F <= 8192); larger ones keep the GEMM + pixel shuffle of numba_ops.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .numba_direct import CACHE_BYTES, MIN_PARALLEL_MACS, SUM_PIXELS, WGRAD_PARTS, check_width, lanes_of
from .numba_simd import fma_tile, lanes
from .numba_threads import run_parts, split, threads

_jit = dict(cache=True, nogil=True)       # always serial (no prange), so always cached


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
                                 y, out + j * kw * f + f0, kw * f, init, False, False)
                        j += 8
                    while j < w:
                        fma_tile(1, 1, x, xrow + j * c, c, seg, seg, 1, c, 1, wmat, col + f0, ld,
                                 y, out + j * kw * f + f0, kw * f, init, False, False)
                        j += 1


def upconv_direct(x, w, b=None):
    """Transposed conv with kernel == stride by direct kernels. x: (N, H, W, C), w: (KH, KW, F, C) (Keras's
    layout), b: (F,) or None. Returns y: (N, H*KH, W*KW, F)."""
    kh, kw, f, c = w.shape
    n, h, wd, _ = x.shape
    check_width(f, x.dtype)
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
                         dx, out + j * c + c0, c, zero, False, False)
                j += 8
            while j < w:
                fma_tile(1, 1, dy, base + j * step, step, sega, segb, kh, step, 1, wmat, c0, c,
                         dx, out + j * c + c0, c, zero, False, False)
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
                                 dw, (out + c0) * f + f0, f, zero, True, False)
                        c0 += 8
                    while c0 < c:
                        fma_tile(1, 1, x, c0, 1, sega, segb, nseg, w, c, dy, tap + f0, kw * f,
                                 dw, (out + c0) * f + f0, f, zero, True, False)
                        c0 += 1


def upconv_backward_direct(dy, x, w):
    """(dx, dw) of :func:`upconv_direct`. dy: (N, H*KH, W*KW, F) contiguous, x: (N, H, W, C), w: (KH, KW, F, C).
    dw needs F, dx needs C a multiple of the vector width (dx is None otherwise: the caller computes it
    another way)."""
    kh, kw, f, c = w.shape
    n, h, wd, _ = x.shape
    check_width(f, x.dtype)
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
