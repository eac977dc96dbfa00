"""Uncertainty of every claim: intervals, exact p-values and the noise in the ground truth.

A transferability score is judged by how well it ranks a pool of five or six models. Two
things are random in such a claim: the transfer runs (initialisation seeds) and the test
examples on which each run is scored. Both are resampled here, *paired* across models
(the same seed draws and the same test-example indices for every model), and each
model's performance and then each measure is recomputed on every replicate (Efron and
Tibshirani 1993). Resampling the models themselves (:func:`nclib.stability.bootstrap_measures`)
answers a different question and degenerates when a score ranks the pool perfectly.

Whether the observed association is better than chance is tested by an exact permutation
test: with n <= 8 models all n! orderings of the performance vector are enumerated
(720 at n = 6), beyond that a Monte Carlo sample with a fixed seed is used.

Everything is vectorised: accuracy from a matrix of correct / incorrect predictions and a
matrix of resampling counts, AUROC from ranks with weighted counts, the measures over a
batch of performance vectors at once. 1,000 resamples of 6 models x 10 seeds x 1,000
test examples take a few seconds on one CPU core.

References
----------
B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap. Chapman & Hall, 1993.
A. Agostinelli, M. Pándy, J. Uijlings, T. Mensink, V. Ferrari. How stable are
transferability metrics evaluations? ECCV 2022.
B. Phipson, G. K. Smyth. Permutation p-values should never be zero. Statistical
Applications in Genetics and Molecular Biology 9(1), 2010.
S. Vigna. A weighted correlation index for rankings with ties. WWW 2015.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np
import pandas as pd
from scipy import stats

from nclib.evaluate import MEASURES, mean_performance, ranking_measures, score_sign

METRICS = ("accuracy", "auroc")
DEFAULT_MEASURES = MEASURES + ("best_in_top3",)
MAX_EXACT = 8
ALTERNATIVES = ("greater", "less", "two-sided")

__all__ = [
    "DEFAULT_MEASURES", "IntervalEvaluation", "batch_measures", "critical_pearson",
    "evaluation_with_intervals", "exact_permutation_p_value", "model_noise",
    "no_information_value", "pearson_p_value", "pool_summary", "pooled_evaluation",
    "ranking_agreement", "resampled_performance",
]


# ----------------------------------------------------------------------------- checks
def _check_level(level) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def _check_resamples(num_resamples) -> int:
    if int(num_resamples) != num_resamples or num_resamples < 1:
        raise ValueError(f"num_resamples must be a positive integer, got {num_resamples!r}")
    return int(num_resamples)


def _check_metric(metric) -> str:
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {METRICS}")
    return metric


def _top_k(name: str) -> int | None:
    if name.startswith("best_in_top"):
        suffix = name[len("best_in_top"):]
        if suffix.isdigit() and int(suffix) >= 1:
            return int(suffix)
    return None


def _check_measures(measures) -> tuple:
    measures = tuple(measures)
    if not measures:
        raise ValueError("measures must not be empty")
    for name in measures:
        if name not in MEASURES and _top_k(name) is None:
            raise ValueError(f"unknown measure {name!r}; known: {MEASURES} and best_in_top<k>")
    return measures


def _alternative(measure: str) -> str:
    """Direction of 'better than chance': regret is smaller-is-better, |r| is two-sided by itself."""
    return "less" if measure == "regret" else "greater"


# ----------------------------------------------------------------------------- measures
def _pearson_rows(x: np.ndarray, Y: np.ndarray) -> np.ndarray:
    xc = x - x.mean()
    Yc = Y - Y.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (Yc @ xc) / (np.sqrt((xc * xc).sum()) * np.sqrt((Yc * Yc).sum(axis=1)))
    r = np.clip(r, -1.0, 1.0)
    r[np.ptp(Y, axis=1) == 0] = np.nan
    if np.ptp(x) == 0:
        r[:] = np.nan
    return r


def _directed_weighted_tau(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Vigna's weighted tau with hyperbolic additive weights, ranking by (a, b) decreasing."""
    a, b = np.broadcast_arrays(np.atleast_2d(a), np.atleast_2d(b))
    K, M = a.shape
    order = np.lexsort((b, a), axis=-1)[:, ::-1]
    rank = np.empty((K, M), dtype=float)
    np.put_along_axis(rank, order, np.broadcast_to(np.arange(M, dtype=float), (K, M)), axis=1)
    weight = 1.0 / (rank + 1.0)
    i, j = np.triu_indices(M, 1)
    W = weight[:, i] + weight[:, j]
    sa = np.sign(a[:, i] - a[:, j])
    sb = np.sign(b[:, i] - b[:, j])
    total = W.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (W * sa * sb).sum(axis=1) / np.sqrt((total - (W * (sa == 0)).sum(axis=1))
                                                   * (total - (W * (sb == 0)).sum(axis=1)))


