"""The audio model zoo of the paper's Table 1: the DCASE 2018 baseline CNN, a smaller CNN
and a CRNN, in PyTorch.

Every model maps a log-mel input of shape (batch, 1, frames, mel_bins) to an embedding
of shape (batch, embedding_dim) with ``embed`` (after global pooling) and to source
logits with ``forward(x) = classifier(embed(x))``, as the model contract requires. All
three also follow the optional ``trunk`` / ``top`` split of :mod:`nclib.models` (the
trunk is every conv block but the last; the top is the last block and the pooling, with
the GRU for the CRNN). All three use zero-padded stride-2 convolutions and global pooling,
so they accept any input of at least one frame and one mel bin (19 frames x 64 bins for
the quick profile's 1 s clips, several hundred frames in the paper's).

========================  =========  ==========================  =====================
model                     Table 1    this module (10 classes)    source tasks
========================  =========  ==========================  =====================
DCASE 2018 baseline       4.31 M     4,309,450                   acoustic scenes
CNN                       0.43 M     430,282                     music, speech
CRNN                      0.53 M     528,714                     music, speech
========================  =========  ==========================  =====================

Only the baseline's architecture is published (Kong et al., 2018); Table 1 of the paper
gives nothing but the parameter counts of the other two, so :class:`SmallCnn` and
:class:`Crnn` are designs of ours in the baseline's style (see their docstrings).

The chapter "The audio experiment" ranks these five models, pre-trained here on the
source tasks (the quick profile beside the published networks of
:mod:`nclib.models.pretrained_audio`).

References
----------
Q. Kong, T. Iqbal, Y. Xu, W. Wang and M. D. Plumbley, "DCASE 2018 challenge Surrey
cross-task convolutional neural network baseline", DCASE 2018 workshop.
Suresh, Abrol and Thakur, "Pitfalls in Measuring Neural Transferability", Table 1.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping

import torch
from torch import nn

from nclib.models import ModelSpec

# Source-task class counts of the paper's data sets: DCASE 2018 task 1 (10 acoustic
# scenes), GTZAN (10 music genres), Speech Commands v0.02 (35 words).
PAPER_CLASS_COUNTS = {"scenes": 10, "music": 10, "speech": 35}


def _conv_block(in_channels: int, out_channels: int, kernel_size: int) -> nn.Sequential:
    """Stride-2 'same'-padded convolution without bias, batch norm, ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, stride=2,
                  padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(),
    )


