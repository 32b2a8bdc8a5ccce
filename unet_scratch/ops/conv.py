"""2-D convolution (Keras ``Conv2D``), forward and backward, in NumPy.

The math (cross-correlation, no kernel flip, exactly what Keras and TensorFlow compute):

    y[n, i, j, f] = b[f] + sum_{a, c, ch} x_pad[n, i*sh + a, j*sw + c, ch] * w[a, c, ch, f]

with x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), y: (N, OH, OW, F).

Padding. "valid" uses no padding: OH = (H - KH) // sh + 1. "same" follows TensorFlow's rule: the output
has OH = ceil(H / sh) rows, and the total padding needed, max((OH - 1)*sh + KH - H, 0), is split with the
smaller half BEFORE and the larger half AFTER (an even kernel, 2x2 stride 1, pads 0 rows on top and 1 at the
bottom). PyTorch's padding="same" (stride 1 only) puts the extra pixel after too; its integer padding=k//2
pads k//2 on both sides, which for an even kernel makes the output one pixel larger than the input.

im2col. Every output pixel is a dot product between one KH*KW*C window of x_pad and one column of the
kernel. Stacking the N*OH*OW windows as rows of a matrix ``cols`` (N*OH*OW, KH*KW*C), ordered (kh, kw, c)
like the kernel's memory layout, turns the whole convolution into one matrix product:

    Y = cols @ W         with W = w.reshape(KH*KW*C, F),   y = Y.reshape(N, OH, OW, F)

Backward. Differentiating a matrix product gives the two gradients at once:

    dW = cols^T @ dY                 (KH*KW*C, F)      -> reshape to (KH, KW, C, F)
    dcols = dY @ W^T                 (N*OH*OW, KH*KW*C)
    dx_pad = col2im(dcols)           scatter-add each window row back where it came from
    db = sum of dY over N, OH, OW

``col2im`` is the adjoint (transpose) of ``im2col``: a pixel that lies in several windows collects the sum of
their gradients. Cropping the padding off dx_pad gives dx.

The ``*_naive`` functions compute the same things with explicit loops; they are the readable definition
and the oracle the fast versions are tested against.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

# the argument rules shared by every op, kernel and layer (also importable from here, as before)
from unet_scratch.checks import (check_conv_args, check_dy_shape, check_float_array,  # noqa: F401
                                 normalize_pair, normalize_padding)


# ----------------------------------------------------------------------------- sizes and padding


def conv_output_size(n: int, k: int, s: int, padding: str) -> int:
    """Output length along one axis: valid (n - k) // s + 1, same ceil(n / s)."""
    if normalize_padding(padding) == "same":
        return -(-n // s)
    if n < k:
        raise ValueError(f"input size {n} is smaller than the kernel size {k} with 'valid' padding; "
                         f"use padding='same' or a larger input")
    return (n - k) // s + 1


def padding_amounts(n: int, k: int, s: int, padding: str) -> tuple[int, int]:
    """(before, after) padding along one axis, TensorFlow's SAME rule (the extra pixel goes after)."""
    if normalize_padding(padding) == "valid":
        return 0, 0
    out = conv_output_size(n, k, s, "same")
    total = max((out - 1) * s + k - n, 0)
    return total // 2, total - total // 2


def pad_input(x: np.ndarray, kernel_hw, strides, padding, value=0.0):
    """Pad x: (N, H, W, C) for a window of kernel_hw = (KH, KW).

    Returns (x_pad, pads) with pads = ((top, bottom), (left, right)).
    """
    (kh, kw), (sh, sw) = kernel_hw, strides
    pads = (padding_amounts(x.shape[1], kh, sh, padding), padding_amounts(x.shape[2], kw, sw, padding))
    if pads == ((0, 0), (0, 0)):
        return x, pads
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)), constant_values=value), pads


