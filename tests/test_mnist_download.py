"""core.mnist_download: the full MNIST set fetched (from a local server here) and saved in Kaggle's
format, and every way a download can be wrong."""

from __future__ import annotations

import functools
import http.server
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from core import data, kaggle_csv, mnist_download


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output clean
        pass


@pytest.fixture
def local_server(tmp_path: Path):
    """An HTTP server on 127.0.0.1 serving files from a temporary folder; yields (folder, url)."""
    folder = tmp_path / "www"
    folder.mkdir()
    handler = functools.partial(_QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield folder, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def test_download_mnist_from_a_local_server(tmp_dirs, local_server, sample_train) -> None:
    www, url = local_server
    x, y = sample_train.images[:250], sample_train.labels[:250].astype(np.uint8)
    np.savez(www / "mnist.npz", x_train=x[:200], y_train=y[:200], x_test=x[200:], y_test=y[200:])
    path = mnist_download.download_mnist(f"{url}/mnist.npz")
    assert path == tmp_dirs.data / "mnist-full.csv"
    ds = data.parse_csv(path, expect_labels=True)
    np.testing.assert_array_equal(ds.images, x)
    np.testing.assert_array_equal(ds.labels, y)
    assert '"rows": 250' in (tmp_dirs.data / "mnist-full.json").read_text()
    files = data.find_data()
    assert files.source == data.SOURCE_MNIST and files.train == path and files.test is None
    assert data.load_train(files).source == data.SOURCE_MNIST
    # Kaggle's own train.csv wins over the download.
    kaggle_csv.write_kaggle_csv(tmp_dirs.data / "train.csv", x[:5], y[:5])
    assert data.find_data().source == data.SOURCE_KAGGLE


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"<html>not found</html>", "is not an MNIST .npz file"),
        (None, "could not download MNIST from .*404"),
        ("missing-key", "is not an MNIST .npz file"),
        ("wrong-shape", "has images of shape"),
        ("bad-label", "has bad values: labels must be digits 0..9"),
        ("refused", "could not download MNIST from .*refused"),
    ],
)
def test_bad_download_gives_a_clear_error(tmp_dirs, local_server, payload, message: str) -> None:
    www, url = local_server
    x, y = np.zeros((4, 28, 28), np.uint8), np.arange(4, dtype=np.uint8)
    if isinstance(payload, bytes):
        (www / "mnist.npz").write_bytes(payload)
    elif payload == "missing-key":
        np.savez(www / "mnist.npz", x_train=x, y_train=y)
    elif payload == "wrong-shape":
        np.savez(www / "mnist.npz", x_train=x[:, :14], y_train=y, x_test=x[:, :14], y_test=y)
    elif payload == "bad-label":
        np.savez(www / "mnist.npz", x_train=x, y_train=y + 7, x_test=x, y_test=y)
    if payload == "refused":
        url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ValueError, match=message):
        mnist_download.download_mnist(f"{url}/mnist.npz", timeout=5)
    assert list(tmp_dirs.data.iterdir()) == []
