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
# # 00 · Introduction: the U-Net at a glance, and a setup check
#
# **What you will build in this course:** every piece of a U-Net (convolution, max-pooling, transposed
# convolution, skip connections, losses, optimizers), each with its forward *and* backward pass, in NumPy.
# **What you will check:** each piece against TensorFlow/Keras, to the last float.
#
# In this chapter you will
# 1. see what *segmentation* asks of a network, and why a fully convolutional one beats classifying a patch
#    around every pixel,
# 2. build the source article's U-Net with `unet_scratch` and draw it from its real shapes,
# 3. see what the source article's diagram gets wrong,
# 4. check that your machine has what the course needs,
# 5. write three small functions, each checked: the sizes of a `same` U-Net's levels (`same_unet_sizes`), the
#    parameters of a convolution (`conv_params`), and the patch around every pixel (`pixel_patches`), with which
#    you will see that a per-pixel classifier slid over an image is a convolution.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow, should a later cell import it

import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet

rng = np.random.default_rng(0)


# %% [markdown]
# ## 1. Segmentation: a label for every pixel
#
# A classifier maps an image $x \in \mathbb{R}^{H \times W \times C}$ to one label. A segmentation network
# maps it to a label **per pixel**: $y \in [0, 1]^{H \times W}$ for two classes, the probability that each
# pixel belongs to the foreground. The output has the input's height and width, which is why the U-Net
# has a path back up.

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

# %% [markdown]
# ### Before U-Net: a classifier slid over every pixel
#
# The network the U-Net paper compares itself with (Ciresan et al. 2012, winner of the ISBI 2012 EM segmentation
# challenge) labels each pixel by classifying the **patch** around it, in a sliding window. The U-Net paper
# names the two drawbacks: it is slow, because the network runs once per pixel and neighbouring patches overlap
# almost entirely (the same computations are repeated), and larger patches give more context but poorer
# localisation. A **fully convolutional network** (Long, Shelhamer and Darrell, "Fully Convolutional Networks for
# Semantic Segmentation", CVPR 2015), on which the U-Net builds, computes the labels of all pixels in one pass
# and shares the overlapping work: applying the same weights to the patch around every pixel *is* a
# convolution. Exercise 3 makes that concrete.

# %% [markdown]
# ## 2. The source article's U-Net, built from scratch
#
# The defaults of `UNet()` are exactly the Keras model of the source article: at level
# $\ell = 1 \dots 4$ two $3\times3$ convolutions with $64 \cdot 2^{\ell-1}$ filters, `same` padding and ReLU,
# then a $2\times2$ max-pool that halves the height and width; a bottleneck of two 1024-filter convolutions;
# then back up, each level a $2\times2$ stride-2 transposed convolution that doubles the size,
# concatenation with the encoder's feature map of the same size (the **skip connection**), and two
# $3\times3$ convolutions. A $1\times1$ convolution with a sigmoid gives the probability map.
# Dropout 0.5 sits after the deepest encoder block and after the bottleneck.
#
# With `same` padding a level-$\ell$ feature map is $H / 2^{\ell - 1}$ pixels high, so $H$ must be divisible
# by $2^4 = 16$.

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

# %% [markdown]
# ## 3. What the source article's diagram gets wrong
#
# The article's diagrams chain **five** pooling layers into a **fully connected** layer. The network in its
# own code (and in Ronneberger et al. 2015) has **four** poolings and **no** dense layer: the bottleneck is a
# pair of convolutions. That matters: with no dense layer the U-Net is *fully convolutional*, so it runs on
# any image whose size is divisible by 16, and every output pixel is computed by the same weights.
# The article's "math" writes each stage as a composition of $\mathrm{ReLU}(Wx + b)$ and calls $\circ$ a
# convolution; chapter 01 gives the real formula. Let the model itself testify:

# %%
types = [t for _, t, _, _ in model.summary_rows()]
print("max-pooling layers:", types.count("MaxPooling2D"))
print("dense layers:      ", types.count("Dense"))
print("parameters == 31,030,593 (the article's Keras model):", model.count_params() == 31_030_593)

# %% [markdown]
# ### Verification: the backward pass of a whole (small) U-Net
#
# Every later chapter proves one piece; here is a preview of the end result. A depth-2 U-Net in float64,
# its analytic gradient (`model.backward`) against central differences
# $\partial L / \partial \theta \approx (L(\theta + h) - L(\theta - h)) / 2h$ for a few hundred weights:

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

# %% [markdown]
# ## 4. Setup check
#
# Versions differ between machines, so this cell's output is not compared by the tests.

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

