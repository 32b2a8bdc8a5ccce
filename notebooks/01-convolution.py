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
# **What you will build:** the 2-D convolution of a U-Net layer, forward and backward, the way CS231n teaches
# it: first with loops, then fast.
# 1. `conv2d_loop`: the forward pass with loops, `valid` and `same` padding, strides;
# 2. `im2col`: every window of the input as one row of a matrix;
# 3. `conv2d_gemm`: the forward pass as `im2col` + **one** matrix product;
# 4. `conv2d_backward_loop`: the gradients $dx, dw, db$ with loops;
# 5. `col2im`: the adjoint of `im2col`, which adds each row back to its window;
# 6. `conv2d_backward_gemm`: the gradients as two matrix products and `col2im`;
# 7. `receptive_field`: how far one output pixel of the U-Net's encoder can see.
#
# **What you will check:** each function against the package's reference (`ops.conv2d`, `ops.im2col`,
# `ops.col2im`, `ops.conv2d_backward`); the check names the classic mistake when your answer makes one. The
# package itself is checked against `keras.layers.Conv2D` (float32, `rtol = atol = 1e-5`), against TensorFlow's
# `tf.GradientTape` (float64), and against central differences (`unet_scratch.gradcheck`).
#
# On the way: why deep learning's "convolution" is a *cross-correlation*, the output-size formula, TensorFlow's
# `same` padding (the extra pixel goes at the bottom/right), and strides.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import inspect
import time

import numpy as np
import matplotlib.pyplot as plt
from scipy import signal

from unet_scratch import data
from unet_scratch import ops
from unet_scratch.ops.conv import conv2d_input_gradient, pad_input
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
# $$y_{n,i,j,f} = b_f + \sum_{a,q,c} x^{\text{pad}}_{n,\; i s + a,\; j s + q,\; c}\; w_{a,q,c,f},$$
# with $x$: $(N, H, W, C)$, $w$: $(K_H, K_W, C, F)$, $b$: $(F,)$ and $y$: $(N, OH, OW, F)$.

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
ax[1].set_xticks(range(3)); ax[1].set_yticks(range(3))
fig.suptitle("One 3x3 kernel, applied everywhere: bright where the image looks like the kernel (edges)")
fig.tight_layout(); plt.show()


# %% [markdown]
# ## 2. Output size, padding and strides
#
# Along one axis, an input of length $n$, a kernel of length $k$ and a stride $s$ give
# $$n_{\text{out}} = \left\lfloor \frac{n - k}{s} \right\rfloor + 1 \quad(\texttt{valid}), \qquad
# n_{\text{out}} = \left\lceil \frac{n}{s} \right\rceil \quad(\texttt{same}).$$
# A `valid` kernel fits at positions $0, s, 2s, \dots$ as long as it stays inside the input. For `same`,
# TensorFlow pads $p = \max((n_{\text{out}} - 1)s + k - n,\ 0)$ pixels in total, $\lfloor p/2\rfloor$ before and
# $\lceil p/2 \rceil$ **after**: when $p$ is odd (an even kernel at stride 1, for example) the extra pixel goes to
# the bottom/right. PyTorch's `padding='same'` (allowed at stride 1 only) puts it after as well: a $2\times2$
# kernel on an impulse at $(0, 0)$ gives its response at $(0, 0)$ in both frameworks. The common PyTorch idiom
# `padding=k//2` is something else: it pads $k//2$ on **both** sides, which for an even kernel makes the output
# one pixel **larger** than the input. `ops.conv_output_size` and `ops.padding_amounts` implement TensorFlow's
# rules:

# %%
print(f"{'n':>4} {'k':>2} {'s':>2} {'padding':>8} {'out':>4}  (before, after)")
for n, k, s, p in [(128, 3, 1, "same"), (128, 3, 1, "valid"), (128, 2, 1, "same"), (7, 3, 2, "same"),
                   (8, 4, 2, "same"), (7, 3, 2, "valid"), (572, 3, 1, "valid")]:
    print(f"{n:>4} {k:>2} {s:>2} {p:>8} {ops.conv_output_size(n, k, s, p):>4}  {ops.padding_amounts(n, k, s, p)}")

