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

# %% [markdown] translates="942bcc87f9bd"
# # 08 · 训练：U-Net 学会分割
#
# **要你搭的：** 训练循环（前向传播（forward pass）、从 logits 计算损失、反向传播（backpropagation）、优化器（optimizer）走一步），配上论文的数据增强（data augmentation），在生成的类电镜图像上训练：什么都不用下载。**要你验证的：** 从相同的权重出发，我们的训练每一步都与 Keras 的一致；中断后恢复的训练与从不中断的训练逐位相同；在 2 核 CPU 上跑 5 分钟能达到什么程度；以及论文关于数据增强的说法在 30 张训练图像上是否成立。
#
# 1. 生成的数据集，以及为什么一个阈值解决不了它们；
# 2. 数据增强：翻转、旋转和论文的弹性形变（elastic deformation）（按我们的图像尺寸缩放），然后检验论文的说法：30 张训练图像，四种数据增强，每种三个随机种子；
# 3. 手写一个训练步，然后用 `fit` 训练，带进度条、曲线和检查点（checkpoint）；
# 4. 把预测叠加在一张留出的图像上；从零实现与 Keras 并排比较；
# 5. 论文的权重图（weight map）用在相互接触的细胞上：它能把细胞分开吗？
#
# 你要写的是弹性形变的重采样、一个训练步和一轮（epoch）的 Dice（练习 1-3）。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import json, tempfile
import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet, data, training, metrics
from unet_scratch.augment import displacement_field, elastic_deform, flip_rotate
from unet_scratch.inference import predict, load_model
from unet_scratch.images import overlay
from unet_scratch.resources import repo_path

us.set_backend("numba")            # the fastest CPU backend (chapter 09); "numpy" gives the same numbers
RESULTS = repo_path("benchmarks/results")  # the full-length runs, made with benchmarks/training.py
rng = np.random.default_rng(0)

# %% [markdown] translates="2f95cf627cc5"
# ## 1. 随包附带的数据
#
# 论文的第一个任务是 ISBI 2012 电镜分割（segmentation）挑战赛：在神经组织的电子显微镜切片中分割出**细胞膜**，有 30 张带标注的 $512 \times 512$ 训练图像。（在那里，U-Net 在挑战赛排行榜上胜过了此前最好的方法，即一个滑动窗口（sliding window）网络；它真正*赢得*的挑战赛是 ISBI 2015 细胞追踪挑战赛，用的是 PhC-U373 和 DIC-HeLa 数据。）`data.membranes` 由随机种子生成类似的图像：细胞来自加了抖动的 Voronoi 镶嵌（每个像素属于离它最近的种子点），再经过一次平滑的扭曲；细胞膜是到两个细胞之间边界的距离小于一个变化的半宽 $w(x)$ 的那些像素。对到 $x$ 的距离分别为 $d_1 \le d_2$ 的种子点 $s_1, s_2$，$x$ 到它们边界的距离恰好是
# $$\mathrm{dist}(x) = \frac{d_2^2 - d_1^2}{2\,\lVert s_1 - s_2 \rVert}, \qquad
# \mathrm{mask}(x) = [\mathrm{dist}(x) < w(x)].$$
# 类似细胞器的暗斑、模糊、不均匀的照明和噪声，是故意用来增加难度的。

# %%
train = data.load("membranes", "train")        # 64 images, 128 x 128, float32 in [0, 1]
val = data.load("membranes", "val")            # 16
test = data.load("membranes", "test")          # 16, never seen in training
print("images", train[0].shape, train[0].dtype, " masks", train[1].shape, "values", np.unique(train[1]))

fig, ax = plt.subplots(2, 3, figsize=(8, 5.6), dpi=60)
for i in range(3):
    ax[0, i].imshow(train[0][i, ..., 0], cmap="gray", vmin=0, vmax=1)
    ax[1, i].imshow(train[1][i, ..., 0], cmap="gray")
    ax[0, i].set_title(f"image {i}"); ax[1, i].set_title(f"membrane mask {i}")
for a in ax.ravel():
    a.set_xticks([]); a.set_yticks([])
