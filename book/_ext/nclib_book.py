"""Sphinx hooks that make the book readable offline and publishable from one setting.

Loaded by ``_config.yml`` (``sphinx.local_extensions``). It does four things (and sets the in-page table of contents to show subsections and
adds the book's stylesheet, ``book/_static/nclib.css``):

1. **Offline formulas.** MathJax 3 is taken from the pinned PyPI package
   ``django-static-mathjax`` (``requirements.txt``; it ships MathJax's ``es5`` build as
   package data and needs nothing of Django) and copied into ``_build/html/_static/mathjax``;
   ``mathjax_path`` in ``_config.yml`` points there. A copied ``_build/html`` renders every
   formula without a network.

2. **Intersphinx without a network.** The book is built offline, so the inventories of
   numpy, scipy, pandas, scikit-learn and torch cannot be downloaded. ``book/_intersphinx/``
   holds, per project, a short plain-text inventory: the objects that the API reference
   links to, each with its address on that project's documentation site. They are compiled
   into Sphinx inventories under ``_build/intersphinx/`` and registered as local files in
   ``intersphinx_mapping``, so links resolve offline and a missing entry shows up as a
   nitpicky warning (which fails the strict build) instead of as a silent download.

3. **One repository setting.** ``repository.url`` in ``_config.yml`` drives the repository
   button, the Binder and Colab launch buttons and Thebe's Binder settings. While it still
   holds the placeholder (an address containing ``PLACEHOLDER``), those buttons are left
   out rather than pointing at a repository that does not exist. Independently, every
   executed chapter offers its ``.ipynb`` for download beside the ``.md`` source.

4. **Author-year bibliography.** A pybtex style, ``nclib_authoryear``, labels entries as
   the text cites them ("Papyan et al., 2020") instead of ``[PHD20]``.
"""

from __future__ import annotations

import re
import shutil
import zlib
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
INVENTORY_SOURCES = HERE.parent / "_intersphinx"

# The documentation sites the inventories point into (their stable versions).
INTERSPHINX_SITES = {
    "numpy": "https://numpy.org/doc/stable/",
    "scipy": "https://docs.scipy.org/doc/scipy/",
    "pandas": "https://pandas.pydata.org/docs/",
    "sklearn": "https://scikit-learn.org/stable/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "python": "https://docs.python.org/3/",
}

# The parts of MathJax's es5 build a page can load: the combined TeX/MathML-to-HTML
# component, the components it loads on demand (TeX extensions, the menu, accessibility)
# and its web fonts. Left out: the other combined builds and the speech-rule data.
MATHJAX_PARTS = ("tex-mml-chtml.js", "input", "output", "ui", "a11y", "adaptors", "sre")

PLACEHOLDER = "PLACEHOLDER"
# Colab opens notebooks stored on GitHub only. The executed notebooks are published with
# the site (``_sources/<page>.ipynb``); with ``ghp-import -n -p -f _build/html`` the site
# is the ``gh-pages`` branch of the same repository.
PAGES_BRANCH = "gh-pages"


# ---------------------------------------------------------------------- bibliography


def author_year_style():
    """A pybtex style whose labels read like the author-year citations in the text.

    sphinxcontrib-bibtex's ``author_year`` reference style cites "Papyan et al., 2020";
    the bibliography's labels come from the pybtex style, whose default (``alpha``) would
    print ``[PHD20]``. This style labels each entry the way the text cites it,
    "[Papyan et al., 2020]", and sorts by author, year and title.
    """
    from pybtex.richtext import Text
    from pybtex.style.formatting.unsrt import Style as UnsrtStyle
    from pybtex.style.labels import BaseLabelStyle
    from pybtex.style.sorting.author_year_title import SortingStyle

    def surname(person) -> str:
        names = person.prelast_names + person.last_names
        return Text.from_latex(" ".join(names)).render_as("text").replace("{", "").replace("}", "")

    class AuthorYearLabels(BaseLabelStyle):
        def format_labels(self, sorted_entries):
            labels = [self.format_label(entry) for entry in sorted_entries]
            seen: dict[str, int] = {}
            for label in labels:
                seen[label] = seen.get(label, 0) + 1
            suffix: dict[str, int] = {}
            for label in labels:
                if seen[label] > 1:  # two works of the same authors in one year: 2018a, 2018b
                    suffix[label] = suffix.get(label, 0) + 1
                    yield label + "abcdefghij"[suffix[label] - 1]
                else:
                    yield label

        def format_label(self, entry) -> str:
            people = entry.persons.get("author") or entry.persons.get("editor") or []
            if not people:
                names = entry.fields.get("key", entry.key)
            elif len(people) == 1:
                names = surname(people[0])
            elif len(people) == 2:
                names = f"{surname(people[0])} and {surname(people[1])}"
            else:
                names = f"{surname(people[0])} et al."
            return f"{names}, {entry.fields.get('year', 'n.d.')}"

    class AuthorYearStyle(UnsrtStyle):
        default_label_style = AuthorYearLabels
        default_sorting_style = SortingStyle

    return AuthorYearStyle


