"""`make student`: solutions become stubs, the copies are valid notebooks, and a stub's check says so.

Every chapter's student copy is checked cell by cell against its source (fast, no kernel): each exercise
cell keeps its code around the solution and its check call, loses the solution, gains
`raise NotImplementedError`, and still parses; every other cell is unchanged. One chapter (00, the
quickest to run) is executed as a smoke test: each exercise's check reports "not implemented yet". That
every check turns a stub into "not implemented yet" is tested per chapter in tests/test_exercises*.py,
without a kernel.
"""
import ast
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_student import BEGIN, END, make_student, strip_solutions  # noqa: E402

SMOKE_CHAPTER = "00-introduction"


def test_strip_solutions_keeps_indentation():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\ncheck(f)"
    assert strip_solutions(src) == ("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError\n\n"
                                    "check(f)")
    with pytest.raises(ValueError, match="without"):
        strip_solutions("### BEGIN SOLUTION\nx = 1")
    with pytest.raises(ValueError, match="without"):
        strip_solutions("x = 1\n### END SOLUTION")


@pytest.fixture(scope="module")
def copies(tmp_path_factory):
    out = tmp_path_factory.mktemp("student")
    written = make_student(ROOT / "notebooks", out)
    assert written, "no chapter notebooks found"
    return written


def _outside_solution(source: str) -> list[str]:
    """The lines of `source` that are not between the solution markers (the markers excluded)."""
    kept, inside = [], False
    for line in source.splitlines():
        if line.strip() in (BEGIN, END):
            inside = line.strip() == BEGIN
        elif not inside:
            kept.append(line)
    return kept


def test_every_chapter_has_a_student_copy(copies):
    chapters = sorted(p.name for p in (ROOT / "notebooks").glob("[0-9A-Z]*.ipynb"))
    assert sorted(p.name for p in copies) == chapters and len(chapters) >= 12


def test_student_copies_have_every_solution_stubbed_and_every_check_kept(copies):
    for path in copies:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        source = nbformat.read(ROOT / "notebooks" / path.name, as_version=4)
        assert len(nb.cells) == len(source.cells), path.name
        exercises = 0
        for i, (cell, orig) in enumerate(zip(nb.cells, source.cells)):
            where = f"{path.name} cell {i}"
            assert BEGIN not in cell.source and END not in cell.source, where
            if not (orig.cell_type == "code" and BEGIN in orig.source):
                assert cell.source == orig.source and cell.cell_type == orig.cell_type, where
                continue
            exercises += 1
            assert "raise NotImplementedError" in cell.source, where
            assert cell.outputs == [] and cell.execution_count is None, f"{where}: stale solution output"
            kept = [ln for ln in cell.source.splitlines()
                    if ln.strip() not in ("# YOUR CODE HERE", "raise NotImplementedError")]
            assert kept == _outside_solution(orig.source), f"{where}: only the solution may change"
            solution = orig.source.split(BEGIN, 1)[1].split(END, 1)[0]
            body = [ln.strip() for ln in solution.splitlines() if ln.strip() and not ln.strip().startswith("#")]
            assert not any(ln in [k.strip() for k in kept] for ln in body if len(ln) > 12), \
                f"{where}: a solution line survived"
            tree = ast.parse(cell.source)                         # the stub is valid Python
            calls = [n.value.func.id for n in tree.body if isinstance(n, ast.Expr)
                     and isinstance(n.value, ast.Call) and isinstance(n.value.func, ast.Name)]
            assert calls and all(c.startswith("check_") for c in calls[-1:]), f"{where}: no check call at the end"
        assert exercises >= 1, f"{path.name}: no exercise (no code cell with {BEGIN!r})"


@pytest.mark.notebook
def test_one_student_copy_runs_and_its_checks_say_not_implemented_yet(copies):
    """Chapter 00 executed as a student receives it: every exercise cell ends in the stub's message, and no
    cell fails for another reason than a stub (a later cell may call an exercise's function)."""
    from nbclient import NotebookClient

    (path,) = [p for p in copies if p.stem == SMOKE_CHAPTER]
    nb = nbformat.read(path, as_version=4)
    exercises = [c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source]
    NotebookClient(nb, timeout=300, allow_errors=True, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
    # a later cell may use an exercise's function (and meet its stub); any other error is a broken copy
    errors = [o for c in nb.cells if c not in exercises for o in c.get("outputs", [])
              if o.output_type == "error" and o.ename != "NotImplementedError"]
    assert not errors, f"a cell outside the exercises failed: {errors[0].ename}: {errors[0].evalue}"
    assert exercises
    for cell in exercises:
        errs = [o for o in cell.outputs if o.output_type == "error"]
        assert errs and errs[0].ename == "AssertionError", cell.source[:80]
        assert "not implemented yet" in errs[0].evalue
