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
# # 03 · Transposed convolution: the U-Net's way back up
#
# **What you will build:** the transposed convolution (Keras's `Conv2DTranspose`, the "up-convolution" of the
# U-Net's decoder) in two equivalent ways: as the **gradient of a strided convolution**, and as a **scatter-add**
# of the kernel, written with loops.
# **What you will check:** both against `ops.conv2d_transpose` and `keras.layers.Conv2DTranspose`
# (float32, `rtol = atol = 1e-5`), the Keras 3 output sizes, and the backward pass by a float64 gradient check.
# You will also see the **checkerboard artifact** and why the U-Net's $2\times2$, stride-2 kernel avoids it.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import numpy as np
import matplotlib.pyplot as plt

from unet_scratch import ops
from unet_scratch.ops.conv import conv2d_input_gradient
from unet_scratch.ops.conv_transpose import keras_crop_start
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras

tf = import_tensorflow(); keras = import_keras()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. The transpose of a convolution
#
# A convolution is linear in its input, so for a fixed kernel it is a matrix: flatten the input $z$ and the output,
# and $\mathrm{conv}(z) = C z$. A $3\times3$ stride-2 `valid` convolution maps a $7\times7$ image to $3\times3$, so
# $C \in \mathbb{R}^{9 \times 49}$. Its **transpose** $C^\top \in \mathbb{R}^{49 \times 9}$ maps $3\times3$ back to
# $7\times7$: that is the transposed convolution. (It is *not* the inverse: $C^\top C \ne I$.)
#
# From chapter 01, the backward pass of $y = Cz$ is $dz = C^\top dy$. So **the transposed convolution of $x$ is the
# input gradient of a convolution, with $x$ in the place of $dy$**:
# $$\mathrm{conv\_transpose}(x;\,w) = C^\top x = \texttt{conv2d\_input\_gradient}(dy = x,\ w).$$
# This is how TensorFlow implements it (`conv2d_backprop_input`), and how `ops.conv2d_transpose` does too. Keras
# stores this layer's kernel as $(K_H, K_W, F_{\text{out}}, C_{\text{in}})$: output channels *before* input channels,
# exactly the layout of the convolution it is the transpose of.

# %%
w = rng.standard_normal((3, 3, 1, 1))
C = np.stack([ops.conv2d(e.reshape(1, 7, 7, 1), w, strides=2)[0].ravel() for e in np.eye(49)], axis=1)
x = rng.standard_normal((1, 3, 3, 1))
y_matrix = (C.T @ x.ravel()).reshape(1, 7, 7, 1)
y_ops = ops.conv2d_transpose(x, w, strides=2, padding="valid")[0]
print("C:", C.shape, "  conv2d_transpose output:", y_ops.shape)
print("C^T x == ops.conv2d_transpose(x):             ", np.allclose(y_matrix, y_ops))
print("== conv2d_input_gradient(dy = x) of the conv: ",
      np.allclose(y_ops, conv2d_input_gradient(x, w, (1, 7, 7, 1), 2)))
z = rng.standard_normal((1, 7, 7, 1))
print("adjoint: <conv(z), x> == <z, conv_transpose(x)>:",
      np.isclose(np.sum(ops.conv2d(z, w, strides=2)[0] * x), np.sum(z * y_ops)))

fig, ax = plt.subplots(1, 2, figsize=(9, 3), dpi=100, gridspec_kw={"width_ratios": [49, 14]})
ax[0].imshow(C, cmap="viridis", aspect="auto")
ax[0].set_title("C: conv 7x7 -> 3x3 (one row per output pixel)", fontsize=9)
ax[0].set_xlabel("input pixel index (7x7, row-major)"); ax[0].set_ylabel("output pixel index (3x3)")
ax[1].imshow(C.T, cmap="viridis", aspect="auto")
ax[1].set_title("C^T: 3x3 -> 7x7", fontsize=9)
ax[1].set_xlabel("input pixel (3x3)"); ax[1].set_ylabel("output pixel (7x7)")
fig.suptitle("A strided convolution is a sparse matrix; the transposed convolution is its transpose", fontsize=10)
fig.tight_layout(); plt.show()


