"""Each chapter notebooks/NN-name.ipynb holds exactly the cells of its jupytext source NN-name.py.

The .py (percent format) is the text an instructor edits; `make notebooks` (tools/execute_notebooks.py) brings the
.ipynb up to date from it and re-executes it. These tests read files only (no kernel is started).
"""
import os
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))

from execute_notebooks import (  # noqa: E402
    FORMATS, SourceError, chapter_names, drift, new_cell_id, pairing_problems, resolve_chapter, updated_notebook,
)

NOTEBOOKS = ROOT / "notebooks"
CHAPTERS = chapter_names(NOTEBOOKS)


def test_every_chapter_has_both_files():
    assert len(CHAPTERS) >= 12, CHAPTERS
    assert pairing_problems(NOTEBOOKS) == []
    for name in CHAPTERS:
        assert (NOTEBOOKS / f"{name}.py").is_file() and (NOTEBOOKS / f"{name}.ipynb").is_file(), name


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_ipynb_holds_the_cells_of_its_py(chapter):
    problem = drift(NOTEBOOKS / f"{chapter}.py", NOTEBOOKS / f"{chapter}.ipynb")
    assert problem is None, problem


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_no_timing_metadata_and_unique_ids(chapter):
    """nbclient's per-cell timing would change every cell on every run: `make notebooks` does not record it."""
    nb = nbformat.read(NOTEBOOKS / f"{chapter}.ipynb", as_version=4)
    timed = [i + 1 for i, c in enumerate(nb.cells) if "execution" in c.metadata]
    assert not timed, f"{chapter}.ipynb: cells {timed} carry nbclient's timing metadata"
    ids = [c.id for c in nb.cells]
    assert len(set(ids)) == len(ids), f"{chapter}.ipynb: repeated cell ids"


# ---- the checker itself, on pairs made in tmp_path ----

def _pair(folder: Path, name: str = "00-demo", cells=None):
    """Write a paired NN-name.ipynb / NN-name.py in `folder` (as jupytext would) and return their paths."""
    md, code = nbformat.v4.new_markdown_cell, nbformat.v4.new_code_cell
    cells = cells or [md("# Demo\n\nThe slope is $\\frac{dy}{dx}$."),
                      code("import numpy as np\nx = np.arange(3)\nprint(x.sum())",
                           outputs=[nbformat.v4.new_output("stream", name="stdout", text="3\n")], execution_count=1),
                      md("## Exercise"),
                      code("def f(x):\n    ### BEGIN SOLUTION\n    return 2 * x\n    ### END SOLUTION\nf(1)",
                           metadata={"tags": ["raises-exception"],
                                     "nbgrader": {"schema_version": 3, "solution": True, "grade": False,
                                                  "locked": False, "grade_id": "ch00_ex1"}})]
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["jupytext"] = {"formats": FORMATS}
    ipynb, py = folder / f"{name}.ipynb", folder / f"{name}.py"
    nbformat.write(nb, ipynb)
    jupytext.write(nb, py, fmt="py:percent")
    return py, ipynb


def _edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert text.count(old) == 1, (old, text)
    path.write_text(text.replace(old, new))


def test_a_fresh_pair_passes_and_keeps_cell_metadata(tmp_path):
    py, ipynb = _pair(tmp_path)
    assert drift(py, ipynb) is None
    assert 'nbgrader={"schema_version": 3' in py.read_text()  # nbgrader's metadata lives in the .py too
    cell = jupytext.read(py).cells[3]
    assert cell.metadata["tags"] == ["raises-exception"] and cell.metadata["nbgrader"]["grade_id"] == "ch00_ex1"


def test_an_edited_line_is_reported_with_file_cell_and_line(tmp_path):
    py, ipynb = _pair(tmp_path)
    _edit(py, "x = np.arange(3)", "x = np.arange(4)")
    msg = drift(py, ipynb)
    assert msg is not None
    assert "00-demo.ipynb" in msg and "00-demo.py" in msg
    assert "cell 2 of 4" in msg and "line 2 of the cell" in msg
    assert ".py:    'x = np.arange(4)'" in msg and ".ipynb: 'x = np.arange(3)'" in msg


def test_an_added_cell_is_reported(tmp_path):
    py, ipynb = _pair(tmp_path)
    _edit(py, "# %% [markdown]\n# ## Exercise\n", "# %% [markdown]\n# ## Exercise\n\n# %%\nprint('new')\n")
    msg = drift(py, ipynb)
    assert "cell 4 of 5 in the .py (4 in the .ipynb)" in msg, msg
    assert ".py:    \"print('new')\"" in msg and ".ipynb: 'def f(x):'" in msg, msg


def test_a_removed_cell_is_reported(tmp_path):
    py, ipynb = _pair(tmp_path)
    _edit(py, "# %% [markdown]\n# ## Exercise\n\n", "")  # the .py loses a cell: the next ones shift
    msg = drift(py, ipynb)
    assert "cell 3 of 3 in the .py (4 in the .ipynb)" in msg and "a code cell in the .py, a markdown" in msg, msg


def test_a_cell_appended_to_the_py_is_reported(tmp_path):
    py, ipynb = _pair(tmp_path)
    py.write_text(py.read_text() + "\n# %%\nprint('the end')\n")
    msg = drift(py, ipynb)
    assert "differ at cell 5: the .py has 5 cells, the .ipynb 4" in msg and "only in the .py" in msg, msg
    assert "print('the end')" in msg


