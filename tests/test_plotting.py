"""The book's figures (nclib.plotting)."""

import pandas as pd

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
