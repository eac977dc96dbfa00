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


def score_sign(score: str, greater_is_better: Mapping[str, bool] | None = None) -> float:
    """+1 if a larger value of ``score`` predicts better transfer, -1 if a smaller one does.

    Multiplying a score's values by its sign orients every score the same way (larger is
    better), which is how the evaluation, the uncertainty and the agreement analyses read
    the direction each score declares (:class:`nclib.scores.ScoreInfo` ``greater_is_better``).

    Parameters
    ----------
    score : str
        A :data:`nclib.scores.REGISTRY` name, or any name given in ``greater_is_better``.
    greater_is_better : mapping of str to bool, optional
        Directions that override or extend the registry's (e.g. for a score of one's own).

    Returns
    -------
    float
        1.0 or -1.0.

    Raises
    ------
    ValueError
        ``score`` is neither in the registry nor in ``greater_is_better``.

    Examples
    --------
    >>> score_sign("logme"), score_sign("mine", {"mine": False})
    (1.0, -1.0)
    """
    if greater_is_better is not None and score in greater_is_better:
        return 1.0 if greater_is_better[score] else -1.0
    if score not in REGISTRY:
        raise ValueError(
            f"score {score!r} is not in REGISTRY; pass greater_is_better={{{score!r}: ...}}"
        )
    return 1.0 if REGISTRY[score].greater_is_better else -1.0


def _nearly_constant(a: np.ndarray) -> bool:
    """Equal to float rounding (means over seeds of equal accuracies can differ in the last bit)."""
    return bool(np.ptp(a) <= 64 * np.finfo(float).eps * np.abs(a).max())


def _correlation(function, x, y) -> float:
    if _nearly_constant(x) or _nearly_constant(y):
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
            score_sign(score, greater_is_better) > 0, top_k,
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


def _as_tuple(columns) -> tuple:
    if columns is None:
        return ()
    return (columns,) if isinstance(columns, str) else tuple(columns)


PICK_COLUMNS = ["score", "regime", "pick", "performance", "best", "best_performance", "is_best", "rank",
                "num_models"]
"""Columns of :func:`picks` (after the ``by`` columns)."""


