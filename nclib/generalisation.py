"""Whether a score measured on the training data says something about unseen data.

* :func:`split_scores` -- the scores computed on the training and on held-out
  embeddings, at equal sample sizes;
* :func:`training_size_sweep` -- scores and head-regime transfer on smaller training
  sets, and :func:`sweep_picks` -- which model each score picks at each size.

They read the embeddings of :func:`nclib.experiments.embeddings.experiment_embeddings`
(``{model: {split: {"features", "source_probs", "labels"}}}``). The chapter "(c) Training
data is not generalisation" uses :func:`split_scores`; its study of overfitting under
fine-tuning on smaller training sets is ``nclib.overfitting`` and
``nclib.experiments.overfitting_study`` (the head-regime sweep here stays available for
frozen embeddings).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from nclib.agreement import score_picks
from nclib.data.base import SPLIT_NAMES as SPLITS
from nclib.evaluate import mean_performance
from nclib.scores import compute_scores


def _stratified_rows(labels, size: int | None, random_state: int) -> np.ndarray:
    """Rows of a class-stratified subsample of about ``size`` (at least two per class; all if None)."""
    from nclib.scores.knn import stratified_subsample

    codes = pd.factorize(np.asarray(labels), sort=True)[0]
    return stratified_subsample(codes, size, random_state, min_per_class=2)


def split_scores(embeddings: dict, names, splits=SPLITS, size: int | None = None, random_state: int = 0,
                 options=None) -> pd.DataFrame:
    """Scores computed on the embeddings of each split (training and held-out data).

    Parameters
    ----------
    embeddings : dict
        As returned by :func:`nclib.experiments.embeddings.experiment_embeddings`.
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


