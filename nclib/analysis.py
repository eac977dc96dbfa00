"""Analyses beyond the paper's tables: uncertainty, agreement, generalisation, size and cost.

The chapters "All scores", "The caveats, measured", "Towards an ideal measure" and
"What each score costs" are built from these functions. They read the tables of
:func:`nclib.experiments.runner.run_experiment` and the embeddings it cached, so they
never repeat an experiment:

* **access** — :func:`experiment_embeddings`: each model's train / val / test
  embeddings and source probabilities, read through the runner's cache keys;
* **uncertainty** (Agostinelli et al. 2022: small changes of the setup flip which score
  wins) — :func:`bootstrap_measures` (models resampled with replacement),
  :func:`seed_evaluation` (each transfer seed on its own), :func:`subsample_scores` and
  :func:`evaluate_by` (scores recomputed on random halves of the training data),
  :func:`winners`;
* **agreement** — :func:`oriented_scores`, :func:`score_agreement`, :func:`score_picks`;
* **generalisation** — :func:`split_scores` (scores on train vs held-out embeddings),
  :func:`training_size_sweep` (scores and head transfer on smaller training sets) and
  :func:`sweep_picks`;
* **beyond classification** — :func:`input_intensity`, :func:`ridge_transfer`,
  :func:`clustering_quality`;
* **size** — :func:`pareto_front`;
* **cost** — :func:`synthetic_problem`, :func:`time_scores`, :func:`loglog_slope`,
  :func:`transfer_seconds`, and the thread settings :func:`single_thread`, :func:`limit_threads`;
* **figure** — :func:`stability_plot`, the one-glance summary of the first chapter.

Every measure is oriented by the score's ``greater_is_better`` as in
:mod:`nclib.evaluate`: larger always means a better score.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager

import numpy as np
import pandas as pd
from scipy import stats

from nclib.evaluate import _direction, evaluate_run, evaluate_scores, mean_performance
from nclib.scores import REGISTRY, compute_scores

SPLITS = ("train", "val", "test")
SELECTION_MEASURES = ("weighted_tau", "pearson", "relative_top1")
"""The three measures of the "all scores" chapter (see :func:`nclib.evaluate.ranking_measures`)."""


# ----------------------------------------------------------------------------- access
def experiment_embeddings(config, cache=None, splits=None) -> dict:
    """Each model's cached embeddings of the target splits, as the runner stored them.

    The features are looked up with the cache keys of
    :func:`nclib.experiments.runner.run_experiment` (experiment, profile, a fingerprint
    of the target splits, ``config.key_parts``, the model and the split), so after a run
    this reads files and builds no model. On a miss the model is prepared
    (``config.prepare_model``) and the features extracted and stored, exactly as the
    runner would.

    Parameters
    ----------
    config : nclib.experiments.runner.ExperimentConfig
    cache : nclib.cache.Cache, optional
        Default: ``Cache()`` (the data folder's cache, the runner's default).
    splits : nclib.data.base.Splits, optional
        The target splits if already loaded (default: ``config.load_target()``).

    Returns
    -------
    dict
        ``{model: {split: {"features": (n, D), "source_probs": (n, Z), "labels": (n,)}}}``
        for splits ``train``, ``val`` and ``test``, models in zoo order.

    Examples
    --------
    >>> import dataclasses
    >>> from nclib.cache import Cache
    >>> from nclib.experiments.toy import toy_experiment, toy_zoo
    >>> config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[3:])  # one random MLP
    >>> embeddings = experiment_embeddings(config, cache=Cache(enabled=False))
    >>> list(embeddings), embeddings["mlp-random"]["train"]["features"].shape
    (['mlp-random'], (90, 16))
    """
    from nclib.cache import Cache, fingerprint
    from nclib.features import cached_extract

    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    data_id = fingerprint(*[array for name in SPLITS for array in
                            (getattr(splits, name).inputs, getattr(splits, name).labels)])
    base = {"experiment": config.name, "profile": config.profile, "data": data_id, "config": dict(config.key_parts)}
    embeddings = {}
    for spec in config.zoo():
        model_parts = {**base, "model": spec.name, "family": spec.family, "source_task": spec.source_task}
        prepared = {}

        def model(spec=spec, prepared=prepared):
            if "model" not in prepared:
                prepared["model"] = config.prepare_model(spec, cache).to(config.device)
            return prepared["model"]

        embeddings[spec.name] = {}
        for split in SPLITS:
            part = getattr(splits, split)
            arrays = cached_extract(cache, {**model_parts, "split": split}, model, part.inputs,
                                    batch_size=config.feature_batch_size, desc=f"features {spec.name} {split}")
            embeddings[spec.name][split] = {**arrays, "labels": np.asarray(part.labels)}
    return embeddings


# ----------------------------------------------------------------------------- uncertainty
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
        sign = 1.0 if _direction(score, greater_is_better) else -1.0
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

    Subset ``k`` keeps ``fraction`` of every class (:func:`nclib.data.base.stratified_split`
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
    from nclib.data.base import stratified_split

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


# ----------------------------------------------------------------------------- agreement
def oriented_scores(scores: pd.DataFrame, greater_is_better=None) -> pd.DataFrame:
    """Scores as a model x score table, negated where lower is better (larger = better).

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"] * 2, "score": ["nc", "nc", "logme", "logme"],
    ...                   "value": [0.2, 0.4, 1.0, 2.0]})
    >>> oriented_scores(s).loc["a"].to_dict()
    {'nc': -0.2, 'logme': 1.0}
    """
    wide = scores.pivot(index="model", columns="score", values="value")
    order = list(dict.fromkeys(scores["score"]))
    signs = pd.Series({s: 1.0 if _direction(s, greater_is_better) else -1.0 for s in order})
    return wide[order] * signs


def score_agreement(scores: pd.DataFrame, method: str = "kendall", greater_is_better=None) -> pd.DataFrame:
    """Rank correlation between every pair of scores across the models of one pool.

    Each score is oriented first, so 1 means two scores order the models identically
    and -1 that one reverses the other.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    method : {"kendall", "spearman"}

    Returns
    -------
    pandas.DataFrame
        Square, indexed by score on both axes.

    Examples
    --------
    >>> s = pd.DataFrame({"model": list("abc") * 2, "score": ["nc"] * 3 + ["logme"] * 3,
    ...                   "value": [0.1, 0.2, 0.3, 3.0, 2.0, 1.0]})
    >>> float(score_agreement(s).loc["nc", "logme"])
    1.0
    """
    if method not in ("kendall", "spearman"):
        raise ValueError(f"method must be 'kendall' or 'spearman', got {method!r}")
    return oriented_scores(scores, greater_is_better).corr(method=method)


def score_picks(scores: pd.DataFrame, greater_is_better=None) -> pd.Series:
    """The model each score rates best.

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"] * 2, "score": ["nc", "nc", "logme", "logme"],
    ...                   "value": [0.2, 0.4, 1.0, 2.0]})
    >>> score_picks(s).to_dict()
    {'nc': 'a', 'logme': 'b'}
    """
    return oriented_scores(scores, greater_is_better).idxmax(axis=0).rename("pick")


# ----------------------------------------------------------------------------- generalisation
def _stratified_rows(labels, size: int | None, random_state: int) -> np.ndarray:
    from nclib.scores.knn import stratified_subsample

    codes = pd.factorize(np.asarray(labels), sort=True)[0]
    return stratified_subsample(codes, size, random_state, min_per_class=2)


def split_scores(embeddings: dict, names, splits=SPLITS, size: int | None = None, random_state: int = 0,
                 options=None) -> pd.DataFrame:
    """Scores computed on the embeddings of each split (training and held-out data).

    Parameters
    ----------
    embeddings : dict
        As returned by :func:`experiment_embeddings`.
    names : list of str
        Registry scores.
    splits : sequence of str
    size : int, optional
        Subsample every split to about this many samples (class-stratified, at least two
        per class), so that a difference between splits is not a difference in size.
    random_state : int
    options : dict of str to dict, optional

    Returns
    -------
    pandas.DataFrame
        Columns ``split, model, score, value``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> part = lambda: {"features": rng.normal(size=(20, 2)), "source_probs": np.full((20, 2), 0.5),
    ...                 "labels": np.repeat([0, 1], 10)}
    >>> emb = {m: {s: part() for s in SPLITS} for m in ("a", "b")}
    >>> split_scores(emb, ["nc"], size=10).groupby("split").size().to_dict()
    {'test': 2, 'train': 2, 'val': 2}
    """
    tables = []
    for split in splits:
        labels = next(iter(embeddings.values()))[split]["labels"]
        rows = _stratified_rows(labels, size, random_state)
        features = {m: parts[split]["features"][rows] for m, parts in embeddings.items()}
        probs = {m: parts[split]["source_probs"][rows] for m, parts in embeddings.items()}
        table = compute_scores(features, labels[rows], probs, names, options)
        tables.append(table.assign(split=split))
    return pd.concat(tables, ignore_index=True)[["split", "model", "score", "value"]]


def training_size_sweep(embeddings: dict, sizes, names, *, metric: str, epochs: int, lr: float,
                        batch_size: int, seeds=(0,), updates: int | None = None, random_state: int = 0,
                        options=None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and head-regime transfer on random subsets of the training data of given sizes.

    For each size n the same class-stratified subsample of the training embeddings (at
    least two per class) is used by every model: the scores are computed on it, and a
    linear head is trained on it (:func:`nclib.transfer.head_transfer_seeds`, best epoch
    on the full validation split) and tested on the full test split. This is the head
    regime of the runner on less data; full fine-tuning is not repeated.

    Parameters
    ----------
    embeddings : dict
        As returned by :func:`experiment_embeddings`.
    sizes : sequence of int
        Training-set sizes (a size at least N uses all samples; a size whose subsample
        repeats an earlier one is skipped). The size recorded is the subsample's actual
        size, which can differ slightly from the request (class quotas are rounded).
    names : list of str
        Registry scores to compute at each size.
    metric : {"accuracy", "auroc"}
    epochs, lr, batch_size : int, float, int
        Head training settings.
    seeds : sequence of int
    updates : int, optional
        If given, each size trains for ``max(epochs, ceil(updates / batches per epoch))``
        epochs, so that small training sets still get about ``updates`` Adam steps.
    random_state : int
    options : dict of str to dict, optional

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``size, model, score, value``.
    transfer : pandas.DataFrame
        Columns ``size, model, regime, seed, metric, value`` (regime ``head``).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> part = lambda k: {"features": (rng.normal(size=(40, 2)) + k * labels[:, None]).astype(np.float32),
    ...                   "source_probs": np.full((40, 2), 0.5), "labels": labels}
    >>> emb = {"good": {s: part(3) for s in SPLITS}, "bad": {s: part(0) for s in SPLITS}}
    >>> scores, transfer = training_size_sweep(emb, [10, 40], ["nc"], metric="accuracy", epochs=3,
    ...                                        lr=0.05, batch_size=8)
    >>> sorted(transfer["size"].unique().tolist()), len(scores)
    ([10, 40], 4)
    """
    from nclib.transfer import head_transfer_seeds

    first = next(iter(embeddings.values()))
    train_labels = first["train"]["labels"]
    num_classes = int(max(first[s]["labels"].max() for s in SPLITS)) + 1
    score_tables, rows, done = [], [], set()
    for size in sizes:
        keep = _stratified_rows(train_labels, int(size), random_state)
        used = len(keep)
        if used in done:  # e.g. several sizes at least N
            continue
        done.add(used)
        features = {m: parts["train"]["features"][keep] for m, parts in embeddings.items()}
        probs = {m: parts["train"]["source_probs"][keep] for m, parts in embeddings.items()}
        score_tables.append(compute_scores(features, train_labels[keep], probs, names, options).assign(size=used))
        size_epochs = epochs if updates is None else max(epochs, math.ceil(updates / math.ceil(used / batch_size)))
        for model, parts in embeddings.items():
            results = head_transfer_seeds(
                features[model], train_labels[keep], parts["val"]["features"], parts["val"]["labels"],
                parts["test"]["features"], parts["test"]["labels"], num_classes=num_classes, epochs=size_epochs,
                lr=lr, batch_size=batch_size, seeds=list(seeds), metric=metric, desc=f"head {model} n={used}")
            rows += [(used, model, "head", seed, metric, r.test_metric) for seed, r in zip(seeds, results)]
    scores = pd.concat(score_tables, ignore_index=True)[["size", "model", "score", "value"]]
    transfer = pd.DataFrame(rows, columns=["size", "model", "regime", "seed", "metric", "value"])
    return scores, transfer


