"""Inference: ``predict`` for images the network takes as they are, ``predict_tiled`` for any size.

The paper's overlap-tile strategy (Ronneberger et al. 2015, Fig. 2): a large image is cut into tiles;
each tile is fed with enough context around it that its output is exact, and the missing context at the
image border is filled by mirroring the image.

- valid padding: an input tile of t pixels gives an output of o = t - 2 m pixels (572 -> 388, m = 92 at
  depth 4). Output tiles are laid edge to edge on a grid whose step is a multiple of 2**depth (so that
  every tile sees the same pooling grid as one big pass would), and the result equals the untiled one.
- same padding: the network pads each conv with zeros, so a tile's output is wrong near the tile's edge.
  Each tile keeps a core of c = t - 2 m pixels, m of context on each side; with ``blend=True`` the
  margins are not thrown away but weighted by a ramp that falls to ~0 at the tile's edge, and
  overlapping tiles are averaged with those weights. With ``blend=False`` only the cores are used, and
  once m covers the network's receptive field the result equals the untiled one.
"""
from __future__ import annotations

import math
import os

import numpy as np

from .backend import to_device_array, to_numpy
from .checks import check_finite, valid_output_size


class NotEnoughMemory(MemoryError):
    """A prediction was refused before allocating: it would need more memory than allowed."""


def _check_batch_size(batch_size):
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be an integer >= 1 (images per forward pass), got {batch_size!r}")
    return int(batch_size)


def _check_channels(shape, channels, batch):
    """ValueError naming the fix unless the last axis of ``shape`` holds ``channels`` channels."""
    if shape[-1] == channels:
        return
    if batch and len(shape) == 4 and shape[1] == channels:
        hint = "; the array looks channels-first (N, C, H, W): use images.transpose(0, 2, 3, 1)"
    elif channels == 1 and shape[-1] == 3:
        hint = "; convert RGB to grey with image.mean(axis=-1, keepdims=True)"
    else:
        hint = f"; images are NHWC (channels last), the model was built for {channels}"
    raise ValueError(f"images have {shape[-1]} channels in the last axis, the model expects {channels}" + hint)


def _as_batch(images, channels):
    """(H, W), (H, W, C) or (N, H, W, C) -> ((N, H, W, C) float array, whether it was one image)."""
    x = np.asarray(images)
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"images must be (H, W), (H, W, C) or (N, H, W, C), got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"no images to predict: the array has shape {x.shape}")
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    single = x.ndim < 4
    x = x[None, ..., None] if x.ndim == 2 else x[None] if x.ndim == 3 else x
    _check_channels(x.shape, channels, batch=not single)
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"images must be float in [0, 1] (or uint8), got {x.dtype}")
    check_finite(x, "images")
    return x, single


