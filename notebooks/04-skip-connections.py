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
# # 04 · Skip connections: concatenate, crop, and what the skips buy
#
# **What you will build:** the piece that makes a U-Net a *U*: the skip connection. The encoder's feature
# map at each level is carried across and **concatenated** with the decoder's up-sampled map; in the
# paper's `valid` network it is first **centre-cropped** to the decoder's (smaller) size. You will write
# both operations' gradients: concatenation's gradient is a **split**, a crop's gradient is a **paste**.
#
# **What you will check:**
# 1. `ops/concat.py`'s concatenation and its gradient split against `tf.concat` + `tf.GradientTape`;
# 2. the paper's crop amounts for the 572 $\to$ 388 network (4, 16, 40 and 88 pixels per side) and
#    `center_crop` against `keras.layers.Cropping2D`, forward and backward;
# 3. an experiment: the same small U-Net trained **with** and **without** skips (same parameters, same
#    seed, same batches): what is lost at the membranes' edges when the skips are cut.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small matrices: one BLAS thread is faster, and far
                                                   # faster on a busy 2-core CPU (threads wait on each other)

import numpy as np
import matplotlib.pyplot as plt
from scipy import ndimage
import unet_scratch as us
from unet_scratch import UNet, data, metrics
from unet_scratch.backend import available_backends
from unet_scratch.ops.concat import concatenate, concatenate_backward, crop_amounts, center_crop, center_crop_backward
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.optimizers import Adam
from unet_scratch.keras_ref import import_tensorflow, import_keras
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Concatenation, and why its gradient is a split
#
# At decoder level $\ell$ the up-convolution gives $u \in \mathbb{R}^{N \times H \times W \times C_u}$ and
# the encoder sends its feature map $s \in \mathbb{R}^{N \times H \times W \times C_s}$ across. The model
# stacks them along the channel axis, up-sampled map first (`[up, skip]`, as in the article's Keras code):
#
# $$y = [\,u \mid s\,] \in \mathbb{R}^{N \times H \times W \times (C_u + C_s)}, \qquad
# y_{n,i,j,c} = \begin{cases} u_{n,i,j,c} & c < C_u \\ s_{n,i,j,c - C_u} & c \ge C_u. \end{cases}$$
#
# Every output entry is a copy of exactly one input entry, so the Jacobian is a 0/1 selection and the chain
# rule $\frac{\partial L}{\partial u_{n,i,j,c}} = \sum_{c'} \frac{\partial L}{\partial y_{n,i,j,c'}}
# \frac{\partial y_{n,i,j,c'}}{\partial u_{n,i,j,c}}$ keeps a single term:
#
# $$\frac{\partial L}{\partial u} = \delta_{\,\dots,\;0:C_u}, \qquad \frac{\partial L}{\partial s} = \delta_{\,\dots,\;C_u:C_u + C_s},
# \qquad \delta = \frac{\partial L}{\partial y}.$$
#
# No arithmetic at all: the gradient is **routed**, the first $C_u$ channels back down the decoder, the
# rest across the skip to the encoder. Chapter 05 follows the second half to where it is *added* to
# the encoder's own gradient.

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

# %% [markdown]
# ### Verification: the split against TensorFlow
#
# `tf.concat` with a `GradientTape`: for $L = \sum y \odot \delta$ the tape's gradients with respect to
# $u$ and $s$ are exactly $\partial L / \partial u$ and $\partial L / \partial s$. A concatenation copies
# floats and its gradient copies them back, so the agreement should be **bit for bit**, not just within
# a tolerance.

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

