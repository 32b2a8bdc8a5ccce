"""The ops written once for any array module ``xp``: NumPy on the CPU, CuPy on the GPU.

CuPy copies NumPy's API, so an op written with ``xp.pad``, ``xp.matmul``, slicing and ``argmax`` runs on
either. Each function finds ``xp`` from its inputs, ``xp = get_array_module(x)`` (DeZero's pattern), so
the same call runs on the CPU for NumPy arrays and on the GPU for CuPy arrays; ``xp=`` may still be
given. The CuPy backend (``cupy_ops``) IS this module, with two CUDA kernels in place of the loops CuPy
cannot express well (pooling, ReLU); the tests run every function here on NumPy against the reference,
and on a strict CuPy stand-in (``tests/strict_cupy.py``) that refuses any host/device mixing.

The maths is the reference's (``unet_scratch/ops``), with two shortcuts shared with the Numba backend:
  * the input gradient of a stride-1 convolution with more input than output channels is the forward
    convolution of dy with the flipped kernel w_flip[a, q, f, c] = w[KH-1-a, KW-1-q, c, f] (no col2im);
  * a transposed convolution whose kernel equals its stride (U-Net's 2x2 stride 2) is one GEMM
    z = x @ w^T followed by a pixel shuffle (reshape + transpose), because the stamps do not overlap.

Memory. im2col makes KH*KW copies of the input: for the seed model's dec1_conv1 at batch 16, 512 x 512,
that is 16 * 512 * 512 * 9 * 128 * 4 bytes = 19.3 GB. The convolutions therefore take their im2col (and
col2im) in blocks of images or of output rows, each at most ``IM2COL_BYTES`` (512 MiB), and assemble the
output (or sum the weight gradient) block by block; one block (every small case) is the plain formula.
Dropout: on NumPy arrays the mask is the reference's (``rng.random``); on the GPU it is drawn on the device
from a counter-based generator (Philox) seeded by one integer from ``rng``: the same seed gives the same
mask on every GPU and every run, nothing is copied from the host, but it is not the CPU's mask.
"""
from __future__ import annotations

import numpy as np

from unet_scratch.backend import get_array_module
from unet_scratch.checks import (check_conv_args, check_dropout_rate, check_dy_shape, check_float_array,
                                 check_transpose_args, normalize_pair, normalize_padding, pool_args)
from unet_scratch.ops.concat import check_concat_args
from unet_scratch.ops.conv import conv_output_size, padding_amounts
from unet_scratch.ops.conv_transpose import transpose_output_shape


# ----------------------------------------------------------------------------- geometry

IM2COL_BYTES = 512 * 2**20        # the largest im2col / col2im block a convolution makes at once


def conv_geometry(x_shape, kernel_hw, strides, padding):
    """Output size and padding of a conv or pool: returns (OH, OW, (top, bottom), (left, right))."""
    (kh, kw), (sh, sw) = kernel_hw, strides
    h, w = x_shape[1], x_shape[2]
    return (conv_output_size(h, kh, sh, padding), conv_output_size(w, kw, sw, padding),
            padding_amounts(h, kh, sh, padding), padding_amounts(w, kw, sw, padding))


def flipped_kernel_matrix(w, xp=None):
    """w: (KH, KW, C, F) -> (KH*KW*F, C) matrix of w_flip[a, q, f, c] = w[KH-1-a, KW-1-q, c, f]
    (the transpose of a contiguous copy: rows of F numbers are copied whole)."""
    xp = xp or get_array_module(w)
    kh, kw, c, f = w.shape
    return xp.ascontiguousarray(w[::-1, ::-1].transpose(2, 0, 1, 3)).reshape(c, kh * kw * f).T


def use_flipped_conv(strides, c, f) -> bool:
    """Input gradient by a flipped convolution (stride 1, C > F) or by dcols + col2im (otherwise)."""
    return strides == (1, 1) and c > f


