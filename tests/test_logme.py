"""LogME against an independent implementation written from the evidence formula.

The reference here never uses an eigendecomposition or MacKay's updates. It evaluates
the evidence directly, with Cholesky factors, in whichever of its two equivalent forms
is well conditioned (the marginal likelihood y ~ N(0, F F^T / alpha + I / beta) when
N < D, the weight-space form with A = alpha I + beta F^T F when N >= D), and maximises
it numerically over (log alpha, log beta) from several starting points.
"""

import warnings

import numpy as np
import pytest
from scipy import optimize
from scipy.linalg import cho_factor, cho_solve

from nclib import logme_score
from nclib.scores.logme import ConvergenceWarning


def marginal_log_likelihood(log_alpha, log_beta, features, y):
    """log N(y; 0, F F^T / alpha + I / beta), an N x N Cholesky."""
    covariance = features @ features.T / np.exp(log_alpha) + np.eye(len(y)) / np.exp(log_beta)
    factor = cho_factor(covariance, lower=True)
    log_det = 2.0 * np.sum(np.log(np.diag(factor[0])))
    return -0.5 * (y @ cho_solve(factor, y) + log_det + len(y) * np.log(2 * np.pi))


def weight_space_log_evidence(log_alpha, log_beta, features, y):
    """The same evidence via the posterior of w: A = alpha I + beta F^T F, m = beta A^-1 F^T y."""
    alpha, beta = np.exp(log_alpha), np.exp(log_beta)
    num_samples, dim = features.shape
    factor = cho_factor(alpha * np.eye(dim) + beta * features.T @ features, lower=True)
    mean = beta * cho_solve(factor, features.T @ y)
    residual = y - features @ mean
    return (0.5 * dim * log_alpha + 0.5 * num_samples * log_beta
            - 0.5 * beta * residual @ residual - 0.5 * alpha * mean @ mean
            - np.sum(np.log(np.diag(factor[0]))) - 0.5 * num_samples * np.log(2 * np.pi))


def log_evidence(log_alpha, log_beta, features, y):
    form = marginal_log_likelihood if len(y) < features.shape[1] else weight_space_log_evidence
    try:
        return form(log_alpha, log_beta, features, y)
    except np.linalg.LinAlgError:
        return -1e300


def reference_logme(features, labels, log_beta_max=40.0):
    features = np.asarray(features, dtype=float)
    classes = np.unique(labels)
    best = []
    for c in classes:
        y = (np.asarray(labels) == c).astype(float)
        objective = lambda p: -log_evidence(p[0], p[1], features, y)  # noqa: E731
        bounds = [(-25.0, 25.0), (-25.0, log_beta_max)]
        results = [
            optimize.minimize(objective, start, method="L-BFGS-B", bounds=bounds,
                              options={"ftol": 1e-15, "gtol": 1e-12, "maxiter": 10_000})
            for start in ([0.0, 0.0], [-5.0, 5.0], [5.0, -2.0], [0.0, 20.0])
        ]
        best.append(-min(r.fun for r in results) / len(y))
    return float(np.mean(best))


@pytest.mark.parametrize("num_samples, dim, num_classes", [(60, 5, 3), (120, 12, 4), (40, 8, 2)])
def test_matches_independent_maximisation_when_n_exceeds_d(num_samples, dim, num_classes):
    rng = np.random.default_rng(num_samples)
    labels = rng.integers(0, num_classes, num_samples)
    features = rng.normal(size=(num_samples, dim)) + 0.8 * np.eye(num_classes, dim)[labels]
    assert logme_score(features, labels) == pytest.approx(reference_logme(features, labels), abs=1e-6)


@pytest.mark.parametrize("num_samples, dim", [(12, 30), (20, 50)])
def test_matches_the_beta_to_infinity_supremum_when_n_below_d(num_samples, dim):
    rng = np.random.default_rng(dim)
    labels = np.arange(num_samples) % 3
    features = rng.normal(size=(num_samples, dim))
    reference = reference_logme(features, labels)
    assert logme_score(features, labels) == pytest.approx(reference, abs=1e-6)
    # the supremum lies at large beta: capping beta at 1 loses a lot of evidence
    assert reference_logme(features, labels, log_beta_max=0.0) < reference - 0.1


