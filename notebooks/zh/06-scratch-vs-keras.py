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

# %% [markdown] translates="528fe67f9374"
# # 06 · 从零实现对照 Keras：整个 U-Net，逐层、逐步
#
# **要你搭的：** 把原文的 U-Net 搭两遍：一遍从零实现（`unet_scratch.UNet`），一遍用 Keras 3（`unet_scratch.keras_ref.build_keras_unet`），两边用同一套权重。**要你验证的：** 两边一致——
# 1. 逐个权重一致：把权重**双向**搬运（`to_keras`、`from_keras`）之后，按名字逐个比较；
# 2. 逐层一致：用一份**数值一致报告**（parity report）列出每一层的输出和每个权重的梯度（`unet_scratch.parity.compare`），并画成图；
# 3. 逐步一致：两边用 SGD 和 Adam **逐步对照训练**（lockstep training，`parity.lockstep`）时，每一步都一致。
#
# 顺带你会弄明白：为什么比较梯度要用*教师强制*（teacher forcing）的方式（最大池化（max-pooling）里 float32 的近似并列），以及那些在 Keras 3 上报错的 Keras 2 写法究竟从哪里来（不是来自原文，而是来自原文代码所沿用的那个 Keras U-Net 仓库）。
#
# 我们用**全宽**的网络（顶层 64 个滤波器（filter），深度 4：即原文那 3100 万个参数（parameter）），输入却是 32x32 的小图，所以在笔记本电脑的 CPU 上，一切都能在几秒钟内跑完；只有第 6 节的训练换用一个更窄的同构网络。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data
from unet_scratch.keras_ref import (import_tensorflow, import_keras, build_keras_unet, to_keras, from_keras,
                                    compare, lockstep, FORWARD_ATOL, GRAD_RTOL)
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)   # Python, NumPy and TensorFlow seeds in one call
rng = np.random.default_rng(0)
SIZE = 32                        # divisible by 2**4 = 16, as a depth-4 'same' U-Net needs

# %% [markdown] translates="3c471af4b397"
# ## 1. 同一个网络，搭两遍
#
# `build_keras_unet(input_shape)` 就是原文的 `unet(input_shape)` 函数（原文 5.2 节；它的代码一直到
# `tf.keras.Model(inputs=[inputs], outputs=[outputs])` 都能在 Keras 3 上原样运行），只是每一层都取了与从零实现中对应层相同的名字。`UNet` 是我们的 NumPy 模型。两者都用原文的默认设置：第 $\ell$ 层是 $64 \cdot 2^{\ell - 1}$ 个滤波器的 $3 \times 3$ ReLU
# 卷积（convolution），$2 \times 2$ 最大池化，Dropout 0.5，$2 \times 2$、步幅（stride）为 2 的转置卷积（transposed convolution），以及 $1 \times 1$ 的 sigmoid 输出层。模型是全卷积网络（fully convolutional network），参数个数与图像大小无关：在 $32 \times 32$ 上也是原文的 31,030,593 个。

# %%
model = UNet(input_shape=(SIZE, SIZE, 1), seed=0)                  # NumPy, our own initialisation
kmodel = build_keras_unet(input_shape=(SIZE, SIZE, 1), seed=0)     # Keras, Keras's initialisation
print("scratch parameters:", f"{model.count_params():,}")
print("Keras parameters:  ", f"{kmodel.count_params():,}")
print("same count:", model.count_params() == kmodel.count_params() == 31_030_593)

