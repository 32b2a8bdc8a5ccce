"""Skip connections: channel concatenation and the paper's centre crop, with their gradients.

The gradient of a concatenation is a split: each input gets back the channels it contributed.
The gradient of a crop pastes the gradient back into zeros of the input's size.
"""
from __future__ import annotations

import numpy as np


def concatenate(xs, axis=-1):
    """xs: list of (N, H, W, C_i) arrays -> (y (N, H, W, sum C_i), cache)."""
    xs = list(xs)
    if len(xs) < 2:
        raise ValueError("concatenate needs at least two arrays")
    ref = list(xs[0].shape)
    ax = axis % len(ref)
    for x in xs[1:]:
        other = list(x.shape)
        if len(other) != len(ref) or [s for i, s in enumerate(other) if i != ax] != \
                [s for i, s in enumerate(ref) if i != ax]:
            hint = ""
            if len(other) == 4 == len(ref) and other[1:3] != ref[1:3]:
                hint = ("; the spatial sizes differ: use an input size divisible by 2**depth "
                        "('same' padding) or centre-crop the skip ('valid' padding)")
            raise ValueError(f"cannot concatenate shapes {tuple(ref)} and {tuple(other)} along axis "
                             f"{axis}: all other dimensions must match{hint}")
    sizes = [x.shape[ax] for x in xs]
    return np.concatenate(xs, axis=ax), (sizes, ax)


def concatenate_backward(dy, cache):
    """dy: (N, H, W, sum C_i) -> [dx_1, dx_2, ...], one slice of channels per input."""
    sizes, ax = cache
    return np.split(dy, np.cumsum(sizes)[:-1], axis=ax)


def crop_amounts(height, width, target_h, target_w):
    """((top, bottom), (left, right)) that centre-crop (height, width) to (target_h, target_w).

    When the difference is odd the extra row/column goes at the bottom/right (top = diff // 2), which is
    what ``keras.layers.Cropping2D(((top, bottom), (left, right)))`` then reproduces.
    """
    dh, dw = int(height) - int(target_h), int(width) - int(target_w)
    if dh < 0 or dw < 0:
        raise ValueError(f"cannot crop ({height}, {width}) to a larger size ({target_h}, {target_w})")
    return (dh // 2, dh - dh // 2), (dw // 2, dw - dw // 2)


def center_crop(x, size):
    """x: (N, H, W, C), size: (h, w) -> (y (N, h, w, C), cache): the paper's skip crop."""
    (t, b), (l, r) = crop_amounts(x.shape[1], x.shape[2], *size)
    h, w = size
    return x[:, t:t + h, l:l + w], (x.shape, t, l)


def center_crop_backward(dy, cache):
    """Paste dy back into zeros shaped like the uncropped input."""
    shape, t, l = cache
    dx = np.zeros(shape, dtype=dy.dtype)
    dx[:, t:t + dy.shape[1], l:l + dy.shape[2]] = dy
    return dx
