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

# %% [markdown] translates="2bb929be1d1a"
# # 03 · 转置卷积：U-Net 往上走的路
#
# **要你实现的：** 转置卷积（transposed convolution），即 Keras 的 `Conv2DTranspose`，也就是 U-Net 解码器中的上卷积（up-convolution），前向和反向都要写：
# 1. `conv_transpose_scatter`：把前向传播（forward pass）写成卷积核（kernel）的**散射累加**（scatter-add），再做 Keras 的裁剪（crop）并加上偏置（bias）；
# 2. `conv_transpose_backward`：它的梯度 $dx, dw, db$；
# 3. `overlap_counts`：每个输出像素被多少个卷积核"印记"覆盖，这是**棋盘伪影**（checkerboard artifact）背后的算术。
#
# **要你验证的：** 每个函数都与本库的参考实现（`ops.conv2d_transpose`、`ops.conv2d_transpose_backward`）对照；你的答案犯了典型错误时，检查会说出错误的名字。本库和你的函数还要与 `keras.layers.Conv2DTranspose`（float32，`rtol = atol = 1e-5`，以及 Keras 3
# 的输出尺寸）和 TensorFlow 的 `tf.GradientTape`（float64）对照，反向传播（backpropagation）还要与中心差分（central differences）对照。顺带你会看到：转置卷积就是
# **步幅（stride）大于 1 的卷积（convolution）的梯度**；以及为什么 U-Net 的 $2\times2$、步幅 2 的卷积核能避开一种棋盘伪影，却避不开另一种。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import numpy as np
import matplotlib.pyplot as plt

from unet_scratch import ops
from unet_scratch.ops.conv import conv2d_input_gradient
from unet_scratch.ops.conv_transpose import keras_crop_start
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras

tf = import_tensorflow(); keras = import_keras()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown] translates="a0acb1993404"
# ## 1. 卷积的转置
#
# 卷积对输入是线性的，所以卷积核固定时，它就是一个矩阵：把输入 $z$ 和输出都展平，$\mathrm{conv}(z) = C z$。步幅为 2 的 $3\times3$
# `valid` 卷积把 $7\times7$ 的图像映射为 $3\times3$，所以 $C \in \mathbb{R}^{9 \times 49}$。它的**转置**
# $C^\top \in \mathbb{R}^{49 \times 9}$ 把 $3\times3$ 映射回 $7\times7$：这就是转置卷积。（它*不是*逆：$C^\top C \ne I$。）
#
# 由第 01 章，$y = Cz$ 的反向传播是 $dz = C^\top dy$。所以 **$x$ 的转置卷积，就是把 $x$ 放在 $dy$ 的位置上时，卷积对输入的梯度**：
# $$\mathrm{conv\_transpose}(x;\,w) = C^\top x = \texttt{conv2d\_input\_gradient}(dy = x,\ w).$$
# TensorFlow 正是这样实现它的（`conv2d_backprop_input`），`ops.conv2d_transpose` 也是。Keras 把这一层的卷积核存为
# $(K_H, K_W, F_{\text{out}}, C_{\text{in}})$：输出通道（channel）在输入通道*前面*，恰好是它所转置的那个卷积的布局。

# %%
w = rng.standard_normal((3, 3, 1, 1))
C = np.stack([ops.conv2d(e.reshape(1, 7, 7, 1), w, strides=2)[0].ravel() for e in np.eye(49)], axis=1)
x = rng.standard_normal((1, 3, 3, 1))
y_matrix = (C.T @ x.ravel()).reshape(1, 7, 7, 1)
y_ops = ops.conv2d_transpose(x, w, strides=2, padding="valid")[0]
print("C:", C.shape, "  conv2d_transpose output:", y_ops.shape)
print("C^T x == ops.conv2d_transpose(x):             ", np.allclose(y_matrix, y_ops))
print("== conv2d_input_gradient(dy = x) of the conv: ",
      np.allclose(y_ops, conv2d_input_gradient(x, w, (1, 7, 7, 1), 2)))
