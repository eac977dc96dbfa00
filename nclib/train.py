"""The one training engine: minibatch Adam on cross-entropy, checkpoints on validation, callbacks.

Every network nclib trains goes through :func:`fit`: pre-training on a source task and the
full and top fine-tuning regimes (:mod:`nclib.transfer`), the heads of the head regime,
the neural-collapse demonstration (:func:`nclib.collapse.collapse_trajectory`) and the
timed steps of :func:`nclib.costs.transfer_seconds`.

One fit is ``epochs`` passes over the training set in minibatches (a permutation drawn
per epoch from a private ``torch.Generator`` seeded with the seed, split into batches of
``batch_size``; a trailing batch of fewer than half ``batch_size`` joins the previous
one, :func:`minibatches`), each batch one
:class:`torch.optim.Adam` step on the mean cross-entropy, gradients by autograd. After
every epoch an optional ``validate`` callable scores the network; the state of the first
epoch reaching the best score is kept and restored at the end, and with ``patience=P``
training stops once the score has not improved for ``P`` epochs (``epochs`` is then a
cap).

**Seeds in one batch.** A network whose class sets ``seed_axis = True`` holds S
independent models along the leading axis of every parameter and buffer, such as
:class:`LinearHeads` (weight (S, D, C), bias (S, C)). It reads inputs (S, B, ...) and
returns logits (S, B, C); the loss is the sum over seeds of each seed's mean
cross-entropy, so each seed's gradient is that of its own loss, and Adam, being
elementwise, keeps the seeds independent. Each seed draws its own minibatch order, keeps
its own best checkpoint and stops on its own (its history ends there; the batch keeps
stepping it until every seed has stopped, which changes nothing it returns).

**No hidden global state.** The minibatch orders come from ``torch.Generator`` objects.
Random layers (dropout) draw from torch's global generator; :func:`fit` runs inside
:func:`torch.random.fork_rng`, with the forked state set from a generator seeded by the
(first) seed, so runs repeat exactly and the caller's random state is left as it was.
Training runs under :func:`deterministic_algorithms`, whose flags are restored after.

**Callbacks** (:class:`Callback`) see the fit at its start, around every optimizer step,
at the end of every epoch and at its end; :class:`History` (always attached),
:class:`Progress` and :class:`Timing` are the ones nclib uses.
"""

from __future__ import annotations

import math
import time
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from nclib.progress import progress

__all__ = ["Callback", "EpochEnd", "FitResult", "History", "LinearHeads", "Progress", "Run", "Timing",
           "deterministic_algorithms", "device_of", "fit", "minibatches"]


# ----------------------------------------------------------------------------- helpers
@contextmanager
def deterministic_algorithms():
    """Context in which torch uses deterministic algorithms; the previous settings return after.

    Sets :func:`torch.use_deterministic_algorithms` (``warn_only=True``: an operation
    without a deterministic implementation warns instead of failing) and turns cuDNN's
    benchmark mode off; both are restored on exit, also after an error.

    Examples
    --------
    >>> before = torch.are_deterministic_algorithms_enabled()
    >>> with deterministic_algorithms():
    ...     torch.are_deterministic_algorithms_enabled()
    True
    >>> torch.are_deterministic_algorithms_enabled() == before
    True
    """
    enabled = torch.are_deterministic_algorithms_enabled()
    warn_only = torch.is_deterministic_algorithms_warn_only_enabled()
    benchmark = torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.benchmark = False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(enabled, warn_only=warn_only)
        torch.backends.cudnn.benchmark = benchmark


