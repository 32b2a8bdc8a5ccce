"""Chapter 01's exercises: a convolution by loops, im2col, the convolution as im2col + one matrix product,
its backward pass by loops, col2im, the backward pass with im2col/col2im, and the receptive field.

Every check compares with the package's reference (``ops.conv2d``, ``ops.conv2d_backward``, ``ops.im2col``,
``ops.col2im``; the chapter compares those with Keras and TensorFlow) and names the classic mistakes of its
exercise when a wrong answer matches one of them.
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import col2im, conv2d, conv2d_backward, conv_output_size, im2col, padding_amounts
from .base import Mistake, tr
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases

# float64 inputs: loops and GEMM agree with the reference to ~1e-15, so a tight tolerance still passes
RTOL, ATOL = 1e-7, 1e-9


# ------------------------------------------------------------------ helpers that compute wrong answers
def _pads(x, w, s, padding):
    """TensorFlow's ((top, bottom), (left, right)) for x: (N, H, W, C), w: (KH, KW, C, F)."""
    return (padding_amounts(x.shape[1], w.shape[0], s, padding), padding_amounts(x.shape[2], w.shape[1], s, padding))


def _conv_padded(x, w, b, s, pads):
    """A 'valid' convolution of x zero-padded by pads = ((top, bottom), (left, right))."""
    x_pad = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    return conv2d(x_pad, w, b, s, "valid")[0]


def _extra_pixel_before(x, w, b, s, padding):
    (t, bo), (le, r) = _pads(x, w, s, padding)
    return _conv_padded(x, w, b, s, ((bo, t), (r, le)))


