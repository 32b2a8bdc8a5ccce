"""The loss a training step minimises, computed from the head's logits, with its gradient."""
from __future__ import annotations

import numpy as np

from ..backend import is_device_array
from ..ops.activations import sigmoid, softmax
from ..ops.losses import binary_crossentropy, dice_loss, weighted_softmax_crossentropy

LOSSES = ("bce", "dice", "bce_dice", "weighted_ce")


def head_kind(model):
    act = model.config["out_activation"]
    if act == "softmax":
        return "softmax"
    if model.config["out_channels"] != 1:
        raise ValueError("a sigmoid (or linear) head needs out_channels=1 for binary masks; use "
                         "out_activation='softmax' for several classes")
    return "sigmoid"


def foreground(model, t):
    """The binary mask that ``fit``'s Dice scores: the targets themselves for a sigmoid head or a 2-class
    softmax; for a softmax head with K > 2 classes, every class but 0 (the background), ``t > 0``."""
    if head_kind(model) == "softmax" and model.config["out_channels"] > 2:
        return (t > 0).astype(np.float32)
    return t


def loss_from_logits(model, z, t, w=None, loss="bce"):
    """(loss, dL/dz, probabilities) from the head's logits z: (N, H, W, K).

    Sigmoid head: "bce" (Keras's BinaryCrossentropy, which computes from logits even when the model ends in
    a sigmoid), "dice" (soft Dice on p = sigmoid(z)), "bce_dice" (their sum); with w, a per-pixel weighted
    BCE mean(w * l). Softmax head: "weighted_ce", the paper's Eq. 1 (w = 1 without a weight map), with
    class indices t[..., 0] in [0, K); the probabilities returned are the foreground's: softmax class 1
    for K = 2, 1 - softmax class 0 (any class but the background) for K > 2, as :func:`foreground` scores.
    """
    if head_kind(model) == "softmax":
        if loss not in ("weighted_ce", "bce"):
            raise ValueError(f"loss {loss!r} needs a sigmoid head; a softmax head trains with 'weighted_ce'")
        if is_device_array(z):                     # on the GPU: the same formulas, on the device
            from ..kernels import xp_losses
            return xp_losses.loss_from_logits("softmax", z.shape[-1], z, t, w, loss)
        labels = t[..., 0].astype(np.int64)
        value, dz = weighted_softmax_crossentropy(z, labels, None if w is None else w[..., 0])
        probs = softmax(z)[0]
        return value, dz, probs[..., 1:2] if z.shape[-1] == 2 else 1 - probs[..., :1]
    if loss not in ("bce", "dice", "bce_dice"):
        raise ValueError(f"unknown loss {loss!r} for a sigmoid head; choose 'bce', 'dice' or 'bce_dice'")
    if is_device_array(z):
        from ..kernels import xp_losses
        return xp_losses.loss_from_logits("sigmoid", 1, z, t, w, loss)
    p = sigmoid(z)[0]
    value, dz = 0.0, np.zeros_like(z)
    if loss in ("bce", "bce_dice"):
        value, dz = binary_crossentropy(z, t, from_logits=True, weights=w)
    if loss in ("dice", "bce_dice"):
        d, dp = dice_loss(p, t)
        value, dz = value + d, dz + dp * p * (1 - p)          # chain rule through the sigmoid
    return value, dz, p
