"""Losses for segmentation, each returning ``(loss, dL/dprediction)``.

binary_crossentropy   Keras 3's BinaryCrossentropy: p clipped to [eps, 1 - eps], eps = 1e-7,
                      L = -mean(t log p + (1 - t) log(1 - p)); or from logits z, in the stable form
                      max(z, 0) - z t + log(1 + exp(-|z|)), whose gradient is (sigmoid(z) - t) / M.
dice_loss             Keras 3's Dice: 1 - 2 sum(t p) / (sum(t) + sum(p) + eps) over the whole batch.
weighted_softmax_crossentropy
                      Ronneberger et al. 2015, Eq. 1: E = sum_x w(x) log p_{l(x)}(x); we minimise
                      -E / M (mean over pixels), with a stable log-softmax.
"""
from __future__ import annotations

import numpy as np

EPSILON = 1e-7          # keras.backend.epsilon()


def _check_pair(y_pred, y_true, name):
    if y_pred.shape != np.shape(y_true):
        raise ValueError(f"{name}: prediction shape {y_pred.shape} and target shape {np.shape(y_true)} "
                         f"differ; the target mask needs the model's output shape (N, H, W, channels)")
    if not np.all(np.isfinite(y_pred)):
        raise ValueError(f"{name}: the prediction contains NaN or Inf (diverged training? lower the "
                         f"learning rate)")


def binary_crossentropy(y_pred, y_true, from_logits=False, epsilon=EPSILON):
    """y_pred: probabilities (or logits), y_true: {0, 1} targets, same shape -> (loss, dy_pred)."""
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    _check_pair(y_pred, y_true, "binary_crossentropy")
    m = y_pred.size
    if from_logits:
        z = y_pred
        loss = np.maximum(z, 0) - z * y_true + np.log1p(np.exp(-np.abs(z)))
        e = np.exp(-np.abs(z))
        sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
        return float(loss.mean()), ((sig - y_true) / m).astype(z.dtype)
    eps = y_pred.dtype.type(epsilon)
    p = np.clip(y_pred, eps, 1 - eps)
    loss = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    dp = -(y_true / p - (1 - y_true) / (1 - p)) / m
    dp = dp * ((y_pred >= eps) & (y_pred <= 1 - eps))     # tf.clip_by_value passes no gradient outside
    return float(loss.mean()), dp.astype(y_pred.dtype)


def dice_loss(y_pred, y_true, epsilon=EPSILON):
    """Soft Dice over the whole batch, as ``keras.losses.Dice()``: 1 - 2I / (S + eps) -> (loss, dy_pred)."""
    y_true = np.asarray(y_true, dtype=y_pred.dtype)
    _check_pair(y_pred, y_true, "dice_loss")
    inter = np.sum(y_true * y_pred)
    denom = np.sum(y_true) + np.sum(y_pred) + epsilon
    loss = 1 - 2 * inter / denom
    dp = -2 * (y_true * denom - inter) / denom ** 2
    return float(loss), dp.astype(y_pred.dtype)


def log_softmax(z, axis=-1):
    """log softmax(z) = z - max - log sum exp(z - max): never overflows."""
    shifted = z - z.max(axis=axis, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))


def weighted_softmax_crossentropy(logits, labels, weights=None):
    """The paper's pixel-weighted cross-entropy.

    logits: (N, H, W, K); labels: (N, H, W) class indices or (N, H, W, K) one-hot; weights: (N, H, W)
    or None (all ones). Returns (loss, dlogits) with loss = -mean_x w(x) log softmax(logits)_{l(x)}(x)
    and dlogits = w (softmax - onehot) / M.
    """
    k = logits.shape[-1]
    labels = np.asarray(labels)
    if labels.shape == logits.shape:
        onehot = labels.astype(logits.dtype)
    elif labels.shape == logits.shape[:-1]:
        if not np.issubdtype(labels.dtype, np.integer):
            raise TypeError(f"class-index labels must be integers, got {labels.dtype}")
        if labels.min() < 0 or labels.max() >= k:
            raise ValueError(f"labels must lie in [0, {k - 1}] for {k} classes, found "
                             f"{labels.min()}..{labels.max()} (a mask saved as 0/255? divide by 255)")
        onehot = np.eye(k, dtype=logits.dtype)[labels]
    else:
        raise ValueError(f"labels shape {labels.shape} fits neither (N, H, W) indices nor one-hot "
                         f"{logits.shape} for logits {logits.shape}")
    if not np.all(np.isfinite(logits)):
        raise ValueError("weighted_softmax_crossentropy: logits contain NaN or Inf")
    w = np.ones(logits.shape[:-1], logits.dtype) if weights is None else np.asarray(weights, logits.dtype)
    if w.shape != logits.shape[:-1]:
        raise ValueError(f"weight map shape {w.shape} must be {logits.shape[:-1]} (one weight per pixel)")
    m = w.size
    logp = log_softmax(logits)
    loss = -np.sum(w * np.sum(onehot * logp, axis=-1)) / m
    dlogits = w[..., None] * (np.exp(logp) - onehot) / m
    return float(loss), dlogits.astype(logits.dtype)
