"""CIFAR-10 from the official python archive, verified before it is opened.

The image experiment of the paper (Section 4.1) transfers ImageNet models to CIFAR-10
(Krizhevsky, 2009) and splits the official 50,000 training images into 40,000 for
training and 10,000 for validation; the official 10,000 test images are the test set.

The loader reads ``cifar-10-python.tar.gz`` from the data folder
(:func:`nclib.config.data_dir`, set by ``NCLIB_DATA``), checks its published digest
(:mod:`nclib.data.registry`) before anything is extracted or unpickled, extracts it with
:func:`nclib.data.fetch.safe_extract` (no member may land outside the folder), and reads
the pickled batches with an unpickler that only accepts the types the official format
uses (dicts, lists, bytes, ints and NumPy arrays).

The official format: ``cifar-10-batches-py/data_batch_1`` … ``data_batch_5`` and
``test_batch`` each hold a dict with ``b"data"`` (uint8, shape (10000, 3072): per image
the 1,024 red, then green, then blue pixels, each plane row-major), ``b"labels"``
(10,000 ints in 0..9), ``b"batch_label"`` and ``b"filenames"``; ``batches.meta`` holds
``b"label_names"``.

The paper profile of the chapter "The image experiment" reads its target from here.
"""

from __future__ import annotations

import codecs
import pickle
from pathlib import Path

import numpy as np

from nclib import _sampling
from nclib._sampling import stratified_split
from nclib.config import data_dir
from nclib.data import fetch
from nclib.data.base import Dataset, Splits
from nclib.data.registry import registry_entry

ARCHIVE_NAME = "cifar-10-python.tar.gz"
EXTRACTED_FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{k}" for k in range(1, 6))
TEST_BATCH = "test_batch"
META_FILE = "batches.meta"
MARKER_FILE = ".nclib-verified"
IMAGE_SHAPE = (3, 32, 32)
NUM_CLASSES = 10
REGISTRY_NAMES = {"md5": "cifar10", "sha256": "cifar10-sha256"}


def load_cifar10(folder=None, expected_digest: str | None = None, algorithm: str = "md5",
                 download: bool = False) -> tuple[Dataset, Dataset]:
    """The official CIFAR-10 training and test sets.

    Parameters
    ----------
    folder : path-like, optional
        Folder holding ``cifar-10-python.tar.gz`` (default :func:`nclib.config.data_dir`).
        The archive is extracted into ``<folder>/cifar-10-batches-py/``.
    expected_digest : str, optional
        Digest the archive must have; default: the official one from ``nclib/data/registry.csv``
        (the publisher's MD5 ``c58f3010…``, or for ``algorithm="sha256"`` the SHA-256
        recorded by Keras).
    algorithm : {"md5", "sha256"}
        Hash algorithm of ``expected_digest``.
    download : bool
        Download the archive from the official URL when it is missing (needs a network;
        the download is verified before it is renamed into place).

    Returns
    -------
    train : Dataset
        Official training set: ``inputs`` float32 of shape (50000, 3, 32, 32) with pixel
        values in [0, 255] (channels red, green, blue), ``labels`` int64 of shape (50000,),
        ``classes`` the 10 label names (``"airplane"``, ``"automobile"``, …).
    test : Dataset
        Official test set, shape (10000, 3, 32, 32).

    Raises
    ------
    FileNotFoundError
        The archive is missing and ``download`` is False (the message says where to put it).
    nclib.data.fetch.ChecksumError
        The archive's digest differs from ``expected_digest``; nothing has been extracted.
    nclib.data.fetch.UnsafeArchiveError
        A member would land outside ``folder``; nothing has been written.
    ValueError
        A batch does not have the official layout.

    Notes
    -----
    The archive is verified on every call. Extraction is skipped when
    ``cifar-10-batches-py/`` holds a marker recording that it was extracted from an
    archive with this digest; with such a marker the extracted copy is used even if the
    archive has since been deleted.

    Examples
    --------
    >>> import tempfile
    >>> load_cifar10(folder=tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    FileNotFoundError: CIFAR-10 archive not found: put the official cifar-10-python.tar.gz ...
    """
    folder = Path(folder) if folder is not None else data_dir()
    algorithm = algorithm.lower()
    digest = (expected_digest or _official_entry(algorithm)["digest"]).lower()
    batches = _verified_batches(folder, digest, algorithm, download)
    classes = _read_label_names(batches / META_FILE)
    train = _read_split(batches, TRAIN_BATCHES, classes, "train")
    test = _read_split(batches, (TEST_BATCH,), classes, "test")
    return train, test


