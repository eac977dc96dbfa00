"""Seeded, class-stratified sampling: the one place nclib draws rows class by class.

Every sampler here visits the classes in increasing order and draws from one
``numpy.random.Generator``, so a seed gives the same rows on every platform:

* :func:`stratified_split` -- a partition into parts of given fractions (data splits);
* :func:`holdout_split` -- a fitting part and a held-out part, every class in both;
* :func:`stratified_subsample` -- about ``max_samples`` rows, each class its share
  (the expensive scores' time budget, training-set sizes);
* :func:`limit_per_class` -- at most ``per_class`` rows of each class;
* :func:`per_class_parts` -- disjoint parts of exact sizes from every class.

A leaf module: numpy and the standard library only.
"""

from __future__ import annotations

import numpy as np


def _members(labels: np.ndarray, value) -> np.ndarray:
    return np.flatnonzero(labels == value)


def stratified_split(labels, fractions, seed) -> list[np.ndarray]:
    """Indices of a seeded, stratified split into parts of the given fractions.

    Each class is permuted and cut at ``round(cumsum(fractions) * n_c)`` (halves up).

    Parameters
    ----------
    labels : array-like of shape (N,)
    fractions : sequence of float
        Fractions summing to 1, e.g. ``(0.7, 0.15, 0.15)``.
    seed : int or numpy.random.Generator

    Returns
    -------
    list of ndarray
        One sorted int64 index array per fraction; together a partition of ``range(N)``.

    Raises
    ------
    ValueError
        A fraction that is not positive, or fractions that do not sum to 1.

    Examples
    --------
    >>> parts = stratified_split([0] * 20 + [1] * 20, (0.7, 0.15, 0.15), seed=0)
    >>> [len(p) for p in parts]
    [28, 6, 6]
    """
    labels = np.asarray(labels)
    fractions = np.asarray(fractions, dtype=float)
    if fractions.min() <= 0 or not np.isclose(fractions.sum(), 1.0):
        raise ValueError(f"fractions must be positive and sum to 1, got {fractions.tolist()}")
    rng = np.random.default_rng(seed)
    parts = [[] for _ in fractions]
    for value in np.unique(labels):
        members = rng.permutation(_members(labels, value))
        bounds = np.floor(np.cumsum(fractions) * len(members) + 0.5).astype(int)
        for k, (lo, hi) in enumerate(zip(np.r_[0, bounds[:-1]], bounds)):
            parts[k].extend(members[lo:hi])
    return [np.sort(np.asarray(p, dtype=np.int64)) for p in parts]


def holdout_split(codes, val_fraction: float = 0.25, random_state=0) -> tuple[np.ndarray, np.ndarray]:
    """Seeded per-class split into a fitting part and a held-out part.

    Each class of n samples holds out ``round(val_fraction * n)`` of them, but at least
    one when n >= 2 and never all of them, so every class keeps a fitting sample and
    every class with two or more samples is also judged on held-out data.

    Parameters
    ----------
    codes : array-like of shape (N,)
        Class labels (integer codes or any sortable values).
    val_fraction : float
        In (0, 0.5].
    random_state : int or numpy.random.Generator

    Returns
    -------
    fit, held_out : ndarray of int64
        Sorted indices; together a partition of ``range(N)``.

    Examples
    --------
    >>> fit, held_out = holdout_split([0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 2])
    >>> len(fit), len(held_out), sorted(np.asarray([0] * 8 + [1, 1, 2])[held_out].tolist())
    (8, 3, [0, 0, 1])
    """
    if not 0 < val_fraction <= 0.5:
        raise ValueError(f"val_fraction must lie in (0, 0.5], got {val_fraction!r}")
    codes = np.asarray(codes)
    rng = np.random.default_rng(random_state)
    held_out = []
    for value in np.unique(codes):
        members = rng.permutation(_members(codes, value))
        count = min(max(int(round(val_fraction * len(members))), 1), len(members) - 1)
        held_out.extend(members[:count])
    mask = np.zeros(len(codes), dtype=bool)
    mask[np.asarray(held_out, dtype=np.int64)] = True
    return np.flatnonzero(~mask), np.flatnonzero(mask)


