"""The exercise checks speak Chinese in the Chinese edition and English everywhere else.

The language comes from ``UNET_SCRATCH_LANG`` or, without it, from the working directory: a kernel that Jupyter
or nbval starts for ``notebooks/zh/NN-name.ipynb`` runs in a folder named ``zh``. Chapters 00, 01 and 03 name
their mistakes in Chinese; the tests of those chapters' real wrong implementations (tests/test_exercises_ch00.py,
ch01, ch03) are run again here in Chinese, and each message must name the same mistake, in Chinese. Modules not
translated yet fall back to English mistake names inside a Chinese message; a test lists them (informational).
"""
import importlib
import inspect
import re
import sys
from pathlib import Path

import numpy as np
import pytest

from unet_scratch import exercises
from unet_scratch.exercises import base
from unet_scratch.exercises.base import LANG_VARIABLE, Mistake, check_arrays, check_cases, language, message

from conftest import stub

ROOT = Path(__file__).resolve().parents[1]
TRANSLATED = ["ch00", "ch01", "ch03"]          # the check modules whose mistakes have their Chinese text
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv(LANG_VARIABLE, "zh")


@pytest.fixture
def en(monkeypatch):
    monkeypatch.setenv(LANG_VARIABLE, "en")


# ------------------------------------------------------------------ choosing the language
def test_the_language_follows_the_variable_then_the_folder(monkeypatch, tmp_path):
    monkeypatch.delenv(LANG_VARIABLE, raising=False)
    (tmp_path / "zh").mkdir()
    (tmp_path / "en").mkdir()
    monkeypatch.chdir(tmp_path / "en")
    assert language() == "en"
    monkeypatch.chdir(tmp_path / "zh")              # the kernel of notebooks/zh/NN-name.ipynb starts here
    assert language() == "zh"
    monkeypatch.setenv(LANG_VARIABLE, "en")          # the variable wins, both ways
    assert language() == "en"
    monkeypatch.chdir(tmp_path / "en")
    for value in ("zh", "zh_CN", "zh-CN", " ZH "):
        monkeypatch.setenv(LANG_VARIABLE, value)
        assert language() == "zh", value
    monkeypatch.setenv(LANG_VARIABLE, "fr")          # anything else: English
    assert language() == "en"


def test_the_chinese_notebooks_folder_gives_chinese(monkeypatch):
    monkeypatch.delenv(LANG_VARIABLE, raising=False)
    monkeypatch.chdir(ROOT / "notebooks" / "zh")
    assert language() == "zh"
    monkeypatch.chdir(ROOT / "notebooks")
    assert language() == "en"


# ------------------------------------------------------------------ the generic messages, both ways
def _double_cases():
    x = np.arange(6.0).reshape(2, 3) - 2.5
    return [((x,), 2 * x, "a 2 x 3 array")]


TRIPLE = Mistake("adding x to itself once too often", "return 2 * x", lambda x: 3 * x,
                 zh=("多加了一次 x", "返回 2 * x"))
UNTRANSLATED = Mistake("adding x to itself once too often", "return 2 * x", lambda x: 3 * x)


def _message_of(fn, *args, **kwargs):
    with pytest.raises(AssertionError) as info:
        fn(*args, **kwargs)
    return str(info.value)


def _in_place(x):
    x *= 2
    return x


@pytest.mark.parametrize("lang, expected", [
    ("zh", ["还没有实现", "原地修改了某个输入数组", "返回了 None", "你的答案正是「多加了一次 x」会得到的结果。返回 2 * x",
            "不对；最大差值", "的形状是", "应为 640，你得到 576：这正是「只算权重」会得到的结果。加上偏置",
            "应返回由 2 个数组组成的元组"]),
    ("en", ["not implemented yet", "changed one of its input arrays in place", "returned None",
            "your answer is what adding x to itself once too often gives. return 2 * x", "is wrong; largest difference",
            "has shape", "expected 640, got 576: that is what weights only gives. add the bias",
            "expected a tuple of 2 arrays"])])