def row_blocks(n, oh, row_bytes, budget=None):
    """Blocks of a conv's output for a chunked im2col: [(images slice, output rows slice), ...].

    Whole images together while they fit in ``budget`` bytes (``row_bytes`` per output row), else one
    image at a time in blocks of rows. One block (slice(0, n), slice(0, oh)) when everything fits."""
    budget = IM2COL_BYTES if budget is None else budget
    rows = max(1, int(budget // max(row_bytes, 1)))
    if rows >= n * oh:
        return [(slice(0, n), slice(0, oh))]
    if rows >= oh:
        per = rows // oh
        return [(slice(i, min(i + per, n)), slice(0, oh)) for i in range(0, n, per)]
    return [(slice(i, i + 1), slice(r, min(r + rows, oh))) for i in range(n) for r in range(0, oh, rows)]


def _pad(x, pads, xp):
    return x if pads == ((0, 0), (0, 0)) else xp.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _input_rows(rows, kh, sh):
    """The padded-input rows that the output rows ``rows`` read."""
    return slice(rows.start * sh, (rows.stop - 1) * sh + kh)


# ----------------------------------------------------------------------------- im2col / col2im


def im2col(x, kernel_hw, strides, pads, out_hw, xp=None):
    """x: (N, H, W, C) -> cols: (N*OH*OW, KH*KW*C), rows ordered (kh, kw, c); one slice copy per offset."""
    xp = xp or get_array_module(x)
    (kh, kw), (sh, sw), (oh, ow) = kernel_hw, strides, out_hw
    n, c = x.shape[0], x.shape[3]
    x = _pad(x, pads, xp)
    cols = xp.empty((n, oh, ow, kh, kw, c), dtype=x.dtype)
    for a in range(kh):
        for q in range(kw):
            cols[:, :, :, a, q, :] = x[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c)


def _col2im_add(dx_pad, dcols, kernel_hw, strides, out_hw):
    """dx_pad (a padded input slab) += the adjoint of im2col applied to dcols: (n*oh*ow, KH*KW*C)."""
    (kh, kw), (sh, sw), (oh, ow) = kernel_hw, strides, out_hw
    n, c = dx_pad.shape[0], dx_pad.shape[3]
    d6 = dcols.reshape(n, oh, ow, kh, kw, c)
    for a in range(kh):
        for q in range(kw):
            dx_pad[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += d6[:, :, :, a, q, :]


def col2im(dcols, x_shape, kernel_hw, strides, pads, out_hw, xp=None):
    """Adjoint of :func:`im2col`: dcols: (N*OH*OW, KH*KW*C) -> dx: (N, H, W, C), overlaps summed."""
    xp = xp or get_array_module(dcols)
    ((top, bottom), (left, right)) = pads
    n, h, w, c = x_shape
    dx_pad = xp.zeros((n, h + top + bottom, w + left + right, c), dtype=dcols.dtype)
    _col2im_add(dx_pad, dcols, kernel_hw, strides, out_hw)
    return dx_pad[:, top:top + h, left:left + w, :]


# ----------------------------------------------------------------------------- convolution


def _is_pointwise(kernel_hw, strides, pads):
    return kernel_hw == (1, 1) and strides == (1, 1) and pads == ((0, 0), (0, 0))


def conv_forward(x, wmat, kernel_hw, strides, pads, out_hw, xp=None):
    """y = im2col(x_pad) @ wmat: x (N, H, W, C), wmat (KH*KW*C, F) -> y (N, OH, OW, F), no bias.
    im2col is taken in blocks of at most IM2COL_BYTES (see :func:`row_blocks`)."""
    xp = xp or get_array_module(x, wmat)
    n, c, f = x.shape[0], x.shape[3], wmat.shape[1]
    if _is_pointwise(kernel_hw, strides, pads):
        return (x.reshape(-1, c) @ wmat).reshape(n, *out_hw, f)
    (kh, kw), (oh, ow) = kernel_hw, out_hw
    blocks = row_blocks(n, oh, ow * kh * kw * c * x.dtype.itemsize)
    if len(blocks) == 1:
        return (im2col(x, kernel_hw, strides, pads, out_hw, xp) @ wmat).reshape(n, oh, ow, f)
    x_pad = _pad(x, pads, xp)
    y = xp.empty((n, oh, ow, f), dtype=np.result_type(x.dtype, wmat.dtype))
    for imgs, rows in blocks:
        part = x_pad[imgs, _input_rows(rows, kh, strides[0])]
        cols = im2col(part, kernel_hw, strides, ((0, 0), (0, 0)), (rows.stop - rows.start, ow), xp)
        y[imgs, rows] = (cols @ wmat).reshape(part.shape[0], rows.stop - rows.start, ow, f)
    return y


def conv_input_gradient(dy, w, x_shape, strides, pads, xp=None):
    """dx: (N, H, W, C) of a conv with kernel w: (KH, KW, C, F), given dy: (N, OH, OW, F)."""
    xp = xp or get_array_module(dy, w)
    kh, kw, c, f = w.shape
    if use_flipped_conv(strides, c, f):
        (top, bottom), (left, right) = pads
        flipped = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
        return conv_forward(dy, flipped_kernel_matrix(w, xp), (kh, kw), (1, 1), flipped, x_shape[1:3], xp)
    wt = w.reshape(kh * kw * c, f).T
    n, oh, ow = dy.shape[:3]
    blocks = row_blocks(n, oh, ow * kh * kw * c * np.result_type(dy.dtype, w.dtype).itemsize)
    if len(blocks) == 1:
        dcols = dy.reshape(-1, f) @ wt
        return xp.ascontiguousarray(col2im(dcols, x_shape, (kh, kw), strides, pads, dy.shape[1:3], xp))
    (top, bottom), (left, right) = pads
    _, h, wd, _ = x_shape
    dx_pad = xp.zeros((n, h + top + bottom, wd + left + right, c), dtype=np.result_type(dy.dtype, w.dtype))
    for imgs, rows in blocks:
        dcols = dy[imgs, rows].reshape(-1, f) @ wt
        _col2im_add(dx_pad[imgs, _input_rows(rows, kh, strides[0])], dcols, (kh, kw), strides,
                    (rows.stop - rows.start, ow))
    return xp.ascontiguousarray(dx_pad[:, top:top + h, left:left + wd, :])


def conv_weight_gradient(x, dy, kernel_hw, strides, pads, xp=None):
    """dw: (KH, KW, C, F) = im2col(x_pad)^T @ dY, for x: (N, H, W, C) and dy: (N, OH, OW, F); summed over
    blocks of at most IM2COL_BYTES."""
    xp = xp or get_array_module(x, dy)
    c, f = x.shape[3], dy.shape[3]
    if _is_pointwise(kernel_hw, strides, pads):
        return (x.reshape(-1, c).T @ dy.reshape(-1, f)).reshape(*kernel_hw, c, f)
    (kh, kw), (n, oh, ow) = kernel_hw, dy.shape[:3]
    blocks = row_blocks(n, oh, ow * kh * kw * c * x.dtype.itemsize)
    if len(blocks) == 1:
        cols = im2col(x, kernel_hw, strides, pads, dy.shape[1:3], xp)
        return (cols.T @ dy.reshape(-1, f)).reshape(*kernel_hw, c, f)
    x_pad, dw = _pad(x, pads, xp), None
    for imgs, rows in blocks:
        part = x_pad[imgs, _input_rows(rows, kh, strides[0])]
        cols = im2col(part, kernel_hw, strides, ((0, 0), (0, 0)), (rows.stop - rows.start, ow), xp)
        term = cols.T @ dy[imgs, rows].reshape(-1, f)
        dw = term if dw is None else dw + term
    return dw.reshape(*kernel_hw, c, f)


def conv2d(x, w, b=None, strides=(1, 1), padding="valid", xp=None):
    """Conv2D forward. x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None -> (y, cache)."""
    check_conv_args(x, w, b)
    xp = xp or get_array_module(x, w)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, c, f = w.shape
    oh, ow, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    y = conv_forward(x, w.reshape(kh * kw * c, f), (kh, kw), strides, (pad_h, pad_w), (oh, ow), xp)
    if b is not None:
        y += b
    cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding,
             "pads": (pad_h, pad_w)}
    return y, cache


def conv2d_backward(dy, cache, xp=None):
    """Backward of :func:`conv2d`: dy (N, OH, OW, F) -> (dx, dw, db)."""
    x, w, strides, pads = cache["x"], cache["w"], cache["strides"], cache["pads"]
    xp = xp or get_array_module(dy, x)
    dy = xp.ascontiguousarray(dy)
    dx = conv_input_gradient(dy, w, x.shape, strides, pads, xp)
    dw = conv_weight_gradient(x, dy, w.shape[:2], strides, pads, xp)
    db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
    return dx, dw, db


def conv2d_transpose(x, w, b=None, strides=(1, 1), padding="valid", xp=None):
    """Conv2DTranspose forward. x: (N, H, W, C_in), w: (KH, KW, F, C_in) -> (y, cache), y: (N, OH, OW, F)."""
    check_transpose_args(x, w, b)
    xp = xp or get_array_module(x, w)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, f, c = w.shape
    y_shape = transpose_output_shape(x.shape, w.shape, strides, padding)
    if (kh, kw) == strides:                           # no overlap: GEMM, then pixel shuffle
        n, h, wd, _ = x.shape
        z = x.reshape(-1, c) @ w.reshape(kh * kw * f, c).T                     # (N*H*W, KH*KW*F)
        y = z.reshape(n, h, wd, kh, kw, f).transpose(0, 1, 3, 2, 4, 5).reshape(y_shape)
    else:
        pads = conv_geometry(y_shape, (kh, kw), strides, padding)[2:]
        y = conv_input_gradient(x, w, y_shape, strides, pads, xp)
    if b is not None:
        y = y + b
    cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding}
    return y, cache


def conv2d_transpose_backward(dy, cache, xp=None):
    """Backward of :func:`conv2d_transpose`: dy (N, OH, OW, F) -> (dx, dw, db)."""
    x, w, strides, padding = cache["x"], cache["w"], cache["strides"], cache["padding"]
    xp = xp or get_array_module(dy, x)
    check_dy_shape(dy, transpose_output_shape(x.shape, w.shape, strides, padding))
    kh, kw, f, c = w.shape
    db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
    if (kh, kw) == strides:
        n, h, wd, _ = x.shape
        dz = dy.reshape(n, h, kh, wd, kw, f).transpose(0, 1, 3, 2, 4, 5).reshape(-1, kh * kw * f)
        dx = (dz @ w.reshape(kh * kw * f, c)).reshape(x.shape)
        dw = xp.ascontiguousarray((x.reshape(-1, c).T @ dz).T).reshape(kh, kw, f, c)
        return dx, dw, db
    oh, ow, pad_h, pad_w = conv_geometry(dy.shape, (kh, kw), strides, padding)
    dy = xp.ascontiguousarray(dy)
    dx = conv_forward(dy, w.reshape(kh * kw * f, c), (kh, kw), strides, (pad_h, pad_w), (oh, ow), xp)
    dw = conv_weight_gradient(dy, x, (kh, kw), strides, (pad_h, pad_w), xp)
    return dx, dw, db


# ----------------------------------------------------------------------------- max pooling


def _window_slices(ph, pw, sh, sw, oh, ow):
    """For each pool offset (a, q), row-major: the (rows, cols) slices of the padded input it reads."""
    return [(a * pw + q, slice(a, a + sh * (oh - 1) + 1, sh), slice(q, q + sw * (ow - 1) + 1, sw))
            for a in range(ph) for q in range(pw)]


def maxpool2d(x, pool_size=(2, 2), strides=None, padding="valid", xp=None):
    """MaxPooling2D forward: x (N, H, W, C) -> (y, cache), y (N, OH, OW, C).

    The PH*PW shifted views are stacked on a new first axis and ``argmax`` over it returns the first
    maximum in row-major window order (or the first NaN), as the reference. Padding is -inf.
    """
    xp = xp or get_array_module(x)
    (ph, pw), (sh, sw), padding = pool_args(x, pool_size, strides, padding)
    oh, ow, pad_h, pad_w = conv_geometry(x.shape, (ph, pw), (sh, sw), padding)
    x_pad = x
    if (pad_h, pad_w) != ((0, 0), (0, 0)):
        x_pad = xp.pad(x, ((0, 0), pad_h, pad_w, (0, 0)), constant_values=-np.inf)
    stack = xp.stack([x_pad[:, r, c, :] for _, r, c in _window_slices(ph, pw, sh, sw, oh, ow)])
    argmax = stack.argmax(axis=0)                                   # (N, OH, OW, C)
    y = xp.take_along_axis(stack, argmax[None], axis=0)[0]
    cache = {"x_shape": tuple(x.shape), "x_pad_shape": tuple(x_pad.shape), "pads": (pad_h, pad_w),
             "argmax": argmax, "pool_size": (ph, pw), "strides": (sh, sw)}
    return y, cache


def maxpool2d_backward(dy, cache, xp=None):
    """Backward of :func:`maxpool2d`: each dy goes to its window's first maximum. Returns dx (N, H, W, C)."""
    argmax, (ph, pw), (sh, sw) = cache["argmax"], cache["pool_size"], cache["strides"]
    xp = xp or get_array_module(dy, argmax)
    check_dy_shape(dy, argmax.shape, "the pooled shape")
    oh, ow = dy.shape[1:3]
    dx_pad = xp.zeros(cache["x_pad_shape"], dtype=dy.dtype)
    for k, r, c in _window_slices(ph, pw, sh, sw, oh, ow):
        dx_pad[:, r, c, :] += xp.where(argmax == k, dy, 0)
    (top, _), (left, _) = cache["pads"]
    n, h, w, ch = cache["x_shape"]
    return dx_pad[:, top:top + h, left:left + w, :]


# ----------------------------------------------------------------------------- elementwise and skips


def relu(z, xp=None):
    """y = max(z, 0) -> (y, cache = y); NaN stays NaN, as NumPy's maximum."""
    xp = xp or get_array_module(z)
    y = xp.maximum(z, 0)
    return y, y


def relu_backward(dy, cache, xp=None):
    """dz = dy where y > 0 (dy * [y > 0]: dy's dtype, NaN in dy stays NaN)."""
    return dy * (cache > 0)


def sigmoid(z, xp=None):
    """Stable logistic function (exp only of -|z|) -> (y, cache = y)."""
    xp = xp or get_array_module(z)
    e = xp.exp(-xp.abs(z))
    y = xp.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
    return y, y


def sigmoid_backward(dy, cache, xp=None):
    """dz = dy * y * (1 - y)."""
    return dy * cache * (1 - cache)


def softmax(z, axis=-1, xp=None):
    """Softmax over ``axis``, max subtracted first -> (y, cache = (y, axis))."""
    xp = xp or get_array_module(z)
    e = xp.exp(z - z.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(dy, cache, xp=None):
    """dz = y * (dy - sum(dy * y)) along the softmax axis."""
    y, axis = cache
    return y * (dy - (dy * y).sum(axis=axis, keepdims=True))


def device_uniform(rng, shape, xp):
    """Uniform float32 numbers in [0, 1) of ``shape`` drawn on xp's device by a Philox generator seeded with
    one integer from the NumPy generator ``rng``: a function of rng's state alone (same seed, same
    numbers, on any GPU)."""
    seed = int(rng.integers(0, 2**63))
    random = xp.random
    maker = getattr(random, "Philox4x3210", None)
    generator = random.Generator(maker(seed)) if maker is not None else random.default_rng(seed)
    return generator.random(tuple(shape), dtype=np.float32)


def dropout(x, rate, rng, training=False, xp=None):
    """Inverted dropout. NumPy arrays: the reference's mask, ``rng.random(x.shape) >= rate``. CuPy arrays:
    the mask is drawn on the device (:func:`device_uniform`), nothing crosses from the host."""
    xp = xp or get_array_module(x)
    rate = check_dropout_rate(rate)
    if not training or rate == 0:
        return x, None
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}; "
                        f"use np.random.default_rng(seed)")
    if xp is np:
        keep = rng.random(tuple(x.shape)) >= rate
        mask = (keep / (1.0 - rate)).astype(x.dtype)
    else:
        keep = device_uniform(rng, x.shape, xp) >= rate
        mask = keep.astype(x.dtype) * x.dtype.type(1.0 / (1.0 - rate))
    return x * mask, mask


