"""Check functions for the chapters' exercises: each runs a student's function on several cases and says
what is wrong (an AssertionError with the case and the expected answer), or prints that it is right."""
from __future__ import annotations


def _check(fn, cases, what):
    for args, expected in cases:
        try:
            got = fn(*args)
        except NotImplementedError:
            raise AssertionError(f"{what}: not implemented yet (replace `raise NotImplementedError`)") from None
        if got != expected:
            raise AssertionError(f"{what}{args}: expected {expected!r}, got {got!r}")
    print(f"correct: {what} passes {len(cases)} cases")
    return True


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
