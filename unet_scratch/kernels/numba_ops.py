"""The Numba backend: the reference ops' names and signatures, faster on the CPU.

``backend.set_backend("numba")`` makes every layer call these functions instead of ``unet_scratch.ops``.
Each one returns the same numbers as the NumPy reference up to float rounding (rtol = atol = 1e-5 in
float32, ~1e-12 in float64; the tests check every op and the whole U-Net) and keeps the input dtype.

    conv2d, conv2d_backward                 small filter banks (C*F up to 8192, or 16384 on images up to
                                            64x64; F a multiple of the vector width: the course's U-Net) by
                                            direct kernels with the multiply-adds in registers, no im2col,
                                            no BLAS, rows split across cores (numba_direct.py); the 1-filter
                                            head and the first layer's input gradient (C = 1) by compiled
                                            loops (numba_narrow.py); wider layers (the seed model's) by chunked im2col + BLAS
                                            (numba_conv.py), 3x3 stride-1 ones with >= 16 channels and
                                            >= 32x32 outputs by Winograd F(2x2, 3x3) (numba_winograd.py)
    conv2d_transpose(_backward)             kernel == stride (U-Net's 2x2/2): direct kernels for small
                                            banks (numba_upconv.py), else one GEMM + pixel shuffle; otherwise the conv's
                                            input gradient, as in the reference
    maxpool2d(_backward)                    one compiled pass: max + first-argmax, then routing (images
                                            split across cores)
    relu, relu_backward                     one compiled pass each, split across cores
    conv2d_relu                             relu(conv2d(...)) with the ReLU applied as the direct kernels
                                            store their tiles (no extra pass); layers with a ReLU use it
    concatenate(_backward)                  one compiled copy per input, split across cores (the backward
                                            returns contiguous copies, not the reference's views)
    everything else                         re-exported from the NumPy reference: cheap (sigmoid and
                                            softmax on the 1-channel head, crop2d = a slice, upsample2d =
                                            one broadcast copy and its backward one reshaped sum) or
                                            bound to the reference's random numbers (dropout)

Threads: ``numba_threads.py`` (``UNET_SCRATCH_THREADS=1`` keeps everything in the calling thread). The
results do not depend on the number of threads.

Caches hold what each backward needs, with the reference's keys where the reference has them, but a
cache is only valid for the backward of the backend that made it.
"""
from __future__ import annotations

import numpy as np

from unet_scratch.checks import (check_conv_args, check_dy_shape, check_transpose_args, normalize_pair,
                                 normalize_padding, pool_args)
from unet_scratch.ops import (center_crop, center_crop_backward, col2im,  # noqa: F401
                              conv2d_backward_naive, conv2d_naive,
                              conv2d_transpose_naive, conv_output_size, conv_transpose_output_size,
                              crop2d, crop2d_backward, crop_amounts, dropout, dropout_backward, im2col, maxpool2d_backward_naive,
                              maxpool2d_naive, padding_amounts, sigmoid, sigmoid_backward, softmax,
                              softmax_backward, upsample2d, upsample2d_backward,
                              upsample2d_backward_naive, upsample2d_naive)
from unet_scratch.ops.concat import check_concat_args
from unet_scratch.ops.conv_transpose import transpose_output_shape

from unet_scratch import ops as _ref

from . import numba_direct as direct, numba_narrow as narrow, numba_upconv as upconv
from . import numba_loops as loops
from .numba_threads import parts_for, run_parts, split
from .numba_conv import (conv_backward_gemm, conv_forward_gemm, conv_geometry,
                         conv_input_gradient_gemm, conv_weight_gradient_gemm, flipped_kernel_matrix)


_FAST_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))   # what the compiled loops are built for
DIRECT = True        # convs whose filters fill vector registers by the direct kernels (numba_direct.py)


def _as(a, dtype):
    """a as a C-contiguous array of dtype (no copy when it already is one)."""
    return np.ascontiguousarray(a, dtype=dtype)


