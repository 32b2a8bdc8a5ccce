"""Nearest-neighbour up-sampling (Keras ``UpSampling2D(size, interpolation="nearest")``), forward and backward.

The math. Every input pixel is copied into an sh x sw block of the output:

    y[n, i, j, c] = x[n, i // sh, j // sw, c]          x: (N, H, W, C) -> y: (N, H*sh, W*sw, C)

No weights, no arithmetic: Keras computes it with two ``repeat``s, and so do we (a reshape with broadcasting,
which is the same copy).

Backward. Each input pixel was read by the sh*sw output pixels of its block, so its gradient is the SUM of
dy over that block (the adjoint of a copy is a sum):

    dx[n, i, j, c] = sum_{a < sh, q < sw} dy[n, i*sh + a, j*sw + q, c]

which is a reshape of dy to (N, H, sh, W, sw, C) and a sum over the two block axes. (For the 2x2 U-Net
up-step: each dx is the sum of the 4 dy values of its 2x2 block.)

Followed by a 2x2 'same' convolution this is zhixuhao's "resize-then-convolve" up-step: unlike a 2x2
stride-2 transposed convolution, whose kernel stamps make every 2x2 output block a copy of the same 4
weights (a fixed pattern that shows as a checkerboard when those weights differ), every output pixel here
is a convolution of the same up-sampled map, so no pattern is tied to the pixel's position in its block.

The ``*_naive`` functions loop over output pixels: the definition, and the oracle for the fast versions.
"""
from __future__ import annotations

import numpy as np

from unet_scratch.checks import check_dy_shape, check_float_array, normalize_pair


def upsample2d(x, size=(2, 2)):
    """Nearest-neighbour up-sampling, like ``keras.layers.UpSampling2D(size)``.

    x: (N, H, W, C) float, size: int or (sh, sw). Returns (y, cache): y (N, H*sh, W*sw, C) in x's dtype;
    cache = (x.shape, (sh, sw)).
    """
    check_float_array(x, 4, "(N, H, W, C)", "x")
    sh, sw = normalize_pair(size, "size")
    n, h, w, c = x.shape
    y = np.broadcast_to(x[:, :, None, :, None, :], (n, h, sh, w, sw, c)).reshape(n, h * sh, w * sw, c)
    return y, (x.shape, (sh, sw))


def upsample2d_backward(dy, cache):
    """Backward of :func:`upsample2d`: dy (N, H*sh, W*sw, C) -> dx (N, H, W, C), each block of dy summed."""
    (n, h, w, c), (sh, sw) = cache
    check_dy_shape(dy, (n, h * sh, w * sw, c), f"the up-sampled shape (size {(sh, sw)})")
    return dy.reshape(n, h, sh, w, sw, c).sum(axis=(2, 4))


def upsample2d_naive(x, size=(2, 2)):
    """Up-sampling with explicit loops: y[n, i, j, c] = x[n, i // sh, j // sw, c]. Returns y only."""
    check_float_array(x, 4, "(N, H, W, C)", "x")
    sh, sw = normalize_pair(size, "size")
    n, h, w, c = x.shape
    y = np.empty((n, h * sh, w * sw, c), dtype=x.dtype)
    for i in range(h * sh):
        for j in range(w * sw):
            y[:, i, j, :] = x[:, i // sh, j // sw, :]
    return y


def upsample2d_backward_naive(dy, x_shape, size=(2, 2)):
    """Backward with explicit loops: every dy[n, i, j, c] is added to dx[n, i // sh, j // sw, c]."""
    sh, sw = normalize_pair(size, "size")
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            dx[:, i // sh, j // sw, :] += dy[:, i, j, :]
    return dx
