"""Learning curves: a network's accuracy on its training set and on held-out data, epoch by epoch.

Suresh, Abrol and Thakur (Section 5, their Figure 4) explain a score's wrong pick by
overfitting: the model whose *training* embeddings look best fits the training set
faster, but its accuracy on unseen data falls behind. Watching that needs the accuracy
on the training set and on held-out data at every epoch of one fixed, long schedule,
with no early stopping to hide what happens after the best validation epoch:

* :class:`CurveRecorder` -- a :class:`nclib.train.Callback` that evaluates the network
  on named data sets (eval mode, no gradients) at the end of chosen epochs;
* :func:`learning_curves` -- one :func:`nclib.train.fit` (Adam, cross-entropy, the last
  state kept) with a recorder attached, returning the curves as a table;
* :func:`top_learning_curves` -- the same for regime "top" of :mod:`nclib.transfer`: a
  copy of a network's last stage and a new head trained on cached outputs of its frozen
  trunk, on a subset of the training rows.

Evaluation draws no random numbers (no dropout in eval mode), so recording changes
neither the training run nor its reproducibility. :mod:`nclib.overfitting` turns the
curves into train--test gaps and intervals; the chapter "(c) Training data is not
generalisation" uses both.

Reference: S. Suresh, V. Abrol, A. K. Thakur. Towards quantifying the effect of datasets
for benchmarking: a look at transferability estimation. ICASSP 2023 (its caveat (c) and
Figure 4).
"""

from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from nclib.train import Callback, EpochEnd, Run, device_of, fit, minibatches
from nclib.transfer import EVAL_BATCH_SIZE, TRUNK_SPLITS, TopNetwork, new_head

__all__ = ["CurveRecorder", "StopWhenMemorised", "channels_last_for_training", "epochs_for_updates",
           "full_learning_curves", "learning_curves", "record_schedule", "steps_per_epoch", "top_learning_curves"]


def _positive(**values) -> None:
    for name, value in values.items():
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
    """Optimizer steps of one :func:`nclib.train.fit` epoch over ``num_examples`` examples.

    As many as :func:`nclib.train.minibatches` makes: ``ceil(N / batch_size)``, one fewer
    when a trailing batch of fewer than half ``batch_size`` (or of one) joins the
    previous one.

    Examples
    --------
    >>> steps_per_epoch(50, 32), steps_per_epoch(33, 32), steps_per_epoch(1, 32)
    (2, 1, 1)
    >>> steps_per_epoch(100, 32), steps_per_epoch(250, 32)
    (3, 8)
    """
    _positive(num_examples=num_examples, batch_size=batch_size)
    return len(minibatches(torch.arange(int(num_examples)), int(batch_size)))


def epochs_for_updates(num_examples: int, batch_size: int, updates: int) -> int:
    """Epochs of :func:`nclib.train.fit` that make at least ``updates`` optimizer steps.

    An epoch of N examples makes ``len(minibatches(N, batch_size))`` steps (a trailing
    batch of fewer than half ``batch_size`` joins the previous one,
    :func:`nclib.train.minibatches`); so training
    sets of different sizes can be given the same number of Adam updates.

    Parameters
    ----------
    num_examples : int
        N, the training-set size.
    batch_size : int
    updates : int
        Optimizer steps wanted.

    Returns
    -------
    int
        ``ceil(updates / steps per epoch)``.

    Examples
    --------
    >>> epochs_for_updates(50, 32, 120), epochs_for_updates(250, 32, 120)
    (60, 15)
    """
    _positive(num_examples=num_examples, batch_size=batch_size, updates=updates)
    return -(-int(updates) // steps_per_epoch(num_examples, batch_size))


def record_schedule(epochs: int, every: int = 1) -> list[int]:
    """The epochs a curve is recorded at: the first, every ``every``-th, and the last.

    Parameters
    ----------
    epochs : int
        Length of the schedule (>= 1).
    every : int
        Spacing of the recorded epochs (>= 1).

    Returns
    -------
    list of int
        Sorted epochs in ``1..epochs``.

    Examples
    --------
    >>> record_schedule(10, 4)
    [1, 4, 8, 10]
    >>> record_schedule(3)
    [1, 2, 3]
    """
    _positive(epochs=epochs, every=every)
    return sorted({1, int(epochs), *range(int(every), int(epochs) + 1, int(every))})


def _as_pair(name: str, pair) -> tuple[torch.Tensor, np.ndarray]:
    """``(inputs, labels)`` as a float32 tensor (N, ...) and int64 labels (N,), checked."""
    if not isinstance(pair, (tuple, list)) or len(pair) != 2:
        raise ValueError(f"data[{name!r}] must be a pair (inputs, labels)")
    inputs, labels = pair
    labels = np.asarray(labels)
    if labels.ndim != 1 or len(labels) == 0 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"data[{name!r}] labels must be a non-empty 1-D integer array, got shape {labels.shape} "
                         f"and dtype {labels.dtype}")
    inputs = inputs if torch.is_tensor(inputs) else torch.from_numpy(np.ascontiguousarray(inputs, np.float32))
    if inputs.ndim < 2 or len(inputs) != len(labels):
        raise ValueError(f"data[{name!r}] inputs {tuple(inputs.shape)} must be (N, ...) with N = {len(labels)}")
    return inputs.float(), labels.astype(np.int64)