def _no_bias(dtype):
    return np.zeros(0, dtype=dtype)


# ----------------------------------------------------------------------------- conv2d


def conv2d(x, w, b=None, strides=(1, 1), padding="valid"):
    """Keras-style Conv2D forward, like :func:`unet_scratch.ops.conv.conv2d`.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None. Returns (y, cache), y: (N, OH, OW, F).
    """
    check_conv_args(x, w, b)
    dtype = np.result_type(x, w)
    if dtype not in _FAST_DTYPES:                         # e.g. float16: the reference handles it
        return _ref.conv2d(x, w, b, strides, padding)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    x, w = _as(x, dtype), _as(w, dtype)
    b = None if b is None else _as(b, dtype)
    kh, kw, c, f = w.shape
    oh, ow, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding)
    cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding,
             "pads": (pad_h, pad_w), "fast": True}
    if DIRECT and (kh, kw) == strides == (1, 1) and f < direct.lanes(dtype):      # the 1-filter head
        cache["pointwise"] = True
        return narrow.pointwise_small(x, w, b), cache
    if DIRECT and direct.use_direct((kh, kw), c, f, (oh, ow), dtype):
        cache["direct"] = True
        return direct.conv_direct(x, w.reshape(kh * kw * c, f), (kh, kw), strides, (pad_h, pad_w), (oh, ow), b), cache
    y = conv_forward_gemm(x, w.reshape(kh * kw * c, f), (kh, kw), strides, (pad_h, pad_w), (oh, ow), b=b)
    return y, cache


def conv2d_relu(x, w, b=None, strides=(1, 1), padding="valid"):
    """relu(conv2d(x, w, b)) in one pass: the ReLU applied as the direct kernels store each tile (the same
    numbers as :func:`conv2d` followed by :func:`relu`, without reading and writing the output again).

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None. Returns (y, conv_cache, relu_cache): the first
    cache for :func:`conv2d_backward`, the second (y itself) for :func:`relu_backward`. Layers whose
    activation is "relu" call it when the backend has it (``layers._ConvBase.forward``).
    """
    check_conv_args(x, w, b)
    dtype = np.result_type(x, w)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, c, f = w.shape
    oh, ow, pad_h, pad_w = conv_geometry(x.shape, (kh, kw), strides, padding) if dtype in _FAST_DTYPES else [0] * 4
    if DIRECT and dtype in _FAST_DTYPES and direct.use_direct((kh, kw), c, f, (oh, ow), dtype):
        x, w = _as(x, dtype), _as(w, dtype)
        b = None if b is None else _as(b, dtype)
        y = direct.conv_direct(x, w.reshape(kh * kw * c, f), (kh, kw), strides, (pad_h, pad_w), (oh, ow), b,
                               relu=True)
        cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding,
                 "pads": (pad_h, pad_w), "fast": True, "direct": True}
        return y, cache, y
    z, cache = conv2d(x, w, b, strides, padding)
    y, relu_cache = relu(z)
    return y, cache, relu_cache


def conv2d_backward(dy, cache):
    """Backward of :func:`conv2d`. dy: (N, OH, OW, F). Returns (dx, dw, db); db is None without bias."""
    if not cache.get("fast"):
        return _ref.conv2d_backward(dy, cache)
    x, w, strides, pads = cache["x"], cache["w"], cache["strides"], cache["pads"]
    expected = (x.shape[0], *conv_geometry(x.shape, w.shape[:2], strides, cache["padding"])[:2], w.shape[3])
    check_dy_shape(dy, expected, f"for an input of shape {x.shape}, kernel {w.shape}, strides {strides}, "
                                 f"padding {cache['padding']!r}")
    dy = _as(dy, x.dtype)
    if cache.get("pointwise") or cache.get("direct"):
        dx, dw = (narrow.pointwise_small_backward(x, dy, w) if cache.get("pointwise") else
                  _conv_backward_direct(x, dy, w, strides, pads))
        return dx, dw, narrow.bias_gradient(dy) if cache["has_bias"] else None
    dx, dw = conv_backward_gemm(x, dy, w, strides, pads)
    db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
    return dx, dw, db


