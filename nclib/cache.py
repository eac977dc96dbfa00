"""A content-keyed, atomic, self-verifying on-disk cache for arrays, tables and torch weights.

**Keys.** A key is the SHA-256 of a canonical JSON of everything that determines the
result (the configuration, a fingerprint of the data, nclib's version and, with
``code=``, a hash of the source files of the modules that compute it), so a changed
setting or a changed algorithm never returns a stale entry.

**Integrity.** Each entry is one payload file ``<kind>/<key><suffix>`` (``.npz``,
``.csv`` or ``.pt``) and a sidecar ``<key><suffix>.sha256`` holding the SHA-256 of the
payload's bytes. Both are written atomically (temporary file, ``fsync``, rename; the
sidecar after the payload). On read the payload is hashed through the same open handle it
is then parsed from; a missing sidecar, a digest mismatch (a flipped bit, a truncated or
foreign file) or a parse error is a **miss**: the entry is deleted, the fact is logged
(warning on logger ``"nclib.cache"``) and the value is recomputed -- never returned
changed, never with an array member dropped. Arrays are read with
``allow_pickle=False`` and weights with ``torch.load(weights_only=True)``.

**Several writers.** Workers of a cluster may compute the same entry at once. Writing and
deleting an entry hold an exclusive lock on ``<kind>/.<key><suffix>.lock`` (``flock``,
which Linux maps to a POSIX lock on NFS; the file exists only while held), and the first
complete entry wins: a writer that finds a valid entry under the lock keeps it and writes
nothing, and a reader that sees a payload without its digest (a writer between the two
renames) re-checks under the lock before deleting anything. So a payload is never paired with another writer's digest, and
an entry, once valid, is never replaced.

**Orphans.** A killed writer leaves a temporary ``.<name>.<random>.part`` file. Those not
modified for :data:`nclib._io.ORPHAN_AGE_SECONDS` are deleted when a :class:`Cache` is
opened, and by ``python -m nclib cache clear``; ``python -m nclib cache info`` lists the
entries and their sizes by kind and counts orphans.
"""

from __future__ import annotations

import ast
import hashlib
import importlib.util
import json
import logging
import os
import time
from collections.abc import Iterable
from contextlib import contextmanager
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from nclib import __version__
from nclib._io import ORPHAN_AGE_SECONDS, atomic_write, is_temporary, orphans, remove_orphans, sha256_file
from nclib._io import write_bytes_atomic
from nclib.config import data_dir

logger = logging.getLogger("nclib.cache")

DIGEST_SUFFIX = ".sha256"
"""Suffix of the sidecar that holds an entry's SHA-256."""

_FILE_DIGESTS: dict = {}  # (path, size, mtime_ns) -> sha256 of the file, for code_hash


def fingerprint(*arrays) -> str:
    """Short SHA-256 of arrays' shapes, dtypes and bytes (a data identity for keys).

    Examples
    --------
    >>> fingerprint(np.arange(3)) == fingerprint(np.arange(3))
    True
    >>> fingerprint(np.arange(3)) == fingerprint(np.arange(4))
    False
    """
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.shape}{array.dtype}".encode())
        digest.update(array.tobytes() if array.dtype != object else repr(array.tolist()).encode())
    return digest.hexdigest()[:16]


