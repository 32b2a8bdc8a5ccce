"""Chapter 07's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import re

import numpy as np
import pytest

from unet_scratch.exercises.ch07 import check_bce_from_logits, check_soft_dice_loss, check_weighted_softmax_ce
from unet_scratch.ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _bce(z, t):
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    e = np.exp(-np.abs(z))
    sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return float(loss.mean()), ((sig - t) / z.size).astype(z.dtype)


def _sigmoid(z):
    return 0.5 * (1 + np.tanh(z / 2))


def _dice(p, t):
    inter, s = np.sum(t * p), np.sum(t) + np.sum(p) + 1e-7
    return float(1 - 2 * inter / s), (-2 * (t * s - inter) / s ** 2).astype(p.dtype)


def _wce(logits, labels, w):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    loss = -np.sum(w * np.sum(onehot * logp, axis=-1)) / w.size
    return float(loss), (w[..., None] * (np.exp(logp) - onehot) / w.size).astype(logits.dtype)


def test_checks_accept_correct_answers(capsys):
    assert check_bce_from_logits(_bce)
    assert check_soft_dice_loss(_dice)
    assert check_weighted_softmax_ce(_wce)
    assert capsys.readouterr().out.count("correct") == 3


def test_checks_accept_the_package_functions():
    assert check_bce_from_logits(lambda z, t: binary_crossentropy(z, t, from_logits=True))
    assert check_soft_dice_loss(dice_loss)
    assert check_weighted_softmax_ce(weighted_softmax_crossentropy)


@pytest.mark.parametrize("check", [check_bce_from_logits, check_soft_dice_loss, check_weighted_softmax_ce])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _bce_sigmoid_twice(z, t):
    p = 1 / (1 + np.exp(-z))                     # the student "makes probabilities" first ...
    loss = np.maximum(p, 0) - p * t + np.log1p(np.exp(-np.abs(p)))      # ... then the from-logits formula
    return float(loss.mean()), ((1 / (1 + np.exp(-p)) - t) / z.size).astype(z.dtype)


def _bce_unstable(z, t):
    with np.errstate(over="ignore"):
        loss = z - z * t + np.log(1 + np.exp(-z))
        return float(loss.mean()), ((1 / (1 + np.exp(-z)) - t) / z.size).astype(z.dtype)


def _bce_probability_form(z, t):
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        p = 1 / (1 + np.exp(-z))
        loss = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        return float(loss.mean()), ((p - t) / z.size).astype(z.dtype)


@pytest.mark.parametrize("wrong, name, case", [
    (_bce_sigmoid_twice, "the sigmoid applied twice", "small random logits"),
    (_bce_unstable, "the unstable form (1 - t) z + log(1 + exp(-z))", "large \\|z\\| in float32, all targets 0"),
    (_bce_probability_form, "the probability form", "large \\|z\\| in float32, all targets 0"),
    (lambda z, t: (_bce(z, t)[0], (_sigmoid(z) / z.size).astype(z.dtype)), "a gradient of p instead of p - t",
     "small random logits"),
    (lambda z, t: (_bce(z, t)[0], _bce(z, t)[1] * z.size), "a gradient without the mean's 1/M",
     "small random logits"),
])
def test_bce_names_each_mistake(wrong, name, case):
    with pytest.raises(AssertionError, match=rf"bce_from_logits \({case}.*your answer is what {re.escape(name)}"):
        check_bce_from_logits(wrong)


def _dice_hard(p, t, zero_grad=False):
    b = (p > 0.5).astype(p.dtype)
    inter, s = np.sum(t * b), np.sum(t) + np.sum(b) + 1e-7
    grad = np.zeros_like(p) if zero_grad else (-2 * (t * s - inter) / s ** 2).astype(p.dtype)
    return float(1 - 2 * inter / s), grad


def _dice_no_eps(p, t):
    with np.errstate(invalid="ignore", divide="ignore"):
        inter, s = np.sum(t * p), np.sum(t) + np.sum(p)
        return float(1 - 2 * inter / s), (-2 * (t * s - inter) / s ** 2).astype(p.dtype)


def _dice_smooth1(p, t):
    inter, s = np.sum(t * p), np.sum(t) + np.sum(p)
    loss = 1 - (2 * inter + 1) / (s + 1)
    return float(loss), (-(2 * t * (s + 1) - (2 * inter + 1)) / (s + 1) ** 2).astype(p.dtype)


def _dice_coefficient(p, t):
    loss, grad = _dice(p, t)
    return 1 - loss, -grad


def _dice_constant_s(p, t):
    s = np.sum(t) + np.sum(p) + 1e-7
    return _dice(p, t)[0], (-2 * t / s).astype(p.dtype)


@pytest.mark.parametrize("wrong, name, case", [
    (_dice_hard, "a thresholded (hard) Dice", "random probabilities"),
    (lambda p, t: _dice_hard(p, t, zero_grad=True), "a thresholded Dice with a zero gradient",
     "random probabilities"),
    (_dice_no_eps, "no epsilon in the denominator", "an empty target and an empty prediction"),
    (_dice_smooth1, "a smoothing of 1", "random probabilities"),
    (_dice_coefficient, "the Dice coefficient instead of the loss", "random probabilities"),
    (_dice_constant_s, "a gradient that treats S as a constant", "random probabilities"),
])
def test_dice_names_each_mistake(wrong, name, case):
    with pytest.raises(AssertionError, match=rf"soft_dice_loss \({case}.*your answer is what {re.escape(name)}"):
        check_soft_dice_loss(wrong)


def _wce_weights_after(logits, labels, w):
    loss, grad = _wce(logits, labels, np.ones_like(w))
    return loss * w.mean(), (grad * w.mean()).astype(logits.dtype)


def _wce_over_sum_w(logits, labels, w):
    loss, grad = _wce(logits, labels, w)
    return loss * w.size / w.sum(), (grad * w.size / w.sum()).astype(logits.dtype)


def _wce_summed(logits, labels, w):
    loss, grad = _wce(logits, labels, w)
    return loss * w.size, (grad * w.size).astype(logits.dtype)


def _wce_log_of_softmax(logits, labels, w):
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        soft = np.exp(logits) / np.exp(logits).sum(axis=-1, keepdims=True)
        onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
        loss = -np.sum(w * np.log(np.sum(onehot * soft, axis=-1))) / w.size
        return float(loss), (w[..., None] * (soft - onehot) / w.size).astype(logits.dtype)


@pytest.mark.parametrize("wrong, name, case", [
    (_wce_weights_after, "the weights applied after averaging", "two classes, random weights"),
    (_wce_over_sum_w, "a weighted mean that divides by sum(w)", "two classes, random weights"),
    (_wce_summed, "a sum over the pixels instead of the mean", "two classes, random weights"),
    (_wce_log_of_softmax, "the log of the softmax computed as log(exp(z) / sum exp(z))", "three classes"),
    (lambda z, lab, w: _wce(z, lab, np.ones_like(w)), "the loss without the weights", "two classes, random weights"),
])
def test_weighted_ce_names_each_mistake(wrong, name, case):
    with pytest.raises(AssertionError, match=rf"weighted_softmax_ce \({case}.*your answer is what {re.escape(name)}"):
        check_weighted_softmax_ce(wrong)


def test_weighted_ce_names_an_unshifted_softmax():
    def unshifted(logits, labels, w):
        with np.errstate(over="ignore", invalid="ignore"):
            logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
            onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
            loss = -np.sum(w * np.sum(onehot * logp, axis=-1)) / w.size
            return float(loss), (w[..., None] * (np.exp(logp) - onehot) / w.size).astype(logits.dtype)
    with pytest.raises(AssertionError, match=r"logits near 1000.*your answer is what the log-softmax computed "
                                             "without subtracting the maximum"):
        check_weighted_softmax_ce(unshifted)
