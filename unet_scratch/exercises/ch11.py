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
from .base import Mistake, call_student, message, tr
from .base import check_arrays as _check_arrays

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
            length = (tr(f" of length {len(out)}", f"，长度为 {len(out)}") if isinstance(out, tuple) else "")
            raise AssertionError(tr(f"{what}: the forward must return (y, cache), like the reference ops; got "
                                    f"{type(out).__name__}" + length,
                                    f"{what}：前向函数必须像参考运算那样返回 (y, cache)；你返回的是 "
                                    f"{type(out).__name__}" + length))
        y, cache = out
        if y is not None and np.shape(y) != np.shape(args[-1]):
            return (np.asarray(y), *[NO_GRADIENT] * n_grads)
        grads = call_student(backward, (args[-1], cache), what + "_backward")
        if grads is None or y is None:
            raise AssertionError(tr(f"{what}: a function returned None; did you forget `return`?",
                                    f"{what}：有一个函数返回了 None；是不是忘了写 `return`？"))
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
            "no flip", _conv_flipped,
            zh=("真正的卷积（卷积核被翻转了）",
                "Keras 的 Conv2D 计算的是互相关：y[i, j] = sum x_pad[i*s + a, j*s + q] w[a, q]，不翻转")),
    Mistake("'same' padding with the extra pixel before",
            "TensorFlow pads the smaller half before and the larger half after: total // 2 before, the rest "
            "after (a 2x2 kernel, stride 1: 0 before, 1 after)",
            lambda *a: _conv_padded(*a, rule="before"),
            zh=("'same' 填充把多出的一个像素放在了前面",
                "TensorFlow 前面填较少的一半，后面填较多的一半：前面 total // 2 个，其余放在后面"
                "（2x2 卷积核、步幅 1：前面 0 个，后面 1 个）")),
    Mistake("symmetric padding k // 2 on both sides (PyTorch's padding=k//2)",
            "for an even kernel that makes the output one pixel larger; 'same' pads "
            "total = max((ceil(n / s) - 1) s + k - n, 0), total // 2 before and the rest after",
            lambda *a: _conv_padded(*a, rule="symmetric"),
            zh=("两边对称地各填 k // 2（PyTorch 的 padding=k//2）",
                "对偶数卷积核，这样输出会大一个像素；'same' 总共填 "
                "total = max((ceil(n / s) - 1) s + k - n, 0) 个像素，前面 total // 2 个，其余放在后面")),
    Mistake("the forward pass without the bias", "add b[f] to every output of filter f", _conv_no_bias,
            zh=("前向传播没有加偏置", "给滤波器 f 的每个输出都加上 b[f]")),
]


def check_conv2d(conv2d, conv2d_backward):
    """conv2d(x, w, b, strides, padding) -> (y, cache) and conv2d_backward(dy, cache) -> (dx, dw, db), as
    ``ops.conv2d``: x (N, H, W, C), w (KH, KW, C, F), b (F,), strides a pair, padding 'same' or 'valid'."""
    rng = np.random.default_rng(110)
    cases = []
    for xs, ws, strides, padding, label in [
            ((2, 6, 7, 3), (3, 3, 3, 4), (1, 1), "same",
             tr("3x3, stride 1, same (the U-Net's convs)", "3x3，步幅 1，same（U-Net 的卷积）")),
            ((1, 5, 5, 2), (2, 2, 2, 3), (1, 1), "same",
             tr("2x2, stride 1, same (even kernel: pad 0 before, 1 after)",
                "2x2，步幅 1，same（偶数卷积核：前面填 0 个，后面填 1 个）")),
            ((2, 7, 8, 3), (3, 3, 3, 2), (2, 2), "valid", tr("3x3, stride 2, valid", "3x3，步幅 2，valid")),
            ((1, 7, 6, 2), (3, 3, 2, 2), (2, 2), "same",
             tr("3x3, stride 2, same, 7 x 6 input", "3x3，步幅 2，same，7 x 6 的输入")),
            ((2, 4, 4, 5), (1, 1, 5, 1), (1, 1), "valid", tr("1x1 (the head)", "1x1（输出层）"))]:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[-1])
        y, _ = ops.conv2d(x, w, b, strides, padding)
        args = (x, w, b, strides, padding, rng.standard_normal(y.shape))
        cases.append((args, _reference(ops.conv2d, ops.conv2d_backward)(*args), label))
    return _check_arrays(_pair(conv2d, conv2d_backward, "conv2d", 3), cases, "conv2d and conv2d_backward",
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
            _pool_mistake("all"),
            zh=("梯度给了每个并列的最大值（用了掩码 x == max）",
                "TensorFlow 把每个窗口的梯度只交给一个输入，即按行优先顺序的第一个最大值"
                "（对展平的窗口取 np.argmax）；经过 ReLU 之后并列很常见（全零的窗口）")),
    Mistake("the gradient sent to the last tied maximum",
            "take the FIRST maximum in row-major order, as np.argmax does", _pool_mistake("last"),
            zh=("梯度给了最后一个并列的最大值", "取按行优先顺序的第一个最大值，与 np.argmax 相同")),
    Mistake("the odd last row and column pooled too (ceil instead of floor)",
            "'valid' pooling drops the last row or column that does not fill a window: OH = (H - 2) // 2 + 1",
            _pool_ceil,
            zh=("奇数尺寸的最后一行和最后一列也被池化了（向上取整而不是向下取整）",
                "'valid' 池化丢掉填不满一个窗口的最后一行或一列：OH = (H - 2) // 2 + 1")),
]


