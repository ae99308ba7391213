"""The built book in a real browser: math typeset offline, every image loaded, nothing remote.

The book is built once per session (the ``book_html`` fixture of conftest.py), served on
127.0.0.1 and opened in headless Chromium (Debian's ``chromium``, installed by .ci/run),
driven over the Chrome DevTools protocol.  The machine may have no network at all: MathJax
must come from the book itself (``make mathjax``), not from a CDN.
"""

from __future__ import annotations

import base64
import functools
import http.server
import io
import json
import re
import shutil
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import yaml

from tests._env import skip_unless_ci

ROOT = Path(__file__).resolve().parents[1]
PAGE_TIMEOUT_S = 60
SCREENSHOT_PAGE = "book/focal-loss.html"
SCREENSHOT_ANCHOR = "reproducing-figure-1-of-the-paper"

# Hosts that would serve scripts or styles to a reader's browser.  The launch buttons are
# plain links and the "thebe" live-code script is only fetched on a click, so they are
# not resources of the page; everything a page *loads* must come from the book.
REMOTE_SCRIPT_HOSTS = ("cdn.jsdelivr.net", "cdnjs.cloudflare.com", "polyfill.io")
LOADED_RESOURCE = re.compile(
    r"<(?:script|img|iframe|source)\b[^>]*\bsrc=[\"']([^\"']+)[\"']"
    r"|<link\b[^>]*\bhref=[\"']([^\"']+)[\"'][^>]*>",
    re.IGNORECASE,
)

# Runs in each page once it has loaded: waits for MathJax's first typesetting pass and for
# every image, then reports what a reader would see.
PAGE_REPORT_JS = """
(async () => {
  const mj = window.MathJax;
  if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
  await Promise.all([...document.images].map((img) => {
    img.loading = "eager";
    return img.complete ? null
      : new Promise((done) => { img.onload = img.onerror = done; });
  }));
  const math = [...document.querySelectorAll(".math")];
  return {
    mathjax_version: (mj && mj.version) || null,
    math: math.length,
    typeset: document.querySelectorAll("mjx-container").length,
    untypeset: math.filter((el) => !el.querySelector("mjx-container"))
                   .map((el) => el.textContent.slice(0, 80)),
    tex_errors: [...document.querySelectorAll("mjx-merror")]
                   .map((el) => el.textContent.slice(0, 80)),
    images: document.images.length,
    broken_images: [...document.images]
                   .filter((img) => !(img.complete && img.naturalWidth > 0))
                   .map((img) => img.getAttribute("src")),
  };
})()
"""


