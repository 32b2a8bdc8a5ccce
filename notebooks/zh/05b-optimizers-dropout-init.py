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

# %% [markdown] translates="7bcc5765760d"
# # 05b · 优化器、Dropout 与初始化
#
# 第 05 章算出了 U-Net 的每一个梯度。要把这些梯度变成一个训练好的网络，还需要三样东西，后面每一章都会用到：移动权重的**更新规则**；**Dropout**（原文的模型有两个 `Dropout(0.5)` 层）；以及更新的起点，**初始权重**。本章把它们逐一实现，每一步都与 Keras 3 的算法一致。
#
# **要你实现的：**
# 1. 带动量的 SGD 的一步（论文用动量 0.99 训练）；
# 2. Adam 的一步（第 08 章用它训练）；
# 3. 倒置 Dropout（inverted dropout）的前向传播（forward pass）和反向传播（backpropagation）；
# 4. 权重张量的扇入和扇出（fan_in / fan_out），然后是 He 和 Glorot 初始化，抽样方式与 Keras 相同。
#
# **要你验证的：** 你的优化器（optimizer）在多步更新上与 `unet_scratch.optimizers` 和 `keras.optimizers` 对照；你的 Dropout 掩码与 `ops.dropout` 的对照；你的初始化函数用大样本的方差、均值和边界来检验，Keras 的扇入扇出则与 Keras 自己的初始化器对照。最后是每个实践者在长时间训练之前都会做的两项健全性检查（sanity check）：新网络的损失（sigmoid 输出层时接近 $\ln 2 = 0.693$），以及让网络在单个批次上过拟合（overfitting），把损失降到接近零。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"              # quiet TensorFlow: set before it is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")    # small matrices: one BLAS thread is faster

import math
import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data, ops
from unet_scratch.initializers import compute_fans as keras_fans, get_initializer
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.optimizers import SGD, Adam
from unet_scratch.keras_ref import import_keras

keras = import_keras()
rng = np.random.default_rng(0)

# %% [markdown] translates="eae37212f722"
# ## 1. 梯度下降与动量
#
# 梯度下降让每个权重逆着它的梯度 $g = \partial L / \partial w$ 移动，每一步走多远由学习率（learning rate）$\eta$ 决定：$w \leftarrow w - \eta\, g$。在损失函数（loss function）的一道狭长山谷里，梯度主要指向*横穿*山谷的方向，所以普通的梯度下降在两壁之间来回折返，沿谷底只能慢慢挪动。**动量**（momentum，Polyak 的重球法）维护一个速度 $v$，即过去各步的累加，每走一步衰减为原来的 $\mu$ 倍：来回折返的分量相互抵消，沿山谷方向的稳定分量则不断积累。Keras 3 的规则（`keras/src/optimizers/sgd.py`），$v_0 = 0$：
#
# $$v \leftarrow \mu\, v - \eta\, g, \qquad w \leftarrow w + v .$$
#
# PyTorch 的写法不同，$b \leftarrow \mu\, b + g$，$w \leftarrow w - \eta\, b$：$\eta$ 不变时两者得到的权重相同（$v = -\eta\, b$），但 Keras 的速度里已经乘上了学习率，所以在学习率调度下两者走的步子不同。形状：$w$、$g$、$v$ 都与权重的形状相同（卷积核（kernel）$(3, 3, 64, 128)$，偏置（bias）$(128,)$）；$\eta$ 和 $\mu$ 是标量。
#
# 算例：$w = 1$，两步的 $g$ 都是 $0.5$，$\eta = 0.1$，$\mu = 0.9$。第 1 步：$v = -0.05$，$w = 0.95$。第 2 步：$v = 0.9 \cdot (-0.05) - 0.05 = -0.095$，$w = 0.855$：第二步几乎是第一步的两倍。梯度不变时，每一步的大小趋向 $\eta g / (1 - \mu)$：$\mu = 0.9$ 时是普通梯度下降的十倍，论文的 $\mu = 0.99$ 时是一百倍。

