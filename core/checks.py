"""Input read at core's door, written once so every module takes it the same way: labels of
digits, the separator of a CSV whose header reads as one column, and the points of a Plotly
selection as Streamlit hands them over.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

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


def point_customdata(point: Mapping, k: int) -> list | None:
    """The first `k` customdata values of a clicked or selected Plotly point, or None if it has
    fewer. Streamlit hands customdata over as a list, a scalar, or a dict keyed "0", "1", ...
    (for a row of a 2-D customdata array); all three are read.

    >>> point_customdata({"customdata": {"0": 7, "1": 2}}, 2), point_customdata({"customdata": 7}, 1)
    ([7, 2], [7])
    >>> point_customdata({"customdata": [7]}, 2) is None
    True
    """
    custom = point.get("customdata")
    if isinstance(custom, Mapping):
        values = [custom.get(str(i), custom.get(i)) for i in range(k)]
    elif isinstance(custom, list | tuple):
        values = list(custom[:k])
    else:
        values = [custom]
    if len(values) < k or any(v is None for v in values):
        return None
    return values
