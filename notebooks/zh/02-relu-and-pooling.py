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

# %% [markdown] translates="e25711512201"
# # 02 · ReLU、sigmoid 与最大池化：没有权重的函数
#
# **要你实现的：** ReLU 激活函数（activation function）、U-Net 输出层的 sigmoid，以及 $2\times2$ 最大池化（max-pooling），前向传播（forward pass）和反向传播（backpropagation）都要写。它们都没有权重。ReLU 和最大池化的反向传播只是在给梯度*指路*：
# ReLU 让梯度通过或把它挡住，最大池化把每个梯度交给一个输入像素，也就是窗口里的胜者。sigmoid 的反向传播则把每个梯度乘以
# $y(1 - y)$。
#
# **要你验证的：** 前向传播与 TensorFlow 和 `keras.layers.MaxPooling2D` 对照，反向传播与 TensorFlow 自己的梯度（`tf.GradientTape`）对照，包括出现**并列**（tie）时的情形，最后再做一次 float64 的梯度检验（gradient check）。练习中你要写
# `relu_backward`、`sigmoid_backward`、`maxpool2x2` 和 `maxpool2x2_backward`；每个检查都会说出它认得的典型错误（在 $x = 0$
# 处梯度取 1、sigmoid 用了两次、把梯度交给每一个并列的最大值……）。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import numpy as np
import matplotlib.pyplot as plt

from unet_scratch import ops
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras

tf = import_tensorflow(); keras = import_keras()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown] translates="82031ac08330"
# ## 1. ReLU
#
# $$\mathrm{relu}(x) = \max(x, 0), \qquad \frac{d\,\mathrm{relu}}{dx} = \begin{cases} 1 & x > 0 \\ 0 & x < 0\end{cases}$$
# 函数在 $x = 0$ 处有一个折角，没有导数；$[0, 1]$ 中的任何值都是合法的次梯度（subgradient）。TensorFlow 的 `ReluGrad` 取
# **0**，`ops.relu_backward` 也一样：$dx = dy \odot [x > 0]$。前向传播直接缓存 $y$，因为 $y > 0$ 的位置恰好就是 $x > 0$
# 的位置。恰好为 0 的输入很常见，并非罕见的特例：前一个 ReLU 关掉的每个像素都恰好是 0。

# %%
z = np.linspace(-3, 3, 601)
fig, ax = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
ax[0].plot(z, ops.relu(z)[0], color=plt.cm.viridis(0.3))
ax[0].set_title("relu(x) = max(x, 0)"); ax[0].set_xlabel("x (pre-activation)"); ax[0].set_ylabel("relu(x)")
ax[1].plot(z[z < 0], 0 * z[z < 0], color=plt.cm.viridis(0.6))
ax[1].plot(z[z > 0], 1 + 0 * z[z > 0], color=plt.cm.viridis(0.6))
ax[1].plot([0], [0], "o", color=plt.cm.viridis(0.6)); ax[1].plot([0], [1], "o", mfc="white", color=plt.cm.viridis(0.6))
ax[1].set_title("derivative: a gate (0 at x = 0, as TensorFlow)"); ax[1].set_xlabel("x (pre-activation)")
ax[1].set_ylabel("d relu / dx"); ax[1].set_ylim(-0.2, 1.2)
fig.suptitle("ReLU passes a gradient unchanged where x > 0 and blocks it elsewhere", fontsize=10)
fig.tight_layout(); plt.show()

# %%
x = np.array([-2.0, -0.5, 0.0, 0.0, 0.5, 3.0], np.float32)
dy = np.arange(1, 7, dtype=np.float32)
xt = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(xt)
    yt = tf.nn.relu(xt)
dx_tf = tape.gradient(yt, xt, output_gradients=tf.constant(dy)).numpy()
y, cache = ops.relu(x)
print("forward equals tf.nn.relu:              ", np.array_equal(y, yt.numpy()))
print("TensorFlow's gradient at x = 0:          ", dx_tf[2:4])
print("backward equals TensorFlow's, exactly:  ", np.array_equal(ops.relu_backward(dy, cache), dx_tf))


