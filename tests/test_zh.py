"""The Chinese edition (notebooks/zh/) stays in step with the English chapters, and cannot go stale silently.

Each Chinese chapter is a jupytext pair whose code cells are the English chapter's, byte for byte, and whose text
cells record the SHA-1 of the English text they translate (tools/zh_sync.py). These tests fail, listing every
stale or missing translation by chapter and cell, when an English chapter changes without its Chinese twin; one
test makes such an edit in copies (tmp_path) and shows that it is caught. nbval executes the Chinese notebooks
like the English ones (``make test`` collects notebooks/ recursively); here their stored outputs are compared with
the English ones: equal, except that an exercise check's verdict is its Chinese translation.
"""
import re
import shutil
import sys
from pathlib import Path

import jupytext
import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from execute_notebooks import chapter_names, drift  # noqa: E402
from zh_sync import (TRANSLATES, UNTRANSLATED, accept, build, chapter_problems, chinese_verdict, explain,  # noqa: E402
                     is_check_cell, main, output_problems, read, status, text_hash, update)

ENGLISH, CHINESE = ROOT / "notebooks", ROOT / "notebooks" / "zh"
TRANSLATED = chapter_names(CHINESE)
CJK = re.compile(r"[\u3400-\u9fff]")
GLOSSARY = ROOT / "book" / "zh" / "glossary.md"


# ------------------------------------------------------------------ the real Chinese edition
def test_the_settled_chapters_are_translated():
    assert {"00-introduction", "01-convolution", "03-transposed-convolution"} <= set(TRANSLATED)


def test_no_translation_is_stale_or_missing():
    """Fails CI, listing each problem by chapter and cell, when an English edit has no Chinese counterpart."""
    problems, _ = status(ENGLISH, CHINESE)
    lines = [f"{name}: {line}" for name, found in problems.items() for line in found]
    assert not lines, ("the Chinese edition is out of step (tools/zh_sync.py --check; --diff CHAPTER shows how "
                       "the English changed):\n" + "\n".join(lines))


def test_report_the_chapters_not_translated_yet(capsys):
    """Informational: the English chapters that have no Chinese twin yet (not a failure)."""
    _, pending = status(ENGLISH, CHINESE)
    with capsys.disabled():
        print(f"\nChinese edition: {len(TRANSLATED)} chapters translated; not yet ({len(pending)}): "
              f"{', '.join(pending)}")
    assert set(pending).isdisjoint(TRANSLATED) and set(pending) | set(TRANSLATED) == set(chapter_names(ENGLISH))


