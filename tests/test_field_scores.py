"""Tests of the field's transferability scores (nclib.scores beyond NC, LEEP and LogME).

Expected values are worked out by hand on tiny arrays (the arithmetic is in the
comments) or computed independently (scikit-learn's Ledoit-Wolf, explicit
log-determinants, a scalar re-derivation of SFDA); none is copied from the code's output.
"""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import numpy as np
import pytest
from scipy.special import expit

from nclib.scores import (REGISTRY, compute_scores, etran_score, gbc_score, h_score, knn_score,
                          leep_score, linear_probe_score, nce_score, ncti_score, nleep_score,
                          pactran_score, sfda_score, shrinkage_h_score, transrate_score)
from nclib.scores.etran import etran_terms
from nclib.scores.hscore import ledoit_wolf
from nclib.scores.knn import _vote, stratified_subsample
from nclib.scores.ncti import ncti_terms, normalise_across_pool
from nclib.scores.nleep import principal_components
from nclib.scores.transrate import coding_rate

BIB = Path(__file__).resolve().parents[1] / "book" / "references.bib"
NEW_SCORES = ["nce", "hscore", "shrinkage_hscore", "nleep", "gbc", "transrate", "sfda", "pactran",
              "ncti", "etran", "knn", "linear_probe"]
LINE = [[0.0], [2.0], [4.0], [6.0]]  # classes {0, 2} and {4, 6}: within variance 1, total 5
LINE_LABELS = ["a", "a", "b", "b"]


def gaussian_classes(separation, num_per_class=30, num_classes=3, dim=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(num_classes), num_per_class)
    features = rng.normal(size=(len(labels), dim)) + separation * np.eye(num_classes, dim)[labels]
    return features, labels


def call(name, features, labels, **options):
    """Call a registry score on one model's features (pool scores get a pool of one)."""
    info = REGISTRY[name]
    if info.pool_level:
        return info.function([features], labels, **options)[0]
    return info.function(features, labels, **options)


# --------------------------------------------------------------------------- NCE
def test_nce_hand_computed():
    # source argmax: 0, 0, 1, 1; target a, a, a, b -> H(Y|Z) = 1/2 * 0 + 1/2 * log 2
    probs = [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.4, 0.6]]
    assert nce_score(probs, ["a", "a", "a", "b"]) == pytest.approx(-0.5 * np.log(2))


def test_nce_perfect_and_uninformative_sources():
    labels = ["x", "y", "x", "z"]
    one_to_one = np.eye(3)[[0, 1, 0, 2]]
    assert nce_score(one_to_one, labels) == 0.0
    # every sample predicted as source class 1 -> NCE = -H(Y) with P(Y) = (1/2, 1/4, 1/4)
    constant = np.tile([0.2, 0.5, 0.3], (4, 1))
    assert nce_score(constant, labels) == pytest.approx(0.5 * np.log(0.5) + 0.5 * np.log(0.25))


def test_nce_ties_go_to_the_first_source_class():
    # rows 0 and 1 tie -> source class 0 for both: the pair (a, b) is a coin flip
    assert nce_score([[0.5, 0.5], [0.5, 0.5], [0.0, 1.0]], ["a", "b", "b"]) == pytest.approx(
        (2 / 3) * np.log(0.5))


# --------------------------------------------------------------------------- H-scores
def test_h_score_hand_computed():
    # between-class variance ((1-3)^2 + (5-3)^2) / 2 = 4 over total variance 5
    assert h_score(LINE, LINE_LABELS) == pytest.approx(0.8)


def test_h_score_is_invariant_to_invertible_linear_maps():
    features, labels = gaussian_classes(1.5, dim=4)
    mixing = np.random.default_rng(1).normal(size=(4, 4)) + 3 * np.eye(4)
    assert h_score(features @ mixing, labels) == pytest.approx(h_score(features, labels), rel=1e-8)


def test_h_score_pseudo_inverse_ignores_duplicated_and_constant_columns():
    features, labels = gaussian_classes(1.5, dim=4)
    padded = np.column_stack([features, features[:, 0], np.full(len(labels), 7.0)])
    assert h_score(padded, labels) == pytest.approx(h_score(features, labels), rel=1e-8)