# %% [markdown] translates="fc7a85bf4bc6"
# ## 2. sigmoid
#
# 原文的 U-Net 以一个带 **sigmoid** 的 $1 \times 1$ 卷积（convolution）结尾，它把每个像素的 logit $x$ 变成前景的概率：
# $$y = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad
# \frac{dy}{dx} = \frac{e^{-x}}{(1 + e^{-x})^2} = \underbrace{\frac{1}{1 + e^{-x}}}_{y}\;
# \underbrace{\frac{e^{-x}}{1 + e^{-x}}}_{1 - y} = y\,(1 - y).$$
# 导数是用**输出** $y$ 表示的，所以前向传播缓存 $y$，反向传播不必再算一次指数：$dx = dy \odot y \odot (1 - y)$。它最大为
# $\tfrac14$（在 $x = 0$ 处，此时 $y = \tfrac12$），向两侧都趋于零：$x = 2$ 时 $y = 0.881$，$y(1 - y) = 0.105$；$x = 10$
# 时只有 $4.5 \times 10^{-5}$。因此，一个错得很有把握的像素几乎没有梯度能穿过 sigmoid 传回去，这就是第 07 章直接从 logit $x$
# 计算交叉熵（cross-entropy）的原因（两个导数合在一起是 $p - t$）。在概率上定义的损失（例如 Dice）则要经过这里的反向传播。
# `ops.sigmoid` 从不对正数求指数（先算 $e^{-|x|}$，再算 $1/(1 + e)$ 或 $e/(1 + e)$），所以 $x = -1000$ 得到 0，也不会出现溢出警告。

# %%
x = np.array([-10.0, -2.0, 0.0, 2.0, 10.0], np.float32)
dy = np.ones_like(x)
xt = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(xt)
    yt = tf.sigmoid(xt)
dx_tf = tape.gradient(yt, xt, output_gradients=tf.constant(dy)).numpy()
y, cache = ops.sigmoid(x)
print("x:                                  ", x.tolist())
print("y = sigmoid(x), 3 decimals:         ", np.round(y.astype(float), 3).tolist())
print("y (1 - y), 3 decimals:              ", np.round(ops.sigmoid_backward(dy, cache).astype(float), 3).tolist())
print("forward equals tf.sigmoid (1e-6):   ", np.allclose(y, yt.numpy(), rtol=1e-6, atol=1e-7))
print("backward equals TensorFlow's (1e-6):", np.allclose(ops.sigmoid_backward(dy, cache), dx_tf, rtol=1e-6, atol=1e-7))
with np.errstate(over="raise"):
    print("sigmoid(-1000) without overflow:    ", float(ops.sigmoid(np.float32(-1000.0))[0]) == 0.0)

# %%
z = np.linspace(-8, 8, 401)
y_z = ops.sigmoid(z)[0]
fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=100)
ax.plot(z, y_z, color=plt.cm.viridis(0.3), label="y = sigmoid(x)")
ax.plot(z, y_z * (1 - y_z), color=plt.cm.viridis(0.7), label="dy/dx = y (1 - y)")
ax.axhline(0.25, color="0.6", ls=":", lw=1); ax.text(-7.8, 0.27, "1/4: the largest slope", fontsize=8)
ax.set_xlabel("x (logit)"); ax.set_ylabel("value (unitless)")
ax.set_title("The sigmoid's slope is at most 1/4 and vanishes where it saturates", fontsize=10)
ax.legend(fontsize=8, loc="center right"); fig.tight_layout(); plt.show()


# %% [markdown] translates="6ac46a8ebda2"
# ## 3. 最大池化：前向传播
#
# 步幅（stride）为 $(s_H, s_W)$ 的 $P_H \times P_W$ 最大池化（Keras 默认步幅等于窗口大小，窗口互不重叠）逐通道（channel）保留每个窗口的最大值：
# $$y_{n,i,j,c} = \max_{0 \le a < P_H,\ 0 \le q < P_W} x_{n,\; i s_H + a,\; j s_W + q,\; c}.$$
# 输出尺寸的公式与卷积相同（第 01 章）：`valid` 丢掉填不满一个窗口的最后一行（$5 \to 2$），`same` 用 $-\infty$ 填充（padding），所以填进去的值永远不会胜出。U-Net 中的每次池化（pooling）都是 $2\times2$、步幅 2：高和宽减半，四个像素只留一个。
# `ops.maxpool2d` 用 `sliding_window_view` 取出窗口再求 `argmax`；`ops.maxpool2d_naive` 是照定义写的循环版本。

# %%
def keras_pool(x, pool, strides, padding):
    return np.asarray(keras.layers.MaxPooling2D(pool, strides=strides, padding=padding)(x))

