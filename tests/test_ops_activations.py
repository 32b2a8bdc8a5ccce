"""Activations: gradient checks (float64, norm-based rel_error < 1e-7), Keras/TF parity (float32,
rtol = atol = 1e-5), numerical stability, dtype, the name lookup."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.activations import (ACTIVATIONS, get_activation, linear, linear_backward, relu,
                                          relu_backward, sigmoid, sigmoid_backward, softmax,
                                          softmax_backward)

PAIRS = {"relu": (relu, relu_backward), "sigmoid": (sigmoid, sigmoid_backward),
         "softmax": (softmax, softmax_backward), "linear": (linear, linear_backward)}
GRAD_TOL = 1e-7


def _input(rng, shape, scale=1.0):
    x = scale * rng.standard_normal(shape)
    x[np.abs(x) < 1e-3] = 0.5                      # keep ReLU's kink out of the finite differences
    return x


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_gradient_check(name, rng):
    fwd, bwd = PAIRS[name]
    x = _input(rng, (2, 5, 4, 3))
    y, cache = fwd(x)
    dy = rng.standard_normal(y.shape)
    num = numeric_gradient(lambda v: fwd(v)[0], x, dy)
    assert rel_error(bwd(dy, cache), num) < GRAD_TOL


def test_softmax_gradient_check_on_another_axis(rng):
    x = rng.standard_normal((2, 3, 4, 2))
    y, cache = softmax(x, axis=1)
    np.testing.assert_allclose(y.sum(axis=1), 1.0)
    dy = rng.standard_normal(y.shape)
    num = numeric_gradient(lambda v: softmax(v, axis=1)[0], x, dy)
    assert rel_error(softmax_backward(dy, cache), num) < GRAD_TOL


def test_a_wrong_backward_fails_the_check(rng):
    """The check can fail: sigmoid's backward without the (1 - y) factor is far off."""
    x = rng.standard_normal((2, 4, 4, 3))
    y, _ = sigmoid(x)
    dy = rng.standard_normal(y.shape)
    num = numeric_gradient(lambda v: sigmoid(v)[0], x, dy)
    assert rel_error(dy * y, num) > 1e-2


@pytest.mark.parametrize("name", ["relu", "sigmoid", "softmax", "linear"])
def test_matches_keras(name, rng, tf, keras):
    fwd, bwd = PAIRS[name]
    x = (3 * rng.standard_normal((2, 6, 5, 4))).astype(np.float32)
    dy = rng.standard_normal(x.shape).astype(np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        yt = keras.activations.get(name)(xt)
        loss = tf.reduce_sum(yt * dy)
    y, cache = fwd(x)
    dx = bwd(dy, cache)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(dx, tape.gradient(loss, xt).numpy(), rtol=1e-5, atol=1e-5)
    assert y.dtype == np.float32 and dx.dtype == np.float32


def test_relu_gradient_at_zero_is_zero_like_tensorflow(tf):
    x = np.array([-1.0, 0.0, 2.0], np.float32)
    xt = tf.constant(x)
    with tf.GradientTape() as tape:
        tape.watch(xt)
        y = tf.nn.relu(xt)
    expected = tape.gradient(y, xt).numpy()
    np.testing.assert_array_equal(relu_backward(np.ones(3, np.float32), relu(x)[1]), expected)
    assert expected[1] == 0


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_sigmoid_is_stable_for_large_inputs(dtype):
    x = np.array([-1e4, -1000.0, -50.0, 0.0, 50.0, 1000.0, 1e4], dtype)
    with np.errstate(over="raise", invalid="raise", divide="raise"):     # underflow to 0 is fine
        y, cache = sigmoid(x)
        dx = sigmoid_backward(np.ones_like(x), cache)
    assert y.dtype == dtype and y[0] == 0 and y[-1] == 1 and y[3] == 0.5
    assert np.all(np.isfinite(dx)) and dx[3] == 0.25


def test_sigmoid_matches_scipy_expit_over_a_wide_range():
    from scipy.special import expit
    x = np.linspace(-700, 700, 2001)
    np.testing.assert_allclose(sigmoid(x)[0], expit(x), rtol=1e-15, atol=1e-300)


def test_softmax_sums_to_one_and_survives_huge_logits():
    with np.errstate(over="raise", invalid="raise", divide="raise"):     # underflow to 0 is fine
        y, _ = softmax(np.array([[1000.0, 1001.0, 999.0], [-1000.0, -1000.0, -1000.0]], np.float32))
    np.testing.assert_allclose(y.sum(-1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(y[1], 1 / 3, rtol=1e-6)
    assert y.dtype == np.float32


@pytest.mark.parametrize("name", sorted(PAIRS))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(name, dtype, rng):
    fwd, bwd = PAIRS[name]
    x = rng.standard_normal((2, 3, 3, 2)).astype(dtype)
    y, cache = fwd(x)
    assert y.dtype == dtype and bwd(np.ones_like(y), cache).dtype == dtype


def test_get_activation():
    assert get_activation("relu") == (relu, relu_backward)
    assert get_activation("Sigmoid") == (sigmoid, sigmoid_backward)
    for name in (None, "linear"):
        fwd, bwd = get_activation(name)
        x = np.arange(3.0)
        assert fwd(x)[0] is x and bwd(x, None) is x
    assert set(ACTIVATIONS) == {"relu", "sigmoid", "softmax", "linear", None}
    with pytest.raises(ValueError, match="unknown activation 'tanhh'; choose one of 'relu'"):
        get_activation("tanhh")
    with pytest.raises(TypeError, match="a name"):
        get_activation(np.tanh)


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5), st.integers(1, 5)),
       name=st.sampled_from(["relu", "sigmoid", "softmax"]), seed=st.integers(0, 1000))
def test_gradient_property(shape, name, seed):
    fwd, bwd = PAIRS[name]
    r = np.random.default_rng(seed)
    x = _input(r, shape, scale=3.0)
    dy = r.standard_normal(shape)
    y, cache = fwd(x)
    assert y.shape == shape
    num = numeric_gradient(lambda v: fwd(v)[0], x, dy)
    assert rel_error(bwd(dy, cache), num) < GRAD_TOL
