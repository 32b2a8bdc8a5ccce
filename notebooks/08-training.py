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
# # 08 · Training: the U-Net learns to segment
#
# **What you will build:** the training loop (forward, loss from logits, backward, optimizer step), fed with
# the paper's data augmentation, on generated electron-microscopy-like images: nothing is downloaded.
# **What you will check:** that our training follows Keras's step for step from the same weights, that a
# resumed run equals an uninterrupted one bit for bit, what a 5-minute run on a 2-core CPU reaches, and
# whether the paper's augmentation claim holds on 30 training images.
#
# 1. the generated data sets, and why a threshold cannot solve them,
# 2. augmentation: flips, rotations and the paper's elastic deformation (scaled to our image size), then
#    the paper's claim tested: 30 training images, four augmentations, three seeds each,
# 3. one training step by hand, then `fit` with a progress bar, curves and checkpoints,
# 4. predictions overlaid on a held-out image; scratch next to Keras,
# 5. the paper's weight map on touching cells: does it separate them?
#
# You write the elastic deformation's resampling, one training step and the epoch's Dice (exercises 1-3).

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import json, tempfile
import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet, data, training, metrics
from unet_scratch.augment import displacement_field, elastic_deform, flip_rotate
from unet_scratch.inference import predict, load_model
from unet_scratch.images import overlay
from unet_scratch.resources import repo_path

us.set_backend("numba")            # the fastest CPU backend (chapter 09); "numpy" gives the same numbers
RESULTS = repo_path("benchmarks/results")  # the full-length runs, made with benchmarks/training.py
rng = np.random.default_rng(0)

# %% [markdown]
# ## 1. Data that ships with the package
#
# The paper's first task is the ISBI 2012 EM segmentation challenge: segment the **membranes** in
# electron-microscopy sections of neural tissue, with 30 annotated $512 \times 512$ training images. (There
# the U-Net outperformed the previous best method, a sliding-window network, on the challenge's leaderboard;
# the challenge it *won* was the ISBI 2015 cell tracking challenge, on the PhC-U373 and DIC-HeLa data.)
# `data.membranes` generates images like those from a seed: cells from a jittered Voronoi
# tessellation (each pixel belongs to its nearest seed point), bent by a smooth warp; the membrane is the set
# of pixels within a varying half-width $w(x)$ of the boundary between two cells. For seeds $s_1, s_2$ at
# distances $d_1 \le d_2$ from $x$, the distance to their boundary is exactly
# $$\mathrm{dist}(x) = \frac{d_2^2 - d_1^2}{2\,\lVert s_1 - s_2 \rVert}, \qquad
# \mathrm{mask}(x) = [\mathrm{dist}(x) < w(x)].$$
# Organelle-like dark blobs, blur, uneven illumination and noise make it hard on purpose.

# %%
train = data.load("membranes", "train")        # 64 images, 128 x 128, float32 in [0, 1]
val = data.load("membranes", "val")            # 16
test = data.load("membranes", "test")          # 16, never seen in training
print("images", train[0].shape, train[0].dtype, " masks", train[1].shape, "values", np.unique(train[1]))

fig, ax = plt.subplots(2, 3, figsize=(8, 5.6), dpi=60)
for i in range(3):
    ax[0, i].imshow(train[0][i, ..., 0], cmap="gray", vmin=0, vmax=1)
    ax[1, i].imshow(train[1][i, ..., 0], cmap="gray")
    ax[0, i].set_title(f"image {i}"); ax[1, i].set_title(f"membrane mask {i}")
for a in ax.ravel():
    a.set_xticks([]); a.set_yticks([])
fig.suptitle("Generated EM-like sections (top) and their membrane labels (bottom), 128 x 128 px")
fig.tight_layout(); plt.show()

# %% [markdown]
# Why not just threshold? Membranes are dark, but so are organelles, and the illumination drifts.
# The best single threshold, chosen *on the test set itself*, is far from a good segmentation:

# %%
x, m = test[0][..., 0], test[1][..., 0] > 0.5
thresholds = np.linspace(0, 1, 101)
dice_t = [metrics.dice(x < t, m) for t in thresholds]
fig, ax = plt.subplots(1, 2, figsize=(10, 3.2), dpi=100)
ax[0].hist(x[m], 60, alpha=0.6, density=True, label="membrane pixels")
ax[0].hist(x[~m], 60, alpha=0.6, density=True, label="other pixels")
ax[0].set(xlabel="grey value", ylabel="density", title="The grey values overlap"); ax[0].legend()
ax[1].plot(thresholds, dice_t)
ax[1].set(xlabel="threshold t (membrane = pixel < t)", ylabel="Dice on the test set",
          title="No threshold comes close to 0.9", ylim=(0, 1))
