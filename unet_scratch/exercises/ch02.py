"""Chapter 02's exercises: ReLU's backward pass, 2x2 max pooling forward and its backward routing."""
from __future__ import annotations

import numpy as np

from ..ops.activations import relu, relu_backward
from ..ops.pool import maxpool2d, maxpool2d_backward
from .base import check_arrays as _check_arrays


def _relu_cases(rng):
    x_tie = np.array([[-1.0, 0.0, 0.5], [2.0, 0.0, -3.0]])         # exact zeros: the derivative there is 0
    cases = []
    for x, label in [(x_tie, "x with exact zeros"), (rng.standard_normal((2, 4, 4, 3)), "random (2, 4, 4, 3)"),
                     (np.maximum(rng.standard_normal((1, 5, 5, 2)), 0), "x = relu(previous), many zeros")]:
        dy = rng.standard_normal(x.shape)
        cases.append(((dy, x), relu_backward(dy, relu(x)[1]), label))
    return cases


def check_relu_backward(fn):
    """fn(dy, x) -> dx: the gradient of relu at x, dy where x > 0 and 0 elsewhere (also 0 at x == 0)."""
    return _check_arrays(fn, _relu_cases(np.random.default_rng(2)), "relu_backward", rtol=0, atol=0)


def _pool_inputs(rng):
    tie = np.array([[0, 0, 1, 3], [0, 0, 3, 1], [2, 5, 5, 5], [5, 1, 5, 5]], float)[None, :, :, None]
    return [(rng.standard_normal((1, 4, 4, 1)), "random (1, 4, 4, 1)"),
            (rng.standard_normal((2, 6, 4, 3)), "random (2, 6, 4, 3)"),
            (rng.standard_normal((1, 5, 7, 2)), "odd size (1, 5, 7, 2): last row/column dropped"),
            (tie, "ties (1, 4, 4, 1): first maximum in row-major order wins"),
            (np.maximum(rng.standard_normal((1, 6, 6, 2)), 0).round(1), "after a ReLU, many tied zeros")]


def check_maxpool2x2(fn):
    """fn(x) -> y: 2x2 max pooling with stride 2, 'valid' (x: (N, H, W, C) -> (N, H//2, W//2, C))."""
    cases = [((x,), maxpool2d(x)[0], label) for x, label in _pool_inputs(np.random.default_rng(3))]
    return _check_arrays(fn, cases, "maxpool2x2", rtol=0, atol=0)


def check_maxpool2x2_backward(fn):
    """fn(dy, x) -> dx: the gradient of 2x2 stride-2 'valid' max pooling. Each dy goes to its window's
    FIRST maximum in row-major order (TensorFlow's rule on ties); every other pixel gets 0."""
    rng = np.random.default_rng(4)
    cases = []
    for x, label in _pool_inputs(rng):
        y, cache = maxpool2d(x)
        dy = rng.standard_normal(y.shape)
        cases.append(((dy, x), maxpool2d_backward(dy, cache), label))
    return _check_arrays(fn, cases, "maxpool2x2_backward", rtol=0, atol=1e-12)