# %% [markdown] translates="f671e17504d9"
# ## 2. 名字的对应关系
#
# 在两个框架之间搬运权重，需要一条规则来说明哪个数组放到哪里。我们的规则再简单不过：每个 Keras 层都与它在从零实现中的对应层同名，所以 Keras 变量的 `path`（`"enc1_conv1/kernel"`）*就是*从零实现中参数的名字。布局也相同（本课程与 Keras 一样，张量用 NHWC，卷积核（kernel）用 HWIO），所以没有哪个数组需要转置：
#
# | 层 | 从零实现的 `params[...]` | Keras 变量 | 形状 |
# |---|---|---|---|
# | `Conv2D` | `"enc1_conv1/kernel"`、`"enc1_conv1/bias"` | `layer.kernel`、`layer.bias` | $(K_H, K_W, C_{in}, F)$、$(F,)$ |
# | `Conv2DTranspose` | `"dec4_upconv/kernel"` | `layer.kernel` | $(K_H, K_W, F, C_{in})$：输出通道（channel）在输入通道**之前** |
# | `MaxPooling2D`、`Dropout`、`Concatenate` | 无 | 无 | |
#
# 从 PyTorch 搬运权重时，布局才会坑人：它的 `Conv2d` 权重是 $(F, C_{in}, K_H, K_W)$（练习 1），`ConvTranspose2d` 的权重是
# $(C_{in}, F, K_H, K_W)$。下面是由两个模型生成的完整对照表：

# %%
kvars = {v.path: v for v in kmodel.trainable_variables}
klayer = {l.name: type(l).__name__ for l in kmodel.layers}
print(f"{'scratch parameter':<26}{'shape':<20}{'Keras layer (type)':<36}{'same shape'}")
for name, p in model.params.items():
    if name.endswith("/kernel"):
        layer = name.split("/")[0]
        v = kvars[name]
        print(f"{name:<26}{str(p.shape):<20}{layer + ' (' + klayer[layer] + ')':<36}{tuple(v.shape) == p.shape}")
print("... and a '/bias' of shape (F,) beside every kernel")
print("scratch names == Keras variable paths, in the same order:",
      list(model.params) == [v.path for v in kmodel.trainable_variables])

# %% [markdown] translates="5eac058a54f1"
# ## 3. 权重双向搬运
#
# `to_keras(model, kmodel)` 把从零实现中的每个数组赋给同名的 Keras 变量；`from_keras(kmodel)` 按 Keras 模型的配置新建一个从零实现的
# `UNet`，再把权重复制进去。两者在复制任何东西之前，都先核对每一个名字和形状。搬运之后权重**逐位相同**，所以之后出现的任何差别都来自计算，而不是来自复制。

# %%
x = data.load("membranes", "train", n=2, size=SIZE)[0]          # (2, 32, 32, 1) float32 in [0, 1]

to_keras(model, kmodel)                                           # scratch -> Keras
same = all(np.array_equal(model.params[v.path], v.numpy()) for v in kmodel.trainable_variables)
print("scratch -> Keras, weights bit-identical:", same)

other = build_keras_unet(input_shape=(SIZE, SIZE, 1), seed=1)    # different weights ...
back = from_keras(other)                                          # ... Keras -> a new scratch model
same = all(np.array_equal(back.params[v.path], v.numpy()) for v in other.trainable_variables)
print("Keras -> scratch, weights bit-identical:", same)
print("rebuilt with the same configuration:", back.get_config() == model.get_config())

y_s, y_k = back.forward(x), other([x], training=False).numpy()
print(f"outputs agree (rtol = atol = {FORWARD_ATOL:g}):", np.allclose(y_s, y_k, rtol=FORWARD_ATOL, atol=FORWARD_ATOL))
try:                                                              # a half-width model does not fit
    to_keras(UNet(input_shape=(SIZE, SIZE, 1), base_filters=32, seed=0), kmodel)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown] translates="cbea8b716890"
# ## 4. 数值一致报告
#
# `compare(model, kmodel, x, y)` 让两个网络在同一批数据上运行，记录两边**每一层**的输出（共 33 个），再让同样的二元交叉熵（binary cross-entropy）在两边反向传播（backpropagation），比较每个权重的梯度（共 46 个数组，Keras 一边来自 `tf.GradientTape`）：
#
# * 一层的输出在 `np.allclose(scratch, keras, rtol=1e-5, atol=1e-5)` 时通过；
# * 一个梯度在 $\lVert g_{\text{scratch}} - g_{\text{keras}} \rVert / \lVert g_{\text{keras}} \rVert \le 10^{-4}$ 时通过。
#
# 结果是一个 `ParityReport`：`print(report)` 给出表格，`.verdict()` 给出一行结论，`.to_dict()` 给出普通的 Python 数据（可以写进 CI 日志或 JSON 文件），`.plot()` 画一张速览图。表格里是原始误差，最后几位数字因机器而异，所以测试不比较那个单元格的输出（`# NBVAL_IGNORE_OUTPUT`），而比较它后面的结论。这份结论比报告的通过规则更严：它要求每一层的输出在 $10^{-6}$ 以内一致，每个梯度的相对误差（relative error）在 $10^{-5}$ 以内；这两个界远高于实际看到的误差，所以输出的文字在每台机器上都一样。