# %% [markdown]
# ## 2. The same thing as a scatter-add
#
# Read $C^\top$ column by column: input pixel $x_{ij}$ contributes $x_{ij}$ times the (unflipped) kernel, placed
# at $(i s, j s)$ of the output. Each input pixel **stamps** the kernel onto a canvas, and overlapping stamps add:
# $$\text{full}_{n,\; i s + a,\; j s + q,\; f} \mathrel{+}= \sum_c x_{n,i,j,c}\; w_{a,q,f,c}.$$
# The full canvas has $(H - 1)s + K_H$ rows. Keras then keeps $OH$ rows of it, starting at row
# `keras_crop_start(k, s, padding)` (0 for `valid`; for `same` the rows that the padding of the matching
# convolution would have cut, TensorFlow's split with the extra pixel at the end). Here it is with loops:

# %%
def conv_transpose_scatter(x, w, s, padding):
    # x: (N, H, W, C_in), w: (KH, KW, F, C_in) -> (N, OH, OW, F); the same stride s along both axes
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    oh, ow = ops.conv_transpose_output_size(h, kh, s, padding), ops.conv_transpose_output_size(wd, kw, s, padding)
    top, left = keras_crop_start(kh, s, padding), keras_crop_start(kw, s, padding)
    full = np.zeros((n, max((h - 1) * s + kh, top + oh), max((wd - 1) * s + kw, left + ow), f))
    for i in range(h):
        for j in range(wd):
            stamp = np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)        # the kernel scaled by x[n, i, j, :]
            full[:, i * s:i * s + kh, j * s:j * s + kw, :] += stamp
    return full[:, top:top + oh, left:left + ow, :]

all_ok = True
for k, s, padding in [(2, 2, "valid"), (2, 2, "same"), (3, 2, "valid"), (3, 2, "same"), (4, 2, "same"),
                      (3, 1, "same"), (1, 3, "valid")]:
    x = rng.standard_normal((2, 4, 5, 3))
    w = rng.standard_normal((k, k, 2, 3))
    ours = conv_transpose_scatter(x, w, s, padding)
    ok = np.allclose(ours, ops.conv2d_transpose(x, w, strides=s, padding=padding)[0])
    all_ok &= ok
    print(f"k={k} s={s} {padding:>5}: scatter-add {ours.shape} == ops.conv2d_transpose:", ok)
print("the scatter-add and the transposed gradient are the same operation:", all_ok)

# %% [markdown]
# ## 3. Output sizes (Keras 3)
#
# Without `output_padding`, Keras 3's `Conv2DTranspose` gives, along each axis,
# $$n_{\text{out}} = i\,s + \max(k - s,\ 0) \quad(\texttt{valid}), \qquad n_{\text{out}} = i\,s \quad(\texttt{same}),$$
# (`ops.conv_transpose_output_size`). For $k \ge s$ the `valid` size is the full canvas $(i - 1)s + k$; for $k < s$
# Keras appends $s - k$ rows of zeros (bias only) that no stamp reaches. Note that a transposed convolution does
# **not** invert the size map of a convolution in general: stride-2 `valid` convolutions send both $7$ and $8$ to
# $3$, and $3$ can only go back to one of them. The U-Net's $2\times2$, stride 2 gives exactly $2i$ with either
# padding. The shapes of Keras's own layer:

# %%
all_ok = True
print(f"{'i':>3} {'k':>2} {'s':>2} {'padding':>8} {'formula':>8} {'Keras':>6}")
for i, k, s, padding in [(16, 2, 2, "valid"), (16, 2, 2, "same"), (5, 3, 2, "valid"), (5, 3, 2, "same"),
                         (5, 4, 2, "valid"), (5, 1, 3, "valid"), (5, 3, 1, "valid")]:
    layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding)
    keras_size = layer.compute_output_shape((1, i, i, 1))[1]
    formula = ops.conv_transpose_output_size(i, k, s, padding)
    all_ok &= formula == keras_size
    print(f"{i:>3} {k:>2} {s:>2} {padding:>8} {formula:>8} {keras_size:>6}")
