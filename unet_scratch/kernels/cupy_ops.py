"""The CuPy backend: the reference ops' names and signatures, on an NVIDIA GPU.

``backend.set_backend("cupy")`` selects it; move the model there with ``model.to("gpu")`` and pass CuPy
arrays (``cupy.asarray(x)``; ``fit``, ``predict`` and ``predict_tiled`` do both for you).

This backend is the shared array code of ``xp_ops`` (each function finds ``xp = cupy`` from its CuPy
inputs) plus two CUDA kernels:
    matrix products    cuBLAS through ``@`` (im2col + GEMM, in blocks of at most 512 MiB, as xp_ops)
    im2col, col2im     CuPy slicing, shared with the CPU in ``xp_ops``
    max pooling        a ``cupy.RawModule``: max + first argmax (NaN wins, as NumPy's argmax), and the
                       routing of dy with ``atomicAdd`` (windows may overlap); float32 and float64
                       (other dtypes run the shared code)
    ReLU               ``cupy.ElementwiseKernel``: one pass forward (NaN stays NaN, as ``np.maximum``),
                       one backward (dy's dtype, ``dy * [y > 0]`` as the reference, NaN in dy kept)
    dropout            the mask is drawn on the GPU by a Philox generator seeded from the layer's NumPy
                       generator: the same seed gives the same mask, nothing is copied from the host

Precision. CuPy computes float32 matrix products in full float32 unless the environment variable
``CUPY_TF32=1`` asks for TensorFloat-32 (10-bit mantissa); importing this module with it set warns,
because TF32 breaks the rtol = atol = 1e-5 agreement with the reference that the tests check.
(TensorFlow, in contrast, uses TF32 by default on Ampere and newer GPUs; ``NVIDIA_TF32_OVERRIDE=0``
turns it off there.)

Importing this module raises ImportError when CuPy or a CUDA GPU is missing; :func:`self_test` compiles
and runs the kernels once on a few numbers and says what is missing when it cannot (CuPy 14 compiles
every kernel with NVRTC and the CUDA headers: the ``[ctk]`` extra of ``cupy-cuda12x`` / ``cupy-cuda13x``).
``backend.set_backend("cupy")`` turns either into a RuntimeError that says what to install.
"""
from __future__ import annotations

import os
import warnings

try:
    import cupy
except ImportError as err:                                        # pragma: no cover - no cupy in CI
    raise ImportError("CuPy is not installed: pip install -e '.[gpu-cuda12]' (or '.[gpu-cuda13]' for a "
                      "CUDA 13 driver)") from err
try:
    _N_GPUS = cupy.cuda.runtime.getDeviceCount()
except Exception as err:                                          # pragma: no cover - no GPU in CI
    raise ImportError(f"CuPy is installed but no CUDA GPU answers ({type(err).__name__}: {err})") from err
if _N_GPUS < 1:                                                   # pragma: no cover
    raise ImportError("CuPy is installed but no CUDA GPU is visible (CUDA_VISIBLE_DEVICES?)")

import numpy as np  # noqa: E402

from ..checks import check_dy_shape, pool_args  # noqa: E402
from . import xp_ops  # noqa: E402
from .xp_ops import (concatenate, concatenate_backward, conv2d, conv2d_backward,  # noqa: E402,F401
                     conv2d_transpose, conv2d_transpose_backward, dropout, dropout_backward, sigmoid,
                     sigmoid_backward, softmax, softmax_backward, upsample2d, upsample2d_backward)
from ..ops.concat import (center_crop, center_crop_backward, crop2d, crop2d_backward,  # noqa: E402,F401
                          crop_amounts)

if int(os.environ.get("CUPY_TF32", "0") or 0) > 0:                # pragma: no cover
    warnings.warn("CUPY_TF32 is set: float32 matrix products run in TensorFloat-32 (10-bit mantissa) and "
                  "will not match the NumPy reference to 1e-5; unset CUPY_TF32 for full float32",
                  RuntimeWarning, stacklevel=2)

# ----------------------------------------------------------------------------- CUDA kernels

