"""A content-keyed, atomic on-disk cache for arrays, tables and torch weights.

A key is the SHA-256 of a canonical JSON of everything that determines the result (the
configuration, a fingerprint of the data, nclib's version), so a changed setting never
returns a stale entry. Entries are written to a temporary file and renamed, so a killed
run leaves no half-written file that a rerun would trust; arrays are read back with
``allow_pickle=False`` and weights with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from nclib import __version__
from nclib.config import data_dir
from nclib.data.fetch import atomic_path


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


class Cache:
    """On-disk store under ``folder`` (default ``$NCLIB_DATA/cache``), one file per entry.

    Parameters
    ----------
    folder : path-like, optional
    enabled : bool
        ``False`` makes every lookup a miss and writes nothing (for tests and benchmarks).

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
    """

    def __init__(self, folder=None, enabled: bool = True):
        self.folder = Path(folder) if folder is not None else data_dir() / "cache"
        self.enabled = enabled

    def path(self, kind: str, parts: dict, suffix: str) -> Path:
        """File that holds the entry of ``kind`` keyed by ``parts``."""
        return self.folder / kind / f"{cache_key(kind=kind, **parts)}{suffix}"

    def arrays(self, kind: str, parts: dict, compute: Callable[[], dict]) -> dict:
        """Return the cached dict of arrays, computing and storing it on a miss."""
        path = self.path(kind, parts, ".npz")
        if self.enabled and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as stored:
                    return {name: stored[name] for name in stored.files}
            except (OSError, ValueError, EOFError, zipfile.BadZipFile):
                path.unlink(missing_ok=True)  # unreadable entry: recompute
        result = compute()
        if self.enabled:
            with atomic_path(path) as temporary:
                with open(temporary, "wb") as handle:
                    np.savez(handle, **{k: np.asarray(v) for k, v in result.items()})
        return result

    def table(self, kind: str, parts: dict, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
        """Return the cached DataFrame (stored as CSV), computing it on a miss."""
        path = self.path(kind, parts, ".csv")
        if self.enabled and path.is_file():
            try:
                return pd.read_csv(path)
            except (OSError, ValueError):
                path.unlink(missing_ok=True)  # unreadable entry: recompute
        result = compute()
        if self.enabled:
            with atomic_path(path) as temporary:
                result.to_csv(temporary, index=False)
        return result

    def weights(self, kind: str, parts: dict, compute: Callable[[], dict]) -> dict:
        """Return a cached torch ``state_dict``, computing it on a miss.

        Loaded with ``torch.load(weights_only=True)``: no arbitrary code is unpickled.
        """
        import torch

        path = self.path(kind, parts, ".pt")
        if self.enabled and path.is_file():
            try:
                return torch.load(path, map_location="cpu", weights_only=True)
            except Exception:  # truncated or foreign file: recompute
                path.unlink(missing_ok=True)
        result = compute()
        if self.enabled:
            with atomic_path(path) as temporary:
                torch.save(result, temporary)
        return result
