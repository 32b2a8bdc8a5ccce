"""2-D max pooling (Keras ``MaxPooling2D``), forward and backward, in NumPy.

Forward. Each output pixel is the largest value in its PH x PW window of the (padded) input:

    y[n, i, j, c] = max_{a < PH, q < PW} x_pad[n, i*sh + a, j*sw + q, c]

x: (N, H, W, C) -> y: (N, OH, OW, C), channels pooled independently. strides default to the pool size
(non-overlapping windows, like Keras). "valid" drops the last rows that do not fill a window
(OH = (H - PH) // sh + 1, so 5 -> 2 for a 2x2 pool); "same" pads with -inf by TensorFlow's SAME rule
(OH = ceil(H / sh), the extra pixel after), so padding never wins a max.

Backward. max is piecewise linear: its derivative is 1 for the winning input and 0 for the others. So each
window's gradient dy[n, i, j, c] goes to ONE input pixel, the argmax. With ties (an all-zero window after a
ReLU is common) the choice matters: TensorFlow picks the FIRST maximum in row-major window order, which is
what ``np.argmax`` over the flattened window returns, so we match it exactly. (A mask ``x == max`` would
send the gradient to every tied pixel and disagree with TensorFlow.) When windows overlap (strides < pool),
a pixel that wins several windows accumulates all their gradients.
"""
from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from unet_scratch.checks import check_dy_shape, pool_args
from unet_scratch.ops.conv import conv_output_size, crop_padding, pad_input


def _windows(x_pad, pool_size, strides):
    """All pooling windows, flattened: (N, OH, OW, C, PH*PW) in row-major (a, q) order (a view + reshape)."""
    ph, pw = pool_size
    win = sliding_window_view(x_pad, (ph, pw), axis=(1, 2))[:, ::strides[0], ::strides[1]]
    return win.reshape(*win.shape[:4], ph * pw)


def maxpool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """Keras-style MaxPooling2D forward.

    x: (N, H, W, C), pool_size: int or (PH, PW), strides: int, pair or None (= pool_size),
    padding: 'valid' or 'same'. Returns (y, cache), y: (N, OH, OW, C) in the dtype of x.
    The cache holds the flat index (0 .. PH*PW - 1) of each window's first maximum.
    """
    pool_size, strides, padding = pool_args(x, pool_size, strides, padding)
    x_pad, pads = pad_input(x, pool_size, strides, padding, value=-np.inf)
    windows = _windows(x_pad, pool_size, strides)
    argmax = windows.argmax(axis=-1)                                            # (N, OH, OW, C)
    y = np.take_along_axis(windows, argmax[..., None], axis=-1)[..., 0]
    cache = {"x_shape": x.shape, "x_pad_shape": x_pad.shape, "pads": pads, "argmax": argmax,
             "pool_size": pool_size, "strides": strides}
    return y, cache


def maxpool2d_backward(dy, cache):
    """Backward of :func:`maxpool2d`: route each dy to its window's first maximum.

    dy: (N, OH, OW, C). Returns dx: (N, H, W, C). Loops over the PH*PW pool offsets only.
    """
    argmax, (ph, pw), (sh, sw) = cache["argmax"], cache["pool_size"], cache["strides"]
    check_dy_shape(dy, argmax.shape, "the pooled shape")
    oh, ow = dy.shape[1:3]
    dx_pad = np.zeros(cache["x_pad_shape"], dtype=dy.dtype)
    for a in range(ph):
        for q in range(pw):
            routed = np.where(argmax == a * pw + q, dy, 0)                      # windows won by offset (a, q)
            dx_pad[:, a:a + sh * oh:sh, q:q + sw * ow:sw, :] += routed
    return crop_padding(dx_pad, cache["pads"])


def maxpool2d_naive(x, pool_size=(2, 2), strides=None, padding="valid"):
    """MaxPooling2D with explicit loops over batch, output pixels and channels.

    x: (N, H, W, C). Returns y: (N, OH, OW, C).
    """
    (ph, pw), (sh, sw), padding = pool_args(x, pool_size, strides, padding)
    x_pad, _ = pad_input(x, (ph, pw), (sh, sw), padding, value=-np.inf)
    n, h, w, c = x.shape
    oh, ow = conv_output_size(h, ph, sh, padding), conv_output_size(w, pw, sw, padding)
    y = np.zeros((n, oh, ow, c), dtype=x.dtype)
    for b in range(n):
        for i in range(oh):
            for j in range(ow):
                for k in range(c):
                    y[b, i, j, k] = x_pad[b, i * sh:i * sh + ph, j * sw:j * sw + pw, k].max()
    return y


def maxpool2d_backward_naive(dy, x, pool_size=(2, 2), strides=None, padding="valid"):
    """Backward of max pooling with explicit loops: scan each window in row-major order, remember the
    first position holding the maximum, add dy there.

    dy: (N, OH, OW, C), x: (N, H, W, C). Returns dx: (N, H, W, C).
    """
    (ph, pw), (sh, sw), padding = pool_args(x, pool_size, strides, padding)
    x_pad, pads = pad_input(x, (ph, pw), (sh, sw), padding, value=-np.inf)
    dx_pad = np.zeros(x_pad.shape, dtype=dy.dtype)
    for b in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for k in range(dy.shape[3]):
                    best, best_at = -np.inf, (i * sh, j * sw)
                    for a in range(ph):
                        for q in range(pw):
                            value = x_pad[b, i * sh + a, j * sw + q, k]
                            if value > best:                    # strict: the first maximum stays
                                best, best_at = value, (i * sh + a, j * sw + q)
                    dx_pad[b, best_at[0], best_at[1], k] += dy[b, i, j, k]
    return crop_padding(dx_pad, pads)