@pytest.mark.parametrize("chapter", TRANSLATED)
def test_code_cells_are_the_english_ones_byte_for_byte(chapter):
    english, chinese = read(ENGLISH / f"{chapter}.py"), read(CHINESE / f"{chapter}.py")
    assert [c.cell_type for c in chinese.cells] == [c.cell_type for c in english.cells]
    for i, (e, z) in enumerate(zip(english.cells, chinese.cells), start=1):
        if e.cell_type == "code":
            assert z.source == e.source, f"{chapter} cell {i}: the code differs from the English"
            assert dict(z.metadata) == dict(e.metadata), f"{chapter} cell {i}: the cell metadata differ"
    en_nb = nbformat.read(ENGLISH / f"{chapter}.ipynb", as_version=4)
    zh_nb = nbformat.read(CHINESE / f"{chapter}.ipynb", as_version=4)
    assert [c.source for c in zh_nb.cells if c.cell_type == "code"] == \
           [c.source for c in en_nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", TRANSLATED)
def test_each_text_cell_is_chinese_and_names_the_english_it_translates(chapter):
    english, chinese = read(ENGLISH / f"{chapter}.py"), read(CHINESE / f"{chapter}.py")
    for i, (e, z) in enumerate(zip(english.cells, chinese.cells), start=1):
        if z.cell_type != "markdown":
            continue
        assert z.metadata.get(TRANSLATES) == text_hash(e.source), f"{chapter} cell {i}"
        assert len(CJK.findall(z.source)) >= 5, f"{chapter} cell {i} is not in Chinese: {z.source[:60]!r}"
        for formula in re.findall(r"\$\$(.+?)\$\$", e.source, re.S):            # the math is the English math
            assert formula.strip() in z.source, f"{chapter} cell {i}: formula {formula[:40]!r} missing"


@pytest.mark.parametrize("chapter", TRANSLATED)
def test_the_pair_agrees_and_the_outputs_are_the_english_ones(chapter):
    assert drift(CHINESE / f"{chapter}.py", CHINESE / f"{chapter}.ipynb") is None
    assert output_problems(ENGLISH / f"{chapter}.ipynb", CHINESE / f"{chapter}.ipynb") == []
    zh_nb = nbformat.read(CHINESE / f"{chapter}.ipynb", as_version=4)
    # each check cell's printed text (a cell may print other lines first, chapter 11's parity cell does)
    verdicts = ["".join(o.text for o in c.outputs if o.output_type == "stream") for c in zh_nb.cells
                if c.cell_type == "code" and is_check_cell(c.source)]
    verdicts = [v for v in verdicts if v]
    assert verdicts and all(re.search(r"^正确：", v, re.M) and not re.search(r"^correct:", v, re.M)
                            for v in verdicts), verdicts                               # the checks spoke Chinese


def test_an_english_verdict_becomes_the_chinese_one():
    assert chinese_verdict("correct: im2col passes 4 cases (largest relative error 0 (exact), exact)") == \
        "正确：im2col 通过了全部 4 个测试用例（最大相对误差 0（完全相等），要求完全相等）"
    assert chinese_verdict("correct: col2im passes 5 cases (largest relative error < 1e-15, expected < 1e-07)") == \
        "正确：col2im 通过了全部 5 个测试用例（最大相对误差 < 1e-15，要求 < 1e-07）"
    assert chinese_verdict("correct: conv_params passes 4 cases") == "正确：conv_params 通过了全部 4 个测试用例"
    assert chinese_verdict("correct: relu and relu_backward passes 2 cases (largest relative error 0 (exact), "
                           "expected < 1e-09)") == \
        "正确：relu and relu_backward 通过了全部 2 个测试用例（最大相对误差 0（完全相等），要求 < 1e-09）"
    assert chinese_verdict("forward: all 33 layer outputs within rtol = atol = 1e-05 of Keras's") == \
        "正确：前向传播的全部 33 个层输出与 Keras 的差都在 rtol = atol = 1e-05 之内"
    assert chinese_verdict("max-pooling layers: 4") == "max-pooling layers: 4"


# ------------------------------------------------------------------ an English edit is caught (in copies)
@pytest.fixture
def copies(tmp_path):
    """notebooks/00-introduction (.py, .ipynb) and its Chinese pair, copied to tmp_path/en and tmp_path/en/zh."""
    en, zh = tmp_path / "en", tmp_path / "en" / "zh"
    zh.mkdir(parents=True)
    for suffix in (".py", ".ipynb"):
        shutil.copy2(ENGLISH / f"00-introduction{suffix}", en)
        shutil.copy2(CHINESE / f"00-introduction{suffix}", zh)
    return en, zh


def _edit(path: Path, old: str, new: str):
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


def test_the_copies_start_in_step(copies):
    assert chapter_problems("00-introduction", *copies) == []


def test_an_english_text_edit_makes_its_translation_stale_and_fails_the_check(copies, capsys):
    en, zh = copies
    _edit(en / "00-introduction.py", "## 4. Setup check", "## 4. Setup check (edited)")
    problems = chapter_problems("00-introduction", en, zh)
    assert len(problems) == 1 and "cell 13 ('## 4. Setup check (edited)'): stale: translates English text" in problems[0]
    assert main(["--check", "--english", str(en), "--chinese", str(zh)]) == 1
    assert "stale" in capsys.readouterr().err
    before = (zh / "00-introduction.py").read_text()
    update("00-introduction", en, zh)                    # nothing to update: the Chinese is kept, and stays stale
    assert (zh / "00-introduction.py").read_text() == before
    assert "cell 13: stale" in explain("00-introduction", en, zh)
    _edit(zh / "00-introduction.py", "## 4. 环境检查", "## 4. 环境检查（已改）")
    assert accept("00-introduction", [13], en, zh) == [13]                 # the translator's fix is recorded
    assert read(zh / "00-introduction.py").cells[12].metadata[TRANSLATES] == \
        text_hash(read(en / "00-introduction.py").cells[12].source)
    remaining = chapter_problems("00-introduction", en, zh, outputs=False)
    assert len(remaining) == 1 and "differ at cell 13" in remaining[0]     # only the .ipynb's text is behind


def test_a_new_english_text_cell_is_missing_and_a_removed_one_is_dropped(copies):
    en, zh = copies
    nb = read(en / "00-introduction.py")
    removed = nb.cells.pop(12)                                          # "## 4. Setup check"
    assert removed.cell_type == "markdown" and removed.source.startswith("## 4. Setup check")
    nb.cells.insert(3, nbformat.v4.new_markdown_cell("A new paragraph."))
    jupytext.write(nb, en / "00-introduction.py", fmt="py:percent")
    problems = chapter_problems("00-introduction", en, zh, outputs=False)
    assert any("cell 4 ('A new paragraph.'): missing" in p for p in problems)
    assert any("the translation starting '## 4. 环境检查' has no English cell any more" in p for p in problems)
    assert update("00-introduction", en, zh) == ["## 4. 环境检查"]
    built = read(zh / "00-introduction.py")
    assert built.cells[3].metadata == {UNTRANSLATED: text_hash("A new paragraph.")}
    assert built.cells[3].source == "A new paragraph." and "## 4. 环境检查" not in (zh / "00-introduction.py").read_text()
    assert [c.source for c in built.cells if c.cell_type == "code"] == \
           [c.source for c in nb.cells if c.cell_type == "code"]
    with pytest.raises(Exception, match="still holds the English text"):
        accept("00-introduction", [4], en, zh)


def test_an_english_code_edit_reaches_the_chinese_code_and_its_outputs_are_compared(copies):
    en, zh = copies
    _edit(en / "00-introduction.py", 'print("dense layers:      ", types.count("Dense"))',
          'print("dense layers:", types.count("Dense"))')
    assert any("not updated" in p for p in chapter_problems("00-introduction", en, zh))
    update("00-introduction", en, zh)
    assert 'print("dense layers:", types.count("Dense"))' in (zh / "00-introduction.py").read_text()
    assert any("differ at cell" in p for p in chapter_problems("00-introduction", en, zh))   # .ipynb not re-run


def test_an_output_that_is_not_the_english_one_is_caught(copies):
    en, zh = copies
    nb = nbformat.read(zh / "00-introduction.ipynb", as_version=4)
    check = next(c for c in nb.cells if c.cell_type == "code" and "check_conv_params(conv_params);" in c.source)
    check.outputs[0].text = "correct: conv_params passes 4 cases\n"          # English in the Chinese edition
    plain = next(c for c in nb.cells if c.cell_type == "code" and "max-pooling layers" in c.source)
    plain.outputs[0].text = plain.outputs[0].text.replace("4", "5", 1)
    nbformat.write(nb, zh / "00-introduction.ipynb")
    problems = output_problems(en / "00-introduction.ipynb", zh / "00-introduction.ipynb")
    assert len(problems) == 2
    assert "'types = [t" in problems[0] and "is not the English output" in problems[0]
    assert "'def conv_params" in problems[1] and "is not the Chinese of the English check's verdict" in problems[1]


def test_build_keeps_fresh_translations_and_a_new_chapter_starts_untranslated(copies):
    en, _ = copies
    english = read(en / "00-introduction.py")
    fresh, dropped = build(english, read(CHINESE / "00-introduction.py"))
    assert dropped == [] and [c.source for c in fresh.cells] == \
        [c.source for c in read(CHINESE / "00-introduction.py").cells]
    new, _ = build(english)
    assert all(c.source == e.source for c, e in zip(new.cells, english.cells))
    assert all(UNTRANSLATED in c.metadata for c in new.cells if c.cell_type == "markdown")


# ------------------------------------------------------------------ the glossary, used consistently
def glossary_terms():
    """(Chinese, English) for every entry of book/zh/glossary.md: lines `中文（English...）` in {glossary} blocks."""
    terms, inside = [], False
    for line in GLOSSARY.read_text().splitlines():
        if line.startswith("```{glossary}"):
            inside = True
        elif line.startswith("```"):
            inside = False
        elif inside and line and not line.startswith(" "):
            m = re.match(r"^(.+?)（(.+)）$", line)
            terms.append((m[1], m[2]) if m else (line, line))
    return terms


def test_the_glossary_has_the_standard_terms():
    terms = dict(glossary_terms())
    assert len(terms) >= 40, len(terms)
    for zh, en in [("跳跃连接", "skip connection"), ("转置卷积", "transposed convolution"), ("感受野", "receptive field"),
                   ("交叉熵", "cross-entropy"), ("池化", "pooling"), ("反向传播", "backpropagation"),
                   ("梯度检验", "gradient check"), ("学习率", "learning rate"), ("过拟合", "overfitting"),
                   ("数据增强", "data augmentation"), ("弹性形变", "elastic deformation"), ("权重图", "weight map"),
                   ("重叠切片", "overlap-tile")]:
        assert terms.get(zh, "").startswith(en), (zh, terms.get(zh))
    assert any(k.startswith("批次") and "batch size" in v for k, v in terms.items())


# the glossary's terms that the chapters' text uses: at its first use in each chapter, the English in parentheses
FIRST_USE = {"卷积": "convolution", "互相关": "cross-correlation", "卷积核": "kernel", "滤波器": "filter",
             "特征图": "feature map", "通道": "channel", "步幅": "stride", "填充": "padding",
             "感受野": "receptive field", "池化": "pooling", "最大池化": "max-pooling", "转置卷积": "transposed convolution",
             "跳跃连接": "skip connection", "拼接": "concatenation", "瓶颈层": "bottleneck", "全卷积网络": "fully convolutional",
             "全连接层": "fully connected", "分割": "segmentation", "前向传播": "forward pass", "反向传播": "backpropagation",
             "中心差分": "central differences", "相对误差": "relative error", "梯度检验": "gradient check",
             "伴随": "adjoint", "批大小": "batch size", "上采样": "upsampling", "棋盘伪影": "checkerboard artifact",
             "裁剪": "crop", "散射累加": "scatter-add", "链式法则": "chain rule", "损失函数": "loss function",
             "优化器": "optimizer", "偏置": "bias", "图像块": "patch", "滑动窗口": "sliding window",
             "上卷积": "up-convolution"}


def test_the_first_use_checks_only_glossary_terms():
    lines = [zh if zh == en else f"{zh}（{en}）" for zh, en in glossary_terms()]
    terms = {part.strip() for line in lines for part in re.split(r"[/／]", re.sub(r"（.*?）", "", line))}
    assert set(FIRST_USE) <= terms, set(FIRST_USE) - terms


@pytest.mark.parametrize("chapter", TRANSLATED)
def test_each_term_gives_its_english_at_its_first_use_in_the_chapter(chapter):
    text = "\n".join(c.source for c in read(CHINESE / f"{chapter}.py").cells if c.cell_type == "markdown")
    text = re.sub(r"`[^`]*`|\$\$.+?\$\$|\$[^$]*\$", " ", text, flags=re.S)      # code and math are not prose
    text = re.sub(r"^#.*$", "", text, flags=re.M).replace("**", "").replace("*", "")   # nor headings, nor emphasis
    problems = []
    for zh, en in FIRST_USE.items():
        uses = [m.start() for m in re.finditer(re.escape(zh), text)
                if not any(text.startswith(longer, m.start() - longer.index(zh)) for longer in FIRST_USE
                           if longer != zh and zh in longer and m.start() >= longer.index(zh))]
        if not uses:
            continue
        after = re.sub(r"\s+", " ", text[uses[0] + len(zh):uses[0] + len(zh) + 60]).lstrip()   # lines wrap anywhere
        if not after.startswith("（") or en.lower() not in after.split("）")[0].lower():
            problems.append(f"{zh} ({en}): first used without its English: ...{text[uses[0] - 10:uses[0] + 30]!r}")
    assert not problems, f"{chapter}:\n" + "\n".join(problems)


# ------------------------------------------------------------------ student copies in Chinese
def test_make_student_writes_chinese_copies_with_the_markers_replaced(tmp_path):
    sys.path.insert(0, str(ROOT / "tools"))
    from make_student import make_student
    written = make_student(ENGLISH, tmp_path, chinese=True)
    zh = [p for p in written if p.parent == tmp_path / "zh"]
    assert sorted(p.stem for p in zh) == sorted(p.stem for p in CHINESE.glob("*.ipynb"))
    nb = nbformat.read(tmp_path / "zh" / "01-convolution.ipynb", as_version=4)
    exercises = [c for c in nb.cells if c.cell_type == "code" and "raise NotImplementedError" in c.source]
    assert len(exercises) == 7 and not any("### BEGIN SOLUTION" in c.source for c in nb.cells)
    assert all(c.outputs == [] for c in exercises)
    assert "卷积" in nb.cells[0].source


def test_diff_finds_the_english_a_stale_translation_was_made_from_in_git_history():
    """--diff shows how the English changed: it finds the old English text by its hash in git's history."""
    import subprocess
    from zh_sync import english_text_with_hash
    log = subprocess.run(["git", "log", "--format=%H", "--", "notebooks/00-introduction.py"], cwd=ROOT,
                         capture_output=True, text=True)
    if log.returncode or len(log.stdout.split()) < 2:
        pytest.skip("no git history of notebooks/00-introduction.py here")
    current = {text_hash(c.source) for c in read(ENGLISH / "00-introduction.py").cells}
    for commit in log.stdout.split()[1:]:
        old = jupytext.reads(subprocess.run(["git", "show", f"{commit}:notebooks/00-introduction.py"], cwd=ROOT,
                                            capture_output=True, text=True).stdout, fmt="py:percent")
        gone = [c.source for c in old.cells if c.cell_type == "markdown" and text_hash(c.source) not in current]
        if gone:
            assert english_text_with_hash("00-introduction", text_hash(gone[0])) == gone[0]
            return
    pytest.skip("every English text of chapter 00 is unchanged in its history")


def test_jupyterlab_can_show_its_interface_in_chinese():
    """The notebooks extra installs JupyterLab's Chinese language pack; JupyterLab's server lists it under
    Settings -> Language (README.zh.md says how to switch)."""
    pytest.importorskip("jupyterlab", reason="JupyterLab not installed: pip install -e '.[notebooks]'")
    from jupyterlab_server.translation_utils import get_language_packs
    packs, message = get_language_packs("en")
    assert "zh_CN" in packs, (f"jupyterlab-language-pack-zh-CN is not installed or not found ({message}): "
                              f"pip install -e '.[notebooks]'")
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(r.lower().startswith("jupyterlab-language-pack-zh-cn") for r in extras["notebooks"])


def test_the_chinese_readme_gives_the_two_commands_and_the_interface_switch():
    text = (ROOT / "README.zh.md").read_text()
    assert "make lab" in text and "make test" in text and "jupyterlab-language-pack-zh-CN" in text
    assert "Settings → Language" in text and "UNET_SCRATCH_LANG=zh" in text
    assert "[中文版](README.zh.md)" in (ROOT / "README.md").read_text()


# other names that Chinese blogs use for the glossary's terms: the course keeps to one
AVOID = {"反卷积": "转置卷积 (a transposed convolution does not invert a convolution)", "步长": "步幅 (stride)",
         "跳跃链接": "跳跃连接", "跳层连接": "跳跃连接", "跨步": "步幅 (stride)"}


def test_one_name_per_term_in_the_chinese_text():
    pages = [p for p in CHINESE.glob("*.py")] + [p for p in (ROOT / "book" / "zh").glob("*.md")
                                                  if p.name != "glossary.md"] + [ROOT / "README.zh.md"]
    found = [f"{p.relative_to(ROOT)}: {word!r} (use {AVOID[word]})" for p in pages for word in AVOID
             if word in p.read_text()]
    assert not found, "\n".join(found)
    assert "反卷积" in GLOSSARY.read_text()             # the glossary names the other word, once, to reject it
