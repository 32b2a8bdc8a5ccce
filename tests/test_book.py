"""`make book`: the course website builds offline from the notebooks and works in a real browser.

The book is built from notebooks/ and book/_toc.yml into a temporary folder, served on 127.0.0.1, and
every page is opened in headless Chromium, driven through the Chrome DevTools Protocol (CDP) over a
websocket. For each page: math typeset by the MathJax shipped with the site (no raw TeX left), every
image loaded, no request to anything but this machine, every local link pointing at an existing file
and anchor, code highlighted, exercise solutions folded, a language switch to the same page in the other
language. The Chinese edition (html/zh/) gets the same checks, and its text must be drawn with a CJK font
(Chromium's own report of the fonts that rendered it), not as empty boxes. Screenshots of chapter 00 and of
the Chinese chapter 01 are saved to book/_build/screenshot-00.png and book/_build/screenshots/. The browser is found by tools/find_chrome.py (Chrome or Chromium, Linux or
macOS, or the CHROME environment variable). Without one the browser tests skip, saying how to install it,
except where the CI environment variable is set: there a missing browser is a failure.
"""
from __future__ import annotations

import functools
import hashlib
import json
import os
import queue
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from base64 import b64decode
from html.parser import HTMLParser
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlsplit

import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tools"))
from find_chrome import HOW_TO_INSTALL, candidates, find_chrome  # noqa: E402
from build_book import (BEGIN, UNTRANSLATED_NOTE, WORDS, BookError, add_language_switches, build,  # noqa: E402
                        check_toc, chinese_toc, counterpart, display_math_blocks, fold_solutions, main,
                        rewrite_book_links, stage_chinese, toc_files)

TOC = ROOT / "book" / "_toc.yml"
SCREENSHOT = ROOT / "book" / "_build" / "screenshot-00.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
EXTRA_PAGES = ["index", "running-the-course", "glossary", "references"]
ZH_PAGES = ["index", "running-the-course", "article", "glossary", "references"]    # book/zh/'s toc, less chapters
ZH_SCREENSHOT = ROOT / "book" / "_build" / "screenshots" / "zh-01-convolution.png"
# font families that cover Chinese (Debian's fonts-noto-cjk; macOS; Windows): what must draw the zh pages' text
CJK_FONT = re.compile(r"CJK|Source Han|WenQuanYi|Droid Sans Fallback|PingFang|Hiragino|Heiti|Songti|STHeiti|"
                      r"Microsoft YaHei|SimSun|SimHei|Noto Sans SC|Noto Serif SC|AR PL", re.I)
CJK_CHAR = re.compile(r"[\u3400-\u9fff]")


# ---------------------------------------------------------------- checks (pure functions, tested below)

def requests_leaving(urls):
    """The URLs among `urls` that would leave this machine (anything but localhost, data: and blob:)."""
    bad = []
    for url in urls:
        parts = urlsplit(url)
        if parts.scheme in ("data", "blob"):
            continue
        if parts.scheme in ("http", "https", "ws", "wss") and parts.hostname in LOCAL_HOSTS:
            continue
        bad.append(url)
    return bad


