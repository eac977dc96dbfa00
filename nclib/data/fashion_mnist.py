"""Fashion-MNIST (Xiao, Rasul and Vollgraf, 2017) from its official IDX files.

Fashion-MNIST holds 70,000 grey 28x28 images of Zalando articles in ten classes, 60,000
for training and 10,000 for testing, stored in the IDX format LeCun, Cortes and Burges
defined for MNIST (http://yann.lecun.com/exdb/mnist/). Four files make the data set:

``train-images-idx3-ubyte``, ``train-labels-idx1-ubyte``, ``t10k-images-idx3-ubyte``,
``t10k-labels-idx1-ubyte``

each gzip-compressed (``.gz``, as published) or plain. They are looked for in
``<data_dir()>/fashion-mnist/`` (:func:`nclib.config.data_dir`, set by ``NCLIB_DATA``) and
then in ``/usr/share/datasets/fashion-mnist/``, where the Debian package
``dataset-fashion-mnist`` installs them (``apt-get install dataset-fashion-mnist``).

Verification before parsing. ``nclib/data/registry.csv`` holds, per file, the publisher's MD5
of the ``.gz`` (from the Fashion-MNIST README) and the MD5 of the decompressed IDX
payload. A ``.gz`` whose digest is the publisher's is accepted as is; any other ``.gz``
(the Debian package strips the original name and time from each gzip header, so its
digests differ while the compressed streams are the published ones: putting the name and
the time, 2017-08-31 10:50 UTC, back reproduces the published MD5 of all four files) and a plain file are
accepted only if their decompressed payload has the registered MD5. Decompression is
bounded by the registered payload size, so a gzip bomb is refused after that many bytes.

The IDX format, as parsed by :func:`parse_idx`: two zero bytes; a type byte (``0x08``
unsigned byte, ``0x09`` signed byte, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32,
``0x0E`` float64, all big-endian); a byte giving the number of dimensions; one
big-endian unsigned 32-bit size per dimension; then the values in C order. Image files
are ``idx3`` (N, 28, 28) unsigned bytes; label files ``idx1`` (N,) unsigned bytes 0..9.
"""

from __future__ import annotations

import gzip
import hashlib
import zlib
from pathlib import Path

import numpy as np

from nclib._sampling import per_class_parts
from nclib.config import data_dir
from nclib.data.base import Dataset, Splits
from nclib.data.fetch import ChecksumError
from nclib.data.registry import registry_entries

#: The ten official class names, in label order (Fashion-MNIST README).
FASHION_MNIST_CLASSES = [
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
]
FOLDER_NAME = "fashion-mnist"
SYSTEM_FOLDER = Path("/usr/share/datasets/fashion-mnist")
NATIVE_SIZE = 28
#: File stem of each (part, kind); the registry rows are ``fashion-mnist-<part>-<kind>``
#: (the publisher's ``.gz``) and ``fashion-mnist-<part>-<kind>-idx`` (its payload).
FILES = {
    ("train", "images"): "train-images-idx3-ubyte",
    ("train", "labels"): "train-labels-idx1-ubyte",
    ("test", "images"): "t10k-images-idx3-ubyte",
    ("test", "labels"): "t10k-labels-idx1-ubyte",
}
PARTS = ("train", "test")
DEFAULT_PER_CLASS = (200, 100, 100)
MAX_IDX_BYTES = 1 << 30  # read_idx refuses larger payloads unless told otherwise
_IDX_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_INSTALL = (
    "install the Debian package (`apt-get install dataset-fashion-mnist`, which puts them in "
    "{system}) or put the four official files ({names}, from "
    "https://github.com/zalandoresearch/fashion-mnist) into {data}"
)


class FashionMNISTNotFoundError(FileNotFoundError):
    """The Fashion-MNIST files are in none of the places looked in."""


class IDXFormatError(ValueError):
    """Bytes that are not a well-formed IDX file (LeCun's MNIST format)."""


