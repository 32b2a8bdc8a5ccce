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
# # 05 · Backpropagation through the whole U-Net
#
# **What you will build:** the backward pass of the complete network, written out one layer at a time:
# the chain rule down the decoder, the concatenation's split into the up path and the skip, and the one
# place where a U-Net's backward pass differs from a plain chain: at each encoder level the gradient that
# came **across the skip** is **added** to the gradient that came **back up the contracting path**.
#
# **What you will check:**
# 1. the backward pass as it happens: the gradient arriving at every layer, recorded while `UNet.backward`
#    (`model.py`) runs;
# 2. the shapes: every activation and its gradient, layer by layer, printed as a table;
# 3. the whole backward pass against central differences in float64 (`unet_scratch.gradcheck`), for
#    sampled entries of every parameter and of the input;
# 4. where the gradient goes: its size per layer, and how much of it each encoder level receives through
#    its skip.
#
# In the exercises you write central differences, the relative error of a gradient check, the backward pass of
# a U in miniature, and then the real U-Net's **forward and backward passes assembled from its blocks**; the
# checks name the classic mistakes (a one-sided difference, the skip's gradient forgotten, the skips paired with
# the wrong levels, the concatenation's halves swapped, dropout left in training mode, ...).

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow, should anything import it
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # small matrices: one BLAS thread is faster, and far
                                                   # faster on a busy 2-core CPU (threads wait on each other)

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.gradcheck import numeric_gradient, rel_error, sample_indices

rng = np.random.default_rng(0)


# %% [markdown]
# ## 1. The chain rule, one layer at a time
#
# A network is a composition $y = f_K(\dots f_2(f_1(x; \theta_1); \theta_2) \dots; \theta_K)$. Write
# $a_k = f_k(a_{k-1})$ for the activations ($a_0 = x$) and $\delta_k = \partial L / \partial a_k$ for the
# gradient of the loss with respect to them. Going backwards, each layer turns the gradient of its output
# into the gradient of its input and of its parameters:
#
# $$\delta_{k-1} = \Big(\frac{\partial a_k}{\partial a_{k-1}}\Big)^{\!\top} \delta_k, \qquad
# \frac{\partial L}{\partial \theta_k} = \Big(\frac{\partial a_k}{\partial \theta_k}\Big)^{\!\top} \delta_k .$$
#
# That is all `layer.backward(dy)` does (chapters 01-04 built it for each layer: a convolution's
# $\delta_{k-1}$ is a full cross-correlation with the flipped kernel (a true convolution with $w$), a pool routes $\delta$ to each window's
# maximum, a transposed convolution's is a strided convolution, a concatenation splits it). The
# Jacobians are never formed; each backward applies $J^\top$ directly. Note that $\delta_k$ always has the
# **shape of $a_k$**: a gradient is one number per activation.
#
# **The U is not a chain.** At encoder level $\ell$ the output $e_\ell$ of the two convolutions is used
# twice: it is pooled and sent down, $p_\ell = \text{pool}(e_\ell)$, and it is sent across the skip to decoder
# level $\ell$, where it is (cropped and) concatenated, $c_\ell = [\,u_\ell \mid e_\ell\,]$. The multivariate
# chain rule sums over every path from $e_\ell$ to $L$:
#
# $$\frac{\partial L}{\partial e_\ell} \;=\; \underbrace{\text{pool}^\top\!\Big(\frac{\partial L}{\partial p_\ell}\Big)}_{\text{back up the contracting path}}
# \;+\; \underbrace{\text{crop}^\top\!\Big(\Big[\frac{\partial L}{\partial c_\ell}\Big]_{\,\dots,\;C_u:}\Big)}_{\text{back across the skip}} .$$
#
# So the backward pass must visit the decoder **first** (to collect every skip's gradient), then the
# bottleneck, then the encoder from the deepest level up, adding each level's skip gradient as it goes.
# In `model.py`, `DecoderBlock.backward` returns `(dx, dskip)` and `EncoderBlock.backward(dpooled, dskip)`
# does `dh = self.pool.backward(dpooled) + dskip`; exercises 4 and 5 ask you to assemble both passes from
# these blocks yourself.
#
# To *see* the backward pass, the cell below runs `model.backward` while listening in: it wraps every layer's
# `backward` to record the gradient that arrives at the layer's output, and every encoder block's to record the
# two terms of $\partial L / \partial e_\ell$ (the pool's backward of the gradient from below, and the skip's),
# then removes the wrappers. Asked to, it also replaces the skip's term by zeros (section 4 uses that).