fig.suptitle("Generated EM-like sections (top) and their membrane labels (bottom), 128 x 128 px")
fig.tight_layout(); plt.show()

# %% [markdown] translates="d324fc93cb28"
# 为什么不直接用阈值？细胞膜是暗的，可细胞器也是暗的，而且照明会漂移。即使*就在测试集上*挑出最好的单一阈值，得到的结果也远远算不上好的分割：

# %%
x, m = test[0][..., 0], test[1][..., 0] > 0.5
thresholds = np.linspace(0, 1, 101)
dice_t = [metrics.dice(x < t, m) for t in thresholds]
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2), dpi=100)
ax[0].hist(x[m], 60, alpha=0.6, density=True, label="membrane pixels")
ax[0].hist(x[~m], 60, alpha=0.6, density=True, label="other pixels")
ax[0].set(xlabel="grey value", ylabel="density", title="The grey values overlap"); ax[0].legend()
ax[1].plot(thresholds, dice_t)
ax[1].set(xlabel="threshold t (membrane = pixel < t)", ylabel="Dice on the test set",
          title="No threshold comes close to 0.9", ylim=(0, 1))
fig.tight_layout(); plt.show()
print(f"best global threshold: Dice {max(dice_t):.2f}")

# %% [markdown] translates="85be07e706f1"
# ## 2. 数据增强：论文的弹性形变
#
# 只有 30 张训练图像，论文依靠的是数据增强，首先是*弹性形变*（论文 3.1 节）：在粗糙的 $3 \times 3$ 网格上取随机位移向量，每个分量 $\sim \mathcal{N}(0, \sigma^2)$，$\sigma = 10$ 像素，再用双三次插值得到平滑的位移场 $u(y, x)$；然后 $\tilde{I}(y, x) = I(y + u_y, x + u_x)$。图像用双三次插值重采样，掩码（mask）用最近邻插值，这样它仍然是 $\{0, 1\}$。两者用同一个位移场：它们一起移动（练习 1 就是写这个重采样）。翻转和 $90°$ 旋转再加上正方形的八种对称。
#
# **按图像缩放。** 论文的 10 像素是 $512 \times 512$ 图像上的 10 像素，它的 $3 \times 3$ 网格节点相距 256 像素：10 像素的位移是节点间距的 4%。我们的图像是 $128 \times 128$；网格铺满整幅图像，所以节点相距 64 像素，同样的 10 像素会让组织的拉伸和压缩强四倍，把笔直的细胞膜弯成弧线，重采样时还会把细的膜抹掉。所以本库默认让 $\sigma$ 随图像缩放（`augment.scaled_sigma`）：$\sigma = 10 \cdot \min(H, W) / 512$，这里是 2.5 像素，也就是把论文的形变随图像一起缩小。（`sigma=10.0` 则指定论文的像素数。）下面用同一次随机抽样，两种都画出来。打印出的局部拉伸是位移在相邻像素之间的最大变化：缩放后，它与论文的位移场在 512 像素图像上的值相同；不缩放，就是它的四倍，超过 100% 的地方相邻像素会互换位置：图像折叠到了自己身上。

# %%
from unet_scratch.augment import scaled_sigma

image, mask = train[0][0, ..., 0], train[1][0, ..., 0]
sigma = scaled_sigma(image.shape)                                   # 10 * 128 / 512 = 2.5 px
field = displacement_field(image.shape, np.random.default_rng(3), sigma=sigma)
warped, warped_mask = elastic_deform(image, mask, np.random.default_rng(3))            # sigma=None: scaled
warped10, warped_mask10 = elastic_deform(image, mask, np.random.default_rng(3), sigma=10.0)

fig, ax = plt.subplots(1, 4, figsize=(13, 3.9), dpi=72, layout="constrained")
ax[0].imshow(image, cmap="gray"); ax[0].set_title("original")
step = 8
yy, xx = np.mgrid[0:128:step, 0:128:step]
ax[1].quiver(xx, yy, field[1, ::step, ::step], field[0, ::step, ::step], angles="xy", scale_units="xy", scale=0.25)
ax[1].set(xlim=(0, 128), ylim=(128, 0), aspect="equal", title=f"field u, sigma {sigma:g} px (arrows x4)", xlabel="x (px)")
ax[2].imshow(overlay(warped, warped_mask)); ax[2].set_title(f"sigma {sigma:g} px (scaled)")
ax[3].imshow(overlay(warped10, warped_mask10)); ax[3].set_title("sigma 10 px (unscaled)")
for a in ax:
    a.set_xlabel("x (px)")
