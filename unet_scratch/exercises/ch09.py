"""Chapter 09's exercises: counting a convolution's FLOPs and bytes, and a fused Numba kernel."""
from __future__ import annotations

import numpy as np

from .base import call_student
from .base import check_arrays as _check_arrays
from .base import check_cases as _check

# (H, W, C, F, K): layers of the seed U-Net (256 x 256 input, 64 filters at the top)
_LAYERS = [(256, 256, 1, 64, 3), (256, 256, 64, 64, 3), (16, 16, 1024, 1024, 3), (256, 256, 64, 1, 1),
           (32, 32, 1024, 512, 3), (5, 7, 3, 2, 3)]


def _flops(h, w, c, f, k):
    return 2 * h * w * k * k * c * f


def check_conv_flops(fn):
    """fn(h, w, c, f, k) -> FLOPs (2 x multiply-adds) of one stride-1 'same' k x k conv, batch 1, as an int.

    The bias adds are not counted (as in ``unet_scratch.bench.forward_gflop``).
    """
    return _check(fn, [(args, _flops(*args)) for args in _LAYERS], "conv_flops")


def check_arithmetic_intensity(fn):
    """fn(h, w, c, f, k, itemsize) -> FLOPs per byte: conv FLOPs / bytes of x, the kernel and y.

    Bytes = itemsize * (H*W*C + K*K*C*F + H*W*F): each array read or written once (the ideal).
    """
    cases = []
    for h, w, c, f, k in _LAYERS:
        for itemsize in (4, 8):
            moved = itemsize * (h * w * c + k * k * c * f + h * w * f)
            cases.append(((h, w, c, f, k, itemsize), np.float64(_flops(h, w, c, f, k) / moved),
                          f"H={h} W={w} C={c} F={f} K={k}, {itemsize}-byte floats"))
    return _check_arrays(fn, cases, "arithmetic_intensity", rtol=1e-9, atol=0)


def check_bias_relu_rows(fn):
    """fn(y, b) overwrites y: (M, F) with max(y + b, 0), b: (F,), in place (like ``add_bias_rows``)."""
    rng = np.random.default_rng(9)
    for (m, f), dtype in [((7, 3), np.float32), ((64, 16), np.float32), ((5, 1), np.float64)]:
        y = rng.standard_normal((m, f)).astype(dtype)
        b = rng.standard_normal(f).astype(dtype)
        expected = np.maximum(y + b, 0)
        out = y.copy()
        call_student(fn, (out, b), "bias_relu_rows")
        label = f"y of shape {(m, f)}, {np.dtype(dtype).name}"
        if np.array_equal(out, y):
            raise AssertionError(f"bias_relu_rows ({label}): y is unchanged; the kernel must write its "
                                 f"result into y, in place (return values are ignored)")
        if not np.allclose(out, expected, rtol=1e-6, atol=1e-6):
            diff = np.abs(out - expected)
            r, k = np.unravel_index(int(np.argmax(diff)), diff.shape)
            raise AssertionError(f"bias_relu_rows ({label}): y[{r}, {k}] is {out[r, k]:.4g}, expected "
                                 f"max(y + b, 0) = {expected[r, k]:.4g} (y was {y[r, k]:.4g}, b {b[k]:.4g})")
    print("correct: bias_relu_rows passes 3 cases")
    return True
