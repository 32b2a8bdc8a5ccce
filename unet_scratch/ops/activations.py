"""Activations, each with its backward beside it.

    relu(z)    = max(z, 0)              d/dz = 1 where z > 0 (0 at z = 0, as TensorFlow's ReluGrad)
    sigmoid(z) = 1 / (1 + exp(-z))      d/dz = y (1 - y)
    softmax(z)_k = exp(z_k) / sum_j exp(z_j) over the channel axis
                                        dz = y * (dy - sum_k dy_k y_k)
"""
from __future__ import annotations

import numpy as np


def relu(z):
    """z: any shape -> (y, cache) with y = max(z, 0)."""
    y = np.maximum(z, 0)
    return y, y


def relu_backward(dy, cache):
    """Gradient flows where the output was positive (equivalently z > 0)."""
    y = cache
    return dy * (y > 0)


def sigmoid(z):
    """Numerically stable logistic function: exp is only taken of -|z|, so it never overflows."""
    e = np.exp(-np.abs(z))
    y = np.where(z >= 0, 1 / (1 + e), e / (1 + e)).astype(z.dtype, copy=False)
    return y, y


def sigmoid_backward(dy, cache):
    y = cache
    return dy * y * (1 - y)


def softmax(z, axis=-1):
    """Softmax over ``axis`` (channels by default); the max is subtracted first for stability."""
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(dy, cache):
    y, axis = cache
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "softmax": (softmax, softmax_backward),
}


def get_activation(name):
    """(forward, backward) for an activation name; None or "linear" is the identity."""
    if name in (None, "linear"):
        return (lambda z: (z, None)), (lambda dy, cache: dy)
    if name not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose relu, sigmoid, softmax, linear or None")
    return ACTIVATIONS[name]
