"""The rows of a Kaggle digit CSV as integers: a fast typed read and, when that fails, the first
bad row and column.

The header has been checked already (`core.kaggle_csv`): `label` first if there is one (a digit
0..9), then the pixels (integers 0..255). `fast_parse` lets pyarrow read well-formed rows on many
threads and gives up (None) at anything unusual; `slow_parse` then reads chunk by chunk, and the
chunk that fails cell by cell, to name the first problem or accept valid but unusual spellings
(' 7', '7.0', '0x7'). Pixels come back flat, `(n, 784) uint8`; the caller shapes them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

_FAST_BLOCK = 1 << 22  # pyarrow block size for the fast path: ~18 blocks for Kaggle's 73 MB train.csv
# Parse on all cores (the command line, jobs). The web server sets this False: blocks parsed in
# parallel are all in memory at once (~70 MB more at the peak for a 42,000-row file), and a small
# host gives the whole app a fraction of one core anyway.
PARSE_THREADS = True
_SLOW_BLOCK = 1 << 20  # chunks of the slow path: a bad row is looked at cell by cell within 1 MB

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


def bad_label(labels: np.ndarray, name: str, offset: int = 0) -> ValueError | None:
    """The error for the first label above 9 (uint8 parsing already refused negatives and text)."""
    if labels.size == 0 or labels.max() <= 9:
        return None
    row = int(np.flatnonzero(labels > 9)[0])
    return ValueError(
        f"{name}: row {offset + row + 1}, column label: {labels[row]} is out of range (expected a digit 0..9)"
    )


def _every_column_as(header: list[str], kind):
    """pyarrow options that read every column as `kind` and never turn a cell into a null."""
    import pyarrow.csv as pacsv

    return pacsv.ConvertOptions(
        column_types=dict.fromkeys(header, kind),
        null_values=[],
        strings_can_be_null=False,
        quoted_strings_can_be_null=False,
    )


def _values(column) -> np.ndarray:
    """A uint8 column's values, read in place (pyarrow's `to_numpy` imports pandas: a tenth of
    `python -m core predict`'s time). Its read options let no cell become a null (checked by the
    caller: a null's slot would read as a number)."""
    return np.frombuffer(column.buffers()[1], dtype=np.uint8, count=len(column), offset=column.offset)


def fast_parse(
    body, header: list[str], has_label: bool, *, skip_rows: int = 0
) -> tuple[np.ndarray, np.ndarray | None] | None:
    """Typed multi-threaded read of well-formed CSV rows (a `pyarrow.Buffer`, or a file path that
    pyarrow reads itself) -> pixels `(n, 784) uint8`, labels `(n,) int64` or None; None if
    anything is unusual, so that the slow path can say what.

    The table's column blocks are turned into row-major images a block of rows at a time, straight
    into the result: no whole-file pixel-major copy beside it (that peaked ~100 MB higher for a
    42,000-row file, in a web server whose budget is a few hundred).
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        table = pacsv.read_csv(
            str(body) if isinstance(body, Path) else pa.BufferReader(body),
            read_options=pacsv.ReadOptions(
                use_threads=PARSE_THREADS, block_size=_FAST_BLOCK, column_names=header,
                skip_rows=skip_rows,
            ),
            # Declaring every column uint8 skips type inference and makes pyarrow itself refuse
            # anything but an integer 0..255 (empty cells included).
            convert_options=_every_column_as(header, pa.uint8()),
        )
    except pa.ArrowInvalid:
        return None
    try:
        pixels = np.empty((table.num_rows, len(header) - has_label), dtype=np.uint8)
        labels = np.empty(table.num_rows, dtype=np.int64) if has_label else None
        start = 0
        batch = columns = None
        for batch in table.to_batches():
            columns, stop = batch.columns, start + batch.num_rows
            if any(col.null_count for col in columns):
                return None
            if has_label:
                labels[start:stop] = _values(columns[0])
                columns = columns[1:]
            # Filling pixel-major rows is contiguous; one transposing copy of the block then
            # gives row-major images.
            block = np.empty((len(columns), batch.num_rows), dtype=np.uint8)
            for j, col in enumerate(columns):
                block[j] = _values(col)
            pixels[start:stop] = block.T
            start = stop
        batch = columns = table = None  # nothing of pyarrow's left alive for the release below
    finally:
        # pyarrow's allocator keeps freed blocks for later reads: give them back (a long-lived
        # server parses a file once, and a job process needs the memory for training).
        pa.default_memory_pool().release_unused()
    return pixels, labels


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
            convert_options=_every_column_as(header, pa.string()),
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
    pix = np.empty((len(header) - has_label, table.num_rows), dtype=np.uint8)
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
    return np.ascontiguousarray(pix.T), labels


def slow_parse(
    data: bytes, offset: int, header: list[str], has_label: bool, name: str, *, max_rows: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """The rows of `data[offset:]` -> pixels `(n, 784) uint8`, labels `(n,) int64` or None; or the
    `ValueError` naming the first bad row and column.

    Finds it quickly: typed reads of 8 MB chunks while they succeed; the first chunk that fails is
    read again in 1 MB pieces, and the failing piece is looked at cell by cell.
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
            parsed = fast_parse(chunk, header, has_label)
            if parsed is None and len(sizes) > 1:
                done = walk(*piece, sizes[1:], done)
                continue
            if parsed is None:
                parsed = _inspect_chunk(chunk, header, has_label, name, done)
            elif has_label and (error := bad_label(parsed[1], name, done)) is not None:
                raise error
            images.append(parsed[0])
            if has_label:
                labels.append(parsed[1])
            done += len(parsed[0])
            if done > max_rows:
                raise ValueError(f"{name}: has more than {max_rows:,} rows, the limit")
        return done

    if walk(offset, len(data), (8 * _SLOW_BLOCK, _SLOW_BLOCK), 0) == 0:
        raise ValueError(f"{name}: has a header but no rows")
    return np.concatenate(images), np.concatenate(labels) if has_label else None


