"""Chapter 07's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
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


def test_bce_rejects_the_naive_formula():
    def naive(z, t):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
            p = 1 / (1 + np.exp(-z))
            loss = -(t * np.log(p) + (1 - t) * np.log(1 - p))
        return float(loss.mean()), ((p - t) / z.size).astype(z.dtype)
    with pytest.raises(AssertionError, match=r"bce_from_logits \(large \|z\| in float32"):
        check_bce_from_logits(naive)


def test_bce_rejects_a_gradient_without_the_mean():
    with pytest.raises(AssertionError, match=r"bce_from_logits \(small random logits.*output 1 is wrong"):
        check_bce_from_logits(lambda z, t: (_bce(z, t)[0], _bce(z, t)[1] * z.size))


def test_dice_rejects_a_gradient_that_forgets_the_intersection():
    def partial(p, t):
        s = np.sum(t) + np.sum(p) + 1e-7
        return _dice(p, t)[0], (-2 * t / s).astype(p.dtype)          # treats S as a constant
    with pytest.raises(AssertionError, match=r"soft_dice_loss \(random probabilities.*output 1 is wrong"):
        check_soft_dice_loss(partial)


def test_weighted_ce_rejects_ignoring_the_weights():
    with pytest.raises(AssertionError, match=r"weighted_softmax_ce \(two classes, random weights.*output 0"):
        check_weighted_softmax_ce(lambda z, lab, w: _wce(z, lab, np.ones_like(w)))


def test_weighted_ce_rejects_an_unshifted_softmax():
    def unshifted(logits, labels, w):
        with np.errstate(over="ignore", invalid="ignore"):
            logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
            onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
            loss = -np.sum(w * np.sum(onehot * logp, axis=-1)) / w.size
            return float(loss), (w[..., None] * (np.exp(logp) - onehot) / w.size).astype(logits.dtype)
    with pytest.raises(AssertionError, match=r"logits near 1000"):
        check_weighted_softmax_ce(unshifted)
