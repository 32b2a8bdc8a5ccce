"""Write an nbgrader course folder from the chapters: `make nbgrader`.

    python tools/make_nbgrader.py [--notebooks notebooks] [--out nbgrader] [--chapters 00 02 05]
                                  [--points 1] [--timeout SECONDS]

writes ``<out>/nbgrader_config.py`` and ``<out>/source/<chapter>/<chapter>.ipynb`` for every chapter (or the
ones named), ready for ``nbgrader generate_assignment <chapter>`` run inside ``<out>``.

An exercise in a chapter is one code cell: the student's function with its solution between
``### BEGIN SOLUTION`` and ``### END SOLUTION``, then one or more ``check_xxx(...)`` calls. Each such cell
becomes two nbgrader cells:

- the **solution cell** (``solution: true, grade: false, locked: false``, grade_id ``ch02_ex1``): everything
  up to the check calls. ``generate_assignment`` replaces the solution by ``raise NotImplementedError()``;
- the **test cell** (``grade: true, locked: true, points: N``, grade_id ``ch02_ex1_check``): the check calls,
  each ending with ``;`` (nbgrader reads a displayed value such as ``True`` as a partial score), preceded by
  the imports of the checks it calls. A locked cell is restored from the instructor's copy at grading, and
  with its own imports it does not depend on anything the student may have renamed, deleted or redefined
  (``check_relu_backward = lambda f: True`` in a solution cell earns nothing).

The chapter's first code cell (imports, seeds, ``TF_CPP_MIN_LOG_LEVEL`` set before TensorFlow is imported)
becomes a **read-only** cell (``locked: true``, not graded): nbgrader restores it at grading, so every
solution gets its imports and TensorFlow's start-up messages on stderr land in that ungraded cell, never
in a graded one (nbgrader gives 0 points to a graded cell with any stderr). Every other cell stays an
ordinary, editable cell without nbgrader metadata: the chapters are meant to be played with (change a
seed, a shape, a plot), and the grade depends only on the solution cells and the locked test cells.

Files the chapters read from outside notebooks/ (string literals such as ``"../benchmarks/results"``) are
copied into the assignment folder and the literal loses its ``../``: nbgrader releases the folder's files
with the notebook and copies them next to each submission when it autogrades.

Per-cell timeout: nbgrader runs every cell of a chapter under ``Execute.timeout`` (default 30 s) when it
autogrades or validates. The file written here sets it from the slowest cell recorded in the chapters'
execution metadata, times a margin for slower machines (see ``course_timeout``).
"""
from __future__ import annotations

import argparse
import ast
import math
import re
import shutil
import sys
from datetime import datetime
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"
COURSE_ID = "unet-scratch"
NBGRADER_DEFAULT_TIMEOUT = 30
TIMEOUT_MARGIN = 8          # a JupyterHub pod or a student laptop may be this much slower than the stored run
FALLBACK_TIMEOUT = 120      # when the chapters carry no execution timing
GRADE_ID = re.compile(r"^[a-zA-Z0-9_-]*$")
PARENT_LITERAL = re.compile(r"""(?P<q>["'])\.\./(?P<path>[^"'\n]+?)(?P=q)""")
REPO_PATH_CALL = re.compile(r"""repo_path\(\s*(?P<q>["'])(?P<path>[^"'\n]+?)(?P=q)""")


class NbgraderError(ValueError):
    """A chapter cannot be turned into an nbgrader assignment; the message says which cell and why."""


# ---------------------------------------------------------------- cells

def _parse(source: str) -> ast.Module:
    """Parse a code cell, with IPython magics (``%time``, ``!ls``) blanked so line numbers are kept."""
    lines = ["" if ln.lstrip().startswith(("%", "!")) else ln for ln in source.split("\n")]
    return ast.parse("\n".join(lines))


def _is_check_call(stmt: ast.stmt) -> bool:
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)):
        return False
    func = stmt.value.func
    name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else ""
    return name.startswith("check_")


def _check_names(stmts) -> list[str]:
    return [s.value.func.id for s in stmts if isinstance(s.value.func, ast.Name)]


