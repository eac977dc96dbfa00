"""H-score (Bao et al. 2019) and its shrinkage-regularised form (Ibrahim et al. 2022).

Also home of :func:`ledoit_wolf` and of :func:`require_variation`, the check that the
covariance-based scores share; their linear algebra is in :mod:`nclib.scores._linalg`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
import scipy.linalg

from nclib._validation import features_and_labels
from nclib.scores._linalg import centred_gram, class_means, pinv_quadratic

_CHUNK_ROWS = 8192

#: H-score is unchanged by any invertible affine map of the features (shift, rotation,
#: per-column and uniform scaling among them).
INVARIANCES = frozenset({"shift", "isotropic_scale", "rotation", "column_scale", "column_permutation"})
#: Ledoit-Wolf shrinks towards a multiple of I: shifts, rotations and uniform scaling only.
SHRINKAGE_INVARIANCES = frozenset({"shift", "isotropic_scale", "rotation", "column_permutation"})


def ledoit_wolf(features) -> tuple[np.ndarray, float]:
    """Ledoit–Wolf shrunk covariance of the rows of ``features``.

    The estimate is :math:`(1-\\alpha) S + \\alpha \\mu I` with :math:`S` the maximum-
    likelihood covariance (divided by N), :math:`\\mu = \\mathrm{tr}(S)/D` and the
    shrinkage :math:`\\alpha \\in [0, 1]` that minimises the estimated Frobenius risk
    (Ledoit and Wolf, J. Multivariate Analysis 2004). The fourth-moment term needs only
    the squared row norms, so one Gram product is the whole cost.

    Parameters
    ----------
    features : array-like of shape (N, D)

    Returns
    -------
    covariance : ndarray of shape (D, D)
    shrinkage : float

    Examples
    --------
    In one dimension there is nothing to shrink towards:

    >>> cov, alpha = ledoit_wolf([[0.0], [2.0], [4.0], [6.0]])
    >>> float(cov[0, 0]), alpha
    (5.0, 0.0)
    """
    features = np.asarray(features, dtype=np.float64)
    num_samples, dim = features.shape
    mean = features.mean(axis=0)
    covariance = centred_gram(features, mean) / num_samples
    fourth = 0.0
    for start in range(0, num_samples, _CHUNK_ROWS):
        block = features[start:start + _CHUNK_ROWS] - mean
        fourth += float(np.sum(np.einsum("ij,ij->i", block, block) ** 2))
    mu = np.trace(covariance) / dim
    frobenius = float(np.sum(covariance**2))
    spread = (frobenius - 2.0 * mu * np.trace(covariance) + dim * mu**2) / dim  # ||S - mu I||^2 / D
    noise = (fourth / num_samples - frobenius) / (dim * num_samples)
    noise = min(noise, spread)
    shrinkage = 0.0 if noise <= 0 else float(noise / spread)
    shrunk = (1.0 - shrinkage) * covariance
    shrunk[np.diag_indices(dim)] += shrinkage * mu
    return shrunk, shrinkage


def require_variation(features: np.ndarray, score: str) -> None:
    """Raise ValueError when every feature column is constant (nothing to measure).

    Examples
    --------
    >>> require_variation(np.array([[1.0, 2.0], [1.0, 3.0]]), "h_score")
    >>> require_variation(np.ones((3, 2)), "h_score")
    Traceback (most recent call last):
    ...
    ValueError: h_score: the features are constant (every column has zero variance)
    """
    if not np.any(features.max(axis=0) > features.min(axis=0)):
        raise ValueError(f"{score}: the features are constant (every column has zero variance)")


def _between_class(features, codes, counts):
    """Global mean, class means minus it (C, D) and class weights n_c / N."""
    mean = features.mean(axis=0)
    centred_means = class_means(features, codes, counts) - mean
    return mean, centred_means, counts / features.shape[0]


def h_score(features: ArrayLike, labels: ArrayLike, rtol: float | None = None) -> float:
    """H-score: how much of the feature covariance the class means explain.

    .. math:: H(f) = \\mathrm{tr}\\big(\\mathrm{cov}(f)^{+}\\,
              \\mathrm{cov}(\\mathbb{E}[f \\mid y])\\big)

    with :math:`\\mathrm{cov}(\\mathbb{E}[f\\mid y]) = \\sum_c \\frac{n_c}{N}
    (\\mu_c - \\mu)(\\mu_c - \\mu)^T` the between-class covariance and :math:`^+` the
    pseudo-inverse. It is the (asymptotic) log-loss gain of the best linear classifier
    on these features, in the paper's information-theoretic reading. **Larger is
    better**; :math:`0 \\le H \\le \\min(C - 1, D)`, and H is invariant to any invertible
    linear map of the features.

    Both covariances divide by N (the reference code divides both by N - 1; the ratio
    is the same). The cost is one Gram product and one ``eigh``, O(N D^2 + D^3).

    Parameters
    ----------
    features : array-like of shape (N, D)
        Embeddings of the target training samples; cast to float64.
    labels : array-like of shape (N,)
        Any hashable values; at least two classes.
    rtol : float, optional
        Eigenvalues of cov(f) below ``rtol`` times the largest count as zero in the
        pseudo-inverse. Default ``D * eps`` (numpy's ``pinv`` default). The original
        code's 1e-15 lets near-singular directions dominate, the instability that
        motivated :func:`shrinkage_h_score`.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad input (see :mod:`nclib._validation`) or constant features.

    References
    ----------
    Y. Bao, Y. Li, S.-L. Huang, L. Zhang, L. Zheng, A. Zamir, L. Guibas. An
    Information-Theoretic Approach to Transferability in Task Transfer Learning.
    ICIP 2019.

    Examples
    --------
    One feature: total variance 5, between-class variance 4.

    >>> round(h_score([[0.0], [2.0], [4.0], [6.0]], ["a", "a", "b", "b"]), 12)
    0.8
    """
    features, codes, classes, counts = features_and_labels(features, labels, "h_score", 1, INVARIANCES)
    rtol = features.shape[1] * np.finfo(float).eps if rtol is None else float(rtol)
    if not 0 <= rtol < 1:
        raise ValueError(f"h_score: rtol must be in [0, 1), got {rtol}")
    require_variation(features, "h_score")
    mean, centred_means, weights = _between_class(features, codes, counts)
    covariance = centred_gram(features, mean) / features.shape[0]
    return float(np.sum(weights * pinv_quadratic(covariance, centred_means, rtol)))


def shrinkage_h_score(features: ArrayLike, labels: ArrayLike) -> float:
    """Shrinkage-regularised H-score (Ibrahim, Ponomareva and Mazumder).

    The H-score with the feature covariance replaced by its Ledoit–Wolf estimate
    :math:`\\Sigma_{LW} = (1-\\alpha)S + \\alpha\\mu I` (see :func:`ledoit_wolf`) and
    the between-class covariance shrunk by the same factor:

    .. math:: H_\\alpha(f) = \\mathrm{tr}\\big(\\Sigma_{LW}^{-1}\\,(1-\\alpha)\\,
              \\mathrm{cov}(\\mathbb{E}[f \\mid y])\\big).

    :math:`\\Sigma_{LW}` is well conditioned even when N < D or features are
    collinear, which removes the H-score's blow-up along near-null directions.
    **Larger is better.** Both covariances divide by N (the authors' code uses N - 1
    for the between-class one). Cost: one Gram product and one Cholesky solve.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)

    Returns
    -------
    float

    References
    ----------
    S. Ibrahim, N. Ponomareva, R. Mazumder. Newer is Not Always Better: Rethinking
    Transferability Metrics, Their Peculiarities, Stability and Performance.
    ECML PKDD 2022.

    Examples
    --------
    In one dimension the Ledoit–Wolf shrinkage is 0 and the H-score is unchanged:

    >>> round(shrinkage_h_score([[0.0], [2.0], [4.0], [6.0]], ["a", "a", "b", "b"]), 12)
    0.8
    """
    features, codes, classes, counts = features_and_labels(features, labels, "shrinkage_h_score", 1, SHRINKAGE_INVARIANCES)
    require_variation(features, "shrinkage_h_score")
    mean, centred_means, weights = _between_class(features, codes, counts)
    covariance, shrinkage = ledoit_wolf(features)
    try:
        factor = scipy.linalg.cho_factor(covariance)
        solved = scipy.linalg.cho_solve(factor, centred_means.T)  # (D, C)
        quadratic = np.sum(centred_means.T * solved, axis=0)
    except np.linalg.LinAlgError:  # alpha = 0 with a singular covariance: pseudo-inverse
        quadratic = pinv_quadratic(covariance, centred_means, covariance.shape[0] * np.finfo(float).eps)
    return float((1.0 - shrinkage) * np.sum(weights * quadratic))
