"""How stable an evaluation of transferability scores is under small changes of the setup.

Agostinelli et al. (ECCV 2022) showed that which score "wins" can flip when the pool of
models, the transfer seed or the target data change a little. These functions redo an
evaluation under such changes, reading the tables of
:func:`nclib.experiments.runner.run_experiment` (no experiment is repeated):

* :func:`bootstrap_measures` -- the models resampled with replacement (percentile intervals);
* :func:`seed_evaluation` -- each transfer seed on its own instead of the seed mean;
* :func:`subsample_scores` and :func:`evaluate_by` -- scores recomputed on random
  class-stratified subsets of the training data, then evaluated per subset;
* :func:`winners` -- how often each score is the best across setups.

Every measure is oriented by the score's ``greater_is_better`` as in
:mod:`nclib.evaluate`: larger always means a better score. The chapter "All scores"
is built from these functions; :func:`nclib.plotting.stability_plot` draws them.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from nclib.evaluate import evaluate_run, evaluate_scores, score_sign
from nclib.scores import compute_scores

SELECTION_MEASURES = ("weighted_tau", "pearson", "relative_top1")
"""The three measures of the "all scores" chapter (see :func:`nclib.evaluate.ranking_measures`)."""


def _selection_measures(oriented: np.ndarray, performance: np.ndarray) -> dict:
    """Weighted tau, Pearson and relative top-1 of oriented scores (NaN where undefined)."""
    constant = np.ptp(oriented) == 0 or np.ptp(performance) == 0
    best = performance.max()
    return {
        "weighted_tau": float("nan") if constant else float(stats.weightedtau(oriented, performance)[0]),
        "pearson": float("nan") if constant else float(np.corrcoef(oriented, performance)[0, 1]),
        "relative_top1": float(performance[np.argmax(oriented)] / best) if best != 0 else float("nan"),
    }


def bootstrap_measures(scores: pd.DataFrame, performance, *, num_resamples: int = 1000, level: float = 0.9,
                       random_state: int = 0, greater_is_better=None) -> pd.DataFrame:
    """Point estimates and bootstrap intervals of the selection measures, resampling models.

    Each replicate draws M models with replacement from the M of the pool (the same
    draws for every score, so scores are compared on paired replicates) and recomputes
    :data:`SELECTION_MEASURES`; replicates where a measure is undefined (fewer than two
    distinct models, constant values) are left out of that measure's interval.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    performance : pandas.Series or mapping
        Performance per model (larger is better).
    num_resamples : int
    level : float
        Coverage of the percentile interval, in (0, 1).
    random_state : int
    greater_is_better : mapping of str to bool, optional
        Directions of scores that are not in the registry (as in :func:`nclib.evaluate.evaluate_scores`).

    Returns
    -------
    pandas.DataFrame
        Columns ``score, measure, value, low, high, resamples`` (``resamples``: the
        replicates where the measure was defined).

    References
    ----------
    A. Agostinelli, M. Pándy, J. Uijlings, T. Mensink, V. Ferrari. How stable are
    transferability metrics evaluations? ECCV 2022.

    Examples
    --------
    >>> s = pd.DataFrame({"model": list("abcd"), "score": "logme", "value": [1.0, 2.0, 3.0, 4.0]})
    >>> table = bootstrap_measures(s, {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}, num_resamples=50)
    >>> table.set_index("measure").loc["pearson", ["value", "low", "high"]].tolist()
    [1.0, 1.0, 1.0]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    if num_resamples < 1:
        raise ValueError(f"num_resamples must be positive, got {num_resamples!r}")
    performance = pd.Series(performance, dtype=float)
    missing = set(scores["model"]) - set(performance.index)
    if missing:
        raise ValueError(f"no performance for models {sorted(missing)}")
    rng = np.random.default_rng(random_state)
    rows = []
    draws = None
    for score, group in scores.groupby("score", sort=False):
        sign = score_sign(score, greater_is_better)
        values = sign * group["value"].to_numpy(float)
        target = performance.loc[group["model"]].to_numpy(float)
        if draws is None or draws.shape[1] != len(values):
            draws = rng.integers(0, len(values), size=(num_resamples, len(values)))
        point = _selection_measures(values, target)
        replicates = pd.DataFrame([_selection_measures(values[d], target[d]) for d in draws])
        for measure in SELECTION_MEASURES:
            sample = replicates[measure].dropna().to_numpy()
            low, high = (np.quantile(sample, [(1 - level) / 2, (1 + level) / 2]) if len(sample)
                         else (float("nan"), float("nan")))
            rows.append((score, measure, point[measure], float(low), float(high), len(sample)))
    return pd.DataFrame(rows, columns=["score", "measure", "value", "low", "high", "resamples"])


