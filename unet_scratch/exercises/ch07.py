"""Chapter 07's exercises: the stable BCE from logits, the soft Dice loss, the paper's weighted loss.
Each check names the classic mistakes of its exercise."""
from __future__ import annotations

import numpy as np

from ..ops.activations import sigmoid
from ..ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy
from .base import Mistake, tr
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
            lambda z, t: binary_crossentropy(_sig(z), t, from_logits=True),
            zh=('sigmoid 用了两次（把 sigmoid(z) 送进了从 logits 计算的公式）',
                'z 本身就是 logit：直接对 z 用 max(z, 0) - z t + log(1 + exp(-|z|))，梯度为 sigmoid(z) - t')),
    Mistake("the unstable form (1 - t) z + log(1 + exp(-z)), whose exp(-z) overflows for large negative z",
            "rewrite it with |z|: max(z, 0) - z t + log1p(exp(-|z|)) never exponentiates a positive number",
            _quiet(lambda z, t: (float(((1 - t) * z + np.log1p(np.exp(-z))).mean()), _bce_grad(z, t))),
            zh=('不稳定的形式 (1 - t) z + log(1 + exp(-z))：z 是绝对值很大的负数时，exp(-z) 会溢出',
                '用 |z| 改写：max(z, 0) - z t + log1p(exp(-|z|)) 从不对正数取指数')),
    Mistake("the probability form -(t log p + (1 - t) log(1 - p)) with p = sigmoid(z) (log 0 in float32)",
            "for |z| > 17 float32's sigmoid rounds to exactly 0 or 1 and the log gives -inf: compute from z, "
            "max(z, 0) - z t + log1p(exp(-|z|))",
            _quiet(lambda z, t: (float((-(t * np.log(1 / (1 + np.exp(-z))) + (1 - t) *
                                          np.log(1 - 1 / (1 + np.exp(-z))))).mean()), _bce_grad(z, t))),
            zh=('令 p = sigmoid(z)，用概率形式 -(t log p + (1 - t) log(1 - p))（float32 下会出现 log 0）',
                '|z| > 17 时 float32 的 sigmoid 舍入后恰好为 0 或 1，取对数得到 -inf：请从 z 计算，max(z, 0) - z t + log1p(exp(-|z|))')),
    Mistake("a gradient of p instead of p - t",
            "the derivative of the loss is sigmoid(z) - t: subtract the target",
            lambda z, t: (binary_crossentropy(z, t, from_logits=True)[0],
                          (_sig(z) / z.dtype.type(z.size)).astype(z.dtype)),
            zh=('梯度写成了 p，而不是 p - t',
                '损失的导数是 sigmoid(z) - t：要减去目标')),
    Mistake("a gradient without the mean's 1/M",
            "the loss is a mean over the M pixels, so each pixel's gradient is (sigmoid(z) - t) / M",
            lambda z, t: (binary_crossentropy(z, t, from_logits=True)[0], (_sig(z) - t).astype(z.dtype)),
            zh=('梯度漏了平均值的 1/M',
                '损失是 M 个像素上的平均值，所以每个像素的梯度是 (sigmoid(z) - t) / M')),
]


def _adapted(mistake):
    """The mistake with its loss as a 0-d array, as the student's answer is compared."""
    return Mistake(mistake.name, mistake.fix, _adapt(mistake.answer), zh=mistake.zh)


def check_bce_from_logits(fn):
    """fn(z, t) -> (loss, dz): mean binary cross-entropy from logits z, stable for any |z|."""
    rng = np.random.default_rng(7)
    z = rng.standard_normal((2, 4, 4, 1))
    t = (rng.random(z.shape) > 0.5).astype(np.float64)
    big = np.array([[-200.0, -40.0, -5.0, 0.0, 5.0, 40.0, 200.0]], np.float32)
    cases = [((z, t), tr("small random logits, float64", "较小的随机 logits，float64")),
             ((big, np.zeros_like(big)), tr("large |z| in float32, all targets 0", "float32 下的大 |z|，目标全为 0")),
             ((big, np.ones_like(big)), tr("large |z| in float32, all targets 1", "float32 下的大 |z|，目标全为 1")),
             ((big[:, ::-1].copy(), np.full_like(big, 0.3)), tr("large |z|, soft targets 0.3", "大 |z|，软目标 0.3"))]
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
            lambda p, t: _dice_pair((p > 0.5).astype(p.dtype), t),
            zh=('阈值化后的（硬）Dice：用了 p > 0.5，而不是软的 p',
                '损失必须对 p 可导：直接用概率本身，I = sum(t p)')),
    Mistake("a thresholded Dice with a zero gradient",
            "thresholding has no gradient: use the soft p, I = sum(t p), S = sum(t) + sum(p)",
            lambda p, t: (_dice_pair((p > 0.5).astype(p.dtype), t)[0], np.zeros_like(p)),
            zh=('阈值化后的 Dice，梯度为零',
                '阈值化没有梯度：用软的 p，I = sum(t p)，S = sum(t) + sum(p)')),
    Mistake("no epsilon in the denominator (0 / 0 = nan for an empty target and an empty prediction)",
            "Keras adds eps = 1e-7 to the denominator: S + 1e-7, so the empty case costs 1, not nan",
            _quiet(lambda p, t: _dice_pair(p, t, eps=0.0)),
            zh=('分母里没有 epsilon（目标和预测都为空时 0 / 0 = nan）',
                'Keras 在分母上加 eps = 1e-7：S + 1e-7，这样空的情形损失为 1，而不是 nan')),
    Mistake("a smoothing of 1 in the numerator and the denominator, (2 I + 1) / (S + 1)",
            "that is another loss (common in U-Net repositories); Keras's Dice adds eps = 1e-7 to the "
            "denominator only: 1 - 2 I / (S + 1e-7)",
            lambda p, t: _dice_pair(p, t, eps=1.0, smooth_num=1.0),
            zh=('分子和分母都加了平滑项 1，(2 I + 1) / (S + 1)',
                '那是另一种损失（在 U-Net 代码仓库里很常见）；Keras 的 Dice 只在分母上加 eps = 1e-7：1 - 2 I / (S + 1e-7)')),
    Mistake("the Dice coefficient instead of the loss 1 - Dice (the sign flipped)",
            "minimise 1 - 2 I / (S + eps); its gradient is -2 (t (S + eps) - I) / (S + eps)^2",
            lambda p, t: _dice_pair(p, t, sign=-1.0),
            zh=('返回了 Dice 系数，而不是损失 1 - Dice（符号反了）',
                '要最小化的是 1 - 2 I / (S + eps)；它的梯度是 -2 (t (S + eps) - I) / (S + eps)^2')),
    Mistake("a gradient that treats S as a constant (-2 t / S)",
            "S = sum(t) + sum(p) depends on every p_j too: dL/dp_j = -2 (t_j (S + eps) - I) / (S + eps)^2",
            lambda p, t: (_dice_pair(p, t)[0], (-2 * t / (np.sum(t) + np.sum(p) + 1e-7)).astype(p.dtype)),
            zh=('求梯度时把 S 当成了常数（-2 t / S）',
                'S = sum(t) + sum(p) 也依赖于每个 p_j：dL/dp_j = -2 (t_j (S + eps) - I) / (S + eps)^2')),
]


