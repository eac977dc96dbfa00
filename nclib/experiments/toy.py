"""The toy experiment: tiny MLPs on deterministic Gaussian tasks, in a few seconds.

It exercises the whole flow of :mod:`nclib.experiments.runner` (pre-training with cached
weights, features, scores, both transfer regimes, evaluation) on data small enough for
tests and for a smoke test of the command line (``python -m nclib run toy``). Its
numbers mean nothing about real transferability.

Data: every task is a mixture of isotropic Gaussian classes in 8 dimensions whose means
are drawn from a fixed seed (:func:`gaussian_task`). Two 6-class source tasks
(``gauss-a``, ``gauss-b``) pre-train the zoo; the 3-class target (:func:`toy_splits`)
is split 90 / 45 / 45.

Zoo (:func:`toy_zoo`): MLPs with tanh activations of different widths and depths,
pre-trained on one of the source tasks, and one left at its (seeded) random
initialisation, so that the pool holds models of clearly different quality.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import torch
from torch import nn

from nclib.data.base import Dataset, Splits
from nclib.models import ModelSpec

INPUT_DIM = 8
SOURCE_SEEDS = {"gauss-a": 101, "gauss-b": 202}
SOURCE_CLASSES = 6
TARGET_SEED = 303


class ToyMlp(nn.Module):
    """A small MLP following the model contract (``embed``, ``classifier``, ``embedding_dim``).

    Parameters
    ----------
    hidden : int
        Width of the hidden layers.
    embedding_dim : int
        Width D of the embedding (the last tanh layer).
    num_classes : int
        Outputs of the classifier (source classes).
    depth : int
        Number of hidden layers before the embedding layer.
    input_dim : int

    Examples
    --------
    >>> model = ToyMlp(hidden=8, embedding_dim=3, num_classes=4)
    >>> model(torch.zeros(2, 8)).shape, model.embed(torch.zeros(2, 8)).shape
    (torch.Size([2, 4]), torch.Size([2, 3]))
    """

    def __init__(self, hidden: int = 32, embedding_dim: int = 16, num_classes: int = SOURCE_CLASSES,
                 depth: int = 1, input_dim: int = INPUT_DIM):
        super().__init__()
        layers, width = [], input_dim
        for _ in range(depth):
            layers += [nn.Linear(width, hidden), nn.Tanh()]
            width = hidden
        layers += [nn.Linear(width, embedding_dim), nn.Tanh()]
        self.body = nn.Sequential(*layers)
        self.classifier = nn.Linear(embedding_dim, num_classes)
        self.embedding_dim = embedding_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding of shape (B, embedding_dim)."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (B, num_classes)."""
        return self.classifier(self.embed(x))


def gaussian_task(num_classes: int, size: int, seed: int, separation: float = 1.5,
                  sample_seed: int | None = None) -> Dataset:
    """Balanced isotropic Gaussian classes in ``INPUT_DIM`` dimensions.

    Parameters
    ----------
    num_classes : int
    size : int
        Number of examples (classes take turns, so sizes differ by at most one).
    seed : int
        Fixes the class means (drawn from N(0, separation^2 I)): the task's identity.
    separation : float
    sample_seed : int, optional
        Fixes the examples drawn around the means (default: ``seed``).

    Returns
    -------
    nclib.data.base.Dataset
        ``inputs`` (size, INPUT_DIM) float32, ``labels`` (size,).

    Examples
    --------
    >>> task = gaussian_task(3, 9, seed=0)
    >>> task.inputs.shape, np.bincount(task.labels).tolist()
    ((9, 8), [3, 3, 3])
    """
    means = np.random.default_rng(seed).normal(scale=separation, size=(num_classes, INPUT_DIM))
    rng = np.random.default_rng(seed if sample_seed is None else sample_seed)
    labels = np.arange(size) % num_classes
    inputs = means[labels] + rng.normal(size=(size, INPUT_DIM))
    classes = [f"class-{k}" for k in range(num_classes)]
    return Dataset(inputs.astype(np.float32), labels, classes, {"source": f"gaussian seed {seed}"})


def toy_splits(num_classes: int = 3, sizes=(90, 45, 45), seed: int = TARGET_SEED) -> Splits:
    """The toy target task: train, validation and test parts of one Gaussian task.

    Examples
    --------
    >>> toy_splits().sizes()
    {'train': 90, 'val': 45, 'test': 45}
    """
    parts = [gaussian_task(num_classes, size, seed, sample_seed=seed + k + 1) for k, size in enumerate(sizes)]
    return Splits(*parts)


