"""How well does a score rank models? Correlation and selection measures.

Every measure is oriented by the score's ``greater_is_better`` (read from
:data:`nclib.scores.REGISTRY`, never guessed): a lower-is-better score such as NC is
negated first, so that for every measure larger means a better score. The one
exception is ``abs_pearson``, the absolute Pearson coefficient the paper reports.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import stats

from nclib.scores import REGISTRY

MEASURES = ("pearson", "abs_pearson", "spearman", "kendall", "weighted_tau", "relative_top1", "regret")


def _direction(score: str, greater_is_better) -> bool:
    if greater_is_better is not None and score in greater_is_better:
        return bool(greater_is_better[score])
    if score not in REGISTRY:
        raise ValueError(
            f"score {score!r} is not in REGISTRY; pass greater_is_better={{{score!r}: ...}}"
        )
    return REGISTRY[score].greater_is_better


def _correlation(function, x, y) -> float:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")  # undefined for constant input
    return float(function(x, y)[0])


def ranking_measures(values: ArrayLike, performance: ArrayLike, greater_is_better: bool,
                     top_k: Sequence[int] = (3,)) -> dict[str, float]:
    """All measures for one score over one pool of models.

    Parameters
    ----------
    values : array-like of shape (M,)
        The score of each of M models.
    performance : array-like of shape (M,)
        Each model's performance after transfer (accuracy, AUROC: larger is better).
    greater_is_better : bool
        The score's direction.
    top_k : tuple of int
        For each k, ``best_in_top{k}`` is 1 when the truly best model is among the k
        models the score rates highest.

    Returns
    -------
    dict of str to float
        ``pearson, abs_pearson, spearman, kendall, weighted_tau`` (correlations, NaN for a
        constant input), ``relative_top1`` (performance of the score's pick over the best
        performance), ``regret`` (1 - relative_top1) and ``best_in_top{k}``.

    References
    ----------
    Weighted Kendall tau: S. Vigna, A weighted correlation index for rankings with ties,
    WWW 2015 (``scipy.stats.weightedtau``), the measure used by You et al. (2021).

    Examples
    --------
    NC is lower-is-better: a score that falls as accuracy rises ranks perfectly.

    >>> m = ranking_measures([0.9, 0.5, 0.1], [70.0, 80.0, 90.0], greater_is_better=False)
    >>> m["pearson"], m["kendall"], m["relative_top1"], m["best_in_top3"]
    (1.0, 1.0, 1.0, 1.0)
    """
    values = np.asarray(values, dtype=float)
    performance = np.asarray(performance, dtype=float)
    if values.shape != performance.shape or values.ndim != 1:
        raise ValueError(f"values {values.shape} and performance {performance.shape} must be equal 1-D shapes")
    if len(values) < 2:
        raise ValueError(f"need at least two models to rank, got {len(values)}")
    if not (np.isfinite(values).all() and np.isfinite(performance).all()):
        raise ValueError("scores and performance must be finite")
    oriented = values if greater_is_better else -values
    pick = int(np.argmax(oriented))
    best = performance.max()
    result = {
        "pearson": _correlation(stats.pearsonr, oriented, performance),
        "abs_pearson": abs(_correlation(stats.pearsonr, values, performance)),
        "spearman": _correlation(stats.spearmanr, oriented, performance),
        "kendall": _correlation(stats.kendalltau, oriented, performance),
        "weighted_tau": _correlation(stats.weightedtau, oriented, performance),
        "relative_top1": float(performance[pick] / best) if best != 0 else float("nan"),
    }
    result["regret"] = 1.0 - result["relative_top1"]
    order = np.argsort(-oriented, kind="stable")
    for k in top_k:
        result[f"best_in_top{k}"] = float(performance.argmax() in order[:k])
    return result


def evaluate_scores(scores: pd.DataFrame, performance: pd.Series | Mapping[str, float],
                    greater_is_better: Mapping[str, bool] | None = None,
                    top_k: Sequence[int] = (3,)) -> pd.DataFrame:
    """Evaluate every score of a tidy score table against model performance.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value`` (as returned by :func:`nclib.compute_scores`).
    performance : pandas.Series or mapping
        Performance per model (index: model name). Every scored model must have one.
    greater_is_better : mapping of str to bool, optional
        Directions for scores that are not in the registry (or overrides).
    top_k : tuple of int

    Returns
    -------
    pandas.DataFrame
        Columns ``score, measure, value``.

    Examples
    --------
    >>> scores = pd.DataFrame({"model": ["a", "b", "c"], "score": "nc", "value": [0.2, 0.4, 0.9]})
    >>> table = evaluate_scores(scores, {"a": 0.9, "b": 0.8, "c": 0.5})
    >>> float(table.query("measure == 'spearman'").value.iloc[0])
    1.0
    """
    performance = pd.Series(performance, dtype=float)
    missing = set(scores["model"]) - set(performance.index)
    if missing:
        raise ValueError(f"no performance for models {sorted(missing)}")
    rows = []
    for score, group in scores.groupby("score", sort=False):
        measures = ranking_measures(
            group["value"].to_numpy(), performance.loc[group["model"]].to_numpy(),
            _direction(score, greater_is_better), top_k,
        )
        rows += [(score, measure, value) for measure, value in measures.items()]
    return pd.DataFrame(rows, columns=["score", "measure", "value"])


def mean_performance(transfer: pd.DataFrame) -> pd.DataFrame:
    """Average a transfer table over seeds: columns ``model, regime, metric, value``.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["a", "a"], "regime": "head", "seed": [0, 1],
    ...                   "metric": "accuracy", "value": [0.5, 0.7]})
    >>> float(mean_performance(t).value.iloc[0])
    0.6
    """
    return transfer.groupby(["model", "regime", "metric"], as_index=False, sort=False)["value"].mean()


def evaluate_run(scores: pd.DataFrame, transfer: pd.DataFrame, greater_is_better: Mapping[str, bool] | None = None,
                 top_k: Sequence[int] = (3,)) -> pd.DataFrame:
    """Evaluate scores against the seed-averaged performance of each transfer regime.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value`` (one metric per regime).

    Returns
    -------
    pandas.DataFrame
        Columns ``score, regime, measure, value``.

    Examples
    --------
    >>> scores = pd.DataFrame({"model": ["a", "b"], "score": "logme", "value": [1.0, 2.0]})
    >>> transfer = pd.DataFrame({"model": ["a", "b"], "regime": "head", "seed": 0,
    ...                          "metric": "accuracy", "value": [0.4, 0.6]})
    >>> evaluate_run(scores, transfer).query("measure == 'relative_top1'").value.tolist()
    [1.0]
    """
    means = mean_performance(transfer)
    tables = []
    for (regime, metric), group in means.groupby(["regime", "metric"], sort=False):
        table = evaluate_scores(scores, group.set_index("model")["value"], greater_is_better, top_k)
        tables.append(table.assign(regime=regime))
    if not tables:
        raise ValueError("the transfer table is empty")
    return pd.concat(tables, ignore_index=True)[["score", "regime", "measure", "value"]]
