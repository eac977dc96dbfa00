"""Whether a score measured on the training data says something about unseen data.

* :func:`split_scores` -- the scores computed on the training and on held-out
  embeddings, at equal sample sizes;
* :func:`training_size_sweep` -- scores and head-regime transfer on smaller training
  sets, and :func:`sweep_picks` -- which model each score picks at each size.

They read the embeddings of :func:`nclib.experiments.embeddings.experiment_embeddings`
(``{model: {split: {"features", "source_probs", "labels"}}}``) and are used by the
chapter "The caveats, measured".
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
        As returned by :func:`nclib.experiments.embeddings.experiment_embeddings`.
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


__all__ = ["split_scores", "sweep_picks", "training_size_sweep"]
