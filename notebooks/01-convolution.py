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
# # 01 · Convolution: forward, backward, and what Keras really computes
#
# **What you will build:** the 2-D convolution of a U-Net layer, first as loops (`conv2d_naive`), then as one
# matrix product (`im2col` + GEMM, `conv2d`), and its backward pass $dX, dW, db$.
# **What you will check:** that it matches `keras.layers.Conv2D` to `rtol = atol = 1e-5` in float32, and that
# the backward pass matches central differences in float64 (`unet_scratch.gradcheck`).
#
# On the way: why deep learning's "convolution" is a *cross-correlation*, the output-size formula, Keras's
# `same` padding (the extra pixel goes at the bottom/right), strides, and how the receptive field of the
# U-Net's encoder grows with depth.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import numpy as np
import matplotlib.pyplot as plt
from scipy import signal

from unet_scratch import data
from unet_scratch import ops
from unet_scratch.ops.conv import conv2d_input_gradient, conv2d_weight_gradient
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras

tf = import_tensorflow(); keras = import_keras()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Convolution or cross-correlation?
#
# In signal processing the 2-D **convolution** of an image $x$ with a kernel $w$ flips the kernel:
# $$(x * w)_{ij} = \sum_{a}\sum_{q} x_{i-a,\,j-q}\, w_{aq}.$$
# What every deep-learning framework calls a convolution is the **cross-correlation**, with no flip:
# $$(x \star w)_{ij} = \sum_{a=0}^{K_H-1}\sum_{q=0}^{K_W-1} x_{i+a,\,j+q}\, w_{aq}.$$
# The two differ by a 180° rotation of the kernel: $x \star w = x * \mathrm{rot}_{180}(w)$. For learned kernels
# the difference is immaterial (the network learns the flipped kernel instead), but it matters the moment you
# compare with a framework or copy weights between libraries. With channels, batch, bias and stride $s$, a Keras
# `Conv2D` layer computes (layout NHWC, kernel HWIO):
# $$y_{n,i,j,f} = b_f + \sum_{a,q,c} x^{\text{pad}}_{n,\; i s + a,\; j s + q,\; c}\; w_{a,q,c,f}.$$

# %%
x1 = rng.standard_normal((6, 7))
w1 = rng.standard_normal((3, 3))
y_pkg = ops.conv2d(x1[None, :, :, None], w1[:, :, None, None])[0][0, :, :, 0]

print("package conv2d == scipy correlate2d (no flip):          ",
      np.allclose(y_pkg, signal.correlate2d(x1, w1, mode="valid")))
print("package conv2d == scipy convolve2d with the kernel flipped:",
      np.allclose(y_pkg, signal.convolve2d(x1, w1[::-1, ::-1], mode="valid")))
print("package conv2d == scipy convolve2d (true convolution):     ",
      np.allclose(y_pkg, signal.convolve2d(x1, w1, mode="valid")))

# %%
fig, ax = plt.subplots(1, 2, figsize=(6, 2.8), dpi=100)
for a, k, title in [(ax[0], w1, "kernel w (used by Keras as is)"),
                    (ax[1], w1[::-1, ::-1], "rot180(w) (what convolve2d applies)")]:
    a.imshow(k, cmap="viridis")
    for (i, j), v in np.ndenumerate(k):
        a.text(j, i, f"{v:.1f}", ha="center", va="center", color="w", fontsize=9)
    a.set_title(title, fontsize=9); a.set_xlabel("kernel column q"); a.set_ylabel("kernel row a")
fig.suptitle("A true convolution = cross-correlation with the kernel rotated by 180°", fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown]
# ### A kernel and its feature maps
#
# A kernel is a template: the output is large where the image locally looks like the kernel. The Sobel kernels
# below respond to vertical and horizontal edges; on an EM-like membrane image from `unet_scratch.data` they
# light up the membranes, the structures a U-Net learns to segment.

# %%
images, masks = data.membranes(1, size=96, seed=0)
sobel_x = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]], np.float32)   # responds to left-to-right increases
w_edges = np.stack([sobel_x, sobel_x.T], axis=-1)[:, :, None, :]         # (3, 3, 1, 2): two filters
maps, _ = ops.conv2d(images, w_edges, padding="same")
print("feature maps shape (N, H, W, F):", maps.shape)

