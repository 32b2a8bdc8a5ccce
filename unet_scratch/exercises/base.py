"""What every exercise check does: run the student's function on several cases and say what is wrong.

A check raises ``AssertionError`` naming the case and what is wrong, or prints ``correct: ...`` with the
measured error and the tolerance, rounded so the line is the same on every machine, and returns True. A stub
that still raises ``NotImplementedError`` gets "not implemented yet", so a student copy of a chapter shows
which exercises are left.

Checks that teach know the classic mistakes of their exercise. Each is a :class:`Mistake`: a name, what to do
about it, and a function that computes the wrong answer that mistake gives. When the student's answer is
wrong and equals a mistake's answer on that case, the message names the mistake instead of only a number::

    Mistake("a true convolution (the kernel flipped)",
            "Keras's Conv2D computes a cross-correlation: do not flip w",
            lambda x, w, b: reference_conv(x, w[::-1, ::-1], b),
            zh=("真正的卷积（把卷积核翻转了）", "Keras 的 Conv2D 计算的是互相关：不要翻转 w"))

The checks speak the language of the edition they run in (:func:`language`): Chinese in the Chinese edition
(``notebooks/zh/``, whose kernels start in a folder named ``zh``, or wherever ``UNET_SCRATCH_LANG=zh`` is
set), English everywhere else. The generic messages below come in both languages; a mistake without its
``zh=`` translation is quoted in English inside the Chinese message, so a chapter whose checks are not
translated yet still gives a whole, correct message.
"""
from __future__ import annotations

import math
import os
from pathlib import Path

import numpy as np

LANGUAGES = ("en", "zh")
LANG_VARIABLE = "UNET_SCRATCH_LANG"


def language() -> str:
    """The language of the check messages: ``"zh"`` or ``"en"``.

    ``UNET_SCRATCH_LANG`` decides when it is set (``zh``, ``zh_CN``, ``zh-CN`` ... give Chinese, ``en`` English);
    otherwise Chinese when the current working directory is a folder named ``zh`` (Jupyter and nbval start a
    notebook's kernel in the notebook's folder, so the chapters in ``notebooks/zh/`` get Chinese without a line
    of code), English everywhere else. Read at every check, so changing either takes effect at once.
    """
    setting = os.environ.get(LANG_VARIABLE, "").strip().lower()
    if setting:
        return "zh" if setting.startswith("zh") else "en"
    try:
        return "zh" if Path.cwd().name == "zh" else "en"
    except OSError:                           # the working directory was deleted
        return "en"


def tr(en: str, zh: str) -> str:
    """``en`` or ``zh``, whichever :func:`language` asks for (for the labels a check builds itself)."""
    return zh if language() == "zh" else en


