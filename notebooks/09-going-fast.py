# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 09 · Going fast: the Numba and CuPy backends, and a benchmark against TensorFlow
#
# **What you will build:** a chunked im2col convolution by hand, a convolution by Winograd's
# $F(2\times2, 3\times3)$ as 16 matrix products, a small Numba kernel (2x2 max-pooling with `prange`), a fused
# bias + ReLU kernel, and the FLOP count that says how fast a convolution *can* go.
# **What you will check:**
# 1. that the Numba backend gives the NumPy reference's numbers (float32, $\mathrm{rtol} = \mathrm{atol} = 10^{-5}$)
#    for every op, on its im2col **and** its Winograd paths, and for a whole U-Net, forward **and** backward;
# 2. how the backends compare with TensorFlow: a small benchmark run live, and the committed full-size results
#    (per model and per layer, against the machine's measured matrix-product peak).
#
# The layers never know which kernel ran: one switch, `unet_scratch.backend`, chooses.

# %%
import os
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"   # quiet TensorFlow (set before it is imported)

import inspect
import json

import numpy as np
import matplotlib.pyplot as plt
import unet_scratch as us
from unet_scratch import UNet, bench, ops
from unet_scratch.backend import available_backends, get_backend, set_backend, use_backend
from unet_scratch.keras_ref import import_tensorflow, import_keras
from unet_scratch.resources import repo_path
tf = import_tensorflow(); keras = import_keras()
tf.get_logger().setLevel("ERROR")          # no retracing notes from the benchmark's tf.functions

rng = np.random.default_rng(0)
keras.utils.set_random_seed(0)

# %% [markdown]
# ## 1. Three backends, one switch
#
# | backend | where its ops live | needs |
# |---|---|---|
# | `"numpy"` | `unet_scratch/ops/*.py`: the readable reference of chapters 01-05 | nothing |
# | `"numba"` | `unet_scratch/kernels/numba_ops.py` (+ `numba_conv.py`, `numba_loops.py`) | `pip install -e '.[numba]'` |
# | `"cupy"` | `unet_scratch/kernels/cupy_ops.py` (+ `xp_ops.py`) | an NVIDIA GPU, CUDA 12, `pip install -e '.[gpu]'` |
#
# Every backend exposes the **same functions with the same signatures**, e.g.
# `conv2d(x, w, b, strides, padding) -> (y, cache)` and `conv2d_backward(dy, cache) -> (dx, dw, db)`.
# A layer asks `backend.ops()` for the current namespace when its forward runs and keeps it for the matching
# backward. `set_backend(name)` switches for good, `with use_backend(name):` for one block.
# The choice of backend is the package's **only** global state.

# %%
backends = available_backends()            # which backends import on this machine
print("numpy backend present:", "numpy" in backends)
print("numba backend present:", "numba" in backends)
print("current backend:", get_backend())
with use_backend("numba"):
    print("inside the block:", get_backend(), "->", us.backend.ops().__name__)
print("after the block: ", get_backend())


# %% [markdown]
# **Setup: warm up Numba.** Numba compiles a kernel the first time it is called with a new combination of
# argument types, which takes seconds. In the default (serial) mode the package's kernels are compiled with
# `cache=True`, so the machine code is stored next to the source (`__pycache__/*.nbi, *.nbc`) and later
# processes only load it. With `UNET_SCRATCH_NUMBA_PARALLEL=1` the cache is off (`cache=not PARALLEL` in
# `kernels/numba_loops.py`): Numba's cache index does not record the `parallel` flag, so a shared cache would
# hand one mode's machine code to the other, and parallel mode compiles afresh in every process. This cell
# calls every kernel once, in float32 and float64, so that no compile time lands in a timing below.

# %%
def warm_up():
    for dtype in ("float32", "float64"):
        m = UNet(input_shape=(16, 16, 1), base_filters=2, depth=2, seed=0, dtype=dtype)
        xw = np.random.default_rng(0).random((1, 16, 16, 1)).astype(dtype)
        with use_backend("numba"):
            y = m.forward(xw, training=True)
            m.backward(np.ones_like(y))
            nb = us.backend.ops()
            for s in (1, 2):                         # the col2im and the strided paths
                yc, c = nb.conv2d(xw, np.ones((3, 3, 1, 2), dtype), None, s, "same")
                nb.conv2d_backward(yc, c)

warm_up()


