"""The book's figures, made for its text column.

Every figure here is drawn for the book's 688-pixel text column at 1280 px (sphinx-book-theme):
:data:`COLUMN_WIDTH_INCHES` wide at :data:`FIGURE_DPI` dots per inch, so the PNG is shown
at its natural size, with fonts of at least :data:`MIN_FONT_PT` points, at most
:data:`MAX_PANELS` panels, a palette whose lines can be told apart (:data:`PALETTE`, with
markers and line styles for more than its seven colours: :func:`series_styles`), direct
labels instead of small legends (:func:`label_lines`) and no clashing tick labels
(:func:`tick_label_overlaps` finds them).

Nothing here runs on import and nothing changes matplotlib's global state unless asked:
the plotting functions draw inside :func:`figure_style` (a :func:`matplotlib.rc_context`)
and size each figure themselves. :func:`book_style` is the one explicit, global switch a
chapter may call for the figures it draws itself.

Every chapter with a figure draws it here: :func:`embedding_panels` in "Background:
transfer learning and neural collapse", :func:`score_panels` and
:func:`performance_intervals` in "The image experiment" and "The audio experiment",
:func:`significance_heatmap` in "Every score in every setup", :func:`stability_plot` in
"Other sources of variation".
"""

from __future__ import annotations

from contextlib import contextmanager

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

COLUMN_PX = 688
"""Width of the book's text column in CSS pixels (sphinx-book-theme at 1280 px)."""

FIGURE_DPI = 100
"""Dots per inch of the book's figures: one figure pixel is one CSS pixel."""

COLUMN_WIDTH_INCHES = 6.6
"""Width of a figure that fits the text column: 660 px at :data:`FIGURE_DPI`, about 675 px once
Jupyter's inline backend has cropped it to its content and padded it (``bbox_inches="tight"``),
so it is shown unshrunk."""

MIN_FONT_PT = 10.0
"""Smallest font in a figure (points; at 100 dpi shown 1:1, 10 pt is about 14 px)."""

MAX_PANELS = 6
"""Most panels a figure may have and stay legible in the column."""

PALETTE = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#000000")
"""Okabe and Ito's colour-blind-safe colours (their yellow left out: too pale on white)."""

MARKERS = ("o", "s", "^", "D", "v", "P", "X")
LINESTYLES = ("-", "--", ":", "-.")

BOOK_RC = {
    "figure.dpi": FIGURE_DPI,
    "savefig.dpi": "figure",
    "figure.figsize": (COLUMN_WIDTH_INCHES, 4.0),
    "font.size": 11.0,
    "axes.titlesize": 11.0,
    "axes.labelsize": 11.0,
    "xtick.labelsize": MIN_FONT_PT,
    "ytick.labelsize": MIN_FONT_PT,
    "legend.fontsize": MIN_FONT_PT,
    "legend.title_fontsize": MIN_FONT_PT,
    "figure.titlesize": 12.0,
    "figure.labelsize": 11.0,
    "axes.prop_cycle": None,  # filled in by _book_rc (needs matplotlib's cycler)
    "lines.linewidth": 1.8,
    "lines.markersize": 5.0,
    "axes.titlepad": 4.0,
    "legend.frameon": False,
}
"""The matplotlib settings of the book's figures (applied only inside :func:`figure_style`)."""


def _book_rc() -> dict:
    from cycler import cycler

    rc = dict(BOOK_RC)
    rc["axes.prop_cycle"] = cycler(color=list(PALETTE))
    return rc


@contextmanager
def figure_style():
    """Draw with the book's figure settings (:data:`BOOK_RC`) for the ``with`` block only.

    Everything created inside (figures, text, ticks) takes the book's sizes, fonts and
    colours; matplotlib's global settings are the same afterwards as before.

    Examples
    --------
    >>> import matplotlib as mpl
    >>> before = mpl.rcParams["xtick.labelsize"]
    >>> with figure_style():
    ...     inside = mpl.rcParams["xtick.labelsize"]
    >>> inside, mpl.rcParams["xtick.labelsize"] == before
    (10.0, True)
    """
    import matplotlib as mpl

    with mpl.rc_context(_book_rc()):
        yield


