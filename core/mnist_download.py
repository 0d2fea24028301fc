"""The full MNIST set (70,000 digits) downloaded and saved as a Kaggle-format training file.

`data.find_data` uses `data/mnist-full.csv` when there is no Kaggle `train.csv`. Models trained on
it are marked `mnist-download`: Kaggle's test digits are MNIST digits, so their Kaggle scores would
be inflated by leakage (the Submit page refuses them).
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from core import data, kaggle_csv, paths

# Keras' copy of MNIST; $DRS_MNIST_URL points it at a local server in tests.
MNIST_URL = os.environ.get(
    "DRS_MNIST_URL", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
)


def download_mnist(url: str = MNIST_URL, folder: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Fetch Keras' `mnist.npz` and save its 70,000 digits as `data/mnist-full.csv` (+ a JSON note
    of where they came from). Raises `ValueError` naming the URL; nothing is written then."""
    folder = folder or paths.data_dir()
    images, labels = _npz_arrays(_fetch(url, timeout), url)
    try:
        path = kaggle_csv.write_kaggle_csv(folder / "mnist-full.csv", images, labels)
    except ValueError as exc:
        raise ValueError(f"the download from {url} has bad values: {exc}") from None
    paths.write_atomic(
        folder / "mnist-full.json",
        json.dumps({"source": data.SOURCE_MNIST, "url": url, "rows": len(images)}).encode(),
    )
    return path


def _fetch(url: str, timeout: float) -> bytes:
    """The bytes at `url`, refused once they pass the CSV size limit."""
    import http.client
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed or test URL
            payload = resp.read(kaggle_csv.MAX_CSV_BYTES + 1)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ValueError(f"could not download MNIST from {url}: {exc}") from None
    if len(payload) > kaggle_csv.MAX_CSV_BYTES:
        limit = kaggle_csv.format_size(kaggle_csv.MAX_CSV_BYTES)
        raise ValueError(f"the download from {url} is larger than the {limit} limit")
    return payload


def _npz_arrays(payload: bytes, url: str) -> tuple[np.ndarray, np.ndarray]:
    """Images `(70000, 28, 28)` and labels `(70000,)` of an `mnist.npz`, train and test together."""
    if payload[:4] != b"PK\x03\x04":
        raise ValueError(
            f"the download from {url} is not an MNIST .npz file (it starts with {payload[:12]!r})"
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            images = np.concatenate([z["x_train"], z["x_test"]])
            labels = np.concatenate([z["y_train"], z["y_test"]])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"the download from {url} is not an MNIST .npz file ({exc})") from None
    if images.shape[1:] != (kaggle_csv.SIDE, kaggle_csv.SIDE) or labels.shape != (len(images),):
        raise ValueError(
            f"the download from {url} has images of shape {images.shape[1:]} and "
            f"{len(labels)} labels; expected 28x28 images, one label each"
        )
    return images, labels