z = rng.standard_normal((1, 7, 7, 1))
print("adjoint: <conv(z), x> == <z, conv_transpose(x)>:",
      np.isclose(np.sum(ops.conv2d(z, w, strides=2)[0] * x), np.sum(z * y_ops)))

fig, ax = plt.subplots(1, 2, figsize=(9, 3), dpi=100, gridspec_kw={"width_ratios": [49, 14]})
ax[0].imshow(C, cmap="viridis", aspect="auto")
ax[0].set_title("C: conv 7x7 -> 3x3 (one row per output pixel)", fontsize=9)
ax[0].set_xlabel("input pixel index (7x7, row-major)"); ax[0].set_ylabel("output pixel index (3x3)")
ax[1].imshow(C.T, cmap="viridis", aspect="auto")
ax[1].set_title("C^T: 3x3 -> 7x7", fontsize=9)
ax[1].set_xlabel("input pixel (3x3)"); ax[1].set_ylabel("output pixel (7x7)"); ax[1].set_xticks(range(0, 9, 4))
fig.suptitle("A strided convolution is a sparse matrix; the transposed convolution is its transpose", fontsize=10)
fig.tight_layout(); plt.show()



# %% [markdown] translates="2af95532c816"
# ## 2. 同一件事的散射累加写法
#
# 按列读 $C^\top$：输入像素 $x_{ij}$ 贡献的是 $x_{ij}$ 乘以（不翻转的）卷积核，放在输出的 $(i s, j s)$ 处。每个输入像素把卷积核**盖印**
# （stamp）到一块画布上，重叠的印记相加。取 $x$：$(N, H, W, C_{\text{in}})$，Keras 的卷积核 $w$：$(K_H, K_W, F, C_{\text{in}})$，
# $$\text{full}_{n,\; i s + a,\; j s + q,\; f} \mathrel{+}= \sum_c x_{n,i,j,c}\; w_{a,q,f,c}
# \qquad (0 \le a < K_H,\ 0 \le q < K_W).$$
# 这些印记覆盖 $(H - 1)s + K_H$ 行。**算例**（$1 \times 2$ 的输入、$1\times3$ 的卷积核、步幅 2、单通道，只看一个轴）：$x = (1, 10)$、
# $w = (1, 2, 3)$，在第 0 列盖下 $(1, 2, 3)$，在第 2 列盖下 $(10, 20, 30)$，所以 full $= (1, 2, 3 + 10, 20, 30) = (1, 2, 13, 20, 30)$：第 2 列被两个印记覆盖。

# %%
full_1d = ops.conv2d_transpose(np.array([1.0, 10.0]).reshape(1, 1, 2, 1), np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1),
                               strides=(1, 2), padding="valid")[0]
print("full canvas of the worked example:", full_1d[0, 0, :, 0])

# %% [markdown] translates="b22217df3a6f"
# ## 3. 输出尺寸与 Keras 的裁剪
#
# 不设 `output_padding` 时，Keras 3 的 `Conv2DTranspose` 沿每个轴给出
# $$n_{\text{out}} = i\,s + \max(k - s,\ 0) \quad(\texttt{valid}), \qquad n_{\text{out}} = i\,s \quad(\texttt{same}),$$
# （`ops.conv_transpose_output_size`）。$k \ge s$ 时，`valid` 的尺寸就是完整画布 $(i - 1)s + k$；$k < s$ 时，Keras 在末尾追加
# $s - k$ 行没有任何印记到达的零（只有偏置）。`same` 保留完整画布的 $i\,s$ 行，按 TensorFlow 的 `same` 填充（padding）规则丢掉多出的 $k - s$ 行：
# **开头**丢 $\lfloor (k - s)/2 \rfloor$ 行，其余从**末尾**丢（`keras_crop_start(k, s, padding)` 给出起点，由 Keras 自己的填充公式推出）。所以 $k = 3, s = 2$ 保留 `full[0:2i]`，$k = 4, s = 2$ 保留 `full[1:2i + 1]`，而 U-Net 的 $k = 2, s = 2$ 什么也不裁。（PyTorch 的
# `ConvTranspose2d(k=3, s=2, padding=1, output_padding=1)` 保留的则是 `full[1:2i + 1]`：它的输出相对 Keras 错开了一个像素。）一般来说，转置卷积并**不能**把卷积的尺寸映射反过来：步幅为 2 的 `valid` 卷积把 7 和 8 都变成 3，而 3 只能回到其中一个。下面把这些公式与 Keras 自己的层对照：

