# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown] translates="18e88c1a721a"
# # 11 · 综合实践：把你的运算装进真正的 U-Net
#
# 到目前为止，每一章都让你写一个部件，再单独检查它。这一章要把这些部件装进网络。`unet_scratch.capstone.use_student_ops`
# 在一个 `with` 块的范围内，把**你的**函数交给真正的 `UNet` 的各层：这时每个 `Conv2D` 都运行你的卷积（convolution），每个池化（pooling）层
# 都运行你的池化，每次反向传播（backpropagation）都运行你的反向函数；模型、权重和训练循环仍然是本库的。
#
# **要你实现的：** 每个运算一个单元格，函数签名与各层调用的一致（见下文），代码就是你在前面各章写过的：卷积用 im2col 加一次矩阵乘法，
# 它的反向用 col2im（第 01 章）；按"第一个最大值"规则的最大池化（max-pooling）（第 02 章）；用散射累加（scatter-add）实现的
# 转置卷积（transposed convolution）（第 03 章）；ReLU 和 sigmoid；跳跃连接（skip connection）的拼接（concatenation）（第 04 章）；
# 反转式 dropout（inverted dropout，第 05b 章）。
#
# **要你验证的：** 每个运算的前向和反向都与 `unet_scratch.ops` 中的参考实现对照；然后在**只运行你的运算**的情况下：
# (a) 原文的 U-Net（31,030,593 个参数）在 $64 \times 64$ 的输入上做前向和反向，与 Keras 对照：每一层的输出都在
# rtol = atol = $10^{-5}$ 之内，每个权重梯度的相对误差（relative error）都在 $10^{-5}$ 之内；(b) 在 `membranes` 数据上训练一个小 U-Net，
# 与用本库运算的同一次训练并排比较。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"              # quiet TensorFlow: set before it is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")    # small matrices: one BLAS thread is faster

import math
import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data, keras_ref
from unet_scratch.capstone import use_student_ops, written_ops
from unet_scratch.training import fit
from unet_scratch.exercises.ch05b import check_dropout
from unet_scratch.exercises.ch11 import (check_concatenate, check_conv2d, check_conv2d_transpose,
                                         check_maxpool2d, check_parity, check_relu, check_sigmoid)

# %% [markdown] translates="097664114f1b"
# ## 你的函数怎样进入网络
#
# 层并不直接调用 `conv2d`：每次前向传播（forward pass）时，它向 `backend.ops()` 要当前的运算函数命名空间（NumPy 参考实现、Numba 核函数
# 或 CuPy 核函数，见第 09 章），并把它留给对应的那次反向传播。`use_student_ops(conv2d=..., conv2d_backward=..., ...)` 在块内把你的函数
# 放到这个命名空间的前面，退出时（你的代码抛出异常时也一样）再把它们撤掉；它拒绝不认识的名字（并列出它认识的那些），也拒绝只给了前向、
# 没给反向的函数，因为反向要读取它自己那个前向留下的缓存。它返回一个计数器，记录你的每个函数运行了多少次。函数签名与参考运算
# （`unet_scratch.ops`）相同：
#
# | 运算 | 前向 | 反向 |
# | --- | --- | --- |
# | 卷积 | `conv2d(x, w, b, strides, padding) -> (y, cache)` | `conv2d_backward(dy, cache) -> (dx, dw, db)` |
# | 最大池化 | `maxpool2d(x, pool_size, strides, padding) -> (y, cache)` | `maxpool2d_backward(dy, cache) -> dx` |
# | 上卷积（up-convolution） | `conv2d_transpose(x, w, b, strides, padding) -> (y, cache)` | `conv2d_transpose_backward(dy, cache) -> (dx, dw, db)` |
# | 激活函数 | `relu(x)`、`sigmoid(x) -> (y, cache)` | `relu_backward(dy, cache)`、`sigmoid_backward(dy, cache) -> dx` |
# | 跳跃连接 | `concatenate(xs, axis) -> (y, cache)` | `concatenate_backward(dy, cache) -> [dx_1, dx_2]` |
# | dropout | `dropout(x, rate, rng, training) -> (y, cache)` | `dropout_backward(dy, cache) -> dx` |
#
# 形状：`x` 为 $(N, H, W, C)$；`Conv2D` 的卷积核（kernel）`w` 为 $(K_H, K_W, C, F)$，`Conv2DTranspose` 的卷积核为
# $(K_H, K_W, F, C)$；`b` 为 $(F,)$；`strides` 和 `pool_size` 是 `(2, 2)` 这样的二元组；`padding` 为 `"same"` 或 `"valid"`。
# 缓存归你管：你的反向需要什么，就放什么。在原文的 U-Net 里，各层这样调用它们：$3 \times 3$ 卷积，步幅（stride）1，`"same"`，
# 最后是一个 $1 \times 1$ 的输出层；$2 \times 2$ 池化，步幅 2，`"valid"`；$2 \times 2$ 上卷积，步幅 2，`"same"`；除了输出层用 sigmoid，
# 每个卷积之后都接 ReLU；在通道（channel）轴上拼接 `[up, skip]`；dropout 0.5。像前几章那样写的函数（只返回 `y`，反向接收前向的输入），
# 可以通过 `capstone.from_plain("relu", relu_forward, relu_backward)` 接进来。
#
# 在每个练习单元格里，把你在对应章节写的答案粘贴进来，再改成这里的签名（下面的单元格里带着参考答案）。让它适用于任意批大小（batch size）
# 和通道数，float32 和 float64 都要能用：检查用 float64，网络用 float32。

