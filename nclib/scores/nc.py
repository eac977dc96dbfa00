"""The neural-collapse transferability score (Suresh, Abrol and Thakur, eq. 2)."""

from __future__ import annotations

import numpy as np

from nclib._validation import features_and_labels

VARIANTS = ("paper", "reference")
_CHUNK_ROWS = 1024

#: Euclidean distances over distances: unchanged by shifts, rotations and uniform rescaling.
INVARIANCES = frozenset({"shift", "isotropic_scale", "rotation", "column_permutation"})


def class_means(features, codes, counts):
    """Class means, shape (C, D), from integer codes (one ``onehot.T @ features`` product)."""
    onehot = np.zeros((features.shape[0], len(counts)))
    onehot[np.arange(features.shape[0]), codes] = 1.0
    return (onehot.T @ features) / counts[:, None]


def distances_to_class_means(features, codes, means) -> np.ndarray:
    """Euclidean distance of each sample to its own class mean, shape (N,).

    Computed as the norm of the difference, in row chunks: exact (no cancellation from
    expanding the square) and with O(chunk x D) extra memory.
    """
    out = np.empty(features.shape[0])
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        stop = start + _CHUNK_ROWS
        diff = features[start:stop] - means[codes[start:stop]]
        out[start:stop] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def nc_score(features, labels, variant: str = "paper") -> float:
    """Neural-collapse score: within-class spread over between-class-mean distance.

    For penultimate embeddings :math:`f_i` of the target training data with class means
    :math:`\\mu_c`, the paper's eq. (2) is

    .. math:: S = \\frac{\\sum_c \\frac{1}{|D_c|}\\sum_{i \\in c} \\|f_i-\\mu_c\\|_2}
                        {\\sum_{c<c'} \\|\\mu_c-\\mu_{c'}\\|_2}.

    A model whose embeddings already cluster tightly around well-separated class means
    (the "variability collapse" of a trained network) gets a small score.
    **Lower is better**; the score is always positive.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Embeddings of the N target training samples; cast to float64.
    labels : array-like of shape (N,)
        Class of each sample: any hashable values; at least two classes, each with at
        least two samples.
    variant : {"paper", "reference"}
        ``"paper"``: eq. (2) as printed, each class weighted equally in the numerator,
        the sum over unordered pairs of classes in the denominator.
        ``"reference"``: the authors' public demo notebook: numerator the mean over all
        samples of the distance to their class mean (classes weighted by size),
        denominator the mean over ordered pairs c != c'. With balanced classes
        ``paper = 2 / (C - 1) * reference``, so both rank models identically; with
        imbalanced classes they can disagree.

    Returns
    -------
    float
        The score (dimensionless; invariant to translation, rotation, uniform scaling of
        the features and to renaming the classes).

    Raises
    ------
    ValueError
        Bad shapes, NaN/inf, fewer than two classes, a class with one sample, or class
        means that all coincide.

    References
    ----------
    S. Suresh, V. Abrol, A. Thakur. Pitfalls in Measuring Neural Transferability.
    NeurIPS 2023 Workshop on Symmetry and Geometry in Neural Representations.

    Examples
    --------
    Two classes on a line: spreads 1 and 1 around means 0 and 4.

    >>> nc_score([[-1.0], [1.0], [3.0], [5.0]], ["a", "a", "b", "b"])
    0.5
    >>> nc_score([[-1.0], [1.0], [3.0], [5.0]], ["a", "a", "b", "b"], variant="reference")
    0.25
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    features, codes, classes, counts = features_and_labels(features, labels, "nc_score", 2, INVARIANCES)
    means = class_means(features, codes, counts)
    distances = distances_to_class_means(features, codes, means)
    pair_i, pair_j = np.triu_indices(len(classes), k=1)
    pair_distances = np.linalg.norm(means[pair_i] - means[pair_j], axis=1)
    if not pair_distances.any():
        raise ValueError("nc_score is undefined: all class means coincide")
    if variant == "paper":
        spread = (np.bincount(codes, weights=distances, minlength=len(classes)) / counts).sum()
        return float(spread / pair_distances.sum())
    return float(distances.mean() / pair_distances.mean())
