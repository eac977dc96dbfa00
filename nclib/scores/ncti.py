"""NCTI: how far a model's target features are from neural collapse (Wang et al., ICCV 2023).

NCTI's terms are min-max normalised **across the pool of candidate models**, so the
score of one model depends on the others: :func:`ncti_score` takes the whole pool.
Also home of :func:`normalise_across_pool` and :func:`validate_pool`, shared with ETran.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import features_and_labels
from nclib.scores._linalg import principal_components, project
from nclib.scores.hscore import require_variation

_MIN_SHRINKAGE = 1e-10

#: PCA then LDA: shifts and rotations; the shrinkage exp(-explained variance) fixes a scale.
INVARIANCES = frozenset({"shift", "rotation", "column_permutation"})


def normalise_across_pool(values) -> np.ndarray:
    """Min-max scale one term over the candidate models to [0, 1], shape (M,).

    A term that is equal for every model (or a pool of one) carries no ranking
    information and is mapped to 0.

    Examples
    --------
    >>> normalise_across_pool([2.0, 4.0, 3.0]).tolist()
    [0.0, 1.0, 0.5]
    >>> normalise_across_pool([7.0]).tolist()
    [0.0]
    """
    values = np.asarray(values, dtype=np.float64)
    span = values.max() - values.min()
    if span == 0:
        return np.zeros_like(values)
    return (values - values.min()) / span


def validate_pool(features_list, score: str) -> list:
    """Return the pool as a non-empty list of per-model feature arrays.

    Examples
    --------
    >>> len(validate_pool([np.zeros((3, 2)), np.ones((3, 5))], "ncti_score"))
    2
    """
    if isinstance(features_list, np.ndarray):
        raise ValueError(f"{score} compares a pool of models: pass a list of (N, D_m) feature arrays, "
                         f"one per model, not one array of shape {features_list.shape}")
    pool = list(features_list)
    if not pool:
        raise ValueError(f"{score}: the pool of models is empty")
    return pool


def _per_model(function, pool, labels, score, **options):
    terms = []
    for index, features in enumerate(pool):
        try:
            terms.append(function(features, labels, **options))
        except ValueError as error:
            raise ValueError(f"{score}: model {index} of the pool: {error}") from None
    return terms


def ncti_terms(features: ArrayLike, labels: ArrayLike, num_components: int = 64) -> dict:
    """NCTI's three raw terms for one model (before pool normalisation).

    1. PCA to ``num_components`` (64) directions; a linear discriminant (scikit-learn's,
       as in the authors' code) with shrinkage :math:`\\max(e^{-s}, 10^{-10})`, s the
       variance explained by the first half (32) of the directions (unregularised when
       that floor is hit).
    2. ``seli`` (simplex encoded label interpolation): nuclear norm of the centred
       projection onto the C - 1 discriminant directions; larger when the class means
       span more directions.
    3. ``ncc`` (nearest-centre classifier): mean discriminant posterior of the true
       class.
    4. ``vc`` (variability collapse): log of the sum over classes of the nuclear norm of
       the class's (n_c, C) posterior matrix; smaller when each class's predictions
       collapse onto one direction.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, each with at least two samples.
    num_components : int

    Returns
    -------
    dict
        ``{"seli": float, "ncc": float, "vc": float}``.

    Examples
    --------
    One feature, classes {0, 2} and {4, 6}: within-class variance 1, total 5, so the
    centred discriminant coordinates are (-3, -1, 1, 3) and ``seli`` = sqrt(20).

    >>> terms = ncti_terms([[0.0], [2.0], [4.0], [6.0]], ["a", "a", "b", "b"])
    >>> bool(np.isclose(terms["seli"], np.sqrt(20)))
    True
    """
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis

    if not isinstance(num_components, (int, np.integer)) or num_components < 2:
        raise ValueError(f"ncti_score: num_components must be an integer >= 2, got {num_components!r}")
    features, codes, classes, counts = features_and_labels(features, labels, "ncti_score", 2, INVARIANCES)
    require_variation(features, "ncti_score")
    variances, directions, mean = principal_components(features, num_components)
    reduced = project(features, directions, mean)
    shrinkage = max(float(np.exp(-variances[:num_components // 2].sum())), _MIN_SHRINKAGE)
    if shrinkage > _MIN_SHRINKAGE:
        discriminant = LinearDiscriminantAnalysis(solver="eigen", shrinkage=shrinkage)
    else:
        discriminant = LinearDiscriminantAnalysis(solver="svd")
    projected = discriminant.fit_transform(reduced, codes)
    projected = projected - projected.mean(axis=0)
    posteriors = discriminant.predict_proba(reduced)
    class_nuclear = sum(np.linalg.norm(posteriors[codes == c], ord="nuc") for c in range(len(classes)))
    return {
        "seli": float(np.linalg.norm(projected, ord="nuc")),
        "ncc": float(np.mean(posteriors[np.arange(len(codes)), codes])),
        "vc": float(np.log(class_nuclear)),
    }


def ncti_score(features_list: Sequence[ArrayLike], labels: ArrayLike, num_components: int = 64) -> np.ndarray:
    """NCTI of every model in a pool: normalised seli + ncc - vc.

    Each of the three terms of :func:`ncti_terms` is min-max normalised across the M
    models (:func:`normalise_across_pool`) and

    .. math:: \\mathrm{NCTI}_m = \\widetilde{\\mathrm{seli}}_m + \\widetilde{\\mathrm{ncc}}_m
              - \\widetilde{\\mathrm{vc}}_m \\in [-1, 2].

    **Larger is better.** The value of a model changes when the pool changes; only the
    ranking within one pool is meaningful. Cost per model: one D x D covariance and a
    64-direction Lanczos eigensolve (O(N D^2)), then O(N C^2) on the reduced features.

    Parameters
    ----------
    features_list : list of array-like, each of shape (N, D_m)
        Each candidate model's embeddings of the same N target samples (the widths D_m
        may differ).
    labels : array-like of shape (N,)
    num_components : int
        PCA dimension before the discriminant (64 in the paper's code).

    Returns
    -------
    ndarray of shape (M,)

    References
    ----------
    Z. Wang, Y. Luo, L. Zheng, Z. Huang, M. Baktashmotlagh. How Far Pre-trained Models
    Are from Neural Collapse on the Target Dataset Informs their Transferability.
    ICCV 2023.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 30)
    >>> collapsed = rng.normal(size=(90, 8)) * 0.3 + 3.0 * np.eye(3, 8)[labels]
    >>> diffuse = rng.normal(size=(90, 8)) + 0.5 * np.eye(3, 8)[labels]
    >>> ncti_score([collapsed, diffuse], labels).tolist()
    [2.0, -1.0]
    """
    pool = validate_pool(features_list, "ncti_score")
    terms = _per_model(ncti_terms, pool, labels, "ncti_score", num_components=num_components)
    seli, ncc, vc = (normalise_across_pool([t[key] for t in terms]) for key in ("seli", "ncc", "vc"))
    return seli + ncc - vc
