"""Tests of nclib.cache: keys, hits and misses, atomic writes, corrupt entries, weights."""

import json

import numpy as np
import pandas as pd
import pytest
import torch

import nclib.cache
from nclib.cache import Cache, cache_key, fingerprint


def counter(value):
    """A compute function that records its calls."""
    calls = []

    def compute():
        calls.append(1)
        return value

    return compute, calls


def entries(folder):
    return sorted(p.name for p in folder.rglob("*") if p.is_file())


# ----------------------------------------------------------------------------- keys
def test_key_is_order_independent_and_sensitive_to_every_part():
    assert cache_key(a=1, b="x") == cache_key(b="x", a=1)
    assert cache_key(a=1, b="x") != cache_key(a=2, b="x")
    assert cache_key(a=1) != cache_key(a=1, b=None)
    assert cache_key(settings={"lr": 1e-4}) != cache_key(settings={"lr": 1e-3})


def test_key_changes_with_the_nclib_version(monkeypatch):
    before = cache_key(model="m")
    monkeypatch.setattr(nclib.cache, "__version__", "999.0")
    assert cache_key(model="m") != before


def test_key_is_the_hash_of_the_canonical_json():
    import hashlib

    text = json.dumps({"nclib": nclib.__version__, "b": 2, "a": 1}, sort_keys=True)
    assert cache_key(b=2, a=1) == hashlib.sha256(text.encode()).hexdigest()[:24]


def test_fingerprint_sees_values_shape_and_dtype():
    base = fingerprint(np.arange(6))
    assert fingerprint(np.arange(6)) == base
    assert fingerprint(np.arange(6).reshape(2, 3)) != base
    assert fingerprint(np.arange(6, dtype=np.int32)) != base
    assert fingerprint(np.r_[np.arange(5), 9]) != base
    assert fingerprint(np.arange(3), np.arange(3, 6)) != base


# ----------------------------------------------------------------------------- arrays and tables
def test_arrays_hit_and_miss(tmp_path):
    cache = Cache(tmp_path)
    compute, calls = counter({"x": np.arange(3.0), "name": np.array(["a", "b"])})
    first = cache.arrays("demo", {"n": 3}, compute)
    second = cache.arrays("demo", {"n": 3}, compute)
    assert len(calls) == 1
    np.testing.assert_array_equal(second["x"], [0.0, 1.0, 2.0])
    assert second["name"].tolist() == ["a", "b"]
    assert first.keys() == second.keys()
    cache.arrays("demo", {"n": 4}, compute)  # other parts: a miss
    cache.arrays("other", {"n": 3}, compute)  # other kind: a miss
    assert len(calls) == 3
    assert cache.path("demo", {"n": 3}, ".npz").is_file()


def test_floats_round_trip_exactly(tmp_path):
    cache = Cache(tmp_path)
    values = np.random.default_rng(0).normal(size=100)
    cache.arrays("demo", {}, lambda: {"v": values})
    assert np.array_equal(cache.arrays("demo", {}, lambda: 1 / 0)["v"], values)


def test_table_hit_and_miss(tmp_path):
    cache = Cache(tmp_path)
    compute, calls = counter(pd.DataFrame({"model": ["a", "b"], "value": [0.5, 2.0]}))
    cache.table("runs", {"k": 1}, compute)
    table = cache.table("runs", {"k": 1}, compute)
    assert len(calls) == 1
    assert table.model.tolist() == ["a", "b"] and table.value.tolist() == [0.5, 2.0]


def test_disabled_cache_always_computes_and_writes_nothing(tmp_path):
    cache = Cache(tmp_path, enabled=False)
    compute, calls = counter({"x": np.zeros(2)})
    cache.arrays("demo", {}, compute)
    cache.arrays("demo", {}, compute)
    assert len(calls) == 2 and entries(tmp_path) == []


def test_default_folder_follows_nclib_data(monkeypatch, tmp_path):
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path))
    assert Cache().folder == tmp_path / "cache"


