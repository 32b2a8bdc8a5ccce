"""The exercise checks accept right answers and say what is wrong with the rest (and with a stub)."""
import pytest


# (chapter 00's checks are tested in tests/test_exercises_ch00.py, like every other chapter's)
# ----------------------------------------------------------------------- the shared check machinery
def _double_cases():
    import numpy as np
    x = np.arange(6.0).reshape(2, 3) - 2.5
    return [((x,), 2 * x, "a 2 x 3 array")]


def test_check_arrays_names_a_known_mistake():
    from unet_scratch.exercises.base import Mistake, check_arrays
    mistakes = [Mistake("adding x to itself once too often", "return 2 * x", lambda x: 3 * x)]
    with pytest.raises(AssertionError, match=r"your answer is what adding x to itself once too often gives\. "
                                             r"return 2 \* x"):
        check_arrays(lambda x: 3 * x, _double_cases(), "double", mistakes=mistakes)
    with pytest.raises(AssertionError, match="largest difference"):          # an unknown mistake: a number
        check_arrays(lambda x: 4 * x, _double_cases(), "double", mistakes=mistakes)


def test_check_arrays_refuses_in_place_edits_and_a_missing_return():
    from unet_scratch.exercises.base import check_arrays

    def in_place(x):
        x *= 2
        return x
    with pytest.raises(AssertionError, match="changed one of its input arrays in place"):
        check_arrays(in_place, _double_cases(), "double")
    with pytest.raises(AssertionError, match=r"returned None; did you forget `return`"):
        check_arrays(lambda x: None, _double_cases(), "double")


def test_check_arrays_prints_a_rounded_error_bound(capsys):
    from unet_scratch.exercises.base import check_arrays, error_bound
    assert check_arrays(lambda x: 2 * x + 1e-12, _double_cases(), "double")
    assert "largest relative error < 1e-12, expected < 1e-05" in capsys.readouterr().out
    assert [error_bound(e) for e in (0.0, 3.2e-11, 1e-9, 2e-7, 0.5)] == [
        "0 (exact)", "< 1e-9", "< 1e-9", "< 1e-6", "< 1e0"]


def test_check_cases_names_a_known_mistake():
    from unet_scratch.exercises.base import Mistake, check_cases
    forgot_bias = Mistake("the kernel's weights without the bias", "add one bias per output channel",
                          lambda k, ci, co: k * k * ci * co)
    with pytest.raises(AssertionError, match="that is what the kernel's weights without the bias gives"):
        check_cases(lambda k, ci, co: k * k * ci * co, [((3, 1, 64), 640)], "conv_params", mistakes=[forgot_bias])