def test_ledoit_wolf_matches_scikit_learn():
    from sklearn.covariance import ledoit_wolf as sklearn_ledoit_wolf

    features = np.random.default_rng(3).normal(size=(30, 8)) @ np.diag(np.arange(1.0, 9.0))
    covariance, shrinkage = ledoit_wolf(features)
    expected_cov, expected_shrinkage = sklearn_ledoit_wolf(features)
    assert shrinkage == pytest.approx(expected_shrinkage, rel=1e-10)
    np.testing.assert_allclose(covariance, expected_cov, rtol=1e-10)


def test_shrinkage_h_score_against_an_independent_formula():
    from sklearn.covariance import ledoit_wolf as sklearn_ledoit_wolf

    features, labels = gaussian_classes(1.0, num_per_class=5, dim=10)  # N = 15, D = 10
    covariance, shrinkage = sklearn_ledoit_wolf(features)
    centred_means = np.array([features[labels == c].mean(0) for c in range(3)]) - features.mean(0)
    between = sum((1 / 3) * np.outer(m, m) for m in centred_means)
    expected = np.trace(np.linalg.solve(covariance, (1 - shrinkage) * between))
    assert shrinkage_h_score(features, labels) == pytest.approx(expected, rel=1e-8)


def test_shrinkage_h_score_equals_h_score_in_one_dimension():
    assert shrinkage_h_score(LINE, LINE_LABELS) == pytest.approx(0.8)


# --------------------------------------------------------------------------- GBC
def test_gbc_hand_computed():
    # unit class variances, means 1 and 5: D_B = 4^2 / 8 = 2, two ordered pairs
    assert gbc_score(LINE, LINE_LABELS) == pytest.approx(-2 * np.exp(-2))


@pytest.mark.parametrize("variant", ["diagonal", "spherical"])
def test_gbc_log_determinant_term_counts_every_dimension(variant):
    # same means; class variances 1 and 9 in both of D = 2 dimensions:
    # D_B = 2 * 1/2 * log((1 + 9) / 2 / sqrt(1 * 9)) = log(5 / 3), BC = 3 / 5
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [1.0, -1.0], [-1.0, 1.0]])
    features = np.vstack([corners, 3 * corners])
    labels = ["a"] * 4 + ["b"] * 4
    assert gbc_score(features, labels, variant=variant) == pytest.approx(-2 * 0.6)


def test_gbc_is_invariant_to_uniform_scaling():
    features, labels = gaussian_classes(1.0)
    assert gbc_score(1000 * features, labels) == pytest.approx(gbc_score(features, labels), rel=1e-10)


# --------------------------------------------------------------------------- TransRate
def test_transrate_hand_computed():
    # centred values -2 | 1, 1 with eps = 1: R = log(1 + 6/3)/2, R_a = log(1 + 4)/2, R_b = log(1 + 2/2)/2
    value = transrate_score([[-1.0], [2.0], [2.0]], ["a", "b", "b"], eps=1.0)  # mean 1, so centred as above
    assert value == pytest.approx(0.5 * np.log(3) - 0.25 * (np.log(5) + np.log(2)))


@pytest.mark.parametrize("num_samples", [5, 40])  # N < D and N > D take different code paths
def test_transrate_matches_explicit_log_determinants(num_samples):
    rng = np.random.default_rng(4)
    features = rng.normal(size=(num_samples, 8))
    labels = np.arange(num_samples) % 2
    eps = 0.1

    def rate(rows):
        return 0.5 * np.linalg.slogdet(np.eye(8) + rows.T @ rows / (len(rows) * eps))[1]

    centred = features - features.mean(0)
    expected = rate(centred) - 0.5 * (rate(centred[labels == 0]) + rate(centred[labels == 1]))
    assert transrate_score(features, labels, eps=eps) == pytest.approx(expected, rel=1e-10)
    assert coding_rate(centred, eps) == pytest.approx(rate(centred), rel=1e-10)


