"""LEEP: the log expected empirical prediction (Nguyen et al., ICML 2020)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import check_class_sizes, encode_labels, probability_rows

VARIANTS = ("log", "mean")
#: Renaming the source classes (permuting the columns of the probabilities) changes nothing.
INVARIANCES = frozenset({"column_permutation"})


def leep_score(source_probs: ArrayLike, labels: ArrayLike, variant: str = "log") -> float:
    """LEEP transferability score from a source classifier's probabilities.

    With :math:`\\theta(x_i) \\in \\Delta^{Z}` the source model's softmax over its Z
    classes, the empirical joint of target label y and source label z is
    :math:`\\hat P(y, z) = \\frac1N \\sum_{i: y_i = y} \\theta(x_i)_z`; the "expected
    empirical predictor" is :math:`\\hat P(y \\mid x) = \\sum_z \\hat P(y\\mid z)\\,
    \\theta(x)_z`, and

    .. math:: \\mathrm{LEEP} = \\frac1N \\sum_i \\log \\hat P(y_i \\mid x_i).

    **Larger is better**; the value is at most 0 and equals 0 when the source
    predictions map one-to-one onto the target classes.

    Parameters
    ----------
    source_probs : array-like of shape (N, Z)
        Source-classifier probabilities for the N target training samples; rows must
        be non-negative and sum to 1 (to 1e-3; they are then renormalised).
    labels : array-like of shape (N,)
        Target labels, any hashable values; at least two classes.
    variant : {"log", "mean"}
        ``"log"``: the paper's definition, the mean log-likelihood. ``"mean"``: the
        mean *probability* :math:`\\frac1N\\sum_i \\hat P(y_i \\mid x_i)` without the
        log, as some public re-implementations compute it (it ranks differently).

    Returns
    -------
    float

    References
    ----------
    C. V. Nguyen, T. Hassner, M. Seeger, C. Archambeau. LEEP: A New Measure to Evaluate
    Transferability of Learned Representations. ICML 2020.

    Examples
    --------
    Source classes that map one-to-one onto the target classes give LEEP = 0:

    >>> leep_score([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], ["cat", "dog", "cat"])
    0.0

    A source model that is uninformative gives the log of the target prior:

    >>> expected = 0.75 * np.log(0.75) + 0.25 * np.log(0.25)
    >>> bool(np.isclose(leep_score([[0.5, 0.5]] * 4, [0, 0, 0, 1]), expected))
    True
    """
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    probs, sums = probability_rows(source_probs)  # two reductions: minimum and row sums
    codes, classes = encode_labels(labels, probs.shape[0])
    check_class_sizes(codes, classes, 1, "leep_score")
    num_samples = probs.shape[0]
    # rows renormalised where they enter: weights 1 / sum_i in the joint, a division after the product
    weighted = np.zeros((len(classes), num_samples))
    weighted[codes, np.arange(num_samples)] = 1.0 / sums
    joint = weighted @ probs / num_samples  # (C, Z): P(y, z)
    source_marginal = joint.sum(axis=0)  # (Z,): P(z)
    conditional = np.divide(joint, source_marginal, out=np.zeros_like(joint), where=source_marginal > 0)
    # P(y_i | x_i) = sum_z P(y_i | z) theta_iz, read off one (N, C) product
    predicted = (conditional @ probs.T)[codes, np.arange(num_samples)] / sums
    if variant == "mean":
        return float(predicted.mean())
    return float(np.log(predicted).mean())