fig, ax = plt.subplots(1, 4, figsize=(10, 2.8), dpi=100)
ax[0].imshow(images[0, :, :, 0], cmap="gray"); ax[0].set_title("input (membranes)")
ax[1].imshow(sobel_x, cmap="viridis"); ax[1].set_title("kernel: Sobel x")
ax[2].imshow(maps[0, :, :, 0], cmap="viridis"); ax[2].set_title("feature map: vertical edges")
ax[3].imshow(np.hypot(maps[0, :, :, 0], maps[0, :, :, 1]), cmap="gray"); ax[3].set_title("edge strength")
for a in ax:
    a.set_xlabel("x (pixels)"); a.set_ylabel("y (pixels)")
ax[1].set_xlabel("kernel column q"); ax[1].set_ylabel("kernel row a")
fig.suptitle("One 3x3 kernel, applied everywhere: bright where the image looks like the kernel (edges)")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## 2. Output size, padding and strides
#
# Along one axis, an input of length $n$, a kernel of length $k$ and a stride $s$ give
# $$n_{\text{out}} = \left\lfloor \frac{n - k}{s} \right\rfloor + 1 \quad(\texttt{valid}), \qquad
# n_{\text{out}} = \left\lceil \frac{n}{s} \right\rceil \quad(\texttt{same}).$$
# For `same`, TensorFlow pads $p = \max((n_{\text{out}} - 1)s + k - n,\ 0)$ pixels in total, $\lfloor p/2\rfloor$
# before and $\lceil p/2 \rceil$ **after**: when $p$ is odd the extra pixel goes to the bottom/right
# (PyTorch pads symmetrically, so its results for even kernels are shifted by one pixel).
# `ops.conv_output_size` and `ops.padding_amounts` implement these rules:

# %%
print(f"{'n':>4} {'k':>2} {'s':>2} {'padding':>8} {'out':>4}  (before, after)")
for n, k, s, p in [(128, 3, 1, "same"), (128, 3, 1, "valid"), (128, 2, 1, "same"), (7, 3, 2, "same"),
                   (8, 4, 2, "same"), (7, 3, 2, "valid"), (572, 3, 1, "valid")]:
    print(f"{n:>4} {k:>2} {s:>2} {p:>8} {ops.conv_output_size(n, k, s, p):>4}  {ops.padding_amounts(n, k, s, p)}")

# %% [markdown]
# ## 3. The loop version, then im2col + one matrix product
#
# `ops.conv2d_naive` is the formula above written as loops over batch, output rows, output columns and filters:
# readable and slow. `ops.conv2d` does the same arithmetic as one matrix product. **im2col** copies every
# $K_H \times K_W \times C$ window of the padded input into one row of a matrix
# $\mathrm{cols} \in \mathbb{R}^{(N\,OH\,OW) \times (K_H K_W C)}$, in the order $(a, q, c)$ of the kernel's memory
# layout, so that with $W = $ `w.reshape(KH*KW*C, F)`
# $$Y = \mathrm{cols}\; W \in \mathbb{R}^{(N\,OH\,OW) \times F}, \qquad y = Y\text{.reshape}(N, OH, OW, F).$$
# The price is memory (each pixel is copied up to $K_H K_W$ times); the gain is that a GEMM runs at the speed of
# the BLAS library.

# %%
x4 = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
cols = ops.im2col(x4, 3, 3, 1, 1)
print("x: (1, 4, 4, 1) -> cols:", cols.shape, "= (N*OH*OW, KH*KW*C)")

fig, ax = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100, gridspec_kw={"width_ratios": [1, 2]})
ax[0].imshow(x4[0, :, :, 0], cmap="viridis")
for (i, j), v in np.ndenumerate(x4[0, :, :, 0]):
    ax[0].text(j, i, int(v), ha="center", va="center", color="w")
ax[0].add_patch(plt.Rectangle((-0.45, -0.45), 2.9, 2.9, fill=False, ec="red", lw=2))
ax[0].add_patch(plt.Rectangle((0.55, 0.55), 2.9, 2.9, fill=False, ec="orange", lw=2, ls="--"))
ax[0].set_title("x (4x4): windows 0 (red) and 3 (orange)", fontsize=9)
ax[0].set_xlabel("column (pixels)"); ax[0].set_ylabel("row (pixels)")
ax[1].imshow(cols, cmap="viridis", aspect="auto")
for (i, j), v in np.ndenumerate(cols):
    ax[1].text(j, i, int(v), ha="center", va="center", color="w")