# %% [markdown] translates="ddd66655dac9"
# **练习 1.** 写出 `sgd_momentum_step(w, g, v, lr, momentum)`，返回 `(w_new, v_new)`：按 Keras 的规则走一步。`w`、`g`、`v` 是形状相同的 float32 数组，`lr` 和 `momentum` 是 Python 浮点数；返回新数组（不要修改输入），并保持 float32。检查会从 $v = 0$ 开始走若干步（其中一组用了学习率调度），并与 `unet_scratch.optimizers.SGD` 和 `keras.optimizers.SGD` 比较。

# %%
from unet_scratch.exercises.ch05b import (check_adam, check_compute_fans, check_dropout, check_glorot_uniform,
                                          check_he_normal, check_sgd_momentum)

def sgd_momentum_step(w, g, v, lr, momentum):
    ### BEGIN SOLUTION
    v = momentum * v - lr * g
    return w + v, v
    ### END SOLUTION

check_sgd_momentum(sgd_momentum_step);

# %% [markdown] translates="548e45634109"
# 两个数组都与 Keras 的**逐位相同**：对 float32 数组，NumPy 2 会把 Python 浮点数 `lr` 和 `momentum` 当作 float32，正如 Keras 把它们转换成变量的 dtype，而且运算顺序也与 Keras 相同。下图在最简单的狭长山谷 $L(w) = \tfrac12 (w_1^2 + 100\, w_2^2)$ 上运行本库的优化器（你的函数就是与它们对照的）：它的梯度是 $(w_1, 100\, w_2)$。

# %%
def valley_run(optimizer, steps=60, w0=(-4.0, 0.5)):
    '''The path of w over `steps` updates of `optimizer` on L = (w1^2 + 100 w2^2) / 2.'''
    p = {"w": np.array(w0, np.float32)}
    path = [p["w"].copy()]
    for _ in range(steps):
        g = p["w"] * np.array([1.0, 100.0], np.float32)
        optimizer.apply(p, {"w": g})
        path.append(p["w"].copy())
    return np.array(path)

runs = {"SGD, lr 0.019": valley_run(SGD(0.019)),
        "SGD + momentum 0.8, lr 0.02": valley_run(SGD(0.02, momentum=0.8)),
        "Adam, lr 0.2": valley_run(Adam(0.2))}
loss = lambda w: 0.5 * (w[..., 0] ** 2 + 100 * w[..., 1] ** 2)

fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100, gridspec_kw=dict(width_ratios=[1.4, 1]))
g1, g2 = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-0.7, 0.7, 120))
ax[0].contour(g1, g2, loss(np.stack([g1, g2], -1)), levels=np.geomspace(0.05, 25, 12), cmap="gray", linewidths=0.6)
colors = [plt.cm.viridis(c) for c in (0.05, 0.5, 0.85)]
for (name, path), color in zip(runs.items(), colors):
    ax[0].plot(path[:, 0], path[:, 1], ".-", color=color, ms=3, lw=1, label=name)
    ax[1].semilogy(np.maximum(loss(path), 1e-12), color=color, label=name)
ax[0].plot(0, 0, "k*", ms=9)
ax[0].set(xlabel="$w_1$", ylabel="$w_2$", title="Paths from (-4, 0.5): plain SGD creeps along the valley")
ax[0].legend(fontsize=8, loc="lower right")
ax[1].set(xlabel="step", ylabel="loss L(w) (log scale)", title="Momentum and Adam reach the minimum far sooner")
ax[1].legend(fontsize=8)
fig.tight_layout(); plt.show()
for name, path in runs.items():
    print(f"{name:<28} loss after 60 steps below {10.0 ** math.ceil(math.log10(loss(path[-1]))):.0e}")

