"""Inverted dropout, as ``keras.layers.Dropout``.

During training each unit is kept with probability 1 - rate and dropped (set to 0) otherwise; the kept
units are scaled by 1 / (1 - rate):

    mask = [u >= rate] / (1 - rate),   u ~ Uniform[0, 1)       y = x * mask

so E[y] = x and inference needs no rescaling: at inference (training=False) dropout is the identity.
The backward pass multiplies by the same mask: dx = dy * mask.

This is TensorFlow's rule too (``tf.nn.dropout`` keeps where u >= rate and multiplies by
1 / (1 - rate) in x's dtype); only the random numbers differ, since ours come from a NumPy generator.
The U-Net paper puts "drop-out layers at the end of the contracting path"; the Keras model uses rate 0.5.
"""
from __future__ import annotations

import numpy as np

from unet_scratch.checks import check_dropout_rate


def dropout(x, rate, rng, training=False):
    """Inverted dropout.

    x: any shape, float; rate: fraction dropped, 0 <= rate < 1; rng: ``np.random.Generator`` (the same
    seed gives the same mask); training: dropout only acts when True.
    Returns (y, cache): y has x's shape and dtype; cache is the mask (values 0 or 1 / (1 - rate), in
    x's dtype) or None when dropout was the identity (not training, or rate == 0).
    """
    rate = check_dropout_rate(rate)
    if not training or rate == 0:
        return x, None
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy.random.Generator, got {type(rng).__name__}; "
                        f"use np.random.default_rng(seed)")
    keep = rng.random(x.shape) >= rate
    mask = (keep / (1.0 - rate)).astype(x.dtype)
    return x * mask, mask


def dropout_backward(dy, cache):
    """dy: shape of y -> dx = dy * mask (the forward's mask); dy itself when dropout was off."""
    mask = cache
    return dy if mask is None else dy * mask
