"""Reading and writing images as PNG (Pillow), so that what is saved is what a person sees.

- ``read_image``: a PNG/TIFF/JPEG as float32 (H, W, C) in [0, 1]; colour is never silently turned grey,
  a file that is not an image (empty, text, truncated, a decompression bomb) is a ValueError that says so.
- ``image_info``: (height, width, channels) from the file's header alone, to check memory before decoding.
- ``save_mask``: a binary mask as an 8-bit PNG with values 0 and 255 (a PNG of 0/1 looks all black).
- ``save_probabilities``: p in [0, 1] stretched to 0..255, so no contrast is lost (never saved as 0/1).
- ``save_overlay``: the mask's outline-free colour wash over the image, for looking at results.

Every write is atomic (a temporary file renamed over the target): a full disk or Ctrl-C leaves the previous
file as it was. Masks and probability maps refuse lossy formats (JPEG would add grey levels).
"""
from __future__ import annotations

import os
import warnings
import zlib

import numpy as np

from .optional import require
from .serialization import atomic_write

LOSSLESS = (".png", ".tif", ".tiff")
_GREY_MODES = ("L", "I;16", "I;16B", "I;16L", "I", "F", "1")


def _pil():
    return require("PIL.Image", "reading and writing images")


def _open(path):
    """An opened PIL image (header read, pixels not yet decoded), or a ValueError naming the problem."""
    Image = _pil()
    shown = repr(os.fspath(path))
    if not os.path.exists(path):
        raise FileNotFoundError(f"no such image: {shown}")
    if os.path.isdir(path):
        raise ValueError(f"{shown} is a directory, not an image; give one image file (PNG, TIFF, JPEG)")
    if os.path.getsize(path) == 0:
        raise ValueError(f"{shown} is empty (0 bytes): not an image; was it copied or saved completely?")
    try:
        return Image.open(path)
    except Image.DecompressionBombError as err:
        raise ValueError(f"{shown} claims more pixels than Pillow will decode ({err}); if the image is real, "
                         "cut it into smaller parts first") from err
    except Image.UnidentifiedImageError as err:
        raise ValueError(f"{shown} is not an image that Pillow can read (PNG, TIFF, JPEG, ...); "
                         "check that it is the file you meant") from err


def image_info(path) -> tuple[int, int, int]:
    """(height, width, channels) of an image file, from its header only (no pixels are decoded)."""
    with _open(path) as im:
        return im.size[1], im.size[0], len(im.getbands())


def _palette_is_grey(im) -> bool:
    rgb = np.asarray(im.convert("RGB"))
    return bool(np.all(rgb[..., 0] == rgb[..., 1]) and np.all(rgb[..., 1] == rgb[..., 2]))


def read_image(path, channels=1, bits=None):
    """A PNG/TIFF/JPEG as float32 (H, W, channels) in [0, 1].

    channels=1 accepts grey images only; an RGB image (or a palette image with coloured entries) raises
    ValueError unless ``channels="grey"`` (convert) is asked for, so a colour image is never silently misread.
    bits: the significant bits of integer data: 8-bit images are divided by 255 and 16-bit ones by 65535
    unless ``bits`` says otherwise (a camera's 12-bit data in a 16-bit PNG: ``bits=12`` divides by 4095).
    A 16-bit image whose values all lie below 4096 gets a UserWarning that names ``bits``.
    """
    shown = repr(os.fspath(path))
    Image = _pil()
    with _open(path) as im:
        mode = im.mode
        try:
            im.load()
            if channels == "grey":
                im, channels = (im if mode in _GREY_MODES else im.convert("L")), 1
            elif mode in ("P", "PA"):
                if channels == 1 and not _palette_is_grey(im):
                    raise ValueError(f"{shown} is a palette image with coloured entries but the model takes one "
                                     "channel; convert it to grey (--grayscale on the command line, "
                                     "read_image(path, 'grey') in Python)")
                im = im.convert("L" if channels == 1 else "RGB")
            elif channels == 1 and mode not in _GREY_MODES:
                raise ValueError(f"{shown} is a colour image (mode {mode}) but the model takes one channel; "
                                 "convert it to grey (--grayscale on the command line, "
                                 "read_image(path, 'grey') in Python)")
            a = np.asarray(im.convert("L") if im.mode == "1" else im)
        except (OSError, SyntaxError, EOFError, zlib.error, Image.DecompressionBombError) as err:
            raise ValueError(f"{shown} could not be decoded: it is truncated or corrupt ({err}); "
                             "save or copy it again") from err
    if np.issubdtype(a.dtype, np.integer) and a.dtype.itemsize <= 2:
        full = 255 if a.dtype.itemsize == 1 else 65535
        top = int(a.max()) if a.size else 0
        if bits is not None:
            if not isinstance(bits, (int, np.integer)) or not 1 <= bits <= 16:
                raise ValueError(f"bits must be an integer from 1 to 16, got {bits!r}")
            full = 2 ** int(bits) - 1
            if top > full:
                raise ValueError(f"{shown} has values up to {top}, more than {bits}-bit data allows "
                                 f"({full}); give the right bits (e.g. 16) or leave it out")
        elif full == 65535 and 0 < top < 4096:
            warnings.warn(f"{shown} is a 16-bit image whose values stay below 4096 (maximum {top}): 12-bit "
                          f"data? Divided by 65535 it reads as 0..{top / 65535:.3f}, nearly black to the "
                          f"network; pass bits=12 (--bits 12 on the command line) to scale 0..4095 to 0..1",
                          UserWarning, stacklevel=2)
        a = a.astype(np.float32) / full
    else:
        a = a.astype(np.float32)
        if a.size and (a.min() < 0 or a.max() > 1):
            a = (a - a.min()) / max(float(a.max() - a.min()), 1e-12)
    a = a[..., None] if a.ndim == 2 else a
    if channels not in (None, a.shape[-1]):
        raise ValueError(f"{shown} has {a.shape[-1]} channels, the model takes {channels}")
    return a