def device_of(network: nn.Module) -> torch.device:
    """The device of a network's first parameter (the CPU for a network without parameters).

    Parameters
    ----------
    network : torch.nn.Module

    Returns
    -------
    torch.device

    Examples
    --------
    >>> device_of(nn.Linear(2, 2)), device_of(nn.ReLU())
    (device(type='cpu'), device(type='cpu'))
    """
    parameter = next(network.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def minibatches(order: torch.Tensor, batch_size: int) -> list[torch.Tensor]:
    """Split an ordering of the examples into minibatches of ``batch_size``.

    A trailing batch of fewer than half ``batch_size`` examples (or of a single example)
    joins the previous batch. Batch normalisation cannot train on one example, and from a
    handful it estimates its statistics so poorly that training suffers: with batches of
    32, full fine-tuning of mobilenet-v2 on 100 images (three batches of 32 and one of 4)
    still misclassified up to a fifth of them after 192 updates, and fitted them within
    102 once the 4 joined the batch before (the overfitting study of
    ``book/caveats_generalisation.md``).

    Parameters
    ----------
    order : torch.Tensor of shape (N,)
        Example indices, e.g. a permutation.
    batch_size : int

    Returns
    -------
    list of torch.Tensor
        Consecutive slices of ``order``, each of ``batch_size`` indices except the last,
        which has from half ``batch_size`` to about one and a half times it (all N in
        one batch when N is below ``batch_size``).

    Examples
    --------
    >>> [batch.tolist() for batch in minibatches(torch.arange(7), 3)]
    [[0, 1, 2], [3, 4, 5, 6]]
    >>> [len(batch) for batch in minibatches(torch.arange(8), 3)]
    [3, 3, 2]
    >>> [len(batch) for batch in minibatches(torch.arange(100), 32)]  # not 32, 32, 32, 4
    [32, 32, 36]
    >>> [len(batch) for batch in minibatches(torch.arange(50), 32)]
    [32, 18]
    """
    batches = list(torch.split(order, batch_size))
    if len(batches) > 1 and (len(batches[-1]) == 1 or 2 * len(batches[-1]) < batch_size):
        batches[-2] = torch.cat(batches[-2:])
        batches.pop()
    return batches


@contextmanager
def _seeded_random_layers(seed: int, device: torch.device):
    """Fork torch's global generator (and ``device``'s, on CUDA) and seed the fork from ``seed``.

    The state is set from a ``torch.Generator`` seeded with ``seed`` (for the CPU the same
    state as ``torch.manual_seed(seed)``); the caller's state returns on exit.
    """
    cuda = device.type == "cuda"
    index = (device.index if device.index is not None else torch.cuda.current_device()) if cuda else None
    with torch.random.fork_rng(devices=[index] if cuda else []):
        torch.set_rng_state(torch.Generator().manual_seed(seed).get_state())
        if cuda:
            state = torch.Generator(device=torch.device("cuda", index)).manual_seed(seed).get_state()
            torch.cuda.set_rng_state(state, index)
        yield


# ----------------------------------------------------------------------------- batched heads
class LinearHeads(nn.Module):
    """S independent linear heads held as one batched parameter: ``weight`` (S, D, C), ``bias`` (S, C).

    A network with a seed axis (``seed_axis = True``) for :func:`fit`: every head is
    trained on its own minibatches and keeps its own checkpoint, and one
    :class:`torch.optim.Adam` steps them all.

    Parameters
    ----------
    weight : torch.Tensor of shape (S, D, C)
        Head s maps an embedding e (D,) to logits ``e @ weight[s] + bias[s]`` (C,).
    bias : torch.Tensor of shape (S, C)

    Examples
    --------
    >>> heads = LinearHeads.from_linear([nn.Linear(4, 3), nn.Linear(4, 3)])
    >>> heads.num_seeds, tuple(heads.weight.shape), tuple(heads.bias.shape)
    (2, (2, 4, 3), (2, 3))
    >>> heads(torch.zeros(2, 5, 4)).shape, heads(torch.zeros(5, 4)).shape  # own or shared inputs
    (torch.Size([2, 5, 3]), torch.Size([2, 5, 3]))
    >>> sorted(heads.linear_state(heads.state_dict(), 1).items())[1][1].shape  # nn.Linear layout
    torch.Size([3, 4])
    """

    seed_axis = True

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        if weight.ndim != 3 or bias.shape != (weight.shape[0], weight.shape[2]):
            raise ValueError(f"weight must be (S, D, C) and bias (S, C); got {tuple(weight.shape)} "
                             f"and {tuple(bias.shape)}")
        self.weight = nn.Parameter(weight.detach().clone().contiguous())
        self.bias = nn.Parameter(bias.detach().clone().contiguous())

    @classmethod
    def from_linear(cls, heads: Sequence[nn.Linear]) -> "LinearHeads":
        """Stack S ``nn.Linear(D, C)`` heads (copied) into one :class:`LinearHeads`.

        Examples
        --------
        >>> layer = nn.Linear(2, 3)
        >>> torch.equal(LinearHeads.from_linear([layer]).weight[0], layer.weight.t())
        True
        """
        with torch.no_grad():
            weight = torch.stack([head.weight.detach().t() for head in heads])
            bias = torch.stack([head.bias.detach() for head in heads])
        return cls(weight, bias)

    @property
    def num_seeds(self) -> int:
        """S, the number of heads."""
        return self.weight.shape[0]

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Logits (S, B, C) of each head's own features (S, B, D), or of shared features (N, D)."""
        if features.ndim == 2:
            num_seeds, width, num_classes = self.weight.shape
            flat = features @ self.weight.permute(1, 0, 2).reshape(width, num_seeds * num_classes)
            return flat.reshape(len(features), num_seeds, num_classes).transpose(0, 1) + self.bias[:, None, :]
        return torch.baddbmm(self.bias[:, None, :], features, self.weight)

    @staticmethod
    def linear_state(state: dict, index: int) -> dict:
        """Head ``index`` of a :class:`LinearHeads` ``state_dict`` as an ``nn.Linear`` one.

        Returns
        -------
        dict
            ``weight`` (C, D) and ``bias`` (C,), copied to the CPU.

        Examples
        --------
        >>> heads = LinearHeads(torch.zeros(2, 4, 3), torch.ones(2, 3))
        >>> {name: tuple(t.shape) for name, t in LinearHeads.linear_state(heads.state_dict(), 0).items()}
        {'weight': (3, 4), 'bias': (3,)}
        """
        return {"weight": state["weight"][index].t().cpu().clone(), "bias": state["bias"][index].cpu().clone()}


# ----------------------------------------------------------------------------- callbacks
@dataclass
class Run:
    """What a :class:`Callback` sees of a fit in progress.

    Attributes
    ----------
    network : torch.nn.Module
    optimizer : torch.optim.Optimizer
    seeds : list of int
        One per model being trained (S).
    epochs : int
        The epoch cap.
    epoch : int
        Current epoch, from 1 (0 before the first).
    step : int
        Optimizer steps taken so far.
    batch_size : int
        Examples in the current minibatch (per seed).
    stop_training : bool
        Set it to end training after the current step; an unfinished epoch is then
        neither validated nor recorded.
    outputs : torch.Tensor or None
        The logits of the last minibatch, detached: (B, C), or (S, B, C) for a network
        with a seed axis (None before the first step).
    targets : torch.Tensor or None
        Their classes: (B,) or (S, B).

    Examples
    --------
    >>> Run(nn.Linear(2, 2), None, [0], epochs=3).stop_training
    False
    """

    network: nn.Module
    optimizer: object
    seeds: list
    epochs: int
    epoch: int = 0
    step: int = 0
    batch_size: int = 0
    stop_training: bool = False
    outputs: torch.Tensor | None = None
    targets: torch.Tensor | None = None


@dataclass
class EpochEnd:
    """The outcome of one epoch, given to :meth:`Callback.on_epoch_end`.

    Attributes
    ----------
    epoch : int
        From 1.
    train_loss : ndarray of shape (S,), float64
        Mean cross-entropy over the epoch's examples, per seed.
    val_metric : ndarray of shape (S,), float64
        The validation score per seed (NaN without ``validate``).
    recorded : ndarray of shape (S,), bool
        Seeds still training in this epoch (a seed that has stopped is no longer recorded).
    improved : ndarray of shape (S,), bool
        Seeds whose checkpoint was replaced by this epoch's state.

    Examples
    --------
    >>> EpochEnd(1, np.array([0.5]), np.array([0.9]), np.array([True]), np.array([True])).epoch
    1
    """

    epoch: int
    train_loss: np.ndarray
    val_metric: np.ndarray
    recorded: np.ndarray
    improved: np.ndarray


class Callback:
    """Hooks :func:`fit` calls; subclass and override any of them (each does nothing here).

    Order within an epoch: ``on_epoch_start``, then per minibatch ``on_step_start`` and
    ``on_step_end`` (after the optimizer step), then ``on_epoch_end`` (after validation
    and checkpointing). ``on_fit_end`` is called also when training fails.

    Examples
    --------
    >>> class CountSteps(Callback):
    ...     steps = 0
    ...     def on_step_end(self, run, losses):
    ...         self.steps += 1
    >>> counter = CountSteps()
    >>> _ = fit(nn.Linear(2, 2), torch.zeros(10, 2), np.zeros(10, dtype=int), epochs=2, lr=0.1,
    ...         batch_size=5, callbacks=[counter])
    >>> counter.steps
    4
    """

    def on_fit_start(self, run: Run) -> None:
        """Before the first epoch."""

    def on_epoch_start(self, run: Run) -> None:
        """Before an epoch's first step."""

    def on_step_start(self, run: Run) -> None:
        """Before a minibatch is gathered and stepped on."""

    def on_step_end(self, run: Run, losses: torch.Tensor) -> None:
        """After an optimizer step; ``losses`` (S,) are the batch's mean cross-entropies."""

    def on_epoch_end(self, run: Run, outcome: EpochEnd) -> None:
        """After an epoch, its validation and checkpointing."""

    def on_fit_end(self, run: Run) -> None:
        """After the last epoch (or an error); the best state is loaded when training succeeded."""


class History(Callback):
    """Records one row per epoch and seed while that seed trains: ``epoch, train_loss, val_metric``.

    :func:`fit` attaches one itself; its tables are the ``histories`` of :class:`FitResult`.

    Examples
    --------
    >>> history = History()
    >>> history.on_fit_start(Run(nn.Linear(2, 2), None, [3], epochs=1))
    >>> history.on_epoch_end(None, EpochEnd(1, np.array([0.5]), np.array([0.75]), np.array([True]),
    ...                                     np.array([True])))
    >>> history.tables()[0].values.tolist()
    [[1.0, 0.5, 0.75]]
    """

    COLUMNS = ("epoch", "train_loss", "val_metric")

    def __init__(self):
        self.rows: list[list] = []

    def on_fit_start(self, run: Run) -> None:
        self.rows = [[] for _ in run.seeds]

    def on_epoch_end(self, run: Run, outcome: EpochEnd) -> None:
        for k in np.flatnonzero(outcome.recorded):
            self.rows[k].append((outcome.epoch, float(outcome.train_loss[k]), float(outcome.val_metric[k])))

    def tables(self) -> list[pd.DataFrame]:
        """One DataFrame per seed, columns ``epoch`` (int), ``train_loss``, ``val_metric``."""
        return [pd.DataFrame(rows, columns=list(self.COLUMNS)) for rows in self.rows]


class Progress(Callback):
    """A progress bar over the epochs (:func:`nclib.progress.progress`; off with ``NCLIB_PROGRESS=0``).

    Parameters
    ----------
    desc : str
        Label of the bar.

    Examples
    --------
    >>> _ = fit(nn.Linear(2, 2), torch.zeros(4, 2), np.zeros(4, dtype=int), epochs=2, lr=0.1,
    ...         batch_size=2, callbacks=[Progress("demo")])
    """

    def __init__(self, desc: str):
        self.desc = desc
        self._bar = None

    def on_fit_start(self, run: Run) -> None:
        self._bar = progress(range(run.epochs), desc=self.desc, total=run.epochs)

    def on_epoch_end(self, run: Run, outcome: EpochEnd) -> None:
        if hasattr(self._bar, "update"):
            self._bar.update(1)

    def on_fit_end(self, run: Run) -> None:
        if hasattr(self._bar, "close"):
            self._bar.close()
        self._bar = None


class Timing(Callback):
    """Wall-clock seconds of every optimizer step and every epoch; optionally stops after ``max_steps``.

    A step is timed from before its minibatch is gathered to after the optimizer step
    and the loss's transfer to the CPU (which waits for an accelerator to finish).

    Parameters
    ----------
    max_steps : int, optional
        End training after this many optimizer steps.

    Attributes
    ----------
    step_seconds, step_examples : list
        Per step: seconds, and examples in its minibatch.
    epoch_seconds : list of float
        Per finished epoch, including its validation.

    Examples
    --------
    >>> timing = Timing(max_steps=3)
    >>> result = fit(nn.Linear(2, 2), torch.zeros(40, 2), np.zeros(40, dtype=int), epochs=5, lr=0.1,
    ...              batch_size=4, shuffle=False, callbacks=[timing])
    >>> len(timing.step_seconds), timing.step_examples, result.epochs_run.tolist()
    (3, [4, 4, 4], [0])
    >>> timing.seconds_per_example(skip=1) > 0
    True
    """

    def __init__(self, max_steps: int | None = None):
        if max_steps is not None and (not isinstance(max_steps, (int, np.integer)) or max_steps < 1):
            raise ValueError(f"max_steps must be a positive integer or None, got {max_steps!r}")
        self.max_steps = max_steps
        self.step_seconds: list[float] = []
        self.step_examples: list[int] = []
        self.epoch_seconds: list[float] = []
        self._step_start = self._epoch_start = 0.0

    def on_epoch_start(self, run: Run) -> None:
        self._epoch_start = time.perf_counter()

    def on_step_start(self, run: Run) -> None:
        self._step_start = time.perf_counter()

    def on_step_end(self, run: Run, losses: torch.Tensor) -> None:
        self.step_seconds.append(time.perf_counter() - self._step_start)
        self.step_examples.append(run.batch_size)
        if self.max_steps is not None and len(self.step_seconds) >= self.max_steps:
            run.stop_training = True

    def on_epoch_end(self, run: Run, outcome: EpochEnd) -> None:
        self.epoch_seconds.append(time.perf_counter() - self._epoch_start)

    def seconds_per_example(self, skip: int = 0) -> float:
        """Seconds per training example over the steps after the first ``skip`` (warm-up) ones."""
        examples = sum(self.step_examples[skip:])
        if examples == 0:
            raise ValueError(f"no steps were timed after the first {skip}")
        return sum(self.step_seconds[skip:]) / examples


# ----------------------------------------------------------------------------- the engine
@dataclass
class FitResult:
    """What :func:`fit` returns; per-seed arrays follow the order of ``seeds``.

    Attributes
    ----------
    state : dict of str to torch.Tensor
        The kept ``state_dict`` (copied tensors, on the network's device): per seed the
        best-on-validation epoch's, or the last epoch's without ``validate``. For a network
        with a seed axis every entry has the leading seed axis (S, ...).
    histories : list of pandas.DataFrame
        One per seed: ``epoch`` (from 1), ``train_loss``, ``val_metric`` (NaN without
        ``validate``), one row per epoch that seed trained.
    best_epoch : ndarray of shape (S,), int
        Epoch of each kept checkpoint (the first reaching the best score); the last epoch
        without ``validate``.
    best_metric : ndarray of shape (S,), float
        The kept checkpoint's validation score (NaN without ``validate``).
    epochs_run : ndarray of shape (S,), int
        Epochs each seed trained.
    stopped_early : ndarray of shape (S,), bool
        The patience criterion ended the seed's training.

    Examples
    --------
    >>> result = fit(nn.Linear(2, 2), torch.zeros(4, 2), np.zeros(4, dtype=int), epochs=2, lr=0.1, batch_size=2)
    >>> result.best_epoch.tolist(), result.epochs_run.tolist(), len(result.histories[0])
    ([2], [2], 2)
    """

    state: dict
    histories: list
    best_epoch: np.ndarray
    best_metric: np.ndarray
    epochs_run: np.ndarray
    stopped_early: np.ndarray


def _check(epochs, lr, batch_size, seeds, patience) -> list[int]:
    if not isinstance(epochs, (int, np.integer)) or isinstance(epochs, bool) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    if not (isinstance(lr, (int, float, np.floating)) and math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be a positive number, got {lr!r}")
    if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    if patience is not None and (not isinstance(patience, (int, np.integer)) or patience < 1):
        raise ValueError(f"patience must be a positive integer or None, got {patience!r}")
    seeds = list(seeds)
    if not seeds or any(not isinstance(s, (int, np.integer)) or s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct non-negative integers, at least one; got {seeds}")
    return [int(s) for s in seeds]


def _losses(logits: torch.Tensor, targets: torch.Tensor, batched: bool) -> torch.Tensor:
    """(S,) mean cross-entropies: of (S, B, C) logits and (S, B) targets, or (1,) of (B, C) and (B,)."""
    if not batched:
        return nn.functional.cross_entropy(logits, targets)[None]
    num_seeds, batch = targets.shape
    each = nn.functional.cross_entropy(logits.reshape(num_seeds * batch, -1), targets.reshape(-1), reduction="none")
    return each.reshape(num_seeds, batch).mean(dim=1)


def fit(network: nn.Module, inputs, labels, *, epochs: int, lr: float, batch_size: int, seeds: Sequence[int] = (0,),
        validate: Callable[[nn.Module], Sequence[float]] | None = None, patience: int | None = None,
        shuffle: bool = True, callbacks: Sequence[Callback] = (), desc: str = "train",
        deterministic: bool = True) -> FitResult:
    """Train ``network`` with Adam on the mean cross-entropy; keep the best-on-validation state.

    Every parameter with ``requires_grad`` is trained in place (Adam with PyTorch's
    defaults and learning rate ``lr``, its fused kernel on CPU and CUDA). Each epoch
    draws a permutation of the examples per seed from
    ``torch.Generator().manual_seed(seed)`` (or keeps their order, with
    ``shuffle=False``) and steps once per minibatch (:func:`minibatches`). After the
    epoch ``validate(network)`` gives one score per seed (larger is better); a seed's
    state is kept when its score beats every earlier one, and with ``patience`` the seed
    stops once ``patience`` epochs have passed since its kept epoch. At the end the kept
    states are loaded into ``network``. Torch's global random state is forked, seeded
    from ``seeds[0]`` for random layers, and restored (see the module notes).

    Parameters
    ----------
    network : torch.nn.Module
        Maps inputs (B, ...) to logits (B, C); or, when its class sets
        ``seed_axis = True`` (such as :class:`LinearHeads`), inputs (S, B, ...) to logits
        (S, B, C), with S independent models along the leading axis of its state.
    inputs : torch.Tensor or ndarray of shape (N, ...)
        Training inputs, float32; minibatches are moved to the network's device.
    labels : torch.Tensor or ndarray of shape (N,)
        Integer classes in ``range(C)``.
    epochs : int
        Number of epochs, or their cap with ``patience``.
    lr : float
    batch_size : int
    seeds : sequence of int
        Minibatch-order seeds, one per model: a single seed for an ordinary network, S
        for a network with a seed axis.
    validate : callable, optional
        ``validate(network) -> sequence of S floats`` (the network in training mode as
        left by the epoch; switch to eval mode inside as needed). Without it no
        checkpoint is chosen: the last state is kept.
    patience : int, optional
        Needs ``validate``; stop a seed after ``patience`` epochs without a strict
        improvement of its score.
    shuffle : bool
        Draw a new order every epoch (default), or use the examples in their order.
    callbacks : sequence of Callback
        Called at the hooks of :class:`Callback`, after the built-in :class:`History`.
    desc : str
        Names the run in error messages.
    deterministic : bool
        Train under :func:`deterministic_algorithms` (default).

    Returns
    -------
    FitResult

    Raises
    ------
    ValueError
        A bad setting, inputs and labels of different lengths, ``patience`` without
        ``validate``, a ``validate`` that does not return S scores, or a non-finite
        training loss (divergence).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(60, 2)).astype(np.float32)
    >>> y = (x[:, 0] > 0).astype(np.int64)
    >>> def accuracy(net):
    ...     with torch.no_grad():
    ...         return [float((net(torch.from_numpy(x)).argmax(1).numpy() == y).mean())]
    >>> result = fit(nn.Linear(2, 2), x, y, epochs=40, lr=0.1, batch_size=16, seeds=[0],
    ...              validate=accuracy, patience=3)
    >>> bool(result.best_metric[0] > 0.9), bool(result.stopped_early[0])
    (True, True)
    >>> int(result.epochs_run[0]) == int(result.best_epoch[0]) + 3
    True

    Three seeds of a linear head at once, each on its own minibatch order:

    >>> heads = LinearHeads(torch.zeros(3, 2, 2), torch.zeros(3, 2))
    >>> result = fit(heads, x, y, epochs=3, lr=0.1, batch_size=16, seeds=[0, 1, 2])
    >>> [len(history) for history in result.histories], tuple(result.state["weight"].shape)
    ([3, 3, 3], (3, 2, 2))
    """
    seeds = _check(epochs, lr, batch_size, seeds, patience)
    if patience is not None and validate is None:
        raise ValueError("patience needs a validate function")
    batched = bool(getattr(network, "seed_axis", False))
    num_seeds = len(seeds)
    if batched and num_seeds != network.num_seeds:
        raise ValueError(f"{type(network).__name__} holds {network.num_seeds} models but {num_seeds} seeds were given")
    if not batched and num_seeds != 1:
        raise ValueError(f"an ordinary network trains with one seed, got {num_seeds} (give the network a seed axis)")
    inputs = inputs if torch.is_tensor(inputs) else torch.from_numpy(np.ascontiguousarray(inputs, dtype=np.float32))
    targets = torch.as_tensor(np.asarray(labels) if not torch.is_tensor(labels) else labels).to(torch.int64)
    if targets.ndim != 1 or len(targets) != len(inputs) or len(targets) == 0:
        raise ValueError(f"inputs {tuple(inputs.shape)} and labels {tuple(targets.shape)} must be (N, ...) and (N,), "
                         "N > 0")
    device = device_of(network)
    targets = targets.to(inputs.device)
    size = len(targets)
    trained = [p for p in network.parameters() if p.requires_grad]
    # the fused kernel: one pass per parameter instead of ~10 (about a fifth off a top run)
    fused = bool(trained) and all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64)
                                  for p in trained)
    optimizer = torch.optim.Adam(trained, lr=lr, fused=fused or None)
    generators = [torch.Generator().manual_seed(seed) for seed in seeds]
    history = History()
    callbacks = [history, *callbacks]
    run = Run(network, optimizer, seeds, int(epochs))
    best_metric = np.full(num_seeds, -math.inf)
    best_epoch = np.zeros(num_seeds, dtype=np.int64)
    epochs_run = np.zeros(num_seeds, dtype=np.int64)
    active = np.ones(num_seeds, dtype=bool)
    best_state = None
    positions = minibatches(torch.arange(size), int(batch_size))
    try:
        with (deterministic_algorithms() if deterministic else nullcontext()), _seeded_random_layers(seeds[0], device):
            for callback in callbacks:
                callback.on_fit_start(run)
            for epoch in range(1, int(epochs) + 1):
                run.epoch = epoch
                for callback in callbacks:
                    callback.on_epoch_start(run)
                network.train()
                if shuffle:
                    orders = torch.stack([torch.randperm(size, generator=g) for g in generators])
                else:
                    orders = torch.arange(size).expand(num_seeds, size)
                loss_sums = torch.zeros(num_seeds, dtype=torch.float64)
                finished = True
                for batch in positions:
                    run.batch_size = len(batch)
                    for callback in callbacks:
                        callback.on_step_start(run)
                    index = (orders[:, batch] if batched else orders[0, batch]).to(inputs.device)
                    optimizer.zero_grad(set_to_none=True)
                    logits, batch_targets = network(inputs[index].to(device)), targets[index].to(device)
                    losses = _losses(logits, batch_targets, batched)
                    losses.sum().backward()
                    optimizer.step()
                    losses = losses.detach()
                    run.outputs, run.targets = logits.detach(), batch_targets
                    loss_sums += losses.double().cpu() * len(batch)
                    run.step += 1
                    for callback in callbacks:
                        callback.on_step_end(run, losses)
                    if run.stop_training:
                        finished = batch is positions[-1]
                        break
                if not finished:
                    break
                train_loss = loss_sums.numpy() / size
                for k in np.flatnonzero(active):
                    if not math.isfinite(train_loss[k]):
                        name = f"{desc} seed {seeds[k]}" if batched else desc
                        raise ValueError(f"{name}: training diverged at epoch {epoch} (loss {train_loss[k]}); "
                                         "lower the lr")
                recorded = active.copy()
                epochs_run[recorded] = epoch
                improved = np.zeros(num_seeds, dtype=bool)
                val_metric = np.full(num_seeds, np.nan)
                if validate is not None:
                    val_metric = np.asarray(validate(network), dtype=np.float64).reshape(-1)
                    if val_metric.shape != (num_seeds,):
                        raise ValueError(f"validate returned {val_metric.shape[0]} scores for {num_seeds} seeds")
                    improved = recorded & (val_metric > best_metric)
                    if improved.any():
                        best_state = _keep(network, best_state, improved, batched)
                        best_metric[improved] = val_metric[improved]
                        best_epoch[improved] = epoch
                    if patience is not None:
                        active &= ~(epoch - best_epoch >= patience)
                outcome = EpochEnd(epoch, train_loss, val_metric, recorded, improved)
                for callback in callbacks:
                    callback.on_epoch_end(run, outcome)
                if not active.any() or run.stop_training:
                    break
            if validate is None or best_state is None:
                best_state = {name: t.detach().clone() for name, t in network.state_dict().items()}
                best_epoch = epochs_run.copy()
                best_metric = np.full(num_seeds, np.nan)
            else:
                network.load_state_dict(best_state)
    finally:
        for callback in callbacks:
            callback.on_fit_end(run)
    return FitResult(best_state, history.tables(), best_epoch, best_metric, epochs_run,
                     ~active if patience is not None else np.zeros(num_seeds, dtype=bool))


def _keep(network: nn.Module, kept: dict | None, improved: np.ndarray, batched: bool) -> dict:
    """Copy the current state into the kept one: whole, or the improved seeds' slices."""
    current = network.state_dict()
    if not batched or kept is None:  # in a batch every seed improves at its first epoch
        return {name: tensor.detach().clone() for name, tensor in current.items()}
    index = torch.from_numpy(np.flatnonzero(improved))
    for name, tensor in current.items():
        kept[name][index.to(tensor.device)] = tensor.detach()[index.to(tensor.device)]
    return kept
