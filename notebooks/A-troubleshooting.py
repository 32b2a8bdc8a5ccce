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
# # A · Troubleshooting: what goes wrong with a U-Net, and how to tell
#
# The questions U-Net users ask most often on public issue trackers (zhixuhao/unet, milesial/Pytorch-UNet) are
# not about the architecture: they are about **predictions that come out all black or all grey**, **shape errors**
# for images whose size is not divisible by 16, **masks stored as 0/255**, **Keras API changes** that break old
# code, **NaN losses**, and **RGB images fed to a 1-channel model**.
#
# **What you will build:** each failure, reproduced on purpose, with the package's error message printed, the
# diagnosis, and the fix; and three small repair functions (padding to a legal size, a mask fixer, a
# class-balancing weight).
# **What you will check:** the package's binary cross-entropy against Keras's on proper 0/1 masks, and what
# Keras does (silently) with 0/255 masks. At the end, the source article's two FAQ questions answered
# properly, and a table of the article's other mistakes with where the course shows what is right.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)
# The models here are tiny: one BLAS thread is as fast as two, and on a busy machine much faster
# (OpenBLAS's second thread spin-waits for a core). Set before NumPy is imported; yours to remove.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import io
import re
import warnings

import numpy as np
import matplotlib.pyplot as plt
from PIL import Image
import unet_scratch as us
from unet_scratch import UNet, data, metrics
from unet_scratch.checks import check_finite, check_unet_size, nearest_legal_sizes
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.training import fit
from unet_scratch.keras_ref import import_tensorflow, import_keras
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)
us.set_backend("numba" if "numba" in us.backend.available_backends() else "numpy")   # same numbers, faster


def show_error(f):
    # run f() and print the exception it raises, as a user would see it
    try:
        f()
        print("no error")
    except Exception as err:
        print(f"{type(err).__name__}: {err}")


# %% [markdown]
# ## 1. All-black or all-grey predictions
#
# A U-Net that outputs the same value everywhere has learned (or been built) to ignore its input. Four causes
# cover most reports:
#
# | symptom | cause | how to tell |
# |---|---|---|
# | all grey ($p \approx 0.5$) | the model never trained: wrong weights loaded, learning rate 0, the loss did not move | `p.std()` tiny, `p.mean()` near 0.5 |
# | all black or all white | **masks stored as 0/255**: targets outside $[0, 1]$, the BCE gradient $p - t$ is 254 times too large | `np.unique(mask)` |
# | all one value | **wrong final activation**: a softmax over a single channel is 1 everywhere; a ReLU head that died outputs 0 | `model.config["out_activation"]`, `out_channels` |
# | all black (background) | **learning rate too high** (the model collapses to a constant) or **class imbalance** (predicting "background" everywhere is already 70-99% accurate) | training curves; Dice instead of accuracy |
#
# Let us produce three of them on the package's synthetic membrane images (`data.load("membranes")`, the data
# set of chapter 08; $64 \times 64$, 27% foreground):
# an untrained model, one trained with Adam at a learning rate of 1.0, and one trained properly (learning rate
# 0.01, 8 epochs, a few seconds).

# %%
x, mask = data.load("membranes", "train", n=32, size=64)[:2]        # (32, 64, 64, 1) in [0, 1] and {0, 1}

def small_unet():
    return UNet(input_shape=(64, 64, 1), base_filters=8, depth=2, seed=0)

untrained = small_unet()
too_fast = small_unet()
with np.errstate(all="ignore"):
    fit(too_fast, (x, mask), epochs=1, batch_size=4, optimizer="adam", learning_rate=1.0, verbose=0)
good = small_unet()
history = fit(good, (x, mask), epochs=8, batch_size=4, optimizer="adam", learning_rate=1e-2, verbose=0)

preds = {name: m.forward(x[:4]) for name, m in
         [("untrained", untrained), ("learning rate 1.0", too_fast), ("learning rate 0.01", good)]}
