"""Chapter 05b's exercises: what trains the network. SGD with momentum and Adam (Keras 3's update rules,
step for step), inverted dropout forward and backward, and He / Glorot initialisation with Keras's fans.

The optimizer checks run several steps and compare with ``unet_scratch.optimizers`` (bit-identical to
Keras 3, see tests/test_optimizers.py) and, when TensorFlow is installed, with ``keras.optimizers`` itself.
The dropout check hands the student's function a seeded generator, so the mask is the one
``ops.dropout`` draws. The initialiser checks are statistical on large seeded samples (at least 131,072
values, so a 3 % bound on the variance is about eight standard errors wide): a correct answer cannot fail
them, and each named mistake misses them by 20 % or more, or by the shape of its distribution.
"""
from __future__ import annotations

import math

import numpy as np

from ..initializers import TRUNCATED_NORMAL_STD, compute_fans
from ..ops.dropout import dropout as _reference_dropout
from ..optimizers import SGD, Adam
from .base import Mistake, call_student, check_arrays, check_cases, message, tr

# ------------------------------------------------------------------ shared: running an update rule


def _keras():
    """keras, or None where TensorFlow/Keras is not installed (the check then says what it skipped)."""
    try:
        from ..keras_ref import import_keras
        return import_keras()
    except Exception:          # ImportError, or a broken TensorFlow install: compare with the package only
        return None


def _returned(out, n, what, names):
    if not isinstance(out, tuple) or len(out) != n:
        raise AssertionError(tr(f"{what}: return a tuple ({', '.join(names)}), got {type(out).__name__}"
                                + (f" of length {len(out)}" if isinstance(out, tuple) else ""),
                                f"{what}：要返回元组 ({', '.join(names)})，你返回的是 {type(out).__name__}"
                                + (f"（长度为 {len(out)}）" if isinstance(out, tuple) else "")))
    for name, a in zip(names, out):
        a = np.asarray(a)
        if a.dtype != np.float32:
            raise AssertionError(tr(
                f"{what}: {name} came back as {a.dtype}, the parameters are float32. A NumPy float64 "
                f"scalar (np.sqrt(1 - beta_2**t), np.float64(lr)) promotes a float32 array to float64 "
                f"(NumPy 2): use math.sqrt or Python floats, which adapt to the array's dtype, as Keras "
                f"computes everything in the variable's dtype",
                f"{what}：返回的 {name} 是 {a.dtype}，而参数是 float32。NumPy 的 float64 标量"
                f"（np.sqrt(1 - beta_2**t)、np.float64(lr)）会把 float32 数组提升为 float64（NumPy 2）："
                f"请用 math.sqrt 或 Python 浮点数，它们会随数组的 dtype 而变，就像 Keras 全部在变量的 dtype 下计算一样"))
    return tuple(np.asarray(a) for a in out)


# ------------------------------------------------------------------ 1. SGD with momentum


def _sgd_torch(w0, grads, lrs, momentum):
    w, v = w0.copy(), np.zeros_like(w0)
    for g, lr in zip(grads, lrs):
        v = momentum * v + g
        w = w - lr * v
    return w, v


def _sgd_momentum_on_w(w0, grads, lrs, momentum):
    w, v = w0.copy(), np.zeros_like(w0)
    for g, lr in zip(grads, lrs):
        v = momentum * w - lr * g
        w = w + v
    return w, v


def _sgd_ascent(w0, grads, lrs, momentum):
    w, v = w0.copy(), np.zeros_like(w0)
    for g, lr in zip(grads, lrs):
        v = momentum * v + lr * g
        w = w + v
    return w, v


SGD_MISTAKES = [
    Mistake("PyTorch's convention (v = momentum v + g, then w = w - lr v)",
            "Keras keeps the learning rate inside the velocity: v = momentum * v - lr * g, then w = w + v. "
            "With a constant lr both give the same weights, but the velocity differs by a factor -1/lr, so "
            "a learning-rate schedule (or a checkpoint moved between frameworks) changes the steps",
            _sgd_torch,
            zh=("用了 PyTorch 的约定（v = momentum v + g，然后 w = w - lr v）",
                "Keras 把学习率放在速度里面：v = momentum * v - lr * g，然后 w = w + v。学习率不变时两者得到的"
                "权重相同，但速度相差 -1/lr 倍，所以一旦有学习率调度（或在框架之间迁移检查点），每一步就不同了")),
    Mistake("the momentum applied to w instead of v (v = momentum w - lr g)",
            "the velocity remembers the previous step: v = momentum * v - lr * g", _sgd_momentum_on_w,
            zh=("动量乘在了 w 上而不是 v 上（v = momentum w - lr g）",
                "速度记住的是上一步：v = momentum * v - lr * g")),
    Mistake("the update's sign flipped (v = momentum v + lr g: gradient ascent)",
            "step against the gradient: v = momentum * v - lr * g", _sgd_ascent,
            zh=("更新的符号反了（v = momentum v + lr g：梯度上升）",
                "逆着梯度走：v = momentum * v - lr * g")),
]


