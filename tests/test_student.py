"""`make student`: solutions become stubs, the copies are valid notebooks, and every check rejects a stub."""
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_student import BEGIN, make_student, strip_solutions  # noqa: E402


def test_strip_solutions_keeps_indentation():
    src = "def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\n\ncheck(f)"
    assert strip_solutions(src) == ("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError\n\n"
                                    "check(f)")
    with pytest.raises(ValueError, match="without"):
        strip_solutions("### BEGIN SOLUTION\nx = 1")


def test_student_copies_run_and_every_check_rejects_the_stub(tmp_path):
    from nbclient import NotebookClient
    written = make_student(ROOT / "notebooks", tmp_path)
    assert written, "no chapter notebooks found"
    for path in written:
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        exercises = [c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source]
        assert len(exercises) >= 2, f"{path.name}: fewer than two exercises"
        assert not any(BEGIN in c.source for c in nb.cells)
        NotebookClient(nb, timeout=120, allow_errors=True, kernel_name="python3",
                       resources={"metadata": {"path": str(ROOT / "notebooks")}}).execute()
        for cell in exercises:
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "AssertionError", cell.source[:80]
            assert "not implemented yet" in errors[0].evalue
