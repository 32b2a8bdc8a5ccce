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

# %% [markdown] translates="d8221bf8aff6"
# # A · 故障排查：U-Net 会出哪些问题，怎样判断
#
# U-Net 用户在公开的 issue 跟踪器（zhixuhao/unet、milesial/Pytorch-UNet）上问得最多的问题，与网络结构无关，而是：**预测结果全黑或全灰**、
# 尺寸不能被 16 整除的图像引起的**形状错误**、**存成 0/255 的掩码**（mask）、让旧代码跑不起来的 **Keras API 变化**、**损失变成 NaN**，
# 以及**把 RGB 图像送进只有 1 个通道（channel）的模型**。
#
# **要你实现的：** 故意把每种故障重现出来，打印本库的报错信息，给出诊断和改法；再写三个小小的修复函数（填充（padding）到合法尺寸、
# 修正掩码、平衡类别的权重）。
# **要你验证的：** 在正常的 0/1 掩码上，本库的二元交叉熵（binary cross-entropy，BCE）与 Keras 的一致；以及 Keras 遇到 0/255 掩码时
# （悄无声息地）做了什么。最后，好好回答原文的两个常见问题，并列一张表，写出原文的其他错误，以及课程在哪里给出正确的做法。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)
# The models here are tiny: one BLAS thread is as fast as two, and on a busy machine much faster
# (OpenBLAS's second thread spin-waits for a core). Set before NumPy is imported; yours to remove.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import io
import re
import warnings

import numpy as np
import matplotlib.pyplot as plt
from PIL import Image
import unet_scratch as us
from unet_scratch import UNet, data, metrics
from unet_scratch.checks import check_finite, check_unet_size, nearest_legal_sizes
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.training import fit
from unet_scratch.keras_ref import import_tensorflow, import_keras
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
us.set_backend("numba" if "numba" in us.backend.available_backends() else "numpy")   # same numbers, faster


def show_error(f):
    # run f() and print the exception it raises, as a user would see it
    try:
        f()
        print("no error")
    except Exception as err:
        print(f"{type(err).__name__}: {err}")


# %% [markdown] translates="ece5800cec92"
# ## 1. 全黑或全灰的预测
#
# 一个处处输出同一个值的 U-Net，已经学会了（或者被搭成了）忽略它的输入。下面四种原因能解释大多数报告：
#
# | 症状 | 原因 | 怎样判断 |
# |---|---|---|
# | 全灰（$p \approx 0.5$） | 模型根本没训练：加载了错误的权重、学习率（learning rate）为 0、损失没有变化 | `p.std()` 极小，`p.mean()` 接近 0.5 |
# | 全黑或全白 | **掩码存成了 0/255**：目标超出 $[0, 1]$，BCE 的梯度 $p - t$ 大了 254 倍 | `np.unique(mask)` |
# | 全是同一个值 | **最后的激活函数（activation function）用错了**：对单个通道做 softmax，处处都是 1；"死掉"的 ReLU 输出层输出 0 | `model.config["out_activation"]`、`out_channels` |
# | 全黑（背景） | **学习率太高**（模型塌缩成一个常数），或者**类别不平衡**（处处预测"背景"就已经有 70-99% 的准确率） | 训练曲线；用 Dice 而不是准确率来衡量 |
#
# 下面在本库合成的膜结构图像上（`data.load("membranes")`，第 08 章的数据集；$64 \times 64$，前景占 27%）重现其中三种：
# 一个没训练的模型、一个用 Adam 以学习率 1.0 训练的模型，以及一个正常训练的模型（学习率 0.01，8 轮，几秒钟）。

# %%
x, mask = data.load("membranes", "train", n=32, size=64)[:2]        # (32, 64, 64, 1) in [0, 1] and {0, 1}

def small_unet():
    return UNet(input_shape=(64, 64, 1), base_filters=8, depth=2, seed=0)

untrained = small_unet()
too_fast = small_unet()
with np.errstate(all="ignore"):
    fit(too_fast, (x, mask), epochs=1, batch_size=4, optimizer="adam", learning_rate=1.0, verbose=0)
