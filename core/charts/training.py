"""Figures for the Train page: live loss/accuracy curves, learning rate, throughput, the classic demo.

Pure builders: a job's `batches` (`{"step", "loss", "accuracy"}` lists) and `history` (one dict per
epoch, as `core.training.Snapshot` holds them) in, Plotly figure out. Missing values (None/NaN)
are skipped, never drawn as zeros, so a curve never dives to 0 because a metric was not logged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from core.charts.common import CONTRAST, PRIMARY, faded

BATCH_COLOR = faded(PRIMARY, 0.45)  # the per-batch line, faint behind the per-epoch points
MAX_BATCH_POINTS = 2_000  # more points only slow the browser; the curve looks the same


def _column(rows: Sequence[Mapping], key: str) -> np.ndarray:
    """Float values of `key` in each row, NaN where it is missing."""
    return np.array([np.nan if r.get(key) is None else float(r[key]) for r in rows], dtype=float)


def thin(x: np.ndarray, y: np.ndarray, max_points: int = MAX_BATCH_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_points` evenly spaced points of a long curve, always keeping the last one.

    The last point is what a live chart must show moving; the others only give the shape.
    """
    x, y = np.asarray(x), np.asarray(y)
    if len(x) <= max_points:
        return x, y
    idx = np.unique(np.r_[np.linspace(0, len(x) - 1, max_points - 1).astype(int), len(x) - 1])
    return x[idx], y[idx]


def _finite(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    keep = np.isfinite(y)
    return x[keep], y[keep]


def live_curves(
    batches: Mapping[str, Sequence[float]],
    history: Sequence[Mapping],
    *,
    steps_per_epoch: int | None = None,
    max_points: int = MAX_BATCH_POINTS,
) -> go.Figure:
    """Loss (left) and accuracy (right) against epochs, as training goes.

    Each panel has up to three traces: `train, per batch` (Keras' running mean within the epoch,
    x = step / steps_per_epoch), `train, per epoch` and `validation, per epoch` (x = epoch number).
    Without `steps_per_epoch` the batch curve cannot share the epoch axis and is left out.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=("Loss (lower is better)", "Accuracy"))
    steps = np.asarray(batches.get("step", []), dtype=float)
    epochs = _column(history, "epoch")
    for col, metric in ((1, "loss"), (2, "accuracy")):
        show_legend = col == 1
        if steps_per_epoch and len(steps):
            x, y = _finite(steps / steps_per_epoch, np.asarray(batches.get(metric, []), dtype=float))
            x, y = thin(x, y, max_points)
            fig.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines", name="train, per batch", legendgroup="batch",
                    showlegend=show_legend, line=dict(color=BATCH_COLOR, width=1.5),
                    hovertemplate="epoch %{x:.2f}: %{y:.4f}<extra>train, per batch</extra>",
                ),
                row=1, col=col,
            )
        for key, label, color, group in (
            (metric, "train, per epoch", PRIMARY, "train"),
            (f"val_{metric}", "validation, per epoch", CONTRAST, "val"),
        ):
            x, y = _finite(epochs, _column(history, key))
            if not len(y):
                continue
            fig.add_trace(
                go.Scatter(
                    x=x, y=y, mode="lines+markers", name=label, legendgroup=group,
                    showlegend=show_legend, line=dict(color=color, width=2), marker=dict(size=7),
                    hovertemplate=f"epoch %{{x}}: %{{y:.4f}}<extra>{label}</extra>",
                ),
                row=1, col=col,
            )
    fig.update_xaxes(title_text="epoch", rangemode="tozero")
    fig.update_yaxes(rangemode="tozero", row=1, col=1)
    fig.update_yaxes(range=[0, 1.02], tickformat=".0%", row=1, col=2)
    fig.update_layout(
        height=360, margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="top", y=-0.18, x=0),
        uirevision="live",  # keep the user's zoom while the data refreshes every second
    )
    return fig


def lr_curve(history: Sequence[Mapping]) -> go.Figure:
    """The learning rate at the end of each epoch (log scale: schedules span decades)."""
    x, y = _finite(_column(history, "epoch"), _column(history, "learning_rate"))
    fig = go.Figure(
        go.Scatter(
            x=x, y=y, mode="lines+markers", name="learning rate", line=dict(color=PRIMARY),
            hovertemplate="epoch %{x}: %{y:.2e}<extra></extra>",
        )
    )
    fig.update_layout(
        title="Learning rate", xaxis_title="epoch", yaxis_title="learning rate", yaxis_type="log",
        height=280, margin=dict(l=10, r=10, t=40, b=10), showlegend=False, uirevision="lr",
    )
    return fig


def throughput_curve(history: Sequence[Mapping]) -> go.Figure:
    """Training images per second in each epoch (the first one includes building the graph)."""
    x, y = _finite(_column(history, "epoch"), _column(history, "images_per_s"))
    fig = go.Figure(
        go.Bar(x=x, y=y, name="images/s", marker_color=PRIMARY,
               hovertemplate="epoch %{x}: %{y:,.0f} images/s<extra></extra>")
    )
    fig.update_layout(
        title="Speed", xaxis_title="epoch", yaxis_title="images / s", height=280,
        margin=dict(l=10, r=10, t=40, b=10), showlegend=False, uirevision="speed",
    )
    return fig


def overlay_curves(histories: Mapping[str, Sequence[Mapping]]) -> go.Figure:
    """Validation accuracy (left) and loss (right) per epoch of several runs, one colour per run,
    each run's best epoch (highest validation accuracy) marked with a star."""
    fig = make_subplots(rows=1, cols=2,
                        subplot_titles=("Validation accuracy", "Validation loss (lower is better)"))
    palette = px.colors.qualitative.Plotly
    for i, (name, history) in enumerate(histories.items()):
        colour = palette[i % len(palette)]
        epochs = _column(history, "epoch")
        acc = _column(history, "val_accuracy")
        for col, values, fmt in ((1, acc, ".2%"), (2, _column(history, "val_loss"), ".4f")):
            x, y = _finite(epochs, values)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, legendgroup=name, showlegend=col == 1,
                                     line=dict(color=colour),
                                     hovertemplate=f"{name}<br>epoch %{{x}}: %{{y:{fmt}}}<extra></extra>"),
                          row=1, col=col)
        if np.isfinite(acc).any():
            best = int(np.nanargmax(acc))
            for col, values in ((1, acc), (2, _column(history, "val_loss"))):
                if np.isfinite(values[best]):
                    fig.add_trace(go.Scatter(
                        x=[epochs[best]], y=[values[best]], mode="markers", legendgroup=name,
                        showlegend=False,
                        marker=dict(symbol="star", size=13, color=colour, line=dict(width=1, color="white")),
                        name=f"{name}: best epoch", hovertemplate=f"{name}: best epoch %{{x}}<extra></extra>",
                    ), row=1, col=col)
    fig.update_xaxes(title_text="epoch")
    fig.update_yaxes(tickformat=".1%", row=1, col=1)
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), uirevision="overlay",
                      legend=dict(orientation="h", yanchor="bottom", y=-0.35))
    return fig


