"""Inverted dropout, as ``keras.layers.Dropout``.

During training each unit is kept with probability 1 - rate and scaled by 1 / (1 - rate), so the
expected activation is unchanged and inference needs no rescaling: at inference dropout is the identity.
"""
from __future__ import annotations

import numpy as np


def dropout(x, rate, rng, training=False):
    """x: any shape; rate in [0, 1); rng: np.random.Generator -> (y, cache). cache is the mask or None."""
    if not 0.0 <= float(rate) < 1.0:
        raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
    if not training or rate == 0:
        return x, None
    keep = rng.random(x.shape) >= rate
    mask = (keep / (1.0 - rate)).astype(x.dtype)
    return x * mask, mask


def dropout_backward(dy, cache):
    """The same mask scales the gradient; identity when dropout was off."""
    mask = cache
    return dy if mask is None else dy * mask
