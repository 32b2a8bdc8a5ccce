"""Several classes per pixel: targets, class-balancing weights and per-class scores for a softmax head.

A softmax head with K output channels (``UNet(out_channels=K, out_activation="softmax")``) trains on class
indices 0..K-1, one per pixel, with the paper's weighted cross-entropy (``training.fit(loss="weighted_ce")``).

    boundary_classes(instances)      instance labels -> 0 background, 1 object interior, 2 object boundary
    class_balance_weights(labels, K) w = 1 / (K f_c) per pixel (f_c: the fraction of class c), mean 1
    per_class_dice(pred, labels, K)  [Dice of class 0, ..., Dice of class K-1] of two label images

The boundary class is what makes touching objects separable: a network that predicts each object's outline
as its own class leaves the interiors as separate connected components.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage

from .metrics import per_class_dice  # noqa: F401  (re-exported: its one home is metrics)


def _labels(a, name):
    a = np.asarray(a)
    if a.ndim == 4 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"{name} must be integer labels (H, W) or (N, H, W) (or (N, H, W, 1)), got "
                         f"{a.dtype} of shape {a.shape}")
    return a


def boundary_classes(instances, width=1):
    """instances: (H, W) or (N, H, W) int, 0 = background, each positive label one object ->
    int32 labels of the same shape: 0 background, 1 interior, 2 boundary (the object pixels within ``width``
    pixels of another label, background or a different object; 4-connected steps)."""
    inst = _labels(instances, "instances")
    if int(width) < 1:
        raise ValueError(f"width must be at least 1 pixel, got {width}")
    single = inst.ndim == 2
    inst = inst[None] if single else inst
    cross = ndimage.generate_binary_structure(2, 1)
    out = np.zeros(inst.shape, np.int32)
    for i, im in enumerate(inst):
        edge = (ndimage.grey_dilation(im, footprint=cross, mode="nearest") != im) | \
               (ndimage.grey_erosion(im, footprint=cross, mode="nearest") != im)
        near = ndimage.binary_dilation(edge, structure=cross, iterations=int(width) - 1) if width > 1 else edge
        out[i] = np.where(im > 0, np.where(near, 2, 1), 0)
    return out[0] if single else out


def class_balance_weights(labels, classes):
    """labels: int class indices, any shape -> float32 weights of the same shape, w = 1 / (K f_c) for a pixel
    of class c (f_c its fraction of the pixels, K = ``classes``): each present class carries the same total
    weight and the weights average 1. The multi-class form of ``weightmap.class_weights``."""
    labels = np.asarray(labels)
    if labels.size == 0:
        raise ValueError("labels is empty")
    counts = np.bincount(labels.astype(np.int64).ravel(), minlength=classes)
    if counts.size > classes:
        raise ValueError(f"labels reach class {counts.size - 1}, but classes = {classes}")
    present = counts > 0
    per_class = np.zeros(classes)
    per_class[present] = labels.size / (present.sum() * counts[present])
    return per_class[labels.astype(np.int64)].astype(np.float32)
