"""Chapter 11's exercises (the capstone): every op of the U-Net with the reference ops' signatures, forward
``op(...) -> (y, cache)`` and backward ``op_backward(dy, cache)``, checked as a pair against
``unet_scratch.ops`` in float64 (each check names the classic mistakes of its op), and the parity report of
the whole network run with them, against Keras.

Dropout has the signature of chapter 05b's exercise: its check is ``ch05b.check_dropout``.
"""
from __future__ import annotations

import numpy as np

from .. import ops
from ..ops.conv import padding_amounts
from .base import Mistake, call_student, check_arrays

TOL = dict(rtol=1e-9, atol=1e-12)          # float64 inputs: a correct op agrees to rounding


NO_GRADIENT = np.zeros(0)     # stands for the gradients when the forward's output has the wrong shape


def _pair(forward, backward, what, n_grads, list_inputs=False):
    """run(*forward_args, dy) -> (y, *gradients): the student's forward, then their backward on its cache.
    When y's shape is not dy's, the backward is not called and the gradients are ``NO_GRADIENT``, so the
    check reports the shape (and the mistake that gives it) instead of a traceback."""
    def run(*args):
        fwd_args = list(args[:-1])
        if list_inputs:                             # concatenate(xs, axis): the inputs travel as a list
            fwd_args = [fwd_args[:-1], fwd_args[-1]]
        out = call_student(forward, tuple(fwd_args), what)
        if not isinstance(out, tuple) or len(out) != 2:
            raise AssertionError(f"{what}: the forward must return (y, cache), like the reference ops; got "
                                 f"{type(out).__name__}" + (f" of length {len(out)}" if isinstance(out, tuple)
                                                            else ""))
        y, cache = out
        if y is not None and np.shape(y) != np.shape(args[-1]):
            return (np.asarray(y), *[NO_GRADIENT] * n_grads)
        grads = call_student(backward, (args[-1], cache), what + "_backward")
        if grads is None or y is None:
            raise AssertionError(f"{what}: a function returned None; did you forget `return`?")
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        return (np.asarray(y), *(np.asarray(g) for g in grads))
    return run


def _reference(forward, backward, list_inputs=False):
    def answer(*args):
        fwd_args = list(args[:-1])
        if list_inputs:
            fwd_args = [fwd_args[:-1], fwd_args[-1]]
        y, cache = forward(*fwd_args)
        grads = backward(args[-1], cache)
        grads = tuple(grads) if isinstance(grads, (tuple, list)) else (grads,)
        return (y, *grads)
    return answer


# ------------------------------------------------------------------ 1. conv2d and its backward


def _conv_flipped(x, w, b, strides, padding, dy):
    y, cache = ops.conv2d(x, w[::-1, ::-1], b, strides, padding)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    return y, dx, dw[::-1, ::-1], db


