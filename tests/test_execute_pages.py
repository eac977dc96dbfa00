"""The two-at-a-time page executor (tools/execute_pages.py): its schedule, and its cache key.

The executor is only a speed-up if the build finds what it stored: the key it stores a
page under must be the key myst-nb computes for the same page. And it is only honest if
its rules hold for the book's pages as they are: a page listed as independent reads no
experiment, and a page that times things runs alone.
"""

import importlib.util
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("execute_pages", ROOT / "tools" / "execute_pages.py")
execute_pages = sys.modules.setdefault("execute_pages", importlib.util.module_from_spec(_spec))
_spec.loader.exec_module(execute_pages)

PAGES = execute_pages.book_pages()


def source(page):
    return (ROOT / "book" / f"{page}.md").read_text()


def test_book_pages_are_the_notebooks_of_the_table_of_contents():
    assert PAGES[0] == "intro"
    assert {"all_scores", "caveats_generalisation", "costs"} <= set(PAGES)
    assert not {"api", "glossary", "bibliography"} & set(PAGES)  # no kernel: nothing to run
    assert len(PAGES) == len(set(PAGES))


def test_schedule_runs_every_page_once_producer_first_timed_pages_last():
    order = execute_pages.schedule(PAGES)
    assert sorted(order) == sorted(PAGES)
    assert order[0] == execute_pages.PRODUCER
    alone = [p for p in order if p in execute_pages.ALONE]
    assert order[-len(alone):] == alone


def test_schedule_refuses_a_book_without_its_producer():
    with pytest.raises(ValueError, match="all_scores"):
        execute_pages.schedule([p for p in PAGES if p != "all_scores"])


def test_can_start_rules():
    can_start = execute_pages.can_start
    assert can_start("all_scores", set(), set())
    assert can_start("background", {"all_scores"}, set())  # independent: beside the producer
    assert not can_start("cifar10", {"background"}, set())  # reads the experiments
    assert can_start("cifar10", {"caveats_generalisation"}, {"all_scores"})
    assert not can_start("costs", {"background"}, {"all_scores"})  # times things: alone
    assert can_start("costs", set(), {"all_scores"})
    assert not can_start("background", {"costs"}, set())  # nothing beside a timed page


@pytest.mark.parametrize("page", sorted(execute_pages.INDEPENDENT))
def test_independent_pages_read_no_experiment(page):
    text = source(page)
    for call in ("get_experiment", "run_experiment", "experiment_embeddings", "Results.load"):
        assert call not in text, f"{page} calls {call} but is listed as independent"


@pytest.mark.parametrize("page", PAGES)
def test_pages_that_time_things_run_alone(page):
    text = source(page)
    if any(call in text for call in ("time_scores(", "transfer_seconds(", "STEP_SECONDS")):
        assert page in execute_pages.ALONE, f"{page} measures running times: add it to ALONE"


def test_stored_key_is_the_key_the_build_computes(tmp_path):
    # the build stages a MyST page with myst-nb's reader plugin; the executor reads it with
    # the book's MyST extensions; both must hash to the same cache key
    from jupyter_cache import get_cache

    cache = get_cache(str(tmp_path / "cache"))
    for page in ("scores", "caveats_generalisation"):
        path = ROOT / "book" / f"{page}.md"
        record = cache.add_nb_to_project(str(path), read_data=execute_pages.READ_FORMAT)
        staged = cache.get_project_notebook(record.uri).nb
        ours = execute_pages.read_page(path)
        assert cache.create_hashed_notebook(ours)[1] == cache.create_hashed_notebook(staged)[1]
        assert [c.source for c in ours.cells if c.cell_type == "code"] == \
            [c.source for c in staged.cells if c.cell_type == "code"]


def test_dry_run_lists_the_pages_and_runs_nothing(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(execute_pages, "CACHE", tmp_path / "cache")
    assert execute_pages.main(["--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"{len(PAGES)} page(s) to execute" in out
    assert not (tmp_path / "cache" / "executed").exists() or \
        not any((tmp_path / "cache" / "executed").iterdir())


def test_jobs_must_be_positive():
    with pytest.raises(SystemExit):
        execute_pages.main(["--jobs", "0"])