# %% [markdown] translates="9928a1445472"
# ## 1. 卷积：im2col、一次矩阵乘法、col2im
#
# $y[n, i, j, f] = b[f] + \sum_{a, q, c} x_\text{pad}[n, i s_h + a, j s_w + q, c]\; w[a, q, c, f]$，这是互相关（cross-correlation）。
# `"same"` 填充（padding）总共填 $\text{total} = \max((\lceil n / s \rceil - 1)\, s + k - n, 0)$ 个像素，前面
# $\lfloor \text{total} / 2 \rfloor$ 个，其余放在后面。im2col 把 $N \cdot OH \cdot OW$ 个窗口排成一个 $(N\, OH\, OW, K_H K_W C)$
# 矩阵的各行，于是 $Y = \text{cols}\, W$，其中 $W$ = `w.reshape(-1, F)`；反向时，$dW = \text{cols}^\top dY$，
# $d\text{cols} = dY\, W^\top$，再由 col2im 把 $d\text{cols}$ 散射累加回带填充的输入上，最后去掉填充。
#
# **练习 1.** `conv2d` 和 `conv2d_backward`（以及辅助函数 `same_pads`、`im2col`、`col2im`）。

# %%
def same_pads(n, k, s):
    ### BEGIN SOLUTION
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2
    ### END SOLUTION

def im2col(x_pad, kh, kw, sh, sw):
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x_pad.dtype)
    for a in range(kh):
        for q in range(kw):
            cols[:, :, :, a, q, :] = x_pad[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c)
    ### END SOLUTION

