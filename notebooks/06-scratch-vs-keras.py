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
# # 06 · Scratch vs Keras: the whole U-Net, layer by layer and step by step
#
# **What you will build:** the source article's U-Net twice, once from scratch (`unet_scratch.UNet`) and once
# in Keras 3 (`unet_scratch.keras_ref.build_keras_unet`), with the same weights in both.
# **What you will check:** that the two agree
# 1. weight for weight, after moving the weights **both ways** (`to_keras`, `from_keras`), name by name;
# 2. layer for layer, in a **parity report** of every layer's output and every weight's gradient
#    (`unet_scratch.parity.compare`), with a plot;
# 3. step for step, when both are **trained in lockstep** with SGD and with Adam (`parity.lockstep`).
#
# Along the way: why the gradients are compared *teacher-forced* (float32 near-ties in max-pooling), and
# where the Keras 2 spellings that fail on Keras 3 really come from (not from the article: from the Keras
# U-Net repository its code follows).
#
# We use the **full-width** network (64 filters at the top, depth 4: the article's 31 million parameters) on
# tiny 32x32 images, so that everything runs in seconds on a laptop CPU; only the training run of
# section 6 uses a narrower twin.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import numpy as np
import matplotlib.pyplot as plt
from unet_scratch import UNet, data
from unet_scratch.keras_ref import (import_tensorflow, import_keras, build_keras_unet, to_keras, from_keras,
                                    compare, lockstep, FORWARD_ATOL, GRAD_RTOL)
tf = import_tensorflow(); keras = import_keras()

keras.utils.set_random_seed(0)   # Python, NumPy and TensorFlow seeds in one call
rng = np.random.default_rng(0)
SIZE = 32                        # divisible by 2**4 = 16, as a depth-4 'same' U-Net needs

# %% [markdown]
# ## 1. The same network, twice
#
# `build_keras_unet(input_shape)` is the article's `unet(input_shape)` function (its section 5.2, whose
# code, down to `tf.keras.Model(inputs=[inputs], outputs=[outputs])`, runs unchanged on Keras 3), with
# every layer named like its scratch twin. `UNet` is our NumPy model. Both take the article's defaults: $3 \times 3$ ReLU
# convolutions with $64 \cdot 2^{\ell - 1}$ filters at level $\ell$, $2 \times 2$ max-pooling, dropout 0.5,
# $2 \times 2$ stride-2 transposed convolutions and a $1 \times 1$ sigmoid head. A model is fully
# convolutional, so the parameter count does not depend on the image size: it is the article's
# 31,030,593 at $32 \times 32$ too.

# %%
model = UNet(input_shape=(SIZE, SIZE, 1), seed=0)                  # NumPy, our own initialisation
kmodel = build_keras_unet(input_shape=(SIZE, SIZE, 1), seed=0)     # Keras, Keras's initialisation
print("scratch parameters:", f"{model.count_params():,}")
print("Keras parameters:  ", f"{kmodel.count_params():,}")
print("same count:", model.count_params() == kmodel.count_params() == 31_030_593)

# %% [markdown]
# ## 2. The name mapping
#
# Moving weights between two frameworks needs a rule that says which array goes where. Ours is the simplest
# possible one: every Keras layer has the name of its scratch twin, so a Keras variable's `path`
# (`"enc1_conv1/kernel"`) *is* the scratch parameter's name. The layouts agree too (the course uses NHWC
# tensors and HWIO kernels, like Keras), so no array needs a transpose:
#
# | layer | scratch `params[...]` | Keras variable | shape |
# |---|---|---|---|
# | `Conv2D` | `"enc1_conv1/kernel"`, `"enc1_conv1/bias"` | `layer.kernel`, `layer.bias` | $(K_H, K_W, C_{in}, F)$, $(F,)$ |
# | `Conv2DTranspose` | `"dec4_upconv/kernel"` | `layer.kernel` | $(K_H, K_W, F, C_{in})$: output channels **before** input channels |
# | `MaxPooling2D`, `Dropout`, `Concatenate` | none | none | |
#
# Moving weights from PyTorch is where layouts bite: its `Conv2d` weight is $(F, C_{in}, K_H, K_W)$ (exercise 1),
# its `ConvTranspose2d` weight $(C_{in}, F, K_H, K_W)$. Here is the whole table, built from the two models:

