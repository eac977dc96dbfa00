"""GBC: the Gaussian Bhattacharyya coefficient (Pándy et al., CVPR 2022)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import features_and_labels
from nclib.scores._linalg import class_means
from nclib.scores.hscore import require_variation

VARIANTS = ("diagonal", "spherical")
_CHUNK_ROWS = 8192


def _class_variances(features, codes, means, counts):
    """Per-class, per-dimension variance (divided by n_c), shape (C, D), in row chunks."""
    sums = np.zeros_like(means)
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        deviations = features[rows] - means[codes[rows]]
        onehot = np.zeros((len(counts), deviations.shape[0]))
        onehot[codes[rows], np.arange(deviations.shape[0])] = 1.0
        sums += onehot @ deviations**2
    return sums / counts[:, None]


def bhattacharyya_distances(means, variances, first: int) -> np.ndarray:
    """Bhattacharyya distance between class ``first`` and every class, shape (C,).

    For Gaussians with diagonal covariances :math:`\\sigma_i^2, \\sigma_j^2` and
    :math:`\\bar\\sigma^2 = (\\sigma_i^2 + \\sigma_j^2)/2` (per dimension d):

    .. math:: D_B = \\frac18 \\sum_d \\frac{(\\mu_{id}-\\mu_{jd})^2}{\\bar\\sigma_d^2}
              + \\frac12 \\sum_d \\log\\frac{\\bar\\sigma_d^2}{\\sigma_{id}\\sigma_{jd}}.

    Parameters
    ----------
    means, variances : ndarray of shape (C, D)
    first : int

    Examples
    --------
    Equal unit variances, means 4 apart: :math:`D_B = 16/8 = 2`.

    >>> bhattacharyya_distances(np.array([[1.0], [5.0]]), np.ones((2, 1)), 0)
    array([0., 2.])
    """
    average = 0.5 * (variances[first] + variances)
    mahalanobis = np.sum((means[first] - means) ** 2 / average, axis=1) / 8.0
    log_ratio = np.sum(np.log(average) - 0.5 * np.log(variances[first]) - 0.5 * np.log(variances), axis=1)
    return mahalanobis + 0.5 * log_ratio


def gbc_score(features: ArrayLike, labels: ArrayLike, variant: str = "diagonal", min_variance: float = 1e-4,
              pca_dim: int | None = None) -> float:
    """Gaussian Bhattacharyya coefficient: minus the total overlap of the class Gaussians.

    Each class c is modelled as a Gaussian with the class mean and a diagonal
    (``"diagonal"``) or spherical (``"spherical"``, the mean of the diagonal times I)
    covariance, both with variances divided by n_c as in the reference code. With the
    Bhattacharyya coefficient :math:`BC = e^{-D_B}` (see
    :func:`bhattacharyya_distances`),

    .. math:: \\mathrm{GBC} = -\\sum_{i} \\sum_{j \\ne i} e^{-D_B(c_i, c_j)},

    a sum over ordered pairs. **Larger is better**; GBC <= 0 and approaches 0 as the
    classes separate. Cost O(N D + C^2 D) (plus one D x D covariance with ``pca_dim``).

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, each with at least two samples.
    variant : {"diagonal", "spherical"}
        ``"spherical"`` uses :math:`\\sigma_c^2 I` with the log-determinant term summed
        over all D dimensions. (The authors' code adds the log term of the scalar
        variances once instead of D times; we keep the exact Bhattacharyya distance.)
    min_variance : float
        Variance floor of each column, relative to **that column's** total variance
        (over all samples), so that columns with zero variance inside a class stay
        finite. Relative to each column, the floor never flattens an informative column
        whose scale is small next to the others, and the diagonal GBC keeps its exact
        invariance to rescaling each column. (The reference code floors at an absolute
        1e-4, which equals this floor for unit-variance columns.) Constant columns are
        dropped: they contribute exactly nothing to any Bhattacharyya distance.
    pca_dim : int or None
        ``None`` (default): the features as given. An integer k (the authors use 64):
        first project the features onto their k leading principal directions (exact
        PCA, :func:`nclib.scores._linalg.principal_components`), as in the pipeline of
        Pándy et al.; the score then no longer sees column scales but is invariant to
        rotations.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad input (including complex or NaN/inf features), a class with one sample,
        features that are all constant, or a bad option.

    References
    ----------
    M. Pándy, A. Agostinelli, J. Uijlings, V. Ferrari, T. Mensink. Transferability
    Estimation using Bhattacharyya Class Separability. CVPR 2022.

    Examples
    --------
    Two classes with unit variance and means 4 apart overlap by :math:`e^{-2}` each way:

    >>> value = gbc_score([[0.0], [2.0], [4.0], [6.0]], ["a", "a", "b", "b"])
    >>> bool(np.isclose(value, -2 * np.exp(-2)))
    True

    A column of tiny scale separates the classes; the relative floor keeps it:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> tiny = 1e-6 * (labels + 0.1 * rng.normal(size=100))
    >>> noise = 1e3 * rng.normal(size=(100, 3))
    >>> round(gbc_score(np.column_stack([tiny, noise]), labels), 3)
    -0.0
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if not min_variance > 0:
        raise ValueError(f"gbc_score: min_variance must be positive, got {min_variance}")
    if pca_dim is not None and (isinstance(pca_dim, bool) or not isinstance(pca_dim, (int, np.integer))
                                or pca_dim < 1):
        raise ValueError(f"gbc_score: pca_dim must be a positive integer or None, got {pca_dim!r}")
    invariances = invariances_of(variant, pca_dim)
    features, codes, classes, counts = features_and_labels(features, labels, "gbc_score", 2, invariances)
    require_variation(features, "gbc_score")
    if pca_dim is not None:
        from nclib.scores._linalg import principal_components, project

        _, directions, mean = principal_components(features, pca_dim)
        features = project(features, directions, mean)
    means = class_means(features, codes, counts)
    variances = _class_variances(features, codes, means, counts)
    weights = counts[:, None] / features.shape[0]
    grand_mean = np.sum(weights * means, axis=0)
    column_total = np.sum(weights * (variances + (means - grand_mean) ** 2), axis=0)  # (D,)
    varying = column_total > 0
    means, variances = means[:, varying], variances[:, varying]
    variances = np.maximum(variances, min_variance * column_total[varying])
    if variant == "spherical":
        variances = np.repeat(variances.mean(axis=1, keepdims=True), variances.shape[1], axis=1)
    overlap = 0.0
    for first in range(len(classes)):
        distances = bhattacharyya_distances(means, variances, first)
        overlap += float(np.sum(np.exp(-np.delete(distances, first))))
    return -overlap


def invariances_of(variant: str = "diagonal", pca_dim: int | None = None) -> frozenset:
    """Transforms of the features that leave GBC unchanged, for the given options.

    Shifts and uniform rescaling always (class means and variances move together, the
    variance floor is relative); with the diagonal covariance and no PCA also any
    per-column rescaling; after PCA any rotation (the principal coordinates are then
    the same up to sign, to which the diagonal GBC is blind).

    Examples
    --------
    >>> sorted(invariances_of("diagonal"))
    ['column_permutation', 'column_scale', 'isotropic_scale', 'shift']
    >>> sorted(invariances_of("diagonal", pca_dim=64))
    ['column_permutation', 'isotropic_scale', 'rotation', 'shift']
    """
    base = {"shift", "isotropic_scale", "column_permutation"}
    if pca_dim is not None:
        return frozenset(base | {"rotation"})
    if variant == "diagonal":
        return frozenset(base | {"column_scale"})
    return frozenset(base)


#: Invariances of the default options (diagonal covariance, no PCA).
INVARIANCES = invariances_of()
