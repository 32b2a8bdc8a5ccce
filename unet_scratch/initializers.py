"""Weight initialisers, as Keras computes them.

fan_in = receptive field * shape[-2], fan_out = receptive field * shape[-1] (Keras's ``compute_fans``).
For a Conv2DTranspose kernel (kh, kw, out, in) Keras applies the same rule, so its "fan_in" counts the
layer's output channels; we follow Keras so that the statistics match.

    glorot_uniform: U(-l, l), l = sqrt(6 / (fan_in + fan_out))           (Keras's default)
    he_normal:      truncated normal, std sqrt(2 / fan_in) / 0.8796...   (Keras's; cut at 2 std)
The paper draws from a plain Gaussian with std sqrt(2 / N), N = fan_in: the truncated version has the
same standard deviation after truncation.
"""
from __future__ import annotations

import numpy as np


def compute_fans(shape):
    """(fan_in, fan_out) of a weight of ``shape``, exactly as keras.initializers does."""
    shape = tuple(shape)
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive = int(np.prod(shape[:-2]))
    return shape[-2] * receptive, shape[-1] * receptive


def glorot_uniform(shape, rng, dtype="float32"):
    fan_in, fan_out = compute_fans(shape)
    limit = np.sqrt(6.0 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def he_normal(shape, rng, dtype="float32"):
    fan_in, _ = compute_fans(shape)
    std = np.sqrt(2.0 / fan_in) / 0.87962566103423978
    w = rng.standard_normal(size=shape)
    bad = np.abs(w) > 2
    while bad.any():                          # redraw outside two standard deviations
        w[bad] = rng.standard_normal(size=int(bad.sum()))
        bad = np.abs(w) > 2
    return (w * std).astype(dtype)


def zeros(shape, rng=None, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal, "zeros": zeros}


def get_initializer(name):
    """An initialiser ``f(shape, rng, dtype)`` by name (or a callable with that signature)."""
    if callable(name):
        return name
    if name not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)}")
    return INITIALIZERS[name]
