"""Chapter 03's exercises: the transposed convolution forward as a scatter-add (with Keras's crop and the
bias), its backward pass (dx, dw, db), and the kernel overlap counts behind the checkerboard.

Every check compares with the package's reference (``ops.conv2d_transpose``, ``ops.conv2d_transpose_backward``;
the chapter compares those with Keras's Conv2DTranspose and TensorFlow's GradientTape) and names the classic
mistakes of its exercise when a wrong answer matches one of them.
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv2d
from ..ops.conv_transpose import conv2d_transpose, conv2d_transpose_backward, conv_transpose_output_size
from .base import Mistake, tr
from .base import check_arrays as _check_arrays

RTOL, ATOL = 1e-7, 1e-9


# ------------------------------------------------------------------ 1. forward: scatter-add, crop, bias
def _full_canvas(x, w, s, step=None):
    """Every input pixel stamps the kernel at (i*step, j*step) (step = s normally) onto a canvas of the size a
    stride-s transposed conv needs: max((H - 1)*s + KH, OH) rows, likewise for the columns."""
    step = s if step is None else step
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    full = np.zeros((n, max((h - 1) * s + kh, h * s), max((wd - 1) * s + kw, wd * s), f))
    for i in range(h):
        for j in range(wd):
            full[:, i * step:i * step + kh, j * step:j * step + kw, :] += np.einsum("nc,aqfc->naqf", x[:, i, j], w)
    return full


def _crop_start(k, s, padding):
    """TensorFlow's SAME split of the k - s surplus rows: the smaller half at the start (0 for 'valid')."""
    return max(k - s, 0) // 2 if padding == "same" else 0


def _cropped(full, x, w, b, s, padding, starts):
    oh = conv_transpose_output_size(x.shape[1], w.shape[0], s, padding)
    ow = conv_transpose_output_size(x.shape[2], w.shape[1], s, padding)
    (t, le) = starts
    return full[:, t:t + oh, le:le + ow, :] + (0 if b is None else b)


def _stride_ignored(x, w, b, s, p):
    full = _full_canvas(x, w, s, step=1)
    return _cropped(full, x, w, b, s, p, (_crop_start(w.shape[0], s, p), _crop_start(w.shape[1], s, p)))


def _crop_other_side(x, w, b, s, p):
    if p != "same":
        raise ValueError("'valid' is not cropped")
    starts = tuple(max(k - s, 0) - _crop_start(k, s, p) for k in w.shape[:2])
    return _cropped(_full_canvas(x, w, s), x, w, b, s, p, starts)


FORWARD_MISTAKES = [
    Mistake("a flipped kernel (the stamp rotated by 180 degrees)",
            "a transposed convolution stamps the kernel as it is: full[n, i*s + a, j*s + q, f] += "
            "x[n, i, j, c] * w[a, q, f, c]; Keras's Conv2DTranspose flips nothing",
            lambda x, w, b, s, p: conv2d_transpose(x, w[::-1, ::-1], b, s, p)[0],
            zh=("翻转了卷积核（印记旋转了 180 度）",
                "转置卷积按卷积核原样盖印：full[n, i*s + a, j*s + q, f] += x[n, i, j, c] * w[a, q, f, c]；"
                "Keras 的 Conv2DTranspose 不做任何翻转")),
    Mistake("Keras's (KH, KW, F_out, C_in) kernel read as (KH, KW, C_in, F_out)",
            "Conv2DTranspose stores OUTPUT channels before input channels: w[a, q, f, c] multiplies x[..., c] "
            "into output channel f",
            lambda x, w, b, s, p: conv2d_transpose(x, w.transpose(0, 1, 3, 2), b, s, p)[0],
            zh=("把 Keras 的 (KH, KW, F_out, C_in) 卷积核当成了 (KH, KW, C_in, F_out)",
                "Conv2DTranspose 把输出通道存在输入通道前面：w[a, q, f, c] 把 x[..., c] 乘进输出通道 f")),
    Mistake("the stride ignored (stamps at (i, j) instead of (i*s, j*s))",
            "input pixel (i, j) stamps the kernel at (i*s, j*s): a stride-s transposed conv spreads its stamps "
            "s pixels apart",
            _stride_ignored,
            zh=("忽略了步幅（在 (i, j) 而不是 (i*s, j*s) 处盖印）",
                "输入像素 (i, j) 把卷积核盖印在 (i*s, j*s) 处：步幅为 s 的转置卷积，相邻两个印记相隔 s 个像素")),
    Mistake("the stride ignored (stamps at (i, j) instead of (i*s, j*s))",
            "input pixel (i, j) stamps the kernel at (i*s, j*s): a stride-s transposed conv spreads its stamps "
            "s pixels apart",
            lambda x, w, b, s, p: conv2d_transpose(x, w, b, 1, p)[0],
            zh=("忽略了步幅（在 (i, j) 而不是 (i*s, j*s) 处盖印）",
                "输入像素 (i, j) 把卷积核盖印在 (i*s, j*s) 处：步幅为 s 的转置卷积，相邻两个印记相隔 s 个像素")),
    Mistake("the 'same' crop taken from the wrong side",
            "'same' keeps H*s rows of the full canvas: of the k - s surplus rows, (k - s) // 2 are cut at the "
            "START and the rest at the END (TensorFlow's SAME split, the extra one after)",
            _crop_other_side,
            zh=("'same' 的裁剪从错误的一侧开始",
                "'same' 保留完整画布的 H*s 行：多出的 k - s 行中，(k - s) // 2 行从开头裁掉，其余从末尾裁掉"
                "（TensorFlow 的 SAME 分法，多出的那一行在后面）")),
    Mistake("forgetting the bias", "add b[f] to every output pixel of channel f, after the crop",
            lambda x, w, b, s, p: conv2d_transpose(x, w, None, s, p)[0],
            zh=("忘了加偏置", "裁剪之后，给通道 f 的每个输出像素加上 b[f]")),
]


