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

# %% [markdown] translates="779e1102641c"
# # 10 · 原始论文：valid 卷积、572 → 388、重叠切片
#
# **要你实现的：** Ronneberger、Fischer 和 Brox（2015）论文里原原本本的网络：卷积（convolution）不做填充（padding），即"valid"卷积；
# 再加上论文处理任意尺寸图像的重叠切片（overlap-tile）策略。
# **要你验证的：** 论文给出的尺寸（输入 572，输出 388）；先裁剪（crop）再拼接（concatenation）的跳跃连接（skip connection）与 Keras 一致；在两种做法都可行时，
# 分块推理与一次整体前向的结果相同。你要写的是镜像边界、重叠切片的循环本身，以及跳跃连接的裁剪量（练习 1-3）。
#
# 论文说它"建立在"Long、Shelhamer 和 Darrell（CVPR 2015）的**全卷积网络**（fully convolutional network，FCN）之上：把分类网络的
# 全连接层（fully connected layer）换成卷积，后面接上采样（upsampling）层，并与收缩路径（contracting path）中高分辨率的特征相结合。
# U-Net 让上采样路径与收缩路径一样宽（所以形如字母"U"），跳跃连接把特征拼接起来，而不是把分数相加；
# 它还借助大量的数据增强（data augmentation），只用很少的图像就能训练。
#
# 原文的 Keras 代码给每个卷积都做填充（`padding='same'`），所以输出与输入一样大。论文不做填充：每个 $3 \times 3$ 卷积都会吃掉
# 一圈一个像素宽的边，输出比输入小。本章最后列出原文改动的其他所有地方。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet, data, training, metrics
from unet_scratch.checks import valid_output_size
from unet_scratch.ops.concat import crop_amounts
from unet_scratch.inference import predict, predict_tiled
from unet_scratch.images import overlay

us.set_backend("numba")
rng = np.random.default_rng(0)

# %% [markdown] translates="8d1a5309e4de"
# ## 1. 尺寸：572 → 388
#
# valid 的 $3 \times 3$ 卷积把 $n$ 变成 $n - 2$；$2 \times 2$ 池化（pooling）把 $n$ 变成 $n / 2$，并要求 $n$ 为偶数；上卷积（up-convolution）
# 把 $n$ 变成 $2n$。向下走四层，再走回来：
# $$572 \to 570 \to 568 \xrightarrow{\text{pool}} 284 \to 282 \to 280 \to 140 \to 138 \to 136 \to 68 \to 66 \to 64
# \to 32 \to 30 \to 28 \xrightarrow{\text{up}} 56 \to 54 \to 52 \to 104 \to 102 \to 100 \to 200 \to 198 \to 196 \to 392 \to 390 \to 388.$$
# 下面用本库搭出论文的网络：两个输出通道（channel）加逐像素的 softmax，初始化也用论文的方式——标准差为 $\sqrt{2/N}$ 的高斯分布，
# $N$ 是一个单元的输入个数（读取 64 个通道的 $3 \times 3$ 卷积，$N = 9 \cdot 64$），即 `kernel_initializer="paper_normal"`。
# （Keras 的 `he_normal` 标准差相同，但它从截断在两个标准差处的正态分布中抽样。）这个网络有 23 个卷积层（18 个 $3 \times 3$ 卷积、
# 4 个上卷积和 $1 \times 1$ 的输出层），没有全连接层。

# %%
paper = UNet((572, 572, 1), padding="valid", out_channels=2, out_activation="softmax",
             kernel_initializer="paper_normal", seed=0)
rows = paper.summary_rows()
sizes = [shape[1] for name, kind, shape, _ in rows
         if kind in ("Conv2D", "MaxPooling2D", "Conv2DTranspose") and name != "head"]