def _conv_padded(x, w, b, strides, padding, dy, rule):
    """conv2d with the 'same' padding split by ``rule``: "before" (extra pixel first) or "symmetric"."""
    if padding != "same":
        raise ValueError("only 'same' padding has a split to get wrong")
    pads = []
    for n, k, s in ((x.shape[1], w.shape[0], strides[0]), (x.shape[2], w.shape[1], strides[1])):
        before, after = padding_amounts(n, k, s, "same")
        pads.append((after, before) if rule == "before" else (k // 2, k // 2))
    if rule == "before" and all(p[0] == p[1] for p in pads):
        raise ValueError("an even split: no difference")
    xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    y, cache = ops.conv2d(xp, w, b, strides, "valid")
    if y.shape != dy.shape:
        return y, NO_GRADIENT, NO_GRADIENT, NO_GRADIENT      # a different output size: the shape names it
    dxp, dw, db = ops.conv2d_backward(dy, cache)
    return y, dxp[:, pads[0][0]:xp.shape[1] - pads[0][1], pads[1][0]:xp.shape[2] - pads[1][1]], dw, db


def _conv_no_bias(x, w, b, strides, padding, dy):
    y, cache = ops.conv2d(x, w, None, strides, padding)
    dx, dw, _ = ops.conv2d_backward(dy, cache)
    return y, dx, dw, dy.sum(axis=(0, 1, 2))


CONV_MISTAKES = [
    Mistake("a true convolution (the kernel flipped)",
            "Keras's Conv2D computes a cross-correlation: y[i, j] = sum x_pad[i*s + a, j*s + q] w[a, q], "
            "no flip", _conv_flipped),
    Mistake("'same' padding with the extra pixel before",
            "TensorFlow pads the smaller half before and the larger half after: total // 2 before, the rest "
            "after (a 2x2 kernel, stride 1: 0 before, 1 after)",
            lambda *a: _conv_padded(*a, rule="before")),
    Mistake("symmetric padding k // 2 on both sides (PyTorch's padding=k//2)",
            "for an even kernel that makes the output one pixel larger; 'same' pads "
            "total = max((ceil(n / s) - 1) s + k - n, 0), total // 2 before and the rest after",
            lambda *a: _conv_padded(*a, rule="symmetric")),
    Mistake("the forward pass without the bias", "add b[f] to every output of filter f", _conv_no_bias),
]


def check_conv2d(conv2d, conv2d_backward):
    """conv2d(x, w, b, strides, padding) -> (y, cache) and conv2d_backward(dy, cache) -> (dx, dw, db), as
    ``ops.conv2d``: x (N, H, W, C), w (KH, KW, C, F), b (F,), strides a pair, padding 'same' or 'valid'."""
    rng = np.random.default_rng(110)
    cases = []
    for xs, ws, strides, padding, label in [
            ((2, 6, 7, 3), (3, 3, 3, 4), (1, 1), "same", "3x3, stride 1, same (the U-Net's convs)"),
            ((1, 5, 5, 2), (2, 2, 2, 3), (1, 1), "same", "2x2, stride 1, same (even kernel: pad 0 before, 1 after)"),
            ((2, 7, 8, 3), (3, 3, 3, 2), (2, 2), "valid", "3x3, stride 2, valid"),
            ((1, 7, 6, 2), (3, 3, 2, 2), (2, 2), "same", "3x3, stride 2, same, 7 x 6 input"),
            ((2, 4, 4, 5), (1, 1, 5, 1), (1, 1), "valid", "1x1 (the head)")]:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[-1])
        y, _ = ops.conv2d(x, w, b, strides, padding)
        args = (x, w, b, strides, padding, rng.standard_normal(y.shape))
        cases.append((args, _reference(ops.conv2d, ops.conv2d_backward)(*args), label))
    return check_arrays(_pair(conv2d, conv2d_backward, "conv2d", 3), cases, "conv2d and conv2d_backward",
                        mistakes=CONV_MISTAKES, **TOL)


# ------------------------------------------------------------------ 2. max pooling


def _pool_backward_rule(x, y, dy, rule):
    n, oh, ow, c = y.shape
    dx = np.zeros_like(x)
    for i in range(oh):
        for j in range(ow):
            win = x[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :]
            hit = win == y[:, i:i + 1, j:j + 1, :]
            if rule == "last":                       # keep only the last maximum in row-major order
                flat = hit.reshape(n, 4, c)
                last = 3 - np.argmax(flat[:, ::-1], axis=1)
                hit = (np.arange(4)[None, :, None] == last[:, None, :]).reshape(n, 2, 2, c)
            dx[:, 2 * i:2 * i + 2, 2 * j:2 * j + 2, :] += hit * dy[:, i:i + 1, j:j + 1, :]
    return dx


def _pool_mistake(rule):
    def answer(x, pool_size, strides, padding, dy):
        y, _ = ops.maxpool2d(x, pool_size, strides, padding)
        return y, _pool_backward_rule(x, y, dy, rule)
    return answer


def _pool_ceil(x, pool_size, strides, padding, dy):
    y, cache = ops.maxpool2d(x, pool_size, strides, "same")
    if y.shape == dy.shape:
        raise ValueError("even sizes: no difference")
    return y, NO_GRADIENT


POOL_MISTAKES = [
    Mistake("the gradient sent to every tied maximum (a mask x == max)",
            "TensorFlow sends each window's gradient to ONE input, its first maximum in row-major order "
            "(np.argmax over the flattened window); ties are common after a ReLU (all-zero windows)",
            _pool_mistake("all")),
    Mistake("the gradient sent to the last tied maximum",
            "take the FIRST maximum in row-major order, as np.argmax does", _pool_mistake("last")),
    Mistake("the odd last row and column pooled too (ceil instead of floor)",
            "'valid' pooling drops the last row or column that does not fill a window: OH = (H - 2) // 2 + 1",
            _pool_ceil),
]


def check_maxpool2d(maxpool2d, maxpool2d_backward):
    """maxpool2d(x, pool_size, strides, padding) -> (y, cache) and maxpool2d_backward(dy, cache) -> dx, as
    ``ops.maxpool2d`` for the U-Net's 2x2 windows, stride 2, 'valid' (odd sizes floored), with ties."""
    rng = np.random.default_rng(111)
    cases = []
    for shape, label in [((2, 6, 6, 3), "x (2, 6, 6, 3) after a ReLU: many tied zeros"),
                         ((1, 5, 7, 2), "x (1, 5, 7, 2): odd sizes, the last row and column dropped"),
                         ((2, 4, 4, 4), "x (2, 4, 4, 4): small integers, ties at the maximum")]:
        x = np.maximum(rng.integers(-3, 3, shape), 0).astype(np.float64)
        if "integers" not in label:
            x = np.where(x > 0, x + rng.random(shape), 0.0)      # ties only among the zeros
        y, _ = ops.maxpool2d(x, (2, 2), (2, 2), "valid")
        args = (x, (2, 2), (2, 2), "valid", rng.standard_normal(y.shape))
        cases.append((args, _reference(ops.maxpool2d, ops.maxpool2d_backward)(*args), label))
    return check_arrays(_pair(maxpool2d, maxpool2d_backward, "maxpool2d", 1), cases,
                        "maxpool2d and maxpool2d_backward", mistakes=POOL_MISTAKES, **TOL)


# ------------------------------------------------------------------ 3. transposed convolution


def _transpose_with(kernel_map, grad_map):
    def answer(x, w, b, strides, padding, dy):
        y, cache = ops.conv2d_transpose(x, kernel_map(w), b, strides, padding)
        dx, dw, db = ops.conv2d_transpose_backward(dy, cache)
        return y, dx, grad_map(dw), db
    return answer


def _transpose_torch_crop(x, w, b, strides, padding, dy):
    kh, kw = w.shape[:2]
    if (kh, kw) != (3, 3) or tuple(strides) != (2, 2) or padding != "same":
        raise ValueError("PyTorch's padding=1, output_padding=1 crop is the k = 3, s = 2 case")
    full, cache = ops.conv2d_transpose(x, w, b, strides, "valid")           # (N, 2H + 1, 2W + 1, F)
    oh, ow = 2 * x.shape[1], 2 * x.shape[2]
    dfull = np.zeros_like(full)
    dfull[:, 1:1 + oh, 1:1 + ow] = dy
    dx, dw, db = ops.conv2d_transpose_backward(dfull, cache)
    return full[:, 1:1 + oh, 1:1 + ow], dx, dw, db


def _transpose_no_bias(x, w, b, strides, padding, dy):
    y, cache = ops.conv2d_transpose(x, w, None, strides, padding)
    dx, dw, _ = ops.conv2d_transpose_backward(dy, cache)
    return y, dx, dw, dy.sum(axis=(0, 1, 2))


def _kernel_as_conv(w):
    if w.shape[2] != w.shape[3]:
        raise ValueError("only a square channel map reads both ways")
    return w.transpose(0, 1, 3, 2)


TRANSPOSE_MISTAKES = [
    Mistake("the kernel flipped",
            "the transposed convolution stamps the UNFLIPPED kernel: full[i*s + a, j*s + q] += x[i, j] w[a, q]",
            _transpose_with(lambda w: w[::-1, ::-1], lambda dw: dw[::-1, ::-1])),
    Mistake("the kernel read as (KH, KW, C_in, F)",
            "Keras stores a Conv2DTranspose kernel as (KH, KW, F, C_in), output channels first: the stamp of "
            "x[i, j] (C_in,) is w[a, q] @ x[i, j], giving F values",
            _transpose_with(_kernel_as_conv, _kernel_as_conv)),
    Mistake("PyTorch's crop for k = 3, s = 2 (padding=1, output_padding=1 keeps full[1:2H+1])",
            "Keras keeps full[0:2H] for a 3x3 kernel with stride 2 and 'same': the output starts "
            "max(k - s, 0) // 2 pixels into the full scatter canvas", _transpose_torch_crop),
    Mistake("the forward pass without the bias", "add b[f] to every output of filter f", _transpose_no_bias),
]


def check_conv2d_transpose(conv2d_transpose, conv2d_transpose_backward):
    """conv2d_transpose(x, w, b, strides, padding) -> (y, cache) and conv2d_transpose_backward(dy, cache)
    -> (dx, dw, db), as ``ops.conv2d_transpose``: x (N, H, W, C_in), w (KH, KW, F, C_in), b (F,)."""
    rng = np.random.default_rng(112)
    cases = []
    for xs, ws, strides, padding, label in [
            ((1, 3, 3, 2), (3, 3, 2, 2), (2, 2), "same", "3x3, stride 2, same: keeps full[0:2H]"),
            ((2, 3, 4, 3), (2, 2, 5, 3), (2, 2), "same", "2x2, stride 2, same (the U-Net's up-conv)"),
            ((1, 4, 4, 2), (3, 3, 3, 2), (1, 1), "valid", "3x3, stride 1, valid"),
            ((2, 3, 3, 2), (4, 4, 2, 2), (2, 2), "same", "4x4, stride 2, same: keeps full[1:2H+1]")]:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[2])
        y, _ = ops.conv2d_transpose(x, w, b, strides, padding)
        args = (x, w, b, strides, padding, rng.standard_normal(y.shape))
        cases.append((args, _reference(ops.conv2d_transpose, ops.conv2d_transpose_backward)(*args), label))
    return check_arrays(_pair(conv2d_transpose, conv2d_transpose_backward, "conv2d_transpose", 3), cases,
                        "conv2d_transpose and conv2d_transpose_backward", mistakes=TRANSPOSE_MISTAKES, **TOL)


