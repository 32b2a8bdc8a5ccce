"""Keep the Chinese edition (notebooks/zh/) in step with the English chapters (notebooks/).

    python tools/zh_sync.py [CHAPTER ...]            update the Chinese chapters from the English ones
    python tools/zh_sync.py --new CHAPTER ...        start the Chinese edition of a chapter
    python tools/zh_sync.py --accept CHAPTER [CELL ...]   record that the Chinese of these cells is up to date
    python tools/zh_sync.py --check [CHAPTER ...]    change nothing; list everything out of step (exit 1)
    python tools/zh_sync.py --diff CHAPTER           what changed in the English of each stale cell
    python tools/zh_sync.py --execute [CHAPTER ...]  update, then execute the Chinese .ipynb (in notebooks/zh/)

A Chinese chapter is a jupytext pair like an English one: ``notebooks/zh/NN-name.py`` (the text to edit) and
``notebooks/zh/NN-name.ipynb`` (with outputs, executed in ``notebooks/zh/``, where the exercise checks speak
Chinese: ``unet_scratch.exercises.base.language``). Its cells are the English chapter's cells, in the same order:

- every **code cell** is the English cell, byte for byte, with its metadata (tags, nbgrader's marks);
- every **text cell** holds the Chinese of the English text cell at the same place, and records which English
  text it translates: ``# %% [markdown] translates="<12 hex>"``, the first 12 hex digits of the SHA-1 of the
  English cell's source. A cell not translated yet holds the English text and ``untranslated="<12 hex>"``.

Updating (the default) takes the code cells and their order from the English .py and keeps each Chinese text
cell: where the English cell is unchanged it stays fresh; where the English was edited, inserted, moved or
deleted (matched with difflib on the sequence of cells) the old Chinese is kept beside the new English position
and is **stale** (its ``translates`` no longer matches); a new English text cell comes in untranslated.
``--check`` lists, by chapter and cell, every stale or missing translation, a Chinese .py not updated since an
English edit, a Chinese .ipynb out of step with its .py, and any output of a code cell that differs from the
English chapter's (an exercise check's verdict must be the Chinese of the English verdict); chapters that
have no Chinese edition yet are listed apart and do not count as problems. ``tests/test_zh.py`` runs it.

A translator's loop: ``--diff NN`` shows how the English of each stale cell changed since it was translated
(found in git's history by its hash); edit the Chinese in ``notebooks/zh/NN-name.py``; ``--accept NN CELL``
(or ``--accept NN`` for every cell whose text is no longer the English) records the current English hash;
``--execute NN`` writes the .ipynb.
"""
from __future__ import annotations

import argparse
import difflib
import hashlib
import re
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import (SourceError, chapter_names, drift, execute, resolve_chapter, show,  # noqa: E402
                               updated_notebook, write)

ENGLISH = ROOT / "notebooks"
CHINESE = ENGLISH / "zh"
FMT = "py:percent"
TRANSLATES, UNTRANSLATED = "translates", "untranslated"
BEGIN = "### BEGIN SOLUTION"
CHECK_CALL = re.compile(r"^\s*check_\w+\(.*\);\s*$", re.M)
IGNORE = "# NBVAL_IGNORE_OUTPUT"
CJK = re.compile(r"[\u3400-\u9fff]")


def text_hash(source: str) -> str:
    """The first 12 hex digits of the SHA-1 of an English text cell's source (what ``translates`` records)."""
    return hashlib.sha1(source.encode("utf-8")).hexdigest()[:12]


def read(path: Path):
    return jupytext.read(path, fmt=FMT)


def _token(cell):
    """What a cell is, for matching the Chinese chapter's cells with the English ones."""
    if cell.cell_type != "markdown":
        return ("code", cell.source)
    meta = cell.get("metadata", {})
    return ("markdown", meta.get(TRANSLATES) or meta.get(UNTRANSLATED) or text_hash(cell.source))


def _untranslated(en_cell):
    return nbformat.v4.new_markdown_cell(en_cell.source, metadata={UNTRANSLATED: text_hash(en_cell.source)})


def _code(en_cell):
    cell = nbformat.v4.new_code_cell(en_cell.source, metadata=dict(en_cell.get("metadata", {})))
    return cell


