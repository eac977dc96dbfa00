"""Every bad input named in a ValueError, for each foundation score."""

import numpy as np
import pytest

from nclib import leep_score, logme_score, nc_score

GOOD_FEATURES = np.arange(12, dtype=float).reshape(6, 2) ** 1.5
GOOD_LABELS = [0, 0, 1, 1, 2, 2]
GOOD_PROBS = np.full((6, 4), 0.25)

FEATURE_SCORES = [nc_score, logme_score]


@pytest.mark.parametrize("score", FEATURE_SCORES)
@pytest.mark.parametrize(
    "features, labels, message",
    [
        (GOOD_FEATURES, [0, 0, 1, 1, 2], "5 entries but there are 6 samples"),
        (np.where(np.eye(6, 2) > 0, np.nan, GOOD_FEATURES), GOOD_LABELS, "NaN or inf"),
        (np.where(np.eye(6, 2) > 0, np.inf, GOOD_FEATURES), GOOD_LABELS, "NaN or inf"),
        (np.arange(6.0), GOOD_LABELS, "must be 2-D"),
        (np.zeros((6, 2, 1)), GOOD_LABELS, "must be 2-D"),
        (np.zeros((0, 3)), [], "empty"),
        (GOOD_FEATURES, [1] * 6, "at least two classes"),
        (GOOD_FEATURES, [0, 0, 1, 1, None, 2], "missing"),
        (GOOD_FEATURES, np.array([0, 0, 1, 1, np.nan, 2]), "missing"),
        ([["a", "b"]] * 6, GOOD_LABELS, "numeric"),
    ],
)
def test_feature_scores_name_the_problem(score, features, labels, message):
    with pytest.raises(ValueError, match=message):
        score(features, labels)


def test_labels_must_be_one_dimensional():
    with pytest.raises(ValueError, match="labels must be 1-D"):
        nc_score(GOOD_FEATURES, np.zeros((6, 1)))


def test_too_small_class_is_named():
    with pytest.raises(ValueError, match="class 'rare' has 1"):
        nc_score(GOOD_FEATURES, ["x", "x", "y", "y", "y", "rare"])


@pytest.mark.parametrize(
    "probs, labels, message",
    [
        (np.full((6, 4), 0.3), GOOD_LABELS, "row 0 sums to 1.2"),
        (np.where(np.eye(6, 4) > 0, -0.25, 0.5) , GOOD_LABELS, "negative entries"),
        (np.where(np.eye(6, 4) > 0, np.nan, 0.25), GOOD_LABELS, "NaN or inf"),
        (GOOD_PROBS, [0, 0, 1, 1, 2], "5 entries but there are 6"),
        (np.full(6, 1.0), GOOD_LABELS, "must be 2-D"),
        (np.zeros((0, 4)), [], "empty"),
        (GOOD_PROBS, [3] * 6, "at least two classes"),
    ],
)
def test_leep_names_the_problem(probs, labels, message):
    with pytest.raises(ValueError, match=message):
        leep_score(probs, labels)


def test_leep_accepts_float32_softmax_rounding():
    probs = np.full((6, 3), 1 / 3, dtype=np.float32)
    assert np.isfinite(leep_score(probs, GOOD_LABELS))
