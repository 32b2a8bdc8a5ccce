"""Generated data sets: shapes, ranges, determinism, disjoint splits, hardness, validation errors."""
import warnings

import numpy as np
import pytest

from unet_scratch import data


@pytest.fixture(scope="module")
def memb():
    return data.membranes(6, size=64, seed=1)


@pytest.fixture(scope="module")
def cell():
    return data.cells(6, size=64, seed=1)


def test_membranes_shapes_dtypes_ranges(memb):
    x, m = memb
    assert x.shape == m.shape == (6, 64, 64, 1)
    assert x.dtype == m.dtype == np.float32
    assert 0 <= x.min() and x.max() <= 1 and x.std() > 0.1
    assert set(np.unique(m)) == {0.0, 1.0}
    assert 0.1 < m.mean() < 0.45                       # membranes are a minority class, not absent


def test_membranes_deterministic_and_prefix_stable():
    x1, m1 = data.membranes(3, size=32, seed=5)
    x2, m2 = data.membranes(2, size=32, seed=5)
    np.testing.assert_array_equal(x1[:2], x2)
    np.testing.assert_array_equal(m1[:2], m2)
    assert not np.array_equal(data.membranes(1, size=32, seed=6)[0], x1[:1])


def test_membranes_not_solved_by_a_global_threshold():
    x, m = data.membranes(8, size=128, seed=2)
    target = m > 0.5
    best = 0.0
    for t in np.linspace(0, 1, 101):
        for pred in (x < t, x > t):
            best = max(best, 2 * (pred & target).sum() / (pred.sum() + target.sum()))
    assert best < 0.8, f"best global-threshold Dice {best:.3f}: thresholding alone would solve it"


def test_cells_instances_and_gaps(cell):
    x, m, ins = cell
    assert x.shape == m.shape == (6, 64, 64, 1) and ins.shape == (6, 64, 64)
    assert ins.dtype == np.int32 and x.dtype == m.dtype == np.float32
    np.testing.assert_array_equal(m[..., 0] > 0, ins > 0)
    # Gaps: no two different objects are 4-neighbours anywhere.
    for a, b in ((ins[:, 1:, :], ins[:, :-1, :]), (ins[:, :, 1:], ins[:, :, :-1])):
        assert not np.any((a > 0) & (b > 0) & (a != b))
    assert all(len(np.unique(i)) - 1 >= 3 for i in ins)


def test_cells_do_touch():
    """At least some objects are separated only by the thin gap (the weight map's case)."""
    from scipy import ndimage
    _, _, ins = data.cells(4, size=128, seed=0)
    touching = 0
    for i in ins:
        grown = ndimage.grey_dilation(i, size=(3, 3))         # a 1-px grow closes a 2-px gap
        touching += np.sum((ndimage.grey_erosion(np.where(grown == 0, 10**6, grown), size=(3, 3)) != grown)
                           & (grown > 0) & (i == 0))
    assert touching > 0


def test_load_splits_disjoint_and_fixed():
    tr = data.load("membranes", "train", n=2, size=32)
    va = data.load("membranes", "val", n=2, size=32)
    np.testing.assert_array_equal(tr[0], data.load("membranes", "train", n=2, size=32)[0])
    assert not np.any([np.array_equal(a, b) for a in tr[0] for b in va[0]])
    assert len(data.load("cells", "test", n=1, size=32)) == 3
    assert data.DEFAULT_COUNTS == {"train": 64, "val": 16, "test": 16}


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="isbi"), "unknown data set 'isbi'"),
    (dict(name="cells", split="training"), "unknown split 'training'"),
    (dict(name="cells", n=0), "at least one image"),
    (dict(name="membranes", n=-3), "at least one image"),
    (dict(name="membranes", size=8), "at least 16"),
])
def test_load_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load(**kwargs)


def test_check_pair_normalises_0_255_masks_with_warning(rng):
    image = rng.random((16, 16, 1)).astype(np.float32)
    mask = (rng.random((16, 16, 1)) > 0.5).astype(np.uint8) * 255
    with pytest.warns(UserWarning, match="0/255"):
        x, m = data.check_pair(image, mask)
    assert m.dtype == np.float32 and set(np.unique(m)) == {0.0, 1.0}
    np.testing.assert_array_equal(x, image)


def test_check_pair_clean_input_no_warning(rng):
    image = (rng.random((2, 8, 8, 1)) * 255).astype(np.uint8)
    mask = (rng.random((2, 8, 8, 1)) > 0.5).astype(np.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x, m = data.check_pair(image, mask)
    assert x.dtype == np.float32 and x.max() <= 1


def test_check_pair_errors(rng):
    with pytest.raises(ValueError, match=r"\(16, 16\).*\(16, 12\)"):
        data.check_pair(rng.random((16, 16)), np.zeros((16, 12)))
    with pytest.raises(ValueError, match="JPEG"):
        data.check_pair(rng.random((4, 4)), np.array([[0, 3, 255, 254]] * 4))
