"""Chapter 10's exercises: mirrored borders, overlap-tile prediction, the skip crop.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from ..ops.activations import relu
from ..ops.conv import conv2d
from .base import Mistake, check_arrays, check_cases

# ------------------------------------------------------------------ 1. mirroring
MIRROR_MISTAKES = [
    Mistake("the edge pixel repeated (np.pad's mode='symmetric')",
            "mirror ABOUT the edge pixel, as predict_tiled does (np.pad's 'reflect'): [a, b, c] padded by 1 is "
            "[b, a, b, c, b]",
            lambda a, m: np.pad(a, m, mode="symmetric")),
    Mistake("zeros around the image (np.pad's mode='constant')",
            "zeros are what a 'same' convolution sees; the paper extrapolates the missing context by mirroring",
            lambda a, m: np.pad(a, m, mode="constant")),
    Mistake("the opposite edge copied in (np.pad's mode='wrap', periodic)",
            "the context beyond the top edge is the image reflected at that edge, not its bottom rows",
            lambda a, m: np.pad(a, m, mode="wrap")),
]


def check_mirror_pad(fn):
    """fn(image, m) -> image (H, W) reflected by m pixels on every side (edge pixel not repeated)."""
    a = np.arange(12.0).reshape(3, 4)
    big = np.random.default_rng(0).random((9, 7))
    return check_arrays(fn, [((a, 1), np.pad(a, 1, mode="reflect"), "3 x 4, m = 1"),
                             ((big, 3), np.pad(big, 3, mode="reflect"), "9 x 7, m = 3"),
                             ((big, 0), big, "m = 0")], "mirror_pad", rtol=0, atol=0, mistakes=MIRROR_MISTAKES)


# ------------------------------------------------------------------ 2. overlap-tile prediction
class ValidNet:
    """A tiny 'valid' network: two 3x3 valid convolutions with a ReLU between them, so an input of
    t x t pixels gives (t - 4) x (t - 4) (a margin of 2 per side). Called on one tile at a time; it refuses
    anything that is not a tile of ``tile`` x ``tile`` pixels, as a network built for one tile size would.
    ``full(x)`` runs it on an input of any size (what one big pass gives). Its weights are small integers,
    so on integer images every sum is exact in float64 and tiled and untiled results agree to the bit."""

    margin = 2

    def __init__(self, tile, seed=0):
        rng = np.random.default_rng(seed)
        self.tile = tile
        self.w1 = rng.integers(-2, 3, (3, 3, 1, 4)).astype(np.float64)
        self.w2 = rng.integers(-2, 3, (3, 3, 4, 1)).astype(np.float64)

    def full(self, x):
        h = relu(conv2d(x[None, :, :, None], self.w1, None, 1, "valid")[0])[0]
        return conv2d(h, self.w2, None, 1, "valid")[0][0, :, :, 0]

    def __call__(self, x):
        x = np.asarray(x)
        if x.shape != (self.tile, self.tile):
            raise ValueError(f"this network takes one tile of {self.tile} x {self.tile} pixels, got an array "
                             f"of shape {x.shape}: cut the padded image into tiles")
        return self.full(x)


def _stepped_by_tile(f, image, tile, out):
    m = (tile - out) // 2
    right = f.full(np.pad(image, m, mode="reflect"))
    wrong = np.zeros_like(image)
    for i in range(0, image.shape[0], tile):
        for j in range(0, image.shape[1], tile):
            wrong[i:i + out, j:j + out] = right[i:i + out, j:j + out]
    return wrong


TILE_MISTAKES = [
    Mistake("zero padding instead of mirroring (np.pad's mode='constant')",
            "the missing context at the border is the image mirrored: np.pad(image, ..., mode='reflect') "
            "(or your mirror_pad)",
            lambda f, image, tile, out: f.full(np.pad(image, (tile - out) // 2, mode="constant"))),
    Mistake("the edge pixel repeated (np.pad's mode='symmetric')",
            "mirror about the edge pixel: mode='reflect'",
            lambda f, image, tile, out: f.full(np.pad(image, (tile - out) // 2, mode="symmetric"))),
    Mistake("no margin at the top and left (tiles cut from the image itself, the output shifted by the margin)",
            "pad by the margin m = (tile - out) // 2 on EVERY side: output pixel (i, j) needs input pixels "
            "i - m to i + m",
            lambda f, image, tile, out: f.full(np.pad(image, ((0, tile - out), (0, tile - out)),
                                                      mode="reflect"))),
    Mistake("tiles stepped by the input tile size (gaps between the output tiles)",
            "neighbouring input tiles overlap: step by the OUTPUT size, so that the output tiles touch",
            _stepped_by_tile),
]


def check_tile_predict(fn):
    """fn(f, image, tile, out) -> (H, W): f applied tile by tile to the mirrored image, outputs stitched.

    f maps a (tile, tile) array to (out, out); image: (H, W) of any size. Expected: what one big pass of
    the same network over the image mirrored by m = (tile - out) / 2 pixels gives.
    """
    rng = np.random.default_rng(10)
    cases = []
    for shape, tile, label in [((20, 13), 12, "a 20 x 13 image, tiles 12 -> 8"),
                               ((8, 8), 12, "an 8 x 8 image, one tile 12 -> 8"),
                               ((5, 30), 10, "a 5 x 30 image, tiles 10 -> 6")]:
        f, image = ValidNet(tile, seed=len(cases)), rng.integers(0, 10, shape).astype(np.float64)
        out = tile - 2 * f.margin
        cases.append(((f, image, tile, out), f.full(np.pad(image, f.margin, mode="reflect")), label))
    return check_arrays(fn, cases, "tile_predict", rtol=0, atol=0, mistakes=TILE_MISTAKES)


# ------------------------------------------------------------------ 3. the skip crop
SKIP_CROP_MISTAKES = [
    Mistake("the odd pixel cut at the top",
            "put the odd pixel at the bottom, as Keras's Cropping2D convention in the package does: "
            "top = total // 2, bottom = total - top",
            lambda s, u: ((s - u) - (s - u) // 2, (s - u) // 2)),
    Mistake("the whole difference cut from one side",
            "centre the kept part: half the difference from each side",
            lambda s, u: (0, s - u)),
    Mistake("the difference not halved (each side cut by the whole difference)",
            "the two sides together lose skip_size - up_size pixels: each loses about half",
            lambda s, u: (s - u, s - u)),
]


def check_skip_crop(fn):
    """fn(skip_size, up_size) -> (top, bottom) pixels to cut."""
    return check_cases(lambda *a: tuple(fn(*a)), [((568, 392), (88, 88)), ((64, 56), (4, 4)),
                                                 ((9, 6), (1, 2)), ((8, 8), (0, 0))], "skip_crop",
                       mistakes=SKIP_CROP_MISTAKES)