ax[0].set_ylabel("y (px)")
fig.suptitle("One smooth random field moves image and mask together; unscaled, it bends the cells out of shape")
plt.show()
print(f"sigma for a 128 x 128 image: {sigma:g} px (the paper's 10 px at 512 x 512)")
for name, sig in [("scaled", sigma), ("unscaled", 10.0)]:
    u = displacement_field(image.shape, np.random.default_rng(3), sigma=sig)
    stretch = max(np.abs(np.diff(u, axis=1)).max(), np.abs(np.diff(u, axis=2)).max())
    print(f"{name:>8}: largest local stretch {100 * stretch:.0f}% (a displacement change per pixel)")
print("mask still binary after warping:", set(np.unique(warped_mask)) <= {0.0, 1.0})

# %%
fig, ax = plt.subplots(1, 8, figsize=(12, 2.1), dpi=60, layout="constrained")
for k in range(8):
    im, mk = flip_rotate(image, mask, np.random.default_rng(k))
    ax[k].imshow(overlay(im, mk)); ax[k].set_xticks([]); ax[k].set_yticks([])
    ax[k].set_title(f"draw {k}", fontsize=9)
fig.suptitle("flip_rotate: random flips and 90-degree rotations, the same for image and mask")
plt.show()

# %% [markdown] translates="69c3dd2152a4"
# ## 2b. 数据增强有用吗？检验论文的说法
#
# 论文称弹性形变是"用极少的标注图像训练分割网络的关键"。`benchmarks/augmentation.py` 在我们的数据上检验这一点：一个小 U-Net（顶层 8 个滤波器（filter），深度 3），在 **30** 张 $64 \times 64$ 的细胞膜图像上训练，四种数据增强，每种三个随机种子（种子决定初始权重、打乱顺序和数据增强的随机抽样），用 Adam 训练 60 轮，第 45 轮之后学习率（learning rate）除以 4，损失为 BCE + Dice，没有任何东西是在测试集上挑选的：
#
# * `none`：30 张图像原样使用；
# * `flip`：随机翻转和 $90°$ 旋转（`fit(augment="flip")`）；
# * `flip+elastic`：再加上用缩放后的 $\sigma$ 的弹性形变（64 像素时为 1.25 像素；`fit(augment=True)`）；
# * `flip+elastic10`：同上，但用论文未经缩放的 10 像素，相对于这些小图像，是论文形变的八倍。
#
# 它要花大约 10 分钟 CPU 时间，所以本章读取存好的结果（并打印出重新运行它的命令）。

# %%
with open(f"{RESULTS}/augmentation.json") as f:
    aug = json.load(f)
print("reproduce with:", aug["command"], f"({aug['config']['n_train']} training images, "
      f"{aug['config']['size']} x {aug['config']['size']}, seeds {aug['config']['seeds']})")
conditions = list(aug["summary"])
colours = {c: plt.cm.viridis(v) for c, v in zip(conditions, (0.0, 0.3, 0.6, 0.85))}
fig, ax = plt.subplots(1, 2, figsize=(12, 4.2), dpi=100, gridspec_kw=dict(width_ratios=[1, 1.4]),
                       layout="constrained")
for k, c in enumerate(conditions):
    test_dice = aug["summary"][c]["test_dice"]
    ax[0].plot([k] * len(test_dice["values"]), test_dice["values"], "o", mfc="none", color=colours[c])
    ax[0].errorbar(k + 0.15, test_dice["mean"], yerr=[[test_dice["mean"] - test_dice["min"]],
                                                      [test_dice["max"] - test_dice["mean"]]],
                   fmt="s", color=colours[c], capsize=4)
    runs = [r for r in aug["runs"] if r["condition"] == c]
    epochs = [e for e, _ in runs[0]["val_curve"]]
    curves = np.array([[v for _, v in r["val_curve"]] for r in runs])
    ax[1].plot(epochs, curves.mean(0), "o-", ms=3, color=colours[c], label=c)
    ax[1].fill_between(epochs, curves.min(0), curves.max(0), color=colours[c], alpha=0.2)