# ------------------------------------------------------------------ 4. ReLU and sigmoid


RELU_MISTAKES = [
    Mistake("gradient 1 at x = 0 (a mask x >= 0)",
            "TensorFlow's ReluGrad gives 0 at x = 0 exactly: dx = dy * (x > 0)",
            lambda x, dy: (np.maximum(x, 0), dy * (x >= 0))),
    Mistake("the mask taken from dy instead of x",
            "ReLU lets the gradient through where its INPUT was positive: dx = dy * (x > 0)",
            lambda x, dy: (np.maximum(x, 0), dy * (dy > 0))),
    Mistake("the mask forgotten (dx = dy)", "multiply by the derivative, 1 where x > 0 and 0 elsewhere",
            lambda x, dy: (np.maximum(x, 0), dy)),
]


def _relu_cases(rng):
    x = rng.standard_normal((2, 4, 5, 3))
    x[x < -1] = 0.0                                            # exact zeros: the derivative's edge case
    x2 = rng.integers(-2, 3, (3, 6)).astype(np.float64)
    return [((x, rng.standard_normal(x.shape)), "x (2, 4, 5, 3) with exact zeros"),
            ((x2, rng.standard_normal(x2.shape)), "x (3, 6), small integers")]


def check_relu(relu, relu_backward):
    """relu(x) -> (y, cache), relu_backward(dy, cache) -> dx, as ``ops.relu`` (gradient 0 at x = 0)."""
    cases = [(args, _reference(ops.relu, ops.relu_backward)(*args), label)
             for args, label in _relu_cases(np.random.default_rng(113))]
    return check_arrays(_pair(relu, relu_backward, "relu", 1), cases, "relu and relu_backward",
                        mistakes=RELU_MISTAKES, **TOL)