ax[1].set_xlabel("window element (a, q) of the 3x3 kernel, row-major")
ax[1].set_ylabel("output pixel (i, j), row-major")
ax[1].set_title("im2col: one row per window; y = cols @ w.reshape(9, F)", fontsize=9)
fig.suptitle("im2col turns a convolution into a matrix product (pixel 5 appears in all 4 rows)")
fig.tight_layout(); plt.show()

# %%
x = rng.standard_normal((2, 9, 8, 3))
w = rng.standard_normal((3, 3, 3, 4))
b = rng.standard_normal(4)
for strides, padding in [(1, "valid"), (1, "same"), (2, "same"), ((2, 1), "valid")]:
    same_answer = np.allclose(ops.conv2d_naive(x, w, b, strides, padding), ops.conv2d(x, w, b, strides, padding)[0])
    print(f"strides {strides!s:>6}, {padding:>5}: loops == im2col/GEMM:", same_answer)


# %% [markdown]
# ### Verification against `keras.layers.Conv2D`
#
# Build a Keras layer, copy our `w` and `b` into it, and compare outputs in float32 with
# `rtol = atol = 1e-5` (the project's forward tolerance). The cases include Keras's asymmetric `same` padding:
# a $2\times2$ kernel and a $4 \times 4$ kernel with stride 2.

# %%
def keras_conv(x, w, b, strides, padding):
    layer = keras.layers.Conv2D(w.shape[3], w.shape[:2], strides=strides, padding=padding)
    layer.build(x.shape)
    layer.set_weights([w, b])
    return np.asarray(layer(x))

worst, all_ok = 0.0, True
for x_shape, k, strides, padding in [((2, 9, 9, 3), 3, 1, "same"), ((2, 9, 9, 3), 3, 1, "valid"),
                                     ((1, 8, 8, 2), 2, 1, "same"), ((1, 9, 7, 2), 3, 2, "same"),
                                     ((1, 10, 10, 2), 4, 2, "same"), ((1, 11, 10, 2), 3, 2, "valid"),
                                     ((1, 16, 16, 1), 3, 1, "same")]:
    xf = rng.standard_normal(x_shape).astype(np.float32)
    wf = rng.standard_normal((k, k, x_shape[3], 5)).astype(np.float32)
    bf = rng.standard_normal(5).astype(np.float32)
    ours, theirs = ops.conv2d(xf, wf, bf, strides, padding)[0], keras_conv(xf, wf, bf, strides, padding)
    all_ok &= ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    worst = max(worst, np.max(np.abs(ours - theirs)))
print("7 configurations, shapes and values match keras.layers.Conv2D (rtol = atol = 1e-5):", bool(all_ok))
print("largest absolute difference below 1e-5:", worst < 1e-5)

# %% [markdown]
# ## 4. The backward pass
#
# Take one channel, stride 1, `valid` padding: $y_{ij} = b + \sum_{a,q} x_{i+a,\,j+q}\,w_{aq}$, and let
# $dy_{ij} = \partial L / \partial y_{ij}$. Each output depends on $b$ with coefficient 1, on $w_{aq}$ through
# $x_{i+a,j+q}$, and on $x_{uv}$ through $w_{u-i,\,v-j}$. The chain rule gives
#
# $$\frac{\partial L}{\partial b} = \sum_{i,j} dy_{ij}, \qquad
# \frac{\partial L}{\partial w_{aq}} = \sum_{i,j} dy_{ij}\; x_{i+a,\,j+q} = (x \star dy)_{aq},$$
#
# $$\frac{\partial L}{\partial x_{uv}} = \sum_{i,j} dy_{ij}\; w_{u-i,\,v-j}
# = \sum_{a,q} dy^{\text{pad}}_{u+a,\,v+q}\; \mathrm{rot}_{180}(w)_{aq}.$$
#
# So $dW$ is the cross-correlation of the input with $dy$, and $dX$ is a **full** cross-correlation of $dy$
# (zero-padded by $K-1$ on every side) with the kernel **rotated by 180°**: a true convolution of $dy$ with $w$.
# With channels, $dx_{\cdot,\cdot,c} = \sum_f dy_{\cdot,\cdot,f} \star_{\text{full}} \mathrm{rot}_{180}(w_{\cdot,\cdot,c,f})$ and
# $dw_{\cdot,\cdot,c,f} = x_{\cdot,\cdot,c} \star dy_{\cdot,\cdot,f}$, summed over the batch; $db_f = \sum_{n,i,j} dy_{n,i,j,f}$.
#
# In im2col form these are two matrix products, $dW = \mathrm{cols}^\top dY$ and
# $d\mathrm{cols} = dY\,W^\top$, followed by **col2im** (scatter-add each row back to its window). That is what
# `ops.conv2d_backward` does. First the formulas above, with SciPy, against the package:

# %%
x = rng.standard_normal((1, 7, 6, 2))
w = rng.standard_normal((3, 3, 2, 4))
y, cache = ops.conv2d(x, w, np.zeros(4))
dy = rng.standard_normal(y.shape)
dx, dw, db = ops.conv2d_backward(dy, cache)

dx_formula = np.stack([sum(signal.correlate2d(dy[0, :, :, f], w[::-1, ::-1, c, f], mode="full") for f in range(4))
                       for c in range(2)], axis=-1)
dw_formula = np.stack([np.stack([signal.correlate2d(x[0, :, :, c], dy[0, :, :, f], mode="valid") for f in range(4)],
                                axis=-1) for c in range(2)], axis=2)
print("dX == full correlation of dy with rot180(w):", np.allclose(dx[0], dx_formula))
print("dW == correlation of x with dy:             ", np.allclose(dw, dw_formula))
print("db == sum of dy:                            ", np.allclose(db, dy.sum(axis=(0, 1, 2))))

# %% [markdown]
# ### Gradient check in float64
#
# With strides and `same` padding the formulas get index bookkeeping, but the im2col derivation does not change.
# The definitive test is numerical: for $L = \sum y \odot dy$, compare each analytic gradient with central
# differences $\big(L(\theta + h) - L(\theta - h)\big) / 2h$ in float64 (`unet_scratch.gradcheck`), with the
# relative error $\lVert a - b \rVert / (\lVert a \rVert + \lVert b \rVert)$ required below $10^{-7}$.