# %% [markdown]
# ## 2. The paper's centre crop
#
# The article's network pads every $3\times3$ convolution (`same`), so the encoder's map at a level has the
# same size as the decoder's, and the skip goes straight into the concatenation. Ronneberger et al. used
# **valid** convolutions: each one loses a 1-pixel border, 2 pixels per side per level. By the time the
# decoder comes back up to a level, its up-sampled map is *smaller* than the encoder's map there,
# so the paper crops the skip to the centre:
#
# $$\text{top} = \Big\lfloor \frac{H - h}{2} \Big\rfloor, \quad \text{bottom} = (H - h) - \text{top}, \qquad
# s' = s_{\,:,\ \text{top} : \text{top} + h,\ \text{left} : \text{left} + w,\ :}$$
#
# (`crop_amounts(H, W, h, w)` gives `((top, bottom), (left, right))`; an odd difference leaves the extra row
# to the bottom). A crop is a slice, so its gradient **pastes** $\delta$ back into a zero array of the
# skip's shape: the cut-off border receives no gradient from the skip (it still gets some through the
# deeper path, which saw it).
#
# The model builds these crops itself. For the paper's $572 \times 572$ tile:

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

# %% [markdown]
# Where the window sits on a real feature map: the first level's encoder output (two valid convolutions
# of a $572 \times 572$ membrane image, $568 \times 568$) and the $392 \times 392$ window the decoder keeps.
# The last panel is the crop's gradient for $\delta = 1$: the paste.

# %%
image, _ = data.load("membranes", n=1, size=572)
enc1 = paper.encoder[0]
fmap = enc1.conv2.forward(enc1.conv1.forward(image))                  # (1, 568, 568, 4)
kept, crop_cache = center_crop(fmap, (392, 392))
dfmap = center_crop_backward(np.ones_like(kept), crop_cache)

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

# %% [markdown]
# ### Verification: the crop against `keras.layers.Cropping2D`
#
# Keras's `Cropping2D(((top, bottom), (left, right)))` given `crop_amounts` must keep the same window,
# including an odd difference (9 $\to$ 4: 2 rows off the top, 3 off the bottom), and its gradient
# (through a `GradientTape`) must be our paste.

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
          f"gradient identical {np.array_equal(center_crop_backward(dy, cache), dx_t.numpy())}")


# %% [markdown]
# ## 3. What the skips buy: the same network with and without them
#
# Max-pooling throws away *where* inside each $2 \times 2$ window a feature was; after three poolings the
# bottleneck of a $64 \times 64$ U-Net sees the image on an $8 \times 8$ grid. The membranes of
# `data.load("membranes")` are 2-4 pixels wide: from the bottleneck alone the decoder cannot know where,
# inside an 8-pixel cell, a wall runs. The skips hand the decoder the encoder's full-resolution maps.
#
# **The experiment.** A fair comparison changes one thing only. `NoSkipUNet` below is `UNet` with each skip
# tensor replaced by **zeros** before the concatenation: the same layers, the same parameter count, the
# same initial weights for the same seed; the decoder's first convolution still has its skip-channel
# weights, they just multiply zeros. In the backward pass the zeros are constants, so nothing flows back
# across the skip (the encoder learns only through the bottleneck). Both networks are trained with the
# same loop on the **same batches**, with the paper's He-normal initialisation (with Keras's Glorot default
# the skip-less network, 18 weight layers deep with no shortcut, barely leaves the constant prediction in this
# many steps; chapter 05 shows why: the gradient reaching its first layers is tiny).

# %%
class NoSkipUNet(UNet):
    '''UNet whose skips carry zeros: the same parameters, no information (and no gradient) across.'''

    def forward(self, x, training=False, logits=False):
        x = self._check_input(x)
        skips, h = [], x
        for block in self.encoder:
            skip, h = block.forward(h, training)
            skips.append(np.zeros_like(skip))            # <- the only change: the decoder receives zeros
        h = self.bottleneck.forward(h, training)
        for block, skip in zip(self.decoder, reversed(skips)):
            h = block.forward(h, skip)
        return self.head.forward(h, logits=logits)

    def backward(self, dy):
        dh = self.head.backward(dy)
        dskips = []
        for block in reversed(self.decoder):
            dh, dskip = block.backward(dh)
            dskips.append(np.zeros_like(dskip))          # <- zeros are constants: no gradient goes across
        dh = self.bottleneck.backward(dh)
        for block, dskip in zip(reversed(self.encoder), reversed(dskips)):
            dh = block.backward(dh, dskip)
        return dh

