"""NC and LEEP: hand-computed cases, invariances, variants and the registry."""

import numpy as np
import pytest

from nclib import REGISTRY, compute_scores, leep_score, nc_score


# ---- NC ---------------------------------------------------------------------------

def test_nc_hand_computed_three_classes_in_the_plane():
    # class a: (0,0),(2,0) mean (1,0) spread 1; b: (10,0),(10,4) mean (10,2) spread 2;
    # c: (0,9),(0,11),(0,10) mean (0,10) spread 2/3.
    features = [[0, 0], [2, 0], [10, 0], [10, 4], [0, 9], [0, 11], [0, 10]]
    labels = ["a", "a", "b", "b", "c", "c", "c"]
    pairs = np.hypot(9, 2) + np.hypot(1, 10) + np.hypot(10, 8)
    assert nc_score(features, labels) == pytest.approx((1 + 2 + 2 / 3) / pairs)
    # reference variant: sample-weighted mean spread over the mean pair distance
    assert nc_score(features, labels, variant="reference") == pytest.approx(
        ((1 + 1 + 2 + 2 + 1 + 1 + 0) / 7) / (pairs / 3)
    )


def test_nc_variants_agree_up_to_a_constant_on_balanced_classes():
    rng = np.random.default_rng(0)
    for num_classes in (2, 3, 5):
        labels = np.repeat(np.arange(num_classes), 40)
        features = rng.normal(size=(len(labels), 6)) + rng.normal(size=(num_classes, 6))[labels]
        ratio = nc_score(features, labels) / nc_score(features, labels, variant="reference")
        assert ratio == pytest.approx(2 / (num_classes - 1))


def test_nc_variants_can_disagree_on_imbalanced_classes():
    # Model A: the big class is tight, the small class diffuse; model B the reverse.
    labels = np.array([0] * 90 + [1] * 10)
    spread = np.r_[np.full(90, 0.1), np.full(10, 3.0)]
    a = np.c_[labels * 5.0 + spread * np.tile([1, -1], 50), np.zeros(100)]
    spread_b = np.r_[np.full(90, 1.0), np.full(10, 0.1)]
    b = np.c_[labels * 5.0 + spread_b * np.tile([1, -1], 50), np.zeros(100)]
    paper = nc_score(a, labels) < nc_score(b, labels)
    reference = nc_score(a, labels, variant="reference") < nc_score(b, labels, variant="reference")
    assert paper != reference


@pytest.mark.parametrize("variant", ["paper", "reference"])
def test_nc_invariances(variant):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 200)
    features = rng.normal(size=(200, 8)) + 2 * np.eye(4, 8)[labels]
    base = nc_score(features, labels, variant=variant)
    assert nc_score(7.5 * features, labels, variant=variant) == pytest.approx(base, rel=1e-12)
    assert nc_score(features + 1e3, labels, variant=variant) == pytest.approx(base, rel=1e-9)
    rotation, _ = np.linalg.qr(rng.normal(size=(8, 8)))
    assert nc_score(features @ rotation, labels, variant=variant) == pytest.approx(base, rel=1e-10)
    renamed = np.array(["z", "q", "m", "b"])[labels]
    assert nc_score(features, renamed, variant=variant) == pytest.approx(base, rel=1e-12)
    permutation = rng.permutation(200)
    assert nc_score(features[permutation], labels[permutation], variant=variant) == pytest.approx(base)


def test_nc_is_lower_for_collapsed_classes_and_positive():
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1, 2], 30)
    means = 5 * np.eye(3, 4)[labels]
    tight = means + 0.1 * rng.normal(size=(90, 4))
    loose = means + 2.0 * rng.normal(size=(90, 4))
    assert 0 < nc_score(tight, labels) < nc_score(loose, labels)


def test_nc_float32_matches_float64():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 10, 2000)
    features = rng.normal(size=(2000, 64)) + np.eye(10, 64)[labels]
    assert nc_score(features.astype(np.float32), labels) == pytest.approx(nc_score(features, labels), abs=1e-4)


def test_nc_refuses_singleton_classes_and_coinciding_means():
    with pytest.raises(ValueError, match="class 'b' has 1"):
        nc_score([[0.0], [1.0], [5.0]], ["a", "a", "b"])
    with pytest.raises(ValueError, match="coincide"):
        nc_score([[0.0], [1.0], [1.0], [0.0]], [0, 0, 1, 1])
    with pytest.raises(ValueError, match="variant"):
        nc_score([[0.0], [1.0], [5.0], [6.0]], [0, 0, 1, 1], variant="demo")


# ---- LEEP -------------------------------------------------------------------------

def test_leep_of_perfect_one_to_one_predictions_is_zero():
    # source class z -> target class: 0 -> "b", 1 -> "c", 2 -> "a" (any permutation)
    source = np.eye(3)[[0, 1, 2, 0, 1, 2, 2]]
    labels = ["b", "c", "a", "b", "c", "a", "a"]
    assert leep_score(source, labels) == 0.0


def test_leep_hand_computed():
    # N = 2, Z = 2. theta_1 = (0.8, 0.2) label 0; theta_2 = (0.4, 0.6) label 1.
    # joint P(y=0,z) = (0.4, 0.1), P(y=1,z) = (0.2, 0.3); P(z) = (0.6, 0.4)
    # P(y=0|z) = (2/3, 1/4), P(y=1|z) = (1/3, 3/4)
    # p1 = 0.8*2/3 + 0.2*1/4 = 0.58333; p2 = 0.4*1/3 + 0.6*3/4 = 0.58333
    probs = [[0.8, 0.2], [0.4, 0.6]]
    expected_p = 0.8 * 2 / 3 + 0.2 / 4
    assert leep_score(probs, [0, 1]) == pytest.approx(np.log(expected_p))
    assert leep_score(probs, [0, 1], variant="mean") == pytest.approx(expected_p)


