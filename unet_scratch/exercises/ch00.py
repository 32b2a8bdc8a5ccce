"""Chapter 00's exercises: the sizes of a 'same' U-Net, the parameters of a convolution, and the patch around
every pixel that a sliding-window network classifies (what a fully convolutional network avoids).
Each check names the classic mistakes of its exercise."""
from __future__ import annotations

import numpy as np

from .base import Mistake, tr
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases

SIZES_MISTAKES = [
    Mistake("leaving out the bottleneck (depth sizes instead of depth + 1)",
            "a depth-d U-Net pools d times, so it has d + 1 levels: the top level, then one per pooling, "
            "the last one the bottleneck",
            lambda size, depth: [size // 2 ** level for level in range(depth)],
            zh=("漏掉了瓶颈层（只列出 depth 个尺寸，而不是 depth + 1 个）",
                "深度为 d 的 U-Net 池化 d 次，所以有 d + 1 层：最上面一层，然后每次池化一层，最后一层就是瓶颈层")),
    Mistake("halving before the first level",
            "the top level runs at the input's own size: level l is size // 2**l for l = 0 ... depth",
            lambda size, depth: [size // 2 ** (level + 1) for level in range(depth + 1)],
            zh=("在第一层之前就减半了",
                "最上面一层就是输入本身的尺寸：第 l 层的尺寸是 size // 2**l，l = 0 ... depth")),
    Mistake("the list from the bottom up",
            "list the top level (the input's size) first and the bottleneck last",
            lambda size, depth: [size // 2 ** level for level in range(depth, -1, -1)],
            zh=("列表从下往上排",
                "先列最上面一层（输入的尺寸），瓶颈层放在最后")),
]


def check_same_unet_sizes(fn):
    """fn(size, depth) -> list of the spatial sizes at each level of a 'same' U-Net, top to bottom."""
    cases = [((256, 4), [256, 128, 64, 32, 16]), ((64, 2), [64, 32, 16]), ((48, 3), [48, 24, 12, 6])]
    return _check_cases(fn, cases, "same_unet_sizes", mistakes=SIZES_MISTAKES)


CONV_PARAMS_MISTAKES = [
    Mistake("the kernel's weights without the bias",
            "a Conv2D adds one bias per output channel: + c_out",
            lambda k, c_in, c_out: k * k * c_in * c_out,
            zh=("只算了卷积核的权重，漏了偏置",
                "Conv2D 的每个输出通道有一个偏置：要加上 c_out")),
    Mistake("a kernel that ignores the input channels (k*k*c_out + c_out)",
            "each output channel has its own k x k x c_in kernel: it reads EVERY input channel",
            lambda k, c_in, c_out: k * k * c_out + c_out,
            zh=("卷积核忽略了输入通道（k*k*c_out + c_out）",
                "每个输出通道都有自己的 k x k x c_in 卷积核：它读取所有输入通道")),
    Mistake("a kernel_size not squared (k*c_in*c_out + c_out)",
            "the kernel is k x k: k*k*c_in*c_out weights",
            lambda k, c_in, c_out: k * c_in * c_out + c_out,
            zh=("kernel_size 没有平方（k*c_in*c_out + c_out）",
                "卷积核是 k x k 的：权重有 k*k*c_in*c_out 个")),
    Mistake("one bias per input channel",
            "the bias is added to each OUTPUT channel: + c_out, not + c_in",
            lambda k, c_in, c_out: k * k * c_in * c_out + c_in,
            zh=("每个输入通道一个偏置",
                "偏置加在每个输出通道上：是 + c_out，不是 + c_in")),
]


def check_conv_params(fn):
    """fn(kernel_size, c_in, c_out) -> parameters of a Conv2D with bias."""
    cases = [((3, 1, 64), 640), ((3, 64, 64), 36928), ((1, 64, 1), 65), ((2, 1024, 512), 2097664)]
    return _check_cases(fn, cases, "conv_params", mistakes=CONV_PARAMS_MISTAKES)


# ------------------------------------------------------------------ the patch around every pixel
def _patches(image, k, pad=None, order="C"):
    """The reference: zero-pad by k // 2 (or pad = (before, after) per axis), one k x k patch per pixel."""
    h, w = image.shape
    before, after = pad if pad is not None else (k // 2, k // 2)
    padded = np.pad(image, (before, after))
    windows = np.lib.stride_tricks.sliding_window_view(padded, (k, k))       # (H', W', k, k)
    if order == "F":
        windows = windows.transpose(1, 0, 2, 3)
    return windows.reshape(-1, k, k).copy()


PATCH_MISTAKES = [
    Mistake("each patch starting at its pixel (the pixel at the patch's top-left corner, not its centre)",
            "centre the patch on the pixel: patch (i, j) = padded[i:i + k, j:j + k] where padded has k // 2 zeros "
            "on EVERY side, so that padded[i + k//2, j + k//2] is image[i, j]",
            lambda image, k: _patches(image, k, pad=(0, k - 1)),
            zh=("图像块从它的像素开始（像素在块的左上角，而不是中心）",
                "让块以像素为中心：patch (i, j) = padded[i:i + k, j:j + k]，其中 padded 在每一边都补了 k // 2 个零，"
                "这样 padded[i + k//2, j + k//2] 就是 image[i, j]")),
    Mistake("no padding (patches only where they fit inside the image)",
            "every pixel needs a label, border pixels too: pad the image with k // 2 zeros on every side first",
            lambda image, k: _patches(image, k, pad=(0, 0)),
            zh=("没有填充（只在图像内部放得下的位置取块）",
                "每个像素都需要一个标签，边界像素也不例外：先在图像每一边补 k // 2 个零")),
    Mistake("the pixels in column-major order (j before i)",
            "patch number r = i * W + j: loop over rows i, then columns j (the order of image.reshape(-1))",
            lambda image, k: _patches(image, k, order="F"),
            zh=("像素按列优先顺序排列（先 j 后 i）",
                "第 r = i * W + j 个块：外层循环行 i，内层循环列 j（即 image.reshape(-1) 的顺序）")),
    Mistake("each patch transposed (its rows and columns swapped)",
            "patch[a, q] = padded[i + a, j + q]: the first index runs down the rows",
            lambda image, k: _patches(image, k).transpose(0, 2, 1),
            zh=("每个块都被转置了（行和列对调）",
                "patch[a, q] = padded[i + a, j + q]：第一个下标沿行向下走")),
]


def check_pixel_patches(fn):
    """fn(image, k) -> patches: (H*W, k, k), the k x k patch centred on every pixel of image (H, W), row-major,
    the image zero-padded by k // 2 on every side (k odd)."""
    rng = np.random.default_rng(0)
    cases = []
    for shape, k in [((5, 6), 3), ((4, 4), 5), ((3, 7), 3), ((4, 5), 1)]:
        image = rng.standard_normal(shape)
        cases.append(((image, k), _patches(image, k), tr(f"image {shape}, k={k}", f"图像 {shape}，k={k}")))
    return _check_arrays(fn, cases, "pixel_patches", rtol=0, atol=0, mistakes=PATCH_MISTAKES)
