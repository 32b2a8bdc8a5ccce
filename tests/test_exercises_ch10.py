"""Chapter 10's checks accept the solution, reject stubs and plausible mistakes."""
import numpy as np
import pytest

from unet_scratch.exercises import ch10

from conftest import stub  # tests/conftest.py: an exercise as handed out, NotImplementedError


def test_solutions_pass():
    assert ch10.check_mirror_pad(lambda a, m: np.pad(a, m, mode="reflect"))
    assert ch10.check_tile_origins(lambda s, o, st: [i * st for i in range(max(1, -(-(s - o) // st) + 1))])
    assert ch10.check_skip_crop(lambda s, u: ((s - u) // 2, s - u - (s - u) // 2))


@pytest.mark.parametrize("check", [ch10.check_mirror_pad, ch10.check_tile_origins, ch10.check_skip_crop])
def test_stubs_are_not_implemented_yet(check):
    with pytest.raises(AssertionError, match="not implemented yet"):
        check(stub)


def test_mistakes_are_named():
    with pytest.raises(AssertionError, match="symmetric"):
        ch10.check_mirror_pad(lambda a, m: np.pad(a, m, mode="symmetric"))
    with pytest.raises(AssertionError, match="tile_origins"):
        ch10.check_tile_origins(lambda s, o, st: list(range(0, s, st)))
    with pytest.raises(AssertionError, match=r"expected \(1, 2\)"):
        ch10.check_skip_crop(lambda s, u: (s - u - (s - u) // 2, (s - u) // 2))