def column_figure(nrows: int = 1, ncols: int = 1, *, height: float | None = None, width: float = 1.0,
                  **subplots_kw):
    """A figure sized for the text column, with its axes (``plt.subplots`` in the book's style).

    Parameters
    ----------
    nrows, ncols : int
        Panels; at most :data:`MAX_PANELS` in all.
    height : float, optional
        Inches (default: 2.7 per row plus a margin, at most 8.5).
    width : float
        Fraction of the column, in (0, 1].
    **subplots_kw
        Passed to :func:`matplotlib.pyplot.subplots` (``sharex``, ``sharey``, ...); ``squeeze``
        defaults to False, so ``axes`` is always two-dimensional.

    Returns
    -------
    (matplotlib.figure.Figure, ndarray of Axes)

    Examples
    --------
    >>> fig, axes = column_figure(1, 3)
    >>> round(fig.get_size_inches()[0] * fig.dpi) <= COLUMN_PX, axes.shape
    (True, (1, 3))
    """
    import matplotlib.pyplot as plt

    if nrows * ncols > MAX_PANELS:
        raise ValueError(f"{nrows} x {ncols} panels will not be legible in the column; at most {MAX_PANELS}")
    if not 0 < width <= 1:
        raise ValueError(f"width is a fraction of the column, in (0, 1], got {width!r}")
    if height is None:
        height = min(8.5, 2.7 * nrows + 0.5)
    subplots_kw.setdefault("squeeze", False)
    with figure_style():
        fig, axes = plt.subplots(nrows, ncols, figsize=(COLUMN_WIDTH_INCHES * width, height), dpi=FIGURE_DPI,
                                 layout="constrained", **subplots_kw)
        for ax in np.ravel(axes):
            _style_axes(ax)
    return fig, axes


def _style_axes(ax, nbins: int = 5) -> None:
    """Tick labels at the book's size, kept for ticks made later, and not too many of them."""
    from matplotlib.ticker import MaxNLocator

    ax.tick_params(labelsize=MIN_FONT_PT)
    for axis in (ax.xaxis, ax.yaxis):
        if axis.get_scale() == "linear" and type(axis.get_major_locator()).__name__ == "AutoLocator":
            axis.set_major_locator(MaxNLocator(nbins=nbins, steps=[1, 2, 2.5, 5, 10]))


def series_styles(n: int) -> list[dict]:
    """``n`` line styles that can be told apart: the palette's colours, then new markers and dashes.

    Examples
    --------
    >>> styles = series_styles(9)
    >>> len({(s["color"], s["marker"], s["linestyle"]) for s in styles})
    9
    >>> styles[7]["color"] == styles[0]["color"] and styles[7]["linestyle"] != styles[0]["linestyle"]
    True
    """
    styles = []
    for k in range(n):
        round_, colour = divmod(k, len(PALETTE))
        styles.append({"color": PALETTE[colour], "marker": MARKERS[(k + round_) % len(MARKERS)],
                       "linestyle": LINESTYLES[round_ % len(LINESTYLES)]})
    return styles


def label_lines(ax, *, fontsize: float = MIN_FONT_PT, pad_px: float = 4.0) -> list:
    """Label every labelled line at its right end, in its colour, instead of a legend.

    Labels that would overlap are pushed apart vertically. Returns the text artists.

    Examples
    --------
    >>> fig, axes = column_figure()
    >>> ax = axes[0, 0]
    >>> _ = ax.plot([0, 1], [0, 1], label="nc"); _ = ax.plot([0, 1], [0, 0.98], label="logme")
    >>> [t.get_text() for t in label_lines(ax)]
    ['logme', 'nc']
    """
    lines = [line for line in ax.get_lines() if not line.get_label().startswith("_") and len(line.get_xdata())]
    ends = []
    for line in lines:
        x, y = np.asarray(line.get_xdata(), float), np.asarray(line.get_ydata(), float)
        finite = np.isfinite(x) & np.isfinite(y)
        if finite.any():
            k = np.flatnonzero(finite)[np.argmax(x[finite])]
            ends.append((line, x[k], y[k]))
    fig = ax.figure
    fig.draw_without_rendering()
    to_px = ax.transData
    height_px = fontsize * fig.dpi / 72 * 1.15
    placed = sorted(((to_px.transform((x, y))[1], line, x, y) for line, x, y in ends), key=lambda t: t[0])
    texts, last = [], -np.inf
    for py, line, x, y in placed:
        py = max(py, last + height_px)
        last = py
        offset = py - to_px.transform((x, y))[1]
        texts.append(ax.annotate(line.get_label(), (x, y), xytext=(pad_px, offset), textcoords="offset pixels",
                                 color=line.get_color(), fontsize=fontsize, va="center", ha="left",
                                 annotation_clip=False))
    return texts


