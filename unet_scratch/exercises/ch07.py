"""Chapter 07's exercises: the stable BCE from logits, the soft Dice loss, the paper's weighted loss.
Each check names the classic mistakes of its exercise."""
from __future__ import annotations

import numpy as np

from ..ops.activations import sigmoid
from ..ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy
from .base import Mistake
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


def _quiet(fn):
    """Evaluate a mistake's formula the way a student's would run: overflow gives inf/nan, silently."""
    def wrapped(*args):
        with np.errstate(over="ignore", divide="ignore", invalid="ignore", under="ignore"):
            return fn(*args)
    return wrapped


def _sig(z):
    return sigmoid(z)[0]


def _bce_grad(z, t):
    return ((_sig(z) - t) / z.dtype.type(z.size)).astype(z.dtype)


BCE_MISTAKES = [
    Mistake("the sigmoid applied twice (the from-logits formula fed sigmoid(z))",
            "z already IS the logit: use max(z, 0) - z t + log(1 + exp(-|z|)) on z itself, gradient "
            "sigmoid(z) - t",
            lambda z, t: binary_crossentropy(_sig(z), t, from_logits=True)),
    Mistake("the unstable form (1 - t) z + log(1 + exp(-z)), whose exp(-z) overflows for large negative z",
            "rewrite it with |z|: max(z, 0) - z t + log1p(exp(-|z|)) never exponentiates a positive number",
            _quiet(lambda z, t: (float(((1 - t) * z + np.log1p(np.exp(-z))).mean()), _bce_grad(z, t)))),
    Mistake("the probability form -(t log p + (1 - t) log(1 - p)) with p = sigmoid(z) (log 0 in float32)",
            "for |z| > 17 float32's sigmoid rounds to exactly 0 or 1 and the log gives -inf: compute from z, "
            "max(z, 0) - z t + log1p(exp(-|z|))",
            _quiet(lambda z, t: (float((-(t * np.log(1 / (1 + np.exp(-z))) + (1 - t) *
                                          np.log(1 - 1 / (1 + np.exp(-z))))).mean()), _bce_grad(z, t)))),
    Mistake("a gradient of p instead of p - t",
            "the derivative of the loss is sigmoid(z) - t: subtract the target",
            lambda z, t: (binary_crossentropy(z, t, from_logits=True)[0],
                          (_sig(z) / z.dtype.type(z.size)).astype(z.dtype))),
    Mistake("a gradient without the mean's 1/M",
            "the loss is a mean over the M pixels, so each pixel's gradient is (sigmoid(z) - t) / M",
            lambda z, t: (binary_crossentropy(z, t, from_logits=True)[0], (_sig(z) - t).astype(z.dtype))),
]


def _adapted(mistake):
    """The mistake with its loss as a 0-d array, as the student's answer is compared."""
    return Mistake(mistake.name, mistake.fix, _adapt(mistake.answer))


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
                                                 cases), "bce_from_logits", rtol=1e-5, atol=1e-7,
                         mistakes=[_adapted(m) for m in BCE_MISTAKES])


def _dice_pair(p, t, eps=1e-7, smooth_num=0.0, sign=1.0):
    inter, s = np.sum(t * p), np.sum(t) + np.sum(p) + eps
    loss = 1 - (2 * inter + smooth_num) / s
    grad = -(2 * t * s - 2 * inter - smooth_num) / s ** 2
    if sign < 0:
        return float(1 - loss), (-grad).astype(p.dtype)
    return float(loss), grad.astype(p.dtype)


