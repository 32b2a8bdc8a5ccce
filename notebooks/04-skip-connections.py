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
# 3. an experiment: the same small U-Net trained **with** and **without** skips (the same parameters and
#    initial weights), 3 seeds each, until validation stops improving: what the skips are worth, measured.
#
# In the exercises you write the two gradients (`concat_backward`, `center_crop_backward`) and the paper's crop
# amounts (`skip_crops`); the checks name the classic mistakes (halves swapped, the crop pasted at the corner,
# the odd pixel on the wrong side, ...).

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
          f"gradient identical {np.array_equal(ops.center_crop_backward(dy, cache), dx_t.numpy())}")


# %% [markdown]
# ## 3. What the skips buy, measured
#
# A tempting argument says that after the poolings the bottleneck is too coarse to know where a 2-pixel wall
# runs, so only the skips can place it. For a U-Net that argument is wrong. The article's network at
# $256 \times 256$ ends its contracting path in a $16 \times 16 \times 1024$ tensor: 262,144 numbers, **four
# times** the 65,536 input pixels. The small U-Net of this section ($64 \times 64$ input, 8 filters at the top,
# depth 3) has an $8 \times 8 \times 64$ bottleneck: 4,096 numbers for 4,096 pixels. A coarse grid with many
# channels can encode positions finely; capacity is not what the skips add. What they do add:
#
# 1. **An inductive bias.** Each decoder level receives the encoder's map at its own resolution. Putting an edge
#    where the encoder saw it is then a short computation (two $3 \times 3$ convolutions after the
#    concatenation), instead of something the network must learn to encode into the bottleneck's channels and
#    decode back through three up-convolutions. Nothing forbids the skip-less network from learning that; the
#    question is how well it does with the same data and training.
# 2. **A short gradient path.** The gradient reaches the top encoder level across the skip through 3 layers with
#    weights, instead of 16 down and back up the U (chapter 05 measures both terms).
#
# Neither argument says how much this matters; an experiment does. `UNet(..., skip_connections=False)` hands each
# decoder level **zeros** in place of its skip: the same layers, the same parameter count, the same initial
# weights for the same seed. The decoder's first convolution keeps its skip-channel weights, which multiply
# zeros, and in the backward pass nothing flows back across (zeros are constants).

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

# %% [markdown]
# **The experiment** is precomputed by `benchmarks/skips.py` (about 10 CPU-minutes, too long for this chapter;
# rerun it with `python benchmarks/skips.py`, which rewrites `benchmarks/results/skips.json`). Data:
# `data.load("membranes", size=64)`, 128 training, 16 validation and 16 test images. Each network is trained
# from **3 seeds** (initial weights and batch order) with `training.fit`: Adam, learning rate $10^{-3}$, batch
# 4, binary cross-entropy, He-normal initialisation, the Numba backend, **until the validation loss has not
# improved for 15 epochs**; the weights of its best validation epoch are then scored on the test images. Two
# scores: the Dice coefficient of the thresholded prediction, and a **boundary error**, the fraction of wrong
# pixels within 2 pixels of a membrane edge, where the walls are actually traced.

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

# %% [markdown]
# **What the experiment shows.** With the same parameters, data, optimiser and stopping rule, the skip-less
# network reaches a test Dice of about 0.71 against 0.84 with skips (3 seeds each, spreads under 0.01), with
# about twice the boundary error: its walls come out thick and blurred. Both networks were trained until
# validation stopped improving; by then the training loss was still falling while the validation loss rose, so
# both had begun to overfit 128 images, and more data or augmentation would raise both numbers. The skip-less
# network also starts late: its validation Dice stays near 0 for the first 2-4 epochs, as one would expect from
# its longer gradient path (16 layers with weights to the top encoder level; chapter 05 measures the gradients).
#
# **What it does not show.** One small network, one data set, one training recipe. The gap need not be the same
# for the article's full network at 256 px, with other data, with augmentation or with far longer training; a
# bottleneck that holds as many numbers as the image does not rule out a skip-less network that places walls
# well. The measured claim is narrower: here, the skips made the same network learn the walls faster and better.
#
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases and says what is wrong, naming
# the classic mistake when it recognises one.

# %% [markdown]
# **Exercise 1.** Write `concat_backward(dy, c1)`: for $y = [x_1 \mid x_2]$ (channels last) where $x_1$
# had `c1` channels, return the tuple `(dx1, dx2)` of gradients from $\delta = $ `dy`. Shapes: `dy`
# $(N, H, W, C_1 + C_2)$ gives `dx1` $(N, H, W, C_1)$ and `dx2` $(N, H, W, C_2)$. Worked example: one pixel
# with `dy = [1, 2, 3]` and `c1 = 2` gives `dx1 = [1, 2]`, `dx2 = [3]`.

# %%
from unet_scratch.exercises.ch04 import check_concat_backward, check_skip_crops, check_center_crop_backward

def concat_backward(dy, c1):
    """dy: (N, H, W, C1 + C2), c1 = C1 -> (dx1: (N, H, W, C1), dx2: (N, H, W, C2))."""
    ### BEGIN SOLUTION
    return dy[..., :c1], dy[..., c1:]
    ### END SOLUTION

check_concat_backward(concat_backward);


# %% [markdown]
# **Exercise 2.** Write `skip_crops(size, depth)`: the pixels cut from **each side** of the skip at decoder
# level 1 (top) to `depth` (deepest) in the paper's valid U-Net (two $3\times3$ valid convolutions per level,
# $2\times2$ pooling, $2\times2$ stride-2 up-convolutions) for a `size` $\times$ `size` tile:
# `[88, 40, 16, 4]` for 572 and depth 4. Then try 188: why does the answer not depend on the tile size?

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


# %% [markdown]
# **Exercise 3.** Write `center_crop_backward(dy, x_shape)`: the gradient of `center_crop(x, dy.shape[1:3])`
# for an `x` of shape `x_shape` $(N, H, W, C)$: zeros, with `dy` pasted where the crop was taken
# (the extra row or column of an odd difference is cut at the bottom or right). Worked example: `x_shape`
# $(1, 9, 9, 1)$ and a $4 \times 4$ `dy`: $9 - 4 = 5$ rows are cut, 2 on top and 3 at the bottom, so `dy` lands
# in rows and columns 2 to 5. (This chapter calls the package's version `ops.center_crop_backward`, so yours
# does not replace it.)

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

# %% [markdown]
# **Exercises in this chapter:** 1. `concat_backward` (the gradient of a concatenation is a split),
# 2. `skip_crops` (the paper's crop at every level, 88/40/16/4 for 572), 3. `center_crop_backward`
# (the gradient of a crop is a paste). The mistakes the checks name: the halves swapped, the two gradients
# in the wrong order, `dy` returned for both, a split along the rows (1); the total crop instead of one side's,
# the levels in the wrong order, one convolution per level (2); the window pasted at the top-left corner, an odd
# difference split the wrong way, `dy` returned in the cropped shape (3).
