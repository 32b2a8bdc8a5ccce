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

# %% [markdown] translates="d7f00ad714ed"
# # 01 · 卷积：前向、反向，以及 Keras 真正算的是什么
#
# **要你实现的：** U-Net 一层里的二维卷积（convolution），前向传播（forward pass）和反向传播（backpropagation）都要写，按 CS231n 的教法：先用循环写，再写快的版本。
# 1. `conv2d_loop`：用循环实现前向传播，支持 `valid` 和 `same` 填充（padding）以及步幅（stride）；
# 2. `im2col`：把输入的每个窗口变成矩阵的一行；
# 3. `conv2d_gemm`：前向传播 = `im2col` + **一次**矩阵乘法；
# 4. `conv2d_backward_loop`：用循环求梯度 $dx, dw, db$；
# 5. `col2im`：`im2col` 的伴随（adjoint），把每一行加回它所在的窗口；
# 6. `conv2d_backward_gemm`：用两次矩阵乘法和 `col2im` 求梯度；
# 7. `receptive_field`：U-Net 编码器的一个输出像素能"看"多远，即感受野（receptive field）。
#
# **要你验证的：** 每个函数都与本库的参考实现（`ops.conv2d`、`ops.im2col`、`ops.col2im`、`ops.conv2d_backward`）对照；你的答案犯了典型错误时，检查会说出错误的名字。本库自身则与 `keras.layers.Conv2D`（float32，`rtol = atol = 1e-5`）、
# TensorFlow 的 `tf.GradientTape`（float64）以及中心差分（central differences，`unet_scratch.gradcheck`）对照。
#
# 顺带你会弄明白：为什么深度学习里的"卷积"其实是*互相关*（cross-correlation）、输出尺寸公式、TensorFlow 的 `same`
# 填充（多出的那个像素放在下方/右侧），以及步幅。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import inspect
import time

import numpy as np
import matplotlib.pyplot as plt
from scipy import signal

from unet_scratch import data
from unet_scratch import ops
from unet_scratch.ops.conv import conv2d_input_gradient, pad_input
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras

tf = import_tensorflow(); keras = import_keras()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown] translates="39fdca8977f7"
# ## 1. 卷积还是互相关？
#
# 在信号处理中，图像 $x$ 与卷积核（kernel）$w$ 的二维**卷积**要把卷积核翻转：
# $$(x * w)_{ij} = \sum_{a}\sum_{q} x_{i-a,\,j-q}\, w_{aq}.$$
# 而所有深度学习框架称为卷积的运算，其实是不翻转的**互相关**：
# $$(x \star w)_{ij} = \sum_{a=0}^{K_H-1}\sum_{q=0}^{K_W-1} x_{i+a,\,j+q}\, w_{aq}.$$
# 两者只差卷积核的一次 180° 旋转：$x \star w = x * \mathrm{rot}_{180}(w)$。对于学出来的卷积核，这个差别无关紧要（网络会直接学出翻转后的核），但一旦要与框架对照，或在不同的库之间复制权重，它就很要紧了。加上通道（channel）、批次（batch）、偏置（bias）和步幅 $s$ 之后，Keras 的 `Conv2D` 层计算的是（布局为 NHWC，卷积核为 HWIO）：
# $$y_{n,i,j,f} = b_f + \sum_{a,q,c} x^{\text{pad}}_{n,\; i s + a,\; j s + q,\; c}\; w_{a,q,c,f},$$
# 其中 $x$：$(N, H, W, C)$，$w$：$(K_H, K_W, C, F)$，$b$：$(F,)$，$y$：$(N, OH, OW, F)$。

# %%
x1 = rng.standard_normal((6, 7))
w1 = rng.standard_normal((3, 3))
y_pkg = ops.conv2d(x1[None, :, :, None], w1[:, :, None, None])[0][0, :, :, 0]

print("package conv2d == scipy correlate2d (no flip):          ",
      np.allclose(y_pkg, signal.correlate2d(x1, w1, mode="valid")))
print("package conv2d == scipy convolve2d with the kernel flipped:",
      np.allclose(y_pkg, signal.convolve2d(x1, w1[::-1, ::-1], mode="valid")))
print("package conv2d == scipy convolve2d (true convolution):     ",
      np.allclose(y_pkg, signal.convolve2d(x1, w1, mode="valid")))

# %%
fig, ax = plt.subplots(1, 2, figsize=(6, 2.8), dpi=100)
for a, k, title in [(ax[0], w1, "kernel w (used by Keras as is)"),
                    (ax[1], w1[::-1, ::-1], "rot180(w) (what convolve2d applies)")]:
    a.imshow(k, cmap="viridis")
    for (i, j), v in np.ndenumerate(k):
        a.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=9)
    a.set_title(title, fontsize=9); a.set_xlabel("kernel column q"); a.set_ylabel("kernel row a")
fig.suptitle("A true convolution = cross-correlation with the kernel rotated by 180°", fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown] translates="d7a9418a216c"
# ### 卷积核与它的特征图
#
# 卷积核是一个模板：图像局部越像卷积核，输出就越大。下面的 Sobel 卷积核分别响应竖直和水平的边缘；在 `unet_scratch.data`
# 生成的类电镜膜结构图像上，它们会把膜结构照亮——这正是 U-Net 要学会分割（segmentation）的结构。

