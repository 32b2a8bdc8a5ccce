"""The pixel weight map of Ronneberger et al. 2015 (Eq. 2), for separating touching objects.

    w(x) = w_c(x) + w0 * exp(-(d1(x) + d2(x))**2 / (2 sigma**2))

d1(x), d2(x): the distances from pixel x to the nearest and to the second-nearest object. The border term
is applied on background pixels only. It is largest in the thin background gaps between two touching
objects (d1 + d2 is about the gap width there) and vanishes far from objects, so the loss pays most for
getting the separating gaps right. The paper uses w0 = 10 and sigma ~ 5 pixels.

w_c(x) balances the class frequencies. Our choice: with f_c the fraction of pixels of class c
(background = 0, foreground = objects), w_c = 1 / (2 f_c). Both classes then carry half of the total
weight and the mean of w_c over the image is exactly 1. If only one class is present, w_c = 1.
With class_balance=False, w_c = 1 everywhere.

Distances come from scipy.ndimage.distance_transform_edt, one transform per object: fine for a few dozen
objects per image. Weight maps are computed once per training image, before training.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


def class_weights(instances):
    """w_c: (H, W) int labels (0 = background) -> (H, W) float32, w_c = 1 / (2 f_c), mean 1."""
    foreground = instances > 0
    f_fg = foreground.mean()
    if f_fg in (0.0, 1.0):
        return np.ones(instances.shape, np.float32)
    return np.where(foreground, 1 / (2 * f_fg), 1 / (2 * (1 - f_fg))).astype(np.float32)


def nearest_two_distances(instances):
    """d1, d2: (H, W) float64 each, Euclidean distances to the nearest and second-nearest object.

    instances: (H, W) int, 0 = background, each positive label one object. Needs at least two objects.
    """
    labels = np.unique(instances[instances > 0])
    if labels.size < 2:
        raise ValueError(f"found {labels.size} object(s); d2 needs at least two labelled objects")
    d = np.stack([ndimage.distance_transform_edt(instances != k) for k in labels])   # (K, H, W)
    d = np.partition(d, 1, axis=0) if labels.size > 2 else np.sort(d, axis=0)
    return d[0], d[1]


def weight_map(instances, w0=10.0, sigma=5.0, class_balance=True):
    """Eq. 2 of the U-Net paper.

    instances: (H, W) int, 0 = background, 1..K = objects (touching objects need distinct labels).
    w0: border weight; sigma: border width in pixels; class_balance: add w_c = 1 / (2 f_c) (else 1).
    Returns w: (H, W) float32.
    """
    instances = np.asarray(instances)
    if instances.ndim != 2:
        raise ValueError(f"instances has shape {instances.shape}; expected one (H, W) label image "
                         "(use weight_maps for a batch (N, H, W))")
    if not np.issubdtype(instances.dtype, np.integer):
        raise TypeError(f"instances has dtype {instances.dtype}; expected integer instance labels "
                        "(a binary mask cannot tell touching objects apart: label them first)")
    if sigma <= 0:
        raise ValueError(f"sigma = {sigma}: the border width must be positive")
    w = class_weights(instances) if class_balance else np.ones(instances.shape, np.float32)
    if np.unique(instances[instances > 0]).size >= 2:
        d1, d2 = nearest_two_distances(instances)
        border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
        w = w + np.where(instances == 0, border, 0.0).astype(np.float32)
    return w.astype(np.float32)


def weight_maps(instances, w0=10.0, sigma=5.0, class_balance=True):
    """Batch version: instances (N, H, W) int -> (N, H, W) float32 (or (N, H, W, 1) -> (N, H, W, 1)).

    Each image is weighted on its own (class frequencies per image, as in the paper's per-image maps).
    """
    instances = np.asarray(instances)
    squeeze = instances.ndim == 4 and instances.shape[-1] == 1
    if squeeze:
        instances = instances[..., 0]
    if instances.ndim != 3:
        raise ValueError(f"instances has shape {instances.shape}; expected (N, H, W) or (N, H, W, 1)")
    w = np.stack([weight_map(x, w0, sigma, class_balance) for x in instances])
    return w[..., None] if squeeze else w
