"""The one piece of global state: which backend runs the ops.

    numpy  the readable reference in ``unet_scratch.ops`` (always available)
    numba  CPU kernels in ``unet_scratch.kernels.numba_ops`` (needs the ``numba`` extra)
    cupy   GPU kernels in ``unet_scratch.kernels.cupy_ops`` (needs the ``gpu-cuda12`` or ``gpu-cuda13``
           extra and a CUDA GPU; selected only after one tiny kernel compiled and ran)

Every backend exposes the same functions with the same signatures (``conv2d(x, w, b, strides, padding)
-> (y, cache)`` ...). Layers ask :func:`ops` for the current namespace at forward time and keep it for the
matching backward, so a layer never knows which kernel ran.

    >>> import unet_scratch as us
    >>> us.set_backend("numba")
    >>> with us.use_backend("numpy"):
    ...     y = model.forward(x)

Devices. The backend picks the ops; the arrays say where they live. A model's weights are moved with
``model.to("gpu")`` (CuPy arrays) or ``model.to("cpu")``, and the shared array code finds its array module
from its inputs (``get_array_module(x)``, the pattern of DeZero's ``cuda.get_array_module``), so no op
needs to be told which device it runs on. ``device_of(a)`` names an array's device, ``backend_device()``
the device the current backend computes on, ``to_device_array(a, device)`` copies an array there.

Replacing single ops. ``use_ops(conv2d=f, conv2d_backward=g)`` runs a block with some of the current
backend's functions replaced (how ``unet_scratch.capstone.use_student_ops`` plugs a student's own ops into
the real ``UNet``). The replacements are part of the backend choice, restored on exit like ``use_backend``'s.
"""
from __future__ import annotations

import contextlib
import importlib
import sys
from types import MappingProxyType

import numpy

BACKENDS = ("numpy", "numba", "cupy")
_MODULES = {
    "numpy": "unet_scratch.ops",
    "numba": "unet_scratch.kernels.numba_ops",
    "cupy": "unet_scratch.kernels.cupy_ops",
}
_INSTALL_HINT = {
    "numba": "pip install -e '.[numba]'",
    "cupy": "pip install -e '.[gpu-cuda12]' (CUDA 12 driver) or -e '.[gpu-cuda13]' (CUDA 13) on a machine "
            "with an NVIDIA GPU",
}
_current = "numpy"
_replaced: dict = {}        # op name -> function, set only inside ``use_ops`` (empty: the backend's own ops)


def _load(name: str):
    if name not in BACKENDS:
        raise ValueError(f"unknown backend {name!r}; choose one of {', '.join(BACKENDS)}")
    try:
        module = importlib.import_module(_MODULES[name])
    except ImportError as err:  # numba or cupy missing, or no GPU
        hint = "" if "pip install" in str(err) else f"; install it with: {_INSTALL_HINT.get(name, '')}"
        raise RuntimeError(f"backend {name!r} is not available here ({err}){hint}") from err
    if name == "cupy":
        problem = module.self_test()          # compiles and runs one tiny kernel, once per process
        if problem:
            raise RuntimeError(f"backend 'cupy' is not available here: {problem}")
    return module


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
    """The namespace of op functions for the current backend (with ``use_ops``'s replacements, if any)."""
    module = _load(_current)
    return ReplacedOps(module, _replaced) if _replaced else module


class ReplacedOps:
    """A backend's op namespace with some functions replaced: ``ops.conv2d`` is the replacement when there
    is one, else the backend's own. A snapshot: a layer that kept it at forward time runs the matching
    backward with it even after the ``use_ops`` block has ended."""

    def __init__(self, backend_module, replacements):
        self.backend_module = backend_module
        self.replacements = MappingProxyType(dict(replacements))

    def __getattr__(self, name):
        if name in ("backend_module", "replacements"):      # not set yet (copy, pickle): no recursion
            raise AttributeError(name)
        if name in self.replacements:
            return self.replacements[name]
        return getattr(self.backend_module, name)

    def __repr__(self):
        return (f"ReplacedOps({self.backend_module.__name__}, replaced: "
                f"{', '.join(sorted(self.replacements))})")