def imported_names(sources) -> dict[str, tuple[str, str]]:
    """{name bound in the notebook: (module, name in the module)} for every ``from m import x [as y]``."""
    found = {}
    for source in sources:
        try:
            tree = _parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                for alias in node.names:
                    found[alias.asname or alias.name] = (node.module, alias.name)
    return found


def split_exercise(source: str, earlier_sources=(), where: str = "cell") -> tuple[str, str]:
    """Split an exercise cell into (solution cell source, test cell source).

    The test cell holds the cell's trailing ``check_xxx(...)`` calls, each ending with ``;``, preceded by a
    ``from ... import check_xxx`` for every check imported in this cell or an earlier one
    (`earlier_sources`). Raises NbgraderError naming `where` when the cell has no trailing check call, or
    when a check call does not come after the last ``### END SOLUTION``.
    """
    try:
        tree = _parse(source)
    except SyntaxError as e:
        raise NbgraderError(f"{where}: the exercise cell is not valid Python ({e.msg}, line {e.lineno})") from None
    tail = []
    for stmt in reversed(tree.body):
        if not _is_check_call(stmt):
            break
        tail.insert(0, stmt)
    if not tail:
        raise NbgraderError(f"{where}: an exercise cell must end with its check call(s), e.g. "
                            f"`check_relu_backward(relu_backward)` after {END!r}; none found")
    lines = source.split("\n")
    end_line = max(i for i, ln in enumerate(lines, 1) if ln.strip() == END)
    if tail[0].lineno <= end_line:
        raise NbgraderError(f"{where}: the check call on line {tail[0].lineno} is inside the solution "
                            f"(before {END!r} on line {end_line}); put the check calls after the function")

    first = tail[0].lineno - 1
    solution = "\n".join(lines[:first]).rstrip()
    test = lines[first:]
    for stmt in tail:                         # `;` right after each call (before any trailing comment)
        row = stmt.end_lineno - 1 - first
        line = test[row]
        cut = len(line.encode("utf-8")[:stmt.end_col_offset].decode("utf-8"))   # ast counts UTF-8 bytes
        if not line[cut:].lstrip().startswith(";"):
            test[row] = line[:cut] + ";" + line[cut:]
    test_src = "\n".join(test).strip()

    names = imported_names([*earlier_sources, source])
    by_module: dict[str, list[str]] = {}
    for name in dict.fromkeys(_check_names(tail)):
        if name in names:
            module, original = names[name]
            by_module.setdefault(module, []).append(original if original == name else f"{original} as {name}")
    imports = [f"from {m} import {', '.join(sorted(ns))}" for m, ns in sorted(by_module.items())]
    return solution, "\n".join([*imports, test_src])


def _nbgrader_meta(grade_id: str, *, solution=False, grade=False, locked=False, points=None) -> dict:
    if not GRADE_ID.match(grade_id):
        raise NbgraderError(f"grade_id {grade_id!r} must match {GRADE_ID.pattern}")
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3,
            "solution": solution, "task": False}
    if points is not None:
        meta["points"] = points
    return meta


def chapter_tag(stem: str) -> str:
    """'02-relu-and-pooling' -> 'ch02', 'A-troubleshooting' -> 'chA'."""
    return "ch" + re.sub(r"[^a-zA-Z0-9_]", "", stem.split("-", 1)[0])


def _code_cell(source: str, meta: dict, cell_id: str | None):
    cell = nbformat.v4.new_code_cell(source, metadata={"nbgrader": meta})
    if cell_id is None:
        cell.pop("id", None)
    else:
        cell["id"] = cell_id
    return cell


