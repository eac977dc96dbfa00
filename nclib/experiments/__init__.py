"""Experiments: one declarative configuration each, run by one shared runner.

:func:`~nclib.experiments.runner.run_experiment` turns an :class:`~nclib.experiments.runner.ExperimentConfig` into the tables every chapter,
the command line and the tests read; :data:`~nclib.experiments.runner.EXPERIMENTS` names the registered
experiments (``toy``, ``cifar10``, ``coswara``), imported only when used;
:func:`load_all` puts the tables of several of them side by side. Importing this
package does not import torch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from nclib.experiments.runner import (
    COLUMNS,
    CSV_COLUMNS,
    EXPERIMENTS,
    ExperimentConfig,
    Results,
    get_experiment,
    run_experiment,
)

TABLES = ("scores", "transfer", "evaluation")
"""The tables :func:`load_all` and :func:`combine` put together."""


def combine(results: Mapping[str, Results], tables: Sequence[str] = TABLES) -> dict:
    """The tables of several runs, each concatenated with an ``experiment`` column first.

    Parameters
    ----------
    results : mapping of str to Results
        ``{experiment label: results}``, in the order the rows should come.
    tables : sequence of str
        Names of tables of :class:`~nclib.experiments.runner.Results` (:data:`~nclib.experiments.runner.COLUMNS`).

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{table: DataFrame}`` with columns ``experiment`` and the table's own.

    Examples
    --------
    >>> import dataclasses
    >>> from nclib.experiments.toy import toy_experiment
    >>> one = pd.DataFrame({"model": ["a"], "score": ["nc"], "value": [1.0], "seconds": [0.0]})
    >>> run = Results(toy_experiment("quick"), one, *[pd.DataFrame(columns=COLUMNS[t])
    ...               for t in ("transfer", "evaluation", "history", "models")])
    >>> combine({"first": run, "second": run}, tables=["scores"])["scores"][["experiment", "model"]].values.tolist()
    [['first', 'a'], ['second', 'a']]
    """
    unknown = sorted(set(tables) - set(COLUMNS))
    if unknown:
        raise ValueError(f"unknown tables {unknown}; known: {sorted(COLUMNS)}")
    combined = {}
    for table in tables:
        parts = [getattr(result, table).assign(experiment=label) for label, result in results.items()]
        columns = ["experiment"] + list(COLUMNS[table])
        combined[table] = (pd.concat(parts, ignore_index=True)[columns] if parts
                           else pd.DataFrame(columns=columns))
    return combined


def load_all(names: Sequence[str], profile: str | None = None, *, cache=None,
             tables: Sequence[str] = TABLES) -> dict:
    """The tables (scores, transfer, evaluation) of several registered experiments, side by side.

    Each experiment is run with :func:`~nclib.experiments.runner.run_experiment` (``get_experiment(name, profile)``);
    with a warm cache that reads stored entries and trains nothing.

    Parameters
    ----------
    names : sequence of str
        Registered experiments (:data:`~nclib.experiments.runner.EXPERIMENTS`).
    profile : {"quick", "paper"}, optional
        Default: ``$NCLIB_PROFILE`` (``quick``).
    cache : nclib.cache.Cache, optional
        Default: the data folder's cache.
    tables : sequence of str
        Which tables of :class:`~nclib.experiments.runner.Results` to return.

    Returns
    -------
    dict of str to pandas.DataFrame
        ``{table: DataFrame}``, each with an ``experiment`` column first (see :func:`combine`).

    Examples
    --------
    >>> from nclib.cache import Cache
    >>> tables = load_all(["toy"], "quick", cache=Cache(enabled=False))  # doctest: +SKIP
    >>> sorted(tables), set(tables["scores"]["experiment"])  # doctest: +SKIP
    (['evaluation', 'scores', 'transfer'], {'toy'})
    """
    names = list(names)
    if not names or len(set(names)) < len(names):
        raise ValueError(f"names must be distinct registered experiments, got {names!r}")
    results = {name: run_experiment(get_experiment(name, profile), cache=cache) for name in names}
    return combine(results, tables)


__all__ = [
    "COLUMNS",
    "CSV_COLUMNS",
    "EXPERIMENTS",
    "TABLES",
    "ExperimentConfig",
    "Results",
    "combine",
    "get_experiment",
    "load_all",
    "run_experiment",
]
