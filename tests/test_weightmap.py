"""Eq. 2 weight map: hand-computed values, big weights in gaps, ~w_c far away, no border term for < 2 objects."""
import numpy as np
import pytest

from unet_scratch.weightmap import class_weights, nearest_two_distances, weight_map, weight_maps


def _two_squares(gap=2, size=40):
    """Two 10x10 squares side by side, `gap` background pixels between them, in a size x size image."""
    ins = np.zeros((size, size), np.int32)
    ins[15:25, 8:18] = 1
    ins[15:25, 18 + gap:28 + gap] = 2
    return ins


def test_exact_value_on_a_hand_computed_row():
    # Row 1 1 0 0 0 2 2: every gap pixel has d1 + d2 = 4 (1+3, 2+2, 3+1).
    ins = np.array([[1, 1, 0, 0, 0, 2, 2]], np.int32)
    w = weight_map(ins, w0=10.0, sigma=5.0)
    f_fg, f_bg = 4 / 7, 3 / 7
    border = 10 * np.exp(-16 / 50)
    expected = np.array([[1 / (2 * f_fg)] * 2 + [1 / (2 * f_bg) + border] * 3 + [1 / (2 * f_fg)] * 2])
    np.testing.assert_allclose(w, expected, rtol=1e-6)
    assert w.dtype == np.float32
    np.testing.assert_allclose(weight_map(ins, class_balance=False)[0, 2:5], 1 + border, rtol=1e-6)


def test_nearest_two_distances_by_hand():
    ins = np.array([[1, 0, 0, 2, 0, 3]], np.int32)
    d1, d2 = nearest_two_distances(ins)
    np.testing.assert_array_equal(d1, [[0, 1, 1, 0, 1, 0]])
    np.testing.assert_array_equal(d2, [[3, 2, 2, 2, 1, 2]])  # pixel 2: 2 to object 1, 1 to object 2


def test_large_weights_in_the_gap_and_class_weight_far_away():
    ins = _two_squares(gap=2)
    w = weight_map(ins)
    wc = class_weights(ins)
    gap = w[15:25, 18:20]
    np.testing.assert_allclose(gap, wc[15:25, 18:20] + 10 * np.exp(-9 / 50), rtol=1e-5)  # d1+d2 = 1+2
    assert gap.min() > 8
    far = w[0, 0] - wc[0, 0]
    assert 0 <= far < 1e-6                                 # corner: d1 + d2 ~ 45 px
    np.testing.assert_array_equal(w[ins > 0], wc[ins > 0])  # no border term on objects
    # A wider gap gets smaller weights: the term is made for thin gaps.
    assert weight_map(_two_squares(gap=6))[20, 21] < gap.min()


def test_class_weights_mean_one_and_balanced(rng):
    ins = (rng.random((20, 30)) > 0.7).astype(np.int32)
    wc = class_weights(ins)
    assert abs(wc.mean() - 1) < 1e-6
    np.testing.assert_allclose(wc[ins > 0].sum(), wc[ins == 0].sum(), rtol=1e-5)


@pytest.mark.parametrize("n_objects", [0, 1])
def test_no_border_term_with_fewer_than_two_objects(n_objects):
    ins = np.zeros((12, 12), np.int32)
    if n_objects:
        ins[3:6, 3:6] = 4
    np.testing.assert_array_equal(weight_map(ins), class_weights(ins))
    np.testing.assert_array_equal(weight_map(ins, class_balance=False), 1.0)


def test_batch_matches_single_images():
    from unet_scratch.data import cells
    _, _, ins = cells(3, size=48, seed=2)
    w = weight_maps(ins)
    assert w.shape == (3, 48, 48) and w.dtype == np.float32
    for i in range(3):
        np.testing.assert_array_equal(w[i], weight_map(ins[i]))
    assert weight_maps(ins[..., None]).shape == (3, 48, 48, 1)
    assert w.max() > 5                                      # the generated cells have thin gaps


def test_errors():
    with pytest.raises(TypeError, match="label them first"):
        weight_map(np.zeros((4, 4), np.float32))
    with pytest.raises(ValueError, match="weight_maps"):
        weight_map(np.zeros((2, 4, 4), np.int32))
    with pytest.raises(ValueError, match="at least two"):
        nearest_two_distances(np.ones((3, 3), np.int32))
    with pytest.raises(ValueError, match="positive"):
        weight_map(_two_squares(), sigma=0)
