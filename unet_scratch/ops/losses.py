"""Losses for segmentation. Each returns ``(loss, dloss/dprediction)``: a Python float and an array
shaped (and typed) like the prediction, ready to be fed to the model's backward pass.

Argument order: prediction first, target second, ``loss(y_pred, y_true)``. Keras uses the opposite
order, ``loss_fn(y_true, y_pred)``; watch out when comparing.

binary_crossentropy     Keras 3's BinaryCrossentropy. From probabilities p (the sigmoid head):
                        p is clipped to [eps, 1 - eps], eps = 1e-7, then
                            l = -(t log p + (1 - t) log(1 - p)),   loss = mean of l over all M elements,
                        and no gradient flows where p was clipped. From logits z (from_logits=True), the
                        stable form l = max(z, 0) - z t + log(1 + exp(-|z|)), dl/dz = sigmoid(z) - t.
dice_loss               Keras 3's Dice: 1 - 2 sum(t p) / (sum(t) + sum(p) + smooth).
weighted_softmax_crossentropy
                        Ronneberger et al. 2015, Eq. 1: E = sum_x w(x) log p_{l(x)}(x) with p the
                        pixel-wise softmax; we minimise -E / M (a mean over the M pixels), using a stable
                        log-softmax. Its gradient is w (softmax - onehot) / M.
categorical_crossentropy, sparse_categorical_crossentropy
                        Keras 3's, from probabilities (clipped as above) or from logits.

"mean over all M elements" is Keras's reduction: a mean over the last axis, then "sum_over_batch_size"
(a mean over the remaining elements), which is the same as one mean over everything.
"""
from __future__ import annotations

import numpy as np

from .activations import sigmoid

EPSILON = 1e-7          # keras.backend.epsilon()


# ----------------------------------------------------------------------------------------- checking
def _prediction(y_pred, name):
    y_pred = np.asarray(y_pred)
    if not np.issubdtype(y_pred.dtype, np.floating):
        raise TypeError(f"{name}: the prediction must be a float array, got {y_pred.dtype}; "
                        f"cast it with .astype('float32')")
    if y_pred.ndim < 1 or y_pred.size == 0:
        raise ValueError(f"{name}: the prediction must be a non-empty array, got shape {y_pred.shape}")
    _check_finite(y_pred, name, "prediction", "diverged training? lower the learning rate")
    return y_pred


def _check_finite(a, name, what, hint):
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{name}: the {what} contains NaN or Inf ({hint})")


def _target(y_true, y_pred, name, binary=True):
    """The target as an array of y_pred's shape and dtype, checked."""
    y_true = np.asarray(y_true)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"{name}: prediction shape {y_pred.shape} and target shape {y_true.shape} differ; "
                         f"the target needs the model's output shape (N, H, W, channels), e.g. "
                         f"mask[..., None] for an (N, H, W) mask")
    y_true = y_true.astype(y_pred.dtype, copy=False)
    _check_finite(y_true, name, "target", "check the masks")
    if binary and (y_true.min() < 0 or y_true.max() > 1):
        raise ValueError(f"{name}: targets must lie in [0, 1], found {y_true.min()}..{y_true.max()} "
                         f"(a mask saved as 0/255? divide by 255)")
    return y_true


def _clip_probabilities(p, epsilon):
    """Keras's clip to [eps, 1 - eps] -> (clipped, mask where the gradient passes).

    The bounds are computed in Python floats, then cast to p's dtype, as TensorFlow does.
    tf.clip_by_value is minimum-then-maximum, whose gradient passes where eps <= p <= 1 - eps.
    """
    lo, hi = p.dtype.type(epsilon), p.dtype.type(1.0 - epsilon)
    return np.clip(p, lo, hi), (p >= lo) & (p <= hi)


def _one_hot(labels, k, dtype, name):
    """Integer class indices (any shape) -> one-hot (shape + (k,)), with a range check."""
    labels = np.asarray(labels)
    if labels.dtype == bool:
        labels = labels.astype(np.int64)
    if not np.issubdtype(labels.dtype, np.integer):
        raise TypeError(f"{name}: class-index labels must be integers, got {labels.dtype}; "
                        f"use labels.astype(int) (or pass one-hot labels shaped like the logits)")
    if labels.min() < 0 or labels.max() >= k:
        raise ValueError(f"{name}: labels must lie in [0, {k - 1}] for {k} classes, found "
                         f"{labels.min()}..{labels.max()} (a mask saved as 0/255? divide by 255)")
    return np.eye(k, dtype=dtype)[labels]