ax[0].set_xticks(range(len(conditions)), conditions, fontsize=8)
ax[0].set(xlabel="augmentation", ylabel="test Dice (64 test images)",
          title="Test Dice: 3 seeds (circles), mean and range (squares)")
ax[1].axvline(aug["config"]["lr_step_epoch"], color="grey", lw=0.8, ls=":", label="learning rate / 4")
ax[1].set(xlabel="epoch", ylabel="validation Dice (16 images)",
          title="Validation Dice, mean over seeds (band: min to max)")
ax[1].legend(fontsize=8, loc="lower right")
fig.suptitle("30 training images: without augmentation the network memorises them; flips and rotations "
             "do most of the good")
plt.show()
for c in conditions:
    sm = aug["summary"][c]
    print(f"{c:<15} test Dice {sm['test_dice']['mean']:.3f} (seeds {sm['test_dice']['min']:.3f} to "
          f"{sm['test_dice']['max']:.3f}), training images {sm['train_dice']['mean']:.3f}")

# %% [markdown] translates="00f923481161"
# 在这些数据上，它说明了（三个种子很少：比种子间波动范围还小的差别，就当作没有差别）：
#
# * **数据增强很重要。** 没有数据增强时，网络会记住它的 30 张图像（在这些图像上 Dice 为 0.99），验证集上的 Dice 在第 15 轮左右达到峰值，然后下降；只用翻转和旋转，就能把测试集的 Dice 从 0.774（0.765 到 0.782）提高到 0.851（0.847 到 0.855）。
# * **在翻转之上，弹性形变在这里没有带来我们能分辨出的提升：** 0.853（0.850 到 0.855）。我们的生成器本来就从随机扭曲的镶嵌中生成每一张图像，所以新图像本身就带有弹性形变会带来的那种变化。在只有 30 张标注图像的真实切片上，论文称它是关键（论文没有报告不用它的结果），这个实验既不能证实，也不能否定这一点。（学习率降低时，用了数据增强的几次训练仍在缓慢提高；训练得更久，也许能把它们稍微拉开一点。）
# * **不缩放，就有害：** 在 $64 \times 64$ 的图像上用论文的 10 像素，得到 0.840（0.835 到 0.843），比只用翻转还低：对图像来说太强的形变，是测试图像中从不出现的畸变。
#
# 第 5 节的主要训练只用翻转和旋转，在 256 张生成的图像上进行。

# %% [markdown] translates="a89f0e49f5ae"
# ## 3. 手写一个训练步
#
# sigmoid 输出层给出 $p = \sigma(z)$。Keras 的 `BinaryCrossentropy` 作用在 sigmoid 输出上时，会悄悄地从 logits $z$ 计算（第 07 章），我们也一样：损失及其梯度是
# $$\ell(z, t) = \max(z, 0) - z t + \log(1 + e^{-|z|}), \qquad \frac{\partial \ell}{\partial z} = \sigma(z) - t,$$
# 再对 $M$ 个像素求平均。`model.forward(x, logits=True)` 返回 $z$，并让 `backward` 接收 $\partial L / \partial z$。加上软 Dice 损失（`"bce_dice"`）后，梯度还要经过 $p = \sigma(z)$：$\partial L_{dice}/\partial z = \partial L_{dice}/\partial p \cdot p (1 - p)$。

# %%
from unet_scratch.optimizers import Adam

model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0.0, kernel_initializer="he_normal", seed=0)
optimizer = Adam(learning_rate=2e-3)
small = data.load("membranes", "train", size=64)
x, t = small[0][:4], small[1][:4]
losses = []
for step in range(10):
    z = model.forward(x, training=True, logits=True)                   # logits, (4, 64, 64, 1)
    loss, dz, p = training.loss_from_logits(model, z, t, loss="bce")    # loss and dL/dz
    model.backward(dz)                                                  # fills model.grads
    optimizer.apply(model.params, model.grads)                         # Adam, in place
    losses.append(loss)