def test_float32_input_gives_the_float64_result():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 5, 400)
    features = rng.normal(size=(400, 32)) + np.eye(5, 32)[labels]
    exact = logme_score(features, labels)
    assert logme_score(features.astype(np.float32), labels) == pytest.approx(exact, abs=1e-4)


def test_constant_and_duplicated_columns_do_not_crash():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 90)
    base = rng.normal(size=(90, 4)) + np.eye(3, 4)[labels]
    features = np.hstack([base, base[:, :2], np.ones((90, 3)), np.zeros((90, 2))])
    value = logme_score(features, labels)
    assert np.isfinite(value)
    # duplicating columns changes the prior, not the span: compare with the reference
    assert value == pytest.approx(reference_logme(features, labels), abs=1e-6)


def test_labels_of_any_hashable_type_give_the_same_value():
    rng = np.random.default_rng(5)
    codes = rng.integers(0, 3, 60)
    features = rng.normal(size=(60, 4)) + np.eye(3, 4)[codes]
    names = np.array(["cat", "dog", "emu"])[codes]
    sparse = np.array([3, 17, 100])[codes]
    assert logme_score(features, names) == pytest.approx(logme_score(features, codes), abs=1e-12)
    assert logme_score(features, sparse) == pytest.approx(logme_score(features, codes), abs=1e-12)


def test_informative_features_score_higher():
    rng = np.random.default_rng(6)
    labels = np.repeat(np.arange(4), 50)
    signal = rng.normal(size=(200, 8)) + 3 * np.eye(4, 8)[labels]
    noise = rng.normal(size=(200, 8))
    assert logme_score(signal, labels) > logme_score(noise, labels)


def test_warns_when_max_iter_is_reached():
    rng = np.random.default_rng(7)
    labels = np.repeat([0, 1], 30)
    features = rng.normal(size=(60, 5)) + labels[:, None]
    with pytest.warns(ConvergenceWarning, match="max_iter=1"):
        logme_score(features, labels, max_iter=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        logme_score(features, labels)


def test_unbounded_evidence_is_refused_by_name():
    rng = np.random.default_rng(8)
    base = rng.normal(size=(6, 20))
    features = np.vstack([base, base])  # duplicated samples, N = 12 < D = 20, rank 6
    labels = np.tile(["a", "b", "c"], 4)
    with pytest.raises(ValueError, match="unbounded"):
        logme_score(features, labels)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="tol"):
        logme_score(np.eye(4), [0, 1, 0, 1], tol=0)
    with pytest.raises(ValueError, match="all zero"):
        logme_score(np.zeros((4, 2)), [0, 1, 0, 1])


@pytest.mark.parametrize("seed, num_samples, dim", [(6, 10, 64), (0, 21, 192), (23, 21, 512)])
def test_slow_ridges_are_finished_without_warning_and_match_the_reference(seed, num_samples, dim):
    # ReLU-like features with N < D: some classes have an interior maximum on a flat ridge
    # where MacKay's updates creep for thousands of steps; others peak at beta -> infinity.
    rng = np.random.default_rng(seed)
    for _ in range(4):  # the same draws that exposed the slow cases
        features = np.maximum(rng.normal(size=(num_samples, dim)), 0)
        labels = rng.integers(0, 3, num_samples)
        if len(set(labels)) == 3:
            break
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = logme_score(features, labels)
    assert value == pytest.approx(reference_logme(features, labels), abs=1e-6)


# ---- the maximum is global ------------------------------------------------------------

