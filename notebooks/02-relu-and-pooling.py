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
# # 02 · ReLU, sigmoid and max pooling: functions without weights
#
# **What you will build:** the ReLU activation, the sigmoid of the U-Net's head and $2\times2$ max pooling,
# forward and backward. None has weights. ReLU's and max pooling's backward passes are *routing*: ReLU lets a
# gradient through or blocks it, max pooling sends each gradient to one input pixel, the window's winner. The
# sigmoid's scales each gradient by $y(1 - y)$.
#
# **What you will check:** the forward passes against TensorFlow and `keras.layers.MaxPooling2D`, the backward
# passes against TensorFlow's own gradients (`tf.GradientTape`), including what happens on **ties**, and a float64
# gradient check. In the exercises you write `relu_backward`, `sigmoid_backward`, `maxpool2x2` and
# `maxpool2x2_backward`; each check names the classic mistakes it recognises (a gradient of 1 at $x = 0$, the
# sigmoid applied twice, the gradient sent to every tied maximum, ...).

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # before TensorFlow is imported

import numpy as np
import matplotlib.pyplot as plt

from unet_scratch import ops
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.keras_ref import import_tensorflow, import_keras

tf = import_tensorflow(); keras = import_keras()
keras.utils.set_random_seed(0)
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. ReLU
#
# $$\mathrm{relu}(x) = \max(x, 0), \qquad \frac{d\,\mathrm{relu}}{dx} = \begin{cases} 1 & x > 0 \\ 0 & x < 0\end{cases}$$
# At $x = 0$ the function has a kink and no derivative; any value in $[0, 1]$ is a valid subgradient.
# TensorFlow's `ReluGrad` uses **0**, and so does `ops.relu_backward`: $dx = dy \odot [x > 0]$. The forward pass
# caches $y$ itself, since $y > 0$ exactly where $x > 0$. Exact zeros are common, not a curiosity: every
# pixel a previous ReLU switched off is exactly 0.

# %%
z = np.linspace(-3, 3, 601)
fig, ax = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
ax[0].plot(z, ops.relu(z)[0], color=plt.cm.viridis(0.3))
ax[0].set_title("relu(x) = max(x, 0)"); ax[0].set_xlabel("x (pre-activation)"); ax[0].set_ylabel("relu(x)")
ax[1].plot(z[z < 0], 0 * z[z < 0], color=plt.cm.viridis(0.6))
ax[1].plot(z[z > 0], 1 + 0 * z[z > 0], color=plt.cm.viridis(0.6))
ax[1].plot([0], [0], "o", color=plt.cm.viridis(0.6)); ax[1].plot([0], [1], "o", mfc="white", color=plt.cm.viridis(0.6))
ax[1].set_title("derivative: a gate (0 at x = 0, as TensorFlow)"); ax[1].set_xlabel("x (pre-activation)")
ax[1].set_ylabel("d relu / dx"); ax[1].set_ylim(-0.2, 1.2)
fig.suptitle("ReLU passes a gradient unchanged where x > 0 and blocks it elsewhere", fontsize=10)
fig.tight_layout(); plt.show()

# %%
x = np.array([-2.0, -0.5, 0.0, 0.0, 0.5, 3.0], np.float32)
dy = np.arange(1, 7, dtype=np.float32)
xt = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(xt)
    yt = tf.nn.relu(xt)
dx_tf = tape.gradient(yt, xt, output_gradients=tf.constant(dy)).numpy()
y, cache = ops.relu(x)
print("forward equals tf.nn.relu:              ", np.array_equal(y, yt.numpy()))
print("TensorFlow's gradient at x = 0:          ", dx_tf[2:4])
print("backward equals TensorFlow's, exactly:  ", np.array_equal(ops.relu_backward(dy, cache), dx_tf))