def sweep_picks(scores: pd.DataFrame, transfer: pd.DataFrame, greater_is_better=None) -> pd.DataFrame:
    """For each training size: each score's pick, the truly best model, and the pick's relative performance.

    Parameters
    ----------
    scores, transfer : pandas.DataFrame
        As returned by :func:`training_size_sweep`.

    Returns
    -------
    pandas.DataFrame
        Columns ``size, score, pick, best, relative_top1``.

    Examples
    --------
    >>> s = pd.DataFrame({"size": 10, "model": ["a", "b"], "score": "logme", "value": [1.0, 2.0]})
    >>> t = pd.DataFrame({"size": 10, "model": ["a", "b"], "regime": "head", "seed": 0,
    ...                   "metric": "accuracy", "value": [0.8, 0.4]})
    >>> sweep_picks(s, t)[["pick", "best", "relative_top1"]].values.tolist()
    [['b', 'a', 0.5]]
    """
    rows = []
    for size, group in scores.groupby("size", sort=True):
        performance = mean_performance(transfer[transfer["size"] == size]).set_index("model")["value"]
        best = performance.idxmax()
        for score, pick in score_picks(group, greater_is_better).items():
            rows.append((size, score, pick, best, performance[pick] / performance[best]))
    return pd.DataFrame(rows, columns=["size", "score", "pick", "best", "relative_top1"])