def _book_pages() -> list[str]:
    """The HTML path of every page in _toc.yml, relative to the build's root."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    entries = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                entries.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", []))
    return [re.sub(r"\.(md|ipynb)$", "", entry) + ".html" for entry in entries]


# --------------------------------------------------------------------------------------
# Without a browser: the HTML references no remote script or style.
# --------------------------------------------------------------------------------------


@pytest.mark.book
def test_built_pages_load_nothing_from_other_hosts(book_html):
    offenders = {}
    for page in sorted(book_html.rglob("*.html")):
        text = page.read_text(encoding="utf-8")
        remote = [
            url
            for match in LOADED_RESOURCE.finditer(text)
            for url in match.groups()
            if url and re.match(r"^(https?:)?//", url) and not _is_plain_link(match.group(0))
        ]
        remote += [host for host in REMOTE_SCRIPT_HOSTS if host in text]
        if remote:
            offenders[str(page.relative_to(book_html))] = remote
    assert not offenders, f"pages that load resources from other hosts: {offenders}"


def _is_plain_link(tag: str) -> bool:
    """A <link> that a browser does not fetch on load (rel=canonical, next, ...)."""
    if not tag.lower().startswith("<link"):
        return False
    rel = re.search(r"\brel=[\"']([^\"']+)[\"']", tag, re.IGNORECASE)
    fetched = {"stylesheet", "preload", "modulepreload", "icon", "manifest"}
    return rel is not None and not (set(rel.group(1).lower().split()) & fetched)


@pytest.mark.book
def test_mathjax_is_served_from_the_book(book_html):
    chapter = (book_html / SCREENSHOT_PAGE).read_text(encoding="utf-8")
    scripts = re.findall(r"<script\b[^>]*\bsrc=[\"']([^\"']*mathjax[^\"']*)[\"']", chapter)
    assert scripts, f"{SCREENSHOT_PAGE} loads no MathJax"
    for src in scripts:
        local = (book_html / Path(SCREENSHOT_PAGE).parent / src.split("?")[0]).resolve()
        assert local.is_file(), f"MathJax script {src} is not in the built book"


# --------------------------------------------------------------------------------------
# In headless Chromium.
# --------------------------------------------------------------------------------------


class _DevTools:
    """A minimal Chrome DevTools protocol client over one browser websocket."""

    def __init__(self, url: str):
        import websocket

        # suppress_origin: Chromium refuses websocket clients that send an Origin header
        # unless started with --remote-allow-origins.
        self._ws = websocket.create_connection(url, timeout=PAGE_TIMEOUT_S, suppress_origin=True)
        self._next_id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, session: str | None = None):
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._ws.send(json.dumps(message))
        while True:
            reply = json.loads(self._ws.recv())
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise RuntimeError(f"{method} failed: {reply['error']}")
                return reply.get("result", {})
            self.events.append(reply)

    def wait_for(self, method: str, session: str, deadline: float) -> dict:
        """The first event ``method`` of ``session`` not seen yet, waiting until ``deadline``."""
        while True:
            for index, event in enumerate(self.events):
                if event.get("method") == method and event.get("sessionId") == session:
                    return self.events.pop(index)
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {method} event within {PAGE_TIMEOUT_S} s")
            self.events.append(json.loads(self._ws.recv()))

    def close(self):
        self._ws.close()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@pytest.fixture(scope="session")
def server(book_html):
    """An HTTP server on 127.0.0.1 (a free port) serving the built HTML."""
    handler = functools.partial(_QuietHandler, directory=str(book_html))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # silence the per-request log
        pass


@pytest.fixture(scope="session")
def browser(tmp_path_factory):
    """Headless Chromium with DevTools on a free port; skipped only where it is missing."""
    binary = _chromium()
    if binary is None:
        skip_unless_ci("chromium is not installed (CI installs Debian's chromium in .ci/run)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    process = subprocess.Popen(
        [
            binary,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-extensions",
            "--no-first-run",
            "--no-default-browser-check",
            "--hide-scrollbars",
            "--window-size=1280,1400",
            f"--user-data-dir={profile}",
            "--remote-debugging-port=0",
            "about:blank",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # With port 0, Chromium writes the port and the browser's websocket path here.
    active_port = profile / "DevToolsActivePort"
    deadline = time.monotonic() + PAGE_TIMEOUT_S
    while not (active_port.is_file() and len(active_port.read_text().splitlines()) >= 2):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"chromium did not start (exit code {process.poll()})")
        time.sleep(0.1)
    port, path = active_port.read_text().splitlines()[:2]
    devtools = _DevTools(f"ws://127.0.0.1:{port}{path}")
    try:
        yield devtools
    finally:
        devtools.close()
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _open(browser: _DevTools, url: str) -> tuple[str, str]:
    """Open ``url`` in a new tab, wait for its load event; returns (target, session)."""
    target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
    session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})[
        "sessionId"
    ]
    browser.send("Page.enable", session=session)
    browser.send("Network.enable", session=session)
    browser.send("Page.navigate", {"url": url}, session=session)
    browser.wait_for("Page.loadEventFired", session, time.monotonic() + PAGE_TIMEOUT_S)
    return target, session


def _evaluate(browser: _DevTools, session: str, expression: str):
    result = browser.send(
        "Runtime.evaluate",
        {"expression": expression, "awaitPromise": True, "returnByValue": True},
        session=session,
    )
    if "exceptionDetails" in result:
        raise RuntimeError(f"the page's script failed: {result['exceptionDetails']}")
    return result["result"].get("value")


@pytest.mark.book
@pytest.mark.parametrize("page", _book_pages())
def test_page_renders_offline(browser, server, book_html, page):
    """Math typeset by the book's own MathJax, every image loaded, no request elsewhere."""
    assert (book_html / page).is_file(), f"{page} was not built"
    target, session = _open(browser, f"{server}/{page}")
    try:
        report = _evaluate(browser, session, PAGE_REPORT_JS)
        requested = [
            event["params"]["request"]["url"]
            for event in browser.events
            if event.get("method") == "Network.requestWillBeSent"
            and event.get("sessionId") == session
        ]
    finally:
        browser.events = [e for e in browser.events if e.get("sessionId") != session]
        browser.send("Target.closeTarget", {"targetId": target})

    elsewhere = [url for url in requested if not url.startswith((server, "data:", "blob:"))]
    assert not elsewhere, f"{page} requested resources from other hosts: {elsewhere}"
    assert not report["broken_images"], f"{page}: images that did not load: {report}"
    source = (book_html / page).read_text(encoding="utf-8")
    if 'class="math' in source:
        assert report["mathjax_version"], f"{page}: MathJax did not load: {report}"
        assert report["mathjax_version"].startswith("3."), report
        assert report["typeset"] >= report["math"] > 0, f"{page}: math not typeset: {report}"
        assert not report["untypeset"], f"{page}: formulas left as TeX: {report}"
        assert not report["tex_errors"], f"{page}: TeX errors: {report}"
    if "/_images/" in source:
        assert report["images"] > 0, f"{page}: the figures are missing: {report}"