def picks(scores: pd.DataFrame, transfer: pd.DataFrame, regime: str | Sequence[str] | None = None,
          greater_is_better: Mapping[str, bool] | None = None, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """The model each score picks, and how that pick fared after transfer.

    A score picks the model it rates best: the largest value of a greater-is-better score,
    the smallest of a lower-is-better one such as NC (directions from
    :data:`nclib.scores.REGISTRY`, or ``greater_is_better``). The pick is then placed
    among the models by their seed-averaged transfer performance (larger is better).

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value`` (and the ``by`` columns): one row per model and
        score. Rows with a missing or infinite value are left out: each score picks and is
        ranked among the models it rates (as :func:`evaluate_scores` sees them).
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value`` (and the ``by`` columns), as
        :attr:`nclib.experiments.runner.Results.transfer`; averaged over seeds.
    regime : str or sequence of str, optional
        The regimes to report; default every regime of ``transfer``.
    greater_is_better : mapping of str to bool, optional
        Directions for scores not in the registry (or overrides).
    by : str or sequence of str, optional
        Columns of both tables that tell setups apart, e.g. ``"experiment"`` for the
        tables of :func:`nclib.experiments.combine`; picks are made within each setup.

    Returns
    -------
    pandas.DataFrame
        One row per (setup, score, regime), in the order the scores and regimes first
        appear; columns the ``by`` columns, then ``PICK_COLUMNS``: ``pick`` (the
        model; on tied score values the first in ``scores`` order, as
        :func:`ranking_measures`' ``relative_top1``), ``performance`` (its mean
        performance), ``best`` and ``best_performance`` (the model with the best mean
        performance, first on ties), ``is_best`` (the pick's performance equals the best),
        ``rank`` (1 = best; tied performances share the better rank) and ``num_models``
        (the M models ranked).

    Raises
    ------
    ValueError
        Missing columns, a scored model without performance, an unknown regime, a score
        with no finite value, or a score not in the registry without a direction.

    Examples
    --------
    NC is lower-is-better, so it picks ``b``, the second-best model; LogME picks ``c``.

    >>> scores = pd.DataFrame({"model": ["a", "b", "c"] * 2, "score": ["nc"] * 3 + ["logme"] * 3,
    ...                        "value": [0.5, 0.1, 0.3, 1.0, 2.0, 3.0]})
    >>> transfer = pd.DataFrame({"model": ["a", "b", "c"], "regime": "head", "seed": 0,
    ...                          "metric": "accuracy", "value": [0.6, 0.7, 0.8]})
    >>> picks(scores, transfer)[["score", "pick", "best", "is_best", "rank"]].values.tolist()
    [['nc', 'b', 'c', False, 2], ['logme', 'c', 'c', True, 1]]
    """
    by = _as_tuple(by)
    for name, table, needed in (("scores", scores, {"model", "score", "value"}),
                                ("transfer", transfer, {"model", "regime", "metric", "value"})):
        missing = sorted((needed | set(by)) - set(table.columns))
        if missing:
            raise ValueError(f"{name} lacks columns {missing}")
    means = transfer.groupby([*by, "model", "regime", "metric"], sort=False, as_index=False)["value"].mean()
    regimes = list(dict.fromkeys(means["regime"])) if regime is None else list(_as_tuple(regime))
    unknown = sorted(set(regimes) - set(means["regime"]))
    if unknown:
        raise ValueError(f"no transfer results for regimes {unknown}; known: {sorted(set(means['regime']))}")
    rows = []
    setups = scores.groupby(list(by), sort=False) if by else [((), scores)]
    for setup, setup_scores in setups:
        setup = setup if isinstance(setup, tuple) else (setup,)
        setup_means = means
        for column, value in zip(by, setup):
            setup_means = setup_means[setup_means[column] == value]
        for score, group in setup_scores.groupby("score", sort=False):
            values = group["value"].to_numpy(dtype=float)
            group = group[np.isfinite(values)]
            if group.empty:
                raise ValueError(f"score {score!r} has no finite value{f' in {setup}' if by else ''}")
            if group["model"].duplicated().any():
                raise ValueError(f"score {score!r} rates a model twice{f' in {setup}' if by else ''}")
            oriented = group["value"].to_numpy(dtype=float) * score_sign(score, greater_is_better)
            pick = group["model"].iloc[int(np.argmax(oriented))]
            for name in regimes:
                performance = setup_means[setup_means["regime"] == name].set_index("model")["value"]
                lacking = sorted(set(group["model"]) - set(performance.index))
                if lacking:
                    raise ValueError(f"no {name!r} performance for models {lacking}"
                                     f"{f' in {setup}' if by else ''}")
                ranked = performance.loc[group["model"]]
                best = ranked.index[int(np.argmax(ranked.to_numpy()))]
                rank = int((ranked > ranked[pick]).sum()) + 1
                rows.append((*setup, score, name, pick, float(ranked[pick]), best, float(ranked[best]),
                             bool(ranked[pick] == ranked[best]), rank, len(ranked)))
    return pd.DataFrame(rows, columns=[*by, *PICK_COLUMNS])


def score_ranks(evaluation: pd.DataFrame, measure: str, by: str | Sequence[str] | None = ("regime",),
                scores: Sequence[str] | None = None) -> pd.DataFrame:
    """Rank the scores against each other by one evaluation measure, within each setup.

    Every measure of :func:`evaluate_run` but ``regret`` is oriented so that larger means
    a better score; rank 1 is the leader.

    Parameters
    ----------
    evaluation : pandas.DataFrame
        Columns ``score, measure, value`` and the ``by`` columns (as
        :attr:`nclib.experiments.runner.Results.evaluation`, or several runs' evaluations
        concatenated with a setup column).
    measure : str
        E.g. ``"kendall"``; ``"regret"`` is ranked smallest first.
    by : str or sequence of str, optional
        The columns that tell setups apart (default ``"regime"``); ``None`` ranks all rows
        together.
    scores : sequence of str, optional
        Rank only these scores (default every score in the table).

    Returns
    -------
    pandas.DataFrame
        Columns the ``by`` columns, ``score, value, rank``: ``rank`` 1 for the best value
        in its setup, ties sharing the better rank (``method="min"``), NaN for a NaN
        value. Rows sorted by setup (first appearance), rank, then score name, so
        ``table[table["rank"] == 1].groupby(by).score.first()`` is each setup's leader
        (alphabetically first on ties, as ``idxmax`` over a score-indexed pivot).

    Raises
    ------
    ValueError
        Missing columns, or no row of ``measure`` (of the chosen scores).

    Examples
    --------
    >>> evaluation = pd.DataFrame({"score": ["nc", "leep", "logme"], "regime": "head",
    ...                            "measure": "kendall", "value": [0.8, 0.2, 0.8]})
    >>> score_ranks(evaluation, "kendall").values.tolist()
    [['head', 'logme', 0.8, 1.0], ['head', 'nc', 0.8, 1.0], ['head', 'leep', 0.2, 3.0]]
    """
    by = _as_tuple(by)
    missing = sorted(({"score", "measure", "value"} | set(by)) - set(evaluation.columns))
    if missing:
        raise ValueError(f"evaluation lacks columns {missing}")
    rows = evaluation[evaluation["measure"] == measure]
    if scores is not None:
        rows = rows[rows["score"].isin(list(scores))]
    if rows.empty:
        raise ValueError(f"no {measure!r} rows{' of scores ' + str(list(scores)) if scores is not None else ''}")
    rows = rows[[*by, "score", "value"]].reset_index(drop=True)
    ascending = measure == "regret"
    if by:
        rows["rank"] = rows.groupby(list(by), sort=False)["value"].rank(ascending=ascending, method="min")
        order = {key: i for i, key in enumerate(dict.fromkeys(zip(*[rows[c] for c in by])))}
        rows["_setup"] = [order[key] for key in zip(*[rows[c] for c in by])]
    else:
        rows["rank"] = rows["value"].rank(ascending=ascending, method="min")
        rows["_setup"] = 0
    rows = rows.sort_values(["_setup", "rank", "score"], kind="stable", na_position="last")
    return rows.drop(columns="_setup").reset_index(drop=True)
