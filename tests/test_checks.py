"""core.checks: the label checker and the separator guess that data, exploration, evaluation and
submission share."""

from __future__ import annotations

import numpy as np
import pytest

from core import checks, data


@pytest.mark.parametrize(
    ("labels", "n", "message"),
    [
        (np.array([[1, 2]]), None, r"expected labels of shape \(n,\), got \(1, 2\)"),
        (np.array([1, 2]), 3, r"expected labels of shape \(3,\), got \(2,\)"),
        (np.array([-1, 2]), None, "expected labels that are digits 0..9"),
        (np.array([0, 10]), 2, "expected labels that are digits 0..9"),
    ],
)
def test_bad_labels_are_refused_in_one_wording(labels, n, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        checks.check_labels(labels, n)


def test_good_labels_come_back_as_int64() -> None:
    out = checks.check_labels(np.array([0, 9, 3], dtype=np.uint8), 3)
    assert out.dtype == np.int64 and out.tolist() == [0, 9, 3]
    assert checks.check_labels(np.zeros(0, np.int64)).shape == (0,)


@pytest.mark.parametrize(
    ("header", "word"),
    [
        (["label;pixel0;pixel1"], "semicolons"),
        (["label\tpixel0"], "tabs"),
        (["label|pixel0"], "'|'"),
        (["label"], None),
        (["label", "pixel0;"], None),  # two columns: commas do separate it
    ],
)
def test_separator_name(header: list[str], word: str | None) -> None:
    assert checks.separator_name(header) == word


def test_a_tab_separated_digit_file_is_named_as_such() -> None:
    # (test_submission covers the same guess for a semicolon-separated submission.)
    with pytest.raises(ValueError, match="t.csv: values are separated by tabs; expected commas"):
        data.parse_csv(b"label\tpixel0\n1\t0\n", name="t.csv")


@pytest.mark.parametrize(
    ("point", "k", "values"),
    [
        ({"customdata": [4, 9, 7]}, 2, [4, 9]),
        ({"customdata": (4,)}, 1, [4]),
        ({"customdata": {"0": 2, "1": 3}}, 2, [2, 3]),
        ({"customdata": {0: 2, 1: 3}}, 2, [2, 3]),
        ({"customdata": 5}, 1, [5]),
        ({"customdata": 5}, 2, None),  # a scalar is one value
        ({"customdata": {"0": 2}}, 2, None),  # the second value is missing
        ({"customdata": []}, 1, None),
        ({"customdata": [None, 1]}, 1, None),
        ({"x": 1.0}, 1, None),
    ],
)
def test_point_customdata_reads_what_streamlit_sends(point, k: int, values) -> None:
    assert checks.point_customdata(point, k) == values
