"""Chapter 04's exercises: the gradient of a concatenation, the paper's centre crop and its gradient.
Each check names the classic mistakes of its exercise."""
from __future__ import annotations

import numpy as np

from ..ops.concat import center_crop, center_crop_backward, concatenate, concatenate_backward
from .base import Mistake, tr
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases


# ------------------------------------------------------------------ 1. concatenation backward
CONCAT_MISTAKES = [
    Mistake("swapping the halves (as if the concatenation were [skip, up], x2 first)",
            "y = [x1 | x2]: x1's c1 channels come FIRST, so dx1 = dy[..., :c1] and dx2 = dy[..., c1:]",
            lambda dy, c1: (dy[..., dy.shape[-1] - c1:], dy[..., :dy.shape[-1] - c1]),
            zh=("两半对调了（仿佛拼接是 [skip, up]，x2 在前）",
                "y = [x1 | x2]：x1 的 c1 个通道在前，所以 dx1 = dy[..., :c1]，dx2 = dy[..., c1:]")),
    Mistake("returning the two gradients in the wrong order (dx2, dx1)",
            "return (dx1, dx2): the gradient of the first input first",
            lambda dy, c1: (dy[..., c1:], dy[..., :c1]),
            zh=("两个梯度的返回顺序颠倒了（dx2, dx1）",
                "返回 (dx1, dx2)：第一个输入的梯度在前")),
    Mistake("returning dy whole for both inputs",
            "each input receives only its own channels of dy: split it at channel c1",
            lambda dy, c1: (dy, dy),
            zh=("给两个输入都返回了完整的 dy",
                "每个输入只得到 dy 中属于它自己的通道：在第 c1 个通道处切开")),
    Mistake("splitting along the rows (axis 1) instead of the channels",
            "the U-Net concatenates along the last axis (channels last, NHWC): split dy[..., :c1]",
            lambda dy, c1: (dy[:, :c1], dy[:, c1:]),
            zh=("沿行（轴 1）而不是沿通道切分",
                "U-Net 沿最后一个轴拼接（通道在最后，NHWC）：切分 dy[..., :c1]")),
]


def check_concat_backward(fn):
    """fn(dy, c1) -> (dx1, dx2): the gradients of y = concatenate([x1, x2]) (channels last) for the two
    inputs, where x1 had c1 channels. dy: (N, H, W, C1 + C2)."""
    rng = np.random.default_rng(4)
    cases = []
    for shape, c1, label in [((2, 4, 4, 5), 3, tr("3 + 2 channels", "3 + 2 个通道")),
                             ((1, 3, 5, 8), 4, tr("4 + 4 channels", "4 + 4 个通道")),
                             ((2, 2, 2, 7), 1, tr("1 + 6 channels", "1 + 6 个通道")),
                             ((1, 6, 6, 16), 8, tr("the decoder's 8 + 8", "解码器的 8 + 8"))]:
        dy = rng.standard_normal(shape)
        _, cache = concatenate([np.zeros(shape[:3] + (c1,)), np.zeros(shape[:3] + (shape[3] - c1,))])
        cases.append(((dy, c1), tuple(concatenate_backward(dy, cache)),
                      tr(f"{label}, dy {shape}", f"{label}，dy {shape}")))
    return _check_arrays(fn, cases, "concat_backward", rtol=0, atol=0, mistakes=CONCAT_MISTAKES)


# ------------------------------------------------------------------ 2. the paper's crops
def _valid_unet_crops(size, depth):
    """Per-side crop of each skip, top level first, read off the package's valid U-Net."""
    from ..model import UNet
    model = UNet(input_shape=(size, size, 1), base_filters=1, depth=depth, padding="valid", dropout=0, seed=0)
    return [block.crop.cropping[0][0] for block in reversed(model.decoder)]