# %%
images, masks = data.membranes(1, size=96, seed=0)
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)   # responds to left-to-right increases
w_edges = np.stack([sobel_x, sobel_x.T], axis=-1)[:, :, None, :]         # (3, 3, 1, 2): two filters
maps, _ = ops.conv2d(images, w_edges, padding="same")
print("feature maps shape (N, H, W, F):", maps.shape)

fig, ax = plt.subplots(1, 4, figsize=(10, 2.8), dpi=100)
ax[0].imshow(images[0, :, :, 0], cmap="gray"); ax[0].set_title("input (membranes)")
ax[1].imshow(sobel_x, cmap="viridis"); ax[1].set_title("kernel: Sobel x")
ax[2].imshow(maps[0, :, :, 0], cmap="viridis"); ax[2].set_title("feature map: vertical edges")
ax[3].imshow(np.hypot(maps[0, :, :, 0], maps[0, :, :, 1]), cmap="gray"); ax[3].set_title("edge strength")
for a in ax:
    a.set_xlabel("x (pixels)"); a.set_ylabel("y (pixels)")
ax[1].set_xlabel("kernel column q"); ax[1].set_ylabel("kernel row a")
ax[1].set_xticks(range(3)); ax[1].set_yticks(range(3))
fig.suptitle("One 3x3 kernel, applied everywhere: bright where the image looks like the kernel (edges)")
fig.tight_layout(); plt.show()


# %% [markdown] translates="784912336698"
# ## 2. 输出尺寸、填充与步幅
#
# 沿一个轴，输入长度为 $n$、卷积核长度为 $k$、步幅为 $s$ 时
# $$n_{\text{out}} = \left\lfloor \frac{n - k}{s} \right\rfloor + 1 \quad(\texttt{valid}), \qquad
# n_{\text{out}} = \left\lceil \frac{n}{s} \right\rceil \quad(\texttt{same}).$$
# `valid` 的卷积核只要不越出输入，就可以放在位置 $0, s, 2s, \dots$。对于 `same`，TensorFlow 总共填充
# $p = \max((n_{\text{out}} - 1)s + k - n,\ 0)$ 个像素，前面 $\lfloor p/2\rfloor$ 个，**后面** $\lceil p/2 \rceil$ 个：$p$ 为奇数时（例如步幅为 1 的偶数卷积核），多出的那个像素放在下方/右侧。PyTorch 的 `padding='same'`（只允许步幅为 1）也把它放在后面：在 $(0, 0)$ 处的单位脉冲上用 $2\times2$ 卷积核，两个框架都在 $(0, 0)$ 处给出响应。PyTorch 中常见的写法 `padding=k//2`
# 则是另一回事：它在**两边**各填 $k//2$，对偶数卷积核会使输出比输入**大**一个像素。`ops.conv_output_size` 和
# `ops.padding_amounts` 实现的是 TensorFlow 的规则：

# %%
print(f"{'n':>4} {'k':>2} {'s':>2} {'padding':>8} {'out':>4}  (before, after)")
for n, k, s, p in [(128, 3, 1, "same"), (128, 3, 1, "valid"), (128, 2, 1, "same"), (7, 3, 2, "same"),
                   (8, 4, 2, "same"), (7, 3, 2, "valid"), (572, 3, 1, "valid")]:
    print(f"{n:>4} {k:>2} {s:>2} {p:>8} {ops.conv_output_size(n, k, s, p):>4}  {ops.padding_amounts(n, k, s, p)}")

# %% [markdown] translates="16b3797bd358"
# 单位脉冲测试：$4\times4$ 的图像只在 $(0, 0)$ 处为 1、其余为 0，用全 1 的 $2\times2$ 卷积核：

# %%
impulse = np.zeros((1, 4, 4, 1)); impulse[0, 0, 0, 0] = 1.0
ones_2x2 = np.ones((2, 2, 1, 1))
y_same = ops.conv2d(impulse, ones_2x2, padding="same")[0][0, :, :, 0]
y_half = ops.conv2d(np.pad(impulse, ((0, 0), (1, 1), (1, 1), (0, 0))), ones_2x2)[0][0, :, :, 0]   # k//2 each side
print("'same' (TensorFlow; PyTorch padding='same'):", y_same.shape, "output, nonzero at",
      [tuple(map(int, ij)) for ij in np.argwhere(y_same)])
print("padding=k//2 on both sides (PyTorch padding=1):", y_half.shape, "output, one pixel larger")

# %% [markdown] translates="628b8b41188b"
# ## 3. 用循环实现前向传播
#
# 照字面读第 1 节的公式：对每个输出像素 $(i, j)$，取出形状为 $(K_H, K_W, C)$ 的窗口
# $x^{\text{pad}}[n,\ is : is + K_H,\ js : js + K_W,\ :]$，与每个滤波器（filter）$w[:, :, :, f]$ 逐元素相乘、求和，再加上 $b_f$。
#
# **算例。** $x$ 是 $3\times3$ 的图像 $0, 1, \dots, 8$（逐行排列），$w = \begin{pmatrix}1 & 2\\ 0 &
# -1\end{pmatrix}$，$b = 0.5$，步幅 1，`valid`：输出为 $2 \times 2$，
# $y_{00} = 0\cdot1 + 1\cdot2 + 3\cdot0 + 4\cdot(-1) + 0.5 = -1.5$。用 `same` 时输出为 $3\times3$：两个轴上的填充都是 $(0, 1)$，所以第 2 行和第 2 列会读到一行/一列零，$y_{22} = 8 \cdot 1 + 0.5 = 8.5$。