def _label(x_shape, w_shape, s, padding):
    return tr(f"x {x_shape}, w {w_shape}, stride {s}, {padding!r}", f"x {x_shape}，w {w_shape}，步幅 {s}，{padding!r}")


def check_conv_transpose_scatter(fn):
    """fn(x, w, b, s, padding) -> y: Keras's Conv2DTranspose written as a scatter-add, then a crop, then + b.

    x: (N, H, W, C_in), w: (KH, KW, F, C_in) (Keras's layout), b: (F,), the same stride s on both axes,
    padding 'valid' or 'same'. Every input pixel stamps the kernel at (i*s, j*s) of a canvas
    full: (N, max((H-1)*s + KH, H*s), max((W-1)*s + KW, W*s), F); y keeps OH = H*s ('same') or
    H*s + max(KH - s, 0) ('valid') rows of it, from row max(KH - s, 0) // 2 ('same') or 0 ('valid').
    """
    rng = np.random.default_rng(5)
    cases = []
    for x_shape, w_shape, s, padding in [((1, 3, 4, 2), (3, 3, 2, 2), 2, "same"), ((2, 4, 3, 3), (3, 3, 2, 3), 1, "valid"),
                                         ((1, 3, 3, 2), (2, 2, 3, 2), 2, "valid"), ((1, 3, 4, 2), (4, 4, 3, 2), 2, "same"),
                                         ((1, 3, 3, 1), (5, 5, 1, 1), 2, "same"), ((1, 2, 3, 2), (2, 2, 2, 2), 3, "valid"),
                                         ((1, 4, 4, 2), (2, 2, 2, 2), 1, "same")]:
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[2])
        cases.append(((x, w, b, s, padding), conv2d_transpose(x, w, b, s, padding)[0],
                      _label(x_shape, w_shape, s, padding)))
    return _check_arrays(fn, cases, "conv_transpose_scatter", rtol=RTOL, atol=ATOL, mistakes=FORWARD_MISTAKES)


# ------------------------------------------------------------------ 2. backward: dx, dw, db
def _reference_backward(dy, x, w, s, padding):
    _, cache = conv2d_transpose(x, w, np.zeros(w.shape[2]), s, padding)
    return conv2d_transpose_backward(dy, cache)


def _with(dy, x, w, s, p, dx=None, dw=None, db=None):
    rdx, rdw, rdb = _reference_backward(dy, x, w, s, p)
    return (rdx if dx is None else dx, rdw if dw is None else dw, rdb if db is None else db)


# At stride 1 with an odd kernel the first two give the same dx (a transposed conv of dy IS a correlation with
# the flipped kernel there), so check_conv_transpose_backward starts with a stride-2 case, where they differ.
BACKWARD_MISTAKES = [
    Mistake("dx computed as a transposed convolution of dy instead of a convolution",
            "y = C^T x, so dx = C dy: the ORDINARY convolution conv2d(dy, w) with the same kernel, stride and "
            "padding (each input pixel gathers dy over the window it stamped), which shrinks dy back to x's size",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p,
                                         dx=conv2d_transpose(dy, w.transpose(0, 1, 3, 2), None, s, p)[0]),
            zh=("把 dx 算成了 dy 的转置卷积，而不是卷积",
                "y = C^T x，所以 dx = C dy：用同样的卷积核、步幅和填充做普通卷积 conv2d(dy, w)"
                "（每个输入像素从它盖印过的窗口收集 dy），这样 dy 会缩回 x 的尺寸")),
    Mistake("dx computed with the kernel flipped",
            "input pixel (i, j) gathers dy[n, i*s + a, j*s + q, f] * w[a, q, f, c] (after undoing the crop) "
            "with w as it is: the forward pass did not flip it, so neither does its gradient",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, dx=conv2d(dy, w[::-1, ::-1], None, s, p)[0]),
            zh=("计算 dx 时翻转了卷积核",
                "输入像素 (i, j) 收集 dy[n, i*s + a, j*s + q, f] * w[a, q, f, c]（先撤销裁剪），w 保持原样："
                "前向没有翻转它，梯度也不翻转")),
    Mistake("dw with its input and output channels swapped (KH, KW, C_in, F)",
            "dw has the kernel's own layout (KH, KW, F, C_in): dw[a, q, f, c] = sum dy[n, i*s + a, j*s + q, f] "
            "* x[n, i, j, c]",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p,
                                         dw=_reference_backward(dy, x, w, s, p)[1].transpose(0, 1, 3, 2)),
            zh=("dw 的输入通道和输出通道对调了（KH, KW, C_in, F）",
                "dw 与卷积核本身的布局相同 (KH, KW, F, C_in)：dw[a, q, f, c] = sum dy[n, i*s + a, j*s + q, f] "
                "* x[n, i, j, c]")),
    Mistake("db forgotten (left at zero)", "db[f] = sum of dy[..., f] over N, OH and OW",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, db=np.zeros(w.shape[2])),
            zh=("忘了算 db（保持为零）", "db[f] = dy[..., f] 在 N、OH 和 OW 上的和")),
    Mistake("db not summed over the batch (one row per image, shape (N, F))",
            "the bias is shared by every image and pixel: db = dy.sum(axis=(0, 1, 2))",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, db=dy.sum(axis=(1, 2))),
            zh=("db 没有对批次求和（每张图一行，形状 (N, F)）",
                "偏置被所有图像和像素共享：db = dy.sum(axis=(0, 1, 2))")),
]