def test_every_generic_message_in_both_languages(monkeypatch, lang, expected):
    monkeypatch.setenv(LANG_VARIABLE, lang)
    cases = _double_cases()
    weights_only = Mistake("weights only", "add the bias", lambda k, ci, co: k * k * ci * co, zh=("只算权重", "加上偏置"))
    tuple_case = [((np.ones(2),), (np.ones(2), np.ones(2)), "a pair")]
    got = [_message_of(check_arrays, stub, cases, "double"),
           _message_of(check_arrays, _in_place, cases, "double"),
           _message_of(check_arrays, lambda x: None, cases, "double"),
           _message_of(check_arrays, lambda x: 3 * x, cases, "double", mistakes=[TRIPLE]),
           _message_of(check_arrays, lambda x: 4 * x, cases, "double", mistakes=[TRIPLE]),
           _message_of(check_arrays, lambda x: x[:1], cases, "double"),
           _message_of(check_cases, lambda k, ci, co: k * k * ci * co, [((3, 1, 64), 640)], "conv_params",
                       mistakes=[weights_only]),
           _message_of(check_arrays, lambda x: x, tuple_case, "pair")]
    for message_, part in zip(got, expected):
        assert part in message_, (message_, part)
        assert bool(CJK.search(message_)) == (lang == "zh"), message_


@pytest.mark.parametrize("lang, expected", [
    ("zh", ["正确：double 通过了全部 1 个测试用例（最大相对误差 < 1e-12，要求 < 1e-05）",
            "正确：double 通过了全部 1 个测试用例（最大相对误差 0（完全相等），要求完全相等）",
            "正确：conv_params 通过了全部 1 个测试用例"]),
    ("en", ["correct: double passes 1 cases (largest relative error < 1e-12, expected < 1e-05)",
            "correct: double passes 1 cases (largest relative error 0 (exact), exact)",
            "correct: conv_params passes 1 cases"])])
def test_the_verdicts_in_both_languages(monkeypatch, capsys, lang, expected):
    monkeypatch.setenv(LANG_VARIABLE, lang)
    assert check_arrays(lambda x: 2 * x + 1e-12, _double_cases(), "double")
    assert check_arrays(lambda x: 2 * x, _double_cases(), "double", rtol=0, atol=0)
    assert check_cases(lambda k, ci, co: 640, [((3, 1, 64), 640)], "conv_params")
    assert capsys.readouterr().out.splitlines() == expected


def test_an_untranslated_mistake_is_quoted_in_english_inside_a_chinese_message(zh):
    msg = _message_of(check_arrays, lambda x: 3 * x, _double_cases(), "double", mistakes=[UNTRANSLATED])
    assert msg == "double（a 2 x 3 array）：你的答案正是「adding x to itself once too often」会得到的结果。return 2 * x"


def test_a_mistake_without_chinese_gives_english_and_a_bad_translation_is_refused(en):
    assert TRIPLE.text() == ("adding x to itself once too often", "return 2 * x")
    assert TRIPLE.text("zh") == ("多加了一次 x", "返回 2 * x")
    assert UNTRANSLATED.text("zh") == UNTRANSLATED.text("en")
    with pytest.raises(TypeError, match="zh must be a pair of strings"):
        Mistake("x", "y", abs, zh="只有名称")
    assert set(base.MESSAGES) == {k for k, v in base.MESSAGES.items() if set(v) == {"en", "zh"}}
    assert message("not_implemented", "zh", what="f") == "f：还没有实现（把 `raise NotImplementedError` 换成你的代码）"


# ------------------------------------------------------------------ chapters 00, 01, 03 in Chinese
def _mistakes(module):
    """Every Mistake a check module defines (in module-level lists or names)."""
    found = []
    for value in vars(module).values():
        items = value if isinstance(value, (list, tuple)) else [value]
        found += [m for m in items if isinstance(m, Mistake) and m not in found]
    return found


@pytest.mark.parametrize("name", TRANSLATED)
def test_every_mistake_of_the_translated_chapters_has_its_chinese(name):
    module = importlib.import_module(f"unet_scratch.exercises.{name}")
    mistakes = _mistakes(module)
    assert len(mistakes) >= 3
    missing = [m.name for m in mistakes if m.zh is None]
    assert not missing, f"{name}: mistakes without zh=(名称, 改法): {missing}"
    for m in mistakes:
        assert all(CJK.search(t) for t in m.zh), m.zh
        for code in re.findall(r"`[^`]+`|\w+\[[^\]]*\]", m.fix):       # code in the fix survives translation
            assert code in m.zh[1], (m.name, code)


