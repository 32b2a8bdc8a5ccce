"""Input checks that fail early with a message that names the problem and the fix.

A NumPy traceback from deep inside an im2col is no help to a student; these checks run at the model's
and the layers' front doors instead.
"""
from __future__ import annotations

import numpy as np


def check_image_batch(x, channels: int | None = None, name: str = "x"):
    """Validate an NHWC batch of images and return it unchanged.

    x: (N, H, W, C) floating-point array. Raises TypeError for non-arrays, integer or bool data;
    ValueError for the wrong number of dimensions, the wrong channel count, NaN or Inf.
    """
    if not hasattr(x, "ndim") or not hasattr(x, "dtype"):
        raise TypeError(f"{name} must be an array of shape (N, H, W, C), got {type(x).__name__}; "
                        f"use np.asarray({name}, dtype=np.float32)")
    if x.ndim != 4:
        hint = ""
        if x.ndim == 3:
            hint = (f"; for one image use {name}[None] (adds the batch axis), "
                    f"for a batch of grey images use {name}[..., None] (adds the channel axis)")
        elif x.ndim == 2:
            hint = f"; for one grey image use {name}[None, :, :, None]"
        raise ValueError(f"{name} must be 4-D NHWC (batch, height, width, channels), "
                         f"got shape {tuple(x.shape)}{hint}")
    if x.dtype == bool or not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"{name} has dtype {x.dtype}; the network needs floating-point images. "
                        f"Convert with {name}.astype(np.float32) / 255 for 8-bit images "
                        f"(or / {name}.max() for other integer ranges)")
    if channels is not None and x.shape[-1] != channels:
        hint = ""
        if x.shape[-1] == 3 and channels == 1:
            hint = "; convert RGB to grey first, e.g. x.mean(axis=-1, keepdims=True)"
        elif x.shape[-1] != channels and x.shape[1] == channels:
            hint = "; the array looks channels-first (NCHW): use x.transpose(0, 2, 3, 1)"
        raise ValueError(f"{name} has {x.shape[-1]} channels but the model expects {channels} "
                         f"(input shape (N, H, W, {channels})){hint}")
    check_finite(x, name)
    return x


def check_finite(x, name: str = "x"):
    """Raise ValueError if x holds NaN or Inf, saying how many and where the first one is."""
    finite = np.isfinite(x)
    if not bool(finite.all()):
        bad = np.argwhere(~finite)
        first = tuple(int(i) for i in bad[0])
        n_nan = int(np.isnan(x).sum())
        n_inf = int(bad.shape[0]) - n_nan
        raise ValueError(f"{name} contains {n_nan} NaN and {n_inf} Inf values (first at index {first}); "
                         f"clean the data first, e.g. np.nan_to_num({name}) or drop those images")
    return x


def same_padding_sizes_ok(size: int, depth: int) -> bool:
    """A 'same'-padded U-Net of this depth needs every size divisible by 2**depth."""
    return size > 0 and size % (2 ** depth) == 0


def valid_output_size(size: int, depth: int, convs_per_level: int = 2, kernel: int = 3) -> int | None:
    """Output size of the paper's valid-padded U-Net for an input tile of ``size``, or None if illegal.

    Each 3x3 valid conv removes 2 pixels; each 2x2 pool needs an even size; each up-conv doubles.
    For depth 4: 572 -> 388 (the paper's tile), legal tiles are 16 m + 60 (m >= 8, so 188, 204, ...) with output size - 184.
    """
    shrink = convs_per_level * (kernel - 1)
    n = size
    for _ in range(depth):
        n -= shrink
        if n <= 0 or n % 2:
            return None
        n //= 2
    n -= shrink                      # bottleneck
    if n <= 0:
        return None
    for _ in range(depth):
        n = 2 * n - shrink
        if n <= 0:
            return None
    return n


def nearest_legal_sizes(size: int, depth: int, padding: str) -> tuple[int, int]:
    """The closest legal input sizes below and above ``size`` (below may be 0 when none exists)."""
    ok = (lambda s: same_padding_sizes_ok(s, depth)) if padding == "same" else \
         (lambda s: valid_output_size(s, depth) is not None)
    below = next((s for s in range(size, 0, -1) if ok(s)), 0)
    above = next(s for s in range(max(size, 1), size + 2 ** (depth + 3) + 400) if ok(s))
    return below, above


def check_unet_size(height: int, width: int, depth: int, padding: str):
    """Raise ValueError, with the nearest legal sizes, if (height, width) cannot go through the U-Net."""
    for axis, size in (("height", height), ("width", width)):
        if padding == "same":
            if not same_padding_sizes_ok(size, depth):
                lo, hi = nearest_legal_sizes(size, depth, padding)
                use = f"{lo} or {hi}" if lo else f"{hi}"
                raise ValueError(
                    f"input {axis} {size} is not divisible by 2**depth = {2 ** depth}: after {depth} "
                    f"poolings the skip connections would not line up; use {use} "
                    f"(resize, crop or pad the image)")
        else:
            if valid_output_size(size, depth) is None:
                lo, hi = nearest_legal_sizes(size, depth, padding)
                use = f"{lo} or {hi}" if lo else f"{hi}"
                raise ValueError(
                    f"input {axis} {size} is not a legal tile for the valid-padded U-Net of depth {depth} "
                    f"(every size before a pooling must be even and positive); use {use}"
                    + (" (legal tiles are 16 m + 60 with m >= 8, e.g. 572 -> 388 as in the paper)" if depth == 4 else ""))