def training_size_sweep(embeddings: dict, sizes, names, *, metric: str, epochs: int | None = None,
                        lr: float | None = None, batch_size: int | None = None, seeds=(0,),
                        updates: int | None = None, random_state: int = 0, options=None,
                        solver: str = "adam", subsets: int = 1, l2_grid=None,
                        errors: str = "raise", gtol: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Scores and head-regime transfer on random subsets of the training data of given sizes.

    For each size n and each of ``subsets`` random draws, the same class-stratified
    subsample of the training embeddings (at least two per class) is used by every model:
    the scores are computed on it, and a linear head is trained on it and tested on the
    full test split (its model selection on the full validation split). This is the head
    regime of the runner on less data; fine-tuning is not repeated.

    Parameters
    ----------
    embeddings : dict
        As returned by :func:`nclib.experiments.embeddings.experiment_embeddings`.
    sizes : sequence of int
        Training-set sizes (a size at least N uses all samples; a size whose subsample
        repeats an earlier one is skipped). The size recorded is the subsample's actual
        size, which can differ slightly from the request (class quotas are rounded).
    names : list of str
        Registry scores to compute at each size.
    metric : {"accuracy", "auroc"}
    epochs, lr, batch_size : int, float, int
        Adam head settings (``solver="adam"`` only, where they are required).
    seeds : sequence of int
        Adam seeds (``solver="adam"``); the convex head has no seed and records seed 0.
    updates : int, optional
        Adam only: each size trains for ``max(epochs, ceil(updates / batches per epoch))``
        epochs, so that small training sets still get about ``updates`` Adam steps.
    random_state : int
        Subset ``k`` of every size is drawn with ``random_state + k``.
    options : dict of str to dict, optional
    solver : {"adam", "convex"}
        ``"adam"``: :func:`nclib.transfer.head_transfer_seeds` (the paper's protocol, best
        epoch on validation); ``"convex"``: :func:`nclib.convex_head.convex_head_transfer`,
        L2-penalised logistic regression solved to convergence, its L2 strength chosen on
        validation -- deterministic, so the only randomness left is the subset drawn.
    subsets : int
        Random subsets per size (at least 1). A subset that contains every training sample
        is drawn once only, whatever ``subsets`` says.
    l2_grid : sequence of float, optional
        ``solver="convex"``: L2 strengths to try (default
        :data:`nclib.convex_head.DEFAULT_L2_GRID`).
    errors : {"raise", "skip"}
        What to do when a score refuses a subset with a ``ValueError`` (e.g. LogME when
        the labels lie exactly in the span of low-rank embeddings of a few samples):
        raise, or leave that score out of that subset (no rows) and go on.
    gtol : float, optional
        ``solver="convex"``: convergence tolerance of every fit (default
        :data:`nclib.logistic.GTOL`, 1e-8); a looser one (e.g. 1e-5) is several times
        faster and still deterministic.

    Returns
    -------
    scores : pandas.DataFrame
        Columns ``size, model, score, value, subset``.
    transfer : pandas.DataFrame
        Columns ``size, model, regime, seed, metric, value, subset`` (regime ``head``).

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
    >>> scores, transfer = training_size_sweep(emb, [10, 40], ["nc"], metric="accuracy",
    ...                                        solver="convex", subsets=3)
    >>> transfer.groupby("size")["subset"].nunique().to_dict()
    {10: 3, 40: 1}
    """
    if solver not in ("adam", "convex"):
        raise ValueError(f"solver must be 'adam' or 'convex', got {solver!r}")
    if solver == "adam" and None in (epochs, lr, batch_size):
        raise ValueError("solver='adam' needs epochs, lr and batch_size")
    if errors not in ("raise", "skip"):
        raise ValueError(f"errors must be 'raise' or 'skip', got {errors!r}")
    if int(subsets) < 1:
        raise ValueError(f"subsets must be at least 1, got {subsets!r}")
    first = next(iter(embeddings.values()))
    train_labels = first["train"]["labels"]
    num_classes = int(max(first[s]["labels"].max() for s in SPLITS)) + 1
    score_tables, rows, done = [], [], set()
    for size in sizes:
        for subset in range(int(subsets)):
            keep = _stratified_rows(train_labels, int(size), random_state + subset)
            used = len(keep)
            if (used, subset) in done or (used == len(train_labels) and subset > 0):
                continue  # e.g. several sizes at least N, or another draw of the whole set
            done.add((used, subset))
            features = {m: parts["train"]["features"][keep] for m, parts in embeddings.items()}
            probs = {m: parts["train"]["source_probs"][keep] for m, parts in embeddings.items()}
            table = _subset_scores(features, train_labels[keep], probs, names, options, errors)
            score_tables.append(table.assign(size=used, subset=subset))
            for model, parts in embeddings.items():
                heads = _sweep_heads(solver, features[model], train_labels[keep], parts, num_classes, metric,
                                     epochs, lr, batch_size, seeds, updates, l2_grid, gtol,
                                     f"head {model} n={used}")
                rows += [(used, model, "head", seed, metric, value, subset) for seed, value in heads]
    scores = pd.concat(score_tables, ignore_index=True)[["size", "model", "score", "value", "subset"]]
    transfer = pd.DataFrame(rows, columns=["size", "model", "regime", "seed", "metric", "value", "subset"])
    return scores, transfer


def _subset_scores(features, labels, probs, names, options, errors) -> pd.DataFrame:
    """:func:`compute_scores` on one subset; with ``errors="skip"`` a refusing score is left out."""
    if errors == "raise":
        return compute_scores(features, labels, probs, names, options)
    tables = []
    for name in names:
        try:
            tables.append(compute_scores(features, labels, probs, [name], options))
        except ValueError:
            continue
    columns = ["model", "score", "value", "seconds"]
    return pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=columns)


def _sweep_heads(solver, train_features, train_labels, parts, num_classes, metric, epochs, lr, batch_size,
                 seeds, updates, l2_grid, gtol, desc) -> list:
    """``[(seed, test metric)]`` of the head regime on one training subset."""
    held_out = (parts["val"]["features"], parts["val"]["labels"], parts["test"]["features"],
                parts["test"]["labels"])
    if solver == "convex":
        from nclib.convex_head import convex_head_transfer
        from nclib.logistic import GTOL

        result = convex_head_transfer(train_features, train_labels, *held_out, num_classes=num_classes,
                                      metric=metric, l2_grid=l2_grid, gtol=GTOL if gtol is None else gtol)
        return [(0, float(result.test_metric))]
    from nclib.transfer import head_transfer_seeds

    used = len(train_labels)
    size_epochs = epochs if updates is None else max(epochs, math.ceil(updates / math.ceil(used / batch_size)))
    results = head_transfer_seeds(train_features, train_labels, *held_out, num_classes=num_classes,
                                  epochs=size_epochs, lr=lr, batch_size=batch_size, seeds=list(seeds),
                                  metric=metric, desc=desc)
    return [(seed, r.test_metric) for seed, r in zip(seeds, results)]


def sweep_picks(scores: pd.DataFrame, transfer: pd.DataFrame, greater_is_better=None) -> pd.DataFrame:
    """For each training size: each score's pick, the truly best model, and the pick's relative performance.

    Parameters
    ----------
    scores, transfer : pandas.DataFrame
        As returned by :func:`training_size_sweep`.

    Returns
    -------
    pandas.DataFrame
        Columns ``size, score, pick, best, relative_top1``, and ``subset`` (after ``size``)
        when the sweep drew several subsets: one row per size, subset and score.

    Examples
    --------
    >>> s = pd.DataFrame({"size": 10, "model": ["a", "b"], "score": "logme", "value": [1.0, 2.0]})
    >>> t = pd.DataFrame({"size": 10, "model": ["a", "b"], "regime": "head", "seed": 0,
    ...                   "metric": "accuracy", "value": [0.8, 0.4]})
    >>> sweep_picks(s, t)[["pick", "best", "relative_top1"]].values.tolist()
    [['b', 'a', 0.5]]
    """
    if "subset" not in scores.columns or "subset" not in transfer.columns:
        scores, transfer = scores.assign(subset=0), transfer.assign(subset=0)
    rows = []
    for (size, subset), group in scores.groupby(["size", "subset"], sort=True):
        chosen = transfer[(transfer["size"] == size) & (transfer["subset"] == subset)]
        performance = mean_performance(chosen).set_index("model")["value"]
        best = performance.idxmax()
        for score, pick in score_picks(group, greater_is_better).items():
            rows.append((size, subset, score, pick, best, performance[pick] / performance[best]))
    picks = pd.DataFrame(rows, columns=["size", "subset", "score", "pick", "best", "relative_top1"])
    return picks if picks["subset"].nunique() > 1 else picks.drop(columns="subset")


__all__ = ["split_scores", "sweep_picks", "training_size_sweep"]
