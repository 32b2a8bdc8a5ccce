"""Numerical gradients by central differences, and the error measures used to compare gradients.

The analytic backward pass of every op is checked against

    df/dx_i ~ (f(x + h e_i) - f(x - h e_i)) / (2 h)

in float64, where the truncation error is O(h^2) and the rounding error O(eps / h), so h = 1e-5 gives
relative errors near 1e-10 on smooth functions.
"""
from __future__ import annotations

import numpy as np


def rel_error(a, b, eps: float = 1e-30) -> float:
    """Norm-based relative error ``||a - b|| / max(||a|| + ||b||, eps)`` (0 when both are zero).

    a, b: arrays of the same shape. Returns a float in [0, 1].
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"rel_error: shapes differ, {a.shape} vs {b.shape}")
    num = np.linalg.norm((a - b).ravel())
    den = np.linalg.norm(a.ravel()) + np.linalg.norm(b.ravel())
    return float(num / max(den, eps))


def max_rel_error(a, b, eps: float = 1e-8) -> float:
    """CS231n's element-wise relative error ``max |a - b| / max(|a| + |b|, eps)``."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"max_rel_error: shapes differ, {a.shape} vs {b.shape}")
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b) / np.maximum(eps, np.abs(a) + np.abs(b))))


def numeric_gradient(f, x: np.ndarray, dy=None, h: float = 1e-5, indices=None) -> np.ndarray:
    """Gradient of ``L(x) = sum(f(x) * dy)`` with respect to ``x`` by central differences.

    f: a function of ``x`` returning an array (or a scalar when ``dy`` is None).
    x: the array to perturb, modified in place during the call and restored afterwards.
    dy: upstream gradient with the shape of ``f(x)``; None means ``f`` returns a scalar loss.
    indices: optional iterable of index tuples; only those entries are computed (the rest stay 0),
        for spot checks of large tensors.
    Returns an array shaped like ``x``.
    """
    def loss() -> float:
        out = f(x)
        if dy is None:
            return float(np.sum(out))
        return float(np.sum(np.asarray(out, dtype=np.float64) * dy))

    grad = np.zeros(x.shape, dtype=np.float64)
    if indices is None:
        indices = np.ndindex(*x.shape)
    for i in indices:
        old = x[i]
        x[i] = old + h
        plus = loss()
        x[i] = old - h
        minus = loss()
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad


def sample_indices(shape, count: int, rng) -> list:
    """``count`` distinct random index tuples into an array of ``shape`` (all of them if fewer)."""
    size = int(np.prod(shape))
    flat = rng.choice(size, size=min(count, size), replace=False)
    return [tuple(int(v) for v in np.unravel_index(i, shape)) for i in flat]
