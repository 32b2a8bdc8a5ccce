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

# %% [markdown] translates="9974056cf394"
# # 05 · 贯穿整个 U-Net 的反向传播
#
# **要你实现的：** 整个网络的反向传播（backpropagation），一层一层写出来：沿解码器（decoder）往下的链式法则（chain rule）；拼接（concatenation）把梯度切成两份，一份沿上采样（upsampling）的路径往下传，一份穿过跳跃连接（skip connection）；还有 U-Net 的反向传播与普通链式结构唯一不同的地方：在编码器（encoder）的每一层，**穿过跳跃连接**传来的梯度要与**沿收缩路径（contracting path）传回**的梯度**相加**。
#
# **要你验证的：**
# 1. 反向传播的实际过程：在 `UNet.backward`（`model.py`）运行时，记录到达每一层的梯度；
# 2. 形状：每个激活值及其梯度，逐层列成一张表；
# 3. 在 float64 下把整个反向传播与中心差分（central differences，`unet_scratch.gradcheck`）对照，抽查每个参数和输入的若干元素；
# 4. 梯度流向哪里：每一层梯度的大小，以及编码器的每一层有多少梯度是通过跳跃连接得到的。
#
# 练习中你要写中心差分、梯度检验（gradient check）用的相对误差（relative error）、一个迷你 U 形网络的反向传播，然后**用真实 U-Net 的各个模块拼装出它的前向传播（forward pass）和反向传播**；检查会说出典型错误的名字（单侧差分、忘了跳跃连接的梯度、跳跃连接配错了层、拼接的两半对调、Dropout 停留在训练模式……）。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow, should anything import it
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small matrices: one BLAS thread is faster, and far
                                                   # faster on a busy 2-core CPU (threads wait on each other)

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.gradcheck import numeric_gradient, rel_error, sample_indices

rng = np.random.default_rng(0)


# %% [markdown] translates="2cee8587030d"
# ## 1. 链式法则，逐层应用
#
# 网络是一个复合函数 $y = f_K(\dots f_2(f_1(x; \theta_1); \theta_2) \dots; \theta_K)$。记 $a_k = f_k(a_{k-1})$ 为激活值（$a_0 = x$），$\delta_k = \partial L / \partial a_k$ 为损失对它们的梯度。反向走时，每一层把它输出的梯度变成它输入的梯度和它参数的梯度：
#
# $$\delta_{k-1} = \Big(\frac{\partial a_k}{\partial a_{k-1}}\Big)^{\!\top} \delta_k, \qquad
# \frac{\partial L}{\partial \theta_k} = \Big(\frac{\partial a_k}{\partial \theta_k}\Big)^{\!\top} \delta_k .$$
#
# `layer.backward(dy)` 做的就只有这些（第 01 到 04 章为每种层写好了它：卷积（convolution）的 $\delta_{k-1}$ 是与翻转后的卷积核（kernel）做的全互相关（full cross-correlation），也就是与 $w$ 做的真正卷积，池化（pooling）把 $\delta$ 交给每个窗口的最大值，转置卷积（transposed convolution）的是一次带步幅（stride）的卷积，拼接则把它切开）。雅可比矩阵从来不显式构造；每个反向传播都直接作用 $J^\top$。注意 $\delta_k$ 的形状总是**与 $a_k$ 相同**：每个激活值对应一个梯度值。
#
# **U 不是一条链。** 在编码器第 $\ell$ 层，两次卷积的输出 $e_\ell$ 被用了两次：它经过池化送往下一层，$p_\ell = \text{pool}(e_\ell)$；它还穿过跳跃连接送到解码器第 $\ell$ 层，在那里（裁剪（crop）后）参与拼接，$c_\ell = [\,u_\ell \mid e_\ell\,]$。多元链式法则要对从 $e_\ell$ 到 $L$ 的每一条路径求和：
#
# $$\frac{\partial L}{\partial e_\ell} \;=\; \underbrace{\text{pool}^\top\!\Big(\frac{\partial L}{\partial p_\ell}\Big)}_{\text{back up the contracting path}}
# \;+\; \underbrace{\text{crop}^\top\!\Big(\Big[\frac{\partial L}{\partial c_\ell}\Big]_{\,\dots,\;C_u:}\Big)}_{\text{back across the skip}} .$$
#
# 所以反向传播必须**先**走解码器（收集每个跳跃连接的梯度），再走瓶颈层（bottleneck），然后从最深的一层往上走编码器，一边走一边加上每一层跳跃连接的梯度。在 `model.py` 中，`DecoderBlock.backward` 返回 `(dx, dskip)`，`EncoderBlock.backward(dpooled, dskip)` 执行 `dh = self.pool.backward(dpooled) + dskip`；练习 4 和 5 要你自己用这些模块拼装出前向和反向两个过程。
#
# 为了*看到*反向传播，下面的单元格在运行 `model.backward` 时从旁"监听"：它包装每一层的 `backward`，记录到达该层输出的梯度；也包装每个编码器模块的 `backward`，记录 $\partial L / \partial e_\ell$ 的两项（池化对下方传回的梯度做的反向传播，以及跳跃连接的梯度）；最后把包装拆掉。需要时，它还会把跳跃连接那一项换成零（第 4 节会用到）。