# --------------------------------------------------------------------------- MathJax


def mathjax_es5() -> Path:
    try:
        import mathjax  # the package django-static-mathjax
    except ImportError as error:  # pragma: no cover - a missing pinned requirement
        raise ExtensionError(
            "MathJax is served from the book itself: install the pinned "
            "'django-static-mathjax' from requirements.txt"
        ) from error
    es5 = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (es5 / "tex-mml-chtml.js").is_file():
        raise ExtensionError(f"no MathJax es5 build found in {es5}")
    return es5


def copy_mathjax(app: Sphinx, exception: Exception | None) -> None:
    if exception is not None or app.builder.format != "html":
        return
    es5 = mathjax_es5()
    target = Path(app.outdir) / "_static" / "mathjax"
    for part in MATHJAX_PARTS:
        source = es5 / part
        if source.is_dir():
            if part == "sre":  # only the speech-rule engine's English maps
                shutil.copytree(source, target / part, dirs_exist_ok=True,
                                ignore=_sre_ignore)
            else:
                shutil.copytree(source, target / part, dirs_exist_ok=True)
        elif source.is_file():
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / part)


def _sre_ignore(folder: str, names: list[str]) -> set[str]:
    if Path(folder).name == "mathmaps":
        return {n for n in names if n.endswith(".json") and n not in ("en.json", "base.json")}
    return set()


# ------------------------------------------------------------------------ intersphinx


def compile_inventory(source: Path, target: Path, project: str) -> None:
    """Write a Sphinx version-2 inventory from lines ``name domain:role priority uri dispname``."""
    lines = [line.strip() for line in source.read_text(encoding="utf-8").splitlines()]
    entries = [line for line in lines if line and not line.startswith("#")]
    for entry in entries:
        if len(entry.split(None, 4)) != 5:
            raise ExtensionError(f"{source}: malformed inventory line: {entry!r}")
    header = (
        "# Sphinx inventory version 2\n"
        f"# Project: {project}\n"
        "# Version: stable\n"
        "# The remainder of this file is compressed using zlib.\n"
    )
    body = "".join(entry + "\n" for entry in entries)
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(header.encode() + zlib.compress(body.encode()))


def register_inventories(app: Sphinx, config) -> None:
    build_dir = Path(app.doctreedir).parent / "intersphinx"
    mapping = dict(config.intersphinx_mapping or {})
    for project, site in INTERSPHINX_SITES.items():
        source = INVENTORY_SOURCES / f"{project}.txt"
        if not source.is_file():
            raise ExtensionError(f"missing offline inventory {source}")
        target = build_dir / f"{project}.inv"
        compile_inventory(source, target, project)
        mapping[project] = (site, str(target))
    config.intersphinx_mapping = mapping


# ------------------------------------------------------------------------ publishing


def configure_repository(app: Sphinx, config) -> None:
    options = config.html_theme_options
    url = str(options.get("repository_url", "")).strip().rstrip("/")
    branch = options.get("repository_branch", "main")
    thebe = config.thebe_config if isinstance(config.thebe_config, dict) else {}
    if url:
        thebe.update({"repository_url": url, "repository_branch": branch,
                      "path_to_docs": options.get("path_to_docs", "") or "."})
        config.thebe_config = thebe
    if not url or PLACEHOLDER in url:
        logger.info("[nclib_book] repository.url is the placeholder: repository and launch "
                    "buttons are left out (set it in _config.yml when publishing)")
        for key in ("use_repository_button", "use_issues_button", "use_edit_page_button"):
            options[key] = False
        options["launch_buttons"] = {}


def offer_notebook(app: Sphinx, pagename: str, templatename: str, context: dict, doctree) -> None:
    """Offer the executed notebook for download beside the ``.md`` source (runs before the theme's buttons)."""
    source = context.get("sourcename", "")
    if not source.endswith(".md") or doctree is None:
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy2(executed, target)
    context["ipynb_source"] = f"{pagename}.ipynb"