# %%
y = data.load("membranes", "train", n=2, size=SIZE)[1]           # the membrane masks, {0, 1}
report = compare(model, kmodel, x, y)

# %%
# NBVAL_IGNORE_OUTPUT
print(report)


# %%
def stable_verdict(report):
    # booleans against bounds well above the errors seen: text that does not change between machines
    d = report.to_dict()
    fwd = [r for r in d["rows"] if r["kind"] == "forward"]
    grd = [r for r in d["rows"] if r["kind"] == "gradient"]
    return {"passed": d["passed"],
            "layer outputs compared": len(fwd),
            "weight gradients compared": len(grd),
            "every layer output within 1e-6": max(r["max_abs"] for r in fwd) < 1e-6,
            "every gradient within 1e-5 relative": max(r["rel"] for r in grd) < 1e-5,
            "loss agrees to 1e-6": abs(report.loss_scratch - report.loss_keras) < 1e-6 * report.loss_keras}

verdict = stable_verdict(report)
for k, v in verdict.items():
    print(f"{k}: {v}")
again = stable_verdict(compare(model, kmodel, x, y))             # the same verdict on a second run
print("same verdict on a second run:", again == verdict)

# %% [markdown] translates="f4e930f43352"
# 下图把 `report.to_dict()` 中的误差与两组界画在一起：报告的通过规则（实线）和上面那份结论更严的界（点线）。对数坐标轴画不出恰好为 0
# 的误差，所以这些层在底部用单独的标记画出，图例里注明了。

# %%
rows = report.to_dict()["rows"]
fwd = [r for r in rows if r["kind"] == "forward"]
grd = [r for r in rows if r["kind"] == "gradient" and r["name"].endswith("/kernel")]
where = {r["name"]: i for i, r in enumerate(fwd)}
series = [("layer output: max |scratch - Keras|", list(range(len(fwd))), [r["max_abs"] for r in fwd], "o", 0.25),
          ("kernel gradient: relative error", [where[r["name"].split("/")[0]] for r in grd],
           [r["rel"] for r in grd], "s", 0.75)]
ZERO_AT = 1e-11                                       # where an exact 0 is drawn on the log axis
fig, ax = plt.subplots(figsize=(11, 4.2), dpi=100)
for label, xs, errs, marker, colour in series:
    xs, errs = np.array(xs), np.array(errs)
    ax.semilogy(xs[errs > 0], errs[errs > 0], marker, ms=4, color=plt.cm.viridis(colour), label=label)
    if np.any(errs == 0):
        ax.semilogy(xs[errs == 0], np.full(np.sum(errs == 0), ZERO_AT), "v", ms=6, mfc="none",
                    color=plt.cm.viridis(colour), label=f"{label.split(':')[0]}: exactly 0 (drawn at {ZERO_AT:g})")
ax.axhline(FORWARD_ATOL, color=plt.cm.viridis(0.25), lw=1, label=f"report: outputs pass at atol {FORWARD_ATOL:g} (+ rtol {FORWARD_ATOL:g})")
ax.axhline(GRAD_RTOL, color=plt.cm.viridis(0.75), lw=1, label=f"report: gradients pass at {GRAD_RTOL:g} relative")
ax.axhline(1e-6, color=plt.cm.viridis(0.25), lw=1, ls=":", label="verdict above: outputs within 1e-6")
ax.axhline(1e-5, color=plt.cm.viridis(0.75), lw=1, ls=":", label="verdict above: gradients within 1e-5")
ax.set_xticks(range(len(fwd)), [r["name"] for r in fwd], rotation=90, fontsize=7)
ax.set_ylim(ZERO_AT / 3, 1e-3)
ax.set_xlabel("layer, in the order of the forward pass")
ax.set_ylabel("error (unitless, log scale)")
ax.set_title("Scratch vs Keras, full-width U-Net at 32x32: every error lies far below every bound",
             fontsize=10, loc="left")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