# %% [markdown]
# ## 2. The sigmoid
#
# The article's U-Net ends in a $1 \times 1$ convolution with a **sigmoid**, which turns each pixel's logit $x$
# into a foreground probability:
# $$y = \sigma(x) = \frac{1}{1 + e^{-x}}, \qquad
# \frac{dy}{dx} = \frac{e^{-x}}{(1 + e^{-x})^2} = \underbrace{\frac{1}{1 + e^{-x}}}_{y}\;
# \underbrace{\frac{e^{-x}}{1 + e^{-x}}}_{1 - y} = y\,(1 - y).$$
# The derivative is written in the **output** $y$, so the forward pass caches $y$ and the backward pass needs no
# second exponential: $dx = dy \odot y \odot (1 - y)$. It is at most $\tfrac14$ (at $x = 0$, $y = \tfrac12$) and
# vanishes on both sides: at $x = 2$, $y = 0.881$ and $y(1 - y) = 0.105$; at $x = 10$ it is $4.5 \times 10^{-5}$. A
# confidently wrong pixel therefore passes almost no gradient through the sigmoid, which is why chapter 07
# computes the cross-entropy from the logit $x$ (the two derivatives combine into $p - t$). A loss written on
# the probabilities, such as Dice, goes through this backward pass. `ops.sigmoid` never exponentiates a positive
# number ($e^{-|x|}$, then $1/(1 + e)$ or $e/(1 + e)$), so $x = -1000$ gives 0 without an overflow warning.

# %%
x = np.array([-10.0, -2.0, 0.0, 2.0, 10.0], np.float32)
dy = np.ones_like(x)
xt = tf.constant(x)
with tf.GradientTape() as tape:
    tape.watch(xt)
    yt = tf.sigmoid(xt)
dx_tf = tape.gradient(yt, xt, output_gradients=tf.constant(dy)).numpy()
y, cache = ops.sigmoid(x)
print("x:                                  ", x.tolist())
print("y = sigmoid(x), 3 decimals:         ", np.round(y.astype(float), 3).tolist())
print("y (1 - y), 3 decimals:              ", np.round(ops.sigmoid_backward(dy, cache).astype(float), 3).tolist())
print("forward equals tf.sigmoid (1e-6):   ", np.allclose(y, yt.numpy(), rtol=1e-6, atol=1e-7))
print("backward equals TensorFlow's (1e-6):", np.allclose(ops.sigmoid_backward(dy, cache), dx_tf, rtol=1e-6, atol=1e-7))
with np.errstate(over="raise"):
    print("sigmoid(-1000) without overflow:    ", float(ops.sigmoid(np.float32(-1000.0))[0]) == 0.0)

# %%
z = np.linspace(-8, 8, 401)
y_z = ops.sigmoid(z)[0]
fig, ax = plt.subplots(figsize=(5.5, 3.2), dpi=100)
ax.plot(z, y_z, color=plt.cm.viridis(0.3), label="y = sigmoid(x)")
ax.plot(z, y_z * (1 - y_z), color=plt.cm.viridis(0.7), label="dy/dx = y (1 - y)")
ax.axhline(0.25, color="0.6", ls=":", lw=1); ax.text(-7.8, 0.27, "1/4: the largest slope", fontsize=8)
ax.set_xlabel("x (logit)"); ax.set_ylabel("value (unitless)")
ax.set_title("The sigmoid's slope is at most 1/4 and vanishes where it saturates", fontsize=10)
ax.legend(fontsize=8, loc="center right"); fig.tight_layout(); plt.show()


# %% [markdown]
# ## 3. Max pooling, forward
#
# A $P_H \times P_W$ max pool with strides $(s_H, s_W)$ (Keras's default: the pool size, so windows do not overlap)
# keeps the largest value of each window, channel by channel:
# $$y_{n,i,j,c} = \max_{0 \le a < P_H,\ 0 \le q < P_W} x_{n,\; i s_H + a,\; j s_W + q,\; c}.$$
# The output sizes follow the convolution's formulas (chapter 01): `valid` drops a last row that does not fill a
# window ($5 \to 2$), `same` pads with $-\infty$ so padding never wins. In the U-Net every pool is $2\times2$,
# stride 2: it halves the height and width and keeps one pixel in four. `ops.maxpool2d` takes
# `sliding_window_view` windows and an `argmax`; `ops.maxpool2d_naive` is the loop definition.

# %%
def keras_pool(x, pool, strides, padding):
    return np.asarray(keras.layers.MaxPooling2D(pool, strides=strides, padding=padding)(x))