def seed_evaluation(scores: pd.DataFrame, transfer: pd.DataFrame, greater_is_better=None) -> pd.DataFrame:
    """Evaluate the scores against each transfer seed separately instead of the seed mean.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``.

    Returns
    -------
    pandas.DataFrame
        Columns ``score, regime, seed, measure, value`` (all measures of
        :func:`nclib.evaluate.ranking_measures`).

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"], "score": "logme", "value": [1.0, 2.0]})
    >>> t = pd.DataFrame({"model": ["a", "b", "a", "b"], "regime": "head", "seed": [0, 0, 1, 1],
    ...                   "metric": "accuracy", "value": [0.4, 0.6, 0.7, 0.5]})
    >>> seed_evaluation(s, t).query("measure == 'pearson'").value.tolist()
    [1.0, -1.0]
    """
    tables = []
    for (regime, seed), group in transfer.groupby(["regime", "seed"], sort=False):
        table = evaluate_scores(scores, group.set_index("model")["value"], greater_is_better)
        tables.append(table.assign(regime=regime, seed=seed))
    if not tables:
        raise ValueError("the transfer table is empty")
    return pd.concat(tables, ignore_index=True)[["score", "regime", "seed", "measure", "value"]]


def subsample_scores(features: dict, labels, names, *, fraction: float = 0.5, num_subsets: int = 5,
                     random_state: int = 0, source_probs: dict | None = None, options=None) -> pd.DataFrame:
    """Recompute scores on random class-stratified subsets of the training samples.

    Subset ``k`` keeps ``fraction`` of every class (:func:`nclib._sampling.stratified_split`
    with seed ``random_state + k``), the same samples for every model.

    Parameters
    ----------
    features : dict of str to ndarray of shape (N, D_m)
    labels : array-like of shape (N,)
    names : list of str
        Registry scores.
    fraction : float
        In (0, 1).
    num_subsets : int
    random_state : int
    source_probs : dict of str to ndarray of shape (N, Z_m), optional
    options : dict of str to dict, optional
        Keyword options per score.

    Returns
    -------
    pandas.DataFrame
        Columns ``subset, model, score, value, seconds``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> feats = {"a": rng.normal(size=(40, 2)) + labels[:, None], "b": rng.normal(size=(40, 2))}
    >>> table = subsample_scores(feats, labels, ["nc"], num_subsets=3)
    >>> table.shape, table.subset.unique().tolist()
    ((6, 5), [0, 1, 2])
    """
    from nclib._sampling import stratified_split

    if not 0 < fraction < 1:
        raise ValueError(f"fraction must lie in (0, 1), got {fraction!r}")
    labels = np.asarray(labels)
    tables = []
    for subset in range(num_subsets):
        keep, _ = stratified_split(labels, (fraction, 1 - fraction), seed=random_state + subset)
        probs = None if source_probs is None else {m: p[keep] for m, p in source_probs.items()}
        table = compute_scores({m: f[keep] for m, f in features.items()}, labels[keep], probs, names, options)
        tables.append(table.assign(subset=subset))
    return pd.concat(tables, ignore_index=True)[["subset", "model", "score", "value", "seconds"]]


def evaluate_by(scores: pd.DataFrame, transfer: pd.DataFrame, by: str, greater_is_better=None) -> pd.DataFrame:
    """:func:`nclib.evaluate.evaluate_run` for each value of a column of a score table.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value`` and ``by`` (e.g. ``subset`` or ``size``).
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``; seeds are averaged.
    by : str

    Returns
    -------
    pandas.DataFrame
        Columns ``<by>, score, regime, measure, value``.

    Examples
    --------
    >>> s = pd.DataFrame({"subset": [0, 0, 1, 1], "model": ["a", "b"] * 2, "score": "logme",
    ...                   "value": [1.0, 2.0, 2.0, 1.0]})
    >>> t = pd.DataFrame({"model": ["a", "b"], "regime": "head", "seed": 0, "metric": "accuracy",
    ...                   "value": [0.4, 0.6]})
    >>> evaluate_by(s, t, "subset").query("measure == 'relative_top1'").value.tolist()
    [1.0, 0.666...]
    """
    tables = [evaluate_run(group[["model", "score", "value"]], transfer, greater_is_better).assign(**{by: key})
              for key, group in scores.groupby(by, sort=False)]
    if not tables:
        raise ValueError("the score table is empty")
    return pd.concat(tables, ignore_index=True)[[by, "score", "regime", "measure", "value"]]


def winners(evaluations: pd.DataFrame, by, measure: str = "weighted_tau") -> pd.Series:
    """How often each score is the best by ``measure`` across setups (ties share the win).

    Parameters
    ----------
    evaluations : pandas.DataFrame
        Columns ``score, measure, value`` and the setup columns ``by``.
    by : str or list of str
        Columns that identify one setup (e.g. ``["experiment", "regime", "seed"]``).
    measure : str

    Returns
    -------
    pandas.Series
        Share of setups won per score (sums to 1), sorted descending.

    Examples
    --------
    >>> e = pd.DataFrame({"setup": [0, 0, 1, 1], "score": ["nc", "logme"] * 2,
    ...                   "measure": "weighted_tau", "value": [0.9, 0.5, 0.1, 0.7]})
    >>> winners(e, "setup").to_dict()
    {'nc': 0.5, 'logme': 0.5}
    """
    by = [by] if isinstance(by, str) else list(by)
    table = evaluations[evaluations["measure"] == measure].dropna(subset=["value"])
    wins = {}
    groups = table.groupby(by, sort=False)
    for _, group in groups:
        top = group[group["value"] == group["value"].max()]["score"]
        for score in top:
            wins[score] = wins.get(score, 0.0) + 1.0 / len(top)
    if not wins:
        raise ValueError(f"no defined {measure!r} values to compare")
    return (pd.Series(wins, name="share") / groups.ngroups).sort_values(ascending=False, kind="stable")