def _shown_ticklabels(axis) -> list:
    """The major tick labels actually drawn: visible, non-empty, inside the view."""
    low, high = sorted(axis.get_view_interval())
    slack = 1e-9 * max(abs(low), abs(high), 1.0)
    return [label for loc, label in zip(axis.get_majorticklocs(), axis.get_majorticklabels())
            if low - slack <= loc <= high + slack and label.get_visible() and label.get_text()]


def label_points(ax, x, y, labels, *, fontsize: float = MIN_FONT_PT, pad_px: float = 4.0) -> list:
    """Label points directly, beside each point, moving labels apart so that none overlap.

    A label goes to the right of its point, or to its left where it would not fit inside
    the panel; labels that would overlap are moved up or down, with a thin line back to
    their point. The labels do not count in the layout (the panel keeps
    its width). Returns the text artists.

    Examples
    --------
    >>> fig, axes = column_figure()
    >>> texts = label_points(axes[0, 0], [0, 0.01, 1], [0, 0.01, 1], ["a", "b", "c"])
    >>> [t.get_text() for t in texts]
    ['a', 'b', 'c']
    """
    from matplotlib.transforms import Bbox

    x, y = np.asarray(x, float), np.asarray(y, float)
    ax.figure.draw_without_rendering()  # limits and layout as they will be drawn
    renderer = ax.figure.canvas.get_renderer()
    frame = ax.get_window_extent(renderer)
    placed: list = []
    texts = [None] * len(labels)
    for k in np.argsort(y, kind="stable"):
        px, py = ax.transData.transform((x[k], y[k]))
        probe = ax.annotate(str(labels[k]), (x[k], y[k]), fontsize=fontsize)
        box = probe.get_window_extent(renderer)
        probe.remove()
        width, height = box.width, box.height
        right = px + pad_px + width <= frame.x1 or frame.x1 - px >= px - frame.x0
        x0 = px + pad_px if right else px - pad_px - width
        x0 = min(max(x0, frame.x0 + 1), frame.x1 - width - 1) if width < frame.width else frame.x0
        shift = 0.0
        for step in range(200):  # try 0, +h, -h, +2h, -2h, ... until the label is free
            shift = (step + 1) // 2 * height * (1 if step % 2 else -1) * 0.8 if step else 0.0
            candidate = Bbox.from_bounds(x0, py - height / 2 + shift, width, height)
            if not any(candidate.overlaps(other) for other in placed):
                break
        placed.append(candidate)
        moved = abs(shift) > height / 2 or abs(x0 - (px + pad_px if right else px - pad_px - width)) > 1
        texts[k] = ax.annotate(
            str(labels[k]), (x[k], y[k]), xytext=(x0 - px, shift), textcoords="offset pixels",
            fontsize=fontsize, ha="left", va="center",
            annotation_clip=False,
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.5", "shrinkA": 0, "shrinkB": 2}
            if moved else None)
        texts[k].set_in_layout(False)
    return texts


def _axis_clashes(axis, renderer) -> list[tuple[str, str]]:
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in _shown_ticklabels(axis)]
    return [(text_a, text_b) for k, (text_a, a) in enumerate(boxes) for text_b, b in boxes[k + 1:]
            if a.padded(2).overlaps(b)]