def _sigmoid(x):
    return ops.sigmoid(x)[0]


SIGMOID_MISTAKES = [
    Mistake("the derivative written with x instead of y (dy x (1 - x))",
            "sigma'(x) = y (1 - y) with y = sigmoid(x): keep y in the cache",
            lambda x, dy: (_sigmoid(x), dy * x * (1 - x))),
    Mistake("the upstream gradient forgotten (dx = y (1 - y))", "multiply by dy: dx = dy * y * (1 - y)",
            lambda x, dy: (_sigmoid(x), _sigmoid(x) * (1 - _sigmoid(x)))),
    Mistake("the derivative y (1 - y) forgotten (dx = dy y)", "dx = dy * y * (1 - y)",
            lambda x, dy: (_sigmoid(x), dy * _sigmoid(x))),
]


def check_sigmoid(sigmoid, sigmoid_backward):
    """sigmoid(x) -> (y, cache), sigmoid_backward(dy, cache) -> dx, as ``ops.sigmoid``; also for x = -1000
    and 1000, without overflow warnings (compute exp(-|x|), never exp(-x) of a large negative x)."""
    rng = np.random.default_rng(114)
    x1 = 3 * rng.standard_normal((2, 4, 4, 1))
    x2 = np.array([[-1000.0, -30.0, 0.0, 30.0, 1000.0]])
    cases = [((x, rng.standard_normal(x.shape)), label) for x, label in
             [(x1, "x (2, 4, 4, 1) (a head's logits)"), (x2, "x = -1000, -30, 0, 30, 1000")]]
    cases = [(args, _reference(ops.sigmoid, ops.sigmoid_backward)(*args), label) for args, label in cases]
    run = _pair(sigmoid, sigmoid_backward, "sigmoid", 1)

    def guarded(x, dy):
        try:
            with np.errstate(over="raise"):
                return run(x, dy)
        except FloatingPointError:
            raise AssertionError("sigmoid (x = -1000 ... 1000): np.exp overflowed (in plain NumPy, a "
                                 "RuntimeWarning and an inf): 1 / (1 + exp(-x)) computes exp(1000) for "
                                 "x = -1000. Exponentiate only -|x|: e = exp(-|x|), y = 1 / (1 + e) where "
                                 "x >= 0, e / (1 + e) where x < 0") from None
    return check_arrays(guarded, cases, "sigmoid and sigmoid_backward", mistakes=SIGMOID_MISTAKES, **TOL)