good = small_unet()
history = fit(good, (x, mask), epochs=8, batch_size=4, optimizer="adam", learning_rate=1e-2, verbose=0)

preds = {name: m.forward(x[:4]) for name, m in
         [("untrained", untrained), ("learning rate 1.0", too_fast), ("learning rate 0.01", good)]}
p = preds["untrained"]
print("untrained: every pixel within 0.1 of 0.5 (all grey):", bool(np.all(np.abs(p - 0.5) < 0.1)))
p = preds["learning rate 1.0"]
print("learning rate 1.0: the same value at every pixel:   ", bool(p.std() < 1e-4))
print("learning rate 1.0: thresholded, all black or all white:", len(np.unique(p > 0.5)) == 1)
print("learning rate 0.01: Dice above 0.6:                 ", metrics.dice(preds["learning rate 0.01"] > 0.5, mask[:4]) > 0.6)

# %%
fig, ax = plt.subplots(1, 5, figsize=(12, 2.9), dpi=100)
panels = [("input image", x[0]), ("true mask", mask[0])] + [(f"p: {k}", v[0]) for k, v in preds.items()]
for a, (title, img) in zip(ax, panels):
    im = a.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    a.set_title(title, fontsize=9); a.set_xlabel("x (pixels)")
ax[0].set_ylabel("y (pixels)")
fig.colorbar(im, ax=ax, fraction=0.015, label="probability (0 black, 1 white)")
fig.suptitle("Same data, three models: untrained = all grey, too high a learning rate = one flat value, "
             "a good run = structure", fontsize=10)
plt.show()

# %% [markdown] translates="fc02d60be1c8"
# **掩码存成了 0/255。** 存成 8 位 PNG 的掩码里是 0 和 255。把它送进二元交叉熵
# $L = -\big(t \log p + (1 - t) \log (1 - p)\big)$，而 $t = 255$ 时，损失不再以 0 为下界，它对 logit 的梯度 $p - t$
# 在每个前景像素上约为 $-254$：logits 被无限制地往上推，预测随之饱和。本库拒绝这样的目标：

# %%
mask255 = (mask[:4] * 255).astype(np.uint8)
show_error(lambda: binary_crossentropy(preds["untrained"], mask255))

# %% [markdown] translates="358d9de93974"
# **最后的激活函数用错了。** softmax 沿通道轴归一化，所以只有**一个**通道时，不论输入是什么，它在每个像素上都返回
# $e^{z} / e^{z} = 1$：输出一片全白。（单通道该用 sigmoid；softmax 需要每个类别一个通道。）本库的训练循环会拒绝这种搭配，
# 并附上关于掩码取值范围的提示，因为单类别的 softmax 只接受标签 0：

# %%
one_channel_softmax = UNet(input_shape=(64, 64, 1), base_filters=4, depth=2, seed=0, out_activation="softmax")
print("softmax over 1 channel is 1.0 at every pixel:", bool(np.all(one_channel_softmax.forward(x[:2]) == 1)))
show_error(lambda: fit(one_channel_softmax, (x, mask), epochs=1, verbose=0))

# %% [markdown] translates="d41ff2bf93f3"
# **类别不平衡。** 前景稀少时，"处处都是背景"在像素准确率上得分很高，还给出一片平坦的损失曲面，让训练滑进去出不来。要用 Dice 或 IoU
# 来衡量（它们给这种预测打 0 分），并用顾及前景的损失来训练：`fit` 中的 `loss="dice"` 或 `"bce_dice"`，或者前景权重为"背景/前景"的
# 加权 BCE（练习 3；论文中用于平衡类别的 $w_c(x)$ 见第 07 章）。

# %%
all_background = np.zeros_like(mask)
print(f"all-background prediction: pixel accuracy {1 - metrics.pixel_error(all_background, mask):.0%}, "
      f"Dice {metrics.dice(all_background, mask):.1f}")