all_ok = True
for shape, pool, strides, padding in [((2, 8, 8, 3), 2, None, "valid"), ((1, 7, 9, 2), 2, None, "valid"),
                                      ((1, 7, 9, 2), 2, None, "same"), ((1, 9, 9, 2), 3, 2, "valid"),
                                      ((1, 8, 8, 2), 3, 2, "same"), ((1, 6, 6, 1), 2, 1, "valid")]:
    x = rng.standard_normal(shape).astype(np.float32)
    ours = ops.maxpool2d(x, pool, strides, padding)[0]
    same_as_loops = np.array_equal(ours, ops.maxpool2d_naive(x, pool, strides, padding))
    same_as_keras = np.array_equal(ours, keras_pool(x, pool, strides, padding))
    all_ok &= same_as_loops and same_as_keras
    print(f"{str(shape):>14} pool {pool} strides {strides!s:>4} {padding:>5} -> {str(ours.shape):>14}:",
          "loops", same_as_loops, "| Keras", same_as_keras)
print("max pooling forward equals keras.layers.MaxPooling2D exactly:", all_ok)

# %% [markdown]
# ## 4. Max pooling, backward: argmax routing
#
# Within a window, $\max$ is locally just one of its inputs, the winner $x_{a^*q^*}$, so
# $$\frac{\partial y_{ij}}{\partial x_{uv}} = \begin{cases} 1 & (u, v) = (i s + a^*,\ j s + q^*) \\ 0 & \text{otherwise}\end{cases}
# \qquad\Longrightarrow\qquad dx_{uv} = \sum_{(i,j):\ (u,v)\ \text{wins window}\ (i,j)} dy_{ij}.$$
# Each $dy_{ij}$ goes to one pixel; the other $P_H P_W - 1$ pixels of the window get 0. The forward pass therefore
# caches the winner's position (`cache["argmax"]`, a flat index $a P_W + q$), and the backward pass scatters
# `dy` there. When windows overlap (stride < pool), a pixel that wins several windows collects the sum.

# %%
x = rng.permutation(16).astype(np.float32).reshape(1, 4, 4, 1)
y, cache = ops.maxpool2d(x)
dy = np.array([10.0, 20.0, 30.0, 40.0], np.float32).reshape(1, 2, 2, 1)
dx = ops.maxpool2d_backward(dy, cache)

fig, ax = plt.subplots(1, 3, figsize=(10, 3.3), dpi=100)
for a, img, title in [(ax[0], x, "input x (4x4), winners circled"), (ax[1], dy, "upstream gradient dy (2x2)"),
                      (ax[2], dx, "dx: each dy lands on its winner")]:
    a.imshow(img[0, :, :, 0], cmap="viridis")
    for (i, j), v in np.ndenumerate(img[0, :, :, 0]):
        a.text(j, i, f"{v:g}", ha="center", va="center", color="w", fontsize=11)
    a.set_title(title, fontsize=10); a.set_xlabel("column (pixels)"); a.set_ylabel("row (pixels)")
for a in (ax[0], ax[2]):
    for k in (1.5,):
        a.axhline(k, color="white", lw=2); a.axvline(k, color="white", lw=2)
for i in range(2):
    for j in range(2):
        u, v = divmod(int(cache["argmax"][0, i, j, 0]), 2)
        ax[0].add_patch(plt.Circle((2 * j + v, 2 * i + u), 0.4, fill=False, ec="red", lw=2))
        ax[2].annotate("", (2 * j + v, 2 * i + u), (2 * j + 0.5, 2 * i + 0.5),
                       arrowprops=dict(arrowstyle="->", color="red"))
fig.suptitle("Max-pool backward: 1 pixel in 4 receives a gradient, the others get exactly 0", fontsize=10)
fig.tight_layout(); plt.show()


# %% [markdown]
# ### Ties: which pixel wins?
#
# When several pixels of a window hold the same maximum, $\max$ is not differentiable and an implementation must
# choose. This happens all the time in a U-Net: after a ReLU, a window of four zeros is a four-way tie. Reading
# `ops/pool.py`: the package sends the whole gradient to the **first** maximum in row-major window order (what
# `np.argmax` over the flattened window returns). A mask `x == max` would instead copy the gradient to every tied
# pixel, and the gradient would no longer sum to `dy`. What does TensorFlow do? Ask `tf.GradientTape`:

# %%
def tf_pool_grad(x, dy, pool=2, strides=2, padding="VALID"):
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        yt = tf.nn.max_pool2d(xt, pool, strides, padding)
    return tape.gradient(yt, xt, output_gradients=tf.constant(dy)).numpy()

x_tie = np.array([[0, 0, 1, 3],
                  [0, 0, 3, 1],
                  [2, 5, 5, 5],
                  [5, 1, 5, 5]], np.float32).reshape(1, 4, 4, 1)
