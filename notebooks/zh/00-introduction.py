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

# %% [markdown] translates="8649c057e31c"
# # 00 · 导论：U-Net 一览，以及环境检查
#
# **本课程要你亲手实现的：** U-Net 的每一个部件——卷积（convolution）、最大池化（max-pooling）、转置卷积（transposed
# convolution）、跳跃连接（skip connection）、损失函数（loss function）、优化器（optimizer）——每个部件都有前向传播（forward
# pass）*和*反向传播（backpropagation），全部用 NumPy 写成。
# **要你验证的：** 每个部件都与 TensorFlow/Keras 逐一对照，精确到最后一位浮点数。
#
# 在这一章里，你将
# 1. 了解*分割*（segmentation）对网络提出了什么要求，以及为什么全卷积网络（fully convolutional network）胜过"给每个像素周围的图像块（patch）分类"的做法；
# 2. 用 `unet_scratch` 搭出原文（本课程的出发点：《UNet原理与代码实例讲解》）中的 U-Net，并按它的真实形状画出来；
# 3. 看清原文的结构图错在哪里；
# 4. 检查你的机器是否具备本课程所需的环境；
# 5. 写三个小函数，每个都有检查：`same` 填充（padding）的 U-Net 各层的尺寸（`same_unet_sizes`）、一个卷积层的参数量（`conv_params`）、每个像素周围的图像块（`pixel_patches`）；借助最后一个，你会看到：在图像上逐像素滑动的分类器，其实就是一次卷积。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow, should a later cell import it

import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet

rng = np.random.default_rng(0)


# %% [markdown] translates="0111b27ae6b5"
# ## 1. 分割：给每个像素一个标签
#
# 分类器把一幅图像 $x \in \mathbb{R}^{H \times W \times C}$ 映射成一个标签。分割网络则给**每个像素**一个标签：对两类问题，输出 $y \in [0, 1]^{H \times W}$，即每个像素属于前景的概率。输出与输入的高和宽相同，这正是 U-Net
# 需要一条"往回走"的上行路径的原因。

# %%
def toy_cells(size=128, n=7, seed=0):
    r = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size]
    mask = np.zeros((size, size), bool)
    for cy, cx, rad in zip(r.uniform(15, size - 15, n), r.uniform(15, size - 15, n), r.uniform(8, 16, n)):
        mask |= (yy - cy) ** 2 + (xx - cx) ** 2 < rad ** 2
    image = 0.3 + 0.4 * mask + 0.15 * r.standard_normal((size, size))
    return np.clip(image, 0, 1), mask

image, mask = toy_cells()
fig, ax = plt.subplots(1, 3, figsize=(9, 3.2), dpi=100)
ax[0].imshow(image, cmap="gray"); ax[0].set_title("input image x")
ax[1].imshow(mask, cmap="gray"); ax[1].set_title("target y: one label per pixel")
ax[2].imshow(image, cmap="gray"); ax[2].contour(mask, [0.5], colors="yellow", linewidths=1)
ax[2].set_title("the target outlined on the image")
for a in ax:
    a.set_xlabel("x (pixels)"); a.set_ylabel("y (pixels)")
fig.suptitle("Segmentation: same height and width in and out")
fig.tight_layout()

# %% [markdown] translates="98d91aa4038c"
# ### U-Net 之前：在每个像素上滑动的分类器
#
# U-Net 论文用来比较的网络（Ciresan 等，2012，ISBI 2012 电镜图像分割挑战赛的冠军）用滑动窗口（sliding window）的方式，对每个像素周围的**图像块**（patch）做分类，以此给这个像素定标签。U-Net 论文指出了它的两个缺点：一是慢，因为每个像素都要把网络跑一遍，而相邻的图像块几乎完全重叠（同样的计算被重复了许多次）；二是图像块越大，上下文越多，定位却越差。U-Net 所依托的
# **全卷积网络**（fully convolutional network，FCN；Long、Shelhamer 和 Darrell，"Fully Convolutional Networks for Semantic
# Segmentation"，CVPR 2015）一次前向就算出所有像素的标签，并且共享了重叠部分的计算：把同一组权重作用在每个像素周围的图像块上，
# *本身就是*一次卷积。练习 3 会把这一点落到实处。

