"""Concatenation and centre crop: the split gradient, the paper's crops, Keras parity (exact: these ops
only move numbers), gradient checks (float64, norm-based rel_error < 1e-7), errors that name the fix."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.concat import (center_crop, center_crop_backward, concatenate, concatenate_backward,
                                     crop_amounts)

GRAD_TOL = 1e-7


def test_concatenate_gradient_splits(rng):
    a, b, c = (rng.standard_normal((2, 4, 4, k)) for k in (3, 5, 1))
    y, cache = concatenate([a, b, c])
    assert y.shape == (2, 4, 4, 9)
    dy = rng.standard_normal(y.shape)
    da, db, dc = concatenate_backward(dy, cache)
    assert rel_error(da, numeric_gradient(lambda v: concatenate([v, b, c])[0], a, dy)) < GRAD_TOL
    assert rel_error(db, numeric_gradient(lambda v: concatenate([a, v, c])[0], b, dy)) < GRAD_TOL
    assert rel_error(dc, numeric_gradient(lambda v: concatenate([a, b, v])[0], c, dy)) < GRAD_TOL
    np.testing.assert_array_equal(db, dy[..., 3:8])
    assert rel_error(dy[..., :3], dy[..., 1:4]) > 1e-2        # a wrong split fails the comparison


def test_concatenate_other_axis(rng):
    a, b = rng.standard_normal((2, 3, 4, 2)), rng.standard_normal((2, 5, 4, 2))
    y, cache = concatenate([a, b], axis=1)
    assert y.shape == (2, 8, 4, 2)
    da, db = concatenate_backward(y, cache)
    np.testing.assert_array_equal(da, a)
    np.testing.assert_array_equal(db, b)


def test_concatenate_matches_keras(rng, tf, keras):
    a = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    dy = rng.standard_normal((2, 4, 4, 5)).astype(np.float32)
    at, bt = tf.constant(a), tf.constant(b)
    with tf.GradientTape(persistent=True) as tape:
        tape.watch([at, bt])
        yt = keras.layers.concatenate([at, bt])
        loss = tf.reduce_sum(yt * dy)
    y, cache = concatenate([a, b])
    np.testing.assert_array_equal(y, yt.numpy())
    da, db = concatenate_backward(dy, cache)
    np.testing.assert_array_equal(da, tape.gradient(loss, at).numpy())
    np.testing.assert_array_equal(db, tape.gradient(loss, bt).numpy())
    assert y.dtype == da.dtype == np.float32


def test_concatenate_shape_error_names_both_shapes_and_the_fix():
    with pytest.raises(ValueError, match=r"\(1, 8, 8, 2\) and \(1, 7, 7, 2\).*divisible by 2\*\*depth"
                                         r".*center_crop\(skip, \(7, 7\)\)"):
        concatenate([np.zeros((1, 8, 8, 2)), np.zeros((1, 7, 7, 2))])
    with pytest.raises(ValueError, match=r"\(2, 4, 4, 1\) and \(1, 4, 4, 1\)"):
        concatenate([np.zeros((2, 4, 4, 1)), np.zeros((1, 4, 4, 1))])


def test_concatenate_other_errors():
    with pytest.raises(ValueError, match="at least two"):
        concatenate([np.zeros((1, 2, 2, 1))])
    with pytest.raises(ValueError, match="out of range"):
        concatenate([np.zeros((1, 2, 2, 1))] * 2, axis=4)
    with pytest.raises(TypeError, match=r"float32 and float64.*astype"):
        concatenate([np.zeros((1, 2, 2, 1), np.float32), np.zeros((1, 2, 2, 1))])


def test_paper_crops():
    # skip 568 -> 392 (level 1), 280 -> 200, 136 -> 104, 64 -> 56: 88, 40, 16, 4 pixels per side
    for skip, up, side in [(568, 392, 88), (280, 200, 40), (136, 104, 16), (64, 56, 4)]:
        assert crop_amounts(skip, skip, up, up) == ((side, side), (side, side))
    assert crop_amounts(9, 10, 6, 6) == ((1, 2), (2, 2))          # odd: the extra row at the bottom


@pytest.mark.parametrize("size", [(6, 7), (11, 10), (1, 1), (8, 3)])
def test_center_crop_matches_keras_cropping2d(size, rng, keras):
    x = rng.standard_normal((2, 11, 10, 3)).astype(np.float32)
    y, cache = center_crop(x, size)
    expected = keras.layers.Cropping2D(crop_amounts(11, 10, *size))(x).numpy()
    np.testing.assert_array_equal(y, expected)
    assert y.shape == (2, *size, 3) and y.dtype == np.float32


def test_center_crop_gradient_check(rng):
    x = rng.standard_normal((2, 9, 8, 3))
    y, cache = center_crop(x, (4, 5))
    dy = rng.standard_normal(y.shape)
    dx = center_crop_backward(dy, cache)
    assert rel_error(dx, numeric_gradient(lambda v: center_crop(v, (4, 5))[0], x, dy)) < GRAD_TOL
    assert dx.dtype == np.float64 and dx[:, :2].sum() == 0 and dx[:, 6:].sum() == 0


def test_crop_errors():
    with pytest.raises(ValueError, match="larger size"):
        crop_amounts(4, 4, 6, 6)
    with pytest.raises(ValueError, match="at least 1 x 1"):
        crop_amounts(4, 4, 0, 2)
    with pytest.raises(ValueError, match=r"NHWC tensor \(N, H, W, C\)"):
        center_crop(np.zeros((4, 4)), (2, 2))


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), dh=st.integers(0, 5), dw=st.integers(0, 5),
       seed=st.integers(0, 100))
def test_crop_property(h, w, dh, dw, seed):
    x = np.random.default_rng(seed).standard_normal((1, h + dh, w + dw, 2))
    y, cache = center_crop(x, (h, w))
    (top, bottom), (left, right) = crop_amounts(h + dh, w + dw, h, w)
    assert y.shape == (1, h, w, 2) and top + bottom == dh and left + right == dw and 0 <= bottom - top <= 1
    dx = center_crop_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and dx.sum() == y.size
    np.testing.assert_array_equal(center_crop(dx * x, (h, w))[0], y)


@settings(max_examples=20, deadline=None)
@given(channels=st.lists(st.integers(1, 4), min_size=2, max_size=4), hw=st.integers(1, 4),
       seed=st.integers(0, 100))
def test_concatenate_property(channels, hw, seed):
    r = np.random.default_rng(seed)
    xs = [r.standard_normal((2, hw, hw, c)) for c in channels]
    y, cache = concatenate(xs)
    assert y.shape == (2, hw, hw, sum(channels))
    for x, dx in zip(xs, concatenate_backward(y, cache)):
        np.testing.assert_array_equal(dx, x)          # splitting the output gives the inputs back
