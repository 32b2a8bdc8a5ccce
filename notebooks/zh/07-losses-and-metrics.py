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

# %% [markdown] translates="e4283f717190"
# # 07 · 损失与评价指标：网络最小化什么，我们又怎样给它打分
#
# **要你实现的：** U-Net 训练时用的各种损失，每个都写成 NumPy 中的 `(loss, gradient)` 对：从概率和从 logits 计算的二元交叉熵（binary cross-entropy），软 Dice 损失，以及论文中带**权重图**（weight map）、用来分开相互接触的细胞的**逐像素加权 softmax 交叉熵**；给最终分割（segmentation）结果打分的 Dice 和交并比（IoU）两个评价指标（metric）；还有一个**多类别** U-Net（背景、细胞内部、细胞边界），用 softmax 输出层训练，逐类打分。
#
# **要你验证的：**
# 1. 为什么交叉熵必须*从 logits* 计算：朴素的 float32 公式会溢出，截断后的公式会变平，而 Keras 只要有机会就会悄悄改用 logits；
# 2. 每个损失的值和梯度都与 Keras/TensorFlow 在 float32 下对照（$\text{rtol} = \text{atol} = 10^{-5}$），每个梯度还在 float64 下与中心差分（central differences）对照；
# 3. Ronneberger 等（2015）的权重图在相互接触的细胞核上：它把权重放在哪里，为什么；
# 4. 一个用 `training.fit(loss="weighted_ce")` 训练的三类 softmax U-Net：逐类的 Dice，加与不加类别平衡权重（由 `benchmarks/multiclass.py` 预先算好）。
#
# 练习中你要写出三个损失及其梯度；检查会说出典型错误的名字（sigmoid 用了两次、公式溢出、对阈值化后的结果算 Dice、先求平均再乘权重……）。

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import data, metrics
from unet_scratch.resources import repo_path
from unet_scratch.ops.activations import sigmoid
from unet_scratch.ops.losses import binary_crossentropy, dice_loss, log_softmax, weighted_softmax_crossentropy
from unet_scratch.weightmap import weight_map, class_weights, nearest_two_distances
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
TOL = dict(rtol=1e-5, atol=1e-5)          # float32 against Keras, the course's tolerance

# %% [markdown] translates="de131f0b22d6"
# ## 1. 二元交叉熵，以及为什么要"从 logits"计算
#
# 原文 U-Net 的输出层是带 sigmoid 的 $1 \times 1$ 卷积（convolution）：每个像素一个 logit $z$，前景概率
# $p = \sigma(z) = 1 / (1 + e^{-z})$。对目标 $t \in \{0, 1\}$，二元交叉熵（即伯努利分布的负对数似然）为
#
# $$\ell(p, t) = -\big(t \log p + (1 - t) \log(1 - p)\big), \qquad L = \frac{1}{M} \sum_{i=1}^{M} \ell(p_i, t_i).$$
#
# 用 $z$ 来写，利用 $\log \sigma(z) = -\log(1 + e^{-z})$ 和 $\log(1 - \sigma(z)) = -z - \log(1 + e^{-z})$：
#
# $$\ell(z, t) = \max(z, 0) - z\,t + \log\!\big(1 + e^{-|z|}\big), \qquad \frac{\partial \ell}{\partial z} = \sigma(z) - t.$$
#
# 右边这种写法从不对正数取指数（所以不会溢出），而 `log1p` 让 $\log(1 + e^{-|z|})$ 在 $e^{-|z|}$ 极小时仍然准确。它的梯度是深度学习里最友好的：绝对值不超过 1，而且只要预测是错的就不为零。
#
# 朴素的做法 $\log(\sigma(z))$ 在 float32 下会出问题：$z \gtrsim 17$ 时 $\sigma(z)$ 舍入后恰好等于 1，于是 $\log(1 - p) = \log 0 = -\infty$。Keras 的概率写法把 $p$ **截断**到 $[\epsilon, 1 - \epsilon]$（$\epsilon = 10^{-7}$）来避开无穷大：损失于是停在
# $-\log(1.19 \times 10^{-7}) \approx 15.9$（float32 中的 $1 - \epsilon$ 是 $1 - 1.19 \times 10^{-7}$），更糟的是，那里的梯度为**零**：一个错得很自信的像素，再也教不了网络任何东西。

# %%
z = np.linspace(-40, 40, 801, dtype=np.float32)[:, None]       # logits, (801, 1)
t0 = np.zeros_like(z)                                             # target: background

with np.errstate(over="ignore", divide="ignore"):                 # the naive formula, in float32
    p_naive = 1 / (1 + np.exp(-z))
    naive = -np.log(1 - p_naive)[:, 0]                            # t = 0: loss = -log(1 - p)
