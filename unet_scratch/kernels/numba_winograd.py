"""3 x 3 stride-1 convolution by Winograd's minimal filtering F(2x2, 3x3): 16 multiplies where im2col does 36.

A 3 x 3 convolution makes each 2 x 2 block ("tile") of output pixels from a 4 x 4 patch d of the input.
Done directly, that is 2*2*3*3 = 36 multiply-adds per tile, channel pair. Winograd (Lavin & Gray, 2016,
"Fast Algorithms for Convolutional Neural Networks") rewrites it with fixed transform matrices as

    Y = A^T [ (G g G^T) * (B^T d B) ] A        (* elementwise on 4 x 4 matrices)

    B^T = [[1, 0, -1, 0],      G = [[1,    0,   0 ],      A^T = [[1, 1,  1,  0],
           [0, 1,  1, 0],           [1/2,  1/2, 1/2],             [0, 1, -1, -1]]
           [0, -1, 1, 0],           [1/2, -1/2, 1/2],
           [0, 1,  0, -1]]          [0,    0,   1 ]]

so a tile costs 16 multiplies per channel pair: 2.25 x fewer. Summed over the input channels, the 16
elementwise products become 16 matrix products, one per position k = 4i + j of the 4 x 4 grid:

    U[k] = (G w G^T)[k]       (C, F)   the kernel, transformed once per call
    V[k] = (B^T d B)[k]       (P, C)   the input tiles       (numba_loops.winograd_input)
    M[k] = V[k] @ U[k]        (P, F)   16 GEMMs in BLAS      (np.matmul on the stacked (16, P, C))
    y    = A^T M A (+ b)      2 x 2 output pixels per tile  (numba_loops.winograd_output)

The transforms only add, subtract and halve, so the rounding stays close to the direct sum: against the
NumPy reference the float32 outputs of the seed model's layers agree to about 1e-6 relative, and float64
to about 1e-15 (``tests/test_kernels_numba.py`` holds every shape to rtol = atol = 1e-5 and 1e-12).
Tiles are processed a block of tile rows at a time (V about ``CHUNK_BYTES``), so V and M stay in cache and
the big temporaries never exist; odd output sizes get a last tile that writes only its pixels inside y.
Worth it when the matrix products dominate: at least ``MIN_CHANNELS`` input and output channels (the
first layer, C = 1, stays with im2col).
"""
from __future__ import annotations

import numpy as np

from . import numba_loops as loops

CHUNK_BYTES = 8 << 20       # V (16 x tiles x C) per block of tile rows
MIN_TILES = 512             # never fewer tiles than this per block (deep layers: one block)
MIN_CHANNELS = 16           # Winograd only when C >= 16 and F >= 16 ...
MIN_IMAGE_TILES = 256       # ... and at least 256 tiles (32 x 32 pixels) per image: below, transforming
                            # the kernel (16 x C x F numbers) costs about what the smaller GEMMs save

def use_winograd(kernel_hw, strides, c, f, out_hw) -> bool:
    """True for a 3 x 3 stride-1 convolution with at least MIN_CHANNELS input and output channels and
    MIN_IMAGE_TILES tiles of 2 x 2 output pixels per image."""
    tiles = -(-out_hw[0] // 2) * -(-out_hw[1] // 2)
    return (tuple(kernel_hw) == (3, 3) and tuple(strides) == (1, 1) and min(c, f) >= MIN_CHANNELS
            and tiles >= MIN_IMAGE_TILES)


def winograd_kernel(wmat, c, f):
    """U: (16, C, F), U[4i + j] = (G w G^T)[i, j] for the kernel given as wmat: (9*C, F), rows (kh, kw, c)."""
    u = np.empty((16, c, f), dtype=wmat.dtype)
    loops.winograd_kernel(wmat.reshape(3, 3, c, f), u)
    return u


def winograd_conv(x, wmat, pads, out_hw, b=None):
    """y = conv3x3(x_pad, w) (+ b), stride 1: ``numba_conv.conv_forward_im2col``'s result up to rounding.

    x: (N, H, W, C) contiguous, wmat: (9*C, F) rows ordered (kh, kw, c), pads: ((top, bottom),
    (left, right)) (only top and left matter: the patches are read with a bounds check), out_hw: (OH, OW),
    b: (F,) or None. Returns y: (N, OH, OW, F) in x's dtype.
    """
    n, _, _, c = x.shape
    f = wmat.shape[1]
    (oh, ow), (top, _), (left, _) = out_hw, *pads
    th, tw = -(-oh // 2), -(-ow // 2)                          # tiles per image: ceil(OH/2) x ceil(OW/2)
    u = winograd_kernel(wmat, c, f)
    rows = max(1, CHUNK_BYTES // (16 * tw * c * x.itemsize), -(-MIN_TILES // tw))
    rows = min(rows, n * th)
    v = np.empty((16, rows * tw, c), dtype=x.dtype)
    m = np.empty((16, rows * tw, f), dtype=x.dtype)
    y = np.empty((n, oh, ow, f), dtype=x.dtype)
    bias = np.zeros(0, dtype=x.dtype) if b is None else b
    for r0 in range(0, n * th, rows):
        r1 = min(n * th, r0 + rows)
        p = (r1 - r0) * tw
        loops.winograd_input(x, r0, r1, th, tw, top, left, v)
        np.matmul(v[:, :p], u, out=m[:, :p])
        loops.winograd_output(m, r0, r1, th, tw, bias, y)
    return y
