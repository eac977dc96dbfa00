"""Does a probabilistic score add to a discriminability score? (nclib.added_value)"""

import itertools

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from nclib.added_value import (
    COLUMNS, Setup, added_value_statistic, added_value_test, combined_ranking, holm, setups_from_means,
    setups_from_predictions,
)
from nclib.transfer import score_predictions
from nclib.uncertainty import exact_permutation_p_value, resampled_performance

DIRECTIONS = {"p": True, "d": True}


def _scores(models, p, d):
    return pd.DataFrame({"model": list(models) * 2, "score": ["p"] * len(models) + ["d"] * len(models),
                         "value": list(p) + list(d)})


def _setup(p, d, y, resamples=None, group=None):
    models = [f"m{i}" for i in range(len(y))]
    frame = None if resamples is None else pd.DataFrame(resamples, columns=models)
    return Setup(_scores(models, p, d), pd.Series(y, index=models, dtype=float), frame, group)


def _test(setups, **options):
    return added_value_test(setups, ["p"], ["d"], greater_is_better=DIRECTIONS, **options)


# ----------------------------------------------------------------------------- the statistic
def test_gain_is_spearman_difference_with_ties_broken_by_d():
    rng = np.random.default_rng(0)
    for _ in range(20):
        p, d, y = rng.normal(size=(3, 7))
        key = combined_ranking(p, d)
        # the combination orders by the rank sum, then by D
        order = np.lexsort((stats.rankdata(d), stats.rankdata(p) + stats.rankdata(d)))
        assert np.array_equal(np.argsort(key, kind="stable"), order)
        expected = stats.spearmanr(key, y)[0] - stats.spearmanr(d, y)[0]
        assert added_value_statistic(p, d, y)[0] == pytest.approx(expected, abs=1e-12)
        expected = stats.kendalltau(key, y)[0] - stats.kendalltau(d, y)[0]
        assert added_value_statistic(p, d, y, "kendall")[0] == pytest.approx(expected, abs=1e-12)


def test_monotone_transform_and_reversal_add_exactly_nothing():
    rng = np.random.default_rng(1)
    d = rng.normal(size=6)
    Y = rng.normal(size=(50, 6))
    for p in (np.exp(d), 3 * d + 1, -d):  # -d reverses D: every rank sum ties, D decides
        for measure in ("spearman", "kendall", "weighted_tau"):
            assert np.array_equal(added_value_statistic(p, d, Y, measure), np.zeros(50))


# ----------------------------------------------------------------------------- known answers
def test_information_only_the_probabilistic_score_has_is_found():
    # performance is a function of P; D orders the pool at random
    rng = np.random.default_rng(2)
    setups = {}
    for k in range(6):
        p = rng.normal(size=6)
        y = 0.7 + 0.05 * np.tanh(p)
        d = rng.permutation(6).astype(float)
        resamples = y + 0.002 * rng.normal(size=(300, 6))
        setups[f"t{k}"] = _setup(p, d, y, resamples)
    table = _test(setups)
    assert list(table.columns) == COLUMNS
    per_setup = table[table.setup != "pooled"]
    assert (per_setup.statistic > 0).all() and (per_setup.corr_probabilistic == 1).all()
    pooled = table[table.setup == "pooled"].iloc[0]
    assert pooled.units == 6 and pooled.statistic > 0.3
    assert pooled.p_value < 1e-3 and pooled.low > 0 and pooled.verdict == "adds"


def test_a_transform_of_the_discriminability_score_adds_nothing():
    rng = np.random.default_rng(3)
    setups = {}
    for k in range(5):
        d = rng.normal(size=6)
        y = 0.6 + 0.1 * rng.random(6)
        setups[f"t{k}"] = _setup(np.exp(2 * d), d, y, y + 0.01 * rng.normal(size=(100, 6)))
    table = _test(setups)
    assert (table.statistic == 0).all() and (table.low == 0).all() and (table.high == 0).all()
    assert (table.p_value == 1).all() and (table.verdict == "no evidence").all()


# Three models, D = (1, 2, 3), P = (3, 1, 2): rank sums (4, 3, 5), so the combination ranks
# the models (2, 1, 3); it differs from D on the pair (m0, m1) alone. For Spearman with three
# models, rho = (12 / 24) sum (x - 2)(r - 2), so the gain is (1/2) (r0 - r1) for performance
# ranks r. Over the six orderings r0 - r1 takes -1, -2, 1, -1, 2, 1: the gain is uniform on
# {-1, -1/2, -1/2, 1/2, 1/2, 1}.
HAND_P, HAND_D = (3.0, 1.0, 2.0), (1.0, 2.0, 3.0)
Y_A = (0.3, 0.1, 0.2)  # ranks (3, 1, 2): gain 1
Y_B = (0.2, 0.1, 0.3)  # ranks (2, 1, 3): gain 1/2


