"""Chapter 06's exercises: moving weights between frameworks, pooling near-ties, stable verdicts."""
from __future__ import annotations

import numpy as np

from ..ops.pool import maxpool2d
from .base import call_student
from .base import check_arrays as _check_arrays


def check_oihw_to_hwio(fn):
    """fn(w) -> the kernel w: (O, I, KH, KW) (PyTorch's Conv2d layout) in Keras's (KH, KW, I, O) layout."""
    rng = np.random.default_rng(6)
    cases = []
    for shape, label in [((4, 2, 3, 3), "a 3x3 kernel, 2 -> 4 channels"),
                         ((5, 3, 2, 3), "a non-square 2x3 kernel"),
                         ((1, 6, 1, 1), "a 1x1 head, 6 -> 1 channel")]:
        w = rng.standard_normal(shape).astype(np.float32)
        cases.append(((w,), np.transpose(w, (2, 3, 1, 0)), label))
    return _check_arrays(fn, cases, "oihw_to_hwio", rtol=0, atol=0)


def _first_max(x):
    return maxpool2d(x, 2)[1]["argmax"]


def _tie_cases():
    """(a, b, label) pairs of float32 (N, H, W, C) arrays, some one rounding step apart."""
    rng = np.random.default_rng(6)
    up = lambda v: np.nextafter(np.float32(v), np.float32(np.inf))      # noqa: E731
    down = lambda v: np.nextafter(np.float32(v), np.float32(-np.inf))   # noqa: E731
    base = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    cases = [(base, base.copy(), "identical arrays")]

    a = base.copy()
    a[0, 0, 0, 0] = a[0, 0, 1, 0] = 3.0                  # a tie: the first maximum is pixel (0, 0)
    b = a.copy()
    b[0, 0, 1, 0] = up(3.0)                              # one ulp more: now pixel (0, 1) wins
    cases.append((a, b, "a tie broken by one ulp towards the second pixel"))

    b = a.copy()
    b[0, 0, 1, 0] = down(3.0)                            # the tie is broken, but (0, 0) still wins
    cases.append((a, b, "a tie broken by one ulp in favour of the first pixel"))

    a = base.copy()
    a[0, 2, 2, 1] = 5.0
    b = a.copy()
    b[0, 2, 2, 1] = up(5.0)                              # the maximum itself moves, not its position
    cases.append((a, b, "the same winner, one ulp larger"))

    a = np.maximum(rng.standard_normal((2, 8, 8, 3)), 0).astype(np.float32)   # ReLU: many all-zero windows
    b = a.copy()
    flip = rng.random(a.shape) < 0.3
    b[flip] = np.where(a[flip] > 0, np.nextafter(a[flip], np.float32(np.inf)), np.float32(1e-30))
    cases.append((a, b, "ReLU outputs, 30% of the pixels nudged"))
    return cases


def check_count_routing_differences(fn):
    """fn(a, b) -> the number of 2x2 stride-2 pooling windows whose FIRST maximum (row-major order in the
    window) is a different pixel in a than in b. a, b: (N, H, W, C) float32, H and W even."""
    what = "count_routing_differences"
    for a, b, label in _tie_cases():
        expected = int(np.sum(_first_max(a) != _first_max(b)))
        got = call_student(fn, (a, b), what)
        if not isinstance(got, (int, np.integer)) or int(got) != expected:
            raise AssertionError(f"{what} ({label}, shape {a.shape}): expected {expected}, got {got!r}")
    print(f"correct: {what} passes {len(_tie_cases())} cases")
    return True


def check_order_of_magnitude(fn):
    """fn(err) -> the integer k with 10**k <= err < 10**(k + 1), or None when err == 0."""
    what = "order_of_magnitude"
    cases = [(1.6e-7, -7), (9.7e-7, -7), (1e-5, -5), (3.2e-12, -12), (0.5, -1), (42.0, 1), (0.0, None)]
    for err, expected in cases:
        got = call_student(fn, (err,), what)
        if got != expected or (expected is not None and not isinstance(got, (int, np.integer))):
            raise AssertionError(f"{what}({err!r}): expected {expected!r}, got {got!r}")
    print(f"correct: {what} passes {len(cases)} cases")
    return True