def _run_sgd(fn):
    def run(w0, grads, lrs, momentum):
        w, v = w0.copy(), np.zeros_like(w0)
        for step, (g, lr) in enumerate(zip(grads, lrs)):
            out = call_student(fn, (w, g, v, lr, momentum), "sgd_momentum_step")
            w, v = _returned(out, 2, tr(f"sgd_momentum_step (step {step + 1})",
                                        f"sgd_momentum_step（第 {step + 1} 步）"), ("w", "v"))
        return w, v
    return run


def _sgd_cases():
    rng = np.random.default_rng(51)

    def grads(t, shape, scale=1.0):
        return (scale * rng.standard_normal((t, *shape))).astype(np.float32)
    return [
        ((rng.standard_normal((4, 5)).astype(np.float32), grads(8, (4, 5)), (0.1,) * 8, 0.9),
         tr("lr 0.1, momentum 0.9, 8 steps, w (4, 5)", "lr 0.1，momentum 0.9，8 步，w (4, 5)")),
        ((rng.standard_normal((3, 3, 2, 4)).astype(np.float32), grads(9, (3, 3, 2, 4)),
          (0.1,) * 3 + (0.05,) * 3 + (0.025,) * 3, 0.9),
         tr("lr halved every 3 steps (a schedule), momentum 0.9, 9 steps, w (3, 3, 2, 4)",
            "lr 每 3 步减半（学习率调度），momentum 0.9，9 步，w (3, 3, 2, 4)")),
        ((rng.standard_normal(7).astype(np.float32), grads(6, (7,)), (0.01,) * 6, 0.99),
         tr("the paper's momentum 0.99, lr 0.01, 6 steps, w (7,)", "论文的 momentum 0.99，lr 0.01，6 步，w (7,)")),
    ]


def _sgd_package(w0, grads, lrs, momentum):
    opt, p = SGD(lrs[0], momentum=momentum), {"w": w0.copy()}
    for g, lr in zip(grads, lrs):
        opt.learning_rate = lr
        opt.apply(p, {"w": g})
    return p["w"], opt.slots["momentum"]["w"].copy()


def _sgd_keras(keras, w0, grads, lrs, momentum):
    var = keras.Variable(w0.copy())
    opt = keras.optimizers.SGD(learning_rate=lrs[0], momentum=momentum)
    opt.build([var])
    for g, lr in zip(grads, lrs):
        opt.learning_rate = lr
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    return np.asarray(var), np.asarray(opt.momentums[0])


def check_sgd_momentum(fn, against_keras=True):
    """fn(w, g, v, lr, momentum) -> (w_new, v_new), one step of Keras 3's SGD with momentum:
    v_new = momentum v - lr g, w_new = w + v_new. w, g, v: float32 arrays of one shape; lr, momentum:
    Python floats. Run over several steps (v starts at zeros) and compared with
    ``unet_scratch.optimizers.SGD`` and, if TensorFlow is installed, ``keras.optimizers.SGD``."""
    cases = _sgd_cases()
    run = _run_sgd(fn)
    ok = check_arrays(run, [(args, _sgd_package(*args), label) for args, label in cases],
                      "sgd_momentum_step vs unet_scratch.optimizers.SGD", rtol=1e-6, atol=1e-7,
                      mistakes=SGD_MISTAKES)
    return ok and _also_keras(run, cases, _sgd_keras, "sgd_momentum_step vs keras.optimizers.SGD",
                              SGD_MISTAKES, against_keras)


def _also_keras(run, cases, keras_answer, what, mistakes, against_keras, atol=1e-7):
    if not against_keras:
        return True
    keras = _keras()
    if keras is None:
        print(tr(f"not run: {what} (TensorFlow/Keras is not installed: pip install -e '.[keras]')",
                 f"未运行：{what}（没有安装 TensorFlow/Keras：pip install -e '.[keras]'）"))
        return True
    return check_arrays(run, [(args, keras_answer(keras, *args), label) for args, label in cases], what,
                        rtol=1e-6, atol=atol, mistakes=mistakes)


# ------------------------------------------------------------------ 2. Adam


def _adam_variant(w0, grads, lr, beta_1, beta_2, epsilon, kind="keras"):
    """Adam in float64 over the gradient sequence; ``kind`` picks a rule (the mistakes)."""
    w, m, v = (np.array(w0, np.float64), np.zeros(w0.shape), np.zeros(w0.shape))
    for step, g in enumerate(np.asarray(grads, np.float64)):
        t = step + 1
        m = beta_1 * m + (1 - beta_1) * g
        v = beta_2 * v + (1 - beta_2) * g * g
        alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        if kind == "keras":
            w = w - alpha * m / (np.sqrt(v) + epsilon)
        elif kind == "no_correction":
            w = w - lr * m / (np.sqrt(v) + epsilon)
        elif kind == "eps_inside":
            w = w - alpha * m / np.sqrt(v + epsilon)
        elif kind == "torch":
            w = w - lr * (m / (1 - beta_1 ** t)) / (np.sqrt(v / (1 - beta_2 ** t)) + epsilon)
    return w, m, v