# %% [markdown] translates="01a7c4ec5b9d"
# 普通 SGD 的学习率没法再大：超过 $2/100 = 0.02$，陡峭的方向（$w_2$，曲率 100）就会发散；而取 $0.019$ 时，平缓的方向（$w_1$，曲率 1）每步只缩小 1.9 %。动量用几乎同样的学习率（0.02，普通 SGD 是 0.019）沿山谷积累起速度（动量太大，例如 0.9 或论文的 0.99，在这个小问题上会振荡更久：试试看）。Adam（下一节）把每个坐标的一步除以该坐标自己的梯度尺度，所以两个方向移动得差不多快。
#
# ## 2. Adam
#
# Adam（Kingma & Ba 2015）为每个权重维护两个滑动平均，一个是梯度的（$m$），一个是梯度平方的（$v$），按两者之比走一步，所以无论梯度大小，每个权重每一步都走约 $\eta$。Keras 3 的规则（`keras/src/optimizers/adam.py`），$m_0 = v_0 = 0$，步数 $t = \text{iterations} + 1$（第一步为 1）：
#
# $$m \leftarrow m + (g - m)(1 - \beta_1), \qquad v \leftarrow v + (g^2 - v)(1 - \beta_2),$$
# $$\alpha_t = \eta\, \frac{\sqrt{1 - \beta_2^{\,t}}}{1 - \beta_1^{\,t}}, \qquad
# w \leftarrow w - \alpha_t\, \frac{m}{\sqrt{v} + \epsilon} .$$
#
# 第一行就是常见的 $m \leftarrow \beta_1 m + (1 - \beta_1) g$，只是换了个写法。**偏差修正：** $m$ 和 $v$ 从 0 开始，所以一步之后 $m = (1 - \beta_1)\, g = 0.1\, g$，小了十倍；除以 $1 - \beta_1^t$ 就把它纠正回来（$\sqrt{1 - \beta_2^t}$ 对 $v$ 做同样的事），随着 $t$ 增大，修正逐渐消失。Keras 把两个修正都并入每一步的大小 $\alpha_t$，并把 $\epsilon$（默认 $10^{-7}$）加在 $\sqrt{v}$ 上：这是 Adam 论文在算法 1 之后给出的"更高效"的顺序。算例，第一步（$t = 1$，Keras 的默认值 $\beta_1 = 0.9$，$\beta_2 = 0.999$）：$m = 0.1\,g$，$v = 0.001\,g^2$，$\alpha_1 = \eta \sqrt{0.001} / 0.1 = 0.316\,\eta$，所以这一步是 $0.316\,\eta \cdot 0.1\,g / (0.0316\,|g| + \epsilon) \approx \eta\, \mathrm{sign}(g)$，梯度是 $10^{-3}$ 还是 $10^{3}$ 都一样。

# %%
p = {"w": np.zeros(4, np.float32)}
g = np.array([1e-3, -1.0, 1e3, 1e-5], np.float32)
Adam(learning_rate=0.01).apply(p, {"w": g})
print("gradients:                ", g)
print("first Adam step / lr:     ", np.round(-p["w"] / 0.01, 3))

# %% [markdown] translates="5546a80e67b4"
# （$10^{-5}$ 的梯度步子小一些：$0.0316 \cdot 10^{-5}$ 只有 $\epsilon$ 的三倍。）
#
# **练习 2.** 写出 `adam_step(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon)`，返回 `(w_new, m_new, v_new)`：Keras 的 Adam 走一步。`iterations` 是已经走过的步数，第一步时为 0。`w`、`g`、`m`、`v` 是形状相同的 float32 数组；要保持 float32：对 Python 浮点数用 `math.sqrt` 得到的还是 Python 浮点数，NumPy 会按 float32 使用它；而用 `np.sqrt` 得到的是 float64 标量，会把整个更新变成 float64。检查在四种设置下最多走十步，其中包括极小的梯度和很大的 $\epsilon$，这时 $\epsilon$ 放在哪里就看得出来了。

# %%
def adam_step(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):
    ### BEGIN SOLUTION
    t = iterations + 1
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return w - alpha * m / (np.sqrt(v) + epsilon), m, v
    ### END SOLUTION

check_adam(adam_step);

# %% [markdown] translates="e560c3e7ec82"
# 这一次不是逐位相同，原因值得一说：Keras 在计算 $1 - \beta_2^t$ **之前**先把 $\beta_2$ 转成 float32，而 float32 中离 0.999 最近的值是 0.99900001，所以 Keras 的 $1 - \beta_2 = 0.00099998713$，而不是 $0.001$。$t = 1$ 时，它这一步的大小比用 Python 浮点数算出的小百万分之六；以 $\eta = 10^{-2}$ 走满十步之后，一个权重相差约 $5 \times 10^{-7}$，所以检查的容差取 $10^{-6}$。（`unet_scratch.optimizers.Adam` 做同样的类型转换，并像 TensorFlow 一样调用 C 库的 `powf`，因此与 Keras 逐位相同。）
#
# **Keras 的 $\epsilon$ 不是 PyTorch 的 $\epsilon$。** PyTorch 的 `Adam` 遵循论文的算法 1，$w \leftarrow w - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$，其中 $\hat m = m / (1 - \beta_1^t)$，$\hat v = v / (1 - \beta_2^t)$（默认 $\epsilon = 10^{-8}$）。把 Keras 的更新改写成这种形式，$\epsilon$ 的位置上是 $\epsilon / \sqrt{1 - \beta_2^t}$：$t = 1$ 时大 31.6 倍，$t$ 很大时两者相等。对于不变的梯度 $g$（于是 $\hat m = g$，$\hat v = g^2$），两边都取 $\epsilon = 10^{-7}$，一步的大小会因此改变多少：