# %%
x_ex = np.arange(9.0).reshape(1, 3, 3, 1)
w_ex = np.array([[1.0, 2.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
b_ex = np.array([0.5])
print("valid:\n", ops.conv2d(x_ex, w_ex, b_ex)[0][0, :, :, 0])
print("same:\n", ops.conv2d(x_ex, w_ex, b_ex, padding="same")[0][0, :, :, 0])

# %% [markdown] translates="e8c26d685a20"
# **练习 1.** 写出 `conv2d_loop(x, w, b, stride, padding)`：对输出像素做循环，实现 Keras 的 `Conv2D`。`same` 时自己给 `x`
# 做填充，规则见第 2 节（多出的像素放在后面）。提示：`np.tensordot(window, w, axes=3)` 把 $(N, K_H, K_W, C)$ 的窗口与
# $(K_H, K_W, C, F)$ 的卷积核缩并成 $(N, F)$。检查会覆盖 `valid` 和 `same`、步幅 1 和 2、奇数和偶数大小的卷积核。

# %%
from unet_scratch.exercises.ch01 import check_conv2d_loop

def conv2d_loop(x, w, b, stride, padding):
    """Keras Conv2D (cross-correlation, no kernel flip) with loops over the output pixels.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), stride: int (both axes), padding: 'valid' or 'same'.
    Returns y: (N, OH, OW, F).
    """
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))   # extra pixel after
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, f), dtype=np.result_type(x, w))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]     # (N, KH, KW, C)
            y[:, i, j, :] = np.tensordot(window, w, axes=3) + b                         # (N, F)
    return y
    ### END SOLUTION

check_conv2d_loop(conv2d_loop);

# %% [markdown] translates="4770073ff0ee"
# ## 4. im2col：每个窗口变成一行
#
# 循环版本对每个输出像素做一次小矩阵乘法，一共 $OH \cdot OW$ 次，每次都要在 Python 里走一趟。**im2col** 把填充后输入的每个
# $K_H \times K_W \times C$ 窗口复制成矩阵的一行
# $$\mathrm{cols} \in \mathbb{R}^{(N\,OH\,OW) \times (K_H K_W C)},$$
# 行按 $(n, i, j)$ 排列，每一行内部按卷积核内存布局的 $(a, q, c)$ 排列，这样取 $W = $ `w.reshape(KH*KW*C, F)` 就有
# $$Y = \mathrm{cols}\; W + b \in \mathbb{R}^{(N\,OH\,OW) \times F}, \qquad y = Y\text{.reshape}(N, OH, OW, F).$$
# 代价是内存（每个像素最多被复制 $K_H K_W$ 次）；好处是一次 GEMM（通用矩阵乘法）就能跑出 BLAS 库的速度。**算例：**
# $4\times4$ 的单通道图像配 $3\times3$ 卷积核，$OH = OW = 2$，所以 `cols` 是 $(1 \cdot 2 \cdot 2) \times (3 \cdot 3 \cdot 1) = 4 \times 9$；第 0 行是左上角的窗口逐行读出的结果 `0 1 2 4 5 6 8 9 10`：

# %%
x4 = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
cols = ops.im2col(x4, 3, 3, 1, 1)
print("x: (1, 4, 4, 1) -> cols:", cols.shape, "= (N*OH*OW, KH*KW*C); row 0:", cols[0].astype(int))

fig, ax = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100, gridspec_kw={"width_ratios": [1, 2]})
ax[0].imshow(x4[0, :, :, 0], cmap="viridis")
for (i, j), v in np.ndenumerate(x4[0, :, :, 0]):
    ax[0].text(j, i, int(v), ha="center", va="center", color="w")
ax[0].add_patch(plt.Rectangle((-0.45, -0.45), 2.9, 2.9, fill=False, ec="red", lw=2))
ax[0].add_patch(plt.Rectangle((0.55, 0.55), 2.9, 2.9, fill=False, ec="orange", lw=2, ls="--"))
ax[0].set_title("x (4x4): windows 0 (red) and 3 (orange)", fontsize=9)
ax[0].set_xlabel("column (pixels)"); ax[0].set_ylabel("row (pixels)")
ax[0].set_xticks(range(4)); ax[0].set_yticks(range(4))
ax[1].imshow(cols, cmap="viridis", aspect="auto")
for (i, j), v in np.ndenumerate(cols):
    ax[1].text(j, i, int(v), ha="center", va="center", color="w")
ax[1].set_xlabel("window element (a, q) of the 3x3 kernel, row-major")
ax[1].set_ylabel("row of cols = output pixel (i, j)")
ax[1].set_xticks(range(9), [f"({a},{q})" for a in range(3) for q in range(3)])
ax[1].set_yticks(range(4), [f"({i},{j})" for i in range(2) for j in range(2)])
ax[1].set_title("im2col: one row per window (pixel 5 is in all 4 rows)", fontsize=9)
fig.tight_layout(); plt.show()