# %% [markdown]
# The impulse test, with a $2\times2$ kernel of ones on a $4\times4$ image that is 1 at $(0, 0)$ and 0 elsewhere:

# %%
impulse = np.zeros((1, 4, 4, 1)); impulse[0, 0, 0, 0] = 1.0
ones_2x2 = np.ones((2, 2, 1, 1))
y_same = ops.conv2d(impulse, ones_2x2, padding="same")[0][0, :, :, 0]
y_half = ops.conv2d(np.pad(impulse, ((0, 0), (1, 1), (1, 1), (0, 0))), ones_2x2)[0][0, :, :, 0]   # k//2 each side
print("'same' (TensorFlow; PyTorch padding='same'):", y_same.shape, "output, nonzero at",
      [tuple(map(int, ij)) for ij in np.argwhere(y_same)])
print("padding=k//2 on both sides (PyTorch padding=1):", y_half.shape, "output, one pixel larger")

# %% [markdown]
# ## 3. The forward pass with loops
#
# The formula of section 1, read literally: for every output pixel $(i, j)$, take the window
# $x^{\text{pad}}[n,\ is : is + K_H,\ js : js + K_W,\ :]$ of shape $(K_H, K_W, C)$, multiply it element by
# element with each filter $w[:, :, :, f]$, sum, and add $b_f$.
#
# **Worked example.** $x$ is the $3\times3$ image $0, 1, \dots, 8$ (row by row), $w = \begin{pmatrix}1 & 2\\ 0 &
# -1\end{pmatrix}$, $b = 0.5$, stride 1, `valid`: the output is $2 \times 2$ and
# $y_{00} = 0\cdot1 + 1\cdot2 + 3\cdot0 + 4\cdot(-1) + 0.5 = -1.5$. With `same` the output is $3\times3$: the padding
# is $(0, 1)$ on both axes, so row 2 and column 2 read one zero row/column, and $y_{22} = 8 \cdot 1 + 0.5 = 8.5$.

# %%
x_ex = np.arange(9.0).reshape(1, 3, 3, 1)
w_ex = np.array([[1.0, 2.0], [0.0, -1.0]]).reshape(2, 2, 1, 1)
b_ex = np.array([0.5])
print("valid:\n", ops.conv2d(x_ex, w_ex, b_ex)[0][0, :, :, 0])
print("same:\n", ops.conv2d(x_ex, w_ex, b_ex, padding="same")[0][0, :, :, 0])

# %% [markdown]
# **Exercise 1.** Write `conv2d_loop(x, w, b, stride, padding)`: a Keras `Conv2D` with a loop over the output
# pixels. Pad `x` yourself for `same`, with the rule of section 2 (the extra pixel after). Hint:
# `np.tensordot(window, w, axes=3)` contracts an $(N, K_H, K_W, C)$ window with the $(K_H, K_W, C, F)$ kernel
# into $(N, F)$. The check runs `valid` and `same`, strides 1 and 2, odd and even kernels.

# %%
from unet_scratch.exercises.ch01 import check_conv2d_loop

