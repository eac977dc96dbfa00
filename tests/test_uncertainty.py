"""Intervals, permutation p-values and ground-truth noise (nclib.uncertainty)."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from sklearn.metrics import roc_auc_score

from nclib.evaluate import evaluate_run, evaluate_scores, ranking_measures
from nclib.scores import leep_score, nce_score
from nclib.transfer import score_predictions
from nclib.uncertainty import (
    DEFAULT_MEASURES, IntervalEvaluation, _weighted_auroc, batch_measures, critical_pearson,
    evaluation_with_intervals, exact_permutation_p_value, model_noise, no_information_value,
    pearson_p_value, pool_summary, pooled_evaluation, ranking_agreement, resampled_performance,
)


# ----------------------------------------------------------------------------- fixtures
def _accuracy_predictions(true_acc, seeds, n_test=1000, num_classes=10, regimes=("head", "full"), seed=0):
    """Predictions whose correctness is Bernoulli(true accuracy), independently per run."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, num_classes, n_test)
    preds = {}
    for model, acc in true_acc.items():
        for regime in regimes:
            for s in (seeds if regime != "head" or len(regimes) == 1 else [0]):
                right = rng.random(n_test) < acc
                wrong = (labels + rng.integers(1, num_classes, n_test)) % num_classes
                predicted = np.where(right, labels, wrong)
                probs = np.full((n_test, num_classes), 0.01)
                probs[np.arange(n_test), predicted] = 0.91
                preds[(model, regime, s)] = probs
    return preds, labels


def _auroc_predictions(separation, seeds, n_test=300, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat([0, 1], n_test // 2)
    preds = {}
    for model, d in separation.items():
        for s in seeds:
            logit = rng.normal(size=n_test) + d * labels
            p1 = 1 / (1 + np.exp(-logit))
            preds[(model, "full", s)] = np.column_stack([1 - p1, p1])
    return preds, labels


def _transfer(preds, labels, metric):
    return pd.DataFrame([(m, r, s, metric, score_predictions(metric, labels, p)) for (m, r, s), p in preds.items()],
                        columns=["model", "regime", "seed", "metric", "value"])


def _scores(models, values, name="logme"):
    return pd.DataFrame({"model": list(models), "score": name, "value": list(values)})


SPACED = {"m0": 0.55, "m1": 0.62, "m2": 0.69, "m3": 0.76, "m4": 0.83, "m5": 0.90}


# ----------------------------------------------------------------------------- p-values
def test_critical_pearson_values():
    assert round(critical_pearson(6), 3) == 0.811
    assert round(critical_pearson(5), 3) == 0.878
    assert round(critical_pearson(10), 3) == 0.632
    for n in (4, 6, 12):
        assert pearson_p_value(critical_pearson(n), n) == pytest.approx(0.05)
        assert pearson_p_value(critical_pearson(n, 0.05, "greater"), n, "greater") == pytest.approx(0.05)


def test_pearson_p_value_matches_scipy():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=7), rng.normal(size=7)
    r, p = stats.pearsonr(x, y)
    assert pearson_p_value(r, 7) == pytest.approx(p)
    assert pearson_p_value(1.0, 6) == 0.0


def test_exact_permutation_perfect_pool_of_six():
    x = np.arange(6.0)
    y = np.linspace(0.1, 0.6, 6)
    assert exact_permutation_p_value(x, y, "kendall") == 1 / 720
    assert exact_permutation_p_value(x, y, "spearman") == 1 / 720
    assert exact_permutation_p_value(x, -y, "kendall", "less") == 1 / 720
    # two-sided: the reversed ordering is as extreme
    assert exact_permutation_p_value(x, y, "kendall", "two-sided") == 2 / 720
    # a callable statistic gives the same
    tau = lambda a, B: np.array([stats.kendalltau(a, b)[0] for b in B])  # noqa: E731
    assert exact_permutation_p_value(x, y, tau) == 1 / 720


def test_exact_permutation_agrees_with_scipy_kendall_exact():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=7), rng.normal(size=7)
    ours = exact_permutation_p_value(x, y, "kendall", "greater")
    ref = stats.kendalltau(x, y, method="exact", alternative="greater").pvalue
    assert ours == pytest.approx(ref)


