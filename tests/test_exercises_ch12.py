"""Chapter 12's check: a right answer passes, a stub is 'not implemented yet', each named mistake is named."""
from pathlib import PurePath

import pytest

from conftest import stub
from unet_scratch.exercises.ch12 import check_pair_by_name


def right(images, masks):
    by_stem = {PurePath(m).stem: m for m in masks}
    pairs = []
    for i in images:
        stem = PurePath(i).stem
        if stem not in by_stem:
            raise ValueError(f"image {i} has no mask")
        pairs.append((i, by_stem[stem]))
    return pairs


def by_position(images, masks):
    return list(zip(sorted(images), sorted(masks)))


def with_extension(images, masks):
    return [(i, i) for i in images if i in masks]


def by_prefix(images, masks):
    out = []
    for i in images:
        for m in sorted(masks):
            if PurePath(m).stem.startswith(PurePath(i).stem):
                out.append((i, m))
                break
    return out


def drops_unmatched(images, masks):
    by_stem = {PurePath(m).stem: m for m in masks}
    return [(i, by_stem[PurePath(i).stem]) for i in images if PurePath(i).stem in by_stem]


def test_right_answer_passes(capsys):
    assert check_pair_by_name(right)
    assert "correct: pair_by_name passes 4 cases" in capsys.readouterr().out


def test_stub_is_not_implemented_yet():
    with pytest.raises(AssertionError, match="not implemented yet"):
        check_pair_by_name(stub)


@pytest.mark.parametrize("wrong,named", [
    (by_position, "pairing by position"),
    (with_extension, "comparing whole file names, extension included"),
    (by_prefix, "matching names by prefix"),
    (drops_unmatched, "raising ValueError naming it"),
])
def test_named_mistakes(wrong, named):
    with pytest.raises(AssertionError, match=named):
        check_pair_by_name(wrong)
