"""A prototype of the "ideal" transferability measure of Suresh, Abrol and Thakur (Sec. 5.2).

The paper ends by asking for a score that (1) does not care what the downstream task
is, (2) knows how large the model is, (3) uses training *and* validation data, and
(4) costs far less than fine-tuning every candidate. :func:`ideal_score` is one concrete
answer, built from pieces whose every step is closed-form:

1. **One model for every task.** The target of the downstream task is a matrix
   ``Y`` of shape (N, K): the one-hot code of the class for classification, the
   standardised values for regression. Each column is modelled by Bayesian linear
   regression on the embeddings, ``y = b + F w + noise``, ``w ~ N(0, 1/alpha I)``,
   ``noise ~ N(0, 1/beta I)`` (the model behind LogME, You et al. 2021), with a free
   intercept ``b`` that is integrated out under a flat prior.
2. **Fit on training data.** ``alpha`` and ``beta`` maximise the evidence of the
   training targets (empirical Bayes). The evidence is maximised exactly along a 1-D
   profile: for a fixed ratio ``r = alpha / beta`` the best ``beta`` is ``(N - 1) / Q(r)``
   in closed form (N - 1: the intercept uses one degree of freedom), so only ``r`` is
   searched (grid, then bounded refinement).
3. **Judge on validation data.** The validation targets are scored under the posterior
   predictive distribution ``N(b + x^T m, (1 + 1/N)/beta + x^T A^{-1} x)`` (``x``
   centred on the training mean): a held-out estimate of how well a linear head on
   these embeddings generalises. By default (``mode="prequential"``) the score adds the
   training evidence, so that it is the code length of all targets, the training ones
   first, then the validation ones given them; ``mode="validation"`` keeps the held-out
   term alone, which is noisy when the validation split is small.
4. **Pay for size.** ``lambda`` times the code length of the model's ``P`` parameters,
   by default the minimum-description-length / Bayesian-information-criterion charge
   ``(P / 2) log n`` nats (``size_code="bic"``; Schwarz 1978, Rissanen 1978): each
   real parameter stated to the precision ``1 / sqrt(n)`` that ``n`` examples resolve
   costs ``(1/2) log n`` nats, and ``-(P / 2) log n`` is the leading term of the log
   evidence of a ``P``-parameter model beyond its maximum likelihood. Here ``n`` is the
   number of examples whose targets are coded (``N - 1 + M`` prequential, ``M``
   validation) and the charge is divided, like the likelihood, by the number of target
   values ``n K`` (the ``P`` parameters are shared by the ``K`` target columns). So
   ``lambda = 1`` *is* the BIC trade-off, in the same unit as the likelihood term:
   nats per target value. It charges every parameter as if it were fitted to the target
   data (fine-tuning) and assumes ``n`` well above ``P``; with millions of parameters and
   a few thousand examples it outweighs any likelihood difference, and the pick moves
   to the smallest model. That is BIC taken literally, and it overstates the cost: a
   frozen backbone's parameters are not fitted to the target at all, and where ``P``
   far exceeds ``n`` the effective number of parameters is far below ``P``. Read
   ``lambda`` as the fraction of BIC's charge one is willing to pay; the ``lambda`` at
   which the pick leaves a model (:func:`ideal_switch_points`; the pick on a grid:
   :func:`ideal_pick_path`) is the price at which its extra likelihood stops paying
   for its extra parameters.
   ``size_code="naming"`` keeps the earlier, much milder charge ``lambda log P`` nats
   for the whole data set (a prior ``p(model) ∝ P^-lambda`` that only names the model):
   per target value it is about ``log P / (n K)``, some 1e-3 nats, and changes no pick
   until ``lambda`` is in the thousands.

Cost: one eigendecomposition of the smaller Gram matrix, O(N D min(N, D) + min(N, D)^3),
shared by all K target columns, then O(M D rank) for M validation samples.

The same machinery gives LogME's regression form (:func:`logme_regression_score`), the
maximum evidence for real-valued targets, which LogME's authors describe and the
classification-only scores (NC among them) have no counterpart for.

For :data:`nclib.scores.REGISTRY`, whose functions see only the training embeddings and
labels, :func:`ideal_holdout_score` splits the training data itself
(:func:`holdout_split`) into a fitting part and a held-out part and applies no size
penalty (a parameter count is not an input of registry scores).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from nclib._sampling import holdout_split
from nclib._validation import as_features, check_class_sizes, checked_features, condition, encode_labels
from nclib.scores._linalg import psd_eigh

TASKS = ("classification", "regression")
MODES = ("prequential", "validation")
SIZE_CODES = ("bic", "naming")
#: The default lambda grid of :func:`ideal_pick_path`: 0, then 1e-6 .. 1e2 in half-decades.
DEFAULT_WEIGHTS = (0.0, *(10.0 ** np.arange(-6.0, 2.25, 0.5)))
_LOG_2PI = np.log(2.0 * np.pi)
_GRID_STEP = 0.5  # in log r
_LOG_RANGE = (-37.0, 18.5)  # log r relative to the largest eigenvalue (about 1e-16 .. 1e8)
_CHUNK_ROWS = 4096  # rows centred at a time: O(chunk x D) extra memory

#: Of the registry form: the intercept absorbs shifts, alpha absorbs a uniform scale, the
#: isotropic prior absorbs rotations.
INVARIANCES = frozenset({"shift", "isotropic_scale", "rotation", "column_permutation"})


@dataclass(frozen=True)
class BayesianLinearFit:
    """Bayesian linear regression of K target columns on features, evidence-maximised.

    Attributes
    ----------
    directions : ndarray of shape (D, r)
        Right singular vectors of the training features (r = numerical rank).
    eigenvalues : ndarray of shape (r,)
        Non-zero eigenvalues of ``F^T F``.
    weights : ndarray of shape (D, K)
        Posterior mean ``m`` of the weights of each column.
    ratio : ndarray of shape (K,)
        ``alpha / beta`` per column.
    alpha, beta : ndarray of shape (K,)
        Prior precision of the weights and noise precision per column.
    log_evidence : ndarray of shape (K,)
        Maximum log evidence ``log p(y_k | F, alpha, beta)`` per column (total, not per sample).
    num_samples : int
        N, the number of training samples.
    feature_mean : ndarray of shape (D,)
        Subtracted from every input (zeros without an intercept).
    target_mean : ndarray of shape (K,)
        The intercept added to every prediction (zeros without an intercept).
    intercept : bool
        Whether the fit has a free intercept (flat prior, integrated out).
    """

    directions: np.ndarray
    eigenvalues: np.ndarray
    weights: np.ndarray
    ratio: np.ndarray
    alpha: np.ndarray
    beta: np.ndarray
    log_evidence: np.ndarray
    num_samples: int
    feature_mean: np.ndarray
    target_mean: np.ndarray
    intercept: bool = False

    def predict(self, features) -> tuple[np.ndarray, np.ndarray]:
        """Posterior predictive mean and variance of every target column.

        Parameters
        ----------
        features : array-like of shape (M, D)

        Returns
        -------
        mean, variance : ndarray of shape (M, K)
            ``x^T m`` and ``1/beta + x^T A^{-1} x`` with ``A = alpha I + beta F^T F``;
            directions outside the span of the training features have prior variance
            ``1/alpha``. With an intercept, ``x`` is centred on the training mean, the
            target mean is added to the mean and ``1 / (beta N)`` (the intercept's
            posterior variance) to the variance.
        """
        features = as_features(features)
        if features.shape[1] != self.directions.shape[0]:
            raise ValueError(f"features have {features.shape[1]} dimensions, the fit has {self.directions.shape[0]}")
        mean = np.empty((len(features), self.weights.shape[1]))
        variance = np.empty_like(mean)
        shrink = 1.0 / (self.ratio[None, :] + self.eigenvalues[:, None])  # (r, K)
        intercept = 1.0 / self.num_samples if self.intercept else 0.0
        for start in range(0, len(features), _CHUNK_ROWS):
            rows = slice(start, start + _CHUNK_ROWS)
            block = features[rows] - self.feature_mean
            coordinates = block @ self.directions  # (m, r)
            spread = 1.0 + intercept + (coordinates**2) @ shrink
            if self.directions.shape[1] < self.directions.shape[0]:  # directions the training data lack
                residual = block - coordinates @ self.directions.T
                spread = spread + np.einsum("ij,ij->i", residual, residual)[:, None] / self.ratio[None, :]
            mean[rows] = block @ self.weights + self.target_mean
            variance[rows] = spread / self.beta[None, :]
        return mean, variance

    def log_predictive(self, features, targets) -> np.ndarray:
        """Log posterior predictive density of each target value, shape (M, K).

        Parameters
        ----------
        features : array-like of shape (M, D)
        targets : array-like of shape (M, K) (or (M,) when K = 1)
        """
        mean, variance = self.predict(features)
        targets = _as_target_matrix(targets, "targets")
        if targets.shape != mean.shape:
            raise ValueError(f"targets have shape {targets.shape}, expected {mean.shape}")
        return -0.5 * (_LOG_2PI + np.log(variance) + (targets - mean) ** 2 / variance)


def _as_target_matrix(targets, name: str) -> np.ndarray:
    try:
        array = np.asarray(targets, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be numeric: {error}") from None
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N,) or (N, K) with N, K > 0, got {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contain NaN or inf")
    return array


def _centred_products(features: np.ndarray, targets: np.ndarray, mean: np.ndarray):
    """``F_c^T F_c`` (D, D) and ``F_c^T Y`` (D, K) for ``F_c = F - mean``, in row chunks.

    Centring chunk by chunk is exact (no ``F^T F - N mu mu^T`` cancellation) and never
    holds a centred copy of the whole matrix.
    """
    dim = features.shape[1]
    gram, cross = np.zeros((dim, dim)), np.zeros((dim, targets.shape[1]))
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        block = features[start:start + _CHUNK_ROWS] - mean
        gram += block.T @ block
        cross += block.T @ targets[start:start + _CHUNK_ROWS]
    return gram, cross


def _spectrum(features: np.ndarray, targets: np.ndarray, mean: np.ndarray):
    """Eigenvalues (r,) of F_c^T F_c above a rank threshold, right singular vectors (D, r)
    and the projections (r, K) of the targets onto the left singular vectors."""
    num_samples, dim = features.shape
    if num_samples >= dim:
        gram, cross = _centred_products(features, targets, mean)
    else:
        centred = features - mean
        gram = centred @ centred.T
    eigenvalues, vectors = psd_eigh(gram, max(num_samples, dim) * np.finfo(float).eps)
    if num_samples >= dim:
        return eigenvalues, vectors, (vectors.T @ cross) / np.sqrt(eigenvalues)[:, None]
    return eigenvalues, centred.T @ vectors / np.sqrt(eigenvalues), vectors.T @ targets


def _profile_evidence(log_ratio, eigenvalues, projections, outside, num_samples):
    """Log evidence maximised over beta for ratios r = exp(log_ratio); shape (G, K).

    With ``alpha = r beta`` the evidence is
    ``(rank/2) log r - 1/2 sum_j log(r + lambda_j) + (N/2) log beta - beta Q(r) / 2 - (N/2) log 2 pi``
    with ``Q(r) = sum_j p_j^2 r / (r + lambda_j) + outside``, maximal at ``beta = N / Q(r)``.
    """
    ratio = np.exp(np.atleast_1d(log_ratio))[:, None, None]  # (G, 1, 1)
    lam = eigenvalues[None, :, None]  # (1, r, 1)
    quadratic = np.sum(projections[None] ** 2 * ratio / (ratio + lam), axis=1) + outside  # (G, K)
    quadratic = np.maximum(quadratic, np.finfo(float).tiny)  # r -> 0 with exact interpolation
    log_det = np.sum(np.log(ratio + lam), axis=1)  # (G, 1)
    rank = len(eigenvalues)
    return (0.5 * rank * np.log(ratio[:, :, 0]) - 0.5 * log_det
            + 0.5 * num_samples * (np.log(num_samples / quadratic) - 1.0 - _LOG_2PI))


def fit_bayesian_linear(features, targets, intercept: bool = False) -> BayesianLinearFit:
    """Evidence-maximising Bayesian linear regression of each target column on the features.

    For every column ``y_k`` of the targets, ``y_k = F w + noise`` with
    ``w ~ N(0, alpha_k^{-1} I_D)`` and ``noise ~ N(0, beta_k^{-1} I_N)``; ``(alpha_k, beta_k)``
    maximise the evidence ``p(y_k | F, alpha_k, beta_k)`` (MacKay's empirical Bayes, the
    quantity LogME reports). The maximum is found exactly along the profile in
    ``r = alpha / beta`` (``beta = N / Q(r)`` in closed form): a grid over
    ``log r`` spanning 1e-16 to 1e8 times the largest eigenvalue, then a bounded scalar
    refinement. A supremum at the edge of that range (e.g. ``N < D`` and exact
    interpolation) is approached to within the range's resolution.

    With ``intercept=True`` the model gets a free intercept with a flat prior, which is
    integrated out: features and targets are centred on their means and the evidence
    is that of the N - 1 dimensions orthogonal to the constant vector (so N - 1 takes
    the place of N in every formula). Without it (LogME's convention) nothing is centred.

    Parameters
    ----------
    features : array-like of shape (N, D)
    targets : array-like of shape (N,) or (N, K)
        Real values.
    intercept : bool

    Returns
    -------
    BayesianLinearFit

    Raises
    ------
    ValueError
        Bad shapes or values, an all-zero feature matrix, a target column that is all
        zero, or an unbounded evidence (a column lying exactly in the span of a
        rank-deficient feature matrix).

    References
    ----------
    D. J. C. MacKay. Bayesian interpolation. Neural Computation 4(3), 1992.
    K. You, Y. Liu, J. Wang, M. Long. LogME. ICML 2021.

    Examples
    --------
    One sample, one feature, target 1: the evidence is the density of N(0, s) at 1,
    largest for s = 1.

    >>> fit = fit_bayesian_linear([[1.0]], [1.0])
    >>> bool(np.isclose(fit.log_evidence[0], -0.5 * np.log(2 * np.pi) - 0.5))
    True
    """
    features = as_features(features)
    targets = _as_target_matrix(targets, "targets")
    num_samples = features.shape[0]
    if targets.shape[0] != num_samples:
        raise ValueError(f"targets have {targets.shape[0]} rows but there are {num_samples} samples")
    feature_mean, target_mean = np.zeros(features.shape[1]), np.zeros(targets.shape[1])
    if intercept:
        if num_samples < 2:
            raise ValueError("a fit with an intercept needs at least two samples")
        feature_mean, target_mean = features.mean(axis=0), targets.mean(axis=0)
        targets = targets - target_mean
    effective = num_samples - 1 if intercept else num_samples
    norms = np.sum(targets**2, axis=0)
    if (norms == 0).any():
        raise ValueError(f"target column {int(np.argmax(norms == 0))} is all zero (constant after centring?)")
    eigenvalues, directions, projections = _spectrum(features, targets, feature_mean)  # (r,), (D, r), (r, K)
    if len(eigenvalues) == 0:
        raise ValueError("features are all zero" + (" after centring (constant features)" if intercept else ""))
    outside = np.maximum(norms - np.sum(projections**2, axis=0), 0.0)
    rank = len(eigenvalues)
    if rank < effective and (outside <= 1e-10 * norms).any():
        column = int(np.argmax(outside <= 1e-10 * norms))
        raise ValueError(f"the evidence is unbounded: target column {column} lies in the span of features "
                         f"of rank {rank} < {effective} (duplicated samples?)")
    log_ratio = _best_log_ratio(eigenvalues, projections, outside, effective)
    ratio = np.exp(log_ratio)
    evidence = np.array([_profile_evidence(log_ratio[k], eigenvalues, projections[:, [k]], outside[k], effective)[0, 0]
                         for k in range(targets.shape[1])])
    quadratic = np.sum(projections**2 * ratio / (ratio + eigenvalues[:, None]), axis=0) + outside
    beta = effective / quadratic
    coefficients = np.sqrt(eigenvalues)[:, None] * projections / (ratio[None, :] + eigenvalues[:, None])
    return BayesianLinearFit(directions=directions, eigenvalues=eigenvalues, weights=directions @ coefficients,
                             ratio=ratio, alpha=ratio * beta, beta=beta, log_evidence=evidence,
                             num_samples=num_samples, feature_mean=feature_mean, target_mean=target_mean,
                             intercept=intercept)


def _best_log_ratio(eigenvalues, projections, outside, num_samples) -> np.ndarray:
    """Per column, the log r maximising the profiled evidence (grid, then bounded search)."""
    top = np.log(eigenvalues[-1])
    grid = top + np.arange(_LOG_RANGE[0], _LOG_RANGE[1] + _GRID_STEP / 2, _GRID_STEP)
    values = _profile_evidence(grid, eigenvalues, projections, outside, num_samples)  # (G, K)
    best = np.empty(projections.shape[1])
    for k in range(projections.shape[1]):
        index = int(np.argmax(values[:, k]))
        low, high = grid[max(index - 1, 0)], grid[min(index + 1, len(grid) - 1)]

        def negative(t, k=k):
            return -_profile_evidence(t, eigenvalues, projections[:, [k]], outside[k], num_samples)[0, 0]

        result = minimize_scalar(negative, bounds=(low, high), method="bounded", options={"xatol": 1e-9})
        best[k] = result.x if -result.fun >= values[index, k] else grid[index]
    return best


def logme_regression_score(features: ArrayLike, targets: ArrayLike) -> float:
    """LogME for real-valued targets: mean over target columns of the maximum log evidence per sample.

    The regression form of LogME (You et al. 2021): the same Bayesian linear model as
    :func:`nclib.scores.logme_score`, applied to the target values themselves instead of
    one-hot class indicators, with no transformation of features or targets. Applied to
    the one-hot columns of class labels it equals ``logme_score``. Rescaling a target by
    ``s`` subtracts ``log s`` from the score of every model alike, so rankings do not
    depend on the target's unit. **Larger is better.**

    Parameters
    ----------
    features : array-like of shape (N, D)
    targets : array-like of shape (N,) or (N, K)
        Real-valued targets (e.g. a continuous property of each input).

    Returns
    -------
    float

    Examples
    --------
    A target that the features predict scores higher than pure noise:

    >>> rng = np.random.default_rng(0)
    >>> features = rng.normal(size=(200, 5))
    >>> explained = features @ np.arange(5.0) + 0.1 * rng.normal(size=200)
    >>> bool(logme_regression_score(features, explained) > logme_regression_score(features, rng.normal(size=200) * 3))
    True
    """
    fit = fit_bayesian_linear(features, targets)
    return float(np.mean(fit.log_evidence) / fit.num_samples)


def _prepare_targets(train_targets, val_targets, task: str, num_train: int, num_val: int):
    """Target matrices for a classification (one-hot) or regression (scaled) task."""
    if task == "classification":
        train_codes, classes = encode_labels(train_targets, num_train)
        check_class_sizes(train_codes, classes, 1, "ideal_score")
        lookup = {value: code for code, value in enumerate(classes.tolist())}
        val_values = np.asarray(val_targets.to_numpy() if hasattr(val_targets, "to_numpy") else val_targets)
        if val_values.ndim != 1 or len(val_values) != num_val:
            raise ValueError(f"val_targets must be 1-D with {num_val} entries, got shape {val_values.shape}")
        unknown = [v for v in val_values.tolist() if v not in lookup]
        if unknown:
            absent = sorted(set(map(str, unknown)))[:5]
            raise ValueError(f"val_targets hold classes absent from the training targets: {absent}")
        train = np.eye(len(classes))[train_codes]
        val = np.eye(len(classes))[[lookup[v] for v in val_values.tolist()]]
    elif task == "regression":
        train = _as_target_matrix(train_targets, "train_targets")
        val = _as_target_matrix(val_targets, "val_targets")
        if train.shape[0] != num_train or val.shape[0] != num_val or train.shape[1] != val.shape[1]:
            raise ValueError(f"targets of shapes {train.shape} and {val.shape} do not match "
                             f"{num_train} training and {num_val} validation samples")
        scale = train.std(axis=0)
        if (scale == 0).any():
            raise ValueError(f"training target column {int(np.argmax(scale == 0))} is constant")
        train, val = train / scale, val / scale
    else:
        raise ValueError(f"task must be one of {TASKS}, got {task!r}")
    return train, val


def size_charge(num_parameters: int, num_examples: int, size_code: str = "bic") -> float:
    """Code length of a model's size at ``lambda = 1``, in nats for the whole data set.

    Parameters
    ----------
    num_parameters : int
        P, the model's parameter count (at least 1).
    num_examples : int
        n, the number of examples whose targets are coded (at least 1).
    size_code : {"bic", "naming"}
        ``"bic"``: ``(P / 2) log n``, the two-part code of P parameters at the precision n
        examples resolve (Rissanen 1978), the BIC penalty (Schwarz 1978). ``"naming"``:
        ``log P``, a prior ``p(model) ∝ 1 / P`` over candidate sizes.

    Returns
    -------
    float

    Examples
    --------
    >>> round(size_charge(1000, 100), 2), round(size_charge(1000, 100, "naming"), 2)
    (2302.59, 6.91)
    """
    if size_code not in SIZE_CODES:
        raise ValueError(f"size_code must be one of {SIZE_CODES}, got {size_code!r}")
    if not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1:
        raise ValueError(f"num_parameters must be a positive integer, got {num_parameters!r}")
    if not isinstance(num_examples, (int, np.integer)) or num_examples < 1:
        raise ValueError(f"num_examples must be a positive integer, got {num_examples!r}")
    if size_code == "naming":
        return float(np.log(num_parameters))
    return 0.5 * float(num_parameters) * float(np.log(num_examples))


def ideal_terms(train_features, train_targets, val_features, val_targets, *, task: str = "classification",
                mode: str = "prequential", num_parameters: int | None = None,
                complexity_weight: float = 1.0, size_code: str = "bic") -> dict:
    """The parts of :func:`ideal_score`: training evidence, validation fit, size charge.

    Parameters are those of :func:`ideal_score`.

    Returns
    -------
    dict
        ``value`` (the score), ``log_evidence`` (maximum log evidence of the training
        targets, nats, summed over columns), ``log_predictive`` (log-likelihood of the
        validation targets, nats, summed), ``likelihood`` (the coded total of the mode:
        ``log_predictive``, plus ``log_evidence`` when prequential), ``size_charge``
        (:func:`size_charge` at ``lambda = 1``, NaN without a count), ``penalty``
        (``complexity_weight * size_charge``, 0 without a count), ``num_examples`` (n:
        ``M`` or ``N - 1 + M``), ``num_targets`` (the divisor: ``n K``),
        ``num_parameters``, ``size_code``, ``alpha`` and ``beta`` (ndarray of shape (K,)).
        ``value == (likelihood - penalty) / num_targets``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> features = rng.normal(size=(40, 3)) + 2 * labels[:, None]
    >>> args = (features[::2], labels[::2], features[1::2], labels[1::2])
    >>> held_out = ideal_terms(*args, mode="validation", num_parameters=100)
    >>> bool(np.isclose(held_out["value"], (held_out["log_predictive"] - 50 * np.log(20)) / (20 * 2)))
    True
    >>> both = ideal_terms(*args, num_parameters=100)
    >>> total = both["log_evidence"] + both["log_predictive"] - 50 * np.log(39)
    >>> bool(np.isclose(both["value"], total / ((19 + 20) * 2)))
    True
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    if size_code not in SIZE_CODES:
        raise ValueError(f"size_code must be one of {SIZE_CODES}, got {size_code!r}")
    train_features = as_features(train_features, "train_features")
    val_features = as_features(val_features, "val_features")
    if train_features.shape[1] != val_features.shape[1]:
        raise ValueError(f"train_features have {train_features.shape[1]} dimensions, "
                         f"val_features {val_features.shape[1]}")
    if num_parameters is not None and (not isinstance(num_parameters, (int, np.integer)) or num_parameters < 1):
        raise ValueError(f"num_parameters must be a positive integer or None, got {num_parameters!r}")
    if not (np.isfinite(complexity_weight) and complexity_weight >= 0):
        raise ValueError(f"complexity_weight must be finite and non-negative, got {complexity_weight!r}")
    train, val = _prepare_targets(train_targets, val_targets, task, len(train_features), len(val_features))
    fit = fit_bayesian_linear(train_features, train, intercept=True)
    log_evidence = float(np.sum(fit.log_evidence))
    log_predictive = float(np.sum(fit.log_predictive(val_features, val)))
    if mode == "validation":
        likelihood, num_examples = log_predictive, len(val)
    else:
        likelihood, num_examples = log_evidence + log_predictive, len(train) - 1 + len(val)
    num_targets = num_examples * val.shape[1]
    charge = size_charge(num_parameters, num_examples, size_code) if num_parameters is not None else float("nan")
    penalty = complexity_weight * charge if num_parameters is not None else 0.0
    return {"value": (likelihood - penalty) / num_targets, "log_evidence": log_evidence,
            "log_predictive": log_predictive, "likelihood": likelihood, "size_charge": charge,
            "penalty": penalty, "num_examples": num_examples, "num_targets": num_targets,
            "num_parameters": num_parameters, "size_code": size_code, "alpha": fit.alpha, "beta": fit.beta}


def ideal_score(train_features: ArrayLike, train_targets: ArrayLike, val_features: ArrayLike,
                val_targets: ArrayLike, *, task: str = "classification",
                mode: str = "prequential", num_parameters: int | None = None,
                complexity_weight: float = 1.0, size_code: str = "bic") -> float:
    """Prototype ideal transferability score: description length of the targets plus a size cost.

    A Bayesian linear model (with intercept) of the task's targets on the embeddings is
    fitted to the *training* data (evidence-maximised ``alpha``, ``beta``: see
    :func:`fit_bayesian_linear`) and used to predict the *validation* targets. The score
    is minus the description length of the targets per target value, in nats:

    * ``mode="prequential"`` (default): the training targets coded by the model's
      evidence, then the validation targets by its posterior predictive distribution
      (the chain rule: together the evidence of all targets, with the hyper-parameters
      set on the training part), over ``n = N - 1 + M`` examples:

      .. math:: S = \\frac{\\log p(Y^{tr} \\mid F^{tr}) + \\log p(Y^{val} \\mid F^{val}, F^{tr}, Y^{tr})
                - \\lambda \\tfrac{P}{2} \\log n}{n K};

    * ``mode="validation"``: the validation targets only, a purely held-out estimate,
      ``S = (log p(Y^val | F^val, F^tr, Y^tr) - lambda (P/2) log M) / (M K)``.

    ``(P / 2) log n`` (``size_code="bic"``, the default) is the description length of
    ``P`` parameters stated to the precision ``n`` examples resolve -- the BIC penalty --
    so ``lambda = 1`` is the BIC trade-off and ``lambda = 0`` the pure likelihood;
    ``size_code="naming"`` charges ``log P`` instead (see the module notes for both
    scales and why BIC's dominates when P is far above n). With few validation samples
    the validation mode is noisy; the prequential mode adds the training evidence,
    which every training sample informs.

    The score is task-agnostic (the same formula for class labels, coded one-hot, and for
    real-valued targets, standardised with the training deviation), uses training and
    validation data, knows the model's size and costs one eigendecomposition.
    **Larger is better.**

    Parameters
    ----------
    train_features : array-like of shape (N, D)
        Embeddings of the target training samples.
    train_targets : array-like of shape (N,) or (N, K)
        Class labels (any hashable values) for ``task="classification"``; real values
        for ``task="regression"``.
    val_features : array-like of shape (M, D)
        Embeddings of the validation samples (same model).
    val_targets : array-like of shape (M,) or (M, K)
        Validation labels (classes seen in training) or values.
    task : {"classification", "regression"}
    mode : {"prequential", "validation"}
    num_parameters : int, optional
        Parameter count P of the backbone; ``None`` drops the size term.
    complexity_weight : float
        lambda >= 0, the share of the size code that is charged (default 1: BIC).
    size_code : {"bic", "naming"}
        The size code (:func:`size_charge`).

    Returns
    -------
    float
        Nats per target value.

    Raises
    ------
    ValueError
        Bad shapes or values, unseen validation classes, a constant regression target,
        a bad mode, size code, parameter count or weight.

    References
    ----------
    Suresh, Abrol and Thakur, Pitfalls in Measuring Neural Transferability, Sec. 5.2 (the
    four properties); MacKay (1992) and You et al. (2021) (the Bayesian linear model);
    Rissanen (1978) (description length); Schwarz (1978) (the BIC penalty).

    Examples
    --------
    The same embeddings, scored for two models of different size:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 30)
    >>> features = rng.normal(size=(90, 4)) + 3 * np.eye(3, 4)[labels]
    >>> train, val = np.arange(90) % 3 != 0, np.arange(90) % 3 == 0
    >>> small = ideal_score(features[train], labels[train], features[val], labels[val], num_parameters=10)
    >>> large = ideal_score(features[train], labels[train], features[val], labels[val], num_parameters=100)
    >>> round(small - large, 4)  # 90 parameters at (1/2) log 89 nats each, over 89 x 3 targets
    0.7565
    """
    return ideal_terms(train_features, train_targets, val_features, val_targets, task=task, mode=mode,
                       num_parameters=num_parameters, complexity_weight=complexity_weight,
                       size_code=size_code)["value"]


# ----------------------------------------------------------------------------- the pick across lambda
def _path_inputs(terms: Mapping[str, Mapping]):
    if not isinstance(terms, Mapping) or not terms:
        raise ValueError("terms must be a non-empty dict {model: ideal_terms(...)}")
    names = list(terms)
    likelihood = np.array([float(terms[m]["likelihood"]) for m in names])
    charge = np.array([float(terms[m]["size_charge"]) for m in names])
    if not np.isfinite(charge).all():
        missing = [m for m, c in zip(names, charge) if not np.isfinite(c)]
        raise ValueError(f"models {missing} have no size charge: pass num_parameters to ideal_terms")
    if not np.isfinite(likelihood).all():
        raise ValueError("likelihoods must be finite")
    targets = {int(terms[m]["num_targets"]) for m in names}
    codes = {terms[m]["size_code"] for m in names}
    if len(targets) != 1 or len(codes) != 1:
        raise ValueError(f"the models were scored on different data or size codes: num_targets {sorted(targets)}, "
                         f"size codes {sorted(codes)}")
    parameters = np.array([int(terms[m]["num_parameters"]) for m in names])
    return names, likelihood, charge, parameters, targets.pop()


def _best(likelihood, charge, weight):
    value = likelihood - weight * charge
    tied = np.flatnonzero(value >= value.max() - 1e-9 * max(1.0, abs(value.max())))
    return int(tied[np.argmin(charge[tied])])  # a tie goes to the smaller model


def ideal_switch_points(terms: Mapping[str, Mapping]) -> pd.DataFrame:
    """The exact intervals of lambda over which each model is the prototype's pick.

    The score of model i is ``(L_i - lambda c_i) / T`` (``L`` the coded likelihood, ``c``
    the size charge at ``lambda = 1``, ``T`` the number of target values), a line in
    lambda; the pick is the upper envelope of the lines. Starting from the best
    likelihood at ``lambda = 0`` it moves, at each crossing, to a model with a smaller
    charge, never back (the same construction as :func:`nclib.costs.complexity_path`,
    for any size code).

    Parameters
    ----------
    terms : dict of str to dict
        Per model, :func:`ideal_terms` with ``num_parameters`` (same data, mode and
        ``size_code`` for all).

    Returns
    -------
    pandas.DataFrame
        One row per interval: ``model, num_parameters, from_weight, to_weight`` (the
        last ``to_weight`` is infinite). Ties go to the smaller model.

    Examples
    --------
    >>> terms = {m: {"likelihood": L, "size_charge": c, "num_targets": 100, "size_code": "bic",
    ...              "num_parameters": p}
    ...          for m, L, c, p in [("big", 50.0, 40.0, 8), ("mid", 40.0, 20.0, 4), ("small", 0.0, 10.0, 2)]}
    >>> ideal_switch_points(terms)[["model", "from_weight", "to_weight"]].values.tolist()
    [['big', 0.0, 0.5], ['mid', 0.5, 4.0], ['small', 4.0, inf]]
    """
    names, likelihood, charge, parameters, _ = _path_inputs(terms)
    current, weight, rows = _best(likelihood, charge, 0.0), 0.0, []
    while True:
        smaller = np.flatnonzero(charge < charge[current])
        if len(smaller) == 0:
            rows.append((names[current], int(parameters[current]), weight, np.inf))
            break
        crossing = np.maximum((likelihood[current] - likelihood[smaller]) / (charge[current] - charge[smaller]),
                              weight)
        first = float(crossing.min())
        candidates = smaller[crossing <= first]
        following = int(candidates[np.argmin(charge[candidates])])
        rows.append((names[current], int(parameters[current]), weight, first))
        current, weight = following, first
    return pd.DataFrame(rows, columns=["model", "num_parameters", "from_weight", "to_weight"])


def ideal_pick_path(terms: Mapping[str, Mapping], weights=DEFAULT_WEIGHTS) -> pd.DataFrame:
    """The prototype's pick at every lambda of a grid, with the parts of its score.

    Parameters
    ----------
    terms : dict of str to dict
        Per model, :func:`ideal_terms` with ``num_parameters`` (same data, mode and
        ``size_code`` for all); any ``complexity_weight`` (only ``size_charge`` is used).
    weights : sequence of float
        lambda values >= 0 (default :data:`DEFAULT_WEIGHTS`: 0 and 1e-6 .. 1e2).

    Returns
    -------
    pandas.DataFrame
        One row per weight: ``weight, model`` (the pick; ties to the smaller model),
        ``num_parameters, value`` (its score), ``likelihood_term`` and ``size_term`` (its
        two parts, nats per target value: ``value = likelihood_term - size_term``).

    Examples
    --------
    >>> terms = {m: {"likelihood": L, "size_charge": c, "num_targets": 100, "size_code": "bic",
    ...              "num_parameters": p}
    ...          for m, L, c, p in [("big", 50.0, 40.0, 8), ("mid", 40.0, 20.0, 4), ("small", 0.0, 10.0, 2)]}
    >>> ideal_pick_path(terms, [0.0, 1.0, 10.0])[["weight", "model", "value"]].values.tolist()
    [[0.0, 'big', 0.5], [1.0, 'mid', 0.2], [10.0, 'small', -1.0]]
    """
    names, likelihood, charge, parameters, targets = _path_inputs(terms)
    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 1 or len(weights) == 0 or not np.isfinite(weights).all() or (weights < 0).any():
        raise ValueError("weights must be a non-empty 1-D sequence of finite values >= 0")
    rows = []
    for weight in weights:
        i = _best(likelihood, charge, weight)
        rows.append((float(weight), names[i], int(parameters[i]), (likelihood[i] - weight * charge[i]) / targets,
                     likelihood[i] / targets, weight * charge[i] / targets))
    return pd.DataFrame(rows, columns=["weight", "model", "num_parameters", "value", "likelihood_term",
                                       "size_term"])


def ideal_holdout_score(features: ArrayLike, labels: ArrayLike, val_fraction: float = 0.25, random_state: int = 0,
                        mode: str = "prequential") -> float:
    """Registry form of :func:`ideal_score`: held-out part carved from the training data, no size term.

    Registry scores see only the target training embeddings and labels, so this form
    splits them per class (:func:`holdout_split` with ``random_state``) into a fitting
    part and a held-out part of about ``val_fraction``, and returns :func:`ideal_score`
    (classification, ``mode``) without a parameter penalty. Use :func:`ideal_score` directly to
    score on a real validation split and to charge for model size. **Larger is better.**

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, at least one with two samples.
    val_fraction : float
        Share of each class held out, in (0, 0.5].
    random_state : int
    mode : {"prequential", "validation"}
        As in :func:`ideal_score`.

    Returns
    -------
    float

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 40)
    >>> good = rng.normal(size=(80, 3)) + 3 * labels[:, None]
    >>> bool(ideal_holdout_score(good, labels) > ideal_holdout_score(rng.normal(size=(80, 3)), labels))
    True
    """
    features, low, high = checked_features(features)
    codes, classes = encode_labels(labels, features.shape[0])
    features = condition(features, low, high, INVARIANCES, "ideal_holdout_score")
    fit_part, held_out = holdout_split(codes, val_fraction, random_state)
    if len(held_out) == 0:
        raise ValueError("ideal_holdout_score: every class has a single sample, nothing can be held out")
    return ideal_score(features[fit_part], codes[fit_part], features[held_out], codes[held_out], mode=mode)


__all__ = ["DEFAULT_WEIGHTS", "SIZE_CODES", "BayesianLinearFit", "fit_bayesian_linear", "holdout_split",
           "ideal_holdout_score", "ideal_pick_path", "ideal_score", "ideal_switch_points", "ideal_terms",
           "logme_regression_score", "size_charge"]
