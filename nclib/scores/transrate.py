"""TransRate: mutual information between features and labels via coding rates (Huang et al. 2022)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import features_and_labels
from nclib.scores._linalg import centred_gram
from nclib.scores.hscore import require_variation

#: Centred Gram determinants: shifts and rotations; eps fixes a scale, so not rescaling.
INVARIANCES = frozenset({"shift", "rotation", "column_permutation"})


def _half_logdet_identity_plus(gram: np.ndarray, scale: float) -> float:
    """``0.5 * logdet(I + gram / scale)`` for a PSD ``gram``, by Cholesky (the matrix is SPD)."""
    matrix = gram / scale
    matrix[np.diag_indices_from(matrix)] += 1.0
    return float(np.sum(np.log(np.diag(np.linalg.cholesky(matrix)))))


def coding_rate(centred, eps: float = 1e-4) -> float:
    """Coding rate :math:`R(Z, \\varepsilon) = \\frac12 \\log\\det(I + Z^T Z / (n\\varepsilon))`.

    Uses the smaller of the two Gram matrices (:math:`\\det(I_D + Z^TZ/s) =
    \\det(I_n + ZZ^T/s)`).

    Parameters
    ----------
    centred : array-like of shape (n, D)
        Rows of Z (already centred by the caller, as TransRate prescribes).
    eps : float

    Examples
    --------
    >>> bool(np.isclose(coding_rate([[-1.0], [1.0]], eps=1.0), 0.5 * np.log(2.0)))
    True
    """
    rows = np.asarray(centred, dtype=np.float64)
    num, dim = rows.shape
    gram = rows @ rows.T if num < dim else rows.T @ rows
    return _half_logdet_identity_plus(gram, num * eps)


def transrate_score(features: ArrayLike, labels: ArrayLike, eps: float = 1e-4) -> float:
    """TransRate: coding rate of all features minus the mean coding rate per class.

    With features centred by their global mean, :math:`Z_c` the rows of class c and
    :math:`R(Z, \\varepsilon) = \\frac12\\log\\det(I + Z^TZ/(n\\varepsilon))` (n the
    number of rows of Z),

    .. math:: \\mathrm{TransRate} = R(Z, \\varepsilon) - \\frac1C \\sum_c R(Z_c, \\varepsilon),

    an estimate of the mutual information between features and labels: large when the
    features fill a large volume overall but little within each class. **Larger is
    better.** As in the authors' code the classes are not re-centred and the class
    term is an unweighted mean over classes. Cost: the class Gram matrices (O(N D^2) in
    all) and C + 1 Cholesky factorisations of size min(n, D).

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    eps : float
        Distortion :math:`\\varepsilon` of the coding rate (the reference default,
        1e-4). TransRate depends on the feature scale relative to ``eps``.

    Returns
    -------
    float

    References
    ----------
    L.-K. Huang, J. Huang, Y. Rong, Q. Yang, Y. Wei. Frustratingly Easy Transferability
    Estimation. ICML 2022.

    Examples
    --------
    One feature, centred values -2 (class a) and 1, 1 (class b), eps = 1:
    R = log(3)/2, R_a = log(5)/2, R_b = log(2)/2.

    >>> value = transrate_score([[-2.0], [1.0], [1.0]], ["a", "b", "b"], eps=1.0)
    >>> bool(np.isclose(value, 0.5 * np.log(3) - 0.25 * (np.log(5) + np.log(2))))
    True
    """
    if not eps > 0:
        raise ValueError(f"transrate_score: eps must be positive, got {eps}")
    features, codes, classes, counts = features_and_labels(features, labels, "transrate_score", 1, INVARIANCES)
    require_variation(features, "transrate_score")
    num_samples, dim = features.shape
    mean = features.mean(axis=0)
    members = [np.flatnonzero(codes == c) for c in range(len(classes))]
    if num_samples >= dim:
        gram_sum = np.zeros((dim, dim))
        per_class = []
        for idx in members:  # one class Gram at a time: memory O(D^2) for any C
            gram = centred_gram(features[idx], mean)
            per_class.append(_half_logdet_identity_plus(gram, len(idx) * eps))
            gram_sum += gram
        total = _half_logdet_identity_plus(gram_sum, num_samples * eps)
    else:
        centred = features - mean
        gram = centred @ centred.T  # (N, N); class blocks are its diagonal blocks
        total = _half_logdet_identity_plus(gram, num_samples * eps)
        per_class = [_half_logdet_identity_plus(gram[np.ix_(idx, idx)], len(idx) * eps) for idx in members]
    return float(total - np.mean(per_class))
