"""Chapter 06's exercise checks accept right answers, reject stubs and say what is wrong with wrong ones."""
import numpy as np
import pytest

from unet_scratch.exercises.ch06 import (check_count_routing_differences, check_oihw_to_hwio,
                                         check_order_of_magnitude)

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _first_max(x):
    n, h, w, c = x.shape
    win = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)
    return win.argmax(axis=-1)


def test_checks_accept_correct_answers(capsys):
    assert check_oihw_to_hwio(lambda w: np.transpose(w, (2, 3, 1, 0)))
    assert check_count_routing_differences(lambda a, b: int(np.sum(_first_max(a) != _first_max(b))))
    assert check_order_of_magnitude(lambda e: None if e == 0 else int(np.floor(np.log10(e))))
    assert capsys.readouterr().out.count("correct") == 3


@pytest.mark.parametrize("check", [check_oihw_to_hwio, check_count_routing_differences,
                                   check_order_of_magnitude])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_oihw_rejects_plain_transpose():
    # w.T is (KW, KH, I, O): right shape for a square kernel, wrong values
    with pytest.raises(AssertionError, match=r"oihw_to_hwio \(a 3x3 kernel.*largest difference"):
        check_oihw_to_hwio(lambda w: w.T)


def test_routing_rejects_value_comparison():
    # comparing the pooled maxima counts a window whose winner stays put but grows by one ulp
    def by_value(a, b):
        def pooled(x):
            n, h, w, c = x.shape
            return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
        return int(np.sum(pooled(a) != pooled(b)))
    with pytest.raises(AssertionError, match=r"count_routing_differences \(the same winner, one ulp larger"):
        check_count_routing_differences(by_value)


def test_routing_rejects_tie_sets():
    # counting windows whose SET of maxima differs: a tie broken in favour of the first pixel is no change
    def tie_sets(a, b):
        def mask(x):
            n, h, w, c = x.shape
            win = x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)
            return win == win.max(axis=-1, keepdims=True)
        return int(np.sum(np.any(mask(a) != mask(b), axis=-1)))
    with pytest.raises(AssertionError, match=r"in favour of the first pixel.*expected 0, got 1"):
        check_count_routing_differences(tie_sets)


def test_order_of_magnitude_rejects_rounding():
    with pytest.raises(AssertionError, match=r"order_of_magnitude\(9\.7e-07\): expected -7, got -6"):
        check_order_of_magnitude(lambda e: None if e == 0 else int(np.round(np.log10(e))))