def cache_key(**parts) -> str:
    """Key for a cache entry: hash of the parts and nclib's version.

    Examples
    --------
    >>> cache_key(model="a", seed=1) == cache_key(seed=1, model="a")
    True
    >>> len(cache_key(model="a"))
    24
    """
    text = json.dumps({"nclib": __version__, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


# ----------------------------------------------------------------------------- code hashes
def _source_files(module) -> list[tuple[str, Path]]:
    """``(label, file)`` pairs of a module's source: one file, or every ``.py`` of a package."""
    name = module if isinstance(module, str) else getattr(module, "__name__", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"code_hash takes module names or modules, got {module!r}")
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError) as error:
        raise ValueError(f"cannot find module {name!r} to hash its code: {error}") from None
    if spec is None:
        raise ValueError(f"cannot find module {name!r} to hash its code")
    if spec.submodule_search_locations:  # a package: all of its Python files
        files = []
        for location in spec.submodule_search_locations:
            root = Path(location)
            files.extend((f"{name}/{path.relative_to(root).as_posix()}", path)
                         for path in root.rglob("*.py") if "__pycache__" not in path.parts)
        if not files:
            raise ValueError(f"package {name!r} has no Python source files to hash")
        return sorted(files)
    if spec.origin is None or not spec.origin.endswith(".py") or not Path(spec.origin).is_file():
        raise ValueError(f"module {name!r} has no Python source file to hash (origin {spec.origin!r})")
    return [(name, Path(spec.origin))]


def _code_digest(path: Path) -> str:
    """SHA-256 of what a Python file computes: its syntax tree without docstrings.

    Comments, layout and docstrings change no result, so editing them keeps every cached
    entry; a file that does not parse is hashed byte for byte.
    """
    source = path.read_bytes()
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return hashlib.sha256(source).hexdigest()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and body and isinstance(body[0], ast.Expr)
                and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree, include_attributes=False).encode()).hexdigest()


def _file_sha256(path: Path) -> str:
    stat = path.stat()
    memo = (str(path), stat.st_size, stat.st_mtime_ns)
    if memo not in _FILE_DIGESTS:
        _FILE_DIGESTS[memo] = _code_digest(path)
    return _FILE_DIGESTS[memo]


def code_hash(*modules) -> str:
    """Short SHA-256 of the source code of modules: put it into a key to drop stale entries.

    Parameters
    ----------
    *modules : str or module
        Dotted module names (``"nclib.scores.logme"``) or module objects; a package
        stands for every ``.py`` file below it. Order and repetition do not matter.

    Returns
    -------
    str
        16 hex digits; changes whenever the code of one of the files changes: its
        syntax tree, so comments, layout and docstrings do not count (files are read
        again when their size or modification time changes).

    Raises
    ------
    ValueError
        No module given, a module that cannot be found, or one without a ``.py`` source.

    Examples
    --------
    >>> code_hash("nclib.scores.logme", "nclib._validation") == code_hash("nclib._validation", "nclib.scores.logme")
    True
    >>> len(code_hash("nclib._validation")), code_hash("nclib._validation") == code_hash("nclib.seed")
    (16, False)
    """
    if not modules:
        raise ValueError("code_hash needs at least one module")
    files = {}
    for module in modules:
        files.update(_source_files(module))
    digest = hashlib.sha256()
    for label in sorted(files):
        digest.update(f"{label}\0{_file_sha256(files[label])}\n".encode())
    return digest.hexdigest()[:16]


def nclib_code_hash() -> str:
    """:func:`code_hash` of the whole ``nclib`` package (e.g. to key the book's execution cache).

    Examples
    --------
    >>> nclib_code_hash() == code_hash("nclib")
    True
    """
    return code_hash("nclib")


def _code_names(code) -> tuple:
    if code is None:
        return ()
    if isinstance(code, str) or not isinstance(code, Iterable):
        code = (code,)
    code = tuple(code)
    if not code:
        raise ValueError("code= must name at least one module (or be None)")
    return code


class _Miss(Exception):
    """Internal: the stored entry cannot be used."""


LOCK_SUFFIX = ".lock"
"""Suffix of the (empty, hidden) lock file next to each entry: ``.<key><suffix>.lock``."""


def lock_path(path) -> Path:
    """The lock file that serialises writers and deleters of the entry ``path``."""
    path = Path(path)
    return path.with_name(f".{path.name}{LOCK_SUFFIX}")


