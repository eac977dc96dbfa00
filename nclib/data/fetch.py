"""Getting files safely: checksums first, then extraction that cannot escape its folder.

Every archive nclib opens is verified against a published digest (SHA-256, MD5 where
that is all the publisher gives, or a git blob id for files pinned to a git commit)
*before* anything in it is read or unpickled. :func:`safe_extract` then accepts only
plain files and folders whose names stay inside the extraction folder, bounds the size
it writes, and moves the result into place without touching anything else.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import stat
import tarfile
import tempfile
import zlib
from pathlib import Path, PurePosixPath
from typing import Iterable

try:  # optional in some Python builds
    import lzma
    _LZMA_ERRORS: tuple = (lzma.LZMAError,)
except ImportError:  # pragma: no cover
    _LZMA_ERRORS = ()

GIT_BLOB_SHA1 = "git-blob-sha1"
DEFAULT_MAX_BYTES = 64 << 30  # 64 GiB written per archive
DEFAULT_MAX_RATIO = 200.0  # bytes written per byte of archive, beyond the first MiB
DEFAULT_MAX_MEMBERS = 1_000_000
RATIO_FLOOR_BYTES = 1 << 20
_REGULAR = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link", tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device", tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a FIFO", tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_DRIVE = re.compile(r"^[A-Za-z]:")
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error, *_LZMA_ERRORS)


class ChecksumError(ValueError):
    """A file's digest differs from the expected one."""


class UnsafeArchiveError(ValueError):
    """An archive :func:`safe_extract` refuses; the message names the member or archive.

    Raised for a member that is not a plain file or folder (symbolic or hard link,
    device, FIFO, sparse file), a name that is absolute, has a drive letter, a ``..``
    component, a backslash or a NUL byte, a duplicate, a member whose top-level name
    already exists in the destination (unless the caller lets it be replaced), and
    archives past the size, ratio or member-count limits. :class:`CorruptArchiveError`
    (unreadable archives) is a subclass, so one ``except UnsafeArchiveError`` catches
    every refusal.
    """


class CorruptArchiveError(UnsafeArchiveError):
    """An archive that cannot be read: not a tar, truncated, or a broken compressed stream."""