# --------------------------------------------------------------------------- SFDA
def _softmax(logits):
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _sfda_one_dimension(values, codes):
    """SFDA re-derived with scalars: in one dimension the shrunk covariance is the
    within-class variance itself, whatever the shrinkage."""
    num_classes = codes.max() + 1
    priors = np.bincount(codes) / len(codes)

    def posteriors(x):
        means = np.array([x[codes == c].mean() for c in range(num_classes)])
        variance = np.mean((x - means[codes]) ** 2)
        logits = x[:, None] * means / variance - 0.5 * means**2 / variance + np.log(priors)
        return _softmax(logits), means

    first, means = posteriors(values)
    confidence = _softmax(first)[np.arange(len(codes)), codes]
    outer = (means.sum() - means) / (num_classes - 1)
    mixed = confidence * values + (1 - confidence) * outer[codes]
    second, _ = posteriors(mixed)
    return np.mean(second[np.arange(len(codes)), codes])


def test_sfda_matches_a_scalar_rederivation():
    values = np.array([0.0, 1.0, 2.5, 3.0, 4.0, 4.5, 6.0, 7.5, 8.0])
    codes = np.repeat([0, 1, 2], 3)
    assert sfda_score(values[:, None], codes) == pytest.approx(_sfda_one_dimension(values, codes), rel=1e-10)


def test_sfda_is_translation_invariant():
    features, labels = gaussian_classes(1.0)
    assert sfda_score(features + 1e3, labels) == pytest.approx(sfda_score(features, labels), rel=1e-7)


# --------------------------------------------------------------------------- PACTran
@pytest.mark.parametrize("lda_factor, curvature_ratio", [(1.0, 2.5), (10.0, 16.0)])
def test_pactran_on_uninformative_features(lda_factor, curvature_ratio):
    # zero features: W* = 0, b* = log priors, loss = H(Y); with N = 4, D = C = 2,
    # sigma0^2 = 4 lda_factor: h sigma0^2 / K = 1 + sigma0^2 N sum_c p_c(1 - p_c) / K
    # = 1 + 4 lda_factor * 4 * 0.375 / 4, and the penalty factor K s^2 / (2 sigma0^2) = 50 C / N = 25
    entropy = -(0.75 * np.log(0.75) + 0.25 * np.log(0.25))
    value = pactran_score(np.zeros((4, 2)), ["a", "a", "a", "b"], lda_factor=lda_factor, tol=1e-12)
    assert value == pytest.approx(entropy + 25 * np.log(curvature_ratio), abs=1e-6)


# --------------------------------------------------------------------------- NLEEP
def test_nleep_of_clean_clusters_is_near_its_maximum():
    features, labels = gaussian_classes(30.0, num_per_class=20, num_classes=2, dim=3)
    assert -1e-6 < nleep_score(features, labels, components_per_class=1) <= 0.0
    assert nleep_score(features, labels, components_per_class=1, variant="mean") == pytest.approx(1.0, abs=1e-6)


def test_nleep_equals_leep_of_an_independently_fitted_mixture():
    from sklearn.decomposition import PCA
    from sklearn.mixture import GaussianMixture

    features, labels = gaussian_classes(2.0, num_per_class=25, num_classes=2, dim=5)
    reduced = PCA(n_components=0.8, svd_solver="full").fit_transform(features)
    posteriors = GaussianMixture(n_components=4, random_state=0).fit(reduced).predict_proba(reduced)
    for variant in ("log", "mean"):
        expected = leep_score(posteriors, labels, variant=variant)
        value = nleep_score(features, labels, components_per_class=2, max_dim=None, max_samples=None,
                            variant=variant)
        assert value == pytest.approx(expected, rel=1e-6)


def test_nleep_is_deterministic_and_checks_the_component_count():
    features, labels = gaussian_classes(1.0)
    assert nleep_score(features, labels) == nleep_score(features, labels)
    with pytest.raises(ValueError, match="mixture components"):
        nleep_score(features[:12], np.arange(12) % 2, components_per_class=7)  # 14 components


