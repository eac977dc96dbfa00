"""SFDA: self-challenging Fisher discriminant analysis (Shao et al., ECCV 2022).

Also the regularised linear discriminant (shrunk within-class covariance) that ETran's
classification term reuses: :func:`within_class_covariance`, :func:`adaptive_shrinkage`,
:func:`shrunk_covariance`, :func:`lda_log_posteriors`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
import scipy.special

from nclib._validation import features_and_labels
from nclib.scores._linalg import class_means, largest_eigenvalue, solve_psd
from nclib.scores.hscore import require_variation

_CHUNK_ROWS = 8192
_MIN_SHRINKAGE = 1e-10

#: The discriminant is affine-equivariant up to its shrinkage towards tr(S_w)/D I (rotations);
#: the adaptive shrinkage exp(-5 sigma_max) depends on the scale.
INVARIANCES = frozenset({"shift", "rotation", "column_permutation"})
#: With a fixed ``shrinkage`` uniform rescaling cancels too.
FIXED_SHRINKAGE_INVARIANCES = frozenset({"shift", "isotropic_scale", "rotation", "column_permutation"})


def within_class_covariance(features, codes, means) -> np.ndarray:
    """Pooled within-class covariance :math:`\\frac1N \\sum_i (f_i-\\mu_{y_i})(f_i-\\mu_{y_i})^T`.

    Equals :math:`\\sum_c \\frac{n_c}{N}\\,\\mathrm{cov}_c` with class covariances
    divided by n_c (as in the SFDA code). Shape (D, D); computed in row chunks.

    Examples
    --------
    >>> within_class_covariance(np.array([[0.0], [2.0], [4.0], [6.0]]), np.array([0, 0, 1, 1]),
    ...                         np.array([[1.0], [5.0]]))
    array([[1.]])
    """
    dim = features.shape[1]
    scatter = np.zeros((dim, dim))
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        block = features[rows] - means[codes[rows]]
        scatter += block.T @ block
    return scatter / features.shape[0]


def adaptive_shrinkage(within: np.ndarray) -> float:
    """SFDA's regularisation strength :math:`\\lambda = \\max(e^{-5\\,\\sigma_{max}(S_w)}, 10^{-10})`.

    :math:`\\sigma_{max}` is the largest eigenvalue of the within-class covariance
    (computed exactly here; the reference code runs three power iterations). Note that
    it depends on the scale of the features.

    Examples
    --------
    >>> bool(np.isclose(adaptive_shrinkage(np.eye(3) * 0.2), np.exp(-1.0)))
    True
    """
    return max(float(np.exp(-5.0 * largest_eigenvalue(within))), _MIN_SHRINKAGE)


def shrunk_covariance(within: np.ndarray, shrinkage: float) -> np.ndarray:
    """:math:`(1-\\lambda) S_w + \\lambda\\, \\mathrm{tr}(S_w)/D \\cdot I`, shape (D, D).

    Examples
    --------
    >>> shrunk_covariance(np.diag([3.0, 1.0]), 0.5)
    array([[2.5, 0. ],
           [0. , 1.5]])
    """
    dim = within.shape[0]
    shrunk = (1.0 - shrinkage) * within
    shrunk[np.diag_indices(dim)] += shrinkage * np.trace(within) / dim
    return shrunk


def lda_log_posteriors(features, codes, counts, covariance, means) -> np.ndarray:
    """Log posteriors :math:`\\log p(c \\mid f_i)` of Gaussian classes with a shared covariance.

    .. math:: \\log p(c \\mid f) = f^T \\Sigma^{-1}\\mu_c - \\tfrac12 \\mu_c^T\\Sigma^{-1}\\mu_c
              + \\log\\frac{n_c}{N} - \\text{(normaliser)},

    evaluated about the global mean (the posteriors are translation invariant; this
    keeps large constant offsets from swamping the differences).

    Parameters
    ----------
    features : ndarray of shape (N, D)
    codes : ndarray of shape (N,)
    counts : ndarray of shape (C,)
    covariance : ndarray of shape (D, D), symmetric positive definite
    means : ndarray of shape (C, D)

    Returns
    -------
    ndarray of shape (N, C)

    Examples
    --------
    >>> logp = lda_log_posteriors(np.array([[0.0], [6.0]]), np.array([0, 1]), np.array([1, 1]),
    ...                           np.eye(1), np.array([[1.0], [5.0]]))
    >>> bool(np.isclose(np.exp(logp[0, 0]), 1 / (1 + np.exp(-12))))
    True
    """
    centre = features.mean(axis=0)
    centred_means = means - centre
    directions = solve_psd(covariance, centred_means.T)  # (D, C)
    intercept = (-centre @ directions - 0.5 * np.sum(centred_means * directions.T, axis=1)
                 + np.log(counts / features.shape[0]))
    logits = features @ directions + intercept
    return logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)


def _confmix(features, codes, means, confidence):
    """Move each sample towards the mean of the *other* classes' means, by 1 - confidence."""
    num_classes = means.shape[0]
    outer = (means.sum(axis=0) - means) / (num_classes - 1)
    mixed = np.empty_like(features)
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        target = outer[codes[rows]]
        mixed[rows] = target + confidence[rows, None] * (features[rows] - target)
    return mixed


