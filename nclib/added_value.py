"""Does a probabilistic score add predictive power beyond a pure discriminability measure?

The paper's caveat (a) (Suresh, Abrol and Thakur 2023, Sec. 5.1) is that transferability
scores such as LEEP and LogME, whatever their probabilistic dress, measure little more
than how discriminative frozen embeddings are. If so, a probabilistic score should carry
no information about transfer performance that a pure discriminability measure (the NC
score, GBC, k-NN accuracy) lacks. This module tests that, per setup and pooled over
setups, as an *incremental validity* question (Sechrest 1963): does a practitioner who
already ranks the models by the discriminability score D rank them better after also
taking the probabilistic score P into account?

**The statistic.** For a pool of M models, with both scores oriented so that larger
means "predicted better", the combined ranking is the Borda count of the two (de Borda
1781): the sum of each model's average ranks under P and under D, ties of the sum
broken by D (the incumbent keeps its order unless P overturns it). The statistic is
the gain in rank correlation with the measured performance y,

.. math:: \\Delta = \\rho\\big(\\mathrm{Borda}(P, D),\\ y\\big) - \\rho(D, y),

with Spearman's rho by default (Kendall's tau-b and weighted tau on request). Why this,
for pools of five to eight models:

* **Nothing is fitted to performance.** A regression of y on both scores, or a weight
  chosen to maximise the combined correlation, spends one of five to eight data points
  per parameter and always "improves"; the equal-weight rank sum has no free parameter.
* **It is exactly zero when P adds nothing by construction.** A score that is a
  monotone transform of D gives the same ranks, the same combination and
  ``Delta = 0`` on every resample and every permutation (so does a P that exactly
  reverses D: every sum ties and D decides). Kendall's partial tau of P and y given D
  (Kendall 1942), the textbook alternative, is undefined (0 / 0) precisely then, and
  with M = 5 the two scores often order the pool identically; partial rank
  correlations also need not vanish under conditional independence (Korn 1984), so
  it is no clean "beyond D" measure.
* **Only the pairs P overturns count.** Where the combination keeps D's order the two
  correlations share every term; ``Delta`` is positive when performance sides with P
  on the pairs of models where P overrides D. Breaking ties by D matters: left as
  ties, tau-b drops those pairs from its denominator, which inflates the combined
  correlation whenever D is already good, and in a simulation made the permutation
  test reject a P that was only a noisier copy of D at two to three times its level.
* **Spearman, not Kendall, by default.** Kendall's gain counts only the few pairs the
  combination overturns, and its permutation distribution is so coarse that in a
  simulation (400 pools of six) a P equal to performance, with D random, reached
  p <= 0.05 in 1 % of pools (Spearman: 59 %); Spearman also weighs how far apart the
  models of an overturned pair are.
* **Scale-free.** Only ranks enter, so the scores' units (nats, distances, accuracies)
  do not matter.

**Uncertainty.** *Interval:* the performance resamples of
:func:`nclib.uncertainty.resampled_performance` (seeds and test examples redrawn,
paired across models) give one ``Delta`` per replicate with the scores held fixed; the percentile interval says how much of the gain
is measurement noise in the ground truth. *p-value:* the exact permutation test of
:mod:`nclib.uncertainty` -- all M! orderings of the performance vector for M <= 8 --
applied to ``Delta``. It is exact under the sharp null that performance is unrelated to
both scores. The composite null of interest -- P carries no information about y beyond
D -- has no exact test with a handful of models. Under it, performance tends to side
with an informative D on the overturned pairs, so ``Delta`` leans negative while the
reference distribution is centred on zero: the test is conservative there, which the
tests check by simulation (a P that is D plus noise is called useful in fewer than 5 %
of pools; under 1 % in the simulations behind these notes).
*Pooled:* the mean of ``Delta`` over units (setup x regime), tested against the
stratified permutation distribution (independent orderings per setup; units of one
``group``, e.g. the regimes of one target and zoo, share their ordering because they
share their score vector). Its distribution is computed exactly, as the convolution
of the groups' permutation distributions, when every group has at most eight models; otherwise by Monte Carlo.
p-values are Holm-adjusted (Holm 1979) across the (probabilistic, discriminability)
pairs, within each setup and within the pooled rows.

References
----------
Suresh, Abrol and Thakur. Pitfalls in measuring neural transferability, 2023 (caveat (a)).
L. Sechrest. Incremental validity: a recommendation. Educational and Psychological
Measurement 23(1), 1963.
J.-C. de Borda. Mémoire sur les élections au scrutin, 1781 (the rank-sum combination).
M. G. Kendall. Partial rank correlation. Biometrika 32(3/4), 1942.
E. L. Korn. The ranges of limiting values of some partial correlations under
conditional independence. The American Statistician 38(1), 1984.
S. Holm. A simple sequentially rejective multiple test procedure. Scandinavian Journal
of Statistics 6(2), 1979.
B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap, 1993.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from nclib.agreement import oriented_scores
from nclib.evaluate import mean_performance
from nclib.uncertainty import (
    ALTERNATIVES, MAX_EXACT, _check_level, _check_resamples, _check_transfer_agrees, _design, _interval,
    _p_from_null, _permutations, batch_measures,
)

#: Scores that model the target probabilistically (a likelihood, an evidence, a posterior).
PROBABILISTIC = ("leep", "nce", "logme", "nleep")
#: Scores that read only how separable the classes are in the embedding.
DISCRIMINABILITY = ("nc", "gbc", "knn")
#: Rank measures the gain may be computed with.
GAIN_MEASURES = ("spearman", "kendall", "weighted_tau")
COLUMNS = ["setup", "probabilistic", "discriminability", "measure", "units", "corr_probabilistic",
           "corr_discriminability", "corr_combined", "statistic", "low", "high", "p_value", "p_holm", "verdict"]
_MAX_SUPPORT = 2_000_000  # largest support of the exact pooled distribution before Monte Carlo
_ROUND = 9  # decimals that identify equal statistic values in the exact distribution
_TOL = 1e-7


@dataclass(frozen=True)
class Setup:
    """One unit of the test: the scores of a pool and the performance they should predict.

    Attributes
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``: raw score values (oriented here by
        ``greater_is_better``).
    performance : pandas.Series
        Observed performance of each model (index: model), larger is better, e.g. the
        seed-averaged test accuracy of one regime.
    resamples : pandas.DataFrame, optional
        Shape (B, M), columns the models: performance on B paired bootstrap replicates
        (:func:`nclib.uncertainty.resampled_performance`). Without it there is no interval.
    group : str, optional
        Units with the same group share their permutations (they share one score vector,
        e.g. two regimes of one target and zoo) and must hold the same models. Default:
        a group of its own.
    """

    scores: pd.DataFrame
    performance: pd.Series
    resamples: pd.DataFrame | None = None
    group: str | None = None


# ----------------------------------------------------------------------------- the statistic
def combined_ranking(probabilistic, discriminability) -> np.ndarray:
    """Borda combination of two oriented scores, ties of the rank sum broken by the second.

    Parameters
    ----------
    probabilistic, discriminability : array-like of shape (M,)
        Oriented score values (larger = predicted better).

    Returns
    -------
    ndarray of shape (M,)
        A key that orders the models by ``rank(probabilistic) + rank(discriminability)``
        (ranks 1..M, ties averaged) and, where that sum ties, by ``discriminability``;
        models tied on both stay tied. Only its order is meaningful.

    Examples
    --------
    P exactly reverses D: every rank sum is 4, so D's order stands.

    >>> key = combined_ranking([0.1, 0.5, 0.3], [3.0, 1.0, 2.0])
    >>> np.argsort(-key).tolist()
    [0, 2, 1]
    >>> np.argsort(-combined_ranking([3.0, 2.0, 1.0], [1.0, 3.0, 2.0])).tolist()
    [1, 0, 2]
    """
    p = np.asarray(probabilistic, dtype=float)
    d = np.asarray(discriminability, dtype=float)
    if p.ndim != 1 or p.shape != d.shape:
        raise ValueError(f"scores of shapes {p.shape} and {d.shape} must be equal 1-D shapes")
    rank_d = stats.rankdata(d)
    # rank sums are multiples of 1/2: twice the sum is an integer, and steps of M + 1 exceed
    # any difference of D's ranks (at most M - 1), so D decides only where the sums tie
    return 2.0 * (stats.rankdata(p) + rank_d) * (len(d) + 1) + rank_d


def _correlation_rows(x: np.ndarray, Y: np.ndarray, measure: str) -> np.ndarray:
    """Rank correlation of x with every row of Y; a constant x carries no ordering: 0."""
    if np.ptp(x) == 0:
        out = np.zeros(len(Y))
        out[np.ptp(Y, axis=1) == 0] = np.nan
        return out
    return batch_measures(x, Y, [measure])[measure]


def _check_measure(measure: str) -> str:
    if measure not in GAIN_MEASURES:
        raise ValueError(f"measure must be one of {GAIN_MEASURES}, got {measure!r}")
    return measure


def added_value_statistic(probabilistic, discriminability, performance, measure: str = "spearman") -> np.ndarray:
    """The gain ``rho(Borda(P, D), y) - rho(D, y)`` for many performance vectors at once.

    Parameters
    ----------
    probabilistic, discriminability : array-like of shape (M,)
        Oriented score values (larger = predicted better).
    performance : array-like of shape (K, M) or (M,)
        K performance vectors (observed, bootstrap replicates or permutations).
    measure : {"spearman", "kendall", "weighted_tau"}

    Returns
    -------
    ndarray of shape (K,)
        NaN where a performance vector is constant.

    Examples
    --------
    D orders the pool at random, P exactly as performance: the combination gains.

    >>> y = [0.6, 0.7, 0.8, 0.9]
    >>> added_value_statistic([1, 2, 3, 4], [2, 4, 1, 3], y).round(3).tolist()
    [0.8]

    A monotone transform of D adds nothing, whatever the performance:

    >>> d = np.array([2.0, 4.0, 1.0, 3.0])
    >>> added_value_statistic(np.exp(d), d, [[0.6, 0.7, 0.8, 0.9], [0.9, 0.1, 0.5, 0.2]]).tolist()
    [0.0, 0.0]
    """
    measure = _check_measure(measure)
    d = np.asarray(discriminability, dtype=float)
    combined = combined_ranking(probabilistic, d)
    Y = np.asarray(performance, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    if Y.ndim != 2 or Y.shape[1] != len(d):
        raise ValueError(f"performance {Y.shape} must be (K, {len(d)}) or ({len(d)},)")
    return _correlation_rows(combined, Y, measure) - _correlation_rows(d, Y, measure)


def holm(p_values) -> np.ndarray:
    """Holm's step-down adjusted p-values (NaN entries are left out of the family).

    Parameters
    ----------
    p_values : array-like of shape (m,)

    Returns
    -------
    ndarray of shape (m,)
        ``max_{j <= i} min(1, (m - j + 1) p_(j))`` for the i-th smallest; reject at level
        alpha where the adjusted value is <= alpha (Holm 1979).

    Examples
    --------
    >>> holm([0.01, 0.04, 0.03, np.nan]).round(2).tolist()
    [0.03, 0.06, 0.06, nan]
    """
    p = np.asarray(p_values, dtype=float)
    out = np.full(p.shape, np.nan)
    finite = np.flatnonzero(np.isfinite(p))
    if len(finite) == 0:
        return out
    order = finite[np.argsort(p[finite], kind="stable")]
    m = len(order)
    adjusted = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    out[order] = adjusted
    return out


# ----------------------------------------------------------------------------- units
@dataclass
class _Unit:
    name: str
    group: str
    models: list
    oriented: pd.DataFrame  # model x score, rows in `models` order
    performance: np.ndarray  # (M,)
    resamples: np.ndarray | None  # (B, M)


def _units(setups: Mapping[str, Setup], greater_is_better) -> list:
    if not isinstance(setups, Mapping) or not setups:
        raise ValueError("setups must be a non-empty dict {name: Setup}")
    units, group_models = [], {}
    for name, setup in setups.items():
        if name == "pooled":
            raise ValueError('"pooled" names the pooled rows; choose another setup name')
        if not isinstance(setup, Setup):
            raise ValueError(f"setups[{name!r}] is not a Setup")
        if not {"model", "score", "value"} <= set(setup.scores.columns):
            raise ValueError(f"setup {name!r}: scores must have columns model, score, value")
        if setup.scores.duplicated(["model", "score"]).any():
            raise ValueError(f"setup {name!r}: a (model, score) pair appears more than once")
        performance = pd.Series(setup.performance, dtype=float)
        if performance.index.duplicated().any():
            raise ValueError(f"setup {name!r}: a model appears more than once in performance")
        group = name if setup.group is None else str(setup.group)
        models = list(performance.index)
        if group in group_models:
            if set(group_models[group]) != set(models):
                raise ValueError(f"setup {name!r}: group {group!r} units must hold the same models")
            models = group_models[group]
        group_models.setdefault(group, models)
        if len(models) < 3:
            raise ValueError(f"setup {name!r}: need at least three models, got {len(models)}")
        y = performance.loc[models].to_numpy(float)
        if not np.isfinite(y).all() or np.ptp(y) == 0:
            raise ValueError(f"setup {name!r}: performance must be finite and not constant")
        oriented = oriented_scores(setup.scores, greater_is_better)
        missing = sorted(set(models) - set(oriented.index))
        if missing:
            raise ValueError(f"setup {name!r}: no scores for models {missing}")
        resamples = None
        if setup.resamples is not None:
            frame = pd.DataFrame(setup.resamples)
            absent = sorted(set(models) - set(frame.columns))
            if absent:
                raise ValueError(f"setup {name!r}: resamples lack models {absent}")
            resamples = frame[models].to_numpy(float)
        units.append(_Unit(name, group, models, oriented.loc[models], y, resamples))
    return units


def _score_vector(unit: _Unit, score: str):
    if score not in unit.oriented.columns:
        return None
    values = unit.oriented[score].to_numpy(float)
    return values if np.isfinite(values).all() else None


def _verdict(p_adjusted: float, statistic: float, low: float, high: float, alternative: str, alpha: float) -> str:
    if not np.isfinite(p_adjusted) or p_adjusted > alpha:
        return "no evidence"
    if alternative == "greater" or (alternative == "two-sided" and statistic > 0):
        return "adds" if not np.isfinite(low) or low > 0 else "no evidence"
    return "lowers" if not np.isfinite(high) or high < 0 else "no evidence"


# ----------------------------------------------------------------------------- the pooled null
def _exact_sum_distribution(nulls: Sequence[np.ndarray]):
    """Distribution of the sum of independent uniform draws from each null (values, probs)."""
    values, probs = np.zeros(1), np.ones(1)
    for null in nulls:
        v, inverse = np.unique(np.round(null, _ROUND), return_inverse=True)
        p = np.bincount(inverse.ravel(), minlength=len(v)) / len(null)
        if len(values) * len(v) > _MAX_SUPPORT:
            return None
        total = np.round((values[:, None] + v[None, :]).ravel(), _ROUND)
        weight = (probs[:, None] * p[None, :]).ravel()
        values, inverse = np.unique(total, return_inverse=True)
        probs = np.bincount(inverse.ravel(), weights=weight, minlength=len(values))
    return values, probs


def _tail(observed: float, values: np.ndarray, probs: np.ndarray, alternative: str) -> float:
    if alternative == "greater":
        return float(probs[values >= observed - _TOL].sum())
    if alternative == "less":
        return float(probs[values <= observed + _TOL].sum())
    return float(probs[np.abs(values) >= abs(observed) - _TOL].sum())


def _pooled_p(observed_sum: float, group_nulls: dict, exact_groups: bool, alternative: str,
              num_permutations: int, rng) -> float:
    """p-value of the summed statistic under independent orderings per group."""
    if exact_groups:
        distribution = _exact_sum_distribution([null for null, _ in group_nulls.values()])
        if distribution is not None:
            return min(1.0, _tail(observed_sum, *distribution, alternative))
    total = np.zeros(num_permutations)
    for null, _ in group_nulls.values():
        total += null[rng.integers(0, len(null), num_permutations)]
    return _p_from_null(observed_sum, total, alternative, exact=False)


# ----------------------------------------------------------------------------- the test
def added_value_test(setups: Mapping[str, Setup], probabilistic: Sequence[str] = PROBABILISTIC,
                     discriminability: Sequence[str] = DISCRIMINABILITY, *, greater_is_better=None,
                     measure: str = "spearman", alternative: str = "greater", level: float = 0.95,
                     alpha: float = 0.05, pooled: bool = True, num_permutations: int = 10_000,
                     random_state: int = 0) -> pd.DataFrame:
    """Per setup and pooled: does each probabilistic score add to each discriminability score?

    For every unit (a :class:`Setup`: one pool, one performance vector) and every pair of
    a probabilistic score P and a discriminability score D present in it, the statistic
    is the gain of the Borda combination over D alone,
    ``rho(Borda(P, D), y) - rho(D, y)`` (see the module notes for why), with a
    percentile interval over the performance resamples and an exact permutation
    p-value over the M! orderings of the performance vector. The pooled rows average
    the gain over the units that hold both scores; their p-value uses independent
    orderings per group of units (exact by convolution when every group has at most
    eight models). Holm's correction runs over the pairs, within each setup and within
    the pooled rows.

    Parameters
    ----------
    setups : dict of str to Setup
        The units, e.g. one per (target, zoo, regime).
    probabilistic, discriminability : sequence of str
        Score names (pairs with a score absent from a unit skip that unit).
    greater_is_better : mapping of str to bool, optional
        Directions of scores that are not in :data:`nclib.scores.REGISTRY`.
    measure : {"spearman", "kendall", "weighted_tau"}
        The rank correlation (default Spearman's rho; see the module notes).
    alternative : {"greater", "two-sided", "less"}
        "greater" tests "P adds" (default); "two-sided" also detects a P that lowers
        the ranking; "less" tests "P lowers" alone.
    level : float
        Coverage of the percentile interval.
    alpha : float
        Level of the Holm-adjusted test behind ``verdict``.
    pooled : bool
        Add one pooled row per pair (``setup == "pooled"``).
    num_permutations : int
        Monte Carlo draws where the exact test is out of reach (more than 8 models).
    random_state : int

    Returns
    -------
    pandas.DataFrame
        Columns ``setup, probabilistic, discriminability, measure, units``,
        ``corr_probabilistic, corr_discriminability, corr_combined`` (the observed rank
        correlation of P, D and their combination with performance; pooled rows: means
        over units), ``statistic`` (the gain; pooled: its mean), ``low, high``
        (percentile interval; NaN without resamples), ``p_value`` (the permutation
        p-value of the chosen alternative), ``p_holm`` (Holm-adjusted) and ``verdict``:
        ``"adds"`` where ``p_holm <= alpha`` and the interval lies above zero (or is
        missing), ``"lowers"`` likewise below zero for the lower-tail alternatives,
        ``"no evidence"`` otherwise.

    Raises
    ------
    ValueError
        Bad setups (fewer than three models, constant performance, missing scores or
        resample columns, group members with different models), unknown measure,
        alternative, or no pair present in any setup.

    References
    ----------
    L. Sechrest. Incremental validity: a recommendation, 1963. S. Holm, 1979.
    Suresh, Abrol and Thakur, 2023 (caveat (a)).

    Examples
    --------
    Performance follows P; D orders the six models at random.

    >>> y = pd.Series([0.5, 0.6, 0.7, 0.75, 0.8, 0.9], index=list("abcdef"))
    >>> scores = pd.DataFrame({"model": list("abcdef") * 2, "score": ["p"] * 6 + ["d"] * 6,
    ...                        "value": [1, 2, 3, 4, 5, 6] + [4, 1, 6, 2, 5, 3]})
    >>> row = added_value_test({"t": Setup(scores, y)}, ["p"], ["d"], pooled=False,
    ...                        greater_is_better={"p": True, "d": True}).iloc[0]
    >>> round(float(row.statistic), 3), round(float(row.p_value), 4), row.verdict
    (0.571, 0.0333, 'adds')
    """
    measure = _check_measure(measure)
    level = _check_level(level)
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    num_permutations = _check_resamples(num_permutations)
    probabilistic, discriminability = list(probabilistic), list(discriminability)
    if not probabilistic or not discriminability:
        raise ValueError("probabilistic and discriminability must name at least one score each")
    overlap = set(probabilistic) & set(discriminability)
    if overlap:
        raise ValueError(f"scores {sorted(overlap)} are named both probabilistic and discriminability")
    units = _units(setups, greater_is_better)
    rng = np.random.default_rng(random_state)
    perms = {}
    for unit in units:
        if unit.group not in perms:
            perms[unit.group] = _permutations(len(unit.models), num_permutations, rng)
    rows, pooled_parts = [], {}
    for unit in units:
        unit_perms, exact = perms[unit.group]
        for p_name in probabilistic:
            p = _score_vector(unit, p_name)
            for d_name in discriminability:
                d = _score_vector(unit, d_name)
                if p is None or d is None:
                    continue
                y = unit.performance
                gain = float(added_value_statistic(p, d, y, measure)[0])
                taus = (float(_correlation_rows(p, y[None], measure)[0]),
                        float(_correlation_rows(d, y[None], measure)[0]),
                        float(_correlation_rows(combined_ranking(p, d), y[None], measure)[0]))
                null = added_value_statistic(p, d, y[unit_perms], measure)
                p_value = _p_from_null(gain, null, alternative, exact)
                draws = (added_value_statistic(p, d, unit.resamples, measure) if unit.resamples is not None
                         else None)
                low, high = _interval(draws, level) if draws is not None else (np.nan, np.nan)
                rows.append([unit.name, p_name, d_name, measure, 1, *taus, gain, low, high, p_value])
                pooled_parts.setdefault((p_name, d_name), []).append((unit, gain, taus, null, exact, draws))
    if not rows:
        raise ValueError(f"no setup holds any of the pairs {probabilistic} x {discriminability}")
    table = pd.DataFrame(rows, columns=COLUMNS[:-2])
    if pooled:
        table = pd.concat([table, _pooled_rows(pooled_parts, measure, alternative, level, num_permutations,
                                               np.random.default_rng([random_state, 1]))], ignore_index=True)
    table["p_holm"] = np.nan
    for _, index in table.groupby("setup", sort=False).groups.items():
        table.loc[index, "p_holm"] = holm(table.loc[index, "p_value"].to_numpy(float))
    table["verdict"] = [_verdict(r.p_holm, r.statistic, r.low, r.high, alternative, alpha)
                        for r in table.itertuples(index=False)]
    return table[COLUMNS]


def _pooled_rows(parts: dict, measure: str, alternative: str, level: float, num_permutations: int,
                 rng) -> pd.DataFrame:
    rows = []
    for (p_name, d_name), entries in parts.items():
        gains = np.array([e[1] for e in entries])
        taus = np.array([e[2] for e in entries]).mean(axis=0)
        group_nulls, exact_all = {}, True
        for unit, _, _, null, exact, _ in entries:
            exact_all = exact_all and exact
            if unit.group in group_nulls:  # the same orderings: the group's statistics add up
                group_nulls[unit.group] = (group_nulls[unit.group][0] + null, exact)
            else:
                group_nulls[unit.group] = (null, exact)
        p_value = _pooled_p(float(gains.sum()), group_nulls, exact_all, alternative, num_permutations, rng)
        draws = [e[5] for e in entries]
        if all(d is not None for d in draws) and len({len(d) for d in draws}) == 1:
            low, high = _interval(np.mean(draws, axis=0), level)
        else:
            low, high = np.nan, np.nan
        rows.append(["pooled", p_name, d_name, measure, len(entries), *taus, float(gains.mean()), low, high,
                     p_value])
    return pd.DataFrame(rows, columns=COLUMNS[:-2])


# ----------------------------------------------------------------------------- from run results
def setups_from_predictions(name: str, scores: pd.DataFrame, transfer: pd.DataFrame, predictions: Mapping,
                            test_labels, metric: str, *, regimes: Sequence[str] | None = None,
                            num_resamples: int = 1000, random_state: int = 0) -> dict:
    """The :class:`Setup` of every regime of one experiment, with paired performance resamples.

    Parameters
    ----------
    name : str
        The experiment (target and zoo); units are named ``"{name} · {regime}"`` and
        grouped under ``name`` (its regimes share one score vector, hence one ordering).
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``; its seed means are the observed
        performance (checked against the predictions to 1e-6).
    predictions : dict of (model, regime, seed) to ndarray of shape (N_test, C)
    test_labels : array-like of shape (N_test,)
    metric : {"accuracy", "auroc"}
    regimes : sequence of str, optional
        Default: every regime of the predictions.
    num_resamples, random_state : int
        The paired bootstrap (:func:`nclib.uncertainty.resampled_performance`); use a
        different ``random_state`` per experiment so that setups are resampled independently.

    Returns
    -------
    dict of str to Setup

    Examples
    --------
    >>> labels = np.repeat([0, 1], 50)
    >>> rng = np.random.default_rng(0)
    >>> preds = {(m, "head", 0): np.eye(2)[np.where(rng.random(100) < acc, labels, 1 - labels)]
    ...          for m, acc in zip("abc", [0.6, 0.75, 0.9])}
    >>> from nclib.transfer import score_predictions
    >>> t = pd.DataFrame([(m, r, s, "accuracy", score_predictions("accuracy", labels, p))
    ...                   for (m, r, s), p in preds.items()], columns=["model", "regime", "seed", "metric", "value"])
    >>> s = pd.DataFrame({"model": list("abc"), "score": "nc", "value": [3.0, 2.0, 1.0]})
    >>> out = setups_from_predictions("toy", s, t, preds, labels, "accuracy", num_resamples=50)
    >>> list(out), out["toy · head"].resamples.shape, out["toy · head"].group
    (['toy · head'], (50, 3), 'toy')
    """
    models = list(dict.fromkeys(scores["model"]))
    design = _design(predictions, test_labels, metric, models, regimes, num_resamples=num_resamples,
                     random_state=random_state)
    observed = _check_transfer_agrees(transfer[transfer["model"].isin(models)], design)
    out = {}
    for regime in design.regimes:
        out[f"{name} · {regime}"] = Setup(scores[["model", "score", "value"]],
                                          pd.Series(observed[regime], index=design.models),
                                          pd.DataFrame(design.resampled(regime), columns=design.models), group=name)
    return out


def setups_from_means(name: str, scores: pd.DataFrame, transfer: pd.DataFrame) -> dict:
    """:class:`Setup` per regime from seed-averaged performance alone (no interval).

    Examples
    --------
    >>> t = pd.DataFrame({"model": list("abc"), "regime": "head", "seed": 0, "metric": "accuracy",
    ...                   "value": [0.6, 0.7, 0.9]})
    >>> s = pd.DataFrame({"model": list("abc"), "score": "nc", "value": [3.0, 2.0, 1.0]})
    >>> setups_from_means("toy", s, t)["toy · head"].performance.tolist()
    [0.6, 0.7, 0.9]
    """
    means = mean_performance(transfer)
    return {f"{name} · {regime}": Setup(scores[["model", "score", "value"]],
                                        group.set_index("model")["value"].astype(float), group=name)
            for regime, group in means.groupby("regime", sort=False)}


__all__ = ["COLUMNS", "DISCRIMINABILITY", "GAIN_MEASURES", "PROBABILISTIC", "Setup", "added_value_statistic",
           "added_value_test", "combined_ranking", "holm", "setups_from_means", "setups_from_predictions"]