def test_monte_carlo_beyond_eight_models_is_reproducible():
    x = np.arange(10.0)
    y = x + np.random.default_rng(0).normal(size=10)
    p1 = exact_permutation_p_value(x, y, "spearman", num_permutations=2000, random_state=5)
    p2 = exact_permutation_p_value(x, y, "spearman", num_permutations=2000, random_state=5)
    assert p1 == p2 and 1 / 2001 <= p1 < 0.01


# ----------------------------------------------------------------------------- measures
@pytest.mark.parametrize("trial", range(40))
def test_batch_measures_equal_ranking_measures(trial):
    rng = np.random.default_rng(trial)
    M = int(rng.integers(3, 9))
    x = rng.integers(0, 4, M).astype(float) if trial % 3 == 0 else rng.normal(size=M)
    Y = rng.integers(0, 5, (6, M)).astype(float) if trial % 2 else rng.normal(size=(6, M))
    measures = DEFAULT_MEASURES + ("best_in_top1",)
    batch = batch_measures(x, Y, measures)
    for k, y in enumerate(Y):
        ref = ranking_measures(x, y, True, top_k=(3, 1))
        for name in measures:
            assert batch[name][k] == pytest.approx(ref[name], abs=1e-12, nan_ok=True), name


def test_batch_measures_bad_input():
    with pytest.raises(ValueError, match="unknown measure"):
        batch_measures([1, 2], [[1, 2]], ["accuracy"])
    with pytest.raises(ValueError, match="at least two"):
        batch_measures([1], [[1]], ["kendall"])
    with pytest.raises(ValueError, match="must be"):
        batch_measures([1, 2, 3], [[1, 2]], ["kendall"])


# ----------------------------------------------------------------------------- performance
def test_weighted_auroc_matches_sklearn_on_resampled_data():
    rng = np.random.default_rng(0)
    labels = np.repeat([0, 1], 40)
    scores = np.round(rng.normal(size=80) + labels, 1)  # ties on purpose
    index = rng.integers(0, 80, (5, 80))
    counts = np.stack([np.bincount(i, minlength=80) for i in index]).astype(float)
    ours = _weighted_auroc(scores, labels, counts)
    ref = [roc_auc_score(labels[i], scores[i]) for i in index]
    np.testing.assert_allclose(ours, ref, atol=1e-12)


@pytest.mark.parametrize("metric", ["accuracy", "auroc"])
def test_observed_performance_matches_score_predictions(metric):
    if metric == "accuracy":
        preds, labels = _accuracy_predictions(SPACED, [0, 1], n_test=200, regimes=("full",))
    else:
        preds, labels = _auroc_predictions({"a": 0.5, "b": 1.0, "c": 2.0}, [0, 1, 2])
    transfer = _transfer(preds, labels, metric)
    scores = _scores(transfer.model.unique(), np.arange(transfer.model.nunique(), dtype=float))
    # transfer= checks agreement to 1e-6 and raises otherwise
    evaluation_with_intervals(scores, preds, labels, metric, transfer=transfer, num_resamples=10)
    bad = transfer.assign(value=transfer.value + 0.01)
    with pytest.raises(ValueError, match="disagree"):
        evaluation_with_intervals(scores, preds, labels, metric, transfer=bad, num_resamples=10)


def test_resampling_is_paired_and_reproducible():
    preds, labels = _accuracy_predictions({"a": 0.7, "b": 0.7}, [0, 1, 2], n_test=300, regimes=("full",))
    # model b makes exactly the same predictions as a: paired resamples give identical performance
    for s in range(3):
        preds[("b", "full", s)] = preds[("a", "full", s)]
    one = resampled_performance(preds, labels, "accuracy", num_resamples=50, random_state=3)["full"]
    two = resampled_performance(preds, labels, "accuracy", num_resamples=50, random_state=3)["full"]
    other = resampled_performance(preds, labels, "accuracy", num_resamples=50, random_state=4)["full"]
    pd.testing.assert_frame_equal(one, two)
    assert not one.equals(other)
    np.testing.assert_array_equal(one["a"], one["b"])
    assert one["a"].std() > 0