def pooled_draws(evaluations, measure: str) -> pd.DataFrame:
    """Bootstrap replicates of one measure averaged over setups and regimes, draw by draw.

    Replicate ``b`` of the pooled value is the mean of replicate ``b`` of every (setup,
    regime) unit, exactly as :func:`nclib.uncertainty.pooled_evaluation` forms its
    interval; here the replicates themselves are returned, so that scores can be
    compared draw by draw (:func:`pairwise_superiority`).

    Parameters
    ----------
    evaluations : dict of str to nclib.uncertainty.IntervalEvaluation
        Per setup, ``evaluation_with_intervals(..., return_draws=True)`` (the same
        ``num_resamples`` everywhere, a different ``random_state`` per setup).
    measure : str
        E.g. ``"weighted_tau"``.

    Returns
    -------
    pandas.DataFrame
        Shape (num_resamples, num_scores): index ``resample``, one column per score. A
        replicate where some unit's measure is undefined is NaN.

    References
    ----------
    A. Agostinelli et al. How stable are transferability metrics evaluations? ECCV 2022.

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> def unit(values):
    ...     return SimpleNamespace(draws=pd.DataFrame({
    ...         "score": ["nc", "nc", "leep", "leep"], "regime": "head", "measure": "kendall",
    ...         "resample": [0, 1, 0, 1], "value": values}))
    >>> pooled_draws({"a": unit([1.0, 0.0, 0.2, 0.4]), "b": unit([0.0, 0.0, 0.4, 0.4])},
    ...              "kendall").round(2).to_dict("list")
    {'nc': [0.5, 0.0], 'leep': [0.3, 0.4]}
    """
    frames = [ev.draws.assign(setup=name) for name, ev in evaluations.items()]
    if not frames:
        raise ValueError("evaluations must not be empty")
    draws = pd.concat(frames, ignore_index=True)
    draws = draws[draws["measure"] == measure]
    if draws.empty:
        raise ValueError(f"no bootstrap draws of measure {measure!r}")
    pooled = {}
    for score, group in draws.groupby("score", sort=False):
        # one column per (setup, regime) unit the score has; setups may differ in regimes
        per_unit = group.pivot(index="resample", columns=["setup", "regime"], values="value")
        pooled[score] = per_unit.mean(axis=1, skipna=False)
    return pd.DataFrame(pooled).rename_axis(index="resample", columns="score")


def pairwise_superiority(draws: pd.DataFrame) -> pd.DataFrame:
    """Fraction of paired replicates in which each score beats each other score.

    Parameters
    ----------
    draws : pandas.DataFrame
        Shape (num_resamples, num_scores), one column per score, larger is better (e.g.
        :func:`pooled_draws`); row ``b`` of every column must come from the same
        bootstrap draw. Replicates with a NaN in either column are left out of that pair.

    Returns
    -------
    pandas.DataFrame
        Square, rows and columns the scores: entry ``(a, b)`` is the share of replicates
        with ``a > b``, ties counting one half; so ``(a, b) + (b, a) = 1``. The diagonal
        is NaN.

    Examples
    --------
    >>> d = pd.DataFrame({"nc": [0.9, 0.5, 0.4, 0.6], "leep": [0.1, 0.5, 0.8, 0.2]})
    >>> shares = pairwise_superiority(d)
    >>> float(shares.loc["nc", "leep"]), float(shares.loc["leep", "nc"])
    (0.625, 0.375)
    """
    values = draws.to_numpy(float)
    names = list(draws.columns)
    shares = np.full((len(names), len(names)), np.nan)
    for i in range(len(names)):
        for j in range(len(names)):
            if i == j:
                continue
            a, b = values[:, i], values[:, j]
            keep = np.isfinite(a) & np.isfinite(b)
            if keep.any():
                wins = (a[keep] > b[keep]).sum() + 0.5 * (a[keep] == b[keep]).sum()
                shares[i, j] = wins / keep.sum()
    return pd.DataFrame(shares, index=pd.Index(names, name="score"), columns=pd.Index(names, name="versus"))


__all__ = ["SELECTION_MEASURES", "bootstrap_measures", "evaluate_by", "pairwise_superiority", "pooled_draws",
           "seed_evaluation", "subsample_scores", "winners"]
