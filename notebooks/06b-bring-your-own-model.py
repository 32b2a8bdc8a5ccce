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
# # 06b · Bring your own model: someone else's Keras U-Net, and a PyTorch twin
#
# Chapter 06 compared the scratch U-Net with a Keras model that the package built itself, every layer named
# like its scratch twin. A real Keras U-Net is written by someone else, with Keras's automatic layer names
# (`conv2d`, `conv2d_1`, ...), and often with small differences of its own. This chapter brings in two:
#
# **What you will build:** nothing new in the network; you import
# 1. the source article's `unet(input_shape)`, pasted **as it is printed**, into the scratch `UNet` with
#    `from_keras`, which reads a model by its **structure**, not by its names;
# 2. **zhixuhao/unet**'s `unet()`, the most-forked Keras U-Net (the layout the article's code follows), whose
#    three differences are `UNet` options; you write the **backward pass** of the one new operation it needs,
#    nearest-neighbour up-sampling (the exercise);
# 3. the same network as a **PyTorch** `nn.Module`, with its weights moved across the layout conversions
#    (drawn in a figure).
#
# **What you will check:** that each pair computes the same numbers: every layer's output and every weight's
# gradient in float32 (the parity report of chapter 06), the output and all gradients in float64 to
# rounding; why zhixuhao's up-step has no checkerboard on a flat input (chapter 03 gave the theory); that a
# transfer which does not reproduce the model is refused; and that weights survive a trip to PyTorch and
# back bit for bit.
#
# The full-width networks (31 million weights) run on $32 \times 32$ inputs, so each check takes seconds.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import gc
import textwrap

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, ops
from unet_scratch.model import OPTION_DEFAULTS
from unet_scratch.keras_ref import (import_tensorflow, import_keras, from_keras, to_keras, compare,
                                    read_keras_unet, build_keras_unet)
from unet_scratch.torch_ref import import_torch, to_torch, from_torch, compare_torch, lockstep_torch
tf = import_tensorflow(); keras = import_keras(); torch = import_torch()
torch.set_num_threads(1)         # small tensors: PyTorch's thread pool costs more than it saves on them

keras.utils.set_random_seed(0)   # Keras's initial weights, reproducibly
SIZE = 32                        # divisible by 2**4 = 16, as a depth-4 'same' U-Net needs
x = np.random.default_rng(0).random((1, SIZE, SIZE, 1), dtype=np.float32)   # the probe image of every comparison


def summary(report, fwd_bound=1e-5, grad_bound=1e-4):
    """A parity report as lines that read the same on every machine: counts, and booleans against bounds
    well above the errors seen (the raw errors are printed in a cell the tests do not compare)."""
    fwd = [r for r in report.rows if r.kind == "forward"]
    grd = [r for r in report.rows if r.kind == "gradient"]
    return {"passed": report.passed,
            f"{len(fwd)} layer outputs within {fwd_bound:.0e} (max abs)": max(r.max_abs for r in fwd) < fwd_bound,
            f"{len(grd)} weight gradients within {grad_bound:.0e} (relative)": max(r.rel for r in grd) < grad_bound}


def show(d):
    for k, v in d.items():
        print(f"{k}: {v}")


# %% [markdown]
# ## 1. The article's function, pasted as it is
#
# Section 5.2 of the source article ([its Keras U-Net](../book/references.md#source-article-keras)) defines
# the model below; the Chinese comments are the article's ("encoder part", "decoder part", "output layer").
# Nothing is changed. It builds on Keras 3 as it is, because TensorFlow 2.21's `tensorflow.keras` *is*
# Keras 3.

# %%
import tensorflow as tf
from tensorflow.keras import layers