# %% [markdown] translates="6ef7046c9f46"
# **练习 2.** 对输出像素做循环，写出 `im2col(x_pad, kh, kw, s)`：`x_pad` 已经填充好，窗口 $(i, j)$ 从 $(is, js)$ 开始，
# $OH = (H_p - K_H) // s + 1$。窗口 `x_pad[:, i*s:i*s+kh, j*s:j*s+kw, :]` 的形状是 $(N, K_H, K_W, C)$；`.reshape(N, -1)`
# 会按 $(a, q, c)$ 的顺序把每个窗口展平。

# %%
from unet_scratch.exercises.ch01 import check_im2col

def im2col(x_pad, kh, kw, s):
    """Every KH x KW window of x_pad as one row.

    x_pad: (N, Hp, Wp, C), already padded; windows start at (i*s, j*s).
    Returns cols: (N*OH*OW, KH*KW*C), OH = (Hp - KH) // s + 1, rows ordered (n, i, j), each row (a, q, c).
    """
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad.shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    cols = np.empty((n, oh, ow, kh * kw * c), dtype=x_pad.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, i, j, :] = x_pad[:, i * s:i * s + kh, j * s:j * s + kw, :].reshape(n, -1)
    return cols.reshape(n * oh * ow, kh * kw * c)
    ### END SOLUTION

check_im2col(im2col);

# %% [markdown] translates="563c6028c6ee"
# 本库的 `ops.im2col` 完全没有 Python 循环：NumPy 的 `sliding_window_view` 以 `x_pad` 的*视图*（不复制）给出所有窗口，下标为
# `[n, i, j, c, a, q]`；切片取每隔 $s$ 个的窗口，一次转置把各轴排成 $(n, i, j, a, q, c)$，真正的复制发生在最后的 `reshape`：

# %%
print(inspect.getsource(ops.im2col))

# %% [markdown] translates="c125673fc827"
# **练习 3.** 写出 `conv2d_gemm(x, w, b, stride, padding)`：与练习 1 相同的卷积，改成先用你的 `im2col`，再与
# `w.reshape(KH*KW*C, F)` 做**一次**矩阵乘法，加上 `b`，最后 reshape 成 $(N, OH, OW, F)$。填充用 `pad_input`（上面已导入）：
# `x_pad, _ = pad_input(x, (KH, KW), (stride, stride), padding)` 按 TensorFlow 的规则填充，也就是你在练习 1 中写的那条规则。

# %%
from unet_scratch.exercises.ch01 import check_conv2d_gemm

def conv2d_gemm(x, w, b, stride, padding):
    """Keras Conv2D as im2col + ONE matrix product.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), stride: int, padding: 'valid' or 'same'.
    Returns y: (N, OH, OW, F).
    """
    ### BEGIN SOLUTION
    kh, kw, c, f = w.shape
    x_pad, _ = pad_input(x, (kh, kw), (stride, stride), padding)
    oh, ow = (x_pad.shape[1] - kh) // stride + 1, (x_pad.shape[2] - kw) // stride + 1
    y = im2col(x_pad, kh, kw, stride) @ w.reshape(kh * kw * c, f) + b       # (N*OH*OW, F): one GEMM
    return y.reshape(x.shape[0], oh, ow, f)
    ### END SOLUTION

check_conv2d_gemm(conv2d_gemm);

# %% [markdown] translates="0fd668462202"
# 算术相同，速度不同。你的循环版本对每个输出像素已经交给 NumPy 一次 $(N, K_H K_W C) \times (K_H K_W C, F)$ 的乘法；GEMM 版本则对全部
# $N \cdot OH \cdot OW$ 个窗口只做一次乘法，于是 Python 的开销只付一次，而不是 $OH \cdot OW$ 次。在一个类似 U-Net 的小层上（$32\times32$ 像素，输入输出各 16 个通道，批大小（batch size）为 4；耗时因机器而异，测试不比对这个单元格的输出）：

# %%
# NBVAL_IGNORE_OUTPUT
x_t = rng.standard_normal((4, 32, 32, 16)).astype(np.float32)
w_t = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
b_t = np.zeros(16, np.float32)
for name, fn in [("conv2d_loop", conv2d_loop), ("conv2d_gemm", conv2d_gemm)]:
    start = time.perf_counter()
    fn(x_t, w_t, b_t, 1, "same")
    print(f"{name}: {1e3 * (time.perf_counter() - start):.1f} ms")
print("same result:", np.allclose(conv2d_loop(x_t, w_t, b_t, 1, "same"), conv2d_gemm(x_t, w_t, b_t, 1, "same"),
                                  rtol=1e-4, atol=1e-4))

# %% [markdown] translates="d91b10f00389"
# ### 与 `keras.layers.Conv2D` 对照验证
#
# 本库的 `ops.conv2d` 就是这个 im2col + GEMM（上面的检查拿你的函数与它比较）。建一个 Keras 层，把 `w` 和 `b` 复制进去，在 float32
# 下用 `rtol = atol = 1e-5`（本项目的前向容差）把 `ops.conv2d` 和你的 `conv2d_gemm` 都与它比较。测试用例包括 TensorFlow
# 不对称的 `same` 填充：$2\times2$ 卷积核，以及步幅为 2 的 $4 \times 4$ 卷积核。

# %%
def keras_conv(x, w, b, strides, padding):
    layer = keras.layers.Conv2D(w.shape[3], w.shape[:2], strides=strides, padding=padding)
    layer.build(x.shape)
    layer.set_weights([w, b])
    return np.asarray(layer(x))