# ----------------------------------------------------------------------------- evaluation
def test_values_equal_evaluate_run():
    preds, labels = _accuracy_predictions(SPACED, [0, 1, 2], n_test=500)
    transfer = _transfer(preds, labels, "accuracy")
    rng = np.random.default_rng(1)
    scores = pd.concat([_scores(SPACED, rng.normal(size=6), "logme"), _scores(SPACED, rng.normal(size=6), "nc")])
    ours = evaluation_with_intervals(scores, preds, labels, "accuracy", transfer=transfer, num_resamples=50)
    ref = evaluate_run(scores, transfer)
    merged = ours.merge(ref, on=["score", "regime", "measure"], suffixes=("", "_ref"))
    assert len(merged) == len(ref) == len(ours)
    np.testing.assert_array_equal(merged["value"], merged["value_ref"])
    # without transfer=, the observed performance comes from the predictions: equal to 1e-12
    alone = evaluation_with_intervals(scores, preds, labels, "accuracy", num_resamples=50)
    np.testing.assert_allclose(alone["value"], ours["value"], atol=1e-12)
    assert list(ours.columns) == ["score", "regime", "measure", "value", "low", "high", "p_value"]


def test_widely_spaced_models_give_tight_interval_and_small_p():
    preds, labels = _accuracy_predictions(SPACED, [0, 1, 2, 3, 4], n_test=1000)
    scores = _scores(SPACED, [1, 2, 3, 4, 5, 6])
    table = evaluation_with_intervals(scores, preds, labels, "accuracy", num_resamples=300).set_index(
        ["regime", "measure"])
    for regime in ("head", "full"):
        row = table.loc[(regime, "spearman")]
        assert row.value == pytest.approx(1.0) and row.low >= 0.9 and row.high == pytest.approx(1.0)
        assert table.loc[(regime, "kendall")].p_value == 1 / 720
        assert table.loc[(regime, "relative_top1")].p_value == pytest.approx(1 / 6)
        assert table.loc[(regime, "regret")].p_value == pytest.approx(1 / 6)
        assert table.loc[(regime, "abs_pearson")].p_value < 0.01
    # rank measures: the point value lies in the interval; a percentile interval of Pearson
    # may lie just below a near-perfect observed r (resampling noise attenuates it)
    ranks = table[table.index.get_level_values("measure") != "pearson"].drop(index="abs_pearson", level="measure")
    assert (ranks.low <= ranks.value + 1e-12).all() and (ranks.value <= ranks.high + 1e-12).all()


def test_identical_models_give_wide_interval_and_large_p():
    same = {f"m{i}": 0.7 for i in range(6)}
    preds, labels = _accuracy_predictions(same, list(range(5)), n_test=1000, regimes=("full",))
    scores = _scores(same, [1, 2, 3, 4, 5, 6])
    table = evaluation_with_intervals(scores, preds, labels, "accuracy", num_resamples=300).set_index("measure")
    row = table.loc["spearman"]
    assert row.high - row.low > 1.0
    assert row.low < 0 < row.high
    assert table.loc["kendall"].p_value > 0.01


def test_lower_is_better_score_is_oriented():
    preds, labels = _accuracy_predictions(SPACED, [0, 1], n_test=400, regimes=("full",))
    table = evaluation_with_intervals(_scores(SPACED, [6, 5, 4, 3, 2, 1], "nc"), preds, labels, "accuracy",
                                      num_resamples=50).set_index("measure")
    assert table.loc["kendall"].value == pytest.approx(1.0) and table.loc["kendall"].p_value == 1 / 720
    assert table.loc["pearson"].value > 0.9


def test_evaluation_is_reproducible():
    preds, labels = _auroc_predictions({"a": 0.2, "b": 0.5, "c": 0.8, "d": 1.1, "e": 1.4}, [0, 1, 2])
    scores = _scores("abcde", [5, 1, 4, 2, 3])
    one = evaluation_with_intervals(scores, preds, labels, "auroc", num_resamples=100, random_state=7)
    two = evaluation_with_intervals(scores, preds, labels, "auroc", num_resamples=100, random_state=7)
    pd.testing.assert_frame_equal(one, two)


