"""Models that saw the test digits: a Kaggle score from one of them says nothing about the model.

Kaggle's test digits are MNIST digits, so a model leaks when it trained on the full MNIST
download, or on rows identical to test rows (found through `data.row_hashes`). The command line
refuses such a model unless told `--allow-leakage`; the Submit page asks for consent.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from core import data, registry

# What a finding says the model saw ("kind" of each finding).
MNIST_DOWNLOAD = "mnist-download"  # trained on the full MNIST download
OVERLAP = "overlap"  # trained on rows identical to test rows


def check_leakage(
    model_names: Sequence[str], test_images: np.ndarray, *, test_hashes: np.ndarray | None = None
) -> list[dict]:
    """Findings for models that saw the test digits: trained on the MNIST download (Kaggle's test
    digits are MNIST digits), or trained on rows identical to test rows. Empty list = no leak.

    `test_hashes` are `data.row_hashes(test_images)` when the caller has them already (they are
    computed here at most once otherwise). Each finding:
    `{"model", "kind": MNIST_DOWNLOAD | OVERLAP, "overlap", "message"}`.
    """
    findings = []
    for name in model_names:
        if _trained_on_mnist_download(name):
            findings.append({
                "model": name, "kind": MNIST_DOWNLOAD, "overlap": None,
                "message": f"model {name!r} was trained on the full MNIST download, which contains "
                           "Kaggle's test digits: its score would be inflated by leakage",
            })
        train_hashes = registry.load_train_hashes(name)
        if train_hashes is None:
            continue
        if test_hashes is None:
            test_hashes = data.row_hashes(test_images)
        if overlap := _overlap(test_hashes, train_hashes):
            findings.append({
                "model": name, "kind": OVERLAP, "overlap": overlap,
                "message": f"model {name!r} was trained on {overlap:,} of the {len(test_hashes):,} "
                           f"test digits ({overlap / len(test_hashes):.1%}): it has seen the answers",
            })
    return findings


def _trained_on_mnist_download(name: str) -> bool:
    meta = registry.read_meta(name)
    return (meta.get("data") or {}).get("source", "unknown") == data.SOURCE_MNIST


def _overlap(test_hashes: np.ndarray, train_hashes: np.ndarray) -> int:
    """How many test rows are among the training rows."""
    return int(np.isin(test_hashes, train_hashes).sum()) if len(test_hashes) else 0


def leakage_error(findings: list[dict]) -> str:
    """One line for the user: which models leak and how to proceed anyway."""
    return ("leakage: " + "; ".join(f["message"] for f in findings)
            + " (choose another model, or pass --allow-leakage to write it anyway, recorded in the sidecar)")


def refuse_leakage(findings: list[dict], *, allowed: bool) -> None:
    """Raise ValueError (`leakage_error`) when there are findings and leaking was not allowed."""
    if findings and not allowed:
        raise ValueError(leakage_error(findings))