def check_soft_dice_loss(fn):
    """fn(p, t) -> (loss, dp): Keras's Dice loss 1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7), one value for
    the whole batch, and its gradient."""
    rng = np.random.default_rng(7)
    p = rng.random((2, 6, 6, 1))
    t = (rng.random(p.shape) > 0.6).astype(np.float64)
    p32 = rng.random((1, 5, 5, 1)).astype(np.float32)
    cases = [((p, t), tr("random probabilities, float64", "随机概率，float64")),
             ((p32, (p32 > 0.5).astype(np.float32)), tr("a prediction close to its target, float32",
                                                         "接近目标的预测，float32")),
             ((p, np.zeros_like(p)), tr("an empty target", "目标为空")),
             ((np.full((1, 3, 3, 1), 0.5), np.ones((1, 3, 3, 1))), tr("a full target, p = 0.5 everywhere",
                                                                      "目标全满，处处 p = 0.5")),
             ((np.zeros((1, 3, 3, 1)), np.zeros((1, 3, 3, 1))), tr("an empty target and an empty prediction",
                                                                    "目标和预测都为空"))]
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
            _wce_weighted_after,
            zh=('先求平均再乘权重（mean(w) * mean(loss)）',
                '先给每个像素的损失加权，再求平均：-(1/M) sum_x w(x) log p_l(x)(x)，这样 w = 10 的缝隙像素才算作十倍')),
    Mistake("a weighted mean that divides by sum(w) instead of M",
            "this course (and TensorFlow's reduce_mean of w * loss, Keras's sample_weight) divides by the "
            "pixel count M = N H W, not by the sum of the weights",
            _wce_by_sum_w,
            zh=('加权平均除以了 sum(w)，而不是 M',
                '本课程（以及 TensorFlow 对 w * loss 的 reduce_mean、Keras 的 sample_weight）除以像素个数 M = N H W，而不是权重之和')),
    Mistake("a sum over the pixels instead of the mean",
            "divide the loss and its gradient by M = N H W, the number of pixels",
            _wce_sum,
            zh=('对像素求和，而不是求平均',
                '损失和它的梯度都要除以像素个数 M = N H W')),
    Mistake("the log-softmax computed without subtracting the maximum (exp(1000) = inf)",
            "subtract each pixel's largest logit first: softmax(z) = softmax(z - max z), and exp(z - max) <= 1",
            _quiet(_wce_unshifted),
            zh=('计算 log-softmax 时没有先减去最大值（exp(1000) = inf）',
                '先减去每个像素最大的 logit：softmax(z) = softmax(z - max z)，而 exp(z - max) <= 1')),
    Mistake("the log of the softmax computed as log(exp(z) / sum exp(z)) (inf / inf = nan)",
            "compute log softmax directly, (z - max) - log sum exp(z - max), never exp of a large logit",
            _quiet(_wce_log_of_softmax),
            zh=('把 softmax 的对数算成 log(exp(z) / sum exp(z))（inf / inf = nan）',
                '直接计算 log softmax：(z - max) - log sum exp(z - max)，绝不对很大的 logit 取 exp')),
    Mistake("the loss without the weights",
            "multiply each pixel's loss, and its gradient, by w(x)",
            lambda logits, labels, w: weighted_softmax_crossentropy(logits, labels),
            zh=('损失里没有权重',
                '每个像素的损失和梯度都要乘以 w(x)')),
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
    cases = [((z, labels, w), tr("two classes, random weights, float64", "两类，随机权重，float64")),
             ((z, labels, np.ones((2, 4, 4))), tr("all weights 1 (plain softmax cross-entropy)",
                                                  "权重全为 1（普通的 softmax 交叉熵）")),
             ((z3 + 1000, labels3, w3), tr("three classes, logits near 1000, float32", "三类，logits 接近 1000，float32"))]
    return _check_arrays(_adapt(fn), _loss_cases(weighted_softmax_crossentropy, cases), "weighted_softmax_ce",
                         rtol=1e-5, atol=1e-7, mistakes=[_adapted(m) for m in WCE_MISTAKES])
