"""The paper's reported numbers, as data, and how significant they are at their pool sizes.

Suresh, Abrol and Thakur (2023) report the absolute Pearson coefficient between each
score and the seed-averaged transfer performance: CIFAR-10 (accuracy, Figure 2) over six
ImageNet models — ResNet-50, EfficientNet-B0, Xception, DenseNet-121, NASNet-Mobile,
MobileNet-V2 — and Coswara COVID-19 detection (AUROC, Figure 3) over the five models of
Table 1 — the DCASE 2018 baseline pre-trained on acoustic scenes, and the CNN and CRNN
each pre-trained on music genres (GTZAN) and on speech commands. With five or six points
an |r| must exceed 0.878 or 0.811 to be significant at 5 % (two-sided t test).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from nclib.uncertainty import critical_pearson, pearson_p_value

#: Pool sizes read from the paper (Section 4.2 and Table 1).
NUM_MODELS = {"cifar10": 6, "coswara": 5}
#: Performance metric per experiment.
METRIC = {"cifar10": "accuracy", "coswara": "auroc"}
#: Where each number is printed.
SOURCE = {"cifar10": "Figure 2 caption", "coswara": "Figure 3 caption"}

#: (experiment, regime, score) -> reported |Pearson|. Regimes as in nclib: "head" (only
#: the new linear layer trained) and "full" (the whole network fine-tuned).
REPORTED = {
    ("cifar10", "head", "leep"): 0.44, ("cifar10", "head", "logme"): 0.76, ("cifar10", "head", "nc"): 0.93,
    ("cifar10", "full", "leep"): 0.47, ("cifar10", "full", "logme"): 0.79, ("cifar10", "full", "nc"): 0.91,
    ("coswara", "head", "leep"): 0.68, ("coswara", "head", "logme"): 0.84, ("coswara", "head", "nc"): 0.86,
    ("coswara", "full", "leep"): 0.61, ("coswara", "full", "logme"): 0.83, ("coswara", "full", "nc"): 0.85,
}

EXPERIMENTS = tuple(NUM_MODELS)

__all__ = ["EXPERIMENTS", "METRIC", "NUM_MODELS", "REPORTED", "compare", "reported", "reported_p_value"]


def reported_p_value(experiment: str, regime: str, score: str) -> float:
    """The p-value of one reported |Pearson| at the paper's pool size.

    The two-sided t-test p-value of ``REPORTED[experiment, regime, score]`` with
    ``NUM_MODELS[experiment]`` models (:func:`nclib.uncertainty.pearson_p_value`), the
    value the ``p_value`` column of :func:`reported` holds.

    Parameters
    ----------
    experiment : {"cifar10", "coswara"}
    regime : {"head", "full"}
    score : {"nc", "leep", "logme"}

    Returns
    -------
    float
        In [0, 1].

    Raises
    ------
    KeyError
        A value the paper does not report.

    Examples
    --------
    The paper's LEEP on CIFAR-10 (head regime, |r| = 0.44 over six networks):

    >>> round(reported_p_value("cifar10", "head", "leep"), 2)
    0.38
    """
    key = (experiment, regime, score)
    if key not in REPORTED:
        raise KeyError(f"the paper reports no |Pearson| for {key}; it reports {sorted(REPORTED)}")
    return float(pearson_p_value(REPORTED[key], NUM_MODELS[experiment]))


def reported(alpha: float = 0.05) -> pd.DataFrame:
    """The paper's |Pearson| values with their p-values at the paper's pool sizes.

    Parameters
    ----------
    alpha : float
        Significance level for the ``significant`` column.

    Returns
    -------
    pandas.DataFrame
        Columns ``experiment, regime, score, metric, abs_pearson, num_models, p_value,
        critical, significant, source``: ``p_value`` is the two-sided t-test p-value of
        |r| with ``num_models`` pairs (:func:`nclib.uncertainty.pearson_p_value`),
        ``critical`` the smallest significant |r| (:func:`nclib.uncertainty.critical_pearson`).

    References
    ----------
    A. K. Suresh, V. Abrol, A. Thakur. Pitfalls in measuring neural transferability.
    NeurIPS 2023 Workshop on Symmetry and Geometry in Neural Representations.

    Examples
    --------
    >>> table = reported()
    >>> table.groupby("experiment").significant.sum().to_dict()
    {'cifar10': 2, 'coswara': 0}
    >>> round(float(table.query("experiment == 'cifar10' and regime == 'head' and score == 'nc'").p_value.iloc[0]), 4)
    0.0072
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha!r}")
    rows = []
    for (experiment, regime, score), r in REPORTED.items():
        n = NUM_MODELS[experiment]
        p = pearson_p_value(r, n)
        rows.append((experiment, regime, score, METRIC[experiment], r, n, p, critical_pearson(n, alpha),
                     bool(p < alpha), SOURCE[experiment]))
    return pd.DataFrame(rows, columns=["experiment", "regime", "score", "metric", "abs_pearson", "num_models",
                                       "p_value", "critical", "significant", "source"])


