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

import numpy as np

from .backend import to_backend, to_numpy
from .checks import check_finite, valid_output_size


def _as_batch(images, channels):
    """(H, W), (H, W, C) or (N, H, W, C) -> ((N, H, W, C) float array, whether it was one image)."""
    x = np.asarray(images)
    if x.dtype == np.uint8:
        x = x.astype(np.float32) / 255
    if x.ndim not in (2, 3, 4):
        raise ValueError(f"images must be (H, W), (H, W, C) or (N, H, W, C), got shape {x.shape}")
    single = x.ndim < 4
    x = x[None, ..., None] if x.ndim == 2 else x[None] if x.ndim == 3 else x
    if x.shape[-1] != channels:
        raise ValueError(f"images have {x.shape[-1]} channels in the last axis, the model expects {channels}"
                         + ("; convert RGB to grey with image.mean(axis=-1, keepdims=True)"
                            if channels == 1 else ""))
    if not np.issubdtype(x.dtype, np.floating):
        raise TypeError(f"images must be float in [0, 1] (or uint8), got {x.dtype}")
    check_finite(x, "images")
    return x, single


def predict(model, images, batch_size=4):
    """Probabilities for images of a size the model accepts (dropout off).

    images: (N, H, W, C), or one image (H, W) / (H, W, C); uint8 is scaled to [0, 1].
    Returns (N, H', W', K) (or (H', W', K) for one image): H' = H for same padding, H - 184 for the
    valid network of depth 4. K = out_channels.
    """
    x, single = _as_batch(images, model.input_shape[-1])
    out = [to_numpy(model.forward(to_backend(x[i:i + batch_size].astype(model.dtype, copy=False)), training=False))
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


def predict_tiled(model, image, tile=None, margin=None, blend=True, batch_size=4):
    """Overlap-tile prediction of one image of any size: (H, W) or (H, W, C) -> (H, W, K) probabilities.

    tile: input tile size (default: the model's input size). margin (same padding only): context pixels
    on each side of a tile's core, default :func:`default_margin`. blend (same padding): average the
    overlapping margins with ramp weights instead of cutting them off.
    """
    x, single = _as_batch(image, model.input_shape[-1])
    if not single or x.shape[0] != 1:
        raise ValueError("predict_tiled takes one image (H, W) or (H, W, C); loop over a batch")
    x = x[0]
    h, w = x.shape[:2]
    t = int(tile or model.input_shape[0])
    step = 2 ** model.depth
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
        core, window = o, np.ones(o)
    else:
        if t % step:
            raise ValueError(f"tile {t} is not divisible by 2**depth = {step}; use {t // step * step or step}")
        m = default_margin(model, t) if margin is None else int(margin)
        if m % step or 2 * m >= t:
            raise ValueError(f"margin {m} must be a multiple of {step} and less than half the tile {t}")
        core = stride = t - 2 * m
        window = _ramp_window(t, m, blend)
    ny, nx = (max(1, math.ceil((s - core) / stride) + 1) for s in (h, w))
    cover_h, cover_w = (ny - 1) * stride + core, (nx - 1) * stride + core
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
        probs = to_numpy(model.forward(to_backend(tiles.astype(model.dtype, copy=False)), training=False))
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
    """A UNet rebuilt from a weights file (``model.save_weights``) or a training checkpoint."""
    from .model import UNet
    from .serialization import array_to_config, load_npz
    data = load_npz(path)
    if "__config__" not in data:
        raise ValueError(f"{str(path)!r} has no model config; build the UNet yourself and call "
                         "model.load_weights(path)")
    config = array_to_config(data["__config__"])
    model = UNet(**config)
    weights = {k.removeprefix("param/"): v for k, v in data.items()
               if not k.startswith(("__", "optimizer/"))}
    model.set_weights(weights, source=f"{str(path)!r}")
    return model