def _conv_backward_direct(x, dy, w, strides, pads):
    """(dx, dw) of a conv whose forward ran the direct kernels: dw by ``weight_gradient_direct``; dx, for
    stride 1 with C a multiple of the vector width, as the direct conv of dy padded by (KH-1-top, ...) with
    the flipped kernel, else by ``conv_input_gradient_gemm``."""
    kh, kw, c, f = w.shape
    dw = direct.weight_gradient_direct(x, dy, (kh, kw), strides, pads)
    if strides == (1, 1) and direct.use_direct((kh, kw), f, c, x.shape[1:3], x.dtype):
        (top, bottom), (left, right) = pads
        flipped = ((kh - 1 - top, kh - 1 - bottom), (kw - 1 - left, kw - 1 - right))
        dx = direct.conv_direct(dy, np.ascontiguousarray(flipped_kernel_matrix(w)), (kh, kw), (1, 1),
                                flipped, x.shape[1:3])
    elif strides == (1, 1) and c < direct.lanes(x.dtype):          # the first layer (C = 1)
        dx = narrow.input_gradient_small_c(dy, w, x.shape, pads)
    else:
        dx = conv_input_gradient_gemm(dy, w, x.shape, strides, pads)
    return dx, dw


# ----------------------------------------------------------------------------- conv2d_transpose


def conv2d_transpose(x, w, b=None, strides=(1, 1), padding="valid"):
    """Keras-style Conv2DTranspose forward, like :func:`unet_scratch.ops.conv_transpose.conv2d_transpose`.

    x: (N, H, W, C_in), w: (KH, KW, F, C_in), b: (F,) or None. Returns (y, cache), y: (N, OH, OW, F).
    When the kernel equals the stride (U-Net's 2x2 stride 2) the stamps do not overlap: one GEMM
    z = x @ w^T gives every output pixel, and a pixel shuffle puts them in place.
    """
    check_transpose_args(x, w, b)
    dtype = np.result_type(x, w)
    if dtype not in _FAST_DTYPES:
        return _ref.conv2d_transpose(x, w, b, strides, padding)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    x, w = _as(x, dtype), _as(w, dtype)
    b = None if b is None else _as(b, dtype)
    kh, kw, f, c = w.shape
    y_shape = transpose_output_shape(x.shape, w.shape, strides, padding)
    cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding, "fast": True}
    if (kh, kw) == strides and DIRECT and direct.use_direct_upconv(c, f, dtype):
        cache["direct"] = True
        return upconv.upconv_direct(x, w, b), cache
    if (kh, kw) == strides:
        n, h, wd, _ = x.shape
        z = x.reshape(-1, c) @ w.reshape(kh * kw * f, c).T             # (N*H*W, KH*KW*F)
        y = np.empty(y_shape, dtype=dtype)
        loops.depth_to_space(z.reshape(n, h, wd, kh * kw * f), kh, kw,
                             _no_bias(dtype) if b is None else b, y)
        return y, cache
    pads = conv_geometry(y_shape, (kh, kw), strides, padding)[2:]
    y = conv_input_gradient_gemm(x, w, y_shape, strides, pads)
    if b is not None:
        loops.add_bias_rows(y.reshape(-1, f), b)
    return y, cache


