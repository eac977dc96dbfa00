"""Units of work run anywhere: sequential, local processes and a real Dask cluster give the same tables."""

import dataclasses
import importlib.util
import multiprocessing
import os
import pickle
import sys
from functools import partial

import numpy as np
import pandas as pd
import pytest

from nclib.cache import Cache, entry_lock, lock_path
from nclib.experiments.executors import (DaskExecutor, ProcessExecutor, SequentialExecutor, Unit, UnitFailed,
                                         get_executor, local_cluster)
from nclib.experiments.runner import COLUMNS, run_experiment
from nclib.experiments.toy import prepare_toy_model, toy_experiment

TABLES = [name for name in COLUMNS if name != "scores"]


def small_toy():
    """The toy experiment, cut down: one pre-training epoch, two seeds, few epochs, two scores (picklable)."""
    return dataclasses.replace(toy_experiment("quick"), seeds=(0, 1), scores=("nc", "logme"), head_epochs=4,
                               full_epochs=2, prepare_model=partial(prepare_toy_model, pretrain_epochs=1),
                               key_parts={"pretrain_epochs": 1, "pretrain_lr": 1e-2})


def assert_same_tables(a, b):
    for name in TABLES:
        pd.testing.assert_frame_equal(a.tables()[name], b.tables()[name], check_exact=True, obj=name)
    # a score's value is reproduced; the seconds it took are not
    pd.testing.assert_frame_equal(a.scores.drop(columns="seconds"), b.scores.drop(columns="seconds"), check_exact=True)
    assert a.predictions.keys() == b.predictions.keys()
    assert all(np.array_equal(a.predictions[k], b.predictions[k]) for k in a.predictions)