# The generic messages of every check, in both languages (str.format fields).
MESSAGES = {
    "not_implemented": {
        "en": "{what}: not implemented yet (replace `raise NotImplementedError`)",
        "zh": "{what}：还没有实现（把 `raise NotImplementedError` 换成你的代码）"},
    "mistake": {
        "en": "{what} ({label}): your answer is what {name} gives. {fix}",
        "zh": "{what}（{label}）：你的答案正是「{name}」会得到的结果。{fix}"},
    "cases_mistake": {
        "en": "{what}{args}: expected {expected!r}, got {got!r}: that is what {name} gives. {fix}",
        "zh": "{what}{args}：应为 {expected!r}，你得到 {got!r}：这正是「{name}」会得到的结果。{fix}"},
    "cases_wrong": {
        "en": "{what}{args}: expected {expected!r}, got {got!r}",
        "zh": "{what}{args}：应为 {expected!r}，你得到 {got!r}"},
    "changed_input": {
        "en": "{what} ({label}): your function changed one of its input arrays in place; work on a copy "
              "(e.g. np.zeros_like(x) for an output, x.copy() to edit)",
        "zh": "{what}（{label}）：你的函数原地修改了某个输入数组；请在副本上操作（例如输出用 np.zeros_like(x) "
              "新建，需要修改时先 x.copy()）"},
    "returned_none": {
        "en": "{what} ({label}): your function returned None; did you forget `return`?",
        "zh": "{what}（{label}）：你的函数返回了 None；是不是忘了写 `return`？"},
    "tuple_expected": {
        "en": "{what} ({label}): expected a tuple of {n} arrays, got {got}",
        "zh": "{what}（{label}）：应返回由 {n} 个数组组成的元组，你返回的是 {got}"},
    "output_k": {"en": "output {k}", "zh": "第 {k} 个输出"},
    "the_output": {"en": "the output", "zh": "输出"},
    "wrong_shape": {
        "en": "{what} ({label}): {name} has shape {shape}, expected {expected}",
        "zh": "{what}（{label}）：{name}的形状是 {shape}，应为 {expected}"},
    "wrong_values": {
        "en": "{what} ({label}): {name} is wrong; largest difference {diff:.3g} at index {where}",
        "zh": "{what}（{label}）：{name}不对；最大差值 {diff:.3g}，位于下标 {where}"},
    "correct_cases": {
        "en": "correct: {what} passes {n} cases",
        "zh": "正确：{what} 通过了全部 {n} 个测试用例"},
    "correct_arrays": {
        "en": "correct: {what} passes {n} cases (largest relative error {err}, {expected})",
        "zh": "正确：{what} 通过了全部 {n} 个测试用例（最大相对误差 {err}，{expected}）"},
    "exact": {"en": "exact", "zh": "要求完全相等"},
    "expected_below": {"en": "expected < {tol:g}", "zh": "要求 < {tol:g}"},
    "zero_exact": {"en": "0 (exact)", "zh": "0（完全相等）"},
    # the verdict of chapter 11's check_parity (the whole U-Net on the student's ops against Keras)
    "parity_forward": {
        "en": "forward: all {n} layer outputs within rtol = atol = {tol:g} of Keras's",
        "zh": "正确：前向传播的全部 {n} 个层输出与 Keras 的差都在 rtol = atol = {tol:g} 之内"},
    "parity_backward": {
        "en": "backward (teacher-forced): all {n} weight gradients within a relative error of {tol:g} of Keras's",
        "zh": "正确：反向传播（教师强制）的全部 {n} 个权重梯度与 Keras 的相对误差都在 {tol:g} 之内"},
    # the verdicts of chapter 05b's initialiser checks (statistics of large samples); err: "< 1 %" ...
    "correct_he_normal": {
        "en": "correct: he_normal passes {n} shapes (variance within 3 % of the expected 2 / fan_in, mean 0, "
              "largest |w| near the truncation bound 2 sqrt(2 / fan_in) / 0.8796 and not beyond; largest "
              "variance error {err})",
        "zh": "正确：he_normal 通过了全部 {n} 个形状（方差与期望值 2 / fan_in 相差在 3 % 以内，均值为 0，最大的 |w| "
              "接近截断界 2 sqrt(2 / fan_in) / 0.8796 且不超过它；最大方差误差 {err}）"},
    "correct_glorot_uniform": {
        "en": "correct: glorot_uniform passes {n} shapes (variance within 3 % of the expected 2 / (fan_in + "
              "fan_out), mean 0, largest |w| near the limit sqrt(6 / (fan_in + fan_out)) and not beyond; largest "
              "variance error {err})",
        "zh": "正确：glorot_uniform 通过了全部 {n} 个形状（方差与期望值 2 / (fan_in + fan_out) 相差在 3 % 以内，均值为 0，"
              "最大的 |w| 接近界限 sqrt(6 / (fan_in + fan_out)) 且不超过它；最大方差误差 {err}）"},
    # the verdict of chapter 08's check_train_step (two steps next to the reference step)
    "correct_train_step": {
        "en": "correct: train_step matches the reference step twice in a row (loss and every weight within 1e-5)",
        "zh": "正确：train_step 连续两步都与参考训练步一致（损失和每一个权重都在 1e-5 之内）"},
}


def message(key: str, lang: str | None = None, **fields) -> str:
    """The generic message ``key`` in ``lang`` (default: :func:`language`), its fields filled in."""
    texts = MESSAGES[key]
    return texts.get(lang or language(), texts["en"]).format(**fields)


