"""The data side of training: check a data set against the model, shuffle per epoch, build (augmented) batches.

Randomness is counter-based: epoch e's order comes from ``default_rng([seed, e])`` and step s's augmentation
from ``default_rng([seed, e, s, 1])``, so (seed, epoch, step) is all a checkpoint needs to resume bit-exactly.
"""
from __future__ import annotations

import numpy as np

from ..augment import augment_with_weights
from ..checks import valid_output_size
from ..data import check_pair
from ..ops.concat import center_crop


def prepare(model, images, masks, weights=None, name="train"):
    """Check a data set against the model and return (x, t, w) ready for training.

    images: (N, H, W, C) (or (N, H, W) for one channel) in [0, 1]; masks: (N, H, W[, 1]) in {0, 1}
    (0/255 is normalised with a warning), or class indices 0..K-1 for a softmax head with K > 2 classes
    (``out_activation="softmax", out_channels=K``); weights: optional (N, H, W[, 1]) per-pixel loss weights
    (the paper's weight map). For the valid-padded network the targets are centre-cropped to the output.
    """
    images, masks = np.asarray(images), np.asarray(masks)
    if images.ndim == 3:
        images = images[..., None]
    if masks.ndim == 3:
        masks = masks[..., None]
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"{name}: images must be a non-empty batch (N, H, W, C), got shape {images.shape}")
    channels = model.input_shape[-1]
    if images.shape[-1] != channels:
        fix = ("convert to grey with image.mean(axis=-1, keepdims=True)" if channels == 1
               else f"build the model with input_shape=(H, W, {images.shape[-1]})")
        raise ValueError(f"{name}: images have {images.shape[-1]} channels, the model expects {channels}; "
                         f"{fix}")
    classes = model.config["out_channels"] if model.config["out_activation"] == "softmax" else 1
    if classes > 2:
        x, _ = check_pair(images, masks > 0)          # the images and the shapes; the labels below
        t = _class_labels(masks, classes, name)
    else:
        x, t = check_pair(images, masks)
    w = None
    if weights is not None:
        w = np.asarray(weights, dtype=np.float32)
        w = w[..., None] if w.ndim == 3 else w
        if w.shape != t.shape:
            raise ValueError(f"{name}: weight maps have shape {w.shape}, the masks {t.shape}; they must match")
        if not np.all(np.isfinite(w)) or w.min() < 0:
            raise ValueError(f"{name}: weight maps must be finite and >= 0")
    return x.astype(model.dtype, copy=False), t, w


def _class_labels(masks, classes, name):
    """(N, H, W, 1) class indices 0..classes-1 as float32, or ValueError naming what is wrong."""
    m = np.asarray(masks)
    if m.shape[-1] != 1:
        raise ValueError(f"{name}: a softmax head takes one channel of class indices (N, H, W, 1), got masks "
                         f"of shape {m.shape}; turn one-hot masks into indices with masks.argmax(-1)[..., None]")
    bad = ~np.isfinite(m) | (m != np.round(m)) | (m < 0) | (m >= classes)
    if np.any(bad):
        shown = ", ".join(f"{v:g}" for v in np.unique(m[bad])[:6])
        raise ValueError(f"{name}: a softmax head with {classes} classes takes class indices 0..{classes - 1} "
                         f"as masks, found {shown}; a JPEG-saved mask has compression noise (save masks as "
                         "PNG), or build the model with out_channels equal to the number of classes")
    return m.astype(np.float32)


def crop_targets(a, h, w):
    """Centre-crop targets (N, H, W, C) (or None) to (N, h, w, C): the valid network's output is smaller
    than its input, and its targets are cropped the way the paper crops the skips."""
    if a is None or a.shape[1:3] == (h, w):
        return a
    return center_crop(a, (h, w))[0]


def epoch_order(n, seed, epoch):
    """The shuffled example order of one epoch: a function of (seed, epoch) only."""
    return np.random.default_rng([seed, epoch]).permutation(n)


