"""ETran: energy-based transferability estimation (Gholami et al., ICCV 2023).

ETran's terms are min-max normalised **across the pool of candidate models**:
:func:`etran_score` takes the whole pool.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import features_and_labels
from nclib.scores._linalg import class_means
from nclib.scores.hscore import require_variation
from nclib.scores.ncti import _per_model, normalise_across_pool, validate_pool
from nclib.scores.sfda import adaptive_shrinkage, lda_log_posteriors, shrunk_covariance, within_class_covariance

VARIANTS = ("paper", "reference")
_DEFAULT_WEIGHTS = {"paper": (1.0, 1.0), "reference": (0.15, 0.85)}
_REFERENCE_ENERGY_FRACTION = 0.005
_CHUNK_ROWS = 4096

#: The energy log-sum-exp reads the raw coordinates: only relabelling the columns leaves it unchanged.
INVARIANCES = frozenset({"column_permutation"})


def _row_logsumexp(features: np.ndarray) -> np.ndarray:
    """``log(sum(exp(row)))`` of every row, shape (N,), stable and in row chunks."""
    out = np.empty(features.shape[0])
    for start in range(0, features.shape[0], _CHUNK_ROWS):
        block = features[start:start + _CHUNK_ROWS]
        peak = block.max(axis=1)
        out[start:start + _CHUNK_ROWS] = peak + np.log(np.exp(block - peak[:, None]).sum(axis=1))
    return out


def etran_terms(features: ArrayLike, labels: ArrayLike, variant: str = "paper") -> dict:
    """ETran's two raw classification terms for one model (before pool normalisation).

    * ``energy``: the mean over samples of :math:`-E(x) = \\log\\sum_d e^{f_d(x)}`, the
      negative free energy of the embedding read as logits; in-distribution inputs
      (for the pre-trained model) have low energy, hence large ``energy``.
    * ``classification``: the mean posterior of the true class,
      :math:`\\frac1N\\sum_i p(y_i \\mid x_i)`, of a linear discriminant.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, each with at least two samples.
    variant : {"paper", "reference"}
        ``"paper"``: energy averaged over all samples; the discriminant uses SFDA's
        shrunk within-class covariance (the LDA the paper describes).
        ``"reference"``: what the authors' released code computes: energy averaged over
        the 0.5 % of samples with the lowest value, and a discriminant whose covariance
        is effectively the identity (the code takes eigenvectors of a non-symmetric
        matrix with a symmetric solver, so the projection cancels to I): a softmax of
        :math:`-\\tfrac12\\|x - \\mu_c\\|^2 + \\log \\pi_c`.

    Returns
    -------
    dict
        ``{"energy": float, "classification": float}``.

    Examples
    --------
    The energy of a row (x, 0) is log(1 + e^x):

    >>> terms = etran_terms([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 0.0]], [0, 0, 1, 1])
    >>> bool(np.isclose(terms["energy"], np.mean(np.log1p(np.exp([0.0, 1.0, 3.0, 4.0])))))
    True
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    features, codes, classes, counts = features_and_labels(features, labels, "etran_score", 2, INVARIANCES)
    require_variation(features, "etran_score")
    energies = _row_logsumexp(features)
    means = class_means(features, codes, counts)
    if variant == "paper":
        energy = float(np.mean(energies))
        within = within_class_covariance(features, codes, means)
        if not np.trace(within) > 0:
            raise ValueError("etran_score: every class is a single point (zero within-class scatter)")
        covariance = shrunk_covariance(within, adaptive_shrinkage(within))
    else:
        lowest = max(1, int(_REFERENCE_ENERGY_FRACTION * len(energies)))
        energy = float(np.mean(np.partition(energies, lowest - 1)[:lowest]))
        covariance = np.eye(features.shape[1])
    log_post = lda_log_posteriors(features, codes, counts, covariance, means)
    return {"energy": energy,
            "classification": float(np.mean(np.exp(log_post[np.arange(len(codes)), codes])))}


def etran_score(features_list: Sequence[ArrayLike], labels: ArrayLike, variant: str = "paper",
                weights: Sequence[float] | None = None) -> np.ndarray:
    """ETran of every model in a pool: weighted sum of the pool-normalised energy and
    classification terms (:func:`etran_terms`).

    .. math:: \\mathrm{ETran}_m = w_E\\,\\widetilde{S}_{en,m} + w_C\\,\\widetilde{S}_{cls,m},

    where the tilde is min-max normalisation across the M models
    (:func:`nclib.scores.ncti.normalise_across_pool`). By default the two normalised
    terms are added with equal weights (our reading of the paper's sum of scores); the
    paper's third, regression term serves object detection and is not included. **Larger is better.** The value of a model depends
    on the pool; only the ranking within one pool is meaningful. Cost per model: one
    within-class scatter matrix (O(N D^2)) and a Cholesky solve.

    Parameters
    ----------
    features_list : list of array-like, each of shape (N, D_m)
        Each candidate model's embeddings of the same N target samples.
    labels : array-like of shape (N,)
    variant : {"paper", "reference"}
        See :func:`etran_terms`. ``"reference"`` also changes the default weights to
        the released evaluation script's 0.15 (energy) and 0.85 (classification).
    weights : pair of float, optional
        :math:`(w_E, w_C)`, overriding the variant's default.

    Returns
    -------
    ndarray of shape (M,)

    References
    ----------
    M. Gholami, M. Akbari, X. Wang, B. Kamranian, Y. Zhang. ETran: Energy-Based
    Transferability Estimation. ICCV 2023.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 40)
    >>> strong = rng.normal(size=(80, 4)) + 4.0 * labels[:, None]
    >>> weak = rng.normal(size=(80, 4)) * 0.1
    >>> etran_score([strong, weak], labels).tolist()
    [2.0, 0.0]
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    weights = _DEFAULT_WEIGHTS[variant] if weights is None else tuple(float(w) for w in weights)
    if len(weights) != 2:
        raise ValueError(f"etran_score: weights must be a pair (energy, classification), got {weights}")
    pool = validate_pool(features_list, "etran_score")
    terms = _per_model(etran_terms, pool, labels, "etran_score", variant=variant)
    energy = normalise_across_pool([t["energy"] for t in terms])
    classification = normalise_across_pool([t["classification"] for t in terms])
    return weights[0] * energy + weights[1] * classification
