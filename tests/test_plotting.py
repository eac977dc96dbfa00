"""The book's figures (nclib.plotting)."""

import pandas as pd
import pytest

from nclib.plotting import stability_plot


def test_stability_plot_draws_every_panel():
    summary = pd.DataFrame({"panel": ["x", "x", "y", "y"], "score": ["nc", "logme"] * 2,
                            "value": [0.1, 0.5, 0.2, 0.3], "low": [-0.2, 0.1, 0.0, 0.1], "high": [0.4, 0.9, 0.5, 0.6]})
    spread = pd.DataFrame({"panel": "x", "score": "nc", "source": ["seed", "subset"], "value": [0.0, 0.2]})
    fig = stability_plot(summary, spread)
    assert len(fig.axes) == 2
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["logme", "nc"]



def test_significance_heatmap_marks_significant_cells_and_fits_the_column():
    import numpy as np
    import pytest

    from nclib.plotting import COLUMN_WIDTH_INCHES, significance_heatmap

    values = pd.DataFrame({"a · head": [0.8, 0.1, np.nan], "a · top": [-0.7, 0.3, 0.0]},
                          index=["nc", "leep", "logme"])
    p_values = pd.DataFrame({"a · head": [0.01, 0.5, np.nan], "a · top": [0.9, 0.04, 0.5]},
                            index=values.index)
    fig = significance_heatmap(values, p_values)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["+0.80*", "−0.70", "+0.10", "+0.30*", "–", "+0.00"]
    assert all(t.get_fontsize() >= 9 for t in fig.axes[0].texts)
    width, height = fig.get_size_inches()
    assert width == COLUMN_WIDTH_INCHES and height <= 6
    with pytest.raises(ValueError, match="same index"):
        significance_heatmap(values, p_values.iloc[:2])


# --- Figures made for the column (issue 11, item 1) -------------------------------------

def _zoo_frames(num_models=10, seed=0):
    import numpy as np

    rng = np.random.default_rng(seed)
    models = [f"resnet{k}_wide" for k in range(num_models)]
    scores = pd.DataFrame([(m, s, rng.normal()) for m in models for s in ("nc", "logme", "leep")],
                          columns=["model", "score", "value"])
    perf = rng.uniform(0.6, 0.9, size=(num_models, 2))
    performance = pd.DataFrame([(m, r, perf[k, j], perf[k, j] - 0.02, perf[k, j] + 0.02)
                                for k, m in enumerate(models) for j, r in enumerate(("head", "full"))],
                               columns=["model", "regime", "value", "low", "high"])
    transfer = pd.DataFrame([(m, r, seed_, "accuracy", perf[k, j] + 0.01 * seed_)
                             for k, m in enumerate(models) for j, r in enumerate(("head", "full"))
                             for seed_ in range(3)],
                            columns=["model", "regime", "seed", "metric", "value"])
    return scores, performance, transfer


def _every_figure():
    import numpy as np

    from nclib import plotting

    scores, performance, transfer = _zoo_frames()
    rng = np.random.default_rng(1)
    summary = pd.DataFrame([(p, s, v, v - 0.2, v + 0.2) for p in ("digits · head", "digits · full", "audio · head")
                            for s, v in zip(["nc", "logme", "leep", "hscore", "gbc"], rng.uniform(-1, 1, 5))],
                           columns=["panel", "score", "value", "low", "high"])
    values = pd.DataFrame(rng.uniform(-1, 1, (16, 4)), index=[f"score{k}" for k in range(16)],
                          columns=["digits · head", "digits · full", "fashion · head", "fashion · full"])
    return {
        "embedding_panels": plotting.embedding_panels(
            {"epoch 1": rng.normal(size=(200, 8)), "epoch 300": rng.normal(size=(200, 8))},
            np.repeat(np.arange(10), 20), titles=["epoch 1", "epoch 300"]),
        "score_vs_performance": plotting.score_vs_performance(scores, transfer, score_names=["nc", "logme", "leep"]),
        "stability_plot": plotting.stability_plot(summary, pd.DataFrame(
            {"panel": "digits · head", "score": ["nc", "leep"], "source": ["seed", "subset"], "value": [0.1, 0.2]})),
        "score_panels": plotting.score_panels(scores, performance, ["nc", "logme", "leep"],
                                              regime_labels={"head": "linear head", "full": "fine-tuned"}),
        "significance_heatmap": plotting.significance_heatmap(values, values.abs() / 10),
    }