def brute_force_logme(features, labels):
    """Dense 2-D grid over (log alpha, log beta) from the SVD, then L-BFGS from the best cells
    on the Cholesky form of the evidence (:func:`log_evidence` above)."""
    features = np.asarray(features, dtype=float)
    num_samples, dim = features.shape
    _, singular, right_t = np.linalg.svd(features, full_matrices=False)
    lam = singular**2  # (D,) eigenvalues of F^T F (N > D here)
    lam_pos = lam[lam > 0]
    log_alpha = np.arange(np.log(lam_pos.min()) - 20, np.log(lam_pos.max()) + 20, 0.15)
    best = []
    for c in np.unique(labels):
        y = (np.asarray(labels) == c).astype(float)
        left = features @ right_t.T / singular  # U
        proj = left.T @ y
        outside = y @ y - proj @ proj
        base = np.log(num_samples / (y @ y))
        log_beta = np.arange(base - 5, base + 35, 0.15)
        a = np.exp(log_alpha)[:, None, None]
        b = np.exp(log_beta)[None, :, None]
        total = a + b * lam  # (A, B, D)
        weight_norm = np.sum(b**2 * lam * proj**2 / total**2, axis=-1)
        residual = np.sum((a / total) ** 2 * proj**2, axis=-1) + outside
        grid = (0.5 * dim * np.log(a[..., 0]) + 0.5 * num_samples * np.log(b[..., 0])
                - 0.5 * np.sum(np.log(total), axis=-1) - 0.5 * b[..., 0] * residual
                - 0.5 * a[..., 0] * weight_norm - 0.5 * num_samples * np.log(2 * np.pi))
        starts = np.argsort(grid, axis=None)[::-1][:5]
        values = [grid.ravel()[starts[0]]]
        for flat in starts:
            i, j = np.unravel_index(flat, grid.shape)
            result = optimize.minimize(lambda p: -log_evidence(p[0], p[1], features, y),
                                       [log_alpha[i], log_beta[j]], method="Nelder-Mead",
                                       options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 4000})
            values.append(-result.fun)
        best.append(max(values) / num_samples)
    return float(np.mean(best))


def mackay_from_one(features, labels, iterations=1000):
    """The reference code's fixed point, started at alpha = beta = 1 (for contrast)."""
    num_samples, dim = features.shape
    _, singular, right_t = np.linalg.svd(features, full_matrices=False)
    lam = singular**2
    left = features @ right_t.T / singular
    values = []
    for c in np.unique(labels):
        y = (np.asarray(labels) == c).astype(float)
        proj = left.T @ y
        outside = y @ y - proj @ proj
        alpha = beta = 1.0
        for _ in range(iterations):
            total = alpha + beta * lam
            gamma = np.sum(beta * lam / total)
            weight_norm = np.sum(beta**2 * lam * proj**2 / total**2)
            residual = np.sum((alpha / total) ** 2 * proj**2) + outside
            new_alpha, new_beta = gamma / weight_norm, (num_samples - gamma) / residual
            if not (np.isfinite(new_alpha) and np.isfinite(new_beta)):
                break
            done = abs(np.log(new_alpha / alpha)) + abs(np.log(new_beta / beta)) < 1e-12
            alpha, beta = new_alpha, new_beta
            if done:
                break
        total = alpha + beta * lam
        weight_norm = np.sum(beta**2 * lam * proj**2 / total**2)
        residual = np.sum((alpha / total) ** 2 * proj**2) + outside
        values.append((0.5 * dim * np.log(alpha) + 0.5 * num_samples * np.log(beta) - 0.5 * np.sum(np.log(total))
                       - 0.5 * beta * residual - 0.5 * alpha * weight_norm
                       - 0.5 * num_samples * np.log(2 * np.pi)) / num_samples)
    return float(np.mean(values))


def badly_scaled(seed):
    rng = np.random.default_rng(seed)
    num_samples, dim = int(rng.integers(240, 301)), int(rng.integers(12, 17))
    labels = rng.integers(0, 3, num_samples)
    features = rng.normal(size=(num_samples, dim)) + 2.0 * np.eye(3, dim)[labels]
    return features * 10.0 ** rng.uniform(-4, 4, size=dim), labels


@pytest.mark.parametrize("seed", [0, 11, 18, 21, 3])
def test_global_maximum_on_badly_scaled_features(seed):
    features, labels = badly_scaled(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = logme_score(features, labels)
    assert value == pytest.approx(brute_force_logme(features, labels), abs=1e-7)


def test_the_fixed_point_from_one_stops_on_a_lower_peak_where_logme_does_not():
    features, labels = badly_scaled(11)
    with np.errstate(all="ignore"):
        stuck = mackay_from_one(features, labels)
    assert stuck < logme_score(features, labels) * (1 - 0.05)  # several percent below (LogME < 0)