print("the loss falls on a fixed batch:", losses[-1] < losses[0])

# %% [markdown] translates="6f409244c293"
# ### 验证：我们的训练每一步都与 Keras 的一致
#
# `keras_ref.fit_keras` 从*相同*的初始权重出发，在*相同*的批次上（相同的打乱顺序、相同的数据增强）训练 Keras 版的同构网络，用的是 Keras 的 Adam 和 Keras 的损失。去掉 Dropout（它的随机掩码无法在两边共享）之后，两次训练在 float32 舍入误差内一致：

# %%
from unet_scratch.keras_ref import fit_keras

twin = UNet((32, 32, 1), base_filters=4, depth=2, dropout=0.0, kernel_initializer="he_normal", seed=1)
tiny_train, tiny_val = data.load("membranes", "train", n=8, size=32), data.load("membranes", "val", n=4, size=32)
settings = dict(epochs=3, batch_size=4, learning_rate=1e-3, loss="bce_dice", augment="flip", seed=0)
h_keras, keras_model = fit_keras(twin, tiny_train, tiny_val, **settings)      # starts from twin's weights
h_scratch = training.fit(twin, tiny_train, tiny_val, verbose=0, **settings)
worst = max(abs(a - b) / abs(b) for k in ("loss", "val_loss") for a, b in zip(h_scratch.history[k], h_keras.history[k]))
kernels = [v.numpy() for layer in keras_model.layers for v in layer.weights]
w_diff = max(float(np.abs(a - b).max()) for a, b in zip(kernels, twin.params.values()))
print("losses agree within 1e-4 (relative):", worst < 1e-4)
print("weights after training agree within 1e-5:", w_diff < 1e-5)

# %% [markdown] translates="4109c75401e0"
# ## 4. `fit`：轮次、进度条、曲线、检查点
#
# `training.fit(model, (images, masks), val=..., epochs, batch_size, ...)` 的用法与 Keras 的 `fit` 相同。每一轮先打乱顺序，为每个样本抽取一次数据增强，对每个批次运行上面的训练步，并记录平均损失和阈值化后预测的 Dice（`history.history`）。设了 `checkpoint_dir` 时，它在每一轮之后以及按下 Ctrl-C 时，以原子方式写出 `checkpoint.npz`（权重、Adam 的矩估计、步数计数器、训练历史）。`verbose=1`（默认值）每一轮显示一个实时进度条（tqdm，在笔记本或终端中都可以）；这里用的是 `verbose=2`，每一轮打印一行，这样存下来的输出仍然易读。在 $64 \times 64$ 上的一次短训练：

# %%
# NBVAL_IGNORE_OUTPUT
model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0.0, kernel_initializer="he_normal", seed=0)
run_dir = tempfile.mkdtemp()
history = training.fit(model, data.load("membranes", "train", size=64), val=data.load("membranes", "val", size=64),
                       epochs=12, batch_size=4, learning_rate=2e-3, loss="bce_dice", augment="flip",
                       checkpoint_dir=run_dir, verbose=2)

# %%
axes = history.plot()
axes[0].figure.suptitle("A 12-epoch run at 64 x 64: the loss falls, the Dice rises")
axes[0].figure.tight_layout(); plt.show()
print("Dice improved over the run:", history.history["val_dice"][-1] > history.history["val_dice"][0] + 0.1)
print("checkpoint written:", sorted(os.listdir(run_dir)))


# %% [markdown] translates="3af6a318ebdf"
# ### 验证：恢复训练逐位相同
#
# 每一次随机抽取（打乱顺序、数据增强、Dropout）都来自一个以（种子，轮次，步数）为种子的随机数生成器，所以检查点里的计数器*就是*随机状态。训练 5 步后停下再恢复，最后得到的权重与从不中断的训练完全相同：

# %%
def tiny(seed):
    return UNet((32, 32, 1), base_filters=4, depth=2, dropout=0.5, seed=seed)