# %% [markdown]
# ## 2. What each kernel does
#
# | file | what it holds |
# |---|---|
# | `kernels/numba_ops.py` | the Numba backend: the reference's names and signatures; chooses a fast path, falls back to the reference for other dtypes (float16) |
# | `kernels/numba_conv.py` | convolution as **chunked im2col + BLAS GEMM**: a block of output rows is gathered into a reused buffer of about 8 MB and multiplied straight into its slice of $y$ (`np.matmul(..., out=...)`); the input gradient of a stride-1 conv as a convolution with the flipped kernel when $C > F$ |
# | `kernels/numba_winograd.py` | 3x3 stride-1 convs with at least 16 channels on images of at least 32 x 32 by **Winograd's $F(2\times2, 3\times3)$**: 16 multiplies per 2 x 2 output tile instead of 36, as 16 GEMMs (section 3b); also the input gradient when $C \le F$ |
# | `kernels/numba_direct.py`, `numba_upconv.py`, `numba_narrow.py`, `numba_simd.py` | **direct** convolutions for layers with few weights ($C \cdot F \le 8192$, $F$ a multiple of the vector width): a register-blocked multiply-add tile written in LLVM vector code (`numba_simd`), no im2col buffer and no BLAS, rows split over both cores; the 2x2/2 transposed conv the same way; small-channel special cases (the first layer's $C = 1$, the $1 \times 1$ head) |
# | `kernels/numba_loops.py` | the compiled memory-bound loops around the GEMMs: `im2col_rows` (padding by a bounds check, no padded copy), `col2im_rows`, `add_bias_rows`, max-pool forward (max + index of the first maximum) and backward, ReLU, the pixel shuffle of the $2\times2$ stride-2 transposed conv, Winograd's input, kernel and output transforms |
# | `kernels/xp_ops.py` | the array logic written once for an array module `xp` (NumPy or CuPy): im2col by slicing, GEMMs, pooling |
# | `kernels/cupy_ops.py` | the GPU backend: `xp_ops` with `xp = cupy` (cuBLAS GEMMs) plus CUDA kernels for pooling and ReLU |
#
# The principle for the wide layers: **every FLOP-heavy product goes to BLAS** (OpenBLAS here, cuBLAS on the
# GPU), which already runs near the machine's peak (the narrow layers of small U-Nets are where BLAS's
# per-call overheads and im2col's copies dominate, which is why the direct kernels exist); Numba compiles only the copies, scatters and elementwise passes around it, which
# NumPy would run as several passes with temporary arrays. The loops are written with `prange` (parallel
# range) but compiled single-threaded by default: on a 2-core machine OpenBLAS keeps a worker thread spinning
# after each GEMM and a parallel Numba region fights it (`UNET_SCRATCH_NUMBA_PARALLEL=1` turns threads on).
# Fused kernels were tried too (bias and ReLU in the GEMM's epilogue) and measured within the noise, so the
# package keeps them separate (see `benchmarks/README.md`).

# %% [markdown]
# ## 3. im2col + GEMM, by chunks
#
# A 'same' convolution with a $K_H \times K_W$ kernel, stride 1, is
#
# $$y_{n,i,j,f} = b_f + \sum_{a=0}^{K_H-1} \sum_{q=0}^{K_W-1} \sum_{c=0}^{C-1} x^{\mathrm{pad}}_{n,\,i+a,\,j+q,\,c}\; w_{a,q,c,f}.$$
#
# im2col writes every window as one row of a matrix $X_{\mathrm{col}} \in \mathbb{R}^{(N\,OH\,OW) \times (K_H K_W C)}$;
# with $W_{\mathrm{mat}} = $ `w.reshape(KH*KW*C, F)` the whole convolution is **one matrix product**
# $Y = X_{\mathrm{col}} W_{\mathrm{mat}}$. The price: $X_{\mathrm{col}}$ is $K_H K_W = 9$ times larger than $x$.
# The Numba backend therefore gathers only a block of output rows at a time. Here it is by hand, with the
# reference's `im2col` on row blocks of the padded input, checked against both backends:

