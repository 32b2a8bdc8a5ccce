"""Chapter 02's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import numpy as np
import pytest

from unet_scratch.exercises.ch02 import check_maxpool2x2, check_maxpool2x2_backward, check_relu_backward

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _windows(x):
    n, h, w, c = x.shape
    oh, ow = h // 2, w // 2
    win = x[:, :2 * oh, :2 * ow].reshape(n, oh, 2, ow, 2, c).transpose(0, 1, 3, 5, 2, 4)
    return win.reshape(n, oh, ow, c, 4)


def _maxpool(x):
    return _windows(x).max(axis=-1)


def _maxpool_backward(dy, x, all_ties=False):
    n, h, w, c = x.shape
    dx = np.zeros_like(x)
    for b in range(n):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for k in range(c):
                    win = x[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k]
                    if all_ties:
                        dx[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, k] += dy[b, i, j, k] * (win == win.max())
                    else:
                        a, q = np.unravel_index(np.argmax(win), (2, 2))
                        dx[b, 2 * i + a, 2 * j + q, k] += dy[b, i, j, k]
    return dx


def test_checks_accept_correct_answers(capsys):
    assert check_relu_backward(lambda dy, x: dy * (x > 0))
    assert check_maxpool2x2(_maxpool)
    assert check_maxpool2x2_backward(_maxpool_backward)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_relu_backward, check_maxpool2x2, check_maxpool2x2_backward])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_relu_rejects_a_gradient_of_one_at_zero():
    with pytest.raises(AssertionError, match=r"relu_backward \(x with exact zeros\)"):
        check_relu_backward(lambda dy, x: dy * (x >= 0))


def test_maxpool_rejects_average_pooling():
    with pytest.raises(AssertionError, match="maxpool2x2"):
        check_maxpool2x2(lambda x: _windows(x).mean(axis=-1))


def test_maxpool_backward_rejects_sending_the_gradient_to_every_tie():
    with pytest.raises(AssertionError, match=r"maxpool2x2_backward \(ties"):
        check_maxpool2x2_backward(lambda dy, x: _maxpool_backward(dy, x, all_ties=True))