ds = data.load("membranes", "train", n=6, size=32)
opts = dict(epochs=3, batch_size=2, augment=True, seed=7, verbose=0)
straight = tiny(1); training.fit(straight, ds, **opts)
folder = tempfile.mkdtemp()
stopped = tiny(1); h = training.fit(stopped, ds, checkpoint_dir=folder, max_steps=5, **opts)
print(h.stop_reason.split(";")[0])
resumed = tiny(42); training.fit(resumed, ds, checkpoint_dir=folder, resume=True, **opts)
print("bit-identical weights:", all(np.array_equal(straight.params[k], resumed.params[k]) for k in straight.params))

# %% [markdown] translates="5b3ce09e133e"
# ## 5. 在 2 核 CPU 上训练五分钟：从零实现与 Keras 并排
#
# `benchmarks/training.py membranes` 训练一个顶层 16 个滤波器、深度 3 的 U-Net（481,745 个参数），用 256 张 $128 \times 128$ 的生成训练图像（生成器没有数量限制；只用 64 张时，网络开始记住它们），损失为 BCE + Dice，用 Adam，学习率从 $2 \cdot 10^{-3}$ 逐级降到 $5 \cdot 10^{-4}$，最后几轮为 $1.25 \cdot 10^{-4}$：共 23 轮，在 2 核上用 Numba 后端训练不到 300 秒。然后它从相同的初始权重出发、在相同的批次上训练 Keras 版的同构网络。它的数据增强**只有翻转和 90 度旋转**（`augment="flip"`）：没有弹性形变，训练图像是论文 30 张的八倍多，所以这次主要训练并不依赖论文的数据增强（第 2b 节测量了它在 30 张图像上带来多少提升）。结果存在 `benchmarks/results/` 中：

# %%
with open(f"{RESULTS}/training-membranes.json") as f:
    run = json.load(f)
s, k = run["scratch"], run["keras"]
axes = training.plot_history(s["history"], k["history"], labels=["scratch", "Keras"])
axes[1].axhline(0.9, color="grey", lw=0.8, ls=":")
axes[0].figure.suptitle("membranes, 128 x 128: the scratch U-Net and its Keras twin learn alike")
axes[0].figure.tight_layout(); plt.show()
print(f"scratch: {s['epochs']} epochs, test Dice {s['test_dice']:.2f}; Keras: {k['epochs']} epochs, "
      f"test Dice {k['test_dice']:.2f}")
print("scratch reaches Dice >= 0.90 on the test split:", s["test_dice"] >= 0.90)
print("trained within 5 minutes:", s["seconds"] <= 300)

# %% [markdown] translates="c700dfd3ad58"
# 训练好的权重也存了下来。下面是它们在一张留出的测试图像上的结果（黄色：预测的细胞膜），并标出了错误：

# %%
trained = load_model(f"{RESULTS}/training-membranes-weights.npz")
p = predict(trained, test[0][:1])[0, ..., 0]                      # (128, 128) probabilities
truth, pred = test[1][0, ..., 0] > 0.5, p > 0.5
errors = np.zeros((*pred.shape, 3))
errors[pred & ~truth] = (1, 0.3, 0.3)                              # red: predicted, not true
errors[~pred & truth] = (0.3, 0.6, 1)                              # blue: true, missed
fig, ax = plt.subplots(1, 3, figsize=(10, 3.9), dpi=72, layout="constrained")
ax[0].imshow(test[0][0, ..., 0], cmap="gray"); ax[0].set_title("test image 0")
ax[1].imshow(overlay(test[0][0, ..., 0], pred)); ax[1].set_title(f"prediction, Dice {metrics.dice(pred, truth):.2f}")
ax[2].imshow(errors); ax[2].set_title("red: false membrane, blue: missed")
for a in ax:
    a.set_xticks([]); a.set_yticks([])
fig.suptitle("A held-out image: the mistakes sit on the membranes' edges and on faint walls")
plt.show()
print(f"test Dice of the stored weights over all {len(test[0])} test images: {training.evaluate(trained, test)['dice']:.2f}")