# %%
all_ok = True
print(f"{'i':>3} {'k':>2} {'s':>2} {'padding':>8} {'formula':>8} {'Keras':>6} {'crop start':>11}")
for i, k, s, padding in [(16, 2, 2, "valid"), (16, 2, 2, "same"), (5, 3, 2, "valid"), (5, 3, 2, "same"),
                         (5, 4, 2, "same"), (5, 1, 3, "valid"), (5, 3, 1, "same")]:
    layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding)
    keras_size = layer.compute_output_shape((1, i, i, 1))[1]
    formula = ops.conv_transpose_output_size(i, k, s, padding)
    all_ok &= formula == keras_size and keras_crop_start(k, s, padding) == (max(k - s, 0) // 2 if padding == "same" else 0)
    print(f"{i:>3} {k:>2} {s:>2} {padding:>8} {formula:>8} {keras_size:>6} {keras_crop_start(k, s, padding):>11}")
print("output sizes agree with Keras, and the crop starts at floor((k - s) / 2) for 'same':", all_ok)

# %% [markdown] translates="901901e490c6"
# **练习 1.** 对输入像素做循环，写出 `conv_transpose_scatter(x, w, b, s, padding)`：Keras 的 `Conv2DTranspose`。先建一块
# $\max((H - 1)s + K_H,\ H s)$ 行、$\max((W - 1)s + K_W,\ W s)$ 列的零画布（第二项是为 $k < s$ 准备的），把每个输入像素的卷积核盖印上去，从第 $\lfloor (k - s)/2 \rfloor$ 行和列（`same`，$k > s$）或第 0 行和列开始保留 $OH \times OW$ 个像素，再加上 `b`。提示：
# `np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)` 就是像素 $(i, j)$ 对整个批次的印记，形状 $(N, K_H, K_W, F)$。

# %%
from unet_scratch.exercises.ch03 import check_conv_transpose_scatter

def conv_transpose_scatter(x, w, b, s, padding):
    """Keras Conv2DTranspose as a scatter-add of the unflipped kernel, then the crop, then + b.

    x: (N, H, W, C_in), w: (KH, KW, F, C_in) (Keras's layout), b: (F,), s: int (both axes),
    padding: 'valid' or 'same'. Returns y: (N, OH, OW, F), OH = H*s ('same') or H*s + max(KH - s, 0) ('valid').
    """
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    oh, ow = h * s, wd * s
    if padding == "valid":
        oh, ow = oh + max(kh - s, 0), ow + max(kw - s, 0)
    top = max(kh - s, 0) // 2 if padding == "same" else 0
    left = max(kw - s, 0) // 2 if padding == "same" else 0
    full = np.zeros((n, max((h - 1) * s + kh, h * s), max((wd - 1) * s + kw, wd * s), f))
    for i in range(h):
        for j in range(wd):
            full[:, i * s:i * s + kh, j * s:j * s + kw, :] += np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)
    return full[:, top:top + oh, left:left + ow, :] + b
    ### END SOLUTION

check_conv_transpose_scatter(conv_transpose_scatter);

# %% [markdown] translates="ebdf99722a1e"
# ### 与 `keras.layers.Conv2DTranspose` 对照验证
#
# 本库的 `ops.conv2d_transpose` 用另一种方式算同一件事：把它当作卷积对输入的梯度（第 1 节）；上面的检查拿你的函数与它比较。现在把两者都与一个持有相同 `w`（形状 $(K_H, K_W, F, C_{\text{in}})$）和 `b` 的 Keras 层在 float32 下对照：

