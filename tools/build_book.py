"""Build the course website (static HTML) from book/ and the notebooks, offline, without running them.

    python tools/build_book.py [--notebooks notebooks] [--book book] [--toc book/_toc.yml] [--out book/_build]

1. Check the table of contents against the notebooks: every ``notebooks/*.ipynb`` must be listed, and
   every entry must exist (the error names the file). Nothing is built otherwise.
2. Copy the pages of ``book/`` and the notebooks to ``OUT/_src`` (``notebooks/`` itself is never
   written to). In the copies, each exercise cell (one holding ``### BEGIN SOLUTION``) is tagged
   ``hide-input``, so its code is folded behind "Show the solution" while its stored output (the check's
   verdict) stays visible; ``# NBVAL_*`` test directives are dropped from the code shown; links to
   ``../book/PAGE.md#label`` (which work in JupyterLab) are pointed at the page's place in the site.
3. Run Jupyter Book 1 (Sphinx + MyST-NB) on the copy, with notebook execution off: the pages show the
   outputs stored in the notebooks. MathJax comes from the sphinx-mathjax-offline package, so neither
   the build nor the pages need the network. The site is ``OUT/html/index.html``.
"""
from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import yaml

ROOT = Path(__file__).resolve().parents[1]
BEGIN = "### BEGIN SOLUTION"
NOTEBOOK_PREFIX = "notebooks/"  # toc entries under this prefix are chapters, read from --notebooks


class BookError(Exception):
    """A problem with the inputs, reported to the person running the build."""


def toc_files(toc: dict) -> list[str]:
    """Every ``file:`` entry of a Jupyter Book toc (root, parts, chapters, sections), in reading order."""
    found = [toc["root"]] if "root" in toc else []

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(str(node["file"]))
            for key in ("parts", "chapters", "sections"):
                for child in node.get(key) or []:
                    walk(child)
        elif isinstance(node, list):
            for child in node:
                walk(child)

    walk({k: v for k, v in toc.items() if k != "root"})
    return found


def _stem(entry: str) -> str:
    return entry[: -len(".ipynb")] if entry.endswith(".ipynb") else entry


