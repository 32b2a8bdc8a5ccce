"""The checks of chapters 02, 04, 05 and 05b speak Chinese in the Chinese edition.

Their tests (tests/test_exercises_ch02.py, ch04, ch05, ch05b) feed real wrong implementations and match the
message with the case label then "your answer is what" / "that is what", with the label then the mistake's name
(chapter 05's U-Net assembled from its blocks), or with the mistake's name alone (chapter 05b). They are replayed
here in Chinese with chapters 06-09's stand-in ``pytest`` (tests/test_exercises_zh_ch06_09.py), which knows those
forms: each message must be Chinese and name, in Chinese, the mistake whose English the test expects (with its
Chinese fix), never its English name; a message of the check's own (05b's float64 promotion, t counted from 0,
the global generator) must be Chinese.
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
from test_exercises_zh_ch06_09 import _ChineseRaises  # noqa: E402

MODULES = {"ch02": "test_exercises_ch02", "ch04": "test_exercises_ch04", "ch05": "test_exercises_ch05",
           "ch05b": "test_exercises_ch05b"}
CJK = zh_tests.CJK


@pytest.fixture
def zh(monkeypatch):
    monkeypatch.setenv(LANG_VARIABLE, "zh")


def _naming_tests(tests):
    """The tests of a chapter that feed a wrong implementation and expect its mistake (or message) by name."""
    for name, fn in inspect.getmembers(tests, inspect.isfunction):
        if re.search(r"names?_", name) and "reject_stubs" not in name:
            yield name, fn


@pytest.mark.parametrize("name", MODULES)
def test_every_mistake_has_its_chinese(name):
    zh_tests.test_every_mistake_of_the_translated_chapters_has_its_chinese(name)


@pytest.mark.parametrize("name, at_least", [("ch02", 14), ("ch04", 10), ("ch05", 14), ("ch05b", 20)])
def test_the_chapters_wrong_implementations_are_named_in_chinese(zh, monkeypatch, name, at_least):
    tests = importlib.import_module(MODULES[name])
    shim = _ChineseRaises(zh_tests._mistakes(importlib.import_module(f"unet_scratch.exercises.{name}")))
    monkeypatch.setattr(tests, "pytest", shim)
    ran = 0
    for _, fn in _naming_tests(tests):
        marks = [m for m in getattr(fn, "pytestmark", []) if m.name == "parametrize"]
        if not marks:
            before = len(shim.checked)
            fn()
            ran += len(shim.checked) - before
            continue
        argnames = [a.strip() for a in marks[0].args[0].split(",")]
        for values in marks[0].args[1]:
            fn(**dict(zip(argnames, values if isinstance(values, tuple) else (values,))))
            ran += 1
    named = [c for c in shim.checked if not c.startswith("own message")]
    assert ran == len(shim.checked) and len(named) >= at_least, (ran, shim.checked)


@pytest.mark.parametrize("name", MODULES)
def test_stubs_are_told_in_chinese(zh, name):
    module = importlib.import_module(f"unet_scratch.exercises.{name}")
    checks = [fn for check_name, fn in inspect.getmembers(module, inspect.isfunction)
              if check_name.startswith("check_") and fn.__module__ == module.__name__]
    assert len(checks) >= 3
    for check in checks:
        required = [p for p in inspect.signature(check).parameters.values() if p.default is p.empty]
        with pytest.raises(AssertionError) as info:
            check(*[stub] * len(required))
        assert "还没有实现" in str(info.value) and "not implemented" not in str(info.value), str(info.value)


def _message(check, *answer):
    with pytest.raises(AssertionError) as info:
        check(*answer)
    return str(info.value)


@pytest.mark.parametrize("lang, expected", [
    ("zh", ["maxpool2x2（随机 (1, 4, 4, 1)）：输出不对；最大差值",
            "concat_backward（3 + 2 个通道，dy (2, 4, 4, 5)）：第 0 个输出不对",
            "center_crop_backward（9x9 -> 4x4（奇数差值），x (2, 9, 9, 1)）：",
            "relative_error（用例 0：a 的形状为 (4, 3)，b = a 加上 1e-6 量级的噪声）：应为 4.99805e-07，你得到 0.5",
            "central_difference：调用之后 x 变了",
            "unet_backward（深度 2，same 填充，16 x 16）：model.grads['head/kernel'] 没有算出来",
            "sgd_momentum_step（第 1 步）：要返回元组 (w, v)，你返回的是 ndarray",
            "he_normal（形状 (3, 3, 128, 128)）：方差 "]),
    ("en", ["maxpool2x2 (random (1, 4, 4, 1)): the output is wrong; largest difference",
            "concat_backward (3 + 2 channels, dy (2, 4, 4, 5)): output 0 is wrong",
            "center_crop_backward (9x9 -> 4x4 (odd), x (2, 9, 9, 1)): ",
            "relative_error (case 0: a of shape (4, 3), b = a + 1e-6 noise): expected 4.99805e-07, got 0.5",
            "central_difference: x was changed by the call",
            "unet_backward (depth 2, same padding, 16 x 16): model.grads['head/kernel'] was not computed",
            "sgd_momentum_step (step 1): return a tuple (w, v), got ndarray",
            "he_normal (shape (3, 3, 128, 128)): variance "])])
def test_case_labels_and_own_messages_in_both_languages(monkeypatch, lang, expected):
    from unet_scratch.exercises import ch02, ch04, ch05, ch05b
    monkeypatch.setenv(LANG_VARIABLE, lang)

    def no_head_grads(model, dy):
        dx = model.backward(dy)
        model.head.grads.clear()
        return dx

    def changes_x(f, x, h):
        x[...] = 0.0
        return np.zeros_like(x)

    def paste_unless_odd(dy, x_shape):                 # right, except on the odd difference: zeros there
        dx = np.zeros(x_shape, dy.dtype)
        if (x_shape[1] - dy.shape[1]) % 2 == 0:
            top, left = (x_shape[1] - dy.shape[1]) // 2, (x_shape[2] - dy.shape[2]) // 2
            dx[:, top:top + dy.shape[1], left:left + dy.shape[2]] = dy
        return dx

    got = [_message(ch02.check_maxpool2x2, lambda x: x[:, ::2, ::2]),
           _message(ch04.check_concat_backward, lambda dy, c1: (0 * dy[..., :c1], dy[..., c1:])),
           _message(ch04.check_center_crop_backward, paste_unless_odd),
           _message(ch05.check_rel_error, lambda a, b: 0.5),
           _message(ch05.check_central_difference, changes_x),
           _message(ch05.check_unet_backward, no_head_grads),
           _message(ch05b.check_sgd_momentum, lambda w, g, v, lr, momentum: w, False),
           _message(ch05b.check_he_normal, lambda shape, rng, dtype="float32": rng.uniform(-1, 1, shape)
                    .astype(np.float32))]
    for text, start in zip(got, expected):
        assert text.startswith(start), (text, start)
        assert bool(CJK.search(text)) == (lang == "zh"), text


def test_the_initialiser_verdicts_in_both_languages_and_as_the_chinese_notebook_expects(monkeypatch, capsys):
    """Chapter 05b's initialiser checks write their own verdict (base.MESSAGES correct_he_normal and
    correct_glorot_uniform); zh_sync's chinese_verdict, which checks the Chinese notebook's outputs, turns the
    English line into the Chinese one."""
    from test_exercises_ch05b import glorot_uniform, he_normal
    from unet_scratch.exercises.ch05b import check_glorot_uniform, check_he_normal
    sys.path.insert(0, str(ROOT / "tools"))
    from zh_sync import chinese_verdict
    outputs = {}
    for lang in ("en", "zh"):
        monkeypatch.setenv(LANG_VARIABLE, lang)
        assert check_he_normal(he_normal) and check_glorot_uniform(glorot_uniform)
        outputs[lang] = capsys.readouterr().out.splitlines()
    assert outputs["en"][0].startswith("correct: he_normal passes 3 shapes (variance within 3 % of the expected "
                                       "2 / fan_in")
    assert outputs["zh"][1].startswith("正确：glorot_uniform 通过了全部 3 个形状（方差与期望值 2 / (fan_in + fan_out)")
    assert [chinese_verdict(line) for line in outputs["en"]] == outputs["zh"]