@pytest.mark.book
def test_screenshot_of_a_chapter_is_not_blank(browser, server, tmp_path):
    """A screenshot of focal-loss.html at its Figure 1 shows text, math and the figure."""
    from PIL import Image as image_module
    from PIL import ImageStat as stat_module

    target, session = _open(browser, f"{server}/{SCREENSHOT_PAGE}#{SCREENSHOT_ANCHOR}")
    try:
        report = _evaluate(browser, session, PAGE_REPORT_JS)
        assert report["typeset"] > 0 and not report["broken_images"], report
        _evaluate(
            browser,
            session,
            f"document.getElementById('{SCREENSHOT_ANCHOR}').scrollIntoView()",
        )
        shot = browser.send("Page.captureScreenshot", {"format": "png"}, session=session)
    finally:
        browser.send("Target.closeTarget", {"targetId": target})

    png = base64.b64decode(shot["data"])
    (tmp_path / "focal-loss.png").write_bytes(png)
    image = image_module.open(io.BytesIO(png)).convert("L")
    assert image.size[0] >= 800 and image.size[1] >= 600, image.size
    spread = stat_module.Stat(image).stddev[0]
    colours = len(image.getcolors(maxcolors=256 * 256) or [])
    assert spread > 20 and colours > 16, (
        f"the screenshot looks blank (grey-level spread {spread:.1f}, {colours} levels); "
        f"it is in {tmp_path}"
    )


# ------------------------------------------------------- from a chapter to its exercise


def _course_links():
    from grading.release import _course_links as load

    return load()


def _exercise_chapters() -> list[str]:
    return [
        path.stem
        for path in sorted((ROOT / "book").glob("*.md"))
        if ":::{assignment}" in path.read_text(encoding="utf-8")
    ]


@pytest.mark.book
@pytest.mark.parametrize("chapter", _exercise_chapters())
def test_exercise_section_opens_the_exercise_notebook(browser, server, chapter):
    """The links a reader clicks in a chapter's Exercise section: the notebook in the
    repository, then Binder, Colab and (when configured) JupyterHub, each opening that
    notebook on the student branch; the notebook exists in exercises/."""
    links = _course_links()
    settings = links.Settings.load(ROOT)
    target, session = _open(browser, f"{server}/book/{chapter}.html")
    try:
        found = _evaluate(
            browser,
            session,
            "[...document.querySelectorAll('.course-assignment a')]"
            ".map((a) => [a.className, a.href, a.textContent])",
        )
    finally:
        browser.send("Target.closeTarget", {"targetId": target})
    notebooks = [u for c, u, _ in found if "course-notebook-link" in c]
    assert notebooks, f"{chapter}: no exercise link in {found}"
    for url in notebooks:
        path = url.split(f"/blob/{settings.student_branch}/", 1)[1]
        assert (ROOT / path).is_file(), url
        assert url == links.repository_url(settings, path)
        launches = {
            kind.removeprefix("launch-"): u
            for c, u, _ in found
            for kind in c.split()
            if kind.startswith("launch-") and path in unquote(u)
        }
        assert launches.get("binder") == links.binder_url(settings, path), found
        assert launches.get("colab") == links.colab_url(settings, path), found
        hub = links.jupyterhub_url(settings, path)
        assert launches.get("jupyterhub") == hub, found  # absent while no hub is configured


def _exercise_chapter_links() -> list[str]:
    import nbformat

    found = set()
    for path in sorted((ROOT / "exercises").glob("a*/*.ipynb")):
        nb = nbformat.read(str(path), as_version=4)
        for cell in nb.cells:
            if cell.cell_type == "markdown":
                found.update(re.findall(r"\]\(([^)\s]+/book/[^)\s]+)\)", cell.source))
    return sorted(found)


@pytest.mark.book
def test_exercise_links_reach_built_chapters(browser, server):
    """Every link from an exercise notebook to the book is a built page of the published
    book (its address under html.baseurl), with the section it names."""
    settings = _course_links().Settings.load(ROOT)
    urls = _exercise_chapter_links()
    assert urls
    missing = []
    for url in urls:
        assert url.startswith(settings.book_url), url
        local = f"{server}/{url.removeprefix(settings.book_url)}"
        anchor = local.split("#", 1)[1] if "#" in local else ""
        target, session = _open(browser, local)
        try:
            section = f"document.getElementById({json.dumps(anchor)})" if anchor else "true"
            ok = _evaluate(
                browser,
                session,
                f"Boolean(document.querySelector('main h1')) && Boolean({section})",
            )
        finally:
            browser.send("Target.closeTarget", {"targetId": target})
        if not ok:
            missing.append(url)
    assert not missing, f"exercise links to pages or sections that were not built: {missing}"
