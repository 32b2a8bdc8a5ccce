"""The troubleshooting appendix's exercises: padding to a legal size, fixing masks, class-balancing weights.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from .base import Mistake
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. pad to a legal size
def _pad(x, depth, step=None, split=lambda total: (total // 2, total - total // 2), mode="reflect",
         always=False):
    step = 2 ** depth if step is None else step
    widths = [(0, 0)]
    for size in x.shape[1:3]:
        legal = (size // step + 1) * step if always else -(-size // step) * step
        widths.append(split(legal - size))
    return np.pad(x, widths + [(0, 0)], mode=mode)


PAD_MISTAKES = [
    Mistake("all the padding at the bottom and right",
            "split it: top = total // 2, bottom = total - top (the same for left and right), so the image "
            "stays centred and both borders get mirrored context",
            lambda x, depth: _pad(x, depth, split=lambda total: (0, total))),
    Mistake("the odd pixel padded at the top (or left)",
            "top = total // 2 and bottom = total - top: an odd pixel goes to the bottom (right)",
            lambda x, depth: _pad(x, depth, split=lambda total: (total - total // 2, total // 2))),
    Mistake("zeros instead of a mirror (np.pad's mode='constant')",
            "use np.pad(..., mode='reflect'): the network sees mirrored context at the border, as in the "
            "paper's overlap-tile strategy",
            lambda x, depth: _pad(x, depth, mode="constant")),
    Mistake("a whole 2**depth added to a size that is already legal",
            "round UP to a multiple: legal = -(-size // 2**depth) * 2**depth, which leaves a legal size alone",
            lambda x, depth: _pad(x, depth, always=True)),
    Mistake("a multiple of 2 * depth instead of 2 ** depth",
            "each of the depth poolings halves the size: the size must be divisible by 2 ** depth",
            lambda x, depth: _pad(x, depth, step=2 * depth)),
]


def check_pad_to_legal(fn):
    """fn(x, depth) -> x mirrored (np.pad mode='reflect') to the next height and width divisible by 2**depth.

    x: (N, H, W, C). The padding of each axis is split as top = total // 2, bottom = total - top.
    A legal size is left as it is.
    """
    rng = np.random.default_rng(13)
    cases = []
    for shape, depth, label in [((1, 100, 100, 1), 4, "(1, 100, 100, 1), depth 4: 100 -> 112"),
                                ((2, 50, 37, 3), 3, "(2, 50, 37, 3), depth 3: 50 -> 56, 37 -> 40"),
                                ((1, 96, 64, 1), 4, "(1, 96, 64, 1), depth 4: already legal")]:
        x = rng.random(shape, dtype=np.float32)
        cases.append(((x, depth), _pad(x, depth), label))
    return _check_arrays(fn, cases, "pad_to_legal", rtol=0, atol=0, mistakes=PAD_MISTAKES)


# ------------------------------------------------------------------ 2. fix a mask
def _mask_cases():
    rng = np.random.default_rng(11)
    truth = rng.random((2, 12, 10)) < 0.3
    noisy = np.where(truth, 255 - rng.integers(0, 40, truth.shape), rng.integers(0, 40, truth.shape))
    blurred = np.clip(truth + rng.normal(0, 0.15, truth.shape), 0, 1)
    f32 = lambda a: a.astype(np.float32)                                              # noqa: E731
    return [((truth.astype(np.uint8) * 255,), f32(truth), "uint8 mask stored as 0/255"),
            ((noisy.astype(np.uint8),), f32(truth), "uint8 mask saved as JPEG (values near 0 and 255)"),
            ((truth.astype(np.float32),), f32(truth), "float mask already 0/1 (leave it alone)"),
            ((truth.astype(np.uint8),), f32(truth), "uint8 mask 0/1"),
            ((truth,), f32(truth), "bool mask"),
            ((blurred,), f32(blurred > 0.5), "float mask in [0, 1] after interpolation"),
            ((truth[..., None].astype(np.float64) * 255,), f32(truth[..., None]), "float64 0/255, shape (N, H, W, 1)"),
            ((np.zeros((4, 4), np.uint8),), np.zeros((4, 4), np.float32), "an empty mask (all background)")]


def _as_float(mask):
    return np.asarray(mask, dtype=np.float64)


MASK_MISTAKES = [
    Mistake("a division by 255 without a threshold",
            "JPEG noise leaves values like 17/255 and 238/255: threshold after scaling (or threshold 0/255 "
            "masks at 127.5 directly)",
            lambda m: (_as_float(m) / (255 if _as_float(m).max() > 1 else 1)).astype(np.float32)),
    Mistake("one threshold of 0.5 for every mask",
            "on a 0/255 JPEG mask the background's noise (values 1 to 39) is above 0.5: threshold masks that "
            "go above 1 at 127.5",
            lambda m: (_as_float(m) > 0.5).astype(np.float32)),
    Mistake("one threshold of 127.5 for every mask",
            "a mask already in [0, 1] is all below 127.5: threshold it at 0.5",
            lambda m: (_as_float(m) > 127.5).astype(np.float32)),
]


def check_fix_mask(fn):
    """fn(mask) -> float32 array of the same shape with values in {0, 1}.

    0/255 masks (clean or JPEG-noisy) are thresholded at 127.5, masks in [0, 1] at 0.5.
    """
    cases = _mask_cases()
    _check_arrays(fn, cases, "fix_mask", rtol=0, atol=0, mistakes=MASK_MISTAKES)
    for args, _, label in cases:
        got = np.asarray(fn(*args))
        if got.dtype != np.float32:
            raise AssertionError(f"fix_mask ({label}): the values are right but the dtype is {got.dtype}; "
                                 f"return float32 (what the losses expect)")
    return True


# ------------------------------------------------------------------ 3. the class-balancing weight
POS_WEIGHT_MISTAKES = [
    Mistake("foreground / background (the ratio upside down)",
            "the rare class gets the large weight: background pixels / foreground pixels",
            lambda m: np.float64((m == 1).sum() / (m == 0).sum())),
    Mistake("the background's share of all pixels",
            "divide by the foreground count, not by the number of pixels: (m == 0).sum() / (m == 1).sum()",
            lambda m: np.float64((m == 0).sum() / m.size)),
    Mistake("the inverse of the foreground's share (all pixels / foreground)",
            "count only the background above the line: (m == 0).sum() / (m == 1).sum(), which is 1 less",
            lambda m: np.float64(m.size / (m == 1).sum())),
]


def check_pos_weight(fn):
    """fn(mask) -> float: background pixels / foreground pixels of a {0, 1} mask (the weight that makes the
    foreground count as much as the background in a weighted BCE)."""
    rng = np.random.default_rng(12)
    cases = []
    for shape, p in [((2, 16, 16, 1), 0.25), ((1, 32, 32, 1), 0.05), ((8, 8), 0.5)]:
        m = (rng.random(shape) < p).astype(np.float32)
        cases.append(((m,), np.float64((m == 0).sum() / (m == 1).sum()),
                      f"mask of shape {shape}, {100 * m.mean():.0f}% foreground"))
    return _check_arrays(fn, cases, "pos_weight", rtol=1e-9, atol=0, mistakes=POS_WEIGHT_MISTAKES)
