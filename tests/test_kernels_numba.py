"""The Numba backend against the NumPy reference: every op on random shapes, strides and paddings, in
float32 and float64, then the whole U-Net with ``set_backend("numba")`` against ``"numpy"``.

Tolerances (``assert_same``): float32 rtol = atol = 1e-5, float64 rtol = atol = 1e-12; dtypes must match.
The direct kernels (``numba_direct.py``, register tiles from ``numba_simd.py``) sum in another order than
BLAS, so they are held to the same numbers relative to the output's scale (``assert_close``: atol = tol x
max |expected|). The reference itself is checked by finite differences and against Keras; here one float64
gradient check per op family confirms the fast backward directly (norm-based rel_error < 1e-7).
"""
import numpy as np
import pytest

pytest.importorskip("numba", reason="Numba not installed: pip install -e '.[numba]'")

from hypothesis import given, settings, strategies as st  # noqa: E402

import unet_scratch.ops as ref  # noqa: E402
from unet_scratch import UNet, backend, use_backend  # noqa: E402
from unet_scratch.gradcheck import numeric_gradient, rel_error  # noqa: E402
from unet_scratch.kernels import (numba_conv, numba_direct as direct, numba_loops, numba_narrow as narrow,  # noqa: E402
                                  numba_ops as nb, numba_simd, numba_upconv as upconv, numba_winograd)
from conftest import TOL, assert_same  # noqa: E402  (tests/conftest.py: dtype, shape, TOL by dtype)

GRADCHECK_TOL = 1e-7


def _rand(rng, shape, dtype):
    return rng.standard_normal(shape).astype(dtype)


def assert_close(actual, expected):
    """Same dtype and shape; |actual - expected| <= tol * (max |expected| + |expected|), tol = TOL[dtype]
    (1e-5 float32, 1e-12 float64): rtol = atol = tol relative to the output's scale. Tuples recurse."""
    if isinstance(expected, (tuple, list)):
        assert len(actual) == len(expected)
        for a, e in zip(actual, expected):
            assert_close(a, e)
        return
    if expected is None:
        assert actual is None
        return
    assert actual.dtype == expected.dtype and actual.shape == expected.shape, (actual.dtype, actual.shape)
    t = TOL[np.dtype(expected.dtype)]
    np.testing.assert_allclose(actual, expected, rtol=t, atol=t * float(np.abs(expected).max(initial=0.0)))


def test_assert_close_catches_a_wrong_answer(rng):
    y = _rand(rng, (2, 3, 4, 5), np.float32) * 100
    assert_close(y + 1e-4, y)                                    # 1e-6 of the scale: rounding
    with pytest.raises(AssertionError):
        assert_close(y + 2e-2 * (np.arange(y.size).reshape(y.shape) == 7), y)   # one wrong number
    with pytest.raises(AssertionError):
        assert_close(y.astype(np.float64), y)


def test_assert_same_catches_a_wrong_answer(rng):
    y = _rand(rng, (2, 3, 4, 5), np.float32)
    with pytest.raises(AssertionError):
        assert_same(y * (1 + 1e-4), y)
    with pytest.raises(AssertionError):
        assert_same(y.astype(np.float64), y)


def test_every_reference_name_exists():
    names = [n for n in dir(ref) if not n.startswith("_") and callable(getattr(ref, n))]
    missing = [n for n in names if not hasattr(nb, n)]
    assert not missing, f"numba_ops lacks {missing}"
    assert nb.dropout is ref.dropout                      # re-exported: the same random numbers


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("strides", [(1, 1), (2, 2), (1, 2)])
@pytest.mark.parametrize("kernel", [(1, 1), (2, 2), (3, 3), (3, 2)])
def test_conv2d_matches_reference(rng, dtype, padding, strides, kernel):
    x = _rand(rng, (2, 9, 8, 3), dtype)
    w, b = _rand(rng, (*kernel, 3, 4), dtype), _rand(rng, (4,), dtype)
    for bias in (b, None):
        y_ref, cache_ref = ref.conv2d(x, w, bias, strides, padding)
        y, cache = nb.conv2d(x, w, bias, strides, padding)
        assert_same(y, y_ref)
        dy = _rand(rng, y.shape, dtype)
        assert_same(nb.conv2d_backward(dy, cache), ref.conv2d_backward(dy, cache_ref))


@pytest.mark.parametrize("strides", [(1, 1), (2, 2)])
def test_conv2d_in_many_chunks(rng, monkeypatch, strides):
    """Tiny chunks (3 output rows, crossing image boundaries) give the same numbers as one big GEMM."""
    monkeypatch.setattr(numba_conv, "CHUNK_BYTES", 1)
    monkeypatch.setattr(numba_conv, "MIN_CHUNK_PIXELS", 3 * 4)
    monkeypatch.setattr(numba_conv, "MIN_WGRAD_PIXELS", 3 * 4)
    x, w, b = (_rand(rng, shape, np.float64) for shape in ((3, 8, 8, 5), (3, 3, 5, 2), (2,)))
    y_ref, cache_ref = ref.conv2d(x, w, b, strides, "same")
    y, cache = nb.conv2d(x, w, b, strides, "same")
    assert_same(y, y_ref)
    dy = _rand(rng, y.shape, np.float64)
    assert_same(nb.conv2d_backward(dy, cache), ref.conv2d_backward(dy, cache_ref))


