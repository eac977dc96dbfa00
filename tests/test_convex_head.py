"""Tests of nclib.convex_head: the converged, deterministic head regime."""

import numpy as np
import pandas as pd
import pytest
from threadpoolctl import threadpool_limits

from nclib.convex_head import DEFAULT_L2_GRID, convex_head_transfer
from nclib.logistic import fit_logistic, standardizer
from nclib.transfer import score_predictions


def problem(num_classes=4, count=300, width=12, seed=0, separation=1.0):
    """Overlapping Gaussian classes with correlated, badly scaled features."""
    rng = np.random.default_rng(seed)
    labels = np.arange(count) % num_classes
    means = rng.normal(size=(num_classes, width)) * separation
    mixing = rng.normal(size=(width, width)) / np.sqrt(width)
    features = (means[labels] + rng.normal(size=(count, width))) @ mixing
    return features * np.geomspace(0.01, 100, width) + 5.0, labels


def sklearn_objective(model, features, labels, l2):
    """Our objective (mean CE + l2/2 ||W||^2) at scikit-learn's solution."""
    logits = features @ model.coef_.T + model.intercept_
    logits = logits - logits.max(axis=1, keepdims=True)
    log_probs = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
    return -log_probs[np.arange(len(labels)), labels].mean() + 0.5 * l2 * np.sum(model.coef_ ** 2)


@pytest.mark.parametrize("num_classes, l2", [(4, 1e-1), (4, 1e-3), (3, 1e-5), (2, 1e-2)])
def test_optimum_matches_scikit_learn_logistic_regression(num_classes, l2):
    from sklearn.linear_model import LogisticRegression

    features, labels = problem(num_classes=num_classes)
    mean, scale = standardizer(features)
    standard = (features - mean) / scale
    ours = fit_logistic(standard, labels, num_classes=num_classes, l2=l2, gtol=1e-8)
    assert ours["converged"] and ours["gradient_norm"] <= 1e-8
    reference = LogisticRegression(C=1 / (l2 * len(labels)), solver="lbfgs", tol=1e-12, max_iter=100_000)
    with threadpool_limits(limits=1, user_api="blas"):  # BLAS threads crawl on a shared machine
        reference.fit(standard, labels)
    if num_classes == 2:  # scikit-learn fits one weight vector: the softmax of [0, w] is the same model
        reference.coef_ = np.vstack([-reference.coef_ / 2, reference.coef_ / 2])
        reference.intercept_ = np.array([-reference.intercept_[0] / 2, reference.intercept_[0] / 2])
        # its penalty is on w, ours on both halves: compare at our own scale below
    theirs = sklearn_objective(reference, standard, labels, l2)
    if num_classes > 2:
        assert ours["objective"] == pytest.approx(theirs, rel=1e-6)
        assert ours["objective"] <= theirs * (1 + 1e-12)  # and never worse than scikit-learn's
        # the optimum is unique (strictly convex in W); weakly penalised fits are flat near it
        np.testing.assert_allclose(ours["weight"], reference.coef_.T, atol=1e-3 * np.abs(reference.coef_).max())
    else:
        assert ours["objective"] <= theirs + 1e-9  # the same family, and ours is its minimiser
    predicted = (standard @ ours["weight"] + ours["bias"]).argmax(axis=1)
    assert np.mean(predicted == reference.predict(standard)) >= 0.995


def test_binary_optimum_matches_scikit_learn_with_the_matching_penalty():
    # with two classes, our (w0, w1) penalty l2/2 (|w0|^2 + |w1|^2) at w0 = -w1 = -w/2 is
    # l2/4 |w|^2: scikit-learn's single-vector problem with C = 2 / (l2 N)
    from sklearn.linear_model import LogisticRegression

    features, labels = problem(num_classes=2, seed=3)
    standard = (features - features.mean(0)) / features.std(0)
    l2 = 1e-3
    ours = fit_logistic(standard, labels, num_classes=2, l2=l2, gtol=1e-8)
    with threadpool_limits(limits=1, user_api="blas"):
        reference = LogisticRegression(C=2 / (l2 * len(labels)), tol=1e-12, max_iter=100_000).fit(standard, labels)
    np.testing.assert_allclose(ours["weight"][:, 1] - ours["weight"][:, 0], reference.coef_[0], rtol=1e-5, atol=1e-6)
    assert ours["bias"][1] - ours["bias"][0] == pytest.approx(reference.intercept_[0], rel=1e-5, abs=1e-6)


def test_gradient_is_exact():
    from scipy.optimize import check_grad

    from nclib.logistic import _objective

    features, labels = problem(num_classes=3, count=40, width=5)
    features = (features - features.mean(0)) / features.std(0)
    theta = np.random.default_rng(1).normal(size=5 * 3 + 3)
    error = check_grad(lambda t: _objective(t, features, labels, 0.3, 3)[0],
                       lambda t: _objective(t, features, labels, 0.3, 3)[1], theta)
    assert error < 1e-5


