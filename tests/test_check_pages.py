"""The real-browser page check (tools/check_pages.py): its pure parts, and once on a tiny site.

The browser test runs only where Chromium is installed (``make browser``); everything else
needs no browser.
"""

import importlib.util
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("check_pages", ROOT / "tools" / "check_pages.py")
check_pages = sys.modules.setdefault("check_pages", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(check_pages)
Box = check_pages.Box


def test_a_box_wider_than_itself_or_its_column_is_a_problem():
    assert check_pages.box_problems(Box("code cell", "1", content=760, box=684, column=688)) == [
        "code cell 1 is 760 px wide in a 684 px box (cut off or scrolled)"]
    assert check_pages.box_problems(Box("table", "2", content=900, box=900, column=688)) == [
        "table 2 is 900 px wide in a 688 px column"]
    # sub-pixel rounding is fine, and so is a full-width element (column 0)
    assert check_pages.box_problems(Box("text output", "3", content=684.6, box=684, column=688)) == []
    assert check_pages.box_problems(Box("table", "4", content=900, box=900, column=0)) == []


def test_a_figure_must_load_and_be_shown_at_ninety_percent():
    fits = Box("figure", "1", 0, 0, column=688, natural=690, displayed=688)
    shrunk = Box("figure", "2", 0, 0, column=688, natural=1000, displayed=688)
    assert check_pages.box_problems(fits) == []
    assert check_pages.box_problems(shrunk) == ["figure 2 is shown at 69 % of its natural width (688 of 1000 px)"]
    assert check_pages.box_problems(Box("figure", "3", 0, 0, 688, natural=760, displayed=688)) == []  # 90.5 %
    assert check_pages.box_problems(Box("figure", "4", 0, 0, 688, natural=770, displayed=688))  # 89.4 %
    assert check_pages.box_problems(Box("image", "5", 0, 0, 688, loaded=False)) == ["image 5 did not load"]


def test_raw_tex_is_found_and_ordinary_text_is_not():
    find = check_pages.find_raw_tex
    assert find(r"the score \(S_{\mathrm{NC}}\) is") == [r"\(S_{\mathrm{NC}}\)"]
    assert find("display \\[ a = b \\] here") == ["\\[ a = b \\]"]
    assert find(r"\begin{align} x \end{align}") == [r"\begin{align} x \end{align}"]
    assert find("unparsed $x^2 + y$ math") == ["$x^2 + y$"]
    assert find(r"a lone \frac command") == [r"\frac"]
    for fine in ["costs $5 and $6", "between 5$ and 6$", "S = 0.93 (p < 0.05)", "50,000 × 2,048",
                 "a price of $ 3", "f(x) = (a)[b]"]:
        assert find(fine) == [], fine


def test_page_problems_name_the_page_and_the_element():
    measured = {"boxes": [dict(kind="code cell", label="1 in #intro", content=800, box=684, column=688)],
                "texts": [["p in #intro", r"see \(x\) and \(y\)"]],
                "failed": [["_images/a.png", "HTTP 404"]]}
    assert check_pages.page_problems("book/a.html", measured) == [
        "book/a.html: code cell 1 in #intro is 800 px wide in a 684 px box (cut off or scrolled)",
        "book/a.html: raw TeX in p in #intro: '\\\\(x\\\\)' (and 1 more)",
        "book/a.html: resource _images/a.png failed (HTTP 404)"]


def _write(path: Path, body: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f"<!DOCTYPE html><html><head><meta charset='utf-8'></head><body>{body}</body></html>")


def test_dead_links_and_anchors_in_a_hand_made_site(tmp_path):
    _write(tmp_path / "index.html", '<a href="book/a.html#there">ok</a> <a href="book/">dir</a>'
                                    '<a href="https://example.org/x#y">external</a> <a href="#">top</a>'
                                    '<a href="mailto:a@b.c">mail</a>')
    (tmp_path / "book").mkdir()
    _write(tmp_path / "book" / "index.html", '<p id="top">x</p>')
    _write(tmp_path / "book" / "a.html",
           '<h2 id="there">x</h2><a name="old">y</a>'
           '<a href="#there">ok</a><a href="#old">ok</a><a href="#nowhere">dead anchor</a>'
           '<a href="b.html">dead page</a><a href="index.html#gone">dead anchor elsewhere</a>'
           '<a href="c%20d.html#z">quoted</a><img src="../_images/missing.png">'
           '<link rel="stylesheet" href="../_static/theme.css"><script src="../_static/app.js"></script>')
    _write(tmp_path / "book" / "c d.html", '<div id="z"></div>')
    _write(tmp_path / "old.html", '<meta http-equiv="Refresh" content="0; url=book/gone.html" />')
    _write(tmp_path / "_static" / "ignored.html", '<a href="nowhere.html">not a page of the book</a>')
    (tmp_path / "_static" / "theme.css").write_text("body {}")

    assert check_pages.html_pages(tmp_path) == ["book/a.html", "book/c d.html", "book/index.html", "index.html",
                                                "old.html"]
    assert check_pages.is_redirect(tmp_path / "old.html") and not check_pages.is_redirect(tmp_path / "index.html")
    assert check_pages.dead_links(tmp_path) == [
        "book/a.html: dead anchor '#nowhere' (no id 'nowhere' on this page)",
        "book/a.html: dead link 'b.html' (no file book/b.html)",
        "book/a.html: dead anchor 'index.html#gone' (no id 'gone' in book/index.html)",
        "book/a.html: dead img resource '../_images/missing.png' (no file _images/missing.png)",
        "book/a.html: dead script resource '../_static/app.js' (no file _static/app.js)",
        "old.html: dead meta refresh resource 'book/gone.html' (no file book/gone.html)",
    ]


def _png(width: int, height: int) -> bytes:
    """A plain grey PNG of the given size (standard library only)."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    rows = b"".join(b"\0" + b"\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.skipif(check_pages.find_chromium() is None, reason="Chromium is not installed (make browser)")
def test_the_checker_in_chromium_on_a_tiny_site(tmp_path):
    site = tmp_path / "html"
    style = "<style>body{margin:0} article{width:600px;padding:0 20px} pre{overflow:auto}</style>"
    (site / "_images").mkdir(parents=True)
    (site / "_images" / "small.png").write_bytes(_png(300, 40))
    (site / "_images" / "big.png").write_bytes(_png(1200, 40))
    _write(site / "good.html", style + '<article class="bd-article"><section id="s"><p>Fine text.</p>'
           '<pre>short = 1</pre><div class="cell_output"><img src="_images/small.png"></div>'
           '<table><tr><td>1</td></tr></table><a href="bad.html#s">next</a></section></article>')
    _write(site / "bad.html", style + '<article class="bd-article"><section id="s">'
           '<p>Unrendered $x^2$ here.</p><pre>' + "x" * 200 + '</pre>'
           '<div class="cell_output"><img src="_images/big.png" style="max-width:100%"></div>'
           '<img src="_images/missing.png" alt="lost">'
           '<table><tr>' + "<td>wide column of numbers</td>" * 12 + '</tr></table>'
           '<a href="#nowhere">dead</a></section></article>')
    problems = check_pages.check_site(site, tmp_path / "shots", log=lambda line: None)
    assert not [p for p in problems if p.startswith("good.html")], problems
    bad = "\n".join(problems)
    assert "bad.html: dead anchor '#nowhere'" in bad
    assert "bad.html: code cell 1 in #s" in bad and "(longest line 200 characters)" in bad
    assert "bad.html: figure 1 in #s \"big.png\" is shown at 50 % of its natural width (600 of 1200 px)" in bad
    assert 'bad.html: image 1 in #s "lost" did not load' in bad
    assert "bad.html: table 1 in #s" in bad and "px wide in a 600 px column" in bad
    assert "bad.html: raw TeX in p in #s: '$x^2$'" in bad
    assert "bad.html: resource _images/missing.png failed (HTTP 404)" in bad
    for width in (1280, 390):
        assert (tmp_path / "shots" / str(width) / "good.png").read_bytes().startswith(b"\x89PNG")