all_ok = True
for shape, pool, strides, padding in [((2, 8, 8, 3), 2, None, "valid"), ((1, 7, 9, 2), 2, None, "valid"),
                                      ((1, 7, 9, 2), 2, None, "same"), ((1, 9, 9, 2), 3, 2, "valid"),
                                      ((1, 8, 8, 2), 3, 2, "same"), ((1, 6, 6, 1), 2, 1, "valid")]:
    x = rng.standard_normal(shape).astype(np.float32)
    ours = ops.maxpool2d(x, pool, strides, padding)[0]
    same_as_loops = np.array_equal(ours, ops.maxpool2d_naive(x, pool, strides, padding))
    same_as_keras = np.array_equal(ours, keras_pool(x, pool, strides, padding))
    all_ok &= same_as_loops and same_as_keras
    print(f"{str(shape):>14} pool {pool} strides {strides!s:>4} {padding:>5} -> {str(ours.shape):>14}:",
          "loops", same_as_loops, "| Keras", same_as_keras)
print("max pooling forward equals keras.layers.MaxPooling2D exactly:", all_ok)

# %% [markdown] translates="cba0a8db9fba"
# ## 4. 最大池化：反向传播，按 argmax 分派梯度
#
# 在一个窗口内，$\max$ 在局部就等于它的某一个输入，即胜者 $x_{a^*q^*}$，所以
# $$\frac{\partial y_{ij}}{\partial x_{uv}} = \begin{cases} 1 & (u, v) = (i s + a^*,\ j s + q^*) \\ 0 & \text{otherwise}\end{cases}
# \qquad\Longrightarrow\qquad dx_{uv} = \sum_{(i,j):\ (u,v)\ \text{wins window}\ (i,j)} dy_{ij}.$$
# 每个 $dy_{ij}$ 只去往一个像素；窗口中其余 $P_H P_W - 1$ 个像素得到 0。所以前向传播要缓存胜者的位置（`cache["argmax"]`，窗口展平后的下标 $a P_W + q$），反向传播再把 `dy` 散射到那里。窗口重叠时（步幅小于窗口），在几个窗口中都胜出的像素收到的是这些梯度之和。

# %%
x = rng.permutation(16).astype(np.float32).reshape(1, 4, 4, 1)
y, cache = ops.maxpool2d(x)
dy = np.array([10.0, 20.0, 30.0, 40.0], np.float32).reshape(1, 2, 2, 1)
dx = ops.maxpool2d_backward(dy, cache)

fig, ax = plt.subplots(1, 3, figsize=(10, 3.3), dpi=100)
for a, img, title in [(ax[0], x, "input x (4x4), winners circled"), (ax[1], dy, "upstream gradient dy (2x2)"),
                      (ax[2], dx, "dx: each dy lands on its winner")]:
    a.imshow(img[0, :, :, 0], cmap="viridis")
    for (i, j), v in np.ndenumerate(img[0, :, :, 0]):
        a.text(j, i, f"{v:g}", ha="center", va="center", color="w", fontsize=11)
    a.set_title(title, fontsize=10); a.set_xlabel("column (pixels)"); a.set_ylabel("row (pixels)")
for a in (ax[0], ax[2]):
    for k in (1.5,):
        a.axhline(k, color="white", lw=2); a.axvline(k, color="white", lw=2)
for i in range(2):
    for j in range(2):
        u, v = divmod(int(cache["argmax"][0, i, j, 0]), 2)
        ax[0].add_patch(plt.Circle((2 * j + v, 2 * i + u), 0.4, fill=False, ec="red", lw=2))
        ax[2].annotate("", (2 * j + v, 2 * i + u), (2 * j + 0.5, 2 * i + 0.5),
                       arrowprops=dict(arrowstyle="->", color="red"))
fig.suptitle("Max-pool backward: 1 pixel in 4 receives a gradient, the others get exactly 0", fontsize=10)
fig.tight_layout(); plt.show()


# %% [markdown] translates="72b7e9ad0264"
# ### 并列：哪个像素胜出？
#
# 窗口里有几个像素同为最大值时，$\max$ 不可导，实现必须做出选择。这在 U-Net 里随时都会发生：经过 ReLU 之后，一个全是 0 的窗口就是四个像素并列。读一读 `ops/pool.py`：本库把整个梯度交给按行优先顺序的**第一个**最大值（也就是 `np.argmax` 在展平的窗口上返回的那个）。如果改用掩码 `x == max`，梯度就会被复制给每一个并列的像素，梯度之和也就不再等于 `dy`。TensorFlow 是怎么做的？问问
# `tf.GradientTape`：

# %%
def tf_pool_grad(x, dy, pool=2, strides=2, padding="VALID"):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        yt = tf.nn.max_pool2d(xt, pool, strides, padding)
    return tape.gradient(yt, xt, output_gradients=tf.constant(dy)).numpy()

x_tie = np.array([[0, 0, 1, 3],
                  [0, 0, 3, 1],
                  [2, 5, 5, 5],
                  [5, 1, 5, 5]], np.float32).reshape(1, 4, 4, 1)
