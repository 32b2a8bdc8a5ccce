"""A strict stand-in for CuPy, so that the GPU path runs on a machine without a GPU, in CI, on every run.

Install it as ``cupy`` for a test (``tests/test_gpu_path.py`` has the fixture)::

    monkeypatch.setitem(sys.modules, "cupy", strict_cupy)

What it copies from CuPy, on purpose strictly:
  * ``ndarray`` holds its values on a pretend device (a NumPy array that nobody else sees). NumPy cannot
    read it: ``np.asarray(a)`` raises CuPy's ``TypeError: Implicit conversion to a NumPy array is not
    allowed``; ``a.get()`` and ``cupy.asnumpy(a)`` are the explicit copies back, ``cupy.asarray(host)`` the
    copy there.
  * It never mixes with NumPy arrays: ``a + host``, ``host * a``, ``np.where(a, host, 0)``,
    ``cupy.concatenate([a, host])``, ``a[...] = host`` and an index array from the host all raise
    ``TypeError: Unsupported type <class 'numpy.ndarray'>``. Python and NumPy scalars are fine (as in CuPy).
  * NumPy functions and ufuncs called on device arrays dispatch here (``__array_function__``,
    ``__array_ufunc__``), as CuPy's do; reductions and scalar indexing return 0-d device arrays.
  * ``bool(a)``, ``float(a)``, ``int(a)``, ``a.item()``, ``a.get()``, ``cupy.asnumpy(a)`` wait for the device:
    each is counted in ``stats["syncs"]`` (and copies in ``stats["d2h"]`` / ``stats["h2d"]``), so a test can
    say "a forward pass does not synchronise".
  * ``cupy.empty`` is filled with garbage (NaN, or -777 for integers): output a kernel forgot to write shows.
  * ``RawModule`` / ``RawKernel`` and ``ElementwiseKernel`` run Python versions of the package's CUDA
    kernels (``unet_scratch/kernels/cupy_ops.py``), line for line, after checking the launch as a GPU would
    need it: grid and block shapes, one argument per parameter with the parameter's exact type (``int`` ->
    ``numpy.int32``, ``long long`` -> ``numpy.int64``, ``T*`` -> a device array of T), and every pointer
    argument C-contiguous: a raw kernel reads memory as a flat C-ordered buffer, so a strided view would
    be read wrongly on a real GPU, silently; here it fails. Inputs behind ``const`` pointers are passed
    read-only. A kernel whose CUDA source differs from the one the Python version was written from is
    refused (the fingerprints below), so the two cannot drift apart.
What it does not copy: speed, CuPy's own rounding (it computes with NumPy), TF32, streams and events
(every call completes at once), multi-GPU. It is a test double for correctness of the host/device
boundary, not an emulator of CUDA arithmetic.
"""
from __future__ import annotations

import builtins as _b
import hashlib
import math
import re
import types

import numpy as _np

__version__ = "14.2.0+strict-standin"
IS_STANDIN = True

_IMPLICIT = ("Implicit conversion to a NumPy array is not allowed. Please use `.get()` to construct a "
             "NumPy array explicitly.")
stats = {"syncs": 0, "h2d": 0, "d2h": 0, "launches": 0}


def reset():
    """Zero the counters (a test calls this before what it measures)."""
    for k in stats:
        stats[k] = 0


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