# %%
def keras_conv_transpose(x, w, b, strides, padding):
    layer = keras.layers.Conv2DTranspose(w.shape[2], w.shape[:2], strides=strides, padding=padding)
    layer.build(x.shape)
    layer.set_weights([w, b])
    return np.asarray(layer(x))

ok = {"ops": True, "yours": True}
for x_shape, k, s, padding in [((2, 8, 8, 4), 2, 2, "valid"), ((2, 8, 8, 4), 2, 2, "same"),
                               ((1, 5, 6, 3), 3, 2, "valid"), ((1, 5, 6, 3), 3, 2, "same"),
                               ((1, 5, 5, 2), 4, 2, "same"), ((1, 5, 5, 2), 3, 1, "same"),
                               ((1, 4, 4, 2), 1, 3, "valid")]:
    xf = rng.standard_normal(x_shape).astype(np.float32)
    wf = rng.standard_normal((k, k, 3, x_shape[3])).astype(np.float32)
    bf = rng.standard_normal(3).astype(np.float32)
    theirs = keras_conv_transpose(xf, wf, bf, s, padding)
    for name, ours in [("ops", ops.conv2d_transpose(xf, wf, bf, s, padding)[0]),
                       ("yours", conv_transpose_scatter(xf, wf, bf, s, padding))]:
        ok[name] &= ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
print("7 configurations, ops.conv2d_transpose == keras.layers.Conv2DTranspose (rtol = atol = 1e-5):", ok["ops"])
print("7 configurations, your conv_transpose_scatter == keras.layers.Conv2DTranspose:                ", ok["yours"])

# %% [markdown] translates="f9b993a9917d"
# ## 4. 反向传播
#
# 因为 $y = C^\top x + b$，由链式法则（chain rule）$dx = (C^\top)^\top dy = C\,dy$：**转置卷积的梯度就是普通卷积** `conv2d(dy, w)`，卷积核、步幅和填充都相同，它把 $dy$ 缩回 $x$ 的尺寸。如果把 $dx$ 算成 $dy$ 的又一次*转置*卷积，尺寸反而会变大。用散射的图景来说：把 $dy$ 放回完整画布上裁剪时取它的位置（其余为零），记作 $d\text{full}$；输入像素 $(i, j)$ 盖印过窗口 $d\text{full}[n,\ is : is + K_H,\ js : js + K_W,\ :]$，所以它从这个窗口**收集**（gather）：
# $$dx_{n,i,j,c} = \sum_{a,q,f} d\text{full}_{n,\,is + a,\,js + q,\,f}\; w_{a,q,f,c}, \qquad
# dw_{a,q,f,c} = \sum_{n,i,j} d\text{full}_{n,\,is + a,\,js + q,\,f}\; x_{n,i,j,c}, \qquad
# db_f = \sum_{n,i,j} dy_{n,i,j,f}.$$
# 形状：$dy$：$(N, OH, OW, F)$，$dx$：$(N, H, W, C_{\text{in}})$，$dw$：$(K_H, K_W, F, C_{\text{in}})$（卷积核自身的布局），
# $db$：$(F,)$。**算例**（第 2 节的一维例子，$x = (1, 10)$，$w = (1, 2, 3)$），取 $dy = (1, 0, 0, 0, 1)$：像素 0 收集
# $dy_{0:3} \cdot w = 1$，像素 1 收集 $dy_{2:5} \cdot w = 3$，所以 $dx = (1, 3)$；$dw_a = dy_a x_0 + dy_{2 + a} x_1 = (1, 0, 10)$；$db = 2$。

# %%
_, cache_1d = ops.conv2d_transpose(np.array([1.0, 10.0]).reshape(1, 1, 2, 1),
                                   np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1), np.zeros(1), (1, 2), "valid")
