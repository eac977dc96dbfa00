"""Each model's embeddings of an experiment's target splits, read from the runner's cache.

The analysis chapters need the embeddings the runner extracted (not only its tables);
:func:`experiment_embeddings` looks them up with the runner's cache keys, so after a
run it reads files and builds no model.
"""

from __future__ import annotations

import numpy as np

from nclib.data.base import SPLIT_NAMES as SPLITS


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


__all__ = ["experiment_embeddings"]
