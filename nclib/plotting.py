"""The book's figures. Nothing here runs on import: call :func:`book_style` explicitly."""

from __future__ import annotations

import numpy as np
import pandas as pd

PAPER_ABS_PEARSON = pd.DataFrame(
    [("cifar10", "head", "leep", 0.44), ("cifar10", "head", "logme", 0.76), ("cifar10", "head", "nc", 0.93),
     ("cifar10", "full", "leep", 0.47), ("cifar10", "full", "logme", 0.79), ("cifar10", "full", "nc", 0.91),
     ("coswara", "head", "leep", 0.68), ("coswara", "head", "logme", 0.84), ("coswara", "head", "nc", 0.86),
     ("coswara", "full", "leep", 0.61), ("coswara", "full", "logme", 0.83), ("coswara", "full", "nc", 0.85)],
    columns=["experiment", "regime", "score", "abs_pearson"],
)
"""The absolute Pearson coefficients the paper reports (its Figures 2 and 3)."""


def book_style() -> None:
    """Apply the book's seaborn style (explicit; importing nclib changes no style).

    Examples
    --------
    >>> book_style()
    """
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette="colorblind")


def embedding_panels(snapshots: dict, labels, titles=None, seed: int = 0):
    """Scatter 2-D PCA projections of embeddings side by side (the paper's Figure 1).

    Parameters
    ----------
    snapshots : dict of label to ndarray of shape (N, D)
        E.g. embeddings at the first and the last epoch.
    labels : array-like of shape (N,)
    titles : list of str, optional
    seed : int
        PCA's random state (only used by randomised solvers).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> fig = embedding_panels({"a": rng.normal(size=(20, 3))}, np.repeat([0, 1], 10))
    >>> len(fig.axes)  # one panel and the colour bar
    2
    """
    import matplotlib.pyplot as plt
    from sklearn.decomposition import PCA

    labels = np.asarray(labels)
    fig, axes = plt.subplots(1, len(snapshots), figsize=(4.5 * len(snapshots), 4), squeeze=False)
    for k, (ax, (key, embedding)) in enumerate(zip(axes[0], snapshots.items())):
        points = PCA(n_components=2, random_state=seed).fit_transform(embedding)
        scatter = ax.scatter(points[:, 0], points[:, 1], c=labels, cmap="tab10", s=6, alpha=0.8)
        ax.set_title(titles[k] if titles else str(key))
        ax.set_xlabel("PC 1")
        ax.set_ylabel("PC 2")
    fig.colorbar(scatter, ax=axes[0].tolist(), label="class")
    return fig


def score_vs_performance(scores: pd.DataFrame, transfer: pd.DataFrame, metric_label: str = "accuracy",
                         score_names=None):
    """One panel per score and regime: score value against mean performance (Figure 2 style).

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    transfer : pandas.DataFrame
        Columns ``model, regime, seed, metric, value``.
    metric_label : str
    score_names : list of str, optional
        Scores to show, in order (default: all in ``scores``).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"], "score": "nc", "value": [0.2, 0.4]})
    >>> t = pd.DataFrame({"model": ["a", "b"], "regime": "head", "seed": 0,
    ...                   "metric": "accuracy", "value": [0.9, 0.7]})
    >>> len(score_vs_performance(s, t).axes)
    1
    """
    import matplotlib.pyplot as plt

    from nclib.evaluate import mean_performance

    names = list(score_names) if score_names is not None else list(dict.fromkeys(scores["score"]))
    means = mean_performance(transfer)
    spread = transfer.groupby(["model", "regime"])["value"].std().fillna(0.0)
    regimes = list(dict.fromkeys(means["regime"]))
    fig, axes = plt.subplots(len(regimes), len(names), figsize=(3.6 * len(names), 3.2 * len(regimes)),
                             squeeze=False)
    for row, regime in enumerate(regimes):
        perf = means[means.regime == regime].set_index("model")["value"]
        for col, name in enumerate(names):
            ax = axes[row][col]
            values = scores[scores.score == name].set_index("model")["value"]
            models = [m for m in values.index if m in perf.index]
            errors = [spread.get((m, regime), 0.0) for m in models]
            ax.errorbar(values[models], perf[models], yerr=errors, fmt="o", capsize=3)
            for m in models:
                ax.annotate(m, (values[m], perf[m]), fontsize=7, xytext=(3, 3), textcoords="offset points")
            if len(models) > 1 and np.ptp(values[models]) > 0:
                r = np.corrcoef(values[models], perf[models])[0, 1]
                ax.set_title(f"{name} ({regime}): |r| = {abs(r):.2f}", fontsize=10)
            else:
                ax.set_title(f"{name} ({regime})", fontsize=10)
            ax.set_xlabel(name)
            ax.set_ylabel(f"{metric_label} ({regime})" if col == 0 else "")
    fig.tight_layout()
    return fig


