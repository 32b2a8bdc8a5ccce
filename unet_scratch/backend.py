"""The one piece of global state: which backend runs the ops.

    numpy  the readable reference in ``unet_scratch.ops`` (always available)
    numba  CPU kernels in ``unet_scratch.kernels.numba_ops`` (needs the ``numba`` extra)
    cupy   GPU kernels in ``unet_scratch.kernels.cupy_ops`` (needs the ``gpu`` extra and a CUDA GPU)

Every backend exposes the same functions with the same signatures (``conv2d(x, w, b, strides, padding)
-> (y, cache)`` ...). Layers ask :func:`ops` for the current namespace at forward time and keep it for the
matching backward, so a layer never knows which kernel ran.

    >>> import unet_scratch as us
    >>> us.set_backend("numba")
    >>> with us.use_backend("numpy"):
    ...     y = model.forward(x)
"""
from __future__ import annotations

import contextlib
import importlib

BACKENDS = ("numpy", "numba", "cupy")
_MODULES = {
    "numpy": "unet_scratch.ops",
    "numba": "unet_scratch.kernels.numba_ops",
    "cupy": "unet_scratch.kernels.cupy_ops",
}
_INSTALL_HINT = {
    "numba": "pip install -e '.[numba]'",
    "cupy": "pip install -e '.[gpu]' on a machine with an NVIDIA GPU and CUDA 12",
}
_current = "numpy"


def _load(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    try:
        return importlib.import_module(_MODULES[name])
    except ImportError as err:  # numba or cupy missing, or no GPU
        raise RuntimeError(f"backend {name!r} is not available here ({err}); "
                           f"install it with: {_INSTALL_HINT.get(name, '')}") from err


def set_backend(name: str) -> None:
    """Select the backend for all later forward passes: "numpy", "numba" or "cupy"."""
    global _current
    _load(name)
    _current = name


def get_backend() -> str:
    """The name of the current backend."""
    return _current


@contextlib.contextmanager
def use_backend(name: str):
    """Context manager: run the block with another backend, then restore the previous one."""
    previous = _current
    set_backend(name)
    try:
        yield
    finally:
        set_backend(previous)


def ops():
    """The namespace of op functions for the current backend."""
    return _load(_current)


def available_backends() -> list[str]:
    """The backends that import on this machine (cupy only where a GPU answers)."""
    names = []
    for name in BACKENDS:
        try:
            _load(name)
        except RuntimeError:
            continue
        names.append(name)
    return names


def array_module():
    """``numpy``, or ``cupy`` when the cupy backend is selected."""
    if _current == "cupy":
        import cupy
        return cupy
    import numpy
    return numpy


def to_backend(a):
    """A NumPy array moved to the current backend's device (a CuPy array for "cupy"; else unchanged)."""
    xp = array_module()
    return a if xp.__name__ == "numpy" else xp.asarray(a)


def to_numpy(a):
    """Any backend's array as a NumPy array (copied from the GPU for CuPy)."""
    import numpy
    return a.get() if hasattr(a, "get") and not isinstance(a, numpy.ndarray) else numpy.asarray(a)
