"""Cross-validated logistic-regression probe: the cheap brute-force baseline."""

from __future__ import annotations

import warnings

import numpy as np
from numpy.typing import ArrayLike

from nclib._sampling import stratified_subsample
from nclib._validation import features_and_labels
from nclib.scores.logme import ConvergenceWarning

#: Standardising every column first makes the probe blind to shifts and per-column scales.
INVARIANCES = frozenset({"shift", "isotropic_scale", "column_scale", "column_permutation"})


def linear_probe_score(features: ArrayLike, labels: ArrayLike, folds: int = 5, C: float = 1.0, max_iter: int = 1000,
                       max_samples: int | None = 10_000, random_state=0) -> float:
    """Mean held-out accuracy of a multinomial logistic regression on the embeddings.

    Features are standardised (per column, on each training fold) and an
    L2-regularised softmax regression (inverse regularisation ``C``, scikit-learn's
    convention: ``C`` times the summed cross-entropy plus half the squared weights) is
    fitted on ``folds - 1`` folds and scored on the remaining one, for each of ``folds``
    stratified, shuffled folds (scikit-learn's ``StratifiedKFold``). The fit is solved to
    convergence by :func:`nclib.logistic.fit_logistic`, whose preconditioning keeps
    ill-conditioned embeddings cheap; its minimiser is scikit-learn's
    ``LogisticRegression(C=C)``. This is the linear-evaluation protocol of
    Kornblith et al. on frozen features: a direct, if more expensive, measurement of
    what a frozen-backbone head reaches, against which the cheap scores can be judged.
    **Larger is better**; the value lies in [0, 1].

    With ``max_samples``, the probe runs on a seeded, class-stratified subsample (each
    class keeps at least ``folds`` samples), which bounds the cost at
    O(iterations x folds x max_samples x D x C).

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
        At least two classes, each with at least ``folds`` samples.
    folds : int
        Number of cross-validation folds, at least 2.
    C : float
        Inverse L2 regularisation strength of the logistic regression.
    max_iter : int
        L-BFGS iteration cap per fit; reaching it issues a ``ConvergenceWarning``.
    max_samples : int or None
    random_state : int
        Seed of the subsample and of the fold assignment.

    Returns
    -------
    float

    References
    ----------
    S. Kornblith, J. Shlens, Q. V. Le. Do Better ImageNet Models Transfer Better?
    CVPR 2019.

    Examples
    --------
    Constant features: every fold predicts the majority class, which is 3 of 5 test
    samples (6 "a" and 4 "b", two stratified folds).

    >>> linear_probe_score(np.zeros((10, 2)), ["a"] * 6 + ["b"] * 4, folds=2)
    0.6
    """
    from sklearn.model_selection import StratifiedKFold

    from nclib.logistic import fit_logistic, standardizer

    if isinstance(folds, bool) or not isinstance(folds, (int, np.integer)) or folds < 2:
        raise ValueError(f"linear_probe_score: folds must be an integer >= 2, got {folds!r}")
    if not C > 0:
        raise ValueError(f"linear_probe_score: C must be positive, got {C}")
    features, codes, classes, counts = features_and_labels(features, labels, "linear_probe_score", folds, INVARIANCES)
    rows = stratified_subsample(codes, max_samples, random_state, min_per_class=folds)
    features, codes = features[rows], codes[rows]
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=random_state)
    accuracies, stalled = [], 0
    for train, test in splitter.split(features, codes):
        mean, scale = standardizer(features[train])
        fit = fit_logistic((features[train] - mean) / scale, codes[train], num_classes=len(classes),
                           l2=1.0 / (C * len(train)), max_iter=max_iter)
        stalled += not fit["converged"]
        logits = (features[test] - mean) / scale @ fit["weight"] + fit["bias"]
        accuracies.append(float(np.mean(np.argmax(logits, axis=1) == codes[test])))
    if stalled:
        warnings.warn(f"linear_probe_score: logistic regression reached max_iter={max_iter} in {stalled} of "
                      f"{folds} folds", ConvergenceWarning, stacklevel=2)
    return float(np.mean(accuracies))