def build(english, chinese=None):
    """The Chinese chapter for the English notebook ``english``, keeping the translations of ``chinese`` (the
    current Chinese notebook, or None for a new chapter). Returns (notebook, dropped): dropped lists the first
    lines of Chinese text cells whose English cell is gone."""
    en_cells = english.cells
    zh_cells = chinese.cells if chinese is not None else []
    matcher = difflib.SequenceMatcher(None, [_token(c) for c in zh_cells], [_token(c) for c in en_cells],
                                      autojunk=False)
    out, dropped = [], []
    for tag, i1, i2, j1, j2 in matcher.get_opcodes():
        old_md = [c for c in zh_cells[i1:i2] if c.cell_type == "markdown"]
        for k, en in enumerate(en_cells[j1:j2]):
            if en.cell_type != "markdown":
                out.append(_code(en))
            elif tag == "equal":
                old = zh_cells[i1 + k]
                meta = {key: old.metadata[key] for key in (TRANSLATES, UNTRANSLATED) if key in old.metadata}
                out.append(nbformat.v4.new_markdown_cell(old.source, metadata=meta))
            elif old_md:
                old = old_md.pop(0)
                if TRANSLATES in old.metadata:             # a translation of an older English text: stale
                    out.append(nbformat.v4.new_markdown_cell(old.source,
                                                             metadata={TRANSLATES: old.metadata[TRANSLATES]}))
                else:                                     # never translated: take the new English
                    out.append(_untranslated(en))
            else:
                out.append(_untranslated(en))
        if tag != "equal":
            dropped += [c.source.split("\n")[0] for c in old_md if TRANSLATES in c.metadata]
    nb = nbformat.v4.new_notebook(cells=out, metadata=dict(english.metadata))
    return nb, dropped


def _same_cells(a, b) -> bool:
    return [(c.cell_type, c.source, dict(c.get("metadata", {}))) for c in a.cells] == \
           [(c.cell_type, c.source, dict(c.get("metadata", {}))) for c in b.cells]


def _first_line(source: str) -> str:
    line = next((ln for ln in source.split("\n") if ln.strip()), "")
    return line if len(line) <= 70 else line[:67] + "..."


# ------------------------------------------------------------------ outputs: the English ones, checks in Chinese
_EN_ARRAYS = re.compile(r"^correct: (?P<what>.+?) passes (?P<n>\d+) cases \(largest relative error (?P<err>.+?), "
                        r"(?P<expected>exact|expected < \S+)\)$")          # what: "relu and relu_backward" too
_EN_CASES = re.compile(r"^correct: (?P<what>.+?) passes (?P<n>\d+) cases$")
_EN_PARITY = {"parity_forward": re.compile(r"^forward: all (?P<n>\d+) layer outputs within rtol = atol = "
                                           r"(?P<tol>\S+) of Keras's$"),               # chapter 11's check_parity
              "parity_backward": re.compile(r"^backward \(teacher-forced\): all (?P<n>\d+) weight gradients "
                                            r"within a relative error of (?P<tol>\S+) of Keras's$")}


def _english_pattern(key: str) -> re.Pattern:
    """A regular expression for base.MESSAGES[key]["en"], its {fields} as named groups ({n}: digits)."""
    from unet_scratch.exercises.base import MESSAGES
    parts = re.split(r"\{(\w+)\}", MESSAGES[key]["en"])
    return re.compile("^" + "".join(re.escape(part) if i % 2 == 0 else
                                    (r"(?P<n>\d+)" if part == "n" else rf"(?P<{part}>.+?)")
                                    for i, part in enumerate(parts)) + "$")


def chinese_verdict(line: str) -> str:
    """An exercise check's English verdict line in Chinese, as the check prints it in the Chinese edition
    (unet_scratch.exercises.base.MESSAGES); any other line unchanged."""
    from unet_scratch.exercises.base import message
    if m := _EN_ARRAYS.match(line):
        err = message("zero_exact", "zh") if m["err"] == "0 (exact)" else m["err"]
        expected = (message("exact", "zh") if m["expected"] == "exact"
                    else message("expected_below", "zh", tol=float(m["expected"][len("expected < "):])))
        return message("correct_arrays", "zh", what=m["what"], n=int(m["n"]), err=err, expected=expected)
    if m := _EN_CASES.match(line):
        return message("correct_cases", "zh", what=m["what"], n=int(m["n"]))
    for key, pattern in _EN_PARITY.items():
        if m := pattern.match(line):
            return message(key, "zh", n=int(m["n"]), tol=float(m["tol"]))
    for key in ("correct_he_normal", "correct_glorot_uniform",         # chapter 05b's initialiser checks
                "correct_train_step"):                                 # chapter 08's check_train_step
        if m := _english_pattern(key).match(line):
            return message(key, "zh", **{k: int(v) if k == "n" else v for k, v in m.groupdict().items()})
    return line


