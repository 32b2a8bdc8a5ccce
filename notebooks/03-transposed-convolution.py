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
# U-Net's decoder), forward and backward:
# 1. `conv_transpose_scatter`: the forward pass as a **scatter-add** of the kernel, then Keras's crop and the bias;
# 2. `conv_transpose_backward`: its gradients $dx, dw, db$;
# 3. `overlap_counts`: how many kernel stamps cover each output pixel, the arithmetic behind the
#    **checkerboard artifact**.
#
# **What you will check:** each function against the package's reference (`ops.conv2d_transpose`,
# `ops.conv2d_transpose_backward`); the check names the classic mistake when your answer makes one. The package
# and your functions are checked against `keras.layers.Conv2DTranspose` (float32, `rtol = atol = 1e-5`, and
# Keras 3's output sizes) and TensorFlow's `tf.GradientTape` (float64), the backward pass also against central
# differences. On the way you will see that a transposed convolution is the **gradient of a strided
# convolution**, and why the U-Net's $2\times2$, stride-2 kernel avoids one kind of checkerboard but not another.

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
ax[1].set_xlabel("input pixel (3x3)"); ax[1].set_ylabel("output pixel (7x7)"); ax[1].set_xticks(range(0, 9, 4))
fig.suptitle("A strided convolution is a sparse matrix; the transposed convolution is its transpose", fontsize=10)
fig.tight_layout(); plt.show()



# %% [markdown]
# ## 2. The same thing as a scatter-add
#
# Read $C^\top$ column by column: input pixel $x_{ij}$ contributes $x_{ij}$ times the (unflipped) kernel, placed
# at $(i s, j s)$ of the output. Each input pixel **stamps** the kernel onto a canvas, and overlapping stamps add.
# With $x$: $(N, H, W, C_{\text{in}})$ and Keras's kernel $w$: $(K_H, K_W, F, C_{\text{in}})$,
# $$\text{full}_{n,\; i s + a,\; j s + q,\; f} \mathrel{+}= \sum_c x_{n,i,j,c}\; w_{a,q,f,c}
# \qquad (0 \le a < K_H,\ 0 \le q < K_W).$$
# The stamps cover $(H - 1)s + K_H$ rows. **Worked example** ($1 \times 2$ input, a $1\times3$ kernel, stride 2,
# one channel, written along one axis): $x = (1, 10)$ and $w = (1, 2, 3)$ stamp $(1, 2, 3)$ at column 0 and
# $(10, 20, 30)$ at column 2, so full $= (1, 2, 3 + 10, 20, 30) = (1, 2, 13, 20, 30)$: column 2 is covered by
# both stamps.

# %%
full_1d = ops.conv2d_transpose(np.array([1.0, 10.0]).reshape(1, 1, 2, 1), np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1),
                               strides=(1, 2), padding="valid")[0]
print("full canvas of the worked example:", full_1d[0, 0, :, 0])

# %% [markdown]
# ## 3. Output sizes and Keras's crop
#
# Without `output_padding`, Keras 3's `Conv2DTranspose` gives, along each axis,
# $$n_{\text{out}} = i\,s + \max(k - s,\ 0) \quad(\texttt{valid}), \qquad n_{\text{out}} = i\,s \quad(\texttt{same}),$$
# (`ops.conv_transpose_output_size`). For $k \ge s$ the `valid` size is the full canvas $(i - 1)s + k$; for $k < s$
# Keras appends $s - k$ rows of zeros (bias only) that no stamp reaches. `same` keeps $i\,s$ rows of the full
# canvas and drops the $k - s$ surplus rows with TensorFlow's rule for `same` padding: $\lfloor (k - s)/2 \rfloor$
# at the **start** and the rest at the **end** (`keras_crop_start(k, s, padding)` gives the start, derived from
# Keras's own padding formula). So $k = 3, s = 2$ keeps `full[0:2i]`, $k = 4, s = 2$ keeps `full[1:2i + 1]`, and the
# U-Net's $k = 2, s = 2$ crops nothing. (PyTorch's `ConvTranspose2d(k=3, s=2, padding=1, output_padding=1)` keeps
# `full[1:2i + 1]` instead: its output is shifted one pixel against Keras's.) A transposed convolution does
# **not** invert the size map of a convolution in general: stride-2 `valid` convolutions send both 7 and 8 to 3,
# and 3 can only go back to one of them. The formulas against Keras's own layer:

