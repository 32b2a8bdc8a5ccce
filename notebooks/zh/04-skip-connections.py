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

# %% [markdown] translates="62d4b8cb52f9"
# # 04 · 跳跃连接：拼接、裁剪，以及跳跃连接带来了什么
#
# **要你实现的：** 让 U-Net 成为 *U* 的那个部件——跳跃连接（skip connection）。编码器（encoder）在每一层的特征图（feature map）被送到对面，与解码器（decoder）上采样（upsampling）后的特征图**拼接**（concatenation）；在论文的 `valid` 网络里，它还要先
# **从中心裁剪**（crop）到解码器特征图（较小）的尺寸。你要写出这两个运算的梯度：拼接的梯度是**切分**，裁剪的梯度是**粘贴**。
#
# **要你验证的：**
# 1. `ops/concat.py` 的拼接及其梯度切分，与 `tf.concat` + `tf.GradientTape` 对照；
# 2. 论文中 572 $\to$ 388 网络的裁剪量（每边 4、16、40 和 88 个像素），以及 `center_crop` 的前向和反向，与
#    `keras.layers.Cropping2D` 对照；
# 3. 一个实验：同一个小 U-Net **带**和**不带**跳跃连接（参数相同，初始权重也相同），各用 3 个随机种子训练，直到验证集上不再进步：跳跃连接到底值多少，用测量来回答。
#
# 练习中你要写这两个梯度（`concat_backward`、`center_crop_backward`）和论文的裁剪量（`skip_crops`）；检查会说出典型错误的名字（两半对调、把窗口贴在角上、奇数差值多出的像素放错了边……）。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import numpy as np
import matplotlib.pyplot as plt
from scipy import ndimage
from unet_scratch import UNet, data, metrics, ops
from unet_scratch.resources import repo_path
from unet_scratch.ops.concat import concatenate, concatenate_backward, crop_amounts, center_crop
from unet_scratch.keras_ref import import_tensorflow, import_keras
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown] translates="f69c3cf317c6"
# ## 1. 拼接，以及它的梯度为什么是切分
#
# 在解码器第 $\ell$ 层，上卷积（up-convolution）给出 $u \in \mathbb{R}^{N \times H \times W \times C_u}$，编码器则把它的特征图
# $s \in \mathbb{R}^{N \times H \times W \times C_s}$ 送过来。模型沿通道（channel）轴把两者叠在一起，上采样的特征图在前（`[up, skip]`，与原文的 Keras 代码相同）：
#
# $$y = [\,u \mid s\,] \in \mathbb{R}^{N \times H \times W \times (C_u + C_s)}, \qquad
# y_{n,i,j,c} = \begin{cases} u_{n,i,j,c} & c < C_u \\ s_{n,i,j,c - C_u} & c \ge C_u. \end{cases}$$
#
# 每个输出元素都恰好是某一个输入元素的副本，所以雅可比矩阵只是一个 0/1 的选择矩阵，链式法则（chain rule）
# $\frac{\partial L}{\partial u_{n,i,j,c}} = \sum_{c'} \frac{\partial L}{\partial y_{n,i,j,c'}}
# \frac{\partial y_{n,i,j,c'}}{\partial u_{n,i,j,c}}$ 只剩下一项：
#
# $$\frac{\partial L}{\partial u} = \delta_{\,\dots,\;0:C_u}, \qquad \frac{\partial L}{\partial s} = \delta_{\,\dots,\;C_u:C_u + C_s},
# \qquad \delta = \frac{\partial L}{\partial y}.$$
#
# 完全没有算术：梯度只是被**分派**出去，前 $C_u$ 个通道沿解码器往下传，其余的穿过跳跃连接回到编码器。第 05 章会沿着后一半梯度，一直走到它与编码器自己的梯度*相加*的地方。

# %%
up = rng.standard_normal((2, 8, 8, 3)).astype(np.float32)      # the decoder's up-sampled map, C_u = 3
skip = rng.standard_normal((2, 8, 8, 5)).astype(np.float32)    # the encoder's map, C_s = 5
y, cache = concatenate([up, skip])
dy = rng.standard_normal(y.shape).astype(np.float32)           # some upstream gradient dL/dy
dup, dskip = concatenate_backward(dy, cache)

