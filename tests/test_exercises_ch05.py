"""Chapter 05's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import numpy as np
import pytest

from unet_scratch.exercises.ch05 import (check_central_difference, check_mini_unet_backward, check_rel_error,
                                         mini_unet_forward)
from unet_scratch.gradcheck import numeric_gradient, rel_error

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _central(f, x, h):
    return numeric_gradient(f, x, h=h)


def _mini_backward(x, w1, w2, w3, dy):
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    dcat = dy @ w3.T
    dw3 = np.concatenate([b, h], axis=1).T @ dy
    db_pre = dcat[:, :b.shape[1]] * (b > 0)
    dh_pre = (db_pre @ w2.T + dcat[:, b.shape[1]:]) * (h > 0)
    return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3


def test_checks_accept_correct_answers(capsys):
    assert check_central_difference(_central)
    assert check_rel_error(rel_error)
    assert check_mini_unet_backward(_mini_backward)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_central_difference, check_rel_error, check_mini_unet_backward])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_the_reference_backward_matches_central_differences():
    rng = np.random.default_rng(1)
    x, w1, w2, w3 = (rng.standard_normal(s) for s in [(3, 4), (4, 5), (5, 6), (11, 2)])
    dy = rng.standard_normal((3, 2))
    grads = _mini_backward(x, w1, w2, w3, dy)
    for k, arr in enumerate((x, w1, w2, w3)):
        def f(_):
            return mini_unet_forward(x, w1, w2, w3)
        assert rel_error(grads[k], numeric_gradient(f, arr, dy)) < 1e-8


def test_central_difference_rejects_a_forward_difference():
    def forward(f, x, h):
        g, f0 = np.zeros(x.shape), f(x)
        for i in np.ndindex(*x.shape):
            old = x[i]
            x[i] = old + h
            g[i] = (f(x) - f0) / h
            x[i] = old
        return g
    with pytest.raises(AssertionError, match=r"central_difference \(f = sum\(x\*\*3\).*is wrong"):
        check_central_difference(forward)


def test_central_difference_rejects_not_restoring_x():
    def leaky(f, x, h):
        g = np.zeros(x.shape)
        for i in np.ndindex(*x.shape):
            old = x[i]
            x[i] = old + h
            plus = f(x)
            x[i] = old - h
            g[i] = (plus - f(x)) / (2 * h)
        return g
    with pytest.raises(AssertionError, match="x was changed"):
        check_central_difference(leaky)


def test_rel_error_rejects_nan_for_zeros_and_an_asymmetric_measure():
    with pytest.raises(AssertionError, match=r"both zero"):
        check_rel_error(lambda a, b: float(np.linalg.norm(np.subtract(a, b)) /
                                           (np.linalg.norm(a) + np.linalg.norm(b))) if np.any(a) or np.any(b)
                        else float("nan"))
    with pytest.raises(AssertionError, match=r"relative_error \(case"):
        check_rel_error(lambda a, b: float(np.linalg.norm(np.subtract(a, b)) / max(np.linalg.norm(a), 1e-30)))


def test_mini_unet_rejects_forgetting_the_skip_gradient():
    def no_fork(x, w1, w2, w3, dy):
        h = np.maximum(x @ w1, 0)
        b = np.maximum(h @ w2, 0)
        dcat = dy @ w3.T
        dw3 = np.concatenate([b, h], axis=1).T @ dy
        db_pre = dcat[:, :b.shape[1]] * (b > 0)
        dh_pre = (db_pre @ w2.T) * (h > 0)                  # the skip's dcat[:, H2:] is dropped
        return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3
    with pytest.raises(AssertionError, match=r"mini_unet_backward \(N=4.*output 0 is wrong"):
        check_mini_unet_backward(no_fork)


def test_mini_unet_rejects_swapping_the_split():
    def swapped(x, w1, w2, w3, dy):
        h = np.maximum(x @ w1, 0)
        b = np.maximum(h @ w2, 0)
        dcat = dy @ w3.T
        dw3 = np.concatenate([h, b], axis=1).T @ dy           # as if the skip came first
        db_pre = dcat[:, h.shape[1]:] * (b > 0)
        dh_pre = (db_pre @ w2.T + dcat[:, :h.shape[1]]) * (h > 0)
        return dh_pre @ w1.T, x.T @ dh_pre, h.T @ db_pre, dw3
    with pytest.raises(AssertionError, match=r"mini_unet_backward"):
        check_mini_unet_backward(swapped)