# %%
eps, b2 = 1e-7, 0.999
print("Keras's step / PyTorch's step, constant gradient g, epsilon 1e-7 on both sides")
print(f"{'|g|':>8}" + "".join(f"{'t = ' + str(t):>12}" for t in (1, 10, 100, 1000, 10000)))
for size in (1.0, 1e-3, 1e-5, 1e-6, 1e-7):
    ratios = [(size + eps) / (size + eps / math.sqrt(1 - b2 ** t)) for t in (1, 10, 100, 1000, 10000)]
    print(f"{size:>8.0e}" + "".join(f"{r:>12.3f}" for r in ratios))

# %% [markdown] translates="6878c074aa5f"
# 梯度大于约 $10^{-4}$ 时，两者相差不到 3 %；对于梯度为 $10^{-6}$ 的权重，Keras 的最初几步要小 3 到 4 倍。因此，用"同样的 Adam"在框架之间移植模型，会改变梯度极小的那些权重最初几步的走法（以及任何用了很大 $\epsilon$ 的训练）；检查中极小梯度的那个用例能分辨这两种放法。
#
# ## 3. 倒置 Dropout
#
# 训练时，Dropout 以概率 $1 - p$（$p$ = `rate`）保留每个单元，其余置零，这样任何单元都不能依赖某个特定的其他单元；U-Net 论文说，它"位于收缩路径末端"的 Dropout 层"进一步起到隐式数据增强（data augmentation）的作用"，原文的模型在 512 个滤波器（filter）的模块之后和瓶颈层（bottleneck）之后各放了一个 `Dropout(0.5)`。**倒置** Dropout 在训练时就把保留的单元放大，这样推理时什么都不用改：
#
# $$\text{keep}_i = [u_i \ge p],\quad u_i \sim U[0, 1); \qquad y = x \odot \frac{\text{keep}}{1 - p},
# \qquad \mathbb E[y] = x; \qquad \text{inference: } y = x .$$
#
# 反向传播乘以**同一个**掩码：$dx = dy \odot \text{keep} / (1 - p)$。形状：$x$、$y$、掩码、$dy$、$dx$ 全都相同，例如 $(N, 32, 32, 512)$。"在 $u \ge p$ 处保留"是 TensorFlow（以及 `ops.dropout`）的规则；任何保留概率为 $1 - p$ 的掩码都是正确的 Dropout，但用这一条，你的掩码才能与本库的比较。算例：$x = (1, 2, 3, 4)$，$p = 0.5$，$u = (0.7, 0.2, 0.9, 0.4)$：keep $= (1, 0, 1, 0)$，$y = (2, 0, 6, 0)$；若 $dy = (1, 1, 1, 1)$，则 $dx = (2, 0, 2, 0)$。

# %% [markdown] translates="de31a3b06efa"
# **练习 3.** 写出 `dropout_forward(x, rate, rng, training)`，返回 `(y, cache)`；再写出 `dropout_backward(dy, cache)`，返回 `dx`。用**一次** `rng.random(x.shape)` 调用抽取均匀随机数（检查传入一个带种子的生成器，并期望得到与 `ops.dropout` 相同的掩码），在 $u \ge$ `rate` 处保留，让 y 的 dtype 与 x 相同；`training` 为 False 或 `rate` 为 0 时原样返回 `x`。cache 由你决定：反向传播需要什么就存什么。

# %%
def dropout_forward(x, rate, rng, training):
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

check_dropout(dropout_forward, dropout_backward);