def colab_from_pages_branch(app: Sphinx, pagename: str, templatename: str, context: dict,
                            doctree) -> None:
    """Point the Colab button at the executed notebook published with the site."""
    for group in context.get("header_buttons", []):
        for button in group.get("buttons", []) if isinstance(group, dict) else []:
            if button.get("text") == "Colab" and context.get("ipynb_source"):
                prefix, _, _ = button["url"].partition("/blob/")
                button["url"] = f"{prefix}/blob/{PAGES_BRANCH}/_sources/{context['ipynb_source']}"


def add_static_files(app: Sphinx, config) -> None:
    # book/_static holds the book's stylesheet (nclib.css).
    config.html_static_path = [*config.html_static_path, str(HERE.parent / "_static")]


def set_page_toc_depth(app: Sphinx, config) -> None:
    # The in-page table of contents (right-hand side) lists sections and subsections.
    config.html_theme_options.setdefault("show_toc_level", 2)
    # numpydoc: link only the type names listed in numpydoc_xref_aliases (_config.yml) and
    # leave the rest of a type description ("array-like of shape (N, D)") as text. Set
    # here because _config.yml cannot pass a string for this set-typed option.
    config.numpydoc_xref_ignore = "all"


def setup(app: Sphinx) -> dict:
    from pybtex.plugin import register_plugin

    register_plugin("pybtex.style.formatting", "nclib_authoryear", author_year_style())
    app.connect("config-inited", set_page_toc_depth, priority=100)
    app.connect("config-inited", add_static_files, priority=400)
    app.add_css_file("nclib.css")
    app.connect("config-inited", register_inventories, priority=400)
    app.connect("config-inited", configure_repository, priority=400)
    app.connect("html-page-context", offer_notebook, priority=500)
    app.connect("html-page-context", colab_from_pages_branch, priority=600)
    app.connect("build-finished", copy_mathjax)
    app.connect("missing-reference", resolve_reexports)
    app.connect("autodoc-process-docstring", module_sections_as_rubrics, priority=400)
    app.connect("autodoc-process-docstring", escape_absolute_values, priority=400)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


# ------------------------------------------------------------------ API cross-references


def resolve_reexports(app: Sphinx, env, node, contnode):
    """Resolve ``nclib.nc_score`` and other re-exported names to where they are documented.

    Docstrings and chapters name functions as users import them (``nclib.nc_score``,
    ``nclib.scores.nc_score``); the API reference documents each where it is defined
    (``nclib.scores.nc.nc_score``). Objects that are not documented (private helpers)
    stay unresolved, and the strict build reports them.
    """
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    if not target.startswith("nclib."):
        return None
    import importlib

    parts = target.split(".")
    obj = None
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for name in parts[cut:]:
                obj = getattr(obj, name)
        except AttributeError:
            return None
        break
    module = getattr(obj, "__module__", None)
    qualname = getattr(obj, "__qualname__", None)
    if not module or not qualname or f"{module}.{qualname}" == target:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node.get("refdoc"), app.builder, node.get("reftype"),
                               f"{module}.{qualname}", node, contnode)


_BARS = re.compile(r"(?<![|\\`])\|(\w+)\|(?![|_`])")


def escape_absolute_values(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    """Keep "|r|" in docstrings as text: reStructuredText would read it as a substitution.

    Only in prose: doctest blocks, ``literals`` and lines with maths are left alone.
    """
    in_doctest = False
    for i, line in enumerate(lines):
        stripped = line.strip()
        if stripped.startswith(">>>"):
            in_doctest = True
        elif not stripped:
            in_doctest = False
        if in_doctest or "math" in line or "\\" in line or "|" not in line:
            continue
        parts = line.split("``")
        parts[::2] = [_BARS.sub(r"\\|\1\\|", part) for part in parts[::2]]
        lines[i] = "``".join(parts)


def module_sections_as_rubrics(app: Sphinx, what: str, name: str, obj, options, lines: list[str]) -> None:
    """Turn numpydoc-style headings in *module* docstrings ("References" over dashes) into rubrics.

    numpydoc rewrites the sections of function and class docstrings but leaves a module's
    alone, so docutils would make each heading a section of the page, with clashing labels
    when two modules on one page both have "References".
    """
    if what != "module":
        return
    for i in range(len(lines) - 1):
        title, underline = lines[i].strip(), lines[i + 1].strip()
        if title and underline and set(underline) == {"-"} and len(underline) >= len(title):
            lines[i], lines[i + 1] = f".. rubric:: {title}", ""
