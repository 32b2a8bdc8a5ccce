"""The troubleshooting appendix's exercise checks accept right answers, reject stubs, explain wrong ones."""
import numpy as np
import pytest

from unet_scratch.exercises.appendix import check_fix_mask, check_nearest_legal_sizes, check_pos_weight

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def legal(size, depth):
    step = 2 ** depth
    below = size // step * step
    above = -(-size // step) * step
    return below, above


def fix_mask(mask):
    mask = np.asarray(mask, dtype=np.float64)
    return (mask > (127.5 if mask.max() > 1 else 0.5)).astype(np.float32)


def pos_weight(mask):
    return float((mask == 0).sum() / (mask == 1).sum())


def test_checks_accept_correct_answers(capsys):
    assert check_nearest_legal_sizes(legal)
    assert check_fix_mask(fix_mask)
    assert check_pos_weight(pos_weight)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_nearest_legal_sizes, check_fix_mask, check_pos_weight])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_checks_say_what_is_wrong():
    with pytest.raises(AssertionError, match=r"nearest_legal_sizes\(100, 4\): expected \(96, 112\), got \(96, 96\)"):
        check_nearest_legal_sizes(lambda s, d: (s // 2 ** d * 2 ** d,) * 2)           # rounds down only
    with pytest.raises(AssertionError, match=r"fix_mask \(uint8 mask saved as JPEG"):
        check_fix_mask(lambda m: (np.asarray(m) / max(np.asarray(m).max(), 1)).astype(np.float32))  # / 255 only
    with pytest.raises(AssertionError, match="dtype is float64"):
        check_fix_mask(lambda m: fix_mask(m).astype(np.float64))
    with pytest.raises(AssertionError, match=r"pos_weight \(mask of shape"):
        check_pos_weight(lambda m: float((m == 1).sum() / (m == 0).sum()))              # upside down