print("output sizes agree with Keras:", all_ok)

# %% [markdown]
# ## 4. The checkerboard artifact
#
# Feed a **constant** image of ones and an all-ones kernel. Every output pixel then counts how many kernel stamps
# cover it. With $k = 3$, $s = 2$ the stamps overlap by one row and one column: odd rows are covered once, even rows
# twice, and the corners of the overlaps four times: a **checkerboard** that a network must learn to cancel, and
# that often survives as a visible grid in generated images. With $k = 2$, $s = 2$ (the U-Net's up-convolution)
# the stamps tile the plane exactly: each output pixel is covered once. $k = 4$, $s = 2$ ($k$ divisible by $s$) is
# even too, except at the border.

# %%
ones = np.ones((1, 6, 6, 1))
configs = [(3, 2, "k=3, s=2: uneven overlap"), (2, 2, "k=2, s=2 (U-Net): no overlap"), (4, 2, "k=4, s=2: even overlap")]
fig, ax = plt.subplots(1, 3, figsize=(11, 3.6), dpi=100, layout="constrained")
for a, (k, s, title) in zip(ax, configs):
    counts = ops.conv2d_transpose(ones, np.ones((k, k, 1, 1)), strides=s, padding="valid")[0][0, :, :, 0]
    im = a.imshow(counts, cmap="viridis", vmin=0, vmax=4)
    a.set_title(title, fontsize=9); a.set_xlabel("output column (pixels)")
    interior = sorted(set(counts[k:-k, k:-k].astype(int).ravel().tolist()))
    print(f"{title:<30} stamps per output pixel (interior): {interior}")
ax[0].set_ylabel("output row (pixels)")
fig.colorbar(im, ax=ax, shrink=0.8, label="kernel stamps covering the pixel")
fig.suptitle("Transposed conv of a constant image: a 3x3 stride-2 kernel makes a checkerboard, 2x2 does not",
             fontsize=10)
plt.show()


# %% [markdown]
# ## 5. Verification against `keras.layers.Conv2DTranspose`
#
# Copy our `w` of shape $(K_H, K_W, F, C_{\text{in}})$ and `b` into a Keras layer and compare outputs in float32.

# %%
def keras_conv_transpose(x, w, b, strides, padding):
    layer = keras.layers.Conv2DTranspose(w.shape[2], w.shape[:2], strides=strides, padding=padding)
    layer.build(x.shape)
    layer.set_weights([w, b])
    return np.asarray(layer(x))

all_ok = True
for x_shape, k, s, padding in [((2, 8, 8, 4), 2, 2, "valid"), ((2, 8, 8, 4), 2, 2, "same"),
                               ((1, 5, 6, 3), 3, 2, "valid"), ((1, 5, 6, 3), 3, 2, "same"),
                               ((1, 5, 5, 2), 4, 2, "same"), ((1, 5, 5, 2), 3, 1, "same"),
                               ((1, 4, 4, 2), 1, 3, "valid")]:
    xf = rng.standard_normal(x_shape).astype(np.float32)
    wf = rng.standard_normal((k, k, 3, x_shape[3])).astype(np.float32)
    bf = rng.standard_normal(3).astype(np.float32)
    ours, theirs = ops.conv2d_transpose(xf, wf, bf, s, padding)[0], keras_conv_transpose(xf, wf, bf, s, padding)
    ok = ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    all_ok &= ok
    print(f"x {str(x_shape):>13} k={k} s={s} {padding:>5} -> {str(ours.shape):>14}: matches Keras:", ok)
print("conv2d_transpose equals keras.layers.Conv2DTranspose (rtol = atol = 1e-5):", all_ok)