def _squeeze(a, what):
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[-1] == 1:
        a = a[..., 0]
    if a.ndim != 2:
        raise ValueError(f"{what} must be (H, W) or (H, W, 1), got shape {a.shape}")
    return a


def _save(path, array, mode, lossless):
    """Write a uint8 array as an image atomically, in the format the file name's extension names."""
    Image = _pil()
    ext = os.path.splitext(os.fspath(path))[1].lower()
    allowed = LOSSLESS if lossless else tuple(e for e in Image.registered_extensions() if e)
    if ext not in allowed:
        raise ValueError(f"cannot save {os.fspath(path)!r} as {ext or 'a file without extension'}; use "
                         f"{' or '.join(LOSSLESS)}" + (" (JPEG is lossy: a mask would hold grey levels)"
                                                     if ext in (".jpg", ".jpeg") else ""))
    im = Image.fromarray(array, mode=mode)
    fmt = Image.registered_extensions()[ext]
    return atomic_write(path, lambda f: im.save(f, format=fmt))


def save_mask(path, mask, threshold=0.5):
    """Write a binary mask (bool, {0, 1} or probabilities, thresholded) as an 8-bit PNG of 0 and 255."""
    m = _squeeze(mask, "mask")
    m = m if m.dtype == bool else m > threshold
    return _save(path, (m * 255).astype(np.uint8), "L", lossless=True)


def save_probabilities(path, p):
    """Write a probability map in [0, 1] as an 8-bit PNG, 0 -> 0 and 1 -> 255 (full contrast)."""
    p = _squeeze(p, "probability map").astype(np.float64)
    if not np.all(np.isfinite(p)) or p.min() < 0 or p.max() > 1:
        raise ValueError("a probability map must be finite and within [0, 1]")
    return _save(path, np.round(p * 255).astype(np.uint8), "L", lossless=True)


def overlay(image, mask, color=(1.0, 0.85, 0.0), alpha=0.45):
    """(H, W, 3) float RGB: the image (grey (H, W[, 1]) or RGB (H, W, 3)) with the mask washed in ``color``."""
    image = np.asarray(image, dtype=np.float64)
    if image.ndim == 3 and image.shape[-1] == 3:
        rgb = image
    else:
        rgb = np.repeat(_squeeze(image, "image")[..., None], 3, axis=-1)
    m = _squeeze(mask, "mask")
    if m.shape != rgb.shape[:2]:
        raise ValueError(f"mask {m.shape} and image {rgb.shape[:2]} differ in size")
    m = (m if m.dtype == bool else m > 0.5)[..., None]
    return np.where(m, (1 - alpha) * rgb + alpha * np.asarray(color), rgb)


def save_overlay(path, image, mask, **kwargs):
    """Write :func:`overlay` as an RGB image (PNG; JPEG is fine for a picture to look at)."""
    rgb = np.clip(overlay(image, mask, **kwargs), 0, 1)
    return _save(path, np.round(rgb * 255).astype(np.uint8), "RGB", lossless=False)