def avoid_tick_clashes(fig, min_ticks: int = 1) -> None:
    """Thin out tick labels that touch or overlap, axis by axis, until none do.

    Linear axes get fewer ticks (:class:`~matplotlib.ticker.MaxNLocator`), log axes fewer
    decades labelled; other locators are left alone. The plotting functions here call it last.

    Examples
    --------
    >>> fig, axes = column_figure(1, 6)
    >>> for ax in axes[0]:
    ...     _ = ax.plot([-12345.5, 12345.5], [0, 1])
    >>> bool(tick_label_overlaps(fig))
    True
    >>> avoid_tick_clashes(fig)
    >>> tick_label_overlaps(fig)
    []
    """
    from matplotlib.ticker import LogLocator, MaxNLocator

    for _ in range(8):
        fig.draw_without_rendering()
        renderer = fig.canvas.get_renderer()
        changed = False
        for ax in fig.axes:
            for axis in (ax.xaxis, ax.yaxis):
                if not _axis_clashes(axis, renderer):
                    continue
                shown = len(_shown_ticklabels(axis))
                locator = axis.get_major_locator()
                if axis.get_scale() == "log" and isinstance(locator, LogLocator):
                    if shown > min_ticks:
                        axis.set_major_locator(LogLocator(base=10, numticks=max(min_ticks, shown - 1)))
                        changed = True
                elif axis.get_scale() == "linear" and (isinstance(locator, MaxNLocator)
                                                      or type(locator).__name__ == "AutoLocator"):
                    if shown > min_ticks:
                        axis.set_major_locator(MaxNLocator(nbins=max(1, shown - 2), steps=[1, 2, 2.5, 5, 10],
                                                           min_n_ticks=2 if shown > 3 else 1))
                        changed = True
        if not changed:
            return


def tick_label_overlaps(fig) -> list[tuple[str, str]]:
    """Pairs of tick labels on the same axis that touch or overlap once drawn (should be none).

    Examples
    --------
    >>> fig, axes = column_figure()
    >>> _ = axes[0, 0].plot([1, 1000], [0, 1])
    >>> tick_label_overlaps(fig)
    []
    """
    fig.draw_without_rendering()
    renderer = fig.canvas.get_renderer()
    return [pair for ax in fig.axes for axis in (ax.xaxis, ax.yaxis) for pair in _axis_clashes(axis, renderer)]


def book_style() -> None:
    """Apply the book's style globally: seaborn's grid with :data:`BOOK_RC` (explicit only).

    For a chapter's own figures; the functions here do not need it. Importing nclib
    changes no style.

    Examples
    --------
    >>> import matplotlib as mpl
    >>> with mpl.rc_context():
    ...     book_style()
    ...     mpl.rcParams["figure.dpi"] == FIGURE_DPI
    True
    """
    import matplotlib as mpl
    import seaborn as sns

    sns.set_theme(context="notebook", style="whitegrid", palette=list(PALETTE))
    mpl.rcParams.update(_book_rc())


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
    from sklearn.decomposition import PCA

    labels = np.asarray(labels)
    classes = np.unique(labels)
    panels = len(snapshots)
    fig, axes = column_figure(1, panels, height=3.3 if panels > 1 else 4.0, width=1.0 if panels > 1 else 0.75)
    with figure_style():
        for k, (ax, (key, embedding)) in enumerate(zip(axes[0], snapshots.items())):
            points = PCA(n_components=2, random_state=seed).fit_transform(embedding)
            scatter = ax.scatter(points[:, 0], points[:, 1], c=np.searchsorted(classes, labels), cmap="tab10",
                                 vmin=-0.5, vmax=max(len(classes), 10) - 0.5, s=6, alpha=0.8)
            ax.set_title(titles[k] if titles else str(key))
            ax.set_xlabel("PC 1")
            ax.set_ylabel("PC 2" if k == 0 else "")
        bar = fig.colorbar(scatter, ax=axes[0].tolist(), label="class", ticks=range(len(classes)),
                           fraction=0.05, pad=0.02)
        bar.ax.set_yticklabels([str(c) for c in classes])
        bar.ax.set_ylim(-0.5, len(classes) - 0.5)
        bar.ax.tick_params(labelsize=MIN_FONT_PT)
        avoid_tick_clashes(fig)
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
    from nclib.evaluate import mean_performance

    names = list(score_names) if score_names is not None else list(dict.fromkeys(scores["score"]))
    means = mean_performance(transfer)
    spread = transfer.groupby(["model", "regime"])["value"].std().fillna(0.0)
    regimes = list(dict.fromkeys(means["regime"]))
    fig, axes = column_figure(len(regimes), len(names))
    with figure_style():
        _score_vs_performance_panels(axes, scores, means, spread, regimes, names, metric_label)
        avoid_tick_clashes(fig)
    return fig