# ----------------------------------------------------------------------------- other tasks
def input_intensity(inputs) -> np.ndarray:
    """Mean value of each input: brightness (ink) of an image, mean log energy of a log-mel clip.

    Parameters
    ----------
    inputs : ndarray of shape (N, ...)

    Returns
    -------
    ndarray of shape (N,), float64

    Examples
    --------
    >>> input_intensity(np.arange(8.0).reshape(2, 1, 2, 2)).tolist()
    [1.5, 5.5]
    """
    inputs = np.asarray(inputs)
    if inputs.ndim < 2 or len(inputs) == 0:
        raise ValueError(f"inputs must have shape (N, ...) with N > 0, got {inputs.shape}")
    return inputs.reshape(len(inputs), -1).mean(axis=1, dtype=np.float64)


def ridge_transfer(train_features, train_targets, val_features, val_targets, test_features, test_targets,
                   alphas=tuple(10.0 ** np.arange(-3, 4))) -> float:
    """Test R^2 of a ridge regression head, its penalty chosen on validation data.

    The regression counterpart of the head regime: standardised features (training
    mean and deviation), one ridge fit per penalty, the penalty with the best
    validation R^2 kept, its test R^2 returned.

    Parameters
    ----------
    train_features, val_features, test_features : array-like of shape (n, D)
    train_targets, val_targets, test_targets : array-like of shape (n,)
    alphas : sequence of float

    Returns
    -------
    float
        Coefficient of determination on the test split (1 is perfect, 0 predicts the mean).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(90, 3)); y = x @ [1.0, 2.0, 0.0]
    >>> round(ridge_transfer(x[:50], y[:50], x[50:70], y[50:70], x[70:], y[70:]), 3)
    1.0
    """
    from sklearn.linear_model import Ridge
    from sklearn.metrics import r2_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    best_fit, best_r2 = None, -np.inf
    for alpha in alphas:
        fit = make_pipeline(StandardScaler(), Ridge(alpha=alpha, solver="svd")).fit(train_features, train_targets)
        r2 = r2_score(val_targets, fit.predict(val_features))
        if r2 > best_r2:
            best_fit, best_r2 = fit, r2
    return float(r2_score(test_targets, best_fit.predict(test_features)))