class _ChineseRaises:
    """Stands in for the ``pytest`` a chapter's test module sees, so its own tests (real wrong implementations)
    run with Chinese messages: ``pytest.raises(AssertionError, match=ENGLISH)`` becomes "the message is in
    Chinese and names, in Chinese, the mistake whose English text ENGLISH matches"."""

    def __init__(self, mistakes):
        self.mistakes, self.checked = mistakes, []

    def __getattr__(self, name):
        return getattr(pytest, name)

    def raises(self, error, match=None):
        shim = self

        class Context:
            value = None

            def __enter__(self):
                return self

            def __exit__(self, kind, exc, tb):
                assert kind is not None and issubclass(kind, error), f"no {error.__name__} raised"
                text = str(exc)
                if match is None or not re.search(r"what|not implemented", match):
                    self.value = exc
                    return True
                english = [m for m in shim.mistakes
                           if re.search(match, f"your answer is what {m.name} gives. {m.fix}")
                           or re.search(match, f"that is what {m.name} gives. {m.fix}")]
                assert english, f"no mistake of the module matches {match!r}"
                assert any(f"「{m.zh[0]}」" in text and m.zh[1] in text for m in english), (text, match)
                assert not any(m.name in text for m in english), f"English left in {text!r}"
                assert CJK.search(text.split("：", 1)[0] + text.split("：", 1)[-1])
                shim.checked.append(english[0].name)
                # the test's own further assertions read the English text: give them the mistake's
                self.value = AssertionError(f"{text} [{english[0].name}. {english[0].fix}]")
                return True

        return Context()


@pytest.mark.parametrize("name", TRANSLATED)
def test_the_chapters_wrong_implementations_are_named_in_chinese(zh, monkeypatch, name):
    sys.path.insert(0, str(ROOT / "tests"))
    tests = importlib.import_module(f"test_exercises_{name}")
    shim = _ChineseRaises(_mistakes(importlib.import_module(f"unet_scratch.exercises.{name}")))
    monkeypatch.setattr(tests, "pytest", shim)
    ran = 0
    for test_name, fn in inspect.getmembers(tests, inspect.isfunction):
        if not test_name.endswith("names_its_mistakes"):
            continue
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        argnames = [a.strip() for a in marks[0].args[0].split(",")]
        for values in marks[0].args[1]:
            fn(**dict(zip(argnames, values)))
            ran += 1
    assert ran >= 5 and len(shim.checked) == ran, (ran, shim.checked)


@pytest.mark.parametrize("name", TRANSLATED)
def test_stubs_and_labels_speak_chinese(zh, name):
    module = importlib.import_module(f"unet_scratch.exercises.{name}")
    for check_name, check in inspect.getmembers(module, inspect.isfunction):
        if check_name.startswith("check_"):
            msg = _message_of(check, stub)
            assert "还没有实现" in msg and "not implemented" not in msg, msg


def test_a_case_label_is_chinese_too(zh):
    from unet_scratch.exercises.ch01 import check_conv2d_loop
    msg = _message_of(check_conv2d_loop, lambda x, w, b, s, p: np.zeros((1, 1, 1, 1)))
    assert msg.startswith("conv2d_loop（x (1, 5, 5, 1)，w (3, 3, 1, 1)，步幅 1，'valid'）：输出的形状是"), msg


# ------------------------------------------------------------------ which modules still speak English only
def test_report_the_check_modules_without_chinese(capsys):
    """Informational (never fails on an untranslated module): which chapters' checks still name their mistakes
    in English only, and how many messages they write themselves instead of through base.message."""
    folder = ROOT / "unet_scratch" / "exercises"
    lines = []
    for path in sorted(folder.glob("*.py")):
        if path.stem in ("__init__", "base"):
            continue
        module = importlib.import_module(f"unet_scratch.exercises.{path.stem}")
        mistakes = _mistakes(module)
        untranslated = sum(m.zh is None for m in mistakes)
        own = len(re.findall(r"AssertionError\(f?\"", path.read_text()))
        if untranslated or own:
            lines.append(f"{path.stem}: {untranslated} of {len(mistakes)} mistakes without Chinese, "
                         f"{own} messages of its own in English")
    with capsys.disabled():
        print("\ncheck modules not yet in Chinese (they fall back to English):\n  " + "\n  ".join(lines or ["none"]))
    assert all(not line.startswith(tuple(TRANSLATED)) for line in lines), lines
