"""The CuPy backend: the reference ops' names and signatures, on an NVIDIA GPU.

``backend.set_backend("cupy")`` selects it; move the weights first with
``unet_scratch.kernels.to_device(model, "gpu")`` and pass CuPy arrays (``cupy.asarray(x)``).

What runs where:
    matrix products    cuBLAS through ``cupy.matmul`` / ``@`` (im2col + GEMM, as the reference)
    im2col, col2im     CuPy slicing, shared with the CPU in ``xp_ops`` (tested there with NumPy)
    max pooling        two CUDA kernels (``cupy.RawModule``): max + first argmax, and the routing
                       of dy with ``atomicAdd`` (windows may overlap)
    ReLU               ``cupy.ElementwiseKernel``: one pass forward, one backward
    dropout            the mask is drawn on the CPU from the layer's NumPy generator, exactly as the
                       reference draws it, then copied to the GPU: same seed, same mask, any backend

Precision. CuPy computes float32 matrix products in full float32 unless the environment variable
``CUPY_TF32=1`` asks for TensorFloat-32 (10-bit mantissa); importing this module with it set warns,
because TF32 breaks the rtol = atol = 1e-5 agreement with the reference that the tests check.
(TensorFlow, in contrast, uses TF32 by default on Ampere and newer GPUs; ``NVIDIA_TF32_OVERRIDE=0``
turns it off there.)

Importing this module raises ImportError when CuPy or a CUDA GPU is missing, so that
``backend.set_backend("cupy")`` reports a clear RuntimeError.
"""
from __future__ import annotations

import os
import warnings

try:
    import cupy
except ImportError as err:                                        # pragma: no cover - no cupy in CI
    raise ImportError("CuPy is not installed: pip install -e '.[gpu]'") from err
try:
    _N_GPUS = cupy.cuda.runtime.getDeviceCount()
except Exception as err:                                          # pragma: no cover - no GPU in CI
    raise ImportError(f"CuPy is installed but no CUDA GPU answers ({type(err).__name__}: {err})") from err
if _N_GPUS < 1:                                                   # pragma: no cover
    raise ImportError("CuPy is installed but no CUDA GPU is visible (CUDA_VISIBLE_DEVICES?)")

import numpy as np  # noqa: E402

from ..checks import check_dy_shape, pool_args  # noqa: E402
from . import xp_ops  # noqa: E402

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
// of the FIRST maximum (strict >), padding counting as -inf.
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
            if (v > best) { best = v; at = a * PW + q; }
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

_relu = cupy.ElementwiseKernel("T z", "T y", "y = z > (T)0 ? z : (T)0", "unet_relu")
_relu_backward = cupy.ElementwiseKernel("T dy, T y", "T dz", "dz = y > (T)0 ? dy : (T)0",
                                        "unet_relu_backward")
_CTYPE = {np.dtype(np.float32): "float", np.dtype(np.float64): "double"}
_THREADS = 256


def _pool_kernel(name, dtype):
    """The compiled pooling kernel ``name`` for dtype (the module is compiled once, on first use)."""
    global _pool_module
    if np.dtype(dtype) not in _CTYPE:
        raise TypeError(f"max pooling on the GPU supports float32 and float64, got {dtype}")
    if _pool_module is None:
        _pool_module = cupy.RawModule(code=_POOL_SOURCE, options=("-std=c++14",),
                                      name_expressions=_POOL_NAMES)
    return _pool_module.get_function(f"{name}<{_CTYPE[np.dtype(dtype)]}>")


def _launch(kernel, total, args):
    blocks = (total + _THREADS - 1) // _THREADS
    if blocks:
        kernel((blocks,), (_THREADS,), args)


# ----------------------------------------------------------------------------- the ops


def conv2d(x, w, b=None, strides=(1, 1), padding="valid"):
    """Conv2D forward on the GPU. x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) or None -> (y, cache)."""
    return xp_ops.conv2d(x, w, b, strides, padding, xp=cupy)