@pytest.fixture
def winograd_everywhere(monkeypatch):
    """Winograd for every 3x3 stride-1 conv, however small, in blocks of one tile row (direct kernels off)."""
    monkeypatch.setattr(nb, "DIRECT", False)
    monkeypatch.setattr(numba_winograd, "MIN_CHANNELS", 1)
    monkeypatch.setattr(numba_winograd, "MIN_IMAGE_TILES", 1)
    monkeypatch.setattr(numba_winograd, "CHUNK_BYTES", 1)
    monkeypatch.setattr(numba_winograd, "MIN_TILES", 1)


def test_winograd_transforms_are_the_papers_matrices(rng):
    """The compiled transforms equal B^T d B, G g G^T and A^T M A written as matrix products."""
    bt = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.float64)
    g_ = np.array([[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]])
    at = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.float64)
    d, g = _rand(rng, (1, 4, 4, 1), np.float64), _rand(rng, (3, 3, 1, 1), np.float64)
    v, u = np.empty((16, 1, 1)), np.empty((16, 1, 1))
    numba_loops.winograd_input(d, 0, 1, 1, 1, 0, 0, v)
    numba_loops.winograd_kernel(g, u)
    np.testing.assert_allclose(v.reshape(4, 4), bt @ d[0, :, :, 0] @ bt.T, rtol=0, atol=1e-15)
    np.testing.assert_allclose(u.reshape(4, 4), g_ @ g[:, :, 0, 0] @ g_.T, rtol=0, atol=1e-15)
    y = np.empty((1, 2, 2, 1))
    numba_loops.winograd_output(u * v, 0, 1, 1, 1, np.zeros(0), y)
    np.testing.assert_allclose(y[0, :, :, 0], at @ (u * v).reshape(4, 4) @ at.T, rtol=0, atol=1e-14)
    direct = ref.conv2d(d, g, None, 1, "valid")[0]             # the point: two outputs of a 3x3 conv
    np.testing.assert_allclose(y, direct, rtol=0, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("shape,f", [((2, 9, 7, 3), 4), ((1, 6, 6, 5), 2), ((3, 4, 5, 2), 6)])
def test_winograd_conv_matches_reference(rng, winograd_everywhere, dtype, padding, shape, f):
    """Odd sizes (a last tile with 1 pixel), several images, blocks of one tile row, C > F and C < F:
    forward and backward (whose input gradient is the Winograd conv of dy when C <= F)."""
    x = _rand(rng, shape, dtype)
    w, b = _rand(rng, (3, 3, shape[3], f), dtype), _rand(rng, (f,), dtype)
    for bias in (b, None):
        y_ref, cache_ref = ref.conv2d(x, w, bias, 1, padding)
        y, cache = nb.conv2d(x, w, bias, 1, padding)
        assert_same(y, y_ref)
        dy = _rand(rng, y.shape, dtype)
        assert_same(nb.conv2d_backward(dy, cache), ref.conv2d_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_winograd_on_a_seed_model_layer(rng, monkeypatch, dtype):
    """At its real thresholds, on a 64 x 64 x 32 -> 32 layer with He-scaled weights: Winograd is chosen
    (when the direct kernels are off: they take this layer), and stays within the float tolerance of the
    reference (float32: about 5e-7 relative, see the module)."""
    monkeypatch.setattr(nb, "DIRECT", False)
    c = f = 32
    assert numba_winograd.use_winograd((3, 3), (1, 1), c, f, (64, 64))
    assert not numba_winograd.use_winograd((3, 3), (1, 1), 1, f, (64, 64))      # the first layer
    assert not numba_winograd.use_winograd((3, 3), (1, 1), c, f, (16, 16))      # too few tiles
    x = _rand(rng, (1, 64, 64, c), dtype)
    w = (_rand(rng, (3, 3, c, f), np.float64) * np.sqrt(2 / (9 * c))).astype(dtype)
    y, cache = nb.conv2d(x, w, None, 1, "same")
    y_ref, cache_ref = ref.conv2d(x, w, None, 1, "same")
    assert_same(y, y_ref)
    dy = _rand(rng, y.shape, dtype)
    assert_same(nb.conv2d_backward(dy, cache), ref.conv2d_backward(dy, cache_ref))


def test_winograd_gradcheck_float64(rng, winograd_everywhere):
    args = (_rand(rng, (1, 5, 4, 2), np.float64), _rand(rng, (3, 3, 2, 3), np.float64),
            _rand(rng, (3,), np.float64), 1, "same")
    dy = _rand(rng, nb.conv2d(*args)[0].shape, np.float64)
    for wrt, index in [(0, 0), (1, 1), (2, 2)]:
        assert _gradcheck(nb.conv2d, nb.conv2d_backward, args, dy, wrt, index) < GRADCHECK_TOL


@pytest.mark.parametrize("kernel,padding", [((3, 3), "same"), ((2, 2), "same"), ((3, 2), "valid")])
def test_input_gradient_flip_equals_col2im(rng, kernel, padding):
    x_shape, w = (2, 7, 6, 5), _rand(rng, (*kernel, 5, 3), np.float64)
    oh, ow, pad_h, pad_w = numba_conv.conv_geometry(x_shape, kernel, (1, 1), padding)
    dy = _rand(rng, (2, oh, ow, 3), np.float64)
    args = (dy, w, x_shape, (1, 1), (pad_h, pad_w))
    flip = numba_conv.conv_input_gradient_gemm(*args, method="flip")
    assert_same(flip, numba_conv.conv_input_gradient_gemm(*args, method="col2im"))
    assert_same(flip, ref.conv_transpose.conv2d_input_gradient(dy, w, x_shape, (1, 1), padding))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel,strides", [((2, 2), (2, 2)), ((3, 3), (2, 2)), ((4, 4), (2, 2)),
                                            ((3, 3), (1, 1)), ((1, 1), (2, 2)), ((2, 3), (2, 1))])
