"""`make nbgrader`: the chapters become an nbgrader course that the real nbgrader (0.9.x) generates and grades.

The slow test builds a course from three fast chapters (00, 02 with TensorFlow in its first cell, 05), runs
`nbgrader generate_assignment`, then `nbgrader autograde` on three students: "solution" hands in the
instructor's source (full marks), "stub" hands in the released copy untouched (zero, with "not implemented
yet" in the graded cells and in the feedback), and "partial" (chapter 00 only) answers one exercise wrongly,
tries to pass another by redefining its check, and solves the third (one point of three). Scores are read
from nbgrader's gradebook. The fast tests check how exercise cells are split.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from make_nbgrader import (NbgraderError, chapter_paths, course_timeout, main, make_course,  # noqa: E402
                           split_exercise, to_assignment)

CHAPTERS = ["00-introduction", "02-relu-and-pooling", "05-backpropagation"]      # chapter 00: 3 exercises
GRADE_ID = re.compile(r"^[a-zA-Z0-9_-]*$")


def runs_nbgrader(test):
    """Marks a test that runs the real nbgrader (minutes of kernels on a 2-core machine): slow, notebook."""
    for mark in (pytest.mark.slow, pytest.mark.notebook, pytest.mark.timeout(1800)):
        test = mark(test)
    return test


# ---------------------------------------------------------------- the split (fast)

def test_an_exercise_cell_splits_into_solution_and_locked_check():
    src = ("from unet_scratch.exercises.ch02 import check_relu_backward, check_maxpool2x2\n\n"
           "def relu_backward(dy, x):\n    ### BEGIN SOLUTION\n    return dy * (x > 0)\n    ### END SOLUTION\n\n"
           "check_relu_backward(relu_backward)  # three cases\ncheck_maxpool2x2(\n    maxpool2x2)")
    solution, test = split_exercise(src)
    assert solution.endswith("### END SOLUTION") and "check_relu_backward(relu_backward)" not in solution
    assert test.splitlines() == [
        "from unet_scratch.exercises.ch02 import check_maxpool2x2, check_relu_backward",
        "check_relu_backward(relu_backward);  # three cases",
        "check_maxpool2x2(",
        "    maxpool2x2);"]


def test_checks_imported_in_an_earlier_cell_are_imported_again():
    earlier = ["import numpy as np\nfrom unet_scratch.exercises import check_conv_params as cp"]
    _, test = split_exercise("def f(k):\n    ### BEGIN SOLUTION\n    return k\n    ### END SOLUTION\ncp(f)\n"
                             "check_x(f)", earlier)
    # `cp` is not named check_*: it is not a check call, so the trailing checks are only `check_x(f)`
    assert test == "check_x(f);"
    _, test = split_exercise("def f(k):\n    ### BEGIN SOLUTION\n    return k\n    ### END SOLUTION\n"
                             "check_conv_params(f)", ["from unet_scratch.exercises import check_conv_params"])
    assert test == "from unet_scratch.exercises import check_conv_params\ncheck_conv_params(f);"


def test_an_exercise_without_a_trailing_check_is_refused():
    with pytest.raises(NbgraderError, match="must end with its check call"):
        split_exercise("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n", where="x.ipynb cell 3")
    with pytest.raises(NbgraderError, match=r"x.ipynb cell 3: an exercise cell must end"):
        split_exercise("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\ncheck_f(f)\ny = 2",
                       where="x.ipynb cell 3")
    with pytest.raises(NbgraderError, match="inside the solution"):
        split_exercise("### BEGIN SOLUTION\ncheck_f(f)\n### END SOLUTION\ncheck_f(f)")


def test_every_chapter_becomes_an_assignment_with_valid_nbgrader_metadata():
    for path in chapter_paths(ROOT / "notebooks"):
        nb = nbformat.read(path, as_version=4)
        n_exercises = sum(c.cell_type == "code" and "### BEGIN SOLUTION" in c.source for c in nb.cells)
        out, tests = to_assignment(nb, path.stem)
        meta = [c.metadata["nbgrader"] for c in out.cells if "nbgrader" in c.metadata]
        solutions = [m for m in meta if m["solution"]]
        graded = [m for m in meta if m["grade"]]
        assert len(solutions) == len(graded) == len(tests) == n_exercises >= 1, path.name
        assert len(out.cells) == len(nb.cells) + n_exercises
        ids = [m["grade_id"] for m in meta]
        assert len(set(ids)) == len(ids) and all(GRADE_ID.match(i) for i in ids), ids
        for m in meta:
            assert m["schema_version"] == 3
        for m in solutions:
            assert not m["grade"] and not m["locked"]
        for m in graded:
            assert m["locked"] and not m["solution"] and m["points"] == 1
        setup = [m for m in meta if not m["solution"] and not m["grade"]]
        assert len(setup) == 1 and setup[0]["locked"], "the first code cell is read-only"
        for i, cell in enumerate(out.cells):
            m = cell.metadata.get("nbgrader", {})
            if m.get("grade"):
                prev = out.cells[i - 1]
                assert prev.metadata["nbgrader"]["solution"], "each test cell follows its solution cell"
                calls = [ln for ln in cell.source.splitlines() if ln.startswith("check_")]
                assert calls and all(ln.rstrip().endswith(";") for ln in calls), cell.source
                assert "BEGIN SOLUTION" not in cell.source
                assert "import_tensorflow" not in cell.source and "tensorflow" not in cell.source
            elif "BEGIN SOLUTION" in cell.source:
                assert m.get("solution"), "a cell with a solution must be a solution cell"
        assert "check_" not in "".join(c.source.split("### END SOLUTION")[-1]
                                       for c in out.cells if c.metadata.get("nbgrader", {}).get("solution"))


def test_course_folder_files_and_timeout(tmp_path, capsys):
    assert main(["--notebooks", str(ROOT / "notebooks"), "--out", str(tmp_path), "--chapters", "09"]) == 0
    assert "09-going-fast.ipynb: 3 graded exercises" in capsys.readouterr().out
    config = (tmp_path / "nbgrader_config.py").read_text()
    assert re.search(r"^c\.Execute\.timeout = (\d+)$", config, re.M)
    compile(config, "nbgrader_config.py", "exec")
    nb = nbformat.read(tmp_path / "source" / "09-going-fast" / "09-going-fast.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    # the chapter reads the committed benchmark run through repo_path: the file is copied beside it, where
    # repo_path finds it when the package is not a checkout (a JupyterHub image with a wheel)
    assert '"../benchmarks/' not in code and 'repo_path("benchmarks/results/bench-full.json")' in code
    assert (tmp_path / "source" / "09-going-fast" / "benchmarks" / "results" / "bench-full.json").is_file()
    assert course_timeout({"a": 2.0, "b": 13.5, "c": None}) == (120, course_timeout({"b": 13.5})[1])
    assert course_timeout({"a": 0.5})[0] == 30 and course_timeout({"a": None})[0] == 120
    assert main(["--out", str(tmp_path), "--chapters", "99"]) == 2
    assert "no chapter '99'" in capsys.readouterr().err


# ---------------------------------------------------------------- the real nbgrader (slow)

def _nbgrader(course: Path, *args, check=True):
    """Run the nbgrader command line in `course` (where its nbgrader_config.py is read)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", OPENBLAS_NUM_THREADS="1",
               # nbgrader creates its gradebook by running `alembic` from PATH: the venv's own
               PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]))
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=course, env=env, text=True,
                          capture_output=True, timeout=900)
    if check and (proc.returncode or "[ERROR]" in proc.stderr or "| ERROR]" in proc.stderr):
        pytest.fail(f"nbgrader {' '.join(args)} failed ({proc.returncode}):\n{proc.stderr[-4000:]}", pytrace=False)
    return proc