def test_evaluation_bad_input():
    preds, labels = _accuracy_predictions({"a": 0.6, "b": 0.8}, [0, 1], n_test=50, regimes=("full",))
    scores = _scores("ab", [1, 2])
    with pytest.raises(ValueError, match="level"):
        evaluation_with_intervals(scores, preds, labels, "accuracy", level=1.5)
    with pytest.raises(ValueError, match="metric"):
        evaluation_with_intervals(scores, preds, labels, "f1")
    with pytest.raises(ValueError, match="no predictions for models"):
        evaluation_with_intervals(_scores("abc", [1, 2, 3]), preds, labels, "accuracy")
    with pytest.raises(ValueError, match="same seeds"):
        evaluation_with_intervals(scores, {k: v for k, v in preds.items() if k != ("b", "full", 1)},
                                  labels, "accuracy")
    with pytest.raises(ValueError, match="not in REGISTRY"):
        evaluation_with_intervals(_scores("ab", [1, 2], "mystery"), preds, labels, "accuracy")
    with pytest.raises(ValueError, match="shape"):
        evaluation_with_intervals(scores, preds, labels[:10], "accuracy")
    with pytest.raises(ValueError, match="num_resamples"):
        evaluation_with_intervals(scores, preds, labels, "accuracy", num_resamples=0)
    with pytest.raises(ValueError, match="auroc"):
        evaluation_with_intervals(scores, preds, labels, "auroc")
    nan_preds = dict(preds)
    nan_preds[("a", "full", 0)] = np.full_like(preds[("a", "full", 0)], np.nan)
    with pytest.raises(ValueError, match="NaN"):
        evaluation_with_intervals(scores, nan_preds, labels, "accuracy")


# ----------------------------------------------------------------------------- pooling
def _setup(seed, true_acc, values):
    preds, labels = _accuracy_predictions(true_acc, [0, 1], n_test=400, seed=seed)
    return evaluation_with_intervals(_scores(true_acc, values), preds, labels, "accuracy",
                                     measures=["kendall", "regret", "abs_pearson"], num_resamples=100,
                                     random_state=seed, return_draws=True)


def test_pooled_evaluation_single_and_two_setups():
    one = _setup(1, SPACED, [1, 2, 3, 4, 5, 6])
    two = _setup(2, SPACED, [2, 1, 3, 4, 6, 5])
    assert isinstance(one, IntervalEvaluation)
    pooled = pooled_evaluation({"t1": one, "t2": two}, num_permutations=500).set_index("measure")
    by_regime = pooled_evaluation({"t1": one, "t2": two}, by=("score", "regime"), num_permutations=200)
    assert set(by_regime.regime) == {"head", "full"} and (by_regime.units == 2).all()
    expected = pd.concat([one.table, two.table]).groupby("measure").value.mean()
    for measure in ("kendall", "regret", "abs_pearson"):
        assert pooled.loc[measure].value == pytest.approx(expected[measure])
        assert pooled.loc[measure].units == 4
        assert pooled.loc[measure].low <= pooled.loc[measure].value <= pooled.loc[measure].high
    assert pooled.loc["kendall"].p_value < 0.01
    # one setup alone: the pooled interval is that setup's regimes averaged draw by draw
    alone = pooled_evaluation({"t1": one}, by=("score", "regime"), num_permutations=200)
    row = alone[(alone.regime == "full") & (alone.measure == "kendall")].iloc[0]
    ref = one.table[(one.table.regime == "full") & (one.table.measure == "kendall")].iloc[0]
    assert (row.value, row.low, row.high) == pytest.approx((ref.value, ref.low, ref.high))


def test_pooled_evaluation_of_uninformative_scores_is_not_significant():
    same = {f"m{i}": 0.7 for i in range(5)}
    evals = {f"t{k}": _setup(k, same, np.random.default_rng(k).normal(size=5)) for k in range(3)}
    pooled = pooled_evaluation(evals, num_permutations=500).set_index("measure")
    assert pooled.loc["kendall"].p_value > 0.05
    with pytest.raises(ValueError, match="IntervalEvaluation"):
        pooled_evaluation({"t": evals["t0"].table})
    with pytest.raises(ValueError, match="by"):
        pooled_evaluation(evals, by=("regime",))


