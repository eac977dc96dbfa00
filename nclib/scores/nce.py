"""NCE: negative conditional entropy of target labels given source labels (Tran et al. 2019)."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike

from nclib._validation import check_class_sizes, encode_labels, probability_rows

#: Renaming the source classes (permuting the columns of the probabilities) changes nothing.
INVARIANCES = frozenset({"column_permutation"})


def nce_score(source_probs: ArrayLike, labels: ArrayLike) -> float:
    """Negative conditional entropy :math:`-H(Y \\mid Z)` of target labels given the
    source model's hard predictions.

    Each sample's source label is :math:`z_i = \\arg\\max_z \\theta(x_i)_z` (ties go to
    the first class). From the empirical joint :math:`\\hat P(y, z)` of target and
    source labels,

    .. math:: \\mathrm{NCE} = -H(Y \\mid Z) = \\sum_{y, z} \\hat P(y, z)
              \\log \\frac{\\hat P(y, z)}{\\hat P(z)}.

    **Larger is better**; NCE <= 0, with 0 exactly when the target label is a function
    of the source prediction, and NCE = -H(Y) when the source prediction says nothing.
    Cost O(N Z) for the argmax, then O(C Z).

    Parameters
    ----------
    source_probs : array-like of shape (N, Z)
        Source-classifier probabilities (rows non-negative, summing to 1 within 1e-3);
        only their argmax is used, as in the paper.
    labels : array-like of shape (N,)
        Target labels, any hashable values; at least two classes.

    Returns
    -------
    float

    References
    ----------
    A. T. Tran, C. V. Nguyen, T. Hassner. Transferability and Hardness of Supervised
    Classification Tasks. ICCV 2019.

    Examples
    --------
    Source class 0 always means "a"; source class 1 is a coin flip between "a" and "b":

    >>> probs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
    >>> bool(np.isclose(nce_score(probs, ["a", "a", "a", "b"]), -0.5 * np.log(2)))
    True
    """
    probs, _ = probability_rows(source_probs)  # argmax ignores the row scale: no renormalising
    codes, classes = encode_labels(labels, probs.shape[0])
    check_class_sizes(codes, classes, 1, "nce_score")
    num_samples, num_source = probs.shape
    hard = np.argmax(probs, axis=1)
    counts = np.bincount(codes * num_source + hard, minlength=len(classes) * num_source)
    joint = counts.reshape(len(classes), num_source) / num_samples  # P(y, z)
    source_marginal = joint.sum(axis=0)  # P(z)
    present = joint > 0
    conditional = joint[present] / np.broadcast_to(source_marginal, joint.shape)[present]
    return float(np.sum(joint[present] * np.log(conditional)))
