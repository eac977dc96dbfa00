"""Building a zoo's models reproducibly and pre-training them on their source task, weights cached.

* :func:`build_model` -- ``spec.build()`` with a seeded initialisation that leaves the
  caller's random state alone;
* :func:`pretrained_model` -- a model trained on its source task (the quick profiles'
  zoos), its ``state_dict`` stored in a content-keyed cache;
* :func:`source_parts` -- the (train, val) pair of a source task.

The weights' cache key holds the pre-training settings and :data:`CODE`, the modules
whose source code the weights depend on; :data:`nclib.experiments.runner.CODE` files
them under ``"pretrained"`` with the runner's other kinds of entry.

Pre-training trains, so this module sits with the engine (it imports
:mod:`nclib.transfer`), not with the zoos it builds from.
"""

from __future__ import annotations

from typing import Callable, Mapping

CODE = ("nclib.models", "nclib.transfer", "nclib.train")
"""Modules whose source enters the key of pre-trained weights (:func:`nclib.cache.code_hash`)."""


def build_model(spec, seed: int = 0):
    """``spec.build()`` with its initialisation drawn from ``seed``, the caller's random state untouched.

    Construction runs inside :func:`torch.random.fork_rng`, which restores torch's CPU
    generator afterwards: the weights depend only on ``spec`` and ``seed``, and no
    random draw of the caller changes.

    Parameters
    ----------
    spec : nclib.models.ModelSpec
    seed : int

    Returns
    -------
    torch.nn.Module

    Examples
    --------
    >>> import torch
    >>> from nclib.experiments.toy import toy_zoo
    >>> state = torch.random.get_rng_state()
    >>> a, b = build_model(toy_zoo()[0], seed=1), build_model(toy_zoo()[0], seed=1)
    >>> bool((a.classifier.weight == b.classifier.weight).all()), bool((torch.random.get_rng_state() == state).all())
    (True, True)
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))  # the forked generator only: restored on leaving the block
        return spec.build()


def source_parts(source) -> tuple:
    """(train, val) of a source task given as ``Splits`` or as a pair of datasets.

    Parameters
    ----------
    source : nclib.data.base.Splits or tuple of two nclib.data.base.Dataset

    Returns
    -------
    tuple of two Dataset

    Raises
    ------
    ValueError
        Anything else.

    Examples
    --------
    >>> source_parts(("train", "val"))
    ('train', 'val')
    """
    if hasattr(source, "train") and hasattr(source, "val"):
        return source.train, source.val
    if isinstance(source, (tuple, list)) and len(source) == 2:
        return tuple(source)
    raise ValueError("load_source must return Splits or a (train, val) pair of datasets")


def pretrained_model(spec, cache, load_source: Callable, *, epochs: int, lr: float,
                     batch_size: int, seed: int = 0, key_parts: Mapping | None = None):
    """A model of the zoo pre-trained on its source task, with the weights cached.

    On a miss the model is built (:func:`build_model` with ``seed``), trained with
    :func:`nclib.transfer.train_classifier` on the source task's train split, checkpointed
    on its validation accuracy, and its ``state_dict`` stored; on a hit it is rebuilt and
    the stored weights loaded (``torch.load(weights_only=True)``). The source data are
    loaded only on a miss; they are identified by ``spec.source_task`` and ``key_parts``.

    Parameters
    ----------
    spec : nclib.models.ModelSpec
    cache : nclib.cache.Cache
    load_source : callable
        ``load_source() -> Splits`` (or a ``(train, val)`` pair) of the source task.
    epochs, lr, batch_size, seed : int, float, int, int
        Pre-training settings (all enter the key).
    key_parts : mapping, optional
        Anything else that changes the weights (e.g. the source data's size).

    Returns
    -------
    torch.nn.Module
        In eval mode.

    Examples
    --------
    >>> from functools import partial
    >>> from nclib.cache import Cache
    >>> from nclib.experiments.toy import toy_source, toy_zoo
    >>> model = pretrained_model(toy_zoo()[0], Cache(enabled=False), partial(toy_source, "gauss-a"),
    ...                          epochs=1, lr=0.01, batch_size=32)
    >>> model.training
    False
    """
    from nclib.transfer import train_classifier

    parts = {"model": spec.name, "family": spec.family, "source_task": spec.source_task, "epochs": epochs,
             "lr": lr, "batch_size": batch_size, "seed": seed, **dict(key_parts or {})}
    trained = {}

    def compute() -> dict:
        model = build_model(spec, seed)
        train, val = source_parts(load_source())
        result = train_classifier(model, train, val, epochs=epochs, lr=lr, batch_size=batch_size,
                                  seed=seed, metric="accuracy", desc=f"pre-train {spec.name}")
        trained["model"] = model
        return result.state

    state = cache.weights("pretrained", parts, compute, code=CODE)
    model = trained.get("model")
    if model is None:
        model = build_model(spec, seed)
        model.load_state_dict(state)
    return model.eval()


__all__ = ["CODE", "build_model", "pretrained_model", "source_parts"]
