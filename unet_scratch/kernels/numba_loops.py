"""The compiled loops behind :mod:`unet_scratch.kernels.numba_ops`: copies, scatters and elementwise passes.

Every matrix product stays in BLAS (NumPy's ``@``); Numba compiles only the memory-bound loops around it,
which NumPy would otherwise run as several passes with temporary arrays:

    im2col_rows      gather a block of output rows' KH x KW windows into a cols matrix (zero padding
                     handled by a bounds check, so x is never padded or copied)
    col2im_rows      the adjoint: scatter-add a block of window rows back into dx
    add_bias_rows    y += b, in place on a block that is still in cache
    maxpool_forward  max and the flat index of the FIRST maximum of every window (row-major, like
    maxpool_backward TensorFlow and ``np.argmax``), and the routing of dy back to that index
    maxpool2x2_*     the same for U-Net's 2x2 stride-2 pool, unrolled so that it vectorises
    depth_to_space   the pixel shuffle of a 2x2 stride-2 transposed convolution, with the bias
    winograd_*       the input and output transforms of Winograd's F(2x2, 3x3) (see numba_winograd.py)
    relu_*           y = max(z, 0) and dz = dy * (y > 0), one pass each
    copy_channels    channel concatenation and its adjoint (take_channels), a block of rows at a time

Threads. The loops are written with ``prange`` but compiled with ``parallel=False`` unless the
environment variable ``UNET_SCRATCH_NUMBA_PARALLEL=1`` is set. On the 2-core machine this course targets,
OpenBLAS keeps a worker thread spinning for a while after every GEMM; a Numba parallel region started
right after a GEMM competes with it for the second core. Measured there: a ReLU pass after a GEMM took
8.0 ms with Numba's OpenMP threads against 2.2 ms single-threaded, and chunked im2col convolutions ran
4 to 15 times slower in parallel mode. The backend uses both cores another way: the kernels release the
GIL and ``numba_threads.run_parts`` runs blocks of rows in Python threads (the course's training step no
longer calls BLAS at all, see ``numba_direct.py``), so ``parallel=True`` is only an experiment now.

Cache. Only the default (serial) mode caches its machine code on disk (``cache=not PARALLEL``). Numba's
cache index is keyed by the signature, the CPU and the function's bytecode, not by the jit flags
(numba/numba#6845), so one shared cache would hand the parallel code of one run to every later default
run, and the serial code to a parallel run. Parallel mode therefore compiles the loops it uses in each
new process (about a second per kernel and dtype, measured on 2 cores); ``tests/test_numba_cache.py``
checks that each mode runs its own machine code.
"""
from __future__ import annotations

import os

import numpy as np
from numba import njit, prange

PARALLEL = os.environ.get("UNET_SCRATCH_NUMBA_PARALLEL", "0") == "1"
# the cache does not know the parallel flag (see the module docstring): only the serial code is cached
_jit = dict(cache=not PARALLEL, parallel=PARALLEL, fastmath=False, nogil=True)


# ----------------------------------------------------------------------------- convolution copies


@njit(**_jit)
def im2col_rows(x, t0, t1, oh, ow, kh, kw, sh, sw, top, left, cols):
    """Fill cols[(t - t0)*OW + j, (a*KW + q)*C + c] = x_pad[n, i*sh + a, j*sw + q, c] for t = n*OH + i.

    x: (N, H, W, C), rows t0 <= t < t1 of the (N*OH) output rows, cols: ((t1 - t0)*OW, KH*KW*C).
    Pixels that fall in the padding (index outside x) are written as 0.
    """
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for r in prange((t1 - t0) * ow):
        t = t0 + r // ow
        n, i, j = t // oh, t % oh, r % ow
        for a in range(kh):
            hi = i * sh + a - top
            for q in range(kw):
                wi = j * sw + q - left
                base = (a * kw + q) * c
                if 0 <= hi < h and 0 <= wi < w:
                    for ch in range(c):
                        cols[r, base + ch] = x[n, hi, wi, ch]
                else:
                    for ch in range(c):
                        cols[r, base + ch] = 0.0