def parse_idx(buffer, name: str = "IDX data") -> np.ndarray:
    """Parse the bytes of one IDX file (the MNIST format of LeCun, Cortes and Burges).

    The header is checked strictly before any array is made: two zero bytes, a known
    type byte, a dimension count of 1 to 8, and a payload whose length is exactly the
    product of the sizes times the item size. A header claiming a shape larger than the
    bytes present is refused (the claimed size is computed with Python integers, never
    allocated).

    Parameters
    ----------
    buffer : bytes-like
        The whole (decompressed) file.
    name : str
        Name used in error messages.

    Returns
    -------
    ndarray of shape (d1, ..., dk)
        A read-only view of ``buffer`` in native byte order for unsigned bytes (Fashion-
        MNIST's only type); a native-order copy for the wider types.

    Raises
    ------
    IDXFormatError
        The header is malformed or does not match the payload's length.

    Examples
    --------
    >>> labels = parse_idx(bytes([0, 0, 0x08, 1, 0, 0, 0, 3, 7, 0, 9]))
    >>> labels.shape, labels.tolist()
    ((3,), [7, 0, 9])
    >>> parse_idx(bytes([0, 0, 0x08, 3]) + (60000).to_bytes(4, "big") * 3, name="huge")
    Traceback (most recent call last):
    ...
    nclib.data.fashion_mnist.IDXFormatError: huge: the header claims shape (60000, 60000, 60000) ...
    """
    view = memoryview(buffer).cast("B")
    if len(view) < 4:
        raise IDXFormatError(f"{name}: {len(view)} bytes, too short for an IDX header")
    if view[0] != 0 or view[1] != 0:
        raise IDXFormatError(f"{name}: an IDX file starts with two zero bytes, got {bytes(view[:2])!r} "
                             "(a gzip file that was not decompressed?)")
    code, ndim = view[2], view[3]
    if code not in _IDX_TYPES:
        raise IDXFormatError(f"{name}: unknown IDX type byte 0x{code:02X}")
    if not 1 <= ndim <= 8:
        raise IDXFormatError(f"{name}: the header claims {ndim} dimensions (1 to 8 allowed)")
    header = 4 + 4 * ndim
    if len(view) < header:
        raise IDXFormatError(f"{name}: {len(view)} bytes, too short for a {ndim}-dimensional header")
    shape = tuple(int.from_bytes(view[4 + 4 * k:8 + 4 * k], "big") for k in range(ndim))
    dtype = np.dtype(_IDX_TYPES[code])
    claimed = dtype.itemsize
    for size in shape:
        claimed *= size
    present = len(view) - header
    if claimed != present:
        raise IDXFormatError(f"{name}: the header claims shape {shape} ({claimed:,} bytes of data) "
                             f"but {present:,} bytes follow it")
    values = np.frombuffer(view, dtype=dtype, offset=header).reshape(shape)
    return values if dtype.itemsize == 1 else values.astype(dtype.newbyteorder("="))