# %%
def record_backward(model, dy, cut_skip_gradients=False):
    '''model.backward(dy) while recording {layer name: dL/d(its output)} and, per encoder level, the norms of
    the two terms of dL/de: (up the contracting path, across the skip). Returns dL/dx, the two records.'''
    grad_out, paths = {}, {}
    wrapped = []

    def listen(layer):
        original = layer.backward
        def backward(d):
            grad_out[layer.name] = d
            return original(d)
        layer.backward = backward                       # an instance attribute hides the method
        wrapped.append(layer)

    def join(level, block):
        original = block.backward
        def backward(dpooled, dskip):
            if cut_skip_gradients:
                dskip = np.zeros_like(dskip)
            paths[level] = (np.linalg.norm(block.pool.backward(dpooled)), np.linalg.norm(dskip))
            return original(dpooled, dskip)
        block.backward = backward
        wrapped.append(block)

    for layer in model.layers:
        listen(layer)
    for level, block in enumerate(model.encoder, start=1):
        join(level, block)
    try:
        dx = model.backward(dy)
    finally:
        for obj in wrapped:
            del obj.backward                            # back to the class's method
    return dx, grad_out, paths


# %% [markdown] translates="f001c7fad4f3"
# 一个小 U-Net（深度 3，最上层 4 个滤波器（filter），没有 Dropout，因此没有任何随机性），输入四张 $32 \times 32$ 的膜结构图像，损失取二元交叉熵（binary cross-entropy）。监听不能改变任何东西：记录下来的这次运行与直接调用 `model.backward` 得到的梯度必须相同。

# %%
model = UNet(input_shape=(32, 32, 1), base_filters=4, depth=3, dropout=0, seed=0)
x, t = data.load("membranes", n=4, size=32)
p = model.forward(x)
loss, dp = binary_crossentropy(p, t)                     # dL/dp, shaped like p

dx_package = model.backward(dp)
grads_package = {k: g.copy() for k, g in model.grads.items()}
dx_recorded, grad_out, paths = record_backward(model, dp)   # the forward cache is still there

print("dL/dx identical:", np.array_equal(dx_recorded, dx_package))
print("all", len(grads_package), "parameter gradients identical:",
      all(np.array_equal(model.grads[k], g) for k, g in grads_package.items()))
print("a gradient recorded for every layer:", len(grad_out) == len(model.layers))

# %% [markdown] translates="6158439497b2"
# ## 2. 逐层的形状
#
# 每个激活值，以及反向传播时到达它的梯度（批大小（batch size）$N = 4$）。梯度一栏读的是 `record_backward` 记录下来的数组的形状，而不是根据模型的形状推算出来的：从上往下读是前向传播，从下往上读是反向传播。拼接是唯一一种梯度分成两份离开的层；切分出的通道（channel）数在最后一栏。

# %%
n = x.shape[0]
rows = []
for layer in model.layers:
    act = (n, *layer.output_shape[1:])
    grad = grad_out[layer.name].shape
    pshapes = ", ".join(f"d{k}{tuple(g.shape)}" for k, g in layer.grads.items())
    if type(layer).__name__ == "Concatenate":
        pshapes = "split -> d_up" + str((n, *layer.input_shape[0][1:])) + " + d_skip" + str((n, *layer.input_shape[1][1:]))
    rows.append((layer.name, type(layer).__name__, act, grad, pshapes))

