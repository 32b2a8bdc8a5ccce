"""Activations, each with its backward pass beside it.

An activation is applied element by element (softmax: along the channel axis), so its backward pass is
the upstream gradient dy times the local derivative:

    relu(x)    = max(x, 0)               dx = dy * [x > 0]       (0 at x = 0, as TensorFlow's ReluGrad)
    sigmoid(x) = 1 / (1 + exp(-x))       dx = dy * y * (1 - y)
    softmax(x)_k = exp(x_k) / sum_j exp(x_j)
                                         dx = y * (dy - sum_k dy_k y_k)   (the Jacobian diag(y) - y y^T
                                                                           applied to dy, never built)
    linear(x)  = x                       dx = dy

Numerical care: sigmoid only ever exponentiates -|x| (no overflow for x = -1000), and softmax
subtracts the maximum over the axis first (exp(1000) would be inf; exp(0) is not).

Every forward returns ``(y, cache)`` and every backward takes ``(dy, cache)``, like the other ops.
"""
from __future__ import annotations

import numpy as np


def relu(x):
    """Rectified linear unit.

    x: any shape -> (y, cache); y = max(x, 0) with x's shape and dtype. The cache is y itself:
    y > 0 exactly where x > 0, which is all the backward pass needs.
    """
    y = np.maximum(x, 0)
    return y, y


def relu_backward(dy, cache):
    """dy: shape of y -> dx = dy where x > 0, else 0 (TensorFlow's ReluGrad also gives 0 at x = 0)."""
    y = cache
    return dy * (y > 0)


def sigmoid(x):
    """Logistic function, numerically stable.

    x: any shape -> (y, cache = y). With e = exp(-|x|) in (0, 1]:
        x >= 0: y = 1 / (1 + e)        x < 0: y = e / (1 + e)
    so exp never overflows and no warning is raised, even for |x| = 1e4. dtype is kept.
    """
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1, e) / (1 + e)
    return y, y


def sigmoid_backward(dy, cache):
    """dy: shape of y -> dx = dy * y * (1 - y)."""
    y = cache
    return dy * y * (1 - y)


def softmax(x, axis=-1):
    """Softmax over ``axis`` (the channels of an NHWC tensor by default).

    x: (..., K) -> (y, cache = (y, axis)) with y >= 0 summing to 1 over ``axis``.
    The maximum is subtracted first: softmax(x) = softmax(x - c) for any c, and exp(x - max) <= 1.
    """
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    y = e / e.sum(axis=axis, keepdims=True)
    return y, (y, axis)


def softmax_backward(dy, cache):
    """dy: shape of y -> dx = y * (dy - sum(dy * y, axis)), the Jacobian-vector product."""
    y, axis = cache
    return y * (dy - np.sum(dy * y, axis=axis, keepdims=True))


def linear(x):
    """Identity: (x, None). Keras's ``activation=None`` or ``"linear"``."""
    return x, None


def linear_backward(dy, cache):
    """Identity: dx = dy."""
    return dy


ACTIVATIONS = {
    "relu": (relu, relu_backward),
    "sigmoid": (sigmoid, sigmoid_backward),
    "softmax": (softmax, softmax_backward),
    "linear": (linear, linear_backward),
    None: (linear, linear_backward),
}


def get_activation(name):
    """(forward, backward) for an activation name, as Keras spells it; None or "linear" is the identity.

    >>> fwd, bwd = get_activation("relu")
    """
    if name is not None and not isinstance(name, str):
        raise TypeError(f"activation must be a name (str) or None, got {type(name).__name__}; "
                        f"choose one of {_choices()}")
    key = name.lower() if isinstance(name, str) else None
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {_choices()}")
    return ACTIVATIONS[key]


def _choices() -> str:
    return ", ".join(repr(k) for k in ACTIVATIONS)