def sfda_score(features: ArrayLike, labels: ArrayLike, shrinkage: float | None = None) -> float:
    """SFDA: class posterior of a regularised Fisher discriminant after a "self-challenge".

    1. Fit a linear discriminant with the shrunk within-class covariance
       :math:`(1-\\lambda)S_w + \\lambda\\,\\mathrm{tr}(S_w)/D\\; I`,
       :math:`\\lambda = \\max(e^{-5\\sigma_{max}(S_w)}, 10^{-10})`. Keeping every Fisher
       direction (as the reference code does) makes the Fisher-space classifier exactly
       this regularised LDA.
    2. ConfMix: soften the posteriors once more with a softmax (as the reference code
       does), take each sample's softened probability p of its own class and move it to
       :math:`p f_i + (1-p)\\bar\\mu_{-y_i}`, where :math:`\\bar\\mu_{-c}` is the
       unweighted mean of the other classes' means: hard samples get harder.
    3. Refit the discriminant on the mixed features with the same :math:`\\lambda` and
       return the mean posterior of the true class, :math:`\\frac1N\\sum_i p(y_i\\mid x_i)`
       (no log, as in the paper's code).

    **Larger is better**; the value lies in (0, 1). Cost: two within-class scatter
    matrices (O(N D^2)) and two Cholesky solves (O(D^3)).

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, each with at least two samples.
    shrinkage : float in [0, 1], optional
        Fixed :math:`\\lambda` instead of the adaptive one.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad input, constant features, or every class collapsed to a single point (zero
        within-class scatter: the discriminant is undefined).

    References
    ----------
    W. Shao, X. Zhao, Y. Ge, Z. Zhang, L. Yang, X. Wang, Y. Shan, P. Luo. Not All Models
    Are Equal: Predicting Model Transferability in a Self-challenging Fisher Space.
    ECCV 2022.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 30)
    >>> separated = rng.normal(size=(90, 4)) + 3.0 * np.eye(3, 4)[labels]
    >>> mixed_up = rng.normal(size=(90, 4))
    >>> sfda_score(separated, labels) > sfda_score(mixed_up, labels)
    True
    """
    features, codes, classes, counts = features_and_labels(features, labels, "sfda_score", 2,
                                                           INVARIANCES if shrinkage is None else FIXED_SHRINKAGE_INVARIANCES)
    require_variation(features, "sfda_score")
    means = class_means(features, codes, counts)
    within = within_class_covariance(features, codes, means)
    if not np.trace(within) > 0:
        raise ValueError("sfda_score: every class is a single point (zero within-class scatter); "
                         "the Fisher discriminant is undefined")
    if shrinkage is None:
        shrinkage = adaptive_shrinkage(within)
    elif not 0 <= shrinkage <= 1:
        raise ValueError(f"sfda_score: shrinkage must be in [0, 1], got {shrinkage}")
    rows = np.arange(features.shape[0])
    log_post = lda_log_posteriors(features, codes, counts, shrunk_covariance(within, shrinkage), means)
    confidence = scipy.special.softmax(np.exp(log_post), axis=1)[rows, codes]
    mixed = _confmix(features, codes, means, confidence)
    mixed_means = class_means(mixed, codes, counts)
    mixed_within = within_class_covariance(mixed, codes, mixed_means)
    log_post = lda_log_posteriors(mixed, codes, counts, shrunk_covariance(mixed_within, shrinkage), mixed_means)
    return float(np.mean(np.exp(log_post[rows, codes])))