def confusion_heatmap(matrix: Sequence[Sequence[int]], *, title: str | None = None) -> go.Figure:
    """A small 10x10 confusion matrix (rows: true digit, columns: predicted), counts written in."""
    z = np.asarray(matrix, dtype=np.int64)
    if z.shape != (10, 10):
        raise ValueError(f"expected a 10x10 confusion matrix, got shape {z.shape}")
    digits = [str(d) for d in range(10)]
    fig = go.Figure(
        go.Heatmap(
            z=z, x=digits, y=digits, colorscale="Blues", showscale=False, text=z, texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title=title, height=340, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        xaxis=dict(title="predicted", type="category", side="bottom"),
        yaxis=dict(title="true", type="category", autorange="reversed", scaleanchor="x"),
    )
    return fig


def accuracy_comparison(rows: Sequence[Mapping]) -> go.Figure:
    """Accuracy bars for a few models, e.g. the 8x8 demo forest beside saved MNIST models.

    Each row: `label`, `accuracy` (0..1) and `dataset` (shown on hover and in the bar's colour).
    """
    labels = [str(r["label"]) for r in rows]
    acc = [float(r["accuracy"]) for r in rows]
    datasets = [str(r.get("dataset", "")) for r in rows]
    palette = [PRIMARY, CONTRAST, "#10b981", "#6b7280"]
    colors = {d: palette[i % len(palette)] for i, d in enumerate(dict.fromkeys(datasets))}
    fig = go.Figure(
        go.Bar(
            x=acc, y=labels, orientation="h", marker_color=[colors[d] for d in datasets],
            text=[f"{a:.1%}" for a in acc], textposition="auto", customdata=datasets,
            hovertemplate="%{y}: %{x:.2%} on %{customdata}<extra></extra>",
        )
    )
    fig.update_layout(
        xaxis=dict(range=[0, 1], tickformat=".0%", title="accuracy (held-out digits)"),
        yaxis=dict(autorange="reversed"), height=max(160, 60 + 34 * len(rows)),
        margin=dict(l=10, r=10, t=10, b=10), showlegend=False,
    )
    return fig
