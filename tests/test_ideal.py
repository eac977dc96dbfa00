"""The prototype ideal score and LogME's regression form (nclib.scores.ideal)."""

import numpy as np
import pytest
from scipy.optimize import minimize
from scipy.stats import multivariate_normal

from nclib.scores import REGISTRY, logme_score
from nclib.scores.ideal import (DEFAULT_WEIGHTS, fit_bayesian_linear, holdout_split, ideal_holdout_score,
                                ideal_pick_path, ideal_score, ideal_switch_points, ideal_terms,
                                logme_regression_score, size_charge)

LOG_2PI = np.log(2 * np.pi)


# --------------------------------------------------------------------------- evidence
def test_evidence_when_the_features_explain_nothing():
    # F = (1, 1)^T, y = (1, -1): y is orthogonal to F, so the best weights are zero
    # (alpha -> infinity) and the best noise variance is ||y||^2 / N = 1.
    fit = fit_bayesian_linear([[1.0], [1.0]], [1.0, -1.0])
    assert fit.log_evidence[0] == pytest.approx(-LOG_2PI - 1.0, abs=1e-7)
    assert fit.beta[0] == pytest.approx(1.0, rel=1e-6)
    assert fit.alpha[0] > 1e6
    # prediction at x = 3: mean 0, variance 1/beta = 1 -> log N(2; 0, 1)
    assert fit.log_predictive([[3.0]], [2.0])[0, 0] == pytest.approx(-0.5 * LOG_2PI - 2.0, abs=1e-6)


def test_evidence_of_an_identity_design():
    # F = I_2 (N = D = 2): y ~ N(0, s I) with s = 1/alpha + 1/beta; the best s is ||y||^2 / 2 = 1
    fit = fit_bayesian_linear(np.eye(2), [1.0, 1.0])
    assert fit.log_evidence[0] == pytest.approx(-LOG_2PI - 1.0, abs=1e-6)


def test_evidence_matches_a_direct_maximisation():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(12, 3))
    targets = features @ [1.0, -2.0, 0.5] + rng.normal(size=12)

    def negative(log_params):
        alpha, beta = np.exp(log_params)
        covariance = features @ features.T / alpha + np.eye(12) / beta
        return -multivariate_normal(np.zeros(12), covariance).logpdf(targets)

    best = minimize(negative, [0.0, 0.0], method="Nelder-Mead",
                    options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 5000})
    fit = fit_bayesian_linear(features, targets)
    assert fit.log_evidence[0] == pytest.approx(-best.fun, abs=1e-7)
    assert [fit.alpha[0], fit.beta[0]] == pytest.approx(np.exp(best.x).tolist(), rel=1e-4)


@pytest.mark.parametrize("num_samples, dim", [(80, 6), (20, 40)])
def test_predictive_matches_the_textbook_formulas(num_samples, dim):
    rng = np.random.default_rng(1)
    features = rng.normal(size=(num_samples, dim))
    targets = features[:, :2] @ [1.0, 1.0] + rng.normal(size=num_samples)
    fit = fit_bayesian_linear(features, targets)
    alpha, beta = fit.alpha[0], fit.beta[0]
    precision = alpha * np.eye(dim) + beta * features.T @ features  # A
    weights = beta * np.linalg.solve(precision, features.T @ targets)
    new = rng.normal(size=(5, dim))
    mean, variance = fit.predict(new)
    assert mean[:, 0] == pytest.approx(new @ weights, rel=1e-6, abs=1e-9)
    expected = 1 / beta + np.einsum("ij,ji->i", new, np.linalg.solve(precision, new.T))
    assert variance[:, 0] == pytest.approx(expected, rel=1e-6)


