"""LogME: the logarithm of maximum evidence (You, Liu, Wang and Long, ICML 2021)."""

from __future__ import annotations

import warnings

import numpy as np

from nclib._validation import class_name, features_and_labels

_LOG_2PI = np.log(2.0 * np.pi)
_GRADIENT_FLOOR = 1e-6  # per-sample gradient in log-parameters below which round-off dominates


class ConvergenceWarning(UserWarning):
    """An iterative score stopped at ``max_iter`` before reaching its tolerance."""


def _spectrum(features: np.ndarray, onehot: np.ndarray):
    """Non-zero eigenvalues of F^T F and the label projections onto the left singular vectors.

    Uses the smaller Gram matrix (D x D or N x N) and one symmetric eigendecomposition
    shared by all classes.

    Returns
    -------
    eigenvalues : ndarray of shape (r,)
        Squared singular values of F above a rank threshold.
    projections : ndarray of shape (r, C)
        ``U^T y_c`` for each class indicator ``y_c``.
    """
    num_samples, dim = features.shape
    if num_samples >= dim:
        gram = features.T @ features
        eigenvalues, vectors = np.linalg.eigh(gram)
        keep = eigenvalues > eigenvalues[-1] * max(num_samples, dim) * np.finfo(float).eps
        eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
        projections = (vectors.T @ (features.T @ onehot)) / np.sqrt(eigenvalues)[:, None]
    else:
        gram = features @ features.T
        eigenvalues, vectors = np.linalg.eigh(gram)
        keep = eigenvalues > eigenvalues[-1] * max(num_samples, dim) * np.finfo(float).eps
        eigenvalues, vectors = eigenvalues[keep], vectors[:, keep]
        projections = vectors.T @ onehot
    return eigenvalues, projections


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


def _fixed_point(eigenvalues, projections, outside, num_samples, dim, limits, tol, max_iter):
    """MacKay's updates of (alpha, beta), all classes at once.

    A class stops when its log-parameters move less than ``tol``, or when its evidence
    per sample has levelled off within ``tol`` of a closed-form limit in ``limits``
    (the iterate then drifts towards alpha or beta = infinity, where the supremum lies,
    and would take thousands of sublinear steps to get there).

    Returns
    -------
    alpha, beta : ndarray of shape (C,)
    active : ndarray of shape (C,), bool
        Classes that had not converged when ``max_iter`` was reached.
    """
    num_classes = projections.shape[1]
    alpha, beta = np.ones(num_classes), np.ones(num_classes)
    lam = eigenvalues[:, None]
    evidence = log_evidence(alpha, beta, eigenvalues, projections, outside, num_samples, dim)
    active = np.ones(num_classes, dtype=bool)
    for _ in range(max_iter):
        total = alpha + beta * lam
        gamma = np.sum(beta * lam / total, axis=0)
        weight_norm = np.sum(beta**2 * lam * projections**2 / total**2, axis=0)
        residual = np.sum((alpha / total) ** 2 * projections**2, axis=0) + outside
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            new_alpha = gamma / weight_norm
            new_beta = (num_samples - gamma) / residual
        valid = np.isfinite(new_alpha) & np.isfinite(new_beta) & (new_alpha > 0) & (new_beta > 0)
        active &= valid  # a degenerate update only happens on the way to a limit
        new_alpha = np.where(active, new_alpha, alpha)
        new_beta = np.where(active, new_beta, beta)
        step = np.maximum(np.abs(np.log(new_alpha / alpha)), np.abs(np.log(new_beta / beta)))
        new_evidence = log_evidence(new_alpha, new_beta, eigenvalues, projections, outside, num_samples, dim)
        gain = (new_evidence - evidence) / num_samples
        gap = (limits - new_evidence) / num_samples
        at_limit = (gap >= -tol) & (gap < tol) & (gain < tol)
        alpha, beta, evidence = new_alpha, new_beta, new_evidence
        active &= (step >= tol) & ~at_limit
        if not active.any():
            break
    return alpha, beta, active


def _evidence_and_gradient(log_params, lam, z, outside, num_samples, dim):
    """Negative log evidence per sample and its gradient in (log alpha, log beta), one class.

    With gamma = sum(beta lam / (alpha + beta lam)), the partial derivatives are
    dL/dlog(alpha) = (gamma - alpha m^T m) / 2 and dL/dlog(beta) = (N - gamma - beta ||y - Fm||^2) / 2
    (MacKay's updates set exactly these to zero).
    """
    alpha, beta = np.exp(log_params)
    total = alpha + beta * lam
    gamma = np.sum(beta * lam / total)
    weight_norm = np.sum(beta**2 * lam * z**2 / total**2)
    residual = np.sum((alpha / total) ** 2 * z**2) + outside
    value = log_evidence(np.array([alpha]), np.array([beta]), lam, z[:, None], np.array([outside]), num_samples, dim)[0]
    gradient = 0.5 * np.array([gamma - alpha * weight_norm, num_samples - gamma - beta * residual])
    return -value / num_samples, -gradient / num_samples