def is_check_cell(source: str) -> bool:
    """A code cell whose output an exercise check writes (so it is in Chinese in the Chinese edition)."""
    return BEGIN in source or bool(CHECK_CALL.search(source))


def _comparable(outputs, translate=False):
    """Outputs as (type, name, text or mime bundle), with English verdicts in Chinese when ``translate``.
    Consecutive stream outputs of one stream are joined (a kernel splits its stdout where it flushes)."""
    out = []
    for o in outputs:
        if o.output_type == "stream":
            text = o.text
            if translate:
                text = "\n".join(chinese_verdict(line) for line in text.split("\n"))
            if out and out[-1][:2] == ("stream", o.name):
                out[-1] = ("stream", o.name, out[-1][2] + text)
            else:
                out.append(("stream", o.name, text))
        elif o.output_type in ("display_data", "execute_result"):
            out.append((o.output_type, "", {k: v for k, v in o.data.items()}))
        else:
            out.append((o.output_type, o.get("ename", ""), o.get("evalue", "")))
    return out


def output_problems(en_ipynb: Path, zh_ipynb: Path) -> list[str]:
    """Code cells whose outputs in the Chinese .ipynb differ from the English .ipynb's (verdicts translated)."""
    en, zh = nbformat.read(en_ipynb, as_version=4), nbformat.read(zh_ipynb, as_version=4)
    en_code = [c for c in en.cells if c.cell_type == "code"]
    zh_code = [c for c in zh.cells if c.cell_type == "code"]
    if [c.source for c in en_code] != [c.source for c in zh_code]:
        return [f"{show(zh_ipynb)}: its code cells are not the English .ipynb's (update both .ipynb: "
                f"`python tools/execute_notebooks.py` and `python tools/zh_sync.py --execute`)"]
    problems = []
    cell_no = {id(c): i for i, c in enumerate(zh.cells, start=1)}
    for e, z in zip(en_code, zh_code):
        if e.source.lstrip().startswith(IGNORE):
            continue
        check = is_check_cell(e.source)
        if _comparable(z.outputs) != _comparable(e.outputs, translate=check):
            what = "the Chinese of the English check's verdict" if check else "the English output"
            problems.append(f"{show(zh_ipynb)} cell {cell_no[id(z)]} (code, {_first_line(e.source)!r}): its "
                            f"output is not {what}; re-execute: `python tools/zh_sync.py --execute "
                            f"{zh_ipynb.stem}`")
    return problems


# ------------------------------------------------------------------ the check
def chapter_problems(name: str, en_dir: Path = ENGLISH, zh_dir: Path = CHINESE, outputs: bool = True) -> list[str]:
    """Every way the Chinese chapter ``name`` is out of step with the English one, one line each."""
    en_py, zh_py, zh_ipynb = en_dir / f"{name}.py", zh_dir / f"{name}.py", zh_dir / f"{name}.ipynb"
    if not en_py.is_file():
        return [f"{show(zh_py)}: the English chapter {show(en_py)} does not exist (renamed or removed?)"]
    english, current = read(en_py), read(zh_py)
    built, dropped = build(english, current)
    problems = []
    if not _same_cells(built, current):
        problems.append(f"{show(zh_py)}: not updated since the English chapter changed (code cells, their order "
                        f"or its text cells): `python tools/zh_sync.py {name}`")
    for i, (en, zh) in enumerate(zip(english.cells, built.cells), start=1):
        if zh.cell_type != "markdown":
            continue
        where = f"{show(zh_py)} cell {i} ({_first_line(en.source)!r})"
        if UNTRANSLATED in zh.metadata:
            problems.append(f"{where}: missing: not translated yet")
        elif zh.metadata.get(TRANSLATES) != text_hash(en.source):
            problems.append(f"{where}: stale: translates English text {zh.metadata.get(TRANSLATES)}, the English "
                            f"is now {text_hash(en.source)} (`python tools/zh_sync.py --diff {name}`)")
    for line in dropped:
        problems.append(f"{show(zh_py)}: the translation starting {line!r} has no English cell any more "
                        f"(`python tools/zh_sync.py {name}` drops it)")
    if not zh_ipynb.is_file():
        problems.append(f"{show(zh_ipynb)} does not exist: `python tools/zh_sync.py --execute {name}`")
    else:
        if msg := drift(zh_py, zh_ipynb):
            problems.append(msg.replace("tools/execute_notebooks.py", "tools/execute_notebooks.py --notebooks "
                                        "notebooks/zh"))
        elif outputs and (en_dir / f"{name}.ipynb").is_file():
            problems += output_problems(en_dir / f"{name}.ipynb", zh_ipynb)
    return problems


