"""Chapter 11's (the capstone's) op checks accept right answers, reject stubs, and name each classic mistake
when fed a real implementation of it; check_parity passes a good parity report and fails a bad one."""
import math

import numpy as np
import pytest

from unet_scratch import ops
from unet_scratch.exercises.ch11 import (check_concatenate, check_conv2d, check_conv2d_transpose,
                                         check_maxpool2d, check_parity, check_relu, check_sigmoid)
from unet_scratch.frameworks.parity import ParityReport, Row

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


# ------------------------------------------------------------------ a student's convolution, with switches
def make_conv(flip=False, pad_rule="tf", bias=True):
    def pads_for(n, k, s):
        total = max((math.ceil(n / s) - 1) * s + k - n, 0)
        if pad_rule == "before":
            return total - total // 2, total // 2
        if pad_rule == "symmetric":
            return k // 2, k // 2
        return total // 2, total - total // 2

    def conv2d(x, w, b, strides, padding):
        w_used = w[::-1, ::-1] if flip else w
        kh, kw, c, f = w.shape
        sh, sw = strides
        pads = ((0, 0), (0, 0)) if padding == "valid" else (pads_for(x.shape[1], kh, sh),
                                                             pads_for(x.shape[2], kw, sw))
        xp = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
        n, hp, wp, _ = xp.shape
        oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
        y = np.zeros((n, oh, ow, f))
        for a in range(kh):
            for q in range(kw):
                y += xp[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] @ w_used[a, q]
        if bias:
            y = y + b
        return y, (xp, pads, w_used, strides)

    def conv2d_backward(dy, cache):
        xp, pads, w_used, (sh, sw) = cache
        kh, kw = w_used.shape[:2]
        oh, ow = dy.shape[1:3]
        dxp, dw = np.zeros_like(xp), np.zeros_like(w_used)
        for a in range(kh):
            for q in range(kw):
                win = (slice(None), slice(a, a + sh * (oh - 1) + 1, sh), slice(q, q + sw * (ow - 1) + 1, sw))
                dxp[win] += dy @ w_used[a, q].T
                dw[a, q] = xp[win].reshape(-1, xp.shape[-1]).T @ dy.reshape(-1, dy.shape[-1])
        (t, bt), (l, r) = pads
        dx = dxp[:, t:xp.shape[1] - bt, l:xp.shape[2] - r]
        return dx, (dw[::-1, ::-1] if flip else dw), dy.sum(axis=(0, 1, 2))
    return conv2d, conv2d_backward


def test_conv_accepts_a_loop_implementation_and_names_each_mistake():
    assert check_conv2d(*make_conv())
    for kwargs, name in [(dict(flip=True), "a true convolution"),
                         (dict(pad_rule="before"), "the extra pixel before"),
                         (dict(pad_rule="symmetric"), r"symmetric padding k // 2"),
                         (dict(bias=False), "without the bias")]:
        with pytest.raises(AssertionError, match=name):
            check_conv2d(*make_conv(**kwargs))


# ------------------------------------------------------------------ max pooling
def make_pool(rule="first", ceil=False):
    def maxpool2d(x, pool_size, strides, padding):
        n, h, w, c = x.shape
        if ceil:
            x = np.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), constant_values=-np.inf)
            h, w = x.shape[1:3]
        oh, ow = h // 2, w // 2
        win = x[:, :2 * oh, :2 * ow].reshape(n, oh, 2, ow, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, oh, ow, c, 4)
        return win.max(-1), (win, x.shape)

    def maxpool2d_backward(dy, cache):
        win, shape = cache
        n, oh, ow, c, _ = win.shape
        top = win.max(-1, keepdims=True)
        if rule == "all":
            hit = win == top
        else:
            order = np.arange(4) if rule == "first" else np.arange(4)[::-1]
            k = order[np.argmax((win == top)[..., order], axis=-1)]
            hit = np.arange(4) == k[..., None]
        d = (hit * dy[..., None]).reshape(n, oh, ow, c, 2, 2).transpose(0, 1, 4, 2, 5, 3)
        dx = np.zeros(shape)
        dx[:, :2 * oh, :2 * ow] = d.reshape(n, 2 * oh, 2 * ow, c)
        return dx
    return maxpool2d, maxpool2d_backward


