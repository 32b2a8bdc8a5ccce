"""Chapter 01's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import numpy as np
import pytest

from unet_scratch.exercises.ch01 import check_conv2d_loop, check_conv_output_size, check_receptive_field

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _conv_output_size(n, k, s, padding):
    return -(-n // s) if padding == "same" else (n - k) // s + 1


def _conv2d_loop(x, w, b, stride, flip=False):
    if flip:
        w = w[::-1, ::-1]
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, f))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(window, w, axes=3) + b
    return y


def _receptive_field(layers):
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r


def test_checks_accept_correct_answers(capsys):
    assert check_conv_output_size(_conv_output_size)
    assert check_conv2d_loop(_conv2d_loop)
    assert check_receptive_field(_receptive_field)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_conv_output_size, check_conv2d_loop, check_receptive_field])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_output_size_rejects_floor_for_same():
    with pytest.raises(AssertionError, match=r"conv_output_size\(7, 3, 2, 'same'\): expected 4, got 3"):
        check_conv_output_size(lambda n, k, s, p: n // s if p == "same" else (n - k) // s + 1)


def test_conv_loop_rejects_a_flipped_kernel():
    # a true (flipped) convolution is not what Keras computes
    with pytest.raises(AssertionError, match=r"conv2d_loop \(x \(1, 5, 5, 1\)"):
        check_conv2d_loop(lambda x, w, b, s: _conv2d_loop(x, w, b, s, flip=True))


def test_receptive_field_rejects_ignoring_strides():
    with pytest.raises(AssertionError, match="receptive_field"):
        check_receptive_field(lambda layers: 1 + sum(k - 1 for k, _ in layers))