config = dict(input_shape=(64, 64, 1), base_filters=8, depth=3, dropout=0, kernel_initializer="he_normal", seed=0)
with_skips, without_skips = UNet(**config), NoSkipUNet(**config)
print("parameters:", with_skips.count_params(), "and", without_skips.count_params())
print("identical initial weights:", all(np.array_equal(with_skips.params[k], without_skips.params[k])
                                        for k in with_skips.params))

# %% [markdown]
# The training loop, written out (chapter 08 wraps it in `unet_scratch.training.fit`): a forward pass
# in training mode gives sigmoid probabilities, the binary cross-entropy gives the loss and $\partial L/\partial p$,
# `backward` fills every gradient, and Adam updates the weights in place. The Numba backend (chapter 09)
# runs the same ops faster on a CPU; the numbers below do not depend on it.

# %%
x_train, y_train = data.load("membranes", size=64)                # 64 images, 64 x 64
x_val, y_val = data.load("membranes", "val", size=64)              # 16 others
STEPS, BATCH = 200, 4
order = np.random.default_rng(0)
batches = [order.choice(len(x_train), BATCH, replace=False) for _ in range(STEPS)]

def train(model, batches, learning_rate=1e-3):
    opt = Adam(learning_rate)
    losses = []
    for idx in batches:
        p = model.forward(x_train[idx], training=True)            # sigmoid probabilities (N, 64, 64, 1)
        loss, dp = binary_crossentropy(p, y_train[idx])
        model.backward(dp)
        opt.apply(model.params, model.grads)
        losses.append(loss)
    return np.array(losses)

with us.use_backend("numba" if "numba" in available_backends() else "numpy"):
    curves = {"with skips": train(with_skips, batches), "without skips": train(without_skips, batches)}
    probs = {"with skips": with_skips.forward(x_val), "without skips": without_skips.forward(x_val)}
print("trained", STEPS, "steps each on the same", BATCH, "-image batches:", all(len(c) == STEPS for c in curves.values()))


# %% [markdown]
# Two scores on the 16 validation images: the Dice coefficient of the thresholded prediction
# ($2|A \cap B| / (|A| + |B|)$, `metrics.dice`), and a **boundary error**: the fraction of wrong pixels
# within 2 pixels of a membrane edge, where the walls are actually traced.

# %%
def boundary_band(mask, width=2):
    '''Pixels within `width` px of a label edge, per image. mask: (N, H, W, 1) in {0, 1}.'''
    m = mask[..., 0] > 0.5
    grow = np.stack([ndimage.binary_dilation(k, iterations=width) for k in m])
    shrink = np.stack([ndimage.binary_erosion(k, iterations=width) for k in m])
    return (grow & ~shrink)[..., None]

band = boundary_band(y_val)
scores = {}
for name, p in probs.items():
    wrong = (p > 0.5) != (y_val > 0.5)
    scores[name] = dict(dice=metrics.dice(p, y_val), boundary=float(wrong[band].mean()))

fig, ax = plt.subplots(figsize=(6, 3.2), dpi=100)
for name, c in curves.items():
    ax.plot(np.convolve(c, np.ones(10) / 10, mode="valid"), label=f"{name} (val Dice {scores[name]['dice']:.2f})")
ax.set_xlabel("training step"); ax.set_ylabel("BCE loss (10-step mean)")
ax.set_title("Same weights, same batches: without skips the loss\nstarts falling later and stays higher", fontsize=10)
ax.legend(); fig.tight_layout(); plt.show()

