"""Augmentation: image and mask move together, masks stay binary, shapes kept, seeded, sigma=0 = identity."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.augment import augment, augment_with_weights, displacement_field, elastic_deform, flip_rotate


def _pair(rng, h=32, w=32, c=None):
    image = rng.random((h, w) if c is None else (h, w, c)).astype(np.float32)
    mask = (rng.random((h, w)) > 0.5).astype(np.float32)
    return image, mask


def _checkerboard(n=40, square=8):
    yy, xx = np.mgrid[0:n, 0:n]
    return (((yy // square) + (xx // square)) % 2).astype(np.float32)


@settings(max_examples=20, deadline=None)
@given(h=st.integers(8, 40), w=st.integers(8, 40), c=st.sampled_from([None, 1, 3]), seed=st.integers(0, 99))
def test_shapes_dtypes_binary_kept(h, w, c, seed):
    rng = np.random.default_rng(seed)
    image, mask = _pair(rng, h, w, c)
    x, m = augment(image, mask, rng, sigma=4.0)
    assert x.shape == image.shape and m.shape == mask.shape
    assert x.dtype == image.dtype and m.dtype == mask.dtype
    assert set(np.unique(m)) <= {0.0, 1.0}
    assert image.min() <= x.min() and x.max() <= image.max()


def test_flip_rotate_is_one_of_the_eight_symmetries_and_moves_both(rng):
    image, mask = _pair(rng)
    for _ in range(8):
        x, m = flip_rotate(image, image.copy(), rng)
        np.testing.assert_array_equal(x, m)
        options = [np.rot90(t, k) for t in (image, image[:, ::-1]) for k in range(4)]
        assert any(np.array_equal(x, o) for o in options)


def test_flip_rotate_keeps_non_square_shape(rng):
    image, mask = _pair(rng, 10, 20, 2)
    for _ in range(6):
        x, m = flip_rotate(image, mask, rng)
        assert x.shape == (10, 20, 2) and m.shape == (10, 20)


def test_deterministic_given_seed(rng):
    image, mask = _pair(rng)
    a = augment(image, mask, np.random.default_rng(7))
    b = augment(image, mask, np.random.default_rng(7))
    c = augment(image, mask, np.random.default_rng(8))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_identity_when_sigma_zero(rng):
    image, mask = _pair(rng, 24, 24, 2)
    x, m = elastic_deform(image, mask, rng, sigma=0.0)
    np.testing.assert_allclose(x, image, atol=1e-5)
    np.testing.assert_array_equal(m, mask)


def test_field_statistics_match_the_paper(rng):
    """Coarse 3x3 lattice of N(0, 10^2) displacements: the corners of the field are lattice nodes."""
    corners = np.array([displacement_field((33, 33), rng)[:, [0, 0, -1, -1], [0, -1, 0, -1]]
                        for _ in range(300)])
    assert abs(corners.std() - 10.0) < 0.8
    field = displacement_field((64, 64), rng)
    assert np.abs(np.diff(field, axis=1)).max() < 3.0     # smooth: neighbours move almost together


def test_image_and_mask_move_together():
    """Deform a checkerboard mask and its image copy: they agree except at a few edge pixels."""
    board = _checkerboard()
    x, m = elastic_deform(board, board, np.random.default_rng(3))
    assert not np.array_equal(m, board)                  # it really moved
    agree = np.mean((x > 0.5) == (m > 0.5))
    assert agree > 0.97
    # A check that can fail: the image deformed with another field does not agree with this mask.
    y, _ = elastic_deform(board, board, np.random.default_rng(4))
    assert np.mean((y > 0.5) == (m > 0.5)) < 0.9


def test_errors(rng):
    image, mask = _pair(rng)
    with pytest.raises(ValueError, match=r"differ in \(H, W\)"):
        augment(image, mask[:20], rng)
    with pytest.raises(ValueError, match="one example at a time"):
        augment(image[None, ..., None], mask[None, ..., None], rng)
    with pytest.raises(ValueError, match="at least 2"):
        elastic_deform(image, mask, rng, grid=1)


def test_augment_with_weights_moves_image_and_mask_exactly_as_augment():
    rng = np.random.default_rng(0)
    image, mask = rng.random((24, 24)), (rng.random((24, 24)) > 0.5).astype(np.float32)
    weight = rng.random((24, 24))
    a = augment(image, mask, np.random.default_rng(5))
    b = augment_with_weights(image, mask, weight, np.random.default_rng(5))
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert b[2].shape == weight.shape and b[2].min() >= weight.min() - 1e-9
    c = flip_rotate(image, mask, np.random.default_rng(6))
    d = augment_with_weights(image, mask, None, np.random.default_rng(6), elastic=False)
    np.testing.assert_array_equal(c[0], d[0])
    np.testing.assert_array_equal(c[1], d[1])
    assert d[2] is None


def test_default_sigma_is_the_papers_scaled_to_the_image():
    """sigma=None (the default): 10 px at 512 x 512, scaled with the image; an explicit sigma is kept."""
    from unet_scratch.augment import scaled_sigma
    assert scaled_sigma((512, 512)) == 10.0
    assert scaled_sigma((128, 128, 1)) == 2.5
    assert scaled_sigma((64, 96)) == 1.25                       # the shorter side
    image, mask = _pair(np.random.default_rng(0), 128, 128)
    for explicit in (2.5, 10.0):
        default = elastic_deform(image, mask, np.random.default_rng(4))
        chosen = elastic_deform(image, mask, np.random.default_rng(4), sigma=explicit)
        same = np.array_equal(default[0], chosen[0]) and np.array_equal(default[1], chosen[1])
        assert same == (explicit == 2.5)
    trained = augment_with_weights(image, mask, None, np.random.default_rng(4))           # fit(augment=True)
    np.testing.assert_array_equal(trained[0], augment(image, mask, np.random.default_rng(4), sigma=2.5)[0])