fig.tight_layout()
plt.show()

# %% [markdown] translates="7fcebb00e200"
# 注意误差有多小、多平稳：各层输出相差约 $10^{-9}$ 到 $10^{-7}$（最前面几层完全没有差别），卷积核梯度的相对误差约为 $10^{-7}$ 到
# $10^{-6}$。这是 float32 求和顺序不同带来的舍入误差，沿着 33 层也没有增长。
#
# ## 5. 为什么比较梯度要用教师强制
#
# 最大池化的反向传播把每个窗口的梯度交给**一个**像素：TensorFlow 的规则（也是我们的规则）是按行优先顺序的*第一个*最大值。现在设想一个窗口中有两个像素，在数学上相等，却是由两个求和顺序不同的卷积算出来的。在 float32 下，它们可能相差一个舍入单位（*ulp*，相对大小 $\approx 6 \times 10^{-8}$），在一边相等，在另一边却分出了大小。两个框架都没错，只是把这个窗口的梯度送到了不同的像素，反向传播中这个像素下游的一切都跟着变了。成千上万个窗口中只要有一个这样的窗口，就能让某个权重梯度的相对变化达到 $\sim 10^{-3}$：检查失败了，却不是程序错误。
#
# float32 的加法不满足结合律，这就足够了：

# %%
from unet_scratch.ops.pool import maxpool2d, maxpool2d_backward

# Two neighbouring pixels whose exact values are equal: p1 = a + b + c and p2 = c + b + a (a mirrored
# neighbourhood). Framework A adds left to right, framework B right to left.
a, b, c = np.float32(0.6), np.float32(0.7), np.float32(0.3)
print("(a + b) + c == a + (b + c) in float32:", (a + b) + c == a + (b + c))
sides = {"A": [(a + b) + c, (c + b) + a], "B": [a + (b + c), c + (b + a)]}
dy = np.ones((1, 1, 1, 1), np.float32)                 # the gradient arriving at the pooled pixel
for side, (p1, p2) in sides.items():
    window = np.array([[[[p1], [p2]], [[0.0], [0.0]]]], np.float32)       # one 2x2 window, (1, 2, 2, 1)
    dx = maxpool2d_backward(dy, maxpool2d(window, 2)[1])[0, :, :, 0]
    print(f"framework {side}: p1 == p2: {p1 == p2}, the gradient goes to pixel",
          tuple(int(i) for i in np.argwhere(dx)[0]))

# %% [markdown] translates="e6216d6d7ef6"
# ReLU 的输入与 0 相差不到一个 ulp 时，也会发生同样的事。所以 `compare` 用**教师强制**的方式检查反向传播：从零实现的每一层都用
# *Keras* 在这一层的输入计算前向传播（forward pass），把 Keras 的输出（以及 Keras 的 ReLU 掩码（mask））存进缓存，并把 Keras 的输出往下传。这样两边对梯度去向的每一个选择都相同，剩下要比较的就是每个反向运算的算术。在自由运行中梯度去向*确实*不同的那些窗口，记在
# `report.near_ties` 里，什么也没有藏起来。（前向传播不需要这种帮助：近似并列改变的是哪个像素胜出，而不会让数值的变化超过一个 ulp。）
#
# ## 6. 逐步对照训练
#
# 对反向传播和优化器（optimizer）真正的考验是训练。`lockstep` 先把从零实现的权重复制进 Keras，然后每一步都把**同一批**数据交给两边，计算二元交叉熵，在两边各走一步优化（我们的 `SGD`/`Adam` 对 `keras.optimizers.SGD`/`Adam`），并记下两边的损失。这一次是自由运行，什么也不强制，所以梯度或更新规则的任何差别都会一步步放大。我们画出两条损失曲线以及它们的相对差距
# $\lvert L_{\text{scratch}} - L_{\text{keras}} \rvert / L_{\text{keras}}$。
#
# 全宽网络的一步在小 CPU 上要将近一分钟，所以这一节训练的是同样深度为 4、顶层只有 16 个滤波器的 U-Net（190 万个参数）：层和代码路径都一样，工作量只有十六分之一。（`lockstep` 还会报告 `weight_rel_diff`，即训练后所有权重数组中最大的相对差别。留意深层那些初始化为零的偏置（bias）：它们的范数很小，所以最后几位的差别按相对值看会显得很大。）
#
# 还有一个细节：输出层带 sigmoid 时，Keras 的 `BinaryCrossentropy` 会悄悄地从输出层的 *logits* 计算损失（第 07 章），而我们这一边用的是截断概率的写法。只要没有哪个概率与 0 或 1 的距离在 $10^{-7}$ 以内（这里就是如此），两者就在舍入误差内一致。（曲线呈锯齿状，是因为两批数据轮流使用，而其中一批比另一批难；要紧的是两条曲线重合。）