def _half_kernel_each_side(x, w, b, s, padding):
    if padding != "same":
        raise ValueError("only 'same' padding is padded")
    kh, kw = w.shape[:2]
    return _conv_padded(x, w, b, s, ((kh // 2, kh // 2), (kw // 2, kw // 2)))


def _gemm_with(x, w_matrix, b, s, padding, kh, kw):
    """im2col of the padded x times a (KH*KW*C, F) matrix, plus b: a convolution with a re-flattened kernel."""
    pads = (padding_amounts(x.shape[1], kh, s, padding), padding_amounts(x.shape[2], kw, s, padding))
    x_pad = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    oh, ow = conv_output_size(x.shape[1], kh, s, padding), conv_output_size(x.shape[2], kw, s, padding)
    y = im2col(x_pad, kh, kw, s, s) @ w_matrix + (0 if b is None else b)
    return y.reshape(x.shape[0], oh, ow, w_matrix.shape[1])


FORWARD_MISTAKES = [
    Mistake("a true convolution (the kernel flipped)",
            "Keras's Conv2D does not flip the kernel: it computes a cross-correlation, "
            "y[n, i, j, f] = b[f] + sum x_pad[n, i*s + a, j*s + q, c] * w[a, q, c, f] with w as it is",
            lambda x, w, b, s, p: conv2d(x, w[::-1, ::-1], b, s, p)[0],
            zh=("真正的卷积（卷积核被翻转了）",
                "Keras 的 Conv2D 不翻转卷积核：它计算的是互相关，"
                "y[n, i, j, f] = b[f] + sum x_pad[n, i*s + a, j*s + q, c] * w[a, q, c, f]，w 保持原样")),
    Mistake("forgetting the bias",
            "add b[f] to every output pixel of filter f",
            lambda x, w, b, s, p: conv2d(x, w, None, s, p)[0],
            zh=("忘了加偏置", "给滤波器 f 的每个输出像素都加上 b[f]")),
    Mistake("an output one row and one column short ((n - k) // s instead of (n - k) // s + 1)",
            "a kernel fits at positions 0, s, 2s, ..., so there are (n - k) // s + 1 of them ('valid')",
            lambda x, w, b, s, p: conv2d(x, w, b, s, p)[0][:, :-1, :-1],
            zh=("输出少了一行一列（用了 (n - k) // s，而不是 (n - k) // s + 1）",
                "卷积核可以放在位置 0, s, 2s, ...，所以共有 (n - k) // s + 1 个位置（'valid'）")),
    Mistake("'same' padding with the extra pixel BEFORE (top/left) when the total padding is odd",
            "TensorFlow pads total // 2 before and the rest AFTER: an even kernel pads (0, 1), not (1, 0)",
            _extra_pixel_before,
            zh=("'same' 填充在总量为奇数时把多出的一个像素放在了前面（上/左）",
                "TensorFlow 在前面填 total // 2 个，其余放在后面：偶数卷积核填 (0, 1)，不是 (1, 0)")),
    Mistake("'same' padding of k // 2 on every side (PyTorch's padding=k//2)",
            "for an even kernel that makes the output one pixel larger; TensorFlow's 'same' pads "
            "total = max((ceil(n/s) - 1)*s + k - n, 0) pixels, total // 2 before and the rest after",
            _half_kernel_each_side,
            zh=("'same' 填充在每一边都填 k // 2（PyTorch 的 padding=k//2）",
                "对偶数卷积核，这样输出会大一个像素；TensorFlow 的 'same' 总共填 "
                "total = max((ceil(n/s) - 1)*s + k - n, 0) 个像素，前面 total // 2 个，其余放在后面")),
]


def _label(x_shape, w_shape, s, padding):
    return tr(f"x {x_shape}, w {w_shape}, stride {s}, {padding!r}", f"x {x_shape}，w {w_shape}，步幅 {s}，{padding!r}")


def _conv_cases(rng):
    cases = []
    for x_shape, w_shape, s, padding in [((1, 5, 5, 1), (3, 3, 1, 1), 1, "valid"),
                                         ((2, 6, 7, 3), (3, 3, 3, 4), 1, "valid"),
                                         ((1, 7, 7, 2), (3, 2, 2, 3), 2, "valid"),
                                         ((1, 6, 6, 2), (2, 2, 2, 3), 1, "same"),
                                         ((1, 8, 7, 2), (3, 3, 2, 2), 2, "same"),
                                         ((2, 5, 6, 1), (4, 4, 1, 2), 1, "same")]:
        x, w, b = rng.standard_normal(x_shape), rng.standard_normal(w_shape), rng.standard_normal(w_shape[3])
        cases.append(((x, w, b, s, padding), conv2d(x, w, b, s, padding)[0], _label(x_shape, w_shape, s, padding)))
    return cases


# ------------------------------------------------------------------ 1. conv2d with loops
def check_conv2d_loop(fn):
    """fn(x, w, b, stride, padding) -> y: a Keras Conv2D (cross-correlation, no kernel flip) written with loops.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), the same stride along both axes, padding 'valid' or 'same'
    (TensorFlow's rule: the extra pixel after). y: (N, OH, OW, F).
    """
    return _check_arrays(fn, _conv_cases(np.random.default_rng(1)), "conv2d_loop", rtol=RTOL, atol=ATOL,
                         mistakes=FORWARD_MISTAKES)


# ------------------------------------------------------------------ 2. im2col
def _im2col_reordered(x_pad, kh, kw, s, order):
    """The reference cols with each row's (a, q, c) entries in another order ('cab': channel-major)."""
    cols = im2col(x_pad, kh, kw, s, s)
    rows = cols.reshape(cols.shape[0], kh, kw, x_pad.shape[3])
    axes = {"cab": (0, 3, 1, 2), "bac": (0, 2, 1, 3)}[order]
    return rows.transpose(axes).reshape(cols.shape)


def _im2col_windows_column_major(x_pad, kh, kw, s):
    n = x_pad.shape[0]
    oh, ow = (x_pad.shape[1] - kh) // s + 1, (x_pad.shape[2] - kw) // s + 1
    cols = im2col(x_pad, kh, kw, s, s)
    return cols.reshape(n, oh, ow, -1).transpose(0, 2, 1, 3).reshape(cols.shape)


IM2COL_MISTAKES = [
    Mistake("each row in channel-major order (c, a, q), PyTorch's kernel layout",
            "order each window's entries (a, q, c), row-major like the HWIO kernel, so that row . "
            "w.reshape(KH*KW*C, F) is the convolution: window.reshape(-1) of an (KH, KW, C) window does it",
            lambda x_pad, kh, kw, s: _im2col_reordered(x_pad, kh, kw, s, "cab"),
            zh=("每一行按通道优先 (c, a, q) 排列（PyTorch 的卷积核布局）",
                "每个窗口内的元素按 (a, q, c) 排列，与 HWIO 卷积核一样是行优先，这样 row . "
                "w.reshape(KH*KW*C, F) 才是卷积：把 (KH, KW, C) 的窗口做 window.reshape(-1) 即可")),
    Mistake("each row in (q, a, c) order (the window's columns before its rows)",
            "take the window x_pad[n, i*s:i*s+KH, j*s:j*s+KW, :] as it is and flatten it row-major",
            lambda x_pad, kh, kw, s: _im2col_reordered(x_pad, kh, kw, s, "bac"),
            zh=("每一行按 (q, a, c) 排列（窗口的列排在行前面）",
                "直接取窗口 x_pad[n, i*s:i*s+KH, j*s:j*s+KW, :]，按行优先展平")),
    Mistake("the windows in column-major order (j before i)",
            "row number r = (n*OH + i)*OW + j: loop over n, then i, then j (the order of y.reshape(N, OH, OW, F))",
            _im2col_windows_column_major,
            zh=("窗口按列优先顺序排列（先 j 后 i）",
                "第 r = (n*OH + i)*OW + j 行：依次循环 n、i、j（即 y.reshape(N, OH, OW, F) 的顺序）")),
    Mistake("the stride ignored (a window at every pixel)",
            "window (i, j) starts at (i*s, j*s), and there are OH = (Hp - KH) // s + 1 of them per column",
            lambda x_pad, kh, kw, s: im2col(x_pad, kh, kw, 1, 1),
            zh=("忽略了步幅（每个像素都取一个窗口）",
                "窗口 (i, j) 从 (i*s, j*s) 开始，每一列共有 OH = (Hp - KH) // s + 1 个窗口")),
]


def check_im2col(fn):
    """fn(x_pad, kh, kw, s) -> cols: every KH x KW window of x_pad as one row, (N*OH*OW, KH*KW*C).

    x_pad: (N, Hp, Wp, C), already padded; windows start at (i*s, j*s); OH = (Hp - KH) // s + 1. Rows in the
    order (n, i, j), each row ordered (a, q, c) like w.reshape(KH*KW*C, F).
    """
    rng = np.random.default_rng(2)
    cases = []
    for x_shape, kh, kw, s in [((2, 5, 6, 3), 3, 2, 1), ((1, 7, 6, 2), 3, 3, 2), ((1, 4, 4, 1), 3, 3, 1),
                               ((2, 6, 6, 2), 2, 2, 2)]:
        x_pad = rng.standard_normal(x_shape)
        cases.append(((x_pad, kh, kw, s), im2col(x_pad, kh, kw, s, s),
                      tr(f"x_pad {x_shape}, {kh}x{kw} windows, stride {s}", f"x_pad {x_shape}，{kh}x{kw} 窗口，步幅 {s}")))
    return _check_arrays(fn, cases, "im2col", rtol=0, atol=0, mistakes=IM2COL_MISTAKES)


# ------------------------------------------------------------------ 3. conv2d as im2col + one GEMM
def _kernel_rows_reshaped_f_first(x, w, b, s, p):
    kh, kw, c, f = w.shape
    return _gemm_with(x, w.reshape(f, kh * kw * c).T, b, s, p, kh, kw)


def _kernel_channel_major(x, w, b, s, p):
    kh, kw, c, f = w.shape
    return _gemm_with(x, w.transpose(2, 0, 1, 3).reshape(c * kh * kw, f), b, s, p, kh, kw)


GEMM_MISTAKES = [
    Mistake("the kernel matrix made with w.reshape(F, KH*KW*C).T",
            "w is stored (KH, KW, C, F) with F last: w.reshape(KH*KW*C, F) keeps each column one filter; "
            "reshaping to (F, -1) mixes filters and taps",
            _kernel_rows_reshaped_f_first,
            zh=("用 w.reshape(F, KH*KW*C).T 得到卷积核矩阵",
                "w 的存储顺序是 (KH, KW, C, F)，F 在最后：w.reshape(KH*KW*C, F) 才能让每一列是一个滤波器；"
                "reshape 成 (F, -1) 会把滤波器和卷积核位置混在一起")),
    Mistake("the kernel flattened channel-major (w.transpose(2, 0, 1, 3)) while the cols rows are (a, q, c)",
            "flatten the kernel in the same order as the rows of cols: w.reshape(KH*KW*C, F)",
            _kernel_channel_major,
            zh=("卷积核按通道优先展平（w.transpose(2, 0, 1, 3)），而 cols 的行是 (a, q, c) 顺序",
                "按 cols 每一行的顺序展平卷积核：w.reshape(KH*KW*C, F)")),
    FORWARD_MISTAKES[1],                                  # the bias forgotten
    FORWARD_MISTAKES[0],                                  # the kernel flipped
    *FORWARD_MISTAKES[3:],                                # the 'same' padding split
]


def check_conv2d_gemm(fn):
    """fn(x, w, b, stride, padding) -> y: the same Conv2D as im2col + ONE matrix product (+ b).

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), padding 'valid' or 'same'. y: (N, OH, OW, F).
    """
    return _check_arrays(fn, _conv_cases(np.random.default_rng(3)), "conv2d_gemm", rtol=RTOL, atol=ATOL,
                         mistakes=GEMM_MISTAKES)


# ------------------------------------------------------------------ 4. the backward pass with loops
def _reference_backward(dy, x, w, s, padding):
    _, cache = conv2d(x, w, np.zeros(w.shape[3]), s, padding)
    return conv2d_backward(dy, cache)


def _dx_pad(dy, x, w, s, padding, scatter=None):
    """dL/dx_pad (the padding not cropped off) computed with scatter(cols, x_pad_shape, kh, kw, s), a col2im."""
    kh, kw, c, f = w.shape
    pads = _pads(x, w, s, padding)
    x_pad_shape = (x.shape[0], x.shape[1] + sum(pads[0]), x.shape[2] + sum(pads[1]), c)
    dcols = dy.reshape(-1, f) @ w.reshape(-1, f).T
    if scatter is None:
        return col2im(dcols, x_pad_shape, kh, kw, s, s)
    return scatter(dcols, x_pad_shape, kh, kw, s)


def _crop(x_pad, x, w, s, padding):
    (t, _), (le, _) = _pads(x, w, s, padding)
    return x_pad[:, t:t + x.shape[1], le:le + x.shape[2], :]


def _with(dy, x, w, s, padding, dx=None, dw=None, db=None):
    """The reference (dx, dw, db) with some of them replaced by wrong ones."""
    rdx, rdw, rdb = _reference_backward(dy, x, w, s, padding)
    return (rdx if dx is None else dx, rdw if dw is None else dw, rdb if db is None else db)


BACKWARD_MISTAKES = [
    Mistake("dx computed with the kernel flipped",
            "each output pixel sends dy[n, i, j, f] * w[:, :, :, f] back to the window it read, with w as it "
            "is (the flip appears only when dx is written as a full correlation of dy)",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, dx=_reference_backward(dy, x, w[::-1, ::-1], s, p)[0]),
            zh=("计算 dx 时翻转了卷积核",
                "每个输出像素把 dy[n, i, j, f] * w[:, :, :, f] 送回它读过的窗口，w 保持原样"
                "（只有把 dx 写成 dy 的全互相关时才会出现翻转）")),
    Mistake("dx with the padding left on (dx_pad returned instead of dx)",
            "accumulate into a padded array, then crop the padding off: dx = dx_pad[:, top:top + H, left:left + W]",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, dx=_dx_pad(dy, x, w, s, p)),
            zh=("dx 没有去掉填充（返回了 dx_pad 而不是 dx）",
                "先累加到带填充的数组里，再把填充裁掉：dx = dx_pad[:, top:top + H, left:left + W]")),
    Mistake("db not summed over the batch (one row per image, shape (N, F))",
            "the bias is shared by every image and pixel: db = dy.sum(axis=(0, 1, 2))",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, db=dy.sum(axis=(1, 2))),
            zh=("db 没有对批次求和（每张图一行，形状 (N, F)）",
                "偏置被所有图像和像素共享：db = dy.sum(axis=(0, 1, 2))")),
    Mistake("db summed over the batch only (shape (OH, OW, F))",
            "sum over N, OH and OW: db = dy.sum(axis=(0, 1, 2))",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, db=dy.sum(axis=0)),
            zh=("db 只对批次求和（形状 (OH, OW, F)）",
                "要对 N、OH 和 OW 都求和：db = dy.sum(axis=(0, 1, 2))")),
    Mistake("dw from the last image only (dw = ... instead of dw += ... in the loop over the batch)",
            "the kernel is shared by every image: accumulate dw over n as well",
            lambda dy, x, w, s, p: _with(dy, x, w, s, p, dw=_reference_backward(dy[-1:], x[-1:], w, s, p)[1]),
            zh=("dw 只来自最后一张图（在批次循环里写了 dw = ...，而不是 dw += ...）",
                "卷积核被所有图像共享：dw 也要对 n 累加")),
]