_POOL_SOURCE = r"""
template<typename T> __device__ T neg_inf();
template<> __device__ float neg_inf<float>() { return __int_as_float((int)0xff800000u); }
template<> __device__ double neg_inf<double>() { return __longlong_as_double(0xfff0000000000000ULL); }

// One thread per output value y[n, i, j, c]: the max of its window and the row-major index a*PW + q
// of the FIRST maximum (strict >), padding counting as -inf. A NaN wins over any number and the first
// NaN stays, as NumPy's argmax (so a NaN reaches the loss on the GPU as on the CPU).
template<typename T>
__global__ void maxpool_forward(const T* x, T* y, int* argmax, long long total,
                                int H, int W, int C, int OH, int OW,
                                int PH, int PW, int SH, int SW, int top, int left) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int c = idx % C;  long long t = idx / C;
    int j = t % OW;   t /= OW;
    int i = t % OH;   int n = t / OH;
    T best = neg_inf<T>();
    int at = 0;
    for (int a = 0; a < PH; ++a) {
        int hi = i * SH + a - top;
        if (hi < 0 || hi >= H) continue;
        for (int q = 0; q < PW; ++q) {
            int wi = j * SW + q - left;
            if (wi < 0 || wi >= W) continue;
            T v = x[(((long long)n * H + hi) * W + wi) * C + c];
            if (v > best || (v != v && best == best)) { best = v; at = a * PW + q; }
        }
    }
    y[idx] = best;
    argmax[idx] = at;
}

// One thread per dy value: add it to the input pixel that won its window (atomic: windows may overlap).
template<typename T>
__global__ void maxpool_backward(const T* dy, const int* argmax, T* dx, long long total,
                                 int H, int W, int C, int OH, int OW,
                                 int PW, int SH, int SW, int top, int left) {
    long long idx = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (idx >= total) return;
    int c = idx % C;  long long t = idx / C;
    int j = t % OW;   t /= OW;
    int i = t % OH;   int n = t / OH;
    int k = argmax[idx];
    int hi = i * SH + k / PW - top, wi = j * SW + k % PW - left;
    if (hi < 0 || hi >= H || wi < 0 || wi >= W) return;
    atomicAdd(&dx[(((long long)n * H + hi) * W + wi) * C + c], dy[idx]);
}
"""
_POOL_NAMES = [f"{kernel}<{t}>" for kernel in ("maxpool_forward", "maxpool_backward")
               for t in ("float", "double")]
_pool_module = None

# NaN passes through as in np.maximum(z, 0); the backward is dy * [y > 0] in dy's dtype (T may differ
# from the forward's Y: a float64 dy into a float32 model gives a float64 gradient, as the reference).
_RELU = ("T z", "T y", "y = (z > (T)0 || z != z) ? z : (T)0")
_RELU_BACKWARD = ("T dy, Y y", "T dz", "dz = y > (Y)0 ? dy : dy * (T)0")
_relu_kernel = _relu_backward_kernel = None
_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256


def _relu_kernels():
    global _relu_kernel, _relu_backward_kernel
    if _relu_kernel is None:
        _relu_kernel = cupy.ElementwiseKernel(*_RELU, "unet_relu")
        _relu_backward_kernel = cupy.ElementwiseKernel(*_RELU_BACKWARD, "unet_relu_backward")
    return _relu_kernel, _relu_backward_kernel


def _pool_kernel(name, dtype):
    """The compiled pooling kernel ``name`` for dtype (the module is compiled once, on first use)."""
    global _pool_module
    if _pool_module is None:
        _pool_module = cupy.RawModule(code=_POOL_SOURCE, options=("-std=c++14",),
                                      name_expressions=_POOL_NAMES)
    return _pool_module.get_function(f"{name}<{_CTYPE[np.dtype(dtype)]}>")


def _launch(kernel, total, args):
    blocks = (total + _THREADS - 1) // _THREADS
    if blocks:
        kernel((blocks,), (_THREADS,), args)


def _fast(dtype) -> bool:
    return np.dtype(dtype) in _CTYPE


_SELF_TEST = None          # None: not run yet; "": passed; else what is missing


