"""Chapter 12's exercise: pairing images with their masks by file name.

The check names the classic mistakes (see :class:`~unet_scratch.exercises.base.Mistake`).
"""
from __future__ import annotations

from pathlib import PurePath

from .base import Mistake, call_student, message, tr

CASES = [
    (["b.png", "a.png"], ["a.png", "b.png"], [("b.png", "b.png"), ("a.png", "a.png")],
     ("two images, masks listed in another order", "两幅图像，掩码按另一种顺序列出")),
    (["cell_1.tif", "cell_2.tif"], ["cell_1.png", "cell_2.png"], [("cell_1.tif", "cell_1.png"), ("cell_2.tif", "cell_2.png")],
     ("TIFF images, PNG masks", "TIFF 图像，PNG 掩码")),
    (["s1.png", "s2.png", "s10.png"], ["notes.png", "s1-old.png", "s1.png", "s10.png", "s2.png"],
     [("s1.png", "s1.png"), ("s2.png", "s2.png"), ("s10.png", "s10.png")],
     ("extra masks without an image", "多出几个没有对应图像的掩码")),
]                                          # each label: (English, Chinese), chosen by base.language()
MISSING = (["a.png", "b.png", "c.png"], ["a.png", "c.png"], "b.png")

MISTAKES = [
    Mistake("pairing by position (zip of the two sorted lists)",
            "pair by name: a folder's order says nothing about which mask belongs to which image, and one extra "
            "or missing file shifts every pair after it",
            lambda images, masks: list(zip(sorted(images), sorted(masks))),
            zh=("按位置配对（把两个排好序的列表 zip 起来）",
                "按名字配对：文件夹里的顺序并不说明哪个掩码属于哪幅图像，而且只要多一个或少一个文件，"
                "它后面的每一对就都错开了")),
    Mistake("comparing whole file names, extension included",
            "compare the stems (PurePath(name).stem): an image cell_1.tif and its mask cell_1.png belong together",
            lambda images, masks: [(i, i) for i in images if i in masks],
            zh=("连扩展名一起比较整个文件名",
                "比较主干名（PurePath(name).stem）：图像 cell_1.tif 和它的掩码 cell_1.png 是一对")),
    Mistake("matching names by prefix (startswith)",
            "compare whole stems: 's1' is a prefix of 's10', so a prefix match pairs s1 with the wrong mask",
            lambda images, masks: [(i, next(m for m in sorted(masks) if PurePath(m).stem.startswith(PurePath(i).stem)))
                                   for i in images],
            zh=("按前缀匹配文件名（startswith）",
                "比较完整的主干名：'s1' 是 's10' 的前缀，按前缀匹配会把 s1 配给错误的掩码")),
]


def check_pair_by_name(fn):
    """fn(image_names, mask_names) -> [(image, mask), ...] in the images' order, paired by stem; an image
    without a mask raises ValueError naming it."""
    what = "pair_by_name"
    for images, masks, expected, labels in CASES:
        label = tr(*labels)
        got = call_student(fn, (list(images), list(masks)), what)
        if got is None:
            raise AssertionError(message("returned_none", what=what, label=label))
        got = [tuple(p) for p in got]
        if got != expected:
            for mistake in MISTAKES:
                try:
                    wrong = [tuple(p) for p in mistake.answer(list(images), list(masks))]
                except Exception:                       # noqa: BLE001 - a mistake that does not apply here
                    continue
                if got == wrong:
                    name, fix = mistake.text()
                    raise AssertionError(message("mistake", what=what, label=label, name=name, fix=fix))
            raise AssertionError(tr(f"{what} ({label}): expected {expected}, got {got}",
                                    f"{what}（{label}）：应为 {expected}，你得到 {got}"))
    images, masks, name = MISSING
    try:
        got = call_student(fn, (list(images), list(masks)), what)
    except ValueError as err:
        if name not in str(err):
            raise AssertionError(tr(f"{what}: the ValueError for an image without a mask should name it ({name!r}); "
                                    f"yours says {str(err)!r}",
                                    f"{what}：没有掩码的图像引发的 ValueError 应当写明这幅图像（{name!r}）；"
                                    f"你写的是 {str(err)!r}")) from None
    else:
        raise AssertionError(tr(f"{what}: image {name!r} has no mask, but your function returned {got} instead of "
                                "raising ValueError naming it (a silently dropped or mispaired image is worse than an "
                                "error)",
                                f"{what}：图像 {name!r} 没有掩码，你的函数却返回了 {got}，而没有抛出写明这幅图像的 "
                                "ValueError（悄悄丢掉或配错一幅图像，比报错更糟）"))
    print(message("correct_cases", what=what, n=len(CASES) + 1))
    return True
