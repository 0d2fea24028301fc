"""Figures of the Submit page: the digits the model is least sure of, and whether the predicted
labels are spread like the training labels (a skewed spread hints at a broken model or test file)."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from core.charts.common import digit_grid


def least_confident_order(confidence: np.ndarray, k: int) -> np.ndarray:
    """Indices of the `k` least confident predictions, least confident first (ties by test order)."""
    confidence = np.asarray(confidence)
    return np.argsort(confidence, kind="stable")[: max(0, int(k))]


def least_confident_figure(
    images: np.ndarray,
    labels: np.ndarray,
    confidence: np.ndarray,
    *,
    k: int = 40,
    answers: np.ndarray | None = None,
    cols: int = 8,
) -> go.Figure:
    """The `k` test digits (`images (n, 28, 28)`) the model is least sure of, least confident first,
    captioned "label · confidence" (and "✗true" for a known wrong answer)."""
    order = least_confident_order(confidence, k)
    captions = []
    for i in order:
        text = f"{int(labels[i])} · {confidence[i]:.0%}"
        if answers is not None and int(answers[i]) != int(labels[i]):
            text += f" ✗{int(answers[i])}"
        captions.append(text)
    return digit_grid(images[order], captions, cols=cols,
                      title=f"The {len(order)} least confident predictions (least sure first)")


def label_distribution_figure(predicted: np.ndarray, train_labels: np.ndarray | None) -> go.Figure:
    """Share of each digit 0..9 among the predicted test labels beside the training labels'
    (grouped bars, as proportions so sets of different sizes compare)."""
    digits = [str(d) for d in range(10)]
    fig = go.Figure()
    sets = [("predicted (test)", predicted, "#4C78A8")]
    if train_labels is not None:
        sets.append(("training", train_labels, "#BAB0AC"))
    for name, labels, colour in sets:
        counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=10)[:10]
        share = counts / max(1, counts.sum())
        fig.add_bar(
            x=digits, y=share, name=name, marker_color=colour,
            customdata=counts, hovertemplate="digit %{x}: %{y:.1%} (%{customdata:,} images)<extra>"
            + name + "</extra>",
        )
    fig.update_layout(
        barmode="group", title="Predicted labels vs training labels", xaxis_title="digit",
        yaxis_title="share of images", yaxis_tickformat=".0%", height=320,
        margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=1.12, x=1, xanchor="right"),
    )
    return fig


def confidence_histogram(confidence: np.ndarray, correct: np.ndarray | None = None) -> go.Figure:
    """How sure the model is across the test set (split into right/wrong when answers are known)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    fig = go.Figure()
    bins = dict(start=0.0, end=1.0001, size=0.02)
    if correct is None:
        fig.add_histogram(x=confidence, xbins=bins, name="all", marker_color="#4C78A8")
    else:
        correct = np.asarray(correct, dtype=bool)
        fig.add_histogram(x=confidence[correct], xbins=bins, name="right", marker_color="#54A24B",
                          opacity=0.75)
        fig.add_histogram(x=confidence[~correct], xbins=bins, name="wrong", marker_color="#E45756",
                          opacity=0.75)
    fig.update_layout(
        barmode="overlay",  # not stacked: on a log axis only bars drawn from the baseline read true
        title="Confidence of the predictions",
        xaxis_title="probability of the predicted digit",
        yaxis_title="images", yaxis_type="log", xaxis_tickformat=".0%", height=320,
        yaxis_dtick=1,  # ticks at 1, 10, 100 only: over three decades Plotly also labels 2s and 5s
        margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=1.12, x=1, xanchor="right"),
    )
    return fig