p = preds["untrained"]
print("untrained: every pixel within 0.1 of 0.5 (all grey):", bool(np.all(np.abs(p - 0.5) < 0.1)))
p = preds["learning rate 1.0"]
print("learning rate 1.0: the same value at every pixel:   ", bool(p.std() < 1e-4))
print("learning rate 1.0: thresholded, all black or all white:", len(np.unique(p > 0.5)) == 1)
print("learning rate 0.01: Dice above 0.6:                 ", metrics.dice(preds["learning rate 0.01"] > 0.5, mask[:4]) > 0.6)

# %%
fig, ax = plt.subplots(1, 5, figsize=(12, 2.9), dpi=100)
panels = [("input image", x[0]), ("true mask", mask[0])] + [(f"p: {k}", v[0]) for k, v in preds.items()]
for a, (title, img) in zip(ax, panels):
    im = a.imshow(img[..., 0], cmap="gray", vmin=0, vmax=1)
    a.set_title(title, fontsize=9); a.set_xlabel("x (pixels)")
ax[0].set_ylabel("y (pixels)")
fig.colorbar(im, ax=ax, fraction=0.015, label="probability (0 black, 1 white)")
fig.suptitle("Same data, three models: untrained = all grey, too high a learning rate = one flat value, "
             "a good run = structure", fontsize=10)
plt.show()

# %% [markdown]
# **Masks stored as 0/255.** A mask saved as an 8-bit PNG holds 0 and 255. Fed to a binary cross-entropy
# $L = -\big(t \log p + (1 - t) \log (1 - p)\big)$ with $t = 255$, the loss is no longer bounded below by 0 and its
# gradient with respect to the logit, $p - t$, is about $-254$ at every foreground pixel: the logits are pushed
# up without limit and the prediction saturates. The package refuses such targets:

# %%
mask255 = (mask[:4] * 255).astype(np.uint8)
show_error(lambda: binary_crossentropy(preds["untrained"], mask255))

# %% [markdown]
# **The wrong final activation.** A softmax normalises over the channel axis, so with **one** channel it
# returns $e^{z} / e^{z} = 1$ at every pixel, whatever the input: an all-white output. (A sigmoid is the
# activation for one channel; a softmax needs one channel per class.) The package's training loop refuses the
# pair, with the mask-range hint because a 1-class softmax only accepts the label 0:

# %%
one_channel_softmax = UNet(input_shape=(64, 64, 1), base_filters=4, depth=2, seed=0, out_activation="softmax")
print("softmax over 1 channel is 1.0 at every pixel:", bool(np.all(one_channel_softmax.forward(x[:2]) == 1)))
show_error(lambda: fit(one_channel_softmax, (x, mask), epochs=1, verbose=0))

# %% [markdown]
# **Class imbalance.** When the foreground is rare, "background everywhere" scores well on pixel accuracy and
# gives a flat loss landscape to slide into. Measure with Dice or IoU, which score that prediction 0, and
# train with a loss that counts the foreground: `loss="dice"` or `"bce_dice"` in `fit`, or a weighted BCE with the
# foreground weighted by background/foreground (exercise 3; the paper's class-balancing $w_c(x)$ in chapter 07).

# %%
all_background = np.zeros_like(mask)
print(f"all-background prediction: pixel accuracy {1 - metrics.pixel_error(all_background, mask):.0%}, "
      f"Dice {metrics.dice(all_background, mask):.1f}")

# %% [markdown]
# ## 2. Sizes not divisible by 16
#
# With 'same' padding every $2 \times 2$ pooling halves the size and every up-convolution doubles it, so after
# $d$ poolings the decoder's feature map matches the encoder's skip only when the input size is divisible by
# $2^d$ (16 for the article's depth 4). Keras reports the mismatch deep inside `concatenate`; the package checks
# at the door (`checks.check_unet_size`) and names the nearest legal sizes (`checks.nearest_legal_sizes`):

# %%
model96 = UNet(input_shape=(96, 96, 1), base_filters=4, seed=0)          # depth 4
show_error(lambda: model96.forward(np.zeros((1, 100, 100, 1), np.float32)))
print("nearest legal sizes to 100, depth 4, 'same':", nearest_legal_sizes(100, 4, "same"))
show_error(lambda: check_unet_size(570, 570, 4, "valid"))            # the paper's valid-padded net
print("nearest legal tiles to 570, depth 4, 'valid':", nearest_legal_sizes(570, 4, "valid"))

