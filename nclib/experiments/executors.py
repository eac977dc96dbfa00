"""Where the runner's units of work run: in this process, in local processes, or on Dask.

:func:`nclib.experiments.runner.run_experiment` turns a config into :class:`Unit` s --
prepare a model, extract its embeddings and train its head regime, fine-tune it with one
seed, compute one score -- and hands each batch of independent units to an executor's
:meth:`Executor.map`, which returns their results in the order of the units:

* :class:`SequentialExecutor` (the default) runs them one after the other in this process;
* :class:`ProcessExecutor` runs them in a pool of local processes (``spawn`` start), each
  with its share of the cores' threads (the book's experiments use it: on two cores the
  digits experiment took 194 s instead of 326 s from a cold cache);
* :class:`DaskExecutor` runs them on a Dask distributed cluster: the scheduler at an
  address, or a ``LocalCluster`` it starts and closes itself.

A unit is a module-level function and its arguments, so it pickles and runs anywhere nclib
is installed. Workers read and write the same :class:`nclib.cache.Cache` (a folder on a
shared filesystem for a cluster); its entries are written atomically and idempotently, so
any number of workers give the tables of the sequential run, bit for bit when each unit
has as many threads as it would have here (the thread count changes floating-point
rounding, which training can amplify). A unit whose main cache entry is already stored
runs in this process, so a warm rerun starts no worker.

**Failures.** A unit that raises is logged (warning on logger ``"nclib.executors"``)
with its key and run once more; if it fails again, :class:`UnitFailed` is raised, naming
the unit's key. Where it can, the error is also an instance of the original exception's
class (a ``ValueError`` stays catchable as ``ValueError``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

logger = logging.getLogger("nclib.executors")

EXECUTORS = ("sequential", "processes", "dask")
"""Names accepted by :func:`get_executor` (and ``python -m nclib run --executor``)."""

RETRIES = 1
"""How many times a failed unit is run again before its failure is raised."""

CONNECT_TIMEOUT = 30.0
"""Seconds :class:`DaskExecutor` waits for a scheduler by default."""


@dataclass(frozen=True)
class Unit:
    """One unit of work: ``fn(*args)``, identified by ``key``.

    Attributes
    ----------
    key : str
        What the unit computes and the cache key of its main entry, e.g.
        ``"full mlp-wide seed 1 [3f0c...]"``; failures name it.
    fn : callable
        A module-level function (it must pickle for the process and Dask executors).
    args : tuple
        Its positional arguments (picklable likewise).

    Examples
    --------
    >>> Unit("double 2", pow, (2, 2)).run()
    4
    """

    key: str
    fn: Callable
    args: tuple = field(default=())

    def run(self):
        """Run the unit here and return its result."""
        return self.fn(*self.args)


class UnitFailed(Exception):
    """A unit failed on its first run and on its retry; ``key`` names it.

    Raised as a subclass of the original exception's class where that class can take a
    single message (``ValueError``, ``RuntimeError``, ...), with the original as its cause.
    """

    key: str = ""

    def __reduce__(self):  # the combined classes are made on the fly: pickle by recipe
        return _failure, (type(self).__mro__[1] if type(self) is not UnitFailed else UnitFailed, str(self), self.key)


_KEYED: dict = {}  # exception class -> its UnitFailed subclass


def _failure(kind: type, message: str, key: str) -> UnitFailed:
    failure = None
    if issubclass(kind, Exception) and not issubclass(kind, UnitFailed):
        try:
            if kind not in _KEYED:
                _KEYED[kind] = type(kind.__name__, (kind, UnitFailed), {
                    "__module__": kind.__module__, "__qualname__": kind.__qualname__,
                    "__reduce__": UnitFailed.__reduce__, "__str__": Exception.__str__})
            failure = _KEYED[kind](message)
        except Exception:  # noqa: BLE001 - a class that cannot be combined or built from a message
            failure = None
    if failure is None:
        failure = UnitFailed(message)
    failure.key = key
    return failure


def unit_failed(unit: Unit, error: BaseException, attempts: int) -> UnitFailed:
    """The :class:`UnitFailed` for ``unit`` after ``attempts`` runs that ended in ``error``.

    Examples
    --------
    >>> error = unit_failed(Unit("score nc [ab12]", len), ValueError("bad labels"), 2)
    >>> isinstance(error, ValueError), isinstance(error, UnitFailed), error.key
    (True, True, 'score nc [ab12]')
    >>> str(error)
    'unit score nc [ab12] failed (2 attempts): bad labels'
    >>> import pickle; type(pickle.loads(pickle.dumps(error))).__mro__[1:3] == (ValueError, UnitFailed)
    True
    """
    cause = str(error) or type(error).__name__
    message = f"unit {unit.key} failed ({attempts} attempt{'s' if attempts != 1 else ''}): {cause}"
    failure = _failure(type(error), message, unit.key)
    failure.__cause__ = error
    return failure


def _log_retry(unit: Unit, error: BaseException) -> None:
    logger.warning("unit %s failed (%s: %s); running it once more", unit.key, type(error).__name__, error)


class Executor:
    """Runs units of work; subclasses implement :meth:`_map`.

    Use it as a context manager (or call :meth:`close`) to release its workers.
    """

    name = "executor"

    def map(self, units: Sequence[Unit], desc: str | None = None) -> list:
        """Run independent ``units`` and return their results in the same order.

        Parameters
        ----------
        units : sequence of Unit
        desc : str, optional
            Label of the progress bar (sequential executor) or of the log lines.

        Returns
        -------
        list

        Raises
        ------
        UnitFailed
            A unit failed twice (once and on its retry); the message names its key.
        """
        units = list(units)
        if not units:
            return []
        return self._map(units, desc)

    def _map(self, units: list, desc: str | None) -> list:  # pragma: no cover - abstract
        raise NotImplementedError

    def close(self) -> None:
        """Release the executor's workers (nothing for the sequential one)."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SequentialExecutor(Executor):
    """Runs the units one after the other in this process (the default).

    Examples
    --------
    >>> SequentialExecutor().map([Unit("a", abs, (-1,)), Unit("b", max, (2, 3))])
    [1, 3]
    """

    name = "sequential"

    def _map(self, units: list, desc: str | None) -> list:
        from nclib.progress import progress

        results = []
        for unit in (progress(units, desc=desc) if desc else units):
            for attempt in range(RETRIES + 1):
                try:
                    results.append(unit.run())
                    break
                except Exception as error:  # noqa: BLE001 - retried once, then raised with the key
                    if attempt == RETRIES:
                        raise unit_failed(unit, error, attempt + 1) from error
                    _log_retry(unit, error)
        return results