# ------------------------------------------------------------------------------------------ memory
def available_memory():
    """Bytes of memory available to a new allocation (Linux's MemAvailable), or None where unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


def forward_memory(model, batch, height, width=None):
    """Bytes one forward pass of ``batch`` images (height x width) needs, about: every layer's output
    (kept for backward, twice for a fused activation's cache) plus the largest im2col matrix.

    Layer sizes are scaled from the model's build size by pooling level (an upper bound for valid padding).
    """
    width = height if width is None else width
    item = model.dtype.itemsize
    h0, w0 = model.input_shape[:2]
    kept, largest = 0, 0
    for layer in model.layers:
        shape = layer.output_shape
        ly = int(math.floor(math.log2(h0 / shape[1]) + 1e-9)) if shape[1] else 0
        lx = int(math.floor(math.log2(w0 / shape[2]) + 1e-9)) if shape[2] else 0
        ho, wo = -(-height // 2 ** max(ly, 0)), -(-width // 2 ** max(lx, 0))
        out = batch * ho * wo * shape[-1] * item
        kept += 2 * out
        if "kernel" in layer.params:
            kh, kw, a, b = layer.params["kernel"].shape
            if type(layer).__name__ == "Conv2DTranspose":      # kernel (KH, KW, F, C_in): cols of the input
                cols = batch * -(-ho // 2) * -(-wo // 2) * kh * kw * a * item
            else:                                               # kernel (KH, KW, C_in, F)
                cols = batch * ho * wo * kh * kw * a * item
            largest = max(largest, cols)
    return kept + largest


def tile_plan(model, height, width, tile=None, margin=None):
    """How :func:`predict_tiled` cuts a (height, width) image: a dict with the input tile t, margin m,
    output core, stride, tile counts ny, nx and the covered size. ValueError for a tile that cannot work."""
    step = 2 ** model.depth
    if tile is None:
        t = int(model.input_shape[0])
    elif isinstance(tile, bool) or not isinstance(tile, (int, np.integer)) or tile < 1:
        raise ValueError(f"tile must be a positive integer (pixels), got {tile!r}; leave it out for the "
                         f"model's input size {model.input_shape[0]}")
    else:
        t = int(tile)
    if model.padding == "valid":
        o = valid_output_size(t, model.depth)
        if o is None:
            from .checks import nearest_legal_sizes
            lo, hi = nearest_legal_sizes(t, model.depth, "valid")
            raise ValueError(f"tile {t} is not a legal input size of the valid U-Net; use {lo or hi}")
        m = (t - o) // 2
        stride = o - o % step                    # the pooling grid of every tile lines up
        if stride <= 0:
            bigger = next(s for s in range(t + 1, t + 64 * step) if (valid_output_size(s, model.depth) or 0) > step)
            raise ValueError(f"tile {t} gives only {o} output pixels, too few to step by a multiple of "
                             f"{step}; use a tile of at least {bigger}")
        core = o
    else:
        if t % step:
            raise ValueError(f"tile {t} is not divisible by 2**depth = {step}; use {t // step * step or step}"
                             + (f" or {t // step * step + step}" if t // step else ""))
        if margin is None:
            m = default_margin(model, t)
            if m == 0:
                raise ValueError(f"tile {t} is too small to keep any context: its margin (a quarter of the "
                                 f"tile, in multiples of {step}) is 0, so every tile would be cut at its edges "
                                 f"and the result would depend on the tiling; use a tile of at least {4 * step}")
        else:
            m = int(margin)
        if m < 0 or m % step or 2 * m >= t:
            raise ValueError(f"margin {m} must be a multiple of {step} and less than half the tile {t}")
        core = stride = t - 2 * m
        o = t
    ny, nx = (max(1, math.ceil((s - core) / stride) + 1) for s in (height, width))
    return dict(t=t, m=m, o=o, core=core, stride=stride, ny=ny, nx=nx,
                cover_h=(ny - 1) * stride + core, cover_w=(nx - 1) * stride + core)


def estimate_memory(model, image_shape, tile=None, batch_size=4, margin=None):
    """Bytes that :func:`predict_tiled` needs for one image of ``image_shape`` (H, W[, C]), about:

    {"image": the whole-image buffers (the float image, its mirrored copy, the float64 sums of the
    overlapping tiles and their weights, the result), "batch": one batch of tiles through the network
    (:func:`forward_memory`), "total": their sum}. Nothing is allocated.
    """
    h, w = int(image_shape[0]), int(image_shape[1])
    c = int(image_shape[2]) if len(image_shape) > 2 else 1
    plan = tile_plan(model, h, w, tile, margin)
    t, m, k = plan["t"], plan["m"], model.config["out_channels"]
    item = model.dtype.itemsize
    valid = model.padding == "valid"
    out_h, out_w = (plan["cover_h"], plan["cover_w"]) if valid else (plan["cover_h"] + 2 * m, plan["cover_w"] + 2 * m)
    image = (h * w * c * 4                                        # the image as float32
             + (plan["cover_h"] + 2 * m) * (plan["cover_w"] + 2 * m) * c * 4   # its mirrored copy
             + out_h * out_w * (k + 1) * 8                        # float64 sums and weights
             + h * w * k * (8 + item))                            # the division and the result
    b = min(_check_batch_size(batch_size), plan["ny"] * plan["nx"])
    batch = b * t * t * c * (4 + item) + forward_memory(model, b, t)
    return {"image": image, "batch": batch, "total": image + batch}


def _limit(max_memory):
    if max_memory is None:
        return available_memory()
    if max_memory is False or max_memory == 0:
        return None
    return float(max_memory)


def _refuse(what, need, limit, fix):
    raise NotEnoughMemory(f"{what} needs about {need['total'] / 1e9:.1f} GB ({need['image'] / 1e9:.1f} GB for "
                          f"the whole image, {need['batch'] / 1e9:.1f} GB for one batch through the network), "
                          f"more than the {limit / 1e9:.1f} GB allowed (max_memory, --max-memory on the "
                          f"command line); {fix}")


def check_memory(model, image_shape, tile=None, batch_size=4, margin=None, max_memory=None):
    """Raise :class:`NotEnoughMemory` (a MemoryError) with what to change if a tiled prediction would need more
    than ``max_memory`` bytes (None: the memory available now; 0: no check). Returns the estimate."""
    need = estimate_memory(model, image_shape, tile, batch_size, margin)
    limit = _limit(max_memory)
    if limit is None or need["total"] <= limit:
        return need
    h, w = image_shape[:2]
    t = tile_plan(model, h, w, tile, margin)["t"]
    fix = None
    if need["batch"] > need["image"]:
        for smaller in (t // 2 ** i for i in range(1, 8)):
            try:
                cand = estimate_memory(model, image_shape, smaller, 1, None)
            except ValueError:
                continue
            if cand["total"] <= limit:
                fix = f"use a smaller tile (--tile {smaller}) or fewer tiles per batch (--batch-size 1)"
                break
    if fix is None:
        parts = math.ceil(need["image"] / max(limit - need["batch"], limit / 4))
        fix = (f"cut the image into at least {parts + 1} parts and predict them one by one (a smaller "
               f"--tile does not help: the whole-image buffers alone need {need['image'] / 1e9:.1f} GB)")
    _refuse(f"predicting a {h} x {w} image with tile {t}", need, limit, fix)


# ------------------------------------------------------------------------------------------ predict
def predict(model, images, batch_size=4, max_memory=None):
    """Probabilities for images of a size the model accepts (dropout off).

    images: (N, H, W, C), or one image (H, W) / (H, W, C); uint8 is scaled to [0, 1].
    Returns (N, H', W', K) (or (H', W', K) for one image): H' = H for same padding, H - 184 for the
    valid network of depth 4. K = out_channels. max_memory: refuse (MemoryError) a batch whose forward
    pass would need more bytes than this (None: the memory available now; 0: no check).
    """
    batch_size = _check_batch_size(batch_size)
    x, single = _as_batch(images, model.input_shape[-1])
    limit = _limit(max_memory)
    b = min(batch_size, len(x))
    need = forward_memory(model, b, x.shape[1], x.shape[2])
    if limit is not None and need > limit:
        raise NotEnoughMemory(f"a forward pass of {b} images of {x.shape[1]} x {x.shape[2]} needs about "
                              f"{need / 1e9:.1f} GB, more than the {limit / 1e9:.1f} GB allowed; use a smaller "
                              f"batch_size or predict_tiled(model, image, tile=...)")
    out = [to_numpy(model.forward(to_device_array(x[i:i + batch_size].astype(model.dtype, copy=False), model.device),
                                  training=False))
           for i in range(0, len(x), batch_size)]
    y = np.concatenate(out)
    return y[0] if single else y


def _ramp_window(t, m, blend):
    """Per-pixel weights of a tile along one axis: 1 on the core, a linear ramp (blend) or 0 in the margins."""
    w = np.ones(t, np.float64)
    if m:
        ramp = (np.arange(m) + 0.5) / m if blend else np.zeros(m)
        w[:m], w[t - m:] = ramp, ramp[::-1]
    return w


def default_margin(model, tile):
    """Context kept around each same-padding tile: a quarter of the tile, a multiple of 2**depth."""
    step = 2 ** model.depth
    return (tile // 4) // step * step


def predict_tiled(model, image, tile=None, margin=None, blend=True, batch_size=4, max_memory=None):
    """Overlap-tile prediction of one image of any size: (H, W) or (H, W, C) -> (H, W, K) probabilities.

    tile: input tile size (default: the model's input size). margin (same padding only): context pixels
    on each side of a tile's core, default :func:`default_margin` (a tile too small for any margin is
    refused). blend (same padding): average the overlapping margins with ramp weights instead of cutting
    them off. max_memory: bytes; the prediction is refused (MemoryError, with what to change) before
    anything is allocated if :func:`estimate_memory` says it needs more (None: the memory available now,
    0: no check).
    """
    batch_size = _check_batch_size(batch_size)
    shape = np.shape(image)
    if len(shape) not in (2, 3):
        raise ValueError("predict_tiled takes one image (H, W) or (H, W, C); loop over a batch")
    if len(shape) == 3:
        _check_channels(shape, model.input_shape[-1], batch=False)
    plan = tile_plan(model, shape[0], shape[1], tile, margin)
    check_memory(model, shape, tile, batch_size, margin, max_memory)
    x, single = _as_batch(image, model.input_shape[-1])
    x = x[0]
    h, w = x.shape[:2]
    t, m, o, core, stride = plan["t"], plan["m"], plan["o"], plan["core"], plan["stride"]
    ny, nx, cover_h, cover_w = plan["ny"], plan["nx"], plan["cover_h"], plan["cover_w"]
    window = np.ones(o) if model.padding == "valid" else _ramp_window(t, m, blend)
    # Mirror the image: m pixels of context around it, and enough at the bottom/right for the last tile.
    pad = ((m, m + cover_h - h), (m, m + cover_w - w), (0, 0))
    xp = np.pad(x, pad, mode="reflect" if min(h, w) > 1 else "edge")
    k = model.config["out_channels"]
    valid = model.padding == "valid"
    size_out = (cover_h, cover_w) if valid else (cover_h + 2 * m, cover_w + 2 * m)
    num = np.zeros((*size_out, k), np.float64)
    den = np.zeros(size_out, np.float64)
    origins = [(i * stride, j * stride) for i in range(ny) for j in range(nx)]
    weight = np.outer(window, window)
    for b in range(0, len(origins), batch_size):
        batch = origins[b:b + batch_size]
        tiles = np.stack([xp[y0:y0 + t, x0:x0 + t] for y0, x0 in batch])
        probs = to_numpy(model.forward(to_device_array(tiles.astype(model.dtype, copy=False), model.device),
                                       training=False))
        for (y0, x0), p in zip(batch, probs):
            if valid:                              # exact tiles: later ones overwrite equal values
                num[y0:y0 + o, x0:x0 + o] = p
                den[y0:y0 + o, x0:x0 + o] = 1
            else:
                num[y0:y0 + t, x0:x0 + t] += weight[..., None] * p
                den[y0:y0 + t, x0:x0 + t] += weight
    inside = (slice(0, h), slice(0, w)) if valid else (slice(m, m + h), slice(m, m + w))
    return (num[inside] / den[inside][..., None]).astype(model.dtype)


def load_model(path):
    """A UNet rebuilt from a weights file (``model.save_weights``) or a training checkpoint.

    A ``weights.npz`` that sits beside a ``checkpoint.npz`` of another generation (training was killed
    between writing the two) is refused, naming both files.
    """
    from .model import UNet
    from .serialization import array_to_config, load_npz, read_npz_entry
    shown = repr(os.fspath(path))
    data = load_npz(path)
    if "__config__" not in data:
        raise ValueError(f"{shown} has no model config; build the UNet yourself and call "
                         "model.load_weights(path)")
    config = array_to_config(data["__config__"], shown)
    sibling = os.path.join(os.path.dirname(os.path.abspath(path)), "checkpoint.npz")
    if "__generation__" in data and os.path.basename(os.fspath(path)) != "checkpoint.npz":
        other = read_npz_entry(sibling, "__generation__")
        if other is not None and str(other) != str(data["__generation__"]):
            raise ValueError(f"{shown} does not belong to {sibling!r} beside it (training stopped between "
                             f"writing the two): use {sibling!r} as the weights, or run the same train command "
                             f"again to resume, which rewrites weights.npz")
    try:
        model = UNet(**config)
    except (TypeError, ValueError) as err:
        raise ValueError(f"the model config stored in {shown} cannot build a UNet ({err}); the file was not "
                         "written by this version of unet_scratch or was edited: save the weights again "
                         "with model.save_weights") from err
    weights = {k.removeprefix("param/"): v for k, v in data.items()
               if not k.startswith(("__", "optimizer/"))}
    model.set_weights(weights, source=shown)
    return model
