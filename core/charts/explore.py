"""Figures for the Explore page: class balance, sample grids, mean/spread images, pixel histograms,
train-vs-test comparisons and 2-D maps. Pure builders: arrays in, Plotly figure out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go

from core.charts.common import CONTRAST, DIGIT_COLORS, PRIMARY, montage
from core.exploration import INK_LEVEL, MIN_INK_PIXELS, Embedding

SET_COLORS = {"train": PRIMARY, "test": CONTRAST}
_FALLBACK_SET_COLORS = px.colors.qualitative.Safe


def _set_color(name: str, i: int) -> str:
    return SET_COLORS.get(name, _FALLBACK_SET_COLORS[i % len(_FALLBACK_SET_COLORS)])


def class_balance_figure(counts: np.ndarray, *, title: str | None = None) -> go.Figure:
    """Images per digit as bars, one colour per digit: counts `(10,)` -> one Bar trace.

    A dashed line marks the mean, so a rare or common digit stands out.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (10,):
        raise ValueError(f"expected 10 counts (digits 0..9), got shape {counts.shape}")
    total = max(int(counts.sum()), 1)
    fig = go.Figure(
        go.Bar(
            x=[str(d) for d in range(10)],
            y=counts,
            marker_color=list(DIGIT_COLORS[:10]),
            text=[f"{c:,}" for c in counts],
            textposition="outside",
            customdata=100.0 * counts / total,
            hovertemplate="digit %{x}: %{y:,} images (%{customdata:.1f}%)<extra></extra>",
            name="images",
        )
    )
    fig.add_hline(y=float(counts.mean()), line_dash="dash", line_color="gray", line_width=1)
    fig.update_layout(
        title=title,
        xaxis_type="category",
        xaxis_title=f"digit (dashed line: the mean, {counts.mean():,.0f} images)",
        yaxis_title="images",
        yaxis_range=[0, max(1, int(counts.max())) * 1.15],
        height=360,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        showlegend=False,
    )
    return fig


def class_samples_figure(images: np.ndarray, indices: np.ndarray, *, pad: int = 3) -> go.Figure:
    """A row of sample digits per class: images `(n, 28, 28)`, indices `(10, k)` with -1 = none.

    One image trace (fast); the y axis names the digit of each row.
    """
    images = np.asarray(images, dtype=np.uint8)
    indices = np.asarray(indices, dtype=np.int64)
    rows, k = indices.shape
    side = images.shape[1]
    tiles = np.zeros((rows * k, side, side), dtype=np.uint8)
    flat = indices.ravel()
    tiles[flat >= 0] = images[flat[flat >= 0]]
    pic = montage(tiles, cols=k, pad=pad, fill=255)
    fig = px.imshow(pic, binary_string=True)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(
        tickmode="array",
        tickvals=[r * (side + pad) + side / 2 for r in range(rows)],
        ticktext=[str(r) for r in range(rows)],
        ticks="",
        showgrid=False,
        title=None,
    )
    fig.update_traces(hoverinfo="skip", hovertemplate=None)
    height = max(200, round(620 * rows / max(k, rows)))  # ~60 px a row for the default 10 x 10.
    fig.update_layout(height=height, margin=dict(l=30, r=0, t=0, b=0))
    return fig


