"""Charts of the Draw page: the ten probabilities, and the preprocessing steps side by side."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

HIGHLIGHT = "#E45756"
OTHER = "#9DB4CC"


def probability_bars(probs: np.ndarray, *, height: int = 260) -> go.Figure:
    """Bars of the ten class probabilities `(10,)`, the most likely digit highlighted."""
    probs = np.asarray(probs, dtype=float).reshape(-1)
    if probs.shape != (10,):
        raise ValueError(f"expected 10 probabilities, got {probs.shape[0]}")
    best = int(np.argmax(probs))
    fig = go.Figure(
        go.Bar(
            x=[str(d) for d in range(10)],
            y=probs,
            marker_color=[HIGHLIGHT if d == best else OTHER for d in range(10)],
            text=[f"{p:.0%}" if p >= 0.01 else "" for p in probs],
            textposition="outside",
            hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
            name="probability",
        )
    )
    fig.update_layout(
        height=height,
        margin=dict(l=0, r=0, t=10, b=0),
        yaxis=dict(range=[0, 1.12], tickformat=".0%", title=None),
        xaxis=dict(title="digit", type="category"),
        showlegend=False,
    )
    return fig


def steps_figure(steps: Mapping[str, np.ndarray], *, height: int = 230) -> go.Figure:
    """The preprocessing steps (name -> uint8 image, ink bright) side by side, each at its own size."""
    if not steps:
        raise ValueError("steps_figure needs at least one image")
    names = list(steps)
    fig = make_subplots(rows=1, cols=len(names), subplot_titles=names, horizontal_spacing=0.03)
    for i, name in enumerate(names, start=1):
        img = np.asarray(steps[name], dtype=np.uint8)
        fig.add_trace(
            go.Heatmap(
                z=img,
                colorscale="gray",
                zmin=0,
                zmax=255,
                showscale=False,
                hovertemplate=f"{name}<br>row %{{y}}, col %{{x}}: %{{z}}<extra></extra>",
            ),
            row=1,
            col=i,
        )
        fig.update_xaxes(visible=False, constrain="domain", row=1, col=i)
        fig.update_yaxes(
            visible=False, autorange="reversed", scaleanchor=f"x{i if i > 1 else ''}", row=1, col=i
        )
    fig.update_layout(height=height, margin=dict(l=0, r=0, t=30, b=0), plot_bgcolor="rgba(0,0,0,0)")
    fig.update_annotations(font_size=12)
    return fig