clipped = np.array([binary_crossentropy(p, 0 * p)[0] for p in sigmoid(z)[0]])     # Keras's probability form
stable = np.array([binary_crossentropy(zi, 0 * zi, from_logits=True)[0] for zi in z])
keras_logits = keras.losses.BinaryCrossentropy(from_logits=True, reduction=None)(t0, z).numpy()

# gradients dL/dz of one pixel: from logits sigma(z) - t; the clipped form through the chain rule
grad_stable = sigmoid(z)[0][:, 0]
p = sigmoid(z)[0]
grad_clipped = binary_crossentropy(p, t0)[1][:, 0] * len(z) * (p * (1 - p))[:, 0]

at = lambda v: int(np.argmin(np.abs(z[:, 0] - v)))                # index of the logit closest to v
print("naive float32 loss at z = 20 is inf:", np.isinf(naive[at(20)]))
print("clipped loss at z = 20 and z = 40:", round(float(clipped[at(20)]), 1), round(float(clipped[at(40)]), 1))
print("stable loss at z = 20 and z = 40: ", round(float(stable[at(20)]), 1), round(float(stable[at(40)]), 1))
print("clipped gradient is exactly 0 beyond z = 17:", bool(np.all(grad_clipped[z[:, 0] > 17] == 0)))
print("stable form == Keras from_logits=True everywhere:", np.allclose(stable, keras_logits, **TOL))

# %%
fig, ax = plt.subplots(1, 2, figsize=(10, 3.6), dpi=100)
zz = z[:, 0]
ax[0].plot(zz, np.where(np.isfinite(naive), naive, np.nan), lw=3, color="0.75", label="naive -log(1 - sigmoid(z)), float32")
ax[0].plot(zz, clipped, color="tab:orange", label="clipped probabilities (Keras, from p)")
ax[0].plot(zz, stable, "--", color="tab:blue", label="stable, from logits")
ax[0].plot(zz[::40], keras_logits[::40], "k.", label="Keras, from_logits=True")
ax[0].axvline(16.6, color="gray", ls=":", lw=1)
ax[0].text(17.5, 2, "float32 sigmoid(z) == 1\nfrom here: naive loss = inf", fontsize=7)
ax[0].set(xlabel="logit z (target t = 0)", ylabel="loss of one pixel (nats)",
          title="The clipped loss stops at 15.9; from logits it keeps growing")
ax[0].legend(fontsize=7, loc="upper left")
ax[1].plot(zz, grad_clipped, color="tab:orange", label="clipped probabilities")
ax[1].plot(zz, grad_stable, "--", color="tab:blue", label="from logits: sigmoid(z) - t")
ax[1].set(xlabel="logit z (target t = 0)", ylabel="dloss / dz (per pixel)",
          title="Clipping kills the gradient of confident mistakes")
ax[1].legend(fontsize=7, loc="upper left")
fig.tight_layout()
plt.show()

# %% [markdown] translates="184d9117732a"
# ### Keras 对 sigmoid 输出做了什么
#
# 这里有一个细节，凡是与 Keras 对照的人都会被它绊倒。Keras 的 `sigmoid` 激活函数会把它收到的 logits 挂在输出张量上（名为 `_keras_logits`），而（从概率计算的）`BinaryCrossentropy` 会去找它们：找到了，就**从 logits 计算稳定的损失**，完全不理会概率。所以输出层带 sigmoid 的
# Keras U-Net 训练时用的是从 logits 计算的损失，而同一个公式用在普通的概率张量上时却会被截断。两者在远离饱和处只差舍入误差，到了饱和处则完全不同：

# %%
z_sat = np.array([[-3.0], [0.5], [20.0], [40.0]], np.float32)   # 4 pixels' logits, target 0
t_sat = np.zeros_like(z_sat)
bce = keras.losses.BinaryCrossentropy(reduction=None)               # the probability form
k_sigmoid = bce(t_sat, keras.activations.sigmoid(tf.constant(z_sat))).numpy()   # carries the logits
k_plain = bce(t_sat, tf.constant(sigmoid(z_sat)[0])).numpy()                     # just probabilities
ours_logits = np.array([binary_crossentropy(zi, ti, from_logits=True)[0] for zi, ti in zip(z_sat, t_sat)])
ours_clipped = np.array([binary_crossentropy(sigmoid(zi)[0], ti)[0] for zi, ti in zip(z_sat, t_sat)])
print("logits z:                          ", z_sat[:, 0].tolist())
print("Keras on keras.activations.sigmoid:", np.round(k_sigmoid.astype(float), 2).tolist())
print("Keras on plain probabilities:      ", np.round(k_plain.astype(float), 2).tolist())
print("Keras on a sigmoid output == our from-logits loss:", np.allclose(k_sigmoid, ours_logits, **TOL))
print("Keras on plain probabilities == our clipped loss: ", np.allclose(k_plain, ours_clipped, **TOL))
print("the two Keras losses agree at z = -3, 0.5:", np.allclose(k_sigmoid[:2], k_plain[:2], **TOL),
      "| at z = 20, 40:", np.allclose(k_sigmoid[2:], k_plain[2:], **TOL))