class CurveRecorder(Callback):
    """Accuracy and mean cross-entropy on named data sets at the end of chosen epochs.

    At each recorded epoch the network is switched to eval mode, run without gradients
    on every data set (in batches), and switched back to training mode; the epoch's mean
    training loss (over its minibatches, in training mode) is recorded beside. The epoch
    at which an earlier callback ends training (``run.stop_training``, e.g.
    :class:`StopWhenMemorised`) is recorded too, so a curve always shows where it stopped.

    Parameters
    ----------
    data : mapping of str to (inputs, labels)
        Inputs (N, ...) float32 and integer labels (N,) in ``range(C)``, e.g.
        ``{"train": ..., "val": ..., "test": ...}`` (the training set itself, evaluated
        in eval mode, gives the training accuracy).
    epochs : sequence of int, optional
        Epochs to record (default: every epoch).
    batch_size : int
        Examples per forward pass (memory only).

    Examples
    --------
    >>> x = torch.randn(20, 3)
    >>> y = (x[:, 0] > 0).long().numpy()
    >>> recorder = CurveRecorder({"train": (x, y)}, epochs=[1, 3])
    >>> _ = fit(nn.Linear(3, 2), x, y, epochs=3, lr=0.1, batch_size=5, callbacks=[recorder])
    >>> recorder.table().columns.tolist(), recorder.table()["epoch"].tolist()
    (['epoch', 'train_loss', 'train_accuracy', 'train_cross_entropy'], [1, 3])
    """

    def __init__(self, data: Mapping, epochs: Sequence[int] | None = None, batch_size: int = EVAL_BATCH_SIZE):
        if not isinstance(data, Mapping) or not data:
            raise ValueError("data must be a non-empty mapping of names to (inputs, labels)")
        self.data = {str(name): _as_pair(str(name), pair) for name, pair in data.items()}
        self.epochs = None if epochs is None else {int(e) for e in epochs}
        self.batch_size = int(batch_size)
        self.rows: list[dict] = []

    def on_fit_start(self, run: Run) -> None:
        if getattr(run.network, "seed_axis", False) or len(run.seeds) != 1:
            raise ValueError("CurveRecorder records one ordinary network (one seed, no seed axis)")
        self.rows = []

    def on_epoch_end(self, run: Run, outcome: EpochEnd) -> None:
        if self.epochs is not None and outcome.epoch not in self.epochs and not run.stop_training:
            return
        row = {"epoch": int(outcome.epoch), "train_loss": float(outcome.train_loss[0])}
        for name, (inputs, labels) in self.data.items():
            row[f"{name}_accuracy"], row[f"{name}_cross_entropy"] = _evaluate(run.network, inputs, labels,
                                                                              self.batch_size)
        self.rows.append(row)

    def table(self) -> pd.DataFrame:
        """One row per recorded epoch: ``epoch``, ``train_loss``, then ``<name>_accuracy`` and
        ``<name>_cross_entropy`` for every data set, in the order given."""
        columns = ["epoch", "train_loss"] + [f"{name}_{what}" for name in self.data
                                            for what in ("accuracy", "cross_entropy")]
        return pd.DataFrame(self.rows, columns=columns)


