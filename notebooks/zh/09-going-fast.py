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

# %% [markdown] translates="aa927017f24e"
# # 09 · 跑得快：Numba 和 CuPy 后端，以及与 TensorFlow 的速度对比
#
# **要你实现的：** 亲手写一个分块 im2col 卷积（convolution）；用 Winograd 的 $F(2\times2, 3\times3)$ 把卷积写成 16 次矩阵乘法；一个小 Numba 内核（用 `prange` 的 $2 \times 2$ 最大池化（max-pooling））；一个融合了偏置（bias）和 ReLU 的内核；以及告诉你卷积最快*能*有多快的 FLOP 计数。**要你验证的：**
# 1. Numba 后端（backend）对每个运算都给出与 NumPy 参考实现相同的数值（float32，$\mathrm{rtol} = \mathrm{atol} = 10^{-5}$），im2col 路径**和** Winograd 路径都是，整个 U-Net 的前向传播（forward pass）**和**反向传播（backpropagation）也是；
# 2. 各后端与 TensorFlow 比起来如何：现场跑一个小规模的基准测试，再看仓库中已提交的全尺寸结果（按模型和按层，并与本机实测的矩阵乘法峰值对照）。
#
# 层从来不知道运行的是哪个内核：由一个开关 `unet_scratch.backend` 来选。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import inspect
import json

import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet, bench, ops
from unet_scratch.backend import available_backends, get_backend, set_backend, use_backend
from unet_scratch.keras_ref import import_tensorflow, import_keras
from unet_scratch.resources import repo_path
tf = import_tensorflow(); keras = import_keras()
tf.get_logger().setLevel("ERROR")          # no retracing notes from the benchmark's tf.functions

rng = np.random.default_rng(0)
keras.utils.set_random_seed(0)

# %% [markdown] translates="9cbf1c432e26"
# ## 1. 三个后端，一个开关
#
# | 后端 | 运算所在的位置 | 需要什么 |
# |---|---|---|
# | `"numpy"` | `unet_scratch/ops/*.py`：第 01-05 章中易读的参考实现 | 什么都不需要 |
# | `"numba"` | `unet_scratch/kernels/numba_ops.py`（以及 `numba_conv.py`、`numba_loops.py`） | `pip install -e '.[numba]'` |
# | `"cupy"` | `unet_scratch/kernels/cupy_ops.py`（以及 `xp_ops.py`） | NVIDIA GPU、CUDA 12、`pip install -e '.[gpu]'` |
#
# 每个后端都提供**同名、同签名的函数**，例如 `conv2d(x, w, b, strides, padding) -> (y, cache)` 和 `conv2d_backward(dy, cache) -> (dx, dw, db)`。层在执行前向传播时向 `backend.ops()` 要当前的命名空间，并把它留着给对应的反向传播用。`set_backend(name)` 永久切换，`with use_backend(name):` 只对一个代码块切换。选用哪个后端，是本库**唯一**的全局状态。

# %%
backends = available_backends()            # which backends import on this machine
print("numpy backend present:", "numpy" in backends)
print("numba backend present:", "numba" in backends)
print("current backend:", get_backend())
with use_backend("numba"):
    print("inside the block:", get_backend(), "->", us.backend.ops().__name__)
print("after the block: ", get_backend())


# %% [markdown] translates="12bff30f498f"
# **准备：预热 Numba。** Numba 在一个内核第一次以新的参数类型组合被调用时编译它，这要花几秒钟。在默认（串行）模式下，本库的内核用 `cache=True` 编译，机器码存在源文件旁边（`__pycache__/*.nbi, *.nbc`），之后的进程只需加载。设置 `UNET_SCRATCH_NUMBA_PARALLEL=1` 时缓存是关闭的（`kernels/numba_loops.py` 中的 `cache=not PARALLEL`）：Numba 的缓存索引不记录 `parallel` 标志，共用一个缓存会把一种模式的机器码交给另一种模式，所以并行模式在每个进程中都重新编译。这个单元格把每个内核在 float32 和 float64 下各调用一次，免得编译时间混进下面的计时。

# %%
def warm_up():
    for dtype in ("float32", "float64"):
        m = UNet(input_shape=(16, 16, 1), base_filters=2, depth=2, seed=0, dtype=dtype)
        xw = np.random.default_rng(0).random((1, 16, 16, 1)).astype(dtype)
        with use_backend("numba"):
            y = m.forward(xw, training=True)
            m.backward(np.ones_like(y))
            nb = us.backend.ops()
            for s in (1, 2):                         # the col2im and the strided paths
                yc, c = nb.conv2d(xw, np.ones((3, 3, 1, 2), dtype), None, s, "same")
                nb.conv2d_backward(yc, c)

warm_up()