def test_conv2d_transpose_matches_reference(rng, dtype, padding, kernel, strides):
    x = _rand(rng, (2, 5, 4, 3), dtype)
    w, b = _rand(rng, (*kernel, 4, 3), dtype), _rand(rng, (4,), dtype)
    for bias in (b, None):
        y_ref, cache_ref = ref.conv2d_transpose(x, w, bias, strides, padding)
        y, cache = nb.conv2d_transpose(x, w, bias, strides, padding)
        assert_same(y, y_ref)
        dy = _rand(rng, y.shape, dtype)
        assert_same(nb.conv2d_transpose_backward(dy, cache), ref.conv2d_transpose_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("pool,strides", [((2, 2), None), ((3, 3), (2, 2)), ((3, 2), (1, 1)),
                                         ((2, 2), (3, 3))])
def test_maxpool_matches_reference_with_ties(rng, dtype, padding, pool, strides):
    """Integer-valued inputs after a ReLU tie everywhere: the first maximum must win, as in the reference."""
    x = np.maximum(rng.integers(-2, 3, (2, 7, 8, 3)), 0).astype(dtype)
    y_ref, cache_ref = ref.maxpool2d(x, pool, strides, padding)
    y, cache = nb.maxpool2d(x, pool, strides, padding)
    assert_same(y, y_ref)
    dy = _rand(rng, y.shape, dtype)
    assert_same(nb.maxpool2d_backward(dy, cache), ref.maxpool2d_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape,padding", [((2, 8, 6, 5), "valid"), ((1, 7, 9, 3), "valid"),
                                           ((1, 7, 9, 3), "same"), ((2, 4, 4, 70), "same")])
def test_maxpool_2x2_fast_path_equals_the_general_loop(rng, dtype, shape, padding):
    """U-Net's pool goes through the unrolled kernel when there is no padding (odd 'same' sizes pad,
    and take the general loop); both give the reference's maxima and first-maximum routing, ties included."""
    x = np.maximum(rng.integers(-2, 3, shape), 0).astype(dtype)
    y, cache = nb.maxpool2d(x, 2, None, padding)
    y_ref, cache_ref = ref.maxpool2d(x, 2, None, padding)
    assert_same(y, y_ref)
    y_general = np.empty_like(y)
    argmax_general = np.empty_like(cache["argmax"])
    (top, _), (left, _) = cache["pads"]
    numba_loops.maxpool_forward(x, 2, 2, 2, 2, top, left, y_general, argmax_general)
    np.testing.assert_array_equal(y, y_general)
    np.testing.assert_array_equal(cache["argmax"], argmax_general)
    dy = _rand(rng, y.shape, dtype)
    assert_same(nb.maxpool2d_backward(dy, cache), ref.maxpool2d_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.float16])