def clustering_quality(features, labels, num_clusters: int | None = None, random_state: int = 0) -> float:
    """Adjusted Rand index between k-means clusters of the embeddings and the classes.

    A clustering "transfer": no labels are used to form the clusters (k-means with
    ``n_init=10`` on standardised embeddings); the labels only judge them.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    num_clusters : int, optional
        Default: the number of classes.
    random_state : int

    Returns
    -------
    float
        1 for clusters equal to the classes, about 0 for chance.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> clustering_quality(rng.normal(size=(60, 2)) + 10 * np.eye(3, 2)[labels], labels)
    1.0
    """
    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score
    from sklearn.preprocessing import StandardScaler

    labels = np.asarray(labels)
    num_clusters = len(np.unique(labels)) if num_clusters is None else num_clusters
    points = StandardScaler().fit_transform(np.asarray(features, dtype=np.float64))
    clusters = KMeans(n_clusters=num_clusters, n_init=10, random_state=random_state).fit_predict(points)
    return float(adjusted_rand_score(labels, clusters))


# ----------------------------------------------------------------------------- size
def pareto_front(sizes, performance) -> np.ndarray:
    """Which models no other model beats on both size and performance.

    A model is dominated when another has at most its size and at least its performance,
    one of them strictly.

    Parameters
    ----------
    sizes : array-like of shape (M,)
        E.g. parameter counts (smaller is better).
    performance : array-like of shape (M,)
        Larger is better.

    Returns
    -------
    ndarray of shape (M,), bool

    Examples
    --------
    >>> pareto_front([10, 20, 30, 15], [0.5, 0.7, 0.6, 0.4]).tolist()
    [True, True, False, False]
    """
    sizes, performance = np.asarray(sizes, float), np.asarray(performance, float)
    if sizes.shape != performance.shape or sizes.ndim != 1:
        raise ValueError(f"sizes {sizes.shape} and performance {performance.shape} must be equal 1-D shapes")
    no_larger = sizes[None, :] <= sizes[:, None]
    no_worse = performance[None, :] >= performance[:, None]
    strictly = (sizes[None, :] < sizes[:, None]) | (performance[None, :] > performance[:, None])
    return ~np.any(no_larger & no_worse & strictly, axis=1)


