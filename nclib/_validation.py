"""Input checks shared by every score: bad input fails here, with a message naming it.

Each function returns a clean array (float64 features, integer class codes) so that the
scores themselves never see NaN, inf, complex values, ragged shapes or unknown label types.

The checks are fused into reductions the scores need anyway: finiteness of features is
read off their per-column minimum and maximum (NaN and inf propagate into both), which
also gives the range used by :func:`condition`; probabilities are checked through their
minimum and their row sums (see :func:`probability_rows`). Only when a check fails is the
data scanned again, to name the first offending entry.

:func:`condition` then makes extreme but valid input computable, exactly, for scores that
are invariant to a transform (the names of :data:`TRANSFORMS`): a shift-invariant score
sees its columns re-centred on their mid-range, a scale-invariant one sees the features
multiplied by a power of two (which is exact in binary floating point), a score invariant
to per-column scaling sees each column so rescaled. A score that is not scale-invariant
refuses features whose magnitude its float64 arithmetic cannot represent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PROBABILITY_TOLERANCE = 1e-3

#: Names of the feature transforms a score may be invariant to (``ScoreInfo.invariances``).
#: ``isotropic_scale``: F -> s F (s > 0); ``shift``: F -> F + 1 b^T (any offset per column);
#: ``rotation``: F -> F Q (Q orthogonal); ``column_scale``: F -> F diag(d) (d_j > 0);
#: ``column_permutation``: F -> F P (P a permutation; for probability scores, renaming
#: the source classes).
TRANSFORMS = frozenset({"isotropic_scale", "shift", "rotation", "column_scale", "column_permutation"})

# Magnitudes (powers of two) within which squares, Gram matrices and their sums over
# 10^8 terms stay normal float64 numbers.
_SAFE_EXPONENT = 400
# Scale-invariant scores are brought to |x| <= 1 when the magnitude leaves 2^(+-200).
_RESCALE_EXPONENT = 200
# Columns are re-centred when a mid-range exceeds 2^10 times the column's spread: below
# that, centring by the mean loses at most ~1e-13 relative precision.
_SHIFT_RATIO = 2.0**10
# Columns are rescaled one by one when their magnitudes differ by more than 2^20.
_COLUMN_RATIO = 2.0**20


def _as_real_array(values, name: str) -> np.ndarray:
    array = values if isinstance(values, np.ndarray) else None
    if array is None:
        try:
            array = np.asarray(values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{name} must be a numeric array: {error}") from None
    if array.dtype.kind == "c":
        raise ValueError(f"{name} are complex ({array.dtype}); transferability scores need real features "
                         "(pass the real part, the modulus or both as separate columns)")
    if array.dtype.kind == "O" and any(isinstance(v, complex) for v in array.ravel()[:1000]):
        raise ValueError(f"{name} hold complex numbers; transferability scores need real features")
    try:
        return np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{name} must be a numeric array: {error}") from None


def _raise_not_finite(array: np.ndarray, bad_columns: np.ndarray, name: str):
    """Name the first (row-major) NaN or inf entry; only called once a check has failed."""
    columns = np.flatnonzero(bad_columns)
    rows, where = np.nonzero(~np.isfinite(array[:, columns]))
    if rows.size == 0:  # the reductions overflowed on finite input
        raise ValueError(f"{name}: sums of the entries overflow float64; the range cannot be represented")
    first = int(np.argmin(rows * array.shape[1] + columns[where]))
    raise ValueError(
        f"{name} contains NaN or inf (first at row {rows[first]}, column {columns[where[first]]})"
    )


def real_matrix(features, name: str = "features") -> np.ndarray:
    """``features`` as a real, non-empty 2-D float64 array; its values are not scanned.

    For scores that check finiteness on their own reductions (a NaN or inf propagates into
    sums and products) and fall back to :func:`checked_features` when a result is not finite.
    """
    array = _as_real_array(features, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x dimensions), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    return array


def checked_features(features, name: str = "features"):
    """Validate features and return them with their per-column range.

    One pass computes each column's minimum and maximum; a NaN or inf anywhere makes
    one of them non-finite, so no separate ``isfinite`` pass over the (N, D) array is
    needed.

    Returns
    -------
    array : ndarray of shape (N, D), float64
    low, high : ndarray of shape (D,)
        Column minima and maxima.

    Examples
    --------
    >>> array, low, high = checked_features([[1.0, -2.0], [3.0, 4.0]])
    >>> low.tolist(), high.tolist()
    ([1.0, -2.0], [3.0, 4.0])
    >>> checked_features([[1.0, np.nan]])
    Traceback (most recent call last):
    ...
    ValueError: features contains NaN or inf (first at row 0, column 1)
    """
    array = real_matrix(features, name)
    low, high = array.min(axis=0), array.max(axis=0)
    finite = np.isfinite(low) & np.isfinite(high)
    if not finite.all():
        _raise_not_finite(array, ~finite, name)
    return array, low, high


def as_features(features, name: str = "features") -> np.ndarray:
    """Return ``features`` as a finite, real, non-empty float64 array of shape (N, D).

    Examples
    --------
    >>> as_features([[1, 2], [3, 4]]).dtype
    dtype('float64')
    >>> as_features([[1 + 2j]])
    Traceback (most recent call last):
    ...
    ValueError: features are complex (complex128); transferability scores need real features (pass the real part, the modulus or both as separate columns)
    """
    return checked_features(features, name)[0]


def condition(array: np.ndarray, low: np.ndarray, high: np.ndarray, invariances, score: str) -> np.ndarray:
    """Bring extreme features into float64's comfortable range, exactly, where the score allows.

    Parameters
    ----------
    array : ndarray of shape (N, D)
        Finite float64 features.
    low, high : ndarray of shape (D,)
        Their column minima and maxima (from :func:`checked_features`).
    invariances : collection of str
        Names from :data:`TRANSFORMS` the score is invariant to.
    score : str
        Named in error messages.

    Returns
    -------
    ndarray of shape (N, D)
        ``array`` itself when nothing needs doing (the common case: no copy), otherwise a
        transformed copy: re-centred on the column mid-ranges (``"shift"``, when an offset
        dwarfs a column's spread), multiplied by powers of two per column
        (``"column_scale"``, when column magnitudes differ by more than 2^20 or leave
        2^(+-200)) or globally (``"isotropic_scale"``, when the magnitude leaves
        2^(+-200)). Powers of two change no significant bit.

    Raises
    ------
    ValueError
        When the score is not scale-invariant and the features' magnitude lies outside
        2^(+-400) (about 1e(+-120)), where its squares and sums would overflow or
        underflow: the range cannot be represented.

    Examples
    --------
    >>> x = np.array([[1e300], [3e300]])
    >>> y = condition(x, x.min(0), x.max(0), {"isotropic_scale"}, "demo")
    >>> float(y.max()), bool(np.all(np.ldexp(y, 999) == x))  # 3e300 = 0.56 * 2^999, exactly undone
    (0.5599..., True)
    >>> condition(x, x.min(0), x.max(0), set(), "demo")
    Traceback (most recent call last):
    ...
    ValueError: demo: the features reach magnitude 3e+300, outside [2^-400, 2^400] (about 1e-120 to 1e120); demo is not scale-invariant and its float64 arithmetic would overflow or underflow there: the range cannot be represented (rescale the features)
    """
    invariances = frozenset(invariances)
    out = array
    if "shift" in invariances:
        mid = 0.5 * low + 0.5 * high
        spread = high - low
        if np.any(np.abs(mid) > _SHIFT_RATIO * spread):
            out = out - mid  # exact where the offset dominates (Sterbenz)
            low, high = low - mid, high - mid
    magnitude = np.maximum(np.abs(low), np.abs(high))
    top = float(magnitude.max())
    if top == 0.0:
        return out
    exponent = np.frexp(top)[1]
    outside = abs(exponent) > _RESCALE_EXPONENT
    if "column_scale" in invariances:
        nonzero = magnitude[magnitude > 0]
        if outside or nonzero.max() > _COLUMN_RATIO * nonzero.min():
            exponents = np.where(magnitude > 0, np.frexp(magnitude)[1], 0)
            return np.ldexp(out, -exponents)
    if "isotropic_scale" in invariances:
        return np.ldexp(out, -exponent) if outside else out
    if abs(exponent) > _SAFE_EXPONENT:
        raise ValueError(
            f"{score}: the features reach magnitude {top:.3g}, outside [2^-{_SAFE_EXPONENT}, "
            f"2^{_SAFE_EXPONENT}] (about 1e-120 to 1e120); {score} is not scale-invariant and its float64 "
            "arithmetic would overflow or underflow there: the range cannot be represented "
            "(rescale the features)"
        )
    return out


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


def features_and_labels(features, labels, score: str, min_class_size: int = 1, invariances=None):
    """Validate a (features, labels) pair for ``score``.

    Parameters
    ----------
    features : array-like of shape (N, D)
    labels : array-like of shape (N,)
    score : str
        Named in error messages.
    min_class_size : int
    invariances : collection of str, optional
        The score's invariances (names of :data:`TRANSFORMS`). When given, the features
        are passed through :func:`condition`; ``None`` returns them unconditioned.

    Returns
    -------
    features : ndarray of shape (N, D), float64
    codes : ndarray of shape (N,), int64
    classes : ndarray of shape (C,)
    counts : ndarray of shape (C,)
    """
    array, low, high = checked_features(features)
    codes, classes = encode_labels(labels, array.shape[0])
    counts = check_class_sizes(codes, classes, min_class_size, score)
    if invariances is not None:
        array = condition(array, low, high, invariances, score)
    return array, codes, classes, counts


def probability_rows(probs, name: str = "source_probs") -> tuple[np.ndarray, np.ndarray]:
    """Check float64 (N, Z) rows of a probability simplex; return them with their row sums.

    Rows must be non-negative and sum to 1 within ``PROBABILITY_TOLERANCE`` (float32
    softmax output drifts by ~1e-6). Two reductions check everything: the minimum (NaN
    propagates into it, and it must be >= 0) and the row sums (an inf makes its row sum
    inf); no boolean (N, Z) masks are built unless a check fails. The rows are not
    renormalised here: scores divide by the returned sums where they enter (O(N) or
    O(C Z) work instead of another (N, Z) pass and copy).

    Returns
    -------
    probs : ndarray of shape (N, Z), float64
    sums : ndarray of shape (N,)

    Examples
    --------
    >>> probs, sums = probability_rows([[0.25, 0.75], [1.0, 0.0]])
    >>> sums.tolist()
    [1.0, 1.0]
    >>> probability_rows([[0.5, 0.6]])
    Traceback (most recent call last):
    ...
    ValueError: source_probs rows must sum to 1; row 0 sums to 1.1
    """
    array = _as_real_array(probs, name)
    if array.ndim != 2:
        raise ValueError(f"{name} must be 2-D (samples x dimensions), got shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {array.shape}")
    smallest = array.min()
    if not smallest >= 0:  # also NaN
        if np.isnan(smallest):
            _raise_not_finite(array, np.isnan(array.min(axis=0)), name)
        row = int(np.argwhere(array < 0)[0][0])
        raise ValueError(f"{name} has negative entries (first in row {row})")
    sums = array @ np.ones(array.shape[1])  # a BLAS matrix-vector product: about twice as fast as sum(axis=1)
    off = ~(np.abs(sums - 1.0) <= PROBABILITY_TOLERANCE)
    if off.any():
        row = int(np.argmax(off))
        if not np.isfinite(sums[row]):
            _raise_not_finite(array, ~np.isfinite(array.max(axis=0)), name)
        raise ValueError(f"{name} rows must sum to 1; row {row} sums to {sums[row]:.6g}")
    return array, sums


def as_probabilities(probs, name: str = "source_probs") -> np.ndarray:
    """Return ``probs`` as float64 (N, Z) rows of a probability simplex, renormalised.

    See :func:`probability_rows` for the checks.
    """
    array, sums = probability_rows(probs, name)
    return array / sums[:, None]