def _backward_cases(rng):
    cases = []
    for x_shape, w_shape, s, padding in [((1, 5, 5, 1), (3, 3, 1, 1), 1, "valid"),
                                         ((2, 6, 5, 3), (3, 3, 3, 2), 1, "same"),
                                         ((2, 7, 7, 2), (3, 3, 2, 3), 2, "same"),
                                         ((1, 6, 6, 2), (2, 2, 2, 2), 1, "same"),
                                         ((2, 7, 8, 2), (3, 2, 2, 3), 2, "valid")]:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        y_shape = conv2d(x, w, None, s, padding)[0].shape
        dy = rng.standard_normal(y_shape)
        cases.append(((dy, x, w, s, padding), _reference_backward(dy, x, w, s, padding),
                      _label(x_shape, w_shape, s, padding)))
    return cases


def check_conv2d_backward_loop(fn):
    """fn(dy, x, w, stride, padding) -> (dx, dw, db): the gradients of conv2d (no bias argument needed: db
    does not depend on b), written with loops.

    dy: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C, F). dx: (N, H, W, C), dw: (KH, KW, C, F), db: (F,).
    """
    return _check_arrays(fn, _backward_cases(np.random.default_rng(4)), "conv2d_backward_loop",
                         rtol=RTOL, atol=ATOL, mistakes=BACKWARD_MISTAKES)