# %%
def record_backward(model, dy, cut_skip_gradients=False):
    '''model.backward(dy) while recording {layer name: dL/d(its output)} and, per encoder level, the norms of
    the two terms of dL/de: (up the contracting path, across the skip). Returns dL/dx, the two records.'''
    grad_out, paths = {}, {}
    wrapped = []

    def listen(layer):
        original = layer.backward
        def backward(d):
            grad_out[layer.name] = d
            return original(d)
        layer.backward = backward                       # an instance attribute hides the method
        wrapped.append(layer)

    def join(level, block):
        original = block.backward
        def backward(dpooled, dskip):
            if cut_skip_gradients:
                dskip = np.zeros_like(dskip)
            paths[level] = (np.linalg.norm(block.pool.backward(dpooled)), np.linalg.norm(dskip))
            return original(dpooled, dskip)
        block.backward = backward
        wrapped.append(block)

    for layer in model.layers:
        listen(layer)
    for level, block in enumerate(model.encoder, start=1):
        join(level, block)
    try:
        dx = model.backward(dy)
    finally:
        for obj in wrapped:
            del obj.backward                            # back to the class's method
    return dx, grad_out, paths


# %% [markdown]
# A small U-Net (depth 3, 4 filters at the top, no dropout so that nothing is random) on four
# $32 \times 32$ membrane images, with the binary cross-entropy as the loss. Listening in must change nothing:
# the recorded run gives the same gradients as a plain `model.backward`.

# %%
model = UNet(input_shape=(32, 32, 1), base_filters=4, depth=3, dropout=0, seed=0)
x, t = data.load("membranes", n=4, size=32)
p = model.forward(x)
loss, dp = binary_crossentropy(p, t)                     # dL/dp, shaped like p

dx_package = model.backward(dp)
grads_package = {k: g.copy() for k, g in model.grads.items()}
dx_recorded, grad_out, paths = record_backward(model, dp)   # the forward cache is still there

print("dL/dx identical:", np.array_equal(dx_recorded, dx_package))
print("all", len(grads_package), "parameter gradients identical:",
      all(np.array_equal(model.grads[k], g) for k, g in grads_package.items()))
print("a gradient recorded for every layer:", len(grad_out) == len(model.layers))

# %% [markdown]
# ## 2. The shapes, layer by layer
#
# Each activation and the gradient that arrives at it during the backward pass (batch $N = 4$). The
# gradient column is read off the arrays recorded by `record_backward`, not computed from the model's
# shapes: read down the table for the forward pass, up it for the backward pass. The concatenations are the
# only layers whose gradient leaves in two pieces; the channels of the split are in the last column.

# %%
n = x.shape[0]
rows = []
for layer in model.layers:
    act = (n, *layer.output_shape[1:])
    grad = grad_out[layer.name].shape
    pshapes = ", ".join(f"d{k}{tuple(g.shape)}" for k, g in layer.grads.items())
    if type(layer).__name__ == "Concatenate":
        pshapes = "split -> d_up" + str((n, *layer.input_shape[0][1:])) + " + d_skip" + str((n, *layer.input_shape[1][1:]))
    rows.append((layer.name, type(layer).__name__, act, grad, pshapes))

print(f"{'layer':<18}{'type':<17}{'activation a':<18}{'gradient dL/da':<18}{'parameter gradients / split'}")
print("-" * 110)
for name, kind, act, grad, pshapes in rows:
    print(f"{name:<18}{kind:<17}{str(act):<18}{str(grad):<18}{pshapes}")
print("-" * 110)
print("every gradient has its activation's shape:", all(act == grad for _, _, act, grad, _ in rows))
print("every parameter gradient has its parameter's shape:",
      all(model.grads[k].shape == model.params[k].shape for k in model.params))

