"""The head regime as a convex problem, solved to convergence: a noise-free ground truth.

The paper trains the linear head on a frozen backbone with Adam for a fixed number of
epochs and keeps the best checkpoint on validation (:func:`nclib.transfer.head_transfer`).
Whether that head has converged, and how much of its test metric is the seed's noise,
is then an empirical question. Yet a linear head on frozen embeddings *is* multinomial
logistic regression, a convex problem with a unique optimum once an L2 penalty is
added. :func:`convex_head_transfer` solves it exactly instead:

* the embeddings are standardised with the training split's mean and standard deviation
  (a column that is constant on the training split is only centred: it is zero there,
  so its weight stays exactly zero);
* for each L2 strength ``l2`` of a grid the objective

  .. math:: f(W, b) = \\frac{1}{N} \\sum_i -\\log \\operatorname{softmax}(x_i W + b)_{y_i}
            + \\frac{\\ell_2}{2} \\lVert W \\rVert_F^2

  (no penalty on the bias) is minimised in float64 by full-batch L-BFGS
  (:func:`nclib.logistic.fit_logistic`: ``L-BFGS-B``, exact analytic gradient),
  preconditioned by rescaling the features in the eigenbasis of their covariance (a
  change of variables with the same minimiser), until the largest gradient component is below ``gtol`` (default 1e-6, a hundred times tighter
  than scikit-learn's default ``tol``), warm-started from the previous, more strongly
  penalised, solution;
* the grid point with the best validation metric is kept (ties go to the stronger
  penalty) and scored on the test split.

It has the same minimiser as scikit-learn's ``LogisticRegression(C=C)`` (which minimises
``C * sum of cross-entropies + ||W||^2 / 2``) when ``l2 = 1 / (C * N)``. No seed enters:
the result is deterministic, so one run per model replaces the paper's ten seeds.

The quick profiles of both experiments train their heads this way (chapters "The image
experiment" and "The audio experiment"); "The caveats, measured" refits it on other
training sets and "What each score costs" times it.

References: Suresh, Abrol and Thakur (2023), Section 4 (the head regime); Liu and
Nocedal (1989), "On the limited memory BFGS method for large scale optimization";
Byrd, Lu, Nocedal and Zhu (1995), L-BFGS-B; Nocedal and Wright (2006), *Numerical
Optimization*, 2nd ed., Section 5.1 (preconditioning by a change of variables).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from nclib.logistic import GTOL, _as_features, _as_labels, _probs, covariance_basis, fit_logistic, standardizer

DEFAULT_L2_GRID = tuple(float(v) for v in np.logspace(0, -6, 7))
"""L2 strengths tried by default, 1 down to 1e-6 (one per decade), on standardised features."""

GRID_PATIENCE = 1
"""Grid points without a better validation metric after which the L2 path stops."""



@dataclass
class ConvexHeadResult:
    """Outcome of :func:`convex_head_transfer`.

    Attributes
    ----------
    state : dict of str to ndarray
        ``weight`` (C, D) and ``bias`` (C,), float32, of the kept head acting on the *raw*
        (unstandardised) features, the layout of ``torch.nn.Linear(D, C)``.
    test_metric : float
        Metric of the kept head on the test split (computed from ``test_probs``).
    test_probs : ndarray of shape (N_test, C), float32
        Its predicted test probabilities.
    best_val_metric : float
        Validation metric of the kept head.
    l2 : float
        The L2 strength of the kept head.
    iterations : int
        L-BFGS iterations of the kept head's fit (from its warm start).
    gradient_norm : float
        Largest absolute gradient component at the kept head's solution.
    converged : bool
        ``gradient_norm <= gtol`` for the kept head.
    objective : float
        Its objective value (mean cross-entropy + ``l2 / 2 * ||W||^2``).
    history : pandas.DataFrame
        One row per grid point, in the order solved (strongest penalty first): ``l2``,
        ``val_metric``, ``iterations``, ``gradient_norm``, ``converged``, ``objective``.
    """

    state: dict
    test_metric: float
    test_probs: np.ndarray
    best_val_metric: float
    l2: float
    iterations: int
    gradient_norm: float
    converged: bool
    objective: float
    history: pd.DataFrame


# ----------------------------------------------------------------------------- checks
def _check_l2_grid(l2_grid) -> tuple:
    grid = DEFAULT_L2_GRID if l2_grid is None else tuple(np.atleast_1d(np.asarray(l2_grid, dtype=np.float64)))
    if not grid or not all(math.isfinite(v) and v > 0 for v in grid) or len(set(grid)) != len(grid):
        raise ValueError(f"l2_grid must hold distinct positive finite numbers, got {l2_grid!r}")
    return tuple(sorted((float(v) for v in grid), reverse=True))


# ----------------------------------------------------------------------------- public API
def convex_head_transfer(train_features, train_labels, val_features, val_labels, test_features, test_labels,
                         *, num_classes: int, metric: str = "accuracy", l2_grid=None,
                         gtol: float = GTOL, blas_threads: int | None = 1,
                         grid_patience: int | None = GRID_PATIENCE) -> ConvexHeadResult:
    """Regime (a) solved exactly: L2-penalised multinomial logistic regression on frozen embeddings.

    Standardise with the training split's statistics (:func:`~nclib.logistic.standardizer`), fit
    :func:`~nclib.logistic.fit_logistic` for every L2 strength of ``l2_grid`` from the strongest down
    (each fit warm-started from the previous one), keep the one with the best validation
    metric (ties: the stronger penalty) and score it on the test split. Deterministic: no
    seed, no minibatches, no epochs.

    The path stops early: once ``grid_patience`` consecutive weaker penalties have not
    beaten the best validation metric so far, the remaining, weaker ones are not tried.
    Along a path of decreasing penalties the validation metric typically rises and then
    levels off or falls, and the weakest penalties are by far the most expensive fits
    (the problem approaches separability: thousands of L-BFGS iterations instead of
    tens), so this keeps the choice on validation while skipping most of the cost.

    Parameters
    ----------
    train_features, val_features, test_features : array-like of shape (N_split, D)
        Embeddings of each split by the frozen backbone.
    train_labels, val_labels, test_labels : array-like of shape (N_split,)
        Integer labels in ``range(num_classes)``; every class must occur in training.
    num_classes : int
    metric : {"accuracy", "auroc"}
        Picks the L2 strength on validation and scores the test split
        (:func:`nclib.transfer.score_predictions`).
    l2_grid : sequence of float, optional
        Positive L2 strengths (on standardised features); default :data:`DEFAULT_L2_GRID`,
        1 to 1e-6. Solved in decreasing order whatever the order given.
    gtol : float
        Convergence tolerance of every fit (largest gradient component).
    blas_threads : int or None
        As in :func:`~nclib.logistic.fit_logistic`.
    grid_patience : int or None
        Stop the path after this many consecutive grid points without a better validation
        metric (default :data:`GRID_PATIENCE`); ``None``: solve the whole grid. The
        ``history`` lists only the points solved.

    Returns
    -------
    ConvexHeadResult

    See Also
    --------
    nclib.transfer.head_transfer : the paper's Adam protocol (per seed).

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1, 2], 20)
    >>> features = rng.normal(size=(60, 4)) + 3 * np.eye(3, 4)[labels]
    >>> result = convex_head_transfer(features, labels, features, labels, features, labels,
    ...                               num_classes=3, l2_grid=[1e-1, 1e-2])
    >>> result.converged, result.test_probs.shape, result.history.columns.tolist()[:3]
    (True, (60, 3), ['l2', 'val_metric', 'iterations'])
    >>> result.test_metric > 0.9
    True
    """
    from nclib.transfer import METRICS, score_predictions

    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; known: {METRICS}")
    if not isinstance(num_classes, (int, np.integer)) or num_classes < 2:
        raise ValueError(f"num_classes must be an integer >= 2, got {num_classes!r}")
    grid = _check_l2_grid(l2_grid)
    if grid_patience is not None and (not isinstance(grid_patience, (int, np.integer)) or grid_patience < 1):
        raise ValueError(f"grid_patience must be a positive integer or None, got {grid_patience!r}")
    splits = {}
    for name, features, labels in (("train", train_features, train_labels),
                                   ("validation", val_features, val_labels),
                                   ("test", test_features, test_labels)):
        features = _as_features(features, f"{name} features")
        splits[name] = (features, _as_labels(labels, num_classes, len(features), f"{name} labels"))
    widths = {features.shape[1] for features, _ in splits.values()}
    if len(widths) != 1:
        raise ValueError(f"train, validation and test features differ in width: {sorted(widths)}")
    if metric == "auroc":
        if num_classes != 2:
            raise ValueError(f"auroc needs a binary task, got {num_classes} classes")
        if len(np.unique(splits["validation"][1])) < 2:
            raise ValueError("auroc needs both classes in the validation split")
    mean, scale = standardizer(splits["train"][0])
    standard = {name: ((features - mean) / scale, labels) for name, (features, labels) in splits.items()}
    train_x, train_y = standard["train"]
    val_x, val_y = standard["validation"]
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=blas_threads, user_api="blas"):
        basis = covariance_basis(train_x)  # shared by the whole path
    rows, best, theta, stale = [], None, None, 0
    for l2 in grid:
        if grid_patience is not None and stale >= grid_patience:
            break
        fit = fit_logistic(train_x, train_y, num_classes=num_classes, l2=l2, init=theta, gtol=gtol,
                           blas_threads=blas_threads, basis=basis)
        theta = fit["theta"]
        val_metric = score_predictions(metric, val_y, _probs(val_x, fit["weight"], fit["bias"]))
        rows.append((l2, val_metric, fit["iterations"], fit["gradient_norm"], fit["converged"], fit["objective"]))
        if best is None or val_metric > best[1]:
            best, stale = (l2, val_metric, fit), 0
        else:
            stale += 1
    l2, best_val, fit = best
    test_x, test_y = standard["test"]
    test_probs = _probs(test_x, fit["weight"], fit["bias"]).astype(np.float32)
    weight = fit["weight"] / scale[:, None]  # fold the standardisation into the raw-feature head
    bias = fit["bias"] - mean @ weight
    state = {"weight": weight.T.astype(np.float32), "bias": bias.astype(np.float32)}
    history = pd.DataFrame(rows, columns=["l2", "val_metric", "iterations", "gradient_norm", "converged",
                                          "objective"])
    return ConvexHeadResult(state=state, test_metric=score_predictions(metric, test_y, test_probs),
                            test_probs=test_probs, best_val_metric=float(best_val), l2=float(l2),
                            iterations=int(fit["iterations"]), gradient_norm=float(fit["gradient_norm"]),
                            converged=bool(fit["converged"]), objective=float(fit["objective"]), history=history)


__all__ = ["DEFAULT_L2_GRID", "GRID_PATIENCE", "ConvexHeadResult", "convex_head_transfer"]