# %%
kvars = {v.path: v for v in kmodel.trainable_variables}
klayer = {l.name: type(l).__name__ for l in kmodel.layers}
print(f"{'scratch parameter':<26}{'shape':<20}{'Keras layer (type)':<36}{'same shape'}")
for name, p in model.params.items():
    if name.endswith("/kernel"):
        layer = name.split("/")[0]
        v = kvars[name]
        print(f"{name:<26}{str(p.shape):<20}{layer + ' (' + klayer[layer] + ')':<36}{tuple(v.shape) == p.shape}")
print("... and a '/bias' of shape (F,) beside every kernel")
print("scratch names == Keras variable paths, in the same order:",
      list(model.params) == [v.path for v in kmodel.trainable_variables])

# %% [markdown]
# ## 3. Weights both ways
#
# `to_keras(model, kmodel)` assigns every scratch array to the Keras variable of the same name;
# `from_keras(kmodel)` builds a scratch `UNet` from the Keras model's configuration and copies its weights
# in. Both check every name and shape before copying anything. After a transfer the weights are
# **bit-identical**, so any later difference comes from the computation, not the copy.

# %%
x = data.load("membranes", "train", n=2, size=SIZE)[0]          # (2, 32, 32, 1) float32 in [0, 1]

to_keras(model, kmodel)                                           # scratch -> Keras
same = all(np.array_equal(model.params[v.path], v.numpy()) for v in kmodel.trainable_variables)
print("scratch -> Keras, weights bit-identical:", same)

other = build_keras_unet(input_shape=(SIZE, SIZE, 1), seed=1)    # different weights ...
back = from_keras(other)                                          # ... Keras -> a new scratch model
same = all(np.array_equal(back.params[v.path], v.numpy()) for v in other.trainable_variables)
print("Keras -> scratch, weights bit-identical:", same)
print("rebuilt with the same configuration:", back.get_config() == model.get_config())

y_s, y_k = back.forward(x), other([x], training=False).numpy()
print(f"outputs agree (rtol = atol = {FORWARD_ATOL:g}):", np.allclose(y_s, y_k, rtol=FORWARD_ATOL, atol=FORWARD_ATOL))
try:                                                              # a half-width model does not fit
    to_keras(UNet(input_shape=(SIZE, SIZE, 1), base_filters=32, seed=0), kmodel)
except ValueError as err:
    print("ValueError:", err)

# %% [markdown]
# ## 4. The parity report
#
# `compare(model, kmodel, x, y)` runs both networks on the same batch and records **every** layer's output
# on each side (33 of them), then back-propagates the same binary cross-entropy through both and compares
# every weight's gradient (46 arrays, Keras's from `tf.GradientTape`):
#
# * a layer output passes when `np.allclose(scratch, keras, rtol=1e-5, atol=1e-5)`;
# * a gradient passes when $\lVert g_{\text{scratch}} - g_{\text{keras}} \rVert / \lVert g_{\text{keras}} \rVert \le 10^{-4}$.
#
# The result is a `ParityReport`: `print(report)` gives the table, `.verdict()` one line,
# `.to_dict()` plain Python data (for a CI log or a JSON file) and `.plot()` a quick figure. The table
# holds raw errors, which differ from machine to machine in their last digits, so that cell's output is not
# compared by the tests (`# NBVAL_IGNORE_OUTPUT`); the verdict after it is. That verdict is stricter than the
# report's pass rule: it asks every layer output to agree within $10^{-6}$ and every gradient within
# $10^{-5}$ relative, bounds chosen well above the errors seen so that the text is the same on every machine.

# %%
y = data.load("membranes", "train", n=2, size=SIZE)[1]           # the membrane masks, {0, 1}
report = compare(model, kmodel, x, y)

# %%
# NBVAL_IGNORE_OUTPUT
print(report)


# %%
def stable_verdict(report):
    # booleans against bounds well above the errors seen: text that does not change between machines
    d = report.to_dict()
    fwd = [r for r in d["rows"] if r["kind"] == "forward"]
    grd = [r for r in d["rows"] if r["kind"] == "gradient"]
    return {"passed": d["passed"],
            "layer outputs compared": len(fwd),
            "weight gradients compared": len(grd),
            "every layer output within 1e-6": max(r["max_abs"] for r in fwd) < 1e-6,
            "every gradient within 1e-5 relative": max(r["rel"] for r in grd) < 1e-5,
            "loss agrees to 1e-6": abs(report.loss_scratch - report.loss_keras) < 1e-6 * report.loss_keras}

verdict = stable_verdict(report)
for k, v in verdict.items():
    print(f"{k}: {v}")
