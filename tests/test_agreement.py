"""Agreement between scores (nclib.agreement): oriented tables, rank agreement, picks."""

import pandas as pd
import pytest

from nclib.agreement import oriented_scores, score_agreement, score_picks


def scores_table(values: dict) -> pd.DataFrame:
    """{score: {model: value}} -> tidy table."""
    return pd.DataFrame([(m, s, v) for s, per_model in values.items() for m, v in per_model.items()],
                        columns=["model", "score", "value"])


def test_agreement_and_picks_are_oriented():
    scores = scores_table({
        "nc": {"a": 0.1, "b": 0.2, "c": 0.3},        # lower is better: a > b > c
        "logme": {"a": 3.0, "b": 2.0, "c": 1.0},     # a > b > c
        "leep": {"a": -3.0, "b": -1.0, "c": -2.0},   # b > c > a
    })
    agreement = score_agreement(scores)
    assert agreement.loc["nc", "logme"] == pytest.approx(1.0)
    # leep against logme: pairs (a,b) and (a,c) reversed, (b,c) kept -> (1 - 2) / 3
    assert agreement.loc["leep", "logme"] == pytest.approx(-1 / 3)
    assert oriented_scores(scores).loc["b", "nc"] == -0.2
    assert score_picks(scores).to_dict() == {"nc": "a", "logme": "a", "leep": "b"}
    with pytest.raises(ValueError, match="method"):
        score_agreement(scores, method="pearson")