# %% [markdown]
# ## 3. Verification: a float64 gradient check of the whole network
#
# Central differences, $\frac{\partial L}{\partial \theta_i} \approx \frac{L(\theta + h e_i) - L(\theta - h e_i)}{2h}$,
# have two errors: truncation, $O(h^2)$, and rounding, about $\epsilon_{\text{mach}} |L| / h$, the rounding
# error of $L$ itself magnified by the division. In float64 ($\epsilon_{\text{mach}} \approx 2 \times 10^{-16}$)
# $h = 10^{-5}$ balances them; in float32 ($\epsilon_{\text{mach}} \approx 10^{-7}$) the rounding term alone
# would swamp the gradient, which is why gradient checks run in float64 and the model keeps the dtype it is
# given (`dtype="float64"`).
#
# Two precautions. ReLU and max-pooling have kinks: if $\theta \pm h$ lands on both sides of one, the
# finite difference is wrong, not the gradient (try $h = 10^{-4}$ below: one bias crosses a kink and its error
# jumps to $10^{-2}$). Random non-zero biases (instead of Keras's zeros) keep pre-activations away from 0 and
# make ties in the pools unlikely. The loss is the real one: the binary cross-entropy of the sigmoid output,
# summed over the pixels. The measure is the package's `rel_error`, $\|a - b\| / (\|a\| + \|b\|)$, over the
# sampled entries of each tensor; the course's threshold for float64 checks is $10^{-7}$.

# %%
net = UNet(input_shape=(16, 16, 1), base_filters=2, depth=2, dropout=0, dtype="float64", seed=0)
for name in net.params:
    if name.endswith("/bias"):
        net.params[name] = 0.1 * rng.standard_normal(net.params[name].shape)
xg = rng.standard_normal((2, 16, 16, 1))
tg = (rng.random((2, 16, 16, 1)) > 0.5).astype(np.float64)

def total_loss(_):
    '''Summed BCE of the network's output; numeric_gradient perturbs one entry in place and calls this.'''
    out = net.forward(xg)
    return binary_crossentropy(out, tg)[0] * out.size

out = net.forward(xg)
_, dout = binary_crossentropy(out, tg)
dx_analytic = net.backward(dout * out.size)
analytic = {k: g.copy() for k, g in net.grads.items()}

errors = {}
for name, param in net.params.items():
    idx = sample_indices(param.shape, 6, rng)
    num = numeric_gradient(total_loss, param, h=1e-5, indices=idx)
    errors[name] = rel_error([analytic[name][i] for i in idx], [num[i] for i in idx])
idx = sample_indices(xg.shape, 20, rng)
num = numeric_gradient(total_loss, xg, h=1e-5, indices=idx)
errors["input x"] = rel_error([dx_analytic[i] for i in idx], [num[i] for i in idx])

worst = max(errors.values())
print("tensors checked:", len(errors), "(every parameter of", len(net.params), "and the input)")
print("worst relative error below the course's threshold 1e-7:", worst < 1e-7)

# %%
names = list(errors)
fig, ax = plt.subplots(figsize=(9, 3.4), dpi=100)
ax.bar(range(len(names)), [max(errors[k], 1e-16) for k in names], color=plt.cm.viridis(0.35))
ax.axhline(1e-7, color="0.3", ls="--", lw=1); ax.text(len(names) - 0.5, 1.4e-7, "threshold 1e-7", ha="right", fontsize=8)
ax.set_yscale("log"); ax.set_ylim(1e-13, 1e-5)
ax.set_xticks(range(len(names))); ax.set_xticklabels(names, rotation=70, fontsize=7)
ax.set_ylabel("relative error (analytic vs numeric)")
ax.set_xlabel("tensor (sampled entries)")
ax.set_title("Float64 gradient check of a depth-2 U-Net: every tensor below the 1e-7 threshold")
fig.tight_layout(); plt.show()

