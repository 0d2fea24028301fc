"""Explore: what the digits look like, how they are spread, and whether the data has problems."""

from __future__ import annotations

import numpy as np
import streamlit as st

from core import exploration
from core.charts import explore as charts
from core.charts.common import digit_grid
from studio import datasets, tables
from studio import explore_cache as cache

PCA_MAX_POINTS = 10_000  # Enough to see the structure; more only slows the browser.
TSNE_SIZES = [500, 1000, 1500, 2000, 3000, 5000]
MAX_SELECTED_SHOWN = 40

st.set_page_config(page_title="Explore · Digit Recognizer Studio", page_icon="🔍", layout="wide")
st.session_state.setdefault("explore_seed", 0)
st.session_state.setdefault("explore_per_class", 10)
st.session_state.setdefault("explore_tsne_n", 1000)

st.title("🔍 Explore the data")
train, test = datasets.train_and_test()
st.caption(f"Training set: {datasets.describe(train)} · Test set: {datasets.describe(test)}")

counts = exploration.class_counts(train.labels)
train_pixels, train_ink, train_mean = cache.pixel_profile(train.fingerprint, train)
m1, m2, m3, m4 = st.columns(4)
m1.metric("Training digits", f"{train.n:,}")
m2.metric("Test digits", f"{test.n:,}" if test is not None else "none")
m3.metric("Classes", int((counts > 0).sum()))
m4.metric("Ink pixels per digit (median)", f"{int(np.median(train_ink))}")

tabs = st.tabs(["Classes", "Samples", "Mean & spread", "Pixels", "Train vs test", "2-D map", "Quality"])

with tabs[0]:
    st.plotly_chart(charts.class_balance_figure(counts), key="explore_balance")
    lo, hi = int(counts.argmin()), int(counts.argmax())
    st.caption(
        f"Most common: {hi} ({counts[hi]:,} images) · rarest: {lo} ({counts[lo]:,}) · "
        f"ratio {counts[hi] / max(counts[lo], 1):.2f}. A mild imbalance like MNIST's needs no correction."
    )

with tabs[1]:
    c1, c2, c3 = st.columns([1, 1, 4], vertical_alignment="bottom")
    c1.number_input("Digits per class", min_value=3, max_value=20, step=1, key="explore_per_class")
    if c2.button("🔀 Reshuffle", key="explore_reshuffle"):
        st.session_state["explore_seed"] += 1
    c3.caption(f"Random pick #{st.session_state['explore_seed']} from the training set, one row per digit.")
    picks = exploration.sample_indices_per_class(
        train.labels,
        per_class=int(st.session_state["explore_per_class"]),
        seed=st.session_state["explore_seed"],
    )
    st.plotly_chart(charts.class_samples_figure(train.images, picks), key="explore_samples")

with tabs[2]:
    means, stds = cache.class_mean_std(train.fingerprint, train)
    labels = [str(d) for d in range(10)]
    st.plotly_chart(
        charts.image_row_figure(means, labels, title="Mean image per digit", colorbar_title="mean"),
        key="explore_means",
    )
    st.plotly_chart(
        charts.image_row_figure(
            stds,
            labels,
            title="Spread (std) per digit",
            colorscale="Viridis",
            zmax=None,
            colorbar_title="std",
        ),
        key="explore_stds",
    )
    st.caption(
        "Bright in the mean: where almost every writer puts ink. Bright in the spread: where writers "
        "disagree (slant, loop size, stroke width) — what a model has to learn to tolerate."
    )

with tabs[3]:
    st.plotly_chart(
        charts.intensity_histogram_figure(train_pixels, title="Pixel values in the training set"),
        key="explore_pixels",
    )
    background = 100 * train_pixels[0] / train_pixels.sum()
    st.caption(
        f"{background:.1f}% of all pixels are pure background (0). Ink is mostly saturated near 255; "
        f"the values between are the anti-aliased edges of the strokes. The y axis is logarithmic."
    )

