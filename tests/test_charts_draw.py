"""core.charts.draw: the Draw page's figures carry the right data."""

from __future__ import annotations

import numpy as np
import pytest

from core.charts import draw


def test_probability_bars_highlight_the_best_digit():
    probs = np.full(10, 0.02)
    probs[7] = 0.82
    fig = draw.probability_bars(probs)
    bar = fig.data[0]
    assert list(bar.x) == [str(d) for d in range(10)]
    np.testing.assert_allclose(bar.y, probs)
    colours = list(bar.marker.color)
    assert colours[7] == draw.HIGHLIGHT and colours.count(draw.HIGHLIGHT) == 1
    assert bar.text[7] == "82%" and bar.text[0] == "2%"
    assert fig.layout.yaxis.range == (0, 1.12)


def test_probability_bars_refuse_the_wrong_length():
    with pytest.raises(ValueError, match="expected 10 probabilities"):
        draw.probability_bars(np.ones(9) / 9)


def test_steps_figure_one_panel_per_step_in_order():
    steps = {
        "1. the ink": np.zeros((280, 280), np.uint8),
        "2. cropped": np.full((120, 60), 255, np.uint8),
        "3. fitted": np.full((20, 10), 128, np.uint8),
        "4. centred": np.zeros((28, 28), np.uint8),
    }
    fig = draw.steps_figure(steps)
    assert [a.text for a in fig.layout.annotations] == list(steps)
    assert [np.asarray(t.z).shape for t in fig.data] == [(280, 280), (120, 60), (20, 10), (28, 28)]
    assert all(t.zmin == 0 and t.zmax == 255 for t in fig.data)
    assert np.asarray(fig.data[2].z)[0, 0] == 128


def test_steps_figure_needs_a_step():
    with pytest.raises(ValueError):
        draw.steps_figure({})