# ----------------------------------------------------------------------------- atomic writes
def test_failing_compute_leaves_no_entry(tmp_path):
    cache = Cache(tmp_path)

    def fail():
        raise RuntimeError("killed")

    with pytest.raises(RuntimeError, match="killed"):
        cache.arrays("demo", {}, fail)
    assert entries(tmp_path) == []


def test_failing_write_leaves_no_partial_file(tmp_path, monkeypatch):
    cache = Cache(tmp_path)

    def broken_savez(handle, **arrays):
        handle.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")

    monkeypatch.setattr(nclib.cache.np, "savez", broken_savez)
    with pytest.raises(OSError, match="disk full"):
        cache.arrays("demo", {}, lambda: {"x": np.zeros(3)})
    assert entries(tmp_path) == []  # neither the entry nor its temporary file
    monkeypatch.undo()
    compute, calls = counter({"x": np.ones(3)})
    assert cache.arrays("demo", {}, compute)["x"].tolist() == [1.0, 1.0, 1.0] and len(calls) == 1


def test_corrupt_array_entry_is_recomputed(tmp_path):
    cache = Cache(tmp_path)
    cache.arrays("demo", {}, lambda: {"x": np.zeros(3)})
    path = cache.path("demo", {}, ".npz")
    path.write_bytes(path.read_bytes()[:20])  # truncated by a crash
    compute, calls = counter({"x": np.full(3, 7.0)})
    assert cache.arrays("demo", {}, compute)["x"].tolist() == [7.0, 7.0, 7.0]
    assert len(calls) == 1
    assert cache.arrays("demo", {}, compute)["x"].tolist() == [7.0, 7.0, 7.0] and len(calls) == 1


def test_pickled_object_arrays_are_not_loaded(tmp_path):
    cache = Cache(tmp_path)
    path = cache.path("demo", {}, ".npz")
    path.parent.mkdir(parents=True)
    with open(path, "wb") as handle:
        np.savez(handle, x=np.array([{"a": 1}], dtype=object))
    compute, calls = counter({"x": np.arange(2)})
    assert cache.arrays("demo", {}, compute)["x"].tolist() == [0, 1] and len(calls) == 1


# ----------------------------------------------------------------------------- weights
def test_weights_round_trip(tmp_path):
    cache = Cache(tmp_path)
    layer = torch.nn.Linear(3, 2)
    compute, calls = counter(layer.state_dict())
    cache.weights("model", {"name": "layer"}, compute)
    loaded = cache.weights("model", {"name": "layer"}, compute)
    assert len(calls) == 1
    fresh = torch.nn.Linear(3, 2)
    fresh.load_state_dict(loaded)
    assert torch.equal(fresh.weight, layer.weight) and torch.equal(fresh.bias, layer.bias)


def test_corrupt_weights_are_recomputed(tmp_path):
    cache = Cache(tmp_path)
    cache.weights("model", {}, lambda: {"w": torch.zeros(2)})
    path = cache.path("model", {}, ".pt")
    path.write_bytes(path.read_bytes()[:10])
    compute, calls = counter({"w": torch.ones(2)})
    assert cache.weights("model", {}, compute)["w"].tolist() == [1.0, 1.0] and len(calls) == 1


CALLED = []


def _record_call():
    CALLED.append(1)
    return "payload"


class Hostile:
    """Unpickling it would run ``_record_call``: what ``weights_only=True`` must refuse."""

    def __reduce__(self):
        return (_record_call, ())


def test_weights_are_loaded_with_weights_only(tmp_path):
    cache = Cache(tmp_path)
    path = cache.path("model", {}, ".pt")
    path.parent.mkdir(parents=True)
    torch.save({"w": torch.zeros(1), "extra": Hostile()}, path)
    compute, calls = counter({"w": torch.ones(1)})
    assert cache.weights("model", {}, compute)["w"].tolist() == [1.0]
    assert len(calls) == 1 and CALLED == []


