"""Data augmentation that moves image and mask together (Ronneberger et al. 2015, section 3.1).

The paper trains on very few images and relies on augmentation, above all on elastic deformation:

1. Draw a random displacement vector (dy, dx) at each node of a coarse grid x grid lattice (3 x 3 in the
   paper), each component ~ Normal(0, sigma**2) with sigma = 10 pixels on the paper's 512 x 512 images.
   The lattice spans the whole image, so its spacing grows with the image; the displacements do not. By
   default (``sigma=None``) they are scaled with the image, ``scaled_sigma``: 10 * min(H, W) / 512, 2.5 px
   at 128 x 128, the paper's deformation shrunk with the image. Pass ``sigma=10.0`` for the paper's pixels.
2. Interpolate the lattice smoothly (bicubic spline) up to one displacement per pixel: a field u(y, x).
3. Resample: out(y, x) = in(y + u_y(y, x), x + u_x(y, x)). The image is resampled bicubically
   (spline order 3, mirrored at the border), the mask with nearest neighbour (order 0), so the mask keeps
   exactly the values it had ({0, 1} stays {0, 1}). Both use the same field: they move together.

``flip_rotate`` adds the eight symmetries of the square (flips and 90-degree rotations); on a non-square
image only the shape-preserving ones (identity, flips, 180 degrees) are drawn. Arrays are (H, W) or
(H, W, C); the channels are warped identically.
"""
from __future__ import annotations

import numpy as np
from scipy import ndimage


PAPER_SIGMA = 10.0      # pixels, the paper's displacement standard deviation ...
PAPER_SIZE = 512        # ... on its 512 x 512 ISBI 2012 images


def scaled_sigma(shape, sigma=PAPER_SIGMA, size=PAPER_SIZE):
    """The paper's displacement std scaled to an image of this shape: sigma * min(H, W) / size (pixels).

    shape: (H, W[, C]). 10 px at 512 x 512 gives 2.5 px at 128 x 128 and 1.25 px at 64 x 64: the same
    deformation relative to the image (the 3 x 3 lattice spans the image whatever its size).
    """
    return float(sigma) * min(int(shape[0]), int(shape[1])) / float(size)


def _sigma_for(shape, sigma):
    return scaled_sigma(shape) if sigma is None else sigma


def _check_pair_shapes(image, mask):
    image, mask = np.asarray(image), np.asarray(mask)
    if image.ndim not in (2, 3) or mask.ndim not in (2, 3):
        raise ValueError(f"image {image.shape} and mask {mask.shape} must be (H, W) or (H, W, C); "
                         "augment one example at a time (loop over the batch)")
    if image.shape[:2] != mask.shape[:2]:
        raise ValueError(f"image shape {image.shape} and mask shape {mask.shape} differ in (H, W)")
    return image, mask


def _symmetry(rng, shape):
    """Draw one of the square's symmetries: (k quarter turns, flip); only shape-preserving ones if H != W."""
    k = int(rng.integers(4)) if shape[0] == shape[1] else 2 * int(rng.integers(2))
    return k, bool(rng.integers(2))


def _apply_symmetry(x, k, flip):
    x = np.rot90(x, k, axes=(0, 1))
    return np.ascontiguousarray(x[:, ::-1] if flip else x)


def flip_rotate(image, mask, rng):
    """Random flip and 90-degree rotation, the same for both.

    image: (H, W) or (H, W, C); mask: (H, W) or (H, W, C); rng: np.random.Generator.
    Returns (image, mask) with the same shapes (rotations by 90 degrees only when H == W).
    """
    image, mask = _check_pair_shapes(image, mask)
    return _flip_rotate_all((image, mask), rng)


def _flip_rotate_all(arrays, rng):
    """One symmetry drawn from rng, applied to every array of the tuple (None stays None)."""
    k, flip = _symmetry(rng, arrays[0].shape)
    return tuple(None if a is None else _apply_symmetry(a, k, flip) for a in arrays)


def displacement_field(shape, rng, grid=3, sigma=10.0):
    """Smooth random displacements: (2, H, W) float64, [0] along rows (y), [1] along columns (x).

    A (2, grid, grid) lattice of Normal(0, sigma**2) vectors, interpolated bicubically over the image so that
    lattice node (i, j) sits at pixel (i (H-1)/(grid-1), j (W-1)/(grid-1)).
    """
    if grid < 2:
        raise ValueError(f"grid = {grid}: the displacement lattice needs at least 2 x 2 nodes")
    if sigma < 0:
        raise ValueError(f"sigma = {sigma}: a standard deviation cannot be negative")
    h, w = shape[:2]
    coarse = rng.normal(0.0, sigma, (2, grid, grid))
    rows = np.linspace(0, grid - 1, h)[:, None] * np.ones((1, w))
    cols = np.linspace(0, grid - 1, w)[None, :] * np.ones((h, 1))
    return np.stack([ndimage.map_coordinates(c, [rows, cols], order=3, mode="mirror") for c in coarse])


def warp(x, field, order):
    """Resample x (H, W) or (H, W, C) at (y + field[0], x + field[1]) with spline `order`, mirrored borders."""
    h, w = x.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w]
    coords = [yy + field[0], xx + field[1]]
    planes = x[..., None] if x.ndim == 2 else x
    out = np.stack([ndimage.map_coordinates(planes[..., c], coords, order=order, mode="reflect")
                    for c in range(planes.shape[-1])], axis=-1).astype(x.dtype, copy=False)
    return out[..., 0] if x.ndim == 2 else out


def elastic_deform(image, mask, rng, grid=3, sigma=None):
    """The paper's elastic deformation, one random field applied to both.

    image: (H, W) or (H, W, C) float, resampled bicubically and clipped to its original value range
    (cubic splines overshoot at sharp edges); mask: (H, W) or (H, W, C), nearest neighbour, so its values
    are kept. grid: lattice nodes per side; sigma: displacement standard deviation in pixels, None (the
    default) for the paper's 10 px at 512 x 512 scaled to this image (``scaled_sigma``).
    Returns (image, mask), shapes and dtypes unchanged.
    """
    image, mask = _check_pair_shapes(image, mask)
    return _elastic_all(image, mask, None, rng, grid, sigma)[:2]


def _elastic_all(image, mask, weight, rng, grid, sigma):
    """One displacement field drawn from rng: the image bicubic (clipped to its range), the mask nearest,
    the weight map (or None) bilinear."""
    field = displacement_field(image.shape, rng, grid, _sigma_for(image.shape, sigma))
    warped = warp(image, field, order=3)
    if image.size:
        warped = np.clip(warped, image.min(), image.max())
    return warped, warp(mask, field, order=0), None if weight is None else warp(weight, field, order=1)


def augment(image, mask, rng, grid=3, sigma=None):
    """flip_rotate, then elastic_deform: (H, W[, C]) image and mask -> same shapes (sigma as there)."""
    return augment_with_weights(image, mask, None, rng, elastic=True, grid=grid, sigma=sigma)[:2]


def augment_with_weights(image, mask, weight, rng, elastic=True, grid=3, sigma=None):
    """:func:`augment` that also moves a per-pixel weight map (or None) with the image: the same draws from
    rng, so (image, mask) come out as ``augment`` (or ``flip_rotate`` alone with elastic=False) gives them.
    The weight map is resampled bilinearly. Returns (image, mask, weight)."""
    image, mask = _check_pair_shapes(image, mask)
    image, mask, weight = _flip_rotate_all((image, mask, weight), rng)
    if elastic:
        image, mask, weight = _elastic_all(image, mask, weight, rng, grid, sigma)
    return image, mask, weight