ok = {"ops": True, "yours": True}
for x_shape, k, strides, padding in [((2, 9, 9, 3), 3, 1, "same"), ((2, 9, 9, 3), 3, 1, "valid"),
                                     ((1, 8, 8, 2), 2, 1, "same"), ((1, 9, 7, 2), 3, 2, "same"),
                                     ((1, 10, 10, 2), 4, 2, "same"), ((1, 11, 10, 2), 3, 2, "valid"),
                                     ((1, 16, 16, 1), 3, 1, "same")]:
    xf = rng.standard_normal(x_shape).astype(np.float32)
    wf = rng.standard_normal((k, k, x_shape[3], 5)).astype(np.float32)
    bf = rng.standard_normal(5).astype(np.float32)
    theirs = keras_conv(xf, wf, bf, strides, padding)
    for name, ours in [("ops", ops.conv2d(xf, wf, bf, strides, padding)[0]),
                       ("yours", conv2d_gemm(xf, wf, bf, strides, padding))]:
        ok[name] &= ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
print("7 configurations, ops.conv2d == keras.layers.Conv2D (rtol = atol = 1e-5):", ok["ops"])
print("7 configurations, your conv2d_gemm == keras.layers.Conv2D:                ", ok["yours"])

# %% [markdown] translates="ce0a2aed1219"
# ## 5. 反向传播
#
# 取单通道、步幅 1、`valid` 填充：$y_{ij} = b + \sum_{a,q} x_{i+a,\,j+q}\,w_{aq}$，并记 $dy_{ij} = \partial L / \partial y_{ij}$。每个输出对 $b$ 的系数是 1，通过 $x_{i+a,j+q}$ 依赖 $w_{aq}$，通过 $w_{u-i,\,v-j}$ 依赖 $x_{uv}$。由链式法则（chain rule）得
#
# $$\frac{\partial L}{\partial b} = \sum_{i,j} dy_{ij}, \qquad
# \frac{\partial L}{\partial w_{aq}} = \sum_{i,j} dy_{ij}\; x_{i+a,\,j+q} = (x \star dy)_{aq},$$
#
# $$\frac{\partial L}{\partial x_{uv}} = \sum_{i,j} dy_{ij}\; w_{u-i,\,v-j}
# = \sum_{a,q} dy^{\text{pad}}_{u+a,\,v+q}\; \mathrm{rot}_{180}(w)_{aq}.$$
#
# 所以 $dW$ 是输入与 $dy$ 的互相关，而 $dX$ 是 $dy$（每一边补 $K-1$ 个零）与**旋转 180°** 的卷积核做的**全**互相关，也就是 $dy$
# 与 $w$ 的真正卷积。加上通道、批次、步幅和填充，记账变复杂了，但循环形式依然简单：输出像素 $(n, i, j)$ 读过窗口
# $x^{\text{pad}}[n,\ is : is + K_H,\ js : js + K_W,\ :]$，所以它要送回
# $$dx^{\text{pad}}[n,\ \text{window}] \mathrel{+}= \sum_f dy_{n,i,j,f}\; w[:, :, :, f], \qquad
# dw[:, :, :, f] \mathrel{+}= dy_{n,i,j,f}\; x^{\text{pad}}[n,\ \text{window}], \qquad db_f = \sum_{n,i,j} dy_{n,i,j,f},$$
# 再把 $dx^{\text{pad}}$ 的填充裁掉就得到 $dx$。形状：$dy$：$(N, OH, OW, F)$，$dx$：$(N, H, W, C)$，与 $x$ 相同；$dw$：
# $(K_H, K_W, C, F)$，与 $w$ 相同；$db$：$(F,)$，与 $b$ 相同。
#
# **算例。** 用第 3 节的 $3\times3$ 图像和 $2\times2$ 卷积核（`valid`），$dy$ 全为 1：$db = 4$（四个输出像素）；$dw_{aq}$ 是四个窗口在
# $(a, q)$ 处元素之和（$dw_{00} = 0 + 1 + 3 + 4 = 8$）；中心像素 $x_{11}$ 被四个窗口在卷积核的四个不同位置读到，所以
# $dx_{11} = 1 + 2 + 0 - 1 = 2$：

# %%
y_ex, cache_ex = ops.conv2d(x_ex, w_ex, b_ex)
dx_ex, dw_ex, db_ex = ops.conv2d_backward(np.ones_like(y_ex), cache_ex)
print("db:", db_ex, " dw:", dw_ex[:, :, 0, 0].tolist(), " dx[1, 1]:", dx_ex[0, 1, 1, 0])

# %% [markdown] translates="c4e7478afee5"
# **练习 4.** 对输出像素做循环，按上面的三条更新规则写出 `conv2d_backward_loop(dy, x, w, stride, padding)`。用 `pad_input`
# 做填充，它还会返回裁剪（crop）$dx$ 所需的填充量 `((top, bottom), (left, right))`。提示：`np.tensordot(dy[:, i, j, :], w, axes=([1], [3]))`
# 的形状是 $(N, K_H, K_W, C)$，`np.tensordot(window, dy[:, i, j, :], axes=([0], [0]))` 的形状是 $(K_H, K_W, C, F)$。

# %%
from unet_scratch.exercises.ch01 import check_conv2d_backward_loop