def make_batch(data, order, step, batch_size, seed, epoch, augment=False, crop=None, target_size=None):
    """Examples order[step * batch_size : ...], augmented with the generator of (seed, epoch, step).

    crop: (h, w) takes a random h x w window of each example (the images may then differ in size: data
    holds lists), drawn from the generator of (seed, epoch, step, 3), so a resumed run crops the same
    windows; target_size: (h, w) centre-crops the targets after augmentation (the valid network's output).
    """
    x, t, w = data
    idx = order[step * batch_size:(step + 1) * batch_size]
    if crop is not None:
        xb, tb, wb = random_crops(x, t, w, idx, crop, np.random.default_rng([seed, epoch, step, 3]))
    else:
        xb, tb, wb = x[idx], t[idx], None if w is None else w[idx]
    if augment:
        rng = np.random.default_rng([seed, epoch, step, 1])
        ex = [augment_with_weights(xb[i], tb[i], None if wb is None else wb[i], rng,
                                   elastic=augment != "flip") for i in range(len(idx))]
        xb = np.stack([e[0] for e in ex])
        tb = np.stack([e[1] for e in ex])
        wb = None if wb is None else np.stack([e[2] for e in ex])
    if target_size is not None:
        tb, wb = crop_targets(tb, *target_size), crop_targets(wb, *target_size)
    return xb, tb, wb


# ------------------------------------------------------------------------- images larger than the tile
def random_crops(images, masks, weights, idx, size, rng):
    """One random size[0] x size[1] window of each example idx[i] (images: a list of (H, W, C) arrays or an
    (N, H, W, C) array, masks and weights alike); returns stacked (B, h, w, .) arrays."""
    h, w = size
    xs, ts, ws = [], [], []
    for i in idx:
        H, W = images[i].shape[:2]
        top, left = int(rng.integers(H - h + 1)), int(rng.integers(W - w + 1))
        window = (slice(top, top + h), slice(left, left + w))
        xs.append(images[i][window])
        ts.append(masks[i][window])
        ws.append(None if weights is None else weights[i][window])
    return np.stack(xs), np.stack(ts), None if weights is None else np.stack(ws)


def tile_origins(length, tile):
    """Start offsets of tiles of ``tile`` pixels covering ``length`` pixels: a grid, the last tile flush with
    the end (tiles may overlap there)."""
    if length <= tile:
        return [0]
    starts = list(range(0, length - tile, tile))
    return starts + [length - tile]


def grid_crops(images, masks, weights, size):
    """Every image cut into size-pixel tiles on a grid that covers it (deterministic: for validation).
    Returns (N', h, w, C), (N', h, w, 1) and the weights alike, or None."""
    h, w = size
    xs, ts, ws = [], [], []
    for i in range(len(images)):
        H, W = images[i].shape[:2]
        for top in tile_origins(H, h):
            for left in tile_origins(W, w):
                window = (slice(top, top + h), slice(left, left + w))
                xs.append(images[i][window])
                ts.append(masks[i][window])
                ws.append(None if weights is None else weights[i][window])
    return np.stack(xs), np.stack(ts), None if weights is None else np.stack(ws)


def prepare_crops(model, images, masks, weights=None, size=None, name="train"):
    """Like :func:`prepare` for images of any size (a list of (H, W[, C]) arrays, or an array) that will be
    cropped to ``size`` = (h, w): each example checked on its own; returns lists (x, t, w)."""
    images = list(images)
    masks = list(masks)
    if not images:
        raise ValueError(f"{name}: no images")
    if len(masks) != len(images):
        raise ValueError(f"{name}: {len(images)} images but {len(masks)} masks")
    weights = None if weights is None else list(weights)
    xs, ts, ws = [], [], []
    for i, (im, m) in enumerate(zip(images, masks)):
        im, m = np.asarray(im), np.asarray(m)
        im = im[..., None] if im.ndim == 2 else im
        if im.shape[0] < size[0] or im.shape[1] < size[1]:
            raise ValueError(f"{name}: image {i} is {im.shape[0]}x{im.shape[1]}, smaller than the "
                             f"{size[0]}x{size[1]} crops; use a smaller tile (--size) or leave the image out")
        x, t, w = prepare(model, im[None], m[None], None if weights is None else np.asarray(weights[i])[None],
                          name=f"{name} image {i}")
        xs.append(x[0])
        ts.append(t[0])
        ws.append(None if w is None else w[0])
    return xs, ts, None if weights is None else ws


def output_size(model, x):
    """The model's output (height, width) for inputs shaped like x (N, H, W, C)."""
    if model.padding == "same":
        return x.shape[1], x.shape[2]
    return valid_output_size(x.shape[1], model.depth), valid_output_size(x.shape[2], model.depth)