# %% [markdown] translates="11723bf51228"
# ## 2. 从零搭出原文中的 U-Net
#
# `UNet()` 的默认参数恰好就是原文中的 Keras 模型：在第 $\ell = 1 \dots 4$ 层，先做两次 $3\times3$ 卷积，滤波器（filter）个数为
# $64 \cdot 2^{\ell-1}$，`same` 填充（padding），接 ReLU；再做一次 $2\times2$ 最大池化，把高和宽减半。底部是由两个 1024 滤波器卷积组成的瓶颈层（bottleneck）。然后往回走：每一层先用 $2\times2$、步幅（stride）为 2 的转置卷积把尺寸加倍，再与编码器中同样尺寸的特征图（feature map）拼接（concatenation）——这就是**跳跃连接**——然后做两次 $3\times3$ 卷积。最后用一个带 sigmoid 的 $1\times1$
# 卷积输出概率图。Dropout 0.5 位于最深的编码器块之后和瓶颈层之后。
#
# 使用 `same` 填充时，第 $\ell$ 层特征图的高为 $H / 2^{\ell - 1}$ 像素，所以 $H$ 必须能被 $2^4 = 16$ 整除。

# %%
model = UNet(input_shape=(256, 256, 1), seed=0)
model.summary();          # prints the table (the `;` hides the same table returned as a string)


# %%
def draw_unet(model, ax):
    """Draw the U from the model's own layer shapes: one box per conv block, height = spatial size."""
    rows = {name: shape for name, _, shape, _ in model.summary_rows()}
    d = model.depth
    blocks = [(f"enc{i}", rows[f"enc{i}_conv2"], i - 1) for i in range(1, d + 1)]
    blocks += [("bottleneck", rows["bottleneck_conv2"], d)]
    blocks += [(f"dec{i}", rows[f"dec{i}_conv2"], i - 1) for i in range(d, 0, -1)]
    top = model.input_shape[0]
    for k, (name, shape, level) in enumerate(blocks):
        h = shape[1] / top
        ax.add_patch(plt.Rectangle((k, -level - h / 2), 0.6, h, color=plt.cm.viridis(level / d)))
        ax.text(k + 0.3, -level - h / 2 - 0.12, f"{shape[1]}x{shape[2]}\n{shape[3]} ch", ha="center",
                va="top", fontsize=7)
    for i in range(1, d + 1):     # skips: encoder level i -> decoder level i
        x0, x1 = i - 1 + 0.6, 2 * d - (i - 1)
        ax.annotate("", (x1, -(i - 1) + 0.05), (x0, -(i - 1) + 0.05),
                    arrowprops=dict(arrowstyle="->", color="gray", ls="--"))
    ax.text(d / 2 - 0.6, 0.65, "skip connections (concatenate)", color="gray", fontsize=8)
    ax.set_xlim(-0.5, 2 * d + 1); ax.set_ylim(-d - 1, 1)
    ax.set_xlabel("position along the network (conv blocks)"); ax.set_yticks(-np.arange(d + 1))
    ax.set_yticklabels([f"level {l + 1}" for l in range(d)] + ["bottleneck"])

fig, ax = plt.subplots(figsize=(9, 4), dpi=100)
draw_unet(model, ax)
ax.set_title("The U-Net drawn from its real shapes: four poolings down, four up-convolutions back")
fig.tight_layout()

# %% [markdown] translates="61a9bc0f6c65"
# ## 3. 原文的结构图错在哪里
#
# 原文的结构图把**五个**池化（pooling）层串起来，接到一个**全连接层**（fully connected layer）上。而原文自己代码中的网络（以及
# Ronneberger 等 2015 年的论文）只有**四次**池化，**没有**全连接层：瓶颈层是两个卷积。这一点很重要：没有全连接层，U-Net 就是
# *全卷积*的，因此它能处理任何尺寸可被 16 整除的图像，而且每个输出像素都由同一组权重算出。原文的"数学模型"把每个阶段写成若干
# $\mathrm{ReLU}(Wx + b)$ 的复合，并把 $\circ$ 称为卷积；真正的公式见第 01 章。让模型自己来作证：

