"""Data sets generated from a seed: nothing is ever downloaded.

Two synthetic tasks, each modelled on one of the paper's experiments:

``membranes``  electron-microscopy-like sections (ISBI 2012): irregular cells whose walls (membranes, the
               foreground, label 1) must be traced. The cells come from a jittered Voronoi tessellation:
               random seeds on a jittered grid, each pixel belongs to its nearest seed, and the membrane is the
               set of pixels close to the bisector between the nearest and second-nearest seed. For seeds
               s1, s2 at distances d1 <= d2 from pixel x, the distance from x to their bisector is exactly
               (d2**2 - d1**2) / (2 |s1 - s2|). A smooth random warp of the pixel grid bends the straight
               Voronoi edges, a smooth thickness field varies the membrane width (2 to 4 px; thinner
               walls left the label's edge to sub-pixel guesswork: a well-trained small U-Net stalled at
               Dice 0.87 on 1.4 to 3.4 px walls), and the image gets
               organelle-like blobs (some as dark as membranes), blur, uneven illumination and noise, so a
               global threshold cannot separate membranes from cell texture.
``cells``      touching nuclei (the case the paper's weight map was made for): random ellipses; a pixel that
               lies in several ellipses goes to the one with the smallest normalised distance
               sqrt((u/a)**2 + (v/b)**2). The 1-pixel rim on each side of a contact between two objects
               becomes background, so touching objects are separated by a 2-pixel gap in the mask.

Every image i of ``membranes(n, seed=s)`` is generated from its own child seed, so the first k images do
not depend on n. ``load`` gives fixed, disjoint train/val/test splits (different seeds per split).
Generation loops over images (each image has its own number of cells); the work inside is vectorised.
"""
from __future__ import annotations

import warnings

import numpy as np
from scipy import ndimage
from scipy.spatial import cKDTree

DATASETS = ("membranes", "cells")
SPLITS = ("train", "val", "test")
DEFAULT_COUNTS = {"train": 64, "val": 16, "test": 16}


# ----------------------------------------------------------------------------------------------- helpers
def _check_n_size(n, size):
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n <= 0:
        raise ValueError(f"n = {n!r}: a data set needs at least one image; pass an integer n >= 1")
    if not isinstance(size, (int, np.integer)) or size < 16:
        raise ValueError(f"size = {size!r}: images must be at least 16 x 16 pixels; pass an integer >= 16")


def _image_rngs(n, seed):
    """One independent generator per image, so image i does not depend on n."""
    return [np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(n)]