# %%
images, masks = data.load("membranes", "train", n=4, size=SIZE)
batches = [(images[i:i + 2], masks[i:i + 2]) for i in (0, 2)]   # two batches of 2, used in turn

runs = {}
for opt, lr in [("SGD", 0.01), ("Adam", 1e-3)]:        # depth 4 as before, 16 filters at the top (for time)
    net = UNet(input_shape=(SIZE, SIZE, 1), base_filters=16, seed=0)
    knet = build_keras_unet(input_shape=(SIZE, SIZE, 1), base_filters=16, seed=0)
    runs[opt] = lockstep(net, knet, batches, optimizer=opt.lower(), steps=10, learning_rate=lr)

fig, ax = plt.subplots(2, 2, figsize=(10, 6.6), dpi=100)
for row, (opt, res) in zip(ax, runs.items()):
    steps = np.arange(1, len(res.rel_diff) + 1)
    row[0].plot(steps, res.scratch_losses, "o-", ms=3, color=plt.cm.viridis(0.25), label="scratch (NumPy)")
    row[0].plot(steps, res.keras_losses, "--", color=plt.cm.viridis(0.75), label="Keras")
    row[0].set_title(f"{opt}: the scratch and Keras loss curves lie on top of each other", fontsize=9)
    row[0].set_ylabel("binary cross-entropy (unitless)", fontsize=8)
    row[0].legend(fontsize=8)
    gap = np.asarray(res.rel_diff)
    row[1].semilogy(steps[gap > 0], gap[gap > 0], "o", ms=4, color=plt.cm.viridis(0.25), label="relative loss gap")
    if np.any(gap == 0):
        row[1].semilogy(steps[gap == 0], np.full(np.sum(gap == 0), ZERO_AT), "v", ms=6, mfc="none",
                        color=plt.cm.viridis(0.25), label=f"exactly 0 (drawn at {ZERO_AT:g})")
    row[1].axhline(GRAD_RTOL, color="grey", lw=1, label=f"lockstep passes below {GRAD_RTOL:g}")
    row[1].axhline(1e-5, color="grey", lw=1, ls=":", label="the check below: 1e-5")
    row[1].set_ylim(ZERO_AT / 3, 1e-3)
    row[1].set_title(f"{opt}: the gap stays at float32 rounding or exactly 0", fontsize=9)
    row[1].set_ylabel("|L_scratch - L_Keras| / L_Keras", fontsize=8)
    row[1].legend(fontsize=7, loc="center right")
    for a in row:
        a.set_xlabel("training step (batch of 2 images, 32x32)")
fig.tight_layout()
plt.show()

# %%
for opt, res in runs.items():
    went_down = np.mean(res.scratch_losses[-2:]) < np.mean(res.scratch_losses[:2])   # the batches alternate
    print(f"{opt}: loss went down:", went_down,
          "| every step's loss gap below 1e-5:", res.max_rel_diff < 1e-5)

