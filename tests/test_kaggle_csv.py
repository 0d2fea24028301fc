"""core.kaggle_csv and core.kaggle_rows: the Kaggle CSV format read (through `data.parse_csv`,
the entry point callers use) and written, and every way a file can be wrong."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import numpy as np
import pytest

from core import data, kaggle_csv, kaggle_rows

CORPUS = Path(__file__).resolve().parent / "corpus"


@pytest.fixture(scope="module")
def small(sample_train: data.Dataset) -> data.Dataset:
    """60 real digits with labels, for files written and read back."""
    return data.Dataset(
        sample_train.images[:60].copy(), sample_train.labels[:60].copy(), "small", "sample", "x"
    )


# --------------------------------------------------------------------------- writing


def test_csv_text_is_exactly_kaggles_format() -> None:
    images = np.zeros((2, 28, 28), np.uint8)
    images[0, 0, :4] = [0, 9, 10, 255]
    images[1, 27, 27] = 100
    text = kaggle_csv.to_csv_bytes(images, np.array([7, 0])).decode()
    lines = text.split("\n")
    assert lines[0] == "label," + ",".join(f"pixel{i}" for i in range(784))
    assert lines[1] == "7,0,9,10,255," + ",".join(["0"] * 780)
    assert lines[2] == "0," + ",".join(["0"] * 783) + ",100"
    assert lines[3] == "" and len(lines) == 4
    # Same bytes as numpy's own writer, which the earlier version used.
    flat = np.column_stack([[7, 0], images.reshape(2, -1)]).astype(np.int64)
    ref = io.StringIO()
    ref.write(",".join(kaggle_csv.TRAIN_COLUMNS) + "\n")
    np.savetxt(ref, flat, fmt="%d", delimiter=",")
    assert text == ref.getvalue()


def test_write_refuses_values_that_would_change(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="integers 0..255"):
        kaggle_csv.write_kaggle_csv(tmp_path / "x.csv", np.full((1, 28, 28), 1.5))
    with pytest.raises(ValueError, match="integers 0..255"):
        kaggle_csv.write_kaggle_csv(tmp_path / "x.csv", np.full((1, 784), 256))
    with pytest.raises(ValueError, match="digits 0..9"):
        kaggle_csv.write_kaggle_csv(tmp_path / "x.csv", np.zeros((1, 28, 28), np.uint8), np.array([10]))
    with pytest.raises(ValueError, match=r"expected 1 labels"):
        kaggle_csv.write_kaggle_csv(tmp_path / "x.csv", np.zeros((1, 28, 28), np.uint8), np.array([1, 2]))
    with pytest.raises(ValueError, match=r"shape \(n, 28, 28\)"):
        kaggle_csv.write_kaggle_csv(tmp_path / "x.csv", np.zeros((1, 27, 28), np.uint8))
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_write_is_atomic_and_replaces(tmp_path: Path, small: data.Dataset) -> None:
    path = tmp_path / "out" / "train.csv"
    kaggle_csv.write_kaggle_csv(path, small.images, small.labels)
    kaggle_csv.write_kaggle_csv(path, small.images[:5], small.labels[:5])
    assert [p.name for p in path.parent.iterdir()] == ["train.csv"]
    assert data.parse_csv(path).n == 5
    assert oct(path.stat().st_mode & 0o777) == "0o644"


def test_float_images_with_whole_values_are_written(tmp_path: Path, small: data.Dataset) -> None:
    path = kaggle_csv.write_kaggle_csv(tmp_path / "t.csv", small.images.astype(np.float32), small.labels)
    np.testing.assert_array_equal(data.parse_csv(path).images, small.images)


# --------------------------------------------------------------------------- bad files

TRAIN, TEST = True, False
BAD_FILES = [
    # (file in tests/corpus, what the caller expects, words the message must contain)
    ("empty.csv", TRAIN, ["empty.csv: the file is empty"]),
    ("blank_lines.csv", None, ["the file is empty"]),
    ("header_only.csv", TRAIN, ["header_only.csv: has a header but no rows"]),
    ("wrong_header.csv", TRAIN, ["header column 7 is 'pixl5', expected 'pixel5'"]),
    ("missing_header.csv", TRAIN, ["no header row", "label,pixel0..pixel783"]),
    ("missing_header.csv", None, ["no header row", "(train) or pixel0..pixel783 (test)"]),
    ("extra_column.csv", TRAIN, ["786 columns, expected 785", "extra column 'pixel784'"]),
    ("missing_column.csv", TRAIN, ["784 columns, expected 785", "missing column 'pixel783'"]),
    ("duplicated_column.csv", TRAIN, ["column 'pixel5' appears twice"]),
    ("label_not_first.csv", None, ["label column must come first"]),
    ("semicolons.csv", TRAIN, ["separated by semicolons", "expected commas"]),
    ("short_row.csv", TRAIN, ["row 2 has 784 values, expected 785"]),
    ("long_row.csv", TRAIN, ["row 2 has 786 values, expected 785"]),
    ("text_pixel.csv", TRAIN, ["row 3, column pixel5: 'abc' is not a number", "0..255"]),
    ("empty_cell.csv", TRAIN, ["row 3, column pixel5: empty cell", "0..255"]),
    ("nan_pixel.csv", TRAIN, ["row 3, column pixel5: 'NaN' is not a number"]),
    ("float_pixel.csv", TRAIN, ["row 3, column pixel5: 1.5 is not a whole number"]),
    ("negative_pixel.csv", TRAIN, ["row 3, column pixel5: -1 is out of range", "0..255"]),
    ("pixel_256.csv", TRAIN, ["row 3, column pixel5: 256 is out of range", "0..255"]),
    ("label_10.csv", TRAIN, ["row 2, column label: 10 is out of range", "digit 0..9"]),
    ("label_minus1.csv", TRAIN, ["row 2, column label: -1 is out of range", "digit 0..9"]),
    ("label_letter.csv", TRAIN, ["row 2, column label: 'a' is not a number", "digit 0..9"]),
    ("test_bad_pixel.csv", TEST, ["row 2, column pixel783: 'x' is not a number"]),
    ("test_valid.csv", TRAIN, ["this is a test file", "expected a training file"]),
    ("train_valid.csv", TEST, ["this is a training file", "expected a test file"]),
    ("binary_garbage.bin", None, ["binary_garbage.bin: not a text CSV"]),
    ("train_utf16.csv", TRAIN, ["UTF-16", "UTF-8"]),
    ("corrupt.csv.gz", TRAIN, ["corrupt.csv.gz: not a readable gzip file"]),
    ("truncated.csv.gz", TRAIN, ["truncated.csv.gz: not a readable gzip file"]),
    ("no_csvs.zip", TRAIN, ["no_csvs.zip: is a zip archive"]),
]


@pytest.mark.parametrize(
    ("filename", "expect", "words"), BAD_FILES, ids=[f"{f}-{e}" for f, e, _ in BAD_FILES]
)
def test_bad_file_is_refused_with_a_clear_message(filename: str, expect, words: list[str]) -> None:
    path = CORPUS / filename
    assert path.stat().st_size < 100_000
    with pytest.raises(ValueError) as caught:
        data.parse_csv(path, expect_labels=expect)
    message = str(caught.value)
    assert message.startswith(filename + ": ")
    for word in words:
        assert word in message
    # The same bytes uploaded give the same message under the upload's name.
    with pytest.raises(ValueError) as again:
        data.parse_csv(path.read_bytes(), name="upload.csv", expect_labels=expect)
    assert str(again.value) == message.replace(filename, "upload.csv", 1)


@pytest.mark.parametrize(
    "filename", ["train_bom.csv", "train_crlf.csv", "train_spaces_floats.csv", "train_valid.csv"]
)
def test_odd_but_valid_spellings_are_accepted(filename: str) -> None:
    reference = data.parse_csv(CORPUS / "train_valid.csv", expect_labels=True)
    ds = data.parse_csv(CORPUS / filename, expect_labels=True)
    np.testing.assert_array_equal(ds.images, reference.images)
    np.testing.assert_array_equal(ds.labels, [0, 1, 2])
    assert ds.images[0, 300 // 28, 300 % 28] == 100


def test_garbage_without_zero_bytes(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="g.bin: not a UTF-8 text CSV"):
        data.parse_csv(bytes(range(128, 256)) * 40, name="g.bin")


def test_size_limits(tmp_path: Path, monkeypatch) -> None:
    train = CORPUS / "train_valid.csv"
    monkeypatch.setattr(kaggle_csv, "MAX_CSV_BYTES", 5_000)
    with pytest.raises(ValueError, match=r"train_valid.csv: 11 KB is larger than the 4.9 KB limit"):
        data.parse_csv(train)
    with pytest.raises(ValueError, match="upload.csv: 11 KB is larger than the 4.9 KB limit"):
        data.parse_csv(train.read_bytes(), name="upload.csv")
    bomb = tmp_path / "bomb.csv.gz"
    bomb.write_bytes(gzip.compress(train.read_bytes()))
    assert bomb.stat().st_size < 5_000
    with pytest.raises(ValueError, match="bomb.csv.gz: unpacks to more than the 4.9 KB limit"):
        data.parse_csv(bomb)
    monkeypatch.setattr(kaggle_csv, "MAX_CSV_BYTES", 50_000)
    monkeypatch.setattr(kaggle_csv, "MAX_ROWS", 2)
    with pytest.raises(ValueError, match="train_valid.csv: has more than 2 rows, the limit"):
        data.parse_csv(train)
    with pytest.raises(ValueError, match="up.csv: has more than 2 rows, the limit"):
        data.parse_csv(train.read_bytes(), name="up.csv")


@pytest.mark.parametrize("block", [None, 64 * 1024], ids=["1MB-pieces", "64KB-pieces"])
def test_first_bad_cell_is_found_in_a_big_file(
    tmp_path: Path, sample_train: data.Dataset, monkeypatch, block: int | None
) -> None:
    """Past the first chunk: the row number counts across chunks and pieces, in reading order."""
    if block is not None:
        monkeypatch.setattr(kaggle_rows, "_SLOW_BLOCK", block)
    body = kaggle_csv.to_csv_bytes(sample_train.images[:3000], sample_train.labels[:3000])
    lines = body.split(b"\n")
    cells = lines[2501].split(b",")  # data row 2501
    cells[101] = b"7.25"  # column pixel100
    lines[2501] = b",".join(cells)
    lines[2900] = b"12" + lines[2900][1:]  # a later problem in another column
    big = tmp_path / "big.csv"
    big.write_bytes(b"\n".join(lines))
    assert big.stat().st_size > 3 * kaggle_rows._SLOW_BLOCK
    with pytest.raises(ValueError, match=r"big.csv: row 2501, column pixel100: 7.25 is not a whole number"):
        data.parse_csv(big)
    lines[2501] = b",".join(cells[:-1])
    big.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match=r"big.csv: row 2501 has 784 values, expected 785"):
        data.parse_csv(big)


def test_unusual_spellings_across_chunks_are_accepted(tmp_path: Path, sample_train: data.Dataset) -> None:
    n = 1500
    body = kaggle_csv.to_csv_bytes(sample_train.images[:n], sample_train.labels[:n])
    body = body.replace(b"\n0,", b"\n 0.0 ,")
    path = tmp_path / "odd.csv"
    path.write_bytes(body)
    assert path.stat().st_size > 2 * kaggle_rows._SLOW_BLOCK and body.count(b" 0.0 ,") > 100
    ds = data.parse_csv(path, expect_labels=True)
    np.testing.assert_array_equal(ds.images, sample_train.images[:n])
    np.testing.assert_array_equal(ds.labels, sample_train.labels[:n])


def _test_file(row: list[bytes]) -> bytes:
    """A one-row test file (no label column) with these 784 cells."""
    return ",".join(kaggle_csv.PIXEL_COLUMNS).encode() + b"\n" + b",".join(row) + b"\n"


@pytest.mark.parametrize(
    ("cell", "value"),
    [
        (b"7", 7),
        (b" 7 ", 7),
        (b"+5", 5),
        (b"7.0", 7),
        (b"5.", 5),
        (b".5e1", 5),
        (b"1e2", 100),
        (b'"9"', 9),
        (b"0x1F", 31),
    ],
)
def test_cell_spellings_that_mean_an_integer(cell: bytes, value: int) -> None:
    row = [b"0"] * 784
    row[42] = cell
    ds = data.parse_csv(_test_file(row))
    assert ds.images.reshape(-1)[42] == value and ds.images.sum() == value


@pytest.mark.parametrize(
    ("cell", "problem"),
    [
        (b"1_0", "'1_0' is not a number"),
        ("٣".encode(), "'٣' is not a number"),
        (b"inf", "'inf' is not a number"),
        (b"0x100", "0x100 is out of range"),
        (b"0x1G", "'0x1G' is not a number"),
        (b"2.5e-1", "2.5e-1 is not a whole number"),
        (b"1e3", "1e3 is out of range"),
        (b"99999999999", "99999999999 is out of range"),
    ],
)
def test_cell_spellings_that_are_refused(cell: bytes, problem: str) -> None:
    row = [b"0"] * 784
    row[42] = cell
    with pytest.raises(ValueError, match=f"^t.csv: row 1, column pixel42: {problem}"):
        data.parse_csv(_test_file(row), name="t.csv")