def _score_vs_performance_panels(axes, scores, means, spread, regimes, names, metric_label):
    for row, regime in enumerate(regimes):
        perf = means[means.regime == regime].set_index("model")["value"]
        for col, name in enumerate(names):
            ax = axes[row][col]
            values = scores[scores.score == name].set_index("model")["value"]
            models = [m for m in values.index if m in perf.index]
            errors = [spread.get((m, regime), 0.0) for m in models]
            ax.errorbar(values[models], perf[models], yerr=errors, fmt="o", capsize=3, color=PALETTE[0])
            ax.margins(x=0.08, y=0.1)
            label_points(ax, values[models], perf[models], models)
            if len(models) > 1 and np.ptp(values[models]) > 0:
                r = np.corrcoef(values[models], perf[models])[0, 1]
                ax.set_title(f"{name} ({regime}): |r| = {abs(r):.2f}")
            else:
                ax.set_title(f"{name} ({regime})")
            ax.set_xlabel(name)
            ax.set_ylabel(f"{metric_label} ({regime})" if col == 0 else "")


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
    panels = list(dict.fromkeys(summary["panel"]))
    if order is None:
        order = summary.groupby("score")["value"].mean().sort_values(ascending=False).index.tolist()
    positions = {score: k for k, score in enumerate(order)}
    fig, axes = column_figure(1, len(panels), height=min(8.5, 0.3 * len(order) + 1.9), sharey=True)
    with figure_style():
        _stability_panels(fig, axes, summary, spread, panels, order, positions, xlabel)
        avoid_tick_clashes(fig)
    return fig


def _stability_panels(fig, axes, summary, spread, panels, order, positions, xlabel):
    markers = {"seed": ("|", PALETTE[1]), "subset": ("x", PALETTE[2])}
    for ax, panel in zip(axes[0], panels):
        part = summary[summary["panel"] == panel]
        y = part["score"].map(positions).to_numpy()
        ax.hlines(y, part["low"], part["high"], color=PALETTE[0], linewidth=3, alpha=0.45, label="bootstrap interval")
        ax.plot(part["value"], y, "o", color="black", markersize=4, label="all models, seed mean")
        if spread is not None:
            extra = spread[spread["panel"] == panel]
            for source, group in extra.groupby("source", sort=False):
                marker, colour = markers.get(source, (".", "gray"))
                jitter = 0.18 if source == "subset" else -0.18
                ax.plot(group["value"], group["score"].map(positions) + jitter, marker, color=colour,
                        markersize=5, alpha=0.8, linestyle="none", label=f"per {source}")
        ax.axvline(0, color="gray", linewidth=0.8)
        ax.set_title(str(panel))
        ax.set_xlabel(xlabel)
    axes[0][0].set_yticks(range(len(order)))
    axes[0][0].set_yticklabels(order)
    axes[0][0].invert_yaxis()
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, loc="outside lower center", ncol=min(len(labels), 2), fontsize=MIN_FONT_PT,
               frameon=False)



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
    the absolute Pearson r from ``evaluation`` when given.

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
    names = list(score_names)
    if not 1 <= len(names) <= 3:
        raise ValueError(f"score_panels shows one to three scores, got {names}")
    regimes = list(dict.fromkeys(performance["regime"]))
    labels = dict(regime_labels or {})
    fig, axes = column_figure(len(regimes), len(names), height=min(8.5, 2.8 * len(regimes) + 0.4))
    with figure_style():
        _score_panels(axes, scores, performance, names, regimes, labels, metric_label, evaluation)
        avoid_tick_clashes(fig)
    return fig