def test_a_changed_cell_type_is_reported(tmp_path):
    py, ipynb = _pair(tmp_path)
    _edit(py, "# %% [markdown]\n# ## Exercise", "# %%\n## Exercise")
    msg = drift(py, ipynb)
    assert "cell 3 of 4" in msg and "a code cell in the .py, a markdown cell in the .ipynb" in msg, msg


def test_changed_cell_metadata_is_reported(tmp_path):
    py, ipynb = _pair(tmp_path)
    _edit(py, ' tags=["raises-exception"]', "")
    msg = drift(py, ipynb)
    assert "cell 4 of 4" in msg and "metadata differ" in msg and "raises-exception" in msg, msg


def test_an_unpaired_notebook_and_missing_files_are_reported(tmp_path):
    py, ipynb = _pair(tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    del nb.metadata["jupytext"]
    nbformat.write(nb, ipynb)
    assert "not paired" in drift(py, ipynb) and "jupytext --set-formats" in drift(py, ipynb)

    only_py, _ = _pair(tmp_path, "01-only-py")
    (tmp_path / "01-only-py.ipynb").unlink()
    _, only_nb = _pair(tmp_path, "02-only-ipynb")
    (tmp_path / "02-only-ipynb.py").unlink()
    problems = pairing_problems(tmp_path)
    assert len(problems) == 2, problems
    assert "01-only-py.py has no paired 01-only-py.ipynb" in problems[0]
    assert "02-only-ipynb.ipynb has no paired 02-only-ipynb.py" in problems[1]


def test_update_keeps_ids_and_outputs_and_gives_new_cells_derived_ids(tmp_path):
    py, ipynb = _pair(tmp_path)
    before = nbformat.read(ipynb, as_version=4)
    _edit(py, "# ## Exercise", "# ## Exercise, edited")
    _edit(py, "# %%\nimport numpy", "# %%\nprint('new cell')\n\n# %%\nimport numpy")
    os.utime(py, (ipynb.stat().st_atime + 5, ipynb.stat().st_mtime + 5))
    nb = updated_notebook("00-demo", tmp_path)
    old_ids = [c.id for c in before.cells]
    assert [c.id for i, c in enumerate(nb.cells) if i != 1] == old_ids  # unchanged and edited cells keep theirs
    assert nb.cells[1].id == new_cell_id("00-demo", nb.cells[1], set(old_ids))
    assert nb.cells[2].outputs == before.cells[1].outputs  # the unchanged cell keeps its output
    assert nb.cells[3].source == "## Exercise, edited"
    nbformat.write(nb, ipynb)
    assert drift(py, ipynb) is None
    again = updated_notebook("00-demo", tmp_path)
    assert nbformat.writes(again) == nbformat.writes(nb)  # the same sources give the same file


def test_new_cell_ids_are_deterministic_and_never_collide():
    cell = nbformat.v4.new_code_cell("x = 1")
    a = new_cell_id("02-relu-and-pooling", cell, set())
    assert a == new_cell_id("02-relu-and-pooling", cell, set()) and len(a) == 8
    assert new_cell_id("02-relu-and-pooling", cell, {a}) != a
    assert new_cell_id("03-other", cell, set()) != a


def test_a_notebook_edited_without_jupytext_is_not_overwritten(tmp_path):
    py, ipynb = _pair(tmp_path)
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[0].source = "# Demo, edited in the .ipynb only"
    nbformat.write(nb, ipynb)
    os.utime(ipynb, (py.stat().st_atime + 10, py.stat().st_mtime + 10))
    with pytest.raises(SourceError, match="edited without jupytext") as err:
        updated_notebook("00-demo", tmp_path)
    assert "jupytext --to py:percent" in str(err.value) and "touch" in str(err.value)
    assert updated_notebook("00-demo", tmp_path, force=True).cells[0].source.startswith("# Demo\n")


def test_a_new_chapter_written_as_py_gets_its_ipynb(tmp_path):
    py, ipynb = _pair(tmp_path)
    ipynb.unlink()
    nb = updated_notebook("00-demo", tmp_path)
    assert nb.metadata["jupytext"] == {"formats": FORMATS}
    assert [c.id for c in nb.cells] == [new_cell_id("00-demo", c, set()) for c in nb.cells]
    nbformat.write(nb, ipynb)
    assert drift(py, ipynb) is None


def test_chapters_are_named_by_number_or_name():
    assert resolve_chapter("02") == "02-relu-and-pooling"
    assert resolve_chapter("A") == "A-troubleshooting"
    assert resolve_chapter("notebooks/10-the-original-paper.py") == "10-the-original-paper"
    with pytest.raises(SourceError, match="no chapter '99'.*00-introduction"):
        resolve_chapter("99")


def test_a_real_chapter_copy_detects_drift(tmp_path):
    """The same checker on a copy of a real chapter: one changed line in the .py is caught."""
    for ext in (".py", ".ipynb"):
        shutil.copy(NOTEBOOKS / f"00-introduction{ext}", tmp_path)
    py, ipynb = tmp_path / "00-introduction.py", tmp_path / "00-introduction.ipynb"
    assert drift(py, ipynb) is None
    _edit(py, "rng = np.random.default_rng(0)", "rng = np.random.default_rng(1)")
    msg = drift(py, ipynb)
    assert "cell 2 of" in msg and "default_rng(1)" in msg and "default_rng(0)" in msg, msg
