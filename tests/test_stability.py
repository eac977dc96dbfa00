"""Stability of evaluations (nclib.stability): bootstrap over models, seeds, training subsets, winners."""

import numpy as np
import pandas as pd
import pytest

from nclib import nc_score
from nclib.data.base import stratified_split
from nclib.evaluate import ranking_measures
from nclib.stability import (_selection_measures, bootstrap_measures, evaluate_by, seed_evaluation,
                             subsample_scores, winners)


def scores_table(values: dict) -> pd.DataFrame:
    """{score: {model: value}} -> tidy table."""
    return pd.DataFrame([(m, s, v) for s, per_model in values.items() for m, v in per_model.items()],
                        columns=["model", "score", "value"])


def test_selection_measures_agree_with_ranking_measures():
    rng = np.random.default_rng(0)
    for _ in range(5):
        values, performance = rng.normal(size=7), rng.uniform(0.5, 1.0, size=7)
        fast = _selection_measures(values, performance)
        full = ranking_measures(values, performance, greater_is_better=True)
        for measure, value in fast.items():
            assert value == pytest.approx(full[measure])


def test_bootstrap_of_two_models():
    # a resample holds either both models (every measure as in the full pool) or one model
    # twice (correlations undefined, relative top-1 = 1): the interval of relative top-1 is
    # [0.5, 1], the correlations are -1 whenever defined
    scores = scores_table({"logme": {"a": 2.0, "b": 1.0}})
    table = bootstrap_measures(scores, {"a": 0.4, "b": 0.8}, num_resamples=400, random_state=1).set_index("measure")
    assert table.loc["relative_top1", ["value", "low", "high"]].tolist() == [0.5, 0.5, 1.0]
    assert table.loc["pearson", ["value", "low", "high"]].tolist() == pytest.approx([-1.0, -1.0, -1.0])
    assert 150 < table.loc["pearson", "resamples"] < 250  # about half the resamples hold both models
    assert table.loc["relative_top1", "resamples"] == 400


def test_bootstrap_is_paired_and_oriented():
    # nc (lower is better) and its negation as a higher-is-better score get identical intervals
    values = {"a": 0.1, "b": 0.5, "c": 0.3, "d": 0.9}
    scores = scores_table({"nc": values, "mirror": {m: -v for m, v in values.items()}})
    table = bootstrap_measures(scores, {"a": 0.9, "b": 0.6, "c": 0.8, "d": 0.5}, num_resamples=200,
                               greater_is_better={"mirror": True}).set_index(["score", "measure"])
    assert table.loc["nc"].equals(table.loc["mirror"])
    assert table.loc[("nc", "weighted_tau"), "value"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="no performance"):
        bootstrap_measures(scores, {"a": 1.0})
    with pytest.raises(ValueError, match="level"):
        bootstrap_measures(scores, values, level=1.5)


def test_seed_evaluation_uses_each_seed():
    scores = scores_table({"logme": {"a": 1.0, "b": 2.0, "c": 3.0}})
    transfer = pd.DataFrame({"model": list("abc") * 2, "regime": "head", "seed": [0] * 3 + [1] * 3,
                             "metric": "accuracy", "value": [0.1, 0.2, 0.3, 0.3, 0.2, 0.1]})
    table = seed_evaluation(scores, transfer).query("measure == 'kendall'").set_index("seed")["value"]
    assert table.to_dict() == {0: 1.0, 1: -1.0}


def test_subsample_scores_use_stratified_halves():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 10)
    features = {"a": rng.normal(size=(30, 3)), "b": rng.normal(size=(30, 4))}
    table = subsample_scores(features, labels, ["nc"], fraction=0.4, num_subsets=2, random_state=7)
    keep = stratified_split(labels, (0.4, 0.6), seed=8)[0]  # subset 1 uses seed 7 + 1
    assert len(keep) == 12
    expected = nc_score(features["b"][keep], labels[keep])
    assert table.query("subset == 1 and model == 'b'")["value"].item() == pytest.approx(expected)
    with pytest.raises(ValueError, match="fraction"):
        subsample_scores(features, labels, ["nc"], fraction=1.0)


