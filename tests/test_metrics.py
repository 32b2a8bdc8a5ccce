"""Metrics: hand-computed values, empty-mask conventions, a brute-force pair oracle for the Rand index."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from unet_scratch.metrics import (adapted_rand_error, contingency_table, count_separated, dice, iou,
                                  pixel_error, rand_error)


def test_binary_metrics_by_hand():
    pred, target = np.array([1, 1, 0, 0]), np.array([1, 0, 1, 0])
    assert dice(pred, target) == 0.5                     # 2 * 1 / (2 + 2)
    assert iou(pred, target) == pytest.approx(1 / 3)     # 1 / 3
    assert pixel_error(pred, target) == 0.5
    assert isinstance(dice(pred, target), float)


def test_probabilities_threshold_at_one_half():
    probs = np.array([0.6, 0.5, 0.2, 0.9], np.float32)    # 0.5 itself is background
    target = np.array([1, 0, 0, 1])
    assert dice(probs, target) == 1.0 and iou(probs, target) == 1.0 and pixel_error(probs, target) == 0.0


def test_empty_mask_conventions():
    z, one = np.zeros((3, 3)), np.eye(3)
    assert dice(z, z) == 1.0 and iou(z, z) == 1.0 and pixel_error(z, z) == 0.0
    assert dice(z, one) == 0.0 and iou(one, z) == 0.0
    assert pixel_error(z, one) == pytest.approx(3 / 9)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), seed=st.integers(0, 10**6))
def test_dice_iou_relation_and_symmetry(n, seed):
    rng = np.random.default_rng(seed)
    a, b = rng.random(n) > 0.5, rng.random(n) > 0.5
    j = iou(a, b)
    assert dice(a, b) == pytest.approx(2 * j / (1 + j))
    assert dice(a, b) == dice(b, a) and 0 <= pixel_error(a, b) <= 1


def test_rand_error_by_hand_and_invariances():
    pred, target = np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])
    assert rand_error(pred, target) == pytest.approx(0.5)     # 3 of 6 pairs agree
    assert rand_error(pred + 7, target * 3) == pytest.approx(0.5)
    assert rand_error(target, target) == 0.0
    assert rand_error(np.array([4]), np.array([2])) == 0.0     # no pairs


def _rand_error_naive(p, t):
    """Oracle: loop over all pixel pairs."""
    p, t = p.ravel(), t.ravel()
    agree = total = 0
    for i in range(p.size):
        for j in range(i + 1, p.size):
            agree += (p[i] == p[j]) == (t[i] == t[j])
            total += 1
    return 1 - agree / total


@settings(max_examples=20, deadline=None)
@given(n=st.integers(2, 40), k=st.integers(1, 5), seed=st.integers(0, 10**6))
def test_rand_error_matches_pair_loop(n, k, seed):
    rng = np.random.default_rng(seed)
    p, t = rng.integers(0, k, n), rng.integers(0, k, n)
    assert rand_error(p, t) == pytest.approx(_rand_error_naive(p, t), abs=1e-12)


def test_rand_oracle_can_fail():
    p = np.array([0, 0, 1, 1])
    assert rand_error(p, p) != pytest.approx(_rand_error_naive(p, np.array([0, 1, 0, 1])))


def test_adapted_rand_error_by_hand():
    target = np.array([1, 1, 2, 2, 0, 0])
    pred = np.array([5, 5, 5, 5, 7, 9])               # merges two cells; background ignored
    # sum n_ij(n_ij-1) = 4; over pred segments 12; over true segments 4: P = 1/3, R = 1, F = 1/2.
    assert adapted_rand_error(pred, target) == pytest.approx(0.5)
    assert adapted_rand_error(target * 2, target) == 0.0
    assert adapted_rand_error(np.array([1, 2, 3]), np.array([4, 5, 6])) == 0.0   # all singletons agree
    with pytest.raises(ValueError, match="no foreground"):
        adapted_rand_error(pred, np.zeros(6, int))


def test_contingency_table():
    n = contingency_table(np.array([[0, 0], [3, 3]]), np.array([[1, 2], [2, 2]]))
    np.testing.assert_array_equal(n, [[1, 1], [0, 2]])


def _two_squares():
    ins = np.zeros((30, 40), np.int32)
    ins[10:20, 5:15] = 1
    ins[10:20, 17:27] = 2
    return ins


def test_count_separated():
    ins = _two_squares()
    assert count_separated(ins > 0, ins) == 2
    merged = ins > 0
    merged[10:20, 15:17] = True                        # gap filled: one blob covering both
    assert count_separated(merged, ins) == 0           # IoU 100/220 < 0.5 with each
    assert count_separated(ins == 1, ins) == 1
    assert count_separated(np.zeros_like(ins), ins) == 0
    grown = np.zeros_like(ins, bool)
    grown[9:21, 4:16] = True                           # IoU 100/144 > 0.5: still a match
    assert count_separated(grown, ins) == 1


def test_errors():
    with pytest.raises(ValueError, match="differ"):
        dice(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="divide by 255"):
        iou(np.array([0, 255]), np.array([0, 1]))
    with pytest.raises(TypeError, match="integer labels"):
        rand_error(np.array([0.5, 1.0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="one-to-one"):
        count_separated(_two_squares() > 0, _two_squares(), iou_threshold=0.3)


# ------------------------------------------------------------------------ scores for your own data
def test_segmentation_scores_per_class_and_regions():
    from unet_scratch.metrics import regions, segmentation_scores
    target = np.zeros((8, 8), np.uint8)
    target[:, 4] = 1                                          # a membrane splitting two cells
    pred = target.copy()
    assert regions(target, 0).max() == 2
    s = segmentation_scores(pred, target, regions_of=0)
    assert s["pixel_error"] == 0 and s["dice"] == [1.0, 1.0] and s["adapted_rand_error"] == 0
    pred[3, 4] = 0                                            # a gap in the membrane merges the two cells
    s = segmentation_scores(pred, target, regions_of=0)
    assert s["pixel_error"] == 1 / 64 and s["dice"][1] < 1
    assert s["adapted_rand_error"] > 0.3                      # one pixel, but the regions merged


def test_best_threshold_baseline_finds_the_separating_level_and_direction():
    from unet_scratch.metrics import best_threshold_baseline
    rng = np.random.default_rng(0)
    target = (rng.random((2, 16, 16)) < 0.3).astype(np.uint8)
    images = np.where(target == 1, 0.2, 0.8) + rng.normal(0, 0.02, target.shape)    # dark foreground
    b = best_threshold_baseline(images, target)
    assert b["foreground"] == "dark" and 0.2 < b["threshold"] < 0.8 and b["pixel_error"] == 0
    b = best_threshold_baseline(1 - images, target)
    assert b["foreground"] == "bright" and b["pixel_error"] == 0