# %%
all_ok = True
print(f"{'i':>3} {'k':>2} {'s':>2} {'padding':>8} {'formula':>8} {'Keras':>6} {'crop start':>11}")
for i, k, s, padding in [(16, 2, 2, "valid"), (16, 2, 2, "same"), (5, 3, 2, "valid"), (5, 3, 2, "same"),
                         (5, 4, 2, "same"), (5, 1, 3, "valid"), (5, 3, 1, "same")]:
    layer = keras.layers.Conv2DTranspose(1, k, strides=s, padding=padding)
    keras_size = layer.compute_output_shape((1, i, i, 1))[1]
    formula = ops.conv_transpose_output_size(i, k, s, padding)
    all_ok &= formula == keras_size and keras_crop_start(k, s, padding) == (max(k - s, 0) // 2 if padding == "same" else 0)
    print(f"{i:>3} {k:>2} {s:>2} {padding:>8} {formula:>8} {keras_size:>6} {keras_crop_start(k, s, padding):>11}")
print("output sizes agree with Keras, and the crop starts at floor((k - s) / 2) for 'same':", all_ok)

# %% [markdown]
# **Exercise 1.** Write `conv_transpose_scatter(x, w, b, s, padding)`: Keras's `Conv2DTranspose` with a loop over
# the input pixels. Make a zero canvas of $\max((H - 1)s + K_H,\ H s)$ rows and $\max((W - 1)s + K_W,\ W s)$
# columns (the second term covers $k < s$), stamp the kernel of every input pixel onto it, keep $OH \times OW$
# pixels from row and column $\lfloor (k - s)/2 \rfloor$ (`same`, $k > s$) or 0, and add `b`. Hint:
# `np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)` is the stamp of pixel $(i, j)$ for the whole batch,
# $(N, K_H, K_W, F)$.

# %%
from unet_scratch.exercises.ch03 import check_conv_transpose_scatter

def conv_transpose_scatter(x, w, b, s, padding):
    """Keras Conv2DTranspose as a scatter-add of the unflipped kernel, then the crop, then + b.

    x: (N, H, W, C_in), w: (KH, KW, F, C_in) (Keras's layout), b: (F,), s: int (both axes),
    padding: 'valid' or 'same'. Returns y: (N, OH, OW, F), OH = H*s ('same') or H*s + max(KH - s, 0) ('valid').
    """
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    oh, ow = h * s, wd * s
    if padding == "valid":
        oh, ow = oh + max(kh - s, 0), ow + max(kw - s, 0)
    top = max(kh - s, 0) // 2 if padding == "same" else 0
    left = max(kw - s, 0) // 2 if padding == "same" else 0
    full = np.zeros((n, max((h - 1) * s + kh, h * s), max((wd - 1) * s + kw, wd * s), f))
    for i in range(h):
        for j in range(wd):
            full[:, i * s:i * s + kh, j * s:j * s + kw, :] += np.einsum("nc,aqfc->naqf", x[:, i, j, :], w)
    return full[:, top:top + oh, left:left + ow, :] + b
    ### END SOLUTION

check_conv_transpose_scatter(conv_transpose_scatter);

# %% [markdown]
# ### Verification against `keras.layers.Conv2DTranspose`
#
# The package's `ops.conv2d_transpose` computes the same thing the other way, as the input gradient of a
# convolution (section 1); the check above compared yours with it. Now both against a Keras layer holding the
# same `w` of shape $(K_H, K_W, F, C_{\text{in}})$ and `b`, in float32:

# %%
def keras_conv_transpose(x, w, b, strides, padding):
    layer = keras.layers.Conv2DTranspose(w.shape[2], w.shape[:2], strides=strides, padding=padding)
    layer.build(x.shape)
    layer.set_weights([w, b])
    return np.asarray(layer(x))

ok = {"ops": True, "yours": True}
for x_shape, k, s, padding in [((2, 8, 8, 4), 2, 2, "valid"), ((2, 8, 8, 4), 2, 2, "same"),
                               ((1, 5, 6, 3), 3, 2, "valid"), ((1, 5, 6, 3), 3, 2, "same"),
                               ((1, 5, 5, 2), 4, 2, "same"), ((1, 5, 5, 2), 3, 1, "same"),
                               ((1, 4, 4, 2), 1, 3, "valid")]:
    xf = rng.standard_normal(x_shape).astype(np.float32)
    wf = rng.standard_normal((k, k, 3, x_shape[3])).astype(np.float32)
    bf = rng.standard_normal(3).astype(np.float32)
    theirs = keras_conv_transpose(xf, wf, bf, s, padding)
    for name, ours in [("ops", ops.conv2d_transpose(xf, wf, bf, s, padding)[0]),
                       ("yours", conv_transpose_scatter(xf, wf, bf, s, padding))]:
        ok[name] &= ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
print("7 configurations, ops.conv2d_transpose == keras.layers.Conv2DTranspose (rtol = atol = 1e-5):", ok["ops"])
print("7 configurations, your conv_transpose_scatter == keras.layers.Conv2DTranspose:                ", ok["yours"])

# %% [markdown]
# ## 4. The backward pass
#
# Since $y = C^\top x + b$, the chain rule gives $dx = (C^\top)^\top dy = C\,dy$: **the gradient of a transposed
# convolution is the ordinary convolution** `conv2d(dy, w)`, with the same kernel, strides and padding, which
# shrinks $dy$ back to the size of $x$. Computing $dx$ as another *transposed* convolution of $dy$ would grow it
# instead. In the scatter picture: put $dy$ back on the full canvas where the crop took it from (zeros elsewhere),
# call it $d\text{full}$; input pixel $(i, j)$ stamped the window $d\text{full}[n,\ is : is + K_H,\ js : js + K_W,\ :]$,
# so it **gathers** from that window:
# $$dx_{n,i,j,c} = \sum_{a,q,f} d\text{full}_{n,\,is + a,\,js + q,\,f}\; w_{a,q,f,c}, \qquad
# dw_{a,q,f,c} = \sum_{n,i,j} d\text{full}_{n,\,is + a,\,js + q,\,f}\; x_{n,i,j,c}, \qquad
# db_f = \sum_{n,i,j} dy_{n,i,j,f}.$$
# Shapes: $dy$: $(N, OH, OW, F)$, $dx$: $(N, H, W, C_{\text{in}})$, $dw$: $(K_H, K_W, F, C_{\text{in}})$ (the
# kernel's own layout), $db$: $(F,)$. **Worked example** (the 1-D one of section 2, $x = (1, 10)$, $w = (1, 2, 3)$)
# with $dy = (1, 0, 0, 0, 1)$: pixel 0 gathers $dy_{0:3} \cdot w = 1$, pixel 1 gathers $dy_{2:5} \cdot w = 3$, so
# $dx = (1, 3)$; $dw_a = dy_a x_0 + dy_{2 + a} x_1 = (1, 0, 10)$; $db = 2$.

# %%
_, cache_1d = ops.conv2d_transpose(np.array([1.0, 10.0]).reshape(1, 1, 2, 1),
                                   np.array([1.0, 2.0, 3.0]).reshape(1, 3, 1, 1), np.zeros(1), (1, 2), "valid")
dx_1d, dw_1d, db_1d = ops.conv2d_transpose_backward(np.array([1.0, 0, 0, 0, 1]).reshape(1, 1, 5, 1), cache_1d)
print("dx:", dx_1d.ravel(), " dw:", dw_1d.ravel(), " db:", db_1d)

# %% [markdown]
# **Exercise 2.** Write `conv_transpose_backward(dy, x, w, s, padding)`: the three gradients above, with a loop
# over the input pixels (the adjoint of your scatter). Make $d\text{full}$ the size of your canvas, copy `dy`
# into it at the crop's position, then gather. Hint: `np.einsum("naqf,aqfc->nc", window, w)` and
# `np.einsum("naqf,nc->aqfc", window, x[:, i, j, :])`.

# %%
from unet_scratch.exercises.ch03 import check_conv_transpose_backward

def conv_transpose_backward(dy, x, w, s, padding):
    """Gradients of y = conv_transpose_scatter(x, w, b, s, padding) given dy = dL/dy.

    dy: (N, OH, OW, F), x: (N, H, W, C_in), w: (KH, KW, F, C_in).
    Returns (dx, dw, db): (N, H, W, C_in), (KH, KW, F, C_in), (F,).
    """
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    oh, ow = dy.shape[1:3]
    top = max(kh - s, 0) // 2 if padding == "same" else 0
    left = max(kw - s, 0) // 2 if padding == "same" else 0
    d_full = np.zeros((n, max((h - 1) * s + kh, h * s), max((wd - 1) * s + kw, wd * s), f))
    d_full[:, top:top + oh, left:left + ow, :] = dy
    dx, dw = np.zeros(x.shape), np.zeros(w.shape)
    for i in range(h):
        for j in range(wd):
            window = d_full[:, i * s:i * s + kh, j * s:j * s + kw, :]            # (N, KH, KW, F)
            dx[:, i, j, :] = np.einsum("naqf,aqfc->nc", window, w)
            dw += np.einsum("naqf,nc->aqfc", window, x[:, i, j, :])
    return dx, dw, dy.sum(axis=(0, 1, 2))
    ### END SOLUTION

check_conv_transpose_backward(conv_transpose_backward);

# %% [markdown]
# ### Verification: TensorFlow's gradients and central differences
#
# `ops.conv2d_transpose_backward` uses the identities instead of loops: $dx$ = `conv2d(dy, w)`, and $dw$ is that
# convolution's weight gradient with the roles swapped ($dy$ as the input, $x$ as the upstream gradient). Both it
# and your loops against `tf.GradientTape` on a float64 `keras.layers.Conv2DTranspose`, for
# $L = \sum y \odot dy$ (agreement to rounding, $\sim 10^{-15}$; the threshold is $10^{-10}$):

# %%
def tf_conv_transpose_gradients(x, w, b, dy, strides, padding):
    layer = keras.layers.Conv2DTranspose(w.shape[2], w.shape[:2], strides=strides, padding=padding, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([w, b])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt) * dy)
    return [np.asarray(g) for g in tape.gradient(loss, [xt, *layer.trainable_weights])]   # dx, dw (kernel), db