# %%
types = [t for _, t, _, _ in model.summary_rows()]
print("max-pooling layers:", types.count("MaxPooling2D"))
print("dense layers:      ", types.count("Dense"))
print("parameters == 31,030,593 (the article's Keras model):", model.count_params() == 31_030_593)

# %% [markdown] translates="cd1a27184c71"
# ### 验证：一个完整（小型）U-Net 的反向传播
#
# 后面每一章各证明一个部件；这里先预览一下最终结果。一个深度为 2、float64 精度的 U-Net，把它的解析梯度（`model.backward`）与中心差分（central differences）$\partial L / \partial \theta \approx (L(\theta + h) - L(\theta - h)) / 2h$ 在几百个权重上逐一比较：

# %%
from unet_scratch.gradcheck import numeric_gradient, rel_error, sample_indices

small = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=0, dtype="float64")
for name in small.params:                              # non-zero biases keep ReLUs off their kink
    if name.endswith("/bias"):
        small.params[name] = 0.1 * rng.standard_normal(small.params[name].shape)
x = rng.standard_normal((2, 16, 16, 1))
dy = rng.standard_normal(small.forward(x).shape)
small.backward(dy)
worst = 0.0
for name, p in small.params.items():
    idx = sample_indices(p.shape, 10, rng)
    num = numeric_gradient(lambda _: small.forward(x), p, dy, h=1e-6, indices=idx)
    worst = max(worst, rel_error(np.array([small.grads[name][i] for i in idx]), np.array([num[i] for i in idx])))
print("worst relative error below 1e-6:", worst < 1e-6)

# %% [markdown] translates="c5f2727b224c"
# ## 4. 环境检查
#
# 不同机器上的版本各不相同，所以测试不比对这个单元格的输出。

# %%
# NBVAL_IGNORE_OUTPUT
from importlib.metadata import version, PackageNotFoundError
for pkg in ["numpy", "numba", "tensorflow", "keras", "matplotlib", "scipy"]:
    try:
        print(f"{pkg:<11} {version(pkg)}")
    except PackageNotFoundError:
        print(f"{pkg:<11} not installed")
print("backends that work here:", us.backend.available_backends())

# %%
print("the numpy backend is always there:", "numpy" in us.backend.available_backends())

# %% [markdown] translates="76188183138e"
# ## 练习
#
# 每道练习都配有一个检查函数：它在若干测试用例上运行你的答案，指出哪里不对；如果你的错误是它认识的典型错误，它会直接说出错误的名字。

# %% [markdown] translates="6da32f9afc90"
# **练习 1.** 写出 `same_unet_sizes(size, depth)`：`same` 填充的 U-Net 从最上层到瓶颈层各层的空间尺寸。每次 $2\times2$
# 池化把尺寸减半，深度为 $d$ 的 U-Net 池化 $d$ 次，所以共有 $d + 1$ 层：输入 256、深度 4 时为 `[256, 128, 64, 32, 16]`。

# %%
from unet_scratch.exercises import check_conv_params, check_pixel_patches, check_same_unet_sizes

