"""Chapter 05's exercises: central differences, the relative error, the backward pass of a tiny "U" on
vectors, and the real U-Net's forward and backward passes assembled from its blocks, where the skip's
gradient joins the gradient coming back up the contracting path. Each check names the classic mistakes of
its exercise."""
from __future__ import annotations

import numpy as np

from ..gradcheck import rel_error
from .base import Mistake, call_student, error_bound, message, tr
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. central differences
def _restores_x(fn, what):
    """Run fn(f, x, h) on a copy of x and fail if the student's function left x changed."""
    def wrapped(f, x, h):
        work = x.copy()
        out = fn(f, work, h)
        if not np.array_equal(work, x):
            raise AssertionError(tr(f"{what}: x was changed by the call; put each entry back after "
                                    f"perturbing it (x[i] = old)",
                                    f"{what}：调用之后 x 变了；每个元素扰动之后都要放回原值（x[i] = old）"))
        return out
    return wrapped


def _differences(f, x, h, step):
    """step(f, x, i, h) -> the derivative estimate at index i, x perturbed on a copy."""
    x = np.array(x, dtype=float, copy=True)
    g = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        g[i] = step(f, x, i, h)
    return g


def _at(f, x, i, value):
    old = x[i]
    x[i] = value
    out = f(x)
    x[i] = old
    return out


CENTRAL_MISTAKES = [
    Mistake("a one-sided (forward) difference (f(x + h e_i) - f(x)) / h",
            "its error is O(h), about 1e-5 here; the central difference (f(x + h e_i) - f(x - h e_i)) / 2h "
            "cancels the h term and is accurate to O(h^2)",
            lambda f, x, h: _differences(f, x, h, lambda f, x, i, h: (_at(f, x, i, x[i] + h) - f(x)) / h),
            zh=("单侧（前向）差分 (f(x + h e_i) - f(x)) / h",
                "它的误差是 O(h)，这里约为 1e-5；中心差分 (f(x + h e_i) - f(x - h e_i)) / 2h "
                "消去了 h 项，精度为 O(h^2)")),
    Mistake("a one-sided (backward) difference (f(x) - f(x - h e_i)) / h",
            "perturb both ways: (f(x + h e_i) - f(x - h e_i)) / 2h",
            lambda f, x, h: _differences(f, x, h, lambda f, x, i, h: (f(x) - _at(f, x, i, x[i] - h)) / h),
            zh=("单侧（后向）差分 (f(x) - f(x - h e_i)) / h",
                "向两个方向都扰动：(f(x + h e_i) - f(x - h e_i)) / 2h")),
    Mistake("a central difference divided by h instead of 2h (twice the gradient)",
            "the two evaluations are 2h apart: divide by 2 * h",
            lambda f, x, h: _differences(f, x, h, lambda f, x, i, h: (_at(f, x, i, x[i] + h)
                                                                      - _at(f, x, i, x[i] - h)) / h),
            zh=("中心差分除以 h 而不是 2h（得到梯度的两倍）",
                "两次求值相距 2h：除以 2 * h")),
]


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
                         rtol=1e-7, atol=1e-8, mistakes=CENTRAL_MISTAKES)


# ------------------------------------------------------------------ 2. the relative error
def _norm(a):
    return float(np.linalg.norm(np.asarray(a, dtype=np.float64)))


def _unguarded(a, b):
    with np.errstate(invalid="ignore", divide="ignore"):
        return float(np.float64(_norm(np.subtract(a, b, dtype=np.float64))) / np.float64(_norm(a) + _norm(b)))


def _elementwise(a, b):
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b) / np.maximum(np.abs(a) + np.abs(b), 1e-30)))