dy = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 2, 2, 1)
dx_pkg = ops.maxpool2d_backward(dy, ops.maxpool2d(x_tie)[1])
dx_tf = tf_pool_grad(x_tie, dy)
upsample = lambda a: np.kron(a[0, :, :, 0], np.ones((2, 2)))         # each window value on its 4 pixels
dx_mask = upsample(dy) * (x_tie[0, :, :, 0] == upsample(ops.maxpool2d(x_tie)[0]))
print("TensorFlow's dx:\n", dx_tf[0, :, :, 0])
print("package's dx equals TensorFlow's:          ", np.array_equal(dx_pkg, dx_tf))
print("the 'x == max' mask equals TensorFlow's:     ", np.array_equal(dx_mask, dx_tf))
print("sum of dx == sum of dy (package, mask):      ", dx_pkg.sum() == dy.sum(), dx_mask.sum() == dy.sum())

# %%
fig, ax = plt.subplots(1, 3, figsize=(10, 3.3), dpi=100)
for a, img, title in [(ax[0], x_tie[0, :, :, 0], "x with ties (4 zeros, two 3s, six 5s)"),
                      (ax[1], dx_tf[0, :, :, 0], "TensorFlow / package dx: first max"),
                      (ax[2], dx_mask, "mask x == max: every tie (wrong)")]:
    a.imshow(img, cmap="viridis")
    for (i, j), v in np.ndenumerate(img):
        a.text(j, i, f"{v:g}", ha="center", va="center", color="w", fontsize=11)
    a.axhline(1.5, color="white", lw=2); a.axvline(1.5, color="white", lw=2)
    a.set_title(title, fontsize=9); a.set_xlabel("column (pixels)"); a.set_ylabel("row (pixels)")
fig.suptitle("On a tie the whole gradient goes to the first maximum in row-major order", fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown] translates="f40e67429c3f"
# ### 与 TensorFlow 的梯度对照，以及 float64 梯度检验
#
# 用随机输入，以及满是并列值的输入（ReLU 之后四舍五入到一位小数），分别检验 U-Net 的 $2\times2$ 池化、窗口重叠的池化和 `same`
# 填充的池化：本库的 `dx` 必须等于 TensorFlow 的。

# %%
all_ok = True
for shape, pool, strides, padding in [((2, 8, 8, 3), 2, 2, "valid"), ((1, 7, 9, 2), 2, 2, "same"),
                                      ((1, 9, 9, 2), 3, 2, "valid"), ((1, 6, 6, 2), 2, 1, "valid")]:
    for kind in ("random", "ties"):
        x = rng.standard_normal(shape).astype(np.float32)
        if kind == "ties":
            x = np.maximum(x, 0).round(1)
        y, cache = ops.maxpool2d(x, pool, strides, padding)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ok = np.allclose(ops.maxpool2d_backward(dy, cache), tf_pool_grad(x, dy, pool, strides, padding.upper()),
                         rtol=1e-5, atol=1e-5)
        all_ok &= ok
        print(f"{str(shape):>13} pool {pool} stride {strides} {padding:>5} {kind:>6}: dx equals TensorFlow's:", ok)
print("max pooling backward verified against tf.GradientTape:", all_ok)

# %%
x = rng.standard_normal((2, 6, 6, 3))            # float64, no ties: max is smooth around x
y, cache = ops.maxpool2d(x)
dy = rng.standard_normal(y.shape)
err_pool = rel_error(ops.maxpool2d_backward(dy, cache), numeric_gradient(lambda v: ops.maxpool2d(v)[0], x, dy))
x = rng.standard_normal((2, 5, 5, 3))
x[np.abs(x) < 0.01] = 0.5                          # keep h = 1e-5 away from ReLU's kink
y, cache = ops.relu(x)
dy = rng.standard_normal(y.shape)
err_relu = rel_error(ops.relu_backward(dy, cache), numeric_gradient(lambda v: ops.relu(v)[0], x, dy))
print("float64 gradient check, max pool: relative error below 1e-7:", err_pool < 1e-7)
print("float64 gradient check, relu:     relative error below 1e-7:", err_relu < 1e-7)

# %% [markdown] translates="6891490b70c9"
# ## 练习
#
# 每道练习都配有一个检查函数：它在若干测试用例上运行你的答案，并指出哪里不对。