def conv2d_transpose_backward(dy, cache):
    """Backward of :func:`conv2d_transpose`. dy: (N, OH, OW, F). Returns (dx, dw, db).

    dx is the forward convolution of dy with w; dw is that convolution's weight gradient with dy as the
    input and x as the upstream gradient (kernel == stride: two GEMMs on the un-shuffled dy).
    """
    if not cache.get("fast"):
        return _ref.conv2d_transpose_backward(dy, cache)
    x, w, strides, padding = cache["x"], cache["w"], cache["strides"], cache["padding"]
    check_dy_shape(dy, transpose_output_shape(x.shape, w.shape, strides, padding))
    kh, kw, f, c = w.shape
    if cache.get("direct"):
        dy = _as(dy, x.dtype)
        dx, dw = upconv.upconv_backward_direct(dy, x, w)
        if dx is None:                                  # C not a multiple of the vector width: one GEMM
            dz = np.empty((*x.shape[:3], kh * kw * f), dtype=x.dtype)
            loops.space_to_depth(dy, kh, kw, dz)
            dx = (dz.reshape(-1, kh * kw * f) @ w.reshape(kh * kw * f, c)).reshape(x.shape)
        return dx, dw, narrow.bias_gradient(dy) if cache["has_bias"] else None
    if (kh, kw) == strides:
        n, h, wd, _ = x.shape
        dz = np.empty((n, h, wd, kh * kw * f), dtype=x.dtype)
        loops.space_to_depth(dy.astype(x.dtype, copy=False), kh, kw, dz)     # reads dy as it is laid out
        dz = dz.reshape(-1, kh * kw * f)
        db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
        dx = (dz @ w.reshape(kh * kw * f, c)).reshape(x.shape)
        dw = (dz.T @ x.reshape(-1, c)).reshape(kh, kw, f, c)                # (KH*KW*F, C) directly
        return dx, dw, db
    dy = _as(dy, x.dtype)
    db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
    oh, ow, pad_h, pad_w = conv_geometry(dy.shape, (kh, kw), strides, padding)
    dx = conv_forward_gemm(dy, w.reshape(kh * kw * f, c), (kh, kw), strides, (pad_h, pad_w), (oh, ow))
    dw = conv_weight_gradient_gemm(dy, x, (kh, kw), strides, (pad_h, pad_w))
    return dx, dw, db


def _image_blocks(x):
    """[(a, b)]: the images of a batch x: (N, ...) in one block per core (one block for small or single-image
    batches: pooling windows may span rows, images never)."""
    return split(x.shape[0], min(x.shape[0], parts_for(x.size)))


# ----------------------------------------------------------------------------- concatenation


def concatenate(xs, axis=-1):
    """Like :func:`unet_scratch.ops.concat.concatenate` (same checks, same cache); NHWC channel
    concatenations of float32/float64 copy rows in one compiled pass split across cores."""
    xs = list(xs)
    ax = check_concat_args(xs, axis)
    if xs[0].ndim != 4 or ax != 3 or xs[0].dtype not in _FAST_DTYPES:
        return _ref.concatenate(xs, axis)
    sizes = [x.shape[3] for x in xs]
    y = np.empty((*xs[0].shape[:3], sum(sizes)), dtype=xs[0].dtype)
    rows = y.shape[0] * y.shape[1]
    c0 = 0
    for x in xs:
        x = np.ascontiguousarray(x)
        run_parts(loops.copy_channels, [(x, y, c0, a, b) for a, b in split(rows, parts_for(x.size))])
        c0 += x.shape[3]
    return y, (sizes, ax)


def concatenate_backward(dy, cache):
    """dy: (N, H, W, sum C_i) -> [dx_1, dx_2, ...]: contiguous copies of each input's channels (the
    reference returns views, which every consumer would copy anyway), split across cores."""
    sizes, ax = cache
    if dy.ndim != 4 or ax != 3 or dy.dtype not in _FAST_DTYPES:
        return _ref.concatenate_backward(dy, cache)
    dy = np.ascontiguousarray(dy)
    out, c0 = [], 0
    rows = dy.shape[0] * dy.shape[1]
    for size in sizes:
        dx = np.empty((*dy.shape[:3], size), dtype=dy.dtype)
        run_parts(loops.take_channels, [(dy, dx, c0, a, b) for a, b in split(rows, parts_for(dx.size))])
        out.append(dx)
        c0 += size
    return out


