"""The Kaggle Digit Recognizer CSV format, both ways: read and validate, write.

`train.csv` is `label,pixel0..pixel783`, `test.csv` is `pixel0..pixel783`; every value is an
integer (0..255 for a pixel, 0..9 for a label) and a row is a 28x28 image in row-major order.
Reading returns images `(n, 28, 28) uint8` and labels `(n,) int64` (None for a test file), or
refuses the file with a `ValueError` that names the file, the row (counted from 1 after the header)
and the column of the first problem. Here: the size limits, what makes bytes a text CSV, the
header; the rows themselves are read by `core.kaggle_rows`. Writing gives the same bytes Kaggle's
files have, atomically.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import zlib
from pathlib import Path

import numpy as np

from core import checks, kaggle_rows, paths

N_PIXELS = 784
SIDE = 28
PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
MAX_CSV_BYTES = 400 * 1024 * 1024  # Kaggle's train.csv is 73 MB; the full MNIST set ~130 MB.
MAX_ROWS = 200_000  # Refused beyond this: the full MNIST set has 70,000.

_SNIFF = 64 * 1024  # bytes looked at to recognise the kind of file before parsing it


def format_size(nbytes: int) -> str:
    """A byte count for people, as size-limit messages give it.

    >>> format_size(73 * 2**20), format_size(5_000), format_size(12)
    ('73 MB', '4.9 KB', '12 bytes')
    """
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{nbytes} bytes"


def _gunzip(data: bytes, name: str) -> bytes:
    """Decompress, refusing corrupt archives and anything that inflates past the size limit."""
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(MAX_CSV_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: not a readable gzip file ({exc})") from None
    if len(out) > MAX_CSV_BYTES:
        raise ValueError(f"{name}: unpacks to more than the {format_size(MAX_CSV_BYTES)} limit")
    return out


def _refuse_oversize(nbytes: int, name: str) -> None:
    if nbytes > MAX_CSV_BYTES:
        limit = format_size(MAX_CSV_BYTES)
        raise ValueError(f"{name}: {format_size(nbytes)} is larger than the {limit} limit")


def _open_bytes(source: str | Path | bytes, name: str) -> bytes:
    """The CSV text as UTF-8 bytes (gzip undone, BOM dropped); refuse what is not a text CSV."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{name}: file not found")
        _refuse_oversize(path.stat().st_size, name)  # before reading it
        data = path.read_bytes()
    _refuse_oversize(len(data), name)
    if data[:2] == b"\x1f\x8b":
        data = _gunzip(data, name)
    elif data[:4] == b"PK\x03\x04":
        raise ValueError(
            f"{name}: is a zip archive, not a CSV; unzip it and use the train.csv / test.csv inside"
        )
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ValueError(f"{name}: is UTF-16 encoded; save it as UTF-8 CSV")
    if data[:3] == b"\xef\xbb\xbf":
        data = data[3:]
    if not data[:_SNIFF].strip() and not data.strip():
        raise ValueError(f"{name}: the file is empty")
    head = data[:_SNIFF]
    if b"\x00" in head:
        raise ValueError(f"{name}: not a text CSV (binary data or UTF-16); save it as UTF-8 CSV")
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=len(data) <= _SNIFF)
    except UnicodeDecodeError:
        raise ValueError(f"{name}: not a UTF-8 text CSV (binary data or another encoding)") from None
    return data


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_header(header: list[str], name: str, expect_labels: bool | None) -> bool:
    """Return whether the file has a label column; raise naming the first wrong column."""
    cleaned = [c.strip() for c in header]
    has_label = _header_kind(cleaned, name, expect_labels)
    _check_columns(cleaned, name, has_label)
    return has_label


