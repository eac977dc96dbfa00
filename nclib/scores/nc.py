"""The neural-collapse transferability score (Suresh, Abrol and Thakur, eq. 2)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import check_class_sizes, checked_features, condition, encode_labels, real_matrix
from nclib.scores._linalg import class_means

VARIANTS = ("paper", "reference")
_CHUNK_ROWS = 256  # rows per block: the centred block stays in cache for its norms

#: Euclidean distances over distances: unchanged by shifts, rotations and uniform rescaling.
INVARIANCES = frozenset({"shift", "isotropic_scale", "rotation", "column_permutation"})


def distances_to_class_means(features, codes, means) -> np.ndarray:
    """Euclidean distance of each sample to its own class mean, shape (N,).

    Computed as the norm of the difference, in row chunks: exact (no cancellation from
    expanding the square) and with O(chunk x D) extra memory.
    """
    out = np.empty(features.shape[0])
    block = np.empty((min(_CHUNK_ROWS, features.shape[0]), features.shape[1]))
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        stop = min(start + _CHUNK_ROWS, features.shape[0])
        diff = block[: stop - start]
        np.take(means, codes[start:stop], axis=0, out=diff)
        np.subtract(features[start:stop], diff, out=diff)
        out[start:stop] = np.sqrt(np.einsum("ij,ij->i", diff, diff))
    return out


def _geometry(features, codes, counts):
    means = class_means(features, codes, counts)
    distances = distances_to_class_means(features, codes, means)
    pair_i, pair_j = np.triu_indices(len(counts), k=1)
    return means, distances, np.linalg.norm(means[pair_i] - means[pair_j], axis=1)


def _plausible(means, distances, pair_distances) -> bool:
    """Whether results of raw features can be trusted: finite, well inside float64's range,
    and no offset more than 2^10 times the spread (where centring on the mean loses bits)."""
    with np.errstate(over="ignore", invalid="ignore"):
        total = float(distances.sum()) + float(pair_distances.sum())
        offset = float(np.abs(means).max())
    if not (np.isfinite(total) and np.isfinite(offset)):
        return False
    spread = max(float(distances.max()), float(pair_distances.max()))
    top = max(offset, spread)
    return 2.0**-200 < top < 2.0**200 and offset <= 2.0**10 * spread


def nc_score(features: ArrayLike, labels: ArrayLike, variant: str = "paper") -> float:
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
    array = real_matrix(features)
    codes, classes = encode_labels(labels, array.shape[0])
    counts = check_class_sizes(codes, classes, 2, "nc_score")
    # validation fused into the two passes NC needs: NaN or inf propagates into the class means
    # and the distances; only when these look wrong (not finite, near overflow or underflow, or
    # an offset dwarfing the spread) are the features scanned and conditioned, then recomputed
    with np.errstate(all="ignore"):  # judged below; bad input is then scanned and named
        means, distances, pair_distances = _geometry(array, codes, counts)
    if not _plausible(means, distances, pair_distances):
        array, low, high = checked_features(features)
        array = condition(array, low, high, INVARIANCES, "nc_score")
        means, distances, pair_distances = _geometry(array, codes, counts)
    if not pair_distances.any():
        raise ValueError("nc_score is undefined: all class means coincide")
    if variant == "paper":
        spread = (np.bincount(codes, weights=distances, minlength=len(classes)) / counts).sum()
        return float(spread / pair_distances.sum())
    return float(distances.mean() / pair_distances.mean())
