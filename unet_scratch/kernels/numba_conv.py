"""Fast convolution on the CPU: chunked im2col (compiled with Numba) feeding BLAS matrix products.

Since issue 19 this is the route for the wide layers (the seed model's 128-1024 channels): convs with small
filter banks (C*F <= 8192, the course's U-Net) go to the direct kernels of ``numba_direct.py`` first, which
do not copy the input KH*KW times and do not depend on BLAS doing well on matrices 16-64 columns wide.

The maths is the reference's (``unet_scratch/ops/conv.py``): y = im2col(x_pad) @ W. Three changes make
it fast without changing a number beyond float rounding:

1. Chunks. The full cols matrix is KH*KW times larger than x (151 MB for the 256 x 256 x 64 layers of the
   seed model). Instead, a block of output rows is gathered into a cols buffer of about ``CHUNK_BYTES``,
   multiplied straight into its slice of y (``np.matmul(..., out=...)``), and the bias added while that
   slice is still in cache. The buffer is reused, so the big temporary never exists.
   Measured on the seed model's widest layers (256 x 256, 64 -> 64 channels): 53 ms for the NumPy
   reference, 27 ms chunked.
2. No padding copy. The gather checks bounds and writes zeros for the padding.
3. The input gradient of a stride-1 convolution is itself a convolution: with the kernel flipped in
   both spatial axes and its channel axes swapped, w_flip[a, q, f, c] = w[KH-1-a, KW-1-q, c, f],

       dx = conv(dy padded by (KH-1-top, KH-1-bottom) x (KW-1-left, KW-1-right), w_flip)

   It gathers KH*KW*F numbers per pixel where dcols = dY @ W^T + col2im writes KH*KW*C and scatters
   them back, so it wins when C > F (the decoder's first convs after a concatenation: 41 ms against
   57 ms at 256 x 256, 128 -> 64 channels) and col2im wins otherwise (the first layer, C = 1: 2.6 ms
   against 11 ms). Both run chunk by chunk; ``method`` picks one by hand.

4. Winograd. A 3x3 stride-1 conv with at least 16 channels on a 32 x 32 or larger output goes to
   ``numba_winograd.winograd_conv`` (F(2x2, 3x3): 16 multiplies per 2 x 2 output tile instead of 36), and
   so does the input gradient of such a conv when C <= F (the flipped conv of dy). ``WINOGRAD = False``
   turns it off. Measured on the seed model (benchmarks/README.md): the forward pass 1150 -> 790 ms.

The alternative measured for stride 1 ("shifted views": flatten the padded image, run one GEMM per kernel
offset on a shifted slice, sum the nine products) was slower here: nine GEMMs with K = C instead of one
with K = 9C, plus eight accumulation passes (see ``benchmarks/README.md``).
"""
from __future__ import annotations

import numpy as np

from . import numba_loops as loops
from .numba_winograd import use_winograd, winograd_conv
from .xp_ops import conv_geometry, flipped_kernel_matrix, use_flipped_conv  # noqa: F401

CHUNK_BYTES = 8 << 20        # cols buffer per GEMM: big enough for BLAS, small enough to stay in cache
MIN_CHUNK_PIXELS = 2048      # never fewer rows than this per GEMM (deep layers: one chunk)
MIN_WGRAD_PIXELS = 4096      # the weight gradient accumulates per chunk: keep chunks longer
WINOGRAD = True              # 3x3 stride-1 convs with enough channels by Winograd (numba_winograd.py)


