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