def test_principal_components_match_the_singular_values():
    features = np.random.default_rng(5).normal(size=(20, 4)) * [3.0, 2.0, 1.0, 0.5]
    variances, directions, mean = principal_components(features)
    singular = np.linalg.svd(features - features.mean(0), compute_uv=False)
    np.testing.assert_allclose(variances, singular**2 / 19, rtol=1e-10)
    np.testing.assert_allclose(directions.T @ directions, np.eye(4), atol=1e-10)
    kept, _, _ = principal_components(features, variance_fraction=0.5)
    assert len(kept) == np.argmax(np.cumsum(variances) >= 0.5 * variances.sum()) + 1


# --------------------------------------------------------------------------- NCTI
def test_ncti_terms_hand_computed():
    terms = ncti_terms(LINE, LINE_LABELS)
    # discriminant coordinates (-3, -1, 1, 3) after whitening by the unit within variance
    assert terms["seli"] == pytest.approx(np.sqrt(20))
    # posteriors of the true class: sigmoid(12) at the outer points, sigmoid(4) at the inner ones
    assert terms["ncc"] == pytest.approx((expit(12) + expit(4)) / 2)
    rows = np.array([[expit(12), expit(-12)], [expit(4), expit(-4)]])
    nuclear = np.sqrt(np.sum(rows**2) + 2 * abs(np.linalg.det(rows)))  # 2 x 2 nuclear norm
    assert terms["vc"] == pytest.approx(np.log(2 * nuclear))


def test_ncti_unregularised_branch_gives_the_same_terms():
    # scaled by 10, the leading PCA variance is 2000/3 and the shrinkage exp(-2000/3)
    # hits its floor: the authors' code then switches to the unregularised solver
    scaled = ncti_terms(10 * np.array(LINE), LINE_LABELS)
    for key, value in ncti_terms(LINE, LINE_LABELS).items():
        assert scaled[key] == pytest.approx(value, rel=1e-6)


def test_ncti_pool_normalisation():
    good, labels = gaussian_classes(4.0, dim=8)
    bad, _ = gaussian_classes(0.3, dim=8, seed=1)
    assert ncti_score([good, bad], labels).tolist() == [2.0, -1.0]  # good is best on all three terms
    assert ncti_score([good, good], labels).tolist() == [0.0, 0.0]  # no spread: nothing to rank
    assert ncti_score([good], labels).tolist() == [0.0]
    assert normalise_across_pool([1.0, 3.0, 2.0]).tolist() == [0.0, 1.0, 0.5]


# --------------------------------------------------------------------------- ETran
def test_etran_terms_hand_computed():
    values = [[0.0], [1.0], [4.0], [5.0]]  # means 0.5 and 4.5, within-class variance 0.25
    paper = etran_terms(values, LINE_LABELS)
    reference = etran_terms(values, LINE_LABELS, variant="reference")
    # two equal-prior classes: p(true | x) = sigmoid(|mu_a - mu_b| * |x - 2.5| / variance)
    assert paper["classification"] == pytest.approx((expit(4 * 2.5 / 0.25) + expit(4 * 1.5 / 0.25)) / 2)
    assert reference["classification"] == pytest.approx((expit(4 * 2.5) + expit(4 * 1.5)) / 2)
    # one feature: the energy is the feature itself; the reference averages the lowest value only
    assert paper["energy"] == pytest.approx(2.5)
    assert reference["energy"] == pytest.approx(0.0)


def test_etran_weights_and_variants():
    strong = np.array([[0.0], [1.0], [4.0], [5.0]])  # energy 2.5, well separated
    weak = np.array([[0.0], [3.0], [2.0], [5.0]])  # energy 2.5, overlapping classes
    high = strong + 10.0  # same classes, higher energy
    pool = [strong, weak, high]
    # energy terms: 2.5, 2.5, 12.5 -> (0, 0, 1); classification: strong = high > weak -> (1, 0, 1)
    np.testing.assert_allclose(etran_score(pool, LINE_LABELS), [1.0, 0.0, 2.0])
    np.testing.assert_allclose(etran_score(pool, LINE_LABELS, weights=(2.0, 0.5)), [0.5, 0.0, 2.5])
    np.testing.assert_allclose(etran_score(pool, LINE_LABELS, variant="reference"), [0.85, 0.0, 1.0])