def test_intercept_is_the_fit_in_the_complement_of_the_constant():
    # integrating out a flat intercept = regressing in the N - 1 directions orthogonal to 1
    rng = np.random.default_rng(10)
    features = rng.normal(size=(15, 3)) + 5.0
    targets = features @ [0.5, -1.0, 0.0] + 2.0 + rng.normal(size=15)
    basis = np.linalg.qr(np.column_stack([np.ones(15), rng.normal(size=(15, 14))]))[0][:, 1:]
    projected = fit_bayesian_linear(basis.T @ features, basis.T @ targets)
    with_intercept = fit_bayesian_linear(features, targets, intercept=True)
    assert with_intercept.log_evidence[0] == pytest.approx(projected.log_evidence[0], abs=1e-7)
    assert with_intercept.beta[0] == pytest.approx(projected.beta[0], rel=1e-6)
    # prediction: target mean + centred input times the weights; variance gains 1 / (beta N)
    new = rng.normal(size=(4, 3)) + 5.0
    mean, variance = with_intercept.predict(new)
    centred = features - features.mean(axis=0)
    alpha, beta = with_intercept.alpha[0], with_intercept.beta[0]
    precision = alpha * np.eye(3) + beta * centred.T @ centred
    weights = beta * np.linalg.solve(precision, centred.T @ (targets - targets.mean()))
    offset = new - features.mean(axis=0)
    assert mean[:, 0] == pytest.approx(targets.mean() + offset @ weights, rel=1e-6)
    expected = 1 / beta + 1 / (beta * 15) + np.einsum("ij,ji->i", offset, np.linalg.solve(precision, offset.T))
    assert variance[:, 0] == pytest.approx(expected, rel=1e-6)


def test_chunked_products_match_one_block(monkeypatch):
    import nclib.scores.ideal as ideal

    rng = np.random.default_rng(11)
    features = rng.normal(size=(50, 4)) + 3.0
    targets = features @ [1.0, 0.0, -1.0, 0.5] + rng.normal(size=50)
    new = rng.normal(size=(9, 4))
    whole = fit_bayesian_linear(features, targets, intercept=True)
    monkeypatch.setattr(ideal, "_CHUNK_ROWS", 7)
    chunked = fit_bayesian_linear(features, targets, intercept=True)
    assert chunked.log_evidence == pytest.approx(whole.log_evidence, rel=1e-9)
    for chunked_part, whole_part in zip(chunked.predict(new), whole.predict(new)):
        assert chunked_part == pytest.approx(whole_part, rel=1e-6, abs=1e-7)  # optimiser tolerance


def test_unbounded_evidence_and_bad_targets_are_named():
    with pytest.raises(ValueError, match="unbounded"):
        fit_bayesian_linear([[1.0], [2.0]], [1.0, 2.0])  # y = F w exactly, rank 1 < N = 2
    with pytest.raises(ValueError, match="all zero"):
        fit_bayesian_linear([[1.0], [2.0]], [0.0, 0.0])
    with pytest.raises(ValueError, match="features are all zero"):
        fit_bayesian_linear([[0.0], [0.0]], [1.0, 2.0])
    with pytest.raises(ValueError, match="constant features"):
        fit_bayesian_linear([[3.0, 1.0]] * 3, [1.0, 2.0, 4.0], intercept=True)
    with pytest.raises(ValueError, match="rows"):
        fit_bayesian_linear([[1.0], [2.0]], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="NaN or inf"):
        fit_bayesian_linear([[1.0], [2.0]], [1.0, np.nan])


# --------------------------------------------------------------------------- LogME regression
def test_logme_regression_of_one_hot_columns_is_logme():
    rng = np.random.default_rng(2)
    for num_samples, dim in [(150, 8), (25, 40)]:
        labels = rng.integers(0, 3, num_samples)
        features = rng.normal(size=(num_samples, dim)) + np.eye(3, dim)[labels]
        onehot = np.eye(3)[labels]
        assert logme_regression_score(features, onehot) == pytest.approx(logme_score(features, labels), abs=1e-8)


def test_logme_regression_unit_shifts_every_model_alike():
    rng = np.random.default_rng(3)
    features = rng.normal(size=(60, 4))
    targets = features[:, 0] + 0.3 * rng.normal(size=60)
    # rescaling y by s multiplies the density by 1/s: log s per sample
    shift = logme_regression_score(features, targets) - logme_regression_score(features, 10 * targets)
    assert shift == pytest.approx(np.log(10), abs=1e-7)


# --------------------------------------------------------------------------- the ideal score
# Train features x = (1, -1, 1, -1) (mean 0), labels a, a, b, b: the centred one-hot columns
# (+-1/2) are orthogonal to x, so alpha -> infinity and, with the intercept integrated out
# (N - 1 = 3 effective samples), beta = 3 / ||y - mean||^2 = 3. Every prediction is the class
# frequency 1/2 with variance (1 + 1/N) / beta = 5/12; each validation target is 1/2 away:
# log density -1/2 log(2 pi 5/12) - (1/4) / (2 * 5/12) = -1/2 log(5 pi / 6) - 3/10.
TRAIN_X = [[1.0], [-1.0], [1.0], [-1.0]]
TRAIN_Y = ["a", "a", "b", "b"]
VAL_X = [[0.5], [-2.0]]
VAL_Y = ["b", "a"]
PER_TARGET = -0.5 * np.log(5 * np.pi / 6) - 0.3


