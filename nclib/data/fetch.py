"""Getting files safely: checksums first, then extraction that cannot escape its folder.

Every archive nclib opens is verified against a published SHA-256 (or MD5, where that
is all the publisher gives) *before* anything in it is read or unpickled, and every
archive member is checked to land inside the extraction folder.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tarfile
import tempfile
from pathlib import Path
from typing import Iterable


class ChecksumError(ValueError):
    """A file's digest differs from the expected one."""


class UnsafeArchiveError(ValueError):
    """An archive member would be written outside the extraction folder."""


def file_digest(path, algorithm: str = "sha256", chunk_size: int = 1 << 20) -> str:
    """Hex digest of a file, read in chunks.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> file_digest(p, "md5")
    '900150983cd24fb0d6963f7d28e17f72'
    """
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


def _check_member(member: tarfile.TarInfo, root: Path) -> None:
    target = (root / member.name).resolve()
    if os.path.isabs(member.name) or not target.is_relative_to(root):
        raise UnsafeArchiveError(f"archive member {member.name!r} would land outside {root}")
    if member.issym() or member.islnk():
        # a symlink's target is relative to its own folder, a hard link's to the archive root
        base = target.parent if member.issym() else root
        link = (base / member.linkname).resolve()
        if os.path.isabs(member.linkname) or not link.is_relative_to(root):
            raise UnsafeArchiveError(
                f"archive member {member.name!r} links outside {root} ({member.linkname!r})"
            )
    if member.isdev():
        raise UnsafeArchiveError(f"archive member {member.name!r} is a device file")


def safe_extract(archive, destination, members: Iterable[str] | None = None) -> Path:
    """Extract a tar archive (any compression) after checking every member.

    All members are checked before anything is written, so a hostile archive leaves the
    destination untouched. Extraction goes to a temporary folder beside the destination
    and is moved into place at the end, so an interrupted run leaves no partial tree.

    Parameters
    ----------
    archive : path-like
        The ``.tar``, ``.tar.gz``, … file.
    destination : path-like
        Folder that will contain the archive's members.
    members : iterable of str, optional
        Only these member names (default: all).

    Raises
    ------
    UnsafeArchiveError
        A member has an absolute path, ``..`` components, or a link leading outside.

    Examples
    --------
    >>> import io, tarfile, tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with tarfile.open(folder / "a.tar.gz", "w:gz") as tar:
    ...     info = tarfile.TarInfo("../evil.txt"); info.size = 1
    ...     tar.addfile(info, io.BytesIO(b"x"))
    >>> safe_extract(folder / "a.tar.gz", folder / "out")
    Traceback (most recent call last):
    ...
    nclib.data.fetch.UnsafeArchiveError: archive member '../evil.txt' would land outside ...
    """
    destination = Path(destination)
    destination.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{destination.name}.", dir=destination.parent))
    try:
        with tarfile.open(archive, "r:*") as tar:
            chosen = tar.getmembers()
            if members is not None:
                wanted = set(members)
                chosen = [m for m in chosen if m.name in wanted]
            root = staging.resolve()
            for member in chosen:
                _check_member(member, root)
            tar.extractall(staging, members=chosen, filter="data")
        destination.mkdir(parents=True, exist_ok=True)
        for item in staging.iterdir():
            target = destination / item.name
            if target.exists():
                shutil.rmtree(target) if target.is_dir() else target.unlink()
            os.replace(item, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return destination


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