# %% [markdown] translates="377c37858e1c"
# 倒置 Dropout 对一张特征图（feature map）做了什么，用一张膜结构图像来演示（`ops.dropout`，rate 0.5）：一次抽样大约保留一半像素，值变为原来的两倍；对多次抽样取平均，输出就是输入。

# %%
x_img = data.load("membranes", n=1, size=64)[0][0, :, :, 0]
drop_rng = np.random.default_rng(1)
samples = np.stack([ops.dropout(x_img, 0.5, drop_rng, training=True)[0] for _ in range(400)])
fig, ax = plt.subplots(1, 3, figsize=(11, 3.6), dpi=100, layout="constrained")
for a, img, title in zip(ax, [x_img, samples[0], samples.mean(0)],
                         ["input x", "one draw (rate 0.5): 0 or 2x", "mean of 400 draws: x again"]):
    im = a.imshow(img, cmap="gray", vmin=0, vmax=2)
    a.set(title=title, xlabel="column (px)")
ax[0].set_ylabel("row (px)")
fig.colorbar(im, ax=ax, shrink=0.8, label="pixel value")
plt.show()
print("kept fraction of one draw within 2 % of 0.5:", bool(abs((samples[0] != 0).mean() - 0.5) < 0.02))
print("mean of 400 draws within 0.15 of x everywhere:", bool(np.abs(samples.mean(0) - x_img).max() < 0.15))
print("inference (training=False) returns x itself:", ops.dropout(x_img, 0.5, drop_rng)[0] is x_img)

# %% [markdown] translates="43fba02850d1"
# ## 4. 初始化：扇入扇出、He、Glorot
#
# **为什么尺度很重要。** 一层的一个输出是 $n$ 个乘积之和，$z = \sum_{i=1}^{n} w_i x_i$。权重相互独立且均值为零时，$\operatorname{Var}(z) = n \operatorname{Var}(w)\, \mathbb E[x^2]$；而对称分布的 $z$ 经过 ReLU 后只剩一半功率：$\mathbb E[\operatorname{relu}(z)^2] = \tfrac12 \operatorname{Var}(z)$。所以每一个"卷积（convolution）+ ReLU"层把信号的功率乘以 $\tfrac12\, n \operatorname{Var}(w)$：大于 1 时信号随深度爆炸，小于 1 时则随深度消失。**He 等人（2015）**取 $\operatorname{Var}(w) = 2/n$，让这个因子保持为 1；U-Net 论文用的正是它："标准差为 $\sqrt{2/N}$ 的高斯分布，其中 $N$ 表示一个神经元的输入节点数"，对 64 个通道（channel）上的 $3 \times 3$ 卷积，$N = 9 \cdot 64 = 576$。**Glorot 和 Bengio（2010）**针对 tanh 这类对称的激活函数（在 0 附近是线性的）推导，用 $\operatorname{Var}(w) = 2 / (n_\text{in} + n_\text{out})$ 在前向和反向传播之间取得平衡；Keras 的默认值 `glorot_uniform` 从 $U(-\ell, \ell)$ 中抽样，$\ell = \sqrt{6 / (n_\text{in} + n_\text{out})}$（$(-\ell, \ell)$ 上的均匀分布方差为 $\ell^2 / 3$）。原文的模型没有指定初始化方法，所以用的是 Glorot；而它所沿用的 zhixuhao/unet 的结构用的是 `he_normal`。
#
# **扇入与扇出。** Keras 的 `compute_fans` 从卷积核的形状读出它们：对形状 $(k_1, \dots, a, b)$，感受野（receptive field）大小为 $r = k_1 \cdots$，fan_in $= r\,a$，fan_out $= r\,b$。对 Conv2D 的卷积核 $(3, 3, 64, 128)$，fan_in $= 576$（即论文的 $N$），fan_out $= 1152$；全连接的 $(a, b)$ 矩阵是 $(a, b)$，向量 $(n,)$ 是 $(n, n)$，标量是 $(1, 1)$。Conv2DTranspose 的卷积核存为 $(k_h, k_w, \text{out}, \text{in})$，Keras 照用同一条规则，所以它的"fan_in"数的是**输出**通道（PyTorch 的 `ConvTranspose2d` 对它形状为 $(\text{in}, \text{out}, k_h, k_w)$ 的权重也是这样）。
#
# **Keras 的 He 是截断的。** `he_normal` 从标准差为 $\sqrt{2 / \text{fan\_in}} / 0.87962566$ 的正态分布中抽样，超出两个这种标准差的值全部重抽；$0.8796$ 是在 $\pm 2$ 处截断的标准正态分布的标准差，所以结果的标准差恰好是 $\sqrt{2/\text{fan\_in}}$，并且没有超出它 $2.27$ 倍的值。论文的高斯分布不截断（`initializers.paper_normal`）。