# %% [markdown] translates="ca1f9d114e94"
# ## 6. 论文的权重图用在相互接触的细胞上
#
# 交叉熵（cross-entropy）对每个像素一视同仁，而相互接触的细胞之间的窄缝只占像素的极小一部分：把缝隙填满的网络几乎没有损失，相互接触的细胞就连成了一片。论文的权重图（第 07 章）让缝隙像素的分量最多增加到 $w_0 = 10$ 倍：
# $$w(x) = w_c(x) + w_0 \exp\left(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\right).$$
# `benchmarks/training.py cells` 在 `cells` 上把同一个 U-Net 训练两次，一次用普通的 BCE，一次用以 $w$ 加权的 BCE，并数出有多少个测试对象成为各自独立的连通分量（IoU > 0.5）：

# %%
with open(f"{RESULTS}/training-cells.json") as f:
    cells_run = json.load(f)
plain, weighted = cells_run["plain"], cells_run["weighted"]
test_cells = data.load("cells", "test")
pred_plain = np.load(f"{RESULTS}/training-cells-plain-pred.npy") / 255
pred_weighted = np.load(f"{RESULTS}/training-cells-weighted-pred.npy") / 255
def separated(pred, i):
    return metrics.count_separated(pred[i] > 0.5, test_cells[2][i])

gain = [separated(pred_weighted, i) - separated(pred_plain, i) for i in range(len(pred_plain))]
i = int(np.argmax(gain))                                   # the stored test image where it matters most
inst = test_cells[2][i]
ids = [k for k in np.unique(inst) if k > 0]
def kept_apart(pred, k):                                   # is object k its own component (IoU > 0.5)?
    return metrics.count_separated(pred > 0.5, np.where(inst == k, k, 0)) == 1
lost = [k for k in ids if kept_apart(pred_weighted[i], k) and not kept_apart(pred_plain[i], k)]
from scipy import ndimage
components = ndimage.label(pred_plain[i] > 0.5)[0]         # plain BCE's connected components
blobs = {int(np.bincount(components[inst == k]).argmax()) for k in lost} - {0}   # the components that swallowed them
merged = [k for k in ids if any(np.mean(components[inst == k] == c) > 0.5 for c in blobs)]
fig, ax = plt.subplots(1, 4, figsize=(13, 3.9), dpi=72, layout="constrained")
ax[0].imshow(test_cells[0][i, ..., 0], cmap="gray"); ax[0].set_title(f"test image {i}")
ax[1].imshow(inst, cmap="tab20", interpolation="nearest"); ax[1].set_title(f"{len(ids)} true objects")
ax[2].imshow(pred_plain[i] > 0.5, cmap="gray")
ax[2].set_title(f"plain BCE: {separated(pred_plain, i)} of {len(ids)} separated")
ax[3].imshow(pred_weighted[i] > 0.5, cmap="gray")
ax[3].set_title(f"weighted BCE (paper): {separated(pred_weighted, i)} of {len(ids)}")
for a in (ax[1], ax[3]):
    for k in merged:                                       # the true objects that plain BCE joins into one
        a.contour(inst == k, levels=[0.5], colors="red", linewidths=1.5)
for c in blobs:                                            # and the single component it makes of them
    ax[2].contour(components == c, levels=[0.5], colors="red", linewidths=1.5)
for a in ax:
    a.set_xticks([]); a.set_yticks([])
fig.suptitle(f"Red: {len(merged)} touching objects that plain BCE merges into one component; the weight map "
             "keeps them apart")
plt.show()
print(f"objects separated: plain {plain['separated']} of {plain['objects']}, "
      f"weighted {weighted['separated']} of {weighted['objects']}")
print("the weight map separates more objects:", weighted["separated"] > plain["separated"])

# %% [markdown] translates="cd4b2648314f"
# ## 练习
#
# 每道练习都有一个检查函数：它运行你的答案，并告诉你哪里不对。