again = stable_verdict(compare(model, kmodel, x, y))             # the same verdict on a second run
print("same verdict on a second run:", again == verdict)

# %% [markdown]
# The figure plots the errors of `report.to_dict()` against both sets of bounds: the report's pass rule
# (solid lines) and the stricter bounds of the verdict above (dotted lines). A log axis cannot show an
# error of exactly 0, so those layers get their own marker at the bottom, named in the legend.

# %%
rows = report.to_dict()["rows"]
fwd = [r for r in rows if r["kind"] == "forward"]
grd = [r for r in rows if r["kind"] == "gradient" and r["name"].endswith("/kernel")]
where = {r["name"]: i for i, r in enumerate(fwd)}
series = [("layer output: max |scratch - Keras|", list(range(len(fwd))), [r["max_abs"] for r in fwd], "o", 0.25),
          ("kernel gradient: relative error", [where[r["name"].split("/")[0]] for r in grd],
           [r["rel"] for r in grd], "s", 0.75)]
ZERO_AT = 1e-11                                       # where an exact 0 is drawn on the log axis
fig, ax = plt.subplots(figsize=(11, 4.2), dpi=100)
for label, xs, errs, marker, colour in series:
    xs, errs = np.array(xs), np.array(errs)
    ax.semilogy(xs[errs > 0], errs[errs > 0], marker, ms=4, color=plt.cm.viridis(colour), label=label)
    if np.any(errs == 0):
        ax.semilogy(xs[errs == 0], np.full(np.sum(errs == 0), ZERO_AT), "v", ms=6, mfc="none",
                    color=plt.cm.viridis(colour), label=f"{label.split(':')[0]}: exactly 0 (drawn at {ZERO_AT:g})")
ax.axhline(FORWARD_ATOL, color=plt.cm.viridis(0.25), lw=1, label=f"report: outputs pass at atol {FORWARD_ATOL:g} (+ rtol {FORWARD_ATOL:g})")
ax.axhline(GRAD_RTOL, color=plt.cm.viridis(0.75), lw=1, label=f"report: gradients pass at {GRAD_RTOL:g} relative")
ax.axhline(1e-6, color=plt.cm.viridis(0.25), lw=1, ls=":", label="verdict above: outputs within 1e-6")
ax.axhline(1e-5, color=plt.cm.viridis(0.75), lw=1, ls=":", label="verdict above: gradients within 1e-5")
ax.set_xticks(range(len(fwd)), [r["name"] for r in fwd], rotation=90, fontsize=7)
ax.set_ylim(ZERO_AT / 3, 1e-3)
ax.set_xlabel("layer, in the order of the forward pass")
ax.set_ylabel("error (unitless, log scale)")
ax.set_title("Scratch vs Keras, full-width U-Net at 32x32: every error lies far below every bound",
             fontsize=10, loc="left")
ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0)
fig.tight_layout()
plt.show()

# %% [markdown]
# Notice how small and how flat the errors are: the layer outputs differ by about $10^{-9}$ to $10^{-7}$
# (the first few layers not at all), the kernel gradients by about $10^{-7}$ to $10^{-6}$ relative: the
# rounding of float32 sums done in a different order, with no growth along the 33 layers.
#
# ## 5. Why the gradients are compared teacher-forced
#
# A max-pool's backward sends each window's gradient to **one** pixel: TensorFlow's rule (and ours) is the
# *first* maximum in row-major order. Now suppose two pixels of a window hold mathematically equal values,
# computed by two convolutions that sum their terms in different orders. In float32 they can come out one
# rounding step (*ulp*, $\approx 6 \times 10^{-8}$ relative) apart, tied on one side and ordered the other way
# on the other. Both frameworks are right; they just route that window's gradient to different pixels, and
# everything downstream of that pixel in the backward pass changes. One such window among thousands moves a
# weight gradient by $\sim 10^{-3}$ relative: a failed check that is not a bug.
#
# Float32 addition is not associative, which is all it takes:

# %%
from unet_scratch.ops.pool import maxpool2d, maxpool2d_backward

