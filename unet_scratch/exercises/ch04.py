"""Chapter 04's exercises: the gradient of a concatenation, the paper's centre crop and its gradient."""
from __future__ import annotations

import numpy as np

from ..ops.concat import center_crop, center_crop_backward, concatenate, concatenate_backward
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases


def check_concat_backward(fn):
    """fn(dy, c1) -> (dx1, dx2): the gradients of y = concatenate([x1, x2]) (channels last) for the two
    inputs, where x1 had c1 channels. dy: (N, H, W, C1 + C2)."""
    rng = np.random.default_rng(4)
    cases = []
    for shape, c1, label in [((2, 4, 4, 5), 3, "3 + 2 channels"), ((1, 3, 5, 8), 4, "4 + 4 channels"),
                             ((2, 2, 2, 7), 1, "1 + 6 channels"), ((1, 6, 6, 16), 8, "the decoder's 8 + 8")]:
        dy = rng.standard_normal(shape)
        _, cache = concatenate([np.zeros(shape[:3] + (c1,)), np.zeros(shape[:3] + (shape[3] - c1,))])
        cases.append(((dy, c1), tuple(concatenate_backward(dy, cache)), f"{label}, dy {shape}"))
    return _check_arrays(fn, cases, "concat_backward", rtol=0, atol=0)


def _valid_unet_crops(size, depth):
    """Per-side crop of each skip, top level first, read off the package's valid U-Net."""
    from ..model import UNet
    model = UNet(input_shape=(size, size, 1), base_filters=1, depth=depth, padding="valid", dropout=0, seed=0)
    return [block.crop.cropping[0][0] for block in reversed(model.decoder)]


def check_skip_crops(fn):
    """fn(size, depth) -> [c_1, ..., c_depth]: the pixels cut from EACH side of the skip at decoder level
    1 (top) ... depth (deepest) in the paper's valid U-Net (two 3x3 valid convs per level) for a
    size x size input tile."""
    cases = [(args, _valid_unet_crops(*args)) for args in [(572, 4), (188, 4), (92, 3), (44, 2), (28, 1)]]
    return _check_cases(fn, cases, "skip_crops")


def check_center_crop_backward(fn):
    """fn(dy, x_shape) -> dx: the gradient of center_crop(x, dy.shape[1:3]) for x of shape x_shape:
    zeros, with dy pasted into the window the crop took."""
    rng = np.random.default_rng(4)
    cases = []
    for x_shape, size, label in [((1, 8, 8, 2), (4, 4), "8x8 -> 4x4"), ((2, 9, 9, 1), (4, 4), "9x9 -> 4x4 (odd)"),
                                 ((1, 10, 7, 3), (5, 4), "10x7 -> 5x4"), ((1, 5, 5, 2), (5, 5), "no crop")]:
        dy = rng.standard_normal((x_shape[0], *size, x_shape[3]))
        _, cache = center_crop(np.zeros(x_shape), size)
        cases.append(((dy, x_shape), center_crop_backward(dy, cache), f"{label}, x {x_shape}"))
    return _check_arrays(fn, cases, "center_crop_backward", rtol=0, atol=0)
