"""Write student copies of the chapters: every solution between ``### BEGIN SOLUTION`` and
``### END SOLUTION`` becomes ``raise NotImplementedError`` (nbgrader's convention), and the outputs of
those cells are cleared. The Chinese edition (``notebooks/zh/``) gets its copies in ``student/zh/``: a kernel
started there runs in a folder named ``zh``, so the exercise checks speak Chinese in them too.

    python tools/make_student.py [notebooks/] [student/]
"""
from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

BEGIN, END = "### BEGIN SOLUTION", "### END SOLUTION"


def strip_solutions(source: str) -> str:
    """Replace each marked solution block by ``raise NotImplementedError`` at the block's indentation."""
    out, inside = [], False
    for line in source.splitlines():
        stripped = line.strip()
        if stripped == BEGIN:
            indent = line[: len(line) - len(line.lstrip())]
            out.append(f"{indent}# YOUR CODE HERE")
            out.append(f"{indent}raise NotImplementedError")
            inside = True
        elif stripped == END:
            if not inside:
                raise ValueError(f"{END!r} without {BEGIN!r}")
            inside = False
        elif not inside:
            out.append(line)
    if inside:
        raise ValueError(f"{BEGIN!r} without {END!r}")
    return "\n".join(out)


ZH = "zh"  # the Chinese edition's folder, in notebooks/ and in the student copies alike


def make_student(src: Path, dst: Path, chinese: bool = False) -> list[Path]:
    """Student copies of src/*.ipynb in dst/ and, with ``chinese``, of src/zh/*.ipynb (the Chinese edition)
    in dst/zh/ (``make student`` writes both). Returns the paths written."""
    written = _copies(src, dst)
    if chinese and (src / ZH).is_dir():
        written += _copies(src / ZH, dst / ZH)
    return written


def _copies(src: Path, dst: Path) -> list[Path]:
    dst.mkdir(parents=True, exist_ok=True)
    written = []
    for path in sorted(src.glob("[0-9A-Z]*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "code" and BEGIN in cell.source:
                cell.source = strip_solutions(cell.source)
                cell.outputs, cell.execution_count = [], None
        nbformat.validate(nb)
        nbformat.write(nb, dst / path.name)
        written.append(dst / path.name)
    return written


if __name__ == "__main__":
    src = Path(sys.argv[1] if len(sys.argv) > 1 else "notebooks")
    dst = Path(sys.argv[2] if len(sys.argv) > 2 else "student")
    for p in make_student(src, dst, chinese=True):
        print("wrote", p)