def check_maxpool2d(maxpool2d, maxpool2d_backward):
    """maxpool2d(x, pool_size, strides, padding) -> (y, cache) and maxpool2d_backward(dy, cache) -> dx, as
    ``ops.maxpool2d`` for the U-Net's 2x2 windows, stride 2, 'valid' (odd sizes floored), with ties."""
    rng = np.random.default_rng(111)
    cases = []
    for shape, integers, label in [
            ((2, 6, 6, 3), False, tr("x (2, 6, 6, 3) after a ReLU: many tied zeros",
                                     "x (2, 6, 6, 3)，经过 ReLU：很多并列的零")),
            ((1, 5, 7, 2), False, tr("x (1, 5, 7, 2): odd sizes, the last row and column dropped",
                                     "x (1, 5, 7, 2)：奇数尺寸，最后一行和最后一列被丢掉")),
            ((2, 4, 4, 4), True, tr("x (2, 4, 4, 4): small integers, ties at the maximum",
                                    "x (2, 4, 4, 4)：小整数，最大值处有并列"))]:
        x = np.maximum(rng.integers(-3, 3, shape), 0).astype(np.float64)
        if not integers:
            x = np.where(x > 0, x + rng.random(shape), 0.0)      # ties only among the zeros
        y, _ = ops.maxpool2d(x, (2, 2), (2, 2), "valid")
        args = (x, (2, 2), (2, 2), "valid", rng.standard_normal(y.shape))
        cases.append((args, _reference(ops.maxpool2d, ops.maxpool2d_backward)(*args), label))
    return _check_arrays(_pair(maxpool2d, maxpool2d_backward, "maxpool2d", 1), cases,
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
            _transpose_with(lambda w: w[::-1, ::-1], lambda dw: dw[::-1, ::-1]),
            zh=("翻转了卷积核",
                "转置卷积盖印的是没有翻转的卷积核：full[i*s + a, j*s + q] += x[i, j] w[a, q]")),
    Mistake("the kernel read as (KH, KW, C_in, F)",
            "Keras stores a Conv2DTranspose kernel as (KH, KW, F, C_in), output channels first: the stamp of "
            "x[i, j] (C_in,) is w[a, q] @ x[i, j], giving F values",
            _transpose_with(_kernel_as_conv, _kernel_as_conv),
            zh=("把卷积核读成了 (KH, KW, C_in, F)",
                "Keras 把 Conv2DTranspose 的卷积核存成 (KH, KW, F, C_in)，输出通道在前：x[i, j]（形状 (C_in,)）"
                "的印记是 w[a, q] @ x[i, j]，得到 F 个值")),
    Mistake("PyTorch's crop for k = 3, s = 2 (padding=1, output_padding=1 keeps full[1:2H+1])",
            "Keras keeps full[0:2H] for a 3x3 kernel with stride 2 and 'same': the output starts "
            "max(k - s, 0) // 2 pixels into the full scatter canvas", _transpose_torch_crop,
            zh=("k = 3、s = 2 时用了 PyTorch 的裁剪方式（padding=1, output_padding=1 保留 full[1:2H+1]）",
                "3x3 卷积核、步幅 2、'same' 时，Keras 保留 full[0:2H]：输出从完整的散射画布中第 "
                "max(k - s, 0) // 2 个像素开始")),
    Mistake("the forward pass without the bias", "add b[f] to every output of filter f", _transpose_no_bias,
            zh=("前向传播没有加偏置", "给滤波器 f 的每个输出都加上 b[f]")),
]


