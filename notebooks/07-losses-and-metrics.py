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

# %% [markdown]
# # 07 · Losses and metrics: what the network minimises and how we score it
#
# **What you will build:** the losses a U-Net trains with, each as a `(loss, gradient)` pair in NumPy:
# binary cross-entropy from probabilities and from logits, the soft Dice loss, and the paper's
# **pixel-weighted softmax cross-entropy** with its **weight map** for touching cells; the Dice and IoU
# metrics that score a finished segmentation; and a **multi-class** U-Net (background, cell interior, cell
# boundary) trained with a softmax head and scored class by class.
#
# **What you will check:**
# 1. why the cross-entropy must be computed *from logits*: the naive float32 formula overflows, the clipped
#    one goes flat, and Keras quietly switches to the logits when it can;
# 2. every loss value and gradient against Keras/TensorFlow in float32 ($\text{rtol} = \text{atol} = 10^{-5}$),
#    and every gradient against central differences in float64;
# 3. the weight map of Ronneberger et al. (2015) on touching nuclei: where it puts the weight, and why;
# 4. a 3-class softmax U-Net trained with `training.fit(loss="weighted_ce")`: per-class Dice, with and without
#    class-balance weights (precomputed by `benchmarks/multiclass.py`).
#
# In the exercises you write the three losses with their gradients; the checks name the classic mistakes (the
# sigmoid applied twice, an overflowing formula, a thresholded Dice, weights applied after averaging, ...).

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

# %% [markdown]
# ## 1. Binary cross-entropy, and why "from logits"
#
# The head of the article's U-Net is a $1 \times 1$ convolution with a sigmoid: a logit $z$ per pixel, and a
# foreground probability $p = \sigma(z) = 1 / (1 + e^{-z})$. For a target $t \in \{0, 1\}$ the binary
# cross-entropy (the negative log-likelihood of a Bernoulli) is
#
# $$\ell(p, t) = -\big(t \log p + (1 - t) \log(1 - p)\big), \qquad L = \frac{1}{M} \sum_{i=1}^{M} \ell(p_i, t_i).$$
#
# Written in $z$, with $\log \sigma(z) = -\log(1 + e^{-z})$ and $\log(1 - \sigma(z)) = -z - \log(1 + e^{-z})$:
#
# $$\ell(z, t) = \max(z, 0) - z\,t + \log\!\big(1 + e^{-|z|}\big), \qquad \frac{\partial \ell}{\partial z} = \sigma(z) - t.$$
#
# The right-hand form never exponentiates a positive number (so it cannot overflow), and `log1p` keeps
# $\log(1 + e^{-|z|})$ accurate when $e^{-|z|}$ is tiny. Its gradient is the friendliest in deep learning:
# bounded by 1 and never zero while the prediction is wrong.
#
# The naive route, $\log(\sigma(z))$, breaks in float32: for $z \gtrsim 17$, $\sigma(z)$ rounds to exactly
# 1, so $\log(1 - p) = \log 0 = -\infty$. Keras's probability form avoids the infinity by **clipping** $p$ to
# $[\epsilon, 1 - \epsilon]$ with $\epsilon = 10^{-7}$: the loss then stops at $-\log(1.19 \times 10^{-7}) \approx 15.9$
# (float32's $1 - \epsilon$ is $1 - 1.19 \times 10^{-7}$) and, worse, its gradient there is **zero**: a pixel
# that is confidently wrong stops teaching the network anything.

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

# %% [markdown]
# ### What Keras does with a sigmoid output
#
# Here is a subtlety that bites anyone who compares against Keras. Keras's `sigmoid` activation attaches
# the logits it was given to its output tensor (as `_keras_logits`), and `BinaryCrossentropy` (from
# probabilities) looks for them: when they are there, it computes the **stable loss from the logits** and
# ignores the probabilities. So a Keras U-Net with a sigmoid head is trained on the from-logits loss, while
# the same formula applied to a plain probability tensor is clipped. The two agree to rounding away from
# saturation and differ completely at it:

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


