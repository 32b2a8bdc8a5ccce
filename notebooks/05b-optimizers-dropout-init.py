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
# # 05b · Optimizers, dropout and initialisation
#
# Chapter 05 computed every gradient of the U-Net. Three things turn those gradients into a trained
# network, and every later chapter uses them: an **update rule** that moves the weights, **dropout** (the
# source article's model has two `Dropout(0.5)` layers), and the **initial weights** the updates start
# from. This chapter builds each one, step for step as Keras 3 computes it.
#
# **What you will build:**
# 1. one step of SGD with momentum (the paper trains with momentum 0.99);
# 2. one step of Adam (chapter 08 trains with it);
# 3. inverted dropout, forward and backward;
# 4. the fans of a weight tensor, then He's and Glorot's initialisers, as Keras draws them.
#
# **What you will check:** your optimizers against `unet_scratch.optimizers` and against
# `keras.optimizers` over several steps; your dropout mask against `ops.dropout`'s; your initialisers by
# the variance, mean and bound of large samples, and Keras's fans against Keras's own initialisers. Then
# the two sanity checks every practitioner runs before a long training: the loss of a fresh network
# (near $\ln 2 = 0.693$ for a sigmoid head), and overfitting a single batch to a loss near zero.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"              # quiet TensorFlow: set before it is imported
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")    # small matrices: one BLAS thread is faster

import math
import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data, ops
from unet_scratch.initializers import compute_fans as keras_fans, get_initializer
from unet_scratch.ops.losses import binary_crossentropy
from unet_scratch.optimizers import SGD, Adam
from unet_scratch.keras_ref import import_keras

keras = import_keras()
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Gradient descent, and momentum
#
# Gradient descent moves every weight against its gradient $g = \partial L / \partial w$, by a step the
# learning rate $\eta$ sets: $w \leftarrow w - \eta\, g$. In a long narrow valley of the loss, the gradient
# points mostly *across* the valley, so plain descent zig-zags from wall to wall and creeps along it.
# **Momentum** (Polyak's heavy ball) keeps a velocity $v$, a running sum of past steps that decays by
# $\mu$ per step: the zig-zag components cancel, the steady component along the valley builds up.
# Keras 3's rule (`keras/src/optimizers/sgd.py`), with $v_0 = 0$:
#
# $$v \leftarrow \mu\, v - \eta\, g, \qquad w \leftarrow w + v .$$
#
# PyTorch writes it differently, $b \leftarrow \mu\, b + g$, $w \leftarrow w - \eta\, b$: for a constant
# $\eta$ the weights are the same ($v = -\eta\, b$), but Keras's velocity already carries the learning rate,
# so under a learning-rate schedule the two take different steps. Shapes: $w$, $g$, $v$ all have the
# weight's shape (a kernel $(3, 3, 64, 128)$, a bias $(128,)$); $\eta$ and $\mu$ are numbers.
#
# A worked example: $w = 1$, $g = 0.5$ at both steps, $\eta = 0.1$, $\mu = 0.9$. Step 1: $v = -0.05$,
# $w = 0.95$. Step 2: $v = 0.9 \cdot (-0.05) - 0.05 = -0.095$, $w = 0.855$: the second step is almost twice
# the first. With a constant gradient the step grows towards $\eta g / (1 - \mu)$, ten times plain
# descent's for $\mu = 0.9$ and a hundred times for the paper's $\mu = 0.99$.

# %% [markdown]
# **Exercise 1.** Write `sgd_momentum_step(w, g, v, lr, momentum)` returning `(w_new, v_new)`: one step of
# Keras's rule. `w`, `g`, `v` are float32 arrays of one shape, `lr` and `momentum` Python floats; return new
# arrays (do not change the inputs) and keep float32. The check runs several steps from $v = 0$, one of them
# with a learning-rate schedule, and compares with `unet_scratch.optimizers.SGD` and `keras.optimizers.SGD`.

# %%
from unet_scratch.exercises.ch05b import (check_adam, check_compute_fans, check_dropout, check_glorot_uniform,
                                          check_he_normal, check_sgd_momentum)