# %% [markdown] translates="18cdeeb3ed90"
# 所以，要在饱和附近逐位复现 Keras U-Net 的训练损失，就要从输出层的 logits 计算损失（`model.forward(x, logits=True)` 和
# `binary_crossentropy(z, t, from_logits=True)`，`backward` 直接接收它的梯度）。截断概率的写法，是 Keras 对不是从 Keras sigmoid
# 出来的张量（例如从磁盘读入的概率）所做的计算。
#
# ## 2. Dice 损失
#
# 交叉熵逐个像素打分，所以在一张 95% 是背景的图像上，网络处处预测背景也能得到不错的分数。Dice 损失给整个前景的重叠程度打分。软预测 $p_i \in [0, 1]$，记 $I = \sum_i t_i p_i$，$S = \sum_i t_i + \sum_i p_i$：
#
# $$L_{\text{Dice}} = 1 - \frac{2 I}{S + \epsilon}, \qquad
# \frac{\partial L_{\text{Dice}}}{\partial p_j} = -\frac{2\,\big(t_j (S + \epsilon) - I\big)}{(S + \epsilon)^2}.$$
#
# Keras 的 `keras.losses.Dice` 只在分母上加 $\epsilon = 10^{-7}$，并且默认对整个批次（batch）只算一个 Dice。`unet_scratch.ops.losses.dice_loss` 的做法相同（设 `axis=(1, 2, 3)` 则每张图像各算一个 Dice）。注意它的梯度：每个像素的梯度都依赖于对所有像素的求和，这让 Dice 对类别不平衡不敏感，也让它在前景很小时噪声很大。
#
# ## 3. 每个损失与 Keras/TensorFlow 对照（float32），再与中心差分对照（float64）
#
# 这些损失函数（loss function）返回 `(loss, dloss/dprediction)`。Keras 一边，由 `tf.GradientTape` 求同一个损失对同一个预测的梯度。注意参数的顺序：我们的是 `loss(y_pred, y_true)`，Keras 的是 `loss_fn(y_true, y_pred)`。
#
# 论文的加权损失在 Keras 中没有对应的类；写成 TensorFlow 只要一行，`tf.reduce_mean(w * tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))`：
#
# $$L_w = -\frac{1}{M} \sum_{x} w(x) \log \operatorname{softmax}(z(x))_{\ell(x)}, \qquad
# \frac{\partial L_w}{\partial z_k(x)} = \frac{w(x)}{M} \big(\operatorname{softmax}(z(x))_k - [k = \ell(x)]\big).$$

# %%
def keras_loss_and_grad(loss_fn, y_true, y_pred):
    # loss and dloss/dy_pred from TensorFlow; note Keras's (y_true, y_pred) order
    y_pred = tf.Variable(y_pred)
    with tf.GradientTape() as tape:
        loss = loss_fn(y_true, y_pred)
    return float(loss), tape.gradient(loss, y_pred).numpy()

def tf_weighted_ce(w):
    # the paper's Eq. 1 in TensorFlow, as a loss_fn(labels, logits)
    return lambda labels, logits: tf.reduce_mean(
        w * tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))

zs = (3 * rng.standard_normal((2, 16, 16, 1))).astype(np.float32)        # logits of a sigmoid head
ts = (rng.random(zs.shape) > 0.6).astype(np.float32)                     # binary targets
ps = sigmoid(zs)[0]                                                        # probabilities (plain array)
z2 = (3 * rng.standard_normal((2, 16, 16, 2))).astype(np.float32)        # logits of a 2-class softmax head
labels = rng.integers(0, 2, (2, 16, 16))
w = rng.uniform(0.5, 10.0, (2, 16, 16)).astype(np.float32)               # a positive weight map

comparisons = {
    "BCE from logits": (binary_crossentropy(zs, ts, from_logits=True),
                        keras_loss_and_grad(keras.losses.BinaryCrossentropy(from_logits=True), ts, zs)),
    "BCE from probabilities": (binary_crossentropy(ps, ts),
                               keras_loss_and_grad(keras.losses.BinaryCrossentropy(), ts, ps)),
    "Dice": (dice_loss(ps, ts), keras_loss_and_grad(keras.losses.Dice(), ts, ps)),
    "softmax CE, no weights": (weighted_softmax_crossentropy(z2, labels),
                               keras_loss_and_grad(keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                                                   labels, z2)),
    "weighted softmax CE (Eq. 1)": (weighted_softmax_crossentropy(z2, labels, w),
                                    keras_loss_and_grad(tf_weighted_ce(w), labels, z2)),
}
keras_ok = {}
for name, ((loss, grad), (k_loss, k_grad)) in comparisons.items():
    keras_ok[name] = np.isclose(loss, k_loss, **TOL) and np.allclose(grad, k_grad, **TOL)
    print(f"{name:<28} value and gradient match Keras/TF (rtol = atol = 1e-5): {keras_ok[name]}")

