"""Model zoos: every model is a torch module with ``embed``, ``classifier`` and ``forward``.

See :class:`ModelSpec`. Builders live in :mod:`nclib.models.image`,
:mod:`nclib.models.quick_image` and :mod:`nclib.models.audio`; they import torch or
Keras only when called.

The contract
------------
Required: ``embed(x) -> (batch, embedding_dim)`` (the penultimate embedding, the model's
own preprocessing or front end inside), ``classifier`` (a ``torch.nn.Linear`` from the
embedding to the source classes), ``forward(x) = classifier(embed(x))`` and
``embedding_dim``.

Optional, for top fine-tuning (:func:`nclib.transfer.top_transfer`, regime ``"top"``):

- ``trunk(x) -> torch.Tensor`` -- the frozen part, from the raw input (preprocessing or
  front end included) up to the input of the network's last stage, shape (batch, ...);
- ``top`` -- an ``nn.Module`` attribute (often a property building a view): the last stage
  through global pooling to the embedding, sharing the network's own parameters (so it
  adds no state-dict keys), with ``embed(x) == top(trunk(x))`` (to float rounding);
- ``top_parameters`` -- the number of parameters in ``top``.

The genuinely pre-trained zoos (:mod:`nclib.models.pretrained_image`,
:mod:`nclib.models.pretrained_audio`) implement it; the split of each network is
documented on its ``top``.
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