print(" -> ".join(str(size) for size in [572] + sizes))
print("output", paper.output_shape[1:], " parameters", f"{paper.count_params():,}")
print("572 -> 388 as in the paper:", paper.output_shape[1:3] == (388, 388))
n_conv = sum(kind in ("Conv2D", "Conv2DTranspose") for _, kind, _, _ in rows)
print("convolutional layers:", n_conv, "| the paper's 31,030,658 parameters:", paper.count_params() == 31_030_658)

# %% [markdown] translates="f682a63ed823"
# 跳跃连接的两端对不齐了：第 1 层编码器的特征图（feature map）宽 $568$，解码器的上卷积只给出 $392$。论文从跳跃连接的特征图上裁下中心部分。
# 每边裁掉的像素数为 $(568 - 392)/2 = 88$、$(280 - 200)/2 = 40$、$(136 - 104)/2 = 16$、$(64 - 56)/2 = 4$：

# %%
crops = {name: layer.cropping for name, layer in ((l.name, l) for l in paper.layers) if name.endswith("_crop")}
for name, c in crops.items():
    print(name, "crops", c[0][0], "pixels per side")

fig, ax = plt.subplots(1, 4, figsize=(12, 3.8), dpi=100)
for a, block in zip(ax, paper.decoder[::-1]):
    skip, up = block.crop.input_shape[1], block.upconv.output_shape[1]
    (t, _), _ = block.crop.cropping
    a.add_patch(plt.Rectangle((0, 0), skip, skip, color=plt.cm.viridis(0.3), label=f"encoder map {skip} px"))
    a.add_patch(plt.Rectangle((t, t), up, up, fill=False, ec="orange", lw=2, label=f"kept centre {up} px"))
    a.set(xlim=(-5, skip + 5), ylim=(skip + 5, -5), aspect="equal", title=f"level {block.level}: crop {t} px")
    a.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.2)); a.set_xlabel("x (px)")
fig.suptitle("The paper's skip connections keep only the centre of each encoder map")
fig.tight_layout(); plt.show()

# %% [markdown] translates="fac146019358"
# 并不是每个尺寸都合法：每次池化之前，尺寸必须是偶数。深度为 4 时，合法的切片尺寸是 $16m + 60$（$m \ge 8$），
# 输出总是比输入小 $184$ 个像素：

# %%
sizes = np.arange(180, 700)
legal = [s for s in sizes if valid_output_size(int(s), 4)]
fig, ax = plt.subplots(figsize=(7, 3), dpi=100)
ax.plot(legal, [valid_output_size(int(s), 4) for s in legal], ".", ms=4)
ax.plot([572], [388], "o", color="tab:red", label="the paper's tile: 572 -> 388")
ax.set(xlabel="input tile size (px)", ylabel="output size (px)", title="Legal tiles are 16 m + 60: output = input - 184")
ax.legend(); ax.grid(alpha=0.3); plt.show()
print("all legal tiles are 16 m + 60:", all((s - 60) % 16 == 0 for s in legal))
print("output is input - 184 for every legal tile:", all(valid_output_size(int(s), 4) == s - 184 for s in legal))

# %% [markdown] translates="078c9d009947"
# ### 验证：valid 网络与 Keras 对照
#
# `keras_ref.build_keras_unet(padding="valid")` 在跳跃连接上加了 `Cropping2D` 层。在一个合法的小切片上（188 → 4），
# 用一个很窄的网络生成逐层的数值一致（parity）报告（第 06 章）：

# %%
from unet_scratch.keras_ref import compare, to_keras

small = UNet((188, 188, 1), base_filters=4, depth=4, padding="valid", dropout=0.0, seed=0)
x = rng.random((1, 188, 188, 1), dtype=np.float32)
report = compare(small, to_keras(small), x)
print("output", small.output_shape[1:])
print("every layer output and weight gradient agrees with Keras:", report.passed)