def test_concatenate_matches_reference(rng, monkeypatch, dtype):
    """Channel concatenation of three inputs (one a strided view) split across two threads, and its
    backward: the same arrays as the reference (exact: copies), contiguous; float16 and other axes fall
    back to the reference."""
    monkeypatch.setenv("UNET_SCRATCH_THREADS", "2")
    monkeypatch.setattr(nb, "parts_for", lambda items: 2)
    xs = [_rand(rng, (2, 5, 3, c), dtype) for c in (3, 1, 4)]
    xs[1] = _rand(rng, (2, 5, 6, 1), dtype)[:, :, ::2]
    y, cache = nb.concatenate(xs)
    y_ref, cache_ref = ref.concatenate(xs)
    np.testing.assert_array_equal(y, y_ref)
    assert y.dtype == y_ref.dtype and cache == cache_ref
    dy = _rand(rng, y.shape, dtype)
    for got, expected in zip(nb.concatenate_backward(dy, cache), ref.concatenate_backward(dy, cache_ref)):
        np.testing.assert_array_equal(got, expected)
        assert got.flags.c_contiguous or dtype == np.float16        # float16: the reference's views
    y1, _ = nb.concatenate([xs[0], xs[0]], axis=1)
    np.testing.assert_array_equal(y1, np.concatenate([xs[0], xs[0]], axis=1))
    with pytest.raises(ValueError, match="divisible by 2"):
        nb.concatenate([xs[0], _rand(rng, (2, 4, 3, 1), dtype)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_relu_matches_reference(rng, dtype):
    z = np.round(_rand(rng, (2, 5, 5, 3), dtype))            # exact zeros: the gradient there is 0
    y, cache = nb.relu(z)
    y_ref, cache_ref = ref.relu(z)
    assert_same(y, y_ref)
    dy = _rand(rng, z.shape, dtype)
    assert_same(nb.relu_backward(dy, cache), ref.relu_backward(dy, cache_ref))


def test_other_float_dtypes_fall_back_to_the_reference(rng):
    """The compiled loops are built for float32 and float64; float16 still works, via the reference."""
    x, w = _rand(rng, (1, 6, 6, 2), np.float16), _rand(rng, (3, 3, 2, 3), np.float16)
    y, cache = nb.conv2d(x, w, None, 1, "same")
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, ref.conv2d(x, w, None, 1, "same")[0])
    assert nb.conv2d_backward(y, cache)[0].dtype == np.float16
    pooled, pool_cache = nb.maxpool2d(x, 2)
    assert pooled.dtype == np.float16 and nb.maxpool2d_backward(pooled, pool_cache).shape == x.shape
    up, up_cache = nb.conv2d_transpose(x, w.transpose(0, 1, 3, 2)[:2, :2], None, 2, "same")
    assert up.dtype == np.float16 and nb.conv2d_transpose_backward(up, up_cache)[0].dtype == np.float16
    r, r_cache = nb.relu(x)
    assert r.dtype == np.float16 and nb.relu_backward(r, r_cache).dtype == np.float16


def test_non_contiguous_inputs(rng):
    x = _rand(rng, (2, 8, 10, 6), np.float32)[:, :, ::2, ::2]            # strided view
    w = _rand(rng, (3, 3, 4, 3), np.float32).transpose(1, 0, 3, 2)           # (3, 3, 3, 4) view
    y_ref, cache_ref = ref.conv2d(x, w, None, 1, "same")
    y, cache = nb.conv2d(x, w, None, 1, "same")
    assert_same(y, y_ref)
    dy = _rand(rng, (2, 8, 5, 8), np.float32)[..., ::2]
    assert_same(nb.conv2d_backward(dy, cache), ref.conv2d_backward(dy, cache_ref))
    pooled, pool_cache = nb.maxpool2d(x, 2)
    assert_same(pooled, ref.maxpool2d(x, 2)[0])


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 2), h=st.integers(3, 9), w=st.integers(3, 9), c=st.integers(1, 4),
       f=st.integers(1, 4), k=st.integers(1, 3), s=st.integers(1, 3),
       padding=st.sampled_from(["same", "valid"]), seed=st.integers(0, 2**16))
def test_property_conv_transpose_pool(n, h, w, c, f, k, s, padding, seed):
    rng = np.random.default_rng(seed)
    x, wk, b = (_rand(rng, shape, np.float64) for shape in ((n, h, w, c), (k, k, c, f), (f,)))
    cases = [(nb.conv2d, nb.conv2d_backward, ref.conv2d, ref.conv2d_backward, wk),
             (nb.conv2d_transpose, nb.conv2d_transpose_backward, ref.conv2d_transpose,
              ref.conv2d_transpose_backward, wk.transpose(0, 1, 3, 2))]
    for op, op_back, ref_op, ref_back, kernel in cases:
        y_ref, cache_ref = ref_op(x, kernel, b, s, padding)
        y, cache = op(x, kernel, b, s, padding)
        assert_same(y, y_ref)
        dy = _rand(rng, y.shape, np.float64)
        assert_same(op_back(dy, cache), ref_back(dy, cache_ref))
    y_ref, cache_ref = ref.maxpool2d(x, k, s, padding)
    y, cache = nb.maxpool2d(x, k, s, padding)
    assert_same(y, y_ref)
    dy = _rand(rng, y.shape, np.float64)
    assert_same(nb.maxpool2d_backward(dy, cache), ref.maxpool2d_backward(dy, cache_ref))


def _gradcheck(op, op_backward, args, dy, wrt, index):
    """Norm-based rel_error between grads[index] of op_backward and central differences in args[wrt]."""
    _, cache = op(*args)
    analytic = op_backward(dy, cache)
    analytic = analytic[index] if isinstance(analytic, tuple) else analytic
    numeric = numeric_gradient(lambda _: op(*args)[0], args[wrt], dy)
    return rel_error(analytic, numeric)


