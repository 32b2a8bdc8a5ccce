"""Bring each chapter's .ipynb up to date with its jupytext source and execute it in place: `make notebooks`.

    python tools/execute_notebooks.py [CHAPTER ...] [--no-execute] [--check] [--keep-going] [--timeout S]

A chapter is a pair of files in ``notebooks/``:

- ``NN-name.py``, the chapter's cells as a jupytext *percent* script (``# %%`` starts a code cell,
  ``# %% [markdown]`` a text cell): the text an instructor edits, in JupyterLab (it opens as a notebook) or in
  any editor, and the file whose diffs are read in review;
- ``NN-name.ipynb``, the same cells with their outputs: what students open, what nbval checks and what the
  website shows. Its metadata says ``"jupytext": {"formats": "ipynb,py:percent"}``, so JupyterLab (with
  jupytext's contents manager) saves both files whichever one is open.

For each chapter named (``00``, ``02-relu-and-pooling``, ``notebooks/02-relu-and-pooling.py``; every chapter
when none is named) this script

1. reads the cells from the .py and takes the outputs and metadata of the cells that are also in the .ipynb
   (jupytext's own matching, the one ``jupytext --update`` uses: a cell that did not change, or changed in
   place, keeps its id and outputs). A new cell gets an id derived from the chapter and its text, so the
   same edit always gives the same file, and a one-line edit gives a small ``git diff``;
2. executes the notebook with nbclient in ``notebooks/`` (the chapters' working folder) without nbclient's
   per-cell timing metadata, which would change on every run;
3. writes the .ipynb, only when every cell ran, and gives the .py the same modification time, so jupytext's
   contents manager never sees an .ipynb "more recent than" its source.

A failing cell stops the run (``--keep-going``: every chapter is tried) with the chapter, the cell's number
and the traceback; the .ipynb is then left as it was. If the .ipynb is newer than the .py and their cells
differ, the .ipynb was edited without jupytext: the script stops and says how to keep either side.

``--no-execute`` only brings the inputs up to date; ``--check`` changes nothing and reports every chapter
whose .ipynb and .py disagree (``tests/test_notebook_sources.py`` runs the same check).
"""
from __future__ import annotations

import argparse
import hashlib
import itertools
import os
import re
import sys
import time
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import combine_inputs_with_outputs

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
FORMATS = "ipynb,py:percent"
TEXT_FORMAT = "py:percent"
CHAPTER_NAME = re.compile(r"^(\d\d[a-z]?|[A-Z])-[\w-]+$")
# Cell metadata that jupytext keeps out of the .py on purpose (view state, nbclient's timing, jupytext's own
# layout hints): they do not count as a difference between the two files. Everything else (tags such as
# raises-exception, nbgrader's metadata) is written into the .py and must agree.
UNPAIRED_CELL_METADATA = {"autoscroll", "collapsed", "scrolled", "trusted", "execution", "ExecuteTime",
                          "skipline", "noskipline", "cell_marker", "lines_to_next_cell",
                          "lines_to_end_of_cell_marker"}
ANSI_COLOUR = re.compile(r"\x1b\[[0-9;]*m")  # IPython colours its tracebacks
MTIME_MARGIN = 1.0  # seconds; jupytext's contents manager uses the same default margin


class SourceError(Exception):
    """A chapter whose files cannot be brought together; the message says what to do."""


def show(path: Path) -> str:
    """A path as a person would type it: relative to the current folder when it lies inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def chapter_names(folder: Path = NOTEBOOKS) -> list[str]:
    """Every chapter in `folder` (``00-introduction``, ..., ``A-troubleshooting``), from either file."""
    stems = {p.stem for p in folder.iterdir() if p.suffix in (".py", ".ipynb") and CHAPTER_NAME.match(p.stem)}
    return sorted(stems)


def resolve_chapter(arg: str, folder: Path = NOTEBOOKS) -> str:
    """``02``, ``02-relu-and-pooling``, ``notebooks/02-relu-and-pooling.py`` or ``.ipynb`` -> the chapter name."""
    stem = Path(arg).stem if arg.endswith((".py", ".ipynb")) else Path(arg).name
    names = chapter_names(folder)
    if stem in names:
        return stem
    matches = [n for n in names if n.split("-", 1)[0] == stem]
    if len(matches) == 1:
        return matches[0]
    raise SourceError(f"no chapter {arg!r} in {show(folder)}: the chapters are " + ", ".join(names))


def pairing_problems(folder: Path = NOTEBOOKS) -> list[str]:
    """One line for each chapter that lacks its .py or its .ipynb, saying how to create the missing one."""
    problems = []
    for name in chapter_names(folder):
        py, ipynb = folder / f"{name}.py", folder / f"{name}.ipynb"
        if not py.is_file():
            problems.append(f"{show(ipynb)} has no paired {py.name}: create it with "
                            f"`jupytext --set-formats {FORMATS} {show(ipynb)}`")
        elif not ipynb.is_file():
            problems.append(f"{show(py)} has no paired {ipynb.name}: `make notebooks` (or "
                            f"`python tools/execute_notebooks.py {name}`) writes and executes it")
    return problems


def read_source(py: Path):
    """The notebook that jupytext reads from the chapter's .py (inputs only)."""
    return jupytext.read(py, fmt=TEXT_FORMAT)