# %% [markdown]
# ## 4. Where the gradient goes
#
# Back to the depth-3 model of section 1. Left: the size of each kernel's gradient, in the order the
# forward pass visits the layers (down the U, then up). Right: at each encoder level, how large the two
# terms of $\partial L / \partial e_\ell$ are: the gradient that came back up the contracting path and the one
# that came across the skip. The skip is a **short path** from the loss to the encoder: at the top level
# the gradient crosses 3 layers with weights to get there instead of the 16 on the path through the bottleneck, which is
# why chapter 04's skip-less network was so slow to start learning.

# %%
kernels = [k for k in model.params if k.endswith("/kernel")]
rms = [np.sqrt(np.mean(grads_package[k] ** 2)) for k in kernels]
levels = sorted(paths)

fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100, gridspec_kw=dict(width_ratios=[2, 1]))
colors = [plt.cm.viridis(0.15 if k.startswith("enc") else 0.5 if k.startswith("bottleneck") else 0.8) for k in kernels]
ax[0].bar(range(len(kernels)), rms, color=colors)
ax[0].set_yscale("log"); ax[0].set_xticks(range(len(kernels)))
ax[0].set_xticklabels([k.replace("/kernel", "") for k in kernels], rotation=70, fontsize=7)
ax[0].set_ylabel("RMS of dL/dW (loss units per weight)")
ax[0].set_xlabel("layer, in forward order (down the U, then up)")
ax[0].set_title("Gradient size per layer (encoder dark, bottleneck mid, decoder light)", fontsize=10)
w = 0.38
ax[1].bar(np.array(levels) - w / 2, [paths[l][0] for l in levels], w, color=plt.cm.viridis(0.2), label="up the contracting path")
ax[1].bar(np.array(levels) + w / 2, [paths[l][1] for l in levels], w, color=plt.cm.viridis(0.75), label="across the skip")
ax[1].set_yscale("log"); ax[1].set_xticks(levels)
ax[1].set_xlabel("encoder level (1 = top)"); ax[1].set_ylabel("norm of the term of dL/de")
ax[1].set_title("The two terms of dL/de at each level", fontsize=10)
ax[1].legend(fontsize=8)
fig.tight_layout(); plt.show()

# %% [markdown]
# What happens to the first layer's gradient if the skips are cut in the backward pass only (the
# decoder still *sees* the skips; only their gradient is dropped): the encoder then learns only through
# the bottleneck.

# %%
model.forward(x)
record_backward(model, dp, cut_skip_gradients=True)
ratio = np.linalg.norm(grads_package["enc1_conv1/kernel"]) / np.linalg.norm(model.grads["enc1_conv1/kernel"])
print("top level: the skip's term is larger than the contracting path's:", paths[1][1] > paths[1][0])
print("enc1_conv1's gradient is over 100 times larger with the skips' gradient than without:", ratio > 100)

# %% [markdown]
# ## Exercises
#
# Each exercise has a check function that runs your answer on several cases and says what is wrong.

# %% [markdown]
# **Exercise 1.** Write `central_difference(f, x, h)`: the gradient of a scalar function `f` at the array
# `x`, entry by entry, $(f(x + h e_i) - f(x - h e_i)) / 2h$, as an array shaped like `x`. Perturb `x` in
# place (it may be a view into a model's weights) and put every entry back. The check compares with the
# exact gradient: a *forward* difference $(f(x + h e_i) - f(x)) / h$ is only accurate to $O(h)$ and fails.
# Hint: `np.ndindex(*x.shape)` visits every index. Worked example: $f(x) = \sum x^3$ at $x = [1, 2]$ with
# $h = 10^{-5}$ gives $[3.0000000001, 12.0000000001]$ (the exact gradient $3x^2$ is $[3, 12]$; the central
# difference is off by $h^2 = 10^{-10}$, a forward difference by $3xh \approx 3 \times 10^{-5}$).

# %%
from unet_scratch.exercises.ch05 import check_central_difference, check_rel_error, check_mini_unet_backward

def central_difference(f, x, h):
    """f: array -> float; x: any shape (perturbed in place, then restored); h: step -> gradient shaped like x."""
    ### BEGIN SOLUTION
    grad = np.zeros(x.shape)
    for i in np.ndindex(*x.shape):
        old = x[i]
        x[i] = old + h
        plus = f(x)
        x[i] = old - h
        minus = f(x)
        x[i] = old
        grad[i] = (plus - minus) / (2 * h)
    return grad
    ### END SOLUTION

