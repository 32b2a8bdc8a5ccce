"""Chapter 06's exercises: moving weights between frameworks, pooling near-ties, stable verdicts.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.pool import maxpool2d
from .base import Mistake, call_student
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. PyTorch's kernel layout to Keras's
OIHW_MISTAKES = [
    Mistake("w.T (every axis reversed: (KW, KH, I, O), the kernel's rows and columns swapped)",
            "reverse only what must move: (O, I, KH, KW) -> (KH, KW, I, O) is np.transpose(w, (2, 3, 1, 0))",
            lambda w: w.T),
    Mistake("the channels swapped ((KH, KW, O, I): Keras's Conv2DTranspose layout, not Conv2D's)",
            "Keras's Conv2D kernel is (KH, KW, in, out): np.transpose(w, (2, 3, 1, 0)), input channels third",
            lambda w: np.transpose(w, (2, 3, 0, 1))),
    Mistake("a reshape instead of a transpose (the right shape, the numbers in the old memory order)",
            "reshape keeps the order of the numbers in memory; moving axes needs np.transpose",
            lambda w: w.reshape(w.shape[2], w.shape[3], w.shape[1], w.shape[0])),
]


def check_oihw_to_hwio(fn):
    """fn(w) -> the kernel w: (O, I, KH, KW) (PyTorch's Conv2d layout) in Keras's (KH, KW, I, O) layout."""
    rng = np.random.default_rng(6)
    cases = []
    for shape, label in [((4, 2, 3, 3), "a 3x3 kernel, 2 -> 4 channels"),
                         ((5, 3, 2, 3), "a non-square 2x3 kernel"),
                         ((1, 6, 1, 1), "a 1x1 head, 6 -> 1 channel")]:
        w = rng.standard_normal(shape).astype(np.float32)
        cases.append(((w,), np.transpose(w, (2, 3, 1, 0)), label))
    return _check_arrays(fn, cases, "oihw_to_hwio", rtol=0, atol=0, mistakes=OIHW_MISTAKES)


# ------------------------------------------------------------------ shared: integer answers with named mistakes
def _check_values(fn, cases, what, mistakes, same=None):
    """cases: [(args, expected, label)]; the answer must equal expected (``same(got, expected)``). A wrong
    answer that equals a mistake's answer on that case gets the mistake's name and fix."""
    same = same or (lambda got, exp: got == exp)
    for args, expected, label in cases:
        got = call_student(fn, args, what)
        if not same(got, expected):
            for mistake in mistakes:
                try:
                    wrong = mistake.answer(*args)
                except Exception:                      # the mistake does not apply to this case
                    continue
                if same(got, wrong):
                    raise AssertionError(f"{what} ({label}): expected {expected!r}, got {got!r}: that is what "
                                         f"{mistake.name} gives. {mistake.fix}")
            raise AssertionError(f"{what} ({label}): expected {expected!r}, got {got!r}")
    print(f"correct: {what} passes {len(cases)} cases")
    return True


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


def _windows(x):
    """(N, H, W, C) -> (N, H/2, W/2, C, 4): each 2x2 window in row-major order."""
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def _last_max(x):
    return 3 - np.argmax(_windows(x)[..., ::-1], axis=-1)


def _tie_set(x):
    win = _windows(x)
    return win == win.max(axis=-1, keepdims=True)


ROUTING_MISTAKES = [
    Mistake("comparing the pooled maximum VALUES (a winner that grows by one ulp is no change of route)",
            "compare where the maximum sits, not what it is: np.argmax over each window's 4 pixels",
            lambda a, b: int(np.sum(_windows(a).max(-1) != _windows(b).max(-1)))),
    Mistake("comparing the SETS of tied maxima (a tie broken in favour of the first pixel does not reroute)",
            "the gradient goes to the FIRST maximum only: compare np.argmax of each window, not masks x == max",
            lambda a, b: int(np.sum(np.any(_tie_set(a) != _tie_set(b), axis=-1)))),
    Mistake("the LAST maximum of each window",
            "TensorFlow routes to the FIRST maximum in row-major order, which np.argmax returns",
            lambda a, b: int(np.sum(_last_max(a) != _last_max(b)))),
]


def check_count_routing_differences(fn):
    """fn(a, b) -> the number of 2x2 stride-2 pooling windows whose FIRST maximum (row-major order in the
    window) is a different pixel in a than in b. a, b: (N, H, W, C) float32, H and W even."""
    cases = [((a, b), int(np.sum(_first_max(a) != _first_max(b))), f"{label}, shape {a.shape}")
             for a, b, label in _tie_cases()]
    is_int = lambda got, exp: isinstance(got, (int, np.integer)) and int(got) == exp      # noqa: E731
    return _check_values(fn, cases, "count_routing_differences", ROUTING_MISTAKES, same=is_int)


MAGNITUDE_MISTAKES = [
    Mistake("log10 rounded to the nearest integer",
            "9.7e-7 lies between 1e-7 and 1e-6: its order is -7, the FLOOR of log10 (math.floor)",
            lambda e: round(math.log10(e))),
    Mistake("log10 rounded up, or towards zero (math.ceil, or int() of a negative logarithm)",
            "int() drops the fraction, which rounds -6.2 UP to -6: use math.floor",
            lambda e: math.ceil(math.log10(e))),
]


def _order(err):
    return None if err == 0 else math.floor(math.log10(err))


def check_order_of_magnitude(fn):
    """fn(err) -> the integer k with 10**k <= err < 10**(k + 1), or None when err == 0."""
    what = "order_of_magnitude"
    try:
        call_student(fn, (0.0,), what)
    except (ValueError, OverflowError) as err:           # log10(0) = -inf, and int(-inf) fails
        raise AssertionError(f"{what} (err = 0.0): {type(err).__name__}: {err}. An error of exactly 0 has no "
                             f"order of magnitude (log10(0) is -inf): return None for it first") from None
    values = [1.6e-7, 9.7e-7, 1e-5, 3.2e-12, 0.5, 42.0, 0.0]
    cases = [((err,), _order(err), f"err = {err!r}") for err in values]

    def same(got, exp):
        return got is None if exp is None else isinstance(got, (int, np.integer)) and got == exp
    return _check_values(fn, cases, what, MAGNITUDE_MISTAKES, same=same)
