"""Chapter 04's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
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


def test_concat_rejects_swapped_inputs():
    # the skip's channels first: wrong, the model concatenates [up, skip]
    def swapped(dy, c1):
        c2 = dy.shape[-1] - c1
        return dy[..., c2:], dy[..., :c2]
    with pytest.raises(AssertionError, match=r"concat_backward \(3 \+ 2 channels"):
        check_concat_backward(swapped)


def test_concat_rejects_a_split_along_the_wrong_axis():
    with pytest.raises(AssertionError, match=r"concat_backward .*has shape"):
        check_concat_backward(lambda dy, c1: (dy[:, :c1], dy[:, c1:]))


def test_skip_crops_rejects_the_total_crop_and_the_wrong_order():
    with pytest.raises(AssertionError, match=r"skip_crops\(572, 4\): expected \[88, 40, 16, 4\]"):
        check_skip_crops(lambda s, d: [2 * c for c in _skip_crops(s, d)])
    with pytest.raises(AssertionError, match=r"skip_crops\(572, 4\)"):
        check_skip_crops(lambda s, d: _skip_crops(s, d)[::-1])


def test_skip_crops_rejects_a_hard_coded_answer():
    with pytest.raises(AssertionError, match=r"skip_crops\(92, 3\)"):
        check_skip_crops(lambda s, d: [88, 40, 16, 4])


def test_crop_backward_rejects_the_odd_pixel_on_the_wrong_side():
    def top_heavy(dy, x_shape):
        n, h, w, c = x_shape
        top, left = -(-(h - dy.shape[1]) // 2), -(-(w - dy.shape[2]) // 2)      # ceil: extra row on top
        dx = np.zeros(x_shape, dy.dtype)
        dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
        return dx
    with pytest.raises(AssertionError, match=r"center_crop_backward \(9x9 -> 4x4 \(odd\)"):
        check_center_crop_backward(top_heavy)


def test_crop_backward_rejects_returning_the_cropped_shape():
    with pytest.raises(AssertionError, match=r"center_crop_backward \(8x8 -> 4x4.*has shape"):
        check_center_crop_backward(lambda dy, x_shape: dy)
