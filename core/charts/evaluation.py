"""Figures for the Evaluate page: confusion matrix, per-class scores, calibration, training curves
and model comparison. Pure builders: arrays or frames in, Plotly figure out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.common import CONTRAST, PRIMARY, digit_grid
from core.checks import point_customdata
from core.evaluation import CalibrationBins, row_normalise

DIGITS = [str(d) for d in range(10)]
RIGHT_SCALE = [[0.0, "#f0fdf4"], [1.0, "#4ade80"]]  # greens: the diagonal, digits read right
WRONG_SCALE = [[0.0, "#fff7ed"], [0.15, "#fdba74"], [1.0, "#f87171"]]  # oranges to red: mistakes
SERIES_COLORS = {"precision": PRIMARY, "recall": CONTRAST, "f1": "#0f766e"}


def _check_square(cm: np.ndarray) -> np.ndarray:
    cm = np.asarray(cm)
    if cm.shape != (10, 10):
        raise ValueError(f"expected a 10x10 confusion matrix, got shape {cm.shape}")
    return cm


def confusion_figure(
    cm: np.ndarray, *, normalised: bool = False, selected: tuple[int, int] | None = None
) -> go.Figure:
    """Confusion matrix `(10, 10)` counts (row = true, column = predicted) as a heatmap.

    The diagonal is green and mistakes orange-to-red on their own scale, so a handful of errors
    still shows beside thousands of right answers. `normalised` shows each row as fractions of
    the true digit. A transparent marker on every cell (trace 2, `customdata = [true, predicted,
    count]`) makes cells clickable: Plotly cannot select heatmap cells themselves.
    """
    cm = _check_square(cm).astype(np.int64)
    values = row_normalise(cm) if normalised else cm.astype(np.float64)
    diag = np.eye(10, dtype=bool)
    text = np.where(
        cm == 0, "", np.vectorize(lambda v: f"{v:.1%}" if normalised else f"{int(v):,}")(values)
    )
    off = np.where(diag, np.nan, values)
    on = np.where(diag, values, np.nan)
    off_max = float(np.nanmax(off)) if np.nanmax(off) > 0 else 1.0
    unit = "share of each true digit" if normalised else "digits"
    common = dict(x=DIGITS, y=DIGITS, xgap=1, ygap=1, showscale=False, texttemplate="%{text}",
                  hoverinfo="skip")
    fig = go.Figure([
        go.Heatmap(z=on, text=text, colorscale=RIGHT_SCALE, zmin=0, name="right", **common),
        go.Heatmap(z=np.where(off == 0, np.nan, off), text=text, colorscale=WRONG_SCALE, zmin=0,
                   zmax=off_max, name="mistakes", **common),
    ])
    fig.add_trace(_cell_targets(cm))
    if selected is not None:
        t, p = selected
        fig.add_shape(type="rect", x0=p - 0.5, x1=p + 0.5, y0=t - 0.5, y1=t + 0.5,
                      line=dict(color="#111827", width=3))
    fig.update_layout(
        title=f"Confusion matrix ({unit})",
        height=520,
        margin=dict(l=10, r=10, t=40, b=10),
        clickmode="event+select",
        dragmode=False,
        plot_bgcolor="white",
    )
    fig.update_xaxes(title="predicted digit", type="category", side="bottom", constrain="domain")
    fig.update_yaxes(title="true digit", type="category", autorange="reversed", scaleanchor="x")
    return fig


def _cell_targets(cm: np.ndarray) -> go.Scatter:
    """An invisible square on each cell of the matrix, carrying `[true, predicted, count, share]`,
    so that a click selects a cell (Plotly cannot select heatmap cells themselves)."""
    t_idx, p_idx = np.meshgrid(np.arange(10), np.arange(10), indexing="ij")
    shares = row_normalise(cm).ravel()
    return go.Scatter(
        x=[DIGITS[p] for p in p_idx.ravel()],
        y=[DIGITS[t] for t in t_idx.ravel()],
        mode="markers",
        marker=dict(size=30, symbol="square", color="rgba(0,0,0,0)"),
        selected=dict(marker=dict(color="rgba(0,0,0,0)")),
        unselected=dict(marker=dict(opacity=0)),
        customdata=np.stack([t_idx.ravel(), p_idx.ravel(), cm.ravel(), shares], axis=1),
        hovertemplate=(
            "true %{customdata[0]}, predicted %{customdata[1]}: %{customdata[2]:,} digits "
            "(%{customdata[3]:.1%} of the true digit)<extra>click to see them</extra>"
        ),
        name="cells",
        showlegend=False,
    )


def selected_cell(points: Sequence[Mapping]) -> tuple[int, int] | None:
    """The `(true, predicted)` cell of the first clicked confusion-matrix point, if any (its
    customdata read by `checks.point_customdata`)."""
    for p in points:
        values = point_customdata(p, 2)
        if values is not None:
            return int(values[0]), int(values[1])
    return None


def per_class_figure(table: pd.DataFrame) -> go.Figure:
    """Precision, recall and F1 per digit as grouped bars (frame from `evaluation.per_class`)."""
    missing = {"digit", "precision", "recall", "f1", "support"} - set(table.columns)
    if missing:
        raise ValueError(f"per-class table lacks columns: {', '.join(sorted(missing))}")
    fig = go.Figure()
    for col in ("precision", "recall", "f1"):
        fig.add_trace(go.Bar(
            x=[str(d) for d in table["digit"]], y=table[col], name=col.upper() if col == "f1" else col,
            marker_color=SERIES_COLORS[col], customdata=table["support"],
            hovertemplate=f"digit %{{x}}: {col} %{{y:.4f}} (%{{customdata:,}} digits)<extra></extra>",
        ))
    low = float(table[["precision", "recall", "f1"]].to_numpy().min())
    fig.update_layout(
        barmode="group",
        title="Precision, recall and F1 per digit",
        xaxis_title="digit",
        xaxis_type="category",
        yaxis_title="score",
        yaxis_range=[max(0.0, min(0.9, low - 0.02)), 1.0],
        height=380,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    return fig


def reliability_figure(bins: CalibrationBins, *, ece: float | None = None) -> go.Figure:
    """Reliability diagram: accuracy against confidence per bin (the diagonal is perfect
    calibration), with the number of digits per bin below."""
    edges = np.asarray(bins.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    width = float(edges[1] - edges[0])
    used = bins.counts > 0
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06)
    fig.add_trace(go.Bar(
        x=centres[used], y=bins.accuracy[used], width=width * 0.95, name="accuracy",
        marker_color=PRIMARY, customdata=np.stack([bins.confidence[used], bins.counts[used]], axis=1),
        hovertemplate=("confidence %{customdata[0]:.3f}: right %{y:.1%} of %{customdata[1]:,} digits"
                       "<extra></extra>"),
    ), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=centres[used], y=bins.confidence[used], mode="markers", name="mean confidence",
        marker=dict(color=CONTRAST, symbol="line-ew-open", size=16, line=dict(width=3)),
        hovertemplate="mean confidence %{y:.3f}<extra></extra>",
    ), row=1, col=1)
    fig.add_trace(go.Scatter(
        x=[0, 1], y=[0, 1], mode="lines", name="perfect calibration",
        line=dict(color="gray", dash="dash", width=1), hoverinfo="skip",
    ), row=1, col=1)
    fig.add_trace(go.Bar(
        x=centres, y=bins.counts, width=width * 0.95, name="digits", marker_color="#94a3b8",
        hovertemplate="%{y:,} digits<extra></extra>", showlegend=False,
    ), row=2, col=1)
    title = "Reliability diagram" + (f" — ECE {ece:.4f}" if ece is not None else "")
    fig.update_layout(
        title=title, height=520, margin=dict(l=10, r=10, t=40, b=10), bargap=0,
        legend=dict(orientation="h", y=1.02, x=1, xanchor="right", yanchor="bottom"),
    )
    fig.update_yaxes(title="accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title="digits", type="log", dtick=1, row=2, col=1)  # ticks at 1, 10, 100, ...
    fig.update_xaxes(range=[0, 1], row=1, col=1)
    fig.update_xaxes(title="confidence (probability of the predicted digit)", range=[0, 1], row=2, col=1)
    return fig


def history_figure(history: pd.DataFrame) -> go.Figure:
    """Loss and accuracy per epoch, training and validation (frame from `evaluation.history_frame`)."""
    if history.empty or "epoch" not in history:
        raise ValueError("no training history to plot")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.08)
    for col, metric in ((1, "loss"), (2, "accuracy")):
        series = ((metric, "training", PRIMARY), (f"val_{metric}", "validation", CONTRAST))
        for key, label, color in series:
            if key not in history or history[key].isna().all():
                continue
            fig.add_trace(go.Scatter(
                x=history["epoch"], y=history[key], mode="lines+markers", name=label, legendgroup=label,
                showlegend=col == 1, line=dict(color=color),
                hovertemplate=f"epoch %{{x}}: {label} {metric} %{{y:.4f}}<extra></extra>",
            ), row=1, col=col)
    fig.update_xaxes(title="epoch", dtick=max(1, len(history) // 10))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=70, b=10),
                      legend=dict(orientation="h", y=1.12, x=0, xanchor="left", yanchor="bottom"))
    return fig


def comparison_figure(table: pd.DataFrame) -> go.Figure:
    """Accuracy and log-loss of several models on the same digits (frame from `evaluation.compare`)."""
    if table.empty:
        raise ValueError("no models to compare")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("accuracy (higher is better)",
                                                        "log loss (lower is better)"))
    names = list(table["model"])
    fig.add_trace(go.Bar(x=names, y=table["accuracy"], marker_color=PRIMARY, name="accuracy",
                         text=[f"{a:.2%}" for a in table["accuracy"]], textposition="outside",
                         customdata=table["errors"],
                         hovertemplate="%{x}: %{y:.4f} (%{customdata:,} errors)<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Bar(x=names, y=table["log loss"], marker_color=CONTRAST, name="log loss",
                         text=[f"{v:.3f}" for v in table["log loss"]], textposition="outside",
                         hovertemplate="%{x}: %{y:.4f}<extra></extra>"), row=1, col=2)
    low = float(table["accuracy"].min())
    fig.update_yaxes(range=[max(0.0, low - 0.05), 1.005], row=1, col=1)
    fig.update_yaxes(range=[0, float(table["log loss"].max()) * 1.2 + 1e-9], row=1, col=2)
    fig.update_layout(height=360, showlegend=False, margin=dict(l=10, r=10, t=40, b=10))
    return fig


def disagreement_figure(pairwise: pd.DataFrame) -> go.Figure:
    """How many digits each pair of models reads differently, as an annotated heatmap."""
    names = list(pairwise.index)
    z = pairwise.to_numpy()
    fig = go.Figure(go.Heatmap(
        z=z, x=names, y=names, colorscale="Oranges", text=z, texttemplate="%{text:,}", showscale=False,
        xgap=1, ygap=1, hovertemplate="%{y} vs %{x}: %{z:,} digits read differently<extra></extra>",
    ))
    fig.update_yaxes(autorange="reversed")
    fig.update_layout(title="Digits read differently, per pair of models",
                      height=140 + 50 * len(names), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def gallery_figure(
    images: np.ndarray, captions: Sequence[str], *, cols: int = 10, row_height: int = 70
) -> go.Figure:
    """Digits `(n, 28, 28)` in a grid with a caption under each (mistakes, a confusion cell,
    disagreements), drawn by `common.digit_grid` with light captions on the dark band."""
    if len(images) == 0:
        raise ValueError("a gallery needs at least one image")
    if len(captions) != len(images):
        raise ValueError(f"expected {len(images)} captions, got {len(captions)}")
    return digit_grid(images, captions, cols=cols, row_height=row_height, caption_color="#e5e7eb")