REL_ERROR_MISTAKES = [
    Mistake("dividing by ||a|| + ||b|| without the max(..., 1e-30) guard (0 / 0 = nan when both are zero)",
            "guard the denominator: max(||a|| + ||b||, 1e-30), so two zero gradients give 0, not nan",
            _unguarded,
            zh=("除以 ||a|| + ||b|| 时没有 max(..., 1e-30) 保护（两者都为零时 0 / 0 = nan）",
                "给分母加上保护：max(||a|| + ||b||, 1e-30)，这样两个全零的梯度得 0，而不是 nan")),
    Mistake("dividing by ||a|| alone (not symmetric, and unbounded)",
            "divide by ||a|| + ||b||: the measure must not depend on which argument is the reference",
            lambda a, b: _norm(np.subtract(a, b, dtype=np.float64)) / max(_norm(a), 1e-30),
            zh=("只除以 ||a||（不对称，也没有上界）",
                "除以 ||a|| + ||b||：这个度量不能取决于哪个参数是参照")),
    Mistake("an element-wise relative error, max |a - b| / (|a| + |b|)",
            "this exercise asks for the norm-based measure: ||a - b|| / max(||a|| + ||b||, 1e-30) with "
            "Frobenius norms (np.linalg.norm of the whole arrays)",
            _elementwise,
            zh=("逐元素的相对误差 max |a - b| / (|a| + |b|)",
                "本练习要的是基于范数的度量：||a - b|| / max(||a|| + ||b||, 1e-30)，用 Frobenius 范数"
                "（对整个数组求 np.linalg.norm）")),
    Mistake("the difference without the division, ||a - b||",
            "divide by max(||a|| + ||b||, 1e-30): an absolute error depends on the gradient's scale",
            lambda a, b: _norm(np.subtract(a, b, dtype=np.float64)),
            zh=("只有差、没有除法，即 ||a - b||",
                "除以 max(||a|| + ||b||, 1e-30)：绝对误差取决于梯度的大小")),
]


def check_rel_error(fn):
    """fn(a, b) -> ||a - b|| / max(||a|| + ||b||, 1e-30) (Frobenius norms), a float in [0, 1]; 0 when
    both are zero."""
    rng = np.random.default_rng(5)
    a = rng.standard_normal((4, 3))
    cases = [(a, a + 1e-6 * rng.standard_normal(a.shape)), (a, a), (a, -a), (a, 2 * a),
             (np.zeros(3), np.zeros(3)), (np.zeros(3), np.ones(3)), (np.array([1e-12, 0.0]), np.array([0.0, 1e-12])),
             (np.array([1.0, 100.0]), np.array([2.0, 100.0]))]
    what = "relative_error"
    for k, (x, y) in enumerate(cases):
        label = tr(f"case {k}: a of shape {x.shape}, {_describe(k)}",
                   f"用例 {k}：a 的形状为 {x.shape}，{_describe(k)}")
        got = call_student(fn, (x, y), what)
        expected = rel_error(x, y)
        try:
            ok = got is not None and bool(np.isfinite(got)) and bool(np.isclose(got, expected, rtol=1e-9,
                                                                                  atol=1e-15))
        except TypeError:
            ok = False
        if not ok:
            for mistake in REL_ERROR_MISTAKES:
                wrong = mistake.answer(x, y)
                try:
                    same = bool(np.isclose(got, wrong, rtol=1e-9, atol=1e-15, equal_nan=True))
                except TypeError:
                    same = False
                if same:
                    name, fix = mistake.text()
                    raise AssertionError(tr(f"{what} ({label}): expected {expected:.6g}, got {got!r}: that is what "
                                            f"{name} gives. {fix}",
                                            f"{what}（{label}）：应为 {expected:.6g}，你得到 {got!r}：这正是「{name}」"
                                            f"会得到的结果。{fix}"))
            raise AssertionError(tr(f"{what} ({label}): expected {expected:.6g}, got {got!r}",
                                    f"{what}（{label}）：应为 {expected:.6g}，你得到 {got!r}"))
        if not np.isclose(fn(y, x), got, rtol=1e-12, atol=0):
            raise AssertionError(tr(f"{what} ({label}): rel_error(b, a) differs from rel_error(a, b); the "
                                    f"measure must be symmetric (divide by ||a|| + ||b||)",
                                    f"{what}（{label}）：rel_error(b, a) 与 rel_error(a, b) 不同；这个度量必须"
                                    f"对称（除以 ||a|| + ||b||）"))
    print(message("correct_cases", what=what, n=len(cases)))
    return True