def to_assignment(nb, stem: str, points: int = 1):
    """Return (the nbgrader source notebook, [grade_id of each test cell]) for chapter notebook `nb`."""
    tag = chapter_tag(stem)
    with_ids = (nb.nbformat, nb.nbformat_minor) >= (4, 5)
    cells, tests, earlier = [], [], []
    setup_done = False
    for index, cell in enumerate(nb.cells):
        where = f"{stem}.ipynb cell {index}"
        if cell.cell_type != "code":
            if BEGIN in cell.source or END in cell.source:
                raise NbgraderError(f"{where}: a {cell.cell_type} cell contains {BEGIN!r}; solutions belong in "
                                    "code cells (nbgrader refuses markers outside solution cells)")
            cells.append(cell)
            continue
        if BEGIN not in cell.source:
            if END in cell.source:
                raise NbgraderError(f"{where}: {END!r} without {BEGIN!r}")
            if not setup_done:        # the chapter's first code cell: imports and seeds, read-only
                cell.metadata["nbgrader"] = _nbgrader_meta(f"{tag}_setup", locked=True)
                setup_done = True
            cells.append(cell)
            earlier.append(cell.source)
            continue
        setup_done = True
        number = len(tests) + 1
        solution, test = split_exercise(cell.source, earlier, where)
        grade_id = f"{tag}_ex{number}"
        sol = _code_cell(solution, _nbgrader_meta(grade_id, solution=True),
                         cell.get("id") if with_ids else None)
        sol.metadata.update({k: v for k, v in cell.metadata.items() if k not in ("nbgrader", "execution")})
        check = _code_cell(test, _nbgrader_meta(f"{grade_id}_check", grade=True, locked=True, points=points),
                           f"{grade_id}_check" if with_ids else None)
        cells += [sol, check]
        tests.append(f"{grade_id}_check")
        earlier.append(cell.source)
    if not tests:
        raise NbgraderError(f"{stem}.ipynb has no exercise cell (a code cell with {BEGIN!r}); nothing to grade")
    out = nbformat.v4.new_notebook(cells=cells, metadata=dict(nb.metadata))
    out.nbformat, out.nbformat_minor = nb.nbformat, nb.nbformat_minor
    out.metadata.pop("jupytext", None)       # the course folder has no paired .py files
    nbformat.validate(out)
    return out, tests


# ---------------------------------------------------------------- files outside notebooks/ and timing

def parent_files(nb, notebooks: Path) -> list[str]:
    """Paths (relative to the repository) that code cells name as ``"../<path>"`` literals or as
    ``repo_path("<path>")`` arguments, and that exist."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == "code":
            for m in PARENT_LITERAL.finditer(cell.source):
                target = (notebooks / ".." / m["path"]).resolve()
                if target.exists() and m["path"] not in found:
                    found.append(m["path"])
            for m in REPO_PATH_CALL.finditer(cell.source):          # resources.repo_path("<path>"): the
                target = (notebooks / ".." / m["path"]).resolve()     # file ships beside the notebook, where
                if target.exists() and m["path"] not in found:      # repo_path finds it without a checkout
                    found.append(m["path"])
    return found


def relocate(nb, paths) -> None:
    """Rewrite ``"../<path>"`` literals of code cells to ``"<path>"`` for each path in `paths`."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            for path in paths:
                for q in "\"'":
                    cell.source = cell.source.replace(f"{q}../{path}", f"{q}{path}")


