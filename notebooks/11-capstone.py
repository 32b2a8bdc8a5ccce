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
# # 11 · Capstone: your ops inside the real U-Net
#
# Every chapter so far had you write one piece and check it alone. Here the pieces go into the network.
# `unet_scratch.capstone.use_student_ops` hands **your** functions to the layers of the real `UNet` for the
# length of a `with` block: every `Conv2D` then runs your convolution, every pooling layer your pooling, and
# every backward pass your backward functions, while the model, the weights and the training loop stay the
# package's.
#
# **What you will build:** one cell per op, in the signatures the layers call (below), with the code you
# wrote in the earlier chapters: the convolution as im2col and one matrix product, and its backward with
# col2im (chapter 01); max-pooling with the first-maximum rule (02); the transposed convolution as a
# scatter-add (03); ReLU and the sigmoid; the concatenation of the skip (04); inverted dropout (05b).
#
# **What you will check:** each op, forward and backward, against the reference in `unet_scratch.ops`;
# then, with **only your ops** running,
# (a) the source article's U-Net (31,030,593 parameters) at $64 \times 64$, forward and backward, against
# Keras: every layer's output within rtol = atol = $10^{-5}$ and every weight's gradient within a
# relative error of $10^{-5}$; and (b) training a small U-Net on the `membranes` data, next to the same run
# with the package's ops.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"              # quiet TensorFlow: set before it is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")    # small matrices: one BLAS thread is faster

import math
import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data, keras_ref
from unet_scratch.capstone import use_student_ops, written_ops
from unet_scratch.training import fit
from unet_scratch.exercises.ch05b import check_dropout
from unet_scratch.exercises.ch11 import (check_concatenate, check_conv2d, check_conv2d_transpose,
                                         check_maxpool2d, check_parity, check_relu, check_sigmoid)

# %% [markdown]
# ## How your functions get into the network
#
# A layer does not call `conv2d` directly: at each forward pass it asks `backend.ops()` for the current
# namespace of op functions (the NumPy reference, the Numba kernels or the CuPy ones, chapter 09) and keeps
# it for the matching backward pass. `use_student_ops(conv2d=..., conv2d_backward=..., ...)` puts your
# functions in front of that namespace inside the block and takes them away on exit (also when your code
# raises); it refuses a name it does not know, listing the ones it does, and a forward given without its
# backward, because a backward reads the cache its own forward made. It yields a counter of how often each
# of your functions ran. The signatures are the reference ops' (`unet_scratch.ops`):
#
# | op | forward | backward |
# | --- | --- | --- |
# | convolution | `conv2d(x, w, b, strides, padding) -> (y, cache)` | `conv2d_backward(dy, cache) -> (dx, dw, db)` |
# | max-pooling | `maxpool2d(x, pool_size, strides, padding) -> (y, cache)` | `maxpool2d_backward(dy, cache) -> dx` |
# | up-conv | `conv2d_transpose(x, w, b, strides, padding) -> (y, cache)` | `conv2d_transpose_backward(dy, cache) -> (dx, dw, db)` |
# | activations | `relu(x)`, `sigmoid(x) -> (y, cache)` | `relu_backward(dy, cache)`, `sigmoid_backward(dy, cache) -> dx` |
# | skip | `concatenate(xs, axis) -> (y, cache)` | `concatenate_backward(dy, cache) -> [dx_1, dx_2]` |
# | dropout | `dropout(x, rate, rng, training) -> (y, cache)` | `dropout_backward(dy, cache) -> dx` |
#
# Shapes: `x` $(N, H, W, C)$; a `Conv2D` kernel `w` $(K_H, K_W, C, F)$, a `Conv2DTranspose` kernel
# $(K_H, K_W, F, C)$; `b` $(F,)$; `strides` and `pool_size` pairs such as `(2, 2)`; `padding` `"same"` or
# `"valid"`. The cache is yours: whatever your backward needs. In the article's U-Net the layers call them
# with: $3 \times 3$ convolutions, stride 1, `"same"`, then a $1 \times 1$ head; $2 \times 2$ pooling, stride 2,
# `"valid"`; $2 \times 2$ up-convolutions, stride 2, `"same"`; ReLU after every convolution but the head's
# sigmoid; the concatenation `[up, skip]` on the channel axis; dropout 0.5. A function written as in the early
# chapters, returning `y` alone with a backward that takes the forward's inputs, plugs in through
# `capstone.from_plain("relu", relu_forward, relu_backward)`.
#
# In each exercise cell, paste your solution from its chapter and adapt it to the signature (the cells
# below carry a reference solution). Make it work on any batch size and channel count, and in float32 as
# well as float64: the checks run float64, the network float32.