def file_digest(path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks.

    Parameters
    ----------
    path : path-like
    algorithm : str
        Any :func:`hashlib.new` name, or ``"git-blob-sha1"``: the id git gives the file's
        content (SHA-1 of ``b"blob <size>\\0"`` followed by the bytes), which pins files of
        a git commit without downloading them (``git ls-tree -r <commit>`` lists it).
    chunk_size : int

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> file_digest(p, "md5")
    '900150983cd24fb0d6963f7d28e17f72'
    >>> file_digest(p, "git-blob-sha1")  # as `git hash-object x` prints it
    'f2ba8f84ab5c1bce84a7b441cb1959cfc7093b7f'
    """
    if algorithm == GIT_BLOB_SHA1:
        digest = hashlib.sha1(f"blob {os.path.getsize(path)}\0".encode())
    else:
        digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_file(path, expected: str, algorithm: str = "sha256") -> Path:
    """Raise :class:`ChecksumError` unless ``path`` has digest ``expected``.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> verify_file(p, "0" * 32, "md5")
    Traceback (most recent call last):
    ...
    nclib.data.fetch.ChecksumError: ...
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist")
    actual = file_digest(path, algorithm)
    if actual.lower() != expected.lower():
        raise ChecksumError(
            f"{path.name}: {algorithm} is {actual}, expected {expected}; "
            "the file is corrupt or not the official one (delete it and fetch again)"
        )
    return path


def member_parts(name: str) -> tuple[str, ...]:
    """The path components of an archive member name, refusing any that could escape.

    Parameters
    ----------
    name : str
        A member name as stored in the archive.

    Returns
    -------
    tuple of str
        The components without ``.`` and empty ones (``"./a//b/"`` gives ``("a", "b")``).

    Raises
    ------
    UnsafeArchiveError
        A NUL byte, a backslash, an absolute name, a drive letter or a ``..`` component.

    Examples
    --------
    >>> member_parts("./data/batch_1")
    ('data', 'batch_1')
    >>> member_parts("data/../../etc/passwd")
    Traceback (most recent call last):
    ...
    nclib.data.fetch.UnsafeArchiveError: archive member 'data/../../etc/passwd' has a '..' component
    """
    if "\x00" in name:
        raise UnsafeArchiveError(f"archive member {name!r} has a NUL byte in its name")
    if "\\" in name:
        raise UnsafeArchiveError(f"archive member {name!r} has a backslash in its name")
    if name.startswith("/"):
        raise UnsafeArchiveError(f"archive member {name!r} has an absolute name")
    if _DRIVE.match(name):
        raise UnsafeArchiveError(f"archive member {name!r} starts with a drive letter")
    parts = tuple(part for part in PurePosixPath(name).parts if part not in ("", "."))
    if ".." in parts:
        raise UnsafeArchiveError(f"archive member {name!r} has a '..' component")
    return parts


def safe_extract(archive, destination, members: Iterable[str] | None = None,
                 replace: Iterable[str] = (), *, max_bytes: int = DEFAULT_MAX_BYTES,
                 max_ratio: float = DEFAULT_MAX_RATIO, max_members: int = DEFAULT_MAX_MEMBERS) -> Path:
    """Extract a tar archive (any compression) that holds only plain files and folders.

    First every member header is read and checked, before anything is written: each
    member must be a regular file or a folder (symbolic and hard links, devices, FIFOs
    and sparse files are refused outright: the data sets contain none), its name must
    pass :func:`member_parts`, no file may appear twice or clash with a folder, and the
    running totals must stay within ``max_members``, ``max_bytes`` and ``max_ratio``
    (checked at each header, so a bomb is refused before its data is decompressed).
    Then the chosen members are written into a fresh staging folder *inside*
    ``destination`` (files created exclusively, never following a link), every final
    path is checked again (a plain file or folder whose resolved path lies in the
    staging folder), and the top-level entries are renamed into ``destination``.

    Existing entries. A top-level name that already exists in ``destination`` is
    refused (nothing is written) unless it is listed in ``replace``: the caller's own
    extraction folders, e.g. ``["cifar-10-batches-py"]``. A replaced entry is first
    moved into the staging folder and deleted with it, so nothing outside the staging
    folder is ever deleted, and an archive member named like a sibling folder (say
    ``cache/...``) can never clobber it.

    Parameters
    ----------
    archive : path-like
        The ``.tar``, ``.tar.gz``, ``.tar.bz2`` or ``.tar.xz`` file.
    destination : path-like
        Folder that will contain the archive's members (created if missing).
    members : iterable of str, optional
        Extract only the members with these names (all members are still checked).
    replace : iterable of str
        Top-level names in ``destination`` that may be replaced.
    max_bytes : int
        Most bytes of file content the archive may hold (default 64 GiB).
    max_ratio : float
        Most bytes of content per byte of archive file, once past the first MiB
        (default 200; real data compresses far less, a gzip bomb ~1,000x).
    max_members : int
        Most members (default 1,000,000).

    Returns
    -------
    pathlib.Path
        ``destination``.

    Raises
    ------
    UnsafeArchiveError
        Any refusal above; the message names the member (or the limit).
    CorruptArchiveError
        (a subclass) The archive is not a readable tar: the message names it.
    ValueError
        ``replace`` names something other than a plain top-level name.

    Examples
    --------
    >>> import io, tarfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with tarfile.open(folder / "a.tar.gz", "w:gz") as tar:
    ...     info = tarfile.TarInfo("top/ok.txt"); info.size = 2
    ...     tar.addfile(info, io.BytesIO(b"hi"))
    ...     info = tarfile.TarInfo("../evil.txt"); info.size = 1
    ...     tar.addfile(info, io.BytesIO(b"x"))
    >>> safe_extract(folder / "a.tar.gz", folder / "out")
    Traceback (most recent call last):
    ...
    nclib.data.fetch.UnsafeArchiveError: archive member '../evil.txt' has a '..' component
    >>> sorted(p.name for p in folder.iterdir())  # nothing was written
    ['a.tar.gz']
    """
    archive, destination = Path(archive), Path(destination)
    replace = set(replace)
    for name in replace:
        if not isinstance(name, str) or not re.fullmatch(r"[^/\\\x00]+", name) or name in (".", ".."):
            raise ValueError(f"replace must hold top-level names, got {name!r}")
    wanted = set(members) if members is not None else None
    limits = (max_bytes, max_ratio, max_members)
    created = not destination.exists()
    staging, done = None, False
    try:
        with _open_tar(archive) as tar:
            plan = _check_all(tar, archive, destination, wanted, replace, limits)
            destination.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(prefix=".nclib-extract-", dir=destination))
            _write_members(tar, archive, staging, plan)
        _check_tree(staging)
        _move_into_place(staging, destination, replace)
        done = True
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
        if not done and created and destination.is_dir() and not any(destination.iterdir()):
            destination.rmdir()  # a failed call leaves no empty folder it created
    return destination


def _open_tar(archive: Path) -> tarfile.TarFile:
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist")
    try:
        tar = tarfile.open(archive, "r:*")
    except _READ_ERRORS as error:
        raise CorruptArchiveError(f"archive {archive.name} is not a readable tar archive: {error}") from None
    tar.fileobj = _LastRead(tar.fileobj)
    return tar


