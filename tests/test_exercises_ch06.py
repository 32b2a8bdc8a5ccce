"""Chapter 06's exercise checks accept right answers, reject stubs and name each classic mistake."""
import math
import re

import numpy as np
import pytest

from unet_scratch.exercises.ch06 import (check_count_routing_differences, check_oihw_to_hwio,
                                         check_order_of_magnitude)

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def _windows(x):
    n, h, w, c = x.shape
    return x.reshape(n, h // 2, 2, w // 2, 2, c).transpose(0, 1, 3, 5, 2, 4).reshape(n, h // 2, w // 2, c, 4)


def _first_max(x):
    return _windows(x).argmax(axis=-1)


def test_checks_accept_correct_answers(capsys):
    assert check_oihw_to_hwio(lambda w: np.transpose(w, (2, 3, 1, 0)))
    assert check_oihw_to_hwio(lambda w: np.moveaxis(w, (0, 1), (3, 2)))              # another right way
    assert check_count_routing_differences(lambda a, b: int(np.sum(_first_max(a) != _first_max(b))))
    assert check_order_of_magnitude(lambda e: None if e == 0 else int(np.floor(np.log10(e))))
    out = capsys.readouterr().out
    assert out.count("correct") == 4
    assert "order_of_magnitude passes 7 cases" in out


@pytest.mark.parametrize("check", [check_oihw_to_hwio, check_count_routing_differences,
                                   check_order_of_magnitude])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def _named(name):
    return "your answer is what " + re.escape(name) + "|that is what " + re.escape(name)


@pytest.mark.parametrize("wrong, name", [
    (lambda w: np.transpose(w, (3, 2, 1, 0)), "w.T (every axis reversed"),
    (lambda w: np.transpose(w, (2, 3, 0, 1)), "the channels swapped"),
    (lambda w: np.reshape(w, (w.shape[2], w.shape[3], w.shape[1], w.shape[0])), "a reshape instead of a transpose"),
])
def test_oihw_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"oihw_to_hwio \(a 3x3 kernel.*" + _named(name)):
        check_oihw_to_hwio(wrong)


def by_value(a, b):
    def pooled(x):
        n, h, w, c = x.shape
        return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))
    return int(np.sum(pooled(a) != pooled(b)))


def tie_sets(a, b):
    def mask(x):
        win = _windows(x)
        return win == win.max(axis=-1, keepdims=True)
    return int(np.sum(np.any(mask(a) != mask(b), axis=-1)))


def last_max(a, b):
    def last(x):                                     # a loop with >= walks past the first maximum
        win = _windows(x)
        out = np.zeros(win.shape[:-1], int)
        for idx in np.ndindex(*win.shape[:-1]):
            best = -np.inf
            for k in range(4):
                if win[idx + (k,)] >= best:
                    best, out[idx] = win[idx + (k,)], k
        return out
    return int(np.sum(last(a) != last(b)))


@pytest.mark.parametrize("wrong, case, name", [
    (by_value, "the same winner, one ulp larger", "comparing the pooled maximum VALUES"),
    (tie_sets, "a tie broken by one ulp in favour of the first pixel", "comparing the SETS of tied maxima"),
    (last_max, "a tie broken by one ulp towards the second pixel", "the LAST maximum of each window"),
])
def test_routing_names_each_mistake(wrong, case, name):
    with pytest.raises(AssertionError, match=rf"count_routing_differences \({case}.*" + _named(name)):
        check_count_routing_differences(wrong)


def test_routing_rejects_a_float_count():
    with pytest.raises(AssertionError, match=r"expected 0, got 0\.0"):
        check_count_routing_differences(lambda a, b: float(np.sum(_first_max(a) != _first_max(b))))


@pytest.mark.parametrize("wrong, name", [
    (lambda e: None if e == 0 else int(np.round(np.log10(e))), "log10 rounded to the nearest integer"),
    (lambda e: None if e == 0 else int(np.log10(e)), "log10 rounded up, or towards zero"),
    (lambda e: None if e == 0 else math.ceil(math.log10(e)), "log10 rounded up, or towards zero"),
])
def test_order_of_magnitude_names_each_mistake(wrong, name):
    with pytest.raises(AssertionError, match=r"order_of_magnitude \(err = .*" + _named(name)):
        check_order_of_magnitude(wrong)


def test_order_of_magnitude_explains_zero():
    with pytest.raises(AssertionError, match=r"err = 0\.0\): OverflowError.*return None"):
        check_order_of_magnitude(lambda e: int(math.floor(np.log10(e))) if e else int(-np.inf))
    with pytest.raises(AssertionError, match=r"err = 0\.0\): expected None, got 0"):
        check_order_of_magnitude(lambda e: 0 if e == 0 else int(np.floor(np.log10(e))))