def unet(input_shape):
    inputs = layers.Input(shape=input_shape)

    # 编码器部分
    conv1 = layers.Conv2D(64, 3, activation='relu', padding='same')(inputs)
    conv1 = layers.Conv2D(64, 3, activation='relu', padding='same')(conv1)
    pool1 = layers.MaxPooling2D(pool_size=(2, 2))(conv1)

    conv2 = layers.Conv2D(128, 3, activation='relu', padding='same')(pool1)
    conv2 = layers.Conv2D(128, 3, activation='relu', padding='same')(conv2)
    pool2 = layers.MaxPooling2D(pool_size=(2, 2))(conv2)

    conv3 = layers.Conv2D(256, 3, activation='relu', padding='same')(pool2)
    conv3 = layers.Conv2D(256, 3, activation='relu', padding='same')(conv3)
    pool3 = layers.MaxPooling2D(pool_size=(2, 2))(conv3)

    conv4 = layers.Conv2D(512, 3, activation='relu', padding='same')(pool3)
    conv4 = layers.Conv2D(512, 3, activation='relu', padding='same')(conv4)
    drop4 = layers.Dropout(0.5)(conv4)
    pool4 = layers.MaxPooling2D(pool_size=(2, 2))(drop4)

    conv5 = layers.Conv2D(1024, 3, activation='relu', padding='same')(pool4)
    conv5 = layers.Conv2D(1024, 3, activation='relu', padding='same')(conv5)
    drop5 = layers.Dropout(0.5)(conv5)

    # 解码器部分
    up6 = layers.Conv2DTranspose(512, 2, strides=(2, 2), padding='same')(drop5)
    up6 = layers.concatenate([up6, drop4])
    conv6 = layers.Conv2D(512, 3, activation='relu', padding='same')(up6)
    conv6 = layers.Conv2D(512, 3, activation='relu', padding='same')(conv6)

    up7 = layers.Conv2DTranspose(256, 2, strides=(2, 2), padding='same')(conv6)
    up7 = layers.concatenate([up7, conv3])
    conv7 = layers.Conv2D(256, 3, activation='relu', padding='same')(up7)
    conv7 = layers.Conv2D(256, 3, activation='relu', padding='same')(conv7)

    up8 = layers.Conv2DTranspose(128, 2, strides=(2, 2), padding='same')(conv7)
    up8 = layers.concatenate([up8, conv2])
    conv8 = layers.Conv2D(128, 3, activation='relu', padding='same')(up8)
    conv8 = layers.Conv2D(128, 3, activation='relu', padding='same')(conv8)

    up9 = layers.Conv2DTranspose(64, 2, strides=(2, 2), padding='same')(conv8)
    up9 = layers.concatenate([up9, conv1])
    conv9 = layers.Conv2D(64, 3, activation='relu', padding='same')(up9)
    conv9 = layers.Conv2D(64, 3, activation='relu', padding='same')(conv9)

    # 输出层
    outputs = layers.Conv2D(1, 1, activation='sigmoid')(conv9)

    model = tf.keras.Model(inputs=[inputs], outputs=[outputs])
    return model


# %% [markdown]
# Its layers carry Keras's automatic names, none of which the scratch model uses. `from_keras` does not look
# at names. It walks the model's wiring (the inbound nodes in `km.get_config()`, the graph that `km.save`
# writes) from the input to the output and recognises each layer by the part it plays: per encoder level two
# $3 \times 3$ ReLU convolutions, an optional dropout and a $2 \times 2$ pooling whose input also goes across
# as a skip; at the bottom two more convolutions; per decoder level an up-step, the concatenation with that
# level's skip and two convolutions; and the $1 \times 1$ head. From that walk it reads the `UNet`'s
# arguments and which Keras layer is which scratch layer, copies the weights, and runs both models once on a
# probe image before it hands the model back (section 4). `read_keras_unet` shows what the walk found.

# %%
km = unet((SIZE, SIZE, 1))
model = from_keras(km)
print(model.get_config())
print(f"{model.count_params():,} parameters; the Keras model: {km.count_params():,}")
structure = read_keras_unet(km)
for name in ["enc1_conv1", "enc4_drop", "enc4_pool", "dec4_upconv", "dec4_concat", "dec1_conv2", "head"]:
    print(f"scratch {name:<12} <- Keras {structure.layers[name]}")

# %% [markdown]
# The scratch parameters keep the scratch names, and they come in **Keras's variable order**, so the $k$-th
# scratch weight is the $k$-th of `km.trainable_variables` (and a gradient from `tf.GradientTape` pairs with
# the scratch one by position):

# %%
pairs = list(zip(model.params, km.trainable_variables))
print(len(pairs), "pairs:", [(a, b.path) for a, b in pairs[:2]], "...", (pairs[-1][0], pairs[-1][1].path))
print("every pair has the same shape and the same numbers:",
      all(model.params[a].shape == tuple(b.shape) and np.array_equal(model.params[a], b.numpy()) for a, b in pairs))

# %% [markdown]
# **Does it compute the same thing?** In float32, chapter 06's parity report (every layer's output, and
# every weight's gradient with the scratch backward fed Keras's own activations) works on this model as on
# the package's own; its rows carry the scratch names. The raw errors differ from machine to machine in their
# last digits, so the first cell below is not compared by the tests; the second prints what is stable.

# %%
report = compare(model, km, x)

# %%
# NBVAL_IGNORE_OUTPUT
print(report.verdict())

# %%
show(summary(report))

# %% [markdown]
# **In float64** rounding no longer hides anything, and the two should agree to about $10^{-15}$. The
# article's code has no `dtype` argument: Keras builds it in float64 when both the default dtype policy (the
# layers' weights and arithmetic) and `floatx` (the `Input` layer) say so, and `from_keras` gives the scratch
# model the Keras model's dtype. The loss $L = \mathrm{mean}(y \odot g)$ for a fixed random $g$ involves
# every weight; the scratch side back-propagates $g / \text{size}$, Keras's `tf.GradientTape` does its own.