# %% [markdown] translates="0317b23e1445"
# 接下来在 float64 下检验梯度本身，与中心差分
# $\partial L / \partial y_j \approx \big(L(y + h e_j) - L(y - h e_j)\big) / 2h$（$h = 10^{-5}$，`unet_scratch.gradcheck`）对照。概率保持在 $[0.05, 0.95]$ 之内，远离截断处：在那里，概率写法根本没有梯度。

# %%
z64 = 2 * rng.standard_normal((2, 5, 5, 1))
t64 = (rng.random(z64.shape) > 0.5).astype(np.float64)
p64 = rng.uniform(0.05, 0.95, z64.shape)
zk64 = 2 * rng.standard_normal((2, 5, 5, 3))
lab64 = rng.integers(0, 3, (2, 5, 5))
w64 = rng.uniform(0.5, 10.0, (2, 5, 5))

losses64 = {
    "BCE from logits": (lambda a: binary_crossentropy(a, t64, from_logits=True), z64),
    "BCE from probabilities": (lambda a: binary_crossentropy(a, t64), p64),
    "Dice": (lambda a: dice_loss(a, t64), p64),
    "weighted softmax CE (Eq. 1)": (lambda a: weighted_softmax_crossentropy(a, lab64, w64), zk64),
}
gradcheck_ok = {}
for name, (loss_fn, y) in losses64.items():
    analytic = loss_fn(y)[1]
    numeric = numeric_gradient(lambda a: loss_fn(a)[0], y.copy(), h=1e-5)
    err = rel_error(analytic, numeric)
    gradcheck_ok[name] = err < 1e-7
    print(f"{name:<28} float64 gradient check, relative error < 1e-7: {gradcheck_ok[name]}")

# %% [markdown] translates="82d1e7edbda2"
# ## 4. 评价指标：Dice 与 IoU
#
# 损失必须可导；评价指标必须诚实。评价指标把**二值化**后的预测（$p > 0.5$）与目标看作像素集合 $A$ 和 $B$ 来打分：
#
# $$\text{Dice}(A, B) = \frac{2 |A \cap B|}{|A| + |B|}, \qquad \text{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|},
# \qquad \text{IoU} = \frac{\text{Dice}}{2 - \text{Dice}}.$$
#
# 两者给预测排出的名次完全相同（一个是另一个的单调函数）；IoU 的数值更严苛。在二值预测上，软 Dice 损失恰好等于 $1 - \text{Dice}$（差一个 $\epsilon$）。有一个约定要留意：`unet_scratch.metrics` 把 $p = 0.5$ 算作背景（$p > 0.5$），Keras 的
# `BinaryIoU(threshold=0.5)` 则把它算作前景（$p \ge 0.5$）。
#
# 下面的预测是把一张细胞核图像的真实掩码（mask）横向平移 $k$ 个像素：用这个简单的办法，看轮廓偏离时各个分数下降得有多快。

# %%
images, masks, instances = data.load("cells", "train", n=1, size=128)
image, mask, inst = images[0, ..., 0], masks[0, ..., 0], instances[0]

shifts = np.arange(0, 13)
d_scores = [metrics.dice(np.roll(mask, k, axis=1), mask) for k in shifts]
j_scores = [metrics.iou(np.roll(mask, k, axis=1), mask) for k in shifts]

pred = np.clip(np.roll(mask, 3, axis=1) * 0.9 + 0.05 * rng.random(mask.shape), 0, 1)   # probabilities
biou = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
biou.update_state(mask.ravel(), pred.ravel())
d, j = metrics.dice(pred, mask), metrics.iou(pred, mask)
print("IoU == Dice / (2 - Dice) at every shift:",
      np.allclose(j_scores, np.array(d_scores) / (2 - np.array(d_scores))))
print("our IoU == keras.metrics.BinaryIoU:", np.isclose(j, float(biou.result()), **TOL))
binary = (pred > 0.5).astype(np.float32)[None, ..., None]
print("soft Dice loss of the binarised prediction == 1 - Dice:",
      np.isclose(dice_loss(binary, mask[None, ..., None])[0], 1 - d, **TOL))
half = np.array([0.5, 0.9, 0.1]); target = np.array([1.0, 1.0, 0.0])
biou_half = keras.metrics.BinaryIoU(target_class_ids=[1], threshold=0.5)
biou_half.update_state(target, half)
print("at p = 0.5 exactly, ours and Keras's IoU differ:", not np.isclose(metrics.iou(half, target),
                                                                       float(biou_half.result())))

fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
ax.plot(shifts, d_scores, "o-", ms=4, label="Dice")
ax.plot(shifts, j_scores, "s-", ms=4, label="IoU")
ax.set(xlabel="shift of the prediction (pixels)", ylabel="score (1 = perfect)", ylim=(0, 1.02),
       title="Both scores fall as the outline misses; IoU is always the lower")
ax.legend()
fig.tight_layout()
plt.show()

# %% [markdown] translates="0bd14c5041c5"
# ## 5. 论文的加权损失与权重图：分开相互接触的细胞
#
# 两个相互接触的细胞核必须分割成**两个**对象，所以它们之间 1-2 个像素宽的背景缝隙是掩码中最重要、也最小的部分。普通的交叉熵给这些像素的权重与其他像素一样，所以把两个细胞连成一片的网络几乎不受惩罚。Ronneberger 等（2015，式 2）给每个像素的权重是
#
# $$w(x) = w_c(x) + w_0 \exp\!\left(-\frac{\big(d_1(x) + d_2(x)\big)^2}{2 \sigma^2}\right),$$
#
# 其中 $d_1, d_2$ 是到最近和第二近的细胞的距离，$w_0 = 10$，$\sigma \approx 5$ 像素。在窄缝中 $d_1 + d_2$ 大约等于缝宽，所以 $w \approx w_0$；远离细胞处这一项趋于零。
#
# 下面有两处选择是本库的，而不是论文的。**边界项用在哪里：**式 2 是对每个像素 $x$ 写的；在细胞内部 $d_1 = 0$，所以照字面理解，靠近相邻细胞的细胞像素也会得到 $w_0 e^{-d_2^2 / 2\sigma^2}$ 的权重。`unet_scratch.weightmap`（与许多复现一样）**只在背景像素上**
# 加边界项，这样权重只落在分隔缝隙上，别处都没有；论文没有说它用的是哪一种。**类别平衡项 $w_c$：**论文只说它"平衡各类的频率"；本库用 $w_c = 1 / (2 f_c)$，$f_c$ 是类别 $c$ 的像素所占的比例，这样每一类各承担总权重的一半，$w_c$ 的平均值恰好为 1。
#
# 这张图需要**实例**标签（哪个像素属于哪个细胞），而不只是前景掩码：二值掩码分不清两个相互接触的细胞和一个细胞。`data.load("cells", ...)` 会返回实例标签。

# %%
w_map = weight_map(inst, w0=10.0, sigma=5.0, class_balance=True)
w_c = class_weights(inst)
background = inst == 0
print("cells in the image:", len(np.unique(inst)) - 1)
print("class-balance weights average 1:", abs(float(w_c.mean()) - 1) < 1e-5)
print("the largest weight lies on a background pixel:", bool(background.flat[np.argmax(w_map)]))
print("the largest weight is about w0 + w_c(background) (between 9 and 11):", 9 < w_map.max() < 11)

# a blurry prediction that merges touching cells: 2-class logits from a smoothed mask
from scipy import ndimage
z_fg = 8 * (ndimage.gaussian_filter(mask, 2.0) - 0.35)
logits = np.stack([np.zeros_like(z_fg), z_fg], axis=-1)[None].astype(np.float32)     # (1, H, W, 2)
lab = (inst > 0)[None]                                     # class 1 = cell, 0 = background (and gaps)
per_pixel = -np.take_along_axis(log_softmax(logits[0]), lab[0][..., None].astype(int), axis=-1)[..., 0]
d1, d2 = nearest_two_distances(inst)
gaps = background & (d1 + d2 <= 4)                         # background pixels squeezed between two cells
loss_w, _ = weighted_softmax_crossentropy(logits, lab, w_map[None])
loss_1, _ = weighted_softmax_crossentropy(logits, lab)
share_w = float((w_map * per_pixel)[gaps].sum() / (w_map * per_pixel).sum())
share_1 = float(per_pixel[gaps].sum() / per_pixel.sum())
print("the largest weight lies in a gap between two touching cells (d1 + d2 <= 4):", bool(gaps.flat[np.argmax(w_map)]))
print("the gaps between touching cells carry a bigger share of the loss with the weight map:", share_w > 2 * share_1)
k_loss, k_grad = keras_loss_and_grad(tf_weighted_ce(w_map[None]), lab.astype(np.int32), logits)
print("weighted loss on this image matches TensorFlow (value and gradient):",
      np.isclose(loss_w, k_loss, **TOL) and np.allclose(weighted_softmax_crossentropy(logits, lab, w_map[None])[1],
                                                        k_grad, **TOL))