# ----------------------------------------------------------------------------- cost
@contextmanager
def single_thread():
    """Run the enclosed block with one BLAS / OpenMP thread and one torch thread.

    Timings on a shared machine are steadier and comparable across scores this way;
    the previous settings are restored on exit.

    Examples
    --------
    >>> with single_thread():
    ...     pass
    """
    import torch
    from threadpoolctl import threadpool_limits

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with threadpool_limits(limits=1):
            yield
    finally:
        torch.set_num_threads(previous)


def limit_threads(num_threads: int = 1):
    """Limit the BLAS / OpenMP thread pools and torch's intra-op pool for the rest of the process.

    The analyses run many small matrix products (N of a few thousand, D of a few
    hundred), for which one thread is as fast as several; and on a machine whose cores
    are busy, multi-threaded OpenBLAS can slow such products down by orders of magnitude
    (threads wait for each other while descheduled). The book's analysis chapters call
    this once, explicitly; nothing in nclib calls it on import. It sets the thread pools
    of the libraries already loaded and the ``OMP_NUM_THREADS``, ``OPENBLAS_NUM_THREADS``
    and ``MKL_NUM_THREADS`` variables that libraries loaded later read.

    Parameters
    ----------
    num_threads : int

    Returns
    -------
    threadpoolctl.ThreadpoolController limits object
        Call ``restore_original_limits()`` on it to undo the limits of the libraries that
        were loaded (torch's setting and the environment are not restored).

    Examples
    --------
    >>> import os, torch
    >>> saved = torch.get_num_threads(), dict(os.environ)
    >>> limiter = limit_threads(1)
    >>> torch.get_num_threads(), os.environ["OMP_NUM_THREADS"]
    (1, '1')
    >>> limiter.restore_original_limits(); torch.set_num_threads(saved[0])
    >>> os.environ.clear(); os.environ.update(saved[1])
    """
    import os

    import torch
    from threadpoolctl import threadpool_limits

    if not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
        raise ValueError(f"num_threads must be a positive integer, got {num_threads!r}")
    for variable in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(int(num_threads))  # for libraries loaded later (scikit-learn's OpenMP)
    torch.set_num_threads(int(num_threads))
    return threadpool_limits(limits=int(num_threads))  # for the libraries already loaded