# %% [markdown]
# So: to reproduce a Keras U-Net's training loss bit for bit near saturation, compute the loss from the
# head's logits (`model.forward(x, logits=True)` and `binary_crossentropy(z, t, from_logits=True)`, whose
# gradient `backward` then takes directly). The clipped probability form is what Keras computes for a tensor
# that did not come out of a Keras sigmoid, for example probabilities loaded from disk.
#
# ## 2. Dice loss
#
# Cross-entropy scores each pixel on its own, so on an image that is 95% background a network can score
# well by predicting background everywhere. The Dice loss scores the overlap of the whole foreground. With
# soft predictions $p_i \in [0, 1]$, $I = \sum_i t_i p_i$ and $S = \sum_i t_i + \sum_i p_i$:
#
# $$L_{\text{Dice}} = 1 - \frac{2 I}{S + \epsilon}, \qquad
# \frac{\partial L_{\text{Dice}}}{\partial p_j} = -\frac{2\,\big(t_j (S + \epsilon) - I\big)}{(S + \epsilon)^2}.$$
#
# Keras's `keras.losses.Dice` adds $\epsilon = 10^{-7}$ to the denominator only and, by default, computes one
# Dice over the whole batch. `unet_scratch.ops.losses.dice_loss` does the same (its `axis=(1, 2, 3)` gives
# one Dice per image instead). Note the gradient: every pixel's gradient depends on the sums over all
# pixels, which is what makes Dice insensitive to class imbalance, and what makes it noisy when the
# foreground is tiny.
#
# ## 3. Every loss against Keras/TensorFlow (float32) and against central differences (float64)
#
# The losses return `(loss, dloss/dprediction)`. On the Keras side, `tf.GradientTape` gives the gradient of
# the same loss with respect to the same prediction. Mind the argument order: ours is
# `loss(y_pred, y_true)`, Keras's `loss_fn(y_true, y_pred)`.
#
# The paper's weighted loss has no Keras class; its TensorFlow form is one line,
# `tf.reduce_mean(w * tf.nn.sparse_softmax_cross_entropy_with_logits(labels, logits))`:
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

# %% [markdown]
# Now the gradients themselves, in float64, against central differences
# $\partial L / \partial y_j \approx \big(L(y + h e_j) - L(y - h e_j)\big) / 2h$ with $h = 10^{-5}$
# (`unet_scratch.gradcheck`). The probabilities are kept inside $[0.05, 0.95]$, away from the clip, where
# the probability form has no gradient at all.

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

# %% [markdown]
# ## 4. Metrics: Dice and IoU
#
# A loss must be differentiable; a metric must be honest. The metrics score the **binarised** prediction
# ($p > 0.5$) against the target, as sets of pixels $A$ and $B$:
#
# $$\text{Dice}(A, B) = \frac{2 |A \cap B|}{|A| + |B|}, \qquad \text{IoU}(A, B) = \frac{|A \cap B|}{|A \cup B|},
# \qquad \text{IoU} = \frac{\text{Dice}}{2 - \text{Dice}}.$$
#
# The two rank predictions identically (one is a monotone function of the other); IoU is the harsher
# number. On a binary prediction the soft Dice loss is exactly $1 - \text{Dice}$ (up to its $\epsilon$).
# One convention to watch: `unet_scratch.metrics` counts $p = 0.5$ as background ($p > 0.5$), Keras's
# `BinaryIoU(threshold=0.5)` as foreground ($p \ge 0.5$).
#
# Below, the prediction is the true mask of a nuclei image shifted sideways by $k$ pixels: a simple way to
# see how fast each score falls as the outline misses.

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