# ------------------------------------------------------------------ 5. col2im
def _col2im_overwrite_windows(cols, x_pad_shape, kh, kw, s):
    """col2im with `=` in a loop over the windows (row-major): each pixel keeps its last window's value."""
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    rows = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, cols.dtype)
    for i in range(oh):
        for j in range(ow):
            x_pad[:, i * s:i * s + kh, j * s:j * s + kw, :] = rows[:, i, j]
    return x_pad


def _col2im_overwrite_offsets(cols, x_pad_shape, kh, kw, s):
    """col2im with `=` in a loop over the kernel offsets (a, q), the vectorised way."""
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    rows = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, cols.dtype)
    for a in range(kh):
        for q in range(kw):
            x_pad[:, a:a + s * oh:s, q:q + s * ow:s, :] = rows[:, :, :, a, q]
    return x_pad


def _col2im_channel_major(cols, x_pad_shape, kh, kw, s):
    c = x_pad_shape[3]
    as_aqc = cols.reshape(cols.shape[0], c, kh, kw).transpose(0, 2, 3, 1).reshape(cols.shape)
    return col2im(as_aqc, x_pad_shape, kh, kw, s, s)


def _col2im_stride_ignored(cols, x_pad_shape, kh, kw, s):
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    rows = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, cols.dtype)
    for i in range(oh):
        for j in range(ow):
            x_pad[:, i:i + kh, j:j + kw, :] += rows[:, i, j]
    return x_pad


