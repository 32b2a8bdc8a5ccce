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
# # 12 · Your own images: folders, TIFF stacks, and the paper's EM data
#
# **What you will do:** take the step every reader of a U-Net tutorial wants next: train on *your* images.
# You will write images and masks in the two layouts people actually have (a folder of PNGs beside a folder of
# masks, and the paper's own format, two multi-page TIFF stacks), load them with `folders.load_folder`, see
# what each common mistake in a data set gets as an error, train on random crops of images of any size, and
# score the result the way the ISBI 2012 challenge did, next to the baseline every model must beat.
# **What you will write:** `pair_by_name`, the pairing of images with masks that silently goes wrong in many
# home-made loaders.
#
# Nothing is downloaded: the files are made here from the course's generated `membranes` set, in exactly the
# layouts of the real data, so every command below works unchanged on the real files.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import tempfile
from pathlib import Path

import numpy as np
import matplotlib.pyplot as plt
from PIL import Image

import unet_scratch as us
from unet_scratch import UNet, data, training
from unet_scratch.evaluation import evaluate_images, format_report, predict_classes
from unet_scratch.folders import load_folder

us.set_backend("numba")
workdir = Path(tempfile.mkdtemp(prefix="unet-own-data-"))

# %% [markdown]
# ## 1. The paper's data: the ISBI 2012 EM stack
#
# Ronneberger et al. trained their U-Net for the ISBI 2012 challenge on segmenting neuronal structures in
# electron microscopy: a stack of **30 slices of 512 x 512 pixels** from serial-section transmission electron
# microscopy (ssTEM) of the *Drosophila* first-instar larva's ventral nerve cord (Cardona et al., PLoS Biology
# 2010). The training set is two multi-page TIFF files,
#
# | file | what it holds |
# |---|---|
# | `train-volume.tif` | 30 grey 8-bit slices |
# | `train-labels.tif` | 30 label slices: **255 = cell interior, 0 = membrane** |
#
# and the test set is 30 more slices whose labels were kept by the organisers (entries were scored on their
# server by warping, Rand and pixel error). The paper predicts the *membranes*, the dark pixels of the labels: so
# for this data the foreground is **black** (`foreground="black"`, `--foreground black`).
#
# We write a stand-in in the same layout: 30 generated membrane images, their labels inverted to the ISBI
# convention, as two TIFF stacks.

# %%
x, y = data.load("membranes", "train", n=30, size=96)[:2]
volume = [Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)) for i in range(30)]
labels = [Image.fromarray(((1 - y[i, ..., 0]) * 255).astype(np.uint8)) for i in range(30)]   # 0 = membrane
volume[0].save(workdir / "train-volume.tif", save_all=True, append_images=volume[1:])
labels[0].save(workdir / "train-labels.tif", save_all=True, append_images=labels[1:])

em = load_folder(workdir / "train-volume.tif", workdir / "train-labels.tif", foreground="black")
print(len(em), "slices;", em.names[:2], "...")
print("image:", em.images[0].shape, em.images[0].dtype, " mask:", em.masks[0].shape, em.masks[0].dtype,
      "classes", sorted(np.unique(em.masks[0]).tolist()))
print("notes:", em.notes)
print("membrane (class 1) where the label file is black:",
      bool(np.all((em.masks[0] == 1) == (np.asarray(labels[0]) == 0))))

# %% [markdown]
# ## 2. A folder of images, a folder of masks, and the mistakes a loader must catch
#
# The other common layout is two folders whose files share names: `images/cell_01.png` with
# `masks/cell_01.png` (or `.tif`). The masks may be 0/1 or 0/255 (a PNG of 0/1 looks all black in an image
# viewer, which is why people save 0/255), or class indices 0..K-1 for K classes (a palette PNG stores exactly
# that: each pixel is an index into its colour table).
#
# Each of the following is a real way a data set goes wrong; `load_folder` stops on each with a message that
# names the file and what to do.

# %%
images_dir, masks_dir = workdir / "images", workdir / "masks"
images_dir.mkdir(), masks_dir.mkdir()
for i in range(6):
    Image.fromarray((x[i, ..., 0] * 255).round().astype(np.uint8)).save(images_dir / f"em_{i:02d}.png")
    Image.fromarray((y[i, ..., 0] * 255).astype(np.uint8)).save(masks_dir / f"em_{i:02d}.png")
print(len(load_folder(images_dir, masks_dir)), "pairs read from the folders")