ADAM_MISTAKES = [
    Mistake("Adam without bias correction (alpha = lr)",
            "m and v start at 0 and are too small in the first steps; correct with "
            "alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t), t = iterations + 1",
            lambda w0, grads, lr, b1, b2, eps: _adam_variant(w0, grads, lr, b1, b2, eps, "no_correction"),
            zh=("没有偏差修正的 Adam（alpha = lr）",
                "m 和 v 从 0 开始，最初几步太小；用 alpha = lr * sqrt(1 - beta_2**t) / (1 - beta_1**t) 修正，"
                "t = iterations + 1")),
    Mistake("epsilon inside the square root (sqrt(v + epsilon))",
            "Keras adds epsilon after the root: w -= alpha * m / (sqrt(v) + epsilon)",
            lambda w0, grads, lr, b1, b2, eps: _adam_variant(w0, grads, lr, b1, b2, eps, "eps_inside"),
            zh=("epsilon 放在了平方根里面（sqrt(v + epsilon)）",
                "Keras 在开方之后才加 epsilon：w -= alpha * m / (sqrt(v) + epsilon)")),
    Mistake("PyTorch's placement of epsilon (lr m_hat / (sqrt(v_hat) + epsilon), with m_hat = m / (1 - "
            "beta_1**t), v_hat = v / (1 - beta_2**t))",
            "Keras folds the bias correction into the step size and adds epsilon to sqrt(v), not to "
            "sqrt(v_hat): w -= alpha * m / (sqrt(v) + epsilon). Its effective epsilon is "
            "epsilon / sqrt(1 - beta_2**t), 31.6 times PyTorch's at t = 1; the two differ where sqrt(v_hat) "
            "is not much larger than epsilon (tiny gradients, or a large epsilon)",
            lambda w0, grads, lr, b1, b2, eps: _adam_variant(w0, grads, lr, b1, b2, eps, "torch"),
            zh=("按 PyTorch 的位置放 epsilon（lr m_hat / (sqrt(v_hat) + epsilon)，其中 m_hat = m / (1 - "
                "beta_1**t)，v_hat = v / (1 - beta_2**t)）",
                "Keras 把偏差修正并入每一步的大小，并把 epsilon 加在 sqrt(v) 上，而不是 sqrt(v_hat) 上："
                "w -= alpha * m / (sqrt(v) + epsilon)。它的等效 epsilon 是 epsilon / sqrt(1 - beta_2**t)，"
                "t = 1 时是 PyTorch 的 31.6 倍；当 sqrt(v_hat) 不比 epsilon 大很多时（梯度极小，或 epsilon 很大），"
                "两者就不一样")),
]
ADAM_ATOL = 1e-6
T_FROM_ZERO = ("counting t from 0 (t = iterations): 1 - beta_1**0 = 0, a division by zero at the first step",
               "Keras's step number is t = iterations + 1, so t = 1 at the first step")
T_FROM_ZERO_ZH = ("从 0 开始数 t（t = iterations）：1 - beta_1**0 = 0，第一步就除以零",
                  "Keras 的步数是 t = iterations + 1，所以第一步 t = 1")


def _run_adam(fn):
    def run(w0, grads, lr, beta_1, beta_2, epsilon):
        w, m, v = w0.copy(), np.zeros_like(w0), np.zeros_like(w0)
        for it, g in enumerate(grads):
            args = (w, g, m, v, it, lr, beta_1, beta_2, epsilon)
            try:
                with np.errstate(divide="raise", invalid="raise"):
                    out = call_student(fn, args, "adam_step")
            except (ZeroDivisionError, FloatingPointError):
                if it == 0:
                    raise AssertionError(tr(f"adam_step (iterations = 0): your step divides by zero, which is "
                                            f"what {T_FROM_ZERO[0]} gives. {T_FROM_ZERO[1]}",
                                            f"adam_step（iterations = 0）：你的这一步除以了零，这正是"
                                            f"「{T_FROM_ZERO_ZH[0]}」会得到的结果。{T_FROM_ZERO_ZH[1]}")) from None
                raise
            w, m, v = _returned(out, 3, tr(f"adam_step (iterations = {it})", f"adam_step（iterations = {it}）"),
                                ("w", "m", "v"))
            if it == 0 and not np.all(np.isfinite(w)):
                raise AssertionError(tr(f"adam_step (iterations = 0): your w is not finite, which is what "
                                        f"{T_FROM_ZERO[0]} gives. {T_FROM_ZERO[1]}",
                                        f"adam_step（iterations = 0）：你的 w 不是有限值，这正是"
                                        f"「{T_FROM_ZERO_ZH[0]}」会得到的结果。{T_FROM_ZERO_ZH[1]}"))
        return w, m, v
    return run