class _Anchors(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids = set()

    def handle_starttag(self, tag, attrs):
        for key, value in attrs:
            if key == "id" or (key == "name" and tag == "a"):
                self.ids.add(value)


@functools.lru_cache(maxsize=None)
def _anchors(path: Path) -> frozenset:
    parser = _Anchors()
    parser.feed(path.read_text(errors="replace"))
    return frozenset(parser.ids)


def broken_links(hrefs, site: Path, origin: str):
    """The links among `hrefs` (absolute URLs) that point into the site at `origin` but whose file or
    #anchor does not exist under `site`. Links to other hosts are not followed."""
    bad = []
    for href in hrefs:
        parts = urlsplit(href)
        if f"{parts.scheme}://{parts.netloc}" != origin:
            continue
        path = site / unquote(parts.path).lstrip("/")
        if parts.path.endswith("/") or path.is_dir():
            path = path / "index.html"
        if not path.is_file():
            bad.append(f"{href} (no file {path.relative_to(site)})")
        elif parts.fragment and path.suffix == ".html" and unquote(parts.fragment) not in _anchors(path):
            bad.append(f"{href} (no anchor #{unquote(parts.fragment)} in {path.relative_to(site)})")
    return bad


def raw_tex(text: str):
    """Pieces of TeX that MathJax should have typeset: $$, \\( ... \\), \\[ ... \\], $x$-style inline."""
    found = re.findall(r"\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\$[^$\n]*\\[a-zA-Z]+[^$\n]*\$", text)
    return found


# ---------------------------------------------------------------- a small CDP client

class CDP:
    """Chrome DevTools Protocol over one page's websocket: `send` waits for its answer and keeps the
    events that arrive meanwhile in `events`."""

    def __init__(self, ws_url: str):
        import websocket  # websocket-client, from the `book` extra

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.events: list[dict] = []
        self._id = 0

    def send(self, method: str, **params):
        self._id += 1
        self.ws.send(json.dumps({"id": self._id, "method": method, "params": params}))
        while True:
            msg = json.loads(self.ws.recv())
            if msg.get("id") == self._id:
                if "error" in msg:
                    raise RuntimeError(f"CDP {method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)

    def wait_event(self, method: str, since: int = 0):
        i = since
        while True:
            while i < len(self.events):
                if self.events[i]["method"] == method:
                    return self.events[i]
                i += 1
            msg = json.loads(self.ws.recv())
            if "method" in msg:
                self.events.append(msg)

    def evaluate(self, expression: str):
        result = self.send("Runtime.evaluate", expression=expression, awaitPromise=True, returnByValue=True)
        if "exceptionDetails" in result:
            raise RuntimeError(f"JavaScript failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    def close(self):
        self.ws.close()


# What the browser reports about a page once it has loaded and MathJax has finished typesetting.
PAGE_REPORT_JS = r"""
(async () => {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) { await MathJax.startup.promise; }
  await document.fonts.ready;
  const main = document.querySelector('main') || document.body;
  const shown = main.cloneNode(true);
  shown.querySelectorAll('pre, code, .highlight, mjx-container, script, style').forEach(e => e.remove());
  const article = document.querySelector('article') || main;
  const solutions = [...article.querySelectorAll('.cell')].filter(c => c.textContent.includes('BEGIN_MARK'));
  return {
    url: location.href,
    title: document.title,
    text: shown.textContent,
    visibleText: article.innerText,
    mathElements: main.querySelectorAll('.math').length,
    mathTypeset: [...main.querySelectorAll('.math')].filter(e => e.querySelector('mjx-container')).length,
    mjx: document.querySelectorAll('mjx-container').length,
    mathErrors: document.querySelectorAll('mjx-merror').length,
    mathjaxSrc: [...document.scripts].map(s => s.src).filter(s => /mathjax/i.test(s)),
    images: [...document.images].map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0})),
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    nav: [...document.querySelectorAll('.bd-sidebar-primary nav.bd-links a.reference.internal')]
           .map(a => a.href),
    codeCells: article.querySelectorAll('.cell_input').length,
    highlightTokens: article.querySelectorAll('.cell_input .highlight pre span[class]').length,
    solutions: solutions.length,
    solutionsFolded: solutions.filter(c => c.querySelector('details.hide.above-input:not([open])')
                                          && c.querySelector('summary')
                                          && /Show the solution|显示答案/.test(c.querySelector('summary').textContent)).length,
    langSwitch: [...document.querySelectorAll('a.lang-switch')].map(a => a.href),
    htmlLang: document.documentElement.lang,
  };
})()
""".replace("BEGIN_MARK", BEGIN)


# ---------------------------------------------------------------- fixtures

def _chromium(env=None) -> str:
    """The browser to drive; skips without one on a laptop, fails without one in CI (`CI` set)."""
    env = os.environ if env is None else env
    try:
        path = find_chrome(env)
    except ValueError as e:
        pytest.fail(str(e), pytrace=False)
    if path:
        return path
    missing = (f"no Chrome or Chromium found (looked for CHROME, {', '.join(candidates())}), so the course "
               f"website cannot be checked in a browser; {HOW_TO_INSTALL}")
    if env.get("CI"):
        pytest.fail(f"CI is set, so the browser test is mandatory: {missing}", pytrace=False)
    pytest.skip(missing)


def _digest(folder: Path):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.glob("*.ipynb"))}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The book built from notebooks/ and book/_toc.yml, served on 127.0.0.1."""
    out = tmp_path_factory.mktemp("book")
    before = _digest(ROOT / "notebooks"), _digest(ROOT / "notebooks" / "zh")
    t0 = time.perf_counter()
    try:
        index, error = build(ROOT / "notebooks", ROOT / "book", TOC, out, quiet=True), None
    except BookError as e:
        error = str(e)
    if error:
        pytest.fail(f"the book does not build: {error}", pytrace=False)
    print(f"\nbook built in {time.perf_counter() - t0:.1f} s")
    after = _digest(ROOT / "notebooks"), _digest(ROOT / "notebooks" / "zh")
    changed = sorted(f"{folder}{n}" for folder, old, new in zip(("notebooks/", "notebooks/zh/"), before, after)
                     for n in set(old) | set(new) if old.get(n) != new.get(n))
    assert not changed, f"building the book modified notebooks (or something else wrote them meanwhile): {changed}"
    html = index.parent
    handler = functools.partial(_QuietHandler, directory=str(html))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield html, f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium with remote debugging on a free port, and a CDP session on its page."""
    exe = _chromium()
    profile = tempfile.mkdtemp(prefix="unet-book-chromium-")
    proc = subprocess.Popen([exe, *CHROMIUM_FLAGS, "--remote-debugging-port=0", f"--user-data-dir={profile}",
                             "--window-size=1280,1000", "--hide-scrollbars", "about:blank"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    lines = queue.Queue()
    threading.Thread(target=lambda: [lines.put(ln) for ln in proc.stderr], daemon=True).start()
    try:
        port, deadline, seen = None, time.monotonic() + 30, []
        while port is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                seen.append(lines.get(timeout=0.5))
            except queue.Empty:
                continue
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", seen[-1])
            port = int(m.group(1)) if m else None
        if port is None:
            pytest.fail(f"Chromium ({exe}) did not start its DevTools server:\n" + "".join(seen[-20:]),
                        pytrace=False)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=10) as r:
            pages = [t for t in json.load(r) if t["type"] == "page"]
        cdp = CDP(pages[0]["webSocketDebuggerUrl"])
        cdp.send("Page.enable")
        cdp.send("Network.enable")
        cdp.send("Runtime.enable")
        cdp.send("Network.setCacheDisabled", cacheDisabled=True)
        yield cdp
        cdp.close()
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        shutil.rmtree(profile, ignore_errors=True)


def _chapters():
    toc = yaml.safe_load(TOC.read_text())
    return [f[len("notebooks/"):] for f in toc_files(toc) if f.startswith("notebooks/")]


def _open(cdp: CDP, url: str):
    """Load `url`, wait for the load event and for MathJax; return the page report and every URL the
    page requested."""
    start = len(cdp.events)
    cdp.send("Page.navigate", url=url)
    cdp.wait_event("Page.loadEventFired", since=start)
    report = cdp.evaluate(PAGE_REPORT_JS)
    requested = [e["params"]["request"]["url"] for e in cdp.events[start:]
                 if e["method"] == "Network.requestWillBeSent"]
    del cdp.events[start:]
    return report, requested


# ---------------------------------------------------------------- the browser test

def _page_problems(report, requested, page, html, origin, lang="en"):
    """What is wrong with one page of the site (``page``: its path without .html, from the site's root)."""
    where, problems = f"{page}.html", []
    if report["title"].startswith("404") or "Error response" in report["title"]:
        return [f"{where}: not found"]
    static = f"{origin}/zh/_static/" if lang == "zh" else f"{origin}/_static/"
    if not any(url.startswith(static) for url in requested):
        problems.append(f"{where}: no request for the site's own assets was recorded")
    for url in requests_leaving(requested):
        problems.append(f"{where}: requested {url}, which leaves the machine")
    if report["mathElements"] and report["mathTypeset"] != report["mathElements"]:
        problems.append(f"{where}: {report['mathElements'] - report['mathTypeset']} of "
                        f"{report['mathElements']} math elements not typeset by MathJax")
    if report["mathErrors"]:
        problems.append(f"{where}: {report['mathErrors']} TeX errors (mjx-merror)")
    if raw := raw_tex(report["text"]):
        problems.append(f"{where}: raw TeX left in the page: {raw[:5]}")
    if report["mathElements"] and not (report["mathjaxSrc"] and report["mjx"]
                                       and all(s.startswith(origin) for s in report["mathjaxSrc"])):
        problems.append(f"{where}: math not typeset by the site's own MathJax: {report['mathjaxSrc']}")
    for img in report["images"]:
        if not img["ok"]:
            problems.append(f"{where}: image did not load: {img['src']}")
    for link in broken_links(report["links"], html, origin):
        problems.append(f"{where}: broken link {link}")
    in_site = page[len("zh/"):] if lang == "zh" else page
    if in_site.startswith("notebooks/"):
        if report["codeCells"] and not report["highlightTokens"]:
            problems.append(f"{where}: code cells are not syntax-highlighted")
        if BEGIN in report["visibleText"]:
            problems.append(f"{where}: an exercise solution is visible (should be folded)")
        if report["solutionsFolded"] != report["solutions"]:
            problems.append(f"{where}: {report['solutions'] - report['solutionsFolded']} of "
                            f"{report['solutions']} exercise cells not folded behind '{WORDS[lang]['show']}'")
    other = counterpart(html / f"{page}.html", html)
    expected = f"{origin}/{other.relative_to(html).as_posix()}"
    if report["langSwitch"] != [expected]:
        problems.append(f"{where}: the language switch links {report['langSwitch']}, expected [{expected!r}]")
    return problems


@pytest.mark.browser
@pytest.mark.slow
def test_every_page_renders_offline_in_chromium(browser, site):
    html, origin = site
    chapters = _chapters()
    problems = []
    for page in [f"notebooks/{c}" for c in chapters] + EXTRA_PAGES:
        report, requested = _open(browser, f"{origin}/{page}.html")
        problems += _page_problems(report, requested, page, html, origin)
        if page == "index":
            nav = [urlsplit(u).path.lstrip("/") for u in report["nav"]]
            in_nav = [p[len("notebooks/"):-len(".html")] for p in nav if p.startswith("notebooks/")]
            if in_nav != chapters:
                problems.append(f"navigation lists chapters {in_nav}, the toc {chapters}")
    assert not problems, "\n".join(problems)


# The fonts Chromium used for the text of the first paragraph (or heading) with ten Chinese characters of its
# own: CSS.getPlatformFontsForNode reports each font and how many glyphs it drew. Boxes ("tofu") would come
# from a font without CJK glyphs, or from the last-resort font.
MARK_CJK_JS = r"""
(() => {
  const own = e => [...e.childNodes].filter(n => n.nodeType === 3).map(n => n.textContent).join('');
  const cjk = t => (t.match(/[\u3400-\u9fff]/g) || []).length;
  const el = [...document.querySelectorAll('article h1, article p, article li')].find(e => cjk(own(e)) >= 10);
  if (!el) return null;
  el.setAttribute('data-cjk-probe', '1');
  return own(el);
})()
"""


def _cjk_fonts(cdp):
    """(text probed, [(font family, glyphs drawn)]) for the page's first element with Chinese text."""
    text = cdp.evaluate(MARK_CJK_JS)
    if text is None:
        return None, []
    root = cdp.send("DOM.getDocument", depth=-1)["root"]["nodeId"]
    node = cdp.send("DOM.querySelector", nodeId=root, selector="[data-cjk-probe]")["nodeId"]
    fonts = cdp.send("CSS.getPlatformFontsForNode", nodeId=node)["fonts"]
    return text, [(f["familyName"], f["glyphCount"]) for f in fonts]


@pytest.mark.browser
@pytest.mark.slow
def test_every_chinese_page_renders_offline_with_a_cjk_font(browser, site):
    html, origin = site
    chapters = _chapters()
    translated = {p.stem for p in (ROOT / "notebooks" / "zh").glob("*.ipynb")}
    assert translated, "no Chinese chapter in notebooks/zh/"
    browser.send("DOM.enable")
    browser.send("CSS.enable")
    problems = []
    for page in [f"zh/notebooks/{c}" for c in chapters] + [f"zh/{p}" for p in ZH_PAGES]:
        report, requested = _open(browser, f"{origin}/{page}.html")
        problems += _page_problems(report, requested, page, html, origin, lang="zh")
        if report["htmlLang"] != "zh-CN":
            problems.append(f"{page}.html: <html lang={report['htmlLang']!r}>, expected 'zh-CN'")
        name = page.rsplit("/", 1)[-1]
        if page.startswith("zh/notebooks/") and name not in translated:
            if "本章还没有中文译本" not in report["visibleText"]:
                problems.append(f"{page}.html: an English chapter without the note that it is not translated")
            continue
        text, fonts = _cjk_fonts(browser)
        if text is None:
            problems.append(f"{page}.html: no paragraph with Chinese text")
            continue
        drawn = sum(n for family, n in fonts if CJK_FONT.search(family))
        if drawn < len(CJK_CHAR.findall(text)):
            problems.append(f"{page}.html: {len(CJK_CHAR.findall(text))} Chinese characters in {text[:30]!r}..., "
                            f"but CJK fonts drew {drawn} glyphs (fonts used: {fonts}); install a CJK font: "
                            f"`make chromium` (Debian's fonts-noto-cjk)")
        if page == "zh/index":
            nav = [urlsplit(u).path.lstrip("/") for u in report["nav"]]
            in_nav = [p[len("zh/notebooks/"):-len(".html")] for p in nav if p.startswith("zh/notebooks/")]
            if in_nav != chapters:
                problems.append(f"the Chinese navigation lists chapters {in_nav}, the toc {chapters}")
    assert not problems, "\n".join(problems)


@pytest.mark.browser
@pytest.mark.slow
def test_screenshot_of_a_chinese_chapter(browser, site):
    """A picture of the Chinese chapter 01's first section (Chinese text, formulas, a figure) to look at."""
    html, origin = site
    _open(browser, f"{origin}/zh/notebooks/01-convolution.html")
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
    browser.evaluate("""(async () => {
        const heading = document.querySelector('article section section h2') || document.querySelector('article h1');
        window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 90);
        await new Promise(r => setTimeout(r, 300));
        return true; })()""")
    shot = browser.send("Page.captureScreenshot", format="png")
    ZH_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    ZH_SCREENSHOT.write_bytes(b64decode(shot["data"]))
    print(f"\nscreenshot of the Chinese chapter 01: {ZH_SCREENSHOT}")
    assert ZH_SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and ZH_SCREENSHOT.stat().st_size > 20_000


@pytest.mark.browser
@pytest.mark.slow
def test_screenshot_of_chapter_00(browser, site):
    """A picture of chapter 00's first section, with its formula and its figure, for a person to look at."""
    html, origin = site
    _open(browser, f"{origin}/notebooks/{_chapters()[0]}.html")
    browser.send("Emulation.setDeviceMetricsOverride", width=1280, height=1000, deviceScaleFactor=1, mobile=False)
    browser.evaluate("""(async () => {
        const img = document.querySelector('article img');
        const section = img ? img.closest('section') : null;
        const heading = section ? section.querySelector('h1, h2, h3') : document.querySelector('article');
        window.scrollTo(0, heading.getBoundingClientRect().top + window.scrollY - 90);
        await new Promise(r => setTimeout(r, 300));
        return true; })()""")
    shot = browser.send("Page.captureScreenshot", format="png")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    SCREENSHOT.write_bytes(b64decode(shot["data"]))
    print(f"\nscreenshot of chapter 00: {SCREENSHOT}")
    assert SCREENSHOT.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and SCREENSHOT.stat().st_size > 20_000


# ---------------------------------------------------------------- bad input, and checks that can fail

def _stand_ins(folder: Path, names):
    """Minimal chapter notebooks, only for the error-path tests below."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(f"# {name}")])
        nbformat.write(nb, folder / f"{name}.ipynb")


def test_the_toc_lists_the_course_in_order():
    assert _chapters() == ["00-introduction", "01-convolution", "02-relu-and-pooling",
                           "03-transposed-convolution", "04-skip-connections", "05-backpropagation",
                           "05b-optimizers-dropout-init", "06-scratch-vs-keras", "06b-bring-your-own-model",
                           "07-losses-and-metrics",
                           "08-training", "09-going-fast", "10-the-original-paper", "11-capstone",
                           "12-your-own-data", "A-troubleshooting"]


def test_a_notebook_missing_from_the_toc_fails_the_build(tmp_path, capsys):
    _stand_ins(tmp_path / "nb", _chapters() + ["11-not-in-the-toc"])
    with pytest.raises(BookError, match=r"11-not-in-the-toc\.ipynb is not in the table of contents"):
        check_toc(TOC, tmp_path / "nb", ROOT / "book")
    assert main(["--notebooks", str(tmp_path / "nb"), "--out", str(tmp_path / "out")]) == 2
    assert "11-not-in-the-toc" in capsys.readouterr().err
    assert not (tmp_path / "out").exists(), "nothing is built from a bad toc"


def test_a_toc_entry_without_its_notebook_fails_the_build(tmp_path, capsys):
    _stand_ins(tmp_path / "nb", [c for c in _chapters() if c != "05-backpropagation"])
    with pytest.raises(BookError, match=r"names chapter notebooks/05-backpropagation, but .*05-backpropagation"
                                        r"\.ipynb does not exist"):
        check_toc(TOC, tmp_path / "nb", ROOT / "book")
    assert main(["--notebooks", str(tmp_path / "nb"), "--out", str(tmp_path / "out")]) == 2
    assert "05-backpropagation" in capsys.readouterr().err


def test_the_stand_ins_pass_the_toc_check(tmp_path):
    """The error-path tests above fail for the reason they name, not for another."""
    _stand_ins(tmp_path / "nb", _chapters())
    assert check_toc(TOC, tmp_path / "nb", ROOT / "book") == _chapters()


def test_fold_solutions_tags_exercise_cells_only():
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell(f"def f():\n    {BEGIN}\n    return 1\n    ### END SOLUTION\ncheck(f)"),
        nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(1)"),
    ])
    assert fold_solutions(nb) == 1
    assert "tags" not in nb.cells[0].metadata
    assert nb.cells[1].metadata["tags"] == ["hide-input"]
    assert nb.cells[1].metadata["mystnb"]["code_prompt_show"] == "Show the solution"
    assert nb.cells[2].source == "print(1)"


def test_the_chinese_toc_is_the_english_chapters_in_the_english_order():
    toc = chinese_toc(ROOT / "book" / "zh", _chapters())
    listed = [f[len("notebooks/"):] for f in toc_files(toc) if f.startswith("notebooks/")]
    assert listed == _chapters()
    assert toc["root"] == "index" and {"article", "glossary", "references"} <= set(toc_files(toc))


def test_a_chinese_toc_that_lists_chapters_itself_is_refused(tmp_path):
    (tmp_path / "_toc.yml").write_text("format: jb-book\nroot: index\nparts:\n  - caption: x\n    chapters:\n"
                                       "      - file: notebooks/00-introduction\n")
    with pytest.raises(BookError, match="exactly one part must say `chapters: english`"):
        chinese_toc(tmp_path, ["00-introduction"])


def test_the_chinese_config_is_the_english_one_in_chinese():
    """book/zh/_config.yml may differ from book/_config.yml only in its title, footer and language."""
    en = yaml.safe_load((ROOT / "book" / "_config.yml").read_text())
    zh = yaml.safe_load((ROOT / "book" / "zh" / "_config.yml").read_text())
    assert zh["sphinx"]["config"].pop("language") == "zh_CN"
    for cfg in (en, zh):
        cfg.pop("title"), cfg["html"].pop("extra_footer")
    assert zh == en


def test_stage_chinese_takes_the_translations_and_notes_the_rest(tmp_path):
    chapters = _chapters()
    _stand_ins(tmp_path / "nb", chapters)
    _stand_ins(tmp_path / "nb" / "zh", chapters[:1])
    zh_nb = nbformat.read(tmp_path / "nb" / "zh" / f"{chapters[0]}.ipynb", as_version=4)
    zh_nb.cells[0].source = "# 中文"
    zh_nb.cells.append(nbformat.v4.new_code_cell(f"def f():\n    {BEGIN}\n    return 1\n    ### END SOLUTION"))
    nbformat.write(zh_nb, tmp_path / "nb" / "zh" / f"{chapters[0]}.ipynb")
    folded, translated = stage_chinese(ROOT / "book", tmp_path / "nb" / "zh", tmp_path / "nb", chapters,
                                       tmp_path / "src")
    assert translated == chapters[:1] and folded == 1
    first = nbformat.read(tmp_path / "src" / "notebooks" / f"{chapters[0]}.ipynb", as_version=4)
    assert first.cells[0].source == "# 中文" and first.cells[1].metadata["mystnb"]["code_prompt_show"] == "显示答案"
    second = nbformat.read(tmp_path / "src" / "notebooks" / f"{chapters[1]}.ipynb", as_version=4)
    assert [c.source for c in second.cells] == [f"# {chapters[1]}", UNTRANSLATED_NOTE]
    assert (tmp_path / "src" / "references.md").read_text() == (ROOT / "book" / "references.md").read_text()
    assert "术语表" in (tmp_path / "src" / "glossary.md").read_text()
    _stand_ins(tmp_path / "nb" / "zh", ["99-no-such-chapter"])
    with pytest.raises(BookError, match="Chinese chapters without an English chapter.*99-no-such-chapter"):
        stage_chinese(ROOT / "book", tmp_path / "nb" / "zh", tmp_path / "nb", chapters, tmp_path / "src")


def test_chinese_lines_are_joined_where_a_browser_would_draw_a_space():
    from build_book import join_cjk_lines
    src = "分割网络给每个像素\n一个标签：\n  对两类问题，\nEnglish stays\n分开。\n```\n# 代码\n# 不动\n```"
    assert join_cjk_lines(src) == "分割网络给每个像素一个标签：对两类问题，\nEnglish stays\n分开。\n```\n# 代码\n# 不动\n```"


def test_every_page_gets_a_switch_to_the_same_page_in_the_other_language(tmp_path):
    page = '<html><div class="article-header-buttons"></div></html>'
    for rel in ["index.html", "notebooks/00-a.html", "glossary.html", "zh/index.html", "zh/notebooks/00-a.html",
                "zh/article.html", "_static/x.html", "zh/_static/y.html"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text(page)
    assert add_language_switches(tmp_path) == 6
    assert add_language_switches(tmp_path) == 0                 # once per page
    href = lambda rel: re.search(r'lang-switch" href="([^"]+)"', (tmp_path / rel).read_text())  # noqa: E731
    assert href("notebooks/00-a.html")[1] == "../zh/notebooks/00-a.html"
    assert href("zh/notebooks/00-a.html")[1] == "../../notebooks/00-a.html"
    assert href("glossary.html")[1] == "zh/index.html"          # no Chinese glossary here: the Chinese home
    assert href("zh/article.html")[1] == "../index.html"        # a page only in Chinese: the English home
    assert ">中文</a>" in (tmp_path / "index.html").read_text()
    assert ">English</a>" in (tmp_path / "zh/index.html").read_text()
    assert href("_static/x.html") is None and href("zh/_static/y.html") is None
    assert counterpart(tmp_path / "zh" / "index.html", tmp_path) == tmp_path / "index.html"


def test_links_to_book_pages_work_in_jupyterlab_and_on_the_site():
    src = ("[the paper](../book/references.md#ronneberger-2015), [terms](../book/glossary.md), "
           "[chapter 1](01-convolution.ipynb), [arXiv](https://arxiv.org/abs/1505.04597)")
    assert rewrite_book_links(src) == ("[the paper](#ronneberger-2015), [terms](../glossary.md), "
                                       "[chapter 1](01-convolution.ipynb), [arXiv](https://arxiv.org/abs/1505.04597)")
    labels = re.findall(r"^\((\S+)\)=$", (ROOT / "book" / "references.md").read_text(), flags=re.M)
    assert "ronneberger-2015" in labels and "source-article" in labels
    zh = ("[术语表](../../book/zh/glossary.md)、[论文](../../book/references.md#ronneberger-2015)、"
          "[第 01 章](01-convolution.ipynb)")
    assert rewrite_book_links(zh) == "[术语表](../glossary.md)、[论文](#ronneberger-2015)、[第 01 章](01-convolution.ipynb)"


def test_the_checks_can_fail(tmp_path):
    assert requests_leaving(["http://127.0.0.1:8000/a.js", "data:image/png;base64,xx", "blob:http://x/1"]) == []
    cdn = "https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"
    assert requests_leaving(["http://localhost/x", cdn]) == [cdn]
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1>')
    origin = "http://127.0.0.1:1"
    assert broken_links([f"{origin}/a.html#top", "https://example.org/x"], tmp_path, origin) == []
    assert len(broken_links([f"{origin}/a.html#nope", f"{origin}/b.html"], tmp_path, origin)) == 2
    assert raw_tex("a $$x$$ b") and raw_tex(r"c \(x\) d") and raw_tex(r"e $\alpha + 1$ f")
    assert raw_tex("costs $5 and $6, the 2x2 kernel") == []


def test_display_math_goes_on_lines_of_its_own_and_code_is_left_alone():
    src = "Cross-correlation:\n$$y = x \\star w$$.\nThen $s$ and `$$not math$$`."
    out = display_math_blocks(src)
    assert "\n$$\ny = x \\star w.\n$$\n" in out
    assert "`$$not math$$`" in out and "Then $s$" in out


# ---------------------------------------------------------------- finding the browser on a student's laptop

def test_find_chrome_on_linux_macos_and_from_chrome(tmp_path):
    exe = tmp_path / "chrome"
    exe.write_text("#!/bin/sh\n")
    exe.chmod(0o755)
    nothing = lambda name: None  # noqa: E731
    assert find_chrome({}, which=nothing, home=tmp_path) is None
    assert find_chrome({"CHROME": str(exe)}, which=nothing, home=tmp_path) == str(exe)
    assert find_chrome({}, which=lambda n: f"/usr/bin/{n}" if n == "google-chrome-stable" else None,
                       home=tmp_path) == "/usr/bin/google-chrome-stable"
    assert find_chrome({}, which=lambda n: f"/usr/bin/{n}", home=tmp_path) == "/usr/bin/chromium"
    app = tmp_path / "Applications" / "Chromium.app" / "Contents" / "MacOS" / "Chromium"
    app.parent.mkdir(parents=True)
    app.write_text("#!/bin/sh\n")
    app.chmod(0o755)
    assert find_chrome({}, which=nothing, home=tmp_path) == str(app)        # ~/Applications on macOS
    assert "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome" in candidates(tmp_path)
    with pytest.raises(ValueError, match="CHROME='/no/such/chrome' is not an executable"):
        find_chrome({"CHROME": "/no/such/chrome"}, which=nothing, home=tmp_path)


def test_no_browser_skips_on_a_laptop_and_fails_in_ci(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "find_chrome", lambda env: None)
    with pytest.raises(pytest.skip.Exception, match="no Chrome or Chromium found.*apt-get install chromium"):
        _chromium({})
    with pytest.raises(pytest.fail.Exception, match="CI is set, so the browser test is mandatory"):
        _chromium({"CI": "true"})
