"""2-D transposed convolution (Keras 3 ``Conv2DTranspose``), forward and backward, in NumPy.

Shapes: x: (N, H, W, C_in), kernel w: (KH, KW, F, C_in) (Keras stores OUTPUT channels before input
channels for this layer), b: (F,), y: (N, OH, OW, F).

Two views of the same operation.

1. The transpose of a convolution. Take a conv2d whose INPUT has the shape of our output (N, OH, OW, F),
   whose kernel is w read as (KH, KW, F, C_in) (mapping F channels to C_in) and whose output has the
   shape of our x. The transposed convolution is that conv's input gradient with x in the place of dy:

       y = conv2d_input_gradient(x, w, (N, OH, OW, F), strides, padding) + b

   This is literally how TensorFlow implements it (``tf.nn.conv_transpose`` calls
   ``conv2d_backprop_input``), and it fixes every detail: the padding rule, the crops, the output size.
   Its backward pass then needs nothing new: dx is the FORWARD conv2d of dy with the same kernel, and dw is
   that conv's weight gradient with the roles of input and upstream gradient swapped.

2. A scatter-add of the unflipped kernel. Each input pixel x[n, i, j, :] stamps the kernel, scaled by its
   channel values, onto a "full" canvas at (i*sh, j*sw):

       full[n, i*sh + a, j*sw + q, f] += sum_c x[n, i, j, c] * w[a, q, f, c]

   The full canvas has (H - 1)*sh + KH rows. Keras then keeps OH rows starting at `before`:
       valid: OH = H*sh + max(KH - sh, 0) = (H - 1)*sh + max(KH, sh), before = 0
              (when sh > KH the last sh - KH rows are zeros no kernel stamp reaches);
       same:  OH = H*sh, before = max(KH - sh, 0) // 2 (TensorFlow's SAME split, extra pixel at the end).
   Examples for s = 2: k = 2 needs no crop; k = 3 keeps full[0:2H]; k = 4 keeps full[1:2H+1].
   (PyTorch's ConvTranspose2d(k=3, s=2, padding=1, output_padding=1) keeps full[1:2H+1] instead: its
   output is shifted one pixel against Keras's.)
"""
from __future__ import annotations

import numpy as np

from unet_scratch.checks import check_dy_shape, check_transpose_args, normalize_pair, normalize_padding
from unet_scratch.ops.conv import conv2d, conv2d_input_gradient, conv2d_weight_gradient


def conv_transpose_output_size(i: int, k: int, s: int, padding: str) -> int:
    """Output length along one axis (Keras 3, output_padding=None): valid i*s + max(k - s, 0), same i*s."""
    if normalize_padding(padding) == "same":
        return i * s
    return i * s + max(k - s, 0)


def transpose_output_shape(x_shape, w_shape, strides, padding):
    """(N, OH, OW, F) of a transposed conv of x: (N, H, W, C_in) with w: (KH, KW, F, C_in).

    strides: (sh, sw); padding: 'same' or 'valid'. Each size from :func:`conv_transpose_output_size`.
    """
    n, h, wd, _ = x_shape
    kh, kw, f, _ = w_shape
    return (n, conv_transpose_output_size(h, kh, strides[0], padding),
            conv_transpose_output_size(wd, kw, strides[1], padding), f)


def conv2d_transpose(x, w, b=None, strides=(1, 1), padding="valid"):
    """Keras-style Conv2DTranspose forward.

    x: (N, H, W, C_in), w: (KH, KW, F, C_in), b: (F,) or None, strides: int or (sh, sw),
    padding: 'same' or 'valid'. Returns (y, cache), y: (N, OH, OW, F) with OH from
    :func:`conv_transpose_output_size`.
    """
    check_transpose_args(x, w, b)
    strides, padding = normalize_pair(strides), normalize_padding(padding)
    y_shape = transpose_output_shape(x.shape, w.shape, strides, padding)
    y = conv2d_input_gradient(x, w, y_shape, strides, padding)
    if b is not None:
        y += b
    cache = {"x": x, "w": w, "has_bias": b is not None, "strides": strides, "padding": padding}
    return y, cache


def conv2d_transpose_backward(dy, cache):
    """Backward of :func:`conv2d_transpose`.

    dy: (N, OH, OW, F). Returns (dx, dw, db): (N, H, W, C_in), (KH, KW, F, C_in), (F,) or None.
    dx = conv2d(dy, w): the forward convolution undoes the transpose's shape exactly.
    dw = conv2d_weight_gradient(x, dy): the conv's weight gradient with dy as the input and x as the
    upstream gradient.
    """
    x, w, strides, padding = cache["x"], cache["w"], cache["strides"], cache["padding"]
    check_dy_shape(dy, transpose_output_shape(x.shape, w.shape, strides, padding))
    dx, _ = conv2d(dy, w, None, strides, padding)
    dw = conv2d_weight_gradient(x, dy, w.shape[:2], strides, padding)
    db = dy.sum(axis=(0, 1, 2)) if cache["has_bias"] else None
    return dx, dw, db


def keras_crop_start(k: int, s: int, padding: str) -> int:
    """Where Keras's output starts inside the full scatter canvas, from Keras's own padding formula.

    Keras (``_convert_conv_transpose_padding_args_from_keras_to_jax``) pads the dilated input by
    left = k - 1 (valid) or min(pad//2 + pad%2, k - 1) with pad = s + k - 2 (same); a full correlation
    would pad k - 1, so the output starts k - 1 - left pixels into the full canvas.
    """
    if normalize_padding(padding) == "valid":
        return 0
    pad = s + k - 2
    return k - 1 - min(pad // 2 + pad % 2, k - 1)


def conv2d_transpose_naive(x, w, b=None, strides=(1, 1), padding="valid"):
    """Conv2DTranspose with explicit loops: scatter-add the kernel into the full canvas, then crop.

    x: (N, H, W, C_in), w: (KH, KW, F, C_in), b: (F,) or None. Returns y: (N, OH, OW, F).
    """
    check_transpose_args(x, w, b)
    (sh, sw), padding = normalize_pair(strides), normalize_padding(padding)
    n, h, wd, _ = x.shape
    kh, kw, f, _ = w.shape
    _, oh, ow, _ = transpose_output_shape(x.shape, w.shape, (sh, sw), padding)
    top, left = keras_crop_start(kh, sh, padding), keras_crop_start(kw, sw, padding)
    # the full canvas, made long enough to hold the crop when s > k leaves zero rows at the end
    full_h, full_w = max((h - 1) * sh + kh, top + oh), max((wd - 1) * sw + kw, left + ow)
    full = np.zeros((n, full_h, full_w, f), dtype=np.result_type(x, w))
    for b_i in range(n):
        for i in range(h):
            for j in range(wd):
                for a in range(kh):
                    for q in range(kw):
                        full[b_i, i * sh + a, j * sw + q, :] += w[a, q] @ x[b_i, i, j]    # (F, C_in) @ (C_in,)
    y = full[:, top:top + oh, left:left + ow, :].copy()
    if b is not None:
        y += b
    return y