# %% [markdown]
# ## 1. The convolution: im2col, one matrix product, col2im
#
# $y[n, i, j, f] = b[f] + \sum_{a, q, c} x_\text{pad}[n, i s_h + a, j s_w + q, c]\; w[a, q, c, f]$, a
# cross-correlation. `"same"` pads $\text{total} = \max((\lceil n / s \rceil - 1)\, s + k - n, 0)$ with
# $\lfloor \text{total} / 2 \rfloor$ before and the rest after. im2col lays the $N \cdot OH \cdot OW$ windows out
# as the rows of a $(N\, OH\, OW, K_H K_W C)$ matrix, so $Y = \text{cols}\, W$ with $W$ = `w.reshape(-1, F)`;
# backward, $dW = \text{cols}^\top dY$, $d\text{cols} = dY\, W^\top$, and col2im scatter-adds $d\text{cols}$
# back onto the padded input, whose padding is then cut off.
#
# **Exercise 1.** `conv2d` and `conv2d_backward` (with the helpers `same_pads`, `im2col`, `col2im`).

# %%
def same_pads(n, k, s):
    ### BEGIN SOLUTION
    total = max((math.ceil(n / s) - 1) * s + k - n, 0)
    return total // 2, total - total // 2
    ### END SOLUTION

def im2col(x_pad, kh, kw, sh, sw):
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = np.empty((n, oh, ow, kh, kw, c), dtype=x_pad.dtype)
    for a in range(kh):
        for q in range(kw):
            cols[:, :, :, a, q, :] = x_pad[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :]
    return cols.reshape(n * oh * ow, kh * kw * c)
    ### END SOLUTION

def col2im(cols, x_pad_shape, kh, kw, sh, sw):
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, dtype=cols.dtype)
    for a in range(kh):
        for q in range(kw):
            x_pad[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += cols[:, :, :, a, q, :]
    return x_pad
    ### END SOLUTION

def conv2d(x, w, b, strides, padding):
    ### BEGIN SOLUTION
    kh, kw, c, f = w.shape
    sh, sw = strides
    if padding == "same":
        pads = (same_pads(x.shape[1], kh, sh), same_pads(x.shape[2], kw, sw))
    else:
        pads = ((0, 0), (0, 0))
    x_pad = np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))
    n, hp, wp, _ = x_pad.shape
    oh, ow = (hp - kh) // sh + 1, (wp - kw) // sw + 1
    cols = im2col(x_pad, kh, kw, sh, sw)
    y = cols @ w.reshape(kh * kw * c, f)
    if b is not None:
        y = y + b
    return y.reshape(n, oh, ow, f), (x_pad.shape, pads, cols, w, strides, b is not None)
    ### END SOLUTION

def conv2d_backward(dy, cache):
    ### BEGIN SOLUTION
    x_pad_shape, pads, cols, w, (sh, sw), has_bias = cache
    kh, kw, c, f = w.shape
    dy2 = dy.reshape(-1, f)
    dw = (cols.T @ dy2).reshape(w.shape)
    dx_pad = col2im(dy2 @ w.reshape(kh * kw * c, f).T, x_pad_shape, kh, kw, sh, sw)
    (top, bottom), (left, right) = pads
    dx = dx_pad[:, top:x_pad_shape[1] - bottom, left:x_pad_shape[2] - right, :]
    return dx, dw, (dy2.sum(axis=0) if has_bias else None)
    ### END SOLUTION

check_conv2d(conv2d, conv2d_backward);

