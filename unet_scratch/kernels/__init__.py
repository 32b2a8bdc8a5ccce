"""Fast backends with the reference ops' signatures: Numba on the CPU, CuPy on the GPU.

    numba_ops   chunked im2col + BLAS for convolutions (Winograd F(2x2, 3x3) for the wide 3x3 ones),
                compiled loops for pooling, ReLU, pixel shuffle (numba_conv.py, numba_winograd.py,
                numba_loops.py hold the pieces)
    cupy_ops    cuBLAS matrix products, CUDA kernels for pooling and ReLU (imports only where a GPU is)
    xp_ops      the array logic written once for NumPy or CuPy (``xp``), used by cupy_ops and tested
                on the CPU

Select one with ``unet_scratch.set_backend("numba")`` or ``set_backend("cupy")``; the layers do not know
which ran. For the GPU, move the model's weights there first with :func:`to_device`.
"""
from __future__ import annotations

from ..backend import to_numpy

DEVICES = ("cpu", "gpu")


def _to_gpu(a):
    import cupy
    return cupy.asarray(a)


def to_device(model, device: str):
    """Move every layer's parameters and gradients to ``device`` ("gpu": CuPy arrays, "cpu": NumPy).

    model: a :class:`unet_scratch.UNet` (anything with ``.layers`` whose items have ``params`` and
    ``grads`` dicts). The layers' forward caches are dropped, since they hold arrays from the old device.
    Returns the model. Select the matching backend too: ``set_backend("cupy")`` for "gpu".
    """
    if device not in DEVICES:
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if device == "gpu":
        try:
            import cupy  # noqa: F401
        except ImportError as err:
            raise RuntimeError("moving a model to the GPU needs CuPy and a CUDA GPU: "
                               "pip install -e '.[gpu]'") from err
    move = _to_gpu if device == "gpu" else to_numpy
    for layer in model.layers:
        for name, value in list(layer.params.items()):
            # ParamDict's checked setter converts with np.asarray, which CuPy arrays refuse on purpose
            layer.params.create(name, move(value))
        for name, value in list(layer.grads.items()):
            layer.grads[name] = move(value)
        layer.clear_cache()
    return model