def _show(path: Path) -> str:
    """A path as a person would type it: relative to the current folder when it lies inside it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def check_toc(toc_path: Path, notebooks: Path, book: Path) -> list[str]:
    """Return the chapter names (``00-introduction``, ...) in toc order; raise BookError naming every
    notebook missing from the toc and every toc entry whose file does not exist."""
    toc = yaml.safe_load(toc_path.read_text())
    toc_name = _show(toc_path)
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookError(f"{toc_name}: not a Jupyter Book table of contents (no `root:` entry)")
    entries = toc_files(toc)
    chapters = [_stem(e)[len(NOTEBOOK_PREFIX):] for e in entries if e.startswith(NOTEBOOK_PREFIX)]
    problems = []
    for entry in entries:
        if entry.startswith(NOTEBOOK_PREFIX):
            continue
        stem = book / _stem(entry)
        if not any(stem.with_name(stem.name + ext).is_file() for ext in (".md", ".ipynb")):
            problems.append(f"{toc_name} names page {entry!r}, but neither {_show(stem)}.md nor "
                            f"{_show(stem)}.ipynb exists")
    for name in chapters:
        if not (notebooks / f"{name}.ipynb").is_file():
            problems.append(f"{toc_name} names chapter {NOTEBOOK_PREFIX}{name}, but "
                            f"{_show(notebooks / name)}.ipynb does not exist")
    seen = set()
    for name in chapters:
        if name in seen:
            problems.append(f"{toc_name} lists chapter {NOTEBOOK_PREFIX}{name} twice")
        seen.add(name)
    for path in sorted(notebooks.glob("*.ipynb")):
        if path.stem not in seen:
            problems.append(f"notebook {_show(path)} is not in the table of contents {toc_name}: "
                            f"add `- file: {NOTEBOOK_PREFIX}{path.stem}` where it belongs in the course")
    if problems:
        raise BookError("the chapters and the table of contents disagree:\n  " + "\n  ".join(problems))
    if not chapters:
        raise BookError(f"{toc_name} lists no chapter under {NOTEBOOK_PREFIX}")
    return chapters


# A chapter links to a page of book/ as it lies in the repository, so that the link also works in
# JupyterLab: [the paper](../book/references.md#ronneberger-2015). On the website the pages sit one
# folder up, and a #label is resolved by Sphinx wherever it is defined.
_BOOK_LINK = re.compile(r"\]\(\.\./book/([^)#\s]+\.(?:md|ipynb))(#[^)\s]+)?\)")


def rewrite_book_links(source: str) -> str:
    """``](../book/page.md#label)`` -> ``](#label)``; ``](../book/page.md)`` -> ``](../page.md)``."""
    return _BOOK_LINK.sub(lambda m: f"]({m.group(2)})" if m.group(2) else f"](../{m.group(1)})", source)


_DISPLAY_MATH = re.compile(r"\$\$(.+?)\$\$([.,;:]?)", re.S)


def display_math_blocks(source: str) -> str:
    """Put each ``$$...$$`` on lines of its own (a trailing . , ; : moves inside).

    JupyterLab typesets ``$$...$$`` anywhere in a paragraph; MyST's parser pairs the dollars wrongly when
    display math sits mid-paragraph followed by punctuation, and the page then shows raw TeX. Code
    (fenced or in backticks) is left alone.
    """
    parts = re.split(r"(```.*?```|`[^`\n]*`)", source, flags=re.S)
    for i in range(0, len(parts), 2):
        parts[i] = _DISPLAY_MATH.sub(lambda m: f"\n\n$$\n{m.group(1).strip()}{m.group(2)}\n$$\n\n", parts[i])
    return "".join(parts)


def fold_solutions(nb) -> int:
    """Tag each exercise cell ``hide-input`` (folded, output still shown) and point links to book/ pages
    at their place in the site; return how many cells were folded."""
    folded = 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            cell.source = display_math_blocks(rewrite_book_links(cell.source))
        if cell.cell_type != "code":
            continue
        lines = cell.source.splitlines()
        kept = [ln for ln in lines if not ln.strip().startswith("# NBVAL_")]
        if len(kept) != len(lines):
            cell.source = "\n".join(kept)
        if any(ln.strip() == BEGIN for ln in lines):
            tags = cell.metadata.setdefault("tags", [])
            if "hide-input" not in tags:
                tags.append("hide-input")
            cell.metadata["mystnb"] = {"code_prompt_show": "Show the solution",
                                       "code_prompt_hide": "Hide the solution"}
            folded += 1
    return folded


def stage(book: Path, toc_path: Path, notebooks: Path, chapters: list[str], src: Path) -> int:
    """Write the Sphinx source tree: book pages, the toc, and processed copies of the chapters."""
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(book, src, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    shutil.copyfile(toc_path, src / "_toc.yml")
    # the notebooks' folder, for any figure files a chapter links to; the chapters are rewritten below. The
    # chapters' jupytext sources (NN-name.py, jupytext.toml) stay out: the pages are the .ipynb files.
    shutil.copytree(notebooks, src / "notebooks", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns(".ipynb_checkpoints", "*.ipynb", "__pycache__", "*.py",
                                                  "jupytext.toml"))
    folded = 0
    for name in chapters:
        nb = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
        folded += fold_solutions(nb)
        nbformat.write(nb, src / "notebooks" / f"{name}.ipynb")
    return folded


def build(notebooks: Path, book: Path, toc_path: Path, out: Path, quiet: bool = False) -> Path:
    """Check, stage and build; return the path of the site's index.html."""
    t0 = time.perf_counter()
    notebooks, book, toc_path, out = (p.resolve() for p in (notebooks, book, toc_path, out))
    for path, what in ((notebooks, "notebooks folder"), (book, "book folder")):
        if not path.is_dir():
            raise BookError(f"{what} {path} does not exist")
    if not toc_path.is_file():
        raise BookError(f"table of contents {toc_path} does not exist")
    chapters = check_toc(toc_path, notebooks, book)
    src, html, doctrees = out / "_src", out / "html", out / "doctrees"
    folded = stage(book, toc_path, notebooks, chapters, src)
    bindir = Path(sys.executable).parent
    jb = shutil.which("jupyter-book", path=str(bindir)) or shutil.which("jupyter-book")
    if jb is None:
        raise BookError("jupyter-book is not installed: `make venv` (or pip install -e '.[book]')")
    # Jupyter Book writes the Sphinx conf.py from _config.yml and _toc.yml; Sphinx builds from it.
    conf = subprocess.run([jb, "config", "sphinx", str(src)], capture_output=True, text=True)
    if conf.returncode:
        raise BookError(f"jupyter-book could not read {_show(book / '_config.yml')}:\n{conf.stderr.strip()}")
    if html.exists():
        shutil.rmtree(html)
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-d", str(doctrees),
           str(src), str(html)]
    if quiet:
        cmd.insert(3, "-q")
    result = subprocess.run(cmd, text=True, capture_output=quiet)
    if result.returncode:
        detail = f":\n{result.stderr.strip()}" if quiet else "; see its messages above"
        raise BookError(f"Sphinx failed (exit {result.returncode}), warnings count as errors{detail}")
    index = html / "index.html"
    print(f"built {len(chapters)} chapter(s) ({folded} exercise solutions folded) in "
          f"{time.perf_counter() - t0:.1f} s: {index}")
    return index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the chapters (default notebooks/)")
    ap.add_argument("--book", type=Path, default=ROOT / "book", help="config and pages (default book/)")
    ap.add_argument("--toc", type=Path, default=None, help="table of contents (default BOOK/_toc.yml)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default BOOK/_build)")
    ap.add_argument("-q", "--quiet", action="store_true", help="only Sphinx's warnings and errors")
    args = ap.parse_args(argv)
    toc = args.toc or args.book / "_toc.yml"
    out = args.out or args.book / "_build"
    try:
        build(args.notebooks, args.book, toc, out, quiet=args.quiet)
    except BookError as e:
        print(f"make book: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