dy = np.array([[1, 2], [3, 4]], np.float32).reshape(1, 2, 2, 1)
dx_pkg = ops.maxpool2d_backward(dy, ops.maxpool2d(x_tie)[1])
dx_tf = tf_pool_grad(x_tie, dy)
upsample = lambda a: np.kron(a[0, :, :, 0], np.ones((2, 2)))         # each window value on its 4 pixels
dx_mask = upsample(dy) * (x_tie[0, :, :, 0] == upsample(ops.maxpool2d(x_tie)[0]))
print("TensorFlow's dx:\n", dx_tf[0, :, :, 0])
print("package's dx equals TensorFlow's:          ", np.array_equal(dx_pkg, dx_tf))
print("the 'x == max' mask equals TensorFlow's:     ", np.array_equal(dx_mask, dx_tf))
print("sum of dx == sum of dy (package, mask):      ", dx_pkg.sum() == dy.sum(), dx_mask.sum() == dy.sum())

# %%
fig, ax = plt.subplots(1, 3, figsize=(10, 3.3), dpi=100)
for a, img, title in [(ax[0], x_tie[0, :, :, 0], "x with ties (4 zeros, two 3s, six 5s)"),
                      (ax[1], dx_tf[0, :, :, 0], "TensorFlow / package dx: first max"),
                      (ax[2], dx_mask, "mask x == max: every tie (wrong)")]:
    a.imshow(img, cmap="viridis")
    for (i, j), v in np.ndenumerate(img):
        a.text(j, i, f"{v:g}", ha="center", va="center", color="w", fontsize=11)
    a.axhline(1.5, color="white", lw=2); a.axvline(1.5, color="white", lw=2)
    a.set_title(title, fontsize=9); a.set_xlabel("column (pixels)"); a.set_ylabel("row (pixels)")
fig.suptitle("On a tie the whole gradient goes to the first maximum in row-major order", fontsize=10)
fig.tight_layout(); plt.show()

# %% [markdown]
# ### Verification against TensorFlow's gradients, and a float64 gradient check
#
# Random inputs, and inputs full of ties (a ReLU of values rounded to one decimal), for the U-Net's $2\times2$
# pool and for overlapping and `same`-padded pools: the package's `dx` must equal TensorFlow's.

# %%
all_ok = True
for shape, pool, strides, padding in [((2, 8, 8, 3), 2, 2, "valid"), ((1, 7, 9, 2), 2, 2, "same"),
                                      ((1, 9, 9, 2), 3, 2, "valid"), ((1, 6, 6, 2), 2, 1, "valid")]:
    for kind in ("random", "ties"):
        x = rng.standard_normal(shape).astype(np.float32)
        if kind == "ties":
            x = np.maximum(x, 0).round(1)
        y, cache = ops.maxpool2d(x, pool, strides, padding)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        ok = np.allclose(ops.maxpool2d_backward(dy, cache), tf_pool_grad(x, dy, pool, strides, padding.upper()),
                         rtol=1e-5, atol=1e-5)
        all_ok &= ok
        print(f"{str(shape):>13} pool {pool} stride {strides} {padding:>5} {kind:>6}: dx equals TensorFlow's:", ok)
print("max pooling backward verified against tf.GradientTape:", all_ok)

# %%
x = rng.standard_normal((2, 6, 6, 3))            # float64, no ties: max is smooth around x
y, cache = ops.maxpool2d(x)
dy = rng.standard_normal(y.shape)
err_pool = rel_error(ops.maxpool2d_backward(dy, cache), numeric_gradient(lambda v: ops.maxpool2d(v)[0], x, dy))
x = rng.standard_normal((2, 5, 5, 3))
x[np.abs(x) < 0.01] = 0.5                          # keep h = 1e-5 away from ReLU's kink
y, cache = ops.relu(x)
dy = rng.standard_normal(y.shape)
err_relu = rel_error(ops.relu_backward(dy, cache), numeric_gradient(lambda v: ops.relu(v)[0], x, dy))
print("float64 gradient check, max pool: relative error below 1e-7:", err_pool < 1e-7)
print("float64 gradient check, relu:     relative error below 1e-7:", err_relu < 1e-7)

# %% [markdown]
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases and says what is wrong.