# %% [markdown] translates="38c9098eb533"
# **练习 4.** 写出 `compute_fans(shape)`，按 Keras 的方式返回 `(fan_in, fan_out)`，形状可以是任意长度（`()`、`(n,)`、`(a, b)`、`(3, 3, 64, 128)`……）。

# %%
def compute_fans(shape):
    ### BEGIN SOLUTION
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return field * shape[-2], field * shape[-1]
    ### END SOLUTION

check_compute_fans(compute_fans);

# %% [markdown] translates="35d7f4261ce0"
# **练习 5.** 写出 `he_normal(shape, rng, dtype="float32")`：Keras 的截断 He 正态初始化，从 `rng` 中抽样（`rng.standard_normal`），返回形状为 `shape`、类型为 `dtype` 的数组。把超出两个标准差的值重抽，直到一个也不剩。检查看的是至少 131,072 个权重的样本的方差、均值和最大值。它的签名与本库的初始化函数相同，所以 `UNet(kernel_initializer=he_normal)` 会用你的函数构建网络。

# %%
def he_normal(shape, rng, dtype="float32"):
    ### BEGIN SOLUTION
    std = math.sqrt(2 / compute_fans(shape)[0]) / 0.87962566103423978
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return (z * std).astype(dtype)
    ### END SOLUTION

check_he_normal(he_normal);

# %% [markdown] translates="a5b1f9ed8f97"
# **练习 6.** 写出 `glorot_uniform(shape, rng, dtype="float32")`：$U(-\ell, \ell)$，$\ell = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}$，用 `rng.uniform` 抽样。

# %%
def glorot_uniform(shape, rng, dtype="float32"):
    ### BEGIN SOLUTION
    fan_in, fan_out = compute_fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)
    ### END SOLUTION

check_glorot_uniform(glorot_uniform);

# %% [markdown] translates="eebc2b25e369"
# **与 Keras 对照。** 对 Keras 自己的初始化器抽样：它们的随机数与 NumPy 的不同，统计量却必须相同，而方差能说明它们用的是哪一个扇入扇出。Keras 的 fan_in 还可以从样本中反推出来：`VarianceScaling(mode="fan_in", distribution="uniform")` 从 $U(-\sqrt{3/\text{fan\_in}}, \sqrt{3/\text{fan\_in}})$ 中抽样，所以大样本中最大的 $|w|$ 给出 fan_in $\approx 3 / \max |w|^2$。下面的上卷积（up-convolution）卷积核是原文最深的那一个，即 1024 个通道上的 `Conv2DTranspose(512, 2, strides=2)`；`keras_fans` 就是本库的 `compute_fans`，也就是你的函数所对照的那个。

# %%
conv_kernel, upconv_kernel = (3, 3, 128, 128), (2, 2, 512, 1024)
layer = keras.layers.Conv2DTranspose(512, 2, strides=2)
layer.build((None, 8, 8, 1024))
print("Keras stores the up-conv's kernel as (kh, kw, out, in):", tuple(layer.kernel.shape) == upconv_kernel)
for shape in (conv_kernel, upconv_kernel):
    fan_in_keras = 3 / float(np.max(np.abs(keras.initializers.VarianceScaling(
        1.0, "fan_in", "uniform", seed=0)(shape)))) ** 2
    print(f"kernel {shape}: Keras's fan_in {round(fan_in_keras)}, compute_fans {keras_fans(shape)[0]}")
for name, theirs, var in [("HeNormal", keras.initializers.HeNormal(seed=0), lambda s: 2 / keras_fans(s)[0]),
                          ("GlorotUniform", keras.initializers.GlorotUniform(seed=0),
                           lambda s: 2 / sum(keras_fans(s)))]:
    for shape in (conv_kernel, upconv_kernel):
        w_keras = np.asarray(theirs(shape))
        print(f"keras {name:<14} {str(shape):<19} variance within 3 % of the formula with compute_fans: "
              f"{abs(float(w_keras.var()) / var(shape) - 1) < 0.03}")