def test_pooled_p_value_is_exact_by_hand():
    # independent setups: the 36 pairs of gains with a sum >= 3/2 are (1, 1/2) x 2,
    # (1/2, 1) x 2 and (1, 1): p = 5/36
    table = _test({"a": _setup(HAND_P, HAND_D, Y_A), "b": _setup(HAND_P, HAND_D, Y_B)})
    rows = table.set_index("setup")
    assert rows.loc["a", "statistic"] == pytest.approx(1.0) and rows.loc["b", "statistic"] == pytest.approx(0.5)
    assert rows.loc["a", "p_value"] == pytest.approx(1 / 6) and rows.loc["b", "p_value"] == pytest.approx(3 / 6)
    assert rows.loc["pooled", "statistic"] == pytest.approx(0.75)
    assert rows.loc["pooled", "p_value"] == pytest.approx(5 / 36, abs=1e-12)
    # one group (the same ordering for both units): r0 - r1 of (Y_A, Y_B) under the six
    # orderings is (2, 1), (1, -1), (-2, -1), (-1, -2), (-1, 1), (1, 2); sums of the gains
    # 3/2, 0, -3/2, -3/2, 0, 3/2: p = 2/6
    table = _test({"a": _setup(HAND_P, HAND_D, Y_A, group="g"), "b": _setup(HAND_P, HAND_D, Y_B, group="g")})
    assert table.set_index("setup").loc["pooled", "p_value"] == pytest.approx(1 / 3, abs=1e-12)
    # the lower tail of the independent case: only (1, 1) sums to more than 3/2, p = 35/36
    low = _test({"a": _setup(HAND_P, HAND_D, Y_A), "b": _setup(HAND_P, HAND_D, Y_B)}, alternative="less")
    assert low.set_index("setup").loc["pooled", "p_value"] == pytest.approx(35 / 36, abs=1e-12)


def test_pooled_p_value_matches_brute_force_enumeration():
    rng = np.random.default_rng(4)
    shapes = (3, 4, 4)
    setups = {f"s{k}": _setup(rng.normal(size=m), rng.normal(size=m), rng.normal(size=m))
              for k, m in enumerate(shapes)}
    table = _test(setups).set_index("setup")
    gains, nulls = [], []
    for setup in setups.values():
        y = setup.performance.to_numpy()
        p = setup.scores.query("score == 'p'").value.to_numpy()
        d = setup.scores.query("score == 'd'").value.to_numpy()
        key = combined_ranking(p, d)

        def gain(v, key=key, d=d):
            return stats.spearmanr(key, v)[0] - stats.spearmanr(d, v)[0]

        gains.append(gain(y))
        nulls.append([gain(y[list(order)]) for order in itertools.permutations(range(len(y)))])
    observed = sum(gains)
    hits = sum(sum(combo) >= observed - 1e-9 for combo in itertools.product(*nulls))
    assert table.loc["pooled", "p_value"] == pytest.approx(hits / (6 * 24 * 24), abs=1e-12)
    for name, setup in setups.items():  # per setup: the exact test of nclib.uncertainty
        p = setup.scores.query("score == 'p'").value.to_numpy()
        d = setup.scores.query("score == 'd'").value.to_numpy()
        expected = exact_permutation_p_value(d, setup.performance.to_numpy(),
                                             lambda x, Y, p=p: added_value_statistic(p, x, Y))
        assert table.loc[name, "p_value"] == pytest.approx(expected, abs=1e-12)


def test_a_noisier_copy_of_the_discriminability_score_is_rarely_called_useful():
    # the composite null: P = D + noise carries nothing about performance beyond D
    rng = np.random.default_rng(5)
    rejected = 0
    for k in range(150):
        d = rng.normal(size=6)
        table = _test({"t": _setup(d + 0.7 * rng.normal(size=6), d, d + 0.7 * rng.normal(size=6))}, pooled=False)
        rejected += table.p_value.iloc[0] <= 0.05
    assert rejected / 150 <= 0.05


def test_monte_carlo_beyond_eight_models_is_seeded():
    rng = np.random.default_rng(6)
    p, d = rng.normal(size=(2, 9))
    setups = {"big": _setup(p, d, p + 0.1 * rng.normal(size=9)), "small": _setup(p[:5], d[:5], p[:5])}
    first = _test(setups, num_permutations=500, random_state=3)
    again = _test(setups, num_permutations=500, random_state=3)
    pd.testing.assert_frame_equal(first, again)
    big = first.set_index("setup").loc["big", "p_value"]
    assert 1 / 501 <= big < 0.05  # Phipson and Smyth: never zero


