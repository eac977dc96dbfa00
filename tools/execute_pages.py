"""Execute the book's pages two at a time, before ``jupyter-book build`` reads them.

``make book`` runs this first. Jupyter Book executes one page after another, and most
pages keep only part of a two-core machine busy (the quick experiments about 1.7 cores,
many chapters one), so a cold build leaves a core idle for minutes. This script runs the
pages in up to ``--jobs`` processes at once and stores each executed notebook in the
same jupyter-cache (``_build/.jupyter_cache``) under the same key that myst-nb computes
(the code cells and the kernel), so the build that follows finds every page executed and
only renders it. The outputs are those of a one-at-a-time build: each page runs in its
own kernel with the same environment and thread counts, and reads and writes the same
nclib cache (:mod:`nclib.cache`), whose entries do not depend on what else is running.

Three rules keep the pages correct and their timings honest:

* a page that reads the quick experiments (nearly all) starts only after the page that
  computes them, ``all_scores``, has finished, so that no two pages compute the same
  entry at once (``INDEPENDENT`` lists the pages that read none of them);
* a page that reports running times it measured (``ALONE``) runs with nothing beside it,
  so that it measures an otherwise idle machine; these run last, one at a time;
* a page that fails is not stored: the build then runs it again itself and reports the
  error as usual, so this script never hides a failure (it only costs the time twice).

Usage (from the repository root)::

    python tools/execute_pages.py [--jobs N] [--dry-run]

``--jobs`` defaults to 2 on a machine with at least two cores, else 1. ``--dry-run``
prints the pages that would run, in order, and runs nothing.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PRODUCER = "all_scores"
"""The page that computes the quick experiments every other chapter reads."""

INDEPENDENT = frozenset({"intro", "background", "scores", "caveats", "caveats_task_type",
                         "instructor"})
"""Pages that read no experiment and no entry another page computes."""

ALONE = frozenset({"caveats_size", "costs", "ideal", "howto"})
"""Pages that report running times they measure: they run with nothing beside them."""

FIRST = ("all_scores", "caveats_generalisation", "caveats_task_type")
"""The longest pages, started first so that the short ones fill the gaps."""

CACHE = ROOT / "_build" / ".jupyter_cache"
READ_FORMAT = {"type": "plugin", "name": "myst_nb_md"}  # as myst-nb stages a MyST page


def book_pages(root: Path = ROOT) -> list[str]:
    """The pages of ``_toc.yml`` that are notebooks (MyST files with a kernel), in order.

    Returns
    -------
    list of str
        Page names relative to ``book/`` without ``.md``, e.g. ``"all_scores"``.
    """
    import yaml

    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]]

    def walk(entries):
        for entry in entries or []:
            if "file" in entry:
                files.append(entry["file"])
            walk(entry.get("sections"))
            walk(entry.get("chapters"))

    walk(toc.get("parts"))
    walk(toc.get("chapters"))
    pages = []
    for name in files:
        path = root / f"{name}.md"
        if path.exists() and "kernelspec:" in path.read_text().split("\n---", 1)[0]:
            pages.append(str(Path(name).relative_to("book")))
    return pages


def schedule(pages: list[str]) -> list[str]:
    """The order in which pages are offered a free process.

    The producer and the long pages first, the pages that must run alone last; within
    each group the book's own order.
    """
    unknown = sorted(set(FIRST) - set(pages))
    if PRODUCER not in pages or unknown:
        raise ValueError(f"execute_pages: {PRODUCER!r} and {FIRST} must be pages of the "
                         f"book; missing {sorted({PRODUCER, *unknown} - set(pages))}")
    first = [p for p in FIRST if p in pages]
    rest = [p for p in pages if p not in first and p not in ALONE]
    return first + rest + [p for p in pages if p in ALONE]


def can_start(page: str, running: set[str], finished: set[str]) -> bool:
    """Whether ``page`` may start now, beside the pages in ``running``."""
    if page in ALONE:
        return not running
    if running & ALONE:
        return False
    return page in INDEPENDENT or page == PRODUCER or PRODUCER in finished


def book_config(root: Path = ROOT) -> dict:
    """The book's ``_config.yml``."""
    import yaml

    return yaml.safe_load((root / "_config.yml").read_text()) or {}