# ----------------------------------------------------------------------------- integrity (digests)
def flip_bit(path, position=None):
    data = bytearray(path.read_bytes())
    position = len(data) // 2 if position is None else position
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def weights_value():
    return {"w": torch.arange(64, dtype=torch.float32), "b": torch.ones(3)}


KINDS = {
    "arrays": (".npz", lambda: {"x": np.arange(64.0), "y": np.ones(3)}),
    "table": (".csv", lambda: pd.DataFrame({"model": ["a", "b"] * 20, "value": np.arange(40) / 7})),
    "weights": (".pt", weights_value),
}


@pytest.mark.parametrize("method", sorted(KINDS))
def test_every_entry_has_a_digest_sidecar(tmp_path, method):
    import hashlib

    suffix, value = KINDS[method]
    cache = Cache(tmp_path)
    getattr(cache, method)("k", {}, value)
    path = cache.path("k", {}, suffix)
    assert Cache.digest_path(path).read_text().strip() == hashlib.sha256(path.read_bytes()).hexdigest()
    assert entries(tmp_path) == sorted([path.name, path.name + ".sha256"])


@pytest.mark.parametrize("method", sorted(KINDS))
def test_a_flipped_bit_anywhere_means_recompute_and_is_logged(tmp_path, method, caplog):
    suffix, value = KINDS[method]
    cache = Cache(tmp_path)
    getattr(cache, method)("k", {}, value)
    path = cache.path("k", {}, suffix)
    size = path.stat().st_size
    for position in (size // 3, size // 2, size - 5):  # header, payload, trailer
        flip_bit(path, position)
        compute, calls = counter(value())
        with caplog.at_level("WARNING", logger="nclib.cache"):
            getattr(cache, method)("k", {}, compute)
        assert len(calls) == 1, position
        assert "does not match its digest" in caplog.text
        caplog.clear()
        getattr(cache, method)("k", {}, compute)  # rewritten, verified: a hit
        assert len(calls) == 1


def test_a_changed_number_in_a_table_is_never_returned(tmp_path):
    cache = Cache(tmp_path)
    table = pd.DataFrame({"model": ["a", "b"], "value": [0.125, 0.5]})
    cache.table("k", {}, lambda: table)
    path = cache.path("k", {}, ".csv")
    path.write_text(path.read_text().replace("0.125", "0.126"))  # CSV has no checksum of its own
    assert pd.read_csv(path)["value"].tolist() == [0.126, 0.5]  # pandas alone reads it happily
    assert cache.table("k", {}, lambda: table)["value"].tolist() == [0.125, 0.5]


def test_changed_weights_are_never_returned(tmp_path):
    cache = Cache(tmp_path)
    weights = {"w": torch.full((256,), 0.5)}
    cache.weights("m", {}, lambda: weights)
    path = cache.path("m", {}, ".pt")
    raw = bytearray(path.read_bytes())
    offset = raw.index(np.float32(0.5).tobytes() * 16)
    raw[offset + 3] ^= 0x01  # 0.5 -> another float, the archive stays loadable
    path.write_bytes(bytes(raw))
    try:
        changed = torch.load(path, weights_only=True)["w"]
        assert not torch.equal(changed, weights["w"])  # torch alone may return changed weights
    except RuntimeError:
        pass  # or refuse; either way the cache must recompute
    compute, calls = counter(weights)
    assert torch.equal(cache.weights("m", {}, compute)["w"], weights["w"]) and len(calls) == 1


def test_a_dropped_array_member_means_recompute(tmp_path):
    cache = Cache(tmp_path)
    cache.arrays("k", {}, lambda: {"x": np.zeros(3), "y": np.ones(3)})
    path = cache.path("k", {}, ".npz")
    with open(path, "wb") as handle:  # a valid archive with one member missing, old digest kept
        np.savez(handle, x=np.zeros(3))
    compute, calls = counter({"x": np.zeros(3), "y": np.ones(3)})
    assert sorted(cache.arrays("k", {}, compute)) == ["x", "y"] and len(calls) == 1


def test_a_missing_digest_is_a_miss(tmp_path, caplog):
    cache = Cache(tmp_path)
    cache.weights("m", {}, weights_value)
    path = cache.path("m", {}, ".pt")
    Cache.digest_path(path).unlink()  # a writer killed between payload and digest
    compute, calls = counter(weights_value())
    with caplog.at_level("WARNING", logger="nclib.cache"):
        cache.weights("m", {}, compute)
    assert len(calls) == 1 and "no readable digest" in caplog.text
    assert Cache.digest_path(path).is_file()


def test_a_verified_but_unparsable_entry_is_a_miss(tmp_path):
    import hashlib

    cache = Cache(tmp_path)
    path = cache.path("k", {}, ".npz")
    path.parent.mkdir(parents=True)
    path.write_bytes(b"not an archive")
    Cache.digest_path(path).write_text(hashlib.sha256(b"not an archive").hexdigest())
    compute, calls = counter({"x": np.ones(2)})
    assert cache.arrays("k", {}, compute)["x"].tolist() == [1.0, 1.0] and len(calls) == 1


def test_writes_are_fsynced_and_renamed(tmp_path, monkeypatch):
    import os

    synced, replaced = [], []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real_fsync(fd))[1])
    monkeypatch.setattr(os, "replace", lambda a, b: (replaced.append(Path(b).name), real_replace(a, b))[1])
    cache = Cache(tmp_path)
    cache.arrays("k", {}, lambda: {"x": np.zeros(2)})
    name = cache.path("k", {}, ".npz").name
    assert replaced == [name, name + ".sha256"]  # payload first, then its digest
    assert len(synced) >= 2