# ----------------------------------------------------------------------------- ground truth
def test_model_noise_accuracy_and_auroc():
    preds, labels = _accuracy_predictions(SPACED, [0, 1, 2], n_test=800)
    transfer = _transfer(preds, labels, "accuracy")
    noise = model_noise(transfer, preds, labels, "accuracy").set_index(["model", "regime"])
    row = noise.loc[("m5", "full")]
    values = transfer.query("model == 'm5' and regime == 'full'").value
    assert row.num_seeds == 3 and row["mean"] == pytest.approx(values.mean())
    assert row.seed_sd == pytest.approx(values.std(ddof=1))
    assert row.test_se == pytest.approx(math.sqrt(row["mean"] * (1 - row["mean"]) / 800))
    assert np.isnan(noise.loc[("m5", "head")].seed_sd)  # a single seed

    apreds, alabels = _auroc_predictions({"a": 0.5, "b": 1.5}, [0, 1])
    atransfer = _transfer(apreds, alabels, "auroc")
    anoise = model_noise(atransfer, apreds, alabels, "auroc", num_resamples=400)
    # the AUROC standard error of 150 + 150 examples is a few hundredths (Hanley & McNeil 1982)
    assert ((anoise.test_se > 0.01) & (anoise.test_se < 0.06)).all()
    with pytest.raises(ValueError, match="predictions"):
        model_noise(atransfer, None, alabels, "auroc")


def test_pool_summary():
    preds, labels = _accuracy_predictions(SPACED, [0, 1, 2], n_test=1000)
    transfer = _transfer(preds, labels, "accuracy")
    summary = pool_summary(transfer, preds, labels, "accuracy", num_resamples=200).set_index("regime")
    assert summary.loc["full", "best_model"] == "m5"
    assert summary.loc["full", "prob_best"] == 1.0
    assert summary.loc["full", "range"] > 10 * summary.loc["full", "test_se"]
    close = dict(SPACED, m4=0.9)
    preds, labels = _accuracy_predictions(close, [0, 1, 2], n_test=1000)
    summary = pool_summary(_transfer(preds, labels, "accuracy"), preds, labels, "accuracy",
                           num_resamples=200).set_index("regime")
    assert 0.1 < summary.loc["full", "prob_best"] < 0.95
    assert summary.loc["full", "top_gap"] < 2 * summary.loc["full", "test_se"]


def test_ranking_agreement():
    preds, labels = _accuracy_predictions(SPACED, [0, 1, 2], n_test=1000)
    transfer = _transfer(preds, labels, "accuracy")
    table = ranking_agreement(transfer, preds, labels, "accuracy", num_resamples=200,
                              measures=("kendall", "spearman", "weighted_tau")).set_index("measure")
    assert table.loc["kendall"].value == pytest.approx(1.0) and table.loc["kendall"].p_value == 1 / 720
    assert table.loc["kendall"].low > 0.5
    ref = stats.weightedtau(*[transfer.query(f"regime == '{r}'").groupby("model").value.mean() for r in
                              ("head", "full")])[0]
    assert table.loc["weighted_tau"].value == pytest.approx(ref)
    with pytest.raises(ValueError, match="differ"):
        ranking_agreement(transfer, preds, labels, "accuracy", "full", "full")
    with pytest.raises(ValueError, match="supports"):
        ranking_agreement(transfer, preds, labels, "accuracy", measures=("regret",))


# ----------------------------------------------------------------------------- baselines
def test_no_information_value_leep_and_nce():
    labels = np.array([0, 0, 0, 1, 1, 2])
    prior = np.array([3, 2, 1]) / 6
    expected = float(np.sum(prior * np.log(prior)))
    flat = np.full((6, 4), 0.25)
    assert no_information_value("leep", labels) == pytest.approx(expected)
    assert leep_score(flat, labels) == pytest.approx(expected)
    assert nce_score(flat, labels) == pytest.approx(no_information_value("nce", labels))
    assert np.isnan(no_information_value("nc", labels))
    with pytest.raises(ValueError, match="unknown score"):
        no_information_value("nope", labels)
    with pytest.raises(ValueError, match="labels"):
        no_information_value("leep", [])


def test_evaluate_scores_unchanged_by_import():
    # sanity: nclib.uncertainty reuses evaluate without altering it
    s = _scores("abc", [1.0, 2.0, 3.0])
    assert evaluate_scores(s, {"a": 0.1, "b": 0.2, "c": 0.3}).query("measure == 'kendall'").value.iloc[0] == 1.0
