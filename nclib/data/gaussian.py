"""Synthetic Gaussian classes with a controlled separation: the scores' test bench.

Used in the chapters "The scores: NC, LEEP and LogME" and "Towards an ideal measure".
"""

from __future__ import annotations

import numpy as np


def gaussian_classes(num_classes: int = 3, per_class=100, dim: int = 16, separation: float = 2.0,
                     spread: float = 1.0, seed: int = 0):
    """Isotropic Gaussian classes whose means sit on a scaled simplex.

    Class c has mean ``separation / sqrt(2) * e_c`` (so every pair of means is exactly
    ``separation`` apart) and covariance ``spread**2 * I``.

    Parameters
    ----------
    num_classes : int
        At least 2 and at most ``dim``.
    per_class : int or sequence of int
        Samples per class (a sequence gives imbalanced classes).
    dim : int
    separation : float
        Distance between any two class means.
    spread : float
        Standard deviation of each coordinate within a class.
    seed : int

    Returns
    -------
    features : ndarray of shape (N, dim)
    labels : ndarray of shape (N,), int64

    Examples
    --------
    >>> features, labels = gaussian_classes(3, per_class=[5, 10, 20], dim=4, separation=1.0, seed=0)
    >>> features.shape, np.bincount(labels).tolist()
    ((35, 4), [5, 10, 20])
    """
    if not 2 <= num_classes <= dim:
        raise ValueError(f"need 2 <= num_classes <= dim, got num_classes={num_classes}, dim={dim}")
    sizes = np.broadcast_to(np.asarray(per_class, dtype=int), (num_classes,))
    if sizes.min() < 1:
        raise ValueError(f"every class needs at least one sample, got {sizes.tolist()}")
    if separation < 0 or spread < 0:
        raise ValueError("separation and spread must be non-negative")
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), sizes)
    means = separation / np.sqrt(2.0) * np.eye(num_classes, dim)
    features = means[labels] + spread * rng.normal(size=(len(labels), dim))
    return features, labels.astype(np.int64)


def prototype_source_probs(features, num_source_classes: int = 20, temperature: float = 1.0, seed: int = 0):
    """A stand-in source classifier: softmax over negative squared distances to prototypes.

    LEEP reads a *source* classifier's probabilities over its own label set. For synthetic
    features there is no source model, so this one plays its part: ``num_source_classes``
    prototypes are drawn from the data (seeded) and each sample's "source class" posterior
    is a softmax of ``-||f - p_z||^2 / (2 temperature^2 D)``.

    Parameters
    ----------
    features : array-like of shape (N, D)
    num_source_classes : int
    temperature : float
    seed : int

    Returns
    -------
    ndarray of shape (N, num_source_classes)
        Rows sum to 1.

    Examples
    --------
    >>> f, _ = gaussian_classes(2, per_class=10, dim=3, seed=0)
    >>> probs = prototype_source_probs(f, num_source_classes=4)
    >>> probs.shape, bool(np.allclose(probs.sum(1), 1))
    ((20, 4), True)
    """
    features = np.asarray(features, dtype=float)
    if not 1 <= num_source_classes <= len(features):
        raise ValueError(f"num_source_classes must be in [1, {len(features)}], got {num_source_classes}")
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    rng = np.random.default_rng(seed)
    prototypes = features[rng.choice(len(features), num_source_classes, replace=False)]
    squared = ((features[:, None, :] - prototypes[None]) ** 2).sum(-1)
    logits = -squared / (2 * temperature**2 * features.shape[1])
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    return probs / probs.sum(axis=1, keepdims=True)