# %% [markdown]
# ## 2. Max-pooling and its routing
#
# $y[n, i, j, c] = \max_{a, q} x[n, i s_h + a, j s_w + q, c]$ over each $P_H \times P_W$ window (`"valid"`:
# the last row or column that does not fill a window is dropped). Backward, each window's gradient goes to
# **one** input, its first maximum in row-major order, as TensorFlow does; after a ReLU many windows are
# all zeros, and that rule decides where their gradient goes.
#
# **Exercise 2.** `maxpool2d` and `maxpool2d_backward` (`"valid"` padding is enough for the U-Net).

# %%
def maxpool2d(x, pool_size, strides, padding):
    ### BEGIN SOLUTION
    (ph, pw), (sh, sw) = pool_size, strides
    n, h, w, c = x.shape
    oh, ow = (h - ph) // sh + 1, (w - pw) // sw + 1
    windows = np.stack([x[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :]
                        for a in range(ph) for q in range(pw)], axis=-1)       # (N, OH, OW, C, PH*PW)
    first = windows.argmax(axis=-1)                                           # the FIRST maximum
    y = np.take_along_axis(windows, first[..., None], axis=-1)[..., 0]
    return y, (x.shape, first, pool_size, strides)
    ### END SOLUTION

def maxpool2d_backward(dy, cache):
    ### BEGIN SOLUTION
    x_shape, first, (ph, pw), (sh, sw) = cache
    oh, ow = dy.shape[1:3]
    dx = np.zeros(x_shape, dtype=dy.dtype)
    for a in range(ph):
        for q in range(pw):
            dx[:, a:a + sh * (oh - 1) + 1:sh, q:q + sw * (ow - 1) + 1:sw, :] += np.where(first == a * pw + q, dy, 0)
    return dx
    ### END SOLUTION

check_maxpool2d(maxpool2d, maxpool2d_backward);

# %% [markdown]
# ## 3. The transposed convolution as a scatter-add
#
# Each input pixel stamps the kernel, weighted by its channels, onto a "full" canvas:
# $\text{full}[n, i s_h + a, j s_w + q, f] \mathrel{+}= \sum_c x[n, i, j, c]\; w[a, q, f, c]$, with
# $(H - 1) s_h + K_H$ rows; Keras then keeps $OH$ rows from $\text{top}$: `"same"`, $OH = H s_h$ and
# $\text{top} = \lfloor \max(K_H - s_h, 0) / 2 \rfloor$; `"valid"`, $OH = H s_h + \max(K_H - s_h, 0)$ and
# $\text{top} = 0$. Backward: paste $dy$ into a zero canvas at the same place, then every stamp runs in
# reverse: $dx[n, i, j, c] = \sum_{a, q, f} d\text{full}[n, i s_h + a, j s_w + q, f]\, w[a, q, f, c]$ and
# $dw[a, q, f, c] = \sum_{n, i, j} d\text{full}[n, i s_h + a, j s_w + q, f]\, x[n, i, j, c]$.
#
# **Exercise 3.** `conv2d_transpose` and `conv2d_transpose_backward` (loop over the $K_H K_W$ kernel offsets,
# one matrix product each).

# %%
def conv2d_transpose(x, w, b, strides, padding):
    ### BEGIN SOLUTION
    n, h, wd, c = x.shape
    kh, kw, f, _ = w.shape
    sh, sw = strides
    if padding == "same":
        oh, ow = h * sh, wd * sw
        top, left = max(kh - sh, 0) // 2, max(kw - sw, 0) // 2
    else:
        oh, ow = h * sh + max(kh - sh, 0), wd * sw + max(kw - sw, 0)
        top = left = 0
    full = np.zeros((n, max((h - 1) * sh + kh, top + oh), max((wd - 1) * sw + kw, left + ow), f), dtype=x.dtype)
    for a in range(kh):
        for q in range(kw):
            full[:, a:a + sh * (h - 1) + 1:sh, q:q + sw * (wd - 1) + 1:sw, :] += x @ w[a, q].T
    y = full[:, top:top + oh, left:left + ow, :]
    if b is not None:
        y = y + b
    return y, (x, w, strides, full.shape, top, left, b is not None)
    ### END SOLUTION

