"""The checks of chapters 06, 07, 08 and 09 speak Chinese in the Chinese edition.

Their tests (tests/test_exercises_ch06.py ... ch09.py) feed real wrong implementations and match the message in
four forms: the case label then "your answer is what" (06, 07, 09), the label then "... is what" ("your loss is
what", chapter 08), the label then "that is what" (the checks' own messages: 06's integer answers, 08's step
without an update, 09's FLOP count), or the label then the mistake's name alone (09's fused kernel). They are
replayed here in Chinese with test_exercises_zh_late_chapters's stand-in ``pytest``, taught those forms: each
message must be Chinese and name, in Chinese, the mistake whose English the test expects (with its Chinese
fix), never its English name.
"""
import importlib
import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from unet_scratch.exercises.base import LANG_VARIABLE

from conftest import stub

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import test_exercises_zh as zh_tests  # noqa: E402
import test_exercises_zh_late_chapters as late  # noqa: E402

MODULES = {"ch06": "test_exercises_ch06", "ch07": "test_exercises_ch07", "ch08": "test_exercises_ch08",
           "ch09": "test_exercises_ch09"}
CJK = zh_tests.CJK


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv(LANG_VARIABLE, "zh")


class _ChineseRaises(late._ChineseRaises):
    """The late chapters' stand-in, with the match cut to the part that names the mistake: from "your answer
    is what" or "that is what" on, "... is what X" read as "your answer is what X", and a match without "what"
    cut after its last ".*" (the label before it is checked by the English tests)."""

    def raises(self, error, match=None):
        if match is not None:
            found = re.search(r"(your answer is what|that is what|is what) ", match)
            if found and found.group(1) == "is what":
                match = "your answer is what " + match[found.end():]
            elif found:
                match = match[found.start():]
            elif ".*" in match:
                match = match.rsplit(".*", 1)[1]
        return super().raises(error, match=match)


@pytest.mark.parametrize("name", MODULES)
def test_every_mistake_has_its_chinese(name):
    zh_tests.test_every_mistake_of_the_translated_chapters_has_its_chinese(name)


@pytest.mark.parametrize("name", MODULES)
def test_the_chapters_wrong_implementations_are_named_in_chinese(zh, monkeypatch, name):
    tests = importlib.import_module(MODULES[name])
    shim = _ChineseRaises(zh_tests._mistakes(importlib.import_module(f"unet_scratch.exercises.{name}")))
    monkeypatch.setattr(tests, "pytest", shim)
    ran = 0
    for _, fn in late._named_mistake_tests(tests):
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        argnames = [a.strip() for a in marks[0].args[0].split(",")]
        for values in marks[0].args[1]:
            fn(**dict(zip(argnames, values)))
            ran += 1
    assert not [c for c in shim.checked if c.startswith("own message")], shim.checked   # every one is named
    assert ran == len(shim.checked) and ran >= 8, (ran, shim.checked)


@pytest.mark.parametrize("name", MODULES)
def test_stubs_are_told_in_chinese(zh, name):
    module = importlib.import_module(f"unet_scratch.exercises.{name}")
    checks = [fn for check_name, fn in inspect.getmembers(module, inspect.isfunction) if check_name.startswith("check_")]
    assert len(checks) == 3
    for check in checks:
        with pytest.raises(AssertionError) as info:
            check(stub)
        assert "还没有实现" in str(info.value) and "not implemented" not in str(info.value), str(info.value)


def _message(check, answer):
    with pytest.raises(AssertionError) as info:
        check(answer)
    return str(info.value)


@pytest.mark.parametrize("lang, expected", [
    ("zh", ["count_routing_differences（两个相同的数组，形状 (1, 4, 4, 2)）：应为 0，你得到 1",
            "order_of_magnitude（err = 0.0）：ValueError: ",
            "soft_dice_loss（目标为空）：",
            "deform_pair（细胞膜 64 x 64，sigma 1.25 像素（缩放后））：",
            "train_step（第 1 步）：你的函数返回了 None；请返回损失（一个浮点数）",
            "train_step（第 1 步）：返回的损失是 0.000000，应为 ",
            "bias_relu_rows（y 的形状 (7, 3)，float32）：y[0, 0] 是 ",
            "winograd_conv3x3（一个 4x4 块，1 -> 1 个通道）："]),
    ("en", ["count_routing_differences (identical arrays, shape (1, 4, 4, 2)): expected 0, got 1",
            "order_of_magnitude (err = 0.0): ValueError: ",
            "soft_dice_loss (an empty target): ",
            "deform_pair (membranes 64 x 64, sigma 1.25 px (scaled)): ",
            "train_step (step 1): your function returned None; return the loss (a float)",
            "train_step (step 1): returned loss 0.000000, expected ",
            "bias_relu_rows (y of shape (7, 3), float32): y[0, 0] is ",
            "winograd_conv3x3 (one 4x4 tile, 1 -> 1 channel): "])])
def test_case_labels_and_own_messages_in_both_languages(monkeypatch, lang, expected):
    from unet_scratch.exercises import ch06, ch07, ch08, ch09
    monkeypatch.setenv(LANG_VARIABLE, lang)

    def bad_dice(p, t):                                   # right on the first case, wrong on the empty target
        loss, grad = ch07.dice_loss(p, t)
        return (loss + 1.0, grad) if not t.any() else (loss, grad)

    def poke(y, b):                                       # writes y, but a value no mistake gives
        y[0, 0] = 123.0

    got = [_message(ch06.check_count_routing_differences, lambda a, b: 1),
           _message(ch06.check_order_of_magnitude, lambda e: int(np.floor(np.log10(e))) if e else int("x")),
           _message(ch07.check_soft_dice_loss, bad_dice),
           _message(ch08.check_deform_pair, lambda image, mask, field: (image, mask)),
           _message(ch08.check_train_step, lambda model, optimizer, x, t: None),
           _message(ch08.check_train_step, lambda model, optimizer, x, t: 0.0),
           _message(ch09.check_bias_relu_rows, poke),
           _message(ch09.check_winograd_conv3x3, lambda x, w: np.zeros((1, 2, 2, 1)))]
    for text, start in zip(got, expected):
        assert text.startswith(start), (text, start)
        assert bool(CJK.search(text)) == (lang == "zh"), text


def test_the_train_step_verdict_in_both_languages(monkeypatch, capsys):
    from unet_scratch.exercises.ch08 import check_train_step
    from test_exercises_ch08 import good_step
    monkeypatch.setenv(LANG_VARIABLE, "en")
    assert check_train_step(good_step)
    english = capsys.readouterr().out
    monkeypatch.setenv(LANG_VARIABLE, "zh")
    assert check_train_step(good_step)
    chinese = capsys.readouterr().out
    assert english == ("correct: train_step matches the reference step twice in a row (loss and every weight "
                       "within 1e-5)\n")
    assert chinese == "正确：train_step 连续两步都与参考训练步一致（损失和每一个权重都在 1e-5 之内）\n"
    sys.path.insert(0, str(ROOT / "tools"))
    from zh_sync import chinese_verdict                # the check of the Chinese notebook's outputs agrees
    assert chinese_verdict(english.rstrip("\n")) == chinese.rstrip("\n")