# %% [markdown] translates="52ce77640dc4"
# **练习 1.** 写出 `relu_backward(dy, x)`：已知上游梯度 `dy`，求 ReLU 在 `x` 处的梯度（两者形状任意，但彼此相同）：
# $dx = dy \odot [x > 0]$。在 $x$ 恰好为 0 处，取 TensorFlow 的值。算例：`x = [-1, 0, 2]`、`dy = [5, 6, 7]` 得
# `dx = [0, 0, 7]`。

# %%
from unet_scratch.exercises.ch02 import (check_maxpool2x2, check_maxpool2x2_backward, check_relu_backward,
                                         check_sigmoid_backward)

def relu_backward(dy, x):
    """dy, x: (any shape, the same) -> dx: same shape, dy where x > 0, 0 elsewhere (also at x == 0)."""
    ### BEGIN SOLUTION
    return dy * (x > 0)
    ### END SOLUTION

check_relu_backward(relu_backward);


# %% [markdown] translates="095f7a429346"
# **练习 2.** 写出 `sigmoid_backward(dy, x)`：已知上游梯度 `dy`，求 $y = \sigma(x)$ 的梯度 $dx = dy \odot y \odot (1 - y)$。传给你的是激活之前的 `x`（与练习 1 一样）：先算出 $y$（`ops.sigmoid(x)[0]` 对任何 $x$ 都数值稳定）。算例：`x = [0, 2]`、
# `dy = [1, 2]` 得 `dx = [0.25, 0.21]`（即 $0.5 \cdot 0.5$ 和 $2 \cdot 0.881 \cdot 0.119$）。

# %%
def sigmoid_backward(dy, x):
    """dy, x: (any shape, the same) -> dx = dy * y * (1 - y) with y = sigmoid(x); same shape and dtype."""
    ### BEGIN SOLUTION
    y = ops.sigmoid(x)[0]
    return dy * y * (1 - y)
    ### END SOLUTION

check_sigmoid_backward(sigmoid_backward);


# %% [markdown] translates="4b8f1e3ec57d"
# **练习 3.** 写出 `maxpool2x2(x)`：步幅 2、`valid` 填充的 $2\times2$ 最大池化，`x: (N, H, W, C) -> (N, H//2, W//2, C)`
# （尺寸为奇数时丢掉最后一行或一列：$5 \to 2$）。提示：先裁剪（crop）成偶数尺寸，再 `reshape(N, H//2, 2, W//2, 2, C)`。

# %%
def maxpool2x2(x):
    """x: (N, H, W, C) -> y: (N, H // 2, W // 2, C), the maximum of each 2x2 window (stride 2, 'valid')."""
    ### BEGIN SOLUTION
    n, h, w, c = x.shape
    return x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    ### END SOLUTION

check_maxpool2x2(maxpool2x2);


# %% [markdown] translates="02001d5dadc4"
# **练习 4.** 写出 `maxpool2x2_backward(dy, x)`：`maxpool2x2` 在 `x` 处的梯度。每个 `dy[n, i, j, c]` 都交给它所在窗口中按行优先顺序的**第一个**最大值（TensorFlow 处理并列的规则）；其余像素都得 0（尺寸为奇数时，没有任何窗口读过的最后一行或一列也是 0）。可以用循环。

# %%
def maxpool2x2_backward(dy, x):
    """dy: (N, H // 2, W // 2, C), x: (N, H, W, C) -> dx: (N, H, W, C)."""
    ### BEGIN SOLUTION
    dx = np.zeros_like(x)
    for n in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for c in range(dy.shape[3]):
                    window = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c]
                    a, q = divmod(int(np.argmax(window)), 2)      # np.argmax: the first maximum
                    dx[n, 2 * i + a, 2 * j + q, c] += dy[n, i, j, c]
    return dx
    ### END SOLUTION

check_maxpool2x2_backward(maxpool2x2_backward);

# %% [markdown] translates="f03c258d2dc7"
# **本章练习：** 1. `relu_backward`（一道门，$x = 0$ 处为 0），2. `sigmoid_backward`（$dy \, y (1 - y)$，用输出表示），
# 3. `maxpool2x2`（用 reshape 写前向传播），4. `maxpool2x2_backward`（按 argmax 分派梯度，并列时按 TensorFlow 的规则取第一个最大值）。检查能认出的错误：$x = 0$ 处梯度取 1、用 `dy` 做掩码、只有掩码而没有乘 `dy`（练习 1）；sigmoid 用了两次、忘了乘
# `dy`、写成 $y(1 + y)$、写成 $x(1 - x)$（练习 2）；奇数尺寸向上取整或补零、步幅取 1、平均池化（练习 3）；把梯度交给每一个并列的最大值、交给最后一个最大值、或在窗口上平均（练习 4）。
