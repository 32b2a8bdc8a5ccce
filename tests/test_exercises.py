"""The exercise checks accept right answers and say what is wrong with the rest (and with a stub)."""
import pytest

from unet_scratch import exercises
from unet_scratch.checks import valid_output_size

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def test_checks_accept_correct_answers(capsys):
    assert exercises.check_same_unet_sizes(lambda s, d: [s // 2 ** i for i in range(d + 1)])
    assert exercises.check_conv_params(lambda k, ci, co: k * k * ci * co + co)
    assert exercises.check_valid_output_size(valid_output_size)
    assert "correct" in capsys.readouterr().out


@pytest.mark.parametrize("check", [exercises.check_same_unet_sizes, exercises.check_conv_params,
                                   exercises.check_valid_output_size])
def test_checks_reject_stubs(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_checks_say_what_is_wrong():
    with pytest.raises(AssertionError, match=r"conv_params\(3, 1, 64\): expected 640, got 576"):
        exercises.check_conv_params(lambda k, ci, co: k * k * ci * co)       # forgot the bias
    with pytest.raises(AssertionError, match=r"valid_output_size\(570, 4\): expected None"):
        exercises.check_valid_output_size(lambda s, d: s - 184)              # no legality check