def synthetic_problem(num_samples: int, dim: int, num_classes: int, num_source_classes: int = 100,
                      random_state: int = 0):
    """Synthetic embeddings, labels and source probabilities for timing the scores.

    Features are standard normal with the first ``num_classes`` directions shifted by 2
    towards the class; the source softmax favours one source class per target class.

    Returns
    -------
    features : ndarray of shape (N, D)
    labels : ndarray of shape (N,)
        Balanced classes ``k % C``.
    source_probs : ndarray of shape (N, Z)

    Examples
    --------
    >>> f, y, p = synthetic_problem(20, 5, 2, num_source_classes=4)
    >>> f.shape, np.bincount(y).tolist(), bool(np.allclose(p.sum(axis=1), 1))
    ((20, 5), [10, 10], True)
    """
    if min(num_samples, dim, num_classes, num_source_classes) < 1 or num_classes < 2:
        raise ValueError("need positive sizes and at least two classes")
    rng = np.random.default_rng(random_state)
    labels = np.arange(num_samples) % num_classes
    features = rng.normal(size=(num_samples, dim))
    features[:, :min(num_classes, dim)] += 2.0 * np.eye(num_classes, min(num_classes, dim))[labels]
    logits = rng.normal(size=(num_samples, num_source_classes))
    logits[np.arange(num_samples), labels % num_source_classes] += 3.0
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return features, labels, probs / probs.sum(axis=1, keepdims=True)


def time_scores(names, grid, *, repeat: int = 1, num_source_classes: int = 100, options=None,
                random_state: int = 0) -> pd.DataFrame:
    """Seconds each registry score takes on synthetic problems of the given sizes, single-threaded.

    Parameters
    ----------
    names : list of str
    grid : iterable of (N, D, C) tuples
    repeat : int
        Best of ``repeat`` runs.
    num_source_classes : int
        Z of the source probabilities (LEEP-like scores).
    options : dict of str to dict, optional
        Keyword options per score (default: the registry's).
    random_state : int

    Returns
    -------
    pandas.DataFrame
        Columns ``score, num_samples, dim, num_classes, seconds``. Pool-level scores are
        timed on a pool of one model.

    Examples
    --------
    >>> table = time_scores(["nc"], [(50, 4, 2), (100, 4, 2)])
    >>> table.columns.tolist(), len(table)
    (['score', 'num_samples', 'dim', 'num_classes', 'seconds'], 2)
    """
    options = dict(options or {})
    rows = []
    with single_thread():
        for num_samples, dim, num_classes in grid:
            features, labels, probs = synthetic_problem(num_samples, dim, num_classes, num_source_classes,
                                                        random_state)
            for name in names:
                info = REGISTRY[name]
                kwargs = {**info.options, **options.get(name, {})}
                inputs = probs if info.needs == "source_probs" else features
                inputs = [inputs] if info.pool_level else inputs
                best = np.inf
                for _ in range(repeat):
                    start = time.perf_counter()
                    info.function(inputs, labels, **kwargs)
                    best = min(best, time.perf_counter() - start)
                rows.append((name, num_samples, dim, num_classes, best))
    return pd.DataFrame(rows, columns=["score", "num_samples", "dim", "num_classes", "seconds"])