worst = {"ops": 0.0, "yours": 0.0}
for k, s, padding in [(2, 2, "valid"), (2, 2, "same"), (3, 2, "same"), (4, 2, "same"), (3, 1, "valid"),
                      (1, 3, "valid")]:
    x = rng.standard_normal((2, 3, 4, 3))
    w = rng.standard_normal((k, k, 2, 3))
    b = rng.standard_normal(2)
    y, cache = ops.conv2d_transpose(x, w, b, s, padding)
    dy = rng.standard_normal(y.shape)
    expected = tf_conv_transpose_gradients(x, w, b, dy, s, padding)
    for name, got in [("ops", ops.conv2d_transpose_backward(dy, cache)),
                      ("yours", conv_transpose_backward(dy, x, w, s, padding))]:
        for g, e in zip(got, expected):                  # dx, dw, db: largest error relative to the largest value
            worst[name] = max(worst[name], float(np.max(np.abs(g - e)) / np.max(np.abs(e))))
print("6 configurations: ops.conv2d_transpose_backward == tf.GradientTape (relative error < 1e-10):",
      worst["ops"] < 1e-10)
print("6 configurations: your conv_transpose_backward == tf.GradientTape:                        ",
      worst["yours"] < 1e-10)

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
    print(f"k={k} s={s} {padding:>5}: dx, dw, db relative errors to central differences below 1e-7:", ok)
