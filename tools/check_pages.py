#!/usr/bin/env python3
"""Check the built book in a real browser, as its readers see it.

Serves ``_build/html`` on 127.0.0.1, loads every page in headless Chromium (Debian's
``chromium``) with no network beyond that server, and prints one line per problem::

    book/scores.html: code cell 3 in #leep (longest line 112 characters) "import matplotlib…" is
        852 px wide in a 684 px box (cut off or scrolled)

(on one line; the label names the section, and the start of the cell's text).

Problems (at 1280 px wide, the exit status is 1 when there is any):

* a text output, code cell or table wider than its column;
* an image that did not load (or any page resource that answered with an error);
* a figure displayed below 90 % of its natural width;
* raw TeX left unrendered in the text (``$x$``, ``\\(``, ``\\[``, ``\\begin{``);
* a dead internal link or anchor (checked on the HTML files themselves).

It saves a full-page screenshot of every page under ``_build/screenshots/1280/`` and, for
looking at only, one at 390 px (a phone) under ``_build/screenshots/390/``.

Chromium is driven over the Chrome DevTools Protocol on a pipe (``--remote-debugging-pipe``),
so nothing beyond the standard library is needed. Usage::

    python tools/check_pages.py [--html _build/html] [--screenshots DIR] [--no-phone]

The functions above ``Chromium`` are pure (no browser) and unit-tested in
``tests/test_check_pages.py``.
"""

from __future__ import annotations

import argparse
import base64
import functools
import http.server
import json
import os
import re
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

DESKTOP_WIDTH = 1280
PHONE_WIDTH = 390
MIN_FIGURE_RATIO = 0.90
TOLERANCE_PX = 1.0
"""Sub-pixel rounding that is not a problem."""

SKIP_DIRS = {"_static", "_sources", "_images", "_downloads", ".doctrees", "_panels_static"}

# ---------------------------------------------------------------------------------------
# Pure parts: which pages, dead links, raw TeX, and the verdict on measured sizes.
# ---------------------------------------------------------------------------------------


def html_pages(root: Path) -> list[str]:
    """Every HTML page of a built site, as paths relative to ``root`` (``/``-separated)."""
    root = Path(root)
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root)
        if rel.parts and rel.parts[0] in SKIP_DIRS:
            continue
        pages.append(rel.as_posix())
    return pages


class _LinkParser(HTMLParser):
    """Collects ids/names (anchor targets) and internal references of one page."""

    REFERENCES = {"a": "href", "area": "href", "link": "href", "img": "src", "script": "src",
                  "iframe": "src", "source": "src", "video": "src", "audio": "src", "embed": "src"}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.anchors: set[str] = set()
        self.references: list[tuple[str, str]] = []  # (tag, url)
        self.redirect: str | None = None  # <meta http-equiv="refresh" content="0; url=...">

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if attrs.get("id"):
            self.anchors.add(attrs["id"])
        if tag == "a" and attrs.get("name"):
            self.anchors.add(attrs["name"])
        if tag == "meta" and (attrs.get("http-equiv") or "").lower() == "refresh":
            match = re.search(r"url\s*=\s*['\"]?([^'\"\s]+)", attrs.get("content") or "", re.I)
            if match:
                self.redirect = match.group(1)
                self.references.append(("meta refresh", self.redirect))
        key = self.REFERENCES.get(tag)
        if key and attrs.get(key):
            self.references.append((tag, attrs[key].strip()))

    handle_startendtag = handle_starttag


def _parse(path: Path) -> _LinkParser:
    parser = _LinkParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser


def is_redirect(path: Path) -> bool:
    """Whether a page only sends the reader on (``<meta http-equiv="refresh">``, e.g. index.html)."""
    return _parse(Path(path)).redirect is not None


def _is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) or url.startswith("//")