# ------------------------------------------------------------------------------ binary cross-entropy
def binary_crossentropy(y_pred, y_true, from_logits=False, epsilon=EPSILON, weights=None):
    """Binary cross-entropy, ``keras.losses.BinaryCrossentropy(from_logits=...)``.

    y_pred: probabilities in [0, 1] (or logits, from_logits=True), any shape (N, ..., C);
    y_true: targets in [0, 1] (usually {0, 1}), same shape. Returns (loss, dy_pred).
    From probabilities, dy_pred = (-(t / p) + (1 - t) / (1 - p)) / M where p was not clipped, else 0.
    From logits, dy_pred = (sigmoid(z) - t) / M.
    weights (from logits only): per-element weights w shaped like y_pred (e.g. the paper's weight map);
    the loss is mean(w * l) = sum(w * l) / M (divided by M, not by sum(w)) and dy_pred = w (sigmoid(z) - t) / M.
    That is Keras's ``BinaryCrossentropy(from_logits=True)(t, z, sample_weight=s)`` ("sum_over_batch_size")
    for a per-pixel s of shape (N, H, W, 1) or (N, H, W), with w = s repeated over the C channels (for
    the usual one-channel head, w = s). Keras has no per-channel weights: it averages l over the
    channels before weighting and rejects an (N, H, W, C) sample_weight for C > 1.
    """
    y_pred = _prediction(y_pred, "binary_crossentropy")
    t = _target(y_true, y_pred, "binary_crossentropy")
    m = y_pred.size
    if weights is not None and not from_logits:
        raise ValueError("binary_crossentropy: per-pixel weights are supported with from_logits=True")
    if from_logits:
        z = y_pred
        elementwise = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
        if weights is not None:
            w = np.asarray(weights)
            if w.shape != z.shape:
                raise ValueError(f"binary_crossentropy: weights have shape {w.shape}, the prediction {z.shape}")
            return float((w * elementwise).mean()), (w * (sigmoid(z)[0] - t) / z.dtype.type(m)).astype(z.dtype)
        dz = (sigmoid(z)[0] - t) / z.dtype.type(m)
        return float(elementwise.mean(axis=-1).mean()), dz
    p, passes = _clip_probabilities(y_pred, epsilon)
    elementwise = -(t * np.log(p) + (1 - t) * np.log(1 - p))
    dp = (-(t / p) + (1 - t) / (1 - p)) / y_pred.dtype.type(m)
    return float(elementwise.mean(axis=-1).mean()), dp * passes


# ------------------------------------------------------------------------------------------- Dice
def dice_loss(y_pred, y_true, smooth=EPSILON, axis=None):
    """Soft Dice loss with ``keras.losses.Dice(axis=axis)``'s semantics.

    y_pred: probabilities, any shape (N, H, W, C); y_true: targets in [0, 1], same shape.
    With I = sum(t p), S = sum(t) + sum(p) over ``axis`` (None: over everything, one Dice for the whole
    batch, Keras's default; (1, 2, 3): one Dice per image):
        loss = mean over the remaining entries of 1 - 2 I / (S + smooth)
        dloss/dp = -2 (t (S + smooth) - I) / (S + smooth)^2 / G,   G = number of Dice values averaged.
    smooth: Keras adds backend.epsilon() = 1e-7 to the denominator only (no smoothing in the
    numerator), so an empty mask with an empty prediction costs 1, not 0. Keep the default to match Keras.
    """
    p = _prediction(y_pred, "dice_loss")
    t = _target(y_true, p, "dice_loss")
    intersection = np.sum(t * p, axis=axis, keepdims=True)
    denominator = np.sum(t, axis=axis, keepdims=True) + np.sum(p, axis=axis, keepdims=True) + smooth
    per_group = 1 - 2 * intersection / denominator
    g = per_group.size
    dp = -2 * (t * denominator - intersection) / denominator ** 2 / g
    return float(per_group.mean()), dp.astype(p.dtype, copy=False)


# ------------------------------------------------------------------- the paper's weighted loss (Eq. 1)
def log_softmax(z, axis=-1):
    """log softmax(z) = (z - max) - log sum exp(z - max): never overflows, never takes log(0)."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def _labels_as_onehot(labels, logits, name):
    """(N, H, W) class indices or (N, H, W, K) one-hot -> one-hot in logits' dtype."""
    labels = np.asarray(labels)
    k = logits.shape[-1]
    if labels.shape == logits.shape:
        onehot = labels.astype(logits.dtype, copy=False)
        _check_finite(onehot, name, "one-hot labels", "check the masks")
        return onehot
    if labels.shape == logits.shape[:-1] + (1,):       # (N, H, W, 1) indices, as Keras accepts
        labels = labels[..., 0]
    if labels.shape == logits.shape[:-1]:
        return _one_hot(labels, k, logits.dtype, name)
    raise ValueError(f"{name}: labels shape {labels.shape} fits neither class indices "
                     f"{logits.shape[:-1]} nor one-hot {logits.shape} for logits {logits.shape}")