def cifar10_splits(seed: int = 0, folder=None, train_size: int = 40_000, val_size: int = 10_000,
                   per_class: int | None = None, **load_kwargs) -> Splits:
    """The paper's CIFAR-10 split: 40,000 train / 10,000 validation / 10,000 test.

    Train and validation are a seeded split of the official training set, stratified by
    class (with the official 5,000 images per class, exactly 4,000 / 1,000 per class);
    the test set is the official test batch.

    Parameters
    ----------
    seed : int
        Seed of the split (and of the ``per_class`` subsampling).
    folder : path-like, optional
        Data folder (see :func:`load_cifar10`).
    train_size, val_size : int
        Sizes taken from the official training set; their sum may not exceed it.
        Where it is smaller, the rest is left out (stratified as well).
    per_class : int, optional
        Keep at most this many examples per class in each split (train, val and test),
        chosen at random with ``seed``: the quick profile on real CIFAR-10.
    **load_kwargs
        ``expected_digest``, ``algorithm``, ``download`` for :func:`load_cifar10`.

    Returns
    -------
    Splits
        ``train``, ``val``, ``test`` datasets; inputs of shape (N, 3, 32, 32), float32 in
        [0, 255].

    Raises
    ------
    ValueError
        Non-positive sizes or ``per_class``, or sizes larger than the training set.

    Examples
    --------
    >>> cifar10_splits(train_size=0)
    Traceback (most recent call last):
    ...
    ValueError: train_size must be a positive integer, got 0
    """
    _check_positive("train_size", train_size)
    _check_positive("val_size", val_size)
    if per_class is not None:
        _check_positive("per_class", per_class)
    official_train, test = load_cifar10(folder, **load_kwargs)
    num_train = len(official_train)
    rest = num_train - train_size - val_size
    if rest < 0:
        raise ValueError(
            f"train_size + val_size = {train_size + val_size} exceeds the {num_train} "
            "examples of the official training set"
        )
    fractions = [train_size / num_train, val_size / num_train] + ([rest / num_train] if rest else [])
    parts = stratified_split(official_train.labels, fractions, seed)
    splits = {"train": official_train.subset(parts[0]), "val": official_train.subset(parts[1]),
              "test": test}
    del official_train
    for position, (name, dataset) in enumerate(splits.items()):
        if per_class is not None:
            dataset = limit_per_class(dataset, per_class, seed=seed + 7919 * (position + 1))
        dataset.info.update(split=name, seed=seed, per_class=per_class)
        splits[name] = dataset
    return Splits(**splits)


def limit_per_class(dataset: Dataset, per_class: int, seed: int = 0) -> Dataset:
    """Keep at most ``per_class`` examples of each class, chosen at random.

    Parameters
    ----------
    dataset : Dataset
        Inputs of shape (N, ...), labels of shape (N,).
    per_class : int
        Maximum number of examples kept per class (classes with fewer keep all).
    seed : int
        Seed of the choice.

    Returns
    -------
    Dataset
        The kept examples, in their original order, same classes.

    Examples
    --------
    >>> data = Dataset(np.arange(6, dtype=np.float32), [0, 0, 0, 0, 1, 1], ["a", "b"])
    >>> small = limit_per_class(data, 3, seed=0)
    >>> np.bincount(small.labels).tolist()
    [3, 2]
    """
    _check_positive("per_class", per_class)
    return dataset.subset(_sampling.limit_per_class(dataset.labels, per_class, dataset.num_classes, seed))