with tabs[4]:
    if test is None:
        st.info("There is no test set to compare with: add Kaggle's test.csv to data/ or upload one.")
    else:
        test_pixels, test_ink, test_mean = cache.pixel_profile(test.fingerprint, test)
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            charts.image_row_figure([train_mean, test_mean], ["train", "test"], title="Mean image"),
            key="explore_tt_means",
        )
        c2.plotly_chart(
            charts.image_row_figure(
                [train_mean - test_mean],
                ["train − test"],
                title="Difference of the means",
                colorscale="RdBu",
                zmid=0.0,
                colorbar_title="Δ",
            ),
            key="explore_tt_diff",
        )
        st.caption(
            "Left: the average of every digit in each set. Right: their difference — blue where the "
            "training digits carry more ink, red where the test digits do (a few pixel values at most "
            "when both come from the same source)."
        )
        c1, c2 = st.columns(2)
        c1.plotly_chart(
            charts.intensity_comparison_figure({"train": train_pixels, "test": test_pixels}),
            key="explore_tt_pixels",
        )
        c2.plotly_chart(
            charts.ink_distribution_figure({"train": train_ink, "test": test_ink}), key="explore_tt_ink"
        )
        summary = cache.set_summary(
            (train.fingerprint, test.fingerprint), {"train": train.images, "test": test.images}
        )
        st.dataframe(
            summary,
            hide_index=True,
            key="explore_tt_table",
            column_config=tables.number_columns({
                "digits": "localized", "mean pixel value": "%.1f", "background pixels (%)": "%.1f",
                "ink pixels per digit (mean)": "%.1f", "ink pixels per digit (median)": "%.0f",
            }),
        )

with tabs[5]:
    c1, c2 = st.columns([1, 3], vertical_alignment="bottom")
    c1.select_slider("Digits in the t-SNE map", options=TSNE_SIZES, key="explore_tsne_n")
    c2.caption(
        "PCA: the two straight directions along which the digits vary most. t-SNE: a bent map that "
        "keeps look-alike digits together. Click a point or draw a lasso to see the digits."
    )
    n_tsne = int(st.session_state["explore_tsne_n"])
    try:
        pca = cache.pca(train.fingerprint, train, PCA_MAX_POINTS, 0)
        with st.spinner(f"Running t-SNE on {min(n_tsne, train.n):,} digits (a few seconds, only once)…"):
            tsne = cache.tsne(train.fingerprint, train, n_tsne, 0)
        maps = [(pca, "explore_pca_map", f"PCA of {len(pca.indices):,} digits"),
                (tsne, "explore_tsne_map", f"t-SNE of {len(tsne.indices):,} digits")]
    except ValueError as exc:  # a handful of uploaded digits: too few to map
        st.info(f"No map of {train.name}: {exc}.")
        maps = []
    for col, (emb, key, title) in zip(st.columns(2), maps, strict=False):
        with col:
            event = st.plotly_chart(
                charts.embedding_figure(emb, train.labels, title=title),
                key=key,
                on_select="rerun",
                selection_mode=("points", "box", "lasso"),
            )
            chosen = exploration.selected_indices(event.selection.points)
            if len(chosen):
                shown = chosen[:MAX_SELECTED_SHOWN]
                st.caption(
                    f"{len(chosen):,} digits selected"
                    + (f", first {len(shown)} shown" if len(chosen) > len(shown) else "")
                    + " (label · row in the file)"
                )
                st.plotly_chart(
                    digit_grid(train.images[shown], [f"{train.labels[i]} · #{i + 1}" for i in shown], cols=8),
                    key=f"{key}_selected",
                )
            else:
                st.caption("Nothing selected yet.")

with tabs[6]:
    checks = cache.quality_checks(train.fingerprint, test.fingerprint if test else None, train, test)
    st.dataframe(exploration.checks_table(checks), hide_index=True, key="explore_quality_table")
    hits = [c for c in checks if c.found and len(c.examples)]
    if not hits:
        st.success(
            "No problems found: no duplicates, no train/test overlap, no blank images, no skewed labels."
        )
    for c in hits:
        st.markdown(f"**{c.check}** ({c.set}): {c.detail}")
        st.plotly_chart(
            digit_grid(c.examples, list(c.captions), cols=12), key=f"explore_hits_{c.check}_{c.set}"
        )
    st.caption(
        "Example images are named by their row in the file, counting from 1 (Kaggle's ImageId for test)."
    )