def status(en_dir: Path = ENGLISH, zh_dir: Path = CHINESE, chapters=None, outputs: bool = True):
    """(problems by chapter, chapters without a Chinese edition)."""
    names = chapters or sorted(set(chapter_names(en_dir)) | set(chapter_names(zh_dir) if zh_dir.is_dir() else []))
    problems, pending = {}, []
    for name in names:
        if not (zh_dir / f"{name}.py").is_file():
            if (zh_dir / f"{name}.ipynb").is_file():
                problems[name] = [f"{show(zh_dir / name)}.ipynb has no .py: the Chinese text lives in the .py"]
            else:
                pending.append(name)
            continue
        if found := chapter_problems(name, en_dir, zh_dir, outputs):
            problems[name] = found
    return problems, pending


# ------------------------------------------------------------------ updating, accepting, explaining
def update(name: str, en_dir: Path = ENGLISH, zh_dir: Path = CHINESE, new: bool = False) -> list[str]:
    """Write notebooks/zh/NAME.py from the English .py and the current translation; return what was dropped."""
    zh_py = zh_dir / f"{name}.py"
    if not zh_py.is_file() and not new:
        raise SourceError(f"{show(zh_py)} does not exist: start it with `python tools/zh_sync.py --new {name}`")
    built, dropped = build(read(en_dir / f"{name}.py"), read(zh_py) if zh_py.is_file() else None)
    zh_dir.mkdir(parents=True, exist_ok=True)
    if not zh_py.is_file() or not _same_cells(built, read(zh_py)):
        jupytext.write(built, zh_py, fmt=FMT)
    return dropped


def accept(name: str, cells=None, en_dir: Path = ENGLISH, zh_dir: Path = CHINESE, force: bool = False) -> list[int]:
    """Record that text cells ``cells`` (1-based numbers; default every text cell whose text is no longer the
    English) translate the English text now at their place. Refuses a cell that still holds the English text
    (unless ``force``). Returns the cells marked."""
    zh_py = zh_dir / f"{name}.py"
    english, chinese = read(en_dir / f"{name}.py"), read(zh_py)
    built, _ = build(english, chinese)
    if not _same_cells(built, chinese):
        raise SourceError(f"{show(zh_py)} is not up to date with the English: `python tools/zh_sync.py {name}` first")
    marked = []
    for i, (en, zh) in enumerate(zip(english.cells, chinese.cells), start=1):
        if zh.cell_type != "markdown" or (cells and i not in cells):
            continue
        if zh.source == en.source and not force:
            if cells:
                raise SourceError(f"{show(zh_py)} cell {i} still holds the English text: translate it first "
                                  f"(or --force for a cell that reads the same in both languages)")
            continue
        current = text_hash(en.source)
        if zh.metadata.get(TRANSLATES) != current or UNTRANSLATED in zh.metadata:
            zh.metadata.pop(UNTRANSLATED, None)
            zh.metadata[TRANSLATES] = current
            marked.append(i)
    if cells and (unknown := sorted(set(cells) - {i for i, c in enumerate(chinese.cells, 1)
                                                    if c.cell_type == "markdown"})):
        raise SourceError(f"{show(zh_py)}: no text cell {unknown} (text cells: "
                          f"{[i for i, c in enumerate(chinese.cells, 1) if c.cell_type == 'markdown']})")
    jupytext.write(chinese, zh_py, fmt=FMT)
    return marked


def english_text_with_hash(name: str, digest: str, en_dir: Path = ENGLISH, max_commits: int = 300) -> str | None:
    """The English text cell of chapter ``name`` whose hash is ``digest``, looked up in git's history."""
    try:
        rel = (en_dir / f"{name}.py").resolve().relative_to(ROOT).as_posix()
    except ValueError:                              # not in this repository: no history to look in
        return None
    try:
        commits = subprocess.run(["git", "log", f"-n{max_commits}", "--format=%H", "--", rel], cwd=ROOT,
                                 capture_output=True, text=True, check=True).stdout.split()
    except (OSError, subprocess.CalledProcessError):
        return None
    for commit in commits:
        shown = subprocess.run(["git", "show", f"{commit}:{rel}"], cwd=ROOT, capture_output=True, text=True)
        if shown.returncode:
            continue
        for cell in jupytext.reads(shown.stdout, fmt=FMT).cells:
            if cell.cell_type == "markdown" and text_hash(cell.source) == digest:
                return cell.source
    return None