def test_holm_and_verdicts_per_family():
    assert holm([0.01, 0.04, 0.03]).tolist() == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.001]).tolist() == pytest.approx([0.5, 0.002])
    assert np.isnan(holm([np.nan])).all()
    # two probabilistic scores against one D: Holm runs over both pairs of a setup
    rng = np.random.default_rng(7)
    y = np.arange(6.0)
    d = rng.permutation(6).astype(float)
    models = [f"m{i}" for i in range(6)]
    scores = pd.DataFrame({"model": models * 3, "score": ["p"] * 6 + ["q"] * 6 + ["d"] * 6,
                           "value": list(y) + list(rng.normal(size=6)) + list(d)})
    table = added_value_test({"t": Setup(scores, pd.Series(y, index=models))}, ["p", "q"], ["d"],
                             greater_is_better={"p": True, "q": True, "d": True}, pooled=False)
    assert table.p_holm.tolist() == pytest.approx(holm(table.p_value).tolist())


def test_setups_from_predictions_pair_the_regimes_and_reuse_the_bootstrap():
    rng = np.random.default_rng(8)
    labels = np.repeat([0, 1], 60)
    preds = {(m, r, s): np.eye(2)[np.where(rng.random(120) < acc, labels, 1 - labels)]
             for m, acc in zip("abcd", [0.55, 0.65, 0.75, 0.9]) for r in ("head", "full") for s in (0, 1)}
    transfer = pd.DataFrame([(m, r, s, "accuracy", score_predictions("accuracy", labels, p))
                             for (m, r, s), p in preds.items()], columns=["model", "regime", "seed", "metric", "value"])
    scores = _scores("abcd", [1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 4.0, 3.0])
    setups = setups_from_predictions("toy", scores, transfer, preds, labels, "accuracy", num_resamples=80,
                                     random_state=2)
    assert list(setups) == ["toy · head", "toy · full"] and {s.group for s in setups.values()} == {"toy"}
    boot = resampled_performance(preds, labels, "accuracy", num_resamples=80, random_state=2)
    pd.testing.assert_frame_equal(setups["toy · full"].resamples, boot["full"])
    table = _test(setups).set_index("setup")
    assert table.loc["pooled", "units"] == 2 and np.isfinite(table.loc["pooled", ["low", "high"]]).all()
    means = setups_from_means("toy", scores, transfer)
    assert means["toy · head"].performance.to_dict() == pytest.approx(setups["toy · head"].performance.to_dict())
    assert means["toy · head"].resamples is None


@pytest.mark.parametrize("change, message", [
    (lambda s: {"t": _setup((1, 2), (2, 1), (0.1, 0.2))}, "at least three models"),
    (lambda s: {"t": _setup((1, 2, 3), (2, 1, 3), (0.1, 0.1, 0.1))}, "not constant"),
    (lambda s: {"t": Setup(s.scores[s.scores.model != "m0"], s.performance)}, "no scores for models"),
    (lambda s: {"t": Setup(s.scores, s.performance, pd.DataFrame({"m0": [0.1]}))}, "resamples lack"),
    (lambda s: {"a": s, "b": _setup((1, 2, 3, 4), (2, 1, 3, 4), (0.1, 0.2, 0.3, 0.4), group="g"),
                "c": _setup((1, 2, 3), (2, 1, 3), (0.1, 0.2, 0.3), group="g")}, "same models"),
    (lambda s: {}, "non-empty"),
    (lambda s: {"pooled": s}, "names the pooled rows"),
])
def test_bad_setups_are_named(change, message):
    base = _setup((1.0, 2.0, 3.0), (2.0, 1.0, 3.0), (0.1, 0.2, 0.3))
    with pytest.raises(ValueError, match=message):
        _test(change(base))


def test_bad_options_are_named():
    setups = {"t": _setup((1.0, 2.0, 3.0), (2.0, 1.0, 3.0), (0.1, 0.2, 0.3))}
    with pytest.raises(ValueError, match="measure"):
        _test(setups, measure="pearson")
    with pytest.raises(ValueError, match="alternative"):
        _test(setups, alternative="bigger")
    with pytest.raises(ValueError, match="both probabilistic and discriminability"):
        added_value_test(setups, ["p"], ["p"], greater_is_better=DIRECTIONS)
    with pytest.raises(ValueError, match="no setup holds"):
        added_value_test(setups, ["leep"], ["d"], greater_is_better=DIRECTIONS)
