"""The two containers every loader returns: a labelled :class:`Dataset` and :class:`Splits`."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nclib._sampling import stratified_split  # noqa: F401  (re-exported: the data splits' sampler)

SPLIT_NAMES = ("train", "val", "test")
"""The names of the parts of :class:`Splits`, in order."""


@dataclass
class Dataset:
    """Labelled examples as arrays.

    Attributes
    ----------
    inputs : ndarray of shape (N, ...), float32
        Images (N, channels, height, width), log-mel inputs (N, 1, frames, mel_bins), or
        raw arrays before a front end.
    labels : ndarray of shape (N,), int64
        Class index of each example, in ``range(len(classes))``.
    classes : list of str
        Class names.
    info : dict
        Provenance (source, counts, what was skipped and why).

    Examples
    --------
    >>> d = Dataset(np.zeros((2, 3), np.float32), np.array([0, 1]), ["a", "b"])
    >>> len(d), d.num_classes
    (2, 2)
    """

    inputs: np.ndarray
    labels: np.ndarray
    classes: list
    info: dict = field(default_factory=dict)

    def __post_init__(self):
        self.labels = np.asarray(self.labels, dtype=np.int64)
        if len(self.inputs) != len(self.labels):
            raise ValueError(f"{len(self.inputs)} inputs but {len(self.labels)} labels")
        if len(self.labels) and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(f"labels must lie in range({len(self.classes)})")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def num_classes(self) -> int:
        """Number of classes."""
        return len(self.classes)

    def subset(self, index) -> "Dataset":
        """The examples at ``index`` (integer array or boolean mask), same classes."""
        return Dataset(self.inputs[index], self.labels[index], list(self.classes), dict(self.info))


@dataclass
class Splits:
    """Train, validation and test parts of one target task.

    Examples
    --------
    >>> d = Dataset(np.zeros((4, 1), np.float32), np.array([0, 1, 0, 1]), ["a", "b"])
    >>> s = Splits(d.subset([0, 1]), d.subset([2]), d.subset([3]))
    >>> s.sizes()
    {'train': 2, 'val': 1, 'test': 1}
    """

    train: Dataset
    val: Dataset
    test: Dataset

    def sizes(self) -> dict:
        """Number of examples per split."""
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}
