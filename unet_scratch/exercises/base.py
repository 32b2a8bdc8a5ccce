"""What every exercise check does: run the student's function on several cases and say what is wrong.

A check raises ``AssertionError`` naming the case, the expected answer and the student's answer, or
prints ``correct: ...`` and returns True. A stub that still raises ``NotImplementedError`` gets
"not implemented yet", so a student copy of a chapter shows which exercises are left.
"""
from __future__ import annotations

import numpy as np


def call_student(fn, args, what):
    """fn(*args), with a stub's NotImplementedError turned into "<what>: not implemented yet"."""
    try:
        return fn(*args)
    except NotImplementedError:
        raise AssertionError(f"{what}: not implemented yet (replace `raise NotImplementedError`)") from None


def check_cases(fn, cases, what):
    """cases: [(args tuple, expected value), ...], compared with ==."""
    for args, expected in cases:
        got = call_student(fn, args, what)
        if got != expected:
            raise AssertionError(f"{what}{args}: expected {expected!r}, got {got!r}")
    print(f"correct: {what} passes {len(cases)} cases")
    return True


def check_arrays(fn, cases, what, rtol=1e-5, atol=1e-6):
    """cases: [(args tuple, expected array or tuple of arrays, case label), ...], compared with allclose.

    Says which output of which case is wrong: its shape, or its largest difference and where it is.
    """
    for args, expected, label in cases:
        got = call_student(fn, args, what)
        single = not isinstance(expected, tuple)
        exp_t, got_t = ((expected,), (got,)) if single else (expected, got)
        if not single and (not isinstance(got, tuple) or len(got) != len(exp_t)):
            raise AssertionError(f"{what} ({label}): expected a tuple of {len(exp_t)} arrays, got "
                                 f"{type(got).__name__}")
        for k, (e, g) in enumerate(zip(exp_t, got_t)):
            g = np.asarray(g)
            name = f"output {k}" if not single else "the output"
            if g.shape != np.shape(e):
                raise AssertionError(f"{what} ({label}): {name} has shape {g.shape}, expected {np.shape(e)}")
            if not np.allclose(g, e, rtol=rtol, atol=atol):
                diff = np.abs(g - e)
                where = np.unravel_index(int(np.argmax(diff)), diff.shape)
                raise AssertionError(f"{what} ({label}): {name} is wrong; largest difference "
                                     f"{diff.max():.3g} at index {tuple(int(i) for i in where)}")
    print(f"correct: {what} passes {len(cases)} cases")
    return True