print(f"{'layer':<18}{'type':<17}{'activation a':<18}{'gradient dL/da':<18}{'parameter gradients / split'}")
print("-" * 110)
for name, kind, act, grad, pshapes in rows:
    print(f"{name:<18}{kind:<17}{str(act):<18}{str(grad):<18}{pshapes}")
print("-" * 110)
print("every gradient has its activation's shape:", all(act == grad for _, _, act, grad, _ in rows))
print("every parameter gradient has its parameter's shape:",
      all(model.grads[k].shape == model.params[k].shape for k in model.params))

# %% [markdown] translates="c73546580c68"
# ## 3. 验证：对整个网络做 float64 梯度检验
#
# 中心差分 $\frac{\partial L}{\partial \theta_i} \approx \frac{L(\theta + h e_i) - L(\theta - h e_i)}{2h}$ 有两种误差：截断误差 $O(h^2)$；舍入误差，约为 $\epsilon_{\text{mach}} |L| / h$，即 $L$ 本身的舍入误差被除法放大。在 float64 下（$\epsilon_{\text{mach}} \approx 2 \times 10^{-16}$），$h = 10^{-5}$ 让两者大致平衡；在 float32 下（$\epsilon_{\text{mach}} \approx 10^{-7}$），光是舍入误差就会淹没梯度，所以梯度检验要在 float64 下做，模型也沿用传给它的数据类型（`dtype="float64"`）。
#
# 有两点要提防。ReLU 和最大池化（max-pooling）都有折点：如果 $\theta \pm h$ 落在某个折点的两侧，出错的是有限差分，而不是梯度（在下面试试 $h = 10^{-4}$：有一个偏置（bias）越过了折点，它的误差跳到 $10^{-2}$）。随机的非零偏置（而不是 Keras 默认的零）让激活前的值远离 0，也让池化中不大可能出现并列。损失是真实的损失：sigmoid 输出的二元交叉熵，对所有像素求和。度量用本库的 `rel_error`，$\|a - b\| / (\|a\| + \|b\|)$，在每个张量被抽查的元素上计算；本课程对 float64 检验的阈值是 $10^{-7}$。

# %%
net = UNet(input_shape=(16, 16, 1), base_filters=2, depth=2, dropout=0, dtype="float64", seed=0)
for name in net.params:
    if name.endswith("/bias"):
        net.params[name] = 0.1 * rng.standard_normal(net.params[name].shape)
xg = rng.standard_normal((2, 16, 16, 1))
tg = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float64)

def total_loss(_):
    '''Summed BCE of the network's output; numeric_gradient perturbs one entry in place and calls this.'''
    out = net.forward(xg)
    return binary_crossentropy(out, tg)[0] * out.size

out = net.forward(xg)
_, dout = binary_crossentropy(out, tg)
dx_analytic = net.backward(dout * out.size)
analytic = {k: g.copy() for k, g in net.grads.items()}

errors = {}
for name, param in net.params.items():
    idx = sample_indices(param.shape, 6, rng)
    num = numeric_gradient(total_loss, param, h=1e-5, indices=idx)
    errors[name] = rel_error([analytic[name][i] for i in idx], [num[i] for i in idx])
idx = sample_indices(xg.shape, 20, rng)
num = numeric_gradient(total_loss, xg, h=1e-5, indices=idx)
errors["input x"] = rel_error([dx_analytic[i] for i in idx], [num[i] for i in idx])

worst = max(errors.values())
print("tensors checked:", len(errors), "(every parameter of", len(net.params), "and the input)")
print("worst relative error below the course's threshold 1e-7:", worst < 1e-7)

# %%
names = list(errors)
fig, ax = plt.subplots(figsize=(9, 3.4), dpi=100)
ax.bar(range(len(names)), [max(errors[k], 1e-16) for k in names], color=plt.cm.viridis(0.35))
ax.axhline(1e-7, color="0.3", ls="--", lw=1); ax.text(len(names) - 0.5, 1.4e-7, "threshold 1e-7", ha="right", fontsize=8)
ax.set_yscale("log"); ax.set_ylim(1e-13, 1e-5)
ax.set_xticks(range(len(names))); ax.set_xticklabels(names, rotation=70, fontsize=7)
ax.set_ylabel("relative error (analytic vs numeric)")
ax.set_xlabel("tensor (sampled entries)")
ax.set_title("Float64 gradient check of a depth-2 U-Net: every tensor below the 1e-7 threshold")
fig.tight_layout(); plt.show()