def _init_weights(module: nn.Module) -> None:
    """Xavier-uniform convolution / linear weights, zero biases, unit batch-norm scale
    (the initialisation of Kong et al.'s baseline code)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.ones_(layer.weight)
            nn.init.zeros_(layer.bias)


def _check_input(x: torch.Tensor) -> None:
    if x.ndim != 4 or x.shape[1] != 1:
        raise ValueError(
            f"expected a log-mel batch of shape (batch, 1, frames, mel_bins), got {tuple(x.shape)}"
        )
    if x.shape[0] == 0 or x.shape[2] == 0 or x.shape[3] == 0:
        raise ValueError(f"empty input of shape {tuple(x.shape)}")


def _check_num_classes(num_classes: int) -> int:
    if isinstance(num_classes, bool) or int(num_classes) != num_classes or num_classes < 1:
        raise ValueError(f"num_classes must be a positive integer, got {num_classes!r}")
    return int(num_classes)


class _ConvBackbone(nn.Module):
    """Shared parts: a conv stack, a global max pool and a linear classifier."""

    def __init__(self, layers, num_classes: int, embedding_dim: int | None = None):
        super().__init__()
        num_classes = _check_num_classes(num_classes)
        self.features = nn.Sequential(*(_conv_block(i, o, k) for i, o, k in layers))
        self.embedding_dim = int(embedding_dim or layers[-1][1])
        self.classifier = nn.Linear(self.embedding_dim, num_classes)

    def feature_maps(self, x: torch.Tensor) -> torch.Tensor:
        """Convolutional feature maps, shape (batch, channels, frames', mel_bins')."""
        _check_input(x)
        return self.features(x)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding: global max over time and frequency, shape (batch, embedding_dim)."""
        return torch.amax(self.feature_maps(x), dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Source logits, shape (batch, num_classes)."""
        return self.classifier(self.embed(x))

    def trunk(self, x: torch.Tensor) -> torch.Tensor:
        """The frozen part for top fine-tuning: every conv block but the last,
        shape (batch, channels, frames', mel_bins')."""
        _check_input(x)
        return self.features[:-1](x)

    @property
    def top(self) -> nn.Module:
        """The last conv block and the global max pool: trunk output -> (batch,
        embedding_dim). Shares this network's parameters (no new state-dict keys)."""
        return _ConvTop(self.features[-1])

    @property
    def top_parameters(self) -> int:
        """Parameters in :attr:`top`."""
        return int(sum(p.numel() for p in self.top.parameters()))


class _ConvTop(nn.Module):
    def __init__(self, block: nn.Module):
        super().__init__()
        self.block = block

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.amax(self.block(h), dim=(2, 3))


class _CrnnTop(nn.Module):
    def __init__(self, block: nn.Module, gru: nn.GRU):
        super().__init__()
        self.block, self.gru = block, gru

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        sequence = torch.amax(self.block(h), dim=3).transpose(1, 2)  # (batch, time, channels)
        outputs, _ = self.gru(sequence)
        return torch.amax(outputs, dim=1)


class DcaseBaselineCnn(_ConvBackbone):
    """The DCASE 2018 baseline CNN of Kong et al. (2018), the paper's "DCASE 2018 baseline".

    Four blocks of (5x5 convolution, stride 2, padding 2, no bias; batch norm; ReLU) with
    1 -> 64 -> 128 -> 256 -> 512 channels, a global max pool over time and frequency and
    a linear classifier. With 10 classes it has exactly 4,309,450 parameters (Table 1:
    4.31 M): convolutions 25 x (64 + 64*128 + 128*256 + 256*512) = 4,302,400, batch-norm
    scales and shifts 2 x 960 = 1,920, classifier 512 x 10 + 10 = 5,130.

    Parameters
    ----------
    num_classes : int, default 10
        Source classes (10 acoustic scenes in DCASE 2018 task 1).

    Attributes
    ----------
    embedding_dim : int
        512.
    classifier : torch.nn.Linear
        ``Linear(512, num_classes)``.

    Examples
    --------
    >>> model = DcaseBaselineCnn(num_classes=10)
    >>> count_parameters(model)
    4309450
    >>> model(torch.zeros(2, 1, 16, 64)).shape
    torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10):
        super().__init__([(1, 64, 5), (64, 128, 5), (128, 256, 5), (256, 512, 5)], num_classes)
        _init_weights(self)


class SmallCnn(_ConvBackbone):
    """The paper's smaller "CNN" (Table 1: 0.43 M parameters), our design.

    The paper says only that it is the DCASE baseline "with lesser layers". Here: the
    baseline's first two blocks (5x5, 1 -> 64 -> 128 channels) and a third, lighter block
    (3x3, 128 -> 192 channels), all stride 2, no bias, batch norm and ReLU; global max
    pool; linear classifier. With 10 classes: convolutions 1,600 + 204,800 + 221,184 =
    427,584, batch norm 2 x 384 = 768, classifier 192 x 10 + 10 = 1,930; total 430,282
    (0.07 % above 430,000).

    Parameters
    ----------
    num_classes : int, default 10

    Attributes
    ----------
    embedding_dim : int
        192.
    classifier : torch.nn.Linear

    Examples
    --------
    >>> model = SmallCnn(num_classes=10)
    >>> count_parameters(model)
    430282
    >>> model.embed(torch.zeros(3, 1, 16, 64)).shape
    torch.Size([3, 192])
    """

    LAYERS = [(1, 64, 5), (64, 128, 5), (128, 192, 3)]

    def __init__(self, num_classes: int = 10):
        super().__init__(self.LAYERS, num_classes)
        _init_weights(self)


class Crnn(_ConvBackbone):
    """The paper's "CRNN" (Table 1: 0.53 M parameters): :class:`SmallCnn`'s convolutions
    followed by a GRU over time; our design.

    The conv maps (batch, 192, frames', bins') are max-pooled over frequency, giving one
    192-d vector per time step; a bidirectional GRU with 64 units per direction reads that
    sequence; the embedding is the max over time of its outputs (128-d), followed by a
    linear classifier. With 10 classes: convolutions and batch norm 428,352 (as
    :class:`SmallCnn`), GRU 2 x 3 x 64 x (192 + 64 + 2) = 99,072, classifier 128 x 10 +
    10 = 1,290; total 528,714 (0.24 % below 530,000).

    Parameters
    ----------
    num_classes : int, default 10

    Attributes
    ----------
    embedding_dim : int
        128.
    gru : torch.nn.GRU
    classifier : torch.nn.Linear

    Examples
    --------
    >>> model = Crnn(num_classes=10)
    >>> count_parameters(model)
    528714
    >>> model(torch.zeros(2, 1, 16, 64)).shape
    torch.Size([2, 10])
    """

    HIDDEN = 64

    def __init__(self, num_classes: int = 10):
        super().__init__(SmallCnn.LAYERS, num_classes, embedding_dim=2 * self.HIDDEN)
        conv_channels = SmallCnn.LAYERS[-1][1]
        self.gru = nn.GRU(conv_channels, self.HIDDEN, batch_first=True, bidirectional=True)
        _init_weights(self)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding: max over time of the GRU outputs, shape (batch, 128)."""
        sequence = torch.amax(self.feature_maps(x), dim=3).transpose(1, 2)  # (batch, time, 192)
        outputs, _ = self.gru(sequence)  # (batch, time, 128)
        return torch.amax(outputs, dim=1)

    @property
    def top(self) -> nn.Module:
        """The last conv block, the frequency max, the GRU and the time max: trunk output ->
        (batch, 128). Shares this network's parameters."""
        return _CrnnTop(self.features[-1], self.gru)


def count_parameters(model: nn.Module) -> int:
    """Number of parameters of ``model`` (trainable or not; batch-norm running statistics
    are buffers and not counted).

    Parameters
    ----------
    model : torch.nn.Module

    Returns
    -------
    int

    Examples
    --------
    >>> count_parameters(torch.nn.Linear(512, 10))
    5130
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"expected a torch.nn.Module, got {type(model).__name__}")
    return sum(p.numel() for p in model.parameters())


_ZOO = [
    # name, class, family, source task, description
    ("dcase-scenes", DcaseBaselineCnn, "dcase-baseline", "scenes",
     "DCASE 2018 baseline CNN (Kong et al. 2018) pre-trained on acoustic scenes"),
    ("cnn-music", SmallCnn, "cnn", "music", "smaller CNN pre-trained on music genres"),
    ("cnn-speech", SmallCnn, "cnn", "speech", "smaller CNN pre-trained on speech commands"),
    ("crnn-music", Crnn, "crnn", "music", "CRNN pre-trained on music genres"),
    ("crnn-speech", Crnn, "crnn", "speech", "CRNN pre-trained on speech commands"),
]


def audio_zoo(class_counts: Mapping[str, int] | int | None = None) -> list[ModelSpec]:
    """The five candidate models of the paper's Table 1 (architecture x source task).

    Parameters
    ----------
    class_counts : mapping of str to int, int or None
        Number of source classes per source task (``"scenes"``, ``"music"``,
        ``"speech"``); tasks left out keep the paper's counts (scenes 10 from DCASE 2018,
        music 10 from GTZAN, speech 35 from Speech Commands). An int sets every task. The
        quick profile's synthetic tasks pass their own counts.

    Returns
    -------
    list of ModelSpec
        ``dcase-scenes``, ``cnn-music``, ``cnn-speech``, ``crnn-music``,
        ``crnn-speech``; ``build()`` returns the untrained model with a classifier of the
        source task's size.

    Examples
    --------
    >>> [spec.name for spec in audio_zoo()]
    ['dcase-scenes', 'cnn-music', 'cnn-speech', 'crnn-music', 'crnn-speech']
    >>> audio_zoo({"speech": 10})[2].build().classifier.out_features
    10
    """
    counts = dict(PAPER_CLASS_COUNTS)
    if isinstance(class_counts, Mapping):
        unknown = set(class_counts) - set(counts)
        if unknown:
            raise ValueError(f"unknown source tasks {sorted(unknown)}; expected {sorted(counts)}")
        counts.update(class_counts)
    elif class_counts is not None:
        counts = dict.fromkeys(counts, class_counts)
    counts = {task: _check_num_classes(n) for task, n in counts.items()}
    return [
        ModelSpec(name, family, functools.partial(cls, num_classes=counts[task]), task,
                  f"{description} ({counts[task]} classes)")
        for name, cls, family, task, description in _ZOO
    ]