def check_conv_transpose_backward(fn):
    """fn(dy, x, w, s, padding) -> (dx, dw, db): the gradients of conv_transpose_scatter's output.

    dy: (N, OH, OW, F), x: (N, H, W, C_in), w: (KH, KW, F, C_in). dx: (N, H, W, C_in), dw: (KH, KW, F, C_in),
    db: (F,).
    """
    rng = np.random.default_rng(7)
    cases = []
    for x_shape, w_shape, s, padding in [((2, 3, 4, 3), (3, 3, 2, 3), 2, "same"), ((1, 3, 3, 2), (3, 3, 2, 2), 1, "same"),
                                         ((2, 3, 3, 3), (2, 2, 2, 3), 2, "valid"), ((1, 3, 4, 2), (4, 4, 3, 2), 2, "same"),
                                         ((1, 2, 3, 2), (2, 2, 2, 2), 3, "valid")]:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        dy = rng.standard_normal(conv2d_transpose(x, w, None, s, padding)[0].shape)
        cases.append(((dy, x, w, s, padding), _reference_backward(dy, x, w, s, padding),
                      _label(x_shape, w_shape, s, padding)))
    return _check_arrays(fn, cases, "conv_transpose_backward", rtol=RTOL, atol=ATOL, mistakes=BACKWARD_MISTAKES)


# ------------------------------------------------------------------ 3. overlap counts
def _overlap_counts(n, k, s, length=None, step=None, width=None):
    step, width = (s if step is None else step), (k if width is None else width)
    counts = np.zeros((n - 1) * s + k if length is None else length, dtype=int)
    for i in range(n):
        counts[i * step:i * step + width] += 1
    return counts


OVERLAP_MISTAKES = [
    Mistake("the stride ignored (stamps at i instead of i*s)",
            "input pixel i stamps the kernel onto output pixels i*s ... i*s + k - 1",
            lambda n, k, s: _overlap_counts(n, k, s, step=1),
            zh=("忽略了步幅（在 i 而不是 i*s 处盖印）", "输入像素 i 把卷积核盖印到输出像素 i*s ... i*s + k - 1 上")),
    Mistake("a canvas n*s long (Keras's 'same' output, not the full canvas)",
            "count on the full canvas of (n - 1)*s + k pixels, before any crop",
            lambda n, k, s: _overlap_counts(n, k, s, length=n * s),
            zh=("画布长度取了 n*s（Keras 'same' 的输出长度，不是完整画布）",
                "在裁剪之前、长度为 (n - 1)*s + k 的完整画布上计数")),
    Mistake("stamps s pixels wide instead of k (kernel length and stride confused)",
            "each stamp covers the kernel's k pixels; the stride only says where the next one starts",
            lambda n, k, s: _overlap_counts(n, k, s, width=s),
            zh=("印记宽 s 个像素而不是 k 个（把卷积核长度和步幅弄混了）",
                "每个印记覆盖卷积核的 k 个像素；步幅只决定下一个印记从哪里开始")),
]


def check_overlap_counts(fn):
    """fn(n, k, s) -> 1-D int array of length (n - 1)*s + k: how many kernel stamps of a 1-D transposed
    convolution of an n-pixel input (kernel length k, stride s) cover each output pixel."""
    cases = [((n, k, s), _overlap_counts(n, k, s), f"n={n}, k={k}, s={s}")
             for n, k, s in [(4, 2, 2), (4, 3, 2), (5, 4, 2), (3, 3, 1), (3, 2, 3), (1, 3, 2)]]
    return _check_arrays(fn, cases, "overlap_counts", rtol=0, atol=0, mistakes=OVERLAP_MISTAKES)