def _rows_per_chunk(ow, k, itemsize, min_pixels):
    """How many output rows (of OW pixels each) go into one GEMM."""
    rows = max(1, CHUNK_BYTES // max(1, ow * k * itemsize))
    return max(rows, -(-min_pixels // ow))


def _is_pointwise(kh, kw, strides, pads):
    return kh == kw == 1 and strides == (1, 1) and pads == ((0, 0), (0, 0))


def conv_forward_gemm(x, wmat, kernel_hw, strides, pads, out_hw, b=None):
    """y = conv(x_pad, w) (+ b): by Winograd where :func:`numba_winograd.use_winograd` says so (and
    ``WINOGRAD`` is on), otherwise by :func:`conv_forward_im2col`. Same arguments and result."""
    c, f = x.shape[3], wmat.shape[1]
    if WINOGRAD and not _is_pointwise(*kernel_hw, strides, pads) \
            and use_winograd(kernel_hw, strides, c, f, out_hw):
        return winograd_conv(x, wmat, pads, out_hw, b)
    return conv_forward_im2col(x, wmat, kernel_hw, strides, pads, out_hw, b)


def conv_forward_im2col(x, wmat, kernel_hw, strides, pads, out_hw, b=None):
    """y = im2col(x_pad) @ wmat (+ b), one chunk of output rows at a time.

    x: (N, H, W, C) contiguous, wmat: (KH*KW*C, F) rows ordered (kh, kw, c), pads: ((top, bottom),
    (left, right)), out_hw: (OH, OW), b: (F,) or None. Returns y: (N, OH, OW, F) in x's dtype.
    """
    n, _, _, c = x.shape
    (kh, kw), (sh, sw), (oh, ow) = kernel_hw, strides, out_hw
    f = wmat.shape[1]
    y = np.empty((n * oh, ow, f), dtype=x.dtype)
    if _is_pointwise(kh, kw, strides, pads):                  # 1x1 conv: x itself is the cols matrix
        ym = y.reshape(-1, f)
        np.matmul(x.reshape(-1, c), wmat, out=ym)
        if b is not None:
            loops.add_bias_rows(ym, b)
        return y.reshape(n, oh, ow, f)
    k = kh * kw * c
    rows = _rows_per_chunk(ow, k, x.itemsize, MIN_CHUNK_PIXELS)
    cols = np.empty((min(rows, n * oh) * ow, k), dtype=x.dtype)
    (top, _), (left, _) = pads
    for t0 in range(0, n * oh, rows):
        t1 = min(n * oh, t0 + rows)
        m = (t1 - t0) * ow
        loops.im2col_rows(x, t0, t1, oh, ow, kh, kw, sh, sw, top, left, cols[:m])
        out = y[t0:t1].reshape(m, f)
        np.matmul(cols[:m], wmat, out=out)
        if b is not None:
            loops.add_bias_rows(out, b)
    return y.reshape(n, oh, ow, f)


def conv_weight_gradient_gemm(x, dy, kernel_hw, strides, pads):
    """dW = im2col(x_pad)^T @ dY, accumulated over chunks of output rows.

    x: (N, H, W, C), dy: (N, OH, OW, F), both contiguous. Returns dw: (KH, KW, C, F).
    """
    n, _, _, c = x.shape
    _, oh, ow, f = dy.shape
    (kh, kw), (sh, sw) = kernel_hw, strides
    dym = dy.reshape(-1, f)
    if _is_pointwise(kh, kw, strides, pads):
        return (x.reshape(-1, c).T @ dym).reshape(1, 1, c, f)
    k = kh * kw * c
    rows = _rows_per_chunk(ow, k, x.itemsize, MIN_WGRAD_PIXELS)
    cols = np.empty((min(rows, n * oh) * ow, k), dtype=x.dtype)
    dw = np.empty((k, f), dtype=x.dtype)
    part = np.empty_like(dw) if rows < n * oh else None
    (top, _), (left, _) = pads
    for t0 in range(0, n * oh, rows):
        t1 = min(n * oh, t0 + rows)
        m = (t1 - t0) * ow
        loops.im2col_rows(x, t0, t1, oh, ow, kh, kw, sh, sw, top, left, cols[:m])
        if t0 == 0:
            np.matmul(cols[:m].T, dym[t0 * ow:t1 * ow], out=dw)
        else:
            np.matmul(cols[:m].T, dym[t0 * ow:t1 * ow], out=part)
            dw += part
    return dw.reshape(kh, kw, c, f)


def conv_input_gradient_gemm(dy, w, x_shape, strides, pads, method=None):
    """dx of a conv with kernel w: (KH, KW, C, F) and input shape x_shape, given dy: (N, OH, OW, F).

    method "flip" (stride 1 only): the forward conv of dy with the flipped kernel. "col2im": dcols =
    dY @ W^T and a col2im scatter, chunk by chunk. None: flip for stride 1 with C > F, else col2im.
    Returns dx: (N, H, W, C).
    """
    kh, kw, c, f = w.shape
    n, h, wd, _ = x_shape
    (top, bottom), (left, right) = pads
    if method is None:
        method = "flip" if use_flipped_conv(strides, c, f) else "col2im"
    if method == "flip":
        wflip = flipped_kernel_matrix(w)
        flipped_pads = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
        return conv_forward_gemm(dy, wflip, (kh, kw), (1, 1), flipped_pads, (h, wd))
    _, oh, ow, _ = dy.shape
    wmat_t = w.reshape(kh * kw * c, f).T
    dym = dy.reshape(-1, f)
    dx = np.zeros(x_shape, dtype=dy.dtype)
    rows = _rows_per_chunk(ow, kh * kw * c, dy.itemsize, MIN_CHUNK_PIXELS)
    dcols = np.empty((min(rows, n * oh) * ow, kh * kw * c), dtype=dy.dtype)
    for t0 in range(0, n * oh, rows):
        t1 = min(n * oh, t0 + rows)
        m = (t1 - t0) * ow
        np.matmul(dym[t0 * ow:t1 * ow], wmat_t, out=dcols[:m])
        loops.col2im_rows(dcols[:m], t0, t1, oh, ow, kh, kw, *strides, top, left, dx)
    return dx


def conv_backward_gemm(x, dy, w, strides, pads):
    """(dx, dw) of a conv, x: (N, H, W, C), dy: (N, OH, OW, F), w: (KH, KW, C, F), all contiguous.

    Stride 1 with C > F: ONE im2col of dy (KH*KW*F numbers per pixel) serves both products, chunk by
    chunk: dx = cols_dy @ W_flip, and X^T @ cols_dy is the weight gradient of the flipped kernel, so
    dw[a, q, c, f] = (X^T @ cols_dy)[c, (KH-1-a, KW-1-q, f)]. Otherwise dw by im2col(x), and dx by
    the Winograd conv of dy with the flipped kernel where Winograd applies (3x3 stride 1, enough channels and
    pixels), else by col2im.
    """
    kh, kw, c, f = w.shape
    if not use_flipped_conv(strides, c, f):
        # the flipped conv of dy has F inputs and C outputs; it only pays where Winograd runs it
        by_winograd = WINOGRAD and use_winograd((kh, kw), strides, f, c, x.shape[1:3])
        method = "flip" if by_winograd else "col2im"
        return (conv_input_gradient_gemm(dy, w, x.shape, strides, pads, method=method),
                conv_weight_gradient_gemm(x, dy, (kh, kw), strides, pads))
    n, h, wd, _ = x.shape
    (top, bottom), (left, right) = pads
    k = kh * kw * f
    wflip, xm = flipped_kernel_matrix(w), x.reshape(-1, c)
    rows = _rows_per_chunk(wd, k, x.itemsize, MIN_WGRAD_PIXELS)
    cols = np.empty((min(rows, n * h) * wd, k), dtype=x.dtype)
    dx = np.empty((n * h, wd, c), dtype=x.dtype)
    dw_flip = np.empty((c, k), dtype=x.dtype)
    part = np.empty_like(dw_flip) if rows < n * h else None
    for t0 in range(0, n * h, rows):
        t1 = min(n * h, t0 + rows)
        m = (t1 - t0) * wd
        loops.im2col_rows(dy, t0, t1, h, wd, kh, kw, 1, 1, kh - 1 - top, kw - 1 - left, cols[:m])
        np.matmul(cols[:m], wflip, out=dx[t0:t1].reshape(m, c))
        if t0 == 0:
            np.matmul(xm[:m].T, cols[:m], out=dw_flip)
        else:
            np.matmul(xm[t0 * wd:t1 * wd].T, cols[:m], out=part)
            dw_flip += part
    dw = dw_flip.reshape(c, kh, kw, f)[:, ::-1, ::-1, :].transpose(1, 2, 0, 3)
    return dx.reshape(x.shape), np.ascontiguousarray(dw)
