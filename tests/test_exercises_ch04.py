"""Chapter 04's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import re

import numpy as np
import pytest

from unet_scratch.exercises.ch04 import check_center_crop_backward, check_concat_backward, check_skip_crops
from unet_scratch.ops.concat import center_crop, center_crop_backward, concatenate_backward

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _concat_backward(dy, c1):
    return dy[..., :c1], dy[..., c1:]


def _skip_crops(size, depth):
    skips, n = [], size
    for _ in range(depth):
        n -= 4
        skips.append(n)
        n //= 2
    n -= 4
    crops = []
    for skip in reversed(skips):
        n *= 2
        crops.append((skip - n) // 2)
        n -= 4
    return crops[::-1]


def _crop_backward(dy, x_shape):
    _, cache = center_crop(np.zeros(x_shape, dy.dtype), dy.shape[1:3])
    return center_crop_backward(dy, cache)


def test_checks_accept_correct_answers(capsys):
    assert check_concat_backward(_concat_backward)
    assert check_skip_crops(_skip_crops)
    assert check_center_crop_backward(_crop_backward)
    assert capsys.readouterr().out.count("correct") == 3


def test_concat_check_accepts_the_package_split():
    assert check_concat_backward(lambda dy, c1: tuple(concatenate_backward(dy, ([c1, dy.shape[-1] - c1], 3))))


@pytest.mark.parametrize("check", [check_concat_backward, check_skip_crops, check_center_crop_backward])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _swapped_halves(dy, c1):
    # thinks the skip's channels came first: y = [x2 | x1]
    c2 = dy.shape[-1] - c1
    return dy[..., c2:], dy[..., :c2]


@pytest.mark.parametrize("wrong, name, case", [
    (_swapped_halves, "swapping the halves", "3 \\+ 2 channels"),
    (lambda dy, c1: tuple(reversed(np.split(dy, [c1], axis=-1))), "returning the two gradients in the wrong order",
     "3 \\+ 2 channels"),
    (lambda dy, c1: (dy.copy(), dy.copy()), "returning dy whole for both inputs", "3 \\+ 2 channels"),
    (lambda dy, c1: tuple(np.split(dy, [c1], axis=1)), "splitting along the rows", "3 \\+ 2 channels"),
])
def test_concat_backward_names_each_mistake(wrong, name, case):
    with pytest.raises(AssertionError, match=rf"concat_backward \({case}.*your answer is what {re.escape(name)}"):
        check_concat_backward(wrong)


def _swapped_only_when_equal(dy, c1):
    # a split that is right except when both halves have the same width: still caught (4 + 4 case)
    if 2 * c1 == dy.shape[-1]:
        return dy[..., c1:], dy[..., :c1]
    return dy[..., :c1], dy[..., c1:]


def test_concat_backward_catches_a_swap_of_equal_halves():
    with pytest.raises(AssertionError, match=r"concat_backward \(4 \+ 4 channels.*your answer is what swapping"):
        check_concat_backward(_swapped_only_when_equal)


def _crops_one_conv(size, depth):
    skips, n = [], size
    for _ in range(depth):
        n = n - 2
        skips.append(n)
        n = n // 2
    n = n - 2
    out = []
    for skip in reversed(skips):
        n = 2 * n
        out.insert(0, (skip - n) // 2)
        n = n - 2
    return out


@pytest.mark.parametrize("wrong, name", [
    (lambda s, d: [2 * c for c in _skip_crops(s, d)], "the total crop"),
    (lambda s, d: list(reversed(_skip_crops(s, d))), "the levels in the wrong order"),
    (_crops_one_conv, "one 3x3 convolution per level"),
])
def test_skip_crops_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"skip_crops\(572, 4\): expected \[88, 40, 16, 4\], got .*that is "
                                             rf"what {re.escape(name)}"):
        check_skip_crops(wrong)


def test_skip_crops_rejects_a_hard_coded_answer():
    with pytest.raises(AssertionError, match=r"skip_crops\(92, 3\)"):
        check_skip_crops(lambda s, d: [88, 40, 16, 4])


def _top_left(dy, x_shape):
    dx = np.zeros(x_shape, dy.dtype)
    dx[:, :dy.shape[1], :dy.shape[2]] = dy
    return dx


def _top_heavy(dy, x_shape):
    n, h, w, c = x_shape
    top, left = int(np.ceil((h - dy.shape[1]) / 2)), int(np.ceil((w - dy.shape[2]) / 2))   # extra row on top
    dx = np.zeros(x_shape, dy.dtype)
    dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
    return dx


@pytest.mark.parametrize("wrong, name, case", [
    (_top_left, "the window pasted at the top-left corner", "8x8 -> 4x4"),
    (_top_heavy, "an odd difference split the wrong way", "9x9 -> 4x4 \\(odd\\)"),
    (lambda dy, x_shape: dy.copy(), "returning dy itself", "8x8 -> 4x4"),
])
def test_crop_backward_names_each_mistake(wrong, name, case):
    with pytest.raises(AssertionError, match=rf"center_crop_backward \({case}.*your answer is what {re.escape(name)}"):
        check_center_crop_backward(wrong)
