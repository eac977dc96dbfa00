"""nclib.data.fetch: checksums, safe extraction, joining parts, atomic writes, downloads."""

from __future__ import annotations

import io
import tarfile
import urllib.error
import urllib.request

import pytest

from nclib.data.fetch import (ChecksumError, UnsafeArchiveError, atomic_path, download,
                              file_digest, join_parts, safe_extract, verify_file)

# Digests of b"abc" from the standards' test vectors (RFC 1321, FIPS 180-2).
ABC_MD5 = "900150983cd24fb0d6963f7d28e17f72"
ABC_SHA256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


@pytest.fixture
def abc_file(tmp_path):
    path = tmp_path / "abc.bin"
    path.write_bytes(b"abc")
    return path


def everything_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def make_tar(path, files=(), symlinks=(), hardlinks=(), devices=()):
    """A .tar.gz with regular files {name: bytes} and (name, target) links."""
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in dict(files).items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for kind, pairs in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in pairs:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tar.addfile(info)
        for name in devices:
            info = tarfile.TarInfo(name)
            info.type = tarfile.CHRTYPE
            tar.addfile(info)
    return path


# --- digests -----------------------------------------------------------------------------

def test_file_digest_matches_published_test_vectors(abc_file):
    assert file_digest(abc_file, "md5") == ABC_MD5
    assert file_digest(abc_file) == ABC_SHA256
    assert file_digest(abc_file, "sha256", chunk_size=1) == ABC_SHA256


def test_verify_file_accepts_the_right_digest_in_any_case(abc_file):
    assert verify_file(abc_file, ABC_SHA256) == abc_file
    assert verify_file(abc_file, ABC_MD5.upper(), "md5") == abc_file


def test_verify_file_refuses_a_wrong_digest_naming_both(abc_file):
    with pytest.raises(ChecksumError) as error:
        verify_file(abc_file, "f" * 64)
    assert ABC_SHA256 in str(error.value) and "f" * 64 in str(error.value)
    assert isinstance(error.value, ValueError)


def test_verify_file_on_a_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        verify_file(tmp_path / "absent", ABC_SHA256)


# --- safe extraction ---------------------------------------------------------------------

def test_safe_extract_writes_members_inside_the_destination(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", files={"top/a.txt": b"A", "top/sub/b.txt": b"B"},
                       symlinks=[("top/link", "a.txt")], hardlinks=[("top/hard", "top/a.txt")])
    out = safe_extract(archive, tmp_path / "out")
    assert (out / "top" / "hard").read_bytes() == b"A"  # a hard link names its target from the root
    assert (out / "top" / "a.txt").read_bytes() == b"A"
    assert (out / "top" / "sub" / "b.txt").read_bytes() == b"B"
    assert (out / "top" / "link").resolve() == (out / "top" / "a.txt").resolve()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # no staging left


def test_safe_extract_only_the_chosen_members_and_replaces_old_copies(tmp_path):
    out = tmp_path / "out"
    (out / "top").mkdir(parents=True)
    (out / "top" / "stale.txt").write_text("old")
    archive = make_tar(tmp_path / "ok.tar.gz", files={"top/a.txt": b"A", "top/b.txt": b"B"})
    safe_extract(archive, out, members=["top/a.txt"])
    assert everything_under(out) == ["top", "top/a.txt"]


@pytest.mark.parametrize("hostile", [
    {"files": {"../evil.txt": b"x"}},
    {"files": {"top/../../evil.txt": b"x"}},
    {"files": {"ABSOLUTE": b"x"}},
    {"symlinks": [("top/escape", "../../outside")]},
    {"symlinks": [("top/escape", "/etc/passwd")]},
    {"hardlinks": [("top/escape", "../outside")]},
    {"devices": ["top/device"]},
], ids=["dotdot", "nested-dotdot", "absolute", "symlink", "absolute-symlink", "hardlink", "device"])
def test_safe_extract_refuses_escapes_and_writes_nothing(tmp_path, hostile):
    files = dict(hostile.get("files", {}))
    if "ABSOLUTE" in files:
        files = {str(tmp_path / "evil.txt"): files.pop("ABSOLUTE")}
    files["top/good.txt"] = b"fine"  # a harmless member listed before nothing is extracted
    archive = make_tar(tmp_path / "bad.tar.gz", files=files, symlinks=hostile.get("symlinks", ()),
                       hardlinks=hostile.get("hardlinks", ()), devices=hostile.get("devices", ()))
    before = everything_under(tmp_path)
    with pytest.raises(UnsafeArchiveError):
        safe_extract(archive, tmp_path / "work" / "out")
    assert everything_under(tmp_path) == before + ["work"]  # only the (empty) parent exists
    assert everything_under(tmp_path / "work") == []