class _LastRead:
    """A file proxy remembering the last block read: tarfile ends silently at a damaged
    or missing header, and this tells a proper end-of-archive block from those."""

    def __init__(self, fileobj):
        self._fileobj = fileobj
        self.last = b"\0" * tarfile.BLOCKSIZE

    def read(self, *args):
        self.last = self._fileobj.read(*args)
        return self.last

    def __getattr__(self, name):
        return getattr(self._fileobj, name)


def _check_all(tar, archive: Path, destination: Path, wanted, replace: set, limits) -> list:
    """Check every header (reading them one by one); return the members to write."""
    max_bytes, max_ratio, max_members = limits
    archive_bytes = archive.stat().st_size
    ratio_limit = max(max_ratio * archive_bytes, RATIO_FLOOR_BYTES)
    existing = {p.name for p in destination.iterdir()} if destination.is_dir() else set()
    files, folders, plan = set(), set(), []
    total = count = 0
    member = None
    while True:
        previous = member
        try:
            member = tar.next()
        except _READ_ERRORS as error:
            raise CorruptArchiveError(f"archive {archive.name} is damaged after {_where(previous)}: {error}") from None
        if member is None:
            end = tar.fileobj.last
            if len(end) != tarfile.BLOCKSIZE or end.count(0) != tarfile.BLOCKSIZE:
                raise CorruptArchiveError(f"archive {archive.name} is truncated or damaged after "
                                          f"{_where(previous)}: no end-of-archive block")
            break
        count += 1
        if count > max_members:
            raise UnsafeArchiveError(f"archive {archive.name} has more than {max_members:,} members "
                                     f"(at {member.name!r})")
        kind = _kind(member)
        parts = member_parts(member.name)
        if not parts:
            if kind == "file":
                raise UnsafeArchiveError(f"archive member {member.name!r} is a file without a name")
            continue
        if member.size < 0:
            raise UnsafeArchiveError(f"archive member {member.name!r} claims a negative size")
        total += member.size if kind == "file" else 0
        if total > max_bytes:
            raise UnsafeArchiveError(f"archive {archive.name} holds more than {max_bytes:,} bytes "
                                     f"(limit max_bytes reached at member {member.name!r})")
        if total > ratio_limit:
            raise UnsafeArchiveError(
                f"archive {archive.name} expands more than {max_ratio:g} times its {archive_bytes:,} bytes "
                f"(limit max_ratio reached at member {member.name!r}): a decompression bomb?")
        path = "/".join(parts)
        ancestors = ["/".join(parts[:k]) for k in range(1, len(parts))]
        if kind == "file":
            if path in files:
                raise UnsafeArchiveError(f"archive member {member.name!r} appears twice")
            if path in folders:
                raise UnsafeArchiveError(f"archive member {member.name!r} is both a file and a folder")
            files.add(path)
        else:
            if path in files:
                raise UnsafeArchiveError(f"archive member {member.name!r} is both a file and a folder")
            folders.add(path)
        clash = next((a for a in ancestors if a in files), None)
        if clash is not None:
            raise UnsafeArchiveError(f"archive member {member.name!r} lies under the file {clash!r}")
        folders.update(ancestors)
        if parts[0] in existing and parts[0] not in replace:
            raise UnsafeArchiveError(
                f"archive member {member.name!r} would replace the existing {destination / parts[0]}; "
                "remove it first or extract elsewhere")
        if wanted is None or member.name in wanted:
            plan.append((member, parts, kind))
    for _, parts, kind in plan:  # a folder whose files all come later still clashes with a file
        if kind == "file" and "/".join(parts) in folders:
            raise UnsafeArchiveError(f"archive member {'/'.join(parts)!r} is both a file and a folder")
    return plan


def _where(member) -> str:
    return f"member {member.name!r}" if member is not None else "its start"


def _kind(member: tarfile.TarInfo) -> str:
    if member.type in _REGULAR:
        return "file"
    if member.type == tarfile.DIRTYPE:
        return "folder"
    what = _KINDS.get(member.type, f"of unsupported type {member.type!r}")
    raise UnsafeArchiveError(f"archive member {member.name!r} is {what}; only plain files and folders are accepted")


def _write_members(tar, archive: Path, staging: Path, plan: list) -> None:
    root = staging.resolve()
    for member, parts, kind in plan:
        target = root.joinpath(*parts)
        try:
            folder = target if kind == "folder" else target.parent
            for depth in range(1, len(folder.relative_to(root).parts) + 1):
                _make_folder(root.joinpath(*folder.relative_to(root).parts[:depth]), member.name)
            if kind == "file":
                _write_file(tar, member, target)
        except UnsafeArchiveError:
            raise
        except _READ_ERRORS as error:
            if isinstance(error, (tarfile.TarError, EOFError, zlib.error, *_LZMA_ERRORS)):
                raise CorruptArchiveError(f"archive {archive.name} is damaged at member "
                                          f"{member.name!r}: {error}") from None
            raise UnsafeArchiveError(f"archive member {member.name!r} cannot be written: {error}") from None