def stratified_subsample(codes, max_samples: int | None, random_state=0, min_per_class: int = 1) -> np.ndarray:
    """Sorted indices of a seeded, class-stratified subsample of about ``max_samples`` rows.

    Every class keeps its share of ``max_samples`` (rounded) but at least
    ``min_per_class`` rows (or all it has). With ``max_samples=None`` or N at most
    ``max_samples``, all indices are returned.

    Parameters
    ----------
    codes : ndarray of shape (N,)
        Integer class codes.
    max_samples : int or None
    random_state : int or numpy.random.Generator
    min_per_class : int

    Returns
    -------
    ndarray of shape (n,), int64

    Examples
    --------
    >>> codes = np.array([0] * 90 + [1] * 10)
    >>> picked = stratified_subsample(codes, 20, random_state=0)
    >>> np.bincount(codes[picked]).tolist()
    [18, 2]
    """
    codes = np.asarray(codes)
    if max_samples is None or codes.shape[0] <= max_samples:
        return np.arange(codes.shape[0])
    if max_samples < 1:
        raise ValueError(f"max_samples must be a positive integer or None, got {max_samples}")
    rng = np.random.default_rng(random_state)
    counts = np.bincount(codes)
    quota = np.round(counts * (max_samples / codes.shape[0])).astype(np.int64)
    quota = np.minimum(np.maximum(quota, min_per_class), counts)
    picked = [rng.choice(_members(codes, c), size=quota[c], replace=False)
              for c in range(len(counts)) if quota[c] > 0]
    return np.sort(np.concatenate(picked))


def limit_per_class(labels, per_class: int, num_classes: int, seed=0) -> np.ndarray:
    """Sorted indices keeping at most ``per_class`` rows of each class, chosen at random.

    A class with at most ``per_class`` rows keeps them all (and draws nothing).

    Parameters
    ----------
    labels : array-like of shape (N,)
        Integer labels in ``range(num_classes)``.
    per_class : int
    num_classes : int
    seed : int or numpy.random.Generator

    Returns
    -------
    ndarray of int64

    Examples
    --------
    >>> kept = limit_per_class([0, 0, 0, 0, 1, 1], 3, num_classes=2, seed=0)
    >>> np.bincount(np.asarray([0, 0, 0, 0, 1, 1])[kept]).tolist()
    [3, 2]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    kept = []
    for label in range(num_classes):
        members = _members(labels, label)
        if len(members) > per_class:
            members = rng.choice(members, size=per_class, replace=False)
        kept.append(members)
    return np.sort(np.concatenate(kept)).astype(np.int64)


def per_class_parts(labels, counts, num_classes: int, rng) -> list[np.ndarray]:
    """Disjoint, sorted index arrays holding ``counts[k]`` rows of every class.

    Each class is permuted and its first ``sum(counts)`` rows cut into the parts.

    Parameters
    ----------
    labels : array-like of shape (N,)
        Integer labels in ``range(num_classes)``; every class needs ``sum(counts)`` rows.
    counts : sequence of int
    num_classes : int
    rng : int, numpy.random.SeedSequence or numpy.random.Generator

    Returns
    -------
    list of ndarray of int64

    Raises
    ------
    ValueError
        A class with fewer than ``sum(counts)`` rows.

    Examples
    --------
    >>> parts = per_class_parts([0, 1] * 5, (2, 1), num_classes=2, rng=0)
    >>> [len(p) for p in parts]
    [4, 2]
    """
    labels = np.asarray(labels)
    rng = np.random.default_rng(rng)
    chosen = [[] for _ in counts]
    for label in range(num_classes):
        members = _members(labels, label)
        if len(members) < sum(counts):
            raise ValueError(f"class {label} has {len(members)} rows, fewer than the {sum(counts)} asked for")
        members = rng.permutation(members)
        start = 0
        for k, count in enumerate(counts):
            chosen[k].append(members[start:start + count])
            start += count
    return [np.sort(np.concatenate(parts)).astype(np.int64) for parts in chosen]


__all__ = ["holdout_split", "limit_per_class", "per_class_parts", "stratified_split", "stratified_subsample"]
