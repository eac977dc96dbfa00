"""Model zoos: every model is a torch module with ``embed``, ``classifier`` and ``forward``.

See :class:`ModelSpec`. Builders live in :mod:`nclib.models.image`,
:mod:`nclib.models.quick_image` and :mod:`nclib.models.audio`; they import torch or
Keras only when called.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable


@dataclass(frozen=True)
class ModelSpec:
    """One candidate model of a zoo.

    Attributes
    ----------
    name : str
        Unique name, e.g. ``"cnn-music"``.
    family : str
        Architecture family, e.g. ``"residual"``, ``"crnn"``.
    build : callable
        ``build() -> torch.nn.Module`` with random weights; the module has ``embed(x)``,
        ``classifier`` (a ``torch.nn.Linear``), ``forward(x) = classifier(embed(x))``
        and ``embedding_dim``.
    source_task : str
        The pre-training task, e.g. ``"imagenet"``, ``"music"``.
    description : str

    Examples
    --------
    >>> spec = ModelSpec("tiny", "mlp", lambda: None, "none")
    >>> spec.name
    'tiny'
    """

    name: str
    family: str
    build: Callable
    source_task: str
    description: str = ""