check_central_difference(central_difference);


# %% [markdown]
# **Exercise 2.** Write `relative_error(a, b)`: $\|a - b\| / \max(\|a\| + \|b\|, 10^{-30})$ with Frobenius
# norms, the measure of this chapter's gradient check. It must be symmetric, lie in $[0, 1]$, and give 0
# (not `nan`) when both are zero. Worked example: $a = [3, 4]$, $b = [3, 4.1]$: $\|a - b\| = 0.1$,
# $\|a\| + \|b\| = 5 + 5.080$, so the relative error is $0.00992$.

# %%
def relative_error(a, b):
    """a, b: arrays of the same shape -> float in [0, 1]."""
    ### BEGIN SOLUTION
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(a) + np.linalg.norm(b), 1e-30))
    ### END SOLUTION

check_rel_error(relative_error);


# %% [markdown]
# **Exercise 3.** A U-Net in miniature, on vectors instead of images: an encoder, a bottleneck and a
# decoder that concatenates the encoder's output (the skip) after the bottleneck's, `[up, skip]`:
#
# $$h = \operatorname{relu}(x W_1), \qquad b = \operatorname{relu}(h W_2), \qquad y = [\,b \mid h\,]\, W_3 .$$
#
# Write `mini_unet_backward(x, w1, w2, w3, dy)` returning `(dx, dw1, dw2, dw3)` for $L = \sum y \odot \delta$,
# $\delta$ = `dy`. Shapes: `x` $(N, D)$, `w1` $(D, H_1)$, `w2` $(H_1, H_2)$, `w3` $(H_2 + H_1, K)$, `dy` $(N, K)$.
# The fork of section 1: $h$ is used twice, so its gradient is the sum of the bottleneck's and the skip's:
# with $\delta_c = \delta\, W_3^\top$ split as $[\delta_b \mid \delta_h^{\text{skip}}]$ (first $H_2$ columns, then $H_1$),
# $\partial L / \partial h = (\delta_b \odot [b > 0])\, W_2^\top + \delta_h^{\text{skip}}$, then the mask $[h > 0]$.

# %%
def mini_unet_backward(x, w1, w2, w3, dy):
    """x (N, D), w1 (D, H1), w2 (H1, H2), w3 (H2 + H1, K), dy (N, K) -> (dx, dw1, dw2, dw3), shaped like them."""
    ### BEGIN SOLUTION
    h = np.maximum(x @ w1, 0)
    b = np.maximum(h @ w2, 0)
    dcat = dy @ w3.T
    dw3 = np.concatenate([b, h], axis=1).T @ dy
    db, dh_skip = dcat[:, :b.shape[1]], dcat[:, b.shape[1]:]
    db_pre = db * (b > 0)
    dw2 = h.T @ db_pre
    dh_pre = (db_pre @ w2.T + dh_skip) * (h > 0)
    return dh_pre @ w1.T, x.T @ dh_pre, dw2, dw3
    ### END SOLUTION

check_mini_unet_backward(mini_unet_backward);

# %% [markdown]
# **Exercise 4.** Assemble the U-Net's **forward** pass (inference: dropout off) from its blocks. Write
# `unet_forward(model, x)` for a `UNet` built with the article's options (`[up, skip]` concatenation, transposed
# up-convolutions), `x` $(N, H, W, C)$ $\to$ the head's output $(N, H', W', K)$:
#
# * the encoder: `skip, h = block.forward(h, training=False)` for each `block` in `model.encoder` (top level
#   first); keep every `skip`;
# * the bottleneck: `h = model.bottleneck.forward(h, training=False)`;
# * the decoder, each block written out from its layers: `up = block.upconv(h)`; if `block.crop is not None`
#   (valid padding) `skip = block.crop(skip)`; `h = block.concat([up, skip])`; `h = block.conv2(block.conv1(h))`.
#   `model.decoder` starts at the **deepest** level, so it takes the skips in reverse order;
# * the head: `model.head(h)`.
#
# Every layer keeps what its backward pass needs (its cache), so exercise 5 can run right after. The check runs
# your function on three small float64 U-Nets (depth 2 and 3, same and valid padding, dropout 0.5) and compares
# with `UNet.forward`.