def conv2d_transpose_backward(dy, cache):
    ### BEGIN SOLUTION
    x, w, (sh, sw), full_shape, top, left, has_bias = cache
    n, h, wd, c = x.shape
    kh, kw = w.shape[:2]
    dfull = np.zeros(full_shape, dtype=dy.dtype)
    dfull[:, top:top + dy.shape[1], left:left + dy.shape[2], :] = dy
    dx, dw = np.zeros_like(x), np.zeros_like(w)
    for a in range(kh):
        for q in range(kw):
            d = dfull[:, a:a + sh * (h - 1) + 1:sh, q:q + sw * (wd - 1) + 1:sw, :]     # (N, H, W, F)
            dx += d @ w[a, q]
            dw[a, q] = d.reshape(-1, d.shape[-1]).T @ x.reshape(-1, c)
    return dx, dw, (dy.sum(axis=(0, 1, 2)) if has_bias else None)
    ### END SOLUTION

check_conv2d_transpose(conv2d_transpose, conv2d_transpose_backward);

# %% [markdown]
# ## 4. ReLU and sigmoid
#
# $\operatorname{relu}(x) = \max(x, 0)$, $dx = dy \cdot [x > 0]$ (0 at $x = 0$, as TensorFlow). The layer may
# call your `relu` a second time on its own output $y$ to rebuild the cache (the parity report does, when
# it feeds Keras's activations back in): $[y > 0] = [x > 0]$, so a correct ReLU needs no care.
# $\sigma(x) = 1 / (1 + e^{-x})$, $dx = dy \cdot y (1 - y)$; compute it from $e^{-|x|}$ so that
# $x = -1000$ does not overflow.
#
# **Exercise 4.** `relu`, `relu_backward`, `sigmoid`, `sigmoid_backward`.

# %%
def relu(x):
    ### BEGIN SOLUTION
    return np.maximum(x, 0), x
    ### END SOLUTION

def relu_backward(dy, cache):
    ### BEGIN SOLUTION
    return dy * (cache > 0)
    ### END SOLUTION

def sigmoid(x):
    ### BEGIN SOLUTION
    e = np.exp(-np.abs(x))
    y = np.where(x >= 0, 1, e) / (1 + e)
    return y, y
    ### END SOLUTION

def sigmoid_backward(dy, cache):
    ### BEGIN SOLUTION
    return dy * cache * (1 - cache)
    ### END SOLUTION

check_relu(relu, relu_backward);
check_sigmoid(sigmoid, sigmoid_backward);

# %% [markdown]
# ## 5. The skip: concatenation
#
# $y = [\,x_1 \mid x_2\,]$ along the channels; its backward is a split at the same place,
# $dx_1 = dy[\dots, :C_1]$, $dx_2 = dy[\dots, C_1:]$. In the U-Net $x_1$ is the up-convolution's output and
# $x_2$ the skip, which chapter 05 then adds to the gradient coming back up the contracting path.
#
# **Exercise 5.** `concatenate` and `concatenate_backward` for a list of inputs along `axis`.

# %%
def concatenate(xs, axis):
    ### BEGIN SOLUTION
    return np.concatenate(xs, axis=axis), ([x.shape[axis] for x in xs], axis)
    ### END SOLUTION

def concatenate_backward(dy, cache):
    ### BEGIN SOLUTION
    sizes, axis = cache
    return np.split(dy, np.cumsum(sizes)[:-1], axis=axis)
    ### END SOLUTION

check_concatenate(concatenate, concatenate_backward);

# %% [markdown]
# ## 6. Dropout
#
# Chapter 05b's exercise 3 has this signature already: keep where `rng.random(x.shape) >= rate`, scale the
# kept units by $1 / (1 - \text{rate})$, the identity when not training. The layers pass their own seeded
# generator, so your masks are the package's.
#
# **Exercise 6.** `dropout` and `dropout_backward`.

# %%
def dropout(x, rate, rng, training):
    ### BEGIN SOLUTION
    if not training or rate == 0:
        return x, None
    mask = ((rng.random(x.shape) >= rate) / (1 - rate)).astype(x.dtype)
    return x * mask, mask
    ### END SOLUTION

def dropout_backward(dy, cache):
    ### BEGIN SOLUTION
    return dy if cache is None else dy * cache
    ### END SOLUTION

check_dropout(dropout, dropout_backward);

