"""The linear algebra the scores share: class means, scatter matrices, symmetric eigenproblems, PCA.

One definition each, so every score that needs, say, class means or the pseudo-inverse of
a covariance computes them the same way, to the bit:

* :func:`class_means`, :func:`centred_gram` -- first and second moments, in row chunks;
* :func:`psd_eigh` -- the eigenpairs of a symmetric positive semi-definite matrix above a
  rank threshold (LogME, the ideal measure, H-score, SFDA);
* :func:`pinv_quadratic`, :func:`solve_psd` -- (pseudo-)inverse quadratic forms and solves;
* :func:`top_eigenpairs`, :func:`largest_eigenvalue` -- a few extreme eigenpairs, by
  Lanczos when the matrix is large;
* :func:`principal_components`, :func:`project` -- the exact PCA of NLEEP, NCTI and GBC.

Private to :mod:`nclib.scores`: numpy and scipy only.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg
import scipy.sparse.linalg

_CHUNK_ROWS = 8192


def class_means(features: np.ndarray, codes: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Mean feature vector of each class, shape (C, D), from one (C, N) x (N, D) product.

    Parameters
    ----------
    features : ndarray of shape (N, D)
    codes : ndarray of shape (N,)
        Integer class codes in ``range(C)``.
    counts : ndarray of shape (C,)
        Samples per class (every one positive).

    Returns
    -------
    ndarray of shape (C, D)

    Examples
    --------
    >>> class_means(np.array([[0.0], [2.0], [5.0]]), np.array([0, 0, 1]), np.array([2, 1]))
    array([[1.],
           [5.]])
    """
    onehot = np.zeros((len(counts), features.shape[0]))
    onehot[codes, np.arange(features.shape[0])] = 1.0
    return (onehot @ features) / counts[:, None]