def _describe(k):
    return tr(["b = a + 1e-6 noise", "b = a", "b = -a", "b = 2a", "both zero", "a zero, b ones",
               "tiny, different", "one entry off by 1 of 100"][k],
              ["b = a 加上 1e-6 量级的噪声", "b = a", "b = -a", "b = 2a", "两者都为零", "a 为零，b 为全 1",
               "极小且不同", "一个元素差 1（另一个为 100）"][k])


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


def _mini_unet_backward(x, w1, w2, w3, dy, skip=True, swapped=False, skip_below_relu=False):
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    cat = np.concatenate([h, b] if swapped else [b, h], axis=1)
    dw3 = cat.T @ dy
    dcat = dy @ w3.T
    if swapped:                                       # as if the concatenation were [skip, up]
        dh_skip, db = dcat[:, :h.shape[1]], dcat[:, h.shape[1]:]
    else:
        db, dh_skip = dcat[:, :b.shape[1]], dcat[:, b.shape[1]:]
    db_pre = db * (b > 0)
    dw2 = h.T @ db_pre
    if not skip:
        dh_skip = 0 * dh_skip
    if skip_below_relu:                               # the skip's gradient added after ReLU's mask
        dh_pre = (db_pre @ w2.T) * (h > 0) + dh_skip
    else:
        dh_pre = (db_pre @ w2.T + dh_skip) * (h > 0)  # the fork: h went down the deep path AND across
    return dh_pre @ w1.T, x.T @ dh_pre, dw2, dw3


MINI_UNET_MISTAKES = [
    Mistake("forgetting the skip's gradient (h gets only the bottleneck's)",
            "h is used twice, by the bottleneck and across the skip: dh = db_pre @ w2.T + dcat[:, H2:], "
            "the multivariate chain rule sums over both paths",
            lambda *args: _mini_unet_backward(*args, skip=False),
            zh=("忘了跳跃连接的梯度（h 只得到瓶颈层的梯度）",
                "h 被用了两次，一次进瓶颈层，一次穿过跳跃连接：dh = db_pre @ w2.T + dcat[:, H2:]，"
                "多元链式法则要对两条路径求和")),
    Mistake("swapping the concatenation's halves (as if it were [skip, up] = [h | b])",
            "y = [b | h] W3: the first H2 columns of dcat belong to b, the last H1 to the skip h",
            lambda *args: _mini_unet_backward(*args, swapped=True),
            zh=("拼接的两半对调了（仿佛拼接是 [skip, up] = [h | b]）",
                "y = [b | h] W3：dcat 的前 H2 列属于 b，后 H1 列属于跳跃连接 h")),
    Mistake("adding the skip's gradient after ReLU's mask",
            "the skip carries h = relu(x W1), the ReLU's OUTPUT: add both gradients of h first, then "
            "multiply by the mask, (db_pre @ w2.T + dh_skip) * (h > 0)",
            lambda *args: _mini_unet_backward(*args, skip_below_relu=True),
            zh=("在 ReLU 的掩码之后才加上跳跃连接的梯度",
                "跳跃连接传的是 h = relu(x W1)，即 ReLU 的输出：先把 h 的两份梯度加起来，再乘以掩码，"
                "(db_pre @ w2.T + dh_skip) * (h > 0)")),
]


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
    return _check_arrays(fn, cases, "mini_unet_backward", rtol=1e-9, atol=1e-12, mistakes=MINI_UNET_MISTAKES)


# ------------------------------------------------------------------ 4-5. the U-Net from its blocks
UNET_CASES = [
    (dict(input_shape=(16, 16, 1), base_filters=2, depth=2, padding="same"), 2, "depth 2, same padding, 16 x 16"),
    (dict(input_shape=(44, 44, 1), base_filters=2, depth=2, padding="valid"), 1,
     "depth 2, valid padding (cropped skips), 44 x 44"),
    (dict(input_shape=(32, 32, 1), base_filters=2, depth=3, padding="same"), 2, "depth 3, same padding, 32 x 32"),
]
UNET_CASE_LABELS_ZH = {"depth 2, same padding, 16 x 16": "深度 2，same 填充，16 x 16",
                       "depth 2, valid padding (cropped skips), 44 x 44": "深度 2，valid 填充（跳跃连接要裁剪），44 x 44",
                       "depth 3, same padding, 32 x 32": "深度 3，same 填充，32 x 32"}