def explain(name: str, en_dir: Path = ENGLISH, zh_dir: Path = CHINESE) -> str:
    """For each stale or missing text cell: how its English changed since the translation, or the English."""
    english, chinese = read(en_dir / f"{name}.py"), read(zh_dir / f"{name}.py")
    built, _ = build(english, chinese)
    parts = []
    for i, (en, zh) in enumerate(zip(english.cells, built.cells), start=1):
        if zh.cell_type != "markdown":
            continue
        if UNTRANSLATED in zh.metadata:
            parts.append(f"== cell {i}: not translated yet; the English:\n{en.source}")
        elif (old_hash := zh.metadata.get(TRANSLATES)) != text_hash(en.source):
            old = english_text_with_hash(name, old_hash, en_dir)
            if old is None:
                parts.append(f"== cell {i}: stale; the English it translated ({old_hash}) is not in git's history. "
                             f"The English now:\n{en.source}")
            else:
                diff = difflib.unified_diff(old.split("\n"), en.source.split("\n"), "English then", "English now",
                                            lineterm="")
                parts.append(f"== cell {i}: stale; the English changed:\n" + "\n".join(diff))
    return "\n\n".join(parts) or f"{name}: every translation is fresh"


def execute_chinese(name: str, zh_dir: Path = CHINESE, timeout: int = 600) -> None:
    """Bring notebooks/zh/NAME.ipynb up to date from its .py and execute it in notebooks/zh/ (checks in Chinese)."""
    nb = updated_notebook(name, zh_dir, force=True)
    execute(nb, name, zh_dir, timeout=timeout)
    write(nb, name, zh_dir)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("chapters", nargs="*", help="00, 01-convolution, ... (default: every Chinese chapter)")
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="change nothing; list what is out of step")
    mode.add_argument("--new", action="store_true", help="start the Chinese edition of these chapters")
    mode.add_argument("--accept", action="store_true", help="CHAPTER [CELL ...]: mark these text cells fresh")
    mode.add_argument("--diff", action="store_true", help="how the English of each stale cell changed")
    mode.add_argument("--execute", action="store_true", help="update, then execute the Chinese .ipynb")
    ap.add_argument("--force", action="store_true", help="--accept: also a cell that still reads as the English")
    ap.add_argument("--english", type=Path, default=ENGLISH, help=argparse.SUPPRESS)
    ap.add_argument("--chinese", type=Path, default=CHINESE, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    en_dir, zh_dir = args.english.resolve(), args.chinese.resolve()
    try:
        if args.accept:
            if not args.chapters:
                raise SourceError("--accept CHAPTER [CELL ...]: name the chapter")
            name = resolve_chapter(args.chapters[0], zh_dir)
            marked = accept(name, [int(c) for c in args.chapters[1:]], en_dir, zh_dir, force=args.force)
            print(f"{name}: text cells marked up to date: {marked or 'none'}")
            return 0
        existing = chapter_names(zh_dir) if zh_dir.is_dir() else []
        folder = en_dir if args.new else zh_dir
        names = [resolve_chapter(c, folder) for c in args.chapters] if args.chapters else existing
        if args.check:
            problems, pending = status(en_dir, zh_dir, names or None)
            for name, lines in problems.items():
                print(f"{name}:", *lines, sep="\n  ", file=sys.stderr)
            if pending and not args.chapters:
                print(f"no Chinese edition yet ({len(pending)}): {', '.join(pending)}")
            count = sum(map(len, problems.values()))
            print(f"{len(names or existing)} Chinese chapters checked, {count} problems")
            return 1 if count else 0
        if args.diff:
            for name in names:
                print(explain(name, en_dir, zh_dir))
            return 0
        for name in names:
            dropped = update(name, en_dir, zh_dir, new=args.new)
            for line in dropped:
                print(f"{name}: dropped the translation starting {line!r} (its English cell is gone)")
            print(f"updated {show(zh_dir / name)}.py")
            if args.execute:
                print(f"executing {name} in {show(zh_dir)}", flush=True)
                execute_chinese(name, zh_dir)
                print(f"wrote {show(zh_dir / name)}.ipynb")
    except SourceError as err:
        print(err, file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