# %% [markdown]
# ## 6. The backward pass, and a float64 gradient check
#
# Since $y = C^\top x + b$, the chain rule gives $dx = (C^\top)^\top dy = C\,dy$: **the gradient of a transposed
# convolution is the ordinary convolution** `conv2d(dy, w)`, with the same kernel, strides and padding. The kernel
# gradient is the convolution's weight gradient with the roles swapped ($dy$ as the input, $x$ as the upstream
# gradient), and $db_f = \sum_{n,i,j} dy_{n,i,j,f}$. `ops.conv2d_transpose_backward` does exactly this; central
# differences in float64 confirm it:

# %%
all_ok = True
for k, s, padding in [(2, 2, "valid"), (3, 2, "same"), (4, 2, "same"), (3, 1, "valid")]:
    x = rng.standard_normal((2, 3, 4, 3))
    w = rng.standard_normal((k, k, 2, 3))
    b = rng.standard_normal(2)
    y, cache = ops.conv2d_transpose(x, w, b, s, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_transpose_backward(dy, cache)
    forward = lambda _: ops.conv2d_transpose(x, w, b, s, padding)[0]
    ok = all(rel_error(analytic, numeric_gradient(forward, p, dy)) < 1e-7
             for analytic, p in [(dx, x), (dw, w), (db, b)])
    all_ok &= ok
    print(f"k={k} s={s} {padding:>5}: dx, dw, db relative errors below 1e-7:", ok)
print("dx == conv2d(dy, w) (the gradient is a convolution):", np.allclose(dx, ops.conv2d(dy, w, None, s, padding)[0]))
print("transposed convolution backward verified:", all_ok)

# %% [markdown]
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases and says what is wrong.

# %% [markdown]
# **Exercise 1.** Write `conv_transpose_output_size(i, k, s, padding)`: the output length along one axis of a
# Keras 3 `Conv2DTranspose` (no `output_padding`), for `'same'` and `'valid'`.

# %%
from unet_scratch.exercises.ch03 import (check_conv_transpose_output_size, check_overlap_counts,
                                             check_scatter_add)

def conv_transpose_output_size(i, k, s, padding):
    ### BEGIN SOLUTION
    if padding == "same":
        return i * s
    return i * s + max(k - s, 0)
    ### END SOLUTION

check_conv_transpose_output_size(conv_transpose_output_size)


# %% [markdown]
# **Exercise 2.** Write `scatter_add(x, w, s)`: the full canvas of a transposed convolution, built with loops
# over the input pixels. `x: (N, H, W, C_in)`, `w: (KH, KW, F, C_in)`; return
# `full: (N, (H-1)*s + KH, (W-1)*s + KW, F)` with `full[n, i*s + a, j*s + q, f] += sum_c x[n, i, j, c] * w[a, q, f, c]`.

# %%
def scatter_add(x, w, s):
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    full = np.zeros((n, (h - 1) * s + kh, (wd - 1) * s + kw, f))
    for i in range(h):
        for j in range(wd):
            full[:, i * s:i * s + kh, j * s:j * s + kw, :] += np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)
    return full
    ### END SOLUTION

check_scatter_add(scatter_add)


# %% [markdown]
# **Exercise 3.** Write `overlap_counts(n, k, s)`: for a 1-D transposed convolution of an `n`-pixel input with
# a kernel of length `k` and stride `s`, an integer array of length `(n - 1)*s + k` counting the kernel stamps
# that cover each output pixel. (Try `overlap_counts(4, 3, 2)`: the checkerboard in 1-D.)

# %%
def overlap_counts(n, k, s):
    ### BEGIN SOLUTION
    counts = np.zeros((n - 1) * s + k, dtype=int)
    for i in range(n):
        counts[i * s:i * s + k] += 1
    return counts
    ### END SOLUTION

check_overlap_counts(overlap_counts)

# %% [markdown]
# **Exercises in this chapter:** 1. `conv_transpose_output_size` (Keras 3's sizes), 2. `scatter_add`
# (the transposed convolution as stamps of the kernel), 3. `overlap_counts` (why $k=3, s=2$ makes a
# checkerboard and the U-Net's $k=2, s=2$ does not).