fig.tight_layout(); plt.show()
print(f"best global threshold: Dice {max(dice_t):.2f}")

# %% [markdown]
# ## 2. Augmentation: the paper's elastic deformation
#
# With 30 training images, the paper relied on augmentation, above all on *elastic deformations*
# (section 3.1): random displacement vectors on a coarse $3 \times 3$ grid, each component
# $\sim \mathcal{N}(0, \sigma^2)$ with $\sigma = 10$ px, interpolated bicubically to a smooth field $u(y, x)$;
# then $\tilde{I}(y, x) = I(y + u_y, x + u_x)$. The image is resampled bicubically, the mask with nearest
# neighbour, so it stays $\{0, 1\}$. Both see the same field: they move together (exercise 1 writes this
# resampling). Flips and $90°$ rotations add the eight symmetries of the square.
#
# **Scaled to the image.** The paper's 10 px are 10 px of a $512 \times 512$ image, whose $3 \times 3$
# lattice has its nodes 256 px apart: a displacement of 10 px is 4% of that. Our images are
# $128 \times 128$; the lattice spans the image, so its nodes are 64 px apart, and the same 10 px would stretch
# and squeeze the tissue four times as hard, bending straight membranes into arcs and smearing the thin ones
# when the image is resampled. The package therefore scales $\sigma$ with the image by default
# (`augment.scaled_sigma`): $\sigma = 10 \cdot \min(H, W) / 512$, 2.5 px here, which is the paper's
# deformation shrunk with the image. (`sigma=10.0` asks for the paper's pixels.) Below, the same random draw
# with both. The local stretch printed is the largest change of the displacement from one pixel to the next:
# scaled, it is what the paper's field gives at 512 px; unscaled, four times that, and where it passes 100%
# neighbouring pixels swap places: the image folds over itself.

# %%
from unet_scratch.augment import scaled_sigma

image, mask = train[0][0, ..., 0], train[1][0, ..., 0]
sigma = scaled_sigma(image.shape)                                   # 10 * 128 / 512 = 2.5 px
field = displacement_field(image.shape, np.random.default_rng(3), sigma=sigma)
warped, warped_mask = elastic_deform(image, mask, np.random.default_rng(3))            # sigma=None: scaled
warped10, warped_mask10 = elastic_deform(image, mask, np.random.default_rng(3), sigma=10.0)

fig, ax = plt.subplots(1, 4, figsize=(13, 3.9), dpi=72, layout="constrained")
ax[0].imshow(image, cmap="gray"); ax[0].set_title("original")
step = 8
yy, xx = np.mgrid[0:128:step, 0:128:step]
ax[1].quiver(xx, yy, field[1, ::step, ::step], field[0, ::step, ::step], angles="xy", scale_units="xy", scale=0.25)
ax[1].set(xlim=(0, 128), ylim=(128, 0), aspect="equal", title=f"field u, sigma {sigma:g} px (arrows x4)", xlabel="x (px)")
ax[2].imshow(overlay(warped, warped_mask)); ax[2].set_title(f"sigma {sigma:g} px (scaled)")
ax[3].imshow(overlay(warped10, warped_mask10)); ax[3].set_title("sigma 10 px (unscaled)")
for a in ax:
    a.set_xlabel("x (px)")
ax[0].set_ylabel("y (px)")
fig.suptitle("One smooth random field moves image and mask together; unscaled, it bends the cells out of shape")
plt.show()
print(f"sigma for a 128 x 128 image: {sigma:g} px (the paper's 10 px at 512 x 512)")
for name, sig in [("scaled", sigma), ("unscaled", 10.0)]:
    u = displacement_field(image.shape, np.random.default_rng(3), sigma=sig)
    stretch = max(np.abs(np.diff(u, axis=1)).max(), np.abs(np.diff(u, axis=2)).max())
    print(f"{name:>8}: largest local stretch {100 * stretch:.0f}% (a displacement change per pixel)")
print("mask still binary after warping:", set(np.unique(warped_mask)) <= {0.0, 1.0})