def test_pool_accepts_a_reshape_implementation_and_names_each_mistake():
    assert check_maxpool2d(*make_pool())
    for kwargs, name in [(dict(rule="all"), "every tied maximum"), (dict(rule="last"), "last tied maximum"),
                         (dict(ceil=True), "odd last row and column pooled too")]:
        with pytest.raises(AssertionError, match=name):
            check_maxpool2d(*make_pool(**kwargs))


# ------------------------------------------------------------------ transposed convolution
def make_transpose(flip=False, as_conv_kernel=False, torch_crop=False, bias=True):
    def conv2d_transpose(x, w, b, strides, padding):
        n, h, wd, c = x.shape
        kh, kw = w.shape[:2]
        w_used = w[::-1, ::-1] if flip else w
        sh, sw = strides
        f = w.shape[2]
        full = np.zeros((n, (h - 1) * sh + kh, (wd - 1) * sw + kw, f))
        for a in range(kh):
            for q in range(kw):
                k = w_used[a, q] if as_conv_kernel else w_used[a, q].T        # (C, F) either way
                full[:, a:a + sh * (h - 1) + 1:sh, q:q + sw * (wd - 1) + 1:sw] += x @ k
        if padding == "same":
            oh, ow = h * sh, wd * sw
            top = 1 if torch_crop and kh == 3 else max(kh - sh, 0) // 2
            left = 1 if torch_crop and kw == 3 else max(kw - sw, 0) // 2
        else:
            oh, ow, top, left = full.shape[1], full.shape[2], 0, 0
        y = full[:, top:top + oh, left:left + ow]
        return (y + b if bias else y.copy()), (x, w_used, strides, full.shape, top, left)

    def conv2d_transpose_backward(dy, cache):
        x, w_used, (sh, sw), full_shape, top, left = cache
        n, h, wd, c = x.shape
        kh, kw = w_used.shape[:2]
        dfull = np.zeros(full_shape)
        dfull[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
        dx, dw = np.zeros_like(x), np.zeros_like(w_used)
        for a in range(kh):
            for q in range(kw):
                d = dfull[:, a:a + sh * (h - 1) + 1:sh, q:q + sw * (wd - 1) + 1:sw]
                k = w_used[a, q] if as_conv_kernel else w_used[a, q].T
                dx += d @ k.T
                g = x.reshape(-1, c).T @ d.reshape(-1, d.shape[-1])               # (C, F)
                dw[a, q] = g if as_conv_kernel else g.T
        return dx, (dw[::-1, ::-1] if flip else dw), dy.sum(axis=(0, 1, 2))
    return conv2d_transpose, conv2d_transpose_backward


def test_transpose_accepts_a_scatter_add_and_names_each_mistake():
    assert check_conv2d_transpose(*make_transpose())
    for kwargs, name in [(dict(flip=True), "the kernel flipped"),
                         (dict(as_conv_kernel=True), r"kernel read as \(KH, KW, C_in, F\)"),
                         (dict(torch_crop=True), "PyTorch's crop"), (dict(bias=False), "without the bias")]:
        with pytest.raises(AssertionError, match=name):
            check_conv2d_transpose(*make_transpose(**kwargs))


# ------------------------------------------------------------------ activations
def test_relu_names_each_mistake():
    assert check_relu(lambda x: (np.maximum(x, 0), x), lambda dy, x: dy * (x > 0))
    for backward, name in [(lambda dy, x: dy * (x >= 0), "gradient 1 at x = 0"),
                           (lambda dy, x: dy * (dy > 0), "mask taken from dy"),
                           (lambda dy, x: dy.copy(), "mask forgotten")]:
        with pytest.raises(AssertionError, match=name):
            check_relu(lambda x: (np.maximum(x, 0), x), backward)


def stable_sigmoid(x):
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1, e) / (1 + e)
    return y, (x, y)