# %% [markdown] translates="f4f9691aac15"
# ## 2. 每个内核做什么
#
# | 文件 | 里面有什么 |
# |---|---|
# | `kernels/numba_ops.py` | Numba 后端：与参考实现同名、同签名；选择快速路径，遇到其他 dtype（float16）时退回参考实现 |
# | `kernels/numba_conv.py` | **分块 im2col + BLAS GEMM** 形式的卷积：一块输出行被收集到一个约 8 MB、反复使用的缓冲区里，直接乘进 $y$ 中对应的切片（`np.matmul(..., out=...)`）；当 $C > F$ 时，步幅（stride）为 1 的卷积的输入梯度写成与翻转卷积核（kernel）的卷积 |
# | `kernels/numba_winograd.py` | 至少 16 个通道（channel）、图像至少 32 x 32 的 3x3 步幅 1 卷积，用 **Winograd 的 $F(2\times2, 3\times3)$**：每个 2 x 2 输出块只要 16 次乘法，而不是 36 次，写成 16 次 GEMM（第 3b 节）；$C \le F$ 时输入梯度也用它 |
# | `kernels/numba_direct.py`、`numba_upconv.py`、`numba_narrow.py`、`numba_simd.py` | 权重少的层（$C \cdot F \le 8192$，$F$ 是向量宽度的整数倍）用**直接卷积**：一个按寄存器分块的乘加小块，用 LLVM 向量代码写成（`numba_simd`），不要 im2col 缓冲区，也不用 BLAS，各行分给两个核；2x2/2 的转置卷积（transposed convolution）也这样做；通道很少的特殊情况（第一层的 $C = 1$、$1 \times 1$ 输出层）另有小循环 |
# | `kernels/numba_loops.py` | GEMM 周围那些编译过的、受内存带宽限制的循环：`im2col_rows`（用边界检查代替填充（padding），不复制出填充后的数组）、`col2im_rows`、`add_bias_rows`、最大池化的前向（最大值以及第一个最大值的下标）和反向、ReLU、$2\times2$ 步幅 2 转置卷积的像素重排，以及 Winograd 的输入、卷积核和输出变换 |
# | `kernels/xp_ops.py` | 针对数组模块 `xp`（NumPy 或 CuPy）只写一遍的数组逻辑：用切片实现的 im2col、GEMM、池化（pooling） |
# | `kernels/cupy_ops.py` | GPU 后端：`xp = cupy` 的 `xp_ops`（cuBLAS 的 GEMM），加上池化和 ReLU 的 CUDA 内核 |
#
# 对宽的层，原则是：**每一个计算量大的乘积都交给 BLAS**（这里是 OpenBLAS，GPU 上是 cuBLAS），它本来就跑在接近机器峰值的速度上（小 U-Net 的窄层里，BLAS 每次调用的开销和 im2col 的复制占了大头，所以才有直接卷积）；Numba 只编译它周围的复制、散射和逐元素运算，这些如果交给 NumPy，会变成好几趟带临时数组的运算。这些循环用 `prange`（并行的 range）来写，但默认按单线程编译：在 2 核的机器上，OpenBLAS 每次 GEMM 之后都让一个工作线程保持自旋，并行的 Numba 区域会和它抢 CPU（设置 `UNET_SCRATCH_NUMBA_PARALLEL=1` 可打开多线程）。我们也试过融合内核（把偏置和 ReLU 放进 GEMM 的收尾阶段），测出的差别在噪声范围之内，所以本库让它们保持分开（见 `benchmarks/README.md`）。

# %% [markdown] translates="7e89b524c071"
# ## 3. 分块做 im2col + GEMM
#
# $K_H \times K_W$ 卷积核、步幅为 1 的 'same' 卷积是
#
# $$y_{n,i,j,f} = b_f + \sum_{a=0}^{K_H-1} \sum_{q=0}^{K_W-1} \sum_{c=0}^{C-1} x^{\mathrm{pad}}_{n,\,i+a,\,j+q,\,c}\; w_{a,q,c,f}.$$
#
# im2col 把每个窗口写成矩阵 $X_{\mathrm{col}} \in \mathbb{R}^{(N\,OH\,OW) \times (K_H K_W C)}$ 的一行；取 $W_{\mathrm{mat}} = $ `w.reshape(KH*KW*C, F)`，整个卷积就是**一次矩阵乘法** $Y = X_{\mathrm{col}} W_{\mathrm{mat}}$。代价是：$X_{\mathrm{col}}$ 比 $x$ 大 $K_H K_W = 9$ 倍。所以 Numba 后端每次只收集一块输出行。下面亲手来做：对填充后输入的各个行块调用参考实现的 `im2col`，并与两个后端对照：

# %%
def conv2d_chunked(x, w, b, rows_per_chunk):
    # 'same', stride 1, odd kernel. x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) -> y: (N, H, W, F)
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    x_pad = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    wmat = w.reshape(kh * kw * c, f)
    y = np.empty((n, h, wd, f), dtype=x.dtype)
    for i0 in range(0, h, rows_per_chunk):
        i1 = min(h, i0 + rows_per_chunk)
        cols = ops.im2col(x_pad[:, i0:i1 + kh - 1], kh, kw, 1, 1)       # (N*(i1-i0)*W, KH*KW*C)
        y[:, i0:i1] = (cols @ wmat + b).reshape(n, i1 - i0, wd, f)
    return y