def _limit_worker_threads(num_threads: int) -> None:
    """Initializer of a process worker: its thread limits, for the worker's whole life."""
    from nclib.threads import ThreadLimits

    ThreadLimits(num_threads)


def _run_unit(unit: Unit):
    """Top-level entry point of the process and Dask workers."""
    return unit.run()


class _FutureExecutor(Executor):
    """Shared logic: submit every unit, resubmit a failed one once, keep the order."""

    def _submit(self, unit: Unit):  # pragma: no cover - abstract
        raise NotImplementedError

    def _result(self, future):
        return future.result()

    def _map(self, units: list, desc: str | None) -> list:
        futures = [self._submit(unit) for unit in units]
        results = []
        for unit, future in zip(units, futures):
            for attempt in range(RETRIES + 1):
                try:
                    results.append(self._result(future))
                    break
                except Exception as error:  # noqa: BLE001
                    if attempt == RETRIES:
                        self._cancel(futures)
                        raise unit_failed(unit, error, attempt + 1) from error
                    _log_retry(unit, error)
                    self._recover(error)
                    future = self._submit(unit)
        if desc:
            logger.info("%s: %d unit(s) done", desc, len(units))
        return results

    def _cancel(self, futures) -> None:
        for future in futures:
            future.cancel()

    def _recover(self, error: BaseException) -> None:
        """Make the executor usable again after ``error`` (before a retry)."""


