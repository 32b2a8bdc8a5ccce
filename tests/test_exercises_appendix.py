"""The troubleshooting appendix's exercise checks accept right answers, reject stubs, name each mistake."""
import re

import numpy as np
import pytest

from unet_scratch.exercises.appendix import check_fix_mask, check_pad_to_legal, check_pos_weight

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def pad_to_legal(x, depth, where="split", mode="reflect", multiple=None, always=False):
    step = 2 ** depth if multiple is None else multiple
    widths = [(0, 0)]
    for size in x.shape[1:3]:
        legal = size + step if always and size % step == 0 else -(-size // step) * step
        total = legal - size
        top = {"split": total // 2, "end": 0, "odd top": total - total // 2}[where]
        widths.append((top, total - top))
    return np.pad(x, widths + [(0, 0)], mode=mode)


def fix_mask(mask):
    mask = np.asarray(mask, dtype=np.float64)
    return (mask > (127.5 if mask.max() > 1 else 0.5)).astype(np.float32)


def pos_weight(mask):
    return float((mask == 0).sum() / (mask == 1).sum())


def test_checks_accept_correct_answers(capsys):
    assert check_pad_to_legal(pad_to_legal)
    assert check_fix_mask(fix_mask)
    assert check_pos_weight(pos_weight)
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_pad_to_legal, check_fix_mask, check_pos_weight])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


@pytest.mark.parametrize("kw, case, name", [
    (dict(where="end"), r"\(1, 100, 100, 1\)", "all the padding at the bottom and right"),
    (dict(where="odd top"), r"\(2, 50, 37, 3\)", "the odd pixel padded at the top"),
    (dict(mode="constant"), r"\(1, 100, 100, 1\)", "zeros instead of a mirror"),
    (dict(always=True), r"\(1, 96, 64, 1\)", "a whole 2**depth added to a size that is already legal"),
    (dict(multiple=8), r"\(1, 100, 100, 1\)", "a multiple of 2 * depth instead of 2 ** depth"),
])
def test_pad_to_legal_names_each_mistake(kw, case, name):
    with pytest.raises(AssertionError, match=r"pad_to_legal \(" + case + r".*your answer is what " + re.escape(name)):
        check_pad_to_legal(lambda x, depth: pad_to_legal(x, depth, **kw))


def scaled_only(m):
    m = np.asarray(m, dtype=np.float32)
    return m / 255 if m.max() > 1 else m


@pytest.mark.parametrize("wrong, case, name", [
    (scaled_only, "uint8 mask saved as JPEG", "a division by 255 without a threshold"),
    (lambda m: np.where(np.asarray(m) > 0.5, 1, 0).astype(np.float32), "uint8 mask saved as JPEG",
     "one threshold of 0.5 for every mask"),
    (lambda m: (np.asarray(m, np.float32) >= 128).astype(np.float32), "float mask already 0/1",
     "one threshold of 127.5 for every mask"),
])
def test_fix_mask_names_each_mistake(wrong, case, name):
    with pytest.raises(AssertionError, match=r"fix_mask \(" + case + r".*your answer is what " + re.escape(name)):
        check_fix_mask(wrong)


def test_fix_mask_rejects_float64():
    with pytest.raises(AssertionError, match="dtype is float64"):
        check_fix_mask(lambda m: fix_mask(m).astype(np.float64))


@pytest.mark.parametrize("wrong, name", [
    (lambda m: float(np.sum(m > 0) / np.sum(m < 1)), "foreground / background"),
    (lambda m: float(np.mean(m == 0)), "the background's share of all pixels"),
    (lambda m: float(1 / np.mean(m)), "the inverse of the foreground's share"),
])
def test_pos_weight_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"pos_weight \(mask of shape .*your answer is what " + re.escape(name)):
        check_pos_weight(wrong)