def loglog_slope(x, seconds) -> float:
    """Least-squares slope of log(seconds) against log(x): the empirical exponent of the cost.

    Examples
    --------
    >>> round(loglog_slope([1, 2, 4, 8], [3, 12, 48, 192]), 6)
    2.0
    """
    x, seconds = np.asarray(x, float), np.asarray(seconds, float)
    if x.shape != seconds.shape or len(x) < 2 or (x <= 0).any() or (seconds <= 0).any():
        raise ValueError("need at least two positive (x, seconds) pairs of equal length")
    return float(np.polyfit(np.log(x), np.log(seconds), 1)[0])


def transfer_seconds(config, embeddings: dict, splits=None, cache=None, num_batches: int = 3,
                     seed: int = 0) -> pd.DataFrame:
    """Measured seconds of one head-regime run and one full fine-tuning run per model.

    The head run is timed whole (:func:`nclib.transfer.head_transfer_seeds`, one seed,
    ``config.head_epochs``, on the cached embeddings). Full fine-tuning is timed on
    ``num_batches`` minibatches of Adam updates of the whole model and one evaluation
    batch, then extrapolated to ``config.full_epochs`` epochs over the training split
    plus the per-epoch validation pass and the final test pass; the batches warm up
    first. All timings are single-threaded (:func:`single_thread`).

    Parameters
    ----------
    config : nclib.experiments.runner.ExperimentConfig
    embeddings : dict
        As returned by :func:`experiment_embeddings`.
    splits : nclib.data.base.Splits, optional
        Default: ``config.load_target()``.
    cache : nclib.cache.Cache, optional
        Where ``config.prepare_model`` finds the pre-trained weights.
    num_batches : int
    seed : int

    Returns
    -------
    pandas.DataFrame
        Columns ``model, head_seconds, train_seconds_per_example, eval_seconds_per_example,
        full_seconds`` (one seed; multiply by the number of seeds for a whole protocol).

    Examples
    --------
    >>> import dataclasses
    >>> from nclib.cache import Cache
    >>> from nclib.experiments.toy import toy_experiment, toy_zoo
    >>> config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[3:])  # one random MLP
    >>> cache = Cache(enabled=False)
    >>> emb = experiment_embeddings(config, cache)
    >>> transfer_seconds(config, emb, cache=cache, num_batches=1).columns.tolist()[:2]
    ['model', 'head_seconds']
    """
    import torch
    from torch import nn

    from nclib.cache import Cache
    from nclib.transfer import head_transfer_seeds, new_head

    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    num_classes = len(splits.train.classes)
    rows = []
    with single_thread():
        for spec in config.zoo():
            parts = embeddings[spec.name]
            start = time.perf_counter()
            head_transfer_seeds(parts["train"]["features"], parts["train"]["labels"], parts["val"]["features"],
                                parts["val"]["labels"], parts["test"]["features"], parts["test"]["labels"],
                                num_classes=num_classes, epochs=config.head_epochs, lr=config.lr,
                                batch_size=config.batch_size, seeds=[seed], metric=config.metric)
            head = time.perf_counter() - start
            model = config.prepare_model(spec, cache).to(config.device)
            model.classifier = new_head(int(model.embedding_dim), num_classes, seed).to(config.device)
            train_each, eval_each = _step_seconds(model, splits, config, num_batches, nn, torch)
            sizes = splits.sizes()
            epoch = sizes["train"] * train_each + sizes["val"] * eval_each
            full = config.full_epochs * epoch + sizes["test"] * eval_each
            rows.append((spec.name, head, train_each, eval_each, full))
    return pd.DataFrame(rows, columns=["model", "head_seconds", "train_seconds_per_example",
                                       "eval_seconds_per_example", "full_seconds"])


