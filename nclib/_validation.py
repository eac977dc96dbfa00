"""Input checks shared by every score: bad input fails here, with a message naming it.

Each function returns a clean array (float64 features, integer class codes) so that the
scores themselves never see NaN, inf, ragged shapes or unknown label types.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PROBABILITY_TOLERANCE = 1e-3


def as_features(features, name: str = "features") -> np.ndarray:
    """Return ``features`` as a finite, non-empty float64 array of shape (N, D)."""
    try:
        array = np.asarray(features, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array: {error}") from None
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x dimensions), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    if not np.isfinite(array).all():
        bad = np.argwhere(~np.isfinite(array))[0]
        raise ValueError(
            f"{name} contains NaN or inf (first at row {bad[0]}, column {bad[1]})"
        )
    return array


def encode_labels(labels, num_samples: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Map any hashable labels to integer codes 0..C-1.

    Returns
    -------
    codes : ndarray of shape (N,), int64
    classes : ndarray of shape (C,)
        ``classes[codes[i]] == labels[i]``; sorted where the labels can be ordered.
    """
    values = labels.to_numpy() if isinstance(labels, pd.Series) else labels
    values = np.asarray(values, dtype=object if _is_mixed(values) else None)
    if values.ndim != 1:
        raise ValueError(f"labels must be 1-D, got shape {values.shape}")
    if values.shape[0] == 0:
        raise ValueError("labels are empty")
    if num_samples is not None and values.shape[0] != num_samples:
        raise ValueError(
            f"labels have {values.shape[0]} entries but there are {num_samples} samples"
        )
    try:
        codes, classes = pd.factorize(values, sort=True)
    except TypeError:
        codes, classes = pd.factorize(values, sort=False)
    if (codes < 0).any():
        raise ValueError(f"labels contain missing values (NaN/None) at index {int(np.argmax(codes < 0))}")
    if len(classes) < 2:
        raise ValueError(f"need at least two classes, got {len(classes)}: {list(classes)!r}")
    return codes.astype(np.int64), np.asarray(classes)


def _is_mixed(values) -> bool:
    try:
        return len({type(v) for v in values}) > 1
    except TypeError:
        return False


def class_name(value) -> str:
    """``repr`` of a class label without NumPy's type wrapper (``'a'``, not ``np.str_('a')``)."""
    return repr(value.item() if isinstance(value, np.generic) else value)


def check_class_sizes(codes: np.ndarray, classes: np.ndarray, minimum: int, score: str) -> np.ndarray:
    """Raise if any class has fewer than ``minimum`` samples; return the class counts."""
    counts = np.bincount(codes, minlength=len(classes))
    small = np.flatnonzero(counts < minimum)
    if small.size:
        c = small[0]
        raise ValueError(
            f"{score} needs at least {minimum} samples per class; "
            f"class {class_name(classes[c])} has {counts[c]}"
        )
    return counts


def features_and_labels(features, labels, score: str, min_class_size: int = 1):
    """Validate a (features, labels) pair for ``score``.

    Returns
    -------
    features : ndarray of shape (N, D), float64
    codes : ndarray of shape (N,), int64
    classes : ndarray of shape (C,)
    counts : ndarray of shape (C,)
    """
    array = as_features(features)
    codes, classes = encode_labels(labels, array.shape[0])
    counts = check_class_sizes(codes, classes, min_class_size, score)
    return array, codes, classes, counts


def as_probabilities(probs, name: str = "source_probs") -> np.ndarray:
    """Return ``probs`` as float64 (N, Z) rows of a probability simplex.

    Rows must be non-negative and sum to 1 within ``PROBABILITY_TOLERANCE`` (float32
    softmax output drifts by ~1e-6); within that tolerance they are renormalised.
    """
    array = as_features(probs, name)
    if (array < 0).any():
        row = int(np.argwhere(array < 0)[0][0])
        raise ValueError(f"{name} has negative entries (first in row {row})")
    sums = array.sum(axis=1)
    off = np.abs(sums - 1.0) > PROBABILITY_TOLERANCE
    if off.any():
        row = int(np.argmax(off))
        raise ValueError(f"{name} rows must sum to 1; row {row} sums to {sums[row]:.6g}")
    return array / sums[:, None]