def sgd_momentum_step(w, g, v, lr, momentum):
    ### BEGIN SOLUTION
    v = momentum * v - lr * g
    return w + v, v
    ### END SOLUTION

check_sgd_momentum(sgd_momentum_step);

# %% [markdown]
# Both arrays match Keras's **bit for bit**: NumPy 2 turns the Python floats `lr` and `momentum` into
# float32 for a float32 array, as Keras casts them to the variable's dtype, and the operations run in
# Keras's order. The figure runs the package's optimizers (the ones your functions were checked against)
# on the simplest narrow valley, $L(w) = \tfrac12 (w_1^2 + 100\, w_2^2)$: its gradient is $(w_1, 100\, w_2)$.

# %%
def valley_run(optimizer, steps=60, w0=(-4.0, 0.5)):
    '''The path of w over `steps` updates of `optimizer` on L = (w1^2 + 100 w2^2) / 2.'''
    p = {"w": np.array(w0, np.float32)}
    path = [p["w"].copy()]
    for _ in range(steps):
        g = p["w"] * np.array([1.0, 100.0], np.float32)
        optimizer.apply(p, {"w": g})
        path.append(p["w"].copy())
    return np.array(path)

runs = {"SGD, lr 0.019": valley_run(SGD(0.019)),
        "SGD + momentum 0.8, lr 0.02": valley_run(SGD(0.02, momentum=0.8)),
        "Adam, lr 0.2": valley_run(Adam(0.2))}
loss = lambda w: 0.5 * (w[..., 0] ** 2 + 100 * w[..., 1] ** 2)

fig, ax = plt.subplots(1, 2, figsize=(11, 3.8), dpi=100, gridspec_kw=dict(width_ratios=[1.4, 1]))
g1, g2 = np.meshgrid(np.linspace(-4.5, 1.5, 200), np.linspace(-0.7, 0.7, 120))
ax[0].contour(g1, g2, loss(np.stack([g1, g2], -1)), levels=np.geomspace(0.05, 25, 12), cmap="gray", linewidths=0.6)
colors = [plt.cm.viridis(c) for c in (0.05, 0.5, 0.85)]
for (name, path), color in zip(runs.items(), colors):
    ax[0].plot(path[:, 0], path[:, 1], ".-", color=color, ms=3, lw=1, label=name)
    ax[1].semilogy(np.maximum(loss(path), 1e-12), color=color, label=name)
ax[0].plot(0, 0, "k*", ms=9)
ax[0].set(xlabel="$w_1$", ylabel="$w_2$", title="Paths from (-4, 0.5): plain SGD creeps along the valley")
ax[0].legend(fontsize=8, loc="lower right")
ax[1].set(xlabel="step", ylabel="loss L(w) (log scale)", title="Momentum and Adam reach the minimum far sooner")
ax[1].legend(fontsize=8)
fig.tight_layout(); plt.show()
for name, path in runs.items():
    print(f"{name:<28} loss after 60 steps below {10.0 ** math.ceil(math.log10(loss(path[-1]))):.0e}")