# ------------------------------------------------------------------ 5. concatenation


CONCAT_MISTAKES = [
    Mistake("the gradient's halves swapped (dskip first)",
            "the split follows the forward's order [up, skip]: dup = dy[..., :C_up], dskip = dy[..., C_up:]",
            lambda a, b, axis, dy: (np.concatenate([a, b], axis), dy[..., b.shape[-1]:], dy[..., :b.shape[-1]])),
    Mistake("a split in two equal halves",
            "split at the first input's channel count, C_up, not at C / 2: the inputs may differ in width",
            lambda a, b, axis, dy: (np.concatenate([a, b], axis), *np.split(dy, 2, axis=-1))),
    Mistake("the inputs concatenated as [skip, up]",
            "keep the order you are given: the article's code concatenates [up, skip] (zhixuhao's [skip, up])",
            lambda a, b, axis, dy: (np.concatenate([b, a], axis), dy[..., b.shape[-1]:], dy[..., :b.shape[-1]])),
]


def check_concatenate(concatenate, concatenate_backward):
    """concatenate(xs, axis) -> (y, cache), concatenate_backward(dy, cache) -> [dx_1, dx_2], as
    ``ops.concatenate`` for two NHWC inputs along the channels (axis -1)."""
    rng = np.random.default_rng(115)
    cases = []
    for (ca, cb), label in [((3, 5), "up (2, 4, 4, 3), skip (2, 4, 4, 5)"), ((2, 2), "two inputs of 2 channels"),
                            ((4, 2), "up (2, 4, 4, 4), skip (2, 4, 4, 2)")]:
        a, b = rng.standard_normal((2, 4, 4, ca)), rng.standard_normal((2, 4, 4, cb))
        dy = rng.standard_normal((2, 4, 4, ca + cb))
        args = (a, b, -1, dy)
        cases.append((args, _reference(ops.concatenate, ops.concatenate_backward, list_inputs=True)(*args), label))
    return check_arrays(_pair(concatenate, concatenate_backward, "concatenate", 2, list_inputs=True), cases,
                        "concatenate and concatenate_backward", mistakes=CONCAT_MISTAKES, **TOL)


# ------------------------------------------------------------------ the whole network against Keras


def check_parity(report, tol=1e-5):
    """A ``keras_ref.compare`` report of the U-Net run with the student's ops: every layer's output
    within rtol = atol = tol of Keras's, every weight gradient (teacher-forced) within a relative error
    ||a - b|| / ||b|| of tol. Prints the verdict with the tolerance as the bound; raises naming the
    worst row otherwise."""
    forward = [r for r in report.rows if r.kind == "forward"]
    grads = [r for r in report.rows if r.kind == "gradient"]
    bad = [r for r in report.rows if not r.passed]
    worst_g = max(grads, key=lambda r: r.rel)
    if bad:
        raise AssertionError(f"{len(bad)} rows of the parity report fail, the first {bad[0].name} ({bad[0].kind}, "
                             f"max abs error {bad[0].max_abs:.3g}, relative {bad[0].rel:.3g}): run that layer's "
                             f"op check again, then compare its output by hand")
    if worst_g.rel > tol:
        raise AssertionError(f"the gradient of {worst_g.name} differs from Keras's by {worst_g.rel:.3g} "
                             f"(relative), more than {tol:g}")
    print(f"forward: all {len(forward)} layer outputs within rtol = atol = {tol:g} of Keras's")
    print(f"backward (teacher-forced): all {len(grads)} weight gradients within a relative error of "
          f"{tol:g} of Keras's")
    return True
