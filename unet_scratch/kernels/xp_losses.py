"""fit's losses from logits, written once for NumPy or CuPy (``xp = get_array_module(z)``).

The reference losses (``unet_scratch.ops.losses``) are NumPy code with input checks that read their
arguments on the host. On the GPU, ``fit`` computes the same formulas here, on the device, so a training
step sends only the batch there and brings back only the loss value and the Dice counts (no logits, no
dL/dz). The data was checked on the host when ``fit`` prepared it.

    bce          l = max(z, 0) - z t + log(1 + exp(-|z|)),  dL/dz = w (sigmoid(z) - t) / M
    dice         1 - 2 sum(t p) / (sum(t) + sum(p) + 1e-7) on p = sigmoid(z), dL/dz = dL/dp p (1 - p)
    weighted_ce  -(1/M) sum w log softmax(z)_label,           dL/dz = w (softmax(z) - onehot) / M

Every formula is the reference's, operation for operation (tests/test_gpu_path.py compares them on NumPy
and on the CuPy stand-in).
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module

EPSILON = 1e-7


def sigmoid(z, xp):
    """The reference's stable sigmoid: where(z >= 0, 1, e) / (1 + e), e = exp(-|z|)."""
    e = xp.exp(-xp.abs(z))
    return xp.where(z >= 0, 1, e) / (1 + e)


def binary_crossentropy_from_logits(z, t, w=None):
    """(loss as a 0-d array, dL/dz): the reference's ``binary_crossentropy(z, t, from_logits=True,
    weights=w)``. z, t, w: (N, H, W, C) on one device."""
    xp = get_array_module(z)
    t = t.astype(z.dtype, copy=False)
    m = z.dtype.type(z.size)
    elementwise = xp.maximum(z, 0) - z * t + xp.log1p(xp.exp(-xp.abs(z)))
    if w is not None:
        return (w * elementwise).mean(), (w * (sigmoid(z, xp) - t) / m).astype(z.dtype)
    return elementwise.mean(axis=-1).mean(), (sigmoid(z, xp) - t) / m


def dice_loss(p, t, smooth=EPSILON):
    """(loss as a 0-d array, dL/dp): the reference's ``dice_loss(p, t)`` (one Dice over the batch)."""
    t = t.astype(p.dtype, copy=False)
    intersection = (t * p).sum(keepdims=True)
    denominator = t.sum(keepdims=True) + p.sum(keepdims=True) + smooth
    per_group = 1 - 2 * intersection / denominator
    dp = -2 * (t * denominator - intersection) / denominator ** 2 / per_group.size
    return per_group.mean(), dp.astype(p.dtype, copy=False)


def weighted_softmax_crossentropy(z, labels, w=None):
    """(loss as a 0-d array, dL/dz): the reference's ``weighted_softmax_crossentropy(z, labels, w)``.
    z: (N, H, W, K) logits, labels: (N, H, W) class indices, w: (N, H, W) or None."""
    xp = get_array_module(z)
    k = z.shape[-1]
    onehot = (labels[..., None] == xp.arange(k)).astype(z.dtype)
    w = xp.ones(z.shape[:-1], z.dtype) if w is None else w.astype(z.dtype, copy=False)
    m = z.dtype.type(w.size)
    shifted = z - z.max(axis=-1, keepdims=True)
    logp = shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))
    loss = -(w * (onehot * logp).sum(axis=-1)).sum() / m
    return loss, w[..., None] * (xp.exp(logp) - onehot) / m


def loss_from_logits(kind, classes, z, t, w=None, loss="bce"):
    """(loss as a Python float, dL/dz, foreground probabilities), the arrays on z's device, as
    ``training.loss_from_logits`` (each term read back as a float and summed in Python, as there).

    kind: "sigmoid" or "softmax" (the head); classes: its out_channels; t: targets (N, H, W, 1) (class
    indices for a softmax head); w: per-pixel weights (N, H, W, 1) or None."""
    xp = get_array_module(z)
    if kind == "softmax":
        probs_z = xp.exp(z - z.max(axis=-1, keepdims=True))
        probs = probs_z / probs_z.sum(axis=-1, keepdims=True)
        value, dz = weighted_softmax_crossentropy(z, t[..., 0].astype(np.int64),
                                                  None if w is None else w[..., 0])
        return float(value), dz, probs[..., 1:2] if classes == 2 else 1 - probs[..., :1]
    p = sigmoid(z, xp).astype(z.dtype, copy=False)
    value, dz = 0.0, xp.zeros_like(z)
    if loss in ("bce", "bce_dice"):
        value, dz = binary_crossentropy_from_logits(z, t, w)
        value = float(value)
    if loss in ("dice", "bce_dice"):
        d, dp = dice_loss(p, t)
        value, dz = value + float(d), dz + dp * p * (1 - p)
    return value, dz, p


def dice_counts(p, t):
    """(|A and B|, |A| + |B|) of p > 0.5 and t > 0.5 as 0-d arrays on p's device (``metrics.dice_counts``)."""
    a, b = p > 0.5, t > 0.5
    return (a & b).sum(), a.sum() + b.sum()
