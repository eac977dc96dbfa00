"""NLEEP: LEEP on the posteriors of a Gaussian mixture fitted to the embeddings (Li et al. 2021).

The exact PCA it shares with NCTI and GBC is :func:`nclib.scores._linalg.principal_components`.
"""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from nclib._sampling import stratified_subsample
from nclib._validation import features_and_labels
from nclib.scores._linalg import principal_components, project
from nclib.scores.hscore import require_variation
from nclib.scores.leep import leep_score
from nclib.scores.logme import ConvergenceWarning

# EM works on many small (dim x dim) products, for which multi-threaded BLAS mostly pays
# for synchronisation: on a busy 2-core machine one thread was 8x faster than two.
COVARIANCE_TYPES = ("full", "diag", "tied", "spherical")

#: PCA coordinates are unchanged (up to sign) by shifts and rotations; the mixture's absolute
#: covariance regularisation fixes a scale.
INVARIANCES = frozenset({"shift", "rotation", "column_permutation"})


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