# --------------------------------------------------------------------------- k-NN
def test_knn_hand_computed():
    points, labels = [[0.0], [1.0], [10.0], [11.0]], ["a", "a", "b", "b"]
    assert knn_score(points, labels, k=1) == 1.0
    assert knn_score(points, labels, k=3) == 0.0  # the two others of the far class outvote


def test_knn_cosine_ignores_the_norm():
    points = [[1.0, 0.0], [10.0, 0.0], [0.0, 1.0], [0.0, 5.0]]
    labels = ["a", "a", "b", "b"]
    assert knn_score(points, labels, k=1, metric="cosine") == 1.0
    # Euclidean: (1, 0) is nearest to (0, 1) and (0, 1) to (1, 0): two of four wrong
    assert knn_score(points, labels, k=1) == 0.5
    with pytest.raises(ValueError, match="zero row 1"):
        knn_score([[1.0, 0.0], [0.0, 0.0], [0.0, 1.0], [0.0, 2.0]], labels, k=1, metric="cosine")


def test_knn_vote_ties_go_to_the_nearest_class():
    assert _vote(np.array([[1, 0], [0, 1]]), 2).tolist() == [1, 0]
    assert _vote(np.array([[0, 1, 1]]), 2).tolist() == [1]


def test_knn_query_subset_is_seeded_and_exact_without_a_cap():
    features, labels = gaussian_classes(1.0)
    exact = knn_score(features, labels, max_queries=None)
    assert knn_score(features, labels, max_queries=len(labels)) == exact
    assert knn_score(features, labels, max_queries=30) == knn_score(features, labels, max_queries=30)


def test_stratified_subsample():
    codes = np.array([0] * 90 + [1] * 8 + [2] * 2)
    picked = stratified_subsample(codes, 20, random_state=1, min_per_class=3)
    assert np.bincount(codes[picked]).tolist() == [18, 3, 2]
    assert np.array_equal(picked, stratified_subsample(codes, 20, random_state=1, min_per_class=3))
    assert len(stratified_subsample(codes, None)) == 100


# --------------------------------------------------------------------------- linear probe
def test_linear_probe_hand_computed():
    # no information: each of two stratified folds tests 3 "a" and 2 "b" and predicts "a"
    assert linear_probe_score(np.zeros((10, 2)), ["a"] * 6 + ["b"] * 4, folds=2) == 0.6
    features, labels = gaussian_classes(10.0)
    assert linear_probe_score(features, labels) == 1.0


def test_linear_probe_is_scikit_learns_cross_validated_logistic_regression():
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    features, labels = gaussian_classes(1.0, num_per_class=40, dim=8, seed=3)
    features[:, 0] *= 1e4  # an ill-conditioned column, as in pre-trained embeddings
    probe = make_pipeline(StandardScaler(), LogisticRegression(C=0.1, tol=1e-10, max_iter=10_000))
    folds = StratifiedKFold(n_splits=5, shuffle=True, random_state=0)
    reference = cross_val_score(probe, features, labels, cv=folds).mean()
    assert 0.5 < reference < 1.0  # neither trivial nor hopeless, so agreement means something
    assert linear_probe_score(features, labels, folds=5, C=0.1) == pytest.approx(reference, abs=1e-12)


# --------------------------------------------------------------------------- shared behaviour
FEATURE_SCORES = [n for n in NEW_SCORES if REGISTRY[n].needs != "source_probs"]
MIN_CLASS_SIZE = {"gbc": 2, "sfda": 2, "ncti": 2, "etran": 2, "knn": 2, "linear_probe": 5}


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_direction_on_good_and_bad_features(name):
    good, labels = gaussian_classes(3.0)
    bad, _ = gaussian_classes(0.2, seed=1)
    info = REGISTRY[name]
    if info.pool_level:
        good_value, bad_value = info.function([good, bad], labels)
    else:
        good_value, bad_value = info.function(good, labels), info.function(bad, labels)
    assert (good_value > bad_value) == info.greater_is_better


