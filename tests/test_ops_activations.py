"""Activations and dropout: gradient checks, Keras/TF parity, dtype, determinism."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.activations import (get_activation, relu, relu_backward, sigmoid, sigmoid_backward,
                                          softmax, softmax_backward)
from unet_scratch.ops.dropout import dropout, dropout_backward

PAIRS = {"relu": (relu, relu_backward), "sigmoid": (sigmoid, sigmoid_backward),
         "softmax": (softmax, softmax_backward)}


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_gradient_check(name, rng):
    fwd, bwd = PAIRS[name]
    z = rng.standard_normal((2, 5, 4, 3))
    z[np.abs(z) < 1e-3] = 0.5                      # keep ReLU away from its kink
    y, cache = fwd(z)
    dy = rng.standard_normal(y.shape)
    num = numeric_gradient(lambda v: fwd(v)[0], z, dy)
    assert rel_error(bwd(dy, cache), num) < 1e-7


@pytest.mark.parametrize("name", sorted(PAIRS))
def test_matches_keras(name, rng, tf, keras):
    fwd, bwd = PAIRS[name]
    z = (3 * rng.standard_normal((2, 6, 5, 4))).astype(np.float32)
    dy = rng.standard_normal(z.shape).astype(np.float32)
    zt = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        yt = getattr(keras.activations, name)(zt)
        loss = tf.reduce_sum(yt * dy)
    y, cache = fwd(z)
    np.testing.assert_allclose(y, yt.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(bwd(dy, cache), tape.gradient(loss, zt).numpy(), rtol=1e-5, atol=1e-6)
    assert y.dtype == np.float32 and bwd(dy, cache).dtype == np.float32


def test_relu_gradient_at_zero_is_zero_like_tensorflow(tf):
    z = np.array([-1.0, 0.0, 2.0], np.float32)
    zt = tf.constant(z)
    with tf.GradientTape() as tape:
        tape.watch(zt)
        y = tf.nn.relu(zt)
    expected = tape.gradient(y, zt).numpy()
    np.testing.assert_array_equal(relu_backward(np.ones(3, np.float32), relu(z)[1]), expected)
    assert expected[1] == 0


def test_sigmoid_is_stable_for_large_inputs():
    z = np.array([-1000.0, -50.0, 0.0, 50.0, 1000.0], np.float32)
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        y, _ = sigmoid(z)
    assert y[0] == 0 and y[-1] == 1 and y[2] == 0.5


def test_softmax_sums_to_one_and_survives_huge_logits():
    y, _ = softmax(np.array([[1000.0, 1001.0, 999.0]]))
    np.testing.assert_allclose(y.sum(-1), 1.0)
    assert np.all(np.isfinite(y))


def test_get_activation():
    fwd, bwd = get_activation(None)
    z = np.arange(3.0)
    assert fwd(z)[0] is z and bwd(z, None) is z
    with pytest.raises(ValueError, match="unknown activation 'tanhh'"):
        get_activation("tanhh")


def test_dropout_is_identity_at_inference(rng):
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    y, cache = dropout(x, 0.5, np.random.default_rng(0), training=False)
    assert y is x and dropout_backward(x, cache) is x


def test_dropout_scales_kept_units_and_is_seeded(rng):
    x = rng.standard_normal((4, 16, 16, 8)).astype(np.float32)
    y1, m1 = dropout(x, 0.5, np.random.default_rng(7), training=True)
    y2, m2 = dropout(x, 0.5, np.random.default_rng(7), training=True)
    np.testing.assert_array_equal(y1, y2)
    kept = m1 != 0
    np.testing.assert_allclose(y1[kept], 2 * x[kept], rtol=1e-6)
    assert np.all(y1[~kept] == 0) and abs(kept.mean() - 0.5) < 0.03
    assert y1.dtype == np.float32


def test_dropout_gradient_uses_the_same_mask(rng):
    x = rng.standard_normal((2, 5, 5, 3))
    dy = rng.standard_normal(x.shape)
    _, mask = dropout(x, 0.3, np.random.default_rng(1), training=True)
    num = numeric_gradient(lambda v: dropout(v, 0.3, np.random.default_rng(1), training=True)[0], x, dy)
    assert rel_error(dropout_backward(dy, mask), num) < 1e-7


def test_dropout_rate_checked():
    with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
        dropout(np.ones(3), 1.0, np.random.default_rng(0), training=True)


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 5)),
       seed=st.integers(0, 1000))
def test_softmax_gradient_property(shape, seed):
    r = np.random.default_rng(seed)
    z = r.standard_normal(shape)
    dy = r.standard_normal(shape)
    y, cache = softmax(z)
    num = numeric_gradient(lambda v: softmax(v)[0], z, dy)
    assert rel_error(softmax_backward(dy, cache), num) < 1e-7
