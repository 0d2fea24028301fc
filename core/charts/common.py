"""Digits as pictures: montages and grids shared by every page."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
from plotly.colors import hex_to_rgb

PRIMARY = "#4f46e5"  # the theme's primaryColor (.streamlit/config.toml): training data, first series
CONTRAST = "#f97316"  # orange beside it: validation or test data, second series
DIGIT_COLORS = px.colors.qualitative.T10  # one colour per digit 0..9, the same on every chart


def faded(colour: str, alpha: float) -> str:
    """A `#rrggbb` colour at opacity `alpha`, e.g. a faint line behind a bold one of the same colour.

    >>> faded(PRIMARY, 0.45)
    'rgba(79, 70, 229, 0.45)'
    """
    r, g, b = hex_to_rgb(colour)
    return f"rgba({r}, {g}, {b}, {alpha})"


def montage(images: np.ndarray, *, cols: int, pad: int = 2, fill: int = 255) -> np.ndarray:
    """Tile images `(n, h, w)` into one `(rows*(h+pad)-pad, cols*(w+pad)-pad)` picture."""
    images = np.asarray(images)
    n, h, w = images.shape
    rows = max(1, -(-n // cols))
    out = np.full((rows * (h + pad) - pad, cols * (w + pad) - pad), fill, dtype=images.dtype)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + pad) : r * (h + pad) + h, c * (w + pad) : c * (w + pad) + w] = img
    return out


def digit_image(image: np.ndarray, *, title: str | None = None, height: int = 220) -> go.Figure:
    """One 28x28 digit (ink bright on dark, as MNIST stores it) as a crisp picture."""
    fig = px.imshow(np.asarray(image), color_continuous_scale="gray", binary_string=True)
    fig.update_layout(
        title=title,
        height=height,
        margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        coloraxis_showscale=False,
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def digit_grid(
    images: np.ndarray,
    captions: Sequence[str] | None = None,
    *,
    cols: int = 10,
    title: str | None = None,
    invert: bool = False,
    row_height: int | None = None,
    caption_color: str | None = None,
) -> go.Figure:
    """A grid of digits `(n, 28, 28)` in one image trace (fast even for hundreds), captions under
    each. `row_height` (px) is 70 with captions and 60 without unless given; `caption_color` is
    the chart's text colour unless given (a light one reads on the dark band of ink-bright digits).
    """
    images = np.asarray(images, dtype=np.uint8)
    if len(images) == 0:
        raise ValueError("digit_grid needs at least one image")
    cols = min(cols, len(images))
    side, pad = images.shape[1], 10 if captions is not None else 2
    pic = montage(255 - images if invert else images, cols=cols, pad=pad, fill=255 if invert else 0)
    if captions is not None:  # room under the last row for its captions
        pic = np.pad(pic, ((0, pad), (0, 0)), constant_values=255 if invert else 0)
    fig = px.imshow(pic, binary_string=True)
    if captions is not None:
        # One layout update for all captions: add_annotation per caption is slow.
        font = dict(size=10) if caption_color is None else dict(size=10, color=caption_color)
        notes = []
        for i, cap in enumerate(captions):
            r, c = divmod(i, cols)
            y = r * (side + pad) + side + pad / 2 - 1
            notes.append(dict(x=c * (side + pad) + side / 2, y=y, text=cap, showarrow=False, font=font,
                              yanchor="middle"))
        fig.update_layout(annotations=notes)
    rows = -(-len(images) // cols)
    row_height = row_height or (70 if captions is not None else 60)
    fig.update_layout(
        title=title,
        margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        height=max(120, rows * row_height + (30 if title else 0)),
    )
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_traces(hoverinfo="skip", hovertemplate=None)
    return fig