def conv2d_loop(x, w, b, stride, padding):
    """Keras Conv2D (cross-correlation, no kernel flip) with loops over the output pixels.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), stride: int (both axes), padding: 'valid' or 'same'.
    Returns y: (N, OH, OW, F).
    """
    ### BEGIN SOLUTION
    n, h, wd, _ = x.shape
    kh, kw, _, f = w.shape
    if padding == "same":
        oh, ow = -(-h // stride), -(-wd // stride)
        ph, pw = max((oh - 1) * stride + kh - h, 0), max((ow - 1) * stride + kw - wd, 0)
        x = np.pad(x, ((0, 0), (ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))   # extra pixel after
    else:
        oh, ow = (h - kh) // stride + 1, (wd - kw) // stride + 1
    y = np.zeros((n, oh, ow, f), dtype=np.result_type(x, w))
    for i in range(oh):
        for j in range(ow):
            window = x[:, i * stride:i * stride + kh, j * stride:j * stride + kw, :]     # (N, KH, KW, C)
            y[:, i, j, :] = np.tensordot(window, w, axes=3) + b                         # (N, F)
    return y
    ### END SOLUTION

check_conv2d_loop(conv2d_loop);

# %% [markdown]
# ## 4. im2col: every window as one row
#
# The loop makes one small matrix product per output pixel, $OH \cdot OW$ of them, each a round trip through
# Python. **im2col** copies every $K_H \times K_W \times C$ window of the padded input into one row of a matrix
# $$\mathrm{cols} \in \mathbb{R}^{(N\,OH\,OW) \times (K_H K_W C)},$$
# rows in the order $(n, i, j)$ and each row in the order $(a, q, c)$ of the kernel's memory layout, so that with
# $W = $ `w.reshape(KH*KW*C, F)`
# $$Y = \mathrm{cols}\; W + b \in \mathbb{R}^{(N\,OH\,OW) \times F}, \qquad y = Y\text{.reshape}(N, OH, OW, F).$$
# The price is memory (each pixel is copied up to $K_H K_W$ times); the gain is that one GEMM runs at the speed
# of the BLAS library. **Worked example:** a $4\times4$ one-channel image and a $3\times3$ kernel give
# $OH = OW = 2$, so `cols` is $(1 \cdot 2 \cdot 2) \times (3 \cdot 3 \cdot 1) = 4 \times 9$; row 0 is the top-left
# window read row by row, `0 1 2 4 5 6 8 9 10`:

# %%
x4 = np.arange(16, dtype=np.float32).reshape(1, 4, 4, 1)
cols = ops.im2col(x4, 3, 3, 1, 1)
print("x: (1, 4, 4, 1) -> cols:", cols.shape, "= (N*OH*OW, KH*KW*C); row 0:", cols[0].astype(int))

fig, ax = plt.subplots(1, 2, figsize=(9, 3.2), dpi=100, gridspec_kw={"width_ratios": [1, 2]})
ax[0].imshow(x4[0, :, :, 0], cmap="viridis")
for (i, j), v in np.ndenumerate(x4[0, :, :, 0]):
    ax[0].text(j, i, int(v), ha="center", va="center", color="w")
ax[0].add_patch(plt.Rectangle((-0.45, -0.45), 2.9, 2.9, fill=False, ec="red", lw=2))
ax[0].add_patch(plt.Rectangle((0.55, 0.55), 2.9, 2.9, fill=False, ec="orange", lw=2, ls="--"))
ax[0].set_title("x (4x4): windows 0 (red) and 3 (orange)", fontsize=9)
ax[0].set_xlabel("column (pixels)"); ax[0].set_ylabel("row (pixels)")
ax[0].set_xticks(range(4)); ax[0].set_yticks(range(4))
ax[1].imshow(cols, cmap="viridis", aspect="auto")
for (i, j), v in np.ndenumerate(cols):
    ax[1].text(j, i, int(v), ha="center", va="center", color="w")
ax[1].set_xlabel("window element (a, q) of the 3x3 kernel, row-major")
ax[1].set_ylabel("row of cols = output pixel (i, j)")
ax[1].set_xticks(range(9), [f"({a},{q})" for a in range(3) for q in range(3)])
ax[1].set_yticks(range(4), [f"({i},{j})" for i in range(2) for j in range(2)])
ax[1].set_title("im2col: one row per window (pixel 5 is in all 4 rows)", fontsize=9)
fig.tight_layout(); plt.show()

# %% [markdown]
# **Exercise 2.** Write `im2col(x_pad, kh, kw, s)` with a loop over the output pixels: `x_pad` is already padded,
# window $(i, j)$ starts at $(is, js)$, $OH = (H_p - K_H) // s + 1$. A window
# `x_pad[:, i*s:i*s+kh, j*s:j*s+kw, :]` has shape $(N, K_H, K_W, C)$; `.reshape(N, -1)` flattens each one in the
# order $(a, q, c)$.

# %%
from unet_scratch.exercises.ch01 import check_im2col

def im2col(x_pad, kh, kw, s):
    """Every KH x KW window of x_pad as one row.

    x_pad: (N, Hp, Wp, C), already padded; windows start at (i*s, j*s).
    Returns cols: (N*OH*OW, KH*KW*C), OH = (Hp - KH) // s + 1, rows ordered (n, i, j), each row (a, q, c).
    """
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad.shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    cols = np.empty((n, oh, ow, kh * kw * c), dtype=x_pad.dtype)
    for i in range(oh):
        for j in range(ow):
            cols[:, i, j, :] = x_pad[:, i * s:i * s + kh, j * s:j * s + kw, :].reshape(n, -1)
    return cols.reshape(n * oh * ow, kh * kw * c)
    ### END SOLUTION

check_im2col(im2col);

# %% [markdown]
# The package's `ops.im2col` has no Python loop at all: NumPy's `sliding_window_view` gives every window as a
# *view* of `x_pad` (no copy), indexed `[n, i, j, c, a, q]`; slicing takes every $s$-th window, a transpose puts
# the axes in the order $(n, i, j, a, q, c)$, and the final `reshape` is where the copy happens:

# %%
print(inspect.getsource(ops.im2col))

# %% [markdown]
# **Exercise 3.** Write `conv2d_gemm(x, w, b, stride, padding)`: the same convolution as exercise 1, as your
# `im2col` followed by **one** matrix product with `w.reshape(KH*KW*C, F)`, plus `b`, reshaped to
# $(N, OH, OW, F)$. For the padding use `pad_input` (imported above):
# `x_pad, _ = pad_input(x, (KH, KW), (stride, stride), padding)` pads with TensorFlow's rule, the one you wrote in
# exercise 1.

# %%
from unet_scratch.exercises.ch01 import check_conv2d_gemm

def conv2d_gemm(x, w, b, stride, padding):
    """Keras Conv2D as im2col + ONE matrix product.

    x: (N, H, W, C), w: (KH, KW, C, F), b: (F,), stride: int, padding: 'valid' or 'same'.
    Returns y: (N, OH, OW, F).
    """
    ### BEGIN SOLUTION
    kh, kw, c, f = w.shape
    x_pad, _ = pad_input(x, (kh, kw), (stride, stride), padding)
    oh, ow = (x_pad.shape[1] - kh) // stride + 1, (x_pad.shape[2] - kw) // stride + 1
    y = im2col(x_pad, kh, kw, stride) @ w.reshape(kh * kw * c, f) + b       # (N*OH*OW, F): one GEMM
    return y.reshape(x.shape[0], oh, ow, f)
    ### END SOLUTION

check_conv2d_gemm(conv2d_gemm);

# %% [markdown]
# Same arithmetic, different speed. Your loop already hands NumPy one $(N, K_H K_W C) \times (K_H K_W C, F)$
# product per output pixel; the GEMM makes one product for all $N \cdot OH \cdot OW$ windows at once, so the
# Python overhead is paid once instead of $OH \cdot OW$ times. On a small U-Net-like layer ($32\times32$ pixels,
# 16 channels in and out, batch 4; times vary by machine, and this cell's output is not compared by the tests):

# %%
# NBVAL_IGNORE_OUTPUT
x_t = rng.standard_normal((4, 32, 32, 16)).astype(np.float32)
w_t = rng.standard_normal((3, 3, 16, 16)).astype(np.float32)
b_t = np.zeros(16, np.float32)
for name, fn in [("conv2d_loop", conv2d_loop), ("conv2d_gemm", conv2d_gemm)]:
    start = time.perf_counter()
    fn(x_t, w_t, b_t, 1, "same")
    print(f"{name}: {1e3 * (time.perf_counter() - start):.1f} ms")
print("same result:", np.allclose(conv2d_loop(x_t, w_t, b_t, 1, "same"), conv2d_gemm(x_t, w_t, b_t, 1, "same"),
                                  rtol=1e-4, atol=1e-4))

# %% [markdown]
# ### Verification against `keras.layers.Conv2D`
#
# The package's `ops.conv2d` is this im2col + GEMM (the checks above compared your functions with it). Build a
# Keras layer, copy `w` and `b` into it, and compare both `ops.conv2d` and your `conv2d_gemm` with it in float32,
# `rtol = atol = 1e-5` (the project's forward tolerance). The cases include TensorFlow's asymmetric `same`
# padding: a $2\times2$ kernel, and a $4 \times 4$ kernel with stride 2.

# %%
def keras_conv(x, w, b, strides, padding):
    layer = keras.layers.Conv2D(w.shape[3], w.shape[:2], strides=strides, padding=padding)
    layer.build(x.shape)
    layer.set_weights([w, b])
    return np.asarray(layer(x))

ok = {"ops": True, "yours": True}
for x_shape, k, strides, padding in [((2, 9, 9, 3), 3, 1, "same"), ((2, 9, 9, 3), 3, 1, "valid"),
                                     ((1, 8, 8, 2), 2, 1, "same"), ((1, 9, 7, 2), 3, 2, "same"),
                                     ((1, 10, 10, 2), 4, 2, "same"), ((1, 11, 10, 2), 3, 2, "valid"),
                                     ((1, 16, 16, 1), 3, 1, "same")]:
    xf = rng.standard_normal(x_shape).astype(np.float32)
    wf = rng.standard_normal((k, k, x_shape[3], 5)).astype(np.float32)
    bf = rng.standard_normal(5).astype(np.float32)
    theirs = keras_conv(xf, wf, bf, strides, padding)
    for name, ours in [("ops", ops.conv2d(xf, wf, bf, strides, padding)[0]),
                       ("yours", conv2d_gemm(xf, wf, bf, strides, padding))]:
        ok[name] &= ours.shape == theirs.shape and np.allclose(ours, theirs, rtol=1e-5, atol=1e-5)
print("7 configurations, ops.conv2d == keras.layers.Conv2D (rtol = atol = 1e-5):", ok["ops"])
print("7 configurations, your conv2d_gemm == keras.layers.Conv2D:                ", ok["yours"])

# %% [markdown]
# ## 5. The backward pass
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
# With channels, batch, stride and padding the bookkeeping grows, but the loop form stays simple: output pixel
# $(n, i, j)$ read the window $x^{\text{pad}}[n,\ is : is + K_H,\ js : js + K_W,\ :]$, so it sends back
# $$dx^{\text{pad}}[n,\ \text{window}] \mathrel{+}= \sum_f dy_{n,i,j,f}\; w[:, :, :, f], \qquad
# dw[:, :, :, f] \mathrel{+}= dy_{n,i,j,f}\; x^{\text{pad}}[n,\ \text{window}], \qquad db_f = \sum_{n,i,j} dy_{n,i,j,f},$$
# and $dx$ is $dx^{\text{pad}}$ with the padding cropped off. Shapes: $dy$: $(N, OH, OW, F)$, $dx$: $(N, H, W, C)$
# like $x$, $dw$: $(K_H, K_W, C, F)$ like $w$, $db$: $(F,)$ like $b$.
#
# **Worked example.** With the $3\times3$ image, the $2\times2$ kernel of section 3 (`valid`) and $dy$ all ones,
# $db = 4$ (four output pixels), $dw_{aq}$ is the sum of the four windows' entries at $(a, q)$
# ($dw_{00} = 0 + 1 + 3 + 4 = 8$), and the centre pixel $x_{11}$, read by all four windows at four different
# kernel positions, gets $dx_{11} = 1 + 2 + 0 - 1 = 2$:

# %%
y_ex, cache_ex = ops.conv2d(x_ex, w_ex, b_ex)
dx_ex, dw_ex, db_ex = ops.conv2d_backward(np.ones_like(y_ex), cache_ex)
print("db:", db_ex, " dw:", dw_ex[:, :, 0, 0].tolist(), " dx[1, 1]:", dx_ex[0, 1, 1, 0])

# %% [markdown]
# **Exercise 4.** Write `conv2d_backward_loop(dy, x, w, stride, padding)` with a loop over the output pixels,
# following the three update rules above. Pad with `pad_input`, which also returns the padding
# `((top, bottom), (left, right))` you need to crop $dx$. Hint: `np.tensordot(dy[:, i, j, :], w, axes=([1], [3]))`
# is $(N, K_H, K_W, C)$ and `np.tensordot(window, dy[:, i, j, :], axes=([0], [0]))` is $(K_H, K_W, C, F)$.

# %%
from unet_scratch.exercises.ch01 import check_conv2d_backward_loop

def conv2d_backward_loop(dy, x, w, stride, padding):
    """Gradients of y = conv2d(x, w, b, stride, padding) given dy = dL/dy, with loops.

    dy: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C, F).
    Returns (dx, dw, db): (N, H, W, C), (KH, KW, C, F), (F,).
    """
    ### BEGIN SOLUTION
    kh, kw, _, _ = w.shape
    x_pad, ((top, _), (left, _)) = pad_input(x, (kh, kw), (stride, stride), padding)
    dx_pad, dw = np.zeros(x_pad.shape), np.zeros(w.shape)
    for i in range(dy.shape[1]):
        for j in range(dy.shape[2]):
            rows, cols = slice(i * stride, i * stride + kh), slice(j * stride, j * stride + kw)
            dx_pad[:, rows, cols, :] += np.tensordot(dy[:, i, j, :], w, axes=([1], [3]))       # (N, KH, KW, C)
            dw += np.tensordot(x_pad[:, rows, cols, :], dy[:, i, j, :], axes=([0], [0]))    # (KH, KW, C, F)
    dx = dx_pad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dw, dy.sum(axis=(0, 1, 2))
    ### END SOLUTION

check_conv2d_backward_loop(conv2d_backward_loop);

# %% [markdown]
# ### The backward pass as matrix products, and col2im
#
# In im2col form the forward pass is $Y = \mathrm{cols}\,W + b$, a matrix product, and the gradients of a matrix
# product are matrix products:
# $$dW = \mathrm{cols}^\top dY \;\; (K_H K_W C \times F), \qquad d\mathrm{cols} = dY\, W^\top \;\;
# (N\,OH\,OW \times K_H K_W C), \qquad db = \textstyle\sum_{\text{rows}} dY,$$
# with $dY$ = `dy.reshape(N*OH*OW, F)`. $dW$ reshapes to $(K_H, K_W, C, F)$ directly, because the rows of
# $\mathrm{cols}^\top$ are in the kernel's $(a, q, c)$ order. $d\mathrm{cols}$ holds one gradient row per
# *window*, but a pixel sits in up to $K_H K_W$ windows: **col2im** adds every row back to the window it came
# from, so a pixel receives the **sum** of the gradients of all the windows that read it. col2im is the adjoint
# (the transpose) of im2col, as in the worked example below: with `cols` all ones, col2im counts how many windows
# read each pixel.

# %%
counts = ops.col2im(np.ones((4, 9), np.float32), (1, 4, 4, 1), 3, 3, 1, 1)
print("col2im of an all-ones cols (4 windows of 3x3 on a 4x4 image): windows per pixel\n",
      counts[0, :, :, 0].astype(int))

# %% [markdown]
# **Exercise 5.** Write `col2im(cols, x_pad_shape, kh, kw, s)` with a loop over the windows: row $(n, i, j)$ of
# `cols`, reshaped to $(K_H, K_W, C)$, is **added** to `x_pad[n, i*s:i*s+kh, j*s:j*s+kw, :]`.

# %%
from unet_scratch.exercises.ch01 import check_col2im

def col2im(cols, x_pad_shape, kh, kw, s):
    """Adjoint of im2col: add every row of cols back to its window.

    cols: (N*OH*OW, KH*KW*C), rows ordered (n, i, j), each row (a, q, c); x_pad_shape: (N, Hp, Wp, C).
    Returns x_pad: (N, Hp, Wp, C); pixels in several windows receive the sum, pixels in none stay 0.
    """
    ### BEGIN SOLUTION
    n, hp, wp, c = x_pad_shape
    oh, ow = (hp - kh) // s + 1, (wp - kw) // s + 1
    rows = cols.reshape(n, oh, ow, kh, kw, c)
    x_pad = np.zeros(x_pad_shape, dtype=cols.dtype)
    for i in range(oh):
        for j in range(ow):
            x_pad[:, i * s:i * s + kh, j * s:j * s + kw, :] += rows[:, i, j]
    return x_pad
    ### END SOLUTION

check_col2im(col2im);

# %% [markdown]
# The package's `ops.col2im` loops over the $K_H K_W$ kernel offsets instead of the $OH \cdot OW$ windows: for
# each offset $(a, q)$ one strided slice receives the entries of every window at once (the `+=` is safe because
# within one offset no two windows touch the same pixel):

# %%
print(inspect.getsource(ops.col2im))

# %% [markdown]
# **Exercise 6.** Write `conv2d_backward_gemm(dy, x, w, stride, padding)`: the three gradients with your `im2col`,
# the two matrix products above, and your `col2im`, then crop the padding off $dx$.

# %%
from unet_scratch.exercises.ch01 import check_conv2d_backward_gemm

def conv2d_backward_gemm(dy, x, w, stride, padding):
    """Gradients of conv2d with matrix products: dW = cols^T dY, dcols = dY W^T, dx = crop(col2im(dcols)).

    dy: (N, OH, OW, F), x: (N, H, W, C), w: (KH, KW, C, F).
    Returns (dx, dw, db): (N, H, W, C), (KH, KW, C, F), (F,).
    """
    ### BEGIN SOLUTION
    kh, kw, c, f = w.shape
    x_pad, ((top, _), (left, _)) = pad_input(x, (kh, kw), (stride, stride), padding)
    d_y = dy.reshape(-1, f)                                                     # (N*OH*OW, F)
    dw = (im2col(x_pad, kh, kw, stride).T @ d_y).reshape(kh, kw, c, f)
    dcols = d_y @ w.reshape(kh * kw * c, f).T                                   # (N*OH*OW, KH*KW*C)
    dx_pad = col2im(dcols, x_pad.shape, kh, kw, stride)
    dx = dx_pad[:, top:top + x.shape[1], left:left + x.shape[2], :]
    return dx, dw, d_y.sum(axis=0)
    ### END SOLUTION

check_conv2d_backward_gemm(conv2d_backward_gemm);

# %% [markdown]
# ### Verification: the formulas, TensorFlow's gradients, and central differences
#
# `ops.conv2d_backward` is this GEMM + col2im version (the checks above compared yours with it). First the
# single-channel formulas of this section, with SciPy, against the package:

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
# Then TensorFlow: a float64 `keras.layers.Conv2D` holding the same `w` and `b`, the loss
# $L = \sum y \odot dy$, and `tf.GradientTape` for $\partial L / \partial x$, $\partial L / \partial w$ and
# $\partial L / \partial b$. Both the package's and your backward pass should agree with it to rounding
# ($\sim 10^{-15}$; the threshold below is $10^{-10}$):

# %%
def tf_conv_gradients(x, w, b, dy, strides, padding):
    layer = keras.layers.Conv2D(w.shape[3], w.shape[:2], strides=strides, padding=padding, dtype="float64")
    layer.build(x.shape)
    layer.set_weights([w, b])
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt) * dy)
    return [np.asarray(g) for g in tape.gradient(loss, [xt, *layer.trainable_weights])]   # dx, dw (kernel), db