def show_error(make_mistake, undo):
    make_mistake()
    try:
        load_folder(images_dir, masks_dir)
    except (ValueError, FileNotFoundError) as err:
        print("-", str(err).replace(str(workdir), "<workdir>"))
    finally:
        undo()


mask0 = (masks_dir / "em_00.png").read_bytes()
show_error(lambda: (masks_dir / "em_00.png").unlink(),                                   # a mask missing
           lambda: (masks_dir / "em_00.png").write_bytes(mask0))
show_error(lambda: Image.fromarray((y[0, :80, :, 0] * 255).astype(np.uint8)).save(masks_dir / "em_00.png"),
           lambda: (masks_dir / "em_00.png").write_bytes(mask0))                        # another size
show_error(lambda: ((masks_dir / "em_00.png").unlink(),                                  # saved as JPEG
                    Image.fromarray((y[0, ..., 0] * 255).astype(np.uint8)).save(masks_dir / "em_00.jpg")),
           lambda: ((masks_dir / "em_00.jpg").unlink(), (masks_dir / "em_00.png").write_bytes(mask0)))
show_error(lambda: Image.fromarray(np.clip(y[0, ..., 0] * 255 + np.random.default_rng(0).integers(-4, 5, (96, 96)),
                                           0, 255).astype(np.uint8)).save(masks_dir / "em_00.png"),
           lambda: (masks_dir / "em_00.png").write_bytes(mask0))                        # resized or re-encoded

# %% [markdown]
# Why JPEG masks are refused outright: JPEG compresses 8 x 8 blocks lossily, and near every edge of a 0/255 mask
# it produces values in between. A mask saved as JPEG has dozens of distinct values where it had two, which a
# loader that treats each value as a class turns into dozens of classes (one of the most frequent questions in
# U-Net repositories). The rescue is a threshold (`mask > 127`) and PNG from then on.

# %%
Image.fromarray((y[0, ..., 0] * 255).astype(np.uint8)).save(workdir / "mask.jpg", quality=90)
jpeg_mask = np.asarray(Image.open(workdir / "mask.jpg"))
print("distinct values: PNG 2, JPEG", len(np.unique(jpeg_mask)))
print("threshold rescues it:", bool(np.array_equal(jpeg_mask > 127, y[0, ..., 0] > 0.5)))

# %% [markdown]
# ## 3. Exercise: pair images with masks by name
#
# The pairing looks too simple to get wrong, and is wrong in many home-made loaders: they `zip` the two sorted
# folder listings, which is right until one folder holds one file more than the other. Pair by **stem** (the
# name without its extension: `cell_1.tif` with `cell_1.png`), in the images' order, and raise `ValueError`
# naming any image that has no mask: a silently dropped or mispaired image is worse than an error.
#
# Worked example: `pair_by_name(["b.png", "a.png"], ["a.png", "b.png"])` is `[("b.png", "b.png"), ("a.png", "a.png")]`.

# %%
from unet_scratch.exercises.ch12 import check_pair_by_name


def pair_by_name(image_names, mask_names):
    """image_names, mask_names: lists of file names -> [(image, mask), ...] in image_names' order, paired by
    stem (PurePath(name).stem); raises ValueError naming an image without a mask."""
    ### BEGIN SOLUTION
    by_stem = {Path(m).stem: m for m in mask_names}
    pairs = []
    for name in image_names:
        stem = Path(name).stem
        if stem not in by_stem:
            raise ValueError(f"image {name} has no mask (expected {stem}.png or {stem}.tif)")
        pairs.append((name, by_stem[stem]))
    return pairs
    ### END SOLUTION


check_pair_by_name(pair_by_name);

# %% [markdown]
# ## 4. Training on images of any size: random crops
#
# Real images rarely come at the network's input size (the ISBI slices are 512 x 512; microscope fields are often
# larger and differ between files). `training.fit(..., crop=64)` trains on a random 64 x 64 window of each image
# at every step, drawn from the generator of (seed, epoch, step), so an interrupted run resumes with the very
# same windows, and validates on tiles laid on a grid over each validation image. Here: 24 slices to train on,
# 6 held out, a small U-Net, 25 epochs (a few seconds with the Numba backend).

# %%
train_set = (em.images[:24], em.masks[:24])
val_set = (em.images[24:], em.masks[24:])
model = UNet((64, 64, 1), base_filters=8, depth=3, dropout=0, kernel_initializer="he_normal", seed=0)
history = training.fit(model, train_set, val_set, epochs=25, batch_size=4, crop=64, augment="flip",
                       learning_rate=2e-3, seed=0, verbose=0)