x = rng.standard_normal((2, 24, 20, 5), dtype=np.float32)
w = rng.standard_normal((3, 3, 5, 7), dtype=np.float32)
b = rng.standard_normal(7, dtype=np.float32)
y_ref = ops.conv2d(x, w, b, 1, "same")[0]
with use_backend("numba"):
    y_nb = us.backend.ops().conv2d(x, w, b, 1, "same")[0]
print("chunked by hand == reference:", np.allclose(conv2d_chunked(x, w, b, 5), y_ref, rtol=1e-5, atol=1e-5))
print("Numba backend   == reference:", np.allclose(y_nb, y_ref, rtol=1e-5, atol=1e-5))
full_cols_mb = 256 * 256 * 9 * 64 * 4 / 1e6
print(f"full cols matrix of the seed model's 256x256x64 conv: {full_cols_mb:.0f} MB; a chunk: about 8 MB")

# %% [markdown] translates="f68c111d1ff4"
# ## 3b. 更少的乘法：Winograd 的 $F(2\times2, 3\times3)$
#
# im2col 把上面求和中的每一次乘法都做了。对 $3 \times 3$ 卷积核，还有更省的办法（Winograd 的最小滤波算法，由 Lavin 和 Gray 于 2016 年引入卷积神经网络）。取一个 $2 \times 2$ 输出像素的块：它依赖于输入中一个 $4 \times 4$ 的图像块（patch）$d$，直接计算时每对（输入，输出）通道要 $2 \cdot 2 \cdot 3 \cdot 3 = 36$ 次乘法。用三个固定的矩阵，
#
# $$Y = A^T \left[ (G\,g\,G^T) \odot (B^T d\, B) \right] A$$
#
# 其中
#
# $$B^T = \begin{pmatrix} 1 & 0 & -1 & 0 \\ 0 & 1 & 1 & 0 \\ 0 & -1 & 1 & 0 \\ 0 & 1 & 0 & -1 \end{pmatrix}, \qquad
# G = \begin{pmatrix} 1 & 0 & 0 \\ \tfrac12 & \tfrac12 & \tfrac12 \\ \tfrac12 & -\tfrac12 & \tfrac12 \\ 0 & 0 & 1 \end{pmatrix},$$
#
# $$A^T = \begin{pmatrix} 1 & 1 & 1 & 0 \\ 0 & 1 & -1 & -1 \end{pmatrix},$$
#
# 同样的四个输出只要 **16** 次乘法（两个 $4 \times 4$ 矩阵的逐元素乘积 $\odot$）：少了 2.25 倍。这些变换只做加、减和除以 2。对输入通道求和后，16 个逐元素乘积变成 16 次矩阵乘法，$4 \times 4$ 网格上的每个位置一次，这些乘法交给 BLAS。一个块、一个通道，与参考实现对照：

# %%
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

d = rng.standard_normal((4, 4))               # a 4 x 4 input patch
g = rng.standard_normal((3, 3))               # a 3 x 3 kernel
U, V = G @ g @ G.T, BT @ d @ BT.T             # both 4 x 4; U is computed once per kernel
Y = AT @ (U * V) @ AT.T                       # 16 multiplies in U * V: the 2 x 2 output tile
direct = ops.conv2d(d[None, :, :, None], g[:, :, None, None], None, 1, "valid")[0][0, :, :, 0]
print("Winograd tile:\n", Y.round(6), "\ndirect 3x3 conv ('valid' on the patch):\n", direct.round(6))
print("equal:", np.allclose(Y, direct, rtol=0, atol=1e-12))

from unet_scratch.kernels import numba_winograd
xw = rng.standard_normal((1, 32, 32, 256), dtype=np.float32)
ww = (rng.standard_normal((3, 3, 256, 128)) * np.sqrt(2 / (9 * 256))).astype(np.float32)
print("the backend picks Winograd for a 32x32x256 -> 128 conv:",
      numba_winograd.use_winograd((3, 3), (1, 1), 256, 128, (32, 32)))
with use_backend("numba"):
    y_w = us.backend.ops().conv2d(xw, ww, None, 1, "same")[0]
y_r = ops.conv2d(xw, ww, None, 1, "same")[0]
print("float32, Winograd vs reference: max |difference| / max |y| below 2e-6:",
      np.abs(y_w - y_r).max() / np.abs(y_r).max() < 2e-6, "| allclose(1e-5):", np.allclose(y_w, y_r, rtol=1e-5, atol=1e-5))

