"""Chapter 02's exercises: ReLU's and the sigmoid's backward passes, 2x2 max pooling forward and its
backward routing. Each check names the classic mistakes of its exercise."""
from __future__ import annotations

import numpy as np

from ..ops.activations import relu, relu_backward, sigmoid, sigmoid_backward
from ..ops.pool import maxpool2d, maxpool2d_backward
from .base import Mistake, tr
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. ReLU backward
RELU_MISTAKES = [
    Mistake("a gradient of 1 at x == 0 (the mask x >= 0)",
            "TensorFlow's ReluGrad passes nothing where x == 0: use the mask x > 0",
            lambda dy, x: dy * (x >= 0),
            zh=("在 x == 0 处梯度取 1（用了掩码 x >= 0）",
                "TensorFlow 的 ReluGrad 在 x == 0 处不让梯度通过：掩码用 x > 0")),
    Mistake("a mask taken from dy instead of x (dy * (dy > 0))",
            "the gate is open where the forward pass's input was positive: mask with x > 0, not dy > 0",
            lambda dy, x: dy * (dy > 0),
            zh=("掩码取自 dy 而不是 x（dy * (dy > 0)）",
                "门在前向传播的输入为正的地方打开：掩码用 x > 0，不是 dy > 0")),
    Mistake("the mask alone, without dy",
            "the chain rule multiplies the local derivative [x > 0] by the upstream gradient: dy * (x > 0)",
            lambda dy, x: (x > 0).astype(x.dtype),
            zh=("只有掩码，没有乘 dy",
                "链式法则要把局部导数 [x > 0] 乘以上游梯度：dy * (x > 0)")),
]


def _relu_cases(rng):
    x_tie = np.array([[-1.0, 0.0, 0.5], [2.0, 0.0, -3.0]])         # exact zeros: the derivative there is 0
    cases = []
    for x, label in [(x_tie, tr("x with exact zeros", "x 含恰好为 0 的值")),
                     (rng.standard_normal((2, 4, 4, 3)), tr("random (2, 4, 4, 3)", "随机 (2, 4, 4, 3)")),
                     (np.maximum(rng.standard_normal((1, 5, 5, 2)), 0),
                      tr("x = relu(previous), many zeros", "x = relu(上一层)，很多 0"))]:
        dy = rng.standard_normal(x.shape)
        cases.append(((dy, x), relu_backward(dy, relu(x)[1]), label))
    return cases


def check_relu_backward(fn):
    """fn(dy, x) -> dx: the gradient of relu at x, dy where x > 0 and 0 elsewhere (also 0 at x == 0)."""
    return _check_arrays(fn, _relu_cases(np.random.default_rng(2)), "relu_backward", rtol=0, atol=0,
                         mistakes=RELU_MISTAKES)


# ------------------------------------------------------------------ 2. sigmoid backward
def _sig(x):
    return sigmoid(x)[0]


SIGMOID_MISTAKES = [
    Mistake("the sigmoid applied twice (s = sigmoid(y) with y already a probability)",
            "y = sigmoid(x) is already the probability: the derivative is y * (1 - y), not s * (1 - s) "
            "with s = sigmoid(y)",
            lambda dy, x: dy * _sig(_sig(x)) * (1 - _sig(_sig(x))),
            zh=("sigmoid 用了两次（s = sigmoid(y)，而 y 已经是概率）",
                "y = sigmoid(x) 已经是概率：导数是 y * (1 - y)，不是 s * (1 - s)（其中 s = sigmoid(y)）")),
    Mistake("the local derivative without dy (y * (1 - y))",
            "multiply by the upstream gradient: dx = dy * y * (1 - y)",
            lambda dy, x: _sig(x) * (1 - _sig(x)),
            zh=("只有局部导数，没有乘 dy（y * (1 - y)）",
                "乘以上游梯度：dx = dy * y * (1 - y)")),
    Mistake("the derivative written as y * (1 + y)",
            "sigma'(x) = sigma(x) (1 - sigma(x)): a minus sign, so that it is at most 1/4",
            lambda dy, x: dy * _sig(x) * (1 + _sig(x)),
            zh=("导数写成了 y * (1 + y)",
                "sigma'(x) = sigma(x) (1 - sigma(x))：是减号，所以它最大为 1/4")),
    Mistake("the derivative written in x, x * (1 - x)",
            "the formula is in the OUTPUT y = sigmoid(x): compute y first, then dy * y * (1 - y)",
            lambda dy, x: dy * x * (1 - x),
            zh=("导数用 x 表示，写成了 x * (1 - x)",
                "公式是用输出 y = sigmoid(x) 表示的：先算出 y，再算 dy * y * (1 - y)")),
]