# %% [markdown] translates="41d1eb556e89"
# **练习 1（弹性形变的重采样）。** 写出 `deform_pair(image, mask, field)`：给定形状为 $(2, H, W)$ 的位移场 `field`（`field[0]` 沿行方向 $y$，`field[1]` 沿列方向 $x$，单位为像素），返回在 $(y + u_y, x + u_x)$ 处重采样的图像和掩码：$\tilde I(y, x) = I(y + u_y(y, x),\, x + u_x(y, x))$。用 `np.mgrid[0:H, 0:W]` 构造坐标，用 `scipy.ndimage.map_coordinates(a, [rows, cols], order=..., mode="reflect")` 重采样：图像用双三次插值（`order=3`，然后用 `np.clip` 截到它原来的取值范围，因为三次样条在陡峭的边缘处会过冲，再转换回原来的 dtype），掩码用最近邻（`order=0`），这样它仍然是 $\{0, 1\}$。算例：处处 $u = (0, 1)$ 时，$\tilde I(y, x) = I(y, x + 1)$，图像向**左**移动一个像素。检查会与本库的 `elastic_deform` 对照，并能认出典型错误（对掩码做了插值、减去了位移场、把它的两个分量弄反了、边界处补零）。

# %%
from scipy import ndimage
from unet_scratch.exercises.ch08 import check_deform_pair, check_global_dice, check_train_step

def deform_pair(image, mask, field):
    ### BEGIN SOLUTION
    h, w = image.shape
    rows, cols = np.mgrid[0:h, 0:w]
    coords = [rows + field[0], cols + field[1]]
    warped = ndimage.map_coordinates(image, coords, order=3, mode="reflect")
    warped = np.clip(warped, image.min(), image.max()).astype(image.dtype)
    return warped, ndimage.map_coordinates(mask, coords, order=0, mode="reflect").astype(mask.dtype)
    ### END SOLUTION

check_deform_pair(deform_pair);


# %% [markdown] translates="17c3a47eebbd"
# **练习 2.** 写出 `train_step(model, optimizer, x, t)`：用从 logits 计算的二元交叉熵（binary cross-entropy）训练一步（前向传播时传 `training=True, logits=True`，然后 `training.loss_from_logits`、`model.backward`、`optimizer.apply`）。返回这次前向传播的损失。检查会把它与一个参考训练步并排运行，比较损失和每一个权重，并能认出典型错误（没有更新、sigmoid 用了两次、在更新之后才计算损失）。

# %%
def train_step(model, optimizer, x, t):
    ### BEGIN SOLUTION
    z = model.forward(x, training=True, logits=True)
    loss, dz, _ = training.loss_from_logits(model, z, t, loss="bce")
    model.backward(dz)
    optimizer.apply(model.params, model.grads)
    return loss
    ### END SOLUTION

check_train_step(train_step);


# %% [markdown] translates="89feeddbe5c6"
# **练习 3.** `fit` 每一轮报告的是整个数据集上的一个 Dice，而不是各图像 Dice 的平均值：$D = 2 \sum_i |P_i \cap T_i| / \sum_i (|P_i| + |T_i|)$，其中 $P_i$ =（概率 > 0.5），$T_i$ =（目标 > 0.5）。对形状为 (N, H, W, 1) 的数组写出 `global_dice(probabilities, targets)`；目标为空、预测也为空时算作 1。算例：两张图像，一张 $|P \cap T| = 3$、$|P| + |T| = 8$，另一张分别为 1 和 4：$D = 2 \cdot 4 / 12 = 0.67$，而各图像值的平均是 $(0.75 + 0.5) / 2 = 0.625$。

# %%
def global_dice(probabilities, targets):
    ### BEGIN SOLUTION
    pred, truth = probabilities > 0.5, targets > 0.5
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)
    ### END SOLUTION

check_global_dice(global_dice);

# %% [markdown] translates="5cdabfd0224e"
# ## 本章练习
#
# 1. `deform_pair(image, mask, field)`：弹性形变的重采样，图像用双三次插值，掩码用最近邻，两者共用一个位移场（第 2 节）。
# 2. `train_step(model, optimizer, x, t)`：一个训练步，从 logits 计算 BCE（第 3 节）。
# 3. `global_dice(probabilities, targets)`：一轮在整个数据集上的 Dice（第 4 节）。
