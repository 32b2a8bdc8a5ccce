"""Chapter 10's exercises: mirrored borders, overlap-tile prediction, the skip crop.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from ..ops.activations import relu
from ..ops.conv import conv2d
from .base import Mistake, tr
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases

# ------------------------------------------------------------------ 1. mirroring
MIRROR_MISTAKES = [
    Mistake("the edge pixel repeated (np.pad's mode='symmetric')",
            "mirror ABOUT the edge pixel, as predict_tiled does (np.pad's 'reflect'): [a, b, c] padded by 1 is "
            "[b, a, b, c, b]",
            lambda a, m: np.pad(a, m, mode="symmetric"),
            zh=("重复了边缘像素（np.pad 的 mode='symmetric'）",
                "要以边缘像素为轴做镜像，与 predict_tiled 相同（np.pad 的 'reflect'）：[a, b, c] 填充 1 个像素得到 "
                "[b, a, b, c, b]")),
    Mistake("zeros around the image (np.pad's mode='constant')",
            "zeros are what a 'same' convolution sees; the paper extrapolates the missing context by mirroring",
            lambda a, m: np.pad(a, m, mode="constant"),
            zh=("在图像周围填了零（np.pad 的 mode='constant'）",
                "零是 'same' 卷积看到的东西；论文用镜像来外推缺失的上下文")),
    Mistake("the opposite edge copied in (np.pad's mode='wrap', periodic)",
            "the context beyond the top edge is the image reflected at that edge, not its bottom rows",
            lambda a, m: np.pad(a, m, mode="wrap"),
            zh=("把对面的边缘复制了过来（np.pad 的 mode='wrap'，周期延拓）",
                "上边缘之外的上下文是图像以这条边为轴的反射，而不是图像最下面的几行")),
]


def check_mirror_pad(fn):
    """fn(image, m) -> image (H, W) reflected by m pixels on every side (edge pixel not repeated)."""
    a = np.arange(12.0).reshape(3, 4)
    big = np.random.default_rng(0).random((9, 7))
    return _check_arrays(fn, [((a, 1), np.pad(a, 1, mode="reflect"), tr("3 x 4, m = 1", "3 x 4，m = 1")),
                             ((big, 3), np.pad(big, 3, mode="reflect"), tr("9 x 7, m = 3", "9 x 7，m = 3")),
                             ((big, 0), big, "m = 0")], "mirror_pad", rtol=0, atol=0, mistakes=MIRROR_MISTAKES)


# ------------------------------------------------------------------ 2. overlap-tile prediction
class ValidNet:
    """A tiny 'valid' network: two 3x3 valid convolutions with a ReLU between them, so an input of
    t x t pixels gives (t - 4) x (t - 4) (a margin of 2 per side). Called on one tile at a time; it refuses
    anything that is not a tile of ``tile`` x ``tile`` pixels, as a network built for one tile size would.
    ``full(x)`` runs it on an input of any size (what one big pass gives). Its weights are small integers,
    so on integer images every sum is exact in float64 and tiled and untiled results agree to the bit."""

    margin = 2

    def __init__(self, tile, seed=0):
        rng = np.random.default_rng(seed)
        self.tile = tile
        self.w1 = rng.integers(-2, 3, (3, 3, 1, 4)).astype(np.float64)
        self.w2 = rng.integers(-2, 3, (3, 3, 4, 1)).astype(np.float64)

    def full(self, x):
        h = relu(conv2d(x[None, :, :, None], self.w1, None, 1, "valid")[0])[0]
        return conv2d(h, self.w2, None, 1, "valid")[0][0, :, :, 0]

    def __call__(self, x):
        x = np.asarray(x)
        if x.shape != (self.tile, self.tile):
            raise ValueError(tr(f"this network takes one tile of {self.tile} x {self.tile} pixels, got an array "
                                f"of shape {x.shape}: cut the padded image into tiles",
                                f"这个网络一次只接受一块 {self.tile} x {self.tile} 像素的切片，你给的数组形状是 "
                                f"{x.shape}：请把填充后的图像切成一块块切片"))
        return self.full(x)


def _stepped_by_tile(f, image, tile, out):
    m = (tile - out) // 2
    right = f.full(np.pad(image, m, mode="reflect"))
    wrong = np.zeros_like(image)
    for i in range(0, image.shape[0], tile):
        for j in range(0, image.shape[1], tile):
            wrong[i:i + out, j:j + out] = right[i:i + out, j:j + out]
    return wrong


TILE_MISTAKES = [
    Mistake("zero padding instead of mirroring (np.pad's mode='constant')",
            "the missing context at the border is the image mirrored: np.pad(image, ..., mode='reflect') "
            "(or your mirror_pad)",
            lambda f, image, tile, out: f.full(np.pad(image, (tile - out) // 2, mode="constant")),
            zh=("用零填充，而不是镜像（np.pad 的 mode='constant'）",
                "边界处缺失的上下文是图像的镜像：np.pad(image, ..., mode='reflect')（或者用你的 mirror_pad）")),
    Mistake("the edge pixel repeated (np.pad's mode='symmetric')",
            "mirror about the edge pixel: mode='reflect'",
            lambda f, image, tile, out: f.full(np.pad(image, (tile - out) // 2, mode="symmetric")),
            zh=("重复了边缘像素（np.pad 的 mode='symmetric'）", "以边缘像素为轴做镜像：mode='reflect'")),
    Mistake("no margin at the top and left (tiles cut from the image itself, the output shifted by the margin)",
            "pad by the margin m = (tile - out) // 2 on EVERY side: output pixel (i, j) needs input pixels "
            "i - m to i + m",
            lambda f, image, tile, out: f.full(np.pad(image, ((0, tile - out), (0, tile - out)),
                                                      mode="reflect")),
            zh=("上边和左边没有留边距（直接从图像本身切出切片，输出错开了一个边距）",
                "在每一边都填充边距 m = (tile - out) // 2：输出像素 (i, j) 需要输入像素 i - m 到 i + m")),
    Mistake("tiles stepped by the input tile size (gaps between the output tiles)",
            "neighbouring input tiles overlap: step by the OUTPUT size, so that the output tiles touch",
            _stepped_by_tile,
            zh=("切片按输入切片的尺寸移动（输出切片之间留下了空隙）",
                "相邻的输入切片是相互重叠的：按输出切片的尺寸移动，让输出切片首尾相接")),
]


def check_tile_predict(fn):
    """fn(f, image, tile, out) -> (H, W): f applied tile by tile to the mirrored image, outputs stitched.

    f maps a (tile, tile) array to (out, out); image: (H, W) of any size. Expected: what one big pass of
    the same network over the image mirrored by m = (tile - out) / 2 pixels gives.
    """
    rng = np.random.default_rng(10)
    cases = []
    for shape, tile, label in [((20, 13), 12, tr("a 20 x 13 image, tiles 12 -> 8", "20 x 13 的图像，切片 12 -> 8")),
                               ((8, 8), 12, tr("an 8 x 8 image, one tile 12 -> 8", "8 x 8 的图像，一块切片 12 -> 8")),
                               ((5, 30), 10, tr("a 5 x 30 image, tiles 10 -> 6", "5 x 30 的图像，切片 10 -> 6"))]:
        f, image = ValidNet(tile, seed=len(cases)), rng.integers(0, 10, shape).astype(np.float64)
        out = tile - 2 * f.margin
        cases.append(((f, image, tile, out), f.full(np.pad(image, f.margin, mode="reflect")), label))
    return _check_arrays(fn, cases, "tile_predict", rtol=0, atol=0, mistakes=TILE_MISTAKES)


# ------------------------------------------------------------------ 3. the skip crop
SKIP_CROP_MISTAKES = [
    Mistake("the odd pixel cut at the top",
            "put the odd pixel at the bottom, as Keras's Cropping2D convention in the package does: "
            "top = total // 2, bottom = total - top",
            lambda s, u: ((s - u) - (s - u) // 2, (s - u) // 2),
            zh=("多出的一个像素从上边裁掉了",
                "多出的像素要从下边裁，与本库所用的 Keras Cropping2D 约定一致："
                "top = total // 2，bottom = total - top")),
    Mistake("the whole difference cut from one side",
            "centre the kept part: half the difference from each side",
            lambda s, u: (0, s - u),
            zh=("整个差值都从一边裁掉", "让保留的部分居中：两边各裁掉差值的一半")),
    Mistake("the difference not halved (each side cut by the whole difference)",
            "the two sides together lose skip_size - up_size pixels: each loses about half",
            lambda s, u: (s - u, s - u),
            zh=("差值没有减半（每一边都裁掉整个差值）",
                "两边加起来一共裁掉 skip_size - up_size 个像素：每边大约一半")),
]


def check_skip_crop(fn):
    """fn(skip_size, up_size) -> (top, bottom) pixels to cut."""
    return _check_cases(lambda *a: tuple(fn(*a)), [((568, 392), (88, 88)), ((64, 56), (4, 4)),
                                                 ((9, 6), (1, 2)), ((8, 8), (0, 0))], "skip_crop",
                       mistakes=SKIP_CROP_MISTAKES)
