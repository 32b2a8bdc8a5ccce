"""Chapter 03's exercises: transposed-convolution output sizes, the scatter-add, and kernel overlap counts."""
from __future__ import annotations

import numpy as np

from ..ops.conv_transpose import conv2d_transpose, conv_transpose_output_size
from .base import check_arrays as _check_arrays
from .base import check_cases as _check_cases


def check_conv_transpose_output_size(fn):
    """fn(i, k, s, padding) -> output length along one axis of a Keras 3 Conv2DTranspose
    (output_padding=None), padding 'same' or 'valid'."""
    args = [(4, 2, 2, "valid"), (4, 2, 2, "same"), (4, 3, 2, "valid"), (4, 3, 2, "same"), (5, 4, 2, "valid"),
            (16, 2, 2, "valid"), (3, 3, 1, "valid"), (3, 3, 1, "same"), (4, 1, 3, "valid"), (6, 5, 3, "valid")]
    return _check_cases(fn, [(a, conv_transpose_output_size(*a)) for a in args], "conv_transpose_output_size")


def check_scatter_add(fn):
    """fn(x, w, s) -> full: every input pixel x[n, i, j, :] stamps the kernel onto the canvas at (i*s, j*s):
    full[n, i*s + a, j*s + q, f] += sum_c x[n, i, j, c] * w[a, q, f, c].
    x: (N, H, W, C_in), w: (KH, KW, F, C_in) (Keras's Conv2DTranspose layout), full:
    (N, (H - 1)*s + KH, (W - 1)*s + KW, F)."""
    rng = np.random.default_rng(5)
    cases = []
    for x_shape, w_shape, s in [((1, 3, 3, 1), (2, 2, 1, 1), 2), ((1, 3, 3, 1), (3, 3, 1, 1), 2),
                                ((2, 4, 3, 3), (3, 3, 2, 3), 1), ((1, 3, 4, 2), (4, 4, 3, 2), 2),
                                ((1, 2, 3, 2), (3, 3, 2, 2), 3), ((1, 3, 2, 1), (2, 3, 1, 1), 2)]:
        x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
        expected = conv2d_transpose(x, w, strides=s, padding="valid")[0]      # k >= s: no crop, no padding
        cases.append(((x, w, s), expected, f"x {x_shape}, w {w_shape}, stride {s}"))
    return _check_arrays(fn, cases, "scatter_add", rtol=1e-7, atol=1e-9)


def _overlap_counts(n, k, s):
    counts = np.zeros((n - 1) * s + k, dtype=int)
    for i in range(n):
        counts[i * s:i * s + k] += 1
    return counts


def check_overlap_counts(fn):
    """fn(n, k, s) -> 1-D int array of length (n - 1)*s + k: how many kernel stamps of a 1-D transposed
    convolution of an n-pixel input (kernel length k, stride s) cover each output pixel."""
    cases = [((n, k, s), _overlap_counts(n, k, s), f"n={n}, k={k}, s={s}")
             for n, k, s in [(4, 2, 2), (4, 3, 2), (5, 4, 2), (3, 3, 1), (3, 2, 3), (1, 3, 2)]]
    return _check_arrays(fn, cases, "overlap_counts", rtol=0, atol=0)
