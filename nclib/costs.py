"""What models and scores cost: size against performance, seconds, and how cost grows.

* :func:`pareto_front` -- the models no other model beats on both size and performance;
* :func:`synthetic_problem` and :func:`time_scores` -- seconds each registered score
  takes on synthetic problems of given sizes, and :func:`loglog_slope` -- the empirical
  exponent of that growth;
* :func:`transfer_seconds` -- measured seconds of the transfers the scores stand in for
  (:func:`cached_transfer_seconds`: measured once, then read from the cache).

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


def complexity_path(log_likelihood, parameters, names=None) -> pd.DataFrame:
    """Which model maximises ``log_likelihood - weight * log(parameters)``, for every weight >= 0.

    The pick is piecewise constant in the weight (the exchange rate between nats of
    likelihood and factors of e in size); this returns the exact intervals. Starting from
    the best model at weight 0, the pick moves to a smaller model at the weight where
    their penalised values tie, and never back to a larger one.

    Parameters
    ----------
    log_likelihood : array-like of shape (M,)
        Total log likelihood (nats) of each model, larger is better.
    parameters : array-like of shape (M,)
        Positive parameter counts.
    names : sequence of str, optional
        Model names (default ``0 .. M-1``).

    Returns
    -------
    pandas.DataFrame
        One row per interval: ``model, parameters, from_weight, to_weight`` (the last
        ``to_weight`` is infinite). Ties at weight 0 go to the smaller model.

    Examples
    --------
    >>> complexity_path([10.0, 8.0, 0.0], [1000, 100, 10], ["big", "mid", "small"])[
    ...     ["model", "from_weight"]].round(3).values.tolist()
    [['big', 0.0], ['mid', 0.869], ['small', 3.474]]
    """
    log_likelihood = np.asarray(log_likelihood, float)
    parameters = np.asarray(parameters, float)
    if log_likelihood.shape != parameters.shape or log_likelihood.ndim != 1 or len(parameters) == 0:
        raise ValueError(f"log_likelihood {log_likelihood.shape} and parameters {parameters.shape} "
                         "must be equal non-empty 1-D shapes")
    if (parameters <= 0).any() or not np.isfinite(log_likelihood).all():
        raise ValueError("parameters must be positive and log likelihoods finite")
    names = [str(k) for k in range(len(parameters))] if names is None else list(names)
    log_size = np.log(parameters)
    best = np.flatnonzero(log_likelihood == log_likelihood.max())
    current = int(best[np.argmin(log_size[best])])
    weight, rows = 0.0, []
    while True:
        smaller = np.flatnonzero(log_size < log_size[current])
        if len(smaller) == 0:
            rows.append((names[current], int(parameters[current]), weight, np.inf))
            break
        ties = (log_likelihood[current] - log_likelihood[smaller]) / (log_size[current] - log_size[smaller])
        ties = np.maximum(ties, weight)
        first = ties.min()
        candidates = smaller[ties == first]
        following = int(candidates[np.argmin(log_size[candidates])])
        rows.append((names[current], int(parameters[current]), weight, float(first)))
        current, weight = following, float(first)
    return pd.DataFrame(rows, columns=["model", "parameters", "from_weight", "to_weight"])


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
                     seed: int = 0, full: bool = True) -> pd.DataFrame:
    """Measured seconds of the head regime, and per-epoch seconds of fine-tuning, per model.

    * **Head** (timed whole, one run): the convex head
      (:func:`nclib.convex_head.convex_head_transfer`, the whole L2 grid) when
      ``config.head_solver == "convex"``, otherwise one seed of the Adam head
      (:func:`nclib.transfer.head_transfer_seeds`, ``config.head_epochs``), on the cached
      embeddings.
    * **Full fine-tuning** (every parameter; extrapolated): ``num_batches`` minibatches of
      Adam updates of the whole model and one evaluation batch are timed (after one warm-up
      batch), giving seconds per example; one epoch is the training split plus the
      validation pass. ``full_seconds`` is ``config.full_epochs`` such epochs plus the test
      pass -- an estimate, whichever regime the experiment actually runs.
    * **Top fine-tuning** (only when the experiment runs regime ``"top"``; extrapolated):
      the frozen trunk is timed on one evaluation batch (``trunk_seconds``: one pass over
      all three splits, done once per model and shared by the seeds) and ``num_batches``
      Adam steps of the last stage and a new head on trunk outputs give
      ``top_seconds_per_epoch``; multiply by the epochs each run took
      (``Results.convergence["epochs_run"]``).

    All timings are single-threaded (:func:`nclib.threads.single_thread`).

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
    full : bool
        Time full fine-tuning (default); ``False`` leaves its columns NaN (cheaper).

    Returns
    -------
    pandas.DataFrame
        Columns ``model, head_seconds, train_seconds_per_example, eval_seconds_per_example,
        full_seconds, full_seconds_per_epoch, trunk_seconds, top_seconds_per_epoch`` (one
        seed; multiply by the number of seeds for a whole protocol; NaN where not timed).

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
    from nclib.transfer import new_head

    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    num_classes = len(splits.train.classes)
    sizes = splits.sizes()
    top = config.full_regime and config.fine_tune == "top"
    rows = []
    with single_thread():
        for spec in config.zoo():
            head = _head_seconds(config, embeddings[spec.name], num_classes, seed)
            model = config.prepare_model(spec, cache).to(config.device)
            trunk_seconds = top_epoch = np.nan
            if top:
                trunk_seconds, top_epoch = _top_seconds(model, splits, config, num_batches, seed, torch)
            train_each = eval_each = full_seconds = full_epoch = np.nan
            if full:
                model.classifier = new_head(int(model.embedding_dim), num_classes, seed).to(config.device)
                train_each, eval_each = _step_seconds(model, splits, config, num_batches, nn, torch)
                full_epoch = sizes["train"] * train_each + sizes["val"] * eval_each
                full_seconds = config.full_epochs * full_epoch + sizes["test"] * eval_each
            rows.append((spec.name, head, train_each, eval_each, full_seconds, full_epoch, trunk_seconds,
                         top_epoch))
    return pd.DataFrame(rows, columns=["model", "head_seconds", "train_seconds_per_example",
                                       "eval_seconds_per_example", "full_seconds", "full_seconds_per_epoch",
                                       "trunk_seconds", "top_seconds_per_epoch"])