def op_names() -> list[str]:
    """The names ``use_ops`` accepts: every op of the NumPy reference that has a backward beside it, and
    that backward (``concatenate``, ``concatenate_backward``, ``conv2d``, ``conv2d_backward``, ...)."""
    reference = _load("numpy")
    forwards = [n for n in dir(reference) if not n.startswith("_") and callable(getattr(reference, n))
                and callable(getattr(reference, n + "_backward", None))]
    return sorted(forwards + [n + "_backward" for n in forwards])


@contextlib.contextmanager
def use_ops(**functions):
    """Context manager: run the block with some ops replaced, on top of the current backend.

    functions: op name -> a function with that op's signature (``conv2d(x, w, b, strides, padding) ->
    (y, cache)``, ``conv2d_backward(dy, cache) -> (dx, dw, db)``, ...). A forward and its backward are given
    together, since the backward reads the cache its forward made. Blocks nest (an inner block's
    replacements win); the previous replacements come back on exit, also after an exception.
    """
    known = op_names()
    unknown = sorted(set(functions) - set(known))
    if unknown:
        raise ValueError(f"unknown op name{'s' * (len(unknown) > 1)} {', '.join(map(repr, unknown))}; "
                         f"the ops that can be replaced are: {', '.join(known)}")
    for name, f in functions.items():
        if not callable(f):
            raise TypeError(f"{name} must be a function, got {type(f).__name__}")
    for name in functions:
        forward = name.removesuffix("_backward")
        for needed in (forward, forward + "_backward"):
            if needed not in functions:
                raise ValueError(f"{name} is given without {needed}: a backward reads the cache its own "
                                 f"forward returned, so replace both {forward} and {forward}_backward (or "
                                 f"neither)")
    global _replaced
    previous = _replaced
    _replaced = {**previous, **functions}
    try:
        yield
    finally:
        _replaced = previous


def available_backends() -> list[str]:
    """The backends that work on this machine: cupy only where a GPU answers and a kernel compiled and ran
    (``set_backend("cupy")``'s error says what is missing elsewhere)."""
    names = []
    for name in BACKENDS:
        try:
            _load(name)
        except RuntimeError:
            continue
        names.append(name)
    return names


def get_array_module(*arrays):
    """``cupy`` if any argument is a CuPy array, else ``numpy``: how the shared array code finds its module.

    No CuPy array can exist before ``cupy`` is imported, so this never imports CuPy itself."""
    cupy = sys.modules.get("cupy")
    if cupy is not None:
        return cupy.get_array_module(*arrays)
    return numpy


def is_device_array(a) -> bool:
    """True for a CuPy (GPU) array."""
    return get_array_module(a) is not numpy


def device_of(a) -> str:
    """"gpu" for a CuPy array, "cpu" for anything else."""
    return "gpu" if is_device_array(a) else "cpu"


def backend_device(name: str | None = None) -> str:
    """The device a backend computes on: "gpu" for cupy, "cpu" for numpy and numba (default: the current)."""
    return "gpu" if (name or _current) == "cupy" else "cpu"


def to_device_array(a, device: str):
    """``a`` on ``device`` ("cpu": a NumPy array, "gpu": a CuPy array); no copy when it is there already."""
    if device == "cpu":
        return to_numpy(a)
    if device != "gpu":
        raise ValueError(f"device must be 'cpu' or 'gpu', got {device!r}")
    if is_device_array(a):
        return a
    import cupy
    return cupy.asarray(a)


def array_module():
    """``numpy``, or ``cupy`` when the cupy backend is selected."""
    if _current == "cupy":
        import cupy
        return cupy
    return numpy


def to_backend(a):
    """A NumPy array moved to the current backend's device (a CuPy array for "cupy"; else unchanged)."""
    return to_device_array(a, "gpu") if _current == "cupy" else a


def to_numpy(a):
    """Any backend's array as a NumPy array (copied from the GPU for CuPy)."""
    if isinstance(a, numpy.ndarray):
        return a
    if is_device_array(a):
        return a.get()
    return numpy.asarray(a)
