"""Cached Explore-page computations, keyed by the dataset's fingerprint (its content).

Each function takes the fingerprint as the hashed key and the arrays as unhashed `_` arguments, so
Streamlit never hashes 30 MB of pixels; the same data gives the same cached answer in every session.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from core import exploration, tsne_process
from core.data import Dataset
from studio import memory


@st.cache_data(show_spinner=False, max_entries=16)
@memory.trimmed
def class_mean_std(fingerprint: str, _ds: Dataset) -> tuple[np.ndarray, np.ndarray]:
    """Mean and std image per digit, `(10, 28, 28)` each."""
    return exploration.class_mean_std(_ds.images, _ds.labels)


@st.cache_data(show_spinner=False, max_entries=16)
@memory.trimmed
def pixel_profile(fingerprint: str, _ds: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pixel-value counts `(256,)`, ink pixels per digit `(n,)` and the mean image `(28, 28)`."""
    return (
        exploration.intensity_counts(_ds.images),
        exploration.ink_pixels(_ds.images),
        exploration.mean_image(_ds.images),
    )


@st.cache_data(show_spinner=False, max_entries=8)
@memory.trimmed
def set_summary(fingerprints: tuple[str, ...], _sets: dict[str, np.ndarray]) -> pd.DataFrame:
    """One row of figures per set (train, test)."""
    return exploration.set_summary(_sets)


@st.cache_data(show_spinner="Running PCA…", max_entries=16)
@memory.trimmed
def pca(fingerprint: str, _ds: Dataset, n: int, seed: int) -> exploration.Embedding:
    """PCA map of up to `n` digits."""
    return exploration.pca_embedding(_ds.images, n=n, seed=seed)


@st.cache_data(show_spinner=False, max_entries=16)
@memory.trimmed
def tsne(fingerprint: str, _ds: Dataset, n: int, seed: int) -> exploration.Embedding:
    """t-SNE map of `n` digits (seconds of work in a child process; the page shows its own spinner)."""
    return tsne_process.tsne_in_child(_ds.images, n=n, seed=seed)


@st.cache_data(show_spinner="Checking data quality…", max_entries=8)
@memory.trimmed
def quality_checks(
    train_fp: str, test_fp: str | None, _train: Dataset, _test: Dataset | None
) -> list[exploration.QualityCheck]:
    """Every data-quality check on the train set (and the test set when there is one)."""
    return exploration.quality_checks(
        _train.images, _train.labels, _test.images if _test is not None else None
    )
