"""nclib.data.fetch: checksums, safe extraction, joining parts, atomic writes, downloads."""

from __future__ import annotations

import io
import pathlib
import re
import tarfile
import urllib.error
import urllib.request

import pytest

from nclib.data.fetch import (ChecksumError, CorruptArchiveError, UnsafeArchiveError, atomic_path, download,
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
    """A tar (gzip when the name ends in .gz): regular files {name: bytes}, (name, target)
    links and (name, tarfile type) devices."""
    with tarfile.open(path, "w:gz" if str(path).endswith(".gz") else "w") as tar:
        for name, payload in dict(files).items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for kind, pairs in ((tarfile.SYMTYPE, symlinks), (tarfile.LNKTYPE, hardlinks)):
            for name, target in pairs:
                info = tarfile.TarInfo(name)
                info.type, info.linkname = kind, target
                tar.addfile(info)
        for name, kind in devices:
            info = tarfile.TarInfo(name)
            info.type = kind
            tar.addfile(info)
    return path


class Sandbox(type(pathlib.Path())):
    outside: pathlib.Path


@pytest.fixture
def sandbox(tmp_path):
    """A dedicated folder for the test, beside an ``outside`` folder holding a secret;
    afterwards everything outside the sandbox must be exactly as it was."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_bytes(b"secret")
    box = Sandbox(tmp_path / "sandbox")
    box.mkdir()
    box.outside = outside

    def state():
        return sorted((str(p.relative_to(tmp_path)), p.is_symlink(), p.read_bytes() if p.is_file() else None)
                      for p in tmp_path.rglob("*") if not p.is_relative_to(box))

    before = state()
    yield box
    assert state() == before


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

def test_safe_extract_writes_files_and_folders_inside_the_destination(tmp_path):
    archive = make_tar(tmp_path / "ok.tar.gz", files={"top/a.txt": b"A", "./top/sub/b.txt": b"B"})
    out = safe_extract(archive, tmp_path / "out")
    assert everything_under(out) == ["top", "top/a.txt", "top/sub", "top/sub/b.txt"]  # no staging left
    assert (out / "top" / "a.txt").read_bytes() == b"A"
    assert (out / "top" / "sub" / "b.txt").read_bytes() == b"B"


def test_safe_extract_only_the_chosen_members_and_replaces_only_what_it_may(tmp_path):
    out = tmp_path / "out"
    (out / "top").mkdir(parents=True)
    (out / "top" / "stale.txt").write_text("old")
    (out / "keep").mkdir()
    archive = make_tar(tmp_path / "ok.tar.gz", files={"top/a.txt": b"A", "top/b.txt": b"B"})
    with pytest.raises(UnsafeArchiveError, match="'top/a.txt' would replace the existing .*top"):
        safe_extract(archive, out)  # an existing folder is not the archive's to replace
    assert everything_under(out) == ["keep", "top", "top/stale.txt"]
    safe_extract(archive, out, members=["top/a.txt"], replace=["top"])
    assert everything_under(out) == ["keep", "top", "top/a.txt"]


@pytest.mark.parametrize("hostile, message", [
    ({"files": {"../evil.txt": b"x"}}, "'../evil.txt' has a '..' component"),
    ({"files": {"top/../../evil.txt": b"x"}}, "'top/../../evil.txt' has a '..' component"),
    ({"files": {"ABSOLUTE": b"x"}}, "has an absolute name"),
    ({"files": {"C:/evil.txt": b"x"}}, "'C:/evil.txt' starts with a drive letter"),
    ({"files": {"..\\evil.txt": b"x"}}, "has a backslash"),
    ({"symlinks": [("top/escape", "../../outside")]}, "'top/escape' is a symbolic link"),
    ({"symlinks": [("top/inside", "good.txt")]}, "'top/inside' is a symbolic link"),
    ({"hardlinks": [("top/escape", "../outside")]}, "'top/escape' is a hard link"),
    ({"devices": [("top/device", tarfile.CHRTYPE)]}, "'top/device' is a character device"),
    ({"devices": [("top/disk", tarfile.BLKTYPE)]}, "'top/disk' is a block device"),
    ({"devices": [("top/pipe", tarfile.FIFOTYPE)]}, "'top/pipe' is a FIFO"),
], ids=["dotdot", "nested-dotdot", "absolute", "drive", "backslash", "symlink", "inner-symlink", "hardlink",
        "char-device", "block-device", "fifo"])
def test_safe_extract_refuses_escapes_and_writes_nothing(sandbox, hostile, message):
    files = dict(hostile.get("files", {}))
    if "ABSOLUTE" in files:
        files = {str(sandbox.outside / "evil.txt"): files.pop("ABSOLUTE")}
    files = {"top/good.txt": b"fine", **files}  # a harmless member first: nothing may be written
    archive = make_tar(sandbox / "bad.tar.gz", files=files, symlinks=hostile.get("symlinks", ()),
                       hardlinks=hostile.get("hardlinks", ()), devices=hostile.get("devices", ()))
    before = everything_under(sandbox)
    with pytest.raises(UnsafeArchiveError, match=re.escape(message)):
        safe_extract(archive, sandbox / "work" / "out")
    assert everything_under(sandbox) == before  # not even the destination's parents


def test_a_nul_byte_in_a_pax_name_is_refused(sandbox):
    archive = sandbox / "nul.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("x")
        info.pax_headers, info.size = {"path": "top/a\x00/../../evil"}, 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(UnsafeArchiveError, match="has a NUL byte"):
        safe_extract(archive, sandbox / "out")
    assert everything_under(sandbox) == ["nul.tar"]


def test_a_symlink_chain_longer_than_path_max_is_refused(sandbox):
    """CVE-2025-4517: symlinks through long folder names whose resolved path exceeds
    PATH_MAX, so realpath() stops checking, then a file written through the chain."""
    long_name, steps, path = "d" * 247, "abcdefghijklmnop", ""
    members = []
    for step in steps:
        members.append(("dir", f"{path}{long_name}", None))
        members.append(("sym", f"{path}{step}", long_name))
        path += f"{long_name}/"
    chain = "/".join(steps)
    members.append(("sym", f"{chain}/{'l' * 254}", "../" * len(steps)))
    up = "/".join([".."] * (path.count("/") + 4))
    members.append(("sym", "escape", f"{chain}/{'l' * 254}/{up}{sandbox.outside}"))
    members.append(("file", "escape/evil.txt", b"pwned"))
    archive = sandbox / "chain.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        for kind, name, target in members:
            info = tarfile.TarInfo(name)
            if kind == "dir":
                info.type = tarfile.DIRTYPE
            elif kind == "sym":
                info.type, info.linkname = tarfile.SYMTYPE, target
            else:
                info.size = len(target)
            tar.addfile(info, io.BytesIO(target) if kind == "file" else None)
    with pytest.raises(UnsafeArchiveError, match="'a' is a symbolic link"):
        safe_extract(archive, sandbox / "out")
    assert everything_under(sandbox) == ["chain.tar"]


def test_a_hard_link_to_an_existing_file_outside_is_refused(sandbox):
    secret = sandbox.outside / "secret.txt"
    archive = make_tar(sandbox / "hard.tar", hardlinks=[("top/secret", str(secret))],
                       files={"top/secret": b"overwritten"})
    with pytest.raises(UnsafeArchiveError, match="'top/secret' is a hard link"):
        safe_extract(archive, sandbox / "out")
    assert secret.read_bytes() == b"secret" and secret.stat().st_nlink == 1


def test_a_member_named_like_a_sibling_folder_cannot_clobber_it(sandbox):
    destination = sandbox / "data"
    (destination / "cache").mkdir(parents=True)
    (destination / "cache" / "embeddings.npy").write_bytes(b"precious")
    archive = make_tar(sandbox / "sibling.tar.gz", files={"batches/a": b"1", "cache/evil": b"x"})
    before = everything_under(sandbox)
    for replace in ((), ("batches",)):
        with pytest.raises(UnsafeArchiveError, match="'cache/evil' would replace the existing .*cache"):
            safe_extract(archive, destination, replace=replace)
        assert everything_under(sandbox) == before
    assert (destination / "cache" / "embeddings.npy").read_bytes() == b"precious"
    archive = make_tar(sandbox / "staging-name.tar", files={".nclib-extract-x/a": b"1"})
    safe_extract(archive, destination)  # a member named like the staging prefix lands as itself
    assert (destination / ".nclib-extract-x" / "a").read_bytes() == b"1"


@pytest.mark.parametrize("replace", [["a/b"], [".."], ["."], [""]])
def test_replace_takes_only_top_level_names(tmp_path, replace):
    archive = make_tar(tmp_path / "ok.tar", files={"a/b": b"1"})
    with pytest.raises(ValueError, match="replace must hold top-level names"):
        safe_extract(archive, tmp_path / "out", replace=replace)


def test_a_decompression_bomb_is_refused_before_its_data_is_read(sandbox):
    archive = make_tar(sandbox / "bomb.tar.gz", files={"top/a.txt": b"a", "top/zeros": b"\0" * (8 << 20)})
    assert archive.stat().st_size < 64 << 10
    with pytest.raises(UnsafeArchiveError, match="expands more than 200 times .*'top/zeros'"):
        safe_extract(archive, sandbox / "out")
    assert everything_under(sandbox) == ["bomb.tar.gz"]
    safe_extract(archive, sandbox / "out", max_ratio=10_000)  # a caller may allow it
    assert (sandbox / "out" / "top" / "zeros").stat().st_size == 8 << 20


def test_total_size_and_member_count_are_bounded(sandbox):
    archive = make_tar(sandbox / "big.tar", files={"top/a": b"x" * 60, "top/b": b"y" * 60, "top/c": b""})
    with pytest.raises(UnsafeArchiveError, match="more than 100 bytes .*'top/b'"):
        safe_extract(archive, sandbox / "out", max_bytes=100)
    with pytest.raises(UnsafeArchiveError, match="more than 2 members .*'top/c'"):
        safe_extract(archive, sandbox / "out", max_members=2)
    assert everything_under(sandbox) == ["big.tar"]
    safe_extract(archive, sandbox / "out", max_bytes=120, max_members=3)
    assert everything_under(sandbox / "out") == ["top", "top/a", "top/b", "top/c"]


@pytest.mark.parametrize("files, message", [
    ([("top/a", b"1"), ("top/a", b"2")], "'top/a' appears twice"),
    ([("top/a", b"1"), ("top/a/b", b"2")], "'top/a/b' lies under the file 'top/a'"),
    ([("top/a/b", b"1"), ("top/a", b"2")], "'top/a' is both a file and a folder"),
])
def test_clashing_members_are_refused(sandbox, files, message):
    archive = sandbox / "clash.tar"
    with tarfile.open(archive, "w") as tar:
        for name, payload in files:
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(UnsafeArchiveError, match=message):
        safe_extract(archive, sandbox / "out")
    assert everything_under(sandbox) == ["clash.tar"]


def damaged_archives(folder):
    """(archive, what the message must name) for each kind of damage."""
    payload = bytes(range(256)) * 400
    whole = make_tar(folder / "whole.tar.gz", files={"top/a.bin": payload, "top/b.bin": payload[::-1]})
    compressed = whole.read_bytes()
    plain = make_tar(folder / "whole.tar", files={"top/a.bin": payload, "top/b.bin": payload[::-1]}).read_bytes()
    cases = {
        "cut.tar.gz": compressed[: len(compressed) // 2],
        "garbage.tar.gz": compressed[:10] + bytes(reversed(compressed[10:])),
        "not-an-archive.tar": b"hello, world\n" * 100,
        "empty.tar": b"",
        "cut-in-data.tar": plain[:512 + 300],
        "cut-at-header.tar": plain[:512 + len(payload)],  # first member whole, then nothing
        "bad-second-header.tar": plain[:512 + len(payload)] + b"\x07" * 512 + plain[1024 + len(payload):],
    }
    whole.unlink()
    (folder / "whole.tar").unlink()
    for name, data in cases.items():
        (folder / name).write_bytes(data)
    return sorted(cases)


def test_damaged_archives_raise_one_error_naming_the_archive(sandbox):
    for name in damaged_archives(sandbox):
        before = everything_under(sandbox)
        with pytest.raises(CorruptArchiveError) as error:
            safe_extract(sandbox / name, sandbox / "out")
        assert name in str(error.value) or "'top/" in str(error.value), (name, str(error.value))
        assert isinstance(error.value, UnsafeArchiveError) and isinstance(error.value, ValueError)
        assert not isinstance(error.value, tarfile.TarError)
        assert everything_under(sandbox) == before, name


def test_a_damaged_archive_leaves_the_folder_it_would_replace_intact(sandbox):
    (sandbox / "out" / "top").mkdir(parents=True)
    (sandbox / "out" / "top" / "old.txt").write_text("old")
    damaged_archives(sandbox)
    with pytest.raises(CorruptArchiveError):
        safe_extract(sandbox / "cut-in-data.tar", sandbox / "out", replace=["top"])
    assert everything_under(sandbox / "out") == ["top", "top/old.txt"]


def test_a_missing_archive_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        safe_extract(tmp_path / "absent.tar.gz", tmp_path / "out")
    assert everything_under(tmp_path) == []


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