def conv2d_backward_loop(dy, x, w, stride, padding):
    """Gradients of y = conv2d(x, w, b, stride, padding) given dy = dL/dy, with loops.

    dy: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C, F).
    Returns (dx, dw, db): (N, H, W, C), (KH, KW, C, F), (F,).
    """
    ### BEGIN SOLUTION
    kh, kw, _, _ = w.shape
    x_pad, ((top, _), (left, _)) = pad_input(x, (kh, kw), (stride, stride), padding)
    dx_pad, dw = np.zeros(x_pad.shape), np.zeros(w.shape)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dx_pad[:, rows, cols, :] += np.tensordot(dy[:, i, j, :], w, axes=([1], [3]))       # (N, KH, KW, C)
            dw += np.tensordot(x_pad[:, rows, cols, :], dy[:, i, j, :], axes=([0], [0]))    # (KH, KW, C, F)
    dx = dx_pad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dw, dy.sum(axis=(0, 1, 2))
    ### END SOLUTION

check_conv2d_backward_loop(conv2d_backward_loop);

# %% [markdown] translates="27c998c45227"
# ### 用矩阵乘法做反向传播，以及 col2im
#
# 在 im2col 形式下，前向传播是矩阵乘法 $Y = \mathrm{cols}\,W + b$，而矩阵乘法的梯度还是矩阵乘法：
# $$dW = \mathrm{cols}^\top dY \;\; (K_H K_W C \times F), \qquad d\mathrm{cols} = dY\, W^\top \;\;
# (N\,OH\,OW \times K_H K_W C), \qquad db = \textstyle\sum_{\text{rows}} dY,$$
# 其中 $dY$ = `dy.reshape(N*OH*OW, F)`。$dW$ 可以直接 reshape 成 $(K_H, K_W, C, F)$，因为 $\mathrm{cols}^\top$ 的行就是卷积核的
# $(a, q, c)$ 顺序。$d\mathrm{cols}$ 每个*窗口*有一行梯度，但一个像素最多出现在 $K_H K_W$ 个窗口里：**col2im** 把每一行加回它来自的窗口，于是一个像素得到的是所有读过它的窗口的梯度之**和**。col2im 是 im2col 的伴随（即转置），正如下面的算例：`cols` 全为 1 时，
# col2im 数出的是每个像素被多少个窗口读过。

# %%
counts = ops.col2im(np.ones((4, 9), np.float32), (1, 4, 4, 1), 3, 3, 1, 1)
print("col2im of an all-ones cols (4 windows of 3x3 on a 4x4 image): windows per pixel\n",
      counts[0, :, :, 0].astype(int))

# %% [markdown] translates="b85e536bf40e"
# **练习 5.** 对窗口做循环，写出 `col2im(cols, x_pad_shape, kh, kw, s)`：`cols` 的第 $(n, i, j)$ 行 reshape 成 $(K_H, K_W, C)$ 后，
# **加**到 `x_pad[n, i*s:i*s+kh, j*s:j*s+kw, :]` 上。

# %%
from unet_scratch.exercises.ch01 import check_col2im

def col2im(cols, x_pad_shape, kh, kw, s):
    """Adjoint of im2col: add every row of cols back to its window.

    cols: (N*OH*OW, KH*KW*C), rows ordered (n, i, j), each row (a, q, c); x_pad_shape: (N, Hp, Wp, C).
    Returns x_pad: (N, Hp, Wp, C); pixels in several windows receive the sum, pixels in none stay 0.
    """
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    rows = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, dtype=cols.dtype)
    for i in range(oh):
        for j in range(ow):
            x_pad[:, i * s:i * s + kh, j * s:j * s + kw, :] += rows[:, i, j]
    return x_pad
    ### END SOLUTION

check_col2im(col2im);

# %% [markdown] translates="cc3637558719"
# 本库的 `ops.col2im` 不对 $OH \cdot OW$ 个窗口循环，而是对 $K_H K_W$ 个卷积核位置循环：对每个位置 $(a, q)$，一次带步幅的切片就接收了所有窗口在该位置的元素（这里用 `+=` 是安全的，因为在同一个位置上没有两个窗口落在同一个像素上）：

# %%
print(inspect.getsource(ops.col2im))

# %% [markdown] translates="2b439e3ef77f"
# **练习 6.** 写出 `conv2d_backward_gemm(dy, x, w, stride, padding)`：用你的 `im2col`、上面的两次矩阵乘法和你的 `col2im`
# 求出三个梯度，再把 $dx$ 的填充裁掉。

# %%
from unet_scratch.exercises.ch01 import check_conv2d_backward_gemm

def conv2d_backward_gemm(dy, x, w, stride, padding):
    """Gradients of conv2d with matrix products: dW = cols^T dY, dcols = dY W^T, dx = crop(col2im(dcols)).

    dy: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C, F).
    Returns (dx, dw, db): (N, H, W, C), (KH, KW, C, F), (F,).
    """
    ### BEGIN SOLUTION
    kh, kw, c, f = w.shape
    x_pad, ((top, _), (left, _)) = pad_input(x, (kh, kw), (stride, stride), padding)
    d_y = dy.reshape(-1, f)                                                     # (N*OH*OW, F)
    dw = (im2col(x_pad, kh, kw, stride).T @ d_y).reshape(kh, kw, c, f)
    dcols = d_y @ w.reshape(kh * kw * c, f).T                                   # (N*OH*OW, KH*KW*C)
    dx_pad = col2im(dcols, x_pad.shape, kh, kw, stride)
    dx = dx_pad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dw, d_y.sum(axis=0)
    ### END SOLUTION