# %% [markdown]
# Plain SGD's learning rate cannot grow: above $2/100 = 0.02$ the steep direction ($w_2$, curvature 100)
# diverges, and at $0.019$ the shallow direction ($w_1$, curvature 1) shrinks by only 1.9 % per step.
# Momentum builds speed along the valley with almost the same learning rate (0.02 against plain SGD's 0.019; too much momentum, 0.9 or the paper's
# 0.99, would ring for longer on this small problem: try it). Adam (next) divides each coordinate's step by
# its own gradient scale, so both directions move at about the same speed.
#
# ## 2. Adam
#
# Adam (Kingma & Ba 2015) keeps two running averages per weight, of the gradient ($m$) and of its square
# ($v$), and steps by their ratio, so each weight's step is about $\eta$ whatever the size of its gradient.
# Keras 3's rule (`keras/src/optimizers/adam.py`), with $m_0 = v_0 = 0$ and the step number
# $t = \text{iterations} + 1$ (1 at the first step):
#
# $$m \leftarrow m + (g - m)(1 - \beta_1), \qquad v \leftarrow v + (g^2 - v)(1 - \beta_2),$$
# $$\alpha_t = \eta\, \frac{\sqrt{1 - \beta_2^{\,t}}}{1 - \beta_1^{\,t}}, \qquad
# w \leftarrow w - \alpha_t\, \frac{m}{\sqrt{v} + \epsilon} .$$
#
# The first line is the usual $m \leftarrow \beta_1 m + (1 - \beta_1) g$, rearranged. **Bias correction:**
# $m$ and $v$ start at 0, so after one step $m = (1 - \beta_1)\, g = 0.1\, g$, ten times too small;
# dividing by $1 - \beta_1^t$ undoes that (and $\sqrt{1 - \beta_2^t}$ does it for $v$), and the correction
# fades as $t$ grows. Keras folds both corrections into the step size $\alpha_t$ and adds $\epsilon$
# ($10^{-7}$ by default) to $\sqrt{v}$: the "more efficient" order that the Adam paper gives after its
# Algorithm 1. A worked example, the first step ($t = 1$, Keras's defaults $\beta_1 = 0.9$,
# $\beta_2 = 0.999$): $m = 0.1\,g$, $v = 0.001\,g^2$, $\alpha_1 = \eta \sqrt{0.001} / 0.1 = 0.316\,\eta$, so the
# step is $0.316\,\eta \cdot 0.1\,g / (0.0316\,|g| + \epsilon) \approx \eta\, \mathrm{sign}(g)$, for a gradient
# of $10^{-3}$ and one of $10^{3}$ alike.

# %%
p = {"w": np.zeros(4, np.float32)}
g = np.array([1e-3, -1.0, 1e3, 1e-5], np.float32)
Adam(learning_rate=0.01).apply(p, {"w": g})
print("gradients:                ", g)
print("first Adam step / lr:     ", np.round(-p["w"] / 0.01, 3))

# %% [markdown]
# (The gradient of $10^{-5}$ gets a smaller step: $0.0316 \cdot 10^{-5}$ is only three times $\epsilon$.)
#
# **Exercise 2.** Write `adam_step(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon)` returning
# `(w_new, m_new, v_new)`: one step of Keras's Adam. `iterations` counts the steps already taken, 0 at the
# first. `w`, `g`, `m`, `v` are float32 arrays of one shape; keep them float32: `math.sqrt` of a Python
# float gives a Python float, which NumPy applies in float32, while `np.sqrt` of one gives a float64 scalar
# that turns the whole update into float64. The check runs up to ten steps in four settings, including tiny
# gradients and a large $\epsilon$, where the placement of $\epsilon$ shows.

# %%
def adam_step(w, g, m, v, iterations, lr, beta_1, beta_2, epsilon):
    ### BEGIN SOLUTION
    t = iterations + 1
    m = m + (g - m) * (1 - beta_1)
    v = v + (g * g - v) * (1 - beta_2)
    alpha = lr * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
    return w - alpha * m / (np.sqrt(v) + epsilon), m, v
    ### END SOLUTION

check_adam(adam_step);

# %% [markdown]
# Not bit for bit this time, and the reason is instructive: Keras casts $\beta_2$ to float32 **before**
# computing $1 - \beta_2^t$, and float32's nearest value to 0.999 is 0.99900001, so Keras's
# $1 - \beta_2 = 0.00099998713$, not $0.001$. Its step size at $t = 1$ is 6 parts per million smaller than
# the one computed with Python floats; after ten full-size steps of $\eta = 10^{-2}$ a weight differs by about
# $5 \times 10^{-7}$, hence the check's tolerance of $10^{-6}$.
# (`unet_scratch.optimizers.Adam` makes the same casts, and calls the C library's `powf` as TensorFlow
# does, and is bit-identical to Keras.)
#
# **Keras's $\epsilon$ is not PyTorch's.** PyTorch's `Adam` follows the paper's Algorithm 1,
# $w \leftarrow w - \eta\, \hat m / (\sqrt{\hat v} + \epsilon)$ with $\hat m = m / (1 - \beta_1^t)$,
# $\hat v = v / (1 - \beta_2^t)$ (and a default $\epsilon = 10^{-8}$). Rewritten in that form, Keras's
# update has $\epsilon / \sqrt{1 - \beta_2^t}$ in place of $\epsilon$: 31.6 times larger at $t = 1$, equal
# for large $t$. How much that changes a step, for a constant gradient $g$ (so $\hat m = g$,
# $\hat v = g^2$) and the same $\epsilon = 10^{-7}$ on both sides:

# %%
eps, b2 = 1e-7, 0.999
print("Keras's step / PyTorch's step, constant gradient g, epsilon 1e-7 on both sides")
print(f"{'|g|':>8}" + "".join(f"{'t = ' + str(t):>12}" for t in (1, 10, 100, 1000, 10000)))
for size in (1.0, 1e-3, 1e-5, 1e-6, 1e-7):
    ratios = [(size + eps) / (size + eps / math.sqrt(1 - b2 ** t)) for t in (1, 10, 100, 1000, 10000)]
    print(f"{size:>8.0e}" + "".join(f"{r:>12.3f}" for r in ratios))

# %% [markdown]
# For gradients above about $10^{-4}$ the two agree to better than 3 %; for a weight whose gradients are
# $10^{-6}$ Keras's first steps are 3 to 4 times smaller. Porting a model between the frameworks with
# "the same Adam" therefore changes the early steps of weights with tiny gradients (and any run with a
# large $\epsilon$); the check's tiny-gradient case tells the two placements apart.
#
# ## 3. Inverted dropout
#
# During training, dropout keeps each unit with probability $1 - p$ ($p$ = `rate`) and zeroes the rest, so
# no unit can rely on any particular other one; the U-Net paper says its dropout layers "at the end of the
# contracting path perform further implicit data augmentation", and the article's model puts
# `Dropout(0.5)` after the 512-filter block and after the bottleneck. **Inverted** dropout rescales the
# kept units at training time, so that nothing changes at inference:
#
# $$\text{keep}_i = [u_i \ge p],\quad u_i \sim U[0, 1); \qquad y = x \odot \frac{\text{keep}}{1 - p},
# \qquad \mathbb E[y] = x; \qquad \text{inference: } y = x .$$
#
# The backward pass multiplies by **the same** mask: $dx = dy \odot \text{keep} / (1 - p)$. Shapes: $x$, $y$,
# the mask, $dy$, $dx$ all alike, e.g. $(N, 32, 32, 512)$. The rule "keep where $u \ge p$" is TensorFlow's
# (and `ops.dropout`'s); any mask with keep probability $1 - p$ is a correct dropout, but with this one
# your masks can be compared with the package's. Worked example: $x = (1, 2, 3, 4)$, $p = 0.5$,
# $u = (0.7, 0.2, 0.9, 0.4)$: keep $= (1, 0, 1, 0)$, $y = (2, 0, 6, 0)$; with $dy = (1, 1, 1, 1)$,
# $dx = (2, 0, 2, 0)$.

# %% [markdown]
# **Exercise 3.** Write `dropout_forward(x, rate, rng, training)` returning `(y, cache)` and
# `dropout_backward(dy, cache)` returning `dx`. Draw the uniforms with **one** call `rng.random(x.shape)`
# (the check passes a seeded generator and expects the same mask as `ops.dropout`), keep where
# $u \ge$ `rate`, keep y in x's dtype; when `training` is False or `rate` is 0 return `x` unchanged. The
# cache is yours: whatever the backward needs.

# %%
def dropout_forward(x, rate, rng, training):
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

check_dropout(dropout_forward, dropout_backward);

# %% [markdown]
# What inverted dropout does to a feature map, shown on a membrane image (`ops.dropout`, rate 0.5): one
# draw keeps about half the pixels at twice their value; averaged over many draws, the output is the input.