def test_nce_direction():
    labels = np.repeat([0, 1, 2], 10)
    informative = np.eye(3)[labels] * 0.8 + 0.2 / 3
    shuffled = informative[np.random.default_rng(0).permutation(30)]
    assert (nce_score(informative, labels) > nce_score(shuffled, labels)) == REGISTRY["nce"].greater_is_better


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_constant_and_duplicated_columns_do_not_crash(name):
    features, labels = gaussian_classes(1.5)
    padded = np.column_stack([features, features[:, :2], np.full(len(labels), 3.0)])
    assert np.isfinite(call(name, padded, labels))


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_float32_input_gives_the_float64_result(name):
    features, labels = gaussian_classes(1.5)
    features = features.astype(np.float32)
    assert call(name, features, labels) == pytest.approx(call(name, features.astype(np.float64), labels),
                                                         rel=1e-4, abs=1e-6)


def _bad_inputs(name):
    features, labels = gaussian_classes(1.5, num_per_class=12, num_classes=2)
    with_nan = features.copy()
    with_nan[3, 1] = np.nan
    with_inf = features.copy()
    with_inf[0, 0] = np.inf
    cases = [
        (features[:-1], labels, "entries"),
        (with_nan, labels, "NaN"),
        (with_inf, labels, "inf"),
        (features[:, 0], labels, "2-D"),
        (np.zeros((0, 3)), [], "empty"),
        (features, np.zeros(len(labels)), "two classes"),
    ]
    minimum = MIN_CLASS_SIZE.get(name, 1)
    if minimum > 1:
        rare = np.array(["common"] * len(labels), dtype=object)
        rare[: minimum - 1] = "rare"
        cases.append((features, rare, "class 'rare'"))
    return cases


@pytest.mark.parametrize("name", FEATURE_SCORES)
def test_bad_inputs_raise_value_errors_that_name_the_problem(name):
    for features, labels, message in _bad_inputs(name):
        with pytest.raises(ValueError, match=re.escape(message)):
            call(name, features, labels)


def test_constant_features_are_rejected_where_there_is_nothing_to_measure():
    labels = np.repeat([0, 1], 5)
    for function in (h_score, shrinkage_h_score, gbc_score, transrate_score, sfda_score, nleep_score):
        with pytest.raises(ValueError, match="constant"):
            function(np.ones((10, 3)), labels)


def test_nce_rejects_bad_probabilities():
    labels = [0, 1, 1]
    with pytest.raises(ValueError, match="negative"):
        nce_score([[1.2, -0.2], [0.5, 0.5], [0.5, 0.5]], labels)
    with pytest.raises(ValueError, match="sum to 1"):
        nce_score([[0.9, 0.3], [0.5, 0.5], [0.5, 0.5]], labels)
    with pytest.raises(ValueError, match="NaN"):
        nce_score([[np.nan, 1.0], [0.5, 0.5], [0.5, 0.5]], labels)
    with pytest.raises(ValueError, match="entries"):
        nce_score([[0.5, 0.5], [0.5, 0.5]], labels)


@pytest.mark.parametrize("function", [ncti_score, etran_score])
def test_pool_scores_reject_bad_pools(function):
    features, labels = gaussian_classes(1.5)
    with pytest.raises(ValueError, match="empty"):
        function([], labels)
    with pytest.raises(ValueError, match="list"):
        function(features, labels)
    with pytest.raises(ValueError, match="model 1 of the pool"):
        function([features, features[:-1]], labels)


