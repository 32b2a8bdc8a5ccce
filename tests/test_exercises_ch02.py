"""Chapter 02's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import re

import numpy as np
import pytest

from unet_scratch.exercises.ch02 import (check_maxpool2x2, check_maxpool2x2_backward, check_relu_backward,
                                         check_sigmoid_backward)

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _windows(x):
    n, h, w, c = x.shape
    oh, ow = h // 2, w // 2
    win = x[:, :2 * oh, :2 * ow].reshape(n, oh, 2, ow, 2, c).transpose(0, 1, 3, 5, 2, 4)
    return win.reshape(n, oh, ow, c, 4)


def _maxpool(x):
    return _windows(x).max(axis=-1)


def _maxpool_backward(dy, x, rule="first"):
    n, h, w, c = x.shape
    dx = np.zeros_like(x)
    for b in range(n):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for k in range(c):
                    win = x[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k]
                    if rule == "all ties":
                        dx[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k] += dy[b, i, j, k] * (win == win.max())
                    elif rule == "mean":
                        dx[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k] += dy[b, i, j, k] / 4
                    elif rule == "last":                 # a loop with >= keeps moving to later ties
                        best, where = -np.inf, (0, 0)
                        for a in range(2):
                            for q in range(2):
                                if win[a, q] >= best:
                                    best, where = win[a, q], (a, q)
                        dx[b, 2 * i + where[0], 2 * j + where[1], k] += dy[b, i, j, k]
                    else:
                        a, q = np.unravel_index(np.argmax(win), (2, 2))
                        dx[b, 2 * i + a, 2 * j + q, k] += dy[b, i, j, k]
    return dx


def _sigmoid(x):
    return 0.5 * (1 + np.tanh(x / 2))                    # another stable way to write it


def test_checks_accept_correct_answers(capsys):
    assert check_relu_backward(lambda dy, x: dy * (x > 0))
    assert check_sigmoid_backward(lambda dy, x: dy * _sigmoid(x) * (1 - _sigmoid(x)))
    assert check_maxpool2x2(_maxpool)
    assert check_maxpool2x2_backward(_maxpool_backward)
    assert capsys.readouterr().out.count("correct") == 4


@pytest.mark.parametrize("check", [check_relu_backward, check_sigmoid_backward, check_maxpool2x2,
                                   check_maxpool2x2_backward])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("wrong, name", [
    (lambda dy, x: np.where(x >= 0, dy, 0.0), "a gradient of 1 at x == 0"),
    (lambda dy, x: np.where(dy > 0, dy, 0.0), "a mask taken from dy instead of x"),
    (lambda dy, x: np.where(x > 0, 1.0, 0.0), "the mask alone, without dy"),
])
def test_relu_backward_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"relu_backward \(x with exact zeros\): your answer is what "
                                             + re.escape(name)):
        check_relu_backward(wrong)


def _sigmoid_twice(dy, x):
    s = _sigmoid(_sigmoid(x))                            # y = sigmoid(x), then sigmoid(y) again
    return dy * s * (1 - s)


@pytest.mark.parametrize("wrong, name", [
    (_sigmoid_twice, "the sigmoid applied twice"),
    (lambda dy, x: _sigmoid(x) * (1 - _sigmoid(x)), "the local derivative without dy"),
    (lambda dy, x: dy * _sigmoid(x) * (1 + _sigmoid(x)), "the derivative written as y * (1 + y)"),
    (lambda dy, x: dy * x * (1 - x), "the derivative written in x, x * (1 - x)"),
])
def test_sigmoid_backward_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"sigmoid_backward \(x = \[-2, 0, 1, 3\]\): your answer is what "
                                             + re.escape(name)):
        check_sigmoid_backward(wrong)


def test_sigmoid_backward_with_an_overflowing_exp_still_passes_or_fails_by_value():
    # 1 / (1 + exp(-x)) overflows for x = -800 but not at -30: the check's range is about values, not warnings
    assert check_sigmoid_backward(lambda dy, x: dy / (1 + np.exp(-x)) * (1 - 1 / (1 + np.exp(-x))))


def _pool_ceil(x):                                       # pads odd sizes with -inf, like padding='same'
    n, h, w, c = x.shape
    padded = np.full((n, h + h % 2, w + w % 2, c), -np.inf)
    padded[:, :h, :w] = x
    return _maxpool(padded)


def _pool_zeros(x):
    n, h, w, c = x.shape
    padded = np.zeros((n, h + h % 2, w + w % 2, c))
    padded[:, :h, :w] = x
    return _maxpool(padded)


def _pool_stride1(x):
    n, h, w, c = x.shape
    out = np.empty((n, h - 1, w - 1, c))
    for i in range(h - 1):
        for j in range(w - 1):
            out[:, i, j] = x[:, i:i + 2, j:j + 2].max(axis=(1, 2))
    return out


@pytest.mark.parametrize("wrong, name, case", [
    (_pool_ceil, "rounding an odd size up", "odd size"),
    (_pool_zeros, "padding an odd size with zeros", "odd size"),
    (_pool_stride1, "a stride of 1", "random \\(1, 4, 4, 1\\)"),
    (lambda x: _windows(x).mean(axis=-1), "average pooling", "random \\(1, 4, 4, 1\\)"),
])
def test_maxpool_names_each_mistake(wrong, name, case):
    with pytest.raises(AssertionError, match=rf"maxpool2x2 \({case}.*your answer is what {re.escape(name)}"):
        check_maxpool2x2(wrong)


@pytest.mark.parametrize("rule, name, case", [
    ("all ties", "the gradient sent to every tied maximum", "ties"),
    ("last", "the gradient sent to the LAST maximum", "ties"),
    ("mean", "the gradient averaged over the window", "random"),
])
def test_maxpool_backward_names_each_mistake(rule, name, case):
    with pytest.raises(AssertionError,
                       match=rf"maxpool2x2_backward \({case}.*your answer is what {re.escape(name)}"):
        check_maxpool2x2_backward(lambda dy, x: _maxpool_backward(dy, x, rule))


def test_maxpool_backward_rejects_a_gradient_shaped_like_the_cropped_input():
    def cropped(dy, x):
        return _maxpool_backward(dy, x[:, :x.shape[1] // 2 * 2, :x.shape[2] // 2 * 2])
    with pytest.raises(AssertionError, match=r"maxpool2x2_backward \(odd size.*has shape"):
        check_maxpool2x2_backward(cropped)