# %%
x_img = data.load("membranes", n=1, size=64)[0][0, :, :, 0]
drop_rng = np.random.default_rng(1)
samples = np.stack([ops.dropout(x_img, 0.5, drop_rng, training=True)[0] for _ in range(400)])
fig, ax = plt.subplots(1, 3, figsize=(11, 3.6), dpi=100, layout="constrained")
for a, img, title in zip(ax, [x_img, samples[0], samples.mean(0)],
                         ["input x", "one draw (rate 0.5): 0 or 2x", "mean of 400 draws: x again"]):
    im = a.imshow(img, cmap="gray", vmin=0, vmax=2)
    a.set(title=title, xlabel="column (px)")
ax[0].set_ylabel("row (px)")
fig.colorbar(im, ax=ax, shrink=0.8, label="pixel value")
plt.show()
print("kept fraction of one draw within 2 % of 0.5:", bool(abs((samples[0] != 0).mean() - 0.5) < 0.02))
print("mean of 400 draws within 0.15 of x everywhere:", bool(np.abs(samples.mean(0) - x_img).max() < 0.15))
print("inference (training=False) returns x itself:", ops.dropout(x_img, 0.5, drop_rng)[0] is x_img)

# %% [markdown]
# ## 4. Initialisation: fans, He, Glorot
#
# **Why the scale matters.** One output of a layer sums $n$ products, $z = \sum_{i=1}^{n} w_i x_i$. With
# independent zero-mean weights, $\operatorname{Var}(z) = n \operatorname{Var}(w)\, \mathbb E[x^2]$, and a
# ReLU passes half of a symmetric $z$'s power on: $\mathbb E[\operatorname{relu}(z)^2] =
# \tfrac12 \operatorname{Var}(z)$. So each conv+ReLU layer multiplies the signal's power by
# $\tfrac12\, n \operatorname{Var}(w)$: above 1 it explodes with depth, below 1 it vanishes.
# **He et al. (2015)** choose $\operatorname{Var}(w) = 2/n$, which keeps it at 1; the U-Net paper uses
# exactly this: "a Gaussian distribution with a standard deviation of $\sqrt{2/N}$, where $N$ denotes the
# number of incoming nodes of one neuron", $N = 9 \cdot 64 = 576$ for a $3 \times 3$ convolution on 64
# channels. **Glorot & Bengio (2010)**, derived for symmetric activations such as tanh (linear near 0),
# balance the forward and the backward pass with $\operatorname{Var}(w) = 2 / (n_\text{in} + n_\text{out})$;
# Keras's default `glorot_uniform` draws from $U(-\ell, \ell)$ with $\ell = \sqrt{6 / (n_\text{in} +
# n_\text{out})}$ (a uniform on $(-\ell, \ell)$ has variance $\ell^2 / 3$). The article's model sets no
# initialiser, so it gets Glorot; zhixuhao/unet, whose layout it follows, uses `he_normal`.
#
# **The fans.** Keras's `compute_fans` reads them off the kernel's shape: for $(k_1, \dots, a, b)$ the
# receptive field is $r = k_1 \cdots$, and fan_in $= r\,a$, fan_out $= r\,b$. For a Conv2D kernel
# $(3, 3, 64, 128)$ that is fan_in $= 576$ (the paper's $N$) and fan_out $= 1152$; a dense $(a, b)$ matrix
# has $(a, b)$, a vector $(n,)$ has $(n, n)$, a scalar $(1, 1)$. A Conv2DTranspose kernel is stored
# $(k_h, k_w, \text{out}, \text{in})$ and Keras applies the same rule, so its "fan_in" counts the **output**
# channels (PyTorch's `ConvTranspose2d` does the same with its $(\text{in}, \text{out}, k_h, k_w)$ weight).
#
# **Keras's He is truncated.** `he_normal` draws from a normal with standard deviation
# $\sqrt{2 / \text{fan\_in}} / 0.87962566$ and redraws every value beyond two of those standard deviations;
# $0.8796$ is the standard deviation of a standard normal cut at $\pm 2$, so the result has exactly the
# standard deviation $\sqrt{2/\text{fan\_in}}$, with no value beyond $2.27$ of them. The paper's Gaussian is
# not truncated (`initializers.paper_normal`).