def test_leep_is_at_most_zero_and_prefers_informative_sources():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 300)
    informative = 0.1 * rng.dirichlet(np.ones(6), 300) + 0.9 * np.eye(6)[labels * 2]
    random = rng.dirichlet(np.ones(6), 300)
    assert leep_score(random, labels) < leep_score(informative, labels) <= 0


def test_leep_variants_can_rank_differently():
    # 10 samples of class 0, 40 of class 1. Source A is soft but consistent (0.9 / 0.1);
    # source B is hard and mostly right, but sends 3 class-0 samples to the source class
    # of class 1, where P(y=0 | z) = 3/43: the log punishes those three, the mean does not.
    labels = np.array([0] * 10 + [1] * 40)
    soft = np.where(labels[:, None] == 0, [0.9, 0.1], [0.1, 0.9])
    hard = np.eye(2)[np.r_[[0] * 7, [1] * 3, [1] * 40]]
    # by hand: mean of B = (7 + 3 * 3/43 + 40 * 40/43) / 50, A = (10 * 0.6262 + 40 * 0.9064) / 50
    assert leep_score(hard, labels, variant="mean") == pytest.approx((7 + 9 / 43 + 1600 / 43) / 50)
    assert leep_score(hard, labels, variant="mean") > leep_score(soft, labels, variant="mean")
    assert leep_score(hard, labels) < leep_score(soft, labels)


def test_leep_unused_source_classes_are_harmless():
    probs = np.array([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.85, 0.15, 0.0], [0.1, 0.9, 0.0]])
    assert leep_score(probs, [0, 1, 0, 1]) == pytest.approx(leep_score(probs[:, :2], [0, 1, 0, 1]))


def test_leep_float32_probabilities():
    rng = np.random.default_rng(5)
    labels = rng.integers(0, 10, 1000)
    logits = rng.normal(size=(1000, 100)) + 3 * np.eye(10, 100)[labels]
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    assert leep_score(probs.astype(np.float32), labels) == pytest.approx(leep_score(probs, labels), abs=1e-4)


# ---- the registry -----------------------------------------------------------------

def test_registry_declares_direction_needs_and_citation():
    assert REGISTRY["nc"].greater_is_better is False
    assert REGISTRY["leep"].greater_is_better is True
    assert REGISTRY["logme"].greater_is_better is True
    assert REGISTRY["leep"].needs == "source_probs"
    for info in REGISTRY.values():
        assert info.needs in ("features", "source_probs", "features_pool")
        assert info.citation and info.summary and callable(info.function)


def test_registry_citations_are_in_the_bibliography():
    from pathlib import Path

    bib = (Path(__file__).parents[1] / "book" / "references.bib").read_text()
    for info in REGISTRY.values():
        assert f"{{{info.citation}," in bib, info.citation


def test_compute_scores_table_and_needs():
    rng = np.random.default_rng(6)
    labels = np.repeat([0, 1], 20)
    features = {"m1": rng.normal(size=(40, 3)), "m2": rng.normal(size=(40, 5))}
    table = compute_scores(features, labels, names=["nc", "logme"])
    assert list(table.columns) == ["model", "score", "value", "seconds"]
    assert len(table) == 4 and set(table.model) == {"m1", "m2"}
    with pytest.raises(ValueError, match="needs source_probs"):
        compute_scores(features, labels, names=["leep"])
    with pytest.raises(ValueError, match="unknown score"):
        compute_scores(features, labels, names=["nope"])
    with pytest.raises(ValueError, match="no source_probs for models"):
        compute_scores(features, labels, source_probs={"m1": np.full((40, 2), 0.5)}, names=["leep"])


# ---- validation fused into the reductions -------------------------------------------------

@pytest.mark.parametrize("score", [leep_score, nc_score])
def test_the_first_nan_or_inf_is_named_row_major(score):
    rng = np.random.default_rng(9)
    labels = np.repeat([0, 1], 6)
    values = rng.dirichlet(np.ones(4), 12)
    values[7, 0] = np.inf
    values[5, 3] = np.nan  # earlier row, later column: named first
    with pytest.raises(ValueError, match=r"NaN or inf \(first at row 5, column 3\)"):
        score(values, labels)


def test_probability_checks_catch_inf_negative_and_bad_sums_without_a_full_scan():
    from nclib.scores import nce_score

    labels = [0, 1, 1]
    good = np.full((3, 2), 0.5)
    for bad, message in [(np.where([[0, 0], [1, 0], [0, 0]], np.inf, good), "NaN or inf"),
                         (np.where([[0, 0], [0, 0], [0, 1]], -np.inf, good), "negative"),
                         (np.where([[0, 0], [0, 1], [0, 0]], 0.7, good), "row 1 sums to 1.2")]:
        for score in (leep_score, nce_score):
            with pytest.raises(ValueError, match=message):
                score(bad, labels)


def test_leep_renormalises_rows_within_tolerance_without_copying():
    rng = np.random.default_rng(10)
    labels = rng.integers(0, 3, 200)
    probs = rng.dirichlet(np.ones(5), 200)
    drifted = probs * (1 + rng.uniform(-5e-4, 5e-4, size=(200, 1)))  # float32-style drift
    for variant in ("log", "mean"):
        assert leep_score(drifted, labels, variant=variant) == pytest.approx(
            leep_score(probs, labels, variant=variant), rel=1e-12)
