"""Chapter 00's exercises: U-Net sizes and parameter counts."""
from __future__ import annotations

from .base import check_cases as _check


def check_same_unet_sizes(fn):
    """fn(size, depth) -> list of the spatial sizes at each level of a 'same' U-Net, top to bottom."""
    cases = [((256, 4), [256, 128, 64, 32, 16]), ((64, 2), [64, 32, 16]), ((48, 3), [48, 24, 12, 6])]
    return _check(fn, cases, "same_unet_sizes")


def check_conv_params(fn):
    """fn(kernel_size, c_in, c_out) -> parameters of a Conv2D with bias."""
    cases = [((3, 1, 64), 640), ((3, 64, 64), 36928), ((1, 64, 1), 65), ((2, 1024, 512), 2097664)]
    return _check(fn, cases, "conv_params")


def check_valid_output_size(fn):
    """fn(size, depth) -> output size of the paper's valid U-Net, or None for an illegal tile."""
    cases = [((572, 4), 388), ((188, 4), 4), ((570, 4), None), ((172, 4), None), ((44, 2), 4)]
    return _check(fn, cases, "valid_output_size")