def image_row_figure(
    images: np.ndarray,
    labels: Sequence[str],
    *,
    title: str | None = None,
    colorscale: str = "gray",
    zmin: float | None = 0.0,
    zmax: float | None = 255.0,
    zmid: float | None = None,
    colorbar_title: str = "pixel",
    height: int | None = None,
) -> go.Figure:
    """Float images side by side as one heatmap with a colour bar: images `(k, 28, 28)`, k labels.

    For mean images (0..255), spread (std) images and differences (set `zmid=0`, a diverging scale).
    """
    images = np.asarray(images, dtype=np.float32)
    if len(images) != len(labels):
        raise ValueError(f"got {len(images)} images but {len(labels)} labels")
    k, side = len(images), images.shape[1]
    pad = 3
    pic = montage(images, cols=k, pad=pad, fill=np.nan)
    heat = go.Heatmap(
        z=pic,
        colorscale=colorscale,
        zmin=None if zmid is not None else zmin,
        zmax=None if zmid is not None else zmax,
        zmid=zmid,
        colorbar=dict(title=dict(text=colorbar_title), thickness=12),
        hovertemplate="%{z:.0f}<extra></extra>",
        hoverongaps=False,
    )
    fig = go.Figure(heat)
    fig.update_xaxes(
        tickmode="array",
        tickvals=[c * (side + pad) + (side - 1) / 2 for c in range(k)],
        ticktext=list(labels),
        ticks="",
        showgrid=False,
        zeroline=False,
        side="bottom",
        constrain="domain",
    )
    fig.update_yaxes(autorange="reversed", visible=False, scaleanchor="x", constrain="domain", showgrid=False)
    fig.update_layout(
        title=title,
        height=height or (230 if k > 4 else 300),
        margin=dict(l=10, r=10, t=40 if title else 10, b=30),
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return fig


def intensity_histogram_figure(counts: np.ndarray, *, title: str | None = None) -> go.Figure:
    """How many pixels have each value 0..255, on a log scale: counts `(256,)` -> 3 Bar traces.

    Background (0), faint edges (1..INK_LEVEL) and ink (above INK_LEVEL) in different colours.
    """
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (256,):
        raise ValueError(f"expected 256 counts (pixel values 0..255), got shape {counts.shape}")
    total = max(int(counts.sum()), 1)
    parts = [
        ("background (0)", slice(0, 1), "#9ca3af"),
        (f"faint edge (1–{INK_LEVEL})", slice(1, INK_LEVEL + 1), "#a5b4fc"),
        (f"ink ({INK_LEVEL + 1}–255)", slice(INK_LEVEL + 1, 256), PRIMARY),
    ]
    fig = go.Figure()
    for name, sl, color in parts:
        x = np.arange(256)[sl]
        share = 100.0 * counts[sl].sum() / total
        fig.add_trace(
            go.Bar(
                x=x,
                y=counts[sl],
                name=f"{name}: {share:.1f}%",
                marker_color=color,
                marker_line_width=0,
                hovertemplate="value %{x}: %{y:,} pixels<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        bargap=0,
        yaxis_type="log",
        xaxis_title="pixel value (0 = background, 255 = full ink)",
        yaxis_title="pixels (log scale)",
        height=360,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        # Inside the plot, top centre: the log scale leaves that corner empty.
        legend=dict(
            orientation="h", yanchor="top", y=0.98, x=0.5, xanchor="center", bgcolor="rgba(255,255,255,0.8)"
        ),
    )
    return fig


def intensity_comparison_figure(counts_by_set: Mapping[str, np.ndarray], *, bin_size: int = 8) -> go.Figure:
    """Pixel-value distributions of several sets overlaid (share of pixels, log y): one line each.

    Counts `(256,)` per set are summed into bins of `bin_size` values (x = first value of a bin),
    which smooths the comb that anti-aliasing leaves at single values.
    """
    if 256 % bin_size:
        raise ValueError(f"bin_size must divide 256, got {bin_size}")
    fig = go.Figure()
    for i, (name, counts) in enumerate(counts_by_set.items()):
        counts = np.asarray(counts, dtype=np.float64)
        if counts.shape != (256,):
            raise ValueError(f"{name}: expected 256 counts, got shape {counts.shape}")
        binned = counts.reshape(-1, bin_size).sum(axis=1)
        share = 100.0 * binned / max(counts.sum(), 1.0)
        fig.add_trace(
            go.Scatter(
                x=np.arange(0, 256, bin_size),
                y=share,
                name=name,
                mode="lines+markers",
                marker=dict(size=4),
                line=dict(shape="hv", color=_set_color(name, i), width=1.5),
                customdata=np.arange(0, 256, bin_size) + bin_size - 1,
                hovertemplate=f"{name}: values %{{x}}–%{{customdata}}: %{{y:.2f}}% of pixels<extra></extra>",
            )
        )
    fig.update_layout(
        title="Pixel values",
        yaxis_type="log",
        xaxis_title="pixel value",
        yaxis_title="% of pixels (log scale)",
        height=340,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
    )
    return fig


def ink_distribution_figure(ink_by_set: Mapping[str, np.ndarray], *, bin_size: int = 5) -> go.Figure:
    """Ink pixels per digit for several sets, as overlaid % histograms: one Histogram trace each.

    A dotted line marks the near-blank threshold (MIN_INK_PIXELS).
    """
    fig = go.Figure()
    for i, (name, ink) in enumerate(ink_by_set.items()):
        fig.add_trace(
            go.Histogram(
                x=np.asarray(ink),
                name=name,
                histnorm="percent",
                xbins=dict(start=0, size=bin_size),
                marker_color=_set_color(name, i),
                opacity=0.55,
                hovertemplate=f"{name}: %{{x}} ink pixels: %{{y:.1f}}% of digits<extra></extra>",
            )
        )
    fig.add_vline(
        x=MIN_INK_PIXELS,
        line_dash="dot",
        line_color="gray",
        annotation_text="near-blank below",
        annotation_position="top right",
    )
    fig.update_layout(
        title="Ink per digit",
        barmode="overlay",
        xaxis_title=f"pixels brighter than {INK_LEVEL}",
        yaxis_title="% of digits",
        height=340,
        margin=dict(l=10, r=10, t=40, b=10),
        legend=dict(orientation="h", yanchor="bottom", y=1.02, x=1, xanchor="right"),
    )
    return fig


def embedding_figure(
    embedding: Embedding, labels: np.ndarray | None, *, title: str | None = None, height: int = 480
) -> go.Figure:
    """Digits on a plane, one Scattergl trace per digit in its colour (one grey trace unlabelled).

    `labels` are the labels of the whole set `(N,)`; each point carries `[index, label, row]` as
    customdata, so a selection can be turned back into images (`exploration.selected_indices`).
    """
    coords, idx = embedding.coords, embedding.indices
    groups: list[tuple[str, np.ndarray, str]]
    if labels is None:
        point_labels = np.full(len(idx), -1)
        groups = [("digits", np.ones(len(idx), bool), "#6b7280")]
    else:
        point_labels = np.asarray(labels)[idx]
        groups = [(str(d), point_labels == d, DIGIT_COLORS[d]) for d in range(10)]
    fig = go.Figure()
    for name, mask, color in groups:
        if not mask.any():
            continue
        custom = np.column_stack([idx[mask], point_labels[mask], idx[mask] + 1])
        fig.add_trace(
            go.Scattergl(
                x=coords[mask, 0],
                y=coords[mask, 1],
                mode="markers",
                name=name,
                marker=dict(color=color, size=5, opacity=0.75),
                customdata=custom,
                hovertemplate="digit %{customdata[1]} · image #%{customdata[2]}<extra></extra>",
            )
        )
    axis = embedding.method
    if embedding.explained:
        xt = f"{axis} 1 ({100 * embedding.explained[0]:.0f}% of variance)"
        yt = f"{axis} 2 ({100 * embedding.explained[1]:.0f}% of variance)"
    else:
        xt, yt = f"{axis} 1", f"{axis} 2"
    fig.update_layout(
        title=title,
        xaxis_title=xt,
        yaxis_title=yt,
        height=height,
        margin=dict(l=10, r=10, t=40 if title else 10, b=10),
        legend=dict(title="digit", itemsizing="constant"),
        dragmode="lasso",
    )
    return fig