# %% [markdown] translates="fac337f42a58"
# ## 4. 梯度流向哪里
#
# 回到第 1 节那个深度为 3 的模型。左图：每个卷积核梯度的大小，按前向传播经过各层的顺序排列（沿 U 往下，再往上）。右图：在编码器的每一层，$\partial L / \partial e_\ell$ 的两项各有多大：沿收缩路径传回的梯度，以及穿过跳跃连接传来的梯度。跳跃连接是从损失通往编码器的一条**捷径**：在最上层，梯度经过 3 个带权重的层就能到达，而经过瓶颈层的路径要穿过 16 个，这就是第 04 章里不带跳跃连接的网络迟迟学不起来的原因。

# %%
kernels = [k for k in model.params if k.endswith("/kernel")]
rms = [np.sqrt(np.mean(grads_package[k] ** 2)) for k in kernels]
levels = sorted(paths)

fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100, gridspec_kw=dict(width_ratios=[2, 1]))
colors = [plt.cm.viridis(0.15 if k.startswith("enc") else 0.5 if k.startswith("bottleneck") else 0.8) for k in kernels]
ax[0].bar(range(len(kernels)), rms, color=colors)
ax[0].set_yscale("log"); ax[0].set_xticks(range(len(kernels)))
ax[0].set_xticklabels([k.replace("/kernel", "") for k in kernels], rotation=70, fontsize=7)
ax[0].set_ylabel("RMS of dL/dW (loss units per weight)")
ax[0].set_xlabel("layer, in forward order (down the U, then up)")
ax[0].set_title("Gradient size per layer (encoder dark, bottleneck mid, decoder light)", fontsize=10)
w = 0.38
ax[1].bar(np.array(levels) - w / 2, [paths[l][0] for l in levels], w, color=plt.cm.viridis(0.2), label="up the contracting path")
ax[1].bar(np.array(levels) + w / 2, [paths[l][1] for l in levels], w, color=plt.cm.viridis(0.75), label="across the skip")
ax[1].set_yscale("log"); ax[1].set_xticks(levels)
ax[1].set_xlabel("encoder level (1 = top)"); ax[1].set_ylabel("norm of the term of dL/de")
ax[1].set_title("The two terms of dL/de at each level", fontsize=10)
ax[1].legend(fontsize=8)
fig.tight_layout(); plt.show()

# %% [markdown] translates="d0d65699053f"
# 如果只在反向传播中切断跳跃连接（解码器仍然*看得到*跳跃连接，只是丢掉它们的梯度），第一层的梯度会怎样：这时编码器只能通过瓶颈层学习。

# %%
model.forward(x)
record_backward(model, dp, cut_skip_gradients=True)
ratio = np.linalg.norm(grads_package["enc1_conv1/kernel"]) / np.linalg.norm(model.grads["enc1_conv1/kernel"])
print("top level: the skip's term is larger than the contracting path's:", paths[1][1] > paths[1][0])
print("enc1_conv1's gradient is over 100 times larger with the skips' gradient than without:", ratio > 100)

# %% [markdown] translates="6891490b70c9"
# ## 练习
#
# 每道练习都配有一个检查函数：它在若干测试用例上运行你的答案，并指出哪里不对。

# %% [markdown] translates="454ae7b8a593"
# **练习 1.** 写出 `central_difference(f, x, h)`：标量函数 `f` 在数组 `x` 处的梯度，逐个元素计算 $(f(x + h e_i) - f(x - h e_i)) / 2h$，返回形状与 `x` 相同的数组。要原地扰动 `x`（它可能是模型权重的一个视图），并把每个元素放回原值。检查会与精确梯度比较：*前向*差分 $(f(x + h e_i) - f(x)) / h$ 只精确到 $O(h)$，通不过。提示：`np.ndindex(*x.shape)` 会遍历每个下标。算例：$f(x) = \sum x^3$ 在 $x = [1, 2]$ 处、$h = 10^{-5}$ 时得 $[3.0000000001, 12.0000000001]$（精确梯度 $3x^2$ 为 $[3, 12]$；中心差分的误差是 $h^2 = 10^{-10}$，前向差分的误差是 $3xh \approx 3 \times 10^{-5}$）。

