"""One runner for every experiment: configuration in, five tidy tables out.

An experiment is an :class:`ExperimentConfig` — data, zoo, how each model gets its
pre-trained weights, and the profile's settings — and :func:`run_experiment` does the
rest, identically for the image and the audio experiment::

    target splits ─┐
    zoo ─ prepare_model ─ features (train/val/test embeddings + source softmax, cached)
                           ├─ scores: every chosen REGISTRY score on the train embeddings
                           ├─ transfer: head regime on cached embeddings (Adam per
                           │            seed, or the convex head solved once), full
                           │            fine-tuning per seed (or "top": the last stage +
                           │            head on cached trunk outputs), best checkpoint on
                           │            validation, convergence guard
                           └─ evaluation: nclib.evaluate.evaluate_run(scores, transfer)

Every expensive result (pre-trained weights, features, trained heads, transfer outcomes,
scores) is stored with :class:`nclib.cache.Cache`, keyed by the experiment, the model,
a fingerprint of the target data, the profile, the settings, ``config.key_parts`` and
nclib's version; models are built or loaded only on a cache miss, so a warm rerun takes
seconds. Outcomes are cached as ``.npz`` arrays, which round-trip floats exactly: a warm
rerun reproduces the cold run's tables bit for bit.

Every results chapter reads its tables from here: "The image experiment", "The audio
experiment", "All scores, every setup, with their uncertainty", "The caveats, measured",
"Towards an ideal measure" and "What each score costs".
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Mapping

import numpy as np
import pandas as pd

from nclib import __version__
from nclib.cache import Cache, fingerprint
from nclib.config import PROFILES
from nclib.data.fetch import atomic_path
from nclib.evaluate import evaluate_run, mean_performance
from nclib.models.pretraining import CODE as PRETRAINING_CODE
from nclib.models.pretraining import build_model
from nclib.scores import REGISTRY, compute_scores

SPLITS = ("train", "val", "test")
REGIMES = ("head", "full", "top")
"""Transfer regimes a run can hold: ``head`` always, then ``full`` or ``top`` (``fine_tune``)."""
FINE_TUNES = ("full", "top")

COLUMNS = {
    "scores": ["model", "score", "value", "seconds"],
    "transfer": ["model", "regime", "seed", "metric", "value"],
    "evaluation": ["score", "regime", "measure", "value", "low", "high", "p_value"],
    "history": ["model", "regime", "seed", "epoch", "train_loss", "val_metric"],
    "models": ["name", "family", "source_task", "parameters", "embedding_dim"],
    "convergence": ["model", "regime", "seed", "best_epoch", "epochs_run", "stopped_early", "l2", "converged"],
}
"""Columns of each results table (in memory)."""

CODE = {
    "pretrained": PRETRAINING_CODE,  # ("nclib.models", "nclib.transfer", "nclib.train"), used by pretrained_model
    "model_info": ("nclib.models",),
    "head": ("nclib.convex_head", "nclib.logistic", "nclib.transfer", "nclib.train"),
    "fine_tune": ("nclib.transfer", "nclib.train", "nclib.models"),
    "scores": ("nclib.scores", "nclib._validation", "nclib._sampling", "nclib.logistic"),
}
"""The modules whose source code enters each kind of cache key (:func:`nclib.cache.code_hash`):
a change to them recomputes exactly the entries they produce, without a version bump."""

HEAD_SOLVERS = ("adam", "convex")
CONVERGENCE_CHECKS = ("record", "warn", "raise")
OUTCOME_FORMAT = 2  # enters transfer cache keys: outcomes now hold test_probs, epochs_run, ...

CSV_COLUMNS = {**COLUMNS, "scores": ["model", "score", "value"]}
"""Columns written to ``<out>/<table>.csv``: as in memory, but ``scores.csv`` holds the
issue's three columns (the seconds a score took are kept in the ``scores`` table of
:class:`Results`)."""

EXPERIMENTS: dict[str, str | Callable] = {
    "toy": "nclib.experiments.toy:toy_experiment",
    "cifar10": "nclib.experiments.cifar10:cifar10_experiment",
    "coswara": "nclib.experiments.coswara:coswara_experiment",
    "coswara-tuned": "nclib.experiments.coswara:coswara_tuned_experiment",
}
"""Experiment name -> ``"module:function"`` (imported on use) or a function; the function
maps a profile name to an :class:`ExperimentConfig`. Lazy imports keep a missing optional
dependency of one experiment from breaking the others."""


@dataclass(frozen=True)
class ExperimentConfig:
    """Everything that defines one experiment at one profile (profiles are data, not code).

    The defaults are the paper's protocol (Adam, lr 1e-4, batch 32, 250 epochs, 10 seeds);
    a quick profile overrides them and says so in ``description``.

    Attributes
    ----------
    name : str
        Experiment name, e.g. ``"cifar10"``.
    profile : {"quick", "paper"}
    metric : {"accuracy", "auroc"}
        Transfer performance measure (validation checkpointing and test).
    load_target : callable
        ``load_target() -> nclib.data.base.Splits`` of the target task.
    zoo : callable
        ``zoo() -> list[nclib.models.ModelSpec]``, at least two models.
    prepare_model : callable
        ``prepare_model(spec, cache) -> torch.nn.Module`` with its source weights
        (pre-trained and cached in the quick profile, loaded in the paper one); see
        :func:`nclib.models.pretraining.pretrained_model`. Called only on cache misses, and once more per seed
        for full fine-tuning, which modifies the model it receives (top fine-tuning
        trains a copy of the top and needs no fresh model).
    head_epochs, full_epochs : int
        Epochs of the head and full regimes.
    seeds : tuple of int
    lr : float
    batch_size : int
    full_regime : bool
        Run a fine-tuning regime (``fine_tune``) as well as the head regime.
    fine_tune : {"full", "top"}
        The fine-tuning regime when ``full_regime`` is true. ``"full"`` (default, the
        paper's regime (b)): every parameter, :func:`nclib.transfer.full_transfer`, one
        fresh model per seed. ``"top"``: the network's last stage and a new head on the
        frozen trunk's outputs, computed once per model and shared by the seeds (cached),
        :func:`nclib.transfer.top_transfer`; the zoo's models must have ``trunk`` and
        ``top`` (:mod:`nclib.models`). Rows are labelled with this name; it enters the
        cache keys (as the regime). ``full_epochs`` is the cap of either.
    head_solver : {"adam", "convex"}
        ``"adam"`` (default): the paper's protocol, one head per seed
        (:func:`nclib.transfer.head_transfer_seeds`). ``"convex"``: L2-penalised logistic
        regression solved to convergence (:func:`nclib.convex_head.convex_head_transfer`);
        it is deterministic, so it runs once per model and is recorded under seed 0.
    l2_grid : tuple of float or None
        L2 strengths of the convex head (``None``: its default grid, 1 to 1e-6).
    patience : int or None
        Early stopping of the iterative regimes (Adam head, full): stop once the validation
        metric has not improved for ``patience`` epochs, ``head_epochs`` / ``full_epochs``
        being caps. ``None`` (default): the paper's fixed epochs.
    convergence_check : {"record", "warn", "raise"}
        What to do when :func:`nclib.transfer.check_converged` finds more than 10 % of the
        runs unconverged (late peaks at the cap, or an L-BFGS fit short of its tolerance):
        only record it in the ``convergence`` table of :class:`Results` (default), warn, or raise
        :class:`nclib.transfer.NotConvergedError`. Not part of cache keys.
    scores : tuple of str or None
        REGISTRY names to compute; ``None``: every registered score.
    score_options : mapping of str to dict
        Keyword options per score name (enter the cache key).
    description : str
        What data and models produced the results, as prose (chapters show it).
    target : str
        The target data in a few words (e.g. ``"CIFAR-10 (40,000 / 10,000 / 10,000)"``);
        shown by :meth:`summary`, not part of cache keys.
    key_parts : mapping
        JSON-serialisable settings that change the results but are not fields here
        (pre-training epochs, input handling, ...); they enter every cache key.
    feature_batch_size : int
        Examples per forward pass when extracting features (memory only).
    device : str
        Where models and heads run (``"cpu"``, ``"cuda"``); not part of cache keys.
    extra : mapping
        Free-form information for chapters; not part of cache keys.

    Examples
    --------
    >>> from nclib.experiments.toy import toy_experiment
    >>> config = toy_experiment("quick")
    >>> config.profile, config.full_regime
    ('quick', True)
    """

    name: str
    profile: str
    metric: str
    load_target: Callable
    zoo: Callable
    prepare_model: Callable
    head_epochs: int = 250
    full_epochs: int = 250
    seeds: tuple = tuple(range(10))
    lr: float = 1e-4
    batch_size: int = 32
    full_regime: bool = True
    fine_tune: str = "full"
    head_solver: str = "adam"
    l2_grid: tuple | None = None
    patience: int | None = None
    convergence_check: str = "record"
    scores: tuple | None = None
    score_options: Mapping = field(default_factory=dict)
    description: str = ""
    target: str = ""
    key_parts: Mapping = field(default_factory=dict)
    feature_batch_size: int = 256
    device: str = "cpu"
    extra: Mapping = field(default_factory=dict)

    def __post_init__(self):
        from nclib.transfer import METRICS

        if self.profile not in PROFILES:
            raise ValueError(f"profile must be one of {PROFILES}, got {self.profile!r}")
        if self.metric not in METRICS:
            raise ValueError(f"metric must be one of {METRICS}, got {self.metric!r}")
        seeds = tuple(self.seeds)
        if not seeds or any(not isinstance(s, (int, np.integer)) or s < 0 for s in seeds) or len(set(seeds)) < len(seeds):
            raise ValueError(f"seeds must be distinct non-negative integers, got {self.seeds!r}")
        object.__setattr__(self, "seeds", tuple(int(s) for s in seeds))
        epochs = [self.head_epochs] + ([self.full_epochs] if self.full_regime else [])
        for value, what in [(e, "epochs") for e in epochs] + [(self.batch_size, "batch_size"),
                                                              (self.feature_batch_size, "feature_batch_size")]:
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{what} must be a positive integer, got {value!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if self.fine_tune not in FINE_TUNES:
            raise ValueError(f"fine_tune must be one of {FINE_TUNES}, got {self.fine_tune!r}")
        if self.head_solver not in HEAD_SOLVERS:
            raise ValueError(f"head_solver must be one of {HEAD_SOLVERS}, got {self.head_solver!r}")
        if self.convergence_check not in CONVERGENCE_CHECKS:
            raise ValueError(f"convergence_check must be one of {CONVERGENCE_CHECKS}, got {self.convergence_check!r}")
        if self.patience is not None and (not isinstance(self.patience, (int, np.integer)) or self.patience < 1):
            raise ValueError(f"patience must be a positive integer or None, got {self.patience!r}")
        if self.l2_grid is not None:
            from nclib.convex_head import _check_l2_grid

            object.__setattr__(self, "l2_grid", _check_l2_grid(self.l2_grid))
        if self.scores is not None:
            object.__setattr__(self, "scores", tuple(self.scores))
            unknown = sorted(set(self.scores) - set(REGISTRY))
            if unknown or not self.scores:
                raise ValueError(f"unknown or no scores {unknown}; known: {sorted(REGISTRY)}")
        try:
            json.dumps({"key_parts": self.key_parts, "score_options": self.score_options}, sort_keys=True)
        except TypeError as error:
            raise ValueError(f"key_parts and score_options must be JSON-serialisable: {error}") from None

    def settings(self) -> dict:
        """The settings that determine results, as a JSON-friendly dict (recorded in ``run.json``)."""
        return {"experiment": self.name, "profile": self.profile, "metric": self.metric,
                "head_epochs": self.head_epochs, "full_epochs": self.full_epochs if self.full_regime else None,
                "fine_tune": self.fine_tune if self.full_regime else None,
                "seeds": list(self.seeds), "lr": self.lr, "batch_size": self.batch_size,
                "head_solver": self.head_solver, "l2_grid": None if self.l2_grid is None else list(self.l2_grid),
                "patience": self.patience,
                "scores": list(self.score_names()), "score_options": dict(self.score_options),
                "key_parts": dict(self.key_parts), "nclib": __version__}

    def score_names(self) -> tuple:
        """The scores this experiment computes (``scores``, or every registered one)."""
        return tuple(REGISTRY) if self.scores is None else self.scores

    def summary(self, models=None) -> str:
        """What this run is, in a few lines: profile, target data, zoo, regimes, seeds, solver, epochs.

        The one description of a run that the command line prints, ``run.json`` records
        (``"summary"``) and chapters show; ``description`` follows as its last paragraph.

        Parameters
        ----------
        models : sequence of str, optional
            The zoo's model names; by default ``zoo()`` is called for them (which builds
            no model), and if that fails the zoo is described as not listed.

        Returns
        -------
        str

        Examples
        --------
        >>> from nclib.experiments.toy import toy_experiment
        >>> print(toy_experiment("quick").summary().splitlines()[0])
        toy experiment, quick profile; transfer measured by test accuracy
        """
        if models is None:
            try:
                models = [spec.name for spec in self.zoo()]
            except Exception:  # noqa: BLE001 -- a zoo that cannot be listed here (missing optional package)
                models = None
        zoo = "not listed" if models is None else f"{len(models)} models: {', '.join(models)}"
        adam = f"Adam, lr {self.lr:g}, batch {self.batch_size}"
        stop = (f"early stopping after {self.patience} epochs without improvement, cap {{}} epochs"
                if self.patience is not None else "{} epochs")
        if self.head_solver == "convex":
            head = "head: L2-penalised logistic regression solved to convergence (L2 chosen on validation)"
        else:
            head = f"head: {adam}, {stop.format(self.head_epochs)}"
        regimes = [head]
        if self.full_regime:
            what = "every weight" if self.fine_tune == "full" else "last stage + new head on the frozen trunk"
            regimes.append(f"{self.fine_tune} ({what}): {adam}, {stop.format(self.full_epochs)}")
        seeds = ", ".join(str(s) for s in self.seeds)
        scores = (f"every registered score ({len(REGISTRY)})" if self.scores is None
                  else ", ".join(self.scores))
        metric = {"auroc": "AUROC"}.get(self.metric, self.metric)
        lines = [f"{self.name} experiment, {self.profile} profile; transfer measured by test {metric}",
                 f"target: {self.target or 'see below'}",
                 f"zoo: {zoo}",
                 "regimes: " + "; ".join(regimes),
                 f"seeds: {seeds} ({len(self.seeds)})",
                 f"scores: {scores}"]
        if self.description:
            lines.append(self.description)
        return "\n".join(lines)


@dataclass
class Results:
    """The tables of one run (columns: :data:`~nclib.experiments.runner.COLUMNS`).

    Attributes
    ----------
    config : ExperimentConfig
    scores : pandas.DataFrame
        ``model, score, value, seconds``: each score on the target training embeddings.
    transfer : pandas.DataFrame
        ``model, regime, seed, metric, value``: test metric of the best-on-validation
        checkpoint; regimes ``head`` and ``full`` or ``top`` (``config.fine_tune``).
    evaluation : pandas.DataFrame
        ``score, regime, measure, value, low, high, p_value``: ``value`` from
        :func:`nclib.evaluate.evaluate_run`; ``low, high`` a 95 % interval from a paired
        bootstrap over seeds and test examples, ``p_value`` an exact permutation test
        (:func:`nclib.uncertainty.evaluation_with_intervals`).
    history : pandas.DataFrame
        ``model, regime, seed, epoch, train_loss, val_metric``: the training curves.
    models : pandas.DataFrame
        ``name, family, source_task, parameters, embedding_dim``.
    convergence : pandas.DataFrame
        ``model, regime, seed, best_epoch, epochs_run, stopped_early, l2, converged``, one
        row per transfer run. Iterative runs: ``best_epoch`` and ``epochs_run`` (nullable
        integers), ``stopped_early`` (the patience criterion was met), ``l2`` missing,
        ``converged`` = not a late peak (:func:`nclib.transfer.late_peaks`, last 10 % of
        the epochs at the cap). Convex heads: epochs missing, ``l2`` the chosen strength,
        ``converged`` the L-BFGS verdict.
    predictions : dict
        ``(model, regime, seed) -> ndarray (N_test, C)`` float32: the kept head's test
        probabilities (for paired bootstraps over test examples).
    test_labels : ndarray of shape (N_test,)
        The target's test labels, aligned with ``predictions``.
    embeddings : dict
        ``model -> {"train_features", "train_labels", "val_features", ...}``: the frozen
        embeddings of every split (float32) and the labels, as written to
        ``<out>/embeddings/<model>.npz``.
    source_probs : dict
        ``model -> {"train_source_probs", "val_source_probs", "test_source_probs"}``: the
        source classifier's softmax over its Z source classes, ``(n, Z)`` float32 per split,
        as the runner extracted them with the embeddings (what LEEP and NCE read). Held in
        memory only: not written by :meth:`write` (Z is 1,000 for ImageNet networks, which
        would multiply the files' size), so read them from here, or for a configuration
        without its run from :func:`nclib.experiments.embeddings.experiment_embeddings`.
    """

    config: ExperimentConfig
    scores: pd.DataFrame
    transfer: pd.DataFrame
    evaluation: pd.DataFrame
    history: pd.DataFrame
    models: pd.DataFrame
    convergence: pd.DataFrame = field(default_factory=lambda: _empty_convergence())
    predictions: dict = field(default_factory=dict)
    test_labels: np.ndarray | None = None
    embeddings: dict = field(default_factory=dict)
    source_probs: dict = field(default_factory=dict)

    def tables(self) -> dict:
        """The six tables by name (keys as :data:`COLUMNS`)."""
        return {name: getattr(self, name) for name in COLUMNS}

    def mean_transfer(self) -> pd.DataFrame:
        """Seed-averaged test metric: columns ``model, regime, metric, value``."""
        return mean_performance(self.transfer)

    def embedding(self, model: str, split: str = "train") -> dict:
        """One model's embeddings of one split: ``{"features": (n, D) float32, "labels": (n,)}``.

        Parameters
        ----------
        model : str
        split : {"train", "val", "test"}

        Returns
        -------
        dict
            ``features`` (n, D) float32 and ``labels`` (n,), and ``source_probs`` (n, Z)
            float32 when the run holds them (``source_probs``; a run made by
            :func:`run_experiment` always does).

        Raises
        ------
        KeyError
            A model or split the run does not hold.

        Examples
        --------
        >>> arrays = {"train_features": np.zeros((2, 3), np.float32), "train_labels": np.arange(2)}
        >>> run = Results(None, *[pd.DataFrame()] * 5, embeddings={"m": arrays})
        >>> run.embedding("m")["features"].shape
        (2, 3)
        """
        if model not in self.embeddings:
            raise KeyError(f"no embeddings of model {model!r}; the run holds {sorted(self.embeddings)}")
        arrays = self.embeddings[model]
        if f"{split}_features" not in arrays:
            raise KeyError(f"no {split!r} split; splits: {list(SPLITS)}")
        found = {"features": arrays[f"{split}_features"], "labels": arrays[f"{split}_labels"]}
        probs = self.source_probs.get(model, {})
        if f"{split}_source_probs" in probs:
            found["source_probs"] = probs[f"{split}_source_probs"]
        return found

    def features(self, split: str = "train") -> dict:
        """Every model's embeddings of one split, ``{model: (n, D) array}``, in zoo order.

        The labels (the same for every model) are :meth:`labels`.

        Examples
        --------
        >>> arrays = {"train_features": np.zeros((2, 3), np.float32), "train_labels": np.arange(2)}
        >>> run = Results(None, *[pd.DataFrame()] * 5, embeddings={"m": arrays})
        >>> {name: array.shape for name, array in run.features().items()}
        {'m': (2, 3)}
        """
        return {model: self.embedding(model, split)["features"] for model in self.embeddings}

    def labels(self, split: str = "train") -> np.ndarray:
        """The target labels of one split (aligned with :meth:`features`).

        Examples
        --------
        >>> arrays = {"train_features": np.zeros((2, 3), np.float32), "train_labels": np.arange(2)}
        >>> run = Results(None, *[pd.DataFrame()] * 5, embeddings={"m": arrays})
        >>> run.labels().tolist()
        [0, 1]
        """
        if not self.embeddings:
            raise KeyError("the run holds no embeddings")
        return self.embedding(next(iter(self.embeddings)), split)["labels"]

    def source_softmax(self, split: str = "train") -> dict:
        """Every model's source-classifier probabilities of one split, ``{model: (n, Z) array}``.

        What :func:`nclib.scores.compute_scores` takes as ``source_probs`` (with
        :meth:`features` and :meth:`labels` of the same split); ``Z`` differs between
        models (each its own source classes).

        Raises
        ------
        KeyError
            The run holds no source probabilities (e.g. ``Results`` built by hand).

        Examples
        --------
        >>> arrays = {"train_features": np.zeros((2, 3), np.float32), "train_labels": np.arange(2)}
        >>> probs = {"m": {"train_source_probs": np.full((2, 4), 0.25, np.float32)}}
        >>> run = Results(None, *[pd.DataFrame()] * 5, embeddings={"m": arrays}, source_probs=probs)
        >>> {name: array.shape for name, array in run.source_softmax().items()}
        {'m': (2, 4)}
        """
        key = f"{split}_source_probs"
        missing = [model for model in self.embeddings if key not in self.source_probs.get(model, {})]
        if missing or not self.embeddings:
            raise KeyError(f"no {split!r} source probabilities of models {missing}; the run holds them for "
                           f"{sorted(self.source_probs)}")
        return {model: self.source_probs[model][key] for model in self.embeddings}

    def write(self, out) -> dict:
        """Write ``<table>.csv`` (columns :data:`CSV_COLUMNS`), ``run.json`` and
        ``embeddings/<model>.npz`` atomically.

        Each ``.npz`` holds ``train_features``, ``train_labels``, ``val_features``,
        ``val_labels``, ``test_features`` and ``test_labels``, so anyone can re-score or
        refit without the models (read with ``numpy.load(path, allow_pickle=False)``).
        The source probabilities (``source_probs``) are not written.

        Returns
        -------
        dict of str to pathlib.Path
        """
        out = Path(out)
        paths = {}
        for name, table in self.tables().items():
            paths[name] = out / f"{name}.csv"
            with atomic_path(paths[name]) as temporary:
                table[CSV_COLUMNS[name]].to_csv(temporary, index=False)
        paths["run"] = out / "run.json"
        record = {**self.config.settings(), "description": self.config.description,
                  "summary": self.config.summary(models=list(self.models["name"]))}
        with atomic_path(paths["run"]) as temporary:
            temporary.write_text(json.dumps(record, indent=2) + "\n")
        for model, arrays in self.embeddings.items():
            path = out / "embeddings" / f"{model}.npz"
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as temporary:
                with open(temporary, "wb") as handle:
                    np.savez(handle, **arrays)
            paths[f"embeddings/{model}"] = path
        return paths


# ----------------------------------------------------------------------------- models
class _LazyModel:
    """Calls ``prepare_model`` only when a cache miss needs the model, at most once."""

    def __init__(self, config: ExperimentConfig, spec, cache: Cache):
        self.config, self.spec, self.cache, self.model = config, spec, cache, None

    def get(self):
        if self.model is None:
            self.model = self.fresh()
        return self.model

    def fresh(self):
        return self.config.prepare_model(self.spec, self.cache).to(self.config.device)


# ----------------------------------------------------------------------------- checks
def _check_splits(splits, metric: str):
    for name in SPLITS:
        part = getattr(splits, name, None)
        if part is None or not hasattr(part, "inputs") or not hasattr(part, "labels"):
            raise ValueError(f"load_target must return Splits with train/val/test datasets; {name!r} is missing")
        if len(part.labels) == 0:
            raise ValueError(f"the target's {name} split is empty")
    classes = [list(getattr(splits, name).classes) for name in SPLITS]
    if any(c != classes[0] for c in classes):
        raise ValueError("train, val and test splits must share the same classes")
    if metric == "auroc" and len(classes[0]) != 2:
        raise ValueError(f"auroc needs a binary target, got {len(classes[0])} classes")
    return splits


def _check_zoo(specs) -> list:
    specs = list(specs)
    names = [spec.name for spec in specs]
    if len(specs) < 2:
        raise ValueError(f"a zoo needs at least two models to rank, got {names}")
    if len(set(names)) != len(names):
        raise ValueError(f"model names in a zoo must be unique, got {names}")
    return specs


# ----------------------------------------------------------------------------- steps
def _model_row(cache: Cache, parts: dict, spec, model: _LazyModel) -> dict:
    def compute() -> dict:
        built = model.model if model.model is not None else build_model(spec)
        parameters = sum(int(p.numel()) for p in built.parameters())
        return {"parameters": np.int64(parameters), "embedding_dim": np.int64(built.embedding_dim)}

    info = cache.arrays("model_info", parts, compute, code=CODE["model_info"])
    return {"name": spec.name, "family": spec.family, "source_task": spec.source_task,
            "parameters": int(info["parameters"]), "embedding_dim": int(info["embedding_dim"])}


def _outcome(result) -> dict:
    """Arrays of one transfer run (stored in the cache as ``.npz``).

    Every run: ``epoch``, ``train_loss``, ``val_metric`` (history, empty for the convex
    head), ``test_metric``, ``test_probs`` (N_test, C) float32. Iterative runs also:
    ``best_epoch``, ``epochs_run``, ``stopped_early``. Convex heads also: ``l2``,
    ``converged``, ``iterations``, ``gradient_norm``, ``grid_l2``, ``grid_val_metric``.
    """
    outcome = {"test_metric": np.float64(result.test_metric),
               "test_probs": np.asarray(result.test_probs, dtype=np.float32)}
    if hasattr(result, "l2"):  # the convex head
        grid = result.history
        return {**outcome, "epoch": np.zeros(0, np.int64), "train_loss": np.zeros(0), "val_metric": np.zeros(0),
                "l2": np.float64(result.l2), "converged": np.bool_(result.converged),
                "iterations": np.int64(result.iterations), "gradient_norm": np.float64(result.gradient_norm),
                "grid_l2": grid["l2"].to_numpy(np.float64), "grid_val_metric": grid["val_metric"].to_numpy(np.float64)}
    history = result.history
    return {**outcome, "epoch": history["epoch"].to_numpy(np.int64),
            "train_loss": history["train_loss"].to_numpy(np.float64),
            "val_metric": history["val_metric"].to_numpy(np.float64), "best_epoch": np.int64(result.best_epoch),
            "epochs_run": np.int64(len(history)), "stopped_early": np.bool_(result.stopped_early)}


def _convex_head_run(config, cache, parts, features, splits) -> dict:
    """The convex head's outcome (deterministic: one run, recorded as seed 0)."""
    import torch

    from nclib.convex_head import convex_head_transfer

    def compute() -> dict:
        result = convex_head_transfer(
            features["train"]["features"], splits.train.labels, features["val"]["features"], splits.val.labels,
            features["test"]["features"], splits.test.labels, num_classes=len(splits.train.classes),
            metric=config.metric, l2_grid=config.l2_grid)
        cache.weights("head", parts, lambda: {k: torch.from_numpy(v) for k, v in result.state.items()},
                      code=CODE["head"])
        return _outcome(result)

    return cache.arrays("head_transfer", parts, compute, code=CODE["head"])


def _head_runs(config, cache, parts_of: Callable, features, splits, name) -> dict:
    """Head-regime outcome per seed; the seeds missing from the cache are trained together."""
    from nclib.transfer import head_transfer_seeds

    if config.head_solver == "convex":
        return {0: _convex_head_run(config, cache, parts_of(0), features, splits)}

    trained = {}

    def is_cached(seed) -> bool:
        return cache.enabled and cache.path("head_transfer", parts_of(seed), ".npz", CODE["head"]).is_file()

    def compute(seed) -> dict:
        if seed not in trained:
            seeds = [seed] + [s for s in config.seeds if s != seed and s not in trained and not is_cached(s)]
            results = head_transfer_seeds(
                features["train"]["features"], splits.train.labels, features["val"]["features"],
                splits.val.labels, features["test"]["features"], splits.test.labels,
                num_classes=len(splits.train.classes), epochs=config.head_epochs, lr=config.lr,
                batch_size=config.batch_size, seeds=seeds, metric=config.metric,
                desc=f"head {name} seeds {seeds}", device=config.device, patience=config.patience)
            for s, result in zip(seeds, results):
                trained[s] = result
                cache.weights("head", parts_of(s), lambda result=result: result.state, code=CODE["head"])  # the trained head
        return _outcome(trained[seed])

    return {seed: cache.arrays("head_transfer", parts_of(seed), lambda seed=seed: compute(seed), code=CODE["head"])
            for seed in config.seeds}


def _full_run(config, cache, parts, model: _LazyModel, splits, seed, name) -> dict:
    from nclib.transfer import full_transfer

    def compute() -> dict:
        result = full_transfer(model.fresh(), splits, epochs=config.full_epochs, lr=config.lr,
                               batch_size=config.batch_size, seed=seed, metric=config.metric,
                               desc=f"full {name} seed {seed}", patience=config.patience)
        return _outcome(result)

    return cache.arrays("full_transfer", parts, compute, code=CODE["fine_tune"])


class _TrunkOutputs:
    """A model's trunk outputs for the three splits: computed (or read from the cache) on
    first use, kept in memory for the other seeds, never built when every seed is cached."""

    def __init__(self, cache: Cache, parts: dict, model: _LazyModel, splits, config):
        self.cache, self.parts, self.model, self.splits, self.config = cache, parts, model, splits, config
        self.outputs = None

    def get(self) -> dict:
        from nclib.transfer import trunk_outputs

        if self.outputs is None:
            def compute() -> dict:
                return trunk_outputs(self.model.get(), self.splits, batch_size=self.config.feature_batch_size,
                                     desc=f"trunk {self.parts['model']}")

            self.outputs = self.cache.arrays("trunk_outputs", self.parts, compute, code=CODE["fine_tune"])
        return self.outputs


def _top_run(config, cache, parts, model: _LazyModel, trunk: _TrunkOutputs, splits, seed, name) -> dict:
    from nclib.transfer import top_transfer

    def compute() -> dict:
        result = top_transfer(model.get(), splits, epochs=config.full_epochs, lr=config.lr,
                              batch_size=config.batch_size, seed=seed, metric=config.metric,
                              desc=f"top {name} seed {seed}", patience=config.patience,
                              trunk_outputs=trunk.get())
        return _outcome(result)

    return cache.arrays("top_transfer", parts, compute, code=CODE["fine_tune"])


def _score_parts(config, base: dict, score: str, models) -> dict:
    options = dict(config.score_options.get(score, {}))
    # the key holds the options in force, registry defaults included, so changing a
    # default recomputes the score instead of returning a stale value
    effective = {**REGISTRY[score].options, **options}
    return {**base, "score": score, "options": effective, "models": list(models)}


def _score_unit(run: "_Run", score: str, pool: dict) -> pd.DataFrame:
    """Unit of work: one chosen score over the pool ``{model: train features and source_probs}``."""
    config, train = run.config, pool
    options = dict(config.score_options.get(score, {}))

    def compute() -> dict:
        labels = _splits(run).train.labels
        try:
            table = compute_scores({m: f["features"] for m, f in train.items()}, labels,
                                   source_probs={m: f["source_probs"] for m, f in train.items()},
                                   names=[score], options={score: options})
        except ValueError as error:
            raise ValueError(f"score {score!r} failed on the {config.name} training embeddings: {error}") from error
        return {"model": table["model"].to_numpy(str), "value": table["value"].to_numpy(np.float64),
                "seconds": table["seconds"].to_numpy(np.float64)}

    stored = run.cache.arrays("scores", _score_parts(config, run.base, score, train), compute, code=CODE["scores"])
    return pd.DataFrame({"model": stored["model"].astype(str), "score": score,
                         "value": stored["value"], "seconds": stored["seconds"]})


def run_experiment(config: ExperimentConfig, out=None, cache: Cache | None = None, executor=None) -> Results:
    """Run an experiment: features, scores, both transfer regimes and their evaluation.

    Parameters
    ----------
    config : ExperimentConfig
    out : path-like, optional
        Folder for ``scores.csv``, ``transfer.csv``, ``evaluation.csv``, ``history.csv``,
        ``models.csv``, ``convergence.csv`` and ``run.json`` (each written atomically).
    cache : nclib.cache.Cache, optional
        Default: ``Cache()`` under ``$NCLIB_DATA/cache``. ``Cache(enabled=False)``
        recomputes everything and stores nothing.
    executor : str or nclib.experiments.executors.Executor, optional
        Where the units of work run (:mod:`nclib.experiments.executors`): ``None`` or
        ``"sequential"`` (default) in this process, ``"processes"`` in local processes,
        ``"dask"`` on a Dask ``LocalCluster``, or an executor instance (e.g.
        ``DaskExecutor("tcp://host:8786")``), which the caller closes. Every executor
        gives the same tables; remote workers must see the same ``cache`` folder and the
        same target data (checked by fingerprint).

    Returns
    -------
    Results

    Raises
    ------
    nclib.experiments.executors.UnitFailed
        A unit of work failed twice (once and on its retry); the message names its key.
        It is also an instance of the original error's class where possible.
    nclib.transfer.NotConvergedError
        With ``config.convergence_check == "raise"``, when more than 10 % of the transfer
        runs did not converge (see the ``convergence`` table of :class:`Results`).

    Examples
    --------
    >>> import dataclasses
    >>> from nclib.experiments.toy import toy_experiment
    >>> config = dataclasses.replace(toy_experiment("quick"), seeds=(0,), scores=("nc",), full_regime=False)
    >>> results = run_experiment(config, cache=Cache(enabled=False))
    >>> sorted(results.transfer.regime.unique()), len(results.scores)
    (['head'], 4)
    >>> results.predictions["mlp-wide", "head", 0].shape == (len(results.test_labels), 3)
    True
    >>> results.convergence.columns.tolist()[3:]
    ['best_epoch', 'epochs_run', 'stopped_early', 'l2', 'converged']
    """
    from nclib.experiments.executors import Executor, SequentialExecutor, get_executor

    cache = cache if cache is not None else Cache()
    splits = _check_splits(config.load_target(), config.metric)
    specs = _check_zoo(config.zoo())
    base = run_key_parts(config, splits)
    run = _Run(config=config, cache=cache, base=base, token=_new_token())
    owned = not isinstance(executor, Executor)
    executor = get_executor(executor)
    _local(run)["splits"] = splits  # units run in this process use the target loaded here
    try:
        # stage 1, independent units: each model's embeddings and head regime (preparing the
        # model on a miss), then its fine-tuning runs, one per seed. A model's first unit
        # also stores what its fine-tuning units read (regime "top": the trunk's outputs),
        # and the slowest units of a run tend to be heads, so they go first to the workers.
        fine_tune = config.fine_tune if config.full_regime else None
        first = [_unit(run, "features", spec.name, _embed_unit, spec) for spec in specs]
        if fine_tune is not None:
            first += [_unit(run, fine_tune, spec.name, _fine_tune_unit, spec, seed, seed=seed)
                      for spec in specs for seed in config.seeds]
        done = _map_units(executor, first, cache, desc=f"{config.name} models")
        features, model_rows, heads, tuned = {}, [], [], {}
        for spec, (embedded, row, head) in zip(specs, done):
            features[spec.name] = embedded
            model_rows.append(row)
            heads.append(head)
        if fine_tune is not None:
            outcomes = iter(done[len(specs):])
            tuned = {spec.name: {(fine_tune, seed): next(outcomes) for seed in config.seeds} for spec in specs}
        # stage 2, on the training embeddings: each score
        pool = {spec.name: features[spec.name]["train"] for spec in specs}  # scores read the training split only
        # the slowest scores go to the workers first, so that the workers finish together
        names = config.score_names()
        order = sorted(range(len(names)), key=lambda i: names[i] not in SLOW_SCORES)
        second = [_unit(run, "score", names[i], _score_unit, names[i], pool) for i in order]
        computed = dict(zip(order, _map_units(executor, second, cache, desc=f"{config.name} scores")))
        score_tables = [computed[i] for i in range(len(names))]
    finally:
        _forget(run)
        if owned and not isinstance(executor, SequentialExecutor):
            executor.close()

    transfer_rows, histories, runs, predictions, embeddings, source_probs = [], [], [], {}, {}, {}
    for spec, head in zip(specs, heads):
        embeddings[spec.name] = {f"{split}_{kind}": array for split in SPLITS for kind, array in
                                 (("features", np.asarray(features[spec.name][split]["features"], np.float32)),
                                  ("labels", np.asarray(getattr(splits, split).labels)))}
        source_probs[spec.name] = {f"{split}_source_probs": np.asarray(features[spec.name][split]["source_probs"],
                                                                       np.float32) for split in SPLITS}
        outcomes = {("head", seed): outcome for seed, outcome in head.items()}
        outcomes.update(tuned.get(spec.name, {}))
        for (regime, seed), outcome in outcomes.items():
            transfer_rows.append((spec.name, regime, seed, config.metric, float(outcome["test_metric"])))
            histories.append(pd.DataFrame({"model": spec.name, "regime": regime, "seed": seed,
                                           "epoch": outcome["epoch"], "train_loss": outcome["train_loss"],
                                           "val_metric": outcome["val_metric"]}))
            runs.append(_convergence_row(spec.name, regime, seed, outcome))
            predictions[spec.name, regime, seed] = np.asarray(outcome["test_probs"], dtype=np.float32)
    scores = pd.concat(score_tables, ignore_index=True)[COLUMNS["scores"]]
    transfer = pd.DataFrame(transfer_rows, columns=COLUMNS["transfer"])
    test_labels = np.asarray(splits.test.labels)
    results = Results(
        config=config, scores=scores, transfer=transfer,
        evaluation=_evaluation(config, scores, transfer, predictions, test_labels),
        history=pd.concat(histories, ignore_index=True)[COLUMNS["history"]],
        models=pd.DataFrame(model_rows, columns=COLUMNS["models"]),
        convergence=_convergence_table(runs), predictions=predictions,
        test_labels=test_labels, embeddings=embeddings, source_probs=source_probs,
    )
    _guard_convergence(config, results.convergence)
    if out is not None:
        results.write(out)
    return results


def _evaluation(config, scores, transfer, predictions, test_labels) -> pd.DataFrame:
    """Every measure with its interval and p-value (:func:`nclib.uncertainty.evaluation_with_intervals`)."""
    from nclib.uncertainty import evaluation_with_intervals

    point = evaluate_run(scores[["model", "score", "value"]], transfer)
    table = evaluation_with_intervals(scores[["model", "score", "value"]], predictions, test_labels,
                                      config.metric, transfer=transfer, measures=tuple(dict.fromkeys(point.measure)))
    merged = point.merge(table.drop(columns="value"), on=["score", "regime", "measure"], how="left")
    return merged[COLUMNS["evaluation"]]


def _empty_convergence() -> pd.DataFrame:
    return _convergence_table([])


def _convergence_row(model, regime, seed, outcome) -> dict:
    row = {"model": model, "regime": regime, "seed": seed}
    if "l2" in outcome:
        return {**row, "l2": float(outcome["l2"]), "converged": bool(outcome["converged"])}
    return {**row, "best_epoch": int(outcome["best_epoch"]), "epochs_run": int(outcome["epochs_run"]),
            "stopped_early": bool(outcome["stopped_early"])}


def _convergence_table(rows) -> pd.DataFrame:
    """The :attr:`Results.convergence` table of the run rows (nullable dtypes for what does not apply)."""
    from nclib.transfer import late_peaks

    table = pd.DataFrame(rows, columns=COLUMNS["convergence"])
    table = table.astype({"model": object, "regime": object, "seed": np.int64, "best_epoch": "Int64",
                          "epochs_run": "Int64", "stopped_early": "boolean", "l2": np.float64,
                          "converged": "boolean"})
    iterative = table["best_epoch"].notna()
    if iterative.any():
        late = late_peaks(table[iterative], tail=0.1)
        flagged = set(zip(late["model"], late["regime"], late["seed"]))
        keys = zip(table["model"], table["regime"], table["seed"])
        table.loc[iterative, "converged"] = [key not in flagged for key, i in zip(keys, iterative) if i]
    return table


def _guard_convergence(config, convergence: pd.DataFrame) -> None:
    """Apply ``config.convergence_check`` to the runs (more than 10 % unconverged)."""
    import warnings

    from nclib.transfer import NotConvergedError, check_converged

    if config.convergence_check == "record" or convergence.empty:
        return
    try:
        check_converged(convergence, tail=0.1, max_fraction=0.1)
    except NotConvergedError as error:
        if config.convergence_check == "raise":
            raise NotConvergedError(f"{config.name} ({config.profile}): {error}", error.runs) from None
        warnings.warn(f"{config.name} ({config.profile}): {error}", stacklevel=3)


# ----------------------------------------------------------------------------- cache-key layout
def data_fingerprint(splits) -> str:
    """The identity of a target's data in cache keys: a fingerprint of every split's inputs and labels.

    Parameters
    ----------
    splits : nclib.data.base.Splits

    Returns
    -------
    str
        16 hexadecimal digits (:func:`nclib.cache.fingerprint` of the train, val and test
        inputs and labels, in that order).

    Examples
    --------
    >>> from nclib.data.base import Dataset, Splits
    >>> d = Dataset(np.zeros((4, 1), np.float32), np.array([0, 1, 0, 1]), ["a", "b"])
    >>> len(data_fingerprint(Splits(d.subset([0, 1]), d.subset([2]), d.subset([3]))))
    16
    """
    return fingerprint(*[array for name in SPLITS for array in
                         (getattr(splits, name).inputs, getattr(splits, name).labels)])


def run_key_parts(config: ExperimentConfig, splits) -> dict:
    """The parts every cache key of a run starts from (the one definition of that layout).

    Parameters
    ----------
    config : ExperimentConfig
    splits : nclib.data.base.Splits or str
        The target data, or their :func:`data_fingerprint` if already computed.

    Returns
    -------
    dict
        ``{"experiment", "profile", "data", "config"}``: the experiment's name and profile,
        the data fingerprint and ``config.key_parts``.

    Examples
    --------
    >>> from nclib.experiments.toy import toy_experiment
    >>> run_key_parts(toy_experiment("quick"), "0123456789abcdef")["data"]
    '0123456789abcdef'
    """
    data = splits if isinstance(splits, str) else data_fingerprint(splits)
    return {"experiment": config.name, "profile": config.profile, "data": data, "config": dict(config.key_parts)}


def model_key_parts(config: ExperimentConfig, spec, splits) -> dict:
    """The cache-key parts of one model of a run; every entry of that model extends them.

    The runner keys a model's embeddings with these parts plus ``"split"``
    (:func:`feature_key_parts`), its transfer runs with the training settings, its
    trunk outputs with ``"trunk"``; :func:`nclib.experiments.embeddings.experiment_embeddings`
    reads the embeddings with the same parts, so the layout exists once, here.

    Parameters
    ----------
    config : ExperimentConfig
    spec : nclib.models.ModelSpec
        One model of ``config.zoo()`` (its ``name``, ``family`` and ``source_task`` are read).
    splits : nclib.data.base.Splits or str
        The target data, or their :func:`data_fingerprint`.

    Returns
    -------
    dict
        :func:`run_key_parts` plus ``"model"``, ``"family"`` and ``"source_task"``
        (JSON-serialisable).

    Examples
    --------
    >>> from nclib.experiments.toy import toy_experiment
    >>> config = toy_experiment("quick")
    >>> parts = model_key_parts(config, config.zoo()[0], "0123456789abcdef")
    >>> sorted(parts)
    ['config', 'data', 'experiment', 'family', 'model', 'profile', 'source_task']
    """
    return {**run_key_parts(config, splits), "model": spec.name, "family": spec.family,
            "source_task": spec.source_task}


def _split_parts(model_parts: dict, split: str) -> dict:
    return {**model_parts, "split": split}


def feature_key_parts(config: ExperimentConfig, spec, splits, split: str) -> dict:
    """The cache-key parts of one model's embeddings of one split (:func:`nclib.features.cached_extract`).

    Parameters
    ----------
    config : ExperimentConfig
    spec : nclib.models.ModelSpec
    splits : nclib.data.base.Splits or str
        The target data, or their :func:`data_fingerprint`.
    split : {"train", "val", "test"}

    Returns
    -------
    dict
        :func:`model_key_parts` plus ``"split"``.

    Examples
    --------
    >>> from nclib.experiments.toy import toy_experiment
    >>> config = toy_experiment("quick")
    >>> feature_key_parts(config, config.zoo()[0], "0123456789abcdef", "val")["split"]
    'val'
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    return _split_parts(model_key_parts(config, spec, splits), split)


# ----------------------------------------------------------------------------- units of work
@dataclass(frozen=True)
class _Run:
    """What every unit of one run needs: small and picklable, so units run in any process.

    The target data are not shipped: a unit loads them where it runs (once per process and
    run, checked against the driver's fingerprint ``base["data"]``); ``token`` tells runs apart.
    """

    config: ExperimentConfig
    cache: Cache
    base: dict
    token: str


SLOW_SCORES = ("linear_probe", "pactran")
"""Scores whose units are sent to the workers before the others (the scores table keeps
the configured order). On the quick profile's Fashion-MNIST setup they took 34 s and 7.5 s
of the sixteen scores' 64 s (2026-12-02); sent last, the linear probe kept one worker busy
for half a minute after the other had finished, and that setup's scores took 45 to 48 s of
a cold build. Sent first, they took 36 s in the next one."""


_LOCAL: dict = {}
"""This process's state of the run it is working for: ``token``, the target ``splits`` and
one model at a time (``model_name``, ``model``, ``trunk``), reused by that model's next units."""


def _new_token() -> str:
    import uuid

    return uuid.uuid4().hex


def _data_id(splits) -> str:
    return data_fingerprint(splits)


def _local(run: _Run) -> dict:
    if _LOCAL.get("token") != run.token:  # a new run: forget the previous one's data and model
        _LOCAL.clear()
        _LOCAL["token"] = run.token
    return _LOCAL


def _forget(run: _Run) -> None:
    if _LOCAL.get("token") == run.token:
        _LOCAL.clear()


def _splits(run: _Run):
    """The run's target splits, loaded in this process on first use."""
    state = _local(run)
    if "splits" not in state:
        splits = _check_splits(run.config.load_target(), run.config.metric)
        if _data_id(splits) != run.base["data"]:
            raise ValueError(f"the {run.config.name} target data loaded here differ from the driver's "
                             f"(fingerprint {_data_id(splits)}, expected {run.base['data']}): every worker "
                             "must see the same data")
        state["splits"] = splits
    return state["splits"]


def _model_of(run: _Run, spec) -> _LazyModel:
    """``spec``'s model, prepared on first use and kept for that model's next units (one at a time)."""
    state = _local(run)
    if state.get("model_name") != spec.name:
        state.pop("trunk", None)
        state["model_name"], state["model"] = spec.name, _LazyModel(run.config, spec, run.cache)
    return state["model"]


def _model_parts(run: _Run, spec) -> dict:
    return model_key_parts(run.config, spec, run.base["data"])


def _transfer_parts(config, model_parts: dict, seed, regime: str) -> dict:
    """Cache key parts of one transfer run of a model."""
    if regime == "head" and config.head_solver == "convex":  # no seed, lr, batch or epochs
        from nclib.convex_head import DEFAULT_L2_GRID
        from nclib.logistic import GTOL

        grid = list(config.l2_grid if config.l2_grid is not None else DEFAULT_L2_GRID)
        return {**model_parts, "metric": config.metric, "format": OUTCOME_FORMAT, "regime": regime,
                "solver": "convex", "l2_grid": grid, "gtol": GTOL}
    training = {"lr": config.lr, "batch_size": config.batch_size, "metric": config.metric, "format": OUTCOME_FORMAT}
    if config.patience is not None:  # absent for the paper's fixed epochs
        training["patience"] = config.patience
    epochs = config.head_epochs if regime == "head" else config.full_epochs
    return {**model_parts, **training, "regime": regime, "seed": seed, "epochs": epochs}


def _unit(run: _Run, what: str, name: str, fn: Callable, *args, seed=None):
    """A :class:`~nclib.experiments.executors.Unit` keyed by what it computes, and the paths of its main cache entries."""
    from nclib.experiments.executors import Unit

    config, cache = run.config, run.cache
    if what == "score":
        score, pool = args
        path = cache.path("scores", _score_parts(config, run.base, score, pool), ".npz", CODE["scores"])
        label = f"score {name}"
    else:
        spec = args[0]
        model_parts = _model_parts(run, spec)
        if what == "features":  # the embeddings, then the head regime
            from nclib.features import FEATURE_CODE

            path = (cache.path("features", _split_parts(model_parts, "train"), ".npz", FEATURE_CODE),
                    cache.path("head_transfer", _transfer_parts(config, model_parts, config.seeds[0], "head"), ".npz",
                               CODE["head"]))
            label = f"features and head {name}"
        else:
            path = cache.path(f"{what}_transfer", _transfer_parts(config, model_parts, seed, what), ".npz",
                              CODE["fine_tune"])
            label = f"{what} {name} seed {seed}"
    paths = path if isinstance(path, tuple) else (path,)
    return Unit(f"{config.name} {label} [{paths[0].stem}]", fn, (run, *args)), paths


def _map_units(executor, pairs: list, cache: Cache, desc: str) -> list:
    """Run ``(unit, paths)`` pairs, in order: those whose main entries ``paths`` are all stored run here.

    A stored unit only reads the cache, so sending it to a worker would cost the worker's
    start (seconds) and the pickling of its result for nothing; a warm rerun with a
    process or Dask executor therefore starts no worker at all.
    """
    from nclib.experiments.executors import SequentialExecutor

    if isinstance(executor, SequentialExecutor):
        return executor.map([unit for unit, _ in pairs], desc=desc)
    stored = [cache.enabled and all(path.is_file() for path in paths) for _, paths in pairs]
    here = SequentialExecutor().map([unit for (unit, _), s in zip(pairs, stored) if s])
    away = executor.map([unit for (unit, _), s in zip(pairs, stored) if not s], desc=desc) \
        if not all(stored) else []
    here, away = iter(here), iter(away)
    return [next(here) if s else next(away) for s in stored]


def _embed_unit(run: _Run, spec):
    """Unit of work: ``spec``'s embeddings of every split, its row of the models table and its
    head-regime outcomes ``{seed: arrays}``; in regime "top" it also stores the trunk's
    outputs that the model's fine-tuning units read (unless every seed's run is stored)."""
    config, cache = run.config, run.cache
    splits, model = _splits(run), _model_of(run, spec)
    model_parts = _model_parts(run, spec)
    features = {split: _features(cache, model_parts, split, model, getattr(splits, split).inputs, config)
                for split in SPLITS}
    model_row = _model_row(cache, {k: v for k, v in model_parts.items() if k != "data"}, spec, model)
    if config.full_regime and config.fine_tune == "top" and not (cache.enabled and all(
            cache.path("top_transfer", _transfer_parts(config, model_parts, seed, "top"), ".npz",
                       CODE["fine_tune"]).is_file() for seed in config.seeds)):
        _trunk_of(run, spec, model).get()
    heads = _head_runs(config, cache, lambda seed: _transfer_parts(config, model_parts, seed, "head"), features,
                       splits, spec.name)
    return features, model_row, heads


def _trunk_of(run: _Run, spec, model: _LazyModel) -> _TrunkOutputs:
    """``spec``'s trunk outputs, shared by the model's units run in this process."""
    state = _local(run)
    if "trunk" not in state:
        state["trunk"] = _TrunkOutputs(run.cache, {**_model_parts(run, spec), "trunk": "top-split"}, model,
                                       _splits(run), run.config)
    return state["trunk"]


def _fine_tune_unit(run: _Run, spec, seed: int) -> dict:
    """Unit of work: the outcome of ``spec``'s fine-tuning (``config.fine_tune``) with ``seed``."""
    config, cache = run.config, run.cache
    splits, model = _splits(run), _model_of(run, spec)
    model_parts = _model_parts(run, spec)
    parts = _transfer_parts(config, model_parts, seed, config.fine_tune)
    if config.fine_tune == "top":
        return _top_run(config, cache, parts, model, _trunk_of(run, spec, model), splits, seed, spec.name)
    return _full_run(config, cache, parts, model, splits, seed, spec.name)


def _features(cache, model_parts, split, model: _LazyModel, inputs, config) -> dict:
    from nclib.features import cached_extract

    return cached_extract(cache, _split_parts(model_parts, split), model.get, inputs,
                          batch_size=config.feature_batch_size, desc=f"features {model_parts['model']} {split}")


# ----------------------------------------------------------------------------- registry
def get_experiment(name: str, profile: str | None = None) -> ExperimentConfig:
    """The configuration of a registered experiment (:data:`~nclib.experiments.runner.EXPERIMENTS`) at ``profile``.

    Parameters
    ----------
    name : str
    profile : {"quick", "paper"}, optional
        Default: ``$NCLIB_PROFILE`` (``quick``).

    Raises
    ------
    ValueError
        Unknown experiment or profile.
    ImportError
        The experiment's module (or one of its optional dependencies) is not available.

    Examples
    --------
    >>> get_experiment("toy", "quick").name
    'toy'
    """
    from nclib.config import profile as default_profile

    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}; known: {sorted(EXPERIMENTS)}")
    profile = default_profile() if profile is None else profile
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    factory = EXPERIMENTS[name]
    if isinstance(factory, str):
        module_name, _, function_name = factory.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), function_name)
        except (ImportError, AttributeError) as error:
            raise ImportError(f"experiment {name!r} is not available ({factory}): {error}") from error
    config = factory(profile)
    if not isinstance(config, ExperimentConfig):
        raise TypeError(f"{name!r} factory returned {type(config).__name__}, not an ExperimentConfig")
    return config


__all__ = ["COLUMNS", "CSV_COLUMNS", "EXPERIMENTS", "FINE_TUNES", "REGIMES", "ExperimentConfig", "Results",
           "data_fingerprint", "feature_key_parts", "get_experiment", "model_key_parts", "run_experiment",
           "run_key_parts"]
