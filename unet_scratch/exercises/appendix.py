"""The troubleshooting appendix's exercises: padding to a legal size, fixing masks, class-balancing weights.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from .base import Mistake, tr
from .base import check_arrays as _check_arrays


# ------------------------------------------------------------------ 1. pad to a legal size
def _pad(x, depth, step=None, split=lambda total: (total // 2, total - total // 2), mode="reflect",
         always=False):
    step = 2 ** depth if step is None else step
    widths = [(0, 0)]
    for size in x.shape[1:3]:
        legal = (size // step + 1) * step if always else -(-size // step) * step
        widths.append(split(legal - size))
    return np.pad(x, widths + [(0, 0)], mode=mode)


PAD_MISTAKES = [
    Mistake("all the padding at the bottom and right",
            "split it: top = total // 2, bottom = total - top (the same for left and right), so the image "
            "stays centred and both borders get mirrored context",
            lambda x, depth: _pad(x, depth, split=lambda total: (0, total)),
            zh=("全部填充都放在了下边和右边",
                "要分开填：top = total // 2，bottom = total - top（左右也一样），这样图像保持居中，两条边界都得到镜像的上下文")),
    Mistake("the odd pixel padded at the top (or left)",
            "top = total // 2 and bottom = total - top: an odd pixel goes to the bottom (right)",
            lambda x, depth: _pad(x, depth, split=lambda total: (total - total // 2, total // 2)),
            zh=("多出的一个像素填在了上边（或左边）",
                "top = total // 2，bottom = total - top：多出的像素放在下边（右边）")),
    Mistake("zeros instead of a mirror (np.pad's mode='constant')",
            "use np.pad(..., mode='reflect'): the network sees mirrored context at the border, as in the "
            "paper's overlap-tile strategy",
            lambda x, depth: _pad(x, depth, mode="constant"),
            zh=("填零而不是镜像（np.pad 的 mode='constant'）",
                "用 np.pad(..., mode='reflect')：让网络在边界处看到镜像的上下文，与论文的重叠切片策略相同")),
    Mistake("a whole 2**depth added to a size that is already legal",
            "round UP to a multiple: legal = -(-size // 2**depth) * 2**depth, which leaves a legal size alone",
            lambda x, depth: _pad(x, depth, always=True),
            zh=("给本来就合法的尺寸又加了整整一个 2**depth",
                "向上取整到倍数：legal = -(-size // 2**depth) * 2**depth，合法的尺寸保持不变")),
    Mistake("a multiple of 2 * depth instead of 2 ** depth",
            "each of the depth poolings halves the size: the size must be divisible by 2 ** depth",
            lambda x, depth: _pad(x, depth, step=2 * depth),
            zh=("取了 2 * depth 的倍数，而不是 2 ** depth 的倍数",
                "depth 次池化每次都把尺寸减半：尺寸必须能被 2 ** depth 整除")),
]


def check_pad_to_legal(fn):
    """fn(x, depth) -> x mirrored (np.pad mode='reflect') to the next height and width divisible by 2**depth.

    x: (N, H, W, C). The padding of each axis is split as top = total // 2, bottom = total - top.
    A legal size is left as it is.
    """
    rng = np.random.default_rng(13)
    cases = []
    for shape, depth, label in [((1, 100, 100, 1), 4, tr("(1, 100, 100, 1), depth 4: 100 -> 112",
                                                         "(1, 100, 100, 1)，深度 4：100 -> 112")),
                                ((2, 50, 37, 3), 3, tr("(2, 50, 37, 3), depth 3: 50 -> 56, 37 -> 40",
                                                       "(2, 50, 37, 3)，深度 3：50 -> 56，37 -> 40")),
                                ((1, 96, 64, 1), 4, tr("(1, 96, 64, 1), depth 4: already legal",
                                                       "(1, 96, 64, 1)，深度 4：已经合法"))]:
        x = rng.random(shape, dtype=np.float32)
        cases.append(((x, depth), _pad(x, depth), label))
    return _check_arrays(fn, cases, "pad_to_legal", rtol=0, atol=0, mistakes=PAD_MISTAKES)


# ------------------------------------------------------------------ 2. fix a mask
def _mask_cases():
    rng = np.random.default_rng(11)
    truth = rng.random((2, 12, 10)) < 0.3
    noisy = np.where(truth, 255 - rng.integers(0, 40, truth.shape), rng.integers(0, 40, truth.shape))
    blurred = np.clip(truth + rng.normal(0, 0.15, truth.shape), 0, 1)
    f32 = lambda a: a.astype(np.float32)                                              # noqa: E731
    return [((truth.astype(np.uint8) * 255,), f32(truth), tr("uint8 mask stored as 0/255", "存成 0/255 的 uint8 掩码")),
            ((noisy.astype(np.uint8),), f32(truth), tr("uint8 mask saved as JPEG (values near 0 and 255)",
                                                       "存成 JPEG 的 uint8 掩码（值在 0 和 255 附近）")),
            ((truth.astype(np.float32),), f32(truth), tr("float mask already 0/1 (leave it alone)",
                                                         "已经是 0/1 的浮点掩码（保持原样）")),
            ((truth.astype(np.uint8),), f32(truth), tr("uint8 mask 0/1", "0/1 的 uint8 掩码")),
            ((truth,), f32(truth), tr("bool mask", "bool 掩码")),
            ((blurred,), f32(blurred > 0.5), tr("float mask in [0, 1] after interpolation",
                                                "插值后取值在 [0, 1] 内的浮点掩码")),
            ((truth[..., None].astype(np.float64) * 255,), f32(truth[..., None]),
             tr("float64 0/255, shape (N, H, W, 1)", "float64 的 0/255 掩码，形状 (N, H, W, 1)")),
            ((np.zeros((4, 4), np.uint8),), np.zeros((4, 4), np.float32),
             tr("an empty mask (all background)", "空掩码（全是背景）"))]


def _as_float(mask):
    return np.asarray(mask, dtype=np.float64)


MASK_MISTAKES = [
    Mistake("a division by 255 without a threshold",
            "JPEG noise leaves values like 17/255 and 238/255: threshold after scaling (or threshold 0/255 "
            "masks at 127.5 directly)",
            lambda m: (_as_float(m) / (255 if _as_float(m).max() > 1 else 1)).astype(np.float32),
            zh=("只除以 255，没有取阈值",
                "JPEG 噪声会留下 17/255、238/255 这样的值：缩放之后还要取阈值（或者直接在 127.5 处对 0/255 掩码取阈值）")),
    Mistake("one threshold of 0.5 for every mask",
            "on a 0/255 JPEG mask the background's noise (values 1 to 39) is above 0.5: threshold masks that "
            "go above 1 at 127.5",
            lambda m: (_as_float(m) > 0.5).astype(np.float32),
            zh=("所有掩码都用同一个阈值 0.5",
                "在 0/255 的 JPEG 掩码上，背景的噪声（1 到 39 之间的值）高于 0.5：最大值超过 1 的掩码要在 127.5 处取阈值")),
    Mistake("one threshold of 127.5 for every mask",
            "a mask already in [0, 1] is all below 127.5: threshold it at 0.5",
            lambda m: (_as_float(m) > 127.5).astype(np.float32),
            zh=("所有掩码都用同一个阈值 127.5", "已经在 [0, 1] 内的掩码全都低于 127.5：要在 0.5 处取阈值")),
]


def check_fix_mask(fn):
    """fn(mask) -> float32 array of the same shape with values in {0, 1}.

    0/255 masks (clean or JPEG-noisy) are thresholded at 127.5, masks in [0, 1] at 0.5.
    """
    cases = _mask_cases()
    _check_arrays(fn, cases, "fix_mask", rtol=0, atol=0, mistakes=MASK_MISTAKES)
    for args, _, label in cases:
        got = np.asarray(fn(*args))
        if got.dtype != np.float32:
            raise AssertionError(tr(f"fix_mask ({label}): the values are right but the dtype is {got.dtype}; "
                                    f"return float32 (what the losses expect)",
                                    f"fix_mask（{label}）：值是对的，但 dtype 是 {got.dtype}；"
                                    f"请返回 float32（损失函数要求的类型）"))
    return True


# ------------------------------------------------------------------ 3. the class-balancing weight
POS_WEIGHT_MISTAKES = [
    Mistake("foreground / background (the ratio upside down)",
            "the rare class gets the large weight: background pixels / foreground pixels",
            lambda m: np.float64((m == 1).sum() / (m == 0).sum()),
            zh=("前景 / 背景（比值颠倒了）", "稀少的类别得到大的权重：背景像素数 / 前景像素数")),
    Mistake("the background's share of all pixels",
            "divide by the foreground count, not by the number of pixels: (m == 0).sum() / (m == 1).sum()",
            lambda m: np.float64((m == 0).sum() / m.size),
            zh=("背景占全部像素的比例",
                "除以前景像素数，而不是全部像素数：(m == 0).sum() / (m == 1).sum()")),
    Mistake("the inverse of the foreground's share (all pixels / foreground)",
            "count only the background above the line: (m == 0).sum() / (m == 1).sum(), which is 1 less",
            lambda m: np.float64(m.size / (m == 1).sum()),
            zh=("前景比例的倒数（全部像素 / 前景）",
                "分子只数背景：(m == 0).sum() / (m == 1).sum()，比你的结果小 1")),
]


def check_pos_weight(fn):
    """fn(mask) -> float: background pixels / foreground pixels of a {0, 1} mask (the weight that makes the
    foreground count as much as the background in a weighted BCE)."""
    rng = np.random.default_rng(12)
    cases = []
    for shape, p in [((2, 16, 16, 1), 0.25), ((1, 32, 32, 1), 0.05), ((8, 8), 0.5)]:
        m = (rng.random(shape) < p).astype(np.float32)
        cases.append(((m,), np.float64((m == 0).sum() / (m == 1).sum()),
                      tr(f"mask of shape {shape}, {100 * m.mean():.0f}% foreground",
                         f"形状为 {shape} 的掩码，前景占 {100 * m.mean():.0f}%")))
    return _check_arrays(fn, cases, "pos_weight", rtol=1e-9, atol=0, mistakes=POS_WEIGHT_MISTAKES)
