"""Tests for unet_scratch/ops/pool.py: MaxPooling2D forward and backward.

Checks: vectorised == naive loops, Keras MaxPooling2D forward parity, TensorFlow's GradientTape gradient
matched EXACTLY, including inputs with ties (ReLU outputs with all-zero windows, small integer values):
TensorFlow sends a tied window's gradient to the first maximum in row-major window order, and so do we.
Central-difference gradient check (float64, norm-based rel_error < 1e-7) on tie-free input; dtype, errors,
hypothesis properties.
"""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.conv import conv_output_size
from unet_scratch.ops.pool import maxpool2d, maxpool2d_backward, maxpool2d_backward_naive, maxpool2d_naive

GRAD_TOL = 1e-7          # float64 central differences, norm-based relative error

# (pool_size, strides, padding, H, W): default, odd sizes, overlapping windows, rectangular, same padding
CONFIGS = [
    ((2, 2), None, "valid", 6, 6), ((2, 2), None, "valid", 7, 5), ((2, 2), None, "same", 7, 5),
    ((3, 3), (2, 2), "valid", 7, 8), ((3, 3), (1, 1), "same", 5, 6), ((3, 3), (2, 2), "same", 6, 7),
    ((2, 3), (1, 2), "valid", 5, 7), ((4, 4), (3, 3), "same", 8, 7), ((1, 1), (2, 2), "valid", 5, 4),
    ((5, 5), (2, 2), "same", 4, 5),
]


def tie_free(rng, shape, dtype=np.float64):
    """Distinct values (a random permutation), so every window has a unique maximum."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) / 7.0).astype(dtype)


def with_ties(rng, shape, dtype=np.float32):
    """Two kinds of ties: ReLU of random normals (all-zero windows) and small integers."""
    relu = np.maximum(rng.standard_normal(shape) - 0.7, 0).astype(dtype)
    ints = rng.integers(0, 3, size=shape).astype(dtype)
    return relu, ints


@pytest.mark.parametrize("pool, strides, padding, h, w", CONFIGS)
def test_vectorised_equals_naive_with_ties(rng, pool, strides, padding, h, w):
    for x in (tie_free(rng, (2, h, w, 3)), *with_ties(rng, (2, h, w, 3), np.float64)):
        y, cache = maxpool2d(x, pool, strides, padding)
        np.testing.assert_array_equal(y, maxpool2d_naive(x, pool, strides, padding))
        dy = rng.standard_normal(y.shape)
        dx = maxpool2d_backward(dy, cache)
        assert dx.shape == x.shape
        np.testing.assert_allclose(dx, maxpool2d_backward_naive(dy, x, pool, strides, padding), atol=1e-12)


def test_valid_floors_and_same_ceils(rng):
    x = tie_free(rng, (1, 5, 7, 1))
    assert maxpool2d(x)[0].shape == (1, 2, 3, 1)
    assert maxpool2d(x, padding="same")[0].shape == (1, 3, 4, 1)
    assert maxpool2d(x, 3, 2, "SAME")[0].shape == (1, 3, 4, 1)


def test_first_maximum_gets_the_gradient():
    """One 2x2 window of zeros: the whole gradient goes to the top-left pixel, not split or copied."""
    x = np.zeros((1, 2, 2, 1))
    y, cache = maxpool2d(x)
    dx = maxpool2d_backward(np.full(y.shape, 5.0), cache)
    np.testing.assert_array_equal(dx[0, :, :, 0], [[5.0, 0.0], [0.0, 0.0]])


def test_overlapping_windows_accumulate():
    x = np.array([[0, 1, 0], [1, 9, 2], [0, 3, 0]], dtype=np.float64).reshape(1, 3, 3, 1)
    y, cache = maxpool2d(x, 2, 1)
    assert (y == 9).all()
    dx = maxpool2d_backward(np.ones(y.shape), cache)
    assert dx[0, 1, 1, 0] == 4 and dx.sum() == 4


@pytest.mark.parametrize("pool, strides, padding, h, w", [CONFIGS[i] for i in (1, 3, 4, 5, 6, 9)])
def test_gradient_check_float64(rng, pool, strides, padding, h, w):
    """On tie-free input max is differentiable: rel_error < 1e-7 against central differences."""
    x = tie_free(rng, (2, h, w, 2))
    y, cache = maxpool2d(x, pool, strides, padding)
    dy = rng.standard_normal(y.shape)
    num = numeric_gradient(lambda v: maxpool2d(v, pool, strides, padding)[0], x, dy)
    assert rel_error(maxpool2d_backward(dy, cache), num) < GRAD_TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_preserved(rng, dtype):
    x = tie_free(rng, (2, 5, 5, 3), dtype)
    y, cache = maxpool2d(x, padding="same")
    dx = maxpool2d_backward(np.ones(y.shape, dtype), cache)
    assert y.dtype == dx.dtype == dtype


def test_errors_name_the_problem(rng):
    x = tie_free(rng, (1, 4, 4, 2))
    with pytest.raises(ValueError, match="4-D"):
        maxpool2d(x[0])
    with pytest.raises(ValueError, match="padding must be 'same' or 'valid'"):
        maxpool2d(x, padding="full")
    with pytest.raises(ValueError, match="pool_size must be a positive int"):
        maxpool2d(x, pool_size=0)
    with pytest.raises(ValueError, match="smaller than the pool"):
        maxpool2d(x, pool_size=5)
    with pytest.raises(TypeError, match="astype"):
        maxpool2d(x.astype(np.int16))
    y, cache = maxpool2d(x)
    with pytest.raises(ValueError, match="dy has shape"):
        maxpool2d_backward(np.ones((1, 3, 3, 2)), cache)


# ----------------------------------------------------------------------------- Keras / TensorFlow parity


@pytest.mark.parametrize("pool, strides, padding, h, w", CONFIGS)
def test_keras_forward_and_tensorflow_gradient_with_ties(rng, tf, keras, pool, strides, padding, h, w):
    """Forward equals keras.layers.MaxPooling2D; the gradient equals TensorFlow's exactly, ties included."""
    layer = keras.layers.MaxPooling2D(pool, strides, padding, dtype="float32")
    for x in (tie_free(rng, (2, h, w, 3), np.float32), *with_ties(rng, (2, h, w, 3))):
        y, cache = maxpool2d(x, pool, strides, padding)
        dy = rng.standard_normal(y.shape).astype(np.float32)
        xt = tf.constant(x)
        with tf.GradientTape() as tape:
            tape.watch(xt)
            yt = layer(xt)
            loss = tf.reduce_sum(yt * dy)
        np.testing.assert_array_equal(y, yt.numpy())
        np.testing.assert_allclose(maxpool2d_backward(dy, cache), tape.gradient(loss, xt).numpy(),
                                   rtol=1e-5, atol=1e-5)