# %%
fig, ax = plt.subplots(1, 4, figsize=(13, 3.5), dpi=100)
ax[0].imshow(image, cmap="gray"); ax[0].set_title("image: touching nuclei")
ax[1].imshow(inst, cmap="viridis", interpolation="nearest"); ax[1].set_title("instances (one shade per cell)")
im = ax[2].imshow(w_map, cmap="viridis"); ax[2].set_title("weight map w(x): bright in the gaps")
fig.colorbar(im, ax=ax[2], fraction=0.046, pad=0.04, label="weight (unitless)")
im = ax[3].imshow(w_map * per_pixel, cmap="viridis"); ax[3].set_title("w(x) x loss of a blurry prediction")
fig.colorbar(im, ax=ax[3], fraction=0.046, pad=0.04, label="weighted loss (nats)")
for a in ax:
    a.set_xlabel("x (pixels)"); a.set_ylabel("y (pixels)")
fig.suptitle("Eq. 2 of the U-Net paper, w0 = 10, sigma = 5: the loss pays most for the gaps between cells")
fig.tight_layout()
plt.show()

# %% [markdown] translates="29e980c53198"
# ## 6. 多个类别：背景、内部和边界的 softmax 输出层
#
# 在 U-Net 的代码仓库里，除了"我的输出是全黑的"，最常见的请求就是**两类以上**的网络。这不需要任何新东西：输出层变成 $K$ 个通道（channel）的 $1 \times 1$ 卷积加 softmax（`UNet(out_channels=K, out_activation="softmax")`），目标变成每个像素一个类别编号，损失就是上面论文的式 1，它*就是* $K$ 类的 softmax 交叉熵（加权或不加权）。对这样的输出层，`training.fit` 接受类别编号 $0 \dots K-1$ 作为掩码（`loss="weighted_ce"`），分数逐类计算：每一类像素的 Dice，$2|P_c \cap T_c| / (|P_c| + |T_c|)$。
#
# 一个有用的三类问题直接来自细胞核：**0 背景、1 细胞内部、2 细胞边界**（每个细胞 1 个像素宽的轮廓，`multiclass.boundary_classes`）。两个细胞相接触的地方，它们的轮廓并排挨着，所以*内部*会成为分开的连通分量：这是达到权重图目的的另一条路。边界类很少，在 $64 \times 64$ 上约占像素的 3%，所以第二种做法给每一类加权 $w_c = 1 / (K f_c)$（`multiclass.class_balance_weights`：每一类的总权重相同，平均值为 1），即论文中 $w_c$ 的 $K$ 类形式。

# %%
from unet_scratch import UNet, training
from unet_scratch.multiclass import boundary_classes, class_balance_weights, per_class_dice

mc_images, _, mc_instances = data.load("cells", "train", n=16, size=64)
mc_labels = boundary_classes(mc_instances)                      # (16, 64, 64) int: 0, 1, 2
mc_weights = class_balance_weights(mc_labels, 3)                # (16, 64, 64): 1 / (3 f_c)
print("class fractions (background, interior, boundary):",
      [round(float((mc_labels == c).mean()), 2) for c in range(3)])
print("class-balance weights per class:", [round(float(mc_weights[mc_labels == c][0]), 1) for c in range(3)],
      "| mean weight 1:", abs(float(mc_weights.mean()) - 1) < 1e-5)

mc_model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0, out_channels=3, out_activation="softmax",
                kernel_initializer="he_normal", seed=0)
start = training.evaluate(mc_model, (mc_images, mc_labels), loss="weighted_ce")
print("softmax head:", mc_model.output_shape, "| untrained loss near ln 3 = 1.10 (within 0.1):",
      abs(start["loss"] - np.log(3)) < 0.1)
h = training.fit(mc_model, (mc_images, mc_labels, mc_weights), epochs=1, batch_size=4, loss="weighted_ce",
                 verbose=0)
print("one epoch of training.fit on class indices runs; logged:", sorted(h.history))

# %% [markdown] translates="5925a478cf8a"
# 未训练时的损失是第一道合理性检查：一无所知的网络对每一类都预测大约 $1/K$，而 $-\log(1/3) = \ln 3 \approx 1.10$。训练到收敛平台要花几分钟
# CPU 时间，所以结果由 `benchmarks/multiclass.py` 预先算好（用 `python benchmarks/multiclass.py` 重新运行）：上面的 U-Net，在 128 张
# $64 \times 64$ 的训练图像上（另有 16 张用于验证、16 张用于测试），用 Adam，学习率（learning rate）$2 \times 10^{-3}$，批大小（batch size）4，一次用普通的交叉熵，一次用类别平衡权重，各自训练到验证损失连续 10 轮（epoch）不再下降为止；取验证集上最好那一轮的权重，在测试图像上打分。"分开的细胞"数的是这样的测试细胞：它的内部与预测出的某个内部连通分量一一对应（IoU > 0.5）。

# %%
import json
with open(repo_path("benchmarks/results/multiclass.json")) as f:
    mc_result = json.load(f)
