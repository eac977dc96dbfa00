"""Evaluation measures, oriented by each score's declared direction."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nclib.evaluate import PICK_COLUMNS, evaluate_run, evaluate_scores, picks, ranking_measures, score_ranks

PERFORMANCE = {"a": 0.90, "b": 0.80, "c": 0.70, "d": 0.60}


def tidy(score, values):
    return pd.DataFrame({"model": list(values), "score": score, "value": list(values.values())})


def test_lower_is_better_scores_are_negated_before_correlating():
    nc = tidy("nc", {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4})  # perfect, lower is better
    table = evaluate_scores(nc, PERFORMANCE).set_index("measure")["value"]
    assert table["pearson"] == pytest.approx(1.0)
    assert table["spearman"] == pytest.approx(1.0)
    assert table["kendall"] == pytest.approx(1.0)
    assert table["weighted_tau"] == pytest.approx(1.0)
    assert table["abs_pearson"] == pytest.approx(1.0)
    assert table["relative_top1"] == 1.0 and table["regret"] == 0.0


def test_same_values_read_as_a_greater_is_better_score_are_perfectly_wrong():
    logme = tidy("logme", {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4})
    table = evaluate_scores(logme, PERFORMANCE).set_index("measure")["value"]
    assert table["kendall"] == pytest.approx(-1.0)
    assert table["relative_top1"] == pytest.approx(0.60 / 0.90)
    assert table["best_in_top3"] == 0.0
    assert table["abs_pearson"] == pytest.approx(1.0)  # the paper's measure ignores direction


def test_hand_computed_measures():
    values = {"a": 3.0, "b": 1.0, "c": 2.0, "d": 0.0}  # greater is better: picks a
    table = evaluate_scores(tidy("logme", values), PERFORMANCE).set_index("measure")["value"]
    # ranks by score a>c>b>d vs truth a>b>c>d: one discordant pair of six
    assert table["kendall"] == pytest.approx((5 - 1) / 6)
    assert table["spearman"] == pytest.approx(1 - 6 * (0 + 1 + 1 + 0) / (4 * 15))
    x = np.array([3.0, 1.0, 2.0, 0.0]); y = np.array([0.9, 0.8, 0.7, 0.6])
    r = np.sum((x - x.mean()) * (y - y.mean())) / np.sqrt(np.sum((x - x.mean()) ** 2) * np.sum((y - y.mean()) ** 2))
    assert table["pearson"] == pytest.approx(r)
    assert table["weighted_tau"] == pytest.approx(stats.weightedtau(x, y).statistic)
    assert table["relative_top1"] == 1.0


def test_unknown_scores_need_an_explicit_direction():
    with pytest.raises(ValueError, match="not in REGISTRY"):
        evaluate_scores(tidy("mystery", {"a": 1.0, "b": 2.0}), PERFORMANCE)
    table = evaluate_scores(tidy("mystery", {"a": 1.0, "b": 2.0}), PERFORMANCE, greater_is_better={"mystery": False})
    assert table.set_index("measure").loc["kendall", "value"] == pytest.approx(1.0)


def test_constant_scores_give_nan_correlations_not_errors():
    m = ranking_measures([1.0, 1.0, 1.0], [0.1, 0.2, 0.3], greater_is_better=True)
    assert np.isnan(m["pearson"]) and np.isnan(m["kendall"])


def test_performances_equal_but_for_float_rounding_count_as_constant():
    # two means over seeds of the same accuracies, which differ in their last bit
    m = ranking_measures([0.2, 0.5], [0.9777777777777779, 0.9777777777777777], greater_is_better=True)
    assert np.isnan(m["pearson"]) and np.isnan(m["spearman"])
    m = ranking_measures([0.2, 0.5], [0.97, 0.98], greater_is_better=True)
    assert m["pearson"] == pytest.approx(1.0)


def test_input_checks():
    with pytest.raises(ValueError, match="at least two models"):
        ranking_measures([1.0], [0.5], True)
    with pytest.raises(ValueError, match="finite"):
        ranking_measures([1.0, np.nan], [0.5, 0.6], True)
    with pytest.raises(ValueError, match="no performance for models"):
        evaluate_scores(tidy("nc", {"zz": 1.0, "a": 2.0}), PERFORMANCE)


def test_evaluate_run_averages_seeds_per_regime():
    scores = pd.concat([tidy("nc", {"a": 0.1, "b": 0.2, "c": 0.3}), tidy("logme", {"a": 3.0, "b": 2.0, "c": 1.0})])
    transfer = pd.DataFrame(
        [(m, regime, seed, "accuracy", acc + 0.01 * seed)
         for m, acc in {"a": 0.9, "b": 0.8, "c": 0.7}.items()
         for regime in ("head", "full") for seed in (0, 1)],
        columns=["model", "regime", "seed", "metric", "value"],
    )
    table = evaluate_run(scores, transfer)
    assert list(table.columns) == ["score", "regime", "measure", "value"]
    assert set(table.regime) == {"head", "full"}
    kendall = table.query("measure == 'kendall'")
    assert np.allclose(kendall.value, 1.0)


def transfer_table(means, regime="head", seeds=(0, 1)):
    """Seed-level results whose seed means are ``means`` (seeds spread +-0.01 around them)."""
    offsets = np.linspace(-0.01, 0.01, len(seeds))
    return pd.DataFrame([(m, regime, seed, "accuracy", mean + off) for m, mean in means.items()
                         for seed, off in zip(seeds, offsets)],
                        columns=["model", "regime", "seed", "metric", "value"])


def test_picks_follow_each_scores_direction_and_rank_the_pick():
    # NC is lower-is-better: it picks "c" (0.1), the third-best model; LogME picks "a", the best
    scores = pd.concat([tidy("nc", {"a": 0.5, "b": 0.3, "c": 0.1, "d": 0.9}),
                        tidy("logme", {"a": 4.0, "b": 3.0, "c": 2.0, "d": 1.0})])
    table = picks(scores, transfer_table(PERFORMANCE))
    assert table.columns.tolist() == PICK_COLUMNS
    nc, logme = table.set_index("score").loc["nc"], table.set_index("score").loc["logme"]
    assert (nc.pick, nc.best, bool(nc.is_best), nc["rank"], nc.num_models) == ("c", "a", False, 3, 4)
    assert nc.performance == pytest.approx(0.70) and nc.best_performance == pytest.approx(0.90)
    assert (logme.pick, bool(logme.is_best), logme["rank"]) == ("a", True, 1)
    # the same as the pick behind relative_top1
    for row in table.itertuples():
        measures = evaluate_scores(scores[scores.score == row.score], PERFORMANCE).set_index("measure").value
        assert row.performance / row.best_performance == pytest.approx(measures["relative_top1"])
    # an explicit direction overrides the registry's: NC read as greater-is-better picks "d"
    assert picks(scores, transfer_table(PERFORMANCE), greater_is_better={"nc": True}).pick.iloc[0] == "d"


def test_picks_per_regime_and_per_setup():
    scores = pd.concat([tidy("logme", {"a": 1.0, "b": 2.0}).assign(experiment="x"),
                        tidy("logme", {"a": 2.0, "b": 1.0}).assign(experiment="y")])
    transfer = pd.concat([
        pd.concat([transfer_table({"a": 0.6, "b": 0.8}), transfer_table({"a": 0.9, "b": 0.5}, "full")]
                  ).assign(experiment=setup) for setup in ("x", "y")])
    table = picks(scores, transfer, by="experiment")
    assert table.columns.tolist() == ["experiment", *PICK_COLUMNS]
    assert table[["experiment", "regime", "pick", "best", "is_best", "rank"]].values.tolist() == [
        ["x", "head", "b", "b", True, 1], ["x", "full", "b", "a", False, 2],
        ["y", "head", "a", "b", False, 2], ["y", "full", "a", "a", True, 1]]
    only_full = picks(scores, transfer, regime="full", by=["experiment"])
    assert only_full.regime.tolist() == ["full", "full"] and only_full.pick.tolist() == ["b", "a"]


def test_picks_ties_missing_values_and_bad_input():
    # tied performance shares the better rank and counts as the best
    scores = tidy("logme", {"a": 1.0, "b": 2.0, "c": np.nan})
    table = picks(scores, transfer_table({"a": 0.8, "b": 0.8, "c": 0.9}))
    row = table.iloc[0]
    assert (row.pick, row.best, bool(row.is_best), row["rank"], row.num_models) == ("b", "a", True, 1, 2)
    with pytest.raises(ValueError, match="no 'head' performance"):
        picks(tidy("nc", {"a": 1.0, "z": 2.0}), transfer_table({"a": 0.8}))
    with pytest.raises(ValueError, match="regimes"):
        picks(scores, transfer_table({"a": 0.8, "b": 0.8}), regime="full")
    with pytest.raises(ValueError, match="no finite value"):
        picks(tidy("nc", {"a": np.nan}), transfer_table({"a": 0.8}))
    with pytest.raises(ValueError, match="columns"):
        picks(scores.drop(columns="value"), transfer_table({"a": 0.8}))
    with pytest.raises(ValueError, match="REGISTRY"):
        picks(tidy("mystery", {"a": 1.0, "b": 2.0}), transfer_table({"a": 0.8, "b": 0.7}))


def test_score_ranks_within_each_setup():
    evaluation = pd.DataFrame({
        "target": ["t1"] * 3 + ["t2"] * 3, "regime": "head", "measure": "kendall",
        "score": ["nc", "leep", "logme"] * 2, "value": [0.6, 0.2, 0.6, 0.1, 0.9, np.nan]})
    evaluation = pd.concat([evaluation, evaluation.assign(measure="regret", value=[0.0, 0.3, 0.1, 0.2, 0.0, 0.5])])
    ranks = score_ranks(evaluation, "kendall", by=["target", "regime"])
    assert ranks.columns.tolist() == ["target", "regime", "score", "value", "rank"]
    assert ranks[["target", "score", "rank"]].fillna(-1).values.tolist() == [
        ["t1", "logme", 1.0], ["t1", "nc", 1.0], ["t1", "leep", 3.0],
        ["t2", "leep", 1.0], ["t2", "nc", 2.0], ["t2", "logme", -1]]
    # the leader of each setup is the idxmax of a score-indexed pivot (alphabetical on ties)
    pivot = evaluation[evaluation.measure == "kendall"].pivot(index="score", columns="target", values="value")
    leaders = ranks[ranks["rank"] == 1].groupby("target").score.first()
    assert leaders.to_dict() == pivot.idxmax().to_dict() == {"t1": "logme", "t2": "leep"}
    # regret: smaller is better; a subset of scores; no setup column
    regret = score_ranks(evaluation[evaluation.target == "t1"], "regret", by=None, scores=["nc", "leep"])
    assert regret[["score", "rank"]].values.tolist() == [["nc", 1.0], ["leep", 2.0]]
    with pytest.raises(ValueError, match="no 'pearson' rows"):
        score_ranks(evaluation, "pearson")
    with pytest.raises(ValueError, match="columns"):
        score_ranks(evaluation.drop(columns="regime"), "kendall")