def same_unet_sizes(size, depth):
    """size: the input's height (divisible by 2**depth), depth: the number of poolings.
    Returns [size at level 1 (the top), ..., size at the bottleneck]: depth + 1 ints."""
    ### BEGIN SOLUTION
    return [size // 2 ** level for level in range(depth + 1)]
    ### END SOLUTION

check_same_unet_sizes(same_unet_sizes);


# %% [markdown] translates="831492d0a0b1"
# **练习 2.** 写出 `conv_params(kernel_size, c_in, c_out)`：一个带偏置（bias）的 `Conv2D` 的参数量。$C_{out}$ 个滤波器中，每个都是
# $k \times k \times C_{in}$ 的卷积核（kernel）再加一个偏置。算例：原文的第一层，从 1 个通道（channel）到 64 个通道的
# $3\times3$ 卷积，参数量为 $3 \cdot 3 \cdot 1 \cdot 64 + 64 = 640$。

# %%
def conv_params(kernel_size, c_in, c_out):
    """Parameters of a Conv2D(c_out, kernel_size) with a bias, on an input of c_in channels."""
    ### BEGIN SOLUTION
    return kernel_size * kernel_size * c_in * c_out + c_out
    ### END SOLUTION

check_conv_params(conv_params);

# %% [markdown] translates="585ad8c96db5"
# 有了它，整个模型的参数总数就是一笔你能手算的加法（转置卷积的参数量公式相同，池化层和 Dropout 没有参数）：

# %%
convs = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "Conv2DTranspose")]
by_hand = sum(conv_params(layer.kernel_size[0], layer.input_shape[-1], layer.filters) for layer in convs)
print(len(convs), "convolution layers; the first:", convs[0].name, convs[0].kernel_size, "kernel,",
      convs[0].input_shape[-1], "->", convs[0].filters, "channels:", conv_params(3, 1, 64), "parameters")
print("conv_params summed over the model's layers == model.count_params():", by_hand == model.count_params())

# %% [markdown] translates="39a3ad18a34d"
# **练习 3.** 写出 `pixel_patches(image, k)`：以二维图像 $(H, W)$ 的每个像素为中心的 $k \times k$ 图像块，按行优先顺序排列成形状为
# $(H \cdot W, k, k)$ 的数组（$k$ 为奇数）。先在图像每一边补 $k // 2$ 个零，这样边界像素也有图像块（和 `same` 卷积一样）；于是第 $i W + j$ 个图像块就是 `padded[i:i + k, j:j + k]`。算例：在 $5\times6$ 的图像上取 $k = 3$，第 0 个图像块以像素 $(0, 0)$
# 为中心，它的第一行和第一列都是填充的零。

# %%
def pixel_patches(image, k):
    """image: (H, W), k: odd patch size. Returns patches: (H*W, k, k), patch i*W + j centred on image[i, j],
    the image zero-padded by k // 2 on every side."""
    ### BEGIN SOLUTION
    h, w = image.shape
    padded = np.pad(image, k // 2)
    return np.array([padded[i:i + k, j:j + k] for i in range(h) for j in range(w)])
    ### END SOLUTION

check_pixel_patches(pixel_patches);

# %% [markdown] translates="d05c73628012"
# 图像块上的线性分类器，给每个像素的打分是它的图像块与权重核 $v$ 的点积。一次给所有图像块打分就是一次矩阵乘法，结果恰好等于图像与
# $v$ 的 `same` 卷积（就是第 01 章的卷积，在那里 `im2col` 会构造出一模一样的图像块矩阵）。图像块矩阵把每个像素存了 $k^2$
# 份：卷积，以及全卷积网络，省掉的正是这份冗余。

# %%
image_small = rng.standard_normal((12, 10))
v = rng.standard_normal((5, 5))
patches = pixel_patches(image_small, 5)
scores = (patches.reshape(len(patches), -1) @ v.ravel()).reshape(image_small.shape)
as_conv = us.ops.conv2d(image_small[None, :, :, None], v[:, :, None, None], padding="same")[0][0, :, :, 0]
print("patches:", patches.shape, "| numbers stored per image pixel:", patches.size // image_small.size)
print("classifying every patch == a 'same' convolution with the classifier's weights:", np.allclose(scores, as_conv))

# %% [markdown] translates="16dd07b458ad"
# **本章练习：** 1. `same_unet_sizes`（`same` U-Net 的各层尺寸；检查能认出：漏掉瓶颈层、过早减半、列表上下颠倒），
# 2. `conv_params`（检查能认出：漏了偏置、忽略输入通道、$k$ 没有平方、每个输入通道一个偏置），3. `pixel_patches`（每个像素周围的图像块；检查能认出：图像块以像素为左上角而不是中心、没有填充、列优先顺序、图像块被转置）。
