"""Concatenation and centre crop: the split gradient, the paper's crops, Keras parity, clear errors."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.gradcheck import numeric_gradient, rel_error
from unet_scratch.ops.concat import (center_crop, center_crop_backward, concatenate, concatenate_backward,
                                     crop_amounts)


def test_concatenate_gradient_splits(rng):
    a, b = rng.standard_normal((2, 4, 4, 3)), rng.standard_normal((2, 4, 4, 5))
    y, cache = concatenate([a, b])
    assert y.shape == (2, 4, 4, 8)
    dy = rng.standard_normal(y.shape)
    da, db = concatenate_backward(dy, cache)
    assert rel_error(da, numeric_gradient(lambda v: concatenate([v, b])[0], a, dy)) < 1e-7
    assert rel_error(db, numeric_gradient(lambda v: concatenate([a, v])[0], b, dy)) < 1e-7
    np.testing.assert_array_equal(da, dy[..., :3])


def test_concatenate_matches_keras(rng, keras):
    a = rng.standard_normal((2, 4, 4, 3)).astype(np.float32)
    b = rng.standard_normal((2, 4, 4, 2)).astype(np.float32)
    expected = keras.layers.concatenate([a, b]).numpy()
    np.testing.assert_array_equal(concatenate([a, b])[0], expected)


def test_concatenate_shape_error_names_the_fix():
    with pytest.raises(ValueError, match=r"\(1, 8, 8, 2\) and \(1, 7, 7, 2\).*divisible by 2\*\*depth"):
        concatenate([np.zeros((1, 8, 8, 2)), np.zeros((1, 7, 7, 2))])


def test_paper_crops():
    # skip 568 -> 392 (level 1), 280 -> 200, 136 -> 104, 64 -> 56: 88, 40, 16, 4 pixels per side
    for skip, up, side in [(568, 392, 88), (280, 200, 40), (136, 104, 16), (64, 56, 4)]:
        assert crop_amounts(skip, skip, up, up) == ((side, side), (side, side))
    assert crop_amounts(9, 10, 6, 6) == ((1, 2), (2, 2))          # odd: the extra row at the bottom


def test_center_crop_matches_keras_cropping2d(rng, keras):
    x = rng.standard_normal((2, 11, 10, 3)).astype(np.float32)
    y, cache = center_crop(x, (6, 7))
    expected = keras.layers.Cropping2D(crop_amounts(11, 10, 6, 7))(x).numpy()
    np.testing.assert_array_equal(y, expected)
    dy = rng.standard_normal(y.shape)
    dx = center_crop_backward(dy, cache)
    assert rel_error(dx, numeric_gradient(lambda v: center_crop(v, (6, 7))[0], x.astype(float), dy)) < 1e-7


def test_crop_to_larger_size_is_an_error():
    with pytest.raises(ValueError, match="larger size"):
        crop_amounts(4, 4, 6, 6)


@settings(max_examples=20, deadline=None)
@given(h=st.integers(1, 12), w=st.integers(1, 12), dh=st.integers(0, 5), dw=st.integers(0, 5),
       seed=st.integers(0, 100))
def test_crop_property(h, w, dh, dw, seed):
    x = np.random.default_rng(seed).standard_normal((1, h + dh, w + dw, 2))
    y, cache = center_crop(x, (h, w))
    assert y.shape == (1, h, w, 2)
    dx = center_crop_backward(np.ones_like(y), cache)
    assert dx.shape == x.shape and dx.sum() == y.size
