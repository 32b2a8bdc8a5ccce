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
# # 10 · The original paper: valid convolutions, 572 → 388, overlap-tile
#
# **What you will build:** the network of Ronneberger, Fischer and Brox (2015) as the paper describes it,
# with *unpadded* ("valid") convolutions, and its overlap-tile strategy for images of any size.
# **What you will check:** the paper's sizes (572 in, 388 out), the cropped skip connections against Keras,
# and that tiled inference equals one big pass where both apply. You write the mirrored border, the
# overlap-tile loop itself and the skip crop (exercises 1-3).
#
# The paper "build[s] upon" the **fully convolutional network** (FCN) of Long, Shelhamer and Darrell
# (CVPR 2015): a classification network whose dense layers are replaced by convolutions, followed by
# upsampling layers that are combined with high-resolution features of the contracting path. U-Net makes the
# upsampling path as wide as the contracting one (hence the "U"), concatenates the skips instead of adding
# scores, and is trained from very few images with heavy augmentation.
#
# The source article's Keras code pads every convolution (`padding='same'`), so its output has the input's
# size. The paper does not pad: every $3 \times 3$ convolution eats a one-pixel border, and the output is
# smaller than the input. At the end we list everything else the article changed.

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

# %% [markdown]
# ## 1. Sizes: 572 → 388
#
# A valid $3 \times 3$ convolution maps $n \mapsto n - 2$; a $2 \times 2$ pool $n \mapsto n / 2$ and needs an
# even $n$; an up-convolution $n \mapsto 2n$. Down four levels and up again,
# $$572 \to 570 \to 568 \xrightarrow{\text{pool}} 284 \to 282 \to 280 \to 140 \to 138 \to 136 \to 68 \to 66 \to 64
# \to 32 \to 30 \to 28 \xrightarrow{\text{up}} 56 \to 54 \to 52 \to 104 \to 102 \to 100 \to 200 \to 198 \to 196 \to 392 \to 390 \to 388.$$
# The paper's network, built with the package: two output channels and a pixel-wise softmax, and the
# paper's initialisation, a Gaussian with standard deviation $\sqrt{2/N}$, $N$ the number of inputs of a unit
# ($N = 9 \cdot 64$ for a $3 \times 3$ conv reading 64 channels), `kernel_initializer="paper_normal"`. (Keras's
# `he_normal` has the same standard deviation but draws from a normal truncated at two standard deviations.)
# It has 23 convolutional layers (18 $3 \times 3$ convs, 4 up-convolutions, the $1 \times 1$ head) and no dense layer.

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

# %% [markdown]
# The skip connections no longer line up: the encoder's map at level 1 is $568$ wide, the decoder's
# up-convolution gives $392$. The paper crops the skip's centre. The crops per side are
# $(568 - 392)/2 = 88$, $(280 - 200)/2 = 40$, $(136 - 104)/2 = 16$, $(64 - 56)/2 = 4$:

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

# %% [markdown]
# Not every size is legal: before each pool the size must be even. For depth 4 the legal tiles are
# $16m + 60$ ($m \ge 8$), and the output is always $184$ pixels smaller:

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

# %% [markdown]
# ### Verification: the valid network against Keras
#
# `keras_ref.build_keras_unet(padding="valid")` adds `Cropping2D` layers on the skips. The per-layer parity
# report (chapter 06) on a legal small tile, 188 → 4, with a narrow network:

# %%
from unet_scratch.keras_ref import compare, to_keras

small = UNet((188, 188, 1), base_filters=4, depth=4, padding="valid", dropout=0.0, seed=0)
x = rng.random((1, 188, 188, 1), dtype=np.float32)
report = compare(small, to_keras(small), x)
print("output", small.output_shape[1:])
print("every layer output and weight gradient agrees with Keras:", report.passed)

# %% [markdown]
# ## 2. Overlap-tile: any image size, no seams
#
# The valid network sees all the context each output pixel needs, so a large image can be processed tile
# by tile (paper, Fig. 2): each *output* tile of $o$ pixels needs an *input* tile with
# $m = (t - o)/2$ extra pixels on each side. At the image border that context does not exist; the paper
# **mirrors** the image. `predict_tiled` lays the output tiles on a grid whose step is a multiple of
# $2^{\text{depth}}$ (so every tile sees the same pooling grid as one big pass would) and stitches them.
#
# First a small valid network, trained for a few seconds on membranes (depth 3: a 140 px tile gives 52):

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

# %% [markdown]
# ### Verification: tiled equals one big pass
#
# $196 + 2 \cdot 44 = 284$ is itself a legal tile, so here one big pass over the mirrored image is possible
# too. The stitched result must equal it (up to float32 rounding: the GEMMs have other shapes):

# %%
untiled = predict(valid, np.pad(image, 44, mode="reflect"))[..., 0]
print("legal big tile:", valid_output_size(284, 3) == 196)
print("tiled == untiled within 1e-5:", np.abs(tiled - untiled).max() < 1e-5)

# %% [markdown]
# The same-padded network of the article can tile too, but its zero padding makes each tile's border
# wrong: `predict_tiled` keeps a core and blends the overlapping margins with ramp weights
# (`blend=False` cuts them off instead). Any image size works, also one not divisible by 16:

# %%
same = UNet((64, 64, 1), base_filters=4, depth=2, dropout=0.0, seed=0)
odd = rng.random((150, 97), dtype=np.float32)
p = predict_tiled(same, odd, tile=64)
print("output covers the 150 x 97 image:", p.shape == (150, 97, 1))