def _polish(alpha, beta, eigenvalues, projections, outside, num_samples, dim, limit, classes, tol, max_iter):
    """Finish slow classes with L-BFGS-B on (log alpha, log beta) from MacKay's last iterate.

    MacKay's updates can creep along a flat ridge for thousands of steps; a quasi-Newton
    method with the exact gradient converges in tens. Warns when it too stops at ``max_iter``
    while still above the closed-form ``limit`` (below it, the supremum is the limit itself,
    approached as alpha or beta grows without bound, and the limit is returned).
    """
    from scipy.optimize import minimize

    alpha, beta = alpha.copy(), beta.copy()
    failed = []
    for c in classes:
        result = minimize(
            _evidence_and_gradient, np.log([alpha[c], beta[c]]), jac=True, method="L-BFGS-B",
            args=(eigenvalues, projections[:, c], outside[c], num_samples, dim),
            options={"maxiter": max_iter, "ftol": 1e-16, "gtol": tol},
        )
        if result.fun <= _evidence_and_gradient(np.log([alpha[c], beta[c]]), eigenvalues, projections[:, c],
                                                outside[c], num_samples, dim)[0]:
            alpha[c], beta[c] = np.exp(result.x)
        interior = -result.fun * num_samples > limit[c] + tol * num_samples
        # a line search that stops for lack of precision at a vanishing gradient has converged
        if not result.success and np.max(np.abs(result.jac)) > max(tol, _GRADIENT_FLOOR) and interior:
            failed.append(c)
    if failed:
        warnings.warn(
            f"logme_score: {len(failed)} class(es) did not converge in max_iter={max_iter} "
            f"iterations (tolerance {tol:g}); the result is the last iterate",
            ConvergenceWarning,
            stacklevel=3,
        )
    return alpha, beta


def logme_score(features, labels, tol: float = 1e-10, max_iter: int = 1_000) -> float:
    """LogME: mean over classes of the maximum log evidence per sample.

    For each class c, the one-vs-rest indicator :math:`y_c \\in \\{0,1\\}^N` is modelled
    by Bayesian linear regression on the features,
    :math:`y_c = F w + \\varepsilon` with :math:`w \\sim N(0, \\alpha^{-1}I)` and
    :math:`\\varepsilon \\sim N(0, \\beta^{-1}I)`. The evidence
    :math:`p(y_c \\mid F, \\alpha, \\beta)` is maximised over :math:`(\\alpha, \\beta)`
    by MacKay's fixed-point updates, and

    .. math:: \\mathrm{LogME} = \\frac1C \\sum_c \\frac1N
              \\max_{\\alpha,\\beta} \\log p(y_c \\mid F, \\alpha, \\beta).

    **Larger is better.** One eigendecomposition (of the smaller of the two Gram
    matrices) is shared by all classes, so the cost is O(N D min(N, D) + min(N, D)^3)
    and then O(min(N, D)) per iteration and class.

    The supremum is taken seriously: when N < D the labels lie in the span of the
    features and the evidence increases towards a finite limit as
    :math:`\\beta \\to \\infty`; the limit (in closed form) is returned, unlike
    reference code that stops at an arbitrary iterate. The opposite limit
    :math:`\\alpha \\to \\infty` (features that explain nothing) is also compared.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Embeddings of the target training samples; cast to float64. Constant or
        duplicated columns are fine (they only lower the rank).
    labels : array-like of shape (N,)
        Any hashable values; at least two classes.
    tol : float
        Stop when no class changes log alpha or log beta by more than ``tol``.
    max_iter : int
        Iteration cap of MacKay's updates; classes still moving then are finished by
        L-BFGS-B on (log alpha, log beta) with the exact gradient, under the same cap,
        and a :class:`ConvergenceWarning` is issued if that too stops short.

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
    features, codes, classes, counts = features_and_labels(features, labels, "logme_score", 1)
    num_samples, dim = features.shape
    if not features.any():
        raise ValueError("logme_score: features are all zero")
    onehot = np.zeros((num_samples, len(classes)))
    onehot[np.arange(num_samples), codes] = 1.0
    eigenvalues, projections = _spectrum(features, onehot)
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
    alpha, beta, slow = _fixed_point(eigenvalues, projections, outside, num_samples, dim, limit, tol, max_iter)
    if slow.any():
        alpha, beta = _polish(alpha, beta, eigenvalues, projections, outside, num_samples, dim, limit,
                              np.flatnonzero(slow), tol, max_iter)
    iterate = log_evidence(alpha, beta, eigenvalues, projections, outside, num_samples, dim)
    return float(np.mean(np.maximum(iterate, limit)) / num_samples)
