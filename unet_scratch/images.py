"""Reading and writing images as PNG (Pillow), so that what is saved is what a person sees.

- ``save_mask``: a binary mask as an 8-bit PNG with values 0 and 255 (a PNG of 0/1 looks all black).
- ``save_probabilities``: p in [0, 1] stretched to 0..255, so no contrast is lost (never saved as 0/1).
- ``save_overlay``: the mask's outline-free colour wash over the grey image, for looking at results.
"""
from __future__ import annotations

import os

import numpy as np

from .optional import require


def _pil():
    return require("PIL.Image", "reading and writing images")


def read_image(path, channels=1):
    """A PNG/TIFF/JPEG as float32 (H, W, channels) in [0, 1].

    channels=1 converts colour to grey only if the image is grey already; an RGB image raises ValueError
    unless ``channels="grey"`` (convert) is asked for, so a colour image is never silently misread.
    """
    Image = _pil()
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such image: {os.fspath(path)!r}")
    with Image.open(path) as im:
        mode = im.mode
        if channels == "grey":
            im, channels = im.convert("L"), 1
        elif channels == 1 and mode not in ("L", "I;16", "I", "F", "1", "P"):
            raise ValueError(f"{os.fspath(path)!r} is a colour image (mode {mode}) but the model takes one "
                             "channel; convert it to grey (--grayscale on the command line, "
                             "read_image(path, 'grey') in Python)")
        a = np.asarray(im.convert("L") if mode in ("1", "P") else im)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / 255
    elif a.dtype == np.uint16 or mode.startswith("I;16"):
        a = a.astype(np.float32) / 65535
    else:
        a = a.astype(np.float32)
        if a.size and (a.min() < 0 or a.max() > 1):
            a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
    a = a[..., None] if a.ndim == 2 else a
    if channels not in (None, a.shape[-1]):
        raise ValueError(f"{os.fspath(path)!r} has {a.shape[-1]} channels, {channels} expected")
    return a


def _squeeze(a, what):
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{what} must be (H, W) or (H, W, 1), got shape {a.shape}")
    return a


def save_mask(path, mask, threshold=0.5):
    """Write a binary mask (bool, {0, 1} or probabilities, thresholded) as an 8-bit PNG of 0 and 255."""
    m = _squeeze(mask, "mask")
    m = m if m.dtype == bool else m > threshold
    _pil().fromarray((m * 255).astype(np.uint8), mode="L").save(path)
    return path


def save_probabilities(path, p):
    """Write a probability map in [0, 1] as an 8-bit PNG, 0 -> 0 and 1 -> 255 (full contrast)."""
    p = _squeeze(p, "probability map").astype(np.float64)
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("a probability map must be finite and within [0, 1]")
    _pil().fromarray(np.round(p * 255).astype(np.uint8), mode="L").save(path)
    return path


def overlay(image, mask, color=(1.0, 0.85, 0.0), alpha=0.45):
    """(H, W, 3) float RGB: the grey image with the mask washed in ``color``."""
    g = _squeeze(image, "image").astype(np.float64)
    m = _squeeze(mask, "mask")
    m = (m if m.dtype == bool else m > 0.5)[..., None]
    rgb = np.repeat(g[..., None], 3, axis=-1)
    return np.where(m, (1 - alpha) * rgb + alpha * np.asarray(color), rgb)


def save_overlay(path, image, mask, **kwargs):
    """Write :func:`overlay` as an RGB PNG."""
    rgb = np.clip(overlay(image, mask, **kwargs), 0, 1)
    _pil().fromarray(np.round(rgb * 255).astype(np.uint8), mode="RGB").save(path)
    return path