def dropout_backward(dy, cache, xp=None):
    """dy scaled by the same mask; identity when dropout was off."""
    return dy if cache is None else dy * cache


def concatenate(xs, axis=-1, xp=None):
    """xs: list of (N, H, W, C_i) -> (y (N, H, W, sum C_i), cache = (sizes, axis))."""
    xs = list(xs)
    xp = xp or get_array_module(*xs)
    ax = check_concat_args(xs, axis)
    return xp.concatenate(xs, axis=ax), ([x.shape[ax] for x in xs], ax)


def concatenate_backward(dy, cache, xp=None):
    """dy -> [dx_1, dx_2, ...]: the channels each input contributed."""
    xp = xp or get_array_module(dy)
    sizes, ax = cache
    return xp.split(dy, np.cumsum(sizes)[:-1].tolist(), axis=ax)


# ----------------------------------------------------------------------------- nearest up-sampling


def upsample2d(x, size=(2, 2), xp=None):
    """x: (N, H, W, C) -> (y (N, H*sh, W*sw, C), cache = (x.shape, (sh, sw))): each pixel copied into an
    sh x sw block (one broadcast copy, as the reference)."""
    xp = xp or get_array_module(x)
    check_float_array(x, 4, "(N, H, W, C)", "x")
    sh, sw = normalize_pair(size, "size")
    n, h, w, c = x.shape
    y = xp.broadcast_to(x[:, :, None, :, None, :], (n, h, sh, w, sw, c)).reshape(n, h * sh, w * sw, c)
    return y, (tuple(x.shape), (sh, sw))


def upsample2d_backward(dy, cache, xp=None):
    """dy (N, H*sh, W*sw, C) -> dx (N, H, W, C): the sum of dy over each sh x sw block."""
    (n, h, w, c), (sh, sw) = cache
    check_dy_shape(dy, (n, h * sh, w * sw, c), f"the up-sampled shape (size {(sh, sw)})")
    return dy.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4))
