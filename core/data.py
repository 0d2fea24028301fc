"""Find, load and validate Kaggle Digit Recognizer CSVs; the committed sample; stable splits.

Every loader returns a `Dataset` of `uint8` images shaped `(n, 28, 28)` and `int64` labels (or
None for a test file). Anything that is not a valid Kaggle file is refused with a `ValueError`
that names the file, the row/column and what was expected; nothing is cached for a bad file.
"""

from __future__ import annotations

import codecs
import csv
import hashlib
import io
import json
import math
import os
import re
import tempfile
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from core import paths

N_PIXELS = 784
SIDE = 28
PIXEL_COLUMNS = [f"pixel{i}" for i in range(N_PIXELS)]
TRAIN_COLUMNS = ["label", *PIXEL_COLUMNS]
MAX_CSV_BYTES = 400 * 1024 * 1024  # Kaggle's train.csv is 73 MB; the full MNIST set ~130 MB.
MAX_ROWS = 200_000
CACHE_VERSION = 2

# Where data comes from; recorded with every model (leakage checks read it).
SOURCE_SAMPLE = "sample"
SOURCE_KAGGLE = "kaggle"
SOURCE_UPLOAD = "upload"
SOURCE_MNIST = "mnist-download"
SOURCE_USER = "user-digits"


@dataclass(frozen=True)
class Dataset:
    """Images `(n, 28, 28) uint8`, labels `(n,) int64` or None, and where they came from."""

    images: np.ndarray
    labels: np.ndarray | None
    name: str
    source: str
    fingerprint: str
    extra: dict = field(default_factory=dict, compare=False)

    @property
    def n(self) -> int:
        return int(self.images.shape[0])

    @property
    def has_labels(self) -> bool:
        return self.labels is not None

    def class_counts(self) -> np.ndarray:
        """Images per digit 0..9 (zeros for an unlabelled set)."""
        if self.labels is None:
            return np.zeros(10, dtype=np.int64)
        return np.bincount(self.labels, minlength=10)


@dataclass(frozen=True)
class DataFiles:
    """The files the studio will use: Kaggle's if the user has them, else the committed sample."""

    train: Path | None
    test: Path | None
    source: str
    answers: Path | None = None


# --------------------------------------------------------------------------- fingerprints


def fingerprint(images: np.ndarray, labels: np.ndarray | None = None) -> str:
    """A short content hash: the same digits in the same order give the same fingerprint."""
    h = hashlib.blake2b(digest_size=8)
    h.update(np.ascontiguousarray(images, dtype=np.uint8).tobytes())
    if labels is not None:
        h.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return h.hexdigest()


def row_hashes(images: np.ndarray) -> np.ndarray:
    """One 64-bit hash per image, to find the same digit in two sets (leakage, duplicates)."""
    flat = np.ascontiguousarray(images, dtype=np.uint8).reshape(len(images), -1)
    # Two independent multiply-add folds over the 784 bytes; collisions are ~2^-64 per pair.
    weights = np.random.default_rng(12345).integers(1, 2**62, size=flat.shape[1], dtype=np.uint64)
    out = np.empty(len(flat), dtype=np.uint64)
    step = 4096  # chunks keep the uint64 working copy at ~25 MB instead of n x 784 x 8 bytes
    with np.errstate(over="ignore"):
        for i in range(0, len(flat), step):
            block = flat[i : i + step]
            out[i : i + step] = (block.astype(np.uint64) * weights).sum(axis=1, dtype=np.uint64) ^ block.sum(
                axis=1, dtype=np.uint64
            )
    return out


# --------------------------------------------------------------------------- parsing

_SNIFF = 64 * 1024  # bytes looked at to recognise the kind of file before parsing it
_FAST_BLOCK = 1 << 22  # pyarrow block size for the fast path: ~18 blocks for Kaggle's 73 MB train.csv
_SLOW_BLOCK = 1 << 20  # chunks of the slow path: a bad row is looked at cell by cell within 1 MB