def _evaluate(network: nn.Module, inputs: torch.Tensor, labels: np.ndarray, batch_size: int) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``network`` on (N, ...) inputs, in eval mode without
    gradients, in batches; the network is switched back to training mode afterwards."""
    device = next(network.parameters()).device
    network.eval()
    try:
        with torch.no_grad():
            logits = torch.cat([network(inputs[start:start + batch_size].to(device)).float().cpu()
                                for start in range(0, len(inputs), batch_size)])
    finally:
        network.train()
    targets = torch.from_numpy(labels)
    return (float((logits.argmax(dim=1) == targets).double().mean()),
            float(nn.functional.cross_entropy(logits, targets)))


class StopWhenMemorised(Callback):
    """End training once the network classifies every training example correctly.

    The network has then fitted its training data completely -- what the paper's caveat
    (c) means by a model that overfits -- after as many updates as that network needs
    rather than after a fixed budget; ``epochs`` is only a cap. Checking costs little:
    during each epoch the callback counts the training examples that the forward passes
    of training (training mode, before each update) got wrong, from the logits
    :func:`nclib.train.fit` exposes as ``run.outputs``; only after an epoch with at most
    ``tolerance`` such errors does it evaluate the network on its training set (eval
    mode, no gradients, as :class:`CurveRecorder` does), and it sets
    ``run.stop_training`` if that accuracy is 1. Training-mode passes alone would not do:
    batch statistics and the updates in between make them disagree with the final
    network on a few examples, either way. Put it before a :class:`CurveRecorder` so
    that the recorder sees the stop.

    Parameters
    ----------
    inputs : ndarray or torch.Tensor of shape (N, ...)
        The training inputs, float32.
    labels : ndarray of shape (N,)
        Their integer classes.
    batch_size : int
        Examples per forward pass of the check (memory only).
    tolerance : int, optional
        Training-pass errors in an epoch that still trigger the check (default: 2 % of
        the examples, at least 1). 0 checks only after error-free epochs; ``N`` after
        every epoch.

    Attributes
    ----------
    epoch : int or None
        The epoch after which every training example was classified correctly (None if
        that never happened).
    errors : int
        Training examples the last epoch's training passes got wrong (-1 before the
        first epoch).
    checks : int
        Evaluations of the training set made.

    Examples
    --------
    >>> x = torch.randn(40, 3)
    >>> y = (x[:, 0] > 0).long().numpy()
    >>> stop = StopWhenMemorised(x, y)
    >>> result = fit(nn.Linear(3, 2), x, y, epochs=500, lr=0.1, batch_size=8, callbacks=[stop])
    >>> stop.tolerance, stop.errors <= stop.tolerance, int(result.epochs_run[0]) == stop.epoch < 500
    (1, True, True)
    """

    def __init__(self, inputs, labels, batch_size: int = EVAL_BATCH_SIZE, tolerance: int | None = None):
        self.inputs, self.labels = _as_pair("training", (inputs, labels))
        self.batch_size = int(batch_size)
        self.tolerance = max(1, len(self.labels) // 50) if tolerance is None else int(tolerance)
        if self.tolerance < 0:
            raise ValueError(f"tolerance must be a non-negative number of examples, got {tolerance!r}")
        self.epoch: int | None = None
        self.errors, self.checks, self._wrong = -1, 0, 0

    def on_fit_start(self, run: Run) -> None:
        if getattr(run.network, "seed_axis", False) or len(run.seeds) != 1:
            raise ValueError("StopWhenMemorised watches one ordinary network (one seed, no seed axis)")
        self.epoch, self.errors, self.checks = None, -1, 0

    def on_epoch_start(self, run: Run) -> None:
        self._wrong = 0

    def on_step_end(self, run: Run, losses: torch.Tensor) -> None:
        self._wrong += int((run.outputs.argmax(dim=-1) != run.targets).sum())

    def on_epoch_end(self, run: Run, outcome: EpochEnd) -> None:
        self.errors = self._wrong
        if self.errors > self.tolerance:
            return
        self.checks += 1
        accuracy, _ = _evaluate(run.network, self.inputs, self.labels, self.batch_size)
        if accuracy == 1.0:
            self.epoch = int(outcome.epoch)
            run.stop_training = True

def learning_curves(network: nn.Module, inputs, labels, data: Mapping, *, epochs: int, lr: float,
                    batch_size: int, seed: int, record: Sequence[int] | None = None,
                    until_memorised: bool = False) -> pd.DataFrame:
    """Train ``network`` for a fixed number of epochs and record its curves on ``data``.

    One :func:`nclib.train.fit` run (Adam on the mean cross-entropy, minibatch order from
    ``seed``, deterministic algorithms; no validation, no early stopping, the last state
    kept) with a :class:`CurveRecorder` attached. ``network`` is trained in place. With
    ``until_memorised``, a :class:`StopWhenMemorised` ends the run after the first epoch
    at which the network classifies every training example correctly (``epochs`` is then
    a cap), and that epoch is recorded.

    Parameters
    ----------
    network : torch.nn.Module
        Maps inputs (B, ...) to logits (B, C).
    inputs : ndarray or torch.Tensor of shape (N, ...)
        Training inputs, float32.
    labels : ndarray of shape (N,)
        Integer training labels in ``range(C)``.
    data : mapping of str to (inputs, labels)
        Data sets to record on (see :class:`CurveRecorder`).
    epochs : int
    lr : float
    batch_size : int
    seed : int
        Minibatch order and any random layers (:func:`nclib.train.fit`).
    record : sequence of int, optional
        Epochs to record (default: every epoch; :func:`record_schedule` makes a sparser one).
    until_memorised : bool
        Stop once the training set is memorised (see above).

    Returns
    -------
    pandas.DataFrame
        As :meth:`CurveRecorder.table`. With ``until_memorised``, the last row is the
        epoch training stopped at, and a boolean column ``memorised`` is True on that
        row if the stop was :class:`StopWhenMemorised`'s (False if ``epochs`` ran out).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(40, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> curves = learning_curves(nn.Linear(2, 2), x, y, {"train": (x, y)}, epochs=20, lr=0.1,
    ...                          batch_size=8, seed=0, record=[1, 20])
    >>> curves.shape, bool(curves["train_accuracy"].iloc[-1] > 0.9)
    ((2, 4), True)
    >>> stopped = learning_curves(nn.Linear(2, 2), x, y, {"train": (x, y)}, epochs=500, lr=0.1,
    ...                           batch_size=8, seed=0, record=[500], until_memorised=True)
    >>> int(stopped["epoch"].iloc[-1]) < 500, bool(stopped["memorised"].iloc[-1])
    (True, True)
    """
    recorder = CurveRecorder(data, epochs=record)
    if not until_memorised:
        fit(network, inputs, labels, epochs=epochs, lr=lr, batch_size=batch_size, seeds=[seed],
            callbacks=[recorder], desc="learning curves")
        return recorder.table()
    stop = StopWhenMemorised(inputs, labels)
    fit(network, inputs, labels, epochs=epochs, lr=lr, batch_size=batch_size, seeds=[seed],
        callbacks=[stop, recorder], desc="learning curves")
    table = recorder.table()
    table["memorised"] = table["epoch"] == stop.epoch
    return table


def _train_rows(train_rows, num_train: int) -> np.ndarray:
    """``train_rows`` as distinct integer rows of a training split of ``num_train``, at least two."""
    rows = np.asarray(train_rows)
    if rows.ndim != 1 or len(rows) < 2 or not np.issubdtype(rows.dtype, np.integer):
        raise ValueError(f"train_rows must be at least two integer row indices, got {rows!r}")
    if rows.min() < 0 or rows.max() >= num_train or len(np.unique(rows)) != len(rows):
        raise ValueError(f"train_rows must be distinct rows in range({num_train})")
    return rows


def _check_label_range(data: Mapping, num_classes: int) -> None:
    for name, (_, split_labels) in data.items():
        split_labels = np.asarray(split_labels)
        if split_labels.min() < 0 or split_labels.max() >= num_classes:
            raise ValueError(f"{name} labels must lie in range({num_classes})")


def top_learning_curves(model: nn.Module, trunk_outputs: Mapping, labels: Mapping, train_rows, *, num_classes: int,
                        epochs: int, lr: float, batch_size: int, seed: int,
                        record: Sequence[int] | None = None, until_memorised: bool = False) -> pd.DataFrame:
    """Learning curves of regime "top" (last stage + new head) trained on some training rows.

    A copy of ``model.top`` and :func:`nclib.transfer.new_head` with ``seed`` (as in
    :func:`nclib.transfer.top_transfer`) are trained on the frozen trunk's outputs of
    ``train_rows`` for ``epochs`` epochs, and recorded on those rows (``train``) and on the
    whole validation and test splits. ``model`` is not modified.

    Parameters
    ----------
    model : torch.nn.Module
        A backbone with the trunk/top split of the zoo contract (``top``,
        ``embedding_dim``).
    trunk_outputs : mapping
        ``"train"``, ``"val"``, ``"test"`` -> trunk outputs (N_split, ...)
        (:func:`nclib.transfer.trunk_outputs`).
    labels : mapping
        ``"train"``, ``"val"``, ``"test"`` -> integer labels (N_split,).
    train_rows : array-like of int
        Rows of the training split to train on.
    num_classes : int
    epochs, lr, batch_size, seed, record, until_memorised
        As in :func:`learning_curves`.

    Returns
    -------
    pandas.DataFrame
        ``epoch, train_loss, train_accuracy, train_cross_entropy, val_accuracy,
        val_cross_entropy, test_accuracy, test_cross_entropy``.

    Examples
    --------
    >>> class Net(nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.embedding_dim = 4
    ...         self.top = nn.Sequential(nn.Linear(6, 4), nn.Tanh())
    >>> rng = np.random.default_rng(0)
    >>> outputs = {s: rng.normal(size=(30, 6)).astype(np.float32) for s in ("train", "val", "test")}
    >>> labels = {s: np.arange(30) % 3 for s in outputs}
    >>> curves = top_learning_curves(Net(), outputs, labels, np.arange(12), num_classes=3, epochs=5,
    ...                              lr=0.01, batch_size=4, seed=0)
    >>> len(curves), curves["epoch"].tolist()[-1]
    (5, 5)
    """
    for name in ("top", "embedding_dim"):
        if not hasattr(model, name):
            raise ValueError(f"{type(model).__name__} has no {name!r}: top fine-tuning needs the trunk/top split")
    missing = [s for s in TRUNK_SPLITS if s not in trunk_outputs or s not in labels]
    if missing:
        raise ValueError(f"trunk_outputs and labels need the splits {TRUNK_SPLITS}; missing {missing}")
    rows = _train_rows(train_rows, len(labels["train"]))
    data = {"train": (np.asarray(trunk_outputs["train"])[rows], np.asarray(labels["train"])[rows])}
    data.update({s: (trunk_outputs[s], labels[s]) for s in ("val", "test")})
    _check_label_range(data, num_classes)
    top = copy.deepcopy(model.top)
    top.requires_grad_(True)
    network = TopNetwork(top, new_head(int(model.embedding_dim), int(num_classes), seed).to(device_of(model)))
    return learning_curves(network, *data["train"], data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                           record=record, until_memorised=until_memorised)


def channels_last_for_training(network: nn.Module) -> nn.Module:
    """Store the 4-D weights of ``network`` channels-last (NHWC) if it has grouped convolutions.

    Values, parameters and state-dict keys are unchanged; only the memory layout of the
    convolution kernels differs, and with it that of every activation downstream (a
    convolution whose weight is channels-last writes channels-last outputs). On CPU,
    PyTorch's oneDNN kernels for depthwise (grouped) convolutions -- most of the layers
    of MobileNetV2 and EfficientNet-Lite -- are much faster in that layout, above all
    when computing gradients, while dense convolutions (a ResNet) are slower; so only a
    network with at least one grouped ``nn.Conv2d`` is converted.
    ``benchmarks/full_fine_tuning.py`` measures full fine-tuning of the image zoo in both
    layouts. Results agree to float rounding; training trajectories drift apart slowly,
    as with any change in the order of float operations.

    Parameters
    ----------
    network : torch.nn.Module

    Returns
    -------
    torch.nn.Module
        ``network`` itself, converted in place or left as it was.

    Examples
    --------
    >>> net = nn.Sequential(nn.Conv2d(4, 4, 3, groups=4), nn.Conv2d(4, 2, 1), nn.Flatten())
    >>> x = torch.randn(2, 4, 5, 5)
    >>> before = net(x)
    >>> net = channels_last_for_training(net)
    >>> net[0].weight.is_contiguous(memory_format=torch.channels_last), torch.allclose(net(x), before, atol=1e-6)
    (True, True)
    >>> dense = channels_last_for_training(nn.Conv2d(3, 4, 3))
    >>> dense.weight.is_contiguous(memory_format=torch.channels_last)
    False
    """
    if any(isinstance(m, nn.Conv2d) and m.groups > 1 for m in network.modules()):
        network.to(memory_format=torch.channels_last)
    return network

def full_learning_curves(model: nn.Module, inputs: Mapping, labels: Mapping, train_rows, *, num_classes: int,
                         epochs: int, lr: float, batch_size: int, seed: int,
                         record: Sequence[int] | None = None, until_memorised: bool = False) -> pd.DataFrame:
    """Learning curves of full fine-tuning (every layer + a new head) on some training rows.

    Regime (b) of :mod:`nclib.transfer` (:func:`nclib.transfer.full_transfer`): a copy
    of ``model`` gets :func:`nclib.transfer.new_head` with ``seed`` as its classifier and
    every parameter is trained with Adam on the inputs of ``train_rows`` for ``epochs``
    epochs, with no early stopping (or, with ``until_memorised``, until it classifies
    every one of those rows correctly: :class:`StopWhenMemorised`); its accuracy is
    recorded on
    those rows (``train``) and on the whole validation and test splits. This is the
    paper's Figure 4 setting: the representation the score read is itself changed by
    training. ``model`` is not modified; for image inputs (4-D) its copy is trained in the
    faster memory layout (:func:`channels_last_for_training`).

    Parameters
    ----------
    model : torch.nn.Module
        A backbone of the zoo contract (``embed``, ``classifier``, ``embedding_dim``;
        ``forward(x) = classifier(embed(x))``).
    inputs : mapping
        ``"train"``, ``"val"``, ``"test"`` -> inputs (N_split, ...) float32.
    labels : mapping
        ``"train"``, ``"val"``, ``"test"`` -> integer labels (N_split,).
    train_rows : array-like of int
        Rows of the training split to train on (distinct, at least two).
    num_classes : int
    epochs, lr, batch_size, seed, record, until_memorised
        As in :func:`learning_curves`.

    Returns
    -------
    pandas.DataFrame
        ``epoch, train_loss, train_accuracy, train_cross_entropy, val_accuracy,
        val_cross_entropy, test_accuracy, test_cross_entropy``.

    Examples
    --------
    >>> from nclib.experiments.toy import ToyMlp
    >>> rng = np.random.default_rng(0)
    >>> inputs = {s: rng.normal(size=(30, 8)).astype(np.float32) for s in ("train", "val", "test")}
    >>> labels = {s: np.arange(30) % 5 for s in inputs}
    >>> model = ToyMlp(hidden=8, embedding_dim=4, num_classes=3)
    >>> curves = full_learning_curves(model, inputs, labels, np.arange(10), num_classes=5, epochs=4,
    ...                               lr=0.01, batch_size=4, seed=0, record=[1, 4])
    >>> curves["epoch"].tolist(), model.classifier.out_features  # the model itself is untouched
    ([1, 4], 3)
    """
    for name in ("classifier", "embedding_dim"):
        if not hasattr(model, name):
            raise ValueError(f"{type(model).__name__} has no {name!r}; see the model contract in nclib.models")
    missing = [s for s in TRUNK_SPLITS if s not in inputs or s not in labels]
    if missing:
        raise ValueError(f"inputs and labels need the splits {TRUNK_SPLITS}; missing {missing}")
    rows = _train_rows(train_rows, len(labels["train"]))
    data = {"train": (np.asarray(inputs["train"])[rows], np.asarray(labels["train"])[rows])}
    data.update({s: (inputs[s], labels[s]) for s in ("val", "test")})
    _check_label_range(data, num_classes)
    network = copy.deepcopy(model)
    network.requires_grad_(True)
    network.classifier = new_head(int(model.embedding_dim), int(num_classes), seed).to(device_of(model))
    if np.ndim(inputs["train"]) == 4:  # images: see channels_last_for_training
        network = channels_last_for_training(network)
    network.train()
    return learning_curves(network, *data["train"], data, epochs=epochs, lr=lr, batch_size=batch_size, seed=seed,
                           record=record, until_memorised=until_memorised)