# %%
show = [0, 1]
fig, ax = plt.subplots(len(show), 4, figsize=(9.5, 5.5), dpi=100)
for r, i in enumerate(show):
    panels = [(x_val[i, ..., 0], "input"), (y_val[i, ..., 0], "target membranes"),
              (probs["with skips"][i, ..., 0], f"with skips (Dice {metrics.dice(probs['with skips'][i], y_val[i]):.2f})"),
              (probs["without skips"][i, ..., 0], f"without skips (Dice {metrics.dice(probs['without skips'][i], y_val[i]):.2f})")]
    for c, (img, title) in enumerate(panels):
        ax[r, c].imshow(img, cmap="gray", vmin=0, vmax=1, interpolation="nearest")
        ax[r, c].set_title(title, fontsize=9)
        ax[r, c].set_xlabel("x (pixels)"); ax[r, c].set_ylabel("y (pixels)")
fig.suptitle("Predicted membrane probability: without skips the walls come out thick, blurred and misplaced", fontsize=11)
fig.tight_layout(); plt.show()

# %% [markdown]
# ### Verdict
#
# Printed as comparisons, not raw scores (the scores themselves are in the figures' titles):

# %%
s, n = scores["with skips"], scores["without skips"]
print("same parameter count:", with_skips.count_params() == without_skips.count_params())
print("with skips, val Dice above 0.7:", s["dice"] > 0.7)
print("skips raise val Dice by more than 0.05:", s["dice"] - n["dice"] > 0.05)
print("skips lower the boundary error by more than a third:", s["boundary"] < 2 / 3 * n["boundary"])
print("skips give the lower final training loss:", curves["with skips"][-20:].mean() < curves["without skips"][-20:].mean())

# %% [markdown]
# What the skips bought, with the same parameters: the decoder gets the encoder's full-resolution maps,
# so it can place a 2-4 pixel wall exactly; without them it can only paint blurry blobs from the bottleneck's
# coarse grid. (They also give the gradient a short way back to the first layers: chapter 05.)
#
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases and says what is wrong.

# %% [markdown]
# **Exercise 1.** Write `concat_backward(dy, c1)`: for $y = [x_1 \mid x_2]$ (channels last) where $x_1$
# had `c1` channels, return the tuple `(dx1, dx2)` of gradients from $\delta = $ `dy`.

# %%
from unet_scratch.exercises.ch04 import check_concat_backward, check_skip_crops, check_center_crop_backward

def concat_backward(dy, c1):
    ### BEGIN SOLUTION
    return dy[..., :c1], dy[..., c1:]
    ### END SOLUTION

check_concat_backward(concat_backward)


# %% [markdown]
# **Exercise 2.** Write `skip_crops(size, depth)`: the pixels cut from **each side** of the skip at decoder
# level 1 (top) to `depth` (deepest) in the paper's valid U-Net (two $3\times3$ valid convolutions per level,
# $2\times2$ pooling, $2\times2$ stride-2 up-convolutions) for a `size` $\times$ `size` tile:
# `[88, 40, 16, 4]` for 572 and depth 4. Then try 188: why does the answer not depend on the tile size?

# %%
def skip_crops(size, depth):
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

check_skip_crops(skip_crops)


# %% [markdown]
# **Exercise 3.** Write `center_crop_backward(dy, x_shape)`: the gradient of `center_crop(x, dy.shape[1:3])`
# for an `x` of shape `x_shape` $(N, H, W, C)$: zeros, with `dy` pasted where the crop was taken
# (the extra row or column of an odd difference is cut at the bottom or right).

# %%
def center_crop_backward(dy, x_shape):
    ### BEGIN SOLUTION
    n, h, w, c = x_shape
    top, left = (h - dy.shape[1]) // 2, (w - dy.shape[2]) // 2
    dx = np.zeros(x_shape, dtype=dy.dtype)
    dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
    return dx
    ### END SOLUTION

check_center_crop_backward(center_crop_backward)

# %% [markdown]
# **Exercises in this chapter:** 1. `concat_backward` (the gradient of a concatenation is a split),
# 2. `skip_crops` (the paper's crop at every level, 88/40/16/4 for 572), 3. `center_crop_backward`
# (the gradient of a crop is a paste).