DICE_MISTAKES = [
    Mistake("a thresholded (hard) Dice, p > 0.5 instead of the soft p",
            "a loss must be differentiable in p: use the probabilities themselves, I = sum(t p)",
            lambda p, t: _dice_pair((p > 0.5).astype(p.dtype), t)),
    Mistake("a thresholded Dice with a zero gradient",
            "thresholding has no gradient: use the soft p, I = sum(t p), S = sum(t) + sum(p)",
            lambda p, t: (_dice_pair((p > 0.5).astype(p.dtype), t)[0], np.zeros_like(p))),
    Mistake("no epsilon in the denominator (0 / 0 = nan for an empty target and an empty prediction)",
            "Keras adds eps = 1e-7 to the denominator: S + 1e-7, so the empty case costs 1, not nan",
            _quiet(lambda p, t: _dice_pair(p, t, eps=0.0))),
    Mistake("a smoothing of 1 in the numerator and the denominator, (2 I + 1) / (S + 1)",
            "that is another loss (common in U-Net repositories); Keras's Dice adds eps = 1e-7 to the "
            "denominator only: 1 - 2 I / (S + 1e-7)",
            lambda p, t: _dice_pair(p, t, eps=1.0, smooth_num=1.0)),
    Mistake("the Dice coefficient instead of the loss 1 - Dice (the sign flipped)",
            "minimise 1 - 2 I / (S + eps); its gradient is -2 (t (S + eps) - I) / (S + eps)^2",
            lambda p, t: _dice_pair(p, t, sign=-1.0)),
    Mistake("a gradient that treats S as a constant (-2 t / S)",
            "S = sum(t) + sum(p) depends on every p_j too: dL/dp_j = -2 (t_j (S + eps) - I) / (S + eps)^2",
            lambda p, t: (_dice_pair(p, t)[0], (-2 * t / (np.sum(t) + np.sum(p) + 1e-7)).astype(p.dtype))),
]


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
             ((np.full((1, 3, 3, 1), 0.5), np.ones((1, 3, 3, 1))), "a full target, p = 0.5 everywhere"),
             ((np.zeros((1, 3, 3, 1)), np.zeros((1, 3, 3, 1))), "an empty target and an empty prediction")]
    return _check_arrays(_adapt(fn), _loss_cases(dice_loss, cases), "soft_dice_loss", rtol=1e-5, atol=1e-7,
                         mistakes=[_adapted(m) for m in DICE_MISTAKES])


def _wce_parts(logits, labels, w):
    logp = logits - logits.max(axis=-1, keepdims=True)
    logp = logp - np.log(np.exp(logp).sum(axis=-1, keepdims=True))
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    return -np.sum(onehot * logp, axis=-1), np.exp(logp) - onehot     # per-pixel loss, softmax - onehot


def _wce_weighted_after(logits, labels, w):
    l, g = _wce_parts(logits, labels, w)
    m = w.size
    return float(np.mean(w) * np.mean(l)), (np.mean(w) * g / m).astype(logits.dtype)


def _wce_by_sum_w(logits, labels, w):
    l, g = _wce_parts(logits, labels, w)
    return float(np.sum(w * l) / np.sum(w)), (w[..., None] * g / np.sum(w)).astype(logits.dtype)


def _wce_sum(logits, labels, w):
    l, g = _wce_parts(logits, labels, w)
    return float(np.sum(w * l)), (w[..., None] * g).astype(logits.dtype)


def _wce_unshifted(logits, labels, w):
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    logp = logits - np.log(np.exp(logits).sum(axis=-1, keepdims=True))
    m = w.size
    return float(-np.sum(w * np.sum(onehot * logp, axis=-1)) / m), \
        (w[..., None] * (np.exp(logp) - onehot) / m).astype(logits.dtype)


def _wce_log_of_softmax(logits, labels, w):
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    e = np.exp(logits)
    soft = e / e.sum(axis=-1, keepdims=True)
    m = w.size
    return float(-np.sum(w * np.sum(onehot * np.log(soft), axis=-1)) / m), \
        (w[..., None] * (soft - onehot) / m).astype(logits.dtype)


WCE_MISTAKES = [
    Mistake("the weights applied after averaging (mean(w) * mean(loss))",
            "weight each pixel's loss before the mean: -(1/M) sum_x w(x) log p_l(x)(x), so a gap pixel with "
            "w = 10 counts ten times",
            _wce_weighted_after),
    Mistake("a weighted mean that divides by sum(w) instead of M",
            "this course (and TensorFlow's reduce_mean of w * loss, Keras's sample_weight) divides by the "
            "pixel count M = N H W, not by the sum of the weights",
            _wce_by_sum_w),
    Mistake("a sum over the pixels instead of the mean",
            "divide the loss and its gradient by M = N H W, the number of pixels",
            _wce_sum),
    Mistake("the log-softmax computed without subtracting the maximum (exp(1000) = inf)",
            "subtract each pixel's largest logit first: softmax(z) = softmax(z - max z), and exp(z - max) <= 1",
            _quiet(_wce_unshifted)),
    Mistake("the log of the softmax computed as log(exp(z) / sum exp(z)) (inf / inf = nan)",
            "compute log softmax directly, (z - max) - log sum exp(z - max), never exp of a large logit",
            _quiet(_wce_log_of_softmax)),
    Mistake("the loss without the weights",
            "multiply each pixel's loss, and its gradient, by w(x)",
            lambda logits, labels, w: weighted_softmax_crossentropy(logits, labels)),
]


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
                         rtol=1e-5, atol=1e-7, mistakes=[_adapted(m) for m in WCE_MISTAKES])