# %% [markdown] translates="0939818356dc"
# 后端在矩阵乘法占主导的地方使用它：至少 16 个输入和输出通道、输出至少 $32 \times 32$、又宽得直接卷积装不下的 3x3 步幅 1 卷积（`numba_winograd.use_winograd`；第一层 $C = 1$，仍用 im2col；小于 $32 \times 32$ 时，变换一个 $3 \times 3 \times 1024 \times 1024$ 卷积核的开销抵得上更小的 GEMM 所省下的时间）。它的舍入误差与 im2col 相差最后几位的几个单位：float32 下相对误差（relative error）约 $10^{-6}$，float64 下约 $10^{-15}$，都在本课程的容差之内。
#
# **练习 1（Winograd：从朴素的块到 16 次矩阵乘法）。** 写出 `winograd_conv3x3(x, w)`：$x$：$(N, H, W, C)$（$H - 2$ 和 $W - 2$ 为偶数）与 $w$：$(3, 3, C, F)$ 的 'valid' $3 \times 3$ 步幅 1 卷积（Keras 的互相关（cross-correlation），不翻转卷积核），得到 $y$：$(N, H - 2, W - 2, F)$，分四步：
#
# 1. 卷积核变换：对每一对通道，$U_{:,:,c,f} = G\, w_{:,:,c,f}\, G^T$：$U$ 是 $(4, 4, C, F)$；
# 2. 输入块：输出块 $(t, u)$ 覆盖输出像素 $2t, 2t+1$ 和 $2u, 2u+1$，读取输入中第 $2t \dots 2t+3$ 行、第 $2u \dots 2u+3$ 列的 $4 \times 4$ 图像块 $d$：相邻的图像块**重叠** 2 个像素。对每个通道做变换 $V = B^T d\, B$，合起来是 $(N, T, U, 4, 4, C)$，其中 $T = (H-2)/2$，$U = (W-2)/2$；
# 3. 乘积：对 $4 \times 4$ 网格上 16 个位置 $(i, j)$ 中的每一个，在通道上做一次矩阵乘法，$M_{\ldots, i, j, :} = V_{\ldots, i, j, :}\, U_{i, j}$（$C \to F$）；
# 4. 输出变换：对每个块做 $Y = A^T M A$，得到 $(N, T, U, 2, 2, F)$，再把各块放回原位：$(N, T, 2, U, 2, F) \to (N, H-2, W-2, F)$。
#
# `np.einsum` 可以把每一步写成一行（第 1 步是 `"ia,abcf,jb->ijcf"`）；对块做循环也可以。算例就是上面那个单块的单元格。检查会在 float64 下与参考实现对照，并能认出典型错误：翻转了卷积核、把 $B$ 和 $B^T$ 弄反了、只用一次 reshape 把各块拼回去。

# %%
from unet_scratch.exercises.ch09 import check_bias_relu_rows, check_conv_flops, check_winograd_conv3x3

def winograd_conv3x3(x, w):
    ### BEGIN SOLUTION
    n, h, wd, c = x.shape
    t, u = (h - 2) // 2, (wd - 2) // 2
    U = np.einsum("ia,abcf,jb->ijcf", G, w, G)                          # (4, 4, C, F)
    rows = 2 * np.arange(t)[:, None] + np.arange(4)                     # (T, 4): overlapping patches
    cols = 2 * np.arange(u)[:, None] + np.arange(4)                     # (U, 4)
    d = x[:, rows[:, None, :, None], cols[None, :, None, :], :]         # (N, T, U, 4, 4, C)
    V = np.einsum("ia,ntuabc,jb->ntuijc", BT, d, BT)                    # B^T d B
    M = np.einsum("ntuijc,ijcf->ntuijf", V, U)                          # 16 GEMMs over the channels
    Y = np.einsum("pi,ntuijf,qj->ntupqf", AT, M, AT)                    # (N, T, U, 2, 2, F)
    return Y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * t, 2 * u, w.shape[3])
    ### END SOLUTION

check_winograd_conv3x3(winograd_conv3x3);

# %% [markdown] translates="cd23e36cce9e"
# ## 4. 一个短小易读的 Numba 内核
#
# Numba 内核就是对 NumPy 数组的普通 Python 嵌套循环，加上 `@njit` 装饰器：Numba 推断类型，把它编译成机器码。下面是本库的加偏置内核，就是课程中附带的样子：

# %%
from unet_scratch.kernels import numba_loops
print(inspect.getsource(numba_loops.add_bias_rows.py_func))

# %% [markdown] translates="ecc2b903d06d"
# 再自己写一个：$2 \times 2$、步幅 2 的最大池化。`prange` 标出各次迭代相互独立的那个循环（每个输出行只由一次迭代写入），这样用 `parallel=True` 编译时，Numba 就可以把它们放到多个线程上运行；这里与本库一样，串行运行。本库的版本（`numba_loops.maxpool_forward`）还为反向传播记下第一个最大值的下标。

# %%
from numba import njit, prange

@njit(cache=True)
def maxpool2x2(x, y):
    # x: (N, H, W, C) with even H, W; y: (N, H//2, W//2, C) is overwritten with each window's maximum
    n_, oh, ow, c = y.shape
    for t in prange(n_ * oh):                  # one output row per iteration
        n, i = t // oh, t % oh
        for j in range(ow):
            for ch in range(c):
                m = x[n, 2 * i, 2 * j, ch]
                for a in range(2):
                    for q in range(2):
                        v = x[n, 2 * i + a, 2 * j + q, ch]
                        if v > m:
                            m = v
                y[n, i, j, ch] = m

xp = rng.standard_normal((2, 8, 6, 3), dtype=np.float32)
yp = np.empty((2, 4, 3, 3), dtype=np.float32)
maxpool2x2(xp, yp)
print("our Numba max-pool == reference maxpool2d:", np.array_equal(yp, ops.maxpool2d(xp, 2)[0]))