def _partial_submission(released: Path, source: Path, dest: Path):
    """Chapter 00 with exercise 1 answered wrongly (returns None), exercise 2 left as the stub but with
    its check redefined in the solution cell, exercise 3 solved."""
    nb, src = nbformat.read(released, as_version=4), nbformat.read(source, as_version=4)
    solved = {c.metadata["nbgrader"]["grade_id"]: c.source for c in src.cells
              if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        gid = cell.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "ch00_ex1":
            assert "raise NotImplementedError()" in cell.source
            cell.source = cell.source.replace("raise NotImplementedError()", "return None")
        elif gid == "ch00_ex2":
            cell.source += "\n\ncheck_conv_params = lambda f: True   # the locked test cell imports the real one"
        elif gid == "ch00_ex3":
            cell.source = solved[gid]
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """A course of three chapters, generated, submitted by three students, autograded, with feedback."""
    pytest.importorskip("nbgrader", reason="nbgrader not installed: pip install -e '.[nbgrader]'")
    course = tmp_path_factory.mktemp("course")
    make_course(ROOT / "notebooks", course, chapters=CHAPTERS)
    _nbgrader(course, "generate_assignment", "*")
    for ch in CHAPTERS:
        release = course / "release" / ch / f"{ch}.ipynb"
        assert release.is_file(), f"generate_assignment wrote no {release}"
        for student, nb in (("solution", course / "source" / ch / f"{ch}.ipynb"), ("stub", release)):
            (course / "submitted" / student / ch).mkdir(parents=True)
            shutil.copy(nb, course / "submitted" / student / ch / f"{ch}.ipynb")
    ch00 = CHAPTERS[0]
    _partial_submission(course / "release" / ch00 / f"{ch00}.ipynb", course / "source" / ch00 / f"{ch00}.ipynb",
                        course / "submitted" / "partial" / ch00 / f"{ch00}.ipynb")
    _nbgrader(course, "autograde", "*")
    _nbgrader(course, "generate_feedback", "*", "--student=stub")
    return course


def _exercises(course: Path, chapter: str) -> int:
    nb = nbformat.read(course / "source" / chapter / f"{chapter}.ipynb", as_version=4)
    return sum(bool(c.metadata.get("nbgrader", {}).get("grade")) for c in nb.cells)


def _scores(course: Path, student: str, chapter: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gb:
        sub = gb.find_submission(chapter, student)
        per_cell = {g.name: g.auto_score for g in gb.find_submission_notebook(chapter, chapter, student).grades}
        return sub.score, sub.max_score, per_cell


def _graded_cells(course: Path, student: str, chapter: str):
    nb = nbformat.read(course / "autograded" / student / chapter / f"{chapter}.ipynb", as_version=4)
    return [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]


@runs_nbgrader
def test_the_released_copy_has_stubs_and_locked_checks(graded):
    for ch in CHAPTERS:
        nb = nbformat.read(graded / "release" / ch / f"{ch}.ipynb", as_version=4)
        text = "\n".join(c.source for c in nb.cells)
        assert "### BEGIN SOLUTION" not in text
        assert text.count("raise NotImplementedError()") == _exercises(graded, ch) >= 3
        for cell in nb.cells:
            m = cell.metadata.get("nbgrader", {})
            if m.get("locked"):
                assert cell.metadata.get("editable") is False and cell.metadata.get("deletable") is False
            assert not cell.get("outputs"), "nbgrader releases chapters without outputs"


@runs_nbgrader
def test_solutions_get_full_marks(graded):
    for ch in CHAPTERS:
        score, max_score, per_cell = _scores(graded, "solution", ch)
        n = _exercises(graded, ch)
        assert (score, max_score) == (n, n), (ch, per_cell)
        for cell in _graded_cells(graded, "solution", ch):
            streams = [o for o in cell.outputs if o.output_type == "stream"]
            assert streams and all(o.name == "stdout" for o in streams), (ch, cell.source, cell.outputs)
            assert "correct:" in streams[0].text
            assert not [o for o in cell.outputs if o.output_type in ("error", "execute_result")]


@runs_nbgrader
def test_the_released_copy_gets_zero_and_says_not_implemented_yet(graded):
    for ch in CHAPTERS:
        score, max_score, per_cell = _scores(graded, "stub", ch)
        n = _exercises(graded, ch)
        assert (score, max_score) == (0, n), (ch, per_cell)
        for cell in _graded_cells(graded, "stub", ch):
            errors = [o for o in cell.outputs if o.output_type == "error"]
            assert errors and errors[0].ename == "AssertionError", cell.outputs
            assert "not implemented yet" in errors[0].evalue
            assert not [o for o in cell.outputs if o.output_type == "stream" and o.name == "stderr"]
        feedback = (graded / "feedback" / "stub" / ch / f"{ch}.html").read_text()
        assert feedback.count("not implemented yet") >= n and f"Score: 0.0 / {n:.1f}" in feedback


@runs_nbgrader
def test_a_wrong_answer_and_a_redefined_check_earn_nothing(graded):
    score, max_score, per_cell = _scores(graded, "partial", CHAPTERS[0])
    assert per_cell == {"ch00_ex1_check": 0.0, "ch00_ex2_check": 0.0, "ch00_ex3_check": 1.0}
    assert (score, max_score) == (1.0, 3.0), per_cell
    cells = {c.metadata["nbgrader"]["grade_id"]: c for c in _graded_cells(graded, "partial", CHAPTERS[0])}
    wrong = [o for o in cells["ch00_ex1_check"].outputs if o.output_type == "error"][0]
    assert wrong.ename == "AssertionError" and "got None" in wrong.evalue
    cheat = [o for o in cells["ch00_ex2_check"].outputs if o.output_type == "error"][0]
    assert "not implemented yet" in cheat.evalue