def _adam_cases():
    rng = np.random.default_rng(52)

    def grads(t, shape, scale=1.0):
        return (scale * rng.standard_normal((t, *shape))).astype(np.float32)
    return [
        ((rng.standard_normal((4, 6)).astype(np.float32), grads(10, (4, 6)), 1e-3, 0.9, 0.999, 1e-7),
         tr("Keras's defaults: lr 1e-3, betas 0.9 / 0.999, epsilon 1e-7, 10 steps, w (4, 6)",
            "Keras 的默认值：lr 1e-3，betas 0.9 / 0.999，epsilon 1e-7，10 步，w (4, 6)")),
        ((rng.standard_normal((3, 3, 2, 2)).astype(np.float32), grads(8, (3, 3, 2, 2)), 1e-2, 0.5, 0.9,
          1e-7), tr("betas 0.5 / 0.9 (the caller's, not the defaults), lr 1e-2, 8 steps, w (3, 3, 2, 2)",
                    "betas 0.5 / 0.9（调用者给的，不是默认值），lr 1e-2，8 步，w (3, 3, 2, 2)")),
        ((rng.standard_normal((5, 3)).astype(np.float32), grads(10, (5, 3), 1e-4), 1e-2, 0.9, 0.999, 1e-7),
         tr("tiny gradients (~1e-4, as deep in a network), lr 1e-2, 10 steps, w (5, 3)",
            "极小的梯度（约 1e-4，像在网络深处那样），lr 1e-2，10 步，w (5, 3)")),
        ((rng.standard_normal(6).astype(np.float32), grads(8, (6,)), 1e-2, 0.9, 0.999, 0.1),
         tr("a large epsilon 0.1, lr 1e-2, 8 steps, w (6,)", "很大的 epsilon 0.1，lr 1e-2，8 步，w (6,)")),
    ]


def _adam_package(w0, grads, lr, beta_1, beta_2, epsilon):
    opt, p = Adam(lr, beta_1, beta_2, epsilon), {"w": w0.copy()}
    for g in grads:
        opt.apply(p, {"w": g})
    return p["w"], opt.slots["m"]["w"].copy(), opt.slots["v"]["w"].copy()