# %% [markdown]
# ## 5. The paper's weighted loss and weight map: separating touching cells
#
# Two touching nuclei must come out as **two** objects, so the 1-2 pixel background gap between them is the
# most important part of the mask, and the smallest. Plain cross-entropy gives those pixels the same weight
# as any other, so a network that merges the cells pays almost nothing. Ronneberger et al. (2015, Eq. 2)
# weight each pixel by
#
# $$w(x) = w_c(x) + w_0 \exp\!\left(-\frac{\big(d_1(x) + d_2(x)\big)^2}{2 \sigma^2}\right),$$
#
# $d_1, d_2$ the distances to the nearest and second-nearest cell, $w_0 = 10$, $\sigma \approx 5$ pixels. In a
# thin gap $d_1 + d_2$ is about the gap's width, so $w \approx w_0$; far from cells the term vanishes.
#
# Two choices below are this package's, not the paper's. **Where the border term applies:** Eq. 2 is written
# for every pixel $x$; inside a cell $d_1 = 0$, so taken literally it would also weight cell pixels near a
# neighbour by $w_0 e^{-d_2^2 / 2\sigma^2}$. `unet_scratch.weightmap` (like many reimplementations) adds the
# border term on **background pixels only**, which puts the weight on the separating gaps and nowhere else; the
# paper does not say which it did. **The class balance $w_c$:** the paper only says it "balances the class
# frequencies"; the package uses $w_c = 1 / (2 f_c)$, $f_c$ the fraction of pixels of class $c$, so each class
# carries half the total weight and $w_c$ averages exactly 1.
#
# The map needs **instance** labels (which cell is which), not just a foreground mask: a binary mask cannot
# tell two touching cells from one. `data.load("cells", ...)` returns them.

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

# %% [markdown]
# ## 6. Several classes: a softmax head for background, interior and boundary
#
# The most common request in U-Net repositories after "my output is black" is a network for **more than two
# classes**. Nothing new is needed: the head becomes a $1 \times 1$ convolution with $K$ channels and a softmax
# (`UNet(out_channels=K, out_activation="softmax")`), the targets become one class index per pixel, and the loss
# is the paper's Eq. 1 above, which *is* the $K$-class softmax cross-entropy (weighted or not). `training.fit`
# takes class indices $0 \dots K-1$ as masks for such a head (`loss="weighted_ce"`), and the scores are per class:
# the Dice of each class's pixels, $2|P_c \cap T_c| / (|P_c| + |T_c|)$.
#
# A useful 3-class problem comes straight from the nuclei: **0 background, 1 cell interior, 2 cell boundary**
# (each cell's 1-pixel outline, `multiclass.boundary_classes`). Where two cells touch, their outlines lie side by
# side, so the *interiors* come out as separate connected components: another route to what the weight map
# does. The boundary class is rare, about 3% of the pixels at $64 \times 64$, so a second variant weights each
# class by $w_c = 1 / (K f_c)$ (`multiclass.class_balance_weights`: every class the same total weight, mean 1),
# the $K$-class form of the paper's $w_c$.

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

# %% [markdown]
# The untrained loss is a first sanity check: a network that knows nothing predicts about $1/K$ for every class,
# and $-\log(1/3) = \ln 3 \approx 1.10$. Training to a plateau takes a few CPU-minutes, so it is precomputed by
# `benchmarks/multiclass.py` (rerun it with `python benchmarks/multiclass.py`): the U-Net above on 128 training
# images of $64 \times 64$ (16 for validation, 16 for testing), Adam with learning rate $2 \times 10^{-3}$, batch 4,
# once with plain cross-entropy and once with the class-balance weights, each until its validation loss has not
# improved for 10 epochs; the best validation epoch's weights are scored on the test images. "Cells separated"
# counts the test cells whose interior is matched one-to-one by a predicted interior component (IoU > 0.5).

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