# Training evidence of each column: 3 effective samples, weights zero, noise variance 1/3:
# (3/2) log 3 - 3/2 - (3/2) log 2 pi.
EVIDENCE = 1.5 * np.log(3) - 1.5 - 1.5 * np.log(2 * np.pi)


def test_ideal_score_hand_computed():
    held_out = ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, mode="validation")
    assert held_out == pytest.approx(PER_TARGET, abs=1e-6)
    # the BIC size term: lambda (P / 2) log n over n K = 2 * 2 validation targets (n = M = 2)
    value = ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, mode="validation", num_parameters=100, complexity_weight=2.0)
    assert value == pytest.approx(PER_TARGET - 2.0 * 50 * np.log(2) / 4, abs=1e-6)
    # prequential: 2 columns of training evidence plus 4 validation targets, n = 3 + 2 examples
    expected = (2 * EVIDENCE + 4 * PER_TARGET - 50 * np.log(5)) / 10
    assert ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, num_parameters=100) == pytest.approx(expected, abs=1e-6)
    terms = ideal_terms(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, num_parameters=100)
    assert terms["num_targets"] == 10 and terms["num_examples"] == 5
    assert terms["penalty"] == pytest.approx(50 * np.log(5)) and terms["size_charge"] == terms["penalty"]
    assert terms["likelihood"] == pytest.approx(2 * EVIDENCE + 4 * PER_TARGET, abs=1e-6)
    assert terms["log_evidence"] == pytest.approx(2 * EVIDENCE, abs=1e-6)
    assert terms["beta"] == pytest.approx([3.0, 3.0], rel=1e-6)
    # the earlier naming code, lambda log P, is kept as an option
    naming = ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, num_parameters=100, size_code="naming")
    assert naming == pytest.approx((2 * EVIDENCE + 4 * PER_TARGET - np.log(100)) / 10, abs=1e-6)


def test_size_charge_units():
    # (P / 2) log n nats: (1/2) log n per parameter; naming: log P
    assert size_charge(2, 7) == pytest.approx(np.log(7)) and size_charge(30, 100) == pytest.approx(15 * np.log(100))
    assert size_charge(1000, 1) == 0.0  # one example resolves nothing
    assert size_charge(1000, 50, "naming") == pytest.approx(np.log(1000))
    # on real pools the BIC charge is millions of times the naming one
    assert size_charge(3_500_000, 1300) / size_charge(3_500_000, 1300, "naming") > 1e5


def test_ideal_score_penalises_size_and_ignores_it_at_zero_weight():
    rng = np.random.default_rng(4)
    labels = np.repeat([0, 1, 2], 20)
    features = rng.normal(size=(60, 5)) + 2 * np.eye(3, 5)[labels]
    args = (features[::2], labels[::2], features[1::2], labels[1::2])
    assert ideal_score(*args, num_parameters=10, complexity_weight=0.0) == ideal_score(*args)
    # BIC: 990 more parameters at (1/2) log n nats each, over n K target values
    gap = ideal_score(*args, num_parameters=10) - ideal_score(*args, num_parameters=1000)
    assert gap == pytest.approx(495 * np.log(59) / (59 * 3))
    gap = (ideal_score(*args, mode="validation", num_parameters=10)
           - ideal_score(*args, mode="validation", num_parameters=1000))
    assert gap == pytest.approx(495 * np.log(30) / (30 * 3))
    # the naming code (the scale before issue 12): log(100) nats for the whole data set
    gap = (ideal_score(*args, num_parameters=10, size_code="naming")
           - ideal_score(*args, num_parameters=1000, size_code="naming"))
    assert gap == pytest.approx(np.log(100) / ((29 + 30) * 3))


# A constructed pool: model j embeds the three classes with growing strength in more
# dimensions and has 10 parameters per dimension, so the larger models fit better.
POOL = [(2, 0.8), (4, 1.0), (8, 1.2), (16, 1.4), (32, 1.6)]


def _pool_terms(size_code="bic"):
    rng = np.random.default_rng(12)
    labels = np.repeat([0, 1, 2], 60)
    train = np.arange(180) % 3 != 0
    terms = {}
    for dim, strength in POOL:
        signal = min(dim, 3)
        features = rng.normal(size=(180, dim))
        features[:, :signal] += strength * np.eye(3, dim)[labels][:, :signal]
        terms[f"d{dim}"] = ideal_terms(features[train], labels[train], features[~train], labels[~train],
                                       num_parameters=10 * dim, size_code=size_code)
    return terms