def stability_plot(summary: pd.DataFrame, spread: pd.DataFrame | None = None, *, xlabel: str = "weighted τ",
                   order=None):
    """One row per score, one panel per setup: point, bootstrap interval and spread.

    Parameters
    ----------
    summary : pandas.DataFrame
        Columns ``panel, score, value, low, high`` (e.g. from :func:`nclib.stability.bootstrap_measures`,
        one panel per experiment and regime).
    spread : pandas.DataFrame, optional
        Columns ``panel, score, source, value``: extra values drawn as small markers, one
        marker style per ``source`` (e.g. ``seed``, ``subset``).
    xlabel : str
    order : list of str, optional
        Scores from top to bottom (default: by mean value across panels, best first).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> s = pd.DataFrame({"panel": "a", "score": ["nc", "logme"], "value": [0.5, 0.2],
    ...                   "low": [0.1, -0.3], "high": [0.8, 0.6]})
    >>> len(stability_plot(s).axes)
    1
    """
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys(summary["panel"]))
    if order is None:
        order = summary.groupby("score")["value"].mean().sort_values(ascending=False).index.tolist()
    positions = {score: k for k, score in enumerate(order)}
    fig, axes = plt.subplots(1, len(panels), figsize=(2.9 * len(panels) + 1.2, 0.32 * len(order) + 1.4),
                             sharey=True, squeeze=False)
    markers = {"seed": ("|", "tab:orange"), "subset": ("x", "tab:green")}
    for ax, panel in zip(axes[0], panels):
        part = summary[summary["panel"] == panel]
        y = part["score"].map(positions).to_numpy()
        ax.hlines(y, part["low"], part["high"], color="tab:blue", linewidth=3, alpha=0.45, label="bootstrap interval")
        ax.plot(part["value"], y, "o", color="black", markersize=4, label="all models, seed mean")
        if spread is not None:
            extra = spread[spread["panel"] == panel]
            for source, group in extra.groupby("source", sort=False):
                marker, colour = markers.get(source, (".", "tab:gray"))
                jitter = 0.18 if source == "subset" else -0.18
                ax.plot(group["value"], group["score"].map(positions) + jitter, marker, color=colour,
                        markersize=5, alpha=0.8, linestyle="none", label=f"per {source}")
        ax.axvline(0, color="gray", linewidth=0.8)
        ax.set_title(str(panel), fontsize=10)
        ax.set_xlabel(xlabel)
    axes[0][0].set_yticks(range(len(order)))
    axes[0][0].set_yticklabels(order)
    axes[0][0].invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8, frameon=False)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig



COLUMN_WIDTH_INCHES = 7.0
"""Width of a figure that fills the book's 688-pixel text column at 100 dpi (no shrinking)."""