check_conv2d_backward_gemm(conv2d_backward_gemm);

# %% [markdown] translates="eb972d7f9be8"
# ### 验证：公式、TensorFlow 的梯度与中心差分
#
# `ops.conv2d_backward` 就是这个 GEMM + col2im 版本（上面的检查拿你的函数与它比较）。先用 SciPy 把本节的单通道公式与本库对照：

# %%
x = rng.standard_normal((1, 7, 6, 2))
w = rng.standard_normal((3, 3, 2, 4))
y, cache = ops.conv2d(x, w, np.zeros(4))
dy = rng.standard_normal(y.shape)
dx, dw, db = ops.conv2d_backward(dy, cache)

dx_formula = np.stack([sum(signal.correlate2d(dy[0, :, :, f], w[::-1, ::-1, c, f], mode="full") for f in range(4))
                       for c in range(2)], axis=-1)
dw_formula = np.stack([np.stack([signal.correlate2d(x[0, :, :, c], dy[0, :, :, f], mode="valid") for f in range(4)],
                                axis=-1) for c in range(2)], axis=2)
print("dX == full correlation of dy with rot180(w):", np.allclose(dx[0], dx_formula))
print("dW == correlation of x with dy:             ", np.allclose(dw, dw_formula))
print("db == sum of dy:                            ", np.allclose(db, dy.sum(axis=(0, 1, 2))))

# %% [markdown] translates="614434bec9be"
# 再与 TensorFlow 对照：一个持有相同 `w` 和 `b` 的 float64 `keras.layers.Conv2D`，损失取 $L = \sum y \odot dy$，用
# `tf.GradientTape` 求 $\partial L / \partial x$、$\partial L / \partial w$ 和 $\partial L / \partial b$。本库和你写的反向传播都应与它在舍入误差范围内一致（$\sim 10^{-15}$；下面的阈值是 $10^{-10}$）：

# %%
def tf_conv_gradients(x, w, b, dy, strides, padding):
    layer = keras.layers.Conv2D(w.shape[3], w.shape[:2], strides=strides, padding=padding, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([w, b])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt) * dy)
    return [np.asarray(g) for g in tape.gradient(loss, [xt, *layer.trainable_weights])]   # dx, dw (kernel), db