def _adam_keras(keras, w0, grads, lr, beta_1, beta_2, epsilon):
    var = keras.Variable(w0.copy())
    opt = keras.optimizers.Adam(learning_rate=lr, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    opt.build([var])
    for g in grads:
        opt.apply_gradients([(keras.ops.convert_to_tensor(g), var)])
    slots = {v.name.rsplit("_", 1)[-1]: np.asarray(v) for v in opt.variables}   # w_momentum, w_velocity
    return np.asarray(var), slots["momentum"], slots["velocity"]


def check_adam(fn, against_keras=True):
    """fn(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon) -> (w_new, m_new, v_new), one step of Keras
    3's Adam; iterations = steps already taken (0 at the first step), t = iterations + 1. float32 arrays
    in and out. Run over several steps and compared with ``unet_scratch.optimizers.Adam`` and, if
    TensorFlow is installed, ``keras.optimizers.Adam``, to rtol = atol = 1e-6. Not bit for bit: Keras
    casts beta_2 to float32 before 1 - beta_2**t (1 - float32(0.999) = 0.00099998713), so its step size
    differs from one computed with Python floats by up to 6e-6 relative at t = 1, about 5e-7 on a weight
    after ten full-size steps of lr 1e-2."""
    cases = _adam_cases()
    run = _run_adam(fn)
    ok = check_arrays(run, [(args, _adam_package(*args), label) for args, label in cases],
                      "adam_step vs unet_scratch.optimizers.Adam", rtol=1e-6, atol=ADAM_ATOL,
                      mistakes=ADAM_MISTAKES)
    return ok and _also_keras(run, cases, _adam_keras, "adam_step vs keras.optimizers.Adam", ADAM_MISTAKES,
                              against_keras, atol=ADAM_ATOL)


# ------------------------------------------------------------------ 3. inverted dropout


def _dropout_answer(x, dy, rate, seed, training, kind="right"):
    """(y, dx) of a dropout with a given mistake; the mask from default_rng(seed), like the check's."""
    rng = np.random.default_rng(seed)
    if (not training and kind != "at_inference") or rate == 0:
        return x, dy
    u = rng.random(x.shape)
    keep = (u < 1 - rate) if kind == "other_mask" else (u >= rate)
    scale = {"not_rescaled": 1.0, "times_keep": 1 - rate, "over_rate": 1 / rate}.get(kind, 1 / (1 - rate))
    mask = (keep * scale).astype(x.dtype)
    if kind == "new_mask":
        back = ((rng.random(x.shape) >= rate) / (1 - rate)).astype(x.dtype)
        return x * mask, dy * back
    return x * mask, dy * mask


def _dropout_mistake(name, fix, kind, zh=None):
    return Mistake(name, fix, lambda x, dy, rate, seed, training: _dropout_answer(x, dy, rate, seed, training,
                                                                                    kind), zh=zh)


DROPOUT_MISTAKES = [
    _dropout_mistake("dropout without rescaling (y = x * keep)",
                     "divide the kept units by 1 - rate, so that E[y] = x and inference needs no change",
                     "not_rescaled",
                     zh=("没有重新缩放的 Dropout（y = x * keep）",
                         "把保留下来的单元除以 1 - rate，这样 E[y] = x，推理时就不需要任何改动")),
    _dropout_mistake("multiplying the kept units by 1 - rate",
                     "inverted dropout divides by the keep probability: y = x * keep / (1 - rate)", "times_keep",
                     zh=("把保留下来的单元乘以 1 - rate",
                         "反向 Dropout 除以保留概率：y = x * keep / (1 - rate)")),
    _dropout_mistake("dividing the kept units by rate",
                     "the keep probability is 1 - rate: y = x * keep / (1 - rate)", "over_rate",
                     zh=("把保留下来的单元除以 rate",
                         "保留概率是 1 - rate：y = x * keep / (1 - rate)")),
    _dropout_mistake("dropout applied at inference (training=False)",
                     "at inference dropout is the identity: return x (and dx = dy) when training is False",
                     "at_inference",
                     zh=("推理时也做了 Dropout（training=False）",
                         "推理时 Dropout 是恒等映射：training 为 False 时返回 x（且 dx = dy）")),
    _dropout_mistake("a new mask drawn in the backward pass",
                     "the backward pass must use the forward's mask: keep it in the cache, dx = dy * mask",
                     "new_mask",
                     zh=("在反向传播中重新抽了一个掩码",
                         "反向传播必须用前向传播的掩码：把它存进 cache，dx = dy * mask")),
    _dropout_mistake("the mask keep = u < 1 - rate",
                     "that keeps each unit with the right probability, but not the same units as TensorFlow "
                     "and ops.dropout, which keep where u >= rate (u = rng.random(x.shape)); use that rule "
                     "so your masks can be compared", "other_mask",
                     zh=("掩码取 keep = u < 1 - rate",
                         "这样每个单元被保留的概率是对的，但保留的单元与 TensorFlow 和 ops.dropout 不同，后两者在"
                         " u >= rate 处保留（u = rng.random(x.shape)）；用这条规则，你的掩码才能拿来比较")),
]


def _name(fn, default):
    name = getattr(fn, "__name__", "")
    return name if name.isidentifier() else default


def _run_dropout(forward, backward):
    fname, bname = _name(forward, "dropout_forward"), _name(backward, "dropout_backward")

    def run(x, dy, rate, seed, training):
        out = call_student(forward, (x, rate, np.random.default_rng(seed), training), fname)
        if not isinstance(out, tuple) or len(out) != 2:
            raise AssertionError(tr(f"{fname}: return (y, cache), the cache being what {bname} needs (the "
                                    f"mask); got {type(out).__name__}",
                                    f"{fname}：要返回 (y, cache)，cache 是 {bname} 需要的东西（掩码）；"
                                    f"你返回的是 {type(out).__name__}"))
        y, cache = out
        dx = call_student(backward, (dy, cache), bname)
        if y is None or dx is None:
            raise AssertionError(tr(f"{fname} / {bname} returned None; did you forget `return`?",
                                    f"{fname} / {bname} 返回了 None；是不是忘了写 `return`？"))
        return np.asarray(y), np.asarray(dx)
    return run


def check_dropout(forward, backward):
    """forward(x, rate, rng, training) -> (y, cache) and backward(dy, cache) -> dx: inverted dropout, as
    ``ops.dropout``: at training, u = rng.random(x.shape) (one draw), keep where u >= rate,
    y = x * keep / (1 - rate), dx = dy * the same mask; the identity when not training or rate == 0."""
    rng = np.random.default_rng(53)
    cases = []
    for shape, rate, training, label in [
            ((4, 6, 6, 3), 0.3, True, tr("rate 0.3, training, x (4, 6, 6, 3)", "rate 0.3，训练，x (4, 6, 6, 3)")),
            ((2, 8, 8, 5), 0.7, True, tr("rate 0.7, training, x (2, 8, 8, 5)", "rate 0.7，训练，x (2, 8, 8, 5)")),
            ((2, 4, 4, 16), 0.5, True, tr("rate 0.5 (the article's), training", "rate 0.5（原文的取值），训练")),
            ((2, 4, 4, 16), 0.5, False, tr("rate 0.5 at inference (training=False)",
                                           "rate 0.5，推理（training=False）")),
            ((3, 5, 5, 2), 0.0, True, tr("rate 0, training", "rate 0，训练"))]:
        x = rng.standard_normal(shape).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        seed = int(rng.integers(2 ** 31))
        reference_rng = np.random.default_rng(seed)
        y, mask = _reference_dropout(x, rate, reference_rng, training)
        expected = (y, dy if mask is None else dy * mask)
        cases.append(((x, dy, rate, seed, training), expected, label))
    return check_arrays(_run_dropout(forward, backward), cases, "dropout forward and backward", rtol=1e-6,
                        atol=1e-7, mistakes=DROPOUT_MISTAKES)


# ------------------------------------------------------------------ 4. initialisation: fans, He, Glorot


FANS_MISTAKES = [
    Mistake("the fans without the receptive field (shape[-2], shape[-1])",
            "each output of a KH x KW convolution sums KH * KW * C inputs: multiply both fans by the product "
            "of the leading (kernel) dimensions",
            lambda shape: (shape[-2], shape[-1]) if len(shape) >= 2 else None,
            zh=("计算 fan 时没有乘感受野（shape[-2], shape[-1]）",
                "KH x KW 卷积的每个输出是 KH * KW * C 个输入之和：两个 fan 都要乘以前面几个（卷积核）维度的乘积")),
    Mistake("fan_in and fan_out swapped",
            "Keras's kernels end in (..., inputs, outputs): fan_in uses shape[-2], fan_out shape[-1] (for a "
            "Conv2DTranspose kernel (KH, KW, out, in) Keras applies the same rule)",
            lambda shape: compute_fans(shape)[::-1],
            zh=("fan_in 和 fan_out 对调了",
                "Keras 的卷积核以 (..., 输入, 输出) 结尾：fan_in 用 shape[-2]，fan_out 用 shape[-1]"
                "（对 Conv2DTranspose 的卷积核 (KH, KW, out, in)，Keras 也用同样的规则）")),
]


def check_compute_fans(fn):
    """fn(shape) -> (fan_in, fan_out) as Keras's ``compute_fans``: () -> (1, 1), (n,) -> (n, n),
    (a, b) -> (a, b), (k1, ..., a, b) -> (k1 * ... * a, k1 * ... * b)."""
    shapes = [(3, 3, 64, 128), (2, 2, 128, 256), (1, 1, 64, 1), (3, 3, 1, 64), (5, 7), (64, 10), (7,), ()]
    cases = [((shape,), compute_fans(shape)) for shape in shapes]
    plain = lambda shape: _as_ints(call_student(fn, (shape,), "compute_fans"))    # noqa: E731
    return check_cases(plain, cases, "compute_fans", mistakes=FANS_MISTAKES)


def _as_ints(fans):
    try:
        return tuple(int(f) for f in fans)
    except TypeError:
        return fans


class _Stats:
    """What a distribution of weights looks like: its variance, its bound (None: unbounded), its mean."""

    def __init__(self, var, bound=None, mean=0.0):
        self.var, self.bound, self.mean = float(var), bound, float(mean)


def _he_stats(fan_in, std_factor=1.0, bound_factor=2.0, truncated=True):
    std = math.sqrt(2.0 / fan_in) / TRUNCATED_NORMAL_STD * std_factor       # before truncation
    var = (std * TRUNCATED_NORMAL_STD) ** 2 if truncated else std ** 2
    return _Stats(var, bound_factor * std if truncated else None)


def _glorot_stats(fan_in, fan_out, limit_factor=1.0, centred=True):
    limit = math.sqrt(6.0 / (fan_in + fan_out)) * limit_factor
    return _Stats(limit ** 2 / (3 if centred else 12), limit, 0.0 if centred else limit / 2)


def _fans_no_field(shape):
    return (shape[-2], shape[-1])


HE_MISTAKES = [
    Mistake("fans without the receptive field (fan_in = C, not KH * KW * C)",
            "fan_in counts every input of one output: KH * KW * C for a (KH, KW, C, F) kernel",
            lambda shape: _he_stats(_fans_no_field(shape)[0]),
            zh=("计算 fan 时没有乘感受野（fan_in = C，而不是 KH * KW * C）",
                "fan_in 数的是一个输出的全部输入：对 (KH, KW, C, F) 的卷积核是 KH * KW * C")),
    Mistake("fan_out where fan_in belongs",
            "He scales by the inputs of a unit: std = sqrt(2 / fan_in), fan_in = KH * KW * shape[-2]",
            lambda shape: _he_stats(compute_fans(shape)[1]),
            zh=("该用 fan_in 的地方用了 fan_out",
                "He 按一个单元的输入数缩放：std = sqrt(2 / fan_in)，fan_in = KH * KW * shape[-2]")),
    Mistake("an untruncated normal with std sqrt(2 / fan_in) (the paper's initialiser, not Keras's he_normal)",
            "same variance, but Keras's he_normal is a TRUNCATED normal: draw with std sqrt(2 / fan_in) / "
            "0.8796..., redraw every value beyond two of those standard deviations",
            lambda shape: _he_stats(compute_fans(shape)[0], TRUNCATED_NORMAL_STD, truncated=False),
            zh=("标准差为 sqrt(2 / fan_in) 的不截断正态分布（论文的初始化，不是 Keras 的 he_normal）",
                "方差相同，但 Keras 的 he_normal 是截断正态分布：用标准差 sqrt(2 / fan_in) / 0.8796... 抽样，"
                "超出两个标准差的值全部重抽")),
    Mistake("an untruncated normal with Keras's std sqrt(2 / fan_in) / 0.8796",
            "the division by 0.8796 makes up for the truncation: redraw the values beyond two standard "
            "deviations, and the variance comes back to 2 / fan_in",
            lambda shape: _he_stats(compute_fans(shape)[0], truncated=False),
            zh=("用 Keras 的标准差 sqrt(2 / fan_in) / 0.8796 抽样，但没有截断",
                "除以 0.8796 是为了补偿截断：把超出两个标准差的值重抽，方差就回到 2 / fan_in")),
    Mistake("the truncated normal without Keras's 0.8796 correction (std sqrt(2 / fan_in), cut at two std)",
            "cutting the tails lowers the standard deviation to 0.8796 of the std you drew with: draw with "
            "sqrt(2 / fan_in) / 0.87962566103423978 so that the result has std sqrt(2 / fan_in)",
            lambda shape: _he_stats(compute_fans(shape)[0], TRUNCATED_NORMAL_STD),
            zh=("截断正态分布，但没有 Keras 的 0.8796 修正（标准差 sqrt(2 / fan_in)，在两个标准差处截断）",
                "截掉尾部会把标准差降到抽样所用标准差的 0.8796 倍：用 sqrt(2 / fan_in) / 0.87962566103423978 "
                "抽样，结果的标准差才是 sqrt(2 / fan_in)")),
]

GLOROT_MISTAKES = [
    Mistake("a normal with Glorot's variance (glorot_normal) where a uniform is asked",
            "glorot_uniform draws from U(-limit, limit), limit = sqrt(6 / (fan_in + fan_out)): rng.uniform",
            lambda shape: _Stats(2.0 / sum(compute_fans(shape)), None),
            zh=("要的是均匀分布，却用了方差为 Glorot 方差的正态分布（glorot_normal）",
                "glorot_uniform 从 U(-limit, limit) 中抽样，limit = sqrt(6 / (fan_in + fan_out))：用 rng.uniform")),
    Mistake("fans without the receptive field (C + F instead of KH * KW * (C + F))",
            "fan_in + fan_out = KH * KW * (C + F) for a (KH, KW, C, F) kernel",
            lambda shape: _glorot_stats(*_fans_no_field(shape)),
            zh=("计算 fan 时没有乘感受野（C + F，而不是 KH * KW * (C + F)）",
                "对 (KH, KW, C, F) 的卷积核，fan_in + fan_out = KH * KW * (C + F)")),
    Mistake("the standard deviation sqrt(2 / (fan_in + fan_out)) used as the limit",
            "U(-a, a) has variance a**2 / 3: the limit is sqrt(6 / (fan_in + fan_out))",
            lambda shape: _glorot_stats(*compute_fans(shape), limit_factor=1 / math.sqrt(3)),
            zh=("把标准差 sqrt(2 / (fan_in + fan_out)) 当成了界限",
                "U(-a, a) 的方差是 a**2 / 3：界限是 sqrt(6 / (fan_in + fan_out))")),
    Mistake("U[0, limit) instead of U(-limit, limit) (rng.random() * limit)",
            "centre the draw: rng.uniform(-limit, limit, size=shape)",
            lambda shape: _glorot_stats(*compute_fans(shape), centred=False),
            zh=("用了 U[0, limit) 而不是 U(-limit, limit)（rng.random() * limit）",
                "让分布以 0 为中心：rng.uniform(-limit, limit, size=shape)")),
]
GLOBAL_RNG = ("the global generator (np.random.randn, np.random.uniform) instead of rng",
              "draw from the rng argument (rng.standard_normal, rng.uniform), so a seed gives the same weights")
GLOBAL_RNG_ZH = ("用了全局随机数生成器（np.random.randn、np.random.uniform），而不是 rng",
                 "从参数 rng 中抽样（rng.standard_normal、rng.uniform），这样同一个种子给出同样的权重")


def _matches_stats(w, stats, n):
    std_err_mean = math.sqrt(stats.var / n)
    if abs(float(w.var()) / stats.var - 1) > 0.03 or abs(float(w.mean()) - stats.mean) > 6 * std_err_mean:
        return False
    top = float(np.abs(w).max())
    if stats.bound is None:
        return True
    return 0.95 * stats.bound <= top <= stats.bound * (1 + 1e-3)      # 1e-3: 0.8796 for 0.87962566 is fine


def _check_initializer(fn, what, right, mistakes, shapes, bound_name):
    worst = 0.0
    for k, shape in enumerate(shapes):
        label = tr(f"shape {shape}", f"形状 {shape}")
        seed = 540 + k
        w = call_student(fn, (shape, np.random.default_rng(seed)), what)
        if w is None:
            raise AssertionError(message("returned_none", what=what, label=label))
        w = np.asarray(w)
        if w.shape != tuple(shape) or w.dtype != np.float32:
            raise AssertionError(tr(f"{what} ({label}): got an array of shape {w.shape}, dtype {w.dtype}; expected "
                                    f"shape {tuple(shape)}, float32 (the dtype argument's default)",
                                    f"{what}（{label}）：得到的数组形状为 {w.shape}，dtype 为 {w.dtype}；应为形状 "
                                    f"{tuple(shape)}，float32（dtype 参数的默认值）"))
        again = np.asarray(call_student(fn, (shape, np.random.default_rng(seed)), what))
        if not np.array_equal(w, again):
            raise AssertionError(tr(f"{what} ({label}): two calls with the same seed gave different weights: "
                                    f"that is what {GLOBAL_RNG[0]} gives. {GLOBAL_RNG[1]}",
                                    f"{what}（{label}）：用同一个种子调用两次，得到的权重不同：这正是"
                                    f"「{GLOBAL_RNG_ZH[0]}」会得到的结果。{GLOBAL_RNG_ZH[1]}"))
        n = w.size
        expected = right(shape)
        if not _matches_stats(w, expected, n):
            for mistake in mistakes:
                try:
                    wrong = mistake.answer(shape)
                except Exception:
                    continue
                if _matches_stats(w, wrong, n):
                    m_name, m_fix = mistake.text()
                    raise AssertionError(tr(f"{what} ({label}): your weights look like what {m_name} "
                                            f"gives. {m_fix}",
                                            f"{what}（{label}）：你的权重看起来正是「{m_name}」会得到的结果。{m_fix}"))
            top = float(np.abs(w).max())
            bound = tr("unbounded", "无界") if expected.bound is None else f"{expected.bound:.4g}"
            raise AssertionError(tr(f"{what} ({label}): variance {w.var():.4g} (expected {expected.var:.4g}, within "
                                    f"3 %), mean {w.mean():.3g} (expected {expected.mean:.3g}), largest |w| "
                                    f"{top:.4g} (expected up to the {bound_name[0]} {bound}, and near it)",
                                    f"{what}（{label}）：方差 {w.var():.4g}（应为 {expected.var:.4g}，误差在 3 % 以内），"
                                    f"均值 {w.mean():.3g}（应为 {expected.mean:.3g}），最大的 |w| 为 {top:.4g}"
                                    f"（应不超过{bound_name[1]}（{bound}），并且接近它）"))
        worst = max(worst, abs(float(w.var()) / expected.var - 1))
    print(message(f"correct_{what}", n=len(shapes), err=_percent(worst)))     # base.MESSAGES: both languages
    return True


def _percent(err):
    """A variance error as a bound that reads the same on every machine: 0.004 -> "< 1 %"."""
    return "< 1 %" if err < 0.01 else "< 2 %" if err < 0.02 else "< 3 %"


INIT_SHAPES = [(3, 3, 128, 128), (2, 2, 256, 512), (512, 256)]


def check_he_normal(fn):
    """fn(shape, rng, dtype="float32") -> weights like Keras's he_normal: a normal with std
    sqrt(2 / fan_in) / 0.87962566103423978, values beyond two of those std redrawn (truncated), so the
    result has variance 2 / fan_in. Checked by its variance (3 %), mean and bound on >= 131,072 values."""
    return _check_initializer(fn, "he_normal", lambda shape: _he_stats(compute_fans(shape)[0]), HE_MISTAKES,
                              INIT_SHAPES, ("truncation bound 2 sqrt(2 / fan_in) / 0.8796",
                                            "截断界 2 sqrt(2 / fan_in) / 0.8796"))


def check_glorot_uniform(fn):
    """fn(shape, rng, dtype="float32") -> weights like Keras's glorot_uniform: U(-limit, limit),
    limit = sqrt(6 / (fan_in + fan_out)), variance 2 / (fan_in + fan_out)."""
    return _check_initializer(fn, "glorot_uniform", lambda shape: _glorot_stats(*compute_fans(shape)),
                              GLOROT_MISTAKES, INIT_SHAPES, ("limit sqrt(6 / (fan_in + fan_out))",
                                                             "界限 sqrt(6 / (fan_in + fan_out))"))