def performance_intervals(resampled: dict, observed: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Each model's mean performance with a percentile interval from bootstrap replicates.

    Parameters
    ----------
    resampled : dict of str to pandas.DataFrame
        Per regime, a (num_resamples, M) frame of replicated performances, columns the
        models (:func:`nclib.uncertainty.resampled_performance`).
    observed : pandas.DataFrame
        Columns ``model, regime, value``: the observed seed-averaged performance
        (:func:`nclib.evaluate.mean_performance`).
    level : float
        Coverage of the interval.

    Returns
    -------
    pandas.DataFrame
        Columns ``model, regime, value, low, high``.

    Examples
    --------
    >>> draws = {"head": pd.DataFrame({"a": [0.5, 0.6, 0.7], "b": [0.8, 0.8, 0.9]})}
    >>> observed = pd.DataFrame({"model": ["a", "b"], "regime": "head", "value": [0.6, 0.8]})
    >>> performance_intervals(draws, observed, level=0.5)[["model", "low", "high"]].round(2).values.tolist()
    [['a', 0.55, 0.65], ['b', 0.8, 0.85]]
    """
    if not 0 < level < 1:
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    tail = (1 - level) / 2
    rows = []
    for row in observed.itertuples(index=False):
        draws = resampled[row.regime][row.model].to_numpy(float)
        low, high = np.quantile(draws, [tail, 1 - tail])
        rows.append((row.model, row.regime, float(row.value), float(low), float(high)))
    return pd.DataFrame(rows, columns=["model", "regime", "value", "low", "high"])


def score_panels(scores: pd.DataFrame, performance: pd.DataFrame, score_names, *,
                 metric_label: str = "accuracy", regime_labels=None, evaluation=None):
    """Score against transfer performance, one row per regime and one panel per score.

    Sized for the book's text column (:data:`COLUMN_WIDTH_INCHES`) with readable fonts:
    every model is labelled directly beside its point, the vertical bars are the
    performance intervals, and each panel's title carries the oriented Kendall tau or
    |Pearson r| from ``evaluation`` when given.

    Parameters
    ----------
    scores : pandas.DataFrame
        Columns ``model, score, value``.
    performance : pandas.DataFrame
        Columns ``model, regime, value, low, high`` (:func:`performance_intervals`).
    score_names : list of str
        At most three scores, one panel each.
    metric_label : str
    regime_labels : mapping of str to str, optional
        Row labels, e.g. ``{"head": "linear head"}``.
    evaluation : pandas.DataFrame, optional
        Columns ``score, regime, measure, value, low, high``; ``abs_pearson`` is shown in
        the panel titles with its interval.

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["a", "b"], "score": "nc", "value": [0.2, 0.4]})
    >>> p = pd.DataFrame({"model": ["a", "b"], "regime": "head", "value": [0.9, 0.7],
    ...                   "low": [0.88, 0.68], "high": [0.92, 0.72]})
    >>> len(score_panels(s, p, ["nc"]).axes)
    1
    """
    import matplotlib.pyplot as plt

    names = list(score_names)
    if not 1 <= len(names) <= 3:
        raise ValueError(f"score_panels shows one to three scores, got {names}")
    regimes = list(dict.fromkeys(performance["regime"]))
    labels = dict(regime_labels or {})
    fig, axes = plt.subplots(len(regimes), len(names), squeeze=False,
                             figsize=(COLUMN_WIDTH_INCHES, 2.6 * len(regimes) + 0.3))
    for row, regime in enumerate(regimes):
        perf = performance[performance.regime == regime].set_index("model")
        for col, name in enumerate(names):
            ax = axes[row][col]
            values = scores[scores.score == name].set_index("model")["value"]
            models = [m for m in values.index if m in perf.index]
            x, y = values[models].to_numpy(float), perf.loc[models, "value"].to_numpy(float)
            errors = np.vstack([y - perf.loc[models, "low"], perf.loc[models, "high"] - y])
            ax.errorbar(x, y, yerr=np.clip(errors, 0, None), fmt="o", ms=4, capsize=2, lw=1)
            for model, xi, yi in zip(models, x, y):
                ax.annotate(model, (xi, yi), fontsize=7.5, xytext=(3, 2), textcoords="offset points")
            title = name
            if evaluation is not None:
                hit = evaluation.query("score == @name and regime == @regime and measure == 'abs_pearson'")
                if len(hit):
                    r = hit.iloc[0]
                    title = f"{name}: |r| {r.value:.2f} [{r.low:.2f}, {r.high:.2f}]"
            ax.set_title(title, fontsize=9.5)
            ax.tick_params(labelsize=8.5)
            ax.locator_params(axis="x", nbins=4)
            ax.margins(x=0.25)
            if row == len(regimes) - 1:
                ax.set_xlabel(f"{name} score", fontsize=9)
            if col == 0:
                ax.set_ylabel(f"{metric_label}\n({labels.get(regime, regime)})", fontsize=9)
    fig.tight_layout()
    return fig


def significance_heatmap(values: pd.DataFrame, p_values: pd.DataFrame, *, alpha: float = 0.05,
                         label: str = "weighted τ", vmin: float = -1.0, vmax: float = 1.0):
    """A measure for every score and setup as a heatmap, cells with ``p < alpha`` marked.

    Each cell shows the value with two decimals; a significant cell gets an asterisk and
    bold type. Sized for the book's text column (:data:`COLUMN_WIDTH_INCHES`), at most
    six inches tall, fonts of at least 9 points.

    Parameters
    ----------
    values : pandas.DataFrame
        Rows the scores, columns the setups (e.g. ``"digits · head"``); NaN for undefined.
    p_values : pandas.DataFrame
        Same index and columns as ``values``.
    alpha : float
        Significance level, in (0, 1).
    label : str
        Colour-bar label.
    vmin, vmax : float
        Colour range (a diverging map centred between them).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> v = pd.DataFrame({"a · head": [0.9, -0.1]}, index=["nc", "leep"])
    >>> p = pd.DataFrame({"a · head": [0.01, 0.6]}, index=["nc", "leep"])
    >>> [t.get_text() for t in significance_heatmap(v, p).axes[0].texts]
    ['+0.90*', '−0.10']
    """
    import matplotlib.pyplot as plt

    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (values.index.equals(p_values.index) and values.columns.equals(p_values.columns)):
        raise ValueError("values and p_values must have the same index and columns")
    rows, cols = values.shape
    height = min(6.0, 0.3 * rows + 1.6)
    fig, ax = plt.subplots(figsize=(COLUMN_WIDTH_INCHES, height))
    data = values.to_numpy(float)
    image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=vmin, vmax=vmax, aspect="auto")
    middle = (vmin + vmax) / 2
    for i in range(rows):
        for j in range(cols):
            value, p = data[i, j], float(p_values.iat[i, j])
            if not np.isfinite(value):
                ax.text(j, i, "–", ha="center", va="center", fontsize=9)
                continue
            significant = bool(np.isfinite(p) and p < alpha)
            strong = abs(value - middle) > 0.6 * (vmax - vmin) / 2
            text = f"{value:+.2f}".replace("-", "−") + ("*" if significant else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=9,
                    fontweight="bold" if significant else "normal",
                    color="white" if strong else "black")
    ax.set_xticks(range(cols))
    ax.set_xticklabels([str(c) for c in values.columns], fontsize=9)
    ax.set_yticks(range(rows))
    ax.set_yticklabels([str(r) for r in values.index], fontsize=9)
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(label, fontsize=9)
    bar.ax.tick_params(labelsize=9)
    fig.tight_layout()
    return fig