# --- joining parts -----------------------------------------------------------------------

def test_join_parts_follows_name_order_not_argument_order(tmp_path):
    for suffix, payload in (("ac", b"3"), ("aa", b"1"), ("ab", b"2")):
        (tmp_path / f"x.tar.gz.{suffix}").write_bytes(payload)
    parts = [tmp_path / "x.tar.gz.ac", tmp_path / "x.tar.gz.aa", tmp_path / "x.tar.gz.ab"]
    assert join_parts(parts, tmp_path / "x.tar.gz").read_bytes() == b"123"


def test_join_parts_is_atomic_when_a_part_is_missing(tmp_path):
    (tmp_path / "x.aa").write_bytes(b"1")
    output = tmp_path / "x"
    output.write_bytes(b"previous")
    with pytest.raises(FileNotFoundError):
        join_parts([tmp_path / "x.aa", tmp_path / "x.ab"], output)
    assert output.read_bytes() == b"previous"
    assert everything_under(tmp_path) == ["x", "x.aa"]


def test_join_parts_without_parts(tmp_path):
    with pytest.raises(FileNotFoundError, match="no archive parts"):
        join_parts([], tmp_path / "x")


# --- atomic writes -----------------------------------------------------------------------

def test_atomic_path_replaces_the_target_on_success(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    with atomic_path(target) as temporary:
        temporary.write_text("new")
        assert not target.exists() and temporary.parent == target.parent
    assert target.read_text() == "new"
    assert everything_under(tmp_path) == ["sub", "sub/out.txt"]


def test_atomic_path_removes_the_temporary_file_on_error(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError, match="killed"):
        with atomic_path(target) as temporary:
            temporary.write_text("half")
            raise RuntimeError("killed")
    assert target.read_text() == "old"
    assert everything_under(tmp_path) == ["out.txt"]


# --- downloads ---------------------------------------------------------------------------

@pytest.fixture
def no_network(monkeypatch):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("network is unreachable")
    monkeypatch.setattr(urllib.request, "urlopen", offline)


def test_download_returns_a_verified_local_copy_without_network(abc_file, no_network):
    assert download("https://example.invalid/abc.bin", abc_file, ABC_SHA256) == abc_file


def test_download_refuses_a_local_copy_with_the_wrong_digest(abc_file, no_network):
    with pytest.raises(ChecksumError):
        download("https://example.invalid/abc.bin", abc_file, "0" * 64)


def test_download_offline_says_where_to_put_the_file(tmp_path, no_network):
    destination = tmp_path / "data" / "abc.bin"
    with pytest.raises(FileNotFoundError) as error:
        download("https://example.invalid/abc.bin", destination, ABC_SHA256)
    message = str(error.value)
    assert str(destination.parent) in message and "abc.bin" in message and "by hand" in message
    assert everything_under(tmp_path) == ["data"]  # no partial file left


def test_download_from_a_file_url(abc_file, tmp_path):
    destination = tmp_path / "data" / "copy.bin"
    assert download(abc_file.as_uri(), destination, ABC_SHA256) == destination
    assert destination.read_bytes() == b"abc"
    assert everything_under(tmp_path / "data") == ["copy.bin"]


def test_download_with_a_wrong_digest_leaves_nothing(abc_file, tmp_path):
    destination = tmp_path / "data" / "copy.bin"
    with pytest.raises(ChecksumError):
        download(abc_file.as_uri(), destination, "0" * 64)
    assert everything_under(tmp_path / "data") == []