def _check_positive(name: str, value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")


def _official_entry(algorithm: str) -> dict:
    if algorithm not in REGISTRY_NAMES:
        raise ValueError(f"algorithm must be one of {sorted(REGISTRY_NAMES)}, got {algorithm!r}")
    return registry_entry(REGISTRY_NAMES[algorithm])


def _missing_message(archive: Path) -> str:
    entry = registry_entry("cifar10")
    return (
        f"CIFAR-10 archive not found: put the official {ARCHIVE_NAME} "
        f"({entry['size_bytes']:,} bytes, md5 {entry['digest']}, from {entry['url']}) at "
        f"{archive} (or point NCLIB_DATA at the folder that holds it), "
        "or call load_cifar10(download=True) on a machine with a network"
    )


def _verified_batches(folder: Path, digest: str, algorithm: str, download: bool) -> Path:
    """Folder of verified, extracted batches; verifies and extracts the archive as needed."""
    archive = folder / ARCHIVE_NAME
    batches = folder / EXTRACTED_FOLDER
    marker = f"{algorithm} {digest}"
    if not archive.is_file():
        if _marker_matches(batches, marker):
            return batches
        if not download:
            raise FileNotFoundError(_missing_message(archive))
        _download_archive(archive, digest, algorithm)
    fetch.verify_file(archive, digest, algorithm)
    if not _marker_matches(batches, marker):
        fetch.safe_extract(archive, folder, replace=[EXTRACTED_FOLDER])
        missing = [name for name in _expected_files() if not (batches / name).is_file()]
        if missing:
            raise ValueError(f"{archive.name} lacks {EXTRACTED_FOLDER}/{missing[0]}: not the official archive")
        with fetch.atomic_path(batches / MARKER_FILE) as temporary:
            temporary.write_text(marker + "\n")
    return batches


def _download_archive(archive: Path, digest: str, algorithm: str) -> None:
    """Download the official archive; :func:`fetch.download` verifies SHA-256 before renaming."""
    sha256 = digest if algorithm == "sha256" else _official_entry("sha256")["digest"]
    fetch.download(registry_entry("cifar10")["url"], archive, sha256)


def _expected_files() -> tuple[str, ...]:
    return TRAIN_BATCHES + (TEST_BATCH, META_FILE)


def _marker_matches(batches: Path, marker: str) -> bool:
    marker_path = batches / MARKER_FILE
    if not marker_path.is_file() or marker_path.read_text().strip() != marker:
        return False
    return all((batches / name).is_file() for name in _expected_files())


class _BatchUnpickler(pickle.Unpickler):
    """Unpickler that only builds the types of the official batches (no other callables)."""

    def find_class(self, module, name):
        reconstruct = np.ndarray.__reduce__(np.zeros(0))[0]
        allowed = {
            ("numpy.core.multiarray", "_reconstruct"): reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): np.dtype,
            ("_codecs", "encode"): codecs.encode,
        }
        if (module, name) not in allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: not part of the CIFAR-10 format")
        return allowed[(module, name)]


def _read_pickle(path: Path) -> dict:
    with open(path, "rb") as handle:
        try:
            content = _BatchUnpickler(handle, encoding="bytes").load()
        except (pickle.UnpicklingError, EOFError, ValueError, TypeError) as error:
            raise ValueError(f"{path.name} is not a CIFAR-10 batch: {error}") from None
    if not isinstance(content, dict):
        raise ValueError(f"{path.name} holds a {type(content).__name__}, expected a dict")
    return content


def _read_label_names(path: Path) -> list[str]:
    names = _read_pickle(path).get(b"label_names")
    if not isinstance(names, list) or len(names) != NUM_CLASSES:
        raise ValueError(f"{path.name}: b'label_names' must be a list of {NUM_CLASSES} names")
    return [name.decode("utf-8") if isinstance(name, bytes) else str(name) for name in names]


def _read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(data, labels)`` of one batch: uint8 (n, 3072) and int64 (n,)."""
    batch = _read_pickle(path)
    for key in (b"data", b"labels"):
        if key not in batch:
            raise ValueError(f"{path.name} has no {key!r} entry")
    data, labels = batch[b"data"], np.asarray(batch[b"labels"])
    pixels = int(np.prod(IMAGE_SHAPE))
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != pixels:
        shape = getattr(data, "shape", None)
        raise ValueError(f"{path.name}: b'data' must be uint8 of shape (n, {pixels}), got {shape}")
    if labels.shape != (data.shape[0],):
        raise ValueError(f"{path.name}: {labels.shape} labels for {data.shape[0]} images")
    if labels.size and (labels.min() < 0 or labels.max() >= NUM_CLASSES):
        raise ValueError(f"{path.name}: labels must lie in 0..{NUM_CLASSES - 1}")
    return data, labels.astype(np.int64)


def _read_split(batches: Path, names, classes: list[str], split: str) -> Dataset:
    parts = [_read_batch(batches / name) for name in names]
    data = np.concatenate([data for data, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    inputs = data.reshape((-1,) + IMAGE_SHAPE).astype(np.float32)
    info = {"source": "CIFAR-10, official python archive", "official_split": split,
            "files": list(names), "num_examples": int(len(labels))}
    return Dataset(inputs, labels, list(classes), info)