@contextmanager
def entry_lock(path):
    """Hold an exclusive lock on the entry ``path`` (a no-op where ``fcntl`` is missing).

    The lock file exists only while the lock is held: its holder deletes it before
    releasing, and a waiter that then wins the lock on the deleted file tries again.

    Examples
    --------
    >>> import tempfile
    >>> entry = Path(tempfile.mkdtemp()) / "demo" / "abc.npz"
    >>> with entry_lock(entry):
    ...     lock_path(entry).is_file()
    True
    >>> lock_path(entry).exists()
    False
    """
    try:
        import fcntl
    except ImportError:  # Windows: single-writer semantics only
        yield
        return
    lock = lock_path(path)
    lock.parent.mkdir(parents=True, exist_ok=True)
    while True:
        descriptor = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX)
            held = os.fstat(descriptor).st_ino == os.stat(lock).st_ino
        except FileNotFoundError:  # its holder deleted it: try again on a new one
            held = False
        except BaseException:
            os.close(descriptor)
            raise
        if held:
            break
        os.close(descriptor)
    try:
        yield
    finally:
        try:
            if os.stat(lock).st_ino == os.fstat(descriptor).st_ino:
                lock.unlink()
        except OSError:
            pass
        os.close(descriptor)  # releases the lock


# ----------------------------------------------------------------------------- the cache
class Cache:
    """On-disk store under ``folder`` (default ``$NCLIB_DATA/cache``), one payload + digest per entry.

    Parameters
    ----------
    folder : path-like, optional
    enabled : bool
        ``False`` makes every lookup a miss and writes nothing (for tests and benchmarks).
    clean : bool
        Delete orphaned temporary files (older than ``ORPHAN_AGE_SECONDS``) on opening.

    Examples
    --------
    >>> import tempfile
    >>> cache = Cache(tempfile.mkdtemp())
    >>> calls = []
    >>> def compute():
    ...     calls.append(1); return {"x": np.arange(3)}
    >>> cache.arrays("demo", {"n": 3}, compute)["x"].tolist()
    [0, 1, 2]
    >>> cache.arrays("demo", {"n": 3}, compute)["x"].tolist(), len(calls)
    ([0, 1, 2], 1)
    >>> sorted(p.suffix for p in (cache.folder / "demo").iterdir())   # payload and its digest
    ['.npz', '.sha256']
    """

    def __init__(self, folder=None, enabled: bool = True, clean: bool = True):
        self.folder = Path(folder) if folder is not None else data_dir() / "cache"
        self.enabled = enabled
        if enabled and clean:
            try:
                removed = remove_orphans(self.folder)
            except OSError as error:  # a read-only or vanished folder: reads still work
                logger.warning("could not clean orphaned temporary files in %s: %s", self.folder, error)
            else:
                if removed:
                    logger.info("removed %d orphaned temporary file(s) from %s", len(removed), self.folder)

    # ------------------------------------------------------------------ keys and paths
    def path(self, kind: str, parts: dict, suffix: str, code=None) -> Path:
        """File that holds the entry of ``kind`` keyed by ``parts`` (and ``code``, see :meth:`arrays`)."""
        if not isinstance(kind, str) or not kind or "/" in kind or kind.startswith("."):
            raise ValueError(f"kind must be a plain folder name, got {kind!r}")
        parts = dict(parts)
        names = _code_names(code)
        if names:
            if "code_hash" in parts:
                raise ValueError("parts already hold 'code_hash'; pass code= or the part, not both")
            parts["code_hash"] = code_hash(*names)
        return self.folder / kind / f"{cache_key(kind=kind, **parts)}{suffix}"

    @staticmethod
    def digest_path(path) -> Path:
        """The sidecar holding the SHA-256 of the payload ``path``."""
        path = Path(path)
        return path.with_name(path.name + DIGEST_SUFFIX)

    # ------------------------------------------------------------------ reading and writing
    def _verifies(self, path: Path) -> bool:
        """Whether ``path`` and its digest are both there and agree."""
        try:
            return path.is_file() and sha256_file(path) == self.digest_path(path).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return False

    def _discard(self, path: Path, why: str) -> None:
        try:
            with entry_lock(path):
                if self._verifies(path):  # a concurrent writer completed the entry meanwhile
                    logger.info("cache entry %s completed by another writer while being read", path)
                    return
                logger.warning("cache entry %s %s: recomputing", path, why)
                for stale in (path, self.digest_path(path)):
                    try:
                        stale.unlink(missing_ok=True)
                    except OSError:
                        pass
        except OSError as error:  # a read-only folder: cannot lock or delete; still a miss
            logger.warning("cache entry %s %s and cannot be deleted (%s): recomputing", path, why, error)

    def _load(self, path: Path, parse: Callable):
        """Parse ``path`` through ``parse(handle)`` if its digest verifies; else raise _Miss."""
        if not self.enabled or not path.is_file():
            raise _Miss
        try:
            expected = self.digest_path(path).read_text().strip()
        except (OSError, UnicodeDecodeError):
            self._discard(path, "has no readable digest")
            raise _Miss from None
        try:
            with open(path, "rb") as handle:  # hash and parse the same open file: no swap between
                digest = hashlib.sha256()
                for block in iter(lambda: handle.read(1 << 20), b""):
                    digest.update(block)
                if digest.hexdigest() != expected:
                    self._discard(path, "does not match its digest (corrupt)")
                    raise _Miss
                handle.seek(0)
                return parse(handle)
        except _Miss:
            raise
        except Exception as error:  # noqa: BLE001 - any parse failure of a verified file: recompute
            self._discard(path, f"is unreadable ({type(error).__name__}: {error})")
            raise _Miss from None

    def _store(self, path: Path, write: Callable[[Path], None]) -> None:
        with entry_lock(path):
            if self._verifies(path):  # another writer stored it first: keep theirs (idempotent)
                return
            with atomic_write(path) as temporary:
                write(temporary)
                digest = sha256_file(temporary)
            write_bytes_atomic(self.digest_path(path), f"{digest}\n".encode())

    def arrays(self, kind: str, parts: dict, compute: Callable[[], dict], code=None) -> dict:
        """Return the cached dict of arrays, computing and storing it on a miss.

        Parameters
        ----------
        kind : str
            Folder of the entry (``"features"``, ``"scores"``, ...); part of the key.
        parts : dict
            Everything that determines the result (JSON-serialisable or ``str``-able).
        compute : callable
            ``compute() -> dict[str, array-like]``, called on a miss.
        code : str, module or sequence of them, optional
            Modules whose source computes the result: their :func:`code_hash` joins the
            key, so editing them invalidates the entry.

        Returns
        -------
        dict of str to ndarray
        """
        path = self.path(kind, parts, ".npz", code)

        def parse(handle):
            with np.load(handle, allow_pickle=False) as stored:
                return {name: stored[name] for name in stored.files}

        try:
            return self._load(path, parse)
        except _Miss:
            pass
        result = compute()
        if self.enabled:
            self._store(path, lambda temporary: _savez(temporary, result))
        return result

    def table(self, kind: str, parts: dict, compute: Callable[[], pd.DataFrame], code=None) -> pd.DataFrame:
        """Return the cached DataFrame (stored as CSV), computing it on a miss (``code`` as in :meth:`arrays`)."""
        path = self.path(kind, parts, ".csv", code)
        try:
            return self._load(path, pd.read_csv)
        except _Miss:
            pass
        result = compute()
        if self.enabled:
            self._store(path, lambda temporary: result.to_csv(temporary, index=False))
        return result

    def weights(self, kind: str, parts: dict, compute: Callable[[], dict], code=None) -> dict:
        """Return a cached torch ``state_dict``, computing it on a miss (``code`` as in :meth:`arrays`).

        Loaded with ``torch.load(weights_only=True)``: no arbitrary code is unpickled.
        """
        import torch

        path = self.path(kind, parts, ".pt", code)
        try:
            return self._load(path, lambda handle: torch.load(handle, map_location="cpu", weights_only=True))
        except _Miss:
            pass
        result = compute()
        if self.enabled:
            self._store(path, lambda temporary: torch.save(result, temporary))
        return result

    # ------------------------------------------------------------------ housekeeping
    def _entries(self):
        """``(kind, payload, digest sidecar)`` of every stored payload."""
        if not self.folder.is_dir():
            return
        for kind_folder in sorted(p for p in self.folder.iterdir() if p.is_dir()):
            for path in sorted(kind_folder.iterdir()):
                if (path.is_file() and not is_temporary(path) and not path.name.endswith(DIGEST_SUFFIX)
                        and not path.name.startswith(".")):
                    yield kind_folder.name, path, self.digest_path(path)

    def info(self) -> pd.DataFrame:
        """Entries and bytes (payloads + digests) by kind: columns ``kind, entries, bytes``.

        Examples
        --------
        >>> import tempfile
        >>> cache = Cache(tempfile.mkdtemp())
        >>> _ = cache.arrays("demo", {}, lambda: {"x": np.zeros(3)})
        >>> cache.info()[["kind", "entries"]].to_dict("records")
        [{'kind': 'demo', 'entries': 1}]
        """
        rows = {}
        for kind, path, digest in self._entries():
            row = rows.setdefault(kind, {"kind": kind, "entries": 0, "bytes": 0})
            row["entries"] += 1
            for part in (path, digest):
                try:
                    row["bytes"] += part.stat().st_size
                except OSError:
                    pass
        return pd.DataFrame(list(rows.values()), columns=["kind", "entries", "bytes"])

    def orphans(self, older_than: float = ORPHAN_AGE_SECONDS) -> list[Path]:
        """Temporary files of killed writers, untouched for ``older_than`` seconds."""
        return orphans(self.folder, older_than)

    def clear(self, older_than_days: float | None = None) -> dict:
        """Delete entries (all, or those not modified for ``older_than_days`` days) and orphans.

        Digest sidecars whose payload is gone are deleted too. Temporary files younger than
        ``ORPHAN_AGE_SECONDS`` are kept: a live writer may own them.

        Returns
        -------
        dict
            ``{"entries": n, "bytes": b, "orphans": m}`` deleted.

        Examples
        --------
        >>> import tempfile
        >>> cache = Cache(tempfile.mkdtemp())
        >>> _ = cache.arrays("demo", {}, lambda: {"x": np.zeros(3)})
        >>> cache.clear(older_than_days=1)["entries"], cache.clear()["entries"], len(cache.info())
        (0, 1, 0)
        """
        if older_than_days is not None and not (np.isfinite(older_than_days) and older_than_days >= 0):
            raise ValueError(f"older_than_days must be a non-negative number, got {older_than_days}")
        cutoff = None if older_than_days is None else time.time() - older_than_days * 86_400
        removed = {"entries": 0, "bytes": 0, "orphans": 0}
        for _, path, digest in list(self._entries()):
            try:
                stat = path.stat()
            except OSError:
                continue
            if cutoff is not None and stat.st_mtime > cutoff:
                continue
            path.unlink(missing_ok=True)
            removed["entries"] += 1
            removed["bytes"] += stat.st_size
            if digest.is_file():
                removed["bytes"] += digest.stat().st_size
                digest.unlink(missing_ok=True)
        if self.folder.is_dir():
            for digest in self.folder.glob(f"*/*{DIGEST_SUFFIX}"):
                payload = digest.with_name(digest.name[: -len(DIGEST_SUFFIX)])
                if not payload.exists():
                    digest.unlink(missing_ok=True)
        removed["orphans"] = len(remove_orphans(self.folder))
        return removed


def _savez(path: Path, arrays: dict) -> None:
    if not isinstance(arrays, dict):
        raise TypeError(f"Cache.arrays: compute() must return a dict of arrays, got {type(arrays).__name__}")
    with open(path, "wb") as handle:
        np.savez(handle, **{name: np.asarray(value) for name, value in arrays.items()})