names = mc_result["classes"]
print(f"{'cross-entropy':<16}{'epochs (best)':<15}" + "".join(f"{'Dice ' + n:<17}" for n in names) + "cells separated")
for r in mc_result["runs"]:
    label = "class-balanced" if r["weighted"] else "plain"
    print(f"{label:<16}{str(r['epochs']) + ' (' + str(r['best_epoch']) + ')':<15}"
          + "".join(f"{r['test_dice'][n]:<17.3f}" for n in names)
          + f"{r['test_cells_separated']} of {r['test_cells']}")

# %%
mc_test, _, mc_test_inst = data.load("cells", "test", n=2, size=64)
mc_test_labels = boundary_classes(mc_test_inst)
mc_pred = np.load(repo_path("benchmarks/results/multiclass-pred.npy"))    # (2 runs, 2, 64, 64)
fig, ax = plt.subplots(2, 4, figsize=(10, 5.6), dpi=100, layout="constrained")
for i in range(2):
    panels = [(mc_test[i, ..., 0], "test image", "gray"), (mc_test_labels[i], "target classes", "viridis")]
    for k, r in enumerate(mc_result["runs"]):
        d = per_class_dice(mc_pred[k, i], mc_test_labels[i], 3)
        panels.append((mc_pred[k, i], f"{'balanced' if r['weighted'] else 'plain'} CE\n(boundary Dice {d[2]:.2f})",
                       "viridis"))
    for c, (img, title, cmap) in enumerate(panels):
        im = ax[i, c].imshow(img, cmap=cmap, interpolation="nearest", **({} if cmap == "gray" else dict(vmin=0, vmax=2)))
        ax[i, c].set_title(title, fontsize=9)
        ax[i, c].set_xlabel("x (pixels)"); ax[i, c].set_ylabel("y (pixels)")
cbar = fig.colorbar(im, ax=ax[:, 3], ticks=[0, 1, 2], fraction=0.05)
cbar.ax.set_yticklabels(names)
fig.suptitle("Three classes on two test images: each cell's outline (yellow) is a class of its own", fontsize=10)
plt.show()

# %% [markdown] translates="e8e64d7b9fa8"
# **这个例子说明了什么。** 普通的交叉熵已经能学会全部三类：测试集上背景的 Dice 约 0.998，内部 0.97，1 个像素宽的轮廓 0.87。轮廓是最难的一类：1 个像素宽的轮廓只要偏了一个像素，就与目标完全不重叠。54 个测试细胞中有 49 个分割成了各自独立的内部连通分量。类别平衡权重（边界像素的权重约 11，内部 4，背景 0.4）让网络把轮廓画得更宽：轮廓的 Dice 略有下降（约 0.84，更粗的轮廓重叠得更少），而分开的细胞增加到 54 个中的 51 个。每种做法只用了一个随机种子：这么小的差别可能随种子而变，所以请把这个例子看作一个能用的做法，而不是两种加权方式的排名。
#
# 用于你自己的数据时：掩码必须存放类别编号 $0 \dots K-1$（不是独热编码，也不是颜色；存成 JPEG 的掩码会变出几百个"类别"，`training.prepare` 会指出这一点），输出层要设 `out_channels=K`，而 `training.fit` 报告的是前景（除 0 以外的所有类）的 Dice；逐类打分请用 `multiclass.per_class_dice(probabilities.argmax(-1), labels, K)`。

# %% [markdown] translates="8532979b475e"
# ## 验证
#
# 本章的检查集中在这里：每一行都是与给定容差比较的布尔值，每台机器上输出的文字都一样。

# %%
checks = {
    "stable BCE == Keras from_logits=True on z in [-40, 40]": np.allclose(stable, keras_logits, **TOL),
    "Keras BCE on a sigmoid output uses the logits": np.allclose(k_sigmoid, ours_logits, **TOL),
    **{f"{name} matches Keras/TF in float32": ok for name, ok in keras_ok.items()},
    **{f"{name} float64 gradient check < 1e-7": ok for name, ok in gradcheck_ok.items()},
    "IoU == keras.metrics.BinaryIoU": np.isclose(j, float(biou.result()), **TOL),
    "largest weight in a gap between touching cells": bool(gaps.flat[np.argmax(w_map)]),
    "3-class softmax head: untrained loss near ln 3": abs(start["loss"] - np.log(3)) < 0.1,
}
for k, v in checks.items():
    print(f"{k}: {v}")
print("ALL PASS:", all(checks.values()))