# %%
fig, ax = plt.subplots(1, 8, figsize=(12, 2.1), dpi=60, layout="constrained")
for k in range(8):
    im, mk = flip_rotate(image, mask, np.random.default_rng(k))
    ax[k].imshow(overlay(im, mk)); ax[k].set_xticks([]); ax[k].set_yticks([])
    ax[k].set_title(f"draw {k}", fontsize=9)
fig.suptitle("flip_rotate: random flips and 90-degree rotations, the same for image and mask")
plt.show()

# %% [markdown]
# ## 2b. Does augmentation help? The paper's claim, tested
#
# The paper calls the elastic deformation "the key concept to train a segmentation network with very few
# annotated images". `benchmarks/augmentation.py` tests that on our data: a small U-Net (8 filters at the top,
# depth 3) trained on **30** membrane images of $64 \times 64$ under four augmentations, three seeds each (the
# seed sets the initial weights, the shuffling and the augmentation draws), 60 epochs of Adam with the
# learning rate divided by 4 after epoch 45, BCE + Dice, nothing selected on the test set:
#
# * `none`: the 30 images as they are;
# * `flip`: random flips and $90°$ rotations (`fit(augment="flip")`);
# * `flip+elastic`: those plus the elastic deformation with the scaled $\sigma$ (1.25 px at 64 px;
#   `fit(augment=True)`);
# * `flip+elastic10`: the same with the paper's 10 px unscaled, eight times the paper's deformation relative
#   to these small images.
#
# It takes about 10 CPU-minutes, so the chapter reads its stored results (the command to rerun it is printed).

# %%
with open(f"{RESULTS}/augmentation.json") as f:
    aug = json.load(f)
print("reproduce with:", aug["command"], f"({aug['config']['n_train']} training images, "
      f"{aug['config']['size']} x {aug['config']['size']}, seeds {aug['config']['seeds']})")
conditions = list(aug["summary"])
colours = {c: plt.cm.viridis(v) for c, v in zip(conditions, (0.0, 0.3, 0.6, 0.85))}
fig, ax = plt.subplots(1, 2, figsize=(12, 4.2), dpi=100, gridspec_kw=dict(width_ratios=[1, 1.4]),
                       layout="constrained")
for k, c in enumerate(conditions):
    test_dice = aug["summary"][c]["test_dice"]
    ax[0].plot([k] * len(test_dice["values"]), test_dice["values"], "o", mfc="none", color=colours[c])
    ax[0].errorbar(k + 0.15, test_dice["mean"], yerr=[[test_dice["mean"] - test_dice["min"]],
                                                      [test_dice["max"] - test_dice["mean"]]],
                   fmt="s", color=colours[c], capsize=4)
    runs = [r for r in aug["runs"] if r["condition"] == c]
    epochs = [e for e, _ in runs[0]["val_curve"]]
    curves = np.array([[v for _, v in r["val_curve"]] for r in runs])
    ax[1].plot(epochs, curves.mean(0), "o-", ms=3, color=colours[c], label=c)
    ax[1].fill_between(epochs, curves.min(0), curves.max(0), color=colours[c], alpha=0.2)
ax[0].set_xticks(range(len(conditions)), conditions, fontsize=8)
ax[0].set(xlabel="augmentation", ylabel="test Dice (64 test images)",
          title="Test Dice: 3 seeds (circles), mean and range (squares)")
ax[1].axvline(aug["config"]["lr_step_epoch"], color="grey", lw=0.8, ls=":", label="learning rate / 4")
ax[1].set(xlabel="epoch", ylabel="validation Dice (16 images)",
          title="Validation Dice, mean over seeds (band: min to max)")
ax[1].legend(fontsize=8, loc="lower right")
fig.suptitle("30 training images: without augmentation the network memorises them; flips and rotations "
             "do most of the good")
plt.show()
for c in conditions:
    sm = aug["summary"][c]
    print(f"{c:<15} test Dice {sm['test_dice']['mean']:.3f} (seeds {sm['test_dice']['min']:.3f} to "
          f"{sm['test_dice']['max']:.3f}), training images {sm['train_dice']['mean']:.3f}")