# %%
from unet_scratch.exercises.ch05 import check_central_difference, check_rel_error, check_mini_unet_backward

def central_difference(f, x, h):
    """f: array -> float; x: any shape (perturbed in place, then restored); h: step -> gradient shaped like x."""
    ### BEGIN SOLUTION
    grad = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad
    ### END SOLUTION

check_central_difference(central_difference);


# %% [markdown] translates="615d732a312c"
# **练习 2.** 写出 `relative_error(a, b)`：用 Frobenius 范数计算 $\|a - b\| / \max(\|a\| + \|b\|, 10^{-30})$，即本章梯度检验的度量。它必须对称，取值在 $[0, 1]$ 内，两者都为零时给出 0（而不是 `nan`）。算例：$a = [3, 4]$，$b = [3, 4.1]$：$\|a - b\| = 0.1$，$\|a\| + \|b\| = 5 + 5.080$，所以相对误差为 $0.00992$。

# %%
def relative_error(a, b):
    """a, b: arrays of the same shape -> float in [0, 1]."""
    ### BEGIN SOLUTION
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))
    ### END SOLUTION

check_rel_error(relative_error);


# %% [markdown] translates="62c89ddde66f"
# **练习 3.** 一个迷你 U-Net，处理的是向量而不是图像：一个编码器、一个瓶颈层和一个解码器，解码器把编码器的输出（跳跃连接）拼接在瓶颈层的输出之后，即 `[up, skip]`：
#
# $$h = \operatorname{relu}(x W_1), \qquad b = \operatorname{relu}(h W_2), \qquad y = [\,b \mid h\,]\, W_3 .$$
#
# 写出 `mini_unet_backward(x, w1, w2, w3, dy)`，对 $L = \sum y \odot \delta$（$\delta$ = `dy`）返回 `(dx, dw1, dw2, dw3)`。形状：`x` $(N, D)$，`w1` $(D, H_1)$，`w2` $(H_1, H_2)$，`w3` $(H_2 + H_1, K)$，`dy` $(N, K)$。这就是第 1 节的分叉：$h$ 被用了两次，所以它的梯度是瓶颈层和跳跃连接两份梯度之和：把 $\delta_c = \delta\, W_3^\top$ 切分为 $[\delta_b \mid \delta_h^{\text{skip}}]$（先 $H_2$ 列，再 $H_1$ 列），则 $\partial L / \partial h = (\delta_b \odot [b > 0])\, W_2^\top + \delta_h^{\text{skip}}$，然后再乘以掩码 $[h > 0]$。

# %%
def mini_unet_backward(x, w1, w2, w3, dy):
    """x (N, D), w1 (D, H1), w2 (H1, H2), w3 (H2 + H1, K), dy (N, K) -> (dx, dw1, dw2, dw3), shaped like them."""
    ### BEGIN SOLUTION
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    dcat = dy @ w3.T
    dw3 = np.concatenate([b, h], axis=1).T @ dy
    db, dh_skip = dcat[:, :b.shape[1]], dcat[:, b.shape[1]:]
    db_pre = db * (b > 0)
    dw2 = h.T @ db_pre
    dh_pre = (db_pre @ w2.T + dh_skip) * (h > 0)
    return dh_pre @ w1.T, x.T @ dh_pre, dw2, dw3
    ### END SOLUTION

check_mini_unet_backward(mini_unet_backward);

# %% [markdown] translates="388c5b480ce1"
# **练习 4.** 用 U-Net 的各个模块拼装出它的**前向**传播（推理：关掉 Dropout）。写出 `unet_forward(model, x)`：`model` 是按原文的选项构建的 `UNet`（按 `[up, skip]` 拼接，上卷积（up-convolution）用转置卷积），`x` $(N, H, W, C)$ $\to$ 输出层的输出 $(N, H', W', K)$：
#
# * 编码器：对 `model.encoder` 中的每个 `block`（最上层在前），`skip, h = block.forward(h, training=False)`；保存每一个 `skip`；
# * 瓶颈层：`h = model.bottleneck.forward(h, training=False)`；
# * 解码器，每个模块都按层展开来写：`up = block.upconv(h)`；如果 `block.crop is not None`（valid 填充（padding）），`skip = block.crop(skip)`；`h = block.concat([up, skip])`；`h = block.conv2(block.conv1(h))`。`model.decoder` 从**最深**的一层开始，所以它要按倒序取跳跃连接；
# * 输出层：`model.head(h)`。
#
# 每一层都会保存它的反向传播所需的东西（它的缓存），所以紧接着就可以做练习 5。检查会在三个小的 float64 U-Net（深度 2 和 3，same 和 valid 填充，Dropout 0.5）上运行你的函数，并与 `UNet.forward` 比较。