@pytest.mark.parametrize("op,op_backward,args,wrt_index", [
    (nb.conv2d, nb.conv2d_backward, ((1, 5, 5, 2), (3, 3, 2, 3), (3,), 2, "same"), [(0, 0), (1, 1), (2, 2)]),
    (nb.conv2d_transpose, nb.conv2d_transpose_backward, ((1, 5, 5, 2), (2, 2, 3, 2), None, 2, "same"),
     [(0, 0), (1, 1)]),
    (nb.conv2d_transpose, nb.conv2d_transpose_backward, ((1, 4, 4, 2), (3, 3, 3, 2), (3,), 2, "valid"),
     [(0, 0), (1, 1), (2, 2)]),
    (nb.maxpool2d, nb.maxpool2d_backward, ((1, 5, 5, 2), 2, 2, "same"), [(0, None)]),
], ids=["conv2d", "upconv_k2s2", "upconv_k3s2", "maxpool"])
def test_gradcheck_float64(rng, op, op_backward, args, wrt_index):
    """Finite differences (h = 1e-5) on the fast kernels themselves: rel_error < 1e-7 (we see ~1e-10)."""
    args = tuple(_rand(rng, a, np.float64) if isinstance(a, tuple) else a for a in args)
    dy = _rand(rng, op(*args)[0].shape, np.float64)
    for wrt, index in wrt_index:
        assert _gradcheck(op, op_backward, args, dy, wrt, index) < GRADCHECK_TOL


def test_bad_input_gives_the_reference_errors(rng):
    x, w = _rand(rng, (1, 5, 5, 2), np.float32), _rand(rng, (3, 3, 3, 4), np.float32)
    with pytest.raises(ValueError, match="channels"):
        nb.conv2d(x, w)
    with pytest.raises(TypeError, match="dtype"):
        nb.conv2d(x.astype(np.int32), w[:, :, :2])
    with pytest.raises(ValueError, match="padding"):
        nb.conv2d(x, w[:, :, :2], padding="full")
    with pytest.raises(ValueError, match="smaller than the pool"):
        nb.maxpool2d(x, 6)
    _, cache = nb.conv2d(x, w[:, :, :2], None, 1, "same")
    with pytest.raises(ValueError, match="dy has shape"):
        nb.conv2d_backward(np.ones((1, 5, 5, 3), np.float32), cache)
    _, cache = nb.maxpool2d(x, 2)
    with pytest.raises(ValueError, match="pooled shape"):
        nb.maxpool2d_backward(np.ones((1, 3, 3, 2), np.float32), cache)


# ----------------------------------------------------------------------------- direct kernels


L32, L64 = numba_simd.lanes(np.float32), numba_simd.lanes(np.float64)   # 16 / 8 with AVX-512, 8 / 4 with AVX2


@pytest.fixture
def small_blocks_two_threads(monkeypatch):
    """The direct kernels split every op across two threads and work one row (or a few pixels) at a time."""
    monkeypatch.setenv("UNET_SCRATCH_THREADS", "2")
    monkeypatch.setattr(direct, "MIN_PARALLEL_MACS", 0)
    monkeypatch.setattr(direct, "CACHE_BYTES", 1)
    monkeypatch.setattr(direct, "SUM_PIXELS", 3)


def test_fma_tile_computes_its_definition(rng):
    """One call of the register tile against its definition (numba_simd's docstring) written in NumPy:
    R x V outputs, nseg segments of seglen terms, strides, an initial value, then accumulate=True."""
    from numba import njit

    @njit
    def call(a, sega, segb, b, out, init, accumulate):
        numba_simd.fma_tile(3, 2, a, 5, 7, sega, segb, 2, 4, 3, b, 1, 2 * L64 + 3, out, 2, 2 * L64 + 1,
                            init, accumulate, False)

    @njit
    def call_empty(a, sega, b, out, init, relu):
        numba_simd.fma_tile(1, 2, a, 0, 1, sega, sega, 0, 4, 1, b, 0, 1, out, 0, 1, init, False, relu)
    a, b = _rand(rng, 200, np.float64), _rand(rng, (12, 2 * L64 + 3), np.float64)
    sega, segb = np.array([0, 40]), np.array([0, 6])
    init = _rand(rng, 2 * L64, np.float64)
    expected = np.zeros((3, 2 * L64)) + init
    for r in range(3):
        for s in range(2):
            for t in range(4):
                expected[r] += a[5 + 7 * r + sega[s] + 3 * t] * b.reshape(-1)[1 + (segb[s] + t) * (2 * L64 + 3):][:2 * L64]
    out = np.full(2 + 3 * (2 * L64 + 1) + 2 * L64, 7.0)
    call(a, sega, segb, b, out, init, False)
    got = np.stack([out[2 + r * (2 * L64 + 1):][:2 * L64] for r in range(3)])
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-14)
    assert out[0] == out[1] == 7.0                              # nothing written outside the tile
    call(a, sega, segb, b, out, init, True)                     # accumulate: out += the same sums
    got = np.stack([out[2 + r * (2 * L64 + 1):][:2 * L64] for r in range(3)])
    np.testing.assert_allclose(got, 2 * expected, rtol=1e-14, atol=1e-14)
    empty = np.zeros_like(out)
    call_empty(a, sega, b, empty, init, False)                  # no segment: the output is the initial value
    np.testing.assert_array_equal(empty[:2 * L64], init)
    call_empty(a, sega, b, empty, init, True)                   # ... and with relu=True, max(init, 0)
    np.testing.assert_array_equal(empty[:2 * L64], np.maximum(init, 0))