def _size(nbytes: int) -> str:
    """A byte count for people: '73 MB', '4.9 KB'."""
    for unit, scale in (("MB", 2**20), ("KB", 2**10)):
        if nbytes >= scale:
            value = nbytes / scale
            return f"{value:.0f} {unit}" if value >= 10 else f"{value:.1f} {unit}"
    return f"{nbytes} bytes"


def _gunzip(data: bytes, name: str) -> bytes:
    """Decompress, refusing corrupt archives and anything that inflates past the size limit."""
    import gzip
    import zlib

    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as gz:
            out = gz.read(MAX_CSV_BYTES + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{name}: not a readable gzip file ({exc})") from None
    if len(out) > MAX_CSV_BYTES:
        raise ValueError(f"{name}: unpacks to more than the {_size(MAX_CSV_BYTES)} limit")
    return out


def _open_bytes(source: str | Path | bytes, name: str) -> bytes:
    """The CSV text as UTF-8 bytes (gzip undone, BOM dropped); refuse what is not a text CSV."""
    if isinstance(source, bytes | bytearray | memoryview):
        data = bytes(source)
    else:
        path = Path(source)
        if not path.is_file():
            raise ValueError(f"{name}: file not found")
        size = path.stat().st_size
        if size > MAX_CSV_BYTES:
            raise ValueError(f"{name}: {_size(size)} is larger than the {_size(MAX_CSV_BYTES)} limit")
        data = path.read_bytes()
    if len(data) > MAX_CSV_BYTES:
        raise ValueError(f"{name}: {_size(len(data))} is larger than the {_size(MAX_CSV_BYTES)} limit")
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
    line = ",".join(cleaned)
    if len(cleaned) == 1:
        for sep, word in ((";", "semicolons"), ("\t", "tabs"), ("|", "'|'")):
            if sep in cleaned[0]:
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
    return has_label


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


_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?", re.ASCII)
_HEX = re.compile(r"0[xX][0-9a-fA-F]+", re.ASCII)


def _cell_value(text: str, lo: int, hi: int) -> tuple[int | None, str | None]:
    """A cell's integer lo..hi ('7', ' 7', '7.0', '0x7' are all 7), or why it is not one."""
    value = text.strip()
    if value == "":
        return None, "empty cell"
    if _HEX.fullmatch(value):  # pyarrow's own integer parser reads these too
        number = int(value, 16)
        return (number, None) if lo <= number <= hi else (None, f"{value[:30]} is out of range")
    if not _NUMBER.fullmatch(value):
        return None, f"{value[:30]!r} is not a number"
    real = float(value)
    if not math.isfinite(real):
        return None, f"{value[:30]!r} is not a number"
    if real != int(real):
        return None, f"{value[:30]} is not a whole number"
    if not lo <= int(real) <= hi:
        return None, f"{value[:30]} is out of range"
    return int(real), None


def _column_values(col, lo: int, hi: int) -> tuple[np.ndarray | None, int | None, str | None]:
    """Integers of one text column, or the first bad row's index and what is wrong with it."""
    import pyarrow as pa
    import pyarrow.compute as pc

    text = pc.utf8_trim_whitespace(col)
    for kind in (pa.int16(), pa.float64()):
        try:
            values = pc.cast(text, kind).to_numpy(zero_copy_only=False)
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            continue
        ok = (values >= lo) & (values <= hi)
        if kind == pa.float64():
            ok &= values == np.round(values)  # NaN fails every comparison, so it is caught too
        if ok.all():
            return values.astype(np.int64), None, None
        row = int(np.flatnonzero(~ok)[0])
        return None, row, _cell_value(str(col[row].as_py()), lo, hi)[1] or f"{col[row]} is not valid"
    # Text pyarrow cannot read as numbers: go cell by cell (only this chunk of this column).
    values = np.empty(len(col), dtype=np.int64)
    for row, cell in enumerate(col.to_pylist()):
        number, problem = _cell_value(cell, lo, hi)
        if problem is not None:
            return None, row, problem
        values[row] = number
    return values, None, None


def _bad_label(labels: np.ndarray, name: str, offset: int = 0) -> ValueError | None:
    """The error for the first label above 9 (uint8 parsing already refused negatives and text)."""
    if labels.size == 0 or labels.max() <= 9:
        return None
    row = int(np.flatnonzero(labels > 9)[0])
    return ValueError(
        f"{name}: row {offset + row + 1}, column label: {labels[row]} is out of range (expected a digit 0..9)"
    )


def _fast_parse(
    body, header: list[str], has_label: bool, *, skip_rows: int = 0
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Typed multi-threaded read of well-formed CSV rows (a `pyarrow.Buffer`, or a file path that
    pyarrow reads itself); None if anything is unusual, so that the slow path can say what."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            str(body) if isinstance(body, Path) else pa.BufferReader(body),
            read_options=pacsv.ReadOptions(
                use_threads=True, block_size=_FAST_BLOCK, column_names=header, skip_rows=skip_rows
            ),
            # Declaring every column uint8 skips type inference and makes pyarrow itself refuse
            # anything but an integer 0..255 (empty cells included: no null values allowed).
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.uint8()),
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return None
    n = table.num_rows
    columns = table.columns
    labels = None
    if has_label:
        labels = columns[0].to_numpy().astype(np.int64)
        columns = columns[1:]
    # Filling pixel-major rows is contiguous; one transposing copy then gives row-major images.
    pix = np.empty((N_PIXELS, n), dtype=np.uint8)
    for j, col in enumerate(columns):
        pix[j] = col.to_numpy()
    return np.ascontiguousarray(pix.T).reshape(n, SIDE, SIDE), labels


def _inspect_chunk(
    body, header: list[str], has_label: bool, name: str, offset: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """Read a chunk of rows that failed the typed read as text and name its first bad row and
    column; return its values if every cell is a valid but unusual spelling (' 7', '7.0')."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad_rows: list = []

    def on_bad_row(row) -> str:
        bad_rows.append(row)
        return "error"

    try:
        table = pacsv.read_csv(
            pa.BufferReader(body),
            read_options=pacsv.ReadOptions(use_threads=False, column_names=header),  # rows numbered
            parse_options=pacsv.ParseOptions(invalid_row_handler=on_bad_row),
            convert_options=pacsv.ConvertOptions(
                column_types=dict.fromkeys(header, pa.string()),
                null_values=[],
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid as exc:
        if bad_rows and bad_rows[0].number is not None:
            bad = bad_rows[0]
            raise ValueError(
                f"{name}: row {offset + bad.number} has {bad.actual_columns} values, "
                f"expected {bad.expected_columns}"
            ) from None
        msg = str(exc).splitlines()[0][:120]
        raise ValueError(f"{name}: not a readable CSV ({msg})") from None
    worst: tuple[int, int, str] | None = None
    pix = np.empty((N_PIXELS, table.num_rows), dtype=np.uint8)
    labels = None
    for j, col in enumerate(table.columns):
        is_label = has_label and j == 0
        values, row, problem = _column_values(col.combine_chunks(), 0, 9 if is_label else 255)
        if problem is not None:
            if worst is None or row < worst[0]:
                worst = (row, j, problem)
        elif worst is None:
            if is_label:
                labels = values
            else:
                pix[j - has_label] = values
    if worst is not None:
        row, j, problem = worst
        what = "a digit 0..9" if has_label and j == 0 else "an integer 0..255"
        raise ValueError(f"{name}: row {offset + row + 1}, column {header[j]}: {problem} (expected {what})")
    return np.ascontiguousarray(pix.T).reshape(-1, SIDE, SIDE), labels


def _slow_parse(
    data: bytes, offset: int, header: list[str], has_label: bool, name: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Find the first bad row quickly: typed reads of 8 MB chunks while they succeed; the first
    chunk that fails is read again in 1 MB pieces, and the failing piece is looked at cell by cell.
    """
    import pyarrow as pa

    buffer = pa.py_buffer(data)
    images: list[np.ndarray] = []
    labels: list[np.ndarray] = []

    def walk(start: int, stop: int, sizes: tuple[int, ...], done: int) -> int:
        """Parse rows in data[start:stop] into `images`/`labels`; return the rows read so far."""
        while start < stop:
            end = data.find(b"\n", min(start + sizes[0], stop - 1), stop)
            end = stop if end < 0 else end + 1  # chunks end at a line break
            chunk, blank = buffer.slice(start, end - start), not data[start:end].strip()
            piece = (start, end)
            start = end
            if blank:
                continue
            parsed = _fast_parse(chunk, header, has_label)
            if parsed is None and len(sizes) > 1:
                done = walk(*piece, sizes[1:], done)
                continue
            if parsed is None:
                parsed = _inspect_chunk(chunk, header, has_label, name, done)
            elif has_label and (error := _bad_label(parsed[1], name, done)) is not None:
                raise error
            images.append(parsed[0])
            if has_label:
                labels.append(parsed[1])
            done += len(parsed[0])
            if done > MAX_ROWS:
                raise ValueError(f"{name}: has more than {MAX_ROWS:,} rows, the limit")
        return done

    if walk(offset, len(data), (8 * _SLOW_BLOCK, _SLOW_BLOCK), 0) == 0:
        raise ValueError(f"{name}: has a header but no rows")
    return np.concatenate(images), np.concatenate(labels) if has_label else None


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
    parsed = _fast_parse(path, TRAIN_COLUMNS if has_label else PIXEL_COLUMNS, has_label, skip_rows=1)
    if parsed is None or len(parsed[0]) == 0 or len(parsed[0]) > MAX_ROWS:
        return None, True
    if has_label and _bad_label(parsed[1], name) is not None:
        return None, True
    return parsed, True


def parse_csv(
    source: str | Path | bytes,
    *,
    name: str | None = None,
    expect_labels: bool | None = None,
    source_kind: str = SOURCE_UPLOAD,
) -> Dataset:
    """Parse and validate a Kaggle-format CSV (plain or gzip) from a path or bytes, uncached.

    `expect_labels` True demands `label,pixel0..pixel783`, False demands `pixel0..pixel783`,
    None accepts either. Raises `ValueError` naming the file, the row (counted from 1 after the
    header) and the column of the first problem, e.g. "train.csv: row 3, column pixel5: ...".
    """
    import pyarrow as pa

    if name is None:
        name = "uploaded file" if isinstance(source, bytes | bytearray | memoryview) else Path(source).name
    tried = False
    if not isinstance(source, bytes | bytearray | memoryview):
        quick, tried = _parse_clean_file(Path(source), name, expect_labels)
        if quick is not None:
            images, labels = quick
            return Dataset(images, labels, name, source_kind, fingerprint(images, labels))
    data = _open_bytes(source, name)
    header, offset = _split_header(data, name)
    has_label = _check_header(header, name, expect_labels)
    header = TRAIN_COLUMNS if has_label else PIXEL_COLUMNS
    if not data[offset : offset + _SNIFF].strip() and not data[offset:].strip():
        raise ValueError(f"{name}: has a header but no rows")
    parsed = None if tried else _fast_parse(pa.py_buffer(data).slice(offset), header, has_label)
    if parsed is None or (has_label and _bad_label(parsed[1], name) is not None):
        parsed = _slow_parse(data, offset, header, has_label, name)
    images, labels = parsed
    if len(images) == 0:
        raise ValueError(f"{name}: has a header but no rows")
    if len(images) > MAX_ROWS:
        raise ValueError(f"{name}: has more than {MAX_ROWS:,} rows, the limit")
    return Dataset(images, labels, name, source_kind, fingerprint(images, labels))


# --------------------------------------------------------------------------- cached loading


def _cache_path(path: Path) -> Path:
    """`<cache>/<file name>.<path key>.<content key>.npy`: one live copy per source file."""
    resolved = path.resolve()
    st = resolved.stat()
    where = hashlib.blake2b(str(resolved).encode(), digest_size=6).hexdigest()
    # Inode and ctime as well as size and mtime: an edit that keeps size and mtime still shows.
    state = f"{CACHE_VERSION}|{st.st_size}|{st.st_mtime_ns}|{st.st_ino}|{st.st_ctime_ns}"
    key = hashlib.blake2b(state.encode(), digest_size=8).hexdigest()
    return paths.cache_dir() / f"{path.name}.{where}.{key}.npy"


def _read_cache(cache: Path, name: str, source_kind: str) -> Dataset | None:
    """The cached arrays, or None if the cache is missing or damaged in any way."""
    try:
        with open(cache, "rb") as f:
            meta = json.loads(str(np.load(f, allow_pickle=False)))
            images = np.load(f, allow_pickle=False)
            labels = np.load(f, allow_pickle=False) if meta["has_labels"] else None
            trailing = f.read(1)
        n = int(meta["n"])
        if (
            meta["version"] != CACHE_VERSION
            or trailing
            or images.dtype != np.uint8
            or images.shape != (n, SIDE, SIDE)
            or (labels is not None and (labels.dtype != np.int64 or labels.shape != (n,)))
        ):
            return None
        return Dataset(images, labels, name, source_kind, str(meta["fingerprint"]))
    except Exception:  # noqa: BLE001 - any damage to a cache file just means parsing again
        return None


def _write_cache(cache: Path, ds: Dataset) -> None:
    """Save the parsed arrays as raw `.npy` blocks (fast to read back); drop older copies."""
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        stem = cache.name.rsplit(".", 2)[0]  # "<file name>.<path key>"
        for old in cache.parent.glob(f"{stem}.*.npy"):
            if old != cache:
                old.unlink(missing_ok=True)
        for old in cache.parent.glob(f"{stem.rsplit('.', 1)[0]}.*.npz"):  # CACHE_VERSION 1's format
            old.unlink(missing_ok=True)
        meta = {
            "version": CACHE_VERSION,
            "n": ds.n,
            "has_labels": ds.has_labels,
            "fingerprint": ds.fingerprint,
        }
        fd, tmp = tempfile.mkstemp(dir=cache.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.array(json.dumps(meta)), allow_pickle=False)
                np.save(f, np.ascontiguousarray(ds.images, dtype=np.uint8), allow_pickle=False)
                if ds.labels is not None:
                    np.save(f, np.ascontiguousarray(ds.labels, dtype=np.int64), allow_pickle=False)
            os.replace(tmp, cache)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    except OSError:
        pass  # A read-only or full disk only costs speed.


def load_csv(
    path: str | Path,
    *,
    expect_labels: bool | None = None,
    source_kind: str = SOURCE_KAGGLE,
    use_cache: bool = True,
) -> Dataset:
    """Load a Kaggle CSV from disk, reusing a parsed copy (in `paths.cache_dir()`) while the file
    is unchanged.

    The cache key is the file's path, size, modification time and inode, so an edited file is
    parsed again; a damaged cache is ignored; a cache that cannot be written only costs speed.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"{path.name}: file not found in {path.parent}")
    cache = _cache_path(path) if use_cache else None
    if cache is not None and cache.is_file():
        ds = _read_cache(cache, path.name, source_kind)
        if ds is not None and (expect_labels is None or expect_labels == ds.has_labels):
            return ds
    ds = parse_csv(path, name=path.name, expect_labels=expect_labels, source_kind=source_kind)
    if cache is not None:
        _write_cache(cache, ds)
    return ds


def _zip_members(source: str | Path | bytes, name: str) -> dict[str, bytes]:
    """`train.csv` and `test.csv` from Kaggle's zip (in any folder inside it), as bytes."""
    try:
        zf = zipfile.ZipFile(io.BytesIO(source) if isinstance(source, bytes) else source)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValueError(f"{name}: not a readable zip archive ({exc})") from None
    with zf:
        members: dict[str, zipfile.ZipInfo] = {}
        # Shallowest first, skipping macOS resource forks, so "train.csv" wins over "x/train.csv".
        for info in sorted(zf.infolist(), key=lambda i: (i.filename.count("/"), i.filename)):
            if info.is_dir() or info.filename.startswith("__MACOSX/"):
                continue
            members.setdefault(Path(info.filename).name, info)
        missing = [f for f in ("train.csv", "test.csv") if f not in members]
        if missing:
            raise ValueError(
                f"{name}: the zip has no {' or '.join(missing)} "
                f"(found: {', '.join(sorted(members)[:5]) or 'nothing'})"
            )
        out = {}
        for member in ("train.csv", "test.csv"):
            info = members[member]
            if info.file_size > MAX_CSV_BYTES:
                raise ValueError(
                    f"{name}: {member} is {_size(info.file_size)}, more than the {_size(MAX_CSV_BYTES)} limit"
                )
            try:
                out[member] = zf.read(info)
            except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
                raise ValueError(f"{name}: {member} cannot be read from the zip ({exc})") from None
    return out


def load_zip(source: str | Path | bytes, *, name: str | None = None) -> tuple[Dataset, Dataset]:
    """Read Kaggle's `digit-recognizer.zip` (train.csv + test.csv inside) -> (train, test)."""
    name = name or (Path(source).name if not isinstance(source, bytes) else "uploaded zip")
    members = _zip_members(source, name)
    train = parse_csv(
        members["train.csv"], name=f"{name}/train.csv", expect_labels=True, source_kind=SOURCE_KAGGLE
    )
    test = parse_csv(
        members["test.csv"], name=f"{name}/test.csv", expect_labels=False, source_kind=SOURCE_KAGGLE
    )
    return train, test


# --------------------------------------------------------------------------- finding data


def _first_existing(folder: Path, stem: str) -> Path | None:
    for suffix in (".csv", ".csv.gz"):
        candidate = folder / f"{stem}{suffix}"
        if candidate.is_file():
            return candidate
    return None


_write_atomic = paths.write_atomic  # kept under its old name for callers in this module


def unpack_kaggle_zip(folder: Path | None = None) -> bool:
    """If `data/digit-recognizer.zip` is there without CSVs beside it, extract them; True if done.

    Both files are validated before anything is written; test.csv is written first because the
    presence of train.csv is what marks the data as ready.
    """
    folder = folder or paths.data_dir()
    archive = folder / "digit-recognizer.zip"
    if not archive.is_file() or _first_existing(folder, "train"):
        return False
    members = _zip_members(archive, archive.name)
    parsed = {
        member: parse_csv(
            members[member],
            name=f"{archive.name}/{member}",
            expect_labels=member == "train.csv",
            source_kind=SOURCE_KAGGLE,
        )
        for member in ("train.csv", "test.csv")
    }
    for member in ("test.csv", "train.csv"):
        path = _write_atomic(folder / member, members[member])
        _write_cache(_cache_path(path), parsed[member])  # The first load is then a cache hit.
    return True


def find_data(folder: Path | None = None) -> DataFiles:
    """Kaggle's files in `data/` (csv, csv.gz, or the zip) if present, else the committed sample."""
    folder = folder or paths.data_dir()
    if (folder / "digit-recognizer.zip").is_file():
        unpack_kaggle_zip(folder)
    train = _first_existing(folder, "train")
    if train is not None:
        return DataFiles(train, _first_existing(folder, "test"), SOURCE_KAGGLE)
    mnist = _first_existing(folder, "mnist-full")
    if mnist is not None:
        return DataFiles(mnist, None, SOURCE_MNIST)
    sample = paths.sample_dir()
    return DataFiles(
        sample / "train.csv.gz", sample / "test.csv.gz", SOURCE_SAMPLE, sample / "test_answers.csv"
    )


def load_train(files: DataFiles | None = None) -> Dataset:
    """The training set the studio uses now (Kaggle's, the MNIST download, or the sample)."""
    files = files or find_data()
    if files.train is None:
        raise ValueError("no training data found")
    return load_csv(files.train, expect_labels=True, source_kind=files.source)


def load_test(files: DataFiles | None = None) -> Dataset | None:
    """The unlabelled test set that goes with `load_train`, or None if there is none."""
    files = files or find_data()
    if files.test is None:
        return None
    return load_csv(files.test, expect_labels=False, source_kind=files.source)


def load_answers(path: str | Path) -> np.ndarray:
    """Labels `(n,) int64` of a test set from an `ImageId,Label` file (the sample keeps its answers
    aside so submissions on it can be scored)."""
    path = Path(path)
    try:
        table = np.loadtxt(path, delimiter=",", skiprows=1, dtype=np.int64, ndmin=2)
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path.name}: expected ImageId,Label rows of integers ({exc})") from None
    if table.shape[1] != 2 or not np.array_equal(table[:, 0], np.arange(1, len(table) + 1)):
        raise ValueError(f"{path.name}: expected ImageId,Label with ImageId 1..n")
    if len(table) and (table[:, 1].min() < 0 or table[:, 1].max() > 9):
        raise ValueError(f"{path.name}: every Label must be a digit 0..9")
    return table[:, 1]


def sample_answers() -> np.ndarray:
    """Labels of the committed sample's test file, so submissions on it can be scored."""
    return load_answers(paths.sample_dir() / "test_answers.csv")


def load_user_digits(folder: Path | None = None) -> Dataset | None:
    """Digits users taught the model on the Draw page (`data/user_digits.csv`), if any."""
    path = (folder or paths.data_dir()) / "user_digits.csv"
    if not path.is_file():
        return None
    return load_csv(path, expect_labels=True, source_kind=SOURCE_USER, use_cache=False)


# --------------------------------------------------------------------------- writing

# Each value 0..255 as its digits plus a comma, padded to 4 bytes; `_CELL_LEN` says how many count.
_CELL_TEXT = np.zeros((256, 4), dtype=np.uint8)
_CELL_LEN = np.zeros(256, dtype=np.int64)
for _v in range(256):
    _CELL_TEXT[_v, : len(str(_v)) + 1] = np.frombuffer(f"{_v},".encode(), dtype=np.uint8)
    _CELL_LEN[_v] = len(str(_v)) + 1
_CELL_KEEP = np.arange(4)[None, :] < _CELL_LEN[:, None]


def _check_arrays(images: np.ndarray, labels: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """Images as `(n, 784) uint8` and labels as `(n,) uint8`, refusing values that would change."""
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

    Vectorised through a table of the 256 possible cells: ~5x faster than `np.savetxt`.
    """
    flat, labels = _check_arrays(images, labels)
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
        import gzip

        body = gzip.compress(body, compresslevel=9, mtime=0)
    return _write_atomic(path, body)


def append_user_digit(image: np.ndarray, label: int, folder: Path | None = None) -> Path:
    """Add one taught digit (28x28, values 0..255) to `data/user_digits.csv`, creating it if needed."""
    if isinstance(label, bool) or int(label) != label or not 0 <= int(label) <= 9:
        raise ValueError(f"label must be a digit 0..9, got {label!r}")
    image = np.asarray(image)
    if image.shape != (SIDE, SIDE):
        raise ValueError(f"expected a 28x28 image, got shape {image.shape}")
    flat, _ = _check_arrays(image[None], None)
    path = (folder or paths.data_dir()) / "user_digits.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as f:  # "x": only one writer ever adds the header
            f.write(",".join(TRAIN_COLUMNS) + "\n")
    except FileExistsError:
        pass
    row = ",".join(str(v) for v in [int(label), *flat[0].tolist()]) + "\n"
    with open(path, "a", encoding="utf-8") as f:  # one short append: atomic on POSIX
        f.write(row)
    return path


# --------------------------------------------------------------------------- splits


def split_indices(
    labels: np.ndarray, *, val_fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Stable, stratified train/validation indices (sorted `int64`): the same labels and seed give
    the same split. Falls back to a plain shuffle split when a class is too rare to stratify."""
    from sklearn.model_selection import train_test_split

    labels = np.asarray(labels)
    if not 0.0 < val_fraction < 0.9:
        raise ValueError(f"val_fraction must be between 0 and 0.9, got {val_fraction}")
    if len(labels) < 2:
        raise ValueError(f"need at least 2 labelled digits to split, got {len(labels)}")
    idx = np.arange(len(labels))
    counts = np.unique(labels, return_counts=True)[1]
    n_val = math.ceil(val_fraction * len(labels))
    can_stratify = counts.min() >= 2 and len(counts) <= n_val <= len(labels) - len(counts)
    train_idx, val_idx = train_test_split(
        idx, test_size=val_fraction, random_state=seed, stratify=labels if can_stratify else None
    )
    return np.sort(train_idx), np.sort(val_idx)


def describe_split(labels: np.ndarray, val_idx: np.ndarray, *, val_fraction: float, seed: int) -> dict:
    """What a model records about its split, so evaluation can rebuild exactly the same one."""
    return {
        "val_fraction": val_fraction,
        "seed": seed,
        "n_train": int(len(labels) - len(val_idx)),
        "n_val": int(len(val_idx)),
        "val_fingerprint": hashlib.blake2b(
            np.asarray(val_idx, dtype=np.int64).tobytes(), digest_size=8
        ).hexdigest(),
    }


# --------------------------------------------------------------------------- full MNIST download

# Keras' copy of MNIST; $DRS_MNIST_URL points it at a local server in tests.
MNIST_URL = os.environ.get(
    "DRS_MNIST_URL", "https://storage.googleapis.com/tensorflow/tf-keras-datasets/mnist.npz"
)


def download_mnist(url: str = MNIST_URL, folder: Path | None = None, *, timeout: float = 60.0) -> Path:
    """Fetch the 70,000 MNIST digits (Keras' `mnist.npz`) and save them as Kaggle-format
    `data/mnist-full.csv`. Models trained on it are marked `mnist-download`: Kaggle's test digits
    are MNIST digits, so their Kaggle scores would be inflated by leakage.
    """
    import http.client
    import urllib.request

    folder = folder or paths.data_dir()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 - fixed or test URL
            payload = resp.read(MAX_CSV_BYTES + 1)
    except (OSError, http.client.HTTPException, ValueError) as exc:
        raise ValueError(f"could not download MNIST from {url}: {exc}") from None
    if len(payload) > MAX_CSV_BYTES:
        raise ValueError(f"the download from {url} is larger than the {_size(MAX_CSV_BYTES)} limit")
    if payload[:4] != b"PK\x03\x04":
        raise ValueError(
            f"the download from {url} is not an MNIST .npz file (it starts with {payload[:12]!r})"
        )
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as z:
            images = np.concatenate([z["x_train"], z["x_test"]])
            labels = np.concatenate([z["y_train"], z["y_test"]])
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"the download from {url} is not an MNIST .npz file ({exc})") from None
    if images.shape[1:] != (SIDE, SIDE) or labels.shape != (len(images),):
        raise ValueError(
            f"the download from {url} has images of shape {images.shape[1:]} and "
            f"{len(labels)} labels; expected 28x28 images, one label each"
        )
    try:
        path = write_kaggle_csv(folder / "mnist-full.csv", images, labels)
    except ValueError as exc:
        raise ValueError(f"the download from {url} has bad values: {exc}") from None
    _write_atomic(
        folder / "mnist-full.json",
        json.dumps({"source": SOURCE_MNIST, "url": url, "rows": len(images)}).encode(),
    )
    return path


def read_bytes_limited(stream: BinaryIO, limit: int = MAX_CSV_BYTES) -> bytes:
    """Read an upload, refusing it before parsing if it is over the size limit."""
    data = stream.read(limit + 1)
    if len(data) > limit:
        raise ValueError(f"the file is larger than the {_size(limit)} limit")
    return data