OVERWRITE_FIX = ("pixels shared by overlapping windows must receive the SUM of their entries: "
                 "x_pad[...] += ..., never x_pad[...] = ...")
OVERWRITE_ZH = ("col2im 把重叠部分覆盖掉了，而不是相加",
                "被多个窗口共享的像素必须得到这些窗口对应元素的和：x_pad[...] += ...，绝不是 x_pad[...] = ...")
COL2IM_MISTAKES = [
    Mistake("a col2im that overwrites overlaps instead of adding them", OVERWRITE_FIX, _col2im_overwrite_windows,
            zh=OVERWRITE_ZH),
    Mistake("a col2im that overwrites overlaps instead of adding them", OVERWRITE_FIX, _col2im_overwrite_offsets,
            zh=OVERWRITE_ZH),
    Mistake("reading each row in channel-major order (c, a, q)",
            "im2col ordered each row (a, q, c): reshape a row to (KH, KW, C), not (C, KH, KW)",
            _col2im_channel_major,
            zh=("按通道优先顺序 (c, a, q) 读取每一行",
                "im2col 的每一行是 (a, q, c) 顺序：把一行 reshape 成 (KH, KW, C)，而不是 (C, KH, KW)")),
    Mistake("the stride ignored (window (i, j) put back at (i, j))",
            "window (i, j) came from x_pad[:, i*s:i*s + KH, j*s:j*s + KW, :]: add it back there",
            _col2im_stride_ignored,
            zh=("忽略了步幅（窗口 (i, j) 放回到了 (i, j)）",
                "窗口 (i, j) 取自 x_pad[:, i*s:i*s + KH, j*s:j*s + KW, :]：要加回到那里")),
]