# %% [markdown] translates="e3cca5e42ad4"
# ## 2. 不能被 16 整除的尺寸
#
# 用 'same' 填充时，每次 $2 \times 2$ 池化（pooling）把尺寸减半，每次上卷积（up-convolution）把尺寸加倍，所以经过 $d$ 次池化之后，
# 只有当输入尺寸能被 $2^d$ 整除时（原文的深度为 4，即 16），解码器的特征图（feature map）才与编码器经跳跃连接（skip connection）
# 送来的特征图对得上。Keras 要到 `concatenate` 深处才报告尺寸不匹配；本库在入口处就检查（`checks.check_unet_size`），
# 并给出最近的合法尺寸（`checks.nearest_legal_sizes`）：

# %%
model96 = UNet(input_shape=(96, 96, 1), base_filters=4, seed=0)          # depth 4
show_error(lambda: model96.forward(np.zeros((1, 100, 100, 1), np.float32)))
print("nearest legal sizes to 100, depth 4, 'same':", nearest_legal_sizes(100, 4, "same"))
show_error(lambda: check_unet_size(570, 570, 4, "valid"))            # the paper's valid-padded net
print("nearest legal tiles to 570, depth 4, 'valid':", nearest_legal_sizes(570, 4, "valid"))

# %% [markdown] translates="521306783f30"
# 改法是把图像填充（或裁剪（crop），或缩放）到合法尺寸，再在输出上把这一步撤销。用反射来填充，边界看起来才真实，论文的
# 重叠切片（overlap-tile）策略也是这样做的；全卷积网络（fully convolutional network）在任何合法尺寸上都能运行，所以为 96 搭的模型
# 不用重新训练就能在 112 上运行：

# %%
image100 = rng.random((1, 100, 100, 1), dtype=np.float32)
padded = np.pad(image100, ((0, 0), (6, 6), (6, 6), (0, 0)), mode="reflect")          # 100 -> 112
p100 = model96.forward(padded)[:, 6:-6, 6:-6]
print("padded to", padded.shape[1:3], "-> prediction cropped back to", p100.shape[1:3])

# %% [markdown] translates="0e6818372307"
# **练习 1.** 把上面的单元格推广一下：对一批图像 $x$：$(N, H, W, C)$ 和深度为 $d$ 的 'same' U-Net，写出 `pad_to_legal(x, depth)`。
# 把 $H$ 和 $W$ **向上**取整到 $2^d$ 的倍数（合法的尺寸保持不变），用反射填充（`np.pad(..., mode="reflect")`），每个轴的填充量这样分：
# top $= \lfloor p/2 \rfloor$，bottom $= p - $ top（左右也一样），这样预测结果可以用 `[:, top:top + H, left:left + W]` 裁回原来的大小。
# 算例：上面的单元格，深度 4 时 $100 \to 112$，每边 6 个像素。检查能认出这些典型错误：全部填充都放在末尾、多出的像素放在上边、
# 填零而不是镜像、给合法的尺寸又加了整整一个 $2^d$、取了 $2d$ 的倍数而不是 $2^d$ 的倍数。

# %%
from unet_scratch.exercises.appendix import check_fix_mask, check_pad_to_legal, check_pos_weight

