"""Chapter 12's exercise: pairing images with their masks by file name.

The check names the classic mistakes (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

from pathlib import PurePath

from .base import Mistake, call_student

CASES = [
    (["b.png", "a.png"], ["a.png", "b.png"], [("b.png", "b.png"), ("a.png", "a.png")], "two images, masks listed in another order"),
    (["cell_1.tif", "cell_2.tif"], ["cell_1.png", "cell_2.png"], [("cell_1.tif", "cell_1.png"), ("cell_2.tif", "cell_2.png")],
     "TIFF images, PNG masks"),
    (["s1.png", "s2.png", "s10.png"], ["notes.png", "s1-old.png", "s1.png", "s10.png", "s2.png"],
     [("s1.png", "s1.png"), ("s2.png", "s2.png"), ("s10.png", "s10.png")], "extra masks without an image"),
]
MISSING = (["a.png", "b.png", "c.png"], ["a.png", "c.png"], "b.png")

MISTAKES = [
    Mistake("pairing by position (zip of the two sorted lists)",
            "pair by name: a folder's order says nothing about which mask belongs to which image, and one extra "
            "or missing file shifts every pair after it",
            lambda images, masks: list(zip(sorted(images), sorted(masks)))),
    Mistake("comparing whole file names, extension included",
            "compare the stems (PurePath(name).stem): an image cell_1.tif and its mask cell_1.png belong together",
            lambda images, masks: [(i, i) for i in images if i in masks]),
    Mistake("matching names by prefix (startswith)",
            "compare whole stems: 's1' is a prefix of 's10', so a prefix match pairs s1 with the wrong mask",
            lambda images, masks: [(i, next(m for m in sorted(masks) if PurePath(m).stem.startswith(PurePath(i).stem)))
                                   for i in images]),
]


def check_pair_by_name(fn):
    """fn(image_names, mask_names) -> [(image, mask), ...] in the images' order, paired by stem; an image
    without a mask raises ValueError naming it."""
    what = "pair_by_name"
    for images, masks, expected, label in CASES:
        got = call_student(fn, (list(images), list(masks)), what)
        if got is None:
            raise AssertionError(f"{what} ({label}): your function returned None; did you forget `return`?")
        got = [tuple(p) for p in got]
        if got != expected:
            for mistake in MISTAKES:
                try:
                    wrong = [tuple(p) for p in mistake.answer(list(images), list(masks))]
                except Exception:                       # noqa: BLE001 - a mistake that does not apply here
                    continue
                if got == wrong:
                    raise AssertionError(f"{what} ({label}): your answer is what {mistake.name} gives. {mistake.fix}")
            raise AssertionError(f"{what} ({label}): expected {expected}, got {got}")
    images, masks, name = MISSING
    try:
        got = call_student(fn, (list(images), list(masks)), what)
    except ValueError as err:
        if name not in str(err):
            raise AssertionError(f"{what}: the ValueError for an image without a mask should name it ({name!r}); "
                                 f"yours says {str(err)!r}") from None
    else:
        raise AssertionError(f"{what}: image {name!r} has no mask, but your function returned {got} instead of "
                             "raising ValueError naming it (a silently dropped or mispaired image is worse than an "
                             "error)")
    print(f"correct: {what} passes {len(CASES) + 1} cases")
    return True