print("y:", y.shape, " cache (channel sizes, axis):", cache)
print("dup:", dup.shape, " dskip:", dskip.shape)
print("forward by hand == np.concatenate:", np.array_equal(y[..., :3], up) and np.array_equal(y[..., 3:], skip))
print("backward by hand == the package's split:",
      np.array_equal(dup, dy[..., :3]) and np.array_equal(dskip, dy[..., 3:]))

# %%
fig, ax = plt.subplots(figsize=(8, 3), dpi=100)
flat = dy[0].reshape(-1, dy.shape[-1]).T                       # (channels, pixels)
im = ax.imshow(flat, aspect="auto", cmap="viridis", interpolation="nearest")
ax.axhline(2.5, color="white", lw=3)
box = dict(facecolor="black", alpha=0.6, edgecolor="none")
ax.text(1, 1, "-> dL/d(up): back down the decoder", color="white", va="center", fontsize=9, bbox=box)
ax.text(1, 5, "-> dL/d(skip): across to the encoder", color="white", va="center", fontsize=9, bbox=box)
ax.set_xlabel("pixel index i * W + j (image 0)"); ax.set_ylabel("channel c of dL/dy")
ax.set_title("Concatenation's gradient: channels 0-2 go to the up path, 3-7 to the skip, untouched")
fig.colorbar(im, ax=ax, label="dL/dy (a.u.)")
fig.tight_layout(); plt.show()

# %% [markdown] translates="eb0c3f319544"
# ### 验证：与 TensorFlow 的切分对照
#
# 用 `GradientTape` 记录 `tf.concat`：对 $L = \sum y \odot \delta$，tape 对 $u$ 和 $s$ 求出的梯度恰好就是 $\partial L / \partial u$
# 和 $\partial L / \partial s$。拼接只是复制浮点数，它的梯度也只是把它们复制回去，所以两者应当**逐位相同**，而不只是在容差之内一致。

# %%
u_t, s_t = tf.constant(up), tf.constant(skip)
with tf.GradientTape() as tape:
    tape.watch([u_t, s_t])
    y_t = tf.concat([u_t, s_t], axis=-1)
    loss_t = tf.reduce_sum(y_t * dy)
du_t, ds_t = tape.gradient(loss_t, [u_t, s_t])

print("forward identical to tf.concat (bit for bit):     ", np.array_equal(y, y_t.numpy()))
print("dL/d(up) identical to the tape's (bit for bit):   ", np.array_equal(dup, du_t.numpy()))
print("dL/d(skip) identical to the tape's (bit for bit): ", np.array_equal(dskip, ds_t.numpy()))

# %% [markdown] translates="a147bb529c75"
# ## 2. 论文的中心裁剪
#
# 原文的网络给每个 $3\times3$ 卷积（convolution）都加了填充（padding）（`same`），所以编码器在某一层的特征图与解码器在这一层的一样大，跳跃连接直接进入拼接。Ronneberger 等人用的是 **valid** 卷积：每次卷积丢掉 1 个像素宽的边框，每层每边共丢 2 个像素。等解码器回到某一层时，它上采样得到的特征图已经比编码器在这一层的特征图*小*，所以论文从跳跃连接的特征图中心裁出一块：
#
# $$\text{top} = \Big\lfloor \frac{H - h}{2} \Big\rfloor, \quad \text{bottom} = (H - h) - \text{top}, \qquad
# s' = s_{\,:,\ \text{top} : \text{top} + h,\ \text{left} : \text{left} + w,\ :}$$
#
# （`crop_amounts(H, W, h, w)` 返回 `((top, bottom), (left, right))`；差值为奇数时，多出的一行留给下方。）裁剪就是切片，所以它的梯度是把 $\delta$ **粘贴**回一个形状与跳跃连接的特征图相同的全零数组：被裁掉的边框从跳跃连接得不到梯度（它仍能通过更深的那条路径得到一些梯度，因为那条路径看到过它）。
#
# 这些裁剪由模型自己构造。对论文的 $572 \times 572$ 图块：

# %%
paper = UNet(input_shape=(572, 572, 1), base_filters=4, depth=4, padding="valid", dropout=0, seed=0)
print(f"{'decoder level':<15}{'skip (encoder)':<17}{'up-sampled':<13}{'crop per side'}")
crops = []
for block in reversed(paper.decoder):                        # level 1 (top) first
    skip_hw, up_hw = block.crop.input_shape[1:3], block.upconv.output_shape[1:3]
    (top, bottom), (left, right) = block.crop.cropping
    crops.append(top)
    print(f"{block.level:<15}{str(skip_hw):<17}{str(up_hw):<13}{top} (top/bottom/left/right: {top}, {bottom}, {left}, {right})")