# %% [markdown]
# **Exercise 1.** Write `relu_backward(dy, x)`: the gradient of ReLU at `x` given the upstream gradient `dy`
# (both of any shape, the same one): $dx = dy \odot [x > 0]$. Use TensorFlow's value at exactly $x = 0$. Worked
# example: `x = [-1, 0, 2]`, `dy = [5, 6, 7]` give `dx = [0, 0, 7]`.

# %%
from unet_scratch.exercises.ch02 import (check_maxpool2x2, check_maxpool2x2_backward, check_relu_backward,
                                         check_sigmoid_backward)

def relu_backward(dy, x):
    """dy, x: (any shape, the same) -> dx: same shape, dy where x > 0, 0 elsewhere (also at x == 0)."""
    ### BEGIN SOLUTION
    return dy * (x > 0)
    ### END SOLUTION

check_relu_backward(relu_backward);


# %% [markdown]
# **Exercise 2.** Write `sigmoid_backward(dy, x)`: the gradient of $y = \sigma(x)$ given the upstream gradient
# `dy`, $dx = dy \odot y \odot (1 - y)$. You are given the pre-activation `x` (as in exercise 1): compute $y$
# first (`ops.sigmoid(x)[0]` is stable for any $x$). Worked example: `x = [0, 2]`, `dy = [1, 2]` give
# `dx = [0.25, 0.21]` ($0.5 \cdot 0.5$ and $2 \cdot 0.881 \cdot 0.119$).

# %%
def sigmoid_backward(dy, x):
    """dy, x: (any shape, the same) -> dx = dy * y * (1 - y) with y = sigmoid(x); same shape and dtype."""
    ### BEGIN SOLUTION
    y = ops.sigmoid(x)[0]
    return dy * y * (1 - y)
    ### END SOLUTION

check_sigmoid_backward(sigmoid_backward);


# %% [markdown]
# **Exercise 3.** Write `maxpool2x2(x)`: $2\times2$ max pooling with stride 2 and `valid` padding,
# `x: (N, H, W, C) -> (N, H//2, W//2, C)` (an odd last row or column is dropped: $5 \to 2$). Hint: crop to an
# even size, then `reshape(N, H//2, 2, W//2, 2, C)`.

# %%
def maxpool2x2(x):
    """x: (N, H, W, C) -> y: (N, H // 2, W // 2, C), the maximum of each 2x2 window (stride 2, 'valid')."""
    ### BEGIN SOLUTION
    n, h, w, c = x.shape
    return x[:, :h // 2 * 2, :w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    ### END SOLUTION

check_maxpool2x2(maxpool2x2);


# %% [markdown]
# **Exercise 4.** Write `maxpool2x2_backward(dy, x)`: the gradient of `maxpool2x2` at `x`. Each `dy[n, i, j, c]`
# goes to its window's **first** maximum in row-major order (TensorFlow's rule on ties); all other pixels get 0
# (also an odd last row or column, which no window saw). Loops are fine.

# %%
def maxpool2x2_backward(dy, x):
    """dy: (N, H // 2, W // 2, C), x: (N, H, W, C) -> dx: (N, H, W, C)."""
    ### BEGIN SOLUTION
    dx = np.zeros_like(x)
    for n in range(dy.shape[0]):
        for i in range(dy.shape[1]):
            for j in range(dy.shape[2]):
                for c in range(dy.shape[3]):
                    window = x[n, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c]
                    a, q = divmod(int(np.argmax(window)), 2)      # np.argmax: the first maximum
                    dx[n, 2 * i + a, 2 * j + q, c] += dy[n, i, j, c]
    return dx
    ### END SOLUTION

check_maxpool2x2_backward(maxpool2x2_backward);

# %% [markdown]
# **Exercises in this chapter:** 1. `relu_backward` (a gate, 0 at $x = 0$), 2. `sigmoid_backward`
# ($dy \, y (1 - y)$, written in the output), 3. `maxpool2x2` (the forward pass by reshaping),
# 4. `maxpool2x2_backward` (argmax routing with TensorFlow's first-maximum tie rule). The mistakes the checks
# name: a gradient of 1 at $x = 0$, a mask from `dy`, the mask without `dy` (1); the sigmoid applied twice,
# `dy` forgotten, $y(1 + y)$, $x(1 - x)$ (2); an odd size rounded up or zero-padded, a stride of 1, average
# pooling (3); the gradient sent to every tied maximum, to the last one, or averaged over the window (4).