def compare(evaluation: pd.DataFrame, experiment: str, alpha: float = 0.05) -> pd.DataFrame:
    """Put our |Pearson| beside the paper's, for the scores and regimes the paper reports.

    Parameters
    ----------
    evaluation : pandas.DataFrame
        Columns ``score, regime, measure, value`` (from :func:`nclib.evaluate.evaluate_run`),
        optionally ``low, high, p_value`` (from
        :func:`nclib.uncertainty.evaluation_with_intervals`). Only ``abs_pearson`` rows are read.
    experiment : {"cifar10", "coswara"}
    alpha : float

    Returns
    -------
    pandas.DataFrame
        One row per (regime, score) the paper reports: ``regime, score, paper,
        paper_p_value, paper_significant, num_models, ours, low, high, p_value,
        paper_in_interval`` (``ours`` etc. NaN where our evaluation lacks the pair;
        ``paper_in_interval`` is NaN without an interval).

    Examples
    --------
    >>> ours = pd.DataFrame({"score": ["nc", "leep"], "regime": "head", "measure": "abs_pearson",
    ...                      "value": [0.95, 0.2], "low": [0.9, 0.0], "high": [0.99, 0.5], "p_value": [0.01, 0.6]})
    >>> table = compare(ours, "cifar10")
    >>> table.query("regime == 'head'")[["score", "paper", "ours", "paper_in_interval"]].values.tolist()
    [['leep', 0.44, 0.2, 1.0], ['logme', 0.76, nan, nan], ['nc', 0.93, 0.95, 1.0]]
    """
    if experiment not in NUM_MODELS:
        raise ValueError(f"unknown experiment {experiment!r}; known: {EXPERIMENTS}")
    needed = {"score", "regime", "measure", "value"}
    if not needed <= set(evaluation.columns):
        raise ValueError(f"evaluation must have columns {sorted(needed)}, got {list(evaluation.columns)}")
    paper = reported(alpha)
    paper = paper[paper["experiment"] == experiment]
    ours = evaluation[evaluation["measure"] == "abs_pearson"]
    if ours.duplicated(["score", "regime"]).any():
        raise ValueError("evaluation has more than one abs_pearson row per score and regime")
    ours = ours.set_index(["regime", "score"])
    rows = []
    for row in paper.itertuples(index=False):
        key = (row.regime, row.score)
        found = key in ours.index
        get = (lambda col: float(ours.loc[key, col]) if found and col in ours.columns else float("nan"))
        low, high = get("low"), get("high")
        inside = float(low <= row.abs_pearson <= high) if np.isfinite(low) and np.isfinite(high) else float("nan")
        rows.append((row.regime, row.score, row.abs_pearson, row.p_value, row.significant, row.num_models,
                     get("value"), low, high, get("p_value"), inside))
    return pd.DataFrame(rows, columns=["regime", "score", "paper", "paper_p_value", "paper_significant",
                                       "num_models", "ours", "low", "high", "p_value", "paper_in_interval"])
