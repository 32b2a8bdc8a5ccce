"""Chapter 06b's exercise check accepts right answers, rejects a stub and names each classic mistake, each fed
as a real wrong implementation (not the Mistake's own function)."""
import re

import numpy as np
import pytest

from unet_scratch.exercises.base import language
from unet_scratch.exercises.ch06b import UPSAMPLE_BACKWARD_MISTAKES, check_upsample_backward

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def by_reshape(dy):
    n, h2, w2, c = dy.shape
    return dy.reshape(n, h2 // 2, 2, w2 // 2, 2, c).sum(axis=(2, 4))


def by_loops(dy):
    """The naive version: every dy pixel added to the x pixel it was copied from."""
    n, h2, w2, c = dy.shape
    dx = np.zeros((n, h2 // 2, w2 // 2, c), dtype=dy.dtype)
    for i in range(h2):
        for j in range(w2):
            dx[:, i // 2, j // 2, :] += dy[:, i, j, :]
    return dx


def by_strided_sum(dy):
    return dy[:, 0::2, 0::2] + dy[:, 0::2, 1::2] + dy[:, 1::2, 0::2] + dy[:, 1::2, 1::2]


@pytest.mark.parametrize("answer", [by_reshape, by_loops, by_strided_sum])
def test_the_check_accepts_correct_answers(answer, capsys):
    assert check_upsample_backward(answer)
    out = capsys.readouterr().out
    assert "correct: upsample_backward passes 4 cases (largest relative error" in out


def test_the_check_rejects_a_stub():
    with pytest.raises(AssertionError, match="upsample_backward: not implemented yet"):
        check_upsample_backward(stub)


def _named(name):
    return "your answer is what " + re.escape(name)


def subsampled(dy):
    return dy[:, ::2, ::2, :].copy()


def block_mean(dy):
    return by_loops(dy) / 4


def upsampled_again(dy):
    return np.repeat(np.repeat(dy, 2, axis=1), 2, axis=2)


def wrong_axes(dy):
    n, h2, w2, c = dy.shape
    return np.add.reduce(np.add.reduce(dy.reshape(n, h2 // 2, 2, w2 // 2, 2, c), axis=3), axis=1)


def split_the_wrong_way(dy):
    n, h2, w2, c = dy.shape
    h, w = h2 // 2, w2 // 2
    return dy[:, :h, :w] + dy[:, :h, w:] + dy[:, h:, :w] + dy[:, h:, w:]     # quadrants, not 2x2 blocks


@pytest.mark.parametrize("wrong, name", [
    (subsampled, "subsampling dy[:, ::2, ::2]"),
    (block_mean, "the block mean (the sum divided by 4)"),
    (upsampled_again, "up-sampling dy again"),
    (wrong_axes, "summing over the wrong axes"),
    (split_the_wrong_way, "the reshape split the wrong way"),
])
def test_the_check_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"upsample_backward \(the worked example.*" + _named(name)):
        check_upsample_backward(wrong)


def test_every_named_mistake_is_fed_above():
    named = {"subsampling dy[:, ::2, ::2]", "the block mean (the sum divided by 4)", "up-sampling dy again",
             "summing over the wrong axes", "the reshape split the wrong way"}
    assert all(any(m.name.startswith(n) for n in named) for m in UPSAMPLE_BACKWARD_MISTAKES)
    assert len(UPSAMPLE_BACKWARD_MISTAKES) == len(named)


def test_an_unnamed_wrong_answer_gets_the_difference_and_where():
    def off_by_one_block(dy):
        dx = by_reshape(dy)
        dx[:, -1, -1, :] += 1.0
        return dx
    with pytest.raises(AssertionError, match=r"upsample_backward \(the worked example.*the output is wrong; "
                                             r"largest difference 1 at index \(0, 1, 2, 0\)"):
        check_upsample_backward(off_by_one_block)


def test_an_answer_that_changes_dy_in_place_is_refused():
    def in_place(dy):
        dy[...] = dy[:, ::-1]                                  # scribbles on the caller's gradient
        return by_reshape(dy)
    with pytest.raises(AssertionError, match="changed one of its input arrays in place"):
        check_upsample_backward(in_place)


def test_the_chinese_edition_names_the_mistake_in_chinese(monkeypatch):
    monkeypatch.setenv("UNET_SCRATCH_LANG", "zh")
    assert language() == "zh"
    with pytest.raises(AssertionError, match="块的平均值"):
        check_upsample_backward(block_mean)