def test_tensorflow_routes_ties_to_the_first_maximum(tf):
    """The fact the backward relies on, checked directly: in an all-equal 2x2 window TensorFlow's max-pool
    gradient goes to the top-left (first in row-major order); a mask x == max would differ."""
    x = tf.constant(np.array([[1, 3, 3, 0], [3, 2, 1, 3], [0, 0, 5, 5], [0, 0, 5, 5]],
                             np.float32).reshape(1, 4, 4, 1))
    with tf.GradientTape() as tape:
        tape.watch(x)
        y = tf.nn.max_pool2d(x, 2, 2, "VALID")
    expected = [[0, 1, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    np.testing.assert_array_equal(tape.gradient(y, x).numpy()[0, :, :, 0], expected)
    _, cache = maxpool2d(x.numpy())
    np.testing.assert_array_equal(maxpool2d_backward(np.ones((1, 2, 2, 1), np.float32), cache)[0, :, :, 0],
                                  expected)


# ----------------------------------------------------------------------------- hypothesis properties

cases = st.fixed_dictionaries({
    "n": st.integers(1, 2), "h": st.integers(1, 8), "w": st.integers(1, 8), "c": st.integers(1, 3),
    "ph": st.integers(1, 4), "pw": st.integers(1, 4), "sh": st.integers(1, 3), "sw": st.integers(1, 3),
    "default_strides": st.booleans(), "padding": st.sampled_from(["valid", "same"]),
    "ties": st.booleans(), "seed": st.integers(0, 2 ** 16),
})


@settings(max_examples=25, deadline=None)
@given(cases)
def test_property_shapes_naive_and_gradient_mass(case):
    """Shapes follow the size formulas; fast == naive; every window sends its dy to exactly one pixel."""
    rng = np.random.default_rng(case["seed"])
    pool = (case["ph"], case["pw"])
    strides = None if case["default_strides"] else (case["sh"], case["sw"])
    padding = case["padding"]
    h, w = case["h"], case["w"]
    if padding == "valid":
        h, w = max(h, pool[0]), max(w, pool[1])
    shape = (case["n"], h, w, case["c"])
    x = with_ties(rng, shape, np.float64)[1] if case["ties"] else tie_free(rng, shape)
    y, cache = maxpool2d(x, pool, strides, padding)
    s = strides or pool
    assert y.shape == (case["n"], conv_output_size(h, pool[0], s[0], padding),
                       conv_output_size(w, pool[1], s[1], padding), case["c"])
    np.testing.assert_array_equal(y, maxpool2d_naive(x, pool, strides, padding))
    dy = rng.standard_normal(y.shape)
    dx = maxpool2d_backward(dy, cache)
    np.testing.assert_allclose(dx, maxpool2d_backward_naive(dy, x, pool, strides, padding), atol=1e-12)
    np.testing.assert_allclose(dx.sum(axis=(1, 2)), dy.sum(axis=(1, 2)), atol=1e-12)   # no gradient lost


@settings(max_examples=15, deadline=None)
@given(cases)
def test_property_gradient_check_tie_free(case):
    rng = np.random.default_rng(case["seed"])
    pool, strides, padding = (case["ph"], case["pw"]), (case["sh"], case["sw"]), case["padding"]
    h, w = (max(case["h"], pool[0]), max(case["w"], pool[1])) if padding == "valid" else (case["h"], case["w"])
    x = tie_free(rng, (case["n"], h, w, case["c"]))
    y, cache = maxpool2d(x, pool, strides, padding)
    dy = rng.standard_normal(y.shape)
    num = numeric_gradient(lambda v: maxpool2d(v, pool, strides, padding)[0], x, dy)
    assert rel_error(maxpool2d_backward(dy, cache), num) < GRAD_TOL