TIMING_FORMAT = 1
"""Version of :func:`transfer_seconds`'s measurement; it enters the keys of
:func:`cached_transfer_seconds` (bump it when the measurement changes)."""


def cached_transfer_seconds(config, embeddings: dict, splits=None, cache=None, num_batches: int = 3,
                            seed: int = 0) -> pd.DataFrame:
    """:func:`transfer_seconds`, measured once and stored in the cache.

    Timings depend on the machine; the book measures them once (on the machine that
    first builds it) and rereads them, keyed by the experiment's settings, a fingerprint
    of the target data, ``num_batches``, ``seed`` and the code that measures them.

    Returns
    -------
    pandas.DataFrame
        As :func:`transfer_seconds`.

    Examples
    --------
    >>> import dataclasses, tempfile
    >>> from nclib.cache import Cache
    >>> from nclib.experiments.embeddings import experiment_embeddings
    >>> from nclib.experiments.toy import toy_experiment, toy_zoo
    >>> config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[3:])
    >>> cache = Cache(tempfile.mkdtemp())
    >>> emb = experiment_embeddings(config, cache)
    >>> first = cached_transfer_seconds(config, emb, cache=cache, num_batches=1)
    >>> first.equals(cached_transfer_seconds(config, emb, cache=cache, num_batches=1))
    True
    """
    from nclib.cache import Cache, fingerprint

    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    data_id = fingerprint(*[array for name in ("train", "val", "test")
                            for array in (getattr(splits, name).inputs, getattr(splits, name).labels)])
    parts = {"settings": config.settings(), "data": data_id, "num_batches": num_batches, "seed": seed,
             "models": [spec.name for spec in config.zoo()], "format": TIMING_FORMAT}
    return cache.table("transfer_seconds", parts,
                       lambda: transfer_seconds(config, embeddings, splits=splits, cache=cache,
                                                num_batches=num_batches, seed=seed),
                       code=("nclib.convex_head", "nclib.logistic", "nclib.transfer", "nclib.train"))