# %% [markdown]
# **Exercise 4.** Write `compute_fans(shape)` returning `(fan_in, fan_out)` as Keras does, for shapes of any
# length (`()`, `(n,)`, `(a, b)`, `(3, 3, 64, 128)`, ...).

# %%
def compute_fans(shape):
    ### BEGIN SOLUTION
    if len(shape) == 0:
        return 1, 1
    if len(shape) == 1:
        return shape[0], shape[0]
    field = math.prod(shape[:-2])
    return field * shape[-2], field * shape[-1]
    ### END SOLUTION

check_compute_fans(compute_fans);

# %% [markdown]
# **Exercise 5.** Write `he_normal(shape, rng, dtype="float32")`: Keras's truncated He normal, drawn from
# `rng` (`rng.standard_normal`), returned as an array of `shape` and `dtype`. Redraw the values beyond two
# standard deviations until none is left. The check looks at the variance, mean and largest value of samples
# of at least 131,072 weights. It has the signature of the package's initialisers, so
# `UNet(kernel_initializer=he_normal)` would build the network with yours.

# %%
def he_normal(shape, rng, dtype="float32"):
    ### BEGIN SOLUTION
    std = math.sqrt(2 / compute_fans(shape)[0]) / 0.87962566103423978
    z = rng.standard_normal(shape)
    outside = np.abs(z) > 2
    while outside.any():
        z[outside] = rng.standard_normal(int(outside.sum()))
        outside = np.abs(z) > 2
    return (z * std).astype(dtype)
    ### END SOLUTION

check_he_normal(he_normal);

# %% [markdown]
# **Exercise 6.** Write `glorot_uniform(shape, rng, dtype="float32")`: $U(-\ell, \ell)$,
# $\ell = \sqrt{6 / (\text{fan\_in} + \text{fan\_out})}$, drawn with `rng.uniform`.

# %%
def glorot_uniform(shape, rng, dtype="float32"):
    ### BEGIN SOLUTION
    fan_in, fan_out = compute_fans(shape)
    limit = math.sqrt(6 / (fan_in + fan_out))
    return rng.uniform(-limit, limit, size=shape).astype(dtype)
    ### END SOLUTION

check_glorot_uniform(glorot_uniform);

# %% [markdown]
# **Against Keras.** Keras's own initialisers, sampled: their random numbers differ from NumPy's, their
# statistics must not, and their variance tells which fans they used. Keras's fan_in can also be read back
# from its samples: `VarianceScaling(mode="fan_in", distribution="uniform")` draws from
# $U(-\sqrt{3/\text{fan\_in}}, \sqrt{3/\text{fan\_in}})$, so the largest $|w|$ of a large sample gives
# fan_in $\approx 3 / \max |w|^2$. The up-conv kernel below is the article's deepest one,
# `Conv2DTranspose(512, 2, strides=2)` on 1024 channels; `keras_fans` is the package's `compute_fans`, the one
# your function was checked against.

# %%
conv_kernel, upconv_kernel = (3, 3, 128, 128), (2, 2, 512, 1024)
layer = keras.layers.Conv2DTranspose(512, 2, strides=2)
layer.build((None, 8, 8, 1024))
print("Keras stores the up-conv's kernel as (kh, kw, out, in):", tuple(layer.kernel.shape) == upconv_kernel)
for shape in (conv_kernel, upconv_kernel):
    fan_in_keras = 3 / float(np.max(np.abs(keras.initializers.VarianceScaling(
        1.0, "fan_in", "uniform", seed=0)(shape)))) ** 2
    print(f"kernel {shape}: Keras's fan_in {round(fan_in_keras)}, compute_fans {keras_fans(shape)[0]}")
for name, theirs, var in [("HeNormal", keras.initializers.HeNormal(seed=0), lambda s: 2 / keras_fans(s)[0]),
                          ("GlorotUniform", keras.initializers.GlorotUniform(seed=0),
                           lambda s: 2 / sum(keras_fans(s)))]:
    for shape in (conv_kernel, upconv_kernel):
        w_keras = np.asarray(theirs(shape))
        print(f"keras {name:<14} {str(shape):<19} variance within 3 % of the formula with compute_fans: "
              f"{abs(float(w_keras.var()) / var(shape) - 1) < 0.03}")

