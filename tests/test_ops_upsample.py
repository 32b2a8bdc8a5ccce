"""Tests for unet_scratch/ops/upsample.py (nearest up-sampling) and the even 2x2 'same' conv that follows it
in zhixuhao's up-step.

Checks: vectorised == naive loops (forward and backward), the backward is the sum over each block, a
float64 central-difference gradient check (norm-based rel_error < 1e-7) that a wrong backward fails,
Keras UpSampling2D parity (forward exact, gradient through GradientTape), the backends (Numba re-export,
xp_ops with NumPy, CuPy where a GPU is), and ops.conv's 2x2 'same' conv against Keras (TensorFlow pads
0 before and 1 after) in float32 and float64.
"""
import numpy as np
import pytest

import unet_scratch.ops as ref
from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.kernels import numba_ops, xp_ops
from unet_scratch.ops.conv import conv2d, conv2d_backward, padding_amounts
from unet_scratch.ops.upsample import (upsample2d, upsample2d_backward, upsample2d_backward_naive,
                                       upsample2d_naive)

from conftest import TOL, assert_same

GRAD_TOL = 1e-7
SIZES = [(2, 2), 2, (3, 1), (1, 2), (1, 1), (3, 4)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_vectorised_equals_naive(rng, size, dtype):
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    y, cache = upsample2d(x, size)
    sh, sw = (size, size) if isinstance(size, int) else size
    assert y.shape == (2, 3 * sh, 5 * sw, 4) and y.dtype == dtype
    np.testing.assert_array_equal(y, upsample2d_naive(x, size))
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = upsample2d_backward(dy, cache)
    assert dx.shape == x.shape and dx.dtype == dtype
    np.testing.assert_allclose(dx, upsample2d_backward_naive(dy, x.shape, size), rtol=TOL[np.dtype(dtype)])


def test_each_pixel_fills_its_block_and_its_gradient_is_the_block_sum():
    x = np.array([[1.0, 2.0], [3.0, 4.0]]).reshape(1, 2, 2, 1)
    y, cache = upsample2d(x)
    np.testing.assert_array_equal(y[0, :, :, 0], [[1, 1, 2, 2], [1, 1, 2, 2], [3, 3, 4, 4], [3, 3, 4, 4]])
    dy = np.arange(16.0).reshape(1, 4, 4, 1)
    dx = upsample2d_backward(dy, cache)[0, :, :, 0]
    np.testing.assert_array_equal(dx, [[0 + 1 + 4 + 5, 2 + 3 + 6 + 7], [8 + 9 + 12 + 13, 10 + 11 + 14 + 15]])


@pytest.mark.parametrize("size", [(2, 2), (3, 2)])
def test_gradient_check_float64(rng, size):
    x = rng.standard_normal((2, 3, 4, 2))
    y, cache = upsample2d(x, size)
    dy = rng.standard_normal(y.shape)
    numeric = numeric_gradient(lambda v: upsample2d(v, size)[0], x, dy)
    assert rel_error(upsample2d_backward(dy, cache), numeric) < GRAD_TOL


def test_the_gradient_check_catches_a_wrong_backward(rng):
    """Averaging the block (a plausible slip: 'nearest is an average pool in reverse') is 4x too small."""
    x = rng.standard_normal((1, 3, 3, 2))
    y, cache = upsample2d(x)
    dy = rng.standard_normal(y.shape)
    wrong = upsample2d_backward(dy, cache) / 4
    assert rel_error(wrong, numeric_gradient(lambda v: upsample2d(v)[0], x, dy)) > 0.5


def test_errors_name_the_fix(rng):
    x = rng.standard_normal((1, 2, 2, 1))
    with pytest.raises(ValueError, match="size must be a positive int"):
        upsample2d(x, 0)
    with pytest.raises(TypeError, match="astype"):
        upsample2d(x.astype(np.int32))
    with pytest.raises(ValueError, match="4-D"):
        upsample2d(x[0])
    _, cache = upsample2d(x)
    with pytest.raises(ValueError, match=r"dy has shape \(1, 2, 2, 1\), expected \(1, 4, 4, 1\)"):
        upsample2d_backward(x, cache)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_backends_agree_with_the_reference(rng, dtype):
    assert numba_ops.upsample2d is ref.upsample2d                 # re-exported as it is: one copy is cheap
    assert numba_ops.upsample2d_backward is ref.upsample2d_backward
    x = rng.standard_normal((2, 3, 4, 5)).astype(dtype)
    y_ref, cache_ref = ref.upsample2d(x, (2, 3))
    y, cache = xp_ops.upsample2d(x, (2, 3), xp=np)
    assert_same(y, y_ref)
    dy = rng.standard_normal(y.shape).astype(dtype)
    assert_same(xp_ops.upsample2d_backward(dy, cache, xp=np), ref.upsample2d_backward(dy, cache_ref))


def test_cupy_backend_on_the_gpu(rng):
    cupy = pytest.importorskip("cupy", reason="CuPy not installed: GPU check skipped")
    try:
        if cupy.cuda.runtime.getDeviceCount() < 1:
            pytest.skip("no CUDA GPU: GPU check skipped")
    except Exception:  # noqa: BLE001 - no driver or no device
        pytest.skip("no CUDA GPU: GPU check skipped")
    from unet_scratch.kernels import cupy_ops
    x = rng.standard_normal((2, 3, 4, 5)).astype(np.float32)
    y, cache = cupy_ops.upsample2d(cupy.asarray(x))
    y_ref, cache_ref = ref.upsample2d(x)
    assert_same(y, y_ref)
    dy = rng.standard_normal(y_ref.shape).astype(np.float32)
    assert_same(cupy_ops.upsample2d_backward(cupy.asarray(dy), cache), ref.upsample2d_backward(dy, cache_ref))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_keras_upsampling_parity(rng, tf, keras, dtype):
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    layer = keras.layers.UpSampling2D(size=(2, 3), dtype=str(np.dtype(dtype)))
    xt = tf.constant(x)
    dy = rng.standard_normal((2, 6, 15, 4)).astype(dtype)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        yk = layer(xt)
        loss = tf.reduce_sum(yk * dy)
    y, cache = upsample2d(x, (2, 3))
    np.testing.assert_array_equal(y, yk.numpy())                   # a copy: bit for bit
    assert_same(upsample2d_backward(dy, cache), tape.gradient(loss, xt).numpy())


# ---------------------------------------------------------------- the even kernel of the up-step: 2x2, 'same'
def test_even_same_kernel_pads_after():
    """TensorFlow's rule: total padding k - 1 = 1, the smaller half (0) before and the rest (1) after."""
    assert padding_amounts(8, 2, 1, "same") == (0, 1)
    x = np.zeros((1, 3, 3, 1))
    x[0, 0, 0, 0] = 1.0                                            # an impulse in the top-left corner
    w = np.arange(1.0, 5.0).reshape(2, 2, 1, 1)                    # [[1, 2], [3, 4]]
    y = conv2d(x, w, None, 1, "same")[0][0, :, :, 0]
    # y[i, j] = sum w[a, q] x[i + a, j + q]: the impulse meets w[0, 0] only at (0, 0)
    np.testing.assert_array_equal(y, [[1, 0, 0], [0, 0, 0], [0, 0, 0]])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("hw", [(4, 4), (5, 6)])
def test_even_same_conv_matches_keras(rng, tf, keras, dtype, hw):
    x = rng.standard_normal((2, *hw, 3)).astype(dtype)
    w, b = rng.standard_normal((2, 2, 3, 4)).astype(dtype), rng.standard_normal(4).astype(dtype)
    layer = keras.layers.Conv2D(4, 2, padding="same", dtype=str(np.dtype(dtype)))
    layer.build(x.shape)
    layer.kernel.assign(w)
    layer.bias.assign(b)
    xt = tf.constant(x)
    dy = rng.standard_normal((2, *hw, 4)).astype(dtype)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        loss = tf.reduce_sum(layer(xt) * dy)
    dxk, dwk, dbk = tape.gradient(loss, [xt, layer.kernel, layer.bias])
    y, cache = conv2d(x, w, b, 1, "same")
    assert_same(y, layer(xt).numpy())
    for ours, theirs in zip(conv2d_backward(dy, cache), (dxk, dwk, dbk)):
        assert_same(ours, theirs.numpy())