print("input 572 -> output", paper.output_shape[1:3])
print("crops per side are 88, 40, 16, 4 (top level to deepest):", crops == [88, 40, 16, 4])
print("crop_amounts(568, 568, 392, 392) == ((88, 88), (88, 88)):", crop_amounts(568, 568, 392, 392) == ((88, 88), (88, 88)))

# %% [markdown] translates="8664321a279a"
# 窗口在真实特征图上的位置：第一层编码器的输出（$572 \times 572$ 的膜结构图像经过两次 valid 卷积，得到 $568 \times 568$），以及解码器保留的 $392 \times 392$ 窗口。最后一幅图是 $\delta = 1$ 时裁剪的梯度，也就是粘贴。

# %%
image, _ = data.load("membranes", n=1, size=572)
enc1 = paper.encoder[0]
fmap = enc1.conv2.forward(enc1.conv1.forward(image))                  # (1, 568, 568, 4)
kept, crop_cache = center_crop(fmap, (392, 392))
dfmap = ops.center_crop_backward(np.ones_like(kept), crop_cache)

fig, ax = plt.subplots(1, 3, figsize=(9.5, 3.3), dpi=100)
shown = ndimage.gaussian_filter(np.abs(fmap[0]).mean(axis=-1), 2)     # mean |activation|, smoothed for display
lo, hi = np.percentile(shown, [1, 99])
ax[0].imshow(shown, cmap="gray", vmin=lo, vmax=hi)
ax[0].add_patch(plt.Rectangle((88 - 0.5, 88 - 0.5), 392, 392, fill=False, ec="yellow", lw=2))
ax[0].set_title("encoder level 1, mean |activation| (smoothed)\n568 x 568; yellow: the 392 x 392 kept", fontsize=10)
ax[1].imshow(ndimage.gaussian_filter(np.abs(kept[0]).mean(axis=-1), 2), cmap="gray", vmin=lo, vmax=hi, extent=(87.5, 479.5, 479.5, 87.5))
ax[1].set_xlim(0, 568); ax[1].set_ylim(568, 0)
ax[1].set_title("center_crop: 88 px cut per side", fontsize=10)
im = ax[2].imshow(dfmap[0, ..., 0], cmap="viridis")
ax[2].set_title("its gradient for dy = 1:\nzeros where the crop cut", fontsize=10)
fig.colorbar(im, ax=ax[2], fraction=0.046, label="dL/dx")
for a in ax:
    a.set_xlabel("x (pixels)"); a.set_ylabel("y (pixels)")
fig.suptitle("The paper's skip crop: the outer 88 px of level 1 never reach the decoder through the skip", fontsize=11)
fig.tight_layout(); plt.show()

# %% [markdown] translates="671e030843e0"
# ### 验证：与 `keras.layers.Cropping2D` 对照
#
# 把 `crop_amounts` 的结果传给 Keras 的 `Cropping2D(((top, bottom), (left, right)))`，它必须保留同一个窗口，差值为奇数时也一样（9 $\to$ 4：上方裁掉 2 行，下方裁掉 3 行）；它的梯度（通过 `GradientTape` 求出）也必须就是我们的粘贴。

