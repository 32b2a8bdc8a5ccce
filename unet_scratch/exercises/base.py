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
            lambda x, w, b: reference_conv(x, w[::-1, ::-1], b))
"""
from __future__ import annotations

import math

import numpy as np


def call_student(fn, args, what):
    """fn(*args), with a stub's NotImplementedError turned into "<what>: not implemented yet"."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise AssertionError(f"{what}: not implemented yet (replace `raise NotImplementedError`)") from None


class Mistake:
    """A classic mistake: ``name`` (what was done), ``fix`` (what to do instead) and ``answer(*args)``, the
    output a function with that mistake returns (for array checks; for ``check_cases``, the value)."""

    def __init__(self, name, fix, answer):
        self.name, self.fix, self.answer = name, fix, answer

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
            raise AssertionError(f"{what} ({label}): your answer is what {mistake.name} gives. {mistake.fix}")


def _call_checked(fn, args, what, label):
    """fn(*args), refusing an answer that changed its inputs in place or returned nothing."""
    before = [a.copy() for a in _arrays_in(args)]
    got = call_student(fn, args, what)
    for a, b in zip(_arrays_in(args), before):
        if a.shape != b.shape or not np.array_equal(a, b, equal_nan=True):
            raise AssertionError(f"{what} ({label}): your function changed one of its input arrays in place; "
                                 "work on a copy (e.g. np.zeros_like(x) for an output, x.copy() to edit)")
    if got is None:
        raise AssertionError(f"{what} ({label}): your function returned None; did you forget `return`?")
    return got


def check_cases(fn, cases, what, mistakes=()):
    """cases: [(args tuple, expected value), ...], compared with ==. mistakes: :class:`Mistake`s whose
    ``answer(*args)`` is the value that mistake gives."""
    for args, expected in cases:
        got = call_student(fn, args, what)
        if got != expected:
            for mistake in mistakes:
                if got == mistake.answer(*args):
                    raise AssertionError(f"{what}{args}: expected {expected!r}, got {got!r}: that is what "
                                         f"{mistake.name} gives. {mistake.fix}")
            raise AssertionError(f"{what}{args}: expected {expected!r}, got {got!r}")
    print(f"correct: {what} passes {len(cases)} cases")
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
            raise AssertionError(f"{what} ({label}): expected a tuple of {len(exp_t)} arrays, got "
                                 f"{type(got).__name__}")
        for k, (e, g) in enumerate(zip(exp_t, got_t)):
            g = np.asarray(g)
            name = f"output {k}" if not single else "the output"
            if g.shape != np.shape(e):
                _named_mistake(got, args, mistakes, what, label, rtol, atol)
                raise AssertionError(f"{what} ({label}): {name} has shape {g.shape}, expected {np.shape(e)}")
            if not np.allclose(g, e, rtol=rtol, atol=atol):
                _named_mistake(got, args, mistakes, what, label, rtol, atol)
                diff = np.abs(g.astype(float) - np.asarray(e, float))
                where = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise AssertionError(f"{what} ({label}): {name} is wrong; largest difference "
                                     f"{diff.max():.3g} at index {tuple(int(i) for i in where)}")
            scale = float(np.max(np.abs(e))) if np.size(e) else 0.0
            err = float(np.max(np.abs(g.astype(float) - np.asarray(e, float)))) if np.size(e) else 0.0
            worst = max(worst, err / scale if scale > 0 else err)
    tol = max(rtol, atol)
    expected = "exact" if tol == 0 else f"expected < {tol:g}"
    print(f"correct: {what} passes {len(cases)} cases (largest relative error {error_bound(worst)}, {expected})")
    return True