def centred_gram(features: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """Scatter matrix :math:`\\sum_i (f_i - m)(f_i - m)^T`, shape (D, D).

    Computed in row chunks, so the centred copy never exceeds a few thousand rows and
    no cancellation arises from expanding :math:`F^T F - N m m^T`.

    Parameters
    ----------
    features : ndarray of shape (N, D)
    mean : ndarray of shape (D,)

    Returns
    -------
    ndarray of shape (D, D)

    Examples
    --------
    >>> centred_gram(np.array([[1.0, 0.0], [3.0, 2.0]]), np.array([2.0, 1.0]))
    array([[2., 2.],
           [2., 2.]])
    """
    dim = features.shape[1]
    gram = np.zeros((dim, dim))
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        block = features[start:start + _CHUNK_ROWS] - mean
        gram += block.T @ block
    return gram


def psd_eigh(matrix: np.ndarray, rtol: float) -> tuple[np.ndarray, np.ndarray]:
    """Eigenpairs of a symmetric PSD matrix whose eigenvalues exceed ``rtol`` times the largest.

    One ``numpy.linalg.eigh``; eigenvalues at most ``rtol * max(largest, 0)`` count as
    numerically zero and are dropped (the rank threshold of a pseudo-inverse).

    Parameters
    ----------
    matrix : ndarray of shape (D, D)
        Symmetric positive semi-definite.
    rtol : float
        Relative threshold, e.g. ``max(N, D) * eps`` for a Gram matrix of an (N, D) matrix.

    Returns
    -------
    eigenvalues : ndarray of shape (r,)
        Increasing.
    vectors : ndarray of shape (D, r)
        Orthonormal eigenvectors, column by column.

    Examples
    --------
    >>> values, vectors = psd_eigh(np.diag([4.0, 1e-20, 1.0]), 1e-12)
    >>> values.tolist(), vectors.shape
    ([1.0, 4.0], (3, 2))
    """
    eigenvalues, vectors = np.linalg.eigh(matrix)
    keep = eigenvalues > max(eigenvalues[-1], 0.0) * rtol
    return eigenvalues[keep], vectors[:, keep]


def pinv_quadratic(covariance: np.ndarray, vectors: np.ndarray, rtol: float) -> np.ndarray:
    """:math:`v_c^T \\Sigma^+ v_c` for each row ``v_c`` of ``vectors``, shape (C,).

    The pseudo-inverse treats eigenvalues at most ``rtol`` times the largest as zero
    (:func:`psd_eigh`).

    Parameters
    ----------
    covariance : ndarray of shape (D, D)
        Symmetric positive semi-definite.
    vectors : ndarray of shape (C, D)
    rtol : float

    Returns
    -------
    ndarray of shape (C,)

    Examples
    --------
    >>> pinv_quadratic(np.diag([4.0, 0.0]), np.array([[2.0, 5.0]]), 1e-12)
    array([1.])
    """
    eigenvalues, eigenvectors = psd_eigh(covariance, rtol)
    projections = eigenvectors.T @ vectors.T  # (r, C)
    return np.sum(projections**2 / eigenvalues[:, None], axis=0)


def solve_psd(matrix: np.ndarray, right: np.ndarray) -> np.ndarray:
    """``matrix^{-1} right`` for a symmetric positive (semi-)definite matrix.

    A Cholesky solve; when the matrix is numerically singular, the pseudo-inverse with
    the rank threshold ``D * eps`` (:func:`psd_eigh`).

    Parameters
    ----------
    matrix : ndarray of shape (D, D)
    right : ndarray of shape (D, K)

    Returns
    -------
    ndarray of shape (D, K)

    Examples
    --------
    >>> solve_psd(np.diag([2.0, 4.0]), np.array([[2.0], [2.0]]))
    array([[1. ],
           [0.5]])
    >>> solve_psd(np.diag([2.0, 0.0]), np.array([[2.0], [2.0]]))  # singular: pseudo-inverse
    array([[1.],
           [0.]])
    """
    try:
        return scipy.linalg.cho_solve(scipy.linalg.cho_factor(matrix), right)
    except np.linalg.LinAlgError:  # numerically singular: pseudo-inverse
        eigenvalues, vectors = psd_eigh(matrix, matrix.shape[0] * np.finfo(float).eps)
        return vectors @ ((vectors.T @ right) / eigenvalues[:, None])


def top_eigenpairs(symmetric: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``count`` largest eigenpairs of a symmetric PSD matrix, in decreasing order.

    Lanczos (``scipy.sparse.linalg.eigsh`` from a fixed start vector, so deterministic)
    for a matrix larger than 512 when fewer than a quarter of the pairs are asked for,
    otherwise (or if Lanczos does not converge) a full ``eigh``.

    Parameters
    ----------
    symmetric : ndarray of shape (D, D)
    count : int

    Returns
    -------
    values : ndarray of shape (count,)
    vectors : ndarray of shape (D, count)

    Examples
    --------
    >>> values, vectors = top_eigenpairs(np.diag([1.0, 3.0, 2.0]), 2)
    >>> values.tolist(), np.abs(vectors[:, 0]).tolist()
    ([3.0, 2.0], [0.0, 1.0, 0.0])
    """
    dim = symmetric.shape[0]
    if dim > 512 and count < dim // 4:  # Lanczos: O(D^2) per step instead of a full eigh
        start = np.random.default_rng(0).standard_normal(dim)  # fixed start: deterministic
        try:
            values, vectors = scipy.sparse.linalg.eigsh(symmetric, k=count, which="LA", v0=start)
            order = np.argsort(values)[::-1]
            return values[order], vectors[:, order]
        except scipy.sparse.linalg.ArpackNoConvergence:
            pass
    values, vectors = np.linalg.eigh(symmetric)
    return values[::-1][:count], vectors[:, ::-1][:, :count]


def largest_eigenvalue(matrix: np.ndarray) -> float:
    """The largest eigenvalue of a symmetric matrix.

    Lanczos from a fixed start vector (deterministic) above 256 rows, else (or if
    Lanczos does not converge) ``eigvalsh``.

    Parameters
    ----------
    matrix : ndarray of shape (D, D)

    Returns
    -------
    float

    Examples
    --------
    >>> largest_eigenvalue(np.diag([1.0, 3.0, 2.0]))
    3.0
    """
    dim = matrix.shape[0]
    if dim > 256:
        start = np.random.default_rng(0).standard_normal(dim)  # fixed start vector: deterministic
        try:
            return float(scipy.sparse.linalg.eigsh(matrix, k=1, which="LA", v0=start,
                                                   return_eigenvectors=False)[0])
        except scipy.sparse.linalg.ArpackNoConvergence:
            pass
    return float(np.linalg.eigvalsh(matrix)[-1])


def principal_components(features, num_components: int | None = None, variance_fraction: float | None = None):
    """Exact, deterministic PCA of the rows of ``features``.

    Keeps the leading principal directions: at most ``num_components``, and if
    ``variance_fraction`` is given, the fewest that explain at least that fraction of
    the total variance; directions with numerically zero variance are dropped.

    Parameters
    ----------
    features : ndarray of shape (N, D), N >= 2
    num_components : int, optional
    variance_fraction : float in (0, 1], optional

    Returns
    -------
    variances : ndarray of shape (k,)
        Variance along each kept direction (divided by N - 1, like scikit-learn's
        ``explained_variance_``), decreasing.
    directions : ndarray of shape (D, k)
        Orthonormal principal directions.
    mean : ndarray of shape (D,)

    Examples
    --------
    >>> variances, directions, mean = principal_components(
    ...     np.array([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]]), variance_fraction=0.8)
    >>> variances.tolist(), np.abs(directions[:, 0]).tolist(), mean.tolist()
    ([4.0], [1.0, 0.0], [2.0, 0.0])
    """
    num_samples, dim = features.shape
    mean = features.mean(axis=0)
    covariance = centred_gram(features, mean) / (num_samples - 1)
    total = float(np.trace(covariance))
    limit = min(dim, num_samples - 1, num_components or dim)
    variances, directions = top_eigenpairs(covariance, limit)
    keep = variances > max(dim, num_samples) * np.finfo(float).eps * max(total, 0.0)
    variances, directions = variances[keep], directions[:, keep]
    if variance_fraction is not None and len(variances):
        reached = np.cumsum(variances) >= variance_fraction * total * (1 - 1e-12)
        if reached.any():
            count = int(np.argmax(reached)) + 1
            variances, directions = variances[:count], directions[:, :count]
    return variances, directions, mean


def project(features: np.ndarray, directions: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """``(features - mean) @ directions`` in row chunks, shape (N, k).

    Parameters
    ----------
    features : ndarray of shape (N, D)
    directions : ndarray of shape (D, k)
    mean : ndarray of shape (D,)

    Returns
    -------
    ndarray of shape (N, k)

    Examples
    --------
    >>> project(np.array([[3.0, 1.0]]), np.array([[1.0], [0.0]]), np.array([1.0, 1.0]))
    array([[2.]])
    """
    out = np.empty((features.shape[0], directions.shape[1]))
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        out[rows] = (features[rows] - mean) @ directions
    return out


__all__ = ["centred_gram", "class_means", "largest_eigenvalue", "pinv_quadratic", "principal_components", "project",
           "psd_eigh", "solve_psd", "top_eigenpairs"]