def _make_folder(path: Path, name: str) -> None:
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        if not stat.S_ISDIR(os.lstat(path).st_mode):
            raise UnsafeArchiveError(f"archive member {name!r} needs a folder where a file is") from None


def _write_file(tar, member: tarfile.TarInfo, target: Path) -> None:
    source = tar.extractfile(member)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_BINARY", 0)
    handle = os.open(target, flags, 0o644)
    written = 0
    with os.fdopen(handle, "wb") as sink:
        while True:
            try:
                block = source.read(min(1 << 20, member.size - written + 1))
            except OSError as error:  # a read error is the archive's, not the disk's
                raise CorruptArchiveError(f"archive member {member.name!r} cannot be read: {error}") from None
            if not block:
                break
            written += len(block)
            if written > member.size:
                raise UnsafeArchiveError(f"archive member {member.name!r} holds more than its {member.size} bytes")
            sink.write(block)
    if written != member.size:
        raise CorruptArchiveError(f"archive member {member.name!r} is truncated: {written} of {member.size} bytes")


def _check_tree(staging: Path) -> None:
    """After extraction: only plain files and folders, every resolved path inside ``staging``."""
    root = staging.resolve()
    for folder, subfolders, names in os.walk(root, followlinks=False):
        for name in subfolders + names:
            path = Path(folder) / name
            mode = os.lstat(path).st_mode
            relative = path.relative_to(root).as_posix()
            if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                raise UnsafeArchiveError(f"archive member {relative!r} was extracted as something other "
                                         "than a plain file or folder")
            if not path.resolve().is_relative_to(root):
                raise UnsafeArchiveError(f"archive member {relative!r} resolves outside the extraction folder")


def _move_into_place(staging: Path, destination: Path, replace: set) -> None:
    old = staging / ".replaced"
    for item in sorted(staging.iterdir()):
        if item == old:
            continue
        target = destination / item.name
        if os.path.lexists(target):
            if item.name not in replace:  # appeared while extracting
                raise UnsafeArchiveError(f"archive member {item.name!r} would replace the existing {target}")
            old.mkdir(exist_ok=True)
            os.replace(target, old / item.name)  # moved into staging, deleted with it
        os.replace(item, target)


def join_parts(parts, output) -> Path:
    """Concatenate split archive parts (``x.tar.gz.aa``, ``.ab``, …) into ``output``.

    The parts are joined in name order, written to a temporary file and renamed, so a
    reader never sees a half-joined archive.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "f.ab").write_bytes(b"2"); _ = (d / "f.aa").write_bytes(b"1")
    >>> join_parts([d / "f.ab", d / "f.aa"], d / "f").read_bytes()
    b'12'
    """
    parts = sorted(Path(p) for p in parts)
    if not parts:
        raise FileNotFoundError(f"no archive parts to join into {output}")
    output = Path(output)
    with atomic_path(output) as temporary:
        with open(temporary, "wb") as sink:
            for part in parts:
                with open(part, "rb") as source:
                    shutil.copyfileobj(source, sink, 1 << 20)
    return output


class atomic_path:
    """Context manager yielding a temporary path that replaces ``path`` on success.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> target = pathlib.Path(tempfile.mkdtemp()) / "out.txt"
    >>> with atomic_path(target) as tmp:
    ...     _ = tmp.write_text("done")
    >>> target.read_text()
    'done'
    """

    def __init__(self, path):
        self.path = Path(path)

    def __enter__(self) -> Path:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".part", dir=self.path.parent)
        os.close(handle)
        self.temporary = Path(name)
        return self.temporary

    def __exit__(self, kind, value, traceback) -> bool:
        if kind is None:
            os.replace(self.temporary, self.path)
        else:
            self.temporary.unlink(missing_ok=True)
        return False


def download(url: str, path, sha256: str) -> Path:
    """Download ``url`` to ``path`` unless a verified copy is already there.

    The file is streamed to a temporary name, verified, and only then renamed. Offline
    machines get a clear error telling where to put the file by hand.
    """
    path = Path(path)
    if path.is_file():
        return verify_file(path, sha256)
    import urllib.request

    try:
        with atomic_path(path) as temporary:
            with urllib.request.urlopen(url, timeout=60) as response, open(temporary, "wb") as sink:
                shutil.copyfileobj(response, sink, 1 << 20)
            verify_file(temporary, sha256)
    except OSError as error:
        raise FileNotFoundError(
            f"{path.name} is not in {path.parent} and could not be downloaded from {url} "
            f"({error}); place the official file there by hand"
        ) from None
    return path
