"""The registry of downloadable files: ``nclib/data/registry.csv``, one row per (file, digest).

Each row names a file nclib can use, where it is published, and the digest it must have
before nclib opens it. Loaders read their URL, file name and checksum from here, so no
URL or digest is written twice (and none appears in a chapter). The table is package data
(read with :mod:`importlib.resources`), so an installed nclib finds it as a checkout does.
"""

from __future__ import annotations

import csv
import io
from importlib import resources
from pathlib import Path

#: The columns of ``registry.csv``, in order.
COLUMNS = ("name", "filename", "url", "algorithm", "digest", "size_bytes", "notes")


REGISTRY_PACKAGE = "nclib.data"
REGISTRY_FILE = "registry.csv"


def _registry_resource():
    """The packaged registry table as an :mod:`importlib.resources` traversable."""
    return resources.files(REGISTRY_PACKAGE).joinpath(REGISTRY_FILE)


def registry_path() -> Path:
    """Path of the packaged registry table (``nclib/data/registry.csv``).

    Examples
    --------
    >>> registry_path().name, registry_path().parent.name
    ('registry.csv', 'data')
    """
    return Path(str(_registry_resource()))


def registry_entries(path=None) -> dict:
    """All registry rows, keyed by name.

    Parameters
    ----------
    path : path-like, optional
        Another registry file with the same columns (default :func:`registry_path`).

    Returns
    -------
    dict of str to dict
        ``{name: {"name", "filename", "url", "algorithm", "digest", "size_bytes", "notes"}}``;
        ``size_bytes`` is an int (or None where the column is empty).

    Raises
    ------
    ValueError
        If the header differs from :data:`COLUMNS` or a name appears twice.

    Examples
    --------
    >>> "cifar10" in registry_entries()
    True
    """
    if path is None:  # read through importlib.resources: works for any installed layout
        path = registry_path()
        text = _registry_resource().read_bytes().decode("utf-8")
    else:
        path = Path(path)
        text = path.read_bytes().decode("utf-8")  # as open(newline=""): no translation
    with io.StringIO(text, newline="") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != COLUMNS:
            raise ValueError(f"{path}: columns must be {COLUMNS}, got {reader.fieldnames}")
        entries = {}
        for row in reader:
            if row["name"] in entries:
                raise ValueError(f"{path}: the name {row['name']!r} appears twice")
            row["algorithm"] = row["algorithm"].strip().lower()
            row["size_bytes"] = int(row["size_bytes"]) if row["size_bytes"].strip() else None
            entries[row["name"]] = row
    return entries


def registry_entry(name: str, path=None) -> dict:
    """One registry row, as a dict with the columns of :data:`COLUMNS`.

    Parameters
    ----------
    name : str
        The row's name, e.g. ``"cifar10"``.
    path : path-like, optional
        Another registry file (default :func:`registry_path`).

    Raises
    ------
    ValueError
        If no row has that name (the message lists the known names).

    Examples
    --------
    >>> entry = registry_entry("cifar10")
    >>> entry["filename"], entry["algorithm"], entry["size_bytes"]
    ('cifar-10-python.tar.gz', 'md5', 170498071)
    """
    entries = registry_entries(path)
    if name not in entries:
        raise ValueError(f"no registry entry named {name!r}; known: {sorted(entries)}")
    return dict(entries[name])