# %% [markdown]
# The fix is to pad (or crop, or resize) to a legal size and undo it on the output. Padding by reflection keeps
# the border realistic, as the paper's overlap-tile strategy does; a fully convolutional network runs at any
# legal size, so the model built for 96 runs on 112 without retraining:

# %%
image100 = rng.random((1, 100, 100, 1), dtype=np.float32)
padded = np.pad(image100, ((0, 0), (6, 6), (6, 6), (0, 0)), mode="reflect")          # 100 -> 112
p100 = model96.forward(padded)[:, 6:-6, 6:-6]
print("padded to", padded.shape[1:3], "-> prediction cropped back to", p100.shape[1:3])

# %% [markdown]
# **Exercise 1.** Generalise the cell above: write `pad_to_legal(x, depth)` for a batch $x$: $(N, H, W, C)$ and a
# 'same' U-Net of depth $d$. Round $H$ and $W$ **up** to multiples of $2^d$ (a legal size stays as it is), pad
# by reflection (`np.pad(..., mode="reflect")`), and split each axis's padding as top $= \lfloor p/2 \rfloor$,
# bottom $= p - $ top (left and right the same), so that the prediction is cropped back with
# `[:, top:top + H, left:left + W]`. Worked example: the cell above, $100 \to 112$ at depth 4, 6 pixels on
# each side. The check names the classic mistakes: all the padding at the end, the odd pixel on top, zeros
# instead of a mirror, a whole $2^d$ added to a legal size, a multiple of $2d$ instead of $2^d$.

# %%
from unet_scratch.exercises.appendix import check_fix_mask, check_pad_to_legal, check_pos_weight