def toy_source(task: str) -> Splits:
    """A 6-class source task (``"gauss-a"`` or ``"gauss-b"``) for pre-training.

    Examples
    --------
    >>> toy_source("gauss-a").train.num_classes
    6
    """
    if task not in SOURCE_SEEDS:
        raise ValueError(f"unknown toy source task {task!r}; known: {sorted(SOURCE_SEEDS)}")
    return toy_splits(SOURCE_CLASSES, sizes=(240, 60, 60), seed=SOURCE_SEEDS[task])


def toy_zoo() -> list[ModelSpec]:
    """Four tiny MLPs: three pre-trained on a Gaussian source task, one left random.

    Examples
    --------
    >>> [spec.name for spec in toy_zoo()]
    ['mlp-wide', 'mlp-narrow', 'mlp-deep', 'mlp-random']
    """
    return [
        ModelSpec("mlp-wide", "mlp", partial(ToyMlp, hidden=32, embedding_dim=16), "gauss-a",
                  "one hidden layer of 32, 16-d embedding"),
        ModelSpec("mlp-narrow", "mlp", partial(ToyMlp, hidden=16, embedding_dim=2), "gauss-a",
                  "one hidden layer of 16, 2-d embedding"),
        ModelSpec("mlp-deep", "deep-mlp", partial(ToyMlp, hidden=16, embedding_dim=8, depth=2), "gauss-b",
                  "two hidden layers of 16, 8-d embedding"),
        ModelSpec("mlp-random", "mlp", partial(ToyMlp, hidden=32, embedding_dim=16), "none",
                  "not pre-trained: seeded random weights"),
    ]


PROFILES = {
    "quick": dict(seeds=(0, 1), head_epochs=10, full_epochs=3, pretrain_epochs=10),
    "paper": dict(seeds=tuple(range(10)), head_epochs=40, full_epochs=15, pretrain_epochs=30),
}
LEARNING_RATE = 1e-2  # the toy tasks are tiny: the paper's 1e-4 would need far more epochs


def prepare_toy_model(spec: ModelSpec, cache, pretrain_epochs: int):
    """Pre-train ``spec`` on its source task (weights cached), or build it seeded if ``"none"``.

    Examples
    --------
    >>> from nclib.cache import Cache
    >>> model = prepare_toy_model(toy_zoo()[3], Cache(enabled=False), pretrain_epochs=1)
    >>> model.embedding_dim
    16
    """
    from nclib.models.pretraining import build_model, pretrained_model

    if spec.source_task == "none":
        return build_model(spec, seed=0).eval()
    return pretrained_model(spec, cache, partial(toy_source, spec.source_task), epochs=pretrain_epochs,
                            lr=LEARNING_RATE, batch_size=32, seed=0)


def toy_experiment(profile: str = "quick"):
    """The toy experiment's configuration for ``profile`` (``"quick"`` or ``"paper"``).

    Examples
    --------
    >>> config = toy_experiment("quick")
    >>> config.name, config.metric, config.seeds
    ('toy', 'accuracy', (0, 1))
    """
    from nclib.experiments.runner import ExperimentConfig

    if profile not in PROFILES:
        raise ValueError(f"unknown profile {profile!r}; known: {sorted(PROFILES)}")
    settings = PROFILES[profile]
    return ExperimentConfig(
        name="toy", profile=profile, metric="accuracy", load_target=toy_splits, zoo=toy_zoo,
        prepare_model=partial(prepare_toy_model, pretrain_epochs=settings["pretrain_epochs"]),
        head_epochs=settings["head_epochs"], full_epochs=settings["full_epochs"], seeds=settings["seeds"],
        lr=LEARNING_RATE, batch_size=32,
        description=("Toy smoke test: four tiny MLPs (three pre-trained on 6-class Gaussian source "
                     "tasks, one random) transferred to a 3-class Gaussian target in 8 dimensions "
                     "(90/45/45 examples). The numbers say nothing about real models."),
        target="a 3-class Gaussian target in 8 dimensions (90 / 45 / 45 examples)",
        key_parts={"pretrain_epochs": settings["pretrain_epochs"], "pretrain_lr": LEARNING_RATE},
    )