def check_sigmoid_backward(fn):
    """fn(dy, x) -> dx: the gradient of y = sigmoid(x), dy * y * (1 - y), for any shape and dtype."""
    rng = np.random.default_rng(6)
    x0 = np.array([[-2.0, 0.0, 1.0, 3.0]])
    wide = np.linspace(-30, 30, 13).astype(np.float32)[None, :, None, None] * np.ones((1, 1, 2, 1), np.float32)
    cases = []
    for x, label in [(x0, "x = [-2, 0, 1, 3]"),
                     (rng.standard_normal((2, 4, 4, 3)), tr("random (2, 4, 4, 3)", "随机 (2, 4, 4, 3)")),
                     (wide, tr("x from -30 to 30, float32", "x 从 -30 到 30，float32"))]:
        dy = rng.standard_normal(x.shape).astype(x.dtype)
        cases.append(((dy, x), sigmoid_backward(dy, sigmoid(x)[1]), label))
    return _check_arrays(fn, cases, "sigmoid_backward", rtol=1e-5, atol=1e-6, mistakes=SIGMOID_MISTAKES)


# ------------------------------------------------------------------ 3. max pooling forward
def _zero_padded_pool(x):
    n, h, w, c = x.shape
    padded = np.zeros((n, h + h % 2, w + w % 2, c), x.dtype)
    padded[:, :h, :w] = x
    return maxpool2d(padded)[0]


def _windows_mean(x):
    n, h, w, c = x.shape
    return x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


POOL_MISTAKES = [
    Mistake("rounding an odd size up (a last, partial window, as padding='same' does)",
            "Keras's MaxPooling2D(2) is 'valid': an odd last row or column is dropped, H // 2 rows out",
            lambda x: maxpool2d(x, 2, 2, "same")[0],
            zh=("奇数尺寸向上取整（多出最后一个不完整的窗口，像 padding='same' 那样）",
                "Keras 的 MaxPooling2D(2) 是 'valid'：奇数尺寸时丢掉最后一行或一列，输出 H // 2 行")),
    Mistake("padding an odd size with zeros",
            "'valid' pooling drops an odd last row or column: crop x to x[:, :H // 2 * 2, :W // 2 * 2]",
            _zero_padded_pool,
            zh=("奇数尺寸时补零",
                "'valid' 池化丢掉奇数尺寸的最后一行或一列：把 x 裁剪成 x[:, :H // 2 * 2, :W // 2 * 2]")),
    Mistake("a stride of 1 (overlapping windows)",
            "the U-Net's pool moves by its own size: windows (2i, 2j) to (2i + 1, 2j + 1), stride 2",
            lambda x: maxpool2d(x, 2, 1, "valid")[0],
            zh=("步幅取 1（窗口相互重叠）",
                "U-Net 的池化每次移动一个窗口的大小：窗口从 (2i, 2j) 到 (2i + 1, 2j + 1)，步幅 2")),
    Mistake("average pooling (the mean of each window)", "take the maximum of each window, not the mean",
            _windows_mean,
            zh=("平均池化（取每个窗口的平均值）", "取每个窗口的最大值，而不是平均值")),
]


def _pool_inputs(rng):
    tie = np.array([[0, 0, 1, 3], [0, 0, 3, 1], [2, 5, 5, 5], [5, 1, 5, 5]], float)[None, :, :, None]
    return [(rng.standard_normal((1, 4, 4, 1)), tr("random (1, 4, 4, 1)", "随机 (1, 4, 4, 1)")),
            (rng.standard_normal((2, 6, 4, 3)), tr("random (2, 6, 4, 3)", "随机 (2, 6, 4, 3)")),
            (rng.standard_normal((1, 5, 7, 2)), tr("odd size (1, 5, 7, 2): last row/column dropped",
                                                   "奇数尺寸 (1, 5, 7, 2)：丢掉最后一行/一列")),
            (tie, tr("ties (1, 4, 4, 1): first maximum in row-major order wins",
                     "并列 (1, 4, 4, 1)：按行优先顺序的第一个最大值胜出")),
            (np.maximum(rng.standard_normal((1, 6, 6, 2)), 0).round(1),
             tr("after a ReLU, many tied zeros", "ReLU 之后，很多并列的 0"))]