# %%
def in_float64(build):
    """Build a Keras model in float64 (layers and Input), import it, and measure both sides' forward and
    weight gradients on the loss mean(y * g). Returns (scratch model, forward max abs error, worst
    relative weight-gradient error, number of weights)."""
    keras.config.set_dtype_policy("float64"); keras.config.set_floatx("float64")
    try:
        km64 = build()
    finally:
        keras.config.set_dtype_policy("float32"); keras.config.set_floatx("float32")
    model64 = from_keras(km64)
    x64 = np.random.default_rng(1).random((1, SIZE, SIZE, 1))
    g = np.random.default_rng(2).standard_normal((1, SIZE, SIZE, 1))
    y = model64.forward(x64)
    model64.backward(g / g.size)
    with tf.GradientTape() as tape:
        y_k = km64([x64], training=False)
        loss = tf.reduce_mean(y_k * g)
    grads = tape.gradient(loss, km64.trainable_variables)      # paired with model64.grads by position
    errors = [np.linalg.norm(a - b.numpy()) / np.linalg.norm(b.numpy())
              for a, b in zip(model64.grads.values(), grads)]
    return model64, float(np.max(np.abs(y - y_k.numpy()))), max(errors), len(errors)

model64, fwd64, grad64, n64 = in_float64(lambda: unet((SIZE, SIZE, 1)))
print("scratch dtype:", model64.dtype)
print("forward within 1e-12 (max abs):", fwd64 < 1e-12)
print(f"all {n64} weight gradients within 1e-10 (relative):", grad64 < 1e-10)

# %%
# NBVAL_IGNORE_OUTPUT
print(f"float64: forward max abs error {fwd64:.1e}, worst weight-gradient relative error {grad64:.1e}")

# %% [markdown]
# Two more ways in, not run here: a model saved with `km.save("x.keras")` or as `.h5` comes in by its path,
# `from_keras("x.keras")` (the optimizer is not loaded, so an old Keras 2 file compiled with `Adam(lr=...)`
# is fine); and a fully convolutional model built with `unet((None, None, 1))` is imported for a size you
# choose, `from_keras(km, input_shape=(128, 128, 1))`. A model that is *not* a U-Net of this family is refused,
# naming the first layer that does not fit and why (a `BatchNormalization`, an `'elu'` activation, ...).

# %%
del model64
gc.collect();

# %% [markdown]
# ## 2. zhixuhao's U-Net, and why resize-then-convolve has no checkerboard
#
# [zhixuhao/unet](https://github.com/zhixuhao/unet)'s `model.py` is the Keras U-Net that the article's code
# follows, with three differences. Each is a `UNet` option:
#
# | zhixuhao/unet | `UNet` option | the article |
# | --- | --- | --- |
# | `Conv2D(512, 2, activation='relu', padding='same')(UpSampling2D(size=(2, 2))(drop5))` | `upsampling="resize_conv"` | `Conv2DTranspose(512, 2, strides=(2, 2), padding='same')` (`"transpose"`) |
# | `concatenate([drop4, up6], axis=3)`: the skip first | `concat_order="skip_first"` | `concatenate([up6, drop4])` (`"up_first"`) |
# | `Conv2D(2, 3, activation='relu', padding='same')` before the $1 \times 1$ sigmoid | `head_hidden=2` | nothing (`0`) |
#
# and `kernel_initializer='he_normal'` on every convolution but the head. Below is its `unet()`, renamed
# `zhixuhao_unet` so that it does not replace the article's `unet`, with two changes forced by Keras 3: the
# file's star imports (`from keras.layers import *`, ...) are written out, and `Adam(lr = 1e-4)` becomes
# `Adam(learning_rate = 1e-4)` (Keras 3 refuses `lr`: chapter 06 traced that spelling back to this
# repository). Every layer call is the original's, in the original's order.

# %%
from keras.layers import Conv2D, Dropout, Input, MaxPooling2D, UpSampling2D, concatenate
from keras.models import Model
from keras.optimizers import Adam