# %% [markdown]
# What the scale does, in a stack of 16 convolutions ($3 \times 3$, 32 channels, same padding) each followed
# by a ReLU, fed a $32 \times 32$ image of unit power: the root-mean-square of each layer's output, for three
# choices: He and Glorot (the package's initialisers, the ones your functions were checked against) and a small
# fixed standard deviation of 0.01.

# %%
x_stack = np.random.default_rng(2).standard_normal((1, 32, 32, 32)).astype(np.float32)
inits = {"he_normal (Var 2/fan_in)": get_initializer("he_normal"),
         "glorot_uniform (Var 2/(fan_in+fan_out))": get_initializer("glorot_uniform"),
         "normal, std 0.01": lambda shape, rng, dtype: (0.01 * rng.standard_normal(shape)).astype(dtype)}
rms = {}
for name, init in inits.items():
    init_rng, h, rms[name] = np.random.default_rng(3), x_stack, []
    for _ in range(16):
        h = ops.relu(ops.conv2d(h, init((3, 3, 32, 32), init_rng, "float32"), None, 1, "same")[0])[0]
        rms[name].append(float(np.sqrt(np.mean(h ** 2))))

fig, ax = plt.subplots(figsize=(7.5, 3.6), dpi=100)
for (name, r), c in zip(rms.items(), (0.1, 0.5, 0.85)):
    ax.semilogy(range(1, 17), r, "o-", ms=3, color=plt.cm.viridis(c), label=name)
ax.semilogy(range(1, 17), [2 ** -(k / 2) for k in range(1, 17)], ":", color="0.4", label="halving the power per layer")
ax.set(xlabel="layer (3x3 conv + ReLU)", ylabel="RMS of the layer's output",
       title="He keeps the signal's size; Glorot halves its power per layer")
ax.legend(fontsize=8); fig.tight_layout(); plt.show()
print("He: RMS after 16 layers within a factor 2 of the first layer's:", 0.5 < rms["he_normal (Var 2/fan_in)"][-1] / rms["he_normal (Var 2/fan_in)"][0] < 2)
print("Glorot: RMS shrinks by more than 50x over 16 layers:", rms["glorot_uniform (Var 2/(fan_in+fan_out))"][-1] / rms["glorot_uniform (Var 2/(fan_in+fan_out))"][0] < 1 / 50)

# %% [markdown]
# Glorot's $\operatorname{Var}(w) = 2/(n_\text{in} + n_\text{out}) = 1/n$ when $n_\text{in} = n_\text{out}$:
# half of He's, so each ReLU layer halves the power, the dotted line. The article's U-Net stacks 23
# Glorot-initialised layers, and the first sanity check shows what that does to its output.
#
# ## 5. Two sanity checks before any long training
#
# **The loss at step 0.** A sigmoid head whose logits $z$ are near 0 predicts $p = 0.5$ everywhere, and the
# binary cross-entropy $-[t \ln p + (1 - t) \ln(1 - p)]$ is then $\ln 2 = 0.693$ for **every** target,
# membrane or not. (For a softmax head with $K$ classes it is $\ln K$.) A fresh network's loss far above that
# means its output is confidently wrong from the start: badly scaled inputs or weights, a wrong target
# encoding. Below, the article's U-Net (Glorot, 31 million weights) at $64 \times 64$, the same network fed
# images in 0-255 instead of 0-1 (the classic data mistake), and a small He-initialised U-Net, on four
# membrane images. A second number worth knowing: the best *constant* prediction, $p = \bar t$ (the
# membrane fraction), has the loss $H(\bar t)$, the entropy of the target mean; a network whose loss stalls
# there has learned the fraction and nothing else.