# %% [markdown]
# What it says, on these data (three seeds are few: read a difference smaller than the seed range as none):
#
# * **Augmentation matters.** Without it the network memorises its 30 images (Dice 0.99 on them) and its
#   validation Dice peaks around epoch 15 and then falls; flips and rotations alone lift the test Dice from
#   0.774 (0.765 to 0.782) to 0.851 (0.847 to 0.855).
# * **The elastic deformation adds nothing we can resolve** on top of flips here: 0.853 (0.850 to 0.855). Our
#   generator already draws every image from a randomly warped tessellation, so new images already vary the
#   way an elastic deformation would. On real sections with 30 annotated images the paper calls it the key
#   (it reports no run without it), and this experiment neither confirms nor refutes that. (The augmented runs were still improving slowly
#   when the learning rate stepped down; longer training might separate them a little.)
# * **Unscaled, it hurts:** the paper's 10 px on $64 \times 64$ images gives 0.840 (0.835 to 0.843), below
#   flips alone: a deformation too strong for the image is a distortion the test images never show.
#
# The headline run of section 5 uses flips and rotations only, on 256 generated images.

# %% [markdown]
# ## 3. One training step, by hand
#
# The sigmoid head gives $p = \sigma(z)$. Keras's `BinaryCrossentropy` on a sigmoid output quietly works
# from the logits $z$ (chapter 07), and so do we: the loss and its gradient are
# $$\ell(z, t) = \max(z, 0) - z t + \log(1 + e^{-|z|}), \qquad \frac{\partial \ell}{\partial z} = \sigma(z) - t,$$
# averaged over the $M$ pixels. `model.forward(x, logits=True)` returns $z$ and makes `backward` expect
# $\partial L / \partial z$. With the soft Dice loss added (`"bce_dice"`), the gradient also flows through
# $p = \sigma(z)$: $\partial L_{dice}/\partial z = \partial L_{dice}/\partial p \cdot p (1 - p)$.

# %%
from unet_scratch.optimizers import Adam

model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0.0, kernel_initializer="he_normal", seed=0)
optimizer = Adam(learning_rate=2e-3)
small = data.load("membranes", "train", size=64)
x, t = small[0][:4], small[1][:4]
losses = []
for step in range(10):
    z = model.forward(x, training=True, logits=True)                   # logits, (4, 64, 64, 1)
    loss, dz, p = training.loss_from_logits(model, z, t, loss="bce")    # loss and dL/dz
    model.backward(dz)                                                  # fills model.grads
    optimizer.apply(model.params, model.grads)                         # Adam, in place
    losses.append(loss)
print("the loss falls on a fixed batch:", losses[-1] < losses[0])

# %% [markdown]
# ### Verification: our training follows Keras's, step for step
#
# `keras_ref.fit_keras` trains the Keras twin from the *same* initial weights on the *same* batches (same
# shuffle, same augmentation), with Keras's Adam and Keras's losses. Without dropout (whose random masks
# cannot be shared) the two runs agree to float32 rounding:

# %%
from unet_scratch.keras_ref import fit_keras

twin = UNet((32, 32, 1), base_filters=4, depth=2, dropout=0.0, kernel_initializer="he_normal", seed=1)
tiny_train, tiny_val = data.load("membranes", "train", n=8, size=32), data.load("membranes", "val", n=4, size=32)
settings = dict(epochs=3, batch_size=4, learning_rate=1e-3, loss="bce_dice", augment="flip", seed=0)
h_keras, keras_model = fit_keras(twin, tiny_train, tiny_val, **settings)      # starts from twin's weights
h_scratch = training.fit(twin, tiny_train, tiny_val, verbose=0, **settings)
worst = max(abs(a - b) / abs(b) for k in ("loss", "val_loss") for a, b in zip(h_scratch.history[k], h_keras.history[k]))
kernels = [v.numpy() for layer in keras_model.layers for v in layer.weights]
w_diff = max(float(np.abs(a - b).max()) for a, b in zip(kernels, twin.params.values()))
print("losses agree within 1e-4 (relative):", worst < 1e-4)
print("weights after training agree within 1e-5:", w_diff < 1e-5)

# %% [markdown]
# ## 4. `fit`: epochs, a progress bar, curves, checkpoints
#
# `training.fit(model, (images, masks), val=..., epochs, batch_size, ...)` has the shape of Keras's `fit`.
# Each epoch shuffles, draws an augmentation for every example, runs the step above per batch, and
# records the mean loss and the Dice of the thresholded predictions (`history.history`). With
# `checkpoint_dir` it writes `checkpoint.npz` (weights, Adam's moments, the step counters, the history)
# atomically after every epoch, and on Ctrl-C. `verbose=1` (the default) shows a live progress bar per
# epoch (tqdm, in the notebook or the terminal); `verbose=2`, used here so that the stored output stays
# readable, prints one line per epoch. A short run at $64 \times 64$:

# %%
# NBVAL_IGNORE_OUTPUT
model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0.0, kernel_initializer="he_normal", seed=0)
run_dir = tempfile.mkdtemp()
history = training.fit(model, data.load("membranes", "train", size=64), val=data.load("membranes", "val", size=64),
                       epochs=12, batch_size=4, learning_rate=2e-3, loss="bce_dice", augment="flip",
                       checkpoint_dir=run_dir, verbose=2)

# %%
axes = history.plot()
axes[0].figure.suptitle("A 12-epoch run at 64 x 64: the loss falls, the Dice rises")
axes[0].figure.tight_layout(); plt.show()
print("Dice improved over the run:", history.history["val_dice"][-1] > history.history["val_dice"][0] + 0.1)
print("checkpoint written:", sorted(os.listdir(run_dir)))


# %% [markdown]
# ### Verification: resuming is bit-exact
#
# Every random draw (shuffle, augmentation, dropout) comes from a generator seeded by
# (seed, epoch, step), so the checkpoint's counters *are* the random state. A run stopped after 5 steps and
# resumed ends with exactly the weights of a run that never stopped:

# %%
def tiny(seed):
    return UNet((32, 32, 1), base_filters=4, depth=2, dropout=0.5, seed=seed)

ds = data.load("membranes", "train", n=6, size=32)
opts = dict(epochs=3, batch_size=2, augment=True, seed=7, verbose=0)
straight = tiny(1); training.fit(straight, ds, **opts)
folder = tempfile.mkdtemp()
stopped = tiny(1); h = training.fit(stopped, ds, checkpoint_dir=folder, max_steps=5, **opts)
print(h.stop_reason.split(";")[0])
resumed = tiny(42); training.fit(resumed, ds, checkpoint_dir=folder, resume=True, **opts)
print("bit-identical weights:", all(np.array_equal(straight.params[k], resumed.params[k]) for k in straight.params))

# %% [markdown]
# ## 5. Five minutes on a 2-core CPU: scratch next to Keras
#
# `benchmarks/training.py membranes` trains a U-Net with 16 base filters and depth 3 (481,745 parameters) on
# 256 generated training images at $128 \times 128$ (the generator has no limit; with 64 the network
# started to memorise them), BCE + Dice, and Adam whose learning rate steps down
# from $2 \cdot 10^{-3}$ to $5 \cdot 10^{-4}$ and $1.25 \cdot 10^{-4}$ for the last epochs: 23 epochs, under
# 300 s of training with the Numba backend on 2 cores. Then it trains the Keras twin from the same initial
# weights on the same batches. Its augmentation is **flips and 90-degree rotations only**
# (`augment="flip"`): no elastic deformation, and eight times the paper's 30 training images, so this
# headline run does not rest on the paper's augmentation (section 2b measures what that adds on 30 images).
# Its results are stored in `benchmarks/results/`:

# %%
with open(f"{RESULTS}/training-membranes.json") as f:
    run = json.load(f)
s, k = run["scratch"], run["keras"]
axes = training.plot_history(s["history"], k["history"], labels=["scratch", "Keras"])
axes[1].axhline(0.9, color="grey", lw=0.8, ls=":")
axes[0].figure.suptitle("membranes, 128 x 128: the scratch U-Net and its Keras twin learn alike")
axes[0].figure.tight_layout(); plt.show()
print(f"scratch: {s['epochs']} epochs, test Dice {s['test_dice']:.2f}; Keras: {k['epochs']} epochs, "
      f"test Dice {k['test_dice']:.2f}")
print("scratch reaches Dice >= 0.90 on the test split:", s["test_dice"] >= 0.90)
print("trained within 5 minutes:", s["seconds"] <= 300)

# %% [markdown]
# The trained weights are stored too. Here they are on one held-out test image (yellow: predicted
# membrane), with the errors marked:

# %%
trained = load_model(f"{RESULTS}/training-membranes-weights.npz")
p = predict(trained, test[0][:1])[0, ..., 0]                      # (128, 128) probabilities
truth, pred = test[1][0, ..., 0] > 0.5, p > 0.5
errors = np.zeros((*pred.shape, 3))
errors[pred & ~truth] = (1, 0.3, 0.3)                              # red: predicted, not true
errors[~pred & truth] = (0.3, 0.6, 1)                              # blue: true, missed
fig, ax = plt.subplots(1, 3, figsize=(10, 3.9), dpi=72, layout="constrained")
ax[0].imshow(test[0][0, ..., 0], cmap="gray"); ax[0].set_title("test image 0")
ax[1].imshow(overlay(test[0][0, ..., 0], pred)); ax[1].set_title(f"prediction, Dice {metrics.dice(pred, truth):.2f}")
ax[2].imshow(errors); ax[2].set_title("red: false membrane, blue: missed")
for a in ax:
    a.set_xticks([]); a.set_yticks([])
fig.suptitle("A held-out image: the mistakes sit on the membranes' edges and on faint walls")
plt.show()
print(f"test Dice of the stored weights over all {len(test[0])} test images: {training.evaluate(trained, test)['dice']:.2f}")

# %% [markdown]
# ## 6. The paper's weight map on touching cells
#
# Cross-entropy counts every pixel alike, and the thin gaps between touching cells are a tiny fraction of
# the pixels: a network that fills them in loses almost nothing, and touching cells merge. The paper's
# weight map (chapter 07) makes gap pixels count up to $w_0 = 10$ times more:
# $$w(x) = w_c(x) + w_0 \exp\left(-\frac{(d_1(x) + d_2(x))^2}{2\sigma^2}\right).$$
# `benchmarks/training.py cells` trains the same U-Net twice on `cells`, once with plain BCE and once with
# BCE weighted by $w$, and counts the test objects that come out as their own connected component
# (IoU > 0.5):

# %%
with open(f"{RESULTS}/training-cells.json") as f:
    cells_run = json.load(f)
plain, weighted = cells_run["plain"], cells_run["weighted"]
test_cells = data.load("cells", "test")
pred_plain = np.load(f"{RESULTS}/training-cells-plain-pred.npy") / 255
pred_weighted = np.load(f"{RESULTS}/training-cells-weighted-pred.npy") / 255
def separated(pred, i):
    return metrics.count_separated(pred[i] > 0.5, test_cells[2][i])

gain = [separated(pred_weighted, i) - separated(pred_plain, i) for i in range(len(pred_plain))]
i = int(np.argmax(gain))                                   # the stored test image where it matters most
inst = test_cells[2][i]
ids = [k for k in np.unique(inst) if k > 0]
def kept_apart(pred, k):                                   # is object k its own component (IoU > 0.5)?
    return metrics.count_separated(pred > 0.5, np.where(inst == k, k, 0)) == 1
lost = [k for k in ids if kept_apart(pred_weighted[i], k) and not kept_apart(pred_plain[i], k)]
from scipy import ndimage
components = ndimage.label(pred_plain[i] > 0.5)[0]         # plain BCE's connected components
blobs = {int(np.bincount(components[inst == k]).argmax()) for k in lost} - {0}   # the components that swallowed them
merged = [k for k in ids if any(np.mean(components[inst == k] == c) > 0.5 for c in blobs)]
fig, ax = plt.subplots(1, 4, figsize=(13, 3.9), dpi=72, layout="constrained")
ax[0].imshow(test_cells[0][i, ..., 0], cmap="gray"); ax[0].set_title(f"test image {i}")
ax[1].imshow(inst, cmap="tab20", interpolation="nearest"); ax[1].set_title(f"{len(ids)} true objects")
ax[2].imshow(pred_plain[i] > 0.5, cmap="gray")
ax[2].set_title(f"plain BCE: {separated(pred_plain, i)} of {len(ids)} separated")
ax[3].imshow(pred_weighted[i] > 0.5, cmap="gray")
ax[3].set_title(f"weighted BCE (paper): {separated(pred_weighted, i)} of {len(ids)}")
for a in (ax[1], ax[3]):
    for k in merged:                                       # the true objects that plain BCE joins into one
        a.contour(inst == k, levels=[0.5], colors="red", linewidths=1.5)
for c in blobs:                                            # and the single component it makes of them
    ax[2].contour(components == c, levels=[0.5], colors="red", linewidths=1.5)
for a in ax:
    a.set_xticks([]); a.set_yticks([])
fig.suptitle(f"Red: {len(merged)} touching objects that plain BCE merges into one component; the weight map "
             "keeps them apart")