# %% [markdown]
# ## 3. What the source article's code changed
#
# | | Ronneberger et al. 2015 | the source article's Keras code (our default `UNet()`) |
# | --- | --- | --- |
# | convolutions | $3 \times 3$, **unpadded** (valid) | $3 \times 3$, `padding='same'` |
# | sizes | 572 → 388, overlap-tile for large images | output = input; size divisible by 16 |
# | skips | centre-cropped, then concatenated | concatenated as they are |
# | output | $1 \times 1$ conv, 2 channels, pixel-wise softmax | $1 \times 1$ conv, 1 channel, sigmoid |
# | loss | cross-entropy weighted by $w(x)$ (touching cells) | (not specified; binary cross-entropy is usual) |
# | initialisation | Gaussian, std $\sqrt{2 / N}$ (He) | Keras default, Glorot uniform |
# | training | SGD, momentum 0.99, batch of one large tile | (not specified) |
# | augmentation | shifts, rotations, grey values, elastic deformation | none |
# | dropout | "at the end of the contracting path" | 0.5 after conv4 and conv5 |
# | architecture drawn as | 4 poolings, no dense layer | the article's diagrams: 5 poolings and a fully connected layer (wrong: its own code has 4 and none) |
#
# With the package: `UNet(padding="valid", out_channels=2, out_activation="softmax",
# kernel_initializer="paper_normal")`, `optimizers.SGD(momentum=0.99)` with a batch of one tile,
# `training.fit(..., loss="weighted_ce")` with `weightmap.weight_maps`. For the augmentation, deform the
# images, masks and weight maps first (`augment.augment_with_weights`; its elastic deformation scales the
# paper's 10 px to the image size, chapter 08) and train on the results: `fit`'s own `augment` option needs
# targets the size of the images, and the valid network's targets are cropped.

# %% [markdown]
# ## Exercises

# %% [markdown]
# **Exercise 1.** Mirroring: write `mirror_pad(image, m)` that pads an (H, W) image by `m` pixels on every
# side by reflecting it about its edge pixels (the edge pixel itself is not repeated: `[a, b, c]` padded by
# 1 is `[b, a, b, c, b]`). Do not use `np.pad`. (The paper says only that the missing context "is
# extrapolated by mirroring the input image"; this course mirrors about the edge pixel, as `predict_tiled`
# does, which is `np.pad`'s `mode="reflect"`.) The check names the classic mistakes: the edge pixel repeated
# (`"symmetric"`), zeros, the opposite edge copied in (`"wrap"`).

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


# %% [markdown]
# **Exercise 2 (overlap-tile).** Write the tiling loop of section 2: `tile_predict(f, image, tile, out)`,
# where `f` is a valid network that maps one $(tile, tile)$ input tile to its $(out, out)$ output tile, with a
# margin $m = (tile - out)/2$ per side, and `image` is $(H, W)$, of any size. Steps:
#
# 1. mirror the image by $m$ on the top and left, and on the bottom and right by $m$ plus whatever the last
#    tile needs beyond the image (`np.pad(..., mode="reflect")`, or your `mirror_pad`);
# 2. output tiles start at $0, out, 2\,out, \dots$ along each axis, as many as cover the image (the last may
#    stick out); the input tile of the output tile at $(i, j)$ is `padded[i:i + tile, j:j + tile]`;
# 3. write each `f(...)` into its place and return the $(H, W)$ top-left part.
#
# Worked example: `ValidNet(12)` (two $3 \times 3$ valid convs, margin 2) on a $20 \times 13$ image: 12 -> 8,
# tiles at rows 0, 8, 16 and columns 0, 8; the padded image is $2 + 20 + 6$ by $2 + 13 + 5$. For a network
# whose output does not depend on where a tile starts (a stack of convolutions), the stitched result equals
# one big pass over the mirrored image, and the check compares with that. (A U-Net with pooling also needs
# every tile to start on its pooling grid, a multiple of $2^{\text{depth}}$ pixels, which is why
# `predict_tiled` may step by less than `out`.) The check names the classic mistakes: zeros instead of the
# mirror, the edge pixel repeated, no margin at the top and left, tiles stepped by the input size.

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

# %% [markdown]
# Your loop on the worked example, against one big pass:

# %%
f12 = ValidNet(12)
demo = rng.random((20, 13))
print("tiled == one pass over the mirrored image:",
      np.allclose(tile_predict(f12, demo, 12, 8), f12.full(np.pad(demo, 2, mode="reflect")), rtol=0, atol=1e-12))


# %% [markdown]
# **Exercise 3.** Write `skip_crop(skip_size, up_size)`: the pixels to cut from the (top, bottom) of an
# encoder map of `skip_size` so that it matches the up-convolution's `up_size` (put the odd pixel, if any,
# at the bottom, as Keras's `Cropping2D` convention in the package does). Worked example: the paper's first
# level, $568 \to 392$: 88 on each side. The check names the classic mistakes: the odd pixel on top, the whole
# difference from one side, the difference not halved.

# %%
def skip_crop(skip_size, up_size):
    ### BEGIN SOLUTION
    total = skip_size - up_size
    return total // 2, total - total // 2
    ### END SOLUTION

check_skip_crop(skip_crop);

# %% [markdown]
# ## Exercises in this chapter
#
# 1. `mirror_pad(image, m)`: the mirrored border of the overlap-tile strategy, without `np.pad`.
# 2. `tile_predict(f, image, tile, out)`: the overlap-tile loop: mirror, cut overlapping input tiles, stitch
#    the output tiles.
# 3. `skip_crop(skip_size, up_size)`: how much of an encoder map the paper's skip connection cuts away.
