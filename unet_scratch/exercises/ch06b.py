"""Chapter 06b's exercise: the backward pass of nearest-neighbour up-sampling (zhixuhao's up-step).

The forward copies every input pixel into a 2x2 block, ``y[n, i, j, c] = x[n, i // 2, j // 2, c]``; the
backward sums each 2x2 block of the gradient back onto the pixel it was copied from. The check compares
with the package's reference, :func:`unet_scratch.ops.upsample2d_backward` (the chapter compares with
``tf.GradientTape`` on ``keras.layers.UpSampling2D`` as well), and names the classic mistakes of this
exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from ..ops.upsample import upsample2d, upsample2d_backward
from .base import Mistake, tr
from .base import check_arrays as _check_arrays


def _blocks(dy):
    """dy: (N, 2H, 2W, C) -> (N, H, 2, W, 2, C): axes 2 and 4 run over the 2x2 block."""
    n, h2, w2, c = dy.shape
    return dy.reshape(n, h2 // 2, 2, w2 // 2, 2, c)


def _halves(dy):
    """dy: (N, 2H, 2W, C) -> (N, 2, H, 2, W, C): the reshape split the wrong way (axis 1 picks a half)."""
    n, h2, w2, c = dy.shape
    return dy.reshape(n, 2, h2 // 2, 2, w2 // 2, c)


UPSAMPLE_BACKWARD_MISTAKES = [
    Mistake("subsampling dy[:, ::2, ::2] (one pixel of each 2x2 block instead of the sum of all four)",
            "all four output pixels of a block are copies of the same x pixel, so all four gradients flow back "
            "to it: reshape dy to (N, H, 2, W, 2, C) and sum axes 2 and 4",
            lambda dy: dy[:, ::2, ::2, :],
            zh=("隔点抽样 dy[:, ::2, ::2]（每个 2x2 块只取了一个像素，而不是四个之和）",
                "一个块里的四个输出像素都是同一个 x 像素的副本，所以四份梯度都要流回它：把 dy 变形为 "
                "(N, H, 2, W, 2, C)，再对第 2、4 轴求和")),
    Mistake("the block mean (the sum divided by 4)",
            "the forward copies x with weight 1 into each of the 4 pixels, so each copy passes its gradient back "
            "with weight 1: sum, do not divide by 4 (a 1/4 belongs to average pooling, not to up-sampling)",
            lambda dy: _blocks(dy).mean(axis=(2, 4)),
            zh=("块的平均值（和再除以 4）",
                "前向把 x 以权重 1 复制到 4 个像素，每个副本都以权重 1 把梯度传回：求和，不要除以 4"
                "（1/4 属于平均池化，不属于上采样）")),
    Mistake("up-sampling dy again (the forward applied to dy: (N, 4H, 4W, C) instead of x's shape)",
            "the backward goes the other way, from y's shape (N, 2H, 2W, C) down to x's (N, H, W, C): "
            "sum each 2x2 block of dy",
            lambda dy: upsample2d(dy, 2)[0],
            zh=("又对 dy 做了一次上采样（把前向用在 dy 上：得到 (N, 4H, 4W, C)，而不是 x 的形状）",
                "反向传播方向相反，是从 y 的形状 (N, 2H, 2W, C) 回到 x 的 (N, H, W, C)：对 dy 的每个 2x2 块求和")),
    Mistake("summing over the wrong axes (axes 1 and 3 of the (N, H, 2, W, 2, C) reshape: the position inside "
            "the block kept, the image summed away)",
            "in (N, H, 2, W, 2, C) axes 1 and 3 are the block's row and column in the image, axes 2 and 4 the "
            "pixel inside the block: sum axes (2, 4)",
            lambda dy: _blocks(dy).sum(axis=(1, 3)),
            zh=("对错误的轴求和（对 (N, H, 2, W, 2, C) 的第 1、3 轴求和：保留了块内位置，把整幅图像加掉了）",
                "在 (N, H, 2, W, 2, C) 中，第 1、3 轴是块在图像中的行和列，第 2、4 轴是块内的像素：对 (2, 4) 轴求和")),
    Mistake("the reshape split the wrong way ((N, 2, H, 2, W, C): pixels H rows apart summed, not 2x2 "
            "neighbours)",
            "row 2*i + a of dy must become (i, a): the block index first, the position inside the block "
            "second, so reshape to (N, H, 2, W, 2, C), not (N, 2, H, 2, W, C)",
            lambda dy: _halves(dy).sum(axis=(1, 3)),
            zh=("变形时拆分的方向错了（(N, 2, H, 2, W, C)：加在一起的是相隔 H 行的像素，而不是 2x2 邻居）",
                "dy 的第 2*i + a 行应当变成 (i, a)：块的序号在前，块内位置在后，所以要变形为 (N, H, 2, W, 2, C)，"
                "而不是 (N, 2, H, 2, W, C)")),
]


def _cases():
    """(args, expected dx, label): the chapter's worked example first, then random gradients."""
    worked = np.arange(24, dtype=np.float64).reshape(1, 4, 6, 1)          # the example in the chapter's text
    rng = np.random.default_rng(66)
    shapes = [((2, 6, 8, 3), np.float64, tr("random float64 dy, 2 images, 6x8 -> 3x4, 3 channels",
                                            "随机的 float64 dy，2 幅图像，6x8 -> 3x4，3 个通道")),
              ((1, 10, 4, 2), np.float32, tr("random float32 dy, 10x4 -> 5x2, 2 channels",
                                             "随机的 float32 dy，10x4 -> 5x2，2 个通道")),
              ((3, 2, 2, 4), np.float64, tr("a single 2x2 block per image and channel",
                                            "每幅图像、每个通道只有一个 2x2 块"))]
    cases = [((worked,), upsample2d_backward(worked, ((1, 2, 3, 1), (2, 2))),
              tr("the worked example: dy = 0..23 as 4x6", "正文的算例：dy = 0..23，排成 4x6"))]
    for shape, dtype, label in shapes:
        dy = rng.standard_normal(shape).astype(dtype)
        n, h2, w2, c = shape
        cases.append(((dy,), upsample2d_backward(dy, ((n, h2 // 2, w2 // 2, c), (2, 2))), label))
    return cases


def check_upsample_backward(fn):
    """fn(dy) -> dx: the backward of 2x2 nearest-neighbour up-sampling. dy: (N, 2H, 2W, C) float,
    dx: (N, H, W, C), each dx pixel the sum of the 4 dy values of its 2x2 block."""
    return _check_arrays(fn, _cases(), "upsample_backward", rtol=1e-6, atol=1e-6,
                         mistakes=UPSAMPLE_BACKWARD_MISTAKES)