print("dx == conv2d(dy, w) (the gradient is a convolution):", np.allclose(dx, ops.conv2d(dy, w, None, s, padding)[0]))
print("transposed convolution backward verified:", all_ok)

# %% [markdown]
# ## 5. The checkerboard artifact
#
# Feed a **constant** image of ones. With an all-ones kernel every output pixel counts the kernel stamps that
# cover it. With $k = 3$, $s = 2$ the stamps overlap by one row and one column: odd rows are covered once, even
# rows twice, the crossings four times. This **uneven overlap** (it happens whenever $k$ is not divisible by $s$)
# is a checkerboard that a network must learn to cancel, and that often survives as a visible grid in generated
# images. With $k = 2$, $s = 2$ (the U-Net's up-convolution) the stamps tile the plane exactly: each output pixel is
# covered once. ($k = 4$, $s = 2$ overlaps evenly too: $2 \times 2 = 4$ stamps on every pixel away from the border.)
#
# That is not the whole story. With any **non-constant** $2\times2$ kernel, a stride-2 transposed convolution of
# a constant image is a **period-2 tiling** of that kernel: every input pixel stamps the same four values, side by
# side (third panel). So the U-Net's $k = 2, s = 2$ up-convolution has no uneven overlap, but it still paints a
# learned $2\times2$ pattern onto every upsampled pixel; only training can make the four taps agree where a smooth
# output is needed. What $k = 2, s = 2$ avoids is the uneven-overlap part alone. The remedy proposed by Odena,
# Dumoulin and Olah ("Deconvolution and Checkerboard Artifacts", *Distill*, 2016) separates the two jobs:
# **resize, then convolve** (nearest-neighbour or bilinear upsampling followed by an ordinary convolution). A
# constant image stays constant away from the border whatever the kernel (fourth panel: nearest-neighbour
# $\times 2$, then a $3\times3$ `same` convolution with a random kernel, whose zero padding touches only the
# outermost ring).