# %% [markdown] translates="e9d439d2bd85"
# 尺度的作用：把 16 个卷积（$3 \times 3$、32 个通道、same 填充（padding））叠在一起，每个后面跟一个 ReLU，输入一张功率为 1 的 $32 \times 32$ 图像，画出每一层输出的均方根。比较三种初始化：本库的 He 和 Glorot（你的函数就是与它们对照的），以及固定的小标准差 0.01。

# %%
x_stack = np.random.default_rng(2).standard_normal((1, 32, 32, 32)).astype(np.float32)
inits = {"he_normal (Var 2/fan_in)": get_initializer("he_normal"),
         "glorot_uniform (Var 2/(fan_in+fan_out))": get_initializer("glorot_uniform"),
         "normal, std 0.01": lambda shape, rng, dtype: (0.01 * rng.standard_normal(shape)).astype(dtype)}
rms = {}
for name, init in inits.items():
    init_rng, h, rms[name] = np.random.default_rng(3), x_stack, []
    for _ in range(16):
        h = ops.relu(ops.conv2d(h, init((3, 3, 32, 32), init_rng, "float32"), None, 1, "same")[0])[0]
        rms[name].append(float(np.sqrt(np.mean(h ** 2))))

fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
for (name, r), c in zip(rms.items(), (0.1, 0.5, 0.85)):
    ax.semilogy(range(1, 17), r, "o-", ms=3, color=plt.cm.viridis(c), label=name)
ax.semilogy(range(1, 17), [2 ** -(k / 2) for k in range(1, 17)], ":", color="0.4", label="halving the power per layer")
ax.set(xlabel="layer (3x3 conv + ReLU)", ylabel="RMS of the layer's output",
       title="He keeps the signal's size; Glorot halves its power per layer")
ax.legend(fontsize=8); fig.tight_layout(); plt.show()
print("He: RMS after 16 layers within a factor 2 of the first layer's:", 0.5 < rms["he_normal (Var 2/fan_in)"][-1] / rms["he_normal (Var 2/fan_in)"][0] < 2)
print("Glorot: RMS shrinks by more than 50x over 16 layers:", rms["glorot_uniform (Var 2/(fan_in+fan_out))"][-1] / rms["glorot_uniform (Var 2/(fan_in+fan_out))"][0] < 1 / 50)

# %% [markdown] translates="f278f25c605d"
# 当 $n_\text{in} = n_\text{out}$ 时，Glorot 的 $\operatorname{Var}(w) = 2/(n_\text{in} + n_\text{out}) = 1/n$：是 He 的一半，所以每经过一个 ReLU 层功率就减半，即图中的点线。原文的 U-Net 叠了 23 个用 Glorot 初始化的层，第一项健全性检查会显示这对它的输出有什么影响。
#
# ## 5. 长时间训练之前的两项健全性检查
#
# **第 0 步的损失。** sigmoid 输出层的 logit $z$ 接近 0 时，它在各处都预测 $p = 0.5$，这时二元交叉熵（binary cross-entropy）$-[t \ln p + (1 - t) \ln(1 - p)]$ 对**每一个**目标值都是 $\ln 2 = 0.693$，无论该像素是不是膜。（$K$ 类的 softmax 输出层则是 $\ln K$。）新网络的损失如果远高于此，说明它的输出一开始就错得很有把握：输入或权重的尺度不对，或者目标的编码错了。下面依次是原文的 U-Net（Glorot，3100 万个权重）在 $64 \times 64$ 上的情况、把图像按 0-255 而不是 0-1 输入的同一个网络（经典的数据错误），以及一个用 He 初始化的小 U-Net，都用四张膜结构图像。还有一个值得知道的数：最好的*常数*预测 $p = \bar t$（膜所占的比例）的损失是 $H(\bar t)$，即目标均值的熵；损失停在那里的网络只学到了这个比例，别的什么也没学到。