# %% [markdown] translates="521febca2a0b"
# ## 练习
#
# **练习 1.** 写出 `bce_from_logits(z, t)`，返回 `(loss, dz)`：用稳定形式 $\max(z, 0) - z t + \log(1 + e^{-|z|})$ 从 logits 计算的平均二元交叉熵，以及它的梯度 $(\sigma(z) - t) / M$，$M$ 是元素个数。在 float32 下 $|z| = 200$ 时它也必须给出有限且正确的值（检查会试）。保持 `z` 的 dtype 不变。算例：`z = [0, 2]`、`t = [1, 0]` 时，损失为 $(\log 2 + 2.127) / 2 = 1.410$，`dz = [(0.5 - 1) / 2, 0.881 / 2] = [-0.25, 0.440]`。

# %%
from unet_scratch.exercises.ch07 import check_bce_from_logits, check_soft_dice_loss, check_weighted_softmax_ce

def bce_from_logits(z, t):
    """z: logits, t: targets in [0, 1], any shape (the same) -> (loss: float, dz: like z)."""
    ### BEGIN SOLUTION
    loss = np.maximum(z, 0) - z * t + np.log1p(np.exp(-np.abs(z)))
    e = np.exp(-np.abs(z))                                       # sigma(z) without overflow
    sig = np.where(z >= 0, 1 / (1 + e), e / (1 + e))
    return float(loss.mean()), ((sig - t) / z.size).astype(z.dtype)
    ### END SOLUTION

check_bce_from_logits(bce_from_logits);


# %% [markdown] translates="5c9a30ce8e1c"
# **练习 2.** 按 Keras 的语义写出 `soft_dice_loss(p, t)`，返回 `(loss, dp)`：整个批次算一个 Dice，$\epsilon = 10^{-7}$ 只加在分母上。求梯度时要小心：$I$ 和 $S$ 都依赖于每一个 $p_j$。算例：`p = [0.5, 0.5]`、`t = [1, 0]`：$I = 0.5$，$S = 2$，损失为
# $1 - 1/2 = 0.5$，`dp` $= -2\,(t \cdot 2 - 0.5) / 4 = [-0.75, 0.25]$。

# %%
def soft_dice_loss(p, t):
    """p: probabilities, t: targets in [0, 1], any shape (the same) -> (loss: float, dp: like p)."""
    ### BEGIN SOLUTION
    eps = 1e-7
    inter = np.sum(t * p)
    s = np.sum(t) + np.sum(p) + eps
    return float(1 - 2 * inter / s), (-2 * (t * s - inter) / s ** 2).astype(p.dtype)
    ### END SOLUTION

check_soft_dice_loss(soft_dice_loss);


# %% [markdown] translates="9338c68b7783"
# **练习 3.** 写出 `weighted_softmax_ce(logits, labels, w)`，返回 `(loss, dlogits)`：论文的式 1，$-\frac{1}{M}\sum_x w(x) \log \operatorname{softmax}(z(x))_{\ell(x)}$，以及
# $w(x)\,(\operatorname{softmax}(z(x)) - \text{onehot}(\ell(x))) / M$。logits 接近 1000 时也不能溢出：取指数之前先减去每个像素最大的 logit。形状：`logits` $(N, H, W, K)$，`labels` $(N, H, W)$，取值在 $[0, K)$ 的整数，`w` $(N, H, W)$；$M = N H W$。算例：一个像素，logits $[0, 0]$，标签 1，$w = 3$：损失为 $3 \log 2 = 2.079$，`dlogits` $= 3\,([0.5, 0.5] - [0, 1]) = [1.5, -1.5]$。

# %%
def weighted_softmax_ce(logits, labels, w):
    """logits (N, H, W, K), labels (N, H, W) int, w (N, H, W) -> (loss: float, dlogits: like logits)."""
    ### BEGIN SOLUTION
    shifted = logits - logits.max(axis=-1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
    onehot = np.eye(logits.shape[-1], dtype=logits.dtype)[labels]
    m = w.size
    loss = -np.sum(w * np.sum(onehot * logp, axis=-1)) / m
    return float(loss), (w[..., None] * (np.exp(logp) - onehot) / m).astype(logits.dtype)
    ### END SOLUTION

check_weighted_softmax_ce(weighted_softmax_ce);

# %% [markdown] translates="b458f62f8353"
# **本章练习：** 1. `bce_from_logits`（稳定的二元交叉熵及其梯度），2. `soft_dice_loss`（Keras 的 Dice 损失及其梯度），
# 3. `weighted_softmax_ce`（论文的逐像素加权损失，式 1）。检查能认出的错误：sigmoid 用了两次、不稳定的 $\log(1 + e^{-z})$ 或概率写法溢出、梯度写成 $p$ 而不是 $p - t$、忘了平均值的 $1/M$（1）；对阈值化后的结果算 Dice、没有 $\epsilon$（$0/0$）、平滑项取 1、$1 - \text{Dice}$ 的符号、把 $S$ 当作常数（2）；先求平均再乘权重、除以 $\sum w$ 或只求和不求平均、log-softmax 不减最大值或写成 $\log(\text{softmax})$ 而溢出、漏了权重（3）。
