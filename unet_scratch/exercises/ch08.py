"""Chapter 08's exercises: the elastic deformation's resampling, a training step, the epoch's global Dice.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from .base import Mistake, call_student, message, tr
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. resampling image and mask by one field
def _resample(x, field, order, mode="reflect", sign=1.0, swap=False):
    from scipy import ndimage
    h, w = x.shape
    yy, xx = np.mgrid[0:h, 0:w]
    dy, dx = (field[1], field[0]) if swap else (field[0], field[1])
    return ndimage.map_coordinates(x, [yy + sign * dy, xx + sign * dx], order=order, mode=mode)


def _deformed(image, mask, field, order_mask=0, **kw):
    warped = np.clip(_resample(image, field, 3, **kw), image.min(), image.max()).astype(image.dtype)
    return warped, _resample(mask, field, order_mask, **kw).astype(mask.dtype)


DEFORM_MISTAKES = [
    Mistake("the mask interpolated like the image (bicubic: values between 0 and 1 at every edge)",
            "resample the mask with order=0 (nearest neighbour), so that it keeps exactly the values {0, 1}",
            lambda image, mask, field: _deformed(image, mask, field, order_mask=3),
            zh=('掩码像图像一样做了插值（双三次：每条边缘上都会出现 0 和 1 之间的值）',
                '用 order=0（最近邻）重采样掩码，这样它的取值仍然恰好是 {0, 1}')),
    Mistake("the mask interpolated bilinearly (order=1: values between 0 and 1 at every edge)",
            "resample the mask with order=0 (nearest neighbour), so that it keeps exactly the values {0, 1}",
            lambda image, mask, field: _deformed(image, mask, field, order_mask=1),
            zh=('掩码做了双线性插值（order=1：每条边缘上都会出现 0 和 1 之间的值）',
                '用 order=0（最近邻）重采样掩码，这样它的取值仍然恰好是 {0, 1}')),
    Mistake("the displacement subtracted (in(y - u_y, x - u_x): the field pushed forward)",
            "out(y, x) reads the input AT (y + u_y, x + u_x): add the field to the output pixel's coordinates",
            lambda image, mask, field: _deformed(image, mask, field, sign=-1.0),
            zh=('减去了位移（in(y - u_y, x - u_x)：把位移场往前推了）',
                'out(y, x) 读取的是输入在 (y + u_y, x + u_x) 处的值：把位移场加到输出像素的坐标上')),
    Mistake("the field's two components swapped (field[0] applied along x)",
            "field[0] is the displacement along the rows (y), field[1] along the columns (x)",
            lambda image, mask, field: _deformed(image, mask, field, swap=True),
            zh=('把位移场的两个分量弄反了（field[0] 用在了 x 方向上）',
                'field[0] 是沿行方向（y）的位移，field[1] 是沿列方向（x）的位移')),
    Mistake("zeros brought in at the border (mode='constant')",
            "mirror at the border: map_coordinates(..., mode='reflect')",
            lambda image, mask, field: _deformed(image, mask, field, mode="constant"),
            zh=("在边界处补进了零（mode='constant'）",
                "在边界处做镜像：map_coordinates(..., mode='reflect')")),
]


def check_deform_pair(fn):
    """fn(image, mask, field) -> (image', mask'): image (H, W) float32 resampled bicubically at
    (y + field[0], x + field[1]) with mirrored borders and clipped to its value range, mask (H, W) {0, 1}
    by nearest neighbour with the same field. field: (2, H, W) float64 pixels (``augment.displacement_field``)."""
    from ..augment import displacement_field, scaled_sigma
    from ..data import load
    images, masks = load("membranes", "train", n=2, size=64)
    cases = []
    for k, (sigma, label) in enumerate([(scaled_sigma((64, 64)), tr("membranes 64 x 64, sigma 1.25 px (scaled)",
                                                                    "细胞膜 64 x 64，sigma 1.25 像素（缩放后）")),
                                        (6.0, tr("membranes 64 x 64, sigma 6 px", "细胞膜 64 x 64，sigma 6 像素"))]):
        image, mask = images[k, ..., 0], masks[k, ..., 0]
        field = displacement_field(image.shape, np.random.default_rng(10 + k), sigma=sigma)
        cases.append(((image, mask, field), _deformed(image, mask, field), label))
    return _check_arrays(fn, cases, "deform_pair", rtol=1e-5, atol=1e-6, mistakes=DEFORM_MISTAKES)


# ------------------------------------------------------------------ 2. one training step
def _fresh_model(weights=None):
    from ..model import UNet
    model = UNet((16, 16, 1), base_filters=2, depth=2, dropout=0, seed=3)
    if weights is not None:
        model.set_weights({k: v.copy() for k, v in weights.items()})
    return model


def _bce(model, x, t, logits=True):
    from ..training import loss_from_logits
    return loss_from_logits(model, model.forward(x, training=True, logits=logits), t, loss="bce")[0]


# answer(weights before the step, weights after the reference step, x, t) -> the loss that mistake returns
TRAIN_STEP_MISTAKES = [
    Mistake("the sigmoid applied twice (forward without logits=True, its probabilities fed to "
            "loss_from_logits)",
            "call model.forward(x, training=True, logits=True): loss_from_logits applies the sigmoid itself",
            lambda before, after, x, t: _bce(_fresh_model(before), x, t, logits=False),
            zh=('sigmoid 用了两次（前向传播没有传 logits=True，却把得到的概率交给了 loss_from_logits）',
                '调用 model.forward(x, training=True, logits=True)：loss_from_logits 自己会做 sigmoid')),
    Mistake("the loss measured after the update",
            "return the loss of the forward pass the gradient came from, computed before optimizer.apply",
            lambda before, after, x, t: _bce(_fresh_model(after), x, t),
            zh=('在更新之后才计算损失',
                '返回产生这次梯度的那次前向传播的损失，它要在 optimizer.apply 之前算出')),
]


# not a wrong loss but weights that did not move: named in the check's own message
NO_UPDATE = Mistake("a step without an update",
                    "Call model.backward(dz), then optimizer.apply(model.params, model.grads)",
                    lambda before, after, x, t: _bce(_fresh_model(before), x, t),
                    zh=("没有更新的训练步", "先调用 model.backward(dz)，再调用 optimizer.apply(model.params, model.grads)"))


def check_train_step(fn):
    """fn(model, optimizer, x, t) -> loss: one BCE-from-logits step; compared with the reference step."""
    from ..optimizers import Adam
    from ..training import loss_from_logits
    rng = np.random.default_rng(0)
    x = rng.random((2, 16, 16, 1), dtype=np.float32)
    t = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float32)
    mine, ref = _fresh_model(), _fresh_model()
    start = {k: v.copy() for k, v in ref.params.items()}
    opt_mine, opt_ref = Adam(1e-2), Adam(1e-2)
    for step in range(2):
        before = {k: v.copy() for k, v in ref.params.items()}
        loss = call_student(fn, (mine, opt_mine, x, t), "train_step")
        z = ref.forward(x, training=True, logits=True)
        ref_loss, dz, _ = loss_from_logits(ref, z, t, loss="bce")
        ref.backward(dz)
        opt_ref.apply(ref.params, ref.grads)
        label = tr(f"train_step (step {step + 1})", f"train_step（第 {step + 1} 步）")
        if loss is None:
            raise AssertionError(tr(f"{label}: your function returned None; return the loss (a float)",
                                    f"{label}：你的函数返回了 None；请返回损失（一个浮点数）"))
        if not np.isclose(float(loss), ref_loss, rtol=1e-5):
            after = {k: v.copy() for k, v in ref.params.items()}
            for mistake in TRAIN_STEP_MISTAKES:
                if np.isclose(float(loss), mistake.answer(before, after, x, t), rtol=1e-5):
                    name, fix = mistake.text()
                    raise AssertionError(tr(f"{label}: your loss is what {name} gives. {fix}",
                                            f"{label}：你的损失正是「{name}」会得到的结果。{fix}"))
            raise AssertionError(tr(f"{label}: returned loss {float(loss):.6f}, expected {ref_loss:.6f} (binary "
                                    "cross-entropy from the logits, before the update)",
                                    f"{label}：返回的损失是 {float(loss):.6f}，应为 {ref_loss:.6f}（从 logits 计算、"
                                    "在更新之前的二元交叉熵）"))
        for param in ref.params:
            if not np.allclose(mine.params[param], ref.params[param], rtol=1e-5, atol=1e-7):
                if np.array_equal(mine.params[param], start[param]):
                    name, fix = NO_UPDATE.text()
                    raise AssertionError(tr(f"{label}: {param} did not change: that is what {name} gives. {fix}",
                                            f"{label}：{param} 没有变化：这正是「{name}」会得到的结果。{fix}"))
                raise AssertionError(tr(f"{label}: {param} differs from the reference step's (backward given dL/dz "
                                        "of the logits? one apply per step?)",
                                        f"{label}：{param} 与参考训练步的结果不同（backward 收到的是对 logits 的 "
                                        "dL/dz 吗？每一步只调用了一次 apply 吗？）"))
    print(message("correct_train_step"))
    return True


# ------------------------------------------------------------------ 3. the epoch's global Dice
def _per_image(p, t):
    pred, truth = p > 0.5, t > 0.5
    values = []
    for i in range(len(p)):
        total = pred[i].sum() + truth[i].sum()
        values.append(1.0 if total == 0 else 2 * (pred[i] & truth[i]).sum() / total)
    return np.float64(np.mean(values))


def _soft(p, t):
    total = p.sum() + t.sum()
    return np.float64(1.0 if total == 0 else 2 * (p * t).sum() / total)


def _empty_is_zero(p, t):
    pred, truth = p > 0.5, t > 0.5
    total = pred.sum() + truth.sum()
    return np.float64(0.0 if total == 0 else 2 * (pred & truth).sum() / total)


DICE_MISTAKES = [
    Mistake("the mean of per-image Dice values",
            "sum the intersections and the sizes over the whole batch first, then divide once",
            _per_image,
            zh=('各图像 Dice 值的平均',
                '先在整个批次上分别对交集和大小求和，最后只做一次除法')),
    Mistake("the soft Dice of the probabilities (no threshold)",
            "threshold first: P = probabilities > 0.5, T = targets > 0.5, then count pixels",
            _soft,
            zh=('对概率算的软 Dice（没有阈值化）',
                '先阈值化：P = probabilities > 0.5，T = targets > 0.5，然后数像素')),
    Mistake("0 for an empty prediction of an empty target",
            "0 / 0: nothing to find and nothing found is a perfect score, return 1.0",
            _empty_is_zero,
            zh=('目标为空、预测也为空时返回 0',
                '0 / 0：没有要找的，也什么都没找到，这是满分：返回 1.0')),
]


def check_global_dice(fn):
    """fn(probabilities, targets) -> float, the Dice over the whole batch at threshold 0.5."""
    rng = np.random.default_rng(1)
    p = rng.random((3, 8, 8, 1))
    t = (rng.random((3, 8, 8, 1)) > 0.6).astype(np.float32)
    pred, truth = p > 0.5, t > 0.5
    expected = float(2 * (pred & truth).sum() / (pred.sum() + truth.sum()))
    return _check_arrays(lambda a, b: np.float64(fn(a, b)), [
        ((p, t), np.float64(expected), tr("random batch of 3", "3 张图像的随机批次")),
        ((np.zeros((1, 4, 4, 1)), np.zeros((1, 4, 4, 1))), np.float64(1.0),
         tr("empty prediction, empty target", "预测为空，目标为空")),
        ((np.ones((1, 4, 4, 1)), np.zeros((1, 4, 4, 1))), np.float64(0.0),
         tr("everything predicted, nothing true", "全部预测为前景，目标全为背景")),
    ], "global_dice", mistakes=DICE_MISTAKES)