def batch_measures(oriented, performance, measures=DEFAULT_MEASURES, *, raw=None) -> dict:
    """The measures of :func:`nclib.evaluate.ranking_measures` for many performance vectors at once.

    Parameters
    ----------
    oriented : array-like of shape (M,)
        Score values of M models, oriented so that larger means "predicted better"
        (a lower-is-better score negated).
    performance : array-like of shape (K, M) or (M,)
        K performance vectors (bootstrap replicates, permutations), larger is better.
    measures : sequence of str
        Names as in :data:`nclib.evaluate.MEASURES`, plus ``best_in_top<k>``.
    raw : array-like of shape (M,), optional
        Unoriented score values; only ``abs_pearson`` uses them and ``|r|`` does not
        depend on orientation, so they may be left out.

    Returns
    -------
    dict of str to ndarray of shape (K,)
        NaN where a measure is undefined (constant input), as in ``ranking_measures``.

    Notes
    -----
    Kendall's tau is tau-b and weighted tau is Vigna's (2015) hyperbolic, additive,
    rank=True variant, both as in :mod:`scipy.stats`; the tests check agreement with
    ``ranking_measures`` to 1e-12, ties included.

    Examples
    --------
    >>> out = batch_measures([3.0, 2.0, 1.0], [[0.9, 0.8, 0.7], [0.7, 0.8, 0.9]], ["kendall", "relative_top1"])
    >>> out["kendall"].tolist(), out["relative_top1"].round(3).tolist()
    ([1.0, -1.0], [1.0, 0.778])
    """
    measures = _check_measures(measures)
    x = np.asarray(oriented, dtype=float)
    Y = np.asarray(performance, dtype=float)
    if Y.ndim == 1:
        Y = Y[None, :]
    if x.ndim != 1 or Y.ndim != 2 or Y.shape[1] != len(x):
        raise ValueError(f"oriented {x.shape} must be (M,) and performance {Y.shape} (K, M)")
    if len(x) < 2:
        raise ValueError(f"need at least two models to rank, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("score values must be finite")
    M = len(x)
    out = {}
    cache = {}

    def pearson():
        if "pearson" not in cache:
            cache["pearson"] = _pearson_rows(x, Y)
        return cache["pearson"]

    i, j = np.triu_indices(M, 1)
    for name in measures:
        if name == "pearson":
            out[name] = pearson()
        elif name == "abs_pearson":
            out[name] = np.abs(pearson())  # |r| is the same for either orientation
        elif name == "spearman":
            value = _pearson_rows(stats.rankdata(x), stats.rankdata(Y, axis=1))
            out[name] = value
        elif name == "kendall":
            sx = np.sign(x[i] - x[j])
            sY = np.sign(Y[:, i] - Y[:, j])
            with np.errstate(invalid="ignore", divide="ignore"):
                value = (sY @ sx) / np.sqrt(np.count_nonzero(sx) * np.count_nonzero(sY, axis=1))
            value[np.ptp(Y, axis=1) == 0] = np.nan
            out[name] = np.full(len(Y), np.nan) if np.ptp(x) == 0 else value
        elif name == "weighted_tau":
            value = 0.5 * (_directed_weighted_tau(x, Y) + _directed_weighted_tau(Y, x))
            value[np.ptp(Y, axis=1) == 0] = np.nan
            out[name] = np.full(len(Y), np.nan) if np.ptp(x) == 0 else value
        elif name in ("relative_top1", "regret"):
            best = Y.max(axis=1)
            with np.errstate(invalid="ignore", divide="ignore"):
                relative = np.where(best != 0, Y[:, int(np.argmax(x))] / best, np.nan)
            out[name] = relative if name == "relative_top1" else 1.0 - relative
        else:
            top = np.argsort(-x, kind="stable")[:_top_k(name)]
            out[name] = np.isin(Y.argmax(axis=1), top).astype(float)
    return out


# ----------------------------------------------------------------------------- p-values
def pearson_p_value(r, n: int, alternative: str = "two-sided"):
    """P-value of a Pearson coefficient under bivariate normality (Student's t, n - 2 d.o.f.).

    Parameters
    ----------
    r : float or array-like
        Observed correlation(s) in [-1, 1].
    n : int
        Number of pairs (models in the pool), at least 3.
    alternative : {"two-sided", "greater", "less"}

    Returns
    -------
    float or ndarray
        The p-value of :math:`t = r \\sqrt{n-2} / \\sqrt{1-r^2}`.

    References
    ----------
    R. A. Fisher. Statistical Methods for Research Workers, 1925 (the t test of r).

    Examples
    --------
    >>> round(pearson_p_value(0.93, 6), 4)
    0.0072
    >>> round(pearson_p_value(critical_pearson(6), 6), 6)
    0.05
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    if int(n) != n or n < 3:
        raise ValueError(f"n must be an integer >= 3, got {n!r}")
    r_arr = np.asarray(r, dtype=float)
    if np.any(np.abs(r_arr) > 1) or not np.isfinite(r_arr).all():
        raise ValueError(f"r must lie in [-1, 1], got {r!r}")
    df = n - 2
    with np.errstate(divide="ignore"):
        t = r_arr * np.sqrt(df) / np.sqrt(np.maximum(1.0 - r_arr ** 2, 0.0))
    if alternative == "two-sided":
        p = 2 * stats.t.sf(np.abs(t), df)
    elif alternative == "greater":
        p = stats.t.sf(t, df)
    else:
        p = stats.t.cdf(t, df)
    p = np.minimum(p, 1.0)
    return float(p) if p.ndim == 0 else p


def critical_pearson(n: int, alpha: float = 0.05, alternative: str = "two-sided") -> float:
    """The smallest |r| that is significant at level ``alpha`` with n pairs.

    Parameters
    ----------
    n : int
        Number of models (pairs), at least 3.
    alpha : float
        Significance level in (0, 1).
    alternative : {"two-sided", "greater"}

    Returns
    -------
    float
        :math:`t_c / \\sqrt{n - 2 + t_c^2}` with :math:`t_c` the Student-t quantile.

    Examples
    --------
    >>> [round(critical_pearson(n), 3) for n in (5, 6, 10)]
    [0.878, 0.811, 0.632]
    """
    if int(n) != n or n < 3:
        raise ValueError(f"n must be an integer >= 3, got {n!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    if alternative not in ("two-sided", "greater"):
        raise ValueError(f"alternative must be 'two-sided' or 'greater', got {alternative!r}")
    q = 1 - alpha / 2 if alternative == "two-sided" else 1 - alpha
    t = stats.t.ppf(q, n - 2)
    return float(t / math.sqrt(n - 2 + t * t))


def _permutations(M: int, num_permutations: int, rng) -> tuple[np.ndarray, bool]:
    """All M! permutations (exact) when M <= MAX_EXACT, otherwise a Monte Carlo sample."""
    if M <= MAX_EXACT:
        return np.array(list(itertools.permutations(range(M))), dtype=np.intp), True
    return np.argsort(rng.random((num_permutations, M)), axis=1), False


def _p_from_null(observed: float, null: np.ndarray, alternative: str, exact: bool) -> float:
    if not np.isfinite(observed):
        return float("nan")
    null = null[np.isfinite(null)] if exact else np.where(np.isfinite(null), null, -np.inf)
    tol = 1e-12 * max(1.0, abs(observed))
    if alternative == "greater":
        hits = np.count_nonzero(null >= observed - tol)
    elif alternative == "less":
        hits = np.count_nonzero(null <= observed + tol)
    else:
        hits = np.count_nonzero(np.abs(null) >= abs(observed) - tol)
    if exact:  # the identity ordering is one of the enumerated ones
        return float(hits / len(null)) if len(null) else float("nan")
    return float((hits + 1) / (len(null) + 1))  # Phipson & Smyth (2010)


def exact_permutation_p_value(x, y, statistic="kendall", alternative: str = "greater", *,
                              num_permutations: int = 10_000, random_state: int = 0) -> float:
    """Permutation p-value of the association between x and y.

    Under the null hypothesis the pairing of x and y is arbitrary: every ordering of y
    is equally likely. For n <= 8 all n! orderings are enumerated (exact test, the
    observed ordering included, so p >= 1/n!); for larger n, ``num_permutations``
    random orderings are drawn with ``random_state`` and p = (1 + hits) / (1 + draws).

    Parameters
    ----------
    x : array-like of shape (n,)
        Oriented score values (larger = predicted better).
    y : array-like of shape (n,)
        Performance (larger is better).
    statistic : str or callable
        A measure name of :func:`batch_measures`, or ``f(x, Y) -> ndarray (K,)`` computing
        the statistic for each row of ``Y`` of shape (K, n).
    alternative : {"greater", "less", "two-sided"}
        ``"greater"``: large values are evidence (a score ranking better than chance);
        ``"two-sided"`` compares absolute values.
    num_permutations : int
        Monte Carlo draws when n > 8.
    random_state : int

    Returns
    -------
    float
        NaN when the observed statistic is undefined (e.g. constant input).

    Examples
    --------
    A perfectly ranked pool of six: only the observed ordering reaches tau = 1.

    >>> p = exact_permutation_p_value([1, 2, 3, 4, 5, 6], [.1, .2, .3, .4, .5, .6], "kendall")
    >>> p == 1 / 720
    True
    """
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if x.ndim != 1 or x.shape != y.shape:
        raise ValueError(f"x {x.shape} and y {y.shape} must be equal 1-D shapes")
    if len(x) < 2:
        raise ValueError(f"need at least two pairs, got {len(x)}")
    if not (np.isfinite(x).all() and np.isfinite(y).all()):
        raise ValueError("x and y must be finite")
    if isinstance(statistic, str):
        name = statistic
        _check_measures([name])

        def statistic(a, B):
            return batch_measures(a, B, [name])[name]
    elif not callable(statistic):
        raise ValueError(f"statistic must be a measure name or a callable, got {statistic!r}")
    perms, exact = _permutations(len(x), _check_resamples(num_permutations), np.random.default_rng(random_state))
    observed = float(np.asarray(statistic(x, y[None, :])).reshape(-1)[0])
    null = np.asarray(statistic(x, y[perms]), dtype=float)
    return _p_from_null(observed, null, alternative, exact)


# ----------------------------------------------------------------------------- performance
def _stack_runs(predictions: Mapping, test_labels, metric: str, regime: str, models) -> tuple:
    """Per-run statistics of one regime: (models, seeds, array of shape (M, S, N))."""
    seeds_of = {}
    for (model, reg, seed) in predictions:
        if reg == regime:
            seeds_of.setdefault(model, set()).add(seed)
    missing = [m for m in models if m not in seeds_of]
    if missing:
        raise ValueError(f"regime {regime!r}: no predictions for models {missing}")
    seeds = sorted(seeds_of[models[0]])
    for m in models:
        if sorted(seeds_of[m]) != seeds:
            raise ValueError(f"regime {regime!r}: model {m!r} has seeds {sorted(seeds_of[m])}, "
                             f"{models[0]!r} has {seeds}; paired resampling needs the same seeds")
    labels = test_labels
    N = len(labels)
    out = np.empty((len(models), len(seeds), N), dtype=float)
    for a, m in enumerate(models):
        for b, s in enumerate(seeds):
            probs = np.asarray(predictions[(m, regime, s)], dtype=float)
            if probs.ndim != 2 or len(probs) != N:
                raise ValueError(f"predictions[{(m, regime, s)!r}] has shape {probs.shape}; expected ({N}, C)")
            if not np.isfinite(probs).all():
                raise ValueError(f"predictions[{(m, regime, s)!r}] contain NaN or inf")
            if metric == "accuracy":
                if labels.max() >= probs.shape[1]:
                    raise ValueError(f"labels reach {labels.max()} but predictions have {probs.shape[1]} classes")
                out[a, b] = probs.argmax(axis=1) == labels
            else:
                if probs.shape[1] != 2:
                    raise ValueError(f"auroc is defined here for binary tasks; got {probs.shape[1]} classes")
                out[a, b] = probs[:, 1]
    return seeds, out


def _check_labels(test_labels, metric) -> np.ndarray:
    labels = np.asarray(test_labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"test_labels must be a non-empty 1-D array, got shape {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        if np.issubdtype(labels.dtype, np.floating) and np.all(labels == np.round(labels)):
            labels = labels.astype(np.int64)
        else:
            raise ValueError("test_labels must be integer class indices")
    if labels.min() < 0:
        raise ValueError("test_labels must be non-negative class indices")
    if metric == "auroc" and set(np.unique(labels).tolist()) != {0, 1}:
        found = sorted(np.unique(labels).tolist())
        raise ValueError(f"auroc needs both classes 0 and 1 among the labels; found {found}")
    return labels


def _weighted_auroc(scores: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """AUROC of one score vector (N,) under K weightings (K, N) of the examples (ties count 1/2)."""
    order = np.argsort(scores, kind="stable")
    s = scores[order]
    y = labels[order]
    W = weights[:, order]
    new = np.r_[True, s[1:] != s[:-1]]
    group = np.cumsum(new) - 1
    starts = np.flatnonzero(new)
    ends = np.r_[starts[1:], len(s)]  # one past each group's end
    neg = np.where(y == 0, W, 0.0)
    cum = np.concatenate([np.zeros((len(W), 1)), np.cumsum(neg, axis=1)], axis=1)
    pos = np.flatnonzero(y == 1)
    g = group[pos]
    below_and_half = 0.5 * (cum[:, starts[g]] + cum[:, ends[g]])
    numerator = (W[:, pos] * below_and_half).sum(axis=1)
    denominator = W[:, pos].sum(axis=1) * neg.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.nan)


def _run_metric(runs: np.ndarray, labels: np.ndarray, metric: str, example_counts: np.ndarray) -> np.ndarray:
    """Metric of every run (M, S, N) under K example weightings (K, N): shape (M, S, K)."""
    M, S, N = runs.shape
    if metric == "accuracy":
        return (runs.reshape(M * S, N) @ example_counts.T).reshape(M, S, -1) / example_counts.sum(axis=1)
    out = np.empty((M, S, len(example_counts)))
    for a in range(M):
        for b in range(S):
            out[a, b] = _weighted_auroc(runs[a, b], labels, example_counts)
    return out


def _counts(index: np.ndarray, size: int) -> np.ndarray:
    """Row-wise bincount of resampled indices (K, n) -> counts (K, size)."""
    K = len(index)
    flat = (index + size * np.arange(K)[:, None]).ravel()
    return np.bincount(flat, minlength=K * size).reshape(K, size).astype(float)


def _example_counts(labels: np.ndarray, num_resamples: int, rng, stratify: bool) -> np.ndarray:
    N = len(labels)
    if not stratify:
        return _counts(rng.integers(0, N, size=(num_resamples, N)), N)
    parts = [idx[rng.integers(0, len(idx), size=(num_resamples, len(idx)))]
             for idx in (np.flatnonzero(labels == c) for c in np.unique(labels))]
    return _counts(np.concatenate(parts, axis=1), N)


@dataclass
class _Design:
    """The runs of every regime and the shared resampling counts of one setup."""

    models: list
    regimes: list
    seeds: dict
    runs: dict
    labels: np.ndarray
    metric: str
    example_counts: np.ndarray  # (B, N)
    seed_counts: dict  # regime -> (B, S)

    def observed(self, regime: str) -> np.ndarray:
        per_run = _run_metric(self.runs[regime], self.labels, self.metric, np.ones((1, len(self.labels))))
        return per_run[:, :, 0].mean(axis=1)

    def per_run(self, regime: str) -> np.ndarray:
        return _run_metric(self.runs[regime], self.labels, self.metric, np.ones((1, len(self.labels))))[:, :, 0]

    def resampled(self, regime: str) -> np.ndarray:
        per_run = _run_metric(self.runs[regime], self.labels, self.metric, self.example_counts)  # (M, S, B)
        v = self.seed_counts[regime]
        return np.einsum("msb,bs->bm", per_run, v) / v.sum(axis=1, keepdims=True)


def _design(predictions, test_labels, metric, models=None, regimes=None, *, num_resamples=1000,
            random_state=0, stratify=None) -> _Design:
    metric = _check_metric(metric)
    labels = _check_labels(test_labels, metric)
    num_resamples = _check_resamples(num_resamples)
    if not isinstance(predictions, Mapping) or not predictions:
        raise ValueError("predictions must be a non-empty dict {(model, regime, seed): array (N_test, C)}")
    for key in predictions:
        if not (isinstance(key, tuple) and len(key) == 3):
            raise ValueError(f"prediction keys must be (model, regime, seed) tuples, got {key!r}")
    if models is None:
        models = list(dict.fromkeys(k[0] for k in predictions))
    available = list(dict.fromkeys(k[1] for k in predictions))
    if regimes is None:
        regimes = available
    unknown = [r for r in regimes if r not in available]
    if unknown:
        raise ValueError(f"no predictions for regimes {unknown}; available: {available}")
    if len(models) < 2:
        raise ValueError(f"need at least two models, got {list(models)}")
    seeds, runs = {}, {}
    for regime in regimes:
        seeds[regime], runs[regime] = _stack_runs(predictions, labels, metric, regime, list(models))
    rng = np.random.default_rng(random_state)
    stratify = (metric == "auroc") if stratify is None else bool(stratify)
    example_counts = _example_counts(labels, num_resamples, rng, stratify)
    seed_counts = {r: _counts(rng.integers(0, len(seeds[r]), size=(num_resamples, len(seeds[r]))), len(seeds[r]))
                   for r in regimes}
    return _Design(list(models), list(regimes), seeds, runs, labels, metric, example_counts, seed_counts)


def resampled_performance(predictions, test_labels, metric: str, *, num_resamples: int = 1000,
                          random_state: int = 0, stratify: bool | None = None) -> dict:
    """Each model's seed-averaged test performance on paired bootstrap replicates.

    Every replicate draws the seeds (with replacement, the same draws for every model)
    and the test examples (the same indices for every model and regime), then
    recomputes each run's metric and averages it over the drawn seeds.

    Parameters
    ----------
    predictions : dict of (model, regime, seed) to ndarray of shape (N_test, C)
        Test-set class probabilities of every transfer run.
    test_labels : array-like of shape (N_test,)
        Integer class indices.
    metric : {"accuracy", "auroc"}
        As :func:`nclib.transfer.score_predictions` (AUROC ranks column 1, ties count 1/2).
    num_resamples : int
    random_state : int
    stratify : bool, optional
        Resample test examples within each class (keeps the class counts fixed, so AUROC
        is always defined). Default: True for AUROC, False for accuracy.

    Returns
    -------
    dict of str to pandas.DataFrame
        Per regime, a (num_resamples, M) frame, columns the models.

    References
    ----------
    B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap, 1993.

    Examples
    --------
    >>> labels = np.array([0, 1, 0, 1])
    >>> good = np.eye(2)[labels]
    >>> preds = {("a", "head", 0): good, ("b", "head", 0): good[::-1]}
    >>> table = resampled_performance(preds, labels, "accuracy", num_resamples=5)["head"]
    >>> table.shape, table["a"].tolist()
    ((5, 2), [1.0, 1.0, 1.0, 1.0, 1.0])
    """
    design = _design(predictions, test_labels, metric, num_resamples=num_resamples,
                     random_state=random_state, stratify=stratify)
    return {r: pd.DataFrame(design.resampled(r), columns=design.models) for r in design.regimes}


def _check_transfer_agrees(transfer, design: _Design) -> dict:
    """Observed means from the transfer table, after checking them against the predictions."""
    if not {"model", "regime", "seed", "metric", "value"} <= set(transfer.columns):
        raise ValueError("transfer must have columns model, regime, seed, metric, value")
    means = mean_performance(transfer)
    out = {}
    for regime in design.regimes:
        table = means[means["regime"] == regime].set_index("model")["value"]
        missing = set(design.models) - set(table.index)
        if missing:
            raise ValueError(f"transfer table: no {regime!r} results for models {sorted(missing)}")
        observed = table.loc[design.models].to_numpy(float)
        recomputed = design.observed(regime)
        if not np.allclose(observed, recomputed, rtol=0, atol=1e-6):
            raise ValueError(f"regime {regime!r}: the transfer table's means {observed.round(6).tolist()} "
                             f"disagree with the predictions' {recomputed.round(6).tolist()}")
        out[regime] = observed
    return out


# ----------------------------------------------------------------------------- evaluation
@dataclass(frozen=True)
class IntervalEvaluation:
    """An evaluation with its bootstrap draws, ready for :func:`pooled_evaluation`.

    Attributes
    ----------
    table : pandas.DataFrame
        Columns ``score, regime, measure, value, low, high, p_value``.
    draws : pandas.DataFrame
        Columns ``score, regime, measure, resample, value``: every bootstrap replicate.
    observed : pandas.DataFrame
        Columns ``score, regime, model, score_value, oriented, performance``: what the
        permutation test permutes.
    """

    table: pd.DataFrame
    draws: pd.DataFrame
    observed: pd.DataFrame


def _interval(sample: np.ndarray, level: float) -> tuple:
    sample = sample[np.isfinite(sample)]
    if not len(sample):
        return float("nan"), float("nan")
    low, high = np.quantile(sample, [(1 - level) / 2, (1 + level) / 2])
    return float(low), float(high)


def evaluation_with_intervals(scores: pd.DataFrame, predictions, test_labels, metric: str, *,
                              greater_is_better=None, measures=DEFAULT_MEASURES, num_resamples: int = 1000,
                              level: float = 0.95, random_state: int = 0, num_permutations: int = 10_000,
                              transfer: pd.DataFrame | None = None, stratify: bool | None = None,
                              return_draws: bool = False):
    """Every measure of every score with a paired-bootstrap interval and a permutation p-value.

    ``value`` is the measure on the observed performance (each model's test metric
    averaged over seeds), computed by :func:`nclib.evaluate.ranking_measures`, so it is
    the number :func:`nclib.evaluate.evaluate_run` gives. ``low, high`` is the percentile
    interval over bootstrap replicates that redraw what is random — seeds and test
    examples, the same draws for all models (:func:`resampled_performance`) — with the
    score values held fixed. ``p_value`` is a permutation test of the observed
    association: exact over all n! orderings of the performance vector for n <= 8 models,
    Monte Carlo with a fixed seed beyond. It is one-sided ("the score ranks better than
    chance") for the oriented measures, relative top-1, best-in-top-k and regret (small
    is better), and two-sided for ``abs_pearson`` (the test of |r|).

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value`` (one row per model and score).
    predictions : dict of (model, regime, seed) to ndarray of shape (N_test, C)
        Test-set class probabilities of every transfer run; every scored model needs
        the same seeds within a regime.
    test_labels : array-like of shape (N_test,)
        Integer class indices.
    metric : {"accuracy", "auroc"}
    greater_is_better : mapping of str to bool, optional
        Directions for scores that are not in :data:`nclib.scores.REGISTRY`.
    measures : sequence of str
        Names of :data:`nclib.evaluate.MEASURES` and ``best_in_top<k>``.
    num_resamples : int
    level : float
        Coverage of the percentile interval.
    random_state : int
        Seeds the bootstrap (and the Monte Carlo permutations when n > 8). Use a
        different value per setup when the draws are pooled across setups.
    num_permutations : int
        Monte Carlo permutations when there are more than 8 models.
    transfer : pandas.DataFrame, optional
        Columns ``model, regime, seed, metric, value``. When given, the observed means
        are taken from it (exactly as ``evaluate_run``) after checking that they agree
        with the predictions to 1e-6.
    stratify : bool, optional
        Resample test examples within classes (default: for AUROC only).
    return_draws : bool
        Return an :class:`IntervalEvaluation` (table, bootstrap draws and the observed
        pairs) instead of the table alone.

    Returns
    -------
    pandas.DataFrame or IntervalEvaluation
        Columns ``score, regime, measure, value, low, high, p_value``.

    References
    ----------
    B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap, 1993 (percentile interval).
    A. Agostinelli et al. How stable are transferability metrics evaluations? ECCV 2022.
    B. Phipson, G. K. Smyth. Permutation p-values should never be zero, 2010.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = rng.integers(0, 2, 200)
    >>> def probs(acc, seed):
    ...     right = np.random.default_rng(seed).random(200) < acc
    ...     return np.eye(2)[np.where(right, labels, 1 - labels)]
    >>> accs = {"a": 0.6, "b": 0.7, "c": 0.8, "d": 0.9}
    >>> preds = {(m, "head", s): probs(acc, 10 * i + s) for i, (m, acc) in enumerate(accs.items()) for s in range(3)}
    >>> scores = pd.DataFrame({"model": list(accs), "score": "logme", "value": [1.0, 2.0, 3.0, 4.0]})
    >>> table = evaluation_with_intervals(scores, preds, labels, "accuracy", num_resamples=200)
    >>> row = table.set_index("measure").loc["kendall"]
    >>> float(row.value), float(row.p_value) == 1 / 24, bool(row.low > 0.3)
    (1.0, True, True)
    """
    level = _check_level(level)
    measures = _check_measures(measures)
    if not {"model", "score", "value"} <= set(scores.columns):
        raise ValueError("scores must have columns model, score, value")
    if scores.empty:
        raise ValueError("the score table is empty")
    models = list(dict.fromkeys(scores["model"]))
    design = _design(predictions, test_labels, metric, models, num_resamples=num_resamples,
                     random_state=random_state, stratify=stratify)
    if transfer is not None:
        observed_perf = _check_transfer_agrees(transfer, design)
    else:
        observed_perf = {r: design.observed(r) for r in design.regimes}
    rng = np.random.default_rng([random_state, 1])
    perms, exact = _permutations(len(models), _check_resamples(num_permutations), rng)
    top_k = tuple(k for k in (_top_k(m) for m in measures) if k is not None) or (3,)
    rows, draw_frames, pairs = [], [], []
    for regime in design.regimes:
        index = {m: i for i, m in enumerate(design.models)}
        boot_all = design.resampled(regime)  # (B, M)
        perf_all = observed_perf[regime]
        for score, group in scores.groupby("score", sort=False):
            if group["model"].duplicated().any():
                raise ValueError(f"score {score!r}: a model appears more than once")
            cols = [index[m] for m in group["model"]]
            raw = group["value"].to_numpy(float)
            sign = score_sign(score, greater_is_better)
            oriented = sign * raw
            performance = perf_all[cols]
            point = ranking_measures(raw, performance, sign > 0, top_k)
            boot = batch_measures(oriented, boot_all[:, cols], measures)
            if len(cols) == len(models):
                p_perms, p_exact = perms, exact
            else:
                p_perms, p_exact = _permutations(len(cols), num_permutations, rng)
            null = batch_measures(oriented, performance[p_perms], measures)
            for measure in measures:
                low, high = _interval(boot[measure], level)
                p = _p_from_null(point[measure], null[measure], _alternative(measure), p_exact)
                rows.append((score, regime, measure, float(point[measure]), low, high, p))
                if return_draws:
                    draw_frames.append(pd.DataFrame({"score": score, "regime": regime, "measure": measure,
                                                     "resample": np.arange(len(boot[measure])),
                                                     "value": boot[measure]}))
            if return_draws:
                pairs.append(pd.DataFrame({"score": score, "regime": regime, "model": group["model"].to_numpy(),
                                           "score_value": raw, "oriented": oriented, "performance": performance}))
    table = pd.DataFrame(rows, columns=["score", "regime", "measure", "value", "low", "high", "p_value"])
    if not return_draws:
        return table
    return IntervalEvaluation(table, pd.concat(draw_frames, ignore_index=True), pd.concat(pairs, ignore_index=True))


def pooled_evaluation(evaluations: Mapping, *, by=("score",), measures=None, level: float = 0.95,
                      num_permutations: int = 10_000, random_state: int = 0) -> pd.DataFrame:
    """Average a measure over setups (targets x regimes) with an interval and a pooled p-value.

    A unit is one (setup, regime) pair. The pooled value is the mean of the measure over
    units. Its interval averages the units' bootstrap replicates draw by draw (replicate
    b of every unit): setups were resampled independently, so each average is one
    replicate of the pooled mean; the regimes of one setup share their test-example
    draws, which keeps their dependence. The p-value compares the observed mean with
    its permutation distribution: per Monte Carlo draw, one random ordering of the
    models per setup, shared by that setup's regimes (the score is one vector per setup),
    and the mean statistic recomputed; p = (1 + hits) / (1 + draws).

    Parameters
    ----------
    evaluations : dict of str to IntervalEvaluation
        Per setup name, the result of ``evaluation_with_intervals(..., return_draws=True)``
        (same ``num_resamples`` everywhere; use a different ``random_state`` per setup).
    by : sequence of str
        Columns to pool within: ``("score",)`` pools over setups and regimes,
        ``("score", "regime")`` over setups only.
    measures : sequence of str, optional
        Default: every measure present in all evaluations.
    level : float
    num_permutations : int
    random_state : int

    Returns
    -------
    pandas.DataFrame
        Columns ``*by, measure, units, value, low, high, p_value``.

    References
    ----------
    A. Agostinelli et al. How stable are transferability metrics evaluations? ECCV 2022
    (report over many setups, with uncertainty).

    Examples
    --------
    >>> labels = np.repeat([0, 1], 50)
    >>> def setup(seed):
    ...     rng = np.random.default_rng(seed)
    ...     preds = {(m, "head", 0): np.eye(2)[np.where(rng.random(100) < acc, labels, 1 - labels)]
    ...              for m, acc in zip("abcd", [0.55, 0.7, 0.8, 0.95])}
    ...     s = pd.DataFrame({"model": list("abcd"), "score": "logme", "value": [1.0, 2.0, 3.0, 4.0]})
    ...     return evaluation_with_intervals(s, preds, labels, "accuracy", measures=["kendall"],
    ...                                      num_resamples=100, random_state=seed, return_draws=True)
    >>> pooled = pooled_evaluation({"t1": setup(1), "t2": setup(2)}, num_permutations=500)
    >>> row = pooled.iloc[0]
    >>> int(row.units), float(row.value), bool(row.p_value < 0.01)
    (2, 1.0, True)
    """
    level = _check_level(level)
    num_permutations = _check_resamples(num_permutations)
    by = [by] if isinstance(by, str) else list(by)
    if not evaluations:
        raise ValueError("evaluations must not be empty")
    for name, ev in evaluations.items():
        if not isinstance(ev, IntervalEvaluation):
            raise ValueError(f"evaluations[{name!r}] is not an IntervalEvaluation; "
                             "call evaluation_with_intervals(..., return_draws=True)")
    if not set(by) <= {"score", "regime"} or "score" not in by:
        raise ValueError(f"by must be ('score',) or ('score', 'regime'), got {tuple(by)}")
    sizes = {ev.draws["resample"].max() + 1 for ev in evaluations.values()}
    if len(sizes) != 1:
        raise ValueError(f"evaluations have different numbers of bootstrap resamples: {sorted(sizes)}")
    common = set.intersection(*(set(ev.table["measure"]) for ev in evaluations.values()))
    if measures is None:
        measures = [m for m in dict.fromkeys(next(iter(evaluations.values())).table["measure"]) if m in common]
    measures = _check_measures(measures)
    missing = [m for m in measures if m not in common]
    if missing:
        raise ValueError(f"measures {missing} are missing from some evaluations")
    tables = pd.concat([ev.table.assign(setup=name) for name, ev in evaluations.items()], ignore_index=True)
    draws = pd.concat([ev.draws.assign(setup=name) for name, ev in evaluations.items()], ignore_index=True)
    observed = pd.concat([ev.observed.assign(setup=name) for name, ev in evaluations.items()], ignore_index=True)
    rng = np.random.default_rng(random_state)
    # one random ordering per Monte Carlo draw and setup, shared by the setup's regimes and scores
    setup_models = {name: list(dict.fromkeys(ev.observed["model"])) for name, ev in evaluations.items()}
    perms = {name: np.argsort(rng.random((num_permutations, len(ms))), axis=1) for name, ms in setup_models.items()}
    rows = []
    for key, group in tables[tables["measure"].isin(measures)].groupby(by + ["measure"], sort=False):
        key = key if isinstance(key, tuple) else (key,)
        measure = key[-1]
        units = group[["setup", "regime"]].drop_duplicates()
        value = float(group["value"].mean())
        sub = draws.merge(units, on=["setup", "regime"])
        sub = sub[(sub["measure"] == measure) & (sub["score"] == key[0])]
        per_draw = sub.pivot(index="resample", columns=["setup", "regime"], values="value")
        low, high = _interval(per_draw.mean(axis=1, skipna=False).to_numpy(), level)
        null = np.zeros(num_permutations)
        for setup, regime in units.itertuples(index=False):
            pair = observed[(observed["setup"] == setup) & (observed["regime"] == regime)
                            & (observed["score"] == key[0])]
            position = {m: i for i, m in enumerate(setup_models[setup])}
            # reorder the setup's shared permutations to this unit's models
            cols = np.array([position[m] for m in pair["model"]])
            perf_full = np.full(len(position), np.nan)
            perf_full[cols] = pair["performance"].to_numpy(float)
            shuffled = perf_full[perms[setup]][:, cols]
            if np.isnan(shuffled).any():
                raise ValueError(f"setup {setup!r}: score {key[0]!r} does not cover every model of the setup")
            null += batch_measures(pair["oriented"].to_numpy(float), shuffled, [measure])[measure]
        null /= len(units)
        p = _p_from_null(value, null, _alternative(measure), exact=False)
        rows.append((*key, len(units), value, low, high, p))
    return pd.DataFrame(rows, columns=by + ["measure", "units", "value", "low", "high", "p_value"])


# ----------------------------------------------------------------------------- ground truth
def _auroc_bootstrap_se(design: _Design, regime: str) -> np.ndarray:
    per_run = _run_metric(design.runs[regime], design.labels, "auroc", design.example_counts)  # (M, S, B)
    return np.sqrt(np.nanmean(np.nanvar(per_run, axis=2, ddof=1), axis=1))


def model_noise(transfer: pd.DataFrame, predictions, test_labels, metric: str, *, num_resamples: int = 1000,
                random_state: int = 0) -> pd.DataFrame:
    """How noisy each model's measured performance is: seed spread and test-set error.

    Parameters
    ----------
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``.
    predictions : dict of (model, regime, seed) to ndarray of shape (N_test, C), or None
        Needed for AUROC (bootstrap standard error); accuracy uses the binomial formula.
    test_labels : array-like of shape (N_test,)
    metric : {"accuracy", "auroc"}
    num_resamples, random_state : int
        The AUROC bootstrap (stratified by class).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, regime, num_seeds, mean, seed_sd, seed_se, test_se``:
        ``seed_sd`` the standard deviation over seeds (ddof 1; NaN with one seed),
        ``seed_se = seed_sd / sqrt(num_seeds)`` the error of the seed mean, ``test_se`` the
        standard error of one run's metric from the finite test set —
        :math:`\\sqrt{p(1-p)/n}` for accuracy (p the mean accuracy), the root mean over
        seeds of the bootstrap variance for AUROC.

    References
    ----------
    B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap, 1993.

    Examples
    --------
    >>> t = pd.DataFrame({"model": "a", "regime": "head", "seed": [0, 1], "metric": "accuracy",
    ...                   "value": [0.8, 0.9]})
    >>> row = model_noise(t, None, np.zeros(100, int), "accuracy").iloc[0]
    >>> round(float(row["mean"]), 3), round(float(row.seed_sd), 4), round(float(row.test_se), 4)
    (0.85, 0.0707, 0.0357)
    """
    metric = _check_metric(metric)
    labels = _check_labels(test_labels, metric)
    if not {"model", "regime", "seed", "metric", "value"} <= set(transfer.columns):
        raise ValueError("transfer must have columns model, regime, seed, metric, value")
    if transfer.empty:
        raise ValueError("the transfer table is empty")
    grouped = transfer.groupby(["model", "regime"], sort=False)["value"]
    table = grouped.agg(num_seeds="count", mean="mean", seed_sd="std").reset_index()
    table["seed_se"] = table["seed_sd"] / np.sqrt(table["num_seeds"])
    if metric == "accuracy":
        p = table["mean"].to_numpy(float)
        table["test_se"] = np.sqrt(p * (1 - p) / len(labels))
    else:
        if predictions is None:
            raise ValueError("AUROC needs predictions for its bootstrap standard error")
        design = _design(predictions, labels, metric, list(dict.fromkeys(table["model"])),
                         list(dict.fromkeys(table["regime"])), num_resamples=num_resamples,
                         random_state=random_state)
        se = {(m, r): v for r in design.regimes
              for m, v in zip(design.models, _auroc_bootstrap_se(design, r))}
        table["test_se"] = [se[(m, r)] for m, r in zip(table["model"], table["regime"])]
    return table[["model", "regime", "num_seeds", "mean", "seed_sd", "seed_se", "test_se"]]


def pool_summary(transfer: pd.DataFrame, predictions, test_labels, metric: str, *, num_resamples: int = 1000,
                 random_state: int = 0) -> pd.DataFrame:
    """Per regime: how far apart the models are, next to how noisy each measurement is.

    Parameters
    ----------
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``.
    predictions : dict of (model, regime, seed) to ndarray of shape (N_test, C)
    test_labels : array-like of shape (N_test,)
    metric : {"accuracy", "auroc"}
    num_resamples, random_state : int
        The paired bootstrap of :func:`resampled_performance`.

    Returns
    -------
    pandas.DataFrame
        One row per regime: ``regime, num_models, range`` (max - min of the model means),
        ``top_gap`` (best minus second-best mean), ``seed_sd`` and ``test_se`` (medians
        over models, from :func:`model_noise`), ``best_model`` and ``prob_best``: the
        fraction of paired bootstrap replicates in which the observed best model is
        still the best (ties shared).

    Raises
    ------
    ValueError
        When the transfer table's seed means disagree with the predictions (to 1e-6).

    Examples
    --------
    >>> labels = np.repeat([0, 1], 100)
    >>> rng = np.random.default_rng(0)
    >>> preds = {(m, "head", s): np.eye(2)[np.where(rng.random(200) < acc, labels, 1 - labels)]
    ...          for m, acc in [("a", 0.6), ("b", 0.95)] for s in range(2)}
    >>> from nclib.transfer import score_predictions
    >>> t = pd.DataFrame([(m, r, s, "accuracy", score_predictions("accuracy", labels, p))
    ...                   for (m, r, s), p in preds.items()], columns=["model", "regime", "seed", "metric", "value"])
    >>> row = pool_summary(t, preds, labels, "accuracy", num_resamples=200).iloc[0]
    >>> row.best_model, float(row.prob_best)
    ('b', 1.0)
    """
    noise = model_noise(transfer, predictions, test_labels, metric, num_resamples=num_resamples,
                        random_state=random_state)
    design = _design(predictions, test_labels, metric, list(dict.fromkeys(noise["model"])),
                     list(dict.fromkeys(noise["regime"])), num_resamples=num_resamples, random_state=random_state)
    _check_transfer_agrees(transfer, design)
    rows = []
    for regime in design.regimes:
        part = noise[noise["regime"] == regime].set_index("model").loc[design.models]
        means = part["mean"].to_numpy(float)
        ordered = np.sort(means)[::-1]
        best = int(np.argmax(means))
        boot = design.resampled(regime)
        at_max = boot == boot.max(axis=1, keepdims=True)
        prob_best = float(np.mean(at_max[:, best] / at_max.sum(axis=1)))
        rows.append((regime, len(means), float(ordered[0] - ordered[-1]), float(ordered[0] - ordered[1]),
                     float(part["seed_sd"].median()), float(part["test_se"].median()),
                     design.models[best], prob_best))
    return pd.DataFrame(rows, columns=["regime", "num_models", "range", "top_gap", "seed_sd", "test_se",
                                       "best_model", "prob_best"])


def ranking_agreement(transfer: pd.DataFrame, predictions, test_labels, metric: str, regime_a: str = "head",
                      regime_b: str = "full", *, measures=("kendall", "spearman"), num_resamples: int = 1000,
                      level: float = 0.95, random_state: int = 0) -> pd.DataFrame:
    """Do two transfer regimes rank the models alike? Rank correlation with intervals.

    The observed value correlates the two regimes' seed-mean performances (from
    ``transfer``). The interval redraws the test examples (the same indices for both
    regimes and all models) and each regime's seeds (the same draws for all models);
    the p-value is the exact permutation test (n <= 8) that the agreement exceeds chance.

    Parameters
    ----------
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``.
    predictions : dict of (model, regime, seed) to ndarray of shape (N_test, C)
    test_labels : array-like of shape (N_test,)
    metric : {"accuracy", "auroc"}
    regime_a, regime_b : str
    measures : sequence of {"kendall", "spearman", "pearson", "weighted_tau"}
    num_resamples : int
    level : float
    random_state : int

    Returns
    -------
    pandas.DataFrame
        Columns ``regime_a, regime_b, measure, value, low, high, p_value``.

    Examples
    --------
    >>> labels = np.repeat([0, 1], 100)
    >>> rng = np.random.default_rng(0)
    >>> preds = {(m, r, 0): np.eye(2)[np.where(rng.random(200) < acc, labels, 1 - labels)]
    ...          for m, acc in zip("abcd", [0.55, 0.7, 0.8, 0.95]) for r in ("head", "full")}
    >>> from nclib.transfer import score_predictions
    >>> t = pd.DataFrame([(m, r, s, "accuracy", score_predictions("accuracy", labels, p))
    ...                   for (m, r, s), p in preds.items()], columns=["model", "regime", "seed", "metric", "value"])
    >>> row = ranking_agreement(t, preds, labels, "accuracy", num_resamples=200).iloc[0]
    >>> float(row.value), float(row.p_value) == 1 / 24
    (1.0, True)
    """
    level = _check_level(level)
    measures = _check_measures(measures)
    bad = [m for m in measures if m not in ("kendall", "spearman", "pearson", "weighted_tau")]
    if bad:
        raise ValueError(f"ranking_agreement supports kendall, spearman, pearson and weighted_tau, not {bad}")
    if regime_a == regime_b:
        raise ValueError("regime_a and regime_b must differ")
    if not {"model", "regime"} <= set(transfer.columns):
        raise ValueError("transfer must have columns model, regime, seed, metric, value")
    models_a = set(transfer.loc[transfer["regime"] == regime_a, "model"])
    models_b = set(transfer.loc[transfer["regime"] == regime_b, "model"])
    models = [m for m in dict.fromkeys(transfer["model"]) if m in models_a and m in models_b]
    if len(models) < 2:
        raise ValueError(f"need at least two models with both {regime_a!r} and {regime_b!r} results")
    design = _design(predictions, test_labels, metric, models, [regime_a, regime_b],
                     num_resamples=num_resamples, random_state=random_state)
    observed = _check_transfer_agrees(transfer[transfer["model"].isin(models)], design)
    a, b = observed[regime_a], observed[regime_b]
    boot_a, boot_b = design.resampled(regime_a), design.resampled(regime_b)
    perms, exact = _permutations(len(models), 10_000, np.random.default_rng([random_state, 1]))
    rows = []
    for measure in measures:
        value = float(batch_measures(a, b, [measure])[measure][0])
        draws = np.array([batch_measures(boot_a[k], boot_b[k][None, :], [measure])[measure][0]
                          for k in range(len(boot_a))]) if measure == "weighted_tau" else \
            _rowwise(measure, boot_a, boot_b)
        low, high = _interval(draws, level)
        p = _p_from_null(value, batch_measures(a, b[perms], [measure])[measure], "greater", exact)
        rows.append((regime_a, regime_b, measure, value, low, high, p))
    return pd.DataFrame(rows, columns=["regime_a", "regime_b", "measure", "value", "low", "high", "p_value"])


def _rowwise(measure: str, A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """Correlation of A[k] with B[k] for every row (both (K, M))."""
    if measure == "spearman":
        A, B = stats.rankdata(A, axis=1), stats.rankdata(B, axis=1)
    if measure in ("pearson", "spearman"):
        Ac = A - A.mean(axis=1, keepdims=True)
        Bc = B - B.mean(axis=1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            r = (Ac * Bc).sum(axis=1) / np.sqrt((Ac * Ac).sum(axis=1) * (Bc * Bc).sum(axis=1))
        r[(np.ptp(A, axis=1) == 0) | (np.ptp(B, axis=1) == 0)] = np.nan
        return np.clip(r, -1, 1)
    i, j = np.triu_indices(A.shape[1], 1)
    sa, sb = np.sign(A[:, i] - A[:, j]), np.sign(B[:, i] - B[:, j])
    with np.errstate(invalid="ignore", divide="ignore"):
        tau = (sa * sb).sum(axis=1) / np.sqrt(np.count_nonzero(sa, axis=1) * np.count_nonzero(sb, axis=1))
    return tau


# ----------------------------------------------------------------------------- baselines
_NO_INFORMATION = {"leep", "nce"}


def no_information_value(score_name: str, labels) -> float:
    """The value a score takes when the model carries no information about the labels.

    For LEEP and NCE, source predictions independent of the target labels make the
    empirical predictor P(y | z) the target prior, so both scores reduce to
    :math:`-H(\\hat p) = \\sum_c \\hat p_c \\log \\hat p_c` (natural log) of the empirical
    label distribution — exactly, for source probabilities identical across examples.
    A score near this value says the source classifier is no better than guessing the
    prior. The other registered scores have no closed-form chance level (it depends on
    N, D and the feature distribution; e.g. LogME, NC, H-score); NaN is returned for
    them — estimate it by scoring random features of the same shape instead.

    Parameters
    ----------
    score_name : str
        A name of :data:`nclib.scores.REGISTRY`.
    labels : array-like of shape (N,)
        Target labels (any hashable values).

    Returns
    -------
    float
        ``-H(prior)`` for ``leep`` and ``nce``; NaN for scores without a closed form.

    References
    ----------
    C. V. Nguyen et al. LEEP: a new measure to evaluate transferability of learned
    representations. ICML 2020. A. T. Tran, C. V. Nguyen, T. Hassner. Transferability and
    hardness of supervised classification tasks. ICCV 2019.

    Examples
    --------
    >>> from nclib.scores import leep_score
    >>> labels = [0, 0, 0, 1]
    >>> flat = np.full((4, 5), 0.2)
    >>> bool(np.isclose(no_information_value("leep", labels), leep_score(flat, labels)))
    True
    >>> no_information_value("logme", labels)
    nan
    """
    from nclib.scores import REGISTRY

    if score_name not in REGISTRY:
        raise ValueError(f"unknown score {score_name!r}; known: {sorted(REGISTRY)}")
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    if score_name not in _NO_INFORMATION:
        return float("nan")
    _, counts = np.unique(labels, return_counts=True)
    prior = counts / counts.sum()
    return float(np.sum(prior * np.log(prior)))