def zhixuhao_unet(pretrained_weights = None,input_size = (256,256,1)):
    inputs = Input(input_size)
    conv1 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(inputs)
    conv1 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv1)
    pool1 = MaxPooling2D(pool_size=(2, 2))(conv1)
    conv2 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool1)
    conv2 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv2)
    pool2 = MaxPooling2D(pool_size=(2, 2))(conv2)
    conv3 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool2)
    conv3 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv3)
    pool3 = MaxPooling2D(pool_size=(2, 2))(conv3)
    conv4 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool3)
    conv4 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv4)
    drop4 = Dropout(0.5)(conv4)
    pool4 = MaxPooling2D(pool_size=(2, 2))(drop4)

    conv5 = Conv2D(1024, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(pool4)
    conv5 = Conv2D(1024, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv5)
    drop5 = Dropout(0.5)(conv5)

    up6 = Conv2D(512, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(drop5))
    merge6 = concatenate([drop4,up6], axis = 3)
    conv6 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge6)
    conv6 = Conv2D(512, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv6)

    up7 = Conv2D(256, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(conv6))
    merge7 = concatenate([conv3,up7], axis = 3)
    conv7 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge7)
    conv7 = Conv2D(256, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv7)

    up8 = Conv2D(128, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(conv7))
    merge8 = concatenate([conv2,up8], axis = 3)
    conv8 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge8)
    conv8 = Conv2D(128, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv8)

    up9 = Conv2D(64, 2, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(UpSampling2D(size = (2,2))(conv8))
    merge9 = concatenate([conv1,up9], axis = 3)
    conv9 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(merge9)
    conv9 = Conv2D(64, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv9)
    conv9 = Conv2D(2, 3, activation = 'relu', padding = 'same', kernel_initializer = 'he_normal')(conv9)
    conv10 = Conv2D(1, 1, activation = 'sigmoid')(conv9)

    model = Model(inputs = inputs, outputs = conv10)

    model.compile(optimizer = Adam(learning_rate = 1e-4), loss = 'binary_crossentropy', metrics = ['accuracy'])

    #model.summary()

    if(pretrained_weights):
        model.load_weights(pretrained_weights)

    return model


# %% [markdown]
# The same `from_keras` reads it; the configuration it finds differs from the article's model in exactly
# four places: the table's three options and the initializer:

# %%
kz = zhixuhao_unet(input_size=(SIZE, SIZE, 1))
mz = from_keras(kz)
article = {**OPTION_DEFAULTS, **model.get_config()}     # get_config leaves out options at their defaults
theirs = {**OPTION_DEFAULTS, **mz.get_config()}
for key in theirs:
    if article[key] != theirs[key]:
        print(f"{key:<20} article: {article[key]!r:<18} zhixuhao: {theirs[key]!r}")
report_z = compare(mz, kz, x)

# %%
# NBVAL_IGNORE_OUTPUT
print(report_z.verdict())

# %%
show(summary(report_z, fwd_bound=1e-4))

# %% [markdown]
# (He-normal weights keep zhixuhao's activations larger than the article's Glorot ones, and float32's absolute
# rounding errors grow with them, which is why the stable line above asks for $10^{-4}$ rather than $10^{-5}$;
# relative to the activations both models' errors are about $10^{-6}$, well inside the report's tolerances.
# In float64 the two agree to about $10^{-15}$, like the article's model: `tests/test_keras_byom.py` checks
# it.) Someone with zhixuhao's trained
# `unet_membrane.hdf5` runs it from scratch with
# `from_keras(zhixuhao_unet(pretrained_weights="unet_membrane.hdf5"))` (tried with weight files that Keras 3
# wrote; no file written by Keras 2 was at hand).
#
# Two pieces were new to the scratch package: nearest up-sampling (`ops.upsample2d`: every pixel copied into a
# $2 \times 2$ block; its backward is this chapter's exercise) and the $2 \times 2$ `'same'` convolution. An
# even kernel cannot be centred: TensorFlow pads $\lfloor (k-1)/2 \rfloor = 0$ pixels before and the remaining
# $1$ after (bottom and right), and so do the scratch ops.
#
# ### The checkerboard
#
# [Chapter 03](03-transposed-convolution.ipynb) (section 5) showed the theory: a $2 \times 2$ stride-2
# transposed convolution stamps its kernel once per input pixel, side by side without overlap, so the output
# pixel at position $(a, b)$ of each $2 \times 2$ block is the input pixel times the kernel's tap $w[a, b]$
# (summed over channels). The four positions of every block get four different weights, whatever the input: a
# fixed pattern with period 2 that shows as a checkerboard wherever the taps are not balanced (Odena, Dumoulin
# and Olah, "Deconvolution and Checkerboard Artifacts", *Distill*, 2016). Resize-then-convolve first copies
# each pixel into its block; the $2 \times 2$ convolution after it applies **all four** taps at **every**
# output pixel, to the pixel itself or its neighbours' copies, so nothing is tied to a pixel's place in its
# block, and a flat input gives a flat output.
#
# Here are the two models we just imported, each one's last up-step (`dec1_upconv`, 128 channels in, 64 out,
# Keras's random initial weights) applied with the scratch ops to a **flat** input, all ones:

# %%
flat = np.ones((1, 8, 8, 128), dtype=np.float32)           # no pattern at all in the input
w_t, b_t = model.params["dec1_upconv/kernel"], model.params["dec1_upconv/bias"]   # (2, 2, 64, 128): out, in
w_r, b_r = mz.params["dec1_upconv/kernel"], mz.params["dec1_upconv/bias"]         # (2, 2, 128, 64): in, out
transposed = ops.conv2d_transpose(flat, w_t, b_t, strides=2, padding="same")[0]
resized = np.maximum(ops.conv2d(ops.upsample2d(flat, 2)[0], w_r, b_r, padding="same")[0], 0)   # ReLU fused
print("output shapes:", transposed.shape, resized.shape)


def block_pattern(y):
    """(N, 2H, 2W, C) -> (C, 2, 2): the mean of each of the 4 positions in a 2x2 block, per channel, over
    the image without its last two rows and columns (the last one meets the 2x2 'same' conv's padding;
    leaving out two keeps whole 2x2 blocks)."""
    inner = y[0, :-2, :-2, :].astype(np.float64)
    return np.stack([[inner[a::2, b::2].mean(axis=(0, 1)) for b in (0, 1)] for a in (0, 1)]).transpose(2, 0, 1)


for name, y in (("transposed conv (the article)", transposed), ("upsample + conv (zhixuhao)", resized)):
    inner = y[0, :-2, :-2, :]
    varies = np.ptp(inner, axis=(0, 1)) > 1e-6 * np.abs(inner).max()
    print(f"{name:<30} channels that are not flat away from the border: {int(varies.sum())} of {y.shape[-1]}")
period2 = block_pattern(transposed)
tiled = np.tile(period2, (1, 7, 7)).transpose(1, 2, 0)         # 7 x 7 blocks: the 14 x 14 compared
print("the transposed conv's output is its 2x2 block pattern repeated:", np.allclose(transposed[0, :-2, :-2, :], tiled, atol=1e-6))

# %% [markdown]
# The figure shows output channel 0 of each. Both panels get the same colour spread (their own mean $\pm$
# the same half-width), so equal shades mean equal differences; the right panel plots one row of each,
# minus its mean.

# %%
c = 0
half = float(np.abs(transposed[0, :, :, c] - transposed[0, :, :, c].mean()).max())
fig, ax = plt.subplots(1, 3, figsize=(12, 3.8), dpi=100, layout="constrained",
                       gridspec_kw={"width_ratios": [1, 1, 1.3]})
for a, (title, y) in zip(ax, [("transposed conv (the article):\na 2x2 tile repeated", transposed),
                              ("upsample + 2x2 conv (zhixuhao):\nflat but for the last row and column", resized)]):
    img = y[0, :, :, c]
    im = a.imshow(img, cmap="viridis", vmin=img.mean() - half, vmax=img.mean() + half)
    a.set_title(title, fontsize=9)
    a.set_xlabel("output column (pixels)"); a.set_ylabel("output row (pixels)")
    fig.colorbar(im, ax=a, shrink=0.8, label="output value")
row = 7
ax[2].plot(transposed[0, row, :, c] - transposed[0, row, :, c].mean(), "o-", ms=4,
           color=plt.cm.viridis(0.2), label="transposed conv")
ax[2].plot(resized[0, row, :, c] - resized[0, row, :, c].mean(), "s-", ms=4,
           color=plt.cm.viridis(0.75), label="upsample + conv")
ax[2].set_xlabel("output column (pixels)"); ax[2].set_ylabel("output minus its row's mean")
ax[2].set_title(f"row {row}: the transposed conv alternates with period 2", fontsize=9)
ax[2].set_ylim(-1.3 * half, 1.6 * half)
ax[2].legend(fontsize=8, loc="upper center", ncol=2)
fig.suptitle("A flat input, output channel 0: the transposed convolution paints its kernel's pattern, "
             "resize-then-convolve does not", fontsize=10)
plt.show()

# %% [markdown]
# Training can teach the transposed convolution's four taps to agree where a smooth output is needed; the
# resize-then-convolve step never had the pattern to unlearn. (zhixuhao's head has the repository's other
# well-known problem: its `Conv2D(2, 3, activation='relu')` before the sigmoid has only two channels, and when
# both die, every input negative, the output is $\sigma(b)$, one grey level everywhere: the "all-black output"
# of its issue tracker.)
#
# ## 3. Exercise: the backward pass of nearest-neighbour up-sampling
#
# `UpSampling2D(2)` copies each input pixel into a $2 \times 2$ block:
# $$y_{n,i,j,c} = x_{n,\lfloor i/2 \rfloor,\lfloor j/2 \rfloor,c}, \qquad x: (N, H, W, C) \;\to\; y: (N, 2H, 2W, C).$$
# Each $x$ pixel is read by the four $y$ pixels of its block, each with weight 1, so by the chain rule its
# gradient is the **sum** of their four gradients (the adjoint of a copy is a sum):
# $$\frac{\partial L}{\partial x_{n,p,q,c}} = \sum_{a=0}^{1}\sum_{b=0}^{1} \frac{\partial L}{\partial y_{n,2p+a,2q+b,c}}.$$
#
# A worked example, one image and one channel: the $4 \times 6$ gradient `dy` holding $0, 1, \dots, 23$ row
# by row gives the $2 \times 3$ `dx`
# $$\begin{pmatrix} 0 & 1 & 2 & 3 & 4 & 5\\ 6 & 7 & 8 & 9 & 10 & 11\\ 12 & 13 & 14 & 15 & 16 & 17\\ 18 & 19 & 20 & 21 & 22 & 23 \end{pmatrix}
# \;\to\; \begin{pmatrix} 0+1+6+7 & 2+3+8+9 & 4+5+10+11\\ 12+13+18+19 & \dots & \dots \end{pmatrix}
# = \begin{pmatrix} 14 & 22 & 30\\ 62 & 70 & 78 \end{pmatrix}.$$
#
# **Exercise.** Write `upsample_backward(dy)`: `dy` $(N, 2H, 2W, C)$ $\to$ `dx` $(N, H, W, C)$. Write the naive
# version first (two loops over the pixels of `dy`, each added to `dx[:, i // 2, j // 2, :]`), then the fast
# one: reshape `dy` to $(N, H, 2, W, 2, C)$, where axes 2 and 4 run over the block, and sum those two axes.
# The check compares with the package's `ops.upsample2d_backward` and names the classic mistakes: taking one
# pixel per block (`dy[:, ::2, ::2]`), the block mean (dividing by 4), up-sampling `dy` again, summing over
# the wrong axes, and a reshape that splits the wrong way ($(N, 2, H, 2, W, C)$).

# %%
from unet_scratch.exercises.ch06b import check_upsample_backward

def upsample_backward(dy):
    """Backward of 2x2 nearest-neighbour up-sampling.

    dy: (N, 2H, 2W, C), the gradient of the loss with respect to y = upsample(x).
    Returns dx: (N, H, W, C), each pixel the sum of the 4 values of dy in its 2x2 block.
    """
    ### BEGIN SOLUTION
    n, h2, w2, c = dy.shape
    return dy.reshape(n, h2 // 2, 2, w2 // 2, 2, c).sum(axis=(2, 4))
    ### END SOLUTION

check_upsample_backward(upsample_backward);

# %% [markdown]
# **Against TensorFlow.** `tf.GradientTape` differentiates `keras.layers.UpSampling2D` itself. With the loss
# $L = \sum y \odot dy$ the gradient reaching $y$ is exactly `dy`, so the tape's gradient with respect to $x$
# is what `upsample_backward(dy)` must return (float64 throughout: the layer gets `dtype="float64"`, or Keras
# would compute in float32).

# %%
rng = np.random.default_rng(6)
x_up = rng.standard_normal((2, 3, 4, 5))
dy_up = rng.standard_normal((2, 6, 8, 5))
x_var = tf.Variable(x_up)
with tf.GradientTape() as tape:
    y_up = keras.layers.UpSampling2D(2, dtype="float64")(x_var)
    loss = tf.reduce_sum(y_up * dy_up)                      # dL/dy = dy_up
dx_tf = tape.gradient(loss, x_var).numpy()
y_ops, cache = ops.upsample2d(x_up, 2)
print("forward: ops.upsample2d equals UpSampling2D:", np.array_equal(y_ops, y_up.numpy()))
print("backward: ops.upsample2d_backward equals the tape's gradient:",
      np.allclose(ops.upsample2d_backward(dy_up, cache), dx_tf, rtol=1e-12, atol=1e-12))
try:
    print("backward: your upsample_backward equals the tape's gradient:",
          np.allclose(upsample_backward(dy_up), dx_tf, rtol=1e-12, atol=1e-12))
except NotImplementedError:
    print("backward: your upsample_backward is not implemented yet (the exercise above)")

# %% [markdown]
# `UNet(upsampling="resize_conv")` back-propagates through `ops.upsample2d_backward`, the same sum; its
# float64 gradient check over the whole network is in `tests/test_model.py`.
#
# ## 4. Transfers are verified
#
# Names and shapes are not enough to know that a transfer worked. A Keras U-Net whose layers carry the scratch
# names but concatenate `[skip, up]`, paired with a scratch model that concatenates `[up, skip]`, has the same
# weights with the same shapes: a copy by name, in either direction, succeeds and the two models then disagree. So every transfer
# (`from_keras`, `to_keras`, and PyTorch's `to_torch`, `from_torch`) runs both models once on a probe image
# and refuses a mismatch, naming the first layer whose output differs (small models here: the check is the
# same at any width):

# %%
mine = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, seed=0)                  # [up, skip]
other = build_keras_unet(input_shape=(16, 16, 1), base_filters=4, depth=2, concat_order="skip_first")
print("same weight names and shapes:", [v.path for v in other.weights] == list(mine.params)
      and all(tuple(v.shape) == mine.params[v.path].shape for v in other.weights))
try:
    to_keras(mine, other)
    refused = False
except ValueError as err:
    refused = True
    print(textwrap.fill(f"ValueError: {err}", 110))

# %% [markdown]
# ## 5. The same network in PyTorch
#
# `unet_scratch.torch_ref` holds a PyTorch twin: `TorchUNet`, an `nn.Module` with every `UNet` option and the
# scratch layer names as its submodules, and `to_torch` / `from_torch`, which copy the weights both ways.
# PyTorch lays tensors out differently, and the copy must move the axes, not only the numbers:
#
# * an activation is NCHW in PyTorch, `x[n, c, h, w]`, against NHWC `x[n, h, w, c]` here and in Keras;
# * a `Conv2d` weight is `(out, in, kh, kw)` (OIHW), against Keras's `(kh, kw, in, out)` (HWIO);
# * a `ConvTranspose2d` weight is `(in, out, kh, kw)`, against Keras's `Conv2DTranspose` `(kh, kw, out, in)`.
#
# Both frameworks store the transposed convolution's kernel as the kernel of the forward convolution it is
# the transpose of, "in" and "out" read the other way round; so the **same permutation**,
# `w.transpose(3, 2, 0, 1)`, serves both kernels. The figure draws each conversion with the shapes of this
# model's last decoder level (the lines say where each axis goes):

# %%
module = to_torch(model)          # the article's model, with the weights imported from Keras
layouts = [
    ("an activation (dec1_concat's output)", "x.transpose(0, 3, 1, 2)", "NHWC", "NCHW",
     ["N", "H", "W", "C"], (1, SIZE, SIZE, 128), (0, 3, 1, 2)),
    ("a Conv2D kernel (dec1_conv1)", "w.transpose(3, 2, 0, 1)", "HWIO", "OIHW",
     ["kh", "kw", "in", "out"], model.params["dec1_conv1/kernel"].shape, (3, 2, 0, 1)),
    ("a Conv2DTranspose kernel (dec1_upconv)", "w.transpose(3, 2, 0, 1)", "(kh, kw, out, in)", "(in, out, kh, kw)",
     ["kh", "kw", "out", "in"], model.params["dec1_upconv/kernel"].shape, (3, 2, 0, 1)),
]
colour = {"N": "0.6", "H": plt.cm.viridis(0.0), "kh": plt.cm.viridis(0.0), "W": plt.cm.viridis(0.35),
          "kw": plt.cm.viridis(0.35), "C": plt.cm.viridis(0.65), "in": plt.cm.viridis(0.65),
          "out": plt.cm.viridis(0.9)}
fig, axes = plt.subplots(1, 3, figsize=(12, 4.0), dpi=100, layout="constrained")
for ax, (title, code, left, right, names, shape, perm) in zip(axes, layouts):
    ax.set_xlim(0, 10); ax.set_ylim(0.1, 5.2); ax.axis("off")
    ax.set_title(f"{title}\n{code}", fontsize=9)
    ax.text(1.6, 4.65, f"Keras / scratch\n{left}", ha="center", fontsize=9)
    ax.text(8.4, 4.65, f"PyTorch\n{right}", ha="center", fontsize=9)
    for side, x0, order in (("left", 0.2, range(4)), ("right", 7.0, perm)):
        for k, axis in enumerate(order):                  # the k-th axis of this side is axis `axis` of the left
            y0 = 3.4 - 1.05 * k
            ax.add_patch(plt.Rectangle((x0, y0), 2.8, 0.7, facecolor=colour[names[axis]], alpha=0.3,
                                       edgecolor=colour[names[axis]], lw=1.5))
            ax.text(x0 + 1.4, y0 + 0.35, f"axis {k}: {names[axis]} = {shape[axis]}", ha="center",
                    va="center", fontsize=9)
    for k_right, axis in enumerate(perm):
        ax.annotate("", xy=(7.0, 3.75 - 1.05 * k_right), xytext=(3.0, 3.75 - 1.05 * axis),
                    arrowprops=dict(arrowstyle="->", color=colour[names[axis]], lw=2))
fig.suptitle("Layouts: each axis moves, the numbers along it do not (arrows: where axis k of the Keras array goes)",
             fontsize=10)
plt.show()

# %% [markdown]
# The twin's weights have exactly those shapes and values, and a trip to PyTorch and back gives the scratch
# weights bit for bit:

# %%
for name, tname in (("dec1_conv1/kernel", "dec1_conv1"), ("dec1_upconv/kernel", "dec1_upconv")):
    w_torch = module.get_submodule(tname).weight.detach().numpy()
    print(f"{name:<20} scratch {model.params[name].shape} -> PyTorch {tuple(w_torch.shape)}, "
          f"equal to w.transpose(3, 2, 0, 1): {np.array_equal(w_torch, model.params[name].transpose(3, 2, 0, 1))}")
back = from_torch(module)
print("bit-identical after scratch -> PyTorch -> scratch:",
      all(np.array_equal(back.params[n], p) for n, p in model.params.items()))
del back
gc.collect();

# %% [markdown]
# **Padding.** The even $2 \times 2$ kernel of zhixuhao's up-step needs one more pixel of padding, and
# the frameworks differ on where by default: `nn.Conv2d(padding=1)` pads one pixel on *each* side and returns
# one pixel more than it got. `TorchUNet` writes TensorFlow's rule out with `F.pad` (0 before, 1 after).
# (`nn.Conv2d(padding="same")` also puts the extra pixel after, with a warning that it copies the input to pad it.)

# %%
conv_sym = torch.nn.Conv2d(4, 4, 2, padding=1)
print("nn.Conv2d(k=2, padding=1) on 32x32:", tuple(conv_sym(torch.zeros(1, 4, SIZE, SIZE)).shape[2:]))
module_z = to_torch(mz)           # zhixuhao's model, with the weights imported from Keras
print("TorchUNet's dec1_upconv pads (left, right, top, bottom):", module_z.dec1_upconv.pads)

# %% [markdown]
# `compare_torch` is the parity report against PyTorch: every layer's output recorded by forward hooks,
# every weight's gradient from `loss.backward()` with the scratch backward fed PyTorch's activations, the same
# tolerances as against Keras. It runs here on both full-width models imported from Keras above.

# %%
report_t = compare_torch(model, module, x)
report_tz = compare_torch(mz, module_z, x)

# %%
# NBVAL_IGNORE_OUTPUT
print(report_t.verdict())
print(report_tz.verdict())

# %%
print("the article's model against its PyTorch twin:"); show(summary(report_t))
print("zhixuhao's model against its PyTorch twin:"); show(summary(report_tz, fwd_bound=1e-4))

# %% [markdown]
# **Training side by side.** `lockstep_torch` trains the scratch model and its twin from the same weights on
# the same batches, with `torch.optim.SGD` or `torch.optim.Adam`. SGD with momentum is the same update in
# both. Adam is not quite: both keep the same moving averages $m$ and $v$, but Keras adds $\epsilon$ to
# $\sqrt{v}$ *before* the bias correction, PyTorch to $\sqrt{\hat v}$ *after* it:
# $$\text{Keras: } w \leftarrow w - \eta\,\frac{\sqrt{1-\beta_2^t}}{1-\beta_1^t}\,\frac{m}{\sqrt{v}+\epsilon}, \qquad
# \text{PyTorch: } w \leftarrow w - \eta\,\frac{\hat m}{\sqrt{\hat v}+\epsilon},\quad \hat m = \frac{m}{1-\beta_1^t},\ \hat v = \frac{v}{1-\beta_2^t}.$$
# Multiplied out, Keras's step $t$ is PyTorch's with $\epsilon/\sqrt{1-\beta_2^t}$ in place of $\epsilon$
# (31.6 $\epsilon$ at the first step, shrinking to $\epsilon$). `adam="keras"` sets PyTorch's learning rate and
# $\epsilon$ before each step so that its update is Keras's; `adam="torch"` runs `torch.optim.Adam` as a
# PyTorch user writes it. On a small float64 model, 20 steps:

# %%
rng = np.random.default_rng(0)
batches = [(rng.random((2, 16, 16, 1)), (rng.random((2, 16, 16, 1)) > 0.5).astype(float)) for _ in range(4)]
for optimizer, adam in (("sgd", "keras"), ("adam", "keras"), ("adam", "torch")):
    tiny = UNet(input_shape=(16, 16, 1), base_filters=4, depth=2, dropout=0, seed=0, dtype="float64")
    r = lockstep_torch(tiny, None, batches, optimizer=optimizer, steps=20, adam=adam)
    label = optimizer + (f", adam={adam!r}" if optimizer == "adam" else "")
    print(f"{label:<18} losses agree at every step to 1e-12: {r.max_rel_diff < 1e-12!s:<5}, "
          f"to 1e-3: {r.max_rel_diff < 1e-3!s:<5}; weights after 20 steps to 1e-12: {r.weight_rel_diff < 1e-12}")

# %% [markdown]
# With Keras's update written into PyTorch's Adam, float64 agrees to rounding, as SGD does: the network, the
# loss and the gradients are the same on both sides. PyTorch's own Adam is a slightly different optimizer:
# the loss curves overlap to a few parts in $10^4$, but the weights drift apart, most for the weights with
# small gradients (where $\sqrt{v}$ is not much larger than $\epsilon$), here the biases.
#
# ## What was measured
#
# | | float64: forward within $10^{-12}$, every weight gradient within $10^{-10}$ (relative) | float32 parity report |
# | --- | --- | --- |
# | the article's `unet()` against Keras | section 1 (and `tests/test_keras_byom.py`) | passes (section 1) |
# | zhixuhao's `unet()` against Keras | `tests/test_keras_byom.py` | passes (section 2) |
# | both models against their PyTorch twins | narrow models with every option in `tests/test_torch_ref.py`; full width in `docs/bring-your-own-model.md` | passes (section 5) |
#
# and weights moved to PyTorch and back are bit-identical. The cell below collects this run's verdicts; the
# repository's `docs/bring-your-own-model.md` walks through the same steps as a script, with the errors
# measured.

# %%
measured = {
    "article's unet() imported by structure, 31,030,593 weights": model.count_params() == km.count_params() == 31_030_593,
    "article vs Keras, float32 parity report": report.passed,
    "article vs Keras, float64 forward within 1e-12": fwd64 < 1e-12,
    "article vs Keras, float64 gradients within 1e-10": grad64 < 1e-10,
    "zhixuhao's unet() imported, float32 parity report": report_z.passed,
    "the transposed conv paints a period-2 pattern on a flat input": np.allclose(transposed[0, :-2, :-2, :], tiled, atol=1e-6),
    "a [skip, up] model refused by to_keras": refused,
    "article vs PyTorch twin, parity report": report_t.passed,
    "zhixuhao's model vs PyTorch twin, parity report": report_tz.passed,
}
show(measured)

# %% [markdown]
# ## Exercises in this chapter
#
# 1. `upsample_backward(dy)`: the backward pass of $2 \times 2$ nearest-neighbour up-sampling, the sum over
#    each $2 \times 2$ block (checked against `ops.upsample2d_backward`, and in the text against
#    `tf.GradientTape` on `keras.layers.UpSampling2D`).
