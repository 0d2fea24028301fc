"""Checks shared at core's door, written once so every module refuses the same input in the same
words: labels of digits, and the separator of a CSV whose header reads as one column.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

N_CLASSES = 10
SEPARATORS = ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'"))  # what people save instead of commas


def check_labels(labels: np.ndarray, n: int | None = None) -> np.ndarray:
    """Labels as `(n,) int64` digits 0..9 (their count checked when `n` is given).

    >>> check_labels(np.array([3, 0, 9], dtype=np.uint8)).dtype
    dtype('int64')
    >>> check_labels([1, 10])
    Traceback (most recent call last):
    ValueError: expected labels that are digits 0..9
    >>> check_labels([1, 2], n=3)
    Traceback (most recent call last):
    ValueError: expected labels of shape (3,), got (2,)
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or (n is not None and len(labels) != n):
        raise ValueError(f"expected labels of shape ({n if n is not None else 'n'},), got {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= N_CLASSES):
        raise ValueError("expected labels that are digits 0..9")
    return labels.astype(np.int64, copy=False)


def separator_name(header: Sequence[str]) -> str | None:
    """What separates the values of a header that reads as a single column ('semicolons', 'tabs',
    "'|'"), or None: a file saved with another separator than commas has one column per line.

    >>> separator_name(["ImageId;Label"])
    'semicolons'
    >>> separator_name(["ImageId", "Label"]) is None
    True
    """
    if len(header) == 1:
        for sep, word in SEPARATORS:
            if sep in header[0]:
                return word
    return None