# ----------------------------------------------------------------------------- max pooling


def maxpool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Keras-style MaxPooling2D forward, like :func:`unet_scratch.ops.pool.maxpool2d`.

    x: (N, H, W, C). Returns (y, cache), y: (N, OH, OW, C); the cache holds the flat window index
    (a*PW + q) of each first maximum, as int8 (int32 for windows of more than 127 pixels).
    """
    (ph, pw), (sh, sw), padding = pool_args(x, pool_size, strides, padding)
    if x.dtype not in _FAST_DTYPES:
        return _ref.maxpool2d(x, pool_size, strides, padding)
    x = np.ascontiguousarray(x)
    oh, ow, pad_h, pad_w = conv_geometry(x.shape, (ph, pw), (sh, sw), padding)
    y = np.empty((x.shape[0], oh, ow, x.shape[3]), dtype=x.dtype)
    argmax = np.empty(y.shape, dtype=np.int8 if ph * pw <= 127 else np.int32)
    if (ph, pw) == (sh, sw) == (2, 2) and pad_h == pad_w == (0, 0):
        run_parts(loops.maxpool2x2_forward, [(x[a:b], y[a:b], argmax[a:b])     # U-Net's pool, unrolled,
                                             for a, b in _image_blocks(x)])    # images split across cores
    else:
        loops.maxpool_forward(x, ph, pw, sh, sw, pad_h[0], pad_w[0], y, argmax)
    cache = {"x_shape": x.shape, "pads": (pad_h, pad_w), "argmax": argmax,
             "pool_size": (ph, pw), "strides": (sh, sw)}
    return y, cache


def maxpool2d_backward(dy, cache):
    """Backward of :func:`maxpool2d`: dy: (N, OH, OW, C) -> dx: (N, H, W, C), each dy sent to its
    window's first maximum."""
    if "x_pad_shape" in cache:                                  # made by the reference (float16 ...)
        return _ref.maxpool2d_backward(dy, cache)
    argmax, (_, pw), (sh, sw) = cache["argmax"], cache["pool_size"], cache["strides"]
    check_dy_shape(dy, argmax.shape, "the pooled shape")
    dy = np.ascontiguousarray(dy, dtype=np.result_type(dy, np.float32))
    dx = np.zeros(cache["x_shape"], dtype=dy.dtype)
    (top, _), (left, _) = cache["pads"]
    run_parts(loops.maxpool_backward, [(dy[a:b], argmax[a:b], pw, sh, sw, top, left, dx[a:b])
                                       for a, b in _image_blocks(dx)])
    return dx


# ----------------------------------------------------------------------------- ReLU


def relu(z):
    """y = max(z, 0). z: any shape. Returns (y, cache) with the cache holding y (y > 0 is the mask)."""
    z = np.asarray(z)
    if z.dtype not in _FAST_DTYPES:
        return _ref.relu(z)
    z = np.ascontiguousarray(z)
    y = np.empty_like(z)
    zf, yf = z.reshape(-1), y.reshape(-1)
    run_parts(loops.relu_forward, [(zf[a:b], yf[a:b]) for a, b in split(zf.size, parts_for(zf.size))])
    return y, y


def relu_backward(dy, cache):
    """dz = dy where the forward output was positive, else 0. dy: the shape of z."""
    y = cache
    check_dy_shape(dy, y.shape, "the ReLU's output shape")
    if y.dtype not in _FAST_DTYPES:
        return _ref.relu_backward(dy, cache)
    dy = np.ascontiguousarray(dy, dtype=y.dtype)
    dz = np.empty_like(dy)
    dyf, yf, dzf = dy.reshape(-1), y.reshape(-1), dz.reshape(-1)
    run_parts(loops.relu_backward_flat, [(dyf[a:b], yf[a:b], dzf[a:b])
                                         for a, b in split(dyf.size, parts_for(dyf.size))])
    return dz
