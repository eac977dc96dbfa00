"""Transfer learning, both regimes of the paper, and the metrics they are judged by.

Suresh, Abrol and Thakur (Section 4) transfer every pre-trained model to the target task
in two ways and report the mean test performance over seeds:

(a) **head** (:func:`head_transfer`): a new linear layer on a frozen backbone. Since the
    backbone is frozen, its embeddings of the target images never change, so the head is
    trained on cached embeddings: the same computation without repeating the forward
    passes every epoch.
(b) **full** (:func:`full_transfer`): the source classifier is replaced by a new linear
    layer and every parameter is fine-tuned.

Regime **top** (:func:`top_transfer`, not in the paper) is the affordable stand-in for
(b) on a CPU: the network's last stage (its ``top``, see :mod:`nclib.models`) is
fine-tuned together with a new linear head, on cached outputs of the frozen earlier
stages (``trunk``). Unlike the head regime the representation still changes, at a small
fraction of the cost of full fine-tuning; results are labelled ``"top"``, never ``"full"``.

Both use Adam, cross-entropy, a fixed number of epochs and keep the checkpoint with the
best validation metric (the first epoch reaching it); the test metric is that
checkpoint's. With ``patience=P`` a run instead stops once its validation metric has not
improved for ``P`` epochs (``epochs`` is then a cap), and :func:`late_peaks` /
:func:`check_converged` flag runs that were still improving when they hit the cap.
:func:`nclib.convex_head.convex_head_transfer` solves the head regime exactly instead
(L2-penalised logistic regression to convergence, no seed). :func:`train_classifier` is
the same loop for pre-training on a source task.
:func:`head_transfer_seeds` trains the heads of several seeds at once (one batched
linear map, :class:`nclib.train.LinearHeads`), which makes the head regime cheap enough
to run many seeds on a CPU. Every regime trains through the one engine,
:func:`nclib.train.fit` (Adam, autograd, checkpointing and callbacks).

**Head initialisation.** The paper uses the same head initialisation for every model
within a seed. :func:`new_head` draws the weights and bias of a ``Linear(D, C)`` from
PyTorch's default distribution for linear layers, U(-1/sqrt(D), 1/sqrt(D)), with a
generator seeded by ``seed`` alone. Models of equal embedding width ``D`` therefore start
from identical heads; for different widths "the same" can only mean the same generator
seed (the first ``C * D`` draws of one stream, scaled by each width's bound). The order of
the minibatches is also drawn from ``seed`` alone, so within a seed every model sees the
training examples in the same order.

The chapters "The image experiment" and "The audio experiment" measure transfer with
these regimes (through :func:`nclib.experiments.runner.run_experiment`); "The caveats,
measured" compares them.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
import torch
from torch import nn

from nclib.logistic import _as_labels as _checked_labels
from nclib.progress import progress
from nclib.train import LinearHeads, Progress, deterministic_algorithms, device_of, fit

METRICS = ("accuracy", "auroc")
EVAL_BATCH_SIZE = 1024


# ----------------------------------------------------------------------------- metrics
def score_predictions(metric: str, labels, probs) -> float:
    """Score predicted class probabilities against the true labels.

    Parameters
    ----------
    metric : {"accuracy", "auroc"}
        ``accuracy``: fraction of examples whose most probable class is the label.
        ``auroc``: area under the ROC curve of a binary task, ranking examples by the
        probability of the positive class (column 1), as
        :func:`sklearn.metrics.roc_auc_score`.
    labels : array-like of shape (N,)
        Integer class indices.
    probs : array-like of shape (N, C)
        Predicted class probabilities (or any scores monotone in them).

    Returns
    -------
    float
        In [0, 1]; larger is better.

    Examples
    --------
    >>> score_predictions("accuracy", [0, 1, 1], [[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    0.666...
    >>> score_predictions("auroc", [0, 0, 1, 1], [[0.9, 0.1], [0.6, 0.4], [0.65, 0.35], [0.2, 0.8]])
    0.75
    """
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {METRICS}")
    labels = np.asarray(labels)
    probs = np.asarray(probs, dtype=np.float64)
    if labels.ndim != 1 or probs.ndim != 2 or len(labels) != len(probs):
        raise ValueError(f"labels {labels.shape} and probs {probs.shape} must be (N,) and (N, C)")
    if len(labels) == 0:
        raise ValueError("cannot score an empty set of predictions")
    if not np.isfinite(probs).all():
        raise ValueError("predicted probabilities contain NaN or inf (did training diverge?)")
    if metric == "accuracy":
        return float(np.mean(probs.argmax(axis=1) == labels))
    if probs.shape[1] != 2:
        raise ValueError(f"auroc is defined here for binary tasks; got {probs.shape[1]} classes")
    present = set(np.unique(labels).tolist())
    if present != {0, 1}:
        raise ValueError(f"auroc needs both classes 0 and 1 among the labels; found {sorted(present)}")
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, probs[:, 1]))


# ----------------------------------------------------------------------------- results
@dataclass
class TrainingResult:
    """Outcome of one training run.

    Attributes
    ----------
    state : dict of str to torch.Tensor
        ``state_dict`` of the best-on-validation checkpoint (copied tensors).
    history : pandas.DataFrame
        One row per epoch: ``epoch`` (from 1), ``train_loss`` (mean cross-entropy over
        the epoch's examples), ``val_metric``.
    best_epoch : int
        Epoch of the kept checkpoint (the first one reaching the best validation metric).
    best_val_metric : float
    test_metric : float or None
        The kept checkpoint's metric on the test split (``None`` for pre-training).
    epochs_run : int or None
        Epochs actually trained (``len(history)``): the cap, or fewer after early stopping.
    stopped_early : bool
        The patience criterion was met (the validation metric had not improved for
        ``patience`` epochs); ``False`` for fixed-epoch runs.
    test_probs : ndarray of shape (N_test, C), float32, or None
        The kept checkpoint's test probabilities (``test_metric`` is computed from them).
    """

    state: dict
    history: pd.DataFrame
    best_epoch: int
    best_val_metric: float
    test_metric: float | None = None
    epochs_run: int | None = None
    stopped_early: bool = False
    test_probs: np.ndarray | None = None


# ----------------------------------------------------------------------------- checks
def _check_settings(epochs, lr, batch_size, seed, metric, patience=None) -> None:
    if patience is not None and (not isinstance(patience, (int, np.integer)) or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    if not isinstance(epochs, (int, np.integer)) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(lr, (int, float)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {METRICS}")


def _as_labels(labels, num_classes: int, name: str) -> np.ndarray:
    return _checked_labels(labels, num_classes, None, name)


def _as_inputs(inputs, num_labels: int, name: str) -> torch.Tensor:
    array = np.ascontiguousarray(inputs, dtype=np.float32)
    if array.ndim < 2 or len(array) != num_labels:
        raise ValueError(f"{name} must have shape (N, ...) with N = {num_labels}, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf")
    return torch.from_numpy(array)


def _check_metric_data(metric: str, num_classes: int, val_labels: np.ndarray) -> None:
    if metric == "auroc":
        if num_classes != 2:
            raise ValueError(f"auroc needs a binary task, got {num_classes} classes")
        if len(np.unique(val_labels)) < 2:
            raise ValueError("auroc needs both classes in the validation split")


# ----------------------------------------------------------------------------- evaluation
def predict_probs(network: nn.Module, inputs, batch_size: int = EVAL_BATCH_SIZE) -> np.ndarray:
    """Softmax of ``network(inputs)`` in eval mode, without gradients, batched.

    Parameters
    ----------
    network : torch.nn.Module
        Maps (B, ...) inputs to (B, C) logits.
    inputs : torch.Tensor or ndarray of shape (N, ...)
    batch_size : int

    Returns
    -------
    ndarray of shape (N, C), float32

    Examples
    --------
    >>> layer = nn.Linear(2, 3)
    >>> predict_probs(layer, np.zeros((5, 2), np.float32)).sum(axis=1).round(5).tolist()
    [1.0, 1.0, 1.0, 1.0, 1.0]
    """
    inputs = torch.as_tensor(np.asarray(inputs, dtype=np.float32)) if not torch.is_tensor(inputs) else inputs
    device = device_of(network)
    was_training = network.training
    network.eval()
    try:
        with torch.no_grad():
            chunks = [torch.softmax(network(inputs[start:start + batch_size].to(device)), dim=1).cpu()
                      for start in range(0, len(inputs), batch_size)]
    finally:
        network.train(was_training)
    return torch.cat(chunks).numpy().astype(np.float32, copy=False)


# ----------------------------------------------------------------------------- public API
def new_head(embedding_dim: int, num_classes: int, seed: int) -> nn.Linear:
    """A fresh ``Linear(embedding_dim, num_classes)`` whose initialisation depends only on ``seed``.

    Weights and bias are drawn from U(-1/sqrt(D), 1/sqrt(D)), PyTorch's default range for
    linear layers, with a ``torch.Generator`` seeded by ``seed``; the global random state
    is neither read nor changed. Equal widths give identical heads (see the module notes).

    Parameters
    ----------
    embedding_dim : int
        D, the width of the embedding the head reads.
    num_classes : int
        C, the number of target classes.
    seed : int

    Returns
    -------
    torch.nn.Linear

    Examples
    --------
    >>> a, b = new_head(4, 2, seed=3), new_head(4, 2, seed=3)
    >>> bool(torch.equal(a.weight, b.weight)), bool(torch.equal(a.weight, new_head(4, 2, seed=4).weight))
    (True, False)
    """
    if embedding_dim < 1 or num_classes < 2:
        raise ValueError(f"need embedding_dim >= 1 and num_classes >= 2, got {embedding_dim}, {num_classes}")
    generator = torch.Generator().manual_seed(int(seed))
    bound = 1.0 / math.sqrt(embedding_dim)
    head = torch.nn.utils.skip_init(nn.Linear, embedding_dim, num_classes)  # no global draws
    with torch.no_grad():
        head.weight.copy_(torch.rand(num_classes, embedding_dim, generator=generator) * 2 * bound - bound)
        head.bias.copy_(torch.rand(num_classes, generator=generator) * 2 * bound - bound)
    return head


def train_classifier(model: nn.Module, train, val, *, epochs: int, lr: float, batch_size: int,
                     seed: int, metric: str = "accuracy", desc: str = "train",
                     patience: int | None = None) -> TrainingResult:
    """Train every parameter of ``model`` with Adam and cross-entropy; keep the best epoch.

    Used for pre-training on a source task and by :func:`full_transfer` and
    :func:`top_transfer`; the loop is :func:`nclib.train.fit`. The minibatch order comes
    from a ``torch.Generator`` seeded with ``seed``. Dropout and other random layers draw
    from torch's global generator, which :func:`nclib.train.fit` forks
    (:func:`torch.random.fork_rng`) and sets from a generator seeded with ``seed``, so runs
    repeat exactly and the caller's random state is left as it was. Training runs under
    :func:`~nclib.train.deterministic_algorithms` (restored after).

    Parameters
    ----------
    model : torch.nn.Module
        Maps (B, ...) inputs to (B, C) logits. Trained in place; on return it holds the
        best-on-validation weights.
    train, val : nclib.data.base.Dataset
        ``inputs`` of shape (N, ...) float32 and ``labels`` of shape (N,) in ``range(C)``;
        C is ``len(train.classes)``.
    epochs, lr, batch_size, seed : int, float, int, int
        ``epochs`` is the number of epochs, or their cap when ``patience`` is given.
    metric : {"accuracy", "auroc"}
        Validation metric that picks the checkpoint.
    desc : str
        Label of the progress bar.
    patience : int, optional
        Stop once the validation metric has not improved (strictly) for ``patience``
        epochs. ``None`` (default): the paper's fixed number of epochs.

    Returns
    -------
    TrainingResult
        ``test_metric`` and ``test_probs`` are ``None``; ``epochs_run`` and
        ``stopped_early`` say where training ended.

    Examples
    --------
    >>> from nclib.data.base import Dataset
    >>> rng = np.random.default_rng(0)
    >>> inputs = rng.normal(size=(60, 2)).astype(np.float32)
    >>> labels = (inputs[:, 0] > 0).astype(np.int64)
    >>> data = Dataset(inputs, labels, ["neg", "pos"])
    >>> result = train_classifier(nn.Linear(2, 2), data, data, epochs=5, lr=0.1, batch_size=16, seed=0)
    >>> result.best_val_metric > 0.9, list(result.history.columns)
    (True, ['epoch', 'train_loss', 'val_metric'])
    >>> stopped = train_classifier(nn.Linear(2, 2), data, data, epochs=50, lr=0.1, batch_size=16, seed=0,
    ...                            patience=3)
    >>> stopped.stopped_early, stopped.epochs_run == stopped.best_epoch + 3
    (True, True)
    """
    _check_settings(epochs, lr, batch_size, seed, metric, patience)
    num_classes = len(train.classes)
    train_labels = _as_labels(train.labels, num_classes, "train labels")
    val_labels = _as_labels(val.labels, num_classes, "validation labels")
    _check_metric_data(metric, num_classes, val_labels)
    train_inputs = _as_inputs(train.inputs, len(train_labels), "train inputs")
    val_inputs = _as_inputs(val.inputs, len(val_labels), "validation inputs")

    def validate(network):
        return [score_predictions(metric, val_labels, predict_probs(network, val_inputs))]

    run = fit(model, train_inputs, train_labels, epochs=epochs, lr=lr, batch_size=batch_size, seeds=[seed],
              validate=validate, patience=patience, callbacks=[Progress(desc)], desc=desc)
    return TrainingResult(run.state, run.histories[0], int(run.best_epoch[0]), float(run.best_metric[0]),
                          epochs_run=int(run.epochs_run[0]), stopped_early=bool(run.stopped_early[0]))


def head_transfer(train_features, train_labels, val_features, val_labels, test_features, test_labels,
                  *, num_classes: int, epochs: int, lr: float = 1e-4, batch_size: int = 32, seed: int,
                  metric: str = "accuracy", desc: str = "head", patience: int | None = None) -> TrainingResult:
    """Regime (a): train a new linear head on frozen, cached embeddings.

    Parameters
    ----------
    train_features, val_features, test_features : ndarray of shape (N_split, D)
        Embeddings of each split by the frozen backbone.
    train_labels, val_labels, test_labels : ndarray of shape (N_split,)
        Integer labels in ``range(num_classes)``.
    num_classes : int
    epochs : int
        The paper trains 250 epochs.
    lr : float
        Adam learning rate (paper: 1e-4).
    batch_size : int
        Paper: 32.
    seed : int
        Fixes the head initialisation (:func:`new_head`) and the minibatch order.
    metric : {"accuracy", "auroc"}
    desc : str
        Label of the progress bar.
    patience : int, optional
        Stop once the validation metric has not improved for ``patience`` epochs
        (``epochs`` is then a cap); ``None``: the paper's fixed epochs.

    Returns
    -------
    TrainingResult
        ``state`` holds the head's ``weight`` (C, D) and ``bias`` (C,) of the best epoch;
        ``test_metric`` is that head's metric on the test split, ``test_probs`` (N_test, C)
        its test probabilities.

    See Also
    --------
    nclib.convex_head.convex_head_transfer : the same regime solved to convergence.
    head_transfer_seeds : the same for several seeds at once (faster).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 30)
    >>> features = rng.normal(size=(60, 3)).astype(np.float32) + 4 * labels[:, None] - 2
    >>> result = head_transfer(features, labels, features, labels, features, labels,
    ...                        num_classes=2, epochs=3, lr=0.05, seed=0)
    >>> result.test_metric
    1.0
    """
    return head_transfer_seeds(train_features, train_labels, val_features, val_labels, test_features,
                               test_labels, num_classes=num_classes, epochs=epochs, lr=lr,
                               batch_size=batch_size, seeds=[seed], metric=metric, desc=desc,
                               patience=patience)[0]


def head_transfer_seeds(train_features, train_labels, val_features, val_labels, test_features, test_labels,
                        *, num_classes: int, epochs: int, lr: float = 1e-4, batch_size: int = 32, seeds,
                        metric: str = "accuracy", desc: str = "head", device=None,
                        patience: int | None = None) -> list[TrainingResult]:
    """:func:`head_transfer` for several seeds at once, one independent head per seed.

    The heads of all seeds are trained together as one batched linear map
    (:class:`nclib.train.LinearHeads`: weight (S, D, C), bias (S, C)) by
    :func:`nclib.train.fit`, one :class:`torch.optim.Adam` for all of them (Adam is
    elementwise, so the seeds stay independent), so a step costs a few tensor operations
    whatever the number of seeds. Each seed keeps its own
    initialisation (:func:`new_head`), its own minibatch order and its own best
    checkpoint: the result for a seed does not depend on the other seeds (up to float
    rounding of the batched products). With ``patience`` each seed stops on its own: its
    history ends and its checkpoint is frozen when it stops (the batch keeps stepping it
    until every seed has stopped, which changes nothing it returns).

    Parameters
    ----------
    train_features, train_labels, val_features, val_labels, test_features, test_labels
        As in :func:`head_transfer`.
    num_classes, epochs, lr, batch_size, metric, desc, patience
        As in :func:`head_transfer`.
    seeds : sequence of int
        Distinct non-negative seeds.
    device : str or torch.device, optional
        Where the heads are trained (default: CPU). Minibatch orders are drawn on the
        CPU, so a seed visits the examples in the same order on every device.

    Returns
    -------
    list of TrainingResult
        One per seed, in the order of ``seeds``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 30)
    >>> features = rng.normal(size=(60, 3)).astype(np.float32) + 4 * labels[:, None] - 2
    >>> results = head_transfer_seeds(features, labels, features, labels, features, labels,
    ...                               num_classes=2, epochs=3, lr=0.05, seeds=[0, 1])
    >>> [r.test_metric for r in results]
    [1.0, 1.0]
    """
    seeds = [int(seed) for seed in seeds]
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and non-empty, got {seeds}")
    for seed in seeds:
        _check_settings(epochs, lr, batch_size, seed, metric, patience)
    splits = {}
    for name, features, labels in (("train", train_features, train_labels),
                                   ("validation", val_features, val_labels),
                                   ("test", test_features, test_labels)):
        labels = _as_labels(labels, num_classes, f"{name} labels")
        features = _as_inputs(features, len(labels), f"{name} features")
        if features.ndim != 2:
            raise ValueError(f"{name} features must be 2-D (N, D), got shape {tuple(features.shape)}")
        splits[name] = (features, labels)
    widths = {features.shape[1] for features, _ in splits.values()}
    if len(widths) != 1:
        raise ValueError(f"train, validation and test features differ in width: {sorted(widths)}")
    _check_metric_data(metric, num_classes, splits["validation"][1])
    width = widths.pop()
    heads = [new_head(width, num_classes, seed) for seed in seeds]
    device = torch.device("cpu" if device is None else device)
    (train_features, train_labels), (val_features, val_labels), (test_features, test_labels) = (
        (features.to(device), labels) for features, labels in splits.values())
    batched = LinearHeads.from_linear(heads).to(device)

    def validate(network):
        with torch.no_grad():
            probs = torch.cat([torch.softmax(network(val_features[start:start + EVAL_BATCH_SIZE]), dim=2)
                               for start in range(0, len(val_features), EVAL_BATCH_SIZE)], dim=1).cpu().numpy()
        return [score_predictions(metric, val_labels, seed_probs) for seed_probs in probs]

    run = fit(batched, train_features, train_labels, epochs=epochs, lr=lr, batch_size=batch_size, seeds=seeds,
              validate=validate, patience=patience, callbacks=[Progress(desc)], desc=desc, deterministic=False)
    results = []
    for k, head in enumerate(heads):
        state = LinearHeads.linear_state(run.state, k)
        head.load_state_dict(state)
        head.to(device)
        test_probs = predict_probs(head, test_features)
        results.append(TrainingResult(state, run.histories[k], int(run.best_epoch[k]), float(run.best_metric[k]),
                                      score_predictions(metric, test_labels, test_probs),
                                      epochs_run=int(run.epochs_run[k]), stopped_early=bool(run.stopped_early[k]),
                                      test_probs=test_probs))
    return results


def full_transfer(model: nn.Module, splits, *, epochs: int, lr: float = 1e-4, batch_size: int = 32,
                  seed: int, metric: str = "accuracy", desc: str = "full",
                  patience: int | None = None) -> TrainingResult:
    """Regime (b): replace ``model.classifier`` by a new head and fine-tune every parameter.

    Parameters
    ----------
    model : torch.nn.Module
        A backbone of the zoo contract (``embed``, ``classifier``, ``embedding_dim``). It is
        **modified in place**: its classifier is replaced and all weights trained; pass a
        fresh copy of the pre-trained model for every seed.
    splits : nclib.data.base.Splits
        ``train``, ``val`` and ``test`` datasets of the target task.
    epochs, lr, batch_size, seed, metric, desc, patience
        As in :func:`head_transfer`; the new head is :func:`new_head` with this seed, the
        same initialisation as the head regime's. Training runs under
        :func:`~nclib.train.deterministic_algorithms` (see :func:`train_classifier`).

    Returns
    -------
    TrainingResult
        ``state`` is the whole model's best ``state_dict``; ``test_metric`` its test metric,
        ``test_probs`` (N_test, C) its test probabilities.

    Examples
    --------
    >>> from nclib.experiments.toy import toy_splits, ToyMlp
    >>> result = full_transfer(ToyMlp(hidden=8, embedding_dim=4, num_classes=5), toy_splits(),
    ...                        epochs=2, lr=0.01, batch_size=32, seed=0)
    >>> 0.0 <= result.test_metric <= 1.0, len(result.history)
    (True, 2)
    """
    for attribute in ("classifier", "embedding_dim"):
        if not hasattr(model, attribute):
            raise ValueError(f"model has no {attribute!r}; see the model contract in nclib.models")
    num_classes = len(splits.train.classes)
    model.classifier = new_head(int(model.embedding_dim), num_classes, seed).to(device_of(model))
    result = train_classifier(model, splits.train, splits.val, epochs=epochs, lr=lr,
                              batch_size=batch_size, seed=seed, metric=metric, desc=desc, patience=patience)
    test_labels = _as_labels(splits.test.labels, num_classes, "test labels")
    test_inputs = _as_inputs(splits.test.inputs, len(test_labels), "test inputs")
    result.test_probs = predict_probs(model, test_inputs)
    result.test_metric = score_predictions(metric, test_labels, result.test_probs)
    return result


# ----------------------------------------------------------------------------- regime "top"
TRUNK_SPLITS = ("train", "val", "test")


def _check_top_contract(model) -> None:
    missing = [name for name in ("trunk", "top", "embedding_dim") if not hasattr(model, name)]
    if missing:
        raise ValueError(f"{type(model).__name__} has no {', '.join(map(repr, missing))}: top fine-tuning "
                         "needs the optional trunk/top split of the model contract (nclib.models)")
    if not isinstance(model.top, nn.Module):
        raise ValueError(f"{type(model).__name__}.top must be a torch.nn.Module, got {type(model.top).__name__}")


def _trunk_outputs(model, splits, batch_size: int, desc: str) -> dict:
    _check_top_contract(model)
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    device = device_of(model)
    was_training = model.training
    model.eval()
    outputs = {}
    try:
        with torch.no_grad():
            for name in progress(TRUNK_SPLITS, desc=desc):
                data = getattr(splits, name)
                inputs = _as_inputs(data.inputs, len(data.labels), f"{name} inputs")
                chunks = [model.trunk(inputs[start:start + batch_size].to(device)).float().cpu()
                          for start in range(0, len(inputs), batch_size)]
                outputs[name] = torch.cat(chunks).numpy()
    finally:
        model.train(was_training)
    return outputs


def trunk_outputs(model: nn.Module, splits, *, batch_size: int = 256, desc: str = "trunk") -> dict:
    """The frozen trunk's outputs for the train, val and test splits, computed once.

    ``model.trunk`` runs in eval mode (batch norm uses its running statistics), without
    gradients, in batches; the model's train/eval mode is restored afterwards.

    Parameters
    ----------
    model : torch.nn.Module
        Follows the optional ``trunk`` / ``top`` split of the zoo contract
        (:mod:`nclib.models`).
    splits : nclib.data.base.Splits
        ``train``, ``val`` and ``test`` datasets of the target task.
    batch_size : int
        Examples per forward pass (memory only).
    desc : str
        Label of the progress bar.

    Returns
    -------
    dict of str to ndarray
        ``"train"``, ``"val"``, ``"test"`` -> float32 arrays of shape (N_split, ...), the
        trunk's output shape per example.

    Raises
    ------
    ValueError
        If the model has no ``trunk`` / ``top``.

    Examples
    --------
    >>> from nclib.experiments.toy import toy_splits
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.trunk, self.embedding_dim = nn.Linear(8, 6), 4
    ...         self.top = nn.Sequential(nn.Linear(6, 4), nn.Tanh())
    >>> outputs = trunk_outputs(Net(), toy_splits())
    >>> {name: array.shape for name, array in outputs.items()}
    {'train': (90, 6), 'val': (45, 6), 'test': (45, 6)}
    """
    return _trunk_outputs(model, splits, batch_size, desc)


class TopNetwork(nn.Module):
    """``classifier(top(h))``: a network's last stage with a new head, reading trunk outputs.

    Parameters
    ----------
    top : torch.nn.Module
        Maps trunk outputs (B, ...) to embeddings (B, D).
    classifier : torch.nn.Linear
        ``Linear(D, C)``.

    Examples
    --------
    >>> net = TopNetwork(nn.Sequential(nn.Linear(6, 4), nn.Tanh()), new_head(4, 3, seed=0))
    >>> net(torch.zeros(2, 6)).shape, net.embed(torch.zeros(2, 6)).shape
    (torch.Size([2, 3]), torch.Size([2, 4]))
    """

    def __init__(self, top: nn.Module, classifier: nn.Linear):
        super().__init__()
        self.top = top
        self.classifier = classifier

    def embed(self, h: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, D) of trunk outputs (B, ...)."""
        return self.top(h)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Logits (B, C) of trunk outputs (B, ...)."""
        return self.classifier(self.top(h))


def top_transfer(model: nn.Module, splits, *, epochs: int, lr: float = 1e-4, batch_size: int = 32,
                 seed: int, metric: str = "accuracy", desc: str = "top", patience: int | None = None,
                 trunk_outputs: Mapping | None = None) -> TrainingResult:
    """Regime "top": fine-tune a copy of ``model.top`` and a new head on the frozen trunk's outputs.

    The model's frozen part (``model.trunk``: front end and every stage before the last)
    is run once per split (:func:`trunk_outputs`, eval mode, no gradients); a **copy** of
    ``model.top`` (the last stage through pooling to the embedding) and a new head
    (:func:`new_head` with ``seed``, as in the other regimes) are then trained together as a
    :class:`TopNetwork` by :func:`train_classifier`: Adam, cross-entropy, the best
    checkpoint on the validation metric, optional early stopping with ``patience`` under
    the ``epochs`` cap, deterministic algorithms, the minibatch order (and any dropout)
    from ``seed``. Batch-norm layers inside the top train normally (batch statistics in
    training, running statistics updated with their own momentum, used for validation
    and test). The model itself is not modified, so one model serves every seed.

    This is not the paper's regime (b), which fine-tunes every parameter
    (:func:`full_transfer`); it changes the representation (unlike the head regime) at a
    fraction of the cost, and its results are labelled ``"top"``.

    Parameters
    ----------
    model : torch.nn.Module
        A backbone with the optional ``trunk(x)`` / ``top`` split of the zoo contract
        (:mod:`nclib.models`) and ``embedding_dim``.
    splits : nclib.data.base.Splits
        ``train``, ``val`` and ``test`` datasets of the target task (their labels and
        classes are always read; their inputs only when ``trunk_outputs`` is None).
    epochs, lr, batch_size, seed, metric, desc, patience
        As in :func:`full_transfer`.
    trunk_outputs : mapping, optional
        Precomputed :func:`trunk_outputs` of this model and these splits (``"train"``,
        ``"val"``, ``"test"`` -> arrays (N_split, ...)), to share them between seeds.

    Returns
    -------
    TrainingResult
        ``state`` is the best :class:`TopNetwork` ``state_dict`` (``top.*`` and
        ``classifier.*``); ``test_metric`` and ``test_probs`` (N_test, C) its test results.

    Raises
    ------
    ValueError
        If the model has no trunk/top split, ``trunk_outputs`` lacks a split or does not
        match its labels, or a setting is invalid.

    Examples
    --------
    >>> from nclib.experiments.toy import toy_splits
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.trunk, self.embedding_dim = nn.Linear(8, 6), 4
    ...         self.top = nn.Sequential(nn.Linear(6, 4), nn.Tanh())
    >>> model, splits = Net(), toy_splits()
    >>> cached = trunk_outputs(model, splits)
    >>> result = top_transfer(model, splits, epochs=30, lr=0.01, seed=0, patience=3, trunk_outputs=cached)
    >>> 0.0 <= result.test_metric <= 1.0, result.test_probs.shape, sorted(result.state)[0]
    (True, (45, 3), 'classifier.bias')
    """
    _check_top_contract(model)
    _check_settings(epochs, lr, batch_size, seed, metric, patience)
    if trunk_outputs is None:
        trunk_outputs = _trunk_outputs(model, splits, EVAL_BATCH_SIZE, f"{desc} trunk")
    elif not isinstance(trunk_outputs, Mapping) or set(TRUNK_SPLITS) - set(trunk_outputs):
        raise ValueError(f"trunk_outputs must map each of {TRUNK_SPLITS} to an array")
    num_classes = len(splits.train.classes)
    data = {}
    for name in TRUNK_SPLITS:
        part = getattr(splits, name)
        labels = _as_labels(part.labels, num_classes, f"{name} labels")
        outputs = np.asarray(trunk_outputs[name])
        if outputs.ndim < 2 or len(outputs) != len(labels):
            raise ValueError(f"trunk_outputs[{name!r}] has shape {outputs.shape}; expected ({len(labels)}, ...) "
                             f"for the {name} split")
        data[name] = _TrunkData(outputs, labels, list(splits.train.classes))
    device = device_of(model)
    top = copy.deepcopy(model.top).to(device)
    top.requires_grad_(True)
    network = TopNetwork(top, new_head(int(model.embedding_dim), num_classes, seed).to(device))
    result = train_classifier(network, data["train"], data["val"], epochs=epochs, lr=lr, batch_size=batch_size,
                              seed=seed, metric=metric, desc=desc, patience=patience)
    test_inputs = _as_inputs(data["test"].inputs, len(data["test"].labels), "test trunk outputs")
    result.test_probs = predict_probs(network, test_inputs)
    result.test_metric = score_predictions(metric, data["test"].labels, result.test_probs)
    return result


@dataclass
class _TrunkData:
    """A split's trunk outputs as ``train_classifier`` reads a dataset."""

    inputs: np.ndarray
    labels: np.ndarray
    classes: list


# ----------------------------------------------------------------------------- convergence guard
RUN_COLUMNS = ("model", "regime", "seed")


class NotConvergedError(ValueError):
    """Too many transfer runs were still improving when they stopped (see :func:`check_converged`).

    Attributes
    ----------
    runs : pandas.DataFrame
        The flagged runs (as returned by :func:`check_converged`).
    """

    def __init__(self, message: str, runs: pd.DataFrame):
        super().__init__(message)
        self.runs = runs


def _run_table(runs, cap) -> pd.DataFrame:
    """One row per run: key columns, ``best_epoch``, ``epochs_run``, ``stopped_early`` (+ ``converged``)."""
    if isinstance(runs, Mapping):
        rows = []
        for key, run in runs.items():
            if isinstance(run, Mapping):
                get = run.get
            else:
                def get(name, default=None, run=run):
                    return getattr(run, name, default)
            row = {"run": key}
            for name in ("best_epoch", "epochs_run", "stopped_early", "converged"):
                value = get(name, None)
                row[name] = None if value is None else np.asarray(value).item()
            if row["epochs_run"] is None and get("history", None) is not None:
                row["epochs_run"] = len(get("history"))
            rows.append(row)
        runs = pd.DataFrame(rows, columns=["run", "best_epoch", "epochs_run", "stopped_early", "converged"])
    if not isinstance(runs, pd.DataFrame):
        raise ValueError(f"runs must be a DataFrame or a mapping of run -> result, got {type(runs).__name__}")
    if {"best_epoch", "epochs_run"} <= set(runs.columns):
        table = runs.copy()
    elif {"epoch", "val_metric"} <= set(runs.columns):
        keys = [c for c in RUN_COLUMNS if c in runs.columns]
        if not keys:
            raise ValueError(f"a history table needs run columns among {RUN_COLUMNS}")
        history = runs.sort_values(keys + ["epoch"], kind="stable")
        grouped = history.groupby(keys, sort=True)
        best = history.loc[grouped["val_metric"].idxmax(), keys + ["epoch"]].rename(columns={"epoch": "best_epoch"})
        table = best.merge(grouped["epoch"].max().rename("epochs_run").reset_index(), on=keys)
    else:
        raise ValueError("runs need columns best_epoch and epochs_run (a convergence table) "
                         "or epoch and val_metric (a history table)")
    if "stopped_early" not in table.columns:
        table["stopped_early"] = (pd.to_numeric(table["epochs_run"]) < cap) if cap is not None else False
    return table.reset_index(drop=True)


def late_peaks(runs, tail: float = 0.1, *, cap: int | None = None) -> pd.DataFrame:
    """Runs whose best validation epoch lies in the last ``tail`` of their epochs, at the cap.

    A run that trained its full budget (it did not stop early) and kept a checkpoint from
    its last ``tail`` fraction of epochs (``best_epoch > (1 - tail) * epochs_run``; the
    last epoch always counts) was probably still improving: its test metric understates
    what the model transfers to. Runs without epochs (the convex head) are not listed.

    Parameters
    ----------
    runs : pandas.DataFrame or mapping
        One of: a per-run table with ``best_epoch`` and ``epochs_run`` (and optionally
        ``stopped_early``), such as the ``convergence`` table of
        :class:`nclib.experiments.runner.Results`;
        a history table (``epoch``, ``val_metric`` and run columns among ``model, regime,
        seed``), such as ``Results.history``; or a mapping ``{run: TrainingResult or
        outcome dict}``.
    tail : float
        Fraction of the epochs run, in (0, 1).
    cap : int, optional
        The epoch budget; when ``runs`` does not say whether a run stopped early, runs with
        fewer epochs than ``cap`` count as stopped early. Without it they count as capped.

    Returns
    -------
    pandas.DataFrame
        The late runs: their run columns, ``best_epoch``, ``epochs_run``, ``stopped_early``.

    Examples
    --------
    >>> history = pd.DataFrame({"model": ["a"] * 4 + ["b"] * 4, "epoch": [1, 2, 3, 4] * 2,
    ...                         "val_metric": [.5, .6, .7, .8, .5, .9, .8, .8]})
    >>> late_peaks(history, tail=0.25)[["model", "best_epoch", "epochs_run"]].values.tolist()
    [['a', 4, 4]]
    """
    if not (isinstance(tail, (int, float)) and 0 < tail < 1):
        raise ValueError(f"tail must lie in (0, 1), got {tail!r}")
    table = _run_table(runs, cap)
    best = pd.to_numeric(table["best_epoch"], errors="coerce")
    epochs = pd.to_numeric(table["epochs_run"], errors="coerce")
    stopped = table["stopped_early"].fillna(False).astype(bool)
    late = best.notna() & epochs.notna() & ~stopped & (best > (1 - tail) * epochs)
    keys = [c for c in table.columns if c not in ("best_epoch", "epochs_run", "stopped_early", "converged",
                                                  "l2")]
    keys = [c for c in keys if c in RUN_COLUMNS or c == "run"]
    return table.loc[late, keys + ["best_epoch", "epochs_run", "stopped_early"]].reset_index(drop=True)


def check_converged(runs, *, tail: float = 0.1, max_fraction: float = 0.1, cap: int | None = None) -> pd.DataFrame:
    """Raise :class:`NotConvergedError` when more than ``max_fraction`` of the runs did not converge.

    A run has not converged when it peaks late (:func:`late_peaks`) or, for a run without
    epochs whose solver reports it (the convex head's L-BFGS: ``best_epoch`` missing,
    ``converged`` false), when the solver says so. The fraction is over all runs given.

    Parameters
    ----------
    runs : pandas.DataFrame or mapping
        As in :func:`late_peaks`; a ``converged`` column (missing values: not applicable)
        adds the solver's verdict.
    tail : float
        As in :func:`late_peaks`.
    max_fraction : float
        Largest tolerated fraction of unconverged runs, in [0, 1].
    cap : int, optional
        As in :func:`late_peaks`.

    Returns
    -------
    pandas.DataFrame
        The unconverged runs (empty when all converged), with a ``reason`` column
        (``"late peak"`` or ``"solver"``); returned when within ``max_fraction``.

    Raises
    ------
    NotConvergedError
        A ``ValueError`` naming the runs; its ``runs`` attribute holds the table.

    Examples
    --------
    >>> table = pd.DataFrame({"model": ["a", "b"], "best_epoch": [10, 3], "epochs_run": [10, 8],
    ...                       "stopped_early": [False, True]})
    >>> try:
    ...     check_converged(table)
    ... except NotConvergedError as error:
    ...     print(error)
    1 of 2 runs (50%) did not converge (more than 10% allowed): model=a (late peak: best epoch 10 of 10)
    >>> len(check_converged(table, max_fraction=0.5))
    1
    """
    if not (isinstance(max_fraction, (int, float)) and 0 <= max_fraction <= 1):
        raise ValueError(f"max_fraction must lie in [0, 1], got {max_fraction!r}")
    table = _run_table(runs, cap)
    late = late_peaks(table, tail)
    late["reason"] = "late peak"
    flagged = [late]
    if "converged" in table.columns:
        # the solver's verdict counts for runs without epochs; late peaks already cover the others
        solver = table["converged"].astype("boolean").eq(False) & pd.to_numeric(table["best_epoch"]).isna()
        keys = [c for c in table.columns if c in RUN_COLUMNS or c == "run"]
        failed = table.loc[solver.fillna(False).astype(bool), keys + ["best_epoch", "epochs_run", "stopped_early"]]
        flagged.append(failed.assign(reason="solver"))
    flagged = pd.concat([f for f in flagged if len(f)] or [late], ignore_index=True)
    if len(table) and len(flagged) / len(table) > max_fraction:
        keys = [c for c in flagged.columns if c in RUN_COLUMNS or c == "run"]

        def describe(row) -> str:
            name = ", ".join(f"{k}={row[k]}" for k in keys)
            if row["reason"] == "solver":
                return f"{name} (solver did not converge)"
            return f"{name} (late peak: best epoch {row['best_epoch']} of {row['epochs_run']})"

        names = "; ".join(describe(row) for _, row in flagged.iterrows())
        raise NotConvergedError(
            f"{len(flagged)} of {len(table)} runs ({len(flagged) / len(table):.0%}) did not converge "
            f"(more than {max_fraction:.0%} allowed): {names}", flagged)
    return flagged