def test_sigmoid_names_each_mistake_and_the_overflow():
    assert check_sigmoid(stable_sigmoid, lambda dy, c: dy * c[1] * (1 - c[1]))
    for backward, name in [(lambda dy, c: dy * c[0] * (1 - c[0]), "written with x instead of y"),
                           (lambda dy, c: c[1] * (1 - c[1]), "upstream gradient forgotten"),
                           (lambda dy, c: dy * c[1], r"derivative y \(1 - y\) forgotten")]:
        with pytest.raises(AssertionError, match=name):
            check_sigmoid(stable_sigmoid, backward)

    def naive(x):
        y = 1 / (1 + np.exp(-x))
        return y, y
    with pytest.raises(AssertionError, match="np.exp overflowed"):
        check_sigmoid(naive, lambda dy, y: dy * y * (1 - y))


# ------------------------------------------------------------------ concatenation
def test_concatenate_names_each_mistake():
    def cat(xs, axis):
        return np.concatenate(xs, axis), xs[0].shape[-1]
    assert check_concatenate(cat, lambda dy, c: [dy[..., :c], dy[..., c:]])
    with pytest.raises(AssertionError, match="halves swapped"):
        check_concatenate(lambda xs, axis: (np.concatenate(xs, axis), xs[1].shape[-1]),
                          lambda dy, c: [dy[..., c:], dy[..., :c]])
    with pytest.raises(AssertionError, match="two equal halves"):
        check_concatenate(cat, lambda dy, c: np.split(dy, 2, axis=-1))
    with pytest.raises(AssertionError, match=r"as \[skip, up\]"):
        check_concatenate(lambda xs, axis: (np.concatenate(xs[::-1], axis), xs[1].shape[-1]),
                          lambda dy, c: [dy[..., c:], dy[..., :c]])


@pytest.mark.parametrize("check", [check_conv2d, check_maxpool2d, check_conv2d_transpose, check_relu,
                                   check_sigmoid, check_concatenate])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub, stub)


def test_the_reference_ops_pass(capsys):
    for check, name in [(check_conv2d, "conv2d"), (check_maxpool2d, "maxpool2d"),
                        (check_conv2d_transpose, "conv2d_transpose"), (check_relu, "relu"),
                        (check_sigmoid, "sigmoid"), (check_concatenate, "concatenate")]:
        assert check(getattr(ops, name), getattr(ops, name + "_backward"))
    assert capsys.readouterr().out.count("correct") == 6


def test_a_forward_that_returns_y_alone_is_told_the_signature():
    with pytest.raises(AssertionError, match=r"must return \(y, cache\)"):
        check_relu(lambda x: np.maximum(x, 0), lambda dy, c: dy)


# ------------------------------------------------------------------ the parity report
def _report(max_abs=1e-7, grad_rel=2e-6, passed=True):
    rows = [Row("enc1_conv1", "forward", (4, 4, 2), max_abs, 1e-7, passed),
            Row("enc1_conv1/kernel", "gradient", (3, 3, 1, 2), 1e-9, grad_rel, True)]
    return ParityReport(rows)


def test_check_parity_passes_a_good_report_and_names_the_first_bad_row(capsys):
    assert check_parity(_report())
    assert "all 1 layer outputs within rtol = atol = 1e-05" in capsys.readouterr().out
    with pytest.raises(AssertionError, match=r"1 rows of the parity report fail, the first enc1_conv1 \(forward"):
        check_parity(_report(max_abs=1e-3, passed=False))
    with pytest.raises(AssertionError, match=r"gradient of enc1_conv1/kernel differs .* more than 1e-05"):
        check_parity(_report(grad_rel=5e-5))