# %% [markdown]
# ## 7. (a) The article's U-Net, on your ops, against Keras
#
# The package's `UNet()` with the defaults is the source article's model: 31,030,593 parameters, 23
# convolution layers. `keras_ref.to_keras` builds the article's Keras model with the same weights, and
# `keras_ref.compare` (chapter 06) runs both on one $64 \times 64$ membrane image and compares every layer's
# output, then backpropagates one loss through both and compares every weight's gradient. The backward pass
# is compared **teacher-forced** (each of our layers recomputed from Keras's own input to it), because in
# float32 a pooling window whose two largest values differ by one rounding step may route its gradient
# differently on the two sides: chapter 06 explains. Every op of the scratch side below is yours; the
# counter proves it. (`written_ops` leaves out any pair that still raises `NotImplementedError`, so that
# while you work through the exercises the package's op runs in place of each one you have not written.)

# %%
your_ops = dict(conv2d=conv2d, conv2d_backward=conv2d_backward,
                maxpool2d=maxpool2d, maxpool2d_backward=maxpool2d_backward,
                conv2d_transpose=conv2d_transpose, conv2d_transpose_backward=conv2d_transpose_backward,
                relu=relu, relu_backward=relu_backward, sigmoid=sigmoid, sigmoid_backward=sigmoid_backward,
                concatenate=concatenate, concatenate_backward=concatenate_backward,
                dropout=dropout, dropout_backward=dropout_backward)
mine, missing = written_ops(your_ops)
if missing:
    print("not written yet, the package's ops run in their place:", ", ".join(missing))

model = UNet(input_shape=(64, 64, 1), seed=0)            # the article's model
keras_model = keras_ref.to_keras(model)                  # the same weights, in Keras 3
x = data.load("membranes", n=1, size=64)[0]
with use_student_ops(**mine) as calls:
    report = keras_ref.compare(model, keras_model, x)

print(f"parameters: {model.count_params():,}")
print("your functions ran:", ", ".join(f"{name} {n}x" for name, n in sorted(calls.items())))
print("every op of the network was yours:", set(calls) == set(your_ops))
check_parity(report, tol=1e-5);

# %% [markdown]
# The measured errors (they change in the last digits from machine to machine, so this cell's output is not
# compared when the notebook is tested): the largest absolute difference of any layer's output, and the
# largest relative difference $\lVert a - b \rVert / \lVert b \rVert$ of any weight's gradient, with the layer
# where each occurs. Float32 arithmetic carries about 7 significant digits, and a layer's output sums
# thousands of products, so differences of $10^{-7}$ in the activations and $10^{-6}$ in the gradients are the
# expected rounding, not a bug.

# %%
# NBVAL_IGNORE_OUTPUT
forward_rows = [r for r in report.rows if r.kind == "forward"]
gradient_rows = [r for r in report.rows if r.kind == "gradient"]
worst_f = max(forward_rows, key=lambda r: r.max_abs)
worst_g = max(gradient_rows, key=lambda r: r.rel)
print(f"forward:  largest abs error {worst_f.max_abs:.1e} (at {worst_f.name}); tolerance 1e-05")
print(f"backward: largest relative error {worst_g.rel:.1e} (at {worst_g.name}); tolerance 1e-05")

kernels = [r for r in gradient_rows if r.name.endswith("/kernel")]
fig, ax = plt.subplots(figsize=(10, 3.8), dpi=100)
ax.semilogy(range(len(forward_rows)), [max(r.max_abs, 1e-12) for r in forward_rows], "o-", ms=4,
            color=plt.cm.viridis(0.3), label="layer output: largest abs error")
where = {r.name: i for i, r in enumerate(forward_rows)}
ax.semilogy([where[r.name.split("/")[0]] for r in kernels], [max(r.rel, 1e-12) for r in kernels], "s", ms=5,
            color=plt.cm.viridis(0.8), label="kernel gradient: relative error")
ax.axhline(1e-5, color="0.3", ls="--", lw=1, label="tolerance 1e-5 (both)")
ax.set_xticks(range(len(forward_rows)))
ax.set_xticklabels([r.name for r in forward_rows], rotation=90, fontsize=7)
ax.set_ylabel("error against Keras (log;\nexact 0 drawn at 1e-12)")
ax.set_xlabel("layer, in forward order (pooling layers have no kernel)")
ax.set_title("Your ops against Keras: every layer and every gradient below the tolerance")
ax.legend(fontsize=8, loc="lower right"); fig.tight_layout(); plt.show()

