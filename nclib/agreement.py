"""Whether transferability scores agree with each other on one pool of models.

Each score is first oriented by its ``greater_is_better`` (as in :mod:`nclib.evaluate`),
so that larger always means better; then :func:`score_agreement` compares the orders
two scores give the models, and :func:`score_picks` names the model each score would
choose. Used by the chapter "The caveats, measured".
"""

from __future__ import annotations

import pandas as pd

from nclib.evaluate import score_sign


def oriented_scores(scores: pd.DataFrame, greater_is_better=None) -> pd.DataFrame:
    """Scores as a model x score table, negated where lower is better (larger = better).

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"] * 2, "score": ["nc", "nc", "logme", "logme"],
    ...                   "value": [0.2, 0.4, 1.0, 2.0]})
    >>> oriented_scores(s).loc["a"].to_dict()
    {'nc': -0.2, 'logme': 1.0}
    """
    wide = scores.pivot(index="model", columns="score", values="value")
    order = list(dict.fromkeys(scores["score"]))
    signs = pd.Series({s: score_sign(s, greater_is_better) for s in order})
    return wide[order] * signs


def score_agreement(scores: pd.DataFrame, method: str = "kendall", greater_is_better=None) -> pd.DataFrame:
    """Rank correlation between every pair of scores across the models of one pool.

    Each score is oriented first, so 1 means two scores order the models identically
    and -1 that one reverses the other.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    method : {"kendall", "spearman"}

    Returns
    -------
    pandas.DataFrame
        Square, indexed by score on both axes.

    Examples
    --------
    >>> s = pd.DataFrame({"model": list("abc") * 2, "score": ["nc"] * 3 + ["logme"] * 3,
    ...                   "value": [0.1, 0.2, 0.3, 3.0, 2.0, 1.0]})
    >>> float(score_agreement(s).loc["nc", "logme"])
    1.0
    """
    if method not in ("kendall", "spearman"):
        raise ValueError(f"method must be 'kendall' or 'spearman', got {method!r}")
    return oriented_scores(scores, greater_is_better).corr(method=method)


def score_picks(scores: pd.DataFrame, greater_is_better=None) -> pd.Series:
    """The model each score rates best.

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"] * 2, "score": ["nc", "nc", "logme", "logme"],
    ...                   "value": [0.2, 0.4, 1.0, 2.0]})
    >>> score_picks(s).to_dict()
    {'nc': 'a', 'logme': 'b'}
    """
    return oriented_scores(scores, greater_is_better).idxmax(axis=0).rename("pick")


__all__ = ["oriented_scores", "score_agreement", "score_picks"]