def col2im(cols, x_pad_shape, kh, kw, sh, sw):
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, dtype=cols.dtype)
    for a in range(kh):
        for q in range(kw):
            x_pad[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += cols[:, :, :, a, q, :]
    return x_pad
    ### END SOLUTION

def conv2d(x, w, b, strides, padding):
    ### BEGIN SOLUTION
    kh, kw, c, f = w.shape
    sh, sw = strides
    if padding == "same":
        pads = (same_pads(x.shape[1], kh, sh), same_pads(x.shape[2], kw, sw))
    else:
        pads = ((0, 0), (0, 0))
    x_pad = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    n, hp, wp, _ = x_pad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = im2col(x_pad, kh, kw, sh, sw)
    y = cols @ w.reshape(kh * kw * c, f)
    if b is not None:
        y = y + b
    return y.reshape(n, oh, ow, f), (x_pad.shape, pads, cols, w, strides, b is not None)
    ### END SOLUTION

def conv2d_backward(dy, cache):
    ### BEGIN SOLUTION
    x_pad_shape, pads, cols, w, (sh, sw), has_bias = cache
    kh, kw, c, f = w.shape
    dy2 = dy.reshape(-1, f)
    dw = (cols.T @ dy2).reshape(w.shape)
    dx_pad = col2im(dy2 @ w.reshape(kh * kw * c, f).T, x_pad_shape, kh, kw, sh, sw)
    (top, bottom), (left, right) = pads
    dx = dx_pad[:, top:x_pad_shape[1] - bottom, left:x_pad_shape[2] - right, :]
    return dx, dw, (dy2.sum(axis=0) if has_bias else None)
    ### END SOLUTION

check_conv2d(conv2d, conv2d_backward);

# %% [markdown] translates="8a4866e61c34"
# ## 2. 最大池化与梯度的去向
#
# 在每个 $P_H \times P_W$ 窗口上取 $y[n, i, j, c] = \max_{a, q} x[n, i s_h + a, j s_w + q, c]$（`"valid"`：填不满一个窗口的
# 最后一行或一列被丢掉）。反向时，每个窗口的梯度只交给**一个**输入，即按行优先顺序的第一个最大值，与 TensorFlow 相同；经过 ReLU
# 之后，很多窗口全是零，这条规则决定了它们的梯度去哪里。
#
# **练习 2.** `maxpool2d` 和 `maxpool2d_backward`（对 U-Net 来说，只支持 `"valid"` 填充就够了）。

# %%
def maxpool2d(x, pool_size, strides, padding):
    ### BEGIN SOLUTION
    (ph, pw), (sh, sw) = pool_size, strides
    n, h, w, c = x.shape
    oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
    windows = np.stack([x[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :]
                        for a in range(ph) for q in range(pw)], axis=-1)       # (N, OH, OW, C, PH*PW)
    first = windows.argmax(axis=-1)                                           # the FIRST maximum
    y = np.take_along_axis(windows, first[..., None], axis=-1)[..., 0]
    return y, (x.shape, first, pool_size, strides)
    ### END SOLUTION

def maxpool2d_backward(dy, cache):
    ### BEGIN SOLUTION
    x_shape, first, (ph, pw), (sh, sw) = cache
    oh, ow = dy.shape[1:3]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for a in range(ph):
        for q in range(pw):
            dx[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += np.where(first == a * pw + q, dy, 0)
    return dx
    ### END SOLUTION

check_maxpool2d(maxpool2d, maxpool2d_backward);

# %% [markdown] translates="2cc45daf0724"
# ## 3. 用散射累加实现转置卷积
#
# 每个输入像素把按自身各通道加权的卷积核"盖印"到一块"完整"画布上：
# $\text{full}[n, i s_h + a, j s_w + q, f] \mathrel{+}= \sum_c x[n, i, j, c]\; w[a, q, f, c]$，画布有
# $(H - 1) s_h + K_H$ 行；然后 Keras 从第 $\text{top}$ 行起保留 $OH$ 行：`"same"` 时 $OH = H s_h$，
# $\text{top} = \lfloor \max(K_H - s_h, 0) / 2 \rfloor$；`"valid"` 时 $OH = H s_h + \max(K_H - s_h, 0)$，
# $\text{top} = 0$。反向：把 $dy$ 贴到一块全零画布的同一位置上，然后把每次盖印倒过来做：
# $dx[n, i, j, c] = \sum_{a, q, f} d\text{full}[n, i s_h + a, j s_w + q, f]\, w[a, q, f, c]$，
# $dw[a, q, f, c] = \sum_{n, i, j} d\text{full}[n, i s_h + a, j s_w + q, f]\, x[n, i, j, c]$。
#
# **练习 3.** `conv2d_transpose` 和 `conv2d_transpose_backward`（对 $K_H K_W$ 个卷积核位置做循环，每个位置一次矩阵乘法）。

# %%
def conv2d_transpose(x, w, b, strides, padding):
    ### BEGIN SOLUTION
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    sh, sw = strides
    if padding == "same":
        oh, ow = h * sh, wd * sw
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    else:
        oh, ow = h * sh + max(kh - sh, 0), wd * sw + max(kw - sw, 0)
        top = left = 0
    full = np.zeros((n, max((h - 1) * sh + kh, top + oh), max((wd - 1) * sw + kw, left + ow), f), dtype=x.dtype)
    for a in range(kh):
        for q in range(kw):
            full[:, a:a + sh * (h - 1) + 1:sh, q:q + sw * (wd - 1) + 1:sw, :] += x @ w[a, q].T
    y = full[:, top:top + oh, left:left + ow, :]
    if b is not None:
        y = y + b
    return y, (x, w, strides, full.shape, top, left, b is not None)
    ### END SOLUTION

def conv2d_transpose_backward(dy, cache):
    ### BEGIN SOLUTION
    x, w, (sh, sw), full_shape, top, left, has_bias = cache
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    dfull = np.zeros(full_shape, dtype=dy.dtype)
    dfull[:, top:top + dy.shape[1], left:left + dy.shape[2], :] = dy
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for a in range(kh):
        for q in range(kw):
            d = dfull[:, a:a + sh * (h - 1) + 1:sh, q:q + sw * (wd - 1) + 1:sw, :]     # (N, H, W, F)
            dx += d @ w[a, q]
            dw[a, q] = d.reshape(-1, d.shape[-1]).T @ x.reshape(-1, c)
    return dx, dw, (dy.sum(axis=(0, 1, 2)) if has_bias else None)
    ### END SOLUTION

check_conv2d_transpose(conv2d_transpose, conv2d_transpose_backward);

# %% [markdown] translates="2ab6efa1684b"
# ## 4. ReLU 与 sigmoid
#
# $\operatorname{relu}(x) = \max(x, 0)$，$dx = dy \cdot [x > 0]$（在 $x = 0$ 处为 0，与 TensorFlow 相同）。层可能会对它自己的输出
# $y$ 再调用一次你的 `relu`，用来重建缓存（数值一致报告把 Keras 的激活值送回来时就会这样做）：$[y > 0] = [x > 0]$，所以正确的 ReLU
# 不需要特别处理。$\sigma(x) = 1 / (1 + e^{-x})$，$dx = dy \cdot y (1 - y)$；要从 $e^{-|x|}$ 算起，这样 $x = -1000$ 时才不会溢出。
#
# **练习 4.** `relu`、`relu_backward`、`sigmoid`、`sigmoid_backward`。

# %%
def relu(x):
    ### BEGIN SOLUTION
    return np.maximum(x, 0), x
    ### END SOLUTION

def relu_backward(dy, cache):
    ### BEGIN SOLUTION
    return dy * (cache > 0)
    ### END SOLUTION

def sigmoid(x):
    ### BEGIN SOLUTION
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1, e) / (1 + e)
    return y, y
    ### END SOLUTION

def sigmoid_backward(dy, cache):
    ### BEGIN SOLUTION
    return dy * cache * (1 - cache)
    ### END SOLUTION

check_relu(relu, relu_backward);
check_sigmoid(sigmoid, sigmoid_backward);

# %% [markdown] translates="b14d481e8bdf"
# ## 5. 跳跃连接：拼接
#
# 沿通道方向 $y = [\,x_1 \mid x_2\,]$；它的反向就是在同一位置切开：$dx_1 = dy[\dots, :C_1]$，$dx_2 = dy[\dots, C_1:]$。
# 在 U-Net 中，$x_1$ 是上卷积的输出，$x_2$ 是跳跃连接送来的特征；第 05 章会把它的梯度加到沿收缩路径传回来的梯度上。
#
# **练习 5.** 对沿 `axis` 拼接的一组输入，写出 `concatenate` 和 `concatenate_backward`。

# %%
def concatenate(xs, axis):
    ### BEGIN SOLUTION
    return np.concatenate(xs, axis=axis), ([x.shape[axis] for x in xs], axis)
    ### END SOLUTION

def concatenate_backward(dy, cache):
    ### BEGIN SOLUTION
    sizes, axis = cache
    return np.split(dy, np.cumsum(sizes)[:-1], axis=axis)
    ### END SOLUTION

check_concatenate(concatenate, concatenate_backward);

# %% [markdown] translates="be204e45b135"
# ## 6. Dropout
#
# 第 05b 章的练习 3 已经是这个签名：在 `rng.random(x.shape) >= rate` 的位置保留，保留下来的值乘以 $1 / (1 - \text{rate})$，
# 不训练时原样返回。各层传入它们自己的带种子的随机数生成器，所以你的掩码与本库的相同。
#
# **练习 6.** `dropout` 和 `dropout_backward`。

# %%
def dropout(x, rate, rng, training):
    ### BEGIN SOLUTION
    if not training or rate == 0:
        return x, None
    mask = ((rng.random(x.shape) >= rate) / (1 - rate)).astype(x.dtype)
    return x * mask, mask
    ### END SOLUTION

def dropout_backward(dy, cache):
    ### BEGIN SOLUTION
    return dy if cache is None else dy * cache
    ### END SOLUTION

check_dropout(dropout, dropout_backward);

# %% [markdown] translates="03bcc3abe8c4"
# ## 7. (a) 原文的 U-Net 跑在你的运算上，与 Keras 对照
#
# 本库的 `UNet()` 取默认参数就是原文的模型：31,030,593 个参数，23 个卷积层。`keras_ref.to_keras` 用相同的权重搭出原文的 Keras 模型，
# `keras_ref.compare`（第 06 章）在一幅 $64 \times 64$ 的膜结构图像上运行两者，比较每一层的输出，再让同一个损失分别在两边反向传播，
# 比较每个权重的梯度。反向传播按**教师强制**（teacher-forced）的方式比较（我们的每一层都用 Keras 送进该层的输入重新计算），因为在
# float32 下，一个池化窗口中最大的两个值如果只差一次舍入，两边可能把梯度送到不同的位置：第 06 章有解释。下面从零实现的这一侧，
# 每个运算都是你写的；计数器可以证明。（`written_ops` 会略去仍然抛出 `NotImplementedError` 的函数对，这样在你逐个做练习的时候，
# 还没写的运算由本库的运算代替。）

# %%
your_ops = dict(conv2d=conv2d, conv2d_backward=conv2d_backward,
                maxpool2d=maxpool2d, maxpool2d_backward=maxpool2d_backward,
                conv2d_transpose=conv2d_transpose, conv2d_transpose_backward=conv2d_transpose_backward,
                relu=relu, relu_backward=relu_backward, sigmoid=sigmoid, sigmoid_backward=sigmoid_backward,
                concatenate=concatenate, concatenate_backward=concatenate_backward,
                dropout=dropout, dropout_backward=dropout_backward)
mine, missing = written_ops(your_ops)
if missing:
    print("not written yet, the package's ops run in their place:", ", ".join(missing))

model = UNet(input_shape=(64, 64, 1), seed=0)            # the article's model
keras_model = keras_ref.to_keras(model)                  # the same weights, in Keras 3
x = data.load("membranes", n=1, size=64)[0]
with use_student_ops(**mine) as calls:
    report = keras_ref.compare(model, keras_model, x)

print(f"parameters: {model.count_params():,}")
print("your functions ran:", ", ".join(f"{name} {n}x" for name, n in sorted(calls.items())))
print("every op of the network was yours:", set(calls) == set(your_ops))
check_parity(report, tol=1e-5);

# %% [markdown] translates="e5e19a548b89"
# 测得的误差（最后几位数字因机器而异，所以测试笔记本时不比对这个单元格的输出）：任一层输出的最大绝对差，以及任一权重梯度的最大
# 相对差 $\lVert a - b \rVert / \lVert b \rVert$，并给出各自出现在哪一层。float32 运算大约有 7 位有效数字，而一层的输出要把成千上万个
# 乘积加起来，所以激活值相差 $10^{-7}$、梯度相差 $10^{-6}$ 是预料之中的舍入误差，不是 bug。

# %%
# NBVAL_IGNORE_OUTPUT
forward_rows = [r for r in report.rows if r.kind == "forward"]
gradient_rows = [r for r in report.rows if r.kind == "gradient"]
worst_f = max(forward_rows, key=lambda r: r.max_abs)
worst_g = max(gradient_rows, key=lambda r: r.rel)
print(f"forward:  largest abs error {worst_f.max_abs:.1e} (at {worst_f.name}); tolerance 1e-05")
print(f"backward: largest relative error {worst_g.rel:.1e} (at {worst_g.name}); tolerance 1e-05")

kernels = [r for r in gradient_rows if r.name.endswith("/kernel")]
fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
ax.semilogy(range(len(forward_rows)), [max(r.max_abs, 1e-12) for r in forward_rows], "o-", ms=4,
            color=plt.cm.viridis(0.3), label="layer output: largest abs error")
where = {r.name: i for i, r in enumerate(forward_rows)}
ax.semilogy([where[r.name.split("/")[0]] for r in kernels], [max(r.rel, 1e-12) for r in kernels], "s", ms=5,
            color=plt.cm.viridis(0.8), label="kernel gradient: relative error")
ax.axhline(1e-5, color="0.3", ls="--", lw=1, label="tolerance 1e-5 (both)")
ax.set_xticks(range(len(forward_rows)))
ax.set_xticklabels([r.name for r in forward_rows], rotation=90, fontsize=7)
ax.set_ylabel("error against Keras (log;\nexact 0 drawn at 1e-12)")
ax.set_xlabel("layer, in forward order (pooling layers have no kernel)")
ax.set_title("Your ops against Keras: every layer and every gradient below the tolerance")
ax.legend(fontsize=8, loc="lower right"); fig.tight_layout(); plt.show()

# %% [markdown] translates="b9fb1de1cf31"
# ## 8. (b) 用你的运算训练
#
# 一个小 U-Net（深度 3，最上层 8 个滤波器（filter），原文的 dropout 0.5，He 初始化）用 `training.fit` 在 32 幅 $64 \times 64$ 的
# `membranes` 图像上用 Adam 训练四轮（epoch）：一次用你的运算，一次用本库的运算，随机种子相同，所以批次、dropout 掩码和初始权重
# 都一样。两次训练的差别只在于你的运算与参考实现的舍入不同，而这种（float32 的）舍入误差会随着训练的每一步略有增长。

# %%
train = data.load("membranes", n=32, size=64)
val = data.load("membranes", "val", n=8, size=64)

def train_small_unet():
    '''A fresh small U-Net, trained for four epochs; returns the History.'''
    net = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0.5, kernel_initializer="he_normal", seed=0)
    return fit(net, train, val, epochs=4, batch_size=4, optimizer="adam", learning_rate=3e-3, seed=0, verbose=0)