def _score_panels(axes, scores, performance, names, regimes, labels, metric_label, evaluation):
    for row, regime in enumerate(regimes):
        perf = performance[performance.regime == regime].set_index("model")
        for col, name in enumerate(names):
            ax = axes[row][col]
            values = scores[scores.score == name].set_index("model")["value"]
            models = [m for m in values.index if m in perf.index]
            x, y = values[models].to_numpy(float), perf.loc[models, "value"].to_numpy(float)
            errors = np.vstack([y - perf.loc[models, "low"], perf.loc[models, "high"] - y])
            ax.errorbar(x, y, yerr=np.clip(errors, 0, None), fmt="o", ms=4, capsize=2, lw=1, color=PALETTE[0])
            ax.margins(x=0.08, y=0.1)
            label_points(ax, x, y, models)
            title = name
            if evaluation is not None:
                hit = evaluation.query("score == @name and regime == @regime and measure == 'abs_pearson'")
                if len(hit):
                    r = hit.iloc[0]
                    title = f"{name}: |r| {r.value:.2f} [{r.low:.2f}, {r.high:.2f}]"
            ax.set_title(title, fontsize=MIN_FONT_PT)
            ax.locator_params(axis="x", nbins=3)
            if row == len(regimes) - 1:
                ax.set_xlabel(f"{name} score")
            if col == 0:
                ax.set_ylabel(f"{metric_label}\n({labels.get(regime, regime)})")


def significance_heatmap(values: pd.DataFrame, p_values: pd.DataFrame, *, alpha: float = 0.05,
                         label: str = "weighted τ", vmin: float = -1.0, vmax: float = 1.0):
    """A measure for every score and setup as a heatmap, cells with ``p < alpha`` marked.

    Each cell shows the value with two decimals; a significant cell gets an asterisk and
    bold type. Sized for the book's text column (:data:`COLUMN_WIDTH_INCHES`), at most
    six inches tall, fonts of at least :data:`MIN_FONT_PT` points.

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
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha!r}")
    if not (values.index.equals(p_values.index) and values.columns.equals(p_values.columns)):
        raise ValueError("values and p_values must have the same index and columns")
    rows, cols = values.shape
    height = min(6.0, 0.3 * rows + 1.6)
    fig, axes = column_figure(height=height)
    with figure_style():
        _heatmap(fig, axes[0, 0], values, p_values, alpha, label, vmin, vmax)
        avoid_tick_clashes(fig)
    return fig


def _heatmap(fig, ax, values, p_values, alpha, label, vmin, vmax):
    rows, cols = values.shape
    data = values.to_numpy(float)
    image = ax.imshow(np.ma.masked_invalid(data), cmap="RdBu", vmin=vmin, vmax=vmax, aspect="auto")
    middle = (vmin + vmax) / 2
    for i in range(rows):
        for j in range(cols):
            value, p = data[i, j], float(p_values.iat[i, j])
            if not np.isfinite(value):
                ax.text(j, i, "–", ha="center", va="center", fontsize=MIN_FONT_PT)
                continue
            significant = bool(np.isfinite(p) and p < alpha)
            strong = abs(value - middle) > 0.6 * (vmax - vmin) / 2
            text = f"{value:+.2f}".replace("-", "−") + ("*" if significant else "")
            ax.text(j, i, text, ha="center", va="center", fontsize=MIN_FONT_PT,
                    fontweight="bold" if significant else "normal",
                    color="white" if strong else "black")
    ax.set_xticks(range(cols))
    ax.set_xticklabels([str(c) for c in values.columns])
    ax.set_yticks(range(rows))
    ax.set_yticklabels([str(r) for r in values.index])
    ax.tick_params(top=True, labeltop=True, bottom=False, labelbottom=False)
    ax.grid(False)
    bar = fig.colorbar(image, ax=ax, fraction=0.04, pad=0.02)
    bar.set_label(label, fontsize=MIN_FONT_PT)
    bar.ax.tick_params(labelsize=MIN_FONT_PT)
