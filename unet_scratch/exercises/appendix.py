"""The troubleshooting appendix's exercises: legal input sizes, fixing masks, class-balancing weights."""
from __future__ import annotations

import numpy as np

from ..checks import nearest_legal_sizes
from .base import call_student
from .base import check_arrays as _check_arrays
from .base import check_cases as _check


def check_nearest_legal_sizes(fn):
    """fn(size, depth) -> (below, above): the nearest sizes a 'same' U-Net of this depth accepts.

    Both are ``size`` when it is legal; ``below`` is 0 when no legal size lies below (as in
    ``unet_scratch.checks.nearest_legal_sizes(size, depth, "same")``).
    """
    cases = [(args, nearest_legal_sizes(*args, "same"))
             for args in [(100, 4), (96, 4), (250, 3), (5, 4), (572, 4), (31, 1), (1000, 5)]]
    return _check(fn, cases, "nearest_legal_sizes")


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


def check_fix_mask(fn):
    """fn(mask) -> float32 array of the same shape with values in {0, 1}.

    0/255 masks (clean or JPEG-noisy) are thresholded at 127.5, masks in [0, 1] at 0.5.
    """
    cases = _mask_cases()
    _check_arrays(fn, cases, "fix_mask", rtol=0, atol=0)
    for args, _, label in cases:
        got = np.asarray(fn(*args))
        if got.dtype != np.float32:
            raise AssertionError(f"fix_mask ({label}): the values are right but the dtype is {got.dtype}; "
                                 f"return float32 (what the losses expect)")
    return True


def check_pos_weight(fn):
    """fn(mask) -> float: background pixels / foreground pixels of a {0, 1} mask (the weight that makes the
    foreground count as much as the background in a weighted BCE)."""
    rng = np.random.default_rng(12)
    cases = []
    for shape, p in [((2, 16, 16, 1), 0.25), ((1, 32, 32, 1), 0.05), ((8, 8), 0.5)]:
        m = (rng.random(shape) < p).astype(np.float32)
        cases.append(((m,), np.float64((m == 0).sum() / (m == 1).sum()),
                      f"mask of shape {shape}, {100 * m.mean():.0f}% foreground"))
    return _check_arrays(fn, cases, "pos_weight", rtol=1e-9, atol=0)