def pad_to_legal(x, depth):
    ### BEGIN SOLUTION
    step = 2 ** depth
    widths = [(0, 0)]
    for size in x.shape[1:3]:
        total = -(-size // step) * step - size
        widths.append((total // 2, total - total // 2))
    return np.pad(x, widths + [(0, 0)], mode="reflect")
    ### END SOLUTION

check_pad_to_legal(pad_to_legal);

# %%
image_97x50 = rng.random((1, 97, 50, 1), dtype=np.float32)
padded = pad_to_legal(image_97x50, 4)                                   # 97 -> 112, 50 -> 64
top, left = (112 - 97) // 2, (64 - 50) // 2
p = UNet(input_shape=padded.shape[1:], base_filters=4, seed=0).forward(padded)[:, top:top + 97, left:left + 50]
print("a 97 x 50 image: padded to", padded.shape[1:3], "-> prediction cropped back to", p.shape[1:3])

# %% [markdown]
# ## 3. Masks stored as 0/255, or saved as JPEG
#
# A PNG mask holds two values, 0 and 255. A mask saved as **JPEG** holds dozens: lossy compression rings around
# every edge, and a loader that maps each value to a class finds "hundreds of classes". The histogram shows the
# three cases on the same mask (the JPEG is encoded and decoded here with Pillow).

# %%
m8 = (mask[0, ..., 0] * 255).astype(np.uint8)
buf = io.BytesIO()
Image.fromarray(m8).save(buf, format="JPEG", quality=75)
jpeg = np.asarray(Image.open(io.BytesIO(buf.getvalue())))
print("PNG-style mask values:", np.unique(m8))
print("JPEG mask has more than two values:", len(np.unique(jpeg)) > 2)

fig, ax = plt.subplots(1, 3, figsize=(11, 3), dpi=100, sharey=True)
for a, (title, m) in zip(ax, [("0/1 (what the loss expects)", mask[0, ..., 0]), ("0/255 (8-bit PNG)", m8),
                              ("JPEG-saved (compression noise)", jpeg)]):
    a.hist(m.ravel(), bins=64, color=plt.cm.viridis(0.4), log=True)
    a.set_title(title, fontsize=9); a.set_xlabel("mask value")
ax[0].set_ylabel("pixels (log scale)")
fig.suptitle("Mask values: a loss needs {0, 1}; 0/255 is 255x off, JPEG adds values in between", fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown]
# `data.check_pair(image, mask)` validates a training pair: a clean 0/255 mask is normalised with a warning,
# anything else that is not 0/1 is refused with the fix in the message:

# %%
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    _, fixed = data.check_pair(x[0], m8)
print("warning:", caught[0].message)
print("normalised mask values:", np.unique(fixed))
show_error(lambda: data.check_pair(x[0], jpeg))


# %% [markdown]
# **Exercise 2.** Write `fix_mask(mask)`: a float32 array of the same shape with values in $\{0, 1\}$.
# Threshold 0/255 masks (clean or JPEG-noisy, any dtype) at 127.5 and masks already in $[0, 1]$ at 0.5
# (tell them apart by the maximum: above 1 means 0/255). Worked example: a JPEG mask with the values
# $\{0, 3, 17, 238, 255\}$ becomes $\{0, 0, 0, 1, 1\}$. The check names the classic mistakes: a division by 255
# without a threshold, one threshold (0.5 or 127.5) for every mask.

# %%
def fix_mask(mask):
    ### BEGIN SOLUTION
    mask = np.asarray(mask, dtype=np.float64)
    threshold = 127.5 if mask.max() > 1 else 0.5
    return (mask > threshold).astype(np.float32)
    ### END SOLUTION

check_fix_mask(fix_mask);

# %% [markdown]
# ### Verification: our BCE against Keras's, and what Keras does with 0/255
#
# On proper 0/1 masks the package's `binary_crossentropy` equals Keras's `BinaryCrossentropy` (chapter 07 proves
# it in detail). On 0/255 masks Keras raises nothing: it returns a number that no cross-entropy can take (a BCE
# is never negative), and training goes on.

# %%
y_prob = np.clip(rng.random((2, 16, 16, 1), dtype=np.float32), 0.05, 0.95)
t01 = (rng.random((2, 16, 16, 1)) < 0.3).astype(np.float32)
bce = keras.losses.BinaryCrossentropy()
ours = binary_crossentropy(y_prob, t01)[0]
theirs = float(bce(t01, y_prob))
err = abs(ours - theirs) / abs(theirs)
print("0/1 masks: scratch BCE == Keras BCE (relative error < 1e-6):", err < 1e-6)
y_sure = np.where(t01 > 0, 0.9, 0.1).astype(np.float32)           # a confident, correct prediction
loss255 = float(bce(t01 * 255, y_sure))
print("0/255 masks: Keras raises no error and returns a negative 'loss':", loss255 < 0)

# %% [markdown]
# ## 4. Keras API drift: old Keras U-Net code on Keras 3
#
# The source article's own code runs on Keras 3 as it is (it builds the model with
# `tf.keras.Model(inputs=[inputs], outputs=[outputs])` and has no `compile` or `fit`; chapter 06). The code
# that breaks is the older Keras U-Net code readers find next to it, above all **zhixuhao/unet**, the
# most-forked Keras U-Net, whose layout the article's code follows: its `model.py` built the model with
# `Model(input=inputs, output=conv10)` in its earlier versions and compiles with `Adam(lr=1e-4)`, its `main.py`
# trains with `model.fit_generator(...)`, and its `data.py` feeds that from Keras's `ImageDataGenerator`.
# Here are the real errors on Keras 3, caught, each followed by the Keras 3 spelling.

# %%
inp = keras.Input((16, 16, 1), name="image")
out = keras.layers.Conv2D(1, 1, activation="sigmoid", name="head")(inp)

def short(f):
    # print the error type and its message, with the long KerasTensor descriptions shortened
    try:
        f()
        print("no error")
    except Exception as err:
        print(f"{type(err).__name__}: {re.sub(r'<KerasTensor[^>]*>', '<KerasTensor>', str(err))}")

short(lambda: keras.Model(input=inp, output=out))          # Keras 1 spelling (tf.keras 2 raised TypeError)
model = keras.Model(inputs=inp, outputs=out, name="unet")  # Keras 3: inputs=, outputs=
short(lambda: keras.optimizers.Adam(lr=1e-4))              # Keras 1/2: lr=
opt = keras.optimizers.Adam(learning_rate=1e-4)           # Keras 3: learning_rate=
short(lambda: model.fit_generator)                         # removed: fit() takes generators
short(lambda: keras.preprocessing.image.ImageDataGenerator)   # removed: use tf.data or your own generator

# %%
images = [rng.random((16, 16, 1), dtype=np.float32) for _ in range(3)]
short(lambda: model.predict(images, verbose=0))            # a list = several *inputs*, not a batch
print("np.stack(images) -> predictions of shape", model.predict(np.stack(images), verbose=0).shape)
print("one image: add the batch axis, images[0][None] ->", model.predict(images[0][None], verbose=0).shape)

def batches():                                             # what fit_generator used to take
    while True:
        xb = rng.random((2, 16, 16, 1), dtype=np.float32)
        yield xb, (xb > 0.5).astype(np.float32)

model.compile(optimizer=opt, loss="binary_crossentropy")
h = model.fit(batches(), steps_per_epoch=2, epochs=1, shuffle=False, verbose=0)
print("model.fit(generator, steps_per_epoch=...) trains:", len(h.history["loss"]) == 1)

# %% [markdown]
# ## 5. NaN during training
#
# A loss that turns into NaN poisons every weight at the next step. The usual causes: a learning rate far too
# high (the logits overflow float32), NaN or Inf in the data, $\log 0$ in a hand-written loss without clipping
# (Keras clips $p$ to $[10^{-7}, 1 - 10^{-7}]$), and float16 mixed precision, whose largest number is 65504.
# The package checks at each stage: the data (`checks.check_finite`), the loss inputs, and the training loop,
# which stops *before* applying a non-finite step and says where it happened:

# %%
bad = x[:2].copy()
bad[1, 10, 20, 0] = np.nan
show_error(lambda: check_finite(bad, "images"))
show_error(lambda: binary_crossentropy(preds["untrained"] * np.nan, mask[:4]))

diverging = small_unet()
with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
    warnings.simplefilter("always")
    fit(diverging, (x[:8], mask[:8]), epochs=1, batch_size=4, optimizer="sgd", learning_rate=1e6, verbose=0)
print("warning:", [str(w.message) for w in caught if w.category is RuntimeWarning][0])
with np.errstate(over="ignore"):
    print("float16 overflows above 65504:", np.isinf(np.float16(70000.0)))

# %% [markdown]
# ## 6. An RGB image into a 1-channel model
#
# The article's model takes $256 \times 256 \times 1$ grey images. An RGB image has 3 channels; a channels-first
# array (PyTorch's NCHW) has them in the wrong axis; a single image lacks the batch axis. Each gets its own
# message with the fix:

# %%
grey_model = UNet(input_shape=(64, 64, 1), base_filters=4, depth=2, seed=0)
rgb = rng.random((1, 64, 64, 3), dtype=np.float32)
show_error(lambda: grey_model.forward(rgb))
show_error(lambda: grey_model.forward(rgb.mean(axis=-1, keepdims=True).transpose(0, 3, 1, 2)))   # NCHW
show_error(lambda: grey_model.forward(rgb[0, ..., 0]))                                          # (H, W)
show_error(lambda: grey_model.forward((rgb * 255).astype(np.uint8)[..., :1]))                  # 8-bit
print("after rgb.mean(axis=-1, keepdims=True):", grey_model.forward(rgb.mean(axis=-1, keepdims=True)).shape)


# %% [markdown]
# ## 7. The source article's FAQ, answered properly
#
# The article ends with two questions (its section 9, "常见问题与解答").
#
# ### 9.1 "Why does U-Net need skip connections?" (UNet模型为什么需要跳跃连接？)
#
# The article answers that skips "let the decoder access the encoder's feature maps, improving expressiveness
# and capturing details". True as far as it goes. A common stronger claim, that pooling throws away *where*
# things are and so the decoder *cannot* place a boundary without skips, does not hold up: at
# $256 \times 256$ the article's bottleneck is $16 \times 16 \times 1024 = 262{,}144$ numbers, four times the
# input's 65,536 pixels, and the up-convolutions are learned, not interpolations. A network without skips
# *can* in principle carry positions through its bottleneck. What the skips change is how easy that is:
#
# * **An inductive bias.** The skip at level $\ell$ hands the decoder the encoder's features at the same
#   resolution, aligned pixel for pixel with the output it is computing. Placing a boundary then needs only
#   local features that the encoder's first convolutions already compute (edges), combined with the context
#   coming up from below; without skips, the network must learn to encode sub-block positions through four
#   poolings and decode them again, which is possible but must be learned from the data, and with few images
#   that is where it falls short.
# * **A short gradient path.** The gradient reaches the first encoder block through one concatenation and the
#   last decoder block instead of through all $2 \cdot 4 + 1$ blocks of the U; at the fork the skip's gradient
#   adds to the one coming back up the deep path (chapter 05 derives it and checks it), so the early layers
#   learn from the start.
#
# Whether that matters is an experiment, not an argument: **chapter 04** trains the same small U-Net
# (64 px membranes, 128 training images) with and without its skips (`UNet(..., skip_connections=False)`:
# zeros in place of each skip, the same parameters), three seeds each, until the validation loss stops
# improving (`benchmarks/skips.py` -> `benchmarks/results/skips.json`). With skips the test Dice is 0.84
# (0.835 to 0.845 over the seeds), without 0.71 (0.696 to 0.717); the fraction of wrong pixels within 2 px of a
# membrane edge is 0.16 with skips and 0.29 without. Both variants stopped improving at about the same epoch,
# so the gap is not one of training time. One small network on one data set: chapter 04 says what the
# experiment does not show (the article's full network at 256 px, other data, augmentation, far longer runs).

# %% [markdown]
# ### 9.2 "Where is U-Net used?" (UNet模型在哪些领域有应用？)
#
# The article lists medical imaging, remote sensing and road detection. The better answer says *what kind of
# problem* it fits: **dense prediction** (a label or a value per pixel), with **few annotated images** and
# objects whose **boundaries matter**. The paper (Ronneberger et al., 2015) was written for biomedical
# microscopy: trained on the 30 images of the ISBI 2012 electron-microscopy challenge, it had the best warping
# error on the leaderboard at the time (0.000353), and on the ISBI 2015 cell-tracking data it reached an IoU of
# 0.92 on PhC-U373 (next best 0.83) and 0.78 on DIC-HeLa (next best 0.46). Few images suffice thanks to
# elastic-deformation augmentation, and the overlap-tile strategy handles images of any size. Since then:
# * volumetric medical imaging: 3D U-Net (Çiçek et al., 2016) and nnU-Net (Isensee et al., Nature Methods
#   2021), which configures a U-Net for a new data set by itself;
# * any image-to-image task that needs both context and pixel accuracy: satellite and aerial segmentation,
#   road and lane masks, denoising and restoration;
# * image generation: the denoising network of diffusion models (Ho et al., 2020) is a U-Net.
#
# What it does **not** do by itself: separate touching objects of the same class (that is what the paper's
# weight map, chapter 07, is for, or an instance-segmentation method), or see context wider than its receptive
# field.
#
# ## 8. What else the article gets wrong
#
# The source article ("UNet原理与代码实例讲解") gets the architecture's code right (chapter 06 rebuilds it layer
# for layer), but its text and figures say several things that are not so. Each is checked against the
# article's text, the paper (Ronneberger, Fischer, Brox, MICCAI 2015, arXiv 1505.04597) and the cited works:
#
# | the article says | what is right | where the course shows it |
# |---|---|---|
# | nothing about where the architecture comes from | U-Net builds on the **fully convolutional network** (FCN) of Long, Shelhamer and Darrell (CVPR 2015): the paper says it "build[s] upon" FCN, whose idea is to follow a contracting network by upsampling layers and combine them with the high-resolution features of the contracting path | chapter 10 (the paper), chapter 03 (the up-convolution), chapter 04 (the skips) |
# | section 1: "UNet的成功也推动了...SegNet、DeepLab等" (U-Net's success pushed SegNet, DeepLab) | DeepLab v1 (Chen, Papandreou, Kokkinos, Murphy, Yuille, arXiv 1412.7062, December 2014; ICLR 2015) **predates** U-Net (arXiv May 2015), and SegNet (Badrinarayanan, Kendall, Cipolla) is concurrent work from 2015: both descend from FCN, not from U-Net | this appendix |
# | section 7.3 cites "DeepLab: Semantic Image Segmentation with Deep Convolutional Nets, Atrous Convolution, and Fully Connected CRFs" by **Abhinav Shrivastava, Abhinav Gupta, Ross Girshick** | that title is DeepLab v2 (arXiv 1606.00915, 2016; TPAMI 2018) by **Liang-Chieh Chen, George Papandreou, Iasonas Kokkinos, Kevin Murphy, Alan L. Yuille**; Shrivastava, Gupta and Girshick wrote other papers (object detection with online hard example mining, CVPR 2016) | this appendix |
# | keywords and section 2.1: an **autoencoder** (自编码器) whose decoder "reconstructs the image's low-level details" | U-Net is an encoder-decoder trained on **labels**: its output is a segmentation map compared with a mask, not a reconstruction of its input (an autoencoder with skips could copy its input through them and learn nothing) | chapter 07 (the losses against masks), chapter 08 (training) |
# | figures 1-3: **five** pooling layers chained into a **fully connected layer**, then five upsampling stages | **four** $2 \times 2$ poolings, four up-convolutions and **no dense layer**: the network is fully convolutional, which is why it runs on any legal size (its own code agrees) | chapter 00 (the U-Net drawn from its real shapes), chapter 10 |
# | section 3.2: "每个上采样层后接一个ReLU激活函数" (each upsampling layer is followed by a ReLU) | its own code's `Conv2DTranspose` has no activation, and in the paper the $2 \times 2$ up-convolution is followed by the concatenation and then two $3 \times 3$ convolutions, *each* followed by a ReLU (a ReLU after the up-step is zhixuhao/unet's choice) | chapter 03, chapter 06 (layer for layer) |
# | section 4.3: the skip as $J(x) = \mathrm{ReLU}(W_1 x + b_1) \circ \cdots$, with weights and activations | a skip has **no weights**: the encoder's feature map is copied (centre-cropped in the paper) and concatenated; the weights are in the decoder's next convolution. $J(x) = x$ (or $\mathrm{crop}(x)$) | chapter 04 (concatenation and crop, forward and backward) |
# | sections 4.1-4.2: every stage as a composition of $\mathrm{ReLU}(W x + b)$, with "$\circ$" called a convolution | a convolution is a sum over a window, $y_{i,j,f} = b_f + \sum_{a,q,c} x_{i+a, j+q, c}\, w_{a,q,c,f}$; pooling and up-convolution are different operations again | chapters 01-03 |
# | section 5.2 has no training code, yet readers meet `Model(input=...)`, `Adam(lr=...)`, `fit_generator` beside it | those Keras 2 spellings come from zhixuhao/unet, not from the article; the article's training (loss, optimizer, augmentation) is unspecified | chapter 06 section 7, section 4 above, chapter 10 section 3 |

# %% [markdown]
# **Exercise 3 (class imbalance).** Write `pos_weight(mask)`: the number of background pixels divided by the
# number of foreground pixels of a $\{0, 1\}$ mask, the weight that makes the foreground count as much as the
# background in a weighted BCE (section 1). Worked example: 25% foreground gives $75 / 25 = 3$. The check names
# the classic mistakes: the ratio upside down, the background's share of all pixels, all pixels over the
# foreground.

# %%
def pos_weight(mask):
    ### BEGIN SOLUTION
    mask = np.asarray(mask)
    return float((mask == 0).sum() / (mask == 1).sum())
    ### END SOLUTION

check_pos_weight(pos_weight);

# %% [markdown]
# ## Exercises in this appendix
#
# 1. `pad_to_legal(x, depth)`: mirror a batch up to the next size a 'same' U-Net of this depth accepts
#    (section 2).
# 2. `fix_mask(mask)`: any 0/255, JPEG-noisy or 0/1 mask to float32 $\{0, 1\}$ (section 3).
# 3. `pos_weight(mask)`: the background/foreground ratio that balances a weighted BCE (section 1).
#
# Further (no check): train `small_unet()` on masks made rare (erode the membranes until 5% of pixels remain)
# with `loss="bce"` and with `loss="bce_dice"`, and compare the Dice curves.
