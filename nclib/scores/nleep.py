"""NLEEP: LEEP on the posteriors of a Gaussian mixture fitted to the embeddings (Li et al. 2021).

Also home of :func:`principal_components`, the exact PCA that NLEEP and NCTI share.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike
import scipy.sparse.linalg

from nclib._validation import features_and_labels
from nclib.scores.hscore import centred_gram, require_variation
from nclib.scores.knn import stratified_subsample
from nclib.scores.leep import leep_score
from nclib.scores.logme import ConvergenceWarning

_CHUNK_ROWS = 8192
# EM works on many small (dim x dim) products, for which multi-threaded BLAS mostly pays
# for synchronisation: on a busy 2-core machine one thread was 8x faster than two.
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")

#: PCA coordinates are unchanged (up to sign) by shifts and rotations; the mixture's absolute
#: covariance regularisation fixes a scale.
INVARIANCES = frozenset({"shift", "rotation", "column_permutation"})


def _top_eigenpairs(symmetric: np.ndarray, count: int):
    """The ``count`` largest eigenpairs of a symmetric PSD matrix, in decreasing order."""
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
    variances, directions = _top_eigenpairs(covariance, limit)
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


def _fit_mixture(points, num_components, covariance_type, random_state):
    from sklearn.exceptions import ConvergenceWarning as SklearnConvergenceWarning
    from sklearn.mixture import GaussianMixture
    from threadpoolctl import threadpool_limits  # a dependency of scikit-learn

    mixture = GaussianMixture(n_components=num_components, covariance_type=covariance_type,
                              random_state=random_state)
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore", SklearnConvergenceWarning)  # reported below, once, by nclib
        mixture.fit(points)
    if not mixture.converged_:
        warnings.warn(f"nleep_score: the Gaussian mixture did not converge in {mixture.max_iter} EM "
                      "iterations; the score uses the last iterate", ConvergenceWarning, stacklevel=3)
    return mixture


def nleep_score(features: ArrayLike, labels: ArrayLike, variance_fraction: float = 0.8, components_per_class: int = 5,
                covariance_type: str = "full", max_dim: int | None = 64, max_samples: int | None = 10_000,
                random_state=0, variant: str = "log") -> float:
    """NLEEP: LEEP with the source classifier replaced by a Gaussian mixture on the features.

    1. PCA keeping the fewest directions that explain ``variance_fraction`` (80 %) of
       the variance, at most ``max_dim`` of them;
    2. a Gaussian mixture with ``components_per_class`` x C components (5 C) fitted by
       EM (k-means initialisation, seeded by ``random_state``);
    3. LEEP (:func:`nclib.scores.leep_score`) of the target labels with the mixture
       posteriors :math:`p(v \\mid x_i)` in place of the source softmax:
       :math:`\\frac1N\\sum_i \\log \\sum_v \\hat P(y_i \\mid v)\\, p(v \\mid x_i)`.

    **Larger is better**; NLEEP <= 0. The mixture fit dominates the cost.

    Choices the paper leaves open, made here for a bounded cost (N = 50,000, D = 2,048
    runs in well under a minute): the PCA and the mixture are fitted on a seeded,
    class-stratified subsample of ``max_samples`` rows (the PACTran authors' code caps
    at 8,000 samples), while the posteriors and LEEP use all N samples; the PCA
    dimension is capped at ``max_dim`` (the cap binds only when 80 % of the variance
    needs more directions; with full covariances the EM cost grows with dim^2, and with
    5 C components of a few hundred samples each, covariances of many more dimensions
    would be poorly determined anyway). Set ``max_dim=None`` and ``max_samples=None``
    for the unbounded definition.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    variance_fraction : float in (0, 1]
    components_per_class : int
    covariance_type : {"full", "diag", "tied", "spherical"}
        Mixture covariances (scikit-learn's names); "full" as in the reference code.
    max_dim : int or None
    max_samples : int or None
    random_state : int
        Seed of the subsample and of the mixture's initialisation.
    variant : {"log", "mean"}
        ``"log"``: the paper's definition (LEEP's mean log-likelihood). ``"mean"``: the
        mean probability without the log, as several public implementations return.

    Returns
    -------
    float

    Raises
    ------
    ValueError
        Bad input, constant features, or fewer (subsampled) rows than mixture components.

    References
    ----------
    Y. Li, X. Jia, R. Sang, Y. Zhu, B. Green, L. Wang, B. Gong. Ranking Neural
    Checkpoints. CVPR 2021.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 40)
    >>> separated = rng.normal(size=(80, 3)) + 6.0 * labels[:, None]
    >>> value = nleep_score(separated, labels, components_per_class=2)
    >>> -0.05 < value <= 0.0
    True
    """
    if not 0 < variance_fraction <= 1:
        raise ValueError(f"nleep_score: variance_fraction must be in (0, 1], got {variance_fraction}")
    if covariance_type not in COVARIANCE_TYPES:
        raise ValueError(f"covariance_type must be one of {COVARIANCE_TYPES}, got {covariance_type!r}")
    if not isinstance(components_per_class, (int, np.integer)) or components_per_class < 1:
        raise ValueError(f"nleep_score: components_per_class must be a positive integer, got {components_per_class!r}")
    if max_dim is not None and max_dim < 1:
        raise ValueError(f"nleep_score: max_dim must be a positive integer or None, got {max_dim}")
    features, codes, classes, counts = features_and_labels(features, labels, "nleep_score", 1, INVARIANCES)
    require_variation(features, "nleep_score")
    num_components = components_per_class * len(classes)
    fit_rows = stratified_subsample(codes, max_samples, random_state)
    if len(fit_rows) < max(num_components, 2):
        raise ValueError(f"nleep_score: {num_components} mixture components ({components_per_class} per class) "
                         f"need at least {num_components} samples, got {len(fit_rows)}")
    fit_features = features[fit_rows]
    variances, directions, mean = principal_components(fit_features, max_dim, variance_fraction)
    if not len(variances):
        raise ValueError("nleep_score: the (subsampled) features have no variance")
    mixture = _fit_mixture(project(fit_features, directions, mean), num_components, covariance_type,
                           random_state)
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        posteriors = mixture.predict_proba(project(features, directions, mean))
    return leep_score(posteriors, codes, variant=variant)
