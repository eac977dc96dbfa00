"""Durable file writes and digests (a leaf module: stdlib only).

:func:`atomic_write` writes to a temporary file next to the target, flushes it to disk
(``fsync``), renames it over the target and flushes the folder, so a reader sees either
the old file or the complete new one -- never half of one -- even after a crash.
A writer that is killed leaves only a temporary file named ``.<name>.<random>.part``,
which :func:`orphans` finds and :func:`remove_orphans` deletes once it is old enough
that no live writer can still own it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

TEMP_SUFFIX = ".part"
"""Suffix of every temporary file :func:`atomic_write` creates."""

ORPHAN_AGE_SECONDS = 15 * 60
"""A temporary file untouched for this long belongs to no live writer."""


def sha256_file(path, chunk_size: int = 1 << 20) -> str:
    """Hex SHA-256 of a file's bytes, read in chunks (bounded memory).

    Examples
    --------
    >>> import pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "x"; _ = p.write_bytes(b"abc")
    >>> sha256_file(p)[:16]
    'ba7816bf8f01cfea'
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk_size), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_folder(folder: Path) -> None:
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:  # platforms without directory handles (Windows): nothing to flush
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


@contextmanager
def atomic_write(path) -> Iterator[Path]:
    """Yield a temporary path that durably replaces ``path`` when the block succeeds.

    The parent folder is created. On success the temporary file is ``fsync``-ed, renamed
    over ``path`` (``os.replace``, atomic on POSIX) and the folder is ``fsync``-ed; on
    an exception the temporary file is deleted and the exception propagates, leaving any
    previous ``path`` untouched.

    Parameters
    ----------
    path : path-like
        The final file.

    Yields
    ------
    pathlib.Path
        ``<folder>/.<name>.<random>.part``; write the content there (by path).

    Examples
    --------
    >>> target = Path(tempfile.mkdtemp()) / "sub" / "out.txt"
    >>> with atomic_write(target) as temporary:
    ...     _ = temporary.write_text("done")
    >>> target.read_text(), [p.name for p in target.parent.iterdir()]
    ('done', ['out.txt'])
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        with open(temporary, "rb+") as written:
            os.fsync(written.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)


def write_bytes_atomic(path, data: bytes) -> Path:
    """Write ``data`` to ``path`` through :func:`atomic_write`; return ``path``.

    Examples
    --------
    >>> target = Path(tempfile.mkdtemp()) / "x.bin"
    >>> write_bytes_atomic(target, b"ab").read_bytes()
    b'ab'
    """
    path = Path(path)
    with atomic_write(path) as temporary:
        temporary.write_bytes(data)
    return path


def is_temporary(path) -> bool:
    """Whether ``path`` is named like a temporary file of :func:`atomic_write`.

    Examples
    --------
    >>> is_temporary(".a.npz.k2j3h_x.part"), is_temporary("a.npz")
    (True, False)
    """
    name = Path(path).name
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def orphans(folder, older_than: float = ORPHAN_AGE_SECONDS, now: float | None = None) -> list[Path]:
    """Temporary files under ``folder`` (recursively) not modified for ``older_than`` seconds.

    Parameters
    ----------
    folder : path-like
        Searched recursively; a missing folder has no orphans.
    older_than : float
        Minimum age in seconds (by modification time); 0 lists every temporary file.
    now : float, optional
        The current time (``time.time()``), for tests.

    Returns
    -------
    list of pathlib.Path, sorted

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".a.npz.x1.part").write_bytes(b"half")
    >>> [p.name for p in orphans(folder, older_than=0)], orphans(folder)
    (['.a.npz.x1.part'], [])
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    now = time.time() if now is None else now
    found = []
    for path in folder.rglob(f".*{TEMP_SUFFIX}"):
        try:
            if path.is_file() and now - path.stat().st_mtime >= older_than:
                found.append(path)
        except OSError:  # removed meanwhile by its writer or another cleaner
            continue
    return sorted(found)


def remove_orphans(folder, older_than: float = ORPHAN_AGE_SECONDS) -> list[Path]:
    """Delete :func:`orphans` of ``folder``; return the ones deleted.

    Examples
    --------
    >>> folder = Path(tempfile.mkdtemp())
    >>> _ = (folder / ".a.npz.x1.part").write_bytes(b"half")
    >>> [p.name for p in remove_orphans(folder, older_than=0)], list(folder.iterdir())
    (['.a.npz.x1.part'], [])
    """
    removed = []
    for path in orphans(folder, older_than):
        try:
            path.unlink()
            removed.append(path)
        except FileNotFoundError:
            continue
    return removed