def _header_kind(cleaned: list[str], name: str, expect_labels: bool | None) -> bool:
    """Whether the header starts with `label`; raise if it is no header or not the kind expected."""
    line = ",".join(cleaned)
    if (word := checks.separator_name(cleaned)) is not None:
        raise ValueError(f"{name}: values are separated by {word}; expected commas (Kaggle format)")
    if cleaned and sum(_is_number(c) for c in cleaned) > len(cleaned) // 2:
        wanted = {
            True: "label,pixel0..pixel783",
            False: "pixel0..pixel783",
            None: "label,pixel0..pixel783 (train) or pixel0..pixel783 (test)",
        }[expect_labels]
        raise ValueError(f"{name}: no header row (the first line holds numbers); expected {wanted}")
    has_label = bool(cleaned) and cleaned[0].lower() == "label"
    if not has_label and "label" in (c.lower() for c in cleaned):
        raise ValueError(f"{name}: the label column must come first (label,pixel0..pixel783)")
    if expect_labels is True and not has_label:
        if cleaned and cleaned[0] == "pixel0":
            raise ValueError(
                f"{name}: this is a test file (pixel0..pixel783, no label column); "
                "expected a training file with columns label,pixel0..pixel783"
            )
        raise ValueError(
            f"{name}: expected a training file with columns label,pixel0..pixel783; "
            f"the first column is {line[:40]!r}"
        )
    if expect_labels is False and has_label:
        raise ValueError(
            f"{name}: this is a training file (it has a label column); "
            "expected a test file with columns pixel0..pixel783"
        )
    return has_label


def _check_columns(cleaned: list[str], name: str, has_label: bool) -> None:
    """Raise naming the first duplicated, misspelt, extra or missing column."""
    expected = TRAIN_COLUMNS if has_label else PIXEL_COLUMNS
    seen: set[str] = set()
    for col in cleaned:
        if col in seen:
            raise ValueError(f"{name}: column {col!r} appears twice in the header")
        seen.add(col)
    for i, (got, want) in enumerate(zip(cleaned, expected, strict=False)):
        if got != want:
            raise ValueError(
                f"{name}: header column {i + 1} is {got[:40]!r}, expected {want!r} "
                f"(Kaggle format: {'label,' if has_label else ''}pixel0..pixel783)"
            )
    if len(cleaned) > len(expected):
        raise ValueError(
            f"{name}: header has {len(cleaned)} columns, expected {len(expected)}; "
            f"unexpected extra column {cleaned[len(expected)][:40]!r}"
        )
    if len(cleaned) < len(expected):
        raise ValueError(
            f"{name}: header has {len(cleaned)} columns, expected {len(expected)}; "
            f"missing column {expected[len(cleaned)]!r}"
        )


def _split_header(data: bytes, name: str) -> tuple[list[str], int]:
    """The header's cells and the offset where the rows start (leading blank lines skipped)."""
    start = 0
    while start < len(data) and data[start : start + 1] in (b"\n", b"\r", b" ", b"\t"):
        start += 1
    end = data.find(b"\n", start)
    end = len(data) if end < 0 else end + 1
    line = data[start:end].decode("utf-8", errors="replace").strip("\r\n")
    try:
        header = next(csv.reader([line]))
    except (csv.Error, StopIteration):
        raise ValueError(f"{name}: the header row is not valid CSV") from None
    return header, end


def _parse_clean_file(
    path: Path, name: str, expect_labels: bool | None
) -> tuple[tuple[np.ndarray, np.ndarray | None] | None, bool]:
    """The common case, a plain CSV on disk that starts with its header: pyarrow reads the file
    itself (no 73 MB copy in Python). Returns (arrays or None, whether a typed read was tried);
    on None the general path decides what is wrong."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(_SNIFF)
    except OSError:
        return None, False
    if size > MAX_CSV_BYTES or not head.startswith((b"label,", b"pixel0,")) or b"\n" not in head:
        return None, False
    _open_bytes(head, name)  # text checks on the first 64 KB: refuse binary data early
    header, _ = _split_header(head, name)
    has_label = _check_header(header, name, expect_labels)
    header = TRAIN_COLUMNS if has_label else PIXEL_COLUMNS
    parsed = kaggle_rows.fast_parse(path, header, has_label, skip_rows=1)
    if parsed is None or len(parsed[0]) == 0 or len(parsed[0]) > MAX_ROWS:
        return None, True
    if has_label and kaggle_rows.bad_label(parsed[1], name) is not None:
        return None, True
    return parsed, True


def read_kaggle_csv(
    source: str | Path | bytes, *, name: str, expect_labels: bool | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Parse and validate a Kaggle-format CSV (plain or gzip) from a path or bytes.

    Returns images `(n, 28, 28) uint8` and labels `(n,) int64` (None for a test file).
    `expect_labels` True demands `label,pixel0..pixel783`, False demands `pixel0..pixel783`,
    None accepts either. Raises `ValueError` naming `name`, the row (counted from 1 after the
    header) and the column of the first problem, e.g. "train.csv: row 3, column pixel5: ...".
    """
    import pyarrow as pa

    tried = False
    if not isinstance(source, bytes | bytearray | memoryview):
        quick, tried = _parse_clean_file(Path(source), name, expect_labels)
        if quick is not None:
            return quick[0].reshape(-1, SIDE, SIDE), quick[1]
    data = _open_bytes(source, name)
    header, offset = _split_header(data, name)
    has_label = _check_header(header, name, expect_labels)
    header = TRAIN_COLUMNS if has_label else PIXEL_COLUMNS
    if not data[offset : offset + _SNIFF].strip() and not data[offset:].strip():
        raise ValueError(f"{name}: has a header but no rows")
    parsed = None if tried else kaggle_rows.fast_parse(pa.py_buffer(data).slice(offset), header, has_label)
    if parsed is None or (has_label and kaggle_rows.bad_label(parsed[1], name) is not None):
        parsed = kaggle_rows.slow_parse(data, offset, header, has_label, name, max_rows=MAX_ROWS)
    pixels, labels = parsed
    if len(pixels) == 0:
        raise ValueError(f"{name}: has a header but no rows")
    if len(pixels) > MAX_ROWS:
        raise ValueError(f"{name}: has more than {MAX_ROWS:,} rows, the limit")
    return pixels.reshape(-1, SIDE, SIDE), labels