def _twin(spec):
    """A fresh float64 U-Net with dropout 0.5 (so that training mode shows), the same for the same spec,
    its dropout generators reset (so that a mistake's random masks can be reproduced)."""
    from ..model import UNet
    model = UNet(**spec, dropout=0.5, dtype="float64", seed=3)
    _reset_dropout(model)
    return model


def _reset_dropout(model):
    for k, layer in enumerate(l for l in model.layers if type(l).__name__ == "Dropout"):
        layer.rng = np.random.default_rng(100 + k)


def _case_inputs(spec, n, index):
    rng = np.random.default_rng(50 + index)
    x = rng.standard_normal((n, *spec["input_shape"]))
    model = _twin(spec)
    dy = rng.standard_normal((n, *model.output_shape[1:]))
    return x, dy


def reference_unet_forward(model, x, training=False, swap_concat=False, reverse_skips=True):
    """The forward pass from the blocks (the exercise's answer, and its mistakes by the keyword
    arguments): x (N, H, W, C) -> the head's output (N, H', W', K)."""
    skips, h = [], x
    for block in model.encoder:
        skip, h = block.forward(h, training)
        skips.append(skip)
    h = model.bottleneck.forward(h, training)
    for block, skip in zip(model.decoder, reversed(skips) if reverse_skips else skips):
        up = block.upconv(h)
        if block.crop is not None:
            skip = block.crop(skip)
        h = block.concat([skip, up] if swap_concat else [up, skip])
        h = block.conv2(block.conv1(h))
    return model.head(h)


def reference_unet_backward(model, dy, skip_gradient=True, swap_concat=False, reverse_skips=True,
                            crop_backward=True):
    """The backward pass from the blocks, after a forward pass (the exercise's answer, and its mistakes
    by the keyword arguments): dy (shape of the output) -> dL/dx, model.grads filled."""
    dh = model.head.backward(dy)
    dskips = []
    for block in reversed(model.decoder):             # the top level (next to the head) first
        dh = block.conv1.backward(block.conv2.backward(dh))
        if swap_concat:
            dskip, dup = block.concat.backward(dh)
        else:
            dup, dskip = block.concat.backward(dh)
        if block.crop is not None and crop_backward:
            dskip = block.crop.backward(dskip)
        dskips.append(dskip if skip_gradient else np.zeros_like(dskip))
        dh = block.upconv.backward(dup)
    dh = model.bottleneck.backward(dh)
    for block, dskip in zip(reversed(model.encoder), reversed(dskips) if reverse_skips else dskips):
        dh = block.backward(dh, dskip)
    return dh


def _forward_mistake(**kwargs):
    def answer(spec, n, index):
        x, _ = _case_inputs(spec, n, index)
        return reference_unet_forward(_twin(spec), x, **kwargs)
    return answer


def _backward_mistake(**kwargs):
    def answer(spec, n, index):
        x, dy = _case_inputs(spec, n, index)
        model = _twin(spec)
        model.forward(x)
        dx = reference_unet_backward(model, dy, **kwargs)
        return (dx, *[np.array(g) for g in model.grads.values()])
    return answer


FORWARD_MISTAKES = [
    Mistake("pairing the skips with the wrong decoder levels (not reversed)",
            "model.decoder starts at the DEEPEST level: it takes the LAST skip first, "
            "zip(model.decoder, reversed(skips))",
            _forward_mistake(reverse_skips=False),
            zh=("跳跃连接与解码器的层配错了（没有倒序）",
                "model.decoder 从最深的一层开始：它先取最后一个 skip，zip(model.decoder, reversed(skips))")),
    Mistake("swapping the concatenation's halves ([skip, up])",
            "this model concatenates [up, skip] (block.concat([up, skip])), the article's order; the "
            "next convolution's kernel expects the up-sampled channels first",
            _forward_mistake(swap_concat=True),
            zh=("拼接的两半对调了（[skip, up]）",
                "这个模型按 [up, skip] 拼接（block.concat([up, skip])），与原文的顺序相同；下一次卷积的卷积核"
                "要求上采样的通道在前")),
    Mistake("running dropout in training mode (training=True) at inference",
            "a forward pass for prediction keeps dropout off: block.forward(h, training=False), "
            "model.bottleneck.forward(h, training=False)",
            _forward_mistake(training=True),
            zh=("推理时 Dropout 处于训练模式（training=True）",
                "用于预测的前向传播要关掉 Dropout：block.forward(h, training=False)、"
                "model.bottleneck.forward(h, training=False)")),
]