# %% [markdown] translates="6e5c36d3bfa1"
# ## 7. Keras API 的变迁：Keras 2 的写法从哪里来
#
# 问题不在原文的代码（原文 5.2 节）：它用 `tf.keras.Model(inputs=[inputs], outputs=[outputs])` 建模型，在 Keras 3 上原样运行，然后就结束了：没有 `compile`，也没有 `fit`，所以它根本没有说明怎样训练（第 10 章列出了它还漏掉了什么）。读者贴在它旁边、在 Keras 3 上报错的那些 Keras 2 写法，来自 **zhixuhao/unet**——被 fork 最多的 Keras U-Net，原文代码沿用了它的层结构和变量名（`conv1` ... `conv9`、`drop4`、`drop5`、`up6` ...；它的函数是 `unet(pretrained_weights=None, input_size=(256, 256, 1))`，对应原文的 `unet(input_shape)`）。在那个仓库里，`model.py` 的早期版本用 `Model(input=inputs, output=conv10)` 建模型，并用 `Adam(lr=1e-4)` 编译；`main.py` 用 `model.fit_generator(...)` 训练；`data.py` 用 Keras 的 `ImageDataGenerator`
# 供给数据。在这里安装的 Keras 上运行的结果：
#
# | zhixuhao/unet（Keras 2） | Keras 3 | Keras 3 的报错 |
# |---|---|---|
# | `Model(input=inputs, output=conv10)` | `Model(inputs=inputs, outputs=conv10)` | `ValueError`（无法识别的关键字参数） |
# | `Adam(lr=1e-4)` | `Adam(learning_rate=1e-4)` | `ValueError`（无法识别的参数） |
# | `model.fit_generator(gen, ...)` | `model.fit(gen, ...)`（也接受生成器和 `tf.data`） | `AttributeError` |
#
# 在较老的代码里还可能遇到这些变化：`from keras.layers import merge` 和 `merge(..., mode='concat')` 变成了 `concatenate`；`Conv2D(64, 3, 3)`（Keras 1 分开写卷积核的两个尺寸）现在的意思是 `strides=3`；`ImageDataGenerator` 已从 Keras 3 中删除（附录 A）；`Dropout` 层只在 `training=True` 时起作用（在 `fit` 中起作用，在 `predict` 中不起作用）。

# %%
tiny_in = keras.Input((16, 16, 1))
tiny_out = keras.layers.Conv2D(1, 1, activation="sigmoid")(tiny_in)
attempts = {
    "Model(input=..., output=...)": lambda: keras.Model(input=tiny_in, output=tiny_out),
    "Adam(lr=1e-4)": lambda: keras.optimizers.Adam(lr=1e-4),
    "model.fit_generator": lambda: keras.Model(inputs=tiny_in, outputs=tiny_out).fit_generator,
}
for what, attempt in attempts.items():
    try:
        attempt()
        print(f"{what:<30} works")
    except (ValueError, TypeError, AttributeError) as err:
        print(f"{what:<30} fails with {type(err).__name__}")

tiny = keras.Model(inputs=tiny_in, outputs=tiny_out)                     # the Keras 3 spellings
tiny.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4), loss="binary_crossentropy")
def gen():
    while True:
        yield images[:2, :16, :16], masks[:2, :16, :16]
hist = tiny.fit(gen(), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)          # fit takes the generator
print("Keras 3 spellings work, fit() on a generator returned a loss:", len(hist.history["loss"]) == 1)

# %% [markdown] translates="b23c4641264b"
# ## 验证
#
# 一个单元格汇总本章的检查。每一行都是与给定界比较的布尔值，所以输出的文字在每台机器、每次运行中都一样。

# %%
checks = {
    "parameter counts equal (31,030,593)": model.count_params() == kmodel.count_params() == 31_030_593,
    "weights bit-identical after to_keras": all(np.array_equal(model.params[v.path], v.numpy())
                                                for v in kmodel.trainable_variables),
    "parity report passes (33 outputs, 46 gradients)": verdict["passed"],
    "parity verdict stable over two runs": again == verdict,
    "lockstep SGD: loss gaps below 1e-5": runs["SGD"].max_rel_diff < 1e-5,
    "lockstep Adam: loss gaps below 1e-5": runs["Adam"].max_rel_diff < 1e-5,
}
for k, v in checks.items():
    print(f"{k}: {v}")