def _one_conv_per_level(size, depth):
    """The crops of a U-Net with ONE 3x3 valid conv per level (2 pixels lost, not 4)."""
    skips, n = [], size
    for _ in range(depth):
        n -= 2
        skips.append(n)
        n //= 2
    n -= 2
    crops = []
    for skip in reversed(skips):
        n *= 2
        crops.append((skip - n) // 2)
        n -= 2
    return crops[::-1]


SKIP_CROP_MISTAKES = [
    Mistake("the total crop (both sides together)",
            "give the pixels cut from EACH side: half the difference between the skip and the up-sampled map",
            lambda size, depth: [2 * c for c in _valid_unet_crops(size, depth)],
            zh=("给出了裁剪的总量（两边加在一起）",
                "给出每一边裁掉的像素数：跳跃连接的特征图与上采样特征图之差的一半")),
    Mistake("the levels in the wrong order (deepest first)",
            "list the top level (next to the input and the output) first: [88, 40, 16, 4] for 572",
            lambda size, depth: _valid_unet_crops(size, depth)[::-1],
            zh=("各层的顺序颠倒了（最深层在前）",
                "最上层（紧挨输入和输出的那一层）排在最前：572 时为 [88, 40, 16, 4]")),
    Mistake("one 3x3 convolution per level (2 pixels lost instead of 4)",
            "each level has TWO valid 3x3 convolutions, each losing 1 pixel per side",
            _one_conv_per_level,
            zh=("每层只算了一次 3x3 卷积（少了 2 个像素，而不是 4 个）",
                "每层有两次 valid 3x3 卷积，每次每边少 1 个像素")),
]


def check_skip_crops(fn):
    """fn(size, depth) -> [c_1, ..., c_depth]: the pixels cut from EACH side of the skip at decoder level
    1 (top) ... depth (deepest) in the paper's valid U-Net (two 3x3 valid convs per level) for a
    size x size input tile."""
    cases = [(args, _valid_unet_crops(*args)) for args in [(572, 4), (188, 4), (92, 3), (44, 2), (28, 1)]]
    return _check_cases(fn, cases, "skip_crops", mistakes=SKIP_CROP_MISTAKES)


# ------------------------------------------------------------------ 3. centre-crop backward
def _paste(dy, x_shape, top, left):
    dx = np.zeros(x_shape, dy.dtype)
    dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
    return dx


CROP_MISTAKES = [
    Mistake("the window pasted at the top-left corner (offset 0 instead of the centre)",
            "the crop kept the CENTRE: paste at top = (H - h) // 2, left = (W - w) // 2",
            lambda dy, x_shape: _paste(dy, x_shape, 0, 0),
            zh=("窗口贴在了左上角（偏移为 0，而不是居中）",
                "裁剪保留的是中心：贴在 top = (H - h) // 2、left = (W - w) // 2 处")),
    Mistake("an odd difference split the wrong way (the extra row or column cut on top or left)",
            "with H - h odd the crop cuts (H - h) // 2 rows on top and one more at the bottom: "
            "top = (H - h) // 2, rounded down",
            lambda dy, x_shape: _paste(dy, x_shape, -(-(x_shape[1] - dy.shape[1]) // 2),
                                       -(-(x_shape[2] - dy.shape[2]) // 2)),
            zh=("差值为奇数时分错了边（多出的一行或一列裁在了上方或左侧）",
                "H - h 为奇数时，裁剪在上方裁掉 (H - h) // 2 行，下方多裁一行："
                "top = (H - h) // 2，向下取整")),
    Mistake("returning dy itself (the cropped shape)",
            "the gradient has the shape of the crop's INPUT x: zeros, with dy pasted into the window",
            lambda dy, x_shape: dy,
            zh=("直接返回了 dy（裁剪后的形状）",
                "梯度的形状是裁剪的输入 x 的形状：全零，再把 dy 贴进窗口")),
]


def check_center_crop_backward(fn):
    """fn(dy, x_shape) -> dx: the gradient of center_crop(x, dy.shape[1:3]) for x of shape x_shape:
    zeros, with dy pasted into the window the crop took."""
    rng = np.random.default_rng(4)
    cases = []
    for x_shape, size, label in [((1, 8, 8, 2), (4, 4), "8x8 -> 4x4"),
                                 ((2, 9, 9, 1), (4, 4), tr("9x9 -> 4x4 (odd)", "9x9 -> 4x4（奇数差值）")),
                                 ((1, 10, 7, 3), (5, 4), "10x7 -> 5x4"),
                                 ((1, 5, 5, 2), (5, 5), tr("no crop", "不裁剪"))]:
        dy = rng.standard_normal((x_shape[0], *size, x_shape[3]))
        _, cache = center_crop(np.zeros(x_shape), size)
        cases.append(((dy, x_shape), center_crop_backward(dy, cache),
                      tr(f"{label}, x {x_shape}", f"{label}，x {x_shape}")))
    return _check_arrays(fn, cases, "center_crop_backward", rtol=0, atol=0, mistakes=CROP_MISTAKES)