def self_test() -> str:
    """Compile the two kernels and run them on a few numbers, once per process: "" when they work, else
    a sentence naming what is missing (NVRTC or the CUDA headers: the [ctk] extra; a driver too old)."""
    global _SELF_TEST
    if _SELF_TEST is not None:
        return _SELF_TEST
    try:
        x = cupy.asarray(np.array([[[[1.0], [-2.0]], [[np.nan], [3.0]]]], dtype=np.float32))   # (1, 2, 2, 1)
        y, cache = maxpool2d(x)
        r, _ = relu(x)
        got = (cupy.asnumpy(y).ravel().tolist(), cupy.asnumpy(cache["argmax"]).ravel().tolist(),
               cupy.asnumpy(r).ravel().tolist())
        if not (np.isnan(got[0][0]) and got[1] == [2] and got[2][:2] == [1.0, 0.0] and np.isnan(got[2][2])):
            raise RuntimeError(f"the kernels ran but computed {got}")
        _SELF_TEST = ""
    except Exception as err:  # noqa: BLE001 - every failure is reported, with what to install
        text = f"{type(err).__name__}: {err}".strip()
        low = text.lower()
        if "nvrtc" in low:
            fix = ("NVRTC (CUDA's runtime compiler) is missing: pip install -e '.[gpu-cuda12]' or "
                   "'.[gpu-cuda13]', whose cupy-cuda1Nx[ctk] brings it")
        elif ".h" in low or "include" in low or "header" in low:
            fix = ("the CUDA headers are missing: pip install -e '.[gpu-cuda12]' or '.[gpu-cuda13]' (the "
                   "[ctk] extra of CuPy brings them), or set CUDA_PATH to a CUDA toolkit")
        elif "driver" in low or "insufficient" in low:
            fix = ("the NVIDIA driver is older than the CUDA of this CuPy: install cupy-cuda12x for a CUDA 12 "
                   "driver ('.[gpu-cuda12]')")
        else:
            fix = "CuPy could not compile and run a kernel"
        _SELF_TEST = f"{fix} ({text[:300]})"
    return _SELF_TEST


# ----------------------------------------------------------------------------- the ops
# conv2d, conv2d_transpose, sigmoid, softmax, dropout, concatenate, upsample2d and their backwards are
# xp_ops's, imported above: the same code as on the CPU, running on CuPy arrays.


def maxpool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """MaxPooling2D forward: x (N, H, W, C) -> (y, cache); one CUDA thread per output value."""
    if not _fast(x.dtype):
        return xp_ops.maxpool2d(x, pool_size, strides, padding)
    (ph, pw), (sh, sw), padding = pool_args(x, pool_size, strides, padding)
    oh, ow, pad_h, pad_w = xp_ops.conv_geometry(x.shape, (ph, pw), (sh, sw), padding)
    x = cupy.ascontiguousarray(x)
    n, h, w, c = x.shape
    y = cupy.empty((n, oh, ow, c), dtype=x.dtype)
    argmax = cupy.empty(y.shape, dtype=cupy.int32)
    _launch(_pool_kernel("maxpool_forward", x.dtype), y.size,
            (x, y, argmax, np.int64(y.size), np.int32(h), np.int32(w), np.int32(c), np.int32(oh),
             np.int32(ow), np.int32(ph), np.int32(pw), np.int32(sh), np.int32(sw),
             np.int32(pad_h[0]), np.int32(pad_w[0])))
    cache = {"x_shape": tuple(x.shape), "pads": (pad_h, pad_w), "argmax": argmax,
             "pool_size": (ph, pw), "strides": (sh, sw)}
    return y, cache


def maxpool2d_backward(dy, cache):
    """Backward of :func:`maxpool2d`: dy (N, OH, OW, C) -> dx (N, H, W, C), routed to first maxima."""
    if "x_pad_shape" in cache:                                   # made by the shared code (float16 ...)
        return xp_ops.maxpool2d_backward(dy, cache)
    argmax, (_, pw), (sh, sw) = cache["argmax"], cache["pool_size"], cache["strides"]
    check_dy_shape(dy, argmax.shape, "the pooled shape")
    dtype = dy.dtype
    if not _fast(dtype):                                         # e.g. float16 dy: route in float32
        dy = dy.astype(np.float32)
    dy = cupy.ascontiguousarray(dy)
    n, h, w, c = cache["x_shape"]
    dx = cupy.zeros(cache["x_shape"], dtype=dy.dtype)
    (top, _), (left, _) = cache["pads"]
    _launch(_pool_kernel("maxpool_backward", dy.dtype), dy.size,
            (dy, argmax, dx, np.int64(dy.size), np.int32(h), np.int32(w), np.int32(c),
             np.int32(dy.shape[1]), np.int32(dy.shape[2]), np.int32(pw), np.int32(sh), np.int32(sw),
             np.int32(top), np.int32(left)))
    return dx if dx.dtype == dtype else dx.astype(dtype)


def relu(z):
    """y = max(z, 0), one elementwise kernel (NaN stays NaN). Returns (y, cache = y)."""
    if not _fast(z.dtype):
        return xp_ops.relu(z)
    y = _relu_kernels()[0](z)
    return y, y


def relu_backward(dy, cache):
    """dz = dy where the forward output was positive, else dy * 0 (dy's dtype, as the reference)."""
    check_dy_shape(dy, cache.shape, "the ReLU's output shape")
    if not (_fast(dy.dtype) and _fast(cache.dtype)):
        return xp_ops.relu_backward(dy, cache)
    return _relu_kernels()[1](dy, cache)