def pad_to_legal(x, depth):
    ### BEGIN SOLUTION
    step = 2 ** depth
    widths = [(0, 0)]
    for size in x.shape[1:3]:
        total = -(-size // step) * step - size
        widths.append((total // 2, total - total // 2))
    return np.pad(x, widths + [(0, 0)], mode="reflect")
    ### END SOLUTION

check_pad_to_legal(pad_to_legal);

# %%
image_97x50 = rng.random((1, 97, 50, 1), dtype=np.float32)
padded = pad_to_legal(image_97x50, 4)                                   # 97 -> 112, 50 -> 64
top, left = (112 - 97) // 2, (64 - 50) // 2
p = UNet(input_shape=padded.shape[1:], base_filters=4, seed=0).forward(padded)[:, top:top + 97, left:left + 50]
print("a 97 x 50 image: padded to", padded.shape[1:3], "-> prediction cropped back to", p.shape[1:3])

# %% [markdown] translates="54bfeb4ab28e"
# ## 3. 存成 0/255 或存成 JPEG 的掩码
#
# PNG 掩码只有两个值：0 和 255。存成 **JPEG** 的掩码却有几十个值：有损压缩在每条边缘周围产生振铃，把每个值都映射成一个类别的加载器
# 就会找到"几百个类别"。下面的直方图在同一个掩码上展示这三种情况（这里用 Pillow 对 JPEG 编码再解码）。

# %%
m8 = (mask[0, ..., 0] * 255).astype(np.uint8)
buf = io.BytesIO()
Image.fromarray(m8).save(buf, format="JPEG", quality=75)
jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
print("PNG-style mask values:", np.unique(m8))
print("JPEG mask has more than two values:", len(np.unique(jpeg)) > 2)

fig, ax = plt.subplots(1, 3, figsize=(11, 3), dpi=100, sharey=True)
for a, (title, m) in zip(ax, [("0/1 (what the loss expects)", mask[0, ..., 0]), ("0/255 (8-bit PNG)", m8),
                              ("JPEG-saved (compression noise)", jpeg)]):
    a.hist(m.ravel(), bins=64, color=plt.cm.viridis(0.4), log=True)
    a.set_title(title, fontsize=9); a.set_xlabel("mask value")
ax[0].set_ylabel("pixels (log scale)")
fig.suptitle("Mask values: a loss needs {0, 1}; 0/255 is 255x off, JPEG adds values in between", fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown] translates="d88937ba461a"
# `data.check_pair(image, mask)` 检查一对训练数据：干净的 0/255 掩码会被归一化，同时给出警告；其他任何不是 0/1 的掩码都会被拒绝，
# 报错信息里写明改法：

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _, fixed = data.check_pair(x[0], m8)
print("warning:", caught[0].message)
print("normalised mask values:", np.unique(fixed))
show_error(lambda: data.check_pair(x[0], jpeg))


# %% [markdown] translates="ee4f2c333f26"
# **练习 2.** 写出 `fix_mask(mask)`：返回形状相同、取值在 $\{0, 1\}$ 中的 float32 数组。0/255 的掩码（干净的或带 JPEG 噪声的，
# 任意 dtype）在 127.5 处取阈值，已经在 $[0, 1]$ 内的掩码在 0.5 处取阈值（用最大值区分两者：大于 1 就是 0/255）。算例：取值为
# $\{0, 3, 17, 238, 255\}$ 的 JPEG 掩码变成 $\{0, 0, 0, 1, 1\}$。检查能认出这些典型错误：只除以 255 而不取阈值、所有掩码都用
# 同一个阈值（0.5 或 127.5）。

# %%
def fix_mask(mask):
    ### BEGIN SOLUTION
    mask = np.asarray(mask, dtype=np.float64)
    threshold = 127.5 if mask.max() > 1 else 0.5
    return (mask > threshold).astype(np.float32)
    ### END SOLUTION

check_fix_mask(fix_mask);

# %% [markdown] translates="105f7a73f907"
# ### 验证：我们的 BCE 与 Keras 的对照，以及 Keras 怎样对待 0/255
#
# 在正常的 0/1 掩码上，本库的 `binary_crossentropy` 等于 Keras 的 `BinaryCrossentropy`（第 07 章详细证明了这一点）。在 0/255 掩码上，
# Keras 不报任何错：它返回一个交叉熵不可能取到的数（BCE 永远不会是负数），训练照常进行。

# %%
y_prob = np.clip(rng.random((2, 16, 16, 1), dtype=np.float32), 0.05, 0.95)
t01 = (rng.random((2, 16, 16, 1)) < 0.3).astype(np.float32)
bce = keras.losses.BinaryCrossentropy()
ours = binary_crossentropy(y_prob, t01)[0]
theirs = float(bce(t01, y_prob))
err = abs(ours - theirs) / abs(theirs)
print("0/1 masks: scratch BCE == Keras BCE (relative error < 1e-6):", err < 1e-6)
y_sure = np.where(t01 > 0, 0.9, 0.1).astype(np.float32)           # a confident, correct prediction
loss255 = float(bce(t01 * 255, y_sure))
print("0/255 masks: Keras raises no error and returns a negative 'loss':", loss255 < 0)

# %% [markdown] translates="67ca960df993"
# ## 4. Keras API 的变迁：旧的 Keras U-Net 代码跑在 Keras 3 上
#
# 原文自己的代码在 Keras 3 上可以原样运行（它用 `tf.keras.Model(inputs=[inputs], outputs=[outputs])` 搭建模型，没有 `compile`
# 也没有 `fit`；见第 06 章）。会出错的，是读者在它旁边看到的更早的 Keras U-Net 代码，首先是 **zhixuhao/unet**——被 fork 最多的
# Keras U-Net，原文代码的布局就是照它来的：它的 `model.py` 在早期版本中用 `Model(input=inputs, output=conv10)` 搭建模型，并用
# `Adam(lr=1e-4)` 编译；它的 `main.py` 用 `model.fit_generator(...)` 训练，`data.py` 则用 Keras 的 `ImageDataGenerator` 为它提供数据。
# 下面是这些代码在 Keras 3 上真实的报错，每个都被捕获下来，后面跟着 Keras 3 的写法。

# %%
inp = keras.Input((16, 16, 1), name="image")
out = keras.layers.Conv2D(1, 1, activation="sigmoid", name="head")(inp)

def short(f):
    # print the error type and its message, with the long KerasTensor descriptions shortened
    try:
        f()
        print("no error")
    except Exception as err:
        print(f"{type(err).__name__}: {re.sub(r'<KerasTensor[^>]*>', '<KerasTensor>', str(err))}")

short(lambda: keras.Model(input=inp, output=out))          # Keras 1 spelling (tf.keras 2 raised TypeError)
model = keras.Model(inputs=inp, outputs=out, name="unet")  # Keras 3: inputs=, outputs=
short(lambda: keras.optimizers.Adam(lr=1e-4))              # Keras 1/2: lr=
opt = keras.optimizers.Adam(learning_rate=1e-4)           # Keras 3: learning_rate=
short(lambda: model.fit_generator)                         # removed: fit() takes generators
short(lambda: keras.preprocessing.image.ImageDataGenerator)   # removed: use tf.data or your own generator

# %%
images = [rng.random((16, 16, 1), dtype=np.float32) for _ in range(3)]
short(lambda: model.predict(images, verbose=0))            # a list = several *inputs*, not a batch
print("np.stack(images) -> predictions of shape", model.predict(np.stack(images), verbose=0).shape)
print("one image: add the batch axis, images[0][None] ->", model.predict(images[0][None], verbose=0).shape)

def batches():                                             # what fit_generator used to take
    while True:
        xb = rng.random((2, 16, 16, 1), dtype=np.float32)
        yield xb, (xb > 0.5).astype(np.float32)

model.compile(optimizer=opt, loss="binary_crossentropy")
h = model.fit(batches(), steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
print("model.fit(generator, steps_per_epoch=...) trains:", len(h.history["loss"]) == 1)

# %% [markdown] translates="ffd67dbdabb9"
# ## 5. 训练中出现 NaN
#
# 损失一旦变成 NaN，下一步就会污染所有权重。常见的原因：学习率高得离谱（logits 超出 float32 的范围）、数据里有 NaN 或 Inf、
# 手写的损失函数（loss function）没有截断就算了 $\log 0$（Keras 把 $p$ 截断到 $[10^{-7}, 1 - 10^{-7}]$），以及 float16 混合精度，
# 它能表示的最大数是 65504。本库在每个环节都做检查：数据（`checks.check_finite`）、损失的输入，以及训练循环——它在执行一个
# 非有限的更新*之前*就停下来，并说明问题出在哪里：

# %%
bad = x[:2].copy()
bad[1, 10, 20, 0] = np.nan
show_error(lambda: check_finite(bad, "images"))
show_error(lambda: binary_crossentropy(preds["untrained"] * np.nan, mask[:4]))

diverging = small_unet()
with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
    warnings.simplefilter("always")
    fit(diverging, (x[:8], mask[:8]), epochs=1, batch_size=4, optimizer="sgd", learning_rate=1e6, verbose=0)
print("warning:", [str(w.message) for w in caught if w.category is RuntimeWarning][0])
with np.errstate(over="ignore"):
    print("float16 overflows above 65504:", np.isinf(np.float16(70000.0)))

# %% [markdown] translates="799e1247f1c7"
# ## 6. 把 RGB 图像送进单通道模型
#
# 原文的模型接受 $256 \times 256 \times 1$ 的灰度图像。RGB 图像有 3 个通道；通道在前的数组（PyTorch 的 NCHW）把通道放在了错误的轴上；
# 单张图像则缺了批次（batch）轴。每种情况都有自己的报错信息，并附上改法：

# %%
grey_model = UNet(input_shape=(64, 64, 1), base_filters=4, depth=2, seed=0)
rgb = rng.random((1, 64, 64, 3), dtype=np.float32)
show_error(lambda: grey_model.forward(rgb))
show_error(lambda: grey_model.forward(rgb.mean(axis=-1, keepdims=True).transpose(0, 3, 1, 2)))   # NCHW
show_error(lambda: grey_model.forward(rgb[0, ..., 0]))                                          # (H, W)
show_error(lambda: grey_model.forward((rgb * 255).astype(np.uint8)[..., :1]))                  # 8-bit
print("after rgb.mean(axis=-1, keepdims=True):", grey_model.forward(rgb.mean(axis=-1, keepdims=True)).shape)


# %% [markdown] translates="deb366c9c40c"
# ## 7. 好好回答原文的常见问题
#
# 原文以两个问题结尾（第 9 节"常见问题与解答"）。
#
# ### 9.1 "UNet模型为什么需要跳跃连接？"
#
# 原文的回答是：跳跃连接"允许模型在解码器阶段直接访问编码器阶段的特征图，从而提高模型的表达能力，使得模型能够更好地捕捉图像的
# 细节特征"。就它说到的而言，这没有错。一种常见的、更强的说法是：池化丢掉了东西*在哪里*，所以没有跳跃连接，解码器就*不可能*
# 定位边界。这种说法站不住：在 $256 \times 256$ 的输入上，原文的瓶颈层（bottleneck）有 $16 \times 16 \times 1024 = 262{,}144$ 个数，
# 是输入 65,536 个像素的四倍，而且上卷积是学出来的，不是插值。没有跳跃连接的网络，原则上*能够*让位置信息穿过瓶颈层。
# 跳跃连接改变的是做到这一点有多容易：
#
# * **一种归纳偏置（inductive bias）。** 第 $\ell$ 层的跳跃连接把编码器在同一分辨率上的特征交给解码器，与它正在计算的输出逐像素对齐。这样，
#   定位边界只需要编码器最初几个卷积（convolution）就已经算出来的局部特征（边缘），再结合从下面传上来的上下文；没有跳跃连接，
#   网络就得学会把池化窗口之内的精确位置编码下来，带着它穿过四次池化，再解码回来。这做得到，但必须从数据中学出来，
#   而图像很少时，它恰恰在这里力不从心。
# * **一条短的梯度路径。** 梯度只经过一次拼接（concatenation）和最后一个解码器块，就能到达第一个编码器块，而不必穿过 U 形的全部
#   $2 \cdot 4 + 1$ 个块；在分叉处，跳跃连接的梯度与沿深层路径传回来的梯度相加（第 05 章推导并检查了这一点），所以前面的层从一开始
#   就能学习。
#
# 这一点是否要紧，要靠实验，而不是靠论证：**第 04 章**把同一个小 U-Net（64 像素的膜结构图像，128 张训练图像）分别在有跳跃连接和
# 没有跳跃连接（`UNet(..., skip_connections=False)`：每个跳跃连接都换成零，参数相同）的情况下训练，每种用三个随机种子，直到验证损失
# 不再下降（`benchmarks/skips.py` -> `benchmarks/results/skips.json`）。有跳跃连接时测试集 Dice 为 0.84（各种子在 0.835 到 0.845
# 之间），没有时为 0.71（0.696 到 0.717）；膜边缘 2 像素以内被分错的像素比例，有跳跃连接时为 0.16，没有时为 0.29。两种网络大约在
# 同一轮停止改进，所以差距不是训练时间造成的。这只是一个小网络在一个数据集上的结果：第 04 章说明了这个实验不能说明什么（原文在
# 256 像素上的完整网络、其他数据、数据增强、长得多的训练）。

# %% [markdown] translates="eb273d9f45b0"
# ### 9.2 "UNet模型在哪些领域有应用？"
#
# 原文列出了医学图像、遥感和道路检测。更好的回答要说明它适合*哪一类问题*：**密集预测**（每个像素一个标签或一个值），
# **标注图像很少**，而且物体的**边界很重要**。论文（Ronneberger 等，2015）是为生物医学显微图像写的：它在 ISBI 2012 电镜挑战赛的
# 30 张图像上训练，取得了当时排行榜上最好的 warping 误差（0.000353）；在 ISBI 2015 细胞追踪数据上，它在 PhC-U373 上的 IoU 达到 0.92
# （第二名 0.83），在 DIC-HeLa 上达到 0.78（第二名 0.46）。图像少也够用，靠的是弹性形变（elastic deformation）数据增强
# （data augmentation）；重叠切片策略则能处理任意尺寸的图像。此后：
# * 三维医学图像：3D U-Net（Çiçek 等，2016）和 nnU-Net（Isensee 等，Nature Methods 2021），后者能自己为新数据集配置 U-Net；
# * 任何既需要上下文、又需要像素级精度的图像到图像任务：卫星和航拍图像分割（segmentation）、道路和车道掩码、去噪和图像复原；
# * 图像生成：扩散模型（Ho 等，2020）的去噪网络就是一个 U-Net。
#
# 它自己**做不到**的：把相互接触的同类物体分开（论文的权重图（weight map，第 07 章）就是为此设计的，或者改用实例分割方法），
# 以及看到比它的感受野（receptive field）更宽的上下文。
#
# ## 8. 原文还有哪些错误
#
# 原文（《UNet原理与代码实例讲解》）的网络结构代码是对的（第 06 章逐层重建了它），但它的正文和插图有好几处说得不对。下面每一条都
# 对照了原文的文字、论文（Ronneberger、Fischer、Brox，MICCAI 2015，arXiv 1505.04597）以及所引用的文献：
#
# | 原文的说法 | 正确的说法 | 课程在哪里展示 |
# |---|---|---|
# | 没有提到这个结构从哪里来 | U-Net 建立在 Long、Shelhamer 和 Darrell（CVPR 2015）的**全卷积网络**（FCN）之上：论文说它"建立在"FCN"之上"；FCN 的思路是在收缩网络之后接上采样（upsampling）层，并与收缩路径中高分辨率的特征相结合 | 第 10 章（论文）、第 03 章（上卷积）、第 04 章（跳跃连接） |
# | 第 1 节："UNet的成功也推动了其他类似架构的发展，如SegNet、DeepLab等" | DeepLab v1（Chen、Papandreou、Kokkinos、Murphy、Yuille，arXiv 1412.7062，2014 年 12 月；ICLR 2015）**早于** U-Net（arXiv，2015 年 5 月），SegNet（Badrinarayanan、Kendall、Cipolla）是 2015 年同期的工作：两者都源自 FCN，而不是源自 U-Net | 本附录 |
# | 第 7.3 节引用《DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs》，作者写成 **Abhinav Shrivastava、Abhinav Gupta、Ross Girshick** | 这个标题是 DeepLab v2（arXiv 1606.00915，2016；TPAMI 2018），作者是 **Liang-Chieh Chen、George Papandreou、Iasonas Kokkinos、Kevin Murphy、Alan L. Yuille**；Shrivastava、Gupta 和 Girshick 写的是别的论文（用在线难例挖掘训练目标检测器，CVPR 2016） | 本附录 |
# | 关键词和第 2.1 节：**自编码器**（autoencoder），其解码器"负责重建图像的低层次细节" | U-Net 是用**标注**训练的编码器-解码器：它的输出是与掩码比较的分割图，而不是对输入的重建（带跳跃连接的自编码器可以经跳跃连接直接复制输入，什么也学不到） | 第 07 章（对照掩码的损失）、第 08 章（训练） |
# | 图 1-3：**五个**池化层连到一个**全连接层**（fully connected layer），然后是五级上采样 | **四次** $2 \times 2$ 池化、四次上卷积，**没有全连接层**：网络是全卷积的，所以能在任何合法尺寸上运行（它自己的代码也是这样） | 第 00 章（按真实形状画出的 U-Net）、第 10 章 |
# | 第 3.2 节："每个上采样层后接一个ReLU激活函数" | 它自己代码中的 `Conv2DTranspose` 没有激活函数；论文中 $2 \times 2$ 上卷积之后是拼接，然后是两个 $3 \times 3$ 卷积，*每个*卷积之后接一个 ReLU（上采样之后接 ReLU 是 zhixuhao/unet 的选择） | 第 03 章、第 06 章（逐层对照） |
# | 第 4.3 节：把跳跃连接写成 $J(x) = \mathrm{ReLU}(W_1 x + b_1) \circ \cdots$，带权重和激活函数 | 跳跃连接**没有权重**：编码器的特征图被复制过来（论文中还要从中心裁剪），然后拼接；权重在解码器接下来的卷积里。$J(x) = x$（或 $\mathrm{crop}(x)$） | 第 04 章（拼接与裁剪，前向与反向） |
# | 第 4.1-4.2 节：每一级都写成 $\mathrm{ReLU}(W x + b)$ 的复合，并把"$\circ$"称为卷积 | 卷积是窗口上的求和，$y_{i,j,f} = b_f + \sum_{a,q,c} x_{i+a, j+q, c}\, w_{a,q,c,f}$；池化和上卷积又是另外的运算 | 第 01-03 章 |
# | 第 5.2 节没有训练代码，读者却在它旁边遇到 `Model(input=...)`、`Adam(lr=...)`、`fit_generator` | 这些 Keras 2 的写法来自 zhixuhao/unet，而不是原文；原文的训练方式（损失、优化器（optimizer）、数据增强）都没有说明 | 第 06 章第 7 节、上面第 4 节、第 10 章第 3 节 |

# %% [markdown] translates="dd214f532e46"
# **练习 3（类别不平衡）.** 写出 `pos_weight(mask)`：$\{0, 1\}$ 掩码的背景像素数除以前景像素数；有了这个权重，加权 BCE 中前景与背景的
# 分量就相当（第 1 节）。算例：前景占 25% 时为 $75 / 25 = 3$。检查能认出这些典型错误：比值颠倒、背景占全部像素的比例、全部像素除以
# 前景像素。

# %%
def pos_weight(mask):
    ### BEGIN SOLUTION
    mask = np.asarray(mask)
    return float((mask == 0).sum() / (mask == 1).sum())
    ### END SOLUTION

check_pos_weight(pos_weight);

# %% [markdown] translates="c0f3cc243028"
# ## 本附录练习
#
# 1. `pad_to_legal(x, depth)`：把一批图像镜像填充到这个深度的 'same' U-Net 能接受的下一个尺寸（第 2 节）。
# 2. `fix_mask(mask)`：把任何 0/255、带 JPEG 噪声或 0/1 的掩码变成 float32 的 $\{0, 1\}$ 掩码（第 3 节）。
# 3. `pos_weight(mask)`：让加权 BCE 达到平衡的背景/前景比值（第 1 节）。
#
# 进一步（没有检查）：把掩码变得稀少（腐蚀膜结构，直到只剩 5% 的像素），用 `loss="bce"` 和 `loss="bce_dice"` 分别训练 `small_unet()`，
# 比较两条 Dice 曲线。