def check_conv2d_transpose(conv2d_transpose, conv2d_transpose_backward):
    """conv2d_transpose(x, w, b, strides, padding) -> (y, cache) and conv2d_transpose_backward(dy, cache)
    -> (dx, dw, db), as ``ops.conv2d_transpose``: x (N, H, W, C_in), w (KH, KW, F, C_in), b (F,)."""
    rng = np.random.default_rng(112)
    cases = []
    for xs, ws, strides, padding, label in [
            ((1, 3, 3, 2), (3, 3, 2, 2), (2, 2), "same",
             tr("3x3, stride 2, same: keeps full[0:2H]", "3x3，步幅 2，same：保留 full[0:2H]")),
            ((2, 3, 4, 3), (2, 2, 5, 3), (2, 2), "same",
             tr("2x2, stride 2, same (the U-Net's up-conv)", "2x2，步幅 2，same（U-Net 的上卷积）")),
            ((1, 4, 4, 2), (3, 3, 3, 2), (1, 1), "valid", tr("3x3, stride 1, valid", "3x3，步幅 1，valid")),
            ((2, 3, 3, 2), (4, 4, 2, 2), (2, 2), "same",
             tr("4x4, stride 2, same: keeps full[1:2H+1]", "4x4，步幅 2，same：保留 full[1:2H+1]"))]:
        x, w, b = rng.standard_normal(xs), rng.standard_normal(ws), rng.standard_normal(ws[2])
        y, _ = ops.conv2d_transpose(x, w, b, strides, padding)
        args = (x, w, b, strides, padding, rng.standard_normal(y.shape))
        cases.append((args, _reference(ops.conv2d_transpose, ops.conv2d_transpose_backward)(*args), label))
    return _check_arrays(_pair(conv2d_transpose, conv2d_transpose_backward, "conv2d_transpose", 3), cases,
                        "conv2d_transpose and conv2d_transpose_backward", mistakes=TRANSPOSE_MISTAKES, **TOL)


# ------------------------------------------------------------------ 4. ReLU and sigmoid


RELU_MISTAKES = [
    Mistake("gradient 1 at x = 0 (a mask x >= 0)",
            "TensorFlow's ReluGrad gives 0 at x = 0 exactly: dx = dy * (x > 0)",
            lambda x, dy: (np.maximum(x, 0), dy * (x >= 0)),
            zh=("在 x = 0 处梯度为 1（用了掩码 x >= 0）",
                "TensorFlow 的 ReluGrad 在 x 恰好为 0 时给 0：dx = dy * (x > 0)")),
    Mistake("the mask taken from dy instead of x",
            "ReLU lets the gradient through where its INPUT was positive: dx = dy * (x > 0)",
            lambda x, dy: (np.maximum(x, 0), dy * (dy > 0)),
            zh=("掩码取自 dy 而不是 x", "ReLU 在它的输入为正的地方让梯度通过：dx = dy * (x > 0)")),
    Mistake("the mask forgotten (dx = dy)", "multiply by the derivative, 1 where x > 0 and 0 elsewhere",
            lambda x, dy: (np.maximum(x, 0), dy),
            zh=("忘了掩码（dx = dy）", "乘以导数：x > 0 处为 1，其余为 0")),
]


