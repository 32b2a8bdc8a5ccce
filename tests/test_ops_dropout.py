"""Inverted dropout: identity at inference, seeded masks, Keras's scaling bit for bit, gradient check
(float64, norm-based rel_error < 1e-7), clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.dropout import dropout, dropout_backward


def test_identity_at_inference_and_at_rate_zero(rng):
    x = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    for rate, training in [(0.5, False), (0.0, True)]:
        y, cache = dropout(x, rate, np.random.default_rng(0), training=training)
        assert y is x and cache is None and dropout_backward(x, cache) is x
    assert dropout(x, 0.5, None)[0] is x              # no generator needed at inference


def test_scales_kept_units_and_is_seeded(rng):
    x = rng.standard_normal((4, 16, 16, 8)).astype(np.float32)
    y1, m1 = dropout(x, 0.5, np.random.default_rng(7), training=True)
    y2, m2 = dropout(x, 0.5, np.random.default_rng(7), training=True)
    np.testing.assert_array_equal(y1, y2)
    np.testing.assert_array_equal(m1, m2)
    kept = m1 != 0
    np.testing.assert_array_equal(y1[kept], x[kept] * np.float32(2))
    assert np.all(y1[~kept] == 0) and abs(kept.mean() - 0.5) < 0.02
    assert y1.dtype == m1.dtype == np.float32
    y3, _ = dropout(x, 0.5, np.random.default_rng(8), training=True)
    assert not np.array_equal(y1, y3)                 # another seed, another mask


@pytest.mark.parametrize("rate", [0.1, 0.5, 0.8])
def test_keep_fraction_and_expectation(rate):
    x = np.full((200_000,), 1.5, np.float64)
    y, mask = dropout(x, rate, np.random.default_rng(1), training=True)
    assert abs((mask != 0).mean() - (1 - rate)) < 5e-3
    assert set(np.unique(mask)) == {0.0, 1 / (1 - rate)}
    assert abs(y.mean() / 1.5 - 1) < 0.02              # E[y] = x: no rescaling needed at inference


def test_scaling_matches_keras_bit_for_bit(rng, keras):
    """Keras draws other random numbers, but where both keep a unit the values agree exactly."""
    x = rng.standard_normal((2, 8, 8, 4)).astype(np.float32)
    rate = 0.3
    y_k = keras.layers.Dropout(rate, seed=3)(x, training=True).numpy()
    y, mask = dropout(x, rate, np.random.default_rng(3), training=True)
    both = (y_k != 0) & (mask != 0)
    assert both.sum() > 50
    np.testing.assert_array_equal(y[both], y_k[both])
    np.testing.assert_array_equal(keras.layers.Dropout(rate)(x, training=False).numpy(),
                                  dropout(x, rate, None, training=False)[0])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_preserved(dtype, rng):
    x = rng.standard_normal((2, 3, 3, 2)).astype(dtype)
    y, mask = dropout(x, 0.4, np.random.default_rng(0), training=True)
    assert y.dtype == mask.dtype == dropout_backward(np.ones_like(y), mask).dtype == dtype


def test_gradient_uses_the_same_mask(rng):
    x = rng.standard_normal((2, 5, 5, 3))
    dy = rng.standard_normal(x.shape)
    _, mask = dropout(x, 0.3, np.random.default_rng(1), training=True)
    num = numeric_gradient(lambda v: dropout(v, 0.3, np.random.default_rng(1), training=True)[0], x, dy)
    assert rel_error(dropout_backward(dy, mask), num) < 1e-7
    assert rel_error(dy, num) > 1e-2                   # the check can fail: ignoring the mask is wrong


def test_errors():
    x = np.arange(3.0)
    for rate in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match=r"rate must be in \[0, 1\)"):
            dropout(x, rate, np.random.default_rng(0), training=True)
    with pytest.raises(TypeError, match="default_rng"):
        dropout(x, 0.5, 42, training=True)


@settings(max_examples=20, deadline=None)
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 6), st.integers(1, 6), st.integers(1, 4)),
       rate=st.floats(0.0, 0.95), seed=st.integers(0, 1000))
def test_property(shape, rate, seed):
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    y, mask = dropout(x, rate, np.random.default_rng(seed), training=True)
    assert y.shape == shape and y.dtype == np.float32
    if mask is not None:
        kept = mask != 0
        np.testing.assert_array_equal(y[~kept], 0)
        np.testing.assert_array_equal(y[kept], x[kept] * np.float32(1 / (1 - rate)))
        np.testing.assert_array_equal(dropout_backward(np.ones_like(y), mask), mask)