# --------------------------------------------------------------------------- writing

# Each value 0..255 as its digits plus a comma, padded to 4 bytes; `_CELL_LEN` says how many count.
_CELL_TEXT = np.zeros((256, 4), dtype=np.uint8)
_CELL_LEN = np.zeros(256, dtype=np.int64)
for _v in range(256):
    _CELL_TEXT[_v, : len(str(_v)) + 1] = np.frombuffer(f"{_v},".encode(), dtype=np.uint8)
    _CELL_LEN[_v] = len(str(_v)) + 1
_CELL_KEEP = np.arange(4)[None, :] < _CELL_LEN[:, None]


def check_arrays(images: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as `(n, 784) uint8` and labels as `(n,) uint8`, refusing values that a Kaggle CSV
    would change (fractions, values outside 0..255, labels outside 0..9)."""
    images = np.asarray(images)
    if images.ndim not in (2, 3) or images.shape[1:] not in ((SIDE, SIDE), (N_PIXELS,)):
        raise ValueError(f"expected images of shape (n, 28, 28) or (n, 784), got {images.shape}")
    flat = images.reshape(len(images), N_PIXELS)
    if flat.dtype != np.uint8:
        if flat.size and (
            not np.all(np.isfinite(flat))
            or flat.min() < 0
            or flat.max() > 255
            or np.any(flat != np.round(flat))
        ):
            raise ValueError("image values must be integers 0..255")
        flat = flat.astype(np.uint8)
    if labels is None:
        return flat, None
    labels = np.asarray(labels)
    if labels.shape != (len(flat),):
        raise ValueError(f"expected {len(flat)} labels, got shape {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() > 9 or np.any(labels != np.round(labels))):
        raise ValueError("labels must be digits 0..9")
    return flat, labels.astype(np.uint8)


def to_csv_bytes(images: np.ndarray, labels: np.ndarray | None = None) -> bytes:
    """Kaggle-format CSV text for images `(n, 28, 28)` (and labels `(n,)` for a training file).

    Vectorised through a table of the 256 possible cells: the bytes of `np.savetxt`, faster.
    """
    flat, labels = check_arrays(images, labels)
    header = TRAIN_COLUMNS if labels is not None else PIXEL_COLUMNS
    parts = [(",".join(header) + "\n").encode()]
    for start in range(0, len(flat), 4096):
        block = flat[start : start + 4096]
        if labels is not None:
            block = np.column_stack([labels[start : start + 4096], block])
        text = _CELL_TEXT[block][_CELL_KEEP[block]]
        text[np.cumsum(_CELL_LEN[block].sum(axis=1)) - 1] = ord("\n")  # last comma of a row
        parts.append(text.tobytes())
    return b"".join(parts)


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray | None = None) -> Path:
    """Write a Kaggle-format CSV (gzip if the name ends in .gz) atomically: temporary file, then
    rename, so a half-written file is never seen."""
    path = Path(path)
    body = to_csv_bytes(images, labels)
    if path.suffix == ".gz":
        body = gzip.compress(body, compresslevel=9, mtime=0)
    return paths.write_atomic(path, body)