def _relu_cases(rng):
    x = rng.standard_normal((2, 4, 5, 3))
    x[x < -1] = 0.0                                            # exact zeros: the derivative's edge case
    x2 = rng.integers(-2, 3, (3, 6)).astype(np.float64)
    return [((x, rng.standard_normal(x.shape)), tr("x (2, 4, 5, 3) with exact zeros", "x (2, 4, 5, 3)，含有恰好为 0 的值")),
            ((x2, rng.standard_normal(x2.shape)), tr("x (3, 6), small integers", "x (3, 6)，小整数"))]


def check_relu(relu, relu_backward):
    """relu(x) -> (y, cache), relu_backward(dy, cache) -> dx, as ``ops.relu`` (gradient 0 at x = 0)."""
    cases = [(args, _reference(ops.relu, ops.relu_backward)(*args), label)
             for args, label in _relu_cases(np.random.default_rng(113))]
    return _check_arrays(_pair(relu, relu_backward, "relu", 1), cases, "relu and relu_backward",
                        mistakes=RELU_MISTAKES, **TOL)


def _sigmoid(x):
    return ops.sigmoid(x)[0]


SIGMOID_MISTAKES = [
    Mistake("the derivative written with x instead of y (dy x (1 - x))",
            "sigma'(x) = y (1 - y) with y = sigmoid(x): keep y in the cache",
            lambda x, dy: (_sigmoid(x), dy * x * (1 - x)),
            zh=("导数用 x 而不是 y 来写（dy x (1 - x)）", "sigma'(x) = y (1 - y)，其中 y = sigmoid(x)：把 y 存进缓存")),
    Mistake("the upstream gradient forgotten (dx = y (1 - y))", "multiply by dy: dx = dy * y * (1 - y)",
            lambda x, dy: (_sigmoid(x), _sigmoid(x) * (1 - _sigmoid(x))),
            zh=("忘了乘上游梯度（dx = y (1 - y)）", "乘以 dy：dx = dy * y * (1 - y)")),
    Mistake("the derivative y (1 - y) forgotten (dx = dy y)", "dx = dy * y * (1 - y)",
            lambda x, dy: (_sigmoid(x), dy * _sigmoid(x)),
            zh=("忘了乘导数 y (1 - y)（dx = dy y）", "还要乘以导数：dx = dy * y * (1 - y)")),
]


def check_sigmoid(sigmoid, sigmoid_backward):
    """sigmoid(x) -> (y, cache), sigmoid_backward(dy, cache) -> dx, as ``ops.sigmoid``; also for x = -1000
    and 1000, without overflow warnings (compute exp(-|x|), never exp(-x) of a large negative x)."""
    rng = np.random.default_rng(114)
    x1 = 3 * rng.standard_normal((2, 4, 4, 1))
    x2 = np.array([[-1000.0, -30.0, 0.0, 30.0, 1000.0]])
    cases = [((x, rng.standard_normal(x.shape)), label) for x, label in
             [(x1, tr("x (2, 4, 4, 1) (a head's logits)", "x (2, 4, 4, 1)（输出层的 logits）")),
              (x2, "x = -1000, -30, 0, 30, 1000")]]
    cases = [(args, _reference(ops.sigmoid, ops.sigmoid_backward)(*args), label) for args, label in cases]
    run = _pair(sigmoid, sigmoid_backward, "sigmoid", 1)

    def guarded(x, dy):
        try:
            with np.errstate(over="raise"):
                return run(x, dy)
        except FloatingPointError:
            raise AssertionError(tr("sigmoid (x = -1000 ... 1000): np.exp overflowed (in plain NumPy, a "
                                    "RuntimeWarning and an inf): 1 / (1 + exp(-x)) computes exp(1000) for "
                                    "x = -1000. Exponentiate only -|x|: e = exp(-|x|), y = 1 / (1 + e) where "
                                    "x >= 0, e / (1 + e) where x < 0",
                                    "sigmoid（x = -1000 ... 1000）：np.exp 溢出了（在普通 NumPy 中表现为一个 "
                                    "RuntimeWarning 和一个 inf）：x = -1000 时，1 / (1 + exp(-x)) 要算 exp(1000)。"
                                    "只对 -|x| 取指数：e = exp(-|x|)，x >= 0 处 y = 1 / (1 + e)，"
                                    "x < 0 处 y = e / (1 + e)")) from None
    return _check_arrays(guarded, cases, "sigmoid and sigmoid_backward", mistakes=SIGMOID_MISTAKES, **TOL)


