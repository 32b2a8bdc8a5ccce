"""The checks of chapters 10, 11, 12 and appendix A speak Chinese in the Chinese edition.

tests/test_exercises_zh.py runs the real wrong implementations of chapters 00, 01 and 03 again in Chinese; their
tests are named ``*_names_its_mistakes`` and match the message from "your answer is what". The tests of the
chapters here are named otherwise (``*_names_each_mistake``, ``*named_mistakes``) and match a case label first
(``pad_to_legal \\(...\\).*your answer is what ...``) or the mistake's name alone (chapter 11), so they are
replayed here with a stand-in ``pytest`` that accepts all three forms: each message must be Chinese and name,
in Chinese, the mistake whose English the test expects (with its Chinese fix), never its English name.
"""
import importlib
import inspect
import re
import sys
from pathlib import Path

import pytest

from unet_scratch.exercises.base import LANG_VARIABLE

from conftest import stub

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
import test_exercises_zh as zh_tests  # noqa: E402

MODULES = {"ch10": "test_exercises_ch10", "ch11": "test_exercises_ch11", "ch12": "test_exercises_ch12",
           "appendix": "test_exercises_appendix"}
CJK = zh_tests.CJK


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv(LANG_VARIABLE, "zh")


class _ChineseRaises(zh_tests._ChineseRaises):
    """test_exercises_zh's stand-in, also for a match that starts with the case label, or names a mistake alone
    (then the message must hold that mistake's Chinese name and fix), or a message of the check's own (then
    the message must be Chinese)."""

    def raises(self, error, match=None):
        if match is not None:
            start = max(match.find("your answer is what"), match.find("that is what"))
            if start > 0:                                       # "fix_mask \(label.*your answer is what ..."
                match = match[start:]
        if match is None or re.search(r"what|not implemented", match):
            return super().raises(error, match=match)
        shim = self

        class Context:
            value = None

            def __enter__(self):
                return self

            def __exit__(self, kind, exc, tb):
                assert kind is not None and issubclass(kind, error), f"no {error.__name__} raised"
                text = str(exc)
                assert CJK.search(text), f"an English message in the Chinese edition: {text!r}"
                named = [m for m in shim.mistakes if re.search(match, m.name)]
                if named:
                    assert any(f"「{m.zh[0]}」" in text and m.zh[1] in text for m in named), (text, match)
                    assert not any(m.name in text for m in named), f"English left in {text!r}"
                    shim.checked.append(named[0].name)
                    self.value = AssertionError(f"{text} [{named[0].name}. {named[0].fix}]")
                else:                                           # one of the check's own messages
                    shim.checked.append(f"own message: {match}")
                    self.value = exc
                return True

        return Context()


def _named_mistake_tests(tests):
    for name, fn in inspect.getmembers(tests, inspect.isfunction):
        if re.search(r"names_(its|each)_mistake|named_mistakes", name):
            yield name, fn


@pytest.mark.parametrize("name", MODULES)
def test_every_mistake_has_its_chinese(name):
    zh_tests.test_every_mistake_of_the_translated_chapters_has_its_chinese(name)


@pytest.mark.parametrize("name", MODULES)
def test_the_chapters_wrong_implementations_are_named_in_chinese(zh, monkeypatch, name):
    tests = importlib.import_module(MODULES[name])
    shim = _ChineseRaises(zh_tests._mistakes(importlib.import_module(f"unet_scratch.exercises.{name}")))
    monkeypatch.setattr(tests, "pytest", shim)
    ran = 0
    for _, fn in _named_mistake_tests(tests):
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        if not marks:                                   # chapter 11: one test per op, several mistakes each
            before = len(shim.checked)
            fn()
            ran += len(shim.checked) - before
            continue
        argnames = [a.strip() for a in marks[0].args[0].split(",")]
        for values in marks[0].args[1]:
            fn(**dict(zip(argnames, values)))
            ran += 1
    mistakes = [c for c in shim.checked if not c.startswith("own message")]
    assert ran == len(shim.checked) and len(mistakes) >= 3, (ran, shim.checked)


@pytest.mark.parametrize("name", MODULES)
def test_stubs_are_told_in_chinese(zh, name):
    module = importlib.import_module(f"unet_scratch.exercises.{name}")
    checks = [fn for check_name, fn in inspect.getmembers(module, inspect.isfunction)
              if check_name.startswith("check_") and check_name != "check_parity"]
    assert checks
    for check in checks:
        n_args = len(inspect.signature(check).parameters)
        with pytest.raises(AssertionError) as info:
            check(*[stub] * n_args)
        assert "还没有实现" in str(info.value) and "not implemented" not in str(info.value), str(info.value)


def test_a_case_label_and_an_own_message_are_chinese(zh):
    import numpy as np
    from unet_scratch.exercises.appendix import check_fix_mask
    from unet_scratch.exercises.ch10 import ValidNet
    from unet_scratch.exercises.ch12 import check_pair_by_name
    with pytest.raises(AssertionError, match=r"^fix_mask（存成 0/255 的 uint8 掩码）：值是对的，但 dtype 是 float64"):
        check_fix_mask(lambda m: (np.asarray(m, float) > (127.5 if np.max(m) > 1 else 0.5)).astype(float))
    with pytest.raises(ValueError, match=r"^这个网络一次只接受一块 12 x 12 像素的切片"):
        ValidNet(12)(np.zeros((20, 13)))
    with pytest.raises(AssertionError, match=r"^pair_by_name（两幅图像，掩码按另一种顺序列出）：应为"):
        check_pair_by_name(lambda images, masks: [])


def test_the_parity_verdict_in_both_languages(monkeypatch, capsys):
    from unet_scratch.exercises.ch11 import check_parity
    from unet_scratch.frameworks.parity import ParityReport, Row
    report = ParityReport([Row("enc1_conv1", "forward", (4, 4, 2), 1e-7, 1e-7, True),
                           Row("enc1_conv1/kernel", "gradient", (3, 3, 1, 2), 1e-9, 2e-6, True)])
    monkeypatch.setenv(LANG_VARIABLE, "en")
    assert check_parity(report)
    english = capsys.readouterr().out
    monkeypatch.setenv(LANG_VARIABLE, "zh")
    assert check_parity(report)
    chinese = capsys.readouterr().out
    assert english.splitlines() == ["forward: all 1 layer outputs within rtol = atol = 1e-05 of Keras's",
                                    "backward (teacher-forced): all 1 weight gradients within a relative error "
                                    "of 1e-05 of Keras's"]
    assert chinese.splitlines() == ["正确：前向传播的全部 1 个层输出与 Keras 的差都在 rtol = atol = 1e-05 之内",
                                    "正确：反向传播（教师强制）的全部 1 个权重梯度与 Keras 的相对误差都在 1e-05 之内"]
    sys.path.insert(0, str(ROOT / "tools"))
    from zh_sync import chinese_verdict                # the check of the Chinese notebook's outputs agrees
    assert [chinese_verdict(line) for line in english.splitlines()] == chinese.splitlines()