def read_idx(path, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file, gzip-compressed (name ends in ``.gz``) or plain, with a size bound.

    No digest is checked here (:func:`fashion_mnist_dataset` verifies its files first).

    Parameters
    ----------
    path : path-like
        The file.
    max_bytes : int
        Refuse a (decompressed) file larger than this, before reading past it.

    Returns
    -------
    ndarray of shape (d1, ..., dk)
        See :func:`parse_idx`.

    Raises
    ------
    IDXFormatError
        Malformed IDX data, a corrupt gzip stream, or more than ``max_bytes``.

    Examples
    --------
    >>> import gzip, tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "labels-idx1-ubyte.gz"
    >>> _ = path.write_bytes(gzip.compress(bytes([0, 0, 8, 1, 0, 0, 0, 2, 4, 5])))
    >>> read_idx(path).tolist()
    [4, 5]
    """
    path = Path(path)
    return parse_idx(_read_bounded(path, max_bytes), name=path.name)


def fashion_mnist_folder(folder=None) -> Path | None:
    """Where the four Fashion-MNIST files are, or None.

    Parameters
    ----------
    folder : path-like, optional
        Look only here. Default: ``<data_dir()>/fashion-mnist`` first, then
        ``/usr/share/datasets/fashion-mnist`` (the Debian package ``dataset-fashion-mnist``).

    Returns
    -------
    pathlib.Path or None
        The first folder holding all four files (each as ``.gz`` or plain); nothing is
        verified here.

    Examples
    --------
    >>> import tempfile
    >>> fashion_mnist_folder(tempfile.mkdtemp()) is None
    True
    """
    for candidate in _search_folders(folder):
        if all(_find_file(candidate, stem) is not None for stem in FILES.values()):
            return candidate
    return None


def load_fashion_mnist_arrays(part: str = "train", folder=None, registry=None) -> tuple[np.ndarray, np.ndarray]:
    """The verified raw images and labels of one official part.

    Parameters
    ----------
    part : {"train", "test"}
        The official training (60,000) or test (10,000) set.
    folder : path-like, optional
        See :func:`fashion_mnist_folder`.
    registry : path-like, optional
        Another registry file with the ``fashion-mnist-*`` rows (default ``nclib/data/registry.csv``).

    Returns
    -------
    images : ndarray of shape (N, 28, 28), uint8
    labels : ndarray of shape (N,), int64, in 0..9

    Raises
    ------
    FashionMNISTNotFoundError
        The files are missing (the message names the places looked in and how to get them).
    nclib.data.fetch.ChecksumError
        A file's digest is not the registered one; nothing of it has been parsed.
    IDXFormatError
        A verified file still does not have the expected layout.

    Examples
    --------
    >>> import tempfile
    >>> load_fashion_mnist_arrays("test", folder=tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    nclib.data.fashion_mnist.FashionMNISTNotFoundError: Fashion-MNIST not found in ...
    """
    _check_part(part)
    where = _require_folder(folder)
    entries = _registry_rows(registry)
    images_stem, labels_stem = FILES[(part, "images")], FILES[(part, "labels")]
    images = parse_idx(_verified_payload(where, images_stem, entries), name=images_stem)
    labels = parse_idx(_verified_payload(where, labels_stem, entries), name=labels_stem)
    if images.ndim != 3 or images.shape[1:] != (NATIVE_SIZE, NATIVE_SIZE) or images.dtype != np.uint8:
        raise IDXFormatError(f"{images_stem}: expected uint8 images of shape (N, 28, 28), "
                             f"got {images.dtype} {images.shape}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXFormatError(f"{labels_stem}: expected uint8 labels of shape (N,), got {labels.dtype} {labels.shape}")
    if len(labels) != len(images):
        raise IDXFormatError(f"{images_stem} holds {len(images)} images but {labels_stem} {len(labels)} labels")
    if labels.size and labels.max() >= len(FASHION_MNIST_CLASSES):
        raise IDXFormatError(f"{labels_stem}: labels must lie in 0..9, found {int(labels.max())}")
    return images, labels.astype(np.int64)


def fashion_mnist_dataset(part: str = "train", size: int | None = 32, channels: int = 3,
                          folder=None, registry=None) -> Dataset:
    """One official Fashion-MNIST part as float32 images of shape (N, channels, size, size).

    Each 28x28 image is resized to ``size`` x ``size`` by bilinear interpolation
    (:func:`scipy.ndimage.zoom`, ``order=1``, corners aligned, as
    :func:`nclib.data.digits.digits_dataset` does) and copied into ``channels``
    identical channels, so models built for CIFAR-10 inputs (3, 32, 32) take it
    unchanged. Pixel values stay on the original 0..255 scale.

    Parameters
    ----------
    part : {"train", "test"}
        Official training (60,000 images) or test (10,000) set.
    size : int or None
        Output side in pixels (at least 8); None keeps the native 28 with the exact pixels.
    channels : int
        Number of identical channels (3 for RGB models, 1 for grey).
    folder : path-like, optional
        Where the files are (see :func:`fashion_mnist_folder`).
    registry : path-like, optional
        Another registry file (see :func:`load_fashion_mnist_arrays`).

    Returns
    -------
    Dataset
        ``inputs`` float32 of shape (N, channels, size, size) in [0, 255]; ``labels`` int64
        of shape (N,); ``classes`` :data:`FASHION_MNIST_CLASSES`. The full training set at
        size 32 with 3 channels takes 737 MB.

    Raises
    ------
    ValueError
        Unknown ``part``, ``size`` < 8 or ``channels`` < 1.
    FashionMNISTNotFoundError, nclib.data.fetch.ChecksumError, IDXFormatError
        See :func:`load_fashion_mnist_arrays`.

    Examples
    --------
    >>> fashion_mnist_dataset("validation")
    Traceback (most recent call last):
    ...
    ValueError: part must be one of ('train', 'test'), got 'validation'
    """
    _check_part(part)
    _check_image_options(size, channels)
    images, labels = load_fashion_mnist_arrays(part, folder, registry)
    return _as_dataset(images, labels, size, channels, {"official_split": part})


def fashion_mnist_splits(seed: int = 0, per_class=DEFAULT_PER_CLASS, size: int | None = 32,
                         channels: int = 3, folder=None, registry=None) -> Splits:
    """Class-balanced, seeded train / validation / test subsets of Fashion-MNIST.

    Train and validation are disjoint random subsets of the official training set; test
    is a random subset of the official test set. Each split holds exactly its count of
    every class; within a split the examples keep their official order. Only the chosen
    images are resized.

    Parameters
    ----------
    seed : int
        Seed of the choice; the same seed gives the same images.
    per_class : int or tuple of 3 ints
        Examples per class in train, val and test (one int: the same for all three).
        Train + val may not exceed 6,000, test 1,000 (the official counts per class).
    size : int or None
        Image side (see :func:`fashion_mnist_dataset`).
    channels : int
        Number of image channels.
    folder, registry : path-like, optional
        See :func:`load_fashion_mnist_arrays`.

    Returns
    -------
    Splits
        With the default (200, 100, 100): 2,000 / 1,000 / 1,000 images of shape
        (channels, size, size), float32 in [0, 255]; ``info`` records the official
        indices (``"official_index"``), split, seed and per_class.

    Raises
    ------
    ValueError
        Malformed ``per_class`` or more per class than a part holds.

    Examples
    --------
    >>> fashion_mnist_splits(per_class=(200, 0, 100))
    Traceback (most recent call last):
    ...
    ValueError: per_class must be a positive integer or three of them (train, val, test), got (200, 0, 100)
    """
    counts = _check_per_class(per_class)
    _check_image_options(size, channels)
    train_images, train_labels = load_fashion_mnist_arrays("train", folder, registry)
    train_index, val_index = _balanced_choice(train_labels, counts[:2], seed, stream=0, part="train")
    train = _as_dataset(train_images[train_index], train_labels[train_index], size, channels,
                        {"official_split": "train", "official_index": train_index})
    val = _as_dataset(train_images[val_index], train_labels[val_index], size, channels,
                      {"official_split": "train", "official_index": val_index})
    del train_images
    test_images, test_labels = load_fashion_mnist_arrays("test", folder, registry)
    (test_index,) = _balanced_choice(test_labels, counts[2:], seed, stream=1, part="test")
    test = _as_dataset(test_images[test_index], test_labels[test_index], size, channels,
                       {"official_split": "test", "official_index": test_index})
    for name, dataset in (("train", train), ("val", val), ("test", test)):
        dataset.info.update(split=name, seed=seed, per_class=counts)
    return Splits(train, val, test)


# --- helpers ----------------------------------------------------------------------------

def _search_folders(folder) -> list[Path]:
    if folder is not None:
        return [Path(folder)]
    return [data_dir() / FOLDER_NAME, SYSTEM_FOLDER]


def _find_file(folder: Path, stem: str) -> Path | None:
    for name in (stem + ".gz", stem):
        if (folder / name).is_file():
            return folder / name
    return None


def _require_folder(folder) -> Path:
    where = fashion_mnist_folder(folder)
    if where is None:
        looked = " or ".join(str(p) for p in _search_folders(folder))
        names = ", ".join(f"{stem}.gz" for stem in FILES.values())
        how = _INSTALL.format(system=SYSTEM_FOLDER, names=names,
                              data=Path(folder) if folder is not None else data_dir() / FOLDER_NAME)
        raise FashionMNISTNotFoundError(f"Fashion-MNIST not found in {looked} (each needs all four "
                                        f"files, .gz or plain): {how}")
    return where


def _registry_rows(registry) -> dict:
    entries = registry_entries(registry)
    rows = {}
    for (part, kind), stem in FILES.items():
        for suffix in ("", "-idx"):
            key = f"fashion-mnist-{part}-{kind}{suffix}"
            if key not in entries:
                raise ValueError(f"the data registry has no row {key!r} (needed to verify {stem})")
            rows[key] = entries[key]
        rows[stem] = (rows[f"fashion-mnist-{part}-{kind}"], rows[f"fashion-mnist-{part}-{kind}-idx"])
    return rows


def _verified_payload(folder: Path, stem: str, rows: dict) -> bytes:
    """The decompressed bytes of ``stem``, verified against the registry before returning."""
    path = _find_file(folder, stem)
    published, payload_row = rows[stem]
    limit = payload_row["size_bytes"] or MAX_IDX_BYTES
    if path.suffix == ".gz":
        published_ok = _md5_of_file(path, published["algorithm"]) == published["digest"].lower()
        payload = _read_bounded(path, limit)
        if published_ok:
            return payload
    else:
        payload = _read_bounded(path, limit)
    actual = hashlib.new(payload_row["algorithm"], payload).hexdigest()
    if actual != payload_row["digest"].lower():
        what = (f"its {published['algorithm']} is not the published {published['digest']} and its "
                "decompressed " if path.suffix == ".gz" else "its ")
        raise ChecksumError(
            f"{path}: {what}content has {payload_row['algorithm']} {actual}, expected "
            f"{payload_row['digest']}; the file is corrupt or not the official one (replace it)"
        )
    return payload


def _md5_of_file(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _read_bounded(path: Path, limit: int) -> bytes:
    """All (decompressed) bytes of ``path``; refuses more than ``limit`` without reading on."""
    opener = gzip.open if path.suffix == ".gz" else open
    chunks, total = [], 0
    try:
        with opener(path, "rb") as handle:
            while True:
                block = handle.read(min(1 << 20, limit + 1 - total))
                if not block:
                    break
                chunks.append(block)
                total += len(block)
                if total > limit:
                    raise IDXFormatError(f"{path.name}: more than {limit:,} bytes of data "
                                         "(not the official file, or a decompression bomb)")
    except (OSError, EOFError, zlib.error) as error:
        raise IDXFormatError(f"{path.name}: cannot be read as {'gzip' if opener is gzip.open else 'a file'} "
                             f"({error})") from None
    return b"".join(chunks)


def _as_dataset(images: np.ndarray, labels: np.ndarray, size, channels: int, info: dict) -> Dataset:
    pixels = _resize(images, size)
    inputs = np.repeat(pixels[:, None, :, :], channels, axis=1)
    info = {"source": "Fashion-MNIST (Xiao, Rasul and Vollgraf 2017), official IDX files",
            "size": size or NATIVE_SIZE, "channels": channels, "num_examples": int(len(labels)), **info}
    return Dataset(inputs, np.asarray(labels, dtype=np.int64), list(FASHION_MNIST_CLASSES), info)


def _resize(images: np.ndarray, size, chunk: int = 4096) -> np.ndarray:
    """(N, 28, 28) uint8 → (N, size, size) float32 in [0, 255], bilinear, in chunks."""
    if size is None or size == images.shape[-1]:
        return images.astype(np.float32)
    from scipy.ndimage import zoom

    scale = size / images.shape[-1]
    out = np.empty((len(images), size, size), dtype=np.float32)
    for start in range(0, len(images), chunk):
        block = images[start:start + chunk].astype(np.float64)
        out[start:start + chunk] = np.clip(zoom(block, (1.0, scale, scale), order=1), 0.0, 255.0)
    return out


def _balanced_choice(labels: np.ndarray, counts, seed: int, stream: int, part: str) -> list[np.ndarray]:
    """Disjoint, sorted index arrays holding ``counts[k]`` examples of every class."""
    for label in range(len(FASHION_MNIST_CLASSES)):
        available = int(np.count_nonzero(labels == label))
        if available < sum(counts):
            raise ValueError(f"per_class asks for {sum(counts)} examples of class "
                             f"{FASHION_MNIST_CLASSES[label]!r} from the official {part} set, "
                             f"which holds {available}")
    return per_class_parts(labels, counts, len(FASHION_MNIST_CLASSES), np.random.SeedSequence([seed, stream]))


def _check_part(part) -> None:
    if part not in PARTS:
        raise ValueError(f"part must be one of {PARTS}, got {part!r}")


def _check_image_options(size, channels) -> None:
    if size is not None and (isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 8):
        raise ValueError(f"size must be None or an integer >= 8, got {size!r}")
    if isinstance(channels, bool) or not isinstance(channels, (int, np.integer)) or channels < 1:
        raise ValueError(f"channels must be an integer >= 1, got {channels!r}")


def _check_per_class(per_class) -> tuple[int, int, int]:
    values = (per_class,) * 3 if isinstance(per_class, (int, np.integer)) else per_class
    try:
        values = tuple(values)
    except TypeError:
        values = ()
    if len(values) != 3 or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1
                               for v in values):
        raise ValueError("per_class must be a positive integer or three of them (train, val, test), "
                         f"got {per_class!r}")
    return tuple(int(v) for v in values)