with use_student_ops(**mine) as calls:
    yours = train_small_unet()
package = train_small_unet()

fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), dpi=100)
for hist, name, style in [(yours, "your ops", "-"), (package, "package's ops", "--")]:
    epochs = range(1, len(hist.history["loss"]) + 1)
    ax[0].plot(epochs, hist.history["loss"], style, color=plt.cm.viridis(0.2), label=f"{name}: train")
    ax[0].plot(epochs, hist.history["val_loss"], style, color=plt.cm.viridis(0.7), label=f"{name}: validation")
    ax[1].plot(epochs, hist.history["val_dice"], style, color=plt.cm.viridis(0.45), label=name)
ax[0].set(xlabel="epoch", ylabel="binary cross-entropy", title="The loss falls, the two runs on top of each other")
ax[1].set(xlabel="epoch", ylabel="validation Dice (threshold 0.5)", ylim=(0, 1), title="Validation Dice rises")
for a in ax:
    a.legend(fontsize=8); a.set_xticks(range(1, len(yours.history["loss"]) + 1))
fig.tight_layout(); plt.show()

h, p = yours.history, package.history
print("your ops that training never called:", sorted(set(your_ops) - set(calls)),
      "(the loss is computed from the head's logits, chapter 07)")
print("training loss fell from the first epoch to the last:", h["loss"][-1] < h["loss"][0])
print("validation Dice after 4 epochs above 0.3:", h["val_dice"][-1] > 0.3)
gap = max(abs(a - b) / b for a, b in zip(h["loss"] + h["val_loss"], p["loss"] + p["val_loss"]))
print("every epoch's loss within 1 % of the package's run:", gap < 0.01)

