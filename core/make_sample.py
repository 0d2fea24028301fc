"""Build the committed sample `data/sample/` from the shared 10,000 MNIST digits (run once)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from core import data, kaggle_csv, paths

N_TEST = 1000
SEED = 2026


def make_sample(source: Path, out: Path | None = None) -> None:
    """Split the digits into train (9,000 labelled) and test (1,000, answers kept aside)."""
    out = out or paths.sample_dir()
    full = data.parse_csv(source, expect_labels=True)
    train_idx, test_idx = data.split_indices(full.labels, val_fraction=N_TEST / full.n, seed=SEED)
    kaggle_csv.write_kaggle_csv(out / "train.csv.gz", full.images[train_idx], full.labels[train_idx])
    kaggle_csv.write_kaggle_csv(out / "test.csv.gz", full.images[test_idx])
    answers = np.column_stack([np.arange(1, len(test_idx) + 1), full.labels[test_idx]])
    np.savetxt(
        out / "test_answers.csv", answers, fmt="%d", delimiter=",", header="ImageId,Label", comments=""
    )


if __name__ == "__main__":
    make_sample(Path(sys.argv[1]))