# Two neighbouring pixels whose exact values are equal: p1 = a + b + c and p2 = c + b + a (a mirrored
# neighbourhood). Framework A adds left to right, framework B right to left.
a, b, c = np.float32(0.6), np.float32(0.7), np.float32(0.3)
print("(a + b) + c == a + (b + c) in float32:", (a + b) + c == a + (b + c))
sides = {"A": [(a + b) + c, (c + b) + a], "B": [a + (b + c), c + (b + a)]}
dy = np.ones((1, 1, 1, 1), np.float32)                 # the gradient arriving at the pooled pixel
for side, (p1, p2) in sides.items():
    window = np.array([[[[p1], [p2]], [[0.0], [0.0]]]], np.float32)       # one 2x2 window, (1, 2, 2, 1)
    dx = maxpool2d_backward(dy, maxpool2d(window, 2)[1])[0, :, :, 0]
    print(f"framework {side}: p1 == p2: {p1 == p2}, the gradient goes to pixel",
          tuple(int(i) for i in np.argwhere(dx)[0]))

# %% [markdown]
# The same happens at a ReLU whose input is within an ulp of 0. So `compare` checks the backward pass
# **teacher-forced**: every scratch layer computes its forward from *Keras's* input to that layer, keeps
# Keras's output (and Keras's ReLU mask) in its cache, and hands Keras's output on. Every routing decision is
# then identical on both sides, and what is left to compare is the arithmetic of each backward op. The
# windows that *did* route differently in the free-running pass are counted in `report.near_ties`, so
# nothing is hidden. (The forward pass needs no such help: a near-tie changes which pixel wins, not the
# value, by more than an ulp.)
#
# ## 6. Lockstep training
#
# The real test of a backward pass and an optimizer is training. `lockstep` copies the scratch weights into
# Keras, then for each step feeds the **same batch** to both, computes the binary cross-entropy, takes one
# optimizer step on each side (our `SGD`/`Adam` against `keras.optimizers.SGD`/`Adam`) and records both
# losses. Free-running this time, nothing is forced, so any difference in gradients or update rules would
# grow from step to step. We plot the two loss curves and their relative gap
# $\lvert L_{\text{scratch}} - L_{\text{keras}} \rvert / L_{\text{keras}}$.
#
# Steps of the full-width network take most of a minute on a small CPU, so this section trains the
# same depth-4 U-Net with 16 filters at the top (1.9 million parameters): the same layers and code paths,
# a sixteenth of the work. (`lockstep` also reports `weight_rel_diff`, the largest relative difference of
# any weight array after training. Watch it for the zero-initialised biases of the deep layers: their
# norms are tiny, so their last-digit differences look large in relative terms.)
#
# One detail: given a sigmoid output, Keras's `BinaryCrossentropy` quietly computes the loss from the
# head's *logits* (chapter 07), while our side uses the clipped-probability form. The two agree to
# rounding as long as no probability is within $10^{-7}$ of 0 or 1, as here. (The curves zig-zag because the two batches
# take turns and one is harder than the other; what matters is that the two curves coincide.)

# %%
images, masks = data.load("membranes", "train", n=4, size=SIZE)
batches = [(images[i:i + 2], masks[i:i + 2]) for i in (0, 2)]   # two batches of 2, used in turn

runs = {}
for opt, lr in [("SGD", 0.01), ("Adam", 1e-3)]:        # depth 4 as before, 16 filters at the top (for time)
    net = UNet(input_shape=(SIZE, SIZE, 1), base_filters=16, seed=0)
    knet = build_keras_unet(input_shape=(SIZE, SIZE, 1), base_filters=16, seed=0)
    runs[opt] = lockstep(net, knet, batches, optimizer=opt.lower(), steps=10, learning_rate=lr)

fig, ax = plt.subplots(2, 2, figsize=(10, 6.6), dpi=100)
for row, (opt, res) in zip(ax, runs.items()):
    steps = np.arange(1, len(res.rel_diff) + 1)
    row[0].plot(steps, res.scratch_losses, "o-", ms=3, color=plt.cm.viridis(0.25), label="scratch (NumPy)")
    row[0].plot(steps, res.keras_losses, "--", color=plt.cm.viridis(0.75), label="Keras")
    row[0].set_title(f"{opt}: the scratch and Keras loss curves lie on top of each other", fontsize=9)
    row[0].set_ylabel("binary cross-entropy (unitless)", fontsize=8)
    row[0].legend(fontsize=8)
    gap = np.asarray(res.rel_diff)
    row[1].semilogy(steps[gap > 0], gap[gap > 0], "o", ms=4, color=plt.cm.viridis(0.25), label="relative loss gap")
    if np.any(gap == 0):
        row[1].semilogy(steps[gap == 0], np.full(np.sum(gap == 0), ZERO_AT), "v", ms=6, mfc="none",
                        color=plt.cm.viridis(0.25), label=f"exactly 0 (drawn at {ZERO_AT:g})")
    row[1].axhline(GRAD_RTOL, color="grey", lw=1, label=f"lockstep passes below {GRAD_RTOL:g}")
    row[1].axhline(1e-5, color="grey", lw=1, ls=":", label="the check below: 1e-5")
    row[1].set_ylim(ZERO_AT / 3, 1e-3)
    row[1].set_title(f"{opt}: the gap stays at float32 rounding or exactly 0", fontsize=9)
    row[1].set_ylabel("|L_scratch - L_Keras| / L_Keras", fontsize=8)
    row[1].legend(fontsize=7, loc="center right")
    for a in row:
        a.set_xlabel("training step (batch of 2 images, 32x32)")