def _step_seconds(model, splits, config, num_batches, nn, torch):
    """Seconds per example of an Adam step of the whole model, and of an evaluation pass."""
    inputs = torch.from_numpy(np.ascontiguousarray(splits.train.inputs, dtype=np.float32))
    labels = torch.from_numpy(np.asarray(splits.train.labels, dtype=np.int64))
    batch = min(config.batch_size, len(labels))
    optimizer = torch.optim.Adam(model.parameters(), lr=config.lr)
    loss_function = nn.CrossEntropyLoss()
    model.train()

    def step(k):
        first = (k * batch) % (len(labels) - batch + 1)
        rows = slice(first, first + batch)
        optimizer.zero_grad(set_to_none=True)
        loss_function(model(inputs[rows].to(config.device)), labels[rows].to(config.device)).backward()
        optimizer.step()

    step(0)  # warm-up
    start = time.perf_counter()
    for k in range(1, num_batches + 1):
        step(k)
    train_each = (time.perf_counter() - start) / (num_batches * batch)
    model.eval()
    evaluation = inputs[:max(batch, min(len(labels), 256))]
    with torch.no_grad():
        model(evaluation.to(config.device))
        start = time.perf_counter()
        model(evaluation.to(config.device))
    return train_each, (time.perf_counter() - start) / len(evaluation)


# ----------------------------------------------------------------------------- figure
def stability_plot(summary: pd.DataFrame, spread: pd.DataFrame | None = None, *, xlabel: str = "weighted τ",
                   order=None):
    """One row per score, one panel per setup: point, bootstrap interval and spread.

    Parameters
    ----------
    summary : pandas.DataFrame
        Columns ``panel, score, value, low, high`` (e.g. from :func:`bootstrap_measures`,
        one panel per experiment and regime).
    spread : pandas.DataFrame, optional
        Columns ``panel, score, source, value``: extra values drawn as small markers, one
        marker style per ``source`` (e.g. ``seed``, ``subset``).
    xlabel : str
    order : list of str, optional
        Scores from top to bottom (default: by mean value across panels, best first).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> s = pd.DataFrame({"panel": "a", "score": ["nc", "logme"], "value": [0.5, 0.2],
    ...                   "low": [0.1, -0.3], "high": [0.8, 0.6]})
    >>> len(stability_plot(s).axes)
    1
    """
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(summary["panel"]))
    if order is None:
        order = summary.groupby("score")["value"].mean().sort_values(ascending=False).index.tolist()
    positions = {score: k for k, score in enumerate(order)}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.9 * len(panels) + 1.2, 0.32 * len(order) + 1.4),
                             sharey=True, squeeze=False)
    markers = {"seed": ("|", "tab:orange"), "subset": ("x", "tab:green")}
    for ax, panel in zip(axes[0], panels):
        part = summary[summary["panel"] == panel]
        y = part["score"].map(positions).to_numpy()
        ax.hlines(y, part["low"], part["high"], color="tab:blue", linewidth=3, alpha=0.45, label="bootstrap interval")
        ax.plot(part["value"], y, "o", color="black", markersize=4, label="all models, seed mean")
        if spread is not None:
            extra = spread[spread["panel"] == panel]
            for source, group in extra.groupby("source", sort=False):
                marker, colour = markers.get(source, (".", "tab:gray"))
                jitter = 0.18 if source == "subset" else -0.18
                ax.plot(group["value"], group["score"].map(positions) + jitter, marker, color=colour,
                        markersize=5, alpha=0.8, linestyle="none", label=f"per {source}")
        ax.axvline(0, color="gray", linewidth=0.8)
        ax.set_title(str(panel), fontsize=10)
        ax.set_xlabel(xlabel)
    axes[0][0].set_yticks(range(len(order)))
    axes[0][0].set_yticklabels(order)
    axes[0][0].invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig


__all__ = ["SELECTION_MEASURES", "bootstrap_measures", "clustering_quality", "evaluate_by",
           "experiment_embeddings", "input_intensity", "limit_threads", "loglog_slope", "oriented_scores",
           "pareto_front", "ridge_transfer", "score_agreement", "score_picks", "seed_evaluation",
           "single_thread", "split_scores", "stability_plot", "subsample_scores", "sweep_picks",
           "synthetic_problem", "time_scores", "training_size_sweep", "transfer_seconds", "winners"]