@njit(**_jit)
def col2im_rows(dcols, t0, t1, oh, ow, kh, kw, sh, sw, top, left, dx):
    """Adjoint of :func:`im2col_rows`: dx[n, i*sh + a - top, j*sw + q - left, c] += dcols[r, (a, q, c)].

    dcols: ((t1 - t0)*OW, KH*KW*C), dx: (N, H, W, C) accumulated in place; entries that land in the
    padding are dropped. Serial over each image's rows, because overlapping windows add to the same pixel.
    """
    h, w, c = dx.shape[1], dx.shape[2], dx.shape[3]
    for r in range((t1 - t0) * ow):
        t = t0 + r // ow
        n, i, j = t // oh, t % oh, r % ow
        for a in range(kh):
            hi = i * sh + a - top
            if hi < 0 or hi >= h:
                continue
            for q in range(kw):
                wi = j * sw + q - left
                if wi < 0 or wi >= w:
                    continue
                base = (a * kw + q) * c
                for ch in range(c):
                    dx[n, hi, wi, ch] += dcols[r, base + ch]


@njit(**_jit)
def add_bias_rows(y, b):
    """In place on y: (M, F): y += b, b: (F,), on a block that is still in cache."""
    m, f = y.shape
    for r in prange(m):
        for k in range(f):
            y[r, k] += b[k]


# ----------------------------------------------------------------------------- channel concatenation


