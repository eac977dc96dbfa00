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
4. **Pay for size.** A prior over the candidate models, ``p(model) ∝ P^(-lambda)`` for a
   model with ``P`` parameters, adds ``-lambda log P`` nats to the total. In
   minimum-description-length terms (Rissanen 1978) the score is minus a two-part code
   length per target value: ``lambda log P`` to name the model plus the code of the
   targets. The charge is fixed while the likelihood grows with the data, so it breaks
   near-ties in favour of the smaller model and never overrides a clear difference;
   ``lambda`` sets the exchange rate (``lambda log 10`` nats of total log-likelihood per
   tenfold size). A BIC-style ``(P / 2) log N`` would be dominated by ``P`` (10^5
   parameters against a few hundred samples) and always choose the smallest model.

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

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import minimize_scalar

from nclib._sampling import holdout_split
from nclib._validation import as_features, check_class_sizes, checked_features, condition, encode_labels
from nclib.scores._linalg import psd_eigh

TASKS = ("classification", "regression")
MODES = ("prequential", "validation")
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


def ideal_terms(train_features, train_targets, val_features, val_targets, *, task: str = "classification",
                mode: str = "prequential", num_parameters: int | None = None,
                complexity_weight: float = 1.0) -> dict:
    """The parts of :func:`ideal_score`: training evidence, validation fit, size charge.

    Parameters are those of :func:`ideal_score`.

    Returns
    -------
    dict
        ``value`` (the score), ``log_evidence`` (maximum log evidence of the training
        targets, nats, summed over columns), ``log_predictive`` (log-likelihood of the
        validation targets, nats, summed), ``penalty`` (``complexity_weight *
        log(num_parameters)``, 0 without a count), ``num_targets`` (the divisor of the
        mode: ``M K`` or ``(N - 1 + M) K``), ``alpha`` and ``beta`` (ndarray of shape (K,)).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> features = rng.normal(size=(40, 3)) + 2 * labels[:, None]
    >>> args = (features[::2], labels[::2], features[1::2], labels[1::2])
    >>> held_out = ideal_terms(*args, mode="validation", num_parameters=100)
    >>> bool(np.isclose(held_out["value"], (held_out["log_predictive"] - np.log(100)) / (20 * 2)))
    True
    >>> both = ideal_terms(*args, num_parameters=100)
    >>> total = both["log_evidence"] + both["log_predictive"] - np.log(100)
    >>> bool(np.isclose(both["value"], total / ((19 + 20) * 2)))
    True
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
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
    penalty = complexity_weight * float(np.log(num_parameters)) if num_parameters is not None else 0.0
    if mode == "validation":
        total, num_targets = log_predictive, val.size
    else:
        total, num_targets = log_evidence + log_predictive, (len(train) - 1 + len(val)) * val.shape[1]
    return {"value": (total - penalty) / num_targets, "log_evidence": log_evidence,
            "log_predictive": log_predictive, "penalty": penalty, "num_targets": num_targets,
            "alpha": fit.alpha, "beta": fit.beta}


def ideal_score(train_features: ArrayLike, train_targets: ArrayLike, val_features: ArrayLike,
                val_targets: ArrayLike, *, task: str = "classification",
                mode: str = "prequential", num_parameters: int | None = None,
                complexity_weight: float = 1.0) -> float:
    """Prototype ideal transferability score: description length of the targets plus a size cost.

    A Bayesian linear model (with intercept) of the task's targets on the embeddings is
    fitted to the *training* data (evidence-maximised ``alpha``, ``beta``: see
    :func:`fit_bayesian_linear`) and used to predict the *validation* targets. The score
    is minus the description length of the targets per target value, in nats:

    * ``mode="prequential"`` (default): the training targets coded by the model's
      evidence, then the validation targets by its posterior predictive distribution
      (the chain rule: together the evidence of all targets, with the hyper-parameters
      set on the training part):

      .. math:: S = \\frac{\\log p(Y^{tr} \\mid F^{tr}) + \\log p(Y^{val} \\mid F^{val}, F^{tr}, Y^{tr})
                - \\lambda \\log P}{(N - 1 + M) K};

    * ``mode="validation"``: the validation targets only, a purely held-out estimate,
      ``S = (log p(Y^val | F^val, F^tr, Y^tr) - lambda log P) / (M K)``.

    ``lambda log P`` is the code length of a prior ``p(model) ∝ P^-lambda`` over candidate
    models of ``P`` parameters. With few validation samples the validation mode is noisy
    (the book's chapter "Towards an ideal measure" shows how noisy); the prequential mode
    adds the training evidence, which every training sample informs.

    The score is task-agnostic (the same formula for class labels, coded one-hot, and for
    real-valued targets, standardised with the training deviation), uses training and
    validation data, knows the model's size and costs one eigendecomposition.
    **Larger is better.** See the module notes for the choice of the penalty.

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
        lambda >= 0: nats of total log-likelihood a model must gain per factor ``e`` in
        size (default 1).

    Returns
    -------
    float
        Nats per target value.

    Raises
    ------
    ValueError
        Bad shapes or values, unseen validation classes, a constant regression target,
        a bad mode, parameter count or weight.

    References
    ----------
    Suresh, Abrol and Thakur, Pitfalls in Measuring Neural Transferability, Sec. 5.2 (the
    four properties); MacKay (1992) and You et al. (2021) (the Bayesian linear model);
    Rissanen (1978) (description length).

    Examples
    --------
    The same embeddings, scored for two models of different size:

    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 30)
    >>> features = rng.normal(size=(90, 4)) + 3 * np.eye(3, 4)[labels]
    >>> train, val = np.arange(90) % 3 != 0, np.arange(90) % 3 == 0
    >>> small = ideal_score(features[train], labels[train], features[val], labels[val], num_parameters=10**4)
    >>> large = ideal_score(features[train], labels[train], features[val], labels[val], num_parameters=10**6)
    >>> bool(small > large)
    True
    """
    return ideal_terms(train_features, train_targets, val_features, val_targets, task=task, mode=mode,
                       num_parameters=num_parameters, complexity_weight=complexity_weight)["value"]


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


__all__ = ["BayesianLinearFit", "fit_bayesian_linear", "holdout_split", "ideal_holdout_score", "ideal_score",
           "ideal_terms", "logme_regression_score"]
