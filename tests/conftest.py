"""Fixtures the test files share.

Use them by name, or for a whole file with
``pytestmark = pytest.mark.usefixtures("quiet_single_thread")``:

* ``quiet`` -- no progress bars (``NCLIB_PROGRESS=0``);
* ``single_thread`` -- torch limited to one thread, the caller's count restored after;
* ``quiet_single_thread`` -- both (the training and runner tests: small, fast, repeatable);
* ``isolated_data`` -- ``NCLIB_DATA`` in the test's temporary folder, no ``NCLIB_PROFILE``,
  so every default cache and download location is private to the test;
* ``counting_cache`` -- :class:`CountingCache`, a cache that counts the entries it computes.

torch is imported only by the fixtures that need it, so the core's tests run without it.
"""

from __future__ import annotations

from collections import Counter

import pytest

from nclib.cache import Cache


class CountingCache(Cache):
    """A cache that counts how often each kind of entry had to be computed (``computed[kind]``)."""

    def __init__(self, folder, enabled=True):
        super().__init__(folder, enabled)
        self.computed = Counter()

    def _counted(self, kind, compute):
        def wrapped():
            self.computed[kind] += 1
            return compute()
        return wrapped

    def arrays(self, kind, parts, compute, code=None):
        return super().arrays(kind, parts, self._counted(kind, compute), code=code)

    def weights(self, kind, parts, compute, code=None):
        return super().weights(kind, parts, self._counted(kind, compute), code=code)


@pytest.fixture
def counting_cache():
    """The :class:`CountingCache` class: ``counting_cache(folder)`` makes one."""
    return CountingCache


@pytest.fixture
def quiet(monkeypatch):
    """No progress bars."""
    monkeypatch.setenv("NCLIB_PROGRESS", "0")


@pytest.fixture
def single_thread():
    """torch on one thread during the test; the previous thread count restored after."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def quiet_single_thread(quiet, single_thread):
    """No progress bars, torch on one thread."""


@pytest.fixture
def isolated_data(monkeypatch, tmp_path):
    """``NCLIB_DATA`` (every default cache) under the test's ``tmp_path / "data"``; no ``NCLIB_PROFILE``."""
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("NCLIB_PROFILE", raising=False)
    return tmp_path / "data"