class CountingCache(Cache):
    """A cache that records the kinds of the entries it had to compute."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.computed = []

    def arrays(self, kind, parts, compute, code=None):
        return super().arrays(kind, parts, lambda: self.computed.append(kind) or compute(), code=code)

    def weights(self, kind, parts, compute, code=None):
        return super().weights(kind, parts, lambda: self.computed.append(kind) or compute(), code=code)


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return run_experiment(small_toy(), cache=Cache(tmp_path_factory.mktemp("sequential")))


# ----------------------------------------------------------------------------- units
class Flaky:
    """Fails the first ``failures`` calls (counted in a file, so across processes too)."""

    def __init__(self, folder, failures):
        self.counter, self.failures = folder / "calls", failures

    def __call__(self, value):
        calls = int(self.counter.read_text()) if self.counter.exists() else 0
        self.counter.write_text(str(calls + 1))
        if calls < self.failures:
            raise RuntimeError(f"flaky failure {calls + 1}")
        return value * 2


def test_a_unit_that_fails_once_is_retried(tmp_path, caplog):
    flaky = Flaky(tmp_path, failures=1)
    with caplog.at_level("WARNING", logger="nclib.executors"):
        assert SequentialExecutor().map([Unit("double 3 [k1]", flaky, (3,)), Unit("abs", abs, (-1,))]) == [6, 1]
    assert "double 3 [k1]" in caplog.text and "running it once more" in caplog.text
    assert (tmp_path / "calls").read_text() == "2"


def test_a_unit_that_always_fails_raises_with_its_key(tmp_path):
    flaky = Flaky(tmp_path, failures=5)
    with pytest.raises(UnitFailed, match=r"unit double 3 \[k1\] failed \(2 attempts\): flaky failure 2") as caught:
        SequentialExecutor().map([Unit("double 3 [k1]", flaky, (3,))])
    assert caught.value.key == "double 3 [k1]" and isinstance(caught.value, RuntimeError)
    assert (tmp_path / "calls").read_text() == "2"   # once, and one retry
    with pytest.raises(ValueError, match="not a number"):  # the original class is kept
        SequentialExecutor().map([Unit("parse", float, ("not a number",))])


def test_executors_by_name():
    assert isinstance(get_executor(), SequentialExecutor) and isinstance(get_executor("sequential"), SequentialExecutor)
    assert get_executor("processes", workers=2).workers == 2
    with pytest.raises(ValueError, match="unknown executor"):
        get_executor("threads")
    with pytest.raises(ValueError, match="only applies to the dask"):
        get_executor("processes", scheduler="tcp://localhost:8786")


def test_the_toy_config_and_its_units_pickle():
    config = small_toy()
    assert pickle.loads(pickle.dumps(config)).settings() == config.settings()


# ----------------------------------------------------------------------------- the cache
def _store(folder, index):
    cache = Cache(folder, clean=False)
    # np.savez stamps the time into the archive, so two writers' payloads may differ in bytes
    return cache.arrays("race", {"n": 1}, lambda: {"x": np.arange(1000) * 1.0, "writer": np.int64(index)})["x"].sum()


def test_concurrent_writers_of_one_entry_leave_one_valid_entry(tmp_path):
    context = multiprocessing.get_context("spawn")
    with context.Pool(3) as pool:
        sums = pool.map(partial(_store, tmp_path), range(6))
    assert set(sums) == {np.arange(1000).sum()}
    files = sorted(p.name for p in (tmp_path / "race").iterdir())
    assert len(files) == 2 and files[1].endswith(".npz.sha256")   # one payload, its digest, no lock or temp
    first = Cache(tmp_path).arrays("race", {"n": 1}, lambda: 1 / 0)   # a hit that verifies
    assert first["x"].sum() == np.arange(1000).sum()


def test_a_writer_keeps_an_entry_that_is_already_valid(tmp_path):
    cache = Cache(tmp_path)
    cache.arrays("demo", {}, lambda: {"x": np.zeros(2)})
    path = cache.path("demo", {}, ".npz")
    before = path.stat().st_mtime_ns, path.read_bytes()
    cache._store(path, lambda temporary: 1 / 0)   # a second writer: never even writes
    assert (path.stat().st_mtime_ns, path.read_bytes()) == before
    with entry_lock(path):
        assert lock_path(path).is_file()
    assert not lock_path(path).exists()


def _die_once(folder):
    marker = folder / "died"
    if not marker.exists():
        marker.write_text("1")
        os._exit(1)   # a worker that dies: the pool breaks
    return "survived"


def test_a_process_that_dies_is_retried_on_a_fresh_pool(tmp_path):
    with ProcessExecutor(workers=1) as executor:
        assert executor.map([Unit("die once", _die_once, (tmp_path,))]) == ["survived"]


# ----------------------------------------------------------------------------- whole runs
def test_processes_give_the_sequential_tables(sequential, tmp_path):
    # bit for bit at the same number of threads per unit (the thread count changes float rounding)
    import torch

    with ProcessExecutor(workers=2, threads_per_worker=torch.get_num_threads()) as executor:
        parallel = run_experiment(small_toy(), cache=Cache(tmp_path), executor=executor)
        assert executor._pool is not None
    assert_same_tables(sequential, parallel)
    with ProcessExecutor(workers=2) as executor:   # a warm rerun: every unit is stored, no worker starts
        again = run_experiment(small_toy(), cache=Cache(tmp_path), executor=executor)
        assert executor._pool is None
    assert_same_tables(sequential, again)


def _threads() -> tuple:
    import torch
    from threadpoolctl import threadpool_info

    return torch.get_num_threads(), {pool["num_threads"] for pool in threadpool_info()}


def test_process_workers_share_out_the_cores():
    assert ProcessExecutor(workers=1, threads_per_worker=3).threads_per_worker == 3
    assert ProcessExecutor(workers=2).threads_per_worker == max(1, (os.cpu_count() or 1) // 2)
    assert ProcessExecutor().threads_per_worker == 1
    with ProcessExecutor(workers=1, threads_per_worker=1) as executor:
        assert executor.map([Unit("threads", _threads, ())]) == [(1, {1})]
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="threads_per_worker must be a positive integer"):
            ProcessExecutor(threads_per_worker=bad)


@pytest.mark.parametrize("profile", ["quick", "paper"])
def test_every_registered_experiment_pickles_for_the_workers(profile):
    # a process or Dask worker receives the config and the zoo's specs by pickle
    from nclib.experiments.runner import EXPERIMENTS, get_experiment

    for name in EXPERIMENTS:
        config = get_experiment(name, profile)
        assert pickle.loads(pickle.dumps(config)).settings() == config.settings()
        for spec in config.zoo():
            assert pickle.loads(pickle.dumps(spec)).name == spec.name


def test_a_dask_local_cluster_gives_the_sequential_tables(sequential, tmp_path):
    pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'nclib[dask]')")
    from distributed import Client

    cache = Cache(tmp_path / "cache")
    environ = dict(os.environ)
    # a real LocalCluster (local_cluster: its workers get this process's BLAS thread settings)
    with local_cluster(n_workers=2, threads_per_worker=1, processes=True) as cluster, Client(cluster) as client:
        with DaskExecutor(cluster.scheduler_address) as executor:
            distributed = run_experiment(small_toy(), cache=cache, executor=executor)
            # on the cluster too, a unit that fails once is retried, one that keeps failing names its key
            once, always = tmp_path / "once", tmp_path / "always"
            once.mkdir(), always.mkdir()
            assert executor.map([Unit("flaky [k2]", Flaky(once, failures=1), (4,))]) == [8]
            with pytest.raises(UnitFailed, match=r"unit flaky \[k3\] failed \(2 attempts\): flaky failure 2"):
                executor.map([Unit("flaky [k3]", Flaky(always, failures=9), (4,))])
            assert (once / "calls").read_text() == "2" and (always / "calls").read_text() == "2"
        workers = client.run(os.getpid)
    assert len(workers) == 2 and os.getpid() not in workers.values()
    assert dict(os.environ) == environ   # the nanny's environment changes do not leak into this process
    assert_same_tables(sequential, distributed)
    assert not list(tmp_path.rglob(".*.lock")) and not list(tmp_path.rglob("*.part"))
    warm = CountingCache(tmp_path / "cache")
    assert_same_tables(sequential, run_experiment(small_toy(), cache=warm))
    assert warm.computed == []   # the workers stored every entry: a sequential rerun recomputes nothing


def test_an_unreachable_scheduler_is_an_error():
    pytest.importorskip("distributed", reason="Dask distributed is not installed (pip install 'nclib[dask]')")
    with pytest.raises((OSError, TimeoutError)):
        DaskExecutor("tcp://127.0.0.1:1", timeout=2)


# ----------------------------------------------------------------------------- command line
def test_the_command_line_runs_on_dask_and_refuses_bad_executor_options(tmp_path, monkeypatch, capsys):
    from nclib import cli
    from nclib.experiments import executors

    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "data"))
    assert cli.main(["run", "toy", "--scheduler", "tcp://127.0.0.1:1", "--out", str(tmp_path / "a")]) == 2
    assert "--scheduler needs --executor dask" in capsys.readouterr().err
    monkeypatch.setattr(executors, "CONNECT_TIMEOUT", 1.0)
    if importlib.util.find_spec("distributed") is not None:
        status = cli.main(["run", "toy", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1",
                           "--out", str(tmp_path / "b")])
        err = capsys.readouterr().err
        assert status == 2 and err.startswith("error: cannot reach the Dask scheduler at tcp://127.0.0.1:1")
        assert len(err.strip().splitlines()) == 1
    monkeypatch.setitem(sys.modules, "distributed", None)   # as if Dask were not installed
    assert cli.main(["run", "toy", "--executor", "dask", "--out", str(tmp_path / "c")]) == 2
    assert "pip install 'nclib[dask]'" in capsys.readouterr().err