def test_size_term_is_of_the_order_of_the_likelihood_differences_at_lambda_one():
    # the old scale (log P for the whole data set) fails this: its charge differences are
    # below a tenth of the likelihood spread and the pick at lambda = 1 is the pick at 0
    for code, matters in (("bic", True), ("naming", False)):
        terms = _pool_terms(code)
        per_target = {m: (t["likelihood"] / t["num_targets"], t["size_charge"] / t["num_targets"])
                      for m, t in terms.items()}
        likelihood = np.array([v[0] for v in per_target.values()])
        charge = np.array([v[1] for v in per_target.values()])
        spread = np.ptp(likelihood)
        steps = np.diff(np.sort(charge))
        path = ideal_pick_path(terms, [0.0, 1.0]).set_index("weight")["model"]
        if matters:
            assert 0.1 * spread < steps.min() and steps.max() < 20 * spread
            assert path[1.0] != path[0.0]
        else:
            assert steps.max() < 0.1 * spread
            assert path[1.0] == path[0.0]
            assert ideal_switch_points(terms).to_weight.iloc[0] > 10


def test_lambda_zero_is_the_pure_evidence_ranking():
    terms = _pool_terms()
    best = max(terms, key=lambda m: terms[m]["likelihood"])
    assert ideal_pick_path(terms, [0.0]).model.iloc[0] == best == "d32"
    assert ideal_switch_points(terms).model.iloc[0] == best
    # and the score itself: lambda = 0 orders the models as the score without a size term
    rng = np.random.default_rng(13)
    labels = np.repeat([0, 1], 30)
    features = rng.normal(size=(60, 4)) + labels[:, None]
    args = (features[::2], labels[::2], features[1::2], labels[1::2])
    assert ideal_score(*args, num_parameters=10 ** 6, complexity_weight=0.0) == ideal_score(*args)


def test_the_pick_moves_monotonically_to_smaller_models():
    terms = _pool_terms()
    grid = np.r_[0.0, np.logspace(-4, 2, 400)]
    path = ideal_pick_path(terms, grid)
    sizes = path.num_parameters.to_numpy()
    assert (np.diff(sizes) <= 0).all() and sizes[0] == 320 and sizes[-1] == 20
    assert path.value.is_monotonic_decreasing
    assert np.allclose(path.value, path.likelihood_term - path.size_term)
    # the exact switch points agree with the grid
    switches = ideal_switch_points(terms)
    assert (switches.num_parameters.diff().dropna() < 0).all()
    assert switches.from_weight.iloc[0] == 0 and np.isinf(switches.to_weight.iloc[-1])
    for row in switches.itertuples():
        inside = (grid >= row.from_weight) & (grid < row.to_weight)
        assert set(path.model[inside]) <= {row.model}
    # the default grid spans six decades below lambda = 1 and two above
    assert DEFAULT_WEIGHTS[0] == 0 and min(DEFAULT_WEIGHTS[1:]) == pytest.approx(1e-6)
    assert max(DEFAULT_WEIGHTS) == pytest.approx(100)


def test_path_inputs_are_checked():
    terms = _pool_terms()
    with pytest.raises(ValueError, match="no size charge"):
        ideal_pick_path({**terms, "x": {**terms["d2"], "size_charge": float("nan")}})
    with pytest.raises(ValueError, match="different data or size codes"):
        ideal_switch_points({**terms, "x": {**terms["d2"], "num_targets": 7}})
    with pytest.raises(ValueError, match="weights"):
        ideal_pick_path(terms, [-1.0])
    with pytest.raises(ValueError, match="non-empty"):
        ideal_switch_points({})


def test_regression_and_classification_agree_on_a_binary_target():
    # with two classes the centred one-hot columns are y - p and p - y: both carry the
    # regression target's information; standardising by the deviation s adds log s per target
    rng = np.random.default_rng(5)
    labels = np.repeat([0, 1], 30)
    features = rng.normal(size=(60, 3)) + labels[:, None]
    train, val = np.arange(60) % 2 == 0, np.arange(60) % 2 == 1
    for mode in ("validation", "prequential"):
        as_classes = ideal_score(features[train], labels[train], features[val], labels[val], mode=mode)
        as_values = ideal_score(features[train], labels[train].astype(float), features[val],
                                labels[val].astype(float), task="regression", mode=mode)
        assert as_values == pytest.approx(as_classes + np.log(labels[train].std()), abs=1e-6)


