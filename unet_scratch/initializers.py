"""Weight initialisers, as Keras computes them. Each is ``f(shape, rng, dtype) -> array``.

Fans (Keras's ``compute_fans``): for a kernel of shape (kh, kw, a, b), receptive field = kh * kw and
    fan_in = receptive field * shape[-2],   fan_out = receptive field * shape[-1]
(a 2-D (in, out) matrix: fan_in = shape[0], fan_out = shape[1]; a 1-D shape: both = shape[0]).
For a Conv2D kernel (kh, kw, in, out) that is the usual count of inputs and outputs per unit. A
Conv2DTranspose kernel is stored (kh, kw, out, in), and Keras applies the same rule to it, so its
"fan_in" counts the layer's *output* channels; we follow Keras so that the statistics match.

    glorot_uniform  U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))        (Keras's default)
                    i.e. variance 2 / (fan_in + fan_out) (Glorot & Bengio 2010)
    he_normal       normal with std sqrt(2 / fan_in) / 0.87962566103423978, values beyond two of those
                    stds redrawn (a truncated normal, Keras's HeNormal); 0.8796... is the std of a
                    standard normal truncated to [-2, 2], so the result has std sqrt(2 / fan_in)
    paper_normal    the U-Net paper's choice: a plain Gaussian with std sqrt(2 / N), N = fan_in
                    ("for a 3x3 convolution and 64 feature channels in the previous layer N = 9 * 64")
    zeros           Keras's default bias initialiser

Every function takes an ``np.random.Generator`` (``zeros`` ignores it), so a seed reproduces the weights.
The values come from NumPy's generator, not TensorFlow's: same distribution, different numbers.
"""
from __future__ import annotations

import numpy as np

TRUNCATED_NORMAL_STD = 0.87962566103423978   # std of N(0, 1) truncated to [-2, 2]


def compute_fans(shape, input_axes=None, output_axes=None):
    """(fan_in, fan_out) of a weight of ``shape``, exactly as ``keras.initializers`` computes them.

    shape: () -> (1, 1); (n,) -> (n, n); (a, b) -> (a, b); (k1, ..., a, b) -> (prod(k) a, prod(k) b).
    input_axes, output_axes: optional axes whose sizes multiply into fan_in and fan_out instead
    (Keras 3.15's VarianceScaling option; no built-in layer passes them).
    """
    shape = tuple(int(s) for s in shape)
    if input_axes is not None and output_axes is not None:
        return (int(np.prod([shape[a] for a in input_axes])),
                int(np.prod([shape[a] for a in output_axes])))
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    if len(shape) == 2:
        return shape[0], shape[1]
    receptive_field = int(np.prod(shape[:-2]))
    return shape[-2] * receptive_field, shape[-1] * receptive_field


def _check_rng(rng, name):
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"{name}: rng must be a numpy.random.Generator, got {type(rng).__name__}; "
                        f"use np.random.default_rng(seed)")


def glorot_uniform(shape, rng, dtype="float32"):
    """Glorot (Xavier) uniform: shape -> array in U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out))."""
    _check_rng(rng, "glorot_uniform")
    fan_in, fan_out = compute_fans(shape)
    scale = 1.0 / max(1.0, (fan_in + fan_out) / 2.0)      # Keras's VarianceScaling, mode fan_avg
    limit = np.sqrt(3.0 * scale)                           # = sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)


def _truncated_standard_normal(shape, rng):
    """N(0, 1) restricted to [-2, 2] by redrawing the values outside (as tf.random.truncated_normal)."""
    z = rng.standard_normal(size=shape)
    outside = np.abs(z) > 2
    while outside.any():                  # about 4.6 % redrawn per round
        z[outside] = rng.standard_normal(size=int(outside.sum()))
        outside = np.abs(z) > 2
    return z


def he_normal(shape, rng, dtype="float32"):
    """Keras's HeNormal: truncated normal, std sqrt(2 / fan_in) / 0.8796..., cut at two of those stds.

    shape -> array with standard deviation sqrt(2 / fan_in) and |values| <= 2 sqrt(2 / fan_in) / 0.8796.
    """
    _check_rng(rng, "he_normal")
    fan_in, _ = compute_fans(shape)
    std = np.sqrt(2.0 / max(1.0, fan_in)) / TRUNCATED_NORMAL_STD       # Keras: scale 2, mode fan_in
    return (_truncated_standard_normal(shape, rng) * std).astype(dtype)


def paper_normal(shape, rng, dtype="float32"):
    """Ronneberger et al. 2015: plain (untruncated) Gaussian, std sqrt(2 / N), N = fan_in."""
    _check_rng(rng, "paper_normal")
    fan_in, _ = compute_fans(shape)
    return (rng.standard_normal(size=shape) * np.sqrt(2.0 / max(1.0, fan_in))).astype(dtype)


def zeros(shape, rng=None, dtype="float32"):
    """All zeros (``rng`` is accepted and ignored, so every initialiser has the same signature)."""
    return np.zeros(shape, dtype=dtype)


INITIALIZERS = {"glorot_uniform": glorot_uniform, "he_normal": he_normal,
                "paper_normal": paper_normal, "zeros": zeros}


def get_initializer(name):
    """An initialiser ``f(shape, rng, dtype)`` by Keras name (or a callable with that signature)."""
    if callable(name):
        return name
    key = name.lower() if isinstance(name, str) else name
    if key not in INITIALIZERS:
        raise ValueError(f"unknown initializer {name!r}; choose one of {sorted(INITIALIZERS)} or pass a "
                         f"function f(shape, rng, dtype)")
    return INITIALIZERS[key]