def slowest_cell(nb) -> float | None:
    """The longest execution time recorded in `nb`'s cell metadata (nbclient's timing), in seconds."""
    longest = None
    for cell in nb.cells:
        timing = cell.get("metadata", {}).get("execution", {})
        start, end = timing.get("iopub.execute_input"), timing.get("shell.execute_reply")
        if start and end:
            seconds = (datetime.fromisoformat(end.replace("Z", "+00:00"))
                       - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
            longest = seconds if longest is None else max(longest, seconds)
    return longest


def course_timeout(slowest: dict[str, float | None]) -> tuple[int, str]:
    """(per-cell timeout in s, the reason) from {chapter: slowest recorded cell in s or None}."""
    known = {k: v for k, v in slowest.items() if v is not None}
    if not known:
        return FALLBACK_TIMEOUT, "no execution timing is stored in the chapters"
    chapter = max(known, key=known.get)
    seconds = max(NBGRADER_DEFAULT_TIMEOUT, 30 * math.ceil(known[chapter] * TIMEOUT_MARGIN / 30))
    return seconds, (f"the slowest recorded cell takes {known[chapter]:.1f} s ({chapter}); "
                     f"{TIMEOUT_MARGIN}x that, rounded up to 30 s")


CONFIG = '''\
# nbgrader configuration for the unet-scratch course.
# Written by tools/make_nbgrader.py (`make nbgrader`), which overwrites it: put your own settings (exchange,
# database, students) in ~/.jupyter/nbgrader_config.py, or edit this file after the last `make nbgrader`.
c = get_config()  # noqa: F821 (nbgrader provides it)

c.CourseDirectory.course_id = "{course_id}"

# Every cell of a chapter runs under this limit when nbgrader autogrades or validates (default 30 s):
# {reason}.
c.Execute.timeout = {timeout}

# The exercises' graded cells print "correct: ..." or fail with an AssertionError that says what is wrong
# ("relu_backward: not implemented yet (replace `raise NotImplementedError`)"). A graded cell scores 0 when
# it writes anything to stderr; TensorFlow, which does, is imported in each chapter's read-only first cell.
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
'''


# ---------------------------------------------------------------- the course folder

def chapter_paths(notebooks: Path, chapters=None) -> list[Path]:
    """The chapter notebooks, or those whose name starts with one of `chapters` ('02', '08-training', 'A')."""
    paths = sorted(notebooks.glob("[0-9A-Z]*.ipynb"))
    if not paths:
        raise NbgraderError(f"no chapter notebooks in {notebooks}")
    if not chapters:
        return paths
    picked = []
    for want in chapters:
        match = [p for p in paths if p.stem == want or p.stem.startswith(f"{want}-")]
        if not match:
            raise NbgraderError(f"no chapter {want!r} in {notebooks}; chapters: {', '.join(p.stem for p in paths)}")
        picked += [p for p in match if p not in picked]
    return picked


def make_course(notebooks: Path, out: Path, chapters=None, points: int = 1, timeout: int | None = None) -> dict:
    """Write out/nbgrader_config.py and out/source/<chapter>/<chapter>.ipynb (plus the files it reads).

    Only the chapters' folders under out/source and the config file are replaced; a gradebook, releases
    and submissions already in `out` are left alone. Returns {chapter: [test cell grade_ids]}.
    """
    notebooks = Path(notebooks).resolve()
    written, slowest = {}, {}
    for path in chapter_paths(notebooks, chapters):
        nb = nbformat.read(path, as_version=4)
        slowest[path.stem] = slowest_cell(nb)
        assignment, tests = to_assignment(nb, path.stem, points)
        folder = out / "source" / path.stem
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        extra = parent_files(assignment, notebooks)
        relocate(assignment, extra)
        for rel in extra:
            src, dst = (notebooks / ".." / rel).resolve(), folder / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if src.is_dir():
                shutil.copytree(src, dst, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
            else:
                shutil.copy2(src, dst)
        nbformat.write(assignment, folder / path.name)
        written[path.stem] = tests
    if timeout is None:
        timeout, reason = course_timeout(slowest)
    else:
        reason = "set with --timeout"
    (out / "nbgrader_config.py").write_text(CONFIG.format(course_id=COURSE_ID, timeout=timeout, reason=reason))
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("notebooks_pos", nargs="?", metavar="NOTEBOOKS", help="chapters folder (default notebooks)")
    parser.add_argument("out_pos", nargs="?", metavar="OUT", help="course folder (default nbgrader)")
    parser.add_argument("--notebooks", default=None)
    parser.add_argument("--out", default=None)
    parser.add_argument("--chapters", nargs="*", help="only these chapters, by number or name (00 02 A)")
    parser.add_argument("--points", type=int, default=1, help="points per exercise (default 1)")
    parser.add_argument("--timeout", type=int, default=None, help="nbgrader's per-cell timeout in s")
    args = parser.parse_args(argv)
    notebooks = Path(args.notebooks or args.notebooks_pos or "notebooks")
    out = Path(args.out or args.out_pos or "nbgrader")
    try:
        written = make_course(notebooks, out, args.chapters, args.points, args.timeout)
    except NbgraderError as e:
        print(f"make_nbgrader: {e}", file=sys.stderr)
        return 2
    for stem, tests in written.items():
        print(f"{out}/source/{stem}/{stem}.ipynb: {len(tests)} graded exercises")
    print(f"{out}/nbgrader_config.py written. Next: cd {out} && nbgrader generate_assignment <chapter>")
    return 0


if __name__ == "__main__":
    sys.exit(main())
