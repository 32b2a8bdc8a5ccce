"""Chapter 10's exercises: mirrored borders, tile origins, the skip crop."""
from __future__ import annotations

import numpy as np

from .base import call_student, check_arrays, check_cases


def check_mirror_pad(fn):
    """fn(image, m) -> image reflected by m pixels on every side (edge pixel not repeated)."""
    a = np.arange(12.0).reshape(3, 4)
    got = call_student(fn, (a, 1), "mirror_pad")
    symmetric = np.pad(a, 1, mode="symmetric")
    if np.shape(got) == symmetric.shape and np.array_equal(got, symmetric):
        raise AssertionError("mirror_pad: the edge pixel is repeated (that is np.pad's 'symmetric'); the paper "
                             "mirrors about the edge pixel, so [a, b, c] padded by 1 is [b, a, b, c, b]")
    rng = np.random.default_rng(0)
    big = rng.random((9, 7))
    return check_arrays(fn, [((a, 1), np.pad(a, 1, mode="reflect"), "3 x 4, m = 1"),
                             ((big, 3), np.pad(big, 3, mode="reflect"), "9 x 7, m = 3"),
                             ((big, 0), big, "m = 0")], "mirror_pad")


def check_tile_origins(fn):
    """fn(size, out, step) -> list of tile starts covering size."""
    return check_cases(lambda *a: list(fn(*a)), [((200, 52, 48), [0, 48, 96, 144, 192]), ((52, 52, 48), [0]),
                                                 ((30, 52, 48), [0]), ((388, 388, 384), [0]),
                                                 ((389, 388, 384), [0, 384])], "tile_origins")


def check_skip_crop(fn):
    """fn(skip_size, up_size) -> (top, bottom) pixels to cut."""
    return check_cases(lambda *a: tuple(fn(*a)), [((568, 392), (88, 88)), ((64, 56), (4, 4)),
                                                 ((9, 6), (1, 2)), ((8, 8), (0, 0))], "skip_crop")
