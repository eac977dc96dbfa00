"""Every registry score on extreme numeric input: invariant where REGISTRY says so, else refuse.

For each score of :data:`nclib.REGISTRY` and each transform of the features -- uniform
scaling by 1e+-150 and 1e+-300, a shift by 1e10 (constant and per column), columns of
wildly different scales (column j times 10^(j-8)), a rotation, a permutation of the
columns -- the score must

* return the value it has on the untransformed features (to 1e-6 relative) when the
  transform is listed in ``REGISTRY[name].invariances``;
* otherwise return a finite number or raise a ValueError saying that the range cannot
  be represented;

and never return NaN or leak a RuntimeWarning / ComplexWarning. Complex input is refused
by every score. The invariances themselves are derived in each score's module; a
transform that a score claims and does not honour fails here.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from nclib import REGISTRY
from nclib._validation import TRANSFORMS

NUM_PER_CLASS, NUM_CLASSES, DIM = 30, 3, 16
LABELS = np.repeat(np.arange(NUM_CLASSES), NUM_PER_CLASS)


def _quantised(array):
    """Multiples of 2^-12 below 2^20: adding 1e10 to them is exact in float64."""
    return np.round(array * 4096.0) / 4096.0


def _model(separation, seed):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(len(LABELS), DIM)) + separation * np.eye(NUM_CLASSES, DIM)[LABELS]
    return _quantised(features)


POOL = [_model(2.0, 0), _model(1.0, 1), _model(0.5, 2)]  # features of three candidate models


def _probs(seed):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(LABELS), 8)) + 3.0 * np.eye(NUM_CLASSES, 8)[LABELS]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return probs / probs.sum(axis=1, keepdims=True)


PROBS = _probs(0)
ROTATION = np.linalg.qr(np.random.default_rng(5).normal(size=(DIM, DIM)))[0]
PERMUTATION = np.random.default_rng(6).permutation(DIM)
OFFSETS = np.round(np.random.default_rng(7).uniform(-1, 1, DIM) * 1e10)  # integers: exact sums

# name -> (transform it exercises, function of an (N, D) array)
CASES = {
    "scale_1e150": ("isotropic_scale", lambda f: f * 1e150),
    "scale_1e-150": ("isotropic_scale", lambda f: f * 1e-150),
    "scale_1e300": ("isotropic_scale", lambda f: f * 1e300),
    "scale_1e-300": ("isotropic_scale", lambda f: f * 1e-300),
    "shift_1e10": ("shift", lambda f: f + 1e10),
    "shift_per_column": ("shift", lambda f: f + OFFSETS[: f.shape[1]]),
    "column_scale": ("column_scale", lambda f: f * 10.0 ** (np.arange(f.shape[1]) - 8.0)),
    "rotation": ("rotation", lambda f: f @ ROTATION[: f.shape[1], : f.shape[1]]),
    "column_permutation": ("column_permutation", lambda f: f[:, PERMUTATION[PERMUTATION < f.shape[1]]]),
}


def _evaluate(name, transform):
    """The score on transformed input, with nclib RuntimeWarnings and ComplexWarnings as errors."""
    info = REGISTRY[name]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        warnings.simplefilter("error", np.exceptions.ComplexWarning)
        if info.needs == "source_probs":
            return info.function(transform(PROBS), LABELS, **info.options)
        if info.pool_level:
            return np.asarray(info.function([transform(f) for f in POOL], LABELS, **info.options))
        return info.function(transform(POOL[0]), LABELS, **info.options)


_BASE = {}


def _base(name):
    if name not in _BASE:
        _BASE[name] = _evaluate(name, lambda f: f)
    return _BASE[name]


def test_every_registry_score_declares_known_invariances():
    for name, info in REGISTRY.items():
        assert isinstance(info.invariances, frozenset), name
        assert info.invariances <= TRANSFORMS, name
    # a few that follow from the formulas
    assert {"shift", "isotropic_scale", "rotation"} <= REGISTRY["nc"].invariances
    assert "shift" not in REGISTRY["logme"].invariances  # no intercept
    assert {"isotropic_scale", "rotation"} <= REGISTRY["logme"].invariances
    assert "column_scale" in REGISTRY["hscore"].invariances  # any invertible linear map
    assert "column_scale" in REGISTRY["gbc"].invariances  # diagonal covariance, relative floor
    assert "isotropic_scale" not in REGISTRY["transrate"].invariances  # eps fixes a scale


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_extreme_input_gives_the_invariant_value_or_a_clear_refusal(name, case):
    transform_name, transform = CASES[case]
    info = REGISTRY[name]
    base = _base(name)
    try:
        value = _evaluate(name, transform)
    except ValueError as error:
        assert transform_name not in info.invariances, f"{name} is declared invariant to {transform_name}: {error}"
        if info.needs == "source_probs":  # transformed probabilities are not probabilities
            assert "sum to 1" in str(error) or "negative" in str(error)
        else:
            assert "cannot be represented" in str(error)
        return
    assert np.all(np.isfinite(value)), f"{name} on {case}: {value}"
    if transform_name in info.invariances:
        np.testing.assert_allclose(value, base, rtol=1e-6, atol=1e-12, err_msg=f"{name} on {case}")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_complex_input_is_refused_by_every_score(name):
    info = REGISTRY[name]
    with pytest.raises(ValueError, match="complex"):
        _evaluate(name, lambda f: f.astype(complex))
    with pytest.raises(ValueError, match="complex"):  # also with a zero imaginary part, and as lists
        if info.needs == "source_probs":
            info.function((PROBS + 0j).tolist(), LABELS)
        elif info.pool_level:
            info.function([(f + 0j).tolist() for f in POOL], LABELS)
        else:
            info.function((POOL[0] + 0j).tolist(), LABELS)


def test_scale_invariant_scores_normalise_without_losing_bits():
    # powers of two change no significant bit, so the value at 2^(+-900) x is the value at x
    # to the rounding of the arithmetic: the conditioned features are x times another power
    # of two (|x| <= 1), and square roots and eigensolvers may then round the last bit
    # differently (LogME is one ulp apart on some OpenBLAS kernels). Squaring the raw
    # features instead would overflow or underflow, and no value would come back at all.
    close = 64 * np.finfo(float).eps
    for name in ("nc", "logme", "hscore", "gbc", "knn"):
        base = _base(name)
        for exponent in (900, -900):
            value = _evaluate(name, lambda f: np.ldexp(f, exponent))
            assert value == pytest.approx(base, rel=close, abs=0), (name, exponent)


def test_non_scale_invariant_scores_name_the_unrepresentable_range():
    with pytest.raises(ValueError, match="transrate_score: the features reach magnitude .*cannot be represented"):
        REGISTRY["transrate"].function(POOL[0] * 1e300, LABELS)