def _png_width(fig) -> int:
    """Width of the PNG Jupyter's inline backend would show (``bbox_inches="tight"``)."""
    import io
    import struct

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", bbox_inches="tight")
    return struct.unpack(">I", buffer.getvalue()[16:20])[0]


@pytest.fixture(scope="module")
def every_figure():
    """Each plotting function's figure, and matplotlib's settings before and after drawing them."""
    import matplotlib as mpl
    import matplotlib.pyplot as plt

    before = {k: v for k, v in mpl.rcParams.items() if k != "backend"}
    figures = _every_figure()
    after = {k: v for k, v in mpl.rcParams.items() if k != "backend"}
    yield figures, before, after
    for fig in figures.values():
        plt.close(fig)


def test_every_figure_fits_the_column_with_readable_fonts_and_no_tick_clashes(every_figure):
    from matplotlib.text import Text

    from nclib.plotting import COLUMN_PX, FIGURE_DPI, MAX_PANELS, MIN_FONT_PT, tick_label_overlaps

    for name, fig in every_figure[0].items():
        width_px = fig.get_size_inches()[0] * fig.dpi
        assert fig.dpi == FIGURE_DPI, name
        assert width_px <= COLUMN_PX, (name, width_px)
        assert _png_width(fig) <= COLUMN_PX, (name, _png_width(fig))
        assert tick_label_overlaps(fig) == [], name
        small = {(t.get_text(), t.get_fontsize()) for t in fig.findobj(Text)
                 if t.get_visible() and t.get_text().strip() and t.get_fontsize() < MIN_FONT_PT}
        assert not small, (name, sorted(small)[:5])
        panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
        assert 1 <= len(panels) <= MAX_PANELS, name


def test_drawing_changes_no_global_matplotlib_setting(every_figure):
    _, before, after = every_figure
    assert {k for k in before if before[k] != after[k]} == set()


def test_importing_plotting_changes_no_style():
    import subprocess
    import sys

    code = ("import matplotlib as mpl\n"
            "before = dict(mpl.rcParams)\n"
            "import nclib.plotting\n"
            "assert dict(mpl.rcParams) == before\n")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_column_figure_refuses_too_many_panels_and_sizes_for_the_column():
    import matplotlib.pyplot as plt
    import pytest

    from nclib.plotting import COLUMN_PX, MAX_PANELS, column_figure

    fig, axes = column_figure(2, 3, sharey=True)
    assert axes.shape == (2, 3) and fig.get_size_inches()[0] * fig.dpi <= COLUMN_PX
    plt.close(fig)
    with pytest.raises(ValueError, match="legible"):
        column_figure(2, MAX_PANELS)


def test_sixteen_series_can_be_told_apart_and_are_labelled_directly():
    import matplotlib.pyplot as plt
    import numpy as np

    from nclib.plotting import PALETTE, column_figure, label_lines, series_styles

    styles = series_styles(16)
    assert len({(s["color"], s["linestyle"], s["marker"]) for s in styles}) == 16
    assert {s["color"] for s in styles} <= set(PALETTE) and len(PALETTE) <= 8
    fig, axes = column_figure()
    ax = axes[0, 0]
    for k, style in enumerate(styles):
        ax.plot(np.arange(5), np.full(5, 0.01 * k), label=f"score {k}", **style)
    texts = label_lines(ax)
    fig.canvas.draw()
    boxes = sorted((t.get_window_extent() for t in texts), key=lambda b: b.y0)
    assert len(boxes) == 16
    assert all(lower.y1 <= upper.y0 + 0.5 for lower, upper in zip(boxes, boxes[1:]))
    plt.close(fig)