def conv2d_backward(dy, cache):
    """Backward of :func:`conv2d`: dy (N, OH, OW, F) -> (dx, dw, db)."""
    return xp_ops.conv2d_backward(dy, cache, xp=cupy)


def conv2d_transpose(x, w, b=None, strides=(1, 1), padding="valid"):
    """Conv2DTranspose forward on the GPU. x: (N, H, W, C_in), w: (KH, KW, F, C_in) -> (y, cache)."""
    return xp_ops.conv2d_transpose(x, w, b, strides, padding, xp=cupy)


def conv2d_transpose_backward(dy, cache):
    """Backward of :func:`conv2d_transpose`: dy (N, OH, OW, F) -> (dx, dw, db)."""
    return xp_ops.conv2d_transpose_backward(dy, cache, xp=cupy)


def maxpool2d(x, pool_size=(2, 2), strides=None, padding="valid"):
    """MaxPooling2D forward: x (N, H, W, C) -> (y, cache); one CUDA thread per output value."""
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
    argmax, (_, pw), (sh, sw) = cache["argmax"], cache["pool_size"], cache["strides"]
    check_dy_shape(dy, argmax.shape, "the pooled shape")
    dy = cupy.ascontiguousarray(dy)
    n, h, w, c = cache["x_shape"]
    dx = cupy.zeros(cache["x_shape"], dtype=dy.dtype)
    (top, _), (left, _) = cache["pads"]
    _launch(_pool_kernel("maxpool_backward", dy.dtype), dy.size,
            (dy, argmax, dx, np.int64(dy.size), np.int32(h), np.int32(w), np.int32(c),
             np.int32(dy.shape[1]), np.int32(dy.shape[2]), np.int32(pw), np.int32(sh), np.int32(sw),
             np.int32(top), np.int32(left)))
    return dx


def relu(z):
    """y = max(z, 0), one elementwise kernel. Returns (y, cache = y)."""
    y = _relu(z)
    return y, y


def relu_backward(dy, cache):
    """dz = dy where the forward output was positive, else 0."""
    check_dy_shape(dy, cache.shape, "the ReLU's output shape")
    return _relu_backward(dy, cache)


def sigmoid(z):
    """Logistic sigmoid, numerically stable. Returns (y, cache = y)."""
    return xp_ops.sigmoid(z, xp=cupy)


def sigmoid_backward(dy, cache):
    """dz = dy * y * (1 - y)."""
    return xp_ops.sigmoid_backward(dy, cache, xp=cupy)


def softmax(z, axis=-1):
    """Softmax along ``axis``. Returns (y, cache)."""
    return xp_ops.softmax(z, axis, xp=cupy)


def softmax_backward(dy, cache):
    """dz = y * (dy - sum(dy * y)) along the softmax axis."""
    return xp_ops.softmax_backward(dy, cache, xp=cupy)


def dropout(x, rate, rng, training=False):
    """Inverted dropout; the mask comes from the NumPy generator ``rng`` (as the reference), on the CPU."""
    return xp_ops.dropout(x, rate, rng, training, xp=cupy)


def dropout_backward(dy, cache):
    """dz = dy * mask / (1 - rate), or dy when the forward pass was not training."""
    return xp_ops.dropout_backward(dy, cache, xp=cupy)


def concatenate(xs, axis=-1):
    """Concatenate a list of arrays along ``axis``. Returns (y, cache)."""
    return xp_ops.concatenate(xs, axis, xp=cupy)


def concatenate_backward(dy, cache):
    """Split dy back into one gradient per input."""
    return xp_ops.concatenate_backward(dy, cache, xp=cupy)


def upsample2d(x, size=(2, 2)):
    """Nearest-neighbour up-sampling (a broadcast copy on the GPU). Returns (y, cache)."""
    return xp_ops.upsample2d(x, size, xp=cupy)


def upsample2d_backward(dy, cache):
    """Sum dy over each up-sampled block."""
    return xp_ops.upsample2d_backward(dy, cache, xp=cupy)
