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
4. The Chinese edition (``book/zh/``: its own pages, ``_config.yml`` and ``_toc.yml``) is built the same way
   into ``OUT/html/zh/``: ``chapters: english`` in its toc stands for every English chapter, taken from
   ``notebooks/zh/`` where a translation exists and from ``notebooks/`` otherwise (with a note in Chinese
   that the chapter is not translated yet); pages of its toc that ``book/zh/`` lacks (the references) are the
   English ones. Jupyter Book 1 has no multi-language support, so this is two sites, linked: every page of
   each gets a language switch (``a.lang-switch``) to the same page in the other language.
"""
from __future__ import annotations

import argparse
import copy
import os
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
ZH = "zh"                       # book/zh/ and notebooks/zh/: the Chinese edition; html/zh/: its site
ENGLISH_CHAPTERS = "english"    # `chapters: english` in book/zh/_toc.yml: every chapter of the English toc
# words the build writes into the pages, per language
WORDS = {
    "en": {"show": "Show the solution", "hide": "Hide the solution", "switch": "中文", "switch_lang": "zh-CN",
           "switch_title": "这一页的中文版"},
    "zh": {"show": "显示答案", "hide": "隐藏答案", "switch": "English", "switch_lang": "en",
           "switch_title": "This page in English"},
}
UNTRANSLATED_NOTE = ("```{note}\n本章还没有中文译本，下面是英文原文。译好的章节在 `notebooks/zh/`"
                     "（`python tools/zh_sync.py --check` 列出翻译进度）。\n```")


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
# a Chinese chapter (notebooks/zh/) links to ../../book/zh/glossary.md, or to an English page ../../book/x.md
_ZH_BOOK_LINK = re.compile(r"\]\(\.\./\.\./book/(?:zh/)?([^)#\s]+\.(?:md|ipynb))(#[^)\s]+)?\)")


def rewrite_book_links(source: str) -> str:
    """``](../book/page.md#label)`` -> ``](#label)``; ``](../book/page.md)`` -> ``](../page.md)``; the same for
    a Chinese chapter's ``](../../book/zh/page.md)`` and ``](../../book/page.md)``."""
    def sub(m):
        return f"]({m.group(2)})" if m.group(2) else f"](../{m.group(1)})"
    return _BOOK_LINK.sub(sub, _ZH_BOOK_LINK.sub(sub, source))


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


def fold_solutions(nb, lang: str = "en") -> int:
    """Tag each exercise cell ``hide-input`` (folded, output still shown; the prompt in ``lang``) and point
    links to book/ pages at their place in the site; return how many cells were folded."""
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
            cell.metadata["mystnb"] = {"code_prompt_show": WORDS[lang]["show"],
                                       "code_prompt_hide": WORDS[lang]["hide"]}
            folded += 1
    return folded


_NOT_PAGES = shutil.ignore_patterns(".ipynb_checkpoints", "*.ipynb", "__pycache__", "*.py", "jupytext.toml", ZH)


def stage(book: Path, toc_path: Path, notebooks: Path, chapters: list[str], src: Path) -> int:
    """Write the Sphinx source tree: book pages, the toc, and processed copies of the chapters."""
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(book, src, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints", ZH))
    shutil.copyfile(toc_path, src / "_toc.yml")
    # the notebooks' folder, for any figure files a chapter links to; the chapters are rewritten below. The
    # chapters' jupytext sources (NN-name.py, jupytext.toml) stay out: the pages are the .ipynb files.
    shutil.copytree(notebooks, src / "notebooks", dirs_exist_ok=True, ignore=_NOT_PAGES)
    folded = 0
    for name in chapters:
        nb = nbformat.read(notebooks / f"{name}.ipynb", as_version=4)
        folded += fold_solutions(nb)
        nbformat.write(nb, src / "notebooks" / f"{name}.ipynb")
    return folded


# ---------------------------------------------------------------- the Chinese edition
_CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"            # CJK characters and full-width punctuation
_CJK_BREAK = re.compile(rf"(?<={_CJK})\n[ \t]*(?={_CJK})")


def join_cjk_lines(source: str) -> str:
    """Remove line breaks between two Chinese characters (outside code blocks): a browser draws a soft line
    break as a space, which Chinese text does not have, so a paragraph wrapped in the source would show
    stray gaps (jupytext writes long text cells wrapped)."""
    parts = re.split(r"(```.*?```)", source, flags=re.S)
    for i in range(0, len(parts), 2):
        parts[i] = _CJK_BREAK.sub("", parts[i])
    return "".join(parts)


def chinese_toc(zh_book: Path, chapters: list[str]) -> dict:
    """book/zh/_toc.yml with ``chapters: english`` replaced by the English chapters, in their order."""
    path = zh_book / "_toc.yml"
    if not path.is_file():
        raise BookError(f"{_show(path)} does not exist: the Chinese edition needs its table of contents")
    toc = yaml.safe_load(path.read_text())
    if not isinstance(toc, dict) or "root" not in toc:
        raise BookError(f"{_show(path)}: not a Jupyter Book table of contents (no `root:` entry)")
    toc = copy.deepcopy(toc)
    filled = 0
    for part in toc.get("parts") or []:
        if part.get("chapters") == ENGLISH_CHAPTERS:
            part["chapters"] = [{"file": f"{NOTEBOOK_PREFIX}{name}"} for name in chapters]
            filled += 1
    if filled != 1:
        raise BookError(f"{_show(path)}: exactly one part must say `chapters: {ENGLISH_CHAPTERS}` (the English "
                        f"chapters, filled in by the build), found {filled}")
    listed = [_stem(e)[len(NOTEBOOK_PREFIX):] for e in toc_files(toc) if e.startswith(NOTEBOOK_PREFIX)]
    if listed != chapters:
        raise BookError(f"{_show(path)} lists chapters of its own: {[c for c in listed if c not in chapters] or listed}"
                        f"; leave the chapters to `chapters: {ENGLISH_CHAPTERS}`")
    return toc


def stage_chinese(book: Path, zh_notebooks: Path, notebooks: Path, chapters: list[str], src: Path):
    """The Chinese site's Sphinx source: book/zh/'s pages (English ones where it lacks a page of its toc) and
    every chapter, from notebooks/zh/ where translated. Returns (folded solutions, translated chapters)."""
    zh_book = book / ZH
    toc = chinese_toc(zh_book, chapters)
    strays = sorted(p.stem for p in zh_notebooks.glob("*.ipynb") if p.stem not in chapters) \
        if zh_notebooks.is_dir() else []
    if strays:
        raise BookError("Chinese chapters without an English chapter in the toc: "
                        + ", ".join(f"{_show(zh_notebooks / s)}.ipynb" for s in strays))
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(zh_book, src, ignore=shutil.ignore_patterns("_build", ".ipynb_checkpoints"))
    for page in src.rglob("*.md"):
        page.write_text(join_cjk_lines(page.read_text(encoding="utf-8")), encoding="utf-8")
    (src / "_toc.yml").write_text(yaml.safe_dump(toc, allow_unicode=True, sort_keys=False))
    problems = []
    for entry in toc_files(toc):
        stem = _stem(entry)
        if entry.startswith(NOTEBOOK_PREFIX) or any((src / f"{stem}{ext}").is_file() for ext in (".md", ".ipynb")):
            continue
        english = [book / f"{stem}{ext}" for ext in (".md", ".ipynb") if (book / f"{stem}{ext}").is_file()]
        if not english:
            problems.append(f"{_show(zh_book / '_toc.yml')} names page {entry!r}, but neither "
                            f"{_show(zh_book)}/ nor {_show(book)}/ has it")
            continue
        target = src / english[0].relative_to(book)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(english[0], target)
    if problems:
        raise BookError("the Chinese table of contents and its pages disagree:\n  " + "\n  ".join(problems))
    shutil.copytree(notebooks, src / "notebooks", dirs_exist_ok=True, ignore=_NOT_PAGES)
    folded, translated = 0, []
    for name in chapters:
        zh = zh_notebooks / f"{name}.ipynb"
        nb = nbformat.read(zh if zh.is_file() else notebooks / f"{name}.ipynb", as_version=4)
        if zh.is_file():
            translated.append(name)
            for cell in nb.cells:
                if cell.cell_type == "markdown":
                    cell.source = join_cjk_lines(cell.source)
        else:
            at = 1 if nb.cells and nb.cells[0].cell_type == "markdown" else 0
            nb.cells.insert(at, nbformat.v4.new_markdown_cell(UNTRANSLATED_NOTE, id=f"zh-note-{name}"[:64]))
        folded += fold_solutions(nb, ZH)
        nbformat.write(nb, src / "notebooks" / f"{name}.ipynb")
    return folded, translated


# ---------------------------------------------------------------- the language switch on every page
_SWITCH_AFTER = '<div class="article-header-buttons">'
_NOT_SITE_PAGES = ("_static", "_sources", "_images")


def counterpart(page: Path, html: Path) -> Path:
    """The same page in the other language's site (html/ English, html/zh/ Chinese), or that site's index."""
    rel = page.relative_to(html)
    if rel.parts[0] == ZH:
        other_root, rel = html, Path(*rel.parts[1:])
    else:
        other_root = html / ZH
    other = other_root / rel
    return other if other.is_file() else other_root / "index.html"


def add_language_switches(html: Path) -> int:
    """Put a link to the same page in the other language into every page's header; return how many."""
    added = 0
    for page in sorted(html.rglob("*.html")):
        rel = page.relative_to(html)
        parts = rel.parts[1:] if rel.parts[0] == ZH else rel.parts
        if parts and parts[0] in _NOT_SITE_PAGES:
            continue
        text = page.read_text(encoding="utf-8")
        if _SWITCH_AFTER not in text or 'class="btn btn-sm lang-switch"' in text:
            continue
        words = WORDS[ZH if rel.parts[0] == ZH else "en"]
        href = os.path.relpath(counterpart(page, html), page.parent).replace(os.sep, "/")
        link = (f'\n<a class="btn btn-sm lang-switch" href="{href}" hreflang="{words["switch_lang"]}" '
                f'lang="{words["switch_lang"]}" title="{words["switch_title"]}">{words["switch"]}</a>\n')
        page.write_text(text.replace(_SWITCH_AFTER, _SWITCH_AFTER + link, 1), encoding="utf-8")
        added += 1
    return added


def _sphinx(src: Path, html: Path, doctrees: Path, quiet: bool, what: str) -> None:
    bindir = Path(sys.executable).parent
    jb = shutil.which("jupyter-book", path=str(bindir)) or shutil.which("jupyter-book")
    if jb is None:
        raise BookError("jupyter-book is not installed: `make venv` (or pip install -e '.[book]')")
    # Jupyter Book writes the Sphinx conf.py from _config.yml and _toc.yml; Sphinx builds from it.
    conf = subprocess.run([jb, "config", "sphinx", str(src)], capture_output=True, text=True)
    if conf.returncode:
        raise BookError(f"jupyter-book could not read the {what} _config.yml:\n{conf.stderr.strip()}")
    cmd = [sys.executable, "-m", "sphinx", "-b", "html", "-W", "--keep-going", "-d", str(doctrees),
           str(src), str(html)]
    if quiet:
        cmd.insert(3, "-q")
    result = subprocess.run(cmd, text=True, capture_output=quiet)
    if result.returncode:
        detail = f":\n{result.stderr.strip()}" if quiet else "; see its messages above"
        raise BookError(f"Sphinx failed on the {what} site (exit {result.returncode}), warnings count as "
                        f"errors{detail}")


def build(notebooks: Path, book: Path, toc_path: Path, out: Path, quiet: bool = False,
          chinese: bool | None = None, zh_notebooks: Path | None = None) -> Path:
    """Check, stage and build: the English site, then (when book/zh/ exists, or ``chinese``) the Chinese one
    into html/zh/, and the language switches; return the path of the English site's index.html."""
    t0 = time.perf_counter()
    notebooks, book, toc_path, out = (p.resolve() for p in (notebooks, book, toc_path, out))
    zh_notebooks = (zh_notebooks or notebooks / ZH).resolve()
    for path, what in ((notebooks, "notebooks folder"), (book, "book folder")):
        if not path.is_dir():
            raise BookError(f"{what} {path} does not exist")
    if not toc_path.is_file():
        raise BookError(f"table of contents {toc_path} does not exist")
    chapters = check_toc(toc_path, notebooks, book)
    chinese = (book / ZH).is_dir() if chinese is None else chinese
    src, html, doctrees = out / "_src", out / "html", out / "doctrees"
    folded = stage(book, toc_path, notebooks, chapters, src)
    if chinese:                                 # its sources are checked before the long English build
        folded_zh, translated = stage_chinese(book, zh_notebooks, notebooks, chapters, out / "_src_zh")
    if html.exists():
        shutil.rmtree(html)
    _sphinx(src, html, doctrees, quiet, "English")
    index = html / "index.html"
    summary = f"built {len(chapters)} chapter(s) ({folded} exercise solutions folded)"
    if chinese:
        _sphinx(out / "_src_zh", html / ZH, out / "doctrees_zh", quiet, "Chinese")
        switches = add_language_switches(html)
        summary += (f" and the Chinese edition in {_show(html / ZH)} ({len(translated)} of {len(chapters)} "
                    f"chapters translated, {folded_zh} solutions folded; {switches} pages with a language switch)")
    print(f"{summary} in {time.perf_counter() - t0:.1f} s: {index}")
    return index


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--notebooks", type=Path, default=ROOT / "notebooks", help="the chapters (default notebooks/)")
    ap.add_argument("--book", type=Path, default=ROOT / "book", help="config and pages (default book/)")
    ap.add_argument("--toc", type=Path, default=None, help="table of contents (default BOOK/_toc.yml)")
    ap.add_argument("--out", type=Path, default=None, help="output folder (default BOOK/_build)")
    ap.add_argument("-q", "--quiet", action="store_true", help="only Sphinx's warnings and errors")
    ap.add_argument("--no-chinese", action="store_true", help="only the English site (not BOOK/zh/)")
    args = ap.parse_args(argv)
    toc = args.toc or args.book / "_toc.yml"
    out = args.out or args.book / "_build"
    try:
        build(args.notebooks, args.book, toc, out, quiet=args.quiet, chinese=False if args.no_chinese else None)
    except BookError as e:
        print(f"make book: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