# %%
x4, t4 = data.load("membranes", n=4, size=64)
t_mean = float(t4.mean())
seed_unet = UNet(input_shape=(64, 64, 1), seed=0)                      # the article's model, Glorot
small_he = UNet(input_shape=(64, 64, 1), base_filters=16, depth=2, kernel_initializer="he_normal", seed=0)
print(f"ln 2 = {math.log(2):.3f}; best constant prediction p = {t_mean:.3f}: loss "
      f"{-(t_mean * math.log(t_mean) + (1 - t_mean) * math.log(1 - t_mean)):.3f}")
for name, model, x_in in [("article's U-Net, images in [0, 1]", seed_unet, x4),
                          ("article's U-Net, images in [0, 255]", seed_unet, 255 * x4),
                          ("small He U-Net, images in [0, 1]", small_he, x4)]:
    z = model.forward(x_in, logits=True)
    bce = binary_crossentropy(z, t4, from_logits=True)[0]
    print(f"{name:<36} logits: std {z.std():.0e}   initial BCE {bce:.2f}")

# %% [markdown]
# The article's U-Net starts at $\ln 2$ to two decimals: after 23 Glorot-initialised layers its logits are
# about $10^{-2}$. Images in 0-255 make the input 255 times larger; the logits' spread grows from about
# $10^{-2}$ to about 2 and the loss starts far above $\ln 2$, confidently wrong on many pixels. The He
# network, whose signal keeps its size through the layers, starts above $\ln 2$ too, and that is not a bug:
# the check at step 0 asks "about $\ln 2$, or a few times more?", not for three decimals. What it catches is
# a loss of 5 or 50 at step 0: inputs in the wrong range, weights far too large, a head that saturates.
#
# **Overfit one batch.** A network that can learn anything must be able to memorise two images. If the
# loss of one fixed batch does not go to near zero within a hundred steps or so, something is broken (a backward
# pass, a sign in the optimizer, a frozen layer) and no amount of data will help. Here a small U-Net,
# Adam, two $32 \times 32$ membrane images, no dropout, no augmentation:

# %%
xb, tb = data.load("membranes", n=2, size=32)
tiny = UNet(input_shape=(32, 32, 1), base_filters=16, depth=2, dropout=0, kernel_initializer="he_normal", seed=0)
opt = Adam(learning_rate=3e-3)
losses = []
for step in range(80):
    z = tiny.forward(xb, training=True, logits=True)
    value, dz = binary_crossentropy(z, tb, from_logits=True)
    tiny.backward(dz)
    opt.apply(tiny.params, tiny.grads)
    losses.append(value)

fig, ax = plt.subplots(figsize=(7, 3.2), dpi=100)
ax.semilogy(range(1, 81), losses, color=plt.cm.viridis(0.3), label="BCE of the batch")
ax.axhline(math.log(2), color="0.4", ls="--", lw=1, label="ln 2")
ax.set(xlabel="Adam step (learning rate 3e-3)", ylabel="binary cross-entropy (log)",
       title="Overfitting two images: the loss falls below 1e-3 in 80 steps")
ax.legend(fontsize=8); fig.tight_layout(); plt.show()
for step in (1, 20, 40, 60, 80):
    print(f"step {step:>2}: loss below {10.0 ** math.ceil(math.log10(losses[step - 1])):.0e}")
print("loss after 80 steps below 1e-3:", losses[-1] < 1e-3)

# %% [markdown]
# **Exercises in this chapter** (each writes an update, a forward/backward pass or an initialiser):
# 1. `sgd_momentum_step` (Keras's SGD with momentum; named mistakes: PyTorch's convention, momentum on $w$,
#    the sign flipped); 2. `adam_step` (Keras's Adam; no bias correction, $\epsilon$ inside the root,
#    PyTorch's $\epsilon$, $t$ from 0); 3. `dropout_forward` / `dropout_backward` (not rescaled, rescaled by
#    $1 - p$ or $p$, applied at inference, a new mask in backward); 4. `compute_fans` (no receptive field,
#    swapped); 5. `he_normal` and 6. `glorot_uniform` (wrong fans, normal vs uniform, untruncated or
#    uncorrected, the global generator).
