"""The CIFAR-10 loader on a tiny archive in the official format."""

from __future__ import annotations

import hashlib
import io
import pickle
import shutil
import tarfile

import numpy as np
import pytest

from cifar10_fixture import LABEL_NAMES, tiny_cifar10_batches, write_tiny_cifar10
from nclib.data import cifar10, fetch
from nclib.data.cifar10 import cifar10_splits, limit_per_class, load_cifar10
from nclib.data.base import Dataset
from nclib.data.fetch import ChecksumError, UnsafeArchiveError
from nclib.data.registry import registry_entry

OFFICIAL_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
OFFICIAL_MD5 = "c58f30108f718f92721af3b95e74349a"


@pytest.fixture
def tiny(tmp_path):
    folder = tmp_path / "data"
    path, md5 = write_tiny_cifar10(folder, per_batch=20, seed=3)
    return folder, path, md5


def write_archive(path, members):
    """A .tar.gz with the given {member name: bytes}; returns its MD5."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    return hashlib.md5(path.read_bytes()).hexdigest()


def official_members(**replace):
    """Members of a tiny official-format archive, some pickles replaced by raw bytes."""
    members = {f"cifar-10-batches-py/{name}": pickle.dumps(content, protocol=2)
               for name, content in tiny_cifar10_batches(10, seed=0).items()}
    members.update({f"cifar-10-batches-py/{name}": payload for name, payload in replace.items()})
    return members


def forbid_unpickling(monkeypatch):
    def refuse(path):
        raise AssertionError(f"{path} was unpickled")
    monkeypatch.setattr(cifar10, "_read_pickle", refuse)


# --- loading -----------------------------------------------------------------------------

def test_loader_shapes_labels_and_classes(tiny):
    folder, _, md5 = tiny
    train, test = load_cifar10(folder, expected_digest=md5)
    assert train.inputs.shape == (100, 3, 32, 32) and test.inputs.shape == (20, 3, 32, 32)
    assert train.inputs.dtype == np.float32 and train.labels.dtype == np.int64
    assert train.classes == LABEL_NAMES and test.classes == LABEL_NAMES
    assert train.classes[0] == "airplane" and train.classes[9] == "truck"
    batches = tiny_cifar10_batches(20, seed=3)
    expected_train = sum((batches[f"data_batch_{k}"][b"labels"] for k in range(1, 6)), [])
    assert train.labels.tolist() == expected_train
    assert test.labels.tolist() == batches["test_batch"][b"labels"]
    assert np.bincount(train.labels).tolist() == [10] * 10


def test_pixels_round_trip_from_rgb_planes(tiny):
    folder, _, md5 = tiny
    train, test = load_cifar10(folder, expected_digest=md5)
    row = tiny_cifar10_batches(20, seed=3)["data_batch_3"][b"data"][5]
    image = train.inputs[2 * 20 + 5]  # batch 3 follows batches 1 and 2 (20 images each)
    # (channel, row, column) -> position in the 3,072 values: channel*1024 + row*32 + column
    for (channel, r, c), position in {(0, 0, 0): 0, (0, 0, 31): 31, (0, 1, 0): 32,
                                      (1, 0, 0): 1024, (2, 0, 0): 2048, (2, 31, 31): 3071,
                                      (1, 10, 7): 1024 + 327}.items():
        assert image[channel, r, c] == row[position]
    test_row = tiny_cifar10_batches(20, seed=3)["test_batch"][b"data"][19]
    assert test.inputs[19, 2, 31, 31] == test_row[3071]
    assert train.inputs.min() >= 0 and train.inputs.max() <= 255
    assert np.array_equal(train.inputs, np.round(train.inputs))


def test_second_load_skips_extraction_and_survives_archive_removal(tiny, monkeypatch):
    folder, path, md5 = tiny
    first, _ = load_cifar10(folder, expected_digest=md5)
    marker = folder / "cifar-10-batches-py" / ".nclib-verified"
    assert marker.read_text().split() == ["md5", md5]

    def no_extraction(*args, **kwargs):
        raise AssertionError("extracted again")
    monkeypatch.setattr(fetch, "safe_extract", no_extraction)
    again, _ = load_cifar10(folder, expected_digest=md5)
    assert np.array_equal(first.inputs, again.inputs)
    path.unlink()
    without_archive, _ = load_cifar10(folder, expected_digest=md5)
    assert np.array_equal(first.labels, without_archive.labels)


def test_stale_marker_means_extract_again(tiny):
    folder, path, md5 = tiny
    load_cifar10(folder, expected_digest=md5)
    path.unlink()
    _, new_md5 = write_tiny_cifar10(folder, per_batch=10, seed=4)
    train, _ = load_cifar10(folder, expected_digest=new_md5)
    assert len(train) == 50
    path.unlink()
    with pytest.raises(FileNotFoundError):  # the marker records the new digest, not the old
        load_cifar10(folder, expected_digest=md5)


# --- refusals ----------------------------------------------------------------------------

def test_wrong_checksum_is_refused_before_extraction_or_unpickling(tiny, monkeypatch):
    folder, path, _ = tiny
    forbid_unpickling(monkeypatch)
    with pytest.raises(ChecksumError, match="expected 0000"):
        load_cifar10(folder, expected_digest="0" * 32)
    with pytest.raises(ChecksumError, match=OFFICIAL_MD5):  # the fixture is not the official file
        load_cifar10(folder)
    assert sorted(p.name for p in folder.iterdir()) == [path.name]


@pytest.mark.parametrize("hostile", ["../evil", "ABSOLUTE", "symlink"])
def test_hostile_members_are_refused_and_nothing_is_written(tmp_path, monkeypatch, hostile):
    folder = tmp_path / "data"
    folder.mkdir()
    archive = folder / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, payload in official_members().items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        if hostile == "symlink":
            link = tarfile.TarInfo("cifar-10-batches-py/escape")
            link.type, link.linkname = tarfile.SYMTYPE, "../../outside"
            tar.addfile(link)
        else:
            name = str(tmp_path / "evil") if hostile == "ABSOLUTE" else hostile
            info = tarfile.TarInfo(name)
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    with tarfile.open(archive) as tar:  # the archive really holds the hostile name
        assert any(("evil" in m.name) or m.issym() for m in tar.getmembers())
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    forbid_unpickling(monkeypatch)
    with pytest.raises(UnsafeArchiveError):
        load_cifar10(folder, expected_digest=md5)
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["cifar-10-python.tar.gz", "data"]


def test_pickle_with_foreign_callable_is_refused(tmp_path, capsys):
    class Shout:
        def __reduce__(self):
            return (print, ("this must not run",))

    folder = tmp_path / "data"
    folder.mkdir()
    bad = pickle.dumps({b"data": Shout(), b"labels": []}, protocol=2)
    md5 = write_archive(folder / "cifar-10-python.tar.gz", official_members(data_batch_2=bad))
    with pytest.raises(ValueError, match=r"data_batch_2 .* refusing to load (__builtin__|builtins)\.print"):
        load_cifar10(folder, expected_digest=md5)
    assert "this must not run" not in capsys.readouterr().out


def test_batch_with_wrong_layout_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    batch = {b"data": np.zeros((10, 1024), np.uint8), b"labels": [0] * 10}
    md5 = write_archive(folder / "cifar-10-python.tar.gz",
                        official_members(test_batch=pickle.dumps(batch, protocol=2)))
    with pytest.raises(ValueError, match=r"test_batch: b'data' must be uint8 of shape \(n, 3072\)"):
        load_cifar10(folder, expected_digest=md5)


def test_archive_without_the_batches_is_refused(tmp_path):
    folder = tmp_path / "data"
    folder.mkdir()
    md5 = write_archive(folder / "cifar-10-python.tar.gz", {"cifar-10-batches-py/readme.html": b"x"})
    with pytest.raises(ValueError, match="lacks cifar-10-batches-py/data_batch_1"):
        load_cifar10(folder, expected_digest=md5)


def test_missing_archive_says_where_to_put_it(tmp_path):
    folder = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError) as error:
        load_cifar10(folder)
    message = str(error.value)
    assert str(folder / "cifar-10-python.tar.gz") in message
    assert OFFICIAL_URL in message and OFFICIAL_MD5 in message and "NCLIB_DATA" in message
    assert not folder.exists()


def test_default_folder_is_the_data_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("NCLIB_DATA", str(tmp_path / "elsewhere"))
    with pytest.raises(FileNotFoundError, match="elsewhere"):
        load_cifar10()


def test_download_uses_the_official_url_and_sha256(tmp_path, monkeypatch):
    source = tmp_path / "source"
    _, md5 = write_tiny_cifar10(source, per_batch=10, seed=1)
    calls = []

    def fake_download(url, path, sha256):
        calls.append((url, sha256))
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / "cifar-10-python.tar.gz", path)
        return path

    monkeypatch.setattr(fetch, "download", fake_download)
    train, test = load_cifar10(tmp_path / "data", expected_digest=md5, download=True)
    assert calls == [(OFFICIAL_URL, registry_entry("cifar10-sha256")["digest"])]
    assert len(train) == 50 and len(test) == 10


def test_registry_rows():
    md5_row, sha_row = registry_entry("cifar10"), registry_entry("cifar10-sha256")
    assert (md5_row["url"], md5_row["algorithm"], md5_row["digest"]) == (OFFICIAL_URL, "md5", OFFICIAL_MD5)
    assert md5_row["size_bytes"] == sha_row["size_bytes"] == 170498071
    assert sha_row["algorithm"] == "sha256" and len(sha_row["digest"]) == 64
    with pytest.raises(ValueError, match="no registry entry named 'nope'"):
        registry_entry("nope")


# --- splits ------------------------------------------------------------------------------

def test_splits_sizes_and_stratification(tiny):
    folder, _, md5 = tiny
    splits = cifar10_splits(seed=0, folder=folder, train_size=60, val_size=20, expected_digest=md5)
    assert splits.sizes() == {"train": 60, "val": 20, "test": 20}
    assert np.bincount(splits.train.labels).tolist() == [6] * 10
    assert np.bincount(splits.val.labels).tolist() == [2] * 10
    rows = [tuple(x.ravel()[:16]) for x in np.concatenate([splits.train.inputs, splits.val.inputs])]
    assert len(set(rows)) == 80  # train and validation are disjoint
    assert splits.train.classes == LABEL_NAMES and splits.val.info["split"] == "val"


def test_paper_sizes_use_the_whole_training_set(tiny):
    folder, _, md5 = tiny
    splits = cifar10_splits(seed=0, folder=folder, train_size=80, val_size=20, expected_digest=md5)
    assert splits.sizes() == {"train": 80, "val": 20, "test": 20}
    with pytest.raises(ValueError, match="exceeds the 100 examples"):
        cifar10_splits(folder=folder, expected_digest=md5)  # 40,000 + 10,000 > 100


def test_splits_are_seeded(tiny):
    folder, _, md5 = tiny
    options = dict(folder=folder, train_size=80, val_size=20, expected_digest=md5)
    first, again, other = (cifar10_splits(seed=s, **options) for s in (1, 1, 2))
    assert np.array_equal(first.train.inputs, again.train.inputs)
    assert np.array_equal(first.val.labels, again.val.labels)
    assert not np.array_equal(first.val.inputs, other.val.inputs)
    assert np.array_equal(first.test.inputs, other.test.inputs)  # the official test set


def test_per_class_limits_every_split(tiny):
    folder, _, md5 = tiny
    splits = cifar10_splits(folder=folder, train_size=80, val_size=20, per_class=3, expected_digest=md5)
    assert np.bincount(splits.train.labels).tolist() == [3] * 10  # 8 per class -> 3
    assert np.bincount(splits.val.labels).tolist() == [2] * 10    # 2 per class stay
    assert np.bincount(splits.test.labels).tolist() == [2] * 10


def test_limit_per_class_keeps_order_and_rejects_bad_values():
    data = Dataset(np.arange(7, dtype=np.float32), [1, 0, 1, 1, 0, 1, 2], ["a", "b", "c"])
    small = limit_per_class(data, 2, seed=5)
    assert np.bincount(small.labels).tolist() == [2, 2, 1]
    assert np.all(np.diff(small.inputs) > 0)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="per_class must be a positive integer"):
            limit_per_class(data, bad)
    with pytest.raises(ValueError, match="algorithm must be one of"):
        load_cifar10(algorithm="sha1")
