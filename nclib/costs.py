"""What models and scores cost: size against performance, seconds, and how cost grows.

* :func:`pareto_front` -- the models no other model beats on both size and performance;
* :func:`synthetic_problem` and :func:`time_scores` -- seconds each registered score
  takes on synthetic problems of given sizes, and :func:`loglog_slope` -- the empirical
  exponent of that growth;
* :func:`transfer_seconds` -- measured seconds of the transfers the scores stand in for.

All timings run single-threaded (:func:`nclib.threads.single_thread`), so that they are
steadier on a shared machine and comparable across scores. Used by the chapters "What
each score costs", "The caveats, measured" and "Towards an ideal measure".
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from nclib.scores import REGISTRY
from nclib.threads import single_thread


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
    first. All timings are single-threaded (:func:`nclib.threads.single_thread`).

    Parameters
    ----------
    config : nclib.experiments.runner.ExperimentConfig
    embeddings : dict
        As returned by :func:`nclib.experiments.embeddings.experiment_embeddings`.
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
    >>> from nclib.experiments.embeddings import experiment_embeddings
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


__all__ = ["loglog_slope", "pareto_front", "synthetic_problem", "time_scores", "transfer_seconds"]
