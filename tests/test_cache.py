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