def _head_seconds(config, parts, num_classes, seed) -> float:
    """Seconds of one head-regime run on cached embeddings (convex: the whole L2 grid)."""
    from nclib.convex_head import convex_head_transfer
    from nclib.transfer import head_transfer_seeds

    arrays = [parts[split][key] for split in ("train", "val", "test") for key in ("features", "labels")]
    start = time.perf_counter()
    if config.head_solver == "convex":
        convex_head_transfer(*arrays, num_classes=num_classes, metric=config.metric,
                             **({} if config.l2_grid is None else {"l2_grid": config.l2_grid}))
    else:
        head_transfer_seeds(*arrays, num_classes=num_classes, epochs=config.head_epochs, lr=config.lr,
                            batch_size=config.batch_size, seeds=[seed], metric=config.metric)
    return time.perf_counter() - start


def _top_seconds(model, splits, config, num_batches, seed, torch):
    """Seconds of the trunk pass over all splits, and of one epoch of top fine-tuning."""
    import copy

    from nclib.transfer import TopNetwork, new_head

    sizes = splits.sizes()
    inputs = torch.from_numpy(np.ascontiguousarray(splits.train.inputs, dtype=np.float32))
    labels = torch.from_numpy(np.asarray(splits.train.labels, dtype=np.int64))
    batch = min(config.batch_size, len(labels))
    evaluation = inputs[:max(batch, min(len(labels), 256))].to(config.device)
    model.eval()
    with torch.no_grad():
        model.trunk(evaluation[:batch])  # warm-up
        start = time.perf_counter()
        hidden = model.trunk(evaluation).float()
        trunk_each = (time.perf_counter() - start) / len(evaluation)
    top = copy.deepcopy(model.top)
    top.requires_grad_(True)
    network = TopNetwork(top, new_head(int(model.embedding_dim), len(splits.train.classes), seed))
    network = network.to(config.device)
    train_each, eval_each = _timed_steps(network, hidden, labels[:len(hidden)], batch, config, num_batches,
                                         torch)
    trunk_seconds = trunk_each * sum(sizes.values())
    return trunk_seconds, sizes["train"] * train_each + sizes["val"] * eval_each


def _timed_steps(network, inputs, labels, batch, config, num_batches, torch):
    """Seconds per example of an Adam step of ``network``, and of an evaluation pass.

    The steps are those of the training engine (:func:`nclib.train.fit`, timed by its
    :class:`nclib.train.Timing` callback): one warm-up step, then ``num_batches`` timed
    ones, on minibatches of ``batch`` examples in their order.
    """
    from nclib.train import Timing, fit

    timing = Timing(max_steps=num_batches + 1)
    fit(network, inputs, labels, epochs=num_batches + 1, lr=config.lr, batch_size=batch, shuffle=False,
        callbacks=[timing], desc="timing")
    train_each = timing.seconds_per_example(skip=1)  # the first step warms up
    network.eval()
    evaluation = inputs[:max(batch, min(len(labels), 256))].to(config.device)
    with torch.no_grad():
        network(evaluation)
        start = time.perf_counter()
        network(evaluation)
    return train_each, (time.perf_counter() - start) / len(evaluation)


def _step_seconds(model, splits, config, num_batches, nn, torch):
    """Seconds per example of an Adam step of the whole model, and of an evaluation pass."""
    inputs = torch.from_numpy(np.ascontiguousarray(splits.train.inputs, dtype=np.float32))
    labels = torch.from_numpy(np.asarray(splits.train.labels, dtype=np.int64))
    batch = min(config.batch_size, len(labels))
    model.requires_grad_(True)
    return _timed_steps(model, inputs, labels, batch, config, num_batches, torch)


__all__ = ["cached_transfer_seconds", "complexity_path", "loglog_slope", "pareto_front", "synthetic_problem", "time_scores", "transfer_seconds"]