def test_evaluate_by_and_winners():
    scores = pd.DataFrame({"subset": [0] * 4 + [1] * 4, "model": ["a", "b"] * 4,
                           "score": (["nc"] * 2 + ["logme"] * 2) * 2,
                           "value": [0.1, 0.9, 1.0, 2.0, 0.9, 0.1, 2.0, 1.0]})
    transfer = pd.DataFrame({"model": ["a", "b"], "regime": "head", "seed": 0, "metric": "accuracy",
                             "value": [0.9, 0.5]})
    table = evaluate_by(scores, transfer, "subset")
    top1 = table.query("measure == 'relative_top1'").set_index(["subset", "score"])["value"]
    # subset 0: nc picks a (lowest), logme picks b; subset 1 the other way round
    assert top1.to_dict() == {(0, "nc"): 1.0, (0, "logme"): 0.5 / 0.9, (1, "nc"): 0.5 / 0.9, (1, "logme"): 1.0}
    shares = winners(table, ["subset", "regime"], measure="relative_top1")
    assert shares.to_dict() == {"nc": 0.5, "logme": 0.5}
    tie = pd.DataFrame({"setup": 0, "score": ["x", "y", "z"], "measure": "weighted_tau", "value": [1.0, 1.0, 0.0]})
    assert winners(tie, "setup").to_dict() == {"x": 0.5, "y": 0.5}



def test_pooled_draws_match_pooled_evaluation_interval():
    from nclib.stability import pooled_draws
    from nclib.uncertainty import evaluation_with_intervals, pooled_evaluation

    labels = np.repeat([0, 1], 60)

    def setup(seed):
        rng = np.random.default_rng(seed)
        regimes = ("head", "top") if seed == 1 else ("head",)  # setups differ in regimes
        preds = {(m, r, s): np.eye(2)[np.where(rng.random(120) < acc, labels, 1 - labels)]
                 for m, acc in zip("abcd", [0.6, 0.7, 0.8, 0.9]) for r in regimes
                 for s in ((0,) if r == "head" else (0, 1))}
        scores = scores_table({"logme": dict(zip("abcd", [1.0, 2.0, 4.0, 3.0])),
                               "nc": dict(zip("abcd", [0.1, 0.4, 0.2, 0.3]))})
        return evaluation_with_intervals(scores, preds, labels, "accuracy", measures=["kendall"],
                                         num_resamples=200, random_state=seed, return_draws=True)

    evaluations = {"t1": setup(1), "t2": setup(2)}
    draws = pooled_draws(evaluations, "kendall")
    assert draws.shape == (200, 2) and list(draws.columns) == ["logme", "nc"]
    assert np.isfinite(draws.to_numpy()).all()
    pooled = pooled_evaluation(evaluations, num_permutations=200).set_index("score")
    for score in draws.columns:
        low, high = np.quantile(draws[score], [0.025, 0.975])
        assert (low, high) == pytest.approx((pooled.loc[score, "low"], pooled.loc[score, "high"]))
    with pytest.raises(ValueError, match="no bootstrap draws"):
        pooled_draws(evaluations, "pearson")


def test_pairwise_superiority_is_complementary_and_skips_nan():
    from nclib.stability import pairwise_superiority

    draws = pd.DataFrame({"a": [1.0, 0.2, 0.5, np.nan], "b": [0.0, 0.3, 0.5, 0.9],
                          "c": [2.0, 2.0, 2.0, 2.0]})
    shares = pairwise_superiority(draws)
    assert shares.loc["a", "b"] == pytest.approx(0.5)  # one win, one loss, one tie of three
    assert shares.loc["c", "a"] == 1.0 and shares.loc["a", "c"] == 0.0
    off = ~np.eye(3, dtype=bool)
    assert np.allclose((shares + shares.T).to_numpy()[off], 1.0)
    assert np.isnan(np.diag(shares.to_numpy())).all()