# ----------------------------------------------------------------------------- code hashes
from pathlib import Path  # noqa: E402

from nclib.cache import code_hash, nclib_code_hash  # noqa: E402


@pytest.fixture
def scratch_module(tmp_path, monkeypatch):
    folder = tmp_path / "src"
    folder.mkdir()
    (folder / "nclib_scratch_mod.py").write_text("VALUE = 1\n")
    package = folder / "nclib_scratch_pkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "inner.py").write_text("X = 1\n")
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_code_hash_follows_the_source(scratch_module):
    import os

    module = scratch_module / "nclib_scratch_mod.py"
    before = code_hash("nclib_scratch_mod")
    assert code_hash("nclib_scratch_mod") == before and len(before) == 16
    module.write_text("VALUE = 2\n")
    os.utime(module, ns=(0, module.stat().st_mtime_ns + 10**9))
    assert code_hash("nclib_scratch_mod") != before
    package = code_hash("nclib_scratch_pkg")
    inner = scratch_module / "nclib_scratch_pkg" / "inner.py"
    inner.write_text("X = 22\n")
    assert code_hash("nclib_scratch_pkg") != package  # a package covers its files


def test_code_hash_ignores_docstrings_comments_and_layout(scratch_module):
    import os

    module = scratch_module / "nclib_scratch_mod.py"
    module.write_text('"""A module."""\n\n\ndef f(x):\n    """Twice x."""\n    return 2 * x\n')
    before = code_hash("nclib_scratch_mod")

    def rewrite(text, step):
        module.write_text(text)
        os.utime(module, ns=(0, module.stat().st_mtime_ns + step * 10**9))
        return code_hash("nclib_scratch_mod")

    edited = '"""Another text."""\n# a comment\ndef f(x):\n    """Doubles x."""\n    return 2*x  # twice\n'
    assert rewrite(edited, 1) == before
    assert rewrite('def f(x):\n    return 2 * x\n', 2) == before  # docstrings removed
    assert rewrite('def f(x):\n    return 3 * x\n', 3) != before  # the code changed
    assert rewrite('def f(x):\n    "a string statement that is not first"\n    return 2 * x\n', 4) \
        == before  # a leading string in a body is its docstring
    assert rewrite('def f(x):\n    y = 1\n    "not a docstring"\n    return 2 * x\n', 5) != before