def _paired_metadata(cell) -> dict:
    return {k: v for k, v in cell.get("metadata", {}).items() if k not in UNPAIRED_CELL_METADATA}


def _first_difference(a: str, b: str) -> tuple[int, str, str]:
    """(1-based line number, line in a, line in b) of the first line where two sources differ."""
    la, lb = a.split("\n"), b.split("\n")
    for i, (x, y) in enumerate(itertools.zip_longest(la, lb), start=1):
        if x != y:
            return i, "(no such line)" if x is None else repr(x), "(no such line)" if y is None else repr(y)
    return 0, "", ""  # pragma: no cover - only called on sources that differ


def drift(py: Path, ipynb: Path) -> str | None:
    """None when the .ipynb holds the cells (type, source, metadata that jupytext pairs) that jupytext reads
    from the .py, in order, and is paired with it; else a message that names the file, the cell number
    (counting from 1) and the first differing line."""
    nb, src = nbformat.read(ipynb, as_version=4), read_source(py)
    where = f"{show(ipynb)} and its source {show(py)}"
    fix = (f"\nIf the .py holds the newer text: `python tools/execute_notebooks.py {py.stem}` (or `make notebooks`)"
           f" brings the .ipynb up to date and re-executes it. If the .ipynb does (edited without jupytext): "
           f"`jupytext --to {TEXT_FORMAT} {show(ipynb)}` rewrites the .py from it.")
    formats = nb.metadata.get("jupytext", {}).get("formats")
    if formats != FORMATS:
        return (f"{show(ipynb)} is not paired with its .py: its metadata jupytext.formats is {formats!r}, "
                f"not {FORMATS!r}; `jupytext --set-formats {FORMATS} {show(ipynb)}` pairs it")
    for i, (a, b) in enumerate(zip(src.cells, nb.cells), start=1):
        head = f"{where} differ at cell {i} of {len(src.cells)} in the .py ({len(nb.cells)} in the .ipynb)"
        if a.cell_type != b.cell_type:
            return (f"{head}: a {a.cell_type} cell in the .py, a {b.cell_type} cell in the .ipynb; "
                    f"its first line in the .py: {a.source.split(chr(10))[0]!r}" + fix)
        if a.source != b.source:
            line, in_py, in_nb = _first_difference(a.source, b.source)
            return (f"{head} ({a.cell_type}), first at line {line} of the cell:\n"
                    f"  .py:    {in_py}\n  .ipynb: {in_nb}" + fix)
        if _paired_metadata(a) != _paired_metadata(b):
            return (f"{head} ({a.cell_type}): the cell metadata differ:\n"
                    f"  .py:    {_paired_metadata(a)}\n  .ipynb: {_paired_metadata(b)}" + fix)
    if len(src.cells) != len(nb.cells):
        longer, cells = (".py", src.cells) if len(src.cells) > len(nb.cells) else (".ipynb", nb.cells)
        n = min(len(src.cells), len(nb.cells)) + 1
        first = cells[n - 1].source.split("\n")[0]
        return (f"{where} differ at cell {n}: the .py has {len(src.cells)} cells, the .ipynb {len(nb.cells)}; "
                f"cell {n} ({cells[n - 1].cell_type}) is only in the {longer}, its first line: {first!r}" + fix)
    return None


def new_cell_id(chapter: str, cell, taken: set[str]) -> str:
    """An id for a cell new in `chapter`: derived from the chapter and the cell's text (the same edit always
    gives the same id), never one of `taken`."""
    base = hashlib.sha1(f"{chapter}\n{cell.cell_type}\n{cell.source}".encode()).hexdigest()
    for k in itertools.count():
        cid = base[:8] if k == 0 else hashlib.sha1(f"{base}#{k}".encode()).hexdigest()[:8]
        if cid not in taken:
            return cid
    raise AssertionError("unreachable")  # pragma: no cover


def _inputs(nb) -> list[tuple[str, str]]:
    return [(c.cell_type, c.source) for c in nb.cells]