# %% [markdown] translates="1c2272346476"
# **练习 2（融合的偏置 + ReLU）。** 写一个 Numba 内核 `bias_relu_rows(y, b)`，逐行把 $y \in \mathbb{R}^{M \times F}$ **原地**改写为 $\max(y + b, 0)$（一趟完成，而不是 `add_bias_rows` 和 `relu_forward` 的两趟）。用 `@njit`，并对行使用 `prange`。算例：一行 $(-1, 0.5)$、$b = (0.5, -1)$ 时变成 $(0, 0)$；$(2, 3)$ 变成 $(2.5, 2)$。检查能认出这些典型错误：先做 ReLU 再加偏置、漏了其中之一、把结果返回而不是写进 $y$。

# %%
@njit(cache=True)
def bias_relu_rows(y, b):
    ### BEGIN SOLUTION
    m, f = y.shape
    for r in prange(m):
        for k in range(f):
            v = y[r, k] + b[k]
            y[r, k] = v if v > 0.0 else 0.0
    ### END SOLUTION

check_bias_relu_rows(bias_relu_rows);


# %% [markdown] translates="22d187eee329"
# ## 5. 验证：Numba 对照 NumPy 参考实现
#
# 每个运算都用 float32 的随机输入，把 Numba 后端与参考实现对照，前向输出和反向传播的每一个输出都要比较，float32 容差相对于每个输出的量级：$\max |a - b| \le 10^{-5} \max(1, \max |b|)$。（逐元素的 $10^{-5} + 10^{-5}|b|$ 单凭舍入就会失败：这里权重梯度的每个元素是 $2 \cdot 32 \cdot 32 = 2048$ 个乘积之和，数值可达 160 左右，换一种相加顺序的后端在接近零的元素上相差约 $10^{-4}$，相对误差只有 $6 \cdot 10^{-7}$。）尺寸的选择让卷积的**三条**路径都会运行：权重少的卷积（$C \cdot F$ 小，$F$ 是向量宽度的整数倍）走直接卷积（`numba_direct.py`，没有 im2col 缓冲区），宽的卷积（$32 \times 32$ 上 $256 \to 128$ 个通道）走 Winograd，4 个滤波器（filter）的 $16 \times 16$ 卷积走 im2col。最后一列写明走的是哪一条。

# %%
from unet_scratch.kernels import numba_direct
from unet_scratch.kernels.numba_winograd import use_winograd

