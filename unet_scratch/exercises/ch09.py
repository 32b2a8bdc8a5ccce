"""Chapter 09's exercises: a convolution by Winograd's F(2x2, 3x3) as 16 matrix products, a fused Numba
kernel, and the FLOPs of a convolution.

Each check names the classic mistakes of its exercise (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

import numpy as np

from ..ops.conv import conv2d
from .base import Mistake, call_student, message, tr
from .base import check_arrays as _check_arrays
from .base import check_cases as _check

# ------------------------------------------------------------------ 1. Winograd F(2x2, 3x3)
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)


def _winograd_tiles(x, w, bt=BT):
    """(N, T, U, 2, 2, F): every 2x2 output tile by Winograd; the input transform is bt d bt^T."""
    n, h, wd, c = x.shape
    t, u = (h - 2) // 2, (wd - 2) // 2
    uk = np.einsum("ia,abcf,jb->ijcf", G, w, G)                                  # (4, 4, C, F)
    rows = np.arange(t)[:, None] * 2 + np.arange(4)                             # (T, 4)
    cols = np.arange(u)[:, None] * 2 + np.arange(4)                             # (U, 4)
    d = x[:, rows[:, None, :, None], cols[None, :, None, :], :]                 # (N, T, U, 4, 4, C)
    v = np.einsum("ia,ntuabc,jb->ntuijc", bt, d, bt)
    m = np.einsum("ntuijc,ijcf->ntuijf", v, uk)                                 # 16 GEMMs, C -> F
    return np.einsum("pi,ntuijf,qj->ntupqf", AT, m, AT)


def _assemble(tiles):
    n, t, u, _, _, f = tiles.shape
    return tiles.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * t, 2 * u, f)


WINOGRAD_MISTAKES = [
    Mistake("a true convolution (the kernel flipped)",
            "Keras's Conv2D, and the reference here, compute a cross-correlation: use w as it is, w[a, q], "
            "not w[2 - a, 2 - q]",
            lambda x, w: conv2d(x, w[::-1, ::-1], None, 1, "valid")[0],
            zh=('真正的卷积（卷积核被翻转了）',
                'Keras 的 Conv2D 和这里的参考实现计算的都是互相关：w 保持原样，用 w[a, q]，而不是 w[2 - a, 2 - q]')),
    Mistake("the input transform written B d B^T (B^T and B exchanged)",
            "V = B^T d B: with the matrix BT of the text, V = BT @ d @ BT.T",
            lambda x, w: _assemble(_winograd_tiles(x, w, bt=BT.T)),
            zh=('输入变换写成了 B d B^T（B^T 和 B 弄反了）',
                'V = B^T d B：用正文中的矩阵 BT，就是 V = BT @ d @ BT.T')),
    Mistake("the tiles reassembled by a reshape alone, (N, T, U, 2, 2, F) -> (N, 2T, 2U, F)",
            "each tile's 2 rows belong between the tile-row axis and the tile-column axis: transpose to "
            "(N, T, 2, U, 2, F) first, then reshape",
            lambda x, w: _winograd_tiles(x, w).reshape(x.shape[0], x.shape[1] - 2, x.shape[2] - 2, w.shape[3]),
            zh=('只用一次 reshape 把各块拼回去，(N, T, U, 2, 2, F) -> (N, 2T, 2U, F)',
                '每块的 2 行应当位于块行轴和块列轴之间：先转置成 (N, T, 2, U, 2, F)，再 reshape')),
]


def check_winograd_conv3x3(fn):
    """fn(x, w) -> y: the 'valid' 3x3 stride-1 convolution (cross-correlation) by Winograd's F(2x2, 3x3).

    x: (N, H, W, C) with H - 2 and W - 2 even; w: (3, 3, C, F); y: (N, H - 2, W - 2, F). Compared in
    float64 with the reference ``ops.conv2d(x, w, None, 1, "valid")`` on small-integer inputs, where the
    transforms (halves and quarters) and every sum are exact: a right answer agrees to the bit.
    """
    rng = np.random.default_rng(9)
    cases = []
    for shape, f, label in [((1, 4, 4, 1), 1, tr("one 4x4 tile, 1 -> 1 channel", "一个 4x4 块，1 -> 1 个通道")),
                            ((2, 10, 8, 3), 4, tr("N=2, 10x8, 3 -> 4 channels", "N=2，10x8，3 -> 4 个通道")),
                            ((1, 18, 18, 16), 16, tr("18x18, 16 -> 16 channels", "18x18，16 -> 16 个通道"))]:
        x = rng.integers(-3, 4, shape).astype(np.float64)         # small integers: every sum below is exact,
        w = rng.integers(-3, 4, (3, 3, shape[-1], f)).astype(np.float64)   # so a right answer is exact
        cases.append(((x, w), conv2d(x, w, None, 1, "valid")[0], label))
    return _check_arrays(fn, cases, "winograd_conv3x3", rtol=1e-9, atol=1e-9, mistakes=WINOGRAD_MISTAKES)


# ------------------------------------------------------------------ 2. a fused bias + ReLU kernel
BIAS_RELU_MISTAKES = [
    Mistake("the ReLU applied before the bias (max(y, 0) + b)",
            "add the bias first, then clip at 0: max(y + b, 0), so that no output is negative",
            lambda y, b: np.maximum(y, 0) + b,
            zh=('先做 ReLU 再加偏置（max(y, 0) + b）',
                '先加偏置，再在 0 处截断：max(y + b, 0)，这样输出不会有负数')),
    Mistake("the bias added but no ReLU (y + b)",
            "clip at 0 after adding the bias: max(y + b, 0)",
            lambda y, b: y + b,
            zh=('加了偏置，却没有做 ReLU（y + b）',
                '加上偏置之后在 0 处截断：max(y + b, 0)')),
    Mistake("the ReLU without the bias (max(y, 0))",
            "add b[k] to every row's column k before clipping",
            lambda y, b: np.maximum(y, 0),
            zh=('做了 ReLU，却没有加偏置（max(y, 0)）',
                '截断之前，给每一行的第 k 列加上 b[k]')),
]


# not a wrong value but y left as it was: named in the check's own message
RETURNS_RESULT = Mistake("a kernel that returns its result",
                         "Write the result into y, in place (y[r, k] = ...; return values are ignored)",
                         lambda y, b: y,
                         zh=("把结果 return 出来的内核", "把结果原地写进 y（y[r, k] = ...；返回值会被忽略）"))


def check_bias_relu_rows(fn):
    """fn(y, b) overwrites y: (M, F) with max(y + b, 0), b: (F,), in place (like ``add_bias_rows``)."""
    rng = np.random.default_rng(9)
    for (m, f), dtype in [((7, 3), np.float32), ((64, 16), np.float32), ((5, 1), np.float64)]:
        y = rng.standard_normal((m, f)).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        expected = np.maximum(y + b, 0)
        out = y.copy()
        call_student(fn, (out, b), "bias_relu_rows")
        case = tr(f"y of shape {(m, f)}, {np.dtype(dtype).name}", f"y 的形状 {(m, f)}，{np.dtype(dtype).name}")
        label = tr(f"bias_relu_rows ({case})", f"bias_relu_rows（{case}）")
        if np.array_equal(out, y):
            name, fix = RETURNS_RESULT.text()
            raise AssertionError(tr(f"{label}: y is unchanged: that is what {name} gives. {fix}",
                                    f"{label}：y 没有变化：这正是「{name}」会得到的结果。{fix}"))
        if not np.allclose(out, expected, rtol=1e-6, atol=1e-6):
            for mistake in BIAS_RELU_MISTAKES:
                if np.allclose(out, mistake.answer(y, b), rtol=1e-6, atol=1e-6):
                    name, fix = mistake.text()
                    raise AssertionError(message("mistake", what="bias_relu_rows", label=case, name=name, fix=fix))
            diff = np.abs(out - expected)
            r, k = np.unravel_index(int(np.argmax(diff)), diff.shape)
            raise AssertionError(tr(f"{label}: y[{r}, {k}] is {out[r, k]:.4g}, expected max(y + b, 0) = "
                                    f"{expected[r, k]:.4g} (y was {y[r, k]:.4g}, b {b[k]:.4g})",
                                    f"{label}：y[{r}, {k}] 是 {out[r, k]:.4g}，应为 max(y + b, 0) = "
                                    f"{expected[r, k]:.4g}（y 原来是 {y[r, k]:.4g}，b 是 {b[k]:.4g}）"))
    print(message("correct_cases", what="bias_relu_rows", n=3))
    return True


# ------------------------------------------------------------------ 3. FLOPs of a convolution
# (H, W, C, F, K): layers of the seed U-Net (256 x 256 input, 64 filters at the top), and an odd one
_LAYERS = [(256, 256, 1, 64, 3), (256, 256, 64, 64, 3), (16, 16, 1024, 1024, 3), (256, 256, 64, 1, 1),
           (32, 32, 1024, 512, 3), (5, 7, 3, 2, 3)]


def _flops(h, w, c, f, k):
    return 2 * h * w * k * k * c * f


FLOP_MISTAKES = [
    Mistake("the multiply-adds (MACs), not the FLOPs",
            "a multiply-add is two floating-point operations: FLOPs = 2 x H x W x K^2 x C x F",
            lambda h, w, c, f, k: h * w * k * k * c * f,
            zh=('算的是乘加次数（MACs），不是 FLOPs',
                '一次乘加是两次浮点运算：FLOPs = 2 x H x W x K^2 x C x F')),
    Mistake("a kernel of K, not K x K, weights per channel pair",
            "each output value reads a K x K window of every input channel: K^2 C multiply-adds",
            lambda h, w, c, f, k: 2 * h * w * k * c * f,
            zh=('每对通道只算了 K 个权重，而不是 K x K 个',
                '每个输出值都要读取每个输入通道上的一个 K x K 窗口：K^2 C 次乘加')),
    Mistake("the bias adds counted too",
            "by the convention of this chapter (and unet_scratch.bench) the bias adds are not counted",
            lambda h, w, c, f, k: 2 * h * w * k * k * c * f + h * w * f,
            zh=('把加偏置也算进去了',
                '按本章（以及 unet_scratch.bench）的约定，加偏置不计入')),
]


def check_conv_flops(fn):
    """fn(h, w, c, f, k) -> FLOPs (2 x multiply-adds) of one stride-1 'same' k x k conv, batch 1, as an int.

    The bias adds are not counted (as in ``unet_scratch.bench.forward_gflop``).
    """
    return _check(fn, [(args, _flops(*args)) for args in _LAYERS], "conv_flops", mistakes=FLOP_MISTAKES)