plt.show()
print(f"objects separated: plain {plain['separated']} of {plain['objects']}, "
      f"weighted {weighted['separated']} of {weighted['objects']}")
print("the weight map separates more objects:", weighted["separated"] > plain["separated"])

# %% [markdown]
# ## Exercises
#
# Each exercise has a check function that runs your answer and says what is wrong.

# %% [markdown]
# **Exercise 1 (the elastic deformation's resampling).** Write `deform_pair(image, mask, field)`: given a
# displacement field `field` of shape $(2, H, W)$ (`field[0]` along the rows $y$, `field[1]` along the columns
# $x$, in pixels), return the image and the mask resampled at $(y + u_y, x + u_x)$:
# $\tilde I(y, x) = I(y + u_y(y, x),\, x + u_x(y, x))$. Build the coordinates with `np.mgrid[0:H, 0:W]` and
# resample with `scipy.ndimage.map_coordinates(a, [rows, cols], order=..., mode="reflect")`: the image
# bicubically (`order=3`, then `np.clip` to its original range, since cubic splines overshoot at sharp
# edges, and cast back to its dtype), the mask with nearest neighbour (`order=0`), so that it stays
# $\{0, 1\}$. Worked example: with $u = (0, 1)$ everywhere, $\tilde I(y, x) = I(y, x + 1)$, the image
# moves one pixel to the **left**. The check compares with the package's `elastic_deform` and names the
# classic mistakes (the mask interpolated, the field subtracted, its components swapped, zeros at the border).

# %%
from scipy import ndimage
from unet_scratch.exercises.ch08 import check_deform_pair, check_global_dice, check_train_step

def deform_pair(image, mask, field):
    ### BEGIN SOLUTION
    h, w = image.shape
    rows, cols = np.mgrid[0:h, 0:w]
    coords = [rows + field[0], cols + field[1]]
    warped = ndimage.map_coordinates(image, coords, order=3, mode="reflect")
    warped = np.clip(warped, image.min(), image.max()).astype(image.dtype)
    return warped, ndimage.map_coordinates(mask, coords, order=0, mode="reflect").astype(mask.dtype)
    ### END SOLUTION

check_deform_pair(deform_pair);


# %% [markdown]
# **Exercise 2.** Write `train_step(model, optimizer, x, t)`: one step of training with binary
# cross-entropy from logits (forward with `training=True, logits=True`, `training.loss_from_logits`,
# `model.backward`, `optimizer.apply`). Return the loss of that forward pass. The check runs it next to a
# reference step, compares the loss and every weight, and names the classic mistakes (no update, the
# sigmoid applied twice, the loss measured after the update).

# %%
def train_step(model, optimizer, x, t):
    ### BEGIN SOLUTION
    z = model.forward(x, training=True, logits=True)
    loss, dz, _ = training.loss_from_logits(model, z, t, loss="bce")
    model.backward(dz)
    optimizer.apply(model.params, model.grads)
    return loss
    ### END SOLUTION

check_train_step(train_step);


# %% [markdown]
# **Exercise 3.** `fit` reports one Dice per epoch for the whole data set, not a mean of per-image
# Dice values: $D = 2 \sum_i |P_i \cap T_i| / \sum_i (|P_i| + |T_i|)$ with $P_i$ = (probability > 0.5) and
# $T_i$ = (target > 0.5). Write `global_dice(probabilities, targets)` for arrays of shape (N, H, W, 1); an empty
# prediction of an empty target counts as 1. Worked example: two images, one with $|P \cap T| = 3$,
# $|P| + |T| = 8$, the other with 1 and 4: $D = 2 \cdot 4 / 12 = 0.67$, while the mean of the per-image
# values is $(0.75 + 0.5) / 2 = 0.625$.

# %%
def global_dice(probabilities, targets):
    ### BEGIN SOLUTION
    pred, truth = probabilities > 0.5, targets > 0.5
    total = pred.sum() + truth.sum()
    return 1.0 if total == 0 else float(2 * (pred & truth).sum() / total)
    ### END SOLUTION

check_global_dice(global_dice);

# %% [markdown]
# ## Exercises in this chapter
#
# 1. `deform_pair(image, mask, field)`: the elastic deformation's resampling, image bicubic and mask
#    nearest, one field for both (section 2).
# 2. `train_step(model, optimizer, x, t)`: one training step, BCE from the logits (section 3).
# 3. `global_dice(probabilities, targets)`: the epoch's Dice over the whole data set (section 4).
