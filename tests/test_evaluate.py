"""Evaluation measures, oriented by each score's declared direction."""

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nclib.evaluate import evaluate_run, evaluate_scores, ranking_measures

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
