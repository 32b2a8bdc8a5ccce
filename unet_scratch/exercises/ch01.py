"""Chapter 01's exercises: the output size of a convolution, a convolution by loops, receptive fields."""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv2d, conv_output_size
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases


def check_conv_output_size(fn):
    """fn(n, k, s, padding) -> output length along one axis of a Keras Conv2D ('same' or 'valid')."""
    args = [(5, 3, 1, "valid"), (5, 3, 1, "same"), (7, 3, 2, "valid"), (7, 3, 2, "same"), (8, 2, 2, "valid"),
            (256, 3, 1, "same"), (572, 3, 1, "valid"), (10, 4, 3, "valid"), (10, 4, 3, "same"), (3, 3, 1, "valid")]
    return _check_cases(fn, [(a, conv_output_size(*a)) for a in args], "conv_output_size")


def check_conv2d_loop(fn):
    """fn(x, w, b, stride) -> y: a 'valid' Keras convolution (cross-correlation, no kernel flip) of
    x: (N, H, W, C) with w: (KH, KW, C, F), b: (F,), the same stride along both axes. y: (N, OH, OW, F)."""
    rng = np.random.default_rng(1)
    cases = []
    for x_shape, w_shape, s in [((1, 5, 5, 1), (3, 3, 1, 1), 1), ((2, 6, 7, 3), (3, 3, 3, 4), 1),
                                ((1, 7, 7, 2), (3, 2, 2, 3), 2), ((1, 4, 4, 1), (2, 2, 1, 2), 2)]:
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[3])
        label = f"x {x_shape}, w {w_shape}, stride {s}"
        cases.append(((x, w, b, s), conv2d(x, w, b, strides=s, padding="valid")[0], label))
    return _check_arrays(fn, cases, "conv2d_loop", rtol=1e-7, atol=1e-9)


def _receptive_field(layers):
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


def check_receptive_field(fn):
    """fn(layers) -> the receptive field (pixels along one axis) of one output pixel of a stack of layers,
    each given as (kernel_size, stride), first layer first."""
    unet4 = [(3, 1), (3, 1), (2, 2)] * 4 + [(3, 1), (3, 1)]
    stacks = [[(3, 1)], [(3, 1), (3, 1)], [(3, 1), (3, 1), (2, 2)], [(2, 2), (3, 1)], [(5, 2), (3, 2), (3, 1)],
              unet4, []]
    return _check_cases(fn, [((layers,), _receptive_field(layers)) for layers in stacks], "receptive_field")