fig.tight_layout()
plt.show()

# %%
for opt, res in runs.items():
    went_down = np.mean(res.scratch_losses[-2:]) < np.mean(res.scratch_losses[:2])   # the batches alternate
    print(f"{opt}: loss went down:", went_down,
          "| every step's loss gap below 1e-5:", res.max_rel_diff < 1e-5)

# %% [markdown]
# ## 7. Keras API drift: where the Keras 2 spellings come from
#
# The article's code (its section 5.2) is not the problem: it builds the model with
# `tf.keras.Model(inputs=[inputs], outputs=[outputs])`, runs unchanged on Keras 3, and stops there: it has no
# `compile` and no `fit`, so its training is not specified at all (chapter 10 lists what else it leaves out).
# The Keras 2 spellings that readers paste next to it, and that fail on Keras 3, come from
# **zhixuhao/unet**, the most-forked Keras U-Net, whose layer layout and variable names the article's code
# follows (`conv1` ... `conv9`, `drop4`, `drop5`, `up6` ...; its function is `unet(pretrained_weights=None,
# input_size=(256, 256, 1))`, the article's `unet(input_shape)`). There, `model.py` built the model with
# `Model(input=inputs, output=conv10)` in its earlier versions and compiles it with `Adam(lr=1e-4)`,
# `main.py` trains with `model.fit_generator(...)`, and `data.py` feeds it from Keras's
# `ImageDataGenerator`. Run here on the installed Keras:
#
# | zhixuhao/unet (Keras 2) | Keras 3 | what Keras 3 says |
# |---|---|---|
# | `Model(input=inputs, output=conv10)` | `Model(inputs=inputs, outputs=conv10)` | `ValueError` (unrecognized keyword arguments) |
# | `Adam(lr=1e-4)` | `Adam(learning_rate=1e-4)` | `ValueError` (argument not recognized) |
# | `model.fit_generator(gen, ...)` | `model.fit(gen, ...)` (also takes generators and `tf.data`) | `AttributeError` |
#
# Other drift you may meet in older code: `from keras.layers import merge` and `merge(..., mode='concat')`
# became `concatenate`; `Conv2D(64, 3, 3)` (Keras 1's separate kernel sizes) now means `strides=3`;
# `ImageDataGenerator` is gone from Keras 3 (appendix A); and a `Dropout` layer is active only when
# `training=True` (in `fit`, not in `predict`).

# %%
tiny_in = keras.Input((16, 16, 1))
tiny_out = keras.layers.Conv2D(1, 1, activation="sigmoid")(tiny_in)
attempts = {
    "Model(input=..., output=...)": lambda: keras.Model(input=tiny_in, output=tiny_out),
    "Adam(lr=1e-4)": lambda: keras.optimizers.Adam(lr=1e-4),
    "model.fit_generator": lambda: keras.Model(inputs=tiny_in, outputs=tiny_out).fit_generator,
}
for what, attempt in attempts.items():
    try:
        attempt()
        print(f"{what:<30} works")
    except (ValueError, TypeError, AttributeError) as err:
        print(f"{what:<30} fails with {type(err).__name__}")

tiny = keras.Model(inputs=tiny_in, outputs=tiny_out)                     # the Keras 3 spellings
tiny.compile(optimizer=keras.optimizers.Adam(learning_rate=1e-4), loss="binary_crossentropy")
def gen():
    while True:
        yield images[:2, :16, :16], masks[:2, :16, :16]
hist = tiny.fit(gen(), steps_per_epoch=2, epochs=1, verbose=0, shuffle=False)          # fit takes the generator
print("Keras 3 spellings work, fit() on a generator returned a loss:", len(hist.history["loss"]) == 1)

