"""PACTran-Gaussian: a PAC-Bayesian bound of a regularised softmax head (Ding et al., ECCV 2022)."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
import scipy.optimize
import scipy.special

from nclib._sampling import stratified_subsample
from nclib._validation import features_and_labels
from nclib.scores.logme import ConvergenceWarning

_CHUNK_ROWS = 8192

#: Centred features and an isotropic Gaussian prior: shifts and rotations (the prior variance
#: fixes a scale).
INVARIANCES = frozenset({"shift", "rotation", "column_permutation"})


def _objective(theta, features, codes, prior_variance, num_classes):
    """Mean cross-entropy plus ||W||^2 / (2 prior_variance), and its gradient."""
    num_samples, dim = features.shape
    weights = theta[:dim * num_classes].reshape(dim, num_classes)
    logits = features @ weights + theta[dim * num_classes:]
    log_probs = logits - scipy.special.logsumexp(logits, axis=1, keepdims=True)
    rows = np.arange(num_samples)
    loss = -np.mean(log_probs[rows, codes]) + 0.5 * np.sum(weights**2) / prior_variance
    residual = np.exp(log_probs)
    residual[rows, codes] -= 1.0
    residual /= num_samples
    grad_weights = features.T @ residual + weights / prior_variance
    return loss, np.concatenate([grad_weights.ravel(), residual.sum(axis=0)])


def _hessian_trace(theta, features, prior_variance, num_classes):
    """Sum of the diagonal curvature terms used by the reference code.

    Per weight :math:`\\sum_i x_{id}^2 p_{ic}(1-p_{ic}) + 1/\\sigma_0^2`, per bias
    :math:`\\sum_i p_{ic}(1-p_{ic})` (sums over samples, as in the authors' code).
    """
    num_samples, dim = features.shape
    weights = theta[:dim * num_classes].reshape(dim, num_classes)
    total = dim * num_classes / prior_variance
    for start in range(0, num_samples, _CHUNK_ROWS):
        block = features[start:start + _CHUNK_ROWS]
        probs = scipy.special.softmax(block @ weights + theta[dim * num_classes:], axis=1)
        curvature = probs * (1.0 - probs)  # (b, C)
        total += float(np.sum((block**2).T @ curvature)) + float(np.sum(curvature))
    return total


def pactran_score(features: ArrayLike, labels: ArrayLike, lda_factor: float = 1.0, max_iter: int = 500, tol: float = 1e-6,
                  max_samples: int | None = 10_000, random_state=0) -> float:
    """PACTran-Gaussian: a PAC-Bayes bound on the risk of a linear softmax head.

    The features are centred; a softmax head :math:`(W, b)` with a Gaussian prior
    :math:`W \\sim N(0, \\sigma_0^2 I)`, :math:`\\sigma_0^2 = \\lambda N` (``lda_factor``
    :math:`= \\lambda`) is fitted by L-BFGS to its MAP:

    .. math:: \\hat L(\\theta^*) = \\min_{W,b}\\; \\frac1N\\sum_i -\\log
              \\mathrm{softmax}(W^T x_i + b)_{y_i} + \\frac{\\|W\\|^2}{2\\sigma_0^2}.

    The flatness of the optimum enters through the diagonal curvature
    :math:`h = \\sum_k H_{kk}` (see the private ``_hessian_trace``), and with K = D C
    weights and the posterior-variance scale :math:`s^2 = 100\\lambda / D` (the
    authors' primary setting),

    .. math:: \\mathrm{PACTran} = \\hat L(\\theta^*) + \\frac{K s^2}{2\\sigma_0^2}
              \\log\\Big(\\frac{h\\,\\sigma_0^2}{K} + 10^{-10}\\Big).

    **Lower is better** (it bounds the head's risk). Every constant follows the
    authors' released code; the initial point is zero (deterministic) instead of small
    random weights, and L-BFGS runs to convergence (``tol``) instead of 100 steps.
    Each L-BFGS step costs O(N D C); with ``max_samples`` the fit uses a seeded,
    class-stratified subsample (the authors' code caps at 8,000 samples).

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    lda_factor : float
        :math:`\\lambda`: the prior variance of the weights is :math:`\\lambda N`.
    max_iter : int
        L-BFGS iteration cap; reaching it issues a ``ConvergenceWarning``.
    tol : float
        L-BFGS tolerance (scipy's ``tol``).
    max_samples : int or None
    random_state : int
        Seed of the subsample.

    Returns
    -------
    float

    References
    ----------
    N. Ding, X. Chen, T. Levinboim, S. Changpinyo, R. Soricut. PACTran: PAC-Bayesian
    Metrics for Estimating the Transferability of Pretrained Models to Classification
    Tasks. ECCV 2022.

    Examples
    --------
    Features that carry no information: the head learns only the class prior, so the
    loss is the label entropy, and h = K / sigma0^2 + N sum_c p_c (1 - p_c).

    >>> labels = ["a", "a", "a", "b"]
    >>> entropy = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    >>> expected = entropy + 0.5 * (4 / 4) * (100 / 2) * np.log(2.5)
    >>> bool(np.isclose(pactran_score(np.zeros((4, 2)), labels), expected, atol=1e-6))
    True
    """
    if not lda_factor > 0:
        raise ValueError(f"pactran_score: lda_factor must be positive, got {lda_factor}")
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"pactran_score: max_iter must be a positive integer, got {max_iter!r}")
    features, codes, classes, counts = features_and_labels(features, labels, "pactran_score", 1, INVARIANCES)
    rows = stratified_subsample(codes, max_samples, random_state)
    features, codes = features[rows], codes[rows]
    features = features - features.mean(axis=0)
    num_samples, dim = features.shape
    num_classes = len(classes)
    prior_variance = lda_factor * num_samples
    result = scipy.optimize.minimize(_objective, np.zeros((dim + 1) * num_classes), jac=True,
                                     args=(features, codes, prior_variance, num_classes),
                                     method="L-BFGS-B", tol=tol, options={"maxiter": max_iter})
    if result.status == 1:  # iteration limit
        warnings.warn(f"pactran_score: L-BFGS stopped at max_iter={max_iter} before reaching tol={tol:g}",
                      ConvergenceWarning, stacklevel=2)
    num_weights = dim * num_classes
    curvature = _hessian_trace(result.x, features, prior_variance, num_classes)
    posterior_scale = 100.0 * lda_factor / dim
    penalty = 0.5 * num_weights / prior_variance * posterior_scale * np.log(
        curvature * prior_variance / num_weights + 1e-10)
    return float(result.fun + penalty)