def test_code_hash_takes_modules_and_is_order_free():
    import nclib._validation
    import nclib.seed

    assert code_hash(nclib._validation) == code_hash("nclib._validation")
    assert code_hash("nclib.seed", "nclib._validation") == code_hash("nclib._validation", "nclib.seed", "nclib.seed")
    assert code_hash("nclib.seed") != code_hash("nclib._validation")
    assert nclib_code_hash() == code_hash("nclib") != code_hash("nclib.scores")


@pytest.mark.parametrize("bad", [(), ("nclib.no_such_module",), ("math",), (3,)])
def test_code_hash_refuses_what_it_cannot_hash(bad):
    with pytest.raises(ValueError):
        code_hash(*bad)


def test_code_joins_the_key(tmp_path, scratch_module):
    import os

    cache = Cache(tmp_path)
    compute, calls = counter({"x": np.zeros(1)})
    cache.arrays("k", {"a": 1}, compute, code="nclib_scratch_mod")
    cache.arrays("k", {"a": 1}, compute, code=["nclib_scratch_mod"])
    assert len(calls) == 1
    assert cache.path("k", {"a": 1}, ".npz", code="nclib_scratch_mod") != cache.path("k", {"a": 1}, ".npz")
    assert cache.path("k", {"a": 1}, ".npz", code="nclib_scratch_mod") == \
        cache.path("k", {"a": 1, "code_hash": code_hash("nclib_scratch_mod")}, ".npz")
    module = scratch_module / "nclib_scratch_mod.py"
    module.write_text("VALUE = 3  # the algorithm changed\n")
    os.utime(module, ns=(0, module.stat().st_mtime_ns + 10**9))
    cache.arrays("k", {"a": 1}, compute, code="nclib_scratch_mod")
    assert len(calls) == 2
    with pytest.raises(ValueError, match="code_hash"):
        cache.path("k", {"code_hash": "x"}, ".npz", code="nclib_scratch_mod")


# ----------------------------------------------------------------------------- orphans, info, clear
def age(path, seconds):
    import os
    import time

    stamp = time.time() - seconds
    os.utime(path, (stamp, stamp))


def test_old_orphans_are_removed_on_open_and_young_ones_kept(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    old, young = folder / ".abc.npz.x1y2.part", folder / ".abc.npz.z9.part"
    old.write_bytes(b"half an entry")
    young.write_bytes(b"being written")
    age(old, 3600)
    Cache(tmp_path)
    assert not old.exists() and young.exists()
    Cache(tmp_path, enabled=False)  # a disabled cache touches nothing
    age(young, 3600)
    assert young.exists()


def test_info_and_clear(tmp_path):
    cache = Cache(tmp_path)
    cache.arrays("features", {"m": 1}, lambda: {"x": np.zeros(100)})
    cache.arrays("features", {"m": 2}, lambda: {"x": np.zeros(100)})
    cache.table("runs", {}, lambda: pd.DataFrame({"a": [1]}))
    orphan = tmp_path / "features" / ".x.npz.q.part"
    orphan.write_bytes(b"x")
    age(orphan, 3600)
    info = cache.info().set_index("kind")
    assert info["entries"].to_dict() == {"features": 2, "runs": 1}
    assert info.loc["features", "bytes"] > 1600
    assert cache.orphans() == [orphan]
    age(cache.path("features", {"m": 1}, ".npz"), 3 * 86_400)
    assert cache.clear(older_than_days=2) == {"entries": 1, "bytes": pytest.approx(1000, rel=0.5), "orphans": 1}
    assert cache.info()["entries"].sum() == 2
    assert cache.clear()["entries"] == 2
    assert entries(tmp_path) == []
    with pytest.raises(ValueError, match="older_than_days"):
        cache.clear(older_than_days=-1)