# %% [markdown]
# **What the example shows.** Plain cross-entropy already learns all three classes: test Dice about 0.998 for
# the background, 0.97 for the interiors and 0.87 for the 1-pixel outlines, the hardest class: an outline one pixel
# wide that is off by one pixel does not overlap its target at all; 49 of the 54 test cells come out as their own interior component. The
# class-balance weights (boundary pixels weigh about 11, interiors 4, background 0.4) make the network paint outlines
# more generously: their Dice drops a little (about 0.84, thicker outlines overlap less) while the cells separated
# rise to 51 of 54. One seed each: differences this small can change with the seed, so read the example as a
# working recipe, not as a ranking of the two weightings.
#
# For your own data: masks must hold class indices $0 \dots K-1$ (not one-hot, not colours; a JPEG-saved mask
# turns into hundreds of "classes", and `training.prepare` says so), the head needs `out_channels=K`, and
# `training.fit` reports the Dice of the foreground (every class but 0); score each class with
# `multiclass.per_class_dice(probabilities.argmax(-1), labels, K)`.

# %% [markdown]
# ## Verification
#
# The chapter's checks in one place: booleans against stated tolerances, the same text on every machine.

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

# %% [markdown]
# ## Exercises
#
# **Exercise 1.** Write `bce_from_logits(z, t)` returning `(loss, dz)`: the mean binary cross-entropy from
# logits in the stable form $\max(z, 0) - z t + \log(1 + e^{-|z|})$ and its gradient $(\sigma(z) - t) / M$,
# $M$ the number of elements. It must give finite, correct values for $|z| = 200$ in float32 (the check tries).
# Keep the dtype of `z`. Worked example: `z = [0, 2]`, `t = [1, 0]` give the loss
# $(\log 2 + 2.127) / 2 = 1.410$ and `dz = [(0.5 - 1) / 2, 0.881 / 2] = [-0.25, 0.440]`.

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


# %% [markdown]
# **Exercise 2.** Write `soft_dice_loss(p, t)` returning `(loss, dp)` with Keras's semantics: one Dice for
# the whole batch, $\epsilon = 10^{-7}$ in the denominator only. Careful with the gradient: $I$ and $S$ both
# depend on every $p_j$. Worked example: `p = [0.5, 0.5]`, `t = [1, 0]`: $I = 0.5$, $S = 2$, the loss is
# $1 - 1/2 = 0.5$ and `dp` $= -2\,(t \cdot 2 - 0.5) / 4 = [-0.75, 0.25]$.

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


# %% [markdown]
# **Exercise 3.** Write `weighted_softmax_ce(logits, labels, w)` returning `(loss, dlogits)`: the paper's
# Eq. 1, $-\frac{1}{M}\sum_x w(x) \log \operatorname{softmax}(z(x))_{\ell(x)}$, and
# $w(x)\,(\operatorname{softmax}(z(x)) - \text{onehot}(\ell(x))) / M$. Logits near 1000 must not overflow:
# subtract each pixel's largest logit before exponentiating. Shapes: `logits` $(N, H, W, K)$, `labels`
# $(N, H, W)$ integers in $[0, K)$, `w` $(N, H, W)$; $M = N H W$. Worked example: one pixel, logits $[0, 0]$,
# label 1, $w = 3$: the loss is $3 \log 2 = 2.079$ and `dlogits` $= 3\,([0.5, 0.5] - [0, 1]) = [1.5, -1.5]$.

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

# %% [markdown]
# **Exercises in this chapter:** 1. `bce_from_logits` (the stable binary cross-entropy and its gradient),
# 2. `soft_dice_loss` (Keras's Dice loss and its gradient), 3. `weighted_softmax_ce` (the paper's
# pixel-weighted loss, Eq. 1). The mistakes the checks name: the sigmoid applied twice, the unstable
# $\log(1 + e^{-z})$ or probability form overflowing, a gradient of $p$ instead of $p - t$, the mean's $1/M$
# forgotten (1); a thresholded Dice, no $\epsilon$ ($0/0$), a smoothing of 1, the sign of $1 - \text{Dice}$, $S$
# treated as a constant (2); the weights applied after averaging, a division by $\sum w$ or a sum instead of
# the mean, an unshifted or $\log(\text{softmax})$ log-softmax overflowing, the weights left out (3).
