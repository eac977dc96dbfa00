"""Transferability scores and their registry.

Every score is a plain function on arrays:

* ``fn(features, labels, **options) -> float`` when it reads embeddings
  (``needs="features"``);
* ``fn(source_probs, labels, **options) -> float`` when it reads the source classifier's
  probabilities (``needs="source_probs"``);
* ``fn(features_list, labels, **options) -> ndarray of shape (M,)`` when its value is
  normalised across a pool of M candidate models (``needs="features_pool"``): the value
  of one model depends on which others are in the pool.

:data:`REGISTRY` maps each name to a :class:`ScoreInfo` holding the function, what it
needs, whether larger is better, a citation key of ``book/references.bib`` and the
transforms of the features it is invariant to (``invariances``, names from
:data:`nclib._validation.TRANSFORMS`, for the registered options; derived in each score's
module and verified by ``tests/test_score_robustness.py``).
Evaluation code reads ``greater_is_better`` from here; nothing else guesses a direction.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import pandas as pd
from numpy.typing import ArrayLike

from nclib._validation import TRANSFORMS
from nclib.scores import (etran, gbc, hscore, ideal, knn, leep, linear_probe, logme, nc, nce, ncti, nleep,
                          pactran, sfda, transrate)

from nclib.scores.etran import etran_score
from nclib.scores.gbc import gbc_score
from nclib.scores.hscore import h_score, shrinkage_h_score
from nclib.scores.ideal import ideal_holdout_score
from nclib.scores.knn import knn_score
from nclib.scores.leep import leep_score
from nclib.scores.linear_probe import linear_probe_score
from nclib.scores.logme import logme_score
from nclib.scores.nc import nc_score
from nclib.scores.nce import nce_score
from nclib.scores.ncti import ncti_score
from nclib.scores.nleep import nleep_score
from nclib.scores.pactran import pactran_score
from nclib.scores.sfda import sfda_score
from nclib.scores.transrate import transrate_score

NEEDS = ("features", "source_probs", "features_pool")


@dataclass(frozen=True)
class ScoreInfo:
    """What evaluation and experiments need to know about one score."""

    name: str
    function: Callable
    needs: str
    greater_is_better: bool
    citation: str
    summary: str
    options: Mapping = field(default_factory=dict)
    invariances: frozenset = frozenset()

    def __post_init__(self):
        if self.needs not in NEEDS:
            raise ValueError(f"{self.name}: needs must be one of {NEEDS}, got {self.needs!r}")
        unknown = set(self.invariances) - TRANSFORMS
        if unknown:
            raise ValueError(f"{self.name}: unknown invariances {sorted(unknown)}; known: {sorted(TRANSFORMS)}")
        object.__setattr__(self, "invariances", frozenset(self.invariances))

    @property
    def pool_level(self) -> bool:
        """True when the score is normalised across the candidate pool."""
        return self.needs == "features_pool"


_ENTRIES = [
    ScoreInfo("nc", nc_score, "features", False, "suresh2023pitfalls",
              "within-class spread over the distance between class means (the paper's eq. 2)",
              invariances=nc.INVARIANCES),
    ScoreInfo("leep", leep_score, "source_probs", True, "nguyen2020leep",
              "mean log-likelihood of the empirical source-to-target label predictor",
              invariances=leep.INVARIANCES),
    ScoreInfo("logme", logme_score, "features", True, "you2021logme",
              "maximum evidence of Bayesian linear regression from features to one-hot labels",
              invariances=logme.INVARIANCES),
    ScoreInfo("nce", nce_score, "source_probs", True, "tran2019nce",
              "negative conditional entropy of target labels given hard source predictions",
              invariances=nce.INVARIANCES),
    ScoreInfo("hscore", h_score, "features", True, "bao2019hscore",
              "between-class covariance explained by the pseudo-inverse feature covariance",
              invariances=hscore.INVARIANCES),
    ScoreInfo("shrinkage_hscore", shrinkage_h_score, "features", True, "ibrahim2022newer",
              "H-score with a Ledoit-Wolf shrunk feature covariance",
              invariances=hscore.SHRINKAGE_INVARIANCES),
    ScoreInfo("nleep", nleep_score, "features", True, "li2021nleep",
              "LEEP on the posteriors of a Gaussian mixture fitted to PCA-reduced features",
              {"variance_fraction": 0.8, "components_per_class": 5, "max_dim": 64,
               "max_samples": 10_000, "random_state": 0}, invariances=nleep.INVARIANCES),
    ScoreInfo("gbc", gbc_score, "features", True, "pandy2022gbc",
              "minus the summed Bhattacharyya coefficients between per-class Gaussians",
              {"variant": "diagonal"}, invariances=gbc.INVARIANCES),
    ScoreInfo("transrate", transrate_score, "features", True, "huang2022transrate",
              "coding rate of all features minus the mean coding rate within classes",
              {"eps": 1e-4}, invariances=transrate.INVARIANCES),
    ScoreInfo("sfda", sfda_score, "features", True, "shao2022sfda",
              "true-class posterior of a regularised Fisher discriminant after ConfMix",
              invariances=sfda.INVARIANCES),
    ScoreInfo("pactran", pactran_score, "features", False, "ding2022pactran",
              "PAC-Bayes bound (Gaussian prior) on the risk of a softmax head",
              {"lda_factor": 1.0, "max_samples": 10_000, "random_state": 0}, invariances=pactran.INVARIANCES),
    ScoreInfo("ncti", ncti_score, "features_pool", True, "wang2023ncti",
              "distance from neural collapse, three terms min-max normalised across the pool",
              {"num_components": 64}, invariances=ncti.INVARIANCES),
    ScoreInfo("etran", etran_score, "features_pool", True, "gholami2023etran",
              "energy and LDA terms min-max normalised across the pool",
              {"variant": "paper"}, invariances=etran.INVARIANCES),
    ScoreInfo("knn", knn_score, "features", True, "cover1967nearest",
              "leave-one-out k-nearest-neighbour accuracy on the embeddings",
              {"k": 5, "metric": "euclidean", "max_queries": 2000, "random_state": 0}, invariances=knn.INVARIANCES),
    ScoreInfo("linear_probe", linear_probe_score, "features", True, "kornblith2019better",
              "cross-validated logistic-regression accuracy (the brute-force baseline)",
              # C = 0.1: on near-separable embeddings C = 1 needs ~5x more L-BFGS steps
              {"folds": 5, "C": 0.1, "max_samples": 10_000, "random_state": 0}, invariances=linear_probe.INVARIANCES),
    ScoreInfo("ideal", ideal_holdout_score, "features", True, "suresh2023pitfalls",
              "prototype ideal measure (nclib.scores.ideal): code length of the labels under a Bayesian linear "
              "model fitted on 75 % of the training data and predicting the rest; no size term in this form",
              {"val_fraction": 0.25, "random_state": 0, "mode": "prequential"}, invariances=ideal.INVARIANCES),
]

REGISTRY: dict[str, ScoreInfo] = {entry.name: entry for entry in _ENTRIES}


def _available(info: ScoreInfo, has_probs: bool) -> bool:
    return info.needs != "source_probs" or has_probs


def compute_scores(features: Mapping[str, ArrayLike], labels: ArrayLike,
                   source_probs: Mapping[str, ArrayLike] | None = None, names: Sequence[str] | None = None,
                   options: Mapping[str, Mapping] | None = None) -> pd.DataFrame:
    """Compute registry scores for every model of a pool.

    Parameters
    ----------
    features : dict of str to ndarray of shape (N, D_m)
        Each model's embeddings of the same N target training samples.
    labels : array-like of shape (N,)
        Target labels, any hashable values.
    source_probs : dict of str to ndarray of shape (N, Z_m), optional
        Each model's source-classifier probabilities (needed by LEEP-like scores).
    names : list of str, optional
        Scores to compute (default: every registry score whose inputs are given).
    options : dict of str to dict, optional
        Keyword options per score name.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, score, value, seconds`` (one row per model and score).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> labels = np.repeat([0, 1], 20)
    >>> feats = {"good": rng.normal(size=(40, 3)) + 3 * labels[:, None],
    ...          "bad": rng.normal(size=(40, 3))}
    >>> table = compute_scores(feats, labels, names=["nc", "logme"])
    >>> values = table.pivot(index="model", columns="score", values="value")
    >>> bool(values.loc["good", "nc"] < values.loc["bad", "nc"])
    True
    """
    options = dict(options or {})
    has_probs = source_probs is not None
    if names is None:
        names = [n for n, info in REGISTRY.items() if _available(info, has_probs)]
    rows = []
    for name in names:
        if name not in REGISTRY:
            raise ValueError(f"unknown score {name!r}; known: {sorted(REGISTRY)}")
        info = REGISTRY[name]
        kwargs = {**info.options, **options.get(name, {})}
        if info.needs == "source_probs":
            if not has_probs:
                raise ValueError(f"score {name!r} needs source_probs, which were not given")
            missing = set(features) - set(source_probs)
            if missing:
                raise ValueError(f"score {name!r}: no source_probs for models {sorted(missing)}")
        if info.pool_level:
            start = time.perf_counter()
            values = info.function([features[m] for m in features], labels, **kwargs)
            seconds = (time.perf_counter() - start) / len(features)
            rows += [(m, name, float(v), seconds) for m, v in zip(features, values)]
            continue
        for model in features:
            inputs = source_probs[model] if info.needs == "source_probs" else features[model]
            start = time.perf_counter()
            value = info.function(inputs, labels, **kwargs)
            rows.append((model, name, float(value), time.perf_counter() - start))
    return pd.DataFrame(rows, columns=["model", "score", "value", "seconds"])


__all__ = [
    "REGISTRY", "ScoreInfo", "compute_scores", "leep_score", "logme_score", "nc_score",
    "nce_score", "h_score", "shrinkage_h_score", "nleep_score", "gbc_score", "transrate_score",
    "sfda_score", "pactran_score", "ncti_score", "etran_score", "knn_score", "linear_probe_score",
]