def _direct_case(rng, dtype, shape, kernel, f, strides, padding):
    x, w, b = _rand(rng, shape, dtype), _rand(rng, (*kernel, shape[3], f), dtype), _rand(rng, (f,), dtype)
    y, cache = nb.conv2d(x, w, b, strides, padding)
    assert cache.get("direct"), "the direct kernels should take this conv"
    y_ref, cache_ref = ref.conv2d(x, w, b, strides, padding)
    dy = _rand(rng, y.shape, dtype)
    return (y, nb.conv2d_backward(dy, cache)), (y_ref, ref.conv2d_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("padding", ["same", "valid"])
@pytest.mark.parametrize("kernel,strides", [((3, 3), (1, 1)), ((3, 3), (2, 2)), ((2, 2), (1, 1)),
                                            ((5, 3), (2, 1)), ((3, 2), (1, 2))])
@pytest.mark.parametrize("vectors", [1, 3])                    # F = L or 3L: two-vector tiles, then one
def test_direct_conv_matches_reference(rng, small_blocks_two_threads, dtype, padding, kernel, strides, vectors):
    """Odd sizes (tiles of 8 pixels plus single ones), C = 3 (dx by col2im) and C = L (dx by the direct conv
    of dy with the flipped kernel, stride 1), one-row blocks split across two threads: forward, dx, dw, db."""
    lanes = numba_simd.lanes(dtype)
    for c in (3, lanes):
        got, expected = _direct_case(rng, dtype, (2, 11, 13, c), kernel, vectors * lanes, strides, padding)
        assert_close(got, expected)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_direct_conv_at_the_real_block_sizes(rng, dtype):
    """The course's first two layers' shapes (C = 1 and C = 16 -> 16 at 128 x 128 would be slow here: the
    same shapes at 40 x 36, batch 3), with the module's own block sizes and threads."""
    lanes = numba_simd.lanes(dtype)
    for c, f in ((1, lanes), (lanes, 2 * lanes), (2 * lanes, lanes)):
        got, expected = _direct_case(rng, dtype, (3, 40, 36, c), (3, 3), f, (1, 1), "same")
        assert_close(got, expected)


def test_direct_results_do_not_depend_on_the_threads(rng, monkeypatch):
    """Rows are independent and the weight and bias gradients are summed in WGRAD_PARTS fixed blocks: one,
    two and three threads give the same bits."""
    x, w = _rand(rng, (2, 24, 20, L32), np.float32), _rand(rng, (3, 3, L32, 2 * L32), np.float32)
    b = _rand(rng, (2 * L32,), np.float32)
    monkeypatch.setattr(direct, "MIN_PARALLEL_MACS", 0)
    results = []
    for n_threads in ("1", "2", "3"):
        monkeypatch.setenv("UNET_SCRATCH_THREADS", n_threads)
        y, cache = nb.conv2d(x, w, b, 1, "same")
        results.append((y, *nb.conv2d_backward(y, cache)))
    for one, two, three in zip(*results):
        np.testing.assert_array_equal(one, two)
        np.testing.assert_array_equal(one, three)


def test_direct_dispatch():
    """Small filters banks go direct; the seed model's wide layers, 1x1 convs and F off the vector width do not."""
    assert direct.use_direct((3, 3), 16, 16, (128, 128), np.float32)
    assert direct.use_direct((3, 3), 128, 128, (16, 16), np.float32)          # the course's bottleneck
    assert not direct.use_direct((3, 3), 128, 128, (128, 128), np.float32)    # seed: Winograd is faster
    assert not direct.use_direct((3, 3), 512, 512, (32, 32), np.float32)
    assert not direct.use_direct((1, 1), 16, 16, (128, 128), np.float32)
    assert not direct.use_direct((3, 3), 16, L32 + 1, (32, 32), np.float32)
    assert not direct.use_direct((3, 3), 16, 16, (32, 32), np.float16)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("f", ["lanes", 3])                    # the fused tiles / conv2d then relu
def test_conv2d_relu_is_relu_of_conv2d(rng, dtype, f):
    """The fused ReLU gives the same bits as conv2d followed by relu (NaN included: 0, as numba's relu), and
    caches that the two backward ops accept."""
    f = numba_simd.lanes(dtype) if f == "lanes" else f
    x, w, b = _rand(rng, (2, 9, 11, 3), dtype), _rand(rng, (3, 3, 3, f), dtype), _rand(rng, (f,), dtype)
    x[0, 4, 5, 1] = np.nan
    y, conv_cache, relu_cache = nb.conv2d_relu(x, w, b, 1, "same")
    z, cache = nb.conv2d(x, w, b, 1, "same")
    y_sep, relu_sep = nb.relu(z)
    np.testing.assert_array_equal(y, y_sep)
    assert (y >= 0).all() and bool(conv_cache.get("direct")) == (f != 3)
    dy = _rand(rng, y.shape, dtype)
    dz = nb.relu_backward(dy, relu_cache)
    np.testing.assert_array_equal(dz, nb.relu_backward(dy, relu_sep))
    for got, expected in zip(nb.conv2d_backward(dz, conv_cache), nb.conv2d_backward(dz, cache)):
        np.testing.assert_array_equal(got, expected)


def test_layers_fuse_the_relu_on_numba_only(monkeypatch, rng):
    """A Conv2D with activation "relu" calls the backend's conv2d_relu when it has one (numba), not on the
    NumPy reference, and not when use_ops replaced conv2d or relu (a student's op must run)."""
    from unet_scratch.backend import use_ops
    from unet_scratch.layers import Conv2D
    calls = []
    real = nb.conv2d_relu
    monkeypatch.setattr(nb, "conv2d_relu", lambda *a: calls.append("fused") or real(*a))
    layer = Conv2D(L32, 3, padding="same", activation="relu", seed=0)
    x = _rand(rng, (1, 6, 6, 2), np.float32)
    with use_backend("numpy"):
        y_ref = layer(x)
    with use_backend("numba"):
        y = layer(x)
        assert calls == ["fused"]
        assert_close(layer.backward(np.ones_like(y)), Conv2D.backward(layer, np.ones_like(y)))
        student = []
        with use_ops(conv2d=lambda *a: student.append(1) or nb.conv2d(*a), conv2d_backward=nb.conv2d_backward):
            layer(x)
        assert student == [1] and calls == ["fused"]
    assert_close(y, y_ref)


def test_direct_kernels_refuse_filters_off_the_vector_width(rng):
    x, w = _rand(rng, (1, 6, 6, 2), np.float32), _rand(rng, (3, 3, 2, L32 + 1), np.float32)
    with pytest.raises(ValueError, match=f"multiple of {L32}"):
        direct.conv_direct(x, w.reshape(-1, L32 + 1), (3, 3), (1, 1), ((1, 1), (1, 1)), (6, 6))
    with pytest.raises(ValueError, match="numba_ops.conv2d"):
        direct.weight_gradient_direct(x, _rand(rng, (1, 6, 6, 3), np.float32), (3, 3), (1, 1), ((1, 1), (1, 1)))
    with pytest.raises(ValueError, match=f"multiple of {L32}"):
        upconv.upconv_direct(x, _rand(rng, (2, 2, 3, 2), np.float32))


def test_direct_gradcheck_float64(rng):
    """Finite differences on the direct kernels (x, w, b) with C and F multiples of the vector width."""
    args = (_rand(rng, (1, 5, 6, L64), np.float64), _rand(rng, (3, 3, L64, L64), np.float64),
            _rand(rng, (L64,), np.float64), 1, "same")
    assert nb.conv2d(*args)[1].get("direct")
    dy = _rand(rng, nb.conv2d(*args)[0].shape, np.float64)
    for wrt, index in [(0, 0), (1, 1), (2, 2)]:
        assert _gradcheck(nb.conv2d, nb.conv2d_backward, args, dy, wrt, index) < GRADCHECK_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("c", [3, "lanes"])                    # dx by one GEMM / by the direct kernel
def test_direct_upconv_matches_reference(rng, small_blocks_two_threads, dtype, c):
    lanes = numba_simd.lanes(dtype)
    c = lanes if c == "lanes" else c
    for f in (lanes, 3 * lanes):
        x, w, b = _rand(rng, (2, 5, 11, c), dtype), _rand(rng, (2, 2, f, c), dtype), _rand(rng, (f,), dtype)
        y, cache = nb.conv2d_transpose(x, w, b, 2, "same")
        assert cache.get("direct")
        y_ref, cache_ref = ref.conv2d_transpose(x, w, b, 2, "same")
        dy = _rand(rng, y.shape, dtype)
        assert_close((y, nb.conv2d_transpose_backward(dy, cache)),
                     (y_ref, ref.conv2d_transpose_backward(dy, cache_ref)))


def test_direct_upconv_gradcheck_float64(rng):
    args = (_rand(rng, (1, 3, 4, L64), np.float64), _rand(rng, (2, 2, L64, L64), np.float64),
            _rand(rng, (L64,), np.float64), 2, "same")
    assert nb.conv2d_transpose(*args)[1].get("direct")
    dy = _rand(rng, nb.conv2d_transpose(*args)[0].shape, np.float64)
    for wrt, index in [(0, 0), (1, 1), (2, 2)]:
        assert _gradcheck(nb.conv2d_transpose, nb.conv2d_transpose_backward, args, dy, wrt, index) < GRADCHECK_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("case", ["head", "first_layer"])
def test_narrow_convs_without_blas(rng, small_blocks_two_threads, monkeypatch, dtype, case):
    """The 1x1 head with fewer filters than a vector and the input gradient of a conv with fewer input
    channels than a vector (the first layer, C = 1) run compiled loops, not BLAS; split across two threads."""
    monkeypatch.setattr(narrow, "parts_for", lambda items: 2)
    lanes = numba_simd.lanes(dtype)
    shape, kernel, f = ((2, 9, 7, 2 * lanes), (1, 1), 1) if case == "head" else ((2, 9, 7, 1), (3, 3), lanes)
    x, w, b = _rand(rng, shape, dtype), _rand(rng, (*kernel, shape[3], f), dtype), _rand(rng, (f,), dtype)
    y, cache = nb.conv2d(x, w, b, 1, "same")
    assert cache.get("pointwise" if case == "head" else "direct")
    y_ref, cache_ref = ref.conv2d(x, w, b, 1, "same")
    dy = _rand(rng, y.shape, dtype)
    assert_close((y, nb.conv2d_backward(dy, cache)), (y_ref, ref.conv2d_backward(dy, cache_ref)))
    args = (x[:1, :4, :3], w, b, 1, "same")
    dy = _rand(rng, nb.conv2d(*args)[0].shape, dtype)
    if dtype == np.float64:
        for wrt, index in [(0, 0), (1, 1), (2, 2)]:
            assert _gradcheck(nb.conv2d, nb.conv2d_backward, args, dy, wrt, index) < GRADCHECK_TOL


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_whole_unet_on_the_direct_kernels_equals_numpy(dtype):
    """A U-Net whose convs and up-convs all fit the vector width (base = L filters): every conv except the
    1-filter head runs the direct kernels, forward and backward, against the NumPy reference."""
    lanes = numba_simd.lanes(dtype)
    kw = dict(input_shape=(16, 16, 2), base_filters=lanes, depth=2, seed=3, dtype=dtype)
    outs = []
    for name in ("numpy", "numba"):
        model = UNet(**kw)
        x = np.random.default_rng(1).standard_normal((2, 16, 16, 2)).astype(dtype)
        with use_backend(name):
            y = model.forward(x, training=True)
            if name == "numba":                                 # the caches say which kernels ran
                assert all(layer._cache[0].get("direct") for layer in model.layers
                           if type(layer).__name__ in ("Conv2D", "Conv2DTranspose") and layer.name != "head")
            dx = model.backward(np.random.default_rng(2).standard_normal(y.shape).astype(dtype))
        outs.append((y, dx, {k: v.copy() for k, v in model.grads.items()}))
    (y_ref, dx_ref, g_ref), (y, dx, g) = outs
    assert_close((y, dx), (y_ref, dx_ref))
    for name in g_ref:
        assert_close(g[name], g_ref[name])


def test_the_course_workload_calls_no_blas(monkeypatch):
    """The course's U-Net (base 16, depth 3; here on 32 x 32 images, batch 2) trains on the direct kernels
    and compiled loops alone: every route that would call a BLAS product is made to fail, and a forward and
    backward pass still run (so no BLAS thread spins against the Numba backend's threads)."""
    def refuse(*args, **kwargs):
        raise AssertionError("a BLAS route ran")
    for name in ("conv_forward_gemm", "conv_backward_gemm", "conv_input_gradient_gemm", "conv_weight_gradient_gemm"):
        monkeypatch.setattr(nb, name, refuse)
    model = UNet(input_shape=(32, 32, 1), base_filters=16, depth=3, seed=0)
    x = np.random.default_rng(0).random((2, 32, 32, 1), dtype=np.float32)
    with use_backend("numba"):
        y = model.forward(x, training=True)
        upconvs = [layer for layer in model.layers if type(layer).__name__ == "Conv2DTranspose"]
        assert upconvs and all(layer._cache[0].get("direct") for layer in upconvs)   # not the GEMM + shuffle
        model.backward(np.ones_like(y))
    assert all(np.isfinite(g).all() for g in model.grads.values())
    monkeypatch.setattr(nb, "DIRECT", False)                    # the check can fail: the old routes use BLAS
    with use_backend("numba"), pytest.raises(AssertionError, match="BLAS route"):
        model.forward(x, training=True)


def _run_unet(name, dtype, padding, size):
    kw = dict(input_shape=(size, size, 2), base_filters=4, depth=2, padding=padding, seed=3, dtype=dtype)
    if padding == "valid":
        kw.update(out_channels=2, out_activation="softmax")
    model = UNet(**kw)
    x = np.random.default_rng(1).standard_normal((2, size, size, 2)).astype(dtype)
    with use_backend(name):
        y = model.forward(x, training=True)                    # dropout on, same seeds on both sides
        dy = np.random.default_rng(2).standard_normal(y.shape).astype(dtype)
        dx = model.backward(dy)
    return y, dx, {k: v.copy() for k, v in model.grads.items()}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("padding,size", [("same", 16), ("valid", 44)])
def test_whole_unet_numba_equals_numpy(dtype, padding, size):
    y_ref, dx_ref, grads_ref = _run_unet("numpy", dtype, padding, size)
    y, dx, grads = _run_unet("numba", dtype, padding, size)
    assert_same(y, y_ref)
    assert_same(dx, dx_ref)
    assert grads.keys() == grads_ref.keys()
    for name in grads_ref:
        assert_same(grads[name], grads_ref[name])


@pytest.mark.parametrize("padding,size", [("same", 16), ("valid", 44)])
def test_whole_unet_with_winograd_equals_numpy(winograd_everywhere, padding, size):
    """The same check with every 3x3 conv of the small U-Net (forward and backward) done by Winograd."""
    y_ref, dx_ref, grads_ref = _run_unet("numpy", "float32", padding, size)
    y, dx, grads = _run_unet("numba", "float32", padding, size)
    assert_same(y, y_ref)
    assert_same(dx, dx_ref)
    for name in grads_ref:
        assert_same(grads[name], grads_ref[name])


def test_backend_switch_selects_numba():
    with use_backend("numba"):
        assert backend.ops() is nb
        assert backend.get_backend() == "numba"
    assert backend.get_backend() == "numpy"