@njit(**_jit)
def copy_channels(x, y, c0, r0, r1):
    """y[n, h, :, c0:c0 + C] = x[n, h] for the rows t = n*H + h in [r0, r1); x: (N, H, W, C), y: (N, H, W, C')."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for t in range(r0, r1):
        n, i = t // h, t % h
        for j in range(w):
            for ch in range(c):
                y[n, i, j, c0 + ch] = x[n, i, j, ch]


@njit(**_jit)
def take_channels(y, x, c0, r0, r1):
    """x[n, h] = y[n, h, :, c0:c0 + C] for the rows t = n*H + h in [r0, r1): the adjoint of copy_channels."""
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for t in range(r0, r1):
        n, i = t // h, t % h
        for j in range(w):
            for ch in range(c):
                x[n, i, j, ch] = y[n, i, j, c0 + ch]


# ----------------------------------------------------------------------------- ReLU


@njit(**_jit)
def relu_forward(z, y):
    """y = max(z, 0) elementwise; z, y: flat arrays of the same length."""
    for i in prange(z.shape[0]):
        y[i] = z[i] if z[i] > 0.0 else 0.0


@njit(**_jit)
def relu_backward_flat(dy, y, dz):
    """dz = dy where y > 0, else 0; all flat arrays of the same length."""
    for i in prange(dy.shape[0]):
        dz[i] = dy[i] if y[i] > 0.0 else 0.0


# ----------------------------------------------------------------------------- max pooling


@njit(**_jit)
def maxpool_forward(x, ph, pw, sh, sw, top, left, y, argmax):
    """y[n, i, j, c] = max of the window, argmax[n, i, j, c] = a*PW + q of its first maximum.

    x: (N, H, W, C); y, argmax: (N, OH, OW, C). Padding (outside x) counts as -inf: it never wins
    unless the whole window is -inf, and then index 0 wins, as with ``np.argmax``.
    """
    n_, h, w, c = x.shape
    oh, ow = y.shape[1], y.shape[2]
    for t in prange(n_ * oh):
        n, i = t // oh, t % oh
        for j in range(ow):
            for ch in range(c):
                y[n, i, j, ch] = -np.inf
                argmax[n, i, j, ch] = 0
            for a in range(ph):
                hi = i * sh + a - top
                if hi < 0 or hi >= h:
                    continue
                for q in range(pw):
                    wi = j * sw + q - left
                    if wi < 0 or wi >= w:
                        continue
                    for ch in range(c):
                        v = x[n, hi, wi, ch]
                        if v > y[n, i, j, ch]:          # strict: the first maximum stays
                            y[n, i, j, ch] = v
                            argmax[n, i, j, ch] = a * pw + q


@njit(**_jit)
def maxpool2x2_forward(x, y, argmax):
    """The U-Net's pool (2x2, stride 2, no padding) unrolled: the same y and argmax as
    :func:`maxpool_forward`, ~15x faster because the four comparisons become selects that the compiler
    vectorises over the channels (the general loop's data-dependent branches do not vectorise).

    x: (N, H, W, C); y, argmax: (N, H//2, W//2, C).
    """
    n_, oh, ow, c = y.shape
    for t in prange(n_ * oh):
        n, i = t // oh, t % oh
        for j in range(ow):
            for ch in range(c):
                best, k = x[n, 2 * i, 2 * j, ch], 0
                v = x[n, 2 * i, 2 * j + 1, ch]                 # strict >: the first maximum stays
                k = 1 if v > best else k
                best = v if v > best else best
                v = x[n, 2 * i + 1, 2 * j, ch]
                k = 2 if v > best else k
                best = v if v > best else best
                v = x[n, 2 * i + 1, 2 * j + 1, ch]
                k = 3 if v > best else k
                best = v if v > best else best
                y[n, i, j, ch] = best
                argmax[n, i, j, ch] = k


@njit(**_jit)
def maxpool_backward(dy, argmax, pw, sh, sw, top, left, dx):
    """dx[window's first maximum] += dy; dx: (N, H, W, C) zeroed, dy and argmax: (N, OH, OW, C).

    Parallel (when enabled) over images only: overlapping windows of one image add to the same pixel.
    """
    n_, oh, ow, c = dy.shape
    h, w = dx.shape[1], dx.shape[2]
    for n in prange(n_):
        for i in range(oh):
            for j in range(ow):
                for ch in range(c):
                    k = argmax[n, i, j, ch]
                    hi = i * sh + k // pw - top
                    wi = j * sw + k % pw - left
                    if 0 <= hi < h and 0 <= wi < w:
                        dx[n, hi, wi, ch] += dy[n, i, j, ch]


# ----------------------------------------------------------------------------- transposed conv, k = s


@njit(**_jit)
def depth_to_space(z, kh, kw, b, y):
    """y[n, i*KH + a, j*KW + q, f] = z[n, i, j, (a*KW + q)*F + f] + b[f].

    z: (N, H, W, KH*KW*F), b: (F,) or length 0, y: (N, H*KH, W*KW, F).
    """
    n_, h, w = z.shape[0], z.shape[1], z.shape[2]
    f = y.shape[3]
    has_bias = b.shape[0] == f
    for t in prange(n_ * h):
        n, i = t // h, t % h
        for j in range(w):
            for a in range(kh):
                for q in range(kw):
                    base = (a * kw + q) * f
                    for k in range(f):
                        v = z[n, i, j, base + k]
                        y[n, i * kh + a, j * kw + q, k] = v + b[k] if has_bias else v


@njit(**_jit)
def space_to_depth(dy, kh, kw, dz):
    """Adjoint of :func:`depth_to_space` (bias aside): dz[n, i, j, (a, q, f)] = dy[n, i*KH + a, j*KW + q, f].

    dy: (N, H*KH, W*KW, F), dz: (N, H, W, KH*KW*F).
    """
    n_, h, w = dz.shape[0], dz.shape[1], dz.shape[2]
    f = dy.shape[3]
    for t in prange(n_ * h):
        n, i = t // h, t % h
        for j in range(w):
            for a in range(kh):
                for q in range(kw):
                    base = (a * kw + q) * f
                    for k in range(f):
                        dz[n, i, j, base + k] = dy[n, i * kh + a, j * kw + q, k]


# ----------------------------------------------------------------------------- Winograd F(2x2, 3x3)


@njit(**_jit)
def winograd_input(x, r0, r1, th, tw, top, left, v):
    """v[4i + j, p, c] = (B^T d B)[i, j] for the 4 x 4 input patch d of every output tile in a block.

    x: (N, H, W, C). Tiles of 2 x 2 output pixels, TH x TW per image; the block is the tile rows
    r0 <= t < r1 with t = n*TH + ti, and tile (t, tj) is p = (t - r0)*TW + tj. Its patch is
    d[a, q] = x[n, 2ti - top + a, 2tj - left + q, c], zero outside x (the padding).
    B^T = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]. v: (16, >= (r1 - r0)*TW, C).
    """
    h, w, c = x.shape[1], x.shape[2], x.shape[3]
    for t in prange(r0, r1):
        d = np.empty((4, 4, c), dtype=x.dtype)                  # per tile row: private under prange
        e = np.empty((4, 4, c), dtype=x.dtype)
        n, ti = t // th, t % th
        for tj in range(tw):
            p = (t - r0) * tw + tj
            for a in range(4):                                  # d: the patch, zeros in the padding
                hi = 2 * ti - top + a
                for q in range(4):
                    wi = 2 * tj - left + q
                    if 0 <= hi < h and 0 <= wi < w:
                        for ch in range(c):
                            d[a, q, ch] = x[n, hi, wi, ch]
                    else:
                        for ch in range(c):
                            d[a, q, ch] = 0.0
            for q in range(4):                                  # e = B^T d   (along the rows)
                for ch in range(c):
                    e[0, q, ch] = d[0, q, ch] - d[2, q, ch]
                    e[1, q, ch] = d[1, q, ch] + d[2, q, ch]
                    e[2, q, ch] = d[2, q, ch] - d[1, q, ch]
                    e[3, q, ch] = d[1, q, ch] - d[3, q, ch]
            for i in range(4):                                  # v = e B     (along the columns)
                for ch in range(c):
                    v[4 * i, p, ch] = e[i, 0, ch] - e[i, 2, ch]
                    v[4 * i + 1, p, ch] = e[i, 1, ch] + e[i, 2, ch]
                    v[4 * i + 2, p, ch] = e[i, 2, ch] - e[i, 1, ch]
                    v[4 * i + 3, p, ch] = e[i, 1, ch] - e[i, 3, ch]


@njit(**_jit)
def winograd_output(m, r0, r1, th, tw, b, y):
    """y[n, 2ti + i, 2tj + j, f] = (A^T M A)[i, j] + b[f] for every tile of the block (as in
    :func:`winograd_input`), M[k // 4, k % 4] = m[k, p, f]; A^T = [[1, 1, 1, 0], [0, 1, -1, -1]].

    m: (16, >= (r1 - r0)*TW, F), b: (F,) or length 0, y: (N, OH, OW, F); pixels past an odd edge are
    not written.
    """
    oh, ow, f = y.shape[1], y.shape[2], y.shape[3]
    has_bias = b.shape[0] == f
    for t in prange(r0, r1):
        s = np.empty((2, 4, f), dtype=m.dtype)
        n, ti = t // th, t % th
        for tj in range(tw):
            p = (t - r0) * tw + tj
            for q in range(4):                                  # s = A^T M   (along the rows)
                for k in range(f):
                    s[0, q, k] = m[q, p, k] + m[4 + q, p, k] + m[8 + q, p, k]
                    s[1, q, k] = m[4 + q, p, k] - m[8 + q, p, k] - m[12 + q, p, k]
            for i in range(2):                                  # y = s A     (along the columns)
                hi = 2 * ti + i
                if hi >= oh:
                    continue
                for j in range(2):
                    wj = 2 * tj + j
                    if wj >= ow:
                        continue
                    for k in range(f):
                        if j == 0:
                            val = s[i, 0, k] + s[i, 1, k] + s[i, 2, k]
                        else:
                            val = s[i, 1, k] - s[i, 2, k] - s[i, 3, k]
                        y[n, hi, wj, k] = val + b[k] if has_bias else val


@njit(**_jit)
def winograd_kernel(w, u):
    """u[4i + j, c, f] = (G g G^T)[i, j] for every 3 x 3 kernel g = w[:, :, c, f].

    w: (3, 3, C, F), u: (16, C, F); G = [[1, 0, 0], [1/2, 1/2, 1/2], [1/2, -1/2, 1/2], [0, 0, 1]].
    """
    c, f = w.shape[2], w.shape[3]
    e = np.empty((4, 3, f), dtype=w.dtype)
    for ch in range(c):
        for b in range(3):                                      # e = G g     (along the rows)
            for k in range(f):
                g0, g1, g2 = w[0, b, ch, k], w[1, b, ch, k], w[2, b, ch, k]
                e[0, b, k] = g0
                e[1, b, k] = 0.5 * (g0 + g1 + g2)
                e[2, b, k] = 0.5 * (g0 - g1 + g2)
                e[3, b, k] = g2
        for i in range(4):                                      # u = e G^T   (along the columns)
            for k in range(f):
                e0, e1, e2 = e[i, 0, k], e[i, 1, k], e[i, 2, k]
                u[4 * i, ch, k] = e0
                u[4 * i + 1, ch, k] = 0.5 * (e0 + e1 + e2)
                u[4 * i + 2, ch, k] = 0.5 * (e0 - e1 + e2)
                u[4 * i + 3, ch, k] = e2