# %%
from unet_scratch.exercises.ch05 import check_unet_backward, check_unet_forward

def unet_forward(model, x):
    """model: a UNet (article options); x: (N, H, W, C) -> y: (N, H', W', K), the head's output, dropout off."""
    ### BEGIN SOLUTION
    skips, h = [], x
    for block in model.encoder:
        skip, h = block.forward(h, training=False)
        skips.append(skip)
    h = model.bottleneck.forward(h, training=False)
    for block, skip in zip(model.decoder, reversed(skips)):
        up = block.upconv(h)
        if block.crop is not None:
            skip = block.crop(skip)
        h = block.concat([up, skip])
        h = block.conv2(block.conv1(h))
    return model.head(h)
    ### END SOLUTION

check_unet_forward(unet_forward);


# %% [markdown]
# **Exercise 5.** Now the **backward** pass, run after a forward pass: `unet_backward(model, dy)` takes
# $\delta$ = `dy` = $\partial L / \partial y$ (the shape of the output), fills `model.grads` by calling the layers'
# and blocks' `backward`, and returns $\partial L / \partial x$ (the shape of `x`). In the order of section 1:
#
# * the head: `dh = model.head.backward(dy)`;
# * the decoder from the **top** level (next to the head) down, each block written out:
#   `dh = block.conv1.backward(block.conv2.backward(dh))`, then the concatenation's split
#   `dup, dskip = block.concat.backward(dh)` (in the forward pass's order, `[up, skip]`), the crop's paste
#   `dskip = block.crop.backward(dskip)` when there is a crop, and `dh = block.upconv.backward(dup)`; keep every
#   `dskip`;
# * the bottleneck: `dh = model.bottleneck.backward(dh)`;
# * the encoder from the **deepest** level up: `dh = block.backward(dh, dskip)` with that level's skip gradient,
#   which the block adds to the pool's gradient (the fork).
#
# The check compares the returned `dx` and every gradient in `model.grads` with `UNet.backward`.

# %%
def unet_backward(model, dy):
    """dy: (N, H', W', K) = dL/dy after model.forward(x) -> dL/dx: (N, H, W, C); fills model.grads."""
    ### BEGIN SOLUTION
    dh = model.head.backward(dy)
    dskips = []
    for block in reversed(model.decoder):            # the top level first
        dh = block.conv1.backward(block.conv2.backward(dh))
        dup, dskip = block.concat.backward(dh)
        if block.crop is not None:
            dskip = block.crop.backward(dskip)
        dskips.append(dskip)                         # level 1, 2, ..., depth
        dh = block.upconv.backward(dup)
    dh = model.bottleneck.backward(dh)
    for block, dskip in zip(reversed(model.encoder), reversed(dskips)):
        dh = block.backward(dh, dskip)               # the pool's gradient + the skip's
    return dh
    ### END SOLUTION

check_unet_backward(unet_backward);

# %% [markdown]
# **Exercises in this chapter:** 1. `central_difference` (the numerical gradient, restoring the weights),
# 2. `relative_error` (the gradient check's measure), 3. `mini_unet_backward` (a U in miniature: the
# concatenation's split and the skip's gradient added at the fork), 4. `unet_forward` and 5. `unet_backward`
# (the real U-Net assembled from its blocks). The mistakes the checks name: a one-sided (forward or backward)
# difference, a division by $h$ instead of $2h$ (1); no guard against $0 / 0$, a division by $\|a\|$ alone, an
# element-wise measure, no division at all (2); the skip's gradient forgotten, the concatenation's halves
# swapped, the skip's gradient added after ReLU's mask (3); the skips paired with the wrong levels, the halves
# swapped, dropout in training mode (4); the skip's gradient forgotten, paired with the wrong levels, the split's
# halves swapped, the crop's backward skipped (5).