def read_page(path: Path, root: Path = ROOT):
    """The page as the notebook myst-nb builds from it (same code cells, same kernel).

    Parsed with the MyST extensions of ``_config.yml`` (``parse.myst_enable_extensions``),
    as the build parses it.
    """
    from myst_nb.core.read import read_myst_markdown_notebook
    from myst_parser.config.main import MdParserConfig

    extensions = (book_config(root).get("parse") or {}).get("myst_enable_extensions") or []
    config = MdParserConfig(enable_extensions=set(extensions))
    return read_myst_markdown_notebook(path.read_text("utf8"), config=config,
                                       add_source_map=True, path=str(path))


def execute(path: str, timeout: int):
    """Execute one page in its folder; return (notebook or None, seconds, error text)."""
    from jupyter_cache.executors.utils import single_nb_execution

    page = Path(path)
    notebook = read_page(page)
    result = single_nb_execution(notebook, cwd=str(page.parent), timeout=timeout,
                                 allow_errors=False, meta_override=True)
    if result.err is not None:
        return None, result.time, result.exc_string or repr(result.err)
    return notebook, result.time, ""


def execution_timeout(root: Path = ROOT) -> int:
    """``execute.timeout`` of ``_config.yml`` (seconds per page), as the build uses it."""
    return int((book_config(root).get("execute") or {}).get("timeout", 30))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2 if (os.cpu_count() or 1) >= 2 else 1,
                        help="pages executed at once (default: 2 with two cores or more)")
    parser.add_argument("--dry-run", action="store_true", help="list the pages to run, run none")
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")

    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    cache = get_cache(str(CACHE))
    timeout = execution_timeout()
    pending = []
    for page in schedule(book_pages()):
        path = ROOT / "book" / f"{page}.md"
        try:
            cache.match_cache_notebook(read_page(path))
        except KeyError:
            pending.append(page)
    print(f"execute_pages: {len(pending)} page(s) to execute, {args.jobs} at a time"
          + (f": {', '.join(pending)}" if pending else ""), flush=True)
    if args.dry_run or not pending:
        return 0

    started = time.perf_counter()
    running, finished, failed = {}, set(), []
    spawn = multiprocessing.get_context("spawn")  # a fresh interpreter per worker
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=spawn) as pool:
        while pending or running:
            for page in list(pending):
                if len(running) >= args.jobs:
                    break
                if can_start(page, set(running.values()), finished):
                    pending.remove(page)
                    path = str(ROOT / "book" / f"{page}.md")
                    running[pool.submit(execute, path, timeout)] = page
            if not running:  # nothing may start: a rule above is wrong
                raise RuntimeError(f"execute_pages: no page can start; left: {pending}")
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                page = running.pop(future)
                finished.add(page)
                notebook, seconds, error = future.result()
                if notebook is None:
                    failed.append(page)
                    last = error.strip().splitlines()[-1] if error.strip() else "?"
                    print(f"execute_pages: {page} failed after {seconds:.0f} s ({last}); "
                          "the build will run it again and report the error", flush=True)
                    continue
                record = cache.add_nb_to_project(str(ROOT / "book" / f"{page}.md"),
                                                 read_data=READ_FORMAT)
                cache.cache_notebook_bundle(
                    CacheBundleIn(notebook, record.uri, data={"execution_seconds": seconds}),
                    check_validity=False, overwrite=True)
                print(f"execute_pages: {page} executed in {seconds:.0f} s "
                      f"({time.perf_counter() - started:.0f} s since the start)", flush=True)
    print(f"execute_pages: done in {time.perf_counter() - started:.0f} s"
          + (f"; failed: {', '.join(failed)}" if failed else ""), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