# %% [markdown]
# ## 8. (b) Training on your ops
#
# A small U-Net (depth 3, 8 filters at the top, the article's dropout 0.5, He initialisation) trained with
# `training.fit` on 32 `membranes` images of $64 \times 64$ for four epochs with Adam, once on your ops and
# once on the package's, from the same seed: the same batches, the same dropout masks, the same
# initial weights. The two runs differ only by the rounding of your ops against the reference's, and that
# rounding (float32) grows a little with every step of training.

# %%
train = data.load("membranes", n=32, size=64)
val = data.load("membranes", "val", n=8, size=64)

def train_small_unet():
    '''A fresh small U-Net, trained for four epochs; returns the History.'''
    net = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0.5, kernel_initializer="he_normal", seed=0)
    return fit(net, train, val, epochs=4, batch_size=4, optimizer="adam", learning_rate=3e-3, seed=0, verbose=0)

with use_student_ops(**mine) as calls:
    yours = train_small_unet()
package = train_small_unet()

fig, ax = plt.subplots(1, 2, figsize=(10, 3.4), dpi=100)
for hist, name, style in [(yours, "your ops", "-"), (package, "package's ops", "--")]:
    epochs = range(1, len(hist.history["loss"]) + 1)
    ax[0].plot(epochs, hist.history["loss"], style, color=plt.cm.viridis(0.2), label=f"{name}: train")
    ax[0].plot(epochs, hist.history["val_loss"], style, color=plt.cm.viridis(0.7), label=f"{name}: validation")
    ax[1].plot(epochs, hist.history["val_dice"], style, color=plt.cm.viridis(0.45), label=name)
ax[0].set(xlabel="epoch", ylabel="binary cross-entropy", title="The loss falls, the two runs on top of each other")
ax[1].set(xlabel="epoch", ylabel="validation Dice (threshold 0.5)", ylim=(0, 1), title="Validation Dice rises")
for a in ax:
    a.legend(fontsize=8); a.set_xticks(range(1, len(yours.history["loss"]) + 1))
fig.tight_layout(); plt.show()

h, p = yours.history, package.history
print("your ops that training never called:", sorted(set(your_ops) - set(calls)),
      "(the loss is computed from the head's logits, chapter 07)")
print("training loss fell from the first epoch to the last:", h["loss"][-1] < h["loss"][0])
print("validation Dice after 4 epochs above 0.3:", h["val_dice"][-1] > 0.3)
gap = max(abs(a - b) / b for a, b in zip(h["loss"] + h["val_loss"], p["loss"] + p["val_loss"]))
print("every epoch's loss within 1 % of the package's run:", gap < 0.01)

# %% [markdown]
# That is the whole network, forward, backward and training, running on code you wrote: every op but the
# head's sigmoid, which training skips by computing the loss from the logits (chapter 07). What the package
# adds on top is speed (chapter 09's Numba and CuPy kernels, with the same signatures) and the rest of the
# training machinery (augmentation, checkpoints, the paper's weighted loss).
#
# **Exercises in this chapter** (each writes a forward and its backward): 1. `conv2d` / `conv2d_backward`
# with `im2col` and `col2im` (named mistakes: the kernel flipped, the extra padding pixel before, symmetric
# $k // 2$ padding, the bias forgotten); 2. `maxpool2d` / `maxpool2d_backward` (every tied maximum, the last
# maximum, odd sizes not floored); 3. `conv2d_transpose` / `conv2d_transpose_backward` (the kernel flipped,
# the kernel read as $(K_H, K_W, C, F)$, PyTorch's crop, the bias forgotten); 4. `relu`, `sigmoid` and their
# backward passes (gradient 1 at 0, the mask from $dy$, the mask forgotten; $x$ for $y$, $dy$ forgotten,
# $y(1 - y)$ forgotten, overflow); 5. `concatenate` / `concatenate_backward` (halves swapped, equal halves,
# $[skip, up]$); 6. `dropout` / `dropout_backward` (chapter 05b's check).