# %%
x4, t4 = data.load("membranes", n=4, size=64)
t_mean = float(t4.mean())
seed_unet = UNet(input_shape=(64, 64, 1), seed=0)                      # the article's model, Glorot
small_he = UNet(input_shape=(64, 64, 1), base_filters=16, depth=2, kernel_initializer="he_normal", seed=0)
print(f"ln 2 = {math.log(2):.3f}; best constant prediction p = {t_mean:.3f}: loss "
      f"{-(t_mean * math.log(t_mean) + (1 - t_mean) * math.log(1 - t_mean)):.3f}")
for name, model, x_in in [("article's U-Net, images in [0, 1]", seed_unet, x4),
                          ("article's U-Net, images in [0, 255]", seed_unet, 255 * x4),
                          ("small He U-Net, images in [0, 1]", small_he, x4)]:
    z = model.forward(x_in, logits=True)
    bce = binary_crossentropy(z, t4, from_logits=True)[0]
    print(f"{name:<36} logits: std {z.std():.0e}   initial BCE {bce:.2f}")

# %% [markdown] translates="fcad2ae23cb5"
# 原文的 U-Net 一开始的损失保留两位小数就是 $\ln 2$：经过 23 个用 Glorot 初始化的层之后，它的 logit 约为 $10^{-2}$。按 0-255 输入图像，输入就大了 255 倍；logit 的离散程度从约 $10^{-2}$ 增大到约 2，损失一开始就远高于 $\ln 2$，在许多像素上错得很有把握。He 网络的信号在各层之间保持大小不变，它一开始也高于 $\ln 2$，但这不是 bug：第 0 步的检查问的是"大约是 $\ln 2$，还是大好几倍？"，而不是要精确到三位小数。它要抓的是第 0 步损失为 5 或 50 的情况：输入的范围不对、权重大得离谱、输出层饱和。
#
# **在一个批次上过拟合。** 一个什么都能学的网络，一定能记住两张图像。如果一个固定批次的损失在一百步左右还降不到接近零，那就是哪里坏了（某个反向传播、优化器里的一个符号、一个被冻结的层），再多的数据也无济于事。这里用一个小 U-Net、Adam、两张 $32 \times 32$ 的膜结构图像，不用 Dropout，也不做数据增强：

# %%
xb, tb = data.load("membranes", n=2, size=32)
tiny = UNet(input_shape=(32, 32, 1), base_filters=16, depth=2, dropout=0, kernel_initializer="he_normal", seed=0)
opt = Adam(learning_rate=3e-3)
losses = []
for step in range(80):
    z = tiny.forward(xb, training=True, logits=True)
    value, dz = binary_crossentropy(z, tb, from_logits=True)
    tiny.backward(dz)
    opt.apply(tiny.params, tiny.grads)
    losses.append(value)

fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
ax.semilogy(range(1, 81), losses, color=plt.cm.viridis(0.3), label="BCE of the batch")
ax.axhline(math.log(2), color="0.4", ls="--", lw=1, label="ln 2")
ax.set(xlabel="Adam step (learning rate 3e-3)", ylabel="binary cross-entropy (log)",
       title="Overfitting two images: the loss falls below 1e-3 in 80 steps")
ax.legend(fontsize=8); fig.tight_layout(); plt.show()
for step in (1, 20, 40, 60, 80):
    print(f"step {step:>2}: loss below {10.0 ** math.ceil(math.log10(losses[step - 1])):.0e}")
print("loss after 80 steps below 1e-3:", losses[-1] < 1e-3)

# %% [markdown] translates="0cf534bc22db"
# **本章练习**（每道练习写一个更新规则、一对前向/反向传播或一个初始化函数）：
# 1. `sgd_momentum_step`（Keras 的带动量 SGD；检查能认出：PyTorch 的约定、动量乘在 $w$ 上、符号反了）；2. `adam_step`（Keras 的 Adam；没有偏差修正、$\epsilon$ 在根号里、PyTorch 的 $\epsilon$、$t$ 从 0 开始）；3. `dropout_forward` / `dropout_backward`（没有重新缩放、乘以 $1 - p$ 或除以 $p$、推理时也做、反向传播时重抽掩码）；4. `compute_fans`（没有乘感受野、扇入扇出对调）；5. `he_normal` 和 6. `glorot_uniform`（扇入扇出算错、正态与均匀分布混淆、没有截断或没有修正、用了全局随机数生成器）。