worst = {"ops": 0.0, "yours": 0.0}
for strides, padding, k in [(1, "valid", 3), (1, "same", 3), (2, "same", 3), (1, "same", 2), (2, "valid", 3)]:
    x = rng.standard_normal((2, 7, 6, 3))
    w = rng.standard_normal((k, k, 3, 4))
    b = rng.standard_normal(4)
    y, cache = ops.conv2d(x, w, b, strides, padding)
    dy = rng.standard_normal(y.shape)
    expected = tf_conv_gradients(x, w, b, dy, strides, padding)
    for name, got in [("ops", ops.conv2d_backward(dy, cache)),
                      ("yours", conv2d_backward_gemm(dy, x, w, strides, padding))]:
        for g, e in zip(got, expected):                  # dx, dw, db: largest error relative to the largest value
            worst[name] = max(worst[name], float(np.max(np.abs(g - e)) / np.max(np.abs(e))))
print("5 configurations: ops.conv2d_backward == tf.GradientTape (relative error < 1e-10):", worst["ops"] < 1e-10)
print("5 configurations: your conv2d_backward_gemm == tf.GradientTape:                  ", worst["yours"] < 1e-10)

# %% [markdown]
# And central differences, which need no framework at all: for $L = \sum y \odot dy$, compare each analytic
# gradient with $\big(L(\theta + h) - L(\theta - h)\big) / 2h$ in float64 (`unet_scratch.gradcheck`), with the
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
# ## 6. Receptive field: how far one output pixel can see
#
# A $3\times3$ convolution lets each output pixel see a $3\times3$ patch; a second one on top sees $5\times5$. A
# pooling (or any stride-$s$ layer) multiplies the step ("jump") between neighbouring pixels by $s$, so every later
# layer grows the field faster. With $r_0 = 1$, $j_0 = 1$ and layers $(k_\ell, s_\ell)$:
# $$r_\ell = r_{\ell-1} + (k_\ell - 1)\, j_{\ell-1}, \qquad j_\ell = j_{\ell-1}\, s_\ell.$$
# **Worked example:** two $3\times3$ convolutions then a $2\times2$ pool: $r = 1 \to 3 \to 5 \to 5 + 1 \cdot 1 = 6$,
# and the jump becomes 2, so a third $3\times3$ convolution would add $2 \cdot 2 = 4$ (giving 10). For the U-Net's
# encoder (two $3\times3$ convs, then a $2\times2$ pool, four times, then the bottleneck):

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
# **Exercise 7.** Write `receptive_field(layers)`: the receptive field (pixels along one axis) of one output
# pixel of a stack of layers given as `[(kernel_size, stride), ...]`, first layer first (an empty stack: 1).