# %%
all_ok = True
for strides, padding in [(1, "valid"), (1, "same"), (2, "same"), (2, "valid")]:
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((3, 3, 3, 2))
    b = rng.standard_normal(2)
    y, cache = ops.conv2d(x, w, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    dx, dw, db = ops.conv2d_backward(dy, cache)
    forward = lambda _: ops.conv2d(x, w, b, strides, padding)[0]
    errors = {name: rel_error(analytic, numeric_gradient(forward, param, dy))
              for name, analytic, param in [("dx", dx, x), ("dw", dw, w), ("db", db, b)]}
    ok = all(e < 1e-7 for e in errors.values())
    all_ok &= ok
    print(f"strides {strides}, {padding:>5}: dx, dw, db relative errors all below 1e-7:", ok)
print("backward pass verified:", all_ok)

# %% [markdown]
# ## 5. Receptive field: how far one output pixel can see
#
# A $3\times3$ convolution lets each output pixel see a $3\times3$ patch; a second one on top sees $5\times5$. A
# pooling (or any stride-$s$ layer) multiplies the step ("jump") between neighbouring pixels by $s$, so every later
# layer grows the field faster. With $r_0 = 1$, $j_0 = 1$ and layers $(k_\ell, s_\ell)$:
# $$r_\ell = r_{\ell-1} + (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1}\, s_\ell.$$
# For the U-Net's encoder (two $3\times3$ convs, then a $2\times2$ pool, four times, then the bottleneck):

# %%
layers = []
for level in range(1, 5):
    layers += [(f"enc{level}_conv1", 3, 1), (f"enc{level}_conv2", 3, 1), (f"pool{level}", 2, 2)]
layers += [("bottleneck_conv1", 3, 1), ("bottleneck_conv2", 3, 1)]
r, jump, fields = 1, 1, []
for _, k, s in layers:
    r, jump = r + (k - 1) * jump, jump * s
    fields.append(r)
print("receptive field at the bottleneck:", fields[-1], "x", fields[-1], "pixels")

fig, ax = plt.subplots(figsize=(8, 3.5), dpi=100)
ax.plot(range(1, len(layers) + 1), fields, "o-", color=plt.cm.viridis(0.3))
for i, (name, k, s) in enumerate(layers):
    if s == 2:
        ax.axvline(i + 1, color="gray", ls=":", lw=1)
ax.set_xticks(range(1, len(layers) + 1))
ax.set_xticklabels([n for n, _, _ in layers], rotation=60, ha="right", fontsize=7)
ax.set_xlabel("layer of the U-Net encoder (dotted: 2x2 max-pool)"); ax.set_ylabel("receptive field (pixels)")
ax.set_title("Each pooling doubles how fast the receptive field grows: 140 px at the bottleneck")
fig.tight_layout(); plt.show()

# %% [markdown]
# The receptive field can be *measured* with the backward pass: send a gradient of 1 from one output pixel
# back to the input and see which input pixels receive something. Max-pooling routes its gradient to one winner
# (chapter 02), so for this measurement each pool is replaced by a $2\times2$ stride-2 all-ones convolution, which
# reads exactly the same window; every conv kernel is all ones, so no gradient cancels.

# %%
shapes = [(1, 188, 188, 1)]                                   # a valid-padding tile, large enough
for _, k, s in layers:
    shapes.append((1, ops.conv_output_size(shapes[-1][1], k, s, "valid"),
                   ops.conv_output_size(shapes[-1][2], k, s, "valid"), 1))
g = np.zeros(shapes[-1]); g[0, shapes[-1][1] // 2, shapes[-1][2] // 2, 0] = 1.0
for (_, k, s), x_shape in zip(reversed(layers), reversed(shapes[:-1])):
    g = conv2d_input_gradient(g, np.ones((k, k, 1, 1)), x_shape, s, "valid")
rows, cols_ = np.nonzero(g[0, :, :, 0])
print("measured receptive field:", rows.max() - rows.min() + 1, "x", cols_.max() - cols_.min() + 1,
      "| formula:", fields[-1], "| agree:", rows.max() - rows.min() + 1 == fields[-1])

# %% [markdown]
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases and says what is wrong.

# %% [markdown]
# **Exercise 1.** Write `conv_output_size(n, k, s, padding)`: the output length along one axis of a Keras
# `Conv2D` for an input of length `n`, kernel length `k`, stride `s` and padding `'same'` or `'valid'`.

# %%
from unet_scratch.exercises.ch01 import check_conv2d_loop, check_conv_output_size, check_receptive_field

def conv_output_size(n, k, s, padding):
    ### BEGIN SOLUTION
    if padding == "same":
        return -(-n // s)
    return (n - k) // s + 1
    ### END SOLUTION

check_conv_output_size(conv_output_size)


# %% [markdown]
# **Exercise 2.** Write `conv2d_loop(x, w, b, stride)`: a `valid` Keras convolution (cross-correlation,
# no kernel flip) with loops over the output pixels. `x: (N, H, W, C)`, `w: (KH, KW, C, F)`, `b: (F,)`,
# the same stride along both axes; returns `y: (N, OH, OW, F)`. (Hint: `np.tensordot(window, w, axes=3)`
# contracts a `(N, KH, KW, C)` window with the kernel.)

# %%
def conv2d_loop(x, w, b, stride):
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, f), dtype=x.dtype)
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]
            y[:, i, j, :] = np.tensordot(window, w, axes=3) + b
    return y
    ### END SOLUTION

check_conv2d_loop(conv2d_loop)


# %% [markdown]
# **Exercise 3.** Write `receptive_field(layers)`: the receptive field (pixels along one axis) of one output
# pixel of a stack of layers given as `[(kernel_size, stride), ...]`, first layer first (an empty stack: 1).

# %%
def receptive_field(layers):
    ### BEGIN SOLUTION
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r
    ### END SOLUTION

check_receptive_field(receptive_field)

# %% [markdown]
# **Exercises in this chapter:** 1. `conv_output_size` (valid and same, with strides), 2. `conv2d_loop`
# (a convolution by loops: cross-correlation, no flip), 3. `receptive_field` (140 pixels at the U-Net's
# bottleneck).