print("ALL PASS:", all(checks.values()))

# %% [markdown] translates="7c556794d928"
# ## 练习
#
# 1. `oihw_to_hwio(w)`：把 PyTorch `Conv2d` 的卷积核转成 Keras 的布局。
# 2. `count_routing_differences(a, b)`：数一数第一个最大值不同的池化（pooling）窗口有多少个（第 5 节的近似并列）。
# 3. `order_of_magnitude(err)`：稳定的结论所打印的那个指数。
#
# **练习 1.** PyTorch 把 `Conv2d` 的卷积核存成 $(F, C_{in}, K_H, K_W)$（"OIHW"）；Keras 和本课程存成 $(K_H, K_W, C_{in}, F)$（"HWIO"）。写出 `oihw_to_hwio(w)`。算例：一个 $(4, 2, 3, 3)$ 的 PyTorch 卷积核（4 个滤波器，读 2 个通道）变成 $(3, 3, 2, 4)$，并且 `w_keras[a, q, c, f] == w_torch[f, c, a, q]`。检查能认出这些典型错误：`w.T`（对正方形卷积核形状是对的，数值却是错的）、把两个通道轴对调了（Keras `Conv2DTranspose` 的布局）、用 reshape 代替转置。

# %%
from unet_scratch.exercises.ch06 import (check_count_routing_differences, check_oihw_to_hwio,
                                         check_order_of_magnitude)

def oihw_to_hwio(w):
    ### BEGIN SOLUTION
    return np.transpose(w, (2, 3, 1, 0))
    ### END SOLUTION

check_oihw_to_hwio(oihw_to_hwio);


# %% [markdown] translates="5c670ec54d74"
# **练习 2.** 写出 `count_routing_differences(a, b)`：$a, b$ 是两个形状为 $(N, H, W, C)$（$H$、$W$ 为偶数）的 float32 激活值，返回 $2 \times 2$、步幅 2 的池化窗口中，**第一个**最大值（窗口内按行优先顺序，与 TensorFlow 的选法相同）在 $a$ 中和在 $b$ 中是不同像素的窗口个数。提示：reshape 成 $(N, H/2, 2, W/2, 2, C)$，再把两个窗口轴移到最后。最大*值*变了而胜出的像素没变的窗口不算。检查能认出这些典型错误：比较最大值、比较并列最大值的集合、把梯度送给最后一个最大值。

# %%
def count_routing_differences(a, b):
    ### BEGIN SOLUTION
    def first_max(x):
        n, h, w, c = x.shape
        win = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)
        return win.argmax(axis=-1)
    return int(np.sum(first_max(a) != first_max(b)))
    ### END SOLUTION

check_count_routing_differences(count_routing_differences);


# %% [markdown] translates="0238393173bc"
# **练习 3.** 稳定的结论打印的是误差的数量级，而不是它的各位数字。写出 `order_of_magnitude(err)`：满足
# $10^k \le \text{err} < 10^{k+1}$ 的整数 $k$（所以 $9.7 \times 10^{-7}$ 给出 $-7$：是*向下取整*，不是四舍五入）；误差恰好为 0 时返回
# `None`。再想一想，为什么用这种方式打印 $9.7 \times 10^{-7}$ 这样的值不好：换一次运行得到 $1.02 \times 10^{-6}$，打印出来就是 $-6$。检查能认出这些典型错误：四舍五入到最近的整数、向上取整（或者用 `int()`，它把负的对数向零取整）。

# %%
def order_of_magnitude(err):
    ### BEGIN SOLUTION
    if err == 0:
        return None
    return int(np.floor(np.log10(err)))
    ### END SOLUTION

check_order_of_magnitude(order_of_magnitude);

# %% [markdown] translates="3f075e1fde7c"
# **本章练习：** 1. `oihw_to_hwio`（另一个框架布局下的权重），2. `count_routing_differences`（最大池化中 float32 的近似并列），
# 3. `order_of_magnitude`（稳定的结论）。