def crop_padding(x_pad: np.ndarray, pads) -> np.ndarray:
    """Undo :func:`pad_input`: x_pad (N, Hp, Wp, C) -> (N, Hp - top - bottom, Wp - left - right, C)."""
    (top, bottom), (left, right) = pads
    return x_pad[:, top:x_pad.shape[1] - bottom, left:x_pad.shape[2] - right, :]


# ----------------------------------------------------------------------------- im2col / col2im


def im2col(x_pad: np.ndarray, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """All KH x KW windows of x_pad as rows of a matrix.

    x_pad: (N, Hp, Wp, C), already padded. Returns cols: (N*OH*OW, KH*KW*C) with OH = (Hp - KH)//sh + 1,
    OW = (Wp - KW)//sw + 1, each row ordered (kh, kw, c) to match w.reshape(KH*KW*C, F).
    """
    n, _, _, c = x_pad.shape
    windows = sliding_window_view(x_pad, (kh, kw), axis=(1, 2))[:, ::sh, ::sw]  # (N, OH, OW, C, KH, KW)
    oh, ow = windows.shape[1:3]
    return windows.transpose(0, 1, 2, 4, 5, 3).reshape(n * oh * ow, kh * kw * c)


def col2im(cols: np.ndarray, x_pad_shape, kh: int, kw: int, sh: int, sw: int) -> np.ndarray:
    """Adjoint of :func:`im2col`: scatter-add every window row back into an (N, Hp, Wp, C) array.

    cols: (N*OH*OW, KH*KW*C). Pixels shared by overlapping windows receive the sum of their entries;
    pixels that no window reads stay 0. Loops over the KH*KW kernel offsets only.
    """
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    if cols.shape != (n * oh * ow, kh * kw * c):
        raise ValueError(f"col2im: cols has shape {cols.shape}, expected {(n * oh * ow, kh * kw * c)} "
                         f"for x_pad {tuple(x_pad_shape)} and a {kh}x{kw} kernel with strides ({sh}, {sw})")
    cols6 = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, dtype=cols.dtype)
    for a in range(kh):
        for q in range(kw):
            x_pad[:, a:a + sh * oh:sh, q:q + sw * ow:sw, :] += cols6[:, :, :, a, q, :]
    return x_pad


# ----------------------------------------------------------------------------- forward / backward


def conv2d(x, w, b=None, strides=(1, 1), padding="valid"):
    """Keras-style Conv2D forward (cross-correlation).

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None, strides: int or (sh, sw),
    padding: 'same' or 'valid'. Returns (y, cache) with y: (N, OH, OW, F) in the dtype of x and w.
    """
    check_conv_args(x, w, b)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, c, f = w.shape
    x_pad, _ = pad_input(x, (kh, kw), strides, padding)
    oh = conv_output_size(x.shape[1], kh, strides[0], padding)
    ow = conv_output_size(x.shape[2], kw, strides[1], padding)
    y = im2col(x_pad, kh, kw, *strides) @ w.reshape(kh * kw * c, f)
    if b is not None:
        y += b
    cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding}
    return y.reshape(x.shape[0], oh, ow, f), cache


def conv2d_input_gradient(dy, w, x_shape, strides=(1, 1), padding="valid"):
    """dL/dx of a conv2d whose input had shape x_shape, given dy = dL/dy.

    dy: (N, OH, OW, F), w: (KH, KW, C, F), x_shape: (N, H, W, C). Returns dx: (N, H, W, C).
    dcols = dY @ W^T, then col2im and crop the padding. (This is also the transposed convolution.)
    """
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, c, f = w.shape
    n, h, wd, _ = x_shape
    oh, ow = conv_output_size(h, kh, strides[0], padding), conv_output_size(wd, kw, strides[1], padding)
    check_dy_shape(dy, (n, oh, ow, f), f"for an input of shape {tuple(x_shape)}, kernel {w.shape}, "
                                       f"strides {strides}, padding {padding!r}")
    pads = (padding_amounts(h, kh, strides[0], padding), padding_amounts(wd, kw, strides[1], padding))
    x_pad_shape = (n, h + sum(pads[0]), wd + sum(pads[1]), c)
    dcols = dy.reshape(n * oh * ow, f) @ w.reshape(kh * kw * c, f).T
    return crop_padding(col2im(dcols, x_pad_shape, kh, kw, *strides), pads)