print("epochs:", len(history.epoch), " validation Dice rose above 0.7:", history.history["val_dice"][-1] > 0.7)

# %% [markdown]
# ## 5. Scoring it like the challenge, next to the baseline
#
# A Dice number alone says little: on EM images a plain global threshold of the grey values already finds most
# membranes, because membranes are dark. So `evaluate_images` predicts each held-out slice whole (overlap-tile,
# as in chapter 10) and reports, beside the model, the **best single global threshold** of the raw images,
# scored the same way:
#
# - **pixel error**: the fraction of pixels labelled wrongly (the ISBI 2012 pixel error);
# - **Dice and IoU per class** (cell interior, membrane);
# - **adapted Rand error**: how well the *regions* enclosed by the predicted membranes match the true cells
#   (1 minus the Rand F-score over the true cells' pixels: of all pairs of pixels in the same true cell, how many
#   the prediction also puts in one region, and the other way round; `metrics.adapted_rand_error`). One missing
#   membrane pixel can merge
#   two cells, which costs almost nothing in pixel error and a lot in Rand error: this is the score that says
#   whether the segmentation is usable for tracing neurons.

# %%
# NBVAL_IGNORE_OUTPUT
report = evaluate_images(model, val_set[0], val_set[1], regions_of=0)     # regions: the cells (class 0)
print(format_report(report, ["cell", "membrane"]))

# %%
m, b = report["model"], report["baseline"]
print("the model beats the threshold baseline on pixel error:", m["pixel_error"] < b["pixel_error"])
print("... and on the adapted Rand error:", m["adapted_rand_error"] < b["adapted_rand_error"])

# %%
i = 0
image, truth = val_set[0][i][..., 0], val_set[1][i]
pred = predict_classes(model, val_set[0][i])
base = (image < b["threshold"]).astype(np.uint8)
fig, ax = plt.subplots(1, 4, figsize=(12, 3.3), dpi=100)
for a, (img, title) in zip(ax, [(image, "held-out slice"), (truth, "true membranes (yellow)"),
                                (pred, "U-Net, 25 epochs"), (base, "best global threshold")]):
    a.imshow(img, cmap="gray" if a is ax[0] else "viridis", vmin=0, vmax=1)
    a.set_title(title, fontsize=10)
    a.axis("off")
fig.suptitle("The threshold finds dark pixels, the U-Net finds walls: its membranes close the cells",
             fontsize=11, y=1.02)
fig.tight_layout()
plt.show()

# %% [markdown]
# ## 6. The same from the command line
#
# On the real ISBI files (download `train-volume.tif` and `train-labels.tif` from the challenge's page; the
# course never downloads anything), or on your own folders:
#
# ```bash
# python -m unet_scratch train --images train-volume.tif --masks train-labels.tif --foreground black \
#     --size 128 --epochs 40 --backend numba --out runs/isbi        # holds out the last 20% of the slices
# python -m unet_scratch evaluate --weights runs/isbi/weights.npz --images my-test-images \
#     --masks my-test-masks --foreground black                       # the table above, for any folder
# python -m unet_scratch predict --weights runs/isbi/weights.npz --input new-images/ --output masks/
# ```
#
# `train` ends by printing the table of section 5 for its validation slices (and writes it to
# `validation.json`); `--classes K` trains a softmax head on class-index masks; `--channels 3` takes RGB images
# (or `--grayscale` converts them). Run here on the stand-in, in-process:

# %%
# NBVAL_IGNORE_OUTPUT
from unet_scratch.__main__ import main
code = main(["train", "--images", workdir / "train-volume.tif", "--masks", workdir / "train-labels.tif",
             "--foreground", "black", "--size", "64", "--base-filters", "8", "--depth", "3", "--epochs", "25",
             "--out", workdir / "run"])

# %%
print("exit status:", code, " files:", sorted(p.name for p in (workdir / "run").iterdir() if not p.name.startswith(".")))

# %% [markdown]
# What to expect on the real stack: the paper's full network, trained for about ten hours on a GPU with heavy
# elastic augmentation, reached a pixel error of 0.0611 and a Rand error of 0.0382 on the challenge's test set.
# A few CPU minutes with a small network will not come close, and the baseline table tells you honestly how
# far you are from a threshold.
#
# ## Exercises
#
# 1. `pair_by_name`: pair images with masks by file stem, refusing an image without a mask (the check names
#    pairing by position, comparing names with their extensions, and matching by prefix).

# %%
import shutil
shutil.rmtree(workdir, ignore_errors=True)