def check_col2im(fn):
    """fn(cols, x_pad_shape, kh, kw, s) -> x_pad: the adjoint of im2col, every row added back to its window.

    cols: (N*OH*OW, KH*KW*C) (rows (n, i, j), each row (a, q, c)), x_pad_shape: (N, Hp, Wp, C).
    Pixels shared by several windows receive the sum; pixels no window reads stay 0.
    """
    rng = np.random.default_rng(5)
    cases = []
    for shape, kh, kw, s in [((1, 4, 4, 1), 3, 3, 1), ((2, 5, 6, 3), 3, 2, 1), ((1, 7, 7, 2), 3, 3, 2),
                             ((1, 8, 7, 2), 3, 2, 2), ((1, 6, 6, 2), 2, 2, 2)]:
        oh, ow = (shape[1] - kh) // s + 1, (shape[2] - kw) // s + 1
        cols = rng.standard_normal((shape[0] * oh * ow, kh * kw * shape[3]))
        cases.append(((cols, shape, kh, kw, s), col2im(cols, shape, kh, kw, s, s),
                      tr(f"x_pad {shape}, {kh}x{kw} windows, stride {s}", f"x_pad {shape}，{kh}x{kw} 窗口，步幅 {s}")))
    return _check_arrays(fn, cases, "col2im", rtol=RTOL, atol=ATOL, mistakes=COL2IM_MISTAKES)


# ------------------------------------------------------------------ 6. the backward pass with im2col/col2im
def _dw_from_dyT_cols(dy, x, w, s, p):
    kh, kw, c, f = w.shape
    pads = _pads(x, w, s, p)
    cols = im2col(np.pad(x, ((0, 0), pads[0], pads[1], (0, 0))), kh, kw, s, s)
    return _with(dy, x, w, s, p, dw=(dy.reshape(-1, f).T @ cols).reshape(kh, kw, c, f))


def _dx_overwriting(scatter):
    def answer(dy, x, w, s, p):
        return _with(dy, x, w, s, p, dx=_crop(_dx_pad(dy, x, w, s, p, scatter), x, w, s, p))
    return answer