def call_student(fn, args, what):
    """fn(*args), with a stub's NotImplementedError turned into "<what>: not implemented yet"."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise AssertionError(message("not_implemented", what=what)) from None


class Mistake:
    """A classic mistake: ``name`` (what was done), ``fix`` (what to do instead) and ``answer(*args)``, the
    output a function with that mistake returns (for array checks; for ``check_cases``, the value).

    ``zh=(名称, 改法)``: the name and the fix in Chinese, used by the Chinese edition (:func:`language`).
    ``name`` and ``fix`` stay the English text; :meth:`text` gives the pair in the current language, falling
    back to English for a mistake not translated yet.
    """

    def __init__(self, name, fix, answer, zh=None):
        if zh is not None and (not isinstance(zh, tuple) or len(zh) != 2 or not all(isinstance(t, str) for t in zh)):
            raise TypeError(f"Mistake {name!r}: zh must be a pair of strings (名称, 改法), got {zh!r}")
        self.name, self.fix, self.answer, self.zh = name, fix, answer, zh

    def text(self, lang: str | None = None) -> tuple[str, str]:
        """(name, fix) in ``lang`` (default: :func:`language`); English when there is no translation."""
        if (lang or language()) == "zh" and self.zh is not None:
            return self.zh
        return self.name, self.fix

    def __repr__(self):
        return f"Mistake({self.name!r})"


def error_bound(err: float) -> str:
    """A measured error as a rounded bound that reads the same on every machine: 0 -> "0 (exact)",
    3.2e-11 -> "< 1e-9" (the next power of ten whose exponent is a multiple of 3)."""
    if err == 0:
        return "0 (exact)"
    exponent = math.ceil(math.log10(err))
    return f"< 1e{-3 * math.floor(-exponent / 3)}"


def _arrays_in(args):
    return [a for a in args if isinstance(a, np.ndarray)]


def _matches(got, expected, rtol, atol) -> bool:
    try:
        exp_t = expected if isinstance(expected, tuple) else (expected,)
        got_t = got if isinstance(got, tuple) else (got,)
        return len(exp_t) == len(got_t) and all(
            np.shape(g) == np.shape(e) and np.allclose(np.asarray(g, float), np.asarray(e, float),
                                                       rtol=max(rtol, 1e-6), atol=max(atol, 1e-9),
                                                       equal_nan=True)     # a mistake's nan is its answer too
            for g, e in zip(got_t, exp_t))
    except (TypeError, ValueError):
        return False


def _named_mistake(got, args, mistakes, what, label, rtol, atol):
    """Raise AssertionError naming the first mistake whose answer equals the student's, if any."""
    for mistake in mistakes:
        try:
            wrong = mistake.answer(*args)
        except Exception:                      # a mistake that does not apply to this case
            continue
        if _matches(got, wrong, rtol, atol):
            name, fix = mistake.text()
            raise AssertionError(message("mistake", what=what, label=label, name=name, fix=fix))


def _call_checked(fn, args, what, label):
    """fn(*args), refusing an answer that changed its inputs in place or returned nothing."""
    before = [a.copy() for a in _arrays_in(args)]
    got = call_student(fn, args, what)
    for a, b in zip(_arrays_in(args), before):
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            raise AssertionError(message("changed_input", what=what, label=label))
    if got is None:
        raise AssertionError(message("returned_none", what=what, label=label))
    return got


def check_cases(fn, cases, what, mistakes=()):
    """cases: [(args tuple, expected value), ...], compared with ==. mistakes: :class:`Mistake`s whose
    ``answer(*args)`` is the value that mistake gives."""
    for args, expected in cases:
        got = call_student(fn, args, what)
        if got != expected:
            for mistake in mistakes:
                if got == mistake.answer(*args):
                    name, fix = mistake.text()
                    raise AssertionError(message("cases_mistake", what=what, args=args, expected=expected,
                                                 got=got, name=name, fix=fix))
            raise AssertionError(message("cases_wrong", what=what, args=args, expected=expected, got=got))
    print(message("correct_cases", what=what, n=len(cases)))
    return True


def check_arrays(fn, cases, what, rtol=1e-5, atol=1e-6, mistakes=()):
    """cases: [(args tuple, expected array or tuple of arrays, case label), ...], compared with allclose.

    Says which output of which case is wrong: its shape, the mistake it matches (``mistakes``: a list of
    :class:`Mistake`), or its largest difference and where it is. On success prints the largest error
    relative to the largest expected value, as a rounded bound next to the tolerance.
    """
    worst = 0.0
    for args, expected, label in cases:
        got = _call_checked(fn, args, what, label)
        single = not isinstance(expected, tuple)
        exp_t, got_t = ((expected,), (got,)) if single else (expected, got)
        if not single and (not isinstance(got, tuple) or len(got) != len(exp_t)):
            raise AssertionError(message("tuple_expected", what=what, label=label, n=len(exp_t),
                                         got=type(got).__name__))
        for k, (e, g) in enumerate(zip(exp_t, got_t)):
            g = np.asarray(g)
            name = message("output_k", k=k) if not single else message("the_output")
            if g.shape != np.shape(e):
                _named_mistake(got, args, mistakes, what, label, rtol, atol)
                raise AssertionError(message("wrong_shape", what=what, label=label, name=name, shape=g.shape,
                                             expected=np.shape(e)))
            if not np.allclose(g, e, rtol=rtol, atol=atol):
                _named_mistake(got, args, mistakes, what, label, rtol, atol)
                diff = np.abs(g.astype(float) - np.asarray(e, float))
                where = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise AssertionError(message("wrong_values", what=what, label=label, name=name, diff=diff.max(),
                                             where=tuple(int(i) for i in where)))
            scale = float(np.max(np.abs(e))) if np.size(e) else 0.0
            err = float(np.max(np.abs(g.astype(float) - np.asarray(e, float)))) if np.size(e) else 0.0
            worst = max(worst, err / scale if scale > 0 else err)
    tol = max(rtol, atol)
    expected = message("exact") if tol == 0 else message("expected_below", tol=tol)
    bound = message("zero_exact") if worst == 0 else error_bound(worst)
    print(message("correct_arrays", what=what, n=len(cases), err=bound, expected=expected))
    return True