def test_bad_options_raise_value_errors():
    features, labels = gaussian_classes(1.5)
    for call_bad in (lambda: gbc_score(features, labels, variant="full"),
                     lambda: knn_score(features, labels, k=0),
                     lambda: knn_score(features, labels, metric="manhattan"),
                     lambda: knn_score(features[:4], np.array([0, 0, 1, 1]), k=4),
                     lambda: transrate_score(features, labels, eps=0.0),
                     lambda: sfda_score(features, labels, shrinkage=1.5),
                     lambda: pactran_score(features, labels, lda_factor=-1.0),
                     lambda: nleep_score(features, labels, variance_fraction=0.0),
                     lambda: linear_probe_score(features, labels, folds=1),
                     lambda: etran_score([features], labels, variant="code"),
                     lambda: etran_score([features], labels, weights=(1.0,))):
        with pytest.raises(ValueError):
            call_bad()


# --------------------------------------------------------------------------- registry
def test_registry_entries_of_the_field_scores():
    bib = BIB.read_text()
    for name in NEW_SCORES:
        info = REGISTRY[name]
        assert re.search(r"@\w+\{" + re.escape(info.citation) + ",", bib), info.citation
        inspect.signature(info.function).bind(None, None, **info.options)  # defaults are real options
        assert info.summary
    assert not REGISTRY["pactran"].greater_is_better
    assert REGISTRY["ncti"].pool_level and REGISTRY["etran"].pool_level
    assert REGISTRY["nce"].needs == "source_probs"


def test_compute_scores_runs_field_scores_on_a_pool():
    good, labels = gaussian_classes(3.0)
    bad, _ = gaussian_classes(0.2, seed=1)
    probs = {"good": np.eye(3)[labels] * 0.9 + 0.1 / 3, "bad": np.full((len(labels), 3), 1 / 3)}
    table = compute_scores({"good": good, "bad": bad}, labels, source_probs=probs,
                           names=["nce", "gbc", "ncti", "etran", "knn"])
    values = table.pivot(index="model", columns="score", values="value")
    for name in ["nce", "gbc", "ncti", "etran", "knn"]:
        assert values.loc["good", name] > values.loc["bad", name], name


# --------------------------------------------------------------------------- GBC: variance floor and PCA
def test_gbc_keeps_an_informative_low_variance_column_among_large_noise_columns():
    rng = np.random.default_rng(11)
    labels = np.repeat([0, 1, 2], 40)
    informative = 1e-3 * (4.0 * labels + rng.normal(size=len(labels)))  # classes 4 sd apart, scale 1e-3
    noise = 1e3 * rng.normal(size=(len(labels), 5))  # variance 1e6 times larger, no information
    features = np.column_stack([informative, noise])
    value = gbc_score(features, labels)
    # per-column floor: the value is that of the standardised features (diagonal GBC is column-scale invariant)
    standardised = (features - features.mean(0)) / features.std(0)
    assert value == pytest.approx(gbc_score(standardised, labels), rel=1e-10)
    # and close to the overlap of the informative column alone (the noise columns add little)
    alone = gbc_score(informative[:, None], labels)
    assert alone > -0.5 and value == pytest.approx(alone, abs=0.3)
    # a floor relative to the mean variance of all columns would flatten the informative column:
    # its class variances (1e-6) would be raised to 1e-4 * ~8e5, and the classes would overlap almost fully
    flattened = np.column_stack([np.full(len(labels), informative.mean()), noise])
    assert gbc_score(flattened, labels) < value - 2.0


def test_gbc_tiny_scale_input_works():
    features, labels = gaussian_classes(1.0)
    assert gbc_score(1e-200 * features, labels) == pytest.approx(gbc_score(features, labels), rel=1e-12)


def test_gbc_pca_option_follows_the_authors_pipeline():
    from nclib.scores.nleep import principal_components, project

    features, labels = gaussian_classes(1.5, dim=10)
    _, directions, mean = principal_components(features, 4)
    assert gbc_score(features, labels, pca_dim=4) == pytest.approx(
        gbc_score(project(features, directions, mean), labels), rel=1e-12)
    rotation = np.linalg.qr(np.random.default_rng(2).normal(size=(10, 10)))[0]
    assert gbc_score(features @ rotation, labels, pca_dim=4) == pytest.approx(
        gbc_score(features, labels, pca_dim=4), rel=1e-9)
    with pytest.raises(ValueError, match="pca_dim"):
        gbc_score(features, labels, pca_dim=0)
