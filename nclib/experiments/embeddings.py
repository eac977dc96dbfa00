"""Each model's embeddings of an experiment's target splits, read from the runner's cache.

A run's own :class:`~nclib.experiments.runner.Results` hold its embeddings and source
probabilities (``Results.embedding(model, split)``); :func:`experiment_embeddings` reads
them for a configuration without its run, with the runner's cache keys
(:func:`nclib.experiments.runner.feature_key_parts`, the one definition of that layout), so
after a run it reads files and builds no model.
"""

from __future__ import annotations

import numpy as np

from nclib.data.base import SPLIT_NAMES as SPLITS


def experiment_embeddings(config, cache=None, splits=None) -> dict:
    """Each model's cached embeddings of the target splits, as the runner stored them.

    The features are looked up with the cache keys of
    :func:`nclib.experiments.runner.run_experiment`
    (:func:`~nclib.experiments.runner.feature_key_parts`: experiment, profile, a
    fingerprint of the target splits, ``config.key_parts``, the model and the split), so after a run
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
    from nclib.cache import Cache
    from nclib.experiments.runner import _LazyModel, data_fingerprint, feature_key_parts
    from nclib.features import cached_extract

    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    data_id = data_fingerprint(splits)  # hashed once, not once per model
    embeddings = {}
    for spec in config.zoo():
        model = _LazyModel(config, spec, cache)  # prepared only on a miss, at most once
        embeddings[spec.name] = {}
        for split in SPLITS:
            part = getattr(splits, split)
            arrays = cached_extract(cache, feature_key_parts(config, spec, data_id, split), model.get, part.inputs,
                                    batch_size=config.feature_batch_size, desc=f"features {spec.name} {split}")
            embeddings[spec.name][split] = {**arrays, "labels": np.asarray(part.labels)}
    return embeddings


__all__ = ["experiment_embeddings"]