def weighted_softmax_crossentropy(logits, labels, weights=None):
    """The paper's pixel-weighted softmax cross-entropy (Ronneberger et al. 2015, Eq. 1).

    logits: (N, H, W, K) raw scores; labels: (N, H, W) int class indices in [0, K) or (N, H, W, K)
    one-hot; weights: (N, H, W) weight map w(x) >= 0 (class balance + border weights), None for all ones.
    Returns (loss, dlogits):
        loss    = -(1/M) sum_x w(x) log softmax(logits)_{l(x)}(x),   M = N H W pixels
        dlogits = w (softmax(logits) - onehot) / M,                  shape (N, H, W, K)
    With weights=None this is ``keras.losses.SparseCategoricalCrossentropy(from_logits=True)``.
    """
    name = "weighted_softmax_crossentropy"
    logits = _prediction(logits, name)
    if logits.ndim < 2:
        raise ValueError(f"{name}: logits need a class axis last, (N, H, W, K); got shape {logits.shape}")
    onehot = _labels_as_onehot(labels, logits, name)
    pixels = logits.shape[:-1]
    if weights is None:
        w = np.ones(pixels, logits.dtype)
    else:
        w = np.asarray(weights).astype(logits.dtype, copy=False)
        if w.shape != pixels:
            raise ValueError(f"{name}: weight map shape {w.shape} must be {pixels} (one weight per pixel)")
        _check_finite(w, name, "weight map", "check the weight-map computation")
        if w.min() < 0:
            raise ValueError(f"{name}: weights must be >= 0, found {w.min()}")
    m = logits.dtype.type(w.size)
    logp = log_softmax(logits)
    loss = -np.sum(w * np.sum(onehot * logp, axis=-1)) / m
    dlogits = w[..., None] * (np.exp(logp) - onehot) / m
    return float(loss), dlogits


# ----------------------------------------------------------------------- Keras's categorical losses
def categorical_crossentropy(y_pred, y_true, from_logits=False, epsilon=EPSILON):
    """``keras.losses.CategoricalCrossentropy(from_logits=...)``: one-hot targets, channels last.

    y_pred: (..., K) probabilities (or logits); y_true: (..., K) one-hot (or soft) targets.
    From probabilities Keras first renormalises q = p / sum_k p_k, then clips q to [eps, 1 - eps]:
        l = -sum_k t_k log clip(q)_k,   loss = mean of l over the M = size / K positions.
    Returns (loss, dy_pred).
    """
    name = "categorical_crossentropy"
    y_pred = _prediction(y_pred, name)
    t = _target(y_true, y_pred, name)
    m = y_pred.dtype.type(y_pred.size // y_pred.shape[-1])
    if from_logits:
        logp = log_softmax(y_pred)
        loss = -np.sum(t * logp, axis=-1).mean()
        dz = (np.exp(logp) * t.sum(axis=-1, keepdims=True) - t) / m
        return float(loss), dz
    total = y_pred.sum(axis=-1, keepdims=True)
    q = y_pred / total
    c, passes = _clip_probabilities(q, epsilon)
    loss = -np.sum(t * np.log(c), axis=-1).mean()
    dq = -(t / c) * passes / m                      # through the clip
    dp = (dq - np.sum(dq * q, axis=-1, keepdims=True)) / total     # through q = p / sum(p)
    return float(loss), dp


def sparse_categorical_crossentropy(y_pred, y_true, from_logits=False, epsilon=EPSILON):
    """``keras.losses.SparseCategoricalCrossentropy(from_logits=...)``: integer targets, channels last.

    y_pred: (..., K) probabilities (or logits); y_true: (...) or (..., 1) int class indices.
    From probabilities Keras clips p to [eps, 1 - eps] and then applies a softmax to log(clip(p)),
    i.e. renormalises after clipping (CategoricalCrossentropy renormalises before):
        l = -log(c_l / sum_k c_k),  c = clip(p).
    Returns (loss, dy_pred).
    """
    name = "sparse_categorical_crossentropy"
    y_pred = _prediction(y_pred, name)
    if from_logits:
        return weighted_softmax_crossentropy(y_pred, _sparse_labels(y_true, y_pred, name))
    onehot = _one_hot(_sparse_labels(y_true, y_pred, name), y_pred.shape[-1], y_pred.dtype, name)
    m = y_pred.dtype.type(y_pred.size // y_pred.shape[-1])
    c, passes = _clip_probabilities(y_pred, epsilon)
    total = c.sum(axis=-1, keepdims=True)
    loss = -(np.log(np.sum(onehot * c, axis=-1)) - np.log(total[..., 0])).mean()
    dp = (-(onehot / c) + 1 / total) * passes / m
    return float(loss), dp


def _sparse_labels(y_true, y_pred, name):
    labels = np.asarray(y_true)
    if labels.shape == y_pred.shape[:-1] + (1,):
        labels = labels[..., 0]
    if labels.shape != y_pred.shape[:-1]:
        raise ValueError(f"{name}: labels shape {labels.shape} must be the prediction's shape without "
                         f"its class axis, {y_pred.shape[:-1]}")
    return labels
