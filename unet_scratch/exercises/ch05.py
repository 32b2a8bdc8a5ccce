"""Chapter 05's exercises: central differences, the relative error, and the backward pass of a tiny "U"
(an encoder, a bottleneck and a decoder that concatenates a skip), where the skip's gradient is added to
the gradient coming back up the deep path."""
from __future__ import annotations

import numpy as np

from ..gradcheck import rel_error
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. central differences
def _restores_x(fn, what):
    """Run fn(f, x, h) on a copy of x and fail if the student's function left x changed."""
    def wrapped(f, x, h):
        work = x.copy()
        out = fn(f, work, h)
        if not np.array_equal(work, x):
            raise AssertionError(f"{what}: x was changed by the call; put each entry back after "
                                 f"perturbing it (x[i] = old)")
        return out
    return wrapped


def check_central_difference(fn):
    """fn(f, x, h) -> gradient of the scalar function f at x (an array shaped like x) by central
    differences (f(x + h e_i) - f(x - h e_i)) / 2h; x must be left as it was. Compared with the exact
    gradient: central differences are accurate to O(h^2), forward differences only to O(h)."""
    rng = np.random.default_rng(5)
    x1 = rng.standard_normal((3, 4))
    x2 = rng.standard_normal((2, 2, 3))
    w = rng.standard_normal((2, 2, 3))
    x3 = rng.standard_normal(5)
    a = rng.standard_normal((5, 5))
    cases = [((lambda x: float(np.sum(x ** 3)), x1, 1e-5), 3 * x1 ** 2, "f = sum(x**3), x (3, 4)"),
             ((lambda x: float(np.sum(w * np.sin(x))), x2, 1e-5), w * np.cos(x2), "f = sum(w sin x), x (2, 2, 3)"),
             ((lambda x: float(x @ a @ x), x3, 1e-5), (a + a.T) @ x3, "f = x^T A x, x (5,)")]
    return _check_arrays(_restores_x(fn, "central_difference"), cases, "central_difference",
                         rtol=1e-7, atol=1e-8)


# ------------------------------------------------------------------ 2. the relative error
def check_rel_error(fn):
    """fn(a, b) -> ||a - b|| / max(||a|| + ||b||, 1e-30) (Frobenius norms), a float in [0, 1]; 0 when
    both are zero."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 3))
    cases = [(a, a), (a, a + 1e-6 * rng.standard_normal(a.shape)), (a, -a), (a, 2 * a),
             (np.zeros(3), np.zeros(3)), (np.zeros(3), np.ones(3)), (np.array([1e-12, 0.0]), np.array([0.0, 1e-12]))]
    what = "relative_error"
    for k, (x, y) in enumerate(cases):
        try:
            got = fn(x, y)
        except NotImplementedError:
            raise AssertionError(f"{what}: not implemented yet (replace `raise NotImplementedError`)") from None
        expected = rel_error(x, y)
        if got is None or not np.isfinite(got) or not np.isclose(got, expected, rtol=1e-9, atol=1e-15):
            raise AssertionError(f"{what} (case {k}: a of shape {x.shape}, {_describe(k)}): expected "
                                 f"{expected:.6g}, got {got!r}")
        if not np.isclose(fn(y, x), got, rtol=1e-12, atol=0):
            raise AssertionError(f"{what} (case {k}): rel_error(b, a) differs from rel_error(a, b); the "
                                 f"measure must be symmetric (divide by ||a|| + ||b||)")
    print(f"correct: {what} passes {len(cases)} cases")
    return True


def _describe(k):
    return ["b = a", "b = a + 1e-6 noise", "b = -a", "b = 2a", "both zero", "a zero, b ones",
            "tiny, different"][k]


# ------------------------------------------------------------------ 3. the backward pass of a tiny U
def mini_unet_forward(x, w1, w2, w3):
    """The tiny U of exercise 3.

    x: (N, D); w1: (D, H1); w2: (H1, H2); w3: (H2 + H1, K).
        h = relu(x @ w1)                 "encoder"     (N, H1)
        b = relu(h @ w2)                 "bottleneck"  (N, H2)
        y = concat([b, h]) @ w3          "decoder"     (N, K): the skip h joins b, as [up, skip]
    """
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    return np.concatenate([b, h], axis=1) @ w3


def _mini_unet_backward(x, w1, w2, w3, dy):
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    cat = np.concatenate([b, h], axis=1)
    dw3 = cat.T @ dy
    dcat = dy @ w3.T
    db, dh_skip = dcat[:, :b.shape[1]], dcat[:, b.shape[1]:]
    db_pre = db * (b > 0)
    dw2 = h.T @ db_pre
    dh = db_pre @ w2.T + dh_skip          # the fork: h went down the deep path AND across the skip
    dh_pre = dh * (h > 0)
    return dh_pre @ w1.T, x.T @ dh_pre, dw2, dw3


def check_mini_unet_backward(fn):
    """fn(x, w1, w2, w3, dy) -> (dx, dw1, dw2, dw3) for L = sum(mini_unet_forward(x, w1, w2, w3) * dy)."""
    rng = np.random.default_rng(5)
    cases = []
    for n, d, h1, h2, k, label in [(4, 3, 5, 6, 2, "N=4, D=3, H1=5, H2=6, K=2"),
                                    (2, 6, 4, 3, 1, "N=2, D=6, H1=4, H2=3, K=1"),
                                    (5, 2, 2, 7, 3, "N=5, D=2, H1=2, H2=7, K=3")]:
        args = (rng.standard_normal((n, d)), rng.standard_normal((d, h1)), rng.standard_normal((h1, h2)),
                rng.standard_normal((h2 + h1, k)), rng.standard_normal((n, k)))
        cases.append((args, _mini_unet_backward(*args), label))
    return _check_arrays(fn, cases, "mini_unet_backward", rtol=1e-9, atol=1e-12)