# %% [markdown] translates="8eb3d5dad9ef"
# 这就是整个网络——前向、反向和训练——都跑在你写的代码上；只有输出层的 sigmoid 例外：训练直接从 logits 计算损失（第 07 章），用不到它。
# 本库在此之上增加的是速度（第 09 章的 Numba 和 CuPy 核函数，签名相同），
# 以及其余的训练设施（数据增强、检查点、论文的加权损失）。
#
# **本章练习**（每道都要写一个前向和它的反向）：1. `conv2d` / `conv2d_backward`，配合 `im2col` 和 `col2im`（检查能认出：翻转了卷积核、
# 多出的填充像素放在前面、两边对称地填 $k // 2$、忘了偏置（bias））；2. `maxpool2d` / `maxpool2d_backward`（梯度给了每个并列的最大值、
# 给了最后一个最大值、奇数尺寸没有向下取整）；3. `conv2d_transpose` / `conv2d_transpose_backward`（翻转了卷积核、把卷积核读成
# $(K_H, K_W, C, F)$、用了 PyTorch 的裁剪（crop）方式、忘了偏置）；4. `relu`、`sigmoid` 及其反向（在 0 处梯度为 1、掩码取自 $dy$、
# 忘了掩码；用 $x$ 代替 $y$、忘了乘 $dy$、忘了乘 $y(1 - y)$、溢出）；5. `concatenate` / `concatenate_backward`（两半对调、切成相等的
# 两半、拼成 $[skip, up]$）；6. `dropout` / `dropout_backward`（第 05b 章的检查）。
