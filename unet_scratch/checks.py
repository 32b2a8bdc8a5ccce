"""Input checks that fail early with a message that names the problem and the fix.

A NumPy traceback from deep inside an im2col is no help to a student; these checks run at the model's
and the layers' front doors instead.

Each rule is written once, here, and called by everything that needs it: the argument rules of the ops
(padding, pairs such as strides, float arrays, conv and pool arguments, the dropout rate, the shape of dy)
serve the NumPy reference (``unet_scratch.ops``), the Numba and CuPy kernels (``unet_scratch.kernels``),
the layers and the model alike. They depend on NumPy only and test arrays by ``dtype``, ``ndim`` and
``shape``, so CuPy arrays pass through the same checks. (Rules that need an op's own geometry live
beside that op as public functions: ``ops.conv_transpose.transpose_output_shape``,
``ops.concat.check_concat_args``.)
"""
from __future__ import annotations

import numpy as np

PADDINGS = ("same", "valid")


def check_image_batch(x, channels: int | None = None, name: str = "x", finite: bool = True):
    """Validate an NHWC batch of images and return it unchanged.

    x: (N, H, W, C) floating-point array. Raises TypeError for non-arrays, integer or bool data;
    ValueError for the wrong number of dimensions, the wrong channel count, NaN or Inf (finite=False
    skips the NaN/Inf scan, which on a GPU array would wait for the device).
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
    if finite:
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


# ----------------------------------------------------------------------------- op and layer arguments


def normalize_padding(padding) -> str:
    """'same' or 'valid' (any case) -> the lower-case string; anything else is a ValueError."""
    if not isinstance(padding, str) or padding.lower() not in PADDINGS:
        raise ValueError(f"padding must be 'same' or 'valid', got {padding!r}: 'same' pads so that the output "
                         f"keeps ceil(H / stride) rows (the article's U-Net), 'valid' uses no padding and "
                         f"shrinks the image (the paper's U-Net)")
    return padding.lower()


def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def normalize_pair(value, name: str = "strides") -> tuple[int, int]:
    """An int or a pair of ints -> (rows, cols), both positive: 2 -> (2, 2), (2, 3) -> (2, 3).

    name is the argument's name for the message ("strides", "kernel_size", "pool_size"). Anything else
    (0, a bool, a float such as 2.0, a triple) is a ValueError.
    """
    pair = (value, value) if _is_int(value) else value
    try:
        pair = tuple(pair)
    except TypeError:                                   # not iterable: a float, None, ...
        pair = ()
    if len(pair) != 2 or not all(_is_int(v) for v in pair):
        raise ValueError(f"{name} must be a positive int or a pair of positive ints like (2, 2), got {value!r}")
    if min(pair) < 1:
        hint = "; use 1 for no striding" if name == "strides" else ""
        raise ValueError(f"{name} must be a positive int or a pair of positive ints, got {value!r}{hint}")
    return int(pair[0]), int(pair[1])


def check_float_array(a, ndim: int, layout: str, name: str) -> None:
    """Raise TypeError unless ``a`` is a floating-point array (NumPy, or CuPy for the GPU backend) and
    ValueError unless it has ``ndim`` dimensions. layout names the axes for the message: "(N, H, W, C)"."""
    if not all(hasattr(a, attr) for attr in ("dtype", "ndim", "shape")):
        raise TypeError(f"{name} must be a NumPy array {layout} (or a CuPy array on the GPU), got "
                        f"{type(a).__name__}; use np.asarray({name}, dtype=np.float32)")
    if not np.issubdtype(a.dtype, np.floating):
        raise TypeError(f"{name} has dtype {a.dtype}; these ops need floating-point arrays, "
                        f"use {name}.astype(np.float32)")
    if a.ndim != ndim:
        raise ValueError(f"{name} must be {ndim}-D {layout}, got shape {tuple(a.shape)}")


def _check_bias(b, n: int, what: str) -> None:
    if b is not None:
        check_float_array(b, 1, "(F,)", "b")
        if b.shape[0] != n:
            raise ValueError(f"bias b has shape {tuple(b.shape)} but the kernel has {n} {what}; "
                             f"b must be ({n},)")


def check_conv_args(x, w, b) -> None:
    """A Conv2D's arguments: x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None."""
    check_float_array(x, 4, "(N, H, W, C)", "x")
    check_float_array(w, 4, "(KH, KW, C, F)", "w")
    if x.shape[3] != w.shape[2]:
        raise ValueError(f"x has {x.shape[3]} channels but the kernel w {tuple(w.shape)} expects {w.shape[2]} "
                         f"(w is (KH, KW, C_in, F)); check the kernel layout or the previous layer")
    _check_bias(b, w.shape[3], "filters")


def check_transpose_args(x, w, b) -> None:
    """A Conv2DTranspose's arguments: x: (N, H, W, C_in), w: (KH, KW, F, C_in), b: (F,) or None."""
    check_float_array(x, 4, "(N, H, W, C_in)", "x")
    check_float_array(w, 4, "(KH, KW, F, C_in)", "w")
    if x.shape[3] != w.shape[3]:
        raise ValueError(f"x has {x.shape[3]} channels but the transposed-conv kernel w {tuple(w.shape)} expects "
                         f"{w.shape[3]}: Keras's Conv2DTranspose kernel is (KH, KW, F_out, C_in), input "
                         f"channels LAST; a Conv2D-style (KH, KW, C_in, F) kernel needs w.transpose(0, 1, 3, 2)")
    _check_bias(b, w.shape[2], "output channels")


def pool_args(x, pool_size, strides, padding):
    """Check a MaxPooling2D call. x: (N, H, W, C); pool_size: int or pair; strides: int, pair or None
    (= pool_size); padding: 'valid' or 'same'. Returns ((PH, PW), (SH, SW), padding)."""
    check_float_array(x, 4, "(N, H, W, C)", "x")
    pool_size = normalize_pair(pool_size, "pool_size")
    strides = pool_size if strides is None else normalize_pair(strides)
    padding = normalize_padding(padding)
    for axis, n, p in (("height", x.shape[1], pool_size[0]), ("width", x.shape[2], pool_size[1])):
        if padding == "valid" and n < p:
            raise ValueError(f"input {axis} {n} is smaller than the pool size {p} with 'valid' padding; "
                             f"use padding='same' or a smaller pool")
    return pool_size, strides, padding


def check_dropout_rate(rate) -> float:
    """The dropout rate as a float in [0, 1); anything else is a ValueError."""
    try:
        value = float(rate)
    except (TypeError, ValueError):
        value = float("nan")
    if not 0.0 <= value < 1.0:                          # NaN fails too
        shown = repr(rate) if isinstance(rate, str) else rate
        raise ValueError(f"dropout rate must be in [0, 1), got {shown} (it is the fraction of units "
                         f"dropped: 0.5 drops half; 1 would drop everything)")
    return value


def check_dy_shape(dy, expected, what: str = "") -> None:
    """Raise ValueError unless dy has the shape ``expected`` of the forward output it is the gradient of.

    what: optional words after the expected shape, e.g. "the pooled shape"."""
    if tuple(dy.shape) != tuple(expected):
        about = f" ({what})" if what else ""
        raise ValueError(f"dy has shape {tuple(dy.shape)}, expected {tuple(expected)}{about}: dy is the "
                         f"gradient of this op's output y and must have y's shape")