def conv2d_weight_gradient(dy, x, kernel_hw, strides=(1, 1), padding="valid"):
    """dL/dw of a conv2d, given its input x and dy = dL/dy.

    dy: (N, OH, OW, F), x: (N, H, W, C), kernel_hw: (KH, KW). Returns dw: (KH, KW, C, F).
    dW = cols^T @ dY with cols = im2col(x_pad).
    """
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw = kernel_hw
    f = dy.shape[3]
    oh = conv_output_size(x.shape[1], kh, strides[0], padding)
    ow = conv_output_size(x.shape[2], kw, strides[1], padding)
    check_dy_shape(dy, (x.shape[0], oh, ow, f), f"the conv output for x {x.shape}, kernel {tuple(kernel_hw)}, "
                                                f"strides {strides}, padding {padding!r}")
    x_pad, _ = pad_input(x, (kh, kw), strides, padding)
    cols = im2col(x_pad, kh, kw, *strides)
    return (cols.T @ dy.reshape(-1, f)).reshape(kh, kw, x.shape[3], f)


def conv2d_backward(dy, cache):
    """Backward of :func:`conv2d`.

    dy: (N, OH, OW, F), cache from conv2d. Returns (dx, dw, db): (N, H, W, C), (KH, KW, C, F), (F,) or
    None when the forward pass had no bias. im2col is recomputed here rather than cached: the cols matrix
    is KH*KW times larger than x.
    """
    x, w, strides, padding = cache["x"], cache["w"], cache["strides"], cache["padding"]
    dx = conv2d_input_gradient(dy, w, x.shape, strides, padding)
    dw = conv2d_weight_gradient(dy, x, w.shape[:2], strides, padding)
    db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
    return dx, dw, db


# ----------------------------------------------------------------------------- naive loop versions


def conv2d_naive(x, w, b=None, strides=(1, 1), padding="valid"):
    """Conv2D with explicit loops over batch, output pixels and filters: the definition, slowly.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None. Returns y: (N, OH, OW, F).
    """
    check_conv_args(x, w, b)
    (sh, sw), padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, _, f = w.shape
    x_pad, _ = pad_input(x, (kh, kw), (sh, sw), padding)
    oh = conv_output_size(x.shape[1], kh, sh, padding)
    ow = conv_output_size(x.shape[2], kw, sw, padding)
    y = np.zeros((x.shape[0], oh, ow, f), dtype=np.result_type(x, w))
    for n in range(x.shape[0]):
        for i in range(oh):
            for j in range(ow):
                window = x_pad[n, i * sh:i * sh + kh, j * sw:j * sw + kw, :]     # (KH, KW, C)
                for k in range(f):
                    y[n, i, j, k] = np.sum(window * w[:, :, :, k])
                    if b is not None:
                        y[n, i, j, k] += b[k]
    return y


def conv2d_backward_naive(dy, x, w, strides=(1, 1), padding="valid"):
    """Backward of conv2d with explicit loops: each output pixel sends dy * w back to its window
    (dx) and dy * window to the kernel (dw).

    dy: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C, F). Returns (dx, dw, db).
    """
    (sh, sw), padding = normalize_pair(strides), normalize_padding(padding)
    kh, kw, _, f = w.shape
    x_pad, pads = pad_input(x, (kh, kw), (sh, sw), padding)
    dx_pad, dw = np.zeros_like(x_pad), np.zeros_like(w)
    for n in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                for k in range(f):
                    dx_pad[n, rows, cols, :] += dy[n, i, j, k] * w[:, :, :, k]
                    dw[:, :, :, k] += dy[n, i, j, k] * x_pad[n, rows, cols, :]
    return crop_padding(dx_pad, pads), dw, dy.sum(axis=(0, 1, 2))