def updated_notebook(chapter: str, folder: Path = NOTEBOOKS, force: bool = False):
    """The chapter's notebook with the .py's cells and, for cells the .ipynb already has, that file's ids,
    outputs and metadata; new cells get ids from `new_cell_id`. nbclient's timing metadata is dropped.

    Raises SourceError when the .ipynb is newer than the .py and their cells differ (unless `force`)."""
    py, ipynb = folder / f"{chapter}.py", folder / f"{chapter}.ipynb"
    if not py.is_file():
        raise SourceError(f"{show(ipynb)} has no paired {py.name}: create it with "
                          f"`jupytext --set-formats {FORMATS} {show(ipynb)}`")
    src = read_source(py)
    for cell in src.cells:
        cell.pop("id", None)  # jupytext gives random ids: cells that keep theirs take them from the .ipynb
    if ipynb.is_file():
        old = nbformat.read(ipynb, as_version=4)
        if (not force and _inputs(old) != _inputs(src)
                and ipynb.stat().st_mtime > py.stat().st_mtime + MTIME_MARGIN):
            raise SourceError(
                f"{show(ipynb)} was changed after {show(py)} and their cells differ: the notebook was edited "
                f"without jupytext, and bringing it up to date from the .py would lose those edits.\n"
                f"  keep the notebook's text: `jupytext --to {TEXT_FORMAT} {show(ipynb)}`, then run this again;\n"
                f"  keep the .py's text: `touch {show(py)}` (or pass --force), then run this again.")
        nb = combine_inputs_with_outputs(src, old, fmt=TEXT_FORMAT)
    else:
        nb = src
        nb.metadata.pop("jupytext", None)
        nb.metadata.setdefault("kernelspec", {"name": "python3", "display_name": "Python 3", "language": "python"})
        nb.nbformat, nb.nbformat_minor = 4, 5
    nb.metadata.setdefault("jupytext", {})["formats"] = FORMATS
    nb.metadata["jupytext"].pop("text_representation", None)
    taken = {c["id"] for c in nb.cells if c.get("id")}
    for cell in nb.cells:
        cell.get("metadata", {}).pop("execution", None)
        if not cell.get("id"):
            cell["id"] = new_cell_id(chapter, cell, taken)
            taken.add(cell["id"])
        if cell.cell_type == "code":
            cell.setdefault("outputs", [])
            cell.setdefault("execution_count", None)
    nbformat.validate(nb)
    return nb


def execute(nb, chapter: str, folder: Path = NOTEBOOKS, timeout: int = 600):
    """Run every cell of `nb` in a fresh kernel, in `folder`; raise SourceError naming the chapter, the cell
    and the traceback when one fails."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    current = {"index": None}

    def on_cell_start(cell, cell_index):
        current["index"] = cell_index

    kernel = nb.metadata.get("kernelspec", {}).get("name", "python3")
    client = NotebookClient(nb, timeout=timeout, kernel_name=kernel, record_timing=False,
                            resources={"metadata": {"path": str(folder)}}, on_cell_start=on_cell_start)
    try:
        client.execute()
    except (CellExecutionError, CellTimeoutError) as err:
        i = current["index"]
        cell = f"cell {i + 1} of {len(nb.cells)}" if i is not None else "a cell"
        raise SourceError(f"{chapter}: {cell} failed ({show(folder / (chapter + '.py'))}; the .ipynb was not "
                          f"written):\n{err}") from None
    return nb


def write(nb, chapter: str, folder: Path = NOTEBOOKS) -> None:
    """Write the .ipynb and give the .py the same modification time (jupytext's contents manager takes an
    .ipynb newer than its .py for an edit made outside jupytext)."""
    ipynb, py = folder / f"{chapter}.ipynb", folder / f"{chapter}.py"
    nbformat.write(nb, ipynb)
    st = ipynb.stat()
    os.utime(py, ns=(st.st_atime_ns, st.st_mtime_ns))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", help="00, 02-relu-and-pooling, notebooks/02-....py (default: all)")
    parser.add_argument("--notebooks", type=Path, default=NOTEBOOKS, help="the chapters' folder")
    parser.add_argument("--no-execute", action="store_true", help="only bring the .ipynb's cells up to date")
    parser.add_argument("--check", action="store_true", help="change nothing; report .ipynb/.py pairs that differ")
    parser.add_argument("--keep-going", action="store_true", help="after a failing chapter, go on with the rest")
    parser.add_argument("--force", action="store_true", help="take the .py's cells even when the .ipynb is newer")
    parser.add_argument("--timeout", type=int, default=600, help="seconds one cell may run (default 600)")
    args = parser.parse_args(argv)
    folder = args.notebooks.resolve()
    try:
        chapters = [resolve_chapter(c, folder) for c in args.chapters] or chapter_names(folder)
    except SourceError as err:
        print(err, file=sys.stderr)
        return 2

    if args.check:
        problems = pairing_problems(folder)
        for name in chapters:
            py, ipynb = folder / f"{name}.py", folder / f"{name}.ipynb"
            if py.is_file() and ipynb.is_file() and (msg := drift(py, ipynb)):
                problems.append(msg)
        for msg in problems:
            print(msg, file=sys.stderr)
        print(f"{len(chapters)} chapters checked, {len(problems)} problems")
        return 1 if problems else 0

    failed = []
    for name in chapters:
        t0 = time.perf_counter()
        try:
            nb = updated_notebook(name, folder, force=args.force)
            if not args.no_execute:
                print(f"executing {name}", flush=True)
                execute(nb, name, folder, timeout=args.timeout)
            write(nb, name, folder)
        except SourceError as err:
            text = str(err) if sys.stderr.isatty() else ANSI_COLOUR.sub("", str(err))  # a log gets plain text
            print(f"\nFAILED {text}\n", file=sys.stderr, flush=True)
            failed.append(name)
            if not args.keep_going:
                break
            continue
        print(f"wrote {show(folder / (name + '.ipynb'))} ({time.perf_counter() - t0:.1f} s)", flush=True)
    if failed:
        print(f"make notebooks: {len(failed)} chapter(s) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