BACKWARD_MISTAKES = [
    Mistake("forgetting the skip's gradient (the encoder gets only the contracting path's)",
            "each encoder level's output went down AND across: pass the skip's gradient to "
            "block.backward(dh, dskip), which adds it to the pool's gradient",
            _backward_mistake(skip_gradient=False),
            zh=("忘了跳跃连接的梯度（编码器只得到收缩路径传回的梯度）",
                "编码器每一层的输出既往下走，也穿过跳跃连接：把跳跃连接的梯度传给 block.backward(dh, dskip)，"
                "它会把这份梯度加到池化的梯度上")),
    Mistake("pairing the skips' gradients with the wrong encoder levels (not reversed)",
            "the decoder loop visits the top level first, so dskips[0] belongs to model.encoder[0]; the "
            "encoder loop goes deepest first: zip(reversed(model.encoder), reversed(dskips))",
            _backward_mistake(reverse_skips=False),
            zh=("跳跃连接的梯度与编码器的层配错了（没有倒序）",
                "解码器的循环先访问最上层，所以 dskips[0] 属于 model.encoder[0]；编码器的循环从最深层开始："
                "zip(reversed(model.encoder), reversed(dskips))")),
    Mistake("swapping the concatenation's halves (dskip, dup = block.concat.backward(dh))",
            "the forward pass concatenated [up, skip], so the split returns (dup, dskip) in that order",
            _backward_mistake(swap_concat=True),
            zh=("拼接的两半对调了（dskip, dup = block.concat.backward(dh)）",
                "前向传播按 [up, skip] 拼接，所以切分按这个顺序返回 (dup, dskip)")),
    Mistake("skipping the crop's backward (valid padding)",
            "in the valid U-Net the skip was cropped: paste its gradient back with block.crop.backward(dskip) "
            "before it reaches the encoder",
            _backward_mistake(crop_backward=False),
            zh=("漏掉了裁剪的反向传播（valid 填充）",
                "在 valid U-Net 中跳跃连接被裁剪过：在梯度到达编码器之前，用 block.crop.backward(dskip) "
                "把它贴回去")),
]


def _same_error(err, mistakes, spec_args):
    """The first mistake whose answer raises the same error (type and message) as the student's."""
    for mistake in mistakes:
        try:
            mistake.answer(*spec_args)
        except Exception as other:               # the mistake crashes too: the same way?
            if type(other) is type(err) and str(other) == str(err):
                return mistake
    return None


def _run(fn, args, what, label, mistakes, spec_args):
    """fn(*args); an exception other than the stub's is reported, named when a mistake raises the same."""
    try:
        return call_student(fn, args, what)
    except AssertionError:
        raise
    except Exception as err:
        mistake = _same_error(err, mistakes, spec_args)
        if mistake is not None:
            name, fix = mistake.text()
            raise AssertionError(tr(f"{what} ({label}): your function raised {type(err).__name__} ({err}), as "
                                    f"{name} does. {fix}",
                                    f"{what}（{label}）：你的函数抛出了 {type(err).__name__}（{err}），"
                                    f"「{name}」也会这样。{fix}")) from err
        raise AssertionError(tr(f"{what} ({label}): your function raised {type(err).__name__}: {err}",
                                f"{what}（{label}）：你的函数抛出了 {type(err).__name__}：{err}")) from err


