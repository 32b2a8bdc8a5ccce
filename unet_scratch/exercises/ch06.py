"""Chapter 06's exercises: moving weights between frameworks, pooling near-ties, stable verdicts.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import math

import numpy as np

from ..ops.pool import maxpool2d
from .base import Mistake, call_student, message, tr
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. PyTorch's kernel layout to Keras's
OIHW_MISTAKES = [
    Mistake("w.T (every axis reversed: (KW, KH, I, O), the kernel's rows and columns swapped)",
            "reverse only what must move: (O, I, KH, KW) -> (KH, KW, I, O) is np.transpose(w, (2, 3, 1, 0))",
            lambda w: w.T,
            zh=("w.T（所有轴都反转了：(KW, KH, I, O)，卷积核的行和列对调了）",
                "只移动需要移动的轴：(O, I, KH, KW) -> (KH, KW, I, O) 就是 np.transpose(w, (2, 3, 1, 0))")),
    Mistake("the channels swapped ((KH, KW, O, I): Keras's Conv2DTranspose layout, not Conv2D's)",
            "Keras's Conv2D kernel is (KH, KW, in, out): np.transpose(w, (2, 3, 1, 0)), input channels third",
            lambda w: np.transpose(w, (2, 3, 0, 1)),
            zh=("两个通道轴对调了（(KH, KW, O, I)：这是 Keras 的 Conv2DTranspose 的布局，不是 Conv2D 的）",
                "Keras 的 Conv2D 卷积核是 (KH, KW, in, out)：np.transpose(w, (2, 3, 1, 0))，输入通道在第三个轴")),
    Mistake("a reshape instead of a transpose (the right shape, the numbers in the old memory order)",
            "reshape keeps the order of the numbers in memory; moving axes needs np.transpose",
            lambda w: w.reshape(w.shape[2], w.shape[3], w.shape[1], w.shape[0]),
            zh=("用 reshape 代替了转置（形状对了，数字却还是原来的内存顺序）",
                "reshape 不改变数字在内存中的顺序；要移动轴，得用 np.transpose")),
]


def check_oihw_to_hwio(fn):
    """fn(w) -> the kernel w: (O, I, KH, KW) (PyTorch's Conv2d layout) in Keras's (KH, KW, I, O) layout."""
    rng = np.random.default_rng(6)
    cases = []
    for shape, label in [((4, 2, 3, 3), tr("a 3x3 kernel, 2 -> 4 channels", "3x3 卷积核，2 -> 4 个通道")),
                         ((5, 3, 2, 3), tr("a non-square 2x3 kernel", "非正方形的 2x3 卷积核")),
                         ((1, 6, 1, 1), tr("a 1x1 head, 6 -> 1 channel", "1x1 输出层，6 -> 1 个通道"))]:
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
                    name, fix = mistake.text()
                    raise AssertionError(tr(f"{what} ({label}): expected {expected!r}, got {got!r}: that is what "
                                            f"{name} gives. {fix}",
                                            f"{what}（{label}）：应为 {expected!r}，你得到 {got!r}：这正是「{name}」"
                                            f"会得到的结果。{fix}"))
            raise AssertionError(tr(f"{what} ({label}): expected {expected!r}, got {got!r}",
                                    f"{what}（{label}）：应为 {expected!r}，你得到 {got!r}"))
    print(message("correct_cases", what=what, n=len(cases)))
    return True


def _first_max(x):
    return maxpool2d(x, 2)[1]["argmax"]


def _tie_cases():
    """(a, b, label) pairs of float32 (N, H, W, C) arrays, some one rounding step apart."""
    rng = np.random.default_rng(6)
    up = lambda v: np.nextafter(np.float32(v), np.float32(np.inf))      # noqa: E731
    down = lambda v: np.nextafter(np.float32(v), np.float32(-np.inf))   # noqa: E731
    base = rng.standard_normal((1, 4, 4, 2)).astype(np.float32)
    cases = [(base, base.copy(), tr("identical arrays", "两个相同的数组"))]

    a = base.copy()
    a[0, 0, 0, 0] = a[0, 0, 1, 0] = 3.0                  # a tie: the first maximum is pixel (0, 0)
    b = a.copy()
    b[0, 0, 1, 0] = up(3.0)                              # one ulp more: now pixel (0, 1) wins
    cases.append((a, b, tr("a tie broken by one ulp towards the second pixel", "并列被一个 ulp 打破，第二个像素胜出")))

    b = a.copy()
    b[0, 0, 1, 0] = down(3.0)                            # the tie is broken, but (0, 0) still wins
    cases.append((a, b, tr("a tie broken by one ulp in favour of the first pixel",
                           "并列被一个 ulp 打破，第一个像素仍然胜出")))

    a = base.copy()
    a[0, 2, 2, 1] = 5.0
    b = a.copy()
    b[0, 2, 2, 1] = up(5.0)                              # the maximum itself moves, not its position
    cases.append((a, b, tr("the same winner, one ulp larger", "胜出的像素不变，值大了一个 ulp")))

    a = np.maximum(rng.standard_normal((2, 8, 8, 3)), 0).astype(np.float32)   # ReLU: many all-zero windows
    b = a.copy()
    flip = rng.random(a.shape) < 0.3
    b[flip] = np.where(a[flip] > 0, np.nextafter(a[flip], np.float32(np.inf)), np.float32(1e-30))
    cases.append((a, b, tr("ReLU outputs, 30% of the pixels nudged", "ReLU 的输出，30% 的像素被微调")))
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
            lambda a, b: int(np.sum(_windows(a).max(-1) != _windows(b).max(-1))),
            zh=("比较了池化后的最大值（胜出的像素大了一个 ulp，梯度的去向并没有变）",
                "比较最大值在哪里，而不是它是多少：对每个窗口的 4 个像素取 np.argmax")),
    Mistake("comparing the SETS of tied maxima (a tie broken in favour of the first pixel does not reroute)",
            "the gradient goes to the FIRST maximum only: compare np.argmax of each window, not masks x == max",
            lambda a, b: int(np.sum(np.any(_tie_set(a) != _tie_set(b), axis=-1))),
            zh=("比较了并列最大值的集合（并列被打破而第一个像素仍然胜出时，梯度的去向并没有变）",
                "梯度只交给第一个最大值：比较每个窗口的 np.argmax，而不是 x == max 这样的掩码")),
    Mistake("the LAST maximum of each window",
            "TensorFlow routes to the FIRST maximum in row-major order, which np.argmax returns",
            lambda a, b: int(np.sum(_last_max(a) != _last_max(b))),
            zh=("取了每个窗口的最后一个最大值",
                "TensorFlow 把梯度交给按行优先顺序的第一个最大值，np.argmax 返回的正是它")),
]


def check_count_routing_differences(fn):
    """fn(a, b) -> the number of 2x2 stride-2 pooling windows whose FIRST maximum (row-major order in the
    window) is a different pixel in a than in b. a, b: (N, H, W, C) float32, H and W even."""
    cases = [((a, b), int(np.sum(_first_max(a) != _first_max(b))), tr(f"{label}, shape {a.shape}",
                                                                     f"{label}，形状 {a.shape}"))
             for a, b, label in _tie_cases()]
    is_int = lambda got, exp: isinstance(got, (int, np.integer)) and int(got) == exp      # noqa: E731
    return _check_values(fn, cases, "count_routing_differences", ROUTING_MISTAKES, same=is_int)


MAGNITUDE_MISTAKES = [
    Mistake("log10 rounded to the nearest integer",
            "9.7e-7 lies between 1e-7 and 1e-6: its order is -7, the FLOOR of log10 (math.floor)",
            lambda e: round(math.log10(e)),
            zh=("把 log10 四舍五入到最近的整数",
                "9.7e-7 在 1e-7 和 1e-6 之间：它的数量级是 -7，即 log10 向下取整（math.floor）")),
    Mistake("log10 rounded up, or towards zero (math.ceil, or int() of a negative logarithm)",
            "int() drops the fraction, which rounds -6.2 UP to -6: use math.floor",
            lambda e: math.ceil(math.log10(e)),
            zh=("把 log10 向上取整，或向零取整（math.ceil，或对负的对数用 int()）",
                "int() 直接丢掉小数部分，会把 -6.2 向上取成 -6：请用 math.floor")),
]


def _order(err):
    return None if err == 0 else math.floor(math.log10(err))


def check_order_of_magnitude(fn):
    """fn(err) -> the integer k with 10**k <= err < 10**(k + 1), or None when err == 0."""
    what = "order_of_magnitude"
    try:
        call_student(fn, (0.0,), what)
    except (ValueError, OverflowError) as err:           # log10(0) = -inf, and int(-inf) fails
        raise AssertionError(tr(f"{what} (err = 0.0): {type(err).__name__}: {err}. An error of exactly 0 has no "
                                f"order of magnitude (log10(0) is -inf): return None for it first",
                                f"{what}（err = 0.0）：{type(err).__name__}: {err}。恰好为 0 的误差没有数量级"
                                f"（log10(0) 是 -inf）：先对它返回 None")) from None
    values = [1.6e-7, 9.7e-7, 1e-5, 3.2e-12, 0.5, 42.0, 0.0]
    cases = [((err,), _order(err), f"err = {err!r}") for err in values]

    def same(got, exp):
        return got is None if exp is None else isinstance(got, (int, np.integer)) and got == exp
    return _check_values(fn, cases, what, MAGNITUDE_MISTAKES, same=same)
