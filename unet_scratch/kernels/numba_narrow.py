"""Convolutions with fewer filters or input channels than a vector register holds, and bias gradients, as
small compiled loops: what the course's U-Net needs beside the register tiles, so that a training step never
calls BLAS (whose spinning threads would compete with the Numba backend's own).

    pointwise_small(_backward)    the 1x1 head with 1 (or a few) filters: y = x W + b, dx = dy W^T, dW = x^T dy
    input_gradient_small_c        dx of a stride-1 conv with fewer input channels than a vector (the first
                                  layer, C = 1), gathered per input pixel
    bias_gradient                 db = dy summed over pixels, in fixed blocks

Sums over pixels (dW, db) run in blocks of ``SUM_PIXELS`` added in a fixed order, split into ``WGRAD_PARTS``
fixed parts: the same bits whatever the number of threads.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from .numba_direct import MIN_PARALLEL_MACS, SUM_PIXELS, WGRAD_PARTS
from .numba_threads import parts_for, run_parts, split

_jit = dict(cache=True, nogil=True)       # always serial (no prange), so always cached


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


@njit(cache=True, nogil=True, fastmath={"reassoc", "contract"})
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