class ProcessExecutor(_FutureExecutor):
    """Runs the units in a pool of local processes started with ``spawn``.

    Parameters
    ----------
    workers : int, optional
        Number of processes (default: ``os.cpu_count()``).
    threads_per_worker : int, optional
        Threads each worker gives torch and the BLAS / OpenMP pools
        (:class:`nclib.threads.ThreadLimits`), set once when the worker starts. Default:
        the machine's cores shared out, ``max(1, os.cpu_count() // workers)``, so that
        the workers together do not oversubscribe the cores (two workers on two cores,
        each with two threads, run slower than one worker).

    Examples
    --------
    >>> with ProcessExecutor(workers=1) as executor:  # doctest: +SKIP
    ...     executor.map([Unit("a", abs, (-1,))])
    [1]
    >>> ProcessExecutor(workers=2, threads_per_worker=1)
    ProcessExecutor(workers=2, threads_per_worker=1)
    """

    name = "processes"

    def __init__(self, workers: int | None = None, threads_per_worker: int | None = None):
        import os

        for label, value in (("workers", workers), ("threads_per_worker", threads_per_worker)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise ValueError(f"{label} must be a positive integer, got {value!r}")
        self.workers = workers
        cores = os.cpu_count() or 1
        self.threads_per_worker = threads_per_worker or max(1, cores // (workers or cores))
        self._pool = None

    def _submit(self, unit: Unit):
        if self._pool is None:
            import multiprocessing
            from concurrent.futures import ProcessPoolExecutor

            self._pool = ProcessPoolExecutor(max_workers=self.workers,
                                             mp_context=multiprocessing.get_context("spawn"),
                                             initializer=_limit_worker_threads,
                                             initargs=(self.threads_per_worker,))
        return self._pool.submit(_run_unit, unit)

    def _recover(self, error: BaseException) -> None:
        from concurrent.futures.process import BrokenProcessPool

        if isinstance(error, BrokenProcessPool) and self._pool is not None:  # a worker died: a fresh pool
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __repr__(self) -> str:
        return f"ProcessExecutor(workers={self.workers}, threads_per_worker={self.threads_per_worker})"


def _import_distributed():
    try:
        import distributed
    except ImportError:
        raise ImportError("the dask executor needs Dask distributed: pip install 'nclib[dask]' "
                          "(or 'dask[distributed]')") from None
    return distributed


THREAD_VARIABLES = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
"""Environment variables that size the BLAS / OpenMP pools (and so the float rounding of
matrix products): a local cluster's workers get this process's values."""


def local_cluster(**options):
    """A ``distributed.LocalCluster`` whose workers size their thread pools like this process.

    Dask's nanny starts workers with one BLAS / OpenMP thread (``OMP_NUM_THREADS=1``, ...)
    unless told otherwise; matrix products then round differently from this process's,
    and scores could differ from a sequential run in the last bits. Here the workers get
    this process's ``OMP_NUM_THREADS``, ``MKL_NUM_THREADS`` and ``OPENBLAS_NUM_THREADS``
    (unset stays unset), and this process's environment, which the nanny updates when
    it spawns workers, is restored afterwards.

    Parameters
    ----------
    **options
        ``LocalCluster`` options; defaults ``threads_per_worker=1``, ``processes=True``,
        ``dashboard_address=None`` (no dashboard).

    Examples
    --------
    >>> with local_cluster(n_workers=1) as cluster:  # doctest: +SKIP
    ...     len(cluster.workers)
    1
    """
    import os

    import dask

    distributed = _import_distributed()
    options = {"threads_per_worker": 1, "processes": True, "dashboard_address": None, **options}
    environ = {name: value for name, value in (dask.config.get("distributed.nanny.pre-spawn-environ") or {}).items()
               if name not in THREAD_VARIABLES}
    environ.update({name: os.environ[name] for name in THREAD_VARIABLES if name in os.environ})
    saved = dict(os.environ)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
            return distributed.LocalCluster(**options)
    finally:
        os.environ.clear()
        os.environ.update(saved)


class DaskExecutor(Executor):
    """Runs the units on a Dask distributed cluster.

    Parameters
    ----------
    scheduler : str, optional
        Address of a running scheduler (``"tcp://host:8786"``). Default: start a
        ``distributed.LocalCluster`` on this machine, closed with the executor.
    timeout : float, optional
        Seconds to wait for the scheduler before giving up (default :data:`CONNECT_TIMEOUT`).
    **cluster_options
        Passed to :func:`local_cluster` when no address is given (``n_workers``,
        ``threads_per_worker``, ``processes``, ...).

    Raises
    ------
    ImportError
        ``distributed`` is not installed.
    OSError
        The scheduler cannot be reached (a ``TimeoutError`` or ``OSError``).

    Examples
    --------
    >>> with DaskExecutor(n_workers=2, threads_per_worker=1) as executor:  # doctest: +SKIP
    ...     executor.map([Unit("a", abs, (-1,)), Unit("b", max, (2, 3))])
    [1, 3]
    """

    name = "dask"

    def __init__(self, scheduler: str | None = None, timeout: float | None = None, **cluster_options):
        distributed = _import_distributed()
        timeout = CONNECT_TIMEOUT if timeout is None else timeout
        self.scheduler, self.cluster = scheduler, None
        if scheduler is None:
            self.cluster = local_cluster(**cluster_options)
            self.client = distributed.Client(self.cluster, timeout=timeout)
        else:
            if cluster_options:
                raise ValueError(f"cluster options {sorted(cluster_options)} only apply without a scheduler address")
            self.client = distributed.Client(scheduler, timeout=timeout)

    def _map(self, units: list, desc: str | None) -> list:
        client = self.client
        # each distinct argument (the run's settings, embeddings, the pool of a score) is sent
        # to the cluster once, however many units share it, instead of inside the task graph
        distinct = {}
        for unit in units:
            for arg in unit.args:
                distinct.setdefault(id(arg), arg)
        scattered = dict(zip(distinct, client.scatter(list(distinct.values()), hash=False)))
        payloads = [tuple(scattered[id(arg)] for arg in unit.args) for unit in units]

        def submit(unit, payload):
            return client.submit(unit.fn, *payload, key=f"{_task_name(unit)}-{_fresh()}", pure=False)

        futures = [submit(unit, payload) for unit, payload in zip(units, payloads)]
        results = []
        for index, unit in enumerate(units):
            future = futures[index]
            for attempt in range(RETRIES + 1):
                try:
                    results.append(future.result())
                    break
                except Exception as error:  # noqa: BLE001
                    if attempt == RETRIES:
                        client.cancel(futures)
                        raise unit_failed(unit, error, attempt + 1) from error
                    _log_retry(unit, error)
                    future = submit(unit, payloads[index])
        if desc:
            logger.info("%s: %d unit(s) done", desc, len(units))
        return results

    def close(self) -> None:
        client, cluster = getattr(self, "client", None), getattr(self, "cluster", None)
        if client is not None:
            client.close()
            self.client = None
        if cluster is not None:
            cluster.close()
            self.cluster = None

    def __repr__(self) -> str:
        return f"DaskExecutor(scheduler={self.scheduler!r})"


def _task_name(unit: Unit) -> str:
    text = "".join(c if c.isalnum() or c in "-_." else "-" for c in unit.key.split(" [")[0])
    return text[:60] or "unit"


def _fresh() -> str:
    import uuid

    return uuid.uuid4().hex[:12]


def get_executor(name: str | Executor | None = None, scheduler: str | None = None, **options) -> Executor:
    """The executor called ``name`` (:data:`EXECUTORS`), or ``name`` itself if it is one.

    Parameters
    ----------
    name : {"sequential", "processes", "dask"}, Executor or None
        ``None``: :class:`SequentialExecutor`.
    scheduler : str, optional
        Dask scheduler address (only with ``"dask"``).
    **options
        Passed to the executor (``workers=`` and ``threads_per_worker=`` for processes, cluster options for Dask).

    Examples
    --------
    >>> get_executor()
    SequentialExecutor()
    >>> get_executor("processes", workers=2, threads_per_worker=1)
    ProcessExecutor(workers=2, threads_per_worker=1)
    """
    if name is None or name == "sequential":
        executor = SequentialExecutor()
    elif isinstance(name, Executor):
        executor = name
    elif name == "processes":
        executor = ProcessExecutor(**options)
    elif name == "dask":
        return DaskExecutor(scheduler, **options)
    else:
        raise ValueError(f"unknown executor {name!r}; known: {EXECUTORS}")
    if scheduler is not None:
        raise ValueError("a scheduler address only applies to the dask executor")
    return executor


__all__ = ["EXECUTORS", "THREAD_VARIABLES", "DaskExecutor", "Executor", "ProcessExecutor", "SequentialExecutor", "Unit",
           "UnitFailed", "get_executor", "local_cluster", "unit_failed"]