def test_transfer_selects_l2_on_validation_and_is_deterministic():
    features, labels = problem(count=600, seed=4, separation=0.6)
    train, val, test = (slice(0, 300), slice(300, 450), slice(450, 600))
    run = lambda: convex_head_transfer(features[train], labels[train], features[val], labels[val],  # noqa: E731
                                       features[test], labels[test], num_classes=4, grid_patience=None)
    result, again = run(), run()
    history = result.history
    assert history.l2.tolist() == sorted(DEFAULT_L2_GRID, reverse=True)
    assert history.converged.all() and result.converged
    assert result.best_val_metric == history.val_metric.max()
    assert result.l2 == history.l2[history.val_metric.idxmax()]  # first (strongest) of the best
    assert result.test_probs.shape == (150, 4) and result.test_probs.dtype == np.float32
    assert result.test_metric == score_predictions("accuracy", labels[test], result.test_probs)
    np.testing.assert_array_equal(result.test_probs, again.test_probs)
    # the folded head acts on the raw features as the standardised fit did
    logits = features[test] @ result.state["weight"].T.astype(np.float64) + result.state["bias"]
    assert np.mean(logits.argmax(1) == result.test_probs.argmax(1)) >= 0.99


def test_the_l2_path_stops_after_grid_patience_points_without_improvement():
    features, labels = problem(count=600, seed=4, separation=0.6)
    train, val, test = (slice(0, 300), slice(300, 450), slice(450, 600))
    arrays = (features[train], labels[train], features[val], labels[val], features[test], labels[test])
    full = convex_head_transfer(*arrays, num_classes=4, grid_patience=None).history
    # where the full path would stop with patience 1 and 2, computed from its own metrics
    for patience in (1, 2):
        best, stale, expected = -np.inf, 0, 0
        for value in full.val_metric:
            if stale >= patience:
                break
            expected += 1
            best, stale = (value, 0) if value > best else (best, stale + 1)
        short = convex_head_transfer(*arrays, num_classes=4, grid_patience=patience)
        assert len(short.history) == expected
        pd.testing.assert_frame_equal(short.history, full.iloc[:expected])
        assert short.l2 == full.l2[full.val_metric.iloc[:expected].idxmax()]
    assert len(convex_head_transfer(*arrays, num_classes=4).history) < len(full)  # stops by default
    with pytest.raises(ValueError, match="grid_patience"):
        convex_head_transfer(*arrays, num_classes=4, grid_patience=0)


def test_constant_columns_and_auroc():
    features, labels = problem(num_classes=2, count=200, seed=5)
    features = np.hstack([features, np.full((200, 2), 7.0)])
    result = convex_head_transfer(features, labels, features, labels, features, labels, num_classes=2,
                                  metric="auroc", l2_grid=[1e-2])
    assert result.converged and 0.5 < result.test_metric <= 1.0
    np.testing.assert_array_equal(result.state["weight"][:, -2:], 0.0)


def test_non_convergence_is_reported_not_hidden():
    features, labels = problem()
    fit = fit_logistic(features, labels, num_classes=4, l2=1e-6, max_iter=2)
    assert not fit["converged"] and fit["gradient_norm"] > 1e-6


@pytest.mark.parametrize("change, message", [
    (dict(l2_grid=[0.0]), "l2_grid"),
    (dict(l2_grid=[1e-2, 1e-2]), "l2_grid"),
    (dict(metric="f1"), "unknown metric"),
    (dict(metric="auroc"), "binary"),
    (dict(train_labels=np.zeros(300, np.int64)), "no training example"),
    (dict(train_labels=np.full(300, 9)), "range"),
    (dict(train_features=np.full((300, 12), np.nan)), "NaN"),
    (dict(val_features=np.zeros((300, 3))), "width"),
    (dict(test_labels=np.zeros(5, np.int64)), "shape"),
    (dict(num_classes=1), "num_classes"),
])
def test_bad_input_is_refused(change, message):
    features, labels = problem()
    arguments = dict(train_features=features, train_labels=labels, val_features=features, val_labels=labels,
                     test_features=features, test_labels=labels, num_classes=4)
    arguments.update(change)
    with pytest.raises(ValueError, match=message):
        convex_head_transfer(**arguments)


def rank_deficient_problem(seed=6):
    """Features as pre-trained embeddings often are: fewer directions than columns, and
    duplicated, rescaled and dead columns (a covariance condition number of about 1e16)."""
    rng = np.random.default_rng(seed)
    labels = np.arange(400) % 3
    latent = rng.normal(size=(400, 6)) + 1.5 * rng.normal(size=(3, 6))[labels]
    features = latent @ rng.normal(size=(6, 20))  # rank 6 in 20 columns
    features = np.hstack([features, 3 * features[:, :4], np.zeros((400, 2))])
    return features, labels