# %%
ones = np.ones((1, 6, 6, 1))
w_random = np.array([[3.5, 1.0], [0.5, 2.5]]).reshape(2, 2, 1, 1)   # any non-constant 2x2 kernel (a learned one)
w_resize = rng.uniform(0.0, 0.5, (3, 3, 1, 1))                        # any 3x3 kernel
panels = [("k=3, s=2, all-ones kernel:\nuneven overlap (checkerboard)",
           ops.conv2d_transpose(ones, np.ones((3, 3, 1, 1)), strides=2, padding="valid")[0]),
          ("k=2, s=2 (U-Net), all-ones kernel:\nno overlap, flat",
           ops.conv2d_transpose(ones, np.ones((2, 2, 1, 1)), strides=2, padding="valid")[0]),
          ("k=2, s=2 (U-Net), non-constant kernel:\na period-2 tiling of the kernel",
           ops.conv2d_transpose(ones, w_random, strides=2, padding="valid")[0]),
          ("nearest-neighbour x2, then a 3x3 conv:\nflat away from the border",
           ops.conv2d(ones.repeat(2, axis=1).repeat(2, axis=2), w_resize, padding="same")[0])]
fig, ax = plt.subplots(1, 4, figsize=(12, 3.6), dpi=100, layout="constrained")
for a, (title, y) in zip(ax, panels):
    im = a.imshow(y[0, :, :, 0], cmap="viridis", vmin=0, vmax=4)
    a.set_title(title, fontsize=9); a.set_xlabel("output column (pixels)")
    a.xaxis.set_major_locator(plt.MaxNLocator(integer=True)); a.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
ax[0].set_ylabel("output row (pixels)")
fig.colorbar(im, ax=ax, shrink=0.8, label="output value (input: all ones)")
plt.show()

for title, y in panels:
    interior = y[0, 4:8, 4:8, 0]                                   # away from every border
    print(f"{title.splitlines()[0]:<40} {len(np.unique(interior.round(9)))} distinct value(s) in the interior")
k4 = ops.conv2d_transpose(ones, np.ones((4, 4, 1, 1)), strides=2, padding="valid")[0][0, 4:-4, 4:-4, 0]
print("k=4, s=2, all-ones kernel: stamps per interior pixel:", sorted(set(k4.astype(int).ravel().tolist())))
print("k=2, s=2, non-constant kernel: the tile is the kernel itself:",
      bool(np.allclose(panels[2][1][0, :2, :2, 0], w_random[:, :, 0, 0])))

# %% [markdown]
# **Exercise 3.** Write `overlap_counts(n, k, s)`: for a 1-D transposed convolution of an `n`-pixel input with a
# kernel of length `k` and stride `s`, an integer array of length `(n - 1)*s + k` counting the kernel stamps that
# cover each output pixel (the full canvas, before any crop). Try `overlap_counts(4, 3, 2)`: the checkerboard in 1-D.

# %%
from unet_scratch.exercises.ch03 import check_overlap_counts

def overlap_counts(n, k, s):
    """n: input length, k: kernel length, s: stride. Returns an int array of length (n - 1)*s + k."""
    ### BEGIN SOLUTION
    counts = np.zeros((n - 1) * s + k, dtype=int)
    for i in range(n):
        counts[i * s:i * s + k] += 1
    return counts
    ### END SOLUTION

check_overlap_counts(overlap_counts);

# %% [markdown]
# ## Exercises in this chapter
#
# | # | function | writes | the check names these mistakes |
# |---|---|---|---|
# | 1 | `conv_transpose_scatter` | forward, loops | a flipped kernel, Keras's $(K_H, K_W, F_{\text{out}}, C_{\text{in}})$ layout read as $(\dots, C_{\text{in}}, F_{\text{out}})$, the stride ignored, the `same` crop from the wrong side, the bias forgotten |
# | 2 | `conv_transpose_backward` | backward, loops | $dx$ as a transposed convolution of $dy$ instead of a convolution, $dx$ with the kernel flipped, $dw$ with in/out swapped, $db$ forgotten or not summed over the batch |
# | 3 | `overlap_counts` | stamp counting | the stride ignored, a canvas $n s$ long, stamps $s$ wide instead of $k$ |