dx_1d, dw_1d, db_1d = ops.conv2d_transpose_backward(np.array([1.0, 0, 0, 0, 1]).reshape(1, 1, 5, 1), cache_1d)
print("dx:", dx_1d.ravel(), " dw:", dw_1d.ravel(), " db:", db_1d)

# %% [markdown] translates="bf8c77a0dbe7"
# **练习 2.** 写出 `conv_transpose_backward(dy, x, w, s, padding)`：上面的三个梯度，对输入像素做循环，它就是你那个散射的伴随（adjoint）。建一块与你的画布同样大小的 $d\text{full}$，把 `dy` 复制到裁剪时的位置，再收集。提示：`np.einsum("naqf,aqfc->nc", window, w)` 和
# `np.einsum("naqf,nc->aqfc", window, x[:, i, j, :])`。

# %%
from unet_scratch.exercises.ch03 import check_conv_transpose_backward

def conv_transpose_backward(dy, x, w, s, padding):
    """Gradients of y = conv_transpose_scatter(x, w, b, s, padding) given dy = dL/dy.

    dy: (N, OH, OW, F), x: (N, H, W, C_in), w: (KH, KW, F, C_in).
    Returns (dx, dw, db): (N, H, W, C_in), (KH, KW, F, C_in), (F,).
    """
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    oh, ow = dy.shape[1:3]
    top = max(kh - s, 0) // 2 if padding == "same" else 0
    left = max(kw - s, 0) // 2 if padding == "same" else 0
    d_full = np.zeros((n, max((h - 1) * s + kh, h * s), max((wd - 1) * s + kw, wd * s), f))
    d_full[:, top:top + oh, left:left + ow, :] = dy
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    for i in range(h):
        for j in range(wd):
            window = d_full[:, i * s:i * s + kh, j * s:j * s + kw, :]            # (N, KH, KW, F)
            dx[:, i, j, :] = np.einsum("naqf,aqfc->nc", window, w)
            dw += np.einsum("naqf,nc->aqfc", window, x[:, i, j, :])
    return dx, dw, dy.sum(axis=(0, 1, 2))
    ### END SOLUTION

check_conv_transpose_backward(conv_transpose_backward);

# %% [markdown] translates="38f9b729baf0"
# ### 验证：TensorFlow 的梯度与中心差分
#
# `ops.conv2d_transpose_backward` 不用循环，而是用恒等式：$dx$ = `conv2d(dy, w)`，$dw$ 是这次卷积的权重梯度，只是角色互换（$dy$ 作输入，
# $x$ 作上游梯度）。对 $L = \sum y \odot dy$，把它和你的循环版本都与 float64 `keras.layers.Conv2DTranspose` 上的 `tf.GradientTape`
# 对照（在舍入误差范围内一致，$\sim 10^{-15}$；阈值为 $10^{-10}$）：

# %%
def tf_conv_transpose_gradients(x, w, b, dy, strides, padding):
    layer = keras.layers.Conv2DTranspose(w.shape[2], w.shape[:2], strides=strides, padding=padding, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([w, b])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt) * dy)
    return [np.asarray(g) for g in tape.gradient(loss, [xt, *layer.trainable_weights])]   # dx, dw (kernel), db

worst = {"ops": 0.0, "yours": 0.0}
for k, s, padding in [(2, 2, "valid"), (2, 2, "same"), (3, 2, "same"), (4, 2, "same"), (3, 1, "valid"),
                      (1, 3, "valid")]:
    x = rng.standard_normal((2, 3, 4, 3))
    w = rng.standard_normal((k, k, 2, 3))
    b = rng.standard_normal(2)
    y, cache = ops.conv2d_transpose(x, w, b, s, padding)
    dy = rng.standard_normal(y.shape)
    expected = tf_conv_transpose_gradients(x, w, b, dy, s, padding)
    for name, got in [("ops", ops.conv2d_transpose_backward(dy, cache)),
                      ("yours", conv_transpose_backward(dy, x, w, s, padding))]:
        for g, e in zip(got, expected):                  # dx, dw, db: largest error relative to the largest value
            worst[name] = max(worst[name], float(np.max(np.abs(g - e)) / np.max(np.abs(e))))