# %%
for shape, size in [((2, 568 // 8, 568 // 8, 3), (49, 49)), ((1, 9, 9, 2), (4, 4)), ((2, 10, 7, 3), (5, 4))]:
    x = rng.standard_normal(shape).astype(np.float32)
    ours, cache = center_crop(x, size)
    dy = rng.standard_normal(ours.shape).astype(np.float32)
    layer = keras.layers.Cropping2D(crop_amounts(shape[1], shape[2], *size))
    x_t = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(x_t)
        y_t = layer(x_t)
        loss_t = tf.reduce_sum(y_t * dy)
    dx_t = tape.gradient(loss_t, x_t)
    print(f"{str(shape[1:3]):>9} -> {size}: forward identical {np.array_equal(ours, y_t.numpy())}, "
          f"gradient identical {np.array_equal(ops.center_crop_backward(dy, cache), dx_t.numpy())}")


# %% [markdown] translates="5963eaae3698"
# ## 3. 跳跃连接带来了什么：实测
#
# 有一种很诱人的说法：经过几次池化（pooling）之后，瓶颈层（bottleneck）太粗糙，不知道一道 2 像素宽的膜壁从哪里经过，只有跳跃连接才能把它定位。对 U-Net 来说，这个说法是错的。原文的网络在 $256 \times 256$ 的输入上，收缩路径（contracting path）的终点是一个
# $16 \times 16 \times 1024$ 的张量：262,144 个数，是 65,536 个输入像素的**四倍**。本节的小 U-Net（输入 $64 \times 64$，最上层
# 8 个滤波器（filter），深度 3）的瓶颈层是 $8 \times 8 \times 64$：4,096 个数对应 4,096 个像素。通道很多的粗网格同样能精细地编码位置；跳跃连接增加的并不是容量。它们增加的是：
#
# 1. **归纳偏置（inductive bias）。** 解码器的每一层都收到编码器在同一分辨率下的特征图。于是，把边缘放在编码器看到它的地方只需要一小段计算（拼接之后的两次 $3 \times 3$ 卷积），而不必让网络学会把它编码进瓶颈层的通道，再经过三次上卷积解码回来。没有什么阻止不带跳跃连接的网络学会这一点；问题在于，用同样的数据和训练，它能学得多好。
# 2. **更短的梯度路径。** 梯度经跳跃连接到达最上层编码器只需穿过 3 个带权重的层，而沿着 U 形下去再上来要穿过 16 个（第 05 章测量这两部分梯度）。
#
# 这两个论证都说不出影响有多大；实验才能说出来。`UNet(..., skip_connections=False)` 在解码器的每一层用**零**代替跳跃连接：层相同，参数量相同，同一个随机种子下初始权重也相同。解码器第一次卷积中对应跳跃连接通道的权重仍然保留，只是乘的是零；反向传播（backpropagation）时也没有任何梯度从这里传回去（零是常数）。

# %%
config = dict(input_shape=(64, 64, 1), base_filters=8, depth=3, dropout=0, kernel_initializer="he_normal", seed=0)
with_skips, without_skips = UNet(**config), UNet(**config, skip_connections=False)
print("bottleneck values per image:", np.prod(with_skips.bottleneck.conv2.output_shape[1:]), "| input pixels:", 64 * 64)
print("same parameter count:", with_skips.count_params() == without_skips.count_params())
print("identical initial weights:", all(np.array_equal(with_skips.params[k], without_skips.params[k])
                                        for k in with_skips.params))
x_demo = data.load("membranes", n=2, size=64)[0]
print("different outputs (the decoder sees zeros):", not np.allclose(with_skips.forward(x_demo),
                                                                    without_skips.forward(x_demo)))

# %% [markdown] translates="d48aaadeb3e2"
# **实验**已由 `benchmarks/skips.py` 预先算好（约需 10 分钟 CPU 时间，放在本章里太长；用 `python benchmarks/skips.py` 可以重跑，它会重写 `benchmarks/results/skips.json`）。数据：`data.load("membranes", size=64)`，训练集 128 张、验证集 16 张、测试集 16 张图像。每个网络用 `training.fit` 从 **3 个随机种子**（决定初始权重和批次顺序）开始训练：Adam，学习率（learning rate）$10^{-3}$，批大小（batch size）4，二元交叉熵（binary cross-entropy），He 正态初始化，Numba 后端，**直到验证损失连续 15 轮（epoch）没有改善**；然后取验证损失最好的那一轮的权重，在测试图像上打分。分数有两项：阈值化之后预测结果的 Dice 系数（Dice coefficient），以及
# **边界误差**，即膜边缘 2 像素以内被判错的像素所占的比例，膜壁的走向正是在这里确定的。

# %%
import json
with open(repo_path("benchmarks/results/skips.json")) as f:
    skips_result = json.load(f)
cfg = skips_result["config"]
runs = {True: [r for r in skips_result["runs"] if r["skip_connections"]],
        False: [r for r in skips_result["runs"] if not r["skip_connections"]]}
print(f"data: {skips_result['data']['train']} training, {skips_result['data']['val']} validation, "
      f"{skips_result['data']['test']} test images of {cfg['size']} x {cfg['size']}; seeds {cfg['seeds']}")
print(f"stopping: validation loss not improved for {cfg['patience']} epochs (at most {cfg['max_epochs']})")
print(f"{'':<15}{'epochs run':<15}{'best epoch':<15}{'test Dice':<16}{'boundary error'}")
for skips, name in ((True, "with skips"), (False, "without skips")):
    d = [r["test_dice"] for r in runs[skips]]
    b = [r["test_boundary_error"] for r in runs[skips]]
    print(f"{name:<15}{str([r['epochs'] for r in runs[skips]]):<15}{str([r['best_epoch'] for r in runs[skips]]):<15}"
          f"{np.mean(d):.2f} +- {np.std(d):.2f}    {np.mean(b):.2f} +- {np.std(b):.2f}")
print("(mean +- standard deviation over the seeds)")

# %%
def stacked(key, skips):
    """(seeds, longest run) array of one per-epoch curve, NaN after a run stopped."""
    curves = [r["history"][key] for r in runs[skips]]
    out = np.full((len(curves), max(map(len, curves))), np.nan)
    for i, c in enumerate(curves):
        out[i, :len(c)] = c
    return out

fig, ax = plt.subplots(1, 2, figsize=(10, 3.8), dpi=100)
for skips, name, color in ((True, "with skips", plt.cm.viridis(0.25)), (False, "without skips", plt.cm.viridis(0.75))):
    for a, key, label in ((ax[0], "loss", "training loss (BCE)"), (ax[1], "val_dice", "validation Dice")):
        c = stacked(key, skips)
        epochs = np.arange(1, c.shape[1] + 1)
        a.plot(epochs, np.nanmean(c, 0), color=color, label=f"{name}: mean of {len(c)} seeds")
        a.fill_between(epochs, np.nanmin(c, 0), np.nanmax(c, 0), color=color, alpha=0.3, lw=0,
                       label=f"{name}: min to max")
        a.set_xlabel("epoch"); a.set_ylabel(label)
    best = [r["best_epoch"] for r in runs[skips]]
    ax[1].plot(best, [r["history"]["val_dice"][e - 1] for r, e in zip(runs[skips], best)], "k|", ms=10)
ax[0].set_title("Training loss keeps falling in both\n(they begin to overfit 128 images)", fontsize=10)
ax[1].set_title("Validation Dice plateaus, higher with skips\n(| = each seed's best validation-loss epoch)",
                fontsize=10)
ax[0].legend(fontsize=7); ax[1].set_ylim(0, 1)
fig.tight_layout(); plt.show()

# %%
x_test, y_test = data.load("membranes", "test", n=2, size=64)
pred = np.load(repo_path("benchmarks/results/skips-pred.npy")) / 255.0   # (2 variants, 2, 64, 64)
fig, ax = plt.subplots(2, 4, figsize=(9.5, 5.4), dpi=100)
for i in range(2):
    panels = [(x_test[i, ..., 0], "test input"), (y_test[i, ..., 0], "target membranes"),
              (pred[0, i], f"with skips (Dice {metrics.dice(pred[0, i], y_test[i, ..., 0]):.2f})"),
              (pred[1, i], f"without skips (Dice {metrics.dice(pred[1, i], y_test[i, ..., 0]):.2f})")]
    for c, (img, title) in enumerate(panels):
        ax[i, c].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax[i, c].set_title(title, fontsize=9)
        ax[i, c].set_xlabel("x (pixels)"); ax[i, c].set_ylabel("y (pixels)")
fig.suptitle("Seed 0's best weights on two test images: without skips the walls come out thick and blurred",
             fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown] translates="0d9d736d31e7"
# **实验说明了什么。** 在参数、数据、优化器（optimizer）和停止规则都相同的情况下，不带跳跃连接的网络在测试集上的 Dice 约为 0.71，带跳跃连接的为 0.84（各 3 个随机种子，标准差都小于 0.01），边界误差约为后者的两倍：它画出的膜壁又粗又模糊。两个网络都训练到验证集不再进步为止；到那时训练损失仍在下降，验证损失却已经上升，说明两者都开始过拟合（overfitting）这 128 张图像，更多的数据或数据增强（data augmentation）会让两个数字都提高。不带跳跃连接的网络起步也更晚：最初 2 到 4 轮，它的验证 Dice 一直接近 0，这与它更长的梯度路径相符（到最上层编码器要经过 16 个带权重的层；第 05 章会测量这些梯度）。
#
# **实验没有说明什么。** 这只是一个小网络、一个数据集、一种训练方案。换成原文在 256 像素上的完整网络、别的数据、加上数据增强，或者训练得久得多，差距未必一样；瓶颈层能容纳与图像一样多的数，所以也不能排除不带跳跃连接的网络同样能把膜壁定位得很好。测量支持的结论要窄得多：在这里，跳跃连接让同一个网络把膜壁学得更快、更好。
#
# ## 练习
#
# 每道练习都配有一个检查函数：它在若干测试用例上运行你的答案，指出哪里不对；认出典型错误时，会直接说出错误的名字。

# %% [markdown] translates="f9377c79f85b"
# **练习 1.** 写出 `concat_backward(dy, c1)`：对 $y = [x_1 \mid x_2]$（通道在最后），其中 $x_1$ 有 `c1` 个通道，由 $\delta = $ `dy`
# 求出梯度，返回元组 `(dx1, dx2)`。形状：`dy` 为 $(N, H, W, C_1 + C_2)$，`dx1` 为 $(N, H, W, C_1)$，`dx2` 为 $(N, H, W, C_2)$。算例：一个像素，`dy = [1, 2, 3]`、`c1 = 2`，得 `dx1 = [1, 2]`、`dx2 = [3]`。

# %%
from unet_scratch.exercises.ch04 import check_concat_backward, check_skip_crops, check_center_crop_backward

def concat_backward(dy, c1):
    """dy: (N, H, W, C1 + C2), c1 = C1 -> (dx1: (N, H, W, C1), dx2: (N, H, W, C2))."""
    ### BEGIN SOLUTION
    return dy[..., :c1], dy[..., c1:]
    ### END SOLUTION

check_concat_backward(concat_backward);


# %% [markdown] translates="2a7b9c7a3ada"
# **练习 2.** 写出 `skip_crops(size, depth)`：在论文的 valid U-Net（每层两次 $3\times3$ valid 卷积，$2\times2$ 池化，$2\times2$、步幅（stride）2 的上卷积）中，输入为 `size` $\times$ `size` 的图块时，解码器第 1 层（最上层）到第 `depth` 层（最深层）的跳跃连接
# **每一边**裁掉的像素数：572、深度 4 时为 `[88, 40, 16, 4]`。然后试试 188：为什么答案与图块的大小无关？

# %%
def skip_crops(size, depth):
    """size: the input tile's side (pixels), depth: the number of poolings -> [c_1, ..., c_depth], the pixels
    cut from each side of the skip at decoder level 1 (top) ... depth (deepest)."""
    ### BEGIN SOLUTION
    skips, n = [], size
    for _ in range(depth):
        n -= 4
        skips.append(n)
        n //= 2
    n -= 4
    crops = []
    for skip in reversed(skips):
        n *= 2
        crops.append((skip - n) // 2)
        n -= 4
    return crops[::-1]
    ### END SOLUTION

check_skip_crops(skip_crops);


# %% [markdown] translates="32a1ccce5158"
# **练习 3.** 写出 `center_crop_backward(dy, x_shape)`：对形状为 `x_shape` $(N, H, W, C)$ 的 `x`，求 `center_crop(x, dy.shape[1:3])`
# 的梯度：一个全零数组，在裁剪取走窗口的位置贴上 `dy`（差值为奇数时，多出的一行或一列在下方或右侧被裁掉）。算例：`x_shape` 为
# $(1, 9, 9, 1)$，`dy` 为 $4 \times 4$：裁掉 $9 - 4 = 5$ 行，上方 2 行、下方 3 行，所以 `dy` 落在第 2 到第 5 行、第 2 到第 5 列。（本章调用的是本库的版本 `ops.center_crop_backward`，所以你的函数不会替换它。）

# %%
def center_crop_backward(dy, x_shape):
    """dy: (N, h, w, C), x_shape: (N, H, W, C) with H >= h, W >= w -> dx: (N, H, W, C)."""
    ### BEGIN SOLUTION
    n, h, w, c = x_shape
    top, left = (h - dy.shape[1]) // 2, (w - dy.shape[2]) // 2
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
    return dx
    ### END SOLUTION

check_center_crop_backward(center_crop_backward);

# %% [markdown] translates="87fbb92d7912"
# **本章练习：** 1. `concat_backward`（拼接的梯度是切分），2. `skip_crops`（论文在每一层的裁剪量，572 时为 88/40/16/4），
# 3. `center_crop_backward`（裁剪的梯度是粘贴）。检查能认出的错误：两半对调、两个梯度的顺序颠倒、两个输入都返回 `dy`、沿行切分（练习 1）；给出两边裁剪的总量而不是一边的、各层顺序颠倒、每层只算一次卷积（练习 2）；把窗口贴在左上角、奇数差值分错了边、返回裁剪后形状的 `dy`（练习 3）。
