"""Skip connections: channel concatenation and the paper's centre crop, with their gradients.

Concatenation stacks feature maps along the channel axis:

    y = [x_1 | x_2 | ...]          (N, H, W, C_1) + (N, H, W, C_2) -> (N, H, W, C_1 + C_2)

so each output channel is a copy of exactly one input channel and the gradient is a split:
dx_1 = dy[..., :C_1], dx_2 = dy[..., C_1:C_1 + C_2], ...

With 'valid' convolutions (the paper) the encoder's feature map is larger than the decoder's, so the
skip is centre-cropped first (568 -> 392 at the top level of the 572 x 572 network: 88 px per side).
A crop keeps a window of x, so its gradient pastes dy into that window of a zero array of x's shape.
"""
from __future__ import annotations

import numpy as np


def _spatial_hint(ref, other) -> str:
    """The fix for NHWC tensors whose heights/widths differ (the classic U-Net skip mismatch)."""
    if len(ref) != 4 or len(other) != 4 or tuple(ref[1:3]) == tuple(other[1:3]):
        return ""
    a, b = tuple(ref[1:3]), tuple(other[1:3])
    hint = (f"; the spatial sizes {a} and {b} differ: with 'same' padding use an input size divisible "
            f"by 2**depth (each 2x2 pooling halves the size, flooring odd ones; e.g. 256 for depth 4)")
    big, small = (a, b) if a[0] >= b[0] and a[1] >= b[1] else (b, a)
    if big[0] >= small[0] and big[1] >= small[1]:
        hint += (f", or with 'valid' padding centre-crop the larger skip first: center_crop(skip, {small}) "
                 f"removes {crop_amounts(*big, *small)} ((top, bottom), (left, right))")
    return hint


def check_concat_args(xs, axis) -> int:
    """Check that the arrays in the list xs can be concatenated along ``axis``; return the axis as a
    non-negative index. Works for NumPy and CuPy arrays (only shapes and dtypes are read)."""
    if len(xs) < 2:
        raise ValueError(f"concatenate needs at least two arrays, got {len(xs)}")
    ref = tuple(xs[0].shape)
    if not -len(ref) <= axis < len(ref):
        raise ValueError(f"axis {axis} is out of range for arrays of rank {len(ref)}")
    ax = axis % len(ref)
    for x in xs[1:]:
        other = tuple(x.shape)
        if len(other) != len(ref) or any(a != b for i, (a, b) in enumerate(zip(ref, other)) if i != ax):
            raise ValueError(f"cannot concatenate shapes {ref} and {other} along axis {axis}: all other "
                             f"dimensions must match" + _spatial_hint(ref, other))
        if x.dtype != xs[0].dtype:
            raise TypeError(f"cannot concatenate dtypes {xs[0].dtype} and {x.dtype}: cast one with "
                            f".astype({str(xs[0].dtype)!r}) so the result keeps a single precision")
    return ax


def concatenate(xs, axis=-1):
    """Concatenate along ``axis`` (channels by default), like ``keras.layers.concatenate``.

    xs: list of arrays (N, H, W, C_i) with equal dtype and equal sizes except along ``axis``.
    Returns (y, cache): y (N, H, W, sum C_i); cache = (sizes along axis, axis).
    """
    xs = list(xs)
    ax = check_concat_args(xs, axis)
    sizes = [x.shape[ax] for x in xs]
    return np.concatenate(xs, axis=ax), (sizes, ax)


def concatenate_backward(dy, cache):
    """dy: (N, H, W, sum C_i) -> [dx_1, dx_2, ...], dx_i (N, H, W, C_i): the channels each input gave."""
    sizes, ax = cache
    return np.split(dy, np.cumsum(sizes)[:-1], axis=ax)


def crop_amounts(height, width, target_h, target_w):
    """((top, bottom), (left, right)) that centre-crop (height, width) down to (target_h, target_w).

    top = (height - target_h) // 2, and the remainder goes to the bottom, so when the difference is odd
    the extra row (column) is removed at the bottom (right). ``keras.layers.Cropping2D`` given these
    amounts reproduces ``center_crop`` exactly.
    """
    height, width, target_h, target_w = (int(v) for v in (height, width, target_h, target_w))
    if min(target_h, target_w) < 1:
        raise ValueError(f"crop target ({target_h}, {target_w}) must be at least 1 x 1")
    dh, dw = height - target_h, width - target_w
    if dh < 0 or dw < 0:
        raise ValueError(f"cannot crop ({height}, {width}) to a larger size ({target_h}, {target_w}); "
                         f"crop the larger tensor (the encoder's skip) to the smaller one's size")
    return (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)


def crop2d(x, cropping):
    """Cut rows and columns off the borders, like ``keras.layers.Cropping2D``.

    x: (N, H, W, C); cropping: ((top, bottom), (left, right)).
    Returns (y, cache): y (N, H - top - bottom, W - left - right, C), a view into x (a crop is a slice, no
    copy); cache = (x.shape, top, left).
    """
    if x.ndim != 4:
        raise ValueError(f"cropping expects an NHWC tensor (N, H, W, C), got shape {x.shape}")
    (top, bottom), (left, right) = ((int(a), int(b)) for a, b in cropping)
    h, w = x.shape[1] - top - bottom, x.shape[2] - left - right
    if min(top, bottom, left, right) < 0 or h < 1 or w < 1:
        raise ValueError(f"cropping {((top, bottom), (left, right))} of a tensor of shape {tuple(x.shape)} "
                         "must be >= 0 and leave at least 1 x 1 pixels")
    return x[:, top:top + h, left:left + w], (x.shape, top, left)


def crop2d_backward(dy, cache):
    """dy: (N, h, w, C) -> dx: (N, H, W, C), zeros except dy pasted where the crop was taken."""
    shape, top, left = cache
    dx = np.zeros_like(dy, shape=shape)
    dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
    return dx


def center_crop(x, size):
    """The paper's skip crop: :func:`crop2d` by the centred amounts of :func:`crop_amounts`.

    x: (N, H, W, C); size: (h, w) with h <= H, w <= W.
    Returns (y, cache): y (N, h, w, C), a view into x; cache = (x.shape, top, left).
    """
    if x.ndim != 4:
        raise ValueError(f"center_crop expects an NHWC tensor (N, H, W, C), got shape {x.shape}")
    h, w = (int(s) for s in size)
    return crop2d(x, crop_amounts(x.shape[1], x.shape[2], h, w))


def center_crop_backward(dy, cache):
    """dy: (N, h, w, C) -> dx: (N, H, W, C), zeros except dy pasted where the crop was taken."""
    return crop2d_backward(dy, cache)