def check_maxpool2x2(fn):
    """fn(x) -> y: 2x2 max pooling with stride 2, 'valid' (x: (N, H, W, C) -> (N, H//2, W//2, C))."""
    cases = [((x,), maxpool2d(x)[0], label) for x, label in _pool_inputs(np.random.default_rng(3))]
    return _check_arrays(fn, cases, "maxpool2x2", rtol=0, atol=0, mistakes=POOL_MISTAKES)


# ------------------------------------------------------------------ 4. max pooling backward
def _window_view(x):
    """x: (N, H, W, C) -> (N, H//2, W//2, C, 4): each 2x2 window in row-major order."""
    n, h, w, c = x.shape
    oh, ow = h // 2, w // 2
    return x[:, :2 * oh, :2 * ow].reshape(n, oh, 2, ow, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, oh, ow, c, 4)


def _scatter(x, per_window):
    """per_window: (N, H//2, W//2, C, 4) gradients -> dx shaped like x (zeros outside the windows)."""
    n, h, w, c = x.shape
    oh, ow = h // 2, w // 2
    dx = np.zeros(x.shape, np.result_type(x, per_window))
    dx[:, :2 * oh, :2 * ow] = per_window.reshape(n, oh, ow, c, 2, 2).transpose(0, 1, 4, 2, 5, 3).reshape(
        n, 2 * oh, 2 * ow, c)
    return dx


def _to_every_tie(dy, x):
    win = _window_view(x)
    return _scatter(x, dy[..., None] * (win == win.max(axis=-1, keepdims=True)))


def _to_last_max(dy, x):
    win = _window_view(x)
    last = 3 - np.argmax(win[..., ::-1], axis=-1)
    return _scatter(x, dy[..., None] * (np.arange(4) == last[..., None]))


def _averaged(dy, x):
    return _scatter(x, np.repeat(dy[..., None] / 4, 4, axis=-1))


POOL_BACKWARD_MISTAKES = [
    Mistake("the gradient sent to every tied maximum (a mask x == max)",
            "on a tie TensorFlow sends the whole dy to ONE pixel, the first maximum in row-major order "
            "(np.argmax of the flattened window); a mask copies it to each tie, so dx no longer sums to dy",
            _to_every_tie,
            zh=("把梯度交给了每一个并列的最大值（掩码 x == max）",
                "出现并列时，TensorFlow 把整个 dy 交给一个像素，即按行优先顺序的第一个最大值"
                "（展平窗口后的 np.argmax）；掩码会把它复制给每个并列的像素，dx 之和就不再等于 dy")),
    Mistake("the gradient sent to the LAST maximum of a tied window",
            "TensorFlow's rule is the FIRST maximum in row-major order: np.argmax returns it, a >= "
            "comparison in a loop moves past it",
            _to_last_max,
            zh=("把梯度交给了并列窗口中的最后一个最大值",
                "TensorFlow 的规则是按行优先顺序的第一个最大值：np.argmax 返回的就是它，"
                "而在循环里用 >= 比较会越过它")),
    Mistake("the gradient averaged over the window (dy / 4 to each pixel)",
            "that is average pooling's gradient; max pooling routes all of dy to the window's maximum",
            _averaged,
            zh=("把梯度在窗口上平均（每个像素得 dy / 4）",
                "那是平均池化的梯度；最大池化把整个 dy 交给窗口的最大值")),
]


def check_maxpool2x2_backward(fn):
    """fn(dy, x) -> dx: the gradient of 2x2 stride-2 'valid' max pooling. Each dy goes to its window's
    FIRST maximum in row-major order (TensorFlow's rule on ties); every other pixel gets 0."""
    rng = np.random.default_rng(4)
    cases = []
    for x, label in _pool_inputs(rng):
        y, cache = maxpool2d(x)
        dy = rng.standard_normal(y.shape)
        cases.append(((dy, x), maxpool2d_backward(dy, cache), label))
    return _check_arrays(fn, cases, "maxpool2x2_backward", rtol=0, atol=1e-12, mistakes=POOL_BACKWARD_MISTAKES)