def _smooth_noise(rng, size, sigma):
    """(size, size) float32 smooth random field, zero mean, unit standard deviation.

    Broad fields are filtered on a coarser grid and upsampled (same look, a fraction of the cost).
    """
    step = max(1, int(sigma // 4))
    coarse = -(-size // step)
    f = ndimage.gaussian_filter(rng.standard_normal((coarse, coarse)).astype(np.float32),
                                sigma / step, mode="wrap")
    if step > 1:
        f = ndimage.zoom(f, step, order=1, mode="grid-wrap", grid_mode=True)[:size, :size]
    return (f - f.mean()) / (f.std() + 1e-8)


def _blobs(rng, size, count, radius_range):
    """(size, size) float32 in [0, 1]: about `count` soft discs (organelle-like texture).

    Each disc is a Gaussian bump of height A cut at 0.5: its radius is s * sqrt(2 ln(2 A)).
    """
    s = 0.6 * radius_range[0] + 0.2 * radius_range[1]
    r = rng.uniform(*radius_range, count)
    impulses = np.zeros((size, size), np.float32)
    height = 0.5 * np.exp(r**2 / (2 * s**2))
    np.add.at(impulses, tuple(rng.integers(0, size, (2, count))), height * 2 * np.pi * s**2)
    bumps = ndimage.gaussian_filter(impulses, s, mode="constant")
    return np.clip((bumps - 0.5) * 2.0 + 0.5, 0, 1)


def _pixel_grid(size):
    """(size*size, 2) pixel centre coordinates (row, col)."""
    yy, xx = np.mgrid[0:size, 0:size]
    return np.stack([yy.ravel(), xx.ravel()], axis=1).astype(np.float64)


def _finish(image, rng, noise_std):
    """Blur, add Gaussian noise, rescale to [0, 1]: (H, W) -> (H, W) float32."""
    image = ndimage.gaussian_filter(image, 1.0)
    image = image + rng.normal(0, noise_std, image.shape).astype(np.float32)
    lo, hi = np.percentile(image, [0.5, 99.5])
    return np.clip((image - lo) / (hi - lo + 1e-8), 0, 1).astype(np.float32)


# -------------------------------------------------------------------------------------------- membranes
def _membrane_example(rng, size):
    """One EM-like section: image (size, size) float32 in [0, 1], mask (size, size) float32 in {0, 1}."""
    cell = rng.uniform(14, 22)                       # mean cell diameter in pixels
    g = int(np.ceil(size / cell)) + 2                # seeds on a jittered grid, one cell beyond the border
    gy, gx = np.mgrid[0:g, 0:g]
    seeds = (np.stack([gy.ravel(), gx.ravel()], 1) - 1 + 0.5) * (size / (g - 2))
    seeds += rng.uniform(-0.4, 0.4, seeds.shape) * (size / (g - 2))
    # Bend the Voronoi edges: look the pixels up at smoothly displaced positions.
    warp = np.stack([_smooth_noise(rng, size, 10).ravel(), _smooth_noise(rng, size, 10).ravel()], 1)
    pts = _pixel_grid(size) + 3.0 * warp
    (d1, d2), (i1, i2) = (a.T for a in cKDTree(seeds).query(pts, k=2))
    gap = np.linalg.norm(seeds[i1] - seeds[i2], axis=1)
    to_edge = ((d2**2 - d1**2) / (2 * gap)).reshape(size, size)
    half_width = 1.0 + 0.5 * (1 + np.tanh(_smooth_noise(rng, size, 8)))          # 1.0 .. 2.0 px
    mask = (to_edge < half_width).astype(np.float32)

    labels = i1.reshape(size, size)
    cell_grey = rng.uniform(0.55, 0.85, len(seeds)).astype(np.float32)[labels]
    contrast = 0.45 + 0.25 * np.clip(_smooth_noise(rng, size, 12), -1, 1)         # faint and strong walls
    profile = np.clip(half_width + 0.7 - to_edge, 0, 1).astype(np.float32)       # soft membrane edge
    image = cell_grey - contrast * profile
    dark = _blobs(rng, size, int(rng.integers(8, 15) * (size / 128) ** 2), (1.5, 3.5))
    light = _blobs(rng, size, int(rng.integers(10, 20) * (size / 128) ** 2), (2.0, 5.0))
    image = image - 0.45 * dark * (1 - mask) - 0.12 * light
    image = image + 0.06 * _smooth_noise(rng, size, 2)                            # cytoplasm texture
    illumination = 1 + 0.25 * _smooth_noise(rng, size, size / 3)
    return _finish((image * illumination).astype(np.float32), rng, 0.06), mask


def membranes(n, size=128, seed=0):
    """EM-like membrane images (ISBI 2012 style).

    Returns images (n, size, size, 1) float32 in [0, 1] and masks (n, size, size, 1) float32 in {0, 1}
    (1 = membrane). Deterministic in seed; image i does not depend on n.
    """
    _check_n_size(n, size)
    pairs = [_membrane_example(r, size) for r in _image_rngs(n, seed)]
    images = np.stack([p[0] for p in pairs])[..., None]
    masks = np.stack([p[1] for p in pairs])[..., None]
    return images, masks


# ------------------------------------------------------------------------------------------------ cells
def _ellipse_centres(rng, size, count, radii):
    """Centres with some overlap allowed but no object buried inside another (rejection sampling)."""
    centres = []
    for r in radii[:count]:
        for _ in range(30):
            c = rng.uniform(0.1 * size, 0.9 * size, 2)
            if all(np.hypot(*(c - p)) > 0.8 * (r + q) for p, q in centres):
                centres.append((c, r))
                break
    return centres


def _contact_rim(labels):
    """(H, W) bool: object pixels with a 4-neighbour in a different object (not background)."""
    big = labels.max() + 1
    cross = ndimage.generate_binary_structure(2, 1)
    above = ndimage.maximum_filter(labels, footprint=cross, mode="nearest") > labels
    below = ndimage.minimum_filter(np.where(labels == 0, big, labels), footprint=cross, mode="nearest") < labels
    return (labels > 0) & (above | below)


def _cell_example(rng, size):
    """One image of touching nuclei: image, mask (size, size) float32, instances (size, size) int32."""
    scale = size / 128
    radii = rng.uniform(9, 16, 40) * scale
    placed = _ellipse_centres(rng, size, max(3, int(rng.integers(12, 20) * scale**2)), radii)
    c = np.array([p for p, _ in placed])                             # (K, 2)
    r = np.array([q for _, q in placed])
    k = len(c)
    theta = rng.uniform(0, np.pi, k)
    a, b = r * rng.uniform(1.0, 1.4, k), r * rng.uniform(0.7, 1.0, k)
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    dy, dx = yy[None] - c[:, 0, None, None], xx[None] - c[:, 1, None, None]       # (K, H, W)
    cos, sin = np.cos(theta)[:, None, None], np.sin(theta)[:, None, None]
    u, v = cos * dx + sin * dy, -sin * dx + cos * dy
    rho = np.sqrt((u / a[:, None, None]) ** 2 + (v / b[:, None, None]) ** 2)
    nearest = rho.argmin(0)
    labels = np.where(rho.min(0) < 1, nearest + 1, 0).astype(np.int32)
    rim = _contact_rim(labels)
    instances = np.where(rim, 0, labels).astype(np.int32)
    mask = (instances > 0).astype(np.float32)

    grey = rng.uniform(0.5, 0.9, k + 1).astype(np.float32)
    grey[0] = 0.15
    image = grey[labels] - 0.15 * rim                                 # contacts only slightly darker
    image = image - 0.2 * _blobs(rng, size, int(25 * scale**2), (1.0, 2.5)) * (labels > 0)
    image = image * (1 + 0.2 * _smooth_noise(rng, size, size / 3))
    return _finish(image.astype(np.float32), rng, 0.05), mask, instances


def cells(n, size=128, seed=0):
    """Touching nuclei with instance labels.

    Returns images (n, size, size, 1) float32 in [0, 1], masks (n, size, size, 1) float32 in {0, 1}
    (foreground without the 2-pixel gaps between touching objects) and instances (n, size, size) int32
    (0 = background, 1..K = objects; instances > 0 equals the mask).
    """
    _check_n_size(n, size)
    triples = [_cell_example(r, size) for r in _image_rngs(n, seed)]
    images = np.stack([t[0] for t in triples])[..., None]
    masks = np.stack([t[1] for t in triples])[..., None]
    return images, masks, np.stack([t[2] for t in triples])


# ------------------------------------------------------------------------------------------------- load
def load(name, split="train", n=None, size=128, seed=0):
    """A fixed split of a generated data set: ``membranes`` -> (images, masks), ``cells`` -> (images,
    masks, instances). Default counts: train 64, val 16, test 16. Splits use different seeds, so they are
    disjoint; the same (name, split, size, seed) always gives the same images.
    """
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; choose one of {', '.join(DATASETS)}")
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    n = DEFAULT_COUNTS[split] if n is None else n
    split_seed = int(np.random.SeedSequence([seed, DATASETS.index(name), SPLITS.index(split)])
                     .generate_state(1)[0])
    return (membranes if name == "membranes" else cells)(n, size=size, seed=split_seed)


# ------------------------------------------------------------------------------------------- validation
def _spatial(x):
    return x.shape[1:3] if x.ndim == 4 else x.shape[:2]


def check_pair(image, mask):
    """Validate an (image, mask) pair and return them as float32: image in [0, 1], mask in {0, 1}.

    image, mask: (H, W), (H, W, C) or (N, H, W, C), same spatial size (and batch size).
    uint8 images are divided by 255; float images outside [0, 1] (0..255 data as float, say) raise
    ValueError. A mask stored as 0/255 is normalised to {0, 1} with a UserWarning;
    any other mask values raise ValueError.
    """
    image, mask = np.asarray(image), np.asarray(mask)
    for name, x in (("image", image), ("mask", mask)):
        if x.ndim not in (2, 3, 4):
            raise ValueError(f"{name} has shape {x.shape}; expected (H, W), (H, W, C) or (N, H, W, C)")
    if _spatial(image) != _spatial(mask) or (image.ndim == 4) != (mask.ndim == 4) or (
            image.ndim == 4 and image.shape[0] != mask.shape[0]):
        raise ValueError(f"image shape {image.shape} and mask shape {mask.shape} do not match: "
                         "they need the same (batch and) spatial size")
    if image.dtype == np.uint8:
        image = image.astype(np.float32) / 255
    image = image.astype(np.float32)
    if not np.all(np.isfinite(image)):
        raise ValueError("image contains NaN or inf values")
    if image.size and image.max() > 1 + 1e-6:
        raise ValueError(f"image values reach {float(image.max()):g}, but images must be in [0, 1]: 8-bit "
                         "data stored as float? divide by 255 (image / 255)")
    if image.size and image.min() < -1e-6:
        raise ValueError(f"image values go down to {float(image.min()):g}, but images must be in [0, 1]: "
                         "rescale, e.g. (image - image.min()) / (image.max() - image.min())")
    values = np.unique(mask)
    if values.size and values.max() > 1 and np.all(np.isin(values, (0, 255))):
        warnings.warn("mask is stored as 0/255; normalised to {0, 1} (divide by 255 when loading)",
                      UserWarning, stacklevel=2)
        mask = mask / 255
    elif not np.all(np.isin(values, (0, 1))):
        shown = ", ".join(str(v) for v in values[:6]) + (" ..." if values.size > 6 else "")
        raise ValueError(f"mask values must be 0/1 (or 0/255), got {shown}; a JPEG-saved mask has "
                         "compression noise: threshold it (mask > 127) or save masks as PNG")
    return image, mask.astype(np.float32)