# %%
from unet_scratch.exercises.ch05 import check_unet_backward, check_unet_forward

def unet_forward(model, x):
    """model: a UNet (article options); x: (N, H, W, C) -> y: (N, H', W', K), the head's output, dropout off."""
    ### BEGIN SOLUTION
    skips, h = [], x
    for block in model.encoder:
        skip, h = block.forward(h, training=False)
        skips.append(skip)
    h = model.bottleneck.forward(h, training=False)
    for block, skip in zip(model.decoder, reversed(skips)):
        up = block.upconv(h)
        if block.crop is not None:
            skip = block.crop(skip)
        h = block.concat([up, skip])
        h = block.conv2(block.conv1(h))
    return model.head(h)
    ### END SOLUTION

check_unet_forward(unet_forward);


# %% [markdown] translates="2f92c67fae6b"
# **练习 5.** 现在是**反向**传播，在一次前向传播之后运行：`unet_backward(model, dy)` 接收 $\delta$ = `dy` = $\partial L / \partial y$（形状与输出相同），调用各层和各模块的 `backward` 填好 `model.grads`，并返回 $\partial L / \partial x$（形状与 `x` 相同）。按第 1 节的顺序：
#
# * 输出层：`dh = model.head.backward(dy)`；
# * 解码器从**最上层**（紧挨输出层）往下，每个模块按层展开来写：`dh = block.conv1.backward(block.conv2.backward(dh))`，然后是拼接的切分 `dup, dskip = block.concat.backward(dh)`（按前向传播的顺序 `[up, skip]`），有裁剪时做裁剪的粘贴 `dskip = block.crop.backward(dskip)`，再 `dh = block.upconv.backward(dup)`；保存每一个 `dskip`；
# * 瓶颈层：`dh = model.bottleneck.backward(dh)`；
# * 编码器从**最深**的一层往上：`dh = block.backward(dh, dskip)`，传入这一层跳跃连接的梯度，模块会把它加到池化的梯度上（即分叉处）。
#
# 检查会把返回的 `dx` 以及 `model.grads` 中的每个梯度与 `UNet.backward` 比较。

# %%
def unet_backward(model, dy):
    """dy: (N, H', W', K) = dL/dy after model.forward(x) -> dL/dx: (N, H, W, C); fills model.grads."""
    ### BEGIN SOLUTION
    dh = model.head.backward(dy)
    dskips = []
    for block in reversed(model.decoder):            # the top level first
        dh = block.conv1.backward(block.conv2.backward(dh))
        dup, dskip = block.concat.backward(dh)
        if block.crop is not None:
            dskip = block.crop.backward(dskip)
        dskips.append(dskip)                         # level 1, 2, ..., depth
        dh = block.upconv.backward(dup)
    dh = model.bottleneck.backward(dh)
    for block, dskip in zip(reversed(model.encoder), reversed(dskips)):
        dh = block.backward(dh, dskip)               # the pool's gradient + the skip's
    return dh
    ### END SOLUTION

check_unet_backward(unet_backward);

# %% [markdown] translates="8de251028225"
# **本章练习：** 1. `central_difference`（数值梯度，并恢复权重），2. `relative_error`（梯度检验的度量），3. `mini_unet_backward`（迷你 U：拼接的切分，以及在分叉处加上跳跃连接的梯度），4. `unet_forward` 和 5. `unet_backward`（用各个模块拼装出真实的 U-Net）。检查能认出的错误：单侧（前向或后向）差分、除以 $h$ 而不是 $2h$（练习 1）；没有防止 $0 / 0$、只除以 $\|a\|$、逐元素的度量、完全没有除法（练习 2）；忘了跳跃连接的梯度、拼接的两半对调、在 ReLU 的掩码之后才加跳跃连接的梯度（练习 3）；跳跃连接配错了层、两半对调、Dropout 处于训练模式（练习 4）；忘了跳跃连接的梯度、配错了层、切分的两半对调、漏掉裁剪的反向传播（练习 5）。