# %%
def conv2d_chunked(x, w, b, rows_per_chunk):
    # 'same', stride 1, odd kernel. x: (N, H, W, C), w: (KH, KW, C, F), b: (F,) -> y: (N, H, W, F)
    n, h, wd, c = x.shape
    kh, kw, _, f = w.shape
    x_pad = np.pad(x, ((0, 0), (kh // 2, kh // 2), (kw // 2, kw // 2), (0, 0)))
    wmat = w.reshape(kh * kw * c, f)
    y = np.empty((n, h, wd, f), dtype=x.dtype)
    for i0 in range(0, h, rows_per_chunk):
        i1 = min(h, i0 + rows_per_chunk)
        cols = ops.im2col(x_pad[:, i0:i1 + kh - 1], kh, kw, 1, 1)       # (N*(i1-i0)*W, KH*KW*C)
        y[:, i0:i1] = (cols @ wmat + b).reshape(n, i1 - i0, wd, f)
    return y

x = rng.standard_normal((2, 24, 20, 5), dtype=np.float32)
w = rng.standard_normal((3, 3, 5, 7), dtype=np.float32)
b = rng.standard_normal(7, dtype=np.float32)
y_ref = ops.conv2d(x, w, b, 1, "same")[0]
with use_backend("numba"):
    y_nb = us.backend.ops().conv2d(x, w, b, 1, "same")[0]
print("chunked by hand == reference:", np.allclose(conv2d_chunked(x, w, b, 5), y_ref, rtol=1e-5, atol=1e-5))
print("Numba backend   == reference:", np.allclose(y_nb, y_ref, rtol=1e-5, atol=1e-5))
full_cols_mb = 256 * 256 * 9 * 64 * 4 / 1e6
print(f"full cols matrix of the seed model's 256x256x64 conv: {full_cols_mb:.0f} MB; a chunk: about 8 MB")

# %% [markdown]
# ## 3b. Fewer multiplies: Winograd's $F(2\times2, 3\times3)$
#
# im2col does every multiply of the sum above. For a $3 \times 3$ kernel there is a cheaper way (Winograd's
# minimal filtering, brought to CNNs by Lavin & Gray, 2016). Take a tile of $2 \times 2$ output pixels: it
# depends on a $4 \times 4$ patch $d$ of the input, and done directly costs $2 \cdot 2 \cdot 3 \cdot 3 = 36$
# multiplies per (input, output) channel pair. With three fixed matrices,
#
# $$Y = A^T \left[ (G\,g\,G^T) \odot (B^T d\, B) \right] A$$
#
# with
#
# $$B^T = \begin{pmatrix} 1 & 0 & -1 & 0 \\ 0 & 1 & 1 & 0 \\ 0 & -1 & 1 & 0 \\ 0 & 1 & 0 & -1 \end{pmatrix}, \qquad
# G = \begin{pmatrix} 1 & 0 & 0 \\ \tfrac12 & \tfrac12 & \tfrac12 \\ \tfrac12 & -\tfrac12 & \tfrac12 \\ 0 & 0 & 1 \end{pmatrix},$$
#
# $$A^T = \begin{pmatrix} 1 & 1 & 1 & 0 \\ 0 & 1 & -1 & -1 \end{pmatrix},$$
#
# the same four outputs cost **16** multiplies (the elementwise product $\odot$ of two $4 \times 4$ matrices): 2.25x
# fewer. The transforms only add, subtract and halve. Summed over input channels, the 16 elementwise products
# become 16 matrix products, one per position of the $4 \times 4$ grid, and those go to BLAS. One tile, one
# channel, checked against the reference:

# %%
BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
G = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)

d = rng.standard_normal((4, 4))               # a 4 x 4 input patch
g = rng.standard_normal((3, 3))               # a 3 x 3 kernel
U, V = G @ g @ G.T, BT @ d @ BT.T             # both 4 x 4; U is computed once per kernel
Y = AT @ (U * V) @ AT.T                       # 16 multiplies in U * V: the 2 x 2 output tile
direct = ops.conv2d(d[None, :, :, None], g[:, :, None, None], None, 1, "valid")[0][0, :, :, 0]
print("Winograd tile:\n", Y.round(6), "\ndirect 3x3 conv ('valid' on the patch):\n", direct.round(6))
print("equal:", np.allclose(Y, direct, rtol=0, atol=1e-12))

from unet_scratch.kernels import numba_winograd
xw = rng.standard_normal((1, 32, 32, 256), dtype=np.float32)
ww = (rng.standard_normal((3, 3, 256, 128)) * np.sqrt(2 / (9 * 256))).astype(np.float32)
print("the backend picks Winograd for a 32x32x256 -> 128 conv:",
      numba_winograd.use_winograd((3, 3), (1, 1), 256, 128, (32, 32)))
with use_backend("numba"):
    y_w = us.backend.ops().conv2d(xw, ww, None, 1, "same")[0]
y_r = ops.conv2d(xw, ww, None, 1, "same")[0]
print("float32, Winograd vs reference: max |difference| / max |y| below 2e-6:",
      np.abs(y_w - y_r).max() / np.abs(y_r).max() < 2e-6, "| allclose(1e-5):", np.allclose(y_w, y_r, rtol=1e-5, atol=1e-5))

# %% [markdown]
# The backend uses it where the matrix products dominate: 3x3 stride-1 convs with at least 16 input and
# output channels and at least $32 \times 32$ outputs that are too wide for the direct kernels
# (`numba_winograd.use_winograd`; the first layer, $C = 1$,
# stays with im2col; below $32 \times 32$ transforming a $3 \times 3 \times 1024 \times 1024$ kernel costs what
# the smaller GEMMs save). Rounding differs from im2col's by a few units in the last place: about $10^{-6}$
# relative in float32, $10^{-15}$ in float64, well inside the course's tolerance.
#
# **Exercise 1 (Winograd, naive tiles to 16 matrix products).** Write `winograd_conv3x3(x, w)`: the 'valid'
# $3 \times 3$ stride-1 convolution (Keras's cross-correlation, no kernel flip) of $x$: $(N, H, W, C)$, with
# $H - 2$ and $W - 2$ even, by $w$: $(3, 3, C, F)$, giving $y$: $(N, H - 2, W - 2, F)$, in four steps:
#
# 1. the kernel transform $U_{:,:,c,f} = G\, w_{:,:,c,f}\, G^T$ for every channel pair: $U$ is $(4, 4, C, F)$;
# 2. the input tiles: output tile $(t, u)$ covers output pixels $2t, 2t+1$ and $2u, 2u+1$ and reads the
#    $4 \times 4$ input patch $d$ at rows $2t \dots 2t+3$, columns $2u \dots 2u+3$: neighbouring patches
#    **overlap** by 2 pixels. Transform each: $V = B^T d\, B$, per channel, $(N, T, U, 4, 4, C)$ in all, with
#    $T = (H-2)/2$, $U = (W-2)/2$;
# 3. the products: for each of the 16 positions $(i, j)$ of the $4 \times 4$ grid, one matrix product over the
#    channels, $M_{\ldots, i, j, :} = V_{\ldots, i, j, :}\, U_{i, j}$ ($C \to F$);
# 4. the output transform $Y = A^T M A$ per tile, $(N, T, U, 2, 2, F)$, then the tiles put back in place:
#    $(N, T, 2, U, 2, F) \to (N, H-2, W-2, F)$.
#
# `np.einsum` writes each step in one line (`"ia,abcf,jb->ijcf"` for step 1); loops over the tiles are fine
# too. The worked example is the one-tile cell above. The check compares with the reference in float64 and
# names the classic mistakes: the kernel flipped, $B$ and $B^T$ exchanged, the tiles put back by a reshape
# alone.

# %%
from unet_scratch.exercises.ch09 import check_bias_relu_rows, check_conv_flops, check_winograd_conv3x3

def winograd_conv3x3(x, w):
    ### BEGIN SOLUTION
    n, h, wd, c = x.shape
    t, u = (h - 2) // 2, (wd - 2) // 2
    U = np.einsum("ia,abcf,jb->ijcf", G, w, G)                          # (4, 4, C, F)
    rows = 2 * np.arange(t)[:, None] + np.arange(4)                     # (T, 4): overlapping patches
    cols = 2 * np.arange(u)[:, None] + np.arange(4)                     # (U, 4)
    d = x[:, rows[:, None, :, None], cols[None, :, None, :], :]         # (N, T, U, 4, 4, C)
    V = np.einsum("ia,ntuabc,jb->ntuijc", BT, d, BT)                    # B^T d B
    M = np.einsum("ntuijc,ijcf->ntuijf", V, U)                          # 16 GEMMs over the channels
    Y = np.einsum("pi,ntuijf,qj->ntupqf", AT, M, AT)                    # (N, T, U, 2, 2, F)
    return Y.transpose(0, 1, 3, 2, 4, 5).reshape(n, 2 * t, 2 * u, w.shape[3])
    ### END SOLUTION

check_winograd_conv3x3(winograd_conv3x3);

# %% [markdown]
# ## 4. A small readable Numba kernel
#
# A Numba kernel is a plain Python loop nest over NumPy arrays, decorated with `@njit`: Numba infers the types
# and compiles it to machine code. Here is the package's bias kernel, as the course ships it:

# %%
from unet_scratch.kernels import numba_loops
print(inspect.getsource(numba_loops.add_bias_rows.py_func))

# %% [markdown]
# And one we write ourselves: $2 \times 2$ max-pooling, stride 2. `prange` marks the loop whose
# iterations are independent (each output row is written by one iteration only), so that Numba may run them
# on several threads when compiled with `parallel=True`; here, as in the package, it runs serially. The
# package's version (`numba_loops.maxpool_forward`) also records the index of the first maximum for the
# backward pass.

# %%
from numba import njit, prange

@njit(cache=True)
def maxpool2x2(x, y):
    # x: (N, H, W, C) with even H, W; y: (N, H//2, W//2, C) is overwritten with each window's maximum
    n_, oh, ow, c = y.shape
    for t in prange(n_ * oh):                  # one output row per iteration
        n, i = t // oh, t % oh
        for j in range(ow):
            for ch in range(c):
                m = x[n, 2 * i, 2 * j, ch]
                for a in range(2):
                    for q in range(2):
                        v = x[n, 2 * i + a, 2 * j + q, ch]
                        if v > m:
                            m = v
                y[n, i, j, ch] = m

xp = rng.standard_normal((2, 8, 6, 3), dtype=np.float32)
yp = np.empty((2, 4, 3, 3), dtype=np.float32)
maxpool2x2(xp, yp)
print("our Numba max-pool == reference maxpool2d:", np.array_equal(yp, ops.maxpool2d(xp, 2)[0]))

# %% [markdown]
# **Exercise 2 (fused bias + ReLU).** Write a Numba kernel `bias_relu_rows(y, b)` that overwrites
# $y \in \mathbb{R}^{M \times F}$ with $\max(y + b, 0)$, row by row, **in place** (one pass instead of the two of
# `add_bias_rows` and `relu_forward`). Use `@njit` and a `prange` over the rows. Worked example: a row
# $(-1, 0.5)$ with $b = (0.5, -1)$ becomes $(0, 0)$; $(2, 3)$ becomes $(2.5, 2)$. The check names the classic
# mistakes: the ReLU before the bias, either one forgotten, the result returned instead of written into $y$.

# %%
@njit(cache=True)
def bias_relu_rows(y, b):
    ### BEGIN SOLUTION
    m, f = y.shape
    for r in prange(m):
        for k in range(f):
            v = y[r, k] + b[k]
            y[r, k] = v if v > 0.0 else 0.0
    ### END SOLUTION

check_bias_relu_rows(bias_relu_rows);


# %% [markdown]
# ## 5. Verification: Numba against the NumPy reference
#
# Each op on random inputs in float32, the Numba backend against the reference, forward outputs and every
# backward output, with the float32 tolerance taken relative to each output's scale:
# $\max |a - b| \le 10^{-5} \max(1, \max |b|)$. (An element-wise $10^{-5} + 10^{-5}|b|$ would fail on
# rounding alone: a weight gradient here sums $2 \cdot 32 \cdot 32 = 2048$ products per entry, values reach
# about 160, and a backend that adds them in another order differs by $\sim 10^{-4}$ on entries near zero,
# a relative error of $6 \cdot 10^{-7}$.) The sizes are chosen so that **all three** convolution paths
# run: a conv with few weights ($C \cdot F$ small, $F$ a multiple of the vector width) through the direct
# kernels (`numba_direct.py`, no im2col buffer), a wide one ($256 \to 128$ channels at $32 \times 32$) through
# Winograd, and a $16 \times 16$ conv with 4 filters through im2col. The last column says which.

# %%
from unet_scratch.kernels import numba_direct
from unet_scratch.kernels.numba_winograd import use_winograd

def same(a, b):
    if isinstance(a, tuple):
        return all(same(p, q) for p, q in zip(a, b))
    if a is None or b is None:
        return a is None and b is None
    return a.dtype == b.dtype and a.shape == b.shape and \
        float(np.max(np.abs(a - b))) <= 1e-5 * max(1.0, float(np.max(np.abs(b))))

def conv_path(x, w, stride):
    out = (x.shape[1] // stride, x.shape[2] // stride)
    if numba_direct.use_direct(w.shape[:2], w.shape[2], w.shape[3], out, w.dtype):
        return "direct"
    return "Winograd" if use_winograd(w.shape[:2], (stride, stride), w.shape[2], w.shape[3], out) else "im2col"

r = np.random.default_rng(1)
x8 = r.standard_normal((2, 16, 16, 8), dtype=np.float32)
x16 = r.standard_normal((2, 32, 32, 16), dtype=np.float32)
w16 = r.standard_normal((3, 3, 16, 16), dtype=np.float32) * 0.1
w32 = r.standard_normal((3, 3, 16, 32), dtype=np.float32) * 0.1
x256 = r.standard_normal((1, 32, 32, 256), dtype=np.float32)
w256 = r.standard_normal((3, 3, 256, 128), dtype=np.float32) * 0.02
w84 = r.standard_normal((3, 3, 8, 4), dtype=np.float32) * 0.2
cases = {
    "conv2d 3x3 32x32, 16->16":  ("conv2d", (x16, w16, r.standard_normal(16, dtype=np.float32), 1, "same"),
                                  conv_path(x16, w16, 1)),
    "conv2d 3x3 32x32, 16->32":  ("conv2d", (x16, w32, None, 1, "same"), conv_path(x16, w32, 1)),
    "conv2d 3x3 32x32, 256->128": ("conv2d", (x256, w256, None, 1, "same"), conv_path(x256, w256, 1)),
    "conv2d 3x3 16x16, 8->4":    ("conv2d", (x8, w84, r.standard_normal(4, dtype=np.float32), 1, "same"),
                                  conv_path(x8, w84, 1)),
    "conv2d 3x3 stride 2":       ("conv2d", (x16, w16, None, 2, "valid"), conv_path(x16, w16, 2)),
    "conv2d_transpose 2x2/2":    ("conv2d_transpose", (x8, r.standard_normal((2, 2, 4, 8), dtype=np.float32) * 0.2,
                                                       r.standard_normal(4, dtype=np.float32), 2, "same"), ""),
    "maxpool2d 2x2":             ("maxpool2d", (x16, 2), ""),
    "relu":                      ("relu", (x16,), ""),
}
for label, (name, args, path) in cases.items():
    outs = {}
    for backend_name in ("numpy", "numba"):
        with use_backend(backend_name):
            k = us.backend.ops()
            y, cache = getattr(k, name)(*args)
            dy = np.random.default_rng(2).standard_normal(y.shape).astype(np.float32)
            outs[backend_name] = (y, getattr(k, name + "_backward")(dy, cache))
    print(f"{label:<27} forward {same(outs['numba'][0], outs['numpy'][0])}, "
          f"backward {same(outs['numba'][1], outs['numpy'][1])}  {path}")


# %% [markdown]
# And a whole U-Net (depth 3, 16 filters at the top, $64 \times 64$, dropout on with the same seeds on both
# sides): the output, the input gradient and every parameter gradient. At this width every $3 \times 3$ conv
# has few enough weights for the direct kernels; the printed line says which path each conv takes.

# %%
def unet_pass(backend_name):
    model = UNet(input_shape=(64, 64, 1), base_filters=16, depth=3, seed=3)
    xu = np.random.default_rng(4).random((2, 64, 64, 1), dtype=np.float32)
    with use_backend(backend_name):
        y = model.forward(xu, training=True)
        dy = np.random.default_rng(5).standard_normal(y.shape).astype(np.float32)
        dx = model.backward(dy)
    return model, y, dx, {k: v.copy() for k, v in model.grads.items()}

net, y0, dx0, g0 = unet_pass("numpy")
_, y1, dx1, g1 = unet_pass("numba")
convs = [l for l in net.layers if type(l).__name__ == "Conv2D"]
paths = {}
for l in convs:
    xs = np.empty(l.input_shape[1:], np.float32)[None]
    paths.setdefault(conv_path(xs, l.params["kernel"], 1), []).append(l.name)
print(f"paths of the {len(convs)} convolutions:", "; ".join(f"{k} {len(v)}" for k, v in sorted(paths.items())))
print("U-Net output, Numba == NumPy:        ", same(y1, y0))
print("U-Net input gradient, Numba == NumPy:", same(dx1, dx0))
print(f"all {len(g0)} parameter gradients agree:   ", g0.keys() == g1.keys() and all(same(g1[k], g0[k]) for k in g0))
worst = max(np.max(np.abs(g1[k] - g0[k]) / (1e-5 + np.abs(g0[k]))) for k in g0)
print("worst |difference| / (1e-5 + |reference|) below 1:", worst < 1)


# %% [markdown]
# ## 6. Counting FLOPs: how fast *can* a convolution go?
#
# One output value of a $K \times K$ convolution with $C$ input channels costs $K^2 C$ multiply-adds, so a
# stride-1 'same' layer with $F$ filters on an $H \times W$ image costs
#
# $$\mathrm{FLOPs} = 2 \, H W K^2 C F$$
#
# (a multiply-add counts as 2 FLOPs). Dividing by the bytes that must at least be moved, $s\,(HWC + K^2CF + HWF)$
# for $s$-byte floats, gives the **arithmetic intensity** (FLOPs per byte). A layer with a high intensity can run
# at the processor's compute peak; one with a low intensity waits for memory. A convolution has a high intensity;
# the im2col copy that feeds it has almost none, which is why the package keeps that copy small and in cache.
#
# **Exercise 3.** Write `conv_flops(h, w, c, f, k)`: the FLOPs of one stride-1 'same' $k \times k$ convolution
# (batch 1, bias adds not counted), as an `int`. Worked example: the seed model's first layer,
# $256 \times 256$, $C = 1$, $F = 64$, $K = 3$: $2 \cdot 256 \cdot 256 \cdot 9 \cdot 1 \cdot 64 = 75{,}497{,}472$.

# %%
def conv_flops(h, w, c, f, k):
    ### BEGIN SOLUTION
    return 2 * h * w * k * k * c * f
    ### END SOLUTION

check_conv_flops(conv_flops);


# %% [markdown]
# The benchmark counts FLOPs the same way (`bench.forward_gflop`), summed over the 19 convolutions and 4
# transposed convolutions of the article's model (23 conv layers, as the paper counts them); the tests check the total, 96.2 GFLOP per $256 \times 256$
# image. Per layer (computed with the package's own count, not the exercise), every conv with many channels
# does far more arithmetic per byte than memory can starve; only the first conv ($C = 1$) and the $1\times1$
# head are memory-bound:

# %%
seed = UNet(input_shape=(256, 256, 1), seed=0)
print(f"seed model forward: {bench.forward_gflop(seed):.1f} GFLOP")
specs = [s for s in bench.layer_specs(seed) if s["op"] == "Conv2D"]
labels = [bench.spec_label(s) for s in specs]
intensity = []
for s in specs:
    _, h, w_, c = s["x_shape"]
    k, _, _, f = s["param"]
    intensity.append(bench.spec_gflop(s) * 1e9 / (4 * (h * w_ * c + k * k * c * f + h * w_ * f)))
fig, ax = plt.subplots(figsize=(8, 4.2), dpi=100)
ax.barh(labels, intensity, color=plt.cm.viridis(0.3))
ax.set_xscale("log"); ax.invert_yaxis()
ax.set_xlabel("arithmetic intensity (FLOP per byte moved, float32, log scale)")
ax.set_title("Wide 3x3 convs: 100+ FLOP per byte (compute-bound); the C = 1 conv and 1x1 head: few", fontsize=10)
ax.tick_params(axis="y", labelsize=7)
fig.tight_layout(); plt.show()

# %% [markdown]
# ## 7. The benchmark against TensorFlow, live (small size)
#
# `unet_scratch/bench.py` times every backend on the same weights and inputs, in one process, taking turns call
# by call (numpy, numba, tf, numpy, ...) with a short pause between calls, and reports medians. TensorFlow runs
# the Keras twin of the model (`keras_ref.to_keras`), forward and training step each compiled with
# `tf.function`. The full run (`python -m unet_scratch bench`) takes minutes; here we reuse its pieces on the
# small model of the committed table (128 x 128, 16 filters at the top, batch 1), 3 repeats.
#
# Timings depend on the machine and on whatever else runs on it, so this cell's output is not compared by the
# tests (`# NBVAL_IGNORE_OUTPUT`). On a shared 2-core machine the live numbers can be far noisier than the
# committed ones.

# %%
# NBVAL_IGNORE_OUTPUT
small_model, xs, ts = bench.model_and_data(dict(input_shape=(128, 128, 1), base_filters=16))
calls = {name: bench.scratch_model_calls(small_model, name, xs, ts) for name in ("numpy", "numba")}
calls["tf"] = bench.tf_model_calls(small_model, xs, ts)
gflop = bench.forward_gflop(small_model)
live = {}
for i, part in enumerate(("forward", "train_step")):
    stats = bench.time_round_robin({n: c[i] for n, c in calls.items()}, repeats=3, warmup=1, settle=0.05)
    live[part] = bench.with_ratios(stats, gflop * (1 if i == 0 else 3))
    print(f"{part:<11}" + "  ".join(f"{n} {s['median_s'] * 1e3:6.1f} ms ({s['ratio_to_tf']:.2f}x TF)"
                                   for n, s in live[part].items()))
print(f"float32 GEMM peak here, now: {bench.gemm_peak_gflops(1024):.0f} GFLOP/s")

# %% [markdown]
# ## 8. The committed full-size results
#
# `benchmarks/results/bench-full.json` holds the latest full run on a course machine (its `meta` names the
# CPU, the core count and every library version; the course's shared 2-core machines differ from session to
# session, and `benchmarks/README.md` keeps the runs on an Intel Xeon and an AMD EPYC side by side). Its
# structure: `meta` (machine and versions), `gemm_peak_gflops` (a $4096^3$ float32 `np.matmul`), `models` (per
# model, per pass `forward` / `train_step`, per backend: `median_s`, all `times_s`, `gflops`, `ratio_to_tf`),
# `layers` (each distinct layer shape of the seed model with `forward` and `backward` stats) and
# `conv_strategies`.

# %%
results = json.loads(repo_path("benchmarks/results/bench-full.json").read_text())
print("top-level keys:", list(results))
print("machine:", results["meta"]["cpu"], "| cores:", results["meta"]["cores"], "| backends:", results["meta"]["backends"])
m0 = results["models"][0]
print("a model entry:", list(m0), "| per backend:", list(m0["forward"]["numba"]))
peak = results["gemm_peak_gflops"]
print(f"GEMM peak: {peak:.0f} GFLOP/s")
print(f"\n{'model':<26}{'pass':<12}{'numpy/TF':>9}{'numba/TF':>9}")
for m in results["models"]:
    for part in ("forward", "train_step"):
        st = m[part]
        print(f"{m['name'] + ' ' + str(tuple(m['config']['input_shape'])):<26}{part:<12}"
              f"{st['numpy']['ratio_to_tf']:>9.2f}{st['numba']['ratio_to_tf']:>9.2f}")

# %% [markdown]
# The same run as the benchmark wrote it in Markdown (`bench-full.md`), its whole-model table (times in ms,
# then the time ratios to TensorFlow, then GFLOP/s):

# %%
from IPython.display import Markdown
report = repo_path("benchmarks/results/bench-full.md").read_text()
whole_model = report.split("## Whole model")[1].split("\n\n")[1]     # the table after the heading
Markdown(whole_model)

# %%
fig, ax = plt.subplots(1, 2, figsize=(11, 4.2), dpi=100, gridspec_kw=dict(width_ratios=[1, 1.6]))
groups = [(m["name"], part) for m in results["models"] for part in ("forward", "train_step")]
pos = np.arange(len(groups))
for k, (name, colour) in enumerate([("numpy", 0.2), ("numba", 0.6)]):
    ratios = [next(m for m in results["models"] if m["name"] == g)[p][name]["ratio_to_tf"] for g, p in groups]
    ax[0].bar(pos + (k - 0.5) * 0.38, ratios, 0.38, label=name, color=plt.cm.viridis(colour))
ax[0].axhline(1, color="k", lw=1, ls="--", label="TensorFlow")
ax[0].set_xticks(pos, [f"{g}\n{p.replace('_', ' ')}" for g, p in groups], fontsize=8)
ax[0].set_ylabel("time / TensorFlow's time (lower is faster)")
numba_ratios = [m[p]["numba"]["ratio_to_tf"] for m in results["models"] for p in ("forward", "train_step")]
ax[0].set_title(f"Whole model: Numba at {min(numba_ratios):.2f}-{max(numba_ratios):.2f}x TensorFlow's time",
                fontsize=10)
ax[0].legend(fontsize=8)

convs = [l for l in results["layers"] if l["op"] != "MaxPooling2D"]
pos = np.arange(len(convs))
for k, (name, colour) in enumerate([("numba", 0.6), ("tf", 0.9)]):
    ax[1].barh(pos + (k - 0.5) * 0.4, [l["forward"][name]["gflops"] for l in convs], 0.4,
               label=f"{name} forward", color=plt.cm.viridis(colour))
ax[1].axvline(peak, color="k", lw=1, ls="--", label=f"GEMM peak ({peak:.0f})")
ax[1].set_yticks(pos, [l["label"] for l in convs], fontsize=6); ax[1].invert_yaxis()
ax[1].set_xlabel("GFLOP/s (forward, batch 1)")
ax[1].set_title("Per layer, forward (direct-conv FLOPs: Winograd layers can pass the GEMM peak)", fontsize=10)
ax[1].legend(fontsize=7, loc="lower right")
fig.tight_layout(); plt.show()

# %% [markdown]
# What the figure says (and `benchmarks/README.md` explains in full, with the earlier Intel run beside it):
# * On the committed run (2-core AMD EPYC), the Numba backend does the seed model's forward pass in 0.83x
#   TensorFlow's time and a training step in 0.67x (0.86x and 0.65x on the run before it); the NumPy reference,
#   the code of the chapters, takes 2.0x and 1.1-1.3x. On an Intel Xeon with AVX-512, before Winograd, Numba
#   was at 1.11-1.16x and 1.16-1.22x.
# * The layers done by Winograd (section 3b) show **more GFLOP/s than the GEMM peak**: the count is the direct
#   convolution's multiply-adds, and Winograd does 2.25x fewer of them. That is why it wins.
# * The first layer ($C = 1$) does so little arithmetic per pixel that no one gets near the peak, and the
#   $16 \times 16$ layers keep im2col: there, transforming the $3 \times 3 \times 1024 \times 1024$ kernel costs
#   what the smaller GEMMs save.
# * The small configuration (16 filters at the top, $128 \times 128$) runs its forward pass faster in TensorFlow (Numba 1.4x; a step 1.0-1.3x): with so few
#   channels, per-op overheads dominate, not arithmetic.

# %% [markdown]
# ## 9. CuPy: the same ops on a GPU
#
# `kernels/cupy_ops.py` imports only where CuPy is installed **and** a CUDA GPU answers; otherwise
# `set_backend("cupy")` raises a `RuntimeError` that says what to install. On a GPU machine:
#
# ```python
# from unet_scratch.kernels import to_device
# import cupy
# set_backend("cupy"); to_device(model, "gpu")
# y = model.forward(cupy.asarray(x))
# ```
#
# Its float32 matrix products run in full float32 (TensorFloat-32 would break the $10^{-5}$ agreement, so the
# module warns if `CUPY_TF32=1`). Whether it is present differs from machine to machine, so the next cell's
# output is not compared by the tests.

# %%
# NBVAL_IGNORE_OUTPUT
print("backends available here:", available_backends())
try:
    set_backend("cupy")
    print("cupy selected")
except RuntimeError as err:
    print("RuntimeError:", err)
finally:
    set_backend("numpy")

# %% [markdown]
# ## Exercises in this chapter
#
# 1. `winograd_conv3x3(x, w)`: a 3x3 convolution by Winograd's $F(2\times2, 3\times3)$, as 16 matrix
#    products over the channels (section 3b).
# 2. `bias_relu_rows(y, b)`: a fused bias + ReLU Numba kernel, in place (section 4).
# 3. `conv_flops(h, w, c, f, k)`: the FLOPs of a stride-1 'same' convolution (section 6).
#
# Further (no check): time `conv2d_chunked` for `rows_per_chunk` = 1, 8, 64 on a 128 x 128 x 64 input with
# 64 filters, and explain the curve; set `UNET_SCRATCH_NUMBA_PARALLEL=1` before importing the package and
# time `maxpool2d` again.
