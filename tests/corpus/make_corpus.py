"""Write the small bad (and oddly-formatted good) input files in this folder.

Run from the repository root: `python tests/corpus/make_corpus.py`. The files are committed;
this script documents how each was made. Rows are 3 tiny digits, so each file is a few KB.
"""

from __future__ import annotations

import gzip
import io
import zipfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PIXELS = [f"pixel{i}" for i in range(784)]
TRAIN_HEADER = ["label", *PIXELS]


def rows(n: int = 3, *, labels: bool = True) -> list[list[str]]:
    """n small digits: a short bright bar whose place depends on the row."""
    out = []
    for r in range(n):
        pix = ["0"] * 784
        for j in range(300 + 28 * r, 306 + 28 * r):
            pix[j] = str(100 + 50 * r)
        out.append(([str(r % 10)] if labels else []) + pix)
    return out


def text(header: list[str] | None, body: list[list[str]], newline: str = "\n") -> str:
    lines = ([",".join(header)] if header is not None else []) + [",".join(r) for r in body]
    return newline.join(lines) + newline


def with_cell(row: int, column: str, value: str, *, labels: bool = True) -> str:
    """A train (or test) file whose data row `row` (1-based) has `value` in `column`."""
    header = TRAIN_HEADER if labels else PIXELS
    body = rows(labels=labels)
    body[row - 1][header.index(column)] = value
    return text(header, body)


def zipped(members: dict[str, str]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for member, body in members.items():
            zf.writestr(zipfile.ZipInfo(member, date_time=(2026, 1, 1, 0, 0, 0)), body, zipfile.ZIP_DEFLATED)
    return buf.getvalue()


def main() -> None:
    train = text(TRAIN_HEADER, rows())
    test = text(PIXELS, rows(labels=False))
    dup = list(TRAIN_HEADER)
    dup[dup.index("pixel6")] = "pixel5"
    wrong = list(TRAIN_HEADER)
    wrong[wrong.index("pixel5")] = "pixl5"
    short = rows()
    short[1] = short[1][:-1]
    long = rows()
    long[1] = [*long[1], "0"]
    good_gz = gzip.compress(train.encode(), mtime=0)
    corrupt_gz = bytearray(good_gz)
    corrupt_gz[len(corrupt_gz) // 2 : len(corrupt_gz) // 2 + 16] = b"\xff" * 16
    files: dict[str, bytes | str] = {
        "empty.csv": "",
        "blank_lines.csv": "\n\n  \n",
        "header_only.csv": ",".join(TRAIN_HEADER) + "\n",
        "wrong_header.csv": text(wrong, rows()),
        "missing_header.csv": text(None, rows()),
        "extra_column.csv": text([*TRAIN_HEADER, "pixel784"], [[*r, "0"] for r in rows()]),
        "missing_column.csv": text(TRAIN_HEADER[:-1], [r[:-1] for r in rows()]),
        "duplicated_column.csv": text(dup, rows()),
        "label_not_first.csv": text([*PIXELS, "label"], [[*r[1:], r[0]] for r in rows()]),
        "semicolons.csv": text(None, [TRAIN_HEADER, *rows()]).replace(",", ";"),
        "short_row.csv": text(TRAIN_HEADER, short),
        "long_row.csv": text(TRAIN_HEADER, long),
        "text_pixel.csv": with_cell(3, "pixel5", "abc"),
        "empty_cell.csv": with_cell(3, "pixel5", ""),
        "nan_pixel.csv": with_cell(3, "pixel5", "NaN"),
        "float_pixel.csv": with_cell(3, "pixel5", "1.5"),
        "negative_pixel.csv": with_cell(3, "pixel5", "-1"),
        "pixel_256.csv": with_cell(3, "pixel5", "256"),
        "label_10.csv": with_cell(2, "label", "10"),
        "label_minus1.csv": with_cell(2, "label", "-1"),
        "label_letter.csv": with_cell(2, "label", "a"),
        "test_bad_pixel.csv": with_cell(2, "pixel783", "x", labels=False),
        "train_valid.csv": train,
        "test_valid.csv": test,
        "train_bom.csv": b"\xef\xbb\xbf" + train.encode(),
        "train_crlf.csv": text(TRAIN_HEADER, rows(), newline="\r\n"),
        "train_spaces_floats.csv": with_cell(1, "pixel300", " 100.0 "),
        "train_utf16.csv": train.encode("utf-16"),
        "binary_garbage.bin": bytes((i * 7919 + 13) % 256 for i in range(2048)),
        "corrupt.csv.gz": bytes(corrupt_gz),
        "truncated.csv.gz": good_gz[: len(good_gz) // 2],
        "no_csvs.zip": zipped({"readme.txt": "hello", "sample_submission.csv": "ImageId,Label\n1,0\n"}),
        "only_train.zip": zipped({"digit-recognizer/train.csv": train}),
        "kaggle.zip": zipped(
            {"train.csv": train, "test.csv": test, "sample_submission.csv": "ImageId,Label\n"}
        ),
    }
    for name, body in files.items():
        (HERE / name).write_bytes(body.encode() if isinstance(body, str) else body)


if __name__ == "__main__":
    main()