def dead_links(root: Path, pages: list[str] | None = None) -> list[str]:
    """Internal links, anchors and resources of a built site that point nowhere.

    Parameters
    ----------
    root : Path
        The site's folder (``_build/html``).
    pages : list of str, optional
        Pages to check (default: :func:`html_pages`).

    Returns
    -------
    list of str
        One line per problem, ``"<page>: <what>"``.
    """
    root = Path(root).resolve()
    pages = html_pages(root) if pages is None else pages
    parsed: dict[Path, _LinkParser] = {}

    def page(path: Path) -> _LinkParser:
        if path not in parsed:
            parsed[path] = _parse(path)
        return parsed[path]

    problems = []
    for name in pages:
        source = root / name
        seen = set()
        for tag, url in page(source).references:
            if _is_external(url) or url.startswith(("data:", "blob:", "javascript:")) or (tag, url) in seen:
                continue
            seen.add((tag, url))
            parts = urlsplit(url)
            what = "link" if tag in ("a", "area") else f"{tag} resource"
            if parts.path:
                target = (source.parent / unquote(parts.path)).resolve()
                if parts.path.endswith("/") or target.is_dir():
                    target = target / "index.html"
                try:
                    target.relative_to(root)
                except ValueError:
                    problems.append(f"{name}: {what} {url!r} points outside the site")
                    continue
                if not target.is_file():
                    problems.append(f"{name}: dead {what} {url!r} (no file {target.relative_to(root).as_posix()})")
                    continue
            else:
                target = source
            fragment = unquote(parts.fragment)
            if fragment and target.suffix == ".html" and fragment not in page(target).anchors:
                where = "on this page" if target == source else f"in {target.relative_to(root).as_posix()}"
                problems.append(f"{name}: dead anchor {url!r} (no id {fragment!r} {where})")
    return problems


_TEX_PATTERNS = [
    (re.compile(r"\\\(.{0,300}?\\\)|\\\[.{0,1000}?\\\]|\\[(\[]", re.S), "math delimiters"),
    (re.compile(r"\\begin\{([A-Za-z*]+)\}(?:.{0,1000}?\\end\{\1\})?", re.S), "an environment"),
    (re.compile(r"(?<![\w$\\])\$\$?(?=[^\s$])[^$\n]{1,300}?(?<=[^\s\\$])\$\$?(?![\w$])"), "dollar math"),
    (re.compile(r"\\(?:frac|tfrac|mathbb|mathrm|mathcal|operatorname|sum|sqrt|alpha|beta|sigma|mu|lambda|"
                r"tau|theta|left|right|cdot|top|text|hat|bar|tilde|le|ge|in|lVert|rVert)(?![A-Za-z])"),
     "a TeX command"),
]