def _unwrap(x):
    """Device arrays -> their storage; NumPy arrays refused; containers recursed; scalars kept."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, _np.ndarray):
        raise _unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_unwrap(v) for v in x)
    return x


def _wrap(r):
    if isinstance(r, _np.ndarray):
        return ndarray._from(r)
    if isinstance(r, _np.generic):
        return ndarray._from(_np.asarray(r))
    if isinstance(r, tuple):
        return tuple(_wrap(v) for v in r)
    if isinstance(r, list):
        return [_wrap(v) for v in r]
    return r


def _sync():
    stats["syncs"] += 1


class _Flags:
    def __init__(self, a):
        self.c_contiguous = bool(a.flags.c_contiguous)
        self.f_contiguous = bool(a.flags.f_contiguous)
        self.owndata = bool(a.flags.owndata)

    def __getitem__(self, key):
        return {"C_CONTIGUOUS": self.c_contiguous, "F_CONTIGUOUS": self.f_contiguous,
                "OWNDATA": self.owndata}[key]


def _binop(uf):
    return lambda self, other: uf(self, other)


def _rbinop(uf):
    return lambda self, other: uf(other, self)


def _ibinop(uf):
    def f(self, other):
        uf(self, other, out=(self,))
        return self
    return f


class ndarray:
    """A device array. Only this module's functions and the methods below reach its values."""

    __array_priority__ = 100.0
    __hash__ = None

    def __init__(self, shape, dtype=float, order="C"):
        self._a = _garbage(_np.empty(shape, dtype=dtype, order=order))

    @classmethod
    def _from(cls, a):
        obj = cls.__new__(cls)
        obj._a = a
        return obj

    # -------------------------------------------------------------- what NumPy may and may not do with it
    def __array__(self, dtype=None, copy=None):
        raise TypeError(_IMPLICIT)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        args = [_unwrap(v) for v in inputs]
        out = kwargs.get("out")
        if out is not None:
            for o in out:
                if not isinstance(o, ndarray):
                    raise _unsupported(o)
            kwargs["out"] = tuple(o._a for o in out)
        for key in ("where",):
            if key in kwargs:
                kwargs[key] = _unwrap(kwargs[key])
        result = getattr(ufunc, method)(*args, **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _wrap(result)

    def __array_function__(self, func, types_, args, kwargs):
        impl = _FUNCTIONS.get(func.__name__)
        if impl is None:
            return NotImplemented
        return impl(*args, **kwargs)

    # -------------------------------------------------------------- attributes
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: _Flags(self._a))
    T = property(lambda self: ndarray._from(self._a.T))
    device = property(lambda self: cuda.Device(0))

    def __len__(self):
        return len(self._a)

    def __iter__(self):
        return (_wrap(v) for v in self._a)

    def __repr__(self):
        return f"strict_cupy.array({self._a!r})"

    # -------------------------------------------------------------- scalars out: a device sync each
    def __bool__(self):
        _sync()
        return bool(self._a)

    def __float__(self):
        _sync()
        return float(self._a)

    def __int__(self):
        _sync()
        return int(self._a)

    def __complex__(self):
        _sync()
        return complex(self._a)

    def item(self):
        _sync()
        return self._a.item()

    def tolist(self):
        _sync()
        stats["d2h"] += 1
        return self._a.tolist()

    def get(self, stream=None, order="C", out=None, blocking=True):
        """Device -> host copy (a new NumPy array)."""
        _sync()
        stats["d2h"] += 1
        if out is not None:
            out[...] = self._a
            return out
        return _np.array(self._a, order=order)

    def set(self, arr, stream=None):
        """Host -> device copy into this array (arr: a NumPy array of this shape)."""
        if not isinstance(arr, _np.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        if arr.shape != self.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        stats["h2d"] += 1
        self._a[...] = arr

    # -------------------------------------------------------------- indexing
    def __getitem__(self, key):
        return _wrap(self._a[_unwrap(key)])

    def __setitem__(self, key, value):
        self._a[_unwrap(key)] = _unwrap(value)

    # -------------------------------------------------------------- arithmetic through the ufuncs above
    __add__, __radd__, __iadd__ = _binop(_np.add), _rbinop(_np.add), _ibinop(_np.add)
    __sub__, __rsub__, __isub__ = _binop(_np.subtract), _rbinop(_np.subtract), _ibinop(_np.subtract)
    __mul__, __rmul__, __imul__ = _binop(_np.multiply), _rbinop(_np.multiply), _ibinop(_np.multiply)
    __truediv__, __rtruediv__, __itruediv__ = (_binop(_np.true_divide), _rbinop(_np.true_divide),
                                               _ibinop(_np.true_divide))
    __floordiv__, __rfloordiv__ = _binop(_np.floor_divide), _rbinop(_np.floor_divide)
    __mod__, __rmod__ = _binop(_np.remainder), _rbinop(_np.remainder)
    __pow__, __rpow__ = _binop(_np.power), _rbinop(_np.power)
    __matmul__, __rmatmul__ = _binop(_np.matmul), _rbinop(_np.matmul)
    __and__, __rand__, __iand__ = _binop(_np.bitwise_and), _rbinop(_np.bitwise_and), _ibinop(_np.bitwise_and)
    __or__, __ror__, __ior__ = _binop(_np.bitwise_or), _rbinop(_np.bitwise_or), _ibinop(_np.bitwise_or)
    __xor__, __rxor__ = _binop(_np.bitwise_xor), _rbinop(_np.bitwise_xor)
    __lt__, __le__ = _binop(_np.less), _binop(_np.less_equal)
    __gt__, __ge__ = _binop(_np.greater), _binop(_np.greater_equal)
    __eq__, __ne__ = _binop(_np.equal), _binop(_np.not_equal)

    def __neg__(self):
        return _np.negative(self)

    def __pos__(self):
        return _np.positive(self)

    def __abs__(self):
        return _np.absolute(self)

    def __invert__(self):
        return _np.invert(self)


def _method(name):
    def m(self, *args, **kwargs):
        return _wrap(getattr(self._a, name)(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))
    m.__name__ = name
    return m


for _name in ("reshape", "transpose", "astype", "copy", "ravel", "flatten", "squeeze", "swapaxes", "view",
              "sum", "mean", "max", "min", "argmax", "argmin", "all", "any", "prod", "cumsum", "std", "var",
              "dot", "clip", "take", "repeat", "round"):
    setattr(ndarray, _name, _method(_name))


def _fill(self, value):
    self._a.fill(_unwrap(value))


ndarray.fill = _fill


def _garbage(a):
    """What uninitialised device memory holds here: NaN for floats, -777 for integers."""
    if a.dtype.kind in "fc":
        a.fill(_np.nan)
    elif a.dtype.kind in "iu":
        a.fill(-777 if a.dtype.kind == "i" else 777)
    return a


# ------------------------------------------------------------------ functions

def _function(np_func, name=None):
    def f(*args, **kwargs):
        return _wrap(np_func(*_unwrap(args), **{k: _unwrap(v) for k, v in kwargs.items()}))
    f.__name__ = name or np_func.__name__
    return f


_FUNCTIONS = {}
_PASSTHROUGH = ("pad", "stack", "concatenate", "split", "where", "take_along_axis", "broadcast_to", "maximum",
                "minimum", "exp", "log", "log1p", "abs", "absolute", "sqrt", "square", "isfinite", "isnan",
                "isinf", "clip", "matmul", "sum", "mean", "max", "min", "amax", "amin", "argmax", "all", "any",
                "logical_and", "logical_or", "logical_not", "reshape", "transpose", "moveaxis", "cumsum",
                "count_nonzero", "argwhere", "nonzero", "expand_dims", "squeeze", "tensordot", "dot", "einsum",
                "array_equal", "allclose", "isclose", "negative", "sign", "tanh", "ravel", "flip", "copy",
                "equal", "not_equal", "greater", "less", "multiply", "add", "subtract", "divide",
                "true_divide", "power", "outer", "round", "floor", "ceil", "prod", "var", "std", "median",
                "unique", "bincount", "result_type", "can_cast", "shape", "ndim", "size", "repeat", "tile",
                "swapaxes", "sort", "argsort", "searchsorted", "diff", "atleast_1d", "eye", "identity",
                "arange", "linspace", "zeros", "ones", "full")
for _name in _PASSTHROUGH:
    _FUNCTIONS[_name] = globals()[_name] = _function(getattr(_np, _name), _name)


def empty(shape, dtype=float, order="C"):
    """Uninitialised device memory (garbage: NaN or -777), as ``cupy.empty``."""
    return ndarray(shape, dtype, order)


def _check_like(a, name):
    if not isinstance(a, ndarray):
        raise _unsupported(a) if isinstance(a, _np.ndarray) else TypeError(f"{name} needs a cupy.ndarray")
    return a._a


def empty_like(a, dtype=None, order="K", subok=None, shape=None):
    return ndarray._from(_garbage(_np.empty_like(_check_like(a, "empty_like"), dtype=dtype, shape=shape)))


def zeros_like(a, dtype=None, order="K", subok=None, shape=None):
    return ndarray._from(_np.zeros_like(_check_like(a, "zeros_like"), dtype=dtype, shape=shape))


def ones_like(a, dtype=None, order="K", subok=None, shape=None):
    return ndarray._from(_np.ones_like(_check_like(a, "ones_like"), dtype=dtype, shape=shape))


def full_like(a, fill_value, dtype=None, order="K", subok=None, shape=None):
    return ndarray._from(_np.full_like(_check_like(a, "full_like"), fill_value, dtype=dtype, shape=shape))


def ascontiguousarray(a, dtype=None):
    a = _check_like(a, "ascontiguousarray")
    return ndarray._from(_np.ascontiguousarray(a, dtype=dtype))


def asarray(a, dtype=None, order=None, *, blocking=False):
    """A device array: ``a`` itself (or cast) when it already is one, else a host -> device copy."""
    if isinstance(a, ndarray):
        return a if dtype is None or _np.dtype(dtype) == a.dtype else a.astype(dtype)
    stats["h2d"] += 1
    return ndarray._from(_np.array(a, dtype=dtype, order=order or "K", copy=True))


def array(a, dtype=None, copy=True, order="K", ndmin=0, *, blocking=False):
    if isinstance(a, ndarray):
        return ndarray._from(_np.array(a._a, dtype=dtype, copy=copy, order=order, ndmin=ndmin))
    stats["h2d"] += 1
    return ndarray._from(_np.array(a, dtype=dtype, copy=True, order=order, ndmin=ndmin))


def asnumpy(a, stream=None, order="C", out=None, *, blocking=True):
    """Device -> host (a NumPy array); a host array is returned as NumPy has it."""
    if isinstance(a, ndarray):
        return a.get(order=order, out=out)
    return _np.asarray(a, order=order)


def get_array_module(*args):
    """This module if any argument is a device array, else NumPy (as ``cupy.get_array_module``)."""
    return _SELF if _b.any(isinstance(a, ndarray) for a in args) else _np


for _name in ("empty_like", "zeros_like", "ones_like", "full_like", "ascontiguousarray", "asarray", "array",
              "empty"):
    _FUNCTIONS[_name] = globals()[_name]

# dtypes and constants are NumPy's, as in CuPy
float16, float32, float64 = _np.float16, _np.float32, _np.float64
int8, int16, int32, int64, uint8, uint32, uint64 = (_np.int8, _np.int16, _np.int32, _np.int64, _np.uint8,
                                                    _np.uint32, _np.uint64)
bool_, dtype, newaxis, inf, nan, pi, e = _np.bool_, _np.dtype, None, _np.inf, _np.nan, _np.pi, _np.e


# ------------------------------------------------------------------ cuda, memory pool, random

class _Device:
    def __init__(self, device=0):
        self.id = int(device)
        self.compute_capability = "90"

    def synchronize(self):
        _sync()

    def use(self):
        return self

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    @property
    def mem_info(self):
        return _runtime.memGetInfo()

    def __repr__(self):
        return f"<CUDA Device {self.id} (strict stand-in)>"


class _Stream:
    def synchronize(self):
        _sync()


class MemoryHook:
    """Base class of CuPy's memory hooks: with a hook active, device allocations and frees call
    ``malloc_postprocess(mem_size=..., pmem_id=...)`` and ``free_postprocess(...)``. The stand-in makes
    no such calls (its memory is the host's), so a hook measures 0 bytes here."""
    name = "MemoryHook"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


_runtime = types.SimpleNamespace(
    getDeviceCount=lambda: 1, deviceSynchronize=_sync, runtimeGetVersion=lambda: 13000,
    driverGetVersion=lambda: 13000, memGetInfo=lambda: (139 * 2**30, 140 * 2**30),
    getDeviceProperties=lambda device: {"name": b"strict CuPy stand-in (CPU)", "totalGlobalMem": 140 * 2**30,
                                        "major": 9, "minor": 0, "multiProcessorCount": 1},
    CUDARuntimeError=RuntimeError)
_null_stream = _Stream()
cuda = types.SimpleNamespace(
    runtime=_runtime, Device=_Device, Stream=types.SimpleNamespace(null=_null_stream),
    get_current_stream=lambda: _null_stream, MemoryHook=MemoryHook, get_device_id=lambda: 0,
    is_available=lambda: True)


class _MemoryPool:
    def used_bytes(self):
        return 0

    def total_bytes(self):
        return 0

    def free_all_blocks(self):
        pass

    def set_limit(self, size=None, fraction=None):
        pass


_pool = _MemoryPool()


def get_default_memory_pool():
    return _pool


def get_default_pinned_memory_pool():
    return _pool


class _BitGenerator:
    def __init__(self, seed=None, *, size=-1):
        self._bits = _np.random.Philox(seed)


class Philox4x3210(_BitGenerator):
    """Counter-based, like cuRAND's Philox4_32_10; the stand-in's numbers are NumPy's Philox4x64's."""


class XORWOW(_BitGenerator):
    pass


class Generator:
    def __init__(self, bit_generator):
        self._g = _np.random.Generator(bit_generator._bits)

    def random(self, size=None, dtype=_np.float64, out=None):
        if _np.dtype(dtype) not in (_np.dtype(_np.float32), _np.dtype(_np.float64)):
            raise TypeError(f"Unsupported dtype {dtype} for random")
        return ndarray._from(_np.asarray(self._g.random(size, dtype=dtype)))


random = types.SimpleNamespace(Generator=Generator, Philox4x3210=Philox4x3210, XORWOW=XORWOW,
                               default_rng=lambda seed=None: Generator(XORWOW(seed)))


# ------------------------------------------------------------------ kernels: launch checks, Python bodies

_C_SCALARS = {"int": _np.int32, "unsigned int": _np.uint32, "long long": _np.int64, "float": _np.float32,
              "double": _np.float64, "size_t": _np.uint64}
_C_POINTEES = {"int": _np.int32, "float": _np.float32, "double": _np.float64, "long long": _np.int64,
               "signed char": _np.int8, "unsigned char": _np.uint8}
_KERNELS = {}       # kernel name -> (fingerprint of its CUDA source, Python body)


def fingerprint(source: str) -> str:
    """The first 16 hex digits of the SHA-256 of a kernel's source, whitespace-normalised."""
    return hashlib.sha256(" ".join(source.split()).encode()).hexdigest()[:16]


def _kernel(name, fp):
    def register(body):
        _KERNELS[name] = (fp, body)
        return body
    return register


def _parse_params(text):
    """'const T* x, int H, ...' -> [(name, ctype, is_pointer, is_const), ...]."""
    params = []
    for part in text.split(","):
        part = " ".join(part.replace("*", " * ").split())
        m = re.fullmatch(r"(const )?([\w ]+?) (\* )?(\w+)", part)
        if m is None:
            raise ValueError(f"strict_cupy cannot read the kernel parameter {part!r}")
        params.append((m.group(4), m.group(2), m.group(3) is not None, m.group(1) is not None))
    return params


def _functions_in(code):
    """The __global__ functions of a CUDA source: name -> (source of that function, its parameters)."""
    out = {}
    for m in re.finditer(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)\s*\{", code):
        depth, i = 1, m.end()
        while depth:
            depth += {"{": 1, "}": -1}.get(code[i], 0)
            i += 1
        out[m.group(1)] = (code[m.start():i], _parse_params(m.group(2)))
    return out


def _check_launch_shape(grid, block, shared_mem):
    for label, dims in (("grid", grid), ("block", block)):
        if not isinstance(dims, tuple) or not 1 <= len(dims) <= 3:
            raise TypeError(f"{label} must be a tuple of 1 to 3 ints, got {dims!r}")
        for d in dims:
            if isinstance(d, bool) or not isinstance(d, (int, _np.integer)) or d < 1:
                raise ValueError(f"{label} dimensions must be ints >= 1, got {dims!r}")
    if math.prod(block) > 1024:
        raise ValueError(f"block {block} has {math.prod(block)} threads; CUDA allows at most 1024")
    if grid[0] > 2**31 - 1 or _b.any(d > 65535 for d in grid[1:]):
        raise ValueError(f"grid {grid} is beyond CUDA's limits (2**31 - 1, 65535, 65535)")
    if shared_mem:
        raise ValueError("the package's kernels use no shared memory")


class RawKernel:
    """A ``__global__`` function of a CUDA source; calling it checks the launch and runs its Python body."""

    def __init__(self, code, name, options=(), backend="nvrtc", *, _template=None):
        base, _, targ = name.partition("<")
        functions = _functions_in(code)
        if base not in functions:
            raise ValueError(f"no __global__ function {base!r} in the kernel source")
        text, self.params = functions[base]
        if base not in _KERNELS:
            raise NotImplementedError(f"strict_cupy has no Python version of the CUDA kernel {base!r}; "
                                      "write one in tests/strict_cupy.py")
        expected, self._body = _KERNELS[base]
        got = fingerprint(text)
        if got != expected:
            raise RuntimeError(f"the CUDA source of {base!r} changed (fingerprint {got}, the Python version "
                               f"in tests/strict_cupy.py was written from {expected}): update that Python "
                               f"version to the new source, then its fingerprint")
        self.name = name
        self._types = {}
        if targ:
            self._types["T"] = _np.dtype(_C_POINTEES[targ.rstrip(">").strip()])

    def _ctype(self, ctype):
        return self._types[ctype] if ctype in self._types else _np.dtype(_C_POINTEES.get(ctype, _np.void))

    def __call__(self, grid, block, args, *, shared_mem=0, stream=None):
        _check_launch_shape(grid, block, shared_mem)
        if not isinstance(args, tuple):
            raise TypeError(f"kernel arguments must be a tuple, got {type(args).__name__}")
        if len(args) != len(self.params):
            raise TypeError(f"{self.name} takes {len(self.params)} arguments, got {len(args)}")
        values = {}
        for (pname, ctype, pointer, const), a in zip(self.params, args):
            if pointer:
                if not isinstance(a, ndarray):
                    raise TypeError(f"{self.name}: argument {pname!r} ({'const ' * const}{ctype}*) must be a "
                                    f"cupy.ndarray, got {type(a)}")
                want = self._ctype(ctype)
                if a.dtype != want:
                    raise TypeError(f"{self.name}: argument {pname!r} is {ctype}* = {want}, got an array of "
                                    f"{a.dtype}: the kernel would reinterpret its bytes")
                if not a._a.flags.c_contiguous:
                    raise ValueError(f"{self.name}: argument {pname!r} is not C-contiguous (strides "
                                     f"{a.strides}): a raw kernel reads it as a flat C-ordered buffer and "
                                     f"would read the wrong elements on a GPU; pass cupy.ascontiguousarray(...)")
                flat = a._a.reshape(-1)
                if const:
                    flat = flat.view()
                    flat.flags.writeable = False
                values[pname] = flat
            else:
                want = self._types.get(ctype) or _C_SCALARS.get(ctype)
                if want is None or not isinstance(a, _np.generic) or a.dtype != _np.dtype(want):
                    raise TypeError(f"{self.name}: argument {pname!r} is a C {ctype}; pass "
                                    f"numpy.{_np.dtype(want).name}(...) (got {type(a).__name__}"
                                    f"{' ' + str(a.dtype) if hasattr(a, 'dtype') else ''})")
                values[pname] = a.item()
        stats["launches"] += 1
        self._body(math.prod(grid) * math.prod(block), **values)


class RawModule:
    """``cupy.RawModule(code=..., options=..., name_expressions=[...])``: get_function(name) gives a RawKernel."""

    def __init__(self, code=None, *, path=None, options=(), backend="nvrtc", translate_cucomplex=False,
                 enable_cooperative_groups=False, name_expressions=None, jitify=False):
        if code is None:
            raise ValueError("the stand-in compiles source code only (code=...)")
        self.code, self.name_expressions = code, tuple(name_expressions or ())

    def get_function(self, name):
        if self.name_expressions and name not in self.name_expressions:
            raise RuntimeError(f"{name!r} is not among the name_expressions compiled: {self.name_expressions}")
        return RawKernel(self.code, name)


_ELEMENTWISE = {}    # name -> (fingerprint of (in_params, out_params, operation), Python body)


def _elementwise(name, fp):
    def register(body):
        _ELEMENTWISE[name] = (fp, body)
        return body
    return register


class ElementwiseKernel:
    """``cupy.ElementwiseKernel(in_params, out_params, operation, name)``: type placeholders (T, Y, ...)
    bind to the inputs' dtypes, one dtype per placeholder ("Type is mismatched" otherwise, as CuPy)."""

    def __init__(self, in_params, out_params, operation, name="kernel", **kwargs):
        self.name = name
        parse = lambda s: [tuple(p.split()) for p in s.split(",") if p.strip()]   # noqa: E731
        self.in_params, self.out_params = parse(in_params), parse(out_params)
        if name not in _ELEMENTWISE:
            raise NotImplementedError(f"strict_cupy has no Python version of the elementwise kernel {name!r}")
        expected, self._body = _ELEMENTWISE[name]
        got = fingerprint(f"{in_params} | {out_params} | {operation}")
        if got != expected:
            raise RuntimeError(f"the elementwise kernel {name!r} changed (fingerprint {got}, the Python "
                               f"version in tests/strict_cupy.py was written from {expected}): update it")

    def __call__(self, *args, size=None, stream=None):
        if len(args) != len(self.in_params):
            raise TypeError(f"{self.name} takes {len(self.in_params)} inputs, got {len(args)}")
        bound = {}
        for (ptype, pname), a in zip(self.in_params, args):
            if not isinstance(a, ndarray):
                raise _unsupported(a)
            if ptype in _C_SCALARS or ptype in ("float32", "float64", "int32"):
                continue
            if bound.setdefault(ptype, a.dtype) != a.dtype:
                raise TypeError(f"Type is mismatched. {self.name} {ptype} {bound[ptype]} {a.dtype}")
        shape = _np.broadcast_shapes(*(a.shape for a in args))
        stats["launches"] += 1
        results = self._body(*(_np.broadcast_to(a._a, shape) for a in args))
        outs = [ndarray._from(_np.ascontiguousarray(r, dtype=bound[ptype]))
                for (ptype, _), r in zip(self.out_params, results)]
        return outs[0] if len(outs) == 1 else tuple(outs)


# The Python versions of the package's CUDA kernels (unet_scratch/kernels/cupy_ops.py), line for line.
# Each is registered under the fingerprint of the source it was written from.

@_kernel("maxpool_forward", "56d0a1cd45da4290")
def _maxpool_forward(threads, x, y, argmax, total, H, W, C, OH, OW, PH, PW, SH, SW, top, left):
    idx = _np.arange(_b.min(threads, total), dtype=_np.int64)         # if (idx >= total) return;
    c = idx % C
    t = idx // C
    j = t % OW
    t = t // OW
    i = t % OH
    n = t // OH
    best = _np.full(idx.shape, -_np.inf, dtype=x.dtype)            # T best = neg_inf<T>();
    at = _np.zeros(idx.shape, dtype=_np.int32)
    for a in range(PH):
        hi = i * SH + a - top
        for q in range(PW):
            wi = j * SW + q - left
            inside = (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)   # continue when outside
            flat = ((n * H + _np.where(inside, hi, 0)) * W + _np.where(inside, wi, 0)) * C + c
            v = x[flat]
            # if (v > best || (v != v && best == best)): the first maximum, or the first NaN (NumPy's argmax)
            take = inside & ((v > best) | ((v != v) & (best == best)))
            best = _np.where(take, v, best)
            at = _np.where(take, a * PW + q, at).astype(_np.int32)
    y[idx] = best
    argmax[idx] = at


@_kernel("maxpool_backward", "5927238b9d1e768c")
def _maxpool_backward(threads, dy, argmax, dx, total, H, W, C, OH, OW, PW, SH, SW, top, left):
    idx = _np.arange(_b.min(threads, total), dtype=_np.int64)
    c = idx % C
    t = idx // C
    j = t % OW
    t = t // OW
    i = t % OH
    n = t // OH
    k = argmax[idx].astype(_np.int64)
    hi, wi = i * SH + k // PW - top, j * SW + k % PW - left
    inside = (hi >= 0) & (hi < H) & (wi >= 0) & (wi < W)
    flat = ((n * H + hi) * W + wi) * C + c
    _np.add.at(dx, flat[inside], dy[idx][inside])                # atomicAdd


@_elementwise("unet_relu", "b37f36270f750429")
def _relu(z):
    # y = (z > (T)0 || z != z) ? z : (T)0      NaN passes through, as NumPy's maximum(z, 0)
    return (_np.where((z > 0) | (z != z), z, _np.zeros((), z.dtype)),)


@_elementwise("unet_relu_backward", "ec24b06165f67de2")
def _relu_backward(dy, y):
    # dz = y > (Y)0 ? dy : dy * (T)0      as NumPy's dy * (y > 0): NaN or Inf in dy stay NaN, -0 kept
    return (_np.where(y > 0, dy, dy * _np.zeros((), dy.dtype)),)


_SELF = None


def _install_self():
    import sys
    global _SELF
    _SELF = sys.modules[__name__]


_install_self()