GEMM_BACKWARD_MISTAKES = [
    Mistake("dw computed as dY^T cols, an (F, KH*KW*C) matrix, reshaped to (KH, KW, C, F) without transposing",
            "dW = cols^T @ dY is (KH*KW*C, F), already in the kernel's order: dW.reshape(KH, KW, C, F)",
            _dw_from_dyT_cols,
            zh=("dw 用 dY^T cols 计算（一个 (F, KH*KW*C) 矩阵），没有转置就 reshape 成 (KH, KW, C, F)",
                "dW = cols^T @ dY 是 (KH*KW*C, F)，已经是卷积核的顺序：dW.reshape(KH, KW, C, F)")),
    Mistake("dx from a col2im that overwrites overlaps instead of adding them",
            OVERWRITE_FIX, _dx_overwriting(_col2im_overwrite_windows),
            zh=("dx 来自一个把重叠部分覆盖掉（而不是相加）的 col2im", OVERWRITE_ZH[1])),
    Mistake("dx from a col2im that overwrites overlaps instead of adding them",
            OVERWRITE_FIX, _dx_overwriting(_col2im_overwrite_offsets),
            zh=("dx 来自一个把重叠部分覆盖掉（而不是相加）的 col2im", OVERWRITE_ZH[1])),
    *BACKWARD_MISTAKES[1:4],                 # dx not cropped, db not summed over N, H, W
]


def check_conv2d_backward_gemm(fn):
    """fn(dy, x, w, stride, padding) -> (dx, dw, db) with matrix products: dW = cols^T dY,
    dcols = dY W^T, dx = crop(col2im(dcols)), db = sum of dy over N, OH, OW. Shapes as in
    :func:`check_conv2d_backward_loop`."""
    return _check_arrays(fn, _backward_cases(np.random.default_rng(6)), "conv2d_backward_gemm",
                         rtol=RTOL, atol=ATOL, mistakes=GEMM_BACKWARD_MISTAKES)


# ------------------------------------------------------------------ 7. the receptive field
def _receptive_field(layers, r=1, stride_first=False):
    jump = 1
    for k, s in layers:
        if stride_first:
            jump *= s
        r += (k - 1) * jump
        if not stride_first:
            jump *= s
    return r


RECEPTIVE_FIELD_MISTAKES = [
    Mistake("starting from r = 0 instead of 1 (one output pixel already sees one input pixel)",
            "start with r = 1, jump = 1", lambda layers: _receptive_field(layers, r=0),
            zh=("从 r = 0 开始，而不是 1（一个输出像素本来就能看到一个输入像素）", "从 r = 1、jump = 1 开始")),
    Mistake("the strides ignored (1 + sum of (k - 1))",
            "after a stride-s layer, neighbouring pixels are s times further apart in the input: "
            "multiply the jump by s, and grow r by (k - 1) * jump", lambda layers: _receptive_field(
                [(k, 1) for k, _ in layers]),
            zh=("忽略了步幅（1 + 各层 (k - 1) 之和）",
                "经过步幅为 s 的层之后，相邻像素在输入上相距远了 s 倍：把 jump 乘以 s，"
                "r 每层增加 (k - 1) * jump")),
    Mistake("a layer's stride applied to its own kernel (jump multiplied before r grows)",
            "a layer's stride spaces the pixels of the NEXT layers: r += (k - 1) * jump, then jump *= s",
            lambda layers: _receptive_field(layers, stride_first=True),
            zh=("把一层的步幅用在了它自己的卷积核上（先乘 jump，再增加 r）",
                "一层的步幅决定的是后面各层像素的间距：先 r += (k - 1) * jump，再 jump *= s")),
]


def check_receptive_field(fn):
    """fn(layers) -> the receptive field (pixels along one axis) of one output pixel of a stack of layers,
    each given as (kernel_size, stride), first layer first."""
    unet4 = [(3, 1), (3, 1), (2, 2)] * 4 + [(3, 1), (3, 1)]
    stacks = [[(3, 1)], [(3, 1), (3, 1)], [(3, 1), (3, 1), (2, 2)], [(2, 2), (3, 1)], [(5, 2), (3, 2), (3, 1)],
              unet4, []]
    return _check_cases(fn, [((layers,), _receptive_field(layers)) for layers in stacks], "receptive_field",
                        mistakes=RECEPTIVE_FIELD_MISTAKES)