# %%
from unet_scratch.exercises.ch01 import check_receptive_field

def receptive_field(layers):
    """layers: [(kernel_size, stride), ...], first layer first. Returns the receptive field in pixels."""
    ### BEGIN SOLUTION
    r, jump = 1, 1
    for k, s in layers:
        r += (k - 1) * jump
        jump *= s
    return r
    ### END SOLUTION

check_receptive_field(receptive_field);

# %% [markdown]
# ## Exercises in this chapter
#
# | # | function | writes | the check names these mistakes |
# |---|---|---|---|
# | 1 | `conv2d_loop` | forward, loops | the kernel flipped (a true convolution), the bias forgotten, an output one row/column short, `same`'s extra pixel before, `padding=k//2` on both sides |
# | 2 | `im2col` | forward helper, loops | rows channel-major $(c, a, q)$ or $(q, a, c)$, windows column-major, the stride ignored |
# | 3 | `conv2d_gemm` | forward, one GEMM | the kernel matrix from `w.reshape(F, -1).T` or flattened channel-major, the bias forgotten, the kernel flipped, the `same` split |
# | 4 | `conv2d_backward_loop` | backward, loops | $dx$ with the kernel flipped, $dx$ not cropped, $db$ not summed over $N$ (or over $H, W$), $dw$ from the last image only |
# | 5 | `col2im` | backward helper, loops | overlaps overwritten instead of added, rows read channel-major, the stride ignored |
# | 6 | `conv2d_backward_gemm` | backward, GEMM + col2im | $dW$ as $dY^\top\mathrm{cols}$ reshaped without a transpose, a col2im that overwrites, $dx$ not cropped, $db$ not summed |
# | 7 | `receptive_field` | size arithmetic | starting from $r = 0$, the strides ignored, a layer's stride applied to its own kernel |