worst = {"ops": 0.0, "yours": 0.0}
for strides, padding, k in [(1, "valid", 3), (1, "same", 3), (2, "same", 3), (1, "same", 2), (2, "valid", 3)]:
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((k, k, 3, 4))
    b = rng.standard_normal(4)
    y, cache = ops.conv2d(x, w, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    expected = tf_conv_gradients(x, w, b, dy, strides, padding)
    for name, got in [("ops", ops.conv2d_backward(dy, cache)),
                      ("yours", conv2d_backward_gemm(dy, x, w, strides, padding))]:
        for g, e in zip(got, expected):                  # dx, dw, db: largest error relative to the largest value
            worst[name] = max(worst[name], float(np.max(np.abs(g - e)) / np.max(np.abs(e))))
print("5 configurations: ops.conv2d_backward == tf.GradientTape (relative error < 1e-10):", worst["ops"] < 1e-10)
print("5 configurations: your conv2d_backward_gemm == tf.GradientTape:                  ", worst["yours"] < 1e-10)

# %% [markdown] translates="bd1657c6c007"
# 最后是中心差分，它完全不需要框架：对 $L = \sum y \odot dy$，在 float64 下把每个解析梯度与
# $\big(L(\theta + h) - L(\theta - h)\big) / 2h$ 比较（`unet_scratch.gradcheck`），要求相对误差（relative error）
# $\lVert a - b \rVert / (\lVert a \rVert + \lVert b \rVert)$ 小于 $10^{-7}$。这就是梯度检验（gradient check）。

# %%
all_ok = True
for strides, padding in [(1, "valid"), (1, "same"), (2, "same"), (2, "valid")]:
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((3, 3, 3, 2))
    b = rng.standard_normal(2)
    y, cache = ops.conv2d(x, w, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    forward = lambda _: ops.conv2d(x, w, b, strides, padding)[0]
    errors = {name: rel_error(analytic, numeric_gradient(forward, param, dy))
              for name, analytic, param in [("dx", dx, x), ("dw", dw, w), ("db", db, b)]}
    ok = all(e < 1e-7 for e in errors.values())
    all_ok &= ok
    print(f"strides {strides}, {padding:>5}: dx, dw, db relative errors all below 1e-7:", ok)
print("backward pass verified:", all_ok)

# %% [markdown] translates="71321219b4cc"
# ## 6. 感受野：一个输出像素能看多远
#
# 一次 $3\times3$ 卷积让每个输出像素看到 $3\times3$ 的区域；再叠一层就能看到 $5\times5$。池化（pooling，或任何步幅为 $s$ 的层）把相邻像素之间的间距（"jump"）乘以 $s$，所以之后每一层都让感受野长得更快。取 $r_0 = 1$、$j_0 = 1$，各层为 $(k_\ell, s_\ell)$：
# $$r_\ell = r_{\ell-1} + (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1}\, s_\ell.$$
# **算例：** 两次 $3\times3$ 卷积后接一次 $2\times2$ 池化：$r = 1 \to 3 \to 5 \to 5 + 1 \cdot 1 = 6$，间距变为 2，所以再来一次
# $3\times3$ 卷积会增加 $2 \cdot 2 = 4$（得 10）。对 U-Net 的编码器（两次 $3\times3$ 卷积接一次 $2\times2$ 池化，重复四次，最后是瓶颈层（bottleneck））：

# %%
layers = []
for level in range(1, 5):
    layers += [(f"enc{level}_conv1", 3, 1), (f"enc{level}_conv2", 3, 1), (f"pool{level}", 2, 2)]
layers += [("bottleneck_conv1", 3, 1), ("bottleneck_conv2", 3, 1)]
r, jump, fields = 1, 1, []
for _, k, s in layers:
    r, jump = r + (k - 1) * jump, jump * s
    fields.append(r)
print("receptive field at the bottleneck:", fields[-1], "x", fields[-1], "pixels")

fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
ax.plot(range(1, len(layers) + 1), fields, "o-", color=plt.cm.viridis(0.3))
for i, (name, k, s) in enumerate(layers):
    if s == 2:
        ax.axvline(i + 1, color="gray", ls=":", lw=1)
ax.set_xticks(range(1, len(layers) + 1))
ax.set_xticklabels([n for n, _, _ in layers], rotation=60, ha="right", fontsize=7)
ax.set_xlabel("layer of the U-Net encoder (dotted: 2x2 max-pool)"); ax.set_ylabel("receptive field (pixels)")
ax.set_title("Each pooling doubles how fast the receptive field grows: 140 px at the bottleneck")
fig.tight_layout(); plt.show()

# %% [markdown] translates="970ceb7289b9"
# 感受野也可以用反向传播*测量*出来：从一个输出像素往输入送回值为 1 的梯度，看哪些输入像素收到了东西。最大池化（max-pooling）只把梯度交给窗口里的一个最大值（第 02 章），所以在这次测量中，每个池化都换成一个步幅为 2 的全 1 $2\times2$ 卷积，它读取的窗口完全相同；所有卷积核都取全
# 1，梯度就不会相互抵消。

# %%
shapes = [(1, 188, 188, 1)]                                   # a valid-padding tile, large enough
for _, k, s in layers:
    shapes.append((1, ops.conv_output_size(shapes[-1][1], k, s, "valid"),
                   ops.conv_output_size(shapes[-1][2], k, s, "valid"), 1))
g = np.zeros(shapes[-1]); g[0, shapes[-1][1] // 2, shapes[-1][2] // 2, 0] = 1.0
for (_, k, s), x_shape in zip(reversed(layers), reversed(shapes[:-1])):
    g = conv2d_input_gradient(g, np.ones((k, k, 1, 1)), x_shape, s, "valid")
rows, cols_ = np.nonzero(g[0, :, :, 0])
print("measured receptive field:", rows.max() - rows.min() + 1, "x", cols_.max() - cols_.min() + 1,
      "| formula:", fields[-1], "| agree:", rows.max() - rows.min() + 1 == fields[-1])

# %% [markdown] translates="1b5be6ba4c31"
# **练习 7.** 写出 `receptive_field(layers)`：一组层 `[(kernel_size, stride), ...]`（第一层在前）的一个输出像素沿一个轴的感受野（像素数；空的层列表为 1）。

# %%
from unet_scratch.exercises.ch01 import check_receptive_field

def receptive_field(layers):
    """layers: [(kernel_size, stride), ...], first layer first. Returns the receptive field in pixels."""
    ### BEGIN SOLUTION
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r
    ### END SOLUTION

check_receptive_field(receptive_field);

# %% [markdown] translates="24b0aab44e30"
# ## 本章练习
#
# | # | 函数 | 写的是 | 检查能认出的错误 |
# |---|---|---|---|
# | 1 | `conv2d_loop` | 前向，循环 | 翻转了卷积核（真正的卷积）、忘了偏置、输出少一行一列、`same` 多出的像素放在前面、两边各填 `padding=k//2` |
# | 2 | `im2col` | 前向辅助，循环 | 行按通道优先 $(c, a, q)$ 或 $(q, a, c)$ 排列、窗口按列优先排列、忽略步幅 |
# | 3 | `conv2d_gemm` | 前向，一次 GEMM | 卷积核矩阵用 `w.reshape(F, -1).T` 得到或按通道优先展平、忘了偏置、翻转了卷积核、`same` 的填充分法 |
# | 4 | `conv2d_backward_loop` | 反向，循环 | 求 $dx$ 时翻转了卷积核、$dx$ 没有裁剪、$db$ 没有对 $N$ 求和（或没有对 $H, W$ 求和）、$dw$ 只来自最后一张图 |
# | 5 | `col2im` | 反向辅助，循环 | 重叠部分被覆盖而不是相加、按通道优先读取行、忽略步幅 |
# | 6 | `conv2d_backward_gemm` | 反向，GEMM + col2im | 把 $dW$ 算成 $dY^\top\mathrm{cols}$ 后不转置就 reshape、col2im 覆盖重叠部分、$dx$ 没有裁剪、$db$ 没有求和 |
# | 7 | `receptive_field` | 尺寸算术 | 从 $r = 0$ 开始、忽略步幅、把一层的步幅用在它自己的卷积核上 |