print("6 configurations: ops.conv2d_transpose_backward == tf.GradientTape (relative error < 1e-10):",
      worst["ops"] < 1e-10)
print("6 configurations: your conv_transpose_backward == tf.GradientTape:                        ",
      worst["yours"] < 1e-10)

# %%
all_ok = True
for k, s, padding in [(2, 2, "valid"), (3, 2, "same"), (4, 2, "same"), (3, 1, "valid")]:
    x = rng.standard_normal((2, 3, 4, 3))
    w = rng.standard_normal((k, k, 2, 3))
    b = rng.standard_normal(2)
    y, cache = ops.conv2d_transpose(x, w, b, s, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_transpose_backward(dy, cache)
    forward = lambda _: ops.conv2d_transpose(x, w, b, s, padding)[0]
    ok = all(rel_error(analytic, numeric_gradient(forward, p, dy)) < 1e-7
             for analytic, p in [(dx, x), (dw, w), (db, b)])
    all_ok &= ok
    print(f"k={k} s={s} {padding:>5}: dx, dw, db relative errors to central differences below 1e-7:", ok)
print("dx == conv2d(dy, w) (the gradient is a convolution):", np.allclose(dx, ops.conv2d(dy, w, None, s, padding)[0]))
print("transposed convolution backward verified:", all_ok)

# %% [markdown] translates="9f58a502ad31"
# ## 5. 棋盘伪影
#
# 输入一幅**常数**图像（全为 1）。用全 1 的卷积核时，每个输出像素的值就是覆盖它的印记个数。$k = 3$、$s = 2$ 时，印记之间重叠一行一列：奇数行被覆盖一次，偶数行两次，交叉处四次。这种**不均匀的重叠**（只要 $k$ 不能被 $s$ 整除就会出现）就是一张棋盘，网络必须学着把它抵消掉，而在生成的图像里它常常残留成一张看得见的网格。$k = 2$、$s = 2$（U-Net 的上卷积）时，印记恰好铺满平面：每个输出像素只被覆盖一次。（$k = 4$、$s = 2$ 的重叠也是均匀的：离开边界之后，每个像素都被 $2 \times 2 = 4$ 个印记覆盖。）
#
# 但这还不是全部。只要 $2\times2$ 卷积核**不是常数**，步幅为 2 的转置卷积作用在常数图像上，结果就是这个卷积核的**周期为 2 的平铺**：每个输入像素都并排盖下同样的四个值（第三幅图）。所以 U-Net 的 $k = 2, s = 2$ 上卷积没有不均匀重叠，却仍然会把一个学到的 $2\times2$ 图案画到每个上采样（upsampling）出的像素上；只有训练才能让这四个抽头在需要平滑输出的地方取得一致。$k = 2, s = 2$ 避开的只是不均匀重叠那一部分。
# Odena、Dumoulin 和 Olah（"Deconvolution and Checkerboard Artifacts"，*Distill*，2016）提出的办法是把两件事分开：**先缩放，再卷积**
# （最近邻或双线性上采样，后接一次普通卷积）。这样一来，无论卷积核是什么，常数图像离开边界之后都保持常数（第四幅图：最近邻 $\times 2$，再用随机卷积核做 $3\times3$ `same` 卷积，它的零填充只影响最外面一圈）。

# %%
ones = np.ones((1, 6, 6, 1))
w_random = np.array([[3.5, 1.0], [0.5, 2.5]]).reshape(2, 2, 1, 1)   # any non-constant 2x2 kernel (a learned one)
w_resize = rng.uniform(0.0, 0.5, (3, 3, 1, 1))                        # any 3x3 kernel
panels = [("k=3, s=2, all-ones kernel:\nuneven overlap (checkerboard)",
           ops.conv2d_transpose(ones, np.ones((3, 3, 1, 1)), strides=2, padding="valid")[0]),
          ("k=2, s=2 (U-Net), all-ones kernel:\nno overlap, flat",
           ops.conv2d_transpose(ones, np.ones((2, 2, 1, 1)), strides=2, padding="valid")[0]),
          ("k=2, s=2 (U-Net), non-constant kernel:\na period-2 tiling of the kernel",
           ops.conv2d_transpose(ones, w_random, strides=2, padding="valid")[0]),
          ("nearest-neighbour x2, then a 3x3 conv:\nflat away from the border",
           ops.conv2d(ones.repeat(2, axis=1).repeat(2, axis=2), w_resize, padding="same")[0])]
fig, ax = plt.subplots(1, 4, figsize=(12, 3.6), dpi=100, layout="constrained")
for a, (title, y) in zip(ax, panels):
    im = a.imshow(y[0, :, :, 0], cmap="viridis", vmin=0, vmax=4)
    a.set_title(title, fontsize=9); a.set_xlabel("output column (pixels)")
    a.xaxis.set_major_locator(plt.MaxNLocator(integer=True)); a.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax[0].set_ylabel("output row (pixels)")
fig.colorbar(im, ax=ax, shrink=0.8, label="output value (input: all ones)")
plt.show()

for title, y in panels:
    interior = y[0, 4:8, 4:8, 0]                                   # away from every border
    print(f"{title.splitlines()[0]:<40} {len(np.unique(interior.round(9)))} distinct value(s) in the interior")
k4 = ops.conv2d_transpose(ones, np.ones((4, 4, 1, 1)), strides=2, padding="valid")[0][0, 4:-4, 4:-4, 0]
print("k=4, s=2, all-ones kernel: stamps per interior pixel:", sorted(set(k4.astype(int).ravel().tolist())))
print("k=2, s=2, non-constant kernel: the tile is the kernel itself:",
      bool(np.allclose(panels[2][1][0, :2, :2, 0], w_random[:, :, 0, 0])))

# %% [markdown] translates="a50c0fd40f58"
# **练习 3.** 写出 `overlap_counts(n, k, s)`：对长度为 `n` 的输入、长度为 `k` 的卷积核、步幅为 `s` 的一维转置卷积，返回长度为
# `(n - 1)*s + k` 的整数数组，统计覆盖每个输出像素的卷积核印记个数（在完整画布上，裁剪之前）。试试 `overlap_counts(4, 3, 2)`：一维的棋盘。

# %%
from unet_scratch.exercises.ch03 import check_overlap_counts

def overlap_counts(n, k, s):
    """n: input length, k: kernel length, s: stride. Returns an int array of length (n - 1)*s + k."""
    ### BEGIN SOLUTION
    counts = np.zeros((n - 1) * s + k, dtype=int)
    for i in range(n):
        counts[i * s:i * s + k] += 1
    return counts
    ### END SOLUTION

check_overlap_counts(overlap_counts);

# %% [markdown] translates="152e15f29291"
# ## 本章练习
#
# | # | 函数 | 写的是 | 检查能认出的错误 |
# |---|---|---|---|
# | 1 | `conv_transpose_scatter` | 前向，循环 | 翻转了卷积核、把 Keras 的 $(K_H, K_W, F_{\text{out}}, C_{\text{in}})$ 布局读成 $(\dots, C_{\text{in}}, F_{\text{out}})$、忽略步幅、`same` 的裁剪从错误的一侧开始、忘了偏置 |
# | 2 | `conv_transpose_backward` | 反向，循环 | 把 $dx$ 算成 $dy$ 的转置卷积而不是卷积、求 $dx$ 时翻转了卷积核、$dw$ 输入输出通道对调、忘了 $db$ 或没有对批次求和 |
# | 3 | `overlap_counts` | 数印记 | 忽略步幅、画布长度取 $n s$、印记宽 $s$ 而不是 $k$ |
