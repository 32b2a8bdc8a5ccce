"""Chapter 00's exercise checks accept right answers, reject stubs, and name each classic mistake when a wrong
answer (written here as a student would) makes it."""
import numpy as np
import pytest

from unet_scratch import exercises
from unet_scratch.exercises.ch00 import check_conv_params, check_pixel_patches, check_same_unet_sizes

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def same_unet_sizes(size, depth, mistake=None):
    sizes = []
    n = size
    for _ in range(depth + (0 if mistake == "no-bottleneck" else 1)):
        if mistake == "halve-first":
            n //= 2
        sizes.append(n)
        if mistake != "halve-first":
            n //= 2
    return sizes[::-1] if mistake == "bottom-up" else sizes


def conv_params(k, c_in, c_out, mistake=None):
    weights = {"no-c-in": k * k * c_out, "k-not-squared": k * c_in * c_out}.get(mistake, k * k * c_in * c_out)
    bias = {"no-bias": 0, "bias-per-input": c_in}.get(mistake, c_out)
    return weights + bias


def pixel_patches(image, k, mistake=None):
    h, w = image.shape
    r = k // 2
    if mistake == "no-pad":
        padded, h, w = image, h - 2 * r, w - 2 * r
    elif mistake == "top-left":
        padded = np.pad(image, ((0, 2 * r), (0, 2 * r)))
    else:
        padded = np.pad(image, r)
    out = []
    pixels = [(i, j) for j in range(w) for i in range(h)] if mistake == "column-major" else \
             [(i, j) for i in range(h) for j in range(w)]
    for i, j in pixels:
        patch = padded[i:i + k, j:j + k]
        out.append(patch.T if mistake == "transposed" else patch)
    return np.array(out)


CORRECT = [(check_same_unet_sizes, same_unet_sizes), (check_conv_params, conv_params),
           (check_pixel_patches, pixel_patches)]


def test_checks_accept_correct_answers(capsys):
    for check, answer in CORRECT:
        assert check(answer) is True
    out = capsys.readouterr().out
    assert out.count("correct:") == 3 and "pixel_patches passes 4 cases (largest relative error 0 (exact)" in out


def test_the_package_exports_chapter_00s_checks():
    assert exercises.check_pixel_patches is check_pixel_patches
    assert exercises.check_conv_params is check_conv_params and exercises.check_same_unet_sizes is check_same_unet_sizes


@pytest.mark.parametrize("check", [c for c, _ in CORRECT])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("mistake, name", [("no-bottleneck", "leaving out the bottleneck"),
                                           ("halve-first", "halving before the first level"),
                                           ("bottom-up", "the list from the bottom up")])
def test_same_unet_sizes_names_its_mistakes(mistake, name):
    with pytest.raises(AssertionError, match="that is what " + name):
        check_same_unet_sizes(lambda s, d: same_unet_sizes(s, d, mistake))


@pytest.mark.parametrize("mistake, name", [("no-bias", "without the bias"),
                                           ("no-c-in", "ignores the input channels"),
                                           ("k-not-squared", "not squared"),
                                           ("bias-per-input", "one bias per input channel")])
def test_conv_params_names_its_mistakes(mistake, name):
    with pytest.raises(AssertionError, match="that is what .*" + name):
        check_conv_params(lambda k, ci, co: conv_params(k, ci, co, mistake))


def test_a_wrong_answer_says_expected_and_got():
    # nbgrader's test (tests/test_nbgrader.py) hands in `return None` and reads "got None"
    with pytest.raises(AssertionError, match=r"same_unet_sizes\(256, 4\): expected \[256, 128, 64, 32, 16\], "
                                             r"got None"):
        check_same_unet_sizes(lambda s, d: None)
    with pytest.raises(AssertionError, match=r"conv_params\(3, 1, 64\): expected 640, got 576"):
        check_conv_params(lambda k, ci, co: k * k * ci * co)


@pytest.mark.parametrize("mistake, name", [("top-left", "each patch starting at its pixel"),
                                           ("no-pad", "no padding"),
                                           ("column-major", "the pixels in column-major order"),
                                           ("transposed", "each patch transposed")])
def test_pixel_patches_names_its_mistakes(mistake, name):
    with pytest.raises(AssertionError, match="your answer is what " + name):
        check_pixel_patches(lambda image, k: pixel_patches(image, k, mistake))
