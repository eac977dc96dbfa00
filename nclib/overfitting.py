"""Overfitting measured: train--test gaps of learning curves, with intervals over seeds.

Suresh, Abrol and Thakur (Section 5, caveat (c) and their Figure 4) warn that a score
computed on the training data alone may favour the model that fits that data best but
generalises worst. This module turns learning curves (from
:mod:`nclib.learning_curves`, one run per model, training-set size and seed) into the
quantities that caveat is about:

* :func:`nested_subsets` -- seeded, class-stratified training subsets, each size
  containing the smaller ones (so sizes are compared on the same images);
* :func:`run_gaps` -- per run, the train--test accuracy gap at the best validation epoch
  (the checkpoint the paper's protocol keeps) and at the end of training, and how much
  longer training widened it;
* :func:`mean_interval` and :func:`summarise` -- means over seeds with percentile
  bootstrap intervals (Efron and Tibshirani 1993);
* :func:`score_gap_association` -- whether the model a score favours is the one that
  overfits most: Kendall's tau between the oriented score and the gap across the pool,
  an exact permutation p-value (:func:`nclib.uncertainty.exact_permutation_p_value`) and
  a bootstrap interval over seeds;
* :func:`seed_picks` -- on each seed's subset, the model each score picks, the truly
  best one and the one that overfits most, and the pick's relative performance;
* :func:`curve_bands` and :func:`bands_separate` -- the Figure 4 analogue's curves with
  their bands over seeds, and whether two curves separate beyond them;
* :func:`paired_curve_difference` and :func:`paired_difference_band` -- two models'
  curves compared seed by seed: whether they end apart beyond the noise, whether their
  difference was still moving, and the band of that difference to draw.

Everything here is numpy and pandas on small tables; the chapter "(c) Training data is
not generalisation" uses it.

References
----------
S. Suresh, V. Abrol, A. K. Thakur. Towards quantifying the effect of datasets for
benchmarking: a look at transferability estimation. ICASSP 2023.
B. Efron, R. J. Tibshirani. An Introduction to the Bootstrap. Chapman & Hall, 1993.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from nclib._sampling import per_class_parts
from nclib.evaluate import score_sign
from nclib.uncertainty import batch_measures, exact_permutation_p_value

__all__ = ["bands_separate", "curve_bands", "mean_interval", "nested_subsets", "paired_curve_difference",
           "paired_difference_band", "run_gaps", "score_gap_association", "seed_picks", "summarise"]

CURVE_COLUMNS = ("epoch", "train_accuracy", "val_accuracy", "test_accuracy")
"""The columns of a learning-curves table that :func:`run_gaps` reads."""


def nested_subsets(labels, per_class: Sequence[int], *, num_classes: int, seed: int) -> dict:
    """Seeded, class-stratified training subsets, each containing the smaller ones.

    Every class is permuted once with ``seed`` (:func:`nclib._sampling.per_class_parts`)
    and the subset of size k takes the first k rows of every class, so the subsets grow
    by adding images, never by swapping them.

    Parameters
    ----------
    labels : array-like of shape (N,)
        Integer labels in ``range(num_classes)``.
    per_class : sequence of int
        Strictly increasing rows per class, each at least 1.
    num_classes : int
    seed : int

    Returns
    -------
    dict of int to ndarray of int64
        ``{k: sorted row indices}``, ``k * num_classes`` rows each.

    Raises
    ------
    ValueError
        Sizes not strictly increasing positive integers, or a class with fewer than
        ``max(per_class)`` rows.

    Examples
    --------
    >>> labels = np.arange(40) % 2
    >>> subsets = nested_subsets(labels, [2, 5], num_classes=2, seed=0)
    >>> {k: len(rows) for k, rows in subsets.items()}, bool(np.isin(subsets[2], subsets[5]).all())
    ({2: 4, 5: 10}, True)
    """
    sizes = [int(k) for k in per_class]
    if not sizes or any(k < 1 for k in sizes) or any(b <= a for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"per_class must be strictly increasing positive integers, got {list(per_class)}")
    parts = per_class_parts(labels, np.diff([0, *sizes]), num_classes, seed)
    return {k: np.sort(np.concatenate(parts[:i + 1])) for i, k in enumerate(sizes)}


def _as_tuple(key) -> tuple:
    """A ``groupby`` key as a tuple (one grouping column gives a scalar or a 1-tuple)."""
    return key if isinstance(key, tuple) else (key,)


def _check_curves(curves: pd.DataFrame, keys) -> None:
    missing = [c for c in (*keys, *CURVE_COLUMNS) if c not in curves.columns]
    if missing:
        raise ValueError(f"curves lack the columns {missing}")
    if curves.empty:
        raise ValueError("curves is empty")
    if curves.duplicated([*keys, "epoch"]).any():
        raise ValueError(f"curves has several rows for one run ({', '.join(keys)}) and epoch")


def run_gaps(curves: pd.DataFrame, keys: Sequence[str] = ("model", "size", "seed")) -> pd.DataFrame:
    """Per run: the train--test gap at the best validation epoch and at the end of training.

    The gap is training accuracy minus test accuracy (both in eval mode): how much better
    the network does on the images it was trained on than on unseen ones. The *best*
    epoch is the first recorded epoch of highest validation accuracy, the checkpoint
    that training with a validation set keeps; the *end* is the last recorded epoch.

    Parameters
    ----------
    curves : pandas.DataFrame
        One row per run and recorded epoch: the ``keys`` columns, ``epoch``,
        ``train_accuracy``, ``val_accuracy``, ``test_accuracy``
        (:func:`nclib.learning_curves.learning_curves` plus keys).
    keys : sequence of str
        Columns that identify a run.

    Returns
    -------
    pandas.DataFrame
        One row per run: the keys, ``best_epoch``, ``last_epoch``, ``train_best``,
        ``test_best``, ``gap_best``, ``train_end``, ``test_end``, ``gap_end`` and
        ``widening`` (``gap_end - gap_best``: what training past the best epoch added).

    Examples
    --------
    >>> curves = pd.DataFrame({"model": "a", "seed": 0, "epoch": [1, 2, 3],
    ...                        "train_accuracy": [0.5, 0.9, 1.0], "val_accuracy": [0.4, 0.8, 0.7],
    ...                        "test_accuracy": [0.4, 0.7, 0.6]})
    >>> row = run_gaps(curves, keys=["model", "seed"]).iloc[0]
    >>> int(row.best_epoch), [round(float(row[c]), 2) for c in ("gap_best", "gap_end", "widening")]
    (2, [0.2, 0.4, 0.2])
    """
    keys = list(keys)
    _check_curves(curves, keys)
    rows = []
    for key, run in curves.sort_values([*keys, "epoch"]).groupby(keys, sort=True):
        best = run.loc[run["val_accuracy"].idxmax()]  # idxmax: the first maximum
        end = run.iloc[-1]
        rows.append((*_as_tuple(key), int(best["epoch"]), int(end["epoch"]), best["train_accuracy"],
                     best["test_accuracy"], end["train_accuracy"], end["test_accuracy"]))
    table = pd.DataFrame(rows, columns=[*keys, "best_epoch", "last_epoch", "train_best", "test_best", "train_end",
                                        "test_end"])
    table.insert(len(keys) + 4, "gap_best", table["train_best"] - table["test_best"])
    table["gap_end"] = table["train_end"] - table["test_end"]
    table["widening"] = table["gap_end"] - table["gap_best"]
    return table


def _check_level(level: float) -> float:
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level!r}")
    return float(level)


def mean_interval(values, level: float = 0.95, num_resamples: int = 10_000,
                  random_state: int = 0, method: str = "bootstrap") -> tuple[float, float, float]:
    """The mean of ``values`` and its interval: percentile bootstrap, or Student's t.

    With a handful of seeds the percentile bootstrap is narrower than it should be (its
    resamples cannot be more spread than the values themselves); Student's t interval,
    which assumes roughly normal values, is wider and serves as a check on conclusions
    that rest on an interval barely excluding a value.

    Parameters
    ----------
    values : array-like of shape (n,)
        One value per seed (n >= 2, finite).
    level : float
        Coverage of the interval.
    num_resamples : int
        Bootstrap resamples (``method="bootstrap"`` only).
    random_state : int
    method : {"bootstrap", "t"}
        ``"t"``: mean ± the ``(1 + level) / 2`` quantile of Student's t with n - 1
        degrees of freedom times the standard error.

    Returns
    -------
    (mean, low, high) : tuple of float

    Examples
    --------
    >>> mean, low, high = mean_interval([0.1, 0.2, 0.3, 0.4, 0.5])
    >>> round(mean, 2), bool(0.1 <= low < mean < high <= 0.5)
    (0.3, True)
    >>> [round(v, 3) for v in mean_interval([0.1, 0.2, 0.3, 0.4, 0.5], method="t")]
    [0.3, 0.104, 0.496]
    """
    values = np.asarray(values, dtype=float)
    if values.ndim != 1 or len(values) < 2 or not np.isfinite(values).all():
        raise ValueError(f"values must be at least two finite numbers, got {values!r}")
    level = _check_level(level)
    if method == "t":
        from scipy import stats

        half = stats.t.ppf((1 + level) / 2, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
        return float(values.mean()), float(values.mean() - half), float(values.mean() + half)
    if method != "bootstrap":
        raise ValueError(f"method must be 'bootstrap' or 't', got {method!r}")
    if int(num_resamples) < 1:
        raise ValueError(f"num_resamples must be positive, got {num_resamples!r}")
    rng = np.random.default_rng(random_state)
    means = values[rng.integers(0, len(values), size=(int(num_resamples), len(values)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(values.mean()), float(low), float(high)


def summarise(table: pd.DataFrame, by: Sequence[str], values: Sequence[str], level: float = 0.95,
              num_resamples: int = 10_000, random_state: int = 0) -> pd.DataFrame:
    """Mean and bootstrap interval (:func:`mean_interval`) of each value column within groups.

    Parameters
    ----------
    table : pandas.DataFrame
        E.g. :func:`run_gaps`' output: one row per seed within each group.
    by : sequence of str
        Grouping columns (e.g. ``["model", "size"]``).
    values : sequence of str
        Columns to summarise.
    level, num_resamples, random_state
        As in :func:`mean_interval`.

    Returns
    -------
    pandas.DataFrame
        Columns ``by..., quantity, mean, low, high, n``.

    Examples
    --------
    >>> t = pd.DataFrame({"model": ["a"] * 3 + ["b"] * 3, "gap_end": [0.1, 0.2, 0.3, 0.3, 0.4, 0.5]})
    >>> summarise(t, ["model"], ["gap_end"])[["model", "mean", "n"]].round(2).values.tolist()
    [['a', 0.2, 3], ['b', 0.4, 3]]
    """
    by, values = list(by), list(values)
    missing = [c for c in by + values if c not in table.columns]
    if missing:
        raise ValueError(f"table lacks the columns {missing}")
    rows = []
    for key, group in table.groupby(by, sort=True):
        for value in values:
            mean, low, high = mean_interval(group[value].to_numpy(), level, num_resamples, random_state)
            rows.append((*_as_tuple(key), value, mean, low, high, len(group)))
    return pd.DataFrame(rows, columns=[*by, "quantity", "mean", "low", "high", "n"])


def _tau(x: np.ndarray, y: np.ndarray) -> float:
    return float(batch_measures(x, y[None, :], ["kendall"])["kendall"][0])


def score_gap_association(scores: pd.DataFrame, gaps: pd.DataFrame, value: str = "gap_end", *,
                          performance: str = "test_best", level: float = 0.95, num_resamples: int = 2_000,
                          random_state: int = 0, greater_is_better=None) -> pd.DataFrame:
    """Whether a score's favourite is the model that overfits most, per training-set size.

    Within each size, every model's score and gap are averaged over seeds; the score is
    oriented (larger = rated better). Kendall's tau-b between the oriented score and the
    gap across the pool measures how far the score's ranking follows overfitting; its
    p-value is the exact permutation test of "greater" (:func:`nclib.uncertainty.exact_permutation_p_value`:
    a better rating goes with a larger gap, as caveat (c) would have it), and its interval
    the percentile bootstrap over seeds (the same seeds drawn for every model, so a seed's
    training subset stays paired with its own runs).

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``size, seed, model, score, value``: each score on each seed's training
        subset (a missing row: the score refused that subset).
    gaps : pandas.DataFrame
        :func:`run_gaps` output with keys ``model, size, seed``.
    value : str
        The overfitting measure, a column of ``gaps`` (default ``gap_end``).
    performance : str
        The column of ``gaps`` that defines the truly best model (default ``test_best``,
        the test accuracy of the best-validation checkpoint).
    level, num_resamples, random_state
        Bootstrap settings.
    greater_is_better : mapping of str to bool, optional
        Directions of scores not in the registry.

    Returns
    -------
    pandas.DataFrame
        One row per size and score: ``tau, low, high, p_value``, ``pick`` (the score's
        favourite), ``most`` (the model with the largest mean ``value``), ``best`` (the
        largest mean ``performance``), ``pick_is_most``, ``pick_is_best`` and
        ``seeds_pick_is_most`` (the fraction of seeds whose own favourite is that seed's
        largest gap) and ``seeds`` (how many were used: a seed on which a score refused
        some model's subset, or a run is missing, is left out for that score and size).

    Examples
    --------
    >>> gaps = pd.DataFrame({"model": ["a", "b", "c"] * 2, "size": 5, "seed": [0] * 3 + [1] * 3,
    ...                      "gap_end": [0.1, 0.2, 0.3, 0.1, 0.25, 0.35], "test_best": [0.9, 0.8, 0.7] * 2})
    >>> scores = pd.DataFrame({"size": 5, "seed": gaps.seed, "model": gaps.model, "score": "logme",
    ...                        "value": [1.0, 2.0, 3.0, 1.0, 2.0, 3.0]})
    >>> row = score_gap_association(scores, gaps).iloc[0]
    >>> float(row.tau), row.pick, row.most, row.best, round(float(row.p_value), 3)
    (1.0, 'c', 'c', 'a', 0.167)
    """
    missing = [c for c in ("size", "seed", "model", "score", "value") if c not in scores.columns]
    missing += [c for c in ("size", "seed", "model", value, performance) if c not in gaps.columns]
    if missing:
        raise ValueError(f"scores or gaps lack the columns {missing}")
    level = _check_level(level)
    rng = np.random.default_rng(random_state)
    rows = []
    for (size, score), table in scores.groupby(["size", "score"], sort=True):
        runs = gaps[gaps["size"] == size]
        models = sorted(runs["model"].unique())
        oriented = table.pivot(index="model", columns="seed", values="value").reindex(models)
        if score_sign(score, greater_is_better) < 0:
            oriented = -oriented
        gap = runs.pivot(index="model", columns="seed", values=value).reindex(models)
        perf = runs.pivot(index="model", columns="seed", values=performance).reindex(models)
        seeds = [s for s in oriented.columns.intersection(gap.columns)
                 if oriented[s].notna().all() and gap[s].notna().all() and perf[s].notna().all()]
        if len(seeds) < 2 or len(models) < 2:
            raise ValueError(f"size {size}, score {score}: need at least two models and two seeds on which "
                             f"every model has a score and a gap; found {len(models)} models, seeds {seeds}")
        oriented, gap, perf = oriented[seeds], gap[seeds], perf[seeds]
        x, y = oriented.mean(axis=1).to_numpy(), gap.mean(axis=1).to_numpy()
        draws = rng.integers(0, len(seeds), size=(int(num_resamples), len(seeds)))
        taus = np.array([_tau(oriented.to_numpy()[:, d].mean(axis=1), gap.to_numpy()[:, d].mean(axis=1))
                         for d in draws])
        low, high = np.nanquantile(taus, [(1 - level) / 2, (1 + level) / 2])
        pick, most = oriented.index[np.argmax(x)], gap.index[np.argmax(y)]
        best = perf.mean(axis=1).idxmax()
        agree = np.mean([oriented[s].idxmax() == gap[s].idxmax() for s in seeds])
        rows.append((size, score, _tau(x, y), float(low), float(high),
                     exact_permutation_p_value(x, y, "kendall", "greater"), str(pick), str(most), str(best),
                     bool(pick == most), bool(pick == best), float(agree), len(seeds)))
    return pd.DataFrame(rows, columns=["size", "score", "tau", "low", "high", "p_value", "pick", "most", "best",
                                       "pick_is_most", "pick_is_best", "seeds_pick_is_most", "seeds"])


def seed_picks(scores: pd.DataFrame, gaps: pd.DataFrame, value: str = "gap_end", *,
               performance: str = "test_best", greater_is_better=None) -> pd.DataFrame:
    """On each seed's subset: each score's pick, the best model, the most overfitting one.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``size, seed, model, score, value`` (a missing or NaN value: the score
        refused that model's subset; the score then picks among the others).
    gaps : pandas.DataFrame
        :func:`run_gaps` output with keys ``model, size, seed``.
    value, performance : str
        Columns of ``gaps``: the overfitting measure and the performance after transfer.
    greater_is_better : mapping of str to bool, optional

    Returns
    -------
    pandas.DataFrame
        One row per size, seed and score: ``pick``, ``best``, ``most`` (the largest
        ``value``) and ``relative_top1`` (the pick's ``performance`` over the best's).

    Examples
    --------
    >>> gaps = pd.DataFrame({"model": ["a", "b"], "size": 5, "seed": 0, "gap_end": [0.1, 0.3],
    ...                      "test_best": [0.8, 0.6]})
    >>> scores = pd.DataFrame({"size": 5, "seed": 0, "model": ["a", "b"], "score": "nc", "value": [0.5, 0.2]})
    >>> seed_picks(scores, gaps)[["pick", "best", "most", "relative_top1"]].values.tolist()
    [['b', 'a', 'b', 0.75]]
    """
    missing = [c for c in ("size", "seed", "model", "score", "value") if c not in scores.columns]
    missing += [c for c in ("size", "seed", "model", value, performance) if c not in gaps.columns]
    if missing:
        raise ValueError(f"scores or gaps lack the columns {missing}")
    runs = gaps.set_index(["size", "seed", "model"]).sort_index()
    rows = []
    for (size, seed, score), table in scores.dropna(subset=["value"]).groupby(["size", "seed", "score"], sort=True):
        if (size, seed) not in runs.index.droplevel("model"):
            raise ValueError(f"gaps have no runs for size {size}, seed {seed}")
        these = runs.loc[(size, seed)]
        oriented = table.set_index("model")["value"] * score_sign(score, greater_is_better)
        unknown = sorted(set(oriented.index) - set(these.index))
        if unknown:
            raise ValueError(f"size {size}, seed {seed}: no runs for the scored models {unknown}")
        pick = oriented.idxmax()
        best, most = these[performance].idxmax(), these[value].idxmax()
        rows.append((size, seed, score, pick, best, most, these.loc[pick, performance] / these[performance].max()))
    return pd.DataFrame(rows, columns=["size", "seed", "score", "pick", "best", "most", "relative_top1"])


def curve_bands(curves: pd.DataFrame, by: Sequence[str] = ("model", "size"),
                value: str = "test_accuracy") -> pd.DataFrame:
    """Mean curve over seeds with its band, the range (lowest to highest) over seeds.

    Parameters
    ----------
    curves : pandas.DataFrame
        One row per run and recorded epoch, with the ``by`` columns, ``seed``, ``epoch``
        and ``value``.
    by : sequence of str
    value : str

    Returns
    -------
    pandas.DataFrame
        Columns ``by..., epoch, mean, low, high, n`` (``n`` seeds at that epoch).

    Examples
    --------
    >>> c = pd.DataFrame({"model": "a", "size": 5, "seed": [0, 1, 0, 1], "epoch": [1, 1, 2, 2],
    ...                   "test_accuracy": [0.2, 0.4, 0.5, 0.7]})
    >>> curve_bands(c)[["epoch", "mean", "low", "high"]].round(2).values.tolist()
    [[1.0, 0.3, 0.2, 0.4], [2.0, 0.6, 0.5, 0.7]]
    """
    by = list(by)
    missing = [c for c in (*by, "seed", "epoch", value) if c not in curves.columns]
    if missing:
        raise ValueError(f"curves lack the columns {missing}")
    grouped = curves.groupby([*by, "epoch"], sort=True)[value]
    bands = grouped.agg(mean="mean", low="min", high="max", n="count").reset_index()
    return bands


def bands_separate(bands: pd.DataFrame, first: str, second: str, *, model_column: str = "model") -> pd.Series:
    """Epoch by epoch, whether two models' bands are disjoint (``first`` above ``second``).

    Parameters
    ----------
    bands : pandas.DataFrame
        :func:`curve_bands` output for one setting (one size), with ``model_column``,
        ``epoch``, ``low`` and ``high``.
    first, second : str
        The models compared: True where the lowest seed of ``first`` lies above the
        highest seed of ``second``.

    Returns
    -------
    pandas.Series of bool
        Indexed by epoch.

    Examples
    --------
    >>> b = pd.DataFrame({"model": ["a", "b"] * 2, "epoch": [1, 1, 2, 2], "low": [0.3, 0.2, 0.6, 0.4],
    ...                   "high": [0.4, 0.35, 0.7, 0.5]})
    >>> bands_separate(b, "a", "b").tolist()
    [False, True]
    """
    for column in (model_column, "epoch", "low", "high"):
        if column not in bands.columns:
            raise ValueError(f"bands lack the column {column!r}")
    if bands.duplicated([model_column, "epoch"]).any():
        raise ValueError("bands must hold one setting: one row per model and epoch")
    a = bands[bands[model_column] == first].set_index("epoch")
    b = bands[bands[model_column] == second].set_index("epoch")
    if a.empty or b.empty:
        raise ValueError(f"bands lack the model {first if a.empty else second!r}")
    common = a.index.intersection(b.index)
    return (a.loc[common, "low"] > b.loc[common, "high"]).rename("separate")


def _paired_table(curves: pd.DataFrame, first: str, second: str, value: str, model_column: str) -> pd.DataFrame:
    """``first - second`` of ``value``, one row per epoch and one column per seed both share."""
    for column in (model_column, "seed", "epoch", value):
        if column not in curves.columns:
            raise ValueError(f"curves lack the column {column!r}")
    if curves.duplicated([model_column, "seed", "epoch"]).any():
        raise ValueError("curves must hold one setting: one row per model, seed and epoch")
    runs = curves[curves[model_column].isin([first, second])]
    table = runs.pivot(index="epoch", columns=[model_column, "seed"], values=value).sort_index()
    for model in (first, second):
        if model not in table.columns.get_level_values(0):
            raise ValueError(f"curves lack the model {model!r}")
    difference = (table[first] - table[second]).dropna(axis=1, how="any")
    if difference.shape[1] < 2:
        raise ValueError(f"{first!r} and {second!r} share fewer than two seeds recorded at the same epochs")
    return difference


def paired_difference_band(curves: pd.DataFrame, first: str, second: str, *, value: str = "test_accuracy",
                           level: float = 0.95, model_column: str = "model") -> pd.DataFrame:
    """Epoch by epoch, the mean over seeds of ``first - second`` and its bootstrap interval.

    The band to draw when two models trained on the same subsets with the same seeds are
    compared seed by seed (see :func:`paired_curve_difference`): where it lies above
    zero, ``first`` is ahead beyond the seed-to-seed noise.

    Parameters
    ----------
    curves, first, second, value, level, model_column
        As in :func:`paired_curve_difference`.

    Returns
    -------
    pandas.DataFrame
        Columns ``epoch, mean, low, high, n`` (``n`` seeds), one row per recorded epoch.

    Examples
    --------
    >>> c = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "seed": [0, 1, 0, 1] * 2,
    ...                   "epoch": [1, 1, 2, 2] * 2,
    ...                   "test_accuracy": [0.5, 0.6, 0.8, 0.9, 0.4, 0.6, 0.6, 0.7]})
    >>> paired_difference_band(c, "a", "b")[["epoch", "mean", "low", "high"]].round(2).values.tolist()
    [[1.0, 0.05, 0.0, 0.1], [2.0, 0.2, 0.2, 0.2]]
    """
    difference = _paired_table(curves, first, second, value, model_column)
    rows = [(epoch, *mean_interval(row.to_numpy(), level), len(row)) for epoch, row in difference.iterrows()]
    return pd.DataFrame(rows, columns=["epoch", "mean", "low", "high", "n"])


def paired_curve_difference(curves: pd.DataFrame, first: str, second: str, *, value: str = "test_accuracy",
                            level: float = 0.95, model_column: str = "model") -> pd.Series:
    """Where the difference between two models' curves ends, and whether it is still moving.

    Both models are trained on the same subsets with the same seeds, so their curves are
    compared seed by seed: ``d_s(epoch) = first - second`` for seed ``s``. Two questions
    are asked of ``d``, each with a bootstrap interval over seeds (:func:`mean_interval`):

    * **end** -- the mean of ``d_s`` at the last recorded epoch: the two curves end apart
      beyond the seed-to-seed noise when this interval excludes zero;
    * **change** -- the trend of ``d_s`` over the second half of training (the recorded
      epochs after half the last one): each seed's least-squares slope times the length
      of that half. An interval that excludes zero means the difference was still
      moving when training stopped; one that includes zero means that what moved is
      within the noise, and training longer gives no sign of separating the curves.

    Parameters
    ----------
    curves : pandas.DataFrame
        One setting (e.g. one training-set size) of a learning-curves table: columns
        ``model_column``, ``seed``, ``epoch`` and ``value``, every seed recorded at the
        same epochs for both models.
    first, second : str
        The models compared (``first - second``).
    value : str
    level : float
    model_column : str

    Returns
    -------
    pandas.Series
        ``end, end_low, end_high, change, change_low, change_high, seeds`` and
        ``late_epochs`` (how many recorded epochs the trend is fitted to), as floats.

    Raises
    ------
    ValueError
        Missing columns or models, fewer than two seeds shared by both models, or fewer
        than two recorded epochs in the second half of training.

    Examples
    --------
    A difference that grows by 0.01 per epoch in every seed, so by 0.1 over the second
    half, and ends at 0.5:

    >>> rows = [(m, s, e, (0.5 if m == "a" else 0.3) + 0.01 * e * (m == "a") + 0.001 * s)
    ...         for m in "ab" for s in range(5) for e in (0, 10, 20, 30)]
    >>> c = pd.DataFrame(rows, columns=["model", "seed", "epoch", "test_accuracy"])
    >>> d = paired_curve_difference(c, "a", "b")
    >>> d[["end", "change"]].round(2).tolist(), bool(d["change_low"] > 0)
    ([0.5, 0.1], True)
    """
    difference = _paired_table(curves, first, second, value, model_column)
    epochs = difference.index.to_numpy(dtype=float)
    late = epochs > epochs.max() / 2
    if late.sum() < 2:
        raise ValueError(f"fewer than two recorded epochs in the second half of training: {epochs.tolist()}")
    span = epochs[late].max() - epochs[late].min()
    slopes = np.polyfit(epochs[late], difference.to_numpy()[late], 1)[0]
    end = mean_interval(difference.iloc[-1].to_numpy(), level)
    change = mean_interval(slopes * span, level)
    return pd.Series({"end": end[0], "end_low": end[1], "end_high": end[2], "change": change[0],
                      "change_low": change[1], "change_high": change[2], "seeds": difference.shape[1],
                      "late_epochs": int(late.sum())})
