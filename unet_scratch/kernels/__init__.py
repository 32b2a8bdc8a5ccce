"""Fast backends with the reference ops' signatures: Numba on the CPU, CuPy on the GPU.

    numba_ops   direct convolutions with register tiles for small filter banks (numba_direct.py,
                numba_upconv.py, numba_narrow.py, numba_simd.py), chunked im2col + BLAS for the wide
                ones (Winograd F(2x2, 3x3) for 3x3), compiled loops for pooling, ReLU, concatenation,
                rows split across cores (numba_conv.py, numba_winograd.py, numba_loops.py,
                numba_threads.py hold the pieces)
    cupy_ops    xp_ops on CuPy arrays (cuBLAS matrix products) plus two CUDA kernels, pooling and ReLU
                (imports only where a GPU is)
    xp_ops      the array logic written once for NumPy or CuPy, each function finding its array module
                from its inputs (``get_array_module``); tested on NumPy and on a strict CuPy stand-in
    xp_losses   fit's losses from logits, written the same way, so the GPU computes the loss too

Select one with ``unet_scratch.set_backend("numba")`` or ``set_backend("cupy")``; the layers do not know
which ran. For the GPU, move the model there first: ``model.to("gpu")`` (or :func:`to_device`).
"""
from __future__ import annotations

DEVICES = ("cpu", "gpu")


def to_device(model, device: str):
    """Move every layer's parameters and gradients to ``device`` ("gpu": CuPy arrays, "cpu": NumPy);
    the same as ``model.to(device)``. Returns the model."""
    if device not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    return model.to(device)