# %% [markdown]
# ## Verification
#
# One cell that collects the chapter's checks. Every line is a boolean against a stated bound, so the text
# is the same on every machine and every run.

# %%
checks = {
    "parameter counts equal (31,030,593)": model.count_params() == kmodel.count_params() == 31_030_593,
    "weights bit-identical after to_keras": all(np.array_equal(model.params[v.path], v.numpy())
                                                for v in kmodel.trainable_variables),
    "parity report passes (33 outputs, 46 gradients)": verdict["passed"],
    "parity verdict stable over two runs": again == verdict,
    "lockstep SGD: loss gaps below 1e-5": runs["SGD"].max_rel_diff < 1e-5,
    "lockstep Adam: loss gaps below 1e-5": runs["Adam"].max_rel_diff < 1e-5,
}
for k, v in checks.items():
    print(f"{k}: {v}")
print("ALL PASS:", all(checks.values()))

# %% [markdown]
# ## Exercises
#
# 1. `oihw_to_hwio(w)`: move a PyTorch `Conv2d` kernel into Keras's layout.
# 2. `count_routing_differences(a, b)`: count the pooling windows whose first maximum differs (the
#    near-ties of section 5).
# 3. `order_of_magnitude(err)`: the exponent a stable verdict prints.
#
# **Exercise 1.** PyTorch stores a `Conv2d` kernel as $(F, C_{in}, K_H, K_W)$ ("OIHW"); Keras and this course
# as $(K_H, K_W, C_{in}, F)$ ("HWIO"). Write `oihw_to_hwio(w)`. Worked example: a $(4, 2, 3, 3)$ PyTorch kernel
# (4 filters reading 2 channels) becomes $(3, 3, 2, 4)$, and `w_keras[a, q, c, f] == w_torch[f, c, a, q]`. The
# check names the classic mistakes: `w.T` (the right shape for a square kernel, and the wrong values), the
# channels swapped (Keras's `Conv2DTranspose` layout), a reshape instead of a transpose.

# %%
from unet_scratch.exercises.ch06 import (check_count_routing_differences, check_oihw_to_hwio,
                                         check_order_of_magnitude)

def oihw_to_hwio(w):
    ### BEGIN SOLUTION
    return np.transpose(w, (2, 3, 1, 0))
    ### END SOLUTION

check_oihw_to_hwio(oihw_to_hwio);


# %% [markdown]
# **Exercise 2.** Write `count_routing_differences(a, b)`: for two float32 activations $a, b$ of shape
# $(N, H, W, C)$ ($H$, $W$ even), the number of $2 \times 2$ stride-2 pooling windows whose **first**
# maximum (row-major order inside the window, as TensorFlow picks it) is a different pixel in $a$ than in $b$.
# Hint: reshape to $(N, H/2, 2, W/2, 2, C)$ and bring the two window axes last. A window whose maximum
# *value* changes but whose winner does not, does not count. The check names the classic mistakes: comparing
# the maximum values, comparing the sets of tied maxima, routing to the last maximum.

# %%
def count_routing_differences(a, b):
    ### BEGIN SOLUTION
    def first_max(x):
        n, h, w, c = x.shape
        win = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)
        return win.argmax(axis=-1)
    return int(np.sum(first_max(a) != first_max(b)))
    ### END SOLUTION

check_count_routing_differences(count_routing_differences);


# %% [markdown]
# **Exercise 3.** A stable verdict prints an error's order of magnitude, not its digits. Write
# `order_of_magnitude(err)`: the integer $k$ with $10^k \le \text{err} < 10^{k+1}$ (so $9.7 \times 10^{-7}$
# gives $-7$: *floor*, not round), or `None` for an error of exactly 0. Then think about why
# $9.7 \times 10^{-7}$ is a bad value to print this way: one run's $1.02 \times 10^{-6}$ would print $-6$.
# The check names the classic mistakes: rounding to the nearest integer, rounding up (or `int()`, which rounds
# a negative logarithm towards zero).

# %%
def order_of_magnitude(err):
    ### BEGIN SOLUTION
    if err == 0:
        return None
    return int(np.floor(np.log10(err)))
    ### END SOLUTION

check_order_of_magnitude(order_of_magnitude);

# %% [markdown]
# **Exercises in this chapter:** 1. `oihw_to_hwio` (weights from another framework's layout),
# 2. `count_routing_differences` (float32 near-ties in max-pooling), 3. `order_of_magnitude` (stable verdicts).