def find_raw_tex(text: str) -> list[str]:
    """Fragments of ``text`` that look like TeX a reader should not see, one per stretch.

    Examples
    --------
    >>> find_raw_tex(r"the score \\(\\mathrm{NC}_1\\) is")
    ['\\\\(\\\\mathrm{NC}_1\\\\)']
    >>> find_raw_tex("costs $5 and 6 $ each, or $7")
    []
    """
    spans = sorted(m.span() for pattern, _ in _TEX_PATTERNS for m in pattern.finditer(text))
    merged: list[list[int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    hits = []
    for start, end in merged:
        snippet = " ".join(text[start:end].split())
        hits.append(snippet if len(snippet) <= 60 else snippet[:59] + "…")
    return hits


@dataclass
class Box:
    """What the browser measured of one element (CSS pixels)."""

    kind: str            # "code cell", "text output", "table", "figure", "image", ...
    label: str           # how a reader finds it: number, section and the start of its text
    content: float       # width of what is inside (scrollWidth or the table's width)
    box: float           # width it is given (clientWidth of the element or its wrapper)
    column: float        # width of the text column it sits in
    natural: float = 0.0     # images: natural width
    displayed: float = 0.0   # images: displayed width
    loaded: bool = True      # images: did it load
    extra: dict = field(default_factory=dict)


def box_problems(box: Box, *, tolerance: float = TOLERANCE_PX, min_ratio: float = MIN_FIGURE_RATIO) -> list[str]:
    """The verdict on one measured element: a list of problem descriptions (empty when fine).

    Examples
    --------
    >>> box_problems(Box("code cell", "1", content=700, box=688, column=688))
    ['code cell 1 is 700 px wide in a 688 px box (cut off or scrolled)']
    >>> box_problems(Box("table", "2", content=500, box=500, column=688))
    []
    >>> box_problems(Box("figure", "3", 0, 0, 688, natural=1000, displayed=688))
    ['figure 3 is shown at 69 % of its natural width (688 of 1000 px)']
    """
    problems = []
    if box.kind in ("figure", "image"):
        if not box.loaded:
            return [f"{box.kind} {box.label} did not load"]
        if box.natural > 0 and box.displayed > 0 and box.displayed < min_ratio * box.natural - tolerance:
            problems.append(f"{box.kind} {box.label} is shown at {100 * box.displayed / box.natural:.0f} % of its "
                            f"natural width ({box.displayed:.0f} of {box.natural:.0f} px)")
        if box.column > 0 and box.displayed > box.column + tolerance:
            problems.append(f"{box.kind} {box.label} is {box.displayed:.0f} px wide in a {box.column:.0f} px column")
        return problems
    if box.content > box.box + tolerance:
        problems.append(f"{box.kind} {box.label} is {box.content:.0f} px wide in a {box.box:.0f} px box "
                        "(cut off or scrolled)")
    elif box.column > 0 and box.content > box.column + tolerance:
        problems.append(f"{box.kind} {box.label} is {box.content:.0f} px wide in a {box.column:.0f} px column")
    return problems


def page_problems(page: str, measured: dict, *, check_tex: bool = True) -> list[str]:
    """Turn one page's measurements (what ``MEASURE_JS`` returns) into problem lines."""
    lines = []
    for item in measured.get("boxes", []):
        box = Box(**item)
        lines += [f"{page}: {p}" for p in box_problems(box)]
    if check_tex:
        for where, text in measured.get("texts", []):
            hits = find_raw_tex(text)
            if hits:
                more = f" (and {len(hits) - 1} more)" if len(hits) > 1 else ""
                lines.append(f"{page}: raw TeX in {where}: {hits[0]!r}{more}")
    for url, status in measured.get("failed", []):
        lines.append(f"{page}: resource {url} failed ({status})")
    return lines


# ---------------------------------------------------------------------------------------
# The browser.
# ---------------------------------------------------------------------------------------

# Runs in the page: waits for MathJax, fonts and images; returns what box_problems judges.
SETTLE_JS = r"""
(async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  for (const img of document.images) { img.loading = "eager"; }
  const mj = window.MathJax;
  try {
    if (mj && mj.startup && mj.startup.promise) { await mj.startup.promise; }
    else if (mj && mj.Hub && mj.Hub.Queue) { await new Promise(r => mj.Hub.Queue(r)); }
  } catch (e) {}
  try { await document.fonts.ready; } catch (e) {}
  const deadline = Date.now() + 10000;
  while (Date.now() < deadline && [...document.images].some(i => !i.complete)) { await sleep(50); }
  await sleep(100);
  return true;
})()
"""

MEASURE_JS = r"""
(() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main") || document.body;
  const style = getComputedStyle(article);
  const column = article.clientWidth - parseFloat(style.paddingLeft) - parseFloat(style.paddingRight);
  const visible = el => { const r = el.getBoundingClientRect(); return r.width > 0 && r.height > 0; };
  const wide = el => !!el.closest(".full-width, .margin, .sidebar, aside, .marginnote");
  const section = el => {
    let s = el.closest("section");
    while (s && !s.id) { s = s.parentElement && s.parentElement.closest("section"); }
    return s ? " in #" + s.id : "";
  };
  const snippet = el => {
    const t = (el.innerText || el.textContent || "").trim().replace(/\s+/g, " ");
    return t ? ' "' + (t.length > 40 ? t.slice(0, 40) + "…" : t) + '"' : "";
  };
  const boxes = [];
  const add = (kind, n, el, content, box, note) => boxes.push({
    kind, label: String(n) + section(el) + (note || "") + snippet(el), content, box, column: wide(el) ? 0 : column,
  });
  // Code cells and literal blocks: their <pre> (overflow: auto) must hold its lines.
  let nCode = 0, nOut = 0;
  for (const pre of article.querySelectorAll("pre")) {
    if (!visible(pre)) continue;
    const out = pre.closest(".cell_output, .output");
    const kind = out ? "text output" : "code cell";
    const n = out ? ++nOut : ++nCode;
    const longest = Math.max(0, ...(pre.textContent || "").split("\n").map(l => l.length));
    add(kind, n, pre, pre.scrollWidth, pre.clientWidth, " (longest line " + longest + " characters)");
  }
  // Tables (and the scroll wrappers themes put around them).
  let nTable = 0;
  for (const table of article.querySelectorAll("table")) {
    if (!visible(table) || table.parentElement.closest("table")) continue;
    nTable++;
    const width = table.getBoundingClientRect().width;
    let wrapper = table.parentElement, box = width;  // no scrolling wrapper: judged against the column
    while (wrapper && wrapper !== article) {
      const ov = getComputedStyle(wrapper).overflowX;
      if (ov === "auto" || ov === "scroll" || ov === "hidden") { box = wrapper.clientWidth; break; }
      wrapper = wrapper.parentElement;
    }
    add("table", nTable, table, Math.max(width, wrapper && wrapper !== article ? wrapper.scrollWidth : 0), box);
  }
  // Images: did they load; figures (cell outputs and figure directives): shown at >= 90 %?
  let nFig = 0, nImg = 0;
  for (const img of article.querySelectorAll("img")) {
    const isFigure = !!img.closest(".cell_output, .output, figure, .figure");
    const n = isFigure ? ++nFig : ++nImg;
    const src = img.currentSrc || img.src || "";
    const svg = /\.svg(\?|#|$)/i.test(src) || src.startsWith("data:image/svg");
    const loaded = img.complete && (img.naturalWidth > 0 || svg);
    const r = img.getBoundingClientRect();
    const name = (img.getAttribute("alt") || src.split("/").pop() || "").slice(0, 50);
    boxes.push({kind: isFigure ? "figure" : "image", label: n + section(img) + (name ? ' "' + name + '"' : ""),
                content: r.width, box: r.width, column: wide(img) ? 0 : column,
                natural: (isFigure && img.naturalWidth) ? img.naturalWidth : 0, displayed: r.width, loaded});
  }
  // Visible text outside code, for raw TeX.
  const texts = [];
  const skip = "pre, code, script, style, textarea, mjx-container, .MathJax, .MathJax_Display, .katex, "
    + ".highlight, .cell_output, .output, svg";
  const blocks = article.querySelectorAll("p, li, dt, dd, td, th, h1, h2, h3, h4, h5, h6, figcaption, caption, "
    + ".math, div.admonition");
  const seen = new Set();
  for (const block of blocks) {
    if (block.closest(skip)) continue;
    const walker = document.createTreeWalker(block, NodeFilter.SHOW_TEXT, {
      acceptNode: t => t.parentElement && t.parentElement.closest(skip)
        ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
    });
    let text = "";
    for (let t = walker.nextNode(); t; t = walker.nextNode()) {
      if (seen.has(t)) continue;
      seen.add(t);
      text += t.nodeValue;
    }
    if (text.trim()) texts.push([block.tagName.toLowerCase() + section(block), text]);
  }
  return {column, boxes, texts, width: document.documentElement.clientWidth,
          height: Math.ceil(document.documentElement.scrollHeight)};
})()
"""


class BrowserError(RuntimeError):
    pass


def find_chromium() -> str | None:
    """The Chromium (or Chrome) executable, or None."""
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser", "google-chrome", "chrome"):
        if name and shutil.which(name):
            return shutil.which(name)
    return None


class Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (fd 3 in, fd 4 out)."""

    def __init__(self, executable: str, timeout: float = 60.0):
        self.timeout = timeout
        self.profile = tempfile.mkdtemp(prefix="check-pages-")
        to_browser_r, self._to_browser = os.pipe()
        self._from_browser, from_browser_w = os.pipe()
        args = [
            executable, "--headless=new", "--remote-debugging-pipe", f"--user-data-dir={self.profile}",
            "--no-first-run", "--no-default-browser-check", "--disable-gpu", "--disable-dev-shm-usage",
            "--disable-extensions", "--disable-background-networking", "--disable-component-update",
            "--disable-sync", "--disable-default-apps", "--no-pings", "--mute-audio", "--hide-scrollbars",
            "--force-device-scale-factor=1", "--font-render-hinting=none",
            # No network beyond this machine: every name resolves to nothing and everything
            # that is not loopback goes to a proxy that is not there.
            "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
            "--proxy-server=http://127.0.0.1:9", "--proxy-bypass-list=127.0.0.1;localhost",
            "about:blank",
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            args.insert(1, "--no-sandbox")
        # The shell moves our pipe ends to the descriptors Chromium expects (3 and 4).
        self._stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(
            ["sh", "-c", 'exec "$@" 3<&0 4>&1 0</dev/null 1>/dev/null', "chromium", *args],
            stdin=to_browser_r, stdout=from_browser_w, stderr=self._stderr)
        os.close(to_browser_r)
        os.close(from_browser_w)
        self._buffer = b""
        self._next_id = 0
        self._events: list[dict] = []
        self.session = None
        self.call("Browser.getVersion", timeout=max(self.timeout, 120.0))  # a cold start can be slow

    # -- protocol ---------------------------------------------------------------------
    def _read_message(self, deadline: float) -> dict:
        while b"\0" not in self._buffer:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError("timed out waiting for Chromium")
            ready, _, _ = select.select([self._from_browser], [], [], left)
            if ready:
                chunk = os.read(self._from_browser, 1 << 20)
                if not chunk:
                    self._stderr.seek(0)
                    said = self._stderr.read().decode(errors="replace").strip().splitlines()[-5:]
                    raise BrowserError("Chromium closed the DevTools pipe (did it start?)"
                                       + ("; it said:\n  " + "\n  ".join(said) if said else ""))
                self._buffer += chunk
        message, self._buffer = self._buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> int:
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        data = json.dumps(message).encode() + b"\0"
        while data:
            data = data[os.write(self._to_browser, data):]
        return self._next_id

    def call(self, method: str, params: dict | None = None, *, session: str | None = None,
             timeout: float | None = None) -> dict:
        """Send a command and wait for its answer (events meanwhile are kept)."""
        ident = self.send(method, params, session)
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            message = self._read_message(deadline)
            if message.get("id") == ident:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error'].get('message')}")
                return message.get("result", {})
            if "method" in message:
                self._events.append(message)

    def wait_event(self, method: str, *, session: str | None = None, timeout: float | None = None) -> dict:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            for k, event in enumerate(self._events):
                if event["method"] == method and (session is None or event.get("sessionId") == session):
                    del self._events[k]
                    return event.get("params", {})
            message = self._read_message(deadline)
            if "method" in message:
                self._events.append(message)

    def take_events(self, method: str) -> list[dict]:
        taken = [e.get("params", {}) for e in self._events if e["method"] == method]
        self._events = [e for e in self._events if e["method"] != method]
        return taken

    # -- a page -------------------------------------------------------------------------
    def open_tab(self) -> None:
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for method in ("Page.enable", "Network.enable"):
            self.call(method, session=self.session)

    def set_width(self, width: int, height: int, mobile: bool) -> None:
        self.call("Emulation.setDeviceMetricsOverride",
                  {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile},
                  session=self.session)

    def load(self, url: str) -> tuple[list[tuple[str, str]], list[str]]:
        """Navigate, wait until loaded and settled; return resources that failed, and every URL asked for."""
        self.take_events("Network.responseReceived")
        self.take_events("Network.loadingFailed")
        self.take_events("Network.requestWillBeSent")
        self.take_events("Page.loadEventFired")
        result = self.call("Page.navigate", {"url": url}, session=self.session)
        if result.get("errorText"):
            return [(url, result["errorText"])], [url]
        self.wait_event("Page.loadEventFired", session=self.session)
        self.evaluate(SETTLE_JS)
        failed = []
        urls = {e["requestId"]: e["request"]["url"] for e in self.take_events("Network.requestWillBeSent")}
        for event in self.take_events("Network.responseReceived"):
            status = event["response"]["status"]
            if status >= 400:
                failed.append((event["response"]["url"], f"HTTP {status}"))
        for event in self.take_events("Network.loadingFailed"):
            if event.get("canceled"):
                continue
            failed.append((urls.get(event["requestId"], "?"), event.get("errorText", "failed")))
        self._events.clear()  # nothing else is needed from this page
        return failed, list(urls.values())

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", {"expression": expression, "awaitPromise": True,
                                                "returnByValue": True}, session=self.session)
        if "exceptionDetails" in result:
            raise BrowserError(f"page script failed: {result['exceptionDetails'].get('text')}: "
                               f"{result['exceptionDetails'].get('exception', {}).get('description')}")
        return result["result"].get("value")

    def screenshot(self, path: Path, width: int, height: int, mobile: bool, max_height: int = 16000) -> None:
        """A full-page PNG: the window is made as tall as the page, captured, then put back."""
        full = int(min(max(self.evaluate("document.documentElement.scrollHeight"), height), max_height))
        self.set_width(width, full, mobile)
        try:
            self.evaluate("new Promise(r => requestAnimationFrame(() => requestAnimationFrame("
                          "() => setTimeout(r, 200))))")
            data = self.call("Page.captureScreenshot", {"format": "png"}, session=self.session)["data"]
        finally:
            self.set_width(width, height, mobile)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data))

    def close(self) -> None:
        try:
            self.send("Browser.close")
            self.process.wait(timeout=10)
        except Exception:
            self.process.kill()
            self.process.wait()
        for fd in (self._to_browser, self._from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        self._stderr.close()
        shutil.rmtree(self.profile, ignore_errors=True)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def serve(root: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve ``root`` on 127.0.0.1 (a free port) from a thread; returns the server and base URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def _is_local(url: str, base: str) -> bool:
    return url.startswith(base) or url.startswith(("data:", "blob:", "about:"))


def check_site(root: Path, screenshots: Path | None, *, phone: bool = True, executable: str | None = None,
               strict_offline: bool = False, phone_details: bool = False, log=print) -> list[str]:
    """Check every page of the site in ``root``; return the problem lines (also logged)."""
    root = Path(root).resolve()
    pages = html_pages(root)
    if not pages:
        raise BrowserError(f"no HTML pages under {root} (build the book first: make book)")
    problems = dead_links(root, pages)
    for line in problems:
        log(line)
    executable = executable or find_chromium()
    if not executable:
        raise BrowserError("Chromium is not installed (apt-get install chromium; make browser)")
    skipped = [page for page in pages if is_redirect(root / page)]
    loaded = [page for page in pages if page not in skipped]
    if screenshots is not None:  # this run's screenshots only
        for width in (DESKTOP_WIDTH, PHONE_WIDTH):
            shutil.rmtree(Path(screenshots) / str(width), ignore_errors=True)
    server, base = serve(root)
    browser = Chromium(executable)
    external: dict[str, set[str]] = {}
    try:
        browser.open_tab()
        widths = [(DESKTOP_WIDTH, 900, False)] + ([(PHONE_WIDTH, 844, True)] if phone else [])
        for width, height, mobile in widths:
            browser.set_width(width, height, mobile)
            for page in loaded:
                url = urljoin(base, page)
                failed, asked = browser.load(url)
                measured = browser.evaluate(MEASURE_JS)
                for bad_url, why in failed:
                    if bad_url == base + "favicon.ico":  # asked for by the browser, not the page
                        continue
                    if _is_local(bad_url, base):
                        measured.setdefault("failed", []).append((bad_url[len(base):], why))
                external.setdefault(page, set()).update(u for u in asked if not _is_local(u, base))
                if screenshots is not None:
                    browser.screenshot(Path(screenshots) / str(width) / Path(page).with_suffix(".png"),
                                       width, height, mobile)
                if width == DESKTOP_WIDTH:
                    lines = page_problems(page, measured)
                    for line in lines:
                        log(line)
                    problems += lines
                else:
                    lines = page_problems(page, measured, check_tex=False)
                    if lines and not phone_details:
                        log(f"note: {page} at {width} px: {len(lines)} element(s) wider than the screen or "
                            "shrunk (report only; --phone-details lists them)")
                    for line in lines if phone_details else []:
                        log(f"note: at {width} px: {line}")
    finally:
        browser.close()
        server.shutdown()
        server.server_close()
    for page in skipped:
        log(f"note: {page} only redirects; its target was checked as a link")
    for page, urls in sorted(external.items()):
        if not urls:
            continue
        line = (f"{page}: asked for {len(urls)} resource(s) off this machine (blocked): "
                + ", ".join(sorted(urls)[:3]) + (" …" if len(urls) > 3 else ""))
        if strict_offline:
            problems.append(line)
        log(line if strict_offline else f"note: {line}")
    return problems


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--html", type=Path, default=Path("_build/html"), help="the built site (default: %(default)s)")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="where to save screenshots (default: screenshots/ beside the site)")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--no-phone", action="store_true", help="skip the 390-px pass")
    parser.add_argument("--chromium", default=None, help="the browser executable (default: chromium on PATH)")
    parser.add_argument("--strict-offline", action="store_true",
                        help="also fail when a page asks for anything off this machine (e.g. a CDN)")
    parser.add_argument("--phone-details", action="store_true", help="list the 390-px findings one by one")
    args = parser.parse_args(argv)
    screenshots = None if args.no_screenshots else (args.screenshots or args.html.resolve().parent / "screenshots")
    start = time.monotonic()
    try:
        problems = check_site(args.html, screenshots, phone=not args.no_phone, executable=args.chromium,
                              strict_offline=args.strict_offline, phone_details=args.phone_details)
    except BrowserError as error:
        print(f"check-pages: {error}", file=sys.stderr)
        return 2
    pages = len(html_pages(args.html))
    where = f"; screenshots in {screenshots}" if screenshots else ""
    print(f"check-pages: {pages} pages, {len(problems)} problem(s) at {DESKTOP_WIDTH} px "
          f"({time.monotonic() - start:.0f} s){where}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
