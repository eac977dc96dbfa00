"""LogME: the logarithm of maximum evidence (You, Liu, Wang and Long, ICML 2021)."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import class_name, features_and_labels
from nclib.scores._linalg import psd_eigh

_LOG_2PI = np.log(2.0 * np.pi)
_GRID_STEP = 0.25  # in log(alpha / beta)
_GRID_BLOCK = 256  # grid points evaluated at a time
_MARGIN = 12.0  # in log r beyond the spectrum
_PEAKS = 3  # grid maxima refined
_GRADED_RATIO = 2.0**10  # column norms further apart than this: equilibrate before decomposing...
_TRUSTED_ERROR = 1e-8  # ...when eigenvalue errors could move the evidence per sample by more than this

#: Transforms LogME is invariant to: the evidence of ``s F Q`` at ``alpha s^2`` equals that of ``F``
#: at ``alpha`` (isotropic prior), so the maximum is unchanged. No intercept: not shift-invariant.
INVARIANCES = frozenset({"isotropic_scale", "rotation", "column_permutation"})


class ConvergenceWarning(UserWarning):
    """An iterative score stopped at ``max_iter`` before reaching its tolerance."""


def _spectrum(features: np.ndarray, onehot: np.ndarray, trust=None):
    """Non-zero eigenvalues of F^T F and the label projections onto the left singular vectors.

    Uses the smaller Gram matrix (D x D or N x N) and one symmetric eigendecomposition
    shared by all classes. When the column norms differ by more than 2^10, the Gram
    matrix of the column-equilibrated features :math:`E = F S^{-1}` (S the column norms
    rounded to powers of two) is decomposed instead, :math:`E = U_E \\Lambda^{1/2} W^T`,
    and the spectrum of F is that of the small matrix :math:`M = \\Lambda^{1/2} W^T S`
    (since :math:`F = U_E M`), read off its SVD: the eigenvalues of F^T F computed
    directly would carry an absolute error of eps times the largest one, which swamps
    the small eigenvalues that badly scaled columns create. That costs one more
    eigendecomposition and an SVD, so it is done only when ``trust(eigenvalues,
    projections, error)`` says the plain spectrum (absolute eigenvalue error ``error``)
    is not accurate enough where the evidence is maximised.

    Returns
    -------
    eigenvalues : ndarray of shape (r,)
        Squared singular values of F above a rank threshold, increasing.
    projections : ndarray of shape (r, C)
        ``U^T y_c`` for each class indicator ``y_c``.
    """
    num_samples, dim = features.shape
    eps = np.finfo(float).eps
    if num_samples >= dim:
        gram = features.T @ features
        norms = np.sqrt(np.diag(gram))
    else:
        norms = np.sqrt(np.einsum("ij,ij->j", features, features))
    present = norms > 0
    graded = present.any() and norms[present].max() > _GRADED_RATIO * norms[present].min()
    plain = gram if num_samples >= dim else features @ features.T
    rtol = max(num_samples, dim) * eps  # rank threshold relative to the largest eigenvalue
    eigenvalues, vectors = psd_eigh(plain, rtol)
    error = eigenvalues[-1] * np.sqrt(min(num_samples, dim)) * eps  # typical absolute error of eigh
    if num_samples >= dim:
        projections = (vectors.T @ (features.T @ onehot)) / np.sqrt(eigenvalues)[:, None]
    else:
        projections = vectors.T @ onehot
    if not graded or trust is None or trust(eigenvalues, projections, error):
        return eigenvalues, projections
    scale = np.where(present, np.ldexp(1.0, np.frexp(np.where(present, norms, 1.0))[1]), 1.0)  # powers of two
    if num_samples >= dim:
        equilibrated = gram / scale[:, None] / scale[None, :]
        values, vectors = psd_eigh(equilibrated, rtol)
        root = np.sqrt(values)
        small = (vectors * root).T * scale[None, :]  # M = Lambda^1/2 W^T S, (r, D)
        inner = (vectors.T @ ((features.T @ onehot) / scale[:, None])) / root[:, None]  # U_E^T Y
    else:
        equilibrated = (features / scale) @ (features / scale).T
        _, vectors = psd_eigh(equilibrated, rtol)
        small = vectors.T @ features  # M = U_E^T F, (r, D)
        inner = vectors.T @ onehot
    left, singular, _ = np.linalg.svd(small, full_matrices=False)
    order = np.argsort(singular)
    keep = singular[order] > 0
    left, singular = left[:, order[keep]], singular[order[keep]]
    return singular**2, left.T @ inner


def log_evidence(alpha, beta, eigenvalues, projections, outside, num_samples, dim):
    """Log evidence log p(y | F, alpha, beta) of Bayesian linear regression.

    Model: :math:`y = F w + \\varepsilon`, :math:`w \\sim N(0, \\alpha^{-1} I_D)`,
    :math:`\\varepsilon \\sim N(0, \\beta^{-1} I_N)`, written in the eigenbasis of
    :math:`F^T F` so that each evaluation costs O(r).

    Parameters
    ----------
    alpha, beta : ndarray of shape (C,)
        Prior precision of the weights and precision of the noise, per class.
    eigenvalues : ndarray of shape (r,)
    projections : ndarray of shape (r, C)
    outside : ndarray of shape (C,)
        Squared norm of each label vector outside the column space of F.
    num_samples, dim : int

    Returns
    -------
    ndarray of shape (C,)

    Examples
    --------
    One sample, one feature equal to 1, label 1: the evidence is the N(0, 1/alpha + 1/beta)
    density at 1.

    >>> ev = log_evidence(np.array([1.0]), np.array([1.0]), np.array([1.0]),
    ...                   np.array([[1.0]]), np.array([0.0]), 1, 1)
    >>> bool(np.isclose(ev[0], -0.5 * np.log(2 * np.pi * 2) - 0.25))
    True
    """
    lam = eigenvalues[:, None]
    total = alpha + beta * lam  # (r, C)
    weight_norm = np.sum(beta**2 * lam * projections**2 / total**2, axis=0)  # m^T m
    residual = np.sum((alpha / total) ** 2 * projections**2, axis=0) + outside  # ||y - F m||^2
    rank = len(eigenvalues)
    return (
        0.5 * rank * np.log(alpha)
        + 0.5 * num_samples * np.log(beta)
        - 0.5 * np.sum(np.log(total), axis=0)
        - 0.5 * beta * residual
        - 0.5 * alpha * weight_norm
        - 0.5 * num_samples * _LOG_2PI
    )
    # (D/2) log alpha - (D - r)/2 log alpha = r/2 log alpha: the null directions of F^T F


def profile_log_evidence(log_ratio, eigenvalues, projections, outside, num_samples) -> np.ndarray:
    """Log evidence maximised over beta at fixed ratios r = alpha / beta; shape (G, C).

    With :math:`\\alpha = r\\beta` the evidence separates: the beta-dependent part is
    :math:`\\frac N2 \\log\\beta - \\frac\\beta2 Q(r)` with
    :math:`Q(r) = \\sum_j p_j^2 \\frac{r}{r+\\lambda_j} + \\|y_\\perp\\|^2`, maximal at
    :math:`\\beta = N/Q(r)`, so that

    .. math:: \\max_\\beta \\log p = -\\frac12\\sum_j \\log\\Big(1+\\frac{\\lambda_j}{r}\\Big)
              + \\frac N2\\Big(\\log\\frac{N}{Q(r)} - 1 - \\log 2\\pi\\Big).

    (``log1p`` form: no cancellation between :math:`\\frac r2\\log r` and the log-determinant.)

    Parameters
    ----------
    log_ratio : ndarray of shape (G,)
    eigenvalues : ndarray of shape (r,)
    projections : ndarray of shape (r, C)
    outside : ndarray of shape (C,)
    num_samples : int or float
        N (N - 1 for a model with a free intercept).

    Examples
    --------
    At any ratio the profile equals the evidence at its best beta:

    >>> lam, p, o = np.array([4.0, 1.0]), np.array([[1.0], [0.5]]), np.array([0.3])
    >>> q = float(np.sum(p[:, 0] ** 2 * 2.0 / (2.0 + lam)) + 0.3)
    >>> direct = log_evidence(np.array([2.0 * 3 / q]), np.array([3 / q]), lam, p, o, 3, 2)
    >>> bool(np.isclose(profile_log_evidence(np.log([2.0]), lam, p, o, 3)[0, 0], direct[0]))
    True
    """
    inverse = np.exp(-np.atleast_1d(np.asarray(log_ratio, dtype=float)))[:, None]  # (G, 1): 1 / r
    shrink = 1.0 / (1.0 + eigenvalues[None, :] * inverse)  # (G, r): r / (r + lambda)
    quadratic = shrink @ projections**2 + outside  # (G, C)
    quadratic = np.maximum(quadratic, np.finfo(float).tiny)
    log_det = np.sum(np.log1p(eigenvalues[None, :] * inverse), axis=1, keepdims=True)  # (G, 1)
    return -0.5 * log_det + 0.5 * num_samples * (np.log(num_samples / quadratic) - 1.0 - _LOG_2PI)


def _search_range(eigenvalues, projections, outside, num_samples):
    """Interval of log r that holds every interior maximum of the profiled evidence.

    Far above the largest eigenvalue the profile is monotone (it tends to the
    alpha -> infinity limit); below the smallest eigenvalue it has at most one
    stationary point, at :math:`r^* = \\|y_\\perp\\|^2\\,\\mathrm{rank} /
    ((N - \\mathrm{rank}) \\sum_j p_j^2/\\lambda_j)`; a margin of e^12 covers both tails.
    """
    low, high = np.log(eigenvalues[0]) - _MARGIN, np.log(eigenvalues[-1]) + _MARGIN
    rank = len(eigenvalues)
    if rank < num_samples:
        spread = np.sum(projections**2 / eigenvalues[:, None], axis=0)
        usable = (outside > 0) & (spread > 0)
        if usable.any():
            star = np.log(outside[usable]) + np.log(rank) - np.log(num_samples - rank) - np.log(spread[usable])
            low = min(low, float(star.min()) - _MARGIN)
    return low, high


def maximise_profile(eigenvalues, projections, outside, num_samples, tol: float = 1e-10, max_iter: int = 1_000):
    """Global maximum over log r of :func:`profile_log_evidence`, per column.

    A grid of step 1/4 in log r over :func:`_search_range` (the profile varies on a scale
    of one unit of log r: each eigenvalue enters through :math:`r/(r+\\lambda_j)`), then
    a bounded Brent search around each of the three best local maxima of the grid. This
    finds the highest of several peaks, where MacKay's fixed point from
    :math:`\\alpha=\\beta=1` may stop on a lower one. Suprema at the ends of the range
    (r -> 0 or infinity) are the caller's closed-form limits.

    Returns
    -------
    log_ratio : ndarray of shape (C,)
    value : ndarray of shape (C,)
        Maximum log evidence (total, not per sample).
    failed : ndarray of shape (C,), bool
        Columns whose refinement stopped at ``max_iter`` before reaching ``tol``.
    """
    from scipy.optimize import minimize_scalar

    low, high = _search_range(eigenvalues, projections, outside, num_samples)
    grid = np.arange(low, high + _GRID_STEP, _GRID_STEP)
    num_columns = projections.shape[1]
    best_ratio, best_value = np.empty(num_columns), np.empty(num_columns)
    failed = np.zeros(num_columns, dtype=bool)
    values = np.empty((len(grid), num_columns))
    for start in range(0, len(grid), _GRID_BLOCK):  # O(block x rank) memory
        values[start:start + _GRID_BLOCK] = profile_log_evidence(grid[start:start + _GRID_BLOCK], eigenvalues,
                                                                 projections, outside, num_samples)
    for c in range(num_columns):
        column = values[:, c]
        peaks = np.flatnonzero((column >= np.r_[-np.inf, column[:-1]]) & (column >= np.r_[column[1:], -np.inf]))
        peaks = peaks[np.argsort(column[peaks])[::-1][:_PEAKS]]
        index = int(peaks[0])
        best_ratio[c], best_value[c] = grid[index], column[index]

        def negative(t, c=c):
            return -profile_log_evidence(np.array([t]), eigenvalues, projections[:, [c]], outside[[c]],
                                         num_samples)[0, 0]

        stalled = False
        for index in peaks:
            bounds = (grid[max(index - 1, 0)], grid[min(index + 1, len(grid) - 1)])
            result = minimize_scalar(negative, bounds=bounds, method="bounded",
                                     options={"xatol": tol, "maxiter": max_iter})
            stalled |= not result.success
            if -result.fun > best_value[c]:
                best_ratio[c], best_value[c] = result.x, -result.fun
        failed[c] = stalled
    return best_ratio, best_value, failed


def logme_score(features: ArrayLike, labels: ArrayLike, tol: float = 1e-10, max_iter: int = 1_000) -> float:
    """LogME: mean over classes of the maximum log evidence per sample.

    For each class c, the one-vs-rest indicator :math:`y_c \\in \\{0,1\\}^N` is modelled
    by Bayesian linear regression on the features,
    :math:`y_c = F w + \\varepsilon` with :math:`w \\sim N(0, \\alpha^{-1}I)` and
    :math:`\\varepsilon \\sim N(0, \\beta^{-1}I)`. The evidence
    :math:`p(y_c \\mid F, \\alpha, \\beta)` is maximised over :math:`(\\alpha, \\beta)`
    globally (see below), and

    .. math:: \\mathrm{LogME} = \\frac1C \\sum_c \\frac1N
              \\max_{\\alpha,\\beta} \\log p(y_c \\mid F, \\alpha, \\beta).

    **Larger is better.** One eigendecomposition (of the smaller of the two Gram
    matrices) is shared by all classes, so the cost is O(N D min(N, D) + min(N, D)^3)
    and then O(min(N, D)) per evaluation of the evidence.

    The maximum is the global one. For fixed :math:`r = \\alpha/\\beta` the best
    :math:`\\beta` is closed-form (:func:`profile_log_evidence`), so the evidence is
    searched along log r alone: on a grid covering the whole spectrum of :math:`F^TF`
    and beyond, then refined around the best grid peaks (:func:`maximise_profile`).
    MacKay's fixed point from :math:`\\alpha=\\beta=1` (the reference code) can stop
    on the lower of two peaks of the evidence, several percent below the maximum, when
    feature columns have very different scales. Such features also make the small
    eigenvalues of :math:`F^TF` inaccurate when it is decomposed directly (absolute error
    eps times the largest); when column norms differ by more than 2^10 the spectrum is
    taken from the column-equilibrated Gram matrix and the SVD of a small (r, D) factor
    instead (one extra O(min(N, D)^2 D) step; see the private ``_spectrum``).

    The supremum is taken seriously: when N < D the labels lie in the span of the
    features and the evidence increases towards a finite limit as
    :math:`\\beta \\to \\infty`; the limit (in closed form) is returned, unlike
    reference code that stops at an arbitrary iterate. The opposite limit
    :math:`\\alpha \\to \\infty` (features that explain nothing) is also compared.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Embeddings of the target training samples; cast to float64 (complex input is
        refused). Constant or duplicated columns are fine (they only lower the rank).
        Invariant to rotating and to uniformly rescaling the features (any positive
        factor: extreme magnitudes are brought into range by a power of two).
    labels : array-like of shape (N,)
        Any hashable values; at least two classes.
    tol : float
        Tolerance in log r of the final bounded search.
    max_iter : int
        Iteration cap of that search; a :class:`ConvergenceWarning` is issued if it
        stops short (the grid point it started from is then within 1/8 of log r of the
        maximum).

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad input, or an unbounded evidence: a class indicator lies exactly in the span
        of a rank-deficient feature matrix (e.g. duplicated samples when N < D).

    References
    ----------
    K. You, Y. Liu, J. Wang, M. Long. LogME: Practical Assessment of Pre-trained Models
    for Transfer Learning. ICML 2021.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 50)
    >>> informative = rng.normal(size=(100, 4)) + 2.0 * labels[:, None]
    >>> noise = rng.normal(size=(100, 4))
    >>> logme_score(informative, labels) > logme_score(noise, labels)
    True
    """
    if tol <= 0 or max_iter < 1:
        raise ValueError(f"need tol > 0 and max_iter >= 1, got tol={tol}, max_iter={max_iter}")
    features, codes, classes, counts = features_and_labels(features, labels, "logme_score", 1, INVARIANCES)
    num_samples, dim = features.shape
    if not features.any():
        raise ValueError("logme_score: features are all zero")
    onehot = np.zeros((num_samples, len(classes)))
    onehot[np.arange(num_samples), codes] = 1.0

    def solve(eigenvalues, projections):
        return _maximum(eigenvalues, projections, counts, classes, num_samples, tol, max_iter)

    def trust(eigenvalues, projections, error):
        # eigenvalue errors of size `error` move the log evidence by about error (rank + N) / r
        # at the maximiser r, and the beta -> infinity limit by sum(error / lambda)
        log_ratio, evidence, limit, _ = solve(eigenvalues, projections)
        interior = evidence >= limit
        bound = np.where(interior, 0.5 * error * (len(eigenvalues) + num_samples) / np.exp(log_ratio),
                         0.5 * num_samples * error / eigenvalues[0] if len(eigenvalues) == num_samples else 0.0)
        return bool(np.all(bound <= _TRUSTED_ERROR * num_samples))

    eigenvalues, projections = _spectrum(features, onehot, trust)
    _, evidence, limit, failed = solve(eigenvalues, projections)
    if failed.any():
        warnings.warn(
            f"logme_score: {int(failed.sum())} class(es) did not converge in max_iter={max_iter} "
            f"iterations (tolerance {tol:g}); the result is the best point found",
            ConvergenceWarning,
            stacklevel=2,
        )
    return float(np.mean(np.maximum(evidence, limit)) / num_samples)


def _maximum(eigenvalues, projections, counts, classes, num_samples, tol, max_iter):
    """Per class: the maximiser log r, the maximum of the profile, the boundary limit, convergence."""
    rank = len(eigenvalues)
    label_norms = counts.astype(float)  # ||y_c||^2 of a 0/1 indicator
    if rank == num_samples:  # U is square: every label vector lies in the span exactly
        outside = np.zeros(len(classes))
    else:  # ||y||^2 - ||U^T y||^2, clipped against round-off
        outside = np.maximum(label_norms - np.sum(projections**2, axis=0), 0.0)
    if rank < num_samples:
        interpolated = outside <= 1e-10 * label_norms
        if interpolated.any():
            c = int(np.argmax(interpolated))
            raise ValueError(
                f"logme_score: the evidence is unbounded for class {class_name(classes[c])}: its labels lie "
                f"exactly in the span of features of rank {rank} < N = {num_samples} "
                "(duplicated samples?)"
            )
    # closed-form suprema along the boundary of (alpha, beta):
    # alpha -> infinity: w = 0, the labels are pure noise of precision N / ||y||^2
    limits = [0.5 * num_samples * (np.log(num_samples / label_norms) - 1.0 - _LOG_2PI)]
    if rank == num_samples:  # beta -> infinity: exact interpolation, alpha = N / q
        q = np.sum(projections**2 / eigenvalues[:, None], axis=0)
        limits.append(
            0.5 * num_samples * (np.log(num_samples / q) - 1.0 - _LOG_2PI)
            - 0.5 * np.sum(np.log(eigenvalues))
        )
    limit = np.max(np.vstack(limits), axis=0)
    log_ratio, evidence, failed = maximise_profile(eigenvalues, projections, outside, num_samples, tol, max_iter)
    return log_ratio, evidence, limit, failed
