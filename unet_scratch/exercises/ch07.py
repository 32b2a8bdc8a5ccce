"""Chapter 07's exercises: the stable BCE from logits, the soft Dice loss, the paper's weighted loss."""
from __future__ import annotations

import numpy as np

from ..ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy
from .base import check_arrays as _check_arrays


def _loss_cases(ref, cases):
    """[(args, label)] -> check_arrays cases whose expected value is (loss as a 0-d array, gradient)."""
    out = []
    for args, label in cases:
        loss, grad = ref(*args)
        out.append((args, (np.asarray(loss), grad), label))
    return out


def _adapt(fn):
    """Let the student return a Python float for the loss: compare it as a 0-d array."""
    def wrapped(*args):
        res = fn(*args)
        if isinstance(res, tuple) and len(res) == 2:
            return np.asarray(res[0]), res[1]
        return res
    return wrapped


def check_bce_from_logits(fn):
    """fn(z, t) -> (loss, dz): mean binary cross-entropy from logits z, stable for any |z|."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((2, 4, 4, 1))
    t = (rng.random(z.shape) > 0.5).astype(np.float64)
    big = np.array([[-200.0, -40.0, -5.0, 0.0, 5.0, 40.0, 200.0]], np.float32)
    cases = [((z, t), "small random logits, float64"),
             ((big, np.zeros_like(big)), "large |z| in float32, all targets 0"),
             ((big, np.ones_like(big)), "large |z| in float32, all targets 1"),
             ((big[:, ::-1].copy(), np.full_like(big, 0.3)), "large |z|, soft targets 0.3")]
    return _check_arrays(_adapt(fn), _loss_cases(lambda z, t: binary_crossentropy(z, t, from_logits=True),
                                                 cases), "bce_from_logits", rtol=1e-5, atol=1e-7)


def check_soft_dice_loss(fn):
    """fn(p, t) -> (loss, dp): Keras's Dice loss 1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7), one value for
    the whole batch, and its gradient."""
    rng = np.random.default_rng(7)
    p = rng.random((2, 6, 6, 1))
    t = (rng.random(p.shape) > 0.6).astype(np.float64)
    p32 = rng.random((1, 5, 5, 1)).astype(np.float32)
    cases = [((p, t), "random probabilities, float64"),
             ((p32, (p32 > 0.5).astype(np.float32)), "a prediction close to its target, float32"),
             ((p, np.zeros_like(p)), "an empty target"),
             ((np.full((1, 3, 3, 1), 0.5), np.ones((1, 3, 3, 1))), "a full target, p = 0.5 everywhere")]
    return _check_arrays(_adapt(fn), _loss_cases(dice_loss, cases), "soft_dice_loss", rtol=1e-5, atol=1e-7)


def check_weighted_softmax_ce(fn):
    """fn(logits, labels, w) -> (loss, dlogits): -(1/M) sum_x w(x) log softmax(logits)_{l(x)}(x) and
    w (softmax - onehot) / M; logits (N, H, W, K), labels (N, H, W) int, w (N, H, W)."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((2, 4, 4, 2))
    labels = rng.integers(0, 2, (2, 4, 4))
    w = rng.uniform(0.5, 10.0, (2, 4, 4))
    z3 = (50 * rng.standard_normal((1, 3, 3, 3))).astype(np.float32)
    labels3 = rng.integers(0, 3, (1, 3, 3))
    w3 = rng.uniform(0.5, 10.0, (1, 3, 3)).astype(np.float32)
    cases = [((z, labels, w), "two classes, random weights, float64"),
             ((z, labels, np.ones((2, 4, 4))), "all weights 1 (plain softmax cross-entropy)"),
             ((z3 + 1000, labels3, w3), "three classes, logits near 1000, float32")]
    return _check_arrays(_adapt(fn), _loss_cases(weighted_softmax_crossentropy, cases), "weighted_softmax_ce",
                         rtol=1e-5, atol=1e-7)