def _compare(got, expected, names, what, label, mistakes, spec_args, rtol, atol):
    """got, expected: tuples of arrays named by ``names``; returns the largest relative error."""
    worst = 0.0
    for g, e, name in zip(got, expected, names):
        g = None if g is None else np.asarray(g)
        ok = g is not None and g.shape == e.shape and np.allclose(g, e, rtol=rtol, atol=atol)
        if not ok:
            for mistake in mistakes:
                try:
                    wrong = mistake.answer(*spec_args)
                except Exception:
                    continue
                wrong = wrong if isinstance(wrong, tuple) else (wrong,)
                if all(gg is not None and np.shape(gg) == np.shape(ww) and
                       np.allclose(gg, ww, rtol=max(rtol, 1e-6), atol=max(atol, 1e-9))
                       for gg, ww in zip(got, wrong)):
                    m_name, m_fix = mistake.text()
                    raise AssertionError(message("mistake", what=what, label=label, name=m_name, fix=m_fix))
            if g is None:
                raise AssertionError(tr(f"{what} ({label}): {name} was not computed (did your backward reach "
                                        "every layer?)",
                                        f"{what}（{label}）：{name} 没有算出来（你的反向传播走到每一层了吗？）"))
            if g.shape != e.shape:
                raise AssertionError(message("wrong_shape", what=what, label=label, name=name, shape=g.shape,
                                             expected=e.shape))
            diff = np.abs(g - e)
            where = np.unravel_index(int(np.argmax(diff)), diff.shape)
            raise AssertionError(message("wrong_values", what=what, label=label, name=name, diff=diff.max(),
                                         where=tuple(int(i) for i in where)))
        scale = float(np.max(np.abs(e))) if e.size else 0.0
        err = float(np.max(np.abs(g - e))) if e.size else 0.0
        worst = max(worst, err / scale if scale > 0 else err)
    return worst


def _verdict(what, worst, rtol, atol):
    bound = message("zero_exact") if worst == 0 else error_bound(worst)
    print(message("correct_arrays", what=what, n=len(UNET_CASES), err=bound,
                  expected=message("expected_below", tol=max(rtol, atol))))
    return True


def check_unet_forward(fn, rtol=1e-9, atol=1e-12):
    """fn(model, x) -> y: the U-Net's inference forward pass assembled from model.encoder,
    model.bottleneck, model.decoder (each decoder block written out from its layers) and model.head.
    Compared in float64 with UNet.forward on three small models (same and valid padding, dropout 0.5)."""
    what, worst = "unet_forward", 0.0
    for index, (spec, n, label) in enumerate(UNET_CASES):
        label = tr(label, UNET_CASE_LABELS_ZH[label])
        x, _ = _case_inputs(spec, n, index)
        expected = _twin(spec).forward(x)
        got = _run(fn, (_twin(spec), x.copy()), what, label, FORWARD_MISTAKES, (spec, n, index))
        if got is None:
            raise AssertionError(message("returned_none", what=what, label=label))
        worst = max(worst, _compare((got,), (expected,), (message("the_output"),), what, label, FORWARD_MISTAKES,
                                    (spec, n, index), rtol, atol))
    return _verdict(what, worst, rtol, atol)


def check_unet_backward(fn, rtol=1e-9, atol=1e-12):
    """fn(model, dy) -> dx, called after model.forward(x): the U-Net's backward pass assembled from its
    blocks, filling model.grads on the way. Compares dx and every parameter's gradient in float64 with
    UNet.backward on three small models (same and valid padding)."""
    what, worst = "unet_backward", 0.0
    for index, (spec, n, label) in enumerate(UNET_CASES):
        label = tr(label, UNET_CASE_LABELS_ZH[label])
        x, dy = _case_inputs(spec, n, index)
        reference = _twin(spec)
        reference.forward(x)
        expected_dx = reference.backward(dy)
        names = [tr("dx (the returned gradient of the input)", "dx（返回的输入梯度）")] + [
            f"model.grads[{k!r}]" for k in reference.grads]
        expected = (expected_dx, *[np.array(g) for g in reference.grads.values()])
        model = _twin(spec)
        model.forward(x)
        for layer in model.layers:                     # gradients a backward pass must fill itself
            layer.grads.clear()
        dx = _run(fn, (model, dy.copy()), what, label, BACKWARD_MISTAKES, (spec, n, index))
        if dx is None:
            raise AssertionError(message("returned_none", what=what, label=label))
        grads = {f"{l.name}/{k}": g for l in model.layers for k, g in l.grads.items()}
        got = (dx, *[grads.get(k) for k in reference.grads])
        worst = max(worst, _compare(got, expected, names, what, label, BACKWARD_MISTAKES, (spec, n, index),
                                    rtol, atol))
    return _verdict(what, worst, rtol, atol)