# %% [markdown]
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases, says what is wrong, and names the
# mistake when your answer is one it knows.

# %% [markdown]
# **Exercise 1.** Write `same_unet_sizes(size, depth)`: the spatial size at each level of a `same`-padded
# U-Net, from the top level down to the bottleneck. Each $2\times2$ pooling halves the size and a depth-$d$ U-Net
# pools $d$ times, so there are $d + 1$ levels: for 256 and depth 4, `[256, 128, 64, 32, 16]`.

# %%
from unet_scratch.exercises import check_conv_params, check_pixel_patches, check_same_unet_sizes

def same_unet_sizes(size, depth):
    """size: the input's height (divisible by 2**depth), depth: the number of poolings.
    Returns [size at level 1 (the top), ..., size at the bottleneck]: depth + 1 ints."""
    ### BEGIN SOLUTION
    return [size // 2 ** level for level in range(depth + 1)]
    ### END SOLUTION

check_same_unet_sizes(same_unet_sizes);


# %% [markdown]
# **Exercise 2.** Write `conv_params(kernel_size, c_in, c_out)`: the parameters of a `Conv2D` with a bias:
# each of the $C_{out}$ filters is a $k \times k \times C_{in}$ kernel plus one bias. Worked example: the
# article's first layer, $3\times3$ from 1 channel to 64, has $3 \cdot 3 \cdot 1 \cdot 64 + 64 = 640$.

# %%
def conv_params(kernel_size, c_in, c_out):
    """Parameters of a Conv2D(c_out, kernel_size) with a bias, on an input of c_in channels."""
    ### BEGIN SOLUTION
    return kernel_size * kernel_size * c_in * c_out + c_out
    ### END SOLUTION

check_conv_params(conv_params);

# %% [markdown]
# With it, the model's total is a sum you can do by hand (a transposed convolution has the same count, and the
# pools and dropouts have none):

# %%
convs = [layer for layer in model.layers if type(layer).__name__ in ("Conv2D", "Conv2DTranspose")]
by_hand = sum(conv_params(layer.kernel_size[0], layer.input_shape[-1], layer.filters) for layer in convs)
print(len(convs), "convolution layers; the first:", convs[0].name, convs[0].kernel_size, "kernel,",
      convs[0].input_shape[-1], "->", convs[0].filters, "channels:", conv_params(3, 1, 64), "parameters")
print("conv_params summed over the model's layers == model.count_params():", by_hand == model.count_params())

# %% [markdown]
# **Exercise 3.** Write `pixel_patches(image, k)`: the $k \times k$ patch centred on every pixel of a 2-D image
# $(H, W)$, as an array $(H \cdot W, k, k)$ with the pixels in row-major order ($k$ odd). Pad the image with
# $k // 2$ zeros on every side first, so that border pixels get a patch too (as a `same` convolution does);
# patch number $i W + j$ is then `padded[i:i + k, j:j + k]`. Worked example: on a $5\times6$ image with $k = 3$,
# patch 0 is centred on pixel $(0, 0)$: its top row and left column are padding zeros.

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

# %% [markdown]
# A linear classifier of patches scores each pixel by a dot product of its patch with a weight kernel $v$.
# Scoring all patches at once is one matrix product, and it gives exactly a `same` convolution of the image with
# $v$ (the convolution of chapter 01, where `im2col` will build this very patch matrix). The patch matrix holds
# $k^2$ copies of every pixel: that is the redundancy a convolution, and a fully convolutional network, avoid.

# %%
image_small = rng.standard_normal((12, 10))
v = rng.standard_normal((5, 5))
patches = pixel_patches(image_small, 5)
scores = (patches.reshape(len(patches), -1) @ v.ravel()).reshape(image_small.shape)
as_conv = us.ops.conv2d(image_small[None, :, :, None], v[:, :, None, None], padding="same")[0][0, :, :, 0]
print("patches:", patches.shape, "| numbers stored per image pixel:", patches.size // image_small.size)
print("classifying every patch == a 'same' convolution with the classifier's weights:", np.allclose(scores, as_conv))

# %% [markdown]
# **Exercises in this chapter:** 1. `same_unet_sizes` (the levels of a `same` U-Net; the check knows the bottleneck
# left out, a halving too early, the list upside down), 2. `conv_params` (the check knows the bias forgotten, the
# input channels ignored, $k$ not squared, one bias per input channel), 3. `pixel_patches` (the patch around every
# pixel; the check knows a patch anchored at its pixel's corner, no padding, column-major order, transposed
# patches).
