"""`make book`: the course website builds offline from the notebooks and works in a real browser.

The book is built from notebooks/ and book/_toc.yml into a temporary folder, served on 127.0.0.1, and
every page is opened in headless Chromium, driven through the Chrome DevTools Protocol (CDP) over a
websocket. For each page: math typeset by the MathJax shipped with the site (no raw TeX left), every
image loaded, no request to anything but this machine, every local link pointing at an existing file
and anchor, code highlighted, exercise solutions folded. A screenshot of chapter 00 is saved to
book/_build/screenshot-00.png. The browser is found by tools/find_chrome.py (Chrome or Chromium, Linux or
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
from build_book import (BEGIN, BookError, build, check_toc, display_math_blocks, fold_solutions, main,  # noqa: E402
                        rewrite_book_links, toc_files)

TOC = ROOT / "book" / "_toc.yml"
SCREENSHOT = ROOT / "book" / "_build" / "screenshot-00.png"
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--no-first-run"]
LOCAL_HOSTS = {"127.0.0.1", "localhost"}
EXTRA_PAGES = ["index", "running-the-course", "glossary", "references"]


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
                                          && /Show the solution/.test(c.querySelector('summary').textContent)).length,
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
    before = _digest(ROOT / "notebooks")
    t0 = time.perf_counter()
    try:
        index, error = build(ROOT / "notebooks", ROOT / "book", TOC, out, quiet=True), None
    except BookError as e:
        error = str(e)
    if error:
        pytest.fail(f"the book does not build: {error}", pytrace=False)
    print(f"\nbook built in {time.perf_counter() - t0:.1f} s")
    assert _digest(ROOT / "notebooks") == before, "building the book modified notebooks/"
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

@pytest.mark.browser
@pytest.mark.slow
def test_every_page_renders_offline_in_chromium(browser, site):
    html, origin = site
    chapters = _chapters()
    problems = []
    for page in [f"notebooks/{c}" for c in chapters] + EXTRA_PAGES:
        report, requested = _open(browser, f"{origin}/{page}.html")
        where = f"{page}.html"
        if report["title"].startswith("404") or "Error response" in report["title"]:
            problems.append(f"{where}: not found")
            continue
        if not any(url.startswith(f"{origin}/_static/") for url in requested):
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
        if page.startswith("notebooks/"):
            if report["codeCells"] and not report["highlightTokens"]:
                problems.append(f"{where}: code cells are not syntax-highlighted")
            if BEGIN in report["visibleText"]:
                problems.append(f"{where}: an exercise solution is visible (should be folded)")
            if report["solutionsFolded"] != report["solutions"]:
                problems.append(f"{where}: {report['solutions'] - report['solutionsFolded']} of "
                                f"{report['solutions']} exercise cells not folded behind 'Show the solution'")
        if page == "index":
            nav = [urlsplit(u).path.lstrip("/") for u in report["nav"]]
            in_nav = [p[len("notebooks/"):-len(".html")] for p in nav if p.startswith("notebooks/")]
            if in_nav != chapters:
                problems.append(f"navigation lists chapters {in_nav}, the toc {chapters}")
    assert not problems, "\n".join(problems)


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
                           "05b-optimizers-dropout-init", "06-scratch-vs-keras", "07-losses-and-metrics",
                           "08-training", "09-going-fast", "10-the-original-paper", "11-capstone",
                           "A-troubleshooting"]


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


def test_links_to_book_pages_work_in_jupyterlab_and_on_the_site():
    src = ("[the paper](../book/references.md#ronneberger-2015), [terms](../book/glossary.md), "
           "[chapter 1](01-convolution.ipynb), [arXiv](https://arxiv.org/abs/1505.04597)")
    assert rewrite_book_links(src) == ("[the paper](#ronneberger-2015), [terms](../glossary.md), "
                                       "[chapter 1](01-convolution.ipynb), [arXiv](https://arxiv.org/abs/1505.04597)")
    labels = re.findall(r"^\((\S+)\)=$", (ROOT / "book" / "references.md").read_text(), flags=re.M)
    assert "ronneberger-2015" in labels and "source-article" in labels


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