def test_covariance_basis_is_an_orthonormal_eigenbasis_of_the_covariance():
    from nclib.logistic import covariance_basis

    features, _ = rank_deficient_problem()
    active, mean, eigenvalues, vectors, projected = covariance_basis(features + 2.0)
    assert active.tolist() == [True] * 24 + [False] * 2
    np.testing.assert_allclose(mean, features[:, :24].mean(0) + 2.0)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(24), atol=1e-10)
    covariance = projected.T @ projected / len(features)
    np.testing.assert_allclose(covariance, np.diag(eigenvalues), atol=1e-8 * eigenvalues.max())
    assert (eigenvalues >= 0).all() and (eigenvalues > 1e-8 * eigenvalues.max()).sum() == 6


@pytest.mark.parametrize("shift", [0.0, 5.0])
def test_preconditioned_fit_matches_scikit_learn_on_rank_deficient_features(shift):
    # the change of variables must not move the minimiser: compare objectives with
    # scikit-learn's, on features whose covariance is singular, centred or not
    from sklearn.linear_model import LogisticRegression

    features, labels = rank_deficient_problem()
    features = features / features.std(0).clip(1e-12).max() + shift
    l2 = 1e-3
    ours = fit_logistic(features, labels, num_classes=3, l2=l2, gtol=1e-8)
    assert ours["converged"]
    np.testing.assert_array_equal(ours["weight"][-2:], 0.0)  # the dead columns
    with threadpool_limits(limits=1, user_api="blas"):
        reference = LogisticRegression(C=1 / (l2 * len(labels)), tol=1e-12, max_iter=100_000).fit(features, labels)
    theirs = sklearn_objective(reference, features, labels, l2)
    assert ours["objective"] == pytest.approx(theirs, rel=1e-6)
    assert ours["objective"] <= theirs * (1 + 1e-12)


def test_preconditioning_needs_fewer_iterations_than_plain_lbfgs():
    # the reason for the change of variables, measured: plain L-BFGS on the same
    # ill-conditioned objective (same start, same tolerance) takes several times as many
    from scipy.optimize import minimize

    from nclib.logistic import _objective

    features, labels = rank_deficient_problem()
    features = features * np.geomspace(0.01, 10, features.shape[1])
    ours = fit_logistic(features, labels, num_classes=3, l2=1e-4)
    plain = minimize(_objective, np.zeros(26 * 3 + 3), args=(features, labels, 1e-4, 3), jac=True,
                     method="L-BFGS-B", options=dict(maxiter=20_000, maxfun=40_000, gtol=1e-6, ftol=0.0))
    assert ours["converged"] and ours["objective"] <= plain.fun + 1e-7
    assert plain.nit > 3 * ours["iterations"], (plain.nit, ours["iterations"])


def test_a_basis_of_other_features_is_refused():
    from nclib.logistic import covariance_basis

    features, labels = rank_deficient_problem()
    with pytest.raises(ValueError, match="basis"):
        fit_logistic(features, labels, num_classes=3, l2=0.1, basis=covariance_basis(features[:100]))


def test_fewer_rows_than_columns_use_the_span_of_the_rows_exactly():
    # N < D: the basis is the (N - 1)-dimensional span of the centred rows; the optimum
    # must still be scikit-learn's, and a warm start with weights outside the span (which
    # change no training prediction) must reach the same optimum
    from sklearn.linear_model import LogisticRegression

    from nclib.logistic import covariance_basis

    rng = np.random.default_rng(8)
    labels = np.arange(30) % 3
    features = rng.normal(size=(30, 100)) + rng.normal(size=(3, 100))[labels]
    active, mean, eigenvalues, vectors, projected = covariance_basis(features)
    assert eigenvalues.shape == (29,) and vectors.shape == (100, 29) and projected.shape == (30, 29)
    np.testing.assert_allclose(vectors.T @ vectors, np.eye(29), atol=1e-10)
    np.testing.assert_allclose(projected, (features - features.mean(0)) @ vectors, atol=1e-10)
    l2 = 1e-2
    ours = fit_logistic(features, labels, num_classes=3, l2=l2, gtol=1e-8)
    start = np.concatenate([rng.normal(size=300), np.zeros(3)])
    warm = fit_logistic(features, labels, num_classes=3, l2=l2, gtol=1e-8, init=start)
    with threadpool_limits(limits=1, user_api="blas"):
        reference = LogisticRegression(C=1 / (l2 * 30), tol=1e-12, max_iter=100_000).fit(features, labels)
    theirs = sklearn_objective(reference, features, labels, l2)
    for fit in (ours, warm):
        assert fit["converged"]
        assert fit["objective"] == pytest.approx(theirs, rel=1e-6)
    np.testing.assert_allclose(warm["weight"], ours["weight"], atol=1e-5)