def test_regression_score_ignores_the_target_unit():
    rng = np.random.default_rng(6)
    features = rng.normal(size=(80, 4))
    targets = features @ [1.0, 0.5, 0.0, 0.0] + 0.5 * rng.normal(size=80)
    args = (features[:60], targets[:60], features[60:])
    raw = ideal_score(*args, targets[60:], task="regression", mode="validation")
    changed = ideal_score(args[0], 3 * args[1] + 7, args[2], 3 * targets[60:] + 7, task="regression",
                          mode="validation")
    assert changed == pytest.approx(raw, abs=1e-7)
    # the evidence of standardised targets shifts by log 3 per training target: compare differences
    both = [ideal_terms(args[0], t, args[2], v, task="regression") for t, v in
            ((args[1], targets[60:]), (3 * args[1] + 7, 3 * targets[60:] + 7))]
    assert both[0]["value"] == pytest.approx(both[1]["value"], abs=1e-7)


def test_ideal_score_prefers_informative_embeddings():
    rng = np.random.default_rng(7)
    labels = np.repeat([0, 1, 2], 40)
    good = rng.normal(size=(120, 6)) + 3 * np.eye(3, 6)[labels]
    bad = rng.normal(size=(120, 6))
    split = np.arange(120) % 4 == 0
    for mode in ("prequential", "validation"):
        scores = [ideal_score(f[~split], labels[~split], f[split], labels[split], mode=mode) for f in (good, bad)]
        assert scores[0] > scores[1]


def test_holdout_split_counts():
    # classes of 10, 3, 2 and 1 samples at 25 %: round(2.5) = 2, round(0.75) = 1, 1 (minimum), 0 (keep one)
    codes = np.repeat([0, 1, 2, 3], [10, 3, 2, 1])
    fit, held_out = holdout_split(codes, 0.25, random_state=3)
    assert np.bincount(codes[held_out], minlength=4).tolist() == [2, 1, 1, 0]
    assert sorted(np.concatenate([fit, held_out]).tolist()) == list(range(16))
    again = holdout_split(codes, 0.25, random_state=3)
    assert np.array_equal(again[1], held_out)


def test_holdout_form_is_ideal_score_on_its_split():
    rng = np.random.default_rng(8)
    labels = np.repeat([3, 7], 25)
    features = rng.normal(size=(50, 3)) + labels[:, None] / 3
    fit_part, held_out = holdout_split((labels == 7).astype(int), 0.2, random_state=5)
    for mode in ("prequential", "validation"):
        expected = ideal_score(features[fit_part], labels[fit_part], features[held_out], labels[held_out], mode=mode)
        assert ideal_holdout_score(features, labels, val_fraction=0.2, random_state=5, mode=mode) == pytest.approx(
            expected)


def test_registry_entry():
    info = REGISTRY["ideal"]
    assert info.function is ideal_holdout_score and info.needs == "features" and info.greater_is_better
    rng = np.random.default_rng(9)
    labels = np.repeat([0, 1], 20)
    assert np.isfinite(info.function(rng.normal(size=(40, 3)), labels, **info.options))


@pytest.mark.parametrize("call, message", [
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, [[0.5, 1.0]], ["a"]), "dimensions"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, ["a", "c"]), "absent from the training"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, ["a"]), "2 entries"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, [[np.nan], [1.0]], VAL_Y), "NaN or inf"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, task="clustering"), "task must be"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, mode="test"), "mode must be"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, num_parameters=0), "num_parameters"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, complexity_weight=-1.0), "complexity_weight"),
    (lambda: ideal_score(TRAIN_X, TRAIN_Y, VAL_X, VAL_Y, num_parameters=10, size_code="aic"), "size_code"),
    (lambda: size_charge(10, 0), "num_examples"),
    (lambda: ideal_score(TRAIN_X, [1.0] * 4, VAL_X, [1.0, 2.0], task="regression"), "constant"),
    (lambda: ideal_score(TRAIN_X, ["a"] * 4, VAL_X, ["a", "a"]), "at least two classes"),
    (lambda: ideal_holdout_score(TRAIN_X, TRAIN_Y, val_fraction=0.7), "val_fraction"),
    (lambda: ideal_holdout_score([[1.0], [2.0]], ["a", "b"]), "single sample"),
])
def test_bad_input_is_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()
