"""MNIST idx files -> Kaggle CSV: the same digits and labels come back through the studio's own reader,
and a file that is not an idx pair is refused naming the file."""

from __future__ import annotations

import gzip
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))

import mnist_idx_csv  # noqa: E402

from core import kaggle_csv  # noqa: E402

SCRIPT = Path(mnist_idx_csv.__file__)


def _idx_pair(folder: Path, images: np.ndarray, labels: np.ndarray, *, gz: bool = False) -> tuple[Path, Path]:
    """Write `images (n, 28, 28)` and `labels (n,)` as MNIST writes them: big-endian sizes, then bytes."""
    n = len(images)
    img = (2051).to_bytes(4, "big") + b"".join(s.to_bytes(4, "big") for s in (n, 28, 28)) + images.tobytes()
    lab = (2049).to_bytes(4, "big") + n.to_bytes(4, "big") + labels.astype(np.uint8).tobytes()
    suffix = ".gz" if gz else ""
    ip, lp = folder / f"images.idx3-ubyte{suffix}", folder / f"labels.idx1-ubyte{suffix}"
    ip.write_bytes(gzip.compress(img) if gz else img)
    lp.write_bytes(gzip.compress(lab) if gz else lab)
    return ip, lp


@pytest.mark.parametrize("gz", [False, True])
def test_digits_and_labels_come_back_unchanged(tmp_path: Path, sample_train, gz: bool) -> None:
    images, labels = sample_train.images[:50], sample_train.labels[:50].astype(np.uint8)
    ip, lp = _idx_pair(tmp_path, images, labels, gz=gz)
    out = tmp_path / "test.csv.gz"
    done = subprocess.run([sys.executable, str(SCRIPT), str(ip), str(lp), str(out)],
                          capture_output=True, text=True, check=True)
    back, back_labels = kaggle_csv.read_kaggle_csv(out, name="test.csv.gz", expect_labels=True)
    np.testing.assert_array_equal(back, images)
    np.testing.assert_array_equal(back_labels, labels)
    assert f"50 digits, per class {np.bincount(labels, minlength=10).tolist()}" in done.stdout


def test_swapped_files_are_refused_naming_the_file(tmp_path: Path, sample_train) -> None:
    ip, lp = _idx_pair(tmp_path, sample_train.images[:5], sample_train.labels[:5])
    with pytest.raises(ValueError, match=rf"{lp.name}: not an MNIST idx file of images"):
        mnist_idx_csv.read_idx(lp, ip)


def test_a_short_file_and_a_count_mismatch_are_refused(tmp_path: Path, sample_train) -> None:
    ip, lp = _idx_pair(tmp_path, sample_train.images[:5], sample_train.labels[:5])
    ip.write_bytes(ip.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"the header says \[5, 28, 28\] but the file holds 3,935 bytes"):
        mnist_idx_csv.read_idx(ip, lp)
    ip, _ = _idx_pair(tmp_path, sample_train.images[:5], sample_train.labels[:5])
    (tmp_path / "other").mkdir()
    _, lp = _idx_pair(tmp_path / "other", sample_train.images[:4], sample_train.labels[:4])
    with pytest.raises(ValueError, match="holds 5 images but .* 4 labels"):
        mnist_idx_csv.read_idx(ip, lp)


def test_a_label_past_nine_is_refused(tmp_path: Path, sample_train) -> None:
    ip, lp = _idx_pair(tmp_path, sample_train.images[:3], np.array([1, 12, 3]))
    with pytest.raises(ValueError, match="label 12 at row 1 is not a digit"):
        mnist_idx_csv.read_idx(ip, lp)