def same(a, b):
    if isinstance(a, tuple):
        return all(same(p, q) for p, q in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and \
        float(np.max(np.abs(a - b))) <= 1e-5 * max(1.0, float(np.max(np.abs(b))))

def conv_path(x, w, stride):
    out = (x.shape[1] // stride, x.shape[2] // stride)
    if numba_direct.use_direct(w.shape[:2], w.shape[2], w.shape[3], out, w.dtype):
        return "direct"
    return "Winograd" if use_winograd(w.shape[:2], (stride, stride), w.shape[2], w.shape[3], out) else "im2col"

r = np.random.default_rng(1)
x8 = r.standard_normal((2, 16, 16, 8), dtype=np.float32)
x16 = r.standard_normal((2, 32, 32, 16), dtype=np.float32)
w16 = r.standard_normal((3, 3, 16, 16), dtype=np.float32) * 0.1
w32 = r.standard_normal((3, 3, 16, 32), dtype=np.float32) * 0.1
x256 = r.standard_normal((1, 32, 32, 256), dtype=np.float32)
w256 = r.standard_normal((3, 3, 256, 128), dtype=np.float32) * 0.02
w84 = r.standard_normal((3, 3, 8, 4), dtype=np.float32) * 0.2
cases = {
    "conv2d 3x3 32x32, 16->16":  ("conv2d", (x16, w16, r.standard_normal(16, dtype=np.float32), 1, "same"),
                                  conv_path(x16, w16, 1)),
    "conv2d 3x3 32x32, 16->32":  ("conv2d", (x16, w32, None, 1, "same"), conv_path(x16, w32, 1)),
    "conv2d 3x3 32x32, 256->128": ("conv2d", (x256, w256, None, 1, "same"), conv_path(x256, w256, 1)),
    "conv2d 3x3 16x16, 8->4":    ("conv2d", (x8, w84, r.standard_normal(4, dtype=np.float32), 1, "same"),
                                  conv_path(x8, w84, 1)),
    "conv2d 3x3 stride 2":       ("conv2d", (x16, w16, None, 2, "valid"), conv_path(x16, w16, 2)),
    "conv2d_transpose 2x2/2":    ("conv2d_transpose", (x8, r.standard_normal((2, 2, 4, 8), dtype=np.float32) * 0.2,
                                                       r.standard_normal(4, dtype=np.float32), 2, "same"), ""),
    "maxpool2d 2x2":             ("maxpool2d", (x16, 2), ""),
    "relu":                      ("relu", (x16,), ""),
}
for label, (name, args, path) in cases.items():
    outs = {}
    for backend_name in ("numpy", "numba"):
        with use_backend(backend_name):
            k = us.backend.ops()
            y, cache = getattr(k, name)(*args)
            dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
            outs[backend_name] = (y, getattr(k, name + "_backward")(dy, cache))
    print(f"{label:<27} forward {same(outs['numba'][0], outs['numpy'][0])}, "
          f"backward {same(outs['numba'][1], outs['numpy'][1])}  {path}")


# %% [markdown] translates="9ec743ee73cd"
# 再看整个 U-Net（深度 3，顶层 16 个滤波器，$64 \times 64$，开着 Dropout，两边用相同的随机种子）：输出、输入梯度和每一个参数梯度。在这个宽度下，每个 $3 \times 3$ 卷积的权重都少到可以走直接卷积；打印出来的一行写明了每个卷积走哪条路径。

# %%
def unet_pass(backend_name):
    model = UNet(input_shape=(64, 64, 1), base_filters=16, depth=3, seed=3)
    xu = np.random.default_rng(4).random((2, 64, 64, 1), dtype=np.float32)
    with use_backend(backend_name):
        y = model.forward(xu, training=True)
        dy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
        dx = model.backward(dy)
    return model, y, dx, {k: v.copy() for k, v in model.grads.items()}

net, y0, dx0, g0 = unet_pass("numpy")
_, y1, dx1, g1 = unet_pass("numba")
convs = [l for l in net.layers if type(l).__name__ == "Conv2D"]
paths = {}
for l in convs:
    xs = np.empty(l.input_shape[1:], np.float32)[None]
    paths.setdefault(conv_path(xs, l.params["kernel"], 1), []).append(l.name)
print(f"paths of the {len(convs)} convolutions:", "; ".join(f"{k} {len(v)}" for k, v in sorted(paths.items())))
print("U-Net output, Numba == NumPy:        ", same(y1, y0))
print("U-Net input gradient, Numba == NumPy:", same(dx1, dx0))
print(f"all {len(g0)} parameter gradients agree:   ", g0.keys() == g1.keys() and all(same(g1[k], g0[k]) for k in g0))
worst = max(np.max(np.abs(g1[k] - g0[k]) / (1e-5 + np.abs(g0[k]))) for k in g0)
print("worst |difference| / (1e-5 + |reference|) below 1:", worst < 1)


# %% [markdown] translates="4e73f2bc8952"
# ## 6. 数 FLOPs：卷积最快*能*有多快？
#
# $C$ 个输入通道的 $K \times K$ 卷积，一个输出值要 $K^2 C$ 次乘加，所以在 $H \times W$ 图像上有 $F$ 个滤波器的步幅 1 'same' 层要
#
# $$\mathrm{FLOPs} = 2 \, H W K^2 C F$$
#
# （一次乘加算 2 个 FLOP）。除以至少要搬运的字节数，$s\,(HWC + K^2CF + HWF)$（$s$ 字节的浮点数），就得到**算术强度**（arithmetic intensity，每字节的 FLOP 数）。算术强度高的层可以跑到处理器的计算峰值；算术强度低的层则在等内存。卷积的算术强度很高；给它喂数据的 im2col 复制几乎没有算术强度，所以本库让这份复制保持很小，并留在缓存里。
#
# **练习 3.** 写出 `conv_flops(h, w, c, f, k)`：一个步幅 1、'same' 的 $k \times k$ 卷积的 FLOPs（批大小（batch size）为 1，不计加偏置），返回 `int`。算例：种子模型的第一层，$256 \times 256$，$C = 1$，$F = 64$，$K = 3$：$2 \cdot 256 \cdot 256 \cdot 9 \cdot 1 \cdot 64 = 75{,}497{,}472$。

# %%
def conv_flops(h, w, c, f, k):
    ### BEGIN SOLUTION
    return 2 * h * w * k * k * c * f
    ### END SOLUTION

check_conv_flops(conv_flops);


# %% [markdown] translates="6e7e74bda221"
# 基准测试用同样的方法数 FLOPs（`bench.forward_gflop`），对原文模型的全部卷积层求和：19 个卷积和 4 个转置卷积（按论文的算法，共 23 个卷积层）；测试检查总数，每张 $256 \times 256$ 图像 96.2 GFLOP。逐层来看（用本库自己的计数，而不是练习里的），通道多的卷积每字节的计算量都很大，远不至于被内存拖慢；只有第一个卷积（$C = 1$）和 $1\times1$ 输出层受内存带宽限制：

# %%
seed = UNet(input_shape=(256, 256, 1), seed=0)
print(f"seed model forward: {bench.forward_gflop(seed):.1f} GFLOP")
specs = [s for s in bench.layer_specs(seed) if s["op"] == "Conv2D"]
labels = [bench.spec_label(s) for s in specs]
intensity = []
for s in specs:
    _, h, w_, c = s["x_shape"]
    k, _, _, f = s["param"]
    intensity.append(bench.spec_gflop(s) * 1e9 / (4 * (h * w_ * c + k * k * c * f + h * w_ * f)))
fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
ax.barh(labels, intensity, color=plt.cm.viridis(0.3))
ax.set_xscale("log"); ax.invert_yaxis()
ax.set_xlabel("arithmetic intensity (FLOP per byte moved, float32, log scale)")
ax.set_title("Wide 3x3 convs: 100+ FLOP per byte (compute-bound); the C = 1 conv and 1x1 head: few", fontsize=10)
ax.tick_params(axis="y", labelsize=7)
fig.tight_layout(); plt.show()

# %% [markdown] translates="009a5dc1ed41"
# ## 7. 与 TensorFlow 的基准测试，现场运行（小尺寸）
#
# `unet_scratch/bench.py` 在同一个进程里，用相同的权重和输入给每个后端计时，各后端逐次轮流调用（numpy、numba、tf、numpy……），调用之间稍作停顿，报告中位数。TensorFlow 运行模型的 Keras 同构网络（`keras_ref.to_keras`），前向和训练步各自用 `tf.function` 编译。完整运行（`python -m unet_scratch bench`）要几分钟；这里在已提交表格中的小模型（128 x 128，顶层 16 个滤波器，批大小 1）上复用它的各个部件，重复 3 次。
#
# 计时取决于机器，也取决于机器上同时在跑的其他东西，所以测试不比较这个单元格的输出（`# NBVAL_IGNORE_OUTPUT`）。在共享的 2 核机器上，现场的数字可能比已提交的数字噪声大得多。

# %%
# NBVAL_IGNORE_OUTPUT
small_model, xs, ts = bench.model_and_data(dict(input_shape=(128, 128, 1), base_filters=16))
calls = {name: bench.scratch_model_calls(small_model, name, xs, ts) for name in ("numpy", "numba")}
calls["tf"] = bench.tf_model_calls(small_model, xs, ts)
gflop = bench.forward_gflop(small_model)
live = {}
for i, part in enumerate(("forward", "train_step")):
    stats = bench.time_round_robin({n: c[i] for n, c in calls.items()}, repeats=3, warmup=1, settle=0.05)
    live[part] = bench.with_ratios(stats, gflop * (1 if i == 0 else 3))
    print(f"{part:<11}" + "  ".join(f"{n} {s['median_s'] * 1e3:6.1f} ms ({s['ratio_to_tf']:.2f}x TF)"
                                   for n, s in live[part].items()))
print(f"float32 GEMM peak here, now: {bench.gemm_peak_gflops(1024):.0f} GFLOP/s")

# %% [markdown] translates="7d3868208c8d"
# ## 8. 已提交的全尺寸结果
#
# `benchmarks/results/bench-full.json` 保存了在课程机器上最近一次完整运行的结果（它的 `meta` 写明了 CPU、核数和每个库的版本；课程的共享 2 核机器每次会话都可能不同，`benchmarks/README.md` 把在 Intel Xeon 和 AMD EPYC 上的运行结果并排列出）。它的结构：`meta`（机器和版本）、`gemm_peak_gflops`（一次 $4096^3$ 的 float32 `np.matmul`）、`models`（按模型、按 `forward` / `train_step` 两种计算、按后端：`median_s`、全部 `times_s`、`gflops`、`ratio_to_tf`）、`layers`（种子模型中每一种不同形状的层，带 `forward` 和 `backward` 的统计）以及 `conv_strategies`。

# %%
results = json.loads(repo_path("benchmarks/results/bench-full.json").read_text())
print("top-level keys:", list(results))
print("machine:", results["meta"]["cpu"], "| cores:", results["meta"]["cores"], "| backends:", results["meta"]["backends"])
m0 = results["models"][0]
print("a model entry:", list(m0), "| per backend:", list(m0["forward"]["numba"]))
peak = results["gemm_peak_gflops"]
print(f"GEMM peak: {peak:.0f} GFLOP/s")
print(f"\n{'model':<26}{'pass':<12}{'numpy/TF':>9}{'numba/TF':>9}")
for m in results["models"]:
    for part in ("forward", "train_step"):
        st = m[part]
        print(f"{m['name'] + ' ' + str(tuple(m['config']['input_shape'])):<26}{part:<12}"
              f"{st['numpy']['ratio_to_tf']:>9.2f}{st['numba']['ratio_to_tf']:>9.2f}")

# %% [markdown] translates="1893e528337a"
# 同一次运行由基准测试写成的 Markdown（`bench-full.md`），其中的整模型表格（先是以毫秒计的时间，然后是相对 TensorFlow 的时间比，最后是 GFLOP/s）：

# %%
from IPython.display import Markdown
report = repo_path("benchmarks/results/bench-full.md").read_text()
whole_model = report.split("## Whole model")[1].split("\n\n")[1]     # the table after the heading
Markdown(whole_model)

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, gridspec_kw=dict(width_ratios=[1, 1.6]))
groups = [(m["name"], part) for m in results["models"] for part in ("forward", "train_step")]
pos = np.arange(len(groups))
for k, (name, colour) in enumerate([("numpy", 0.2), ("numba", 0.6)]):
    ratios = [next(m for m in results["models"] if m["name"] == g)[p][name]["ratio_to_tf"] for g, p in groups]
    ax[0].bar(pos + (k - 0.5) * 0.38, ratios, 0.38, label=name, color=plt.cm.viridis(colour))
ax[0].axhline(1, color="k", lw=1, ls="--", label="TensorFlow")
ax[0].set_xticks(pos, [f"{g}\n{p.replace('_', ' ')}" for g, p in groups], fontsize=8)
ax[0].set_ylabel("time / TensorFlow's time (lower is faster)")
numba_ratios = [m[p]["numba"]["ratio_to_tf"] for m in results["models"] for p in ("forward", "train_step")]
ax[0].set_title(f"Whole model: Numba at {min(numba_ratios):.2f}-{max(numba_ratios):.2f}x TensorFlow's time",
                fontsize=10)
ax[0].legend(fontsize=8)

convs = [l for l in results["layers"] if l["op"] != "MaxPooling2D"]
pos = np.arange(len(convs))
for k, (name, colour) in enumerate([("numba", 0.6), ("tf", 0.9)]):
    ax[1].barh(pos + (k - 0.5) * 0.4, [l["forward"][name]["gflops"] for l in convs], 0.4,
               label=f"{name} forward", color=plt.cm.viridis(colour))
ax[1].axvline(peak, color="k", lw=1, ls="--", label=f"GEMM peak ({peak:.0f})")
ax[1].set_yticks(pos, [l["label"] for l in convs], fontsize=6); ax[1].invert_yaxis()
ax[1].set_xlabel("GFLOP/s (forward, batch 1)")
ax[1].set_title("Per layer, forward (direct-conv FLOPs: Winograd layers can pass the GEMM peak)", fontsize=10)
ax[1].legend(fontsize=7, loc="lower right")
fig.tight_layout(); plt.show()

# %% [markdown] translates="d9ef3145f19a"
# 这张图说明了什么（`benchmarks/README.md` 有完整的解释，并列出了更早的 Intel 运行结果）：
# * 在已提交的这次运行（2 核 AMD EPYC）中，Numba 后端做种子模型的一次前向传播用时是 TensorFlow 的 0.83 倍，一个训练步是 0.67 倍（上一次运行为 0.86 倍和 0.65 倍）；NumPy 参考实现，也就是各章中的代码，分别是 2.0 倍和 1.1-1.3 倍。在带 AVX-512 的 Intel Xeon 上，引入 Winograd 之前，Numba 分别是 1.11-1.16 倍和 1.16-1.22 倍。
# * 用 Winograd 计算的层（第 3b 节）显示出**高于 GEMM 峰值的 GFLOP/s**：计数用的是直接卷积的乘加次数，而 Winograd 做的乘加少了 2.25 倍。这正是它胜出的原因。
# * 第一层（$C = 1$）每个像素的计算量太小，谁都接近不了峰值；$16 \times 16$ 的各层仍用 im2col：在那里，变换 $3 \times 3 \times 1024 \times 1024$ 卷积核的开销抵得上更小的 GEMM 所省下的时间。
# * 小配置（顶层 16 个滤波器，$128 \times 128$）的前向传播在 TensorFlow 中更快（Numba 为 1.4 倍；一个训练步为 1.0-1.3 倍）：通道这么少，占主导的是每个运算的固定开销，而不是算术。

# %% [markdown] translates="6e67915f71a6"
# ## 9. CuPy：同样的运算放在 GPU 上
#
# `kernels/cupy_ops.py` 只有在装了 CuPy **并且**有 CUDA GPU 响应时才能导入；否则 `set_backend("cupy")` 会抛出 `RuntimeError`，说明要安装什么。在有 GPU 的机器上：
#
# ```python
# from unet_scratch.kernels import to_device
# import cupy
# set_backend("cupy"); to_device(model, "gpu")
# y = model.forward(cupy.asarray(x))
# ```
#
# 它的 float32 矩阵乘法按完整的 float32 计算（TensorFloat-32 会破坏 $10^{-5}$ 的一致性，所以设置 `CUPY_TF32=1` 时该模块会发出警告）。有没有 GPU 因机器而异，所以测试不比较下一个单元格的输出。

# %%
# NBVAL_IGNORE_OUTPUT
print("backends available here:", available_backends())
try:
    set_backend("cupy")
    print("cupy selected")
except RuntimeError as err:
    print("RuntimeError:", err)
finally:
    set_backend("numpy")

# %% [markdown] translates="028c84b0a448"
# ## 本章练习
#
# 1. `winograd_conv3x3(x, w)`：用 Winograd 的 $F(2\times2, 3\times3)$ 计算 3x3 卷积，写成在通道上的 16 次矩阵乘法（第 3b 节）。
# 2. `bias_relu_rows(y, b)`：融合了偏置 + ReLU 的 Numba 内核，原地计算（第 4 节）。
# 3. `conv_flops(h, w, c, f, k)`：步幅 1、'same' 卷积的 FLOPs（第 6 节）。
#
# 进一步（没有检查）：在 128 x 128 x 64 的输入、64 个滤波器上，对 `rows_per_chunk` = 1、8、64 给 `conv2d_chunked` 计时，并解释这条曲线；在导入本库之前设置 `UNET_SCRATCH_NUMBA_PARALLEL=1`，再给 `maxpool2d` 计时。
