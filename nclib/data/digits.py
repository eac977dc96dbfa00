"""The quick profile's target images: scikit-learn's handwritten digits, made CIFAR-like.

scikit-learn ships the test part of the UCI "Optical Recognition of Handwritten Digits"
data set (Alpaydin and Kaynak, 1998): 1,797 real 8x8 images of the digits 0-9, with
grey levels 0-16. No download is needed, so the quick profile can transfer to a real
image task offline. Here each image is enlarged to ``size`` x ``size`` by bilinear
interpolation (:func:`scipy.ndimage.zoom`, ``order=1``), scaled to [0, 255] like CIFAR-10
pixels and copied into ``channels`` channels, so models built for CIFAR-10 inputs of shape
(3, 32, 32) take it unchanged. The quick profile of the chapter "The image experiment"
transfers to these images.
"""

from __future__ import annotations

import numpy as np

from nclib._sampling import stratified_split
from nclib.data.base import Dataset, Splits
from nclib.data.cifar10 import limit_per_class

MAX_GREY_LEVEL = 16  # the digits' pixel values run from 0 to 16
DIGIT_CLASSES = [str(digit) for digit in range(10)]


def digits_dataset(size: int = 32, channels: int = 3) -> Dataset:
    """All 1,797 scikit-learn digits as float32 images of shape (channels, size, size).

    Parameters
    ----------
    size : int
        Side of the output images in pixels (at least 8; 32 matches CIFAR-10).
    channels : int
        Number of identical channels (3 for RGB models, 1 for grey).

    Returns
    -------
    Dataset
        ``inputs`` float32 of shape (1797, channels, size, size) with values in [0, 255];
        ``labels`` int64 of shape (1797,), the digit shown; ``classes`` ``["0", …, "9"]``.

    Raises
    ------
    ValueError
        If ``size`` < 8 or ``channels`` < 1.

    Examples
    --------
    >>> data = digits_dataset(size=16, channels=1)
    >>> data.inputs.shape, data.classes[:3]
    ((1797, 1, 16, 16), ['0', '1', '2'])
    >>> float(data.inputs.min()), float(data.inputs.max())
    (0.0, 255.0)
    """
    _check_integer("size", size, minimum=8)
    _check_integer("channels", channels, minimum=1)
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = digits.images.astype(np.float64)  # (1797, 8, 8), grey levels 0..16
    scale = size / images.shape[1]
    enlarged = zoom(images, (1.0, scale, scale), order=1)
    pixels = np.clip(enlarged * (255.0 / MAX_GREY_LEVEL), 0.0, 255.0).astype(np.float32)
    inputs = np.repeat(pixels[:, None, :, :], channels, axis=1)
    info = {"source": "scikit-learn digits (UCI optical handwritten digits, test part)",
            "size": size, "channels": channels, "num_examples": int(len(inputs))}
    return Dataset(inputs, digits.target.astype(np.int64), list(DIGIT_CLASSES), info)


def digits_splits(seed: int = 0, fractions=(0.6, 0.2, 0.2), size: int = 32,
                  per_class: int | None = None, channels: int = 3) -> Splits:
    """Seeded, stratified train / validation / test split of :func:`digits_dataset`.

    Parameters
    ----------
    seed : int
        Seed of the split and of the ``per_class`` subsampling.
    fractions : tuple of 3 floats
        Fractions of train, validation and test; positive, summing to 1.
    size : int
        Image side in pixels (see :func:`digits_dataset`).
    per_class : int, optional
        Keep at most this many examples per class in each split.
    channels : int
        Number of image channels.

    Returns
    -------
    Splits
        Datasets with inputs of shape (N, channels, size, size), float32 in [0, 255]; with
        the default fractions about 1,078 / 360 / 359 images, each class in every split in
        proportion to its size.

    Examples
    --------
    >>> splits = digits_splits(seed=0, size=8, channels=1)
    >>> splits.sizes()
    {'train': 1078, 'val': 360, 'test': 359}
    """
    fractions = tuple(fractions)
    if len(fractions) != 3:
        raise ValueError(f"fractions must give train, val and test, got {fractions}")
    if per_class is not None:
        _check_integer("per_class", per_class, minimum=1)
    dataset = digits_dataset(size=size, channels=channels)
    parts = stratified_split(dataset.labels, fractions, seed)
    splits = {}
    for position, (name, index) in enumerate(zip(("train", "val", "test"), parts)):
        part = dataset.subset(index)
        if per_class is not None:
            part = limit_per_class(part, per_class, seed=seed + 7919 * (position + 1))
        part.info.update(split=name, seed=seed, fractions=fractions, per_class=per_class)
        splits[name] = part
    return Splits(**splits)


def _check_integer(name: str, value, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