# ------------------------------------------------------------------ 5. concatenation


CONCAT_MISTAKES = [
    Mistake("the gradient's halves swapped (dskip first)",
            "the split follows the forward's order [up, skip]: dup = dy[..., :C_up], dskip = dy[..., C_up:]",
            lambda a, b, axis, dy: (np.concatenate([a, b], axis), dy[..., b.shape[-1]:], dy[..., :b.shape[-1]]),
            zh=("梯度的两半对调了（dskip 在前）",
                "切分要跟随前向的顺序 [up, skip]：dup = dy[..., :C_up]，dskip = dy[..., C_up:]")),
    Mistake("a split in two equal halves",
            "split at the first input's channel count, C_up, not at C / 2: the inputs may differ in width",
            lambda a, b, axis, dy: (np.concatenate([a, b], axis), *np.split(dy, 2, axis=-1)),
            zh=("切成了相等的两半", "在第一个输入的通道数 C_up 处切开，而不是在 C / 2 处：两个输入的通道数可能不同")),
    Mistake("the inputs concatenated as [skip, up]",
            "keep the order you are given: the article's code concatenates [up, skip] (zhixuhao's [skip, up])",
            lambda a, b, axis, dy: (np.concatenate([b, a], axis), dy[..., b.shape[-1]:], dy[..., :b.shape[-1]]),
            zh=("把输入拼接成了 [skip, up]",
                "保持给定的顺序：原文的代码拼接的是 [up, skip]（zhixuhao 的代码是 [skip, up]）")),
]


def check_concatenate(concatenate, concatenate_backward):
    """concatenate(xs, axis) -> (y, cache), concatenate_backward(dy, cache) -> [dx_1, dx_2], as
    ``ops.concatenate`` for two NHWC inputs along the channels (axis -1)."""
    rng = np.random.default_rng(115)
    cases = []
    for (ca, cb), label in [((3, 5), tr("up (2, 4, 4, 3), skip (2, 4, 4, 5)", "up (2, 4, 4, 3)，skip (2, 4, 4, 5)")),
                            ((2, 2), tr("two inputs of 2 channels", "两个 2 通道的输入")),
                            ((4, 2), tr("up (2, 4, 4, 4), skip (2, 4, 4, 2)", "up (2, 4, 4, 4)，skip (2, 4, 4, 2)"))]:
        a, b = rng.standard_normal((2, 4, 4, ca)), rng.standard_normal((2, 4, 4, cb))
        dy = rng.standard_normal((2, 4, 4, ca + cb))
        args = (a, b, -1, dy)
        cases.append((args, _reference(ops.concatenate, ops.concatenate_backward, list_inputs=True)(*args), label))
    return _check_arrays(_pair(concatenate, concatenate_backward, "concatenate", 2, list_inputs=True), cases,
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
        kind = bad[0].kind if bad[0].kind not in ("forward", "gradient") else tr(
            bad[0].kind, {"forward": "前向输出", "gradient": "梯度"}[bad[0].kind])
        raise AssertionError(tr(f"{len(bad)} rows of the parity report fail, the first {bad[0].name} ({bad[0].kind}, "
                                f"max abs error {bad[0].max_abs:.3g}, relative {bad[0].rel:.3g}): run that layer's "
                                f"op check again, then compare its output by hand",
                                f"数值一致报告中有 {len(bad)} 行不通过，第一行是 {bad[0].name}（{kind}，最大绝对误差 "
                                f"{bad[0].max_abs:.3g}，相对误差 {bad[0].rel:.3g}）：再运行一次这一层所用运算的检查，"
                                f"然后亲手比较它的输出"))
    if worst_g.rel > tol:
        raise AssertionError(tr(f"the gradient of {worst_g.name} differs from Keras's by {worst_g.rel:.3g} "
                                f"(relative), more than {tol:g}",
                                f"{worst_g.name} 的梯度与 Keras 的相对误差为 {worst_g.rel:.3g}，超过了 {tol:g}"))
    print(message("parity_forward", n=len(forward), tol=tol))
    print(message("parity_backward", n=len(grads), tol=tol))
    return True