# %% [markdown] translates="bcd9faf5b041"
# ## 2. 重叠切片：任意图像尺寸，没有接缝
#
# valid 网络能看到每个输出像素所需的全部上下文，所以大图可以一块一块地处理（论文图 2）：每个 $o$ 像素的*输出*切片，需要一个
# 每边多出 $m = (t - o)/2$ 个像素的*输入*切片。在图像边界处，这些上下文并不存在；论文的做法是把图像**镜像**过去。
# `predict_tiled` 把输出切片排在一个网格上，相邻切片的间距是 $2^{\text{depth}}$ 的倍数（这样每块切片看到的池化网格都与
# 一次整体前向相同），再把它们拼合起来。
#
# 先训练一个小的 valid 网络，在膜结构图像上训练几秒钟（深度 3：140 像素的切片输出 52 像素）：

# %%
# NBVAL_IGNORE_OUTPUT
valid = UNet((140, 140, 1), base_filters=8, depth=3, padding="valid", dropout=0.0,
             kernel_initializer="he_normal", seed=0)
train = data.load("membranes", "train", n=32, size=140)
history = training.fit(valid, train, epochs=8, batch_size=4, learning_rate=2e-3, loss="bce_dice", verbose=0)
print(history)

# %%
print("output", valid.output_shape[1:], "for a", valid.input_shape[:2], "tile; margin", (140 - 52) // 2, "px per side")
print("the valid network learned something:", history.history["dice"][-1] > 0.5)

# %%
big = data.load("membranes", "test", n=1, size=196)
image, truth = big[0][0, ..., 0], big[1][0, ..., 0]
tiled = predict_tiled(valid, image, tile=140)[..., 0]

m, o = 44, 52
padded = np.pad(image, m, mode="reflect")
fig, ax = plt.subplots(1, 3, figsize=(13, 4.3), dpi=72)
ax[0].imshow(padded, cmap="gray")
ax[0].add_patch(plt.Rectangle((m - 0.5, m - 0.5), 196, 196, fill=False, ec="yellow", lw=1.5))
for i, (y0, x0) in enumerate([(0, 0), (48, 48)]):
    ax[0].add_patch(plt.Rectangle((x0, y0), 140, 140, fill=False, ec=["tab:red", "tab:cyan"][i], lw=1.2, ls="--"))
    ax[0].add_patch(plt.Rectangle((x0 + m, y0 + m), o, o, fill=True, alpha=0.35, color=["tab:red", "tab:cyan"][i]))
ax[0].set_title("mirrored borders (outside yellow);\ntwo input tiles (dashed) and their outputs")
ax[1].imshow(overlay(image, tiled > 0.5)); ax[1].set_title(f"stitched prediction, Dice {metrics.dice(tiled > 0.5, truth > 0.5):.2f}")
ax[2].imshow(tiled, cmap="viridis", vmin=0, vmax=1); ax[2].set_title("probabilities: no seams between tiles")
for a in ax:
    a.set_xlabel("x (px)")
fig.suptitle("Overlap-tile inference of a 196 x 196 image with 140 -> 52 tiles")
fig.tight_layout(); plt.show()

# %% [markdown] translates="c90481c49c88"
# ### 验证：分块的结果等于一次整体前向
#
# $196 + 2 \cdot 44 = 284$ 本身就是合法的切片尺寸，所以这里也可以对镜像后的图像做一次整体前向。拼合出的结果必须与它相同
# （只差 float32 的舍入：两边 GEMM 的形状不同）：

# %%
untiled = predict(valid, np.pad(image, 44, mode="reflect"))[..., 0]
print("legal big tile:", valid_output_size(284, 3) == 196)
print("tiled == untiled within 1e-5:", np.abs(tiled - untiled).max() < 1e-5)

# %% [markdown] translates="500c50b86719"
# 原文那种 `same` 填充的网络也能分块，但零填充让每块切片的边缘都不对：`predict_tiled` 只保留每块的中心部分，
# 重叠的边缘用线性渐变的权重混合（`blend=False` 则直接把边缘切掉）。任何图像尺寸都可以，不能被 16 整除的也行：

# %%
same = UNet((64, 64, 1), base_filters=4, depth=2, dropout=0.0, seed=0)
odd = rng.random((150, 97), dtype=np.float32)
p = predict_tiled(same, odd, tile=64)
print("output covers the 150 x 97 image:", p.shape == (150, 97, 1))

# %% [markdown] translates="071bfd92e449"
# ## 3. 原文代码改了什么
#
# | | Ronneberger 等 2015 | 原文的 Keras 代码（本库默认的 `UNet()`） |
# | --- | --- | --- |
# | 卷积 | $3 \times 3$，**不填充**（valid） | $3 \times 3$，`padding='same'` |
# | 尺寸 | 572 → 388，大图用重叠切片 | 输出 = 输入；尺寸须能被 16 整除 |
# | 跳跃连接 | 先从中心裁剪，再拼接 | 原样拼接 |
# | 输出 | $1 \times 1$ 卷积，2 个通道，逐像素 softmax | $1 \times 1$ 卷积，1 个通道，sigmoid |
# | 损失 | 用 $w(x)$ 加权的交叉熵（cross-entropy）（针对相互接触的细胞） | （未说明；通常用二元交叉熵） |
# | 初始化 | 高斯分布，标准差 $\sqrt{2 / N}$（He） | Keras 的默认值，Glorot 均匀分布 |
# | 训练 | SGD，动量 0.99，每批一块大切片 | （未说明） |
# | 数据增强 | 平移、旋转、灰度值变化、弹性形变（elastic deformation） | 无 |
# | Dropout | "在收缩路径的末端" | conv4 和 conv5 之后各 0.5 |
# | 结构图 | 4 次池化，没有全连接层 | 原文的结构图：5 次池化加一个全连接层（错的：它自己的代码是 4 次池化，没有全连接层） |
#
# 用本库复现论文的设置：`UNet(padding="valid", out_channels=2, out_activation="softmax",
# kernel_initializer="paper_normal")`，每批一块切片的 `optimizers.SGD(momentum=0.99)`，以及配合 `weightmap.weight_maps` 的
# `training.fit(..., loss="weighted_ce")`。数据增强要先对图像、掩码和权重图（weight map）做形变（`augment.augment_with_weights`；
# 它的弹性形变把论文的 10 像素按图像尺寸缩放，见第 08 章），再用形变后的结果训练：`fit` 自带的 `augment` 选项要求目标与图像一样大，
# 而 valid 网络的目标是裁剪过的。

# %% [markdown] translates="0cd3ad207e80"
# ## 练习（共三道）

# %% [markdown] translates="03c5deed22d2"
# **练习 1.** 镜像：写出 `mirror_pad(image, m)`，以边缘像素为轴反射 (H, W) 的图像，在每一边填充 `m` 个像素（边缘像素本身不重复：
# `[a, b, c]` 填充 1 个像素得到 `[b, a, b, c, b]`）。不要用 `np.pad`。（论文只说缺失的上下文"通过镜像输入图像来外推"；本课程以
# 边缘像素为轴做镜像，与 `predict_tiled` 相同，也就是 `np.pad` 的 `mode="reflect"`。）检查能认出这些典型错误：重复了边缘像素
# （`"symmetric"`）、填零、把对面的边缘复制过来（`"wrap"`）。

# %%
from unet_scratch.exercises.ch10 import ValidNet, check_mirror_pad, check_skip_crop, check_tile_predict

def mirror_pad(image, m):
    ### BEGIN SOLUTION
    if m == 0:
        return image.copy()
    rows = np.concatenate([image[m:0:-1], image, image[-2:-m - 2:-1]], axis=0)
    return np.concatenate([rows[:, m:0:-1], rows, rows[:, -2:-m - 2:-1]], axis=1)
    ### END SOLUTION

check_mirror_pad(mirror_pad);


# %% [markdown] translates="9b6b2750348c"
# **练习 2（重叠切片）.** 写出第 2 节的分块循环 `tile_predict(f, image, tile, out)`：`f` 是一个 valid 网络，把一块 $(tile, tile)$
# 的输入切片映射成 $(out, out)$ 的输出切片，每边的边距为 $m = (tile - out)/2$；`image` 是 $(H, W)$ 的图像，尺寸任意。步骤：
#
# 1. 镜像填充图像：上边和左边填 $m$ 个像素，下边和右边填 $m$ 个再加上最后一块切片超出图像的部分
#    （`np.pad(..., mode="reflect")`，或者用你的 `mirror_pad`）；
# 2. 沿每个轴，输出切片从 $0, out, 2\,out, \dots$ 开始，块数以盖住整幅图像为准（最后一块可以伸出图像之外）；位于 $(i, j)$
#    的输出切片，对应的输入切片是 `padded[i:i + tile, j:j + tile]`；
# 3. 把每个 `f(...)` 写到它的位置上，返回左上角 $(H, W)$ 的部分。
#
# 算例：`ValidNet(12)`（两个 $3 \times 3$ 的 valid 卷积，边距 2）作用在 $20 \times 13$ 的图像上：12 -> 8，切片的起始行为 0、8、16，
# 起始列为 0、8；填充后的图像是 $2 + 20 + 6$ 乘 $2 + 13 + 5$。如果网络的输出与切片从哪里开始无关（例如一叠卷积），拼合的结果就等于
# 对镜像后的图像做一次整体前向，检查就拿它来对照。（带池化的 U-Net 还要求每块切片都从它的池化网格上开始，即 $2^{\text{depth}}$
# 像素的倍数，所以 `predict_tiled` 每次移动的距离可能小于 `out`。）检查能认出这些典型错误：用零而不是镜像填充、重复了边缘像素、
# 上边和左边没有留边距、切片按输入切片的尺寸移动。

# %%
def tile_predict(f, image, tile, out):
    ### BEGIN SOLUTION
    h, w = image.shape
    m = (tile - out) // 2
    nh, nw = -(-h // out), -(-w // out)                   # tiles per axis
    padded = np.pad(image, ((m, nh * out - h + m), (m, nw * out - w + m)), mode="reflect")
    result = np.zeros((nh * out, nw * out))
    for i in range(0, nh * out, out):
        for j in range(0, nw * out, out):
            result[i:i + out, j:j + out] = f(padded[i:i + tile, j:j + tile])
    return result[:h, :w]
    ### END SOLUTION

check_tile_predict(tile_predict);

# %% [markdown] translates="e356737bef15"
# 你的循环在算例上的结果，与一次整体前向对照：

# %%
f12 = ValidNet(12)
demo = rng.random((20, 13))
print("tiled == one pass over the mirrored image:",
      np.allclose(tile_predict(f12, demo, 12, 8), f12.full(np.pad(demo, 2, mode="reflect")), rtol=0, atol=1e-12))


# %% [markdown] translates="4248546d48d3"
# **练习 3.** 写出 `skip_crop(skip_size, up_size)`：尺寸为 `skip_size` 的编码器特征图，要从（上，下）两边各裁掉多少像素，
# 才能与上卷积输出的 `up_size` 对上（差值为奇数时，多出的一个像素从下边裁，与本库所用的 Keras `Cropping2D` 约定一致）。
# 算例：论文的第一层，$568 \to 392$：每边 88。检查能认出这些典型错误：多出的像素从上边裁、整个差值都从一边裁掉、差值没有减半。

# %%
def skip_crop(skip_size, up_size):
    ### BEGIN SOLUTION
    total = skip_size - up_size
    return total // 2, total - total // 2
    ### END SOLUTION

check_skip_crop(skip_crop);

# %% [markdown] translates="954c46fbd7cd"
# ## 本章练习
#
# 1. `mirror_pad(image, m)`：重叠切片策略的镜像边界，不用 `np.pad`。
# 2. `tile_predict(f, image, tile, out)`：重叠切片的循环：镜像填充，切出相互重叠的输入切片，再把输出切片拼合起来。
# 3. `skip_crop(skip_size, up_size)`：论文的跳跃连接要从编码器特征图上裁掉多少。
