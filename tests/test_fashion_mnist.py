"""Fashion-MNIST from its IDX files: strict parsing, verification first, resizing, splits.

The fixture writes the four files in the exact published format (IDX headers of LeCun's
MNIST format, gzip with the original file name in the header) with a few images, and a
registry holding their digests. Tests that need the real data skip when it is missing.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import tracemalloc

import numpy as np
import pytest

from nclib.data import fashion_mnist as fm
from nclib.data.fashion_mnist import (FASHION_MNIST_CLASSES, FashionMNISTNotFoundError, IDXFormatError,
                                      fashion_mnist_dataset, fashion_mnist_folder, fashion_mnist_splits,
                                      load_fashion_mnist_arrays, parse_idx, read_idx)
from nclib.data.fetch import ChecksumError
from nclib.data.registry import COLUMNS, registry_entries

TRAIN_PER_CLASS, TEST_PER_CLASS = 6, 3


def idx_bytes(array: np.ndarray) -> bytes:
    """An IDX file of unsigned bytes: 0, 0, 0x08, ndim, big-endian sizes, values."""
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(int(n).to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def published_gzip(payload: bytes, name: str) -> bytes:
    """gzip as published: the original file name and a 2017 time in the header."""
    buffer = io.BytesIO()
    with gzip.GzipFile(filename=name, mode="wb", fileobj=buffer, mtime=1503500000) as handle:
        handle.write(payload)
    return buffer.getvalue()


def everything_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def make_fixture(folder, seed=0):
    """Four tiny published-format files; returns (payloads, registry path)."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    payloads, rows = {}, []
    for part, per_class in (("train", TRAIN_PER_CLASS), ("test", TEST_PER_CLASS)):
        labels = rng.permutation(np.repeat(np.arange(10), per_class)).astype(np.uint8)
        images = rng.integers(0, 256, size=(len(labels), 28, 28), dtype=np.uint8)
        images[:, 0, 0], images[:, -1, -1] = 0, 255
        for kind, array in (("images", images), ("labels", labels)):
            stem = fm.FILES[(part, kind)]
            payload = idx_bytes(array)
            compressed = published_gzip(payload, stem)
            (folder / f"{stem}.gz").write_bytes(compressed)
            payloads[stem] = (array, payload)
            key = f"fashion-mnist-{part}-{kind}"
            rows.append([key, f"{stem}.gz", "file:fixture", "md5", hashlib.md5(compressed).hexdigest(),
                         len(compressed), "fixture"])
            rows.append([key + "-idx", stem, "file:fixture", "md5", hashlib.md5(payload).hexdigest(),
                         len(payload), "fixture"])
    registry = folder.parent / f"{folder.name}-registry.csv"
    with open(registry, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    return payloads, registry


@pytest.fixture
def fixture(tmp_path):
    folder = tmp_path / "fashion-mnist"
    payloads, registry = make_fixture(folder)
    return folder, payloads, registry


# --- the IDX format ----------------------------------------------------------------------

def test_parse_idx_reads_images_and_labels_in_c_order():
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    parsed = parse_idx(idx_bytes(images))
    assert parsed.dtype == np.uint8 and parsed.shape == (2, 3, 4)
    assert np.array_equal(parsed, images)
    assert parse_idx(idx_bytes(np.array([9, 0, 3]))).tolist() == [9, 0, 3]


def test_parse_idx_reads_wider_big_endian_types():
    values = np.array([1.5, -2.0], dtype=">f4")
    parsed = parse_idx(bytes([0, 0, 0x0D, 1, 0, 0, 0, 2]) + values.tobytes())
    assert parsed.tolist() == [1.5, -2.0] and parsed.dtype.isnative
    parsed = parse_idx(bytes([0, 0, 0x0C, 1, 0, 0, 0, 1]) + (-5).to_bytes(4, "big", signed=True))
    assert parsed.tolist() == [-5]


@pytest.mark.parametrize("data, message", [
    (b"\x00\x00\x08", "too short for an IDX header"),
    (b"\x1f\x8b\x08\x01\x00\x00\x00\x01\x07", "starts with two zero bytes"),
    (b"\x00\x00\x07\x01\x00\x00\x00\x01\x07", "unknown IDX type byte 0x07"),
    (b"\x00\x00\x08\x00", "claims 0 dimensions"),
    (b"\x00\x00\x08\x09" + b"\x00" * 36, "claims 9 dimensions"),
    (b"\x00\x00\x08\x03\x00\x00\x00\x02", "too short for a 3-dimensional header"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", "claims shape (3,) (3 bytes of data) but 2 bytes"),
    (b"\x00\x00\x08\x01\x00\x00\x00\x01\x01\x02", "claims shape (1,) (1 bytes of data) but 2 bytes"),
    (b"\x00\x00\x0b\x01\x00\x00\x00\x02\x00\x01\x00", "(4 bytes of data) but 3 bytes"),
], ids=["short", "gzip-magic", "type", "0-dims", "9-dims", "short-header", "truncated", "trailing", "int16"])
def test_parse_idx_refuses_malformed_headers(data, message):
    with pytest.raises(IDXFormatError, match="labels.idx: .*" + message.replace("(", r"\(").replace(")", r"\)")):
        parse_idx(data, name="labels.idx")


def test_an_impossible_shape_is_refused_without_allocating_it():
    huge = bytes([0, 0, 0x0E, 3]) + b"\xff\xff\xff\xff" * 3  # 8 * (2**32 - 1)**3 bytes claimed
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match="4294967295, 4294967295, 4294967295"):
            parse_idx(huge + b"\x00" * 64)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20


def test_read_idx_reads_gzip_and_plain_and_bounds_the_size(tmp_path):
    payload = idx_bytes(np.arange(10, dtype=np.uint8))
    (tmp_path / "x-idx1-ubyte").write_bytes(payload)
    (tmp_path / "x-idx1-ubyte.gz").write_bytes(published_gzip(payload, "x-idx1-ubyte"))
    assert read_idx(tmp_path / "x-idx1-ubyte").tolist() == list(range(10))
    assert read_idx(tmp_path / "x-idx1-ubyte.gz").tolist() == list(range(10))
    with pytest.raises(IDXFormatError, match="x-idx1-ubyte.gz: more than 12 bytes"):
        read_idx(tmp_path / "x-idx1-ubyte.gz", max_bytes=12)


def test_read_idx_refuses_a_corrupt_gzip_naming_the_file(tmp_path):
    compressed = published_gzip(idx_bytes(np.arange(200, dtype=np.uint8)), "y")
    (tmp_path / "y.gz").write_bytes(compressed[: len(compressed) // 2])
    with pytest.raises(IDXFormatError, match="y.gz: cannot be read as gzip"):
        read_idx(tmp_path / "y.gz")
    (tmp_path / "z.gz").write_bytes(b"not gzip at all")
    with pytest.raises(IDXFormatError, match="z.gz: cannot be read as gzip"):
        read_idx(tmp_path / "z.gz")


# --- finding and verifying the files -----------------------------------------------------

def test_the_registry_holds_the_published_digests():
    entries = registry_entries()
    published = {  # the Fashion-MNIST README's table
        "fashion-mnist-train-images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "fashion-mnist-train-labels": "25c81989df183df01b3e8a0aad5dffbe",
        "fashion-mnist-test-images": "bef4ecab320f06d8554ea6380940ec79",
        "fashion-mnist-test-labels": "bb300cfdad3c16e7a12a480ee83cd310",
    }
    for name, digest in published.items():
        assert entries[name]["digest"] == digest and entries[name]["algorithm"] == "md5"
        assert entries[name]["filename"].endswith(".gz")
        payload = entries[name + "-idx"]
        assert payload["filename"] + ".gz" == entries[name]["filename"]
    # IDX sizes: header plus one byte per pixel or label
    assert entries["fashion-mnist-train-images-idx"]["size_bytes"] == 16 + 60000 * 28 * 28
    assert entries["fashion-mnist-test-labels-idx"]["size_bytes"] == 8 + 10000


def test_fixture_loads_through_the_published_digest(fixture):
    folder, payloads, registry = fixture
    before = everything_under(folder.parent)
    images, labels = load_fashion_mnist_arrays("train", folder, registry)
    assert images.shape == (60, 28, 28) and images.dtype == np.uint8
    assert labels.dtype == np.int64 and np.bincount(labels).tolist() == [TRAIN_PER_CLASS] * 10
    assert np.array_equal(images, payloads["train-images-idx3-ubyte"][0])
    assert everything_under(folder.parent) == before  # reading writes nothing


def test_a_recompressed_or_plain_copy_is_accepted_by_its_payload_digest(fixture):
    folder, payloads, registry = fixture
    stem = "t10k-images-idx3-ubyte"
    # as the Debian package ships it: same payload, gzip header without name or time
    (folder / f"{stem}.gz").write_bytes(gzip.compress(payloads[stem][1], mtime=0))
    stem = "t10k-labels-idx1-ubyte"
    (folder / f"{stem}.gz").unlink()
    (folder / stem).write_bytes(payloads[stem][1])
    images, labels = load_fashion_mnist_arrays("test", folder, registry)
    assert np.array_equal(images, payloads["t10k-images-idx3-ubyte"][0])
    assert np.array_equal(labels, payloads[stem][0])


def test_a_tampered_file_is_refused_before_it_is_parsed(fixture):
    folder, payloads, registry = fixture
    stem = "t10k-labels-idx1-ubyte"
    tampered = bytearray(payloads[stem][1])
    tampered[3] = 7  # a header that parse_idx would refuse: the digest must catch it first
    (folder / f"{stem}.gz").write_bytes(published_gzip(bytes(tampered), stem))
    with pytest.raises(ChecksumError, match=f"{stem}.gz: its md5 is not the published"):
        load_fashion_mnist_arrays("test", folder, registry)
    (folder / f"{stem}.gz").unlink()
    (folder / stem).write_bytes(bytes(tampered))
    with pytest.raises(ChecksumError, match=f"{stem}: its content has md5"):
        load_fashion_mnist_arrays("test", folder, registry)


def test_a_gzip_bomb_is_cut_off_at_the_registered_size(fixture):
    folder, payloads, registry = fixture
    stem = "t10k-labels-idx1-ubyte"
    (folder / f"{stem}.gz").write_bytes(gzip.compress(b"\x00" * (8 << 20)))  # 8 MiB of zeros
    tracemalloc.start()
    try:
        with pytest.raises(IDXFormatError, match=f"{stem}.gz: more than 38 bytes"):
            load_fashion_mnist_arrays("test", folder, registry)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20


def test_missing_files_name_both_places_and_how_to_get_them(tmp_path, monkeypatch):
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(fm, "SYSTEM_FOLDER", tmp_path / "system")
    assert fashion_mnist_folder() is None
    with pytest.raises(FashionMNISTNotFoundError) as error:
        fashion_mnist_dataset("test")
    message = str(error.value)
    assert str(tmp_path / "data" / "fashion-mnist") in message and str(tmp_path / "system") in message
    assert "apt-get install dataset-fashion-mnist" in message and "t10k-images-idx3-ubyte.gz" in message
    assert isinstance(error.value, FileNotFoundError)
    assert everything_under(tmp_path) == []


def test_the_data_folder_comes_before_the_system_folder(tmp_path, monkeypatch):
    make_fixture(tmp_path / "data" / "fashion-mnist")
    make_fixture(tmp_path / "system", seed=1)
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "data"))
    monkeypatch.setattr(fm, "SYSTEM_FOLDER", tmp_path / "system")
    assert fashion_mnist_folder() == tmp_path / "data" / "fashion-mnist"
    (tmp_path / "data" / "fashion-mnist" / "train-labels-idx1-ubyte.gz").unlink()  # incomplete
    assert fashion_mnist_folder() == tmp_path / "system"


def test_inconsistent_files_are_refused(tmp_path):
    folder = tmp_path / "fashion-mnist"
    payloads, _ = make_fixture(folder)
    # a labels file with one label too many, registered as if it were the official one
    stem = "t10k-labels-idx1-ubyte"
    labels = np.append(payloads[stem][0], 3)
    (folder / f"{stem}.gz").write_bytes(published_gzip(idx_bytes(labels), stem))
    registry = _registry_for(folder)
    with pytest.raises(IDXFormatError, match="holds 30 images but t10k-labels-idx1-ubyte 31 labels"):
        load_fashion_mnist_arrays("test", folder, registry)


def _registry_for(folder):
    """A registry matching whatever .gz files ``folder`` now holds."""
    rows = []
    for (part, kind), stem in fm.FILES.items():
        compressed = (folder / f"{stem}.gz").read_bytes()
        payload = gzip.decompress(compressed)
        key = f"fashion-mnist-{part}-{kind}"
        rows.append([key, f"{stem}.gz", "", "md5", hashlib.md5(compressed).hexdigest(), len(compressed), ""])
        rows.append([key + "-idx", stem, "", "md5", hashlib.md5(payload).hexdigest(), len(payload), ""])
    registry = folder.parent / "rebuilt-registry.csv"
    with open(registry, "w", newline="") as handle:
        csv.writer(handle).writerows([COLUMNS, *rows])
    return registry


# --- images and splits -------------------------------------------------------------------

def test_native_size_keeps_the_exact_pixels(fixture):
    folder, payloads, registry = fixture
    data = fashion_mnist_dataset("test", size=None, channels=1, folder=folder, registry=registry)
    assert data.inputs.shape == (30, 1, 28, 28) and data.inputs.dtype == np.float32
    assert np.array_equal(data.inputs[:, 0], payloads["t10k-images-idx3-ubyte"][0].astype(np.float32))
    assert data.classes == FASHION_MNIST_CLASSES and data.classes[0] == "T-shirt/top"
    assert data.info["official_split"] == "test"


def test_bilinear_resize_to_cifar_shape(fixture):
    folder, payloads, registry = fixture
    data = fashion_mnist_dataset("test", folder=folder, registry=registry)
    raw = payloads["t10k-images-idx3-ubyte"][0].astype(np.float64)
    assert data.inputs.shape == (30, 3, 32, 32) and data.labels.dtype == np.int64
    assert np.array_equal(data.inputs[:, 0], data.inputs[:, 2])
    assert data.inputs.min() >= 0 and data.inputs.max() <= 255
    assert np.all(data.inputs[:, 0, 0, 0] == 0) and np.all(data.inputs[:, 0, -1, -1] == 255)  # corners aligned
    # size 55 maps output pixel i to input position i * 27 / 54 = i / 2
    big = fashion_mnist_dataset("test", size=55, channels=1, folder=folder, registry=registry).inputs[:, 0]
    assert np.allclose(big[:, 4, 6], raw[:, 2, 3], atol=1e-3)
    assert np.allclose(big[:, 3, 6], (raw[:, 1, 3] + raw[:, 2, 3]) / 2, atol=1e-3)


@pytest.mark.parametrize("kwargs, message", [
    ({"part": "val"}, "part must be one of"),
    ({"size": 4}, "size must be None or an integer >= 8"),
    ({"size": 32.0}, "size must be None or an integer >= 8"),
    ({"channels": 0}, "channels must be an integer >= 1"),
])
def test_bad_options_are_refused_before_reading(kwargs, message):
    with pytest.raises(ValueError, match=message):
        fashion_mnist_dataset(**kwargs)


def test_splits_are_class_balanced_disjoint_and_seeded(fixture):
    folder, _, registry = fixture
    splits = fashion_mnist_splits(seed=3, per_class=(2, 3, 1), size=None, channels=1,
                                  folder=folder, registry=registry)
    assert splits.sizes() == {"train": 20, "val": 30, "test": 10}
    for part, count in (("train", 2), ("val", 3), ("test", 1)):
        dataset = getattr(splits, part)
        assert np.bincount(dataset.labels, minlength=10).tolist() == [count] * 10
        assert dataset.info["split"] == part and dataset.info["per_class"] == (2, 3, 1)
    assert not set(splits.train.info["official_index"]) & set(splits.val.info["official_index"])
    assert np.all(np.diff(splits.train.info["official_index"]) > 0)
    again = fashion_mnist_splits(seed=3, per_class=(2, 3, 1), size=None, channels=1,
                                 folder=folder, registry=registry)
    other = fashion_mnist_splits(seed=4, per_class=(2, 3, 1), size=None, channels=1,
                                 folder=folder, registry=registry)
    for part in ("train", "val", "test"):
        assert np.array_equal(getattr(splits, part).inputs, getattr(again, part).inputs)
    assert not np.array_equal(splits.train.info["official_index"], other.train.info["official_index"])


def test_splits_with_one_count_and_too_many(fixture):
    folder, _, registry = fixture
    splits = fashion_mnist_splits(per_class=2, size=8, folder=folder, registry=registry)
    assert splits.sizes() == {"train": 20, "val": 20, "test": 20} and splits.test.inputs.shape[1:] == (3, 8, 8)
    with pytest.raises(ValueError, match="asks for 7 examples of class .* official train set, which holds 6"):
        fashion_mnist_splits(per_class=(4, 3, 1), folder=folder, registry=registry)
    with pytest.raises(ValueError, match="official test set, which holds 3"):
        fashion_mnist_splits(per_class=(1, 1, 4), folder=folder, registry=registry)


@pytest.mark.parametrize("per_class", [0, (1, 2), (1, 2, -1), "abc", True, (1.0, 1, 1)])
def test_malformed_per_class(per_class):
    with pytest.raises(ValueError, match="per_class must be a positive integer or three"):
        fashion_mnist_splits(per_class=per_class)


# --- the real data (skipped without it) --------------------------------------------------

real = pytest.mark.skipif(fashion_mnist_folder() is None,
                          reason="Fashion-MNIST files not installed (apt-get install dataset-fashion-mnist, "
                                 "or put them in <data_dir()>/fashion-mnist)")


@real
def test_real_test_set():
    data = fashion_mnist_dataset("test", size=None, channels=1)
    assert data.inputs.shape == (10000, 1, 28, 28)
    assert np.bincount(data.labels).tolist() == [1000] * 10
    assert data.labels[:10].tolist() == [9, 2, 1, 1, 6, 1, 4, 6, 5, 7]  # ankle boot, pullover, trouser, ...
    assert data.inputs.min() == 0 and data.inputs.max() == 255


@real
def test_real_training_labels_and_default_splits():
    images, labels = load_fashion_mnist_arrays("train")
    assert images.shape == (60000, 28, 28) and np.bincount(labels).tolist() == [6000] * 10
    splits = fashion_mnist_splits(seed=0)
    assert splits.sizes() == {"train": 2000, "val": 1000, "test": 1000}
    assert splits.train.inputs.shape[1:] == (3, 32, 32)
